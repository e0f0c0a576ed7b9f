//! `airlock promote`: everything is verified again before the target moves,
//! every refusal leaves the target and the user's checkout as they were, and
//! two promotions never interleave.

mod common;

use std::path::PathBuf;

use common::*;
use serde_json::Value;

/// A run that changed `rel` to `text`, taken through approval.
fn approved_with(env: &Env, rel: &str, text: &str) -> (String, PathBuf) {
    let (run, wt) = env.start(BRIEF);
    write(&wt.join(rel), text);
    env.json(&["check", &run], 0);
    env.json(&["submit", &run], 0);
    env.json(&["approve", &run], 0);
    (run, wt)
}

fn run_head(env: &Env, run: &str) -> String {
    env.rev(&format!("refs/airlock/runs/{run}"))
}

fn proof_of(env: &Env, run: &str) -> PathBuf {
    env.json(&["show", run, "--no-diff"], 0)["proof"]["path"]
        .as_str()
        .unwrap()
        .into()
}

/// A refused promotion: exit 1, the target where it was, the run still
/// approved, the main checkout untouched, the ledger verifying.
fn assert_refused(env: &Env, run: &str, before: &World) -> Output {
    let tip = env.rev("refs/heads/main");
    let out = env.fails(&["promote", run], 1);
    assert!(
        out.stderr
            .starts_with(&format!("error: refusing to promote run {run}: ")),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("  hint: "), "{}", out.stderr);
    assert_eq!(env.rev("refs/heads/main"), tip, "the target moved");
    assert_eq!(env.state(run), "approved");
    env.assert_unchanged(before);
    out
}

#[test]
fn promote_merges_an_approved_run_into_the_checked_out_target() {
    let env = Env::new();
    let (run, _) = env.approved();
    let tip = env.rev("main");
    let head = run_head(&env, &run);
    let v = env.json(&["promote", &run], 0);
    assert_eq!(v["run"], run.as_str());
    assert_eq!(v["target"], "main");
    assert_eq!(v["previous"], tip.as_str());
    assert_eq!(v["strategy"], "merged into main (the target had not moved)");
    assert_eq!(v["regated"], serde_json::json!([]));
    assert_eq!(v["checkout_updated"], true);
    let merge = v["merge"].as_str().unwrap();
    assert_eq!(env.rev("main"), merge);
    assert_eq!(
        env.git(&["rev-list", "--parents", "-n1", merge]),
        format!("{merge} {tip} {head}")
    );
    let message = env.git(&["log", "-1", "--format=%B", merge]);
    assert!(
        message.starts_with(&format!("Merge airlock run {run} into main")),
        "{message}"
    );
    assert_eq!(env.read("src/app.sh"), "#!/bin/sh\necho hello, please\n");
    assert_eq!(env.git(&["status", "--porcelain"]), "");
    assert_eq!(env.state(&run), "promoted");
    let last = env.events(Some(&run)).last().unwrap().clone();
    assert_eq!(last["kind"], "promote");
    assert_eq!(
        last["data"]["undo"]["revert"],
        format!("git revert -m 1 {merge}")
    );
    assert_eq!(
        last["data"]["undo"]["command"],
        format!("airlock rollback {run} --reason …")
    );
    assert_eq!(last["data"]["undo"]["compensations"], serde_json::json!([]));
    env.assert_ledger_ok();
    // A promoted run is not promoted twice.
    let out = env.fails(&["promote", &run], 1);
    assert!(
        out.stderr.starts_with(&format!(
            "error: run {run} is promoted; `promote` needs it to be approved"
        )),
        "{}",
        out.stderr
    );
}

#[test]
fn promote_refuses_a_run_that_is_not_approved() {
    let env = Env::new();
    let (run, _) = env.submitted();
    let before = env.world();
    let out = env.fails(&["promote", &run], 1);
    assert_eq!(
        out.stderr,
        format!(
            "error: run {run} is in_review; `promote` needs it to be approved\n  hint: a reviewer runs `airlock approve {run}`, `reject` or `redirect`\n"
        )
    );
    env.assert_unchanged(&before);
    let e = env.json_error(&["promote", &run], 1);
    assert_eq!(e["class"], "refused");
}

