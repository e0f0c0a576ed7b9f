//! Secret scanning for the lines an agent added in a change.
//!
//! [`Scanner::scan_lines`] looks at one file's added lines with a built-in ruleset (token formats
//! plus an entropy heuristic for `password = "..."`-style assignments) and returns [`Finding`]s.
//! A finding names the rule, the place and a fingerprint of the secret; it never contains the
//! secret or any part of it. An [`Allowlist`] (the `.airlock/secrets-allow` file) and the inline
//! marker [`INLINE_MARKER`] suppress findings; suppressed findings stay visible through
//! [`Scanner::scan_report`].
//!
//! The scanner is line based: a secret split across lines, or encoded (base64, reversed, ...), is
//! not found. Lines longer than [`WINDOW`] bytes are scanned in overlapping windows of that size,
//! so the cost stays linear in the input however hostile it is.

mod allowlist;
mod rules;

use std::fmt;
use std::sync::OnceLock;

use regex::Regex;
use sha2::{Digest, Sha256};

pub use allowlist::{Allowlist, AllowlistError};
pub use rules::{GENERIC_MIN_ENTROPY, GENERIC_MIN_LEN};

use rules::{Check, RULES};

/// A line containing this marker is not reported (its findings are listed as suppressed).
pub const INLINE_MARKER: &str = "airlock:allow-secret";

/// Lines longer than this many bytes are scanned in windows of this size.
pub const WINDOW: usize = 64 * 1024;
/// Consecutive windows overlap by this many bytes; a match shorter than this is never cut in two.
pub const WINDOW_OVERLAP: usize = 8 * 1024;
/// At most this many findings (reported plus suppressed) are produced for one line.
pub const MAX_FINDINGS_PER_LINE: usize = 256;

/// How many following added lines are searched for the key material after a private key header.
const PRIVATE_KEY_LOOKAHEAD: usize = 4;
/// How many bytes after a private key header (or at the start of a following line) are examined.
const PRIVATE_KEY_BODY_PROBE: usize = 512;

/// One secret found on an added line.
#[derive(Debug, Clone, serde::Serialize, PartialEq)]
pub struct Finding {
    /// Stable rule id, see [`Scanner::rules`].
    pub rule: String,
    /// Human description of the rule.
    pub description: String,
    /// Path of the file, as given to [`Scanner::scan_lines`].
    pub path: String,
    /// 1-based line number in the new file.
    pub line: usize,
    /// 1-based column, in characters (Unicode scalar values), where the secret starts. For
    /// `private-key` and `gcp-service-account-key` it is where the `-----BEGIN` header starts.
    pub column: usize,
    /// `sha256:` and the first 16 hex digits of the SHA-256 of the secret: identifies the secret
    /// (for the allowlist) without revealing it.
    pub fingerprint: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}: {} ({})",
            self.path, self.line, self.column, self.rule, self.description, self.fingerprint
        )
    }
}

/// Why a finding was not reported.
#[derive(Debug, Clone, Copy, serde::Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Suppression {
    /// The line contains [`INLINE_MARKER`].
    InlineMarker,
    /// An entry of the [`Allowlist`] matched.
    Allowlist,
}

/// A finding that was found but not reported, and why.
#[derive(Debug, Clone, serde::Serialize, PartialEq)]
pub struct Suppressed {
    pub finding: Finding,
    pub reason: Suppression,
}

/// Everything one scan found: reported findings and suppressed ones.
#[derive(Debug, Clone, Default, serde::Serialize, PartialEq)]
pub struct ScanReport {
    pub findings: Vec<Finding>,
    pub suppressed: Vec<Suppressed>,
}

/// The fingerprint of a secret as it appears in findings and in the allowlist.
pub fn fingerprint(secret: &str) -> String {
    let digest = Sha256::digest(secret.as_bytes());
    format!("sha256:{}", &hex::encode(digest)[..16])
}

/// The built-in ruleset plus an allowlist. Construction is cheap: each rule's regexes are compiled
/// once per process, the first time a line contains one of the rule's keywords.
#[derive(Debug, Clone, Default)]
pub struct Scanner {
    allow: Allowlist,
}

/// A match that passed its rule's checks, before allowlisting.
struct Candidate {
    rule: usize,
    /// byte span of the secret in the line (for private keys: the header)
    start: usize,
    end: usize,
    fingerprint: String,
}

impl Scanner {
    pub fn new(allow: Allowlist) -> Scanner {
        Scanner { allow }
    }

    /// The built-in rules as `(id, description)`.
    pub fn rules() -> Vec<(&'static str, &'static str)> {
        RULES.iter().map(|r| (r.id, r.description)).collect()
    }

    /// Scan the added lines of one file. `lines` yields (1-based line number in the new file,
    /// line text). Consecutive numbers mark adjacent lines (a private key header and its body).
    pub fn scan_lines<'a>(
        &self,
        path: &str,
        lines: impl IntoIterator<Item = (usize, &'a str)>,
    ) -> Vec<Finding> {
        self.scan_report(path, lines).findings
    }

