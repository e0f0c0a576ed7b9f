use std::path::{Path, PathBuf};

use airlock_ledger::rusqlite::{self, Connection, TransactionBehavior};
use airlock_ledger::{APPEND_ONLY_MESSAGE, GENESIS, Ledger, LedgerError, append_in, hash_event};
use serde_json::json;

fn temp_ledger(n: u64) -> (tempfile::TempDir, PathBuf, Ledger) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.db");
    let mut ledger = Ledger::open(&path).unwrap();
    for i in 1..=n {
        let run = if i % 2 == 0 {
            Some("run-a")
        } else {
            Some("run-b")
        };
        ledger
            .append(run, "test.event", &json!({ "i": i, "note": "x" }))
            .unwrap();
    }
    (dir, path, ledger)
}

/// What an attacker with file access does first.
fn raw_without_triggers(path: &Path) -> Connection {
    let conn = Connection::open(path).unwrap();
    conn.execute_batch("DROP TRIGGER events_no_update; DROP TRIGGER events_no_delete;")
        .unwrap();
    conn
}

fn first_bad(path: &Path) -> (u64, String) {
    let report = Ledger::open(path).unwrap().verify().unwrap();
    let bad = report.first_bad.expect("verify should report tampering");
    (bad.seq, bad.problem)
}

#[test]
fn append_builds_a_chain_and_reads_back() {
    let (_dir, _path, ledger) = temp_ledger(5);
    let all = ledger.events(None).unwrap();
    assert_eq!(all.len(), 5);
    assert_eq!(all[0].prev, GENESIS);
    for (i, e) in all.iter().enumerate() {
        assert_eq!(e.seq, i as u64 + 1);
        assert_eq!(e.kind, "test.event");
        assert_eq!(e.data, json!({ "i": i + 1, "note": "x" }));
        assert_eq!(e.computed_hash(), e.hash);
        if i > 0 {
            assert_eq!(e.prev, all[i - 1].hash);
        }
    }
    assert_eq!(ledger.head().unwrap(), Some((5, all[4].hash.clone())));
    assert!(ledger.contains(3, &all[2].hash).unwrap());
    assert!(!ledger.contains(3, &all[3].hash).unwrap());
    assert!(!ledger.contains(99, &all[3].hash).unwrap());
    assert!(!ledger.contains(u64::MAX, &all[3].hash).unwrap());

    let a = ledger.events(Some("run-a")).unwrap();
    assert_eq!(a.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![2, 4]);
    assert!(ledger.events(Some("nope")).unwrap().is_empty());
}

#[test]
fn append_returns_what_is_stored() {
    let (_dir, _path, mut ledger) = temp_ledger(0);
    let e = ledger
        .append(None, "k", &json!({"b": [1, 2.5, null], "a": "é\u{0}"}))
        .unwrap();
    assert_eq!(ledger.events(None).unwrap(), vec![e.clone()]);
    assert_eq!(e.run, None);
    assert!(ledger.verify().unwrap().is_ok());
}

#[test]
fn empty_ledger_verifies() {
    let (_dir, _path, ledger) = temp_ledger(0);
    assert_eq!(ledger.head().unwrap(), None);
    let r = ledger.verify().unwrap();
    assert_eq!(r.events, 0);
    assert_eq!(r.head, None);
    assert!(r.first_bad.is_none());
}

#[test]
fn reopen_continues_the_chain() {
    let (_dir, path, ledger) = temp_ledger(3);
    let (_, h3) = ledger.head().unwrap().unwrap();
    drop(ledger);
    let mut ledger = Ledger::open(&path).unwrap();
    let e4 = ledger.append(None, "again", &json!(null)).unwrap();
    assert_eq!(e4.seq, 4);
    assert_eq!(e4.prev, h3);
    let r = ledger.verify().unwrap();
    assert_eq!(r.events, 4);
    assert_eq!(r.head, Some(e4.hash));
    assert!(r.is_ok());
}

#[test]
fn empty_kind_is_refused() {
    let (_dir, _path, mut ledger) = temp_ledger(0);
    let err = ledger.append(None, " ", &json!({})).unwrap_err();
    assert!(matches!(err, LedgerError::InvalidEvent(_)), "{err}");
    assert_eq!(ledger.head().unwrap(), None);
}

