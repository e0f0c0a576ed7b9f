//! The ledger's head, recorded outside the ledger, so that a ledger older
//! than what airlock has done is found.
//!
//! The hash chain shows an edited, removed or reordered event, but not a
//! lost tail: an older copy of `ledger.db` restored, or its write-ahead log
//! lost (which can leave no events at all), is a whole chain, only shorter.
//! So after every event committed in full (every decision, every action's
//! start and end; not command traces, see below), airlock writes a head
//! record: the ledger's identity (the hash of its first event), the seq and
//! hash of that event, and the state directory, as a DSSE envelope signed
//! with the repository's signing key, in `<key dir>/ledgers/<digest of the
//! state directory>.head`. The key directory is outside every repository
//! and hidden from every sandbox, so restoring the state directory (or the
//! whole repository) from a backup does not roll the record back with it.
//!
//! A shared database's processes on one machine write the record in groups
//! ([`advance_grouped`]), appending a record to the file with one flush; a
//! file's record is its last whole line.
//!
//! Opening the store checks the ledger reaches the record (its event at the
//! recorded seq has the recorded hash) and refuses otherwise, and refuses a
//! ledger that has had a record (`ledger_meta`) when the record is gone;
//! before an irreversible step (promote, an action, a rollback) the record
//! must also exist and verify with the key. `airlock ledger verify` does
//! the same and also takes each proof bundle's ledger anchor (the head at
//! submit) as a witness.
//!
//! The window: command traces are committed without waiting for the disk
//! (`with_relaxed_sync`) and are not recorded in the head, since a power
//! cut may drop them and the record would then claim events that never
//! became durable. A restore can drop, undetected, only the traces stored
//! after the last event committed in full; the next such event (any
//! decision) covers them. Events committed in full are covered as soon as
//! the command that committed them writes the record, which it does before
//! it goes on (an action's `action-started` before the action leaves the
//! machine); a process killed between the two leaves the record one event
//! behind until the next.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use airlock_ledger::{Event, Head, HeadCheck, Ledger};

/// What the head record needs of a ledger, whatever keeps it: SQLite's
/// [`Ledger`] or another backend's events (airlock-store-pg).
pub trait Chain {
    /// Where the ledger is, as messages name it (a file, a database).
    fn location(&self) -> String;
    /// How a copy of it is put back, in a phrase.
    fn restore(&self) -> String {
        format!("restore the newest copy of {}", self.location())
    }
    /// How a tail of it is lost, in a phrase.
    fn lost_tail(&self) -> String {
        "an older copy of the ledger was restored".into()
    }
    /// What tells this ledger's head record from the record of another
    /// ledger of the same state directory (a database beside the local
    /// file): none for the local file.
    fn record_scope(&self) -> Option<String> {
        None
    }
    /// Which ledger this is: the hash of its first event.
    fn identity(&self) -> Result<Option<String>>;
    /// A value kept beside the events under `key`.
    fn meta(&self, key: &str) -> Result<Option<String>>;
    fn set_meta(&self, key: &str, value: &str) -> Result<()>;
    /// Whether the ledger reaches `head`.
    fn check_head(&self, head: &Head) -> Result<HeadCheck>;
}

impl Chain for Ledger {
    fn location(&self) -> String {
        self.connection().path().unwrap_or_default().to_string()
    }
    fn restore(&self) -> String {
        format!(
            "restore the newest copy of {} together with its -wal file",
            self.location()
        )
    }
    fn lost_tail(&self) -> String {
        format!(
            "an older copy of the ledger was restored, or its write-ahead log ({}-wal) was lost",
            self.location()
        )
    }
    fn identity(&self) -> Result<Option<String>> {
        Ok(Ledger::identity(self)?)
    }
    fn meta(&self, key: &str) -> Result<Option<String>> {
        Ok(Ledger::meta(self, key)?)
    }
    fn set_meta(&self, key: &str, value: &str) -> Result<()> {
        Ok(Ledger::set_meta(self, key, value)?)
    }
    fn check_head(&self, head: &Head) -> Result<HeadCheck> {
        Ok(Ledger::check_head(self, head)?)
    }
}
use airlock_proof::{Envelope, PublicKey, SigningKey, sign_envelope, verify_envelope};

