//! The events this machine appended to a shared database and has not seen
//! sealed yet (issue 20), kept in the key directory, never in the database.
//!
//! A checkpoint covers only what was sealed. Between an append and the next
//! seal a database superuser could drop the event (and rewind its chain's
//! head) and no checkpoint would disagree. So each event the store
//! witnesses is noted here, (chain, seq, hash), one line each; a seal
//! that this machine has pushed (or found pushed) settles the notes it
//! read before sealing, after checking each event is still in the
//! database. A note whose event is gone names the drop
//! (`airlock_core::seal`).

use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::lock::FileLock;
use crate::paths::Paths;

/// One event appended here and not yet seen sealed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsealed {
    pub chain: String,
    pub seq: u64,
    pub hash: String,
}

/// Where the notes of the database `scope` for `paths.state` are kept.
pub fn path(paths: &Paths, scope: &str) -> PathBuf {
    let mut hasher = Sha256::new();
    hasher.update(paths.state.as_os_str().as_encoded_bytes());
    hasher.update([0]);
    hasher.update(scope.as_bytes());
    let digest = hex::encode(hasher.finalize());
    paths
        .key_dir
        .join("log")
        .join(format!("{}.unsealed", &digest[..24]))
}

fn lock(path: &Path) -> Result<FileLock> {
    if let Some(dir) = path.parent() {
        crate::files::private_dir(dir).map_err(|source| Error::Write {
            path: dir.to_path_buf(),
            source,
        })?;
    }
    let lock = PathBuf::from(format!("{}.lock", path.display()));
    FileLock::acquire(&lock, true)?
        .ok_or_else(|| Error::Environment(format!("could not lock {}", lock.display())))
}

/// Creates the (empty) notes file: from now on [`note`] keeps notes there.
pub fn arm(path: &Path) -> Result<()> {
    let _lock = lock(path)?;
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map(drop)
        .map_err(|source| Error::Write {
            path: path.to_path_buf(),
            source,
        })
}

/// Notes an event just committed (not synced: a crash of this machine
/// loses only notes of events the same crash may have lost), when the
/// notes file exists (team mode armed it, [`arm`]).
pub fn note(path: &Path, chain: &str, seq: u64, hash: &str) -> Result<()> {
    if !path.exists() {
        return Ok(());
    }
    let _lock = lock(path)?;
    let wrap = |source| Error::Write {
        path: path.to_path_buf(),
        source,
    };
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(wrap)?;
    file.write_all(format!("{chain}\t{seq}\t{hash}\n").as_bytes())
        .map_err(wrap)
}

/// The notes, oldest first (a line that does not read is skipped: the file
/// is this user's own, in the key directory).
pub fn read(path: &Path) -> Result<Vec<Unsealed>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(Error::Write {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    Ok(text
        .lines()
        .filter_map(|line| {
            let mut parts = line.splitn(3, '\t');
            let chain = parts.next()?.to_string();
            let seq = parts.next()?.parse().ok()?;
            let hash = parts.next()?.to_string();
            Some(Unsealed { chain, seq, hash })
        })
        .collect())
}

/// Drops the notes in `settled` (sealed since), keeping any written meanwhile.
pub fn settle(path: &Path, settled: &[Unsealed]) -> Result<()> {
    if settled.is_empty() {
        return Ok(());
    }
    let _lock = lock(path)?;
    let keep: Vec<Unsealed> = read(path)?
        .into_iter()
        .filter(|n| !settled.contains(n))
        .collect();
    let text: String = keep
        .iter()
        .map(|n| format!("{}\t{}\t{}\n", n.chain, n.seq, n.hash))
        .collect();
    crate::files::write_atomic(path, text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notes_are_read_back_and_settled_ones_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let paths = Paths {
            state: dir.path().join("state"),
            key_dir: dir.path().join("keys"),
        };
        let path = path(&paths, "postgres db");
        assert!(read(&path).unwrap().is_empty());
        note(&path, "r-0", 1, "00").unwrap();
        assert!(!path.exists(), "not armed: no notes kept");
        arm(&path).unwrap();
        note(&path, "r-1", 1, "aa").unwrap();
        note(&path, "", 2, "bb").unwrap();
        let first = read(&path).unwrap();
        assert_eq!(first.len(), 2);
        note(&path, "r-1", 3, "cc").unwrap();
        settle(&path, &first).unwrap();
        assert_eq!(
            read(&path).unwrap(),
            vec![Unsealed {
                chain: "r-1".into(),
                seq: 3,
                hash: "cc".into()
            }]
        );
    }
}
