//! `metrics`: `airlock stats` over a store of N runs (issue 18: 100,000 runs
//! under 1 s). The store is seeded untimed through airlock-store itself: the
//! same `runs` rows, ledger events (`append_in`) and `run_steps` rows
//! (`history::note_step`) the store writes, in one transaction (the store's
//! own calls commit and sync each event). Baselines
//! on the same database, interleaved: a plain SQL count of the same events
//! by kind, and `ledger verify` of the whole ledger.

use crate::env::say;
use std::time::{Duration, Instant};

use airlock_core::stats::stats;
use airlock_core::store::history::{StepFilter, note_step};
use airlock_core::store::{Paths, SqliteStore, Store};
use airlock_ledger::append_in;
use airlock_ledger::rusqlite::{TransactionBehavior, params};
use anyhow::{Result, ensure};
use serde_json::json;

use crate::stats::{Comparison, Measure, Target};

pub struct Opts {
    pub runs: usize,
    pub rounds: usize,
}

impl Default for Opts {
    fn default() -> Self {
        Opts {
            runs: 100_000,
            rounds: 5,
        }
    }
}

const CLASSES: [&str; 5] = ["bugfix", "docs", "dependency-bump", "refactor", "feature"];

/// A run's record as the store keeps it (`Run`'s JSON, its check included).
fn run_json(id: &str, class: &str, state: &str, created: &str) -> String {
    json!({
        "id": id, "state": state, "round": 1, "label": "Fix the word count",
        "class": class, "lane": "governed",
        "brief_path": ".airlock/briefs/fix.toml", "brief_digest": format!("{:064x}", 7),
        "workflow_digest": format!("{:064x}", 9), "base": format!("{:040x}", 1),
        "branch": format!("airlock/{id}"), "target": "main",
        "worktree": format!("/repo/.airlock/local/runs/{id}/worktree"), "created": created,
        "check": {"round": 1, "tree": format!("{:040x}", 3), "report": {
            "round": 1, "passed": true, "tree": format!("{:040x}", 3),
            "gates": [{"name": "test", "command": "cargo test", "status": "passed",
                       "exit": "exit 0", "duration_ms": 1200, "trace": 2}],
            "stops": [{"name": "scope", "passed": true, "findings": [], "notes": []}]}},
        "submission": null, "approval": null, "promotion": null,
    })
    .to_string()
}

/// Seeds `runs` runs and their events: start, three commands, check (one in
/// seven stopped by a condition, then checked again), submit, then a
/// decision (most approved, one in ten redirected and resubmitted, one in
/// twenty rejected), promotion of the approved, one rollback in fifty.
/// Returns the number of events.
fn seed(store: &mut SqliteStore, runs: usize) -> Result<u64> {
    let tx = store
        .ledger
        .connection_mut()
        .transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut events = 0u64;
    {
        let mut ev = |run: &str, kind: &str, data: serde_json::Value| -> Result<()> {
            let event = append_in(&tx, Some(run), kind, &data)?;
            note_step(&tx, &event)?;
            events += 1;
            Ok(())
        };
        let mut insert = tx.prepare(
            "INSERT INTO runs (id, state, created, data, class) VALUES (?1, ?2, ?3, ?4, ?5)",
        )?;
        for i in 0..runs {
            let id = format!("fix-word-count-{i:05x}");
            let class = CLASSES[i % CLASSES.len()];
            let state = match i {
                _ if i % 20 == 0 => "rejected",
                _ if i % 50 == 1 => "rolled_back",
                _ => "promoted",
            };
            let created = format!(
                "2026-{:02}-{:02}T{:02}:00:00.000Z",
                1 + i % 12,
                1 + i % 28,
                i % 24
            );
            insert.execute(params![
                id,
                state,
                created,
                run_json(&id, class, state, &created),
                class
            ])?;
            ev(
                &id,
                "start",
                json!({"brief": ".airlock/briefs/fix.toml", "class": class, "lane": "governed"}),
            )?;
            for n in 0..3 {
                ev(
                    &id,
                    "exec",
                    json!({"n": n, "argv": ["cargo", "test"], "exit": 0, "duration_ms": 900 + n}),
                )?;
            }
            if i % 7 == 0 {
                ev(
                    &id,
                    "check",
                    json!({"passed": false, "tree": format!("{:040x}", i), "failure": "stop condition `scope`: README.md is outside touch"}),
                )?;
            }
            ev(
                &id,
                "check",
                json!({"passed": true, "tree": format!("{:040x}", i), "failure": null}),
            )?;
            ev(
                &id,
                "submit",
                json!({"round": 1, "head": format!("{:040x}", i), "digest": format!("{:064x}", i)}),
            )?;
            if i % 10 == 3 {
                ev(
                    &id,
                    "redirect",
                    json!({"reason": "add a test", "round": 2, "by": {"user": "rev"}}),
                )?;
                ev(
                    &id,
                    "check",
                    json!({"passed": true, "tree": format!("{:040x}", i), "failure": null}),
                )?;
                ev(
                    &id,
                    "submit",
                    json!({"round": 2, "head": format!("{:040x}", i), "digest": format!("{:064x}", i)}),
                )?;
            }
            if state == "rejected" {
                ev(
                    &id,
                    "reject",
                    json!({"reason": "not this way", "by": {"user": "rev"}}),
                )?;
                continue;
            }
            ev(
                &id,
                "approve",
                json!({"digest": format!("{:064x}", i), "reason": null, "by": {"user": "rev"}}),
            )?;
            ev(
                &id,
                "promote",
                json!({"merge": format!("{:040x}", i), "target": "main"}),
            )?;
            if state == "rolled_back" {
                ev(
                    &id,
                    "rollback",
                    json!({"revert": format!("{:040x}", i), "reason": "broke prod"}),
                )?;
            }
        }
    }
    tx.commit()?;
    Ok(events)
}

