//! The workflow's `[actions]` table: where email goes out, the recorded HTTP
//! responses rehearsals show, the refs no action may push to, and the
//! environment variables actions read (which no sandboxed command may see).

use std::time::Duration;

use serde::Serialize;
use toml::de::{DeTable, DeValue};

use crate::diag::{self, Diagnostics};

pub const DEFAULT_PROTECTED_REFS: &[&str] = &["refs/heads/main", "refs/heads/master"];
pub const DEFAULT_MAX_EMAIL_BYTES: u64 = 10 << 20;

#[derive(Debug, Clone, Serialize)]
pub struct ActionSettings {
    pub smtp: Option<Smtp>,
    pub fixtures: Vec<Fixture>,
    /// Ref patterns (`*` wildcard) no `git-push` action may target.
    pub protected_refs: Vec<String>,
    pub max_email_bytes: u64,
    /// `env`: environment variables airlock reads for actions of every lane
    /// (`${NAME}` in a header, a command's `env`) when it applies them;
    /// never passed to a sandboxed command.
    pub env: Vec<String>,
}

impl Default for ActionSettings {
    fn default() -> Self {
        ActionSettings {
            smtp: None,
            fixtures: Vec::new(),
            protected_refs: DEFAULT_PROTECTED_REFS
                .iter()
                .map(|s| s.to_string())
                .collect(),
            max_email_bytes: DEFAULT_MAX_EMAIL_BYTES,
            env: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Tls {
    /// Plain connection upgraded with STARTTLS; refused if the server cannot.
    Starttls,
    /// TLS from the first byte (port 465).
    Tls,
    /// No encryption: only for a server on the loopback.
    None,
}

/// `[actions.smtp]`: the server email actions are sent through. Credentials
/// come from the environment variables named here, never from an action.
#[derive(Debug, Clone, Serialize)]
pub struct Smtp {
    pub host: String,
    pub port: u16,
    pub tls: Tls,
    pub username_env: Option<String>,
    pub password_env: Option<String>,
    #[serde(skip)]
    pub timeout: Duration,
}

/// `[[actions.fixtures]]`: a recorded response shown as an HTTP action's
/// rehearsal when the method matches and the URL matches the pattern.
#[derive(Debug, Clone, Serialize)]
pub struct Fixture {
    pub method: String,
    pub url: String,
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

pub(crate) fn parse(root: &DeTable<'_>, diags: &mut Diagnostics<'_>) -> ActionSettings {
    let mut out = ActionSettings::default();
    let Some(table) = diag::get(root, "actions").and_then(|v| diag::table(v, "actions", diags))
    else {
        return out;
    };
    diag::unknown_keys(
        table,
        &[
            "smtp",
            "fixtures",
            "protected_refs",
            "max_email_bytes",
            "env",
        ],
        "[actions]",
        diags,
    );
    if let Some(v) = diag::get(table, "env") {
        out.env = env_names(v, "env", diags);
    }
    if let Some(v) = diag::get(table, "protected_refs") {
        out.protected_refs = diag::string_list(v, "protected_refs", diags)
            .unwrap_or_default()
            .into_iter()
            .map(|(s, _)| s)
            .collect();
    }
    if let Some(v) = diag::get(table, "max_email_bytes") {
        out.max_email_bytes =
            diag::positive(v, "max_email_bytes", diags).unwrap_or(out.max_email_bytes);
    }
    if let Some(v) = diag::get(table, "smtp")
        && let Some(smtp) = diag::table(v, "actions.smtp", diags)
    {
        out.smtp = parse_smtp(smtp, v.span(), diags);
    }
    if let Some(v) = diag::get(table, "fixtures") {
        out.fixtures = parse_fixtures(v, diags);
    }
    out
}

fn parse_smtp(
    table: &DeTable<'_>,
    span: std::ops::Range<usize>,
    diags: &mut Diagnostics<'_>,
) -> Option<Smtp> {
    diag::unknown_keys(
        table,
        &[
            "host",
            "port",
            "tls",
            "username_env",
            "password_env",
            "timeout",
        ],
        "[actions.smtp]",
        diags,
    );
    let host = match diag::get(table, "host") {
        Some(v) => diag::string(v, "host", diags)?,
        None => {
            diags.error(
                span,
                "[actions.smtp] has no `host`",
                Some("add `host = \"smtp.example.com\"`".into()),
            );
            return None;
        }
    };
    let tls = match diag::get(table, "tls") {
        None => Tls::Starttls,
        Some(v) => match diag::string(v, "tls", diags)?.as_str() {
            "starttls" => Tls::Starttls,
            "tls" => Tls::Tls,
            "none" => Tls::None,
            other => {
                diags.error(
                    v.span(),
                    format!("`tls` must be \"starttls\", \"tls\" or \"none\", found \"{other}\""),
                    None,
                );
                return None;
            }
        },
    };
    if tls == Tls::None && !is_loopback(&host) {
        diags.error(
            span.clone(),
            format!("`tls = \"none\"` would send mail and credentials to {host} unencrypted"),
            Some("use \"starttls\" or \"tls\"; \"none\" is only for a server on the loopback (127.0.0.1, ::1, localhost)".into()),
        );
    }
    let port = match diag::get(table, "port") {
        None => match tls {
            Tls::Tls => 465,
            Tls::Starttls => 587,
            Tls::None => 25,
        },
        Some(v) => match diag::positive(v, "port", diags).map(u16::try_from) {
            Some(Ok(p)) => p,
            Some(Err(_)) => {
                diags.error(v.span(), "`port` must be at most 65535", None);
                return None;
            }
            None => return None,
        },
    };
    let env_name = |key: &str, diags: &mut Diagnostics<'_>| {
        let v = diag::get(table, key)?;
        let name = diag::string(v, key, diags)?;
        if !valid_env_name(&name) {
            diags.error(
                v.span(),
                format!("`{key}` must name an environment variable, found `{name}`"),
                Some("letters, digits and `_`, not starting with a digit".into()),
            );
            return None;
        }
        Some(name)
    };
    let username_env = env_name("username_env", diags);
    let password_env = env_name("password_env", diags);
    let timeout = match diag::get(table, "timeout") {
        Some(v) => crate::durations::parse_timeout(v, diags).unwrap_or(Duration::from_secs(30)),
        None => Duration::from_secs(30),
    };
    Some(Smtp {
        host,
        port,
        tls,
        username_env,
        password_env,
        timeout,
    })
}

fn parse_fixtures(value: &toml::Spanned<DeValue<'_>>, diags: &mut Diagnostics<'_>) -> Vec<Fixture> {
    let mut out = Vec::new();
    let DeValue::Array(items) = value.get_ref() else {
        diags.error(
            value.span(),
            "`actions.fixtures` must be an array of tables",
            Some("write `[[actions.fixtures]]` with `method`, `url`, `status` and `body`".into()),
        );
        return out;
    };
    for (i, item) in items.iter().enumerate() {
        let context = format!("[[actions.fixtures]] #{}", i + 1);
        let Some(t) = diag::table(item, "actions.fixtures", diags) else {
            continue;
        };
        diag::unknown_keys(
            t,
            &["method", "url", "status", "headers", "body"],
            &context,
            diags,
        );
        let field = |key: &str, diags: &mut Diagnostics<'_>| match diag::get(t, key) {
            Some(v) => diag::string(v, key, diags),
            None => {
                diags.error(
                    item.span(),
                    format!("{context} has no `{key}`"),
                    Some("a fixture needs `method`, `url` and `status`".into()),
                );
                None
            }
        };
        let method = field("method", diags).map(|m| m.to_ascii_uppercase());
        let url = field("url", diags);
        let status = match diag::get(t, "status") {
            Some(v) => match diag::positive(v, "status", diags) {
                Some(s @ 100..=599) => Some(s as u16),
                Some(_) => {
                    diags.error(v.span(), "`status` must be an HTTP status (100-599)", None);
                    None
                }
                None => None,
            },
            None => {
                diags.error(item.span(), format!("{context} has no `status`"), None);
                None
            }
        };
        let body = diag::get(t, "body")
            .and_then(|v| diag::string(v, "body", diags))
            .unwrap_or_default();
        let headers = diag::get(t, "headers")
            .map(|v| string_table(v, "headers", diags))
            .unwrap_or_default();
        if let (Some(method), Some(url), Some(status)) = (method, url, status) {
            out.push(Fixture {
                method,
                url,
                status,
                headers,
                body,
            });
        }
    }
    out
}

/// A list of environment variable names; each invalid one is a diagnostic.
pub(crate) fn env_names(
    value: &toml::Spanned<DeValue<'_>>,
    key: &str,
    diags: &mut Diagnostics<'_>,
) -> Vec<String> {
    let mut out = Vec::new();
    for (name, span) in diag::string_list(value, key, diags).unwrap_or_default() {
        if valid_env_name(&name) {
            out.push(name);
        } else {
            diags.error(
                span,
                format!("`{key}` must name environment variables, found `{name}`"),
                Some("letters, digits and `_`, not starting with a digit".into()),
            );
        }
    }
    out
}

/// A table of string values, in file order.
pub(crate) fn string_table(
    value: &toml::Spanned<DeValue<'_>>,
    key: &str,
    diags: &mut Diagnostics<'_>,
) -> Vec<(String, String)> {
    let Some(table) = diag::table(value, key, diags) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (k, v) in table.iter() {
        if let Some(s) = diag::string(v, k.get_ref(), diags) {
            out.push((k.get_ref().to_string(), s));
        }
    }
    out
}

pub fn valid_env_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

pub fn is_loopback(host: &str) -> bool {
    let h = host.trim_start_matches('[').trim_end_matches(']');
    h == "localhost"
        || h.parse::<core::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}
