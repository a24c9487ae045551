"""The security core: permissions of every route for every role, console
sessions and CSRF, login throttling and lockout, passwords, field
visibility, the audit trail, encryption at rest, TLS, and access to other
users' objects (IDOR).

Tests named test_bug_* describe a defect found by this suite; they fail
until it is fixed.
"""

import base64
import datetime
import hashlib
import hmac
import http.client
import json
import os
import re
import signal
import socket
import ssl
import sqlite3
import subprocess
import sys
import time
import unittest

import bbtest
import sectest
from bbtest import BBTestCase
from sectest import PASSWORD, add_user, login, try_login

NEW_PASSWORD = "Sw1tched-Otter-77"


def err_code(resp):
    return resp.body.get("error", {}).get("code") if isinstance(resp.body, dict) else None


class SharedDaemonCase(unittest.TestCase):
    """One workspace and one daemon for every test of the class (for tests
    that only read, or change disjoint things)."""

    serve_args = ()

    @classmethod
    def setUpClass(cls):
        if not os.access(bbtest.BIN, os.X_OK):
            raise unittest.SkipTest("no bandbill binary at %s (set BB_BIN)" % bbtest.BIN)
        cls.ws = bbtest.Workspace()
        try:
            cls.ws.init()
            cls.prepare()
            cls.srv = cls.ws.serve(*cls.serve_args)
            cls.after_start()
        except BaseException:
            cls.ws.close()
            raise

    @classmethod
    def prepare(cls):
        pass

    @classmethod
    def after_start(cls):
        pass

    @classmethod
    def tearDownClass(cls):
        cls.ws.close()

    assertError = BBTestCase.assertError


class SecCase(BBTestCase):
    def start(self, *args, **kw):
        self.srv = self.ws.serve(*args, **kw)
        return self.srv

    @property
    def port(self):
        return self.srv.port


# ======================================================= 1. the route walk

class RouteWalk(SharedDaemonCase):
    """Every route for every built-in role: 403 exactly when the role lacks
    the route's permission, and every denial in the audit trail.

    The routes come from core/routes.c, parsed with a regular expression
    (sectest.parse_routes): the binary has no listing of its routes."""

    @classmethod
    def prepare(cls):
        cls.routes = sectest.parse_routes()
        cls.admin_token = cls.ws.token("walk-admin", "admin")
        for role in sectest.BUILTIN_ROLES:
            add_user(cls.ws, "walk-" + role.replace("_", "-"), role)

    @classmethod
    def after_start(cls):
        r = cls.srv.get("/api/v1/roles", token=cls.admin_token)
        assert r.status == 200, r
        cls.roles = {x["name"]: x for x in r.body["data"]}

    def role_perms(self, role):
        return set(self.roles[role]["permissions"])

    def allowed(self, role, perm):
        p = self.role_perms(role)
        return "*" in p or perm in p

    def ordered_routes(self):
        """Protected routes; logout last (it ends the caller's session)."""
        rs = [r for r in self.routes if r.perm is not None]
        return sorted(rs, key=lambda r: (r.method, r.pattern) == ("POST", "/api/v1/auth/logout"))

    def walk(self, kind, callers):
        """callers: {role: (actor label, send(method, path, body, rid))}."""
        t0 = time.monotonic()
        problems, denied, permitted = [], {}, {}
        n = 0
        for role, (actor, send) in callers.items():
            for i, rt in enumerate(self.ordered_routes()):
                rid = "walk-%s-%s-%d" % (kind, role, i)
                body = {} if rt.method in ("POST", "PUT", "PATCH") else None
                path = sectest.fill_path(rt.pattern)
                r = send(rt.method, path, body, rid)
                n += 1
                want_ok = self.allowed(role, rt.perm)
                where = "%s %s %s (%s):" % (role, rt.method, rt.pattern, rt.perm)
                if want_ok and r.status == 403:
                    problems.append("%s role has the permission, got 403 %s" % (where, r.body))
                elif not want_ok and (r.status != 403 or err_code(r) != "forbidden"):
                    problems.append("%s role lacks the permission, expected 403 forbidden, got %s %s" % (where, r.status, r.body))
                if r.status in (401, 500):
                    problems.append("%s unexpected %s %s" % (where, r.status, r.body))
                (permitted if want_ok else denied)[rid] = (role, actor, rt)
        elapsed = time.monotonic() - t0
        sys.stderr.write("\n  route walk (%s): %d routes x %d roles = %d requests in %.2f s\n"
                         % (kind, len(self.ordered_routes()), len(callers), n, elapsed))

        # every denial wrote an access.denied record (queued: written within
        # 100 ms); nothing else did
        sectest.audit_barrier(self.ws, self.srv)
        recs = {r["request_id"]: r for r in sectest.audit(self.ws, "action = 'access.denied' AND request_id LIKE ?",
                                                            ("walk-%s-%%" % kind,))}
        for rid, (role, actor, rt) in denied.items():
            rec = recs.get(rid)
            if not rec:
                problems.append("%s %s %s: no access.denied audit record (request %s)" % (role, rt.method, rt.pattern, rid))
                continue
            detail = (rec["diff"] or {}).get("detail", {})
            got = (rec["actor"], rec["role"], rec["object_type"], rec["object_id"], rec["source"],
                   detail.get("permission"), detail.get("method"))
            want = (actor, role, "route", rt.pattern, "127.0.0.1", rt.perm, rt.method)
            if got != want:
                problems.append("%s: access.denied record %s, expected %s" % (rid, got, want))
        for rid in permitted:
            if rid in recs:
                problems.append("%s: a permitted request wrote access.denied: %s" % (rid, recs[rid]))
        self.assertEqual(problems, [], "\n" + "\n".join(problems))
        self.assertGreater(len(denied), 0)
        return elapsed

    def test_the_route_table_is_what_the_walk_expects(self):
        pats = {(r.method, r.pattern) for r in self.routes}
        # the payment channels' notifications are authenticated by the channel's signature
        public_routes = (("GET", "/healthz"), ("GET", "/metrics"), ("POST", "/api/v1/auth/login"),
                         ("POST", "/api/v1/notify/{channel}"))
        for public in public_routes:
            self.assertIn(public, pats)
            self.assertIsNone([r for r in self.routes if (r.method, r.pattern) == public][0].perm)
        # only those are public
        self.assertEqual(sum(1 for r in self.routes if r.perm is None), len(public_routes),
                         [r for r in self.routes if r.perm is None])
        self.assertEqual(set(self.roles), set(sectest.BUILTIN_ROLES))
        for name in sectest.BUILTIN_ROLES:
            self.assertTrue(self.roles[name]["builtin"], name)
        self.assertEqual(self.role_perms("admin"), {"*"})

    def test_every_route_every_role_with_a_session(self):
        callers = {}
        for role in sectest.BUILTIN_ROLES:
            c = login(self.srv.port, "walk-" + role.replace("_", "-"))

            def send(method, path, body, rid, c=c):
                return c.request(method, path, body=body, rid=rid)

            callers[role] = ("user:" + c.username, send)
        elapsed = self.walk("s", callers)
        self.assertLess(elapsed, 60)

    def test_every_route_every_role_with_a_token(self):
        callers = {}
        for role in sectest.BUILTIN_ROLES:
            name = "walk-tok-" + role.replace("_", "-")
            tok = self.ws.token(name, role)

            def send(method, path, body, rid, tok=tok):
                return self.srv.request(method, path, body=body, token=tok, headers={"X-Request-Id": rid})

            callers[role] = ("token:" + name, send)
        elapsed = self.walk("t", callers)
        self.assertLess(elapsed, 60)


# ============================================================ 2. sessions

