//! The built-in ruleset.
//!
//! Every rule is written from the published shape of the credential it looks for. Each pattern has a
//! capture group 1 holding the secret itself (what gets fingerprinted); text around it is context.
//! All patterns use the `regex` crate, whose matching time is linear in the input.

use std::sync::OnceLock;

use regex::Regex;

/// What a candidate match must additionally satisfy before it is reported.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Check {
    /// The secret (minus `skip` leading bytes, a fixed prefix) must not look like a placeholder and
    /// must have at least `min_entropy` bits of Shannon entropy per byte.
    Random { skip: usize, min_entropy: f64 },
    /// Like `Random`, for tokens whose leading parts are ids (Slack): only the part after the last
    /// `-` is random, and it is what must not look like a placeholder.
    LastSegment { min_entropy: f64 },
    /// Header of a private key block; the key material is looked for by the scanner.
    PrivateKey,
    /// AWS access key id; ids ending in `EXAMPLE` are AWS's documented examples.
    AwsKeyId,
    /// Header and payload must decode (base64url) to JSON objects, the header having `"alg"`.
    Jwt,
    /// The assignment heuristic: group 1 the name, group 2 the value; name, value shape, entropy,
    /// placeholders. `provider`: the name holds a provider's name, so shorter values count.
    Generic { provider: bool },
    /// An XML element holding a credential name, opened at the end of the line: the value is the
    /// next added line (`<apiToken>` / `  value` / `</apiToken>`). Group 1 is the name.
    XmlOpen,
    /// A password in a URL or a `user:password` argument: group 1 the user, group 2 the password.
    UrlPassword,
}

pub(crate) struct RuleDef {
    pub id: &'static str,
    pub description: &'static str,
    /// Lowercase literals; a window is only searched with this rule's patterns when its lowercased
    /// text contains one of them. Every match of every pattern must contain one of them.
    pub keywords: &'static [&'static str],
    pub patterns: &'static [&'static str],
    pub check: Check,
}

pub(crate) const GENERIC_ID: &str = "generic-high-entropy";
pub(crate) const PROVIDER_ID: &str = "provider-credential";
pub(crate) const PRIVATE_KEY_ID: &str = "private-key";
pub(crate) const GCP_SA_ID: &str = "gcp-service-account-key";
pub(crate) const K8S_SECRET_ID: &str = "kubernetes-secret";

/// Rules that judge context rather than a token's own format: a token format found on the same
/// text wins over them.
pub(crate) const HEURISTIC_IDS: &[&str] = &[
    "url-credentials",
    "authorization-header",
    PROVIDER_ID,
    GENERIC_ID,
    "generic-xml-element",
];

/// Minimum Shannon entropy (bits per byte) of a value caught by the generic assignment rule.
pub const GENERIC_MIN_ENTROPY: f64 = 3.5;
/// Minimum length of a value caught by the generic assignment rule.
pub const GENERIC_MIN_LEN: usize = 16;

const fn random(skip: usize, min_entropy: f64) -> Check {
    Check::Random { skip, min_entropy }
}

// A token with a fixed prefix: `tok!(id, description, [keywords], pattern, skip, entropy)`.
macro_rules! tok {
    ($id:literal, $desc:literal, [$($kw:literal),+], [$($pat:expr),+ $(,)?], $skip:expr, $ent:expr) => {
        RuleDef {
            id: $id,
            description: $desc,
            keywords: &[$($kw),+],
            patterns: &[$($pat),+],
            check: random($skip, $ent),
        }
    };
}

// What may follow a token: not another token character (`-` included), or a `\n` escape.
macro_rules! end {
    () => {
        r"(?:[^A-Za-z0-9_-]|\\[nrt]|$)"
    };
}

// Name part of the generic assignment rule: a word naming a credential, with any words before
// and after it (`DB_PASSWORD`, `githubToken`, `client.secret.value`).
macro_rules! generic_name {
    () => {
        r"([A-Za-z0-9_.-]*(?:password|passwd|passphrase|pwd|secret|token|api[_.-]?key|apikey|access[_.-]?key|auth|private[_.-]?key|credentials?|creds)(?:[_.-]?[A-Za-z0-9]+)*)"
    };
}

// Name part of the provider rule: a word holding the name of a service whose credentials are
// shorter or less random than the generic rule asks for.
macro_rules! provider_name {
    () => {
        r"([A-Za-z0-9_.-]*(?:adafruit|adobe|airtable|algolia|alibaba|asana|atlassian|confluence|jira|beamer|bitbucket|bittrex|cloudflare|codecov|cohere|co_api_key|coinbase|confluent|contentful|datadog|dnkey|discord|droneci|dropbox|etsy|facebook|fastly|finicity|finnhub|flickr|freshbooks|gitter|gocardless|heroku|hubspot|intercom|jfrog|artifactory|bintray|xray|kraken|kucoin|launchdarkly|linear|linked[_-]?in|lob|looker|mailchimp|mailgun|mapbox|mattermost|message[_-]?bird|meraki|netlify|new[_-]?relic|nytimes|okta|plaid|private[_-]?ai|rapidapi|sendbird|sentry|snyk|sonar|squarespace|sumo|telegr|travis|twitch|twitter|typeform|yandex|zendesk|contribsys|sourcegraph)[A-Za-z0-9_.-]*)"
    };
}

// Between a name and an assignment operator: the closing quote of a quoted name, or a type
// (`var token string = `, `val token: String = `).
macro_rules! name_tail {
    () => {
        r#"["'`\]]?(?:\s*:\s*[A-Za-z_][A-Za-z0-9_.<>\[\]?]*|\s+[A-Za-z_][A-Za-z0-9_.\[\]*]*)??"#
    };
}

// Assignment operators of common languages and formats, or the comma of `f("NAME", "value")`.
macro_rules! assign {
    () => {
        r#"(?:\s*(?:=>|:::=|::=|:=|\?\?=|\?=|\.=|\+=|\|\|=|===|!==|==|!=|=|:|\|\|)|["'],)"#
    };
}

// The same without the comma: a call's unquoted argument is code (`f("token", &self.token)`).
macro_rules! assign_bare {
    () => {
        r#"\s*(?:=>|:::=|::=|:=|\?\?=|\?=|\.=|\+=|\|\|=|===|!==|==|!=|=|:|\|\|)"#
    };
}

macro_rules! quoted_value {
    () => {
        r#"\s*(?:[rbfu]|@|\\)?["'`]([^"'`\r\n\\]{8,})\\?["'`]"#
    };
}

macro_rules! bare_value {
    () => {
        r#"\s*([A-Za-z0-9+/=_.~!@#%^&*:-]{8,})(?:[\s,;<)"'`]|\\[nrt]|$)"#
    };
}

