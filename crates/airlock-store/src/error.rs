//! What the store can fail with. The engine's error (`airlock_core::Error`)
//! holds each of these as its variant of the same name and message.

use std::path::PathBuf;

pub use airlock_model::error::Code;
use airlock_model::error::Refusal;
use airlock_model::run::State;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("no run named `{0}`")]
    UnknownRun(String),
    #[error("no run named `{given}`; did you mean `{near}`?")]
    UnknownRunNear { given: String, near: String },
    #[error("`{given}` is the start of {} runs' ids: {}", candidates.len(), candidates.join(", "))]
    AmbiguousRun {
        given: String,
        candidates: Vec<String>,
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
    #[error(transparent)]
    Ledger(#[from] airlock_ledger::LedgerError),
    #[error(transparent)]
    Proof(#[from] airlock_proof::ProofError),
    #[error("the airlock state database failed: {0}")]
    Database(#[from] rusqlite::Error),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Environment(String),
    #[error("{0}")]
    Corrupt(String),
    #[error("{0}")]
    Internal(String),
}

impl Error {
    pub fn refused(
        code: Code,
        what: impl Into<String>,
        reasons: Vec<String>,
        hint: impl Into<String>,
    ) -> Error {
        Error::Refused(Refusal::new(code, what, reasons, hint))
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
