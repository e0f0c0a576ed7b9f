//! Every command of the staged run, through the binary, on its good path:
//! what it prints, what it records, and what it leaves behind.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use common::*;
use serde_json::Value;

fn names(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap().to_string())
        .collect()
}

fn field<'a>(items: &'a Value, key: &str) -> Vec<&'a str> {
    items
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x[key].as_str().unwrap())
        .collect()
}

/// A repository with one commit holding `files`, before `airlock init`.
fn bare_with(files: &[(&str, &str)]) -> Env {
    let env = Env::bare();
    for (path, text) in files {
        env.write(path, text);
    }
    env.git(&["add", "-A"]);
    env.git(&["commit", "-q", "-m", "initial"]);
    env
}

// ---- init -----------------------------------------------------------------

#[test]
fn init_detects_cargo_gates() {
    let env = bare_with(&[(
        "Cargo.toml",
        "[package]\nname = \"x\"\nversion = \"0.1.0\"\n",
    )]);
    let v = env.json(&["init"], 0);
    assert_eq!(v["workflow_written"], true);
    assert!(
        v["detected"].as_str().unwrap().contains("Cargo.toml"),
        "{v}"
    );
    assert_eq!(names(&v["gates"]), ["build", "lint", "test"]);
    let wf = env.read(".airlock/workflow.toml");
    assert!(
        wf.contains("[gates.build]\nrun = \"cargo build --all-targets\""),
        "{wf}"
    );
    assert!(
        wf.contains("cargo clippy --all-targets -- -D warnings"),
        "{wf}"
    );
    assert!(wf.contains("[gates.test]\nrun = \"cargo test\""), "{wf}");
}

#[test]
fn init_detects_package_json_scripts() {
    let env = bare_with(&[(
        "package.json",
        r#"{"name": "x", "scripts": {"start": "node .", "test": "jest", "lint": "eslint .", "build": "tsc"}}"#,
    )]);
    let v = env.json(&["init"], 0);
    assert!(
        v["detected"].as_str().unwrap().contains("package.json"),
        "{v}"
    );
    // Known scripts, in gate order; `start` is not a gate.
    assert_eq!(names(&v["gates"]), ["build", "lint", "test"]);
    let wf = env.read(".airlock/workflow.toml");
    assert!(wf.contains("run = \"npm run --silent test\""), "{wf}");
    assert!(!wf.contains("npm run --silent start"), "{wf}");
}

