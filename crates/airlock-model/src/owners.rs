//! `.airlock/owners`: who must approve a change to which paths, and how many of them
//! (issue 20). CODEOWNERS syntax with a count:
//!
//! ```text
//! # comment
//! @platform = alice@example.com bob@example.com carol@example.com
//! *            @platform
//! ci/**        @platform n=2
//! /docs/       dana@example.com
//! ```
//!
//! Patterns are gitignore-style as in CODEOWNERS: a pattern with no `/` but at its end
//! matches at any depth, one with a `/` is anchored at the repository root, a trailing `/`
//! means a directory, and a pattern that matches a directory matches everything below it.
//! The last matching rule wins. Owners are principals (as `.airlock/reviewers` names them) or
//! `@team`s declared in the same file; `n=N` (default 1) distinct owners must approve. A
//! rule with no owners takes approvals from anyone in `reviewers`, and so does a path no
//! rule matches (one approval).
//!
//! The file comes from a commit an agent may have written (only the target's tip is read,
//! but parsing never trusts it): bounded, never panics, every fault names its line.

use std::collections::BTreeMap;

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use serde::Serialize;

/// Files longer than this are refused before parsing.
pub const MAX_OWNERS_FILE: usize = 1024 * 1024;
/// A count larger than this is certainly a mistake.
const MAX_COUNT: usize = 100;

/// A malformed line of `.airlock/owners`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {problem}; {hint}")]
pub struct OwnersError {
    /// 1-based (0: the file as a whole).
    pub line: usize,
    pub problem: String,
    pub hint: String,
}

fn fault(line: usize, problem: impl Into<String>, hint: impl Into<String>) -> OwnersError {
    OwnersError {
        line,
        problem: problem.into(),
        hint: hint.into(),
    }
}

/// One `PATTERN OWNER... [n=N]` line.
#[derive(Debug, Clone, Serialize)]
pub struct OwnerRule {
    pub line: usize,
    pub pattern: String,
    /// As written: principals and `@team`s.
    pub owners: Vec<String>,
    /// The principals the owners stand for, teams expanded, each once. Empty: anyone in
    /// `reviewers`.
    pub members: Vec<String>,
    /// Distinct approvals needed.
    pub count: usize,
    #[serde(skip)]
    globs: GlobSet,
}

impl OwnerRule {
    pub fn matches(&self, path: &str) -> bool {
        self.globs.is_match(path)
    }
}

/// A parsed owners file.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Owners {
    pub teams: BTreeMap<String, Vec<String>>,
    pub rules: Vec<OwnerRule>,
}

/// What one group of paths needs: a rule (or the default: one approval from anyone) and
/// the approvals that count towards it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Requirement {
    /// The rule's line; `None`: no rule matched (one approval from anyone in `reviewers`).
    pub line: Option<usize>,
    /// The rule's pattern (`*` for the default).
    pub pattern: String,
    /// Owners as written; empty: anyone in `reviewers`.
    pub owners: Vec<String>,
    pub needed: usize,
    /// The distinct approvers who count towards it.
    pub approved_by: Vec<String>,
    /// The changed paths this requirement governs (at most a few are kept for messages).
    pub paths: Vec<String>,
    pub path_count: usize,
}

impl Requirement {
    pub fn met(&self) -> bool {
        self.approved_by.len() >= self.needed
    }

    /// One line for messages: "ci/** (line 4): 1 of 2 approvals from @platform (ci/build.sh)".
    pub fn describe(&self) -> String {
        let whose = if self.owners.is_empty() {
            "anyone in .airlock/reviewers".to_string()
        } else {
            self.owners.join(" ")
        };
        let rule = match self.line {
            Some(line) => format!("{} (line {line})", self.pattern),
            None if self.pattern == "*" => "paths no rule names".to_string(),
            // A requirement airlock makes itself (the rules files' protection).
            None => self.pattern.clone(),
        };
        let mut paths = self.paths.join(", ");
        if self.path_count > self.paths.len() {
            paths.push_str(&format!(" and {} more", self.path_count - self.paths.len()));
        }
        format!(
            "{rule}: {} of {} approval{} from {whose} ({paths})",
            self.approved_by.len(),
            self.needed,
            if self.needed == 1 { "" } else { "s" }
        )
    }
}

const PATHS_KEPT: usize = 5;

