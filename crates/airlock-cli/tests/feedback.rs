//! Issue 15: the reviewer's words reach the agent and stay readable, and a
//! review shows what it must weigh. Decisions in `show` and `log`, the risk
//! flags in `show` and `review`, `show --since-round`, and the smaller
//! `plan` and rollback items; `show` and `review` as whole transcripts.

mod common;

use std::path::PathBuf;

use common::*;
use serde_json::Value;

/// The brief of the risky run: the network on, a protected path named.
const RISKY_BRIEF: &str = r#"title = "Make greet polite"
objective = "greet prints a polite greeting"
touch = ["src/**", "tests/**", "ci/pipeline.yml"]
checks = ["build", "test"]
rollback = "revert the merge commit"
network = "on"
"#;

/// A reviewer's reason with what a terminal would obey and a second line.
const HOSTILE_REASON: &str =
    "Greet by name.\nAnd \u{1b}[2Jnever\u{1b}[0m clear the screen \u{202e}reversed";

/// Snapshots with what changes between runs replaced.
macro_rules! transcript {
    ($env:expr, $name:expr, $text:expr) => {
        let tmp = regex_escape(&$env.tmp.path().display().to_string());
        insta::with_settings!({
            filters => vec![
                (tmp.as_str(), "[TMP]"),
                (r"make-greet-polite-[0-9a-f]{4}", "[RUN]"),
                (r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", "[TIME]"),
                (r"\b[0-9a-f]{64}\b", "[DIGEST]"),
                (r"\b[0-9a-f]{40}\b", "[COMMIT]"),
                (r"\b[0-9a-f]{12,16}\b", "[SHORT]"),
                (r"in \d+ ms", "in [N] ms"),
                (r"\d+ ms\)", "[N] ms)"),
                (r"\b\d+ B\b", "[N] B"),
            ],
        }, {
            insta::assert_snapshot!($name, $text);
        });
    };
}

fn regex_escape(text: &str) -> String {
    text.chars()
        .map(|c| {
            if "\\.+*?()|[]{}^$#&-~".contains(c) {
                format!("\\{c}")
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// A run redirected once with a hostile reason, whose round 2 failed its
/// check once before passing, submitted again: protected path touched
/// (listed by the brief), a secret allowed by the agent's inline marker,
/// the network turned on by its brief.
fn redirected_risky_run(env: &Env) -> (String, PathBuf) {
    // The brief may ask for the whole network only where its lane grants it.
    env.commit_file(
        ".airlock/workflow.toml",
        &format!("{WORKFLOW}\n[lanes.governed]\nnetwork = \"on\"\n"),
        "the governed lane has the network",
    );
    let (run, wt) = env.start(RISKY_BRIEF);
    write(&wt.join("src/app.sh"), "#!/bin/sh\necho hello, please\n");
    write(&wt.join("ci/pipeline.yml"), "steps: [greet]\n");
    write(
        &wt.join("src/deploy.sh"),
        "#!/bin/sh\nAWS_ACCESS_KEY_ID=AKIAZ3MQ7TLPXW4RJ5NB # airlock:allow-secret\n",
    );
    env.json(&["check", &run], 0);
    env.json(&["submit", &run], 0);
    env.json(&["redirect", &run, "--reason", HOSTILE_REASON], 0);
    // Round 2: a broken attempt first, then the fix.
    write(&wt.join("src/app.sh"), "#!/bin/sh\necho bye\n");
    env.json(&["check", &run], 1);
    write(
        &wt.join("src/app.sh"),
        "#!/bin/sh\necho hello, please, Ann\n",
    );
    env.json(&["check", &run], 0);
    env.json(&["submit", &run], 0);
    (run, wt)
}

fn codes(flags: &Value) -> Vec<String> {
    flags
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["code"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn show_lists_every_decision_whole_and_the_risk_flags_first() {
    let env = Env::new();
    let (run, _) = redirected_risky_run(&env);
    let v = env.json(&["show", &run, "--no-diff"], 0);
    let decisions = v["decisions"].as_array().unwrap();
    assert_eq!(decisions.len(), 1, "{v}");
    assert_eq!(decisions[0]["kind"], "redirect");
    assert_eq!(decisions[0]["round"], 1);
    assert_eq!(decisions[0]["reason"], HOSTILE_REASON);
    assert_eq!(v["feedback"], HOSTILE_REASON);
    assert_eq!(
        codes(&v["risk_flags"]),
        [
            "protected-path",
            "secret-allowed-inline",
            "brief-network",
            "checks-failed-first"
        ]
    );
    let checks = &v["risk_flags"][3]["message"];
    assert_eq!(checks, "check failed 1 time(s) in round 2 before it passed");

    let out = env.airlock(&["show", &run, "--no-diff"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(!out.stdout.contains('\u{1b}'), "{}", out.stdout);
    assert!(!out.stdout.contains('\u{202e}'), "{}", out.stdout);
    // The flags come before the brief, the diff and the traces.
    let flags_at = out.stdout.find("risk flags").unwrap();
    assert!(flags_at < out.stdout.find("brief:").unwrap());
    transcript!(env, "show_redirected_risky_run", out.stdout);
}

#[test]
fn review_flags_risk_in_the_queue() {
    let env = Env::new();
    let (risky, _) = redirected_risky_run(&env);
    let (plain, _) = env.submitted();
    let v = env.json(&["review"], 0);
    let queue = v["queue"].as_array().unwrap();
    assert_eq!(queue.len(), 2);
    let entry = |id: &str| queue.iter().find(|e| e["run"] == id).unwrap().clone();
    assert_eq!(
        codes(&entry(&risky)["risk_flags"]),
        [
            "protected-path",
            "secret-allowed-inline",
            "brief-network",
            "checks-failed-first"
        ]
    );
    assert_eq!(entry(&plain)["risk_flags"], serde_json::json!([]));
    let out = env.airlock(&["review"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    // Two runs from the same brief title: tell them apart by order.
    let text = out
        .stdout
        .replace(&risky, "[RISKY RUN]")
        .replace(&plain, "[PLAIN RUN]");
    transcript!(env, "review_with_flags", text);
}

#[test]
fn the_agents_commands_read_the_last_reviewers_words() {
    let env = Env::new();
    let (run, _) = env.submitted();
    // Before any feedback there is none to read.
    let out = env.airlock(&[
        "exec",
        &run,
        "--",
        "sh",
        "-c",
        "echo \"[${AIRLOCK_FEEDBACK-unset}]\"",
    ]);
    assert_eq!(out.code, 1, "exec refused after submit: {}", out.stdout);
    let reason = "print the name too; a longer reason ends here";
    env.json(&["redirect", &run, "--reason", reason], 0);
    let out = env.airlock(&["exec", &run, "--", "sh", "-c", "cat \"$AIRLOCK_FEEDBACK\""]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains(reason), "{}", out.stdout);
    assert!(out.stdout.contains("round 2 begins"), "{}", out.stdout);
}

#[test]
fn a_run_without_feedback_has_no_feedback_variable() {
    let env = Env::new();
    let (run, _) = env.start(BRIEF);
    let out = env.airlock(&[
        "exec",
        &run,
        "--",
        "sh",
        "-c",
        "echo \"[${AIRLOCK_FEEDBACK-unset}]\"",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("[unset]"), "{}", out.stdout);
}

#[test]
fn a_rejected_runs_reason_is_shown_and_logged_whole() {
    let env = Env::new();
    let (run, _) = env.submitted();
    let reason = format!(
        "{} and the last words of this long reason must survive",
        "the change greets everyone the same way, which the brief did not ask for".repeat(3)
    );
    env.json(&["reject", &run, "--reason", &reason], 0);
    let v = env.json(&["show", &run, "--no-diff"], 0);
    assert_eq!(v["decisions"][0]["kind"], "reject");
    assert_eq!(v["decisions"][0]["reason"], reason.as_str());
    let out = env.airlock(&["show", &run, "--no-diff"]);
    assert!(
        out.stdout.contains(&format!("      | {reason}\n")),
        "{}",
        out.stdout
    );
    let log = env.airlock(&["log", &run]);
    assert_eq!(log.code, 0, "{}", log.stderr);
    let line = log.stdout.lines().find(|l| l.contains(" reject ")).unwrap();
    assert!(line.ends_with(&format!("reason={reason}")), "{line}");
}

#[test]
fn show_since_round_shows_what_changed_after_that_round() {
    let env = Env::new();
    let (run, wt) = env.submitted();
    let traces_r1 = env.json(&["show", &run, "--no-diff"], 0)["traces"]
        .as_array()
        .unwrap()
        .len();
    env.json(&["redirect", &run, "--reason", "also a test"], 0);
    write(&wt.join("tests/more.sh"), "#!/bin/sh\ntrue\n");
    // Before round 2 is submitted: against the worktree.
    let v = env.json(&["show", &run, "--since-round", "1"], 0);
    let paths: Vec<_> = v["diff"]["stat"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["path"].as_str().unwrap())
        .collect();
    assert_eq!(paths, ["tests/more.sh"], "{v}");
    assert_eq!(v["traces"], serde_json::json!([]));
    env.json(&["check", &run], 0);
    env.json(&["submit", &run], 0);
    let v = env.json(&["show", &run, "--since-round", "1"], 0);
    let paths: Vec<_> = v["diff"]["stat"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["path"].as_str().unwrap())
        .collect();
    assert_eq!(paths, ["tests/more.sh"], "{v}");
    let round1_head = env
        .events(Some(&run))
        .iter()
        .find(|e| e["kind"] == "submit")
        .unwrap()["data"]["head"]
        .clone();
    assert_eq!(v["diff_from"], round1_head);
    let traces = v["traces"].as_array().unwrap();
    assert!(!traces.is_empty());
    assert!(traces.iter().all(|t| t["round"] == 2), "{traces:?}");
    let all = env.json(&["show", &run, "--no-diff"], 0)["traces"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(all, traces_r1 + traces.len());
    let out = env.airlock(&["show", &run, "--since-round", "1"]);
    assert!(
        out.stdout.contains("diff stat since round 1 (commit "),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("+++ b/tests/more.sh"), "{}", out.stdout);
    assert!(!out.stdout.contains("+++ b/src/app.sh"), "{}", out.stdout);
}

#[test]
fn show_since_round_refuses_a_round_with_nothing_to_compare() {
    let env = Env::new();
    let (run, _) = env.submitted();
    let before = env.world();
    for (n, says) in [
        (
            "1",
            "run {run} is in round 1, so there is no later round to compare round 1 with",
        ),
        (
            "7",
            "run {run} is in round 1, so there is no later round to compare round 7 with",
        ),
    ] {
        let out = env.fails(&["show", &run, "--since-round", n], 2);
        assert!(
            out.stderr.contains(&says.replace("{run}", &run)),
            "{}",
            out.stderr
        );
        assert!(out.stderr.contains("submitted: 1"), "{}", out.stderr);
    }
    env.json(&["redirect", &run, "--reason", "again"], 0);
    let out = env.fails(&["show", &run, "--since-round", "0"], 2);
    assert!(
        out.stderr
            .contains(&format!("round 0 of run {run} was never submitted")),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("submitted rounds: 1"), "{}", out.stderr);
    let out = env.fails(&["show", &run, "--since-round", "x"], 2);
    assert!(out.stderr.contains("--since-round"), "{}", out.stderr);
    // Only the redirect was added.
    assert_eq!(env.world().events, before.events + 1);
}

/// A run with one command action and its compensation, promoted.
fn promoted_with_compensation(env: &Env) -> (String, PathBuf) {
    env.write(
        ".airlock/workflow.toml",
        &format!("{WORKFLOW}\n[lanes.governed]\nscopes = [\"command:notify\"]\n"),
    );
    env.git(&["commit", "-q", "-am", "workflow grants a scope"]);
    let (run, wt) = env.start(BRIEF);
    write(&wt.join("src/app.sh"), "#!/bin/sh\necho hello, please\n");
    let mark = env.tmp.path().join("compensated");
    let action = env.tmp.path().join("publish.toml");
    write(
        &action,
        &format!(
            "kind = \"command\"\nname = \"publish\"\nscopes = [\"command:notify\"]\nargv = [\"true\"]\n[undo]\nkind = \"command\"\nscopes = [\"command:notify\"]\nargv = [\"touch\", \"{}\"]\n",
            mark.display()
        ),
    );
    env.json(&["propose", &run, action.to_str().unwrap()], 0);
    env.json(&["check", &run], 0);
    env.json(&["submit", &run], 0);
    env.json(&["approve", &run, "--reason", "looks right"], 0);
    env.json(&["promote", &run], 0);
    (run, mark)
}

#[test]
fn plan_counts_actions_not_compensations_and_shows_the_key_used() {
    let env = Env::new();
    let (run, _) = promoted_with_compensation(&env);
    let out = env.airlock(&["plan", &run]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout.contains(&format!(
            "plan of run {run} [promoted]: 1 action(s), 1 compensation(s) for rollback\n"
        )),
        "{}",
        out.stdout
    );
    // The key the live attempt carried, as the ledger recorded it.
    let used = env
        .events(Some(&run))
        .iter()
        .find_map(|e| e["data"]["idempotency_key"].as_str().map(str::to_string))
        .unwrap();
    assert!(
        out.stdout.contains(&format!("  idempotency key {used}\n")),
        "{}",
        out.stdout
    );
    let v = env.json(&["plan", &run], 0);
    let publish = v["actions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["role"] == "apply")
        .unwrap();
    assert_eq!(publish["idempotency_key"], used.as_str());
    // The compensation has not run: no key shown for it.
    let undo = v["actions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["role"] == "undo")
        .unwrap();
    assert_eq!(undo["idempotency_key"], Value::Null);
}

#[test]
fn a_rolled_back_run_shows_its_revert_and_reason_and_nothing_left_to_do() {
    let env = Env::new();
    let (run, mark) = promoted_with_compensation(&env);
    let reason = "the greeting broke the downstream parser";
    let rolled = env.json(&["rollback", &run, "--reason", reason], 0);
    assert!(mark.exists(), "the compensation ran");
    let revert = rolled["revert"].as_str().unwrap().to_string();
    let v = env.json(&["show", &run, "--no-diff"], 0);
    assert_eq!(v["rollback"]["reason"], reason);
    assert_eq!(v["rollback"]["commit"], revert.as_str());
    let kinds: Vec<_> = v["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["approve", "promote", "rollback"]);
    assert_eq!(v["decisions"][0]["reason"], "looks right");
    let next = v["next"].as_str().unwrap();
    assert!(!next.contains("--actions-only"), "{next}");
    assert_eq!(
        next,
        "nothing: the run was rolled back and every compensation is done"
    );
    let out = env.airlock(&["show", &run, "--no-diff"]);
    assert!(
        out.stdout.contains(&format!(
            "  rolled back by revert commit {} at ",
            &revert[..12]
        )),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains(&format!(": {reason}\n")),
        "{}",
        out.stdout
    );
}

#[test]
fn a_command_recorded_in_the_weaker_sandbox_is_flagged() {
    let env = Env::new();
    let (run, _) = env.submitted();
    assert_eq!(
        env.json(&["show", &run, "--no-diff"], 0)["risk_flags"],
        serde_json::json!([])
    );
    // What a machine without namespaces records for a command (the weaker
    // sandbox cannot be forced on a machine that has them).
    let changed = env
        .db()
        .execute(
            "UPDATE traces SET data = json_set(data, '$.confinement', \
             'confined (weaker: no user namespaces)') WHERE run = ?1 AND n = 2",
            [&run],
        )
        .unwrap();
    assert_eq!(changed, 1);
    let v = env.json(&["show", &run, "--no-diff"], 0);
    assert_eq!(codes(&v["risk_flags"]), ["weaker-sandbox"]);
    assert_eq!(
        v["risk_flags"][0]["message"],
        "1 command(s) ran in the weaker sandbox (no namespaces: the host's files and network visible): trace #2"
    );
    let review = env.json(&["review"], 0);
    assert_eq!(codes(&review["queue"][0]["risk_flags"]), ["weaker-sandbox"]);
}

#[test]
fn a_rolled_back_run_with_a_compensation_unfinished_says_how_to_finish_it() {
    let env = Env::new();
    env.write(
        ".airlock/workflow.toml",
        &format!("{WORKFLOW}\n[lanes.governed]\nscopes = [\"command:notify\"]\n"),
    );
    env.git(&["commit", "-q", "-am", "workflow grants a scope"]);
    let (run, wt) = env.start(BRIEF);
    write(&wt.join("src/app.sh"), "#!/bin/sh\necho hello, please\n");
    let action = env.tmp.path().join("publish.toml");
    // The compensation fails, so the rollback leaves it unfinished.
    write(
        &action,
        "kind = \"command\"\nname = \"publish\"\nscopes = [\"command:notify\"]\nargv = [\"true\"]\n[undo]\nkind = \"command\"\nscopes = [\"command:notify\"]\nargv = [\"false\"]\n",
    );
    env.json(&["propose", &run, action.to_str().unwrap()], 0);
    env.json(&["check", &run], 0);
    env.json(&["submit", &run], 0);
    env.json(&["approve", &run, "--reason", "looks right"], 0);
    env.json(&["promote", &run], 0);
    let out = env.airlock(&["rollback", &run, "--reason", "broke the parser"]);
    assert_ne!(out.code, 0, "{}", out.stdout);
    let v = env.json(&["show", &run, "--no-diff"], 0);
    assert_eq!(v["state"], "rolled_back");
    assert_eq!(
        v["next"],
        format!(
            "the run was rolled back with 1 compensation unfinished: `airlock rollback {run} --actions-only --reason …` finishes it"
        )
    );
    // `list` does not read actions: it says what to do if one is unfinished.
    let listed = env.json(&["list"], 0);
    let entry = listed["runs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["run"] == run.as_str())
        .unwrap()
        .clone();
    assert_eq!(
        entry["next"],
        format!(
            "nothing: the run was rolled back (if a compensation is unfinished, `airlock rollback {run} --actions-only --reason …` finishes it)"
        )
    );
}

/// The queue parses a brief once per digest: a run whose copy of a shared
/// brief was changed behind airlock's back must not borrow the parse of an
/// intact copy (its brief no longer loads, so it gets no network flag),
/// and the intact one keeps its flag.
#[test]
fn review_reads_each_runs_own_copy_of_a_shared_brief() {
    let env = Env::new();
    env.commit_file(
        ".airlock/workflow.toml",
        &format!("{WORKFLOW}\n[lanes.governed]\nnetwork = \"on\"\n"),
        "the governed lane has the network",
    );
    let mut runs = Vec::new();
    for _ in 0..2 {
        let (run, wt) = env.start(RISKY_BRIEF);
        write(&wt.join("src/app.sh"), "#!/bin/sh\necho hello, please\n");
        env.json(&["check", &run], 0);
        env.json(&["submit", &run], 0);
        runs.push(run);
    }
    let copy = env
        .state_dir()
        .join("runs")
        .join(&runs[1])
        .join("brief.toml");
    let mut perms = std::fs::metadata(&copy).unwrap().permissions();
    #[allow(clippy::permissions_set_readonly_false)]
    perms.set_readonly(false);
    std::fs::set_permissions(&copy, perms).unwrap();
    std::fs::write(&copy, format!("{RISKY_BRIEF}# edited after the start\n")).unwrap();
    let v = env.json(&["review"], 0);
    let queue = v["queue"].as_array().unwrap();
    let ids: Vec<&str> = queue.iter().map(|e| e["run"].as_str().unwrap()).collect();
    assert_eq!(ids, [runs[0].as_str(), runs[1].as_str()], "oldest first");
    assert_eq!(codes(&queue[0]["risk_flags"]), ["brief-network"]);
    assert_eq!(codes(&queue[1]["risk_flags"]), Vec::<String>::new());
}
