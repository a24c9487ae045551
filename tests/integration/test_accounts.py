"""PPPoE accounts (password shown once, staff reset, reset by an SMS code read
from the outbox), devices (register, install, swap, remove, history, address
visibility), deposits (take, settle), permissions, and nothing written when a
request is refused.

Customers are written with SQL (the customers module is not there yet); their
phone numbers are encrypted here exactly as the vault does (AES-256-GCM through
the system's libcrypto, the place as associated data), so the daemon reads
them as its own."""

import base64
import ctypes
import ctypes.util
import datetime
import hashlib
import hmac
import json
import os
import unittest

from bbtest import BBTestCase

# ------------------------------------------------------------ the vault, in Python

_lc = ctypes.CDLL(ctypes.util.find_library("crypto") or "libcrypto.so.3")
_lc.EVP_CIPHER_CTX_new.restype = ctypes.c_void_p
_lc.EVP_CIPHER_CTX_free.argtypes = [ctypes.c_void_p]
_lc.EVP_aes_256_gcm.restype = ctypes.c_void_p
for _f in (_lc.EVP_EncryptInit_ex, _lc.EVP_DecryptInit_ex):
    _f.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p]
for _f in (_lc.EVP_EncryptUpdate, _lc.EVP_DecryptUpdate):
    _f.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.POINTER(ctypes.c_int), ctypes.c_char_p, ctypes.c_int]
for _f in (_lc.EVP_EncryptFinal_ex, _lc.EVP_DecryptFinal_ex):
    _f.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.POINTER(ctypes.c_int)]
_lc.EVP_CIPHER_CTX_ctrl.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_int, ctypes.c_void_p]
GCM_GET_TAG, GCM_SET_TAG = 0x10, 0x11


class Keys:
    """The key file of a workspace: the index key and the current data key."""

    def __init__(self, path):
        self.data = {}
        with open(path, encoding="utf-8") as f:
            for line in f:
                parts = line.split()
                if len(parts) == 2 and not line.startswith("#"):
                    self.data[parts[0]] = base64.b64decode(parts[1])
        self.current = max((k for k in self.data if k[0] == "k"), key=lambda k: int(k[1:]))

    def index(self, kind, value):
        return hmac.new(self.data["index"], kind.encode() + b"\0" + value.encode(), hashlib.sha256).hexdigest()

    def encrypt(self, aad, plain):
        nonce, plain, l = os.urandom(12), plain.encode(), ctypes.c_int(0)
        out, tag = ctypes.create_string_buffer(len(plain) + 16), ctypes.create_string_buffer(16)
        c = _lc.EVP_CIPHER_CTX_new()
        try:
            assert _lc.EVP_EncryptInit_ex(c, _lc.EVP_aes_256_gcm(), None, self.data[self.current], nonce) == 1
            assert _lc.EVP_EncryptUpdate(c, None, ctypes.byref(l), aad.encode(), len(aad.encode())) == 1
            assert _lc.EVP_EncryptUpdate(c, out, ctypes.byref(l), plain, len(plain)) == 1 and l.value == len(plain)
            assert _lc.EVP_EncryptFinal_ex(c, out, ctypes.byref(l)) == 1
            assert _lc.EVP_CIPHER_CTX_ctrl(c, GCM_GET_TAG, 16, tag) == 1
        finally:
            _lc.EVP_CIPHER_CTX_free(c)
        raw = nonce + out.raw[:len(plain)] + tag.raw
        return "enc:v1:%s:%s" % (self.current, base64.b64encode(raw).decode())

    def decrypt(self, aad, stored):
        prefix, version, kid, b64 = stored.split(":", 3)
        assert (prefix, version) == ("enc", "v1"), stored
        raw = base64.b64decode(b64)
        nonce, ct, tag = raw[:12], raw[12:-16], raw[-16:]
        out, l = ctypes.create_string_buffer(len(ct) + 16), ctypes.c_int(0)
        c = _lc.EVP_CIPHER_CTX_new()
        try:
            assert _lc.EVP_DecryptInit_ex(c, _lc.EVP_aes_256_gcm(), None, self.data[kid], nonce) == 1
            assert _lc.EVP_DecryptUpdate(c, None, ctypes.byref(l), aad.encode(), len(aad.encode())) == 1
            assert _lc.EVP_DecryptUpdate(c, out, ctypes.byref(l), ct, len(ct)) == 1
            assert _lc.EVP_CIPHER_CTX_ctrl(c, GCM_SET_TAG, 16, tag) == 1
            if _lc.EVP_DecryptFinal_ex(c, out, ctypes.byref(l)) != 1:
                raise ValueError("authentication failed for " + aad)
        finally:
            _lc.EVP_CIPHER_CTX_free(c)
        return out.raw[:len(ct)].decode()


