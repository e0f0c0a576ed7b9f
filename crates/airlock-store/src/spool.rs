//! Working offline (issue 20): what a machine records for a shared
//! database while it cannot reach it, kept in its state directory until it
//! can, and what it last knew of each run it worked on.
//!
//! - `offline/runs/RUN.json`: the run as the database last had it when
//!   this machine changed it, and the run's chain head then (`n`, `hash`).
//!   Written by the database's store after each such change; read to run a
//!   command offline.
//! - `offline/spool/RUN/NNNNNN.json`: one record made offline (today a
//!   command's trace), in order, each naming the chain head it follows
//!   (`after`): the last event the machine knew of. The store flushes them
//!   when it next connects, in order, each once, and refuses to merge one
//!   whose run another machine moved on meanwhile.
//!
//! The files are written whole (temporary file, fsync, rename): a record
//! is spooled completely or not at all.

use std::path::{Path, PathBuf};

use airlock_model::run::Run;
use airlock_model::trace::Trace;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::paths::Paths;

/// A run's chain head: its last event's number and hash.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Link {
    pub n: i64,
    pub hash: String,
}

/// What this machine last knew of a run in the database.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Known {
    pub run: Run,
    pub head: Link,
}

/// One record made offline.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Spooled {
    /// The run's chain head this record follows.
    pub after: Link,
    /// When it was recorded.
    pub at: String,
    /// The command's trace (its number is given when it is flushed).
    pub trace: Trace,
}

fn dir(paths: &Paths) -> PathBuf {
    paths.state.join("offline")
}

/// Where the spool of `run` is.
pub fn spool_dir(paths: &Paths, run: &str) -> PathBuf {
    dir(paths).join("spool").join(run)
}

fn known_path(paths: &Paths, run: &str) -> PathBuf {
    dir(paths).join("runs").join(format!("{run}.json"))
}

/// A run id that is a plain file name (ids are; a hostile one is not used
/// as a path).
fn plain(run: &str) -> bool {
    !run.is_empty()
        && run != "."
        && run != ".."
        && run
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// Remembers `known` for working offline later (no fsync: losing it in a
/// crash only means the run cannot go on offline).
pub fn remember(paths: &Paths, known: &Known) -> Result<()> {
    if !plain(&known.run.id) {
        return Ok(());
    }
    let path = known_path(paths, &known.run.id);
    let wrap = |source| Error::Write {
        path: path.clone(),
        source,
    };
    std::fs::create_dir_all(path.parent().expect("has a parent")).map_err(wrap)?;
    let bytes = serde_json::to_vec(known).map_err(|e| Error::Internal(e.to_string()))?;
    airlock_fs::Write::new()
        .mode(0o600)
        .cache()
        .write(&path, &bytes)
        .map_err(wrap)
}

/// What this machine last knew of `run`; None if it never worked on it
/// (or the id is not a plain file name).
pub fn known(paths: &Paths, run: &str) -> Result<Option<Known>> {
    if !plain(run) {
        return Ok(None);
    }
    let path = known_path(paths, run);
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| Error::Corrupt(format!("{}: {e}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::Environment(format!("{}: {e}", path.display()))),
    }
}

/// Spools `record` for `run` after the ones already there.
pub fn push(paths: &Paths, run: &str, record: &Spooled) -> Result<PathBuf> {
    if !plain(run) {
        return Err(Error::Invalid(format!("`{run}` is not a run id")));
    }
    let dir = spool_dir(paths, run);
    let wrap = |source| Error::Write {
        path: dir.clone(),
        source,
    };
    std::fs::create_dir_all(&dir).map_err(wrap)?;
    let next = pending(paths, run)?.last().map_or(1, |(n, _, _)| n + 1);
    let path = dir.join(format!("{next:06}.json"));
    let bytes = serde_json::to_vec(record).map_err(|e| Error::Internal(e.to_string()))?;
    airlock_fs::Write::new()
        .mode(0o600)
        .no_clobber()
        .write(&path, &bytes)
        .map_err(|source| Error::Write {
            path: path.clone(),
            source,
        })?;
    Ok(path)
}

/// The runs with records spooled.
pub fn runs(paths: &Paths) -> Result<Vec<String>> {
    let dir = dir(paths).join("spool");
    let mut out: Vec<String> = match std::fs::read_dir(&dir) {
        Ok(entries) => entries
            .flatten()
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|r| plain(r))
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(Error::Environment(format!("{}: {e}", dir.display()))),
    };
    out.sort();
    Ok(out)
}

/// The records spooled for `run`, in order: (number, file, record).
pub fn pending(paths: &Paths, run: &str) -> Result<Vec<(u64, PathBuf, Spooled)>> {
    let dir = spool_dir(paths, run);
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::Environment(format!("{}: {e}", dir.display()))),
    };
    let mut out = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(n) = name
            .to_str()
            .and_then(|n| n.strip_suffix(".json"))
            .and_then(|n| n.parse::<u64>().ok())
        else {
            continue;
        };
        let path = entry.path();
        let bytes = std::fs::read(&path)
            .map_err(|e| Error::Environment(format!("{}: {e}", path.display())))?;
        let record: Spooled = serde_json::from_slice(&bytes)
            .map_err(|e| Error::Corrupt(format!("{}: {e}", path.display())))?;
        out.push((n, path, record));
    }
    out.sort_by_key(|(n, _, _)| *n);
    Ok(out)
}

