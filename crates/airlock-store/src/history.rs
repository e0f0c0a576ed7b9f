//! What promotion metrics read: each run's class and the ledger events that
//! decide its record (checks, submits, reviews, promotions, rollbacks). The
//! store keeps a narrow copy of those events in `run_steps` (migration 3),
//! written in the same transaction as each event, under an index by run
//! that covers every column, and each run's class in a column of `runs`
//! under a covering index: a record over many runs reads two indexes, never
//! the ledger's events or the runs' JSON, and nothing is allocated per step.

use rusqlite::Connection;

use crate::error::Result;

/// The events a run's record is made of.
pub const STEP_KINDS: [&str; 7] = [
    "check", "submit", "approve", "reject", "redirect", "promote", "rollback",
];

/// One row of a run's record as [`for_each_step`] hands it over, borrowed
/// from SQLite's row: the run, and one of its steps in ledger order (none
/// for a run with no step yet). A run's rows come one after another.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepRow<'a> {
    pub run: &'a str,
    pub class: &'a str,
    /// When the run was started (RFC 3339, UTC).
    pub created: &'a str,
    pub step: Option<Step<'a>>,
}

/// One record-making event: its kind, its time (milliseconds since the
/// epoch) and, for a failed `check`, what failed first (its `failure`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Step<'a> {
    pub kind: &'a str,
    pub at_ms: i64,
    pub failure: Option<&'a str>,
}

/// Which runs: created at or after `since` (RFC 3339, compared as text,
/// which orders the ledger's UTC times), of `class`.
#[derive(Debug, Clone, Default)]
pub struct StepFilter {
    pub since: Option<String>,
    pub class: Option<String>,
}

/// Hands `visit` every step of the runs `filter` selects, a run's steps
/// together and in ledger order.
pub(crate) fn for_each_step(
    conn: &Connection,
    filter: &StepFilter,
    visit: &mut dyn FnMut(StepRow<'_>),
) -> Result<()> {
    // Runs outer (a LEFT JOIN keeps that order and runs without steps),
    // each one's steps from the covering index by run, in seq order.
    let mut stmt = conn.prepare_cached(
        "SELECT r.id, r.class, r.created, s.kind, s.at, s.failure
         FROM runs r INDEXED BY runs_by_created
         LEFT JOIN run_steps s INDEXED BY run_steps_by_run ON s.run = r.id
         WHERE (?1 IS NULL OR r.created >= ?1) AND (?2 IS NULL OR r.class = ?2)
         ORDER BY r.created, r.class, r.id, s.seq",
    )?;
    let mut rows = stmt.query(rusqlite::params![
        filter.since.as_deref(),
        filter.class.as_deref()
    ])?;
    while let Some(row) = rows.next()? {
        let text = |i: usize| -> Result<&str> { Ok(row.get_ref(i)?.as_str().unwrap_or_default()) };
        let step = match row.get_ref(3)?.as_str_or_null().ok().flatten() {
            Some(kind) => Some(Step {
                kind,
                at_ms: row.get(4)?,
                failure: row.get_ref(5)?.as_str_or_null().ok().flatten(),
            }),
            None => None,
        };
        visit(StepRow {
            run: text(0)?,
            class: text(1)?,
            created: text(2)?,
            step,
        });
    }
    Ok(())
}

/// Keeps `event` in `run_steps` when it is one a record is made of; called
/// in the transaction that appends it.
pub fn note_step(conn: &Connection, event: &airlock_ledger::Event) -> Result<()> {
    let Some(run) = event.run.as_deref() else {
        return Ok(());
    };
    if !STEP_KINDS.contains(&event.kind.as_str()) {
        return Ok(());
    }
    let failure = (event.kind == "check")
        .then(|| event.data["failure"].as_str())
        .flatten();
    conn.prepare_cached(
        "INSERT INTO run_steps (seq, run, kind, at, failure)
         VALUES (?1, ?2, ?3, CAST(round((julianday(?4) - 2440587.5) * 86400000.0) AS INTEGER), ?5)",
    )?
    .execute(rusqlite::params![
        event.seq as i64,
        run,
        event.kind,
        event.ts,
        failure
    ])?;
    Ok(())
}
