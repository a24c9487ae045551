"""The command-line surface: help, usage errors, runtime errors, --json
output, configuration layering, init and migrate."""

import json
import os
import stat
import unittest

import bbtest
from bbtest import BBTestCase

COMMANDS = [
    "init", "migrate", "demo", "serve",
    "token create", "token list", "token revoke",
    "backup", "jobs list", "jobs run",
    "rules check", "rules test", "rules reload", "rules show", "rules diff", "rules call",
    "config", "version",
]


class HelpAndUsage(BBTestCase):
    init_db = False

    def test_every_command_has_help(self):
        for cmd in COMMANDS:
            with self.subTest(cmd=cmd):
                r = self.ws.run(*cmd.split(), "--help")
                self.assertEqual(r.rc, 0, str(r))
                self.assertIn("Usage: bandbill %s" % cmd, r.out)
                self.assertIn("--db PATH", r.out)  # the common options are listed
                self.assertEqual(r.err, "")

    def test_top_level_help_lists_every_command(self):
        r = self.ws.run("--help")
        self.assertEqual(r.rc, 0, str(r))
        self.assertIn("Usage: bandbill COMMAND", r.out)
        for cmd in COMMANDS:
            self.assertIn(cmd, r.out)

    def test_no_arguments_is_a_usage_error(self):
        r = self.ws.run()
        self.assertEqual(r.rc, 2, str(r))
        self.assertIn("Usage:", r.err)
        self.assertEqual(r.out, "")

    def test_unknown_command(self):
        r = self.ws.run("frobnicate")
        self.assertOneErrorLine(r, "frobnicate", rc=2)

    def test_unknown_subcommand(self):
        for args in (["rules", "frobnicate"], ["token", "frobnicate"], ["rules"], ["jobs"]):
            with self.subTest(args=args):
                r = self.ws.run(*args)
                self.assertOneErrorLine(r, args[0], rc=2)

    def test_unknown_option(self):
        for args in (["version", "--frobnicate"], ["rules", "check", "--bogus"], ["init", "--check"]):
            with self.subTest(args=args):
                r = self.ws.run(*args)
                self.assertOneErrorLine(r, "unknown option", rc=2)
                self.assertIn(args[-1], r.err)

    def test_option_missing_its_value(self):
        r = self.ws.run("init", "--db")
        self.assertOneErrorLine(r, "--db", rc=2)

    def test_missing_argument(self):
        for args in (["token", "revoke"], ["jobs", "run"], ["backup"], ["rules", "diff", "aaaaaaaa"], ["rules", "call"]):
            with self.subTest(args=args):
                r = self.ws.run(*args)
                self.assertOneErrorLine(r, "missing argument", rc=2)

    def test_too_many_arguments(self):
        r = self.ws.run("version", "extra")
        self.assertOneErrorLine(r, "too many arguments", rc=2)

    def test_set_without_equals_is_a_usage_error(self):
        r = self.ws.run("config", "--set", "log.level")
        self.assertOneErrorLine(r, "KEY=VALUE", rc=2)

    def test_token_create_needs_name_and_role(self):
        self.ws.init()
        r = self.ws.run("token", "create", "--name", "x")
        self.assertOneErrorLine(r, "--role", rc=2)


class RuntimeErrors(BBTestCase):
    def test_backup_to_existing_path(self):
        target = self.ws.path("exists.db")
        bbtest.write(target, "precious")
        r = self.ws.run("backup", target)
        self.assertOneErrorLine(r, "already exists")
        self.assertEqual(bbtest.read(target), "precious")

    def test_rules_show_unknown_version(self):
        r = self.ws.run("rules", "show", "0123456789abcdef")
        self.assertOneErrorLine(r, "0123456789abcdef")

    def test_rules_show_malformed_version(self):
        r = self.ws.run("rules", "show", "not-a-version")
        self.assertOneErrorLine(r, "not-a-version")

    def test_token_revoke_unknown_name(self):
        r = self.ws.run("token", "revoke", "nobody")
        self.assertOneErrorLine(r, "nobody")

    def test_token_create_duplicate_name(self):
        self.ws.token("dup")
        r = self.ws.run("token", "create", "--name", "dup", "--role", "admin")
        self.assertOneErrorLine(r, "dup")

    def test_token_create_unknown_role(self):
        r = self.ws.run("token", "create", "--name", "x", "--role", "emperor")
        self.assertOneErrorLine(r, "emperor")

    def test_jobs_run_unknown_job(self):
        r = self.ws.run("jobs", "run", "nosuchjob")
        self.assertOneErrorLine(r, "nosuchjob", "backup")

    def test_commands_need_an_initialised_database(self):
        for args in (["token", "list"], ["jobs", "list"], ["rules", "show"]):
            with self.subTest(args=args):
                r = self.ws.run(*args, "--db", self.ws.path("nowhere", "x.db"))
                self.assertOneErrorLine(r)

    def test_runtime_error_keeps_stdout_empty(self):
        r = self.ws.run("token", "revoke", "nobody", "--json")
        self.assertOneErrorLine(r)
        self.assertEqual(r.out, "")


