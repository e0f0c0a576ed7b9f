//! Promotion leases (issue 20): one holder per target at a time, so two
//! machines promoting onto the same branch of the shared remote take turns.
//! A lease expires: a holder killed mid-promotion blocks nobody for longer
//! than its lease. The remote's compare-and-swap push is what keeps the
//! target right; the lease keeps machines from racing for it.

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use serde::{Deserialize, Serialize};

use crate::error::Result;

/// Who holds the promotion of a target, and until when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    /// What is promoted onto: the remote and the branch's ref.
    pub target: String,
    /// The run being promoted.
    pub run: String,
    /// The holder's machine (its key's fingerprint) and principal.
    pub machine: String,
    pub principal: String,
    /// Names this one taking of the lease: renewing and releasing need it.
    pub token: String,
    /// When it lapses, in milliseconds since the epoch.
    pub expires_ms: i64,
}

impl Lease {
    /// Whether it still holds at `now_ms`.
    pub fn live(&self, now_ms: i64) -> bool {
        self.expires_ms > now_ms
    }
}

/// Milliseconds since the epoch, now.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

pub(crate) fn sqlite_take(conn: &Connection, lease: &Lease, now_ms: i64) -> Result<Option<Lease>> {
    let tx = rusqlite::Transaction::new_unchecked(conn, TransactionBehavior::Immediate)?;
    let held: Option<String> = tx
        .query_row(
            "SELECT data FROM leases WHERE target = ?1",
            [&lease.target],
            |r| r.get(0),
        )
        .optional()?;
    if let Some(other) = held.and_then(|d| serde_json::from_str::<Lease>(&d).ok())
        && other.live(now_ms)
        && other.token != lease.token
    {
        return Ok(Some(other));
    }
    tx.execute(
        "INSERT OR REPLACE INTO leases (target, expires, data) VALUES (?1, ?2, ?3)",
        params![
            lease.target,
            lease.expires_ms,
            serde_json::to_string(lease).unwrap_or_default()
        ],
    )?;
    tx.commit()?;
    Ok(None)
}

pub(crate) fn sqlite_release(conn: &Connection, target: &str, token: &str) -> Result<()> {
    conn.execute(
        "DELETE FROM leases WHERE target = ?1 AND json_extract(data, '$.token') = ?2",
        params![target, token],
    )?;
    Ok(())
}

pub(crate) fn sqlite_get(conn: &Connection, target: &str, now_ms: i64) -> Result<Option<Lease>> {
    let held: Option<String> = conn
        .query_row("SELECT data FROM leases WHERE target = ?1", [target], |r| {
            r.get(0)
        })
        .optional()?;
    Ok(held
        .and_then(|d| serde_json::from_str::<Lease>(&d).ok())
        .filter(|l| l.live(now_ms)))
}
