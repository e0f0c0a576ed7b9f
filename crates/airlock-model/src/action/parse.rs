//! The action file: TOML written by the agent, so hostile input. Every
//! problem is reported at once with its line and column.
//!
//! ```toml
//! kind = "http"                       # http | email | git-push | command
//! name = "notify"                     # default: the file's stem
//! scopes = ["http:POST:hooks.example.com/*"]
//! method = "POST"
//! url = "https://hooks.example.com/deploy"
//! body = '{"ref": "main"}'
//! [headers]
//! Content-Type = "application/json"
//! Authorization = "Bearer ${HOOK_TOKEN}"   # from airlock's environment, if the workflow lists it in `[actions] env`
//! [undo]                              # optional compensation, run by `airlock rollback`
//! kind = "http"
//! …
//! ```

use std::ops::Range;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

pub use crate::action::mask::env_refs;
use crate::action::settings::{string_table, valid_env_name};
use crate::action::{ActionSpec, Body, CommandAction, Email, GitPush, Http, scope};
use crate::diag::{self, Diagnostics};
use crate::error::{Error, Result};
use crate::names::valid_name;

pub const KINDS: &[&str] = &["http", "email", "git-push", "command"];
const COMMON: &[&str] = &["kind", "name", "description", "scopes", "undo"];
const HTTP_KEYS: &[&str] = &["method", "url", "headers", "body"];
const EMAIL_KEYS: &[&str] = &["from", "to", "cc", "subject", "body", "attachments"];
const PUSH_KEYS: &[&str] = &["remote", "ref"];
const COMMAND_KEYS: &[&str] = &["argv", "cwd", "env", "rehearse", "timeout"];
pub const METHODS: &[&str] = &["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"];
/// Headers airlock sets itself, or that would let an action smuggle a
/// second request past its preview.
const RESERVED_HEADERS: &[&str] = &[
    "idempotency-key",
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "upgrade",
];

/// A parsed action file: the action and its optional compensation.
#[derive(Debug, Clone)]
pub struct Parsed {
    pub action: ActionSpec,
    pub undo: Option<ActionSpec>,
}

/// Parses an action file. `default_name` is used when it has no `name`.
pub fn parse(text: &str, file: &str, default_name: &str) -> Result<Parsed> {
    let mut diags = Diagnostics::new(text);
    let doc = diag::parse(text, &mut diags);
    let root = doc.get_ref();
    let name = match diag::get(root, "name") {
        Some(v) => diag::string(v, "name", &mut diags).and_then(|n| {
            if valid_name(&n) {
                Some(n)
            } else {
                diags.error(
                    v.span(),
                    format!("action name `{}` is not allowed", n.escape_debug()),
                    Some("use letters, digits, `-` and `_`, at most 64".into()),
                );
                None
            }
        }),
        None if valid_name(default_name) => Some(default_name.to_string()),
        None => {
            diags.at_end(
                format!("the action has no `name` and the file name `{default_name}` is not one"),
                Some("add `name = \"…\"` (letters, digits, `-` and `_`)".into()),
            );
            None
        }
    };
    let action = body_and_scopes(root, None, &mut diags, true);
    let undo = match diag::get(root, "undo") {
        Some(v) => diag::table(v, "undo", &mut diags)
            .and_then(|t| body_and_scopes(t, Some(v.span()), &mut diags, false)),
        None => None,
    };
    if !diags.is_empty() {
        return Err(Error::InvalidToml {
            code: crate::error::Code::InvalidAction,
            path: file.to_string(),
            diagnostics: diags.into_sorted(),
        });
    }
    let name = name.unwrap_or_default();
    let Some((description, scopes, body)) = action else {
        return Err(Error::Invalid(format!(
            "{file} could not be read as an action"
        )));
    };
    Ok(Parsed {
        action: ActionSpec {
            name: name.clone(),
            description,
            scopes,
            body,
        },
        undo: undo.map(|(description, scopes, body)| ActionSpec {
            name,
            description,
            scopes,
            body,
        }),
    })
}

type Fields = (Option<String>, Vec<String>, Body);