use crate::error::{Error, Result};
use crate::files::write_atomic;
use crate::lock::FileLock;
use crate::paths::Paths;

/// DSSE `payloadType` of a head record.
pub const PAYLOAD_TYPE: &str = "application/vnd.airlock.ledger-head+json";

/// The key, in the ledger's `ledger_meta`, saying a head record has been
/// kept for it (its value: where). A copy of the ledger restored from a
/// backup carries it, so a record removed as well is missed, not trusted
/// anew.
const KEPT: &str = "head_record";

/// The ledger event of `airlock ledger accept-loss`.
pub const LOSS_ACCEPTED: &str = "ledger-loss-accepted";

/// What airlock recorded of its ledger, signed, outside it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct HeadRecord {
    /// The state directory whose `ledger.db` this is.
    pub state: String,
    /// The ledger's identity: the hash of its first event.
    pub ledger: String,
    /// The last event committed in full, by seq and hash.
    pub seq: u64,
    pub hash: String,
    /// When it was recorded (RFC 3339, UTC).
    pub recorded: String,
}

/// How the ledger stands against its head record.
#[derive(Debug, Clone, Serialize)]
pub struct HeadStatus {
    /// Where the record is kept.
    pub path: PathBuf,
    /// The record, when there is one that verifies.
    pub record: Option<HeadRecord>,
    /// What is wrong, in a sentence; `None` when the ledger reaches the
    /// record or there is no record.
    pub problem: Option<String>,
    /// Why, and what to do, when there is a problem.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub reasons: Vec<String>,
    /// Where the ledger is, and how a copy of it is put back, as the
    /// refusal says them.
    #[serde(skip)]
    pub ledger: String,
    #[serde(skip)]
    pub restore: String,
}

/// Where the head record of the ledger in `paths.state` is kept.
pub fn path(paths: &Paths) -> PathBuf {
    path_in(paths, None)
}

/// Where the head record of `ledger`, for `paths.state`, is kept.
pub fn path_of(paths: &Paths, ledger: &dyn Chain) -> PathBuf {
    path_in(paths, ledger.record_scope().as_deref())
}

fn path_in(paths: &Paths, scope: Option<&str>) -> PathBuf {
    let mut hasher = Sha256::new();
    hasher.update(paths.state.as_os_str().as_encoded_bytes());
    if let Some(scope) = scope {
        hasher.update([0]);
        hasher.update(scope.as_bytes());
    }
    let digest = hex::encode(hasher.finalize());
    paths
        .key_dir
        .join("ledgers")
        .join(format!("{}.head", &digest[..24]))
}

/// Reads the record at `path`: `Ok(None)` when there is none, `Err` with a
/// sentence when it cannot be trusted. Its signature is checked with `key`;
/// without one, only its content is read (see [`status`]).
fn read(path: &Path, key: Option<&PublicKey>) -> std::result::Result<Option<HeadRecord>, String> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read it: {e}")),
    };
    let envelope: Envelope = serde_json::from_slice(last_record(&bytes))
        .map_err(|e| format!("it is not a signed head record ({e})"))?;
    if envelope.payload_type != PAYLOAD_TYPE {
        return Err(format!(
            "it is a {:?}, not a head record",
            envelope.payload_type
        ));
    }
    let payload = match key {
        Some(key) => verify_envelope(key, &envelope).map_err(|e| {
            format!("its signature does not verify with this repository's key ({e})")
        })?,
        None => {
            use base64::Engine;
            base64::engine::general_purpose::STANDARD
                .decode(envelope.payload.as_bytes())
                .map_err(|e| format!("its payload is not base64 ({e})"))?
        }
    };
    serde_json::from_slice(&payload)
        .map(Some)
        .map_err(|e| format!("its signed content is not a head record ({e})"))
}