#[test]
fn update_is_refused_by_trigger() {
    let (_dir, path, _ledger) = temp_ledger(3);
    let conn = Connection::open(&path).unwrap();
    let err = conn
        .execute("UPDATE events SET data = '{}' WHERE seq = 2", [])
        .unwrap_err();
    assert!(err.to_string().contains(APPEND_ONLY_MESSAGE), "{err}");
    assert_eq!(APPEND_ONLY_MESSAGE, "airlock ledger is append-only");
}

#[test]
fn delete_is_refused_by_trigger() {
    let (_dir, path, ledger) = temp_ledger(3);
    let conn = Connection::open(&path).unwrap();
    let err = conn
        .execute("DELETE FROM events WHERE seq = 2", [])
        .unwrap_err();
    assert!(err.to_string().contains(APPEND_ONLY_MESSAGE), "{err}");
    let err = conn.execute("DELETE FROM events", []).unwrap_err();
    assert!(err.to_string().contains(APPEND_ONLY_MESSAGE), "{err}");
    assert_eq!(ledger.events(None).unwrap().len(), 3);
}

#[test]
fn attack_edit_one_events_data() {
    let (_dir, path, _ledger) = temp_ledger(10);
    raw_without_triggers(&path)
        .execute(
            "UPDATE events SET data = '{\"i\":7,\"note\":\"y\"}' WHERE seq = 7",
            [],
        )
        .unwrap();
    let (seq, problem) = first_bad(&path);
    assert_eq!(seq, 7);
    assert!(
        problem.starts_with("event 7: stored hash does not match its contents (edited?)"),
        "{problem}"
    );
}

#[test]
fn attack_edit_other_columns() {
    for (col, value) in [
        ("ts", "'2000-01-01T00:00:00.000Z'"),
        ("run", "NULL"),
        ("kind", "'x'"),
    ] {
        let (_dir, path, _ledger) = temp_ledger(5);
        raw_without_triggers(&path)
            .execute(
                &format!("UPDATE events SET {col} = {value} WHERE seq = 3"),
                [],
            )
            .unwrap();
        let (seq, problem) = first_bad(&path);
        assert_eq!(seq, 3, "{col}: {problem}");
        assert!(
            problem.contains("does not match its contents"),
            "{col}: {problem}"
        );
    }
}

#[test]
fn attack_delete_middle_event() {
    let (_dir, path, _ledger) = temp_ledger(10);
    raw_without_triggers(&path)
        .execute("DELETE FROM events WHERE seq = 5", [])
        .unwrap();
    let (seq, problem) = first_bad(&path);
    assert_eq!(seq, 5);
    assert!(problem.starts_with("event 5 is missing"), "{problem}");
}

#[test]
fn attack_delete_range_of_events() {
    let (_dir, path, _ledger) = temp_ledger(20);
    raw_without_triggers(&path)
        .execute("DELETE FROM events WHERE seq BETWEEN 10 AND 12", [])
        .unwrap();
    let (seq, problem) = first_bad(&path);
    assert_eq!(seq, 10);
    assert!(
        problem.starts_with("events 10..12 are missing"),
        "{problem}"
    );
}

#[test]
fn attack_delete_first_event() {
    let (_dir, path, _ledger) = temp_ledger(3);
    raw_without_triggers(&path)
        .execute("DELETE FROM events WHERE seq = 1", [])
        .unwrap();
    let (seq, problem) = first_bad(&path);
    assert_eq!(seq, 1);
    assert!(problem.starts_with("event 1 is missing"), "{problem}");
}

#[test]
fn attack_delete_and_renumber() {
    // Remove event 5 and shift 6..10 down so there is no gap.
    let (_dir, path, _ledger) = temp_ledger(10);
    let conn = raw_without_triggers(&path);
    conn.execute("DELETE FROM events WHERE seq = 5", [])
        .unwrap();
    for s in 6..=10 {
        conn.execute("UPDATE events SET seq = seq - 1 WHERE seq = ?1", [s])
            .unwrap();
    }
    let (seq, problem) = first_bad(&path);
    assert_eq!(seq, 5);
    assert!(problem.contains("previous-hash link broken"), "{problem}");
}

