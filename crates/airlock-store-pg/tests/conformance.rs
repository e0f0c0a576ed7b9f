//! One conformance suite for both stores: every behaviour is a function
//! over a [`Backend`], run against SQLite's store and PostgreSQL's (a
//! private cluster, a database per test; see airlock_store_pg::testing).

use std::sync::Arc;

use airlock_ledger::rusqlite;
use airlock_model::action::{Action, ActionState};
use airlock_model::run::{Run, State};
use airlock_model::trace::Trace;
use airlock_store::{Paths, SqliteStore, Store};
use airlock_store_pg::PgStore;
use airlock_store_pg::testing::{self, Database};
use serde_json::{Value, json};

/// A store to test, and what its administrator can do behind its back.
trait Backend: Sync {
    /// Opens the store, checking the ledger's head record.
    fn open(&self) -> airlock_store::Result<Box<dyn Store>>;
    /// Sets event `seq`'s data to `data`, bypassing the append-only guard
    /// (a database superuser, or whoever can write the SQLite file).
    fn edit_data(&self, seq: u64, data: &str);
    /// Deletes the events with seq at least `seq`, the same way.
    fn delete_from(&self, seq: u64);
    /// Deletes event `seq` alone.
    fn delete_event(&self, seq: u64);
}

struct Sqlite {
    _dir: tempfile::TempDir,
    paths: Paths,
}

impl Sqlite {
    fn new() -> Sqlite {
        let dir = tempfile::tempdir().unwrap();
        let paths = paths_in(dir.path());
        Sqlite { _dir: dir, paths }
    }

    fn raw(&self) -> rusqlite::Connection {
        let conn = rusqlite::Connection::open(self.paths.db_path()).unwrap();
        conn.execute_batch(
            "DROP TRIGGER IF EXISTS events_no_update; DROP TRIGGER IF EXISTS events_no_delete;",
        )
        .unwrap();
        conn
    }
}

impl Backend for Sqlite {
    fn open(&self) -> airlock_store::Result<Box<dyn Store>> {
        Ok(Box::new(SqliteStore::open(&self.paths)?))
    }
    fn edit_data(&self, seq: u64, data: &str) {
        self.raw()
            .execute(
                "UPDATE events SET data = ?1 WHERE seq = ?2",
                rusqlite::params![data, seq as i64],
            )
            .unwrap();
    }
    fn delete_from(&self, seq: u64) {
        self.raw()
            .execute("DELETE FROM events WHERE seq >= ?1", [seq as i64])
            .unwrap();
    }
    fn delete_event(&self, seq: u64) {
        self.raw()
            .execute("DELETE FROM events WHERE seq = ?1", [seq as i64])
            .unwrap();
    }
}

struct Postgres {
    _dir: tempfile::TempDir,
    paths: Paths,
    db: Database,
}

impl Postgres {
    fn new() -> Postgres {
        let dir = tempfile::tempdir().unwrap();
        let paths = paths_in(dir.path());
        Postgres {
            _dir: dir,
            paths,
            db: testing::shared().database(),
        }
    }

    /// As the database's superuser, with triggers off for the session.
    fn superuser(&self, sql: &str, seq: u64) {
        let mut admin = self.db.admin();
        admin
            .batch_execute("SET session_replication_role = replica")
            .unwrap();
        admin.execute(sql, &[&(seq as i64)]).unwrap();
    }
}

impl Backend for Postgres {
    fn open(&self) -> airlock_store::Result<Box<dyn Store>> {
        Ok(Box::new(PgStore::open(&self.db.url(), &self.paths)?))
    }
    fn edit_data(&self, seq: u64, data: &str) {
        let mut admin = self.db.admin();
        admin
            .batch_execute("SET session_replication_role = replica")
            .unwrap();
        admin
            .execute(
                "UPDATE events SET data = $1 WHERE seq = $2",
                &[&data, &(seq as i64)],
            )
            .unwrap();
    }
    fn delete_from(&self, seq: u64) {
        self.superuser("DELETE FROM events WHERE seq >= $1", seq);
    }
    fn delete_event(&self, seq: u64) {
        self.superuser("DELETE FROM events WHERE seq = $1", seq);
    }
}

