"""The database: backup and restore, schema guards, jobs and the scheduler,
demo data."""

import datetime
import json
import os
import shutil
import stat
import unittest

import bbtest
from bbtest import BBTestCase


def iso(dt):
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (dt.microsecond // 1000)


def utcnow():
    return datetime.datetime.now(datetime.timezone.utc)


class Backup(BBTestCase):
    def test_backup_while_serving_then_restore(self):
        tok = self.ws.token("before-backup")
        srv = self.ws.serve()
        version = srv.rules_version()
        self.assertEqual(srv.get("/api/v1/rules", token=tok).status, 200)
        target = self.ws.path("snap.db")
        r = self.ws.run("backup", target, "--db", self.ws.db, "--json")
        self.assertEqual(r.rc, 0, str(r))
        j = json.loads(r.out)
        self.assertEqual(j["path"], target)
        self.assertEqual(j["bytes"], os.path.getsize(target))
        self.assertFalse(os.path.exists(target + ".partial"))
        self.assertFalse(os.path.exists(target + "-wal"))
        # the daemon did not notice
        self.assertEqual(srv.healthz()["status"], "ok")
        # a change after the backup, lost by the restore below
        self.ws.token("after-backup")
        srv.stop()

        # restore onto a fresh path, as documented: copy, no -wal/-shm
        fresh = self.ws.path("restored", "bandbill.db")
        os.makedirs(os.path.dirname(fresh), 0o700)
        shutil.copyfile(target, fresh)
        for suffix in ("-wal", "-shm"):
            if os.path.exists(fresh + suffix):
                os.remove(fresh + suffix)
        names = [n for (n,) in self.ws.sql("SELECT name FROM api_tokens ORDER BY id", db=fresh)]
        self.assertEqual(names, ["before-backup"])
        stored = [v for (v,) in self.ws.sql("SELECT version FROM rule_versions", db=fresh)]
        self.assertIn(version, stored)
        self.assertEqual(self.ws.sql("PRAGMA integrity_check", db=fresh), [("ok",)])
        r = self.ws.run("migrate", "--check", "--db", fresh)
        self.assertEqual(r.rc, 0, str(r))
        # the key file is not in the backup (by design): the restored database
        # needs the original one, named by keys.file
        srv2 = self.ws.serve("--set", "keys.file=" + os.path.join(os.path.dirname(self.ws.db), "bandbill.key"), db=fresh)
        self.assertEqual(srv2.ready["db"], fresh)
        self.assertEqual(srv2.get("/api/v1/rules", token=tok).status, 200)
        r = srv2.get("/api/v1/rules/versions/%s?file=tax.lua" % version, token=tok)
        self.assertEqual(r.status, 200)
        srv2.stop()

    def test_restore_in_place(self):
        tok = self.ws.token("keep")
        srv = self.ws.serve()
        target = self.ws.path("b.db")
        self.ws.ok("backup", target, "--db", self.ws.db)
        lost = self.ws.token("lost")
        self.assertEqual(srv.get("/api/v1/rules", token=lost).status, 200)
        srv.stop()
        # the documented steps: copy PATH over the database, delete -wal and -shm
        shutil.copyfile(target, self.ws.db)
        for suffix in ("-wal", "-shm"):
            if os.path.exists(self.ws.db + suffix):
                os.remove(self.ws.db + suffix)
        srv = self.ws.serve()
        self.assertEqual(srv.get("/api/v1/rules", token=tok).status, 200)
        self.assertEqual(srv.get("/api/v1/rules", token=lost).status, 401)
        srv.stop()

    def test_backup_force(self):
        target = self.ws.path("b.db")
        bbtest.write(target, "old")
        r = self.ws.run("backup", target)
        self.assertOneErrorLine(r, "already exists")
        r = self.ws.run("backup", target, "--force")
        self.assertEqual(r.rc, 0, str(r))
        self.assertIn(target, r.out)
        self.assertEqual(self.ws.sql("SELECT count(*) FROM schema_migrations", db=target)[0][0] >= 1, True)

    def test_backup_into_missing_folder(self):
        r = self.ws.run("backup", self.ws.path("no", "such", "dir", "b.db"))
        self.assertOneErrorLine(r, "b.db")


class SchemaGuards(BBTestCase):
    def serve_fails(self, *needles):
        r = self.ws.run("serve", "--listen", "127.0.0.1:0", timeout=20)
        self.assertEqual(r.rc, 1, str(r))
        last = r.err_lines[-1]
        self.assertTrue(last.startswith("bandbill:"), str(r))
        for n in needles:
            self.assertIn(n, last)
        self.assertFalse(os.path.exists(self.ws.socket))

    def test_newer_database_is_refused(self):
        self.ws.sql("INSERT INTO schema_migrations (version, name, checksum, applied_at) VALUES (9999, 'from_the_future', ?, ?)",
                    ("0" * 64, iso(utcnow())))
        self.serve_fails("newer", "9999")
        for args in (["migrate"], ["migrate", "--check"], ["token", "list"], ["jobs", "list"]):
            with self.subTest(args=args):
                r = self.ws.run(*args)
                self.assertOneErrorLine(r, "newer", "9999")
        # nothing was changed
        self.assertEqual(self.ws.sql("SELECT count(*) FROM schema_migrations WHERE version = 9999")[0][0], 1)

    def test_edited_migration_checksum_is_refused(self):
        self.ws.sql("UPDATE schema_migrations SET checksum = ? WHERE version = 1", ("ab" * 32,))
        self.serve_fails("changed after it was applied")
        for args in (["migrate"], ["init"], ["token", "list"]):
            with self.subTest(args=args):
                r = self.ws.run(*args)
                self.assertOneErrorLine(r, "changed after it was applied", "abababababab")

    def test_old_database_needs_migrate(self):
        db = self.ws.path("var", "old.db")
        self.ws.sql("CREATE TABLE something (x)", db=db)
        r = self.ws.run("serve", "--listen", "127.0.0.1:0", "--db", db, timeout=20)
        self.assertEqual(r.rc, 1, str(r))
        self.assertIn("bandbill migrate", r.err_lines[-1])


class Jobs(BBTestCase):
    def test_jobs_list(self):
        r = self.ws.ok("jobs", "list")
        self.assertIn("backup", r.out)
        self.assertIn("db.optimize", r.out)
        jobs = {j["name"]: j for j in json.loads(self.ws.ok("jobs", "list", "--json").out)}
        self.assertEqual(set(jobs), {"backup", "db.optimize", "outbox.deliver", "subscriptions.apply", "billing.run", "billing.renewals",
                                      "payments.expire", "payments.query", "dunning.run"})
        # the monthly billing run: the 1st at 00:30 in the operator's time zone (Asia/Shanghai by default)
        self.assertEqual(jobs["billing.run"]["schedule"], "30 0 1 * *")
        self.assertEqual(jobs["billing.renewals"]["schedule"], "45 0 * * *")
        first = jobs["billing.run"]["next_run"]   # UTC: 00:30 in Shanghai is 16:30 the day before
        self.assertTrue(first.endswith("T16:30:00.000Z"), first)
        for j in jobs.values():
            self.assertTrue(j["enabled"])
            self.assertTrue(j["schedule"])
            self.assertRegex(j["next_run"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:00\.000Z$")
            self.assertIsNone(j["last_status"])
            self.assertTrue(j["help"])
        jobs = {j["name"]: j for j in json.loads(self.ws.ok("jobs", "list", "--json", "--set", "jobs.backup=off",
                                                            "--set", "jobs.db.optimize=15 2 * * *").out)}
        self.assertFalse(jobs["backup"]["enabled"])
        self.assertEqual(jobs["backup"]["schedule"], "off")
        self.assertIsNone(jobs["backup"]["next_run"])
        self.assertEqual(jobs["db.optimize"]["schedule"], "15 2 * * *")

    def test_jobs_run_backup(self):
        bk = self.ws.path("bk")
        r = self.ws.run("jobs", "run", "backup", "--set", "backup.dir=" + bk)
        self.assertEqual(r.rc, 0, str(r))
        self.assertRegex(r.out, r"^job backup ok in \d+ ms: wrote ")
        files = os.listdir(bk)
        self.assertEqual(len(files), 1, files)
        self.assertRegex(files[0], r"^bandbill-\d{8}-\d{6}-\d{3}\.db$")
        self.assertIn(files[0], r.out)
        copy = os.path.join(bk, files[0])
        self.assertEqual(self.ws.sql("SELECT count(*) FROM schema_migrations", db=copy)[0][0] >= 1, True)
        rows = self.ws.sql("SELECT job, trigger, status, scheduled_for, finished_at, message FROM job_runs")
        self.assertEqual(len(rows), 1)
        job, trigger, status, sched_for, finished, msg = rows[0]
        self.assertEqual((job, trigger, status, sched_for), ("backup", "manual", "ok", None))
        self.assertIsNotNone(finished)
        self.assertIn(files[0], msg)
        listed = {j["name"]: j for j in json.loads(self.ws.ok("jobs", "list", "--json").out)}
        self.assertEqual(listed["backup"]["last_status"], "ok")
        # no lease is left behind
        self.assertEqual(self.ws.sql("SELECT lease_holder FROM job_state WHERE job = 'backup'"), [(None,)])

    def test_jobs_run_json_and_optimize(self):
        r = self.ws.run("jobs", "run", "db.optimize", "--json")
        self.assertEqual(r.rc, 0, str(r))
        j = json.loads(r.out)
        self.assertEqual((j["job"], j["status"]), ("db.optimize", "ok"))
        self.assertEqual(self.ws.sql("SELECT id, status FROM job_runs"), [(j["run_id"], "ok")])

    def test_backup_rotation_keeps_newest(self):
        bk = self.ws.path("bk")
        os.makedirs(bk)
        old = ["bandbill-20200101-000000.db", "bandbill-20200102-000000.db", "bandbill-20200103-000000.db"]
        for name in old:
            bbtest.write(os.path.join(bk, name), "")
        bbtest.write(os.path.join(bk, "unrelated.txt"), "keep me")
        r = self.ws.run("jobs", "run", "backup", "--set", "backup.dir=" + bk, "--set", "backup.keep=2")
        self.assertEqual(r.rc, 0, str(r))
        left = sorted(os.listdir(bk))
        self.assertEqual(len(left), 3, left)
        self.assertIn("bandbill-20200103-000000.db", left)
        self.assertIn("unrelated.txt", left)
        self.assertNotIn("bandbill-20200101-000000.db", left)

    def test_jobs_run_failure_is_one_stderr_line(self):
        """BUG (found by this suite): when a job fails, `bandbill jobs run`
        prints the daemon-style JSON log line "job_failed" on stderr before
        its own "bandbill: error: ..." line, so a runtime error is two lines
        instead of one."""
        blocker = self.ws.path("not-a-dir")
        bbtest.write(blocker, "")
        r = self.ws.run("jobs", "run", "backup", "--set", "backup.dir=" + os.path.join(blocker, "bk"))
        self.assertEqual(r.rc, 1, str(r))
        rows = self.ws.sql("SELECT status FROM job_runs")
        self.assertEqual(rows, [("failed",)])
        self.assertOneErrorLine(r, "backup")

    def test_jobs_run_backup_twice_in_a_row(self):
        """BUG (found by this suite): backup file names have a resolution of
        one second (bandbill-YYYYmmdd-HHMMSS.db), and backup_to refuses an
        existing path, so a second backup run within the same second (two
        manual runs, or a manual run next to the scheduled one) fails with
        "... already exists; not overwriting it"."""
        bk = self.ws.path("bk")
        for attempt in range(3):
            shutil.rmtree(bk, ignore_errors=True)
            a = self.ws.run("jobs", "run", "backup", "--json", "--set", "backup.dir=" + bk)
            b = self.ws.run("jobs", "run", "backup", "--json", "--set", "backup.dir=" + bk)
            self.assertEqual(a.rc, 0, str(a))
            if b.rc == 0 and len(os.listdir(bk)) == 2:
                names = sorted(os.listdir(bk))
                if names[0][:-3] != names[1][:-3]:
                    continue  # the runs straddled a second; try again
            break
        self.assertEqual(b.rc, 0, "the second backup run failed:\n%s" % (b,))
        self.assertEqual(json.loads(b.out)["status"], "ok")

    def test_scheduler_catchup_runs_once(self):
        ten_days_ago = utcnow() - datetime.timedelta(days=10)
        self.ws.sql("INSERT INTO job_state (job, last_scheduled_for) VALUES ('backup', ?)", (iso(ten_days_ago),))
        # backup runs at 03:00 local time; a run less than 2 minutes late is
        # "schedule", not "catchup": pick a zone where 03:00 is not just now
        now = utcnow()
        tz, hour = ("Asia/Shanghai", 19) if not (now.hour == 19 and now.minute < 3) else ("UTC", 3)
        args = ("--set", "timezone=" + tz)
        srv = self.ws.serve(*args)

        def catchup_rows():
            return self.ws.sql("SELECT id, trigger, status, scheduled_for FROM job_runs WHERE job = 'backup'")

        rows = bbtest.poll(lambda: [r for r in catchup_rows() if r[2] != "running"], timeout=5,
                           what="a catch-up run of the backup job")
        self.assertEqual(len(rows), 1, rows)
        _, trigger, status, sched_for = rows[0]
        self.assertEqual((trigger, status), ("catchup", "ok"))
        # one run for the latest missed time (03:00 Asia/Shanghai = 19:00Z), not one per missed day
        self.assertRegex(sched_for, r"T%02d:00:00\.000Z$" % hour)
        when = datetime.datetime.strptime(sched_for, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.timezone.utc)
        self.assertLess(utcnow() - when, datetime.timedelta(days=1, minutes=1))
        self.assertEqual(self.ws.sql("SELECT last_scheduled_for FROM job_state WHERE job = 'backup'"), [(sched_for,)])
        backups = os.listdir(os.path.join(self.ws.var, "backups"))
        self.assertEqual(len(backups), 1, backups)
        srv.wait_event("job_done", job="backup", trigger="catchup")
        srv.stop()

        # once more: the scheduler's first pass must not run backup again. Its
        # pass is over when it has adopted db.optimize (jobs are taken in
        # table order, backup first), so forget that job's state to see it.
        self.ws.sql("DELETE FROM job_state WHERE job = 'db.optimize'")
        srv = self.ws.serve(*args)
        bbtest.poll(lambda: self.ws.sql("SELECT last_scheduled_for FROM job_state WHERE job = 'db.optimize'")
                    not in ([], [(None,)]), timeout=5, what="the scheduler's first pass")
        self.assertEqual(len(catchup_rows()), 1, catchup_rows())
        self.assertEqual([ev for ev in srv.events("job_done") + srv.events("job_failed") if ev.get("job") == "backup"], [])
        srv.stop()

    def test_scheduler_first_start_adopts_without_running(self):
        njobs = len(json.loads(self.ws.ok("jobs", "list", "--json").out))
        srv = self.ws.serve()
        bbtest.poll(lambda: self.ws.sql("SELECT count(*) FROM job_state WHERE last_scheduled_for IS NOT NULL")[0][0] == njobs,
                    timeout=5, what="the scheduler to adopt every job")
        # outbox.deliver runs every minute, but with nothing to deliver it leaves no run record
        self.assertEqual(self.ws.sql("SELECT count(*) FROM job_runs")[0][0], 0)
        srv.stop()

    def test_disabled_job_does_not_catch_up(self):
        self.ws.sql("INSERT INTO job_state (job, last_scheduled_for) VALUES ('backup', ?)",
                    (iso(utcnow() - datetime.timedelta(days=10)),))
        self.ws.sql("DELETE FROM job_state WHERE job = 'db.optimize'")
        srv = self.ws.serve("--set", "jobs.backup=off")
        bbtest.poll(lambda: self.ws.sql("SELECT count(*) FROM job_state WHERE job = 'db.optimize'")[0][0] == 1,
                    timeout=5, what="the scheduler's first pass")
        self.assertEqual(self.ws.sql("SELECT count(*) FROM job_runs")[0][0], 0)
        srv.stop()


class Demo(BBTestCase):
    def test_demo_token_file(self):
        r = self.ws.run("demo")
        self.assertEqual(r.rc, 0, str(r))
        path = os.path.join(self.ws.var, "demo-admin.token")
        self.assertIn("(new)", r.out)
        self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o600)
        tok = bbtest.read(path).strip()
        self.assertTrue(tok)
        srv = self.ws.serve()
        r = srv.get("/api/v1/rules", token=tok)
        self.assertEqual(r.status, 200, r.body)
        self.assertIn("tax", [m["name"] for m in r.body["modules"]])
        rec = srv.wait_event("http", path="/api/v1/rules")
        self.assertEqual(rec["who"], "token:demo-admin")
        srv.stop()

    def test_demo_is_idempotent(self):
        first = json.loads(self.ws.ok("demo", "--json").out)
        self.assertTrue(first["token_created"])
        tok = bbtest.read(first["token_file"] if os.path.isabs(first["token_file"]) else self.ws.path(first["token_file"]))
        second = json.loads(self.ws.ok("demo", "--json").out)
        self.assertFalse(second["token_created"])
        self.assertEqual(bbtest.read(self.ws.path(second["token_file"])), tok)
        self.assertEqual(len(json.loads(self.ws.ok("token", "list", "--json").out)), 1)
        # the rules were recorded each time, one stored version
        self.assertEqual(self.ws.sql("SELECT count(*) FROM rule_versions")[0][0], 1)
        self.assertEqual(self.ws.sql("SELECT count(*) FROM rule_loads WHERE source = 'cli'")[0][0], 2)

    def test_demo_replaces_a_lost_token_file(self):
        self.ws.ok("demo")
        path = os.path.join(self.ws.var, "demo-admin.token")
        old = bbtest.read(path)
        os.remove(path)
        j = json.loads(self.ws.ok("demo", "--json").out)
        self.assertTrue(j["token_created"])
        new = bbtest.read(path)
        self.assertNotEqual(old, new)
        tokens = {t["name"]: t for t in json.loads(self.ws.ok("token", "list", "--json").out)}
        self.assertIsNone(tokens["demo-admin"]["revoked_at"])
        self.assertEqual(len(tokens), 2)
        srv = self.ws.serve()
        self.assertEqual(srv.get("/api/v1/rules", token=new).status, 200)
        self.assertEqual(srv.get("/api/v1/rules", token=old).status, 401)
        srv.stop()

    def test_demo_refuses_broken_rules(self):
        bad = self.ws.make_rules("bad", {"broken.lua": "return {\n"})
        r = self.ws.run("demo", "--rules", bad)
        self.assertOneErrorLine(r, "broken.lua:")
        self.assertFalse(os.path.exists(os.path.join(self.ws.var, "demo-admin.token")))


if __name__ == "__main__":
    unittest.main()
