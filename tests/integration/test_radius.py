"""Network enforcement with the real FreeRADIUS of Debian (started here on
loopback ports, reading the SQLite file the radius plugin keeps) and
`bandbill serve` with radius configured:

- a paying customer's PPPoE account: radtest gets Access-Accept with the
  plan's rate (Mikrotik-Rate-Limit "UPk/DOWNk": rx is what the customer
  sends);
- three days over (`bandbill dunning run`): within a second, the throttle
  rate of rules/dunning.lua, and a CoA-Request with it to the NAS that
  holds the session (found in radacct from FreeRADIUS's own accounting);
- seven days over: Access-Reject, and a Disconnect-Request to each NAS
  holding a session; a NAS that never answers is asked again, then
  reported (log line, /metrics, `radius status`);
- a payment through the sandbox: Access-Accept with the full rate within a
  second;
- the NAS (a UDP socket here) checks both authenticators of every request
  (the Request Authenticator, MD5; the Message-Authenticator, HMAC-MD5),
  computed here with hashlib and hmac, and the attributes;
- `radius resync` finds what was changed by hand and repairs it;
- FreeRADIUS logs no password in radpostauth; the tables the plugin makes
  are FreeRADIUS's own schema;
- Huawei's rate attributes and the walled garden, with `radius sync`."""

import hashlib
import hmac
import json
import os
import re
import shutil
import socket
import sqlite3
import struct
import subprocess
import tempfile
import threading
import time
import urllib.parse

import bbtest
from bbtest import BBTestCase, BIN
from test_billing import seed
from test_sandbox import Form, free_port

FREERADIUS_CONF = "/etc/freeradius/3.0"
RADIUS_SECRET = "testing123"        # clients.conf's localhost client, for radtest and radclient
NAS_SECRET = "nas-secret-Xy7"
PLAN_ATTRS = '{"period":"month","billing":"postpaid","min_contract_months":0,"download_mbps":100,"upload_mbps":20}'

SITE = """server default {
listen {
	type = auth
	ipaddr = 127.0.0.1
	port = %(auth)d
}
listen {
	type = acct
	ipaddr = 127.0.0.1
	port = %(acct)d
}
authorize {
	preprocess
	sql
	pap
}
authenticate {
	Auth-Type PAP {
		pap
	}
}
preacct {
	preprocess
	acct_unique
}
accounting {
	sql
}
post-auth {
	sql
	Post-Auth-Type REJECT {
		sql
		attr_filter.access_reject
	}
}
}
"""


