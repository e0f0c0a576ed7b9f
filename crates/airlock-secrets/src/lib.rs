//! Secret scanning for what an agent added in a change.
//!
//! [`Scanner::scan_lines`] looks at one file's added lines with a built-in ruleset (token formats
//! written from their issuers' published shapes, context rules such as passwords in URLs, and an
//! entropy heuristic for `password = "..."`-style assignments in many syntaxes) and returns
//! [`Finding`]s. [`Scanner::scan_blob`] does the same for the new content of a file git calls
//! binary. A finding names the rule, the place and a fingerprint of the secret; it never contains
//! the secret or any part of it. An [`Allowlist`] (the `.airlock/secrets-allow` file), the inline
//! marker [`INLINE_MARKER`] and a repository's `.gitleaks.toml` ([`Gitleaks`], which may also add
//! rules) suppress findings; suppressed findings stay visible through [`Scanner::scan_report`].
//!
//! The scanner is line based: a secret split across lines, or encoded (base64, reversed, ...), is
//! not found. Lines longer than [`WINDOW`] bytes are scanned in overlapping windows of that size,
//! so the cost stays linear in the input however hostile it is.

mod allowlist;
mod gitleaks;
mod rules;

use std::fmt;
use std::sync::OnceLock;

use regex::Regex;
use sha2::{Digest, Sha256};

pub use allowlist::{Allowlist, AllowlistError};
pub use gitleaks::{Gitleaks, GitleaksDiagnostic, GitleaksError};
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
    /// An allowlist of the repository's `.gitleaks.toml` matched.
    GitleaksAllowlist,
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
    gitleaks: Option<std::sync::Arc<Gitleaks>>,
}

/// A match of a built-in or a `.gitleaks.toml` rule, before allowlisting.
struct Hit<'r> {
    id: &'r str,
    description: &'r str,
    /// byte span of the secret in the line (for private keys: the header)
    start: usize,
    end: usize,
    /// byte span of the whole match
    whole: (usize, usize),
    fingerprint: String,
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
        Scanner {
            allow,
            gitleaks: None,
        }
    }

    /// The built-in rules (unless the `.gitleaks.toml` turns them off) plus its rules, with its
    /// allowlists besides `allow`.
    pub fn with_gitleaks(allow: Allowlist, gitleaks: Gitleaks) -> Scanner {
        Scanner {
            allow,
            gitleaks: Some(std::sync::Arc::new(gitleaks)),
        }
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
        let builtin = self.gitleaks.as_ref().is_none_or(|g| g.use_builtin);
        let service_account = lines.iter().any(|(_, t)| is_service_account_marker(t));
        let manifest_values = if builtin {
            kubernetes_secret_values(&lines)
        } else {
            Vec::new()
        };
        let mut report = ScanReport::default();
        if let Some(g) = &self.gitleaks {
            // rules that name a kind of file (`path` without `regex`): the file itself is reported
            for rule in g.rules.iter().filter(|r| r.regex.is_none()) {
                if rule.path.as_ref().is_some_and(|p| p.is_match(path)) && !lines.is_empty() {
                    let finding = Finding {
                        rule: rule.id.clone(),
                        description: rule.description.clone(),
                        path: path.to_string(),
                        line: lines[0].0,
                        column: 1,
                        fingerprint: fingerprint(path),
                    };
                    self.judge(&mut report, finding, false, path, "", "", "");
                }
            }
        }
        for (i, &(number, text)) in lines.iter().enumerate() {
            let mut candidates = if builtin {
                scan_line(text, &lines[i + 1..], number, service_account)
            } else {
                Vec::new()
            };
            if let Some(&(_, start, end)) = manifest_values.iter().find(|v| v.0 == i) {
                // the manifest says what this is: it replaces heuristic findings on the value
                let heuristic = [rules::GENERIC_ID, rules::PROVIDER_ID].map(rules::rule_index);
                candidates.retain(|c| {
                    !(heuristic.contains(&Some(c.rule)) && c.start < end && start < c.end)
                });
                candidates.push(Candidate {
                    rule: rules::rule_index(rules::K8S_SECRET_ID).expect("rule exists"),
                    start,
                    end,
                    fingerprint: fingerprint(&text[start..end]),
                });
            }
            let mut hits: Vec<Hit<'_>> = candidates
                .into_iter()
                .map(|c| Hit {
                    id: RULES[c.rule].id,
                    description: RULES[c.rule].description,
                    start: c.start,
                    end: c.end,
                    whole: (c.start, c.end),
                    fingerprint: c.fingerprint,
                })
                .collect();
            if let Some(g) = &self.gitleaks {
                custom_hits(g, path, text, &mut hits);
            }
            hits.sort_by(|a, b| (a.start, a.id).cmp(&(b.start, b.id)));
            let marked = text.contains(INLINE_MARKER);
            let mut column = ColumnCounter::new(text);
            for h in hits.into_iter().take(MAX_FINDINGS_PER_LINE) {
                let finding = Finding {
                    rule: h.id.to_string(),
                    description: h.description.to_string(),
                    path: path.to_string(),
                    line: number,
                    column: column.at(h.start),
                    fingerprint: h.fingerprint,
                };
                let secret = &text[h.start..h.end];
                let whole = &text[h.whole.0..h.whole.1];
                self.judge(&mut report, finding, marked, path, secret, whole, text);
            }
        }
        report
    }
}

