//! Normalization: what varies between two runs of the same command is
//! replaced by a placeholder before comparison.
//!
//! In order: ANSI escapes stripped; line endings unified (`\r\n` and a lone
//! `\r` become `\n`); the worktree root, temp dirs and home dir replaced by
//! `[ROOT]`, `[TMP]`, `[HOME]`; timestamps, UUIDs, hex hashes and durations
//! replaced by `[TIMESTAMP]`, `[UUID]`, `[HASH]`, `[DURATION]` (one pass of
//! one multi-pattern automaton); then the workflow's filters, in order.

use std::path::{Path, PathBuf};

use regex::Regex;
use regex::bytes::Regex as BytesRegex;
use serde::Serialize;

use crate::error::SnapError;

/// Names recorded in a snapshot's header for the built-ins, in order.
pub const BUILTIN_NAMES: &[&str] = &[
    "ansi",
    "line-endings",
    "root",
    "tmp",
    "home",
    "timestamps",
    "uuids",
    "hashes",
    "durations",
];

const TIMESTAMP: &str = concat!(
    // RFC 3339 / ISO 8601, with `T` or a space, optional fraction and zone.
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}:[0-9]{2}(?:[.,][0-9]+)?(?:Z|[+-][0-9]{2}:?[0-9]{2}| ?UTC)?",
    // Common Log Format: 10/Oct/2000:13:55:36 -0700
    r"|[0-9]{2}/(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)/[0-9]{4}:[0-9]{2}:[0-9]{2}:[0-9]{2} [+-][0-9]{4}",
    // Go / Python logging: 2009/11/10 23:00:00(.000)
    r"|[0-9]{4}/[0-9]{2}/[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}(?:[.,][0-9]+)?",
    // RFC 2822 / HTTP dates: Tue, 15 Nov 1994 08:12:31 GMT
    r"|(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), [0-9]{2} (?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [0-9]{4} [0-9]{2}:[0-9]{2}:[0-9]{2} (?:GMT|UTC|[+-][0-9]{4})",
    // syslog: Oct 11 22:14:15
    r"|(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [ 0-9][0-9] [0-9]{2}:[0-9]{2}:[0-9]{2}",
);
const UUID: &str = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}";
const HASH: &str = r"(?-u:\b)[0-9a-f]{7,64}(?-u:\b)";
const DURATION: &str = r"(?-u:\b)[0-9]+(?:\.[0-9]+)? ?(?:ns|us|µs|ms|s|secs?|seconds?|m|mins?|minutes?|h|hours?)(?-u:\b)";
const ANSI: &str = r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[ -/]*[0-~]";

/// A workflow filter: every match of `regex` becomes `placeholder`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Filter {
    pub regex: String,
    pub placeholder: String,
}

impl Filter {
    /// Compiles the regex, or says where in it the problem is.
    pub fn compile(&self) -> Result<Regex, SnapError> {
        check_regex(&self.regex)?;
        Regex::new(&self.regex).map_err(|e| SnapError::Filter {
            regex: self.regex.clone(),
            offset: 0,
            message: e
                .to_string()
                .lines()
                .last()
                .unwrap_or("")
                .trim()
                .to_string(),
        })
    }
}

/// Checks a regex, reporting the 0-based character offset of a syntax error.
pub fn check_regex(regex: &str) -> Result<(), SnapError> {
    let fail = |span: &regex_syntax::ast::Span, kind: &dyn std::fmt::Display| SnapError::Filter {
        regex: regex.to_string(),
        offset: regex[..span.start.offset.min(regex.len())].chars().count(),
        message: kind.to_string(),
    };
    let ast = regex_syntax::ast::parse::Parser::new()
        .parse(regex)
        .map_err(|e| fail(e.span(), e.kind()))?;
    regex_syntax::hir::translate::Translator::new()
        .translate(regex, &ast)
        .map_err(|e| fail(e.span(), e.kind()))?;
    Ok(())
}

/// Paths that vary between machines and runs.
#[derive(Debug, Clone, Default)]
pub struct Context {
    /// The worktree or repository root.
    pub root: Option<PathBuf>,
    /// Temp dirs (the run's TMPDIR, the system temp dir). The first
    /// component below one is usually random (`/tmp/tmp.x1Y2`), so it becomes
    /// part of `[TMP]`.
    pub tmp: Vec<PathBuf>,
    pub home: Option<PathBuf>,
}

impl Context {
    /// The current process's home and temp dir, and `root`.
    pub fn current(root: Option<PathBuf>) -> Context {
        let mut tmp = vec![std::env::temp_dir()];
        if tmp[0] != Path::new("/tmp") {
            tmp.push("/tmp".into());
        }
        Context {
            root,
            tmp,
            home: std::env::var_os("HOME").map(PathBuf::from),
        }
    }
}

