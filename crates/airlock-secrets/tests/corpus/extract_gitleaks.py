#!/usr/bin/env python3
"""Builds gitleaks-true-positives.jsonl and gitleaks-false-positives.jsonl from gitleaks'
rule definitions (cmd/generate/config/rules/*.go), whose functions list the samples each rule
must find (`tps`) and must not find (`fps`).

Usage: extract_gitleaks.py GITLEAKS_CHECKOUT COMMIT

The Go expressions that build the samples are evaluated here: string literals, `+`,
fmt.Sprintf, append, []string{...}, utils.GenerateSampleSecret(s), and secrets.NewSecret /
newPlausibleSecret, which draw a random string from a regex (a fixed seed keeps the output
stable). Samples built any other way (loops, helper functions) are skipped and counted.
Each sample's text is stored base64-encoded so that this repository does not itself hold
token-shaped literals that other scanners (and push protection) would flag.
"""
import base64, json, os, random, re, subprocess, sys
import re._parser as sre_parse
import re._constants as C

ROOT, COMMIT = sys.argv[1], sys.argv[2]
OUT = os.path.dirname(os.path.abspath(__file__))
rng = random.Random(20260101)

TOKEN = re.compile(r'''(?P<ws>\s+)|(?P<lc>//[^\n]*)|(?P<bc>/\*.*?\*/)|(?P<raw>`[^`]*`)|(?P<str>"(?:\\.|[^"\\])*")|(?P<rune>'(?:\\.|[^'\\])+')|(?P<id>[A-Za-z_][A-Za-z0-9_]*)|(?P<num>[0-9]+)|(?P<op>\.\.\.|:=|[-+*/%=(){}\[\],.:;<>!&|])''', re.S)

def tokens(src):
    out, pos = [], 0
    while pos < len(src):
        m = TOKEN.match(src, pos)
        if not m:
            raise SystemExit(f"cannot tokenize at {src[pos:pos+40]!r}")
        pos = m.end()
        k = m.lastgroup
        if k in ("ws", "lc", "bc"):
            continue
        v = m.group()
        if k == "raw":
            out.append(("s", v[1:-1]))
        elif k == "str":
            out.append(("s", json.loads(v.replace("\\'", "'").replace("\\x60", "`"))))
        else:
            out.append((k, v))
    return out

PRINTABLE = [chr(c) for c in range(33, 127)]
ALNUM = [c for c in PRINTABLE if c.isalnum()]

def gen(node_list):
    out = []
    for op, av in node_list:
        out.append(gen_one(op, av))
    return "".join(out)

def gen_one(op, av):
    if op == C.LITERAL:
        return chr(av)
    if op == C.NOT_LITERAL:
        return rng.choice([c for c in ALNUM if ord(c) != av])
    if op == C.ANY:
        return rng.choice(ALNUM)
    if op == C.IN:
        return rng.choice(class_chars(av))
    if op in (C.MAX_REPEAT, C.MIN_REPEAT, C.POSSESSIVE_REPEAT):
        lo, hi, sub = av
        if hi == C.MAXREPEAT:
            hi = lo + 8
        n = rng.randint(lo, hi)
        return "".join(gen(sub) for _ in range(n))
    if op == C.SUBPATTERN:
        return gen(av[-1])
    if op == C.BRANCH:
        return gen(rng.choice(av[1]))
    if op in (C.AT, C.ASSERT, C.ASSERT_NOT):
        return ""
    if op == C.CATEGORY:
        return rng.choice(category(av))
    raise ValueError(f"unsupported regex op {op}")

def category(c):
    if c == C.CATEGORY_DIGIT:
        return list("0123456789")
    if c == C.CATEGORY_WORD:
        return ALNUM + ["_"]
    if c == C.CATEGORY_SPACE:
        return [" "]
    raise ValueError(f"unsupported category {c}")

def class_chars(items):
    neg = False
    chars = []
    for op, av in items:
        if op == C.NEGATE:
            neg = True
        elif op == C.LITERAL:
            chars.append(chr(av))
        elif op == C.RANGE:
            chars.extend(chr(c) for c in range(av[0], av[1] + 1))
        elif op == C.CATEGORY:
            chars.extend(category(av))
    if neg:
        return [c for c in ALNUM if c not in chars]
    return chars

def new_secret(pattern):
    pattern = pattern.replace(r"\z", r"\Z")
    return gen(sre_parse.parse(pattern))

SAMPLES = None

def sample_templates():
    global SAMPLES
    if SAMPLES is None:
        src = git_show("cmd/generate/config/utils/generate.go")
        body = src[src.index("samples := map[string]string{"):src.index("replacer :=")]
        SAMPLES = []
        for line in body.splitlines():
            if line.strip().startswith("//"):
                continue
            toks = tokens(line)
            if len(toks) >= 3 and toks[0][0] == "s" and toks[1] == ("op", ":") and toks[2][0] == "s":
                SAMPLES.append(toks[2][1])
    return SAMPLES

def fill(t, ident, secret):
    return t.replace("{i}", ident).replace("{I}", ident.upper()).replace("{s}", secret)

UTIL_CLASSES = {
    "Numeric": "[0-9]{%s}", "Hex": "[a-f0-9]{%s}", "AlphaNumeric": "[a-z0-9]{%s}",
    "AlphaNumericExtendedShort": "[a-z0-9_-]{%s}", "AlphaNumericExtended": "[a-z0-9=_\\-]{%s}",
    "AlphaNumericExtendedLong": "[a-z0-9\\/=_\\+\\-]{%s}",
}

class Unsupported(Exception):
    pass