# ------------------------------------------------------------ customer codes

_DAMM = [[0, 3, 1, 7, 5, 9, 8, 6, 4, 2], [7, 0, 9, 2, 1, 5, 4, 8, 6, 3], [4, 2, 0, 6, 8, 7, 1, 3, 5, 9],
         [1, 7, 5, 0, 9, 8, 3, 4, 2, 6], [6, 1, 2, 3, 0, 4, 5, 9, 7, 8], [3, 6, 7, 4, 2, 0, 9, 5, 8, 1],
         [5, 8, 6, 9, 7, 2, 0, 1, 3, 4], [8, 9, 4, 5, 3, 6, 2, 0, 1, 7], [9, 4, 3, 8, 6, 1, 7, 2, 0, 5],
         [2, 5, 8, 1, 4, 3, 6, 7, 9, 0]]


def code_of(cid):
    digits, x = "%08d" % cid, 0
    for ch in digits:
        x = _DAMM[x][int(ch)]
    return "C%s%d" % (digits, x)


ADDRESS = "浙江省 杭州市 西湖区 文三路 金都花园 3幢 2单元 501"
PASSWORD_ALPHABET = set("abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789")


class AccountsCase(BBTestCase):
    def setUp(self):
        super().setUp()
        self.admin = self.ws.token("it-admin", "admin")
        self.cs = self.ws.token("it-cs", "customer_service")
        self.tech = self.ws.token("it-tech", "technician")
        self.clerk = self.ws.token("it-clerk", "billing_clerk")
        self.keys = Keys(os.path.join(self.ws.var, "bandbill.key"))
        self.srv = self.ws.serve()
        self.addCleanup(self.every_change_audited)

    def every_change_audited(self):
        # the HTTP layer writes a generic record (and warns) when a handler
        # changed state without its own
        self.assertEqual([l for l in self.srv.lines if "audit_generic" in json.dumps(l)], [])

    def customer(self, cid, city="杭州市", district="西湖区", phone=None, verified=False):
        code = code_of(cid)
        now = "2026-01-01T00:00:00.000Z"
        enc = idx = ver = None
        if phone:
            enc, idx = self.keys.encrypt("customers.phone", phone), self.keys.index("phone", phone)
            ver = now if verified else None
        self.ws.sql("INSERT INTO customers (id, code, type, name, status, created_at, created_by, updated_at, "
                    "phone_enc, phone_idx, phone_verified_at) VALUES (?, ?, 'residential', '张三', 'active', ?, 'it', ?, ?, ?, ?)",
                    (cid, code, now, now, enc, idx, ver))
        if city:
            self.ws.sql("INSERT INTO addresses (customer_id, kind, province, city, district, street, community, building, "
                        "unit, floor, room) VALUES (?, 'service', '浙江省', ?, ?, '文三路', '金都花园', '3幢', '2单元', '', '501')",
                        (cid, city, district))
        return code

    def count(self, table):
        # table names come from the tests themselves, never from input
        return self.ws.sql("SELECT count(*) FROM %s" % table)[0][0]

    def counts(self):
        c = {t: self.count(t) for t in ("service_accounts", "devices", "installations", "deposits", "outbox",
                                        "verification_codes")}
        # records of changes; a refusal's own access.denied record is written
        # by the HTTP layer, asynchronously, and is not a change
        c["audit_log"] = self.ws.sql("SELECT count(*) FROM audit_log WHERE action <> 'access.denied'")[0][0]
        return c

    def password_of(self, username):
        (enc,) = self.ws.sql("SELECT password_enc FROM service_accounts WHERE username = ?", (username,))[0]
        self.assertTrue(enc.startswith("enc:v1:"), enc)
        return self.keys.decrypt("service_accounts.password", enc)

    def audits(self, action):
        return self.ws.sql("SELECT actor, object_type, object_id, diff FROM audit_log WHERE action = ? ORDER BY id",
                           (action,))

    def post(self, path, body, token=None):
        return self.srv.post(path, body, token=token or self.admin)

    def get(self, path, token=None):
        return self.srv.get(path, token=token or self.admin)


