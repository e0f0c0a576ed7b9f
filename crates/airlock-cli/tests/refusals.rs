//! Every refusal of the staged run, through the binary: the message, the
//! exit code, and proof that nothing was lost or half-written (run states,
//! the main repository, the ledger).

mod common;

use common::*;
use serde_json::Value;

fn findings(report: &Value, stop: &str) -> Vec<String> {
    let s = report["stops"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == stop)
        .unwrap_or_else(|| panic!("no stop condition {stop}: {report}"));
    s["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap().to_string())
        .collect()
}

fn notes(report: &Value, stop: &str) -> Vec<String> {
    let s = report["stops"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == stop)
        .unwrap();
    s["notes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap().to_string())
        .collect()
}

fn passed(report: &Value, stop: &str) -> bool {
    report["stops"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == stop)
        .unwrap()["passed"]
        == true
}

/// A failed check leaves the run staged, the main repository alone and the
/// ledger verifying.
fn assert_failed_check_kept_everything(env: &Env, run: &str, before: &World) {
    assert_eq!(env.state(run), "staged");
    assert_eq!(before.fingerprint, env.main_fingerprint());
    env.assert_ledger_ok();
}

// ---- init -----------------------------------------------------------------

#[test]
fn init_outside_a_git_repository_is_invalid_input() {
    let env = Env::bare();
    let outside = env.tmp.path().join("plain");
    std::fs::create_dir_all(&outside).unwrap();
    let out = env.airlock_in(&outside, &["init"], &[]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.starts_with(&format!(
            "error: not inside a git repository ({})",
            outside.display()
        )),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains("  hint: run airlock inside a git repository (`git init` makes one)")
    );
    assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);
    assert!(
        !env.home.join(".config/airlock").exists(),
        "no key was made"
    );
    let json = env.airlock_in(&outside, &["--json", "init"], &[]);
    let v: Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(v["error"]["class"], "invalid");
}

// ---- brief check ----------------------------------------------------------

const BAD_BRIEF: &str = r#"titel = "Make greet polite"
objective = 42
touch = []
checks = ["biuld", "test", "test"]
lane = "fast"
non_goals = "not a list"

[limits]
max_files = 0
max_lines = -5

[data]
forbid_read = ["../secrets/**", "a/["]
"#;

#[test]
fn brief_check_reports_every_problem_at_once_with_its_position() {
    let env = Env::new();
    let path = env.write_brief("bad", BAD_BRIEF);
    let before = env.world();
    let out = env.fails(&["brief", "check", &path], 2);
    let e = &out.stderr;
    assert!(
        e.starts_with(&format!("error: {path} has 12 problems\n")),
        "{e}"
    );
    for line in [
        format!("  {path}:1:1: unknown key `titel` in a brief\n      help: did you mean `title`?"),
        format!("  {path}:2:13: `objective` must be a string, found an integer"),
        format!("  {path}:3:9: `touch` is empty: the change could not touch any path"),
        format!(
            "  {path}:4:11: the workflow has no gate `biuld`\n      help: did you mean `build`?"
        ),
        format!("  {path}:4:28: gate `test` is listed twice"),
        format!(
            "  {path}:5:8: unknown lane `fast`\n      help: lanes are: draft, sandbox, governed, staging, production"
        ),
        format!("  {path}:6:13: `non_goals` must be an array of strings, found a string"),
        format!("  {path}:9:13: `max_files` must be a positive integer, found `0`"),
        format!("  {path}:10:13: `max_lines` must be a positive integer, found `-5`"),
        format!(
            "  {path}:13:16: invalid glob `../secrets/**`: `..` cannot appear in a glob: paths never leave the repository"
        ),
        format!("  {path}:13:33: invalid glob `a/[`: unclosed character class; missing ']'"),
        format!(
            "  {path}:14:1: missing required key `rollback`\n      help: add `rollback = \"revert the merge commit\"`"
        ),
    ] {
        assert!(e.contains(&line), "missing\n{line}\nin\n{e}");
    }
    assert!(
        e.ends_with("  hint: fix the problems above and run the command again\n"),
        "{e}"
    );
    assert_eq!(out.stdout, "");
    env.assert_unchanged(&before);
}

#[test]
fn brief_check_reports_missing_keys_and_wrong_types() {
    let env = Env::new();
    let path = env.write_brief("thin", "title = 3\ntouch = \"src/**\"\nlimits = 5\n");
    let out = env.fails(&["brief", "check", &path], 2);
    let e = &out.stderr;
    for line in [
        format!("{path}:1:9: `title` must be a string, found an integer"),
        format!("{path}:2:9: `touch` must be an array of strings, found a string"),
        format!("{path}:3:10: `limits` must be a table, found an integer"),
        format!("{path}:4:1: missing required key `objective`"),
        format!("{path}:4:1: missing required key `checks`"),
        format!("{path}:4:1: missing required key `rollback`"),
    ] {
        assert!(e.contains(&line), "missing\n{line}\nin\n{e}");
    }
}

#[test]
fn brief_check_reports_toml_syntax_errors_at_their_position() {
    let env = Env::new();
    let path = env.write_brief(
        "syntax",
        "objective = \"x\"\nrollback = \"revert\"\nchecks = [\"test\"]\ntouch = [\"src/**\"\n",
    );
    let out = env.fails(&["brief", "check", &path], 2);
    assert!(
        out.stderr
            .contains(&format!("{path}:4:18: unclosed array, expected `]`")),
        "{}",
        out.stderr
    );
}

#[test]
fn brief_check_json_has_the_diagnostics_array() {
    let env = Env::new();
    let path = env.write_brief("bad", BAD_BRIEF);
    let e = env.json_error(&["brief", "check", &path], 2);
    assert_eq!(e["class"], "invalid");
    assert_eq!(e["path"], path.as_str());
    assert_eq!(
        e["hint"],
        "fix the problems above and run the command again"
    );
    let diags = e["diagnostics"].as_array().unwrap();
    assert_eq!(diags.len(), 12);
    assert_eq!(
        diags[0],
        serde_json::json!({"line": 1, "column": 1, "message": "unknown key `titel` in a brief", "help": "did you mean `title`?"})
    );
    let positions: Vec<(u64, u64)> = diags
        .iter()
        .map(|d| (d["line"].as_u64().unwrap(), d["column"].as_u64().unwrap()))
        .collect();
    let mut sorted = positions.clone();
    sorted.sort();
    assert_eq!(positions, sorted, "diagnostics come in file order");
}

// ---- start ----------------------------------------------------------------

#[test]
fn start_with_a_bad_base_creates_nothing() {
    let env = Env::new();
    let path = env.write_brief("b", BRIEF);
    let before = env.world();
    let out = env.fails(&["start", &path, "--base", "no-such-rev"], 2);
    assert_eq!(
        out.stderr,
        "error: --base `no-such-rev` does not name a commit in this repository\n"
    );
    assert_eq!(env.run_dirs(), Vec::<String>::new());
    assert_eq!(env.airlock_branches(), "");
    env.assert_unchanged(&before);
}

#[test]
fn start_refuses_a_brief_naming_an_unknown_gate_and_creates_nothing() {
    let env = Env::new();
    let path = env.write_brief("b", &BRIEF.replace("\"test\"]", "\"tests\"]"));
    let before = env.world();
    let out = env.fails(&["start", &path], 2);
    assert!(
        out.stderr
            .contains(&format!("{path}:4:20: the workflow has no gate `tests`")),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("help: did you mean `test`?"),
        "{}",
        out.stderr
    );
    // `brief check` refuses it the same way.
    let check = env.fails(&["brief", "check", &path], 2);
    assert!(check.stderr.contains("the workflow has no gate `tests`"));
    assert_eq!(env.run_dirs(), Vec::<String>::new());
    assert_eq!(env.airlock_branches(), "");
    env.assert_unchanged(&before);
}

#[test]
fn start_without_a_workflow_says_to_run_init() {
    let env = Env::bare();
    env.write("README.md", "# hi\n");
    env.git(&["add", "-A"]);
    env.git(&["commit", "-q", "-m", "initial"]);
    let path = env.write_brief("b", BRIEF);
    let out = env.fails(&["start", &path], 2);
    assert_eq!(
        out.stderr,
        format!(
            "error: no workflow at {}\n  hint: run `airlock init` to write one\n",
            env.repo.join(".airlock/workflow.toml").display()
        )
    );
    assert_eq!(env.run_dirs(), Vec::<String>::new());
    assert_eq!(env.airlock_branches(), "");
}

#[test]
fn start_in_a_repository_without_commits_says_to_commit_first() {
    let env = Env::bare();
    env.write(".airlock/workflow.toml", WORKFLOW);
    assert_eq!(env.airlock(&["init"]).code, 0);
    let path = env.write_brief("b", BRIEF);
    let out = env.fails(&["start", &path], 2);
    assert_eq!(
        out.stderr,
        "error: the repository has no commits yet: commit something first, then start a run\n"
    );
    assert_eq!(env.run_dirs(), Vec::<String>::new());
    assert_eq!(env.airlock_branches(), "");
}

// ---- exec -----------------------------------------------------------------

#[test]
fn exec_on_an_unknown_run_is_invalid_input() {
    let env = Env::new();
    let before = env.world();
    let out = env.fails(&["exec", "no-such-run", "--", "touch", "x"], 2);
    assert_eq!(
        out.stderr,
        "error: no run named `no-such-run`\n  hint: `airlock list` lists every run; `airlock review` those waiting for review\n"
    );
    assert!(!env.repo.join("x").exists());
    env.assert_unchanged(&before);
}

#[test]
fn exec_on_a_run_named_like_a_path_touches_nothing_there() {
    // The worktree is fingerprinted while the repository opens: a run id
    // that is a path must not point that (or its cache) anywhere.
    let env = Env::new();
    let (_, wt) = env.start(BRIEF);
    let before = env.world();
    for id in ["../..", "../../.git", "/etc", ".", ""] {
        let out = env.fails(&["exec", id, "--", "touch", "x"], 2);
        assert!(
            out.stderr
                .starts_with(&format!("error: no run named `{id}`")),
            "{id}: {}",
            out.stderr
        );
    }
    assert!(!env.repo.join("x").exists());
    assert!(!wt.join("x").exists());
    env.assert_unchanged(&before);
}

#[test]
fn exec_after_submit_is_refused_naming_the_state() {
    let env = Env::new();
    let (run, wt) = env.submitted();
    let before = env.world();
    // The command's log files are made while the repository opens; a
    // refused command leaves none behind.
    let logs = |env: &Env| -> Vec<String> {
        let mut names: Vec<String> =
            std::fs::read_dir(env.state_dir().join("runs").join(&run).join("logs"))
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
        names.sort();
        names
    };
    let logs_before = logs(&env);
    assert!(!logs_before.is_empty());
    let out = env.fails(
        &["exec", &run, "--", "sh", "-c", "echo sneaky > src/app.sh"],
        1,
    );
    assert_eq!(logs(&env), logs_before);
    assert_eq!(
        out.stderr,
        format!(
            "error: run {run} is in_review; `exec` needs it to be staged or checked\n  hint: a reviewer runs `airlock approve {run}`, `reject` or `redirect`\n"
        )
    );
    assert_eq!(
        std::fs::read_to_string(wt.join("src/app.sh")).unwrap(),
        "#!/bin/sh\necho hello, please\n"
    );
    env.assert_unchanged(&before);
    let e = env.json_error(&["exec", &run, "--", "true"], 1);
    assert_eq!(e["class"], "refused");
}

#[test]
fn exec_without_a_command_is_a_usage_error() {
    let env = Env::new();
    let (run, _) = env.start(BRIEF);
    let before = env.world();
    for args in [vec!["exec", run.as_str()], vec!["exec", run.as_str(), "--"]] {
        let out = env.fails(&args, 2);
        assert!(
            out.stderr.contains("required arguments were not provided"),
            "{}",
            out.stderr
        );
        assert!(
            out.stderr
                .contains("Usage: airlock exec <RUN> -- <COMMAND>...")
        );
    }
    // `exec` has a parser of its own for speed; what it does not take goes
    // to the full one, so mistakes and help read as for any command.
    let out = env.fails(&["exec", &run, "--bogus", "--", "true"], 2);
    assert!(
        out.stderr.contains("unexpected argument '--bogus' found"),
        "{}",
        out.stderr
    );
    let help = env.airlock(&["exec", "--help"]);
    assert_eq!(help.code, 0, "{}", help.stderr);
    assert!(
        help.stdout
            .contains("Run a command in a run's worktree and record its trace")
    );
    assert!(
        help.stdout.contains("--timeout <TIMEOUT>"),
        "{}",
        help.stdout
    );
    env.assert_unchanged(&before);
    // Global options go before or after it.
    assert_eq!(env.json(&["exec", &run, "--", "true"], 0)["n"], 1);
    let out = env.airlock(&["exec", &run, "--json", "--", "true"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("\"n\": 2"), "{}", out.stdout);
}

// ---- check: stop conditions -------------------------------------------------

#[test]
fn check_lists_each_path_outside_the_briefs_scope() {
    let env = Env::new();
    let (run, wt) = env.start(BRIEF);
    write(&wt.join("src/app.sh"), "#!/bin/sh\necho hello, please\n");
    write(&wt.join("docs/guide.md"), "# Guide, edited\n");
    write(&wt.join("notes.txt"), "scratch\n");
    std::fs::remove_file(wt.join("ci/pipeline.yml")).unwrap();
    let before = env.world();
    let out = env.airlock(&["check", &run]);
    assert_eq!(out.code, 1);
    assert!(out.stdout.contains("  FAIL scope\n"), "{}", out.stdout);
    let report = env.json(&["check", &run], 1);
    assert_eq!(
        findings(&report, "scope"),
        [
            "ci/pipeline.yml is outside the brief's touch list (deleted)",
            "docs/guide.md is outside the brief's touch list (modified)",
            "notes.txt is outside the brief's touch list (added)",
        ]
    );
    assert_failed_check_kept_everything(&env, &run, &before);
}

#[test]
fn check_fails_on_protected_paths_unless_the_brief_names_them() {
    let env = Env::new();
    // A broad touch entry covers ci/** but does not name it.
    let broad = BRIEF.replace("touch = [\"src/**\", \"tests/**\"]", "touch = [\"**\"]");
    let (run, wt) = env.start(&broad);
    write(&wt.join("ci/pipeline.yml"), "steps: [deploy]\n");
    write(&wt.join(".airlock/workflow.toml"), "# gone\n");
    let before = env.world();
    let report = env.json(&["check", &run], 1);
    assert!(passed(&report, "scope"), "{report}");
    assert_eq!(
        findings(&report, "protected"),
        [
            ".airlock/workflow.toml is protected (.airlock/**); a brief must list it explicitly in `touch`",
            "ci/pipeline.yml is protected (ci/**); a brief must list it explicitly in `touch`",
        ]
    );
    assert_failed_check_kept_everything(&env, &run, &before);

    // Naming the exact glob or the exact path passes, with a note for the reviewer.
    for entry in ["\"ci/**\"", "\"ci/pipeline.yml\""] {
        let explicit = BRIEF.replace("\"tests/**\"]", &format!("\"tests/**\", {entry}]"));
        let (run, wt) = env.start(&explicit);
        write(&wt.join("ci/pipeline.yml"), "steps: [deploy]\n");
        let report = env.json(&["check", &run], 0);
        assert!(passed(&report, "protected"), "{report}");
        assert_eq!(
            notes(&report, "protected"),
            [
                "ci/pipeline.yml is protected (ci/**); the brief lists it explicitly: review it closely"
            ]
        );
        assert_eq!(env.state(&run), "checked");
    }
}

fn aws_key() -> String {
    format!("AKIA{}", random_text("aws key id", UPPER_DIGITS, 16))
}

fn github_token() -> String {
    format!("ghp_{}", random_text("github token", ALNUM, 36))
}

fn private_key() -> (String, String) {
    let header = format!("-----BEGIN RSA {} KEY-----", "PRIVATE");
    let body = random_text("private key body", BASE64, 64);
    (
        format!(
            "{header}\n{body}\n{}\n-----END RSA {} KEY-----\n",
            random_text("more key", BASE64, 64),
            "PRIVATE"
        ),
        body,
    )
}

#[test]
fn check_finds_secrets_without_repeating_them() {
    let env = Env::new();
    let (run, wt) = env.start(BRIEF);
    let (aws, gh) = (aws_key(), github_token());
    let (pem, body) = private_key();
    write(
        &wt.join("src/config.sh"),
        &format!("#!/bin/sh\n# settings\nexport AWS_KEY_ID={aws}\n"),
    );
    write(&wt.join("src/deploy.sh"), &format!("TOKEN={gh}\n"));
    write(&wt.join("src/id_rsa"), &pem);
    let before = env.world();
    let human = env.airlock(&["check", &run]);
    assert_eq!(human.code, 1);
    let json = env.airlock(&["--json", "check", &run]);
    assert_eq!(json.code, 1);
    let report = json.json();
    let found = findings(&report, "secrets");
    assert_eq!(found.len(), 3, "{found:?}");
    assert!(found[0].starts_with("src/config.sh:3:"), "{found:?}");
    assert!(found[0].contains("aws-access-key-id"), "{found:?}");
    assert!(found[1].starts_with("src/deploy.sh:1:"), "{found:?}");
    assert!(found[1].contains("github-token"), "{found:?}");
    assert!(found[2].starts_with("src/id_rsa:1:"), "{found:?}");
    assert!(found[2].contains("private-key"), "{found:?}");
    assert!(found.iter().all(|f| f.contains("fingerprint sha256:")));
    let log = env.airlock(&["--json", "log"]);
    let ledger = std::fs::read(env.state_dir().join("ledger.db")).unwrap();
    let ledger = String::from_utf8_lossy(&ledger);
    for secret in [&aws, &gh, &body] {
        for (what, text) in [
            ("check stdout", &human.stdout),
            ("check stderr", &human.stderr),
            ("check --json stdout", &json.stdout),
            ("check --json stderr", &json.stderr),
            ("log --json", &log.stdout),
        ] {
            assert!(!text.contains(secret.as_str()), "{what} repeats a secret");
        }
        assert!(
            !ledger.contains(secret.as_str()),
            "the ledger file holds a secret"
        );
    }
    assert_failed_check_kept_everything(&env, &run, &before);
}

/// The fingerprint of the one secret finding of a check report.
fn fingerprint(report: &Value) -> String {
    let found = findings(report, "secrets");
    assert_eq!(found.len(), 1, "{found:?}");
    let at = found[0].find("fingerprint ").unwrap() + "fingerprint ".len();
    found[0][at..].trim_end_matches(')').to_string()
}

#[test]
fn a_secrets_allow_entry_in_the_main_checkout_allows_a_finding() {
    let env = Env::new();
    let (run, wt) = env.start(BRIEF);
    write(&wt.join("src/fixture.sh"), &format!("KEY={}\n", aws_key()));
    let report = env.json(&["check", &run], 1);
    let fp = fingerprint(&report);
    assert!(fp.starts_with("sha256:"), "{fp}");
    env.commit_file(
        ".airlock/secrets-allow",
        &format!("{fp}  # test fixture\n"),
        "allow fixture",
    );
    let report = env.json(&["check", &run], 0);
    assert!(passed(&report, "secrets"), "{report}");
    assert_eq!(
        notes(&report, "secrets"),
        [format!(
            "src/fixture.sh:1: aws-access-key-id (fingerprint {fp}) allowed by .airlock/secrets-allow"
        )]
    );
    assert_eq!(env.state(&run), "checked");
}

#[test]
fn a_secrets_allow_entry_written_inside_the_worktree_allows_nothing() {
    let env = Env::new();
    let (run, wt) = env.start(BRIEF);
    write(&wt.join("src/fixture.sh"), &format!("KEY={}\n", aws_key()));
    let fp = fingerprint(&env.json(&["check", &run], 1));
    // The agent tries to allow its own secret, and even lists the file in its brief.
    write(&wt.join(".airlock/secrets-allow"), &format!("{fp}\n"));
    let before = env.world();
    let report = env.json(&["check", &run], 1);
    assert_eq!(fingerprint(&report), fp);
    assert_eq!(
        findings(&report, "protected"),
        [
            ".airlock/secrets-allow is protected (.airlock/**); a brief must list it explicitly in `touch`"
        ]
    );
    assert_eq!(
        findings(&report, "scope"),
        [".airlock/secrets-allow is outside the brief's touch list (added)"]
    );
    assert!(!env.repo.join(".airlock/secrets-allow").exists());
    assert_failed_check_kept_everything(&env, &run, &before);
}

/// A team's `.gitleaks.toml`: a custom rule, an allowlist, and a rule the regex engine cannot take.
const GITLEAKS_TOML: &str = r#"title = "team rules"

[extend]
useDefault = true

[[rules]]
id = "acme-api-key"
description = "ACME internal API key"
regex = '''acme_key\s*=\s*(acme_[a-z0-9]{32})'''
secretGroup = 1
keywords = ["acme_key"]

[[rules]]
id = "needs-lookahead"
regex = '''(?=secret)secret=(\w+)'''

[allowlist]
paths = ['''^src/fixtures/''']
"#;

fn acme_key() -> String {
    format!(
        "acme_{}",
        random_text("acme key", b"abcdefghijklmnopqrstuvwxyz0123456789", 32)
    )
}

#[test]
fn the_main_checkouts_gitleaks_toml_adds_rules_and_allowlists() {
    let env = Env::new();
    env.commit_file(".gitleaks.toml", GITLEAKS_TOML, "team gitleaks rules");
    let (run, wt) = env.start(BRIEF);
    let key = acme_key();
    write(&wt.join("src/client.sh"), &format!("acme_key = {key}\n"));
    // the allowlist's path covers the built-in rules too
    write(
        &wt.join("src/fixtures/token.txt"),
        &format!("{}\n", github_token()),
    );
    let before = env.world();
    let out = env.airlock(&["--json", "check", &run]);
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    assert!(!out.stdout.contains(&key) && !out.stderr.contains(&key));
    let report = out.json();
    let found = findings(&report, "secrets");
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].starts_with(
            "src/client.sh:1:12: acme-api-key (ACME internal API key, fingerprint sha256:"
        ),
        "{found:?}"
    );
    let notes = notes(&report, "secrets");
    assert_eq!(notes[0], "rules read from .gitleaks.toml: acme-api-key");
    assert_eq!(
        notes[1],
        ".gitleaks.toml: rule `needs-lookahead` left out: look-around is not supported by the linear-time regex engine; rewrite `regex` without look-around or backreferences (RE2 syntax, as gitleaks uses)"
    );
    assert!(
        notes.iter().any(|n| n
            .starts_with("src/fixtures/token.txt:1: github-token (fingerprint sha256:")
            && n.ends_with(") allowed by .gitleaks.toml")),
        "{notes:?}"
    );
    assert_failed_check_kept_everything(&env, &run, &before);
}

