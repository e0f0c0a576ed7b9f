//! Finding, naming and cleaning up runs: `list`, id prefixes, run refs
//! outside `refs/heads/`, and `gc`.

mod common;

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use common::{BRIEF, Env, write};

fn brief_titled(title: &str) -> String {
    BRIEF.replace("Make greet polite", title)
}

/// A run of `brief` taken through start, an edit in scope, check and submit.
fn submitted_from(env: &Env, brief: &str) -> (String, std::path::PathBuf) {
    let (run, wt) = env.start(brief);
    write(&wt.join("src/app.sh"), "#!/bin/sh\necho hello, please\n");
    env.json(&["check", &run], 0);
    env.json(&["submit", &run], 0);
    (run, wt)
}

/// Every file below `dir` (links as their targets), path -> content.
fn tree(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(dir: &Path, base: &Path, map: &mut BTreeMap<String, Vec<u8>>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let rel = path.strip_prefix(base).unwrap().display().to_string();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            if meta.is_symlink() {
                let target = std::fs::read_link(&path).unwrap();
                map.insert(rel, target.display().to_string().into_bytes());
            } else if meta.is_dir() {
                walk(&path, base, map);
            } else {
                map.insert(rel, std::fs::read(&path).unwrap_or_default());
            }
        }
    }
    let mut map = BTreeMap::new();
    walk(dir, dir, &mut map);
    map
}

fn run_ref(run: &str) -> String {
    format!("refs/airlock/runs/{run}")
}

fn ref_exists(env: &Env, name: &str) -> bool {
    let mut git = std::process::Command::new("git");
    env.hermetic(&mut git);
    git.current_dir(&env.repo)
        .args(["show-ref", "--verify", "--quiet", name])
        .status()
        .unwrap()
        .success()
}

// ---- run refs ---------------------------------------------------------------

#[test]
fn git_push_all_does_not_publish_run_refs() {
    // A rejected run's commit may hold a credential: it must not travel
    // with `git push --all` to a real remote.
    let env = Env::new();
    let (run, _) = submitted_from(&env, BRIEF);
    let head = env.json(&["show", &run, "--no-diff"], 0)["head"]
        .as_str()
        .unwrap()
        .to_string();
    env.json(&["reject", &run, "--reason", "leaks"], 0);

    let remote = env.tmp.path().join("remote.git");
    env.git(&[
        "init",
        "-q",
        "--bare",
        "-b",
        "main",
        &remote.display().to_string(),
    ]);
    env.git(&["push", "-q", "--all", &remote.display().to_string()]);
    let remote_dir = remote.display().to_string();
    let published = env.git(&[
        "--git-dir",
        &remote_dir,
        "for-each-ref",
        "--format=%(refname)",
    ]);
    assert_eq!(published, "refs/heads/main");
    let has_commit = std::process::Command::new("git")
        .args(["--git-dir", &remote_dir, "cat-file", "-e", &head])
        .status()
        .unwrap()
        .success();
    assert!(!has_commit, "the run's commit reached the remote");
    assert_eq!(
        env.git(&["for-each-ref", "--format=%(refname)", "refs/heads/"]),
        "refs/heads/main"
    );
    assert_eq!(env.rev(&run_ref(&run)), head);
}

