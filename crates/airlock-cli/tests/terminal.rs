//! What `show`, `review`, `log` and `plan` print of the agent's work (diffs,
//! paths, brief fields, argv, action previews, reasons) reaches the
//! reviewer's terminal escaped: no control sequence (ESC, BEL, CR, DEL, C1)
//! is obeyed and no bidirectional or invisible character reorders or hides
//! what the reviewer reads (Trojan Source). JSON carries the same data
//! exactly, with those characters written as `\uXXXX`.

mod common;

use common::*;
use serde_json::Value;

/// Characters a terminal obeys or hides: none may be printed raw.
const RAW: &[char] = &[
    '\x1b',
    '\x07',
    '\r',
    '\x7f',
    '\u{9b}',
    '\u{202e}',
    '\u{202c}',
    '\u{2066}',
    '\u{2069}',
    '\u{200f}',
    '\u{61c}',
    '\u{200b}',
    '\u{e0041}',
];

fn assert_shown_not_obeyed(args: &[&str], out: &Output, shown: &[&str]) {
    assert_eq!(out.code, 0, "airlock {args:?}: {}", out.stderr);
    for (stream, text) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
        let raw: Vec<char> = text.chars().filter(|c| RAW.contains(c)).collect();
        assert!(
            raw.is_empty(),
            "airlock {args:?} printed {raw:?} raw on {stream}:\n{text}"
        );
    }
    for needle in shown {
        assert!(
            out.stdout.contains(needle),
            "airlock {args:?} does not show {needle:?}:\n{}",
            out.stdout
        );
    }
}

