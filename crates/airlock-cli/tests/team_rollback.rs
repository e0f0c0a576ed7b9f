//! Rollback of a run promoted on the shared remote (issue 20, `[team]
//! remote`): a bare repository on disk is the team's remote; machines are
//! clones of it with their own homes (the harness of tests/team_remote.rs,
//! with every machine's key in `.airlock/runners` so promotions and
//! rollbacks are sealed). `rollback` reverts the merge on top of the
//! remote target's tip and pushes it with `refs/airlock/rolledback/<run>`
//! in one atomic compare-and-swap.

mod common;

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};

use common::*;
use serde_json::Value;

const TEAM: &str = "\n[team]\nremote = \"origin\"\n";

/// An action whose compensation leaves a mark (each run appends a line).
const LANE: &str = "\n[lanes.governed]\nscopes = [\"command:notify\"]\n";

/// The first machine and the bare remote beside it.
struct Team {
    env: Env,
    remote: PathBuf,
    _server: tempfile::TempDir,
}

fn key_line(env: &Env, url: Option<&str>) -> String {
    let mut cmd = env.cmd(&["--json", "key", "public"]);
    if let Some(url) = url {
        cmd.env(DATABASE, url);
    }
    let out: Output = cmd.output().unwrap().into();
    out.expect_json(&["key", "public"], 0)["public_key"]
        .as_str()
        .unwrap()
        .to_string()
}

impl Team {
    fn new() -> Team {
        Team::with_workflow(&format!("{WORKFLOW}{LANE}{TEAM}"))
    }

    /// `Env::new()` with `workflow` and this machine's key in
    /// `.airlock/runners`, committed; a bare remote cloned from it.
    fn with_workflow(workflow: &str) -> Team {
        let env = Env::new();
        env.write(".airlock/workflow.toml", workflow);
        let key = key_line(&env, None);
        env.write(".airlock/runners", &format!("test@example.invalid {key}\n"));
        env.git(&["add", "-A"]);
        env.git(&["commit", "-qm", "team mode"]);
        let server = tempfile::tempdir().unwrap();
        let remote = server.path().join("remote.git");
        env.git(&["clone", "-q", "--bare", ".", remote.to_str().unwrap()]);
        env.git(&["remote", "add", "origin", remote.to_str().unwrap()]);
        Team {
            env,
            remote,
            _server: server,
        }
    }

    fn remote_git(&self, args: &[&str]) -> String {
        let mut full = vec!["--git-dir", self.remote.to_str().unwrap()];
        full.extend_from_slice(args);
        self.env.git_in(&self.remote, &full)
    }

