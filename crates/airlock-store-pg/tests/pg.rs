//! What only PostgreSQL's store does: migrations applied once under a lock
//! by machines opening a new database at once, a newer schema refused
//! untouched, several machines on one database, and the ledger's per-run
//! chains checked against tampering by a database superuser.

use airlock_store::{Paths, Store};
use airlock_store_pg::testing::{self, Database};
use airlock_store_pg::{PgStore, SCHEMA_VERSION};
use serde_json::json;

/// One machine: its own state directory and key directory.
struct Machine {
    _dir: tempfile::TempDir,
    paths: Paths,
}

fn machine() -> Machine {
    let dir = tempfile::tempdir().unwrap();
    let paths = Paths {
        state: dir.path().join("state"),
        key_dir: dir.path().join("keys"),
    };
    Machine { _dir: dir, paths }
}

fn code(e: &airlock_store::Error) -> Option<&'static str> {
    match e {
        airlock_store::Error::Refused(r) => Some(r.code.as_str()),
        _ => None,
    }
}

fn start(store: &mut PgStore, id: &str) {
    let (intent, _guard) = store.begin_intent("start", id, json!({})).unwrap();
    let run = serde_json::from_value(json!({
        "id": id, "state": "staged", "round": 1, "label": "l", "class": "",
        "lane": "default", "brief_path": "b", "brief_digest": "d",
        "workflow_digest": "w", "base": "0", "branch": "b", "target": "main",
        "worktree": "/nowhere", "created": "2026-01-01T00:00:00.000Z",
        "check": null, "submission": null, "approval": null, "promotion": null,
    }))
    .unwrap();
    store.insert(&run, intent, json!({})).unwrap();
}

