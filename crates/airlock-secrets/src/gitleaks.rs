//! A repository's `.gitleaks.toml`: its rules and allowlists, so that a team keeps what it
//! already wrote for gitleaks.
//!
//! Read: `[extend] useDefault`, `[[rules]]` (`id`, `description`, `regex`, `secretGroup`,
//! `entropy`, `keywords`, `path`, `allowlist` / `[[rules.allowlists]]`), the global `[allowlist]`
//! and `[[allowlists]]` (`regexes`, `regexTarget`, `paths`, `stopwords`, `condition`,
//! `targetRules`, `commits`). Regexes are compiled by the `regex` crate (linear time): one it
//! cannot compile (look-around, backreferences) is reported as a [`GitleaksDiagnostic`] and that
//! rule or entry is left out; nothing here panics on bad input.

use regex::Regex;
use serde::Deserialize;

/// A `.gitleaks.toml` that could not be read at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{source_name}: {message}\n  help: {help}")]
pub struct GitleaksError {
    pub source_name: String,
    pub message: String,
    pub help: String,
}

/// Something in a `.gitleaks.toml` that was left out, and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct GitleaksDiagnostic {
    /// What was left out (`rule `x``, `[allowlist] regexes[2]`).
    pub what: String,
    /// Why.
    pub why: String,
    /// What to write instead.
    pub fix: String,
}

impl std::fmt::Display for GitleaksDiagnostic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} left out: {}; {}", self.what, self.why, self.fix)
    }
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct RawConfig {
    extend: Option<RawExtend>,
    #[serde(default)]
    rules: Vec<RawRule>,
    allowlist: Option<RawAllowlist>,
    #[serde(default)]
    allowlists: Vec<RawAllowlist>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct RawExtend {
    use_default: Option<bool>,
    path: Option<String>,
    url: Option<String>,
    #[serde(default)]
    disabled_rules: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawRule {
    id: String,
    description: Option<String>,
    regex: Option<String>,
    secret_group: Option<usize>,
    entropy: Option<f64>,
    #[serde(default)]
    keywords: Vec<String>,
    path: Option<String>,
    allowlist: Option<RawAllowlist>,
    #[serde(default)]
    allowlists: Vec<RawAllowlist>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct RawAllowlist {
    condition: Option<String>,
    regex_target: Option<String>,
    #[serde(default)]
    regexes: Vec<String>,
    #[serde(default)]
    paths: Vec<String>,
    #[serde(default)]
    stopwords: Vec<String>,
    #[serde(default)]
    commits: Vec<String>,
    #[serde(default)]
    target_rules: Vec<String>,
}

/// What an allowlist's regexes are matched against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Secret,
    Match,
    Line,
}

#[derive(Debug, Clone)]
struct Allow {
    /// `condition = "AND"`: every kind of entry given must match.
    all: bool,
    target: Target,
    regexes: Vec<Regex>,
    paths: Vec<Regex>,
    stopwords: Vec<String>,
    /// Only for these rule ids (global `[[allowlists]]` with `targetRules`); empty: all rules.
    target_rules: Vec<String>,
}

/// What one finding looked like, for an allowlist to judge.
pub(crate) struct Seen<'a> {
    pub rule: &'a str,
    pub path: &'a str,
    pub secret: &'a str,
    pub whole: &'a str,
    pub line: &'a str,
}

impl Allow {
    fn allows(&self, seen: &Seen<'_>) -> bool {
        if !self.target_rules.is_empty() && !self.target_rules.iter().any(|r| r == seen.rule) {
            return false;
        }
        let target = match self.target {
            Target::Secret => seen.secret,
            Target::Match => seen.whole,
            Target::Line => seen.line,
        };
        let secret = seen.secret.to_ascii_lowercase();
        let checks = [
            (!self.regexes.is_empty()).then(|| self.regexes.iter().any(|r| r.is_match(target))),
            (!self.paths.is_empty()).then(|| self.paths.iter().any(|r| r.is_match(seen.path))),
            (!self.stopwords.is_empty()).then(|| {
                self.stopwords
                    .iter()
                    .any(|w| secret.contains(&w.to_ascii_lowercase()))
            }),
        ];
        let given: Vec<bool> = checks.into_iter().flatten().collect();
        if given.is_empty() {
            return false;
        }
        if self.all {
            given.iter().all(|&m| m)
        } else {
            given.iter().any(|&m| m)
        }
    }
}

/// One `[[rules]]` entry.
#[derive(Debug, Clone)]
pub(crate) struct CustomRule {
    pub id: String,
    pub description: String,
    pub regex: Option<Regex>,
    pub secret_group: Option<usize>,
    pub entropy: Option<f64>,
    /// Lowercased.
    pub keywords: Vec<String>,
    pub path: Option<Regex>,
    allowlists: Vec<Allow>,
}

impl CustomRule {
    /// The secret of one match: `secretGroup`, else the first group that took part, else all.
    pub fn secret<'h>(&self, caps: &regex::Captures<'h>) -> Option<regex::Match<'h>> {
        match self.secret_group {
            Some(g) if g > 0 => caps.get(g),
            _ => (1..caps.len())
                .find_map(|g| caps.get(g).filter(|m| !m.is_empty()))
                .or_else(|| caps.get(0)),
        }
    }
}

