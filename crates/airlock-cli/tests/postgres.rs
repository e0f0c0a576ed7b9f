//! airlock pointed at PostgreSQL (`AIRLOCK_DATABASE_URL`): the lifecycle
//! recorded in the database, read back from its rows, and the refusals of
//! a database airlock cannot use. A private cluster per test process, a
//! database per test (airlock_store_pg::testing).

mod common;

use common::{BRIEF, Env, Output, write};
use serde_json::Value;

use airlock_store_pg::testing::{self, Database};

const URL: &str = "AIRLOCK_DATABASE_URL";

fn airlock(env: &Env, url: &str, args: &[&str]) -> Output {
    let mut cmd = env.cmd(args);
    cmd.env(URL, url);
    cmd.output().unwrap().into()
}

fn json(env: &Env, url: &str, args: &[&str], code: i32) -> Value {
    let mut full = vec!["--json"];
    full.extend_from_slice(args);
    airlock(env, url, &full).expect_json(args, code)
}

#[test]
fn the_lifecycle_is_recorded_in_postgresql() {
    let env = Env::new();
    let db: Database = testing::shared().database();
    let url = db.url();
    let brief = env.write_brief("brief", BRIEF);
    let started = json(&env, &url, &["start", &brief], 0);
    let run = started["run"].as_str().unwrap().to_string();
    let wt = std::path::PathBuf::from(started["worktree"].as_str().unwrap());
    write(&wt.join("src/app.sh"), "#!/bin/sh\necho hello, please\n");
    // The agent's command sees neither the URL nor its password.
    let out = airlock(
        &env,
        &url,
        &[
            "exec",
            &run,
            "--",
            "sh",
            "-c",
            "printf '%s' \"${AIRLOCK_DATABASE_URL-unset}\"; env",
        ],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.starts_with("unset"), "{}", out.stdout);
    assert!(
        !out.stdout.contains(testing::APP_PASSWORD),
        "{}",
        out.stdout
    );
    json(&env, &url, &["check", &run], 0);
    json(&env, &url, &["submit", &run], 0);
    json(&env, &url, &["approve", &run], 0);
    json(&env, &url, &["promote", &run], 0);
    let shown = json(&env, &url, &["show", &run, "--no-diff"], 0);
    assert_eq!(shown["state"], "promoted");
    let verified = json(&env, &url, &["ledger", "verify"], 0);
    assert!(verified["first_bad"].is_null(), "{verified}");

    // The rows, read back from PostgreSQL.
    let mut admin = db.admin();
    let state: String = admin
        .query_one("SELECT state FROM runs WHERE id = $1", &[&run])
        .unwrap()
        .get(0);
    assert_eq!(state, "promoted");
    let kinds: Vec<String> = admin
        .query("SELECT kind FROM events WHERE run = $1 ORDER BY n", &[&run])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    for kind in ["start", "exec", "check", "submit", "approve", "promote"] {
        assert!(kinds.iter().any(|k| k == kind), "{kind} in {kinds:?}");
    }
    assert_eq!(kinds[0], "start");
    let numbers: Vec<i64> = admin
        .query("SELECT n FROM events WHERE run = $1 ORDER BY n", &[&run])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(numbers, (1..=kinds.len() as i64).collect::<Vec<_>>());
    let traces: i64 = admin
        .query_one("SELECT count(*) FROM traces WHERE run = $1", &[&run])
        .unwrap()
        .get(0);
    assert!(traces >= 1, "the exec's trace");
    // Nothing of the run went to the local SQLite file.
    let local = env.state_dir().join("ledger.db");
    if local.exists() {
        let conn = rusqlite::Connection::open(&local).unwrap();
        let n: i64 = conn
            .query_row("SELECT count(*) FROM events WHERE run = ?1", [&run], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(n, 0);
    }
    // The main branch has the change.
    assert_eq!(
        env.git(&["show", "main:src/app.sh"]),
        "#!/bin/sh\necho hello, please"
    );
}

/// A refusal as `--json` reports it: the exit code and the code.
fn refused(out: Output, code: &str, exit: i32) -> Value {
    assert_eq!(out.code, exit, "{}\n{}", out.stdout, out.stderr);
    let v = out.json();
    assert_eq!(v["error"]["code"], code, "{v}");
    v["error"].clone()
}

#[test]
fn a_database_nobody_listens_on_is_refused_naming_the_url_to_fix() {
    let env = Env::new();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("postgres://app:secret-pw@127.0.0.1:{port}/airlock");
    let brief = env.write_brief("brief", BRIEF);
    let err = refused(
        airlock(&env, &url, &["--json", "start", &brief]),
        "database-unreachable",
        3,
    );
    let text = err.to_string();
    assert!(
        text.contains("cannot reach the PostgreSQL database"),
        "{text}"
    );
    assert!(text.contains(&format!("port {port}")), "{text}");
    assert!(text.contains("AIRLOCK_DATABASE_URL"), "{text}");
    assert!(!text.contains("secret-pw"), "never the password: {text}");
    // Nothing started: no worktree, and no local ledger either.
    assert_eq!(env.git(&["branch", "--list", "airlock/*"]), "");
    // The human message says the same.
    let out = airlock(&env, &url, &["list"]);
    assert_eq!(out.code, 3);
    assert!(
        out.stderr.contains("cannot reach the PostgreSQL database"),
        "{}",
        out.stderr
    );
}

#[test]
fn wrong_credentials_are_refused_naming_them() {
    let env = Env::new();
    let db = testing::shared().database();
    let url = db.url_with("airlock_app", "not-the-password");
    let err = refused(
        airlock(&env, &url, &["--json", "list"]),
        "database-credentials",
        3,
    );
    let text = err.to_string();
    assert!(text.contains("refused airlock's credentials"), "{text}");
    assert!(text.contains("password"), "{text}");
    assert!(!text.contains("not-the-password"), "{text}");
    // Nothing was set up in the database.
    let tables: i64 = db
        .admin()
        .query_one(
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(tables, 0);
}

#[test]
fn a_database_of_a_newer_airlock_is_refused_untouched() {
    let env = Env::new();
    let db = testing::shared().database();
    let url = db.url();
    json(&env, &url, &["list"], 0);
    let mut admin = db.admin();
    admin
        .batch_execute("UPDATE airlock_schema SET version = 999")
        .unwrap();
    let brief = env.write_brief("brief", BRIEF);
    let err = refused(
        airlock(&env, &url, &["--json", "start", &brief]),
        "database-newer-schema",
        3,
    );
    let text = err.to_string();
    assert!(text.contains("set up by a newer airlock"), "{text}");
    assert!(text.contains("999"), "{text}");
    assert!(text.contains("upgrade airlock"), "{text}");
    let runs: i64 = admin
        .query_one("SELECT count(*) FROM runs", &[])
        .unwrap()
        .get(0);
    let version: i32 = admin
        .query_one("SELECT version FROM airlock_schema", &[])
        .unwrap()
        .get(0);
    assert_eq!((runs, version), (0, 999));
}

#[test]
fn a_url_that_is_not_postgresql_is_refused() {
    let env = Env::new();
    let err = refused(
        airlock(&env, "postgres://127.0.0.1:notaport/x", &["--json", "list"]),
        "database-url-invalid",
        2,
    );
    assert!(err.to_string().contains("not a PostgreSQL URL"), "{err}");
}

#[test]
fn an_exec_pointed_at_postgresql_is_never_served_by_the_local_stores_ledger_server() {
    let env = Env::new();
    // The local store's runs, whose execs leave a ledger server warm.
    let (local, _) = env.start(BRIEF);
    for _ in 0..3 {
        let out = env.airlock(&["exec", &local, "--", "true"]);
        assert_eq!(out.code, 0, "{}", out.stderr);
    }
    let db = testing::shared().database();
    let url = db.url();
    let brief = env.write_brief("brief2", BRIEF);
    let run = json(&env, &url, &["start", &brief], 0)["run"]
        .as_str()
        .unwrap()
        .to_string();
    for _ in 0..3 {
        let out = airlock(&env, &url, &["exec", &run, "--", "true"]);
        assert_eq!(out.code, 0, "{}", out.stderr);
    }
    let traces: i64 = db
        .admin()
        .query_one("SELECT count(*) FROM traces WHERE run = $1", &[&run])
        .unwrap()
        .get(0);
    assert_eq!(traces, 3, "every trace in the database");
    // And the local store got none of them.
    let conn = rusqlite::Connection::open(env.state_dir().join("ledger.db")).unwrap();
    let local_traces: i64 = conn
        .query_row("SELECT count(*) FROM traces WHERE run = ?1", [&run], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(local_traces, 0);
    // Back on the local store, its runs are as they were.
    let out = env.airlock(&["exec", &local, "--", "true"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
}

/// Adds `table` to the main checkout's workflow and commits it.
fn add_to_workflow(env: &Env, table: &str) {
    let path = env.repo.join(".airlock/workflow.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    write(&path, &format!("{text}\n{table}"));
    env.git(&["commit", "-q", "-am", "workflow: [store]"]);
}

/// A command with no `AIRLOCK_DATABASE_URL`, whatever the test's own
/// environment holds.
fn airlock_no_env(env: &Env, args: &[&str]) -> Output {
    let mut cmd = env.cmd(args);
    cmd.env_remove(URL);
    cmd.output().unwrap().into()
}

fn events_of(db: &Database, run: &str) -> i64 {
    db.admin()
        .query_one("SELECT count(*) FROM events WHERE run = $1", &[&run])
        .unwrap()
        .get(0)
}

#[test]
fn the_workflows_store_url_selects_the_database_and_the_environment_wins() {
    let env = Env::new();
    let db = testing::shared().database();
    let (url, pgpass) = db.url_and_pgpass();
    // The password is in the user's password file, never in the workflow.
    let pgpass_path = env.home.join(".pgpass");
    write(&pgpass_path, &pgpass);
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&pgpass_path, std::fs::Permissions::from_mode(0o600)).unwrap();
    add_to_workflow(&env, &format!("[store]\nurl = {url:?}\n"));
    let brief = env.write_brief("brief", BRIEF);
    let out = airlock_no_env(&env, &["--json", "start", &brief]);
    let run = out.expect_json(&["start"], 0)["run"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(events_of(&db, &run), 1, "the start is in the database");
    assert!(
        !env.state_dir().join("ledger.db").exists(),
        "nothing in a local SQLite file"
    );
    let out = airlock_no_env(&env, &["exec", &run, "--", "true"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(events_of(&db, &run), 2);

    // The environment wins over the workflow.
    let other = testing::shared().database();
    let brief2 = env.write_brief("brief2", BRIEF);
    let run2 = json(&env, &other.url(), &["start", &brief2], 0)["run"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(events_of(&other, &run2), 1);
    assert_eq!(events_of(&db, &run2), 0);
    // Each store knows only its own runs.
    let listed = airlock_no_env(&env, &["--json", "list"]).expect_json(&["list"], 0);
    let text = listed.to_string();
    assert!(text.contains(&run) && !text.contains(&run2), "{text}");
}

#[test]
fn a_password_in_the_workflows_store_url_is_refused_at_its_line() {
    let env = Env::new();
    let db = testing::shared().database();
    add_to_workflow(&env, &format!("[store]\nurl = {:?}\n", db.url()));
    let line = std::fs::read_to_string(env.repo.join(".airlock/workflow.toml"))
        .unwrap()
        .lines()
        .position(|l| l.starts_with("url = "))
        .unwrap()
        + 1;
    let brief = env.write_brief("brief", BRIEF);
    // Refused with the environment unset, and with it set (the file is
    // committed: the password is out either way).
    for out in [
        airlock_no_env(&env, &["--json", "start", &brief]),
        airlock(&env, &db.url(), &["--json", "start", &brief]),
    ] {
        let err = refused(out, "database-url-password", 2);
        let text = err.to_string();
        assert!(text.contains("carries a password"), "{text}");
        assert!(text.contains("~/.pgpass"), "{text}");
        assert!(
            text.contains(&format!("\"line\":{line}")),
            "line {line}: {text}"
        );
    }
    let out = airlock_no_env(&env, &["list"]);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr
            .contains(&format!(".airlock/workflow.toml:{line}:")),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("use ~/.pgpass"), "{}", out.stderr);
    // Nothing was started anywhere.
    assert_eq!(env.git(&["branch", "--list", "airlock/*"]), "");
    assert!(!env.state_dir().join("ledger.db").exists());
    let tables: i64 = db
        .admin()
        .query_one(
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(tables, 0);
}

/// What `airlock logs RUN N --json` says of the stream `name`.
fn stream_of(v: &Value, name: &str) -> Value {
    v["streams"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["stream"] == name)
        .cloned()
        .unwrap_or_else(|| panic!("no {name} in {v}"))
}

#[test]
fn another_machine_reads_a_runs_logs_from_the_shared_store_checked() {
    // Two machines: two clones with their own homes and state, one
    // database, one shared log directory.
    let a = Env::new();
    let b = Env::new();
    let db = testing::shared().database();
    let url = db.url();
    let shared = a.tmp.path().join("shared-logs");
    for m in [&a, &b] {
        add_to_workflow(
            m,
            &format!("[store]\nlogs = {:?}\n", shared.display().to_string()),
        );
    }
    let brief = a.write_brief("brief", BRIEF);
    let run = json(&a, &url, &["start", &brief], 0)["run"]
        .as_str()
        .unwrap()
        .to_string();
    let out = airlock(
        &a,
        &url,
        &[
            "exec",
            &run,
            "--",
            "sh",
            "-c",
            "echo built on machine a; echo warned >&2",
        ],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    // Machine a's local logs are not on b (another machine's disk).
    let v = json(&a, &url, &["logs", &run], 0);
    for s in ["stdout", "stderr"] {
        std::fs::remove_file(v["traces"][0][s]["path"].as_str().unwrap()).unwrap();
    }
    let v = json(&b, &url, &["logs", &run, "1"], 0);
    let stdout = stream_of(&v, "stdout");
    assert_eq!(stdout["intact"], true, "{v}");
    assert!(
        stdout["path"]
            .as_str()
            .unwrap()
            .starts_with(shared.to_str().unwrap()),
        "{v}"
    );
    let human = airlock(&b, &url, &["logs", &run, "1"]);
    assert_eq!(human.code, 0, "{}", human.stderr);
    assert!(
        human.stdout.contains("| built on machine a"),
        "{}",
        human.stdout
    );
    assert!(human.stdout.contains("| warned"), "{}", human.stdout);
    let tail = airlock(
        &b,
        &url,
        &["logs", &run, "1", "--stream", "stdout", "--tail", "1"],
    );
    assert!(
        tail.stdout.contains("| built on machine a"),
        "{}",
        tail.stdout
    );

    // The blob cut short, then changed: named, never shown.
    let blob = std::path::PathBuf::from(stdout["path"].as_str().unwrap());
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&blob).unwrap().permissions().mode() & 0o222,
        0,
        "read-only"
    );
    for forged in ["built on", "built on machine b\n"] {
        std::fs::set_permissions(&blob, std::fs::Permissions::from_mode(0o644)).unwrap();
        std::fs::write(&blob, forged).unwrap();
        let out = airlock(&b, &url, &["logs", &run, "1"]);
        assert_eq!(out.code, 4, "{}\n{}", out.stdout, out.stderr);
        assert!(!out.stdout.contains("built on"), "{}", out.stdout);
        assert!(
            out.stderr.contains(&blob.display().to_string()),
            "{}",
            out.stderr
        );
        assert!(
            out.stderr.contains("changed or cut short"),
            "{}",
            out.stderr
        );
        let err = refused(
            airlock(&b, &url, &["--json", "logs", &run, "1"]),
            "log-corrupt",
            4,
        );
        assert!(!err.to_string().contains("built on"), "{err}");
    }
}