class Sessions(SecCase):
    def setUp(self):
        super().setUp()
        add_user(self.ws, "root1", "admin")
        add_user(self.ws, "clerk1", "customer_service")

    def test_login_sets_a_strict_httponly_cookie_without_secure_over_http(self):
        self.start()
        r, _ = try_login(self.port, "root1", PASSWORD)
        self.assertEqual(r.status, 200, r.body)
        cookies = r.headers.get_all("Set-Cookie")
        self.assertEqual(len(cookies), 1, cookies)
        name, value, attrs = sectest.parse_set_cookie(cookies[0])
        self.assertEqual(name, "bb_session")
        self.assertRegex(value, r"^[0-9a-f]{64}$")
        self.assertIs(attrs.get("httponly"), True, cookies)
        self.assertEqual(attrs.get("samesite"), "Strict", cookies)
        self.assertNotIn("secure", attrs, cookies)
        self.assertEqual(attrs.get("path"), "/", cookies)
        self.assertEqual(attrs.get("max-age"), str(12 * 3600), cookies)   # auth.session_max_hours default 12
        self.assertRegex(r.body["csrf_token"], r"^[0-9a-f]{64}$")
        self.assertNotEqual(r.body["csrf_token"], value)
        self.assertEqual((r.body["username"], r.body["role"]), ("root1", "admin"))
        # only hashes are stored
        row = sectest.rows(self.ws, "SELECT * FROM sessions")[0]
        self.assertEqual(row["token_hash"], hashlib.sha256(value.encode()).hexdigest())
        self.assertEqual(row["csrf_hash"], hashlib.sha256(r.body["csrf_token"].encode()).hexdigest())
        self.assertNotIn(value, json.dumps(sectest.rows(self.ws, "SELECT * FROM sessions")))
        # an audit record of the login
        rec = sectest.audit(self.ws, "action = 'auth.login'")
        self.assertEqual([(x["actor"], x["object_id"]) for x in rec], [("user:root1", "root1")])

    def test_bug_sessions_never_record_the_user_agent(self):
        """BUG (found by this suite): the sessions table and the session
        lists have a user_agent (what lets a user spot a session that is
        not theirs), but login_done (core/api_auth.c) passes
        `const char *ua = NULL` to session_create, so it is always ""."""
        self.start()
        r, _ = try_login(self.port, "clerk1", PASSWORD, headers={"User-Agent": "SecTest/1.0 (console)"})
        self.assertEqual(r.status, 200)
        self.assertEqual(self.ws.sql("SELECT user_agent FROM sessions")[0][0], "SecTest/1.0 (console)")

    def test_me_with_the_cookie_returns_the_csrf_token(self):
        self.start()
        c = login(self.port, "clerk1")
        r = c.get("/api/v1/auth/me", csrf=False)
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(r.body["csrf_token"], c.csrf)
        self.assertEqual(r.body["username"], "clerk1")
        self.assertEqual(r.body["role"], "customer_service")
        self.assertEqual(r.body["principal"], "user:clerk1")
        # no cookie, a made-up cookie: 401
        self.assertError(self.srv.get("/api/v1/auth/me"), 401, "unauthorized")
        r = self.srv.get("/api/v1/auth/me", headers={"Cookie": "bb_session=" + "0" * 64})
        self.assertError(r, 401, "unauthorized")

    def test_csrf_token_required_for_changes_with_a_cookie(self):
        self.start()
        c = login(self.port, "root1")
        other = login(self.port, "clerk1")
        path, change = "/api/v1/users/root1", {"display_name": "Root One"}

        r = c.request("PATCH", path, body=change, csrf=False)
        err = self.assertError(r, 403, "csrf_failed")
        self.assertEqual(err["field"], "X-CSRF-Token")
        for bad in ("0" * 64, c.csrf[:-1], c.csrf.upper(), other.csrf, c.cookie, ""):
            with self.subTest(token=bad[:10]):
                # csrf=False and the header given by hand, so that "" is sent as an empty header
                r = c.request("PATCH", path, body=change, csrf=False, headers={"X-CSRF-Token": bad})
                self.assertError(r, 403, "csrf_failed")
        self.assertEqual(self.ws.sql("SELECT display_name FROM staff_users WHERE username = 'root1'")[0][0], "root1")
        # reads need no token
        self.assertEqual(c.get("/api/v1/users/root1", csrf=False).status, 200)
        # the right token
        r = c.request("PATCH", path, body=change)
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(r.body["display_name"], "Root One")
        self.assertEqual(self.ws.sql("SELECT display_name FROM staff_users WHERE username = 'root1'")[0][0], "Root One")

    def test_csrf_on_every_changing_method(self):
        self.start()
        c = login(self.port, "root1")
        other = login(self.port, "root1")
        cases = [("PUT", "/api/v1/roles/auditor", {"description": "x"}),
                 ("DELETE", "/api/v1/auth/sessions/%d" % other.session_id(self.ws), None),
                 ("POST", "/api/v1/users", {"username": "csrf-x", "role": "analyst", "password": PASSWORD}),
                 ("POST", "/api/v1/rules/reload", {})]
        mark = sectest.audit_max_id(self.ws)
        for method, path, body in cases:
            with self.subTest(method=method, path=path):
                self.assertError(c.request(method, path, body=body, csrf=False), 403, "csrf_failed")
        self.assertEqual(sectest.audit(self.ws, "id > ? AND action != 'access.denied' AND actor != 'system'", (mark,)), [])
        self.assertEqual(other.me().status, 200)
        self.assertEqual(self.ws.sql("SELECT count(*) FROM staff_users WHERE username = 'csrf-x'"), [(0,)])
        # a POST that only reads (rules/call) needs none
        r = c.post("/api/v1/rules/call", {"function": "tax.split", "input": {"gross": 100, "category": "internet"}},
                   csrf=False)
        self.assertEqual(r.status, 200, r.body)
        # a bearer token needs none either (no cookie rides along with it)
        tok = self.ws.token()
        r = self.srv.request("PATCH", "/api/v1/users/root1", body={"display_name": "By Token"}, token=tok)
        self.assertEqual(r.status, 200, r.body)

    def test_logout_ends_the_session(self):
        self.start()
        c = login(self.port, "clerk1")
        keep = login(self.port, "clerk1")
        self.assertError(c.post("/api/v1/auth/logout", csrf=False), 403, "csrf_failed")
        r = c.post("/api/v1/auth/logout")
        self.assertEqual(r.status, 200, r.body)
        self.assertIs(r.body["logged_out"], True)
        name, value, attrs = sectest.parse_set_cookie(r.headers["Set-Cookie"])
        self.assertEqual((name, value, attrs.get("max-age")), ("bb_session", "", "0"))
        self.assertError(c.me(), 401, "unauthorized")
        self.assertError(c.post("/api/v1/auth/logout"), 401, "unauthorized")
        self.assertEqual(keep.me().status, 200)   # only that session
        row = sectest.rows(self.ws, "SELECT revoked_at, revoked_why FROM sessions WHERE id = ?", (c.session_id(self.ws),))[0]
        self.assertEqual(row["revoked_why"], "logout")

    def test_password_change_ends_the_other_sessions_only(self):
        self.start()
        a = login(self.port, "clerk1")
        b = login(self.port, "clerk1")
        boss = login(self.port, "root1")
        r = a.post("/api/v1/auth/password", {"current": "Wrong-Passw0rd-1", "new": NEW_PASSWORD})
        self.assertError(r, 403, "invalid_credentials")
        r = a.post("/api/v1/auth/password", {"current": PASSWORD, "new": "short1A!"})
        self.assertError(r, 400, "weak_password")
        self.assertEqual(b.me().status, 200)
        r = a.post("/api/v1/auth/password", {"current": PASSWORD, "new": NEW_PASSWORD})
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(a.me().status, 200)
        self.assertError(b.me(), 401, "unauthorized")
        self.assertEqual(boss.me().status, 200)       # other users keep theirs
        self.assertEqual(try_login(self.port, "clerk1", PASSWORD)[0].status, 401)
        self.assertEqual(try_login(self.port, "clerk1", NEW_PASSWORD)[0].status, 200)
        self.assertEqual([x["object_id"] for x in sectest.audit(self.ws, "action = 'user.password'")], ["clerk1"])

    def test_disabling_a_user_ends_all_its_sessions(self):
        self.start()
        boss = login(self.port, "root1")
        a = login(self.port, "clerk1")
        b = login(self.port, "clerk1")
        r = boss.request("PATCH", "/api/v1/users/clerk1", body={"status": "disabled"})
        self.assertEqual(r.status, 200, r.body)
        self.assertError(a.me(), 401, "unauthorized")
        self.assertError(b.me(), 401, "unauthorized")
        self.assertEqual(boss.me().status, 200)
        whys = {x["revoked_why"] for x in sectest.rows(self.ws, "SELECT revoked_why FROM sessions WHERE user_id = ?",
                                                      (sectest.user_id(self.ws, "clerk1"),))}
        self.assertEqual(whys, {"account disabled"})
        # a disabled account cannot log in, and is told no more than for a wrong password
        wrong, _ = try_login(self.port, "clerk1", "Wrong-Passw0rd-1")
        r, _ = try_login(self.port, "clerk1", PASSWORD)
        self.assertEqual((r.status, r.body), (wrong.status, wrong.body))
        self.assertError(r, 401, "invalid_credentials")
        # enabled again: logs in
        boss.request("PATCH", "/api/v1/users/clerk1", body={"status": "active"})
        self.assertEqual(try_login(self.port, "clerk1", PASSWORD)[0].status, 200)

    def test_role_change_and_password_reset_end_the_users_sessions(self):
        self.start()
        boss = login(self.port, "root1")
        a = login(self.port, "clerk1")
        r = boss.request("PATCH", "/api/v1/users/clerk1", body={"role": "analyst"})
        self.assertEqual(r.status, 200, r.body)
        self.assertError(a.me(), 401, "unauthorized")
        b = login(self.port, "clerk1")
        self.assertEqual(b.me().body["role"], "analyst")
        r = boss.post("/api/v1/users/clerk1/password", {"password": NEW_PASSWORD})
        self.assertEqual(r.status, 200, r.body)
        self.assertError(b.me(), 401, "unauthorized")
        self.assertEqual(boss.me().status, 200)
        self.assertEqual(try_login(self.port, "clerk1", NEW_PASSWORD)[0].status, 200)
        # without a password one is generated and shown once
        r = boss.post("/api/v1/users/clerk1/password")
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(try_login(self.port, "clerk1", r.body["password"])[0].status, 200)

    def test_cli_disable_ends_all_sessions(self):
        self.start()
        a = login(self.port, "clerk1")
        self.ws.ok("user", "disable", "clerk1", "--db", self.ws.db)
        self.assertError(a.me(), 401, "unauthorized")
        self.assertEqual(try_login(self.port, "clerk1", PASSWORD)[0].status, 401)
        self.ws.ok("user", "enable", "clerk1", "--db", self.ws.db)
        self.assertEqual(login(self.port, "clerk1").me().status, 200)
        self.assertEqual(a.me().status, 401)   # the old session stays ended

    def test_idle_session_ends(self):
        self.start("--set", "auth.session_idle_min=1")
        c = login(self.port, "clerk1")
        sid = c.session_id(self.ws)
        self.ws.sql("UPDATE sessions SET last_seen_at = ? WHERE id = ?", (sectest.db_time_ago(30), sid))
        self.assertEqual(c.me().status, 200)         # 30 s idle: fine
        self.ws.sql("UPDATE sessions SET last_seen_at = ? WHERE id = ?", (sectest.db_time_ago(120), sid))
        err = self.assertError(c.me(), 401, "unauthorized")
        self.assertIn("idle", err["message"])
        self.assertEqual(self.ws.sql("SELECT revoked_why FROM sessions WHERE id = ?", (sid,))[0][0], "idle")
        # it stays ended even once it no longer looks idle
        self.ws.sql("UPDATE sessions SET last_seen_at = ? WHERE id = ?", (sectest.db_time_ago(0), sid))
        self.assertError(c.me(), 401, "unauthorized")

    def test_bug_active_session_ended_as_idle_with_idle_min_1(self):
        """BUG (found by this suite): session_lookup (core/session.c) writes
        last_seen_at only when it is at least TOUCH_EVERY_MS (60 s) old, but
        checks idleness against that same stale last_seen_at. With
        auth.session_idle_min=1 (the documented minimum) a session that is
        used every 30 s is ended as idle 60 s after login: a request 45 s
        after the last recorded activity is served but not recorded, and 30
        s later (75 s after the recorded activity, 30 s after the last use)
        the session is "idle". With any setting the effective idle time is
        up to a minute shorter than configured.

        Simulated by shifting the stored times back instead of waiting:
        last_seen_at 45 s ago, one request, then everything 30 s older."""
        self.start("--set", "auth.session_idle_min=1")
        c = login(self.port, "clerk1")
        sid = c.session_id(self.ws)
        self.ws.sql("UPDATE sessions SET last_seen_at = ? WHERE id = ?", (sectest.db_time_ago(45), sid))
        self.assertEqual(c.me().status, 200)     # used now, 45 s after the last recorded use
        seen = sectest.parse_db_time(self.ws.sql("SELECT last_seen_at FROM sessions WHERE id = ?", (sid,))[0][0])
        # 30 seconds pass: the last use is now 30 s ago
        self.ws.sql("UPDATE sessions SET last_seen_at = ? WHERE id = ?",
                    (sectest.db_time(seen - datetime.timedelta(seconds=30)), sid))
        r = c.me()
        self.assertEqual(r.status, 200, "a session used 30 s ago was ended with auth.session_idle_min=1: %s" % (r.body,))

    def test_absolute_expiry(self):
        self.start()
        c = login(self.port, "clerk1")
        sid = c.session_id(self.ws)
        row = sectest.rows(self.ws, "SELECT created_at, expires_at FROM sessions WHERE id = ?", (sid,))[0]
        lifetime = sectest.parse_db_time(row["expires_at"]) - sectest.parse_db_time(row["created_at"])
        self.assertEqual(lifetime, datetime.timedelta(hours=12))
        self.assertEqual(c.login_resp.body["expires_at"], row["expires_at"])
        self.ws.sql("UPDATE sessions SET expires_at = ? WHERE id = ?", (sectest.db_time_ago(1), sid))
        err = self.assertError(c.me(), 401, "unauthorized")
        self.assertIn("expired", err["message"])

    def test_max_hours_setting(self):
        self.start("--set", "auth.session_max_hours=2")
        c = login(self.port, "clerk1")
        _, _, attrs = sectest.parse_set_cookie(c.login_resp.headers["Set-Cookie"])
        self.assertEqual(attrs["max-age"], "7200")
        row = sectest.rows(self.ws, "SELECT created_at, expires_at FROM sessions")[0]
        self.assertEqual(sectest.parse_db_time(row["expires_at"]) - sectest.parse_db_time(row["created_at"]),
                         datetime.timedelta(hours=2))

    def test_list_own_sessions(self):
        self.start()
        a = login(self.port, "clerk1")
        b = login(self.port, "clerk1")
        login(self.port, "root1")
        r = a.get("/api/v1/auth/sessions")
        self.assertEqual(r.status, 200, r.body)
        ids = [s["id"] for s in r.body["data"]]
        self.assertEqual(sorted(ids), sorted([a.session_id(self.ws), b.session_id(self.ws)]))
        current = [s["id"] for s in r.body["data"] if s["current"]]
        self.assertEqual(current, [a.session_id(self.ws)])
        for s in r.body["data"]:
            self.assertEqual(s["source"], "127.0.0.1")
            self.assertIsNone(s["revoked_at"])
            self.assertNotIn("token_hash", s)
            self.assertNotIn("csrf_hash", s)

    def test_end_sessions_by_id(self):
        self.start()
        boss = login(self.port, "root1")
        boss2 = login(self.port, "root1")
        a = login(self.port, "clerk1")
        a2 = login(self.port, "clerk1")
        # someone else's session does not exist for a non-admin (404, not 403)
        r = a.request("DELETE", "/api/v1/auth/sessions/%d" % boss.session_id(self.ws))
        err = self.assertError(r, 404, "not_found")
        r2 = a.request("DELETE", "/api/v1/auth/sessions/987654")
        err2 = self.assertError(r2, 404, "not_found")
        self.assertEqual((err["field"], err["message"].replace(str(boss.session_id(self.ws)), "N")),
                         (err2["field"], err2["message"].replace("987654", "N")))
        self.assertEqual(boss.me().status, 200)
        # one's own other session: ended
        r = a.request("DELETE", "/api/v1/auth/sessions/%d" % a2.session_id(self.ws))
        self.assertEqual(r.status, 200, r.body)
        self.assertError(a2.me(), 401, "unauthorized")
        # an admin ends anyone's
        r = boss.request("DELETE", "/api/v1/auth/sessions/%d" % a.session_id(self.ws))
        self.assertEqual(r.status, 200, r.body)
        self.assertError(a.me(), 401, "unauthorized")
        self.assertEqual(boss.me().status, 200)
        self.assertEqual(boss2.me().status, 200)
        whys = dict(self.ws.sql("SELECT id, revoked_why FROM sessions WHERE revoked_at IS NOT NULL"))
        self.assertEqual(whys, {a2.session_id(self.ws): "ended by its user",
                                a.session_id(self.ws): "ended by an administrator"})
        revokes = [(x["actor"], x["object_id"]) for x in sectest.audit(self.ws, "action = 'session.revoke'")]
        self.assertEqual(revokes, [("user:clerk1", str(a2.session_id(self.ws))), ("user:root1", str(a.session_id(self.ws)))])