class JsonOutput(BBTestCase):
    init_db = False

    def j(self, *args):
        r = self.ws.run(*args, "--json")
        self.assertEqual(r.rc, 0, str(r))
        try:
            return json.loads(r.out)
        except ValueError:
            self.fail("bandbill %s --json printed no JSON:\n%s" % (" ".join(args), str(r)))

    def test_json_outputs_parse(self):
        v = self.j("init")
        self.assertEqual(v["db"], "./var/bandbill.db")
        self.assertGreaterEqual(v["schema"], 1)
        self.assertEqual(v["applied"], v["schema"])

        v = self.j("migrate")
        self.assertEqual(v["applied"], 0)

        v = self.j("migrate", "--check")
        self.assertEqual(v["current"], v["latest"])

        v = self.j("version")
        for k in ("bandbill", "schema", "lua", "sqlite", "libevent", "openssl"):
            self.assertIn(k, v)

        v = self.j("config")
        self.assertEqual(v["db"], "./var/bandbill.db")

        v = self.j("token", "create", "--name", "jt", "--role", "admin")
        self.assertEqual((v["name"], v["role"]), ("jt", "admin"))
        self.assertTrue(v["token"])

        v = self.j("token", "list")
        self.assertEqual([t["name"] for t in v], ["jt"])
        self.assertIsNone(v[0]["revoked_at"])
        self.assertNotIn("token", v[0], "token list must never show token values")
        self.assertNotIn("token_hash", v[0])

        v = self.j("jobs", "list")
        self.assertEqual({x["name"] for x in v}, {"backup", "db.optimize", "outbox.deliver", "subscriptions.apply", "billing.run", "billing.renewals",
                                                  "payments.expire", "payments.query", "dunning.run"})

        v = self.j("rules", "check")
        self.assertTrue(v["ok"])
        self.assertTrue(bbtest.is_hex64(v["version"]))

        v = self.j("rules", "test")
        self.assertEqual(v["failed"], 0)
        self.assertEqual(v["total"], len(v["results"]))

        self.ws.ok("demo")
        v = self.j("rules", "show")
        self.assertEqual(len(v), 1)
        version = v[0]["version"]
        self.assertTrue(bbtest.is_hex64(version))
        v = self.j("rules", "show", version)
        self.assertEqual(v["version"], version)
        self.assertTrue(v["files"])

        v = self.j("token", "revoke", "jt")
        self.assertEqual(v, {"revoked": True})
        v = self.j("token", "list")
        self.assertIsNotNone(v[0]["revoked_at"])

    def test_token_value_is_not_stored(self):
        self.ws.init()
        tok = self.ws.token("secret")
        rows = self.ws.sql("SELECT name, token_hash, prefix FROM api_tokens")
        self.assertEqual(len(rows), 1)
        self.assertNotIn(tok, json.dumps(rows))
        self.assertTrue(tok.startswith(rows[0][2]))


