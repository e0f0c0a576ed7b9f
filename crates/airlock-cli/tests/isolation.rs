//! The security model, attacked for real: everything here runs as an agent
//! would, through `airlock exec RUN -- sh -c '…'` inside the run's worktree,
//! and then the run goes through check, submit, review and promotion.
//!
//! Each test asserts that the main repository (refs, index, config, hooks,
//! HEAD, checkout files) is exactly as it was after the attack, and that
//! nothing the agent planted (hooks, config, filters, fsmonitor, pagers,
//! aliases) ran in airlock's own processes: every planted program would
//! create a marker file in a directory outside the repository, and the
//! markers must not exist. Where it makes the point stronger, a final
//! "control" runs plain git in the lane afterwards to show the planted
//! things were live and would have fired had airlock used the lane's git.
//!
//! Not covered here, on purpose: a command that names the main repository
//! explicitly (`git --git-dir=../../../../.git …`, `cd ../../../.. && git …`,
//! a `.git` file saying `gitdir: ../../../../.git`, or `env -u AIRLOCK_RUN
//! airlock -C ../../../.. approve RUN`) is stopped only by the file-system
//! sandbox that hides the main checkout from the lane (issue 3), not by the
//! git-level isolation tested here. None of these tests relies on that
//! sandbox, and none pretends the git-level isolation stops those.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::*;

/// Runs `script` with `sh -c` inside the run's worktree, as the agent would.
fn agent(env: &Env, run: &str, script: &str) -> Output {
    env.airlock(&["exec", run, "--", "sh", "-c", script])
}

fn agent_ok(env: &Env, run: &str, script: &str) -> Output {
    let out = agent(env, run, script);
    assert_eq!(
        out.code, 0,
        "agent script failed:\n{script}\nstdout:\n{}\nstderr:\n{}",
        out.stdout, out.stderr
    );
    out
}

/// Runs `script` with the host's shell in the worktree: the lane as a
/// command still running in the run would leave it (airlock disarms the
/// lane's git after every command, so a planted setting can only be live
/// at a later airlock command while another command runs).
fn plant_on_host(env: &Env, wt: &Path, script: &str) {
    let mut cmd = std::process::Command::new("sh");
    env.hermetic(&mut cmd);
    let out = cmd.arg("-c").arg(script).current_dir(wt).output().unwrap();
    assert!(out.status.success(), "{script}: {out:?}");
}

