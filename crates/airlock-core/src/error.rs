//! The one error type of the core. Every variant says what went wrong and why;
//! [`Error::hint`] says what to do next.

use std::path::PathBuf;

use airlock_model::diag::Diagnostic;
use airlock_model::run::State;

/// The error vocabulary is the model's: its classes, the stable codes and
/// refusals (`airlock_model::error`).
pub use airlock_model::error::{Code, ErrorClass, Refusal};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("not inside a git repository ({0})")]
    NotARepository(PathBuf),
    #[error("{path} has {} problem{}", diagnostics.len(), if diagnostics.len() == 1 { "" } else { "s" })]
    InvalidToml {
        /// Which document: [`Code::InvalidBrief`], [`Code::InvalidWorkflow`]
        /// or [`Code::InvalidAction`].
        code: Code,
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
    /// The user's input is wrong (exit 2).
    #[error("{0}")]
    Invalid(String),
    /// The environment failed (exit 3): a thread, a lock, a socket.
    #[error("{0}")]
    Environment(String),
    /// airlock's own records are corrupt or contradict each other (exit 4).
    #[error("{0}")]
    Corrupt(String),
    /// airlock itself failed, whatever the input (exit 5).
    #[error("{0}")]
    Internal(String),
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
    /// A server (`airlock serve`) cannot listen where it was asked to:
    /// `code` says why (`port-in-use`, `listen-failed`, `invalid-address`).
    #[error("{message}")]
    Listen {
        code: Code,
        message: String,
        hint: String,
    },
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

    pub fn class(&self) -> ErrorClass {
        self.code().class()
    }

    /// The stable name of what went wrong (docs/errors.md lists them all).
    pub fn code(&self) -> Code {
        use airlock_proof::ProofError;
        match self {
            Error::NotARepository(_) => Code::NotARepository,
            Error::InvalidToml { code, .. } => *code,
            Error::Read { .. } => Code::UnreadableFile,
            Error::Write { .. } => Code::WriteFailed,
            Error::NoWorkflow(_) => Code::NoWorkflow,
            Error::UnknownRun(_) | Error::UnknownRunNear { .. } => Code::UnknownRun,
            Error::AmbiguousRun { .. } => Code::AmbiguousRun,
            Error::WrongState { .. } => Code::WrongState,
            Error::Git { .. } => Code::GitFailed,
            Error::GitMissing(_) => Code::GitMissing,
            Error::Refused(refusal) => refusal.code,
            Error::Ledger(airlock_ledger::LedgerError::Busy { .. }) => Code::LedgerBusy,
            Error::Ledger(_) => Code::LedgerFailed,
            Error::Proof(ProofError::KeyMissing { .. }) => Code::KeyMissing,
            Error::Proof(
                ProofError::KeyRead { .. }
                | ProofError::KeyWrite { .. }
                | ProofError::KeyPermissions { .. }
                | ProofError::KeyFormat { .. }
                | ProofError::KeyAlgorithm { .. }
                | ProofError::KeyEncrypted { .. },
            ) => Code::KeyUnusable,
            Error::Proof(_) => Code::ProofInvalid,
            Error::Sandbox(_) => Code::SandboxFailed,
            Error::Snap(e) if e.is_invalid_input() => Code::SnapInvalid,
            Error::Snap(_) => Code::SnapIo,
            Error::Scan(_) => Code::ScanFailed,
            Error::Database(_) => Code::DatabaseFailed,
            Error::Invalid(_) => Code::InvalidInput,
            Error::Environment(_) => Code::Environment,
            Error::Corrupt(_) => Code::CorruptState,
            Error::Internal(_) => Code::Internal,
            Error::NoDirectory { .. } => Code::NoDirectory,
            Error::NotRunnable { .. } => Code::NotRunnable,
            Error::Listen { code, .. } => *code,
        }
    }

    /// 1 refused, 2 invalid input, 3 environment, 4 corrupt state, 5
    /// internal failure; a program that could not be started exits as a
    /// shell would (127 not found, 126 not executable).
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::NotRunnable { code, .. } => *code,
            _ => self.class().exit_code(),
        }
    }

    /// The error as `--json` reports it (the object under `"error"`,
    /// docs/errors.md): message, code, class and hint, plus a refusal's
    /// reasons or a document's path and diagnostics. The CLI and the MCP
    /// server both answer with it.
    pub fn to_json(&self) -> serde_json::Value {
        let mut body = serde_json::json!({
            "message": self.to_string(),
            "code": self.code(),
            "class": self.class().as_str(),
            "hint": self.hint(),
        });
        match self {
            Error::InvalidToml {
                path, diagnostics, ..
            } => {
                body["path"] = serde_json::json!(path);
                body["diagnostics"] = serde_json::json!(diagnostics);
            }
            Error::Refused(refusal) => {
                body["reasons"] = serde_json::json!(refusal.reasons);
                if let Some(details) = &refusal.details {
                    body["details"] = details.clone();
                }
            }
            _ => {}
        }
        body
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
            Error::Listen { hint, .. } => hint.clone(),
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
        use airlock_model::Error as M;
        match e {
            M::InvalidToml {
                code,
                path,
                diagnostics,
            } => Error::InvalidToml {
                code,
                path,
                diagnostics,
            },
            M::WrongState {
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
            M::Refused(r) => Error::Refused(r),
            M::Invalid(m) => Error::Invalid(m),
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
            S::Environment(m) => Error::Environment(m),
            S::Corrupt(m) => Error::Corrupt(m),
            S::Internal(m) => Error::Internal(m),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/errors.md"));

    /// The rows of docs/errors.md's code table: (code, exit column).
    fn documented() -> Vec<(String, String)> {
        let table = DOC
            .split("## Codes")
            .nth(1)
            .expect("docs/errors.md has a `## Codes` section");
        table
            .lines()
            .filter_map(|line| {
                let mut cells = line.split('|').map(str::trim).skip(1);
                let code = cells.next()?.strip_prefix('`')?.strip_suffix('`')?;
                Some((code.to_string(), cells.next()?.to_string()))
            })
            .collect()
    }

    #[test]
    fn every_code_is_documented_once_with_its_exit_code() {
        let rows = documented();
        let mut seen = std::collections::HashSet::new();
        for (code, _) in &rows {
            assert!(
                seen.insert(code.clone()),
                "`{code}` is listed twice in docs/errors.md"
            );
            assert!(
                Code::ALL.iter().any(|c| c.as_str() == code),
                "docs/errors.md lists `{code}`, which no error has (remove it from the table)"
            );
        }
        for code in Code::ALL {
            let Some((_, exit)) = rows.iter().find(|(c, _)| c == code.as_str()) else {
                panic!("`{code}` is not documented: add a row for it to docs/errors.md");
            };
            let expected = match code {
                Code::NotRunnable => "126, 127".to_string(),
                _ => code.class().exit_code().to_string(),
            };
            assert_eq!(
                exit, &expected,
                "the exit code docs/errors.md gives `{code}`"
            );
        }
    }

    #[test]
    fn codes_are_unique_kebab_case_and_refusals_exit_1() {
        let mut texts: Vec<&str> = Code::ALL.iter().map(|c| c.as_str()).collect();
        for text in &texts {
            assert!(
                !text.is_empty()
                    && !text.starts_with('-')
                    && !text.ends_with('-')
                    && !text.contains("--")
                    && text.chars().all(|c| c.is_ascii_lowercase() || c == '-'),
                "`{text}` is not kebab-case"
            );
        }
        texts.sort_unstable();
        let count = texts.len();
        texts.dedup();
        assert_eq!(texts.len(), count, "two codes share a text");
        let refusal = Error::refused(Code::StaleApproval, "stale", vec![], "look again");
        assert_eq!(refusal.code().as_str(), "stale-approval");
        assert_eq!(refusal.exit_code(), 1);
        assert_eq!(Error::Invalid("x".into()).exit_code(), 2);
        assert_eq!(Error::Environment("x".into()).exit_code(), 3);
        assert_eq!(Error::Corrupt("x".into()).exit_code(), 4);
        assert_eq!(Error::Internal("x".into()).exit_code(), 5);
        let not_found = Error::NotRunnable {
            message: "x".into(),
            hint: "y".into(),
            code: 127,
        };
        assert_eq!(not_found.exit_code(), 127);
    }
}
