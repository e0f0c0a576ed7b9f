//! Append-only, hash-chained event ledger for airlock, stored in SQLite.
//!
//! Every event carries the hash of the event before it (`prev`) and its own
//! hash over an unambiguous encoding of `(seq, ts, run, kind, data, prev)`.
//! SQL triggers refuse `UPDATE` and `DELETE` on the `events` table; the chain
//! exists for the case where someone with file access drops those triggers
//! and rewrites history anyway: [`Ledger::verify`] then names the first
//! event that was edited, removed or reordered.
//!
//! Other crates keep their own tables in the same database file and use
//! [`append_in`] so that a state change and the event describing it commit
//! together:
//!
//! ```no_run
//! use airlock_ledger::{Ledger, append_in, rusqlite::TransactionBehavior};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut ledger = Ledger::open(std::path::Path::new("/tmp/ledger.db"))?;
//! // IMMEDIATE takes the write lock up front, so concurrent processes serialise
//! // instead of failing with SQLITE_BUSY when they upgrade a read to a write.
//! let tx = ledger
//!     .connection_mut()
//!     .transaction_with_behavior(TransactionBehavior::Immediate)?;
//! tx.execute("CREATE TABLE IF NOT EXISTS runs (id TEXT PRIMARY KEY)", [])?;
//! tx.execute("INSERT INTO runs (id) VALUES ('r1')", [])?;
//! append_in(&tx, Some("r1"), "run.created", &serde_json::json!({"brief": "b.toml"}))?;
//! tx.commit()?;
//! # Ok(()) }
//! ```
//!
//! The library never prints; it returns data and [`LedgerError`]s.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use rusqlite::config::DbConfig;
use rusqlite::types::ValueRef;
use rusqlite::{
    Connection, ErrorCode, OptionalExtension, Transaction, TransactionBehavior, params,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Re-export so callers use the same rusqlite version as the ledger.
pub use rusqlite;

/// The `prev` hash of event 1: 64 hex zeros.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Message raised by the triggers that guard the `events` table.
pub const APPEND_ONLY_MESSAGE: &str = "airlock ledger is append-only";

/// Version of the ledger schema this build reads and writes.
pub const SCHEMA_VERSION: u32 = 1;

/// How long a connection waits for another writer before giving up.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

const DOMAIN: &[u8] = b"airlock-ledger/v1\n";
const COLUMNS: [&str; 7] = ["seq", "ts", "run", "kind", "data", "prev", "hash"];

/// The ledger's tables, index and triggers (kind, name, statement), each
/// made if missing. SQLite keeps each one's text, less `IF NOT EXISTS`, in
/// `sqlite_master`.
fn schema() -> [(&'static str, &'static str, String); 5] {
    let guard = |name: &str, op: &str| {
        format!(
            "CREATE TRIGGER IF NOT EXISTS {name} BEFORE {op} ON events
             BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY_MESSAGE}'); END"
        )
    };
    [
        (
            "TABLE",
            "ledger_meta",
            "CREATE TABLE IF NOT EXISTS ledger_meta (
                 key   TEXT PRIMARY KEY,
                 value TEXT NOT NULL
             )"
            .into(),
        ),
        (
            "TABLE",
            "events",
            "CREATE TABLE IF NOT EXISTS events (
                 seq  INTEGER PRIMARY KEY CHECK (seq >= 1),
                 ts   TEXT NOT NULL,
                 run  TEXT,
                 kind TEXT NOT NULL,
                 data TEXT NOT NULL,
                 prev TEXT NOT NULL,
                 hash TEXT NOT NULL
             )"
            .into(),
        ),
        (
            "INDEX",
            "events_by_run",
            "CREATE INDEX IF NOT EXISTS events_by_run ON events (run, seq)".into(),
        ),
        (
            "TRIGGER",
            "events_no_update",
            guard("events_no_update", "UPDATE"),
        ),
        (
            "TRIGGER",
            "events_no_delete",
            guard("events_no_delete", "DELETE"),
        ),
    ]
}

/// Whether `stored`, the text `sqlite_master` keeps, is what `statement`
/// of [`schema`] makes: SQLite keeps it less `IF NOT EXISTS`, and
/// indentation is not part of a schema.
fn made_by(stored: &str, statement: &str) -> bool {
    let expected = statement.replacen(" IF NOT EXISTS", "", 1);
    stored.split_whitespace().eq(expected.split_whitespace())
}