def free_udp_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class FreeRadius:
    """A throwaway FreeRADIUS: /etc/freeradius/3.0 copied, its folders and
    ports moved here, no user switch, no reject delay, no EAP, the sql
    module on `db` (SQLite), radpostauth without the password."""

    def __init__(self, tmp, db):
        self.dir = os.path.join(tmp, "raddb")
        shutil.copytree(FREERADIUS_CONF, self.dir, symlinks=True)
        for sub in ("log", "run"):
            os.makedirs(os.path.join(tmp, sub), exist_ok=True)
        conf = os.path.join(self.dir, "radiusd.conf")
        t = bbtest.read(conf)
        t = re.sub(r"(?m)^raddbdir = .*$", "raddbdir = " + self.dir, t)
        t = re.sub(r"(?m)^logdir = .*$", "logdir = " + os.path.join(tmp, "log"), t)
        t = re.sub(r"(?m)^run_dir = .*$", "run_dir = " + os.path.join(tmp, "run"), t)
        t = re.sub(r"(?m)^(\s*)(user|group) = freerad$", r"\1# \2 = freerad", t)
        t = re.sub(r"(?m)^(\s*)reject_delay = \d+$", r"\1reject_delay = 0", t)
        bbtest.write(conf, t)
        for f in ("mods-enabled/eap", "sites-enabled/inner-tunnel", "sites-enabled/default"):
            os.unlink(os.path.join(self.dir, f))
        sql = os.path.join(self.dir, "mods-available/sql")
        t = bbtest.read(sql)
        assert 'driver = "rlm_sql_null"' in t and 'filename = "/tmp/freeradius.db"' in t
        t = t.replace('driver = "rlm_sql_null"', 'driver = "rlm_sql_${dialect}"')
        t = t.replace('filename = "/tmp/freeradius.db"', 'filename = "%s"' % db)
        bbtest.write(sql, t)
        q = os.path.join(self.dir, "mods-config/sql/main/sqlite/queries.conf")
        t = bbtest.read(q)
        assert "'%{%{User-Password}:-%{Chap-Password}}'" in t
        bbtest.write(q, t.replace("'%{%{User-Password}:-%{Chap-Password}}'", "''"))   # personal data: never logged
        os.symlink("../mods-available/sql", os.path.join(self.dir, "mods-enabled/sql"))
        self.auth, self.acct = free_udp_port(), free_udp_port()
        bbtest.write(os.path.join(self.dir, "sites-enabled/bandbill"), SITE % {"auth": self.auth, "acct": self.acct})
        self.log = os.path.join(tmp, "freeradius.log")
        self.proc = None

    def start(self):
        with open(self.log, "w") as out:
            self.proc = subprocess.Popen(["freeradius", "-X", "-d", self.dir], stdout=out, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL)
        bbtest.poll(lambda: self.proc.poll() is not None or "Ready to process requests" in bbtest.read(self.log),
                    timeout=10, what="FreeRADIUS to start")
        if self.proc.poll() is not None:
            raise AssertionError("FreeRADIUS did not start:\n" + bbtest.read(self.log)[-3000:])

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def radtest(self, user, password):
        """(reply code, {attribute: value}) of an Access-Request."""
        r = subprocess.run(["radtest", "-x", user, password, "127.0.0.1:%d" % self.auth, "0", RADIUS_SECRET],
                           capture_output=True, text=True, timeout=20)
        m = re.search(r"Received (Access-\w+) Id \d+ from[^\n]*\n((?:\t[^\n]*\n)*)", r.stdout)
        if not m:
            raise AssertionError("radtest got no answer:\n%s\n%s" % (r.stdout, r.stderr))
        attrs = {}
        for line in m.group(2).splitlines():
            k, _, v = line.strip().partition(" = ")
            attrs[k] = v.strip('"')
        return m.group(1), attrs

    def accounting(self, **attrs):
        text = "".join("%s = %s\n" % (k.replace("_", "-"), v) for k, v in attrs.items())
        r = subprocess.run(["radclient", "-x", "127.0.0.1:%d" % self.acct, "acct", RADIUS_SECRET], input=text,
                           capture_output=True, text=True, timeout=20)
        assert "Received Accounting-Response" in r.stdout, r.stdout + r.stderr


def parse_attrs(pkt):
    out, at = [], 20
    while at < len(pkt):
        t, n = pkt[at], pkt[at + 1]
        out.append((t, pkt[at + 2:at + n]))
        at += n
    return out


class FakeNAS(threading.Thread):
    """A NAS's RFC 5176 port: keeps every request, answers ACK (with a
    Message-Authenticator, signed with the Request Authenticator) unless
    told to stay silent."""

    def __init__(self, address, secret, answer=True):
        super().__init__(daemon=True)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((address, 0))
        self.sock.settimeout(0.1)
        self.address, self.port = self.sock.getsockname()
        self.secret, self.answer = secret.encode(), answer
        self.packets, self.cond, self.stopped = [], threading.Condition(), False

    def run(self):
        while not self.stopped:
            try:
                data, peer = self.sock.recvfrom(4096)
            except socket.timeout:
                continue
            except OSError:
                break
            with self.cond:
                self.packets.append((time.monotonic(), data))
                self.cond.notify_all()
            if self.answer:
                body = bytes([80, 18]) + bytes(16)
                resp = bytes([data[0] + 1, data[1]]) + struct.pack(">H", 20 + len(body)) + data[4:20] + body
                ma = hmac.new(self.secret, resp, hashlib.md5).digest()
                resp = resp[:22] + ma
                auth = hashlib.md5(resp + self.secret).digest()
                self.sock.sendto(resp[:4] + auth + resp[20:], peer)

    def wait_packets(self, n, timeout):
        deadline = time.monotonic() + timeout
        with self.cond:
            while len(self.packets) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("the NAS %s got %d requests, expected %d" % (self.address, len(self.packets), n))
                self.cond.wait(left)
            return list(self.packets)

    def stop(self):
        self.stopped = True
        self.join(2)
        self.sock.close()


