"""Notification delivery (the outbox's dispatcher) to real receivers on
loopback, started here: an SMS gateway over HTTP that checks the
HMAC-SHA256 signature of each body and can be told to fail, an SMTP sink
(Debian's aiosmtpd) that receives real mails, and a WeChat template
message endpoint.

Covered: the collection ladder's notices reach the customer on the channel
they prefer (SMS by default, e-mail, WeChat) rendered from
rules/notices.lua (money in yuan, Chinese subjects encoded and decoded);
retries with exponential backoff, dead letters after notify.max_attempts
and a final refusal at once; a dead letter sent again through the API
(audited); a channel's rate limit; quiet hours postpone; templates edited
in the served rules folder and reloaded are used by the next message; a
rule that returns an SMS too long fails the attempt with a located error;
the messages API (filters, pages, the recipient filtered per role) and the
`bandbill outbox` commands."""

import base64
import email
import email.policy
import hashlib
import hmac
import http.server
import json
import os
import re
import socket
import sys
import threading
import time
import urllib.parse

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

import bbtest
from bbtest import BBTestCase
from test_billing import code_of, seed

try:
    from aiosmtpd.controller import Controller
except ImportError:
    # Debian's python3-aiosmtpd (scripts/test.sh installs it) is outside the
    # path of an interpreter that is not Debian's own (pyenv, a venv)
    sys.path.append("/usr/lib/python3/dist-packages")
    from aiosmtpd.controller import Controller

SECRET = "s3cret-shared-with-the-gateway"
TOKEN = "ACCESS_TOKEN-of-the-account"


class Keys:
    """Encrypts as the vault does (AES-256-GCM, the place as associated
    data) with the workspace's current data key."""

    def __init__(self, path):
        self.k = {}
        with open(path, encoding="utf-8") as f:
            for line in f:
                p = line.split()
                if len(p) == 2 and not line.startswith("#"):
                    self.k[p[0]] = base64.b64decode(p[1])
        self.cur = max((k for k in self.k if k[0] == "k"), key=lambda k: int(k[1:]))

    def encrypt(self, aad, plain):
        nonce = os.urandom(12)
        ct = AESGCM(self.k[self.cur]).encrypt(nonce, plain.encode(), aad.encode())
        return "enc:v1:%s:%s" % (self.cur, base64.b64encode(nonce + ct).decode())


# ------------------------------------------------------------ the receivers

class Gateway(http.server.ThreadingHTTPServer):
    """An SMS gateway and a WeChat template endpoint on loopback. Every
    request is recorded with the time it came; an SMS whose signature does
    not verify is answered 401 and counted. fail(n) makes the next n
    requests 500; refuse(phone) answers 400 for that number for good."""

    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), GatewayHandler)
        self.lock = threading.Lock()
        self.sms, self.wechat, self.bad_signatures = [], [], 0
        self.to_fail, self.refused, self.unfollowed = 0, set(), set()
        self.seq = 0
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.server_address[1]

    def fail(self, n):
        with self.lock:
            self.to_fail = n

    def texts(self):
        with self.lock:
            return [m["body"]["text"] for m in self.sms]

    def close(self):
        self.shutdown()
        self.server_close()


class GatewayHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"     # keep-alive, as the dispatcher uses it

    def log_message(self, *args):
        pass

    def answer(self, status, obj):
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        g = self.server
        raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        url = urllib.parse.urlsplit(self.path)
        with g.lock:
            g.seq += 1
            seq = g.seq
            failing = g.to_fail > 0
            if failing:
                g.to_fail -= 1
        if url.path == "/sms":
            ts = self.headers.get("X-Bandbill-Timestamp", "")
            want = "sha256=" + hmac.new(SECRET.encode(), ts.encode() + b"." + raw, hashlib.sha256).hexdigest()
            if not hmac.compare_digest(want, self.headers.get("X-Bandbill-Signature", "")) or \
                    abs(time.time() - int(ts or 0)) > 300:
                with g.lock:
                    g.bad_signatures += 1
                return self.answer(401, {"error": "bad signature"})
            body = json.loads(raw)
            rec = {"at": time.monotonic(), "body": body, "idem": self.headers.get("Idempotency-Key")}
            with g.lock:
                g.sms.append(dict(rec, status=500 if failing else 400 if body["to"] in g.refused else 200))
            if failing:
                return self.answer(500, {"error": "gateway overloaded"})
            if body["to"] in g.refused:
                return self.answer(400, {"error": "invalid number %s" % body["to"]})
            return self.answer(200, {"message_id": "gw-%d" % seq, "status": "accepted"})
        if url.path == "/wechat/send":
            q = urllib.parse.parse_qs(url.query)
            body = json.loads(raw)
            with g.lock:
                g.wechat.append({"at": time.monotonic(), "body": body, "token": q.get("access_token", [""])[0]})
            if failing:
                return self.answer(200, {"errcode": -1, "errmsg": "system error"})
            if body["touser"] in g.unfollowed:
                return self.answer(200, {"errcode": 43004, "errmsg": "require subscribe"})
            return self.answer(200, {"errcode": 0, "errmsg": "ok", "msgid": 200228000 + seq})
        self.answer(404, {"error": "no such path"})