fn paths_in(dir: &std::path::Path) -> Paths {
    Paths {
        state: dir.join("state"),
        key_dir: dir.join("keys"),
    }
}

/// Runs a behaviour against both stores, as two tests.
macro_rules! both {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[test]
            fn sqlite() {
                super::$name(&super::Sqlite::new());
            }
            #[test]
            fn postgres() {
                super::$name(&super::Postgres::new());
            }
        }
    )*};
}

both!(
    runs_insert_get_list_and_transition,
    a_transition_from_the_wrong_state_is_refused_and_writes_nothing,
    traces_round_trip_with_their_connections,
    a_trace_after_submission_is_refused_and_writes_nothing,
    events_and_their_kinds,
    actions_save_replace_and_withdraw,
    intents_begin_list_and_end,
    the_ledger_verifies_and_names_an_edited_body,
    a_deleted_event_is_named_by_verify,
    a_deleted_tail_is_refused_at_open,
    eight_writers_on_different_runs_leave_no_gaps,
    in_review_gathers_each_waiting_run_with_its_actions_events_and_traces,
    sealing_appends_a_leaf_for_each_chain_that_moved,
    a_promotion_lease_has_one_holder_per_target_and_expires,
);

fn run(id: &str, state: State, created: &str) -> Run {
    serde_json::from_value(json!({
        "id": id, "state": state.as_str(), "round": 1, "label": "a label",
        "class": "docs", "lane": "default", "brief_path": "b.toml",
        "brief_digest": "d", "workflow_digest": "w", "base": "0000",
        "branch": format!("airlock/{id}"), "target": "main",
        "worktree": "/nowhere", "created": created,
        "check": null, "submission": null, "approval": null, "promotion": null,
    }))
    .unwrap()
}

/// Starts `id` as a real start does: an intent, then the run with its event.
fn start(store: &mut dyn Store, id: &str, created: &str) -> Run {
    let (intent, _guard) = store
        .begin_intent("start", id, json!({"why": "test"}))
        .unwrap();
    let r = run(id, State::Staged, created);
    store.insert(&r, intent, json!({"label": r.label})).unwrap();
    r
}

fn trace(log: &str, connections: Value) -> Trace {
    serde_json::from_value(json!({
        "n": 0, "round": 1, "origin": "agent", "argv": ["echo", "hi"], "cwd": ".",
        "lane": "default",
        "exit": {"code": 0, "description": "exited 0", "timed_out": false},
        "duration_ms": 3,
        "stdout": {"sha256": "aa", "size": 3, "log": log},
        "stderr": {"sha256": "bb", "size": 0, "log": format!("{log}.err")},
        "files_changed": [], "started": "2026-01-01T00:00:00.000Z",
        "connections": connections,
    }))
    .unwrap()
}

fn action(run: &str, name: &str, seq: u32, state: &str) -> Action {
    serde_json::from_value(json!({
        "run": run, "seq": seq, "role": "apply",
        "spec": {"name": name, "scopes": [], "kind": "command",
                 "argv": ["true"], "cwd": ".", "env": [], "timeout_secs": 5},
        "digest": "dd", "preview": "p", "preview_sha256": "ps",
        "rehearsal": {"status": "ok", "summary": "fine"},
        "state": state, "attempts": [], "proposed": "2026-01-01T00:00:00.000Z",
    }))
    .unwrap()
}

fn code(e: &airlock_store::Error) -> Option<&'static str> {
    match e {
        airlock_store::Error::Refused(r) => Some(r.code.as_str()),
        _ => None,
    }
}

