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