/// The kind, scopes and kind-specific fields of an action (or its undo).
fn body_and_scopes(
    table: &DeTable<'_>,
    at: Option<Range<usize>>,
    diags: &mut Diagnostics<'_>,
    top: bool,
) -> Option<Fields> {
    let context = if top { "the action" } else { "[undo]" };
    let missing = |diags: &mut Diagnostics<'_>, msg: String, help: String| match &at {
        Some(span) => diags.error(span.clone(), msg, Some(help)),
        None => diags.at_end(msg, Some(help)),
    };
    let kind = match diag::get(table, "kind") {
        Some(v) => diag::string(v, "kind", diags).and_then(|k| {
            if KINDS.contains(&k.as_str()) {
                Some(k)
            } else {
                let help = diag::did_you_mean(&k, KINDS.iter().copied())
                    .unwrap_or_else(|| format!("kinds are: {}", KINDS.join(", ")));
                diags.error(
                    v.span(),
                    format!("unknown action kind `{}`", k.escape_debug()),
                    Some(help),
                );
                None
            }
        }),
        None => {
            missing(
                diags,
                format!("{context} has no `kind`"),
                format!("add `kind = \"…\"`: one of {}", KINDS.join(", ")),
            );
            None
        }
    };
    let kind_keys: &[&str] = match kind.as_deref() {
        Some("http") => HTTP_KEYS,
        Some("email") => EMAIL_KEYS,
        Some("git-push") => PUSH_KEYS,
        Some("command") => COMMAND_KEYS,
        _ => &[],
    };
    if kind.is_some() {
        let allowed: Vec<&str> = if top {
            COMMON.iter().chain(kind_keys).copied().collect()
        } else {
            ["kind", "description", "scopes"]
                .iter()
                .chain(kind_keys)
                .copied()
                .collect()
        };
        let ctx = format!("{context} (kind `{}`)", kind.as_deref().unwrap_or_default());
        diag::unknown_keys(table, &allowed, &ctx, diags);
    }
    let description =
        diag::get(table, "description").and_then(|v| diag::string(v, "description", diags));
    let scopes = match diag::get(table, "scopes") {
        Some(v) => {
            let list = diag::string_list(v, "scopes", diags).unwrap_or_default();
            if list.is_empty() && matches!(v.get_ref(), DeValue::Array(_)) {
                diags.error(
                    v.span(),
                    "`scopes` is empty: every action declares what it needs",
                    Some(scope::FORMS.into()),
                );
            }
            let mut scopes = Vec::new();
            for (s, span) in list {
                match scope::check_pattern(&s) {
                    Ok(()) => scopes.push(s),
                    Err(e) => diags.error(
                        span,
                        format!("invalid scope `{}`: {e}", s.escape_debug()),
                        Some(scope::FORMS.into()),
                    ),
                }
            }
            scopes
        }
        None => {
            missing(
                diags,
                format!("{context} has no `scopes`"),
                format!("declare what it needs: {}", scope::FORMS),
            );
            Vec::new()
        }
    };
    let body = match kind.as_deref()? {
        "http" => http(table, &missing, diags).map(Body::Http),
        "email" => email(table, &missing, diags).map(Body::Email),
        "git-push" => git_push(table, &missing, diags).map(Body::GitPush),
        _ => command(table, &missing, diags).map(Body::Command),
    }?;
    Some((description, scopes, body))
}

type Missing<'m> = dyn Fn(&mut Diagnostics<'_>, String, String) + 'm;

fn required(
    table: &DeTable<'_>,
    key: &str,
    help: &str,
    missing: &Missing<'_>,
    diags: &mut Diagnostics<'_>,
) -> Option<(String, Range<usize>)> {
    match diag::get(table, key) {
        Some(v) => diag::string(v, key, diags).map(|s| (s, v.span())),
        None => {
            missing(diags, format!("no `{key}`"), help.to_string());
            None
        }
    }
}

/// No CR, LF or NUL: a value that becomes a header line must stay one line.
/// Other control characters (tab aside) are refused too: no server or
/// client accepts them, so they would only fail after approval.
fn one_line(value: &str, key: &str, span: Range<usize>, diags: &mut Diagnostics<'_>) -> bool {
    if value.contains(['\r', '\n', '\0']) {
        diags.error(
            span,
            format!("`{key}` contains a line break or NUL: header injection is refused"),
            Some("a header value must be a single line".into()),
        );
        return false;
    }
    if let Some(c) = value.chars().find(|c| c.is_control() && *c != '\t') {
        diags.error(
            span,
            format!("`{key}` contains the control character {:?}", c),
            Some("header values are printable text".into()),
        );
        return false;
    }
    true
}