/// One ledger event, as stored.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Event {
    /// Position in the chain, starting at 1, without gaps.
    pub seq: u64,
    /// RFC 3339 UTC timestamp with milliseconds, e.g. `2025-01-02T03:04:05.678Z`.
    pub ts: String,
    /// The run this event belongs to, if any.
    pub run: Option<String>,
    /// What happened, e.g. `run.created`.
    pub kind: String,
    /// Details; stored as compact JSON text.
    pub data: serde_json::Value,
    /// Hash of the previous event ([`GENESIS`] for event 1).
    pub prev: String,
    /// Hash of this event, see [`hash_event`].
    pub hash: String,
}

impl Event {
    /// Recompute this event's hash from its fields.
    ///
    /// `data` is re-serialised as compact JSON, which reproduces the stored
    /// text for any event read from a ledger. Compare with `self.hash`.
    pub fn computed_hash(&self) -> String {
        let data = serde_json::to_string(&self.data).unwrap_or_default();
        hash_event(
            self.seq,
            &self.ts,
            self.run.as_deref(),
            &self.kind,
            &data,
            &self.prev,
        )
    }
}

/// Result of [`Ledger::verify`].
#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    /// Number of events stored in the ledger.
    pub events: u64,
    /// Stored hash of the last event (highest seq); `None` for an empty ledger.
    /// Only trustworthy when `first_bad` is `None`.
    pub head: Option<String>,
    /// The first event (in seq order) that breaks the chain, if any.
    pub first_bad: Option<BadEvent>,
}

impl VerifyReport {
    /// True when every event checked out.
    pub fn is_ok(&self) -> bool {
        self.first_bad.is_none()
    }
}

/// The first problem found by [`Ledger::verify`].
#[derive(Debug, Clone, Serialize)]
pub struct BadEvent {
    /// Sequence number of the bad (or first missing) event.
    pub seq: u64,
    /// A sentence saying what is wrong.
    pub problem: String,
}

/// Everything that can go wrong with the ledger.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// The database file could not be opened at all.
    #[error(
        "cannot open ledger {}: {source}; check that its directory exists and is writable, or set AIRLOCK_HOME",
        path.display()
    )]
    Open {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    /// The file exists but is not (or no longer) an airlock ledger.
    #[error("{} is not an airlock ledger ({reason}); move it aside or set AIRLOCK_HOME", path.display())]
    NotALedger { path: PathBuf, reason: String },
    /// The ledger was written by a newer airlock.
    #[error(
        "ledger {} has schema version {found}, but this airlock understands only version {supported}; upgrade airlock",
        path.display()
    )]
    NewerSchema {
        path: PathBuf,
        found: String,
        supported: u32,
    },
    /// Another process held the write lock for longer than [`BUSY_TIMEOUT`].
    #[error(
        "ledger is busy: another airlock process held it for more than 10s ({source}); retry, or look for a stuck airlock process"
    )]
    Busy {
        #[source]
        source: rusqlite::Error,
    },
    /// A stored event cannot be read back.
    #[error(
        "ledger event {seq} is corrupt: {problem}; run `airlock ledger verify` to find where the ledger was tampered with"
    )]
    Corrupt { seq: u64, problem: String },
    /// The caller passed an event that cannot be recorded.
    #[error("refused to append event: {0}")]
    InvalidEvent(String),
    /// Event data could not be encoded as JSON.
    #[error("refused to append event: its data cannot be encoded as JSON ({0})")]
    Json(#[from] serde_json::Error),
    /// Any other SQLite failure.
    #[error("ledger database error: {0}")]
    Sqlite(rusqlite::Error),
}

impl From<rusqlite::Error> for LedgerError {
    fn from(e: rusqlite::Error) -> Self {
        match e.sqlite_error_code() {
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => {
                LedgerError::Busy { source: e }
            }
            _ => LedgerError::Sqlite(e),
        }
    }
}

/// Compute an event hash: lowercase hex SHA-256 over a domain tag followed by
/// `seq` (8 bytes big-endian), then `ts`, `run`, `kind`, `data` and `prev`, each
/// as an 8-byte big-endian length followed by its bytes. `run` is preceded by
/// a byte `0` (none) or `1` (some), so `None` and `Some("")` differ.
pub fn hash_event(
    seq: u64,
    ts: &str,
    run: Option<&str>,
    kind: &str,
    data: &str,
    prev: &str,
) -> String {
    let hex = hash_raw(
        seq,
        ts.as_bytes(),
        run.map(str::as_bytes),
        kind.as_bytes(),
        data.as_bytes(),
        prev.as_bytes(),
    );
    // hex digits are ASCII
    String::from_utf8(hex.to_vec()).expect("hex is ascii")
}

