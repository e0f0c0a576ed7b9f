//! What keeps a run's evidence the run's own: a key directory only its user
//! can reach, private state whatever the umask, a proof that is the one
//! submitted, an approval bound to a digest that names one proof.

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};

use common::{BRIEF, Env, Output};

fn mode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path).unwrap().mode() & 0o7777
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Everything below `dir`, as (path, mode), sorted.
fn modes_below(dir: &Path) -> Vec<(PathBuf, u32)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        out.push((path.clone(), mode(&path)));
        if std::fs::symlink_metadata(&path).unwrap().is_dir() {
            out.extend(modes_below(&path));
        }
    }
    out.sort();
    out
}

/// Kills the warm sandboxes and ledger servers a test started through
/// `env`, when it ends.
struct Servants<'a>(&'a Env);

impl Drop for Servants<'_> {
    fn drop(&mut self) {
        let key_dir = self.0.home.join(".config/airlock");
        let Ok(procs) = std::fs::read_dir("/proc") else {
            return;
        };
        for pid in procs.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok()) {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
            let ours = match args.get(1).copied() {
                Some(b"__ledger-server") => {
                    args.get(2).copied() == Some(self.0.repo.as_os_str().as_encoded_bytes())
                }
                Some(b"__sandbox-host") => std::fs::read_dir(format!("/proc/{pid}/fd"))
                    .map(|fds| {
                        fds.filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
                            .any(|target| target.starts_with(&key_dir))
                    })
                    .unwrap_or(false),
                _ => false,
            };
            if ours {
                // Signalling a process this test started.
                if let Some(pid) = rustix::process::Pid::from_raw(pid) {
                    let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
                }
            }
        }
    }
}

/// `airlock --json ARGS` under umask 000.
fn json_umask_000(env: &Env, args: &[&str]) -> serde_json::Value {
    let mut full = vec!["--json"];
    full.extend_from_slice(args);
    let mut cmd = env.cmd(&full);
    // SAFETY: umask is a single system call, safe between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            rustix::process::umask(rustix::fs::Mode::empty());
            Ok(())
        });
    }
    Output::from(cmd.output().unwrap()).expect_json(args, 0)
}

// ---- The key directory and airlock's own state ---------------------------------

#[test]
fn what_airlock_makes_is_private_whatever_the_umask() {
    let env = Env::bare();
    let _servants = Servants(&env);
    env.write("src/app.sh", "#!/bin/sh\necho hello\n");
    env.write("tests/run.sh", "#!/bin/sh\nsh src/app.sh | grep -q hello\n");
    env.write(".airlock/workflow.toml", common::WORKFLOW);
    env.git(&["add", "-A"]);
    env.git(&["commit", "-q", "-m", "initial"]);
    json_umask_000(&env, &["init"]);
    let brief = env.write_brief("brief", BRIEF);
    let run = json_umask_000(&env, &["start", &brief])["run"]
        .as_str()
        .unwrap()
        .to_string();
    // Two commands: the first starts a warm sandbox and a ledger server,
    // the second goes through both.
    for _ in 0..2 {
        json_umask_000(&env, &["exec", &run, "--", "sh", "-c", "echo hi > out.txt"]);
    }
    let key_dir = env.home.join(".config/airlock");
    let state = env.state_dir();
    for dir in [
        &key_dir,
        &key_dir.join("sandboxes"),
        &key_dir.join("ledgers"),
        &state,
    ] {
        assert_eq!(mode(dir), 0o700, "{}", dir.display());
    }
    // Every socket and lock beside the key: this user's alone.
    let beside_key = modes_below(&key_dir);
    let sockets: Vec<_> = beside_key
        .iter()
        .filter(|(p, _)| p.extension().is_some_and(|x| x == "sock"))
        .collect();
    assert_eq!(sockets.len(), 2, "{beside_key:?}");
    for (path, mode) in beside_key
        .iter()
        .filter(|(p, _)| p.extension().is_some_and(|x| x == "sock" || x == "lock"))
    {
        assert_eq!(*mode & 0o077, 0, "{} has mode {mode:04o}", path.display());
    }
}

#[test]
fn an_existing_state_directory_open_to_others_is_closed() {
    let env = Env::new();
    env.start(BRIEF);
    let state = env.state_dir();
    chmod(&state, 0o777);
    env.json(&["review"], 0);
    assert_eq!(mode(&state), 0o700);
}