#[test]
fn a_gitleaks_toml_written_inside_the_worktree_allows_nothing() {
    let env = Env::new();
    let (run, wt) = env.start(BRIEF);
    write(&wt.join("src/fixture.sh"), &format!("KEY={}\n", aws_key()));
    // The agent writes a gitleaks configuration that turns the built-in rules off and allows
    // everything.
    write(
        &wt.join(".gitleaks.toml"),
        "[extend]\nuseDefault = false\n\n[[rules]]\nid = \"nothing\"\nregex = '''^never$'''\n\n[allowlist]\nregexes = ['''.*''']\n",
    );
    let before = env.world();
    let report = env.json(&["check", &run], 1);
    let found = findings(&report, "secrets");
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].contains("aws-access-key-id"), "{found:?}");
    assert_eq!(
        findings(&report, "protected"),
        [
            ".gitleaks.toml is protected (.gitleaks.toml); a brief must list it explicitly in `touch`"
        ]
    );
    assert!(!env.repo.join(".gitleaks.toml").exists());
    assert_failed_check_kept_everything(&env, &run, &before);
}

#[test]
fn a_gitleaks_toml_that_is_not_toml_stops_the_check_with_its_line() {
    let env = Env::new();
    env.commit_file(".gitleaks.toml", "title = \"x\"\n[[rules]\n", "broken");
    let (run, wt) = env.start(BRIEF);
    write(&wt.join("src/a.sh"), "echo hi\n");
    let before = env.world();
    let e = env.json_error(&["check", &run], 2);
    let message = e["message"].as_str().unwrap();
    assert!(
        message.starts_with(".gitleaks.toml: not a gitleaks configuration: "),
        "{message}"
    );
    assert!(
        message.contains("help: fix line 2 of the file"),
        "{message}"
    );
    // nothing promoted or lost: the main checkout and the run's state are as they were
    let after = env.world();
    assert_eq!(after.fingerprint, before.fingerprint);
    assert_eq!(after.runs, before.runs);
}

