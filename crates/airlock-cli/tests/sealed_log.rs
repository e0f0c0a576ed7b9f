//! The sealed log (issue 20): the chains' heads sealed into a Merkle log
//! whose checkpoints, signed by each machine's key, live on the team's git
//! remote (`refs/airlock/log`). Machines are clones with their own homes
//! (own keys, own remembered checkpoint) against one bare remote and one
//! PostgreSQL database (airlock_store_pg::testing); the attacker is the
//! database superuser, who drops the guard triggers and rewrites rows.

mod common;

use std::path::{Path, PathBuf};

use common::{BRIEF, Env, Output, write};
use serde_json::Value;

use airlock_store_pg::testing::{self, Database};

const URL: &str = "AIRLOCK_DATABASE_URL";

/// One machine: a clone with its own HOME (so its own airlock key and key
/// directory) and its principal.
struct Machine {
    env: Env,
    principal: &'static str,
    url: String,
}

impl Machine {
    fn airlock(&self, args: &[&str]) -> Output {
        let mut cmd = self.env.cmd(args);
        // No URL: the machine's own SQLite store.
        if !self.url.is_empty() {
            cmd.env(URL, &self.url);
        }
        cmd.env("AIRLOCK_PRINCIPAL", self.principal);
        cmd.output().unwrap().into()
    }

    fn json(&self, args: &[&str], code: i32) -> Value {
        let mut full = vec!["--json"];
        full.extend_from_slice(args);
        self.airlock(&full).expect_json(args, code)
    }

    /// A refusal: exit code 1, the code, and the whole error.
    fn refused(&self, args: &[&str], code: &str) -> Value {
        let mut full = vec!["--json"];
        full.extend_from_slice(args);
        let out = self.airlock(&full);
        assert_eq!(out.code, 1, "{args:?}: {}\n{}", out.stdout, out.stderr);
        let v = out.json();
        assert_eq!(v["error"]["code"], code, "{args:?}: {v}");
        v["error"].clone()
    }

    fn key_line(&self) -> String {
        // `init` makes the machine's key (a clone's workflow is already
        // committed; init leaves it).
        let init = self.airlock(&["init"]);
        assert_eq!(init.code, 0, "{}", init.stderr);
        self.json(&["key", "public"], 0)["public_key"]
            .as_str()
            .unwrap()
            .to_string()
    }
}

/// A team: machine A (where `init` was done), a bare remote, machine B
/// cloned from it, both keys in `.airlock/runners` on `main`, the
/// workflow's `[team] remote = "origin"`.
struct Team {
    a: Machine,
    b: Machine,
    remote: PathBuf,
    db: Database,
}

fn clone_machine(remote: &Path, principal: &'static str, url: &str) -> Machine {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let repo = tmp.path().join("repo");
    std::fs::create_dir_all(&home).unwrap();
    let env = Env { tmp, repo, home };
    env.git_in(
        env.tmp.path(),
        &["clone", "-q", &remote.display().to_string(), "repo"],
    );
    Machine {
        env,
        principal,
        url: url.to_string(),
    }
}

fn team() -> Team {
    team_on(true)
}

/// A team on PostgreSQL (`postgres`) or on each machine's SQLite store.
fn team_on(postgres: bool) -> Team {
    let db = testing::shared().database();
    let url = if postgres { db.url() } else { String::new() };
    let a = Machine {
        env: Env::new(),
        principal: "a@example.com",
        url: url.clone(),
    };
    let remote = a.env.tmp.path().join("remote.git");
    a.env.git(&[
        "clone",
        "-q",
        "--bare",
        &a.env.repo.display().to_string(),
        &remote.display().to_string(),
    ]);
    a.env
        .git(&["remote", "add", "origin", &remote.display().to_string()]);
    let b = clone_machine(&remote, "b@example.com", &url);
    let runners = format!(
        "a@example.com {}\nb@example.com {}\n",
        a.key_line(),
        b.key_line()
    );
    a.env.write(".airlock/runners", &runners);
    let workflow = std::fs::read_to_string(a.env.repo.join(".airlock/workflow.toml")).unwrap();
    a.env.write(
        ".airlock/workflow.toml",
        &format!("{workflow}\n[team]\nremote = \"origin\"\n"),
    );
    a.env.git(&["add", "-A"]);
    a.env.git(&["commit", "-q", "-m", "team mode"]);
    a.env.git(&["push", "-q", "origin", "main"]);
    b.env.git(&["pull", "-q", "origin", "main"]);
    Team { a, b, remote, db }
}

impl Team {
    /// A run started, changed, checked, submitted and approved on A, its
    /// events sealed up to the approval.
    fn approved_run(&self) -> String {
        let brief = self.a.env.write_brief("brief", BRIEF);
        let started = self.a.json(&["start", &brief], 0);
        let run = started["run"].as_str().unwrap().to_string();
        let wt = PathBuf::from(started["worktree"].as_str().unwrap());
        write(&wt.join("src/app.sh"), "#!/bin/sh\necho hello, please\n");
        self.a.json(&["check", &run], 0);
        self.a.json(&["submit", &run], 0);
        self.a.json(&["approve", &run], 0);
        run
    }

    /// A appends to another chain (a second run started), so that its
    /// signed head record, which names its last event only, no longer
    /// covers the run under attack: what is left to find the tampering is
    /// the sealed log.
    fn a_moves_on(&self) {
        let brief = self.a.env.write_brief("other", BRIEF);
        self.a.json(&["start", &brief], 0);
    }

    fn remote_git(&self, args: &[&str]) -> String {
        self.a.env.git_in(&self.remote, args)
    }

    /// Runs `sql` as the database superuser with the guard triggers gone.
    fn superuser(&self, sql: &str) {
        let mut admin = self.db.admin();
        admin
            .batch_execute(
                "DROP TRIGGER IF EXISTS events_no_update ON events;
                 DROP TRIGGER IF EXISTS log_leaves_no_update ON log_leaves;",
            )
            .unwrap();
        admin.batch_execute(sql).unwrap();
    }

