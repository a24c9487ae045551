"""Payment channel notifications through the daemon, signed with keys made
here and the real algorithms (Alipay RSA2 over the canonical form string;
WeChat Pay v3 SHA256withRSA over timestamp, nonce and body, AES-256-GCM
resource): an order for an open invoice, its notification credits the
invoice once however often it comes (a replay, TRADE_FINISHED after
TRADE_SUCCESS, 100 at the same moment); a tampered one changes nothing; an
amount that does not match the order, or an order we never made, is held
for review and credits nothing; a stale WeChat notification is refused; a
payment that settles an overdue customer's last overdue invoice makes the
customer active and queues service.restore; a channel that is not
configured has no route."""

import base64
import http.server
import json
import os
import threading
import time
import urllib.parse

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

import bbtest
from bbtest import BBTestCase
from test_billing import code_of, seed

APP_ID = "2021000000000001"
SELLER = "2088000000000001"
APIV3 = b"0123456789abcdefghijklmnopqrstuv"


def new_key(path):
    k = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with open(path, "wb") as f:
        f.write(k.public_key().public_bytes(serialization.Encoding.PEM,
                                            serialization.PublicFormat.SubjectPublicKeyInfo))
    return k


def sign(key, data):
    return base64.b64encode(key.sign(data, padding.PKCS1v15(), hashes.SHA256())).decode()


def alipay_form(key, **fields):
    """A notification as Alipay sends it: the form, signed over the sorted
    non-empty parameters without sign and sign_type."""
    canon = "&".join("%s=%s" % (k, v) for k, v in sorted(fields.items()) if v != "")
    signed = dict(fields, sign=sign(key, canon.encode()), sign_type="RSA2")
    return urllib.parse.urlencode(signed)


class FakeWeChatPay(http.server.ThreadingHTTPServer):
    """WeChat Pay's Native order API on loopback: checks our request's
    WECHATPAY2-SHA256-RSA2048 signature with the merchant's public key and
    answers with a code_url signed by the platform key (or, when told to,
    with a signature that does not match)."""

    def __init__(self, mch_public, platform_key):
        super().__init__(("127.0.0.1", 0), FakeWeChatHandler)
        self.mch_public, self.platform_key = mch_public, platform_key
        self.requests, self.bad_answer, self.paid = [], False, {}


class FakeWeChatHandler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def signed_by_us(self, method, body):
        scheme, params = self.headers["Authorization"].split(" ", 1)
        f = {k: v.strip('"') for k, v in (p.split("=", 1) for p in params.split(","))}
        msg = "%s\n%s\n%s\n%s\n%s\n" % (method, self.path, f["timestamp"], f["nonce_str"], body)
        try:
            self.server.mch_public.verify(base64.b64decode(f["signature"]), msg.encode(), padding.PKCS1v15(),
                                          hashes.SHA256())
            return scheme == "WECHATPAY2-SHA256-RSA2048"
        except Exception:  # noqa: BLE001
            return False

    def answer(self, status, obj):
        out = json.dumps(obj).encode()
        self.send_response(status)
        ts, nonce = str(int(time.time())), "n-answer"
        sig = sign(self.server.platform_key, ("%s\n%s\n%s\n" % (ts, nonce, out.decode())).encode())
        for k, v in (("Content-Type", "application/json"), ("Wechatpay-Timestamp", ts), ("Wechatpay-Nonce", nonce),
                     ("Wechatpay-Signature", sig), ("Wechatpay-Serial", "PUB_KEY_ID_01"),
                     ("Content-Length", str(len(out)))):
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(out)

    def do_GET(self):
        """The order query: paid, for the amount the test set."""
        ok = self.signed_by_us("GET", "")
        no = self.path.split("/")[-1].split("?")[0]
        self.server.requests.append((self.path, {}, {}, ok))
        if not ok:
            return self.answer(401, {"code": "SIGN_ERROR", "message": "signature"})
        if no not in self.server.paid:
            return self.answer(200, {"appid": "wx01", "mchid": "1900000001", "out_trade_no": no, "trade_state": "NOTPAY"})
        self.answer(200, {"appid": "wx01", "mchid": "1900000001", "out_trade_no": no,
                          "transaction_id": "4200000000202611280000000099", "trade_type": "NATIVE",
                          "trade_state": "SUCCESS", "success_time": "2026-11-28T10:00:05+08:00",
                          "amount": {"total": self.server.paid[no], "currency": "CNY"}})

    def do_POST(self):
        if self.path == "/v3/refund/domestic/refunds":
            body = self.rfile.read(int(self.headers["Content-Length"]))
            ok = self.signed_by_us("POST", body.decode())
            req = json.loads(body)
            self.server.requests.append((self.path, {}, req, ok))
            if not ok:
                return self.answer(401, {"code": "SIGN_ERROR", "message": "signature"})
            return self.answer(200, {"refund_id": "50000000382026112800000001", "out_refund_no": req["out_refund_no"],
                                     "transaction_id": req["transaction_id"], "status": "SUCCESS",
                                     "amount": {"refund": req["amount"]["refund"], "total": req["amount"]["total"]}})
        body = self.rfile.read(int(self.headers["Content-Length"]))
        auth = self.headers["Authorization"]
        scheme, params = auth.split(" ", 1)
        f = dict(p.split("=", 1) for p in params.split(","))
        f = {k: v.strip('"') for k, v in f.items()}
        msg = "POST\n%s\n%s\n%s\n%s\n" % (self.path, f["timestamp"], f["nonce_str"], body.decode())
        try:
            self.server.mch_public.verify(base64.b64decode(f["signature"]), msg.encode(), padding.PKCS1v15(),
                                          hashes.SHA256())
            ok = scheme == "WECHATPAY2-SHA256-RSA2048"
        except Exception:  # noqa: BLE001
            ok = False
        self.server.requests.append((self.path, f, json.loads(body), ok))
        if not ok:
            out = json.dumps({"code": "SIGN_ERROR", "message": "signature"}).encode()
            self.send_response(401)
        else:
            out = json.dumps({"code_url": "weixin://wxpay/bizpayurl?pr=TESTCODE"}).encode()
            self.send_response(200)
        ts, nonce = str(int(time.time())), "n-answer"
        sig = sign(self.server.platform_key, ("%s\n%s\n%s\n" % (ts, nonce, out.decode())).encode())
        if self.server.bad_answer:
            sig = sign(self.server.platform_key, b"something else")
        for k, v in (("Content-Type", "application/json"), ("Wechatpay-Timestamp", ts), ("Wechatpay-Nonce", nonce),
                     ("Wechatpay-Signature", sig), ("Wechatpay-Serial", "PUB_KEY_ID_01"),
                     ("Content-Length", str(len(out)))):
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(out)