fn hash_raw(
    seq: u64,
    ts: &[u8],
    run: Option<&[u8]>,
    kind: &[u8],
    data: &[u8],
    prev: &[u8],
) -> [u8; 64] {
    fn field(h: &mut Sha256, bytes: &[u8]) {
        h.update((bytes.len() as u64).to_be_bytes());
        h.update(bytes);
    }
    let mut h = Sha256::new();
    h.update(DOMAIN);
    h.update(seq.to_be_bytes());
    field(&mut h, ts);
    match run {
        None => h.update([0u8]),
        Some(r) => {
            h.update([1u8]);
            field(&mut h, r);
        }
    }
    field(&mut h, kind);
    field(&mut h, data);
    field(&mut h, prev);
    let digest = h.finalize();
    let mut out = [0u8; 64];
    hex::encode_to_slice(digest, &mut out).expect("64 bytes hold a hex sha256");
    out
}

fn now_rfc3339_millis() -> String {
    humantime::format_rfc3339_millis(SystemTime::now()).to_string()
}

/// The ledger: an open SQLite connection with the ledger schema in place.
pub struct Ledger {
    conn: Connection,
    /// `open` accepted the file as a ledger.
    opened: bool,
}

impl std::fmt::Debug for Ledger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ledger")
            .field("path", &self.conn.path())
            .finish()
    }
}

/// Frames the write-ahead log may hold when a connection closes before it
/// is checkpointed and emptied (see `Drop`).
const WAL_FRAMES: u64 = 64;

impl Drop for Ledger {
    /// The first connection of each process rebuilds the log's index by
    /// reading the whole log, and a log is only restarted by a process that
    /// writes twice: so a long one is checkpointed and emptied here, once
    /// every few dozen commands, rather than on every close.
    fn drop(&mut self) {
        // Only a ledger: a file `open` refused is left as it was.
        if !self.opened {
            return;
        }
        let Some(path) = self.conn.path().filter(|p| !p.is_empty()) else {
            return;
        };
        let log = format!("{path}-wal");
        let page = self
            .conn
            .query_row("PRAGMA page_size", [], |r| r.get::<_, i64>(0))
            .ok()
            .and_then(|p| u64::try_from(p).ok())
            .unwrap_or(4096);
        let long = std::fs::metadata(&log).is_ok_and(|m| m.len() > WAL_FRAMES * (page + 24));
        if long {
            // Never wait for another process to finish reading: the next
            // connection to close will do it instead.
            let _ = self.conn.busy_timeout(std::time::Duration::ZERO);
            let _ = self
                .conn
                .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
        }
    }
}

impl Ledger {
    /// Open (or create) the ledger at `path`. The parent directory must exist.
    ///
    /// Creates the schema if missing, switches the file to WAL, sets a 10 s
    /// busy timeout and turns foreign keys on. A file that is not SQLite, or a
    /// SQLite database whose `events` table is not a ledger's, is refused with
    /// [`LedgerError::NotALedger`].
    pub fn open(path: &Path) -> Result<Ledger, LedgerError> {
        let conn = Connection::open(path).map_err(|source| LedgerError::Open {
            path: path.to_path_buf(),
            source,
        })?;
        let mut ledger = Ledger {
            conn,
            opened: false,
        };
        ledger
            .init(path)
            .map_err(|e| classify_open_error(path, e))?;
        ledger.opened = true;
        Ok(ledger)
    }