class Sink:
    """An SMTP server on loopback (aiosmtpd) that keeps every mail."""

    def __init__(self):
        self.mails = []
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        self.port = s.getsockname()[1]
        s.close()
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    async def handle_DATA(self, server, session, envelope):
        self.mails.append({"from": envelope.mail_from, "to": list(envelope.rcpt_tos),
                           "msg": email.message_from_bytes(envelope.content, policy=email.policy.default)})
        return "250 2.0.0 Ok: queued"

    def close(self):
        self.controller.stop()


# ------------------------------------------------------------------ the tests

class NotifyCase(BBTestCase):
    def setUp(self):
        super().setUp()
        self.gw = Gateway()
        self.addCleanup(self.gw.close)
        self.keys = Keys(os.path.join(self.ws.var, "bandbill.key"))
        # the tests run at any hour: no quiet hours unless a test sets some
        self.quiet("")

    def quiet(self, sms):
        """Replaces notices.quiet_hours in the workspace's rules."""
        path = os.path.join(self.ws.rules, "notices.lua")
        text = bbtest.read(path)
        new, n = re.subn(r"^M\.quiet_hours = \{(?:[^\n]*\}|.*?\n\})\n", lambda m: "M.quiet_hours = {%s}\n" % sms, text,
                         count=1, flags=re.S | re.M)
        self.assertEqual(n, 1, "notices.quiet_hours not found")
        bbtest.write(path, new)
    # -- set-up helpers
    def settings(self, **extra):
        s = {"notify.sms.url": self.gw.url + "/sms", "notify.sms.secret": SECRET, "notify.poll_ms": "100",
             "notify.backoff_base_s": "1", "notify.backoff_factor": "2", "notify.backoff_jitter_pct": "0",
             "timezone": "Asia/Shanghai"}
        s.update(extra)
        args = []
        for k, v in s.items():
            args += ["--set", "%s=%s" % (k, v)]
        return args

    def customers(self, n, phones=True):
        """n customers with one unpaid bill each, due 2026-11-16, and phones 1380000000i."""
        seed(self.ws, n, start="2026-10-01", next_bill="2026-11-01")
        self.ws.ok("bill", "run", "--period", "2026-10")
        # e-bills are the billing's messages; these tests count the ladder's
        self.ws.sql("DELETE FROM outbox")
        if phones:
            for i in range(1, n + 1):
                self.ws.sql("UPDATE customers SET phone_enc = ? WHERE id = ?",
                            (self.keys.encrypt("customers.phone", "1380000%04d" % i), i))

    def message(self, event="verification_code", channel="sms", customer=1, to="13800000001", payload=None):
        """Queues one message as outbox_enqueue does; returns its id."""
        now = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
        self.ws.sql("INSERT INTO outbox (created_at, event, channel, customer_id, recipient_enc, payload, status, "
                    "next_attempt_at) VALUES (?, ?, ?, ?, ?, ?, 'pending', ?)",
                    (now, event, channel, customer, self.keys.encrypt("outbox.recipient", to) if to else None,
                     json.dumps(payload if payload is not None else {"code": "424242", "customer": code_of(customer)}), now))
        return self.ws.sql("SELECT max(id) FROM outbox")[0][0]

    def row(self, mid):
        r = self.ws.sql("SELECT status, attempts, provider_id, last_error, sent_at, driver FROM outbox WHERE id = ?", (mid,))[0]
        return dict(zip(("status", "attempts", "provider_id", "last_error", "sent_at", "driver"), r))

    def attempts(self, mid):
        return self.ws.sql("SELECT attempt, outcome, status_code, error FROM outbox_attempts WHERE message_id = ? ORDER BY id",
                           (mid,))

    def deliver(self, *args):
        return json.loads(self.ws.ok("outbox", "deliver", "--json", *self.settings(), *args).out)



