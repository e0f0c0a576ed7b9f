//! The `.snap` file: a header, then stdout and stderr as fenced sections.
//!
//! ```text
//! airlock snapshot v1
//! command: ["sh","-c","echo hi"]
//! origin: snap run
//! normalizers: ["ansi","line-endings"]
//! exit: 0
//!
//! ==== stdout ====
//! hi
//! ==== end ====
//! ==== stderr ====
//! ==== end ====
//! ```
//!
//! A section ends at the first line that is exactly `F end F`, where `F` is
//! the run of `=` its opening line used. The writer picks the shortest `F`
//! (at least four) whose closing line does not occur in the content, so any
//! content round-trips, including lines that look like section headers.

use std::path::Path;

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::error::SnapError;

pub const FORMAT_VERSION: u32 = 1;
const MAGIC: &str = "airlock snapshot v";

/// One stream's recorded content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Body {
    /// Normalized text (never contains `\r`).
    Text { text: String },
    /// Not text (a NUL byte or invalid UTF-8): compared by the digest of its bytes.
    Binary { sha256: String, bytes: u64 },
    /// Larger than the size cap: compared by the digest of its bytes, unnormalized.
    OverCap { sha256: String, bytes: u64 },
}

impl Body {
    pub fn text(text: impl Into<String>) -> Body {
        Body::Text { text: text.into() }
    }

    pub fn as_text(&self) -> Option<&str> {
        match self {
            Body::Text { text } => Some(text),
            _ => None,
        }
    }

    /// A sentence for a reviewer when the body is not text.
    pub fn note(&self, stream: &str) -> Option<String> {
        match self {
            Body::Text { .. } => None,
            Body::Binary { sha256, bytes } => Some(format!(
                "{stream} is binary ({bytes} bytes, sha256 {}): compared by digest, not line by line",
                &sha256[..sha256.len().min(16)]
            )),
            Body::OverCap { sha256, bytes } => Some(format!(
                "{stream} is {bytes} bytes, over the size cap ([snapshots] max_bytes): compared by the sha256 {} of its raw bytes, without normalization",
                &sha256[..sha256.len().min(16)]
            )),
        }
    }
}

/// A snapshot: what ran, how its output was normalized, and what it printed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Snapshot {
    pub command: Vec<String>,
    /// `snap run`, or `gate:NAME` when a workflow gate records it.
    pub origin: String,
    pub normalizers: Vec<String>,
    pub exit: i32,
    pub stdout: Body,
    pub stderr: Body,
}

impl Snapshot {
    /// The file's text.
    pub fn render(&self) -> String {
        let mut out = format!("{MAGIC}{FORMAT_VERSION}\n");
        out += &format!(
            "command: {}\n",
            serde_json::to_string(&self.command).unwrap_or_default()
        );
        out += &format!(
            "origin: {}\n",
            serde_json::to_string(&self.origin).unwrap_or_default()
        );
        out += &format!(
            "normalizers: {}\n",
            serde_json::to_string(&self.normalizers).unwrap_or_default()
        );
        out += &format!("exit: {}\n\n", self.exit);
        section(&mut out, "stdout", &self.stdout);
        section(&mut out, "stderr", &self.stderr);
        out
    }

    /// sha256 of [`Snapshot::render`].
    pub fn digest(&self) -> String {
        sha256_hex(self.render().as_bytes())
    }

    /// Parses a `.snap` file; `path` only names it in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Snapshot, SnapError> {
        Parser {
            lines: text.split('\n').collect(),
            pos: 0,
            path,
        }
        .snapshot()
    }
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn section(out: &mut String, stream: &str, body: &Body) {
    match body {
        Body::Text { text } => {
            let fence = fence_for(text);
            let no_eol = !text.is_empty() && !text.ends_with('\n');
            out.push_str(&format!(
                "{fence} {stream}{} {fence}\n",
                if no_eol { " no-eol" } else { "" }
            ));
            out.push_str(text);
            if no_eol {
                out.push('\n');
            }
            out.push_str(&format!("{fence} end {fence}\n"));
        }
        Body::Binary { sha256, bytes } | Body::OverCap { sha256, bytes } => {
            let kind = if matches!(body, Body::Binary { .. }) {
                "binary"
            } else {
                "over-cap"
            };
            out.push_str(&format!(
                "==== {stream} {kind} sha256={sha256} bytes={bytes} ====\n==== end ====\n"
            ));
        }
    }
}