impl Owners {
    pub fn parse(text: &str) -> Result<Owners, OwnersError> {
        if text.len() > MAX_OWNERS_FILE {
            return Err(fault(
                0,
                format!(
                    "the file is {} bytes, more than the {MAX_OWNERS_FILE} airlock reads",
                    text.len()
                ),
                "keep one rule per line",
            ));
        }
        let mut teams: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let mut raw_rules = Vec::new();
        for (index, raw) in text.split('\n').enumerate() {
            let line = index + 1;
            let raw = raw.strip_suffix('\r').unwrap_or(raw);
            let content = raw.trim();
            if content.is_empty() || content.starts_with('#') {
                continue;
            }
            // A comment may follow a rule after whitespace, as in CODEOWNERS.
            let content = match content.find(" #").or_else(|| content.find("\t#")) {
                Some(at) => content[..at].trim_end(),
                None => content,
            };
            let words: Vec<&str> = content.split_whitespace().collect();
            let declares_team =
                words.get(1) == Some(&"=") || (words[0].starts_with('@') && words[0].contains('='));
            if declares_team {
                let (name, members) = parse_team(line, &words)?;
                if teams.contains_key(&name) {
                    return Err(fault(
                        line,
                        format!("team {name} is declared twice"),
                        format!("declare {name} once, listing all its members"),
                    ));
                }
                teams.insert(name, members);
            } else {
                raw_rules.push((
                    line,
                    words.iter().map(|w| w.to_string()).collect::<Vec<_>>(),
                ));
            }
        }
        let mut rules = Vec::new();
        for (line, words) in raw_rules {
            rules.push(parse_rule(line, &words, &teams)?);
        }
        Ok(Owners { teams, rules })
    }

    /// The rule that governs `path` (the last that matches), if any.
    pub fn rule_for(&self, path: &str) -> Option<&OwnerRule> {
        self.rules.iter().rev().find(|r| r.matches(path))
    }

    /// What the changed `paths` need, given the distinct principals whose approvals verified
    /// (`approvers`, each already checked against `reviewers`). One requirement per rule
    /// that governs some path, in rule order, the default last.
    pub fn requirements<S: AsRef<str>>(
        &self,
        paths: &[S],
        approvers: &[String],
    ) -> Vec<Requirement> {
        let mut by_rule: BTreeMap<usize, Requirement> = BTreeMap::new();
        for path in paths {
            let path = path.as_ref();
            let (key, requirement) = match self.rule_for(path) {
                Some(rule) => (
                    rule.line,
                    Requirement {
                        line: Some(rule.line),
                        pattern: rule.pattern.clone(),
                        owners: rule.owners.clone(),
                        needed: rule.count,
                        approved_by: counted(&rule.members, approvers),
                        paths: Vec::new(),
                        path_count: 0,
                    },
                ),
                None => (
                    usize::MAX,
                    Requirement {
                        line: None,
                        pattern: "*".into(),
                        owners: Vec::new(),
                        needed: 1,
                        approved_by: counted(&[], approvers),
                        paths: Vec::new(),
                        path_count: 0,
                    },
                ),
            };
            let entry = by_rule.entry(key).or_insert(requirement);
            entry.path_count += 1;
            if entry.paths.len() < PATHS_KEPT {
                entry.paths.push(path.to_string());
            }
        }
        by_rule.into_values().collect()
    }
}

fn counted(members: &[String], approvers: &[String]) -> Vec<String> {
    let mut out: Vec<String> = approvers
        .iter()
        .filter(|a| members.is_empty() || members.contains(a))
        .cloned()
        .collect();
    out.sort();
    out.dedup();
    out
}

fn parse_team(line: usize, words: &[&str]) -> Result<(String, Vec<String>), OwnersError> {
    let hint = "declare a team as `@name = principal principal ...`";
    // Accept `@t = a b`, `@t= a b` and `@t =a b` alike.
    let joined = words.join(" ");
    let Some((name, members)) = joined.split_once('=') else {
        return Err(fault(line, "not a team declaration", hint));
    };
    let name = name.trim();
    if !valid_team_name(name) {
        return Err(fault(
            line,
            format!("{name:?} is not a team name"),
            "a team name is @ followed by letters, digits, `-`, `_`, `.` or `/`, e.g. @platform",
        ));
    }
    let members: Vec<String> = members.split_whitespace().map(str::to_string).collect();
    if members.is_empty() {
        return Err(fault(line, format!("team {name} has no members"), hint));
    }
    if let Some(bad) = members.iter().find(|m| !valid_principal(m)) {
        return Err(fault(
            line,
            format!("{bad:?} is not a principal"),
            "team members are principals as .airlock/reviewers names them, e.g. alice@example.com (teams do not nest)",
        ));
    }
    Ok((name.to_string(), members))
}

