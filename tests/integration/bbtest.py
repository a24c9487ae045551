"""bbtest - helpers for the bandbill integration tests.

The tests drive the real binary: CLI commands as subprocesses and the daemon
(`bandbill serve`) as a child process whose JSON log lines on stderr are read
by a background thread.

Environment (never BANDBILL_*: the binary refuses unknown BANDBILL_* names):
  BB_BIN         path of the bandbill binary (default ../../build/bandbill)
  BB_SOURCE_DIR  the repository root (default ../..), for the starter rules
"""

import atexit
import collections
import http.client
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import tempfile
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.path.abspath(os.environ.get("BB_SOURCE_DIR") or os.path.join(HERE, "..", ".."))
BIN = os.path.abspath(os.environ.get("BB_BIN") or os.path.join(HERE, "..", "..", "build", "bandbill"))
STARTER_RULES = os.path.join(SOURCE_DIR, "rules")

READY_TIMEOUT = 10.0
CLI_TIMEOUT = 60.0

# Every daemon started by a test, so that nothing outlives the test run even
# when a test dies in an unexpected way.
_LIVE = set()
_LIVE_LOCK = threading.Lock()


def _kill_leftovers():
    with _LIVE_LOCK:
        procs = list(_LIVE)
    for p in procs:
        if p.poll() is None:
            p.kill()
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                pass


atexit.register(_kill_leftovers)


