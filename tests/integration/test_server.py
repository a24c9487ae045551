"""The daemon: HTTP surface, authentication, errors, metrics, hot reload
(API, SIGHUP, control socket, file watcher), graceful shutdown, access log."""

import json
import os
import signal
import socket
import threading
import time
import unittest

import bbtest
from bbtest import BBTestCase

# A rule set whose answer the reload tests change. Line numbers matter.
def calc_rules(value=1, expect=None):
    expect = value if expect is None else expect
    return ("local M = {}\n"                                    # 1
            "function M.answer(x)\n"                            # 2
            "  return { value = %d }\n"                         # 3
            "end\n"                                             # 4
            "function M.boom(x)\n"                              # 5
            "  error(\"kaboom\")\n"                             # 6
            "end\n"                                             # 7
            "M.examples = {\n"                                  # 8
            "  { fn = \"answer\", name = \"the answer\", input = {}, expect = { value = %d } },\n"  # 9
            "}\n"                                               # 10
            "return M\n" % (value, expect))

BROKEN_CALC = ("local M = {}\n"
               "function M.answer(x)\n"
               "  return { value = }\n"     # line 3: syntax error
               "end\n"
               "return M\n")

SLOW_RULES = """local M = {}
function M.spin(x)
  local acc = 0
  for i = 1, x.n do acc = (acc + i) % 1000003 end
  return { acc = acc, n = x.n }
end
return M
"""

API_ROUTES = [
    ("GET", "/api/v1/rules"),
    ("POST", "/api/v1/rules/reload"),
    ("POST", "/api/v1/rules/call"),
    ("GET", "/api/v1/rules/versions"),
    ("GET", "/api/v1/rules/versions/0123456789abcdef"),
]


class ServerCase(BBTestCase):
    def start(self, *args, **kw):
        self.srv = self.ws.serve(*args, **kw)
        return self.srv