#[test]
fn attack_swap_two_events() {
    let (_dir, path, _ledger) = temp_ledger(10);
    let conn = raw_without_triggers(&path);
    conn.execute_batch(
        "UPDATE events SET seq = 1000 WHERE seq = 4;
         UPDATE events SET seq = 4 WHERE seq = 6;
         UPDATE events SET seq = 6 WHERE seq = 1000;",
    )
    .unwrap();
    let (seq, problem) = first_bad(&path);
    assert_eq!(seq, 4);
    assert!(
        problem.starts_with("event 4: previous-hash link broken: expected "),
        "{problem}"
    );
    assert!(
        problem.ends_with("(an event was removed or reordered)"),
        "{problem}"
    );
}

#[test]
fn attack_edit_and_recompute_hash_breaks_next_link() {
    let (_dir, path, ledger) = temp_ledger(10);
    let e = &ledger.events(None).unwrap()[6]; // seq 7
    let forged_data = r#"{"i":7,"note":"forged"}"#;
    let forged = hash_event(
        e.seq,
        &e.ts,
        e.run.as_deref(),
        &e.kind,
        forged_data,
        &e.prev,
    );
    raw_without_triggers(&path)
        .execute(
            "UPDATE events SET data = ?1, hash = ?2 WHERE seq = 7",
            [forged_data, forged.as_str()],
        )
        .unwrap();
    let (seq, problem) = first_bad(&path);
    assert_eq!(seq, 8);
    assert!(
        problem.starts_with(&format!(
            "event 8: previous-hash link broken: expected {forged}"
        )),
        "{problem}"
    );
}

#[test]
fn attack_genesis_link() {
    let (_dir, path, ledger) = temp_ledger(3);
    let e = &ledger.events(None).unwrap()[0];
    let fake_prev = "f".repeat(64);
    let h = hash_event(
        1,
        &e.ts,
        e.run.as_deref(),
        &e.kind,
        r#"{"i":1,"note":"x"}"#,
        &fake_prev,
    );
    raw_without_triggers(&path)
        .execute(
            "UPDATE events SET prev = ?1, hash = ?2 WHERE seq = 1",
            [fake_prev.as_str(), h.as_str()],
        )
        .unwrap();
    let (seq, problem) = first_bad(&path);
    assert_eq!(seq, 1);
    assert!(problem.contains("previous-hash link broken"), "{problem}");
}

#[test]
fn attack_wrong_column_type_is_reported_not_an_error() {
    let (_dir, path, ledger) = temp_ledger(4);
    raw_without_triggers(&path)
        .execute("UPDATE events SET data = x'00ff' WHERE seq = 2", [])
        .unwrap();
    let (seq, problem) = first_bad(&path);
    assert_eq!(seq, 2);
    assert!(problem.contains("column data is a blob"), "{problem}");
    // Reading events gives a typed error, not a panic.
    let err = ledger.events(None).unwrap_err();
    assert!(matches!(err, LedgerError::Corrupt { seq: 2, .. }), "{err}");
}

#[test]
fn invalid_json_data_is_a_corrupt_error_on_read() {
    let (_dir, path, ledger) = temp_ledger(2);
    raw_without_triggers(&path)
        .execute("UPDATE events SET data = '{not json' WHERE seq = 2", [])
        .unwrap();
    let err = ledger.events(None).unwrap_err();
    assert!(matches!(err, LedgerError::Corrupt { seq: 2, .. }), "{err}");
    assert!(err.to_string().contains("airlock ledger verify"), "{err}");
}

#[test]
fn tail_truncation_is_invisible_without_an_anchor() {
    let (_dir, path, ledger) = temp_ledger(5);
    let (seq, hash) = ledger.head().unwrap().unwrap();
    raw_without_triggers(&path)
        .execute("DELETE FROM events WHERE seq = 5", [])
        .unwrap();
    let report = Ledger::open(&path).unwrap().verify().unwrap();
    assert!(report.is_ok(), "the chain itself is still consistent");
    assert_eq!(report.events, 4);
    // The anchored head is what catches it.
    assert!(!ledger.contains(seq, &hash).unwrap());
    assert_ne!(report.head, Some(hash));
}

