//! What promotion metrics read: each run's class, lane, state and the
//! ledger events that decide its record (checks, submits, reviews,
//! promotions, rollbacks), in one scan of the runs and one of the events.

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
    pub lane: String,
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
            "SELECT id, json_extract(data, '$.class'), json_extract(data, '$.lane'), state, created
             FROM runs
             WHERE (?1 IS NULL OR created >= ?1)
               AND (?2 IS NULL OR json_extract(data, '$.class') = ?2)
             ORDER BY created, id",
        )?;
        let rows = stmt.query_map(
            rusqlite::params![filter.since.as_deref(), filter.class.as_deref()],
            |r| {
                Ok(RunSteps {
                    id: r.get(0)?,
                    class: r.get::<_, Option<String>>(1)?.unwrap_or_default(),
                    lane: r.get::<_, Option<String>>(2)?.unwrap_or_default(),
                    state: r.get(3)?,
                    created: r.get(4)?,
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
    let kinds = STEP_KINDS
        .iter()
        .map(|k| format!("'{k}'"))
        .collect::<Vec<_>>()
        .join(", ");
    let mut stmt = conn.prepare(&format!(
        "SELECT run, kind, ts,
                CASE WHEN kind = 'check' THEN json_extract(data, '$.failure') END
         FROM events
         WHERE run IS NOT NULL AND kind IN ({kinds})
         ORDER BY seq"
    ))?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        let run = row.get_ref(0)?.as_str().unwrap_or_default();
        let Some(&i) = index.get(run) else { continue };
        runs[i].steps.push(Step {
            kind: row.get(1)?,
            ts: row.get(2)?,
            failure: row.get(3)?,
        });
    }
    Ok(runs)
}
