//! The one error type of the core. Every variant says what went wrong and why;
//! [`Error::hint`] says what to do next.

use std::path::PathBuf;

use airlock_model::diag::Diagnostic;
use airlock_model::run::State;

/// How the CLI should classify an error (its exit code).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// A rule said no: wrong state, stale approval, failed verification.
    Refused,
    /// The input is wrong: a bad brief, an unknown run, a missing file.
    Invalid,
    /// The environment failed: git missing, disk full, corrupt state.
    Environment,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("not inside a git repository ({0})")]
    NotARepository(PathBuf),
    #[error("{path} has {} problem{}", diagnostics.len(), if diagnostics.len() == 1 { "" } else { "s" })]
    InvalidToml {
        path: String,
        diagnostics: Vec<Diagnostic>,
    },
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("no workflow at {0}")]
    NoWorkflow(PathBuf),
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
    #[error("git {args} failed: {message}")]
    Git { args: String, message: String },
    #[error("cannot run git: {0}")]
    GitMissing(#[source] std::io::Error),
    #[error("{0}")]
    Refused(Refusal),
    #[error(transparent)]
    Ledger(#[from] airlock_ledger::LedgerError),
    #[error(transparent)]
    Proof(#[from] airlock_proof::ProofError),
    #[error(transparent)]
    Sandbox(#[from] airlock_sandbox::SandboxError),
    #[error(transparent)]
    Snap(#[from] airlock_snap::SnapError),
    #[error(transparent)]
    Scan(#[from] airlock_scan::ScanError),
    #[error("the airlock state database failed: {0}")]
    Database(#[from] rusqlite::Error),
    #[error("{0}")]
    Invalid(String),
    #[error("the directory {} given with -C {why}", path.display())]
    NoDirectory { path: PathBuf, why: String },
    /// A command's program could not be started: `code` is what a shell
    /// exits with then (127 not found, 126 not executable).
    #[error("{message}")]
    NotRunnable {
        message: String,
        hint: String,
        code: u8,
    },
}

/// A rule refused an operation (the model's: its rules refuse too).
pub use airlock_model::Refusal;

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

    pub fn class(&self) -> ErrorClass {
        match self {
            Error::Refused(_) | Error::WrongState { .. } | Error::Proof(_) => ErrorClass::Refused,
            Error::NotARepository(_)
            | Error::InvalidToml { .. }
            | Error::NoWorkflow(_)
            | Error::UnknownRun(_)
            | Error::UnknownRunNear { .. }
            | Error::AmbiguousRun { .. }
            | Error::Invalid(_)
            | Error::NoDirectory { .. }
            | Error::NotRunnable { .. }
            | Error::Read { .. } => ErrorClass::Invalid,
            Error::Snap(e) if e.is_invalid_input() => ErrorClass::Invalid,
            _ => ErrorClass::Environment,
        }
    }

    /// What the user can do next, when there is something useful to say.
    pub fn hint(&self) -> Option<String> {
        Some(match self {
            Error::NotARepository(_) => "run airlock inside a git repository (`git init` makes one)".into(),
            Error::InvalidToml { .. } => "fix the problems above and run the command again".into(),
            Error::NoWorkflow(_) => "run `airlock init` to write one".into(),
            Error::UnknownRun(_) | Error::UnknownRunNear { .. } => "`airlock list` lists every run; `airlock review` those waiting for review".into(),
            Error::AmbiguousRun { .. } => "give more of the run's id, enough that it starts only one".into(),
            Error::WrongState { next, .. } => next.clone(),
            Error::Refused(r) => r.hint.clone(),
            Error::NoDirectory { .. } => "give -C the repository's directory, or leave -C out to use the current one".into(),
            Error::NotRunnable { hint, .. } => hint.clone(),
            Error::GitMissing(_) => "install git (Debian: `apt-get install git`)".into(),
            Error::Ledger(_) => "`airlock ledger verify` checks the ledger".into(),
            Error::Proof(airlock_proof::ProofError::KeyMissing { .. }) => "run `airlock init` to create the signing key".into(),
            Error::Snap(e) => return e.hint(),
            Error::Scan(_) => "a run's worktree must be a directory airlock can read; if it was moved or replaced, end the run with `airlock reject RUN --reason ...` and start a new one".into(),
            Error::Proof(_) => "the bundle no longer matches what was signed; redirect the run so it is submitted again".into(),
            _ => return None,
        })
    }
}

/// The model's errors, each as the variant of the same name.
impl From<airlock_model::Error> for Error {
    fn from(e: airlock_model::Error) -> Error {
        match e {
            airlock_model::Error::InvalidToml { path, diagnostics } => {
                Error::InvalidToml { path, diagnostics }
            }
            airlock_model::Error::WrongState {
                run,
                state,
                command,
                needed,
                next,
            } => Error::WrongState {
                run,
                state,
                command,
                needed,
                next,
            },
            airlock_model::Error::Refused(r) => Error::Refused(r),
            airlock_model::Error::Invalid(m) => Error::Invalid(m),
        }
    }
}

/// The store's errors, each as the variant of the same name.
impl From<airlock_store::Error> for Error {
    fn from(e: airlock_store::Error) -> Error {
        use airlock_store::Error as S;
        match e {
            S::Write { path, source } => Error::Write { path, source },
            S::UnknownRun(run) => Error::UnknownRun(run),
            S::UnknownRunNear { given, near } => Error::UnknownRunNear { given, near },
            S::AmbiguousRun { given, candidates } => Error::AmbiguousRun { given, candidates },
            S::WrongState {
                run,
                state,
                command,
                needed,
                next,
            } => Error::WrongState {
                run,
                state,
                command,
                needed,
                next,
            },
            S::Refused(r) => Error::Refused(r),
            S::Ledger(e) => Error::Ledger(e),
            S::Proof(e) => Error::Proof(e),
            S::Database(e) => Error::Database(e),
            S::Invalid(m) => Error::Invalid(m),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