#[test]
fn hostile_text_is_shown_escaped_by_show_review_log_and_plan() {
    let env = Env::new();
    env.write(
        ".airlock/workflow.toml",
        &format!("{WORKFLOW}\n[lanes.governed]\nscopes = [\"http:POST:127.0.0.1:*\"]\n"),
    );
    env.git(&["commit", "-q", "-am", "grant a scope"]);
    // The title through TOML escapes, the rest as raw characters: `show`
    // prints the brief file as it is.
    let brief = concat!(
        r#"title = "Fix \u202Egreeting\u202C \u001B[31mred \u2066hidden\u2069""#,
        "\nobjective = \"greet \u{200b}politely \u{202e}txt.exe\"\n",
        "touch = [\"src/**\", \"tests/**\"]\nchecks = [\"build\", \"test\"]\n",
        "rollback = \"revert \u{61c} it\"\n",
    );
    let (run, wt) = env.start(brief);
    write(&wt.join("src/app.sh"), "#!/bin/sh\necho hello, please\n");
    // A Trojan Source line: what the terminal shows is not what the code says.
    write(
        &wt.join("src/acl\u{202e}hs.txt"),
        "access = \"user\u{202e} \u{2066}// admin\u{2069}\u{2066}\"\n\x1b[2J\x1b[Hcleared\x07\x7f\u{e0041}\r\n",
    );
    let out = env.airlock(&[
        "exec",
        &run,
        "--",
        "printf",
        "%s",
        "x\u{202e}y\x1b]0;owned\x07\u{200f}",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let action = env.tmp.path().join("notify.toml");
    write(
        &action,
        "kind = \"http\"\nscopes = [\"http:POST:127.0.0.1:9/*\"]\nmethod = \"POST\"\nurl = \"http://127.0.0.1:9/hook\"\nbody = \"deploy \\u202Eniam\\u202C \\u001B[2J now\"\ndescription = \"notify \\u2066the team\\u2069\"\n[headers]\nX-Note = \"a\\u200Fb\"\n",
    );
    let out = env.airlock(&["propose", &run, action.to_str().unwrap()]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    env.json(&["check", &run], 0);
    env.json(&["submit", &run], 0);

    let show = ["show", run.as_str()];
    assert_shown_not_obeyed(
        &show,
        &env.airlock(&show),
        &[
            // brief title (the run's label and the brief)
            "Fix \\u{202e}greeting\\u{202c} \\x1b[31mred \\u{2066}hidden\\u{2069}",
            "greet \\u{200b}politely \\u{202e}txt.exe",
            "revert \\u{61c} it",
            // path in the stat, path and lines in the diff
            "src/acl\\u{202e}hs.txt",
            "+access = \"user\\u{202e} \\u{2066}// admin\\u{2069}\\u{2066}\"",
            "+\\x1b[2J\\x1b[Hcleared\\x07\\x7f\\u{e0041}\\r",
            // the trace's argv
            "x\\u{202e}y\\x1b]0;owned\\x07\\u{200f}",
            // the action's preview and description
            "deploy \\u{202e}niam\\u{202c} \\x1b[2J now",
            "notify \\u{2066}the team\\u{2069}",
            "X-Note: a\\u{200f}b",
        ],
    );
    assert_shown_not_obeyed(
        &["review"],
        &env.airlock(&["review"]),
        &["Fix \\u{202e}greeting\\u{202c} \\x1b[31mred"],
    );
    let plan = ["plan", run.as_str()];
    assert_shown_not_obeyed(
        &plan,
        &env.airlock(&plan),
        &[
            "deploy \\u{202e}niam\\u{202c} \\x1b[2J now",
            "notify \\u{2066}the team\\u{2069}",
        ],
    );

    let reason = "looks \u{202e}doog\u{202c} \x1b[2J fine";
    env.json(&["reject", &run, "--reason", reason], 0);
    for log in [vec!["log", run.as_str()], vec!["log"]] {
        assert_shown_not_obeyed(
            &log,
            &env.airlock(&log),
            &[
                "looks \\u{202e}doog\\u{202c} \\x1b[2J fine",
                "x\\u{202e}y\\x1b]0;owned\\x07\\u{200f}",
            ],
        );
    }

    // JSON: the same data exactly, the dangerous characters as `\uXXXX`.
    for args in [
        vec!["--json", "show", run.as_str()],
        vec!["--json", "log", run.as_str()],
        vec!["--json", "plan", run.as_str()],
        vec!["--json", "review"],
    ] {
        let out = env.airlock(&args);
        assert_shown_not_obeyed(&args, &out, &[]);
        let _: Value = serde_json::from_str(&out.stdout).unwrap();
    }
    let shown = env.json(&["show", &run], 0);
    assert!(
        shown["diff"]["stat"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["path"] == "src/acl\u{202e}hs.txt"),
        "{}",
        shown["diff"]
    );
    assert!(
        shown["label"]
            .as_str()
            .unwrap()
            .contains("Fix \u{202e}greeting\u{202c} \x1b[31mred"),
        "{}",
        shown["label"]
    );
    let out = env.airlock(&["--json", "show", &run]);
    assert!(out.stdout.contains(r"acl\u202ehs.txt"), "{}", out.stdout);
    let events = env.json(&["log", &run], 0);
    assert!(
        events["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["data"]["reason"] == reason),
        "{events}"
    );
}

// ---- Red team ----------------------------------------------------------------

/// `airlock brief check` prints a hostile brief's `touch` globs and
/// `objective`: a glob is any text a glob compiler accepts, ESC and
/// bidirectional controls included.
#[test]
fn red_team_brief_check_shows_a_hostile_touch_glob_escaped() {
    let env = Env::new();
    let brief = env.write_brief(
        "hostile",
        &BRIEF.replace(
            "touch = [\"src/**\", \"tests/**\"]",
            "touch = [\"src/**\", \"tests/\\u001B]0;owned\\u0007\\u202E**\"]",
        ),
    );
    let args = ["brief", "check", brief.as_str()];
    let out = env.airlock(&args);
    assert_shown_not_obeyed(&args, &out, &["tests/\\x1b]0;owned\\x07\\u{202e}**"]);
}

/// `airlock snap run` and `airlock snap diff` show a command's output (the
/// agent's, in a run) as a diff: its control characters are replaced, and
/// its bidirectional and invisible characters must not reach the terminal
/// raw either.
#[test]
fn red_team_snap_run_and_diff_show_bidi_output_escaped() {
    let env = Env::new();
    let snap = |args: &[&str]| {
        let mut cmd = env.cmd(args);
        cmd.env_remove("CI");
        Output::from(cmd.output().unwrap())
    };
    let out = snap(&["snap", "run", "g", "--", "printf", "a\\nb\\n"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert_eq!(snap(&["snap", "accept", "g"]).code, 0);
    let hostile = "a\\nuser\u{202e} \u{2066}// admin\u{2069}\u{2066}\u{200b}\\n";
    let out = snap(&["snap", "run", "g", "--", "printf", hostile]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    let out = Output {
        code: 0,
        stdout: out.stdout,
        stderr: out.stderr,
    };
    assert_shown_not_obeyed(&["snap", "run", "g"], &out, &["+user"]);
    let args = ["snap", "diff", "g"];
    assert_shown_not_obeyed(&args, &snap(&args), &["+user"]);
}
