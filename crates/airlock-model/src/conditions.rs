//! Custom conditions: `[conditions.ID] when = "CEL", message = "…", effect
//! = "block" | "needs-review" | "warn"` in the workflow, over the evidence
//! document ([`crate::evidence`]). Parsed here with the position of each
//! `when`; with an [`Evaluator`] each expression is also type-checked, and
//! its problems are reported at their place inside the expression.

use std::ops::Range;

use serde::{Deserialize, Serialize};
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::diag::{self, Diagnostics};
use crate::evidence::{Evaluator, ExprError};
use crate::names::valid_name;

/// What a condition that holds does to the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Effect {
    /// Stops `submit` and `promote`, as a failed stop condition does.
    Block,
    /// Lets the run through, marked: a human must look (no auto-promotion).
    NeedsReview,
    /// Shown to the reviewer; changes nothing.
    Warn,
}

impl Effect {
    pub const NAMES: &[&str] = &["block", "needs-review", "warn"];

    pub fn as_str(&self) -> &'static str {
        match self {
            Effect::Block => "block",
            Effect::NeedsReview => "needs-review",
            Effect::Warn => "warn",
        }
    }

    fn parse(text: &str) -> Option<Effect> {
        match text {
            "block" => Some(Effect::Block),
            "needs-review" => Some(Effect::NeedsReview),
            "warn" => Some(Effect::Warn),
            _ => None,
        }
    }
}

/// One `[conditions.ID]`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Condition {
    pub id: String,
    /// The CEL expression; the condition holds when it is true.
    pub when: String,
    /// What a reviewer reads when it holds.
    pub message: String,
    pub effect: Effect,
    /// Where `when` is written (1-based), for messages about it later.
    pub line: usize,
    pub column: usize,
}

/// A condition's outcome on one evidence document: what `check`, `submit`
/// and `promote` record (the proof embeds it through the check report).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConditionResult {
    pub id: String,
    pub effect: Effect,
    /// True when the expression was true, or could not be evaluated (a
    /// condition that cannot be decided holds: it never lets a run by).
    pub held: bool,
    pub message: String,
    /// Why the expression could not be evaluated, when it could not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl ConditionResult {
    /// Whether this result stops the run.
    pub fn blocks(&self) -> bool {
        self.held && self.effect == Effect::Block
    }

    /// One line for a reviewer: `condition `ID` (block): MESSAGE`.
    pub fn describe(&self) -> String {
        let mut line = format!(
            "condition `{}` ({}): {}",
            self.id,
            self.effect.as_str(),
            self.message
        );
        if let Some(e) = &self.error {
            line.push_str(&format!(" (could not be evaluated, so it holds: {e})"));
        }
        line
    }
}

const KEYS: &[&str] = &["when", "message", "effect"];

/// Parses `[conditions]`; with an evaluator, type-checks every `when`.
pub fn parse(
    root: &DeTable<'_>,
    source: &str,
    evaluator: Option<&dyn Evaluator>,
    diags: &mut Diagnostics<'_>,
) -> Vec<Condition> {
    let mut out = Vec::new();
    let Some(value) = diag::get(root, "conditions") else {
        return out;
    };
    let Some(table) = diag::table(value, "conditions", diags) else {
        return out;
    };
    for (key, value) in table.iter() {
        let id = key.get_ref().to_string();
        if !valid_name(&id) {
            diags.error(
                key.span(),
                format!("condition id `{id}` is not allowed"),
                Some("use letters, digits, `-` and `_`".into()),
            );
        }
        let context = format!("[conditions.{id}]");
        let Some(cond) = diag::table(value, &format!("conditions.{id}"), diags) else {
            continue;
        };
        diag::unknown_keys(cond, KEYS, &context, diags);
        let when = match diag::get(cond, "when") {
            Some(v) => diag::string(v, "when", diags).map(|s| (s, v)),
            None => {
                diags.error(
                    key.span(),
                    format!("condition `{id}` has no `when` expression"),
                    Some(
                        "add `when = \"…\"`: a CEL expression over the evidence that is true when the condition holds, e.g. `when = \"diff.files_changed > 30\"`"
                            .into(),
                    ),
                );
                None
            }
        };
        let message = match diag::get(cond, "message") {
            Some(v) => diag::string(v, "message", diags).unwrap_or_default(),
            None => {
                diags.error(
                    key.span(),
                    format!("condition `{id}` has no `message`"),
                    Some("add `message = \"…\"`: what a reviewer reads when it holds".into()),
                );
                String::new()
            }
        };
        let effect = match diag::get(cond, "effect") {
            Some(v) => diag::string(v, "effect", diags).and_then(|s| {
                let effect = Effect::parse(&s);
                if effect.is_none() {
                    let help = diag::did_you_mean(&s, Effect::NAMES.iter().copied())
                        .unwrap_or_else(|| format!("write one of: {}", Effect::NAMES.join(", ")));
                    diags.error(
                        v.span(),
                        format!("unknown effect `{s}` in {context}"),
                        Some(help),
                    );
                }
                effect
            }),
            None => {
                diags.error(
                    key.span(),
                    format!("condition `{id}` has no `effect`"),
                    Some(format!(
                        "add `effect = \"…\"`, one of: {}",
                        Effect::NAMES.join(", ")
                    )),
                );
                None
            }
        };
        let Some((when, when_value)) = when else {
            continue;
        };
        if let Some(evaluator) = evaluator
            && let Err(errors) = evaluator.check(&when)
        {
            report_expression_errors(source, when_value, &when, &context, &errors, diags);
        }
        let (line, column) = diag::line_column(source, when_value.span().start);
        if let Some(effect) = effect {
            out.push(Condition {
                id,
                when,
                message,
                effect,
                line,
                column,
            });
        }
    }
    out
}

