//! Attempts to slip a secret past the scanner, or to make it choke, where the secret still has its
//! format on one line.

mod common;

use std::time::Instant;

use airlock_secrets::{Allowlist, Scanner, WINDOW, WINDOW_OVERLAP};
use common::*;

fn github_token(seed: u64) -> String {
    format!("ghp_{}", Rng::new(seed).string(&alnum(), 36))
}

#[test]
fn secret_in_the_middle_of_a_one_mib_line() {
    let secret = github_token(200);
    let half = "a".repeat(512 * 1024);
    let line = format!("{half} {secret} {half}");
    let findings = scan("blob.txt", &line);
    assert_single(&findings, "github-token", 1, 512 * 1024 + 2, &secret);
}

#[test]
fn secret_at_every_window_boundary_is_found_once() {
    let secret = github_token(201);
    let step = WINDOW - WINDOW_OVERLAP;
    let mut offsets = vec![];
    for k in 1..4 {
        for delta in [-45isize, -40, -20, -1, 0, 1, 20] {
            offsets.push((k * step) as isize + delta);
            offsets.push((k * step + WINDOW_OVERLAP) as isize + delta);
        }
    }
    for offset in offsets {
        let offset = offset as usize;
        let line = format!(
            "{} {secret} {}",
            "-".repeat(offset),
            "-".repeat(300 * 1024 - offset)
        );
        let findings = scan("long.txt", &line);
        assert_single(&findings, "github-token", 1, offset + 2, &secret);
    }
}

#[test]
fn context_rule_across_a_window_boundary() {
    let value = Rng::new(202).string(&alnum(), 24);
    let step = WINDOW - WINDOW_OVERLAP;
    for offset in [step - 10, step - 3, WINDOW - 12, WINDOW - 30] {
        let line = format!(
            "{}; password = \"{value}\"; {}",
            "x;".repeat(offset / 2),
            "y".repeat(70_000)
        );
        let findings = scan("long.env", &line);
        assert_single(
            &findings,
            "generic-high-entropy",
            1,
            column_of(&line, &value),
            &value,
        );
    }
}

#[test]
fn secret_after_ten_thousand_spaces() {
    let secret = github_token(203);
    let line = format!("{}{secret}", " ".repeat(10_000));
    assert_single(&scan("x", &line), "github-token", 1, 10_001, &secret);
}

#[test]
fn secret_after_unicode_text() {
    let secret = github_token(204);
    // columns are counted in characters, not bytes
    let line = format!("// 秘密のトークン 🔑 → {secret}");
    assert_single(&scan("x.rs", &line), "github-token", 1, 16, &secret);
    assert_eq!(column_of(&line, &secret), 16);
    let line = format!("пароль = \"{}\"", Rng::new(205).string(&alnum(), 20));
    assert!(
        scan("x", &line).is_empty(),
        "a non-ASCII name is not one of the generic names"
    );
}

#[test]
fn crlf_line_endings() {
    let secret = github_token(206);
    let value = Rng::new(207).string(&alnum(), 24);
    let text = format!("first\r\nTOKEN={secret}\r\nDB_PASSWORD={value}\r\n");
    let findings = scan(".env", &text);
    assert_eq!(findings.len(), 2, "{findings:#?}");
    assert_eq!(
        (findings[0].rule.as_str(), findings[0].line),
        ("github-token", 2)
    );
    assert_eq!(
        findings[0].fingerprint,
        airlock_secrets::fingerprint(&secret)
    );
    assert_eq!(
        (findings[1].rule.as_str(), findings[1].line),
        ("generic-high-entropy", 3)
    );
    // the carriage return is not part of the value
    assert_eq!(
        findings[1].fingerprint,
        airlock_secrets::fingerprint(&value)
    );

    let body = Rng::new(208).string(&base64_chars(), 64);
    let pem =
        format!("-----BEGIN EC PRIVATE KEY-----\r\n{body}\r\n-----END EC PRIVATE KEY-----\r\n");
    assert_single(&scan("k.pem", &pem), "private-key", 1, 1, &body);
}

/// Documented limit: the scanner is line based, so a secret split across lines is not found.
#[test]
fn secret_split_across_lines_is_not_found() {
    let secret = github_token(209);
    let (a, b) = secret.split_at(20);
    let text = format!("let t = String::from(\"{a}\")\n    + \"{b}\";\n");
    assert!(scan("split.rs", &text).is_empty());
    let text = format!("TOKEN=\"{a}\\\n{b}\"\n");
    assert!(scan("split.sh", &text).is_empty());
    // ...while the same secret on one line is
    assert_eq!(scan("whole.rs", &format!("let t = \"{secret}\";")).len(), 1);
}

#[test]
fn many_secrets_on_one_line_are_capped() {
    let mut rng = Rng::new(210);
    let line: Vec<String> = (0..2000)
        .map(|_| format!("ghp_{}", rng.string(&alnum(), 36)))
        .collect();
    let findings = scan("many", &line.join(" "));
    assert_eq!(findings.len(), airlock_secrets::MAX_FINDINGS_PER_LINE);
}

