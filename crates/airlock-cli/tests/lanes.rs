//! Trust lanes (issue 18): the capabilities `[lanes.NAME]` grants, the
//! classes that limit a brief's lane, the refusals at load, `lane-refused`
//! from every command that acts, and the lane's capabilities in `show` and
//! the proof. The sandbox side (a draft worktree is read-only to its
//! commands) is attacked in escape_corpus.rs's "lanes" section.

mod common;

use std::path::Path;

use common::*;
use serde_json::Value;

/// An env whose workflow is the harness's plus `extra`, committed.
fn setup(extra: &str) -> Env {
    let env = Env::new();
    env.write(".airlock/workflow.toml", &format!("{WORKFLOW}\n{extra}"));
    env.git(&["add", "-A"]);
    env.git(&["commit", "-q", "-m", "workflow"]);
    env
}

fn brief_in(lane: &str, class: Option<&str>) -> String {
    let mut b = format!("{BRIEF}lane = \"{lane}\"\n");
    if let Some(c) = class {
        b += &format!("class = \"{c}\"\n");
    }
    b
}

/// `--json` refusal of `args`: exit 1, code `lane-refused`; returns the error.
fn lane_refused(env: &Env, args: &[&str]) -> Value {
    let error = env.json_error(args, 1);
    assert_eq!(error["code"], "lane-refused", "{error}");
    assert_eq!(error["class"], "refused", "{error}");
    error
}

fn diagnostics(error: &Value) -> Vec<String> {
    error["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            format!(
                "{}:{}: {}",
                d["line"],
                d["column"],
                d["message"].as_str().unwrap()
            )
        })
        .collect()
}