#[test]
fn check_enforces_the_briefs_and_the_workflows_blast_radius() {
    let env = Env::new();
    let tight = format!("{BRIEF}\n[limits]\nmax_files = 2\nmax_lines = 3\n");
    let (run, wt) = env.start(&tight);
    for i in 0..3 {
        write(&wt.join(format!("src/f{i}.txt")), "a\nb\n");
    }
    let before = env.world();
    let report = env.json(&["check", &run], 1);
    assert_eq!(
        findings(&report, "blast-radius"),
        [
            "3 files changed; the brief allows at most 2",
            "6 lines changed; the brief allows at most 3",
        ]
    );
    assert_eq!(notes(&report, "blast-radius"), ["3 files, 6 lines changed"]);
    assert_failed_check_kept_everything(&env, &run, &before);

    // The workflow's limits (50 files, 1000 lines in the harness) hold without brief limits.
    let (run, wt) = env.start(BRIEF);
    write(&wt.join("src/big.txt"), &"line\n".repeat(1001));
    let report = env.json(&["check", &run], 1);
    assert_eq!(
        findings(&report, "blast-radius"),
        ["1001 lines changed; the workflow allows at most 1000"]
    );
    let (run, wt) = env.start(BRIEF);
    for i in 0..51 {
        write(&wt.join(format!("src/many/{i}.txt")), "x\n");
    }
    let report = env.json(&["check", &run], 1);
    assert_eq!(
        findings(&report, "blast-radius"),
        ["51 files changed; the workflow allows at most 50"]
    );
    env.assert_ledger_ok();
}

