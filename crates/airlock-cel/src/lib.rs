//! CEL over airlock's evidence document ([`airlock_model::evidence`]): the
//! [`Evaluator`] the CLI installs for custom conditions and panel rules.
//!
//! It is built on `cel-core`, which parses, type-checks and evaluates CEL.
//! The evidence schema ([`airlock_model::evidence::SCHEMA`]) is declared to
//! its checker as message types (`evidence.diff`, `evidence.gates`, …), so
//! an unknown field is an error at workflow load, with its position, as an
//! unknown variable or function is; the result must be `bool`.
//!
//! The evidence is bound as values, never spliced into expression text:
//! whatever a path, a brief or a command line holds, it is a string to the
//! expression. Cost is bounded by the document: every list the evidence
//! has is finite, and a macro nested in another macro's body may only
//! iterate over the outer macro's own element (`traces.exists(t,
//! t.argv.exists(a, …))`), so no expression does more work than a few
//! passes over the document (see [`limits`]).

mod limits;
mod schema;
mod values;

use std::sync::Arc;

use airlock_model::evidence::{Evaluator, Evidence, ExprError};
use cel_core::{CelType, Env, MapActivation, Value};

pub use limits::{MAX_DEPTH, MAX_EXPRESSION_BYTES};

/// The CEL evaluator over the evidence document.
pub struct Cel {
    env: Env,
}

impl std::fmt::Debug for Cel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Cel")
    }
}

impl Default for Cel {
    fn default() -> Self {
        Cel::new()
    }
}

impl Cel {
    /// The standard library and its string extensions, with the evidence's
    /// top-level fields as variables.
    pub fn new() -> Cel {
        let registry = Arc::new(schema::Registry::new());
        let mut env = Env::with_standard_library()
            .with_extension(cel_core::ext::string_extension())
            .with_proto_registry(registry.clone());
        for (name, ty) in registry.variables() {
            env.add_variable(name, ty);
        }
        Cel { env }
    }

    /// Parses and type-checks one expression; `Ok` holds the program.
    fn compile(&self, expr: &str) -> Result<cel_core::Program, Vec<ExprError>> {
        limits::check_text(expr)?;
        let parsed = self.env.parse(expr);
        if !parsed.errors.is_empty() {
            return Err(parsed
                .errors
                .iter()
                .map(|e| error_at(expr, e.span.clone(), format!("syntax: {}", e.message)))
                .collect());
        }
        let Some(ast) = parsed.ast else {
            return Err(vec![error_at(
                expr,
                0..expr.len(),
                "empty expression".into(),
            )]);
        };
        let checked = self.env.check(&ast);
        if !checked.errors.is_empty() {
            return Err(checked
                .errors
                .iter()
                .map(|e| error_at(expr, e.span.clone(), e.kind.to_string()))
                .collect());
        }
        match checked.type_map.get(&ast.id) {
            Some(CelType::Bool) => {}
            Some(other) => {
                return Err(vec![error_at(
                    expr,
                    ast.span.clone(),
                    format!(
                        "the expression's type is `{}`, but a condition must be a `bool`",
                        other.display_name()
                    ),
                )]);
            }
            None => {
                return Err(vec![error_at(
                    expr,
                    ast.span.clone(),
                    "the expression's type could not be determined; a condition must be a `bool`"
                        .into(),
                )]);
            }
        }
        limits::check_nesting(&ast)?;
        let compiled = cel_core::Ast::new_checked(ast, expr, checked);
        self.env
            .program(&compiled)
            .map_err(|e| vec![error_at(expr, 0..expr.len(), e.to_string())])
    }
}

/// An [`ExprError`] for a span of the expression, clamped to it.
fn error_at(expr: &str, span: std::ops::Range<usize>, message: String) -> ExprError {
    let start = span.start.min(expr.len());
    let end = span.end.clamp(start, expr.len());
    ExprError {
        offset: start,
        len: end - start,
        message,
    }
}

impl Evaluator for Cel {
    fn check(&self, expr: &str) -> Result<(), Vec<ExprError>> {
        self.compile(expr).map(|_| ())
    }

    fn eval_all(&self, exprs: &[&str], evidence: &Evidence) -> Vec<Result<bool, String>> {
        let mut activation = MapActivation::new();
        for (name, value) in values::of(evidence) {
            activation.insert(name, value);
        }
        exprs
            .iter()
            .map(|expr| {
                let program = self.compile(expr).map_err(|errors| {
                    errors
                        .iter()
                        .map(|e| e.message.as_str())
                        .collect::<Vec<_>>()
                        .join("; ")
                })?;
                match program.eval(&activation) {
                    Value::Bool(b) => Ok(b),
                    Value::Error(e) => Err(e.to_string()),
                    other => Err(format!("the expression gave {other:?}, not a bool")),
                }
            })
            .collect()
    }
}