#[test]
fn init_detects_makefile_targets() {
    let env = bare_with(&[(
        "Makefile",
        "build:\n\tcc -o app app.c\n\ntest: build\n\t./app --self-test\n\nclean:\n\trm -f app\n",
    )]);
    let out = env.airlock(&["init"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout.contains("Makefile: make targets build, test"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("gates, in order: build, test"));
    let wf = env.read(".airlock/workflow.toml");
    assert!(wf.contains("run = \"make build\""), "{wf}");
    assert!(wf.contains("run = \"make test\""), "{wf}");
    assert!(!wf.contains("make clean"), "{wf}");
}

#[test]
fn init_writes_a_commented_template_when_nothing_is_detected() {
    let env = bare_with(&[("README.md", "# hi\n")]);
    let v = env.json(&["init"], 0);
    assert!(
        v["detected"]
            .as_str()
            .unwrap()
            .contains("wrote a commented template"),
        "{v}"
    );
    assert_eq!(v["gates"], serde_json::json!([]));
    let wf = env.read(".airlock/workflow.toml");
    assert!(wf.contains("# [gates.build]"), "{wf}");
    assert!(wf.contains("[policy]"), "{wf}");
    // The human output says what to do with an empty workflow.
    let again = env.airlock(&["init"]);
    assert!(again.stdout.contains("(none yet: edit the workflow)"));
}

#[test]
fn init_twice_keeps_the_workflow_and_the_key() {
    let env = Env::new();
    let edited = format!("{WORKFLOW}\n# my own note\n");
    env.write(".airlock/workflow.toml", &edited);
    let key_before = std::fs::read(env.home.join(".config/airlock/signing_key")).unwrap();
    let out = env.airlock(&["init"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.starts_with("kept "), "{}", out.stdout);
    assert!(out.stdout.contains("using signing key"), "{}", out.stdout);
    let v = env.json(&["init"], 0);
    assert_eq!(v["workflow_written"], false);
    assert_eq!(v["key_created"], false);
    assert_eq!(env.read(".airlock/workflow.toml"), edited);
    assert_eq!(
        std::fs::read(env.home.join(".config/airlock/signing_key")).unwrap(),
        key_before
    );
    let ignore = env.read(".airlock/.gitignore");
    assert_eq!(ignore.matches("/local/").count(), 1, "{ignore}");
}

#[test]
fn init_creates_a_private_key_outside_the_repo_and_ignores_local_state() {
    let env = bare_with(&[("README.md", "# hi\n")]);
    let v = env.json(&["init"], 0);
    let key_dir = env.home.join(".config/airlock");
    assert_eq!(
        v["key_dir"].as_str().unwrap(),
        key_dir.display().to_string()
    );
    assert_eq!(v["key_created"], true);
    let key = key_dir.join("signing_key");
    let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "signing key mode {mode:o}");
    assert!(
        v["public_key"]
            .as_str()
            .unwrap()
            .starts_with("ssh-ed25519 AAAA")
    );
    assert!(
        env.read(".airlock/.gitignore")
            .lines()
            .any(|l| l == "/local/")
    );

    // Local state written by a run is ignored by git in the main checkout.
    env.git(&["add", "-A"]);
    env.git(&["commit", "-q", "-m", "airlock init"]);
    env.write(".airlock/workflow.toml", WORKFLOW);
    env.git(&["commit", "-q", "-am", "workflow"]);
    env.start(BRIEF);
    assert!(env.state_dir().join("ledger.db").exists());
    assert_eq!(env.git(&["status", "--porcelain", "--ignored=no"]), "");
}

// ---- brief check ----------------------------------------------------------

#[test]
fn brief_check_accepts_a_valid_brief() {
    let env = Env::new();
    let path = env.write_brief("ok", BRIEF);
    let out = env.airlock(&["brief", "check", &path]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("is a valid brief"), "{}", out.stdout);
    assert!(out.stdout.contains("checks: build, test"), "{}", out.stdout);
    assert!(out.stdout.contains("class default, lane governed"));
    let v = env.json(&["brief", "check", &path], 0);
    assert_eq!(v["valid"], true);
    assert_eq!(v["workflow_checked"], true);
    assert_eq!(names(&v["brief"]["checks"]), ["build", "test"]);
    assert_eq!(names(&v["brief"]["touch"]), ["src/**", "tests/**"]);
}

// ---- start ----------------------------------------------------------------

#[test]
fn start_creates_a_run_with_its_own_worktree_and_branch() {
    let env = Env::new();
    let head = env.rev("HEAD");
    let path = env.write_brief("b", BRIEF);
    let v = env.json(&["start", &path], 0);
    let run = v["run"].as_str().unwrap();
    assert!(run.starts_with("make-greet-polite-"), "{run}");
    assert_eq!(v["state"], "staged");
    assert_eq!(v["branch"], format!("airlock/{run}"));
    assert_eq!(v["ref"], format!("refs/airlock/runs/{run}"));
    assert_eq!(v["base"], head.as_str());
    assert_eq!(v["target"], "main");
    let wt = Path::new(v["worktree"].as_str().unwrap());
    assert_eq!(wt, env.state_dir().join("runs").join(run).join("worktree"));
    // The worktree holds exactly the files of HEAD.
    for file in env.git(&["ls-files"]).lines() {
        assert_eq!(
            std::fs::read(wt.join(file)).unwrap(),
            std::fs::read(env.repo.join(file)).unwrap(),
            "{file}"
        );
    }
    assert_eq!(env.rev(&format!("refs/airlock/runs/{run}")), head);
    assert_eq!(env.state(run), "staged");
    // The human form names the worktree and the next step.
    let out = env.airlock(&["start", &path]);
    assert!(out.stdout.starts_with("started run make-greet-polite-"));
    assert!(out.stdout.contains("  worktree: "));
    assert!(out.stdout.contains("next: work in the worktree"));
    env.assert_ledger_ok();
}

#[test]
fn start_from_another_base() {
    let env = Env::new();
    let first = env.rev("HEAD");
    env.commit_file("src/app.sh", "#!/bin/sh\necho hi\n", "newer");
    let path = env.write_brief("b", BRIEF);
    let v = env.json(&["start", &path, "--base", "HEAD~1"], 0);
    assert_eq!(v["base"], first.as_str());
    let wt = Path::new(v["worktree"].as_str().unwrap());
    assert_eq!(
        std::fs::read_to_string(wt.join("src/app.sh")).unwrap(),
        "#!/bin/sh\necho hello\n"
    );
    let run = v["run"].as_str().unwrap();
    assert_eq!(env.rev(&format!("refs/airlock/runs/{run}")), first);
}

// ---- exec -----------------------------------------------------------------

#[test]
fn exec_passes_the_exit_status_through() {
    let env = Env::new();
    let (run, _) = env.start(BRIEF);
    let out = env.airlock(&["exec", &run, "--", "sh", "-c", "exit 7"]);
    assert_eq!(out.code, 7);
    assert!(
        out.stderr
            .contains(&format!("airlock: trace 1 of run {run}: exit 7")),
        "{}",
        out.stderr
    );
    let ok = env.airlock(&["exec", &run, "--", "true"]);
    assert_eq!(ok.code, 0);
    assert_eq!(ok.stderr, "");
    let traces = env.json(&["show", &run, "--no-diff"], 0)["traces"].clone();
    assert_eq!(traces[0]["exit"]["code"], 7);
    assert_eq!(traces[1]["exit"]["code"], 0);
    env.assert_ledger_ok();
}

#[test]
fn exec_runs_nothing_when_the_scan_before_the_command_fails() {
    let env = Env::new();
    let (run, wt) = env.start(BRIEF);
    // The worktree swapped for a link to a copy: the scan refuses a root that
    // is not a directory, while the sandbox would have followed the link.
    let real = wt.with_file_name("worktree.real");
    std::fs::rename(&wt, &real).unwrap();
    std::os::unix::fs::symlink(&real, &wt).unwrap();
    let out = env.airlock(&["exec", &run, "--", "sh", "-c", "echo ran > ran.txt"]);
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert!(
        out.stderr.contains(&format!(
            "error: cannot read the work tree {}: it is not a directory",
            wt.display()
        )),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains("hint: a run's worktree must be a directory"),
        "{}",
        out.stderr
    );
    assert!(
        !real.join("ran.txt").exists(),
        "the command ran before its scan"
    );
    // No trace either.
    std::fs::remove_file(&wt).unwrap();
    std::fs::rename(&real, &wt).unwrap();
    assert_eq!(
        env.json(&["show", &run, "--no-diff"], 0)["traces"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
}

#[test]
fn exec_records_a_trace_of_the_command() {
    let env = Env::new();
    let (run, wt) = env.start(BRIEF);
    let out = env.airlock(&[
        "exec",
        &run,
        "--",
        "sh",
        "-c",
        "printf made > src/new.txt; rm docs/guide.md; printf 'out put'; printf oops >&2",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout, "out put");
    assert_eq!(
        std::fs::read_to_string(wt.join("src/new.txt")).unwrap(),
        "made"
    );
    let t = env.json(&["show", &run, "--no-diff"], 0)["traces"][0].clone();
    assert_eq!(t["n"], 1);
    assert_eq!(t["origin"], "exec");
    assert_eq!(names(&t["argv"])[..2], ["sh".to_string(), "-c".to_string()]);
    assert_eq!(t["cwd"], wt.display().to_string());
    assert_eq!(t["exit"]["code"], 0);
    assert_eq!(t["exit"]["timed_out"], false);
    assert_eq!(t["stdout"]["sha256"], sha256_hex(b"out put"));
    assert_eq!(t["stdout"]["size"], 7);
    assert_eq!(t["stderr"]["sha256"], sha256_hex(b"oops"));
    assert_eq!(t["stderr"]["size"], 4);
    assert_eq!(
        std::fs::read(t["stdout"]["log"].as_str().unwrap()).unwrap(),
        b"out put"
    );
    assert_eq!(
        changed_files(&t),
        [
            ("D".to_string(), "docs/guide.md".to_string()),
            ("A".to_string(), "src/new.txt".to_string())
        ]
    );
    // The trace is in the ledger too.
    let events = env.events(Some(&run));
    assert!(
        events.iter().any(|e| e["data"]["argv"][0] == "sh"),
        "{events:?}"
    );
    env.assert_ledger_ok();
}

/// `(status, path)` of each file a trace says its command changed.
fn changed_files(trace: &serde_json::Value) -> Vec<(String, String)> {
    trace["files_changed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["status"].as_str().unwrap().to_string(),
                c["path"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn exec_sees_every_change_however_quickly_commands_follow_each_other() {
    let env = Env::new();
    let (run, _) = env.start(BRIEF);
    // Same size, same second, back to back: timestamps alone could not tell
    // these writes apart.
    let steps: [(&str, &[(&str, &str)]); 6] = [
        ("printf aa > src/quick.txt", &[("A", "src/quick.txt")]),
        ("printf bb > src/quick.txt", &[("M", "src/quick.txt")]),
        ("printf cc > src/quick.txt", &[("M", "src/quick.txt")]),
        // Rewritten with the same bytes, or only touched: nothing changed.
        ("printf cc > src/quick.txt; touch src/app.sh", &[]),
        (
            "chmod +x src/quick.txt; ln -s quick.txt src/link; printf x > notes.tmp",
            &[("A", "src/link"), ("M", "src/quick.txt")],
        ),
        ("rm src/quick.txt", &[("D", "src/quick.txt")]),
    ];
    std::fs::write(env.repo.join(".git/info/exclude"), "*.tmp\n").unwrap();
    for (script, _) in &steps {
        let out = env.airlock(&["exec", &run, "--", "sh", "-c", script]);
        assert_eq!(out.code, 0, "{script}: {}", out.stderr);
    }
    let traces = env.json(&["show", &run, "--no-diff"], 0)["traces"].clone();
    for (i, (script, expected)) in steps.iter().enumerate() {
        let expected: Vec<(String, String)> = expected
            .iter()
            .map(|(s, p)| (s.to_string(), p.to_string()))
            .collect();
        assert_eq!(changed_files(&traces[i]), expected, "{script}");
    }
}

#[test]
fn exec_takes_arguments_as_long_as_the_system_does() {
    // One argument may be up to 128 KiB for execve: a script of 100 KB
    // still goes through the run's warm sandbox; with three more arguments
    // of 60 KB, the command is larger than a warm sandbox takes (128 KiB)
    // and gets a sandbox of its own. All run, confined.
    let env = Env::new();
    let (run, _) = env.start(BRIEF);
    let filler = "x".repeat(60_000);
    for (repeat, extra) in [(4_000, 0), (20_000, 0), (100, 3)] {
        let script = format!("{}echo done {repeat} $#", "true;".repeat(repeat));
        let mut args = vec!["exec", &run, "--", "sh", "-c", &script, "sh"];
        args.extend(std::iter::repeat_n(filler.as_str(), extra));
        let out = env.airlock(&args);
        assert_eq!(out.code, 0, "{repeat}: {}", out.stderr);
        assert_eq!(out.stdout, format!("done {repeat} {extra}\n"));
    }
    let traces = env.json(&["show", &run, "--no-diff"], 0)["traces"].clone();
    assert_eq!(traces.as_array().unwrap().len(), 3);
    for trace in traces.as_array().unwrap() {
        assert_eq!(trace["confinement"], "confined");
    }
}

#[test]
fn exec_does_not_pass_the_callers_secrets_to_the_command() {
    let env = Env::new();
    let (run, _) = env.start(BRIEF);
    let out = env.airlock_env(
        &[
            "exec",
            &run,
            "--",
            "sh",
            "-c",
            "printf '%s|%s|%s' \"${AWS_SECRET_ACCESS_KEY-unset}\" \"${GITHUB_TOKEN-unset}\" \"$AIRLOCK_RUN\"",
        ],
        &[
            ("AWS_SECRET_ACCESS_KEY", "caller-aws-secret"),
            ("GITHUB_TOKEN", "caller-gh-token"),
        ],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout, format!("unset|unset|{run}"));
}

#[test]
fn exec_kills_a_command_at_its_time_limit() {
    let env = Env::new();
    let (run, _) = env.start(BRIEF);
    // A command that leaves a grandchild behind: the whole tree dies.
    let marker = format!("{}.{}", 40 + std::process::id() % 50, std::process::id());
    let out = env.airlock(&[
        "exec",
        &run,
        "--timeout",
        "300ms",
        "--",
        "sh",
        "-c",
        &format!("sleep {marker} & sleep {marker}"),
    ]);
    assert_eq!(out.code, 124, "{}", out.stderr);
    assert!(out.stderr.contains("timed out"), "{}", out.stderr);
    let t = env.json(&["show", &run, "--no-diff"], 0)["traces"][0].clone();
    assert_eq!(t["exit"]["timed_out"], true);
    assert_eq!(t["exit"]["code"], 124);
    assert!(
        t["exit"]["description"]
            .as_str()
            .unwrap()
            .starts_with("timed out"),
        "{t}"
    );
    assert!(
        still_running(&format!("sleep {marker}")).is_empty(),
        "left running after the time limit"
    );
    env.assert_ledger_ok();
}

#[test]
fn a_reader_that_stops_reading_does_not_stretch_the_time_limit() {
    // The command fills airlock's stdout while whoever reads it stops
    // reading: echoing blocks, and the time limit must still stop the
    // command (here, before its background child writes the marker).
    let env = Env::new();
    let (run, wt) = env.start(BRIEF);
    env.json(&["exec", &run, "--", "true"], 0);
    let child = env
        .cmd(&[
            "exec",
            &run,
            "--timeout",
            "1s",
            "--",
            "sh",
            "-c",
            "(sleep 3; echo late > late.txt) & head -c 1000000 /dev/zero; wait",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_secs(5));
    assert!(
        !wt.join("late.txt").exists(),
        "the command outlived its time limit"
    );
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(124),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!wt.join("late.txt").exists());
    let t = env.json(&["show", &run, "--no-diff"], 0)["traces"][1].clone();
    assert_eq!(t["exit"]["timed_out"], true, "{t}");
}

#[test]
fn exec_of_a_program_the_sandbox_cannot_find_says_so() {
    let env = Env::new();
    let (run, _) = env.start(BRIEF);
    let before = env.world();
    // 127, as a shell exits for a program it cannot find.
    let out = env.fails(&["exec", &run, "--", "no-such-program-here"], 127);
    assert!(
        out.stderr.contains(
            "error: `no-such-program-here` not found in the run's sandbox: No such file or directory"
        ),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("hint: check the name"),
        "{}",
        out.stderr
    );
    // Not mistaken for a machine without namespaces.
    assert!(!out.stderr.contains("accept_weaker"), "{}", out.stderr);
    env.assert_unchanged(&before);
}

#[test]
fn exec_takes_its_default_time_limit_from_the_workflow() {
    let env = Env::new();
    env.write(
        ".airlock/workflow.toml",
        &format!("{WORKFLOW}\n[sandbox]\ntimeout = \"300ms\"\n"),
    );
    env.git(&["commit", "-q", "-am", "a default time limit"]);
    let (run, _) = env.start(BRIEF);
    let out = env.airlock(&["exec", &run, "--", "sleep", "60"]);
    assert_eq!(out.code, 124, "{}", out.stderr);
    let t = env.json(&["show", &run, "--no-diff"], 0)["traces"][0].clone();
    assert_eq!(t["exit"]["timed_out"], true, "{t}");
    // `--timeout` still decides when it is given.
    let out = env.airlock(&["exec", &run, "--timeout", "30s", "--", "sleep", "1"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    // A bad value is a workflow error, reported where it is.
    env.write(
        ".airlock/workflow.toml",
        &format!("{WORKFLOW}\n[sandbox]\ntimeout = \"soon\"\n"),
    );
    let out = env.fails(&["exec", &run, "--", "true"], 2);
    assert!(
        out.stderr
            .contains("`timeout` must be a positive number of seconds or a duration"),
        "{}",
        out.stderr
    );
}

/// Processes whose command line is `cmdline`, waiting a little for killed
/// ones to be reaped (no timing is asserted; the bound only ends the wait).
fn still_running(cmdline: &str) -> Vec<String> {
    let mut found = Vec::new();
    for _ in 0..50 {
        found = std::fs::read_dir("/proc")
            .unwrap()
            .filter_map(|e| {
                let e = e.ok()?;
                let cmd = std::fs::read(e.path().join("cmdline")).ok()?;
                let status = std::fs::read_to_string(e.path().join("status")).ok()?;
                let zombie = status.lines().any(|l| l.starts_with("State:\tZ"));
                let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
                (!zombie && cmd.trim_end() == cmdline)
                    .then(|| e.file_name().to_string_lossy().into_owned())
            })
            .collect();
        if found.is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    found
}

// ---- check ----------------------------------------------------------------

#[test]
fn check_runs_gates_in_workflow_order_then_every_stop_condition() {
    let env = Env::new();
    // The brief lists them the other way round; the workflow's order wins.
    let brief = BRIEF.replace(
        "checks = [\"build\", \"test\"]",
        "checks = [\"test\", \"build\"]",
    );
    let (run, wt) = env.start(&brief);
    write(&wt.join("src/app.sh"), "#!/bin/sh\necho hello, please\n");
    let out = env.airlock(&["check", &run]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let build = out.stdout.find("ok   build").unwrap();
    let test = out.stdout.find("ok   test").unwrap();
    assert!(build < test, "{}", out.stdout);
    assert!(
        out.stdout
            .contains(&format!("check passed; next: `airlock submit {run}`")),
        "{}",
        out.stdout
    );
    let report = env.json(&["check", &run], 0);
    assert_eq!(report["passed"], true);
    assert_eq!(field(&report["gates"], "name"), ["build", "test"]);
    assert_eq!(field(&report["gates"], "status"), ["passed", "passed"]);
    assert_eq!(
        field(&report["stops"], "name"),
        [
            "scope",
            "protected",
            "secrets",
            "blast-radius",
            "file-kinds"
        ]
    );
    assert!(
        report["stops"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["passed"] == true)
    );
    assert_eq!(env.state(&run), "checked");
    // Each gate ran as a traced command.
    let traces = env.json(&["show", &run, "--no-diff"], 0)["traces"].clone();
    assert_eq!(
        field(&traces, "origin"),
        ["gate:build", "gate:test", "gate:build", "gate:test"]
    );
    env.assert_ledger_ok();
}

#[test]
fn check_stops_at_the_first_failing_gate() {
    let env = Env::new();
    let (run, wt) = env.start(BRIEF);
    std::fs::remove_file(wt.join("src/app.sh")).unwrap();
    let out = env.airlock(&["check", &run]);
    assert_eq!(out.code, 1);
    assert!(out.stdout.contains("FAIL build"), "{}", out.stdout);
    assert!(out.stdout.contains("skip test"), "{}", out.stdout);
    // The stop conditions are evaluated whatever the gates do (issue 15).
    assert!(out.stdout.contains("stop conditions:"), "{}", out.stdout);
    assert!(
        out.stdout
            .contains("check failed: gate `build` failed (exit 1)"),
        "{}",
        out.stdout
    );
    let report = env.json(&["check", &run], 1);
    assert_eq!(report["passed"], false);
    assert_eq!(field(&report["gates"], "status"), ["failed", "skipped"]);
    assert_eq!(report["gates"][1]["trace"], Value::Null);
    assert!(
        report["stops"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["passed"] == true),
        "{}",
        report["stops"]
    );
    assert_eq!(env.state(&run), "staged");
    // Only the failing gate ran (twice, once per check); the skipped one never did.
    let traces = env.json(&["show", &run, "--no-diff"], 0)["traces"].clone();
    assert_eq!(field(&traces, "origin"), ["gate:build", "gate:build"]);
    env.assert_ledger_ok();
}

// ---- submit, review, show -------------------------------------------------

#[test]
fn submit_signs_a_proof_and_queues_the_run() {
    let env = Env::new();
    let (run, wt) = env.start(BRIEF);
    write(&wt.join("src/app.sh"), "#!/bin/sh\necho hello, please\n");
    env.json(&["check", &run], 0);
    let base = env.rev("HEAD");
    let v = env.json(&["submit", &run], 0);
    assert_eq!(v["run"], run.as_str());
    assert_eq!(v["state"], "in_review");
    let proof = Path::new(v["proof"].as_str().unwrap());
    assert!(proof.is_file());
    assert!(proof.display().to_string().ends_with("-r1.intoto.jsonl"));
    let sig = std::fs::read_to_string(format!("{}.sig", proof.display())).unwrap();
    assert!(sig.starts_with("-----BEGIN SSH SIGNATURE-----"), "{sig}");
    assert_eq!(
        v["digest"].as_str().unwrap(),
        sha256_hex(&std::fs::read(proof).unwrap())
    );
    // The run branch now holds one commit on the base with the checked tree.
    let head = v["head"].as_str().unwrap();
    assert_eq!(env.rev(&format!("refs/airlock/runs/{run}")), head);
    assert_eq!(env.rev(&format!("{head}^")), base);
    assert_eq!(
        env.git(&["show", &format!("{head}:src/app.sh")]),
        "#!/bin/sh\necho hello, please"
    );
    assert_eq!(env.state(&run), "in_review");
    env.assert_ledger_ok();
}

#[test]
fn review_lists_waiting_runs_oldest_first() {
    let env = Env::new();
    let out = env.airlock(&["review"]);
    assert_eq!(out.code, 0);
    assert_eq!(out.stdout, "no runs are waiting for review\n");
    assert_eq!(env.json(&["review"], 0)["queue"], serde_json::json!([]));

    let (first, _) = env.submitted();
    let (second, _) = env.submitted();
    let (staged, _) = env.start(BRIEF);
    let v = env.json(&["review"], 0);
    assert_eq!(field(&v["queue"], "run"), [first.as_str(), second.as_str()]);
    let out = env.airlock(&["review"]);
    assert!(
        out.stdout
            .starts_with("2 run(s) waiting for a decision, oldest first:")
    );
    let (a, b) = (
        out.stdout.find(&first).unwrap(),
        out.stdout.find(&second).unwrap(),
    );
    assert!(a < b, "{}", out.stdout);
    assert!(!out.stdout.contains(&staged));
}

#[test]
fn show_has_state_diff_gates_traces_and_a_verified_proof() {
    let env = Env::new();
    let (run, _) = env.submitted();
    let v = env.json(&["show", &run], 0);
    assert_eq!(v["state"], "in_review");
    assert_eq!(
        v["diff"]["stat"],
        serde_json::json!([{"path": "src/app.sh", "added": 1, "deleted": 1, "binary": false}])
    );
    let patch = v["diff"]["patch"].as_str().unwrap();
    assert!(
        patch.contains("-echo hello\n+echo hello, please\n"),
        "{patch}"
    );
    assert_eq!(field(&v["gates"], "name"), ["build", "test"]);
    assert_eq!(field(&v["gates"], "status"), ["passed", "passed"]);
    assert_eq!(field(&v["traces"], "origin"), ["gate:build", "gate:test"]);
    assert_eq!(v["proof"]["verified"], true);
    let digest = v["proof"]["digest"].as_str().unwrap();
    let proof_path = v["proof"]["path"].as_str().unwrap();
    assert_eq!(digest, sha256_hex(&std::fs::read(proof_path).unwrap()));
    let out = env.airlock(&["show", &run]);
    assert_eq!(out.code, 0);
    assert!(
        out.stdout
            .contains(&format!("run {run}  [in_review]  round 1"))
    );
    assert!(out.stdout.contains("+echo hello, please"));
    assert!(out.stdout.contains(&format!("digest sha256:{digest}")));
    assert!(out.stdout.contains("verified: signatures"));
}

// ---- decisions ------------------------------------------------------------

#[test]
fn approve_records_the_digest_that_was_shown() {
    let env = Env::new();
    let (run, _) = env.submitted();
    let digest = env.json(&["show", &run, "--no-diff"], 0)["proof"]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let out = env.airlock(&[
        "approve",
        &run,
        "--digest",
        &digest[..12],
        "--reason",
        "lgtm",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        out.stdout,
        format!(
            "approved run {run} for proof sha256:{}\nnext: `airlock promote {run}`\n",
            &digest[..12]
        )
    );
    let v = env.json(&["show", &run, "--no-diff"], 0);
    assert_eq!(v["state"], "approved");
    assert_eq!(v["approval"]["digest"], digest.as_str());
    assert_eq!(v["approval"]["reason"], "lgtm");
    let last = env.events(Some(&run)).last().unwrap().clone();
    assert_eq!(last["kind"], "approve");
    assert_eq!(last["data"]["digest"], digest.as_str());
    env.assert_ledger_ok();
}

#[test]
fn reject_ends_the_run_with_its_reason() {
    let env = Env::new();
    let (run, wt) = env.submitted();
    let v = env.json(&["reject", &run, "--reason", "wrong approach"], 0);
    assert_eq!(v["state"], "rejected");
    assert_eq!(env.state(&run), "rejected");
    assert!(
        wt.join("src/app.sh").exists(),
        "the worktree stays for reference"
    );
    let last = env.events(Some(&run)).last().unwrap().clone();
    assert_eq!(last["kind"], "reject");
    assert_eq!(last["data"]["reason"], "wrong approach");
    assert_eq!(env.json(&["review"], 0)["queue"], serde_json::json!([]));
    env.assert_ledger_ok();
}

#[test]
fn redirect_starts_round_two_with_a_new_proof() {
    let env = Env::new();
    let (run, wt) = env.submitted();
    let first = env.json(&["show", &run, "--no-diff"], 0)["proof"].clone();
    let out = env.airlock(&["redirect", &run, "--reason", "also greet by name"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout.starts_with(&format!(
            "redirected run {run}: round 2 begins in the same worktree"
        )),
        "{}",
        out.stdout
    );
    let v = env.json(&["show", &run, "--no-diff"], 0);
    assert_eq!(v["state"], "staged");
    assert_eq!(v["round"], 2);
    assert_eq!(v["approval"], Value::Null);
    // Round 2: the same worktree, still holding round 1's work.
    assert_eq!(
        std::fs::read_to_string(wt.join("src/app.sh")).unwrap(),
        "#!/bin/sh\necho hello, please\n"
    );
    write(
        &wt.join("src/app.sh"),
        "#!/bin/sh\necho hello, please, Ann\n",
    );
    env.json(&["check", &run], 0);
    let s = env.json(&["submit", &run], 0);
    let proof = s["proof"].as_str().unwrap();
    assert!(
        proof.ends_with(&format!("{run}-r2.intoto.jsonl")),
        "{proof}"
    );
    assert_ne!(proof, first["path"].as_str().unwrap());
    assert_ne!(s["digest"], first["digest"]);
    // Round 2's commit sits on round 1's.
    let r1_head = env
        .events(Some(&run))
        .iter()
        .find(|e| e["kind"] == "submit")
        .unwrap()["data"]["head"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        env.rev(&format!("{}^", s["head"].as_str().unwrap())),
        r1_head
    );
    // Both proofs still verify.
    assert_eq!(env.airlock(&["proof", "verify", proof]).code, 0);
    assert_eq!(
        env.airlock(&["proof", "verify", first["path"].as_str().unwrap()])
            .code,
        0
    );
    env.assert_ledger_ok();
}

// ---- proof, key, log, ledger ----------------------------------------------

#[test]
fn proof_verify_by_run_and_by_file() {
    let env = Env::new();
    let (run, _) = env.submitted();
    let out = env.airlock(&["proof", "verify", &run]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stdout.ends_with("the proof verifies\n"),
        "{}",
        out.stdout
    );
    for check in [
        "signatures",
        "head commit",
        "head tree",
        "diff digest",
        "brief digest",
    ] {
        assert!(
            out.stdout.contains(&format!("ok   {check}")),
            "{check}: {}",
            out.stdout
        );
    }
    let v = env.json(&["proof", "verify", &run], 0);
    assert_eq!(v["verified"], true);
    assert_eq!(v["report"]["run"], run.as_str());
    let path = v["report"]["path"].as_str().unwrap().to_string();
    let by_file = env.json(&["proof", "verify", &path], 0);
    assert_eq!(by_file["verified"], true);
    assert_eq!(by_file["report"]["digest"], v["report"]["digest"]);
    // --key with airlock's own public key verifies too.
    let key = env.home.join(".config/airlock/signing_key.pub");
    let with_key = env.json(
        &["proof", "verify", &run, "--key", key.to_str().unwrap()],
        0,
    );
    assert_eq!(with_key["verified"], true);
}

#[test]
fn key_public_prints_one_openssh_line() {
    let env = Env::new();
    let out = env.airlock(&["key", "public"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout.lines().count(), 1, "{}", out.stdout);
    assert!(out.stdout.starts_with("ssh-ed25519 AAAA"), "{}", out.stdout);
    let init = env.json(&["init"], 0);
    assert_eq!(out.stdout.trim_end(), init["public_key"].as_str().unwrap());
    let v = env.json(&["key", "public"], 0);
    assert_eq!(v["public_key"].as_str().unwrap(), out.stdout.trim_end());
}

#[test]
fn log_shows_all_events_or_one_runs() {
    let env = Env::new();
    let (a, _) = env.submitted();
    let (b, _) = env.start(BRIEF);
    let all = env.events(None);
    let seqs: Vec<u64> = all.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, (1..=all.len() as u64).collect::<Vec<_>>());
    let kinds: Vec<&str> = all
        .iter()
        .filter(|e| e["run"] == a.as_str())
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds.first(), Some(&"start"));
    assert!(kinds.contains(&"check"), "{kinds:?}");
    // The review panel's decision follows the submit it was made for.
    assert_eq!(kinds[kinds.len() - 2..], ["submit", "panel"]);
    let only_b = env.events(Some(&b));
    assert_eq!(only_b.len(), 1);
    assert_eq!(only_b[0]["kind"], "start");
    assert_eq!(only_b[0]["run"], b.as_str());
    let out = env.airlock(&["log", &a]);
    assert_eq!(out.code, 0);
    assert!(out.stdout.lines().all(|l| l.contains(&a)), "{}", out.stdout);
    assert!(out.stdout.contains("staged -> checked"), "{}", out.stdout);
}

#[test]
fn ledger_verify_reports_a_good_chain() {
    let env = Env::new();
    env.submitted();
    let events = env.events(None).len();
    let out = env.airlock(&["ledger", "verify"]);
    assert_eq!(out.code, 0);
    assert!(
        out.stdout
            .starts_with(&format!("ledger verifies: {events} events, head ")),
        "{}",
        out.stdout
    );
    let v = env.json(&["ledger", "verify"], 0);
    assert_eq!(v["events"], events);
    assert_eq!(v["first_bad"], Value::Null);
}

/// The whole lifecycle in human form, step by step, as a user sees it.
#[test]
fn transcript_of_a_run_from_brief_to_promotion() {
    let env = Env::new();
    let brief = env.write_brief("polite", BRIEF);
    let say = |args: &[&str]| {
        let out = env.airlock(args);
        assert_eq!(
            out.code, 0,
            "airlock {args:?}\n{}\n{}",
            out.stdout, out.stderr
        );
        out.stdout
    };
    assert!(say(&["brief", "check", &brief]).contains("is a valid brief"));
    let started = say(&["start", &brief]);
    let run = started
        .strip_prefix("started run ")
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .to_string();
    say(&[
        "exec",
        &run,
        "--",
        "sh",
        "-c",
        "printf '#!/bin/sh\\necho hello, please\\n' > src/app.sh",
    ]);
    assert!(say(&["check", &run]).contains(&format!("next: `airlock submit {run}`")));
    assert!(say(&["submit", &run]).contains("the run is in the review queue"));
    assert!(say(&["review"]).contains(&run));
    assert!(say(&["show", &run]).contains("+echo hello, please"));
    assert!(say(&["approve", &run]).contains(&format!("next: `airlock promote {run}`")));
    let promoted = say(&["promote", &run]);
    assert!(
        promoted.starts_with(&format!("promoted run {run} into main: ")),
        "{promoted}"
    );
    assert!(
        promoted.contains(&format!(
            "undo: airlock rollback {run} --reason …  (reverts "
        )),
        "{promoted}"
    );
    assert_eq!(env.read("src/app.sh"), "#!/bin/sh\necho hello, please\n");
    assert!(say(&["proof", "verify", &run]).ends_with("the proof verifies\n"));
    assert!(say(&["ledger", "verify"]).starts_with("ledger verifies: "));
}