#[test]
fn check_fails_symlinks_leaving_the_repository_and_notes_the_rest() {
    let env = Env::new();
    let (run, wt) = env.start(BRIEF);
    std::os::unix::fs::symlink("/etc/passwd", wt.join("src/passwd")).unwrap();
    std::os::unix::fs::symlink("../../outside", wt.join("src/up")).unwrap();
    let before = env.world();
    let report = env.json(&["check", &run], 1);
    assert_eq!(
        findings(&report, "file-kinds"),
        [
            "src/passwd is a symlink to `/etc/passwd`, outside the repository",
            "src/up is a symlink to `../../outside`, outside the repository",
        ]
    );
    assert_failed_check_kept_everything(&env, &run, &before);

    let (run, wt) = env.start(BRIEF);
    std::os::unix::fs::symlink("app.sh", wt.join("src/link")).unwrap();
    std::fs::write(wt.join("src/logo.bin"), [0u8, 159, 146, 150, 0, 1]).unwrap();
    let report = env.json(&["check", &run], 0);
    assert!(passed(&report, "file-kinds"), "{report}");
    assert_eq!(
        notes(&report, "file-kinds"),
        [
            "src/link is a symlink to `app.sh`",
            "src/logo.bin is a binary file; its content is not shown in the diff",
        ]
    );
}

