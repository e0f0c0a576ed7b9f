//! `airlock snap`: golden snapshots standalone, in a run, and as a gate.

mod common;

use std::path::{Path, PathBuf};

use base64::Engine;
use common::*;
use serde_json::Value;

/// `airlock ARGS` in `dir`, with `CI` unset (or set when `ci`).
fn snap_in(env: &Env, dir: &Path, args: &[&str], ci: bool) -> Output {
    let mut cmd = env.cmd(args);
    cmd.current_dir(dir);
    if ci {
        cmd.env("CI", "true");
    } else {
        cmd.env_remove("CI");
    }
    cmd.output().unwrap().into()
}

fn snap(env: &Env, args: &[&str]) -> Output {
    snap_in(env, &env.repo, args, false)
}

fn snaps(env: &Env) -> PathBuf {
    env.repo.join(".airlock/snapshots")
}

fn read(path: &Path) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

/// Every file under the snapshots directory, with its content.
fn files(dir: &Path) -> Vec<(String, String)> {
    let mut out: Vec<_> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.map(|e| {
                let e = e.unwrap();
                (
                    e.file_name().to_string_lossy().into_owned(),
                    std::fs::read_to_string(e.path()).unwrap_or_default(),
                )
            })
            .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

#[test]
fn standalone_a_new_snapshot_is_pending_until_accepted() {
    let env = Env::bare();
    let out = snap(
        &env,
        &[
            "snap",
            "run",
            "greet",
            "--",
            "sh",
            "-c",
            "echo hi; echo oops >&2; exit 3",
        ],
    );
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stdout.contains("new snapshot `greet`"),
        "{}",
        out.stdout
    );
    assert!(!snaps(&env).join("greet.snap").exists());
    let pending = read(&snaps(&env).join("greet.snap.new")).unwrap();
    assert!(pending.contains("exit: 3\n"), "{pending}");
    assert!(
        pending.contains(
            "==== stdout ====\nhi\n==== end ====\n==== stderr ====\noops\n==== end ====\n"
        ),
        "{pending}"
    );

    let list = env.json(&["snap", "list"], 0);
    assert_eq!(list["snapshots"][0]["state"], "new");

    let out = snap(&env, &["snap", "accept", "greet"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(read(&snaps(&env).join("greet.snap")).unwrap(), pending);
    assert!(!snaps(&env).join("greet.snap.new").exists());

    let out = snap(
        &env,
        &[
            "--json",
            "snap",
            "run",
            "greet",
            "--",
            "sh",
            "-c",
            "echo hi; echo oops >&2; exit 3",
        ],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let v = out.json();
    assert_eq!(v["decision"], "matched");
    assert_eq!(v["golden_sha256"], v["actual_sha256"]);
    assert_eq!(
        env.json(&["snap", "list"], 0)["snapshots"][0]["state"],
        "ok"
    );
}

#[test]
fn standalone_outside_git_uses_the_current_directory() {
    let env = Env::bare();
    let plain = env.tmp.path().join("plain");
    std::fs::create_dir_all(&plain).unwrap();
    let out = snap_in(&env, &plain, &["snap", "run", "x", "--", "pwd"], false);
    assert_eq!(out.code, 1, "{}", out.stderr);
    let pending = read(&plain.join(".airlock/snapshots/x.snap.new")).unwrap();
    // The directory the command ran in is a placeholder, not a machine's path.
    assert!(pending.contains("==== stdout ====\n[ROOT]\n"), "{pending}");
}

#[test]
fn a_mismatch_writes_a_pending_result_and_the_golden_stays() {
    let env = Env::bare();
    snap(&env, &["snap", "run", "g", "--", "printf", "a\\nb\\nc\\n"]);
    snap(&env, &["snap", "accept", "g"]);
    let golden = read(&snaps(&env).join("g.snap")).unwrap();

    let out = snap(&env, &["snap", "run", "g", "--", "printf", "a\\nB\\nc\\n"]);
    assert_eq!(out.code, 1);
    assert!(out.stdout.contains("-b\n+B\n"), "{}", out.stdout);
    assert!(
        out.stdout.contains("changed (+1 -1 lines)"),
        "{}",
        out.stdout
    );
    assert!(!out.stdout.contains('\x1b'), "no colour off a terminal");
    assert_eq!(read(&snaps(&env).join("g.snap")).unwrap(), golden);
    assert!(snaps(&env).join("g.snap.new").exists());
    assert_eq!(
        env.json(&["snap", "list"], 0)["snapshots"][0]["state"],
        "changed"
    );

    let v = env.json(&["snap", "diff", "g"], 0);
    assert_eq!(v["state"], "changed");
    assert!(
        v["diff"]
            .as_str()
            .unwrap()
            .contains("@@ -1,3 +1,3 @@\n a\n-b\n+B\n c\n"),
        "{v}"
    );

    let out = snap(&env, &["snap", "reject", "g"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(!snaps(&env).join("g.snap.new").exists());
    assert_eq!(read(&snaps(&env).join("g.snap")).unwrap(), golden);
}

#[test]
fn a_match_after_a_mismatch_clears_the_stale_pending_result() {
    let env = Env::bare();
    snap(&env, &["snap", "run", "g", "--", "echo", "one"]);
    snap(&env, &["snap", "accept", "g"]);
    assert_eq!(
        snap(&env, &["snap", "run", "g", "--", "echo", "two"]).code,
        1
    );
    let out = snap(&env, &["snap", "run", "g", "--", "echo", "one"]);
    assert_eq!(out.code, 0);
    assert!(
        out.stdout.contains("removed the stale pending result"),
        "{}",
        out.stdout
    );
    assert!(!snaps(&env).join("g.snap.new").exists());
}

#[test]
fn on_ci_nothing_is_ever_written() {
    let env = Env::bare();
    let out = snap_in(
        &env,
        &env.repo,
        &["snap", "run", "g", "--", "echo", "one"],
        true,
    );
    assert_eq!(out.code, 1);
    assert!(
        out.stdout.contains("CI is set: nothing was written"),
        "{}",
        out.stdout
    );
    assert!(!snaps(&env).exists());

    snap(&env, &["snap", "run", "g", "--", "echo", "one"]);
    snap(&env, &["snap", "accept", "g"]);
    let before = files(&snaps(&env));
    let out = snap_in(
        &env,
        &env.repo,
        &["snap", "run", "g", "--", "echo", "two"],
        true,
    );
    assert_eq!(out.code, 1);
    assert!(out.stdout.contains("-one\n+two\n"), "{}", out.stdout);
    assert_eq!(files(&snaps(&env)), before);
    assert_eq!(
        snap_in(
            &env,
            &env.repo,
            &["snap", "run", "g", "--", "echo", "one"],
            true
        )
        .code,
        0
    );

    // Accept and reject refuse on CI and leave the pending result alone.
    snap(&env, &["snap", "run", "g", "--", "echo", "three"]);
    let before = files(&snaps(&env));
    for verb in ["accept", "reject"] {
        let out = snap_in(&env, &env.repo, &["snap", verb, "--all"], true);
        assert_eq!(out.code, 1, "{verb}");
        assert!(
            out.stderr
                .contains(&format!("error: `airlock snap {verb}` does not run on CI")),
            "{}",
            out.stderr
        );
        assert!(out.stderr.contains("hint: review and"), "{}", out.stderr);
        assert_eq!(files(&snaps(&env)), before);
    }
}

/// A repository whose snapshots `names` are accepted goldens of `echo NAME`.
fn with_goldens(names: &[&str]) -> Env {
    let env = Env::bare();
    for n in names {
        snap(&env, &["snap", "run", n, "--", "echo", n]);
        snap(&env, &["snap", "accept", n]);
    }
    env
}

#[test]
fn accept_all_makes_every_pending_result_the_golden() {
    let env = with_goldens(&["a", "b"]);
    let b_golden = read(&snaps(&env).join("b.snap")).unwrap();
    // `a` changes, `d` is new, `b` still matches.
    assert_eq!(snap(&env, &["snap", "run", "a", "--", "echo", "A"]).code, 1);
    assert_eq!(snap(&env, &["snap", "run", "d", "--", "echo", "d"]).code, 1);
    assert_eq!(snap(&env, &["snap", "run", "b", "--", "echo", "b"]).code, 0);
    let a_pending = read(&snaps(&env).join("a.snap.new")).unwrap();
    let d_pending = read(&snaps(&env).join("d.snap.new")).unwrap();

    let out = snap(&env, &["snap", "accept", "--all"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout, "accepted `a`\naccepted `d`\n");
    assert_eq!(
        files(&snaps(&env)),
        vec![
            ("a.snap".to_string(), a_pending),
            ("b.snap".to_string(), b_golden),
            ("d.snap".to_string(), d_pending),
        ]
    );
    for (n, text) in [("a", "A"), ("b", "b"), ("d", "d")] {
        let out = snap(&env, &["snap", "run", n, "--", "echo", text]);
        assert_eq!(out.code, 0, "{n}: {}", out.stdout);
    }

    // Nothing pending: accepted nothing, changed nothing.
    let before = files(&snaps(&env));
    let v = env.json(&["snap", "accept", "--all"], 0);
    assert_eq!(v["action"], "accept");
    assert_eq!(v["snapshots"], serde_json::json!([]));
    assert_eq!(files(&snaps(&env)), before);
}

#[test]
fn reject_all_drops_every_pending_result_and_keeps_the_goldens() {
    let env = with_goldens(&["a", "b"]);
    let goldens = files(&snaps(&env));
    // `b` changes, `e` is new.
    assert_eq!(snap(&env, &["snap", "run", "b", "--", "echo", "B"]).code, 1);
    assert_eq!(snap(&env, &["snap", "run", "e", "--", "echo", "e"]).code, 1);

    let v = env.json(&["snap", "reject", "--all"], 0);
    assert_eq!(v["action"], "reject");
    let names: Vec<&str> = v["snapshots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["b", "e"]);
    assert_eq!(files(&snaps(&env)), goldens);
    assert_eq!(snap(&env, &["snap", "run", "b", "--", "echo", "b"]).code, 0);

    let out = snap(&env, &["snap", "reject", "--all"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout.starts_with("nothing pending in "),
        "{}",
        out.stdout
    );
    assert_eq!(files(&snaps(&env)), goldens);
}

#[test]
fn a_golden_with_wildcards_matches_through_snap_run() {
    let env = Env::bare();
    let cmd = ["snap", "run", "w", "--", "cat", "out.txt"];
    env.write("out.txt", "build 1 of widget\nstep a\nstep b\ndone\n");
    snap(&env, &cmd);
    snap(&env, &["snap", "accept", "w"]);
    // The reviewer loosens the golden: `[..]` within a line, `...` for lines.
    let golden_path = snaps(&env).join("w.snap");
    let recorded = read(&golden_path).unwrap();
    let exact = "==== stdout ====\nbuild 1 of widget\nstep a\nstep b\ndone\n==== end ====\n";
    assert!(recorded.contains(exact), "{recorded}");
    let golden = recorded.replace(
        exact,
        "==== stdout ====\nbuild [..] widget\n...\ndone\n==== end ====\n",
    );
    std::fs::write(&golden_path, &golden).unwrap();

    for (output, why) in [
        (
            "build 7 of the widget\nstep x\nstep y\nstep z\ndone\n",
            "other text, more lines",
        ),
        ("build  widget\ndone\n", "empty `[..]`, no lines for `...`"),
    ] {
        env.write("out.txt", output);
        let out = snap(
            &env,
            &["--json", "snap", "run", "w", "--", "cat", "out.txt"],
        );
        assert_eq!(out.code, 0, "{why}: {}{}", out.stdout, out.stderr);
        let v = out.json();
        assert_eq!(v["decision"], "matched", "{why}: {v}");
        assert_eq!(read(&golden_path).unwrap(), golden, "{why}");
        assert!(!snaps(&env).join("w.snap.new").exists(), "{why}");
    }

    // Outside the wildcards the text must still match. The difference names
    // the golden line that found no match (lines `...` took are shown as
    // context).
    for (output, diff) in [
        ("build 2 of widget\nstep a\nfinished\n", "-done\n"),
        ("rebuild 2 of widget\ndone\n", "-build [..] widget\n"),
    ] {
        env.write("out.txt", output);
        let out = snap(&env, &cmd);
        assert_eq!(out.code, 1, "{output:?}: {}", out.stdout);
        assert!(out.stdout.contains(diff), "{output:?}: {}", out.stdout);
        assert!(
            out.stdout.contains("snapshot `w` changed"),
            "{}",
            out.stdout
        );
        assert_eq!(read(&golden_path).unwrap(), golden);
        assert!(snaps(&env).join("w.snap.new").exists());
    }
}

#[test]
fn refusals_say_why_and_lose_nothing() {
    let env = Env::bare();
    snap(&env, &["snap", "run", "g", "--", "echo", "one"]);
    snap(&env, &["snap", "accept", "g"]);
    // A pending result a stray accept or reject must not touch.
    snap(&env, &["snap", "run", "p", "--", "echo", "pending"]);
    let before = files(&snaps(&env));
    assert_eq!(before.len(), 2, "{before:?}");

    let other = "it contains a character other than letters, digits, `-`, `_` and `.`";
    for (bad, why) in [
        ("../escape", "it contains a path separator"),
        ("a/b", "it contains a path separator"),
        (".hidden", "it starts with `.`"),
        ("x y", other),
    ] {
        let message = format!("error: snapshot name `{bad}` is not allowed: {why}\n");
        let hint = "  hint: use letters, digits, `-`, `_` and `.`, e.g. `cli-help`\n";
        let out = snap(&env, &["snap", "run", bad, "--", "touch", "ran"]);
        assert_eq!(out.code, 2, "{bad}");
        assert_eq!(out.stderr, format!("{message}{hint}"), "run {bad}");
        assert!(!env.repo.join("ran").exists(), "the command must not run");
        for verb in ["accept", "reject", "diff"] {
            let out = snap(&env, &["snap", verb, bad]);
            assert_eq!(out.code, 2, "{verb} {bad}");
            assert_eq!(out.stderr, format!("{message}{hint}"), "{verb} {bad}");
            assert_eq!(out.stdout, "", "{verb} {bad}");
            assert_eq!(files(&snaps(&env)), before, "{verb} {bad}");
        }
    }
    assert!(!env.tmp.path().join("escape.snap.new").exists());
    assert!(!env.tmp.path().join("escape.snap").exists());

    let out = snap(&env, &["snap", "accept", "nope"]);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains("error: no snapshot named `nope`"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("hint: `airlock snap list`"),
        "{}",
        out.stderr
    );
    let out = snap(&env, &["snap", "reject", "g"]);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr
            .contains("snapshot `g` has no pending result to reject"),
        "{}",
        out.stderr
    );

    let out = snap(&env, &["snap", "run", "g", "--", "/nonexistent/tool"]);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains("cannot run `/nonexistent/tool`"),
        "{}",
        out.stderr
    );
    assert_eq!(files(&snaps(&env)), before);

    // A golden edited into an invalid form: a position, and nothing runs.
    let golden = snaps(&env).join("g.snap");
    let broken = read(&golden).unwrap().replace("exit: 0", "exit: zero");
    std::fs::write(&golden, &broken).unwrap();
    let out = snap(&env, &["snap", "run", "g", "--", "touch", "ran"]);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains(
            "g.snap:5:7: invalid snapshot: expected an exit code (an integer), found `zero`"
        ),
        "{}",
        out.stderr
    );
    assert!(!env.repo.join("ran").exists());
    assert_eq!(read(&golden).unwrap(), broken);
    assert!(!snaps(&env).join("g.snap.new").exists());
}

#[test]
fn list_shows_ok_changed_new_and_orphaned() {
    let env = Env::new();
    for n in ["a", "b"] {
        snap(&env, &["snap", "run", n, "--", "echo", n]);
        snap(&env, &["snap", "accept", n]);
    }
    snap(&env, &["snap", "run", "b", "--", "echo", "B"]);
    snap(&env, &["snap", "run", "c", "--", "echo", "c"]);
    // A golden a workflow gate recorded, whose gate is gone.
    let gone = read(&snaps(&env).join("a.snap"))
        .unwrap()
        .replace("origin: \"snap run\"", "origin: \"gate:old-output\"");
    std::fs::write(snaps(&env).join("old.snap"), gone).unwrap();
    let v = env.json(&["snap", "list"], 0);
    let states: Vec<(String, String)> = v["snapshots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["name"].as_str().unwrap().into(),
                e["state"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        states,
        [
            ("a", "ok"),
            ("b", "changed"),
            ("c", "new"),
            ("old", "orphaned")
        ]
        .map(|(a, b)| (a.to_string(), b.to_string()))
    );
    let human = snap(&env, &["snap", "list"]).stdout;
    assert!(
        human.contains("orphaned  old  (gate:old-output)"),
        "{human}"
    );
}

#[test]
fn binary_and_oversized_output_are_compared_by_digest() {
    let env = Env::bare();
    let out = snap(&env, &["snap", "run", "bin", "--", "printf", "a\\000b"]);
    assert_eq!(out.code, 1);
    assert!(
        out.stdout.contains("note: stdout is binary (3 bytes"),
        "{}",
        out.stdout
    );
    let pending = read(&snaps(&env).join("bin.snap.new")).unwrap();
    assert!(pending.contains("==== stdout binary sha256="), "{pending}");

    env.write(".airlock/workflow.toml", "[snapshots]\nmax_bytes = 8\n");
    let out = snap(
        &env,
        &["snap", "run", "big", "--", "echo", "more than eight bytes"],
    );
    assert_eq!(out.code, 1);
    assert!(out.stdout.contains("over the size cap"), "{}", out.stdout);
    let pending = read(&snaps(&env).join("big.snap.new")).unwrap();
    assert!(
        pending.contains("==== stdout over-cap sha256="),
        "{pending}"
    );
}

#[test]
fn workflow_filters_apply_after_the_built_ins() {
    let env = Env::bare();
    env.write(
        ".airlock/workflow.toml",
        "[[snapshots.filters]]\nregex = 'pid=\\d+'\nplaceholder = \"pid=[PID]\"\n",
    );
    let out = snap(
        &env,
        &[
            "snap",
            "run",
            "f",
            "--",
            "sh",
            "-c",
            "echo pid=$$ took 12ms",
        ],
    );
    assert_eq!(out.code, 1, "{}", out.stderr);
    let pending = read(&snaps(&env).join("f.snap.new")).unwrap();
    assert!(pending.contains("pid=[PID] took [DURATION]\n"), "{pending}");
    assert!(
        pending.contains(r#""filter:pid=\\d+ => pid=[PID]""#),
        "{pending}"
    );
}

#[test]
fn an_invalid_filter_regex_is_reported_with_its_position_at_init_and_brief_check() {
    let env = Env::bare();
    env.write("README", "x\n");
    env.git(&["add", "-A"]);
    env.git(&["commit", "-q", "-m", "init"]);
    env.write(
        ".airlock/workflow.toml",
        "[gates.t]\nrun = \"true\"\n\n[[snapshots.filters]]\nregex = 'ab(c'\nplaceholder = \"X\"\n",
    );
    let out = env.airlock(&["init"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains(".airlock/workflow.toml:5:12: invalid regex in [[snapshots.filters]] #1 at character 3: unclosed group"),
        "{}",
        out.stderr
    );
    let brief = env.write_brief(
        "b",
        "title = \"t\"\nobjective = \"o\"\ntouch = [\"x\"]\nchecks = [\"t\"]\nrollback = \"r\"\n",
    );
    let out = env.airlock(&["brief", "check", &brief]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("5:12: invalid regex"), "{}", out.stderr);
}

#[test]
fn in_a_run_the_command_is_traced_in_the_worktree() {
    let env = Env::new();
    let (run, wt) = env.start(BRIEF);
    write(
        &wt.join("src/app.sh"),
        "#!/bin/sh\necho hello from $(pwd)\n",
    );
    let out = snap(
        &env,
        &[
            "--json",
            "snap",
            "run",
            "app",
            "--run",
            &run,
            "--",
            "sh",
            "src/app.sh",
        ],
    );
    assert_eq!(out.code, 1, "{}", out.stderr);
    let v = out.json();
    assert_eq!(v["decision"], "new");
    assert_eq!(v["run"], run.as_str());
    let pending = read(&snaps(&env).join("app.snap.new")).unwrap();
    assert!(pending.contains("hello from [ROOT]\n"), "{pending}");

    let traces = env.json(&["show", &run], 0)["traces"].clone();
    let last = traces.as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["origin"], "snap:app");
    assert_eq!(last["n"], v["trace"]);

    // A run that is not staged or checked refuses, and nothing is written.
    let out = snap(
        &env,
        &["snap", "run", "app", "--run", "no-such-run", "--", "true"],
    );
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains("no run named `no-such-run`"),
        "{}",
        out.stderr
    );
    env.assert_ledger_ok();
}

const GATE_WORKFLOW: &str = r#"[gates.build]
run = "test -f src/app.sh"
timeout = 30

[gates.cli-output]
run = "sh src/app.sh"
snapshot = "greeting"
timeout = 30
"#;

const GATE_BRIEF: &str = r#"title = "Make greet polite"
objective = "greet prints a polite greeting"
touch = ["src/**", "tests/**"]
checks = ["build", "cli-output"]
rollback = "revert the merge commit"
"#;

fn checks_statement(proof: &Path) -> Value {
    for line in std::fs::read_to_string(proof).unwrap().lines() {
        let env: Value = serde_json::from_str(line).unwrap();
        let payload = base64::engine::general_purpose::STANDARD
            .decode(env["payload"].as_str().unwrap())
            .unwrap();
        let st: Value = serde_json::from_slice(&payload).unwrap();
        if st["predicateType"] == "https://airlock.dev/checks/v1" {
            return st["predicate"].clone();
        }
    }
    panic!("no checks statement in {}", proof.display());
}

#[test]
fn a_snapshot_gate_fails_check_until_the_difference_is_accepted_and_the_proof_records_it() {
    let env = Env::new();
    env.write(".airlock/workflow.toml", GATE_WORKFLOW);
    env.git(&["commit", "-q", "-am", "snapshot gate"]);
    let (run, wt) = env.start(GATE_BRIEF);

    // No golden yet: the gate fails and the result is pending.
    let out = snap(&env, &["--json", "check", &run]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    let v = out.json();
    let gate = &v["gates"][1];
    assert_eq!(gate["status"], "failed");
    assert_eq!(gate["snapshot"]["decision"], "new");
    assert!(gate["snapshot"]["golden_sha256"].is_null());
    assert!(snaps(&env).join("greeting.snap.new").exists());
    let human = snap(&env, &["check", &run]);
    assert!(
        human.stdout.contains("snapshot `greeting`: new"),
        "{}",
        human.stdout
    );
    assert!(
        human.stdout.contains("`airlock snap diff greeting`"),
        "{}",
        human.stdout
    );

    assert_eq!(snap(&env, &["snap", "accept", "greeting"]).code, 0);
    let golden = read(&snaps(&env).join("greeting.snap")).unwrap();
    assert!(golden.contains("origin: \"gate:cli-output\""), "{golden}");

    // The agent changes the output: the gate fails on the difference.
    write(&wt.join("src/app.sh"), "#!/bin/sh\necho hello, please\n");
    let v = snap(&env, &["--json", "check", &run]).json();
    assert_eq!(v["passed"], false);
    assert_eq!(v["gates"][1]["snapshot"]["decision"], "changed");
    assert_eq!(v["gates"][1]["snapshot"]["added"], 1);
    assert_eq!(snap(&env, &["check", &run]).code, 1);
    // On CI the difference fails too, and nothing is written.
    snap(&env, &["snap", "reject", "greeting"]);
    let before = files(&snaps(&env));
    let out = snap_in(&env, &env.repo, &["--json", "check", &run], true);
    assert_eq!(out.code, 1);
    assert!(out.json()["gates"][1]["snapshot"]["pending"].is_null());
    assert_eq!(files(&snaps(&env)), before);

    // The reviewer accepts the new output; check passes and the proof says so.
    snap(&env, &["check", &run]);
    let out = snap(&env, &["snap", "diff", "greeting"]);
    assert!(
        out.stdout.contains("-hello\n+hello, please\n"),
        "{}",
        out.stdout
    );
    assert_eq!(snap(&env, &["snap", "accept", "greeting"]).code, 0);
    let v = snap(&env, &["--json", "check", &run]).json();
    assert_eq!(v["passed"], true, "{v}");
    let s = &v["gates"][1]["snapshot"];
    assert_eq!(s["decision"], "matched");
    let golden_digest = s["golden_sha256"].as_str().unwrap().to_string();
    assert_eq!(s["actual_sha256"], golden_digest.as_str());

    let v = snap(&env, &["--json", "submit", &run]).json();
    let _ = v;
    let show = env.json(&["show", &run], 0);
    let proof = PathBuf::from(show["proof"]["path"].as_str().unwrap());
    let checks = checks_statement(&proof);
    let recorded = &checks["gates"][1]["snapshot"];
    assert_eq!(recorded["name"], "greeting");
    assert_eq!(recorded["decision"], "matched");
    assert_eq!(recorded["golden_sha256"], golden_digest.as_str());
    assert_eq!(recorded["actual_sha256"], golden_digest.as_str());
    env.assert_ledger_ok();
}
