//! `--json` errors carry a stable `code` (docs/errors.md): bad input fed to
//! the binary, the code, the class and the exit code asserted, and nothing
//! changed by the refused command.

mod common;

use common::*;
use serde_json::Value;

/// `airlock --json ARGS` fails with `exit`; its error has `code` and `class`.
fn refused_with(env: &Env, args: &[&str], exit: i32, code: &str, class: &str) -> Value {
    let mut json_args = vec!["--json"];
    json_args.extend_from_slice(args);
    let out = env.airlock(&json_args);
    assert_eq!(
        out.code, exit,
        "airlock {args:?}:\n{}\n{}",
        out.stdout, out.stderr
    );
    let v: Value = serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("airlock {args:?} printed no JSON ({e}):\n{}", out.stdout));
    let error = &v["error"];
    assert_eq!(error["code"], code, "{v}");
    assert_eq!(error["class"], class, "{v}");
    assert!(error["message"].is_string(), "{v}");
    error.clone()
}

#[test]
fn a_command_in_the_wrong_state_is_wrong_state() {
    let env = Env::new();
    let (run, wt) = env.start(BRIEF);
    write(&wt.join("src/app.sh"), "#!/bin/sh\necho hello, please\n");
    let before = env.world();
    let e = refused_with(&env, &["submit", &run], 1, "wrong-state", "refused");
    assert_eq!(
        e["message"],
        format!("run {run} is staged; `submit` needs it to be checked")
    );
    refused_with(&env, &["approve", &run], 1, "wrong-state", "refused");
    assert_eq!(env.state(&run), "staged");
    env.assert_unchanged(&before);
}

#[test]
fn a_worktree_changed_after_check_is_worktree_changed() {
    let env = Env::new();
    let (run, wt) = env.start(BRIEF);
    write(&wt.join("src/app.sh"), "#!/bin/sh\necho hello, please\n");
    env.json(&["check", &run], 0);
    write(&wt.join("src/late.sh"), "echo late\n");
    let before = env.world();
    let e = refused_with(&env, &["submit", &run], 1, "worktree-changed", "refused");
    assert_eq!(e["reasons"], serde_json::json!(["A src/late.sh"]));
    assert_eq!(env.state(&run), "checked");
    env.assert_unchanged(&before);
}

#[test]
fn approving_a_proof_other_than_the_current_one_is_stale_approval() {
    let env = Env::new();
    let (run, _) = env.submitted();
    let before = env.world();
    let e = refused_with(
        &env,
        &["approve", &run, "--digest", "0badc0ffee00"],
        1,
        "stale-approval",
        "refused",
    );
    assert_eq!(
        e["reasons"],
        serde_json::json!(["the proof changed after you looked at it"])
    );
    assert_eq!(env.state(&run), "in_review");
    env.assert_unchanged(&before);
}

#[test]
fn an_unknown_run_is_unknown_run() {
    let env = Env::new();
    let (run, _) = env.start(BRIEF);
    let before = env.world();
    for args in [
        vec!["show", "no-such-run"],
        vec!["exec", "no-such-run", "--", "touch", "x"],
        vec!["approve", "no-such-run"],
    ] {
        refused_with(&env, &args, 2, "unknown-run", "invalid");
    }
    // A near miss names the nearest id; the code is the same.
    let near = format!("{}x", &run[..run.len() - 1]);
    let e = refused_with(&env, &["check", &near], 2, "unknown-run", "invalid");
    assert!(
        e["message"].as_str().unwrap().contains("did you mean"),
        "{e}"
    );
    assert!(!env.repo.join("x").exists());
    env.assert_unchanged(&before);
}

#[test]
fn the_start_of_several_ids_is_ambiguous_run() {
    let env = Env::new();
    let (a, _) = env.start(BRIEF);
    let (b, _) = env.start(BRIEF);
    let before = env.world();
    let e = refused_with(
        &env,
        &["check", "make-greet"],
        2,
        "ambiguous-run",
        "invalid",
    );
    let message = e["message"].as_str().unwrap();
    assert!(message.contains(&a) && message.contains(&b), "{e}");
    assert_eq!(env.state(&a), "staged");
    assert_eq!(env.state(&b), "staged");
    env.assert_unchanged(&before);
}

#[test]
fn a_bad_brief_is_invalid_brief_with_its_diagnostics() {
    let env = Env::new();
    let path = env.write_brief("bad", "titel = \"x\"\n");
    let before = env.world();
    let e = refused_with(
        &env,
        &["brief", "check", &path],
        2,
        "invalid-brief",
        "invalid",
    );
    assert_eq!(e["path"], path.as_str());
    assert!(!e["diagnostics"].as_array().unwrap().is_empty(), "{e}");
    refused_with(&env, &["start", &path], 2, "invalid-brief", "invalid");
    assert_eq!(env.run_dirs(), Vec::<String>::new());
    env.assert_unchanged(&before);
}

#[test]
fn a_bad_workflow_is_invalid_workflow_and_a_missing_one_no_workflow() {
    let env = Env::new();
    let path = env.write_brief("b", BRIEF);
    env.write(
        ".airlock/workflow.toml",
        &format!("bogus_key = 1\n{WORKFLOW}"),
    );
    let e = refused_with(&env, &["start", &path], 2, "invalid-workflow", "invalid");
    assert!(
        e["path"].as_str().unwrap().ends_with("workflow.toml"),
        "{e}"
    );
    assert_eq!(env.run_dirs(), Vec::<String>::new());
    std::fs::remove_file(env.repo.join(".airlock/workflow.toml")).unwrap();
    refused_with(&env, &["start", &path], 2, "no-workflow", "invalid");
    assert_eq!(env.run_dirs(), Vec::<String>::new());
    assert_eq!(env.airlock_branches(), "");
}

#[test]
fn a_missing_reason_is_invalid_input() {
    let env = Env::new();
    let (run, _) = env.submitted();
    let before = env.world();
    refused_with(&env, &["reject", &run], 2, "invalid-input", "invalid");
    assert_eq!(env.state(&run), "in_review");
    env.assert_unchanged(&before);
}

#[test]
fn a_run_record_airlock_cannot_read_is_corrupt_state_exit_4() {
    let env = Env::new();
    let (run, _) = env.start(BRIEF);
    env.db()
        .execute("UPDATE runs SET data = 'not json' WHERE id = ?1", [&run])
        .unwrap();
    let e = refused_with(&env, &["show", &run], 4, "corrupt-state", "corrupt");
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .starts_with(&format!("the record of run {run} is unreadable")),
        "{e}"
    );
    // The same error on a terminal, with the same exit code.
    let out = env.fails(&["show", &run], 4);
    assert!(
        out.stderr
            .starts_with(&format!("error: the record of run {run} is unreadable"))
    );
}
