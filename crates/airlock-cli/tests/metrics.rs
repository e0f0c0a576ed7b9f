//! Issue 18, promotion metrics: `airlock stats` over runs driven through the
//! CLI (approve, reject, redirect, promote, rollback), every number checked.

mod common;

use common::*;
use serde_json::Value;

fn brief(class: &str, title: &str) -> String {
    BRIEF
        .replace("Make greet polite", title)
        .replace("checks = ", &format!("class = \"{class}\"\nchecks = "))
}

fn polite(wt: &std::path::Path) {
    write(&wt.join("src/app.sh"), "#!/bin/sh\necho hello, please\n");
}

/// Drives five runs through every decision; returns their ids in order.
fn history(env: &Env) -> Vec<String> {
    let mut ids = Vec::new();
    // 1. bugfix: approved first time, promoted, rolled back.
    let (a, wt) = env.start(&brief("bugfix", "Clean one"));
    polite(&wt);
    env.json(&["check", &a], 0);
    env.json(&["submit", &a], 0);
    env.json(&["approve", &a], 0);
    env.json(&["promote", &a], 0);
    env.json(&["rollback", &a, "--reason", "broke greeting"], 0);
    ids.push(a);
    // 2. bugfix: redirected once, then approved.
    let (b, wt) = env.start(&brief("bugfix", "Reworked one"));
    polite(&wt);
    env.json(&["check", &b], 0);
    env.json(&["submit", &b], 0);
    env.json(&["redirect", &b, "--reason", "say please twice"], 0);
    write(
        &wt.join("src/app.sh"),
        "#!/bin/sh\necho hello, please please\n",
    );
    env.json(&["check", &b], 0);
    env.json(&["submit", &b], 0);
    env.json(&["approve", &b], 0);
    ids.push(b);
    // 3. bugfix: rejected in review.
    let (c, wt) = env.start(&brief("bugfix", "Rejected one"));
    polite(&wt);
    env.json(&["check", &c], 0);
    env.json(&["submit", &c], 0);
    env.json(&["reject", &c, "--reason", "not wanted"], 0);
    ids.push(c);
    // 4. bugfix: stopped by the scope condition, then rejected unsubmitted.
    let (d, wt) = env.start(&brief("bugfix", "Blocked one"));
    write(&wt.join("README.out-of-scope"), "x\n");
    env.json(&["check", &d], 1);
    env.json(&["reject", &d, "--reason", "out of scope"], 0);
    ids.push(d);
    // 5. docs: approved first time and promoted.
    let (e, wt) = env.start(&brief("docs", "Docs one"));
    write(&wt.join("src/notes.txt"), "notes\n");
    env.json(&["check", &e], 0);
    env.json(&["submit", &e], 0);
    env.json(&["approve", &e], 0);
    env.json(&["promote", &e], 0);
    ids.push(e);
    ids
}

fn rate(v: &Value) -> (u64, u64) {
    (v["count"].as_u64().unwrap(), v["of"].as_u64().unwrap())
}

