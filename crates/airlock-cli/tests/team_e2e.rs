//! Team mode end to end (issue 20): every part real and together. One
//! PostgreSQL database (the PG store's private test cluster), one bare git
//! remote, one shared log directory, and three machines, each a clone with
//! its own HOME, AIRLOCK_HOME, GIT_CONFIG_GLOBAL, AIRLOCK_PRINCIPAL and
//! airlock key. The target branch holds the rules: two approvals of three
//! reviewers for `src/**`, the three machines' keys as runners.
//!
//! ana (machine A) writes the run; bob (B), who never wrote to the database
//! before, reviews, reads A's logs and approves; carol (C) approves; bob
//! promotes onto the remote. Then the author approving, and a promotion
//! with one approval of two, are refused with nothing changed.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::team::Machine;
use common::{BRIEF, Env, Output, write};
use serde_json::Value;

const ANA: &str = "ana@example.com";
const BOB: &str = "bob@example.com";
const CAROL: &str = "carol@example.com";

/// An ed25519 reviewer key made by ssh-keygen: (private key file, public line).
fn ssh_key(dir: &Path, name: &str) -> (PathBuf, String) {
    let key = dir.join(name);
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
        .arg(&key)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let public = std::fs::read_to_string(key.with_extension("pub")).unwrap();
    (key, public.trim().to_string())
}

fn git_at(git_dir: &Path, args: &[&str]) -> Output {
    Command::new("git")
        .arg("--git-dir")
        .arg(git_dir)
        .args(args)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .output()
        .unwrap()
        .into()
}

fn remote_ref(remote: &Path, name: &str) -> Option<String> {
    let out = git_at(remote, &["rev-parse", "--verify", "--quiet", name]);
    (out.code == 0).then(|| out.stdout.trim().to_string())
}