    /// Rewrites run `run`'s chain from its second event with `data` in it,
    /// every later hash recomputed, and its head moved: a chain that
    /// verifies on its own.
    fn rewrite_chain(&self, run: &str, data: &str, also_leaves: bool) {
        let mut admin = self.db.admin();
        self.superuser("SELECT 1");
        let rows = admin
            .query(
                "SELECT seq, n, ts, run, kind, data FROM events WHERE chain = $1 ORDER BY n",
                &[&run],
            )
            .unwrap();
        let mut prev: String = admin
            .query_one(
                "SELECT hash FROM events WHERE chain = $1 AND n = 1",
                &[&run],
            )
            .unwrap()
            .get(0);
        for (i, row) in rows.iter().enumerate().skip(1) {
            let (seq, n, ts, run_col, kind): (i64, i64, String, Option<String>, String) =
                (row.get(0), row.get(1), row.get(2), row.get(3), row.get(4));
            let body: String = if i == 1 { data.to_string() } else { row.get(5) };
            let hash = airlock_ledger::hash_event(
                seq as u64,
                &ts,
                run_col.as_deref(),
                &kind,
                &body,
                &prev,
            );
            admin
                .execute(
                    "UPDATE events SET data = $1, prev = $2, hash = $3 WHERE seq = $4",
                    &[&body, &prev, &hash, &seq],
                )
                .unwrap();
            admin
                .execute(
                    "UPDATE chains SET hash = $1 WHERE chain = $2 AND n = $3",
                    &[&hash, &run, &n],
                )
                .unwrap();
            if also_leaves {
                admin
                    .execute(
                        "UPDATE log_leaves SET hash = $1 WHERE chain = $2 AND n = $3",
                        &[&hash, &run, &n],
                    )
                    .unwrap();
            }
            prev = hash;
        }
    }

    /// `promote` refused with `code` and nothing moved on the target.
    fn promote_refused(&self, run: &str, code: &str) -> Value {
        let main_before = self.a.env.git(&["rev-parse", "main"]);
        let remote_main = self.remote_git(&["rev-parse", "main"]);
        let err = self.a.refused(&["promote", run], code);
        assert_eq!(self.a.env.git(&["rev-parse", "main"]), main_before);
        assert_eq!(self.remote_git(&["rev-parse", "main"]), remote_main);
        assert_eq!(
            self.a.env.git(&["show", "main:src/app.sh"]),
            "#!/bin/sh\necho hello",
            "the change was not merged"
        );
        err
    }

    /// `ledger verify --remote` on `machine`: exit 1 and its problems.
    fn verify_fails(&self, machine: &Machine) -> Vec<String> {
        let v = machine.json(&["ledger", "verify", "--remote"], 1);
        v["problems"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p.as_str().unwrap().to_string())
            .collect()
    }
}

/// The run statement of a proof bundle.
fn run_statement(bundle: &str) -> Value {
    use base64::Engine;
    for line in bundle.lines() {
        let env: Value = serde_json::from_str(line).unwrap();
        let payload = base64::engine::general_purpose::STANDARD
            .decode(env["payload"].as_str().unwrap())
            .unwrap();
        let statement: Value = serde_json::from_slice(&payload).unwrap();
        if statement["predicateType"] == "https://airlock.dev/run/v1" {
            return statement;
        }
    }
    panic!("no run statement in the bundle");
}

fn any(problems: &[String], needle: &str) -> bool {
    problems.iter().any(|p| p.contains(needle))
}

