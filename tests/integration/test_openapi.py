"""docs/openapi.yaml against the route table: every route of core/routes.c is
documented with the same permission and nothing else is; the document's own
structure holds ($refs resolve, path parameters are declared, operations have
responses and unique operationIds, security follows the route's flags); and
the running binary serves exactly the table parsed here (methods per path,
the permission each route checks), so the parser cannot drift from the code.

The binary has no command that lists its routes, so the table is read from
core/routes.c with a small C tokenizer that refuses anything it does not
understand (a macro, an #if, a new column) instead of skipping it."""

import os
import re
import sys
import unittest

from bbtest import SOURCE_DIR, BBTestCase

ROUTES_C = os.path.join(SOURCE_DIR, "core", "routes.c")
ROUTER_H = os.path.join(SOURCE_DIR, "core", "router.h")
OPENAPI = os.path.join(SOURCE_DIR, "docs", "openapi.yaml")

HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


def _yaml():
    try:
        import yaml
    except ImportError:
        # Debian's python3-yaml (scripts/test.sh installs it) is outside the
        # path of an interpreter that is not Debian's own (pyenv, a venv)
        sys.path.append("/usr/lib/python3/dist-packages")
        import yaml
    return yaml


def load_document():
    with open(OPENAPI, encoding="utf-8") as f:
        return _yaml().safe_load(f)


# ------------------------------------------------------------ the route table

class ParseError(Exception):
    pass


_TOKEN = re.compile(r"""
      (?P<ws>\s+)
    | (?P<comment>/\*.*?\*/|//[^\n]*)
    | (?P<string>"(?:\\.|[^"\\\n])*")
    | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
    | (?P<number>[0-9][0-9A-Za-z_]*)
    | (?P<punct>[{}()\[\],;=|*/.+\-&<>!?:~%^])
    | (?P<hash>\#[^\n]*)
""", re.S | re.X)

_ESCAPES = {"n": "\n", "t": "\t", "\\": "\\", '"': '"', "'": "'", "0": "\0"}


def _unquote(lit, where):
    out, i, s = [], 0, lit[1:-1]
    while i < len(s):
        c = s[i]
        if c == "\\":
            if i + 1 >= len(s) or s[i + 1] not in _ESCAPES:
                raise ParseError("%s: an escape the parser does not know in %s" % (where, lit))
            out.append(_ESCAPES[s[i + 1]])
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


def c_tokens(text, name):
    """(kind, value, line) of C source, comments dropped, adjacent string
    literals joined. Preprocessor lines are kept as 'hash' tokens."""
    toks, pos, line = [], 0, 1
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m:
            raise ParseError("%s:%d: unexpected %r" % (name, line, text[pos:pos + 20]))
        kind, value = m.lastgroup, m.group()
        if kind == "string":
            value = _unquote(value, "%s:%d" % (name, line))
            if toks and toks[-1][0] == "string":
                toks[-1] = ("string", toks[-1][1] + value, toks[-1][2])
            else:
                toks.append(("string", value, line))
        elif kind not in ("ws", "comment"):
            toks.append((kind, value, line))
        line += m.group().count("\n")
        pos = m.end()
    return toks


def string_macros():
    """#define NAME "text" of router.h (PERM_PUBLIC) and its route flags."""
    with open(ROUTER_H, encoding="utf-8") as f:
        text = f.read()
    macros = {m.group(1): m.group(2) for m in re.finditer(r'^#define\s+([A-Z_]+)\s+"([^"\\]*)"', text, re.M)}
    flags = {m.group(1): int(m.group(2), 0) for m in re.finditer(r"\b(ROUTE_[A-Z_]+)\s*=\s*(0x[0-9a-fA-F]+|[0-9]+)", text)}
    if "PERM_PUBLIC" not in macros or not flags:
        raise ParseError("router.h: PERM_PUBLIC or the ROUTE_* flags are not where the parser looks")
    return macros, flags


