//! What parsing and validating the model can refuse. The engine's error
//! (`airlock_core::Error`) holds each of these as a variant of its own, with
//! the same message, so that callers see one error type.

use crate::diag::Diagnostic;
use crate::state::State;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path} has {} problem{}", diagnostics.len(), if diagnostics.len() == 1 { "" } else { "s" })]
    InvalidToml {
        path: String,
        diagnostics: Vec<Diagnostic>,
    },
    #[error("run {run} is {state}; `{command}` needs it to be {needed}")]
    WrongState {
        run: String,
        state: State,
        command: &'static str,
        needed: String,
        next: String,
    },
    #[error("{0}")]
    Refused(Refusal),
    #[error("{0}")]
    Invalid(String),
}

/// A rule refused an operation: what, why, and what would make it pass.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Refusal {
    pub what: String,
    pub reasons: Vec<String>,
    pub hint: String,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.what)?;
        for reason in &self.reasons {
            write!(f, "\n  - {reason}")?;
        }
        Ok(())
    }
}

impl Error {
    pub fn refused(
        what: impl Into<String>,
        reasons: Vec<String>,
        hint: impl Into<String>,
    ) -> Error {
        Error::Refused(Refusal {
            what: what.into(),
            reasons,
            hint: hint.into(),
        })
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