pub fn bench(
    opts: &Opts,
    verbose: bool,
    keep: &mut Vec<tempfile::TempDir>,
) -> Result<Vec<Comparison>> {
    let dir = tempfile::Builder::new()
        .prefix("airlock-bench-metrics-")
        .tempdir()?;
    let paths = Paths {
        state: dir.path().join("state"),
        key_dir: dir.path().join("keys"),
    };
    say(
        verbose,
        &format!("metrics: seeding {} runs untimed", opts.runs),
    );
    let events = seed(&mut SqliteStore::open_unverified(&paths)?, opts.runs)?;
    let size = std::fs::metadata(paths.db_path())?.len();

    let mut subject = Measure::new(format!("airlock stats, {} runs (store opened)", opts.runs));
    let mut one_class = Measure::new("airlock stats --class bugfix");
    let mut count = Measure::new(format!("SELECT kind, count(*) of {events} events"));
    let mut verify = Measure::new(format!("ledger verify, {events} events"));
    let mut open = Measure::new("of which: opening the store");
    let mut query = Measure::new("of which: the store's rows alone (for_each_step)");
    for i in 0..=opts.rounds {
        let t = Instant::now();
        let store = SqliteStore::open_unverified(&paths)?;
        let all = stats(&store, &StepFilter::default())?;
        let a = t.elapsed();
        drop(store);
        let t = Instant::now();
        let store = SqliteStore::open_unverified(&paths)?;
        let o = t.elapsed();
        let t = Instant::now();
        let mut rows = 0usize;
        store.for_each_step(&StepFilter::default(), &mut |_| rows += 1)?;
        let q = t.elapsed();
        ensure!(rows > opts.runs, "{rows} rows");
        ensure!(
            all.classes.iter().map(|c| c.runs).sum::<u64>() == opts.runs as u64,
            "stats counted {:?}",
            all.classes.iter().map(|c| c.runs).collect::<Vec<_>>()
        );
        let t = Instant::now();
        let one = stats(
            &store,
            &StepFilter {
                since: None,
                class: Some("bugfix".into()),
            },
        )?;
        let c = t.elapsed();
        ensure!(one.classes.len() == 1);
        let b = t_count(&paths)?;
        let t = Instant::now();
        let report = store.verify_ledger()?;
        let d = t.elapsed();
        ensure!(
            report.is_ok() && report.events == events,
            "verify: {report:?}"
        );
        if i > 0 {
            subject.push(a);
            one_class.push(c);
            count.push(b);
            verify.push(d);
            open.push(o);
            query.push(q);
        }
        say(
            verbose,
            &format!(
                "metrics: round {i}: stats {:.0} ms, count {:.0} ms",
                a.as_secs_f64() * 1e3,
                b.as_secs_f64() * 1e3
            ),
        );
    }
    keep.push(dir);
    Ok(vec![Comparison {
        id: "stats".into(),
        title: format!(
            "stats: every class's record over {} runs ({events} ledger events, {:.0} MB) vs a plain SQL count of the same events, {} interleaved rounds",
            opts.runs,
            size as f64 / 1e6,
            opts.rounds
        ),
        subject,
        baseline: count,
        details: vec![open, query, one_class, verify],
        notes: vec![],
        target: Target::MedianUnder(Duration::from_secs(1)),
    }])
}

/// The baseline: one SQL pass over the same events, counted by kind, on a
/// connection opened for it (as the subject opens the store).
fn t_count(paths: &Paths) -> Result<Duration> {
    let t = Instant::now();
    let conn = airlock_ledger::rusqlite::Connection::open(paths.db_path())?;
    let mut stmt = conn.prepare("SELECT kind, count(*) FROM events GROUP BY kind")?;
    let rows: Vec<(String, i64)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<std::result::Result<_, _>>()?;
    let took = t.elapsed();
    ensure!(!rows.is_empty());
    Ok(took)
}