pub struct Normalizer {
    ansi: BytesRegex,
    /// Literal paths, longest first, with their placeholder.
    paths: Vec<(String, &'static str)>,
    builtin: regex::Regex,
    filters: Vec<(Regex, String)>,
    names: Vec<String>,
}

/// Which alternative of the built-in automaton matched.
const KINDS: &[&str] = &["[TMP]", "[TIMESTAMP]", "[UUID]", "[HASH]", "[DURATION]"];

impl Normalizer {
    pub fn new(ctx: &Context, filters: &[Filter]) -> Result<Normalizer, SnapError> {
        let mut paths: Vec<(String, &'static str)> = Vec::new();
        let mut add = |p: &PathBuf, ph: &'static str| {
            let s = p.to_string_lossy().trim_end_matches('/').to_string();
            // `/` or an empty path would replace every slash.
            if s.len() >= 2 && !paths.iter().any(|(q, _)| *q == s) {
                paths.push((s, ph));
            }
        };
        if let Some(root) = &ctx.root {
            add(root, "[ROOT]");
        }
        if let Some(home) = &ctx.home {
            add(home, "[HOME]");
        }
        paths.sort_by_key(|p| std::cmp::Reverse(p.0.len()));

        // Below a system temp dir, the first component is a random name.
        let tmp_alt = ctx
            .tmp
            .iter()
            .map(|t| t.to_string_lossy().trim_end_matches('/').to_string())
            .filter(|t| t.len() >= 2)
            .map(|t| format!(r"{}(?:/[^\s/'\x22:;,)\]]+|(?-u:\b))", regex::escape(&t)))
            .collect::<Vec<_>>();
        let tmp_alt = if tmp_alt.is_empty() {
            // Never matches: a NUL never survives into text.
            r"\x00\x00NEVER".to_string()
        } else {
            tmp_alt.join("|")
        };
        let alts = [tmp_alt.as_str(), TIMESTAMP, UUID, HASH, DURATION];
        let pattern = alts
            .iter()
            .map(|a| format!("({a})"))
            .collect::<Vec<_>>()
            .join("|");
        let builtin = Regex::new(&pattern).expect("built-in patterns compile");

        let mut names: Vec<String> = BUILTIN_NAMES.iter().map(|s| s.to_string()).collect();
        let mut compiled = Vec::new();
        for f in filters {
            compiled.push((f.compile()?, f.placeholder.clone()));
            names.push(format!("filter:{} => {}", f.regex, f.placeholder));
        }
        Ok(Normalizer {
            ansi: BytesRegex::new(ANSI).expect("ANSI pattern compiles"),
            paths,
            builtin,
            filters: compiled,
            names,
        })
    }

    /// What the header records: built-ins, then `filter:REGEX => PLACEHOLDER`.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    pub fn apply(&self, text: &str) -> String {
        let mut text: String = if text.contains('\x1b') {
            let stripped = self.ansi.replace_all(text.as_bytes(), &b""[..]);
            // Removing whole escape sequences from valid UTF-8 keeps it valid.
            String::from_utf8_lossy(&stripped).into_owned()
        } else {
            text.to_string()
        };
        if text.contains('\r') {
            text = text.replace("\r\n", "\n").replace('\r', "\n");
        }
        for (path, placeholder) in &self.paths {
            if text.contains(path.as_str()) {
                text = replace_path(&text, path, placeholder);
            }
        }
        text = self.builtins(&text);
        for (re, placeholder) in &self.filters {
            if let std::borrow::Cow::Owned(s) = re.replace_all(&text, regex::NoExpand(placeholder))
            {
                text = s;
            }
        }
        text
    }

    fn builtins(&self, text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        let mut last = 0;
        let mut locs = self.builtin.capture_locations();
        let mut at = 0;
        while at <= text.len() {
            let Some(m) = self.builtin.captures_read_at(&mut locs, text, at) else {
                break;
            };
            let kind = (1..=KINDS.len())
                .find(|&g| locs.get(g).is_some())
                .map(|g| g - 1)
                .unwrap_or(0);
            let s = m.as_str();
            let keep = KINDS[kind] == "[HASH]"
                && !(s.bytes().any(|b| b.is_ascii_digit()) && s.bytes().any(|b| b >= b'a'));
            if !keep {
                out.push_str(&text[last..m.start()]);
                out.push_str(KINDS[kind]);
                last = m.end();
            }
            at = if m.end() > m.start() {
                m.end()
            } else {
                m.end() + 1
            };
        }
        out.push_str(&text[last..]);
        out
    }
}