/// The record a file holds: its last complete line. A file of one record
/// is that line; one written by [`write_appending`] holds earlier records
/// before it, and may end in a line a crash cut short (ignored: the record
/// before it stands, older, as after a crash before the write).
fn last_record(bytes: &[u8]) -> &[u8] {
    let complete = match bytes.iter().rposition(|&b| b == b'\n') {
        Some(end) => &bytes[..end],
        // No line ended: the whole content, judged as it is.
        None => return bytes,
    };
    match complete.iter().rposition(|&b| b == b'\n') {
        Some(start) => &complete[start + 1..],
        None => complete,
    }
}

fn signed_line(key: &SigningKey, record: &HeadRecord) -> Result<Vec<u8>> {
    let payload = serde_json::to_vec(record).map_err(|e| Error::Internal(e.to_string()))?;
    let envelope = sign_envelope(key, PAYLOAD_TYPE, &payload);
    let mut text = serde_json::to_vec(&envelope).map_err(|e| Error::Internal(e.to_string()))?;
    text.push(b'\n');
    Ok(text)
}

fn write(path: &Path, key: &SigningKey, record: &HeadRecord) -> Result<()> {
    write_atomic(path, &signed_line(key, record)?)
}

/// How large a record file written by appending grows before it is
/// rewritten as one record (about a hundred records).
const APPENDED_LIMIT: u64 = 64 * 1024;

/// Writes `record` after the records the file holds, synced (one flush of
/// the disk, where a new file and its rename take two and a journal
/// commit); a file missing, large, or ending in a line cut short is
/// rewritten whole with [`write`]. Called under the record's lock.
fn write_appending(path: &Path, key: &SigningKey, record: &HeadRecord) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::FileExt;
    let line = signed_line(key, record)?;
    let wrap = |source| Error::Write {
        path: path.to_path_buf(),
        source,
    };
    let mut file = match std::fs::OpenOptions::new()
        .append(true)
        .read(true)
        .open(path)
    {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return write_atomic(path, &line),
        Err(e) => return Err(wrap(e)),
    };
    let len = file.metadata().map_err(wrap)?.len();
    let mut last = [0u8];
    let whole_lines = len > 0 && file.read_exact_at(&mut last, len - 1).is_ok() && last[0] == b'\n';
    if !whole_lines || len + line.len() as u64 > APPENDED_LIMIT {
        drop(file);
        return write_atomic(path, &line);
    }
    file.write_all(&line).map_err(wrap)?;
    file.sync_data().map_err(wrap)
}

fn private_parent(path: &Path) -> Result<()> {
    if let Some(dir) = path.parent() {
        crate::files::private_dir(dir).map_err(|source| Error::Write {
            path: dir.to_path_buf(),
            source,
        })?;
    }
    Ok(())
}

fn lock(path: &Path) -> Result<FileLock> {
    private_parent(path)?;
    let lock = PathBuf::from(format!("{}.lock", path.display()));
    FileLock::acquire(&lock, true)?
        .ok_or_else(|| Error::Environment(format!("could not lock {}", lock.display())))
}

fn record_of(paths: &Paths, ledger: &dyn Chain, event: &Event) -> Result<HeadRecord> {
    Ok(HeadRecord {
        state: paths.state.display().to_string(),
        ledger: ledger.identity()?.unwrap_or_else(|| event.hash.clone()),
        seq: event.seq,
        hash: event.hash.clone(),
        recorded: airlock_model::run::now(),
    })
}

