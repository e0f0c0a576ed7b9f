//! What promotion metrics read: each run's class and the ledger events that
//! decide its record (checks, submits, reviews, promotions, rollbacks). The
//! store keeps a narrow copy of those events in `run_steps` (migration 3),
//! written in the same transaction as each event, under an index by run
//! that covers every column, and each run's class in a column of `runs`
//! under covering indexes: a record over many runs reads two indexes, never
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
    let Some(class) = filter.class.as_deref() else {
        return every_class(conn, filter.since.as_deref(), visit);
    };
    // One class (a run's evidence asks for its own): its runs outer (a
    // LEFT JOIN keeps that order and runs without steps), each one's steps
    // from the covering index by run, in seq order.
    let mut stmt = conn.prepare_cached(
        "SELECT r.id, r.class, r.created, s.kind, s.at, s.failure
         FROM runs r INDEXED BY runs_by_created
         LEFT JOIN run_steps s INDEXED BY run_steps_by_run ON s.run = r.id
         WHERE (?1 IS NULL OR r.created >= ?1) AND r.class = ?2
         ORDER BY r.created, r.class, r.id, s.seq",
    )?;
    let mut rows = stmt.query(rusqlite::params![filter.since.as_deref(), class])?;
    while let Some(row) = rows.next()? {
        let step = step_at(row, 3)?;
        visit(StepRow {
            run: text(row, 0)?,
            class: text(row, 1)?,
            created: text(row, 2)?,
            step,
        });
    }
    Ok(())
}

/// Every class: two scans in run id order, merged here, instead of a
/// lookup in the steps' index per run (half the time over 100,000 runs).
fn every_class(
    conn: &Connection,
    since: Option<&str>,
    visit: &mut dyn FnMut(StepRow<'_>),
) -> Result<()> {
    let mut runs_stmt = conn.prepare_cached(
        "SELECT id, class, created FROM runs INDEXED BY runs_by_id
         WHERE ?1 IS NULL OR created >= ?1 ORDER BY id",
    )?;
    let mut steps_stmt = conn.prepare_cached(
        "SELECT run, kind, at, failure FROM run_steps INDEXED BY run_steps_by_run
         ORDER BY run, seq",
    )?;
    let mut runs = runs_stmt.query(rusqlite::params![since])?;
    let mut steps = steps_stmt.query([])?;
    let mut next = steps.next()?;
    while let Some(run) = runs.next()? {
        let (id, class, created) = (text(run, 0)?, text(run, 1)?, text(run, 2)?);
        // Steps of runs not selected come first (both sides in SQLite's
        // BINARY order, which is `str`'s).
        while let Some(row) = next
            && text(row, 0)? < id
        {
            next = steps.next()?;
        }
        let mut any = false;
        while let Some(row) = next
            && text(row, 0)? == id
        {
            any = true;
            visit(StepRow {
                run: id,
                class,
                created,
                step: step_at(row, 1)?,
            });
            next = steps.next()?;
        }
        if !any {
            visit(StepRow {
                run: id,
                class,
                created,
                step: None,
            });
        }
    }
    Ok(())
}

fn text<'r>(row: &'r rusqlite::Row<'_>, i: usize) -> Result<&'r str> {
    Ok(row.get_ref(i)?.as_str().unwrap_or_default())
}

/// The step in columns `i..i + 3` (kind, at, failure), none when the kind is
/// NULL (a run without steps, through a LEFT JOIN).
fn step_at<'r>(row: &'r rusqlite::Row<'_>, i: usize) -> Result<Option<Step<'r>>> {
    let Some(kind) = row.get_ref(i)?.as_str_or_null().ok().flatten() else {
        return Ok(None);
    };
    Ok(Some(Step {
        kind,
        at_ms: row.get(i + 1)?,
        failure: row.get_ref(i + 2)?.as_str_or_null().ok().flatten(),
    }))
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
