//! `airlock release`: a release run gathers the runs promoted since the last
//! release, must pass the workflow's checklist and gates, and its publish
//! actions run only once it is approved and promoted.

mod common;

use common::*;

const RELEASE: &str = r#"
[release]
touch = ["CHANGELOG.md", "VERSION"]
checks = ["build"]
[[release.checklist]]
item = "changelog updated"
changed = "CHANGELOG.md"
[[release.checklist]]
item = "version bumped"
changed = "VERSION"

[lanes.production]
scopes = ["command:publish"]
"#;

fn setup() -> Env {
    let env = Env::new();
    env.write(".airlock/workflow.toml", &format!("{WORKFLOW}{RELEASE}"));
    env.write("VERSION", "1.0.0\n");
    env.write("CHANGELOG.md", "# Changes\n");
    env.git(&["add", "-A"]);
    env.git(&["commit", "-q", "-m", "release settings"]);
    env
}

fn promoted_run(env: &Env) -> String {
    let (run, wt) = env.start(BRIEF);
    write(&wt.join("src/app.sh"), "#!/bin/sh\necho hello, please\n");
    env.json(&["check", &run], 0);
    env.json(&["submit", &run], 0);
    env.json(&["approve", &run], 0);
    env.json(&["promote", &run], 0);
    run
}

#[test]
fn a_release_gathers_promoted_runs_checks_its_checklist_and_publishes_only_when_promoted() {
    let env = setup();
    let before = env.world();
    let out = env.fails(&["release"], 1);
    assert!(
        out.stderr.contains("nothing to release on main"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains("no run has been promoted into it since the last release"),
        "{}",
        out.stderr
    );
    env.assert_unchanged(&before);

    let first = promoted_run(&env);
    let second = promoted_run(&env);
    let rel = env.json(&["release"], 0);
    let id = rel["run"].as_str().unwrap().to_string();
    let wt = std::path::PathBuf::from(rel["worktree"].as_str().unwrap());
    let included: Vec<&str> = rel["includes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["run"].as_str().unwrap())
        .collect();
    assert_eq!(included, vec![first.as_str(), second.as_str()]);
    assert_eq!(rel["lane"], "production");
    assert_eq!(rel["base"].as_str().unwrap(), env.rev("main"));
    // One release at a time.
    let out = env.fails(&["release"], 1);
    assert!(
        out.stderr.contains("a release is already under way"),
        "{}",
        out.stderr
    );

    // The checklist is a stop condition: nothing changed yet, so it fails.
    let check = env.json(&["check", &id], 1);
    let stop = check["stops"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "release checklist")
        .unwrap()
        .clone();
    assert_eq!(stop["passed"], false);
    let findings = stop["findings"].to_string();
    assert!(
        findings.contains("changelog updated: the release changes nothing matching `CHANGELOG.md`"),
        "{findings}"
    );
    assert!(findings.contains("version bumped"), "{findings}");

    let marker = env.tmp.path().join("published");
    let publish = env.tmp.path().join("publish.toml");
    write(
        &publish,
        &format!(
            "kind = \"command\"\nscopes = [\"command:publish\"]\nargv = [\"sh\", \"-c\", \"cat VERSION > {}\"]\nrehearse = [\"sh\", \"-c\", \"test -s VERSION\"]\n",
            marker.display()
        ),
    );
    env.json(&["propose", &id, publish.to_str().unwrap()], 0);
    write(&wt.join("VERSION"), "1.1.0\n");
    write(
        &wt.join("CHANGELOG.md"),
        "# Changes\n\n## 1.1.0\n- greet is polite\n",
    );
    let check = env.json(&["check", &id], 0);
    assert_eq!(check["passed"], true, "{check}");
    env.json(&["submit", &id], 0);
    env.json(&["approve", &id], 0);
    assert!(!marker.exists(), "publishing waits for promotion");
    let promoted = env.json(&["promote", &id], 0);
    assert_eq!(promoted["actions"]["complete"], true, "{promoted}");
    assert_eq!(std::fs::read_to_string(&marker).unwrap(), "1.1.0\n");
    assert_eq!(env.read("VERSION"), "1.1.0\n");

    // The released runs are not released again.
    let out = env.fails(&["release"], 1);
    assert!(
        out.stderr.contains("nothing to release on main"),
        "{}",
        out.stderr
    );
    env.assert_ledger_ok();
}

#[test]
fn release_needs_a_release_table_and_valid_settings() {
    let env = Env::new();
    promoted_run(&env);
    let before = env.world();
    let out = env.fails(&["release"], 1);
    assert!(
        out.stderr.contains("the workflow has no [release] table"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("[[release.checklist]]"),
        "{}",
        out.stderr
    );
    env.assert_unchanged(&before);
    env.write(
        ".airlock/workflow.toml",
        &format!("{WORKFLOW}\n[release]\nlane = \"prod\"\nchecks = [\"tset\"]\n[[release.checklist]]\nitem = \"x\"\n"),
    );
    let out = env.fails(&["release"], 2);
    assert!(out.stderr.contains("unknown lane `prod`"), "{}", out.stderr);
    assert!(
        out.stderr.contains("[release] has no `touch`"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains("[release] checks names gate `tset`, which the workflow does not define"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("did you mean `test`?"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains("needs `item = \"…\"` and `changed = \"GLOB\"`"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_release_can_be_ended_before_review_and_a_rejected_one_releases_nothing() {
    let env = setup();
    let run = promoted_run(&env);
    let first = env.json(&["release"], 0)["run"]
        .as_str()
        .unwrap()
        .to_string();
    // It cannot pass its checklist: end it while it is still staged.
    env.json(&["reject", &first, "--reason", "not this week"], 0);
    let second = env.json(&["release"], 0);
    assert_eq!(second["includes"][0]["run"], run.as_str(), "{second}");
    let id = second["run"].as_str().unwrap().to_string();
    let wt = std::path::PathBuf::from(second["worktree"].as_str().unwrap());
    write(&wt.join("VERSION"), "1.1.0\n");
    write(&wt.join("CHANGELOG.md"), "# Changes\n\n## 1.1.0\n");
    env.json(&["check", &id], 0);
    env.json(&["submit", &id], 0);
    env.json(&["reject", &id, "--reason", "changelog too thin"], 0);
    // Its runs are still unreleased.
    let third = env.json(&["release"], 0);
    assert_eq!(third["includes"][0]["run"], run.as_str(), "{third}");
    // The release list is recorded with the run from its first event.
    let events = env.events(Some(third["run"].as_str().unwrap()));
    assert_eq!(events[0]["kind"], "start");
    assert_eq!(
        events[0]["data"]["release"]["includes"][0]["run"],
        run.as_str()
    );
}
