"""`bandbill pay inspect` on captured notifications: the official SDKs'
own notifications (tests/data/vectors: an Alipay trade notification and a
WeChat Pay v3 notification) verify, through the same plugin calls as the
live route, and their tampered twins are refused with the check and field
that fail and one error line."""

import json
import os

from bbtest import BBTestCase, SOURCE_DIR

VEC = os.path.join(SOURCE_DIR, "tests", "data", "vectors")
ALI = os.path.join(VEC, "ali")
WX = os.path.join(VEC, "wx")


class PayInspect(BBTestCase):
    def test_alipay_vector_and_its_tampered_twin(self):
        r = self.ws.ok("pay", "inspect", "--channel", "alipay", "--key", os.path.join(ALI, "pub.pem"),
                       "--body", os.path.join(ALI, "notify_form.txt"))
        self.assertIn("verified: alipay notification trade_status_sync", r.out)
        self.assertIn("0.10 CNY (10 fen)", r.out)
        self.assertIn("reply           200 success", r.out)
        got = json.loads(self.ws.ok("pay", "inspect", "--channel", "alipay", "--key", os.path.join(ALI, "pub.pem"),
                                    "--body", os.path.join(ALI, "notify_form.txt"), "--json").out)
        self.assertEqual((got["verified"], got["state"], got["amount"], got["out_trade_no"], got["channel_txn_id"]),
                         (True, "paid", 10, "20190815155618536-564-57", "2019081522001468450512505578"))
        self.assertEqual(got["fields"]["fund_bill_list"], '[{"amount":"0.10","fundChannel":"ALIPAYACCOUNT"}]')

        r = self.ws.run("pay", "inspect", "--channel", "alipay", "--key", os.path.join(ALI, "pub.pem"),
                        "--body", os.path.join(ALI, "notify_form_tampered.txt"))
        self.assertOneErrorLine(r, "refused: signature (sign)", "Alipay's public key", "400 fail")
        self.assertEqual(r.out, "")

    def test_wechatpay_vector_as_of_its_time_and_now(self):
        args = ["pay", "inspect", "--channel", "wechatpay", "--key", os.path.join(WX, "cert.pem"),
                "--apiv3-key", "testMchAPIv3Key0", "--headers", os.path.join(WX, "headers.txt"),
                "--body", os.path.join(WX, "body.json")]
        got = json.loads(self.ws.ok(*args, "--at", "1624523846", "--json").out)
        self.assertEqual((got["verified"], got["event"], got["state"]), (True, "PAYSCORE.USER_OPEN_SERVICE", "not_paid"))
        self.assertEqual(got["fields"]["out_contract_code"], "21640bdbd08e473e828f3206a2741c6e")
        self.assertEqual(got["reply_status"], 204)
        # live, the captured notification is years old
        r = self.ws.run(*args)
        self.assertOneErrorLine(r, "refused: timestamp (Wechatpay-Timestamp)", "the window is 300 s")
        # its tampered twin: one byte of the body
        with open(os.path.join(WX, "body.json"), "rb") as f:
            body = bytearray(f.read())
        body[body.index(b"PAYSCORE")] = ord("Q")
        twin = os.path.join(self.ws.dir, "tampered.json")
        with open(twin, "wb") as f:
            f.write(body)
        r = self.ws.run(*args[:-1], twin, "--at", "1624523846")
        self.assertOneErrorLine(r, "refused: signature (Wechatpay-Signature)")
        # the right signature, the wrong APIv3 key
        r = self.ws.run(*[a if a != "testMchAPIv3Key0" else "testMchAPIv3Key1" for a in args], "--at", "1624523846")
        self.assertOneErrorLine(r, "refused: decrypt (resource.ciphertext)", "500")

    def test_usage_errors(self):
        r = self.ws.run("pay", "inspect", "--key", os.path.join(ALI, "pub.pem"), "--body", os.path.join(ALI, "notify_form.txt"))
        self.assertOneErrorLine(r, "--channel is required", rc=2)
        r = self.ws.run("pay", "inspect", "--channel", "unionpay", "--key", "k", "--body", "b")
        self.assertOneErrorLine(r, "no payment channel 'unionpay'", rc=2)
        r = self.ws.run("pay", "inspect", "--channel", "alipay", "--key", os.path.join(ALI, "pub.pem"),
                        "--body", os.path.join(ALI, "notify_form.txt"), "--at", "yesterday")
        self.assertOneErrorLine(r, "--at must be a Unix time", rc=2)
        r = self.ws.run("pay", "inspect", "--channel", "wechatpay", "--key", os.path.join(WX, "pub.pem"),
                        "--body", os.path.join(WX, "body.json"))
        self.assertOneErrorLine(r, "apiv3_key")