fn http(table: &DeTable<'_>, missing: &Missing<'_>, diags: &mut Diagnostics<'_>) -> Option<Http> {
    let method = required(table, "method", "add `method = \"POST\"`", missing, diags).and_then(
        |(m, span)| {
            let upper = m.to_ascii_uppercase();
            if METHODS.contains(&upper.as_str()) {
                Some(upper)
            } else {
                diags.error(
                    span,
                    format!("unsupported HTTP method `{}`", m.escape_debug()),
                    Some(format!("use one of {}", METHODS.join(", "))),
                );
                None
            }
        },
    );
    let url = required(table, "url", "add `url = \"https://…\"`", missing, diags)
        .and_then(|(u, span)| check_url(&u, span, diags).then_some(u));
    let mut headers = Vec::new();
    let mut ok = true;
    if let Some(v) = diag::get(table, "headers") {
        for (name, value) in string_table(v, "headers", diags) {
            let span = v.span();
            if name.is_empty()
                || !name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
            {
                diags.error(
                    span.clone(),
                    format!("`{}` is not a valid header name", name.escape_debug()),
                    None,
                );
                ok = false;
            } else if RESERVED_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
                diags.error(
                    span.clone(),
                    format!("header `{name}` is set by airlock and cannot be given"),
                    Some("airlock sends `Idempotency-Key` itself and computes `Host` and `Content-Length`".into()),
                );
                ok = false;
            }
            ok &= one_line(&value, &format!("headers.{name}"), span.clone(), diags);
            for var in env_refs(&value) {
                if !valid_env_name(&var) {
                    diags.error(
                        span.clone(),
                        format!(
                            "`${{{var}}}` in header `{name}` is not an environment variable name"
                        ),
                        None,
                    );
                    ok = false;
                }
            }
            // The preview masks this header's literal text, so the reviewer
            // could not read what would be sent: only a reference to
            // airlock's environment (after an optional scheme word) is
            // accepted there.
            if crate::action::mask::is_sensitive_header(&name)
                && crate::action::mask::mask(&value) != value
            {
                diags.error(
                    span.clone(),
                    format!(
                        "header `{name}` is masked in the preview, so its value cannot be written in the action file"
                    ),
                    Some(format!(
                        "a reviewer cannot read a masked value, so it must come from airlock's environment by reference: write `{name} = \"${{NAME}}\"` (or `\"Bearer ${{NAME}}\"`), and list NAME in `[actions] env` or the lane's `action_env`"
                    )),
                );
                ok = false;
            }
            headers.push((name, value));
        }
    }
    let body = diag::get(table, "body").and_then(|v| diag::string(v, "body", diags));
    if let Some(u) = url.as_deref().and_then(|u| url::Url::parse(u).ok())
        && u.scheme() == "http"
        && !crate::action::settings::is_loopback(u.host_str().unwrap_or_default())
        && headers.iter().any(|(name, value)| {
            crate::action::mask::is_sensitive_header(name) || !env_refs(value).is_empty()
        })
        && let Some(v) = diag::get(table, "url")
    {
        diags.error(
            v.span(),
            "`url` is plain http but the request carries credentials",
            Some(
                "use https; plain http is accepted for credentials only to a loopback server"
                    .into(),
            ),
        );
        ok = false;
    }
    Some(Http {
        method: method?,
        url: url?,
        headers,
        body,
    })
    .filter(|_| ok)
}