pub(crate) const RULE_DEFS: &[RuleDef] = &[
    RuleDef {
        id: PRIVATE_KEY_ID,
        description: "private key block (PEM, OpenSSH, PuTTY or PGP) followed by key material",
        keywords: &["private key", "putty-user-key-file-"],
        patterns: &[
            r"(-----BEGIN[ A-Z0-9_-]{0,40} PRIVATE KEY(?: BLOCK)?-----)",
            r"(PuTTY-User-Key-File-[0-9]: )",
        ],
        check: Check::PrivateKey,
    },
    RuleDef {
        id: K8S_SECRET_ID,
        description: "value under data:/stringData: of a Kubernetes Secret manifest",
        // Never matched directly: the scanner reads the manifest's structure.
        keywords: &[],
        patterns: &[],
        check: random(0, 0.0),
    },
    RuleDef {
        id: "aws-access-key-id",
        description: "AWS access key id (AKIA/ASIA/... followed by 16 characters)",
        keywords: &["akia", "asia", "abia", "acca", "a3t"],
        patterns: &[r"(?-u:\b)((?:AKIA|ASIA|ABIA|ACCA|A3T[A-Z0-9])[A-Z0-9]{16})(?-u:\b)"],
        check: Check::AwsKeyId,
    },
    RuleDef {
        id: "aws-secret-access-key",
        description: "AWS secret access key (40 characters assigned to an AWS secret key name)",
        keywords: &["secret"],
        patterns: &[
            r#"(?i)(?:aws[_.-]?secret[_.-]?(?:access[_.-]?)?key|secret[_.-]?access[_.-]?key)["']?\s*(?::=|=>|=|:|,)\s*["']?([A-Za-z0-9/+]{40})(?:[^A-Za-z0-9/+=]|$)"#,
        ],
        check: random(0, 3.5),
    },
    tok!(
        "aws-bedrock-api-key",
        "Amazon Bedrock API key (ABSK... or bedrock-api-key-...)",
        ["absk", "bedrock-api-key-"],
        [
            r"(?-u:\b)(ABSK[A-Za-z0-9+/]{109,269}={0,2})",
            r"(bedrock-api-key-YmVkcm9jay5hbWF6b25hd3MuY29t[A-Za-z0-9+/=%&.-]{8,})"
        ],
        4,
        3.0
    ),
    RuleDef {
        id: GCP_SA_ID,
        description: "Google Cloud service account key file (\"type\": \"service_account\" with a private_key)",
        // Never matched directly: a private-key finding is promoted to this rule by the scanner.
        keywords: &[],
        patterns: &[],
        check: Check::PrivateKey,
    },
    RuleDef {
        id: "gcp-api-key",
        description: "Google API key (AIza followed by 35 characters)",
        keywords: &["aiza"],
        patterns: &[r"(?-u:\b)(AIza[0-9A-Za-z_-]{35})(?:[^0-9A-Za-z_-]|$)"],
        check: random(4, 3.5),
    },
    tok!(
        "gcp-oauth-client-secret",
        "Google OAuth client secret (GOCSPX-...)",
        ["gocspx-"],
        [r"(GOCSPX-[A-Za-z0-9_-]{28})"],
        7,
        3.0
    ),
    RuleDef {
        id: "azure-storage-key",
        description: "Azure storage account or shared access key (AccountKey= / SharedAccessKey=)",
        keywords: &["accountkey", "sharedaccesskey"],
        patterns: &[
            r"(?i)AccountKey\s*=\s*([A-Za-z0-9+/]{86}==)",
            r"(?i)SharedAccessKey\s*=\s*([A-Za-z0-9+/]{42,43}=)",
        ],
        check: random(0, 4.0),
    },
    RuleDef {
        id: "azure-sas-token",
        description: "Azure shared access signature (sv=... &sig=...)",
        keywords: &["sig="],
        patterns: &[
            r"(?i)(?:^|[?&;=\s'\x22])sv=[0-9]{4}-[0-9]{2}-[0-9]{2}&[^\s'\x22<>]{0,400}?sig=([A-Za-z0-9%+/]{30,120})",
        ],
        check: random(0, 3.5),
    },
    RuleDef {
        id: "azure-client-secret",
        description: "Azure AD / Entra ID client secret",
        keywords: &["client", "q~"],
        patterns: &[
            r#"(?i)(?:azure|aad|arm|az)[_.-]?client[_.-]?secret["']?\s*(?::=|=>|=|:)\s*["']?([A-Za-z0-9_~.-]{30,60})"#,
            r"(?:^|[^A-Za-z0-9_~.-])([A-Za-z0-9_~.-]{3}[0-9]Q~[A-Za-z0-9_~.-]{31,34})(?:[^A-Za-z0-9_~.-]|$)",
        ],
        check: random(0, 3.5),
    },
    RuleDef {
        id: "github-token",
        description: "GitHub token (ghp_, gho_, ghu_, ghs_ or ghr_ followed by 36 characters)",
        keywords: &["ghp_", "gho_", "ghu_", "ghs_", "ghr_"],
        patterns: &[r"(?-u:\b)(gh[pousr]_[A-Za-z0-9]{36,251})(?-u:\b)"],
        check: random(4, 3.5),
    },
    RuleDef {
        id: "github-fine-grained-token",
        description: "GitHub fine-grained personal access token (github_pat_...)",
        keywords: &["github_pat_"],
        patterns: &[r"(?-u:\b)(github_pat_[A-Za-z0-9_]{82,240})(?-u:\b)"],
        check: random(11, 3.5),
    },
    RuleDef {
        id: "gitlab-token",
        description: "GitLab token (glpat-, gldt-, glrt-, glptt-, gloas-, glft-, glimt-, glagent-, glsoat-, glffct-, glcbt-, GR1348941 or a session cookie)",
        keywords: &[
            "glpat-",
            "gldt-",
            "glrt-",
            "glptt-",
            "gloas-",
            "glft-",
            "glimt-",
            "glagent-",
            "glsoat-",
            "glffct-",
            "glcbt-",
            "gr1348941",
            "_gitlab_session=",
        ],
        patterns: &[
            r"(?-u:\b)((?:glpat|gldt|glrt|glptt|gloas|glft|glimt|glagent|glsoat|glffct)-[A-Za-z0-9_-]{20,}(?:\.[A-Za-z0-9_-]+)*)",
            r"(?-u:\b)(glcbt-[A-Za-z0-9]{1,5}_[A-Za-z0-9_-]{20})",
            r"(GR1348941[A-Za-z0-9_-]{20})",
            r"_gitlab_session=([0-9a-z]{32})",
        ],
        check: random(0, 3.0),
    },
    RuleDef {
        id: "slack-token",
        description: "Slack token (xoxb-, xoxp-, xoxa-, xoxr-, xoxs-, xoxo-, xoxe-, xoxe.xox?- or xapp-)",
        keywords: &["xox", "xapp-"],
        patterns: &[
            r"(?-u:\b)(xox[bp]-[0-9]{8,14}-[0-9A-Za-z-]{10,})",
            r"(?-u:\b)(xox[arseo]-(?:[0-9]-)?[0-9A-Za-z-]{8,})",
            r"(?-u:\b)(xoxe\.xox[bp]-[0-9]-[0-9A-Za-z]{100,})",
            r"(?-u:\b)(xapp-[0-9]-[A-Za-z0-9]+-[0-9]+-[A-Za-z0-9]+)",
        ],
        check: Check::LastSegment { min_entropy: 2.5 },
    },
    RuleDef {
        id: "slack-webhook",
        description: "Slack incoming webhook URL (hooks.slack.com/services/...)",
        keywords: &["hooks.slack.com"],
        patterns: &[r"hooks\.slack\.com/(?:services|workflows|triggers)/([A-Za-z0-9+/_-]{20,})"],
        check: random(0, 3.0),
    },
    tok!(
        "discord-webhook",
        "Discord webhook URL (discord.com/api/webhooks/...)",
        ["/api/webhooks/"],
        [r"(?i)discord(?:app)?\.com/api/webhooks/[0-9]{5,20}/([A-Za-z0-9_-]{60,68})"],
        0,
        3.5
    ),
    tok!(
        "microsoft-teams-webhook",
        "Microsoft Teams incoming webhook URL",
        ["webhook.office.com"],
        [
            r"(?i)webhook\.office\.com/webhookb2/[a-z0-9-]{36}@[a-z0-9-]{36}/IncomingWebhook/([a-z0-9]{32}/[a-z0-9-]{36})"
        ],
        0,
        3.0
    ),
    RuleDef {
        id: "stripe-key",
        description: "Stripe live secret or restricted key (sk_live_ / rk_live_); test-mode keys are not reported",
        keywords: &["_live_", "_prod_"],
        patterns: &[r"(?-u:\b)((?:sk|rk)_(?:live|prod)_[A-Za-z0-9]{10,247})(?-u:\b)"],
        check: random(8, 3.0),
    },
    tok!(
        "webhook-signing-secret",
        "webhook signing secret (whsec_..., Stripe, Svix and others)",
        ["whsec_"],
        [r"(?-u:\b)(whsec_[A-Za-z0-9+/=]{24,})"],
        6,
        3.5
    ),
    RuleDef {
        id: "jwt",
        description: "JSON Web Token (three base64url parts, header with \"alg\")",
        keywords: &["ey", "ew"],
        patterns: &[r"(?-u:\b)((?:ey|ew)[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{16,})"],
        check: Check::Jwt,
    },
    RuleDef {
        id: "npm-token",
        description: "npm access token (npm_... or an .npmrc/.yarnrc _authToken value)",
        keywords: &["npm_", "authtoken"],
        patterns: &[
            r"(?i)(?-u:\b)(npm_[A-Za-z0-9]{36})(?-u:\b)",
            r#"(?i)(?:_authToken|npmAuthToken)["']?\s*[=:]\s*["']?([A-Za-z0-9_-]{20,})"#,
        ],
        check: random(0, 3.0),
    },
    RuleDef {
        id: "pypi-token",
        description: "PyPI upload token (pypi-AgEIcHlwaS5vcmc...)",
        keywords: &["pypi-"],
        patterns: &[r"(?-u:\b)(pypi-(?:AgEIcHlwaS5vcmc|AgENdGVzdC5weXBpLm9yZw)[A-Za-z0-9_-]{50,})"],
        check: random(20, 3.5),
    },
    RuleDef {
        id: "openai-key",
        description: "OpenAI API key (sk-..., sk-proj-...)",
        keywords: &["sk-"],
        patterns: &[
            r"(?-u:\b)(sk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{20,}T3BlbkFJ[A-Za-z0-9_-]{20,})",
            r"(?-u:\b)(sk-(?:proj|svcacct|admin)-[A-Za-z0-9_-]{40,})",
        ],
        check: random(3, 3.5),
    },
    RuleDef {
        id: "anthropic-key",
        description: "Anthropic API key (sk-ant-api03-...)",
        keywords: &["sk-ant-"],
        patterns: &[
            r"(?-u:\b)(sk-ant-(?:api|admin|oat|ort|sid)[0-9]{2}-[A-Za-z0-9_-]{93}AA)(?:[^A-Za-z0-9_-]|$)",
        ],
        check: random(14, 3.5),
    },
    tok!(
        "huggingface-token",
        "Hugging Face access token (hf_... or api_org_...)",
        ["hf_", "api_org_"],
        [concat!(r"(?-u:\b)((?:hf|api_org)_[A-Za-z0-9]{34})", end!())],
        3,
        3.5
    ),
    tok!(
        "1password-token",
        "1Password secret key (A3-...) or service account token (ops_eyJ...)",
        ["a3-", "ops_eyj"],
        [
            r"(?-u:\b)(A3-[A-Z0-9]{6}-(?:[A-Z0-9]{11}|[A-Z0-9]{6}-[A-Z0-9]{5})-[A-Z0-9]{5}-[A-Z0-9]{5}-[A-Z0-9]{5})(?-u:\b)",
            r"(ops_eyJ[A-Za-z0-9+/]{250,}={0,3})"
        ],
        3,
        3.0
    ),
    tok!(
        "adobe-client-secret",
        "Adobe client secret (p8e-...)",
        ["p8e-"],
        [concat!(r"(?-u:\b)(p8e-[A-Za-z0-9]{32})", end!())],
        4,
        3.0
    ),
    tok!(
        "age-secret-key",
        "age encryption secret key (AGE-SECRET-KEY-1...)",
        ["age-secret-key-1"],
        [r"(AGE-SECRET-KEY-1[QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L]{58})"],
        16,
        3.0
    ),
    tok!(
        "airtable-token",
        "Airtable personal access token (pat....)",
        ["pat"],
        [r"(?-u:\b)(pat[A-Za-z0-9]{14}\.[a-f0-9]{64})(?-u:\b)"],
        3,
        3.0
    ),
    tok!(
        "alibaba-access-key-id",
        "Alibaba Cloud access key id (LTAI...)",
        ["ltai"],
        [concat!(r"(?-u:\b)(LTAI[A-Za-z0-9]{20})", end!())],
        4,
        3.0
    ),
    tok!(
        "artifactory-token",
        "JFrog Artifactory API key (AKCp...) or reference token (cmVmd...)",
        ["akcp", "cmvmd"],
        [r"(?-u:\b)(AKCp[A-Za-z0-9]{69}|cmVmd[A-Za-z0-9]{59})(?-u:\b)"],
        5,
        3.0
    ),
    tok!(
        "authress-key",
        "Authress service client access key",
        [".acc"],
        [concat!(
            r"(?-u:\b)((?:sc|ext|scauth|authress)_[A-Za-z0-9]{5,30}\.[A-Za-z0-9]{4,6}\.acc[_-][A-Za-z0-9-]{10,32}\.[A-Za-z0-9+/_=-]{30,120})",
            end!()
        )],
        0,
        3.0
    ),
    tok!(
        "clickhouse-cloud-key",
        "ClickHouse Cloud API secret key (4b1d...)",
        ["4b1d"],
        [r"(?-u:\b)(4b1d[A-Za-z0-9]{38})(?-u:\b)"],
        4,
        3.0
    ),
    tok!(
        "clojars-token",
        "Clojars deploy token (CLOJARS_...)",
        ["clojars_"],
        [r"(?i)(CLOJARS_[a-z0-9]{60})"],
        8,
        3.0
    ),
    tok!(
        "cloudflare-origin-ca-key",
        "Cloudflare Origin CA key (v1.0-...)",
        ["v1.0-"],
        [r"(?-u:\b)(v1\.0-[a-f0-9]{24}-[a-f0-9]{146})"],
        5,
        3.0
    ),
    tok!(
        "databricks-token",
        "Databricks personal access token (dapi...)",
        ["dapi"],
        [concat!(r"(?-u:\b)(dapi[a-f0-9]{32}(?:-[0-9])?)", end!())],
        4,
        3.0
    ),
    tok!(
        "digitalocean-token",
        "DigitalOcean token (dop_v1_, doo_v1_, dor_v1_)",
        ["_v1_"],
        [r"(?i)(?-u:\b)(do[opr]_v1_[a-f0-9]{64})"],
        7,
        3.0
    ),
    tok!(
        "doppler-token",
        "Doppler token (dp.pt., dp.st., dp.sa., ...)",
        ["dp."],
        [r"(?-u:\b)(dp\.(?:pt|st|sa|ct|scim|audit)\.[A-Za-z0-9]{40,44})"],
        6,
        3.0
    ),
    tok!(
        "duffel-token",
        "Duffel API token (duffel_live_ / duffel_test_)",
        ["duffel_"],
        [r"(duffel_(?:test|live)_[A-Za-z0-9_=-]{43})"],
        12,
        3.0
    ),
    tok!(
        "dynatrace-token",
        "Dynatrace API token (dt0c01....)",
        ["dt0c01."],
        [r"(dt0c01\.[A-Za-z0-9]{24}\.[A-Za-z0-9]{64})"],
        7,
        3.0
    ),
    tok!(
        "easypost-token",
        "EasyPost API key (EZAK... / EZTK...)",
        ["ezak", "eztk"],
        [r"(?-u:\b)(EZ[AT]K[A-Za-z0-9]{54})(?-u:\b)"],
        4,
        3.0
    ),
    tok!(
        "facebook-token",
        "Facebook access token (EAAC.../EAAM..., or app id|secret)",
        ["eaa", "|", "%7c"],
        [
            concat!(r"(?-u:\b)(EAA[MC][A-Za-z0-9]{100,})", end!()),
            concat!(
                r"(?-u:\b)([0-9]{15,16}(?:\||%7[Cc])[0-9A-Za-z_-]{27,40})",
                end!()
            )
        ],
        0,
        3.0
    ),
    tok!(
        "flutterwave-key",
        "Flutterwave key (FLWSECK_TEST-, FLWPUBK_TEST-)",
        ["flwseck", "flwpubk"],
        [r"(FLW(?:SECK|PUBK)(?:_TEST)?-[A-Ha-h0-9]{12,32}(?:-X)?)"],
        13,
        2.5
    ),
    tok!(
        "flyio-token",
        "Fly.io access token (fo1_, fm1a_, fm1r_, fm2_)",
        ["fo1_", "fm1a_", "fm1r_", "fm2_"],
        [concat!(
            r"(?-u:\b)(fo1_[A-Za-z0-9_-]{43}|fm1[ar]_[A-Za-z0-9+/]{100,}={0,3}|fm2_[A-Za-z0-9+/]{100,}={0,3})",
            end!()
        )],
        4,
        3.0
    ),
    tok!(
        "frameio-token",
        "Frame.io API token (fio-u-...)",
        ["fio-u-"],
        [r"(fio-u-[A-Za-z0-9_=-]{64})"],
        6,
        3.0
    ),
    tok!(
        "grafana-token",
        "Grafana API key, cloud token or service account token (eyJrIjoi, glc_, glsa_)",
        ["eyjrijoi", "glc_", "glsa_"],
        [
            r"(?-u:\b)(eyJrIjoi[A-Za-z0-9]{70,400}={0,3}|glc_[A-Za-z0-9+/]{32,400}={0,3}|glsa_[A-Za-z0-9]{32}_[A-Fa-f0-9]{8})"
        ],
        5,
        3.0
    ),
    tok!(
        "harness-token",
        "Harness personal or service account token (pat./sat.)",
        ["pat.", "sat."],
        [r"(?-u:\b)((?:pat|sat)\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9]{24}\.[A-Za-z0-9]{20})"],
        4,
        3.0
    ),
    tok!(
        "hashicorp-tf-token",
        "Terraform Cloud / Enterprise API token (....atlasv1....)",
        [".atlasv1."],
        [r"([A-Za-z0-9]{14}\.atlasv1\.[A-Za-z0-9_=-]{60,70})"],
        0,
        3.0
    ),
    tok!(
        "hashicorp-vault-token",
        "HashiCorp Vault service or batch token (hvs., hvb.)",
        ["hvs.", "hvb."],
        [concat!(
            r"(?-u:\b)(hvs\.[A-Za-z0-9_-]{90,120}|hvb\.[A-Za-z0-9_-]{138,300})",
            end!()
        )],
        4,
        3.0
    ),
    tok!(
        "heroku-token",
        "Heroku API key (HRKU-AA...)",
        ["hrku-"],
        [r"(HRKU-AA[A-Za-z0-9_-]{58})"],
        7,
        3.0
    ),
    tok!(
        "infracost-token",
        "Infracost API token (ico-...)",
        ["ico-"],
        [concat!(
            r"(?:^|[^A-Za-z0-9_./-])(ico-[A-Za-z0-9]{32})",
            end!()
        )],
        4,
        3.0
    ),
    tok!(
        "intra42-secret",
        "42 Intra client secret (s-s4t2ud-/s-s4t2af-)",
        ["s-s4t2"],
        [r"(s-s4t2(?:ud|af)-[A-Fa-f0-9]{64})"],
        9,
        3.0
    ),
    tok!(
        "linear-api-key",
        "Linear API key (lin_api_...)",
        ["lin_api_"],
        [r"(lin_api_[A-Za-z0-9]{40})"],
        8,
        3.0
    ),
    tok!(
        "mailgun-key",
        "Mailgun key (key-..., pubkey-... or a signing key) next to a Mailgun name",
        ["mailgun"],
        [
            r"(?i)mailgun[A-Za-z0-9_.-]{0,30}[\x22']?\s*(?:=|:|=>|,)\s*[\x22']?((?:pub)?key-[a-f0-9]{32}|[a-h0-9]{32}-[a-h0-9]{8}-[a-h0-9]{8})"
        ],
        0,
        3.0
    ),
    tok!(
        "maxmind-license-key",
        "MaxMind license key (..._mmk)",
        ["_mmk"],
        [concat!(
            r"(?-u:\b)([A-Za-z0-9]{6}_[A-Za-z0-9]{29}_mmk)",
            end!()
        )],
        0,
        3.0
    ),
    tok!(
        "new-relic-key",
        "New Relic key (NRAK-, NRJS-, NRII-)",
        ["nrak-", "nrjs-", "nrii-"],
        [r"(?-u:\b)(NRAK-[A-Za-z0-9]{27}|NRJS-[a-f0-9]{19}|NRII-[A-Za-z0-9-]{32})"],
        5,
        3.0
    ),
    tok!(
        "notion-token",
        "Notion integration token (ntn_...)",
        ["ntn_"],
        [concat!(r"(?-u:\b)(ntn_[0-9]{11}[A-Za-z0-9]{35})", end!())],
        4,
        3.0
    ),
    tok!(
        "octopus-deploy-key",
        "Octopus Deploy API key (API-...)",
        ["api-"],
        [concat!(r"(?-u:\b)(API-[A-Z0-9]{26})", end!())],
        4,
        3.0
    ),
    tok!(
        "openshift-token",
        "OpenShift user token (sha256~...)",
        ["sha256~"],
        [concat!(r"(sha256~[A-Za-z0-9_-]{43})", end!())],
        7,
        3.0
    ),
    tok!(
        "perplexity-key",
        "Perplexity API key (pplx-...)",
        ["pplx-"],
        [r"(?-u:\b)(pplx-[A-Za-z0-9]{48})"],
        5,
        3.0
    ),
    tok!(
        "planetscale-token",
        "PlanetScale token or password (pscale_tkn_, pscale_oauth_, pscale_pw_)",
        ["pscale_"],
        [concat!(
            r"(?i)(?-u:\b)(pscale_(?:tkn|oauth|pw)_[A-Za-z0-9_=.-]{32,64})",
            end!()
        )],
        10,
        3.0
    ),
    tok!(
        "postman-token",
        "Postman API key (PMAK-...)",
        ["pmak-"],
        [r"(?i)(?-u:\b)(PMAK-[a-f0-9]{24}-[a-f0-9]{34})"],
        5,
        3.0
    ),
    tok!(
        "prefect-token",
        "Prefect API key (pnu_...)",
        ["pnu_"],
        [r"(?-u:\b)(pnu_[A-Za-z0-9]{36})"],
        4,
        3.0
    ),
    tok!(
        "pulumi-token",
        "Pulumi access token (pul-...)",
        ["pul-"],
        [r"(?-u:\b)(pul-[a-f0-9]{40})"],
        4,
        3.0
    ),
    tok!(
        "readme-token",
        "ReadMe API key (rdme_...)",
        ["rdme_"],
        [r"(?-u:\b)(rdme_[a-z0-9]{70})"],
        5,
        3.0
    ),
    tok!(
        "rubygems-token",
        "RubyGems API key (rubygems_...)",
        ["rubygems_"],
        [r"(?-u:\b)(rubygems_[a-f0-9]{48})"],
        9,
        3.0
    ),
    tok!(
        "scalingo-token",
        "Scalingo API token (tk-us-...)",
        ["tk-us-"],
        [r"(?-u:\b)(tk-us-[A-Za-z0-9_-]{48})"],
        6,
        3.0
    ),
    tok!(
        "sendgrid-key",
        "SendGrid API key (SG....)",
        ["sg."],
        [concat!(r"(?i)(?-u:\b)(SG\.[A-Za-z0-9_.=-]{66})", end!())],
        3,
        3.0
    ),
    tok!(
        "sendinblue-key",
        "Brevo / Sendinblue API key (xkeysib-, xsmtpsib-)",
        ["xkeysib-", "xsmtpsib-"],
        [r"(?-u:\b)((?:xkeysib|xsmtpsib)-[a-f0-9]{64}-[A-Za-z0-9]{16})"],
        8,
        3.0
    ),
    tok!(
        "sentry-token",
        "Sentry user or organization token (sntryu_, sntrys_)",
        ["sntryu_", "sntrys_"],
        [concat!(
            r"(?-u:\b)(sntryu_[a-f0-9]{64}|sntrys_eyJ[A-Za-z0-9+/=_]{50,})",
            end!()
        )],
        7,
        3.0
    ),
    tok!(
        "settlemint-token",
        "SettleMint access token (sm_aat_, sm_pat_, sm_sat_)",
        ["sm_aat_", "sm_pat_", "sm_sat_"],
        [concat!(
            r"(?-u:\b)(sm_(?:aat|pat|sat)_[A-Za-z0-9]{16})",
            end!()
        )],
        7,
        3.0
    ),
    tok!(
        "shippo-token",
        "Shippo API token (shippo_live_ / shippo_test_)",
        ["shippo_"],
        [r"(?-u:\b)(shippo_(?:live|test)_[A-Fa-f0-9]{40})"],
        12,
        3.0
    ),
    tok!(
        "shopify-token",
        "Shopify token or shared secret (shpat_, shpca_, shppa_, shpss_)",
        ["shpat_", "shpca_", "shppa_", "shpss_"],
        [r"(shp(?:at|ca|pa|ss)_[A-Fa-f0-9]{32})"],
        6,
        3.0
    ),
    tok!(
        "sidekiq-credential",
        "Sidekiq Pro / Enterprise gem server credential",
        ["contribsys"],
        [
            r"(?i)BUNDLE_(?:ENTERPRISE|GEMS)__CONTRIBSYS__COM[A-Za-z0-9_]*[\x22']?\s*(?:=|:|=>|,|:=|\?=)\s*[\x22'`]?([a-f0-9]{8}:[a-f0-9]{8})",
            r"(?i)https?://([a-f0-9]{8}:[a-f0-9]{8})@(?:gems|enterprise)\.contribsys\.com"
        ],
        0,
        2.5
    ),
    tok!(
        "sourcegraph-token",
        "Sourcegraph access token (sgp_...)",
        ["sgp_"],
        [r"(?i)(?-u:\b)(sgp_(?:[a-f0-9]{16}_|local_)?[a-f0-9]{40})(?-u:\b)"],
        4,
        3.0
    ),
    tok!(
        "square-token",
        "Square access token or OAuth secret (EAAA..., sq0atp-, sq0csp-)",
        ["eaaa", "sq0atp-", "sq0csp-"],
        [concat!(
            r"(?-u:\b)((?:EAAA|sq0atp-|sq0csp-)[A-Za-z0-9_-]{22,60})",
            end!()
        )],
        4,
        3.0
    ),
    tok!(
        "twitter-bearer-token",
        "Twitter / X app bearer token (22 A's and 80-100 characters)",
        ["aaaaaaaaaaaaaaaaaaaaaa"],
        [concat!(
            r"(?:^|[^A-Za-z0-9])(A{22}[A-Za-z0-9%]{80,100})",
            end!()
        )],
        22,
        3.5
    ),
    tok!(
        "telegram-bot-token",
        "Telegram bot token (digits:AA...)",
        [":a"],
        [concat!(r"(?-u:\b)([0-9]{5,16}:A[A-Za-z0-9_-]{34})", end!())],
        0,
        3.0
    ),
    tok!(
        "twilio-api-key",
        "Twilio API key (SK followed by 32 hex digits)",
        ["sk"],
        [r"(?-u:\b)(SK[0-9a-fA-F]{32})(?-u:\b)"],
        2,
        3.0
    ),
    RuleDef {
        id: "url-credentials",
        description: "password in a URL (scheme://user:password@host) or a curl --user user:password argument",
        keywords: &["://", "-u"],
        patterns: &[
            r"(?i)(?-u:\b)[a-z][a-z0-9+.-]{1,20}://([^\s:@/\x22'<>`]{0,64}):([^\s:@/\x22'<>`]{3,128})@[A-Za-z0-9._-]{2,}",
            r#"(?i)(?:^|\s)(?:-u|--user)(?:=|\s+)["']?([^\s:"'`]{0,64})["']?:["']?([^\s"'`]{3,128})"#,
            // a token given as the user name with an empty password: -u "TOKEN:"
            r#"(?i)(?:^|\s)(?:-u|--user)(?:=|\s+)["']()([^\s:"']{8,128}):["']"#,
        ],
        check: Check::UrlPassword,
    },
    RuleDef {
        id: "authorization-header",
        description: "credential in an HTTP Authorization header (Basic, Bearer or Token)",
        keywords: &["authorization", "-h", "--header"],
        patterns: &[
            r#"(?i)Authorization["']?\s*[:=]\s*["']?(?:(?:Basic|Bearer|Token|Api-Token)\s+)?([A-Za-z0-9+/=._~@-]{12,})"#,
            r#"(?i)(?:^|\s)(?:-H|--header)(?:=|\s+)["']?(?:[A-Za-z-]*(?:token|api-?key|auth))\s*:\s*(?:(?:Basic|Bearer|Token)\s+)?([A-Za-z0-9+/=._~@-]{8,})"#,
        ],
        check: random(0, 2.8),
    },
    RuleDef {
        id: PROVIDER_ID,
        description: "value assigned to a name holding a provider's name (Twitter, Discord, Datadog, ...)",
        keywords: &[
            "adafruit",
            "adobe",
            "airtable",
            "algolia",
            "alibaba",
            "asana",
            "atlassian",
            "confluence",
            "jira",
            "beamer",
            "bitbucket",
            "bittrex",
            "cloudflare",
            "codecov",
            "cohere",
            "co_api_key",
            "coinbase",
            "confluent",
            "contentful",
            "datadog",
            "dnkey",
            "discord",
            "droneci",
            "dropbox",
            "etsy",
            "facebook",
            "fastly",
            "finicity",
            "finnhub",
            "flickr",
            "freshbooks",
            "gitter",
            "gocardless",
            "heroku",
            "hubspot",
            "intercom",
            "jfrog",
            "artifactory",
            "bintray",
            "xray",
            "kraken",
            "kucoin",
            "launchdarkly",
            "linear",
            "linked",
            "lob",
            "looker",
            "mailchimp",
            "mailgun",
            "mapbox",
            "mattermost",
            "message",
            "meraki",
            "netlify",
            "new",
            "nytimes",
            "okta",
            "plaid",
            "private",
            "rapidapi",
            "sendbird",
            "sentry",
            "snyk",
            "sonar",
            "squarespace",
            "sumo",
            "telegr",
            "travis",
            "twitch",
            "twitter",
            "typeform",
            "yandex",
            "zendesk",
            "contribsys",
            "sourcegraph",
        ],
        patterns: &[
            concat!(
                "(?i)",
                provider_name!(),
                name_tail!(),
                assign!(),
                quoted_value!()
            ),
            concat!(
                "(?i)",
                provider_name!(),
                name_tail!(),
                assign_bare!(),
                bare_value!()
            ),
        ],
        check: Check::Generic { provider: true },
    },
    RuleDef {
        id: GENERIC_ID,
        description: "high-entropy value assigned to a password/secret/token/key name",
        keywords: &[
            "pass",
            "pwd",
            "secret",
            "token",
            "key",
            "credential",
            "creds",
            "auth",
        ],
        patterns: &[
            // quoted value: name = "value", name: 'value', "name": "value", name == "value",
            // var name string = "value", f("NAME", "value")
            concat!(
                "(?i)",
                generic_name!(),
                name_tail!(),
                assign!(),
                quoted_value!()
            ),
            // unquoted value: NAME=value (.env, shell, YAML, properties)
            concat!(
                "(?i)",
                generic_name!(),
                name_tail!(),
                assign_bare!(),
                bare_value!()
            ),
            // XML element on one line: <apiToken>value</apiToken>
            concat!(
                "(?i)<",
                generic_name!(),
                r"(?:\s[^>]*)?>\s*([^<\s]{8,})\s*</"
            ),
        ],
        check: Check::Generic { provider: false },
    },
    RuleDef {
        id: "generic-xml-element",
        description: "high-entropy value on the line after an XML element named like a password/secret/token/key",
        keywords: &[
            "pass",
            "pwd",
            "secret",
            "token",
            "key",
            "credential",
            "creds",
            "auth",
        ],
        patterns: &[
            concat!("(?i)<", generic_name!(), r"(?:\s[^>]*)?>\s*$"),
            concat!("(?i)<", provider_name!(), r"(?:\s[^>]*)?>\s*$"),
        ],
        check: Check::XmlOpen,
    },
];

