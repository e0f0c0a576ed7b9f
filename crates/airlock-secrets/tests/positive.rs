//! One realistic (synthetic, randomly generated) example per rule.

mod common;

use airlock_secrets::Scanner;
use common::*;

/// Scan `text` and expect exactly one `rule` finding for `secret` on `line`.
fn expect(rule: &str, path: &str, text: &str, line: usize, secret: &str) {
    let findings = scan(path, text);
    let line_text = text.split('\n').nth(line - 1).unwrap();
    let column = column_of(line_text, secret);
    assert_single(&findings, rule, line, column, secret);
}

/// Allowlist entries name rules by id: the ids of earlier versions stay. (Every rule is shown to
/// fire on outside samples by `tests/corpus.rs`.)
#[test]
fn earlier_rule_ids_are_kept() {
    let ids: Vec<&str> = Scanner::rules().iter().map(|r| r.0).collect();
    for id in [
        "private-key",
        "aws-access-key-id",
        "aws-secret-access-key",
        "gcp-service-account-key",
        "gcp-api-key",
        "azure-storage-key",
        "azure-client-secret",
        "github-token",
        "github-fine-grained-token",
        "gitlab-token",
        "slack-token",
        "slack-webhook",
        "stripe-key",
        "jwt",
        "npm-token",
        "pypi-token",
        "openai-key",
        "anthropic-key",
        "generic-high-entropy",
    ] {
        assert!(ids.contains(&id), "rule {id} is gone");
    }
    let mut unique = ids.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), ids.len(), "rule ids are unique");
}

fn pem_body(rng: &mut Rng, lines: usize) -> Vec<String> {
    (0..lines)
        .map(|i| {
            let s = rng.string(&base64_chars(), 64);
            if i == 0 {
                format!("MIIE{}", &s[4..])
            } else {
                s
            }
        })
        .collect()
}

#[test]
fn private_key_pem_block() {
    let mut rng = Rng::new(1);
    let body = pem_body(&mut rng, 5);
    let text = format!(
        "KEY = \"\"\"{}\n{}\n{}\"\"\"\n",
        format_args!("-----BEGIN {} PRIVATE KEY-----", "RSA"),
        body.join("\n"),
        format_args!("-----END {} PRIVATE KEY-----", "RSA"),
    );
    let findings = scan("deploy/key.py", &text);
    // the fingerprint covers the key material of the header's next four lines
    assert_single(&findings, "private-key", 1, 10, &body[..4].concat());
    for line in &body {
        assert_does_not_leak(&findings[0], line);
    }
}

#[test]
fn private_key_openssh_and_encrypted_pem_with_armor_headers() {
    let mut rng = Rng::new(2);
    let body = rng.string(&base64_chars(), 70);
    let text = format!(
        "{}\n{body}\n",
        format_args!("-----BEGIN {} PRIVATE KEY-----", "OPENSSH")
    );
    assert_single(&scan("id_ed25519", &text), "private-key", 1, 1, &body);

    let body = pem_body(&mut rng, 2);
    let iv = rng.string("0123456789ABCDEF", 32);
    let text = format!(
        "-----BEGIN RSA PRIVATE {}-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,{iv}\n\n{}\n",
        "KEY",
        body.join("\n")
    );
    let material = format!("{iv}{}", body[0]);
    assert_single(&scan("server.key", &text), "private-key", 1, 1, &material);
}

#[test]
fn gcp_service_account_key_file() {
    let mut rng = Rng::new(3);
    let body = pem_body(&mut rng, 3);
    let key = format!(
        "-----BEGIN PRIVATE KEY-----\\n{}\\n-----END PRIVATE KEY-----\\n",
        body.join("\\n")
    );
    let text = format!(
        r#"{{
  "type": "service_account",
  "project_id": "demo-project-{p}",
  "private_key_id": "{id}",
  "private_key": "{key}",
  "client_email": "ci@demo-project-{p}.iam.gserviceaccount.com",
  "client_id": "{cid}"
}}"#,
        p = rng.string(DIGITS, 6),
        id = rng.string("0123456789abcdef", 40),
        cid = rng.string(DIGITS, 21),
    );
    let findings = scan("ci/sa.json", &text);
    let line = text.split('\n').nth(4).unwrap();
    assert_single(
        &findings,
        "gcp-service-account-key",
        5,
        column_of(line, "-----BEGIN"),
        &body.concat(),
    );

    // the same key without the service-account marker is a plain private key
    let plain = text.replace("service_account", "user_account");
    assert_eq!(scan("ci/sa.json", &plain)[0].rule, "private-key");
}