impl Scanner {
    /// Reports `finding`, or lists it as suppressed with the reason.
    #[allow(clippy::too_many_arguments)]
    fn judge(
        &self,
        report: &mut ScanReport,
        finding: Finding,
        marked: bool,
        path: &str,
        secret: &str,
        whole: &str,
        line: &str,
    ) {
        let gitleaks_allows = || {
            self.gitleaks.as_ref().is_some_and(|g| {
                g.allows(&gitleaks::Seen {
                    rule: &finding.rule,
                    path,
                    secret,
                    whole,
                    line,
                })
            })
        };
        let reason = if marked {
            Some(Suppression::InlineMarker)
        } else if self.allow.allows(&finding) {
            Some(Suppression::Allowlist)
        } else if gitleaks_allows() {
            Some(Suppression::GitleaksAllowlist)
        } else {
            None
        };
        match reason {
            Some(reason) => report.suppressed.push(Suppressed { finding, reason }),
            None => report.findings.push(finding),
        }
    }
}

/// Matches of the `.gitleaks.toml` rules on one line.
fn custom_hits<'r>(g: &'r Gitleaks, path: &str, text: &str, hits: &mut Vec<Hit<'r>>) {
    let mut lower: Option<String> = None;
    for rule in &g.rules {
        let Some(re) = &rule.regex else { continue };
        if rule.path.as_ref().is_some_and(|p| !p.is_match(path)) {
            continue;
        }
        if !rule.keywords.is_empty() {
            let lower = lower.get_or_insert_with(|| text.to_ascii_lowercase());
            if !rule.keywords.iter().any(|k| lower.contains(k.as_str())) {
                continue;
            }
        }
        for caps in re.captures_iter(text).take(MAX_FINDINGS_PER_LINE) {
            let whole = caps.get(0).expect("group 0");
            let Some(secret) = rule.secret(&caps).filter(|m| !m.is_empty()) else {
                continue;
            };
            if rule
                .entropy
                .is_some_and(|min| rules::entropy(secret.as_str()) < min)
            {
                continue;
            }
            hits.push(Hit {
                id: &rule.id,
                description: &rule.description,
                start: secret.start(),
                end: secret.end(),
                whole: (whole.start(), whole.end()),
                fingerprint: fingerprint(secret.as_str()),
            });
        }
    }
}