pub(crate) static RULES: &[RuleDef] = RULE_DEFS;

/// Which rules have a keyword in `text` (ASCII case-insensitively), in one pass over it.
pub(crate) fn rules_with_keywords(text: &str) -> [bool; RULES_LEN] {
    static KEYWORDS: OnceLock<(aho_corasick::AhoCorasick, Vec<usize>)> = OnceLock::new();
    let (automaton, rule_of) = KEYWORDS.get_or_init(|| {
        let mut words = Vec::new();
        let mut rule_of = Vec::new();
        for (i, r) in RULE_DEFS.iter().enumerate() {
            for k in r.keywords {
                words.push(*k);
                rule_of.push(i);
            }
        }
        let automaton = aho_corasick::AhoCorasick::builder()
            .ascii_case_insensitive(true)
            .build(&words)
            .expect("keywords build an automaton");
        (automaton, rule_of)
    });
    let mut hit = [false; RULES_LEN];
    let mut left = RULE_DEFS.iter().filter(|r| !r.keywords.is_empty()).count();
    for m in automaton.find_overlapping_iter(text) {
        let rule = rule_of[m.pattern().as_usize()];
        if !hit[rule] {
            hit[rule] = true;
            left -= 1;
            if left == 0 {
                break;
            }
        }
    }
    hit
}