#[test]
fn append_in_commits_with_callers_state() {
    let (_dir, _path, mut ledger) = temp_ledger(1);
    {
        let tx = ledger
            .connection_mut()
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .unwrap();
        tx.execute("CREATE TABLE runs (id TEXT PRIMARY KEY)", [])
            .unwrap();
        tx.execute("INSERT INTO runs VALUES ('r1')", []).unwrap();
        let a = append_in(&tx, Some("r1"), "run.created", &json!({})).unwrap();
        let b = append_in(&tx, Some("r1"), "run.started", &json!({})).unwrap();
        assert_eq!((a.seq, b.seq), (2, 3));
        assert_eq!(b.prev, a.hash);
        tx.commit().unwrap();
    }
    {
        let tx = ledger
            .connection_mut()
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .unwrap();
        tx.execute("INSERT INTO runs VALUES ('r2')", []).unwrap();
        append_in(&tx, Some("r2"), "run.created", &json!({})).unwrap();
        tx.rollback().unwrap();
    }
    let n: i64 = ledger
        .connection()
        .query_row("SELECT count(*) FROM runs", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 1);
    assert_eq!(ledger.head().unwrap().unwrap().0, 3);
    assert!(ledger.events(Some("r2")).unwrap().is_empty());
    assert!(ledger.verify().unwrap().is_ok());
}

#[test]
fn verify_inside_callers_transaction() {
    let (_dir, _path, mut ledger) = temp_ledger(2);
    let tx = ledger
        .connection_mut()
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .unwrap();
    append_in(&tx, None, "k", &json!(1)).unwrap();
    tx.commit().unwrap();
    ledger.connection().execute_batch("BEGIN").unwrap();
    let r = ledger.verify().unwrap();
    ledger.connection().execute_batch("COMMIT").unwrap();
    assert_eq!(r.events, 3);
    assert!(r.is_ok());
}

