//! What promotion metrics read: each run's class, state and the ledger
//! events that decide its record (checks, submits, reviews, promotions,
//! rollbacks). The store keeps a narrow copy of those events in
//! `run_steps` (migration 3), written in the same transaction as each
//! event, and each run's class in a column of `runs` under a covering
//! index: a record over many runs reads neither the ledger's events nor the
//! runs' JSON.

use std::collections::HashMap;

use rusqlite::Connection;

use crate::error::Result;

/// The events a run's record is made of.
pub const STEP_KINDS: [&str; 7] = [
    "check", "submit", "approve", "reject", "redirect", "promote", "rollback",
];

/// One run and its record-making events, in ledger order.
#[derive(Debug, Clone, PartialEq)]
pub struct RunSteps {
    pub id: String,
    pub class: String,
    pub state: String,
    pub created: String,
    pub steps: Vec<Step>,
}

/// One event: its kind, time and, for a failed `check`, what failed first
/// (the event's `failure`).
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub kind: String,
    pub ts: String,
    pub failure: Option<String>,
}

/// Which runs: created at or after `since` (RFC 3339, compared as text,
/// which orders the ledger's UTC times), of `class`.
#[derive(Debug, Clone, Default)]
pub struct StepFilter {
    pub since: Option<String>,
    pub class: Option<String>,
}

pub(crate) fn run_steps(conn: &Connection, filter: &StepFilter) -> Result<Vec<RunSteps>> {
    let mut runs = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    {
        let mut stmt = conn.prepare(
            "SELECT id, class, state, created
             FROM runs INDEXED BY runs_by_created
             WHERE (?1 IS NULL OR created >= ?1)
               AND (?2 IS NULL OR class = ?2)
             ORDER BY created",
        )?;
        let rows = stmt.query_map(
            rusqlite::params![filter.since.as_deref(), filter.class.as_deref()],
            |r| {
                Ok(RunSteps {
                    id: r.get(0)?,
                    class: r.get(1)?,
                    state: r.get(2)?,
                    created: r.get(3)?,
                    steps: Vec::new(),
                })
            },
        )?;
        for row in rows {
            let run = row?;
            index.insert(run.id.clone(), runs.len());
            runs.push(run);
        }
    }
    if runs.is_empty() {
        return Ok(runs);
    }
    // One class (a run's evidence asks for its own): only its runs' steps,
    // through the index by run; every class: the whole table in one pass.
    match filter.class.as_deref() {
        Some(class) => {
            let mut stmt = conn.prepare(
                "SELECT s.run, s.kind, s.ts, s.failure
                 FROM runs r INDEXED BY runs_by_created
                 JOIN run_steps s INDEXED BY run_steps_by_run ON s.run = r.id
                 WHERE (?1 IS NULL OR r.created >= ?1) AND r.class = ?2
                 ORDER BY s.run, s.seq",
            )?;
            let rows = stmt.query(rusqlite::params![filter.since.as_deref(), class])?;
            attach(rows, &mut runs, &index)?;
        }
        None => {
            let mut stmt =
                conn.prepare("SELECT run, kind, ts, failure FROM run_steps ORDER BY seq")?;
            attach(stmt.query([])?, &mut runs, &index)?;
        }
    }
    Ok(runs)
}

/// Adds each step row (run, kind, ts, failure) to its run, in the order
/// read; rows of runs not selected are passed over.
fn attach(
    mut rows: rusqlite::Rows<'_>,
    runs: &mut [RunSteps],
    index: &HashMap<String, usize>,
) -> Result<()> {
    while let Some(row) = rows.next()? {
        let run = row.get_ref(0)?.as_str().unwrap_or_default();
        let Some(&i) = index.get(run) else { continue };
        runs[i].steps.push(Step {
            kind: row.get(1)?,
            ts: row.get(2)?,
            failure: row.get(3)?,
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
        "INSERT INTO run_steps (seq, run, kind, ts, failure) VALUES (?1, ?2, ?3, ?4, ?5)",
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