/// Compiled patterns, one cell per rule, built the first time a rule's keyword is seen.
static COMPILED: [OnceLock<Vec<Regex>>; RULES_LEN] = [const { OnceLock::new() }; RULES_LEN];
const RULES_LEN: usize = RULE_DEFS.len();

pub(crate) fn compiled(index: usize) -> &'static [Regex] {
    COMPILED[index].get_or_init(|| {
        RULES[index]
            .patterns
            .iter()
            .map(|p| Regex::new(p).expect("built-in secret pattern compiles"))
            .collect()
    })
}

pub(crate) fn rule_index(id: &str) -> Option<usize> {
    RULES.iter().position(|r| r.id == id)
}

/// Shannon entropy in bits per byte.
pub(crate) fn entropy(s: &str) -> f64 {
    if s.is_empty() {
        return 0.0;
    }
    let mut counts = [0u32; 256];
    for b in s.bytes() {
        counts[b as usize] += 1;
    }
    let n = s.len() as f64;
    counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = f64::from(c) / n;
            -p * p.log2()
        })
        .sum()
}

/// Shapes a randomly generated credential practically never has: a run of five identical
/// characters (`XXXXX`, `00000`), or eight ascending/descending consecutive characters
/// (`abcdefgh`, `12345678`).
pub(crate) fn looks_filled_in(s: &str) -> bool {
    let b = s.as_bytes();
    let mut same = 1;
    let mut up = 1;
    let mut down = 1;
    for w in b.windows(2) {
        let (x, y) = (w[0].to_ascii_lowercase(), w[1].to_ascii_lowercase());
        same = if x == y { same + 1 } else { 1 };
        up = if y == x.wrapping_add(1) { up + 1 } else { 1 };
        down = if x == y.wrapping_add(1) { down + 1 } else { 1 };
        if same >= 5 || up >= 8 || down >= 8 {
            return true;
        }
    }
    false
}