    /// Like [`Scanner::scan_lines`], but also returns what the allowlist and inline markers hid.
    pub fn scan_report<'a>(
        &self,
        path: &str,
        lines: impl IntoIterator<Item = (usize, &'a str)>,
    ) -> ScanReport {
        let lines: Vec<(usize, &str)> = lines
            .into_iter()
            .map(|(n, t)| (n, t.strip_suffix('\r').unwrap_or(t)))
            .collect();
        let service_account = lines.iter().any(|(_, t)| is_service_account_marker(t));
        let mut report = ScanReport::default();
        for (i, &(number, text)) in lines.iter().enumerate() {
            let candidates = scan_line(text, &lines[i + 1..], number, service_account);
            let marked = text.contains(INLINE_MARKER);
            let mut column = ColumnCounter::new(text);
            for c in candidates.into_iter().take(MAX_FINDINGS_PER_LINE) {
                let rule = &RULES[c.rule];
                let finding = Finding {
                    rule: rule.id.to_string(),
                    description: rule.description.to_string(),
                    path: path.to_string(),
                    line: number,
                    column: column.at(c.start),
                    fingerprint: c.fingerprint,
                };
                let reason = if marked {
                    Some(Suppression::InlineMarker)
                } else if self.allow.allows(&finding) {
                    Some(Suppression::Allowlist)
                } else {
                    None
                };
                match reason {
                    Some(reason) => report.suppressed.push(Suppressed { finding, reason }),
                    None => report.findings.push(finding),
                }
            }
        }
        report
    }
}

/// Converts increasing byte offsets of one line to 1-based character columns in linear time.
struct ColumnCounter<'a> {
    text: &'a str,
    byte: usize,
    chars: usize,
}

impl<'a> ColumnCounter<'a> {
    fn new(text: &'a str) -> Self {
        ColumnCounter {
            text,
            byte: 0,
            chars: 0,
        }
    }

    fn at(&mut self, offset: usize) -> usize {
        if offset < self.byte {
            self.byte = 0;
            self.chars = 0;
        }
        self.chars += self.text[self.byte..offset].chars().count();
        self.byte = offset;
        self.chars + 1
    }
}

