//! Where a repository's state is kept.

use std::path::PathBuf;

/// The directories of one repository's state.
#[derive(Debug, Clone)]
pub struct Paths {
    /// airlock's local state for the repository (the database lives here).
    pub state: PathBuf,
    /// The signing key's directory, outside every repository; the ledger's
    /// head records are kept below it.
    pub key_dir: PathBuf,
}

impl Paths {
    pub fn db_path(&self) -> PathBuf {
        self.state.join("ledger.db")
    }
}