/// Words that mark a value as a placeholder rather than a credential.
const PLACEHOLDER_WORDS: &[&str] = &[
    "changeme",
    "change_me",
    "change-me",
    "example",
    "placeholder",
    "your_",
    "your-",
    "yourtoken",
    "yoursecret",
    "yourpassword",
    "xxxx",
    "****",
    "....",
    "redacted",
    "dummy",
    "sample",
    "replace",
    "insert",
    "todo",
    "password",
    "hunter2",
    "fixme",
    "secret_here",
    "token_here",
    "key_here",
];

/// How many characters of `s` sit in a run that a generated credential rarely has: five or more
/// identical characters, or three or more consecutive ascending/descending ones (`abc`, `321`).
fn run_coverage(s: &[u8]) -> usize {
    let mut covered = vec![false; s.len()];
    let mark = |start: usize, end: usize, min: usize, covered: &mut Vec<bool>| {
        if end - start >= min {
            covered[start..end].iter_mut().for_each(|c| *c = true);
        }
    };
    let lower: Vec<u8> = s.iter().map(u8::to_ascii_lowercase).collect();
    for (kind, min) in [(0u8, 5usize), (1, 3), (2, 3)] {
        let mut start = 0;
        for i in 1..=lower.len() {
            let continues = i < lower.len()
                && match kind {
                    0 => lower[i] == lower[i - 1],
                    1 => lower[i] == lower[i - 1].wrapping_add(1),
                    _ => lower[i - 1] == lower[i].wrapping_add(1),
                };
            if !continues {
                mark(start, i, min, &mut covered);
                start = i;
            }
        }
    }
    covered.iter().filter(|&&c| c).count()
}