fn ssh_verify(signers: &Path, principal: &str, namespace: &str, sig: &Path, message: &Path) {
    let out = Command::new("ssh-keygen")
        .args(["-Y", "verify", "-f"])
        .arg(signers)
        .args(["-I", principal, "-n", namespace, "-s"])
        .arg(sig)
        .stdin(std::fs::File::open(message).unwrap())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ssh-keygen -Y verify {}: {}",
        sig.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn three_machines_author_review_approve_and_promote_through_one_database_and_one_remote() {
    let db = airlock_store_pg::testing::shared().database();
    let url = db.url();

    // The team's repository, its bare remote, a shared log directory.
    let a = Machine::on(Env::new(), ANA, &url);
    let remote = a.env.tmp.path().join("remote.git");
    let logs = a.env.tmp.path().join("shared-logs");
    std::fs::create_dir_all(&logs).unwrap();
    a.env.git(&[
        "clone",
        "-q",
        "--bare",
        &a.env.repo.display().to_string(),
        &remote.display().to_string(),
    ]);
    a.env
        .git(&["remote", "add", "origin", &remote.display().to_string()]);
    let b = Machine::clone_of(&remote, BOB, &url);
    let c = Machine::clone_of(&remote, CAROL, &url);

    // The rules on the target: three reviewers, two of them for src/**,
    // the three machines' keys as runners; the remote and the logs.
    let keys = a.env.tmp.path().join("reviewer-keys");
    std::fs::create_dir_all(&keys).unwrap();
    let (ana_key, ana_pub) = ssh_key(&keys, "ana");
    let (bob_key, bob_pub) = ssh_key(&keys, "bob");
    let (carol_key, carol_pub) = ssh_key(&keys, "carol");
    a.env.write(
        ".airlock/reviewers",
        &format!("{ANA} {ana_pub}\n{BOB} {bob_pub}\n{CAROL} {carol_pub}\n"),
    );
    a.env.write(
        ".airlock/owners",
        &format!("src/** {ANA} {BOB} {CAROL} n=2\n"),
    );
    let runners = format!(
        "{ANA} {}\n{BOB} {}\n{CAROL} {}\n",
        a.key_line(),
        b.key_line(),
        c.key_line()
    );
    a.env.write(".airlock/runners", &runners);
    let workflow = a.env.read(".airlock/workflow.toml");
    a.env.write(
        ".airlock/workflow.toml",
        &format!(
            "{workflow}\n[team]\nremote = \"origin\"\n\n[store]\nlogs = \"{}\"\n",
            logs.display()
        ),
    );
    a.env.git(&["add", "-A"]);
    a.env
        .git(&["commit", "-q", "-m", "team mode: rules, remote, logs"]);
    a.env.git(&["push", "-q", "origin", "main"]);
    for m in [&b, &c] {
        m.env.git(&["pull", "-q", "origin", "main"]);
    }
    let start_tip = remote_ref(&remote, "refs/heads/main").unwrap();

    // A, the author: start, exec, check, submit.
    let brief = a.env.write_brief("brief", BRIEF);
    let started = a.json(&["start", &brief], 0);
    let run = started["run"].as_str().unwrap().to_string();
    let wt = PathBuf::from(started["worktree"].as_str().unwrap());
    write(&wt.join("src/app.sh"), "#!/bin/sh\necho hello, please\n");
    let exec = a.airlock(&["exec", &run, "--", "sh", "-c", "echo built by ana"]);
    assert_eq!(exec.code, 0, "{}", exec.stderr);
    a.json(&["check", &run], 0);
    let submitted = a.json(&["submit", &run], 0);
    assert!(
        remote_ref(&remote, &format!("refs/airlock/runs/{run}/r1")).is_some(),
        "submit pushed the round: {submitted}"
    );

    // B, reviewer 1, whose first command against the database is this.
    let queue = b.json(&["review"], 0);
    assert!(queue.to_string().contains(&run), "{queue}");
    let shown = b.airlock(&["show", &run]);
    assert_eq!(shown.code, 0, "{}", shown.stderr);
    assert!(shown.stdout.contains("missing"), "{}", shown.stdout);
    // A's command output, read on B from the shared store: the copy there
    // by its sha256, and A's own file (on A's disk; the test's machines
    // share one) moved away while B reads.
    let traced = b.json(&["logs", &run, "1"], 0);
    let stdout = &traced["streams"][0];
    let sha = stdout["sha256"].as_str().unwrap();
    let blob = logs.join("sha256").join(&sha[..2]).join(sha);
    assert_eq!(std::fs::read_to_string(&blob).unwrap(), "built by ana\n");
    let local = PathBuf::from(stdout["path"].as_str().unwrap());
    assert!(local.starts_with(a.env.tmp.path()), "{traced}");
    let away = local.with_extension("away");
    std::fs::rename(&local, &away).unwrap();
    let log = b.airlock(&["logs", &run, "1"]);
    std::fs::rename(&away, &local).unwrap();
    assert_eq!(log.code, 0, "{}", log.stderr);
    assert!(log.stdout.contains("built by ana"), "{}", log.stdout);
    let first = b.json(&["approve", &run, "--key", bob_key.to_str().unwrap()], 0);
    assert_eq!(b.state(&run), "in_review", "one of two: {first}");
    let shown = b.airlock(&["show", &run]);
    assert!(shown.stdout.contains("1 of 2"), "{}", shown.stdout);

    // C, reviewer 2: the second approval makes the run approved.
    c.json(&["approve", &run, "--key", carol_key.to_str().unwrap()], 0);
    assert_eq!(c.state(&run), "approved");

    // B promotes: fetch, verify, approvals, rules, seal, lease, atomic push.
    let promoted = b.json(&["promote", &run], 0);
    let merge = promoted["merge"].as_str().unwrap().to_string();
    assert_eq!(promoted["previous"], start_tip.as_str(), "{promoted}");
    assert_eq!(
        remote_ref(&remote, "refs/heads/main").as_deref(),
        Some(merge.as_str())
    );
    let parents = git_at(&remote, &["rev-list", "--parents", "-n1", &merge]).stdout;
    assert!(parents.contains(&start_tip), "{parents}");
    assert_eq!(
        git_at(&remote, &["show", &format!("{merge}:src/app.sh")])
            .stdout
            .trim(),
        "#!/bin/sh\necho hello, please"
    );
    let record = remote_ref(&remote, &format!("refs/airlock/promoted/{run}"))
        .expect("the promotion record is on the remote");
    let body: Value = serde_json::from_str(
        &git_at(&remote, &["show", &format!("{record}:promotion.json")]).stdout,
    )
    .unwrap();
    assert_eq!(body["merge"], merge.as_str());
    assert_eq!(body["by"]["principal"], BOB);

    // The sealed log's checkpoint, verified by ssh-keygen against runners.
    let checkpoint = remote_ref(&remote, "refs/airlock/log").expect("a checkpoint was pushed");
    let dir = a.env.tmp.path().join("verify");
    std::fs::create_dir_all(&dir).unwrap();
    for (name, spec) in [
        ("checkpoint", format!("{checkpoint}:checkpoint")),
        ("checkpoint.sig", format!("{checkpoint}:checkpoint.sig")),
        ("runners", "main:.airlock/runners".to_string()),
    ] {
        let out = Command::new("git")
            .arg("--git-dir")
            .arg(&remote)
            .args(["show", &spec])
            .output()
            .unwrap();
        assert!(out.status.success(), "{spec}");
        std::fs::write(dir.join(name), out.stdout).unwrap();
    }
    let signer = git_at(&remote, &["show", &format!("{checkpoint}:signer")]).stdout;
    ssh_verify(
        &dir.join("runners"),
        signer.trim(),
        "airlock-checkpoint",
        &dir.join("checkpoint.sig"),
        &dir.join("checkpoint"),
    );

    // Every machine finds the database consistent with the checkpoints.
    for m in [&a, &b, &c] {
        let v = m.json(&["ledger", "verify", "--remote"], 0);
        assert_eq!(v["problems"], serde_json::json!([]), "{}: {v}", m.principal);
    }

    // Each event names its principal and machine, and who did what.
    let fingerprint = |line: &str| {
        let file = dir.join("key.pub");
        std::fs::write(&file, format!("{line}\n")).unwrap();
        let out = Command::new("ssh-keygen")
            .arg("-lf")
            .arg(&file)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.split_whitespace().nth(1).unwrap().to_string()
    };
    let key_lines: Vec<&str> = runners.lines().collect();
    let (machine_a, machine_b, machine_c) = (
        fingerprint(key_lines[0].split_once(' ').unwrap().1),
        fingerprint(key_lines[1].split_once(' ').unwrap().1),
        fingerprint(key_lines[2].split_once(' ').unwrap().1),
    );
    let events = a.events(&run);
    for e in &events {
        let who = &e["data"]["who"];
        assert!(
            [ANA, BOB, CAROL].contains(&who["principal"].as_str().unwrap_or_default()),
            "{e}"
        );
        assert!(
            who["machine"]
                .as_str()
                .unwrap_or_default()
                .starts_with("SHA256:"),
            "{e}"
        );
    }
    let by = |kind: &str| -> Vec<Value> {
        events
            .iter()
            .filter(|e| e["kind"] == kind)
            .map(|e| e["data"]["who"].clone())
            .collect()
    };
    assert_eq!(by("start")[0]["principal"], ANA);
    assert_eq!(by("submit")[0]["principal"], ANA);
    assert_eq!(by("promote")[0]["principal"], BOB);
    assert_eq!(by("start")[0]["machine"], machine_a.as_str());
    assert_eq!(by("promote")[0]["machine"], machine_b.as_str());
    let deciders: Vec<String> = events
        .iter()
        .filter(|e| e["kind"] == "approval" || e["kind"] == "approve")
        .map(|e| e["data"]["who"]["principal"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(deciders, [BOB, CAROL], "{events:?}");
    let machines: Vec<Value> = events
        .iter()
        .filter(|e| e["kind"] == "approval" || e["kind"] == "approve")
        .map(|e| e["data"]["who"]["machine"].clone())
        .collect();
    assert_eq!(machines, [machine_b.as_str(), machine_c.as_str()]);

    // The approvals, verified by ssh-keygen alone.
    let export = c.env.tmp.path().join("approvals");
    let listed = c.json(
        &["approvals", &run, "--export", export.to_str().unwrap()],
        0,
    );
    let approvals = listed["approvals"].as_array().unwrap();
    assert_eq!(approvals.len(), 2, "{listed}");
    for ap in approvals {
        assert_eq!(ap["verified"], true, "{ap}");
        ssh_verify(
            &export.join("allowed_signers"),
            ap["principal"].as_str().unwrap(),
            "airlock-approval",
            Path::new(ap["sig"].as_str().unwrap()),
            Path::new(ap["pae"].as_str().unwrap()),
        );
    }

    // A second run: the author cannot approve it, and one approval of two
    // does not promote it; each refusal changes nothing.
    let brief = a.env.write_brief("second", BRIEF);
    let started = a.json(&["start", &brief], 0);
    let second = started["run"].as_str().unwrap().to_string();
    let wt = PathBuf::from(started["worktree"].as_str().unwrap());
    write(&wt.join("src/app.sh"), "#!/bin/sh\necho hello again\n");
    a.json(&["check", &second], 0);
    a.json(&["submit", &second], 0);
    let before = a.events(&second).len();
    let tip = remote_ref(&remote, "refs/heads/main");
    let err = a.refused(
        &["approve", &second, "--key", ana_key.to_str().unwrap()],
        "approver-is-author",
    );
    assert!(err["message"].as_str().unwrap().contains(ANA), "{err}");
    assert_eq!(a.events(&second).len(), before);
    assert_eq!(a.state(&second), "in_review");
    b.json(&["approve", &second, "--key", bob_key.to_str().unwrap()], 0);
    // B's approval records the checkpoint B verified (the one it pushed),
    // and `show` says so.
    let shown = b.json(&["show", &second, "--no-diff"], 0);
    let recorded = &shown["signed_approvals"]["approvals"][0]["checkpoint"];
    assert_eq!(recorded["commit"], checkpoint.as_str(), "{shown}");
    let shown = b.airlock(&["show", &second]);
    assert!(
        shown.stdout.contains(&format!(
            ", having seen checkpoint {} ({})",
            recorded["size"],
            &checkpoint[..12]
        )),
        "{}",
        shown.stdout
    );
    let before = b.events(&second).len();
    let err = b.refused(&["promote", &second], "wrong-state");
    assert!(err["message"].as_str().unwrap().contains(&second), "{err}");
    assert_eq!(b.events(&second).len(), before);
    assert_eq!(b.state(&second), "in_review");
    assert_eq!(remote_ref(&remote, "refs/heads/main"), tip);
    assert_eq!(
        remote_ref(&remote, &format!("refs/airlock/promoted/{second}")),
        None
    );
}
