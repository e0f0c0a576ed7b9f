//! `ledger`: airlock-ledger called directly. Appending N events in one
//! transaction and one at a time against raw rusqlite inserts of the same
//! rows (no hashing, no head lookup); verifying them against SHA-256 of the
//! same bytes alone.

use crate::env::say;
use std::path::Path;
use std::time::Instant;

use airlock_ledger::rusqlite::{Connection, TransactionBehavior, params};
use airlock_ledger::{Ledger, append_in};
use anyhow::{Result, ensure};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::stats::{Comparison, Measure, Target};

pub struct Opts {
    pub events: usize,
    pub pairs: usize,
    pub single: usize,
}

impl Default for Opts {
    fn default() -> Self {
        Opts {
            events: 100_000,
            pairs: 5,
            single: 1000,
        }
    }
}

/// One stored row, as the ledger wrote it.
struct Row {
    seq: i64,
    ts: String,
    run: Option<String>,
    kind: String,
    data: String,
    prev: String,
    hash: String,
}

/// A realistic event: what `exec` records, about 250 bytes of JSON.
fn event(i: usize) -> (Option<String>, &'static str, Value) {
    let run = (!i.is_multiple_of(10)).then(|| format!("fix-count-words-{:04x}", i % 97));
    let data = json!({
        "n": i, "round": 1, "argv": ["cargo", "test", "--workspace"], "cwd": ".",
        "exit": 0, "duration_ms": 1000 + i % 977,
        "stdout": {"sha256": format!("{:064x}", i), "size": 4096 + i % 513},
        "files_changed": i % 7,
    });
    (run, "run.exec", data)
}

fn append_all(ledger: &mut Ledger, n: usize) -> Result<()> {
    let tx = ledger
        .connection_mut()
        .transaction_with_behavior(TransactionBehavior::Immediate)?;
    for i in 0..n {
        let (run, kind, data) = event(i);
        append_in(&tx, run.as_deref(), kind, &data)?;
    }
    tx.commit()?;
    Ok(())
}

/// A plain SQLite database with the ledger's table, index and pragmas.
fn raw_db(path: &Path) -> Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(airlock_ledger::BUSY_TIMEOUT)?;
    let _: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
    conn.pragma_update(None, "foreign_keys", true)?;
    conn.execute_batch(
        "CREATE TABLE events (
             seq  INTEGER PRIMARY KEY CHECK (seq >= 1),
             ts   TEXT NOT NULL,
             run  TEXT,
             kind TEXT NOT NULL,
             data TEXT NOT NULL,
             prev TEXT NOT NULL,
             hash TEXT NOT NULL
         );
         CREATE INDEX events_by_run ON events (run, seq);",
    )?;
    Ok(conn)
}

const INSERT: &str =
    "INSERT INTO events (seq, ts, run, kind, data, prev, hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";

fn insert_row(conn: &Connection, r: &Row) -> Result<()> {
    conn.prepare_cached(INSERT)?
        .execute(params![r.seq, r.ts, r.run, r.kind, r.data, r.prev, r.hash])?;
    Ok(())
}

fn raw_insert_all(conn: &mut Connection, rows: &[Row]) -> Result<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    for r in rows {
        insert_row(&tx, r)?;
    }
    tx.commit()?;
    Ok(())
}

/// SHA-256 over each event's fields in the ledger's encoding, from memory:
/// the hashing a verify cannot avoid, without SQLite.
fn hash_all(rows: &[Row]) -> usize {
    fn field(h: &mut Sha256, b: &[u8]) {
        h.update((b.len() as u64).to_be_bytes());
        h.update(b);
    }
    let mut ok = 0;
    let mut out = [0u8; 64];
    for r in rows {
        let mut h = Sha256::new();
        h.update(b"airlock-ledger/v1\n");
        h.update((r.seq as u64).to_be_bytes());
        field(&mut h, r.ts.as_bytes());
        match &r.run {
            None => h.update([0u8]),
            Some(run) => {
                h.update([1u8]);
                field(&mut h, run.as_bytes());
            }
        }
        field(&mut h, r.kind.as_bytes());
        field(&mut h, r.data.as_bytes());
        field(&mut h, r.prev.as_bytes());
        hex::encode_to_slice(h.finalize(), &mut out).expect("64 bytes hold a hex sha256");
        ok += usize::from(out == r.hash.as_bytes());
    }
    ok
}

/// Every row read back through SQLite, columns borrowed, nothing hashed.
fn scan_all(conn: &Connection) -> Result<usize> {
    let mut stmt = conn
        .prepare_cached("SELECT seq, ts, run, kind, data, prev, hash FROM events ORDER BY seq")?;
    let mut rows = stmt.query([])?;
    let mut bytes = 0;
    while let Some(row) = rows.next()? {
        for i in 1..7 {
            if let Ok(b) = row.get_ref(i)?.as_bytes() {
                bytes += b.len();
            }
        }
    }
    Ok(bytes)
}