#[test]
fn concurrent_appends_from_two_connections() {
    let (_dir, path, ledger) = temp_ledger(0);
    drop(ledger);
    const PER_THREAD: u64 = 100;
    let handles: Vec<_> = ["t1", "t2"]
        .into_iter()
        .map(|name| {
            let path = path.clone();
            std::thread::spawn(move || {
                let mut ledger = Ledger::open(&path).unwrap();
                for i in 0..PER_THREAD {
                    if i % 2 == 0 {
                        ledger
                            .append(Some(name), "tick", &json!({ "i": i }))
                            .unwrap();
                    } else {
                        let tx = ledger
                            .connection_mut()
                            .transaction_with_behavior(TransactionBehavior::Immediate)
                            .unwrap();
                        append_in(&tx, Some(name), "tick", &json!({ "i": i })).unwrap();
                        tx.commit().unwrap();
                    }
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let ledger = Ledger::open(&path).unwrap();
    let events = ledger.events(None).unwrap();
    assert_eq!(events.len() as u64, 2 * PER_THREAD);
    let seqs: Vec<u64> = events.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (1..=2 * PER_THREAD).collect::<Vec<_>>());
    assert_eq!(ledger.events(Some("t1")).unwrap().len() as u64, PER_THREAD);
    let r = ledger.verify().unwrap();
    assert!(r.first_bad.is_none(), "{:?}", r.first_bad);
    assert_eq!(r.events, 2 * PER_THREAD);
}

#[test]
fn open_text_file_is_not_a_ledger() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.db");
    std::fs::write(
        &path,
        "this is not a database, it is a text file with some bytes in it.\n".repeat(20),
    )
    .unwrap();
    let err = Ledger::open(&path).unwrap_err();
    assert!(matches!(err, LedgerError::NotALedger { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("is not an airlock ledger"), "{msg}");
    assert!(msg.contains("move it aside or set AIRLOCK_HOME"), "{msg}");
    assert!(msg.contains("ledger.db"), "{msg}");
}

#[test]
fn open_garbage_with_sqlite_header_is_not_a_ledger() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.db");
    let mut bytes = b"SQLite format 3\0".to_vec();
    bytes.extend(std::iter::repeat_n(0xAB, 4096));
    std::fs::write(&path, bytes).unwrap();
    let err = Ledger::open(&path).unwrap_err();
    assert!(matches!(err, LedgerError::NotALedger { .. }), "{err:?}");
}

#[test]
fn open_foreign_sqlite_database_is_not_a_ledger() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("other.db");
    Connection::open(&path)
        .unwrap()
        .execute_batch("CREATE TABLE events (id INTEGER PRIMARY KEY, name TEXT)")
        .unwrap();
    let err = Ledger::open(&path).unwrap_err();
    assert!(matches!(err, LedgerError::NotALedger { .. }), "{err:?}");
    assert!(err.to_string().contains("`events` table"), "{err}");
    // Nothing was added to the foreign database.
    let n: i64 = Connection::open(&path)
        .unwrap()
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE name = 'ledger_meta'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(n, 0);
}

#[test]
fn open_newer_schema_is_refused() {
    let (_dir, path, ledger) = temp_ledger(1);
    drop(ledger);
    Connection::open(&path)
        .unwrap()
        .execute(
            "UPDATE ledger_meta SET value = '99' WHERE key = 'schema_version'",
            [],
        )
        .unwrap();
    let err = Ledger::open(&path).unwrap_err();
    assert!(matches!(err, LedgerError::NewerSchema { .. }), "{err:?}");
    assert!(err.to_string().contains("upgrade airlock"), "{err}");
}

#[test]
fn open_in_missing_directory_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("no/such/dir/ledger.db");
    let err = Ledger::open(&path).unwrap_err();
    assert!(matches!(err, LedgerError::Open { .. }), "{err:?}");
    assert!(err.to_string().contains("directory exists"), "{err}");
}

#[test]
fn open_sets_wal_busy_timeout_and_foreign_keys() {
    let (_dir, _path, ledger) = temp_ledger(0);
    let c = ledger.connection();
    let mode: String = c
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    let fk: i64 = c
        .query_row("PRAGMA foreign_keys", [], |r| r.get(0))
        .unwrap();
    assert_eq!(fk, 1);
    let busy: i64 = c
        .query_row("PRAGMA busy_timeout", [], |r| r.get(0))
        .unwrap();
    assert_eq!(busy, 10_000);
}

#[test]
fn hash_encoding_is_unambiguous() {
    let base = hash_event(1, "t", Some("r"), "ab", "c", GENESIS);
    assert_ne!(base, hash_event(1, "t", Some("r"), "a", "bc", GENESIS));
    assert_ne!(base, hash_event(1, "tr", None, "ab", "c", GENESIS));
    assert_ne!(base, hash_event(2, "t", Some("r"), "ab", "c", GENESIS));
    assert_ne!(
        hash_event(1, "t", None, "k", "d", GENESIS),
        hash_event(1, "t", Some(""), "k", "d", GENESIS)
    );
    assert_ne!(
        hash_event(1, "", Some("x"), "k", "d", GENESIS),
        hash_event(1, "x", Some(""), "k", "d", GENESIS)
    );
}

#[test]
fn errors_are_std_errors() {
    fn is_error<E: std::error::Error + Send + Sync + 'static>() {}
    is_error::<LedgerError>();
    let _ = rusqlite::Error::QueryReturnedNoRows;
}

/// Throughput check; never asserts a duration. Run with:
/// `cargo test --release -p airlock-ledger --test ledger -- --ignored --nocapture verify_throughput`
#[test]
#[ignore]
fn verify_throughput_100k() {
    let (_dir, _path, mut ledger) = temp_ledger(0);
    let n = 100_000u64;
    let tx = ledger
        .connection_mut()
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .unwrap();
    let t = std::time::Instant::now();
    for i in 0..n {
        append_in(
            &tx,
            Some("run-0123456789"),
            "command.traced",
            &json!({ "i": i, "argv": ["cargo", "test"], "exit": 0, "digest": GENESIS }),
        )
        .unwrap();
    }
    tx.commit().unwrap();
    let append = t.elapsed();
    let t = std::time::Instant::now();
    let report = ledger.verify().unwrap();
    let verify = t.elapsed();
    assert!(report.is_ok());
    assert_eq!(report.events, n);
    println!(
        "append_in: {n} events in {append:?} ({:.0}/s); verify: {verify:?} ({:.0} events/s)",
        n as f64 / append.as_secs_f64(),
        n as f64 / verify.as_secs_f64()
    );
}

/// Appends event `i` with 2 KB of data, so that a few fill the log.
fn append_padded(ledger: &mut Ledger, i: u64) {
    ledger
        .append(
            Some("run"),
            "exec",
            &json!({ "i": i, "pad": "x".repeat(2000) }),
        )
        .unwrap();
}

#[test]
fn the_write_ahead_log_stays_short_across_processes_that_each_write_once() {
    // airlock opens the ledger once per command and appends once: without
    // care the log would only grow, and every open reads it whole.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.db");
    let wal = dir.path().join("ledger.db-wal");
    let mut largest = 0;
    for i in 0..300u64 {
        let mut ledger = Ledger::open(&path).unwrap();
        append_padded(&mut ledger, i);
        drop(ledger);
        largest = largest.max(std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0));
    }
    // 64 frames and what the last command added.
    assert!(
        largest < 80 * (4096 + 24),
        "the log reached {largest} bytes"
    );
    let report = Ledger::open(&path).unwrap().verify().unwrap();
    assert_eq!(report.events, 300);
}

#[test]
fn closing_does_not_wait_for_a_reader_to_shorten_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.db");
    let mut ledger = Ledger::open(&path).unwrap();
    for i in 0..100u64 {
        append_padded(&mut ledger, i);
    }
    // Another process in the middle of a read: the log cannot be emptied.
    let reader = Connection::open(&path).unwrap();
    reader.execute_batch("BEGIN").unwrap();
    let _: i64 = reader
        .query_row("SELECT count(*) FROM events", [], |r| r.get(0))
        .unwrap();
    let started = std::time::Instant::now();
    drop(ledger);
    // Not a timing target: only that closing did not sit out the 10 s busy
    // timeout waiting for the reader.
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    reader.execute_batch("COMMIT").unwrap();
    let report = Ledger::open(&path).unwrap().verify().unwrap();
    assert_eq!(report.events, 100);
}

