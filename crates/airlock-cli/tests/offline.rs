//! Working offline (issue 20): a machine whose PostgreSQL database goes out
//! of reach goes on with the runs it works on (`exec`), recording locally,
//! and flushes what it recorded when the database is back: each record
//! once, even when a flush is killed halfway; a run another machine moved
//! on meanwhile is a conflict named, never merged silently. What decides
//! or has effects refuses offline. Each test has a cluster of its own,
//! stopped and started again mid-run.

mod common;

use std::sync::Arc;

use common::{BRIEF, Env, Output, WORKFLOW};
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

fn events_of(db: &Database, run: &str) -> Vec<(i64, String, Value)> {
    db.admin()
        .query(
            "SELECT n, kind, data FROM events WHERE run = $1 ORDER BY n",
            &[&run],
        )
        .unwrap()
        .iter()
        .map(|r| {
            (
                r.get(0),
                r.get(1),
                serde_json::from_str(r.get::<_, &str>(2)).unwrap(),
            )
        })
        .collect()
}

fn run_state(db: &Database, run: &str) -> String {
    db.admin()
        .query_one("SELECT state FROM runs WHERE id = $1", &[&run])
        .unwrap()
        .get(0)
}

fn trace_count(db: &Database, run: &str) -> i64 {
    db.admin()
        .query_one("SELECT count(*) FROM traces WHERE run = $1", &[&run])
        .unwrap()
        .get(0)
}

/// The hashes of the records spooled for `run`, in order.
fn spooled_hashes(env: &Env, run: &str) -> Vec<String> {
    let dir = env.state_dir().join("offline/spool").join(run);
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
        .iter()
        .map(|f| {
            let v: Value = serde_json::from_slice(&std::fs::read(f).unwrap()).unwrap();
            v["hash"].as_str().unwrap().to_string()
        })
        .collect()
}

/// Another machine (a state directory of its own) records an event of
/// `run` in the database.
fn another_machine_moves(url: &str, run: &str) {
    let other = tempfile::tempdir().unwrap();
    let paths = airlock_core::store::Paths {
        state: other.path().join("state"),
        key_dir: other.path().join("keys"),
    };
    use airlock_core::store::Store;
    let mut store = airlock_store_pg::PgStore::open(url, &paths).unwrap();
    store
        .record_event(run, "note", serde_json::json!({"by": "another machine"}))
        .unwrap();
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
    assert!(
        text.contains(&format!("airlock ledger spool --resolve {run} --append")),
        "{text}"
    );
    // Not merged: no exec event went in, the record is kept.
    assert!(exec_events(&db, &run).is_empty());
    assert_eq!(spooled(&env, &run), 1);
}