/// Placeholder test for values of a fixed token format: a placeholder word, or a random part
/// made mostly of runs (`XXXXXXXX`, `1234567890abcdef`). Generated key material can hold a run
/// (an OpenSSH key body starts with `AAAAAAAA` length fields), so one run is not enough.
pub(crate) fn is_format_placeholder(random_part: &str) -> bool {
    let lower = random_part.to_ascii_lowercase();
    if ["example", "placeholder", "changeme", "redacted", "dummy"]
        .iter()
        .any(|w| lower.contains(w))
    {
        return true;
    }
    let b = random_part.as_bytes();
    !b.is_empty() && run_coverage(b) * 2 >= b.len()
}

/// Placeholder test for the free-form values of the generic assignment rule.
pub(crate) fn is_placeholder(value: &str) -> bool {
    let lower = value.to_ascii_lowercase();
    if PLACEHOLDER_WORDS.iter().any(|w| lower.contains(w)) {
        return true;
    }
    // template and variable references: ${VAR}, $VAR, {{ var }}, %(var)s, <your-token>, #{var},
    // %VAR%
    let t = value.trim();
    // truncated in documentation: `ops_eyJzaWdu...`
    if t.ends_with("...") || t.ends_with('\u{2026}') {
        return true;
    }
    if t.starts_with('$')
        || t.starts_with("{{")
        || t.starts_with("%(")
        || t.starts_with("#{")
        || (t.starts_with('<') && t.ends_with('>'))
        || (t.len() > 2 && t.starts_with('%') && t.ends_with('%'))
        || t.contains("${")
    {
        return true;
    }
    looks_filled_in(value)
}

