#!/usr/bin/env python3
"""Builds published-formats.jsonl: credentials in formats their issuers publish, filled with
random characters, in the syntaxes they are committed in; and near misses that are not
credentials. Written from the formats (sources in each row), not from any scanner's rules.
A fixed seed keeps the output stable; texts are stored base64-encoded (see README.md)."""
import base64, json, os, random, string, urllib.parse

rng = random.Random(20261207)
A = string.ascii_letters + string.digits
B64 = A + "+/"
URL = A + "-_"
HEX = "0123456789abcdef"

def r(chars, n):
    return "".join(rng.choice(chars) for _ in range(n))

rows = []
def add(kind, source, text, positive=True):
    rows.append({"rule": kind, "source": source, "positive": positive,
                 "text_b64": base64.b64encode(text.encode()).decode()})

def assignments(name, secret):
    """The syntaxes a value is assigned in (the issue's list)."""
    up = name.upper()
    camel = name.split("_")[0] + "".join(w.title() for w in name.split("_")[1:])
    return [
        f'{up}="{secret}"',
        f"{up}={secret}",
        f'{camel} = "{secret}"',
        f"define('{up}', '{secret}');",
        f'os.environ.setdefault("{up}", "{secret}")',
        f'var {camel} string = "{secret}"',
        f'{up} ?= "{secret}"',
        f'${camel} .= "{secret}";',
        f'{up} ::= "{secret}"',
        f'{{"env": "{up}={secret}\\nDEBUG=1"}}',
        f'val {camel}: String = "{secret}"',
        f'  "{camel}" => "{secret}",',
        f"<{camel}>{secret}</{camel}>",
    ]

S = {
    "hf": "https://huggingface.co/docs/hub/security-tokens (hf_ + 34 characters)",
    "whsec": "https://docs.stripe.com/webhooks#verify-events (whsec_ signing secrets)",
    "gocspx": "https://developers.google.com/identity/protocols/oauth2 (GOCSPX- client secrets)",
    "discord": "https://discord.com/developers/docs/resources/webhook (webhook id and token in the URL)",
    "sas": "https://learn.microsoft.com/azure/storage/common/storage-sas-overview (sv, sig parameters)",
    "url": "RFC 3986 section 3.2.1 (userinfo: user:password@host)",
    "slack": "https://api.slack.com/authentication/token-types (xoxe., xapp- tokens)",
    "stripe": "https://docs.stripe.com/keys (sk_live_, rk_live_, sk_test_, pk_ keys)",
    "putty": "https://the.earth.li/~sgtatham/putty/0.78/htmldoc/AppendixC.html (PPK format)",
    "sb": "https://learn.microsoft.com/azure/service-bus-messaging/service-bus-sas (SharedAccessKey=)",
    "age": "https://age-encryption.org/v1 (AGE-SECRET-KEY-1 + Bech32, upper case)",
}

