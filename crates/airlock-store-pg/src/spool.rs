//! Working offline, the database's side (see `airlock_store::spool`): what
//! this machine remembers of the runs it works on, so that it can go on
//! with them when the database is out of reach, the flush of what it
//! recorded meanwhile, when it next connects, and the resolution of
//! records whose run moved on meanwhile (`airlock ledger spool --resolve`).
//!
//! The flush is idempotent: a trace is stored once (its stdout log's path
//! names it, `add_trace_in`), a change of state once (its event keeps the
//! record's hash under `offline`), so a flush killed halfway and run again
//! skips what it stored and goes on. Each record is checked under the lock
//! of its run's chain, so two processes flushing at once store it once.
//! Each run's records follow the chain head the machine knew when it went
//! offline: if the run's chain has moved on since by anything but these
//! records (another machine's event), the flush stops there and names the
//! run (`offline-conflict`): nothing is merged silently.

use postgres::Transaction;
use serde_json::{Value, json};

use airlock_ledger::Event;
use airlock_model::run::{Run, State};
use airlock_store::error::Code;
use airlock_store::spool::{self, Known, Link, Resolution, Resolved, Spooled};
use airlock_store::{Error, Result};

use crate::{PgStore, Statements, add_trace_in, append_in, database_error, to_json};

