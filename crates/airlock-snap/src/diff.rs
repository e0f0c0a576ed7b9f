//! Comparing a golden with an actual result, and showing the difference.

use std::time::{Duration, Instant};

use serde::Serialize;
use similar::algorithms::{Capture, myers};
use similar::{Algorithm, DiffOp, DiffTag};

use crate::format::{Body, Snapshot};
use crate::matcher::{LINES_WILDCARD, has_wildcards, line_matches, text_matches};

/// The outcome of comparing a golden with an actual result.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Comparison {
    pub matches: bool,
    pub exit_changed: bool,
    pub stdout_changed: bool,
    pub stderr_changed: bool,
    /// Sentences for the reviewer: binary or over-cap streams, a changed command.
    pub notes: Vec<String>,
}

pub fn compare(golden: &Snapshot, actual: &Snapshot) -> Comparison {
    let exit_changed = golden.exit != actual.exit;
    let stdout_changed = !body_matches(&golden.stdout, &actual.stdout);
    let stderr_changed = !body_matches(&golden.stderr, &actual.stderr);
    let mut notes = Vec::new();
    for (stream, g, a) in [
        ("stdout", &golden.stdout, &actual.stdout),
        ("stderr", &golden.stderr, &actual.stderr),
    ] {
        if let Some(n) = a.note(stream) {
            notes.push(n);
        } else if let Some(n) = g.note(&format!("the golden {stream}")) {
            notes.push(n);
        }
    }
    if golden.command != actual.command {
        notes.push(format!(
            "the command changed: the golden was recorded from {}",
            serde_json::to_string(&golden.command).unwrap_or_default()
        ));
    }
    if golden.normalizers != actual.normalizers {
        notes.push("the normalizers changed since the golden was recorded".into());
    }
    Comparison {
        matches: !exit_changed && !stdout_changed && !stderr_changed,
        exit_changed,
        stdout_changed,
        stderr_changed,
        notes,
    }
}

pub fn body_matches(golden: &Body, actual: &Body) -> bool {
    match (golden, actual) {
        (Body::Text { text: g }, Body::Text { text: a }) => text_matches(g, a),
        (g, a) => g == a,
    }
}

/// Lines added and removed, as a reviewer would count them.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq)]
pub struct DiffStat {
    pub added: usize,
    pub removed: usize,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Tag {
    Same,
    /// An output line absorbed by a golden `...` line.
    Absorbed,
    Removed,
    Added,
}

struct Row<'a> {
    tag: Tag,
    text: &'a str,
    old: usize,
    new: usize,
}

/// Splits text into lines for diffing; whether it ended with a newline.
fn lines(text: &str) -> (Vec<&str>, bool) {
    let eol = text.ends_with('\n');
    let body = text.strip_suffix('\n').unwrap_or(text);
    if text.is_empty() {
        return (Vec::new(), false);
    }
    (body.split('\n').collect(), eol)
}

/// A golden line compared with wildcards.
struct Pattern<'a>(&'a str);
/// An output line, compared with a golden [`Pattern`].
struct Line<'a>(&'a str);
impl<'a> PartialEq<Pattern<'a>> for Line<'a> {
    fn eq(&self, other: &Pattern<'a>) -> bool {
        line_matches(other.0, self.0)
    }
}