/// Only http(s), a host, and no credentials: what the request carries must
/// be visible in the preview and come from the environment.
fn check_url(text: &str, span: Range<usize>, diags: &mut Diagnostics<'_>) -> bool {
    let url = match url::Url::parse(text) {
        Ok(u) => u,
        Err(e) => {
            diags.error(span, format!("`url` is not a valid URL: {e}"), None);
            return false;
        }
    };
    if !matches!(url.scheme(), "http" | "https") {
        diags.error(
            span,
            format!("`url` must be http or https, found `{}`", url.scheme()),
            None,
        );
        return false;
    }
    if !url.username().is_empty() || url.password().is_some() {
        diags.error(
            span,
            "`url` has credentials embedded in it",
            Some("remove `user:password@`; send credentials in a header that names an environment variable, e.g. `Authorization = \"Bearer ${TOKEN}\"`".into()),
        );
        return false;
    }
    if url.host_str().is_none_or(str::is_empty) {
        diags.error(span, "`url` has no host", None);
        return false;
    }
    // Scopes are checked on the parsed URL and the request goes out as
    // written: the two must be the same text, or `/admin/%2e%2e/public`
    // would be checked as `/public` and sent as `/admin/..`.
    if url.as_str() != text {
        diags.error(
            span,
            format!(
                "`url` is not in canonical form: it reads as `{}`",
                url.as_str().escape_debug()
            ),
            Some(format!(
                "write `url = \"{}\"`, exactly what is sent and checked against the scopes",
                url.as_str().escape_debug()
            )),
        );
        return false;
    }
    true
}

fn addresses(table: &DeTable<'_>, key: &str, diags: &mut Diagnostics<'_>) -> Option<Vec<String>> {
    let v = diag::get(table, key)?;
    let list: Vec<(String, Range<usize>)> = match v.get_ref() {
        DeValue::String(s) => vec![(s.to_string(), v.span())],
        _ => diag::string_list(v, key, diags)?,
    };
    let mut out = Vec::new();
    for (addr, span) in list {
        if one_line(&addr, key, span.clone(), diags) {
            if valid_address(&addr) {
                out.push(addr);
            } else {
                diags.error(
                    span,
                    format!(
                        "`{}` in `{key}` is not an email address",
                        addr.escape_debug()
                    ),
                    Some("write `user@example.com` or `Name <user@example.com>`".into()),
                );
            }
        }
    }
    Some(out)
}

/// `local@domain` (optionally `Name <local@domain>`), printable ASCII, no
/// spaces or angle brackets inside the address.
pub fn valid_address(addr: &str) -> bool {
    if addr.contains(['\r', '\n', '\0']) {
        return false;
    }
    if let Some(l) = addr.rfind('<') {
        let name = addr[..l].trim();
        if name.contains(['<', '>', '"']) || !addr.trim_end().ends_with('>') {
            return false;
        }
    }
    let bare = scope::bare_address(addr);
    let Some((local, domain)) = bare.rsplit_once('@') else {
        return false;
    };
    let good = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_graphic() && !b"<>()[]\\,;:\"@".contains(&b))
    };
    good(local) && good(domain) && domain.contains('.') || good(local) && domain == "localhost"
}

fn email(table: &DeTable<'_>, missing: &Missing<'_>, diags: &mut Diagnostics<'_>) -> Option<Email> {
    let from = required(
        table,
        "from",
        "add `from = \"bot@example.com\"`",
        missing,
        diags,
    )
    .and_then(|(f, span)| {
        if !one_line(&f, "from", span.clone(), diags) {
            return None;
        }
        if valid_address(&f) {
            Some(f)
        } else {
            diags.error(
                span,
                format!("`from` is not an email address: `{}`", f.escape_debug()),
                None,
            );
            None
        }
    });
    let to = addresses(table, "to", diags).unwrap_or_default();
    let cc = addresses(table, "cc", diags).unwrap_or_default();
    if to.is_empty() && cc.is_empty() && diag::get(table, "to").is_none() {
        missing(
            diags,
            "no recipients".into(),
            "add `to = [\"team@example.com\"]`".into(),
        );
    }
    let subject = required(table, "subject", "add `subject = \"…\"`", missing, diags)
        .and_then(|(s, span)| one_line(&s, "subject", span, diags).then_some(s));
    let body = diag::get(table, "body")
        .and_then(|v| diag::string(v, "body", diags))
        .unwrap_or_default();
    let mut attachments = Vec::new();
    if let Some(v) = diag::get(table, "attachments") {
        for (path, span) in diag::string_list(v, "attachments", diags).unwrap_or_default() {
            if let Err(e) = relative_path(&path) {
                diags.error(
                    span,
                    format!("attachment `{}`: {e}", path.escape_debug()),
                    None,
                );
            } else {
                attachments.push(crate::action::Attachment {
                    path,
                    sha256: String::new(),
                    size: 0,
                });
            }
        }
    }
    Some(Email {
        from: from?,
        to,
        cc,
        subject: subject?,
        body,
        attachments,
    })
}

