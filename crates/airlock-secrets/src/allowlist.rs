//! The `.airlock/secrets-allow` file.

use globset::{GlobBuilder, GlobMatcher};

use crate::Finding;
use crate::rules::{RULES, rule_index};

/// What `.airlock/secrets-allow` says may stay in a change.
///
/// One entry per line; `#` starts a comment (at the start of a line or after whitespace); blank
/// lines are ignored. Entries:
///
/// - `sha256:<16+ hex>`: one secret, by the fingerprint printed in its finding.
/// - `rule:<id> path:<glob>`: a rule under a path glob.
/// - `rule:<id>`: a rule everywhere.
/// - `path:<glob>`: every rule under a path glob.
///
/// Globs use `/` as separator; `*` does not cross `/`, `**` does. A glob without `/` is matched
/// against the file name as well (`path:*.pem` matches `certs/test.pem`).
#[derive(Debug, Clone, Default)]
pub struct Allowlist {
    fingerprints: Vec<String>,
    scoped: Vec<Scoped>,
}

#[derive(Debug, Clone)]
struct Scoped {
    rule: Option<&'static str>,
    path: Option<PathGlob>,
}

#[derive(Debug, Clone)]
struct PathGlob {
    matcher: GlobMatcher,
    file_name_only: bool,
}

impl PathGlob {
    fn matches(&self, path: &str) -> bool {
        let path = path.strip_prefix("./").unwrap_or(path);
        self.matcher.is_match(path)
            || (self.file_name_only
                && self
                    .matcher
                    .is_match(path.rsplit('/').next().unwrap_or(path)))
    }
}

/// A line of the allowlist that could not be understood. The message never repeats text that
/// could be a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{source_name}:{line}:{column}: {message}\n  help: {help}")]
pub struct AllowlistError {
    pub source_name: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
    /// What is wrong.
    pub message: String,
    /// What to write instead.
    pub help: String,
}

const FORMS: &str =
    "write `sha256:<fingerprint>`, `rule:<id> path:<glob>`, `rule:<id>` or `path:<glob>`";