#[test]
fn check_fails_a_nested_git_repository() {
    let env = Env::new();
    let (run, wt) = env.start(BRIEF);
    let nested = wt.join("src/vendored");
    write(&nested.join("lib.sh"), "echo lib\n");
    env.git_in(&nested, &["init", "-q"]);
    env.git_in(&nested, &["add", "-A"]);
    env.git_in(&nested, &["commit", "-q", "-m", "nested"]);
    let before = env.world();
    let out = env.airlock(&["check", &run]);
    assert_eq!(out.code, 1);
    assert!(
        out.stdout.contains(
            "src/vendored is a nested git repository (gitlink); airlock promotes files, not repositories"
        ),
        "{}",
        out.stdout
    );
    assert_failed_check_kept_everything(&env, &run, &before);
}

// ---- submit ---------------------------------------------------------------

#[test]
fn submit_is_refused_until_the_run_is_checked() {
    let env = Env::new();
    let (run, wt) = env.start(BRIEF);
    write(&wt.join("src/app.sh"), "#!/bin/sh\necho hello, please\n");
    let before = env.world();
    let out = env.fails(&["submit", &run], 1);
    assert_eq!(
        out.stderr,
        format!(
            "error: run {run} is staged; `submit` needs it to be checked\n  hint: run `airlock check {run}`\n"
        )
    );
    assert!(!env.state_dir().join("proofs").exists());
    env.assert_unchanged(&before);
}