class Delivery(NotifyCase):
    def test_ladder_notices_by_sms_signed(self):
        self.customers(2)
        r = json.loads(self.ws.ok("dunning", "run", "--date", "2026-11-11", "--json").out)
        self.assertEqual(r["notices"], 2)
        rows = self.ws.sql("SELECT event, channel, status, dedupe_key FROM outbox ORDER BY id")
        self.assertEqual(rows, [("dunning.renewal_reminder", "sms", "pending", "dunning:1:reminder_5:dunning.renewal_reminder:sms"),
                                ("dunning.renewal_reminder", "sms", "pending", "dunning:2:reminder_5:dunning.renewal_reminder:sms")])
        srv = self.ws.serve(*self.settings())
        bbtest.poll(lambda: len(self.gw.sms) == 2, timeout=10, what="two SMS at the gateway")
        self.assertEqual(self.gw.bad_signatures, 0)
        got = sorted(self.gw.sms, key=lambda m: m["body"]["to"])
        self.assertEqual([m["body"]["to"] for m in got], ["13800000001", "13800000002"])
        b = got[0]["body"]
        self.assertEqual(b["text"], "温馨提示：您的宽带账单INV-2026-000001应付129.00元，将于2026-11-16到期，请及时缴费以免影响使用："
                                    "https://pay.example-isp.cn/pay/INV-2026-000001")
        self.assertEqual((b["event"], b["attempt"]), ("dunning.renewal_reminder", 1))
        self.assertEqual(got[0]["idem"], b["id"])
        bbtest.poll(lambda: self.ws.sql("SELECT count(*) FROM outbox WHERE status = 'sent'")[0][0] == 2, timeout=5,
                    what="both recorded as sent")
        mid = self.ws.sql("SELECT id FROM outbox WHERE customer_id = 1")[0][0]
        row = self.row(mid)
        self.assertEqual((row["status"], row["attempts"], row["driver"]), ("sent", 1, "sms_http"))
        self.assertRegex(row["provider_id"], r"^gw-\d+$")
        self.assertEqual(self.attempts(mid), [(1, "sent", 200, None)])
        # the message as the API shows it
        tok = self.ws.token()
        m = srv.get("/api/v1/messages/%d" % mid, token=tok).body
        self.assertEqual((m["status"], m["channel"], m["event"], m["customer"], m["provider_id"]),
                         ("sent", "sms", "dunning.renewal_reminder", "C000000013", row["provider_id"]))
        self.assertEqual(m["history"][0]["outcome"], "sent")
        self.assertEqual(m["payload"]["amount"], 12900)
        srv.stop()

    def test_retries_with_backoff_then_sent(self):
        mid = self.message()
        self.gw.fail(2)
        srv = self.ws.serve(*self.settings())
        bbtest.poll(lambda: self.row(mid)["status"] == "sent", timeout=15, what="the message sent on its third attempt")
        srv.stop()
        at = [m["at"] for m in self.gw.sms]
        self.assertEqual([m["status"] for m in self.gw.sms], [500, 500, 200])
        # base 1 s, factor 2, no jitter: 1 s after the first failure, 2 s after the second
        self.assertGreaterEqual(at[1] - at[0], 0.9)
        self.assertGreaterEqual(at[2] - at[1], 1.9)
        self.assertLess(at[2] - at[0], 6)
        self.assertEqual([(a[0], a[1], a[2]) for a in self.attempts(mid)], [(1, "failed", 500), (2, "failed", 500), (3, "sent", 200)])
        self.assertIn("gateway overloaded", self.attempts(mid)[0][3])
        self.assertEqual(self.row(mid)["attempts"], 3)
        # the same idempotency key on every attempt
        self.assertEqual({m["idem"] for m in self.gw.sms}, {"bb-%d" % mid})

    def test_dead_letter_then_retry_through_the_api(self):
        mid = self.message()
        self.gw.fail(100)
        srv = self.ws.serve(*self.settings(**{"notify.max_attempts": "2"}))
        bbtest.poll(lambda: self.row(mid)["status"] == "dead", timeout=10, what="a dead letter after 2 attempts")
        row = self.row(mid)
        self.assertEqual(row["attempts"], 2)
        self.assertIn("after 2 attempts: the gateway answered 500: gateway overloaded", row["last_error"])
        self.assertEqual([a[1] for a in self.attempts(mid)], ["failed", "dead"])
        tok = self.ws.token()
        r = srv.get("/api/v1/messages?status=dead", token=tok)
        self.assertEqual([m["id"] for m in r.body["data"]], [mid])
        self.gw.fail(0)
        r = srv.post("/api/v1/messages/%d/retry" % mid, token=tok)
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual((r.body["status"], r.body["attempts"]), ("pending", 0))
        bbtest.poll(lambda: self.row(mid)["status"] == "sent", timeout=10, what="the retried message sent")
        self.assertEqual([a[1] for a in self.attempts(mid)], ["failed", "dead", "sent"])
        self.assertError(srv.post("/api/v1/messages/%d/retry" % mid, token=tok), 409, "not_dead")
        self.assertError(srv.post("/api/v1/messages/999999/retry", token=tok), 404, "not_found")
        self.assertError(srv.post("/api/v1/messages/%d/retry" % mid, {"x": 1}, token=tok), 400, "unknown_field")
        srv.stop()
        (action, obj, diff), = self.ws.sql("SELECT action, object_id, diff FROM audit_log WHERE action = 'message.retry'")
        self.assertEqual(obj, str(mid))
        d = json.loads(diff)
        self.assertEqual((d["before"]["status"], d["after"]["status"]), ("dead", "pending"))
        self.assertNotIn("13800000001", diff)

    def test_a_final_refusal_is_dead_at_once(self):
        mid = self.message(to="13800009999")
        self.gw.refused.add("13800009999")
        r = self.deliver()
        self.assertEqual((r["sent"], r["dead"]), (0, 1))
        row = self.row(mid)
        self.assertEqual((row["status"], row["attempts"]), ("dead", 1))
        self.assertIn("invalid number 13800009999", row["last_error"])

    def test_rate_limit(self):
        ids = [self.message(to="1380000%04d" % i) for i in range(12)]
        t0 = time.monotonic()
        r = self.deliver("--set", "notify.sms.rate=5", "--set", "notify.sms.burst=1")
        took = time.monotonic() - t0
        self.assertEqual(r["sent"], 12)
        at = sorted(m["at"] for m in self.gw.sms)
        # 5 a second, one at a time: 11 gaps of 0.2 s at least
        self.assertGreaterEqual(at[-1] - at[0], 11 * 0.2 - 0.05)
        for i in range(len(at) - 5):
            self.assertGreaterEqual(at[i + 5] - at[i], 0.95, "more than 5 messages within a second")
        self.assertLess(took, 15)
        self.assertEqual({self.row(i)["status"] for i in ids}, {"sent"})

    def test_quiet_hours_postpone(self):
        # a window around now (UTC here): an SMS waits for its end, a code goes at once
        now = time.gmtime()
        frm, to = "%02d:00" % ((now.tm_hour + 23) % 24), "%02d:00" % ((now.tm_hour + 2) % 24)
        self.quiet('sms = { from = "%s", to = "%s", except = { "verification_code" } }' % (frm, to))
        late = self.message(event="dunning.due_reminder",
                            payload={"invoice": "INV-2026-000001", "due_date": "2026-11-16", "amount": 12900})
        code = self.message()
        r = self.deliver("--set", "timezone=UTC")
        self.assertEqual((r["sent"], r["postponed"]), (1, 1))
        self.assertEqual(self.row(code)["status"], "sent")
        self.assertEqual(self.row(late)["status"], "pending")
        nxt = self.ws.sql("SELECT next_attempt_at FROM outbox WHERE id = ?", (late,))[0][0]
        end = time.strftime("%Y-%m-%dT%H:00:00.000Z", time.gmtime(time.time() + 2 * 3600 - now.tm_min * 60 - now.tm_sec))
        self.assertEqual(nxt, end)
        (attempt, outcome, _, error), = self.attempts(late)
        self.assertEqual((attempt, outcome), (0, "postponed"))
        self.assertIn("quiet hours on sms", error)
        self.assertEqual(len(self.gw.sms), 1)
        # nothing more is due until the window ends
        self.assertEqual(self.deliver("--set", "timezone=UTC")["sent"], 0)

    def test_templates_reload_while_serving(self):
        srv = self.ws.serve(*self.settings(), "--set", "rules.watch=false")
        payload = {"code": "135790", "username": "hz0009"}
        first = self.message(event="pppoe_reset_code", to="13800000001", payload=payload)
        bbtest.poll(lambda: self.row(first)["status"] == "sent", timeout=5, what="the first code")
        self.assertEqual(self.gw.texts(), ["您正在重置宽带账号hz0009的密码，验证码135790，10分钟内有效。如非本人操作，请忽略。"])
        path = os.path.join(srv.rules, "notices.lua")
        bbtest.write(path, bbtest.read(path).replace("您正在重置宽带账号{{username}}的密码，验证码{{code}}",
                                                     "【新】宽带账号{{username}}重置密码的验证码：{{code}}"))
        r = self.ws.run("rules", "reload", "--socket", self.ws.socket, "--db", self.ws.db)
        self.assertEqual(r.rc, 0, str(r))
        second = self.message(event="pppoe_reset_code", to="13800000002", payload=payload)
        bbtest.poll(lambda: self.row(second)["status"] == "sent", timeout=5, what="the second code")
        self.assertEqual(self.gw.texts()[1], "【新】宽带账号hz0009重置密码的验证码：135790，10分钟内有效。如非本人操作，请忽略。")
        # each attempt names the rules that rendered it
        v1, v2 = (self.ws.sql("SELECT rules_version FROM outbox_attempts WHERE message_id = ?", (m,))[0][0] for m in (first, second))
        self.assertNotEqual(v1, v2)
        self.assertEqual(v2, srv.rules_version())
        srv.stop()

    def test_a_rule_that_returns_too_long_an_sms_fails_the_attempt(self):
        path = os.path.join(self.ws.rules, "notices.lua")
        bbtest.write(path, bbtest.read(path).replace(
            'sms = "验证码{{code}}，用于验证',
            'sms = string.rep("长", 600) .. "验证码{{code}}，用于验证'))
        mid = self.message()
        r = self.deliver()
        self.assertEqual((r["sent"], r["failed"]), (0, 1))
        row = self.row(mid)
        self.assertEqual(row["status"], "failed")
        self.assertIn("rule notices.render returned an invalid value for verification_code on sms: text", row["last_error"])
        self.assertIn("must be 1 to 500", row["last_error"])
        self.assertEqual(self.gw.sms, [])
        # a rule that fails outright: located (file:line), the attempt fails, nothing crashes
        bbtest.write(path, bbtest.read(path).replace("function M.render(msg)\n", "function M.render(msg)\n  error('broken')\n"))
        self.ws.sql("UPDATE outbox SET next_attempt_at = '2000-01-01T00:00:00.000Z'")
        self.deliver()
        self.assertRegex(self.row(mid)["last_error"], r"rule notices.render failed at notices.lua:\d+")
        self.assertEqual(self.row(mid)["attempts"], 2)

    # -- e-mail and WeChat
    def test_email_over_smtp_for_a_customer_who_prefers_it(self):
        sink = Sink()
        self.addCleanup(sink.close)
        self.customers(2)
        self.ws.sql("UPDATE customers SET email_enc = ? WHERE id = 1", (self.keys.encrypt("customers.email", "zhang.san@example.com"),))
        self.ws.sql("INSERT INTO customer_tags (customer_id, tag) VALUES (1, 'prefer_email'), (2, 'prefer_email')")
        self.ws.ok("dunning", "run", "--date", "2026-11-16")
        # customer 2 has no address: the notice goes to the log instead
        self.assertEqual(self.ws.sql("SELECT customer_id, channel FROM outbox ORDER BY customer_id"), [(1, "email"), (2, "log")])
        r = self.deliver("--set", "notify.email.url=smtp://127.0.0.1:%d" % sink.port, "--set", "notify.email.from=billing@isp.example",
                         "--set", "notify.email.from_name=示例宽带", "--set", "notify.email.tls=none")
        self.assertEqual(r["sent"], 2)
        bbtest.poll(lambda: len(sink.mails) == 1, timeout=5, what="one mail at the sink")
        m = sink.mails[0]
        self.assertEqual((m["from"], m["to"]), ("billing@isp.example", ["zhang.san@example.com"]))
        msg = m["msg"]
        self.assertEqual(msg["Subject"], "宽带账单今天到期：129.00 元")
        self.assertIn("=?UTF-8?B?", msg.as_string())     # encoded on the wire
        self.assertEqual(msg["From"].addresses[0].display_name, "示例宽带")
        body = msg.get_content()
        self.assertIn("您的宽带账单今天（2026-11-16）到期", body)
        self.assertIn("应付金额：129.00 元", body)
        self.assertIn("在线缴费：https://pay.example-isp.cn/pay/INV-2026-000001", body)
        self.assertEqual(msg.get_content_type(), "text/plain")
        mid = self.ws.sql("SELECT id FROM outbox WHERE channel = 'email'")[0][0]
        self.assertEqual(self.row(mid)["provider_id"], msg["Message-ID"])

    def test_wechat_template_message(self):
        self.customers(1)
        srv = self.ws.serve(*self.settings(**{"notify.wechat.url": self.gw.url + "/wechat/send",
                                               "notify.wechat.access_token": TOKEN}))
        tok = self.ws.token()
        openid = "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"
        r = srv.request("PUT", "/api/v1/customers/C000000013/wechat", body={"openid": openid}, token=tok)
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(r.body, {"customer": "C000000013", "openid": "************************eS6o"})
        self.assertError(srv.request("PUT", "/api/v1/customers/C000000013/wechat", body={"openid": "a b"}, token=tok), 400,
                         "invalid_field")
        self.assertNotIn(openid, json.dumps(self.ws.sql("SELECT * FROM customer_wechat")))
        self.ws.sql("INSERT INTO customer_tags (customer_id, tag) VALUES (1, 'prefer_wechat')")
        self.ws.ok("dunning", "run", "--date", "2026-11-19")     # three days over: the suspension warning
        bbtest.poll(lambda: len(self.gw.wechat) == 1, timeout=10, what="a template message")
        w = self.gw.wechat[0]
        self.assertEqual(w["token"], TOKEN)
        self.assertEqual(set(w["body"]), {"touser", "template_id", "url", "data"})
        self.assertEqual((w["body"]["touser"], w["body"]["template_id"]), (openid, "TPL_SUSPENSION_WARNING"))
        self.assertEqual(w["body"]["url"], "https://pay.example-isp.cn/pay/INV-2026-000001")
        self.assertEqual(w["body"]["data"]["first"], {"value": "停机预警：您的宽带将于2026-11-23停机"})
        self.assertEqual(w["body"]["data"]["keyword2"], {"value": "129.00元"})
        mid = self.ws.sql("SELECT id FROM outbox WHERE channel = 'wechat'")[0][0]
        bbtest.poll(lambda: self.row(mid)["status"] == "sent", timeout=5, what="recorded as sent")
        self.assertRegex(self.row(mid)["provider_id"], r"^2002\d+$")
        # an account the customer no longer follows: dead at once
        self.gw.unfollowed.add(openid)
        other = self.message(event="service.restore", channel="wechat", to=openid, payload={"from": "suspended"})
        bbtest.poll(lambda: self.row(other)["status"] == "dead", timeout=5, what="refused for good")
        self.assertIn("errcode 43004", self.row(other)["last_error"])
        # the openid is personal data: in clear for an admin (and the view audited), masked for customer service
        m = srv.get("/api/v1/messages/%d" % other, token=tok).body
        self.assertEqual(m["openid"], openid)
        m = srv.get("/api/v1/messages/%d" % other, token=self.ws.token("it-cs", "customer_service")).body
        self.assertNotIn(openid, json.dumps(m))
        self.assertEqual(srv.request("DELETE", "/api/v1/customers/C000000013/wechat", token=tok).body["openid"], None)
        self.assertError(srv.request("DELETE", "/api/v1/customers/C000000013/wechat", token=tok), 404, "not_found")
        srv.stop()


