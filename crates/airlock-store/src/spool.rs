//! Working offline (issue 20): what a machine records for a shared
//! database while it cannot reach it, kept in its state directory until it
//! can, and what it last knew of each run it worked on.
//!
//! - `offline/runs/RUN.json`: the run as the database last had it when
//!   this machine changed it, and the run's chain head then (`n`, `hash`).
//!   Written by the database's store after each such change; read to run a
//!   command offline.
//! - `offline/spool/RUN/NNNNNN.json`: one record made offline (a
//!   command's trace, or a change of the run's state such as `check`'s),
//!   in order, each naming the chain head it follows (`after`): the last
//!   event the machine knew of. The store flushes them when it next
//!   connects, in order, each once, and refuses to merge one whose run
//!   another machine moved on meanwhile (`offline-conflict`), until the
//!   user resolves it (`airlock ledger spool --resolve`).
//! - `offline/set-aside/RUN-HASH.json`: records a resolution set aside
//!   (`--discard`), named with their sha256 in the ledger event that says so.
//!
//! The files are written whole (temporary file, fsync, rename): a record
//! is spooled completely or not at all. The records of a run form a hash
//! chain of their own (`prev`, `hash`), from the chain head they follow:
//! a record edited, dropped or reordered in the spool is found at the
//! flush, and the hashes are kept in the ledger as evidence when the
//! records are resolved into a run that moved on.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use airlock_model::run::{Run, State};
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
    /// How many traces the run had then (None in a file of an older
    /// airlock): a trace made offline is numbered after them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traces: Option<u32>,
}

/// One record made offline: a trace, or a change of the run's state.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Spooled {
    /// The run's chain head this record follows.
    pub after: Link,
    /// When it was recorded.
    pub at: String,
    /// The command's trace (its number is given when it is flushed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace: Option<Trace>,
    /// A change of the run's state (`check`), made by this machine offline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change: Option<Change>,
    /// The hash of the record before it in the spool, or the hash of the
    /// chain head it follows for the first ("" in an older airlock's).
    #[serde(default)]
    pub prev: String,
    /// This record's hash ([`record_hash`]; "" in an older airlock's).
    #[serde(default)]
    pub hash: String,
}

/// A run's state changed offline: the ledger event it becomes, and the run
/// as it is after it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Change {
    pub kind: String,
    pub from: State,
    pub run: Run,
    pub data: serde_json::Value,
}

impl Spooled {
    /// What the record is, in a word: `exec` (a trace) or its event's kind.
    pub fn kind(&self) -> &str {
        match (&self.change, &self.trace) {
            (Some(c), _) => &c.kind,
            (None, Some(_)) => "exec",
            (None, None) => "empty",
        }
    }
}

/// The hash of a record: sha256 over a domain tag, the hash before it and
/// the record's JSON without its own `prev` and `hash`, in hex.
pub fn record_hash(record: &Spooled) -> String {
    use sha2::{Digest, Sha256};
    let body = serde_json::json!({
        "after": record.after, "at": record.at,
        "trace": record.trace, "change": record.change,
    });
    let mut h = Sha256::new();
    h.update(b"airlock-offline/v1\n");
    h.update(record.prev.as_bytes());
    h.update(b"\n");
    h.update(body.to_string().as_bytes());
    hex::encode(h.finalize())
}

/// Checks that the records of one run still chain as they were written:
/// each hash its own, each `prev` the one before (records of an older
/// airlock, without hashes, are taken as they are).
pub fn check_chain(pending: &[(u64, PathBuf, Spooled)]) -> Result<()> {
    let mut before: Option<&str> = None;
    for (_, path, record) in pending {
        if record.hash.is_empty() {
            before = None;
            continue;
        }
        let expected_prev = before.unwrap_or(&record.after.hash);
        if record.hash != record_hash(record) || record.prev != expected_prev {
            return Err(Error::Corrupt(format!(
                "{}: the record made offline was edited, or a record before it removed or reordered, since it was written; move the run's spool directory away to go on and look at it",
                path.display()
            )));
        }
        before = Some(&record.hash);
    }
    Ok(())
}

static FLUSH_DEFERRED: AtomicBool = AtomicBool::new(false);

/// Opening the store in this process does not flush the spool
/// (`airlock ledger spool`, which shows and resolves it).
pub fn defer_flush() {
    FLUSH_DEFERRED.store(true, Ordering::SeqCst);
}

/// Whether [`defer_flush`] was called.
pub fn flush_deferred() -> bool {
    FLUSH_DEFERRED.load(Ordering::SeqCst)
}

/// The lock one process of the machine holds while it flushes or resolves
/// the spool: two processes flushing at once would each find the other's
/// records half stored.
pub fn lock(paths: &Paths) -> Result<crate::lock::FileLock> {
    let path = dir(paths).join("flush.lock");
    crate::lock::FileLock::acquire(&path, true)?
        .ok_or_else(|| Error::Environment(format!("cannot lock {}", path.display())))
}

/// Where records set aside by a resolution are kept.
pub fn set_aside_dir(paths: &Paths) -> PathBuf {
    dir(paths).join("set-aside")
}