#[test]
fn promote_seals_the_run_and_pushes_a_checkpoint_ssh_keygen_verifies() {
    let t = team();
    let run = t.approved_run();
    let promoted = t.a.json(&["promote", &run], 0);
    assert_eq!(promoted["run"], run.as_str(), "{promoted}");
    // The checkpoint is a commit on the remote's refs/airlock/log.
    let commit = t.remote_git(&["rev-parse", "refs/airlock/log"]);
    let text = t.remote_git(&["show", &format!("{commit}:checkpoint")]);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(lines[0].starts_with("airlock.dev/log/"), "{text}");
    let size: u64 = lines[1].parse().unwrap();
    assert!(size >= 1, "{text}");
    assert_eq!(
        t.remote_git(&["show", &format!("{commit}:signer")]),
        "a@example.com"
    );
    // ssh-keygen alone verifies it against the runners file.
    let dir = t.a.env.tmp.path().join("verify");
    std::fs::create_dir_all(&dir).unwrap();
    for (name, spec) in [
        ("checkpoint", format!("{commit}:checkpoint")),
        ("checkpoint.sig", format!("{commit}:checkpoint.sig")),
        ("runners", "main:.airlock/runners".to_string()),
    ] {
        let out = std::process::Command::new("git")
            .args(["--git-dir", &t.remote.display().to_string(), "show", &spec])
            .output()
            .unwrap();
        std::fs::write(dir.join(name), out.stdout).unwrap();
    }
    let verified = std::process::Command::new("ssh-keygen")
        .args(["-Y", "verify", "-f", "runners", "-I", "a@example.com"])
        .args(["-n", "airlock-checkpoint", "-s", "checkpoint.sig"])
        .current_dir(&dir)
        .stdin(std::fs::File::open(dir.join("checkpoint")).unwrap())
        .output()
        .unwrap();
    assert!(
        verified.status.success(),
        "{}",
        String::from_utf8_lossy(&verified.stderr)
    );
    // Both machines find the database agrees with it.
    let a = t.a.json(&["ledger", "verify", "--remote"], 0);
    assert_eq!(a["problems"], serde_json::json!([]), "{a}");
    let b = t.b.json(&["ledger", "verify", "--remote"], 0);
    assert_eq!(b["checkpoint"]["commit"], commit.as_str(), "{b}");
    t.b.json(&["review"], 0);
    // B seals next: its checkpoint extends A's.
    let sealed = t.b.json(&["ledger", "seal"], 0);
    let b_commit = sealed["checkpoint"]["commit"].as_str().unwrap().to_string();
    assert_eq!(
        t.remote_git(&["rev-parse", "refs/airlock/log"]),
        b_commit,
        "{sealed}"
    );
    // A proof made now records the checkpoint its machine last verified.
    let brief = t.a.env.write_brief("second", BRIEF);
    let started = t.a.json(&["start", &brief], 0);
    let second = started["run"].as_str().unwrap().to_string();
    let wt = PathBuf::from(started["worktree"].as_str().unwrap());
    write(&wt.join("src/app.sh"), "#!/bin/sh\necho hello there\n");
    t.a.json(&["check", &second], 0);
    t.a.json(&["review"], 0);
    let submitted = t.a.json(&["submit", &second], 0);
    let bundle = std::fs::read_to_string(submitted["proof"].as_str().unwrap()).unwrap();
    let recorded = run_statement(&bundle)["predicate"]["checkpoint"].clone();
    assert_eq!(recorded["commit"], b_commit.as_str(), "{recorded}");
    assert_eq!(recorded["principal"], "b@example.com", "{recorded}");
    // An agent cannot seal: from inside a run it is refused, nothing pushed.
    let log_before = t.remote_git(&["rev-parse", "refs/airlock/log"]);
    let mut cmd = t.a.env.cmd(&["--json", "ledger", "seal"]);
    cmd.env(URL, &t.a.url).env("AIRLOCK_RUN", &second);
    let out: Output = cmd.output().unwrap().into();
    assert_eq!(out.code, 1, "{}", out.stdout);
    assert_eq!(out.json()["error"]["code"], "inside-run", "{}", out.stdout);
    assert_eq!(t.remote_git(&["rev-parse", "refs/airlock/log"]), log_before);
    if sealed["pushed"] == true {
        assert_eq!(
            t.remote_git(&["rev-parse", &format!("{b_commit}^")]),
            commit,
            "a checkpoint's parent is the one before"
        );
    }
}

#[test]
fn a_sealed_event_body_updated_by_the_superuser_is_named_and_promote_refused() {
    let t = team();
    let run = t.approved_run();
    t.a.json(&["ledger", "seal"], 0);
    t.a_moves_on();
    t.superuser(&format!(
        "UPDATE events SET data = '{{\"forged\": true}}' WHERE chain = '{run}' AND n = 2"
    ));
    let problems = t.verify_fails(&t.b);
    assert!(
        any(&problems, "does not match its contents"),
        "{problems:?}"
    );
    let err = t.promote_refused(&run, "log-inconsistent");
    assert!(err.to_string().contains("edited"), "{err}");
}

#[test]
fn a_sealed_tail_deleted_by_the_superuser_is_named_and_promote_refused() {
    let t = team();
    let run = t.approved_run();
    t.a.json(&["ledger", "seal"], 0);
    t.a_moves_on();
    // The approval and everything after the submission, deleted, and the
    // chain's head moved back so the chain alone looks whole.
    t.superuser(&format!(
        "DELETE FROM events WHERE chain = '{run}' AND kind = 'approve';
         UPDATE chains SET n = (SELECT max(n) FROM events WHERE chain = '{run}'),
                           hash = (SELECT hash FROM events WHERE chain = '{run}' ORDER BY n DESC LIMIT 1)
         WHERE chain = '{run}';"
    ));
    let problems = t.verify_fails(&t.b);
    assert!(
        any(&problems, &format!("of run {run} was sealed")) && any(&problems, "deleted"),
        "{problems:?}"
    );
    let err = t.promote_refused(&run, "log-inconsistent");
    assert!(err.to_string().contains("deleted"), "{err}");
}

#[test]
fn a_whole_chain_rewritten_with_recomputed_hashes_is_named_and_promote_refused() {
    let t = team();
    let run = t.approved_run();
    t.a.json(&["ledger", "seal"], 0);
    t.a_moves_on();
    t.rewrite_chain(&run, "{\"forged\":true}", false);
    // The chain verifies on its own: only the seal shows it.
    let plain = t.b.json(&["ledger", "verify"], 0);
    assert!(plain["chain"]["first_bad"].is_null(), "{plain}");
    let problems = t.verify_fails(&t.b);
    assert!(any(&problems, "the event was rewritten"), "{problems:?}");
    let err = t.promote_refused(&run, "log-inconsistent");
    assert!(err.to_string().contains("rewritten"), "{err}");
}

#[test]
fn unsealed_events_dropped_by_the_superuser_are_named_by_the_machine_that_appended_them() {
    let t2 = team();
    let brief = t2.a.env.write_brief("brief", BRIEF);
    let started = t2.a.json(&["start", &brief], 0);
    let run = started["run"].as_str().unwrap().to_string();
    let wt = PathBuf::from(started["worktree"].as_str().unwrap());
    write(&wt.join("src/app.sh"), "#!/bin/sh\necho hello, please\n");
    t2.a.json(&["check", &run], 0);
    t2.a.json(&["submit", &run], 0);
    // Sealed up to the submission; the approval is appended after.
    t2.a.json(&["ledger", "seal"], 0);
    t2.a.json(&["approve", &run], 0);
    t2.a_moves_on();
    // The approval, never sealed, dropped with its chain's head moved back.
    t2.superuser(&format!(
        "DELETE FROM events WHERE chain = '{run}' AND kind = 'approve';
         UPDATE chains SET n = (SELECT max(n) FROM events WHERE chain = '{run}'),
                           hash = (SELECT hash FROM events WHERE chain = '{run}' ORDER BY n DESC LIMIT 1)
         WHERE chain = '{run}';"
    ));
    // The checkpoints alone cannot show it (B has no notes of A's events);
    // A, which appended it, names it.
    t2.b.json(&["ledger", "verify", "--remote"], 0);
    let problems = t2.verify_fails(&t2.a);
    assert!(
        any(&problems, "appended by this machine and not sealed yet") && any(&problems, "dropped"),
        "{problems:?}"
    );
    let err = t2.promote_refused(&run, "log-inconsistent");
    assert!(err.to_string().contains("dropped"), "{err}");
}