fn parse_rule(
    line: usize,
    words: &[String],
    teams: &BTreeMap<String, Vec<String>>,
) -> Result<OwnerRule, OwnersError> {
    let pattern = words[0].clone();
    let globs = compile_pattern(line, &pattern)?;
    let mut owners = Vec::new();
    let mut count = None;
    for word in &words[1..] {
        if let Some(n) = word.strip_prefix("n=") {
            if count.is_some() {
                return Err(fault(
                    line,
                    "n= is given twice",
                    "write one n=N at the end of the rule",
                ));
            }
            match n.parse::<usize>() {
                Ok(n) if (1..=MAX_COUNT).contains(&n) => count = Some(n),
                _ => {
                    return Err(fault(
                        line,
                        format!("{word:?} is not a count"),
                        format!("write n=N with N between 1 and {MAX_COUNT}, e.g. n=2"),
                    ));
                }
            }
        } else if word.starts_with('@') && !word[1..].contains('@') {
            if !teams.contains_key(word.as_str()) {
                return Err(fault(
                    line,
                    format!("team {word} is not declared"),
                    format!("declare it in this file: `{word} = principal principal ...`"),
                ));
            }
            owners.push(word.clone());
        } else if valid_principal(word) {
            owners.push(word.clone());
        } else {
            return Err(fault(
                line,
                format!("{word:?} is neither an owner nor n=N"),
                "write PATTERN OWNER... [n=N]; owners are principals (alice@example.com) or declared @teams",
            ));
        }
    }
    let mut members: Vec<String> = Vec::new();
    for owner in &owners {
        let expanded = match teams.get(owner.as_str()) {
            Some(team) => team.clone(),
            None => vec![owner.clone()],
        };
        for m in expanded {
            if !members.contains(&m) {
                members.push(m);
            }
        }
    }
    let count = count.unwrap_or(1);
    if !members.is_empty() && count > members.len() {
        return Err(fault(
            line,
            format!(
                "n={count} but the owners are {} principal{}",
                members.len(),
                if members.len() == 1 { "" } else { "s" }
            ),
            format!("lower n to at most {} or name more owners", members.len()),
        ));
    }
    Ok(OwnerRule {
        line,
        pattern,
        owners,
        members,
        count,
        globs,
    })
}

/// A CODEOWNERS pattern as globs over repository-relative paths.
fn compile_pattern(line: usize, pattern: &str) -> Result<GlobSet, OwnersError> {
    let bad = |why: String| {
        fault(
            line,
            format!("pattern {pattern:?} {why}"),
            "write a gitignore-style pattern relative to the repository root, e.g. ci/** or *.rs or /docs/",
        )
    };
    if pattern.starts_with('!') {
        return Err(bad(
            "is a negation, which owners files do not support".into()
        ));
    }
    if pattern.starts_with('@') || pattern.starts_with("n=") {
        return Err(bad(
            "comes before any path pattern (a rule starts with its pattern)".into(),
        ));
    }
    let (body, directory) = match pattern.strip_suffix('/') {
        Some(b) => (b, true),
        None => (pattern, false),
    };
    let anchored = body.starts_with('/') || body.contains('/');
    let body = body.trim_start_matches('/');
    if body.split('/').any(|c| c == ".." || c == ".") {
        return Err(bad("has a `.` or `..` component".into()));
    }
    let base = if body.is_empty() {
        "**".to_string()
    } else if anchored {
        body.to_string()
    } else {
        format!("**/{body}")
    };
    let mut builder = GlobSetBuilder::new();
    let mut variants = vec![format!("{base}/**")];
    if !directory {
        variants.push(base.clone());
    }
    for variant in variants {
        let glob = GlobBuilder::new(&variant)
            .literal_separator(true)
            .backslash_escape(true)
            .build()
            .map_err(|e| bad(format!("is not a valid pattern ({})", e.kind())))?;
        builder.add(glob);
    }
    builder
        .build()
        .map_err(|e| bad(format!("is not a valid pattern ({e})")))
}

fn valid_team_name(name: &str) -> bool {
    name.len() > 1
        && name.starts_with('@')
        && name[1..]
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c))
}