class MessagesApi(NotifyCase):
    def test_list_filters_pages_and_roles(self):
        self.customers(2)
        a = self.message(customer=1, to="13812348000")
        b = self.message(customer=2, event="service.restore", channel="log", to=None, payload={"from": "suspended"})
        c = self.message(customer=2, channel="email", to="li.na@example.com")
        srv = self.ws.serve("--set", "notify.dispatch=false")
        admin = self.ws.token()
        r = srv.get("/api/v1/messages", token=admin)
        self.assertEqual([m["id"] for m in r.body["data"]], [c, b, a])
        self.assertIsNone(r.body["next_cursor"])
        r = srv.get("/api/v1/messages?limit=2", token=admin)
        self.assertEqual([m["id"] for m in r.body["data"]], [c, b])
        r = srv.get("/api/v1/messages?limit=2&cursor=" + r.body["next_cursor"], token=admin)
        self.assertEqual([m["id"] for m in r.body["data"]], [a])
        self.assertEqual([m["id"] for m in srv.get("/api/v1/messages?customer=%s" % code_of(2), token=admin).body["data"]], [c, b])
        self.assertEqual([m["id"] for m in srv.get("/api/v1/messages?channel=sms", token=admin).body["data"]], [a])
        self.assertEqual([m["id"] for m in srv.get("/api/v1/messages?event=service.restore", token=admin).body["data"]], [b])
        self.assertEqual([m["id"] for m in srv.get("/api/v1/messages?status=pending&channel=email", token=admin).body["data"]], [c])
        self.assertError(srv.get("/api/v1/messages?status=lost", token=admin), 400, "invalid_parameter")
        self.assertError(srv.get("/api/v1/messages?channel=pigeon", token=admin), 400, "invalid_parameter")
        self.assertError(srv.get("/api/v1/messages?customer=" + code_of(99), token=admin), 404, "not_found")
        self.assertError(srv.get("/api/v1/messages/0", token=admin), 404, "not_found")
        self.assertError(srv.get("/api/v1/messages/abc", token=admin), 404, "not_found")
        one = srv.get("/api/v1/messages/%d" % a, token=admin).body
        self.assertEqual(one["payload"]["code"], "******")        # a one-time code is never shown
        self.assertEqual((one["status"], one["attempts"], one["history"]), ("pending", 0, []))
        self.assertIn("phone", one)
        self.assertNotEqual(one["phone"], None)
        # the recipient as the role sees the customer's phone and e-mail
        aud = self.ws.token("aud", "auditor")
        m = {x["id"]: x for x in srv.get("/api/v1/messages", token=aud).body["data"]}
        self.assertEqual(m[a]["phone"], "138****8000")
        self.assertEqual(m[c]["email"], "l****@example.com")
        self.assertNotIn("phone", m[b])
        tech = self.ws.token("tech", "technician")
        self.assertError(srv.get("/api/v1/messages", token=tech), 403, "forbidden")
        self.assertError(srv.post("/api/v1/messages/%d/retry" % a, token=aud), 403, "forbidden")
        srv.stop()

    def test_outbox_commands(self):
        a = self.message(to="13812348000")
        r = self.ws.ok("outbox", "list")
        self.assertIn("verification_code", r.out)
        self.assertIn("pending", r.out)
        r = json.loads(self.ws.ok("outbox", "list", "--json", "--channel", "sms").out)
        self.assertEqual([m["id"] for m in r], [a])
        self.gw.refused.add("13812348000")
        self.deliver()
        r = self.ws.ok("outbox", "show", str(a))
        self.assertIn("dead", r.out)
        self.assertIn("invalid number 13812348000", r.out)
        self.assertIn("#1", r.out)
        self.assertNotIn("424242", r.out)
        self.gw.refused.clear()
        r = self.ws.ok("outbox", "retry", str(a))
        self.assertIn("pending again", r.out)
        self.assertOneErrorLine(self.ws.run("outbox", "retry", str(a)), "only a dead message")
        self.assertOneErrorLine(self.ws.run("outbox", "show", "x"), rc=2)
        self.assertEqual(self.deliver()["sent"], 1)
        self.assertEqual(self.row(a)["status"], "sent")
        self.assertEqual(self.ws.sql("SELECT count(*) FROM audit_log WHERE action = 'message.retry'"), [(1,)])
        # a channel set up wrong stops the command, naming the setting
        r = self.ws.run("outbox", "deliver", "--set", "notify.sms.url=ftp://x", "--set", "notify.sms.secret=" + SECRET)
        self.assertOneErrorLine(r, "notify.sms")
        r = self.ws.run("outbox", "deliver", "--set", "notify.pigeon.url=x")
        self.assertOneErrorLine(r, "pigeon")