#[test]
fn promote_refuses_when_the_worktree_changed_after_submit() {
    let env = Env::new();
    let (run, wt) = env.approved();
    write(&wt.join("src/app.sh"), "#!/bin/sh\nrm -rf \"$HOME\"\n");
    write(&wt.join("src/extra.sh"), "echo extra\n");
    let before = env.world();
    let out = env.fails(&["promote", &run], 1);
    assert_eq!(
        out.stderr,
        format!(
            "error: the worktree of run {run} changed after it was submitted\n  - M src/app.sh\n  - A src/extra.sh\n  - the proof no longer describes the worktree, so it and any approval no longer apply\n  hint: redirect the run (`airlock redirect {run} --reason …`) so it is checked and submitted again, or reject it\n"
        )
    );
    assert_eq!(env.read("src/app.sh"), "#!/bin/sh\necho hello\n");
    assert_eq!(env.state(&run), "approved");
    env.assert_unchanged(&before);
}

#[test]
fn promote_refuses_a_proof_with_a_flipped_byte() {
    let env = Env::new();
    let (run, _) = env.approved();
    let path = proof_of(&env, &run);
    let mut bytes = std::fs::read(&path).unwrap();
    let at = bytes
        .windows(11)
        .position(|w| w == b"\"payload\":\"")
        .unwrap()
        + 30;
    bytes[at] = if bytes[at] == b'x' { b'y' } else { b'x' };
    std::fs::write(&path, &bytes).unwrap();
    let before = env.world();
    let tip = env.rev("main");
    let out = env.fails(&["promote", &run], 1);
    assert!(
        out.stderr
            .starts_with("error: line 1: signature does not verify"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains("hint: the bundle no longer matches what was signed"),
        "{}",
        out.stderr
    );
    assert_eq!(env.rev("main"), tip);
    assert_eq!(env.state(&run), "approved");
    env.assert_unchanged(&before);
}

#[test]
fn promote_refuses_a_proof_with_a_dropped_line() {
    let env = Env::new();
    let (run, _) = env.approved();
    let path = proof_of(&env, &run);
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines.len() >= 3, "{text}");
    let kept: Vec<&str> = lines
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 1)
        .map(|(_, l)| *l)
        .collect();
    std::fs::write(&path, format!("{}\n", kept.join("\n"))).unwrap();
    let before = env.world();
    let tip = env.rev("main");
    let out = env.fails(&["promote", &run], 1);
    assert!(
        out.stderr
            .contains("(a line was dropped: envelope 2 of the index"),
        "{}",
        out.stderr
    );
    assert_eq!(env.rev("main"), tip);
    env.assert_unchanged(&before);
}

