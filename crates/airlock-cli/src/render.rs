//! The one place where results and errors become text or JSON.

use std::io::Write;
use std::process::ExitCode;

use serde_json::ser::{Formatter, PrettyFormatter};
use serde_json::{Value, json};

use airlock_core::Error;

/// A command's result, one type per command: serialized as it is for
/// `--json`, and laid out for people by [`Report::human`] from the same
/// fields (a field only the text needs is `#[serde(skip)]`).
pub trait Report: serde::Serialize {
    /// The text printed without `--json`.
    fn human(&self) -> String;

    /// What the result means as an exit code: a failed check, an
    /// incomplete promotion or a proof that does not verify is 1.
    fn exit_code(&self) -> u8 {
        0
    }
}

/// What a command produced: the data (for `--json`), its human rendering, and
/// the exit code.
pub struct Output {
    pub data: Value,
    pub human: String,
    pub code: u8,
    /// Results and diff lines may be coloured ([`paint`]).
    pub painted: bool,
    /// Long enough to go through the pager on a terminal.
    pub paged: bool,
    /// `human` is printed exactly as it is, with or without `--json`: a
    /// reply whose bytes another program's contract fixes (`airlock hook`).
    pub raw: bool,
}

/// How this process writes to the terminal, from `--color`, `--no-pager`,
/// `--json` and the environment; set once in `main`.
struct Terminal {
    color: bool,
    pager: bool,
}

static TERMINAL: std::sync::OnceLock<Terminal> = std::sync::OnceLock::new();

/// Colour: `always`, `never`, or (auto) when stdout is a terminal and
/// `NO_COLOR` is unset or empty; never with `--json`. The pager: only on a
/// terminal, without `--json` and `--no-pager`.
pub fn configure(color: clap::ColorChoice, no_pager: bool, json: bool) {
    use std::io::IsTerminal;
    let terminal = std::io::stdout().is_terminal();
    let color = !json
        && match color {
            clap::ColorChoice::Always => true,
            clap::ColorChoice::Never => false,
            clap::ColorChoice::Auto => {
                terminal
                    && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
                    && std::env::var_os("TERM").is_none_or(|t| t != "dumb")
            }
        };
    let _ = TERMINAL.set(Terminal {
        color,
        pager: terminal && !json && !no_pager,
    });
}

/// Whether output is coloured (see [`configure`]).
pub fn color_enabled() -> bool {
    TERMINAL.get().is_some_and(|t| t.color)
}

/// Colours what airlock laid out, after every hostile part was escaped (so
/// the text holds no ESC of its own): result marks (`ok`, `FAIL`,
/// `passed`, `FAILED`), and in a diff (after a line `diff:`, or lines
/// from `diff --git` on) added, removed and hunk lines.
pub fn paint(text: &str) -> String {
    use anstyle::{AnsiColor, Style};
    let green = Style::new().fg_color(Some(AnsiColor::Green.into()));
    let red = Style::new().fg_color(Some(AnsiColor::Red.into()));
    let cyan = Style::new().fg_color(Some(AnsiColor::Cyan.into()));
    let bold = Style::new().bold();
    let styled = |style: Style, s: &str| format!("{style}{s}{style:#}");
    let mut out = String::with_capacity(text.len() + text.len() / 8);
    let mut in_diff = false;
    for line in text.split_inclusive('\n') {
        let body = line.strip_suffix('\n').unwrap_or(line);
        let end = &line[body.len()..];
        if body == "diff:" || body.starts_with("diff --git ") {
            in_diff = true;
        }
        let painted = if in_diff {
            if body.starts_with("diff --git ")
                || body.starts_with("+++ ")
                || body.starts_with("--- ")
            {
                styled(bold, body)
            } else if body.starts_with('+') {
                styled(green, body)
            } else if body.starts_with('-') {
                styled(red, body)
            } else if body.starts_with("@@") {
                styled(cyan, body)
            } else {
                body.to_string()
            }
        } else {
            paint_marks(body, green, red)
        };
        out += &painted;
        out += end;
    }
    out
}