/// The values of a Kubernetes Secret manifest among the added lines, as (index into `lines`,
/// byte span): `key: value` entries of its `data:` (base64) and `stringData:` blocks. Only when the
/// lines declare `kind: Secret`; templated (`{{ .Values.x }}`) and empty values are not secrets.
fn kubernetes_secret_values(lines: &[(usize, &str)]) -> Vec<(usize, usize, usize)> {
    static KIND: OnceLock<Regex> = OnceLock::new();
    static ENTRY: OnceLock<Regex> = OnceLock::new();
    static FOLDED: OnceLock<Regex> = OnceLock::new();
    static BARE: OnceLock<Regex> = OnceLock::new();
    let folded = FOLDED
        .get_or_init(|| Regex::new(r"^\s*[A-Za-z0-9_.-]+:[ \t]*[|>][-+]?\s*$").expect("valid"));
    let bare = BARE.get_or_init(|| Regex::new(r"^\s*([A-Za-z0-9+/=]{10,})\s*$").expect("valid"));
    let kind = KIND.get_or_init(|| {
        Regex::new(r#"(?i)^\s*kind:\s*["']?secret["']?\s*(?:#.*)?$"#).expect("valid")
    });
    let entry = ENTRY.get_or_init(|| {
        Regex::new(r#"^\s*[A-Za-z0-9_.-]+:[ \t]*["']?([^\s"'#{}$]{10,})["']?\s*$"#).expect("valid")
    });
    if !lines.iter().any(|(_, t)| t.len() < 200 && kind.is_match(t)) {
        return Vec::new();
    }
    let indent = |t: &str| t.len() - t.trim_start().len();
    let mut out = Vec::new();
    // (indentation of the block's key, base64 expected)
    let mut block: Option<(usize, bool)> = None;
    for (i, &(_, t)) in lines.iter().enumerate() {
        let trimmed = t.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        if let Some((at, _)) = block
            && indent(t) <= at
        {
            block = None;
        }
        match trimmed {
            "data:" => block = Some((indent(t), true)),
            "stringData:" => block = Some((indent(t), false)),
            _ => {
                let Some((_, base64)) = block else { continue };
                // `key: |` or `key: >`: the value is the next, more indented line
                let (i, t) = if folded.is_match(t) {
                    match lines.get(i + 1) {
                        Some(&(_, next)) if indent(next) > indent(t) => (i + 1, next),
                        _ => continue,
                    }
                } else {
                    (i, t)
                };
                let Some(value) = entry
                    .captures(t)
                    .or_else(|| bare.captures(t))
                    .and_then(|c| c.get(1))
                else {
                    continue;
                };
                let v = value.as_str();
                let ok = if base64 {
                    use base64::Engine;
                    base64::engine::general_purpose::STANDARD
                        .decode(v)
                        .is_ok_and(|d| !d.is_empty())
                } else {
                    !rules::is_placeholder(v)
                };
                if ok {
                    out.push((i, value.start(), value.end()));
                }
            }
        }
    }
    out
}

impl Scanner {
    /// Scan the new content of a file git shows no lines for (a binary file): every line of the
    /// new blob, read as UTF-8 (invalid bytes replaced, NUL bytes kept) and, when it holds NUL
    /// bytes, as UTF-16 in both byte orders (so text saved as UTF-16 is read too). A secret also
    /// found in `old` (the file before the change) was not added and is not reported. Line numbers
    /// count `\n` in the view that found the secret.
    pub fn scan_blob(&self, path: &str, old: Option<&[u8]>, new: &[u8]) -> ScanReport {
        let before: Vec<String> = old
            .map(|o| {
                let r = self.blob_report(path, o);
                r.findings
                    .into_iter()
                    .chain(r.suppressed.into_iter().map(|s| s.finding))
                    .map(|f| f.fingerprint)
                    .collect()
            })
            .unwrap_or_default();
        let mut report = self.blob_report(path, new);
        report.findings.retain(|f| !before.contains(&f.fingerprint));
        report
            .suppressed
            .retain(|s| !before.contains(&s.finding.fingerprint));
        report
    }

    /// Every finding of every text view of `bytes`, each secret once.
    fn blob_report(&self, path: &str, bytes: &[u8]) -> ScanReport {
        let mut report = ScanReport::default();
        for view in text_views(bytes) {
            // Only runs of printable ASCII (and tabs) are text in a binary
            // file: a pattern spanning bytes that are not (random data, a
            // compressed stream) is noise, never a credential. Each run keeps
            // the number of the line it is on.
            let lines = view.split('\n').enumerate().flat_map(|(i, line)| {
                line.split(|c: char| !(c == '\t' || (' '..='~').contains(&c)))
                    .filter(|run| !run.is_empty())
                    .map(move |run| (i + 1, run))
            });
            let found = self.scan_report(path, lines);
            for f in found.findings {
                if !report
                    .findings
                    .iter()
                    .any(|g| g.rule == f.rule && g.fingerprint == f.fingerprint)
                {
                    report.findings.push(f);
                }
            }
            for s in found.suppressed {
                if !report.suppressed.iter().any(|t| {
                    t.finding.rule == s.finding.rule
                        && t.finding.fingerprint == s.finding.fingerprint
                }) {
                    report.suppressed.push(s);
                }
            }
        }
        report
    }
}

/// The ways a blob can be read as text: UTF-8 (lossy), and UTF-16 LE and BE when it holds NULs.
fn text_views(bytes: &[u8]) -> Vec<String> {
    let mut views = vec![String::from_utf8_lossy(bytes).into_owned()];
    if bytes.contains(&0) {
        for big_endian in [false, true] {
            let units = bytes.chunks_exact(2).map(|p| {
                if big_endian {
                    u16::from_be_bytes([p[0], p[1]])
                } else {
                    u16::from_le_bytes([p[0], p[1]])
                }
            });
            views.push(
                char::decode_utf16(units)
                    .map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER))
                    .collect(),
            );
        }
    }
    views
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
    // A token format wins over the heuristics on the same text, and of two heuristics on the same
    // text the first in the table stays.
    let heuristic = |rule: usize| rules::HEURISTIC_IDS.contains(&RULES[rule].id);
    let specific: Vec<(usize, usize)> = out
        .iter()
        .filter(|c| !heuristic(c.rule))
        .map(|c| (c.start, c.end))
        .collect();
    out.retain(|c| !heuristic(c.rule) || !specific.iter().any(|&(s, e)| c.start < e && s < c.end));
    out.sort_by_key(|c| (c.start, c.rule));
    let mut kept: Vec<Candidate> = Vec::with_capacity(out.len());
    for c in out {
        let shadowed = heuristic(c.rule)
            && kept.iter().any(|k| {
                heuristic(k.rule) && k.rule < c.rule && c.start < k.end && k.start < c.end
            });
        if !shadowed {
            kept.push(c);
        }
    }
    let mut out = kept;
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
    let wanted = rules::rules_with_keywords(&text[ws..we]);
    // Slicing at `we` bounds the search; searching from `ws` in the longer haystack keeps the
    // context before the window visible to `\b` and keeps `^` meaning the start of the line.
    let haystack = &text[..we];
    for (index, rule) in RULES.iter().enumerate() {
        if !wanted[index] {
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
                    Check::LastSegment { min_entropy } => {
                        let s = secret.as_str();
                        let random = s.rsplit('-').next().unwrap_or("");
                        (random.len() >= 8
                            && !rules::is_format_placeholder(random)
                            && rules::entropy(random) >= min_entropy)
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
                    Check::Generic { provider } => {
                        let name = caps.get(1).map_or("", |m| m.as_str());
                        let value = caps.get(2);
                        value.and_then(|v| {
                            let quoted = whole.as_str().ends_with(['"', '\'', '`']);
                            (rules::generic_accepts(name, v.as_str(), quoted, provider)
                                && !is_known_example(v.as_str()))
                            .then(|| fingerprint(v.as_str()))
                        })
                    }
                    Check::UrlPassword => {
                        let user = caps.get(1).map_or("", |m| m.as_str());
                        caps.get(2).and_then(|p| {
                            rules::url_password_accepts(user, p.as_str(), whole.as_str())
                                .then(|| fingerprint(p.as_str()))
                        })
                    }
                    Check::XmlOpen => {
                        let name = secret.as_str();
                        xml_element_value(line.following, line.number).and_then(|v| {
                            (rules::generic_accepts(name, &v, true, false)
                                || rules::generic_accepts(name, &v, true, true))
                            .then(|| fingerprint(&v))
                        })
                    }
                    Check::PrivateKey => {
                        private_key_body(text, secret.end(), line.following, line.number)
                            .map(|b| fingerprint(&b))
                    }
                };
                let Some(fp) = fp else { continue };
                let (start, end) = match rule.check {
                    Check::Generic { .. } | Check::UrlPassword => {
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

/// Publicly documented credentials that are not secrets, by fingerprint (so that this source does
/// not itself hold them): the Azure Storage emulator (Azurite) account key from Microsoft's
/// documentation, the Google API keys published as examples in Firebase's SDKs, and others named
/// below.
const KNOWN_EXAMPLES: &[&str] = &[
    "0011cc25eb432071",
    "f56e323494a6ffc2",
    "2037abcaffb2b777",
    "3f370c9dd8225c63",
    "e4a5542bb7fd7b67",
    "a19f89ab3555eac1",
    "0b476bdf9acf2123",
    "eb540d2b6ee2a0a4",
    "37f8f09bdf12c2f2",
    "8731261cb72d8626",
    "49f777db995e8260",
    "27a9a42931dff7eb",
    "dc0fcf046c61640c",
    "4c98242dcadc8b29",
    "ea9bb1082cf95663",
    "3a8b61d0f636b007",
    "a6c814bc555ae62c",
    // the sample passwords of Microsoft's nuget.config reference
    "dba72c00f41f4e4c",
    "a0702bc91d699f60",
    // Yarn's public (search-only) Algolia key, in every copy of Yarn's bundle
    "2f21fd9c81678e39",
];

fn is_known_example(secret: &str) -> bool {
    let fp = fingerprint(secret);
    KNOWN_EXAMPLES.iter().any(|k| fp["sha256:".len()..] == **k)
}

/// The value of an XML element opened at the end of a line: the next added line, when it holds one
/// token (optionally followed by the closing tag).
fn xml_element_value(following: &[(usize, &str)], number: usize) -> Option<String> {
    let &(n, next) = following.first()?;
    if n != number + 1 {
        return None;
    }
    let t = next.trim();
    let t = match t.find("</") {
        Some(i) => t[..i].trim_end(),
        None => t,
    };
    (!t.is_empty() && !t.contains(['<', '>']) && !t.contains(char::is_whitespace))
        .then(|| t.to_string())
}

/// The key material after a private key header: base64 runs of 16+ characters on the same line
/// (after `\n` escapes, quotes or spaces, as in JSON) and on the next [`PRIVATE_KEY_LOOKAHEAD`]
/// adjacent added lines, up to the `-----END` line and at most [`PRIVATE_KEY_BODY_PROBE`] bytes; it
/// is what the finding's fingerprint is taken of. Armor headers (`Proc-Type:`, `DEK-Info:`) and blank lines add nothing. `None` when there is
/// no key material: a bare header in code or docs is not a secret.
fn private_key_body(
    text: &str,
    header_end: usize,
    following: &[(usize, &str)],
    number: usize,
) -> Option<String> {
    static RUN: OnceLock<Regex> = OnceLock::new();
    let run = RUN.get_or_init(|| Regex::new(r"[A-Za-z0-9+/]{16,}").expect("valid"));
    let mut body = String::new();
    // Collects runs from `s` until an `-----END` (or another header); false when the block ended.
    let collect = |s: &str, body: &mut String| -> bool {
        let s = &s[..floor_boundary(s, PRIVATE_KEY_BODY_PROBE)];
        // `\n` escapes (a key inside a JSON string) separate lines, as newlines do
        let unescaped = s.replace("\\n", "\n").replace("\\r", "\r");
        let s = unescaped.as_str();
        let (s, ended) = match s.find("-----") {
            Some(i) => (&s[..i], true),
            None => (s, false),
        };
        for m in run.find_iter(s) {
            if body.len() >= PRIVATE_KEY_BODY_PROBE {
                return false;
            }
            body.push_str(m.as_str());
        }
        !ended
    };
    let mut more = collect(&text[header_end..], &mut body);
    for (k, &(n, line)) in following.iter().take(PRIVATE_KEY_LOOKAHEAD).enumerate() {
        if !more || n != number + 1 + k || body.len() >= PRIVATE_KEY_BODY_PROBE {
            break;
        }
        more = collect(line, &mut body);
    }
    // The fixed magic an OpenSSH key body starts with ("openssh-key-v1\0") is not key material.
    let material = body.strip_prefix("b3BlbnNzaC1rZXktdjE").unwrap_or(&body);
    let ok = material.len() >= 40
        && material.bytes().any(|b| b.is_ascii_digit())
        && material.bytes().any(|b| b.is_ascii_uppercase())
        && material.bytes().any(|b| b.is_ascii_lowercase())
        && rules::entropy(material) >= 4.0
        && !rules::is_format_placeholder(material);
    ok.then_some(body)
}
