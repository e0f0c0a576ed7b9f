//! `pg-appends`: the PostgreSQL store's ledger appends with 8 writers, each
//! on its own run and its own connection, against plain INSERTs of rows of
//! the same size by 8 connections, one transaction each, on the same
//! private cluster (durable: fsync on). The writers share one machine's
//! state (its head record, as the agents one machine runs at once do);
//! beside it, the same with each writer a machine of its own.

use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use airlock_store::{Paths, Store};
use airlock_store_pg::PgStore;
use airlock_store_pg::testing::{Cluster, Database};
use anyhow::{Result, anyhow, ensure};
use serde_json::{Value, json};

use crate::env::say;
use crate::stats::{Comparison, Measure, Target};

pub struct Opts {
    pub writers: usize,
    pub events: usize,
    pub pairs: usize,
}

impl Default for Opts {
    fn default() -> Self {
        Opts {
            writers: 8,
            events: 250,
            pairs: 5,
        }
    }
}

/// What `exec` records, about 250 bytes of JSON.
fn data(i: usize) -> Value {
    json!({
        "n": i, "round": 1, "argv": ["cargo", "test", "--workspace"], "cwd": ".",
        "exit": 0, "duration_ms": 1000 + i % 977,
        "stdout": {"sha256": format!("{:064x}", i), "size": 4096 + i % 513},
        "files_changed": i % 7,
    })
}

fn run_record(id: &str) -> Result<airlock_model::run::Run> {
    Ok(serde_json::from_value(json!({
        "id": id, "state": "staged", "round": 1, "label": "bench", "class": "",
        "lane": "default", "brief_path": "b", "brief_digest": "d",
        "workflow_digest": "w", "base": "0", "branch": "b", "target": "main",
        "worktree": "/nowhere", "created": "2026-01-01T00:00:00.000Z",
        "check": null, "submission": null, "approval": null, "promotion": null,
    }))?)
}

/// `writers` threads, each with its store (its connection) on its own run,
/// appending `events` with `append`; the wall time from the common start to
/// the last. `one_machine`: the writers share a state and key directory
/// (so one head record), else each has its own.
fn appends(
    db: &Database,
    dir: &std::path::Path,
    opts: &Opts,
    tag: &str,
    one_machine: bool,
    append: fn(&mut PgStore, &str, usize) -> airlock_store::Result<()>,
) -> Result<Duration> {
    let barrier = Arc::new(Barrier::new(opts.writers + 1));
    let url = db.url();
    let elapsed = std::thread::scope(|scope| -> Result<Duration> {
        let mut handles = Vec::new();
        for w in 0..opts.writers {
            let (barrier, url) = (barrier.clone(), url.clone());
            let machine = if one_machine { 0 } else { w };
            let paths = Paths {
                state: dir.join(format!("m{machine}/state")),
                key_dir: dir.join(format!("m{machine}/keys")),
            };
            handles.push(scope.spawn(move || -> Result<()> {
                let id = format!("{tag}-{w}");
                let setup = (|| -> Result<PgStore> {
                    let mut store = PgStore::open(&url, &paths)?;
                    let (intent, _guard) = store.begin_intent("start", &id, json!({}))?;
                    store.insert(&run_record(&id)?, intent, json!({}))?;
                    Ok(store)
                })();
                // Every writer reaches the barrier, set up or not: one that
                // failed must not leave the others (and the clock) waiting.
                barrier.wait();
                let mut store = setup.map_err(|e| anyhow!("writer {w} ({id}): {e:#}"))?;
                for i in 0..opts.events {
                    append(&mut store, &id, i)?;
                }
                Ok(())
            }));
        }
        barrier.wait();
        let t = Instant::now();
        for h in handles {
            h.join().map_err(|_| anyhow!("a writer panicked"))??;
        }
        Ok(t.elapsed())
    })?;
    Ok(elapsed)
}