/// Replaces `path` where it is a whole path prefix: not followed by a
/// character that would continue a file name (`/home/u` is not in `/home/u2`).
fn replace_path(text: &str, path: &str, placeholder: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for (i, _) in text.match_indices(path) {
        if i < last {
            continue;
        }
        let next = text[i + path.len()..].chars().next();
        let continues = next.is_some_and(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.'));
        if continues {
            continue;
        }
        out.push_str(&text[last..i]);
        out.push_str(placeholder);
        last = i + path.len();
    }
    out.push_str(&text[last..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(text: &str) -> String {
        let ctx = Context {
            root: Some("/work/repo".into()),
            tmp: vec!["/tmp".into(), "/var/run/tmp".into()],
            home: Some("/home/ann".into()),
        };
        Normalizer::new(&ctx, &[]).unwrap().apply(text)
    }

    #[test]
    fn ansi_escapes_are_stripped() {
        assert_eq!(
            norm("\x1b[1;31merror\x1b[0m: x\x1b]0;title\x07!\x1b(B"),
            "error: x!"
        );
    }

    #[test]
    fn line_endings_are_unified() {
        assert_eq!(norm("a\r\nb\rc\n"), "a\nb\nc\n");
    }

    #[test]
    fn paths_become_placeholders() {
        assert_eq!(norm("/work/repo/src/x.rs"), "[ROOT]/src/x.rs");
        assert_eq!(norm("/work/repo2/x"), "/work/repo2/x");
        assert_eq!(
            norm("/home/ann/.cargo /home/anna"),
            "[HOME]/.cargo /home/anna"
        );
        assert_eq!(norm("at /tmp/.tmpAb12Cd/f.txt"), "at [TMP]/f.txt");
        assert_eq!(norm("/var/run/tmp/x y"), "[TMP] y");
        assert_eq!(norm("/tmpfoo"), "/tmpfoo");
        assert_eq!(norm("in /tmp"), "in [TMP]");
    }

    #[test]
    fn timestamps_become_placeholders() {
        for ts in [
            "2024-05-01T12:34:56Z",
            "2024-05-01T12:34:56.123456+02:00",
            "2024-05-01 12:34:56",
            "10/Oct/2000:13:55:36 -0700",
            "2009/11/10 23:00:00.123",
            "Tue, 15 Nov 1994 08:12:31 GMT",
            "Oct 11 22:14:15",
        ] {
            assert_eq!(norm(&format!("[{ts}] ok")), "[[TIMESTAMP]] ok", "{ts}");
        }
    }

    #[test]
    fn durations_uuids_and_hashes_become_placeholders() {
        assert_eq!(
            norm("finished in 0.52s; took 12 ms, 3m, 1.5 seconds"),
            "finished in [DURATION]; took [DURATION], [DURATION], [DURATION]"
        );
        assert_eq!(
            norm("id 123e4567-e89b-12d3-a456-426614174000."),
            "id [UUID]."
        );
        assert_eq!(
            norm(
                "commit 1a2b3c4d, tree 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
            ),
            "commit [HASH], tree [HASH]"
        );
        // Words made of hex letters and plain numbers stay.
        assert_eq!(norm("defaced 1234567 cafe"), "defaced 1234567 cafe");
        assert_eq!(norm("5 steps, 3 sheep, v1.2"), "5 steps, 3 sheep, v1.2");
    }

    #[test]
    fn workflow_filters_come_last_in_order() {
        let f = |r: &str, p: &str| Filter {
            regex: r.into(),
            placeholder: p.into(),
        };
        let n = Normalizer::new(
            &Context::default(),
            &[f(r"pid=\d+", "pid=[PID]"), f(r"\[PID\]", "$0")],
        )
        .unwrap();
        // The placeholder is literal: `$0` is not expanded.
        assert_eq!(n.apply("pid=42 in 3ms"), "pid=$0 in [DURATION]");
        assert_eq!(n.names().last().unwrap(), r"filter:\[PID\] => $0");
    }

    #[test]
    fn a_bad_filter_regex_says_where() {
        let e = check_regex("ab(c").unwrap_err();
        assert!(matches!(e, SnapError::Filter { offset: 2, .. }), "{e:?}");
        let e = check_regex("é[z-a]").unwrap_err();
        assert!(matches!(e, SnapError::Filter { offset: 2, .. }), "{e:?}");
        assert_eq!(
            e.to_string(),
            "invalid filter regex `é[z-a]` at character 2: invalid character class range, the start must be <= the end"
        );
    }
}
