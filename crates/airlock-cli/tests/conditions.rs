//! Issue 18, custom conditions: `[conditions.ID]` in the workflow, CEL over
//! the run's evidence. Bad expressions are refused when the workflow loads,
//! every one at once, at its place inside the expression; a `block`
//! condition stops check, submit and promote; `needs-review` and `warn` are
//! recorded in the proof, the ledger and `show`; the agent's file names and
//! brief text are data to an expression, never part of it.

mod common;

use common::*;
use serde_json::Value;

fn with_workflow(extra: &str) -> Env {
    let env = Env::new();
    env.write(".airlock/workflow.toml", &format!("{WORKFLOW}{extra}"));
    env.git(&["add", "-A"]);
    env.git(&["commit", "-q", "-m", "conditions"]);
    env
}

/// 1-based line and column (characters) of the first `needle` in `text`,
/// plus `skip` characters.
fn position(text: &str, needle: &str, skip: usize) -> (u64, u64) {
    let at = text
        .find(needle)
        .unwrap_or_else(|| panic!("{needle} not in text"));
    let before = &text[..at];
    let line = before.matches('\n').count() + 1;
    let column = before[before.rfind('\n').map_or(0, |i| i + 1)..]
        .chars()
        .count()
        + 1
        + skip;
    (line as u64, column as u64)
}

const BAD: &str = r#"
[conditions.syntax]
when = "diff.files_changed > "
message = "m"
effect = "block"

[conditions.unknown-field]
when = "diff.files_chnged > 3"
message = "m"
effect = "warn"

[conditions.not-bool]
when = 'diff.insertions + 1'
message = "m"
effect = "warn"

[conditions.bad-effect]
when = "true"
message = "m"
effect = "stop"

[conditions.no-when]
message = "m"
effect = "block"

[conditions.escaped]
when = "run.lane == \"x\" && brief.objectiv == \"y\""
message = "m"
effect = "warn"
"#;

#[test]
fn every_bad_condition_is_refused_at_its_place_and_nothing_is_written() {
    let env = Env::new();
    let workflow = format!("{WORKFLOW}{BAD}");
    env.write(".airlock/workflow.toml", &workflow);
    let brief = env.write_brief("b", BRIEF);
    let before = env.world();

    let e = env.json_error(&["start", &brief], 2);
    assert_eq!(e["code"], "invalid-workflow", "{e}");
    let diags = e["diagnostics"].as_array().unwrap();
    let at = |line: u64, column: u64| -> &Value {
        diags
            .iter()
            .find(|d| d["line"] == line && d["column"] == column)
            .unwrap_or_else(|| panic!("no diagnostic at {line}:{column}: {e}"))
    };
    // A syntax error at the end of the expression (past the `>`).
    let (l, c) = position(&workflow, "diff.files_changed > \"", 0);
    let d = diags
        .iter()
        .find(|d| d["line"] == l && d["message"].as_str().unwrap().contains("syntax"))
        .unwrap_or_else(|| panic!("{e}"));
    let column = d["column"].as_u64().unwrap();
    assert!(
        (c + 19..=c + 21).contains(&column),
        "{d}: at the end of the expression ({c})"
    );
    assert!(d["message"].as_str().unwrap().contains("syntax"), "{d}");
    assert!(
        d["message"]
            .as_str()
            .unwrap()
            .contains("[conditions.syntax]"),
        "{d}"
    );
    // The unknown field, inside the string.
    let (l, c) = position(&workflow, "diff.files_chnged", 0);
    let d = diags
        .iter()
        .find(|d| d["line"] == l && d["message"].as_str().unwrap().contains("files_chnged"))
        .unwrap_or_else(|| panic!("{e}"));
    let column = d["column"].as_u64().unwrap();
    assert!(
        (c..c + 17).contains(&column),
        "{d} should point into the expression at {c}"
    );
    // Not a bool: the whole expression, from its first character.
    let (l, c) = position(&workflow, "diff.insertions + 1", 0);
    let d = at(l, c);
    assert!(d["message"].as_str().unwrap().contains("`bool`"), "{d}");
    // The unknown effect, at its value.
    let (l, c) = position(&workflow, "\"stop\"", 0);
    assert!(
        at(l, c)["message"]
            .as_str()
            .unwrap()
            .contains("unknown effect `stop`")
    );
    // The missing `when`, at the table's name.
    let (l, _) = position(&workflow, "[conditions.no-when]", 0);
    let d = diags
        .iter()
        .find(|d| d["line"] == l)
        .unwrap_or_else(|| panic!("{e}"));
    assert!(d["message"].as_str().unwrap().contains("no `when`"), "{d}");
    // Past escaped quotes, the position is still the field's in the file.
    let (l, c) = position(&workflow, "brief.objectiv ", 0);
    let d = diags
        .iter()
        .find(|d| d["line"] == l && d["message"].as_str().unwrap().contains("objectiv"))
        .unwrap_or_else(|| panic!("{e}"));
    assert!(
        (c..c + 14).contains(&d["column"].as_u64().unwrap()),
        "{d} vs {c}"
    );
    assert_eq!(diags.len(), 6, "every problem at once: {e}");

    // The human form names file:line:col for each.
    let out = env.fails(&["start", &brief], 2);
    let (l, c) = position(&workflow, "diff.insertions + 1", 0);
    assert!(
        out.stderr.contains(&format!(
            "workflow.toml:{l}:{c}: `when` of [conditions.not-bool]: "
        )),
        "{}",
        out.stderr
    );
    // Every command that loads the workflow refuses it the same way.
    env.fails(&["brief", "check", &brief], 2);
    assert_eq!(env.run_dirs(), Vec::<String>::new());
    env.assert_unchanged(&before);
}