def route_table():
    """The rows of `routes[]` in core/routes.c as dicts: method, pattern,
    handler, perm, summary, flags (a set of flag names)."""
    with open(ROUTES_C, encoding="utf-8") as f:
        toks = c_tokens(f.read(), "routes.c")
    macros, flag_values = string_macros()
    head = [("ident", "const"), ("ident", "route"), ("ident", "routes"), ("punct", "["), ("punct", "]"),
            ("punct", "="), ("punct", "{")]
    start = None
    for i in range(len(toks) - len(head) + 1):
        if [(k, v) for k, v, _ in toks[i:i + len(head)]] == head:
            start = i + len(head)
            break
    if start is None:
        raise ParseError("routes.c: no `const route routes[] = {`")
    pos = start

    def take(kind=None, value=None, what="token"):
        nonlocal pos
        if pos >= len(toks):
            raise ParseError("routes.c: the table ends early, expected %s" % what)
        k, v, ln = toks[pos]
        if (kind and k != kind) or (value is not None and v != value):
            raise ParseError("routes.c:%d: expected %s, found %r — the route table has a shape this test does not "
                             "read; update tests/integration/test_openapi.py" % (ln, what, v))
        pos += 1
        return v, ln

    rows = []
    while True:
        k, v, ln = toks[pos]
        if (k, v) == ("punct", "}"):
            pos += 1
            take("punct", ";", "';' after the table")
            break
        take("punct", "{", "'{' opening a route")
        method, ln = take("string", what="the method (a string literal)")
        take("punct", ",", "','")
        pattern, _ = take("string", what="the pattern (a string literal)")
        take("punct", ",", "','")
        handler, _ = take("ident", what="the handler")
        take("punct", ",", "','")
        k, v, _ = toks[pos]
        if k == "string":
            perm, _ = take("string")
        elif k == "ident" and v in macros:
            perm = macros[take("ident")[0]]
        else:
            raise ParseError("routes.c:%d: the permission is %r, neither a string nor a known macro" % (ln, v))
        take("punct", ",", "','")
        summary, _ = take("string", what="the summary (a string literal)")
        take("punct", ",", "','")
        flags = set()
        while True:
            k, v, fl = toks[pos]
            if (k, v) == ("punct", "}"):
                break
            if k == "ident" and v in flag_values:
                flags.add(v)
            elif k == "number" and v == "0" or (k, v) == ("punct", "|") or (k, v) in (("punct", "("), ("punct", ")")):
                pass
            else:
                raise ParseError("routes.c:%d: flags expression with %r" % (fl, v))
            pos += 1
        take("punct", "}", "'}' closing a route")
        if toks[pos][:2] == ("punct", ","):
            pos += 1
        rows.append({"method": method, "pattern": pattern, "handler": handler, "perm": perm, "summary": summary,
                     "flags": flags, "line": ln})
    return rows


def normalised(pattern):
    return re.sub(r"\{[^}/]*\}", "{}", pattern)


def param_names(pattern):
    return re.findall(r"\{([^}/]*)\}", pattern)


def segments_match(pattern, path):
    """router.c's matching: segment by segment, {name} takes one non-empty segment."""
    ps, qs = pattern.split("/"), path.split("/")
    if len(ps) != len(qs):
        return False
    for p, q in zip(ps, qs):
        if len(p) >= 2 and p[0] == "{" and p[-1] == "}":
            if not q:
                return False
        elif p != q:
            return False
    return True


# --------------------------------------------------------------- the document

def operations(doc):
    """(path, METHOD, operation, path item) of every documented operation."""
    for path, item in (doc.get("paths") or {}).items():
        for m in HTTP_METHODS:
            if m in item:
                yield path, m.upper(), item[m], item


def resolve(doc, ref):
    if not ref.startswith("#/"):
        raise KeyError("%s is not a reference inside the document" % ref)
    node = doc
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            raise KeyError(ref)
    return node


