//! Promotion on the shared remote (issue 20, `[team] remote`): a bare
//! repository on disk is the team's remote; machines are clones of it with
//! their own homes. `submit` pushes the round under `refs/airlock/runs/`;
//! `promote` pushes the merge and `refs/airlock/promoted/<run>` in one
//! atomic compare-and-swap, merging again when the target moved.

mod common;

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};

use common::*;
use serde_json::Value;

const TEAM: &str = "\n[team]\nremote = \"origin\"\n";

/// A machine: a clone with its own home, and the bare remote beside it.
struct Team {
    env: Env,
    remote: PathBuf,
    /// The remote's own directory, apart from every machine's.
    _server: tempfile::TempDir,
}

impl Team {
    /// The first machine: `Env::new()` with `[team] remote = "origin"`
    /// committed, a bare remote cloned from it, and `origin` pointing there.
    fn new(remerges: Option<u32>) -> Team {
        let mut workflow = format!("{WORKFLOW}{TEAM}");
        if let Some(n) = remerges {
            workflow.push_str(&format!("remerges = {n}\n"));
        }
        Team::with_workflow(&workflow)
    }

    /// The first machine's key is listed in `.airlock/runners` (team mode
    /// requires the file at the remote's tip), under its default principal.
    fn with_workflow(workflow: &str) -> Team {
        let env = Env::new();
        env.write(".airlock/workflow.toml", workflow);
        env.write(".airlock/runners", &runners_line(&env, None));
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

    /// Another machine: a clone of the remote with its own home (its own
    /// signing key, git identity and airlock state), its key listed in
    /// `.airlock/runners` under its default principal.
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
        self.trust(&env, None);
        env
    }

    /// Adds `machine`'s line for `principal` (its default one when `None`)
    /// to `.airlock/runners`, committed on the first machine and pushed;
    /// `machine` pulls it.
    fn trust(&self, machine: &Env, principal: Option<&str>) {
        let mut runners =
            std::fs::read_to_string(self.env.repo.join(".airlock/runners")).unwrap_or_default();
        runners.push_str(&runners_line(machine, principal));
        self.env.write(".airlock/runners", &runners);
        self.env.git(&["add", ".airlock/runners"]);
        self.env.git(&["commit", "-qm", "a runner"]);
        self.env.git(&["push", "-q", "origin", "main"]);
        if machine.repo != self.env.repo {
            machine.git(&["pull", "-q", "--ff-only", "origin", "main"]);
        }
    }