fn rows<'a>(golden: &'a str, actual: &'a str) -> (Vec<Row<'a>>, Option<String>) {
    let (old, old_eol) = lines(golden);
    let (new, new_eol) = lines(actual);
    let ops: Vec<DiffOp> = if has_wildcards(golden) {
        let pats: Vec<Pattern> = old.iter().map(|l| Pattern(l)).collect();
        let outs: Vec<Line> = new.iter().map(|l| Line(l)).collect();
        let mut cap = Capture::default();
        let deadline = Instant::now() + Duration::from_secs(2);
        // A wildcard line matches without being equal: only the raw search
        // compares lines without hashing them.
        let _ = myers::diff_deadline_raw(
            &mut cap,
            &pats,
            0..pats.len(),
            &outs,
            0..outs.len(),
            Some(deadline),
        );
        cap.into_ops()
    } else {
        hashed_ops(&old, &new)
    };
    let mut out = Vec::with_capacity(old.len().max(new.len()));
    for op in ops {
        let (tag, o, n) = op.as_tag_tuple();
        match tag {
            DiffTag::Equal => {
                for (i, j) in o.zip(n) {
                    out.push(Row {
                        tag: Tag::Same,
                        text: new[j],
                        old: i,
                        new: j,
                    });
                }
            }
            DiffTag::Delete | DiffTag::Insert | DiffTag::Replace => {
                for i in o {
                    out.push(Row {
                        tag: Tag::Removed,
                        text: old[i],
                        old: i,
                        new: usize::MAX,
                    });
                }
                for j in n {
                    out.push(Row {
                        tag: Tag::Added,
                        text: new[j],
                        old: usize::MAX,
                        new: j,
                    });
                }
            }
        }
    }
    // Added lines right after (or before) a golden `...` are what it absorbs.
    let mut absorbing = false;
    for r in out.iter_mut() {
        match r.tag {
            Tag::Same => absorbing = r.old != usize::MAX && old[r.old] == LINES_WILDCARD,
            Tag::Added if absorbing => r.tag = Tag::Absorbed,
            Tag::Removed => {}
            _ => absorbing = false,
        }
    }
    let note = (old_eol != new_eol && !old.is_empty() && !new.is_empty()).then(|| {
        format!(
            "the golden {} with a newline, the output {}",
            if old_eol { "ends" } else { "does not end" },
            if new_eol { "does" } else { "does not" }
        )
    });
    (out, note)
}

/// Patience diff over 64-bit line hashes (hashing each line once is much
/// cheaper than hashing strings inside the algorithm). Equal runs are checked
/// against the text, so a hash collision can only cost time, never hide a change.
fn hashed_ops(old: &[&str], new: &[&str]) -> Vec<DiffOp> {
    use std::hash::{BuildHasher, RandomState};
    let state = RandomState::new();
    let h = |l: &&str| state.hash_one(l);
    let ho: Vec<u64> = old.iter().map(h).collect();
    let hn: Vec<u64> = new.iter().map(h).collect();
    let ops = similar::capture_diff_slices(Algorithm::Patience, &ho, &hn);
    let collided = ops.iter().any(|op| match *op {
        DiffOp::Equal {
            old_index,
            new_index,
            len,
        } => old[old_index..old_index + len] != new[new_index..new_index + len],
        _ => false,
    });
    if collided {
        similar::capture_diff_slices(Algorithm::Patience, old, new)
    } else {
        ops
    }
}

/// Counts added and removed lines between two texts.
pub fn diff_stat(golden: &str, actual: &str) -> DiffStat {
    if text_matches(golden, actual) {
        return DiffStat::default();
    }
    let (rows, _) = rows(golden, actual);
    let mut stat = DiffStat::default();
    for r in rows {
        match r.tag {
            Tag::Added => stat.added += 1,
            Tag::Removed => stat.removed += 1,
            _ => {}
        }
    }
    stat
}

/// Colours for a terminal; all empty when colour is off.
struct Style {
    red: &'static str,
    green: &'static str,
    cyan: &'static str,
    dim: &'static str,
    bold: &'static str,
    reset: &'static str,
}

impl Style {
    fn new(color: bool) -> Style {
        if color {
            Style {
                red: "\x1b[31m",
                green: "\x1b[32m",
                cyan: "\x1b[36m",
                dim: "\x1b[2m",
                bold: "\x1b[1m",
                reset: "\x1b[0m",
            }
        } else {
            Style {
                red: "",
                green: "",
                cyan: "",
                dim: "",
                bold: "",
                reset: "",
            }
        }
    }
}