    fn remote_ref(&self, name: &str) -> Option<String> {
        let out = Command::new("git")
            .args(["--git-dir", self.remote.to_str().unwrap()])
            .args(["rev-parse", "--verify", "--quiet", name])
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .output()
            .unwrap();
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    /// Every ref of the remote, as `git for-each-ref` lists them.
    fn remote_refs(&self) -> String {
        self.remote_git(&["for-each-ref", "--format=%(objectname) %(refname)"])
    }

    /// The file `path` on the remote's `main`.
    fn remote_file(&self, path: &str) -> String {
        self.remote_git(&["show", &format!("main:{path}")])
    }

    /// The revert commits airlock made on the remote's `main`.
    fn reverts_on_main(&self) -> usize {
        self.remote_git(&["log", "--format=%s", "main"])
            .lines()
            .filter(|l| l.starts_with("Revert airlock run"))
            .count()
    }

    /// Another machine: a clone of the remote with its own home.
    fn machine(&self, name: &str) -> Env {
        let tmp = tempfile::tempdir().unwrap();
        let home = tmp.path().join("home");
        let repo = tmp.path().join(name);
        std::fs::create_dir_all(&home).unwrap();
        let env = Env { tmp, repo, home };
        env.git_in(
            env.tmp.path(),
            &["clone", "-q", self.remote.to_str().unwrap(), name],
        );
        env
    }

    /// A person's commit pushed straight to the remote's `main`: `path`
    /// gets `text`.
    fn human_push(&self, name: &str, path: &str, text: &str) -> String {
        let dir = self.env.tmp.path().join(name);
        if !dir.exists() {
            self.env.git_in(
                self.env.tmp.path(),
                &["clone", "-q", self.remote.to_str().unwrap(), name],
            );
        }
        self.env.git_in(&dir, &["pull", "-q", "--ff-only"]);
        write(&dir.join(path), text);
        self.env
            .git_in(&dir, &["commit", "-qam", "a person's change"]);
        self.env.git_in(&dir, &["push", "-q", "origin", "main"]);
        self.env.git_in(&dir, &["rev-parse", "HEAD"])
    }
}

/// A run of `env`'s editing src/app.sh, with an action whose compensation
/// appends to `mark`, taken through approval.
fn approved_with_compensation(env: &Env, mark: &Path) -> String {
    let (run, wt) = env.start(BRIEF);
    write(&wt.join("src/app.sh"), "#!/bin/sh\necho hello, please\n");
    let action = env.tmp.path().join("publish.toml");
    write(
        &action,
        &format!(
            r#"kind = "command"
name = "publish"
scopes = ["command:notify"]
argv = ["true"]
[undo]
kind = "command"
scopes = ["command:notify"]
argv = ["sh", "-c", "echo compensated >> {}"]
env = []
"#,
            mark.display()
        ),
    );
    env.json(&["propose", &run, action.to_str().unwrap()], 0);
    env.json(&["check", &run], 0);
    env.json(&["submit", &run], 0);
    env.json(&["approve", &run], 0);
    run
}

/// A plain run editing src/app.sh, promoted on the remote: (run, merge).
fn promoted(team: &Team) -> (String, String) {
    promoted_editing(team, "src/app.sh", "#!/bin/sh\necho hello, please\n")
}

/// A plain run giving `path` (under src/ or tests/) `text`, promoted on
/// the remote: (run, merge).
fn promoted_editing(team: &Team, path: &str, text: &str) -> (String, String) {
    let env = &team.env;
    let (run, wt) = env.start(BRIEF);
    write(&wt.join(path), text);
    env.json(&["check", &run], 0);
    env.json(&["submit", &run], 0);
    env.json(&["approve", &run], 0);
    let merge = env.json(&["promote", &run], 0)["merge"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(team.remote_ref("refs/heads/main"), Some(merge.clone()));
    (run, merge)
}

fn refused(out: Output, code: &str) -> Value {
    assert_eq!(
        out.code, 1,
        "stdout:\n{}\nstderr:\n{}",
        out.stdout, out.stderr
    );
    let v = out.json();
    assert_eq!(v["error"]["code"], code, "{v}");
    v
}

fn rollback_events(env: &Env, run: &str) -> Vec<Value> {
    env.events(Some(run))
        .into_iter()
        .filter(|e| e["kind"] == "rollback")
        .collect()
}

fn killed_at(env: &Env, args: &[&str], failpoint: &str) {
    let out = env
        .cmd(args)
        .env("AIRLOCK_FAILPOINT", failpoint)
        .output()
        .unwrap();
    assert_eq!(
        out.status.signal(),
        Some(9),
        "airlock {args:?} with {failpoint}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn rollback_pushes_a_revert_onto_the_remote_tip_and_keeps_a_later_persons_commit() {
    let team = Team::new();
    let env = &team.env;
    let mark = env.tmp.path().join("compensated");
    let run = approved_with_compensation(env, &mark);
    let merge = env.json(&["promote", &run], 0)["merge"]
        .as_str()
        .unwrap()
        .to_string();
    let theirs = team.human_push("person", "docs/guide.md", "# Guide\n\nmore\n");
    let local = env.rev("main");
    let rolled = env.json(&["rollback", &run, "--reason", "greeting too polite"], 0);
    let revert = rolled["revert"].as_str().unwrap().to_string();
    assert_eq!(rolled["previous"], theirs.as_str());
    assert_eq!(rolled["remote"], "origin");
    // A new commit on top of the person's: nothing of theirs dropped.
    assert_eq!(team.remote_ref("refs/heads/main"), Some(revert.clone()));
    assert_eq!(
        team.remote_git(&["rev-list", "--parents", "-n1", &revert]),
        format!("{revert} {theirs}")
    );
    assert_eq!(team.remote_file("src/app.sh"), "#!/bin/sh\necho hello");
    assert_eq!(team.remote_file("docs/guide.md"), "# Guide\n\nmore");
    let record = team
        .remote_ref(&format!("refs/airlock/rolledback/{run}"))
        .expect("the rollback record is on the remote");
    assert_eq!(
        team.remote_git(&["rev-parse", &format!("{record}^1")]),
        revert
    );
    let body: Value = serde_json::from_str(&team.remote_git(&[
        "cat-file",
        "blob",
        &format!("{record}:rollback.json"),
    ]))
    .unwrap();
    assert_eq!(body["run"], run.as_str());
    assert_eq!(body["merge"], merge.as_str());
    assert_eq!(body["revert"], revert.as_str());
    assert_eq!(body["reason"], "greeting too polite");
    assert_eq!(body["by"]["principal"], "test@example.invalid");
    // The compensation ran, once; the ledger says where and who.
    assert_eq!(std::fs::read_to_string(&mark).unwrap(), "compensated\n");
    assert_eq!(env.state(&run), "rolled_back");
    let events = rollback_events(env, &run);
    assert_eq!(events.len(), 1);
    let data = &events[0]["data"];
    assert_eq!(data["remote"], "origin");
    assert_eq!(data["revert"], revert.as_str());
    assert_eq!(data["record"], record.as_str());
    assert_eq!(data["merge"], merge.as_str());
    assert_eq!(
        events[0]["data"]["who"]["principal"],
        "test@example.invalid"
    );
    // The local branch is the user's: `git pull` brings the revert.
    assert_eq!(env.rev("main"), local);
    // The events up to the rollback were sealed on the remote first.
    assert!(team.remote_ref("refs/airlock/log").is_some());
    env.assert_ledger_ok();

    // The human output names the remote.
    let (run2, _) = promoted(&team);
    let out = env.airlock(&["rollback", &run2, "--reason", "undo"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout.contains(&format!(
            "rolled back run {run2} on main of `origin` (pushed): "
        )),
        "{}",
        out.stdout
    );
}

#[test]
fn rollback_twice_is_refused_and_the_remote_reverted_once() {
    let team = Team::new();
    let env = &team.env;
    let (run, _) = promoted(&team);
    env.json(&["rollback", &run, "--reason", "first"], 0);
    let refs = team.remote_refs();
    let out = env.airlock(&["rollback", &run, "--reason", "again"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("is rolled_back; `rollback` needs it to be promoted"),
        "{}",
        out.stderr
    );
    refused(
        env.airlock(&["--json", "rollback", &run, "--reason", "again"]),
        "wrong-state",
    );
    assert_eq!(team.remote_refs(), refs);
    assert_eq!(team.reverts_on_main(), 1);
    assert_eq!(rollback_events(env, &run).len(), 1);
}

#[test]
fn a_later_commit_on_the_same_lines_refuses_the_rollback_naming_the_file_and_nothing_is_pushed() {
    let team = Team::new();
    let env = &team.env;
    let (run, merge) = promoted(&team);
    team.human_push(
        "person",
        "src/app.sh",
        "#!/bin/sh\necho hello, please, friend\n",
    );
    let refs = team.remote_refs();
    let v = refused(
        env.airlock(&["--json", "rollback", &run, "--reason", "undo"]),
        "target-conflict",
    );
    let error = &v["error"];
    assert!(
        error["message"].as_str().unwrap().contains(&format!(
            "refusing to roll back run {run}: main changed the run's paths since it was promoted"
        )),
        "{v}"
    );
    assert_eq!(
        error["reasons"],
        serde_json::json!(["src/app.sh conflicts"])
    );
    assert!(
        error["hint"]
            .as_str()
            .unwrap()
            .contains(&format!("git revert -m 1 {merge}`")),
        "{v}"
    );
    assert!(
        error["hint"]
            .as_str()
            .unwrap()
            .contains("`git push origin main`; nothing was changed or pushed"),
        "{v}"
    );
    let out = env.airlock(&["rollback", &run, "--reason", "undo"]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("src/app.sh conflicts"),
        "{}",
        out.stderr
    );
    // Nothing pushed, nothing recorded.
    assert_eq!(team.remote_refs(), refs);
    assert_eq!(env.state(&run), "promoted");
    assert!(rollback_events(env, &run).is_empty());
}

#[test]
fn a_kill_after_the_push_is_recovered_from_the_record_without_a_second_revert() {
    let team = Team::new();
    let env = &team.env;
    let mark = env.tmp.path().join("compensated");
    let run = approved_with_compensation(env, &mark);
    env.json(&["promote", &run], 0);
    killed_at(
        env,
        &["rollback", &run, "--reason", "bad"],
        "rollback:after-push",
    );
    let revert = team.remote_ref("refs/heads/main").unwrap();
    assert!(
        team.remote_ref(&format!("refs/airlock/rolledback/{run}"))
            .is_some()
    );
    assert!(!mark.exists());
    let out = env.airlock(&["review"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stderr.contains(&format!(
            "recovered: an interrupted `airlock rollback {run}` had pushed refs/heads/main to {} on `origin`; recorded the rollback. Run `airlock rollback {run} --actions-only --reason …` to run its compensations.",
            &revert[..12]
        )),
        "{}",
        out.stderr
    );
    assert_eq!(env.state(&run), "rolled_back");
    let events = rollback_events(env, &run);
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["data"]["revert"], revert.as_str());
    assert_eq!(events[0]["data"]["recovered"], true);
    // Recorded once; rolling back again is refused; the compensation runs once.
    let refs = team.remote_refs();
    refused(
        env.airlock(&["--json", "rollback", &run, "--reason", "again"]),
        "wrong-state",
    );
    env.json(
        &["rollback", &run, "--actions-only", "--reason", "finish"],
        0,
    );
    env.json(
        &["rollback", &run, "--actions-only", "--reason", "finish"],
        0,
    );
    assert_eq!(std::fs::read_to_string(&mark).unwrap(), "compensated\n");
    assert_eq!(team.remote_refs(), refs);
    assert_eq!(team.reverts_on_main(), 1);
    env.assert_ledger_ok();
}

#[test]
fn a_kill_before_the_push_is_recovered_as_not_rolled_back_and_rollback_works_again() {
    let team = Team::new();
    let env = &team.env;
    let (run, merge) = promoted(&team);
    killed_at(
        env,
        &["rollback", &run, "--reason", "bad"],
        "rollback:before-push",
    );
    assert_eq!(team.remote_ref("refs/heads/main"), Some(merge));
    let out = env.airlock(&["review"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stderr.contains(&format!(
            "recovered: an interrupted `airlock rollback {run}` had not pushed to `origin`; nothing changed."
        )),
        "{}",
        out.stderr
    );
    assert_eq!(env.state(&run), "promoted");
    // The killed process's lease was released: rollback works at once.
    let rolled = env.json(&["rollback", &run, "--reason", "bad"], 0);
    assert_eq!(
        team.remote_ref("refs/heads/main").as_deref(),
        rolled["revert"].as_str()
    );
    assert_eq!(team.reverts_on_main(), 1);
}

#[test]
fn a_merge_dropped_from_the_remote_target_is_refused_and_nothing_is_pushed() {
    let team = Team::new();
    let env = &team.env;
    let (run, merge) = promoted(&team);
    // Someone force-pushes main back to before the merge.
    let before = team.remote_git(&["rev-parse", &format!("{merge}^1")]);
    team.remote_git(&["update-ref", "refs/heads/main", &before]);
    let refs = team.remote_refs();
    let v = refused(
        env.airlock(&["--json", "rollback", &run, "--reason", "undo"]),
        "merge-not-on-target",
    );
    assert!(
        v["error"]["message"].as_str().unwrap().contains(&format!(
            "its merge {} is not in main's history on `origin`",
            &merge[..12]
        )),
        "{v}"
    );
    assert_eq!(team.remote_refs(), refs);
    assert_eq!(env.state(&run), "promoted");
}

#[test]
fn a_promotion_record_moved_on_the_remote_is_refused_and_nothing_is_pushed() {
    let team = Team::new();
    let env = &team.env;
    let (run, _) = promoted(&team);
    let (other, _) = promoted_editing(&team, "src/other.sh", "#!/bin/sh\necho other\n");
    // Someone with push rights points the run's record at another's.
    let forged = team
        .remote_ref(&format!("refs/airlock/promoted/{other}"))
        .unwrap();
    team.remote_git(&[
        "update-ref",
        &format!("refs/airlock/promoted/{run}"),
        &forged,
    ]);
    let refs = team.remote_refs();
    let v = refused(
        env.airlock(&["--json", "rollback", &run, "--reason", "undo"]),
        "remote-record-invalid",
    );
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("is not the one the ledger recorded"),
        "{v}"
    );
    assert_eq!(team.remote_refs(), refs);
    assert_eq!(env.state(&run), "promoted");
}

#[test]
fn a_remote_that_refuses_the_push_is_remote_rejected_and_nothing_is_recorded() {
    let team = Team::new();
    let env = &team.env;
    let (run, _) = promoted(&team);
    let hook = team.remote.join("hooks/pre-receive");
    // It refuses pushes to main only (the sealed log's push still lands).
    write(
        &hook,
        "#!/bin/sh\nwhile read old new name; do\n  if [ \"$name\" = refs/heads/main ]; then echo 'main is frozen' >&2; exit 1; fi\ndone\nexit 0\n",
    );
    std::fs::set_permissions(&hook, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let main = team.remote_ref("refs/heads/main");
    let v = refused(
        env.airlock(&["--json", "rollback", &run, "--reason", "undo"]),
        "remote-rejected",
    );
    assert!(
        v["error"]["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d.as_str().unwrap().contains("main is frozen")),
        "{v}"
    );
    assert_eq!(team.remote_ref("refs/heads/main"), main);
    assert_eq!(
        team.remote_ref(&format!("refs/airlock/rolledback/{run}")),
        None
    );
    assert_eq!(env.state(&run), "promoted");
    assert!(rollback_events(env, &run).is_empty());
    // Once the remote takes it, the rollback lands.
    std::fs::remove_file(&hook).unwrap();
    env.json(&["rollback", &run, "--reason", "undo"], 0);
    assert_eq!(team.reverts_on_main(), 1);
}

/// Starts `airlock --json rollback RUN` paused at `rollback:before-push`.
fn paused(mut cmd: Command, dir: &Path) -> Child {
    cmd.env("AIRLOCK_PAUSEPOINT", "rollback:before-push")
        .env("AIRLOCK_PAUSEPOINT_DIR", dir)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

fn wait_reached(child: &mut Child, dir: &Path, n: u32) {
    let reached = dir.join(format!("rollback:before-push.reached.{n}"));
    for _ in 0..1200 {
        if reached.exists() {
            return;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("rollback ended before the pause: {status:?}");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let _ = child.kill();
    panic!("rollback never reached the pause");
}

fn go(dir: &Path, n: u32) {
    std::fs::write(dir.join(format!("rollback:before-push.go.{n}")), b"").unwrap();
}

#[test]
fn a_person_pushing_mid_rollback_gets_the_revert_made_again_on_their_commit() {
    let team = Team::new();
    let env = &team.env;
    let (run, _) = promoted(&team);
    let pause = tempfile::tempdir().unwrap();
    let mut child = paused(
        env.cmd(&["--json", "rollback", &run, "--reason", "undo"]),
        pause.path(),
    );
    wait_reached(&mut child, pause.path(), 1);
    let theirs = team.human_push("person", "docs/guide.md", "# Guide\n\nmid-rollback\n");
    go(pause.path(), 1);
    wait_reached(&mut child, pause.path(), 2);
    go(pause.path(), 2);
    let out: Output = child.wait_with_output().unwrap().into();
    assert_eq!(out.code, 0, "{}", out.stderr);
    let rolled = out.json();
    let revert = rolled["revert"].as_str().unwrap();
    assert_eq!(rolled["previous"], theirs.as_str());
    assert_eq!(team.remote_ref("refs/heads/main").as_deref(), Some(revert));
    assert_eq!(team.remote_file("docs/guide.md"), "# Guide\n\nmid-rollback");
    assert_eq!(team.remote_file("src/app.sh"), "#!/bin/sh\necho hello");
    assert_eq!(team.reverts_on_main(), 1);
    let retries = env
        .events(Some(&run))
        .into_iter()
        .filter(|e| e["kind"] == "rollback-retry")
        .count();
    assert_eq!(retries, 1);
    assert_eq!(rollback_events(env, &run).len(), 1);
}

// Two machines sharing one PostgreSQL database (the PG store's private test
// cluster) and one remote.

const DATABASE: &str = "AIRLOCK_DATABASE_URL";

fn on_db(env: &Env, url: &str, principal: &str, args: &[&str]) -> Command {
    let mut cmd = env.cmd(args);
    cmd.env(DATABASE, url).env("AIRLOCK_PRINCIPAL", principal);
    cmd
}

fn db_json(env: &Env, url: &str, principal: &str, args: &[&str], code: i32) -> Value {
    let mut full = vec!["--json"];
    full.extend_from_slice(args);
    let out: Output = on_db(env, url, principal, &full).output().unwrap().into();
    out.expect_json(args, code)
}

fn db_out(env: &Env, url: &str, principal: &str, args: &[&str]) -> Output {
    on_db(env, url, principal, args).output().unwrap().into()
}

const ANA: &str = "ana@example.invalid";
const BO: &str = "bo@example.invalid";

/// Machine A (the team's first) and B, on one database, both keys in
/// `.airlock/runners` on the remote's main and both checkouts up to date;
/// a run of A's promoted by A: (B, run, merge).
fn promoted_by_a_on_db(team: &Team, url: &str) -> (Env, String, String) {
    let a = &team.env;
    let b = team.machine("b");
    // B has worked on this database before (a machine new to it is held to
    // its first record, see docs/team.md).
    let own = b.write_brief("own", BRIEF);
    db_json(&b, url, BO, &["start", &own], 0);
    let key_a = key_line(a, Some(url));
    let key_b = key_line(&b, Some(url));
    a.write(
        ".airlock/runners",
        &format!("{ANA} {key_a}\n{BO} {key_b}\n"),
    );
    a.git(&["add", ".airlock/runners"]);
    a.git(&["commit", "-qm", "both machines"]);
    a.git(&["push", "-q", "origin", "main"]);
    let (run, wt) = {
        let brief = a.write_brief("brief", BRIEF);
        let v = db_json(a, url, ANA, &["start", &brief], 0);
        (
            v["run"].as_str().unwrap().to_string(),
            PathBuf::from(v["worktree"].as_str().unwrap()),
        )
    };
    write(&wt.join("src/app.sh"), "#!/bin/sh\necho hello, please\n");
    db_json(a, url, ANA, &["check", &run], 0);
    db_json(a, url, ANA, &["submit", &run], 0);
    db_json(&b, url, BO, &["approve", &run], 0);
    let merge = db_json(a, url, ANA, &["promote", &run], 0)["merge"]
        .as_str()
        .unwrap()
        .to_string();
    b.git(&["pull", "-q", "--ff-only", "origin", "main"]);
    (b, run, merge)
}

fn db_rollbacks(env: &Env, url: &str, run: &str) -> Vec<Value> {
    db_json(env, url, ANA, &["log", run], 0)["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "rollback")
        .cloned()
        .collect()
}

#[test]
fn another_machine_rolls_back_a_run_promoted_on_the_first() {
    let team = Team::new();
    let a = &team.env;
    let db = airlock_store_pg::testing::shared().database();
    let url = db.url();
    let (b, run, merge) = promoted_by_a_on_db(&team, &url);
    let rolled = db_json(&b, &url, BO, &["rollback", &run, "--reason", "by bo"], 0);
    let revert = rolled["revert"].as_str().unwrap();
    assert_eq!(rolled["previous"], merge.as_str());
    assert_eq!(team.remote_ref("refs/heads/main").as_deref(), Some(revert));
    assert_eq!(team.remote_file("src/app.sh"), "#!/bin/sh\necho hello");
    let events = db_rollbacks(a, &url, &run);
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["data"]["who"]["principal"], BO);
    assert_eq!(events[0]["data"]["remote"], "origin");
    assert_eq!(
        db_json(a, &url, ANA, &["show", &run, "--no-diff"], 0)["state"],
        "rolled_back"
    );
}

#[test]
fn two_machines_rolling_back_at_once_make_one_revert() {
    let team = Team::new();
    let a = &team.env;
    let db = airlock_store_pg::testing::shared().database();
    let url = db.url();
    let (b, run, merge) = promoted_by_a_on_db(&team, &url);
    let pause = tempfile::tempdir().unwrap();
    let mut by_b = paused(
        on_db(
            &b,
            &url,
            BO,
            &["--json", "rollback", &run, "--reason", "by bo"],
        ),
        pause.path(),
    );
    wait_reached(&mut by_b, pause.path(), 1);
    let v = refused(
        db_out(
            a,
            &url,
            ANA,
            &["--json", "rollback", &run, "--reason", "by ana"],
        ),
        "lease-held",
    );
    assert!(
        v["error"]["message"].as_str().unwrap().contains(&format!(
            "refusing to roll back run {run}: {BO} holds the promotion lease for run {run} onto main"
        )),
        "{v}"
    );
    assert_eq!(team.remote_ref("refs/heads/main"), Some(merge));
    go(pause.path(), 1);
    let out: Output = by_b.wait_with_output().unwrap().into();
    assert_eq!(out.code, 0, "{}", out.stderr);
    let revert = out.json()["revert"].as_str().unwrap().to_string();
    refused(
        db_out(
            a,
            &url,
            ANA,
            &["--json", "rollback", &run, "--reason", "by ana"],
        ),
        "wrong-state",
    );
    assert_eq!(team.remote_ref("refs/heads/main"), Some(revert));
    assert_eq!(team.reverts_on_main(), 1);
    assert_eq!(db_rollbacks(a, &url, &run).len(), 1);
}

#[test]
fn a_kill_after_the_push_is_recorded_once_by_another_machine_rolling_back() {
    let team = Team::new();
    let a = &team.env;
    let db = airlock_store_pg::testing::shared().database();
    let url = db.url();
    let (b, run, _) = promoted_by_a_on_db(&team, &url);
    let out = on_db(a, &url, ANA, &["rollback", &run, "--reason", "by ana"])
        .env("AIRLOCK_FAILPOINT", "rollback:after-push")
        .output()
        .unwrap();
    assert_eq!(out.status.signal(), Some(9));
    let revert = team.remote_ref("refs/heads/main").unwrap();
    // B rolls back: the remote says it is done; B records it, reverting nothing.
    let by_b = db_json(&b, &url, BO, &["rollback", &run, "--reason", "by bo"], 0);
    assert_eq!(by_b["revert"], revert.as_str());
    assert_eq!(team.remote_ref("refs/heads/main"), Some(revert.clone()));
    assert_eq!(team.reverts_on_main(), 1);
    let events = db_rollbacks(&b, &url, &run);
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["data"]["recorded_from_remote"], true);
    assert_eq!(events[0]["data"]["reason"], "by ana");
    // A comes back: its own intent is settled without a second record.
    let back = db_out(a, &url, ANA, &["review"]);
    assert_eq!(back.code, 0, "{}", back.stderr);
    assert!(
        back.stderr.contains("the rollback was recorded already"),
        "{}",
        back.stderr
    );
    assert_eq!(db_rollbacks(a, &url, &run).len(), 1);
    assert_eq!(team.reverts_on_main(), 1);
}

/// Red team: someone with push rights writes a well-formed
/// `refs/airlock/rolledback/<run>` whose "revert" is a commit of theirs
/// that undoes nothing (and reverts nothing for real). No machine records
/// the run as rolled back from it nor runs its compensations.
#[test]
fn a_rollback_record_forged_on_the_remote_is_refused_and_nothing_is_recorded() {
    let team = Team::new();
    let env = &team.env;
    let mark = env.tmp.path().join("compensated");
    let run = approved_with_compensation(env, &mark);
    let merge = env.json(&["promote", &run], 0)["merge"]
        .as_str()
        .unwrap()
        .to_string();
    // Their "revert": a commit on main that changes something else.
    let fake = team.human_push("forger", "docs/guide.md", "# Guide\n\nnot a revert\n");
    let dir = env.tmp.path().join("forger");
    write(
        &dir.join("rollback.json"),
        &serde_json::json!({"run": run, "merge": merge, "revert": fake, "reason": "forged"})
            .to_string(),
    );
    let listing = format!(
        "100644 blob {}\trollback.json\n",
        env.git_in(&dir, &["hash-object", "-w", "rollback.json"])
    );
    let tree_file = env.tmp.path().join("tree.txt");
    write(&tree_file, &listing);
    let mut mktree = Command::new("sh");
    env.hermetic(&mut mktree);
    let out = mktree
        .arg("-c")
        .arg("git mktree < \"$1\"")
        .arg("sh")
        .arg(&tree_file)
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(out.status.success());
    let tree = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let record = env.git_in(&dir, &["commit-tree", &tree, "-p", &fake, "-m", "forged"]);
    env.git_in(
        &dir,
        &[
            "push",
            "-q",
            "origin",
            &format!("{record}:refs/airlock/rolledback/{run}"),
        ],
    );
    let refs = team.remote_refs();
    let v = refused(
        env.airlock(&["--json", "rollback", &run, "--reason", "undo"]),
        "remote-record-invalid",
    );
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("has a rollback record for it that does not match it"),
        "{v}"
    );
    assert!(
        v["error"]["reasons"][0]
            .as_str()
            .unwrap()
            .contains("is not the revert of the merge"),
        "{v}"
    );
    assert_eq!(team.remote_refs(), refs);
    assert_eq!(env.state(&run), "promoted");
    assert!(rollback_events(env, &run).is_empty());
    assert!(!mark.exists());
}

// The human output of a rollback on the shared remote, whole (issue 15's
// transcripts): the revert pushed with the compensation run, a refusal
// naming the conflicting file, and rolling back twice.

fn escaped(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '/' || c == '_' {
                c.to_string()
            } else {
                format!("\\{c}")
            }
        })
        .collect()
}

fn transcript_step(env: &Env, text: &mut String, args: &[&str]) -> Output {
    let out = env.airlock(args);
    text.push_str(&format!("$ airlock {}\n", args.join(" ")));
    for stream in [&out.stdout, &out.stderr] {
        text.push_str(stream);
        if !stream.is_empty() && !stream.ends_with('\n') {
            text.push('\n');
        }
    }
    text.push_str(&format!("[exit {}]\n\n", out.code));
    out
}

#[test]
fn transcript_of_a_rollback_on_the_shared_remote_and_its_refusals() {
    let team = Team::new();
    let env = &team.env;
    let mut text = String::new();
    let mark = env.tmp.path().join("compensated");
    let run = approved_with_compensation(env, &mark);
    env.json(&["promote", &run], 0);
    let (conflicting, _) = promoted_editing(
        &team,
        "tests/run.sh",
        "#!/bin/sh\nsh src/app.sh | grep -q hello\n# loud\n",
    );
    team.human_push(
        "person",
        "tests/run.sh",
        "#!/bin/sh\nsh src/app.sh | grep -q hello\n# quiet\n",
    );
    let steps: [(&[&str], i32); 3] = [
        (&["rollback", &run, "--reason", "greeting too polite"], 0),
        (&["rollback", &run, "--reason", "again"], 1),
        (&["rollback", &conflicting, "--reason", "too loud"], 1),
    ];
    for (args, code) in steps {
        assert_eq!(transcript_step(env, &mut text, args).code, code, "{text}");
    }
    let filters: Vec<(String, &str)> = vec![
        (
            escaped(&team.remote.parent().unwrap().display().to_string()),
            "[SERVER]",
        ),
        (escaped(&env.tmp.path().display().to_string()), "[TMP]"),
        (
            r"\b([a-z][a-z0-9]*(?:-[a-z0-9]+)*?)-[0-9a-f]{4}\b".into(),
            "$1-[ID]",
        ),
        (
            r"\bSHA256:[0-9A-Za-z+/]{43}".into(),
            "SHA256:[KEY-FINGERPRINT]",
        ),
        (
            r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d)".into(),
            "[TIME]",
        ),
        (r"\b\d+(?:\.\d+)?( ?)(ms|µs|s)\b".into(), "[N]$1$2"),
        (r"\b[0-9a-f]{64}\b".into(), "[DIGEST]"),
        (r"\b[0-9a-f]{40}\b".into(), "[COMMIT]"),
        (r"\b[0-9a-f]{17,39}\b".into(), "[HEX]"),
        (r"(^|[^-\w])[0-9a-f]{7,16}\b".into(), "$1[SHORT]"),
    ];
    let filters: Vec<(&str, &str)> = filters.iter().map(|(a, b)| (a.as_str(), *b)).collect();
    insta::with_settings!({filters => filters, prepend_module_to_snapshot => false}, {
        insta::assert_snapshot!("team_rollback", text);
    });
}

/// Where a copied machine looks for its ledger's head record (named by
/// the ledger's path, which the copy changed).
fn head_record_wanted(env: &Env) -> PathBuf {
    let v = env.airlock(&["--json", "list"]).json();
    assert_eq!(v["error"]["code"], "ledger-behind", "{v}");
    let reason = v["error"]["reasons"][0].as_str().unwrap();
    PathBuf::from(reason.rsplit("there is none at ").next().unwrap())
}

/// Two machines that do not share a lease (each its own store: here a copy
/// of the first machine made after the promotion) roll back at once: the
/// remote's compare-and-swap on the target and on the must-not-exist record
/// lets one revert land; the other finds the record and records it, never
/// reverting a second time.
#[test]
fn two_machines_without_a_shared_lease_rolling_back_at_once_make_one_revert() {
    let team = Team::new();
    let a = &team.env;
    let mark = a.tmp.path().join("compensated");
    let run = approved_with_compensation(a, &mark);
    let merge = a.json(&["promote", &run], 0)["merge"]
        .as_str()
        .unwrap()
        .to_string();
    let tmp = tempfile::tempdir().unwrap();
    let copied = Command::new("cp")
        .arg("-a")
        .arg(format!("{}/.", a.tmp.path().display()))
        .arg(tmp.path())
        .status()
        .unwrap();
    assert!(copied.success());
    let b = Env {
        repo: tmp.path().join("repo"),
        home: tmp.path().join("home"),
        tmp,
    };
    // The copy's signed head record, under the name its ledger's new path
    // is looked up by (the record is what the ledger is checked against).
    let missing = head_record_wanted(&b);
    let record = std::fs::read_dir(missing.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "head"))
        .unwrap();
    std::fs::copy(&record, &missing).unwrap();
    let pause = tempfile::tempdir().unwrap();
    let mut by_a = paused(
        a.cmd(&["--json", "rollback", &run, "--reason", "by a"]),
        pause.path(),
    );
    wait_reached(&mut by_a, pause.path(), 1);
    let by_b = b.json(&["rollback", &run, "--reason", "by b"], 0);
    let revert = by_b["revert"].as_str().unwrap().to_string();
    assert_eq!(by_b["previous"], merge.as_str());
    go(pause.path(), 1);
    let out: Output = by_a.wait_with_output().unwrap().into();
    assert_eq!(out.code, 0, "{}", out.stderr);
    let rolled = out.json();
    assert_eq!(rolled["revert"], revert.as_str());
    assert_eq!(team.remote_ref("refs/heads/main"), Some(revert.clone()));
    assert_eq!(team.reverts_on_main(), 1);
    let events = rollback_events(a, &run);
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["data"]["recorded_from_remote"], true);
    assert_eq!(events[0]["data"]["reason"], "by b");
    assert_eq!(
        a.events(Some(&run))
            .iter()
            .filter(|e| e["kind"] == "rollback-retry")
            .count(),
        1
    );
}