#[test]
fn two_members_shown_different_histories_detect_it() {
    let t = team();
    let run = t.approved_run();
    t.a.json(&["ledger", "seal"], 0);
    // A verifies (and remembers) the sealed log.
    t.a.json(&["ledger", "verify", "--remote"], 0);
    t.a_moves_on();
    // The superuser rewrites the run's chain and its leaves too, so the
    // database agrees with itself; B joins only now.
    t.rewrite_chain(&run, "{\"forged\":true}", true);
    let err = t.b.refused(&["review"], "log-inconsistent");
    assert!(
        err.to_string()
            .contains("do not hash to the root of the checkpoint the remote holds"),
        "{err}"
    );
    let err = t.a.refused(&["review"], "log-inconsistent");
    assert!(
        err.to_string().contains("checkpoint this machine verified"),
        "{err}"
    );
    t.promote_refused(&run, "log-inconsistent");
}

#[test]
fn a_checkpoint_signed_by_a_key_not_in_runners_is_refused() {
    let t = team();
    t.approved_run();
    // B seals and pushes; then B's key leaves the runners file.
    t.b.json(&["ledger", "seal"], 0);
    let runners = std::fs::read_to_string(t.a.env.repo.join(".airlock/runners")).unwrap();
    let only_a: String = runners
        .lines()
        .filter(|l| l.starts_with("a@"))
        .map(|l| format!("{l}\n"))
        .collect();
    t.a.env.write(".airlock/runners", &only_a);
    t.a.env.git(&["commit", "-q", "-am", "B is no runner"]);
    // Read from the remote's tip: pushed, it counts.
    t.a.env.git(&["push", "-q", "origin", "main"]);
    let err = t.a.refused(&["review"], "checkpoint-invalid");
    assert!(err.to_string().contains("b@example.com"), "{err}");
    let err =
        t.a.refused(&["ledger", "verify", "--remote"], "checkpoint-invalid");
    assert!(err.to_string().contains("not trusted"), "{err}");
}

#[test]
fn a_checkpoint_ref_rewound_on_the_remote_is_refused() {
    let t = team();
    let run = t.approved_run();
    let first = t.a.json(&["ledger", "seal"], 0);
    let first = first["checkpoint"]["commit"].as_str().unwrap().to_string();
    t.a.json(&["redirect", &run, "--reason", "again"], 0);
    let second = t.a.json(&["ledger", "seal"], 0);
    assert_eq!(second["pushed"], true, "{second}");
    // Someone with push rights rewinds the log to the first checkpoint.
    t.remote_git(&["update-ref", "refs/airlock/log", &first]);
    let err = t.a.refused(&["review"], "log-inconsistent");
    assert!(err.to_string().contains("was rewound"), "{err}");
    let problems = t.verify_fails(&t.a);
    assert!(any(&problems, "was rewound"), "{problems:?}");
}

#[test]
fn two_machines_sealing_at_once_leave_one_linear_log_covering_both() {
    let t = team();
    t.approved_run();
    // B appends too (its own run), so both have something to seal.
    let brief = t.b.env.write_brief("b-run", BRIEF);
    t.b.json(&["start", &brief], 0);
    let spawn = |m: &Machine| {
        let mut cmd = m.env.cmd(&["--json", "ledger", "seal"]);
        cmd.env(URL, &m.url).env("AIRLOCK_PRINCIPAL", m.principal);
        cmd.stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn(&t.a), spawn(&t.b));
    let a: Output = a.wait_with_output().unwrap().into();
    let b: Output = b.wait_with_output().unwrap().into();
    assert_eq!(a.code, 0, "{}\n{}", a.stdout, a.stderr);
    assert_eq!(b.code, 0, "{}\n{}", b.stdout, b.stderr);
    let leaves: i64 =
        t.db.admin()
            .query_one("SELECT count(*) FROM log_leaves", &[])
            .unwrap()
            .get(0);
    let tip = t.remote_git(&["rev-parse", "refs/airlock/log"]);
    let text = t.remote_git(&["show", &format!("{tip}:checkpoint")]);
    assert_eq!(
        text.lines().nth(1),
        Some(leaves.to_string().as_str()),
        "{text}"
    );
    // One line of history: every checkpoint commit has at most one parent.
    let parents = t.remote_git(&["rev-list", "--parents", "refs/airlock/log"]);
    assert!(
        parents.lines().all(|l| l.split(' ').count() <= 2),
        "{parents}"
    );
    t.a.json(&["ledger", "verify", "--remote"], 0);
    t.b.json(&["ledger", "verify", "--remote"], 0);
}

#[test]
fn outside_team_mode_a_machine_keeps_no_notes_of_unsealed_events() {
    let env = Env::new();
    let db = testing::shared().database();
    let brief = env.write_brief("brief", BRIEF);
    let mut cmd = env.cmd(&["--json", "start", &brief]);
    cmd.env(URL, db.url());
    let out: Output = cmd.output().unwrap().into();
    assert_eq!(out.code, 0, "{}", out.stderr);
    // No `[team] remote`: nothing would ever settle the notes, so none are
    // kept (they would grow for ever).
    let log_dir = env.home.join(".config/airlock/log");
    let notes: Vec<_> = std::fs::read_dir(&log_dir)
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(notes.is_empty(), "{notes:?}");
}