fn runs_insert_get_list_and_transition(b: &dyn Backend) {
    let mut store = b.open().unwrap();
    let a = start(&mut *store, "add-docs-1a2b", "2026-01-01T00:00:00.000Z");
    start(&mut *store, "fix-bug-3c4d", "2026-01-02T00:00:00.000Z");
    assert!(
        store.intents().unwrap().is_empty(),
        "insert clears its intent"
    );
    assert_eq!(store.get("add-docs-1a2b").unwrap().label, "a label");
    assert!(store.exists("fix-bug-3c4d").unwrap());
    assert!(!store.exists("nope").unwrap());
    let ids: Vec<String> = store.list().unwrap().into_iter().map(|r| r.id).collect();
    assert_eq!(ids, ["add-docs-1a2b", "fix-bug-3c4d"]);
    assert_eq!(store.resolve("add").unwrap(), "add-docs-1a2b");
    assert!(matches!(
        store.resolve("add-docs-1a2c"),
        Err(airlock_store::Error::UnknownRunNear { .. })
    ));
    assert!(matches!(
        store.get("nope"),
        Err(airlock_store::Error::UnknownRun(_))
    ));
    let mut checked = a.clone();
    checked.state = State::Checked;
    let event = store
        .transition(&checked, State::Staged, "check", json!({"passed": true}))
        .unwrap();
    assert_eq!(event.data["from"], "staged");
    assert_eq!(event.data["to"], "checked");
    assert_eq!(store.get(&a.id).unwrap().state, State::Checked);
    // Seen from another connection.
    let other = b.open().unwrap();
    assert_eq!(other.get(&a.id).unwrap().state, State::Checked);
    assert_eq!(other.events(Some(&a.id)).unwrap().len(), 2);
}

fn a_transition_from_the_wrong_state_is_refused_and_writes_nothing(b: &dyn Backend) {
    let mut store = b.open().unwrap();
    let a = start(&mut *store, "r-1", "2026-01-01T00:00:00.000Z");
    let before = store.events(None).unwrap();
    let mut approved = a.clone();
    approved.state = State::Approved;
    approved.label = "changed".into();
    let err = store
        .transition(&approved, State::InReview, "approve", json!({}))
        .unwrap_err();
    assert_eq!(code(&err), Some("concurrent-change"), "{err}");
    assert!(err.to_string().contains("run r-1 changed"), "{err}");
    let after = b.open().unwrap();
    assert_eq!(after.events(None).unwrap(), before);
    let stored = after.get("r-1").unwrap();
    assert_eq!(
        (stored.state, stored.label.as_str()),
        (State::Staged, "a label")
    );
}

fn traces_round_trip_with_their_connections(b: &dyn Backend) {
    let mut store = b.open().unwrap();
    start(&mut *store, "r-1", "2026-01-01T00:00:00.000Z");
    let conn = json!([
        {"protocol": "https", "host": "example.org", "port": 443, "outcome": "refused",
         "reason": "not allowed", "bytes_up": 0, "bytes_down": 0, "duration_us": 5,
         "started_unix_ms": 1},
        {"protocol": "https", "host": "crates.io", "port": 443, "outcome": "allowed",
         "bytes_up": 10, "bytes_down": 20, "duration_us": 7, "started_unix_ms": 2},
    ]);
    let mut first = trace("/logs/1.out", conn);
    store.add_trace("r-1", &mut first).unwrap();
    let mut second = trace("/logs/2.out", json!([]));
    store.add_trace("r-1", &mut second).unwrap();
    assert_eq!((first.n, second.n), (1, 2));
    // Handed over twice: kept once, with its number.
    let mut again = trace("/logs/1.out", json!([]));
    store.add_trace("r-1", &mut again).unwrap();
    assert_eq!(again.n, 1);
    let traces = b.open().unwrap().traces("r-1").unwrap();
    assert_eq!(traces.len(), 2);
    assert_eq!(json!(traces[0]), json!(first));
    assert_eq!(traces[0].connections.len(), 2);
    assert_eq!(traces[0].connections[1].host, "crates.io");
    assert_eq!(json!(traces[1]), json!(second));
    let execs = store.events_of_kind("exec").unwrap();
    assert_eq!(execs.len(), 2);
}

