//! `airlock demo`: the narrated walk-through runs for real, hermetically.
//!
//! The demo makes its own throwaway repository under `TMPDIR` with a private
//! HOME inside it (so its signing key is throwaway too); the tests point
//! `TMPDIR` and `HOME` into their own temporary directory. The demo's gates
//! are cargo commands on a tiny crate, so the tests hand it the Rust toolchain
//! this test runs with (`CARGO_HOME`, `RUSTUP_HOME`, `PATH`), read-only.
//!
//! What is asserted comes from the demo's repository after the fact, through
//! airlock and git, not only from what the demo says about itself.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use serde_json::Value;

/// The narration's headings, in order. Each names one step of the lifecycle.
const STEPS: &[&str] = &[
    "== A small Rust library with a bug",
    "== 1. airlock init",
    "== 2. The brief",
    "== 3. Start a run",
    "== 4. The agent works",
    "== 5. The agent fetches the team's repository over HTTP",
    "== 6. Check",
    "== 7. The agent puts README.md back",
    "== 8. The agent proposes side effects",
    "== 9. Submit",
    "== 10. The proof verifies with standard tools too",
    "== 11. A human approves",
    "== 12. The agent sneaks in one more edit after approval",
    "== 13. The reviewer redirects",
    "== 14. Promote",
    "== 15. The ledger",
];

/// `airlock ARGS demo…` with TMPDIR in the test's own directory.
fn demo(env: &Env, args: &[&str]) -> Output {
    let tmpdir = env.tmp.path().join("tmp");
    std::fs::create_dir_all(&tmpdir).unwrap();
    let mut cmd = env.cmd(args);
    cmd.current_dir(env.tmp.path()).env("TMPDIR", &tmpdir);
    let real_home = std::env::var("HOME").unwrap_or_default();
    for (name, default) in [("CARGO_HOME", ".cargo"), ("RUSTUP_HOME", ".rustup")] {
        let value = std::env::var(name).unwrap_or_else(|_| format!("{real_home}/{default}"));
        cmd.env(name, value);
    }
    cmd.output().unwrap().into()
}

/// The `airlock-demo-*` directories left under the test's TMPDIR.
fn demo_dirs(env: &Env) -> Vec<PathBuf> {
    std::fs::read_dir(env.tmp.path().join("tmp"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("airlock-demo-")
        })
        .collect()
}

/// `airlock --json ARGS` in the kept demo repository, as the demo's own user
/// (its HOME holds the signing key the proof was made with).
fn in_kept(env: &Env, repo: &Path, args: &[&str], code: i32) -> Value {
    let mut cmd = env.cmd(&[]);
    cmd.arg("--json")
        .args(args)
        .current_dir(repo)
        .env("HOME", repo.parent().unwrap().join("home"));
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(code),
        "airlock {args:?}\nstdout:\n{stdout}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(&stdout).unwrap()
}

#[test]
fn the_demo_narrates_every_step_and_leaves_a_promoted_verified_run() {
    let env = Env::bare();
    let out = demo(&env, &["demo", "--keep"]);
    assert_eq!(
        out.code, 0,
        "stdout:\n{}\nstderr:\n{}",
        out.stdout, out.stderr
    );
    assert_eq!(out.stderr, "", "the demo printed on stderr");

    // Every step is named, in order, and each shows the commands it ran.
    let mut at = 0;
    for step in STEPS {
        let found = out.stdout[at..]
            .find(step)
            .unwrap_or_else(|| panic!("no `{step}` after byte {at} in:\n{}", out.stdout));
        at += found + step.len();
    }
    for shown in [
        "$ airlock init",
        "$ airlock brief check .airlock/briefs/draft.toml",
        "$ airlock --json start .airlock/briefs/fix-count-words.toml",
        "$ airlock submit ",
        "$ airlock approve ",
        "$ airlock promote ",
        "$ airlock proof verify ",
        "$ airlock ledger verify",
        "Good \"airlock-proof\" signature for airlock",
        "the proof verifies",
        "demo finished: every step above ran for real",
    ] {
        assert!(
            out.stdout.contains(shown),
            "no `{shown}` in:\n{}",
            out.stdout
        );
    }

    // The kept repository is where the demo says it is.
    let repo = PathBuf::from(
        out.stdout
            .lines()
            .find_map(|l| l.strip_prefix("the demo repository is kept at "))
            .expect("the demo says where it kept the repository"),
    );
    assert_eq!(demo_dirs(&env), vec![repo.parent().unwrap().to_path_buf()]);

    // One run, promoted, and its proof and the ledger verify on their own.
    let events = in_kept(&env, &repo, &["log"], 0)["events"]
        .as_array()
        .unwrap()
        .clone();
    let run = events[0]["run"].as_str().unwrap().to_string();
    assert!(
        events.iter().all(|e| e["run"] == run.as_str()),
        "{events:?}"
    );
    // Promotion, then the approved push, bracketed by its two events.
    let kinds: Vec<&str> = events.iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds[kinds.len() - 3..],
        ["promote", "action-started", "action-finished"],
        "{kinds:?}"
    );
    assert_eq!(
        env.git_in(
            &repo,
            &["ls-remote", "origin", "refs/heads/release/wordcount-fix"]
        )
        .split('\t')
        .next()
        .unwrap(),
        env.git_in(&repo, &["rev-parse", "main"]),
        "the approved push put main on the team's release branch"
    );
    let shown = in_kept(&env, &repo, &["show", &run, "--no-diff"], 0);
    assert_eq!(shown["state"], "promoted");
    assert_eq!(shown["round"], 2);
    // The agent's clone went through the proxy to the one listed host, and
    // the other host it tried was refused with the setting that allows it.
    let reached = shown["egress"]["reached"].as_array().unwrap();
    assert!(
        reached.len() == 1
            && reached[0]["host"] == "git.demo.test"
            && reached[0]["bytes_down"].as_u64().unwrap() > 0,
        "{reached:?}"
    );
    let refused = shown["egress"]["refused"].as_array().unwrap();
    assert!(
        refused.len() == 1
            && refused[0]["host"] == "registry.example.org"
            && refused[0]["allow_with"]
                .as_str()
                .unwrap()
                .contains("registry.example.org:80"),
        "{refused:?}"
    );
    let proof = in_kept(&env, &repo, &["proof", "verify", &run], 0);
    assert_eq!(proof["verified"], true, "{proof}");
    let checks = proof["report"]["checks"].as_array().unwrap();
    assert!(
        !checks.is_empty() && checks.iter().all(|c| c["ok"] == true),
        "{proof}"
    );
    let ledger = in_kept(&env, &repo, &["ledger", "verify"], 0);
    assert!(ledger["first_bad"].is_null(), "{ledger}");
    assert_eq!(ledger["events"], events.len());

    // main holds exactly the approved fix, merged.
    let lib = std::fs::read_to_string(repo.join("src/lib.rs")).unwrap();
    assert!(lib.contains("split_whitespace"), "{lib}");
    assert!(!lib.contains("one more thing"), "{lib}");
    let readme = std::fs::read_to_string(repo.join("README.md")).unwrap();
    assert_eq!(readme, "# wordcount\n\nCounts words.\n");
    // The checkout matches main; only the demo's own briefs are untracked.
    assert_eq!(
        env.git_in(&repo, &["status", "--porcelain"]),
        "?? .airlock/briefs/"
    );
    let parents = env.git_in(&repo, &["rev-list", "--parents", "-n", "1", "main"]);
    assert_eq!(
        parents.split(' ').count(),
        3,
        "main is not a merge: {parents}"
    );
    assert_eq!(
        env.git_in(&repo, &["rev-parse", "main^2"]),
        shown["head"].as_str().unwrap()
    );
}