/// The result marks of one line outside a diff: a leading `ok`/`FAIL`
/// (gates and stop conditions) and `: passed` / `: FAILED` / `check
/// passed` / `check failed`.
fn paint_marks(line: &str, green: anstyle::Style, red: anstyle::Style) -> String {
    let indent = line.len() - line.trim_start().len();
    let (lead, rest) = line.split_at(indent);
    for (mark, style) in [("ok  ", green), ("FAIL ", red)] {
        if indent > 0 && rest.starts_with(mark) {
            let word = mark.trim_end();
            return format!("{lead}{style}{word}{style:#}{}", &rest[word.len()..]);
        }
    }
    for (word, style) in [
        ("check passed", green),
        ("check failed", red),
        ("passed", green),
        ("FAILED", red),
    ] {
        if let Some(head) = line.strip_suffix(word)
            && (word.starts_with("check") && head.is_empty() || head.ends_with(": "))
        {
            return format!("{head}{style}{word}{style:#}");
        }
        if word.starts_with("check")
            && let Some(tail) = line.strip_prefix(word)
            && (tail.starts_with(':') || tail.starts_with(';'))
        {
            return format!("{style}{word}{style:#}{tail}");
        }
    }
    line.to_string()
}

/// Writes `text` through the user's pager (`$PAGER`, else `less` with
/// `LESS=FRX` unless `LESS` is set, as git does: quit if one screen, keep
/// colours, leave the screen as it is). An empty `PAGER` or `cat` means
/// none; a pager that cannot start, or that the shell cannot find, means
/// none.
fn page(text: &str) -> bool {
    use std::process::{Command, Stdio};
    let pager = match std::env::var("PAGER") {
        Ok(p) if p.trim().is_empty() || p.trim() == "cat" => return false,
        Ok(p) => p,
        Err(_) => "less".to_string(),
    };
    let mut cmd = Command::new("sh");
    cmd.arg("-c").arg(&pager).stdin(Stdio::piped());
    if std::env::var_os("LESS").is_none() {
        cmd.env("LESS", "FRX");
    }
    let Ok(mut child) = cmd.spawn() else {
        return false;
    };
    if let Some(mut stdin) = child.stdin.take() {
        // A reader who quits early closes the pipe: not an error.
        let _ = stdin.write_all(text.as_bytes());
    }
    // 127: the shell found no such pager; the text is printed instead.
    !matches!(child.wait().map(|s| s.code()), Ok(Some(127)))
}

impl Output {
    /// A command's [`Report`]: its JSON, its text and its exit code.
    pub fn report(report: &impl Report) -> Output {
        Output::new(report, report.human()).code(report.exit_code())
    }

    fn new(data: impl serde::Serialize, human: String) -> Output {
        Output {
            data: serde_json::to_value(data).unwrap_or(Value::Null),
            human,
            code: 0,
            painted: false,
            paged: false,
            raw: false,
        }
    }

    /// Exactly `stdout`, whatever `--json` says, and `code`.
    pub fn raw(stdout: String, code: u8) -> Output {
        Output {
            data: Value::Null,
            human: stdout,
            code,
            painted: false,
            paged: false,
            raw: true,
        }
    }

    /// Results and diff lines may be coloured on a terminal.
    pub fn painted(mut self) -> Output {
        self.painted = true;
        self
    }

    /// Long output: through the pager on a terminal (and coloured).
    pub fn paged(mut self) -> Output {
        self.paged = true;
        self.painted = true;
        self
    }

    pub fn code(mut self, code: u8) -> Output {
        self.code = code;
        self
    }

    /// For output made of what the agent wrote (diffs, paths, briefs,
    /// messages, previews, argv, command output): each part is escaped
    /// where it is laid out, and the whole is passed through [`clean`] once
    /// more, so that nothing a command forgot reaches the terminal raw.
    /// Idempotent on escaped text: escapes are plain characters.
    pub fn hostile(mut self) -> Output {
        self.human = clean(&self.human);
        self
    }

