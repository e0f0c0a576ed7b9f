//! Working offline (issue 20): a machine whose PostgreSQL database goes out
//! of reach goes on with the runs it works on (`exec`), recording locally,
//! and flushes what it recorded when the database is back: each record
//! once, even when a flush is killed halfway; a run another machine moved
//! on meanwhile is a conflict named, never merged silently. What decides
//! or has effects refuses offline. Each test has a cluster of its own,
//! stopped and started again mid-run.

mod common;

use std::sync::Arc;

use common::{BRIEF, Env, Output};
use serde_json::Value;

use airlock_store_pg::testing::{Cluster, Database};

const URL: &str = "AIRLOCK_DATABASE_URL";

fn airlock(env: &Env, url: &str, args: &[&str], extra: &[(&str, &str)]) -> Output {
    let mut cmd = env.cmd(args);
    cmd.env(URL, url);
    for (k, v) in extra {
        cmd.env(k, v);
    }
    cmd.output().unwrap().into()
}

fn json(env: &Env, url: &str, args: &[&str], code: i32) -> Value {
    let mut full = vec!["--json"];
    full.extend_from_slice(args);
    airlock(env, url, &full, &[]).expect_json(args, code)
}

fn exec_events(db: &Database, run: &str) -> Vec<(i64, String)> {
    db.admin()
        .query(
            "SELECT n, data FROM events WHERE run = $1 AND kind = 'exec' ORDER BY n",
            &[&run],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

fn spooled(env: &Env, run: &str) -> usize {
    std::fs::read_dir(env.state_dir().join("offline/spool").join(run))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// A cluster of the test's own (it is stopped mid-test), a database in it,
/// and a run started online.
fn online_run() -> (Arc<Cluster>, Database, Env, String) {
    let cluster = Arc::new(Cluster::start().unwrap_or_else(|e| panic!("{e}")));
    let db = cluster.database();
    let env = Env::new();
    let brief = env.write_brief("brief", BRIEF);
    let run = json(&env, &db.url(), &["start", &brief], 0)["run"]
        .as_str()
        .unwrap()
        .to_string();
    (cluster, db, env, run)
}

#[test]
fn a_machine_goes_on_offline_and_flushes_each_record_once_even_killed_halfway() {
    let (cluster, db, env, run) = online_run();
    let url = db.url();
    let out = airlock(
        &env,
        &url,
        &["exec", &run, "--", "sh", "-c", "echo online"],
        &[],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(exec_events(&db, &run).len(), 1);

    cluster.stop();
    // Commands of the run go on, recorded here.
    for n in 1..=2 {
        let out = airlock(
            &env,
            &url,
            &[
                "--json",
                "exec",
                &run,
                "--",
                "sh",
                "-c",
                &format!("echo offline {n}"),
            ],
            &[],
        );
        assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
        let trace = out.json();
        assert!(
            trace["hint"]
                .as_str()
                .unwrap()
                .contains("while the database is out of reach"),
            "{trace}"
        );
        assert_eq!(spooled(&env, &run), n);
    }
    // What decides or has effects refuses, changing nothing.
    for args in [
        vec!["--json", "submit", &run],
        vec!["--json", "approve", &run],
        vec!["--json", "promote", &run],
        vec!["--json", "check", &run],
    ] {
        let out = airlock(&env, &url, &args, &[]);
        assert_eq!(out.code, 3, "{args:?}: {}\n{}", out.stdout, out.stderr);
        assert_eq!(
            out.json()["error"]["code"],
            "database-unreachable",
            "{args:?}"
        );
    }
    // A run this machine does not work on cannot go on offline.
    let out = airlock(
        &env,
        &url,
        &["--json", "exec", "r-unknown", "--", "true"],
        &[],
    );
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert_eq!(spooled(&env, &run), 2);

    cluster.start_again();
    // The first command back flushes; killed right after storing the
    // first record.
    let killed = airlock(
        &env,
        &url,
        &["--json", "list"],
        &[("AIRLOCK_FAILPOINT", "flush:after-commit")],
    );
    assert_ne!(killed.code, 0, "the failpoint kills it");
    assert_eq!(exec_events(&db, &run).len(), 2, "one record stored");
    assert_eq!(spooled(&env, &run), 2, "the spool is kept until all are in");
    // Run again: the rest, each once, in order.
    json(&env, &url, &["list"], 0);
    let events = exec_events(&db, &run);
    assert_eq!(events.len(), 3, "{events:?}");
    assert!(events[1].1.contains("echo offline 1"), "{events:?}");
    assert!(events[2].1.contains("echo offline 2"), "{events:?}");
    assert_eq!(spooled(&env, &run), 0);
    let traces = json(&env, &url, &["logs", &run], 0);
    let numbers: Vec<u64> = traces["traces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["n"].as_u64().unwrap())
        .collect();
    assert_eq!(numbers, [1, 2, 3]);
    let human = airlock(&env, &url, &["logs", &run, "3"], &[]);
    assert!(human.stdout.contains("| offline 2"), "{}", human.stdout);
    // Again: nothing more.
    json(&env, &url, &["list"], 0);
    assert_eq!(exec_events(&db, &run).len(), 3);
    let verified = json(&env, &url, &["ledger", "verify"], 0);
    assert!(verified["first_bad"].is_null(), "{verified}");
    // The run goes on online.
    json(&env, &url, &["check", &run], 0);
    drop(db);
}

#[test]
fn a_run_another_machine_moved_on_meanwhile_is_a_conflict_named() {
    let (cluster, db, env, run) = online_run();
    let url = db.url();
    cluster.stop();
    let out = airlock(
        &env,
        &url,
        &["exec", &run, "--", "sh", "-c", "echo offline"],
        &[],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    cluster.start_again();
    // Another machine (its own state directory) records an event of the run.
    let other = tempfile::tempdir().unwrap();
    let paths = airlock_core::store::Paths {
        state: other.path().join("state"),
        key_dir: other.path().join("keys"),
    };
    {
        use airlock_core::store::Store;
        let mut store = airlock_store_pg::PgStore::open(&url, &paths).unwrap();
        store
            .record_event(&run, "note", serde_json::json!({"by": "another machine"}))
            .unwrap();
    }
    let out = airlock(&env, &url, &["--json", "list"], &[]);
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    let err = out.json()["error"].clone();
    assert_eq!(err["code"], "offline-conflict", "{err}");
    let text = err.to_string();
    assert!(text.contains(&run), "{text}");
    assert!(text.contains("`note`"), "{text}");
    assert!(text.contains("offline/spool"), "{text}");
    // Not merged: no exec event went in, the record is kept.
    assert!(exec_events(&db, &run).is_empty());
    assert_eq!(spooled(&env, &run), 1);
}