    fn init(&mut self, path: &Path) -> Result<(), LedgerError> {
        self.conn.busy_timeout(BUSY_TIMEOUT)?;
        // Closing would otherwise checkpoint and delete the write-ahead log,
        // and the next open recreate it: four fsyncs per command for nothing
        // (commits are durable in the log; SQLite checkpoints it as it grows).
        self.conn
            .set_db_config(DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, true)?;
        // First real read of the file: a non-SQLite file fails here.
        let _mode: String = self
            .conn
            .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
        self.conn.pragma_update(None, "foreign_keys", true)?;
        // Opened once per command: a ledger already whole needs nothing made.
        if self.is_whole() {
            return Ok(());
        }

        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let existing: Vec<String> = {
            let mut stmt =
                tx.prepare("SELECT name FROM pragma_table_info('events') ORDER BY cid")?;
            stmt.query_map([], |r| r.get::<_, String>(0))?
                .collect::<Result<_, _>>()?
        };
        if !existing.is_empty() && existing != COLUMNS {
            return Err(LedgerError::NotALedger {
                path: path.to_path_buf(),
                reason: format!(
                    "it has an `events` table with columns ({}), expected ({})",
                    existing.join(", "),
                    COLUMNS.join(", ")
                ),
            });
        }
        // An index or trigger of ours whose text differs (a guard rewritten
        // to let edits through) is dropped here and made again below.
        let stored: Vec<(String, String)> = {
            let mut stmt = tx.prepare(
                "SELECT name, sql FROM sqlite_master
                  WHERE tbl_name = 'events' AND type IN ('index', 'trigger') AND sql IS NOT NULL",
            )?;
            stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<_, _>>()?
        };
        for (kind, name, statement) in schema().iter().filter(|(kind, ..)| *kind != "TABLE") {
            if stored
                .iter()
                .any(|(n, sql)| n == name && !made_by(sql, statement))
            {
                tx.execute_batch(&format!("DROP {kind} {name}"))?;
            }
        }
        for (_, _, statement) in schema() {
            tx.execute_batch(&statement)?;
        }
        tx.execute(
            "INSERT OR IGNORE INTO ledger_meta (key, value) VALUES ('schema_version', ?1)",
            [SCHEMA_VERSION.to_string()],
        )?;
        let version: String = tx.query_row(
            "SELECT value FROM ledger_meta WHERE key = 'schema_version'",
            [],
            |r| r.get(0),
        )?;
        if version != SCHEMA_VERSION.to_string() {
            return Err(match version.parse::<u32>() {
                Ok(v) if v > SCHEMA_VERSION => LedgerError::NewerSchema {
                    path: path.to_path_buf(),
                    found: version,
                    supported: SCHEMA_VERSION,
                },
                _ => LedgerError::NotALedger {
                    path: path.to_path_buf(),
                    reason: format!("unknown ledger schema version {version:?}"),
                },
            });
        }
        tx.commit()?;
        Ok(())
    }

    /// Whether the file already holds this version's ledger, complete and
    /// nothing else on its tables: the schema version, and the text of each
    /// table, index and trigger as [`schema`] makes it. Anything else (a new
    /// file, another version, a trigger dropped or rewritten) goes through
    /// the full set-up, which makes what is missing or refuses the file.
    /// One read of `sqlite_master`, which SQLite has already loaded: opened
    /// once per command, the ledger must be cheap to open.
    fn is_whole(&self) -> bool {
        let found: rusqlite::Result<Vec<(String, Option<String>)>> = self
            .conn
            .prepare(
                "SELECT name, sql FROM sqlite_master
                  WHERE tbl_name IN ('events', 'ledger_meta') AND sql IS NOT NULL
                 UNION ALL
                 SELECT 'schema_version', value FROM ledger_meta WHERE key = 'schema_version'",
            )
            .and_then(|mut stmt| {
                stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                    .collect()
            });
        let Ok(mut found) = found else {
            return false;
        };
        let Some(at) = found.iter().position(|(name, _)| name == "schema_version") else {
            return false;
        };
        let (_, version) = found.remove(at);
        let expected = schema();
        version == Some(SCHEMA_VERSION.to_string())
            && found.len() == expected.len()
            && expected.iter().all(|(_, name, statement)| {
                found.iter().any(|(n, sql)| {
                    n == name && sql.as_deref().is_some_and(|sql| made_by(sql, statement))
                })
            })
    }

    /// The underlying connection; other crates keep their own tables in the same file.
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    /// Mutable access, e.g. to start a transaction for [`append_in`]
    /// (use `TransactionBehavior::Immediate`).
    pub fn connection_mut(&mut self) -> &mut Connection {
        &mut self.conn
    }

    /// Runs `work` with commits that are not flushed to disk before they
    /// return (`synchronous=NORMAL`): they survive this process dying at any
    /// point, and the ledger stays whole, but a power cut may drop the last
    /// of them. The next commit made without this flushes them with it.
    /// For frequent records such as command traces; decisions are committed
    /// in full.
    pub fn with_relaxed_sync<T, E: From<rusqlite::Error>>(
        &mut self,
        work: impl FnOnce(&mut Connection) -> Result<T, E>,
    ) -> Result<T, E> {
        // Cached: a ledger server relaxes it for trace after trace.
        let set = |conn: &Connection, level: &str| {
            conn.prepare_cached(&format!("PRAGMA synchronous = {level}"))
                .and_then(|mut stmt| stmt.execute([]))
                .map(drop)
        };
        set(&self.conn, "NORMAL")?;
        let result = work(&mut self.conn);
        let restored = set(&self.conn, "FULL");
        let value = result?;
        restored?;
        Ok(value)
    }