class FakeAlipay(http.server.ThreadingHTTPServer):
    """Alipay's gateway on loopback for alipay.trade.query: checks our
    request's RSA2 signature with the app's public key and answers signed
    with Alipay's key over the exact text of the response object."""

    def __init__(self, app_public, alipay_key):
        super().__init__(("127.0.0.1", 0), FakeAlipayHandler)
        self.app_public, self.alipay_key = app_public, alipay_key
        self.requests, self.paid = [], {}


class FakeAlipayHandler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_POST(self):
        form = dict(urllib.parse.parse_qsl(self.rfile.read(int(self.headers["Content-Length"])).decode()))
        sig = base64.b64decode(form.pop("sign"))
        canon = "&".join("%s=%s" % (k, v) for k, v in sorted(form.items()) if v)
        try:
            self.server.app_public.verify(sig, canon.encode(), padding.PKCS1v15(), hashes.SHA256())
            ok = True
        except Exception:  # noqa: BLE001
            ok = False
        biz = json.loads(form["biz_content"])
        if form.get("method") == "alipay.trade.refund":
            self.server.requests.append((biz, True))
            key = "alipay_trade_refund_response"
            obj = {"code": "10000", "msg": "Success", "trade_no": biz["trade_no"], "refund_fee": biz["refund_amount"],
                   "fund_change": "Y"}
            return self.reply(key, obj)
        ok = ok and form["method"] == "alipay.trade.query"
        no = biz["out_trade_no"]
        self.server.requests.append((no, ok))
        if not ok:
            obj = {"code": "40002", "msg": "Invalid Arguments", "sub_code": "isv.invalid-signature"}
        elif no not in self.server.paid:
            obj = {"code": "40004", "msg": "Business Failed", "sub_code": "ACQ.TRADE_NOT_EXIST"}
        else:
            obj = {"code": "10000", "msg": "Success", "out_trade_no": no, "trade_no": "2026112822001400000000000777",
                   "trade_status": "TRADE_SUCCESS", "total_amount": self.server.paid[no], "buyer_pay_amount": "0.00",
                   "send_pay_date": "2026-11-28 10:00:00"}
        self.reply("alipay_trade_query_response", obj)

    def reply(self, key, obj):
        text = json.dumps(obj, ensure_ascii=False, separators=(",", ": "))
        out = ('{"%s": %s, "sign": "%s"}' % (key, text, sign(self.server.alipay_key, text.encode()))).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html;charset=utf-8")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)