#[test]
fn pathological_inputs_stay_fast() {
    let started = Instant::now();
    // 256 KiB: several windows each; larger inputs only cost time in debug builds
    let mib = 256 * 1024;
    let inputs = [
        "a".repeat(mib),
        "ey".repeat(mib / 2),
        "eyJ.".repeat(mib / 4),
        "password=".repeat(mib / 9),
        "password = \"".repeat(mib / 12),
        "-----BEGIN PRIVATE KEY-----".repeat(mib / 27),
        "AKIA".repeat(mib / 4),
        "sk-".repeat(mib / 3),
        "glpat-".repeat(mib / 6),
        "xoxb-1234567-".repeat(mib / 13),
        "é".repeat(mib / 2),
        "\u{0}".repeat(mib),
    ];
    let scanner = Scanner::new(Allowlist::default());
    for input in &inputs {
        let one = Instant::now();
        let _ = scanner.scan_lines("p", [(1, input.as_str())]);
        eprintln!("{:?} for {:?}...", one.elapsed(), &input[..8]);
    }
    // generous: the point is linear time, not a benchmark (debug builds are slow)
    assert!(
        started.elapsed().as_secs() < 120,
        "took {:?}",
        started.elapsed()
    );
}

#[test]
fn many_lines() {
    let secret = github_token(211);
    let mut text = "let x = 1;\n".repeat(100_000);
    text.push_str(&format!("let t = \"{secret}\";\n"));
    let findings = scan("big.rs", &text);
    assert_single(&findings, "github-token", 100_001, 10, &secret);
}

#[test]
fn many_key_blocks_on_one_line_stay_linear() {
    let body = Rng::new(212).string(&base64_chars(), 64);
    let block = format!("\"private_key\": \"-----BEGIN PRIVATE KEY-----\\n{body}\\n\", ");
    let line = block.repeat(256 * 1024 / block.len());
    let text = format!("{{\"type\": \"service_account\",\n{line}\n");
    let started = Instant::now();
    let findings = scan("sa.json", &text);
    assert_eq!(findings.len(), airlock_secrets::MAX_FINDINGS_PER_LINE);
    assert!(findings.iter().all(|f| f.rule == "gcp-service-account-key"));
    assert!(started.elapsed().as_secs() < 60);
}

// ---- Files git calls binary ---------------------------------------------------------------

fn aws_key(seed: u64) -> String {
    format!(
        "AKIA{}",
        Rng::new(seed).string(&format!("{UPPER}{DIGITS}"), 16)
    )
}

#[test]
fn a_nul_byte_next_to_a_secret_does_not_hide_it() {
    let key = aws_key(220);
    let mut blob = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
    blob.extend_from_slice(format!("\0aws_access_key_id={key}\0").as_bytes());
    blob.extend_from_slice(b"\xff\xfe\xc3");
    let report = Scanner::new(Allowlist::default()).scan_blob("logo.png", None, &blob);
    assert_eq!(report.findings.len(), 1, "{:?}", report.findings);
    assert_eq!(report.findings[0].rule, "aws-access-key-id");
    // the PNG signature holds two `\n`
    assert_eq!(report.findings[0].line, 3);
    assert_does_not_leak(&report.findings[0], &key);
}

#[test]
fn a_secret_in_utf16_text_is_found_in_either_byte_order() {
    let key = aws_key(221);
    let text = format!("[default]\r\naws_access_key_id = {key}\r\n");
    let le: Vec<u8> = [0xFF, 0xFE]
        .into_iter()
        .chain(text.encode_utf16().flat_map(u16::to_le_bytes))
        .collect();
    let be: Vec<u8> = text.encode_utf16().flat_map(u16::to_be_bytes).collect();
    for blob in [le, be] {
        let report = Scanner::new(Allowlist::default()).scan_blob("creds.txt", None, &blob);
        assert_eq!(report.findings.len(), 1, "{:?}", report.findings);
        assert_eq!(
            report.findings[0].fingerprint,
            airlock_secrets::fingerprint(&key)
        );
        assert_eq!(report.findings[0].line, 2);
    }
}

#[test]
fn a_secret_the_old_blob_held_is_not_added() {
    let (old_key, new_key) = (aws_key(222), aws_key(223));
    let old = format!("\0id={old_key}\n").into_bytes();
    let mut new = old.clone();
    new.extend_from_slice(format!("\0id={new_key}\n").as_bytes());
    let report = Scanner::new(Allowlist::default()).scan_blob("data.bin", Some(&old), &new);
    let fps: Vec<&str> = report
        .findings
        .iter()
        .map(|f| f.fingerprint.as_str())
        .collect();
    assert_eq!(fps, [airlock_secrets::fingerprint(&new_key)]);
}

/// In a binary file only runs of printable text are read: a credential
/// shape that spans bytes which are not text (as random data or a
/// compressed stream makes one by chance) is not a finding, while the same
/// credential written whole, between binary bytes, is.
#[test]
fn a_credential_shape_across_binary_bytes_is_not_a_finding() {
    let scanner = Scanner::new(Allowlist::default());
    let spanning =
        b"\x00\x9fpostgres://deploy\xc3\x28:Xq7vR2mK9wLp4ZtN\xfe@db.internal.acmecorp.io/app\x00";
    let report = scanner.scan_blob("noise.bin", None, spanning);
    assert!(report.findings.is_empty(), "{:?}", report.findings);
    let whole = b"\x00\x9fpostgres://deploy:Xq7vR2mK9wLp4ZtN@db.internal.acmecorp.io/app\x00";
    let report = scanner.scan_blob("config.bin", None, whole);
    assert_eq!(report.findings.len(), 1, "{:?}", report.findings);
    assert_eq!(report.findings[0].rule, "url-credentials");
}
