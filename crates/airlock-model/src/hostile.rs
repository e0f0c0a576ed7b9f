//! The one rule for showing text the agent wrote (diffs, paths, briefs,
//! messages, previews, argv, command output): line breaks and tabs where
//! they belong, and every other control character, bidirectional control
//! and invisible formatting character written as a visible escape, so it is
//! shown, never obeyed or hidden. Pure functions: the CLI lays them out on
//! a terminal, the web marks each escape and lets its HTML engine escape
//! the rest.

pub use airlock_snap::is_hidden_format;

/// Hostile text that may span lines, made safe for a terminal: line breaks
/// and tabs stay, every other control character (ESC, so no ANSI sequence;
/// CR; DEL; C1), every bidirectional control (Trojan Source) and every
/// invisible formatting character is written as an escape ([`escape`]'s),
/// so it is shown, never obeyed or hidden.
pub fn clean(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\n' | '\t' => out.push(c),
            c => push_escaped(&mut out, c),
        }
    }
    out
}

/// Hostile text squeezed onto one bounded line: escaped as by [`clean`],
/// newlines shown as `⏎`, cut within `max` characters with `…`: after the
/// last whole word when one ends in the second half (a cut word reads as
/// another word), inside the one long word (a path, a digest) otherwise.
pub fn one_line(text: &str, max: usize) -> String {
    let flat: String = clean(text).replace('\n', "⏎").replace('\t', " ");
    if flat.chars().count() > max {
        let keep: String = flat.chars().take(max.saturating_sub(1)).collect();
        let cut = match keep.rfind(' ') {
            Some(end) if end >= keep.len() / 2 => keep[..end].trim_end(),
            _ => keep.as_str(),
        };
        format!("{cut}…")
    } else {
        flat
    }
}

/// A command's argv as a shell would read it back: each word as it is when
/// it holds only plain characters, else single-quoted. Not escaped: lay it
/// out with [`one_line`] or the web's marking.
pub fn shell_words(argv: &[String]) -> String {
    argv.iter()
        .map(|a| {
            if !a.is_empty()
                && a.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@".contains(c))
            {
                a.clone()
            } else {
                format!("'{}'", a.replace('\'', "'\\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Hostile text made safe for a terminal on one line: control characters
/// (newlines and tabs included), bidirectional controls and invisible
/// formatting characters are written as escapes (`\x1b`, `\n`, `\u{202e}`),
/// so they are shown, never obeyed. A backslash stays as it is: the result is
/// for reading, not for parsing.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        push_escaped(&mut out, c);
    }
    out
}

/// The one rule for a character of hostile text: as itself, or escaped.
pub fn push_escaped(out: &mut String, c: char) {
    match c {
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        c if (c as u32) < 0x80 && c.is_control() => {
            out.push_str(&format!("\\x{:02x}", c as u32));
        }
        c if c.is_control() || is_hidden_format(c) => {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        }
        c => out.push(c),
    }
}

/// [`escape`] for a message that may span lines (git's stderr, a diagnostic
/// with its help): each line is escaped, and continuation lines are marked
/// `  | ` so that no line of the message can pass for a line of airlock's
/// own (`error:`, and the indented `  hint:`, `  caused by:`, `  - `): a
/// file name git quotes can carry a line break and a hint of its own.
pub fn escape_lines(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for (i, line) in text.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
            if !line.is_empty() {
                out.push_str("  | ");
            }
        }
        out.push_str(&escape(line));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_shows_control_characters_instead_of_obeying_them() {
        assert_eq!(
            escape("src/late\x1b]0;owned\x07.txt"),
            "src/late\\x1b]0;owned\\x07.txt"
        );
        assert_eq!(escape("a\r\nb\tc"), "a\\r\\nb\\tc");
        assert_eq!(escape("x\u{9b}y\u{202e}z"), "x\\u{9b}y\\u{202e}z");
        assert_eq!(
            escape("plain ünïcode, `quotes` and \\"),
            "plain ünïcode, `quotes` and \\"
        );
    }

    #[test]
    fn clean_keeps_lines_and_tabs_and_shows_everything_else() {
        assert_eq!(
            clean("+let a\u{202e} = 1;\t// \u{2066}x\u{2069}\r\n\x1b[31mred\x7f\u{200b}\u{e0041}"),
            "+let a\\u{202e} = 1;\t// \\u{2066}x\\u{2069}\\r\n\\x1b[31mred\\x7f\\u{200b}\\u{e0041}"
        );
        assert_eq!(clean(&clean("a\u{61c}b\x1b")), clean("a\u{61c}b\x1b"));
        assert_eq!(one_line("a\nb\u{202e}", 80), "a⏎b\\u{202e}");
    }

    #[test]
    fn escape_lines_keeps_line_structure_but_marks_continuations() {
        assert_eq!(
            escape_lines("git failed\nfatal: bad\x1b[2J\n\nhint: forged"),
            "git failed\n  | fatal: bad\\x1b[2J\n\n  | hint: forged"
        );
        assert_eq!(escape_lines("one line"), "one line");
    }

    #[test]
    fn one_line_cuts_after_a_whole_word_never_inside_one_it_can_avoid() {
        let text = "the gate failed because the fixture database was missing";
        assert_eq!(one_line(text, 30), "the gate failed because the…");
        assert_eq!(one_line(text, 100), text);
        // One long word (a path, a digest) is cut where it must be.
        assert_eq!(
            one_line("see abcdefghijklmnopqrstuvwxyz", 12),
            "see abcdefg…"
        );
        // An escape is never left half-shown where a word ends before it.
        assert_eq!(one_line("reason: \u{202e} evil", 12), "reason:…");
    }
}