class ConfigLayering(BBTestCase):
    init_db = False

    def config(self, *args, env=None):
        r = self.ws.run("config", "--json", *args, env=env)
        self.assertEqual(r.rc, 0, str(r))
        return json.loads(r.out)

    def test_defaults(self):
        c = self.config()
        self.assertEqual(c["db"], "./var/bandbill.db")
        self.assertEqual(c["rules"], "./rules")
        self.assertEqual(c["listen"], "127.0.0.1:8080")
        self.assertEqual(c["socket"], "./var/bandbill.sock")
        self.assertEqual(c["backup.dir"], "./var/backups")
        self.assertEqual(c["http.max_body_kb"], "1024")
        self.assertEqual(c["rules.watch"], "false")

    def test_defaults_file_env_flags(self):
        ini = self.ws.path("bandbill.ini")
        bbtest.write(ini, "; test config\n"
                          "db = /tmp/from-file.db\n"
                          "[log]\nlevel = warn\n"
                          "[http]\n"
                          "timeout_s = 11\n"
                          "shutdown_s = 7\n"
                          "max_body_kb = 12\n"
                          "[backup]\nkeep = 3\n")
        env = {"BANDBILL_HTTP_TIMEOUT_S": "22", "BANDBILL_HTTP_SHUTDOWN_S": "8", "BANDBILL_DB": "/tmp/from-env.db"}
        c = self.config("--config", ini, "--set", "http.shutdown_s=9", "--db", "/tmp/from-flag.db", env=env)
        self.assertEqual(c["http.max_body_kb"], "12")       # file over default
        self.assertEqual(c["backup.keep"], "3")             # file over default
        self.assertEqual(c["log.level"], "warn")            # file over default
        self.assertEqual(c["http.timeout_s"], "22")         # env over file
        self.assertEqual(c["http.shutdown_s"], "9")         # flag over env
        self.assertEqual(c["db"], "/tmp/from-flag.db")      # flag over env over file
        self.assertEqual(c["rules.max_instructions"], "5000000")  # untouched default
        # the derived socket follows the effective database
        self.assertEqual(c["socket"], "/tmp/bandbill.sock")

        c = self.config("--config", ini, env=env)
        self.assertEqual(c["db"], "/tmp/from-env.db")
        self.assertEqual(c["http.shutdown_s"], "8")

        c = self.config("--config", ini)
        self.assertEqual(c["db"], "/tmp/from-file.db")
        self.assertEqual(c["http.shutdown_s"], "7")

    def test_config_file_from_environment(self):
        ini = self.ws.path("env.ini")
        bbtest.write(ini, "[http]\ntimeout_s = 33\n")
        c = self.config(env={"BANDBILL_CONFIG": ini})
        self.assertEqual(c["http.timeout_s"], "33")
        # --config wins over BANDBILL_CONFIG
        other = self.ws.path("flag.ini")
        bbtest.write(other, "[http]\ntimeout_s = 44\n")
        c = self.config("--config", other, env={"BANDBILL_CONFIG": ini})
        self.assertEqual(c["http.timeout_s"], "44")

    def test_set_and_env_for_jobs(self):
        c = self.config("--set", "jobs.backup=off", env={"BANDBILL_JOBS_DB_OPTIMIZE": "0 5 * * *"})
        self.assertEqual(c["jobs.backup"], "off")
        self.assertEqual(c["jobs.db.optimize"], "0 5 * * *")

    def test_every_key_from_every_source(self):
        values = {"db": "/tmp/k/x.db", "rules": "/tmp/k/rules", "listen": "127.0.0.1:9", "socket": "/tmp/k/s.sock",
                  "timezone": "UTC", "log.level": "debug", "log.file": "/tmp/k/x.log",
                  "rules.max_instructions": "12345", "rules.max_memory_mb": "8", "rules.watch": "true",
                  "http.max_body_kb": "5", "http.timeout_s": "6", "http.shutdown_s": "7",
                  "backup.dir": "/tmp/k/bk", "backup.keep": "9", "keys.file": "/tmp/k/keys",
                  "auth.session_idle_min": "11", "auth.session_max_hours": "13",
                  "customer.code_prefix": "HZ", "audit.anchor_file": "/tmp/k/anchor",
                  "billing.invoice_prefix": "FP", "billing.credit_note_prefix": "HC", "plugins.dir": "/tmp/k/plugins",
                  "payments.query_after_min": "15",
                  "radius.db": "/tmp/k/radius.db", "radius.rate_format": "huawei", "radius.suspended": "walled_garden",
                  "radius.walled_garden_group": "unpaid", "radius.walled_garden_reply": "Mikrotik-Address-List := unpaid",
                  "radius.poll_ms": "150", "radius.coa_timeout_ms": "700", "radius.coa_retries": "3",
                  "notify.dispatch": "false", "notify.max_attempts": "5", "notify.backoff_base_s": "17",
                  "notify.backoff_factor": "3", "notify.backoff_cap_s": "600", "notify.backoff_jitter_pct": "10",
                  "notify.timeout_s": "4", "notify.concurrency": "8", "notify.poll_ms": "250"}
        # tls.cert and tls.key only come in pairs (tested below)
        self.assertEqual(set(values) | {"tls.cert", "tls.key"}, set(self.config()), "a config key without a test value")
        for key, val in values.items():
            with self.subTest(key=key):
                env_name = "BANDBILL_" + key.replace(".", "_").upper()
                self.assertEqual(self.config(env={env_name: val})[key], val, env_name)
                self.assertEqual(self.config("--set", "%s=%s" % (key, val))[key], val)
                sec, _, name = key.rpartition(".")
                ini = self.ws.path("k.ini")
                bbtest.write(ini, ("[%s]\n" % sec if sec else "") + "%s = %s\n" % (name, val))
                self.assertEqual(self.config("--config", ini)[key], val)

    def test_unknown_key_in_file_names_file_and_line(self):
        ini = self.ws.path("bad.ini")
        bbtest.write(ini, "[http]\ntimeout_s = 10\n\n[log]\nlevle = debug\n")
        r = self.ws.run("config", "--config", ini)
        self.assertOneErrorLine(r, "%s:5" % ini, "log.levle")

    def test_bad_value_in_file_names_file_and_line(self):
        ini = self.ws.path("bad.ini")
        bbtest.write(ini, "[http]\ntimeout_s = soon\n")
        r = self.ws.run("config", "--config", ini)
        self.assertOneErrorLine(r, "%s:2" % ini, "http.timeout_s")

    def test_missing_config_file(self):
        r = self.ws.run("config", "--config", self.ws.path("nope.ini"))
        self.assertOneErrorLine(r, "nope.ini")

    def test_unknown_environment_variable(self):
        r = self.ws.run("config", env={"BANDBILL_FOO": "1"})
        self.assertOneErrorLine(r, "BANDBILL_FOO")
        r = self.ws.run("version", env={"BANDBILL_FOO": "1"})
        self.assertOneErrorLine(r, "BANDBILL_FOO")

    def test_bad_environment_value(self):
        r = self.ws.run("config", env={"BANDBILL_HTTP_TIMEOUT_S": "soon"})
        self.assertOneErrorLine(r, "BANDBILL_HTTP_TIMEOUT_S")

    def test_bad_flag_values(self):
        cases = [("--set", "http.max_body_kb=0"), ("--set", "nosuch.key=1"), ("--set", "rules.watch=maybe"),
                 ("--set", "timezone=Mars/Olympus"), ("--set", "log.level=loud"), ("--set", "jobs.backup=61 * * * *"),
                 ("--set", "jobs.nosuchjob=off")]
        for args in cases:
            with self.subTest(args=args):
                r = self.ws.run("config", *args)
                self.assertOneErrorLine(r)