def clean_env(extra=None):
    """The current environment without any BANDBILL_* variable, plus extra."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BANDBILL_")}
    if extra:
        env.update(extra)
    return env


def write(path, text, mode=None):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    if mode is not None:
        os.chmod(path, mode)


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def is_hex64(s):
    return isinstance(s, str) and len(s) == 64 and all(c in "0123456789abcdef" for c in s)


def poll(fn, timeout=5.0, interval=0.05, what="condition"):
    """Calls fn until it returns something truthy; returns that value or
    raises AssertionError after timeout seconds."""
    deadline = time.monotonic() + timeout
    last_exc = None
    while True:
        try:
            v = fn()
            if v:
                return v
        except Exception as exc:  # noqa: BLE001 - reported below
            last_exc = exc
        if time.monotonic() >= deadline:
            raise AssertionError("timed out after %.1fs waiting for %s%s" % (
                timeout, what, " (last error: %r)" % (last_exc,) if last_exc else ""))
        time.sleep(interval)


# ---------------------------------------------------------------- CLI runs

class Result(collections.namedtuple("Result", "rc out err")):
    """The outcome of one CLI run: exit code, stdout, stderr (text)."""

    @property
    def err_lines(self):
        return [l for l in self.err.splitlines() if l.strip()]

    def json(self):
        return json.loads(self.out)

    def __str__(self):
        return "exit %s\n--- stdout ---\n%s\n--- stderr ---\n%s" % (self.rc, self.out, self.err)


def run(args, cwd=None, env=None, input=None, timeout=CLI_TIMEOUT):
    """Runs `bandbill ARGS...`; env is added to a BANDBILL_*-free environment."""
    cmd = [BIN] + [str(a) for a in args]
    p = subprocess.Popen(cmd, cwd=cwd, env=clean_env(env), stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = p.communicate(input, timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
        raise AssertionError("bandbill %s did not finish within %ss\nstdout: %s\nstderr: %s" % (
            " ".join(cmd[1:]), timeout, out, err))
    return Result(p.returncode, out, err)


# -------------------------------------------------------------------- HTTP

Resp = collections.namedtuple("Resp", "status headers body")
Resp.__doc__ = "status (int), headers (http.client.HTTPMessage), body (parsed JSON, or text)"


def http_request(port, method, path, body=None, headers=None, token=None, raw=None,
                 content_type="application/json", host="127.0.0.1", timeout=30):
    """One request on a fresh connection. body is encoded as JSON; raw (bytes
    or str) is sent as is. Returns Resp(status, headers, JSON or text)."""
    h = dict(headers or {})
    data = None
    if body is not None:
        data = json.dumps(body).encode()
    elif raw is not None:
        data = raw.encode() if isinstance(raw, str) else raw
    if data is not None and content_type and "Content-Type" not in h:
        h["Content-Type"] = content_type
    if token:
        h["Authorization"] = "Bearer " + token
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request(method, path, body=data, headers=h)
        r = conn.getresponse()
        payload = r.read()
        ctype = r.getheader("Content-Type", "")
        text = payload.decode("utf-8", "replace")
        if ctype.startswith("application/json"):
            try:
                parsed = json.loads(text)
            except ValueError:
                raise AssertionError("%s %s: Content-Type says JSON, body is not: %r" % (method, path, text))
        else:
            parsed = text
        return Resp(r.status, r.headers, parsed)
    finally:
        conn.close()


# ------------------------------------------------------------------ daemon

class Server:
    """A running `bandbill serve`. Its stderr is parsed line by line (JSON)
    in a background thread; `lines` holds the parsed records."""

    def __init__(self, ws, extra_args=(), env=None, rules=None, db=None):
        self.ws = ws
        self.db = db or ws.db
        self.rules = rules or ws.rules
        self.args = ["serve", "--listen", "127.0.0.1:0", "--db", self.db, "--rules", self.rules] + [str(a) for a in extra_args]
        self.lines = []      # parsed JSON log records
        self.raw = []        # every stderr line, as text
        self.out = []
        self.cond = threading.Condition()
        self.port = None
        self.returncode = None
        self.proc = subprocess.Popen([BIN] + self.args, cwd=ws.dir, env=clean_env(env), stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        with _LIVE_LOCK:
            _LIVE.add(self.proc)
        self._t_err = threading.Thread(target=self._read_err, daemon=True)
        self._t_out = threading.Thread(target=self._read_out, daemon=True)
        self._t_err.start()
        self._t_out.start()

    # -- readers
    def _read_err(self):
        for raw in iter(self.proc.stderr.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip("\n")
            rec = None
            if line.startswith("{"):
                try:
                    rec = json.loads(line)
                except ValueError:
                    rec = None
            with self.cond:
                self.raw.append(line)
                if isinstance(rec, dict):
                    self.lines.append(rec)
                self.cond.notify_all()
        with self.cond:
            self.cond.notify_all()

    def _read_out(self):
        for raw in iter(self.proc.stdout.readline, b""):
            with self.cond:
                self.out.append(raw.decode("utf-8", "replace"))

    @property
    def stderr_text(self):
        with self.cond:
            return "\n".join(self.raw)

    def events(self, name=None):
        with self.cond:
            return [l for l in self.lines if name is None or l.get("event") == name]

    def wait_for(self, pred, timeout=5.0, what="log line", start=0):
        """Waits for a parsed log record (index >= start) matching pred."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for rec in self.lines[start:]:
                    if pred(rec):
                        return rec
                left = deadline - time.monotonic()
                if left <= 0 or (self.proc.poll() is not None and not self._t_err.is_alive()):
                    raise AssertionError("no %s within %.1fs; daemon stderr:\n%s" % (what, timeout, "\n".join(self.raw)))
                self.cond.wait(min(left, 0.1))

    def wait_event(self, event, timeout=5.0, start=0, **fields):
        return self.wait_for(lambda r: r.get("event") == event and all(r.get(k) == v for k, v in fields.items()),
                             timeout, "%s event %r" % (event, fields), start)

    def mark(self):
        """The index of the next log record, for wait_for(start=...)."""
        with self.cond:
            return len(self.lines)

    def wait_ready(self, timeout=READY_TIMEOUT):
        rec = self.wait_event("ready", timeout)
        host, _, port = rec["listen"].rpartition(":")
        assert host == "127.0.0.1", rec
        self.port = int(port)
        self.ready = rec
        return self

    # -- requests
    def request(self, method, path, **kw):
        assert self.port, "the daemon is not ready"
        return http_request(self.port, method, path, **kw)

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.request("POST", path, body=body, **kw)

    def healthz(self):
        r = self.get("/healthz")
        assert r.status == 200, r
        return r.body

    def rules_version(self):
        return self.healthz()["rules_version"]

    def call(self, token, function, input=None):
        body = {"function": function}
        if input is not None:
            body["input"] = input
        return self.post("/api/v1/rules/call", body, token=token)

    # -- lifecycle
    def send(self, sig):
        self.proc.send_signal(sig)

    def wait_exit(self, timeout=5.0):
        try:
            self.returncode = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError("the daemon did not exit within %.1fs; stderr:\n%s" % (timeout, self.stderr_text))
        self._t_err.join(2)
        self._t_out.join(2)
        with _LIVE_LOCK:
            _LIVE.discard(self.proc)
        return self.returncode

    def stop(self, sig=signal.SIGTERM, expect=0, timeout=5.0):
        """Signals the daemon, waits for it and asserts its exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            rc = self.wait_exit(timeout)
        finally:
            self.kill()
        if expect is not None and rc != expect:
            raise AssertionError("the daemon exited %s, expected %s; stderr:\n%s" % (rc, expect, self.stderr_text))
        return rc

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                pass
        for f in (self.proc.stdout, self.proc.stderr):
            try:
                f.close()
            except Exception:  # noqa: BLE001
                pass
        with _LIVE_LOCK:
            _LIVE.discard(self.proc)


# --------------------------------------------------------------- workspace

class Workspace:
    """A temporary folder with var/ and a copy of a rules folder; CLI runs
    use it as their working directory, so the defaults (./var/bandbill.db,
    ./rules) point inside it."""

    def __init__(self, rules_src=STARTER_RULES, rules_files=None):
        self.dir = tempfile.mkdtemp(prefix="bbit-")
        self.var = os.path.join(self.dir, "var")
        os.mkdir(self.var, 0o700)
        self.rules = os.path.join(self.dir, "rules")
        self.db = os.path.join(self.var, "bandbill.db")
        self.socket = os.path.join(self.var, "bandbill.sock")
        if rules_files is not None:
            self.make_rules("rules", rules_files)
        else:
            shutil.copytree(rules_src, self.rules)
        self.servers = []

    def path(self, *parts):
        return os.path.join(self.dir, *parts)

    def make_rules(self, name, files):
        """Creates folder `name` in the workspace holding {relative path: text}."""
        d = self.path(name)
        os.makedirs(d, exist_ok=True)
        for rel, text in files.items():
            write(os.path.join(d, rel), text)
        return d

    def copy_rules(self, name, src=None):
        d = self.path(name)
        shutil.copytree(src or self.rules, d)
        return d

    def run(self, *args, env=None, input=None, timeout=CLI_TIMEOUT):
        return run(args, cwd=self.dir, env=env, input=input, timeout=timeout)

    def ok(self, *args, **kw):
        """run() that must exit 0."""
        r = self.run(*args, **kw)
        if r.rc != 0:
            raise AssertionError("bandbill %s failed:\n%s" % (" ".join(map(str, args)), r))
        return r

    def init(self):
        return self.ok("init", "--db", self.db)

    def token(self, name="it-admin", role="admin"):
        r = self.ok("token", "create", "--name", name, "--role", role, "--db", self.db)
        tok = r.out.strip()
        assert tok and "\n" not in tok, r
        return tok

    def serve(self, *extra_args, env=None, rules=None, db=None, wait=True):
        s = Server(self, extra_args, env=env, rules=rules, db=db)
        self.servers.append(s)
        if wait:
            try:
                s.wait_ready()
            except BaseException:
                s.kill()
                raise
        return s

    def sql(self, query, params=(), db=None):
        """Runs one statement on the database with the sqlite3 module."""
        con = sqlite3.connect(db or self.db, timeout=10)
        try:
            cur = con.execute(query, params)
            rows = cur.fetchall()
            con.commit()
            return rows
        finally:
            con.close()

    def close(self):
        for s in self.servers:
            s.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


class BBTestCase(unittest.TestCase):
    """Gives each test a fresh workspace (self.ws) that is cleaned up, with
    every daemon it started, whatever the outcome."""

    rules_files = None      # {path: text} to use instead of the starter rules
    init_db = True

    @classmethod
    def setUpClass(cls):
        if not os.access(BIN, os.X_OK):
            raise unittest.SkipTest("no bandbill binary at %s (set BB_BIN)" % BIN)

    def setUp(self):
        self.ws = Workspace(rules_files=self.rules_files)
        self.addCleanup(self.ws.close)
        if self.init_db:
            self.ws.init()

    def assertOneErrorLine(self, r, *needles, rc=1):
        """Exit code rc and exactly one line on stderr, starting 'bandbill:'
        and containing every needle."""
        self.assertEqual(r.rc, rc, str(r))
        self.assertEqual(len(r.err.splitlines()), 1, "expected exactly one stderr line:\n%s" % (r,))
        self.assertTrue(r.err.startswith("bandbill:"), str(r))
        for n in needles:
            self.assertIn(n, r.err, str(r))

    def assertError(self, resp, status, code=None):
        """An error reply: status, JSON body {"error":{"code","message","field"}}."""
        self.assertEqual(resp.status, status, resp.body)
        self.assertTrue(resp.headers.get("Content-Type", "").startswith("application/json"), resp.headers)
        self.assertIsInstance(resp.body, dict, resp.body)
        err = resp.body.get("error")
        self.assertIsInstance(err, dict, resp.body)
        for k in ("code", "message", "field"):
            self.assertIn(k, err, resp.body)
            self.assertIsInstance(err[k], str, resp.body)
        self.assertTrue(err["message"], resp.body)
        if code is not None:
            self.assertEqual(err["code"], code, resp.body)
        return err


def line_of(text, needle):
    """1-based number of the first line of text containing needle."""
    for i, l in enumerate(text.splitlines(), 1):
        if needle in l:
            return i
    raise AssertionError("%r not found" % needle)