fn is_service_account_marker(text: &str) -> bool {
    static RE: OnceLock<Regex> = OnceLock::new();
    text.contains("service_account")
        && RE
            .get_or_init(|| Regex::new(r#""type"\s*:\s*"service_account""#).expect("valid"))
            .is_match(text)
}

/// Largest char boundary at or below `i`.
fn floor_boundary(s: &str, mut i: usize) -> usize {
    if i >= s.len() {
        return s.len();
    }
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// All candidates on one line, sorted by position, with overlaps resolved.
fn scan_line(
    text: &str,
    following: &[(usize, &str)],
    number: usize,
    service_account: bool,
) -> Vec<Candidate> {
    let mut out: Vec<Candidate> = Vec::new();
    let hard_cap = MAX_FINDINGS_PER_LINE * 4;
    let mut line = Line {
        text,
        following,
        number,
        service_account,
        has_private_key_field: None,
    };
    let mut ws = 0;
    loop {
        let we = floor_boundary(text, ws + WINDOW);
        let last = we == text.len();
        // This window owns the matches that start before the next window does.
        let owned_until = if last {
            usize::MAX
        } else {
            floor_boundary(text, we - WINDOW_OVERLAP)
        };
        scan_window(&mut line, ws, we, owned_until, &mut out);
        if last || out.len() >= hard_cap {
            break;
        }
        ws = owned_until;
    }
    // A specific rule wins over the generic heuristic on the same text.
    let generic = rules::rule_index(rules::GENERIC_ID).expect("generic rule exists");
    let specific: Vec<(usize, usize)> = out
        .iter()
        .filter(|c| c.rule != generic)
        .map(|c| (c.start, c.end))
        .collect();
    out.retain(|c| c.rule != generic || !specific.iter().any(|&(s, e)| c.start < e && s < c.end));
    out.sort_by_key(|c| (c.start, c.rule));
    out.dedup_by(|a, b| a.rule == b.rule && a.start == b.start);
    out
}

/// One added line and what the rules need to know around it.
struct Line<'a, 'b> {
    text: &'a str,
    /// the added lines after this one
    following: &'b [(usize, &'a str)],
    number: usize,
    /// the file's added lines contain `"type": "service_account"`
    service_account: bool,
    /// computed once per line, not per match: a hostile line may hold many key headers
    has_private_key_field: Option<bool>,
}

fn scan_window(
    line: &mut Line<'_, '_>,
    ws: usize,
    we: usize,
    owned_until: usize,
    out: &mut Vec<Candidate>,
) {
    let text = line.text;
    let lower = text[ws..we].to_ascii_lowercase();
    // Slicing at `we` bounds the search; searching from `ws` in the longer haystack keeps the
    // context before the window visible to `\b` and keeps `^` meaning the start of the line.
    let haystack = &text[..we];
    for (index, rule) in RULES.iter().enumerate() {
        if !rule.keywords.iter().any(|k| lower.contains(k)) {
            continue;
        }
        for re in rules::compiled(index) {
            let mut pos = ws;
            while pos <= haystack.len() {
                let Some(caps) = re.captures_at(haystack, pos) else {
                    break;
                };
                let whole = caps.get(0).expect("group 0");
                pos = if whole.end() > whole.start() {
                    whole.end()
                } else {
                    whole.end()
                        + haystack[whole.end()..]
                            .chars()
                            .next()
                            .map_or(1, char::len_utf8)
                };
                if whole.start() >= owned_until {
                    break;
                }
                let Some(secret) = caps.get(1) else {
                    continue;
                };
                let fp = match rule.check {
                    Check::Random { skip, min_entropy } => {
                        let s = secret.as_str();
                        let random = s.get(skip..).unwrap_or("");
                        (!rules::is_format_placeholder(random)
                            && rules::entropy(random) >= min_entropy
                            && !is_known_example(s))
                        .then(|| fingerprint(s))
                    }
                    Check::AwsKeyId => {
                        let s = secret.as_str();
                        (!s.ends_with("EXAMPLE") && !rules::looks_filled_in(&s[4..]))
                            .then(|| fingerprint(s))
                    }
                    Check::Jwt => {
                        rules::jwt_valid(secret.as_str()).then(|| fingerprint(secret.as_str()))
                    }
                    Check::Generic => {
                        let name = caps.get(1).map_or("", |m| m.as_str());
                        let value = caps.get(2);
                        value.and_then(|v| {
                            let quoted = whole.as_str().ends_with(['"', '\'', '`']);
                            rules::generic_accepts(name, v.as_str(), quoted)
                                .then(|| fingerprint(v.as_str()))
                        })
                    }
                    Check::PrivateKey => {
                        private_key_body(text, secret.end(), line.following, line.number)
                            .map(|b| fingerprint(&b))
                    }
                };
                let Some(fp) = fp else { continue };
                let (start, end) = match rule.check {
                    Check::Generic => {
                        let v = caps.get(2).expect("checked above");
                        (v.start(), v.end())
                    }
                    _ => (secret.start(), secret.end()),
                };
                let mut rule_index = index;
                if rule.check == Check::PrivateKey
                    && line.service_account
                    && *line
                        .has_private_key_field
                        .get_or_insert_with(|| text.contains("\"private_key\""))
                {
                    rule_index = rules::rule_index(rules::GCP_SA_ID).expect("gcp rule exists");
                }
                out.push(Candidate {
                    rule: rule_index,
                    start,
                    end,
                    fingerprint: fp,
                });
            }
        }
    }
}

/// Publicly documented development credentials that are not secrets.
fn is_known_example(secret: &str) -> bool {
    // The Azure Storage emulator (Azurite) account key, published in Microsoft's documentation.
    secret
        == "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
}

/// The key material after a private key header: on the same line (after `\n` escapes or spaces,
/// as in JSON) or at the start of one of the next few adjacent added lines (armor headers such as
/// `Proc-Type:` and blank lines are skipped). `None` when there is none: a bare header in code or
/// docs is not a secret.
fn private_key_body(
    text: &str,
    header_end: usize,
    following: &[(usize, &str)],
    number: usize,
) -> Option<String> {
    static SAME_LINE: OnceLock<Regex> = OnceLock::new();
    static NEXT_LINE: OnceLock<Regex> = OnceLock::new();
    static ARMOR: OnceLock<Regex> = OnceLock::new();
    let same_line = SAME_LINE.get_or_init(|| {
        Regex::new(r#"^(?:\\r|\\n|\s|["'+,])*([A-Za-z0-9+/]{40,})"#).expect("valid")
    });
    let next_line = NEXT_LINE
        .get_or_init(|| Regex::new(r"^[^A-Za-z0-9+/]{0,40}([A-Za-z0-9+/]{40,})").expect("valid"));
    let armor = ARMOR.get_or_init(|| Regex::new(r"^\s*[A-Za-z][A-Za-z-]*:\s").expect("valid"));

    let probe = |s: &str, re: &Regex| -> Option<String> {
        let s = &s[..floor_boundary(s, PRIVATE_KEY_BODY_PROBE)];
        let body = re.captures(s)?.get(1)?.as_str();
        let ok = body.bytes().any(|b| b.is_ascii_digit())
            && body.bytes().any(|b| b.is_ascii_uppercase())
            && body.bytes().any(|b| b.is_ascii_lowercase())
            && rules::entropy(body) >= 4.2
            && !rules::looks_filled_in(body);
        ok.then(|| body.to_string())
    };
    if let Some(body) = probe(&text[header_end..], same_line) {
        return Some(body);
    }
    for (k, &(n, line)) in following.iter().take(PRIVATE_KEY_LOOKAHEAD).enumerate() {
        if n != number + 1 + k {
            break;
        }
        let head = &line[..floor_boundary(line, PRIVATE_KEY_BODY_PROBE)];
        if head.trim().is_empty() || armor.is_match(head) {
            continue;
        }
        return probe(line, next_line);
    }
    None
}