class Parser:
    def __init__(self, toks, env):
        self.t, self.i, self.env = toks, 0, env

    def peek(self, k=0):
        return self.t[self.i + k] if self.i + k < len(self.t) else ("eof", "")

    def take(self, v=None):
        tok = self.peek()
        if v is not None and tok[1] != v:
            raise Unsupported(f"expected {v} got {tok}")
        self.i += 1
        return tok

    def expr(self):
        v = self.primary()
        while self.peek() == ("op", "+"):
            self.take()
            w = self.primary()
            if not (isinstance(v, str) and isinstance(w, str)):
                raise Unsupported("+ on non-strings")
            v = v + w
        return v

    def args(self):
        self.take("(")
        out, spread = [], False
        while self.peek()[1] != ")":
            out.append(self.expr())
            if self.peek()[1] == "...":
                self.take()
                spread = True
            if self.peek()[1] == ",":
                self.take()
        self.take(")")
        return out, spread

    def primary(self):
        k, v = self.peek()
        if k == "s":
            self.take()
            return v
        if k == "num":
            self.take()
            return int(v)
        if v == "[":
            self.take("[")
            self.take("]")
            self.take("string")
            self.take("{")
            items = []
            while self.peek()[1] != "}":
                items.append(self.expr())
                if self.peek()[1] == ",":
                    self.take()
            self.take("}")
            return items
        if v == "map":
            # map[string]string{path: content}: the contents are the samples
            for expected in ("map", "[", "string", "]", "string", "{"):
                self.take(expected)
            items = []
            while self.peek()[1] != "}":
                self.expr()
                self.take(":")
                items.append(self.expr())
                if self.peek()[1] == ",":
                    self.take()
            self.take("}")
            return items
        if k == "id":
            name = self.take()[1]
            while self.peek()[1] == ".":
                self.take()
                name += "." + self.take()[1]
            if self.peek()[1] != "(":
                if name in self.env:
                    return self.env[name]
                raise Unsupported(f"unknown name {name}")
            args, _ = self.args()
            return self.call(name, args)
        raise Unsupported(f"unexpected {k} {v}")

    def call(self, name, a):
        short = name.split(".")[-1]
        if short in ("NewSecret", "newPlausibleSecret"):
            return new_secret(a[0])
        if short in UTIL_CLASSES:
            return UTIL_CLASSES[short] % a[0]
        if short == "Hex8_4_4_4_12":
            return "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
        if short == "GenerateSampleSecret":
            return f'{a[0]}_api_token = "{a[1]}"'
        if short == "GenerateSampleSecrets":
            return [fill(t, a[0], a[1]) for t in sample_templates()]
        if name == "fmt.Sprintf":
            fmtstr, rest = a[0], list(a[1:])
            return re.sub(r"%[sdv]", lambda m: str(rest.pop(0)), fmtstr)
        if name == "strings.Repeat":
            return a[0] * a[1]
        if name == "append":
            base = list(a[0])
            for x in a[1:]:
                base.extend(x if isinstance(x, list) else [x])
            return base
        raise Unsupported(f"call {name}")

def git_show(path):
    return subprocess.run(["git", "-C", ROOT, "show", f"{COMMIT}:{path}"], check=True,
                          capture_output=True, text=True).stdout

def functions(toks):
    i = 0
    while i < len(toks):
        if toks[i] == ("id", "func"):
            j = i
            while toks[j][1] != "{":
                j += 1
            depth, k = 0, j
            while True:
                if toks[k][1] == "{":
                    depth += 1
                elif toks[k][1] == "}":
                    depth -= 1
                    if depth == 0:
                        break
                k += 1
            yield toks[i + 1][1], toks[j + 1:k]
            i = k
        i += 1

def main():
    files = subprocess.run(["git", "-C", ROOT, "ls-tree", "--name-only", COMMIT,
                            "cmd/generate/config/rules/"], check=True, capture_output=True,
                           text=True).stdout.split()
    tp_out, fp_out, skipped = [], [], 0
    for path in sorted(f for f in files if f.endswith(".go")):
        toks = tokens(git_show(path))
        for fname, body in functions(toks):
            rule_ids = [body[n + 2][1] for n in range(len(body) - 2)
                        if body[n] == ("id", "RuleID") and body[n + 1] == ("op", ":") and body[n + 2][0] == "s"]
            if not rule_ids:
                continue
            env = {}
            for n in range(len(body) - 1):
                if body[n][0] == "id" and body[n + 1][1] in (":=", "=") and (n == 0 or body[n - 1][1] not in (".", ",")):
                    var = body[n][1]
                    p = Parser(body[n + 2:], env)
                    try:
                        env[var] = p.expr()
                    except (Unsupported, ValueError, IndexError, KeyError, TypeError) as e:
                        if var in ("tps", "fps"):
                            skipped += 1
                            print(f"skip {path} {fname} {var}: {e}", file=sys.stderr)
            for var, out in (("tps", tp_out), ("fps", fp_out)):
                for text in env.get(var) or []:
                    if isinstance(text, str) and text:
                        out.append({"rule": rule_ids[0], "source": f"gitleaks/gitleaks@{COMMIT[:12]}:{path}",
                                    "text_b64": base64.b64encode(text.encode()).decode()})
    for name, rows in (("gitleaks-true-positives.jsonl", tp_out), ("gitleaks-false-positives.jsonl", fp_out)):
        with open(os.path.join(OUT, name), "w") as f:
            for r in rows:
                f.write(json.dumps(r, sort_keys=True) + "\n")
    print(f"{len(tp_out)} true positives, {len(fp_out)} false positives, {skipped} assignments skipped", file=sys.stderr)

main()