/// A parsed `.gitleaks.toml`.
#[derive(Debug, Clone, Default)]
pub struct Gitleaks {
    /// Whether airlock's built-in rules stay on. gitleaks uses only a file's own rules unless
    /// `[extend] useDefault = true`; a file that defines no rules keeps the built-in ones.
    pub use_builtin: bool,
    pub(crate) rules: Vec<CustomRule>,
    allowlists: Vec<Allow>,
    /// What was left out, and why.
    pub diagnostics: Vec<GitleaksDiagnostic>,
}

impl Gitleaks {
    /// Parse a `.gitleaks.toml`. `source_name` is used in messages.
    pub fn parse(text: &str, source_name: &str) -> Result<Gitleaks, GitleaksError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| GitleaksError {
            source_name: source_name.to_string(),
            message: format!("not a gitleaks configuration: {}", e.message()),
            help: match e.span() {
                Some(span) => format!(
                    "fix line {} of the file (gitleaks' format: https://github.com/gitleaks/gitleaks#configuration), or remove it",
                    text[..span.start.min(text.len())].matches('\n').count() + 1
                ),
                None => "fix the file (gitleaks' format: https://github.com/gitleaks/gitleaks#configuration), or remove it".to_string(),
            },
        })?;
        let mut diags = Vec::new();
        let extend = raw.extend.unwrap_or_default();
        if extend.path.is_some() || extend.url.is_some() {
            diags.push(GitleaksDiagnostic {
                what: "[extend] path/url".into(),
                why: "airlock reads only this file, from the main checkout".into(),
                fix: "copy the rules you need into this file".into(),
            });
        }
        if !extend.disabled_rules.is_empty() {
            diags.push(GitleaksDiagnostic {
                what: "[extend] disabledRules".into(),
                why: "they name gitleaks' default rules, which are not airlock's built-in ones"
                    .into(),
                fix: "allow a built-in finding in .airlock/secrets-allow instead".into(),
            });
        }
        let mut rules = Vec::new();
        for (i, r) in raw.rules.into_iter().enumerate() {
            let what = format!("rule `{}`", printable(&r.id, &format!("rules[{i}]")));
            if r.id.trim().is_empty() {
                diags.push(GitleaksDiagnostic {
                    what,
                    why: "it has no id".into(),
                    fix: "give it `id = \"...\"`".into(),
                });
                continue;
            }
            let regex = match r
                .regex
                .as_deref()
                .map(|p| compile(p, &what, "regex", &mut diags))
            {
                Some(None) => continue,
                Some(Some(re)) => Some(re),
                None => None,
            };
            let path = match r
                .path
                .as_deref()
                .map(|p| compile(p, &what, "path", &mut diags))
            {
                Some(None) => continue,
                Some(Some(re)) => Some(re),
                None => None,
            };
            if regex.is_none() && path.is_none() {
                diags.push(GitleaksDiagnostic {
                    what,
                    why: "it has neither `regex` nor `path`".into(),
                    fix: "give it a `regex` for the secret".into(),
                });
                continue;
            }
            if let (Some(re), Some(g)) = (&regex, r.secret_group)
                && g >= re.captures_len()
            {
                diags.push(GitleaksDiagnostic {
                    what,
                    why: format!(
                        "`secretGroup = {g}` but its regex has {} group(s)",
                        re.captures_len() - 1
                    ),
                    fix: "set `secretGroup` to the group holding the secret".into(),
                });
                continue;
            }
            let mut allowlists = Vec::new();
            for (k, a) in r.allowlist.into_iter().chain(r.allowlists).enumerate() {
                if let Some(a) = allow(a, &format!("{what} allowlist {}", k + 1), &mut diags) {
                    allowlists.push(a);
                }
            }
            rules.push(CustomRule {
                description: r
                    .description
                    .unwrap_or_else(|| format!("rule {} of .gitleaks.toml", r.id)),
                id: r.id,
                regex,
                secret_group: r.secret_group,
                entropy: r.entropy,
                keywords: r.keywords.iter().map(|k| k.to_ascii_lowercase()).collect(),
                path,
                allowlists,
            });
        }
        let mut allowlists = Vec::new();
        if let Some(a) = raw.allowlist
            && let Some(a) = allow(a, "[allowlist]", &mut diags)
        {
            allowlists.push(a);
        }
        for (k, a) in raw.allowlists.into_iter().enumerate() {
            if let Some(a) = allow(a, &format!("[[allowlists]] {}", k + 1), &mut diags) {
                allowlists.push(a);
            }
        }
        let defines_rules = text_defines_rules(&rules, &diags);
        Ok(Gitleaks {
            use_builtin: extend.use_default.unwrap_or(!defines_rules),
            rules,
            allowlists,
            diagnostics: diags,
        })
    }

    /// The ids of the rules read from the file.
    pub fn rule_ids(&self) -> Vec<&str> {
        self.rules.iter().map(|r| r.id.as_str()).collect()
    }

    /// Whether an allowlist of the file (global, or of the finding's own rule) covers it.
    pub(crate) fn allows(&self, seen: &Seen<'_>) -> bool {
        self.allowlists.iter().any(|a| a.allows(seen))
            || self
                .rules
                .iter()
                .filter(|r| r.id == seen.rule)
                .any(|r| r.allowlists.iter().any(|a| a.allows(seen)))
    }
}