class InitAndMigrate(BBTestCase):
    init_db = False

    def test_init_creates_private_folder_and_file(self):
        db = self.ws.path("deep", "er", "x.db")
        r = self.ws.run("init", "--db", db)
        self.assertEqual(r.rc, 0, str(r))
        self.assertIn(db, r.out)
        self.assertEqual(stat.S_IMODE(os.stat(db).st_mode), 0o600)
        self.assertEqual(stat.S_IMODE(os.stat(os.path.dirname(db)).st_mode), 0o700)

    def test_init_twice_is_harmless(self):
        first = json.loads(self.ws.ok("init", "--json").out)
        self.assertGreaterEqual(first["applied"], 1)
        self.ws.token("keeper")
        again = json.loads(self.ws.ok("init", "--json").out)
        self.assertEqual(again["applied"], 0)
        self.assertEqual(again["schema"], first["schema"])
        names = [t["name"] for t in json.loads(self.ws.ok("token", "list", "--json").out)]
        self.assertEqual(names, ["keeper"])

    def test_migrate_check(self):
        self.ws.init()
        r = self.ws.run("migrate", "--check")
        self.assertEqual(r.rc, 0, str(r))
        self.assertNotIn("pending", r.out)

    def test_migrate_check_reports_pending_then_migrate_applies(self):
        # an existing SQLite file that has never seen bandbill
        self.ws.sql("CREATE TABLE unrelated (x)")
        r = self.ws.run("migrate", "--check", "--json")
        self.assertEqual(r.rc, 1, str(r))
        v = json.loads(r.out)
        self.assertEqual(v["current"], 0)
        self.assertGreaterEqual(v["latest"], 1)
        r = self.ws.run("migrate", "--check")
        self.assertEqual(r.rc, 1, str(r))
        self.assertIn("pending", r.out)
        # commands that need the schema refuse and point at migrate
        r = self.ws.run("token", "list")
        self.assertOneErrorLine(r, "bandbill migrate")
        v = json.loads(self.ws.ok("migrate", "--json").out)
        self.assertEqual(v["applied"], v["schema"])
        self.assertEqual(self.ws.run("migrate", "--check").rc, 0)
        self.assertEqual(self.ws.sql("SELECT x FROM unrelated"), [])

    def test_migrate_needs_an_existing_database(self):
        r = self.ws.run("migrate", "--db", self.ws.path("var", "missing.db"))
        self.assertOneErrorLine(r)
        self.assertFalse(os.path.exists(self.ws.path("var", "missing.db")))


if __name__ == "__main__":
    unittest.main()
