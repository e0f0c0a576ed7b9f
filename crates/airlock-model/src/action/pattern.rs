//! The forms of a scope and of a lane's scope pattern, and matching one
//! against the other.

pub const FORMS: &str = "scopes are `http:METHOD:HOST/PATH`, `email:send:ADDRESS` (a recipient), \
`email:from:ADDRESS` (the sender), `git:push:REMOTE:REF`, `mcp:SERVER:TOOL` or `command:NAME`; `*` matches any run of characters";

/// Checks a scope or scope pattern has one of the known forms.
pub fn check_pattern(pattern: &str) -> std::result::Result<(), String> {
    if pattern.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err("spaces and control characters are not allowed".into());
    }
    let parts: Vec<&str> = pattern.splitn(4, ':').collect();
    let ok = match parts.as_slice() {
        ["http", method, rest] => !method.is_empty() && !rest.is_empty(),
        ["http", method, host_port, rest] => {
            // A port in the host (`http:POST:127.0.0.1:8080/x`).
            !method.is_empty() && !host_port.is_empty() && !rest.is_empty()
        }
        ["email", "send" | "from", rest] => !rest.is_empty(),
        ["email", "send", a, b] => !a.is_empty() && !b.is_empty(),
        ["git", "push", remote, dst] => !remote.is_empty() && !dst.is_empty(),
        ["command", name] => !name.is_empty(),
        ["mcp", server, tool] => !server.is_empty() && !tool.is_empty(),
        ["mcp", server, tool, rest] => !server.is_empty() && !tool.is_empty() && !rest.is_empty(),
        ["command", ..] => false,
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err("not a known scope form".into())
    }
}

/// Whether a granted or declared scope `pattern` covers `scope`. `*`
/// matches any run of characters, except in the host of an `http` scope,
/// where it stays within the host: `http:POST:*.example.com/*` does not
/// cover `http:POST:evil.com/.example.com/x`.
pub fn matches(pattern: &str, scope: &str) -> bool {
    match (split_http(pattern), split_http(scope)) {
        // A pattern without a path (`http:*`, `http:POST:*`) covers every path.
        (Some((p_head, "")), Some((s_head, _))) => wildcard(p_head, s_head),
        (Some((p_head, p_path)), Some((s_head, s_path))) => {
            wildcard(p_head, s_head) && wildcard(p_path, s_path)
        }
        _ => wildcard(pattern, scope),
    }
}

/// `http:METHOD:HOST/PATH` → (`http:METHOD:HOST`, `/PATH`).
fn split_http(scope: &str) -> Option<(&str, &str)> {
    if !scope.starts_with("http:") {
        return None;
    }
    match scope.find('/') {
        Some(i) => Some((&scope[..i], &scope[i..])),
        None => Some((scope, "")),
    }
}

/// `*` matches any run of characters; everything else matches itself.
pub fn wildcard(pattern: &str, scope: &str) -> bool {
    let pieces: Vec<&str> = pattern.split('*').collect();
    if pieces.len() == 1 {
        return pattern == scope;
    }
    let (first, last) = (pieces[0], pieces[pieces.len() - 1]);
    if !scope.starts_with(first) || scope.len() < first.len() + last.len() {
        return false;
    }
    let mut rest = &scope[first.len()..];
    for piece in &pieces[1..pieces.len() - 1] {
        match rest.find(piece) {
            Some(i) => rest = &rest[i + piece.len()..],
            None => return false,
        }
    }
    rest.ends_with(last)
}