/// Offline, an agent goes on with its loop: commands, a snapshot, a check
/// that moves the run to checked, all recorded here; decisions refuse,
/// naming the database, with nothing spooled for them. Back online, the
/// first command stores each record once, in order, the check moving the
/// run as it did here, and the run goes on to submit.
#[test]
fn an_agent_finishes_its_loop_offline_and_decisions_refuse() {
    let (cluster, db, env, run) = online_run();
    let url = db.url();
    cluster.stop();
    let out = airlock(
        &env,
        &url,
        &[
            "exec",
            &run,
            "--",
            "sh",
            "-c",
            "echo polite > src/polite.txt",
        ],
        &[],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    // A new snapshot is written beside its golden and exits 1, as online.
    let snap = airlock(
        &env,
        &url,
        &[
            "--json", "snap", "run", "greeting", "--run", &run, "--", "echo", "hi",
        ],
        &[],
    );
    assert_eq!(snap.code, 1, "{}\n{}", snap.stdout, snap.stderr);
    assert_eq!(snap.json()["decision"], "new", "{}", snap.stdout);
    let checked = json(&env, &url, &["check", &run], 0);
    assert_eq!(checked["passed"], true, "{checked}");
    let gate_traces: Vec<u64> = checked["gates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["trace"].as_u64().unwrap())
        .collect();
    assert_eq!(gate_traces, [3, 4], "numbered as they will be stored");
    assert_eq!(spooled(&env, &run), 5, "exec, snap, two gates, check");
    // The run is checked here: checking again is allowed, as online.
    let human = airlock(&env, &url, &["check", &run], &[]);
    assert_eq!(human.code, 0, "{}\n{}", human.stdout, human.stderr);
    assert!(human.stdout.contains("check passed"), "{}", human.stdout);
    assert!(
        human.stderr.contains(
            "warning: the database is out of reach: this check is recorded on this machine"
        ),
        "{}",
        human.stderr
    );
    assert_eq!(spooled(&env, &run), 8);

    // Decisions and effects beyond the run refuse, naming the database.
    for args in [
        vec!["--json", "submit", &run],
        vec!["--json", "approve", &run],
        vec!["--json", "reject", &run, "--reason", "no"],
        vec!["--json", "promote", &run],
        vec!["--json", "rollback", &run, "--reason", "no"],
    ] {
        let out = airlock(&env, &url, &args, &[]);
        assert_eq!(out.code, 3, "{args:?}: {}\n{}", out.stdout, out.stderr);
        let err = out.json()["error"].clone();
        assert_eq!(err["code"], "database-unreachable", "{args:?}: {err}");
        assert!(
            err["message"]
                .as_str()
                .unwrap()
                .contains("cannot reach the PostgreSQL database"),
            "{err}"
        );
    }
    let human = airlock(&env, &url, &["approve", &run], &[]);
    assert_eq!(human.code, 3);
    assert!(
        human
            .stderr
            .contains("cannot reach the PostgreSQL database"),
        "{}",
        human.stderr
    );
    assert_eq!(spooled(&env, &run), 8, "nothing spooled for a decision");

    // What is spooled, shown offline.
    let listed = json(&env, &url, &["ledger", "spool"], 0);
    assert_eq!(listed["database"], "out of reach", "{listed}");
    let runs = listed["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 1, "{listed}");
    assert_eq!(runs[0]["run"], run.as_str());
    assert_eq!(runs[0]["records"], 8);
    assert_eq!(runs[0]["traces"], 6);
    assert_eq!(runs[0]["changes"], serde_json::json!(["check", "check"]));
    assert!(
        runs[0]["since"].as_str().unwrap().starts_with("20"),
        "{listed}"
    );
    let human = airlock(&env, &url, &["ledger", "spool"], &[]);
    assert_eq!(human.code, 0, "{}", human.stderr);
    assert!(
        human.stdout.contains(&format!(
            "{run}: 8 record(s): 6 trace(s), then check, check"
        )),
        "{}",
        human.stdout
    );
    assert!(
        human.stdout.contains("the database is out of reach"),
        "{}",
        human.stdout
    );
    cluster.start_again();
    assert_eq!(run_state(&db, &run), "staged");

    // Back: stored once each, in order, and the run checked as here.
    let listed = json(&env, &url, &["ledger", "spool"], 0);
    assert_eq!(listed["database"], "reachable", "{listed}");
    assert!(listed["runs"][0]["conflict"].is_null(), "{listed}");
    assert_eq!(spooled(&env, &run), 8, "`ledger spool` does not flush");
    json(&env, &url, &["list"], 0);
    assert_eq!(spooled(&env, &run), 0);
    let kinds: Vec<String> = events_of(&db, &run).into_iter().map(|e| e.1).collect();
    assert_eq!(
        kinds,
        [
            "start", "exec", "exec", "exec", "exec", "check", "exec", "exec", "check"
        ],
        "{kinds:?}"
    );
    let check = events_of(&db, &run)
        .into_iter()
        .find(|e| e.1 == "check")
        .unwrap();
    assert_eq!(check.2["from"], "staged");
    assert_eq!(check.2["to"], "checked");
    assert_eq!(check.2["offline"]["hash"].as_str().unwrap().len(), 64);
    assert_eq!(run_state(&db, &run), "checked");
    assert_eq!(trace_count(&db, &run), 6);
    json(&env, &url, &["list"], 0);
    assert_eq!(events_of(&db, &run).len(), 9, "nothing twice");
    let verified = json(&env, &url, &["ledger", "verify"], 0);
    assert!(verified["first_bad"].is_null(), "{verified}");
    json(&env, &url, &["submit", &run], 0);
}

/// A conflict resolved as an offline branch: the trace made offline is
/// the run's next trace, the check made on a history that moved on is kept
/// as an `offline-check` event that changes nothing, and one
/// `offline-branch` event lists every record's original hash; the spool is
/// gone and the machine works again. A second resolution finds nothing.
#[test]
fn a_conflict_resolved_as_an_offline_branch_keeps_every_record_and_its_hash() {
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
    json(&env, &url, &["check", &run], 0);
    let hashes = spooled_hashes(&env, &run);
    assert_eq!(hashes.len(), 4, "exec, two gates, check");
    cluster.start_again();
    another_machine_moves(&url, &run);

    // Listed with the conflict, exit 1; nothing stored by listing.
    let out = airlock(&env, &url, &["--json", "ledger", "spool"], &[]);
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    let listed = out.json();
    let conflict = listed["runs"][0]["conflict"].as_str().unwrap();
    assert!(conflict.contains("(`note`)"), "{conflict}");
    let human = airlock(&env, &url, &["ledger", "spool"], &[]);
    assert!(human.stdout.contains("CONFLICT"), "{}", human.stdout);
    let mut text = String::new();
    for args in [vec!["list"], vec!["ledger", "spool"]] {
        let out = airlock(&env, &url, &args, &[]);
        text += &format!(
            "$ airlock {}\n{}{}[exit {}]\n\n",
            args.join(" "),
            out.stdout,
            out.stderr,
            out.code
        );
    }
    assert!(
        human.stdout.contains(&format!("--resolve {run} --append")),
        "{}",
        human.stdout
    );
    // Without --append or --discard, a usage error.
    let out = airlock(&env, &url, &["ledger", "spool", "--resolve", &run], &[]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert_eq!(spooled(&env, &run), 4);
    assert_eq!(trace_count(&db, &run), 0);

    // Killed after its event is committed: run again, it finishes without
    // a second event.
    let killed = airlock(
        &env,
        &url,
        &["ledger", "spool", "--resolve", &run, "--append"],
        &[("AIRLOCK_FAILPOINT", "resolve:after-commit")],
    );
    assert_ne!(killed.code, 0, "the failpoint kills it");
    assert_eq!(spooled(&env, &run), 4, "the spool is kept until the end");
    assert_eq!(trace_count(&db, &run), 3);
    let resolved = json(
        &env,
        &url,
        &["ledger", "spool", "--resolve", &run, "--append"],
        0,
    );
    assert_eq!(resolved["how"], "appended", "{resolved}");
    assert_eq!(resolved["records"], 4);
    assert_eq!(resolved["stored"], 4);
    assert_eq!(spooled(&env, &run), 0);
    let events = events_of(&db, &run);
    let kinds: Vec<&str> = events.iter().map(|e| e.1.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "start",
            "note",
            "exec",
            "exec",
            "exec",
            "offline-check",
            "offline-branch"
        ],
        "{kinds:?}"
    );
    // The run's state is the database's: the offline check changed nothing.
    assert_eq!(run_state(&db, &run), "staged");
    assert_eq!(trace_count(&db, &run), 3);
    assert_eq!(events[5].2["offline"]["hash"], hashes[3].as_str());
    assert_eq!(events[5].2["to"], "checked");
    let branch = &events[6].2;
    let kept: Vec<&str> = branch["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["hash"].as_str().unwrap())
        .collect();
    assert_eq!(kept, hashes, "{branch}");
    assert_eq!(branch["head"]["n"], 2, "{branch}");
    assert_eq!(branch["after"]["n"], 1, "{branch}");
    let out = airlock(&env, &url, &["ledger", "spool"], &[]);
    text += &format!(
        "$ airlock ledger spool\n{}[exit {}]\n",
        out.stdout, out.code
    );
    transcript("offline_conflict_resolved", &env, &run, &text);
    // The machine works again; nothing more is stored.
    json(&env, &url, &["list"], 0);
    assert_eq!(events_of(&db, &run).len(), 7);
    let verified = json(&env, &url, &["ledger", "verify"], 0);
    assert!(verified["first_bad"].is_null(), "{verified}");
    // Resolving again: nothing spooled, said so, nothing written.
    let out = airlock(
        &env,
        &url,
        &["--json", "ledger", "spool", "--resolve", &run, "--append"],
        &[],
    );
    assert_eq!(out.code, 2, "{}\n{}", out.stdout, out.stderr);
    let err = out.json()["error"].clone();
    assert_eq!(err["code"], "invalid-input", "{err}");
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .contains("no records of run"),
        "{err}"
    );
    assert_eq!(events_of(&db, &run).len(), 7);
    // The run goes on online.
    json(&env, &url, &["check", &run], 0);
}

/// A conflict resolved by setting the records aside: they go whole into a
/// file whose path and sha256 the `offline-discarded` event names with the
/// reason; the run gets none of them. No reason is refused, nothing changed.
#[test]
fn a_conflict_set_aside_is_kept_in_a_file_the_ledger_names_with_the_reason() {
    let (cluster, db, env, run) = online_run();
    let url = db.url();
    cluster.stop();
    for n in 1..=2 {
        let cmd = format!("echo offline {n}");
        let out = airlock(&env, &url, &["exec", &run, "--", "sh", "-c", &cmd], &[]);
        assert_eq!(out.code, 0, "{}", out.stderr);
    }
    let hashes = spooled_hashes(&env, &run);
    cluster.start_again();
    another_machine_moves(&url, &run);

    for args in [
        vec!["--json", "ledger", "spool", "--resolve", &run, "--discard"],
        vec![
            "--json",
            "ledger",
            "spool",
            "--resolve",
            &run,
            "--discard",
            "--reason",
            " ",
        ],
    ] {
        let out = airlock(&env, &url, &args, &[]);
        assert_eq!(out.code, 2, "{args:?}: {}\n{}", out.stdout, out.stderr);
        assert_eq!(spooled(&env, &run), 2);
    }
    let out = airlock(
        &env,
        &url,
        &[
            "--json",
            "ledger",
            "spool",
            "--resolve",
            &run,
            "--discard",
            "--reason",
            " ",
        ],
        &[],
    );
    assert!(
        out.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("needs a reason")
    );
    // Inside a run (an agent), refused.
    let out = airlock(
        &env,
        &url,
        &[
            "--json",
            "ledger",
            "spool",
            "--resolve",
            &run,
            "--discard",
            "--reason",
            "x",
        ],
        &[("AIRLOCK_RUN", &run)],
    );
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    assert_eq!(out.json()["error"]["code"], "inside-run");
    assert_eq!(spooled(&env, &run), 2);
    assert_eq!(events_of(&db, &run).len(), 2);

    let resolved = json(
        &env,
        &url,
        &[
            "ledger",
            "spool",
            "--resolve",
            &run,
            "--discard",
            "--reason",
            "the other machine redid this work",
        ],
        0,
    );
    assert_eq!(resolved["how"], "discarded", "{resolved}");
    assert_eq!(resolved["stored"], 0);
    let file = std::path::PathBuf::from(resolved["set_aside"].as_str().unwrap());
    let bytes = std::fs::read(&file).unwrap();
    use sha2::Digest;
    let sha = hex::encode(sha2::Sha256::digest(&bytes));
    assert_eq!(resolved["sha256"], sha.as_str());
    let kept: Vec<Value> = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(kept.len(), 2);
    assert!(
        kept[1]["trace"]["argv"]
            .to_string()
            .contains("echo offline 2")
    );
    assert_eq!(spooled(&env, &run), 0);
    let events = events_of(&db, &run);
    let kinds: Vec<&str> = events.iter().map(|e| e.1.as_str()).collect();
    assert_eq!(kinds, ["start", "note", "offline-discarded"], "{kinds:?}");
    let event = &events[2].2;
    assert_eq!(event["reason"], "the other machine redid this work");
    assert_eq!(event["file"], file.to_str().unwrap());
    assert_eq!(event["sha256"], sha.as_str());
    let listed: Vec<&str> = event["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["hash"].as_str().unwrap())
        .collect();
    assert_eq!(listed, hashes);
    assert!(exec_events(&db, &run).is_empty());
    json(&env, &url, &["list"], 0);
    let verified = json(&env, &url, &["ledger", "verify"], 0);
    assert!(verified["first_bad"].is_null(), "{verified}");
}

/// Two processes of the machine that reach the database at once both
/// flush: each record is stored once, in order, and neither sees the
/// other's half-done flush as a conflict.
#[test]
fn two_processes_flushing_at_once_store_each_record_once_in_order() {
    let (cluster, db, env, run) = online_run();
    let url = db.url();
    cluster.stop();
    for n in 1..=6 {
        let cmd = format!("echo offline {n}");
        let out = airlock(&env, &url, &["exec", &run, "--", "sh", "-c", &cmd], &[]);
        assert_eq!(out.code, 0, "{}", out.stderr);
    }
    cluster.start_again();
    let mut children: Vec<_> = (0..2)
        .map(|_| {
            let mut cmd = env.cmd(&["--json", "list"]);
            cmd.env(URL, &url)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped());
            cmd.spawn().unwrap()
        })
        .collect();
    for child in children.drain(..) {
        let out: Output = child.wait_with_output().unwrap().into();
        assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    }
    let events = exec_events(&db, &run);
    assert_eq!(events.len(), 6, "{events:?}");
    for (i, (_, data)) in events.iter().enumerate() {
        assert!(
            data.contains(&format!("echo offline {}", i + 1)),
            "{events:?}"
        );
    }
    assert_eq!(trace_count(&db, &run), 6);
    assert_eq!(spooled(&env, &run), 0);
    let verified = json(&env, &url, &["ledger", "verify"], 0);
    assert!(verified["first_bad"].is_null(), "{verified}");
}

/// A record edited in the spool after it was written is found at the
/// flush: nothing of the run is stored, the spool is kept.
#[test]
fn a_record_edited_in_the_spool_is_refused_and_nothing_stored() {
    let (cluster, db, env, run) = online_run();
    let url = db.url();
    cluster.stop();
    for _ in 0..2 {
        let out = airlock(&env, &url, &["exec", &run, "--", "true"], &[]);
        assert_eq!(out.code, 0, "{}", out.stderr);
    }
    let first = env
        .state_dir()
        .join("offline/spool")
        .join(&run)
        .join("000001.json");
    let text = std::fs::read_to_string(&first).unwrap();
    std::fs::write(&first, text.replace("\"true\"", "\"false\"")).unwrap();
    cluster.start_again();
    let out = airlock(&env, &url, &["--json", "list"], &[]);
    assert_eq!(out.code, 4, "{}\n{}", out.stdout, out.stderr);
    let err = out.json()["error"].clone();
    assert_eq!(err["code"], "corrupt-state", "{err}");
    assert!(
        err["message"].as_str().unwrap().contains("000001.json"),
        "{err}"
    );
    assert!(exec_events(&db, &run).is_empty());
    assert_eq!(spooled(&env, &run), 2);
}

/// A whole-output transcript, normalized for the test's paths, the run's
/// id, the database's name and port, times and hashes.
fn transcript(name: &str, env: &Env, run: &str, text: &str) {
    let mut settings = insta::Settings::clone_current();
    for (regex, placeholder) in [
        (regex_escape(&env.tmp.path().display().to_string()), "[TMP]"),
        (regex_escape(run), "[RUN]"),
        (
            r"`[^`]+` on 127\.0\.0\.1 port \d+ \(user [^)]+\)".into(),
            "[DATABASE]",
        ),
        (r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z".into(), "[TIME]"),
        (r"\b[0-9a-f]{64}\b".into(), "[DIGEST]"),
        (r"(^|[^-\w])[0-9a-f]{7,16}(…?)".into(), "$1[SHORT]$2"),
    ] {
        settings.add_filter(&regex, placeholder);
    }
    settings.set_omit_expression(true);
    settings.set_prepend_module_to_snapshot(false);
    settings.bind(|| insta::assert_snapshot!(name, text));
}

fn regex_escape(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '/' || c == '_' || c == '-' {
                c.to_string()
            } else {
                format!("\\{c}")
            }
        })
        .collect()
}

/// A workflow with `[conditions]` cannot be checked offline (they read the
/// team's history in the database): refused before any gate runs, nothing
/// spooled.
#[test]
fn a_check_whose_conditions_read_the_database_is_refused_offline_before_any_gate() {
    let (cluster, db, env, run) = online_run();
    let url = db.url();
    env.write(
        ".airlock/workflow.toml",
        &format!(
            "{WORKFLOW}\n[conditions.big]\nwhen = \"diff.files_changed > 40\"\nmessage = \"big\"\neffect = \"warn\"\n"
        ),
    );
    cluster.stop();
    let out = airlock(&env, &url, &["--json", "check", &run], &[]);
    assert_eq!(out.code, 3, "{}\n{}", out.stdout, out.stderr);
    let err = out.json()["error"].clone();
    assert_eq!(err["code"], "database-unreachable", "{err}");
    assert!(
        err.to_string()
            .contains("[conditions] read the team's history"),
        "{err}"
    );
    assert_eq!(spooled(&env, &run), 0, "no gate ran");
    cluster.start_again();
    assert_eq!(run_state(&db, &run), "staged");
}
