//! kill -9 at every step that touches the repository, then the next command.
//!
//! `AIRLOCK_FAILPOINT=<name>` makes airlock SIGKILL itself at that point.
//! After each crash, the next command (`review` or `log`) must repair what
//! was left, say so on stderr (`warning: recovered: …`), and leave the run,
//! the repository and the ledger consistent; re-running the interrupted
//! command must then work (or, where the work was finished by recovery, be
//! refused as already done).

mod common;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};

use common::*;

/// Runs `airlock ARGS` with the failpoint set and asserts it died by SIGKILL.
fn killed_at(env: &Env, args: &[&str], failpoint: &str) {
    let out = env
        .cmd(args)
        .env("AIRLOCK_FAILPOINT", failpoint)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        None,
        "airlock {args:?} with {failpoint} exited normally: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        out.status.signal(),
        Some(9),
        "airlock {args:?} with {failpoint}"
    );
}

/// Intent lock files left in the state directory.
fn intent_locks(env: &Env) -> Vec<String> {
    std::fs::read_dir(env.state_dir().join("locks"))
        .map(|rd| {
            rd.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// The `recovered:` lines of a command's stderr.
fn recovered(out: &Output) -> Vec<String> {
    out.stderr
        .lines()
        .filter(|l| l.contains("recovered:"))
        .map(str::to_string)
        .collect()
}

fn events_of_kind(env: &Env, run: Option<&str>, kind: &str) -> Vec<serde_json::Value> {
    env.events(run)
        .into_iter()
        .filter(|e| e["kind"] == kind)
        .collect()
}

fn killed_start(failpoint: &str) {
    let env = Env::new();
    let before = env.main_fingerprint();
    let brief = env.write_brief("brief", BRIEF);
    killed_at(&env, &["start", &brief], failpoint);

    // What the crash left, before any recovery.
    let left_dirs = env.run_dirs();
    let left_branches = env.airlock_branches();
    match failpoint {
        "start:after-intent" => {
            assert!(left_dirs.is_empty(), "{left_dirs:?}");
            assert_eq!(left_branches, "");
        }
        "start:after-worktree" => {
            assert_eq!(left_dirs.len(), 1, "{left_dirs:?}");
            assert_eq!(left_branches, "");
        }
        "start:after-branch" => {
            assert_eq!(left_dirs.len(), 1, "{left_dirs:?}");
            assert_eq!(left_branches, format!("refs/airlock/runs/{}", left_dirs[0]));
        }
        other => unreachable!("{other}"),
    }

    let out = env.airlock(&["review"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let notes = recovered(&out);
    assert_eq!(notes.len(), 1, "{}", out.stderr);
    let note = &notes[0];
    assert!(note.starts_with("warning: recovered: "), "{note}");
    assert!(
        note.contains("an interrupted `airlock start` left run ")
            && note.contains("half-made")
            && note.contains("Start it again with the same brief."),
        "{note}"
    );
    let what = match failpoint {
        "start:after-intent" => "removed nothing on disk.",
        "start:after-worktree" => "removed its worktree.",
        _ => "removed its worktree and its branch.",
    };
    assert!(note.contains(what), "{note}");
    if let Some(id) = left_dirs.first() {
        assert!(note.contains(id.as_str()), "{note}");
    }

    // Nothing half-made is left, and main is as it was.
    assert!(intent_locks(&env).is_empty(), "{:?}", intent_locks(&env));
    assert!(env.run_dirs().is_empty(), "{:?}", env.run_dirs());
    assert_eq!(env.airlock_branches(), "");
    assert_eq!(env.main_fingerprint(), before);
    assert!(
        env.json(&["review"], 0)["queue"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    let recoveries = events_of_kind(&env, None, "recover");
    assert_eq!(recoveries.len(), 1, "{recoveries:?}");
    assert_eq!(recoveries[0]["data"]["operation"], "start");
    env.assert_ledger_ok();

    // Recovery is done once.
    let again = env.airlock(&["log"]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert!(recovered(&again).is_empty(), "{}", again.stderr);

    // Starting again with the same brief works, all the way to a promotion.
    let v = env.json(&["start", &brief], 0);
    let run = v["run"].as_str().unwrap();
    let wt = std::path::PathBuf::from(v["worktree"].as_str().unwrap());
    assert_eq!(env.run_dirs(), [run]);
    write(&wt.join("src/app.sh"), "#!/bin/sh\necho hello, please\n");
    env.json(&["check", run], 0);
    env.json(&["submit", run], 0);
    env.json(&["approve", run], 0);
    env.json(&["promote", run], 0);
    assert_eq!(env.read("src/app.sh"), "#!/bin/sh\necho hello, please\n");
    // Finished work leaves no intent locks behind.
    assert!(intent_locks(&env).is_empty(), "{:?}", intent_locks(&env));
    env.assert_ledger_ok();
}

#[test]
fn start_killed_after_intent() {
    killed_start("start:after-intent");
}

#[test]
fn start_killed_after_worktree() {
    killed_start("start:after-worktree");
}

#[test]
fn start_killed_after_branch() {
    killed_start("start:after-branch");
}

fn killed_submit(failpoint: &str) {
    let env = Env::new();
    let (run, wt) = env.start(BRIEF);
    write(&wt.join("src/app.sh"), "#!/bin/sh\necho hello, please\n");
    env.json(&["check", &run], 0);
    let before = env.main_fingerprint();
    killed_at(&env, &["submit", &run], failpoint);

    // submit records no intent: its partial work (a commit on the run's own
    // branch, a proof file) is overwritten by the next submit, and the run
    // is still `checked`, out of the review queue.
    let out = env.airlock(&["log", &run]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(recovered(&out).is_empty(), "{}", out.stderr);
    assert_eq!(env.state(&run), "checked");
    assert!(
        env.json(&["review"], 0)["queue"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert!(events_of_kind(&env, Some(&run), "submit").is_empty());
    // Only the run's own branch may have moved; main is as it was.
    let mut now = env.main_fingerprint();
    let mut was = before.clone();
    let branch = format!(".git/refs/airlock/runs/{run}");
    now.remove(&branch);
    was.remove(&branch);
    assert_eq!(now, was);
    env.assert_ledger_ok();

    // Submitting again works and the run goes through.
    let submitted = env.json(&["submit", &run], 0);
    assert_eq!(submitted["state"], "in_review");
    assert_eq!(
        env.rev(&format!("refs/airlock/runs/{run}")),
        submitted["head"]
    );
    assert_eq!(env.json(&["proof", "verify", &run], 0)["verified"], true);
    env.json(&["approve", &run], 0);
    env.json(&["promote", &run], 0);
    assert_eq!(env.state(&run), "promoted");
    assert_eq!(env.read("src/app.sh"), "#!/bin/sh\necho hello, please\n");
    env.assert_ledger_ok();
}

#[test]
fn exec_killed_right_after_its_trace_keeps_the_trace() {
    // A trace is committed without waiting for the disk (a power cut may
    // drop the last ones), but airlock dying is not a power cut: the trace
    // is there, whole, and the ledger verifies.
    let env = Env::new();
    let (run, wt) = env.start(BRIEF);
    killed_at(
        &env,
        &["exec", &run, "--", "sh", "-c", "echo kept > kept.txt"],
        "exec:after-trace",
    );
    assert_eq!(
        std::fs::read_to_string(wt.join("kept.txt")).unwrap(),
        "kept\n"
    );
    let traces = env.json(&["show", &run, "--no-diff"], 0)["traces"].clone();
    let traces = traces.as_array().unwrap();
    assert_eq!(traces.len(), 1, "{traces:?}");
    assert_eq!(traces[0]["n"], 1);
    assert_eq!(traces[0]["exit"]["code"], 0);
    assert_eq!(traces[0]["files_changed"][0]["path"], "kept.txt");
    assert_eq!(events_of_kind(&env, Some(&run), "exec").len(), 1);
    env.assert_ledger_ok();
    // The next command is the run's second.
    assert_eq!(env.json(&["exec", &run, "--", "true"], 0)["n"], 2);
}

#[test]
fn submit_killed_after_commit() {
    killed_submit("submit:after-commit");
}

#[test]
fn submit_killed_after_proof() {
    killed_submit("submit:after-proof");
}

#[test]
fn promote_killed_before_the_ref_moved_leaves_the_run_approved() {
    let env = Env::new();
    let (run, _wt) = env.approved();
    let before = env.main_fingerprint();
    let base = env.rev("main");
    killed_at(&env, &["promote", &run], "promote:before-ref");
    assert_eq!(env.rev("main"), base);

    let out = env.airlock(&["review"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        recovered(&out),
        [format!(
            "warning: recovered: an interrupted `airlock promote {run}` had not moved refs/heads/main; nothing changed. Run `airlock promote {run}` again."
        )],
        "{}",
        out.stderr
    );
    assert_eq!(env.state(&run), "approved");
    assert_eq!(env.main_fingerprint(), before);
    let recoveries = events_of_kind(&env, Some(&run), "recover");
    assert_eq!(recoveries.len(), 1);
    assert_eq!(recoveries[0]["data"]["outcome"], "not started");
    env.assert_ledger_ok();

    let promoted = env.json(&["promote", &run], 0);
    assert_eq!(promoted["previous"], base.as_str());
    assert_eq!(env.state(&run), "promoted");
    assert_eq!(env.read("src/app.sh"), "#!/bin/sh\necho hello, please\n");
    assert_eq!(env.git(&["status", "--porcelain"]), "");
    env.assert_ledger_ok();
}

fn killed_promote_after_ref(failpoint: &str) {
    let env = Env::new();
    let (run, _wt) = env.approved();
    let base = env.rev("main");
    let head = env.rev(&format!("refs/airlock/runs/{run}"));
    killed_at(&env, &["promote", &run], failpoint);

    // The ref moved before the crash.
    let merge = env.rev("main");
    assert_ne!(merge, base);
    assert_eq!(env.rev("main^1"), base);
    assert_eq!(env.rev("main^2"), head);
    let updated = env.read("src/app.sh") == "#!/bin/sh\necho hello, please\n";
    assert_eq!(updated, failpoint == "promote:after-checkout");

    let out = env.airlock(&["log", &run]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        recovered(&out),
        [format!(
            "warning: recovered: an interrupted `airlock promote {run}` had moved refs/heads/main to {}; recorded the promotion and updated the main checkout.",
            &merge[..12]
        )],
        "{}",
        out.stderr
    );
    assert_eq!(env.state(&run), "promoted");
    assert_eq!(env.rev("main"), merge);
    assert!(intent_locks(&env).is_empty(), "{:?}", intent_locks(&env));
    assert_eq!(env.read("src/app.sh"), "#!/bin/sh\necho hello, please\n");
    assert_eq!(env.git(&["status", "--porcelain"]), "");
    let promotions = events_of_kind(&env, Some(&run), "promote");
    assert_eq!(promotions.len(), 1, "{promotions:?}");
    assert_eq!(promotions[0]["data"]["recovered"], true);
    assert_eq!(promotions[0]["data"]["merge"], merge.as_str());
    env.assert_ledger_ok();

    // Promoting again is refused: it is done, exactly once.
    let again = env.airlock(&["promote", &run]);
    assert_eq!(again.code, 1, "{}", again.stderr);
    assert!(
        again.stderr.contains(&format!(
            "run {run} is promoted; `promote` needs it to be approved"
        )),
        "{}",
        again.stderr
    );
    assert!(recovered(&again).is_empty(), "{}", again.stderr);
    assert_eq!(env.rev("main"), merge);
    env.assert_ledger_ok();
}

#[test]
fn promote_killed_after_the_ref_moved_is_finished_by_recovery() {
    killed_promote_after_ref("promote:after-ref");
}

#[test]
fn promote_killed_after_the_checkout_was_updated_is_finished_by_recovery() {
    killed_promote_after_ref("promote:after-checkout");
}

/// A process holding an exclusive flock on `path` until its stdin closes.
struct HeldLock(std::process::Child);

impl HeldLock {
    fn take(path: &std::path::Path) -> HeldLock {
        let mut child = Command::new("python3")
            .args([
                "-c",
                "import fcntl, sys\n\
                 f = open(sys.argv[1], 'w')\n\
                 fcntl.flock(f, fcntl.LOCK_EX)\n\
                 print('locked', flush=True)\n\
                 sys.stdin.read()\n",
            ])
            .arg(path)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 is needed to hold a lock from outside airlock");
        let mut line = String::new();
        BufReader::new(child.stdout.as_mut().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "locked");
        HeldLock(child)
    }

    fn release(mut self) {
        let mut stdin = self.0.stdin.take().unwrap();
        stdin.write_all(b"").unwrap();
        drop(stdin);
        assert!(self.0.wait().unwrap().success());
    }
}

/// An intent whose lock is held belongs to a command still running in
/// another process: it must be left alone, and repaired only once the lock
/// is free. (A `start` cannot be paused at a failpoint, so the live process
/// is stood in for by holding the intent's lock, which is exactly what
/// recovery looks at.)
#[test]
fn a_live_start_in_another_process_is_not_recovered() {
    let env = Env::new();
    env.airlock(&["review"]);
    let token = "00000000c0ffee00";
    let run = "live-start-0001";
    let base = env.rev("main");
    env.db()
        .execute(
            "INSERT INTO intents (kind, run, data) VALUES ('start', ?1, ?2)",
            [
                run.to_string(),
                serde_json::json!({
                    "run_dir": env.state_dir().join("runs").join(run),
                    "branch": format!("refs/airlock/runs/{run}"),
                    "base": base,
                    "token": token,
                })
                .to_string(),
            ],
        )
        .unwrap();
    let lock_path = env.state_dir().join("locks").join(format!("{token}.lock"));
    std::fs::create_dir_all(lock_path.parent().unwrap()).unwrap();
    let held = HeldLock::take(&lock_path);

    for args in [vec!["review"], vec!["log"]] {
        let out = env.airlock(&args);
        assert_eq!(out.code, 0, "{}", out.stderr);
        assert!(recovered(&out).is_empty(), "{}", out.stderr);
    }
    let intents: i64 = env
        .db()
        .query_row("SELECT count(*) FROM intents", [], |r| r.get(0))
        .unwrap();
    assert_eq!(intents, 1, "a live intent was removed");
    assert!(events_of_kind(&env, None, "recover").is_empty());

    // The process is gone: now the intent is abandoned and is repaired.
    held.release();
    let out = env.airlock(&["review"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        recovered(&out),
        [format!(
            "warning: recovered: an interrupted `airlock start` left run {run} half-made; removed nothing on disk. Start it again with the same brief."
        )],
        "{}",
        out.stderr
    );
    let intents: i64 = env
        .db()
        .query_row("SELECT count(*) FROM intents", [], |r| r.get(0))
        .unwrap();
    assert_eq!(intents, 0);
    assert!(
        !lock_path.exists(),
        "the abandoned intent's lock file was left"
    );
    env.assert_ledger_ok();
}
