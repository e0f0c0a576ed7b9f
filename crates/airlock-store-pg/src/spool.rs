//! Working offline, the database's side (see `airlock_store::spool`): what
//! this machine remembers of the runs it works on, so that it can go on
//! with them when the database is out of reach, and the flush of what it
//! recorded meanwhile, when it next connects.
//!
//! The flush is idempotent: a trace is stored once (its stdout log's path
//! names it, `add_trace_in`), so a flush killed halfway and run again skips
//! what it stored and goes on. Each run's records follow the chain head the
//! machine knew when it went offline: if the run's chain has moved on since
//! by anything but these records (another machine's event), the flush stops
//! there and names the run (`offline-conflict`): nothing is merged silently.

use airlock_model::run::Run;
use airlock_store::spool::{self, Known, Link};
use airlock_store::{Error, Result};

use crate::{PgStore, add_trace_in, database_error};
use airlock_store::error::Code;

/// Remembers `run` and its chain head now, when its worktree is on this
/// machine (a run this machine works on). Best effort: failing only means
/// the run cannot go on offline.
pub(crate) fn remember(store: &PgStore, run: &Run) {
    if !run.worktree.is_dir() {
        return;
    }
    let Ok(rows) = store.query("SELECT n, hash FROM chains WHERE chain = $1", &[&run.id]) else {
        return;
    };
    let Some(row) = rows.first() else {
        return;
    };
    let known = Known {
        run: run.clone(),
        head: Link {
            n: row.get(0),
            hash: row.get(1),
        },
    };
    let _ = spool::remember(&store.paths, &known);
}

/// [`remember`] after a change made by the run's id alone.
pub(crate) fn remember_after(store: &PgStore, run: &str) {
    if let Ok(run) = airlock_store::Store::get(store, run) {
        remember(store, &run);
    }
}

/// Kills this process at the named point (`AIRLOCK_FAILPOINT`), for the
/// tests of a flush killed halfway.
fn failpoint(name: &str) {
    if std::env::var_os("AIRLOCK_FAILPOINT").is_some_and(|v| v == name) {
        use rustix::process::{Signal, getpid, kill_process};
        let _ = kill_process(getpid(), Signal::KILL);
    }
}

/// Flushes every run's records made offline, in order; returns how many
/// were stored. A run another machine moved on is refused
/// (`offline-conflict`) and its records kept.
pub(crate) fn flush(store: &PgStore) -> Result<usize> {
    let mut stored = 0;
    for run in spool::runs(&store.paths)? {
        stored += flush_run(store, &run)?;
    }
    Ok(stored)
}

fn flush_run(store: &PgStore, run: &str) -> Result<usize> {
    let pending = spool::pending(&store.paths, run)?;
    let Some((_, _, first)) = pending.first() else {
        return Ok(0);
    };
    let mut expected = first.after.clone();
    let mut stored = 0;
    for (_, path, record) in &pending {
        let mut trace = record.trace.clone();
        let log = trace.stdout.log.to_string_lossy().into_owned();
        let link = store.in_transaction(false, |tx, st| {
            // Stored already (a flush killed after its commit): its event
            // is the link the next record follows.
            if let Some(row) = tx
                .query_opt(
                    "SELECT e.n, e.hash FROM traces t
                     JOIN events e ON e.run = t.run AND e.kind = 'exec'
                      AND (e.data::jsonb)->'stdout'->>'log' = t.log
                     WHERE t.run = $1 AND t.log = $2",
                    &[&run, &log],
                )
                .map_err(database_error)?
            {
                return Ok((
                    Link {
                        n: row.get(0),
                        hash: row.get(1),
                    },
                    false,
                ));
            }
            let head = tx
                .query_opt(
                    "SELECT n, hash FROM chains WHERE chain = $1 FOR UPDATE",
                    &[&run],
                )
                .map_err(database_error)?
                .map(|r| Link {
                    n: r.get(0),
                    hash: r.get(1),
                });
            if head.as_ref() != Some(&expected) {
                let kind: Option<String> = match &head {
                    Some(h) => tx
                        .query_opt(
                            "SELECT kind FROM events WHERE chain = $1 AND n = $2",
                            &[&run, &h.n],
                        )
                        .map_err(database_error)?
                        .map(|r| r.get(0)),
                    None => None,
                };
                return Err(conflict(store, run, &expected, head.as_ref(), kind, path));
            }
            add_trace_in(tx, st, run, &mut trace)?;
            let row = tx
                .query_one("SELECT n, hash FROM chains WHERE chain = $1", &[&run])
                .map_err(database_error)?;
            Ok((
                Link {
                    n: row.get(0),
                    hash: row.get(1),
                },
                true,
            ))
        })?;
        if link.1 {
            stored += 1;
            failpoint("flush:after-commit");
        }
        expected = link.0;
    }
    // Every record is in the database: the spool is cleared, one file at
    // a time (a kill between leaves records a rerun finds stored).
    for (_, path, _) in &pending {
        spool::done(path)?;
    }
    remember_after(store, run);
    Ok(stored)
}

fn conflict(
    store: &PgStore,
    run: &str,
    expected: &Link,
    head: Option<&Link>,
    kind: Option<String>,
    path: &std::path::Path,
) -> Error {
    let now = match (head, kind) {
        (Some(h), Some(k)) => format!("its chain is at event {} (`{k}`)", h.n),
        (Some(h), None) => format!("its chain is at event {}", h.n),
        (None, _) => "it has no events there".into(),
    };
    Error::refused(
        Code::OfflineConflict,
        format!(
            "run {run} changed in {} while this machine worked on it offline",
            store.location()
        ),
        vec![
            format!(
                "the records made offline follow event {} ({}…); {now}",
                expected.n,
                &expected.hash[..expected.hash.len().min(12)]
            ),
            "another machine moved the run on: the records are not merged into its history silently".into(),
        ],
        format!(
            "they are kept in {}; see the run with `airlock show {run}` on a machine that reaches the database, then remove that directory to drop them (the worktree keeps its changes)",
            path.parent().unwrap_or(path).display()
        ),
    )
}
