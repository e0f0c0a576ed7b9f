//! Helpers shared by the integration tests.
//!
//! Every secret used in the tests is generated at run time from a seeded pseudo-random generator,
//! so no token-shaped literal sits in the source (and none of them is real).

#![allow(dead_code)]

use airlock_secrets::{Allowlist, Finding, Scanner};

pub const UPPER: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";
pub const LOWER: &str = "abcdefghijklmnopqrstuvwxyz";
pub const DIGITS: &str = "0123456789";

pub fn alnum() -> String {
    format!("{UPPER}{LOWER}{DIGITS}")
}

pub fn base64_chars() -> String {
    format!("{UPPER}{LOWER}{DIGITS}+/")
}

pub fn base64url_chars() -> String {
    format!("{UPPER}{LOWER}{DIGITS}-_")
}

/// xorshift64*: deterministic, good enough to make realistic-looking random tokens.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn string(&mut self, charset: &str, len: usize) -> String {
        let chars: Vec<char> = charset.chars().collect();
        (0..len)
            .map(|_| chars[(self.next() % chars.len() as u64) as usize])
            .collect()
    }
}

pub fn b64url_encode(data: &[u8]) -> String {
    let table: Vec<char> = base64url_chars().chars().collect();
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let n = chunk.len();
        let mut buf = [0u8; 3];
        buf[..n].copy_from_slice(chunk);
        let v = (u32::from(buf[0]) << 16) | (u32::from(buf[1]) << 8) | u32::from(buf[2]);
        for i in 0..=n {
            out.push(table[((v >> (18 - 6 * i)) & 63) as usize]);
        }
    }
    out
}

pub fn numbered(text: &str) -> Vec<(usize, &str)> {
    text.split('\n')
        .enumerate()
        .map(|(i, l)| (i + 1, l))
        .collect()
}

pub fn scan(path: &str, text: &str) -> Vec<Finding> {
    Scanner::new(Allowlist::default()).scan_lines(path, numbered(text))
}

/// The finding, in every form it can leave the crate, must not contain the secret or a piece of
/// its random part (any 8 consecutive characters).
pub fn assert_does_not_leak(finding: &Finding, secret: &str) {
    let forms = [
        finding.to_string(),
        format!("{finding:?}"),
        serde_json::to_string(finding).unwrap(),
    ];
    let bytes = secret.as_bytes();
    for form in &forms {
        assert!(!form.contains(secret), "secret leaked into {form}");
        for w in bytes.windows(8) {
            let piece = std::str::from_utf8(w).unwrap();
            // well-known public prefixes (e.g. "github_pat_", "AgEIcHlwaS5vcmc") are allowed in
            // descriptions; random material is not
            if finding.description.contains(piece) {
                continue;
            }
            assert!(
                !form.contains(piece),
                "part `{piece}` of the secret leaked into {form}"
            );
        }
    }
}

/// Exactly one finding, of `rule`, at `line`:`column`, fingerprinting `secret`, leaking nothing.
pub fn assert_single(findings: &[Finding], rule: &str, line: usize, column: usize, secret: &str) {
    assert_eq!(
        findings.len(),
        1,
        "expected one {rule} finding, got {findings:#?}"
    );
    let f = &findings[0];
    assert_eq!(f.rule, rule, "{f:#?}");
    assert_eq!((f.line, f.column), (line, column), "{f:#?}");
    assert_eq!(f.fingerprint, airlock_secrets::fingerprint(secret));
    assert!(f.fingerprint.starts_with("sha256:") && f.fingerprint.len() == 7 + 16);
    assert_does_not_leak(f, secret);
}

/// 1-based character column of `needle` in `line`.
pub fn column_of(line: &str, needle: &str) -> usize {
    let byte = line.find(needle).expect("needle in line");
    line[..byte].chars().count() + 1
}