/// Reports each problem of an expression written as a TOML string at its
/// place inside the expression: `file:line:col` points into the string, past
/// its quotes and escapes.
pub fn report_expression_errors(
    source: &str,
    value: &Spanned<DeValue<'_>>,
    expr: &str,
    context: &str,
    errors: &[ExprError],
    diags: &mut Diagnostics<'_>,
) {
    let map = string_offsets(source, value.span(), expr);
    for e in errors {
        let at = match &map {
            Some(offsets) => offsets[e.offset.min(expr.len())],
            None => value.span().start,
        };
        diags.error(
            at..at,
            format!("`when` of {context}: {}", e.message),
            Some(
                "conditions are CEL over the evidence document (docs/evidence.md lists its fields)"
                    .into(),
            ),
        );
    }
}

/// For each byte offset of `decoded` (and its end), the offset in `source`
/// where the TOML string at `span` writes it. None when the string is not
/// one this can follow (then positions fall back to the string's start).
pub fn string_offsets(source: &str, span: Range<usize>, decoded: &str) -> Option<Vec<usize>> {
    let raw = source.get(span.clone())?;
    let (quote, basic) = if raw.starts_with("\"\"\"") {
        ("\"\"\"", true)
    } else if raw.starts_with("'''") {
        ("'''", false)
    } else if raw.starts_with('"') {
        ("\"", true)
    } else if raw.starts_with('\'') {
        ("'", false)
    } else {
        return None;
    };
    let multiline = quote.len() == 3;
    let mut start = span.start + quote.len();
    let end = span.end.checked_sub(quote.len())?;
    if multiline {
        // A newline right after the opening delimiter is not part of the string.
        if source[start..].starts_with("\r\n") {
            start += 2;
        } else if source[start..].starts_with('\n') {
            start += 1;
        }
    }
    let body = source.get(start..end)?;
    let mut bytes = Vec::with_capacity(decoded.len());
    let mut offsets = Vec::with_capacity(decoded.len() + 1);
    let mut chars = body.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        let at = start + i;
        if !basic || c != '\\' {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                bytes.push(b);
                offsets.push(at);
            }
            continue;
        }
        let (_, kind) = chars.next()?;
        let ch = match kind {
            'b' => '\u{8}',
            't' => '\t',
            'n' => '\n',
            'f' => '\u{c}',
            'r' => '\r',
            'e' => '\u{1b}',
            '"' => '"',
            '\\' => '\\',
            'x' | 'u' | 'U' => {
                let digits = match kind {
                    'x' => 2,
                    'u' => 4,
                    _ => 8,
                };
                let mut hex = String::new();
                for _ in 0..digits {
                    hex.push(chars.next()?.1);
                }
                char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?
            }
            c if multiline && c.is_whitespace() => {
                // A line-ending backslash: the newline and the whitespace after it go.
                while chars.peek().is_some_and(|(_, c)| c.is_whitespace()) {
                    chars.next();
                }
                continue;
            }
            _ => return None,
        };
        let mut buf = [0u8; 4];
        for b in ch.encode_utf8(&mut buf).bytes() {
            bytes.push(b);
            offsets.push(at);
        }
    }
    offsets.push(end);
    (bytes == decoded.as_bytes()).then_some(offsets)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offsets_of(source: &str, decoded: &str) -> Vec<usize> {
        string_offsets(source, 0..source.len(), decoded).unwrap()
    }

    #[test]
    fn offsets_follow_escapes_and_delimiters() {
        // "a\"b": decoded a"b
        let o = offsets_of(r#""a\"b""#, "a\"b");
        assert_eq!(o, vec![1, 2, 4, 5]);
        let o = offsets_of("'x\\y'", "x\\y");
        assert_eq!(o, vec![1, 2, 3, 4]);
        let o = offsets_of("\"\"\"\nab\"\"\"", "ab");
        assert_eq!(o, vec![4, 5, 6]);
        let o = offsets_of("\"\"\"a \\\n   b\"\"\"", "a b");
        assert_eq!(o, vec![3, 4, 10, 11]);
        let o = offsets_of(r#""\u00e9x""#, "éx");
        assert_eq!(o, vec![1, 1, 7, 8]);
    }

    #[test]
    fn a_string_that_does_not_match_gives_none() {
        assert_eq!(string_offsets("\"ab\"", 0..4, "abc"), None);
        assert_eq!(string_offsets("12", 0..2, "12"), None);
    }
}