/// Records `event`, just committed in full, as the ledger's head, unless
/// the record already names a later event of this ledger (another process
/// committed after it). A record that does not verify, or names another
/// ledger, is left for the next opening to report.
/// A ledger with no record that has had one is not given a new one: that
/// would make a ledger restored together with the record's removal pass as
/// current.
pub fn advance(paths: &Paths, ledger: &dyn Chain, key: &SigningKey, event: &Event) -> Result<()> {
    let path = path_of(paths, ledger);
    let _lock = lock(&path)?;
    let record = record_of(paths, ledger, event)?;
    match read(&path, Some(&key.public())) {
        Ok(None) if ledger.meta(KEPT)?.is_none() => {}
        Ok(Some(old)) if old.ledger == record.ledger && old.seq < record.seq => {}
        _ => return Ok(()),
    }
    write(&path, key, &record)?;
    keep(paths, ledger)
}

/// Records `event` as [`advance`] does, in a group: many processes of one
/// machine appending at once (agents on several runs, each its own
/// connection to a shared database) would otherwise take turns to sign,
/// write and sync the record once per event. Each first announces its
/// event in a file beside the record (`<record>.waiting`, a `seq hash`
/// line, not synced), then takes the record's lock: one that finds the
/// record already at or past its event returns (the writer before it
/// covered it, durably, under the same lock); the one that does not
/// writes the latest event announced, which the ledger is asked to hold
/// (a stale or malformed line is passed over), so one write covers every
/// event that waited for it. An announcement lost (the file cleared
/// between its writing and the lock) costs its process a write of its
/// own, never the record's truth: each returns only once the record
/// names its event or a later one.
pub fn advance_grouped(
    paths: &Paths,
    ledger: &dyn Chain,
    key: &SigningKey,
    event: &Event,
) -> Result<()> {
    let path = path_of(paths, ledger);
    private_parent(&path)?;
    let waiting = PathBuf::from(format!("{}.waiting", path.display()));
    // Best effort: without it this process writes for itself.
    let _ = announce(&waiting, event);
    let _lock = lock(&path)?;
    let own = record_of(paths, ledger, event)?;
    match read(&path, Some(&key.public())) {
        Ok(None) if ledger.meta(KEPT)?.is_none() => {}
        Ok(Some(old)) if old.ledger == own.ledger && old.seq < own.seq => {}
        _ => return Ok(()),
    }
    let record = match latest_announced(&waiting, own.seq) {
        Some(head) if ledger.check_head(&head)? == HeadCheck::Holds => HeadRecord {
            seq: head.seq,
            hash: head.hash,
            ..own
        },
        _ => own,
    };
    write_appending(&path, key, &record)?;
    // Everything announced so far is at or before `record`, or announced
    // after it was read (that process writes for itself).
    if let Ok(file) = std::fs::OpenOptions::new().write(true).open(&waiting) {
        let _ = file.set_len(0);
    }
    keep(paths, ledger)
}

fn announce(waiting: &Path, event: &Event) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .open(waiting)?;
    // One write: appends of one call do not interleave.
    file.write_all(format!("{} {}\n", event.seq, event.hash).as_bytes())
}

/// The announced event with the highest seq above `after`.
fn latest_announced(waiting: &Path, after: u64) -> Option<Head> {
    let text = std::fs::read_to_string(waiting).ok()?;
    text.lines()
        .filter_map(|line| {
            let (seq, hash) = line.split_once(' ')?;
            let seq: u64 = seq.parse().ok()?;
            let hex = hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit());
            (seq > after && hex).then(|| Head {
                seq,
                hash: hash.to_string(),
            })
        })
        .max_by_key(|head| head.seq)
}

/// Marks the ledger as one whose head record is kept (after the record is
/// written: a crash between the two leaves a record, marked next time).
fn keep(paths: &Paths, ledger: &dyn Chain) -> Result<()> {
    if ledger.meta(KEPT)?.is_none() {
        ledger.set_meta(KEPT, &path_of(paths, ledger).display().to_string())?;
    }
    Ok(())
}

/// Records `event` as the head whatever the record said: the ledger
/// continues from here (`airlock ledger accept-loss`).
pub fn replace(paths: &Paths, ledger: &dyn Chain, key: &SigningKey, event: &Event) -> Result<()> {
    let path = path_of(paths, ledger);
    let _lock = lock(&path)?;
    write(&path, key, &record_of(paths, ledger, event)?)?;
    keep(paths, ledger)
}