    /// Append one event in its own IMMEDIATE transaction and return it.
    pub fn append(
        &mut self,
        run: Option<&str>,
        kind: &str,
        data: &serde_json::Value,
    ) -> Result<Event, LedgerError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let event = append_in(&tx, run, kind, data)?;
        tx.commit()?;
        Ok(event)
    }

    /// Events in seq order: all of them (`None`) or those of one run.
    pub fn events(&self, run: Option<&str>) -> Result<Vec<Event>, LedgerError> {
        const SELECT: &str = "SELECT seq, ts, run, kind, data, prev, hash FROM events";
        let mut out = Vec::new();
        let mut push_rows = |mut rows: rusqlite::Rows<'_>| -> Result<(), LedgerError> {
            while let Some(row) = rows.next()? {
                out.push(event_from_row(row)?);
            }
            Ok(())
        };
        match run {
            None => {
                let mut stmt = self
                    .conn
                    .prepare_cached(&format!("{SELECT} ORDER BY seq"))?;
                push_rows(stmt.query([])?)?;
            }
            Some(r) => {
                let mut stmt = self
                    .conn
                    .prepare_cached(&format!("{SELECT} WHERE run = ?1 ORDER BY seq"))?;
                push_rows(stmt.query([r])?)?;
            }
        }
        Ok(out)
    }

    /// The events `condition` (an SQL expression over the events table's
    /// columns, written by the caller, never from input) selects with
    /// `params`, in ledger order.
    pub fn events_where<P: rusqlite::Params>(
        &self,
        condition: &str,
        params: P,
    ) -> Result<Vec<Event>, LedgerError> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT seq, ts, run, kind, data, prev, hash FROM events WHERE {condition} ORDER BY seq"
        ))?;
        let mut rows = stmt.query(params)?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            out.push(event_from_row(row)?);
        }
        Ok(out)
    }

    /// The last event's seq and stored hash, or `None` for an empty ledger.
    pub fn head(&self) -> Result<Option<(u64, String)>, LedgerError> {
        head_of(&self.conn)
    }

    /// Whether an event with this seq and hash is in the ledger.
    pub fn contains(&self, seq: u64, hash: &str) -> Result<bool, LedgerError> {
        let Ok(seq) = i64::try_from(seq) else {
            return Ok(false);
        };
        let found = self
            .conn
            .prepare_cached("SELECT 1 FROM events WHERE seq = ?1 AND hash = ?2")?
            .exists(params![seq, hash])?;
        Ok(found)
    }

    /// Walk every event in seq order, recompute hashes and links, and report
    /// the first event that was edited, removed or reordered.
    ///
    /// Returns `Ok` even when the chain is broken; the report says where.
    /// Truncation of the tail cannot be seen from the ledger alone: compare
    /// the reported head with one anchored elsewhere (e.g. a signed proof).
    pub fn verify(&self) -> Result<VerifyReport, LedgerError> {
        // One read snapshot for the walk and the summary.
        let tx = if self.conn.is_autocommit() {
            Some(self.conn.unchecked_transaction()?)
        } else {
            None
        };
        let first_bad = walk_chain(&self.conn)?;
        let (events, head): (i64, Option<String>) = self.conn.query_row(
            "SELECT count(*), (SELECT hash FROM events ORDER BY seq DESC LIMIT 1) FROM events",
            [],
            |r| Ok((r.get(0)?, r.get(1).ok().flatten())),
        )?;
        if let Some(tx) = tx {
            tx.finish()?;
        }
        Ok(VerifyReport {
            events: events.max(0) as u64,
            head,
            first_bad,
        })
    }
}

/// A position in a ledger recorded outside it (a head record, a proof's
/// anchor): the event airlock knew was committed there, by seq and hash.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Head {
    pub seq: u64,
    pub hash: String,
}

/// How a ledger stands against a [`Head`] recorded outside it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(tag = "status", rename_all = "kebab-case")]
pub enum HeadCheck {
    /// The ledger holds the recorded event: it is not older than the record.
    Holds,
    /// The ledger ends before the recorded event: events `events + 1 ..=
    /// head.seq` are missing (an older copy restored, a lost write-ahead log).
    Older {
        /// The last seq the ledger holds (0: empty).
        events: u64,
    },
    /// The ledger holds another event at the recorded position: it was
    /// rewritten from there or earlier, or it is another ledger.
    Differs {
        /// The hash the ledger holds at the recorded seq.
        found: String,
    },
}

