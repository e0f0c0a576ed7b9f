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
