//! Positioned diagnostics for TOML files (briefs, workflows), so that every
//! problem is reported at once as `file:line:column: message`, with a note on
//! what to write instead.

use std::ops::Range;

use serde::Serialize;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Diagnostic {
    pub line: usize,
    pub column: usize,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub help: Option<String>,
}

/// Collects problems found in one source text.
pub struct Diagnostics<'s> {
    source: &'s str,
    pub items: Vec<Diagnostic>,
}

impl<'s> Diagnostics<'s> {
    pub fn new(source: &'s str) -> Self {
        Diagnostics {
            source,
            items: Vec::new(),
        }
    }

    pub fn error(&mut self, span: Range<usize>, message: impl Into<String>, help: Option<String>) {
        let (line, column) = line_column(self.source, span.start);
        self.items.push(Diagnostic {
            line,
            column,
            message: message.into(),
            help,
        });
    }

    /// A problem with no better place than the end of the file (a missing key).
    pub fn at_end(&mut self, message: impl Into<String>, help: Option<String>) {
        let end = self.source.len();
        self.error(end..end, message, help);
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub fn into_sorted(mut self) -> Vec<Diagnostic> {
        self.items.sort_by_key(|d| (d.line, d.column));
        self.items
    }
}

/// 1-based line and column (in characters) of a byte offset.
pub fn line_column(source: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(source.len());
    let before = &source[..floor_char_boundary(source, offset)];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// Parses TOML, turning syntax errors into diagnostics. Returns the table
/// even when there were recoverable errors, so more problems can be found.
pub fn parse<'s>(source: &'s str, diags: &mut Diagnostics<'s>) -> Spanned<DeTable<'s>> {
    let (table, errors) = DeTable::parse_recoverable(source);
    for error in errors {
        let span = error.span().unwrap_or(0..0);
        diags.error(span, error.message().trim().to_string(), None);
    }
    table
}

/// "did you mean `x`?" when a close candidate exists.
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<String> {
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(word, c), c))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| format!("did you mean `{c}`?"))
}

/// Reports every key of `table` not in `allowed`.
pub fn unknown_keys(
    table: &DeTable<'_>,
    allowed: &[&str],
    context: &str,
    diags: &mut Diagnostics<'_>,
) {
    for key in table.keys() {
        if !allowed.contains(&key.get_ref().as_ref()) {
            let help = did_you_mean(key.get_ref(), allowed.iter().copied())
                .or_else(|| Some(format!("{context} accepts: {}", allowed.join(", "))));
            diags.error(
                key.span(),
                format!("unknown key `{}` in {context}", key.get_ref()),
                help,
            );
        }
    }
}

pub fn kind_name(value: &DeValue<'_>) -> &'static str {
    match value {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a float",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a date-time",
        DeValue::Array(_) => "an array",
        DeValue::Table(_) => "a table",
    }
}

pub fn get<'a, 's>(table: &'a DeTable<'s>, key: &str) -> Option<&'a Spanned<DeValue<'s>>> {
    table
        .iter()
        .find(|(k, _)| k.get_ref() == key)
        .map(|(_, v)| v)
}

/// A string value; reports a type mismatch.
pub fn string(
    value: &Spanned<DeValue<'_>>,
    key: &str,
    diags: &mut Diagnostics<'_>,
) -> Option<String> {
    match value.get_ref() {
        DeValue::String(s) => Some(s.to_string()),
        other => {
            diags.error(
                value.span(),
                format!("`{key}` must be a string, found {}", kind_name(other)),
                Some(format!("write `{key} = \"…\"`")),
            );
            None
        }
    }
}

/// A list of strings, each with its span; reports type mismatches.
pub fn string_list(
    value: &Spanned<DeValue<'_>>,
    key: &str,
    diags: &mut Diagnostics<'_>,
) -> Option<Vec<(String, Range<usize>)>> {
    match value.get_ref() {
        DeValue::Array(items) => {
            let mut out = Vec::new();
            for item in items.iter() {
                match item.get_ref() {
                    DeValue::String(s) => out.push((s.to_string(), item.span())),
                    other => diags.error(
                        item.span(),
                        format!("`{key}` must hold strings, found {}", kind_name(other)),
                        Some("quote the value".into()),
                    ),
                }
            }
            Some(out)
        }
        other => {
            diags.error(
                value.span(),
                format!(
                    "`{key}` must be an array of strings, found {}",
                    kind_name(other)
                ),
                Some(format!("write `{key} = [\"…\"]`")),
            );
            None
        }
    }
}

/// A positive integer.
pub fn positive(
    value: &Spanned<DeValue<'_>>,
    key: &str,
    diags: &mut Diagnostics<'_>,
) -> Option<u64> {
    let parsed = match value.get_ref() {
        DeValue::Integer(i) => i
            .as_str()
            .replace('_', "")
            .parse::<u64>()
            .ok()
            .filter(|n| *n > 0),
        _ => None,
    };
    if parsed.is_none() {
        diags.error(
            value.span(),
            format!(
                "`{key}` must be a positive integer, found {}",
                describe(value.get_ref())
            ),
            Some(format!("write e.g. `{key} = 20`")),
        );
    }
    parsed
}

pub fn boolean(
    value: &Spanned<DeValue<'_>>,
    key: &str,
    diags: &mut Diagnostics<'_>,
) -> Option<bool> {
    match value.get_ref() {
        DeValue::Boolean(b) => Some(*b),
        other => {
            diags.error(
                value.span(),
                format!("`{key}` must be true or false, found {}", kind_name(other)),
                None,
            );
            None
        }
    }
}

pub fn table<'a, 's>(
    value: &'a Spanned<DeValue<'s>>,
    key: &str,
    diags: &mut Diagnostics<'_>,
) -> Option<&'a DeTable<'s>> {
    match value.get_ref() {
        DeValue::Table(t) => Some(t),
        other => {
            diags.error(
                value.span(),
                format!("`{key}` must be a table, found {}", kind_name(other)),
                Some(format!("write `[{key}]` on its own line, then its keys")),
            );
            None
        }
    }
}

fn describe(value: &DeValue<'_>) -> String {
    match value {
        DeValue::Integer(i) => format!("`{}`", i.as_str()),
        other => kind_name(other).to_string(),
    }
}
