//! The sealed log's leaves in PostgreSQL (issue 20): each seal appends,
//! under an advisory lock, a leaf (chain, n, hash) for every chain whose
//! head moved since its last leaf. The leaves are the log the engine's
//! checkpoints sign (airlock_core::seal); the database holds no key, so a
//! superuser who rewrites events, chains or leaves cannot make a signed
//! checkpoint agree.

use postgres::Transaction;

use airlock_ledger::Event;
use airlock_store::LogLeaf;
use airlock_store::error::Result;

use crate::{PgStore, database_error};

/// The advisory lock seals take ("seal" in ASCII): two machines sealing at
/// once number their leaves one after the other.
pub const SEAL_LOCK: i64 = 0x7365_616c;

/// Migration 2: the leaves, append-only for anyone but a superuser (who
/// can drop the triggers; the signed checkpoints show what they did).
pub(crate) const MIGRATION: &str = "CREATE TABLE log_leaves (
    idx BIGINT PRIMARY KEY CHECK (idx >= 0),
    chain TEXT NOT NULL,
    n BIGINT NOT NULL CHECK (n >= 1),
    hash TEXT NOT NULL
);
CREATE INDEX log_leaves_by_chain ON log_leaves (chain, n);
CREATE TRIGGER log_leaves_no_update BEFORE UPDATE OR DELETE ON log_leaves
    FOR EACH ROW EXECUTE FUNCTION airlock_events_append_only();
CREATE TRIGGER log_leaves_no_truncate BEFORE TRUNCATE ON log_leaves
    FOR EACH STATEMENT EXECUTE FUNCTION airlock_events_append_only();";

/// Appends the leaves of the chains that moved; returns the log's size.
pub(crate) fn seal(tx: &mut Transaction<'_>) -> Result<u64> {
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&SEAL_LOCK])
        .map_err(database_error)?;
    tx.execute(
        "INSERT INTO log_leaves (idx, chain, n, hash)
         SELECT (SELECT count(*) FROM log_leaves)
                + row_number() OVER (ORDER BY c.chain COLLATE \"C\") - 1,
                c.chain, c.n, c.hash
         FROM chains c
         LEFT JOIN (SELECT chain, max(n) AS n FROM log_leaves GROUP BY chain) s
             ON s.chain = c.chain
         WHERE c.n > 0 AND (s.n IS NULL OR c.n > s.n)",
        &[],
    )
    .map_err(database_error)?;
    let size: i64 = tx
        .query_one("SELECT count(*) FROM log_leaves", &[])
        .map_err(database_error)?
        .get(0);
    Ok(size as u64)
}

/// Notes `event`, just witnessed, as appended here and not yet sealed
/// (airlock_store::unsealed).
pub(crate) fn note_unsealed(store: &PgStore, event: &Event) -> Result<()> {
    let path = unsealed_path(store);
    airlock_store::unsealed::note(
        &path,
        event.run.as_deref().unwrap_or(""),
        event.seq,
        &event.hash,
    )
}

/// Where this machine's notes of unsealed events in this database are.
pub fn unsealed_path(store: &PgStore) -> std::path::PathBuf {
    airlock_store::unsealed::path(&store.paths, &format!("postgres {}", store.location))
}

impl PgStore {
    pub(crate) fn read_log_leaves(&self) -> Result<Vec<LogLeaf>> {
        Ok(self
            .query(
                "SELECT l.idx, l.chain, l.n, l.hash, e.hash FROM log_leaves l
                 LEFT JOIN events e ON e.chain = l.chain AND e.n = l.n
                 ORDER BY l.idx",
                &[],
            )?
            .iter()
            .map(|r| LogLeaf {
                index: r.get::<_, i64>(0) as u64,
                chain: r.get(1),
                n: r.get::<_, i64>(2) as u64,
                hash: r.get(3),
                event: r.get(4),
            })
            .collect())
    }

    pub(crate) fn read_chain_heads(&self) -> Result<Vec<(String, u64, String)>> {
        Ok(self
            .query(
                "SELECT chain, n, hash FROM chains WHERE n > 0 ORDER BY chain COLLATE \"C\"",
                &[],
            )?
            .iter()
            .map(|r| (r.get(0), r.get::<_, i64>(1) as u64, r.get(2)))
            .collect())
    }

    pub(crate) fn read_chain_event(&self, chain: &str, n: u64) -> Result<Option<String>> {
        let Ok(n) = i64::try_from(n) else {
            return Ok(None);
        };
        Ok(self
            .query(
                "SELECT hash FROM events WHERE chain = $1 AND n = $2",
                &[&chain, &n],
            )?
            .first()
            .map(|r| r.get(0)))
    }
}