/// The shortest fence (4 or more `=`) whose closing line is not in `text`.
fn fence_for(text: &str) -> String {
    let mut taken = Vec::new();
    for line in text.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if let Some((a, b)) = line.split_once(" end ")
            && a.len() >= 4
            && a == b
            && a.bytes().all(|c| c == b'=')
        {
            taken.push(a.len());
        }
    }
    let mut n = 4;
    while taken.contains(&n) {
        n += 1;
    }
    "=".repeat(n)
}

struct Parser<'a> {
    lines: Vec<&'a str>,
    pos: usize,
    path: &'a Path,
}

impl<'a> Parser<'a> {
    fn err(&self, line: usize, column: usize, expected: impl Into<String>) -> SnapError {
        let found = match self.lines.get(line) {
            None => "the end of the file".to_string(),
            Some(l) if line + 1 == self.lines.len() && l.is_empty() => {
                "the end of the file".to_string()
            }
            Some(l) => {
                let l = l.strip_suffix('\r').unwrap_or(l);
                let rest: String = l.chars().skip(column.saturating_sub(1)).take(60).collect();
                if rest.is_empty() {
                    "the end of the line".into()
                } else {
                    format!("`{}`", rest.escape_debug())
                }
            }
        };
        SnapError::Parse {
            path: self.path.to_path_buf(),
            line: line + 1,
            column,
            expected: expected.into(),
            found,
        }
    }