def deref(doc, node):
    seen = 0
    while isinstance(node, dict) and "$ref" in node:
        node = resolve(doc, node["$ref"])
        seen += 1
        if seen > 20:
            raise KeyError("a $ref loop")
    return node


class RouteTableParser(unittest.TestCase):
    """The parser itself: it reads the real table and refuses what it does
    not understand (so a new shape of row fails loudly, never silently)."""

    def test_reads_the_real_table(self):
        rows = route_table()
        self.assertGreaterEqual(len(rows), 60)
        health = [(r["method"], r["perm"], r["handler"]) for r in rows if r["pattern"] == "/healthz"]
        self.assertEqual(health, [("GET", "public", "api_healthz")])
        login = [r for r in rows if r["pattern"] == "/api/v1/auth/login"]
        self.assertEqual(len(login), 1)
        self.assertEqual(login[0]["flags"], {"ROUTE_NO_CSRF"})
        for r in rows:
            self.assertIn(r["method"], ("GET", "POST", "PUT", "PATCH", "DELETE"), r)
            self.assertTrue(r["pattern"].startswith("/"), r)
            self.assertRegex(r["perm"], r"^(public|[a-z_]+\.[a-z_]+)$", r)

    def test_refuses_what_it_does_not_understand(self):
        with self.assertRaises(ParseError):
            c_tokens('{"GET", "/x", fn, "a.b", "s", 0} @', "t.c")
        with self.assertRaises(ParseError):
            _unquote(r'"\q"', "t.c")
        self.assertEqual(c_tokens('"a" /* x */ "b" // y\n', "t.c"), [("string", "ab", 1)])