#[test]
fn submit_is_refused_when_the_worktree_changed_after_check() {
    let env = Env::new();
    let (run, wt) = env.start(BRIEF);
    write(&wt.join("src/app.sh"), "#!/bin/sh\necho hello, please\n");
    env.json(&["check", &run], 0);
    write(&wt.join("src/late.sh"), "echo late\n");
    write(&wt.join("src/app.sh"), "#!/bin/sh\necho changed again\n");
    let base = env.rev(&format!("refs/airlock/runs/{run}"));
    let before = env.world();
    let out = env.fails(&["submit", &run], 1);
    assert_eq!(
        out.stderr,
        format!(
            "error: the worktree of run {run} changed after it was checked\n  - M src/app.sh\n  - A src/late.sh\n  hint: run `airlock check {run}` again, then submit\n"
        )
    );
    let e = env.json_error(&["submit", &run], 1);
    assert_eq!(
        e["reasons"],
        serde_json::json!(["M src/app.sh", "A src/late.sh"])
    );
    assert_eq!(env.state(&run), "checked");
    assert_eq!(env.rev(&format!("refs/airlock/runs/{run}")), base);
    env.assert_unchanged(&before);
}

// ---- approve, reject, redirect -----------------------------------------------

#[test]
fn approve_is_refused_unless_the_run_is_in_review() {
    let env = Env::new();
    let (run, _) = env.start(BRIEF);
    let before = env.world();
    let out = env.fails(&["approve", &run], 1);
    assert_eq!(
        out.stderr,
        format!(
            "error: run {run} is staged; `approve` needs it to be in_review\n  hint: run `airlock check {run}`\n"
        )
    );
    env.assert_unchanged(&before);
    let (approved, _) = env.approved();
    let out = env.fails(&["approve", &approved], 1);
    assert!(
        out.stderr
            .contains("is approved; `approve` needs it to be in_review")
    );
    assert!(
        out.stderr
            .contains(&format!("hint: run `airlock promote {approved}`"))
    );
}

#[test]
fn approve_with_a_digest_that_is_no_longer_current_is_refused() {
    let env = Env::new();
    let (run, _) = env.submitted();
    let before = env.world();
    let out = env.fails(&["approve", &run, "--digest", "0badc0ffee00"], 1);
    assert!(
        out.stderr
            .starts_with(&format!("error: run {run} now has proof ")),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains(
        ", not the 0badc0ffee00 you reviewed\n  - the proof changed after you looked at it\n"
    ));
    assert!(
        out.stderr
            .contains(&format!("hint: review it again with `airlock show {run}`"))
    );
    assert_eq!(env.state(&run), "in_review");
    env.assert_unchanged(&before);
}

