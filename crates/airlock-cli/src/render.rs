//! The one place where results and errors become text or JSON.

use std::io::Write;
use std::process::ExitCode;

use serde_json::{Value, json};

use airlock_core::{Error, ErrorClass};

/// What a command produced: the data (for `--json`), its human rendering, and
/// the exit code.
pub struct Output {
    pub data: Value,
    pub human: String,
    pub code: u8,
}

impl Output {
    pub fn new(data: impl serde::Serialize, human: String) -> Output {
        Output {
            data: serde_json::to_value(data).unwrap_or(Value::Null),
            human,
            code: 0,
        }
    }

    pub fn code(mut self, code: u8) -> Output {
        self.code = code;
        self
    }

    pub fn emit(self, json: bool) -> ExitCode {
        let mut out = std::io::stdout().lock();
        let _ = if json {
            writeln!(
                out,
                "{}",
                serde_json::to_string_pretty(&self.data).unwrap_or_default()
            )
        } else if self.human.is_empty() {
            Ok(())
        } else if self.human.ends_with('\n') {
            write!(out, "{}", self.human)
        } else {
            writeln!(out, "{}", self.human)
        };
        ExitCode::from(self.code)
    }
}

/// Exit codes: 1 refused or failed, 2 invalid input, 3 environment.
pub fn exit_code(error: &Error) -> u8 {
    match error.class() {
        ErrorClass::Refused => 1,
        ErrorClass::Invalid => 2,
        ErrorClass::Environment => 3,
    }
}

pub fn error(error: &Error, json: bool) -> ExitCode {
    let code = exit_code(error);
    let hint = error.hint();
    if json {
        let mut body = json!({
            "message": error.to_string(),
            "class": match error.class() {
                ErrorClass::Refused => "refused",
                ErrorClass::Invalid => "invalid",
                ErrorClass::Environment => "environment",
            },
            "hint": hint,
        });
        match error {
            Error::InvalidToml { path, diagnostics } => {
                body["path"] = json!(path);
                body["diagnostics"] = json!(diagnostics);
            }
            Error::Refused(refusal) => body["reasons"] = json!(refusal.reasons),
            _ => {}
        }
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({ "error": body })).unwrap_or_default()
        );
    }
    // Messages, reasons and hints quote paths, argv and output the agent chose:
    // every piece is escaped, and only the line breaks written here reach the
    // terminal as line breaks.
    let mut err = std::io::stderr().lock();
    match error {
        Error::Refused(refusal) => {
            let _ = writeln!(err, "error: {}", escape(&refusal.what));
            for reason in &refusal.reasons {
                let _ = writeln!(err, "  - {}", escape(reason));
            }
        }
        _ => {
            let _ = writeln!(err, "error: {}", escape_lines(&error.to_string()));
        }
    }
    if let Error::InvalidToml { path, diagnostics } = error {
        for d in diagnostics {
            let _ = writeln!(
                err,
                "  {}:{}:{}: {}",
                escape(path),
                d.line,
                d.column,
                escape(&d.message)
            );
            if let Some(help) = &d.help {
                let _ = writeln!(err, "      help: {}", escape(help));
            }
        }
    }
    // Causes already spelled out in the message above them are not repeated.
    let mut shown = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        let text = cause.to_string();
        if !shown.contains(&text) {
            let _ = writeln!(err, "  caused by: {}", escape_lines(&text));
        }
        shown = text;
        source = cause.source();
    }
    if let Some(hint) = hint {
        let _ = writeln!(err, "  hint: {}", escape_lines(&hint));
    }
    ExitCode::from(code)
}

pub fn warn(message: &str) {
    eprintln!("warning: {}", escape_lines(message));
}

pub fn short(id: &str) -> &str {
    &id[..id.len().min(12)]
}

/// Strips control characters from hostile text before it reaches a terminal.
pub fn clean(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() && c != '\n' && c != '\t' {
                '\u{fffd}'
            } else {
                c
            }
        })
        .collect()
}

/// Hostile text squeezed onto one bounded line: control characters removed,
/// newlines shown as `⏎`, cut at `max` characters with `…`.
pub fn one_line(text: &str, max: usize) -> String {
    let flat: String = clean(text).replace('\n', "⏎").replace('\t', " ");
    if flat.chars().count() > max {
        let cut: String = flat.chars().take(max.saturating_sub(1)).collect();
        format!("{cut}…")
    } else {
        flat
    }
}

/// Hostile text made safe for a terminal on one line: control characters
/// (newlines and tabs included) and bidirectional overrides are written as
/// escapes (`\x1b`, `\n`, `\u{202e}`), so they are shown, never obeyed.
/// A backslash stays as it is: the result is for reading, not for parsing.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x80 && c.is_control() => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if c.is_control() || is_bidi_control(c) => {
                out.push_str(&format!("\\u{{{:x}}}", c as u32));
            }
            c => out.push(c),
        }
    }
    out
}

/// [`escape`] for a message that may span lines (git's stderr, a diagnostic
/// with its help): each line is escaped, and continuation lines are indented
/// under the first so that no line of the message can pass for a line of
/// airlock's own (`error:`, `hint:`).
pub fn escape_lines(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for (i, line) in text.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
            if !line.is_empty() {
                out.push_str("  ");
            }
        }
        out.push_str(&escape(line));
    }
    out
}

/// Characters that reorder how a terminal shows the text around them.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
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
    fn escape_lines_keeps_line_structure_but_indents_continuations() {
        assert_eq!(
            escape_lines("git failed\nfatal: bad\x1b[2J\n\nhint: forged"),
            "git failed\n  fatal: bad\\x1b[2J\n\n  hint: forged"
        );
        assert_eq!(escape_lines("one line"), "one line");
    }
}
