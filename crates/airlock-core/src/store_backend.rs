//! Which store the engine opens: SQLite's, in the repository's state
//! directory, unless `AIRLOCK_DATABASE_URL` names a database, which the
//! program's installed backend opens. The engine knows only the
//! [`Store`] trait; the program installs a backend at start (the `airlock`
//! binary installs PostgreSQL's, `airlock-store-pg`), as it installs the
//! expression evaluator, so the engine never depends on a database client.
//! A URL set and no backend installed is refused, never ignored: airlock
//! would otherwise record a team's decisions in a local file nobody else
//! sees.

use std::sync::OnceLock;

use airlock_store::{Paths, SqliteStore, Store};

use airlock_model::team::StoreSettings;

use crate::error::{Code, Error, Result};
use crate::layout::Layout;

/// The environment variable naming the database.
pub const DATABASE_URL: &str = "AIRLOCK_DATABASE_URL";

/// Opens the store at a URL: `verified` checks the ledger's head record
/// (every command but `ledger verify` and `ledger accept-loss`).
pub type Opener =
    fn(url: &str, paths: &Paths, verified: bool) -> airlock_store::Result<Box<dyn Store>>;

static OPENER: OnceLock<Opener> = OnceLock::new();

/// Installs the process's backend for `AIRLOCK_DATABASE_URL`; the first
/// installed stays.
pub fn install(open: Opener) {
    let _ = OPENER.set(open);
}

/// The database URL set for this process, if any (an empty one is none).
pub fn database_url() -> Option<String> {
    std::env::var(DATABASE_URL)
        .ok()
        .filter(|u| !u.trim().is_empty())
}

/// Opens the repository's store: the database `AIRLOCK_DATABASE_URL`
/// names, else SQLite in `paths.state`. The workflow's `[store] url` is
/// not read: [`open_for`] reads it.
pub fn open(paths: &Paths, verified: bool) -> Result<Box<dyn Store>> {
    open_at(database_url(), paths, verified)
}

/// The database of the repository at `layout`: `AIRLOCK_DATABASE_URL`,
/// else the workflow's `[store] url`, else none (SQLite). A password in
/// the workflow's URL is refused even when the environment names the
/// database: the file is committed, the password is out.
pub fn database_url_for(layout: &Layout) -> Result<Option<String>> {
    let settings = store_settings(layout)?;
    Ok(database_url().or(settings.url))
}

/// The workflow's `[store]`, read alone (the rest of the file is the
/// command's to read and report), or the defaults when there is no
/// workflow yet.
pub fn store_settings(layout: &Layout) -> Result<StoreSettings> {
    let path = layout.workflow_path();
    let text = match crate::config::workflow_text(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(StoreSettings::default()),
        Err(source) => return Err(Error::Read { path, source }),
    };
    let name = crate::layout::WORKFLOW_FILE;
    Ok(airlock_model::team::store_settings(&text, name)?)
}

/// The shared log store the workflow's `[store] logs` names, or none.
pub fn log_store(layout: &Layout) -> Result<Option<crate::logstore::LogStore>> {
    let settings = store_settings(layout)?;
    Ok(settings
        .logs
        .map(|dir| crate::logstore::LogStore::at(layout, &dir)))
}

/// Opens the store of the repository at `layout` (see
/// [`database_url_for`]).
pub fn open_for(layout: &Layout, verified: bool) -> Result<Box<dyn Store>> {
    open_at(database_url_for(layout)?, &layout.store_paths(), verified)
}

fn open_at(url: Option<String>, paths: &Paths, verified: bool) -> Result<Box<dyn Store>> {
    let Some(url) = url else {
        return Ok(if verified {
            Box::new(SqliteStore::open(paths)?)
        } else {
            Box::new(SqliteStore::open_unverified(paths)?)
        });
    };
    let open = OPENER.get().ok_or_else(|| {
        Error::Refused(airlock_model::error::Refusal::problem(
            Code::NoStoreBackend,
            format!("{DATABASE_URL} is set, but this program has no store backend that opens it"),
            vec!["airlock never falls back to the local SQLite store when a database is named".into()],
            format!(
                "unset {DATABASE_URL} to use the local store; a program using airlock's engine installs a backend at start (`airlock_core::store_backend::install(airlock_store_pg::open)`); the `airlock` binary does"
            ),
        ))
    })?;
    Ok(open(&url, paths, verified)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_without_a_backend_is_refused_and_nothing_is_made() {
        // This test binary installs no backend.
        let dir = tempfile::tempdir().unwrap();
        let paths = Paths {
            state: dir.path().join("state"),
            key_dir: dir.path().join("keys"),
        };
        let url = Some("postgres://u:p@127.0.0.1/db".to_string());
        let err = open_at(url, &paths, true).err().expect("refused");
        assert_eq!(err.code(), Code::NoStoreBackend);
        assert_eq!(err.exit_code(), 5);
        assert!(
            err.to_string()
                .contains("AIRLOCK_DATABASE_URL is set, but this program has no store backend"),
            "{err}"
        );
        assert!(err.hint().unwrap().contains("unset AIRLOCK_DATABASE_URL"));
        // Never the local store instead.
        assert!(!paths.state.exists());
        assert!(open_at(None, &paths, true).is_ok());
        assert!(paths.db_path().exists());
    }
}