#[test]
fn promote_refuses_when_the_remote_is_gone_and_review_falls_back_to_the_remembered_checkpoint() {
    let t = team();
    let run = t.approved_run();
    t.a.json(&["ledger", "seal"], 0);
    t.a.json(&["ledger", "verify", "--remote"], 0);
    // The remote goes away: nothing can be sealed nor pushed, so nothing is
    // promoted. With `[team] remote` the promotion fetches first, so the
    // refusal is the remote's, before any seal is tried.
    let away = t.a.env.tmp.path().join("remote-away.git");
    std::fs::rename(&t.remote, &away).unwrap();
    let main_before = t.a.env.git(&["rev-parse", "main"]);
    let err = t.a.refused(&["promote", &run], "remote-unreachable");
    assert!(err.to_string().contains("remote"), "{err}");
    assert_eq!(t.a.env.git(&["rev-parse", "main"]), main_before);
    assert_eq!(
        t.a.json(&["show", &run, "--no-diff"], 0)["state"],
        "approved"
    );
    // Review still works offline, against the checkpoint A remembers...
    t.a.json(&["review"], 0);
    // ...and still refuses a database rewritten since.
    t.a_moves_on();
    t.rewrite_chain(&run, "{\"forged\":true}", true);
    let err = t.a.refused(&["review"], "log-inconsistent");
    assert!(
        err.to_string().contains("checkpoint this machine verified"),
        "{err}"
    );
    std::fs::rename(&away, &t.remote).unwrap();
}

#[test]
fn a_machine_whose_key_is_not_in_runners_cannot_seal() {
    let t = team();
    t.approved_run();
    let c = clone_machine(&t.remote, "c@example.com", &t.a.url);
    c.key_line();
    let before = t.remote_git(&["for-each-ref", "refs/airlock/"]);
    let err = c.refused(&["ledger", "seal"], "log-unsealed");
    let text = err.to_string();
    assert!(text.contains("cannot sign the sealed log"), "{text}");
    assert!(text.contains(".airlock/runners"), "{text}");
    assert_eq!(t.remote_git(&["for-each-ref", "refs/airlock/"]), before);
}