    /// A person's commit pushed straight to the remote's `main`, from a
    /// clone of their own: `path` gets `text`.
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

/// `airlock key public --runners-line` on `env` (acting as `principal`
/// when given): its line for `.airlock/runners`. The key is made by `init`
/// when the machine has none yet.
fn runners_line(env: &Env, principal: Option<&str>) -> String {
    if !env.home.join(".config/airlock/signing_key").exists() {
        let init = env.airlock(&["init"]);
        assert_eq!(init.code, 0, "{}", init.stderr);
    }
    let envs: Vec<(&str, &str)> = principal
        .map(|p| vec![("AIRLOCK_PRINCIPAL", p)])
        .unwrap_or_default();
    let out = env.airlock_env(&["key", "public", "--runners-line"], &envs);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let line = out.stdout.trim().to_string();
    assert!(line.contains(" ssh-ed25519 "), "{line}");
    format!("{line}\n")
}

/// A pre-receive hook refusing any push that touches `main` (the sealed
/// log's ref, pushed before, goes through: a remote that refuses that too
/// is `log-unsealed`, see sealed_log.rs).
fn frozen_hook(why: &str) -> String {
    format!(
        "#!/bin/sh\nwhile read old new name; do\n  if [ \"$name\" = refs/heads/main ]; then echo '{why}' >&2; exit 1; fi\ndone\nexit 0\n"
    )
}

/// A run taken through submit: (its id, `submit --json`'s submission).
fn submitted(env: &Env) -> (String, Value) {
    let (run, wt) = env.start(BRIEF);
    write(&wt.join("src/app.sh"), "#!/bin/sh\necho hello, please\n");
    env.json(&["check", &run], 0);
    let submission = env.json(&["submit", &run], 0);
    (run, submission)
}

/// A run taken through approval.
fn approved(env: &Env) -> (String, Value) {
    let (run, submission) = submitted(env);
    env.json(&["approve", &run], 0);
    (run, submission)
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

fn promote_events(env: &Env, run: &str) -> Vec<Value> {
    env.events(Some(run))
        .into_iter()
        .filter(|e| e["kind"] == "promote")
        .collect()
}

/// Starts `airlock --json promote RUN` paused at `promote:before-push`.
fn paused_promote(env: &Env, run: &str, dir: &Path) -> Child {
    env.cmd(&["--json", "promote", run])
        .env("AIRLOCK_PAUSEPOINT", "promote:before-push")
        .env("AIRLOCK_PAUSEPOINT_DIR", dir)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits for the paused process's `n`th arrival (it may have died instead).
fn wait_reached(child: &mut Child, dir: &Path, n: u32) {
    let reached = dir.join(format!("promote:before-push.reached.{n}"));
    for _ in 0..1200 {
        if reached.exists() {
            return;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("promote ended before the pause: {status:?}");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let _ = child.kill();
    panic!("promote never reached the pause");
}

fn go(dir: &Path, n: u32) {
    std::fs::write(dir.join(format!("promote:before-push.go.{n}")), b"").unwrap();
}

fn finish(child: Child) -> Output {
    child.wait_with_output().unwrap().into()
}

#[test]
fn submit_pushes_the_round_with_its_proof_and_brief_to_the_shared_remote() {
    let team = Team::new(None);
    let env = &team.env;
    let (run, shown) = submitted(env);
    let head = shown["head"].as_str().unwrap().to_string();
    let round = team
        .remote_ref(&format!("refs/airlock/runs/{run}/r1"))
        .expect("the round is on the remote");
    assert_eq!(team.remote_git(&["rev-parse", &format!("{round}^1")]), head);
    assert_eq!(
        team.remote_git(&["ls-tree", "--name-only", &round]),
        "brief.toml\nproof.intoto.jsonl\nproof.intoto.jsonl.sig"
    );
    let proof_path = shown["proof"].as_str().unwrap();
    assert_eq!(
        team.remote_git(&["cat-file", "blob", &format!("{round}:proof.intoto.jsonl")]),
        std::fs::read_to_string(proof_path).unwrap().trim()
    );
    assert_eq!(
        team.remote_git(&["cat-file", "blob", &format!("{round}:brief.toml")]),
        BRIEF.trim()
    );
}

#[test]
fn promote_pushes_the_merge_and_its_record_in_one_atomic_push() {
    let team = Team::new(None);
    let env = &team.env;
    let (run, submission) = approved(env);
    let local_main = env.rev("main");
    let before = team.remote_ref("refs/heads/main").unwrap();
    let promoted = env.json(&["promote", &run], 0);
    let merge = promoted["merge"].as_str().unwrap();
    assert_eq!(promoted["previous"], before.as_str());
    assert_eq!(team.remote_ref("refs/heads/main").as_deref(), Some(merge));
    let record = team
        .remote_ref(&format!("refs/airlock/promoted/{run}"))
        .expect("the promotion record is on the remote");
    assert_eq!(
        team.remote_git(&["rev-parse", &format!("{record}^1")]),
        merge
    );
    let body: Value = serde_json::from_str(&team.remote_git(&[
        "cat-file",
        "blob",
        &format!("{record}:promotion.json"),
    ]))
    .unwrap();
    assert_eq!(body["run"], run.as_str());
    assert_eq!(body["merge"], merge);
    assert_eq!(body["previous"], before.as_str());
    assert_eq!(body["proof"]["sha256"], submission["digest"]);
    assert_eq!(env.state(&run), "promoted");
    let events = promote_events(env, &run);
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["data"]["remote"], "origin");
    assert_eq!(events[0]["data"]["record"], record.as_str());
    // The local branch is the user's: `git pull` brings the merge.
    assert_eq!(env.rev("main"), local_main);
    env.assert_ledger_ok();
}

#[test]
fn a_person_pushing_to_the_target_mid_promotion_gets_a_remerge_with_gates_rerun_never_a_rebase() {
    let team = Team::new(None);
    let env = &team.env;
    let (run, submission) = approved(env);
    let head = submission["head"].as_str().unwrap().to_string();
    let pause = tempfile::tempdir().unwrap();
    let mut child = paused_promote(env, &run, pause.path());
    wait_reached(&mut child, pause.path(), 1);
    let theirs = team.human_push("person", "docs/guide.md", "# Guide\n\nmore\n");
    go(pause.path(), 1);
    wait_reached(&mut child, pause.path(), 2);
    go(pause.path(), 2);
    let out = finish(child);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let report = out.json();
    let merge = report["merge"].as_str().unwrap();
    assert_eq!(report["previous"], theirs.as_str());
    assert_eq!(report["regated"], serde_json::json!(["build", "test"]));
    assert!(
        report["strategy"]
            .as_str()
            .unwrap()
            .contains("moved during the promotion 1 time(s)"),
        "{report}"
    );
    // The merge's parents: the person's commit and the run's own head,
    // unchanged (no rebase).
    assert_eq!(team.remote_ref("refs/heads/main").as_deref(), Some(merge));
    assert_eq!(
        team.remote_git(&["rev-list", "--parents", "-n1", merge]),
        format!("{merge} {theirs} {head}")
    );
    let retries: Vec<Value> = env
        .events(Some(&run))
        .into_iter()
        .filter(|e| e["kind"] == "promote-retry")
        .collect();
    assert_eq!(retries.len(), 1);
    let gates = env
        .events(Some(&run))
        .into_iter()
        .filter(|e| e["kind"] == "promote-gate")
        .count();
    assert_eq!(gates, 2);
    assert_eq!(promote_events(env, &run).len(), 1);
}

#[test]
fn a_target_that_moves_at_every_try_is_target_moved_too_often_and_nothing_is_promoted() {
    let team = Team::new(Some(1));
    let env = &team.env;
    let (run, _) = approved(env);
    let pause = tempfile::tempdir().unwrap();
    let mut child = paused_promote(env, &run, pause.path());
    for n in 1..=2 {
        wait_reached(&mut child, pause.path(), n);
        team.human_push("person", "docs/guide.md", &format!("# Guide\n\nedit {n}\n"));
        go(pause.path(), n);
    }
    let out = finish(child);
    let last = team.remote_ref("refs/heads/main").unwrap();
    let v = refused(out, "target-moved-too-often");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("moved at each of 2 tries"),
        "{v}"
    );
    assert_eq!(env.state(&run), "approved");
    assert_eq!(
        team.remote_ref(&format!("refs/airlock/promoted/{run}")),
        None
    );
    assert_eq!(team.remote_ref("refs/heads/main"), Some(last));
    assert!(promote_events(env, &run).is_empty());
}

#[test]
fn a_remote_that_refuses_the_push_is_remote_rejected_and_nothing_is_recorded() {
    let team = Team::new(None);
    let env = &team.env;
    let (run, _) = approved(env);
    let hook = team.remote.join("hooks/pre-receive");
    write(&hook, &frozen_hook("main is frozen for the release"));
    std::fs::set_permissions(&hook, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let before = team.remote_ref("refs/heads/main");
    let v = refused(env.airlock(&["--json", "promote", &run]), "remote-rejected");
    let out = env.airlock(&["promote", &run]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr
            .contains("the shared remote `origin` refused the push"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("main is frozen for the release"),
        "{}",
        out.stderr
    );
    assert!(
        v["error"]["hint"]
            .as_str()
            .unwrap()
            .contains("nothing was recorded")
    );
    assert_eq!(team.remote_ref("refs/heads/main"), before);
    assert_eq!(
        team.remote_ref(&format!("refs/airlock/promoted/{run}")),
        None
    );
    assert_eq!(env.state(&run), "approved");
    assert!(promote_events(env, &run).is_empty());
    env.assert_ledger_ok();
}

#[test]
fn an_unreachable_remote_is_remote_unreachable_at_submit_and_at_promote() {
    let team = Team::new(None);
    let env = &team.env;
    let (run, wt) = env.start(BRIEF);
    write(&wt.join("src/app.sh"), "#!/bin/sh\necho hello, please\n");
    env.json(&["check", &run], 0);
    let gone = env.tmp.path().join("no-such-remote.git");
    env.git(&["remote", "set-url", "origin", gone.to_str().unwrap()]);
    let v = refused(
        env.airlock(&["--json", "submit", &run]),
        "remote-unreachable",
    );
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("the shared remote `origin` cannot be reached"),
        "{v}"
    );
    assert_eq!(env.state(&run), "checked");
    // Reachable again: submit and approve; then unreachable for promote.
    env.git(&["remote", "set-url", "origin", team.remote.to_str().unwrap()]);
    env.json(&["submit", &run], 0);
    env.json(&["approve", &run], 0);
    let before = team.remote_ref("refs/heads/main");
    env.git(&["remote", "set-url", "origin", gone.to_str().unwrap()]);
    refused(
        env.airlock(&["--json", "promote", &run]),
        "remote-unreachable",
    );
    let out = env.airlock(&["promote", &run]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("check `[team] remote`"),
        "{}",
        out.stderr
    );
    assert_eq!(team.remote_ref("refs/heads/main"), before);
    assert_eq!(env.state(&run), "approved");
    assert!(promote_events(env, &run).is_empty());
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
fn a_kill_after_the_push_and_before_the_record_is_recovered_from_the_remote() {
    let team = Team::new(None);
    let env = &team.env;
    let (run, _) = approved(env);
    killed_at(env, &["promote", &run], "promote:after-push");
    let merge = team.remote_ref("refs/heads/main").unwrap();
    assert!(
        team.remote_ref(&format!("refs/airlock/promoted/{run}"))
            .is_some()
    );
    // Nothing recorded yet: the next command asks the remote and records it.
    let out = env.airlock(&["review"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stderr.contains(&format!(
            "recovered: an interrupted `airlock promote {run}` had pushed refs/heads/main to {} on `origin`; recorded the promotion.",
            &merge[..12]
        )),
        "{}",
        out.stderr
    );
    assert_eq!(env.state(&run), "promoted");
    let events = promote_events(env, &run);
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["data"]["merge"], merge.as_str());
    assert_eq!(events[0]["data"]["recovered"], true);
    // Recorded once: neither recovery nor promote does it again.
    env.json(&["review"], 0);
    refused(env.airlock(&["--json", "promote", &run]), "wrong-state");
    assert_eq!(promote_events(env, &run).len(), 1);
    env.assert_ledger_ok();
}

#[test]
fn a_kill_before_the_push_is_recovered_as_not_promoted_and_promote_works_again() {
    let team = Team::new(None);
    let env = &team.env;
    let (run, _) = approved(env);
    let before = team.remote_ref("refs/heads/main");
    killed_at(env, &["promote", &run], "promote:before-push");
    assert_eq!(team.remote_ref("refs/heads/main"), before);
    let out = env.airlock(&["review"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stderr.contains(&format!(
            "recovered: an interrupted `airlock promote {run}` had not pushed to `origin`; nothing changed."
        )),
        "{}",
        out.stderr
    );
    assert_eq!(env.state(&run), "approved");
    // Recovery released the killed process's lease.
    let promoted = env.json(&["promote", &run], 0);
    assert_eq!(
        team.remote_ref("refs/heads/main").as_deref(),
        promoted["merge"].as_str()
    );
}

/// The remote's `main` after both promotions: first-parent history from
/// the start holds exactly the two merges, each bringing its run's head.
fn assert_merged_once_each(team: &Team, start: &str, heads: &[&str]) {
    let merges = team.remote_git(&[
        "rev-list",
        "--first-parent",
        "--merges",
        "--parents",
        &format!("{start}..main"),
    ]);
    let lines: Vec<&str> = merges.lines().collect();
    assert_eq!(lines.len(), 2, "{merges}");
    let mut brought: Vec<&str> = lines.iter().map(|l| l.split(' ').nth(2).unwrap()).collect();
    brought.sort();
    let mut want = heads.to_vec();
    want.sort();
    assert_eq!(brought, want);
    let all = team.remote_git(&["rev-list", "--count", &format!("{start}..main")]);
    // Two merges and the two runs' commits: nothing rebased or duplicated.
    assert_eq!(all, "4");
}

// Two machines promoting at once share one database: the sealed log on the
// remote is of one database (machines on separate stores would each find
// the other's checkpoints disagree with theirs, `log-inconsistent`).

/// The head `run` was submitted with, from its `submit` event.
fn db_head(env: &Env, url: &str, run: &str) -> String {
    db_json(env, url, &["log", run], 0)["events"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .find(|e| e["kind"] == "submit")
        .map(|e| e["data"]["head"].as_str().unwrap().to_string())
        .unwrap()
}

#[test]
fn two_machines_promoting_two_runs_onto_one_target_take_turns_and_the_later_merges_again() {
    let team = Team::new(None);
    let a = &team.env;
    let b = team.machine("b");
    let db = airlock_store_pg::testing::shared().database();
    let url = db.url();
    let start = team.remote_ref("refs/heads/main").unwrap();
    let run_a = db_approved(
        a,
        &url,
        "src/**",
        "src/app.sh",
        "#!/bin/sh\necho hello, please\n",
    );
    let run_b = db_approved(&b, &url, "docs/**", "docs/guide.md", "# Guide\n\nby b\n");
    // A merges onto the tip and is held just before its push; B waits its
    // turn; then B merges again onto A's merge.
    let pause = tempfile::tempdir().unwrap();
    let mut child = on_db(a, &url, &["--json", "promote", &run_a])
        .env("AIRLOCK_PAUSEPOINT", "promote:before-push")
        .env("AIRLOCK_PAUSEPOINT_DIR", pause.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_reached(&mut child, pause.path(), 1);
    refused(
        db_out(&b, &url, &["--json", "promote", &run_b]),
        "lease-held",
    );
    go(pause.path(), 1);
    let out = finish(child);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let by_a = out.json();
    assert_eq!(by_a["previous"], start.as_str());
    let by_b = db_json(&b, &url, &["promote", &run_b], 0);
    assert_eq!(by_b["previous"], by_a["merge"]);
    assert_eq!(by_b["regated"], serde_json::json!(["build", "test"]));
    assert_eq!(
        team.remote_ref("refs/heads/main").as_deref(),
        by_b["merge"].as_str()
    );
    assert_merged_once_each(
        &team,
        &start,
        &[&db_head(a, &url, &run_a), &db_head(a, &url, &run_b)],
    );
    for run in [&run_a, &run_b] {
        assert_eq!(db_state(a, &url, run), "promoted");
        assert_eq!(db_promotions(a, &url, run).len(), 1);
        assert!(
            team.remote_ref(&format!("refs/airlock/promoted/{run}"))
                .is_some()
        );
    }
    // Both promotions sealed: the whole database agrees with the log.
    db_json(a, &url, &["ledger", "verify", "--remote"], 0);
}

#[test]
fn two_machines_promoting_at_the_same_moment_both_land_exactly_once() {
    let team = Team::new(None);
    let a = &team.env;
    let b = team.machine("b");
    let db = airlock_store_pg::testing::shared().database();
    let url = db.url();
    let start = team.remote_ref("refs/heads/main").unwrap();
    let run_a = db_approved(
        a,
        &url,
        "src/**",
        "src/app.sh",
        "#!/bin/sh\necho hello, please\n",
    );
    let run_b = db_approved(&b, &url, "docs/**", "docs/guide.md", "# Guide\n\nby b\n");
    let spawn = |env: &Env, run: &str| {
        on_db(env, &url, &["--json", "promote", run])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (pa, pb) = (spawn(a, &run_a), spawn(&b, &run_b));
    let (oa, ob) = (finish(pa), finish(pb));
    // Each landed, or waited for the other's lease and lands now.
    let mut landed = Vec::new();
    for (env, run, out) in [(a, &run_a, oa), (&b, &run_b, ob)] {
        if out.code == 0 {
            landed.push(out.json());
        } else {
            refused(out, "lease-held");
            landed.push(db_json(env, &url, &["promote", run], 0));
        }
    }
    assert_merged_once_each(
        &team,
        &start,
        &[&db_head(a, &url, &run_a), &db_head(a, &url, &run_b)],
    );
    let (ja, jb) = (&landed[0], &landed[1]);
    // One landed on the start; the other on it (merged again).
    let tip = team.remote_ref("refs/heads/main").unwrap();
    assert!(
        (ja["merge"] == tip.as_str() && ja["previous"] == jb["merge"])
            || (jb["merge"] == tip.as_str() && jb["previous"] == ja["merge"]),
        "{ja}\n{jb}"
    );
    db_json(a, &url, &["ledger", "verify", "--remote"], 0);
}

// Two machines sharing one PostgreSQL database (the PG store's private
// test cluster) and one remote.

const DATABASE: &str = "AIRLOCK_DATABASE_URL";

fn on_db(env: &Env, url: &str, args: &[&str]) -> Command {
    let mut cmd = env.cmd(args);
    cmd.env(DATABASE, url);
    cmd
}

fn db_out(env: &Env, url: &str, args: &[&str]) -> Output {
    on_db(env, url, args).output().unwrap().into()
}

fn db_json(env: &Env, url: &str, args: &[&str], code: i32) -> Value {
    let mut full = vec!["--json"];
    full.extend_from_slice(args);
    db_out(env, url, &full).expect_json(args, code)
}

fn db_approved(env: &Env, url: &str, touch: &str, path: &str, text: &str) -> String {
    let brief = BRIEF.replace(
        r#"touch = ["src/**", "tests/**"]"#,
        &format!("touch = [{touch:?}]"),
    );
    let brief = env.write_brief("brief", &brief);
    let started = db_json(env, url, &["start", &brief], 0);
    let run = started["run"].as_str().unwrap().to_string();
    write(
        &PathBuf::from(started["worktree"].as_str().unwrap()).join(path),
        text,
    );
    db_json(env, url, &["check", &run], 0);
    db_json(env, url, &["submit", &run], 0);
    db_json(env, url, &["approve", &run], 0);
    run
}

fn db_promotions(env: &Env, url: &str, run: &str) -> Vec<Value> {
    db_json(env, url, &["log", run], 0)["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "promote")
        .cloned()
        .collect()
}

fn db_state(env: &Env, url: &str, run: &str) -> String {
    db_json(env, url, &["show", run, "--no-diff"], 0)["state"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn a_second_machine_promoting_onto_a_target_whose_lease_is_held_is_told_who_holds_it() {
    let team = Team::new(None);
    let a = &team.env;
    let b = team.machine("b");
    team.trust(a, Some("ana@example.invalid"));
    let db = airlock_store_pg::testing::shared().database();
    let url = db.url();
    let run_a = db_approved(
        a,
        &url,
        "src/**",
        "src/app.sh",
        "#!/bin/sh\necho hello, please\n",
    );
    let run_b = db_approved(&b, &url, "docs/**", "docs/guide.md", "# Guide\n\nby b\n");
    let pause = tempfile::tempdir().unwrap();
    let mut child = on_db(a, &url, &["--json", "promote", &run_a])
        .env("AIRLOCK_PAUSEPOINT", "promote:before-push")
        .env("AIRLOCK_PAUSEPOINT_DIR", pause.path())
        .env("AIRLOCK_PRINCIPAL", "ana@example.invalid")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_reached(&mut child, pause.path(), 1);
    let before = team.remote_ref("refs/heads/main");
    let refusal = db_out(&b, &url, &["--json", "promote", &run_b]);
    let v = refused(refusal, "lease-held");
    let message = v["error"]["message"].as_str().unwrap();
    assert!(
        message.contains(&format!(
            "ana@example.invalid is promoting run {run_a} onto main from machine SHA256:"
        )),
        "{message}"
    );
    assert_eq!(team.remote_ref("refs/heads/main"), before);
    assert_eq!(db_state(&b, &url, &run_b), "approved");
    go(pause.path(), 1);
    let out = finish(child);
    assert_eq!(out.code, 0, "{}", out.stderr);
    // Released at the end: B's turn now, merged onto A's merge.
    let by_b = db_json(&b, &url, &["promote", &run_b], 0);
    assert_eq!(by_b["previous"], out.json()["merge"]);
}

#[test]
fn a_kill_after_the_push_is_recorded_once_by_another_machine_sharing_the_database() {
    let team = Team::new(None);
    let a = &team.env;
    let b = team.machine("b");
    let db = airlock_store_pg::testing::shared().database();
    let url = db.url();
    let run = db_approved(
        a,
        &url,
        "src/**",
        "src/app.sh",
        "#!/bin/sh\necho hello, please\n",
    );
    // B has worked on this database before (its own head record exists: a
    // machine that never wrote to it is refused by the store, see
    // docs/team.md).
    let brief = b.write_brief("own", BRIEF);
    db_json(&b, &url, &["start", &brief], 0);
    let out = on_db(a, &url, &["promote", &run])
        .env("AIRLOCK_FAILPOINT", "promote:after-push")
        .output()
        .unwrap();
    assert_eq!(out.status.signal(), Some(9));
    let merge = team.remote_ref("refs/heads/main").unwrap();
    assert_eq!(db_state(&b, &url, &run), "approved");
    // B promotes the run A started: the remote says it is done; B records it.
    let by_b = db_json(&b, &url, &["promote", &run], 0);
    assert_eq!(by_b["merge"], merge.as_str());
    assert!(
        by_b["strategy"]
            .as_str()
            .unwrap()
            .contains("recorded here from the shared remote"),
        "{by_b}"
    );
    assert_eq!(
        team.remote_ref("refs/heads/main").as_deref(),
        Some(merge.as_str())
    );
    // A comes back: its own intent is settled without a second record.
    let back = db_out(a, &url, &["review"]);
    assert_eq!(back.code, 0, "{}", back.stderr);
    assert!(
        back.stderr.contains("the promotion was recorded already"),
        "{}",
        back.stderr
    );
    assert_eq!(db_state(a, &url, &run), "promoted");
    assert_eq!(db_promotions(a, &url, &run).len(), 1);
    refused(
        db_out(&b, &url, &["--json", "promote", &run]),
        "wrong-state",
    );
}

/// A machine's whole directory (its repository, worktrees, proofs and
/// home) moved away while this lives: what another machine sees of it.
struct Hidden<'e> {
    env: &'e Env,
    away: PathBuf,
}

fn hide(env: &Env) -> Hidden<'_> {
    let away = env.tmp.path().with_extension("away");
    std::fs::rename(env.tmp.path(), &away).unwrap();
    Hidden { env, away }
}

impl Drop for Hidden<'_> {
    fn drop(&mut self) {
        let _ = std::fs::rename(&self.away, self.env.tmp.path());
    }
}

#[test]
fn another_machine_approves_and_promotes_a_run_from_what_the_remote_holds() {
    let team = Team::new(None);
    let a = &team.env;
    let b = team.machine("b");
    let db = airlock_store_pg::testing::shared().database();
    let url = db.url();
    // Only B's machine is a runner at first.
    let runners = std::fs::read_to_string(a.repo.join(".airlock/runners")).unwrap();
    let only_b = runners.lines().nth(1).unwrap().to_string() + "\n";
    a.write(".airlock/runners", &only_b);
    a.git(&["commit", "-qam", "only B runs"]);
    a.git(&["push", "-q", "origin", "main"]);
    b.git(&["pull", "-q", "--ff-only", "origin", "main"]);
    // B has worked on this database before (see the kill test).
    let own = b.write_brief("own", BRIEF);
    db_json(&b, &url, &["start", &own], 0);
    // A starts and submits; then A is gone (another machine's disk).
    let brief = a.write_brief("brief", BRIEF);
    let started = db_json(a, &url, &["start", &brief], 0);
    let run = started["run"].as_str().unwrap().to_string();
    write(
        &PathBuf::from(started["worktree"].as_str().unwrap()).join("src/app.sh"),
        "#!/bin/sh\necho hello, please\n",
    );
    db_json(a, &url, &["check", &run], 0);
    let submission = db_json(a, &url, &["submit", &run], 0);
    let away = hide(a);
    // B reads the run from the remote; its proof's key is not trusted yet.
    let shown = db_json(&b, &url, &["show", &run], 0);
    assert_eq!(shown["state"], "in_review");
    let v = refused(
        db_out(&b, &url, &["--json", "approve", &run]),
        "proof-unverified",
    );
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("signed on another machine by a key not in .airlock/runners"),
        "{v}"
    );
    assert_eq!(db_state(&b, &url, &run), "in_review");
    // A's machine key is added to .airlock/runners on main.
    drop(away);
    let key = db_json(a, &url, &["key", "public"], 0)["public_key"]
        .as_str()
        .unwrap()
        .to_string();
    a.write(
        ".airlock/runners",
        &format!("{only_b}ana@example.invalid {key}\n"),
    );
    a.git(&["add", ".airlock/runners"]);
    a.git(&["commit", "-qm", "trust ana's machine"]);
    a.git(&["push", "-q", "origin", "main"]);
    let away = hide(a);
    db_json(&b, &url, &["approve", &run], 0);
    // A's machine leaves the runners on the remote's main after the
    // approval: its proof is refused at promote, nothing pushed.
    let person = b.tmp.path().join("person");
    b.git_in(
        b.tmp.path(),
        &["clone", "-q", team.remote.to_str().unwrap(), "person"],
    );
    write(&person.join(".airlock/runners"), &only_b);
    b.git_in(&person, &["commit", "-qam", "ana's machine is retired"]);
    b.git_in(&person, &["push", "-q", "origin", "main"]);
    let retired = team.remote_ref("refs/heads/main");
    let v = refused(
        db_out(&b, &url, &["--json", "promote", &run]),
        "proof-unverified",
    );
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("signed on another machine by a key not in .airlock/runners"),
        "{v}"
    );
    assert_eq!(team.remote_ref("refs/heads/main"), retired);
    assert_eq!(
        team.remote_ref(&format!("refs/airlock/promoted/{run}")),
        None
    );
    assert_eq!(db_state(&b, &url, &run), "approved");
    // Listed again, it promotes.
    write(
        &person.join(".airlock/runners"),
        &format!("{only_b}ana@example.invalid {key}\n"),
    );
    b.git_in(&person, &["commit", "-qam", "ana's machine is back"]);
    b.git_in(&person, &["push", "-q", "origin", "main"]);
    let tip = b.git_in(&person, &["rev-parse", "HEAD"]);
    let promoted = db_json(&b, &url, &["promote", &run], 0);
    let merge = promoted["merge"].as_str().unwrap();
    assert_eq!(promoted["previous"], tip.as_str());
    assert_eq!(team.remote_ref("refs/heads/main").as_deref(), Some(merge));
    assert_eq!(
        team.remote_git(&["rev-list", "--parents", "-n1", merge]),
        format!("{merge} {tip} {}", submission["head"].as_str().unwrap())
    );
    drop(away);
    assert_eq!(db_state(a, &url, &run), "promoted");
}

#[test]
fn two_machines_promoting_the_same_run_land_it_once_and_the_other_is_refused_cleanly() {
    let team = Team::new(None);
    let a = &team.env;
    let b = team.machine("b");
    let db = airlock_store_pg::testing::shared().database();
    let url = db.url();
    let own = b.write_brief("own", BRIEF);
    db_json(&b, &url, &["start", &own], 0);
    // A's machine is a runner already (the harness); B promotes as bo.
    team.trust(&b, Some("bo@example.invalid"));
    let start = a.rev("main");
    let run = db_approved(
        a,
        &url,
        "src/**",
        "src/app.sh",
        "#!/bin/sh\necho hello, please\n",
    );
    let pause = tempfile::tempdir().unwrap();
    let mut by_b = on_db(&b, &url, &["--json", "promote", &run])
        .env("AIRLOCK_PAUSEPOINT", "promote:before-push")
        .env("AIRLOCK_PAUSEPOINT_DIR", pause.path())
        .env("AIRLOCK_PRINCIPAL", "bo@example.invalid")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_reached(&mut by_b, pause.path(), 1);
    let v = refused(db_out(a, &url, &["--json", "promote", &run]), "lease-held");
    assert!(
        v["error"]["message"].as_str().unwrap().contains(&format!(
            "bo@example.invalid is promoting run {run} onto main"
        )),
        "{v}"
    );
    assert_eq!(
        team.remote_ref("refs/heads/main").as_deref(),
        Some(start.as_str())
    );
    go(pause.path(), 1);
    let out = finish(by_b);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let merge = out.json()["merge"].as_str().unwrap().to_string();
    refused(db_out(a, &url, &["--json", "promote", &run]), "wrong-state");
    assert_eq!(team.remote_ref("refs/heads/main"), Some(merge.clone()));
    assert_eq!(
        team.remote_git(&["rev-list", "--count", "--merges", &format!("{start}..main")]),
        "1"
    );
    assert_eq!(db_promotions(a, &url, &run).len(), 1);
}

#[test]
fn a_forged_promotion_record_on_the_remote_is_refused_and_nothing_is_recorded() {
    let team = Team::new(None);
    let env = &team.env;
    let (run, _) = approved(env);
    let before = team.remote_ref("refs/heads/main").unwrap();
    // Someone with write access to the remote claims the run was promoted:
    // a record whose "merge" is the current tip, which brings nothing of it.
    let forged = serde_json::json!({"run": run, "merge": before, "proof": {"sha256": "00"}});
    let dir = env.tmp.path().join("forger");
    env.git_in(
        env.tmp.path(),
        &["clone", "-q", team.remote.to_str().unwrap(), "forger"],
    );
    write(&dir.join("promotion.json"), &forged.to_string());
    env.git_in(&dir, &["add", "promotion.json"]);
    env.git_in(&dir, &["commit", "-qm", "forged"]);
    env.git_in(
        &dir,
        &[
            "push",
            "-q",
            "origin",
            &format!("HEAD:refs/airlock/promoted/{run}"),
        ],
    );
    let v = refused(
        env.airlock(&["--json", "promote", &run]),
        "remote-record-invalid",
    );
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("has a promotion record for it that does not match it"),
        "{v}"
    );
    assert_eq!(env.state(&run), "approved");
    assert!(promote_events(env, &run).is_empty());
    assert_eq!(team.remote_ref("refs/heads/main"), Some(before));
}

// The human output of a promotion on the shared remote, whole (issue 15's
// transcripts): what was pushed, a remote's refusal, an unreachable remote.

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
fn transcript_of_a_promotion_on_the_shared_remote_and_its_refusals() {
    let team = Team::new(None);
    let env = &team.env;
    let mut text = String::new();
    let (run, wt) = env.start(BRIEF);
    write(&wt.join("src/app.sh"), "#!/bin/sh\necho hello, please\n");
    env.json(&["check", &run], 0);
    assert_eq!(transcript_step(env, &mut text, &["submit", &run]).code, 0);
    assert_eq!(transcript_step(env, &mut text, &["approve", &run]).code, 0);
    assert_eq!(transcript_step(env, &mut text, &["promote", &run]).code, 0);
    let brief = BRIEF.replace("Make greet polite", "Make greet loud");
    let (second, wt) = env.start(&brief);
    write(
        &wt.join("tests/run.sh"),
        "#!/bin/sh\n# loud\nsh src/app.sh | grep -q hello\n",
    );
    env.json(&["check", &second], 0);
    env.json(&["submit", &second], 0);
    env.json(&["approve", &second], 0);
    let hook = team.remote.join("hooks/pre-receive");
    write(&hook, &frozen_hook("main is frozen for the release"));
    std::fs::set_permissions(&hook, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    assert_eq!(
        transcript_step(env, &mut text, &["promote", &second]).code,
        1
    );
    std::fs::remove_file(&hook).unwrap();
    let gone = team.remote.with_file_name("gone.git");
    env.git(&["remote", "set-url", "origin", gone.to_str().unwrap()]);
    assert_eq!(
        transcript_step(env, &mut text, &["promote", &second]).code,
        1
    );
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
        insta::assert_snapshot!("team_remote_promotion", text);
    });
}

#[test]
fn the_approved_actions_run_once_after_the_push_and_never_when_the_remote_refuses() {
    let server = common::http::HttpServer::start();
    let lane =
        "\n[lanes.governed]\nscopes = [\"http:POST:127.0.0.1:*\"]\naction_env = [\"HOOK_TOKEN\"]\n";
    let team = Team::with_workflow(&format!("{WORKFLOW}{lane}{TEAM}"));
    let env = &team.env;
    let (run, wt) = env.start(BRIEF);
    write(&wt.join("src/app.sh"), "#!/bin/sh\necho hello, please\n");
    let action = env.tmp.path().join("notify.toml");
    write(
        &action,
        &format!(
            r#"kind = "http"
name = "notify"
scopes = ["http:POST:127.0.0.1:{port}/*"]
method = "POST"
url = "http://127.0.0.1:{port}/hooks/deploy"
body = '{{"ref": "main"}}'
[headers]
Authorization = "Bearer ${{HOOK_TOKEN}}"
"#,
            port = server.port
        ),
    );
    env.json(&["propose", &run, action.to_str().unwrap()], 0);
    env.json(&["check", &run], 0);
    env.json(&["submit", &run], 0);
    env.json(&["approve", &run], 0);
    let token = [("HOOK_TOKEN", "t0k3n")];
    let hook = team.remote.join("hooks/pre-receive");
    write(&hook, &frozen_hook("no pushes today"));
    std::fs::set_permissions(&hook, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    refused(
        env.airlock_env(&["--json", "promote", &run], &token),
        "remote-rejected",
    );
    assert!(server.requests().is_empty(), "{:?}", server.requests());
    std::fs::remove_file(&hook).unwrap();
    let promoted = env
        .airlock_env(&["--json", "promote", &run], &token)
        .expect_json(&["promote"], 0);
    assert_eq!(promoted["actions"]["complete"], true, "{promoted}");
    assert_eq!(server.requests().len(), 1, "{:?}", server.requests());
    // Once: promoting again is refused, and applying the rest applies nothing.
    refused(
        env.airlock_env(&["--json", "promote", &run], &token),
        "wrong-state",
    );
    env.airlock_env(&["--json", "promote", &run, "--actions-only"], &token)
        .expect_json(&["promote", "--actions-only"], 0);
    assert_eq!(server.requests().len(), 1, "{:?}", server.requests());
}

/// Red team (issue 20): someone with push rights merges a run nobody
/// approved into the remote's target themselves and writes a well-formed
/// `refs/airlock/promoted/<run>` for it. No machine records the run as
/// promoted nor applies anything of it: `promote` refuses a run not
/// approved, and the run stays in review.
#[test]
fn a_promotion_record_forged_for_a_run_never_approved_is_not_recorded() {
    let team = Team::new(None);
    let env = &team.env;
    let (run, submission) = submitted(env);
    let state = env.state(&run);
    let dir = env.tmp.path().join("forger");
    env.git_in(
        env.tmp.path(),
        &["clone", "-q", team.remote.to_str().unwrap(), "forger"],
    );
    env.git_in(
        &dir,
        &[
            "fetch",
            "-q",
            "origin",
            &format!("refs/airlock/runs/{run}/r1"),
        ],
    );
    env.git_in(
        &dir,
        &[
            "merge",
            "-q",
            "--no-ff",
            "-m",
            "merged by hand",
            "FETCH_HEAD^1",
        ],
    );
    let merge = env.git_in(&dir, &["rev-parse", "HEAD"]);
    env.git_in(&dir, &["push", "-q", "origin", "HEAD:refs/heads/main"]);
    let forged = serde_json::json!({"run": run, "merge": merge,
        "proof": {"sha256": submission["digest"]}, "by": {"principal": "mallory"}});
    write(&dir.join("promotion.json"), &forged.to_string());
    env.git_in(&dir, &["add", "promotion.json"]);
    env.git_in(&dir, &["commit", "-qm", "forged"]);
    env.git_in(
        &dir,
        &[
            "push",
            "-q",
            "origin",
            &format!("HEAD:refs/airlock/promoted/{run}"),
        ],
    );
    let out = env.airlock(&["--json", "promote", &run]);
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    env.json(&["review"], 0);
    assert_eq!(env.state(&run), state);
    assert!(promote_events(env, &run).is_empty());
}
// Approvals at the tip merged onto (issue 20, teamwire): the remote
// promotion checks the signed approvals under the rules on the remote's
// target, as the local one does.

fn ed25519_key(dir: &Path, name: &str) -> (PathBuf, String) {
    let key = dir.join(name);
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
        .arg(&key)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let public = std::fs::read_to_string(key.with_extension("pub")).unwrap();
    (key, public.trim().to_string())
}

#[test]
fn a_remote_promotion_under_owners_made_stricter_on_the_remote_is_approvals_missing() {
    let team = Team::new(None);
    let env = &team.env;
    let keys = env.tmp.path().join("keys");
    std::fs::create_dir_all(&keys).unwrap();
    let (alice, alice_pub) = ed25519_key(&keys, "alice");
    let (_, bob_pub) = ed25519_key(&keys, "bob");
    env.commit_file(
        ".airlock/reviewers",
        &format!("alice@example.com {alice_pub}\nbob@example.com {bob_pub}\n"),
        "reviewers",
    );
    env.git(&["push", "-q", "origin", "main"]);
    let dev = [("AIRLOCK_PRINCIPAL", "dev@example.com")];
    let (run, wt) = {
        let brief = env.write_brief("brief", BRIEF);
        let v = env
            .airlock_env(&["--json", "start", &brief], &dev)
            .expect_json(&["start"], 0);
        (
            v["run"].as_str().unwrap().to_string(),
            PathBuf::from(v["worktree"].as_str().unwrap()),
        )
    };
    write(&wt.join("src/app.sh"), "#!/bin/sh\necho hello, please\n");
    env.airlock_env(&["--json", "check", &run], &dev)
        .expect_json(&["check"], 0);
    env.airlock_env(&["--json", "submit", &run], &dev)
        .expect_json(&["submit"], 0);
    // One approval: enough under the rules the approval was made under.
    env.airlock_env(
        &["--json", "approve", &run, "--key", alice.to_str().unwrap()],
        &[("AIRLOCK_PRINCIPAL", "alice@example.com")],
    )
    .expect_json(&["approve"], 0);
    assert_eq!(env.state(&run), "approved");
    // Meanwhile the remote's target comes to need two owners for src/**.
    let person = env.tmp.path().join("person");
    env.git_in(
        env.tmp.path(),
        &["clone", "-q", team.remote.to_str().unwrap(), "person"],
    );
    write(
        &person.join(".airlock/owners"),
        "src/** alice@example.com bob@example.com n=2\n",
    );
    env.git_in(&person, &["add", ".airlock/owners"]);
    env.git_in(&person, &["commit", "-qm", "owners: two for src"]);
    env.git_in(&person, &["push", "-q", "origin", "main"]);
    let tip = team.remote_ref("refs/heads/main");
    let before = env.world();
    let v = refused(
        env.airlock_env(&["--json", "promote", &run], &dev),
        "approvals-missing",
    );
    let message = v["error"]["message"].as_str().unwrap();
    assert!(
        message.contains(&format!("refusing to promote run {run}")),
        "{v}"
    );
    assert!(v.to_string().contains("bob@example.com"), "{v}");
    assert_eq!(team.remote_ref("refs/heads/main"), tip);
    assert_eq!(
        team.remote_ref(&format!("refs/airlock/promoted/{run}")),
        None
    );
    assert_eq!(env.state(&run), "approved");
    // Nothing recorded or moved here (the fetch's tracking refs aside).
    let after = env.world();
    assert_eq!(after.runs, before.runs);
    assert_eq!(after.events, before.events);
    assert_eq!(after.run_dirs, before.run_dirs);
    assert_eq!(
        after.fingerprint.get(".git/refs/heads/main"),
        before.fingerprint.get(".git/refs/heads/main")
    );
    env.assert_ledger_ok();
    assert!(promote_events(env, &run).is_empty());
}

// A machine new to a shared database (issue 20, teamwire): its first
// command there may be a decision.

fn as_on_db(env: &Env, url: &str, principal: &str, args: &[&str]) -> Output {
    let mut full = vec!["--json"];
    full.extend_from_slice(args);
    on_db(env, url, &full)
        .env("AIRLOCK_PRINCIPAL", principal)
        .output()
        .unwrap()
        .into()
}

/// A run started, checked and submitted on `env` by dev@example.com.
fn db_submitted(env: &Env, url: &str) -> String {
    let brief = env.write_brief("brief", BRIEF);
    let dev = "dev@example.com";
    let started = as_on_db(env, url, dev, &["start", &brief]).expect_json(&["start"], 0);
    let run = started["run"].as_str().unwrap().to_string();
    write(
        &PathBuf::from(started["worktree"].as_str().unwrap()).join("src/app.sh"),
        "#!/bin/sh\necho hello, please\n",
    );
    as_on_db(env, url, dev, &["check", &run]).expect_json(&["check"], 0);
    as_on_db(env, url, dev, &["submit", &run]).expect_json(&["submit"], 0);
    run
}

/// The head records a machine keeps (its key directory, under its home).
fn head_records(env: &Env) -> Vec<PathBuf> {
    fn walk(dir: &Path, found: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, found);
            } else if path.extension().is_some_and(|e| e == "head") {
                found.push(path);
            }
        }
    }
    let mut found = Vec::new();
    walk(&env.home, &mut found);
    found
}

#[test]
fn a_machine_new_to_the_database_promotes_first_and_is_held_to_its_record_after() {
    let team = Team::new(None);
    let a = &team.env;
    let b = team.machine("b");
    let db = airlock_store_pg::testing::shared().database();
    let url = db.url();
    // Both machines' keys may sign proofs and checkpoints (reading its key
    // writes nothing to the database).
    let key_of = |env: &Env| {
        db_json(env, &url, &["key", "public"], 0)["public_key"]
            .as_str()
            .unwrap()
            .to_string()
    };
    // B's key made by `init`, away from the database.
    assert_eq!(b.airlock(&["init"]).code, 0);
    let runners = format!(
        "dev@example.com {}\nrev@example.com {}\n",
        key_of(a),
        key_of(&b)
    );
    a.write(".airlock/runners", &runners);
    a.git(&["add", ".airlock/runners"]);
    a.git(&["commit", "-qm", "trust both machines"]);
    a.git(&["push", "-q", "origin", "main"]);
    b.git(&["pull", "-q", "origin", "main"]);
    let run = db_submitted(a, &url);
    as_on_db(a, &url, "dev@example.com", &["approve", &run]).expect_json(&["approve"], 0);
    assert!(head_records(&b).is_empty());
    // B never wrote to the database: its first decision there, a
    // promotion, works.
    let v = as_on_db(&b, &url, "rev@example.com", &["promote", &run]).expect_json(&["promote"], 0);
    assert_eq!(db_state(&b, &url, &run), "promoted", "{v}");
    // It now has a record and is held to it: with its record and the
    // database's marker for it removed, its next promotion is refused, as
    // the database holds events of its machine.
    let records = head_records(&b);
    assert_eq!(records.len(), 1, "{records:?}");
    std::fs::remove_file(&records[0]).unwrap();
    let mut admin = db.admin();
    let removed = admin
        .execute(
            "DELETE FROM airlock_meta WHERE key = 'head_record' AND strpos(scope, $1) > 0",
            &[&b.repo.display().to_string()],
        )
        .unwrap();
    assert_eq!(removed, 1);
    let run2 = db_submitted(a, &url);
    as_on_db(a, &url, "dev@example.com", &["approve", &run2]).expect_json(&["approve"], 0);
    let tip = team.remote_ref("refs/heads/main");
    let out = as_on_db(&b, &url, "rev@example.com", &["promote", &run2]);
    let v = refused(out, "ledger-unproven");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("cannot prove"),
        "{v}"
    );
    assert_eq!(db_state(a, &url, &run2), "approved");
    assert_eq!(team.remote_ref("refs/heads/main"), tip);
}

// The rules files in team mode (issue 20, `runners`): read from the
// remote's target tip, never from this checkout's branch; and team mode
// requires `.airlock/runners` there.

impl Team {
    /// A clone of the remote with its own home whose key no runners line
    /// lists (not enrolled).
    fn stranger(&self, name: &str) -> Env {
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

    /// Every `refs/` of the remote, with its object.
    fn remote_refs(&self) -> String {
        self.remote_git(&["for-each-ref", "--format=%(refname) %(objectname)"])
    }
}

/// Nothing recorded, written or moved in `env` since `before`, but the
/// refs a fetch from the remote keeps (`refs/airlock/remote/`,
/// `refs/airlock-seal/`).
fn unchanged_but_fetched(env: &Env, before: &World) {
    let kept = |w: &World| -> std::collections::BTreeMap<String, String> {
        w.fingerprint
            .iter()
            .filter(|(k, _)| {
                !k.starts_with(".git/refs/airlock/remote/")
                    && !k.starts_with(".git/refs/airlock-seal/")
            })
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    };
    let now = env.world();
    assert_eq!(kept(before), kept(&now), "main repository changed");
    assert_eq!(before.runs, now.runs, "run states changed");
    assert_eq!(before.events, now.events, "ledger events were added");
    assert_eq!(before.run_dirs, now.run_dirs, "run directories changed");
    env.assert_ledger_ok();
}

/// The leaves of the sealed log in `env`'s SQLite store.
fn leaves(env: &Env) -> i64 {
    env.db()
        .query_row("SELECT count(*) FROM log_leaves", [], |r| r.get(0))
        .unwrap_or(0)
}

#[test]
fn a_runners_line_committed_locally_and_never_pushed_neither_seals_nor_promotes() {
    let team = Team::new(None);
    // Mallory's machine is no runner on the remote. She commits her own
    // line into .airlock/runners on her local main and never pushes it.
    let m = team.stranger("mallory");
    let line = runners_line(&m, None);
    let (run, _) = approved(&m);
    let mut runners = m.read(".airlock/runners");
    runners.push_str(&line);
    m.write(".airlock/runners", &runners);
    m.git(&["commit", "-qam", "I am a runner now"]);
    let remote_before = team.remote_refs();
    let before = m.world();
    let leaves_before = leaves(&m);
    // Sealing: refused, nothing pushed, no leaf written.
    let out = m.airlock(&["--json", "ledger", "seal"]);
    let v = refused(out, "log-unsealed");
    let text = v.to_string();
    assert!(text.contains("cannot sign the sealed log"), "{v}");
    assert!(text.contains("never from this checkout"), "{v}");
    assert_eq!(team.remote_refs(), remote_before);
    assert_eq!(leaves(&m), leaves_before);
    unchanged_but_fetched(&m, &before);
    // Promoting: refused before anything lands on the remote.
    let v = refused(m.airlock(&["--json", "promote", &run]), "log-unsealed");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains(&format!("refusing to promote run {run}")),
        "{v}"
    );
    // The seal's refusal is carried as reasons of their own, one line each.
    let reasons = v["error"]["reasons"].as_array().unwrap();
    assert!(
        reasons.len() >= 2
            && reasons.iter().all(|r| !r.as_str().unwrap().contains('\n'))
            && reasons[0]
                .as_str()
                .unwrap()
                .contains("cannot sign the sealed log"),
        "{v}"
    );
    assert_eq!(team.remote_refs(), remote_before);
    assert_eq!(leaves(&m), leaves_before);
    assert_eq!(m.state(&run), "approved");
    assert!(promote_events(&m, &run).is_empty());
}

#[test]
fn a_reviewers_line_committed_locally_and_never_pushed_approves_nothing() {
    let team = Team::new(None);
    let env = &team.env;
    let keys = env.tmp.path().join("keys");
    std::fs::create_dir_all(&keys).unwrap();
    let (_, alice_pub) = ed25519_key(&keys, "alice");
    let (mallory, mallory_pub) = ed25519_key(&keys, "mallory");
    env.commit_file(
        ".airlock/reviewers",
        &format!("alice@example.com {alice_pub}\n"),
        "reviewers",
    );
    env.git(&["push", "-q", "origin", "main"]);
    let dev = [("AIRLOCK_PRINCIPAL", "dev@example.com")];
    let brief = env.write_brief("brief", BRIEF);
    let v = env
        .airlock_env(&["--json", "start", &brief], &dev)
        .expect_json(&["start"], 0);
    let run = v["run"].as_str().unwrap().to_string();
    write(
        &PathBuf::from(v["worktree"].as_str().unwrap()).join("src/app.sh"),
        "#!/bin/sh\necho hello, please\n",
    );
    env.airlock_env(&["--json", "check", &run], &dev)
        .expect_json(&["check"], 0);
    env.airlock_env(&["--json", "submit", &run], &dev)
        .expect_json(&["submit"], 0);
    // Mallory lists herself in reviewers on this checkout's main only.
    env.commit_file(
        ".airlock/reviewers",
        &format!("alice@example.com {alice_pub}\nmallory@example.com {mallory_pub}\n"),
        "mallory reviews",
    );
    let remote_before = team.remote_refs();
    let before = env.world();
    let v = refused(
        env.airlock_env(
            &[
                "--json",
                "approve",
                &run,
                "--key",
                mallory.to_str().unwrap(),
            ],
            &[("AIRLOCK_PRINCIPAL", "mallory@example.com")],
        ),
        "reviewer-unknown",
    );
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("mallory@example.com may not approve"),
        "{v}"
    );
    unchanged_but_fetched(env, &before);
    assert_eq!(env.state(&run), "in_review");
    assert_eq!(team.remote_refs(), remote_before);
}

/// The first machine's team without `.airlock/runners` on the remote's
/// main (removed, committed and pushed).
fn without_runners(team: &Team) {
    let env = &team.env;
    env.git(&["rm", "-q", ".airlock/runners"]);
    env.git(&["commit", "-qm", "no runners"]);
    env.git(&["push", "-q", "origin", "main"]);
}

fn assert_runners_missing(out: Output, doing: &str) {
    let v = refused(out, "runners-missing");
    let e = &v["error"];
    let message = e["message"].as_str().unwrap();
    assert!(
        message.contains(&format!(
            "refusing to {doing}: the team's remote `origin` has no .airlock/runners on main"
        )),
        "{v}"
    );
    let text = v.to_string();
    assert!(text.contains("one line per machine key"), "{v}");
    assert!(text.contains("nothing was pushed or recorded"), "{v}");
    assert!(
        e["hint"]
            .as_str()
            .unwrap()
            .contains("`airlock key public --runners-line` prints its line"),
        "{v}"
    );
}

#[test]
fn team_mode_without_a_runners_file_refuses_submit_seal_and_promote() {
    let team = Team::new(None);
    let env = &team.env;
    // A run approved while the file was there; then it is removed.
    let (approved_run, _) = approved(env);
    let (run, wt) = env.start(BRIEF);
    write(&wt.join("src/app.sh"), "#!/bin/sh\necho hello, please\n");
    env.json(&["check", &run], 0);
    without_runners(&team);
    let remote_before = team.remote_refs();
    let before = env.world();
    assert_runners_missing(
        env.airlock(&["--json", "submit", &run]),
        &format!("submit run {run}"),
    );
    assert_runners_missing(
        env.airlock(&["--json", "ledger", "seal"]),
        "seal the ledger",
    );
    assert_runners_missing(
        env.airlock(&["--json", "promote", &approved_run]),
        &format!("promote run {approved_run}"),
    );
    assert_eq!(team.remote_refs(), remote_before);
    unchanged_but_fetched(env, &before);
    assert_eq!(env.state(&run), "checked");
    assert_eq!(env.state(&approved_run), "approved");
    // The human refusal says what the file holds and how to get a line.
    let out = env.airlock(&["submit", &run]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr
            .contains("the team's remote `origin` has no .airlock/runners on main"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("PRINCIPAL KEY"), "{}", out.stderr);
    assert!(
        out.stderr.contains("airlock key public --runners-line"),
        "{}",
        out.stderr
    );
    // The line it names is the machine's: listed again, all goes through.
    env.write(".airlock/runners", &runners_line(env, None));
    env.git(&["add", ".airlock/runners"]);
    env.git(&["commit", "-qm", "runners again"]);
    env.git(&["push", "-q", "origin", "main"]);
    env.json(&["submit", &run], 0);
    env.json(&["promote", &approved_run], 0);
    assert!(team.remote_ref("refs/airlock/log").is_some());
}

/// Two machines of a team, each on a database of its own (SQLite, the default): the
/// second's promotion is refused, and the refusal says first what to fix (one database
/// for the team), before the leaves it cannot match. Nothing lands on the remote.
#[test]
fn a_machine_on_a_database_of_its_own_is_told_the_team_shares_one() {
    let team = Team::new(None);
    let a = &team.env;
    let b = team.machine("b");
    let (run_a, _) = approved(a);
    a.json(&["promote", &run_a], 0);
    b.git(&["pull", "-q", "--ff-only", "origin", "main"]);
    let (run_b, _) = submitted(&b);
    let remote_before = team.remote_refs();
    for args in [["approve", &run_b], ["promote", &run_b]] {
        let out = b.airlock(&args);
        assert_eq!(out.code, 1, "{}", out.stderr);
        assert!(
            out.stderr.contains("was begun by another database than this machine's: every machine of a team must use the same database (`[store] url`")
                && out.stderr.contains("hint: point this machine at the team's database"),
            "{}",
            out.stderr
        );
        let v = refused(b.airlock(&["--json", args[0], &run_b]), "log-inconsistent");
        assert!(
            v["error"]["reasons"][0]
                .as_str()
                .unwrap()
                .contains("was begun by another database"),
            "{v}"
        );
    }
    assert_eq!(team.remote_refs(), remote_before);
    assert_eq!(b.state(&run_b), "in_review");
    assert!(promote_events(&b, &run_b).is_empty());
}