/// A repository with a commit and a workflow, not yet initialised.
fn uninitialised() -> Env {
    let env = Env::bare();
    env.write("src/app.sh", "#!/bin/sh\necho hello\n");
    env.write(".airlock/workflow.toml", common::WORKFLOW);
    env.git(&["add", "-A"]);
    env.git(&["commit", "-q", "-m", "initial"]);
    env
}

#[test]
fn a_key_directory_others_can_enter_or_write_is_refused_and_nothing_is_made() {
    for (open, says) in [
        (0o755, "other users can enter it (mode 0755)"),
        (0o777, "other users can write to and enter it (mode 0777)"),
    ] {
        let env = uninitialised();
        let keys = env.tmp.path().join("keys");
        std::fs::create_dir(&keys).unwrap();
        chmod(&keys, open);
        let dir = keys.display().to_string();
        let out = env.airlock_env(&["init"], &[("AIRLOCK_KEY_DIR", &dir)]);
        assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
        assert_eq!(
            out.stderr,
            format!(
                "error: refusing to use the key directory {dir}: {says}\n  \
                 - it holds the signing key and the sockets of the warm sandboxes and ledger servers: another user who can reach them can run commands as you in a run's sandbox\n\
                 \x20 hint: run `chmod 700 {dir}`, or set AIRLOCK_KEY_DIR to a directory only you can enter\n"
            )
        );
        let json = env.airlock_env(&["--json", "init"], &[("AIRLOCK_KEY_DIR", &dir)]);
        assert_eq!(json.code, 1);
        assert_eq!(json.json()["error"]["class"], "refused");
        // Nothing made: no key, no state, no sockets.
        assert_eq!(std::fs::read_dir(&keys).unwrap().count(), 0);
        assert!(!env.state_dir().exists());
        assert_eq!(mode(&keys), open);
        // Closed as the hint says, it is used.
        chmod(&keys, 0o700);
        let out = env.airlock_env(&["init"], &[("AIRLOCK_KEY_DIR", &dir)]);
        assert_eq!(out.code, 0, "{}", out.stderr);
        assert!(keys.join("signing_key").is_file());
    }
}

#[test]
fn a_key_directory_opened_later_stops_every_command_before_it_runs() {
    let env = Env::new();
    let _servants = Servants(&env);
    let (run, wt) = env.start(BRIEF);
    let key_dir = env.home.join(".config/airlock");
    chmod(&key_dir, 0o711);
    let before = env.world();
    let out = env.fails(&["exec", &run, "--", "touch", "ran"], 1);
    assert!(
        out.stderr.starts_with(&format!(
            "error: refusing to use the key directory {}: other users can enter it (mode 0711)\n",
            key_dir.display()
        )),
        "{}",
        out.stderr
    );
    assert!(!wt.join("ran").exists());
    assert!(!key_dir.join("sandboxes").exists());
    // XDG_CONFIG_HOME names it the same way.
    let out = env.airlock_env(
        &["exec", &run, "--", "touch", "ran"],
        &[(
            "XDG_CONFIG_HOME",
            env.home.join(".config").to_str().unwrap(),
        )],
    );
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(!wt.join("ran").exists());
    chmod(&key_dir, 0o700);
    env.assert_unchanged(&before);
}

// ---- The proof a run id names ------------------------------------------------------

fn proof_of(env: &Env, run: &str) -> (PathBuf, String) {
    let v = env.json(&["show", run, "--no-diff"], 0);
    (
        v["proof"]["path"].as_str().unwrap().into(),
        v["proof"]["digest"].as_str().unwrap().to_string(),
    )
}

/// Copies the bundle at `from`, with its signature, over `to`.
fn copy_bundle(from: &Path, to: &Path) {
    std::fs::copy(from, to).unwrap();
    std::fs::copy(
        format!("{}.sig", from.display()),
        format!("{}.sig", to.display()),
    )
    .unwrap();
}