impl Ledger {
    /// Whether the ledger reaches `head`: its last seq is at least
    /// `head.seq`, and its event there has `head.hash`. Counts by the last
    /// seq; [`Ledger::verify`] finds gaps before it. One read snapshot.
    pub fn check_head(&self, head: &Head) -> Result<HeadCheck, LedgerError> {
        let tx = if self.conn.is_autocommit() {
            Some(self.conn.unchecked_transaction()?)
        } else {
            None
        };
        let last = head_of(&self.conn)?.map_or(0, |(seq, _)| seq);
        let at = self.hash_at(head.seq)?;
        if let Some(tx) = tx {
            tx.finish()?;
        }
        Ok(match at {
            _ if last < head.seq => HeadCheck::Older { events: last },
            Some(found) if found != head.hash => HeadCheck::Differs { found },
            Some(_) => HeadCheck::Holds,
            // Below the last seq, yet missing: a gap, which `verify` names.
            None => HeadCheck::Differs {
                found: String::new(),
            },
        })
    }

    /// The stored hash of event `seq`, if the ledger holds it.
    pub fn hash_at(&self, seq: u64) -> Result<Option<String>, LedgerError> {
        let Ok(seq) = i64::try_from(seq) else {
            return Ok(None);
        };
        Ok(self
            .conn
            .prepare_cached("SELECT hash FROM events WHERE seq = ?1")?
            .query_row([seq], |r| r.get(0))
            .optional()?)
    }

    /// A value kept beside the events under `key` (not part of the chain).
    pub fn meta(&self, key: &str) -> Result<Option<String>, LedgerError> {
        Ok(self
            .conn
            .prepare_cached("SELECT value FROM ledger_meta WHERE key = ?1")?
            .query_row([key], |r| r.get(0))
            .optional()?)
    }

    /// Keeps `value` beside the events under `key`, committed in full. The
    /// schema version is the ledger's own.
    pub fn set_meta(&self, key: &str, value: &str) -> Result<(), LedgerError> {
        if key == "schema_version" {
            return Err(LedgerError::InvalidEvent(
                "the schema version is set by the ledger itself".into(),
            ));
        }
        self.conn
            .prepare_cached("INSERT OR REPLACE INTO ledger_meta (key, value) VALUES (?1, ?2)")?
            .execute([key, value])?;
        Ok(())
    }

    /// Which ledger this is: the hash of its first event, which names the
    /// moment and the content it began with (`None` while it is empty).
    /// A copy of a ledger, older or newer, has its identity.
    pub fn identity(&self) -> Result<Option<String>, LedgerError> {
        self.hash_at(1)
    }
}

fn classify_open_error(path: &Path, e: LedgerError) -> LedgerError {
    let sqlite = match &e {
        LedgerError::Sqlite(s) => s,
        _ => return e,
    };
    match sqlite.sqlite_error_code() {
        Some(ErrorCode::NotADatabase) => LedgerError::NotALedger {
            path: path.to_path_buf(),
            reason: "the file is not a SQLite database".into(),
        },
        Some(ErrorCode::DatabaseCorrupt) => LedgerError::NotALedger {
            path: path.to_path_buf(),
            reason: format!("the SQLite database is damaged: {sqlite}"),
        },
        Some(ErrorCode::CannotOpen | ErrorCode::PermissionDenied | ErrorCode::ReadOnly) => {
            match e {
                LedgerError::Sqlite(source) => LedgerError::Open {
                    path: path.to_path_buf(),
                    source,
                },
                other => other,
            }
        }
        _ => e,
    }
}

fn head_of(conn: &Connection) -> Result<Option<(u64, String)>, LedgerError> {
    let row: Option<(i64, String)> = conn
        .prepare_cached("SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1")?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    match row {
        None => Ok(None),
        Some((seq, hash)) => {
            let seq = u64::try_from(seq).map_err(|_| LedgerError::Corrupt {
                seq: 0,
                problem: format!("the last event has invalid seq {seq}"),
            })?;
            Ok(Some((seq, hash)))
        }
    }
}

