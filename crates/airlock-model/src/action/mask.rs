//! What of an action a reviewer may see: credentials in its headers masked.

use crate::action::{ActionSpec, Body};

/// Headers whose literal values are credentials: shown masked.
pub fn is_sensitive_header(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    ["authorization", "cookie", "proxy-authorization"].contains(&n.as_str())
        || ["token", "secret", "key", "auth", "password", "session"]
            .iter()
            .any(|w| n.contains(w))
}

/// A sensitive header's value with everything but `${NAME}` references and
/// a leading scheme word (`Bearer`) masked.
pub fn mask(value: &str) -> String {
    let refs = env_refs(value);
    let mut rest = value.to_string();
    for r in &refs {
        rest = rest.replace(&format!("${{{r}}}"), "");
    }
    let scheme = value
        .split_once(' ')
        .map(|(w, _)| w)
        .filter(|w| w.chars().all(|c| c.is_ascii_alphabetic()) && !w.is_empty());
    let literal = rest.trim();
    let literal = scheme.map_or(literal, |s| {
        literal.strip_prefix(s).unwrap_or(literal).trim()
    });
    if literal.is_empty() {
        return value.to_string();
    }
    let mut out = String::new();
    if let Some(s) = scheme {
        out.push_str(s);
        out.push(' ');
    }
    out.push_str(&format!("•••••• ({} bytes masked)", literal.len()));
    for r in refs {
        out.push_str(&format!(" ${{{r}}}"));
    }
    out
}

/// The spec as it may be shown or signed: sensitive header values masked.
pub fn masked_spec(spec: &ActionSpec) -> ActionSpec {
    let mut out = spec.clone();
    if let Body::Http(h) = &mut out.body {
        for (name, value) in &mut h.headers {
            if is_sensitive_header(name) {
                *value = mask(value);
            }
        }
    }
    out
}

/// The `${NAME}` references in a value.
pub fn env_refs(value: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = value;
    while let Some(i) = rest.find("${") {
        let after = &rest[i + 2..];
        match after.find('}') {
            Some(j) => {
                out.push(after[..j].to_string());
                rest = &after[j + 1..];
            }
            None => break,
        }
    }
    out
}