# ============================================================ 3. throttling

class Throttling(SecCase):
    """Failed logins are concurrent where the delays would otherwise add up:
    a delayed reply waits on a timer, so the daemon counts the failures at
    once and answers them all within the longest delay (8 s)."""

    def setUp(self):
        super().setUp()
        add_user(self.ws, "lock1", "customer_service")
        self.admin = self.ws.token("thr-admin", "admin")
        self.start()

    def fail_many(self, names):
        res = sectest.parallel(try_login, [(self.port, n, "Wrong-Passw0rd-%d" % i) for i, n in enumerate(names)])
        for r in res:
            if isinstance(r, BaseException):
                raise r
        return res

    def test_third_failure_delayed_tenth_locks_account(self):
        r1, t1 = try_login(self.port, "lock1", "Wrong-Passw0rd-1")
        r2, t2 = try_login(self.port, "lock1", "Wrong-Passw0rd-2")
        r3, t3 = try_login(self.port, "lock1", "Wrong-Passw0rd-3")
        for r in (r1, r2, r3):
            self.assertError(r, 401, "invalid_credentials")
        self.assertLess(t1, 0.9)      # not delayed (the time is the password hashing)
        self.assertLess(t2, 0.9)
        self.assertGreaterEqual(t3, 0.9)   # delayed 1 s
        res = self.fail_many(["lock1"] * 7)     # failures 4..10
        self.assertEqual([r.status for r, _ in res], [401] * 7)
        self.assertGreaterEqual(max(t for _, t in res), 7.5)   # the delay caps at 8 s
        # locked: even the right password is refused, at once
        r, t = try_login(self.port, "lock1", PASSWORD)
        err = self.assertError(r, 423, "account_locked")
        self.assertEqual(err["field"], "username")
        self.assertLess(t, 0.8)
        self.assertError(try_login(self.port, "lock1", "Wrong-Passw0rd-x")[0], 423, "account_locked")
        until = sectest.parse_db_time(self.ws.sql("SELECT locked_until FROM staff_users WHERE username = 'lock1'")[0][0])
        left = (until - sectest.utc_now()).total_seconds()
        self.assertTrue(28 * 60 < left <= 30 * 60, left)
        # in the audit trail and the log
        locked = sectest.audit(self.ws, "action = 'auth.locked'")
        self.assertEqual([(x["object_type"], x["object_id"]) for x in locked], [("user", "lock1")])
        self.assertEqual(locked[0]["diff"]["detail"]["locked_until"],
                         self.ws.sql("SELECT locked_until FROM staff_users WHERE username = 'lock1'")[0][0])
        self.assertEqual(len(sectest.audit(self.ws, "action = 'auth.login_failed' AND object_id = 'lock1'")), 10)
        rec = self.srv.wait_event("account_locked")
        self.assertEqual(rec["level"], "warn")
        self.assertIn("lock1", rec["msg"])
        # the CLI lifts it
        r = self.ws.ok("user", "unlock", "lock1", "--db", self.ws.db)
        self.assertIn("lock1", r.out)
        self.assertEqual(try_login(self.port, "lock1", PASSWORD)[0].status, 200)
        unlock = sectest.audit(self.ws, "action = 'user.unlock'")
        self.assertEqual([(x["object_id"], x["source"]) for x in unlock], [("lock1", "cli")])

    def test_admin_unlocks_over_the_api(self):
        # a lock as the daemon leaves it (locked_until ahead)
        self.ws.sql("UPDATE staff_users SET locked_until = ?, failed_logins = 10 WHERE username = 'lock1'",
                    (sectest.db_time(sectest.utc_now() + datetime.timedelta(minutes=20)),))
        self.assertError(try_login(self.port, "lock1", PASSWORD)[0], 423, "account_locked")
        cs = self.ws.token("thr-cs", "customer_service")
        self.assertError(self.srv.post("/api/v1/users/lock1/unlock", token=cs), 403, "forbidden")
        self.assertError(try_login(self.port, "lock1", PASSWORD)[0], 423, "account_locked")
        r = self.srv.post("/api/v1/users/lock1/unlock", token=self.admin)
        self.assertEqual(r.status, 200, r.body)
        self.assertIs(r.body["unlocked"], True)
        self.assertEqual(try_login(self.port, "lock1", PASSWORD)[0].status, 200)
        self.assertError(self.srv.post("/api/v1/users/nobody/unlock", token=self.admin), 404)

    def test_unknown_user_gets_the_same_401(self):
        wrong, _ = try_login(self.port, "lock1", "Wrong-Passw0rd-1")
        unknown, _ = try_login(self.port, "no-such-user", "Wrong-Passw0rd-1")
        self.assertError(wrong, 401, "invalid_credentials")
        self.assertEqual((unknown.status, unknown.body), (wrong.status, wrong.body))
        self.assertEqual(sorted(k for k in unknown.headers.keys() if k.lower() not in ("date", "x-request-id")),
                         sorted(k for k in wrong.headers.keys() if k.lower() not in ("date", "x-request-id")))

    def test_bug_lockout_reveals_which_user_names_exist(self):
        """BUG (found by this suite): after 10 failed logins a real account
        answers 423 account_locked (at once), an unknown name keeps
        answering 401 (after the delay), so anyone can tell which user
        names exist, against the stated intent of api_auth.c ("the answer
        does not tell which it was"). throttle_fail records the lock of the
        subject "user:NAME" for unknown names too (login_failures), but
        api_auth_login only looks at staff_users.locked_until."""
        self.fail_many(["lock1"] * 10 + ["ghost-user"] * 10)
        known, _ = try_login(self.port, "lock1", "Wrong-Passw0rd-z")
        unknown, _ = try_login(self.port, "ghost-user", "Wrong-Passw0rd-z")
        self.assertEqual((unknown.status, err_code(unknown)), (known.status, err_code(known)),
                         "after 10 failures: real account %s, unknown name %s" % (known.status, unknown.status))

    def test_address_locked_after_30_failures(self):
        """Thirty real failed logins from 127.0.0.1 (sent concurrently, each
        with another user name), not a pre-filled login_failures table."""
        res = self.fail_many(["someone-%02d" % i for i in range(30)])
        self.assertEqual([r.status for r, _ in res], [401] * 30)
        for name in ("lock1", "someone-00"):
            r, t = try_login(self.port, name, PASSWORD)
            self.assertError(r, 429, "too_many_attempts")
            self.assertLess(t, 0.8)
            retry = r.headers.get("Retry-After")
            self.assertIsNotNone(retry, r.headers)
            self.assertTrue(retry.isdigit() and 850 <= int(retry) <= 901, retry)
        # the account itself is not locked: once the address lock is lifted it logs in
        self.assertIsNone(self.ws.sql("SELECT locked_until FROM staff_users WHERE username = 'lock1'")[0][0])
        self.ws.sql("DELETE FROM login_failures WHERE subject = 'addr:127.0.0.1'")
        self.assertEqual(try_login(self.port, "lock1", PASSWORD)[0].status, 200)


# ============================================================= 4. passwords