fn event_from_row(row: &rusqlite::Row<'_>) -> Result<Event, LedgerError> {
    let raw_seq: i64 = row.get(0)?;
    let seq = u64::try_from(raw_seq).map_err(|_| LedgerError::Corrupt {
        seq: 0,
        problem: format!("invalid seq {raw_seq}"),
    })?;
    let text = |i: usize| -> Result<String, LedgerError> {
        row.get::<_, String>(i).map_err(|e| LedgerError::Corrupt {
            seq,
            problem: format!("column {} cannot be read as text ({e})", COLUMNS[i]),
        })
    };
    let run: Option<String> = row.get(2).map_err(|e| LedgerError::Corrupt {
        seq,
        problem: format!("column run cannot be read as text ({e})"),
    })?;
    let data_text = text(4)?;
    let data = serde_json::from_str(&data_text).map_err(|e| LedgerError::Corrupt {
        seq,
        problem: format!("data is not valid JSON ({e})"),
    })?;
    Ok(Event {
        seq,
        ts: text(1)?,
        run,
        kind: text(3)?,
        data,
        prev: text(5)?,
        hash: text(6)?,
    })
}

/// Append an event inside a caller's transaction, so that a state change and
/// the event describing it commit (or roll back) together.
///
/// Start the transaction with `TransactionBehavior::Immediate`: it takes the
/// write lock before the head is read, so concurrent processes serialise on
/// the busy timeout. (With a deferred transaction a concurrent writer makes
/// this call fail with a busy error; it never produces a duplicate seq.)
pub fn append_in(
    tx: &Transaction<'_>,
    run: Option<&str>,
    kind: &str,
    data: &serde_json::Value,
) -> Result<Event, LedgerError> {
    if kind.trim().is_empty() {
        return Err(LedgerError::InvalidEvent(
            "the event kind is empty; pass a kind such as `run.created`".into(),
        ));
    }
    let data: &serde_json::Value = &with_who(data);
    let data_text = serde_json::to_string(data)?;
    let (seq, prev) = match head_of(tx)? {
        None => (1u64, GENESIS.to_string()),
        Some((last, hash)) => (
            last.checked_add(1)
                .filter(|s| i64::try_from(*s).is_ok())
                .ok_or_else(|| {
                    LedgerError::InvalidEvent("the ledger is full (seq overflow)".into())
                })?,
            hash,
        ),
    };
    let ts = now_rfc3339_millis();
    let hash = hash_event(seq, &ts, run, kind, &data_text, &prev);
    tx.prepare_cached(
        "INSERT INTO events (seq, ts, run, kind, data, prev, hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![seq as i64, ts, run, kind, data_text, prev, hash])?;
    Ok(Event {
        seq,
        ts,
        run: run.map(str::to_owned),
        kind: kind.to_owned(),
        data: data.clone(),
        prev,
        hash,
    })
}

fn value_kind(v: ValueRef<'_>) -> &'static str {
    match v {
        ValueRef::Null => "null",
        ValueRef::Integer(_) => "an integer",
        ValueRef::Real(_) => "a real number",
        ValueRef::Text(_) => "text",
        ValueRef::Blob(_) => "a blob",
    }
}

fn short(bytes: &[u8]) -> String {
    let s = String::from_utf8_lossy(bytes);
    if s.chars().count() > 80 {
        let cut: String = s.chars().take(77).collect();
        format!("{cut}...")
    } else {
        s.into_owned()
    }
}

/// Stream all events in seq order; return the first problem.
fn walk_chain(conn: &Connection) -> Result<Option<BadEvent>, LedgerError> {
    let mut stmt = conn
        .prepare_cached("SELECT seq, ts, run, kind, data, prev, hash FROM events ORDER BY seq")?;
    let mut rows = stmt.query([])?;
    let mut expected: u64 = 1;
    let mut prev_hash = [0u8; 64];
    prev_hash.copy_from_slice(GENESIS.as_bytes());

    while let Some(row) = rows.next()? {
        let raw_seq = match row.get_ref(0)? {
            ValueRef::Integer(i) => i,
            other => {
                return Ok(Some(BadEvent {
                    seq: expected,
                    problem: format!(
                        "event after {}: seq is {}, not an integer",
                        expected - 1,
                        value_kind(other)
                    ),
                }));
            }
        };
        let seq = match u64::try_from(raw_seq) {
            Ok(s) if s >= 1 => s,
            _ => {
                return Ok(Some(BadEvent {
                    seq: 0,
                    problem: format!(
                        "an event has invalid seq {raw_seq} (sequence numbers start at 1)"
                    ),
                }));
            }
        };
        if seq < expected {
            return Ok(Some(BadEvent {
                seq,
                problem: format!("event {seq} appears more than once (the table was rewritten)"),
            }));
        }
        if seq != expected {
            let problem = if seq == expected + 1 {
                format!("event {expected} is missing (the next stored event is {seq})")
            } else {
                format!(
                    "events {expected}..{} are missing (the next stored event is {seq})",
                    seq - 1
                )
            };
            return Ok(Some(BadEvent {
                seq: expected,
                problem,
            }));
        }

        // Borrow every column as bytes; no per-row allocation on the good path.
        let mut cols: [&[u8]; 7] = [&[]; 7];
        let mut run: Option<&[u8]> = None;
        for (i, col) in cols.iter_mut().enumerate().skip(1) {
            match row.get_ref(i)? {
                ValueRef::Text(t) => {
                    *col = t;
                    if i == 2 {
                        run = Some(t);
                    }
                }
                ValueRef::Null if i == 2 => {}
                other => {
                    return Ok(Some(BadEvent {
                        seq,
                        problem: format!(
                            "event {seq}: column {} is {}, not text (the row was rewritten)",
                            COLUMNS[i],
                            value_kind(other)
                        ),
                    }));
                }
            }
        }
        let [_, ts, _, kind, data, prev, hash] = cols;

        if prev != prev_hash {
            let what = if seq == 1 {
                "the genesis hash"
            } else {
                "the hash of the previous event"
            };
            return Ok(Some(BadEvent {
                seq,
                problem: format!(
                    "event {seq}: previous-hash link broken: expected {} ({what}), found {} (an event was removed or reordered)",
                    short(&prev_hash),
                    short(prev)
                ),
            }));
        }
        let computed = hash_raw(seq, ts, run, kind, data, prev);
        if hash != computed {
            return Ok(Some(BadEvent {
                seq,
                problem: format!(
                    "event {seq}: stored hash does not match its contents (edited?): stored {}, computed {}",
                    short(hash),
                    short(&computed)
                ),
            }));
        }
        prev_hash = computed;
        expected = seq + 1;
    }
    Ok(None)
}

/// Who is acting in this process (issue 20: every event names its principal
/// and machine), as the engine sets it when it opens a store: worked out on
/// the first append, since finding the principal may run git and most
/// commands append nothing.
enum Actor {
    Unset,
    Pending(Box<dyn FnOnce() -> Option<serde_json::Value> + Send>),
    Known(Option<serde_json::Value>),
}

static ACTOR: std::sync::Mutex<Actor> = std::sync::Mutex::new(Actor::Unset);

/// Sets how to find who is acting (`{"principal", "machine"}`); each event
/// appended afterwards carries it as `data.who` (both backends).
pub fn set_who(find: Box<dyn FnOnce() -> Option<serde_json::Value> + Send>) {
    *ACTOR.lock().unwrap_or_else(|e| e.into_inner()) = Actor::Pending(find);
}

/// Who is acting, if set.
pub fn who() -> Option<serde_json::Value> {
    let mut actor = ACTOR.lock().unwrap_or_else(|e| e.into_inner());
    if let Actor::Pending(_) = &*actor
        && let Actor::Pending(find) = std::mem::replace(&mut *actor, Actor::Unset)
    {
        *actor = Actor::Known(find());
    }
    match &*actor {
        Actor::Known(who) => who.clone(),
        _ => None,
    }
}

/// `data` with `who` added (an object without one; anything else as it is).
pub fn with_who(data: &serde_json::Value) -> std::borrow::Cow<'_, serde_json::Value> {
    match data {
        serde_json::Value::Object(map) if !map.contains_key("who") => match who() {
            Some(who) => {
                let mut map = map.clone();
                map.insert("who".into(), who);
                std::borrow::Cow::Owned(serde_json::Value::Object(map))
            }
            None => std::borrow::Cow::Borrowed(data),
        },
        _ => std::borrow::Cow::Borrowed(data),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn genesis_is_64_zeros() {
        assert_eq!(GENESIS.len(), 64);
        assert!(GENESIS.bytes().all(|b| b == b'0'));
    }

    #[test]
    fn hash_is_lowercase_hex_sha256() {
        let h = hash_event(1, "t", None, "k", "{}", GENESIS);
        assert_eq!(h.len(), 64);
        assert!(
            h.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        );
    }

    #[test]
    fn timestamp_is_rfc3339_utc_millis() {
        let ts = now_rfc3339_millis();
        // 2025-01-02T03:04:05.678Z
        assert_eq!(ts.len(), 24, "{ts}");
        assert!(ts.ends_with('Z'));
        assert_eq!(&ts[19..20], ".");
        assert!(humantime::parse_rfc3339(&ts).is_ok());
    }
}