#[test]
fn stats_counts_every_decision_of_real_runs() {
    let env = Env::new();
    history(&env);
    let v = env.json(&["stats"], 0);
    let classes = v["classes"].as_array().unwrap();
    assert_eq!(classes.len(), 2, "{v:#}");
    let bugfix = &classes[0];
    assert_eq!(bugfix["class"], "bugfix");
    assert_eq!(bugfix["runs"], 4);
    assert_eq!(bugfix["reviewed"], 4);
    assert_eq!(rate(&bugfix["clean"]), (1, 4));
    assert_eq!(bugfix["clean"]["rate"], 0.25);
    assert_eq!(bugfix["rework_rounds"], 1);
    assert_eq!(rate(&bugfix["reworked"]), (1, 4));
    assert_eq!(rate(&bugfix["rejected"]), (2, 4));
    assert_eq!(rate(&bugfix["blocked"]), (1, 4));
    assert_eq!(bugfix["blocked_by"], serde_json::json!({"scope": 1}));
    assert_eq!(rate(&bugfix["gate_failed"]), (0, 4));
    assert_eq!(bugfix["promoted"], 1);
    assert_eq!(rate(&bugfix["rolled_back"]), (1, 1));
    // A's approve, B's redirect and approve, C's reject: D was never submitted.
    assert_eq!(bugfix["time_to_decision"]["of"], 4);
    assert!(bugfix["time_to_decision"]["median_ms"].is_u64());
    assert!(bugfix["last_rollback"].is_string());

    let docs = &classes[1];
    assert_eq!(docs["class"], "docs");
    assert_eq!(docs["runs"], 1);
    assert_eq!(rate(&docs["clean"]), (1, 1));
    assert_eq!(docs["rework_rounds"], 0);
    assert_eq!(rate(&docs["rejected"]), (0, 1));
    assert_eq!(rate(&docs["blocked"]), (0, 1));
    assert_eq!(docs["promoted"], 1);
    assert_eq!(rate(&docs["rolled_back"]), (0, 1));
    assert_eq!(docs["time_to_decision"]["of"], 1);
    assert!(docs.get("last_rollback").is_none());

    // One class.
    let v = env.json(&["stats", "--class", "docs"], 0);
    assert_eq!(v["classes"].as_array().unwrap().len(), 1);
    assert_eq!(v["classes"][0]["class"], "docs");
    assert_eq!(v["class"], "docs");
    // A window that starts after every run: nothing, said plainly.
    let v = env.json(&["stats", "--since", "2999-01-01"], 0);
    assert_eq!(v["classes"], serde_json::json!([]));
    assert_eq!(v["since"], "2999-01-01T00:00:00.000Z");
    let out = env.airlock(&["stats", "--since", "2999-01-01"]);
    assert_eq!(out.stdout.trim(), "no runs since 2999-01-01T00:00:00.000Z");
    // A window that holds them all.
    let v = env.json(&["stats", "--since", "1d"], 0);
    assert_eq!(v["classes"][0]["runs"], 4);
    env.assert_ledger_ok();
}