/// Whether the ledger reaches its head record. `key` is asked for only
/// when there is a record; when it gives none, the record's signature is
/// not checked. Opening checks no signature (most of the check's cost:
/// the key's public half derived, an ed25519 verification): a ledger older
/// than its record is refused all the same, and a forged record is found
/// by the checks that verify it, `ledger verify` and every irreversible
/// step, which someone able to write it cannot pass without the key.
pub fn status(
    paths: &Paths,
    ledger: &dyn Chain,
    key: impl FnOnce() -> Result<Option<PublicKey>>,
) -> Result<HeadStatus> {
    let path = path_of(paths, ledger);
    let db = ledger.location();
    let mut status = HeadStatus {
        path: path.clone(),
        record: None,
        problem: None,
        reasons: Vec::new(),
        ledger: db.clone(),
        restore: ledger.restore(),
    };
    let missing = |mut status: HeadStatus, kept: String| {
        status.problem = Some("the ledger's head record is missing".into());
        status.reasons = vec![
            format!(
                "{} has had a head record, kept at {kept}, but there is none at {}",
                db,
                path.display()
            ),
            "it was removed, or airlock now runs with another key directory (AIRLOCK_KEY_DIR, XDG_CONFIG_HOME, HOME)".into(),
        ];
        status
    };
    // The mark is set only after the record is written, so a record that
    // appeared between the first look and the mark (another process of
    // this machine recording its first event) is there at a second look.
    let gone = |path: &Path| -> Result<Option<String>> {
        match ledger.meta(KEPT)? {
            Some(kept) if !path.exists() => Ok(Some(kept)),
            _ => Ok(None),
        }
    };
    if !path.exists() {
        match gone(&path)? {
            Some(kept) => return Ok(missing(status, kept)),
            None if !path.exists() => return Ok(status),
            None => {}
        }
    }
    let record = match read(&path, key()?.as_ref()) {
        Ok(None) => {
            return Ok(match gone(&path)? {
                Some(kept) => missing(status, kept),
                None => status,
            });
        }
        Ok(Some(record)) => record,
        Err(why) => {
            status.problem = Some("the ledger's head record cannot be trusted".into());
            status.reasons = vec![format!("{}: {why}", path.display())];
            return Ok(status);
        }
    };
    let recorded = format!(
        "airlock recorded event {} (hash {:.16}…) on {} in {}",
        record.seq,
        record.hash,
        record.recorded,
        path.display()
    );
    let head = Head {
        seq: record.seq,
        hash: record.hash.clone(),
    };
    match ledger.check_head(&head)? {
        HeadCheck::Holds => {}
        HeadCheck::Older { events } => {
            status.problem = Some("the ledger is older than what airlock recorded".into());
            status.reasons = vec![
                format!("{db} ends at event {events}, but {recorded}"),
                format!(
                    "{} missing: {}",
                    if events + 1 == record.seq {
                        format!("event {} is", record.seq)
                    } else {
                        format!("events {}..{} are", events + 1, record.seq)
                    },
                    ledger.lost_tail()
                ),
            ];
        }
        HeadCheck::Differs { found } => {
            let another = ledger.identity()?.as_deref() != Some(record.ledger.as_str());
            status.problem = Some("the ledger is not the one airlock recorded".into());
            status.reasons = vec![
                format!(
                    "{db} holds another event {} than the one {recorded} (found hash {:.16}…)",
                    record.seq,
                    if found.is_empty() { "(none)" } else { &found }
                ),
                if another {
                    "its first event differs as well: it is another ledger, not a copy of this one"
                        .into()
                } else {
                    format!(
                        "its events were rewritten at or before event {}",
                        record.seq
                    )
                },
            ];
        }
    }
    status.record = Some(record);
    Ok(status)
}

