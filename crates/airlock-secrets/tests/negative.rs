//! Text that looks close to a secret but is not one: no findings.

mod common;

use common::*;

fn assert_clean(path: &str, text: &str) {
    let findings = scan(path, text);
    assert!(
        findings.is_empty(),
        "{path}: unexpected findings {findings:#?}"
    );
}

#[test]
fn lockfile_hashes() {
    let mut rng = Rng::new(100);
    let sha512 = format!("sha512-{}==", rng.string(&base64_chars(), 86));
    assert_clean(
        "package-lock.json",
        &format!(
            "    \"node_modules/left-pad\": {{\n      \"version\": \"1.3.0\",\n      \"resolved\": \"https://registry.npmjs.org/left-pad/-/left-pad-1.3.0.tgz\",\n      \"integrity\": \"{sha512}\"\n    }},"
        ),
    );
    let hex64 = rng.string("0123456789abcdef", 64);
    assert_clean(
        "Cargo.lock",
        &format!(
            "[[package]]\nname = \"serde\"\nversion = \"1.0.200\"\nsource = \"registry+https://github.com/rust-lang/crates.io-index\"\nchecksum = \"{hex64}\"\n"
        ),
    );
    assert_clean(
        "yarn.lock",
        &format!(
            "  integrity {sha512}\n  resolved \"https://registry.yarnpkg.com/x/-/x-1.0.0.tgz#{}\"",
            rng.string("0123456789abcdef", 40)
        ),
    );
    assert_clean(
        "go.sum",
        &format!(
            "golang.org/x/text v0.14.0 h1:{}=\n",
            rng.string(&base64_chars(), 43)
        ),
    );
}

#[test]
fn uuids_git_shas_and_digests() {
    let mut rng = Rng::new(101);
    let hex = "0123456789abcdef";
    let uuid = format!(
        "{}-{}-4{}-a{}-{}",
        rng.string(hex, 8),
        rng.string(hex, 4),
        rng.string(hex, 3),
        rng.string(hex, 3),
        rng.string(hex, 12)
    );
    assert_clean(
        "ids.rs",
        &format!("const RUN_ID: &str = \"{uuid}\";\nlet request_id = \"{uuid}\";"),
    );
    let sha = rng.string(hex, 40);
    assert_clean(
        "flake.lock",
        &format!(
            "\"rev\": \"{sha}\",\ncommit {sha}\nMerge: {} {}",
            &sha[..7],
            rng.string(hex, 7)
        ),
    );
    assert_clean(
        "Dockerfile",
        &format!("FROM rust@sha256:{}", rng.string(hex, 64)),
    );
}

#[test]
fn base64_images_and_blobs() {
    let mut rng = Rng::new(102);
    let png = format!(
        "iVBORw0KGgoAAAANSUhEUgAA{}",
        rng.string(&base64_chars(), 4000)
    );
    assert_clean(
        "index.html",
        &format!("<img src=\"data:image/png;base64,{png}=\">"),
    );
    assert_clean(
        "styles.css",
        &format!(".logo {{ background: url(data:image/svg+xml;base64,{png}); }}"),
    );
}

#[test]
fn placeholders() {
    let text = "\
password = \"changeme\"
api_key = \"xxxxxxxxxxxxxxxxxxxxxxxx\"
token = \"${GITHUB_TOKEN}\"
secret: \"<your-token>\"
password = \"aaaaaaaaaaaaaaaaaaaa\"
API_KEY=your-api-key-here-please
client_secret = \"{{ vault_client_secret }}\"
SECRET_KEY=%(SECRET_KEY)s-from-environment
auth_token: \"REPLACE_WITH_YOUR_AUTH_TOKEN\"
DB_PASSWORD=********************
github_token: ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx
stripe = \"sk_live_XXXXXXXXXXXXXXXXXXXXXXXX\"
url = \"https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX\"
password = \"0123456789abcdef\"
";
    assert_clean("README.md", text);
}