#[test]
fn a_block_condition_fails_the_check_and_names_itself() {
    let env = with_workflow(
        r#"
[conditions.no-src]
when = 'diff.paths.exists(p, p.startsWith("src/"))'
message = "src/ changes need the platform team"
effect = "block"

[conditions.never]
when = "diff.files_changed > 1000"
message = "huge"
effect = "block"
"#,
    );
    let (run, wt) = env.start(BRIEF);
    write(&wt.join("src/app.sh"), "#!/bin/sh\necho hello, please\n");
    let out = env.airlock(&["check", &run]);
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains(
            "conditions:\n  FAIL no-src (block)\n       - src/ changes need the platform team"
        ),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("  ok   never (block)"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains(
            "check failed: condition `no-src` (block): src/ changes need the platform team"
        ),
        "{}",
        out.stdout
    );
    let report = env.json(&["check", &run], 1);
    assert_eq!(report["passed"], false);
    assert_eq!(report["conditions"][0]["id"], "no-src");
    assert_eq!(report["conditions"][0]["held"], true);
    assert_eq!(report["conditions"][1]["held"], false);
    // The check event in the ledger carries the results.
    let events = env.events(Some(&run));
    let check = events.iter().rev().find(|e| e["kind"] == "check").unwrap();
    assert_eq!(check["data"]["conditions"][0]["held"], true, "{check}");
    // And submit is refused: the check did not pass.
    let e = env.json_error(&["submit", &run], 1);
    assert_eq!(e["code"], "wrong-state", "{e}");
    assert_eq!(env.state(&run), "staged");
}

const ACTION_LANE: &str = r#"
[lanes.governed]
scopes = ["command:notify"]

[conditions.no-commands]
when = 'actions.exists(a, a.kind == "command")'
message = "command actions need a release run"
effect = "block"
"#;