    pub fn emit(mut self, json: bool) -> ExitCode {
        if self.raw {
            let mut out = std::io::stdout().lock();
            let _ = out
                .write_all(self.human.as_bytes())
                .and_then(|()| out.flush());
            return ExitCode::from(self.code);
        }
        if !json && self.painted && color_enabled() {
            self.human = paint(&self.human);
        }
        if !json && self.paged && TERMINAL.get().is_some_and(|t| t.pager) && !self.human.is_empty()
        {
            if !self.human.ends_with('\n') {
                self.human.push('\n');
            }
            if page(&self.human) {
                return ExitCode::from(self.code);
            }
        }
        let mut out = std::io::stdout().lock();
        let _ = if json {
            writeln!(out, "{}", to_json(&self.data))
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

/// Exit codes: 1 refused, 2 invalid input, 3 environment, 4 corrupt
/// state, 5 internal failure. A program that could not be started exits as
/// a shell would (127, 126). docs/errors.md lists them with every code.
pub fn exit_code(error: &Error) -> u8 {
    error.exit_code()
}

pub fn error(error: &Error, json: bool) -> ExitCode {
    let code = exit_code(error);
    let hint = error.hint();
    if json {
        println!("{}", to_json(&json!({ "error": error.to_json() })));
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
    if let Error::InvalidToml {
        path, diagnostics, ..
    } = error
    {
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

/// Pretty JSON in which the characters [`clean`] escapes and JSON itself
/// leaves raw (DEL, C1 controls, bidirectional and invisible formatting
/// characters) are written as `\uXXXX`: the same data once parsed, and
/// harmless when the document is read on a terminal.
pub fn to_json(value: &Value) -> String {
    let mut bytes = Vec::new();
    let mut ser =
        serde_json::Serializer::with_formatter(&mut bytes, TerminalSafe(PrettyFormatter::new()));
    if serde::Serialize::serialize(value, &mut ser).is_err() {
        return String::new();
    }
    String::from_utf8(bytes).unwrap_or_default()
}

struct TerminalSafe<'a>(PrettyFormatter<'a>);

impl Formatter for TerminalSafe<'_> {
    fn write_string_fragment<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> std::io::Result<()> {
        let mut start = 0;
        for (i, c) in fragment.char_indices() {
            if c.is_control() || is_hidden_format(c) {
                writer.write_all(&fragment.as_bytes()[start..i])?;
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    write!(writer, "\\u{unit:04x}")?;
                }
                start = i + c.len_utf8();
            }
        }
        writer.write_all(&fragment.as_bytes()[start..])
    }

    fn begin_array<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.0.begin_array(w)
    }
    fn end_array<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.0.end_array(w)
    }
    fn begin_array_value<W: ?Sized + std::io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        self.0.begin_array_value(w, first)
    }
    fn end_array_value<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.0.end_array_value(w)
    }
    fn begin_object<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.0.begin_object(w)
    }
    fn end_object<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.0.end_object(w)
    }
    fn begin_object_key<W: ?Sized + std::io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        self.0.begin_object_key(w, first)
    }
    fn begin_object_value<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.0.begin_object_value(w)
    }
    fn end_object_value<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.0.end_object_value(w)
    }
}

pub fn warn(message: &str) {
    eprintln!("warning: {}", escape_lines(message));
}

pub fn short(id: &str) -> &str {
    &id[..id.len().min(12)]
}

/// The hostile-text rule lives in the model (`airlock_model::hostile`),
/// shared with the web pages; re-exported here for the commands.
pub use airlock_core::hostile::{clean, escape, escape_lines, one_line};

/// Characters that reorder or hide text on a terminal: one list, kept
/// where snapshot diffs are rendered too.
pub use airlock_core::snap::is_hidden_format;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_escapes_what_a_terminal_would_obey_and_keeps_the_data() {
        let value = json!({"path": "a\u{202e}b\x1b\x7f\u{85}\u{e0041}é"});
        let text = to_json(&value);
        assert!(
            text.contains(r#""a\u202eb\u001b\u007f\u0085\udb40\udc41é""#),
            "{text}"
        );
        assert!(text.chars().all(|c| !c.is_control() || c == '\n'));
        let back: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(back, value);
        assert_eq!(
            to_json(&json!([1, {"a": null}])),
            serde_json::to_string_pretty(&json!([1, {"a": null}])).unwrap()
        );
    }
}
