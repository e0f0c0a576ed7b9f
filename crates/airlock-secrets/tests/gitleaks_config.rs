//! A repository's `.gitleaks.toml`: its rules find, its allowlists allow, and what cannot be read
//! is said, never a panic.

mod common;

use airlock_secrets::{Allowlist, Gitleaks, Scanner, Suppression};
use common::*;

fn scanner(config: &str) -> Scanner {
    Scanner::with_gitleaks(
        Allowlist::default(),
        Gitleaks::parse(config, ".gitleaks.toml").expect("config parses"),
    )
}

/// A configuration in the shape teams write (gitleaks' documented fields).
const CONFIG: &str = r#"
title = "team rules"

[extend]
useDefault = true

[[rules]]
id = "acme-api-key"
description = "ACME internal API key"
regex = '''(?i)acme[_-]?key\s*[:=]\s*["']?(acme_[a-z0-9]{32})'''
secretGroup = 1
entropy = 3.0
keywords = ["ACME"]
  [rules.allowlist]
  stopwords = ["acme_0000"]

[[rules]]
id = "corp-password"
regex = '''corp_pw=([A-Za-z0-9!]{10,})'''
keywords = ["corp_pw"]

[allowlist]
description = "fixtures"
paths = ['''^tests/fixtures/''']

[[allowlists]]
regexTarget = "line"
regexes = ['''# known-test-value''']
"#;

#[test]
fn a_rule_of_the_file_finds_its_secret_without_repeating_it() {
    let mut rng = Rng::new(300);
    let secret = format!(
        "acme_{}",
        rng.string("abcdefghijklmnopqrstuvwxyz0123456789", 32)
    );
    let text = format!("config:\n  ACME_KEY: \"{secret}\"\n");
    let findings = scanner(CONFIG).scan_lines("deploy/values.yaml", numbered(&text));
    let line = text.split('\n').nth(1).unwrap();
    assert_single(
        &findings,
        "acme-api-key",
        2,
        column_of(line, &secret),
        &secret,
    );
    assert_eq!(findings[0].description, "ACME internal API key");
}

#[test]
fn entropy_and_keywords_of_a_rule_apply() {
    // below the rule's entropy: not reported
    let low = format!("acme_key = acme_{}", "ab".repeat(16));
    assert!(
        scanner(CONFIG)
            .scan_lines("a.env", [(1, low.as_str())])
            .is_empty()
    );
    // no description: one is made from the id
    let pw = format!("corp_pw={}", Rng::new(301).string(&alnum(), 14));
    let f = scanner(CONFIG).scan_lines("a.env", [(1, pw.as_str())]);
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(f[0].rule, "corp-password");
    assert_eq!(f[0].description, "rule corp-password of .gitleaks.toml");
}

#[test]
fn allowlists_of_the_file_suppress_and_say_so() {
    let mut rng = Rng::new(302);
    let gh = format!("ghp_{}", rng.string(&alnum(), 36));
    let s = scanner(CONFIG);
    // a global path allowlist covers the built-in rules too
    let r = s.scan_report("tests/fixtures/tokens.txt", [(1, gh.as_str())]);
    assert!(r.findings.is_empty(), "{:?}", r.findings);
    assert_eq!(r.suppressed.len(), 1);
    assert_eq!(r.suppressed[0].reason, Suppression::GitleaksAllowlist);
    assert_eq!(r.suppressed[0].finding.rule, "github-token");
    // elsewhere it is reported
    assert_eq!(s.scan_lines("src/tokens.txt", [(1, gh.as_str())]).len(), 1);
    // a line allowlist
    let line = format!("{gh} # known-test-value");
    assert!(s.scan_lines("src/a.txt", [(1, line.as_str())]).is_empty());
    // a rule's own stopwords
    let stop = format!(
        "acme_key: acme_0000{}",
        rng.string("abcdefghijklmnopqrstuvwxyz", 28)
    );
    let r = s.scan_report("src/b.txt", [(1, stop.as_str())]);
    assert!(r.findings.is_empty(), "{:?}", r.findings);
    assert_eq!(r.suppressed[0].finding.rule, "acme-api-key");
}

#[test]
fn use_default_decides_whether_the_built_in_rules_stay_on() {
    let gh = format!("ghp_{}", Rng::new(303).string(&alnum(), 36));
    let only_own = CONFIG.replace("useDefault = true", "useDefault = false");
    assert!(
        scanner(&only_own)
            .scan_lines("a", [(1, gh.as_str())])
            .is_empty()
    );
    let no_extend = CONFIG.replace("[extend]\nuseDefault = true\n", "");
    assert!(!Gitleaks::parse(&no_extend, "x").unwrap().use_builtin);
    // a file with only allowlists keeps the built-in rules
    let allow_only = "[allowlist]\nstopwords = [\"fixture\"]\n";
    assert!(Gitleaks::parse(allow_only, "x").unwrap().use_builtin);
    assert_eq!(
        scanner(allow_only)
            .scan_lines("a", [(1, gh.as_str())])
            .len(),
        1
    );
}

#[test]
fn a_regex_the_engine_cannot_compile_is_a_diagnostic() {
    let config = r#"
[extend]
useDefault = true

[[rules]]
id = "lookahead"
regex = '''(?=.*token)token=([a-z]+)'''

[[rules]]
id = "backreference"
regex = '''(["'])secret\1'''

[[rules]]
id = "fine"
regex = '''fine=([a-z0-9]{12})'''
secretGroup = 3

[allowlist]
regexes = ['''(?<!x)y''']
commits = ["0123456789abcdef0123456789abcdef01234567"]
"#;
    let g = Gitleaks::parse(config, ".gitleaks.toml").expect("the file itself reads");
    let text: Vec<String> = g.diagnostics.iter().map(|d| d.to_string()).collect();
    assert_eq!(
        text,
        [
            "rule `lookahead` left out: look-around is not supported by the linear-time regex engine; rewrite `regex` without look-around or backreferences (RE2 syntax, as gitleaks uses)",
            "rule `backreference` left out: its regex does not compile: backreferences are not supported; rewrite `regex` without look-around or backreferences (RE2 syntax, as gitleaks uses)",
            "rule `fine` left out: `secretGroup = 3` but its regex has 1 group(s); set `secretGroup` to the group holding the secret",
            "[allowlist] commits left out: airlock scans a run's change, not commits of the history; allow the finding by `regexes`, `paths` or `stopwords`, or in .airlock/secrets-allow",
            "[allowlist] regexes[0] left out: look-around is not supported by the linear-time regex engine; rewrite `regex` without look-around or backreferences (RE2 syntax, as gitleaks uses)",
        ]
    );
    assert!(g.rule_ids().is_empty());
    // the built-in rules still run
    let gh = format!("ghp_{}", Rng::new(304).string(&alnum(), 36));
    let s = Scanner::with_gitleaks(Allowlist::default(), g);
    assert_eq!(s.scan_lines("a", [(1, gh.as_str())]).len(), 1);
}

#[test]
fn a_file_that_is_not_toml_is_an_error_with_its_line() {
    let err = Gitleaks::parse("title = \"x\"\n[[rules]\nid = 1\n", ".gitleaks.toml").unwrap_err();
    let text = err.to_string();
    assert!(
        text.starts_with(".gitleaks.toml: not a gitleaks configuration: "),
        "{text}"
    );
    assert!(text.contains("help: fix line 2 of the file"), "{text}");
    let err = Gitleaks::parse("[[rules]]\nid = 7\n", ".gitleaks.toml").unwrap_err();
    assert!(
        err.to_string().contains("not a gitleaks configuration"),
        "{err}"
    );
}