/// Remembers `run` and its chain head now, when its worktree is on this
/// machine (a run this machine works on). Best effort: failing only means
/// the run cannot go on offline.
pub(crate) fn remember(store: &PgStore, run: &Run) {
    if !run.worktree.is_dir() {
        return;
    }
    let Ok(rows) = store.query(
        "SELECT c.n, c.hash, (SELECT count(*) FROM traces t WHERE t.run = c.chain)
         FROM chains c WHERE c.chain = $1",
        &[&run.id],
    ) else {
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
        traces: u32::try_from(row.get::<_, i64>(2)).ok(),
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
/// (`offline-conflict`) and its records kept. One process of the machine
/// flushes at a time; the next finds what it stored.
pub(crate) fn flush(store: &PgStore) -> Result<usize> {
    if spool::runs(&store.paths)?.is_empty() {
        return Ok(0);
    }
    let _flushing = spool::lock(&store.paths)?;
    let mut stored = 0;
    for run in spool::runs(&store.paths)? {
        stored += flush_run(store, &run)?;
    }
    Ok(stored)
}

/// The chain's head, locked until the transaction ends.
fn lock_head(tx: &mut Transaction<'_>, run: &str) -> Result<Option<Link>> {
    Ok(tx
        .query_opt(
            "SELECT n, hash FROM chains WHERE chain = $1 FOR UPDATE",
            &[&run],
        )
        .map_err(database_error)?
        .map(|r| Link {
            n: r.get(0),
            hash: r.get(1),
        }))
}

/// Where `record` is in the run's chain when it was stored already: its
/// event's number and hash.
fn stored_as(tx: &mut Transaction<'_>, run: &str, record: &Spooled) -> Result<Option<Link>> {
    let row = match (&record.change, &record.trace) {
        (Some(_), _) => tx
            .query_opt(
                "SELECT n, hash FROM events
                 WHERE chain = $1 AND (data::jsonb)->'offline'->>'hash' = $2",
                &[&run, &record.hash],
            )
            .map_err(database_error)?,
        (None, Some(trace)) => {
            let log = trace.stdout.log.to_string_lossy().into_owned();
            tx.query_opt(
                "SELECT e.n, e.hash FROM traces t
                 JOIN events e ON e.run = t.run AND e.kind = 'exec'
                  AND (e.data::jsonb)->'stdout'->>'log' = t.log
                 WHERE t.run = $1 AND t.log = $2",
                &[&run, &log],
            )
            .map_err(database_error)?
        }
        (None, None) => None,
    };
    Ok(row.map(|r| Link {
        n: r.get(0),
        hash: r.get(1),
    }))
}

/// The evidence a record's event keeps of where it was made.
fn evidence(record: &Spooled) -> Value {
    json!({"hash": record.hash, "prev": record.prev, "at": record.at, "after": record.after})
}

/// Stores one record as it was made: a trace as the run's next trace, a
/// change of state as the run's transition.
fn apply(tx: &mut Transaction<'_>, st: &Statements, run: &str, record: &Spooled) -> Result<()> {
    if let Some(change) = &record.change {
        let changed = tx
            .execute(
                "UPDATE runs SET state = $1, data = $2 WHERE id = $3 AND state = $4",
                &[
                    &change.run.state.as_str(),
                    &to_json(&change.run),
                    &run,
                    &change.from.as_str(),
                ],
            )
            .map_err(database_error)?;
        if changed == 0 {
            return Err(Error::refused(
                Code::OfflineConflict,
                format!("run {run} is no longer {} in the database", change.from),
                vec![format!(
                    "the `{}` made offline moved it from {} to {}",
                    change.kind, change.from, change.run.state
                )],
                format!(
                    "see `airlock ledger spool` and resolve the run's records with `airlock ledger spool --resolve {run}`"
                ),
            ));
        }
        let mut data = change.data.clone();
        if let Value::Object(map) = &mut data {
            map.insert("from".into(), json!(change.from.as_str()));
            map.insert("to".into(), json!(change.run.state.as_str()));
            map.insert("offline".into(), evidence(record));
        }
        append_in(tx, st, Some(run), &change.kind, &data)?;
    } else if let Some(trace) = &record.trace {
        let mut trace = trace.clone();
        add_trace_in(tx, st, run, &mut trace)?;
    }
    Ok(())
}

fn flush_run(store: &PgStore, run: &str) -> Result<usize> {
    let pending = spool::pending(&store.paths, run)?;
    let Some((_, _, first)) = pending.first() else {
        return Ok(0);
    };
    spool::check_chain(&pending)?;
    let mut expected = first.after.clone();
    let mut stored = 0;
    for (_, path, record) in &pending {
        let (link, new) = store.in_transaction(false, |tx, st| {
            // The chain first: a process flushing the same records waits
            // here, then finds them stored.
            let head = lock_head(tx, run)?;
            // Stored already (a flush killed after its commit, or another
            // process's): its event is the link the next record follows.
            if let Some(link) = stored_as(tx, run, record)? {
                return Ok((link, false));
            }
            if head.as_ref() != Some(&expected) {
                let kind = head_kind(tx, run, head.as_ref())?;
                return Err(conflict(store, run, &expected, head.as_ref(), kind, path));
            }
            apply(tx, st, run, record)?;
            Ok((lock_head(tx, run)?.unwrap_or(expected.clone()), true))
        })?;
        if new {
            stored += 1;
            failpoint("flush:after-commit");
        }
        expected = link;
    }
    // Every record is in the database: the spool is cleared, one file at
    // a time (a kill between leaves records a rerun finds stored).
    for (_, path, _) in &pending {
        spool::done(path)?;
    }
    remember_after(store, run);
    Ok(stored)
}

fn head_kind(tx: &mut Transaction<'_>, run: &str, head: Option<&Link>) -> Result<Option<String>> {
    let Some(h) = head else {
        return Ok(None);
    };
    Ok(tx
        .query_opt(
            "SELECT kind FROM events WHERE chain = $1 AND n = $2",
            &[&run, &h.n],
        )
        .map_err(database_error)?
        .map(|r| r.get(0)))
}

fn conflict(
    store: &PgStore,
    run: &str,
    expected: &Link,
    head: Option<&Link>,
    kind: Option<String>,
    path: &std::path::Path,
) -> Error {
    Error::refused(
        Code::OfflineConflict,
        format!(
            "run {run} changed in {} while this machine worked on it offline",
            store.location()
        ),
        vec![
            format!(
                "the records made offline follow event {} ({}…); {}",
                expected.n,
                &expected.hash[..expected.hash.len().min(12)],
                where_now(head, kind.as_deref())
            ),
            "another machine moved the run on: the records are not merged into its history silently".into(),
        ],
        format!(
            "they are kept in {}; `airlock ledger spool` shows them; `airlock ledger spool --resolve {run} --append` adds them to the run as an offline branch, `airlock ledger spool --resolve {run} --discard --reason TEXT` sets them aside in a file the ledger names (the worktree keeps its changes either way)",
            path.parent().unwrap_or(path).display()
        ),
    )
}

fn where_now(head: Option<&Link>, kind: Option<&str>) -> String {
    match (head, kind) {
        (Some(h), Some(k)) => format!("its chain is at event {} (`{k}`)", h.n),
        (Some(h), None) => format!("its chain is at event {}", h.n),
        (None, _) => "it has no events there".into(),
    }
}

/// Whether `run`'s records would flush (None) or conflict (what the run's
/// chain is at now), read without changing anything.
pub(crate) fn standing(store: &PgStore, run: &str) -> Result<Option<String>> {
    let pending = spool::pending(&store.paths, run)?;
    let Some((_, _, first)) = pending.first() else {
        return Ok(None);
    };
    let mut expected = first.after.clone();
    let found = store.in_transaction(false, |tx, _| {
        for (_, _, record) in &pending {
            if let Some(link) = stored_as(tx, run, record)? {
                expected = link;
                continue;
            }
            let head = tx
                .query_opt("SELECT n, hash FROM chains WHERE chain = $1", &[&run])
                .map_err(database_error)?
                .map(|r| Link {
                    n: r.get(0),
                    hash: r.get(1),
                });
            if head.as_ref() == Some(&expected) {
                return Ok(None);
            }
            let kind = head_kind(tx, run, head.as_ref())?;
            return Ok(Some(format!(
                "the records follow event {}; {}",
                expected.n,
                where_now(head.as_ref(), kind.as_deref())
            )));
        }
        Ok(None)
    })?;
    Ok(found)
}

/// Resolves the records of `run` (`airlock ledger spool --resolve`): added
/// to the run as an offline branch (`offline-branch`: each record after the
/// run's head as it is now, their original hashes kept), or set aside into
/// a file the ledger names with the reason (`offline-discarded`). Records
/// that still follow the run's chain are flushed as usual by `--append`.
/// Nothing is dropped unrecorded; a resolution killed halfway and run again
/// finds its event and finishes.
pub(crate) fn resolve(store: &mut PgStore, run: &str, how: &Resolution) -> Result<Resolved> {
    let _flushing = spool::lock(&store.paths)?;
    let pending = spool::pending(&store.paths, run)?;
    let Some((_, first_path, first)) = pending.first() else {
        return Err(crate::problem(
            Code::InvalidInput,
            format!("this machine has no records of run {run} made offline"),
            vec![format!(
                "nothing is spooled in {}",
                spool::spool_dir(&store.paths, run).display()
            )],
            "`airlock ledger spool` lists the runs with records spooled",
        ));
    };
    spool::check_chain(&pending)?;
    let first_hash = if first.hash.is_empty() {
        // An older airlock's records: named by the first one's file.
        first_path.display().to_string()
    } else {
        first.hash.clone()
    };
    let mut resolved = Resolved {
        run: run.to_string(),
        how: String::new(),
        records: pending.len(),
        stored: 0,
        event: None,
        set_aside: None,
        sha256: None,
    };
    let kind = match how {
        Resolution::Append => "offline-branch",
        Resolution::Discard { .. } => "offline-discarded",
    };
    let resolved_before = !store
        .query(
            "SELECT 1 FROM events WHERE chain = $1 AND kind = $2 AND (data::jsonb)->>'first' = $3",
            &[&run, &kind, &first_hash],
        )?
        .is_empty();
    if matches!(how, Resolution::Append) && !resolved_before && standing(store, run)?.is_none() {
        resolved.stored = flush_run(store, run)?;
        resolved.how = "flushed".into();
        return Ok(resolved);
    }
    // Set aside first (a file nothing refers to yet), then the event.
    let mut aside = None;
    if let Resolution::Discard { .. } = how {
        let records: Vec<&Spooled> = pending.iter().map(|p| &p.2).collect();
        aside = Some(spool::set_aside(&store.paths, run, &first_hash, &records)?);
    }
    let event: Event = store.in_transaction(false, |tx, st| {
        let head = lock_head(tx, run)?;
        // Resolved already (a resolution killed before its spool was
        // cleared): finish it.
        if let Some(row) = tx
            .query_opt(
                &format!(
                    "SELECT {} FROM events WHERE chain = $1 AND kind = $2
                     AND (data::jsonb)->>'first' = $3",
                    crate::EVENT_COLUMNS
                ),
                &[&run, &kind, &first_hash],
            )
            .map_err(database_error)?
        {
            return crate::event_from_row(&row);
        }
        let state: Option<String> = tx
            .query_opt("SELECT state FROM runs WHERE id = $1 FOR UPDATE", &[&run])
            .map_err(database_error)?
            .map(|r| r.get(0));
        let state = state
            .as_deref()
            .and_then(State::parse)
            .ok_or_else(|| Error::UnknownRun(run.to_string()))?;
        let traced = airlock_store::TRACED.contains(&state);
        let head_then = head.as_ref().map(|h| json!({"n": h.n, "hash": h.hash}));
        let mut listed = Vec::new();
        for (_, _, record) in &pending {
            let mut entry = json!({
                "hash": record.hash, "prev": record.prev, "at": record.at,
                "kind": record.kind(),
            });
            if let Some(link) = stored_as(tx, run, record)? {
                entry["stored"] = json!(link.n);
            } else if let Resolution::Append = how {
                entry["stored"] = json!(branch(tx, st, run, record, traced)?);
            }
            if let Some(t) = &record.trace {
                entry["command"] = json!(t.argv);
            }
            listed.push(entry);
        }
        let mut data = json!({
            "first": first_hash,
            "after": first.after,
            "head": head_then,
            "state": state.as_str(),
            "records": listed,
        });
        if let (Resolution::Discard { reason }, Some((path, sha))) = (how, &aside) {
            data["reason"] = json!(reason);
            data["file"] = json!(path);
            data["sha256"] = json!(sha);
        }
        append_in(tx, st, Some(run), kind, &data)
    })?;
    resolved.stored = event.data["records"]
        .as_array()
        .map_or(0, |r| r.iter().filter(|e| e["stored"].is_number()).count());
    let event = airlock_store::Store::witness(store, &event).map(|()| event)?;
    failpoint("resolve:after-commit");
    resolved.event = Some(Link {
        n: event.seq as i64,
        hash: event.hash.clone(),
    });
    if let Some((path, sha)) = aside {
        resolved.set_aside = Some(path);
        resolved.sha256 = Some(sha);
    } else if let Some(file) = event.data["file"].as_str() {
        resolved.set_aside = Some(file.into());
        resolved.sha256 = event.data["sha256"].as_str().map(str::to_string);
    }
    resolved.how = match how {
        Resolution::Append => "appended",
        Resolution::Discard { .. } => "discarded",
    }
    .into();
    for (_, path, _) in &pending {
        spool::done(path)?;
    }
    remember_after(store, run);
    Ok(resolved)
}

/// One record on the offline branch: a trace becomes the run's next trace
/// while the run still runs commands; anything else (a trace of a run no
/// longer running commands, a change of state made on a history that moved
/// on) is kept as an `offline-KIND` event and changes nothing of the run.
/// Returns the number its event has in the run's chain.
fn branch(
    tx: &mut Transaction<'_>,
    st: &Statements,
    run: &str,
    record: &Spooled,
    traced: bool,
) -> Result<i64> {
    match (&record.trace, &record.change) {
        (Some(trace), None) if traced => {
            let mut trace = trace.clone();
            add_trace_in(tx, st, run, &mut trace)?;
        }
        _ => {
            let mut data = match (&record.change, &record.trace) {
                (Some(c), _) => {
                    json!({"data": c.data, "from": c.from.as_str(), "to": c.run.state.as_str()})
                }
                (None, Some(t)) => json!({"trace": t}),
                (None, None) => json!({}),
            };
            data["offline"] = evidence(record);
            append_in(
                tx,
                st,
                Some(run),
                &format!("offline-{}", record.kind()),
                &data,
            )?;
        }
    }
    Ok(lock_head(tx, run)?.map_or(0, |h| h.n))
}