/// A path inside the repository: relative, no `..`, no NUL.
pub fn relative_path(path: &str) -> std::result::Result<(), &'static str> {
    if path.is_empty() {
        Err("the path is empty")
    } else if path.starts_with('/') {
        Err("paths are relative to the repository root")
    } else if path.split('/').any(|c| c == "..") {
        Err("`..` cannot appear: paths never leave the repository")
    } else if path.contains('\0') {
        Err("the path contains NUL")
    } else {
        Ok(())
    }
}

fn git_push(
    table: &DeTable<'_>,
    missing: &Missing<'_>,
    diags: &mut Diagnostics<'_>,
) -> Option<GitPush> {
    let remote = required(table, "remote", "add `remote = \"origin\"`", missing, diags).and_then(
        |(r, span)| {
            let ok = !r.is_empty()
                && !r.starts_with('-')
                && r.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
            if ok {
                Some(r)
            } else {
                diags.error(
                    span,
                    format!("`remote` must name a remote of the repository, found `{}`", r.escape_debug()),
                    Some("a remote name like `origin`; URLs are not accepted: the remote is configured by you, not the agent".into()),
                );
                None
            }
        },
    );
    let dst = required(
        table,
        "ref",
        "add `ref = \"refs/heads/release/1.0\"`: where the promoted commit goes",
        missing,
        diags,
    )
    .and_then(|(r, span)| match check_ref(&r) {
        Ok(()) => Some(r),
        Err(e) => {
            diags.error(span, format!("`ref` {e}"), Some("write a full ref name such as `refs/heads/release/1.0` or `refs/tags/v1.0`; a force push (`+`) is never staged".into()));
            None
        }
    });
    Some(GitPush {
        remote: remote?,
        dst: dst?,
        urls: Vec::new(),
    })
}

fn check_ref(r: &str) -> std::result::Result<(), String> {
    if r.starts_with('+') {
        return Err("asks for a force push (`+`)".into());
    }
    if r.contains(':') {
        return Err("is a refspec; give only the destination ref".into());
    }
    if !(r.starts_with("refs/heads/") || r.starts_with("refs/tags/")) {
        return Err(format!(
            "`{}` is not under refs/heads/ or refs/tags/",
            r.escape_debug()
        ));
    }
    let bad = r.contains("..")
        || r.contains("@{")
        || r.ends_with('/')
        || r.ends_with(".lock")
        || r.contains("//")
        || r.chars()
            .any(|c| c.is_control() || c.is_whitespace() || "~^?*[\\".contains(c));
    if bad {
        return Err(format!("`{}` is not a valid ref name", r.escape_debug()));
    }
    Ok(())
}

fn argv(
    value: &Spanned<DeValue<'_>>,
    key: &str,
    diags: &mut Diagnostics<'_>,
) -> Option<Vec<String>> {
    let list = diag::string_list(value, key, diags)?;
    if list.is_empty() {
        diags.error(
            value.span(),
            format!("`{key}` is empty"),
            Some(format!("write `{key} = [\"program\", \"arg\", …]`")),
        );
        return None;
    }
    if list.iter().any(|(a, _)| a.contains('\0')) {
        diags.error(value.span(), format!("`{key}` contains NUL"), None);
        return None;
    }
    Some(list.into_iter().map(|(a, _)| a).collect())
}