class Basics(ServerCase):
    def setUp(self):
        super().setUp()
        self.token = self.ws.token()
        self.start()

    def test_ready_line(self):
        rec = self.srv.ready
        self.assertEqual(rec["level"], "info")
        self.assertTrue(rec["listen"].startswith("127.0.0.1:"))
        self.assertNotEqual(self.srv.port, 0)
        self.assertEqual(rec["socket"], self.ws.socket)
        self.assertEqual(rec["db"], self.ws.db)
        self.assertTrue(os.path.exists(self.ws.socket))
        self.assertEqual(os.stat(self.ws.socket).st_mode & 0o777, 0o600)

    def test_healthz(self):
        r = self.srv.get("/healthz")
        self.assertEqual(r.status, 200)
        self.assertTrue(r.headers["Content-Type"].startswith("application/json"))
        self.assertEqual(r.body["status"], "ok")
        self.assertEqual(r.body["database"], "ok")
        self.assertTrue(bbtest.is_hex64(r.body["rules_version"]), r.body)
        want = json.loads(self.ws.ok("rules", "check", "--json").out)["version"]
        self.assertEqual(r.body["rules_version"], want)
        self.assertTrue(r.headers.get("X-Request-Id"))

    def test_request_id(self):
        a = self.srv.get("/healthz").headers["X-Request-Id"]
        b = self.srv.get("/healthz").headers["X-Request-Id"]
        self.assertTrue(a and b and a != b)
        r = self.srv.get("/healthz", headers={"X-Request-Id": "it-echo-123"})
        self.assertEqual(r.headers["X-Request-Id"], "it-echo-123")
        # echoed on errors too
        r = self.srv.get("/api/v1/rules", headers={"X-Request-Id": "it-echo-401"})
        self.assertEqual(r.status, 401)
        self.assertEqual(r.headers["X-Request-Id"], "it-echo-401")
        r = self.srv.get("/healthz", headers={"X-Request-Id": "a" * 64})
        self.assertEqual(r.headers["X-Request-Id"], "a" * 64)
        r = self.srv.get("/healthz", headers={"X-Request-Id": "b" * 65})
        self.assertNotEqual(r.headers["X-Request-Id"], "b" * 65)
        # an unsafe incoming id is replaced, not echoed
        r = self.srv.get("/healthz", headers={"X-Request-Id": "bad id\" with quotes"})
        self.assertNotIn(" ", r.headers["X-Request-Id"])
        self.assertTrue(r.headers["X-Request-Id"])

    def test_metrics(self):
        self.srv.get("/healthz")
        self.assertEqual(self.srv.call(self.token, "tax.split", {"gross": 100, "category": "internet"}).status, 200)
        r = self.srv.get("/metrics")
        self.assertEqual(r.status, 200)
        self.assertTrue(r.headers["Content-Type"].startswith("text/plain"), r.headers)
        self.assertIn("version=0.0.4", r.headers["Content-Type"])
        text = r.body
        for name, kind in (("bandbill_http_requests_total", "counter"),
                           ("bandbill_http_request_duration_seconds", "histogram"),
                           ("bandbill_rule_calls_total", "counter"),
                           ("bandbill_rules_reloads_total", "counter")):
            self.assertIn("# TYPE %s %s\n" % (name, kind), text)
        self.assertIn('bandbill_http_requests_total{route="/healthz",method="GET",status="200"} 1\n', text)
        self.assertRegex(text, r'bandbill_http_request_duration_seconds_bucket\{route="/healthz",le="\+Inf"\} 1\n')
        self.assertIn('bandbill_rule_calls_total{rule="tax.split"} 1\n', text)
        self.assertRegex(text, r"\nbandbill_rules_reloads_total [1-9]")
        # every sample line is NAME{labels} VALUE or NAME VALUE
        for line in text.splitlines():
            if line and not line.startswith("#"):
                self.assertRegex(line, r'^[a-z_]+(\{[^}]*\})? -?[0-9.e+]+$')

    def test_rule_calls_metric_counts_each_rule(self):
        """BUG (found by this suite): rules.c caches the counter of
        bandbill_rule_calls_total by the *address* of the rule name. The name
        lives in the request's arena, which is reset and reused, so the next
        request's name sits at the same address and every call is counted
        under whichever rule was called first (here: 3 calls, all reported
        as tax.split)."""
        calls = [("tax.split", {"gross": 100, "category": "internet"}),
                 ("tax.on_net", {"net": 100, "category": "internet"}),
                 ("tariffs.flat", {"price": 100, "period": {"from": "2026-01-01", "to": "2026-01-31"}})]
        for fn, inp in calls:
            self.assertEqual(self.srv.call(self.token, fn, inp).status, 200)
        text = self.srv.get("/metrics").body
        for fn, _ in calls:
            self.assertIn('bandbill_rule_calls_total{rule="%s"} 1\n' % fn, text)

    def test_api_requires_a_token(self):
        for method, path in API_ROUTES:
            with self.subTest(method=method, path=path):
                r = self.srv.request(method, path, body={} if method == "POST" else None)
                err = self.assertError(r, 401, "unauthorized")
                self.assertEqual(err["field"], "Authorization")
                self.assertTrue(r.headers.get("WWW-Authenticate", "").startswith("Bearer"), r.headers)

    def test_bad_token(self):
        for auth in ("Bearer bb_0000000000000000000000000000000000000000000000", "Bearer x", "Basic Zm9vOmJhcg==", "Bearer "):
            with self.subTest(auth=auth):
                r = self.srv.get("/api/v1/rules", headers={"Authorization": auth})
                self.assertError(r, 401, "unauthorized")
                self.assertIn("Bearer", r.headers.get("WWW-Authenticate", ""))

    def test_revoked_token(self):
        other = self.ws.token("to-revoke")
        self.assertEqual(self.srv.get("/api/v1/rules", token=other).status, 200)
        self.ws.ok("token", "revoke", "to-revoke", "--db", self.ws.db)
        r = self.srv.get("/api/v1/rules", token=other)
        self.assertError(r, 401, "unauthorized")
        self.assertIn("invalid_token", r.headers.get("WWW-Authenticate", ""))
        # the other token is unaffected
        self.assertEqual(self.srv.get("/api/v1/rules", token=self.token).status, 200)

    def test_get_rules(self):
        r = self.srv.get("/api/v1/rules", token=self.token)
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body["version"], self.srv.rules_version())
        mods = {m["name"]: m["functions"] for m in r.body["modules"]}
        self.assertIn("split", mods["tax"])
        self.assertGreater(r.body["examples"], 0)

    def test_unknown_path(self):
        for path in ("/nope", "/api/v1/nope", "/api/v2/rules", "/"):
            with self.subTest(path=path):
                self.assertError(self.srv.get(path, token=self.token), 404, "not_found")

    def test_wrong_method(self):
        cases = [("POST", "/healthz", "GET"), ("DELETE", "/api/v1/rules", "GET"),
                 ("GET", "/api/v1/rules/reload", "POST"), ("PUT", "/api/v1/rules/call", "POST")]
        for method, path, allow in cases:
            with self.subTest(method=method, path=path):
                r = self.srv.request(method, path, token=self.token)
                self.assertError(r, 405, "method_not_allowed")
                self.assertEqual(r.headers.get("Allow"), allow)

    def test_head_response_has_no_body(self):
        """BUG (found by this suite): HEAD /healthz is answered 405 with a
        JSON body and no Content-Length on a connection kept alive. A
        response to HEAD never has a body, so the stray bytes are read as the
        start of the next response on that connection."""
        s = socket.create_connection(("127.0.0.1", self.srv.port), timeout=5)
        self.addCleanup(s.close)
        s.sendall(b"HEAD /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(4096)
            self.assertTrue(chunk, "connection closed before the HEAD response headers")
            data += chunk
        head, _, rest = data.partition(b"\r\n\r\n")
        self.assertRegex(head.split(b"\r\n")[0], rb"^HTTP/1\.1 (200|405) ")
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
        while b"\r\n\r\n" not in rest:
            chunk = s.recv(4096)
            if not chunk:
                break
            rest += chunk
        self.assertTrue(rest.startswith(b"HTTP/1.1 200 "),
                        "after the HEAD response the connection carries %r" % rest[:120])

    def test_bad_json_body(self):
        for raw in ("{bad", "[1,", '{"a":1}{"b":2}', '{"function": "tax.split",}', "\xff"):
            with self.subTest(raw=raw):
                r = self.srv.post("/api/v1/rules/call", raw=raw.encode("latin-1"), token=self.token)
                self.assertError(r, 400, "invalid_json")
        r = self.srv.post("/api/v1/rules/call", raw='{"function":"tax.split","function":"x"}', token=self.token)
        self.assertError(r, 400, "json_duplicate_key")
        # the same on the other POST route
        self.assertError(self.srv.post("/api/v1/rules/reload", raw="{bad", token=self.token), 400, "invalid_json")

    def test_non_json_content_type(self):
        for ctype in ("text/plain", "application/x-www-form-urlencoded", "application/jsonp"):
            with self.subTest(ctype=ctype):
                r = self.srv.post("/api/v1/rules/call", raw='{"function":"tax.split"}', content_type=ctype, token=self.token)
                err = self.assertError(r, 415, "unsupported_media_type")
                self.assertEqual(err["field"], "Content-Type")
        r = self.srv.post("/api/v1/rules/call", raw='{"function":"tax.split","input":{"gross":100,"category":"internet"}}',
                          content_type="application/json; charset=utf-8", token=self.token)
        self.assertEqual(r.status, 200, r.body)

    def test_rules_call(self):
        r = self.srv.call(self.token, "tax.split", {"gross": 12900, "category": "internet"})
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(r.body["result"], {"net": 12170, "rate": 6, "tax": 730})
        self.assertEqual(r.body["function"], "tax.split")
        self.assertEqual(r.body["rules_version"], self.srv.rules_version())
        r = self.srv.post("/api/v1/rules/call", {"function": "tax.split", "args": [{"gross": 100, "category": "deposit"}]},
                          token=self.token)
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(r.body["result"], {"net": 100, "rate": 0, "tax": 0})

    def test_rules_call_rule_error(self):
        r = self.srv.call(self.token, "tax.split", {"gross": 100, "category": "snacks"})
        err = self.assertError(r, 422, "rule_error")
        rule = err["rule"]
        line = bbtest.line_of(bbtest.read(os.path.join(self.ws.rules, "tax.lua")), 'error("unknown tax category')
        self.assertEqual(rule["file"], "tax.lua")
        self.assertEqual(rule["line"], line)
        self.assertEqual(rule["rule"], "tax.split")
        self.assertEqual(rule["kind"], "runtime")
        self.assertIn("snacks", rule["message"])
        self.assertIn("tax.lua:%d" % line, err["message"])

    def test_rules_call_unknown_function(self):
        for fn in ("tax.nosuch", "nosuch.split"):
            with self.subTest(fn=fn):
                self.assertError(self.srv.call(self.token, fn, {}), 404)

    def test_rules_call_bad_requests(self):
        cases = [({"input": {}}, "missing_field"), ({"function": 7}, "invalid_field"), ([1, 2], "invalid_body"),
                 ({"function": "tax.split", "extra": 1}, "unknown_field"), ({"function": "nodot"}, "invalid_rule_name"),
                 ({"function": "tax.split", "args": {"a": 1}}, "invalid_field")]
        for body, code in cases:
            with self.subTest(body=body):
                self.assertError(self.srv.post("/api/v1/rules/call", body, token=self.token), 400, code)

    def test_access_log(self):
        rids = []
        for i, (path, tok) in enumerate((("/healthz", None), ("/api/v1/rules", self.token), ("/api/v1/rules", None),
                                         ("/nope", None), ("/metrics", None))):
            rid = "it-log-%d" % i
            rids.append((rid, path))
            self.srv.get(path, token=tok, headers={"X-Request-Id": rid})
        for rid, path in rids:
            self.srv.wait_event("http", rid=rid)
        http_lines = self.srv.events("http")
        for rid, path in rids:
            mine = [l for l in http_lines if l.get("rid") == rid]
            self.assertEqual(len(mine), 1, mine)
            self.assertEqual(mine[0]["path"], path)
            self.assertEqual(mine[0]["method"], "GET")
            for k in ("ts", "level", "status", "ms", "who"):
                self.assertIn(k, mine[0])
        by_rid = {l["rid"]: l for l in http_lines}
        self.assertEqual(by_rid["it-log-0"]["status"], 200)
        self.assertEqual(by_rid["it-log-1"]["who"], "token:it-admin")
        self.assertEqual(by_rid["it-log-2"]["status"], 401)
        self.assertEqual(by_rid["it-log-3"]["status"], 404)
        # every stderr line of the daemon is JSON
        for raw in self.srv.raw:
            json.loads(raw)


class BodyLimit(ServerCase):
    def test_body_over_limit(self):
        token = self.ws.token()
        self.start("--set", "http.max_body_kb=1")
        big = json.dumps({"function": "tax.split", "input": {"pad": "x" * 1500}})
        self.assertGreater(len(big), 1024)
        r = self.srv.post("/api/v1/rules/call", raw=big, token=token)
        err = self.assertError(r, 413, "body_too_large")
        self.assertIn("1024", err["message"])
        # just under the limit is fine (and reaches the handler)
        small = json.dumps({"function": "tax.split", "input": {"gross": 100, "category": "internet", "pad": "x" * 800}})
        self.assertLess(len(small), 1024)
        self.assertEqual(self.srv.post("/api/v1/rules/call", raw=small, token=token).status, 200)


class Reload(ServerCase):
    rules_files = {"calc.lua": calc_rules(1)}

    def setUp(self):
        super().setUp()
        self.token = self.ws.token()
        self.calc = os.path.join(self.ws.rules, "calc.lua")

    def answer(self):
        r = self.srv.call(self.token, "calc.answer", {})
        self.assertEqual(r.status, 200, r.body)
        return r.body["result"]["value"]

    def reload(self):
        return self.srv.post("/api/v1/rules/reload", token=self.token)

    def settle(self):
        """Waits for the scheduler's first pass (it writes job_state at
        start), so that no other connection writes while a test checks the
        daemon's own records (see test_reload_recorded_after_another_process_writes)."""
        bbtest.poll(lambda: self.ws.sql("SELECT count(*) FROM job_state WHERE last_scheduled_for IS NOT NULL")[0][0] >= 2,
                    what="the scheduler's first pass")

    def test_reload_changes_version_and_answer(self):
        self.start()
        v1 = self.srv.rules_version()
        self.assertEqual(self.answer(), 1)
        r = self.reload()
        self.assertEqual(r.status, 200, r.body)
        self.assertFalse(r.body["changed"])
        bbtest.write(self.calc, calc_rules(2))
        r = self.reload()
        self.assertEqual(r.status, 200, r.body)
        self.assertTrue(r.body["changed"])
        self.assertEqual(r.body["previous"], v1)
        v2 = self.srv.rules_version()
        self.assertNotEqual(v1, v2)
        self.assertEqual(r.body["version"], v2)
        self.assertEqual(self.answer(), 2)
        self.assertEqual(self.srv.call(self.token, "calc.answer", {}).body["rules_version"], v2)
        self.srv.wait_event("rules_reloaded", changed=1)
        metrics = self.srv.get("/metrics").body
        self.assertRegex(metrics, r"\nbandbill_rules_reloads_total [3-9]")

    def assertFailedReload(self, r, v1, file, line=None):
        err = self.assertError(r, 422)
        self.assertEqual(err["rule"]["file"], file, err)
        if line is not None:
            self.assertEqual(err["rule"]["line"], line, err)
            self.assertIn("%s:%d" % (file, line), err["message"])
        self.assertEqual(self.srv.rules_version(), v1)
        self.assertEqual(self.answer(), 1)
        return err

    def test_failed_reload_syntax_error_keeps_old_rules(self):
        self.start()
        v1 = self.srv.rules_version()
        self.assertEqual(self.answer(), 1)
        bbtest.write(self.calc, BROKEN_CALC)
        err = self.assertFailedReload(self.reload(), v1, "calc.lua", 3)
        self.assertEqual(err["code"], "rule_error")
        self.assertEqual(err["rule"]["kind"], "syntax")
        self.srv.wait_event("rules_reload_failed")
        metrics = self.srv.get("/metrics").body
        self.assertIn("\nbandbill_rules_reload_failures_total 1\n", metrics)
        # fixing the file makes the next reload succeed
        bbtest.write(self.calc, calc_rules(5))
        self.assertEqual(self.reload().status, 200)
        self.assertEqual(self.answer(), 5)

    def test_failed_reload_failing_example_keeps_old_rules(self):
        self.start()
        v1 = self.srv.rules_version()
        self.assertEqual(self.answer(), 1)
        bbtest.write(self.calc, calc_rules(2, expect=1))
        err = self.assertFailedReload(self.reload(), v1, "calc.lua")
        self.assertEqual(err["code"], "rule_example_failed")
        self.assertEqual(err["rule"]["kind"], "example")
        self.assertIn("the answer", err["message"])
        self.assertIn("expected 1, got 2", err["message"])

    def test_failed_reload_failing_example_names_file_and_line(self):
        """BUG (found by this suite): a reload refused because an example
        fails reports rule.file "calc.lua" with rule.line 0, and neither the
        API message nor `bandbill rules reload` (whose help promises "prints
        the error with file:line") names file:line; the example's line (9
        here) is never reported."""
        self.start()
        bbtest.write(self.calc, calc_rules(2, expect=1))
        r = self.reload()
        err = self.assertError(r, 422)
        self.assertGreater(err["rule"]["line"], 0, err)
        self.assertRegex(err["message"], r"calc\.lua:\d+", err)

    def test_reload_recorded_after_another_process_writes(self):
        """BUG (found by this suite): auth_token_lookup leaves its cached
        SELECT stepped but not reset, so after any token-authenticated request
        the daemon's connection keeps a read transaction open on an old
        snapshot. Once another process writes the database (here `bandbill
        token create`), the daemon's next write fails at once: the reload
        succeeds and goes live, but rules_store logs "rules_store_failed:
        begin transaction: database is locked" and the new version is never
        recorded in rule_versions/rule_loads (so GET
        /api/v1/rules/versions/{live version} is 404 and `rules show|diff`
        cannot see it). The open read transaction also keeps WAL checkpoints
        from completing."""
        self.start()
        self.settle()
        self.assertEqual(self.srv.get("/api/v1/rules", token=self.token).status, 200)
        self.ws.token("another-writer")
        bbtest.write(self.calc, calc_rules(2))
        mark = self.srv.mark()
        r = self.ws.run("rules", "reload", "--db", self.ws.db)
        self.assertEqual(r.rc, 0, str(r))
        self.srv.wait_event("rules_reloaded", start=mark, changed=1)
        live = self.srv.rules_version()
        self.assertEqual([e for e in self.srv.events("rules_store_failed")], [])
        versions = [row[0] for row in self.ws.sql("SELECT version FROM rule_loads ORDER BY id")]
        self.assertEqual(versions[-1], live, "the live version was not recorded")
        r = self.srv.get("/api/v1/rules/versions/" + live, token=self.token)
        self.assertEqual(r.status, 200, r.body)

    def test_sighup_reloads(self):
        self.start()
        v1 = self.srv.rules_version()
        bbtest.write(self.calc, calc_rules(3))
        mark = self.srv.mark()
        self.srv.send(signal.SIGHUP)
        rec = self.srv.wait_event("rules_reloaded", start=mark, source="sighup")
        self.assertEqual(rec["changed"], 1)
        self.assertNotEqual(self.srv.rules_version(), v1)
        self.assertEqual(self.answer(), 3)
        # a failing SIGHUP reload keeps the rules and the daemon
        v2 = self.srv.rules_version()
        bbtest.write(self.calc, BROKEN_CALC)
        mark = self.srv.mark()
        self.srv.send(signal.SIGHUP)
        rec = self.srv.wait_event("rules_reload_failed", start=mark, source="sighup")
        self.assertIn("calc.lua:3", rec["error"])
        self.assertEqual(self.srv.rules_version(), v2)
        self.assertEqual(self.answer(), 3)
        self.srv.stop()

    def test_cli_reload_over_control_socket(self):
        self.start()
        self.settle()
        v1 = self.srv.rules_version()
        r = self.ws.run("rules", "reload", "--db", self.ws.db)
        self.assertEqual(r.rc, 0, str(r))
        self.assertIn("unchanged: version %s" % v1[:12], r.out)
        bbtest.write(self.calc, calc_rules(4))
        r = self.ws.run("rules", "reload", "--db", self.ws.db)
        self.assertEqual(r.rc, 0, str(r))
        v2 = self.srv.rules_version()
        self.assertIn("reloaded: version %s (was %s)" % (v2[:12], v1[:12]), r.out)
        self.assertEqual(self.answer(), 4)
        rec = self.srv.wait_event("rules_reloaded", changed=1)
        self.assertTrue(rec["by"].startswith("local:"), rec)
        # --json passes the daemon's answer through
        r = self.ws.run("rules", "reload", "--db", self.ws.db, "--json")
        self.assertEqual(r.rc, 0, str(r))
        self.assertEqual(json.loads(r.out)["version"], v2)
        # a failure: exit 1, one line naming file:line, the old rules stay
        bbtest.write(self.calc, BROKEN_CALC)
        r = self.ws.run("rules", "reload", "--db", self.ws.db)
        self.assertOneErrorLine(r, "calc.lua:3", "old rules")
        self.assertEqual(self.srv.rules_version(), v2)
        self.assertEqual(self.answer(), 4)
        # the versions the CLI made live are recorded with their source
        sources = [row[0] for row in self.ws.sql("SELECT source FROM rule_loads ORDER BY id")]
        self.assertEqual(sources, ["start", "api"])

    def test_cli_reload_explicit_socket(self):
        sock = self.ws.path("ctl.sock")
        self.start("--socket", sock)
        self.assertEqual(self.srv.ready["socket"], sock)
        r = self.ws.run("rules", "reload", "--socket", sock)
        self.assertEqual(r.rc, 0, str(r))
        r = self.ws.run("rules", "reload", "--db", self.ws.db)
        self.assertOneErrorLine(r, "bandbill.sock")

    def test_cli_reload_without_daemon(self):
        r = self.ws.run("rules", "reload", "--db", self.ws.db)
        self.assertOneErrorLine(r, "bandbill.sock", "bandbill serve")

    def test_versions_pagination(self):
        self.start()
        self.settle()
        for v in (2, 3):
            bbtest.write(self.calc, calc_rules(v))
            self.assertEqual(self.reload().status, 200)
        r = self.srv.get("/api/v1/rules/versions", token=self.token)
        self.assertEqual(r.status, 200, r.body)
        everything = r.body["data"]
        self.assertEqual(len(everything), 3)
        self.assertIsNone(r.body["next_cursor"])
        self.assertEqual(everything[0]["version"], self.srv.rules_version())
        self.assertEqual([d["source"] for d in everything], ["api", "api", "start"])
        seen, cursor, pages = [], None, 0
        while True:
            path = "/api/v1/rules/versions?limit=1" + ("&cursor=" + cursor if cursor else "")
            r = self.srv.get(path, token=self.token)
            self.assertEqual(r.status, 200, r.body)
            self.assertEqual(len(r.body["data"]), 1)
            seen += r.body["data"]
            pages += 1
            cursor = r.body["next_cursor"]
            if cursor is None:
                break
            self.assertIsInstance(cursor, str)
            self.assertLess(pages, 10)
        self.assertEqual(seen, everything)
        r = self.srv.get("/api/v1/rules/versions?limit=2", token=self.token)
        self.assertEqual(len(r.body["data"]), 2)
        r2 = self.srv.get("/api/v1/rules/versions?limit=2&cursor=" + r.body["next_cursor"], token=self.token)
        self.assertEqual(r.body["data"] + r2.body["data"], everything)
        self.assertIsNone(r2.body["next_cursor"])
        for q in ("limit=0", "limit=501", "limit=x", "cursor=abc", "cursor=-1"):
            with self.subTest(q=q):
                self.assertError(self.srv.get("/api/v1/rules/versions?" + q, token=self.token), 400, "invalid_parameter")

    def test_version_detail_and_file(self):
        self.start()
        v = self.srv.rules_version()
        for ref in (v, v[:8]):
            with self.subTest(ref=ref):
                r = self.srv.get("/api/v1/rules/versions/" + ref, token=self.token)
                self.assertEqual(r.status, 200, r.body)
                self.assertEqual(r.body["version"], v)
                self.assertEqual(r.body["files"], [{"path": "calc.lua", "bytes": len(calc_rules(1))}])
        r = self.srv.get("/api/v1/rules/versions/%s?file=calc.lua" % v, token=self.token)
        self.assertEqual(r.status, 200)
        self.assertTrue(r.headers["Content-Type"].startswith("text/plain"))
        self.assertEqual(r.body, calc_rules(1))
        # the stored text survives edits of the folder
        bbtest.write(self.calc, calc_rules(2))
        self.assertEqual(self.reload().status, 200)
        r = self.srv.get("/api/v1/rules/versions/%s?file=calc.lua" % v, token=self.token)
        self.assertEqual(r.body, calc_rules(1))
        self.assertError(self.srv.get("/api/v1/rules/versions/%s?file=nope.lua" % v, token=self.token), 404)
        self.assertError(self.srv.get("/api/v1/rules/versions/0000000000000000", token=self.token), 404)
        self.assertError(self.srv.get("/api/v1/rules/versions/xyz", token=self.token), 400)

    def test_starter_tax_file_of_a_version(self):
        ws2 = bbtest.Workspace()
        self.addCleanup(ws2.close)
        ws2.init()
        tok = ws2.token()
        srv = ws2.serve()
        v = srv.rules_version()
        r = srv.get("/api/v1/rules/versions/%s?file=tax.lua" % v, token=tok)
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, bbtest.read(os.path.join(ws2.rules, "tax.lua")))
        srv.stop()

    def test_watch_reloads_on_edit(self):
        self.start("--set", "rules.watch=true")
        v1 = self.srv.rules_version()
        mark = self.srv.mark()
        t0 = time.monotonic()
        bbtest.write(self.calc, calc_rules(7))
        v2 = bbtest.poll(lambda: (lambda v: v if v != v1 else None)(self.srv.rules_version()),
                         timeout=5, what="the watcher to reload")
        elapsed = time.monotonic() - t0
        self.assertLess(elapsed, 2.5, "the watcher took %.2fs" % elapsed)
        self.assertNotEqual(v2, v1)
        self.assertEqual(self.answer(), 7)
        self.srv.wait_event("rules_reloaded", start=mark, source="watch")
        # a new file in the folder counts too
        v3_mark = self.srv.mark()
        bbtest.write(os.path.join(self.ws.rules, "extra.lua"), "return { hello = function() return 'hi' end }\n")
        self.srv.wait_event("rules_reloaded", start=v3_mark, source="watch", timeout=5)
        r = self.srv.call(self.token, "extra.hello")
        self.assertEqual(r.body["result"], "hi")
        # a broken edit is refused and the old rules stay
        v3 = self.srv.rules_version()
        mark = self.srv.mark()
        bbtest.write(self.calc, BROKEN_CALC)
        self.srv.wait_event("rules_reload_failed", start=mark, source="watch", timeout=5)
        self.assertEqual(self.srv.rules_version(), v3)
        self.assertEqual(self.answer(), 7)


    def test_watch_sees_files_in_a_new_subfolder(self):
        """BUG (found by this suite): the watcher adds inotify watches for the
        folders that exist at start only. A subfolder created later is never
        watched, so writing or editing lib/extra.lua inside it does not
        reload (only the creation of the folder itself is seen)."""
        self.start("--set", "rules.watch=true")
        mark = self.srv.mark()
        os.mkdir(os.path.join(self.ws.rules, "lib"))
        self.srv.wait_event("rules_reloaded", start=mark, source="watch", timeout=5)
        mark = self.srv.mark()
        bbtest.write(os.path.join(self.ws.rules, "lib", "extra.lua"), "return { f = function() return 2 end }\n")
        self.srv.wait_event("rules_reloaded", start=mark, source="watch", changed=1, timeout=3)
        self.assertEqual(self.srv.call(self.token, "lib.extra.f").body["result"], 2)

    def test_concurrent_reloads_all_answered(self):
        self.start()
        bbtest.write(self.calc, calc_rules(6))
        results = []

        def go():
            results.append(self.reload())

        threads = [threading.Thread(target=go) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(20)
        self.assertEqual(len(results), 6)
        for r in results:
            self.assertEqual(r.status, 200, r.body)
        self.assertEqual(sum(1 for r in results if r.body["changed"]), 1, [r.body for r in results])
        self.assertEqual({r.body["version"] for r in results}, {self.srv.rules_version()})
        self.assertEqual(self.answer(), 6)


class RuleLimits(ServerCase):
    rules_files = {
        "calc.lua": calc_rules(1),
        "greedy.lua": ("local M = {}\n"
                       "function M.eat(x)\n"
                       "  local t = {}\n"
                       "  for i = 1, 10000000 do t[i] = ('x'):rep(65536) .. i end\n"
                       "  return #t\n"
                       "end\n"
                       "function M.spin(x)\n"
                       "  while true do end\n"
                       "end\n"
                       "function M.catch(x)\n"
                       "  return pcall(function() while true do end end)\n"
                       "end\n"
                       "return M\n"),
    }

    def test_limits_fail_the_call_not_the_daemon(self):
        token = self.ws.token()
        self.start("--set", "rules.max_memory_mb=4", "--set", "rules.max_instructions=200000")
        cases = [("greedy.eat", "memory", "memory limit of 4 MiB exceeded"),
                 ("greedy.spin", "budget", "instruction budget of 200000 exceeded"),
                 ("greedy.catch", "budget", "instruction budget of 200000 exceeded")]
        for fn, kind, msg in cases:
            with self.subTest(fn=fn):
                r = self.srv.call(token, fn, {})
                err = self.assertError(r, 422, "rule_error")
                self.assertEqual(err["rule"]["kind"], kind, err)
                self.assertEqual(err["rule"]["file"], "greedy.lua")
                self.assertIn(msg, err["message"])
                r = self.srv.call(token, "calc.answer", {})
                self.assertEqual(r.status, 200, r.body)
                self.assertEqual(r.body["result"], {"value": 1})
        self.assertEqual(self.srv.healthz()["status"], "ok")
        self.srv.stop()


class Lifecycle(ServerCase):
    def test_sigterm_finishes_inflight_request(self):
        ws = bbtest.Workspace(rules_files={"slow.lua": SLOW_RULES})
        self.addCleanup(ws.close)
        ws.init()
        tok = ws.token()
        srv = ws.serve("--set", "rules.max_instructions=1000000000")

        def call(n):
            t = time.monotonic()
            r = srv.call(tok, "slow.spin", {"n": n})
            return r, time.monotonic() - t

        # calibrate: aim for a call of about half a second on this machine
        base = 2000000
        r, took = call(base)
        self.assertEqual(r.status, 200, r.body)
        n = int(base * 0.5 / max(took, 0.002))
        n = max(base, min(n, 150000000))

        result = {}

        def slow():
            result["start"] = time.monotonic()
            try:
                result["resp"], result["took"] = call(n)
                result["end"] = time.monotonic()
            except Exception as exc:  # noqa: BLE001 - asserted below
                result["exc"] = exc

        th = threading.Thread(target=slow)
        mark = srv.mark()
        th.start()
        time.sleep(0.1)  # let the request reach the rule
        t_term = time.monotonic()
        srv.send(signal.SIGTERM)
        th.join(15)
        self.assertFalse(th.is_alive(), "the in-flight request never finished")
        self.assertNotIn("exc", result, result)
        resp = result["resp"]
        self.assertLess(result["start"], t_term)
        self.assertGreater(result["end"], t_term, "the request was not in flight at SIGTERM")
        self.assertEqual(resp.status, 200, resp.body)
        self.assertEqual(resp.body["result"]["n"], n)
        srv.wait_event("shutdown", start=mark, signal="SIGTERM")

        # the daemon logs "shutdown" just before it closes its listener
        def refused():
            try:
                socket.create_connection(("127.0.0.1", srv.port), timeout=2).close()
                return False
            except OSError:
                return True

        bbtest.poll(refused, timeout=1.0, interval=0.01, what="new connections to be refused")
        for _ in range(3):
            self.assertTrue(refused(), "a new connection was accepted after the listener closed")
        rc = srv.wait_exit(5)
        self.assertEqual(rc, 0, srv.stderr_text)
        self.assertLess(time.monotonic() - t_term, 5.0)
        self.assertFalse(os.path.exists(ws.socket), "the control socket is removed on exit")
        srv.wait_event("stopped", start=mark, timeout=1)

    def test_sigterm_and_sigint_idle(self):
        for sig in (signal.SIGTERM, signal.SIGINT):
            with self.subTest(sig=sig):
                srv = self.ws.serve()
                self.assertEqual(srv.rules_version(), srv.healthz()["rules_version"])
                t = time.monotonic()
                srv.stop(sig, expect=0, timeout=5)
                self.assertLess(time.monotonic() - t, 3)
                self.assertEqual(srv.events("shutdown")[-1]["signal"], "SIGTERM" if sig == signal.SIGTERM else "SIGINT")

    def test_second_serve_on_same_db_is_refused(self):
        tok = self.ws.token()
        first = self.start()
        r = self.ws.run("serve", "--listen", "127.0.0.1:0", "--db", self.ws.db, "--rules", self.ws.rules, timeout=20)
        self.assertEqual(r.rc, 1, str(r))
        last = r.err_lines[-1]
        self.assertTrue(last.startswith("bandbill:"), str(r))
        self.assertIn("already serving", last)
        self.assertIn(self.ws.socket, last)
        # the first daemon is untouched: HTTP and its control socket still work
        self.assertEqual(first.healthz()["status"], "ok")
        self.assertEqual(first.get("/api/v1/rules", token=tok).status, 200)
        self.assertTrue(os.path.exists(self.ws.socket))
        self.assertEqual(self.ws.run("rules", "reload", "--db", self.ws.db).rc, 0)
        first.stop()

    def test_stale_socket_after_kill(self):
        srv = self.start()
        srv.stop(signal.SIGKILL, expect=-signal.SIGKILL)
        self.assertTrue(os.path.exists(self.ws.socket), "a killed daemon leaves its socket file")
        again = self.ws.serve()
        self.assertEqual(again.healthz()["status"], "ok")
        self.assertEqual(self.ws.run("rules", "reload", "--db", self.ws.db).rc, 0)
        again.stop()

    def test_startup_with_broken_rules(self):
        bad = self.ws.make_rules("bad", {"broken.lua": "local M = {}\n\nfunction M.f(\nreturn M\n"})
        r = self.ws.run("serve", "--listen", "127.0.0.1:0", "--rules", bad, timeout=20)
        self.assertEqual(r.rc, 1, str(r))
        last = r.err_lines[-1]
        self.assertTrue(last.startswith("bandbill:"), str(r))
        self.assertRegex(last, r"broken\.lua:\d+")
        self.assertFalse(os.path.exists(self.ws.socket))

    def test_startup_with_failing_example(self):
        bad = self.ws.make_rules("bad", {"calc.lua": calc_rules(2, expect=1)})
        r = self.ws.run("serve", "--listen", "127.0.0.1:0", "--rules", bad, timeout=20)
        self.assertEqual(r.rc, 1, str(r))
        self.assertIn("calc", r.err_lines[-1])
        self.assertIn("expected 1, got 2", r.err_lines[-1])

    def test_startup_errors(self):
        cases = [
            (["--listen", "127.0.0.1:notaport"], "listen"),
            (["--listen", "127.0.0.1:0", "--db", self.ws.path("var", "none.db")], "none.db"),
            (["--listen", "127.0.0.1:0", "--rules", self.ws.path("no-rules")], "no-rules"),
        ]
        for args, needle in cases:
            with self.subTest(args=args):
                r = self.ws.run("serve", *args, timeout=20)
                self.assertEqual(r.rc, 1, str(r))
                self.assertTrue(r.err_lines[-1].startswith("bandbill:"), str(r))
                self.assertIn(needle, r.err_lines[-1])

    def test_port_in_use(self):
        holder = socket.socket()
        holder.bind(("127.0.0.1", 0))
        holder.listen(1)
        self.addCleanup(holder.close)
        port = holder.getsockname()[1]
        r = self.ws.run("serve", "--listen", "127.0.0.1:%d" % port, timeout=20)
        self.assertEqual(r.rc, 1, str(r))
        self.assertIn("127.0.0.1:%d" % port, r.err_lines[-1])
        self.assertFalse(os.path.exists(self.ws.socket))

    def test_log_file(self):
        log = self.ws.path("var", "bandbill.log")
        srv = self.ws.serve("--set", "log.file=" + log, wait=False)

        def ready():
            if not os.path.exists(log):
                return None
            for line in bbtest.read(log).splitlines():
                rec = json.loads(line)
                if rec["event"] == "ready":
                    return rec
            return None

        rec = bbtest.poll(ready, timeout=10, what="the ready line in the log file")
        srv.port = int(rec["listen"].rpartition(":")[2])
        srv.get("/healthz", headers={"X-Request-Id": "it-file-log"})
        bbtest.poll(lambda: "it-file-log" in bbtest.read(log), what="the access log line in the file")
        srv.stop()
        records = [json.loads(l) for l in bbtest.read(log).splitlines()]
        self.assertIn("stopped", [r["event"] for r in records])
        self.assertEqual(srv.events(), [], "with log.file set, nothing is logged on stderr")

    def test_sighup_reopens_the_log_file(self):
        log = self.ws.path("var", "bandbill.log")
        srv = self.ws.serve("--set", "log.file=" + log, wait=False)
        rec = bbtest.poll(lambda: os.path.exists(log) and [json.loads(l) for l in bbtest.read(log).splitlines()
                                                          if '"ready"' in l], timeout=10, what="the ready line")[0]
        srv.port = int(rec["listen"].rpartition(":")[2])
        os.rename(log, log + ".1")          # what logrotate does
        srv.send(signal.SIGHUP)
        bbtest.poll(lambda: os.path.exists(log), what="a new log file after SIGHUP")
        srv.get("/healthz", headers={"X-Request-Id": "it-after-rotate"})
        bbtest.poll(lambda: "it-after-rotate" in bbtest.read(log), what="the request in the new log file")
        self.assertNotIn("it-after-rotate", bbtest.read(log + ".1"))
        srv.stop()

    def test_idle_connection_timeout(self):
        srv = self.start("--set", "http.timeout_s=1")
        s = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
        self.addCleanup(s.close)
        t = time.monotonic()
        self.assertEqual(s.recv(16), b"", "the idle connection was not closed")
        self.assertLess(time.monotonic() - t, 5)
        self.assertEqual(srv.healthz()["status"], "ok")

if __name__ == "__main__":
    unittest.main()