/// Name suffixes for which the generic rule's value is metadata about a secret, not the secret.
const GENERIC_NAME_SUFFIXES: &[&str] = &[
    "path",
    "file",
    "dir",
    "url",
    "uri",
    "name",
    "type",
    "id",
    "ids",
    "env",
    "var",
    "len",
    "source",
    "length",
    "size",
    "count",
    "hash",
    "ttl",
    "expiry",
    "expires",
    "endpoint",
    "header",
    "prefix",
    "field",
    "format",
    "policy",
    "ref",
    "arn",
    "mode",
    "kind",
    "label",
    "version",
    "algorithm",
    "alg",
    "location",
    "version",
    "timeout",
    "enabled",
    "required",
    "rotation",
    "chars",
    "char",
    "regex",
    "pattern",
    "storetype",
    "selector",
    "variable",
    "placeholder",
    "param",
    "parameter",
];

/// Words in a name that make its value something other than a credential.
const GENERIC_NAME_DENY: &[&str] = &[
    "public",
    "pub",
    "csrf",
    "xsrf",
    "tokenizer",
    "tokenize",
    "tokenized",
    "tokenization",
    "tokens_per",
    "primary",
    "foreign",
    "sequence",
    "schema",
    "idx",
    "keyboard",
    "keypress",
    "monkey",
    "turkey",
    "passage",
    "bypass",
    "compass",
    "passthrough",
    "jsonwebtoken",
    "authenticity",
    "store",
];

/// The words of a name: split at `_`, `.`, `-` and lowercase-to-uppercase steps, lowercased.
fn name_words(name: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut prev_lower = false;
    for c in name.chars() {
        if matches!(c, '_' | '.' | '-') {
            if !cur.is_empty() {
                words.push(std::mem::take(&mut cur));
            }
            prev_lower = false;
            continue;
        }
        if c.is_ascii_uppercase() && prev_lower && !cur.is_empty() {
            words.push(std::mem::take(&mut cur));
        }
        prev_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
        cur.push(c.to_ascii_lowercase());
    }
    if !cur.is_empty() {
        words.push(cur);
    }
    words
}

/// Whether the words of a name name a credential (`auth` only as a word of its own: not `author`).
fn has_credential_word(words: &[String]) -> bool {
    const PARTS: &[&str] = &[
        "password",
        "passwd",
        "passphrase",
        "pwd",
        "secret",
        "token",
        "apikey",
        "credential",
        "creds",
    ];
    words.iter().enumerate().any(|(i, w)| {
        PARTS.iter().any(|p| w.contains(p))
            || w == "auth"
            || ["apikey", "accesskey", "privatekey", "authkey"].contains(&w.as_str())
            || (w == "key"
                && i > 0
                && ["api", "access", "private", "auth"].contains(&words[i - 1].as_str()))
    })
}

/// Provider names whose credentials the provider rule looks for, as words of a name.
const PROVIDERS: &[&str] = &[
    "adafruit",
    "adobe",
    "airtable",
    "algolia",
    "alibaba",
    "asana",
    "atlassian",
    "confluence",
    "jira",
    "beamer",
    "bitbucket",
    "bittrex",
    "cloudflare",
    "codecov",
    "cohere",
    "coinbase",
    "confluent",
    "contentful",
    "datadog",
    "dnkey",
    "discord",
    "droneci",
    "dropbox",
    "etsy",
    "facebook",
    "fastly",
    "finicity",
    "finnhub",
    "flickr",
    "freshbooks",
    "gitter",
    "gocardless",
    "heroku",
    "hubspot",
    "intercom",
    "jfrog",
    "artifactory",
    "bintray",
    "xray",
    "kraken",
    "kucoin",
    "launchdarkly",
    "linear",
    "linkedin",
    "lob",
    "looker",
    "mailchimp",
    "mailgun",
    "mapbox",
    "mattermost",
    "messagebird",
    "meraki",
    "netlify",
    "newrelic",
    "nytimes",
    "okta",
    "plaid",
    "privateai",
    "rapidapi",
    "sendbird",
    "sentry",
    "snyk",
    "sonar",
    "squarespace",
    "sumo",
    "sumologic",
    "telegram",
    "telegr",
    "travis",
    "twitch",
    "twitter",
    "typeform",
    "yandex",
    "zendesk",
    "contribsys",
    "sourcegraph",
];

/// Whether a word of the name (or two adjacent words: `new_relic`, `MessageBird`) is a provider's.
pub(crate) fn is_provider_name(name: &str) -> bool {
    let words = name_words(name);
    let word_is = |w: &str| {
        PROVIDERS
            .iter()
            .any(|p| w == *p || (p.len() >= 5 && w.starts_with(p)))
    };
    words.iter().any(|w| word_is(w))
        || words
            .windows(2)
            .any(|p| word_is(&format!("{}{}", p[0], p[1])))
        || name.to_ascii_lowercase().contains("co_api_key")
}

pub(crate) fn generic_accepts(name: &str, value: &str, quoted: bool, provider: bool) -> bool {
    let words = name_words(name);
    if provider && !is_provider_name(name) {
        return false;
    }
    if !provider && !has_credential_word(&words) {
        return false;
    }
    let mixed =
        value.bytes().any(|b| b.is_ascii_digit()) && value.bytes().any(|b| b.is_ascii_alphabetic());
    if let Some(last) = words.last()
        && GENERIC_NAME_SUFFIXES.contains(&last.as_str())
        // a provider's access id (`sumologic.accessId`) is half of its credential
        && !(provider && last == "id" && mixed)
    {
        return false;
    }
    let joined = words.join("_");
    if words
        .iter()
        .any(|w| GENERIC_NAME_DENY.contains(&w.as_str()))
        || GENERIC_NAME_DENY
            .iter()
            .any(|d| d.contains('_') && joined.contains(d))
    {
        return false;
    }
    // passwords are chosen by people: shorter and less random than generated tokens
    let password = words
        .iter()
        .any(|w| w.contains("pass") || w.contains("pwd"));
    let symbol = value.bytes().any(|b| !b.is_ascii_alphanumeric());
    let (min_len, min_entropy) = if provider {
        (10, 2.8)
    } else if password && value.bytes().any(|b| b.is_ascii_alphabetic()) && (mixed || symbol) {
        (8, 2.9)
    } else {
        (GENERIC_MIN_LEN, GENERIC_MIN_ENTROPY)
    };
    if value.len() < min_len || is_placeholder(value) {
        return false;
    }
    // Stripe's test-mode and publishable keys: not secrets, whatever name holds them
    if ["sk_test_", "rk_test_", "pk_test_", "pk_live_"]
        .iter()
        .any(|p| value.starts_with(p))
    {
        return false;
    }
    if value.contains("://") || value.starts_with('/') || value.starts_with("./") {
        return false;
    }
    if value.contains(char::is_whitespace) {
        // prose, not a credential
        return false;
    }
    // identifiers and dotted paths: settings.SECRET_KEY, get_token_from_env, a Rust path after
    // `::` (`secrets::MAX_LEN`)
    let identifier_like = value
        .bytes()
        .all(|b| b.is_ascii_alphabetic() || b == b'_' || b == b'.' || b == b'-' || b == b':');
    if value.starts_with(':') || (identifier_like && (!quoted || value.contains(['_', '.', ':']))) {
        return false;
    }
    // code, not a value: `proc_macro2::TokenStream`, `&self.token`, `*secret`
    if value.contains("::") || (!quoted && value.starts_with(['&', '*'])) {
        return false;
    }
    // words run together: `DecodePrivateKey`, `tokenSource`, `x25519_private_key_bytes`,
    // `TLS13_AES_128_GCM_SHA256`
    if is_camel_case_words(value) || is_snake_case_words(value) {
        return false;
    }
    // file paths: config/slack.yml
    let path_like = value
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'/' | b'-'))
        && value.contains('/')
        && value.rsplit('/').next().is_some_and(|last| {
            last.rsplit_once('.').is_some_and(|(stem, ext)| {
                !stem.is_empty()
                    && (1..=5).contains(&ext.len())
                    && ext.bytes().all(|b| b.is_ascii_lowercase())
            })
        });
    if path_like {
        return false;
    }
    // version strings and dotted numbers: 1.2.3, 10.0.0.1
    if value.contains('.') && value.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return false;
    }
    entropy(value) >= min_entropy && !has_identifier_words(value)
}