#[test]
fn machines_opening_a_new_database_at_once_apply_the_migrations_once() {
    let db = testing::shared().database();
    let machines: Vec<Machine> = (0..6).map(|_| machine()).collect();
    std::thread::scope(|scope| {
        for m in &machines {
            let url = db.url();
            scope.spawn(move || PgStore::open(&url, &m.paths).unwrap());
        }
    });
    let mut admin = db.admin();
    let versions: Vec<i32> = admin
        .query("SELECT version FROM airlock_schema", &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(versions, [SCHEMA_VERSION]);
    let events: i64 = admin
        .query_one("SELECT count(*) FROM events", &[])
        .unwrap()
        .get(0);
    assert_eq!(events, 0);
}

#[test]
fn a_database_of_a_newer_airlock_is_refused_untouched() {
    let db: Database = testing::shared().database();
    let m = machine();
    drop(PgStore::open(&db.url(), &m.paths).unwrap());
    let mut admin = db.admin();
    admin
        .batch_execute("UPDATE airlock_schema SET version = version + 1")
        .unwrap();
    let tables = |admin: &mut postgres::Client| -> i64 {
        admin
            .query_one(
                "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'",
                &[],
            )
            .unwrap()
            .get(0)
    };
    let before = tables(&mut admin);
    let err = PgStore::open(&db.url(), &m.paths).err().expect("refused");
    assert_eq!(code(&err), Some("database-newer-schema"), "{err}");
    assert!(err.to_string().contains("newer airlock"), "{err}");
    assert_eq!(tables(&mut admin), before);
}

#[test]
fn another_machine_sees_the_runs_but_neither_the_intents_nor_the_head_record() {
    let db = testing::shared().database();
    let (a, b) = (machine(), machine());
    let mut on_a = PgStore::open(&db.url(), &a.paths).unwrap();
    start(&mut on_a, "r-1");
    let (_id, _guard) = on_a.begin_intent("promote", "r-1", json!({})).unwrap();
    // B opens after A has kept a head record: not refused as missing its
    // own, and A's running intent is not B's to recover.
    let on_b = PgStore::open(&db.url(), &b.paths).unwrap();
    assert!(on_b.exists("r-1").unwrap());
    assert!(on_b.intents().unwrap().is_empty());
    assert_eq!(on_a.intents().unwrap().len(), 1);
    // The keys stay on the machines.
    assert!(a.paths.key_dir.exists());
    let mut admin = db.admin();
    let keyish: i64 = admin
        .query_one(
            "SELECT count(*) FROM airlock_meta WHERE value LIKE '%PRIVATE KEY%'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(keyish, 0);
}

#[test]
fn the_append_only_guard_refuses_the_application_role() {
    let db = testing::shared().database();
    let m = machine();
    let mut store = PgStore::open(&db.url(), &m.paths).unwrap();
    start(&mut store, "r-1");
    let mut app = postgres::Client::connect(&db.url(), postgres::NoTls).unwrap();
    for sql in [
        "UPDATE events SET data = '{}'",
        "DELETE FROM events",
        "TRUNCATE events",
    ] {
        let err = app.batch_execute(sql).unwrap_err();
        let message = err.as_db_error().map(|d| d.message().to_string());
        assert_eq!(
            message.as_deref(),
            Some("airlock ledger is append-only"),
            "{sql}: {err:?}"
        );
    }
    assert_eq!(store.events(None).unwrap().len(), 1);
}

#[test]
fn a_deleted_run_tail_is_named_by_verify_when_its_chain_head_remains() {
    let db = testing::shared().database();
    let m = machine();
    let mut store = PgStore::open(&db.url(), &m.paths).unwrap();
    start(&mut store, "r-1");
    start(&mut store, "r-2");
    let kept = store.event(Some("r-1"), "check", json!({})).unwrap();
    let tail = store.event(Some("r-1"), "note", json!({})).unwrap();
    // r-2 moves on after: the head record names its event, not r-1's.
    store.event(Some("r-2"), "note", json!({})).unwrap();
    let mut admin = db.admin();
    admin
        .batch_execute("SET session_replication_role = replica")
        .unwrap();
    admin
        .execute("DELETE FROM events WHERE seq = $1", &[&(tail.seq as i64)])
        .unwrap();
    let report = PgStore::open(&db.url(), &m.paths)
        .unwrap()
        .verify_ledger()
        .unwrap();
    let bad = report.first_bad.expect("the deleted tail is named");
    assert_eq!(bad.seq, kept.seq, "{}", bad.problem);
    assert!(bad.problem.contains("run r-1"), "{}", bad.problem);
    assert!(bad.problem.contains("tail was deleted"), "{}", bad.problem);
}

/// The machine's head record file and the status it gives a new opening.
fn record_seq(m: &Machine, url: &str) -> (std::path::PathBuf, Option<u64>) {
    let mut store = PgStore::open_unverified(url, &m.paths).unwrap();
    let path = airlock_store::head::path_of(&m.paths, &store);
    let status = store.head_status(true).unwrap();
    assert!(status.problem.is_none(), "{:?}", status.problem);
    (path, status.record.map(|r| r.seq))
}

#[test]
fn one_write_of_the_head_record_covers_the_events_announced_while_it_waited() {
    let db = testing::shared().database();
    let m = machine();
    let mut a = PgStore::open(&db.url(), &m.paths).unwrap();
    let mut b = PgStore::open(&db.url(), &m.paths).unwrap();
    start(&mut a, "r-1");
    start(&mut b, "r-2");
    // Both commit; neither has written the record yet. B's event, later,
    // waits announced beside the record while A writes.
    let on_a = a.record_event("r-1", "note", json!({})).unwrap();
    let on_b = b.record_event("r-2", "note", json!({})).unwrap();
    assert!(on_b.seq > on_a.seq);
    let (path, _) = record_seq(&m, &db.url());
    let waiting = format!("{}.waiting", path.display());
    std::fs::write(&waiting, format!("{} {}\n", on_b.seq, on_b.hash)).unwrap();
    let before = std::fs::read(&path).unwrap();
    a.witness(&on_a).unwrap();
    assert_eq!(record_seq(&m, &db.url()).1, Some(on_b.seq), "A wrote B's");
    // B finds its event covered and writes nothing.
    let written = std::fs::read(&path).unwrap();
    assert_ne!(written, before);
    b.witness(&on_b).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), written);
}

