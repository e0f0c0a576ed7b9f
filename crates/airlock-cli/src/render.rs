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
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "error: {error}");
    if let Error::InvalidToml { path, diagnostics } = error {
        for d in diagnostics {
            let _ = writeln!(err, "  {path}:{}:{}: {}", d.line, d.column, d.message);
            if let Some(help) = &d.help {
                let _ = writeln!(err, "      help: {help}");
            }
        }
    }
    // Causes already spelled out in the message above them are not repeated.
    let mut shown = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        let text = cause.to_string();
        if !shown.contains(&text) {
            let _ = writeln!(err, "  caused by: {text}");
        }
        shown = text;
        source = cause.source();
    }
    if let Some(hint) = hint {
        let _ = writeln!(err, "  hint: {hint}");
    }
    ExitCode::from(code)
}

pub fn warn(message: &str) {
    eprintln!("warning: {message}");
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