pub fn bench(
    opts: &Opts,
    verbose: bool,
    keep: &mut Vec<tempfile::TempDir>,
) -> Result<Vec<Comparison>> {
    let dir = tempfile::Builder::new()
        .prefix("airlock-bench-ledger-")
        .tempdir()?;
    let n = opts.events;

    // Untimed: a ledger of N events, whose rows every baseline reuses.
    say(verbose, &format!("ledger: writing {n} events untimed"));
    let mut reference = Ledger::open(&dir.path().join("reference.db"))?;
    append_all(&mut reference, n)?;
    let rows: Vec<Row> = reference
        .events(None)?
        .into_iter()
        .map(|e| Row {
            seq: e.seq as i64,
            ts: e.ts,
            run: e.run,
            kind: e.kind,
            data: serde_json::to_string(&e.data).expect("JSON values serialise"),
            prev: e.prev,
            hash: e.hash,
        })
        .collect();
    ensure!(
        rows.len() == n,
        "reference ledger holds {} events",
        rows.len()
    );
    let bytes: usize = rows
        .iter()
        .map(|r| r.ts.len() + r.run.as_ref().map_or(0, String::len) + r.kind.len() + r.data.len())
        .sum();

    // 1. Bulk append, one transaction, fresh files each time.
    let mut bulk = Measure::new(format!("Ledger: append_in x {n}, 1 tx"));
    let mut bulk_raw = Measure::new(format!("rusqlite INSERT x {n}, 1 tx"));
    for i in 0..=opts.pairs {
        let path = dir.path().join(format!("bulk-{i}.db"));
        let mut ledger = Ledger::open(&path)?;
        let t = Instant::now();
        append_all(&mut ledger, n)?;
        let a = t.elapsed();
        drop(ledger);

        let path = dir.path().join(format!("raw-{i}.db"));
        let mut conn = raw_db(&path)?;
        let t = Instant::now();
        raw_insert_all(&mut conn, &rows)?;
        let b = t.elapsed();
        drop(conn);
        if i > 0 {
            bulk.push(a);
            bulk_raw.push(b);
        }
        say(
            verbose,
            &format!(
                "ledger: bulk round {i}: {:.0} ms vs {:.0} ms",
                a.as_secs_f64() * 1e3,
                b.as_secs_f64() * 1e3
            ),
        );
        let _ = std::fs::remove_file(dir.path().join(format!("bulk-{i}.db")));
        let _ = std::fs::remove_file(path);
    }

    // 2. Verify N events vs hashing the same bytes alone; a raw scan too.
    let mut verify = Measure::new(format!("Ledger::verify, {n} events"));
    let mut hashing = Measure::new(format!("SHA-256 of the same bytes x {n}"));
    let mut scan = Measure::new(format!("SELECT scan of {n} rows, no hashing"));
    let raw = raw_db(&dir.path().join("scan.db"))?;
    {
        let mut raw = raw;
        raw_insert_all(&mut raw, &rows)?;
        for i in 0..=opts.pairs * 2 {
            let t = Instant::now();
            let report = reference.verify()?;
            let a = t.elapsed();
            ensure!(
                report.is_ok() && report.events == n as u64,
                "verify: {report:?}"
            );
            let t = Instant::now();
            let good = hash_all(&rows);
            let b = t.elapsed();
            ensure!(good == n, "hashing reproduced {good} of {n} hashes");
            let t = Instant::now();
            let read = scan_all(&raw)?;
            let c = t.elapsed();
            ensure!(read > 0);
            if i > 0 {
                verify.push(a);
                hashing.push(b);
                scan.push(c);
            }
        }
    }

    // 3. One event per transaction: latency of each.
    let sync_mode: i64;
    let mut single = Measure::new("Ledger::append, own tx");
    let mut single_raw = Measure::new("rusqlite INSERT, own tx");
    {
        let mut ledger = Ledger::open(&dir.path().join("single.db"))?;
        let mut conn = raw_db(&dir.path().join("single-raw.db"))?;
        sync_mode = ledger
            .connection()
            .query_row("PRAGMA synchronous", [], |r| r.get(0))?;
        for i in 0..opts.single + 10 {
            let (run, kind, data) = event(i);
            let t = Instant::now();
            ledger.append(run.as_deref(), kind, &data)?;
            let a = t.elapsed();
            let t = Instant::now();
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            insert_row(&tx, &rows[i % rows.len()])?;
            tx.commit()?;
            let b = t.elapsed();
            if i >= 10 {
                single.push(a);
                single_raw.push(b);
            }
        }
    }

    drop(reference);
    keep.push(dir);
    let per = |m: &Measure| m.median().as_secs_f64() / n as f64;
    Ok(vec![
        Comparison {
            id: "ledger-append".into(),
            title: format!(
                "ledger append: {n} events in one transaction vs raw inserts of the same rows, {} interleaved pairs",
                opts.pairs
            ),
            notes: vec![format!(
                "{:.0} events/s ({:.2} µs/event) vs raw {:.0} rows/s; {:.0} bytes of fields per event",
                1.0 / per(&bulk),
                per(&bulk) * 1e6,
                1.0 / per(&bulk_raw),
                bytes as f64 / n as f64
            )],
            subject: bulk,
            baseline: bulk_raw,
            details: vec![],
            target: Target::None,
        },
        Comparison {
            id: "ledger-verify".into(),
            title: format!(
                "ledger verify: {n} events vs SHA-256 of the same bytes alone, {} interleaved rounds",
                opts.pairs * 2
            ),
            subject: verify,
            baseline: hashing,
            details: vec![scan],
            notes: vec![],
            target: Target::RateOver {
                items: n as u64,
                per_second: 100_000.0,
            },
        },
        Comparison {
            id: "ledger-append-one".into(),
            title: format!(
                "ledger single append: one event per transaction vs a raw insert per transaction, {} interleaved pairs",
                opts.single
            ),
            subject: single,
            baseline: single_raw,
            details: vec![],
            notes: vec![format!(
                "both databases in WAL mode, PRAGMA synchronous = {sync_mode} ({}), so each commit waits for the disk",
                ["OFF", "NORMAL", "FULL", "EXTRA"]
                    .get(sync_mode as usize)
                    .unwrap_or(&"?")
            )],
            target: Target::None,
        },
    ])
}