#[test]
fn promote_refuses_when_the_approval_is_for_another_proof() {
    let env = Env::new();
    let (run, wt) = env.submitted();
    let round1 = proof_of(&env, &run);
    env.json(&["redirect", &run, "--reason", "say please twice"], 0);
    write(
        &wt.join("src/app.sh"),
        "#!/bin/sh\necho hello, please, please\n",
    );
    env.json(&["check", &run], 0);
    env.json(&["submit", &run], 0);
    let approved = env.json(&["approve", &run], 0)["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let round2 = proof_of(&env, &run);
    // Someone swaps in the older, validly signed bundle of round 1.
    std::fs::copy(&round1, &round2).unwrap();
    std::fs::copy(
        format!("{}.sig", round1.display()),
        format!("{}.sig", round2.display()),
    )
    .unwrap();
    let round1_digest = sha256_hex(&std::fs::read(&round1).unwrap());
    let before = env.world();
    let out = assert_refused(&env, &run, &before);
    assert!(
        out.stderr.starts_with(&format!(
            "error: refusing to promote run {run}: the approval is for another proof\n  - approved proof {}, current proof {}\n",
            &approved[..12],
            &round1_digest[..12]
        )),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains(&format!(
        "hint: review the current proof with `airlock show {run}`"
    )));
    assert_eq!(env.read("src/app.sh"), "#!/bin/sh\necho hello\n");
}

#[test]
fn promote_refuses_when_the_workflow_changed_after_submit() {
    let env = Env::new();
    let (run, _) = env.approved();
    env.write(
        ".airlock/workflow.toml",
        &WORKFLOW.replace("run = \"sh tests/run.sh\"", "run = \"true\""),
    );
    let before = env.world();
    let out = assert_refused(&env, &run, &before);
    assert!(
        out.stderr.contains(
            ": the workflow changed after it was submitted\n  - .airlock/workflow.toml was "
        ),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains(&format!("`airlock redirect {run} --reason …`"))
    );
}

#[test]
fn promote_refuses_when_the_target_moved_on_the_runs_paths() {
    let env = Env::new();
    let (run, _) = env.approved();
    let theirs = env.commit_file(
        "src/app.sh",
        "#!/bin/sh\necho hello there\n",
        "upstream edit",
    );
    let before = env.world();
    let out = assert_refused(&env, &run, &before);
    assert_eq!(
        out.stderr,
        format!(
            "error: refusing to promote run {run}: main moved and touches the run's paths\n  - src/app.sh changed on both sides\n  hint: redirect the run (`airlock redirect {run} --reason \"rebase onto main\"`) so the agent resolves it and the gates run again\n"
        )
    );
    assert_eq!(env.rev("main"), theirs);
    assert_eq!(env.read("src/app.sh"), "#!/bin/sh\necho hello there\n");
}

#[test]
fn promote_merges_onto_a_target_that_moved_elsewhere_and_regates() {
    let env = Env::new();
    let (run, _) = env.approved();
    let theirs = env.commit_file("docs/guide.md", "# Guide\n\nMore.\n", "docs");
    let head = run_head(&env, &run);
    let v = env.json(&["promote", &run], 0);
    assert_eq!(v["previous"], theirs.as_str());
    assert_eq!(
        v["strategy"],
        "merged with main's 1 new commit(s), which touch none of the run's paths; re-checked the stop conditions and re-ran gates on the result: build, test"
    );
    assert_eq!(v["regated"], serde_json::json!(["build", "test"]));
    let merge = v["merge"].as_str().unwrap();
    assert_eq!(env.rev("main"), merge);
    assert_eq!(
        env.git(&["rev-list", "--parents", "-n1", merge]),
        format!("{merge} {theirs} {head}")
    );
    assert_eq!(env.read("src/app.sh"), "#!/bin/sh\necho hello, please\n");
    assert_eq!(env.read("docs/guide.md"), "# Guide\n\nMore.\n");
    assert_eq!(env.git(&["status", "--porcelain"]), "");
    let gates: Vec<Value> = env
        .events(Some(&run))
        .into_iter()
        .filter(|e| e["kind"] == "promote-gate")
        .collect();
    assert_eq!(gates.len(), 2);
    assert_eq!(gates[0]["data"]["gate"], "build");
    assert_eq!(gates[1]["data"]["gate"], "test");
    env.assert_ledger_ok();
}

#[test]
fn promote_refuses_when_a_gate_fails_on_the_merged_result() {
    let env = Env::new();
    let (run, _) = env.approved();
    // Upstream tightens the test in a way the run's change does not satisfy.
    let theirs = env.commit_file(
        "tests/run.sh",
        "#!/bin/sh\nsh src/app.sh | grep -qx hello\n",
        "stricter test",
    );
    let before = env.world();
    let out = env.fails(&["promote", &run], 1);
    assert!(
        out.stderr.starts_with(&format!(
            "error: refusing to promote run {run}: gate `test` fails on the run merged with main's 1 new commit(s)\n  - sh tests/run.sh (exit 1)\n"
        )),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains("hint: redirect the run so the agent works on top of the current main")
    );
    assert_eq!(env.rev("main"), theirs);
    assert_eq!(env.state(&run), "approved");
    assert_eq!(env.main_fingerprint(), before.fingerprint);
    assert_eq!(env.world().runs, before.runs);
    assert_eq!(env.read("src/app.sh"), "#!/bin/sh\necho hello\n");
    assert!(
        !env.state_dir()
            .join("runs")
            .join(&run)
            .join("promote-check")
            .exists(),
        "the scratch checkout is cleaned up"
    );
    env.assert_ledger_ok();
}

#[test]
fn promote_refuses_to_overwrite_uncommitted_changes_to_the_runs_files() {
    let env = Env::new();
    let (run, _) = env.approved();
    let mine = "#!/bin/sh\necho my local experiment\n";
    env.write("src/app.sh", mine);
    let before = env.world();
    let out = assert_refused(&env, &run, &before);
    assert!(
        out.stderr.contains(&format!(
            ": it would overwrite uncommitted changes in {}\n",
            env.repo.display()
        )),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("src/app.sh"), "{}", out.stderr);
    assert!(out.stderr.contains("hint: commit or stash your changes in the main checkout, then promote again; nothing was changed"));
    assert_eq!(env.read("src/app.sh"), mine);
    assert_eq!(env.git(&["status", "--porcelain"]), "M src/app.sh");

    // Once the user puts the change away, the same approval promotes.
    env.git(&["checkout", "--", "src/app.sh"]);
    env.json(&["promote", &run], 0);
    assert_eq!(env.read("src/app.sh"), "#!/bin/sh\necho hello, please\n");
}

#[test]
fn promote_keeps_uncommitted_changes_to_other_files() {
    let env = Env::new();
    let (run, _) = env.approved();
    env.write("docs/guide.md", "# Guide\n\nmy draft, not committed\n");
    env.write("scratch.txt", "untracked notes\n");
    let v = env.json(&["promote", &run], 0);
    assert_eq!(v["checkout_updated"], true);
    assert_eq!(env.rev("main"), v["merge"].as_str().unwrap());
    assert_eq!(env.read("src/app.sh"), "#!/bin/sh\necho hello, please\n");
    assert_eq!(
        env.read("docs/guide.md"),
        "# Guide\n\nmy draft, not committed\n"
    );
    assert_eq!(env.read("scratch.txt"), "untracked notes\n");
    assert_eq!(
        env.git(&["status", "--porcelain"]),
        "M docs/guide.md\n?? scratch.txt"
    );
    env.assert_ledger_ok();
}

#[test]
fn promote_moves_the_target_ref_only_when_another_branch_is_checked_out() {
    let env = Env::new();
    let (run, _) = env.approved();
    env.git(&["checkout", "-q", "-b", "other"]);
    let checkout = env.main_fingerprint();
    let files: Vec<_> = checkout
        .iter()
        .filter(|(k, _)| !k.starts_with(".git/"))
        .collect();
    let v = env.json(&["promote", &run], 0);
    assert_eq!(v["checkout_updated"], false);
    assert_eq!(env.rev("main"), v["merge"].as_str().unwrap());
    assert_eq!(env.git(&["symbolic-ref", "HEAD"]), "refs/heads/other");
    let after = env.main_fingerprint();
    let files_after: Vec<_> = after
        .iter()
        .filter(|(k, _)| !k.starts_with(".git/"))
        .collect();
    assert_eq!(files, files_after, "the checkout was touched");
    assert_eq!(checkout.get(".git/index"), after.get(".git/index"));
    assert_eq!(checkout.get(".git/HEAD"), after.get(".git/HEAD"));
    assert_eq!(env.read("src/app.sh"), "#!/bin/sh\necho hello\n");
    assert_eq!(
        env.git(&["show", "main:src/app.sh"]),
        "#!/bin/sh\necho hello, please"
    );
    env.assert_ledger_ok();
}

#[test]
fn two_promotions_at_once_never_interleave() {
    let env = Env::new();
    let (a, _) = approved_with(&env, "src/a.txt", "from a\n");
    let (b, _) = approved_with(&env, "src/b.txt", "from b\n");
    let tip = env.rev("main");
    let (head_a, head_b) = (run_head(&env, &a), run_head(&env, &b));
    let children: Vec<_> = [&a, &b]
        .iter()
        .map(|run| {
            env.cmd(&["--json", "promote", run])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let outputs: Vec<_> = children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect();
    for (run, out) in [&a, &b].iter().zip(&outputs) {
        assert!(
            out.status.success(),
            "promote {run}: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let reports: Vec<Value> = outputs
        .iter()
        .map(|o| serde_json::from_slice(&o.stdout).unwrap())
        .collect();
    // One went first onto the old tip; the other merged onto the first's merge.
    let (first, second) = if reports[0]["previous"] == tip.as_str() {
        (&reports[0], &reports[1])
    } else {
        (&reports[1], &reports[0])
    };
    assert_eq!(first["previous"], tip.as_str());
    assert_eq!(second["previous"], first["merge"]);
    assert_eq!(second["regated"], serde_json::json!(["build", "test"]));
    let (m1, m2) = (
        first["merge"].as_str().unwrap(),
        second["merge"].as_str().unwrap(),
    );
    assert_eq!(env.rev("main"), m2);
    let head_of = |r: &Value| {
        if r["run"] == a.as_str() {
            &head_a
        } else {
            &head_b
        }
    };
    assert_eq!(
        env.git(&["rev-list", "--parents", "-n1", m1]),
        format!("{m1} {tip} {}", head_of(first))
    );
    assert_eq!(
        env.git(&["rev-list", "--parents", "-n1", m2]),
        format!("{m2} {m1} {}", head_of(second))
    );
    assert_eq!(env.read("src/a.txt"), "from a\n");
    assert_eq!(env.read("src/b.txt"), "from b\n");
    assert_eq!(env.git(&["status", "--porcelain"]), "");
    assert_eq!(env.state(&a), "promoted");
    assert_eq!(env.state(&b), "promoted");
    env.assert_ledger_ok();
}

#[test]
fn promote_refuses_to_overwrite_an_untracked_file_the_run_adds() {
    let env = Env::new();
    let (run, _) = approved_with(&env, "src/new.sh", "echo from the run\n");
    let mine = "echo my own untracked file\n";
    env.write("src/new.sh", mine);
    let before = env.world();
    let out = assert_refused(&env, &run, &before);
    assert!(
        out.stderr.contains("would overwrite uncommitted changes"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("src/new.sh"), "{}", out.stderr);
    assert_eq!(env.read("src/new.sh"), mine);
}

#[test]
fn promote_refuses_when_the_run_branch_was_moved() {
    let env = Env::new();
    let (run, _) = env.approved();
    let head = run_head(&env, &run);
    let base = env.rev("main");
    env.git(&["update-ref", &format!("refs/airlock/runs/{run}"), &base]);
    let before = env.world();
    let out = assert_refused(&env, &run, &before);
    assert!(
        out.stderr.contains(&format!(
            ": its ref refs/airlock/runs/{run} was moved\n  - the proof is for {head}\n"
        )),
        "{}",
        out.stderr
    );
}

#[test]
fn promote_refuses_when_the_target_was_rewritten() {
    let env = Env::new();
    let (run, _) = env.approved();
    env.write("docs/guide.md", "# Guide (amended)\n");
    env.git(&["commit", "-q", "-a", "--amend", "-m", "rewritten history"]);
    let rewritten = env.rev("main");
    let before = env.world();
    let out = assert_refused(&env, &run, &before);
    assert!(
        out.stderr
            .contains(": main was rewritten since the run started\n"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains("hint: start a new run from the current target")
    );
    assert_eq!(env.rev("main"), rewritten);
}

/// The user renames a directory on the target after the run added a file in
/// it. Whether or not the repository asks git to follow directory renames
/// (`merge.directoryRenames`), promotion merges without rename detection:
/// the run's file lands where the run wrote it and its brief allowed, never
/// in the renamed directory, which the brief does not `touch`.
#[test]
fn promote_onto_a_renamed_directory_keeps_the_runs_file_inside_touch() {
    for directory_renames in [Some("true"), None] {
        let env = Env::new();
        let (run, wt) = env.start(
            "title = \"Add a note\"\nobjective = \"a note\"\ntouch = [\"docs/**\"]\nchecks = [\"build\"]\nrollback = \"revert\"\n",
        );
        write(&wt.join("docs/note.md"), "# Note\n");
        env.json(&["check", &run], 0);
        env.json(&["submit", &run], 0);
        env.json(&["approve", &run], 0);
        // The user renames docs/ to manual/ on the target.
        env.git(&["mv", "docs", "manual"]);
        env.git(&["commit", "-q", "-m", "docs become the manual"]);
        let theirs = env.rev("main");
        if let Some(value) = directory_renames {
            env.git(&["config", "merge.directoryRenames", value]);
        }
        let v = env.json(&["promote", &run], 0);
        let merge = v["merge"].as_str().unwrap();
        assert_eq!(env.rev("main"), merge);
        assert_eq!(v["previous"], theirs.as_str());
        let files = env.git(&["ls-tree", "-r", "--name-only", merge]);
        assert!(
            files.lines().any(|f| f == "docs/note.md"),
            "{directory_renames:?}: {files}"
        );
        assert!(
            !files.lines().any(|f| f.starts_with("manual/note")),
            "{directory_renames:?}: the run's file was moved outside `touch`: {files}"
        );
        assert_eq!(
            env.git(&["diff", "--name-status", &theirs, merge]),
            "A\tdocs/note.md"
        );
        env.assert_ledger_ok();
    }
}

/// A merge that conflicts (the run adds a directory where the target now
/// has a file) is a refusal saying what conflicted, with nothing changed.
#[test]
fn promote_refuses_a_merge_that_conflicts_naming_what_conflicted() {
    let env = Env::new();
    let (run, _) = approved_with(&env, "src/lib/util.sh", "#!/bin/sh\n");
    let theirs = env.commit_file("src/lib", "a file now\n", "src/lib is a file");
    let before = env.world();
    let out = assert_refused(&env, &run, &before);
    assert!(
        out.stderr.starts_with(&format!(
            "error: refusing to promote run {run}: it does not merge cleanly onto main, which moved since the run started\n"
        )),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("  - CONFLICT (file/directory): ") && out.stderr.contains("src/lib"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains(&format!(
            "hint: redirect the run (`airlock redirect {run} --reason \"rebase onto main\"`)"
        )),
        "{}",
        out.stderr
    );
    assert_eq!(env.rev("main"), theirs);
    let json = env.json_error(&["promote", &run], 1);
    assert_eq!(json["class"], "refused", "{json}");
    env.assert_ledger_ok();
}

/// The stop conditions run again on what the merge brings to the target:
/// a link the run added inside the repository leads out of it once merged
/// with the target, where the user replaced the directory it points into
/// with a link to elsewhere. Each side passed its checks alone.
#[test]
fn promote_rechecks_the_stop_conditions_on_the_merged_tree() {
    let env = Env::new();
    let (run, wt) = env.start(BRIEF);
    std::os::unix::fs::symlink("../docs/guide.md", wt.join("src/manual.md")).unwrap();
    let checked = env.json(&["check", &run], 0);
    assert!(
        checked
            .to_string()
            .contains("src/manual.md is a symlink to `../docs/guide.md`"),
        "{checked}"
    );
    env.json(&["submit", &run], 0);
    env.json(&["approve", &run], 0);
    env.git(&["rm", "-q", "-r", "docs"]);
    std::os::unix::fs::symlink("/usr/share/doc", env.repo.join("docs")).unwrap();
    env.git(&["add", "-A"]);
    env.git(&["commit", "-q", "-m", "docs are the system's"]);
    let before = env.world();
    let out = assert_refused(&env, &run, &before);
    assert_eq!(
        out.stderr,
        format!(
            "error: refusing to promote run {run}: merged with main's 1 new commit(s), it fails stop condition(s) `file-kinds`\n  - file-kinds: src/manual.md is a symlink to `../docs/guide.md`, outside the repository\n  hint: redirect the run (`airlock redirect {run} --reason \"rebase onto main\"`) so it is checked on top of the current main; nothing was changed\n"
        )
    );
    assert!(
        !env.events(Some(&run))
            .iter()
            .any(|e| e["kind"] == "promote-gate"),
        "no gate ran on a merged tree that fails its stop conditions"
    );
    env.assert_ledger_ok();
}

// ---- Red team ----------------------------------------------------------------

/// The target moved by adding a nested repository (a gitlink) where the run
/// adds a file (`src/vendor` against `src/vendor/x.sh`), and, separately, a
/// `.gitattributes` merge driver (`merge=union`) of the run's own beside a
/// path the target also changed: neither merges. The paths differ, so only
/// the merge itself can see the first; the second is refused before any
/// content merge runs, whatever attributes say.
#[test]
fn red_team_a_gitlink_or_a_merge_driver_does_not_carry_a_run_onto_a_moved_target() {
    // A gitlink on the target where the run writes a file.
    let env = Env::new();
    let (run, _) = approved_with(&env, "src/vendor/x.sh", "echo vendored\n");
    env.git(&[
        "update-index",
        "--add",
        "--cacheinfo",
        &format!("160000,{},src/vendor", env.rev("HEAD")),
    ]);
    env.git(&["commit", "-q", "-m", "vendor as a submodule"]);
    let before = env.world();
    let out = assert_refused(&env, &run, &before);
    assert!(
        out.stderr.contains("does not merge cleanly"),
        "{}",
        out.stderr
    );

    // A union merge driver of the run's, and a path changed on both sides.
    let env = Env::new();
    let (run, wt) = env.start(BRIEF);
    write(&wt.join("src/.gitattributes"), "* merge=union\n");
    write(
        &wt.join("src/app.sh"),
        "#!/bin/sh\necho hello\necho from the run\n",
    );
    env.json(&["check", &run], 0);
    env.json(&["submit", &run], 0);
    env.json(&["approve", &run], 0);
    env.commit_file(
        "src/app.sh",
        "#!/bin/sh\necho hello\necho from the target\n",
        "target edits app.sh",
    );
    let before = env.world();
    let out = assert_refused(&env, &run, &before);
    assert!(
        out.stderr.contains("src/app.sh changed on both sides"),
        "{}",
        out.stderr
    );
}