/// A directory outside the repository where planted programs leave markers.
fn markers(env: &Env) -> PathBuf {
    let dir = env.tmp.path().join("markers");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn markers_present(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn assert_no_markers(dir: &Path, when: &str) {
    let found = markers_present(dir);
    assert!(
        found.is_empty(),
        "planted programs ran during {when}: {found:?}"
    );
}

/// Check, submit, approve (each must succeed); returns the submit document.
fn review_through(env: &Env, run: &str) -> serde_json::Value {
    let check = env.json(&["check", run], 0);
    assert_eq!(check["passed"], true, "{check}");
    let submitted = env.json(&["submit", run], 0);
    assert_eq!(submitted["state"], "in_review");
    env.json(&["approve", run], 0);
    submitted
}

fn promoted_tree(env: &Env) -> String {
    env.git(&["rev-parse", "main^{tree}"])
}

#[test]
fn rewriting_the_visible_branch_changes_nothing_in_main_and_promotion_takes_the_snapshot() {
    let env = Env::new();
    let (run, _wt) = env.start(BRIEF);
    let base = env.git(&["rev-parse", "main"]);
    let first = env.git(&["rev-parse", "main~1"]);
    let before = env.main_fingerprint();
    let branch = format!("refs/airlock/runs/{run}");

    // The agent commits in its lane, then throws the commit away again.
    let out = agent_ok(
        &env,
        &run,
        "printf '#!/bin/sh\\necho hello, lane commit\\n' > src/app.sh && \
         git -c user.name=agent -c user.email=agent@example.invalid commit -q -am 'agent commit' && \
         git rev-parse HEAD && git reset -q --hard HEAD~1 && git rev-parse HEAD",
    );
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{}", out.stdout);
    let agent_commit = lines[0].to_string();
    assert_eq!(lines[1], base, "the lane's reset went back to the base");
    assert_eq!(
        env.main_fingerprint(),
        before,
        "the lane commit/reset reached main"
    );
    // The lane's commit lives in the lane's own object store, not in main's.
    let cat = std::process::Command::new("git")
        .args(["cat-file", "-e", &agent_commit])
        .current_dir(&env.repo)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env_remove("GIT_DIR")
        .status()
        .unwrap();
    assert!(
        !cat.success(),
        "the lane's commit was written into main's objects"
    );

    // The agent moves the branch it can see, and makes a `main` of its own.
    agent_ok(
        &env,
        &run,
        &format!(
            "git update-ref {branch} {first} && git update-ref refs/heads/main {first} && \
             test \"$(git rev-parse {branch})\" = {first}"
        ),
    );
    assert_eq!(
        env.main_fingerprint(),
        before,
        "update-ref in the lane reached main"
    );
    assert_eq!(env.git(&["rev-parse", &branch]), base);
    assert_eq!(env.git(&["rev-parse", "main"]), base);

    // What the agent leaves in its worktree is what gets reviewed and merged.
    agent_ok(
        &env,
        &run,
        "printf 'echo extra\\n' > src/extra.sh && printf '#!/bin/sh\\necho hello, worktree\\n' > src/app.sh",
    );
    assert_eq!(env.main_fingerprint(), before);
    let submitted = review_through(&env, &run);
    let tree = submitted["tree"].as_str().unwrap().to_string();
    let head = submitted["head"].as_str().unwrap().to_string();
    assert_eq!(env.git(&["rev-parse", &format!("{head}^")]), base);

    let promoted = env.json(&["promote", &run], 0);
    assert_eq!(promoted["previous"], base.as_str());
    assert_eq!(
        promoted_tree(&env),
        tree,
        "main holds exactly the approved snapshot"
    );
    assert_eq!(env.git(&["rev-parse", "main^1"]), base);
    assert_eq!(env.git(&["rev-parse", "main^2"]), head);
    assert_eq!(
        std::fs::read_to_string(env.repo.join("src/app.sh")).unwrap(),
        "#!/bin/sh\necho hello, worktree\n"
    );
    assert_eq!(
        std::fs::read_to_string(env.repo.join("src/extra.sh")).unwrap(),
        "echo extra\n"
    );
    let history = env.git(&["rev-list", "main"]);
    assert!(!history.contains(&agent_commit));
    assert!(history.contains(&first), "main's history was kept");
    assert_eq!(env.git(&["status", "--porcelain"]), "");
    env.assert_ledger_ok();
}

const HOOKS: &[&str] = &[
    "pre-commit",
    "prepare-commit-msg",
    "commit-msg",
    "post-commit",
    "post-checkout",
    "post-merge",
    "post-index-change",
    "reference-transaction",
    "pre-push",
    "pre-auto-gc",
];

/// A shell snippet that writes an executable hook `dir/name` touching `marker_dir/prefix-name`.
fn plant_hooks(dir: &str, marker_dir: &Path, prefix: &str) -> String {
    let mut s = format!("mkdir -p {dir}");
    for hook in HOOKS {
        s += &format!(
            " && printf '#!/bin/sh\\ntouch {m}/{prefix}-{hook}\\n' > {dir}/{hook} && chmod +x {dir}/{hook}",
            m = marker_dir.display()
        );
    }
    s
}

#[test]
fn hooks_planted_in_the_lane_never_run_during_check_submit_or_promote() {
    let env = Env::new();
    let marks = markers(&env);
    let (run, wt) = env.start(BRIEF);
    let before = env.main_fingerprint();

    agent_ok(
        &env,
        &run,
        &format!(
            "{} && printf '#!/bin/sh\\necho hello, please\\n' > src/app.sh",
            plant_hooks(".git/hooks", &marks, "hook")
        ),
    );
    assert_eq!(env.main_fingerprint(), before);
    // Disarmed after the command; planted again as if one still ran.
    assert!(!wt.join(".git/hooks").exists());
    let plant = || plant_on_host(&env, &wt, &plant_hooks(".git/hooks", &marks, "hook"));
    plant();
    assert!(wt.join(".git/hooks/pre-commit").is_file());

    review_through(&env, &run);
    assert_no_markers(&marks, "check/submit/approve");
    plant();
    env.json(&["show", &run], 0);
    env.json(&["proof", "verify", &run], 0);
    let promoted = env.json(&["promote", &run], 0);
    assert_eq!(promoted["checkout_updated"], true);
    assert_no_markers(&marks, "show/proof verify/promote");
    assert_eq!(
        std::fs::read_to_string(env.repo.join("src/app.sh")).unwrap(),
        "#!/bin/sh\necho hello, please\n"
    );
    // Main's own hooks directory was not touched either.
    let hooks = |f: &BTreeMap<String, String>| {
        f.iter()
            .filter(|(k, _)| k.starts_with(".git/hooks/"))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(hooks(&env.main_fingerprint()), hooks(&before));
    env.assert_ledger_ok();

    // Control: the planted hooks are live for git run in the lane itself.
    plant();
    env.git_in(&wt, &["commit", "-q", "--allow-empty", "-m", "control"]);
    let fired = markers_present(&marks);
    assert!(
        fired.contains(&"hook-pre-commit".to_string()),
        "the planted hooks never worked, so the test proves nothing: {fired:?}"
    );
}

#[test]
fn lane_git_config_and_filters_are_never_used_by_airlock() {
    let env = Env::new();
    let marks = markers(&env);
    let m = marks.display().to_string();
    let brief = BRIEF.replace(
        r#"touch = ["src/**", "tests/**"]"#,
        r#"touch = ["src/**", "tests/**", ".gitattributes"]"#,
    );
    let (run, wt) = env.start(&brief);
    let before = env.main_fingerprint();

    // Everything is configured with `git config` and then no other git runs
    // in the lane, so that any marker can only come from airlock itself.
    let script = format!(
        "set -e
         {hooks}
         printf '#!/bin/sh\\ntouch {m}/fsmonitor\\nexit 1\\n' > .git/fsmonitor.sh && chmod +x .git/fsmonitor.sh
         printf '#!/bin/sh\\ntouch {m}/diff-external\\n' > .git/extdiff.sh && chmod +x .git/extdiff.sh
         git config core.hooksPath .git/evil-hooks
         git config core.fsmonitor \"$PWD/.git/fsmonitor.sh\"
         git config filter.x.clean 'touch {m}/filter-clean; cat'
         git config filter.x.smudge 'touch {m}/filter-smudge; cat'
         git config filter.x.required true
         git config diff.x.textconv 'touch {m}/textconv; cat'
         git config merge.x.driver 'touch {m}/merge-driver; cp %B %A'
         git config diff.external \"$PWD/.git/extdiff.sh\"
         git config core.pager 'touch {m}/pager; cat'
         git config pager.diff 'touch {m}/pager-diff; cat'
         git config alias.status '!touch {m}/alias-status'
         git config alias.diff-tree '!touch {m}/alias-diff-tree'
         git config core.editor 'touch {m}/editor'
         git config commit.gpgSign true
         git config gpg.program 'touch {m}/gpg'
         git config core.sshCommand 'touch {m}/ssh'
         printf '* filter=x diff=x merge=x\\n' > .gitattributes
         printf '#!/bin/sh\\necho hello, please\\n' > src/app.sh",
        hooks = plant_hooks(".git/evil-hooks", &marks, "hookspath"),
    );
    agent_ok(&env, &run, &script);
    assert_eq!(env.main_fingerprint(), before, "lane config reached main");
    // Disarmed after the command; planted again as if one still ran.
    let lane_config = std::fs::read_to_string(wt.join(".git/config")).unwrap();
    assert!(!lane_config.contains("fsmonitor"), "{lane_config}");
    let plant = || plant_on_host(&env, &wt, &script);
    plant();
    let lane_config = std::fs::read_to_string(wt.join(".git/config")).unwrap();
    assert!(lane_config.contains("fsmonitor"), "{lane_config}");

    // The reviewer sees the attributes file as part of the change.
    let check = env.json(&["check", &run], 0);
    assert_eq!(check["passed"], true, "{check}");
    assert_no_markers(&marks, "check");
    let shown = env.json(&["show", &run], 0);
    let paths: Vec<&str> = shown["diff"]["stat"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["path"].as_str().unwrap())
        .collect();
    assert_eq!(paths, [".gitattributes", "src/app.sh"]);
    let patch = shown["diff"]["patch"].as_str().unwrap();
    assert!(patch.contains("+* filter=x diff=x merge=x"), "{patch}");
    let human = env.airlock(&["show", &run]);
    assert_eq!(human.code, 0, "{}", human.stderr);
    assert!(human.stdout.contains(".gitattributes"), "{}", human.stdout);
    assert_no_markers(&marks, "show");

    plant();
    env.json(&["submit", &run], 0);
    env.json(&["show", &run], 0);
    env.airlock(&["show", &run]);
    let verified = env.json(&["proof", "verify", &run], 0);
    assert_eq!(verified["verified"], true);
    env.json(&["approve", &run], 0);
    assert_no_markers(&marks, "submit/show/proof verify/approve");

    // The target moves elsewhere, so promotion merges with merge-tree and
    // re-runs the gates in a scratch checkout of the merged tree.
    env.write("docs/guide.md", "# Guide\n\nmore\n");
    env.git(&["commit", "-q", "-am", "docs"]);
    plant();
    let promoted = env.json(&["promote", &run], 0);
    assert_eq!(promoted["regated"], serde_json::json!(["build", "test"]));
    assert_no_markers(&marks, "promote");
    assert_eq!(
        std::fs::read_to_string(env.repo.join(".gitattributes")).unwrap(),
        "* filter=x diff=x merge=x\n"
    );
    assert_eq!(
        std::fs::read_to_string(env.repo.join("src/app.sh")).unwrap(),
        "#!/bin/sh\necho hello, please\n"
    );
    env.json(&["proof", "verify", &run], 0);
    env.json(&["log", &run], 0);
    assert_no_markers(&marks, "proof verify/log after promotion");
    // Main's config carries none of the lane's settings.
    let main_config = std::fs::read_to_string(env.repo.join(".git/config")).unwrap();
    for word in [
        "fsmonitor",
        "filter",
        "hooksPath",
        "external",
        "alias",
        "pager",
    ] {
        assert!(
            !main_config.contains(word),
            "{word} in main config:\n{main_config}"
        );
    }
    env.assert_ledger_ok();

    // Control: the lane's config is live for git run in the lane itself.
    plant();
    std::fs::write(wt.join("src/app.sh"), "#!/bin/sh\necho control\n").unwrap();
    env.git_in(&wt, &["status", "--porcelain"]);
    env.git_in(&wt, &["add", "-A"]);
    let fired = markers_present(&marks);
    for expected in ["fsmonitor", "filter-clean"] {
        assert!(
            fired.contains(&expected.to_string()),
            "the planted {expected} never worked, so the test proves nothing: {fired:?}"
        );
    }
}

#[test]
fn deleting_the_lane_git_dir_does_not_let_git_find_the_main_repository() {
    let env = Env::new();
    let (run, wt) = env.start(BRIEF);
    let before = env.main_fingerprint();

    let out = agent(
        &env,
        &run,
        "rm -rf .git; \
         git status; echo \"status=$?\"; \
         git -c user.name=a -c user.email=a@example.invalid commit -q --allow-empty -m x; echo \"commit=$?\"; \
         git -c user.name=a -c user.email=a@example.invalid commit -q -am y; echo \"commit-all=$?\"; \
         printf '#!/bin/sh\\necho hello, please\\n' > src/app.sh",
    );
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    for line in ["status=128", "commit=128", "commit-all=128"] {
        assert!(out.stdout.contains(line), "{line} missing:\n{}", out.stdout);
    }
    assert!(
        out.stderr.contains("not a git repository"),
        "{}",
        out.stderr
    );
    assert!(!wt.join(".git").exists());
    assert_eq!(env.main_fingerprint(), before, "git in the lane found main");

    // airlock looks at the worktree with its own index: the run carries on.
    review_through(&env, &run);
    env.json(&["promote", &run], 0);
    assert_eq!(
        std::fs::read_to_string(env.repo.join("src/app.sh")).unwrap(),
        "#!/bin/sh\necho hello, please\n"
    );
    assert_eq!(env.git(&["status", "--porcelain"]), "");
    env.assert_ledger_ok();
    // Note: `git --git-dir=../../../../.git …` from the worktree is not
    // prevented by this version (no file-system sandbox yet: issue 3).
}

#[test]
fn rewritten_lane_alternates_do_not_affect_airlock_snapshots_or_proofs() {
    let env = Env::new();
    let (run, wt) = env.start(BRIEF);
    let before = env.main_fingerprint();

    // Point the lane at an object store of the agent's making, then at nothing.
    agent_ok(
        &env,
        &run,
        "mkdir -p .git/fake-objects/info && \
         printf '%s/.git/fake-objects\\n' \"$PWD\" > .git/objects/info/alternates && \
         printf '#!/bin/sh\\necho hello, please\\n' > src/app.sh",
    );
    agent_ok(
        &env,
        &run,
        "printf '/nonexistent/objects\\n' > .git/objects/info/alternates; \
         git cat-file -t HEAD^{tree} >/dev/null 2>&1 && echo lane-still-reads || echo lane-broken",
    );
    assert_eq!(
        std::fs::read_to_string(wt.join(".git/objects/info/alternates")).unwrap(),
        "/nonexistent/objects\n"
    );
    assert_eq!(env.main_fingerprint(), before);

    let submitted = review_through(&env, &run);
    let verified = env.json(&["proof", "verify", &run], 0);
    assert_eq!(verified["verified"], true, "{verified}");
    let tree = submitted["tree"].as_str().unwrap();
    env.json(&["promote", &run], 0);
    assert_eq!(promoted_tree(&env), tree);
    assert_eq!(
        std::fs::read_to_string(env.repo.join("src/app.sh")).unwrap(),
        "#!/bin/sh\necho hello, please\n"
    );
    env.assert_ledger_ok();
}

#[test]
fn hostile_file_names_are_shown_checked_and_promoted_as_names() {
    let env = Env::new();
    let names = [
        "src/new\nline.txt",
        "src/quote\"d 'single'.txt",
        "src/ünïcødé ☃ name.txt",
        "src/tab\there.txt",
        "src/back\\slash.txt",
        "src/-n",
        "-rf",
        "--output=x",
    ];
    let brief = BRIEF.replace(
        r#"touch = ["src/**", "tests/**"]"#,
        r#"touch = ["src/**", "tests/**", "-rf", "--output=x"]"#,
    );
    let (run, _wt) = env.start(&brief);
    let before = env.main_fingerprint();

    let mut args = vec![
        "exec",
        &run,
        "--",
        "sh",
        "-c",
        r#"for f in "$@"; do printf 'content of %s\n' "$f" > "./$f"; done"#,
        "sh",
    ];
    args.extend_from_slice(&names);
    let out = env.airlock(&args);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(env.main_fingerprint(), before);

    let shown = env.json(&["show", &run], 0);
    let mut paths: Vec<String> = shown["diff"]["stat"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["path"].as_str().unwrap().to_string())
        .collect();
    paths.sort();
    let mut expected: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    expected.sort();
    assert_eq!(paths, expected);
    let human = env.airlock(&["show", &run]);
    assert_eq!(human.code, 0, "{}", human.stderr);
    for plain in ["-rf", "--output=x", "src/ünïcødé ☃ name.txt", "src/-n"] {
        assert!(
            human.stdout.contains(plain),
            "{plain} missing:\n{}",
            human.stdout
        );
    }

    review_through(&env, &run);
    let verified = env.json(&["proof", "verify", &run], 0);
    assert_eq!(verified["verified"], true);
    env.json(&["promote", &run], 0);

    // Exactly the new files appeared in main, with their contents; nothing was
    // deleted, and no `x` was written by an `--output=x` taken as an option.
    let after = env.main_fingerprint();
    let mut grown: BTreeMap<String, String> = after.clone();
    for name in names {
        let text = std::fs::read_to_string(env.repo.join(name))
            .unwrap_or_else(|e| panic!("{name:?} missing from main: {e}"));
        assert_eq!(text, format!("content of {name}\n"));
        assert!(grown.remove(name).is_some(), "{name:?} not in {after:?}");
    }
    grown.retain(|k, _| !k.starts_with(".git/"));
    let mut kept = before.clone();
    kept.retain(|k, _| !k.starts_with(".git/"));
    assert_eq!(grown, kept, "files other than the new ones changed in main");
    assert!(!env.repo.join("x").exists());
    let listed = env.git(&["ls-tree", "-r", "-z", "--name-only", "main"]);
    for name in names {
        assert!(
            listed.split('\0').any(|p| p == name),
            "{name:?} not in main's tree"
        );
    }
    assert_eq!(env.git(&["status", "--porcelain"]), "");
    env.assert_ledger_ok();
}

#[test]
fn hostile_brief_text_never_reaches_the_terminal_or_the_commit_subject_raw() {
    let env = Env::new();
    let brief = r#"title = "Fix\u001b[2J\u001b[31m red\nApproved-by: security\r\u001b]0;owned\u0007 done"
objective = "greet politely\u001b[8m hidden\nsecond line \u001b[0m"
touch = ["src/**", "tests/**"]
checks = ["build", "test"]
rollback = "revert\u001b[1A it"
assumptions = ["\u001b[31massume\u001b[0m"]
"#;
    let (run, wt) = env.start(brief);
    write(&wt.join("src/app.sh"), "#!/bin/sh\necho hello, please\n");
    env.json(&["check", &run], 0);
    let submitted = env.json(&["submit", &run], 0);
    let head = submitted["head"].as_str().unwrap();

    for args in [
        vec!["show", run.as_str()],
        vec!["review"],
        vec!["log", run.as_str()],
        vec!["log"],
    ] {
        let out = env.airlock(&args);
        assert_eq!(out.code, 0, "airlock {args:?}: {}", out.stderr);
        for (stream, text) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
            assert!(
                !text.contains('\x1b') && !text.contains('\x07') && !text.contains('\r'),
                "airlock {args:?} printed a raw control character on {stream}:\n{text:?}"
            );
        }
    }
    let shown = env.airlock(&["show", &run]);
    assert!(shown.stdout.contains("red"), "{}", shown.stdout);

    // The commit message: a one-line printable subject, then a blank line.
    let message = env.git(&["log", "-1", "--format=%B", head]);
    let mut lines = message.lines();
    let subject = lines.next().unwrap();
    assert!(subject.starts_with("Fix"), "{message:?}");
    assert!(!subject.chars().any(char::is_control), "{subject:?}");
    assert_eq!(lines.next(), Some(""), "{message:?}");
    assert!(!message.contains('\x1b'), "{message:?}");
    assert_eq!(
        env.git(&["log", "-1", "--format=%s", head]),
        subject,
        "git sees a different subject"
    );
    env.assert_ledger_ok();
}

const INSIDE: &str = "cannot be run from inside a run";

#[test]
fn decisions_are_refused_with_airlock_run_set() {
    let env = Env::new();
    let (run, _wt) = env.submitted();
    let before = env.main_fingerprint();
    let events = env.json(&["log", &run], 0);

    for args in [
        vec!["approve", run.as_str()],
        vec!["reject", run.as_str(), "--reason", "agent says no"],
        vec![
            "redirect",
            run.as_str(),
            "--reason",
            "agent wants another round",
        ],
        vec!["promote", run.as_str()],
    ] {
        let out = env.airlock_env(&args, &[("AIRLOCK_RUN", &run)]);
        assert_eq!(
            out.code, 1,
            "airlock {args:?}: {}{}",
            out.stdout, out.stderr
        );
        assert!(
            out.stderr
                .contains(&format!("`airlock {}` {INSIDE}", args[0])),
            "{}",
            out.stderr
        );
        assert!(out.stderr.contains("AIRLOCK_RUN is set"), "{}", out.stderr);
        assert_eq!(env.state(&run), "in_review");
    }
    assert_eq!(
        env.json(&["log", &run], 0),
        events,
        "a refusal was recorded as a decision"
    );

    // Once a human approved, the agent still cannot promote.
    env.json(&["approve", &run], 0);
    let out = env.airlock_env(&["promote", &run], &[("AIRLOCK_RUN", "anything")]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr.contains(&format!("`airlock promote` {INSIDE}")),
        "{}",
        out.stderr
    );
    assert_eq!(env.state(&run), "approved");
    assert_eq!(env.main_fingerprint(), before);
    env.assert_ledger_ok();
}

#[test]
fn an_agent_cannot_approve_its_own_run_through_exec() {
    let env = Env::new();
    let (run, wt) = env.start(BRIEF);
    // A second run, in review, is the one the agent tries to approve from inside the first.
    let (other, _) = env.submitted();
    // The agent's copy of airlock, where its sandbox can see it (the build
    // may live below /tmp, which the sandbox replaces with a private one).
    let bin = wt.join(".agent-airlock");
    std::fs::copy(assert_cmd::cargo::cargo_bin("airlock"), &bin).unwrap();
    let bin = bin.to_str().unwrap();
    let repo = env.repo.to_str().unwrap();

    // From the worktree, as the agent's shell would start it.
    let out = env.airlock(&["exec", &run, "--", bin, "approve", &other]);
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stderr
            .contains("is a run's worktree, not a repository airlock manages"),
        "{}",
        out.stderr
    );
    // Pointing airlock at the main checkout: AIRLOCK_RUN still gives it away
    // (or, where the lane's sandbox hides the main checkout, there is no
    // repository to act on at all).
    let refused_inside = |out: &Output, cmd: &str| match out.code {
        1 => assert!(
            out.stderr.contains(&format!("`airlock {cmd}` {INSIDE}"))
                && out.stderr.contains("AIRLOCK_RUN is set"),
            "{}",
            out.stderr
        ),
        2 => assert!(
            out.stderr.contains("not inside a git repository"),
            "{}",
            out.stderr
        ),
        code => panic!(
            "airlock {cmd} from a lane exited {code}:\n{}{}",
            out.stdout, out.stderr
        ),
    };
    for (args, cmd) in [
        (vec!["approve", other.as_str()], "approve"),
        (vec!["promote", other.as_str()], "promote"),
        (vec!["reject", other.as_str(), "--reason", "x"], "reject"),
        (
            vec!["redirect", other.as_str(), "--reason", "x"],
            "redirect",
        ),
    ] {
        let mut full = vec!["exec", run.as_str(), "--", bin, "-C", repo];
        full.extend_from_slice(&args);
        refused_inside(&env.airlock(&full), cmd);
    }
    // And its own run, through a shell.
    let out = agent(&env, &run, &format!("'{bin}' -C '{repo}' approve '{run}'"));
    refused_inside(&out, "approve");
    assert_eq!(env.state(&other), "in_review");
    assert_eq!(env.state(&run), "staged");
    env.assert_ledger_ok();
}

#[test]
fn a_nested_repository_with_its_own_hooks_and_config_runs_nothing_and_is_refused() {
    let env = Env::new();
    let marks = markers(&env);
    let m = marks.display().to_string();
    let (run, _wt) = env.start(BRIEF);
    let before = env.main_fingerprint();

    // An embedded repository whose config and hooks would fire for any git
    // that refreshed or committed in it (the agent's own git runs first,
    // before anything is planted, so markers can only come from airlock).
    let script = format!(
        "set -e
         mkdir -p src/sub && cd src/sub
         git init -q && echo x > f
         git -c user.name=a -c user.email=a@example.invalid add f
         git -c user.name=a -c user.email=a@example.invalid commit -q -m x
         printf '#!/bin/sh\\ntouch {m}/nested-fsmonitor\\nexit 1\\n' > .git/fsm && chmod +x .git/fsm
         git config core.fsmonitor \"$PWD/.git/fsm\"
         git config filter.x.clean 'touch {m}/nested-clean; cat'
         printf '* filter=x\\n' > .gitattributes
         {hooks}
         echo changed > f",
        hooks = plant_hooks(".git/hooks", &marks, "nested"),
    );
    agent_ok(&env, &run, &script);
    assert_eq!(env.main_fingerprint(), before);

    let out = env.airlock(&["check", &run]);
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout
            .contains("src/sub is a nested git repository (gitlink)"),
        "{}",
        out.stdout
    );
    env.json(&["show", &run], 0);
    env.airlock(&["show", &run]);
    assert_no_markers(&marks, "check/show of a nested repository");
    assert_eq!(env.main_fingerprint(), before);
    env.assert_ledger_ok();
}

