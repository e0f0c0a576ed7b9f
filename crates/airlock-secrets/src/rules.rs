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
    /// Header of a private key block; the key material is looked for by the scanner.
    PrivateKey,
    /// AWS access key id; ids ending in `EXAMPLE` are AWS's documented examples.
    AwsKeyId,
    /// Header and payload must decode (base64url) to JSON objects, the header having `"alg"`.
    Jwt,
    /// The assignment heuristic: name, value shape, entropy, placeholders.
    Generic,
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
pub(crate) const PRIVATE_KEY_ID: &str = "private-key";
pub(crate) const GCP_SA_ID: &str = "gcp-service-account-key";

/// Minimum Shannon entropy (bits per byte) of a value caught by the generic assignment rule.
pub const GENERIC_MIN_ENTROPY: f64 = 3.5;
/// Minimum length of a value caught by the generic assignment rule.
pub const GENERIC_MIN_LEN: usize = 16;

const fn random(skip: usize, min_entropy: f64) -> Check {
    Check::Random { skip, min_entropy }
}

// Name part of the generic assignment rule: something ending in (or containing, separated by
// `_`, `.` or `-`) one of the credential words.
macro_rules! generic_name {
    () => {
        r"([A-Za-z0-9_.-]*(?:password|passwd|passphrase|pwd|secret|token|api[_.-]?key|apikey|access[_.-]?key|auth[_.-]?key|private[_.-]?key|credentials?)(?:[_.-][A-Za-z0-9]+)*)"
    };
}

pub(crate) static RULES: &[RuleDef] = &[
    RuleDef {
        id: PRIVATE_KEY_ID,
        description: "private key block (PEM, OpenSSH or PGP) followed by key material",
        keywords: &["private key"],
        patterns: &[r"(-----BEGIN[ A-Z0-9]{0,30} PRIVATE KEY(?: BLOCK)?-----)"],
        check: Check::PrivateKey,
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
            r#"(?i)(?:aws[_.-]?secret[_.-]?(?:access[_.-]?)?key|secret[_.-]?access[_.-]?key)["']?\s*(?::=|=>|=|:)\s*["']?([A-Za-z0-9/+]{40})(?:[^A-Za-z0-9/+=]|$)"#,
        ],
        check: random(0, 3.5),
    },
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
    RuleDef {
        id: "azure-storage-key",
        description: "Azure storage account key (AccountKey= followed by 88 base64 characters)",
        keywords: &["accountkey"],
        patterns: &[r"(?i)AccountKey\s*=\s*([A-Za-z0-9+/]{86}==)"],
        check: random(0, 4.0),
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
        description: "GitLab token (glpat-, gldt-, glrt-, glptt- or gloas- prefix)",
        keywords: &["glpat-", "gldt-", "glrt-", "glptt-", "gloas-"],
        patterns: &[
            r"(?-u:\b)((?:glpat|gldt|glrt|glptt|gloas)-[A-Za-z0-9_-]{20,}(?:\.[A-Za-z0-9_-]+)*)",
        ],
        check: random(5, 3.3),
    },
    RuleDef {
        id: "slack-token",
        description: "Slack token (xoxb-, xoxa-, xoxp-, xoxr- or xoxs-)",
        keywords: &["xox"],
        patterns: &[r"(?-u:\b)(xox[baprs]-[0-9A-Za-z]{6,}-[0-9A-Za-z-]{8,})"],
        check: random(5, 3.0),
    },
    RuleDef {
        id: "slack-webhook",
        description: "Slack incoming webhook URL (hooks.slack.com/services/...)",
        keywords: &["hooks.slack.com"],
        patterns: &[
            r"https?://hooks\.slack\.com/(?:services|workflows|triggers)/([A-Za-z0-9+/_-]{20,})",
        ],
        check: random(0, 3.0),
    },
    RuleDef {
        id: "stripe-key",
        description: "Stripe live secret or restricted key (sk_live_ / rk_live_)",
        keywords: &["_live_"],
        patterns: &[r"(?-u:\b)((?:sk|rk)_live_[A-Za-z0-9]{20,247})(?-u:\b)"],
        check: random(8, 3.3),
    },
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
            r"(?-u:\b)(npm_[A-Za-z0-9]{36})(?-u:\b)",
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
        patterns: &[r"(?-u:\b)(sk-ant-(?:api|admin|oat|ort|sid)[0-9]{2}-[A-Za-z0-9_-]{32,})"],
        check: random(14, 3.5),
    },
    RuleDef {
        id: GENERIC_ID,
        description: "high-entropy value assigned to a password/secret/token/key name",
        keywords: &["pass", "pwd", "secret", "token", "key", "credential"],
        patterns: &[
            // quoted value: name = "value", name: 'value', "name": "value", name == "value"
            concat!(
                "(?i)",
                generic_name!(),
                r#"["']?\s*(?::=|=>|==|!=|=|:)\s*[rbfu]?["'`]([^"'`\r\n]{16,})["'`]"#
            ),
            // unquoted value: NAME=value (.env, shell, YAML, properties)
            concat!(
                "(?i)",
                generic_name!(),
                r"\s*[=:]\s*([A-Za-z0-9+/=_.~!@#%^&*-]{16,})(?:[\s,;]|$)"
            ),
        ],
        check: Check::Generic,
    },
];

