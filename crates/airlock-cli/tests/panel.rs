//! Issue 18, the review panel: `[panel]` refused at load with every problem
//! at its position, the panel's decision at submit (signed into the proof,
//! shown, a ledger event) and at promote, auto-promotion only where the
//! lane grants it, and an agent that cannot talk the panel into approving.

mod common;

use common::*;

/// A workflow's panel with one of every problem, and where each is.
const BAD_PANEL: &str = r#"
[panel]
block_at = 2

[panel.securty]
weight = 1

[panel.qa]
weight = -1

[panel.data]
weight = "heavy"

[[panel.product.rules]]
vote = "aprove"
rationale = "r"
"#;

#[test]
fn a_bad_panel_is_refused_at_load_with_every_problem_and_nothing_written() {
    let env = Env::new();
    env.write(".airlock/workflow.toml", &format!("{WORKFLOW}{BAD_PANEL}"));
    let path = env.write_brief("b", BRIEF);
    let before = env.world();
    let out = env.fails(&["start", &path], 2);
    let base = WORKFLOW.lines().count();
    let expected = [
        (
            3,
            12,
            "`block_at` must be a share of the weight cast, from 0 to 1",
        ),
        (5, 8, "unknown perspective `securty` in [panel]"),
        (
            9,
            10,
            "`weight` of [panel.qa] must be a number of 0 or more, found `-1`",
        ),
        (
            12,
            10,
            "`weight` of [panel.data] must be a number, found the string \"heavy\"",
        ),
        (14, 1, "[[panel.product.rules]] #1 has no `when`"),
        (15, 8, "unknown vote `aprove` in [[panel.product.rules]] #1"),
    ];
    for (line, column, message) in expected {
        let at = format!("workflow.toml:{}:{column}: {message}", base + line);
        assert!(out.stderr.contains(&at), "{at}\n{}", out.stderr);
    }
    assert!(
        out.stderr.contains("did you mean `security`?"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("did you mean `approve`?"),
        "{}",
        out.stderr
    );
    env.assert_unchanged(&before);

    let err = env.json_error(&["start", &path], 2);
    assert_eq!(err["code"], "invalid-workflow", "{err}");
    let got: Vec<(u64, u64, String)> = err["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["line"].as_u64().unwrap(),
                d["column"].as_u64().unwrap(),
                d["message"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let want: Vec<(u64, u64, String)> = expected
        .iter()
        .map(|(l, c, m)| ((base + l) as u64, *c as u64, m.to_string()))
        .collect();
    assert_eq!(got, want);
    assert_eq!(env.run_dirs(), Vec::<String>::new());
    env.assert_unchanged(&before);
}

/// A workflow whose test gate reports counts (cargo's summary line), whose
/// governed lane lets the panel promote `docs` runs alone.
const AUTO_WORKFLOW: &str = r#"[gates.build]
run = "test -f src/app.sh"
timeout = 30

[gates.test]
run = "sh tests/run.sh && echo 'test result: ok. 3 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.01s'"
timeout = 30

[policy]
protected = ["ci/**", "Cargo.lock"]

[lanes.governed]
auto_promote = ["docs"]

[classes.docs]
max_lane = "governed"

[classes.bugfix]
max_lane = "governed"
"#;

/// A brief every default rule can approve: objective, non-goals, rollback.
fn brief(class: &str) -> String {
    format!(
        r#"title = "Make greet polite"
objective = "greet prints a polite greeting"
non_goals = ["changing what else greet prints"]
touch = ["src/**", "tests/**"]
checks = ["build", "test"]
rollback = "revert the merge commit"
class = "{class}"
"#
    )
}

/// An environment on [`AUTO_WORKFLOW`].
fn auto_env() -> Env {
    let env = Env::new();
    env.write(".airlock/workflow.toml", AUTO_WORKFLOW);
    env.git(&["add", "-A"]);
    env.git(&["commit", "-q", "-m", "workflow: auto-promote docs"]);
    env
}

/// A change with a test: what the default panel recommends approving.
fn good_change(wt: &std::path::Path) {
    write(&wt.join("src/app.sh"), "#!/bin/sh\necho hello, please\n");
    write(
        &wt.join("tests/run.sh"),
        "#!/bin/sh\nsh src/app.sh | grep -q 'hello, please'\n",
    );
}

fn submit(env: &Env, run: &str) -> serde_json::Value {
    env.json(&["check", run], 0);
    env.json(&["submit", run], 0)
}

fn panel_events(env: &Env, run: &str) -> Vec<serde_json::Value> {
    env.events(Some(run))
        .into_iter()
        .filter(|e| e["kind"] == "panel")
        .collect()
}

fn approve_events(env: &Env, run: &str) -> Vec<serde_json::Value> {
    env.events(Some(run))
        .into_iter()
        .filter(|e| e["kind"] == "approve")
        .collect()
}

/// The statements of a run's proof bundle, decoded.
fn proof_statements(env: &Env, run: &str) -> Vec<serde_json::Value> {
    use base64::Engine as _;
    let shown = env.json(&["show", run, "--no-diff"], 0);
    let path = shown["proof"]["path"].as_str().unwrap().to_string();
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|line| {
            let envelope: serde_json::Value = serde_json::from_str(line).unwrap();
            let payload = base64::engine::general_purpose::STANDARD
                .decode(envelope["payload"].as_str().unwrap())
                .unwrap();
            serde_json::from_slice(&payload).unwrap()
        })
        .collect()
}

#[test]
fn submit_runs_the_panel_signs_its_decision_and_shows_every_vote() {
    let env = Env::new();
    let (run, _wt) = env.submitted();
    // The common brief has no non-goals and the change no test: product
    // and QA raise concerns, so the panel asks for attention.
    let shown = env.json(&["show", &run, "--no-diff"], 0);
    let panel = &shown["panel"];
    assert_eq!(panel["version"], "airlock.panel/v1", "{panel}");
    assert_eq!(panel["outcome"], "needs-attention", "{panel}");
    let votes = panel["votes"].as_array().unwrap();
    let has = |perspective: &str, vote: &str, words: &str| {
        votes.iter().any(|v| {
            v["perspective"] == perspective
                && v["vote"] == vote
                && v["rationale"].as_str().unwrap().contains(words)
        })
    };
    assert!(has("product", "concern", "no non-goals"), "{panel}");
    assert!(has("qa", "concern", "no test file did"), "{panel}");
    assert!(has("security", "approve", "No secrets"), "{panel}");
    assert_eq!(panel["verdicts"].as_array().unwrap().len(), 12);
    assert_eq!(shown["state"], "in_review");
    assert!(shown["approval"].is_null());

    // Signed into the proof, which still verifies.
    assert_eq!(shown["proof"]["verified"], true, "{}", shown["proof"]);
    let statements = proof_statements(&env, &run);
    let signed = statements
        .iter()
        .find(|s| s["predicateType"] == "https://airlock.dev/panel/v1")
        .expect("a panel statement");
    assert_eq!(&signed["predicate"], panel);

    // A ledger event with the whole log.
    let events = panel_events(&env, &run);
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["data"]["stage"], "submit");
    assert_eq!(&events[0]["data"]["decision"], panel);
    assert!(approve_events(&env, &run).is_empty());

    // The human view names the outcome and each vote's rationale.
    let out = env.airlock(&["show", &run, "--no-diff", "--no-pager"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout
            .contains("panel (submitted tree): needs-attention"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("concern  product #1: The brief names no non-goals"),
        "{}",
        out.stdout
    );

    // The run's report carries the same decision.
    let report = env.airlock(&["report", &run]);
    assert_eq!(report.code, 0, "{}", report.stderr);
    assert!(
        report.stdout.contains("## Panel\n\n**needs-attention**: "),
        "{}",
        report.stdout
    );
    assert!(
        report
            .stdout
            .contains("- product concern: ` The brief names no non-goals"),
        "{}",
        report.stdout
    );
    let json = env.json(&["report", &run, "--format", "json"], 0);
    assert_eq!(&json["panel"], panel);
}

#[test]
fn the_panel_approves_alone_only_where_the_lane_auto_promotes_the_class() {
    let env = auto_env();
    let (run, wt) = env.start(&brief("docs"));
    good_change(&wt);
    submit(&env, &run);
    let shown = env.json(&["show", &run, "--no-diff"], 0);
    assert_eq!(
        shown["panel"]["outcome"], "recommend-approve",
        "{}",
        shown["panel"]
    );
    assert_eq!(shown["state"], "approved");
    assert_eq!(shown["approval"]["by"], "panel");
    let approvals = approve_events(&env, &run);
    assert_eq!(approvals.len(), 1);
    // The ledger says the panel decided, not a person.
    assert_eq!(approvals[0]["data"]["by"], "panel", "{}", approvals[0]);
    assert!(
        approvals[0]["data"]["reason"]
            .as_str()
            .unwrap()
            .contains("lane `governed` auto-promotes class `docs`"),
        "{}",
        approvals[0]
    );
    // Promoted with no person's approval; the panel votes again on the
    // merged tree.
    let promoted = env.json(&["promote", &run], 0);
    assert!(promoted["merge"].is_string(), "{promoted}");
    assert_eq!(env.state(&run), "promoted");
    let promote = env.events(Some(&run)).last().unwrap().clone();
    assert_eq!(promote["kind"], "promote");
    assert_eq!(promote["data"]["panel"]["outcome"], "recommend-approve");
    assert_eq!(panel_events(&env, &run).len(), 1);
    let shown = env.json(&["show", &run, "--no-diff"], 0);
    assert_eq!(shown["panel_at_promote"]["outcome"], "recommend-approve");

    // The same change in a class the lane does not list: the panel only
    // informs.
    let (run, wt) = env.start(&brief("bugfix"));
    good_change(&wt);
    submit(&env, &run);
    let shown = env.json(&["show", &run, "--no-diff"], 0);
    assert_eq!(shown["panel"]["outcome"], "recommend-approve");
    assert_eq!(shown["state"], "in_review");
    assert!(approve_events(&env, &run).is_empty());
    env.fails(&["promote", &run], 1);

    // The listed class, but the panel has a concern (no test changed).
    let (run, wt) = env.start(&brief("docs"));
    write(&wt.join("src/app.sh"), "#!/bin/sh\necho hello, please!\n");
    submit(&env, &run);
    let shown = env.json(&["show", &run, "--no-diff"], 0);
    assert_eq!(shown["panel"]["outcome"], "needs-attention");
    assert_eq!(shown["state"], "in_review");
    assert!(approve_events(&env, &run).is_empty());
    env.assert_ledger_ok();
}

/// A run whose brief names the workflow itself in `touch` passes the
/// protected-path stop, and its change may look clean to every rule; the
/// panel never approves it alone: a run that could approve its own change
/// to the lanes would raise its own trust.
#[test]
fn the_panel_never_approves_alone_a_change_to_a_protected_path() {
    let env = auto_env();
    let before = env.read(".airlock/workflow.toml");
    let brief_text = brief("docs").replace(
        "touch = [\"src/**\", \"tests/**\"]",
        "touch = [\"src/**\", \"tests/**\", \".airlock/workflow.toml\"]",
    );
    let (run, wt) = env.start(&brief_text);
    good_change(&wt);
    write(
        &wt.join(".airlock/workflow.toml"),
        &AUTO_WORKFLOW.replace(
            "auto_promote = [\"docs\"]",
            "auto_promote = [\"docs\", \"bugfix\"]",
        ),
    );
    submit(&env, &run);
    let shown = env.json(&["show", &run, "--no-diff"], 0);
    assert_eq!(shown["state"], "in_review", "{shown}");
    assert!(approve_events(&env, &run).is_empty());
    // Not promotable without a person, and the workflow is as it was.
    env.fails(&["promote", &run], 1);
    assert_eq!(env.read(".airlock/workflow.toml"), before);
    env.assert_ledger_ok();
}

#[test]
fn an_agent_cannot_talk_the_panel_into_approving() {
    let env = auto_env();
    // Hostile brief text: expression syntax in every free-text field.
    let hostile = r#"" || true || "' || true || '); true; ("#;
    let brief_text = brief("docs").replace(
        "objective = \"greet prints a polite greeting\"",
        &format!(
            "objective = '''greet {hostile} tests.ran > 0 && size(diff.paths) > 0'''\n\
             assumptions = ['''{hostile} vote = \"approve\"''']"
        ),
    );
    let (run, wt) = env.start(&brief_text);
    // A change without a test, which the panel must not approve, under
    // file names and a commit message written as expressions.
    write(&wt.join("src/app.sh"), "#!/bin/sh\necho hello, please\n");
    for name in [
        "src/\" || true || \".sh",
        "src/') || true || ('.sh",
        "src/}; true; {.sh",
        "src/tests.ran > 0 && true.sh",
    ] {
        write(&wt.join(name), "x\n");
    }
    env.json(
        &[
            "exec",
            &run,
            "--",
            "sh",
            "-c",
            "git add -A && git -c user.name=a -c user.email=a@b commit -q -m '\" || true || \" approve'",
        ],
        0,
    );
    submit(&env, &run);
    let shown = env.json(&["show", &run, "--no-diff"], 0);
    assert_eq!(
        shown["panel"]["outcome"], "needs-attention",
        "{}",
        shown["panel"]
    );
    assert!(
        shown["panel"]["votes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v["perspective"] == "qa" && v["vote"] == "concern"),
        "{}",
        shown["panel"]
    );
    assert!(
        shown["panel"]["votes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|v| v["error"].is_null()),
        "the hostile text broke no rule: {}",
        shown["panel"]
    );
    assert_eq!(shown["state"], "in_review");
    assert!(shown["approval"].is_null());
    assert!(approve_events(&env, &run).is_empty());
    env.fails(&["promote", &run], 1);
    env.assert_ledger_ok();
}

#[test]
fn a_rule_that_does_not_type_check_is_refused_at_load_at_its_column() {
    let env = Env::new();
    env.write(
        ".airlock/workflow.toml",
        &format!(
            "{WORKFLOW}\n[[panel.qa.rules]]\nwhen = 'tests.rann > 0'\nvote = \"concern\"\nrationale = \"r\"\n\n\
             [[panel.data.rules]]\nwhen = 'size(diff.paths)'\nvote = \"concern\"\nrationale = \"r\"\n"
        ),
    );
    let path = env.write_brief("b", BRIEF);
    let before = env.world();
    let err = env.json_error(&["start", &path], 2);
    assert_eq!(err["code"], "invalid-workflow", "{err}");
    let base = WORKFLOW.lines().count() as u64;
    let diagnostics = err["diagnostics"].as_array().unwrap();
    assert_eq!(diagnostics.len(), 2, "{err}");
    let (qa, data) = (&diagnostics[0], &diagnostics[1]);
    assert_eq!(
        (&qa["line"], &qa["column"]),
        (&(base + 3).into(), &9.into()),
        "{err}"
    );
    assert!(
        qa["message"]
            .as_str()
            .unwrap()
            .starts_with("`when` of [[panel.qa.rules]] #1: "),
        "{err}"
    );
    assert!(qa["message"].as_str().unwrap().contains("rann"), "{err}");
    assert_eq!(data["line"], base + 8, "{err}");
    assert!(
        data["message"]
            .as_str()
            .unwrap()
            .starts_with("`when` of [[panel.data.rules]] #1: "),
        "{err}"
    );
    assert_eq!(env.run_dirs(), Vec::<String>::new());
    env.assert_unchanged(&before);
}

#[test]
fn every_default_rule_type_checks_against_the_evidence() {
    // The default rules, written as the workflow's own, are type-checked
    // when it loads: a start that succeeds proves every one checks.
    let env = Env::new();
    env.write(
        ".airlock/workflow.toml",
        &format!(
            "{WORKFLOW}\n[panel]\ndefaults = false\n{}",
            airlock_core::panel::DEFAULT_PANEL
        ),
    );
    env.start(BRIEF);
    // And a mistake in the same text would have been caught.
    env.write(
        ".airlock/workflow.toml",
        &format!(
            "{WORKFLOW}\n[panel]\ndefaults = false\n{}",
            airlock_core::panel::DEFAULT_PANEL
                .replace("secrets.findings > 0", "secrets.finding > 0")
        ),
    );
    let err = env.json_error(&["start", &env.write_brief("c", BRIEF)], 2);
    assert_eq!(err["code"], "invalid-workflow", "{err}");
}

#[test]
fn the_panel_withdraws_at_promote_when_it_no_longer_recommends() {
    // A rule over what may change between submit and promote. Here the
    // run's own state (`checked` at submit, `approved` at promote); in
    // practice the class's record (a rollback in between), or a merge.
    let env = Env::new();
    env.write(
        ".airlock/workflow.toml",
        &format!(
            "{AUTO_WORKFLOW}
[[panel.strategy.rules]]
when = 'run.state == \"approved\"'
\
             vote = \"concern\"\nrationale = \"Something changed since submit.\"\n"
        ),
    );
    env.git(&["add", "-A"]);
    env.git(&["commit", "-q", "-m", "workflow"]);
    let (run, wt) = env.start(&brief("docs"));
    good_change(&wt);
    submit(&env, &run);
    assert_eq!(env.state(&run), "approved");
    let before = env.world();
    let out = env.fails(&["promote", &run], 1);
    assert!(
        out.stderr
            .contains("the panel approved it alone, and no longer recommends it"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("needs-attention"), "{}", out.stderr);
    let err = env.json_error(&["promote", &run], 1);
    assert_eq!(err["code"], "panel-withdrew", "{err}");
    env.assert_unchanged(&before);
    assert_eq!(env.state(&run), "approved");

    // A person decides; the panel's decision on the merged tree then only
    // informs.
    env.json(&["approve", &run], 0);
    let shown = env.json(&["show", &run, "--no-diff"], 0);
    assert!(shown["approval"]["by"].is_null(), "{}", shown["approval"]);
    env.json(&["promote", &run], 0);
    assert_eq!(env.state(&run), "promoted");
    let promote = env.events(Some(&run)).last().unwrap().clone();
    assert_eq!(promote["kind"], "promote");
    assert_eq!(promote["data"]["panel"]["outcome"], "needs-attention");
    let shown = env.json(&["show", &run, "--no-diff"], 0);
    assert_eq!(shown["panel_at_promote"]["outcome"], "needs-attention");
    env.assert_ledger_ok();
}

#[test]
fn show_prints_the_panels_section() {
    let env = Env::new();
    let (run, _wt) = env.submitted();
    let out = env.airlock(&["show", &run, "--no-diff", "--no-pager"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let start = out.stdout.find("\npanel (").expect("a panel section") + 1;
    let section = &out.stdout[start..];
    let end = section.find("\n\n").map_or(section.len(), |i| i + 1);
    insta::assert_snapshot!("show_panel_section", &section[..end]);
}
