//! Scopes: what an action needs (`http:POST:hooks.example.com/deploy`) and
//! what a lane grants (`http:POST:hooks.example.com/*`). No lane grants any
//! scope unless the workflow says so.
//!
//! An action declares its scopes; airlock also derives the scopes its fields
//! actually need, so a declaration cannot understate what the action does.

use crate::action::{ActionSpec, Body};
use crate::error::{Error, Result};
use crate::workflow::Workflow;

pub use crate::action::pattern::{FORMS, check_pattern, matches};

/// The scopes an action's fields need, derived by airlock. A command's are
/// the ones it declares: what a program does is not in its argv.
pub fn derived(spec: &ActionSpec) -> Vec<String> {
    match &spec.body {
        Body::Http(h) => match url::Url::parse(&h.url) {
            Ok(u) => {
                let host = match (u.host_str(), u.port()) {
                    (Some(h), Some(p)) => format!("{h}:{p}"),
                    (Some(h), None) => h.to_string(),
                    _ => String::new(),
                };
                vec![format!("http:{}:{host}{}", h.method, u.path())]
            }
            Err(_) => Vec::new(),
        },
        // Who it goes to, and who it claims to be from.
        Body::Email(e) => std::iter::once(format!("email:from:{}", bare_address(&e.from)))
            .chain(
                e.to.iter()
                    .chain(&e.cc)
                    .map(|a| format!("email:send:{}", bare_address(a))),
            )
            .collect(),
        Body::GitPush(g) => vec![format!("git:push:{}:{}", g.remote, g.dst)],
        Body::Mcp(m) => vec![format!("mcp:{}:{}", m.server, m.tool)],
        Body::Command(_) => spec
            .scopes
            .iter()
            .filter(|s| s.starts_with("command:"))
            .cloned()
            .collect(),
    }
}

/// `Name <a@b>` → `a@b`.
pub fn bare_address(addr: &str) -> &str {
    match (addr.rfind('<'), addr.rfind('>')) {
        (Some(l), Some(r)) if l < r => addr[l + 1..r].trim(),
        _ => addr.trim(),
    }
}

/// Refuses unless the declared scopes cover what the action does and the
/// run's lane grants every declared scope.
pub fn authorize(spec: &ActionSpec, workflow: &Workflow, lane: &str) -> Result<()> {
    let understated: Vec<String> = derived(spec)
        .into_iter()
        .filter(|need| !spec.scopes.iter().any(|d| matches(d, need)))
        .collect();
    if !understated.is_empty() {
        return Err(Error::refused(
            crate::error::Code::ScopeViolation,
            format!("action `{}` does more than its scopes declare", spec.name),
            understated
                .iter()
                .map(|s| format!("it needs `{s}`, which no declared scope covers"))
                .collect(),
            format!(
                "declare it: `scopes = [{}]`",
                understated
                    .iter()
                    .map(|s| format!("\"{s}\""))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    }
    // Cumulative up the order: a lane grants its own scopes and every
    // lower lane's.
    let grants = workflow.lane_scopes(lane);
    let missing: Vec<&String> = spec
        .scopes
        .iter()
        .filter(|s| !grants.iter().any(|g| matches(g, s)))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let reasons = missing
        .iter()
        .map(|s| match workflow.lowest_lane_granting_scope(s) {
            None => format!("lane `{lane}` does not grant `{s}`, and no lane does"),
            Some(l) => {
                format!("lane `{lane}` does not grant `{s}`; `{l}` is the lowest lane that does")
            }
        })
        .collect();
    Err(Error::refused(
        crate::error::Code::ScopeNotGranted,
        format!(
            "action `{}` needs scopes lane `{lane}` does not grant",
            spec.name
        ),
        reasons,
        format!(
            "grant them in .airlock/workflow.toml (`[lanes.{lane}] scopes = [\"…\"]`), or run the brief in a lane that grants them"
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards() {
        assert!(matches(
            "http:POST:hooks.example.com/*",
            "http:POST:hooks.example.com/a/b"
        ));
        assert!(!matches(
            "http:POST:hooks.example.com/*",
            "http:POST:hooks.example.org/a"
        ));
        assert!(!matches(
            "http:POST:hooks.example.com/*",
            "http:GET:hooks.example.com/a"
        ));
        assert!(matches(
            "email:send:*@example.com",
            "email:send:team@example.com"
        ));
        assert!(!matches(
            "email:send:*@example.com",
            "email:send:x@example.com.evil.org"
        ));
        assert!(matches("*", "command:publish"));
        assert!(matches(
            "http:POST:*.example.com/*",
            "http:POST:hooks.example.com/a"
        ));
        assert!(!matches(
            "http:POST:*.example.com/*",
            "http:POST:evil.com/.example.com/x"
        ));
        assert!(matches("http:*", "http:GET:example.com/x"));
        assert!(!matches(
            "http:POST:*.example.com",
            "http:POST:evil.com/.example.com"
        ));
        assert!(!matches(
            "http:POST:127.0.0.1:*/public/*",
            "http:POST:127.0.0.1:80/admin/x/public/y"
        ));
        assert!(matches(
            "git:push:origin:refs/heads/release/*",
            "git:push:origin:refs/heads/release/1.2"
        ));
        assert!(!matches(
            "git:push:origin:refs/heads/release/*",
            "git:push:origin:refs/heads/main"
        ));
        assert!(matches("a*b*c", "aXbYc"));
        assert!(!matches("a*b*c", "aXc"));
        assert!(!matches("ab*ba", "aba"));
    }

    #[test]
    fn forms() {
        assert!(check_pattern("http:POST:hooks.example.com/*").is_ok());
        assert!(check_pattern("http:POST:127.0.0.1:8080/x").is_ok());
        assert!(check_pattern("email:send:*@example.com").is_ok());
        assert!(check_pattern("email:from:bot@example.com").is_ok());
        assert!(check_pattern("git:push:origin:refs/heads/*").is_ok());
        assert!(check_pattern("command:publish").is_ok());
        assert!(check_pattern("ftp:get:x").is_err());
        assert!(check_pattern("command:").is_err());
        assert!(check_pattern("http:POST: x").is_err());
    }
}