/// The refusal for a ledger that does not reach its record, or (when
/// `doing` names an irreversible step) has none.
pub fn require(_paths: &Paths, status: &HeadStatus, doing: Option<&str>) -> Result<()> {
    let db = &status.ledger;
    let accept = "if what is missing is lost for good, `airlock ledger accept-loss --reason …` records the loss in the ledger and continues from it";
    if let Some(problem) = &status.problem {
        let what = match doing {
            Some(doing) => format!("refusing to {doing}: {problem}"),
            None => problem.clone(),
        };
        // A record gone or not genuine is put back; a short ledger is.
        let restore = if status.record.is_some() {
            format!(
                "{} (`airlock ledger verify` shows what is missing)",
                status.restore
            )
        } else {
            format!(
                "put the genuine head record back at {} (or run airlock with the key directory that holds it), and check that {} is the newest copy (`airlock ledger verify`)",
                status.path.display(),
                db
            )
        };
        return Err(Error::refused(
            crate::error::Code::LedgerBehind,
            what,
            status.reasons.clone(),
            format!("{restore}; {accept}; nothing was changed"),
        ));
    }
    if let (Some(doing), None) = (doing, &status.record) {
        return Err(Error::refused(
            crate::error::Code::LedgerUnproven,
            format!(
                "refusing to {doing}: the ledger cannot prove it is not older than what airlock did"
            ),
            vec![format!(
                "there is no head record at {}: airlock writes one after every decision, so it was removed, or this ledger predates head records",
                status.path.display()
            )],
            format!(
                "make sure {} is the newest copy (`airlock ledger verify`), then `airlock ledger accept-loss --reason …` records it as the ledger airlock continues from; nothing was changed",
                db
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::collections::HashMap;

    /// A ledger whose first read of a mark plays another process of the
    /// same machine: it writes the record and sets the mark just then,
    /// between this process's look for the file and its read of the mark.
    struct RacedChain {
        record: (PathBuf, SigningKey, HeadRecord),
        meta: RefCell<HashMap<String, String>>,
    }

    impl Chain for RacedChain {
        fn location(&self) -> String {
            "the raced ledger".into()
        }
        fn identity(&self) -> Result<Option<String>> {
            Ok(Some(self.record.2.ledger.clone()))
        }
        fn meta(&self, key: &str) -> Result<Option<String>> {
            if key == KEPT && self.meta.borrow().get(KEPT).is_none() {
                let (path, signing, record) = &self.record;
                write(path, signing, record)?;
                self.set_meta(KEPT, &path.display().to_string())?;
            }
            Ok(self.meta.borrow().get(key).cloned())
        }
        fn set_meta(&self, key: &str, value: &str) -> Result<()> {
            self.meta.borrow_mut().insert(key.into(), value.into());
            Ok(())
        }
        fn check_head(&self, head: &Head) -> Result<HeadCheck> {
            Ok(if head.seq == self.record.2.seq {
                HeadCheck::Holds
            } else {
                HeadCheck::Older { events: 0 }
            })
        }
    }

    #[test]
    fn a_record_written_by_another_process_while_opening_is_read_not_called_missing() {
        let dir = tempfile::tempdir().unwrap();
        let paths = Paths {
            state: dir.path().join("state"),
            key_dir: dir.path().join("keys"),
        };
        let signing = SigningKey::generate();
        let record = HeadRecord {
            state: paths.state.display().to_string(),
            ledger: "a".repeat(64),
            seq: 1,
            hash: "a".repeat(64),
            recorded: "2026-12-07T00:00:00.000Z".into(),
        };
        let chain = RacedChain {
            record: (path(&paths), signing, record.clone()),
            meta: RefCell::default(),
        };
        private_parent(&path(&paths)).unwrap();
        assert!(!path(&paths).exists());
        let status = status(&paths, &chain, || Ok(None)).unwrap();
        assert_eq!(status.problem, None, "{:?}", status.reasons);
        assert_eq!(status.record, Some(record));
    }
}