/// The human output of `ledger verify --remote` and of `promote` refusing
/// a tampered database, whole (issue 15's transcripts).
#[test]
fn transcript_of_a_tampered_database_found_by_the_sealed_log() {
    let t = team();
    let run = t.approved_run();
    t.a.json(&["ledger", "seal"], 0);
    t.a_moves_on();
    let mut text = String::new();
    let mut show = |m: &Machine, args: &[&str]| {
        let out = m.airlock(args);
        text += &format!("$ airlock {}\n", args.join(" "));
        for stream in [&out.stdout, &out.stderr] {
            text += stream;
            if !stream.is_empty() && !stream.ends_with('\n') {
                text.push('\n');
            }
        }
        text += &format!("[exit {}]\n\n", out.code);
    };
    show(&t.b, &["ledger", "verify", "--remote"]);
    t.superuser(&format!(
        "DELETE FROM events WHERE chain = '{run}' AND kind = 'approve';
         UPDATE chains SET n = (SELECT max(n) FROM events WHERE chain = '{run}'),
                           hash = (SELECT hash FROM events WHERE chain = '{run}' ORDER BY n DESC LIMIT 1)
         WHERE chain = '{run}';"
    ));
    show(&t.b, &["ledger", "verify", "--remote"]);
    show(&t.a, &["promote", &run]);
    let mut settings = insta::Settings::clone_current();
    for (regex, placeholder) in [
        (
            regex_escape(&t.a.env.tmp.path().display().to_string()),
            "[TMP-A]",
        ),
        (
            regex_escape(&t.b.env.tmp.path().display().to_string()),
            "[TMP-B]",
        ),
        (regex_escape(&run), "[RUN]"),
        (r"\b[0-9a-f]{64}\b".into(), "[DIGEST]"),
        (r"\b[0-9a-f]{40}\b".into(), "[COMMIT]"),
        (r"(^|[^-\w])[0-9a-f]{7,16}(…?)".into(), "$1[SHORT]$2"),
    ] {
        settings.add_filter(&regex, placeholder);
    }
    settings.set_omit_expression(true);
    settings.bind(|| insta::assert_snapshot!("sealed_log_tampered", text));
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

#[test]
fn on_sqlite_the_one_chain_is_sealed_the_same_way() {
    let t = team_on(false);
    let run = t.approved_run();
    t.a.json(&["promote", &run], 0);
    let verified = t.a.json(&["ledger", "verify", "--remote"], 0);
    assert_eq!(verified["chains"], 1, "{verified}");
    assert!(
        verified["checkpoint"]["size"].as_u64().unwrap() >= 1,
        "{verified}"
    );
    // The leaves are kept in the local ledger file, beside its events.
    let conn = rusqlite::Connection::open(t.a.env.state_dir().join("ledger.db")).unwrap();
    let leaves: i64 = conn
        .query_row("SELECT count(*) FROM log_leaves", [], |r| r.get(0))
        .unwrap();
    assert!(leaves >= 1);
}

// ---- Red team (issue 20): a hostile database superuser, a hostile pusher -------------

impl Team {
    /// A third machine that joins only now: no remembered checkpoint, it
    /// trusts the remote's.
    fn joiner(&self) -> Machine {
        let c = clone_machine(&self.remote, "c@example.com", &self.a.url);
        c.key_line();
        c
    }

    fn leaves(&self) -> Vec<(i64, String, i64, String)> {
        self.db
            .admin()
            .query(
                "SELECT idx, chain, n, hash FROM log_leaves ORDER BY idx",
                &[],
            )
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
            .collect()
    }

    /// Puts `leaves` back as the whole table (the superuser's undo).
    fn restore_leaves(&self, leaves: &[(i64, String, i64, String)]) {
        self.superuser("DELETE FROM log_leaves");
        let mut admin = self.db.admin();
        for (idx, chain, n, hash) in leaves {
            admin
                .execute(
                    "INSERT INTO log_leaves (idx, chain, n, hash) VALUES ($1, $2, $3, $4)",
                    &[idx, chain, n, hash],
                )
                .unwrap();
        }
    }
}

/// Every way of rewriting `log_leaves` (a leaf's hash edited, the last
/// leaf deleted, two leaves swapped, a leaf inserted in front) is refused
/// by `review` on a member that verified before and on one that joins
/// after, named by `ledger verify --remote`, and refused by `promote`
/// (nothing merged).
#[test]
fn leaves_edited_deleted_reordered_or_inserted_by_the_superuser_are_refused_everywhere() {
    let t = team();
    let run = t.approved_run();
    t.a.json(&["ledger", "seal"], 0);
    t.a_moves_on();
    t.b.json(&["ledger", "seal"], 0);
    t.b.json(&["ledger", "verify", "--remote"], 0);
    let c = t.joiner();
    let honest = t.leaves();
    assert!(honest.len() >= 2, "{honest:?}");
    let last = honest.len() - 1;
    let attacks = [
        (
            "a leaf's hash edited",
            format!(
                "UPDATE log_leaves SET hash = '{}' WHERE idx = 0",
                "ab".repeat(32)
            ),
        ),
        (
            "the last leaf deleted",
            format!("DELETE FROM log_leaves WHERE idx = {last}"),
        ),
        (
            "two leaves swapped",
            "UPDATE log_leaves SET idx = 1001 - idx WHERE idx IN (0, 1);
             UPDATE log_leaves SET idx = idx - 1000 WHERE idx >= 1000"
                .to_string(),
        ),
        (
            "a leaf inserted in front",
            "UPDATE log_leaves SET idx = idx + 1000;
             UPDATE log_leaves SET idx = idx - 999;
             INSERT INTO log_leaves (idx, chain, n, hash)
                 SELECT 0, chain, n, hash FROM log_leaves WHERE idx = 1"
                .to_string(),
        ),
    ];
    for (what, sql) in attacks {
        t.superuser(&sql);
        assert_ne!(t.leaves(), honest, "{what}: the attack changed nothing");
        for m in [&t.b, &c] {
            let err = m.refused(&["review"], "log-inconsistent");
            assert!(err.to_string().contains("leaves"), "{what}: {err}");
        }
        let problems = t.verify_fails(&t.b);
        assert!(!problems.is_empty(), "{what}");
        t.promote_refused(&run, "log-inconsistent");
        t.restore_leaves(&honest);
        // The honest table is accepted again (the refusals were the attack's).
        t.b.json(&["review"], 0);
    }
}

/// The superuser points a sealed chain's head (`chains`) back at an older
/// event, every event still stored: the sealed log's leaf for the newer
/// head names it on `review`, `ledger verify --remote` and `promote`.
#[test]
fn a_chain_head_moved_back_behind_its_sealed_leaf_is_refused() {
    let t = team();
    let run = t.approved_run();
    t.a.json(&["ledger", "seal"], 0);
    t.a_moves_on();
    t.b.json(&["ledger", "verify", "--remote"], 0);
    t.superuser(&format!(
        "UPDATE chains SET n = 2, hash = (SELECT hash FROM events WHERE chain = '{run}' AND n = 2)
         WHERE chain = '{run}'"
    ));
    let problems = t.verify_fails(&t.b);
    assert!(
        any(&problems, &format!("run {run} records its head at event 2")),
        "{problems:?}"
    );
    for m in [&t.b, &t.joiner()] {
        let err = m.refused(&["review"], "log-inconsistent");
        assert!(
            err.to_string().contains("records its head at event 2"),
            "{err}"
        );
    }
    t.promote_refused(&run, "log-inconsistent");
}

/// A sealed event's `who` and `ts`, changed by the superuser without
/// recomputing its hash (its stored hash still agrees with the seal):
/// `approve` recomputes the run's chain and refuses (as `promote` does).
#[test]
fn a_sealed_events_who_or_time_changed_is_refused_by_approve() {
    let t = team();
    let brief = t.a.env.write_brief("brief", BRIEF);
    let started = t.a.json(&["start", &brief], 0);
    let run = started["run"].as_str().unwrap().to_string();
    let wt = PathBuf::from(started["worktree"].as_str().unwrap());
    write(&wt.join("src/app.sh"), "#!/bin/sh\necho hello, please\n");
    t.a.json(&["check", &run], 0);
    t.a.json(&["submit", &run], 0);
    t.a.json(&["ledger", "seal"], 0);
    t.a_moves_on();
    // The run's start names another principal, and its time moves.
    t.superuser(&format!(
        "UPDATE events SET data = replace(data, '\"a@example.com\"', '\"mallory@example.com\"'),
                           ts = '2001-01-01T00:00:00Z'
         WHERE chain = '{run}' AND n = 1"
    ));
    let changed: String =
        t.db.admin()
            .query_one(
                &format!("SELECT data FROM events WHERE chain = '{run}' AND n = 1"),
                &[],
            )
            .unwrap()
            .get(0);
    assert!(changed.contains("mallory@example.com"), "{changed}");
    let err = t.b.refused(&["approve", &run], "log-inconsistent");
    assert!(err.to_string().contains("edited"), "{err}");
    assert_eq!(
        t.b.json(&["show", &run, "--no-diff"], 0)["state"],
        "in_review"
    );
    let problems = t.verify_fails(&t.b);
    assert!(
        any(&problems, "does not match its contents"),
        "{problems:?}"
    );
}

impl Team {
    /// Pushes, as someone with push rights and no runner key, a commit
    /// holding `files` to `refs/airlock/log` (forced), with `parent` as
    /// its parent; returns the commit.
    fn force_log(&self, files: &[(&str, &[u8])], parent: Option<&str>) -> String {
        let dir = tempfile::tempdir().unwrap();
        let work = dir.path().join("forge");
        self.a.env.git_in(
            dir.path(),
            &["init", "-q", "-b", "forge", &work.display().to_string()],
        );
        for (name, bytes) in files {
            std::fs::write(work.join(name), bytes).unwrap();
        }
        self.a.env.git_in(&work, &["add", "-A"]);
        let tree = self.a.env.git_in(&work, &["write-tree"]);
        let remote = self.remote.display().to_string();
        let mut args = vec!["commit-tree", tree.as_str(), "-m", "forged"];
        if let Some(p) = parent {
            self.a
                .env
                .git_in(&work, &["fetch", "-q", &remote, "refs/airlock/log"]);
            args.extend(["-p", p]);
        }
        let commit = self.a.env.git_in(&work, &args);
        self.a.env.git_in(
            &work,
            &[
                "push",
                "-q",
                "-f",
                &remote,
                &format!("{commit}:refs/airlock/log"),
            ],
        );
        commit
    }

    fn log_file(&self, name: &str) -> Vec<u8> {
        let out = std::process::Command::new("git")
            .args(["-C", &self.remote.display().to_string()])
            .args(["show", &format!("refs/airlock/log:{name}")])
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .output()
            .unwrap();
        assert!(out.status.success());
        out.stdout
    }
}

/// A pusher force-pushes `refs/airlock/log`: the same checkpoint in a
/// commit that does not descend from the one verified, and a commit whose
/// parent is not the previous checkpoint. The member that verified before
/// names the fork; `promote` refuses and nothing is merged.
#[test]
fn a_log_ref_forced_to_a_fork_of_the_same_size_is_refused_by_the_member_that_verified() {
    let t = team();
    let run = t.approved_run();
    t.a.json(&["ledger", "seal"], 0);
    t.a.json(&["ledger", "verify", "--remote"], 0);
    let (text, sig, signer) = (
        t.log_file("checkpoint"),
        t.log_file("checkpoint.sig"),
        t.log_file("signer"),
    );
    let files: [(&str, &[u8]); 3] = [
        ("checkpoint", &text),
        ("checkpoint.sig", &sig),
        ("signer", &signer),
    ];
    // The same, validly signed checkpoint, in a parentless commit.
    t.force_log(&files, None);
    let err = t.a.refused(&["review"], "log-inconsistent");
    assert!(err.to_string().contains("rewritten or forked"), "{err}");
    t.promote_refused(&run, "log-inconsistent");
    // Again on top of an unrelated commit.
    let stray = t.force_log(&[("note", b"x")], None);
    t.force_log(&files, Some(&stray));
    let err = t.a.refused(&["review"], "log-inconsistent");
    assert!(err.to_string().contains("rewritten or forked"), "{err}");
    let problems = t.verify_fails(&t.a);
    assert!(any(&problems, "rewritten or forked"), "{problems:?}");
}

/// The files of a forged checkpoint commit: (name, bytes).
type Files = Vec<(&'static str, Vec<u8>)>;

/// Malformed or hostile checkpoint commits (huge files, garbage, a
/// signature over other text, `signer` naming another runner, a size
/// larger than the leaves, a file missing) are `checkpoint-invalid` on a
/// member that verified before and on one that joins after: never a
/// panic, never trusted, and `promote` merges nothing.
#[test]
fn hostile_checkpoint_blobs_on_the_remote_are_checkpoint_invalid_never_a_panic() {
    let t = team();
    let run = t.approved_run();
    t.a.json(&["ledger", "seal"], 0);
    t.a.json(&["ledger", "verify", "--remote"], 0);
    let c = t.joiner();
    let (text, sig) = (t.log_file("checkpoint"), t.log_file("checkpoint.sig"));
    let real = String::from_utf8(text.clone()).unwrap();
    let mut lines: Vec<&str> = real.lines().collect();
    lines[1] = "999999";
    let larger = format!("{}\n", lines.join("\n"));
    let huge = vec![b'7'; 8 * 1024 * 1024];
    let cases: Vec<(&str, Files)> = vec![
        (
            "a huge checkpoint",
            vec![
                ("checkpoint", huge.clone()),
                ("checkpoint.sig", sig.clone()),
                ("signer", b"a@example.com\n".to_vec()),
            ],
        ),
        (
            "a huge signer",
            vec![
                ("checkpoint", text.clone()),
                ("checkpoint.sig", sig.clone()),
                ("signer", huge.clone()),
            ],
        ),
        (
            "garbage",
            vec![
                ("checkpoint", b"\xff\x00\n\n\n".to_vec()),
                (
                    "checkpoint.sig",
                    b"-----BEGIN SSH SIGNATURE-----\n!!\n".to_vec(),
                ),
                ("signer", b"\n".to_vec()),
            ],
        ),
        (
            "signer naming the other runner",
            vec![
                ("checkpoint", text.clone()),
                ("checkpoint.sig", sig.clone()),
                ("signer", b"b@example.com\n".to_vec()),
            ],
        ),
        (
            "a size larger than the leaves under the old signature",
            vec![
                ("checkpoint", larger.into_bytes()),
                ("checkpoint.sig", sig.clone()),
                ("signer", b"a@example.com\n".to_vec()),
            ],
        ),
        (
            "no signature",
            vec![
                ("checkpoint", text.clone()),
                ("signer", b"a@example.com\n".to_vec()),
            ],
        ),
    ];
    for (what, files) in cases {
        let files: Vec<(&str, &[u8])> = files.iter().map(|(n, b)| (*n, b.as_slice())).collect();
        let tip = t.remote_git(&["rev-parse", "refs/airlock/log"]);
        t.force_log(&files, Some(&tip));
        for m in [&t.a, &c] {
            let out = m.airlock(&["--json", "review"]);
            assert_eq!(out.code, 1, "{what}: {}\n{}", out.stdout, out.stderr);
            assert!(!out.stderr.contains("panicked"), "{what}: {}", out.stderr);
            assert_eq!(out.json()["error"]["code"], "checkpoint-invalid", "{what}");
        }
        t.promote_refused(&run, "checkpoint-invalid");
    }
}

/// A seal killed after the database took its leaves and before the push
/// (here: the remote refusing the log's push at that moment; it is read
/// first, for its runners) leaves leaves no checkpoint covers; the next
/// seal signs and pushes them all, and every member verifies.
#[test]
fn a_seal_cut_off_between_the_leaves_and_the_push_is_completed_by_the_next_seal() {
    let t = team();
    t.approved_run();
    t.a.json(&["ledger", "seal"], 0);
    t.a_moves_on();
    let hook = t.remote.join("hooks/pre-receive");
    write(&hook, "#!/bin/sh\necho 'no pushes now' >&2\nexit 1\n");
    std::fs::set_permissions(&hook, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let before = t.leaves().len();
    let out = t.a.airlock(&["--json", "ledger", "seal"]);
    assert_ne!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
    std::fs::remove_file(&hook).unwrap();
    let after = t.leaves().len();
    assert!(after > before, "the leaves were committed before the push");
    let sealed = t.b.json(&["ledger", "seal"], 0);
    assert_eq!(sealed["checkpoint"]["size"], after as u64, "{sealed}");
    t.a.json(&["ledger", "verify", "--remote"], 0);
    t.b.json(&["ledger", "verify", "--remote"], 0);
    t.joiner().json(&["ledger", "verify", "--remote"], 0);
}

/// The superuser replays a run's whole chain under its id: its own events
/// moved to another run, and a copy of them (hashes recomputed, so it
/// verifies on its own) listed as the run's, in a chain of its own.
/// `promote` finds the run's events no longer end at its chain's head and
/// refuses; `ledger verify --remote` names the moved events.
#[test]
fn a_runs_chain_replayed_under_its_id_is_refused_by_promote() {
    let t = team();
    let run = t.approved_run();
    t.a.json(&["ledger", "seal"], 0);
    t.a_moves_on();
    let replay = format!("{run}-replay");
    t.superuser("SELECT 1");
    let mut admin = t.db.admin();
    let rows = admin
        .query(
            "SELECT seq, n, ts, kind, data FROM events WHERE chain = $1 ORDER BY n",
            &[&run],
        )
        .unwrap();
    let mut prev = airlock_ledger::GENESIS.to_string();
    let mut n_last = 0i64;
    for row in &rows {
        let (seq, n, ts, kind, data): (i64, i64, String, String, String) =
            (row.get(0), row.get(1), row.get(2), row.get(3), row.get(4));
        let seq = seq + 1_000_000;
        let hash = airlock_ledger::hash_event(seq as u64, &ts, Some(&run), &kind, &data, &prev);
        admin
            .execute(
                "INSERT INTO events (seq, chain, n, ts, run, kind, data, prev, hash)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                &[&seq, &replay, &n, &ts, &run, &kind, &data, &prev, &hash],
            )
            .unwrap();
        prev = hash;
        n_last = n;
    }
    admin
        .execute(
            "INSERT INTO chains (chain, n, hash) VALUES ($1, $2, $3)",
            &[&replay, &n_last, &prev],
        )
        .unwrap();
    admin
        .execute(
            "UPDATE events SET run = 'elsewhere' WHERE chain = $1",
            &[&run],
        )
        .unwrap();
    let err = t.promote_refused(&run, "log-inconsistent");
    assert!(
        err.to_string().contains("replaced or moved to another run"),
        "{err}"
    );
    let problems = t.verify_fails(&t.b);
    assert!(!problems.is_empty());
}

/// The superuser appends an event to a sealed run's chain with a gap in
/// `n` (linked to the head and hashed correctly, so the links alone look
/// whole) and moves the chain's head to it: `promote` and `approve`
/// count the run's events against its head and refuse; `ledger verify
/// --remote` names the missing event.
#[test]
fn an_event_appended_with_a_gap_in_n_is_refused_by_promote() {
    let t = team();
    let run = t.approved_run();
    t.a.json(&["ledger", "seal"], 0);
    t.a_moves_on();
    t.superuser("SELECT 1");
    let mut admin = t.db.admin();
    let head = admin
        .query_one("SELECT n, hash FROM chains WHERE chain = $1", &[&run])
        .unwrap();
    let (n, prev): (i64, String) = (head.get(0), head.get(1));
    let seq: i64 = admin
        .query_one("SELECT max(seq) + 1000 FROM events", &[])
        .unwrap()
        .get(0);
    let (ts, kind, data) = ("2026-01-01T00:00:00Z", "note", "{\"forged\":true}");
    let hash = airlock_ledger::hash_event(seq as u64, ts, Some(&run), kind, data, &prev);
    let gap = n + 2;
    admin
        .execute(
            "INSERT INTO events (seq, chain, n, ts, run, kind, data, prev, hash)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            &[&seq, &run, &gap, &ts, &run, &kind, &data, &prev, &hash],
        )
        .unwrap();
    admin
        .execute(
            "UPDATE chains SET n = $1, hash = $2 WHERE chain = $3",
            &[&gap, &hash, &run],
        )
        .unwrap();
    let err = t.promote_refused(&run, "log-inconsistent");
    assert!(
        err.to_string()
            .contains(&format!("its chain records its head at event {gap}")),
        "{err}"
    );
    let problems = t.verify_fails(&t.b);
    assert!(any(&problems, "is missing"), "{problems:?}");
}