#[test]
fn approve_from_inside_a_run_is_refused() {
    let env = Env::new();
    let (run, wt) = env.submitted();
    let before = env.world();

    // A process started by airlock exec carries AIRLOCK_RUN.
    let out = env.airlock_env(&["approve", &run], &[("AIRLOCK_RUN", &run)]);
    assert_eq!(out.code, 1);
    assert_eq!(
        out.stderr,
        "error: `airlock approve` cannot be run from inside a run\n  - AIRLOCK_RUN is set: this process was started by `airlock exec` or a gate\n  hint: a human decides at the boundary: run it from your own shell in the main checkout\n"
    );

    // From the worktree itself, airlock does not even find a repository to manage.
    let out = env.airlock_in(&wt, &["approve", &run], &[]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.starts_with(&format!(
            "error: {} is a run's worktree, not a repository airlock manages",
            wt.display()
        )),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains(&format!("hint: run airlock from {}", env.repo.display()))
    );

    // Pointing -C at the main checkout from inside the worktree is refused too.
    let repo = env.repo.display().to_string();
    let out = env.airlock_in(&wt.join("src"), &["-C", &repo, "approve", &run], &[]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr
            .starts_with("error: `airlock approve` cannot be run from inside a run\n"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("is inside a run's worktree"));

    // Nor can it promote, reject or redirect from there.
    for args in [
        vec!["promote", run.as_str()],
        vec!["reject", run.as_str(), "--reason", "mine"],
        vec!["redirect", run.as_str(), "--reason", "mine"],
    ] {
        let cmd = args[0];
        let out = env.airlock_env(&args, &[("AIRLOCK_RUN", &run)]);
        assert_eq!(out.code, 1, "{cmd}: {}", out.stderr);
        assert!(
            out.stderr
                .contains(&format!("`airlock {cmd}` cannot be run from inside a run"))
        );
    }
    assert_eq!(env.state(&run), "in_review");
    env.assert_unchanged(&before);
}

#[test]
fn approve_is_refused_when_the_worktree_changed_after_submit() {
    let env = Env::new();
    let (run, wt) = env.submitted();
    write(&wt.join("src/app.sh"), "#!/bin/sh\necho something else\n");
    let before = env.world();
    let out = env.fails(&["approve", &run], 1);
    assert_eq!(
        out.stderr,
        format!(
            "error: the worktree of run {run} changed after it was submitted\n  - M src/app.sh\n  - the proof no longer describes the worktree, so it and any approval no longer apply\n  hint: redirect the run (`airlock redirect {run} --reason …`) so it is checked and submitted again, or reject it\n"
        )
    );
    assert_eq!(env.state(&run), "in_review");
    env.assert_unchanged(&before);
}

#[test]
fn reject_and_redirect_need_a_reason() {
    let env = Env::new();
    let (run, _) = env.submitted();
    let before = env.world();
    for cmd in ["reject", "redirect"] {
        for args in [
            vec![cmd, run.as_str()],
            vec![cmd, run.as_str(), "--reason", "  "],
        ] {
            let out = env.fails(&args, 2);
            assert_eq!(
                out.stderr,
                format!(
                    "error: `airlock {cmd}` needs a reason: add `--reason \"…\"` saying what the agent should know\n"
                )
            );
        }
    }
    assert_eq!(env.state(&run), "in_review");
    env.assert_unchanged(&before);
}

#[test]
fn reject_and_redirect_are_refused_in_the_wrong_state() {
    let env = Env::new();
    let (run, _) = env.start(BRIEF);
    let before = env.world();
    let out = env.fails(&["redirect", &run, "--reason", "no"], 1);
    assert_eq!(
        out.stderr,
        format!(
            "error: run {run} is staged; `redirect` needs it to be in_review or approved\n  hint: run `airlock check {run}`\n"
        )
    );
    env.assert_unchanged(&before);
    // A run can be ended before it is submitted (a runaway agent)...
    env.json(
        &["reject", &run, "--reason", "the agent went off course"],
        0,
    );
    assert_eq!(env.state(&run), "rejected");
    // ...but not twice, and a rejected run goes nowhere.
    let out = env.fails(&["reject", &run, "--reason", "again"], 1);
    assert!(
        out.stderr.contains(
            "is rejected; `reject` needs it to be staged or checked or in_review or approved"
        ),
        "{}",
        out.stderr
    );
    let (rejected, _) = env.submitted();
    env.json(&["reject", &rejected, "--reason", "no"], 0);
    let out = env.fails(&["redirect", &rejected, "--reason", "try again"], 1);
    assert!(
        out.stderr
            .contains("is rejected; `redirect` needs it to be in_review or approved")
    );
    assert!(out.stderr.contains("start a new run from a new brief"));
}

// ---- proof verify ----------------------------------------------------------

fn proof_path(env: &Env, run: &str) -> std::path::PathBuf {
    let v = env.json(&["show", run, "--no-diff"], 0);
    v["proof"]["path"].as_str().unwrap().into()
}

#[test]
fn proof_verify_finds_a_flipped_byte() {
    let env = Env::new();
    let (run, _) = env.submitted();
    let path = proof_path(&env, &run);
    let mut bytes = std::fs::read(&path).unwrap();
    let lines: Vec<usize> = bytes
        .iter()
        .enumerate()
        .filter(|(_, b)| **b == b'\n')
        .map(|(i, _)| i)
        .collect();
    // A byte inside the payload of the second envelope.
    let at = bytes[lines[0]..]
        .windows(11)
        .position(|w| w == b"\"payload\":\"")
        .unwrap()
        + lines[0]
        + 40;
    bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
    std::fs::write(&path, &bytes).unwrap();
    let before = env.world();
    let out = env.fails(&["proof", "verify", &run], 1);
    assert!(
        out.stderr
            .starts_with("error: line 2: signature does not verify with key SHA256:"),
        "{}",
        out.stderr
    );
    let by_path = env.fails(&["proof", "verify", path.to_str().unwrap()], 1);
    assert_eq!(by_path.stderr, out.stderr);
    env.assert_unchanged(&before);
}

#[test]
fn proof_verify_finds_a_dropped_line() {
    let env = Env::new();
    let (run, _) = env.submitted();
    let path = proof_path(&env, &run);
    let text = std::fs::read_to_string(&path).unwrap();
    let kept: Vec<&str> = text
        .lines()
        .enumerate()
        .filter(|(i, _)| *i != 1)
        .map(|(_, l)| l)
        .collect();
    std::fs::write(&path, format!("{}\n", kept.join("\n"))).unwrap();
    let out = env.fails(&["proof", "verify", path.to_str().unwrap()], 1);
    assert!(
        out.stderr.starts_with(
            "error: the bundle index lists 5 envelopes but the file has 4 (a line was dropped: envelope 2 of the index"
        ),
        "{}",
        out.stderr
    );
    env.assert_ledger_ok();
}

#[test]
fn proof_verify_with_another_key_fails() {
    let env = Env::new();
    let (run, _) = env.submitted();
    // Another airlock user's key.
    let other = Env::bare();
    other.write("README.md", "x\n");
    assert_eq!(other.airlock(&["init"]).code, 0);
    let key = other.home.join(".config/airlock/signing_key.pub");
    let out = env.fails(
        &["proof", "verify", &run, "--key", key.to_str().unwrap()],
        1,
    );
    assert!(out.stderr.contains("another key"), "{}", out.stderr);
    let e = env.json_error(
        &["proof", "verify", &run, "--key", key.to_str().unwrap()],
        1,
    );
    assert_eq!(e["class"], "refused");
}

#[test]
fn proof_verify_without_the_ssh_signature_is_an_error() {
    let env = Env::new();
    let (run, _) = env.submitted();
    let path = proof_path(&env, &run);
    let sig = format!("{}.sig", path.display());
    std::fs::remove_file(&sig).unwrap();
    let out = env.airlock(&["proof", "verify", &run]);
    assert_ne!(out.code, 0);
    assert!(
        out.stderr
            .starts_with(&format!("error: cannot read {sig}: ")),
        "{}",
        out.stderr
    );
    // Without its signature the proof no longer stands for approval either.
    let out = env.fails(&["approve", &run], out.code);
    assert!(out.stderr.contains(&sig), "{}", out.stderr);
    assert_eq!(env.state(&run), "in_review");
}

// ---- key, log, ledger --------------------------------------------------------

#[test]
fn key_public_without_a_key_says_to_run_init() {
    let env = Env::bare();
    let out = env.airlock(&["key", "public"]);
    assert_ne!(out.code, 0);
    assert_eq!(
        out.stderr,
        format!(
            "error: signing key {} does not exist\n  hint: run `airlock init` to create the signing key\n",
            env.home.join(".config/airlock/signing_key").display()
        )
    );
    assert_eq!(out.stdout, "");
    assert!(
        !env.home.join(".config/airlock").exists(),
        "key public creates no key"
    );
}

#[test]
fn log_of_an_unknown_run_is_invalid_input() {
    let env = Env::new();
    env.start(BRIEF);
    let before = env.world();
    let out = env.fails(&["log", "no-such-run"], 2);
    assert!(
        out.stderr
            .starts_with("error: no run named `no-such-run`\n")
    );
    let e = env.json_error(&["log", "no-such-run"], 2);
    assert_eq!(e["class"], "invalid");
    env.assert_unchanged(&before);
}

#[test]
fn ledger_verify_names_the_first_edited_event() {
    let env = Env::new();
    let (run, _) = env.submitted();
    let db = env.db();
    let seq: i64 = db
        .query_row(
            "SELECT seq FROM events WHERE run = ?1 AND kind = 'check'",
            [&run],
            |r| r.get(0),
        )
        .unwrap();
    // Triggers keep honest writers out; someone with file access drops them.
    let refused = db.execute("UPDATE events SET kind = 'x' WHERE seq = ?1", [seq]);
    assert!(refused.unwrap_err().to_string().contains("append-only"));
    db.execute_batch("DROP TRIGGER events_no_update; DROP TRIGGER events_no_delete;")
        .unwrap();
    db.execute(
        "UPDATE events SET data = replace(data, '\"passed\":true', '\"passed\":false') WHERE seq = ?1",
        [seq],
    )
    .unwrap();
    drop(db);
    let out = env.airlock(&["ledger", "verify"]);
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stdout.starts_with(&format!(
            "ledger does NOT verify: event {seq}: stored hash does not match its contents (edited?)"
        )),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains(&format!("every event from {seq} on is untrusted"))
    );
    let v = env.json(&["ledger", "verify"], 1);
    assert_eq!(v["first_bad"]["seq"], seq);
}