/// Removes a flushed record, durably (so a flush run again does not see
/// it; if it does, after a crash, the store's flush finds it flushed).
pub fn done(path: &Path) -> Result<()> {
    std::fs::remove_file(path).map_err(|source| Error::Write {
        path: path.to_path_buf(),
        source,
    })?;
    if let Some(dir) = path.parent() {
        let empty = std::fs::read_dir(dir).is_ok_and(|mut e| e.next().is_none());
        if empty {
            let _ = std::fs::remove_dir(dir);
        }
        if let Some(parent) = dir.parent() {
            let _ = std::fs::File::open(parent).and_then(|d| d.sync_all());
        }
        let _ = std::fs::File::open(dir).and_then(|d| d.sync_all());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trace(n: u32) -> Trace {
        serde_json::from_value(serde_json::json!({
            "n": n, "round": 1, "origin": "exec", "argv": ["true"], "cwd": "/w",
            "lane": "sandbox", "exit": {"code": 0, "description": "exit 0", "timed_out": false},
            "duration_ms": 1,
            "stdout": {"sha256": "a", "size": 0, "log": format!("/l/{n}.stdout")},
            "stderr": {"sha256": "b", "size": 0, "log": format!("/l/{n}.stderr")},
            "files_changed": [], "started": "t"
        }))
        .unwrap()
    }

    #[test]
    fn records_come_back_in_order_and_go_once_done() {
        let dir = tempfile::tempdir().unwrap();
        let paths = Paths {
            state: dir.path().join("state"),
            key_dir: dir.path().join("keys"),
        };
        let after = Link {
            n: 3,
            hash: "h".into(),
        };
        for n in 1..=11 {
            let record = Spooled {
                after: after.clone(),
                at: "t".into(),
                trace: trace(n),
            };
            push(&paths, "r-1", &record).unwrap();
        }
        assert_eq!(runs(&paths).unwrap(), ["r-1"]);
        let got = pending(&paths, "r-1").unwrap();
        let order: Vec<u32> = got.iter().map(|(_, _, r)| r.trace.n).collect();
        assert_eq!(order, (1..=11).collect::<Vec<_>>());
        for (_, path, _) in &got {
            done(path).unwrap();
        }
        assert!(pending(&paths, "r-1").unwrap().is_empty());
        assert!(
            runs(&paths).unwrap().is_empty(),
            "the run's directory goes too"
        );
        // A hostile id is never a path.
        assert!(push(&paths, "../x", &got[0].2).is_err());
        assert!(known(&paths, "../../etc/passwd").unwrap().is_none());
    }
}
