//! `review`: `airlock review` over a store of 10,000 runs (issue 20: under
//! 100 ms), on PostgreSQL (a private cluster) against the same on SQLite,
//! the embedded default, as the baseline, alternately in one run; beside
//! each, `Store::in_review` (the queue's query) in process.
//!
//! Each store holds one real run (start, check, submit through the binary)
//! and copies of it written into the store directly, untimed: `waiting` of
//! them in review (each with its own brief), the rest promoted, with their
//! rows, traces and ledger events (hash-chained, as the store writes them).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, ensure};
use serde_json::Value;

use airlock_core::layout::{Layout, sha256_hex};
use airlock_core::store::{SqliteStore, Store};
use airlock_ledger::rusqlite::{TransactionBehavior, params};
use airlock_store_pg::PgStore;
use airlock_store_pg::testing::Cluster;

use crate::env::{Env, make_repo, run, run_id, timed, write_brief};
use crate::stats::{Comparison, Measure, Target};

pub struct Opts {
    /// Runs in each store.
    pub runs: usize,
    /// Of which in review.
    pub waiting: usize,
    pub pairs: usize,
}

impl Default for Opts {
    fn default() -> Self {
        Opts {
            runs: 10_000,
            waiting: 100,
            pairs: 11,
        }
    }
}

const URL: &str = "AIRLOCK_DATABASE_URL";

fn workflow() -> String {
    "[gates.ok]\nrun = \"true\"\n\n[policy]\ntarget = \"main\"\n".to_string()
}

/// A repository with one submitted run, through the binary (`url`: on
/// PostgreSQL); its layout and the run's id.
fn submitted(env: &Env, name: &str, url: Option<&str>) -> Result<(Layout, String)> {
    let repo = env.path(name);
    make_repo(env, &repo, 1, 5, &workflow())?;
    let brief = env.path(&format!("{name}-brief.toml"));
    write_brief(&brief, "review bench", &["ok"])?;
    let airlock = |args: &[&str]| {
        let mut cmd = env.airlock(&repo, args);
        if let Some(url) = url {
            cmd.env(URL, url);
        }
        run(cmd)
    };
    let id = run_id(&airlock(&[
        "start",
        "--json",
        &brief.display().to_string(),
    ])?)?;
    let worktree = repo.join(".airlock/local/runs").join(&id).join("worktree");
    std::fs::write(worktree.join("src/change.txt"), "a change\n")?;
    airlock(&["exec", "--json", &id, "--", "true"])?;
    airlock(&["check", "--json", &id])?;
    airlock(&["submit", "--json", &id])?;
    let mut layout = Layout::discover(&repo)?;
    layout.key_dir = env.home.join(".config").join("airlock");
    Ok((layout, id))
}

/// Copy `i` of run `id`: its name, and its record (submitted at its own
/// time; promoted unless `waiting`; its brief's digest `brief`).
fn copy_of(original: &Value, id: &str, i: usize, waiting: bool, brief: &str) -> (String, Value) {
    let copy = format!("{id}-c{i:05}");
    let mut run = original.clone();
    run["id"] = Value::from(copy.clone());
    run["brief_digest"] = Value::from(brief);
    run["submission"]["at"] = Value::from(format!(
        "2026-01-01T{:02}:{:02}:{:02}.000Z",
        i / 3600 % 24,
        i / 60 % 60,
        i % 60
    ));
    if !waiting {
        run["state"] = Value::from("promoted");
    }
    (copy, run)
}

/// The waiting copies' briefs, each its own text (as separate briefs are),
/// where the queue reads them; their digests.
fn write_briefs(layout: &Layout, id: &str, copies: usize, waiting: usize) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(layout.run_dir(id).join("brief.toml"))?;
    let plain = sha256_hex(text.as_bytes());
    (0..copies)
        .map(|i| {
            if i >= waiting {
                return Ok(plain.clone());
            }
            let copy = format!("{id}-c{i:05}");
            let dir = layout.run_dir(&copy);
            std::fs::create_dir_all(&dir)?;
            let text = format!("{text}# the brief of {copy}\n");
            std::fs::write(dir.join("brief.toml"), &text)?;
            Ok(sha256_hex(text.as_bytes()))
        })
        .collect()
}