#[test]
fn aws_access_key_id() {
    let mut rng = Rng::new(4);
    let secret = format!("AKIA{}", rng.string("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 16));
    let text = format!("[default]\naws_access_key_id = {secret}\nregion = eu-west-1\n");
    expect("aws-access-key-id", ".aws/credentials", &text, 2, &secret);
}

#[test]
fn aws_secret_access_key() {
    let mut rng = Rng::new(5);
    let secret = rng.string(&base64_chars(), 40);
    let text = format!("export AWS_SECRET_ACCESS_KEY=\"{secret}\"\n");
    expect("aws-secret-access-key", "scripts/env.sh", &text, 1, &secret);
    let json = format!("{{\n  \"SecretAccessKey\": \"{secret}\",\n}}");
    expect("aws-secret-access-key", "creds.json", &json, 2, &secret);
}

#[test]
fn gcp_api_key() {
    let mut rng = Rng::new(6);
    let secret = format!("AIza{}", rng.string(&base64url_chars(), 35));
    let text = format!("const firebaseConfig = {{\n  apiKey: \"{secret}\",\n}};\n");
    expect("gcp-api-key", "web/firebase.js", &text, 2, &secret);
}

#[test]
fn azure_storage_key() {
    let mut rng = Rng::new(7);
    let secret = format!("{}==", rng.string(&base64_chars(), 86));
    let text = format!(
        "STORAGE=DefaultEndpointsProtocol=https;AccountName=acct{};AccountKey={secret};EndpointSuffix=core.windows.net\n",
        rng.string(DIGITS, 4)
    );
    expect("azure-storage-key", ".env", &text, 1, &secret);
}

#[test]
fn azure_client_secret() {
    let mut rng = Rng::new(8);
    let secret = format!(
        "{}{}Q~{}",
        rng.string(&alnum(), 3),
        rng.string(DIGITS, 1),
        rng.string(&format!("{}_~.-", alnum()), 34)
    );
    // the Q~ shape alone
    let text = format!("client:\n  secret_value: {secret}\n");
    expect("azure-client-secret", "values.yaml", &text, 2, &secret);
    // the context form, with an older (shape-less) secret
    let older = rng.string(&alnum(), 34);
    let text = format!("AZURE_CLIENT_SECRET={older}\n");
    expect("azure-client-secret", ".env", &text, 1, &older);
}

#[test]
fn github_token() {
    let mut rng = Rng::new(9);
    for prefix in ["ghp", "gho", "ghu", "ghs", "ghr"] {
        let secret = format!("{prefix}_{}", rng.string(&alnum(), 36));
        let text = format!("steps:\n  - run: gh auth login --with-token <<< {secret}\n");
        expect(
            "github-token",
            ".github/workflows/ci.yml",
            &text,
            2,
            &secret,
        );
    }
}

#[test]
fn github_fine_grained_token() {
    let mut rng = Rng::new(10);
    let secret = format!(
        "github_pat_11{}_{}",
        rng.string(&format!("{UPPER}{DIGITS}"), 20),
        rng.string(&alnum(), 59)
    );
    let text = format!("let client = Client::new(\"{secret}\");\n");
    expect(
        "github-fine-grained-token",
        "src/main.rs",
        &text,
        1,
        &secret,
    );
}

#[test]
fn gitlab_token() {
    let mut rng = Rng::new(11);
    let secret = format!("glpat-{}", rng.string(&base64url_chars(), 20));
    let text = format!(
        "# ci\ncurl --header \"PRIVATE-TOKEN: {secret}\" https://gitlab.example.com/api/v4/projects\n"
    );
    expect("gitlab-token", "scripts/release.sh", &text, 2, &secret);
}

#[test]
fn slack_token() {
    let mut rng = Rng::new(12);
    let secret = format!(
        "xoxb-{}-{}-{}",
        rng.string(DIGITS, 12),
        rng.string(DIGITS, 13),
        rng.string(&alnum(), 24)
    );
    let text = format!("slack:\n  bot_token: {secret}\n");
    expect("slack-token", "config/slack.yml", &text, 2, &secret);
}

#[test]
fn slack_webhook() {
    let mut rng = Rng::new(13);
    let path = format!(
        "T{}/B{}/{}",
        rng.string(&format!("{UPPER}{DIGITS}"), 8),
        rng.string(&format!("{UPPER}{DIGITS}"), 10),
        rng.string(&alnum(), 24)
    );
    let text = format!("WEBHOOK = 'https://hooks.slack.com/services/{path}'\n");
    expect("slack-webhook", "notify.py", &text, 1, &path);
}

#[test]
fn stripe_key() {
    let mut rng = Rng::new(14);
    for prefix in ["sk_live_", "rk_live_"] {
        let secret = format!("{prefix}{}", rng.string(&alnum(), 24));
        let text = format!("Stripe.api_key = '{secret}'\n");
        expect(
            "stripe-key",
            "config/initializers/stripe.rb",
            &text,
            1,
            &secret,
        );
    }
}

#[test]
fn jwt() {
    let mut rng = Rng::new(15);
    let header = b64url_encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let payload = b64url_encode(
        format!(
            r#"{{"sub":"{}","iat":1700000000,"role":"admin"}}"#,
            rng.string(DIGITS, 10)
        )
        .as_bytes(),
    );
    let secret = format!("{header}.{payload}.{}", rng.string(&base64url_chars(), 43));
    let text = format!("fetch(url, {{\n  headers: {{ Authorization: `Bearer {secret}` }},\n}});\n");
    expect("jwt", "web/api.ts", &text, 2, &secret);
}

#[test]
fn npm_token() {
    let mut rng = Rng::new(16);
    let secret = format!("npm_{}", rng.string(&alnum(), 36));
    let text = format!("//registry.npmjs.org/:_authToken={secret}\n");
    expect("npm-token", ".npmrc", &text, 1, &secret);
    // legacy (UUID) tokens are caught by the .npmrc context
    let uuid = format!(
        "{}-{}-{}-{}-{}",
        rng.string("0123456789abcdef", 8),
        rng.string("0123456789abcdef", 4),
        rng.string("0123456789abcdef", 4),
        rng.string("0123456789abcdef", 4),
        rng.string("0123456789abcdef", 12)
    );
    let text =
        format!("registry=https://registry.npmjs.org/\n//registry.npmjs.org/:_authToken={uuid}\n");
    expect("npm-token", ".npmrc", &text, 2, &uuid);
}

#[test]
fn pypi_token() {
    let mut rng = Rng::new(17);
    let secret = format!(
        "pypi-AgEIcHlwaS5vcmc{}",
        rng.string(&base64url_chars(), 160)
    );
    let text = format!("[pypi]\n  username = __token__\n  password = {secret}\n");
    expect("pypi-token", ".pypirc", &text, 3, &secret);
}

#[test]
fn openai_key() {
    let mut rng = Rng::new(18);
    let legacy = format!(
        "sk-{}T3BlbkFJ{}",
        rng.string(&alnum(), 20),
        rng.string(&alnum(), 20)
    );
    expect(
        "openai-key",
        "bot.py",
        &format!("openai.api_key = \"{legacy}\"\n"),
        1,
        &legacy,
    );
    let project = format!(
        "sk-proj-{}T3BlbkFJ{}",
        rng.string(&base64url_chars(), 74),
        rng.string(&base64url_chars(), 74)
    );
    expect(
        "openai-key",
        ".env",
        &format!("OPENAI_API_KEY={project}\n"),
        1,
        &project,
    );
}

#[test]
fn anthropic_key() {
    let mut rng = Rng::new(19);
    let secret = format!("sk-ant-api03-{}AA", rng.string(&base64url_chars(), 93));
    let text = format!("import anthropic\nclient = anthropic.Anthropic(api_key=\"{secret}\")\n");
    expect("anthropic-key", "agent.py", &text, 2, &secret);
}

#[test]
fn generic_high_entropy_assignments() {
    let mut rng = Rng::new(20);
    let cases = [
        ("settings.py", "DB_PASSWORD = \"{}\""),
        ("config.yaml", "  client_secret: '{}'"),
        ("app.properties", "jwt.signing.secret={}"),
        (".env", "SESSION_TOKEN={}"),
        ("main.go", "\tapiKey := \"{}\""),
        ("config.json", "  \"password\": \"{}\","),
        ("check.rs", "if token == \"{}\" {{"),
    ];
    for (path, template) in cases {
        let secret = rng.string(&format!("{}!#%", alnum()), 24);
        let line = template.replace("{}", &secret).replace("{{", "{");
        let text = format!("// config\n{line}\n");
        expect("generic-high-entropy", path, &text, 2, &secret);
    }
}

#[test]
fn findings_are_sorted_and_the_specific_rule_wins() {
    let mut rng = Rng::new(21);
    let gh = format!("ghp_{}", rng.string(&alnum(), 36));
    let pw = rng.string(&alnum(), 20);
    let text = format!("github_token = \"{gh}\"\npassword = \"{pw}\"\n");
    let findings = scan("a.py", &text);
    let rules: Vec<&str> = findings.iter().map(|f| f.rule.as_str()).collect();
    assert_eq!(rules, ["github-token", "generic-high-entropy"]);
    assert_eq!(findings[1].line, 2);
}

/// The misses issue 12 names, each found by the rule that should find it.
#[test]
fn the_misses_of_issue_12_are_found() {
    let mut rng = Rng::new(400);
    let v = rng.string(&alnum(), 24);
    let assignments = [
        format!("System.setProperty(\"X_TOKEN\", \"{v}\")"),
        format!("define('X_TOKEN', '{v}');"),
        format!("var apiToken string = \"{v}\""),
        format!("X_TOKEN ?= \"{v}\""),
        format!("$apiToken .= \"{v}\";"),
        format!("X_TOKEN ::= \"{v}\""),
        format!("{{\"config.ini\": \"X_TOKEN={v}\\nDEBUG=1\"}}"),
        format!("const clientSecretValue = \"{v}\";"),
    ];
    for line in &assignments {
        let f = scan("a.txt", line);
        assert_eq!(f.len(), 1, "{line}: {f:?}");
        assert_eq!(f[0].rule, "generic-high-entropy", "{line}");
        assert_eq!(f[0].fingerprint, airlock_secrets::fingerprint(&v), "{line}");
    }
    // An OpenSSH key body starts with runs of `A` (length fields): it is key material all the same.
    let openssh = format!(
        "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\nQyNTUxOQAAACB{}\n{}\n-----END OPENSSH PRIVATE KEY-----\n",
        rng.string(&base64_chars(), 57),
        rng.string(&base64_chars(), 70)
    );
    let cases = [
        ("private-key", openssh),
        (
            "url-credentials",
            format!(
                "DATABASE_URL=postgres://app:{}@db.internal:5432/app",
                rng.string(&alnum(), 20)
            ),
        ),
        (
            "huggingface-token",
            format!("token = hf_{}", rng.string(&alnum(), 34)),
        ),
        (
            "discord-webhook",
            format!(
                "https://discord.com/api/webhooks/{}/{}",
                rng.string(DIGITS, 19),
                rng.string(&base64url_chars(), 68)
            ),
        ),
        (
            "azure-sas-token",
            format!(
                "?sv=2022-11-02&ss=b&srt=o&sp=r&se=2030-01-01T00:00:00Z&spr=https&sig={}%3D",
                rng.string(&alnum(), 43)
            ),
        ),
        (
            "slack-token",
            format!("xoxe.xoxp-1-{}", rng.string(&alnum(), 160)),
        ),
        (
            "slack-token",
            format!(
                "xapp-1-A{}-{}-{}",
                rng.string(&format!("{UPPER}{DIGITS}"), 10),
                rng.string(DIGITS, 13),
                rng.string("0123456789abcdef", 64)
            ),
        ),
        (
            "webhook-signing-secret",
            format!("whsec_{}", rng.string(&base64_chars(), 32)),
        ),
        (
            "gcp-oauth-client-secret",
            format!("GOCSPX-{}", rng.string(&base64url_chars(), 28)),
        ),
    ];
    for (rule, text) in &cases {
        let f = scan("a.txt", text);
        assert_eq!(f.len(), 1, "{rule}: {f:?}");
        assert_eq!(f[0].rule, *rule);
    }
}
