"""`bandbill sandbox` plays Alipay and WeChat Pay offline: it makes both
sides' keys and the channels' settings, bandbill serves with them, a
payment order's pay link opens the sandbox's page, and its button sends
bandbill a notification that the real verification code credits — the
demo's way to pay an invoice end to end with no network."""

import html.parser
import os
import re
import socket
import subprocess
import time
import urllib.parse

import bbtest
from bbtest import BBTestCase, BIN
from test_billing import seed


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Form(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.action, self.fields = None, {}

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form":
            self.action = a.get("action")
        if tag == "input" and a.get("type") == "hidden":
            self.fields[a["name"]] = a.get("value", "")


class Sandbox(BBTestCase):
    def setUp(self):
        super().setUp()
        seed(self.ws, 1, start="2026-10-01", next_bill="2026-11-01")
        self.ws.ok("bill", "run", "--period", "2026-10")
        self.number, self.gross = self.ws.sql("SELECT number, gross FROM invoices")[0]
        self.sport, dport = free_port(), free_port()
        sbdir = self.ws.path("sandbox")
        self.ws.ok("sandbox", "--init-only", "--listen", "127.0.0.1:%d" % self.sport, "--daemon",
                   "http://127.0.0.1:%d" % dport, "--dir", sbdir)
        self.assertEqual(os.stat(os.path.join(sbdir, "alipay_private.pem")).st_mode & 0o777, 0o600)
        self.sb = subprocess.Popen([BIN, "sandbox", "--listen", "127.0.0.1:%d" % self.sport, "--daemon",
                                    "http://127.0.0.1:%d" % dport, "--dir", sbdir, "--db", self.ws.db],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.addCleanup(self.stop_sandbox)
        bbtest.poll(lambda: self.reachable(self.sport), timeout=10, what="the sandbox")
        self.token = self.ws.token()
        self.srv = self.ws.serve("--config", os.path.join(sbdir, "channels.ini"), "--listen", "127.0.0.1:%d" % dport)

    def stop_sandbox(self):
        self.sb.terminate()
        try:
            self.sb.wait(5)
        except subprocess.TimeoutExpired:
            self.sb.kill()
        self.sb.stderr.close()

    @staticmethod
    def reachable(port):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return True
        except OSError:
            return False

    def pay(self, pay_url):
        u = urllib.parse.urlsplit(pay_url)
        self.assertEqual(u.netloc, "127.0.0.1:%d" % self.sport)
        r = bbtest.http_request(self.sport, "GET", u.path + "?" + u.query)
        self.assertEqual(r.status, 200, r.body)
        form = Form()
        form.feed(r.body)
        self.assertTrue(form.action, r.body)
        r = bbtest.http_request(self.sport, "POST", form.action, raw=urllib.parse.urlencode(form.fields),
                                content_type="application/x-www-form-urlencoded")
        self.assertEqual(r.status, 200, r.body)
        return re.search(r'<p id="result">(.*?)</p>', r.body).group(1)

    def order(self, channel):
        r = self.srv.post("/api/v1/invoices/%s/pay-orders" % self.number, {"channel": channel}, token=self.token)
        self.assertEqual(r.status, 201, r.body)
        return r.body["pay_url"]

    def test_pay_a_bill_with_both_channels(self):
        ali, wx = self.order("alipay"), self.order("wechatpay")
        self.assertIn("/alipay/gateway.do?", ali)
        self.assertIn("/wechat/pay?", wx)
        self.assertEqual(self.pay(ali), "Paid. bandbill answered 200 success")
        self.assertEqual(self.ws.sql("SELECT status, paid FROM invoices"), [("paid", self.gross)])
        # the WeChat order was for the same bill: paid twice, the second is the customer's credit
        self.assertEqual(self.pay(wx), "Paid. bandbill answered 204 ")
        self.assertEqual(sorted(self.ws.sql("SELECT channel, amount FROM payments")),
                         [("alipay", self.gross), ("wechatpay", self.gross)])
        self.assertEqual(self.ws.sql("SELECT outcome FROM payment_notifications ORDER BY id"), [("credited",), ("credited",)])
        self.ws.ok("ledger", "verify")

    def test_a_tampered_pay_link_is_refused(self):
        ali = self.order("alipay")
        evil = ali.replace("total_amount%22%3A%22", "total_amount%22%3A%221")
        self.assertNotEqual(evil, ali)
        u = urllib.parse.urlsplit(evil)
        r = bbtest.http_request(self.sport, "GET", u.path + "?" + u.query)
        self.assertEqual(r.status, 400)
        self.assertIn("signature does not check out", r.body)