class Accounts(AccountsCase):
    def test_create_shows_the_password_once(self):
        code = self.customer(1234)                        # C000012340
        r = self.post("/api/v1/customers/%s/accounts" % code, {}, token=self.cs)
        self.assertEqual(r.status, 201, r.body)
        self.assertEqual(r.body["username"], "hz12340")   # made by rules/accounts.lua
        self.assertEqual(r.body["customer"], code)
        self.assertEqual(r.body["status"], "active")
        self.assertNotIn("password", r.body)
        pw = r.body["new_password"]
        self.assertEqual(len(pw), 16)
        self.assertTrue(set(pw) <= PASSWORD_ALPHABET, pw)
        # what RADIUS will read back is what was shown
        self.assertEqual(self.password_of("hz12340"), pw)
        # and it is never shown again, to anyone
        for tok in (self.admin, self.cs):
            lst = self.get("/api/v1/customers/%s/accounts" % code, token=tok)
            self.assertEqual(lst.status, 200, lst.body)
            self.assertEqual([a["username"] for a in lst.body["data"]], ["hz12340"])
            self.assertNotIn("new_password", lst.body["data"][0])
            self.assertNotIn("password", lst.body["data"][0])
            self.assertNotIn(pw, json.dumps(lst.body))
        # audited, without the password
        (actor, otype, oid, diff), = self.audits("account.create")
        self.assertEqual((actor, otype, oid), ("token:it-cs", "service_account", "hz12340"))
        self.assertNotIn(pw, diff)
        self.assertIn('"rule"', diff)

        # the second account: a given name and password
        r = self.post("/api/v1/customers/%s/accounts" % code, {"username": "zhang.san@isp", "password": "Given-pass-1"})
        self.assertEqual(r.status, 201, r.body)
        self.assertEqual(r.body["new_password"], "Given-pass-1")
        self.assertEqual(self.password_of("zhang.san@isp"), "Given-pass-1")
        # the rule's next name follows the count
        r = self.post("/api/v1/customers/%s/accounts" % code, {})
        self.assertEqual(r.body["username"], "hz12340-3", r.body)
        # newest first, paginated
        page = self.get("/api/v1/customers/%s/accounts?limit=2" % code)
        self.assertEqual([a["username"] for a in page.body["data"]], ["hz12340-3", "zhang.san@isp"])
        self.assertIsNotNone(page.body["next_cursor"])
        page2 = self.get("/api/v1/customers/%s/accounts?limit=2&cursor=%s" % (code, page.body["next_cursor"]))
        self.assertEqual([a["username"] for a in page2.body["data"]], ["hz12340"])
        self.assertIsNone(page2.body["next_cursor"])
        self.assertEqual(len(self.get("/api/v1/customers/%s/accounts?status=closed" % code).body["data"]), 0)

    def test_refused_requests_write_nothing(self):
        code = self.customer(7)
        self.assertEqual(self.post("/api/v1/customers/%s/accounts" % code, {"username": "taken1"}).status, 201)
        before = self.counts()
        url = "/api/v1/customers/%s/accounts" % code
        cases = [
            ({"username": "taken1"}, 409, "username_taken", "username"),
            ({"username": "Bad Name"}, 400, "invalid_username", "username"),
            ({"username": "ab"}, 400, "invalid_username", "username"),
            ({"username": 12345}, 400, "invalid_field", "username"),
            ({"password": "short"}, 400, "weak_password", "password"),
            ({"password": "has space 123"}, 400, "invalid_password", "password"),
            ({"nickname": "x"}, 400, "unknown_field", "nickname"),
        ]
        for body, status, ecode, field in cases:
            r = self.post(url, body)
            err = self.assertError(r, status, ecode)
            self.assertEqual(err["field"], field, (body, r.body))
        self.assertError(self.post("/api/v1/customers/C000000079/accounts", {}), 400, "invalid_customer_code")
        self.assertError(self.post("/api/v1/customers/%s/accounts" % code_of(99), {}), 404, "not_found")
        self.assertError(self.post("/api/v1/accounts/taken1/password", {"password": "1234567"}), 400, "weak_password")
        self.assertError(self.post("/api/v1/accounts/nobody/password", {}), 404, "not_found")
        # a technician may not open accounts
        self.assertError(self.post(url, {}, token=self.tech), 403)
        self.assertEqual(self.counts(), before)

    def test_staff_reset(self):
        code = self.customer(8)
        first = self.post("/api/v1/customers/%s/accounts" % code, {"username": "hz0008"}).body["new_password"]
        (changed0,) = self.ws.sql("SELECT password_changed_at FROM service_accounts")[0]
        r = self.post("/api/v1/accounts/hz0008/password", {}, token=self.cs)
        self.assertEqual(r.status, 200, r.body)
        pw = r.body["new_password"]
        self.assertNotEqual(pw, first)
        self.assertEqual(len(pw), 16)
        self.assertEqual(self.password_of("hz0008"), pw)
        self.assertGreater(r.body["password_changed_at"], changed0)
        self.assertNotIn("password", r.body)
        (actor, otype, oid, diff), = self.audits("account.password_reset")
        self.assertEqual((actor, otype, oid), ("token:it-cs", "service_account", "hz0008"))
        self.assertNotIn(pw, diff)
        self.assertNotIn(first, diff)
        self.assertIn("password_changed_at", diff)
        self.assertIn('"staff"', diff)
        # a chosen one
        r = self.post("/api/v1/accounts/hz0008/password", {"password": "Chosen-99"})
        self.assertEqual((r.status, r.body["new_password"]), (200, "Chosen-99"))
        self.assertEqual(self.password_of("hz0008"), "Chosen-99")
        # a closed account (the subscription's doing) is not reset
        self.ws.sql("UPDATE service_accounts SET status = 'closed'")
        self.assertError(self.post("/api/v1/accounts/hz0008/password", {}), 409, "account_closed")
        self.assertEqual(self.password_of("hz0008"), "Chosen-99")
        lst = self.get("/api/v1/customers/%s/accounts" % code)
        self.assertEqual(lst.body["data"][0]["status"], "closed")

    def test_reset_by_sms_code(self):
        code = self.customer(9, phone="13812348000", verified=False)
        self.post("/api/v1/customers/%s/accounts" % code, {"username": "hz0009"})
        url = "/api/v1/accounts/hz0009/"
        before = self.counts()
        self.assertError(self.post(url + "reset-code", None), 409, "phone_not_verified")
        self.assertEqual(self.counts(), before)
        self.ws.sql("UPDATE customers SET phone_verified_at = '2026-01-02T00:00:00.000Z' WHERE id = 9")

        r = self.post(url + "reset-code", None)
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(r.body["sent_to"], "138****8000")
        (oid, event, channel, cust, recipient, payload, status), = self.ws.sql(
            "SELECT id, event, channel, customer_id, recipient_enc, payload, status FROM outbox")
        self.assertEqual((event, channel, cust), ("pppoe_reset_code", "log", 9))
        # the outbox.deliver job (every minute) may already have delivered it
        self.assertIn(status, ("pending", "sent"))
        self.assertEqual(self.keys.decrypt("outbox.recipient", recipient), "13812348000")
        sms = json.loads(payload)
        self.assertEqual(sms["username"], "hz0009")
        self.assertRegex(sms["code"], r"^[0-9]{6}$")
        (purpose, chash, attempts, target), = self.ws.sql(
            "SELECT purpose, code_hash, attempts, target_idx FROM verification_codes")
        self.assertEqual(purpose, "reset_pppoe")
        self.assertEqual(chash, self.keys.index("vcode", "9:" + sms["code"]))
        self.assertEqual(target, self.keys.index("phone", "13812348000"))
        self.assertEqual(len(self.audits("account.reset_code_sent")), 1)
        self.assertNotIn(sms["code"], self.audits("account.reset_code_sent")[0][3])

        # once a minute at most
        r = self.post(url + "reset-code", None)
        self.assertError(r, 429, "too_soon")
        self.assertTrue(1 <= int(r.headers["Retry-After"]) <= 60, r.headers["Retry-After"])
        self.assertEqual(self.count("outbox"), 1)

        # a wrong code: refused, and the attempt is kept
        wrong = "%06d" % ((int(sms["code"]) + 1) % 1000000)
        err = self.assertError(self.post(url + "reset", {"code": wrong}), 422, "invalid_code")
        self.assertEqual((err["field"], err["attempts_left"]), ("code", 4))
        self.assertIn("4 attempts left", err["message"])
        self.assertEqual(self.ws.sql("SELECT attempts FROM verification_codes")[0][0], 1)
        self.assertError(self.post(url + "reset", {"code": "12ab56"}), 400, "invalid_field")
        self.assertError(self.post(url + "reset", {}), 400, "missing_field")
        self.assertEqual(self.ws.sql("SELECT attempts FROM verification_codes")[0][0], 1)
        old = self.password_of("hz0009")

        # the right one: a new password, shown once
        r = self.post(url + "reset", {"code": sms["code"]})
        self.assertEqual(r.status, 200, r.body)
        pw = r.body["new_password"]
        self.assertNotEqual(pw, old)
        self.assertEqual(self.password_of("hz0009"), pw)
        (actor, otype, oid2, diff) = self.audits("account.password_reset")[-1]
        self.assertIn('"sms_code"', diff)
        self.assertNotIn(pw, diff)
        # and the code is spent
        self.assertError(self.post(url + "reset", {"code": sms["code"]}), 409, "no_code")
        self.assertEqual(self.password_of("hz0009"), pw)