#[test]
fn ledger_verify_names_a_removed_event() {
    let env = Env::new();
    env.submitted();
    let db = env.db();
    db.execute_batch("DROP TRIGGER events_no_delete;").unwrap();
    db.execute("DELETE FROM events WHERE seq = 2", []).unwrap();
    drop(db);
    let v = env.json(&["ledger", "verify"], 1);
    assert_eq!(v["first_bad"]["seq"], 2);
    assert!(
        v["first_bad"]["problem"]
            .as_str()
            .unwrap()
            .contains("event 2 is missing"),
        "{v}"
    );
}

#[test]
fn proof_verify_of_a_run_without_a_proof_says_how_to_make_one() {
    let env = Env::new();
    let (run, _) = env.start(BRIEF);
    let out = env.fails(&["proof", "verify", &run], 2);
    assert_eq!(
        out.stderr,
        format!("error: run {run} has no proof yet: it is made by `airlock submit {run}`\n")
    );
    let out = env.fails(&["proof", "verify", "no-such-run"], 2);
    assert!(
        out.stderr
            .starts_with("error: no run named `no-such-run`\n")
    );
}

#[test]
fn commands_on_an_unknown_run_are_invalid_input() {
    let env = Env::new();
    let before = env.world();
    for cmd in ["show", "check", "submit", "approve", "promote"] {
        let out = env.fails(&[cmd, "no-such-run"], 2);
        assert!(
            out.stderr
                .starts_with("error: no run named `no-such-run`\n"),
            "{cmd}: {}",
            out.stderr
        );
        let e = env.json_error(&[cmd, "no-such-run"], 2);
        assert_eq!(e["class"], "invalid", "{cmd}");
        assert_eq!(
            e["hint"],
            "`airlock list` lists every run; `airlock review` those waiting for review"
        );
    }
    env.assert_unchanged(&before);
}

#[test]
fn approve_with_an_empty_digest_is_invalid_input() {
    let env = Env::new();
    let (run, _) = env.submitted();
    let before = env.world();
    // e.g. `--digest "$DIGEST"` with the variable unset: it must not match every proof.
    let out = env.fails(&["approve", &run, "--digest", ""], 2);
    assert_eq!(
        out.stderr,
        format!(
            "error: `--digest` is empty: give at least 12 hex digits of the proof digest you reviewed (`airlock show {run}` prints it)\n"
        )
    );
    assert_eq!(env.state(&run), "in_review");
    env.assert_unchanged(&before);
}