#[test]
fn a_block_condition_that_holds_at_submit_stops_submit_and_writes_nothing() {
    let env = with_workflow(ACTION_LANE);
    let (run, wt) = env.start(BRIEF);
    write(&wt.join("src/app.sh"), "#!/bin/sh\necho hello, please\n");
    env.json(&["check", &run], 0);
    // After the check, the agent proposes an action the condition blocks.
    let action = env.tmp.path().join("notify.toml");
    write(
        &action,
        "kind = \"command\"\nname = \"notify\"\nscopes = [\"command:notify\"]\nargv = [\"true\"]\n",
    );
    env.json(&["propose", &run, action.to_str().unwrap()], 0);
    let before = env.world();
    let proofs_before = proofs(&env);

    let e = env.json_error(&["submit", &run], 1);
    assert_eq!(e["code"], "condition-blocked", "{e}");
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("blocked by 1 workflow condition"),
        "{e}"
    );
    assert_eq!(
        e["reasons"][0],
        "condition `no-commands` (block): command actions need a release run"
    );
    let out = env.fails(&["submit", &run], 1);
    assert!(
        out.stderr
            .contains("  - condition `no-commands` (block): command actions need a release run"),
        "{}",
        out.stderr
    );
    assert_eq!(env.state(&run), "checked");
    assert_eq!(proofs(&env), proofs_before, "no proof was written");
    assert_eq!(
        env.git(&["rev-parse", &format!("refs/airlock/runs/{run}")])
            .len(),
        40
    );
    env.assert_unchanged(&before);

    // Withdrawn, the run submits.
    env.json(&["propose", &run, "--withdraw", "notify"], 0);
    env.json(&["submit", &run], 0);
}