fn synchronous(ledger: &Ledger) -> i64 {
    ledger
        .connection()
        .query_row("PRAGMA synchronous", [], |r| r.get(0))
        .unwrap()
}

#[test]
fn relaxed_commits_are_chained_and_full_sync_comes_back() {
    let (_dir, path, mut ledger) = temp_ledger(1);
    // FULL (2) by default; NORMAL (1) only inside.
    assert_eq!(synchronous(&ledger), 2);
    let event = ledger
        .with_relaxed_sync(|conn| {
            assert_eq!(
                conn.query_row("PRAGMA synchronous", [], |r| r.get::<_, i64>(0))?,
                1
            );
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let event =
                append_in(&tx, Some("r"), "exec", &json!({ "n": 1 })).map_err(|e| match e {
                    LedgerError::Sqlite(e) => e,
                    other => panic!("{other}"),
                })?;
            tx.commit()?;
            Ok::<_, rusqlite::Error>(event)
        })
        .unwrap();
    assert_eq!(event.seq, 2);
    assert_eq!(synchronous(&ledger), 2);

    // A failure inside restores it too, and commits nothing.
    let failed = ledger.with_relaxed_sync(|conn| {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute("INSERT INTO no_such_table VALUES (1)", [])?;
        tx.commit()
    });
    assert!(failed.is_err());
    assert_eq!(synchronous(&ledger), 2);
    drop(ledger);
    let reopened = Ledger::open(&path).unwrap();
    let report = reopened.verify().unwrap();
    assert!(report.is_ok());
    assert_eq!(report.events, 2);
}

#[test]
fn reopening_restores_dropped_triggers_and_index() {
    // Opening skips the set-up for a ledger already whole; one with a
    // trigger or the index dropped, or a trigger rewritten to do nothing,
    // is not, and gets them back as they were.
    let (_dir, path, ledger) = temp_ledger(2);
    drop(ledger);
    for drop_sql in [
        "DROP TRIGGER events_no_update",
        "DROP TRIGGER events_no_delete",
        "DROP INDEX events_by_run",
        "DROP TRIGGER events_no_update;
         CREATE TRIGGER events_no_update BEFORE UPDATE ON events BEGIN SELECT 1; END",
        "DROP TRIGGER events_no_delete;
         CREATE TRIGGER events_no_delete BEFORE DELETE ON events BEGIN SELECT 1; END",
    ] {
        Connection::open(&path)
            .unwrap()
            .execute_batch(drop_sql)
            .unwrap();
        let ledger = Ledger::open(&path).unwrap();
        let conn = ledger.connection();
        let present: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE name IN ('events_by_run', 'events_no_update', 'events_no_delete')",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(present, 3, "after {drop_sql}");
        for edit in [
            "UPDATE events SET kind = 'edited' WHERE seq = 1",
            "DELETE FROM events WHERE seq = 2",
        ] {
            let refused = conn.execute(edit, []).unwrap_err().to_string();
            assert!(
                refused.contains(APPEND_ONLY_MESSAGE),
                "{edit} after {drop_sql}: {refused}"
            );
        }
    }
    assert!(Ledger::open(&path).unwrap().verify().unwrap().is_ok());
}

