"""sectest - helpers for the security integration tests (test_security.py).

Built on bbtest (which stays untouched): the route table parsed from
core/routes.c, console sessions (cookie + CSRF token) over HTTP or HTTPS,
staff accounts made with the CLI, the audit trail and other tables read
with the sqlite3 module, and a few small utilities (UTC times in the
database's format, requests fired concurrently, a self-signed certificate).

The binary offers no listing of its routes (no `bandbill routes`, nothing in
--help), so the route table is read from the source with a regular
expression; parse_routes() checks that it found every entry.
"""

import collections
import datetime
import hashlib
import http.client
import itertools
import json
import os
import re
import sqlite3
import subprocess
import threading
import time

import bbtest

ROUTES_C = os.path.join(bbtest.SOURCE_DIR, "core", "routes.c")

BUILTIN_ROLES = ("admin", "billing_clerk", "customer_service", "technician", "analyst", "auditor")

# A password every check accepts: 15 characters, four classes, nothing common.
PASSWORD = "Tr1cky-Vole-42x"

# ------------------------------------------------------------------ routes

Route = collections.namedtuple("Route", "method pattern handler perm flags")
Route.__doc__ = "One row of core/routes.c; perm is None for PERM_PUBLIC routes."

# {"GET", "/api/v1/users/{username}", api_users_get, "user.read", "one staff account", 0},
_ROUTE_RE = re.compile(
    r'\{\s*"([A-Z]+)"\s*,\s*"([^"]+)"\s*,\s*([A-Za-z_][A-Za-z0-9_]*)\s*,\s*(PERM_PUBLIC|"[^"]*")\s*,'
    r'\s*"(?:[^"\\]|\\.)*"\s*,\s*([^{}]*?)\s*\}\s*,')


def parse_routes(path=ROUTES_C):
    """Every route of the table in core/routes.c, in table order."""
    text = bbtest.read(path)
    start = text.index("const route routes[]")
    end = text.index("};", start)
    body = text[start:end]
    # strip comments so a commented-out row is not taken for a route
    body = re.sub(r"/\*.*?\*/", "", body, flags=re.S)
    body = re.sub(r"//[^\n]*", "", body)
    routes = []
    for m in _ROUTE_RE.finditer(body):
        perm = None if m.group(4) == "PERM_PUBLIC" else m.group(4).strip('"')
        routes.append(Route(m.group(1), m.group(2), m.group(3), perm, m.group(5)))
    # every row opens with {"METHOD": the regex must have matched them all
    rows = len(re.findall(r'\{\s*"[A-Z]+"\s*,', body))
    if rows != len(routes) or not routes:
        raise AssertionError("parsed %d routes from %s but it has %d rows: the regex in sectest.py needs updating"
                             % (len(routes), path, rows))
    return routes


# Placeholder values for path parameters: none of them names an existing
# object, so a permitted call cannot damage the state the walk relies on
# (a real session id, say, could end the caller's own session).
PARAM_VALUES = {
    "code": "C000000017",
    "username": "x",
    "name": "x",
    "serial": "x",
    "id": "999999",
    "change": "1",
    "version": "0123456789abcdef",
}


def fill_path(pattern, values=PARAM_VALUES):
    return re.sub(r"\{([a-z_]+)\}", lambda m: values.get(m.group(1), "1"), pattern)


# -------------------------------------------------------------------- HTTP