#[test]
fn values_read_from_the_environment_or_code() {
    let text = "\
password = os.environ[\"X\"]
password = os.environ.get(\"DB_PASSWORD\")
token = process.env.GITHUB_TOKEN;
let token = std::env::var(\"GITHUB_TOKEN\")?;
secret_key = settings.SECRET_KEY_FROM_ENVIRONMENT
token: string;
password: PasswordHashAlgorithm,
const token = await getAccessTokenFromKeychain();
api_key = config.get_api_key_for_current_user()
self.secret = secret
TOKEN=$(gh auth token)
tokenizer_path = \"models/bert-base-uncased/tokenizer.json\"
token_url = \"https://oauth2.googleapis.com/token?x=Zm9vYmFyYmF6cXV4\"
secret_name = \"prod/db/credentials-rotation-2024\"
password_hash = \"$argon2id$v=19$m=65536,t=3,p=4$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG\"
password = \"correct horse battery staple\"
";
    assert_clean("app.py", text);
}

#[test]
fn documented_example_credentials() {
    // AWS's documentation example key pair: AKIAIOSFODNN7EXAMPLE and its secret. Decision: ids
    // ending in EXAMPLE are AWS's published examples, never issued keys, so they are exempt.
    let text = "\
aws_access_key_id = AKIAIOSFODNN7EXAMPLE
aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY
";
    assert_clean("docs/aws.md", text);
    // The Azure Storage emulator (Azurite) account key, published by Microsoft for local use.
    let azurite = "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;";
    assert_clean("docker-compose.yml", azurite);
}

#[test]
fn private_key_headers_without_key_material() {
    let text = format!(
        "if line.starts_with(\"{}\") {{\n    return Err(Error::UnsupportedKeyFormatWithAVeryLongIdentifier);\n}}\n",
        format_args!("-----BEGIN {} PRIVATE KEY-----", "OPENSSH")
    );
    assert_clean("src/keys.rs", &text);
    assert_clean(
        "docs/keys.md",
        "Paste your key:\n\n    -----BEGIN PRIVATE KEY-----\n    ...\n    -----END PRIVATE KEY-----\n",
    );
    let public = format!(
        "-----BEGIN PUBLIC KEY-----\n{}\n",
        Rng::new(7).string(&base64_chars(), 64)
    );
    assert_clean("key.pub", &public);
}

#[test]
fn lookalikes_of_token_formats() {
    let mut rng = Rng::new(103);
    // a JWT-shaped string whose header has no "alg"
    let header = b64url_encode(br#"{"foo":"bar"}"#);
    let payload = b64url_encode(br#"{"sub":"1"}"#);
    let fake_jwt = format!("{header}.{payload}.{}", rng.string(&base64url_chars(), 43));
    // Stripe test-mode keys are not flagged (only live keys are)
    let test_key = format!("sk_test_{}", rng.string(&alnum(), 24));
    // too short to be a GitHub token
    let short = format!("ghp_{}", rng.string(&alnum(), 20));
    let text = format!(
        "a = \"{fake_jwt}\"\nversion = \"1.2.3.4\"\nstripe.key = {test_key}\nref = {short}\nsk-learn\nhttps://hooks.slack.com/services/\n"
    );
    assert_clean("misc.txt", &text);
}

#[test]
fn stripe_test_and_publishable_keys_under_any_name() {
    // The README promises test-mode keys are not reported: no rule may report them, the
    // assignment heuristics included.
    let mut rng = Rng::new(104);
    for prefix in ["sk_test_", "rk_test_", "pk_test_", "pk_live_"] {
        let key = format!("{prefix}{}", rng.string(&alnum(), 99));
        for line in [
            format!("STRIPE_SECRET_KEY={key}"),
            format!("stripeToken = \"{key}\""),
            format!("define('STRIPE_API_KEY', '{key}');"),
        ] {
            assert_clean("config.php", &line);
        }
    }
}

#[test]
fn urls_with_placeholder_or_default_passwords() {
    assert_clean(
        "docker-compose.yml",
        "DATABASE_URL: postgres://postgres:postgres@db:5432/app\nREDIS_URL: redis://user:password@cache:6379\nAMQP: amqp://${RABBIT_USER}:${RABBIT_PASS}@mq/\nsee https://user:<password>@host/path\ngit clone https://github.com/rust-lang/rust.git\n",
    );
}

#[test]
fn code_that_names_credentials() {
    // shapes seen in real crates: type annotations, paths, references, constants, calls
    let text = "\
pub fn parse2<T: Parse>(tokens: proc_macro2::TokenStream) -> Result<T> {
fn try_from(private_key_info: pkcs8::PrivateKeyInfo<'_>) -> pkcs8::Result<Self> {
    formatter.field(\"extern_token\", &self.extern_token);
    private_key: &private_key_bytes,
    generate_private_key: x25519_generate_private_key,
let traffic_secret_expander = TLS13_CHACHA20_POLY1305_SHA256_INTERNAL
- Rename `From/ToPrivateKey` => `DecodePrivateKey`/`EncodePrivateKey`
    assert_eq!(findings.len(), airlock_secrets::MAX_FINDINGS_PER_LINE);
    expect(\"slack-token\", \"config/slack.yml\", &text, 2, &secret);
/// let url = Url::parse(\"ftp://rms:secret123@example.com\")?;
- **context rules**: passwords in URLs (`postgres://user:pw@host`) and `curl -u user:pw`,
";
    assert_clean("src/lib.rs", text);
}