#[test]
fn the_demo_in_json_lists_every_step_with_its_exit_and_cleans_up() {
    let env = Env::bare();
    let out = demo(&env, &["--json", "demo"]);
    assert_eq!(
        out.code, 0,
        "stdout:\n{}\nstderr:\n{}",
        out.stdout, out.stderr
    );
    assert_eq!(out.stderr, "", "the demo printed on stderr");
    // stdout is one JSON document and nothing else.
    let v = out.json();
    assert_eq!(v["ok"], true);
    assert!(v["kept"].is_null(), "{v}");

    let steps = v["steps"].as_array().unwrap();
    let start = steps
        .iter()
        .find(|s| s["command"].as_str().unwrap().contains(" start "))
        .expect("a start step");
    assert_eq!(start["exit"], 0);
    let run = steps[4]["command"]
        .as_str()
        .unwrap()
        .strip_prefix("airlock exec ")
        .and_then(|rest| rest.split(' ').next())
        .expect("the fifth step is the agent's exec")
        .to_string();
    let got: Vec<(String, i64)> = steps
        .iter()
        .map(|s| {
            (
                s["command"].as_str().unwrap().replace(&run, "RUN"),
                s["exit"].as_i64().unwrap(),
            )
        })
        .collect();
    let want: Vec<(String, i64)> = [
        ("airlock init", 0),
        ("airlock brief check .airlock/briefs/draft.toml", 2),
        (
            "airlock brief check .airlock/briefs/fix-count-words.toml",
            0,
        ),
        (
            "airlock --json start .airlock/briefs/fix-count-words.toml",
            0,
        ),
        ("airlock exec RUN -- sh -c '<agent script>'", 0),
        ("airlock exec RUN -- sh -c '<agent script>'", 0),
        (
            "airlock exec RUN -- git ls-remote http://registry.example.org/team.git",
            128,
        ),
        ("airlock check RUN", 1),
        ("airlock exec RUN -- git checkout -- README.md", 0),
        ("airlock check RUN", 0),
        ("airlock propose RUN ../push-main.toml", 1),
        ("airlock propose RUN ../release-branch.toml", 0),
        ("airlock submit RUN", 0),
        ("airlock review", 0),
        ("airlock show RUN --no-diff", 0),
        ("airlock key public", 0),
        ("airlock approve RUN --reason fix is minimal and tested", 0),
        (
            "airlock exec RUN -- sh -c echo '// one more thing' >> src/lib.rs",
            1,
        ),
        ("airlock promote RUN", 1),
        (
            "airlock redirect RUN --reason no edits after submit; undo the extra line",
            0,
        ),
        ("airlock exec RUN -- sh -c '<agent script>'", 0),
        ("airlock check RUN", 0),
        ("airlock submit RUN", 0),
        ("airlock approve RUN --reason same fix as round 1", 0),
        ("airlock promote RUN", 0),
        ("airlock proof verify RUN", 0),
        ("airlock log RUN", 0),
        ("airlock ledger verify", 0),
    ]
    .iter()
    .map(|(c, e)| (c.to_string(), *e))
    .collect();
    assert_eq!(got, want);

    // Without --keep the throwaway repository, key and all, is gone.
    assert_eq!(demo_dirs(&env), Vec::<PathBuf>::new());
}