#[test]
fn another_runs_bundle_at_a_runs_proof_path_neither_verifies_nor_is_approved() {
    let env = Env::new();
    let (victim, _) = env.submitted();
    let (other, _) = env.submitted();
    let (path, digest) = proof_of(&env, &victim);
    let (other_path, other_digest) = proof_of(&env, &other);
    copy_bundle(&other_path, &path);
    let before = env.world();

    let out = env.airlock(&["proof", "verify", &victim]);
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains(&format!(
            "FAIL submitted      the bundle at {} is run {other} round 1, sha256:{other_digest}, but the ledger recorded run {victim} round 1, sha256:{digest} at submit\n",
            path.display()
        )),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.ends_with("the proof does NOT verify\n"),
        "{}",
        out.stdout
    );
    let v = env.json(&["proof", "verify", &victim], 1);
    assert_eq!(v["verified"], false);

    let out = env.fails(&["approve", &victim, "--reason", "looks fine"], 1);
    assert!(
        out.stderr.starts_with(&format!(
            "error: the proof of run {victim} does not verify\n  - submitted: the bundle at {} is run {other}",
            path.display()
        )),
        "{}",
        out.stderr
    );
    // Nor with the digest the reviewer saw, nor with the other's.
    env.fails(&["approve", &victim, "--digest", &digest], 1);
    env.fails(&["approve", &victim, "--digest", &other_digest], 1);
    assert_eq!(env.state(&victim), "in_review");
    assert_eq!(
        env.json(&["show", &victim, "--no-diff"], 0)["proof"]["verified"],
        false
    );
    env.assert_unchanged(&before);

    // Named as a file, the same bundle verifies as what it is: the other's.
    let by_file = env.json(&["proof", "verify", path.to_str().unwrap()], 0);
    assert_eq!(by_file["report"]["run"], other.as_str());
}

#[test]
fn a_file_named_like_the_run_is_not_verified_in_its_place() {
    let env = Env::new();
    let (run, _) = env.submitted();
    let (other, _) = env.submitted();
    let (path, digest) = proof_of(&env, &run);
    let (other_path, _) = proof_of(&env, &other);
    // In the current directory, a bundle under the run's name.
    copy_bundle(&other_path, &env.repo.join(&run));
    let v = env.json(&["proof", "verify", &run], 0);
    assert_eq!(v["report"]["path"], path.display().to_string());
    assert_eq!(v["report"]["digest"], digest.as_str());
    assert_eq!(v["report"]["run"], run.as_str());
    // A file is named by a path.
    let local = format!("./{run}");
    let by_file = env.json(&["proof", "verify", &local], 0);
    assert_eq!(by_file["report"]["run"], other.as_str());
}

// ---- approve --digest -----------------------------------------------------------------

#[test]
fn approve_digest_needs_twelve_hex_digits() {
    let env = Env::new();
    let (run, _) = env.submitted();
    let (_, digest) = proof_of(&env, &run);
    let before = env.world();
    for (given, wrong) in [
        (
            digest[..1].to_string(),
            format!(
                "`--digest {}` has 1 hex digit, too few to name one proof",
                &digest[..1]
            ),
        ),
        (
            digest[..11].to_string(),
            format!(
                "`--digest {}` has 11 hex digits, too few to name one proof",
                &digest[..11]
            ),
        ),
        (
            "sha256:zz".to_string() + &digest[2..12],
            format!("`--digest sha256:zz{}` is not a hex digest", &digest[2..12]),
        ),
        (
            format!("{digest}0"),
            format!("`--digest {digest}0` is longer than a sha256 (64 hex digits)"),
        ),
    ] {
        let out = env.fails(&["approve", &run, "--digest", &given], 2);
        assert_eq!(
            out.stderr,
            format!(
                "error: {wrong}: give at least 12 hex digits of the proof digest you reviewed (`airlock show {run}` prints it)\n"
            )
        );
        let e = env.json_error(&["approve", &run, "--digest", &given], 2);
        assert_eq!(e["class"], "invalid");
        assert_eq!(env.state(&run), "in_review");
        env.assert_unchanged(&before);
    }
    // Twelve that match are enough; as `show` prints them, upper case or
    // with their `sha256:` too.
    let given = format!("sha256:{}", digest[..12].to_ascii_uppercase());
    let v = env.json(&["approve", &run, "--digest", &given], 0);
    assert_eq!(v["digest"], digest.as_str());
    assert_eq!(env.state(&run), "approved");
}