WEAK = [
    ("Ab1!xyz", "at least 10 characters"),
    ("abcdefghijkl", "three of"),
    ("ABCDEFGH1234", "three of"),
    ("MyPassword1!", "too common"),
    ("Qwertyuiop#7", "too common"),
    ("Xx-Carol-2026", "must not contain the user name"),
    ("Aa1!" * 65, "at most 256"),
]


class Passwords(SecCase):
    def test_weak_passwords_refused_by_the_cli(self):
        for pw, why in WEAK:
            with self.subTest(pw=pw[:20]):
                r = self.ws.run("user", "add", "carol", "--role", "analyst", "--password-stdin", "--db", self.ws.db,
                                input=pw + "\n")
                self.assertOneErrorLine(r, why)
                self.assertNotIn(pw, r.err)
        self.assertEqual(self.ws.sql("SELECT count(*) FROM staff_users"), [(0,)])
        # 16+ characters of one class are fine
        add_user(self.ws, "carol", "analyst", password="correcthorsebatterystaple")

    def test_weak_passwords_refused_by_the_api(self):
        tok = self.ws.token()
        self.start()
        for pw, why in WEAK:
            with self.subTest(pw=pw[:20]):
                r = self.srv.post("/api/v1/users", {"username": "carol", "role": "analyst", "password": pw}, token=tok)
                err = self.assertError(r, 400, "weak_password")
                self.assertEqual(err["field"], "password")
                self.assertIn(why, err["message"])
        r = self.srv.post("/api/v1/users", {"username": "carol", "role": "analyst", "password": PASSWORD}, token=tok)
        self.assertEqual(r.status, 201, r.body)
        self.assertNotIn("password", r.body)

    def test_stored_hash_is_scrypt_and_never_the_password(self):
        add_user(self.ws, "dave", "analyst")
        h = self.ws.sql("SELECT password_hash FROM staff_users WHERE username = 'dave'")[0][0]
        self.assertTrue(h.startswith("scrypt$"), h)
        parts = h.split("$")
        self.assertEqual(parts[:4], ["scrypt", "15", "8", "1"])
        self.assertEqual(len(base64.b64decode(parts[4])), 16)
        self.assertEqual(len(base64.b64decode(parts[5])), 32)
        self.assertNotIn(PASSWORD, h)
        # a second user with the same password: another salt, another hash
        add_user(self.ws, "erin", "analyst")
        h2 = self.ws.sql("SELECT password_hash FROM staff_users WHERE username = 'erin'")[0][0]
        self.assertNotEqual(h.split("$")[4:], h2.split("$")[4:])
        # nowhere in the files
        for name, data in sectest.raw_files(self.ws).items():
            self.assertNotIn(PASSWORD.encode(), data, name)

    def test_user_passwd_from_stdin(self):
        add_user(self.ws, "dave", "analyst")
        self.start()
        c = login(self.port, "dave")
        old = self.ws.sql("SELECT password_hash FROM staff_users WHERE username = 'dave'")[0][0]
        r = self.ws.run("user", "passwd", "dave", "--password-stdin", "--db", self.ws.db, input="short\n")
        self.assertOneErrorLine(r, "at least 10 characters")
        r = self.ws.ok("user", "passwd", "dave", "--password-stdin", "--db", self.ws.db, input=NEW_PASSWORD + "\n")
        self.assertNotIn(NEW_PASSWORD, r.out + r.err)
        new = self.ws.sql("SELECT password_hash FROM staff_users WHERE username = 'dave'")[0][0]
        self.assertNotEqual(old, new)
        self.assertTrue(new.startswith("scrypt$"))
        self.assertError(c.me(), 401, "unauthorized")       # sessions ended
        self.assertEqual(try_login(self.port, "dave", PASSWORD)[0].status, 401)
        self.assertEqual(try_login(self.port, "dave", NEW_PASSWORD)[0].status, 200)
        self.assertEqual([x["object_id"] for x in sectest.audit(self.ws, "action = 'user.password_reset'")], ["dave"])
        # without --password-stdin one is generated and shown once
        r = self.ws.ok("user", "passwd", "dave", "--db", self.ws.db, "--json")
        gen = json.loads(r.out)["password"]
        self.assertEqual(try_login(self.port, "dave", gen)[0].status, 200)


# ===================================================== 5. field visibility

ZED_EMAIL, ZED_PHONE = "zed.smith@example.com", "13812348000"
ZED_EMAIL_MASKED, ZED_PHONE_MASKED = "z********@example.com", "138****8000"


class FieldVisibility(SecCase):
    def setUp(self):
        super().setUp()
        add_user(self.ws, "zed", "technician", email=ZED_EMAIL, phone=ZED_PHONE)
        self.tokens = {role: self.ws.token("fv-" + role.replace("_", "-"), role) for role in sectest.BUILTIN_ROLES}
        self.start()
        self.zed_id = sectest.user_id(self.ws, "zed")

    def get_zed(self, role):
        return self.srv.get("/api/v1/users/zed", token=self.tokens[role])

    def test_admin_sees_clear_others_masked(self):
        r = self.get_zed("admin")
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual((r.body["email"], r.body["phone"]), (ZED_EMAIL, ZED_PHONE))
        r = self.get_zed("auditor")
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual((r.body["email"], r.body["phone"]), (ZED_EMAIL_MASKED, ZED_PHONE_MASKED))
        self.assertEqual(r.body["username"], "zed")
        for role in ("billing_clerk", "customer_service", "technician", "analyst"):
            with self.subTest(role=role):
                self.assertError(self.get_zed(role), 403, "forbidden")
        # the list is filtered the same way
        r = self.srv.get("/api/v1/users", token=self.tokens["auditor"])
        z = [u for u in r.body["data"] if u["username"] == "zed"][0]
        self.assertEqual((z["email"], z["phone"]), (ZED_EMAIL_MASKED, ZED_PHONE_MASKED))
        # the policies as data: every other built-in role has user.email/phone masked
        roles = {x["name"]: x for x in self.srv.get("/api/v1/roles", token=self.tokens["admin"]).body["data"]}
        for role in sectest.BUILTIN_ROLES:
            want = "clear" if role == "admin" else "masked"
            fp = roles[role]["field_policies"]
            self.assertEqual((fp.get("user.email"), fp.get("user.phone")), (want, want), role)

    def test_a_session_sees_the_same(self):
        add_user(self.ws, "aud1", "auditor")
        add_user(self.ws, "adm1", "admin")
        self.assertEqual(login(self.port, "aud1").get("/api/v1/users/zed").body["phone"], ZED_PHONE_MASKED)
        self.assertEqual(login(self.port, "adm1").get("/api/v1/users/zed").body["phone"], ZED_PHONE)

    def test_bug_masked_email_with_a_one_letter_name_is_shown_in_clear(self):
        """BUG (found by this suite): MASK_EMAIL (core/privacy.c) keeps the
        first character of the local part and stars the rest, so an
        address whose local part is one letter ("q@example.com") is
        "masked" to itself: a role with user.email masked sees it in full,
        and as it counts as a masked view no field.view record is written.
        Expected: a masked value never equals the clear one."""
        add_user(self.ws, "quinn", "analyst", email="q@example.com", phone="13812348001")
        r = self.srv.get("/api/v1/users/quinn", token=self.tokens["auditor"])
        self.assertEqual(r.status, 200)
        self.assertNotEqual(r.body["email"], "q@example.com", "the masked e-mail is the e-mail")

    def test_clear_view_is_audited(self):
        before = sectest.audit_max_id(self.ws)
        r = self.srv.get("/api/v1/users/zed", token=self.tokens["admin"], headers={"X-Request-Id": "fv-clear-1"})
        self.assertEqual(r.status, 200)
        sectest.audit_barrier(self.ws, self.srv)
        views = sectest.audit(self.ws, "action = 'field.view' AND id > ?", (before,))
        self.assertEqual(len(views), 1, views)
        v = views[0]
        self.assertEqual((v["actor"], v["role"], v["object_type"], v["object_id"], v["request_id"], v["source"]),
                         ("token:fv-admin", "admin", "user", str(self.zed_id), "fv-clear-1", "127.0.0.1"))
        self.assertEqual(sorted(v["diff"]["detail"]["fields"].split(",")), ["email", "phone"])
        self.assertNotIn(ZED_EMAIL, json.dumps(v))
        # a masked view is not a clear view: no record
        mark = sectest.audit_max_id(self.ws)
        self.get_zed("auditor")
        sectest.audit_barrier(self.ws, self.srv)
        self.assertEqual(sectest.audit(self.ws, "action = 'field.view' AND id > ?", (mark,)), [])
        # a list seen in clear: one record naming the ids
        mark = sectest.audit_max_id(self.ws)
        self.srv.get("/api/v1/users", token=self.tokens["admin"])
        sectest.audit_barrier(self.ws, self.srv)
        views = sectest.audit(self.ws, "action = 'field.view' AND id > ?", (mark,))
        self.assertEqual(len(views), 1, views)
        self.assertIn(str(self.zed_id), views[0]["diff"]["detail"]["ids"].split(","))

    def test_clear_views_in_a_row_become_one_record(self):
        """A desk paging through records makes a clear view per request; the
        daemon writes the views that follow one another (same who, same
        fields) as one record listing every request, and keeps other
        desks' views apart."""
        mark = sectest.audit_max_id(self.ws)
        rids = ["fv-run-%d" % i for i in range(6)]
        for rid in rids:
            r = self.srv.get("/api/v1/users/zed", token=self.tokens["admin"], headers={"X-Request-Id": rid})
            self.assertEqual(r.status, 200)
        self.get_zed("auditor")  # masked: no record, and does not split the run
        sectest.audit_barrier(self.ws, self.srv)
        views = sectest.audit(self.ws, "action = 'field.view' AND id > ?", (mark,))
        # the six requests may straddle a write of the queue (every 100 ms), never more
        self.assertLessEqual(len(views), 2, views)
        seen = []
        for v in views:
            self.assertEqual((v["actor"], v["object_type"], v["object_id"]), ("token:fv-admin", "user", str(self.zed_id)))
            self.assertEqual(sorted(v["diff"]["detail"]["fields"].split(",")), ["email", "phone"])
            reqs = v["diff"]["detail"].get("requests")
            seen += [x["request_id"] for x in reqs] if reqs else [v["request_id"]]
            if reqs:
                self.assertEqual(v["request_id"], reqs[0]["request_id"])
                for x in reqs:
                    self.assertRegex(x["at"], r"^\d{4}-\d\d-\d\dT")
        self.assertEqual(seen, rids)

    def test_role_field_policy_change_applies_at_once(self):
        admin = self.tokens["admin"]
        r = self.srv.request("PUT", "/api/v1/roles/auditor", body={"field_policies": {"user.email": "clear", "user.phone": "hidden"}},
                             token=admin)
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(r.body["field_policies"]["user.email"], "clear")
        r = self.get_zed("auditor")
        self.assertEqual(r.body["email"], ZED_EMAIL)
        self.assertNotIn("phone", r.body)
        sectest.audit_barrier(self.ws, self.srv)
        views = sectest.audit(self.ws, "action = 'field.view' AND actor = 'token:fv-auditor'")
        self.assertEqual([v["diff"]["detail"]["fields"] for v in views], ["email"])
        # back to masked
        r = self.srv.request("PUT", "/api/v1/roles/auditor", body={"field_policies": {"user.email": "masked", "user.phone": "masked"}},
                             token=admin)
        self.assertEqual(r.status, 200, r.body)
        r = self.get_zed("auditor")
        self.assertEqual((r.body["email"], r.body["phone"]), (ZED_EMAIL_MASKED, ZED_PHONE_MASKED))
        # bad policies are refused
        r = self.srv.request("PUT", "/api/v1/roles/auditor", body={"field_policies": {"user.salary": "clear"}}, token=admin)
        self.assertError(r, 400, "unknown_field")
        r = self.srv.request("PUT", "/api/v1/roles/auditor", body={"field_policies": {"user.email": "visible"}}, token=admin)
        self.assertError(r, 400, "invalid_field")
        self.assertEqual(self.get_zed("auditor").body["email"], ZED_EMAIL_MASKED)
        # the change is audited with before and after
        upd = sectest.audit(self.ws, "action = 'role.update' AND object_id = 'auditor'")
        self.assertEqual(len(upd), 2)
        self.assertEqual(upd[0]["diff"]["after"]["field_policies"]["user.email"], "clear")

    def test_bug_admin_role_can_be_stripped_of_everything(self):
        """BUG (found by this suite): built-in roles cannot be deleted, but
        PUT /api/v1/roles/admin {"permissions": []} is accepted (200) and
        takes the wildcard from the admin role. From then on every admin
        token and session gets 403 on every route, and so does the local
        control socket (it acts as role admin: `bandbill rules reload`
        fails with "role admin does not have permission rules.reload").
        Nothing but a hand edit of the database can undo it. Expected:
        the admin role keeps "*" (the change refused, like a deletion)."""
        admin = self.tokens["admin"]
        r = self.srv.request("PUT", "/api/v1/roles/admin", body={"permissions": ["auth.self"]}, token=admin)
        self.assertIn(r.status, (200, 400, 409), r.body)
        r = self.srv.get("/api/v1/roles", token=admin)
        self.assertEqual(r.status, 200, "the admin token lost its permissions: %s" % (r.body,))
        self.assertIn("*", [x for x in r.body["data"] if x["name"] == "admin"][0]["permissions"])
        self.assertEqual(self.ws.run("rules", "reload", "--db", self.ws.db).rc, 0)

    def test_custom_role_lifecycle(self):
        admin = self.tokens["admin"]
        r = self.srv.post("/api/v1/roles", {"name": "helpdesk", "description": "reads staff accounts",
                                            "permissions": ["auth.self", "user.read"]}, token=admin)
        self.assertEqual(r.status, 201, r.body)
        self.assertEqual((r.body["builtin"], sorted(r.body["permissions"])), (False, ["auth.self", "user.read"]))
        self.assertError(self.srv.post("/api/v1/roles", {"name": "helpdesk"}, token=admin), 409, "exists")
        self.assertError(self.srv.post("/api/v1/roles", {"name": "money", "permissions": ["money.print"]}, token=admin),
                         400, "unknown_permission")
        tok = self.ws.token("fv-helpdesk", "helpdesk")
        r = self.srv.get("/api/v1/users/zed", token=tok)
        self.assertEqual(r.status, 200, r.body)
        # no policy for the new role: sensitive fields are masked
        self.assertEqual((r.body["email"], r.body["phone"]), (ZED_EMAIL_MASKED, ZED_PHONE_MASKED))
        self.assertError(self.srv.post("/api/v1/users", {"username": "x1", "role": "admin"}, token=tok), 403, "forbidden")
        self.assertError(self.srv.get("/api/v1/customers", token=tok), 403, "forbidden")
        self.assertError(self.srv.get("/api/v1/audit", token=tok), 403, "forbidden")
        # narrowing its permissions takes effect at once
        r = self.srv.request("PUT", "/api/v1/roles/helpdesk", body={"permissions": ["auth.self"]}, token=admin)
        self.assertEqual(r.status, 200, r.body)
        self.assertError(self.srv.get("/api/v1/users/zed", token=tok), 403, "forbidden")
        # in use: not deleted
        self.assertError(self.srv.request("DELETE", "/api/v1/roles/helpdesk", token=admin), 409, "role_in_use")
        self.ws.ok("token", "revoke", "fv-helpdesk", "--db", self.ws.db)
        r = self.srv.request("DELETE", "/api/v1/roles/helpdesk", token=admin)
        self.assertEqual(r.status, 200, r.body)
        names = [x["name"] for x in self.srv.get("/api/v1/roles", token=admin).body["data"]]
        self.assertNotIn("helpdesk", names)
        self.assertEqual(self.ws.sql("SELECT count(*) FROM role_permissions WHERE role = 'helpdesk'"), [(0,)])
        # built-in roles stay, even when nobody holds them
        for role in sectest.BUILTIN_ROLES:
            with self.subTest(role=role):
                self.assertError(self.srv.request("DELETE", "/api/v1/roles/" + role, token=admin), 409, "builtin_role")
        self.assertEqual(len(self.srv.get("/api/v1/roles", token=admin).body["data"]), 6)
        self.assertEqual([x["object_id"] for x in sectest.audit(self.ws, "action IN ('role.create', 'role.delete')")],
                         ["helpdesk", "helpdesk"])