/// Writes `records` of `run` whole into a file of their own under
/// [`set_aside_dir`], named by the run and its first record's hash;
/// returns the file and its sha256.
pub fn set_aside(
    paths: &Paths,
    run: &str,
    first_hash: &str,
    records: &[&Spooled],
) -> Result<(PathBuf, String)> {
    use sha2::{Digest, Sha256};
    if !plain(run) {
        return Err(Error::Invalid(format!("`{run}` is not a run id")));
    }
    let bytes = serde_json::to_vec_pretty(records).map_err(|e| Error::Internal(e.to_string()))?;
    let dir = set_aside_dir(paths);
    let name: String = first_hash
        .chars()
        .filter(char::is_ascii_hexdigit)
        .take(16)
        .collect();
    let path = dir.join(format!("{run}-{name}.json"));
    std::fs::create_dir_all(&dir).map_err(|source| Error::Write {
        path: dir.clone(),
        source,
    })?;
    airlock_fs::Write::new()
        .mode(0o600)
        .write(&path, &bytes)
        .map_err(|source| Error::Write {
            path: path.clone(),
            source,
        })?;
    Ok((path, hex::encode(Sha256::digest(&bytes))))
}

/// One run's spool as `airlock ledger spool` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub run: String,
    pub dir: PathBuf,
    pub records: usize,
    pub traces: usize,
    /// The kinds of the state changes, in order.
    pub changes: Vec<String>,
    /// When the first and the last record were made.
    pub since: String,
    pub last: String,
    /// The chain head the records follow.
    pub after: Link,
}

/// How the user resolves a run's records that conflict
/// (`airlock ledger spool --resolve RUN`).
#[derive(Debug, Clone)]
pub enum Resolution {
    /// Add them to the run after its head as it is now, as an offline
    /// branch that keeps their original hashes.
    Append,
    /// Set them aside into a file the ledger names, with the reason.
    Discard { reason: String },
}

/// What a resolution did.
#[derive(Debug, Clone, Serialize)]
pub struct Resolved {
    pub run: String,
    /// `flushed` (they still followed the run's chain), `appended` or
    /// `discarded`.
    pub how: String,
    /// How many records there were, and how many of them are stored in the
    /// run (as traces or events).
    pub records: usize,
    pub stored: usize,
    /// The ledger event that records the resolution (its seq and hash).
    pub event: Option<Link>,
    /// The file the records were set aside in, and its sha256.
    pub set_aside: Option<PathBuf>,
    pub sha256: Option<String>,
}

/// Every run's spool, read from this machine's files alone.
pub fn summaries(paths: &Paths) -> Result<Vec<Summary>> {
    let mut out = Vec::new();
    for run in runs(paths)? {
        let pending = pending(paths, &run)?;
        let (Some(first), Some(last)) = (pending.first(), pending.last()) else {
            continue;
        };
        out.push(Summary {
            dir: spool_dir(paths, &run),
            records: pending.len(),
            traces: pending.iter().filter(|p| p.2.trace.is_some()).count(),
            changes: pending
                .iter()
                .filter_map(|p| p.2.change.as_ref().map(|c| c.kind.clone()))
                .collect(),
            since: first.2.at.clone(),
            last: last.2.at.clone(),
            after: first.2.after.clone(),
            run,
        });
    }
    Ok(out)
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

/// Spools `record` for `run` after the ones already there, chaining it to
/// the last of them (its `prev` and `hash` are set here); returns its file
/// and the record as stored.
pub fn push(paths: &Paths, run: &str, record: &Spooled) -> Result<(PathBuf, Spooled)> {
    if !plain(run) {
        return Err(Error::Invalid(format!("`{run}` is not a run id")));
    }
    let dir = spool_dir(paths, run);
    let wrap = |source| Error::Write {
        path: dir.clone(),
        source,
    };
    std::fs::create_dir_all(&dir).map_err(wrap)?;
    let before = pending(paths, run)?;
    let next = before.last().map_or(1, |(n, _, _)| n + 1);
    let path = dir.join(format!("{next:06}.json"));
    let mut record = record.clone();
    record.prev = match before.last() {
        Some((_, _, last)) if !last.hash.is_empty() => last.hash.clone(),
        _ => record.after.hash.clone(),
    };
    record.hash = record_hash(&record);
    let bytes = serde_json::to_vec(&record).map_err(|e| Error::Internal(e.to_string()))?;
    airlock_fs::Write::new()
        .mode(0o600)
        .no_clobber()
        .write(&path, &bytes)
        .map_err(|source| Error::Write {
            path: path.clone(),
            source,
        })?;
    Ok((path, record))
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
    match std::fs::remove_file(path) {
        // Removed already (by a process that flushed the same records).
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        other => other.map_err(|source| Error::Write {
            path: path.to_path_buf(),
            source,
        })?,
    }
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
                trace: Some(trace(n)),
                change: None,
                prev: String::new(),
                hash: String::new(),
            };
            push(&paths, "r-1", &record).unwrap();
        }
        assert_eq!(runs(&paths).unwrap(), ["r-1"]);
        let got = pending(&paths, "r-1").unwrap();
        let order: Vec<u32> = got
            .iter()
            .map(|(_, _, r)| r.trace.as_ref().unwrap().n)
            .collect();
        assert_eq!(order, (1..=11).collect::<Vec<_>>());
        check_chain(&got).unwrap();
        // A record dropped from the middle, or edited, is found.
        let mut dropped = got.clone();
        dropped.remove(4);
        assert!(check_chain(&dropped).is_err());
        let mut edited = got.clone();
        edited[2].2.at = "later".into();
        assert!(check_chain(&edited).is_err());
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