#[test]
fn run_refs_left_under_refs_heads_by_older_versions_move_on_open() {
    let env = Env::new();
    let (run, _) = env.approved();
    let head = env.rev(&run_ref(&run));
    // What an older airlock left: the ref under refs/heads/airlock/, no
    // marker; and a branch of the user's own that names no run.
    env.git(&["update-ref", &format!("refs/heads/airlock/{run}"), &head]);
    env.git(&["update-ref", "-d", &run_ref(&run)]);
    env.git(&["update-ref", "refs/heads/airlock/mine", &head]);
    std::fs::remove_file(env.state_dir().join("run-refs-moved")).unwrap();

    let out = env.airlock(&["list"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stderr.contains(
            "moved 1 run ref from refs/heads/airlock/ to refs/airlock/runs/, out of what `git push --all` publishes"
        ),
        "{}",
        out.stderr
    );
    assert_eq!(env.rev(&run_ref(&run)), head);
    assert!(!ref_exists(&env, &format!("refs/heads/airlock/{run}")));
    assert!(ref_exists(&env, "refs/heads/airlock/mine"));
    let moved: Vec<_> = env
        .events(None)
        .into_iter()
        .filter(|e| e["kind"] == "run_refs_moved")
        .collect();
    assert_eq!(moved.len(), 1);
    assert_eq!(moved[0]["data"]["runs"][0]["to"], run_ref(&run));
    // Once is enough: the next open says nothing and moves nothing.
    let out = env.airlock(&["list"]);
    assert_eq!(out.stderr, "");
    // And the run goes on from its moved ref.
    env.json(&["promote", &run], 0);
    env.assert_ledger_ok();
}

// ---- ids --------------------------------------------------------------------

#[test]
fn runs_of_one_title_differ_in_the_first_digit_after_it() {
    let env = Env::new();
    let ids: Vec<String> = (0..8).map(|_| env.start(BRIEF).0).collect();
    let firsts: std::collections::BTreeSet<char> = ids
        .iter()
        .map(|id| {
            let suffix = id.strip_prefix("make-greet-polite-").unwrap();
            assert_eq!(suffix.len(), 4, "{id}");
            suffix.chars().next().unwrap()
        })
        .collect();
    assert_eq!(firsts.len(), ids.len(), "{ids:?}");
}

#[test]
fn a_unique_prefix_names_a_run_and_an_ambiguous_one_is_refused() {
    let env = Env::new();
    let (a, _) = env.start(BRIEF);
    let (b, _) = env.start(BRIEF);
    let (other, _) = env.start(&brief_titled("Fix the docs"));

    // The title and the first digit after it are enough.
    let prefix = &a[.."make-greet-polite-".len() + 1];
    let v = env.json(&["show", prefix, "--no-diff"], 0);
    assert_eq!(v["run"], a.as_str());
    assert_eq!(
        env.json(&["show", "fix", "--no-diff"], 0)["run"],
        other.as_str()
    );
    // `log` takes one too.
    let events = env.json(&["log", "fix"], 0)["events"]
        .as_array()
        .unwrap()
        .clone();
    assert!(events.iter().all(|e| e["run"] == other.as_str()));

    // Ambiguous: refused, both named, nothing done.
    let before = env.world();
    let out = env.fails(&["check", "make-greet"], 2);
    let (first, second) = if a < b { (&a, &b) } else { (&b, &a) };
    assert_eq!(
        out.stderr,
        format!(
            "error: `make-greet` is the start of 2 runs' ids: {first}, {second}\n  hint: give more of the run's id, enough that it starts only one\n"
        )
    );
    let e = env.json_error(&["approve", "make-greet"], 2);
    assert_eq!(e["class"], "invalid");
    env.assert_unchanged(&before);
    assert_eq!(env.state(&a), "staged");
    assert_eq!(env.state(&b), "staged");
}

#[test]
fn an_unknown_run_id_gets_the_nearest_as_a_suggestion() {
    let env = Env::new();
    let (run, _) = env.start(&brief_titled("Fix the docs"));
    let before = env.world();
    // A typo: one letter swapped.
    let typo = run.replacen("fix-the", "fix-teh", 1);
    let out = env.fails(&["submit", &typo], 2);
    assert_eq!(
        out.stderr,
        format!(
            "error: no run named `{typo}`; did you mean `{run}`?\n  hint: `airlock list` lists every run; `airlock review` those waiting for review\n"
        )
    );
    // Nothing near: no suggestion.
    let out = env.fails(&["submit", "zzz"], 2);
    assert!(
        out.stderr.starts_with("error: no run named `zzz`\n"),
        "{}",
        out.stderr
    );
    // Something that is not an id is never a prefix, even of every run.
    for given in ["", "f/..", "F"] {
        let out = env.fails(&["reject", given, "--reason", "x"], 2);
        assert!(
            out.stderr
                .starts_with(&format!("error: no run named `{given}`")),
            "{given}: {}",
            out.stderr
        );
    }
    env.assert_unchanged(&before);
}

// ---- list -------------------------------------------------------------------

fn list_filters() -> Vec<(&'static str, &'static str)> {
    vec![(r"-[0-9a-f]{4}\b", "-[ID]"), (r"\b\d{1,2}s +", "Ns   ")]
}

#[test]
fn list_shows_every_run_with_its_state_class_lane_age_and_next_step() {
    let env = Env::new();
    assert_eq!(
        env.airlock(&["list"]).stdout,
        "no runs yet: start one with `airlock start BRIEF.toml`\n"
    );
    let (rejected, _) = submitted_from(&env, &brief_titled("Try a risky thing"));
    env.json(&["reject", &rejected, "--reason", "no"], 0);
    let (promoted, _) = submitted_from(&env, &brief_titled("Add a feature"));
    env.json(&["approve", &promoted], 0);
    env.json(&["promote", &promoted], 0);
    let (review, _) = submitted_from(&env, &brief_titled("Review me"));
    let (staged, _) = env.start(&BRIEF.replace("rollback =", "class = \"docs\"\nrollback ="));

    let out = env.airlock(&["list"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    insta::with_settings!({filters => list_filters()}, {
        insta::assert_snapshot!("list", out.stdout);
    });
    // `status` is the same command.
    assert_eq!(
        env.json(&["status"], 0)["runs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| &r["run"])
            .collect::<Vec<_>>(),
        [&rejected, &promoted, &review, &staged]
    );

    // Filters by state, and by active/finished.
    let ids = |args: &[&str]| -> Vec<String> {
        let mut all = vec!["list"];
        all.extend(args);
        env.json(&all, 0)["runs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["run"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(ids(&["--state", "in_review"]), vec![review.clone()]);
    assert_eq!(
        ids(&["--state", "active"]),
        vec![review.clone(), staged.clone()]
    );
    assert_eq!(
        ids(&["--state", "finished"]),
        vec![rejected.clone(), promoted.clone()]
    );
    assert_eq!(
        ids(&["--state", "staged", "--state", "rejected"]),
        vec![rejected.clone(), staged.clone()]
    );
    let v = env.json(&["list"], 0);
    let first = &v["runs"][0];
    assert_eq!(first["state"], "rejected");
    assert_eq!(first["lane"], "governed");
    assert!(first["age_seconds"].is_u64());
    assert!(first["next"].as_str().unwrap().contains("rejected"));
    assert_eq!(
        env.airlock(&["list", "--state", "approved"]).stdout,
        "no runs in that state\n"
    );
    let out = env.fails(&["list", "--state", "done"], 2);
    assert!(
        out.stderr
            .starts_with("error: `--state done` names no state: use drafted, staged"),
        "{}",
        out.stderr
    );
}

// ---- gc ---------------------------------------------------------------------

#[test]
fn gc_collects_finished_runs_only_and_keeps_the_audit_trail() {
    let env = Env::new();
    // One run in each state.
    let (staged, staged_wt) = env.start(BRIEF);
    let (checked, checked_wt) = env.start(BRIEF);
    write(
        &checked_wt.join("src/app.sh"),
        "#!/bin/sh\necho hello, checked\n",
    );
    env.json(&["check", &checked], 0);
    let (in_review, review_wt) = submitted_from(&env, BRIEF);
    let (approved, approved_wt) = submitted_from(&env, BRIEF);
    env.json(&["approve", &approved], 0);
    let (rejected, rejected_wt) = submitted_from(&env, BRIEF);
    env.json(&["reject", &rejected, "--reason", "no"], 0);
    // Its change is elsewhere: the approved run still promotes after it.
    let (promoted, promoted_wt) = env.start(&brief_titled("Ship it"));
    write(
        &promoted_wt.join("src/ship.sh"),
        "#!/bin/sh\necho shipped\n",
    );
    env.json(&["check", &promoted], 0);
    env.json(&["submit", &promoted], 0);
    env.json(&["approve", &promoted], 0);
    env.json(&["promote", &promoted], 0);

    // The agent left a link out of the worktree and a directory it cannot
    // be removed from: gc removes neither the link's target nor fails.
    let outside = env.tmp.path().join("outside");
    write(&outside.join("precious.txt"), "keep me\n");
    std::os::unix::fs::symlink(&outside, rejected_wt.join("escape")).unwrap();
    write(&rejected_wt.join("locked/inner/file"), "x\n");
    std::fs::set_permissions(
        rejected_wt.join("locked/inner"),
        std::fs::Permissions::from_mode(0o500),
    )
    .unwrap();
    std::fs::set_permissions(
        rejected_wt.join("locked"),
        std::fs::Permissions::from_mode(0o500),
    )
    .unwrap();

    let unfinished = [
        (&staged, &staged_wt),
        (&checked, &checked_wt),
        (&in_review, &review_wt),
        (&approved, &approved_wt),
    ];
    let trees: Vec<_> = unfinished.iter().map(|(_, wt)| tree(wt)).collect();
    let refs: Vec<_> = unfinished
        .iter()
        .map(|(r, _)| env.rev(&run_ref(r)))
        .collect();

    // Young runs are left by default.
    let v = env.json(&["gc"], 0);
    assert_eq!(v["runs"].as_array().unwrap().len(), 0);
    assert_eq!(v["too_recent"], 2);
    assert_eq!(v["unfinished"], 4);

    // A dry run says what would go, and removes nothing.
    let before = env.world();
    let v = env.json(&["gc", "--older-than", "0s", "--dry-run"], 0);
    let would: Vec<_> = v["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["run"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(would, vec![rejected.clone(), promoted.clone()]);
    assert!(v["bytes"].as_u64().unwrap() > 0);
    assert_eq!(v["runs"][0]["deleted_ref"], run_ref(&rejected));
    env.assert_unchanged(&before);
    assert!(rejected_wt.exists() && promoted_wt.exists());
    let out = env.airlock(&["gc", "--older-than", "0s", "--dry-run"]);
    assert!(
        out.stdout
            .starts_with(&format!("would remove {rejected} (rejected, finished ")),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("would collect 2 run(s), "),
        "{}",
        out.stdout
    );

    let v = env.json(&["gc", "--older-than", "0s"], 0);
    assert_eq!(v["runs"].as_array().unwrap().len(), 2);
    for (run, wt) in [(&rejected, &rejected_wt), (&promoted, &promoted_wt)] {
        assert!(!wt.exists(), "{run}'s worktree is still there");
        assert!(
            !ref_exists(&env, &run_ref(run)),
            "{run}'s ref is still there"
        );
        let dir = env.state_dir().join("runs").join(run);
        assert!(dir.join("brief.toml").is_file());
        assert!(!dir.join("index").exists());
        // The record, the proof and the ledger stay.
        assert!(!env.events(Some(run)).is_empty());
        let collected: Vec<_> = env
            .events(Some(run))
            .into_iter()
            .filter(|e| e["kind"] == "collected")
            .collect();
        assert_eq!(collected.len(), 1);
    }
    assert_eq!(
        std::fs::read_to_string(outside.join("precious.txt")).unwrap(),
        "keep me\n"
    );
    let v = env.json(&["proof", "verify", &promoted], 0);
    assert_eq!(v["verified"], true, "{v}");
    assert_eq!(env.state(&rejected), "rejected");

    // Nothing of an unfinished run was touched.
    for (i, (run, wt)) in unfinished.iter().enumerate() {
        assert_eq!(tree(wt), trees[i], "{run}'s worktree changed");
        assert_eq!(env.rev(&run_ref(run)), refs[i], "{run}'s ref moved");
    }
    // They still go on: the approved run promotes, then rolls back after
    // the promoted run was collected.
    env.json(&["promote", &approved], 0);
    env.json(&["rollback", &promoted, "--reason", "undo"], 0);
    // Collecting again finds nothing more of them.
    let v = env.json(&["gc", "--older-than", "0s", "--state", "rejected"], 0);
    assert_eq!(v["runs"].as_array().unwrap().len(), 0);
    env.assert_ledger_ok();
}

#[test]
fn gc_refuses_unfinished_states_and_bad_ages() {
    let env = Env::new();
    let (run, wt) = env.start(BRIEF);
    let before = env.world();
    let tree_before = tree(&wt);
    for state in ["staged", "checked", "in_review", "approved"] {
        let out = env.fails(&["gc", "--older-than", "0s", "--state", state], 2);
        assert_eq!(
            out.stderr,
            format!(
                "error: `gc` collects finished runs only (rejected, rolled_back, promoted), not {state} ones: a {state} run may still need its worktree\n"
            )
        );
    }
    let out = env.fails(&["gc", "--older-than", "soon"], 2);
    assert!(
        out.stderr
            .starts_with("error: `--older-than soon` is not a duration ("),
        "{}",
        out.stderr
    );
    env.assert_unchanged(&before);
    assert_eq!(tree(&wt), tree_before);
    assert!(ref_exists(&env, &run_ref(&run)));
}

// ---- warm sandboxes ---------------------------------------------------------

/// The warm sandboxes (hosts) of `env`: those holding its hosts' directory
/// open (as their descriptor 6).
fn hosts_of(env: &Env) -> Vec<i32> {
    let dir = env.home.join(".config/airlock/sandboxes");
    let Ok(dir) = dir.canonicalize() else {
        return Vec::new();
    };
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        if !cmdline.windows(14).any(|w| w == b"__sandbox-host") {
            continue;
        }
        if std::fs::read_link(entry.path().join("fd/6")).is_ok_and(|l| l == dir) {
            let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
            let ppid = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<i32>().ok())
                .unwrap_or(0);
            pids.push((pid, ppid));
        }
    }
    // A host's own children (the leader it forks ahead) hold it too.
    let all: Vec<i32> = pids.iter().map(|(pid, _)| *pid).collect();
    let mut hosts: Vec<i32> = pids
        .into_iter()
        .filter(|(_, ppid)| !all.contains(ppid))
        .map(|(pid, _)| pid)
        .collect();
    hosts.sort();
    hosts
}

fn sockets_of(env: &Env) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(env.home.join(".config/airlock/sandboxes"))
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".sock"))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// Waits until `done` holds: hosts leave on their own, after the command
/// they may be serving. Panics if that never happens.
fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..600 {
        if done() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("{what} never happened");
}

/// Ends whatever host of `env` is left, by its pid: the test's own.
fn end_hosts(env: &Env) {
    for pid in hosts_of(env) {
        // Signalling a process this test started.
        if let Some(pid) = rustix::process::Pid::from_raw(pid) {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
        }
    }
}

/// The start of the names of run `id`'s hosts' sockets.
fn tag(id: &str) -> String {
    use sha2::Digest;
    format!(
        "{}-",
        hex::encode(&sha2::Sha256::digest(id.as_bytes())[..4])
    )
}

fn sockets_of_run(env: &Env, id: &str) -> usize {
    sockets_of(env)
        .iter()
        .filter(|s| s.starts_with(&tag(id)))
        .count()
}

#[test]
fn a_runs_warm_sandbox_ends_when_it_can_run_no_more_commands() {
    let env = Env::new();
    let (run, wt) = env.start(BRIEF);
    let (other, _) = env.start(&brief_titled("Another one"));
    env.json(&["exec", &run, "--", "true"], 0);
    env.json(&["exec", &other, "--", "true"], 0);
    assert!(sockets_of_run(&env, &run) >= 1, "{:?}", sockets_of(&env));
    assert!(sockets_of_run(&env, &other) >= 1, "{:?}", sockets_of(&env));
    assert!(hosts_of(&env).len() >= 2);

    write(&wt.join("src/app.sh"), "#!/bin/sh\necho hello, please\n");
    env.json(&["check", &run], 0);
    // Checked runs still run commands: their sandboxes stay.
    assert!(sockets_of_run(&env, &run) >= 1, "{:?}", sockets_of(&env));
    env.json(&["submit", &run], 0);
    assert_eq!(sockets_of_run(&env, &run), 0, "{:?}", sockets_of(&env));
    assert!(sockets_of_run(&env, &other) >= 1, "{:?}", sockets_of(&env));
    // Every host whose socket went ends; the others stay.
    eventually("the submitted run's hosts ending", || {
        hosts_of(&env).len() == sockets_of(&env).len()
    });
    // The other run's sandbox still serves.
    let out = env.json(&["exec", &other, "--", "true"], 0);
    assert_eq!(out["exit"]["code"], 0, "{out}");
    end_hosts(&env);
}

#[test]
fn warm_sandboxes_are_bounded_least_recently_used_first_out() {
    let env = Env::new();
    let mut wf = std::fs::read_to_string(env.repo.join(".airlock/workflow.toml")).unwrap();
    wf.push_str("\n[sandbox]\nmax_warm = 2\n");
    env.commit_file(".airlock/workflow.toml", &wf, "two warm sandboxes at most");
    let runs: Vec<String> = ["One", "Two", "Three"]
        .iter()
        .map(|t| env.start(&brief_titled(t)).0)
        .collect();
    let exec = |run: &str| {
        let out = env.json(&["exec", run, "--", "true"], 0);
        assert_eq!(out["exit"]["code"], 0, "{out}");
        assert!(sockets_of(&env).len() <= 2, "{:?}", sockets_of(&env));
        // Distinct modification times, whatever the filesystem's clock.
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    exec(&runs[0]);
    exec(&runs[1]);
    // The first is used again: the second is now the least recently used.
    exec(&runs[0]);
    exec(&runs[2]);
    assert_eq!(sockets_of_run(&env, &runs[1]), 0, "{:?}", sockets_of(&env));
    assert_eq!(sockets_of_run(&env, &runs[0]), 1, "{:?}", sockets_of(&env));
    assert_eq!(sockets_of_run(&env, &runs[2]), 1, "{:?}", sockets_of(&env));
    eventually("the evicted hosts ending", || hosts_of(&env).len() <= 2);
    // An evicted run gets a new one when it needs it.
    exec(&runs[1]);
    eventually("the hosts back within the bound", || {
        hosts_of(&env).len() <= 2
    });
    end_hosts(&env);
}

/// `exec` takes a unique prefix too (looked up only once the whole id is
/// not found), stores the trace under the run's whole id, and refuses an
/// ambiguous prefix with nothing run.
#[test]
fn exec_takes_a_unique_prefix_and_refuses_an_ambiguous_one() {
    let env = Env::new();
    let (a, wt_a) = env.start(BRIEF);
    let (b, wt_b) = env.start(BRIEF);
    let (other, wt_other) = env.start(&brief_titled("Fix the docs"));

    let v = env.json(
        &["exec", "fix", "--", "sh", "-c", "echo made > made.txt"],
        0,
    );
    assert_eq!(v["exit"]["code"], 0, "{v}");
    assert!(wt_other.join("made.txt").is_file());
    let traces = env.json(&["show", &other, "--no-diff"], 0)["traces"].clone();
    assert_eq!(traces.as_array().map(Vec::len), Some(1), "{traces}");

    let before = env.world();
    let out = env.fails(&["exec", "make-greet", "--", "touch", "ran.txt"], 2);
    assert!(
        out.stderr
            .starts_with("error: `make-greet` is the start of 2 runs' ids: "),
        "{}",
        out.stderr
    );
    env.assert_unchanged(&before);
    for (run, wt) in [(&a, &wt_a), (&b, &wt_b)] {
        assert!(!wt.join("ran.txt").exists());
        let traces = env.json(&["show", run, "--no-diff"], 0)["traces"].clone();
        assert_eq!(traces, serde_json::json!([]), "{traces}");
    }
}