/// A principal as `allowed_signers` names one: no whitespace, no quotes, no commas, not a
/// team, not a count.
fn valid_principal(word: &str) -> bool {
    !word.is_empty()
        && word.len() <= 256
        && !word.starts_with('@')
        && !word.contains('=')
        && !word
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || "\",#".contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owners(text: &str) -> Owners {
        Owners::parse(text).unwrap()
    }

    fn rule_line(o: &Owners, path: &str) -> Option<usize> {
        o.rule_for(path).map(|r| r.line)
    }

    #[test]
    fn codeowners_patterns_last_match_wins() {
        let o = owners(
            "# owners\n\
             @platform = alice@x bob@x carol@x\n\
             *            dana@x\n\
             *.rs         erin@x   # rust\n\
             ci/**        @platform n=2\n\
             /docs/       dana@x\n\
             build/       @platform\n\
             src/lib.rs   alice@x\n",
        );
        assert_eq!(rule_line(&o, "README.md"), Some(3));
        assert_eq!(rule_line(&o, "deep/a/b.rs"), Some(4));
        assert_eq!(rule_line(&o, "ci/x.yml"), Some(5));
        assert_eq!(rule_line(&o, "ci/a/b/c.rs"), Some(5));
        assert_eq!(rule_line(&o, "docs/guide.md"), Some(6));
        assert_eq!(
            rule_line(&o, "src/docs/guide.md"),
            Some(3),
            "/docs/ is anchored"
        );
        assert_eq!(
            rule_line(&o, "a/build/out.txt"),
            Some(7),
            "build/ at any depth"
        );
        assert_eq!(
            rule_line(&o, "build"),
            Some(3),
            "build/ is a directory only"
        );
        assert_eq!(rule_line(&o, "src/lib.rs"), Some(8));
        assert_eq!(
            rule_line(&o, "x/src/lib.rs"),
            Some(4),
            "src/lib.rs is anchored"
        );
        let ci = &o.rules[2];
        assert_eq!(ci.members, ["alice@x", "bob@x", "carol@x"]);
        assert_eq!(ci.count, 2);
        assert_eq!(
            o.rules[1].owners,
            ["erin@x"],
            "the trailing comment is dropped"
        );
        assert!(owners("").rule_for("a").is_none());
    }

    #[test]
    fn requirements_count_distinct_owner_approvals() {
        let o = owners(
            "@platform = alice@x bob@x carol@x\n\
             ci/** @platform n=2\n\
             docs/** n=1\n",
        );
        let paths = ["ci/a.yml", "ci/b.yml", "docs/x.md", "src/main.rs"];
        let one = o.requirements(&paths, &["alice@x".into(), "alice@x".into()]);
        assert_eq!(one.len(), 3);
        assert_eq!(
            one[0].describe(),
            "ci/** (line 2): 1 of 2 approvals from @platform (ci/a.yml, ci/b.yml)"
        );
        assert!(!one[0].met());
        assert!(one[1].met(), "a rule without owners takes anyone");
        assert_eq!(one[2].line, None);
        assert!(one[2].met());
        let outsider = o.requirements(&paths, &["zed@x".into()]);
        assert_eq!(outsider[0].approved_by, Vec::<String>::new());
        assert!(
            outsider[2].met(),
            "paths no rule names take anyone in reviewers"
        );
        let two = o.requirements(&paths, &["alice@x".into(), "carol@x".into()]);
        assert!(two.iter().all(Requirement::met));
        assert!(o.requirements(&paths, &[]).iter().all(|r| !r.met()));
    }

    #[test]
    fn malformed_lines_are_named() {
        let cases = [
            (
                "ci/** @platform\n",
                "line 1: team @platform is not declared; declare it in this file: `@platform = principal principal ...`",
            ),
            (
                "@t = a@x\nci/** @t n=2\n",
                "line 2: n=2 but the owners are 1 principal; lower n to at most 1 or name more owners",
            ),
            (
                "x a@x n=0\n",
                "line 1: \"n=0\" is not a count; write n=N with N between 1 and 100, e.g. n=2",
            ),
            ("x a@x n=two\n", "line 1: \"n=two\" is not a count"),
            ("x a@x n=1 n=1\n", "line 1: n= is given twice"),
            ("!x a@x\n", "line 1: pattern \"!x\" is a negation"),
            (
                "\n\n../x a@x\n",
                "line 3: pattern \"../x\" has a `.` or `..` component",
            ),
            ("x[ a@x\n", "line 1: pattern \"x[\" is not a valid pattern"),
            ("@t =\n", "line 1: team @t has no members"),
            ("@t = a@x\n@t = b@x\n", "line 2: team @t is declared twice"),
            ("@t = @u\n", "line 1: \"@u\" is not a principal"),
            ("t = a@x\n", "line 1: \"t\" is not a team name"),
            ("x a\"b\n", "line 1: \"a\\\"b\" is neither an owner nor n=N"),
            (
                "@t = a@x\n@t n=1\n",
                "line 2: pattern \"@t\" comes before any path pattern",
            ),
        ];
        for (text, expected) in cases {
            let err = Owners::parse(text).unwrap_err();
            assert!(
                err.to_string().starts_with(expected),
                "{text:?}: {err}\n(expected {expected})"
            );
        }
        assert!(Owners::parse(&"x".repeat(MAX_OWNERS_FILE + 1)).is_err());
        for text in ["=", "= =", "@", "\u{0} a", "** ** **", "/ a@x", "[ a"] {
            let _ = Owners::parse(text);
        }
        assert_eq!(
            owners("/ a@x\n").rule_for("any/path").map(|r| r.line),
            Some(1)
        );
    }
}