fn command(
    table: &DeTable<'_>,
    missing: &Missing<'_>,
    diags: &mut Diagnostics<'_>,
) -> Option<CommandAction> {
    let argv_v = match diag::get(table, "argv") {
        Some(v) => argv(v, "argv", diags),
        None => {
            missing(
                diags,
                "no `argv`".into(),
                "add `argv = [\"cargo\", \"publish\"]`".into(),
            );
            None
        }
    };
    let rehearse = diag::get(table, "rehearse").and_then(|v| argv(v, "rehearse", diags));
    let cwd = match diag::get(table, "cwd") {
        Some(v) => diag::string(v, "cwd", diags).and_then(|c| match relative_path(&c) {
            Ok(()) => Some(c),
            Err(_) if c == "." => Some(c),
            Err(e) => {
                diags.error(v.span(), format!("`cwd`: {e}"), None);
                None
            }
        }),
        None => Some(".".into()),
    };
    let mut env = Vec::new();
    if let Some(v) = diag::get(table, "env") {
        for (name, span) in diag::string_list(v, "env", diags).unwrap_or_default() {
            if valid_env_name(&name) {
                env.push(name);
            } else {
                diags.error(
                    span,
                    format!(
                        "`{}` is not an environment variable name",
                        name.escape_debug()
                    ),
                    None,
                );
            }
        }
    }
    let timeout = match diag::get(table, "timeout") {
        Some(v) => crate::durations::parse_timeout(v, diags)?,
        None => crate::workflow::DEFAULT_GATE_TIMEOUT,
    };
    Some(CommandAction {
        argv: argv_v?,
        cwd: cwd?,
        env,
        rehearse,
        timeout_secs: timeout.as_secs().max(1),
    })
}

/// Checks an action against the workflow: protected refs for pushes.
pub fn check_against_workflow(
    spec: &ActionSpec,
    workflow: &crate::workflow::Workflow,
) -> Result<()> {
    if let Body::Mcp(m) = &spec.body {
        check_mcp_server(spec, m, workflow)?;
    }
    if let Body::GitPush(p) = &spec.body
        && let Some(pattern) = workflow
            .actions
            .protected_refs
            .iter()
            .find(|pat| scope::matches(pat, &p.dst))
    {
        return Err(Error::refused(
            crate::error::Code::ProtectedRef,
            format!("action `{}` pushes to a protected ref", spec.name),
            vec![format!(
                "{} matches `{pattern}` in [actions] protected_refs",
                p.dst
            )],
            "push to another ref (a release branch or a tag), or change `protected_refs` in .airlock/workflow.toml yourself",
        ));
    }
    Ok(())
}

/// An MCP call goes to a server the workflow still declares, started with
/// the command that was approved.
fn check_mcp_server(
    spec: &ActionSpec,
    m: &crate::action::McpCall,
    workflow: &crate::workflow::Workflow,
) -> Result<()> {
    match workflow.mcp.server(&m.server) {
        None => Err(Error::refused(
            crate::error::Code::McpServerUnknown,
            format!(
                "action `{}` calls MCP server `{}`, which the workflow does not declare",
                spec.name, m.server
            ),
            vec![],
            format!(
                "declare it in .airlock/workflow.toml: `[mcp.servers.{}] command = [\"…\"]`",
                m.server
            ),
        )),
        Some(s) if s.command != m.command => Err(Error::refused(
            crate::error::Code::McpServerUnknown,
            format!(
                "action `{}` was staged for MCP server `{}` started as {:?}; the workflow now starts it as {:?}",
                spec.name, m.server, m.command, s.command
            ),
            vec!["an approval covers the program the call goes to".into()],
            "restore the server's `command` in .airlock/workflow.toml, or stage the call again in a new round",
        )),
        Some(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        assert!(valid_address("a@example.com"));
        assert!(valid_address("Team <team@example.com>"));
        assert!(valid_address("root@localhost"));
        assert!(!valid_address("a@example.com\r\nBcc: x@evil.org"));
        assert!(!valid_address("no-at-sign"));
        assert!(!valid_address("a b@example.com"));
        assert!(!valid_address("a@nodot"));
    }

    #[test]
    fn refs() {
        assert!(check_ref("refs/heads/release/1.0").is_ok());
        assert!(check_ref("refs/tags/v1").is_ok());
        assert!(check_ref("+refs/heads/x").is_err());
        assert!(check_ref("main").is_err());
        assert!(check_ref("HEAD:refs/heads/x").is_err());
        assert!(check_ref("refs/heads/a..b").is_err());
    }

    #[test]
    fn env_references() {
        assert_eq!(env_refs("Bearer ${TOKEN} ${X}"), vec!["TOKEN", "X"]);
        assert!(env_refs("plain").is_empty());
    }
}