#[test]
fn bad_lane_and_class_settings_are_refused_at_load_every_problem_at_once() {
    let env = Env::new();
    let bad = format!(
        "{WORKFLOW}\n[lanes.draft]\nexec = \"yes\"\nworktree = \"writable\"\nsubmitt = true\n\
         [lanes.prod]\npromote = true\n\
         [lanes.production]\nauto_promote = [\"bugfix\"]\n\
         [classes.docs]\nmax_lane = \"gouverned\"\n"
    );
    env.write(".airlock/workflow.toml", &bad);
    let brief = env.write_brief("brief", BRIEF);
    let before = env.world();
    for args in [vec!["brief", "check", &brief], vec!["start", &brief]] {
        let error = env.json_error(&args, 2);
        assert_eq!(error["code"], "invalid-workflow", "{error}");
        let base = WORKFLOW.lines().count() + 1;
        let at = |n: usize, col: usize, msg: &str| format!("{}:{col}: {msg}", base + n);
        assert_eq!(
            diagnostics(&error),
            vec![
                at(2, 8, "`exec` must be true or false, found a string"),
                at(
                    3,
                    12,
                    "`worktree` must be \"read-only\" or \"read-write\", found \"writable\""
                ),
                at(4, 1, "unknown key `submitt` in [lanes.draft]"),
                at(5, 8, "unknown lane `prod`"),
                at(
                    8,
                    17,
                    "`auto_promote` of lane `production` names class `bugfix`, which [classes] does not declare"
                ),
                at(
                    10,
                    12,
                    "`max_lane` of class `docs` is `gouverned`, which is not a lane"
                ),
            ],
            "{args:?}"
        );
        let helps: Vec<&str> = error["diagnostics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["help"].as_str().unwrap_or(""))
            .collect();
        assert!(helps[3].contains("did you mean `production`?"), "{helps:?}");
        assert!(helps[5].contains("did you mean `governed`?"), "{helps:?}");
        assert!(
            helps[4].contains("[classes.bugfix]"),
            "what to write instead: {helps:?}"
        );
    }
    // The human form: every problem with its place, exit 2.
    let out = env.fails(&["start", &brief], 2);
    assert!(out.stderr.contains("workflow.toml:"), "{}", out.stderr);
    assert!(out.stderr.contains("unknown lane `prod`"), "{}", out.stderr);
    // Nothing was written: no run, no event, no directory.
    env.assert_unchanged(&before);
}

#[test]
fn a_brief_past_its_class_limit_or_of_an_undeclared_class_is_refused_with_its_position() {
    let env = setup("[classes.docs]\nmax_lane = \"sandbox\"\n[classes.bugfix]\n");
    let before = env.world();
    for (brief, line, column, message, help) in [
        (
            brief_in("staging", Some("docs")),
            6,
            8,
            "lane `staging` is past what class `docs` may use: its `max_lane` is `sandbox`",
            "write `lane = \"sandbox\"`",
        ),
        (
            brief_in("draft", Some("invented")),
            7,
            9,
            "class `invented` is not declared in the workflow's [classes]",
            "docs, bugfix",
        ),
        (
            brief_in("draft", None),
            7,
            1,
            "the brief has no `class`, and the workflow declares classes",
            "docs, bugfix",
        ),
    ] {
        let path = env.write_brief("brief", &brief);
        for args in [vec!["brief", "check", &path], vec!["start", &path]] {
            let error = env.json_error(&args, 2);
            assert_eq!(error["code"], "invalid-brief", "{error}");
            let d = &error["diagnostics"][0];
            assert_eq!(error["diagnostics"].as_array().unwrap().len(), 1, "{error}");
            assert_eq!(
                (d["line"].as_u64(), d["column"].as_u64()),
                (Some(line), Some(column)),
                "{error}"
            );
            assert_eq!(d["message"], message, "{error}");
            assert!(d["help"].as_str().unwrap().contains(help), "{error}");
        }
    }
    env.assert_unchanged(&before);
    // Within the limit: `brief check` says what the lane grants.
    let fine = env.write_brief("fine", &brief_in("draft", Some("docs")));
    let out = env.airlock(&["brief", "check", &fine]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout
            .contains("class docs, lane draft (exec, worktree read-only, no submit, no promote)\n"),
        "{}",
        out.stdout
    );
    let v = env.json(&["brief", "check", &fine], 0);
    assert_eq!(v["capabilities"]["worktree"], "read-only", "{v}");
    // Within the limit, and a class without one: started.
    env.start(&brief_in("sandbox", Some("docs")));
    env.start(&brief_in("production", Some("bugfix")));
}

#[test]
fn a_lane_without_exec_refuses_exec_check_snap_run_and_the_agent() {
    let env = setup("[lanes.governed]\nexec = false\n");
    let (run, wt) = env.start(BRIEF);
    write(&wt.join("src/app.sh"), "#!/bin/sh\necho hello, please\n");
    let before = env.world();
    for (args, command) in [
        (vec!["exec", &run, "--", "touch", "src/owned"], "exec"),
        (vec!["check", &run], "check"),
        (
            vec![
                "snap",
                "run",
                "s",
                "--run",
                &run,
                "--",
                "touch",
                "src/owned",
            ],
            "snap run",
        ),
        (vec!["agent", &run, "--", "touch", "src/owned"], "agent"),
    ] {
        let error = lane_refused(&env, &args);
        let details = &error["details"];
        assert_eq!(details["command"], command, "{error}");
        assert_eq!(details["lane"], "governed", "{error}");
        assert_eq!(details["denial"]["kind"], "not-granted", "{error}");
        assert_eq!(details["denial"]["capability"], "exec", "{error}");
        // exec is a default of draft, the lowest lane.
        assert_eq!(details["denial"]["granted_by"], "draft", "{error}");
        assert!(
            error["message"]
                .as_str()
                .unwrap()
                .contains("lane `governed`, which does not grant `exec`"),
            "{error}"
        );
        assert!(
            error["hint"]
                .as_str()
                .unwrap()
                .contains("[lanes.governed] exec = true"),
            "{error}"
        );
    }
    env.assert_unchanged(&before);
    assert!(!wt.join("src/owned").exists());
    assert!(!env.repo.join(".airlock/snapshots/s.snap.new").exists());
    let shown = env.json(&["show", &run, "--no-diff"], 0);
    assert_eq!(shown["traces"].as_array().unwrap().len(), 0, "{shown}");
}

#[test]
fn a_lane_without_promote_refuses_promotion_after_approval_and_names_the_lane_that_would() {
    let env = setup("[lanes.governed]\npromote = false\n");
    let (run, _) = env.approved();
    let before = env.world();
    let main_before = env.rev("main");
    let error = lane_refused(&env, &["promote", &run]);
    assert_eq!(error["details"]["denial"]["capability"], "promote");
    assert_eq!(error["details"]["denial"]["granted_by"], "staging");
    let reasons = error["reasons"].as_array().unwrap();
    assert!(
        reasons
            .iter()
            .any(|r| r == "`staging` is the lowest lane that grants `promote`"),
        "{error}"
    );
    let out = env.fails(&["promote", &run], 1);
    assert!(
        out.stderr.contains("error: `promote` is refused: run"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("hint: "), "{}", out.stderr);
    env.assert_unchanged(&before);
    assert_eq!(env.rev("main"), main_before);
    assert_eq!(env.state(&run), "approved");
}

#[test]
fn action_scopes_are_cumulative_up_the_lanes() {
    let env = setup("[lanes.sandbox]\nscopes = [\"command:notify\"]\n");
    let action = env.write_brief(
        "notify",
        "kind = \"command\"\nscopes = [\"command:notify\"]\nargv = [\"true\"]\n",
    );
    // Granted by sandbox, so by governed above it.
    let (governed, _) = env.start(BRIEF);
    env.json(&["propose", &governed, &action], 0);
    // Not by draft below it: refused, naming the lowest lane that grants it.
    let (draft, _) = env.start(&brief_in("draft", None));
    let before = env.world();
    let error = env.json_error(&["propose", &draft, &action], 1);
    assert_eq!(error["code"], "scope-not-granted", "{error}");
    assert_eq!(
        error["reasons"][0],
        "lane `draft` does not grant `command:notify`; `sandbox` is the lowest lane that does"
    );
    env.assert_unchanged(&before);
}

#[test]
fn a_class_limit_lowered_after_start_refuses_the_run_at_its_next_command() {
    let env = setup("[classes.docs]\nmax_lane = \"governed\"\n");
    let (run, wt) = env.start(&brief_in("governed", Some("docs")));
    env.write(
        ".airlock/workflow.toml",
        &format!("{WORKFLOW}\n[classes.docs]\nmax_lane = \"draft\"\n"),
    );
    let before = env.world();
    let error = lane_refused(&env, &["exec", &run, "--", "touch", "src/owned"]);
    assert_eq!(error["details"]["denial"]["kind"], "class-limit", "{error}");
    assert_eq!(error["details"]["denial"]["max_lane"], "draft", "{error}");
    assert_eq!(
        error["reasons"][0],
        "[classes.docs] max_lane is `draft`, below `governed`"
    );
    env.assert_unchanged(&before);
    assert!(!wt.join("src/owned").exists());
}

/// The bundle's run statement (`https://airlock.dev/run/v1`).
fn run_statement(bundle: &Path) -> Value {
    use base64::Engine;
    let text = std::fs::read_to_string(bundle).unwrap();
    for line in text.lines() {
        let envelope: Value = serde_json::from_str(line).unwrap();
        let payload = base64::engine::general_purpose::STANDARD
            .decode(envelope["payload"].as_str().unwrap())
            .unwrap();
        let statement: Value = serde_json::from_slice(&payload).unwrap();
        if statement["predicateType"] == "https://airlock.dev/run/v1" {
            return statement;
        }
    }
    panic!("no run statement in {}", bundle.display());
}

#[test]
fn show_and_the_proof_carry_the_lanes_capabilities() {
    let env = setup("[classes.bugfix]\n[lanes.governed]\nauto_promote = [\"bugfix\"]\n");
    let (draft, _) = env.start(&brief_in("draft", Some("bugfix")));
    let human = env.airlock(&["show", &draft, "--no-diff"]);
    assert_eq!(human.code, 0, "{}", human.stderr);
    assert!(
        human.stdout.contains(
            "class bugfix, lane draft (exec, worktree read-only, no submit, no promote)\n"
        ),
        "{}",
        human.stdout
    );
    let shown = env.json(&["show", &draft, "--no-diff"], 0);
    assert_eq!(
        shown["capabilities"],
        serde_json::json!({"exec": true, "worktree": "read-only", "submit": false,
                           "promote": false, "auto_promote": []})
    );

    let (run, wt) = env.start(&brief_in("governed", Some("bugfix")));
    write(&wt.join("src/app.sh"), "#!/bin/sh\necho hello, please\n");
    env.json(&["check", &run], 0);
    let submitted = env.json(&["submit", &run], 0);
    let human = env.airlock(&["show", &run, "--no-diff"]);
    assert!(
        human.stdout.contains(
            "lane governed (exec, worktree read-write, submit, promote, auto-promote bugfix)\n"
        ),
        "{}",
        human.stdout
    );
    let statement = run_statement(Path::new(submitted["proof"].as_str().unwrap()));
    assert_eq!(
        statement["predicate"]["lane_capabilities"],
        serde_json::json!({"exec": true, "worktree": "read-write", "submit": true,
                           "promote": true, "auto_promote": ["bugfix"]}),
        "{statement}"
    );
}

/// The lane table is part of the workflow, whose digest the proof signs and
/// promotion compares: widening a lane after approval voids the approval
/// (`workflow-changed`), and nothing is merged.
#[test]
fn changing_the_lane_table_after_approval_voids_the_approval() {
    let env = setup("[lanes.governed]\npromote = false\n");
    let (run, _) = env.approved();
    // The reviewer approved a run whose lane cannot be promoted; the lane
    // table is then widened.
    env.write(
        ".airlock/workflow.toml",
        &format!("{WORKFLOW}\n[lanes.governed]\npromote = true\n"),
    );
    let before = env.world();
    let main_before = env.rev("main");
    let error = env.json_error(&["promote", &run], 1);
    assert_eq!(error["code"], "workflow-changed", "{error}");
    env.assert_unchanged(&before);
    assert_eq!(env.rev("main"), main_before);
    assert_eq!(env.state(&run), "approved");
}