fn a_trace_after_submission_is_refused_and_writes_nothing(b: &dyn Backend) {
    let mut store = b.open().unwrap();
    let a = start(&mut *store, "r-1", "2026-01-01T00:00:00.000Z");
    let mut in_review = a.clone();
    in_review.state = State::InReview;
    store
        .transition(&in_review, State::Staged, "submit", json!({}))
        .unwrap();
    let before = store.events(None).unwrap();
    let mut t = trace("/logs/late.out", json!([]));
    let err = store.add_trace("r-1", &mut t).unwrap_err();
    assert!(
        matches!(err, airlock_store::Error::WrongState { .. }),
        "{err}"
    );
    let mut t = trace("/logs/late.out", json!([]));
    assert!(matches!(
        store.add_trace("nope", &mut t),
        Err(airlock_store::Error::UnknownRun(_))
    ));
    let after = b.open().unwrap();
    assert!(after.traces("r-1").unwrap().is_empty());
    assert_eq!(after.events(None).unwrap(), before);
}

fn events_and_their_kinds(b: &dyn Backend) {
    let mut store = b.open().unwrap();
    start(&mut *store, "r-1", "2026-01-01T00:00:00.000Z");
    start(&mut *store, "r-2", "2026-01-02T00:00:00.000Z");
    let global = store.event(None, "config", json!({"k": 1})).unwrap();
    assert_eq!(global.run, None);
    let check = store
        .event(
            Some("r-1"),
            "check",
            json!({"passed": false, "failure": "gate `test`"}),
        )
        .unwrap();
    let rec = store
        .record_event("r-2", "note", json!({"x": [1, 2]}))
        .unwrap();
    let err = store.event(Some("r-1"), " ", json!({})).unwrap_err();
    assert!(err.to_string().contains("kind is empty"), "{err}");

    let all = store.events(None).unwrap();
    assert_eq!(all.len(), 5);
    assert!(all.windows(2).all(|w| w[0].seq < w[1].seq), "seq order");
    for e in &all {
        assert_eq!(e.computed_hash(), e.hash, "{e:?}");
    }
    let r1: Vec<String> = store
        .events(Some("r-1"))
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(r1, ["start", "check"]);
    assert_eq!(store.events_of_kind("note").unwrap(), vec![rec.clone()]);
    assert_eq!(store.events_of_kind("start").unwrap().len(), 2);
    assert_eq!(
        store.ledger_head().unwrap(),
        Some((rec.seq, rec.hash.clone()))
    );
    assert!(store.ledger_contains(check.seq, &check.hash).unwrap());
    assert!(!store.ledger_contains(check.seq, &global.hash).unwrap());
    assert_eq!(store.finished_at("r-2").unwrap(), Some(rec.ts.clone()));
    assert_eq!(store.finished_at("nope").unwrap(), None);
    // The steps a promotion record is made of.
    let mut steps = Vec::new();
    store
        .for_each_step(&Default::default(), &mut |row| {
            steps.push((
                row.run.to_string(),
                row.step
                    .map(|s| (s.kind.to_string(), s.failure.map(str::to_string))),
            ))
        })
        .unwrap();
    assert_eq!(
        steps,
        vec![
            (
                "r-1".to_string(),
                Some(("check".to_string(), Some("gate `test`".to_string())))
            ),
            ("r-2".to_string(), None),
        ]
    );
    assert!(store.verify_ledger().unwrap().is_ok());
}