# =========================================================== 6. audit trail

class AuditTrail(SecCase):
    def setUp(self):
        super().setUp()
        add_user(self.ws, "boss", "admin")
        add_user(self.ws, "aud1", "auditor")
        add_user(self.ws, "bill1", "billing_clerk")
        self.token = self.ws.token("audit-admin", "admin")
        self.start()

    def verify_cli(self, *extra):
        return self.ws.run("audit", "verify", "--db", self.ws.db, *extra)

    def test_every_change_recorded_with_actor_role_source_and_request_id(self):
        port = self.port
        r, _ = try_login(port, "boss", PASSWORD, headers={"X-Request-Id": "au-login"})
        self.assertEqual(r.status, 200)
        boss = login(port, "boss")
        expected = [("au-login", "auth.login", "user:boss")]

        def change(rid, action, method, path, body=None, status=200, who=boss):
            if who is boss:
                r = boss.request(method, path, body=body, rid=rid)
            else:
                r = self.srv.request(method, path, body=body, token=who, headers={"X-Request-Id": rid})
            self.assertEqual(r.status, status, (method, path, r.body))
            self.assertEqual(r.headers["X-Request-Id"], rid)
            expected.append((rid, action, "user:boss" if who is boss else "token:audit-admin"))
            return r

        change("au-1", "user.create", "POST", "/api/v1/users",
               {"username": "newbie", "role": "analyst", "password": PASSWORD, "email": "newbie@example.com"}, 201)
        change("au-2", "user.update", "PATCH", "/api/v1/users/newbie", {"display_name": "New Bie"})
        change("au-3", "user.password_reset", "POST", "/api/v1/users/newbie/password", {"password": NEW_PASSWORD})
        change("au-4", "user.unlock", "POST", "/api/v1/users/newbie/unlock")
        change("au-5", "role.create", "POST", "/api/v1/roles", {"name": "temp-role", "permissions": ["auth.self"]}, 201)
        change("au-6", "role.update", "PUT", "/api/v1/roles/temp-role", {"description": "temporary"})
        change("au-7", "role.delete", "DELETE", "/api/v1/roles/temp-role")
        change("au-8", "rules.reload", "POST", "/api/v1/rules/reload", {})
        nb = login(port, "newbie", NEW_PASSWORD)
        change("au-9", "session.revoke", "DELETE", "/api/v1/auth/sessions/%d" % nb.session_id(self.ws))
        change("au-10", "user.update", "PATCH", "/api/v1/users/newbie", {"phone": "13700001111"}, who=self.token)
        change("au-11", "user.password", "POST", "/api/v1/auth/password", {"current": PASSWORD, "new": NEW_PASSWORD})
        # an id the daemon makes up is the one in the record
        r = boss.request("PATCH", "/api/v1/users/newbie", body={"display_name": "Newbie"})
        self.assertEqual(r.status, 200)
        expected.append((r.headers["X-Request-Id"], "user.update", "user:boss"))
        change("au-12", "auth.logout", "POST", "/api/v1/auth/logout")
        # a refused change leaves no change record
        r = self.srv.post("/api/v1/users", {"username": "weak", "role": "analyst", "password": "weak"}, token=self.token,
                          headers={"X-Request-Id": "au-refused"})
        self.assertEqual(r.status, 400)

        problems = []
        for rid, action, actor in expected:
            recs = sectest.audit(self.ws, "request_id = ?", (rid,))
            if action not in [x["action"] for x in recs]:
                problems.append("%s: no %s record (got %s)" % (rid, action, [x["action"] for x in recs]))
            for x in recs:
                got = (x["actor"], x["role"], x["source"])
                if got != (actor, "admin", "127.0.0.1"):
                    problems.append("%s %s: actor/role/source %s" % (rid, x["action"], got))
                if not re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", x["at"] or ""):
                    problems.append("%s: at %r" % (rid, x["at"]))
        self.assertEqual(problems, [], "\n".join(problems))
        self.assertEqual(sectest.audit(self.ws, "request_id = 'au-refused'"), [])
        # the diff of an update holds what changed, with contacts masked
        upd = [x for x in sectest.audit(self.ws, "request_id = 'au-10'") if x["action"] == "user.update"][0]
        self.assertEqual(upd["diff"]["after"], {"phone": "137****1111"})
        self.assertEqual(upd["diff"]["before"], {"phone": None})
        self.assertNotIn("13700001111", json.dumps(sectest.audit(self.ws)))
        # and the API shows the same records
        r = self.srv.get("/api/v1/audit?action=user.password_reset", token=self.token)
        self.assertEqual([(x["request_id"], x["actor"], x["role"], x["source"]) for x in r.body["data"]],
                         [("au-3", "user:boss", "admin", "127.0.0.1")])

    def test_logout_with_a_token_changes_nothing(self):
        """A logout with a bearer token ends no session: it is no change, so
        it leaves no audit record (neither its own nor the HTTP layer's
        generic one, whose warning must not appear either)."""
        r = self.srv.post("/api/v1/auth/logout", token=self.token, headers={"X-Request-Id": "au-generic"})
        self.assertEqual((r.status, r.body), (200, {"logged_out": False}))
        sectest.audit_barrier(self.ws, self.srv)
        self.assertEqual(sectest.audit(self.ws, "request_id = 'au-generic'"), [])
        self.assertFalse([l for l in self.srv.raw if '"event":"audit_generic"' in l])

    def test_concurrent_writers_keep_the_chain(self):
        """The daemon (denials) and CLI processes (unlocks) append at the
        same time; the chain stays intact and nothing is lost."""
        bill = login(self.port, "bill1")
        mark = sectest.audit_max_id(self.ws)

        def job(kind, i):
            if kind == "http":
                return bill.get("/api/v1/audit", rid="cc-%d" % i).status
            return self.ws.run("user", "unlock", "aud1", "--db", self.ws.db).rc

        res = sectest.parallel(job, [("http", i) for i in range(40)] + [("cli", i) for i in range(6)])
        self.assertEqual(res, [403] * 40 + [0] * 6)
        sectest.wait_audit(self.ws, "id > ? AND action = 'access.denied'", (mark,), count=40)
        new = sectest.audit(self.ws, "id > ?", (mark,))
        self.assertEqual([x["id"] for x in new], list(range(mark + 1, mark + 1 + len(new))))
        ours = [x for x in new if x["actor"] != "system"]
        self.assertEqual(sorted(x["action"] for x in ours), ["access.denied"] * 40 + ["user.unlock"] * 6)
        self.assertEqual(sorted(x["request_id"] for x in ours if x["action"] == "access.denied"),
                         sorted("cc-%d" % i for i in range(40)))
        r = self.verify_cli("--json")
        self.assertEqual((r.rc, json.loads(r.out)["intact"]), (0, True), str(r))

    def test_verify_then_tamper_one_byte(self):
        boss = login(self.port, "boss")
        for i in range(3):
            self.assertEqual(boss.request("PATCH", "/api/v1/users/bill1", body={"display_name": "Bill %d" % i}).status, 200)
        n = sectest.audit_max_id(self.ws)
        self.assertGreaterEqual(n, 6)
        r = self.verify_cli()
        self.assertEqual(r.rc, 0, str(r))
        self.assertEqual(r.out.strip(), "audit chain intact: %d records" % n)
        r = self.verify_cli("--json")
        self.assertEqual((r.rc, json.loads(r.out)), (0, {"records": n, "intact": True}))
        v = self.srv.get("/api/v1/audit/verify", token=self.token)
        self.assertEqual((v.body["intact"], v.body["records"]), (True, n))

        # an attacker with the file: drop the triggers, change one byte of one record
        victim = [x for x in sectest.audit(self.ws) if x["action"] == "user.update"][1]["id"]
        sectest.drop_audit_triggers(self.ws)
        diff = self.ws.sql("SELECT diff FROM audit_log WHERE id = ?", (victim,))[0][0]
        self.assertIn("Bill 1", diff)
        self.ws.sql("UPDATE audit_log SET diff = ? WHERE id = ?", (diff.replace("Bill 1", "Bill 7"), victim))
        r = self.verify_cli()
        self.assertOneErrorLine(r, "record %d" % victim)
        self.assertNotIn("record %d" % (victim - 1), r.err)
        r = self.verify_cli("--json")
        self.assertEqual(r.rc, 1, str(r))
        got = json.loads(r.out)
        self.assertEqual((got["intact"], got["first_bad_id"]), (False, victim))
        self.assertIn("hash does not match", got["why"])
        v = self.srv.get("/api/v1/audit/verify", token=self.token)
        self.assertEqual(v.status, 200)
        self.assertEqual((v.body["intact"], v.body["first_bad_id"]), (False, victim))

    def test_tamper_any_column(self):
        """One byte in each hashed column (and the hash itself) is caught."""
        boss = login(self.port, "boss")
        self.assertEqual(boss.request("PATCH", "/api/v1/users/bill1", body={"display_name": "Bill"}).status, 200)
        rec = [x for x in sectest.audit(self.ws) if x["action"] == "user.update"][0]
        sectest.drop_audit_triggers(self.ws)
        raw = sectest.rows(self.ws, "SELECT * FROM audit_log WHERE id = ?", (rec["id"],))[0]
        for colname in ("at", "actor", "role", "source", "request_id", "action", "object_type", "object_id", "diff", "hash"):
            with self.subTest(column=colname):
                orig = raw[colname]
                self.assertTrue(orig, colname)
                changed = orig[:-1] + ("0" if orig[-1] != "0" else "1")
                self.ws.sql("UPDATE audit_log SET %s = ? WHERE id = ?" % colname, (changed, rec["id"]))
                try:
                    r = self.verify_cli("--json")
                    self.assertEqual(r.rc, 1, str(r))
                    self.assertEqual(json.loads(r.out)["first_bad_id"], rec["id"])
                finally:
                    self.ws.sql("UPDATE audit_log SET %s = ? WHERE id = ?" % colname, (orig, rec["id"]))
        self.assertEqual(self.verify_cli().rc, 0)

    def test_removed_record_detected(self):
        boss = login(self.port, "boss")
        for i in range(3):
            boss.request("PATCH", "/api/v1/users/bill1", body={"display_name": "Bill %d" % i})
        ids = [x["id"] for x in sectest.audit(self.ws)]
        sectest.drop_audit_triggers(self.ws)
        gone = ids[len(ids) // 2]
        self.ws.sql("DELETE FROM audit_log WHERE id = ?", (gone,))
        r = self.verify_cli("--json")
        self.assertEqual(r.rc, 1, str(r))
        got = json.loads(r.out)
        self.assertEqual(got["first_bad_id"], gone + 1)
        self.assertIn("missing", got["why"])

    def test_removing_the_newest_records_is_noticed(self):
        """An attacker with the database file drops the triggers, deletes the
        newest records (say, those of what they just did) and puts the
        triggers back; the next record reuses the freed id and links to the
        new last record, so the chain alone looks intact. The anchor the
        daemon writes outside the database (the head's id and hash, with an
        HMAC) still names a record that is gone: `audit verify` fails."""
        boss = login(self.port, "boss")
        for i in range(3):
            self.assertEqual(boss.request("PATCH", "/api/v1/users/bill1", body={"display_name": "Bill %d" % i}).status, 200)
        last = sectest.audit_max_id(self.ws)
        # the daemon anchors the chain's head outside the database every
        # tick (100 ms) it moved: records older than that cannot vanish
        # unseen. Wait for that tick rather than a fixed time (a loaded
        # machine may be late).
        anchor = os.path.join(self.ws.var, "audit.anchor")

        def anchored():
            try:
                return int(bbtest.read(anchor).split()[0]) >= last
            except (OSError, ValueError, IndexError):
                return False
        bbtest.poll(anchored, timeout=10, what="the anchor of record %d" % last)
        sectest.drop_audit_triggers(self.ws)
        self.ws.sql("DELETE FROM audit_log WHERE id >= ?", (last - 1,))
        schema = bbtest.read(os.path.join(bbtest.SOURCE_DIR, "schema", "0002_security.sql"))
        for trig in re.findall(r"CREATE TRIGGER audit_log_no_\w+ .*?END;", schema, re.S):
            self.ws.sql(trig)
        # life goes on: the daemon appends
        self.assertEqual(boss.request("PATCH", "/api/v1/users/bill1", body={"display_name": "Bill 9"}).status, 200)
        r = self.verify_cli("--json")
        got = json.loads(r.out)
        self.assertEqual((r.rc, got["intact"]), (1, False),
                         "records %d and %d were deleted, yet: %s" % (last - 1, last, got))

    def test_triggers_refuse_update_and_delete(self):
        n = sectest.audit_max_id(self.ws)
        self.assertGreater(n, 0)
        before = sectest.rows(self.ws, "SELECT * FROM audit_log")
        with self.assertRaises(sqlite3.DatabaseError) as cm:
            self.ws.sql("UPDATE audit_log SET actor = 'someone-else' WHERE id = 1")
        self.assertIn("append-only", str(cm.exception))
        with self.assertRaises(sqlite3.DatabaseError) as cm:
            self.ws.sql("DELETE FROM audit_log WHERE id = ?", (n,))
        self.assertIn("append-only", str(cm.exception))
        with self.assertRaises(sqlite3.DatabaseError):
            self.ws.sql("DELETE FROM audit_log")
        self.assertEqual(sectest.rows(self.ws, "SELECT * FROM audit_log"), before)
        self.assertEqual(self.verify_cli().rc, 0)

    def test_export_range_and_chain(self):
        boss = login(self.port, "boss")
        for i in range(6):
            boss.request("PATCH", "/api/v1/users/bill1", body={"display_name": "Bill %d" % i})
            time.sleep(0.003)
        recs = sectest.rows(self.ws, "SELECT id, at FROM audit_log ORDER BY id")
        self.assertGreaterEqual(len(recs), 10)
        frm, to = recs[3]["at"], recs[-3]["at"]
        want = [x["id"] for x in recs if frm <= x["at"] < to]
        self.assertTrue(0 < len(want) < len(recs))
        r = self.ws.ok("audit", "export", "--from", frm, "--to", to, "--db", self.ws.db)
        lines = [json.loads(l) for l in r.out.splitlines()]
        self.assertEqual([x["id"] for x in lines], want)
        for x in lines:
            self.assertTrue(frm <= x["at"] < to, x["at"])
            for k in ("at", "actor", "role", "source", "request_id", "action", "object_type", "object_id", "diff",
                      "prev_hash", "hash"):
                self.assertIn(k, x)
        self.assertIn("%d records" % len(want), r.err)
        # dates: today (UTC) to tomorrow is everything
        today = sectest.utc_now().date()
        r = self.ws.ok("audit", "export", "--from", today.isoformat(), "--to",
                       (today + datetime.timedelta(days=1)).isoformat(), "--db", self.ws.db)
        full = [json.loads(l) for l in r.out.splitlines()]
        self.assertEqual([x["id"] for x in full], [x["id"] for x in recs])
        r = self.ws.ok("audit", "export", "--from", (today + datetime.timedelta(days=1)).isoformat(), "--db", self.ws.db)
        self.assertEqual(r.out, "")
        r = self.ws.run("audit", "export", "--from", "yesterday", "--db", self.ws.db)
        self.assertEqual(r.rc, 2, str(r))
        # a regulator re-checks the chain from the export and the audit key
        key = None
        for line in bbtest.read(os.path.join(self.ws.var, "bandbill.key")).splitlines():
            if line.startswith("audit "):
                key = base64.b64decode(line.split()[1])
        self.assertEqual(len(key), 32)
        prev = ""
        for x in full:
            self.assertEqual(x["prev_hash"], prev, x["id"])
            canon = {k: x[k] for k in ("at", "actor", "role", "source", "request_id", "action", "object_type", "object_id")}
            d = x["diff"]
            canon["diff"] = None if d is None else (d if isinstance(d, str) else
                                                    json.dumps(d, sort_keys=True, separators=(",", ":"), ensure_ascii=False))
            text = prev + "\n" + json.dumps(canon, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
            want_hash = hmac.new(key, text.encode(), hashlib.sha256).hexdigest()
            self.assertEqual(x["hash"], want_hash, "record %d does not re-check from the export" % x["id"])
            prev = x["hash"]

    def test_who_may_read_the_trail(self):
        aud = login(self.port, "aud1")
        bill = login(self.port, "bill1")
        r = aud.get("/api/v1/audit?limit=5")
        self.assertEqual(r.status, 200, r.body)
        self.assertTrue(r.body["data"])
        ids = [x["id"] for x in r.body["data"]]
        self.assertEqual(ids, sorted(ids, reverse=True))
        self.assertEqual(aud.get("/api/v1/audit/verify").body["intact"], True)
        for path in ("/api/v1/audit", "/api/v1/audit/verify", "/api/v1/audit?action=auth.login"):
            with self.subTest(path=path):
                self.assertError(bill.get(path), 403, "forbidden")
        sectest.audit_barrier(self.ws, self.srv)
        denied = sectest.audit(self.ws, "action = 'access.denied' AND actor = 'user:bill1'")
        self.assertEqual(len(denied), 3)
        self.assertEqual({x["object_id"] for x in denied}, {"/api/v1/audit", "/api/v1/audit/verify"})


# =================================================== 7. encryption at rest

class EncryptionAtRest(SecCase):
    def test_staff_contacts_encrypted_in_the_database_file(self):
        email, phone = "enc.check@example.org", "13912345678"
        api_email, api_phone, new_phone = "api.only@example.net", "13698765432", "13555550000"
        add_user(self.ws, "encu", "analyst", email=email, phone=phone)
        tok = self.ws.token()
        self.start()
        r = self.srv.post("/api/v1/users", {"username": "apiu", "role": "analyst", "password": PASSWORD,
                                            "email": api_email, "phone": api_phone}, token=tok)
        self.assertEqual(r.status, 201, r.body)
        self.assertEqual((r.body["email"], r.body["phone"]), (api_email, api_phone))   # an admin sees them
        r = self.srv.request("PATCH", "/api/v1/users/encu", body={"phone": new_phone}, token=tok)
        self.assertEqual((r.status, r.body.get("phone")), (200, new_phone))
        for row in sectest.rows(self.ws, "SELECT username, email_enc, phone_enc FROM staff_users"):
            for col in ("email_enc", "phone_enc"):
                self.assertRegex(row[col], r"^enc:v1:k1:[A-Za-z0-9+/]+={0,2}$", (row["username"], col))
        # no plaintext anywhere: database, WAL, key file, the audit trail, the daemon's log
        secrets = [email, phone, api_email, api_phone, new_phone]
        for name, data in sectest.raw_files(self.ws).items():
            for s in secrets:
                self.assertNotIn(s.encode(), data, "%s in %s" % (s, name))
        self.srv.stop()
        for name, data in sectest.raw_files(self.ws).items():
            for s in secrets:
                self.assertNotIn(s.encode(), data, "%s in %s after a checkpoint" % (s, name))
        for s in secrets:
            self.assertNotIn(s, self.srv.stderr_text)
        # copied into another column the value does not decrypt (associated data)
        em = self.ws.sql("SELECT email_enc FROM staff_users WHERE username = 'encu'")[0][0]
        self.ws.sql("UPDATE staff_users SET phone_enc = ? WHERE username = 'apiu'", (em,))
        self.start()
        r = self.srv.get("/api/v1/users/apiu", token=tok)
        self.assertEqual(r.status, 200)
        self.assertIsNone(r.body["phone"])

    def test_key_file_readable_by_others_refused(self):
        key = os.path.join(self.ws.var, "bandbill.key")
        self.assertEqual(os.stat(key).st_mode & 0o777, 0o600)
        for mode in (0o644, 0o640, 0o604):
            with self.subTest(mode=oct(mode)):
                os.chmod(key, mode)
                s = self.ws.serve(wait=False)
                rc = s.wait_exit(10)
                self.assertNotEqual(rc, 0)
                self.assertIn(key, s.stderr_text)
                self.assertIn("chmod 600", s.stderr_text)
                self.assertEqual(s.events("ready"), [])
        r = self.ws.run("keys", "status", "--db", self.ws.db)
        self.assertOneErrorLine(r, key, "chmod 600")
        os.chmod(key, 0o600)
        # a symbolic link (to a file with the right mode) is refused too
        real = os.path.join(self.ws.dir, "elsewhere.key")
        os.rename(key, real)
        os.symlink(real, key)
        s = self.ws.serve(wait=False)
        self.assertNotEqual(s.wait_exit(10), 0)
        self.assertIn("symbolic link", s.stderr_text)
        os.unlink(key)
        os.rename(real, key)
        # the database is private too
        self.assertEqual(os.stat(self.ws.db).st_mode & 0o077, 0)
        self.start()
        self.assertEqual(self.srv.healthz()["status"], "ok")

    def keys_status(self):
        return json.loads(self.ws.ok("keys", "status", "--json", "--db", self.ws.db).out)

    def test_rotation_killed_midway_then_resumed(self):
        """Many encrypted values without hashing a password for each: the
        associated data binds a value to its column, not its row, so copies
        of one user's encrypted e-mail and phone in other rows are valid
        values. `keys rotate` is killed with SIGKILL as soon as the first
        row shows a value under the new key, i.e. right after its first
        batch (of 500) committed; with 10,002 values that is midway (it is
        retried, with yet another key, if the rotation was already done)."""
        n_copies = 5000
        add_user(self.ws, "rot0", "analyst", email="rot0@example.com", phone="13800000000")
        con = sqlite3.connect(self.ws.db, timeout=10)
        row = con.execute("SELECT display_name, role, password_hash, email_enc, phone_enc, password_changed_at, "
                          "created_at, created_by FROM staff_users WHERE username = 'rot0'").fetchone()
        con.executemany("INSERT INTO staff_users (username, display_name, role, password_hash, email_enc, phone_enc, "
                        "password_changed_at, created_at, created_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        [("rot%05d" % i,) + row[:] for i in range(1, n_copies + 1)])
        con.commit()
        con.close()
        total = 2 * (n_copies + 1)
        self.assertEqual(self.keys_status()["values_by_key"], {"k1": total})

        first, last = self.ws.sql("SELECT min(id), max(id) FROM staff_users")[0]
        midway = None
        for attempt in range(5):
            old = self.keys_status()["current"]
            p = subprocess.Popen([bbtest.BIN, "keys", "rotate", "--db", self.ws.db], cwd=self.ws.dir,
                                 env=bbtest.clean_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            con = sqlite3.connect(self.ws.db, timeout=20, isolation_level=None)
            try:
                deadline = time.monotonic() + 20
                while p.poll() is None and time.monotonic() < deadline:
                    v = con.execute("SELECT email_enc FROM staff_users WHERE id = ?", (first,)).fetchone()[0]
                    if not v.startswith("enc:v1:%s:" % old):
                        break
                alive = p.poll() is None
                p.send_signal(signal.SIGKILL)      # kill -9, right after its first batch committed
                p.wait(10)
                p.stdout.close()
                p.stderr.close()
            finally:
                con.close()
            left = self.ws.sql("SELECT phone_enc FROM staff_users WHERE id = ?", (last,))[0][0]
            if alive and left.startswith("enc:v1:%s:" % old):
                midway = old
                break
        self.assertIsNotNone(midway, "could not stop the rotation midway in 5 attempts")
        st = self.keys_status()
        by_key = st["values_by_key"]
        self.assertEqual(len(by_key), 2, by_key)
        self.assertTrue(all(v > 0 for v in by_key.values()), by_key)
        self.assertEqual(sum(by_key.values()), total)
        self.assertIn(midway, by_key)
        new = st["current"]
        self.assertNotEqual(new, midway)
        keys_before = self.key_ids()
        # resumed: no new key, everything under the current one
        r = self.ws.ok("keys", "rotate", "--resume", "--db", self.ws.db)
        self.assertRegex(r.out, r"^resumed: %d values re-encrypted, 0 left$" % by_key[midway])
        self.assertEqual(self.key_ids(), keys_before)
        self.assertEqual(self.keys_status(), dict(st, values_by_key={new: total}))
        r = self.ws.ok("keys", "rotate", "--resume", "--db", self.ws.db)
        self.assertIn("0 values re-encrypted, 0 left", r.out)
        # prune removes the old keys
        r = self.ws.ok("keys", "prune", "--db", self.ws.db)
        self.assertEqual(r.out.strip(), "removed keys: " + " ".join(k for k in keys_before if k != new))
        self.assertEqual(self.key_ids(), [new])
        self.assertIn("k1", keys_before)
        self.assertEqual(self.ws.ok("keys", "prune", "--db", self.ws.db).out.strip(), "no unused keys")
        self.assertEqual(os.stat(os.path.join(self.ws.var, "bandbill.key")).st_mode & 0o777, 0o600)
        # every value decrypts
        tok = self.ws.token()
        self.start()
        seen, cursor = 0, None
        while True:
            r = self.srv.get("/api/v1/users?limit=500" + ("&cursor=" + cursor if cursor else ""), token=tok)
            self.assertEqual(r.status, 200, r.body)
            for u in r.body["data"]:
                self.assertEqual((u["email"], u["phone"]), ("rot0@example.com", "13800000000"), u["username"])
                seen += 1
            cursor = r.body["next_cursor"]
            if not cursor:
                break
        self.assertEqual(seen, n_copies + 1)
        self.assertEqual(self.srv.get("/api/v1/users/rot03000", token=tok).body["email"], "rot0@example.com")
        # one record per run: the killed one(s) and the two resumes
        self.assertEqual(len(sectest.audit(self.ws, "action = 'keys.rotate'")), attempt + 3)

    def test_sighup_makes_the_daemon_use_the_new_key(self):
        add_user(self.ws, "u1", "analyst", email="u1@example.com", phone="13800000001")
        tok = self.ws.token()
        self.start()
        self.ws.ok("keys", "rotate", "--db", self.ws.db)
        mark = self.srv.mark()
        self.srv.send(signal.SIGHUP)
        self.srv.wait_event("keys_reloaded", start=mark)
        self.assertEqual(self.srv.get("/api/v1/users/u1", token=tok).body["email"], "u1@example.com")
        r = self.srv.post("/api/v1/users", {"username": "u2", "role": "analyst", "password": PASSWORD,
                                            "email": "u2@example.com"}, token=tok)
        self.assertEqual(r.status, 201, r.body)
        self.assertTrue(self.ws.sql("SELECT email_enc FROM staff_users WHERE username = 'u2'")[0][0].startswith("enc:v1:k2:"))
        self.assertEqual(self.ws.ok("keys", "prune", "--db", self.ws.db).out.strip(), "removed keys: k1")
        self.srv.stop()
        self.start()
        for u in ("u1", "u2"):
            self.assertEqual(self.srv.get("/api/v1/users/" + u, token=tok).body["email"], u + "@example.com")

    def test_bug_running_daemon_keeps_encrypting_under_a_pruned_key(self):
        """BUG (found by this suite): `keys rotate` and `keys prune` do not
        tell a running daemon (it only rereads the key file on SIGHUP, and
        neither command nor their help says so). With the daemon running,
        the documented sequence `keys rotate`, `keys prune` leaves it
        encrypting under k1, which is no longer in the key file: a staff
        account created right after has an e-mail nobody can ever decrypt
        (null after a restart or SIGHUP), `keys status` counts a value under
        a key the file lacks, and `keys rotate --resume` fails on it for
        good. Meanwhile the daemon shows every rotated value as null
        (unknown key k2) even to an admin. Expected: no value is ever
        written under a key that is not in the key file (e.g. prune
        refuses while a daemon holds an older key set, or the daemon is
        told / checks the file before encrypting)."""
        add_user(self.ws, "u1", "analyst", email="u1@example.com", phone="13800000001")
        tok = self.ws.token()
        self.start()
        self.ws.ok("keys", "rotate", "--db", self.ws.db)
        self.ws.ok("keys", "prune", "--db", self.ws.db)
        r = self.srv.post("/api/v1/users", {"username": "u2", "role": "analyst", "password": PASSWORD,
                                            "email": "u2@example.com"}, token=tok)
        self.assertEqual(r.status, 201, r.body)
        self.srv.stop()
        self.start()
        self.assertEqual(self.srv.get("/api/v1/users/u1", token=tok).body["email"], "u1@example.com")
        self.assertEqual(self.srv.get("/api/v1/users/u2", token=tok).body["email"], "u2@example.com",
                         "written by the daemon under the pruned key k1: %s; keys status: %s"
                         % (self.ws.sql("SELECT email_enc FROM staff_users WHERE username = 'u2'")[0][0][:10],
                            self.keys_status()["values_by_key"]))

    def key_ids(self):
        text = bbtest.read(os.path.join(self.ws.var, "bandbill.key"))
        return [l.split()[0] for l in text.splitlines() if re.match(r"^k\d+ ", l)]


# ==================================================================== 8. TLS

class TLS(SharedDaemonCase):
    @classmethod
    def prepare(cls):
        cls.cert, cls.key = sectest.make_cert(cls.ws.dir)
        cls.serve_args = ("--set", "tls.cert=" + cls.cert, "--set", "tls.key=" + cls.key)
        add_user(cls.ws, "tls-admin", "admin")

    @classmethod
    def after_start(cls):
        cls.ctx = ssl.create_default_context(cafile=cls.cert)

    def https(self, method, path, **kw):
        return sectest.request(self.srv.port, method, path, ssl_context=self.ctx, **kw)

    def test_ready_line_says_https(self):
        self.assertEqual(self.srv.ready["scheme"], "https")

    def test_healthz_over_https(self):
        r = self.https("GET", "/healthz")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body["status"], "ok")
        # by name too (the certificate names localhost)
        r = sectest.request(self.srv.port, "GET", "/healthz", ssl_context=self.ctx, host="localhost")
        self.assertEqual(r.status, 200)

    def test_untrusted_client_refuses_the_certificate(self):
        with self.assertRaises(ssl.SSLError):
            sectest.request(self.srv.port, "GET", "/healthz", ssl_context=ssl.create_default_context())

    def test_login_cookie_is_secure(self):
        c = login(self.srv.port, "tls-admin", ssl_context=self.ctx)
        _, _, attrs = sectest.parse_set_cookie(c.login_resp.headers["Set-Cookie"])
        self.assertIs(attrs.get("secure"), True)
        self.assertIs(attrs.get("httponly"), True)
        self.assertEqual(attrs.get("samesite"), "Strict")
        self.assertEqual(c.me().status, 200)
        r = c.request("PATCH", "/api/v1/users/tls-admin", body={"display_name": "TLS Admin"})
        self.assertEqual(r.status, 200, r.body)
        self.assertError(c.request("PATCH", "/api/v1/users/tls-admin", body={"display_name": "x"}, csrf=False),
                         403, "csrf_failed")

    def test_plain_http_to_the_tls_port_fails(self):
        with self.assertRaises((http.client.HTTPException, OSError)):
            r = bbtest.http_request(self.srv.port, "GET", "/healthz", timeout=5)
            # an answer in plain HTTP would be a failure of this test
            self.fail("plain HTTP answered: %s %s" % (r.status, r.body))
        # and the daemon is still fine
        self.assertEqual(self.https("GET", "/healthz").status, 200)

    def test_control_socket_still_works(self):
        r = self.ws.run("rules", "reload", "--db", self.ws.db)
        self.assertEqual(r.rc, 0, str(r))
        # plain HTTP on the socket, acting as the local admin
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(5)
        try:
            s.connect(self.ws.socket)
            s.sendall(b"GET /api/v1/auth/me HTTP/1.1\r\nHost: local\r\nConnection: close\r\n\r\n")
            data = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        finally:
            s.close()
        head, _, body = data.partition(b"\r\n\r\n")
        self.assertTrue(head.startswith(b"HTTP/1.1 200"), head)
        self.assertEqual(json.loads(body)["role"], "admin")

    def test_tls_needs_both_cert_and_key(self):
        ws = bbtest.Workspace()
        self.addCleanup(ws.close)
        ws.init()
        s = ws.serve("--set", "tls.cert=" + self.cert, wait=False)
        self.assertNotEqual(s.wait_exit(10), 0)
        self.assertIn("tls.cert and tls.key go together", s.stderr_text)


# ==================================================================== 9. IDOR

class IDOR(SharedDaemonCase):
    @classmethod
    def prepare(cls):
        add_user(cls.ws, "boss", "admin")
        add_user(cls.ws, "cs1", "customer_service")
        add_user(cls.ws, "cs2", "customer_service")
        cls.tech_token = cls.ws.token("tech-tok", "technician")
        cls.cs_token = cls.ws.token("cs-tok", "customer_service")

    @classmethod
    def after_start(cls):
        port = cls.srv.port
        cls.boss = login(port, "boss")
        cls.cs1 = login(port, "cs1")
        cls.cs2 = login(port, "cs2")

    def state(self):
        return sectest.rows(self.ws, "SELECT username, display_name, role, status, password_hash, locked_until "
                                     "FROM staff_users ORDER BY id")

    def test_customer_service_cannot_read_or_change_staff_accounts(self):
        before = self.state()
        cs1 = self.cs1
        attempts = [
            ("GET", "/api/v1/users", None),
            ("GET", "/api/v1/users/boss", None),
            ("GET", "/api/v1/users/cs2", None),
            ("GET", "/api/v1/users/cs1", None),       # not even one's own record over the admin routes
            ("PATCH", "/api/v1/users/boss", {"display_name": "pwned"}),
            ("PATCH", "/api/v1/users/cs2", {"status": "disabled"}),
            ("PATCH", "/api/v1/users/cs1", {"role": "admin"}),        # no promoting oneself
            ("POST", "/api/v1/users/boss/password", {"password": NEW_PASSWORD}),
            ("POST", "/api/v1/users/boss/unlock", None),
            ("POST", "/api/v1/users", {"username": "mole", "role": "admin", "password": PASSWORD}),
            ("PUT", "/api/v1/roles/customer_service", {"permissions": ["*"]}),
            ("POST", "/api/v1/roles", {"name": "mine", "permissions": ["*"]}),
            ("DELETE", "/api/v1/roles/auditor", None),
        ]
        for method, path, body in attempts:
            with self.subTest(method=method, path=path):
                self.assertError(cs1.request(method, path, body=body), 403, "forbidden")
                self.assertError(self.srv.request(method, path, body=body, token=self.cs_token), 403, "forbidden")
        self.assertEqual(self.state(), before)
        self.assertEqual(self.boss.me().status, 200)
        self.assertEqual(cs1.me().body["role"], "customer_service")

    def test_cannot_see_another_users_sessions(self):
        for who in ("boss", "cs2", "cs1"):
            with self.subTest(user=who):
                self.assertError(self.cs1.get("/api/v1/users/%s/sessions" % who), 403, "forbidden")
        r = self.cs1.get("/api/v1/auth/sessions")
        self.assertEqual(r.status, 200)
        mine = {x[0] for x in self.ws.sql("SELECT id FROM sessions WHERE user_id = ?", (sectest.user_id(self.ws, "cs1"),))}
        self.assertTrue({x["id"] for x in r.body["data"]} <= mine, r.body)
        self.assertIn(self.cs1.session_id(self.ws), {x["id"] for x in r.body["data"]})
        # an admin may
        r = self.boss.get("/api/v1/users/cs1/sessions")
        self.assertEqual(r.status, 200, r.body)
        self.assertIn(self.cs1.session_id(self.ws), [x["id"] for x in r.body["data"]])

    def test_cannot_end_another_users_session(self):
        for victim in (self.boss, self.cs2):
            sid = victim.session_id(self.ws)
            with self.subTest(victim=victim.username):
                self.assertError(self.cs1.request("DELETE", "/api/v1/auth/sessions/%d" % sid), 404, "not_found")
                self.assertError(self.srv.request("DELETE", "/api/v1/auth/sessions/%d" % sid, token=self.cs_token),
                                 404, "not_found")
                self.assertEqual(victim.me().status, 200)
        self.assertIsNone(self.ws.sql("SELECT revoked_at FROM sessions WHERE id = ?", (self.boss.session_id(self.ws),))[0][0])
        # ids that are not numbers or not positive
        for bad in ("0", "-1", "abc", "1%20OR%201=1"):
            with self.subTest(id=bad):
                r = self.cs1.request("DELETE", "/api/v1/auth/sessions/" + bad)
                self.assertIn(r.status, (400, 404), r.body)

    def test_technician_token_cannot_reach_the_audit_trail(self):
        sectest.audit_barrier(self.ws, self.srv)     # the other tests' denials are written
        mark = sectest.audit_max_id(self.ws)
        for path in ("/api/v1/audit", "/api/v1/audit/verify", "/api/v1/audit?actor=user:boss&limit=500"):
            with self.subTest(path=path):
                self.assertError(self.srv.get(path, token=self.tech_token), 403, "forbidden")
        sectest.audit_barrier(self.ws, self.srv)
        denied = sectest.audit(self.ws, "action = 'access.denied' AND id > ? AND request_id NOT LIKE 'barrier-%'", (mark,))
        self.assertEqual([(x["actor"], x["role"]) for x in denied], [("token:tech-tok", "technician")] * 3)


if __name__ == "__main__":
    unittest.main()