fn seed_sqlite(layout: &Layout, id: &str, copies: usize, waiting: usize) -> Result<()> {
    let briefs = write_briefs(layout, id, copies, waiting)?;
    let mut store = SqliteStore::open(&layout.store_paths())?;
    let tx = store
        .ledger
        .connection_mut()
        .transaction_with_behavior(TransactionBehavior::Immediate)?;
    let (data, created, class): (String, String, String) = tx.query_row(
        "SELECT data, created, class FROM runs WHERE id = ?1",
        params![id],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )?;
    let original: Value = serde_json::from_str(&data)?;
    let traces: Vec<(i64, String)> = {
        let mut q = tx.prepare("SELECT n, data FROM traces WHERE run = ?1")?;
        q.query_map(params![id], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<std::result::Result<_, _>>()?
    };
    let events: Vec<(String, String)> = {
        let mut q = tx.prepare("SELECT kind, data FROM events WHERE run = ?1 ORDER BY seq")?;
        q.query_map(params![id], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<std::result::Result<_, _>>()?
    };
    for (i, brief) in briefs.iter().enumerate() {
        let (copy, run) = copy_of(&original, id, i, i < waiting, brief);
        tx.execute(
            "INSERT INTO runs (id, state, created, data, class) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![copy, run["state"].as_str(), created, run.to_string(), class],
        )?;
        for (n, data) in &traces {
            tx.execute(
                "INSERT INTO traces (run, n, data) VALUES (?1, ?2, ?3)",
                params![copy, n, data],
            )?;
        }
        for (kind, data) in &events {
            let event =
                airlock_ledger::append_in(&tx, Some(&copy), kind, &serde_json::from_str(data)?)
                    .context("appending a copied event")?;
            airlock_core::store::history::note_step(&tx, &event)?;
        }
    }
    tx.commit()?;
    Ok(())
}

/// The same copies in PostgreSQL, a few statements of many rows each, with
/// each copy's events chained as the store chains them.
fn seed_pg(url: &str, layout: &Layout, id: &str, copies: usize, waiting: usize) -> Result<()> {
    let briefs = write_briefs(layout, id, copies, waiting)?;
    let mut client = postgres::Client::connect(url, postgres::NoTls)?;
    let mut tx = client.transaction()?;
    let row = tx.query_one(
        "SELECT data, created, class FROM runs WHERE id = $1",
        &[&id],
    )?;
    let (data, created, class): (String, String, String) = (row.get(0), row.get(1), row.get(2));
    let original: Value = serde_json::from_str(&data)?;
    let traces: Vec<(i32, String, String)> = tx
        .query("SELECT n, log, data FROM traces WHERE run = $1", &[&id])?
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    let events: Vec<(String, String, String)> = tx
        .query(
            "SELECT ts, kind, data FROM events WHERE run = $1 ORDER BY n",
            &[&id],
        )?
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    let count = (copies * events.len()) as i64;
    let last: i64 = tx
        .query_one(
            "SELECT setval('events_seq', nextval('events_seq') + $1 - 1)",
            &[&count],
        )?
        .get(0);
    let mut seq = last - count + 1;
    let (mut runs, mut states, mut datas) = (Vec::new(), Vec::new(), Vec::new());
    let (mut t_run, mut t_n, mut t_log, mut t_data) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut e: [Vec<String>; 6] = Default::default();
    let (mut e_seq, mut e_n) = (Vec::new(), Vec::new());
    let (mut c_chain, mut c_n, mut c_hash) = (Vec::new(), Vec::new(), Vec::new());
    for (i, brief) in briefs.iter().enumerate() {
        let (copy, run) = copy_of(&original, id, i, i < waiting, brief);
        states.push(run["state"].as_str().unwrap_or("promoted").to_string());
        datas.push(run.to_string());
        for (n, log, data) in &traces {
            t_run.push(copy.clone());
            t_n.push(*n);
            t_log.push(format!("{log}-{copy}"));
            t_data.push(data.clone());
        }
        let mut prev = airlock_ledger::GENESIS.to_string();
        for (n, (ts, kind, data)) in events.iter().enumerate() {
            let hash = airlock_ledger::hash_event(seq as u64, ts, Some(&copy), kind, data, &prev);
            e_seq.push(seq);
            e_n.push(n as i64 + 1);
            for (column, value) in e.iter_mut().zip([&copy, ts, kind, data, &prev, &hash]) {
                column.push(value.clone());
            }
            prev = hash;
            seq += 1;
        }
        c_chain.push(copy.clone());
        c_n.push(events.len() as i64);
        c_hash.push(prev);
        runs.push(copy);
    }
    tx.execute(
        "INSERT INTO runs (id, state, created, data, class)
         SELECT id, state, $4, data, $5 FROM unnest($1::text[], $2::text[], $3::text[]) AS c(id, state, data)",
        &[&runs, &states, &datas, &created, &class],
    )?;
    tx.execute(
        "INSERT INTO traces (run, n, log, data)
         SELECT * FROM unnest($1::text[], $2::int[], $3::text[], $4::text[])",
        &[&t_run, &t_n, &t_log, &t_data],
    )?;
    tx.execute(
        "INSERT INTO events (seq, chain, n, ts, run, kind, data, prev, hash)
         SELECT seq, run, n, ts, run, kind, data, prev, hash
         FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[])
             AS e(seq, n, run, ts, kind, data, prev, hash)",
        &[&e_seq, &e_n, &e[0], &e[1], &e[2], &e[3], &e[4], &e[5]],
    )?;
    tx.execute(
        "INSERT INTO chains (chain, n, hash) SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[])",
        &[&c_chain, &c_n, &c_hash],
    )?;
    tx.commit()?;
    client.batch_execute("ANALYZE")?;
    Ok(())
}

pub fn bench(airlock: &Path, opts: &Opts, verbose: bool) -> Result<Vec<Comparison>> {
    let env = Env::new(airlock, "review", verbose)?;
    let copies = opts.runs.saturating_sub(1);
    let waiting = opts.waiting.clamp(1, opts.runs) - 1;

    env.say("review: starting a private PostgreSQL cluster");
    let cluster = Arc::new(Cluster::start().map_err(|e| anyhow!(e))?);
    let db = cluster.database();
    let url = db.url();

    let (lite, lite_id) = submitted(&env, "sqlite", None)?;
    let (pg, pg_id) = submitted(&env, "postgres", Some(&url))?;
    env.say(&format!("review: seeding {} runs in each store", opts.runs));
    seed_sqlite(&lite, &lite_id, copies, waiting)?;
    seed_pg(&url, &pg, &pg_id, copies, waiting)?;

    let review = |layout: &Layout, url: Option<&str>| -> Result<(Duration, usize)> {
        let mut cmd = env.airlock(&layout.root, &["review", "--json"]);
        if let Some(url) = url {
            cmd.env(URL, url);
        }
        let (t, out) = timed(cmd)?;
        let doc: Value = serde_json::from_slice(&out.stdout)?;
        let shown = doc["queue"].as_array().map_or(0, Vec::len);
        Ok((t, shown))
    };
    let in_review = |store: &dyn Store| -> Result<(Duration, usize)> {
        let t = Instant::now();
        let queue = store.in_review(&airlock_core::decide::history_kinds())?;
        Ok((t.elapsed(), queue.len()))
    };
    let mut on_pg = Measure::new("airlock review, PostgreSQL");
    let mut on_sqlite = Measure::new("airlock review, SQLite");
    let mut pg_query = Measure::new("of which: Store::in_review, PostgreSQL (in process)");
    let mut sqlite_query = Measure::new("of which: Store::in_review, SQLite (in process)");
    let sqlite_store = SqliteStore::open(&lite.store_paths())?;
    let pg_store = PgStore::open(&url, &pg.store_paths())?;
    for round in 0..=opts.pairs {
        env.say(&format!("review: round {round}"));
        let (a, shown_pg) = review(&pg, Some(&url))?;
        let (b, shown_lite) = review(&lite, None)?;
        let (c, queued_pg) = in_review(&pg_store)?;
        let (d, queued_lite) = in_review(&sqlite_store)?;
        for shown in [shown_pg, shown_lite, queued_pg, queued_lite] {
            ensure!(
                shown == waiting + 1,
                "the queue shows {shown} runs, not {}",
                waiting + 1
            );
        }
        if round > 0 {
            on_pg.push(a);
            on_sqlite.push(b);
            pg_query.push(c);
            sqlite_query.push(d);
        }
    }
    let total: i64 = postgres::Client::connect(&url, postgres::NoTls)?
        .query_one("SELECT count(*) FROM runs", &[])?
        .get(0);
    ensure!(total as usize == opts.runs, "{total} runs in PostgreSQL");
    Ok(vec![Comparison {
        id: "review".into(),
        title: format!(
            "`airlock review` with {} runs in the store ({} in review), PostgreSQL vs SQLite",
            opts.runs,
            waiting + 1
        ),
        subject: on_pg,
        baseline: on_sqlite,
        details: vec![pg_query, sqlite_query],
        notes: vec![
            "one run submitted through the binary in each store, the rest copies written into it (the waiting ones each with its own brief; the others promoted)".into(),
            "the private cluster on 127.0.0.1 over TCP, fsync off (reads only are timed)".into(),
        ],
        target: Target::MedianUnder(Duration::from_millis(100)),
    }])
}