#[test]
fn a_bad_since_is_refused_and_changes_nothing() {
    let env = Env::new();
    let before = env.world();
    let out = env.fails(&["stats", "--since", "last tuesday"], 2);
    assert!(
        out.stderr
            .contains("`--since last tuesday` is neither a date, a time nor a duration"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("--since 30d"), "{}", out.stderr);
    let err = env.json_error(&["stats", "--since", "x"], 2);
    assert_eq!(err["code"], "invalid-input");
    env.assert_unchanged(&before);
}

#[test]
fn stats_transcript() {
    let env = Env::new();
    history(&env);
    let mut out = env.airlock(&["stats"]).stdout;
    out += &env.airlock(&["stats", "--class", "nope"]).stdout;
    // Times to decision vary from run to run.
    let mut settings = insta::Settings::clone_current();
    settings.add_filter(r"median [0-9a-z ]+ \(of", "median [DURATION] (of");
    settings.set_omit_expression(true);
    settings.bind(|| insta::assert_snapshot!("stats", out));
}

// ------------------------------------------------------------ lanes suggest

const PROMOTION: &str = r#"
[classes.bugfix]
max_lane = "governed"

[classes.docs]
max_lane = "governed"

[classes.idle]
max_lane = "sandbox"

[promotion]
min_runs = 2
min_clean_rate = 0.9
window = "30d"
demote_rejections = 2
"#;

/// `env` with classes and thresholds in its workflow, committed.
fn with_promotion(env: &Env, promotion: &str) {
    env.write(".airlock/workflow.toml", &format!("{WORKFLOW}{promotion}"));
    env.git(&["add", "-A"]);
    env.git(&["commit", "-q", "-m", "classes and thresholds"]);
}

/// Two clean docs runs, one bugfix run promoted and rolled back.
fn lane_history(env: &Env) {
    for title in ["Docs one", "Docs two"] {
        let (run, wt) = env.start(&brief("docs", title));
        write(
            &wt.join(format!("src/{}.txt", title.replace(' ', "-"))),
            "notes\n",
        );
        env.json(&["check", &run], 0);
        env.json(&["submit", &run], 0);
        env.json(&["approve", &run], 0);
    }
    let (run, wt) = env.start(&brief("bugfix", "Rolled back"));
    polite(&wt);
    env.json(&["check", &run], 0);
    env.json(&["submit", &run], 0);
    env.json(&["approve", &run], 0);
    env.json(&["promote", &run], 0);
    env.json(&["rollback", &run, "--reason", "broke greeting"], 0);
}

#[test]
fn lanes_suggest_moves_classes_by_their_records_and_changes_nothing() {
    let env = Env::new();
    with_promotion(&env, PROMOTION);
    lane_history(&env);
    let before = env.world();
    let v = env.json(&["lanes", "suggest"], 0);
    env.assert_unchanged(&before);
    assert_eq!(v["thresholds"]["min_runs"], 2);
    assert_eq!(v["thresholds"]["min_clean_rate"], 0.9);
    assert_eq!(v["window_seconds"], 30 * 86_400);
    let classes = v["classes"].as_array().unwrap();
    let find = |name: &str| classes.iter().find(|c| c["class"] == name).unwrap().clone();
    let docs = find("docs");
    assert_eq!(docs["move"], "up");
    assert_eq!(docs["lane"], "governed");
    assert_eq!(docs["to"], "staging");
    assert_eq!(docs["record"]["reviewed"], 2);
    assert_eq!(rate(&docs["record"]["clean"]), (2, 2));
    let bugfix = find("bugfix");
    assert_eq!(bugfix["move"], "down");
    assert_eq!(bugfix["to"], "sandbox");
    assert_eq!(
        bugfix["reasons"],
        serde_json::json!([
            "1 rollback in the window (1 of 1 promoted run started in it rolled back)"
        ])
    );
    let idle = find("idle");
    assert_eq!(idle["move"], "stay");
    assert_eq!(idle["to"], Value::Null);
    assert_eq!(idle["record"]["runs"], 0);
    assert_eq!(
        idle["reasons"][0],
        "0 reviewed runs in the window, 2 needed (min_runs)"
    );

    let out = env.airlock(&["lanes", "suggest"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let mut settings = insta::Settings::clone_current();
    settings.set_omit_expression(true);
    settings.bind(|| insta::assert_snapshot!("lanes_suggest", out.stdout));
}

#[test]
fn lanes_suggest_refuses_bad_thresholds_at_load_with_their_place() {
    let env = Env::new();
    with_promotion(
        &env,
        "\n[promotion]\nmin_runs = 0\nmin_clean_rate = 95\nwindow = \"a month\"\n",
    );
    let before = env.world();
    let out = env.fails(&["lanes", "suggest"], 2);
    for expected in [
        ".airlock/workflow.toml:15:12",
        "`min_runs` must be a positive integer, found `0`",
        ".airlock/workflow.toml:16:18",
        "`min_clean_rate` must be a number from 0 to 1",
        ".airlock/workflow.toml:17:10",
        "`window = \"a month\"` is not a duration",
    ] {
        assert!(out.stderr.contains(expected), "{expected}\n{}", out.stderr);
    }
    let err = env.json_error(&["lanes", "suggest"], 2);
    assert_eq!(err["code"], "invalid-workflow");
    env.assert_unchanged(&before);
}

// ------------------------------------------------------------------ report

/// What changes between test runs in a report, and only that.
fn report_settings(env: &Env) -> insta::Settings {
    let mut s = insta::Settings::clone_current();
    s.set_omit_expression(true);
    s.add_filter(
        &regex_escape(&env.tmp.path().display().to_string()),
        "[TMP]",
    );
    s.add_filter(
        r"\b([a-z][a-z0-9]*(?:-[a-z0-9]+)*?)-[0-9a-f]{4}\b",
        "$1-[ID]",
    );
    s.add_filter(
        r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d)",
        "[TIME]",
    );
    s.add_filter(r"\b[0-9a-f]{64}\b", "[DIGEST]");
    s.add_filter(r"\b[0-9a-f]{40}\b", "[COMMIT]");
    // Durations, in milliseconds or humantime's units.
    s.add_filter(r"duration [0-9a-z ]+ \(", "duration [DURATION] (");
    s.add_filter(
        r"\b(passed|failed|skipped) in [0-9a-z ]+",
        "$1 in [DURATION]",
    );
    s.add_filter(r#""(\w*_ms)": ?\d+"#, "\"$1\": [N]");
    s
}

fn regex_escape(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '/' || c == '_' {
                c.to_string()
            } else {
                format!("\\{c}")
            }
        })
        .collect()
}

#[test]
fn report_of_a_promoted_run_in_markdown_and_json() {
    let env = Env::new();
    let (run, wt) = env.start(&brief("bugfix", "Make greet polite"));
    polite(&wt);
    write(&wt.join("tests/more.sh"), "#!/bin/sh\ntrue\n");
    env.json(&["check", &run], 0);
    env.json(&["submit", &run], 0);
    env.json(&["approve", &run, "--reason", "looks right"], 0);
    env.json(&["promote", &run], 0);
    let md = env.airlock(&["report", &run]);
    assert_eq!(md.code, 0, "{}", md.stderr);
    let v = env.json(&["report", &run, "--format", "json"], 0);
    assert_eq!(v["run"]["id"], run.as_str());
    assert_eq!(v["run"]["class"], "bugfix");
    assert_eq!(v["run"]["state"], "promoted");
    assert_eq!(v["diff"]["files_changed"], 2);
    assert_eq!(v["diff"]["insertions"], 3);
    assert_eq!(v["diff"]["deletions"], 1);
    assert_eq!(
        v["diff"]["areas"],
        serde_json::json!({"src": 1, "tests": 1})
    );
    assert_eq!(v["commits"].as_array().unwrap().len(), 1);
    assert_eq!(v["commits"][0]["subject"], "Make greet polite");
    let gates: Vec<&str> = v["gates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["name"].as_str().unwrap())
        .collect();
    assert_eq!(gates, ["build", "test"]);
    assert_eq!(v["brief"]["rollback"], "revert the merge commit");
    let kinds: Vec<&str> = v["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["approve", "promote"]);
    // `--format json` without --json prints the same document.
    let plain = env.airlock(&["report", &run, "--format", "json"]);
    let again: Value = serde_json::from_str(&plain.stdout).unwrap();
    assert_eq!(again["diff"], v["diff"]);
    report_settings(&env).bind(|| insta::assert_snapshot!("report_md", md.stdout));
}

#[test]
fn report_refuses_an_unknown_format_and_an_unknown_run() {
    let env = Env::new();
    let (run, _) = env.start(&brief("bugfix", "Make greet polite"));
    let before = env.world();
    let out = env.fails(&["report", &run, "--format", "xml"], 2);
    assert!(
        out.stderr
            .contains("`--format xml` is not a report format: use `md` (Markdown) or `json`"),
        "{}",
        out.stderr
    );
    let err = env.json_error(&["report", "no-such-run-0000"], 2);
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .contains("no-such-run-0000"),
        "{err}"
    );
    env.assert_unchanged(&before);
}

/// Markers the hostile run plants; each may appear in the report only as
/// code (inline or a block), where a renderer makes no HTML, link or mention.
const HOSTILE_MARKERS: &[&str] = &[
    "evil.example",
    "@admin",
    "<script",
    "<img",
    "onerror",
    "# Injected",
    "#1234",
];

#[test]
fn a_hostile_run_cannot_inject_markdown_into_its_report() {
    use pulldown_cmark::{Event, Options, Parser, Tag};
    let env = Env::new();
    let hostile_brief = r#"title = "Fix `](https://evil.example) <img src=x onerror=alert(1)> @admin #1234"
objective = """
Close the fence:
```
</details><script>alert(1)</script>
# Injected heading
[click](https://evil.example) @admin
````
"""
non_goals = ["`` `@admin` ``", "<!-- hide --> [x](https://evil.example)"]
assumptions = ["\n# Injected assumption\n@admin"]
touch = ["src/**", "tests/**"]
class = "bugfix"
checks = ["build", "test"]
rollback = """
~~~
```
[rollback](https://evil.example)
# Injected rollback
"""
"#;
    let (run, wt) = env.start(hostile_brief);
    polite(&wt);
    write(
        &wt.join("src/`](https:\\evil.example) <img src=x onerror=alert(1)> @admin.sh"),
        "x\n",
    );
    write(&wt.join("src/line\n# Injected file\n@admin.txt"), "x\n");
    env.json(&["check", &run], 0);
    env.json(&["submit", &run], 0);
    env.json(
        &[
            "reject",
            &run,
            "--reason",
            "```\n# Injected reason\n[a](https://evil.example) @admin",
        ],
        0,
    );
    let md = env.airlock(&["report", &run]).stdout;

    let mut headings = Vec::new();
    let mut in_heading = false;
    let mut in_block = false;
    for event in Parser::new_ext(&md, Options::all()) {
        match &event {
            Event::Html(h) | Event::InlineHtml(h) => panic!("HTML in the report: {h:?}\n{md}"),
            Event::Start(Tag::Link { dest_url, .. })
            | Event::Start(Tag::Image { dest_url, .. }) => {
                panic!("a link in the report: {dest_url}\n{md}")
            }
            Event::Start(Tag::Heading { .. }) => in_heading = true,
            Event::End(pulldown_cmark::TagEnd::Heading(_)) => in_heading = false,
            Event::Start(Tag::CodeBlock(_)) => in_block = true,
            Event::End(pulldown_cmark::TagEnd::CodeBlock) => in_block = false,
            Event::Text(text) if !in_block => {
                for marker in HOSTILE_MARKERS {
                    assert!(
                        !text.contains(marker),
                        "{marker:?} outside code: {text:?}\n{md}"
                    );
                }
            }
            _ => {}
        }
        if in_heading && let Event::Text(t) = &event {
            headings.push(t.to_string());
        }
    }
    // Only airlock's own headings (the first carries the run's title as code).
    for h in &headings {
        assert!(
            [
                "airlock run ",
                ": ",
                "Objective",
                "Non-goals",
                "Touchpoints",
                "Commits",
                "Diff",
                "Gates",
                "Stop conditions",
                "Snapshots",
                "Network",
                "Planned actions",
                "Conditions",
                "Panel",
                "Decisions",
                "Assumptions and confidence limits",
                "Rollback plan",
            ]
            .contains(&h.as_str()),
            "unexpected heading {h:?}\n{md}"
        );
    }
    // The hostile text is there, as code: the reviewer sees it.
    assert!(md.contains("@admin"), "{md}");
    assert!(md.contains("evil.example"), "{md}");
}

// ------------------------------------------------- the evidence's class record

#[test]
fn the_evidence_carries_the_class_record_and_conditions_can_use_it() {
    let env = Env::new();
    history(&env);
    // After the history: a condition over the class's record.
    env.write(
        ".airlock/workflow.toml",
        &format!(
            "{WORKFLOW}\n[conditions.rolled-back-class]\nwhen = \"class.rolled_back > 0\"\nmessage = \"this class had a rollback\"\neffect = \"block\"\n"
        ),
    );
    env.git(&["add", "-A"]);
    env.git(&["commit", "-q", "-m", "a condition over the class record"]);
    let (run, wt) = env.start(&brief("bugfix", "Next bugfix"));
    polite(&wt);
    let v = env.json(&["evidence", &run], 0);
    let class = &v["evidence"]["class"];
    assert_eq!(
        class,
        &serde_json::json!({
            "runs": 4, "clean": 1, "clean_rate": 0.25, "rework_rounds": 1,
            "rejected": 2, "blocked": 1, "promoted": 1, "rolled_back": 1
        }),
        "{v:#}"
    );
    let out = env.airlock(&["check", &run]);
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    assert!(
        format!("{}{}", out.stdout, out.stderr).contains("rolled-back-class"),
        "{}\n{}",
        out.stdout,
        out.stderr
    );
    // The block counts in the class's record, by the condition's id.
    let v = env.json(&["stats", "--class", "bugfix"], 0);
    assert_eq!(
        v["classes"][0]["blocked_by"],
        serde_json::json!({"rolled-back-class": 1, "scope": 1})
    );
    assert_eq!(rate(&v["classes"][0]["blocked"]), (2, 5));
    // A class with a clean record is not stopped.
    let (docs, wt) = env.start(&brief("docs", "Next docs"));
    write(&wt.join("src/more-notes.txt"), "notes\n");
    env.json(&["check", &docs], 0);
    let v = env.json(&["evidence", &docs], 0);
    assert_eq!(v["evidence"]["class"]["runs"], 1);
    assert_eq!(v["evidence"]["class"]["clean_rate"], 1.0);
    assert_eq!(v["evidence"]["class"]["rolled_back"], 0);
}