/// Letters only, as words joined in camel case (`DecodePrivateKey`, `readTokenFile`): a generated
/// value of letters practically never alternates like that.
fn is_camel_case_words(value: &str) -> bool {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| Regex::new("^(?:[a-z]{2,}|[A-Z][a-z]+)(?:[A-Z][a-z]+)+$").expect("valid"))
        .is_match(value)
}

/// Three or more words joined by `_`, each all lower case or all upper case (digits allowed) and
/// short: a name in code. Generated values with `_` mix cases, or have a long random part
/// (`test_pub_fd2fa4cbb94…`).
fn is_snake_case_words(value: &str) -> bool {
    let parts: Vec<&str> = value.split('_').collect();
    parts.len() >= 3
        && value.starts_with(|c: char| c.is_ascii_alphabetic())
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.len() <= 12
                && p.bytes().all(|b| b.is_ascii_alphanumeric())
                && (p.bytes().all(|b| !b.is_ascii_uppercase())
                    || p.bytes().all(|b| !b.is_ascii_lowercase()))
        })
}

/// Four or more capitalised words in a row (`AgencyIdentificationCodeContent`): an identifier, not a
/// generated value (random text holds such a run with negligible probability).
fn has_identifier_words(value: &str) -> bool {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| Regex::new("(?:[A-Z][a-z]{3,}){4}").expect("valid"))
        .is_match(value)
}

/// Passwords in URLs and `curl --user`: anything but a placeholder, a variable, the user name
/// repeated, or a word that says it is a password.
pub(crate) fn url_password_accepts(user: &str, password: &str, whole: &str) -> bool {
    // hosts reserved for documentation (RFC 2606): an example, not a leak
    let host = whole.rsplit('@').next().unwrap_or("").to_ascii_lowercase();
    let host = host.split([':', '/']).next().unwrap_or("");
    if ["example.com", "example.org", "example.net"]
        .iter()
        .any(|d| host == *d || host.ends_with(&format!(".{d}")))
        || [".example", ".test", ".invalid"]
            .iter()
            .any(|t| host.ends_with(t))
    {
        return false;
    }
    let p = password
        .trim_end_matches([',', ';', ')'])
        .trim_matches(|c| c == '"' || c == '\'');
    // `{secret}` written literally is a value; `{password}` and `{{ var }}` are not
    let p = match p.strip_prefix('{').and_then(|q| q.strip_suffix('}')) {
        Some(inner) if !inner.starts_with('{') => inner,
        _ => p,
    };
    let lower = p.to_ascii_lowercase();
    if p.len() < 3 || p.eq_ignore_ascii_case(user) || user.starts_with(['<', '[']) {
        return false;
    }
    if p.starts_with(['$', '%', '{', '<', '[', '*', '(', '`'])
        || p.ends_with(['>', ']', '}'])
        || p.contains("${")
        || (p.bytes().all(|b| b.is_ascii_alphabetic() || b == b'_') && p.len() < 12)
    {
        return false;
    }
    const WORDS: &[&str] = &[
        "password", "passwd", "pass", "pwd", "secret", "token", "changeme", "changeit", "test",
        "example", "xxx", "yyy", "***", "...", "user", "username", "admin", "root", "guest",
        "postgres", "mysql", "redis", "mongo", "foo", "bar", "abc", "123", "1234", "12345",
        "123456", "pw",
    ];
    if WORDS.contains(&lower.as_str()) || PLACEHOLDER_WORDS.iter().any(|w| lower.contains(w)) {
        return false;
    }
    !looks_filled_in(p) && entropy(p) >= 1.5
}

/// Base64url decoding (padding optional), for JWT validation.
pub(crate) fn base64url_decode(s: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
    const URL_SAFE_ANY_PADDING: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::URL_SAFE,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    URL_SAFE_ANY_PADDING.decode(s).ok()
}

/// Largest JWT header/payload part we bother decoding.
const JWT_MAX_PART: usize = 16 * 1024;

pub(crate) fn jwt_valid(token: &str) -> bool {
    let mut parts = token.split('.');
    let (Some(header), Some(payload)) = (parts.next(), parts.next()) else {
        return false;
    };
    if header.len() > JWT_MAX_PART || payload.len() > JWT_MAX_PART {
        return false;
    }
    let json_object = |part: &str| -> Option<serde_json::Map<String, serde_json::Value>> {
        let bytes = base64url_decode(part)?;
        match serde_json::from_slice::<serde_json::Value>(&bytes).ok()? {
            serde_json::Value::Object(m) => Some(m),
            _ => None,
        }
    };
    match json_object(header) {
        Some(h) if matches!(h.get("alg"), Some(serde_json::Value::String(_))) => {}
        // a header damaged after `{"alg":` (hand-edited, truncated) still marks a token
        None if header.starts_with("eyJhbGciOi") => {}
        _ => return false,
    }
    json_object(payload).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_consistent() {
        assert_eq!(RULES.len(), RULES_LEN);
        for (i, r) in RULES.iter().enumerate() {
            assert_eq!(compiled(i).len(), r.patterns.len());
            for k in r.keywords {
                assert_eq!(
                    *k,
                    k.to_ascii_lowercase(),
                    "keyword of {} must be lowercase",
                    r.id
                );
            }
            assert_eq!(rule_index(r.id), Some(i), "duplicate id {}", r.id);
            for re in compiled(i) {
                assert!(re.captures_len() >= 2, "{} needs a capture group", r.id);
            }
        }
    }

    #[test]
    fn entropy_values() {
        assert_eq!(entropy("aaaa"), 0.0);
        assert!((entropy("abcd") - 2.0).abs() < 1e-9);
    }

    #[test]
    fn filled_in() {
        assert!(looks_filled_in("abXXXXXcd"));
        assert!(looks_filled_in("0123456789"));
        assert!(!looks_filled_in("q8Zr2LmT0vWn"));
    }

    #[test]
    fn base64url() {
        assert_eq!(
            base64url_decode("eyJhbGciOiJIUzI1NiJ9").unwrap(),
            br#"{"alg":"HS256"}"#
        );
    }
}