#[test]
fn an_announcement_the_ledger_does_not_hold_is_passed_over() {
    let db = testing::shared().database();
    let m = machine();
    let mut store = PgStore::open(&db.url(), &m.paths).unwrap();
    start(&mut store, "r-1");
    let (path, _) = record_seq(&m, &db.url());
    let waiting = format!("{}.waiting", path.display());
    // A later seq with a hash no event has, and lines that are no event.
    std::fs::write(
        &waiting,
        format!("99999 {}\nnot a line\n12 short\n", "ab".repeat(32)),
    )
    .unwrap();
    let event = store.event(Some("r-1"), "note", json!({})).unwrap();
    assert_eq!(record_seq(&m, &db.url()).1, Some(event.seq));
    // And the record still refuses a database that lost that event.
    let mut admin = db.admin();
    admin
        .batch_execute("SET session_replication_role = replica")
        .unwrap();
    admin
        .execute("DELETE FROM events WHERE seq = $1", &[&(event.seq as i64)])
        .unwrap();
    let err = PgStore::open(&db.url(), &m.paths).err().expect("refused");
    assert_eq!(code(&err), Some("ledger-behind"), "{err}");
}

#[test]
fn a_head_record_write_cut_short_leaves_the_record_before_it() {
    let db = testing::shared().database();
    let m = machine();
    let mut store = PgStore::open(&db.url(), &m.paths).unwrap();
    start(&mut store, "r-1");
    let kept = store.event(Some("r-1"), "check", json!({})).unwrap();
    let (path, seq) = record_seq(&m, &db.url());
    assert_eq!(seq, Some(kept.seq));
    // The records are appended: a crash in the middle of the next leaves
    // part of a line after the last whole one.
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.lines().count() >= 2, "{text}");
    let last = text.lines().last().unwrap();
    let mut cut = text.clone();
    cut.push_str(&last[..last.len() / 2]);
    std::fs::write(&path, &cut).unwrap();
    assert_eq!(record_seq(&m, &db.url()).1, Some(kept.seq));
    // The next write starts the file afresh rather than after the cut.
    let next = store.event(Some("r-1"), "note", json!({})).unwrap();
    assert_eq!(record_seq(&m, &db.url()).1, Some(next.seq));
    assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 1);
    // A last line that is whole but not a record is not passed over.
    let mut forged = std::fs::read_to_string(&path).unwrap();
    forged.push_str("{\"payload\": \"x\"}\n");
    std::fs::write(&path, &forged).unwrap();
    let status = PgStore::open_unverified(&db.url(), &m.paths)
        .unwrap()
        .head_status(true)
        .unwrap();
    assert_eq!(
        status.problem.as_deref(),
        Some("the ledger's head record cannot be trusted")
    );
}

#[test]
fn events_appended_by_one_statement_hash_as_the_ledger_does() {
    let db = testing::shared().database();
    let m = machine();
    let mut store = PgStore::open(&db.url(), &m.paths).unwrap();
    start(&mut store, "r-é");
    let mut appended = Vec::new();
    for (run, kind, data) in [
        (
            Some("r-é"),
            "note",
            json!({"text": "ünïcødé ✓ \u{1F600}", "n": 1}),
        ),
        (Some("r-é"), "note", json!({})),
        (None, "key-made", json!({"quote": "'\\x00' \\n"})),
        (None, "ключ", json!([1, 2, 3])),
        (Some("r-é"), "check", json!({"failure": null})),
    ] {
        appended.push(store.event(run, kind, data).unwrap());
    }
    for e in &appended {
        let data = serde_json::to_string(&e.data).unwrap();
        let ours =
            airlock_ledger::hash_event(e.seq, &e.ts, e.run.as_deref(), &e.kind, &data, &e.prev);
        assert_eq!(e.hash, ours, "{e:?}");
    }
    let stored = store.events(None).unwrap();
    assert_eq!(&stored[stored.len() - appended.len()..], &appended[..]);
    let report = store.verify_ledger().unwrap();
    assert!(report.is_ok(), "{report:?}");
    // The chain of events of no run, and the run's, numbered on.
    let mut admin = db.admin();
    let n: i64 = admin
        .query_one("SELECT n FROM chains WHERE chain = 'r-é'", &[])
        .unwrap()
        .get(0);
    assert_eq!(n, 4);
}
