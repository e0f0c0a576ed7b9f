//! The allowlist file and the inline marker.

mod common;

use airlock_secrets::{Allowlist, INLINE_MARKER, Scanner, Suppression, fingerprint};
use common::*;

fn github_token(seed: u64) -> String {
    format!("ghp_{}", Rng::new(seed).string(&alnum(), 36))
}

fn scan_with(allow: &str, path: &str, text: &str) -> Vec<airlock_secrets::Finding> {
    let allow = Allowlist::parse(allow, ".airlock/secrets-allow").unwrap();
    Scanner::new(allow).scan_lines(path, numbered(text))
}

fn two_secrets() -> (String, String, String) {
    let a = github_token(300);
    let b = format!(
        "AKIA{}",
        Rng::new(301).string("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 16)
    );
    let text = format!("token = \"{a}\"\nkey_id = \"{b}\"\n");
    (a, b, text)
}

#[test]
fn fingerprint_entry_allows_exactly_that_secret() {
    let (a, b, text) = two_secrets();
    let fp = fingerprint(&a);
    let allow = format!("# reviewed by ops, test account\n\n{fp}\n");
    let findings = scan_with(&allow, "src/a.rs", &text);
    assert_eq!(findings.len(), 1);
    assert_eq!(findings[0].fingerprint, fingerprint(&b));
    // upper-case hex and a longer prefix work too
    let allow = format!(
        "sha256:{}0000\n",
        fp["sha256:".len()..].to_ascii_uppercase()
    );
    assert_eq!(scan_with(&allow, "src/a.rs", &text).len(), 1);
}

#[test]
fn rule_and_path_entries() {
    let (_, _, text) = two_secrets();
    // rule under a path
    let allow = "rule:github-token path:tests/fixtures/**\n";
    assert_eq!(
        scan_with(allow, "tests/fixtures/gh/config.toml", &text).len(),
        1
    );
    assert_eq!(scan_with(allow, "src/config.toml", &text).len(), 2);
    // the order of the parts does not matter
    let allow = "path:tests/fixtures/**   rule:aws-access-key-id  # trailing comment\n";
    let f = scan_with(allow, "tests/fixtures/x", &text);
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].rule, "github-token");
    // rule everywhere
    assert_eq!(
        scan_with(
            "rule:github-token\nrule:aws-access-key-id\n",
            "any/where.rs",
            &text
        )
        .len(),
        0
    );
    // path only, every rule
    assert_eq!(
        scan_with("path:docs/**/*.md\n", "docs/guide/setup.md", &text).len(),
        0
    );
    assert_eq!(
        scan_with("path:docs/**/*.md\n", "docs/guide/setup.rs", &text).len(),
        2
    );
    // `*` does not cross `/`
    assert_eq!(
        scan_with("path:docs/*.md\n", "docs/guide/setup.md", &text).len(),
        2
    );
    // a glob without `/` also matches the file name anywhere
    assert_eq!(
        scan_with("path:*.pem\n", "certs/test/server.pem", &text).len(),
        0
    );
    assert_eq!(scan_with("path:*.pem\n", "./server.pem", &text).len(), 0);
}

#[test]
fn inline_marker_suppresses_its_line_only() {
    let a = github_token(302);
    let b = github_token(303);
    let text = format!("t1 = \"{a}\"  # {INLINE_MARKER}: public test fixture\nt2 = \"{b}\"\n");
    let scanner = Scanner::new(Allowlist::default());
    let report = scanner.scan_report("x.py", numbered(&text));
    assert_eq!(report.findings.len(), 1);
    assert_eq!(report.findings[0].line, 2);
    // suppressed findings stay visible to the caller, so a reviewer can see what was waved through
    assert_eq!(report.suppressed.len(), 1);
    assert_eq!(report.suppressed[0].reason, Suppression::InlineMarker);
    assert_eq!(report.suppressed[0].finding.line, 1);
    assert_does_not_leak(&report.suppressed[0].finding, &a);
    let json = serde_json::to_string(&report).unwrap();
    assert!(!json.contains(&a[4..]) && !json.contains(&b[4..]));
    assert!(json.contains("\"inline-marker\""));
}