fn proofs(env: &Env) -> Vec<String> {
    let dir = env.state_dir().join("proofs");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// The checks statement of a run's proof bundle.
fn checks_statement(env: &Env, run: &str) -> Value {
    use base64::Engine as _;
    let path = env
        .state_dir()
        .join("proofs")
        .join(format!("{run}-r1.intoto.jsonl"));
    let text = std::fs::read_to_string(path).unwrap();
    for line in text.lines() {
        let envelope: Value = serde_json::from_str(line).unwrap();
        let payload = base64::engine::general_purpose::STANDARD
            .decode(envelope["payload"].as_str().unwrap())
            .unwrap();
        let statement: Value = serde_json::from_slice(&payload).unwrap();
        if statement["predicateType"] == "https://airlock.dev/checks/v1" {
            return statement["predicate"].clone();
        }
    }
    panic!("no checks statement")
}

#[test]
fn needs_review_and_warn_are_signed_shown_and_in_the_ledger() {
    let env = with_workflow(
        r#"
[conditions.shell-change]
when = 'diff.paths.exists(p, p.endsWith(".sh")) && tests.ran == 0'
message = "shell changed and no test counts were reported"
effect = "needs-review"

[conditions.small]
when = "diff.files_changed < 3"
message = "a small change"
effect = "warn"

[conditions.quiet]
when = "size(network.hosts) > 0"
message = "network used"
effect = "warn"
"#,
    );
    let (run, _) = env.submitted();
    let checks = checks_statement(&env, &run);
    let conditions = checks["conditions"].as_array().unwrap();
    let held: Vec<(&str, bool, &str)> = conditions
        .iter()
        .map(|c| {
            (
                c["id"].as_str().unwrap(),
                c["held"].as_bool().unwrap(),
                c["effect"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        held,
        vec![
            ("shell-change", true, "needs-review"),
            ("small", true, "warn"),
            ("quiet", false, "warn")
        ]
    );
    env.json(&["proof", "verify", &run], 0);

    let show = env.json(&["show", &run], 0);
    let flags: Vec<&str> = show["risk_flags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["code"].as_str().unwrap())
        .collect();
    assert!(flags.contains(&"condition-needs-review"), "{show}");
    assert!(flags.contains(&"condition-warn"), "{show}");
    let human = env.airlock(&["show", &run, "--no-pager"]);
    assert!(human.stdout.contains("  HOLD shell-change (needs-review)\n       - shell changed and no test counts were reported"), "{}", human.stdout);
    assert!(
        human.stdout.contains("  warn small (warn)"),
        "{}",
        human.stdout
    );

    let events = env.events(Some(&run));
    let submit = events.iter().find(|e| e["kind"] == "submit").unwrap();
    assert_eq!(
        submit["data"]["conditions"][0]["id"], "shell-change",
        "{submit}"
    );
    assert_eq!(submit["data"]["conditions"][0]["held"], true, "{submit}");
}

#[test]
fn a_block_condition_is_evaluated_again_at_promotion() {
    let env = with_workflow(
        r#"
[conditions.not-approved-yet]
when = 'run.state == "approved"'
message = "this workflow promotes by hand only"
effect = "block"
"#,
    );
    let (run, _) = env.approved();
    let main_before = env.git(&["rev-parse", "main"]);
    let e = env.json_error(&["promote", &run], 1);
    assert_eq!(e["code"], "condition-blocked", "{e}");
    assert!(
        e["message"].as_str().unwrap().contains("promotion of run"),
        "{e}"
    );
    assert_eq!(env.git(&["rev-parse", "main"]), main_before);
    assert_eq!(env.state(&run), "approved");
}

#[test]
fn agent_chosen_names_and_text_cannot_change_what_a_condition_evaluates() {
    let env = with_workflow(
        r#"
[conditions.sql]
when = 'diff.paths.exists(p, p.endsWith(".sql"))'
message = "SQL changed"
effect = "needs-review"

[conditions.outside]
when = 'diff.paths.exists(p, p.startsWith("src/evil"))'
message = "evil"
effect = "warn"

[conditions.objective]
when = 'brief.objective == "fix"'
message = "objective"
effect = "warn"
"#,
    );
    let brief = BRIEF.replace(
        "objective = \"greet prints a polite greeting\"",
        "objective = \"fix\\\" || true || \\\"\"",
    );
    let (run, wt) = env.start(&brief);
    // File names that would close a string and add an alternative, or
    // break a line, if an expression were ever built from them.
    for name in [
        "src/x\") || true || (\"y.sql.txt",
        "src/a' || true || 'b",
        "src/line\nbreak.sql\nx",
        "src/evil\") && false && (\"",
        "src/true",
    ] {
        write(&wt.join(name), "x\n");
    }
    let report = env.json(&["check", &run], 0);
    let held: Vec<bool> = report["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["held"].as_bool().unwrap())
        .collect();
    // No path ends in `.sql` (one has `.sql` mid-name), one starts with
    // src/evil though it says `&& false`, and the objective is not "fix".
    assert_eq!(held, vec![false, true, false], "{report}");
}

#[test]
fn the_evidence_command_shows_the_document_conditions_see() {
    let env = with_workflow(
        r#"
[gates.counted]
run = "sh tests/run.sh && echo 'test result: ok. 3 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out'"
timeout = 30

[conditions.tests-ran]
when = "tests.ran == 0"
message = "no tests ran"
effect = "needs-review"
"#,
    );
    let brief = BRIEF.replace(
        "checks = [\"build\", \"test\"]",
        "checks = [\"build\", \"counted\"]",
    );
    let (run, wt) = env.start(&brief);
    write(&wt.join("src/app.sh"), "#!/bin/sh\necho hello, please\n");
    write(&wt.join("tests/new.sh"), "#!/bin/sh\ntrue\n");
    env.json(
        &[
            "exec",
            &run,
            "--",
            "sh",
            "-c",
            "rm tests/new.sh; echo two > tests/two.sh",
        ],
        0,
    );
    env.json(&["check", &run], 0);
    let doc = env.json(&["evidence", &run], 0);
    assert_eq!(doc["evidence"]["version"], "airlock.evidence/v1");
    assert_eq!(doc["evidence"]["tests"]["passed"], 3, "{doc}");
    assert_eq!(doc["conditions"][0]["held"], false, "{doc}");
    let text = serde_json::to_string_pretty(&doc).unwrap();
    let mut settings = insta::Settings::clone_current();
    settings.add_filter(
        &regex_escape(&env.tmp.path().display().to_string()),
        "[TMP]",
    );
    settings.add_filter(&regex_escape(&run), "[RUN]");
    settings.add_filter(r#""duration_ms": \d+"#, "\"duration_ms\": [MS]");
    settings.set_omit_expression(true);
    settings.bind(|| insta::assert_snapshot!("evidence_json", text));
}

fn regex_escape(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if "\\.+*?()|[]{}^$#&-~".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}