class RadiusCase(BBTestCase):
    def setUp(self):
        super().setUp()
        for tool in ("freeradius", "radtest", "radclient"):
            if not shutil.which(tool):
                self.fail("%s is not installed: scripts/test.sh installs freeradius and freeradius-utils" % tool)
        seed(self.ws, 1, start="2026-10-01", next_bill="2026-11-01")
        self.ws.sql("UPDATE product_versions SET attrs = ?", (PLAN_ATTRS,))
        self.tmp = tempfile.mkdtemp(prefix="bbrad-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.raddb = os.path.join(self.tmp, "radius.db")
        self.fr = FreeRadius(self.tmp, self.raddb)
        self.addCleanup(self.fr.stop)

    def check_request(self, data, secret, code):
        """Both authenticators, computed independently, and the attributes
        of an RFC 5176 request; returns {type: [values]}."""
        self.assertEqual(data[0], code)
        self.assertEqual(struct.unpack(">H", data[2:4])[0], len(data))
        secret = secret.encode()
        zero_auth = data[:4] + bytes(16) + data[20:]
        self.assertEqual(hashlib.md5(zero_auth + secret).digest(), data[4:20], "Request Authenticator")
        attrs = parse_attrs(data)
        self.assertEqual(attrs[0][0], 80, "the Message-Authenticator comes first")
        ma_at = 22
        signed = zero_auth[:ma_at] + bytes(16) + zero_auth[ma_at + 16:]
        self.assertEqual(hmac.new(secret, signed, hashlib.md5).digest(), data[ma_at:ma_at + 16], "Message-Authenticator")
        out = {}
        for t, v in attrs:
            out.setdefault(t, []).append(v)
        return out

    @staticmethod
    def mikrotik_rate(attrs):
        """The Mikrotik-Rate-Limit of a request's vendor-specific attributes."""
        for v in attrs.get(26, []):
            vendor, vtype, vlen = struct.unpack(">IBB", v[:6])
            if vendor == 14988 and vtype == 8:
                return v[6:6 + vlen - 2].decode()
        return None

    def rad_rows(self, sql, params=()):
        con = sqlite3.connect(self.raddb, timeout=5)
        try:
            return con.execute(sql, params).fetchall()
        finally:
            con.close()


class Enforcement(RadiusCase):
    def setUp(self):
        super().setUp()
        self.ws.ok("bill", "run", "--period", "2026-10")
        self.number, = self.ws.sql("SELECT number FROM invoices")[0]
        self.nas1 = FakeNAS("127.0.0.1", NAS_SECRET)
        self.nas2 = FakeNAS("127.0.0.2", NAS_SECRET + "2", answer=False)
        for n in (self.nas1, self.nas2):
            n.start()
            self.addCleanup(n.stop)
        # the sandbox plays Alipay (see test_sandbox)
        self.sport, dport = free_port(), free_port()
        sbdir = self.ws.path("sandbox")
        self.ws.ok("sandbox", "--init-only", "--listen", "127.0.0.1:%d" % self.sport, "--daemon",
                   "http://127.0.0.1:%d" % dport, "--dir", sbdir)
        self.sb = subprocess.Popen([BIN, "sandbox", "--listen", "127.0.0.1:%d" % self.sport, "--daemon",
                                    "http://127.0.0.1:%d" % dport, "--dir", sbdir, "--db", self.ws.db],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.addCleanup(self.stop_sandbox)
        self.radius_set = ["--set", "radius.db=" + self.raddb, "--set", "radius.poll_ms=100",
                           "--set", "radius.coa_timeout_ms=300", "--set", "radius.coa_retries=2",
                           "--set", "nas.bras1.address=127.0.0.1", "--set", "nas.bras1.secret=" + NAS_SECRET,
                           "--set", "nas.bras1.coa_port=%d" % self.nas1.port,
                           "--set", "nas.bras2.address=127.0.0.2", "--set", "nas.bras2.secret=" + NAS_SECRET + "2",
                           "--set", "nas.bras2.coa_port=%d" % self.nas2.port]
        self.token = self.ws.token()
        # bandbill first: its plugin makes FreeRADIUS's tables in the file
        self.srv = self.ws.serve("--config", os.path.join(sbdir, "channels.ini"), "--listen", "127.0.0.1:%d" % dport,
                                 *self.radius_set)
        self.srv.wait_event("network_baseline", timeout=10)
        self.fr.start()
        bbtest.poll(lambda: self.reachable(self.sport), timeout=10, what="the sandbox")

    def stop_sandbox(self):
        self.sb.terminate()
        try:
            self.sb.wait(5)
        except subprocess.TimeoutExpired:
            self.sb.kill()

    @staticmethod
    def reachable(port):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return True
        except OSError:
            return False

    def cli(self, *args):
        return self.ws.run(*args, *self.radius_set)

    def reply_within(self, user, password, want, seconds, since):
        """radtest until it answers `want` (code, rate or None); asserts that
        came within `seconds` of `since` (time.monotonic())."""
        last = None
        while True:
            code, attrs = self.fr.radtest(user, password)
            last = (code, attrs.get("Mikrotik-Rate-Limit"))
            if last == want:
                took = time.monotonic() - since
                self.assertLess(took, seconds, "%s after %.2fs" % (want, took))
                return attrs
            if time.monotonic() - since > seconds + 5:
                self.fail("radtest: %r, expected %r\n%s" % (last, want, self.srv.stderr_text[-3000:]))
            time.sleep(0.05)

    def pay(self):
        r = self.srv.post("/api/v1/invoices/%s/pay-orders" % self.number, {"channel": "alipay"}, token=self.token)
        self.assertEqual(r.status, 201, r.body)
        u = urllib.parse.urlsplit(r.body["pay_url"])
        page = bbtest.http_request(self.sport, "GET", u.path + "?" + u.query)
        form = Form()
        form.feed(page.body)
        r = bbtest.http_request(self.sport, "POST", form.action, raw=urllib.parse.urlencode(form.fields),
                                content_type="application/x-www-form-urlencoded")
        self.assertIn("bandbill answered 200 success", r.body)

    def test_the_line_follows_the_ladder_and_the_payment(self):
        # the schema the plugin made is FreeRADIUS's own
        ref = sqlite3.connect(":memory:")
        ref.executescript(bbtest.read(os.path.join(FREERADIUS_CONF, "mods-config/sql/main/sqlite/schema.sql")))
        for table in ("radcheck", "radreply", "radusergroup", "radgroupcheck", "radgroupreply", "radacct", "radpostauth", "nas"):
            self.assertEqual(self.rad_rows("PRAGMA table_info(%s)" % table),
                             ref.execute("PRAGMA table_info(%s)" % table).fetchall(), table)

        # a PPPoE account for the customer, on the subscription: on the network within a second
        r = self.srv.post("/api/v1/customers/C000000013/accounts", {"username": "zs001", "password": "Pw-zs001-x"},
                          token=self.token)
        self.assertEqual(r.status, 201, r.body)
        self.ws.sql("UPDATE subscriptions SET service_account_id = (SELECT id FROM service_accounts)")
        t0 = time.monotonic()
        attrs = self.reply_within("zs001", "Pw-zs001-x", ("Access-Accept", "20000k/100000k"), 1.0, t0)
        self.assertEqual(self.fr.radtest("zs001", "wrong-pw")[0], "Access-Reject")

        # online on two NASes (FreeRADIUS's own accounting fills radacct)
        self.fr.accounting(User_Name="zs001", Acct_Status_Type="Start", Acct_Session_Id="81000001",
                           NAS_IP_Address="127.0.0.1", Framed_IP_Address="100.64.0.5")
        self.fr.accounting(User_Name="zs001", Acct_Status_Type="Start", Acct_Session_Id="b2-77",
                           NAS_IP_Address="127.0.0.2", Framed_IP_Address="100.64.9.9")
        self.assertEqual(len(self.rad_rows("SELECT 1 FROM radacct WHERE username = 'zs001' AND acctstoptime IS NULL")), 2)

        # three days over: throttled at the rule's 2M/2M; a CoA to each session
        n1 = len(self.nas1.packets)
        self.ws.ok("dunning", "run", "--date", "2026-11-19")
        t0 = time.monotonic()
        self.assertEqual(self.ws.sql("SELECT status, throttle_down_kbps, throttle_up_kbps FROM service_accounts"),
                         [("throttled", 2000, 2000)])
        self.reply_within("zs001", "Pw-zs001-x", ("Access-Accept", "2000k/2000k"), 1.0, t0)
        got = self.nas1.wait_packets(n1 + 1, 3)
        self.assertLess(got[n1][0] - t0, 1.0)
        a = self.check_request(got[n1][1], NAS_SECRET, 43)   # CoA-Request
        self.assertEqual(a[1], [b"zs001"])
        self.assertEqual(a[44], [b"81000001"])
        self.assertEqual(a[8], [socket.inet_aton("100.64.0.5")])
        self.assertEqual(a[4], [socket.inet_aton("127.0.0.1")])
        self.assertEqual(self.mikrotik_rate(a), "2000k/2000k")
        # the NAS that never answers got the same, three times (two retries), and is reported
        silent = self.nas2.wait_packets(3, 5)
        self.assertEqual(len({p for _, p in silent}), 1)    # a retransmission is the same packet
        b = self.check_request(silent[0][1], NAS_SECRET + "2", 43)
        self.assertEqual((b[44], b[4]), ([b"b2-77"], [socket.inet_aton("127.0.0.2")]))
        rec = self.srv.wait_event("radius_nas_timeout", timeout=5)
        self.assertIn("bras2", rec["msg"])
        self.assertIn("did not answer the CoA-Request for session b2-77 of zs001 (3 tries, 300 ms each)", rec["msg"])
        metrics = bbtest.poll(lambda: (lambda m: m if 'result="timeout"' in m else None)(self.srv.get("/metrics").body),
                              timeout=5, what="the timeout in /metrics")
        self.assertIn('bandbill_radius_requests_total{kind="coa",result="timeout"} 1', metrics)
        self.assertIn('bandbill_radius_requests_total{kind="coa",result="ack"} 1', metrics)
        status = bbtest.poll(lambda: (lambda st: st if st["session_failures"] else None)(
            json.loads(self.cli("radius", "status", "--json").out)), timeout=5, what="the failure in radius status")
        self.assertEqual(status["pending"], 0)
        self.assertEqual([(f["username"], f["state"]) for f in status["session_failures"]], [("zs001", "throttled")])
        self.assertIn("did not answer", status["session_failures"][0]["error"])

        # seven days over: rejected, and disconnected from each NAS
        self.nas2.answer = True
        n1, n2 = len(self.nas1.packets), len(self.nas2.packets)
        self.ws.ok("dunning", "run", "--date", "2026-11-23")
        t0 = time.monotonic()
        self.assertEqual(self.ws.sql("SELECT status FROM service_accounts"), [("suspended",)])
        self.reply_within("zs001", "Pw-zs001-x", ("Access-Reject", None), 1.0, t0)
        d1 = self.nas1.wait_packets(n1 + 1, 3)[n1]
        d2 = self.nas2.wait_packets(n2 + 1, 3)[n2]
        self.assertLess(max(d1[0], d2[0]) - t0, 1.0)
        a = self.check_request(d1[1], NAS_SECRET, 40)        # Disconnect-Request
        self.assertEqual((a[1], a[44], a[8], a[4]), ([b"zs001"], [b"81000001"], [socket.inet_aton("100.64.0.5")],
                                                     [socket.inet_aton("127.0.0.1")]))
        self.assertNotIn(26, a)                             # no rate in a Disconnect
        self.check_request(d2[1], NAS_SECRET + "2", 40)
        self.assertEqual(self.rad_rows("SELECT attribute, op, value FROM radcheck WHERE username = 'zs001'"),
                         [("Auth-Type", ":=", "Reject")])
        metrics = bbtest.poll(lambda: (lambda m: m if 'kind="disconnect",result="ack"} 2' in m else None)(
            self.srv.get("/metrics").body), timeout=5, what="the disconnects in /metrics")
        self.assertIn("bandbill_network_changes_applied_total", metrics)
        # the NASes took the last request: nothing to report any more
        bbtest.poll(lambda: json.loads(self.cli("radius", "status", "--json").out)["session_failures"] == [], timeout=5,
                    what="radius status without failures")
        for sid, nas in (("81000001", "127.0.0.1"), ("b2-77", "127.0.0.2")):
            self.fr.accounting(User_Name="zs001", Acct_Status_Type="Stop", Acct_Session_Id=sid, NAS_IP_Address=nas,
                               Acct_Terminate_Cause="Admin-Reset")

        # the bill paid through the sandbox: the full rate within a second
        self.pay()
        t0 = time.monotonic()
        self.assertEqual(self.ws.sql("SELECT status FROM customers"), [("active",)])
        self.assertEqual(self.ws.sql("SELECT status, throttle_down_kbps FROM service_accounts"), [("active", None)])
        self.reply_within("zs001", "Pw-zs001-x", ("Access-Accept", "20000k/100000k"), 1.0, t0)

        # drift made by hand, found and repaired
        con = sqlite3.connect(self.raddb)
        con.execute("DELETE FROM radreply WHERE username = 'zs001'")
        con.execute("INSERT INTO radcheck (username, attribute, op, value) VALUES ('ghost', 'Cleartext-Password', ':=', 'x')")
        con.commit()
        con.close()
        r = self.cli("radius", "resync", "--dry-run", "--json")
        self.assertEqual(r.rc, 1, str(r))
        out = json.loads(r.out)
        self.assertFalse(out["in_sync"])
        self.assertEqual(sorted((d["username"], d["kind"], d["where"], d["attribute"], d["want"]) for d in out["drift"]),
                         [("ghost", "extra", "radcheck", "Cleartext-Password", ""),
                          ("zs001", "missing", "radreply", "Mikrotik-Rate-Limit", ":= 20000k/100000k")])
        self.assertNotIn("Pw-zs001-x", r.out)
        self.assertEqual(self.fr.radtest("ghost", "x")[0], "Access-Accept")   # still there: a dry run
        r = self.cli("radius", "resync")
        self.assertEqual(r.rc, 0, str(r))
        self.assertIn("2 differences in 1 account, 1 name with no account (removed)", r.out)
        self.assertEqual(self.fr.radtest("ghost", "x")[0], "Access-Reject")
        self.assertEqual(self.fr.radtest("zs001", "Pw-zs001-x"), ("Access-Accept", {"Mikrotik-Rate-Limit": "20000k/100000k"}))
        r = self.cli("radius", "resync", "--dry-run")
        self.assertEqual(r.rc, 0, str(r))
        self.assertIn("the network holds what every account says", r.out)

        # FreeRADIUS kept no password in radpostauth
        rows = self.rad_rows("SELECT username, pass FROM radpostauth")
        self.assertTrue(rows)
        self.assertEqual({p for _, p in rows}, {""})
        self.srv.stop()


class Formats(RadiusCase):
    def test_huawei_rates_and_the_walled_garden_with_radius_sync(self):
        self.ws.sql("INSERT INTO customers (id, code, type, name, status, created_at, created_by, updated_at) VALUES "
                    "(2, 'C000000021', 'residential', 'Li Si', 'suspended', 't', 't', 't')")
        srv = self.ws.serve()
        token = self.ws.token()
        for code, user in (("C000000013", "zs001"), ("C000000021", "ls001")):
            r = srv.post("/api/v1/customers/%s/accounts" % code, {"username": user, "password": "Pw-%s-x" % user},
                         token=token)
            self.assertEqual(r.status, 201, r.body)
        srv.stop()
        self.ws.sql("UPDATE subscriptions SET service_account_id = 1")
        self.ws.sql("UPDATE service_accounts SET status = 'suspended' WHERE username = 'ls001'")
        opts = ["--set", "radius.db=" + self.raddb, "--set", "radius.rate_format=huawei",
                "--set", "radius.suspended=walled_garden", "--set", "radius.walled_garden_group=unpaid",
                "--set", "radius.walled_garden_reply=Mikrotik-Address-List := unpaid, Reply-Message := please pay"]
        r = self.ws.run("radius", "sync", "--json", *opts)
        self.assertEqual(r.rc, 0, str(r))
        out = json.loads(r.out)
        self.assertTrue(out["baseline"])
        self.assertEqual(out["accounts"], 2)
        self.fr.start()
        code, attrs = self.fr.radtest("zs001", "Pw-zs001-x")
        self.assertEqual(code, "Access-Accept")
        # bit/s; input is what the customer sends
        self.assertEqual((attrs["Huawei-Input-Average-Rate"], attrs["Huawei-Output-Average-Rate"]), ("20000000", "100000000"))
        code, attrs = self.fr.radtest("ls001", "Pw-ls001-x")
        self.assertEqual((code, attrs.get("Mikrotik-Address-List"), attrs.get("Reply-Message")),
                         ("Access-Accept", "unpaid", "please pay"))
        self.assertNotIn("Huawei-Input-Average-Rate", attrs)
        # nothing pending: a second sync does nothing
        r = self.ws.run("radius", "sync", "--json", *opts)
        self.assertEqual(json.loads(r.out)["accounts"], 0, str(r))
        # closing the account removes it
        self.ws.sql("UPDATE service_accounts SET status = 'closed' WHERE username = 'ls001'")
        self.ws.ok("radius", "sync", *opts)
        self.assertEqual(self.fr.radtest("ls001", "Pw-ls001-x")[0], "Access-Reject")
        self.assertEqual(self.rad_rows("SELECT count(*) FROM radusergroup"), [(0,)])
        # radius without its database is a configuration error, named
        r = self.ws.run("radius", "resync")
        self.assertOneErrorLine(r, "radius.db is not set")
        r = self.ws.run("radius", "sync", *opts[:2], "--set", "radius.walled_garden_reply=Reply-Message")
        self.assertOneErrorLine(r, "radius.walled_garden_reply")