fn assert_no_raw_controls(args: &[&str], out: &Output) {
    for (stream, text) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
        assert!(
            !text.contains('\x1b') && !text.contains('\r') && !text.contains('\x07'),
            "airlock {args:?} printed a raw control character on {stream}:\n{text:?}"
        );
    }
}

#[test]
fn hostile_paths_in_check_findings_are_printed_without_control_characters() {
    let env = Env::new();
    let (run, wt) = env.start(BRIEF);
    let outside = "out\x1b[2K\x1b[1Aside\r.txt";
    let out = env.airlock(&[
        "exec",
        &run,
        "--",
        "sh",
        "-c",
        r#"printf '#!/bin/sh\necho hello, please\n' > src/app.sh && printf 'x\033[2J\n' > "./$1""#,
        "sh",
        outside,
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(wt.join(outside).is_file());

    // The scope finding names the path, in the report and in the summary line.
    let args = ["check", run.as_str()];
    let out = env.airlock(&args);
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains("is outside the brief's touch list"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("check failed: stop condition `scope`"),
        "{}",
        out.stdout
    );
    assert_no_raw_controls(&args, &out);
    let report = env.json(&args, 1);
    let findings = report["stops"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "scope")
        .unwrap()["findings"]
        .to_string();
    assert!(
        findings.contains("out\\u001b[2K"),
        "JSON keeps the exact name: {findings}"
    );
    for args in [vec!["show", run.as_str()], vec!["log", run.as_str()]] {
        let out = env.airlock(&args);
        assert_eq!(out.code, 0, "{}", out.stderr);
        assert_no_raw_controls(&args, &out);
    }

    env.assert_ledger_ok();
}

/// A refusal's reasons quote paths the agent chose; `render::error` escapes
/// them, so the terminal shows the escape sequence instead of obeying it.
#[test]
fn hostile_paths_in_refusal_reasons_are_printed_without_control_characters() {
    let env = Env::new();
    let (run, wt) = env.submitted();
    // The worktree changes after submit, under a hostile name.
    write(&wt.join("src/late\x1b]0;owned\x07.txt"), "late\n");
    for args in [vec!["approve", run.as_str()], vec!["show", run.as_str()]] {
        let out = env.airlock(&args);
        assert_no_raw_controls(&args, &out);
    }
    let args = ["approve", run.as_str()];
    let out = env.airlock(&args);
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stderr.contains("changed after it was submitted"),
        "{}",
        out.stderr
    );
    // The reason still names the path, with its control characters shown.
    assert!(
        out.stderr.contains(r"  - A src/late\x1b]0;owned\x07.txt"),
        "{}",
        out.stderr
    );
    // JSON carries the exact data; serde escapes it for the terminal.
    let out = env.airlock(&["approve", run.as_str(), "--json"]);
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    assert_no_raw_controls(&["approve", "--json"], &out);
    let doc: serde_json::Value = serde_json::from_str(&out.stdout).expect("one JSON document");
    let reasons = doc["error"]["reasons"].as_array().expect("reasons");
    assert!(
        reasons
            .iter()
            .any(|r| r == "A src/late\x1b]0;owned\x07.txt"),
        "{reasons:?}"
    );
    // Nothing was lost: the run still waits for review with the late file.
    assert_eq!(env.state(&run), "in_review");
    assert_eq!(
        std::fs::read_to_string(wt.join("src/late\x1b]0;owned\x07.txt")).unwrap(),
        "late\n"
    );
    env.assert_ledger_ok();
}