/// Output lines are hostile: control characters never reach the terminal,
/// and bidirectional and invisible characters are shown as escapes
/// (`\u{202e}`), never obeyed (Trojan Source).
fn clean(text: &str) -> std::borrow::Cow<'_, str> {
    let control = |c: char| c.is_control() && c != '\t';
    if text.chars().any(|c| control(c) || is_hidden_format(c)) {
        let mut out = String::with_capacity(text.len());
        for c in text.chars() {
            if control(c) {
                out.push('\u{fffd}');
            } else if is_hidden_format(c) {
                out.push_str(&format!("\\u{{{:x}}}", c as u32));
            } else {
                out.push(c);
            }
        }
        out.into()
    } else {
        text.into()
    }
}

/// Characters that reorder how a terminal shows the text around them
/// (bidirectional marks, embeddings, overrides, isolates), and characters
/// that show nothing while changing what the text is: zero-width spaces and
/// joiners, line and paragraph separators, invisible operators, the byte
/// order mark, interlinear annotations, Hangul fillers, variation selectors
/// and tag characters (which can carry a whole hidden ASCII message).
pub fn is_hidden_format(c: char) -> bool {
    matches!(c,
        '\u{ad}'
        | '\u{61c}'
        | '\u{115f}' | '\u{1160}'
        | '\u{180e}'
        | '\u{200b}'..='\u{200f}'
        | '\u{2028}'..='\u{202e}'
        | '\u{2060}'..='\u{206f}'
        | '\u{3164}'
        | '\u{fe00}'..='\u{fe0f}'
        | '\u{feff}'
        | '\u{ffa0}'
        | '\u{fff9}'..='\u{fffb}'
        | '\u{e0000}'..='\u{e007f}'
        | '\u{e0100}'..='\u{e01ef}')
}

/// A unified diff of two texts with `context` lines around each change.
pub fn render_text_diff(golden: &str, actual: &str, context: usize, color: bool) -> String {
    let s = Style::new(color);
    let (rows, note) = rows(golden, actual);
    let changed: Vec<usize> = rows
        .iter()
        .enumerate()
        .filter(|(_, r)| matches!(r.tag, Tag::Added | Tag::Removed))
        .map(|(i, _)| i)
        .collect();
    let mut out = String::new();
    let mut k = 0;
    while k < changed.len() {
        let start = changed[k].saturating_sub(context);
        let mut end = (changed[k] + context + 1).min(rows.len());
        k += 1;
        while k < changed.len() && changed[k] <= end + context {
            end = (changed[k] + context + 1).min(rows.len());
            k += 1;
        }
        let hunk = &rows[start..end];
        let old_start = hunk.iter().find(|r| r.old != usize::MAX).map(|r| r.old + 1);
        let new_start = hunk.iter().find(|r| r.new != usize::MAX).map(|r| r.new + 1);
        let old_len = hunk
            .iter()
            .filter(|r| matches!(r.tag, Tag::Same | Tag::Removed))
            .count();
        let new_len = hunk.iter().filter(|r| r.tag != Tag::Removed).count();
        out += &format!(
            "{}@@ -{},{} +{},{} @@{}\n",
            s.cyan,
            old_start.unwrap_or(0),
            old_len,
            new_start.unwrap_or(0),
            new_len,
            s.reset
        );
        for r in hunk {
            let text = clean(r.text);
            match r.tag {
                Tag::Same => out += &format!(" {text}\n"),
                Tag::Absorbed => out += &format!("{}~{text}{}\n", s.dim, s.reset),
                Tag::Removed => out += &format!("{}-{text}{}\n", s.red, s.reset),
                Tag::Added => out += &format!("{}+{text}{}\n", s.green, s.reset),
            }
        }
    }
    if let Some(note) = note {
        out += &format!("{}note: {note}{}\n", s.dim, s.reset);
    }
    out
}

