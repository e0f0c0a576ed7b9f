//! What can go wrong with snapshots, each error saying what, why and what to do.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum SnapError {
    #[error("snapshot name `{name}` is not allowed: {why}")]
    InvalidName { name: String, why: &'static str },
    #[error("{path}:{line}:{column}: invalid snapshot: expected {expected}, found {found}")]
    Parse {
        path: PathBuf,
        line: usize,
        column: usize,
        expected: String,
        found: String,
    },
    #[error("no snapshot named `{name}` in {dir}")]
    Unknown { name: String, dir: PathBuf },
    #[error("snapshot `{name}` has no pending result to {action}")]
    NothingPending { name: String, action: &'static str },
    #[error("invalid filter regex `{regex}` at character {offset}: {message}")]
    Filter {
        regex: String,
        /// 0-based character offset of the problem inside the regex.
        offset: usize,
        message: String,
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
}

impl SnapError {
    /// True when the input is wrong (a name, a file, a regex), false when the
    /// environment failed (disk).
    pub fn is_invalid_input(&self) -> bool {
        !matches!(self, SnapError::Read { .. } | SnapError::Write { .. })
    }

    /// What to do next.
    pub fn hint(&self) -> Option<String> {
        Some(match self {
            SnapError::InvalidName { .. } => {
                "use letters, digits, `-`, `_` and `.`, e.g. `cli-help`".into()
            }
            SnapError::Parse { path, .. } => format!(
                "fix {} by hand (see the format in the airlock-snap README), or delete it and accept a fresh result",
                path.display()
            ),
            SnapError::Unknown { .. } => "`airlock snap list` shows every snapshot".into(),
            SnapError::NothingPending { name, .. } => format!(
                "`airlock snap run {name} -- CMD` records a result to review; `airlock snap list` shows what is pending"
            ),
            SnapError::Filter { .. } => {
                "fix the regex (Rust `regex` syntax: https://docs.rs/regex)".into()
            }
            _ => return None,
        })
    }
}