/// Compiled patterns, one cell per rule, built the first time a rule's keyword is seen.
static COMPILED: [OnceLock<Vec<Regex>>; RULES_LEN] = [const { OnceLock::new() }; RULES_LEN];
const RULES_LEN: usize = 19;

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
    "fixme",
    "secret_here",
    "token_here",
    "key_here",
];

/// Placeholder test for values of a fixed token format. Only long words are used, so that a real
/// random token is practically never mistaken for a placeholder.
pub(crate) fn is_format_placeholder(random_part: &str) -> bool {
    let lower = random_part.to_ascii_lowercase();
    ["example", "placeholder", "changeme", "redacted", "dummy"]
        .iter()
        .any(|w| lower.contains(w))
        || looks_filled_in(random_part)
}

/// Placeholder test for the free-form values of the generic assignment rule.
pub(crate) fn is_placeholder(value: &str) -> bool {
    let lower = value.to_ascii_lowercase();
    if PLACEHOLDER_WORDS.iter().any(|w| lower.contains(w)) {
        return true;
    }
    // template and variable references: ${VAR}, $VAR, {{ var }}, %(var)s, <your-token>, #{var}
    let t = value.trim();
    if t.starts_with('$')
        || t.starts_with("{{")
        || t.starts_with("%(")
        || t.starts_with("#{")
        || (t.starts_with('<') && t.ends_with('>'))
        || t.contains("${")
    {
        return true;
    }
    looks_filled_in(value)
}

/// Name suffixes for which the generic rule's value is metadata about a secret, not the secret.
const GENERIC_NAME_SUFFIXES: &[&str] = &[
    "path", "file", "dir", "url", "uri", "name", "type", "id", "env", "var", "len", "length",
    "size", "count", "hash", "ttl", "expiry", "expires", "endpoint", "header", "prefix", "field",
    "format", "policy", "ref", "arn", "mode", "kind", "label", "key_id",
];

pub(crate) fn generic_accepts(name: &str, value: &str, quoted: bool) -> bool {
    let name = name.to_ascii_lowercase();
    if let Some(pos) = name.rfind(['_', '.', '-']) {
        let suffix = &name[pos + 1..];
        if GENERIC_NAME_SUFFIXES.contains(&suffix) {
            return false;
        }
    }
    if value.len() < GENERIC_MIN_LEN || is_placeholder(value) {
        return false;
    }
    if value.contains("://") || value.starts_with('/') || value.starts_with("./") {
        return false;
    }
    if value.contains(char::is_whitespace) {
        // prose, not a credential
        return false;
    }
    // identifiers and dotted paths: settings.SECRET_KEY, get_token_from_env
    let identifier_like = value
        .bytes()
        .all(|b| b.is_ascii_alphabetic() || b == b'_' || b == b'.' || b == b'-');
    if identifier_like && (!quoted || value.contains(['_', '.'])) {
        return false;
    }
    entropy(value) >= GENERIC_MIN_ENTROPY
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
    let Some(h) = json_object(header) else {
        return false;
    };
    if !matches!(h.get("alg"), Some(serde_json::Value::String(_))) {
        return false;
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