def request(port, method, path, body=None, headers=None, token=None, raw=None, ssl_context=None,
            host="127.0.0.1", timeout=30):
    """Like bbtest.http_request, over HTTPS when ssl_context is given."""
    if ssl_context is None:
        return bbtest.http_request(port, method, path, body=body, headers=headers, token=token, raw=raw,
                                   host=host, timeout=timeout)
    h = dict(headers or {})
    data = None
    if body is not None:
        data = json.dumps(body).encode()
    elif raw is not None:
        data = raw.encode() if isinstance(raw, str) else raw
    if data is not None and "Content-Type" not in h:
        h["Content-Type"] = "application/json"
    if token:
        h["Authorization"] = "Bearer " + token
    conn = http.client.HTTPSConnection(host, port, timeout=timeout, context=ssl_context)
    try:
        conn.request(method, path, body=data, headers=h)
        r = conn.getresponse()
        text = r.read().decode("utf-8", "replace")
        parsed = text
        if r.getheader("Content-Type", "").startswith("application/json"):
            parsed = json.loads(text)
        return bbtest.Resp(r.status, r.headers, parsed)
    finally:
        conn.close()


def parse_set_cookie(value):
    """'bb_session=abc; Path=/; HttpOnly' -> ('bb_session', 'abc', {'path': '/', 'httponly': True})"""
    parts = [p.strip() for p in value.split(";")]
    name, _, val = parts[0].partition("=")
    attrs = {}
    for p in parts[1:]:
        k, eq, v = p.partition("=")
        attrs[k.strip().lower()] = v.strip() if eq else True
    return name.strip(), val.strip(), attrs


class Console:
    """A logged-in console session: the bb_session cookie and its CSRF token,
    sent the way the console's own page sends them."""

    def __init__(self, port, username, cookie, csrf, login_resp, ssl_context=None):
        self.port = port
        self.username = username
        self.cookie = cookie
        self.csrf = csrf
        self.login_resp = login_resp
        self.ssl_context = ssl_context

    def request(self, method, path, body=None, csrf=True, headers=None, rid=None, **kw):
        """csrf: True sends the session's token, False none, a string that string."""
        h = {"Cookie": "bb_session=" + self.cookie}
        if csrf is True:
            h["X-CSRF-Token"] = self.csrf
        elif csrf:
            h["X-CSRF-Token"] = csrf
        if rid:
            h["X-Request-Id"] = rid
        h.update(headers or {})
        return request(self.port, method, path, body=body, headers=h, ssl_context=self.ssl_context, **kw)

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.request("POST", path, body=body, **kw)

    def me(self):
        return self.get("/api/v1/auth/me")

    @property
    def token_hash(self):
        return hashlib.sha256(self.cookie.encode()).hexdigest()

    def session_id(self, ws):
        rows = ws.sql("SELECT id FROM sessions WHERE token_hash = ?", (self.token_hash,))
        assert rows, "no session row for %s's cookie" % self.username
        return rows[0][0]


def try_login(port, username, password, ssl_context=None, headers=None):
    """POST /api/v1/auth/login; returns (Resp, seconds taken)."""
    t0 = time.monotonic()
    r = request(port, "POST", "/api/v1/auth/login", body={"username": username, "password": password},
                headers=headers, ssl_context=ssl_context)
    return r, time.monotonic() - t0


def login(port, username, password=PASSWORD, ssl_context=None):
    """Logs in (must succeed) and returns a Console."""
    r, _ = try_login(port, username, password, ssl_context)
    if r.status != 200:
        raise AssertionError("login of %s failed: %s %s" % (username, r.status, r.body))
    cookies = [parse_set_cookie(v) for v in r.headers.get_all("Set-Cookie") or []]
    val = [c for c in cookies if c[0] == "bb_session"]
    assert len(val) == 1, r.headers
    return Console(port, username, val[0][1], r.body["csrf_token"], r, ssl_context)


# ------------------------------------------------------------ staff users

def add_user(ws, name, role, password=PASSWORD, email=None, phone=None, display_name=None):
    """`bandbill user add NAME --role ROLE --password-stdin` (must succeed)."""
    args = ["user", "add", name, "--role", role, "--password-stdin", "--db", ws.db]
    if email:
        args += ["--email", email]
    if phone:
        args += ["--phone", phone]
    if display_name:
        args += ["--display-name", display_name]
    return ws.ok(*args, input=password + "\n")