class OpenAPIDocument(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.doc = load_document()
        cls.routes = route_table()

    def test_every_route_is_documented_with_its_permission(self):
        documented = {}
        for path, method, op, _ in operations(self.doc):
            documented[(method, normalised(path))] = (path, op)
        problems = []
        for r in self.routes:
            key = (r["method"], normalised(r["pattern"]))
            if key not in documented:
                problems.append("routes.c:%d %s %s (%s) is not in docs/openapi.yaml"
                                % (r["line"], r["method"], r["pattern"], r["perm"]))
                continue
            path, op = documented[key]
            if op.get("x-permission") != r["perm"]:
                problems.append("%s %s: x-permission is %r, the route table says %r"
                                % (r["method"], path, op.get("x-permission"), r["perm"]))
            if ("`%s`" % r["perm"]) not in (op.get("description") or ""):
                problems.append("%s %s: the description does not name the permission `%s`" % (r["method"], path, r["perm"]))
        self.assertEqual(problems, [], "\n".join(problems))

    def test_every_documented_operation_is_a_route(self):
        table = {(r["method"], normalised(r["pattern"])): r for r in self.routes}
        problems = []
        for path, method, _, _ in operations(self.doc):
            r = table.get((method, normalised(path)))
            if r is None:
                problems.append("%s %s is documented but is no route of core/routes.c" % (method, path))
            elif param_names(path) != param_names(r["pattern"]):
                problems.append("%s %s: path parameters %s, the route table names them %s"
                                % (method, path, param_names(path), param_names(r["pattern"])))
        self.assertEqual(problems, [], "\n".join(problems))

    def test_routes_are_unique(self):
        keys = [(r["method"], normalised(r["pattern"])) for r in self.routes]
        self.assertEqual(len(keys), len(set(keys)), "a method and path twice in routes.c")

    def test_security_follows_the_route(self):
        """public: no credentials; GET and ROUTE_READS: token or cookie;
        every other route: token, or cookie with the CSRF header."""
        table = {(r["method"], normalised(r["pattern"])): r for r in self.routes}
        default = self.doc.get("security")
        problems = []
        for path, method, op, _ in operations(self.doc):
            r = table.get((method, normalised(path)))
            if r is None:
                continue
            sec = op.get("security", default)
            reqs = [frozenset(s) for s in (sec or [])]
            if r["perm"] == "public":
                want = []
            elif method == "GET" or "ROUTE_READS" in r["flags"]:
                want = [frozenset({"bearerAuth"}), frozenset({"sessionCookie"})]
            else:
                want = [frozenset({"bearerAuth"}), frozenset({"sessionCookie", "csrfToken"})]
            if sorted(map(sorted, reqs)) != sorted(map(sorted, want)):
                problems.append("%s %s: security %s, expected %s"
                                % (method, path, [sorted(x) for x in reqs], [sorted(x) for x in want]))
            if r["perm"] != "public":
                for code in ("401", "403"):
                    if code not in op.get("responses", {}):
                        problems.append("%s %s: no %s response" % (method, path, code))
        self.assertEqual(problems, [], "\n".join(problems))

    def test_structure(self):
        doc = self.doc
        self.assertRegex(str(doc.get("openapi")), r"^3\.(0|1)\.\d+$")
        for k in ("info", "paths", "components"):
            self.assertIn(k, doc)
        problems = []

        # every $ref resolves (inside the document)
        def walk(node, where):
            if isinstance(node, dict):
                ref = node.get("$ref")
                if isinstance(ref, str):
                    try:
                        resolve(doc, ref)
                    except KeyError:
                        problems.append("%s: $ref %s does not resolve" % (where, ref))
                for k, v in node.items():
                    walk(v, "%s/%s" % (where, k))
            elif isinstance(node, list):
                for i, v in enumerate(node):
                    walk(v, "%s/%d" % (where, i))
        walk(doc, "#")

        schemes = set((doc["components"].get("securitySchemes") or {}).keys())
        tags = {t["name"] for t in doc.get("tags", [])}
        op_ids = {}
        for path, method, op, item in operations(doc):
            where = "%s %s" % (method, path)
            # path parameters: each {name} declared once, in: path, required; none extra
            declared = {}
            for source in (item.get("parameters") or [], op.get("parameters") or []):
                for p in source:
                    try:
                        p = deref(doc, p)
                    except KeyError:
                        continue  # reported by the $ref walk
                    if p.get("in") == "path":
                        declared[p.get("name")] = p
            names = param_names(path)
            if len(names) != len(set(names)):
                problems.append("%s: a path parameter named twice" % where)
            for n in names:
                if n not in declared:
                    problems.append("%s: path parameter {%s} is not declared" % (where, n))
                elif declared[n].get("required") is not True:
                    problems.append("%s: path parameter {%s} is not required: true" % (where, n))
            for n in declared:
                if n not in names:
                    problems.append("%s: declares path parameter %r that the path does not have" % (where, n))
            seen = set()
            for p in op.get("parameters") or []:
                try:
                    p = deref(doc, p)
                except KeyError:
                    continue
                key = (p.get("name"), p.get("in"))
                if key in seen:
                    problems.append("%s: parameter %s declared twice" % (where, key))
                seen.add(key)
            # operationId: present and unique
            oid = op.get("operationId")
            if not oid:
                problems.append("%s: no operationId" % where)
            elif oid in op_ids:
                problems.append("%s: operationId %s is also %s's" % (where, oid, op_ids[oid]))
            else:
                op_ids[oid] = where
            # responses: some, a success among them, errors with the error body
            responses = op.get("responses") or {}
            if not responses:
                problems.append("%s: no responses" % where)
            if not any(str(c).startswith("2") for c in responses):
                problems.append("%s: no 2xx response" % where)
            for code, resp in responses.items():
                if not re.match(r"^([1-5][0-9][0-9]|[1-5]XX|default)$", str(code)):
                    problems.append("%s: response code %r" % (where, code))
                try:
                    resp = deref(doc, resp)
                except KeyError:
                    continue
                if not resp.get("description"):
                    problems.append("%s %s: no description" % (where, code))
                # a payment channel's notification is answered in the channel's own terms
                if str(code).startswith("4") and not op.get("x-channel-reply"):
                    schema = ((resp.get("content") or {}).get("application/json") or {}).get("schema") or {}
                    if schema.get("$ref") != "#/components/schemas/ErrorBody":
                        problems.append("%s %s: an error response without the error body" % (where, code))
            for t in op.get("tags") or []:
                if t not in tags:
                    problems.append("%s: tag %r is not declared" % (where, t))
            if not op.get("tags"):
                problems.append("%s: no tag" % where)
            for req in op.get("security", doc.get("security")) or []:
                for s in req:
                    if s not in schemes:
                        problems.append("%s: security scheme %r is not declared" % (where, s))
        error = deref(doc, {"$ref": "#/components/schemas/ErrorBody"})
        inner = error["properties"]["error"]
        self.assertEqual(sorted(inner["required"]), ["code", "field", "message"])
        self.assertEqual(problems, [], "\n".join(problems))

    def test_validator(self):
        try:
            from openapi_spec_validator import validate
        except ImportError:
            self.skipTest("openapi-spec-validator is not installed (not packaged in Debian)")
        problem = None
        try:
            validate(self.doc)
        except Exception as exc:  # noqa: BLE001 - its errors repr the whole document
            problem = "%s: %s" % (type(exc).__name__, str(exc)[:600])
        self.assertIsNone(problem, "openapi-spec-validator refuses the document")


class BinaryServesTheTable(BBTestCase):
    """The running daemon against the parsed table: OPTIONS on each path
    lists exactly the table's methods (405 with Allow), and each route
    refuses a role without permissions naming exactly the table's
    permission (public routes let anyone through)."""

    FILL = "zq9openapi"

    def test_methods_and_permissions(self):
        rows = route_table()
        admin = self.ws.token("it-admin", "admin")
        srv = self.ws.serve()
        r = srv.post("/api/v1/roles", {"name": "probe-none", "permissions": []}, token=admin)
        self.assertEqual(r.status, 201, r.body)
        probe = self.ws.token("it-probe", "probe-none")

        def concrete(pattern):
            return re.sub(r"\{[^}/]*\}", self.FILL, pattern)

        problems = []
        for path in sorted({concrete(r["pattern"]) for r in rows}):
            want = set(r["method"] for r in rows if segments_match(r["pattern"], path))
            resp = srv.request("OPTIONS", path, token=admin)
            allow = {m.strip() for m in (resp.headers.get("Allow") or "").split(",") if m.strip()}
            if resp.status != 405 or allow != want:
                problems.append("OPTIONS %s: %s Allow %s, the table has %s" % (path, resp.status, sorted(allow), sorted(want)))
        for r in rows:
            path = concrete(r["pattern"])
            # the router takes the first row that matches
            first = next(x for x in rows if x["method"] == r["method"] and segments_match(x["pattern"], path))
            if r["perm"] == "public":
                resp = srv.request(r["method"], path)
                # a public route may answer 404 about its own path parameter
                # (a payment channel that is not configured), never as a
                # route the binary does not have
                params = re.findall(r"\{([^}/]*)\}", r["pattern"])
                own_404 = (resp.status == 404 and isinstance(resp.body, dict)
                           and resp.body.get("error", {}).get("field") in params)
                if resp.status in (401, 403, 404, 405) and not own_404:
                    problems.append("%s %s is public in the table, the binary answers %s" % (r["method"], path, resp.status))
                continue
            resp = srv.request(r["method"], path, token=probe)
            msg = resp.body.get("error", {}).get("message", "") if isinstance(resp.body, dict) else ""
            if resp.status != 403 or not msg.endswith("does not have permission %s" % first["perm"]):
                problems.append("%s %s: %s %r, expected 403 naming %s" % (r["method"], path, resp.status, msg, first["perm"]))
        self.assertEqual(problems, [], "\n".join(problems))


if __name__ == "__main__":
    unittest.main()
