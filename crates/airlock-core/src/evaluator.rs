//! The expression evaluator the engine runs conditions (and panel rules)
//! with. The engine knows only the model's [`Evaluator`] trait; the program
//! installs one at start (the `airlock` binary installs CEL, `airlock-cel`),
//! so the engine never depends on an expression language. A workflow with
//! conditions and no evaluator is refused, never skipped.

use std::sync::OnceLock;

use airlock_model::evidence::Evaluator;

use crate::error::{Code, Error, Result};

static FACTORY: OnceLock<fn() -> Box<dyn Evaluator>> = OnceLock::new();
static BUILT: OnceLock<Box<dyn Evaluator>> = OnceLock::new();

/// Installs the process's evaluator, built the first time it is needed
/// (most commands, `exec` above all, never need one); the first installed
/// stays.
pub fn install(make: fn() -> Box<dyn Evaluator>) {
    let _ = FACTORY.set(make);
}

/// The installed evaluator, if any.
pub fn installed() -> Option<&'static dyn Evaluator> {
    let make = FACTORY.get()?;
    Some(BUILT.get_or_init(make).as_ref())
}

/// The installed evaluator, or the refusal a workflow with expressions
/// gets without one.
pub fn require(what: &str) -> Result<&'static dyn Evaluator> {
    installed().ok_or_else(|| {
        Error::refused(
            Code::NoEvaluator,
            format!("{what} need an expression evaluator, and none is installed"),
            vec!["airlock never skips a condition it cannot evaluate".into()],
            "a program using airlock's engine installs one at start (`airlock_core::evaluator::install(|| Box::new(airlock_cel::Cel::new()))`); the `airlock` binary does",
        )
    })
}