/// The same number of rows of the same size, by plain INSERTs.
fn inserts(db: &Database, opts: &Opts) -> Result<Duration> {
    let mut owner = postgres::Client::connect(&db.url(), postgres::NoTls)?;
    owner.batch_execute(
        "CREATE TABLE IF NOT EXISTS plain (id BIGSERIAL PRIMARY KEY, run TEXT NOT NULL,
             ts TEXT NOT NULL, kind TEXT NOT NULL, data TEXT NOT NULL, hash TEXT NOT NULL)",
    )?;
    let barrier = Arc::new(Barrier::new(opts.writers + 1));
    let url = db.url();
    std::thread::scope(|scope| -> Result<Duration> {
        let mut handles = Vec::new();
        for w in 0..opts.writers {
            let (barrier, url) = (barrier.clone(), url.clone());
            handles.push(scope.spawn(move || -> Result<()> {
                let setup = (|| -> Result<_> {
                    let mut client = postgres::Client::connect(&url, postgres::NoTls)?;
                    let insert = client.prepare(
                        "INSERT INTO plain (run, ts, kind, data, hash) VALUES ($1, $2, $3, $4, $5)",
                    )?;
                    Ok((client, insert))
                })();
                barrier.wait();
                let (mut client, insert) = setup?;
                let run = format!("bench-{w}");
                for i in 0..opts.events {
                    let text = serde_json::to_string(&data(i))?;
                    client.execute(
                        &insert,
                        &[
                            &run,
                            &airlock_model::run::now(),
                            &"note",
                            &text,
                            &format!("{:064x}", i),
                        ],
                    )?;
                }
                Ok(())
            }));
        }
        barrier.wait();
        let t = Instant::now();
        for h in handles {
            h.join().map_err(|_| anyhow!("a writer panicked"))??;
        }
        Ok(t.elapsed())
    })
}

fn full(store: &mut PgStore, run: &str, i: usize) -> airlock_store::Result<()> {
    store.event(Some(run), "note", data(i)).map(drop)
}

fn relaxed(store: &mut PgStore, run: &str, i: usize) -> airlock_store::Result<()> {
    store.record_event(run, "note", data(i)).map(drop)
}

pub fn bench(opts: &Opts, verbose: bool) -> Result<Vec<Comparison>> {
    say(verbose, "pg-appends: starting a private PostgreSQL cluster");
    let cluster = Arc::new(Cluster::start_with(true).map_err(|e| anyhow!(e))?);
    let total = (opts.writers * opts.events) as u64;
    let mut subject = Measure::new(format!(
        "PgStore::event x {} by {} writers of one machine (commit + its head record)",
        opts.events, opts.writers
    ));
    let mut machines = Measure::new(format!(
        "PgStore::event x {} by {} machines (commit + each one's head record)",
        opts.events, opts.writers
    ));
    let mut records = Measure::new(format!(
        "PgStore::record_event x {} by {} writers (traces' commits)",
        opts.events, opts.writers
    ));
    let mut baseline = Measure::new(format!(
        "plain INSERT x {} by {} connections",
        opts.events, opts.writers
    ));
    for round in 0..=opts.pairs {
        let dir = tempfile::Builder::new()
            .prefix("airlock-bench-pg-")
            .tempdir()?;
        let db = cluster.database();
        let state = dir.path();
        let a = appends(&db, &state.join("full"), opts, "full", true, full)?;
        let m = appends(&db, &state.join("machines"), opts, "machines", false, full)?;
        let c = appends(&db, &state.join("relaxed"), opts, "relaxed", true, relaxed)?;
        let b = inserts(&db, opts)?;
        let check = PgStore::open_unverified(
            &db.url(),
            &Paths {
                state: dir.path().join("check/state"),
                key_dir: dir.path().join("check/keys"),
            },
        )?;
        let report = check.verify_ledger()?;
        ensure!(
            report.is_ok() && report.events == 3 * (total + opts.writers as u64),
            "verify after round {round}: {report:?}"
        );
        say(
            verbose,
            &format!(
                "pg-appends: round {round}: {:.0} ms, {:.0} ms by machines, {:.0} ms relaxed, vs {:.0} ms",
                a.as_secs_f64() * 1e3,
                m.as_secs_f64() * 1e3,
                c.as_secs_f64() * 1e3,
                b.as_secs_f64() * 1e3
            ),
        );
        if round > 0 {
            subject.push(a);
            machines.push(m);
            records.push(c);
            baseline.push(b);
        }
    }
    let rate = |m: &Measure| total as f64 / m.median().as_secs_f64();
    let notes = vec![
        format!(
            "appends/s: {:.0} (event, one machine), {:.0} (event, a machine each), {:.0} (record_event); plain INSERTs/s: {:.0}",
            rate(&subject),
            rate(&machines),
            rate(&records),
            rate(&baseline)
        ),
        "each writer its own run and connection; one machine: one state and head record for all 8 (written for every event waiting at once); fsync on; verify passes after every round".into(),
    ];
    Ok(vec![Comparison {
        id: "pg-appends".into(),
        title: format!(
            "PostgreSQL store: {total} ledger appends by {} writers on different runs vs plain INSERTs",
            opts.writers
        ),
        subject,
        baseline,
        details: vec![machines, records],
        notes,
        target: Target::RateOver {
            items: total,
            per_second: 1000.0,
        },
    }])
}