impl Allowlist {
    /// Parse the allowlist file format (see [`Allowlist`]). `source_name` is used in errors.
    pub fn parse(text: &str, source_name: &str) -> Result<Allowlist, AllowlistError> {
        let mut list = Allowlist::default();
        for (index, raw) in text.lines().enumerate() {
            let line_no = index + 1;
            let raw = raw.strip_suffix('\r').unwrap_or(raw);
            let err = |byte: usize, message: String, help: String| AllowlistError {
                source_name: source_name.to_string(),
                line: line_no,
                column: raw[..byte].chars().count() + 1,
                message,
                help,
            };
            let tokens = tokens(raw);
            if tokens.is_empty() {
                continue;
            }
            if tokens[0].1.starts_with("sha256:") {
                let (at, tok) = tokens[0];
                let hex = &tok["sha256:".len()..];
                if hex.len() < 16 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(err(
                        at,
                        "a fingerprint needs at least 16 hex digits after `sha256:`".into(),
                        "copy the fingerprint from the finding, e.g. `sha256:3f2a9c0d1e4b5a6f`"
                            .into(),
                    ));
                }
                if let Some(&(at, _)) = tokens.get(1) {
                    return Err(err(
                        at,
                        "a fingerprint entry takes nothing after the fingerprint".into(),
                        "put each entry on its own line; a fingerprint already names one secret"
                            .into(),
                    ));
                }
                list.fingerprints
                    .push(hex[..16].to_ascii_lowercase().to_string());
                continue;
            }
            let mut rule: Option<&'static str> = None;
            let mut path: Option<PathGlob> = None;
            let mut seen_rule = false;
            let mut seen_path = false;
            for &(at, tok) in &tokens {
                if let Some(id) = tok.strip_prefix("rule:") {
                    if seen_rule {
                        return Err(err(
                            at,
                            "`rule:` given twice in one entry".into(),
                            "write one entry per rule, each on its own line".into(),
                        ));
                    }
                    seen_rule = true;
                    match rule_index(id) {
                        Some(i) => rule = Some(RULES[i].id),
                        None => {
                            return Err(err(
                                at + "rule:".len(),
                                unknown_rule_message(id),
                                rule_help(id),
                            ));
                        }
                    }
                } else if let Some(glob) = tok.strip_prefix("path:") {
                    if seen_path {
                        return Err(err(
                            at,
                            "`path:` given twice in one entry".into(),
                            "write one entry per path glob, or combine them as `path:{a,b}`".into(),
                        ));
                    }
                    seen_path = true;
                    if glob.is_empty() {
                        return Err(err(
                            at,
                            "`path:` needs a glob".into(),
                            "write e.g. `path:tests/fixtures/**`".into(),
                        ));
                    }
                    let matcher = GlobBuilder::new(glob)
                        .literal_separator(true)
                        .build()
                        .map_err(|e| {
                            err(
                                at + "path:".len(),
                                format!("invalid glob: {}", e.kind()),
                                "globs use `*`, `**`, `?`, `[abc]` and `{a,b}`, e.g. `path:tests/**/*.json`"
                                    .into(),
                            )
                        })?
                        .compile_matcher();
                    path = Some(PathGlob {
                        matcher,
                        file_name_only: !glob.contains('/'),
                    });
                } else if tok.starts_with("sha256:") {
                    return Err(err(
                        at,
                        "a fingerprint must be an entry of its own".into(),
                        "put `sha256:...` on its own line".into(),
                    ));
                } else {
                    let looks_secret = !crate::Scanner::new(Allowlist::default())
                        .scan_lines("", [(1, tok)])
                        .is_empty();
                    let message = if looks_secret {
                        "this looks like a secret itself; never write a secret into the allowlist"
                            .to_string()
                    } else {
                        "unknown entry".to_string()
                    };
                    let help = if looks_secret {
                        "write the fingerprint from the finding instead, e.g. `sha256:3f2a9c0d1e4b5a6f`".to_string()
                    } else {
                        FORMS.to_string()
                    };
                    return Err(err(at, message, help));
                }
            }
            list.scoped.push(Scoped { rule, path });
        }
        Ok(list)
    }

    /// Whether an entry covers this finding.
    pub fn allows(&self, finding: &Finding) -> bool {
        if let Some(hex) = finding.fingerprint.strip_prefix("sha256:") {
            let hex = hex.to_ascii_lowercase();
            if hex.len() >= 16 && self.fingerprints.iter().any(|f| hex[..16] == *f) {
                return true;
            }
        }
        self.scoped.iter().any(|s| {
            s.rule.is_none_or(|r| r == finding.rule)
                && s.path.as_ref().is_none_or(|p| p.matches(&finding.path))
        })
    }

    /// True when the allowlist has no entries.
    pub fn is_empty(&self) -> bool {
        self.fingerprints.is_empty() && self.scoped.is_empty()
    }
}

/// Whitespace-separated tokens with their byte offsets, up to a `#` comment.
fn tokens(line: &str) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in line.char_indices() {
        if c.is_whitespace() {
            if let Some(s) = start.take() {
                out.push((s, &line[s..i]));
            }
        } else if start.is_none() {
            if c == '#' {
                return out;
            }
            start = Some(i);
        }
    }
    if let Some(s) = start {
        out.push((s, &line[s..]));
    }
    out
}

/// Whether `id` may be echoed in an error: rule ids are short, lowercase and digit-free, which a
/// pasted token practically never is.
fn is_plausible_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 40
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b == b'-' || b == b'_')
}

fn unknown_rule_message(id: &str) -> String {
    if id.is_empty() {
        "`rule:` needs a rule id".to_string()
    } else if is_plausible_id(id) {
        format!("unknown rule id `{id}`")
    } else {
        "unknown rule id".to_string()
    }
}

fn rule_help(id: &str) -> String {
    let lower = id.to_ascii_lowercase().replace('_', "-");
    let best = RULES
        .iter()
        .map(|r| (strsim::levenshtein(&lower, r.id), r.id))
        .min_by_key(|&(d, _)| d);
    match best {
        Some((d, suggestion)) if is_plausible_id(id) && d <= (suggestion.len() / 3).max(2) => {
            format!("did you mean `rule:{suggestion}`?")
        }
        _ => {
            let ids: Vec<&str> = RULES.iter().map(|r| r.id).collect();
            format!("known rule ids: {}", ids.join(", "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokenizer() {
        assert_eq!(
            tokens("  rule:jwt   path:a # c"),
            vec![(2, "rule:jwt"), (13, "path:a")]
        );
        assert!(tokens("# all comment").is_empty());
    }
}