/// The whole difference between a golden and an actual snapshot.
pub fn render_diff(golden: &Snapshot, actual: &Snapshot, color: bool) -> String {
    let s = Style::new(color);
    let mut out = String::new();
    if golden.exit != actual.exit {
        out += &format!(
            "{}-exit: {}{}\n{}+exit: {}{}\n",
            s.red, golden.exit, s.reset, s.green, actual.exit, s.reset
        );
    }
    for (stream, g, a) in [
        ("stdout", &golden.stdout, &actual.stdout),
        ("stderr", &golden.stderr, &actual.stderr),
    ] {
        if body_matches(g, a) {
            continue;
        }
        out += &format!(
            "{}--- {stream} (golden){}\n{}+++ {stream} (actual){}\n",
            s.bold, s.reset, s.bold, s.reset
        );
        match (g, a) {
            (Body::Text { text: g }, Body::Text { text: a }) => {
                out += &render_text_diff(g, a, 3, color);
            }
            _ => {
                for (who, b) in [("golden", g), ("actual", a)] {
                    out += &match b {
                        Body::Text { text } => {
                            format!("  {who}: text, {} bytes\n", text.len())
                        }
                        Body::Binary { sha256, bytes } => {
                            format!("  {who}: binary, {bytes} bytes, sha256 {sha256}\n")
                        }
                        Body::OverCap { sha256, bytes } => {
                            format!("  {who}: over the size cap, {bytes} bytes, sha256 {sha256}\n")
                        }
                    };
                }
            }
        }
    }
    for note in compare(golden, actual).notes {
        out += &format!("{}note: {}{}\n", s.dim, clean(&note), s.reset);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_changed_line_renders_as_a_hunk() {
        let g = "a\nb\nc\nd\ne\nf\ng\nh\n";
        let a = "a\nb\nc\nd\nE\nf\ng\nh\n";
        assert_eq!(
            render_text_diff(g, a, 2, false),
            "@@ -3,5 +3,5 @@\n c\n d\n-e\n+E\n f\n g\n"
        );
        assert_eq!(
            diff_stat(g, a),
            DiffStat {
                added: 1,
                removed: 1
            }
        );
    }

    #[test]
    fn wildcards_are_not_shown_as_changes() {
        let g = "start [..]\n...\nend\n";
        let a = "start 12:00\nx\ny\nend\nextra\n";
        let d = render_text_diff(g, a, 3, false);
        assert!(d.contains("+extra"), "{d}");
        assert!(!d.contains("-start"), "{d}");
        assert!(!d.contains("+x") && !d.contains("+y"), "{d}");
        assert_eq!(
            diff_stat(g, a),
            DiffStat {
                added: 1,
                removed: 0
            }
        );
    }

    #[test]
    fn colour_only_when_asked_and_control_characters_never_pass() {
        let d = render_text_diff("a\n", "\x07b\n", 1, true);
        assert!(d.contains("\x1b[32m+\u{fffd}b\x1b[0m"), "{d:?}");
        let d = render_text_diff("a\n", "\x07b\n", 1, false);
        assert!(!d.contains('\x1b') && !d.contains('\x07'), "{d:?}");
    }

    #[test]
    fn binary_streams_are_compared_by_digest_with_a_note() {
        let snap = |stdout: Body| Snapshot {
            command: vec!["x".into()],
            origin: "snap run".into(),
            normalizers: vec![],
            exit: 0,
            stdout,
            stderr: Body::text(""),
        };
        let g = snap(Body::Binary {
            sha256: "a".repeat(64),
            bytes: 3,
        });
        let a = snap(Body::Binary {
            sha256: "b".repeat(64),
            bytes: 3,
        });
        let c = compare(&g, &a);
        assert!(!c.matches && c.stdout_changed);
        assert!(
            c.notes[0].starts_with("stdout is binary (3 bytes"),
            "{:?}",
            c.notes
        );
        assert!(compare(&g, &g).matches);
        let d = render_diff(&g, &a, false);
        assert!(
            d.contains(&format!(
                "golden: binary, 3 bytes, sha256 {}",
                "a".repeat(64)
            )),
            "{d}"
        );
    }
}