    /// The current line without a CR a Windows checkout may have added.
    fn line(&self, i: usize) -> Option<&'a str> {
        self.lines.get(i).map(|l| l.strip_suffix('\r').unwrap_or(l))
    }

    fn snapshot(mut self) -> Result<Snapshot, SnapError> {
        let first = self.line(0).unwrap_or("");
        match first.strip_prefix(MAGIC) {
            Some(v) if v == FORMAT_VERSION.to_string() => {}
            Some(v) if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) => {
                return Err(self.err(
                    0,
                    MAGIC.len() + 1,
                    format!("format version {FORMAT_VERSION} (this airlock reads only v{FORMAT_VERSION})"),
                ));
            }
            _ => return Err(self.err(0, 1, format!("`{MAGIC}{FORMAT_VERSION}`"))),
        }
        self.pos = 1;
        let mut command = None;
        let mut origin = None;
        let mut normalizers = None;
        let mut exit = None;
        const KEYS: &str = "`command:`, `origin:`, `normalizers:`, `exit:` or an empty line";
        loop {
            let i = self.pos;
            let Some(line) = self.line(i) else {
                return Err(self.err(i, 1, KEYS));
            };
            if line.is_empty() {
                if i + 1 == self.lines.len() {
                    return Err(self.err(i, 1, KEYS));
                }
                self.pos += 1;
                break;
            }
            let Some((key, value)) = line.split_once(": ") else {
                return Err(self.err(i, 1, KEYS));
            };
            let col = key.chars().count() + 3;
            let duplicate = |s: &Self| s.err(i, 1, format!("one `{key}:` line (this is a second)"));
            match key {
                "command" => {
                    if command.is_some() {
                        return Err(duplicate(&self));
                    }
                    command =
                        Some(self.json::<Vec<String>>(i, col, value, "a JSON array of strings")?);
                }
                "origin" => {
                    if origin.is_some() {
                        return Err(duplicate(&self));
                    }
                    origin = Some(self.json::<String>(i, col, value, "a JSON string")?);
                }
                "normalizers" => {
                    if normalizers.is_some() {
                        return Err(duplicate(&self));
                    }
                    normalizers =
                        Some(self.json::<Vec<String>>(i, col, value, "a JSON array of strings")?);
                }
                "exit" => {
                    if exit.is_some() {
                        return Err(duplicate(&self));
                    }
                    exit = Some(
                        value
                            .parse::<i32>()
                            .map_err(|_| self.err(i, col, "an exit code (an integer)"))?,
                    );
                }
                _ => return Err(self.err(i, 1, KEYS)),
            }
            self.pos += 1;
        }
        let missing = |what: &str, s: &Self| {
            s.err(
                s.pos - 1,
                1,
                format!("a `{what}:` line in the header before the empty line"),
            )
        };
        let command = command.ok_or_else(|| missing("command", &self))?;
        let normalizers = normalizers.ok_or_else(|| missing("normalizers", &self))?;
        let exit = exit.ok_or_else(|| missing("exit", &self))?;
        let stdout = self.section("stdout")?;
        let stderr = self.section("stderr")?;
        while let Some(line) = self.line(self.pos) {
            if !line.is_empty() {
                return Err(self.err(self.pos, 1, "nothing after the stderr section"));
            }
            self.pos += 1;
        }
        Ok(Snapshot {
            command,
            origin: origin.unwrap_or_else(|| "snap run".into()),
            normalizers,
            exit,
            stdout,
            stderr,
        })
    }

    fn json<T: serde::de::DeserializeOwned>(
        &self,
        line: usize,
        col: usize,
        value: &str,
        expected: &str,
    ) -> Result<T, SnapError> {
        serde_json::from_str(value).map_err(|e| {
            // serde_json's column is 1-based within `value`.
            let at = if e.column() > 0 { e.column() - 1 } else { 0 };
            let at = value[..value.len().min(at)].chars().count();
            self.err(line, col + at, format!("{expected} ({e})"))
        })
    }

    fn section(&mut self, stream: &str) -> Result<Body, SnapError> {
        // Empty lines between sections are allowed.
        while self.line(self.pos) == Some("") && self.pos + 1 < self.lines.len() {
            self.pos += 1;
        }
        let i = self.pos;
        let expected_open = format!("a section line `==== {stream} ====`");
        let line = self.line(i).ok_or_else(|| self.err(i, 1, &expected_open))?;
        let n = line.bytes().take_while(|&b| b == b'=').count();
        if n < 4 {
            return Err(self.err(i, 1, expected_open));
        }
        let fence = &line[..n];
        let inner = line[n..]
            .strip_prefix(' ')
            .and_then(|r| r.strip_suffix(fence))
            .and_then(|r| r.strip_suffix(' '))
            .ok_or_else(|| {
                self.err(
                    i,
                    1,
                    format!("`{fence} {stream} {fence}` (the same run of `=` on both sides)"),
                )
            })?;
        let mut words = inner.split(' ');
        if words.next() != Some(stream) {
            return Err(self.err(i, n + 2, format!("`{stream}`")));
        }
        let attrs: Vec<&str> = words.collect();
        let attr_col = n + 2 + stream.len() + 1;
        let close = format!("{fence} end {fence}");
        // Find the closing line.
        let start = i + 1;
        let end = (start..self.lines.len())
            .find(|&j| self.line(j) == Some(close.as_str()))
            .ok_or_else(|| {
                self.err(
                    self.lines.len() - 1,
                    1,
                    format!(
                        "`{close}` closing the {stream} section opened on line {}",
                        i + 1
                    ),
                )
            })?;
        self.pos = end + 1;
        let body_lines = start..end;
        match attrs.as_slice() {
            [] | ["no-eol"] => {
                let no_eol = !attrs.is_empty();
                if no_eol && body_lines.is_empty() {
                    return Err(self.err(
                        end,
                        1,
                        "a content line before the closing line (the section says `no-eol`)",
                    ));
                }
                let mut text = String::new();
                for j in body_lines {
                    text.push_str(self.line(j).unwrap_or(""));
                    text.push('\n');
                }
                if no_eol {
                    text.pop();
                }
                Ok(Body::Text { text })
            }
            [kind @ ("binary" | "over-cap"), sha, bytes] => {
                let sha256 = sha
                    .strip_prefix("sha256=")
                    .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
                    .ok_or_else(|| {
                        self.err(i, attr_col + kind.len() + 1, "`sha256=` and 64 hex digits")
                    })?;
                let bytes = bytes
                    .strip_prefix("bytes=")
                    .and_then(|b| b.parse::<u64>().ok())
                    .ok_or_else(|| {
                        self.err(
                            i,
                            attr_col + kind.len() + sha.len() + 2,
                            "`bytes=` and a size",
                        )
                    })?;
                if !body_lines.is_empty() {
                    return Err(self.err(
                        start,
                        1,
                        format!("`{close}` right after a {kind} section line (it holds a digest, not content)"),
                    ));
                }
                let sha256 = sha256.to_ascii_lowercase();
                Ok(if *kind == "binary" {
                    Body::Binary { sha256, bytes }
                } else {
                    Body::OverCap { sha256, bytes }
                })
            }
            _ => Err(self.err(
                i,
                attr_col,
                "nothing, `no-eol`, `binary sha256=… bytes=…` or `over-cap sha256=… bytes=…`",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(stdout: &str, stderr: &str) -> Snapshot {
        Snapshot {
            command: vec!["sh".into(), "-c".into(), "echo \"hi\"\nthere".into()],
            origin: "snap run".into(),
            normalizers: vec!["ansi".into(), "filter:a\"b => [X]".into()],
            exit: 3,
            stdout: Body::text(stdout),
            stderr: Body::text(stderr),
        }
    }

    fn round_trip(s: &Snapshot) {
        let text = s.render();
        let back = Snapshot::parse(&text, Path::new("x.snap"))
            .unwrap_or_else(|e| panic!("{e}\n---\n{text}"));
        assert_eq!(&back, s, "{text}");
    }

    #[test]
    fn hostile_content_round_trips() {
        let hostile = [
            "",
            "\n",
            "\n\n\n",
            "no newline",
            "a\nb",
            "==== end ====\n",
            "==== end ====",
            "==== stdout ====\n==== end ====\n===== end =====\n==== stderr ====\n",
            "===== end =====\n==== end ====\n====== end ======",
            "airlock snapshot v1\ncommand: []\nexit: 0\n\n",
            "   \t \n\u{1b}[31m\n\u{0}?? ünïcödé 🎉\n",
            "... \n...\n[..]\n",
        ];
        for out in hostile {
            for err in hostile {
                round_trip(&snap(out, err));
            }
        }
        round_trip(&Snapshot {
            stdout: Body::Binary {
                sha256: "a".repeat(64),
                bytes: 12,
            },
            stderr: Body::OverCap {
                sha256: "b".repeat(64),
                bytes: 1 << 40,
            },
            ..snap("", "")
        });
    }

    #[test]
    fn a_crlf_checkout_reads_the_same() {
        let s = snap("a\nb\n", "");
        let crlf = s.render().replace('\n', "\r\n");
        assert_eq!(Snapshot::parse(&crlf, Path::new("x")).unwrap(), s);
    }

    fn error(text: &str) -> String {
        Snapshot::parse(text, Path::new("g.snap"))
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn hand_edited_goldens_get_positions_and_expectations() {
        let good = snap("hi\n", "").render();
        assert_eq!(
            error(""),
            "g.snap:1:1: invalid snapshot: expected `airlock snapshot v1`, found the end of the file"
        );
        assert_eq!(
            error(&good.replace("v1", "v7")),
            "g.snap:1:19: invalid snapshot: expected format version 1 (this airlock reads only v1), found `7`"
        );
        assert_eq!(
            error(&good.replace("exit: 3", "exit: three")),
            "g.snap:5:7: invalid snapshot: expected an exit code (an integer), found `three`"
        );
        assert_eq!(
            error(&good.replace("exit: 3", "exti: 3")),
            "g.snap:5:1: invalid snapshot: expected `command:`, `origin:`, `normalizers:`, `exit:` or an empty line, found `exti: 3`"
        );
        let e = error(&good.replace("[\"ansi\",", "[\"ansi\" "));
        assert!(
            e.starts_with("g.snap:4:22: invalid snapshot: expected a JSON array of strings"),
            "{e}"
        );
        assert_eq!(
            error(&good.replace("\n==== end ====\n==== stderr", "\n==== stderr")),
            "g.snap:11:1: invalid snapshot: expected a section line `==== stderr ====`, found the end of the file"
        );
        assert_eq!(
            error(good.strip_suffix("==== end ====\n").unwrap()),
            "g.snap:11:1: invalid snapshot: expected `==== end ====` closing the stderr section opened on line 10, found the end of the file"
        );
        assert_eq!(
            error(&good.replace("==== stdout ====", "==== stdout ===")),
            "g.snap:7:1: invalid snapshot: expected `==== stdout ====` (the same run of `=` on both sides), found `==== stdout ===`"
        );
        assert_eq!(
            error(&good.replace("==== stdout ====", "==== stdout colour ====")),
            "g.snap:7:13: invalid snapshot: expected nothing, `no-eol`, `binary sha256=… bytes=…` or `over-cap sha256=… bytes=…`, found `colour ====`"
        );
        assert_eq!(
            error(&good.replace("==== stdout ====", "==== stderr ====")),
            "g.snap:7:6: invalid snapshot: expected `stdout`, found `stderr ====`"
        );
        assert_eq!(
            error(&format!("{good}trailing\n")),
            "g.snap:12:1: invalid snapshot: expected nothing after the stderr section, found `trailing`"
        );
        assert_eq!(
            error(&good.replace("exit: 3\n", "")),
            "g.snap:5:1: invalid snapshot: expected a `exit:` line in the header before the empty line, found the end of the line"
        );
        let bin = Snapshot {
            stdout: Body::Binary {
                sha256: "a".repeat(64),
                bytes: 1,
            },
            ..snap("", "")
        }
        .render();
        assert_eq!(
            error(&bin.replace(&"a".repeat(64), "zz")),
            "g.snap:7:20: invalid snapshot: expected `sha256=` and 64 hex digits, found `sha256=zz bytes=1 ====`"
        );
    }
}