#[test]
fn twelve_digits_of_another_proof_are_refused() {
    let env = Env::new();
    let (run, _) = env.submitted();
    let (_, digest) = proof_of(&env, &run);
    let flipped = if digest.starts_with('0') { "1" } else { "0" };
    let wrong = format!("{flipped}{}", &digest[1..12]);
    let before = env.world();
    let out = env.fails(&["approve", &run, "--digest", &wrong], 1);
    assert!(
        out.stderr
            .contains(&format!(", not the {wrong} you reviewed\n")),
        "{}",
        out.stderr
    );
    env.assert_unchanged(&before);
}

// ---- Red team ----------------------------------------------------------------------

/// A key directory reached through a symbolic link that another user owns,
/// or that sits in a directory others can write to without the sticky bit:
/// the link's owner (or anyone, there) can point it elsewhere between the
/// check and the use, or at any later command. The directory it leads to
/// being private does not make the way there private.
#[test]
fn red_team_a_key_directory_reached_through_a_link_others_can_repoint_is_refused() {
    let running_as_root = rustix::process::geteuid().is_root();
    for (owner_other, sticky) in [(true, true), (false, false)] {
        if owner_other && !running_as_root {
            continue;
        }
        let env = uninitialised();
        let mine = env.tmp.path().join("mine");
        std::fs::create_dir(&mine).unwrap();
        chmod(&mine, 0o700);
        let shared = env.tmp.path().join("shared");
        std::fs::create_dir(&shared).unwrap();
        chmod(&shared, if sticky { 0o1777 } else { 0o777 });
        let link = shared.join("keys");
        std::os::unix::fs::symlink(&mine, &link).unwrap();
        if owner_other {
            // Another user's link, in a sticky directory like /tmp.
            std::os::unix::fs::lchown(&link, Some(common::NOBODY), Some(common::NOBODY)).unwrap();
        }
        let dir = link.display().to_string();
        let out = env.airlock_env(&["init"], &[("AIRLOCK_KEY_DIR", &dir)]);
        assert_eq!(
            out.code, 1,
            "a key directory behind a link others can re-point was used\n{}\n{}",
            out.stdout, out.stderr
        );
        assert!(
            out.stderr
                .starts_with(&format!("error: refusing to use the key directory {dir}: ")),
            "{}",
            out.stderr
        );
        assert_eq!(std::fs::read_dir(&mine).unwrap().count(), 0);
        assert!(!env.state_dir().exists());
    }
}

/// `proof verify FILE --key KEY` checks a bundle someone handed over,
/// signed by their key: every field it quotes (the head, the tree, the
/// digests) is theirs, and must reach the terminal escaped.
#[test]
fn red_team_proof_verify_shows_a_hostile_bundle_s_fields_escaped() {
    use airlock_core::proofs::{SigningKey, Statement, Subject, build_bundle};
    let env = Env::new();
    let key = SigningKey::generate();
    let hostile = "\x1b[2K\r  ok   head commit     is in the repository\x1b[8m\u{202e}";
    let statement = Statement::new(
        vec![Subject {
            name: "git+commit:refs/heads/x".into(),
            digest: [("gitCommit".to_string(), "0".repeat(40))].into(),
        }],
        "https://airlock.dev/run/v1",
        serde_json::json!({"run": "r", "base": hostile, "head": hostile, "tree": hostile,
                           "diff": {"sha256": hostile}, "brief": {"sha256": hostile}}),
    );
    let bundle = build_bundle(&key, &[statement]).unwrap();
    let path = env.tmp.path().join("handed.intoto.jsonl");
    std::fs::write(&path, &bundle.jsonl).unwrap();
    std::fs::write(
        env.tmp.path().join("handed.intoto.jsonl.sig"),
        &bundle.ssh_signature,
    )
    .unwrap();
    let public = env.tmp.path().join("handed.pub");
    std::fs::write(&public, key.public().to_openssh()).unwrap();
    let out = env.airlock(&[
        "proof",
        "verify",
        path.to_str().unwrap(),
        "--key",
        public.to_str().unwrap(),
    ]);
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains("the proof does NOT verify"),
        "{}",
        out.stdout
    );
    for c in ['\x1b', '\r', '\u{202e}'] {
        assert!(
            !out.stdout.contains(c) && !out.stderr.contains(c),
            "proof verify printed {c:?} raw:\n{}{}",
            out.stdout,
            out.stderr
        );
    }
    assert!(out.stdout.contains("\\x1b[2K\\r"), "{}", out.stdout);
}