class RuleOutput(AccountsCase):
    rules_files = {"accounts.lua": "return { username = function(ctx) return 42 end }\n"}

    def test_a_rule_returning_a_number_is_refused(self):
        code = self.customer(11)
        before = self.counts()
        r = self.post("/api/v1/customers/%s/accounts" % code, {})
        self.assertError(r, 422, "rule_invalid_output")
        self.assertEqual(r.body["error"]["rule"]["rule"], "accounts.username")
        self.assertEqual(r.body["error"]["rule"]["kind"], "output")
        self.assertIn("returned a number", r.body["error"]["message"])
        self.assertEqual(self.counts(), before)
        # a name given does not ask the rule
        self.assertEqual(self.post("/api/v1/customers/%s/accounts" % code, {"username": "given1"}).status, 201)


class Devices(AccountsCase):
    def register(self, serial, kind="onu", mac=None, token=None):
        body = {"kind": kind, "serial": serial}
        if mac:
            body["mac"] = mac
        r = self.post("/api/v1/devices", body, token=token)
        self.assertEqual(r.status, 201, r.body)
        return r.body

    def test_install_swap_remove_with_history(self):
        a = self.customer(21)                           # C000000210
        b = self.customer(22, city=None)
        self.post("/api/v1/customers/%s/accounts" % a, {"username": "hz0021"})
        dev = self.register("hwtc 1a2b 3c4d", mac="AA-BB-CC-DD-EE-F0", token=self.tech)
        self.assertEqual((dev["serial"], dev["vendor"], dev["mac"], dev["status"]),
                         ("HWTC1A2B3C4D", "Huawei", "aa:bb:cc:dd:ee:f0", "stock"))
        new = self.register("ZTEG12345678")
        before = self.counts()
        for body, status, ecode, field in [
            ({"kind": "onu", "serial": "ZTEG1234"}, 400, "invalid_serial", "serial"),
            ({"kind": "modem", "serial": "ZTEG87654321"}, 400, "invalid_kind", "kind"),
            ({"kind": "router", "serial": "RT000001", "mac": "aabb.ccdd.eef0"}, 409, "mac_taken", "mac"),
            ({"kind": "router", "serial": "RT000001", "mac": "ff:ff:ff:ff:ff:ff"}, 400, "invalid_mac", "mac"),
            ({"kind": "onu", "serial": "hwtc1a2b3c4d"}, 409, "serial_taken", "serial"),
            ({"kind": "onu"}, 400, "missing_field", "serial"),
        ]:
            err = self.assertError(self.post("/api/v1/devices", body), status, ecode)
            self.assertEqual(err["field"], field, body)
        self.assertEqual(self.counts(), before)

        # install by a technician: the service address, the technician as engineer
        url = "/api/v1/devices/HWTC1A2B3C4D/"
        for body, status, ecode, field in [
            ({"customer": a, "installed_on": "2999-01-01"}, 400, "invalid_date", "installed_on"),
            ({"customer": a, "account": "nobody"}, 404, "not_found", "account"),
            ({"customer": code_of(99)}, 404, "not_found", "customer"),
            ({"customer": b}, 400, "missing_field", "address"),
            ({"customer": a, "color": "red"}, 400, "unknown_field", "color"),
        ]:
            err = self.assertError(self.post(url + "install", body, token=self.tech), status, ecode)
            self.assertEqual(err["field"], field, body)
        self.assertEqual(self.counts(), before)
        r = self.post(url + "install", {"customer": a, "account": "hz0021", "installed_on": "2025-03-01"}, token=self.tech)
        self.assertEqual(r.status, 201, r.body)
        self.assertEqual(r.body["status"], "installed")
        inst = r.body["installation"]
        self.assertEqual((inst["customer"], inst["account"], inst["address"], inst["engineer"], inst["installed_on"]),
                         (a, "hz0021", ADDRESS, "it-tech", "2025-03-01"))

        # one place at a time, and the error says where
        err = self.assertError(self.post(url + "install", {"customer": b, "address": "上城区 解放路 8号"}), 409,
                               "device_installed")
        self.assertIn("installed at customer %s since 2025-03-01" % a, err["message"])

        # swap: the old one comes back, the new one goes to the same place
        self.assertError(self.post(url + "remove", {"reason": "swap"}), 400, "invalid_field")
        r = self.post(url + "swap", {"new_serial": "zteg-1234-5678", "swapped_on": "2025-06-01"}, token=self.tech)
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(r.body["removed"]["status"], "returned")
        self.assertIsNone(r.body["removed"]["installation"])
        self.assertEqual(r.body["installed"]["status"], "installed")
        ni = r.body["installed"]["installation"]
        self.assertEqual((ni["customer"], ni["account"], ni["address"], ni["installed_on"]),
                         (a, "hz0021", ADDRESS, "2025-06-01"))
        old = self.get("/api/v1/devices/hwtc1a2b3c4d", token=self.tech).body
        self.assertEqual([(h["customer"], h["removed_on"], h["removal_reason"]) for h in old["history"]],
                         [(a, "2025-06-01", "swap")])
        swaps = self.audits("device.swap")
        self.assertEqual([(x[1], x[2]) for x in swaps], [("device", "HWTC1A2B3C4D")])
        self.assertNotIn("文三路", swaps[0][3])            # the address is masked in the trail

        # the returned ONU goes to the next customer; the new one is lost later
        r = self.post(url + "install", {"customer": b, "address": "上城区 解放路 8号", "installed_on": "2025-07-01"})
        self.assertEqual(r.status, 201, r.body)
        r = self.post("/api/v1/devices/ZTEG12345678/remove", {"reason": "lost", "removed_on": "2025-08-01"})
        self.assertEqual((r.status, r.body["status"]), (200, "lost"))
        self.assertError(self.post("/api/v1/devices/ZTEG12345678/remove", {"reason": "lost"}), 409, "not_installed")
        full = self.get("/api/v1/devices/HWTC1A2B3C4D").body
        self.assertEqual([(h["customer"], h["removal_reason"]) for h in full["history"]], [(b, None), (a, "swap")])
        self.assertEqual(full["installation"]["customer"], b)

        # lists by serial, MAC, status, customer
        def serials(q):
            r = self.get("/api/v1/devices" + q, token=self.tech)
            self.assertEqual(r.status, 200, r.body)
            return [d["serial"] for d in r.body["data"]]
        self.assertEqual(serials("?serial=hwtc%201a2b%203c4d"), ["HWTC1A2B3C4D"])
        self.assertEqual(serials("?mac=AABBCCDDEEF0"), ["HWTC1A2B3C4D"])
        self.assertEqual(serials("?status=lost"), ["ZTEG12345678"])
        self.assertEqual(serials("?customer=" + b), ["HWTC1A2B3C4D"])
        self.assertEqual(serials(""), ["ZTEG12345678", "HWTC1A2B3C4D"])
        self.assertEqual(serials("?serial=NOPE000001"), [])
        self.assertError(self.get("/api/v1/devices?status=broken"), 400, "invalid_parameter")

    def test_install_address_follows_the_customer_address_policy(self):
        a = self.customer(31)
        self.register("FHTT0000ABCD")
        self.post("/api/v1/devices/FHTT0000ABCD/install", {"customer": a})
        views = len(self.audits("field.view"))
        # a technician sees it (and that is recorded); a billing clerk sees it masked
        tech = self.get("/api/v1/devices/FHTT0000ABCD", token=self.tech).body
        self.assertEqual(tech["installation"]["address"], ADDRESS)
        self.assertEqual(len(self.audits("field.view")), views + 1)
        clerk = self.get("/api/v1/devices/FHTT0000ABCD", token=self.clerk).body
        masked = clerk["installation"]["address"]
        self.assertNotEqual(masked, ADDRESS)
        self.assertTrue(masked.startswith("浙江省"), masked)
        self.assertNotIn("文三路", json.dumps(clerk, ensure_ascii=False))
        listed = self.get("/api/v1/devices", token=self.clerk).body["data"][0]
        self.assertNotIn("文三路", json.dumps(listed, ensure_ascii=False))