/// Whether the file defined rules (counting those left out for errors: the team meant to replace
/// the defaults, and should not silently get them back).
fn text_defines_rules(rules: &[CustomRule], diags: &[GitleaksDiagnostic]) -> bool {
    !rules.is_empty() || diags.iter().any(|d| d.what.starts_with("rule "))
}

/// A name from the file, if it is safe to repeat: short and printable. Otherwise `fallback`.
fn printable(s: &str, fallback: &str) -> String {
    if !s.is_empty() && s.len() <= 80 && s.chars().all(|c| c.is_ascii_graphic() || c == ' ') {
        s.to_string()
    } else {
        fallback.to_string()
    }
}

fn compile(
    pattern: &str,
    what: &str,
    field: &str,
    diags: &mut Vec<GitleaksDiagnostic>,
) -> Option<Regex> {
    match regex::RegexBuilder::new(pattern)
        .size_limit(16 * 1024 * 1024)
        .build()
    {
        Ok(re) => Some(re),
        Err(e) => {
            let why = match &e {
                regex::Error::Syntax(s) => {
                    let first = s.lines().last().unwrap_or("").trim();
                    let first = first.strip_prefix("error: ").unwrap_or(first);
                    if pattern.contains("(?=")
                        || pattern.contains("(?!")
                        || pattern.contains("(?<=")
                        || pattern.contains("(?<!")
                    {
                        "look-around is not supported by the linear-time regex engine".to_string()
                    } else {
                        format!("its {field} does not compile: {first}")
                    }
                }
                regex::Error::CompiledTooBig(_) => format!("its {field} compiles too big"),
                _ => format!("its {field} does not compile"),
            };
            diags.push(GitleaksDiagnostic {
                what: what.to_string(),
                why,
                fix: format!(
                    "rewrite `{field}` without look-around or backreferences (RE2 syntax, as gitleaks uses)"
                ),
            });
            None
        }
    }
}

fn allow(raw: RawAllowlist, what: &str, diags: &mut Vec<GitleaksDiagnostic>) -> Option<Allow> {
    let target = match raw.regex_target.as_deref().unwrap_or("secret") {
        "secret" => Target::Secret,
        "match" => Target::Match,
        "line" => Target::Line,
        _ => {
            diags.push(GitleaksDiagnostic {
                what: what.to_string(),
                why: "`regexTarget` is not `secret`, `match` or `line`".into(),
                fix: "write one of those".into(),
            });
            return None;
        }
    };
    let all = match raw
        .condition
        .as_deref()
        .unwrap_or("OR")
        .to_ascii_uppercase()
        .as_str()
    {
        "OR" => false,
        "AND" => true,
        _ => {
            diags.push(GitleaksDiagnostic {
                what: what.to_string(),
                why: "`condition` is not `OR` or `AND`".into(),
                fix: "write one of those".into(),
            });
            return None;
        }
    };
    if !raw.commits.is_empty() {
        diags.push(GitleaksDiagnostic {
            what: format!("{what} commits"),
            why: "airlock scans a run's change, not commits of the history".into(),
            fix: "allow the finding by `regexes`, `paths` or `stopwords`, or in .airlock/secrets-allow".into(),
        });
    }
    let mut regexes = Vec::new();
    for (i, p) in raw.regexes.iter().enumerate() {
        regexes.push(compile(p, &format!("{what} regexes[{i}]"), "regex", diags)?);
    }
    let mut paths = Vec::new();
    for (i, p) in raw.paths.iter().enumerate() {
        paths.push(compile(p, &format!("{what} paths[{i}]"), "path", diags)?);
    }
    Some(Allow {
        all,
        target,
        regexes,
        paths,
        stopwords: raw.stopwords,
        target_rules: raw.target_rules,
    })
}
