//! Reading what happened: `check` reports the stop conditions with the gates
//! and the end of a failing gate's output, shows which gate runs, counts
//! tests; `airlock logs` prints what a command or gate printed.

mod common;

use common::*;
use serde_json::Value;

/// A workflow whose `test` gate prints what `tests/run.sh` prints.
const COUNTING_WORKFLOW: &str = r#"[gates.build]
run = "test -f src/app.sh"
timeout = 30

[gates.test]
run = "sh tests/run.sh"
timeout = 30
junit = "tests/junit.xml"

[gates.lint]
run = "true"
timeout = 30

[policy]
protected = ["ci/**", "Cargo.lock"]
max_files = 50
max_lines = 1000
"#;

const ALL_CHECKS: &str = r#"title = "Make greet polite"
objective = "greet prints a polite greeting"
touch = ["src/**", "tests/**"]
checks = ["build", "test", "lint"]
rollback = "revert the merge commit"
"#;

fn counting_env() -> Env {
    let env = Env::new();
    env.write(".airlock/workflow.toml", COUNTING_WORKFLOW);
    env.git(&["commit", "-qam", "gates that count"]);
    env
}

/// Paths, run ids, times and digests replaced, for whole-output snapshots.
fn settings(env: &Env, run: &str) -> insta::Settings {
    let mut s = insta::Settings::clone_current();
    s.add_filter(
        &regex_escape(&env.tmp.path().display().to_string()),
        "[TMP]",
    );
    s.add_filter(&regex_escape(run), "[RUN]");
    s.add_filter(r"\d+ ms", "[N] ms");
    s.add_filter(r"sha256 [0-9a-f]{12}", "sha256 [DIGEST]");
    s.set_prepend_module_to_snapshot(false);
    s
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

fn no_raw_controls(what: &str, text: &str) {
    assert!(
        !text.contains('\x1b') && !text.contains('\r') && !text.contains('\x07'),
        "{what} printed a raw control character:\n{text:?}"
    );
}

/// A scope violation from the start and a failing gate: one check reports
/// both, the stop conditions first, with the end of the gate's output.
#[test]
fn one_check_reports_a_stop_condition_and_a_failing_gate_with_its_output() {
    let env = counting_env();
    let (run, wt) = env.start(ALL_CHECKS);
    // Out of the brief's touch list (scope), and a test that fails loudly.
    write(&wt.join("docs/guide.md"), "# Guide, edited\n");
    let mut script = String::from("#!/bin/sh\n");
    for i in 1..=30 {
        script += &format!("echo \"progress line {i}\"\n");
    }
    script += "echo 'assertion failed: greeting is polite' >&2\n";
    script += "printf 'evil \\033[2J\\033]0;owned\\007 title\\rX\\n' >&2\n";
    script += "echo 'test result: FAILED. 2 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.01s'\n";
    script += "exit 1\n";
    write(&wt.join("tests/run.sh"), &script);

    let out = env.airlock(&["check", &run]);
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    no_raw_controls("check", &out.stdout);
    no_raw_controls("check", &out.stderr);
    let stops_at = out.stdout.find("stop conditions:").expect(&out.stdout);
    let gates_at = out.stdout.find("gates:").expect(&out.stdout);
    assert!(stops_at < gates_at, "stops come first:\n{}", out.stdout);
    assert!(out.stdout.contains("FAIL scope"), "{}", out.stdout);
    assert!(
        out.stdout.contains("2 passed, 1 failed"),
        "test counts: {}",
        out.stdout
    );
    // The end of the output, escaped; not its beginning.
    assert!(
        out.stdout.contains("  | progress line 30"),
        "{}",
        out.stdout
    );
    assert!(!out.stdout.contains("progress line 1\n"), "{}", out.stdout);
    assert!(
        out.stdout
            .contains("  | evil \\x1b[2J\\x1b]0;owned\\x07 title\\rX"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains(&format!("`airlock logs {run} test`")),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("check failed: stop condition `scope`"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("also: gate `test` failed (exit 1)"),
        "{}",
        out.stdout
    );
    // Off a terminal: one line as each gate starts, on stderr; the gate
    // after the failing one is skipped and never starts.
    assert!(
        out.stderr.contains("running gate build (1/3)…")
            && out.stderr.contains("running gate test (2/3)…")
            && !out.stderr.contains("running gate lint"),
        "{}",
        out.stderr
    );
    settings(&env, &run)
        .bind(|| insta::assert_snapshot!("check_failing_stops_and_gate", out.stdout));

    // The same data in JSON, and nothing on stderr about progress.
    let mut cmd = env.cmd(&["--json", "check", &run]);
    let raw = cmd.output().unwrap();
    let report: Value = serde_json::from_slice(&raw.stdout).unwrap();
    assert_eq!(raw.status.code(), Some(1));
    assert!(
        !String::from_utf8_lossy(&raw.stderr).contains("running gate"),
        "{}",
        String::from_utf8_lossy(&raw.stderr)
    );
    let scope = report["stops"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "scope")
        .unwrap();
    assert_eq!(scope["passed"], false);
    assert_eq!(report["gates"][1]["status"], "failed");
    assert_eq!(report["gates"][1]["tests"]["passed"], 2);
    assert_eq!(report["gates"][1]["tests"]["failed"], 1);
    assert_eq!(report["gates"][1]["tests"]["source"], "cargo test");
    assert_eq!(report["gates"][2]["status"], "skipped");
    assert_eq!(env.state(&run), "staged");

    // `show` carries the recorded report, counts included.
    let shown = env.json(&["show", &run], 0);
    assert_eq!(shown["gates"][1]["tests"]["failed"], 1);
    assert_eq!(shown["stop_conditions"], report["stops"]);
    env.assert_ledger_ok();
}

/// A failing stop condition alone fails the check even when every gate
/// passes, and `submit` still refuses; fixed, the check passes.
#[test]
fn stops_fail_the_check_when_the_gates_pass_and_submit_refuses() {
    let env = Env::new();
    let (run, wt) = env.start(BRIEF);
    write(&wt.join("ci/pipeline.yml"), "steps: [evil]\n");
    let report = env.json(&["check", &run], 1);
    assert!(
        report["gates"]
            .as_array()
            .unwrap()
            .iter()
            .all(|g| g["status"] == "passed")
    );
    assert_eq!(report["passed"], false);
    let failed: Vec<&str> = report["stops"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["passed"] == false)
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert!(failed.contains(&"protected"), "{failed:?}");
    let out = env.airlock(&["submit", &run]);
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stderr
            .contains("is staged; `submit` needs it to be checked"),
        "{}",
        out.stderr
    );
    env.git_in(&wt, &["checkout", "--", "ci/pipeline.yml"]);
    let report = env.json(&["check", &run], 0);
    assert_eq!(report["passed"], true);
}

/// A gate that writes into the worktree: the stops judge the tree the gates
/// left (the one `submit` commits), not the one before them.
#[test]
fn stops_judge_the_tree_the_gates_left() {
    let env = Env::new();
    env.write(
        ".airlock/workflow.toml",
        &WORKFLOW.replace(
            "sh tests/run.sh",
            "sh tests/run.sh && echo x > docs/made-by-gate.md",
        ),
    );
    env.git(&["commit", "-qam", "a gate that writes"]);
    let (run, _wt) = env.start(BRIEF);
    let report = env.json(&["check", &run], 1);
    let scope = report["stops"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "scope")
        .unwrap()
        .clone();
    assert_eq!(scope["passed"], false, "{scope}");
    assert!(
        scope["findings"]
            .to_string()
            .contains("docs/made-by-gate.md"),
        "{scope}"
    );
}

/// Counts from the JUnit report a gate writes; a report reached through a
/// link is never read (it could be any file airlock's user can read).
#[test]
fn junit_reports_give_counts_and_links_are_not_followed() {
    let env = counting_env();
    let (run, wt) = env.start(ALL_CHECKS);
    let report = "<testsuite><testcase name=\"a\"/><testcase name=\"b\"><failure/></testcase>\
        <testcase name=\"c\"><skipped/></testcase></testsuite>";
    write(
        &wt.join("tests/run.sh"),
        &format!("#!/bin/sh\nprintf '%s' '{report}' > tests/junit.xml\n"),
    );
    let out = env.json(&["check", &run], 0);
    assert_eq!(
        out["gates"][1]["tests"],
        serde_json::json!({"passed": 1, "failed": 1, "skipped": 1, "source": "junit"})
    );
    let human = env.airlock(&["show", &run]);
    assert!(
        human.stdout.contains("1 passed, 1 failed, 1 skipped"),
        "{}",
        human.stdout
    );

    // The attack: the report is a link to a file outside the worktree.
    let outside = env.tmp.path().join("outside.xml");
    std::fs::write(
        &outside,
        "<testsuite><testcase name=\"secret\"/></testsuite>",
    )
    .unwrap();
    write(
        &wt.join("tests/run.sh"),
        &format!(
            "#!/bin/sh\nrm -f tests/junit.xml; ln -s '{}' tests/junit.xml; true\n",
            outside.display()
        ),
    );
    // The link fails the check (file-kinds); its target's test case is not counted.
    let out = env.json(&["check", &run], 1);
    assert_eq!(out["gates"][1]["status"], "passed");
    assert!(
        out["gates"][1].get("tests").is_none(),
        "{}",
        out["gates"][1]
    );
}

#[test]
fn logs_lists_traces_and_prints_a_gates_output_whole_or_its_tail() {
    let env = Env::new();
    let (run, wt) = env.start(BRIEF);
    write(
        &wt.join("tests/run.sh"),
        "#!/bin/sh\necho one\necho two\necho three\nprintf 'bad \\033[31mred\\033[0m \\342\\200\\256x\\n' >&2\nexit 3\n",
    );
    let out = env.airlock(&["exec", &run, "--", "echo", "hello"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(env.airlock(&["check", &run]).code, 1);

    let list = env.airlock(&["logs", &run]);
    assert_eq!(list.code, 0, "{}", list.stderr);
    assert!(list.stdout.contains("#1   r1 exec"), "{}", list.stdout);
    assert!(list.stdout.contains("gate:test"), "{}", list.stdout);
    settings(&env, &run).bind(|| insta::assert_snapshot!("logs_list", list.stdout));

    let gate = env.airlock(&["logs", &run, "test"]);
    assert_eq!(gate.code, 0, "{}", gate.stderr);
    no_raw_controls("logs", &gate.stdout);
    assert!(
        gate.stdout.contains("  | one\n  | two\n  | three\n"),
        "{}",
        gate.stdout
    );
    assert!(
        gate.stdout
            .contains("  | bad \\x1b[31mred\\x1b[0m \\u{202e}x"),
        "{}",
        gate.stdout
    );
    settings(&env, &run).bind(|| insta::assert_snapshot!("logs_gate", gate.stdout));

    let tail = env.airlock(&["logs", &run, "test", "--tail", "1", "--stream", "stdout"]);
    assert_eq!(tail.code, 0, "{}", tail.stderr);
    assert!(tail.stdout.contains("  | three\n"), "{}", tail.stdout);
    assert!(
        !tail.stdout.contains("two") && !tail.stdout.contains("stderr"),
        "{}",
        tail.stdout
    );

    let by_number = env.airlock(&["logs", &run, "1"]);
    assert!(
        by_number.stdout.contains("  | hello\n"),
        "{}",
        by_number.stdout
    );

    // JSON: paths, sizes and digests of the files, no content.
    let doc = env.json(&["logs", &run, "test"], 0);
    for stream in doc["streams"].as_array().unwrap() {
        let path = stream["path"].as_str().unwrap();
        let bytes = std::fs::read(path).unwrap();
        assert_eq!(stream["size"], bytes.len() as u64);
        assert_eq!(stream["sha256"], sha256_hex(&bytes));
        assert_eq!(stream["intact"], true);
    }
    assert!(!doc.to_string().contains("three"), "{doc}");
    let listed = env.json(&["logs", &run], 0);
    assert_eq!(listed["traces"].as_array().unwrap().len(), 3);
}

#[test]
fn logs_refuses_unknown_runs_traces_and_gates() {
    let env = Env::new();
    let (run, _wt) = env.start(BRIEF);
    assert_eq!(env.airlock(&["check", &run]).code, 0);

    let out = env.airlock(&["logs", "no-such-run"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("no-such-run"), "{}", out.stderr);

    let out = env.airlock(&["logs", &run, "9"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr.contains(&format!("run {run} has no trace #9")),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("its traces are #1 to #2"),
        "{}",
        out.stderr
    );

    let out = env.airlock(&["logs", &run, "tset"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("has no trace of gate `tset` in round 1"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("did you mean `test`?"),
        "{}",
        out.stderr
    );
    let err = env.json_error(&["logs", &run, "tset"], 1);
    assert_eq!(err["class"], "refused");

    let out = env.airlock(&["logs", &run, "test", "--stream", "both"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
}

/// On a terminal the gate that runs is one line, redrawn and then cleared;
/// `script` gives the command a terminal (skipped where it is missing).
#[test]
fn on_a_terminal_the_running_gate_is_one_line_cleared_when_done() {
    let script = std::path::Path::new("/usr/bin/script");
    if !script.exists() {
        eprintln!("skipped: no /usr/bin/script to give airlock a terminal");
        return;
    }
    let env = Env::new();
    let (run, _wt) = env.start(BRIEF);
    let airlock = assert_cmd::cargo::cargo_bin("airlock");
    let mut cmd = std::process::Command::new(script);
    env.hermetic(&mut cmd);
    let line = format!("'{}' check {run}", airlock.display());
    let out = cmd
        .args(["-q", "-e", "-c", &line, "/dev/null"])
        .current_dir(&env.repo)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    // Each gate's line, drawn over the previous one with its seconds so far.
    for gate in ["build (1/2)", "test (2/2)"] {
        let drawn = format!("\r\x1b[2Krunning gate {gate}… ");
        let at = text
            .find(&drawn)
            .unwrap_or_else(|| panic!("{gate}: {text:?}"));
        let rest = &text[at + drawn.len()..];
        let digits = rest.chars().take_while(char::is_ascii_digit).count();
        assert!(digits > 0 && rest[digits..].starts_with(" s"), "{text:?}");
    }
    // Cleared before the result: the result's first line starts clean.
    let result_at = text.find("stop conditions:").expect(&text);
    assert!(text[..result_at].ends_with("\r\x1b[2K"), "{text:?}");
    assert!(!text.contains("running gate build (1/2)…\n"), "{text:?}");
}

/// `promote` re-running gates on a moved target says which gate runs, off a
/// terminal one line each; `--json` stays quiet.
#[test]
fn promote_says_which_gate_it_reruns() {
    let env = Env::new();
    let (run, _) = env.approved();
    env.commit_file("docs/guide.md", "# Guide\n\nMore.\n", "docs");
    let out = env.airlock(&["promote", &run]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stderr
            .contains("running gate build (1/2)…\nrunning gate test (2/2)…\n"),
        "{}",
        out.stderr
    );
    assert!(!out.stdout.contains("running gate"), "{}", out.stdout);

    let env = Env::new();
    let (run, _) = env.approved();
    env.commit_file("docs/guide.md", "# Guide\n\nMore.\n", "docs");
    let out = env.airlock(&["--json", "promote", &run]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(!out.stderr.contains("running gate"), "{}", out.stderr);
}

/// A `junit` path that leaves the worktree is a workflow error, with where
/// and what to write instead; nothing is started.
#[test]
fn a_junit_path_outside_the_worktree_is_refused() {
    let env = Env::new();
    env.write(
        ".airlock/workflow.toml",
        &COUNTING_WORKFLOW.replace("tests/junit.xml", "../elsewhere/junit.xml"),
    );
    env.git(&["commit", "-qam", "a report outside"]);
    let path = env.write_brief("brief", ALL_CHECKS);
    let before = env.world();
    let out = env.airlock(&["start", &path]);
    assert_eq!(out.code, 2, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stderr
            .contains("`junit` of gate `test` must be a path inside the worktree"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("workflow.toml:8:9:"), "{}", out.stderr);
    assert!(
        out.stderr
            .contains("help: write a relative path without `..`"),
        "{}",
        out.stderr
    );
    assert_eq!(env.world().runs, before.runs);
}