class Deposits(AccountsCase):
    def product(self, code, kind="deposit", price=20000, status="active"):
        self.ws.sql("INSERT INTO products (code, kind, name, status, created_at, created_by) "
                    "VALUES (?, ?, ?, ?, '2020-01-01T00:00:00.000Z', 'it')", (code, kind, code, status))
        (pid,) = self.ws.sql("SELECT id FROM products WHERE code = ?", (code,))[0]
        self.ws.sql("INSERT INTO product_versions (product_id, version, effective_from, price, tax_category, rule, "
                    "created_at, created_by) VALUES (?, 1, '2020-01-01', ?, 'deposit', 'tariffs.flat', "
                    "'2020-01-01T00:00:00.000Z', 'it')", (pid, price))

    def test_take_and_settle(self):
        a = self.customer(41)
        self.product("ONU-DEPOSIT")
        self.product("PLAN-100M", kind="plan", price=12900)
        self.post("/api/v1/devices", {"kind": "onu", "serial": "ZTEG000000A1"})
        self.post("/api/v1/devices/ZTEG000000A1/install", {"customer": a}, token=self.tech)
        url = "/api/v1/customers/%s/deposits" % a
        before = self.counts()
        for body, status, ecode, field in [
            ({"device": "ZTEG000000A1", "product": "ONU-DEPOSIT", "amount": 199.5}, 400, "invalid_money", "amount"),
            ({"device": "ZTEG000000A1", "product": "ONU-DEPOSIT", "amount": -1}, 400, "invalid_money", "amount"),
            ({"device": "ZTEG000000A1", "product": "PLAN-100M"}, 400, "not_a_deposit", "product"),
            ({"device": "ZTEG000000A1", "product": "NOPE"}, 404, "not_found", "product"),
            ({"device": "ZTEG000000FF", "product": "ONU-DEPOSIT"}, 404, "not_found", "device"),
            ({"device": "ZTEG000000A1"}, 400, "missing_field", "product"),
        ]:
            err = self.assertError(self.post(url, body), status, ecode)
            self.assertEqual(err["field"], field, body)
        # a technician installs devices but takes and settles no money
        self.assertError(self.post(url, {"device": "ZTEG000000A1", "product": "ONU-DEPOSIT"}, token=self.tech), 403)
        self.assertEqual(self.counts(), before)

        r = self.post(url, {"device": "zteg000000a1", "product": "ONU-DEPOSIT", "note": "cash"}, token=self.cs)
        self.assertEqual(r.status, 201, r.body)
        dep = r.body
        self.assertEqual((dep["customer"], dep["device"], dep["product"], dep["amount"], dep["status"], dep["settled_on"]),
                         (a, "ZTEG000000A1", "ONU-DEPOSIT", 20000, "held", None))
        self.assertError(self.post(url, {"device": "ZTEG000000A1", "product": "ONU-DEPOSIT", "amount": 100}), 409,
                         "deposit_held")
        self.assertEqual(self.get("/api/v1/devices/ZTEG000000A1").body["deposit"]["id"], dep["id"])

        settle = "/api/v1/deposits/%d/settle" % dep["id"]
        before = self.counts()
        self.assertError(self.post(settle, {"status": "returned"}, token=self.tech), 403)
        self.assertError(self.post(settle, {"status": "refunded"}, token=self.clerk), 400, "invalid_field")
        self.assertError(self.post(settle, {"status": "returned", "settled_on": "1999-01-01"}, token=self.clerk), 400,
                         "invalid_date")
        self.assertError(self.post("/api/v1/deposits/999/settle", {"status": "returned"}, token=self.clerk), 404)
        self.assertEqual(self.counts(), before)
        r = self.post(settle, {"status": "returned", "note": "refunded at the counter"}, token=self.clerk)
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual((r.body["status"], r.body["settled_by"]), ("returned", "token:it-clerk"))
        self.assertEqual(r.body["note"], "cash\nrefunded at the counter")
        today = datetime.date.today()
        self.assertIn(r.body["settled_on"], {(today + datetime.timedelta(days=d)).isoformat() for d in (-1, 0, 1)})
        (actor, otype, oid, diff), = self.audits("deposit.settle")
        self.assertEqual((actor, otype, oid), ("token:it-clerk", "deposit", str(dep["id"])))
        self.assertIn('"returned"', diff)
        self.assertError(self.post(settle, {"status": "kept"}, token=self.clerk), 409, "already_settled")

        lst = self.get(url + "?status=returned", token=self.clerk).body["data"]
        self.assertEqual([d["id"] for d in lst], [dep["id"]])
        self.assertEqual(self.get(url + "?status=held").body["data"], [])


if __name__ == "__main__":
    unittest.main()