for _ in range(3):
    for t in assignments("hf_token", "hf_" + r(A, 34)):
        add("huggingface", S["hf"], t)
    for t in assignments("webhook_secret", "whsec_" + r(B64, 32)):
        add("whsec", S["whsec"], t)
    for t in assignments("google_client_secret", "GOCSPX-" + r(URL, 28)):
        add("gocspx", S["gocspx"], t)
    add("discord-webhook", S["discord"],
        f"DISCORD_WEBHOOK=https://discord.com/api/webhooks/{r(string.digits, 19)}/{r(URL, 68)}")
    add("discord-webhook", S["discord"],
        f'hook = "https://discordapp.com/api/webhooks/{r(string.digits, 18)}/{r(URL, 68)}"')
    sig = urllib.parse.quote(base64.b64encode(bytes(rng.getrandbits(8) for _ in range(32))).decode(), safe="")
    add("azure-sas", S["sas"],
        f"https://acct{r(string.digits, 4)}.blob.core.windows.net/c/f.txt?sv=2022-11-02&ss=bfqt&srt=sco&sp=rwdlacupiytfx&se=2030-01-01T00:00:00Z&st=2024-01-01T00:00:00Z&spr=https&sig={sig}")
    add("azure-sas", S["sas"],
        f'"SasToken": "sv=2021-06-08&ss=b&srt=o&sp=r&se=2031-01-01T00:00:00Z&sig={sig}"')
    add("azure-service-bus", S["sb"],
        f"Endpoint=sb://ns{r(string.digits, 3)}.servicebus.windows.net/;SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey={base64.b64encode(bytes(rng.getrandbits(8) for _ in range(32))).decode()}")
    pw = r(A + "!#%", 18)
    for scheme, host in [("postgres", "db.internal:5432/app"), ("postgresql", "10.0.0.5/app"),
                         ("mysql", "mysql.prod:3306/shop"), ("mongodb+srv", "cluster0.abcd.mongodb.net/db"),
                         ("amqp", "rabbit:5672/"), ("redis", "cache:6379/0"), ("https", "git.corp.internal/repo.git")]:
        add("url-credentials", S["url"], f'DATABASE_URL="{scheme}://svc_{r(string.ascii_lowercase, 5)}:{pw}@{host}"')
    add("url-credentials", S["url"], f"curl -u deploy:{pw} https://artifacts.internal/upload")
    add("slack", S["slack"], f'SLACK_CONFIG_TOKEN="xoxe.xoxp-1-{r(A, 160)}"')
    add("slack", S["slack"], f"app_token: xapp-1-A{r(string.ascii_uppercase + string.digits, 10)}-{r(string.digits, 13)}-{r(HEX, 64)}")
    add("slack", S["slack"], f"bot = 'xoxb-{r(string.digits, 12)}-{r(string.digits, 13)}-{r(A, 24)}'")
    add("stripe-live", S["stripe"], f"STRIPE_SECRET_KEY=sk_live_{r(A, 99)}")
    add("stripe-live", S["stripe"], f"Stripe.api_key = 'rk_live_{r(A, 24)}'")
    age = "AGE-SECRET-KEY-1" + r("QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L", 58)
    add("age", S["age"], f"# created: 2024-01-01T00:00:00Z\n# public key: age1{r('qpzry9x8gf2tvdw0s3jn54khce6mua7l', 58)}\n{age}\n")
    add("age", S["age"], f'SOPS_AGE_KEY="{age}"')
    add("putty", S["putty"], "PuTTY-User-Key-File-3: ssh-ed25519\nEncryption: none\nComment: deploy\nPublic-Lines: 2\n"
        + r(B64, 64) + "\n" + r(B64, 12) + "\nPrivate-Lines: 1\n" + r(B64, 44) + "\nPrivate-MAC: " + r(HEX, 64) + "\n")

    # near misses: not credentials
    add("stripe-test", S["stripe"], f'stripe_secret_key = "sk_test_{r(A, 99)}"', False)
    add("stripe-test", S["stripe"], f'STRIPE_KEY="rk_test_{r(A, 24)}"', False)
    add("stripe-publishable", S["stripe"], f'publishableKey: "pk_live_{r(A, 99)}"', False)
    add("url-placeholder", S["url"], 'DATABASE_URL="postgres://user:password@localhost:5432/app"', False)
    add("url-placeholder", S["url"], "url: postgres://postgres:postgres@db:5432/postgres", False)
    add("url-placeholder", S["url"], 'DATABASE_URL="postgres://${DB_USER}:${DB_PASSWORD}@db/app"', False)
    add("url-placeholder", S["url"], "git clone https://github.com/example/repo.git", False)
    add("url-placeholder", S["url"], "see https://user:<password>@host/path in the docs", False)
    add("env-reference", S["url"], 'HF_TOKEN = os.environ["HF_TOKEN"]', False)
    add("env-reference", S["url"], 'define("API_TOKEN", getenv("API_TOKEN"));', False)

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "published-formats.jsonl")
with open(out, "w") as f:
    for row in rows:
        f.write(json.dumps(row, sort_keys=True) + "\n")
print(len(rows), "rows")