#[test]
fn allowlisted_findings_are_reported_as_suppressed() {
    let (a, _, text) = two_secrets();
    let allow = Allowlist::parse(&fingerprint(&a), "allow").unwrap();
    let report = Scanner::new(allow).scan_report("a", numbered(&text));
    assert_eq!(report.findings.len(), 1);
    assert_eq!(report.suppressed.len(), 1);
    assert_eq!(report.suppressed[0].reason, Suppression::Allowlist);
}

#[test]
fn empty_and_comment_only_files() {
    assert!(Allowlist::parse("", "f").unwrap().is_empty());
    assert!(
        Allowlist::parse("# nothing\n\n   \n\t# still nothing\r\n", "f")
            .unwrap()
            .is_empty()
    );
}

fn parse_err(text: &str) -> airlock_secrets::AllowlistError {
    Allowlist::parse(text, ".airlock/secrets-allow").unwrap_err()
}

#[test]
fn error_bad_fingerprint() {
    let e = parse_err("# header\n  sha256:12ab\n");
    assert_eq!((e.line, e.column), (2, 3));
    assert!(e.message.contains("16 hex digits"), "{e}");
    assert!(
        e.to_string().starts_with(".airlock/secrets-allow:2:3: "),
        "{e}"
    );
    assert!(e.to_string().contains("help: "), "{e}");

    let e = parse_err("sha256:0123456789abcdef path:src/**\n");
    assert_eq!((e.line, e.column), (1, 25));
    assert!(e.message.contains("nothing after the fingerprint"), "{e}");
}

#[test]
fn error_unknown_rule_suggests_the_closest() {
    let e = parse_err("path:a/**\nrule:github-tokn path:x\n");
    assert_eq!((e.line, e.column), (2, 6));
    assert_eq!(e.message, "unknown rule id `github-tokn`");
    assert_eq!(e.help, "did you mean `rule:github-token`?");
    let e = parse_err("rule:aws_access_key_id\n");
    assert_eq!(e.help, "did you mean `rule:aws-access-key-id`?");
    let e = parse_err("rule:entropy\n");
    assert!(e.help.starts_with("known rule ids: private-key, "), "{e}");
    let e = parse_err("rule:\n");
    assert_eq!(e.message, "`rule:` needs a rule id");
}

#[test]
fn error_bad_glob_and_duplicates() {
    let e = parse_err("rule:jwt path:src/[abc\n");
    assert_eq!((e.line, e.column), (1, 15));
    assert!(e.message.starts_with("invalid glob"), "{e}");
    let e = parse_err("path:\n");
    assert_eq!(e.message, "`path:` needs a glob");
    let e = parse_err("rule:jwt rule:jwt\n");
    assert_eq!((e.line, e.column), (1, 10));
    let e = parse_err("path:a path:b\n");
    assert!(e.message.contains("given twice"));
    let e = parse_err("rule:jwt sha256:0123456789abcdef\n");
    assert!(e.message.contains("entry of its own"));
}

#[test]
fn error_unknown_entry() {
    let e = parse_err("\n\n   allow everything\n");
    assert_eq!((e.line, e.column), (3, 4));
    assert_eq!(e.message, "unknown entry");
    assert!(e.help.contains("`rule:<id> path:<glob>`"));
}

#[test]
fn error_never_echoes_a_pasted_secret() {
    let secret = github_token(304);
    for text in [
        format!("{secret}\n"),
        format!("rule:{secret}\n"),
        format!("sha256:{secret}\n"),
        format!("path:x {secret}\n"),
    ] {
        let e = parse_err(&text);
        let shown = format!("{e} {e:?}");
        assert!(!shown.contains(&secret[4..12]), "{shown}");
    }
    let e = parse_err(&format!("{secret}\n"));
    assert!(e.message.contains("looks like a secret"), "{e}");
}

#[test]
fn columns_count_characters() {
    let e = parse_err("path:é/** rüle:x\n");
    assert_eq!((e.line, e.column), (1, 11));
}