def user_id(ws, name):
    rows = ws.sql("SELECT id FROM staff_users WHERE username = ?", (name,))
    assert rows, "no user %s" % name
    return rows[0][0]


# ------------------------------------------------------------------ tables

def rows(ws, query, params=()):
    """Rows as dicts."""
    con = sqlite3.connect(ws.db, timeout=10)
    con.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in con.execute(query, params).fetchall()]
    finally:
        con.close()


def audit(ws, where="1", params=()):
    """audit_log rows (oldest first) with diff parsed."""
    out = rows(ws, "SELECT * FROM audit_log WHERE %s ORDER BY id" % where, params)
    for r in out:
        r["diff"] = json.loads(r["diff"]) if r["diff"] else None
    return out


def wait_audit(ws, where="1", params=(), count=1, timeout=5.0):
    """Records of reads (denials, views in clear) are queued by the daemon
    and written every AUDIT_FLUSH_MS (100 ms): waits until at least count
    records match, and returns them all."""
    def ready():
        got = audit(ws, where, params)
        return got if len(got) >= count else None
    return bbtest.poll(ready, timeout=timeout, interval=0.02,
                       what="%d audit record(s) where %s %s" % (count, where, params))


_barriers = itertools.count(1)


def audit_barrier(ws, srv):
    """Waits until every record the daemon queued so far is written: queues
    one more (a denied request) and waits for it (the queue is written in
    order). For asserting that something left no record."""
    tok = getattr(ws, "_barrier_token", None)
    if not tok:
        tok = ws._barrier_token = ws.token("audit-barrier", "technician")
    rid = "barrier-%d" % next(_barriers)
    r = srv.get("/api/v1/audit", token=tok, headers={"X-Request-Id": rid})
    assert r.status == 403, r
    wait_audit(ws, "action = 'access.denied' AND request_id = ?", (rid,))


def audit_max_id(ws):
    return ws.sql("SELECT coalesce(max(id), 0) FROM audit_log")[0][0]


def drop_audit_triggers(ws):
    """What an attacker with write access to the database file does first."""
    ws.sql("DROP TRIGGER IF EXISTS audit_log_no_update")
    ws.sql("DROP TRIGGER IF EXISTS audit_log_no_delete")


def raw_files(ws):
    """Bytes of every file in var/ (database, WAL, shared memory, key file)."""
    out = {}
    for n in sorted(os.listdir(ws.var)):
        p = os.path.join(ws.var, n)
        if os.path.isfile(p):
            with open(p, "rb") as f:
                out[n] = f.read()
    return out


# ------------------------------------------------------------------- times

def db_time(dt):
    """A datetime (UTC) in the database's format: 2026-11-27T15:21:36.734Z"""
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (dt.microsecond // 1000)


def utc_now():
    return datetime.datetime.now(datetime.timezone.utc)


def db_time_ago(seconds):
    return db_time(utc_now() - datetime.timedelta(seconds=seconds))


def parse_db_time(s):
    return datetime.datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.timezone.utc)


# ------------------------------------------------------------- concurrency

def parallel(fn, args_list):
    """Runs fn(*args) for each args in its own thread; results in order
    (an exception is returned in place of its result)."""
    results = [None] * len(args_list)

    def run(i, args):
        try:
            results[i] = fn(*args)
        except BaseException as exc:  # noqa: BLE001 - returned to the caller
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i, a), daemon=True) for i, a in enumerate(args_list)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return results


# --------------------------------------------------------------------- TLS

def make_cert(folder):
    """A self-signed certificate for localhost and 127.0.0.1 (valid 1 day);
    returns (cert path, key path)."""
    cert = os.path.join(folder, "tls-cert.pem")
    key = os.path.join(folder, "tls-key.pem")
    cmd = ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost", "-days", "1",
           "-keyout", key, "-out", cert, "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"]
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=60)
    if p.returncode != 0:
        raise AssertionError("openssl failed: %s" % p.stderr)
    os.chmod(key, 0o600)
    return cert, key