// ---------------------------------------------------------------- heads recorded outside

/// A copy of the ledger as it is now, as a backup tool would make it.
fn backup(ledger: &Ledger, to: &Path) {
    ledger
        .connection()
        .execute("VACUUM INTO ?1", [to.to_str().unwrap()])
        .unwrap();
}

#[test]
fn a_ledger_reaches_a_head_it_holds_and_one_it_has_moved_past() {
    use airlock_ledger::{Head, HeadCheck};
    let (_dir, _path, mut ledger) = temp_ledger(3);
    let (seq, hash) = ledger.head().unwrap().unwrap();
    let head = Head { seq, hash };
    assert_eq!(ledger.check_head(&head).unwrap(), HeadCheck::Holds);
    ledger.append(None, "later", &json!({})).unwrap();
    assert_eq!(ledger.check_head(&head).unwrap(), HeadCheck::Holds);
    let first = ledger.events(None).unwrap()[0].hash.clone();
    assert_eq!(ledger.identity().unwrap(), Some(first));
}

#[test]
fn an_older_copy_restored_does_not_reach_the_head_recorded_after_it() {
    use airlock_ledger::{Head, HeadCheck};
    let (dir, path, mut ledger) = temp_ledger(3);
    let old = dir.path().join("old.db");
    backup(&ledger, &old);
    ledger
        .append(Some("run-a"), "rollback", &json!({}))
        .unwrap();
    let (seq, hash) = ledger.head().unwrap().unwrap();
    let head = Head { seq, hash };
    drop(ledger);
    // The restore: the older file in place, its log gone with it.
    for suffix in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    std::fs::rename(&old, &path).unwrap();
    let restored = Ledger::open(&path).unwrap();
    // The chain alone cannot see it: it is whole, only shorter.
    assert!(restored.verify().unwrap().is_ok());
    assert_eq!(
        restored.check_head(&head).unwrap(),
        HeadCheck::Older { events: 3 }
    );
}

#[test]
fn an_empty_or_another_ledger_does_not_reach_a_recorded_head() {
    use airlock_ledger::{Head, HeadCheck};
    let (_dir, _path, ledger) = temp_ledger(2);
    let (seq, hash) = ledger.head().unwrap().unwrap();
    let head = Head { seq, hash };
    // A lost write-ahead log leaves no events at all.
    let (_d2, _p2, empty) = temp_ledger(0);
    assert_eq!(
        empty.check_head(&head).unwrap(),
        HeadCheck::Older { events: 0 }
    );
    assert_eq!(empty.identity().unwrap(), None);
    // Another ledger as long or longer holds other events there.
    let (_d3, _p3, mut other) = temp_ledger(0);
    for i in 0..4 {
        other.append(None, "another", &json!({ "i": i })).unwrap();
    }
    let found = other.events(None).unwrap()[1].hash.clone();
    assert_eq!(
        other.check_head(&head).unwrap(),
        HeadCheck::Differs { found }
    );
    assert_ne!(other.identity().unwrap(), ledger.identity().unwrap());
    // A seq no ledger can hold.
    let far = Head {
        seq: u64::MAX,
        hash: head.hash.clone(),
    };
    assert_eq!(
        ledger.check_head(&far).unwrap(),
        HeadCheck::Older { events: 2 }
    );
}

#[test]
fn meta_values_are_kept_beside_the_events_and_the_schema_version_is_the_ledgers() {
    let (_dir, path, ledger) = temp_ledger(1);
    assert_eq!(ledger.meta("head_record").unwrap(), None);
    ledger.set_meta("head_record", "/keys/x.head").unwrap();
    drop(ledger);
    let ledger = Ledger::open(&path).unwrap();
    assert_eq!(
        ledger.meta("head_record").unwrap().as_deref(),
        Some("/keys/x.head")
    );
    let err = ledger.set_meta("schema_version", "0").unwrap_err();
    assert!(matches!(err, LedgerError::InvalidEvent(_)), "{err}");
    assert_eq!(ledger.meta("schema_version").unwrap().as_deref(), Some("1"));
    assert!(ledger.verify().unwrap().is_ok());
}