fn actions_save_replace_and_withdraw(b: &dyn Backend) {
    let mut store = b.open().unwrap();
    let r = start(&mut *store, "r-1", "2026-01-01T00:00:00.000Z");
    let planned = action("r-1", "publish", 1, "planned");
    store
        .replace_actions(
            &r,
            "publish",
            std::slice::from_ref(&planned),
            &|replaced| json!({"name": "publish", "replaced": replaced}),
        )
        .unwrap();
    let again = action("r-1", "publish", 1, "planned");
    store
        .replace_actions(
            &r,
            "publish",
            &[again],
            &|replaced| json!({"name": "publish", "replaced": replaced}),
        )
        .unwrap();
    let proposes = store.events_of_kind("propose").unwrap();
    assert_eq!(
        proposes
            .iter()
            .map(|e| e.data["replaced"].clone())
            .collect::<Vec<_>>(),
        [json!(false), json!(true)]
    );
    assert_eq!(store.actions("r-1").unwrap().len(), 1);
    // Moved on only from the state it is in.
    let mut started = planned.clone();
    started.state = ActionState::Started;
    store
        .save_action(
            &started,
            Some(ActionState::Planned),
            "action-started",
            json!({}),
        )
        .unwrap();
    let events = store.events(None).unwrap().len();
    let err = store
        .save_action(
            &started,
            Some(ActionState::Planned),
            "action-started",
            json!({}),
        )
        .unwrap_err();
    assert_eq!(code(&err), Some("concurrent-change"), "{err}");
    assert_eq!(store.events(None).unwrap().len(), events, "nothing written");
    assert_eq!(
        b.open().unwrap().actions("r-1").unwrap()[0].state,
        ActionState::Started
    );
    // Without `from`: stored whatever it was.
    let second = action("r-1", "notify", 2, "planned");
    store
        .save_action(&second, None, "action-planned", json!({}))
        .unwrap();
    let names: Vec<String> = store
        .actions("r-1")
        .unwrap()
        .into_iter()
        .map(|a| a.spec.name)
        .collect();
    assert_eq!(names, ["publish", "notify"]);
    assert!(store.withdraw_action("r-1", "notify").unwrap());
    assert!(!store.withdraw_action("r-1", "notify").unwrap());
    assert_eq!(store.actions("r-1").unwrap().len(), 1);
    assert_eq!(store.events_of_kind("withdraw").unwrap().len(), 1);
    // A run no longer staged or checked takes no new plan.
    let mut in_review = r.clone();
    in_review.state = State::InReview;
    store
        .transition(&in_review, State::Staged, "submit", json!({}))
        .unwrap();
    let events = store.events(None).unwrap().len();
    let err = store
        .replace_actions(&r, "publish", &[], &|_| json!({}))
        .unwrap_err();
    assert_eq!(code(&err), Some("concurrent-change"), "{err}");
    assert_eq!(store.actions("r-1").unwrap().len(), 1);
    assert_eq!(store.events(None).unwrap().len(), events);
}

fn intents_begin_list_and_end(b: &dyn Backend) {
    let mut store = b.open().unwrap();
    let (id, guard) = store
        .begin_intent("promote", "r-1", json!({"target": "main"}))
        .unwrap();
    let intents = b.open().unwrap().intents().unwrap();
    assert_eq!(intents.len(), 1);
    assert_eq!(
        (intents[0].kind.as_str(), intents[0].run.as_str()),
        ("promote", "r-1")
    );
    assert_eq!(intents[0].data["target"], "main");
    let token = intents[0].data["token"].as_str().unwrap().to_string();
    assert!(store.intent_lock(&token).exists(), "the lock is a file");
    store.end_intent(id).unwrap();
    drop(guard);
    assert!(store.intents().unwrap().is_empty());
    assert!(!store.intent_lock(&token).exists());
}

