//! Promotion leases in PostgreSQL (see `airlock_store::lease`): a row of
//! `airlock_meta` under scope `lease` per target, taken under that row's
//! lock, so two machines taking the same target's lease at once serialise.

use postgres::Transaction;

use airlock_store::Lease;
use airlock_store::error::Result;

use crate::database_error;

const SCOPE: &str = "lease";

pub(crate) fn take(tx: &mut Transaction<'_>, lease: &Lease, now_ms: i64) -> Result<Option<Lease>> {
    // The row exists before it is locked, so that two first takers meet on it.
    tx.execute(
        "INSERT INTO airlock_meta (scope, key, value) VALUES ($1, $2, '') ON CONFLICT DO NOTHING",
        &[&SCOPE, &lease.target],
    )
    .map_err(database_error)?;
    let held: String = tx
        .query_one(
            "SELECT value FROM airlock_meta WHERE scope = $1 AND key = $2 FOR UPDATE",
            &[&SCOPE, &lease.target],
        )
        .map_err(database_error)?
        .get(0);
    if let Ok(other) = serde_json::from_str::<Lease>(&held)
        && other.live(now_ms)
        && other.token != lease.token
    {
        return Ok(Some(other));
    }
    tx.execute(
        "UPDATE airlock_meta SET value = $3 WHERE scope = $1 AND key = $2",
        &[
            &SCOPE,
            &lease.target,
            &serde_json::to_string(lease).unwrap_or_default(),
        ],
    )
    .map_err(database_error)?;
    Ok(None)
}

pub(crate) fn release(tx: &mut Transaction<'_>, target: &str, token: &str) -> Result<()> {
    let held: Option<String> = tx
        .query_opt(
            "SELECT value FROM airlock_meta WHERE scope = $1 AND key = $2 FOR UPDATE",
            &[&SCOPE, &target],
        )
        .map_err(database_error)?
        .map(|r| r.get(0));
    if held
        .and_then(|h| serde_json::from_str::<Lease>(&h).ok())
        .is_some_and(|l| l.token == token)
    {
        tx.execute(
            "UPDATE airlock_meta SET value = '' WHERE scope = $1 AND key = $2",
            &[&SCOPE, &target],
        )
        .map_err(database_error)?;
    }
    Ok(())
}

pub(crate) fn get(rows: Vec<postgres::Row>, now_ms: i64) -> Option<Lease> {
    rows.first()
        .and_then(|r| serde_json::from_str::<Lease>(r.get::<_, &str>(0)).ok())
        .filter(|l| l.live(now_ms))
}