class Notifications(BBTestCase):
    def setUp(self):
        super().setUp()
        self.mch = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        with open(self.ws.path("mch_private.pem"), "wb") as f:
            f.write(self.mch.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
        self.ali = new_key(self.ws.path("alipay_pub.pem"))
        # the app's own key pair: it signs our pay links
        self.app = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        with open(self.ws.path("app_private.pem"), "wb") as f:
            f.write(self.app.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
        self.wx = new_key(self.ws.path("wechat_pub.pem"))
        self.wxapi = FakeWeChatPay(self.mch.public_key(), self.wx)
        threading.Thread(target=self.wxapi.serve_forever, daemon=True).start()
        self.addCleanup(self.wxapi.shutdown)
        self.aliapi = FakeAlipay(self.app.public_key(), self.ali)
        threading.Thread(target=self.aliapi.serve_forever, daemon=True).start()
        self.addCleanup(self.aliapi.shutdown)
        self.gateway = "http://127.0.0.1:%d/gateway.do" % self.aliapi.server_address[1]
        ini = self.ws.path("bandbill.ini")
        bbtest.write(ini, "[channel.alipay]\npublic_key = %s\napp_id = %s\nmerchant_id = %s\n"
                          "app_private_key = %s\nnotify_url = https://isp.example/api/v1/notify/alipay\n"
                          "gateway = %s\n\n"
                          "[channel.wechatpay]\npublic_key = %s\napiv3_key = %s\nplatform_serial = PUB_KEY_ID_01\n"
                          "merchant_id = 1900000001\napp_id = wx01\nmch_private_key = %s\nmch_serial = MCH01\n"
                          "notify_url = https://isp.example/api/v1/notify/wechatpay\napi_base = http://127.0.0.1:%d\n"
                     % (self.ws.path("alipay_pub.pem"), APP_ID, SELLER, self.ws.path("app_private.pem"), self.gateway,
                        self.ws.path("wechat_pub.pem"), APIV3.decode(), self.ws.path("mch_private.pem"),
                        self.wxapi.server_address[1]))
        seed(self.ws, 1, start="2026-10-01", next_bill="2026-11-01")
        self.ws.ok("bill", "run", "--period", "2026-10")
        self.number, self.gross = self.ws.sql("SELECT number, gross FROM invoices")[0]
        self.token = self.ws.token()
        self.srv = self.ws.serve("--config", ini)

    def order(self, channel):
        r = self.srv.post("/api/v1/invoices/%s/pay-orders" % self.number, {"channel": channel}, token=self.token)
        self.assertEqual(r.status, 201, r.body)
        self.assertEqual((r.body["amount"], r.body["status"], r.body["invoice"]), (self.gross, "open", self.number))
        return r.body["out_trade_no"]

    def trade(self, out_trade_no, **over):
        f = dict(notify_type="trade_status_sync", notify_id="n1", app_id=APP_ID, seller_id=SELLER,
                 out_trade_no=out_trade_no, trade_no="2026112822001400000000000001", trade_status="TRADE_SUCCESS",
                 total_amount="%d.%02d" % divmod(self.gross, 100), gmt_payment="2026-11-28 10:00:00",
                 subject="光宽带 账单 %s" % self.number, passback_params="")
        f.update(over)
        return alipay_form(self.ali, **f)

    def notify(self, channel, raw, headers=None, content_type="application/x-www-form-urlencoded"):
        return bbtest.http_request(self.srv.port, "POST", "/api/v1/notify/" + channel, raw=raw, headers=headers,
                                   content_type=content_type)

    def count(self, table, where="1"):
        return self.ws.sql("SELECT count(*) FROM %s WHERE %s" % (table, where))[0][0]

    def test_alipay_credits_once(self):
        no = self.order("alipay")
        form = self.trade(no)
        r = self.notify("alipay", form)
        self.assertEqual((r.status, r.body), (200, "success"))
        self.assertEqual(self.ws.sql("SELECT status, paid FROM invoices"), [("paid", self.gross)])
        self.assertEqual(self.ws.sql("SELECT channel, channel_txn_id, amount FROM payments"),
                         [("alipay", "2026112822001400000000000001", self.gross)])
        self.assertEqual(self.ws.sql("SELECT status FROM payment_orders"), [("paid",)])
        # the same notification again, and TRADE_FINISHED for the same trade: acknowledged, credited once
        self.assertEqual(self.notify("alipay", form).body, "success")
        self.assertEqual(self.notify("alipay", self.trade(no, trade_status="TRADE_FINISHED", notify_id="n2")).body, "success")
        self.assertEqual(self.count("payments"), 1)
        self.assertEqual(self.ws.sql("SELECT outcome FROM payment_notifications ORDER BY id"),
                         [("credited",), ("duplicate",), ("duplicate",)])
        self.assertEqual(self.ws.ok("ledger", "verify", code_of(1)).rc, 0)
        # the channel's raw notification is kept with it
        body, fields = self.ws.sql("SELECT body, fields FROM payment_notifications WHERE outcome = 'credited'")[0]
        self.assertEqual(body, form)
        self.assertEqual(json.loads(fields)["subject"], "光宽带 账单 %s" % self.number)
        # and the audit trail says which channel did it
        self.assertEqual(self.ws.sql("SELECT actor FROM audit_log WHERE action = 'payment.notification' LIMIT 1"),
                         [("channel:alipay",)])

    def test_tampered_and_mismatched(self):
        no = self.order("alipay")
        form = self.trade(no)
        evil = form.replace("total_amount=%d.%02d" % divmod(self.gross, 100), "total_amount=0.01")
        self.assertNotEqual(evil, form)
        before = self.count("audit_log")
        r = self.notify("alipay", evil)
        self.assertEqual((r.status, r.body), (400, "fail"))
        self.assertEqual((self.count("payments"), self.count("payment_notifications")), (0, 0))
        self.srv.wait_event("payment_notification_refused", check="signature", field="sign")
        # a validly signed notification for another amount: held, nothing credited
        r = self.notify("alipay", self.trade(no, total_amount="0.01"))
        self.assertEqual((r.status, r.body), (200, "success"))
        self.assertEqual(self.count("payments"), 0)
        self.assertEqual(self.ws.sql("SELECT outcome, reason FROM payment_notifications"),
                         [("held", "amount 1 fen, the order is for %d fen" % self.gross)])
        self.assertEqual(self.ws.sql("SELECT status FROM payment_orders"), [("held",)])
        # an order we never made, and money paid to another app
        self.notify("alipay", self.trade("BB2026112899999999", trade_no="T-unknown"))
        self.notify("alipay", self.trade(no, app_id="2021999999999999", trade_no="T-app"))
        self.assertEqual(self.ws.sql("SELECT reason FROM payment_notifications WHERE id > 1 ORDER BY id"),
                         [("no order BB2026112899999999 here",), ("paid to app 2021999999999999, ours is %s" % APP_ID,)])
        self.assertEqual((self.count("payments"), self.ws.sql("SELECT status FROM invoices")[0][0]), (0, "open"))
        self.assertGreater(self.count("audit_log"), before)
        # a channel that is not configured has no route
        r = self.notify("unionpay", form)
        self.assertError(r, 404, "not_found")

    def test_hundred_at_once(self):
        no = self.order("alipay")
        form = self.trade(no)
        replies = []

        def send():
            replies.append(self.notify("alipay", form))
        threads = [threading.Thread(target=send) for _ in range(100)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(sorted({(r.status, r.body) for r in replies}), [(200, "success")])
        self.assertEqual(len(replies), 100)
        self.assertEqual(self.count("payments"), 1)
        self.assertEqual(self.ws.sql("SELECT paid FROM invoices"), [(self.gross,)])
        self.assertEqual(self.count("payment_notifications", "outcome = 'credited'"), 1)
        self.assertEqual(self.count("payment_notifications", "outcome = 'duplicate'"), 99)

    def wechat(self, out_trade_no, amount, ts=None, tamper=False, txn="4200000000202611280000000001"):
        resource = {"appid": "wx01", "mchid": "1900000001", "out_trade_no": out_trade_no,
                    "transaction_id": txn, "trade_type": "NATIVE", "trade_state": "SUCCESS",
                    "success_time": "2026-11-28T10:00:05+08:00", "amount": {"total": amount, "currency": "CNY"}}
        nonce = "0123456789ab"
        ct = AESGCM(APIV3).encrypt(nonce.encode(), json.dumps(resource).encode(), b"transaction")
        body = json.dumps({"id": "EV-1", "create_time": "2026-11-28T10:00:06+08:00", "resource_type": "encrypt-resource",
                           "event_type": "TRANSACTION.SUCCESS", "summary": "支付成功",
                           "resource": {"original_type": "transaction", "algorithm": "AEAD_AES_256_GCM",
                                        "ciphertext": base64.b64encode(ct).decode(), "associated_data": "transaction",
                                        "nonce": nonce}}, ensure_ascii=False)
        ts = str(int(time.time()) if ts is None else ts)
        n = "n0nce-" + ts
        sig = sign(self.wx, ("%s\n%s\n%s\n" % (ts, n, body)).encode())
        if tamper:
            body = body.replace("支付成功", "支付失败")
        return body.encode(), {"Wechatpay-Timestamp": ts, "Wechatpay-Nonce": n, "Wechatpay-Signature": sig,
                               "Wechatpay-Serial": "PUB_KEY_ID_01", "Request-Id": "req-1"}

    def test_wechatpay(self):
        no = self.order("wechatpay")
        body, h = self.wechat(no, self.gross, ts=int(time.time()) - 400)
        r = self.notify("wechatpay", body, h, content_type="application/json")
        self.assertEqual(r.status, 401)
        self.assertEqual(r.body, {"code": "FAIL", "message": "timestamp"})
        body, h = self.wechat(no, self.gross, tamper=True)
        self.assertEqual(self.notify("wechatpay", body, h, content_type="application/json").status, 401)
        self.assertEqual(self.count("payments"), 0)
        body, h = self.wechat(no, self.gross)
        r = self.notify("wechatpay", body, h, content_type="application/json")
        self.assertEqual((r.status, r.body), (204, ""))
        self.assertEqual(self.ws.sql("SELECT channel, amount FROM payments"), [("wechatpay", self.gross)])
        self.assertEqual(self.notify("wechatpay", body, h, content_type="application/json").status, 204)
        self.assertEqual(self.count("payments"), 1)

    def test_overdue_customer_is_restored(self):
        # October's bill was due on 2026-11-16; the customer fell overdue
        self.ws.sql("UPDATE customers SET status = 'overdue'")
        no = self.order("alipay")
        self.assertEqual(self.notify("alipay", self.trade(no)).body, "success")
        self.assertEqual(self.ws.sql("SELECT status FROM customers"), [("active",)])
        self.assertEqual(self.ws.sql("SELECT event FROM outbox WHERE event = 'service.restore'"), [("service.restore",)])
        self.srv.wait_event("payment_notification", outcome="credited", restored=1)

    def test_orders(self):
        r = self.srv.post("/api/v1/invoices/%s/pay-orders" % self.number, {"channel": "unionpay"}, token=self.token)
        self.assertError(r, 422, "unknown_channel")
        r = self.srv.post("/api/v1/invoices/%s/pay-orders" % self.number, {"channel": "alipay", "amount": 1},
                          token=self.token)
        self.assertError(r, 400, "unknown_field")
        no = self.order("alipay")
        r = self.srv.get("/api/v1/pay-orders/" + no, token=self.token)
        self.assertEqual((r.status, r.body["out_trade_no"], r.body["customer"]), (200, no, code_of(1)))
        self.assertRegex(no, r"^BB\d{16}$")
        # the Alipay pay link: alipay.trade.page.pay signed with the app's key over every parameter but sign
        url = r.body["pay_url"]
        self.assertTrue(url.startswith(self.gateway + "?"), url)
        q = dict(urllib.parse.parse_qsl(url.split("?", 1)[1], keep_blank_values=True))
        sig = base64.b64decode(q.pop("sign"))
        canon = "&".join("%s=%s" % (k, v) for k, v in sorted(q.items()) if v)
        self.app.public_key().verify(sig, canon.encode(), padding.PKCS1v15(), hashes.SHA256())
        self.assertEqual((q["method"], q["app_id"], q["sign_type"], q["notify_url"]),
                         ("alipay.trade.page.pay", APP_ID, "RSA2", "https://isp.example/api/v1/notify/alipay"))
        biz = json.loads(q["biz_content"])
        self.assertEqual((biz["out_trade_no"], biz["total_amount"], biz["subject"]),
                         (no, "%d.%02d" % divmod(self.gross, 100), "宽带账单 " + self.number))
        self.assertError(self.srv.get("/api/v1/pay-orders/BB0", token=self.token), 404, "not_found")
        self.notify("alipay", self.trade(no))
        r = self.srv.post("/api/v1/invoices/%s/pay-orders" % self.number, {"channel": "alipay"}, token=self.token)
        self.assertError(r, 409, "nothing_to_pay")

    def test_killed_after_commit_the_retry_is_acknowledged_once(self):
        """kill -9 the daemon the moment the payment is committed (the channel
        may never have heard back), start it again, and the channel's retry
        is acknowledged without a second credit."""
        no = self.order("alipay")
        form = self.trade(no)
        t = threading.Thread(target=lambda: self.notify_quietly(form))
        t.start()
        bbtest.poll(lambda: self.count("payments") == 1, timeout=10, what="the payment to be committed")
        self.srv.kill()
        t.join()
        self.srv = self.ws.serve("--config", self.ws.path("bandbill.ini"))
        r = self.notify("alipay", form)
        self.assertEqual((r.status, r.body), (200, "success"))
        self.assertEqual(self.count("payments"), 1)
        self.assertEqual(self.ws.sql("SELECT status, paid FROM invoices"), [("paid", self.gross)])
        self.assertEqual(self.ws.sql("SELECT outcome FROM payment_notifications ORDER BY id"), [("credited",), ("duplicate",)])
        self.ws.ok("ledger", "verify", code_of(1))

    def notify_quietly(self, form):
        try:
            self.notify("alipay", form)
        except Exception:  # noqa: BLE001 - the daemon died under it: that is the point
            pass

    def test_wechatpay_native_order(self):
        no = self.order("wechatpay")
        r = self.srv.get("/api/v1/pay-orders/" + no, token=self.token)
        self.assertEqual(r.body["pay_url"], "weixin://wxpay/bizpayurl?pr=TESTCODE")
        path, auth, body, ok = self.wxapi.requests[-1]
        self.assertTrue(ok, "the request's signature did not verify with the merchant's key")
        self.assertEqual((path, auth["mchid"], auth["serial_no"]), ("/v3/pay/transactions/native", "1900000001", "MCH01"))
        self.assertEqual((body["out_trade_no"], body["amount"], body["appid"], body["mchid"], body["notify_url"]),
                         (no, {"total": self.gross, "currency": "CNY"}, "wx01", "1900000001",
                          "https://isp.example/api/v1/notify/wechatpay"))
        self.assertRegex(body["time_expire"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+08:00$")
        # an answer whose signature does not verify makes no link, and no payable order
        self.wxapi.bad_answer = True
        r = self.srv.post("/api/v1/invoices/%s/pay-orders" % self.number, {"channel": "wechatpay"}, token=self.token)
        self.assertError(r, 502, "channel_error")
        self.assertIn("signature", r.body["error"]["message"])
        self.assertEqual(self.ws.sql("SELECT status, pay_url FROM payment_orders ORDER BY id DESC LIMIT 1"), [("closed", None)])

    def test_lost_notification_found_by_query(self):
        paid = self.order("wechatpay")
        unpaid = self.order("wechatpay")
        self.wxapi.paid[paid] = self.gross
        ini = self.ws.path("bandbill.ini")
        # ten minutes without a notification (payments.query_after_min): the job asks
        self.ws.ok("jobs", "run", "payments.query", "--config", ini)
        self.assertEqual(self.count("payments"), 0)
        self.assertEqual(self.wxapi.requests[2:], [])   # two orders made, nobody asked yet
        self.ws.sql("UPDATE payment_orders SET created_at = '2026-01-01T00:00:00.000Z'")
        r = self.ws.ok("jobs", "run", "payments.query", "--config", ini)
        self.assertIn("asked about 2 order(s), 1 found paid", r.out + r.err)
        self.assertEqual(self.ws.sql("SELECT channel, channel_txn_id, amount FROM payments"),
                         [("wechatpay", "4200000000202611280000000099", self.gross)])
        self.assertEqual(self.ws.sql("SELECT out_trade_no, status FROM payment_orders ORDER BY id"),
                         [(paid, "paid"), (unpaid, "open")])
        self.assertTrue(all(ok for _, _, _, ok in self.wxapi.requests), self.wxapi.requests)
        self.assertEqual(self.ws.sql("SELECT actor FROM audit_log WHERE action = 'payment.query'"), [("job:payments.query",)])
        # the notification that comes late after all is a duplicate
        body, h = self.wechat(paid, self.gross, txn="4200000000202611280000000099")
        self.assertEqual(self.notify("wechatpay", body, h, content_type="application/json").status, 204)
        self.assertEqual(self.count("payments"), 1)
        self.ws.ok("ledger", "verify")

    def test_lost_alipay_notification_found_by_query(self):
        paid, unpaid = self.order("alipay"), self.order("alipay")
        self.aliapi.paid[paid] = "%d.%02d" % divmod(self.gross, 100)
        self.ws.sql("UPDATE payment_orders SET created_at = '2026-01-01T00:00:00.000Z'")
        r = self.ws.ok("jobs", "run", "payments.query", "--config", self.ws.path("bandbill.ini"))
        self.assertIn("asked about 2 order(s), 1 found paid", r.out + r.err)
        self.assertEqual(sorted(ok for _, ok in self.aliapi.requests), [True, True])
        self.assertEqual(self.ws.sql("SELECT channel, channel_txn_id, amount FROM payments"),
                         [("alipay", "2026112822001400000000000777", self.gross)])
        self.assertEqual(self.ws.sql("SELECT out_trade_no, status FROM payment_orders ORDER BY id"),
                         [(paid, "paid"), (unpaid, "open")])
        # Alipay's notification for the same trade, late: acknowledged, not credited again
        r = self.notify("alipay", self.trade(paid, trade_no="2026112822001400000000000777"))
        self.assertEqual((r.status, r.body), (200, "success"))
        self.assertEqual(self.count("payments"), 1)
        self.ws.ok("ledger", "verify")

    def refund_case(self, channel):
        no = self.order(channel)
        if channel == "alipay":
            self.notify("alipay", self.trade(no))
        else:
            body, h = self.wechat(no, self.gross)
            self.assertEqual(self.notify("wechatpay", body, h, content_type="application/json").status, 204)
        pid = self.ws.sql("SELECT id FROM payments")[0][0]
        ini = self.ws.path("bandbill.ini")
        # all of it paid the invoice: nothing can go back yet
        r = self.ws.run("payment", "refund", str(pid), "--amount", "10.00", "--reason", "outage", "--config", ini)
        self.assertOneErrorLine(r, "at most 0.00 can be refunded")
        # a credit note of 20.00 on the paid invoice leaves 20.00 of the payment free
        self.ws.ok("invoice", "credit", self.number, "--lines", "1:20.00", "--reason", "outage")
        r = self.ws.ok("payment", "refund", str(pid), "--amount", "10.00", "--reason", "outage", "--config", ini)
        self.assertIn("10.00 refunded", r.out)
        self.assertEqual(self.ws.sql("SELECT refunded FROM payments"), [(1000,)])
        reason = self.ws.sql("SELECT reason FROM ledger_entries WHERE kind = 'refund'")[0][0]
        self.assertIn("%s refund" % channel, reason)
        # and over the API, through the daemon's own channel
        path = "/api/v1/payments/%d/refunds" % pid
        self.assertError(self.srv.post(path, {"amount": 1001, "reason": "x"}, token=self.token), 409, "exceeds_refundable")
        r = self.srv.post(path, {"amount": 1000, "reason": "outage"}, token=self.token)
        self.assertEqual((r.status, r.body["refunded"]), (200, 2000), r.body)
        self.assertEqual(self.ws.sql("SELECT count(*) FROM ledger_entries WHERE kind = 'refund' AND reason LIKE ?",
                                     ("%%%s refund%%" % channel,)), [(2,)])
        self.ws.ok("ledger", "verify")
        return pid

    def test_wechatpay_refund(self):
        self.refund_case("wechatpay")
        path, _, req, ok = self.wxapi.requests[-1]
        self.assertTrue(ok)
        self.assertEqual((path, req["amount"], req["transaction_id"]),
                         ("/v3/refund/domestic/refunds", {"refund": 1000, "total": self.gross, "currency": "CNY"},
                          "4200000000202611280000000001"))
        self.assertRegex(req["out_refund_no"], r"^BBR\d+N2$")   # the second refund of the payment

    def test_alipay_refund(self):
        self.refund_case("alipay")
        biz, ok = self.aliapi.requests[-1]
        self.assertEqual((biz["refund_amount"], biz["trade_no"]), ("10.00", "2026112822001400000000000001"))

    WX_HEADER = ("交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,付款银行,"
                 "货币种类,应结订单金额,代金券金额,微信退款单号,商户退款单号,退款金额,充值券退款金额,退款类型,退款状态,商品名称,"
                 "商户数据包,手续费,费率,订单金额,申请退款金额,费率备注")

    def wx_line(self, txn, no, state, yuan, refund_id="0", refund="0.00"):
        vals = ["2026-11-28 10:00:05", "wx01", "1900000001", "0", "", txn, no, "o-abc", "NATIVE", state, "CFT", "CNY",
                yuan, "0.00", refund_id, "0", refund, "0.00", "", "", "宽带账单, 十一月", "", "0.77", "0.60%", yuan,
                "0.00", ""]
        return ",".join('"`%s"' % v if "," in v else "`" + v for v in vals)

    def test_reconcile_wechatpay(self):
        paid, lost = self.order("wechatpay"), self.order("wechatpay")
        body, h = self.wechat(paid, self.gross)
        self.assertEqual(self.notify("wechatpay", body, h, content_type="application/json").status, 204)
        today = self.ws.sql("SELECT entry_date FROM payments")[0][0]
        # recorded here, and the channel never heard of it
        self.ws.sql("INSERT INTO payments (customer_id, channel, channel_txn_id, amount, entry_date, received_at, created_by) "
                    "VALUES (1, 'wechatpay', '4200000000202611289999999999', 500, ?, 't', 't')", (today,))
        yuan = "%d.%02d" % divmod(self.gross, 100)
        lines = [self.WX_HEADER,
                 self.wx_line("4200000000202611280000000001", paid, "SUCCESS", yuan),
                 self.wx_line("4200000000202611280000000002", lost, "SUCCESS", yuan),
                 self.wx_line("4200000000202611280000000001", paid, "REFUND", yuan, "50000000382026112800000009", "1.00"),
                 "总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额",
                 "`2,`%s,`1.00,`0.00,`1.54,`%s,`1.00" % (yuan, yuan)]
        path = self.ws.path("wx-bill.csv")
        with open(path, "w", encoding="utf-8") as f:
            f.write("\ufeff" + "\r\n".join(lines) + "\r\n")
        got = json.loads(self.ws.ok("reconcile", "--channel", "wechatpay", "--date", today, path, "--json",
                                    "--config", self.ws.path("bandbill.ini")).out)
        self.assertEqual((got["lines"], got["matched"], got["matched_amount"]), (3, 1, self.gross))
        self.assertEqual([x["channel_txn_id"] for x in got["missing_here"]], ["4200000000202611280000000002"])
        self.assertEqual(got["missing_here"][0]["out_trade_no"], lost)
        self.assertEqual([x["channel_txn_id"] for x in got["missing_there"]], ["4200000000202611289999999999"])
        self.assertEqual([x["channel_txn_id"] for x in got["refund_mismatch"]], ["4200000000202611280000000001"])
        self.assertEqual(got["amount_mismatch"], [])
        r = self.ws.ok("reconcile", "--channel", "wechatpay", "--date", today, path, "--config", self.ws.path("bandbill.ini"))
        self.assertIn("1 missing here, 1 missing there, 1 refund mismatches", r.out)
        # not a trade bill at all
        bad = self.ws.path("bad.csv")
        with open(bad, "w") as f:
            f.write("a,b,c\n1,2,3\n")
        r = self.ws.run("reconcile", "--channel", "wechatpay", "--date", today, bad, "--config", self.ws.path("bandbill.ini"))
        self.assertOneErrorLine(r, "no column 交易时间")

    def test_reconcile_alipay_gbk(self):
        no = self.order("alipay")
        self.notify("alipay", self.trade(no, total_amount="%d.%02d" % divmod(self.gross - 1, 100)))  # held: 1 fen short
        no2 = self.order("alipay")
        self.notify("alipay", self.trade(no2, trade_no="2026112822001400000000000002"))
        today = self.ws.sql("SELECT entry_date FROM payments")[0][0]
        yuan = "%d.%02d" % divmod(self.gross, 100)
        head = ("支付宝交易号,商户订单号,业务类型,商品名称,创建时间,完成时间,门店编号,门店名称,操作员,终端号,对方账户,"
                "订单金额（元）,商家实收（元）,支付宝红包（元）,集分宝（元）,支付宝优惠（元）,商家优惠（元）,券核销金额（元）,券名称,"
                "商家红包消费金额（元）,卡消费金额（元）,退款批次号/请求号,服务费（元）,分润（元）,备注")
        def line(txn, order, kind, amount):
            return ",".join([txn + "\t", order + "\t", kind, "宽带账单", "2026-11-28 10:00:00", "2026-11-28 10:00:05", "", "",
                             "", "", "xud***@126.com", amount, amount, "0.00", "0.00", "0.00", "0.00", "0.00", "", "0.00",
                             "0.00", "", "-0.77", "0.00", ""])
        text = "\n".join(["#支付宝业务明细查询", "#账号：[20880000000000010156]", "#起始日期：[2026年11月28日 00:00:00]",
                          "#-----------------------------------------业务明细列表----------------------------------------",
                          head, line("2026112822001400000000000001", no, "交易", yuan),
                          line("2026112822001400000000000002", no2, "交易", yuan),
                          "#-----------------------------------------业务明细列表结束------------------------------------",
                          "#交易合计：2笔，商家实收共%s元" % yuan]) + "\n"
        path = self.ws.path("ali-bill.csv")
        with open(path, "wb") as f:
            f.write(text.encode("gbk"))
        got = json.loads(self.ws.ok("reconcile", "--channel", "alipay", "--date", today, path, "--json",
                                    "--config", self.ws.path("bandbill.ini")).out)
        # the held notification credited nothing: on the statement, not recorded here
        self.assertEqual((got["lines"], got["matched"]), (2, 1))
        self.assertEqual([x["channel_txn_id"] for x in got["missing_here"]], ["2026112822001400000000000001"])
        self.assertEqual(got["missing_there"], [])