fn the_ledger_verifies_and_names_an_edited_body(b: &dyn Backend) {
    let mut store = b.open().unwrap();
    start(&mut *store, "r-1", "2026-01-01T00:00:00.000Z");
    let edited = store
        .event(Some("r-1"), "check", json!({"passed": false}))
        .unwrap();
    store.event(Some("r-1"), "note", json!({})).unwrap();
    let report = store.verify_ledger().unwrap();
    assert!(report.is_ok(), "{report:?}");
    assert_eq!(report.events, 3);
    drop(store);
    b.edit_data(edited.seq, r#"{"passed":true}"#);
    let report = b.open().unwrap().verify_ledger().unwrap();
    let bad = report.first_bad.expect("the edit is found");
    assert_eq!(bad.seq, edited.seq, "{}", bad.problem);
    assert!(
        bad.problem.contains("does not match its contents"),
        "{}",
        bad.problem
    );
}

fn a_deleted_event_is_named_by_verify(b: &dyn Backend) {
    let mut store = b.open().unwrap();
    start(&mut *store, "r-1", "2026-01-01T00:00:00.000Z");
    let gone = store.event(Some("r-1"), "check", json!({})).unwrap();
    let next = store.event(Some("r-1"), "note", json!({})).unwrap();
    drop(store);
    b.delete_event(gone.seq);
    let report = b.open().unwrap().verify_ledger().unwrap();
    let bad = report.first_bad.expect("the gap is found");
    assert!(
        bad.seq == gone.seq || bad.seq == next.seq,
        "names the gap: {bad:?}"
    );
    assert!(
        bad.problem.contains("missing") || bad.problem.contains("link broken"),
        "{}",
        bad.problem
    );
}

fn a_deleted_tail_is_refused_at_open(b: &dyn Backend) {
    let mut store = b.open().unwrap();
    start(&mut *store, "r-1", "2026-01-01T00:00:00.000Z");
    let kept = store.event(Some("r-1"), "check", json!({})).unwrap();
    let tail = store.event(Some("r-1"), "submit", json!({})).unwrap();
    drop(store);
    b.delete_from(tail.seq);
    let err = b
        .open()
        .err()
        .expect("a ledger behind its head record is refused");
    assert_eq!(code(&err), Some("ledger-behind"), "{err}");
    assert!(
        err.to_string().contains("older than what airlock recorded"),
        "{err}"
    );
    assert!(kept.seq < tail.seq);
}

fn eight_writers_on_different_runs_leave_no_gaps(b: &dyn Backend) {
    const EACH: usize = 40;
    let mut store = b.open().unwrap();
    for w in 0..8 {
        start(&mut *store, &format!("w-{w}"), "2026-01-01T00:00:00.000Z");
    }
    drop(store);
    let b = Arc::new(b);
    std::thread::scope(|scope| {
        for w in 0..8 {
            let b = b.clone();
            scope.spawn(move || {
                let mut store = b.open().unwrap();
                for i in 0..EACH {
                    store
                        .record_event(&format!("w-{w}"), "note", json!({"i": i}))
                        .unwrap();
                }
            });
        }
    });
    let store = b.open().unwrap();
    for w in 0..8 {
        let events = store.events(Some(&format!("w-{w}"))).unwrap();
        assert_eq!(events.len(), EACH + 1, "writer {w}");
        let is: Vec<u64> = events[1..]
            .iter()
            .map(|e| e.data["i"].as_u64().unwrap())
            .collect();
        assert_eq!(
            is,
            (0..EACH as u64).collect::<Vec<_>>(),
            "writer {w} in order"
        );
    }
    let report = store.verify_ledger().unwrap();
    assert!(report.is_ok(), "{report:?}");
    assert_eq!(report.events, 8 * (EACH as u64 + 1));
}

/// The review queue's one gathering: every run in review (and no other),
/// in `list` order, each with exactly what the per-run methods return of
/// it (its actions, its events of the kinds asked, its traces'
/// confinements).
fn in_review_gathers_each_waiting_run_with_its_actions_events_and_traces(b: &dyn Backend) {
    let mut store = b.open().unwrap();
    assert!(store.in_review(&["submit"]).unwrap().is_empty());
    let r1 = start(&mut *store, "r-1", "2026-01-01T00:00:00.000Z");
    start(&mut *store, "r-2", "2026-01-02T00:00:00.000Z");
    let r3 = start(&mut *store, "r-3", "2026-01-03T00:00:00.000Z");
    let mut weaker = trace("/logs/1.out", json!([]));
    weaker.confinement = "confined (weaker: no namespaces)".into();
    store.add_trace("r-1", &mut weaker).unwrap();
    let mut confined = trace("/logs/2.out", json!([]));
    confined.confinement = "confined".into();
    store.add_trace("r-1", &mut confined).unwrap();
    // Recorded without a confinement.
    let mut bare = trace("/logs/3.out", json!([]));
    store.add_trace("r-1", &mut bare).unwrap();
    let mut other = trace("/logs/4.out", json!([]));
    store.add_trace("r-2", &mut other).unwrap();
    for (name, seq) in [("publish", 1), ("notify", 2)] {
        store
            .replace_actions(
                &r1,
                name,
                &[action("r-1", name, seq, "planned")],
                &|r| json!({"name": name, "replaced": r}),
            )
            .unwrap();
    }
    store
        .event(Some("r-1"), "check", json!({"passed": false}))
        .unwrap();
    store.record_event("r-1", "note", json!({})).unwrap();
    store
        .event(Some("r-2"), "check", json!({"passed": true}))
        .unwrap();
    for r in [&r3, &r1] {
        let mut submitted = r.clone();
        submitted.state = State::InReview;
        store
            .transition(&submitted, State::Staged, "submit", json!({"head": "h"}))
            .unwrap();
    }

    let other = b.open().unwrap();
    let kinds = ["check", "submit", "approve"];
    let queue = other.in_review(&kinds).unwrap();
    let ids: Vec<&str> = queue.iter().map(|q| q.run.id.as_str()).collect();
    assert_eq!(ids, ["r-1", "r-3"], "runs in review, in list order");
    for q in &queue {
        assert_eq!(q.run.state, State::InReview);
        assert_eq!(json!(q.run), json!(other.get(&q.run.id).unwrap()));
        assert_eq!(
            json!(q.actions),
            json!(other.actions(&q.run.id).unwrap()),
            "{}",
            q.run.id
        );
        let events: Vec<_> = other
            .events(Some(&q.run.id))
            .unwrap()
            .into_iter()
            .filter(|e| kinds.contains(&e.kind.as_str()))
            .collect();
        assert_eq!(q.events, events, "{}", q.run.id);
        let confinements: Vec<(u32, String)> = other
            .traces(&q.run.id)
            .unwrap()
            .into_iter()
            .map(|t| (t.n, t.confinement))
            .collect();
        assert_eq!(q.confinements, confinements, "{}", q.run.id);
    }
    let r1_kinds: Vec<&str> = queue[0].events.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(r1_kinds, ["check", "submit"]);
    assert_eq!(queue[0].actions.len(), 2);
    assert_eq!(
        queue[0].confinements,
        [
            (1, "confined (weaker: no namespaces)".to_string()),
            (2, "confined".to_string()),
            (3, String::new()),
        ]
    );
    assert!(queue[1].actions.is_empty() && queue[1].confinements.is_empty());
    // No kinds: no events.
    assert!(
        other
            .in_review(&[])
            .unwrap()
            .iter()
            .all(|q| q.events.is_empty())
    );
}

/// Sealing (issue 20): a leaf for each chain whose head moved since its
/// last leaf, none when nothing moved, each leaf read back with the hash
/// its event has now.
fn sealing_appends_a_leaf_for_each_chain_that_moved(b: &dyn Backend) {
    let mut store = b.open().unwrap();
    assert_eq!(store.seal().unwrap(), 0, "an empty ledger seals nothing");
    assert!(store.log_leaves().unwrap().is_empty());
    start(&mut *store, "r-1", "2026-01-01T00:00:00.000Z");
    start(&mut *store, "r-2", "2026-01-02T00:00:00.000Z");
    let first = store.seal().unwrap();
    assert!(first >= 1);
    assert_eq!(store.seal().unwrap(), first, "nothing moved: no new leaf");
    let last = store
        .event(Some("r-1"), "check", json!({"passed": true}))
        .unwrap();
    let second = store.seal().unwrap();
    assert_eq!(second, first + 1, "only r-1's chain moved");
    let leaves = store.log_leaves().unwrap();
    assert_eq!(leaves.len() as u64, second);
    for (i, leaf) in leaves.iter().enumerate() {
        assert_eq!(leaf.index, i as u64);
        assert_eq!(leaf.event.as_deref(), Some(leaf.hash.as_str()), "{leaf:?}");
        assert_eq!(
            store.chain_event(&leaf.chain, leaf.n).unwrap().as_deref(),
            Some(leaf.hash.as_str())
        );
    }
    let newest = leaves.last().unwrap();
    assert_eq!(newest.hash, last.hash);
    let heads = store.chain_heads().unwrap();
    assert!(heads.iter().any(|(_, _, h)| *h == last.hash), "{heads:?}");
    assert_eq!(store.chain_event("no-such-chain", 1).unwrap(), None);
}

fn lease(
    target: &str,
    run: &str,
    machine: &str,
    token: &str,
    expires_ms: i64,
) -> airlock_store::Lease {
    airlock_store::Lease {
        target: target.into(),
        run: run.into(),
        machine: machine.into(),
        principal: format!("{machine}@example.invalid"),
        token: token.into(),
        expires_ms,
    }
}

/// Issue 20: one holder per target; a second taker is told who holds it;
/// the holder renews with its token; another target is independent; a
/// lapsed lease is taken over; a release by a stale token does nothing;
/// and two stores over the same database see the same holder.
fn a_promotion_lease_has_one_holder_per_target_and_expires(b: &dyn Backend) {
    let mut a = b.open().unwrap();
    let mut other = b.open().unwrap();
    let main = "origin refs/heads/main";
    let first = lease(main, "r-1", "SHA256:aaa", "t1", 1_000);
    assert_eq!(a.take_lease(&first, 0).unwrap(), None);
    assert_eq!(other.lease(main, 10).unwrap(), Some(first.clone()));
    // A second holder is refused and told who holds it; nothing changes.
    let second = lease(main, "r-2", "SHA256:bbb", "t2", 5_000);
    assert_eq!(other.take_lease(&second, 10).unwrap(), Some(first.clone()));
    assert_eq!(a.lease(main, 10).unwrap(), Some(first.clone()));
    // Another target is another lease.
    let docs = lease("origin refs/heads/docs", "r-2", "SHA256:bbb", "t3", 5_000);
    assert_eq!(other.take_lease(&docs, 10).unwrap(), None);
    // The holder renews with its token.
    let renewed = lease(main, "r-1", "SHA256:aaa", "t1", 2_000);
    assert_eq!(a.take_lease(&renewed, 500).unwrap(), None);
    assert_eq!(
        other.take_lease(&second, 1_500).unwrap(),
        Some(renewed.clone())
    );
    // Lapsed: nobody holds it, and the next taker gets it.
    assert_eq!(a.lease(main, 2_000).unwrap(), None);
    assert_eq!(other.take_lease(&second, 2_000).unwrap(), None);
    // The lapsed holder's release leaves the new holder's lease alone.
    a.release_lease(main, "t1").unwrap();
    assert_eq!(a.lease(main, 2_001).unwrap(), Some(second.clone()));
    other.release_lease(main, "t2").unwrap();
    assert_eq!(a.lease(main, 2_001).unwrap(), None);
    assert_eq!(a.take_lease(&first, 0).unwrap(), None);
}
