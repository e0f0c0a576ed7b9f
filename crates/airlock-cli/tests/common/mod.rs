//! A hermetic test repository and helpers to drive the `airlock` binary.
//!
//! Every test gets its own temporary directory holding a fake HOME (so the
//! signing key and any git config are throwaway) and a git repository with a
//! small shell project and a workflow whose gates are plain shell commands.

#![allow(dead_code)]

pub mod agent;
pub mod http;
pub mod team;
pub mod web;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use assert_cmd::cargo::CommandCargoExt;
use serde_json::Value;
use sha2::{Digest, Sha256};

pub const WORKFLOW: &str = r#"[gates.build]
run = "test -f src/app.sh"
timeout = 30

[gates.test]
run = "sh tests/run.sh"
timeout = 30

[policy]
protected = ["ci/**", "Cargo.lock"]
max_files = 50
max_lines = 1000
"#;

pub const BRIEF: &str = r#"title = "Make greet polite"
objective = "greet prints a polite greeting"
touch = ["src/**", "tests/**"]
checks = ["build", "test"]
rollback = "revert the merge commit"
"#;

pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<std::process::Output> for Output {
    fn from(out: std::process::Output) -> Output {
        Output {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

impl Output {
    /// The one JSON document on stdout of `airlock --json ARGS`, after
    /// asserting it exited with `code`.
    pub fn expect_json(self, args: &[&str], code: i32) -> Value {
        assert_eq!(
            self.code, code,
            "airlock {args:?}\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self.json()
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not one JSON document ({e}):\n{}\nstderr:\n{}",
                self.stdout, self.stderr
            )
        })
    }
}

pub struct Env {
    pub tmp: tempfile::TempDir,
    pub repo: PathBuf,
    pub home: PathBuf,
}

impl Env {
    /// A repository with one commit on `main`, `airlock init` done and committed.
    pub fn new() -> Env {
        let env = Env::bare();
        env.write("src/app.sh", "#!/bin/sh\necho hello\n");
        env.write("tests/run.sh", "#!/bin/sh\nsh src/app.sh | grep -q hello\n");
        env.write("docs/guide.md", "# Guide\n");
        env.write("ci/pipeline.yml", "steps: []\n");
        env.write(".airlock/workflow.toml", WORKFLOW);
        env.git(&["add", "-A"]);
        env.git(&["commit", "-q", "-m", "initial"]);
        let out = env.airlock(&["init"]);
        assert_eq!(out.code, 0, "init failed: {}", out.stderr);
        env.git(&["add", "-A"]);
        env.git(&["commit", "-q", "-m", "airlock init"]);
        env
    }

    /// An empty git repository on `main` (no commits, no airlock).
    pub fn bare() -> Env {
        let tmp = tempfile::tempdir().unwrap();
        let home = tmp.path().join("home");
        let repo = tmp.path().join("repo");
        std::fs::create_dir_all(&home).unwrap();
        std::fs::create_dir_all(&repo).unwrap();
        let env = Env { tmp, repo, home };
        env.git(&["init", "-q", "-b", "main"]);
        env
    }

    pub fn hermetic(&self, cmd: &mut Command) {
        for (key, _) in std::env::vars_os() {
            let key = key.to_string_lossy().into_owned();
            // `CI` changes what `snap` may write; a test that wants it sets it.
            if key.starts_with("GIT_")
                || key.starts_with("AIRLOCK_")
                || key == "XDG_CONFIG_HOME"
                || key == "CI"
            {
                cmd.env_remove(&key);
            }
        }
        cmd.env("HOME", &self.home)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_AUTHOR_NAME", "Test User")
            .env("GIT_AUTHOR_EMAIL", "test@example.invalid")
            .env("GIT_COMMITTER_NAME", "Test User")
            .env("GIT_COMMITTER_EMAIL", "test@example.invalid")
            .env("NO_COLOR", "1");
    }

    /// A `Command` for the airlock binary, hermetic, in the repository.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = Command::cargo_bin("airlock").unwrap();
        self.hermetic(&mut cmd);
        cmd.args(args).current_dir(&self.repo);
        cmd
    }

    pub fn airlock(&self, args: &[&str]) -> Output {
        self.airlock_env(args, &[])
    }

    pub fn airlock_env(&self, args: &[&str], envs: &[(&str, &str)]) -> Output {
        let mut cmd = self.cmd(args);
        for (k, v) in envs {
            cmd.env(k, v);
        }
        cmd.output().unwrap().into()
    }

    /// `airlock --json ARGS`, asserting the exit code; returns the document.
    pub fn json(&self, args: &[&str], code: i32) -> Value {
        let mut full = vec!["--json"];
        full.extend_from_slice(args);
        self.airlock(&full).expect_json(args, code)
    }

    pub fn git(&self, args: &[&str]) -> String {
        self.git_in(&self.repo, args)
    }

    pub fn git_in(&self, dir: &Path, args: &[&str]) -> String {
        let mut cmd = Command::new("git");
        self.hermetic(&mut cmd);
        let out = cmd.args(args).current_dir(dir).output().unwrap();
        assert!(
            out.status.success(),
            "git {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    pub fn write(&self, rel: &str, text: &str) {
        write(&self.repo.join(rel), text);
    }

    pub fn write_brief(&self, name: &str, text: &str) -> String {
        let rel = format!("briefs/{name}.toml");
        // Briefs live outside the repo's tracked tree here so they never count as changes.
        write(&self.tmp.path().join(&rel), text);
        self.tmp.path().join(rel).display().to_string()
    }

    /// Starts a run from `brief`; returns (run id, worktree).
    pub fn start(&self, brief: &str) -> (String, PathBuf) {
        let path = self.write_brief("brief", brief);
        let v = self.json(&["start", &path], 0);
        (
            v["run"].as_str().unwrap().to_string(),
            PathBuf::from(v["worktree"].as_str().unwrap()),
        )
    }

    /// A run taken through start, an edit in scope, check and submit.
    pub fn submitted(&self) -> (String, PathBuf) {
        let (run, wt) = self.start(BRIEF);
        write(&wt.join("src/app.sh"), "#!/bin/sh\necho hello, please\n");
        self.json(&["check", &run], 0);
        self.json(&["submit", &run], 0);
        (run, wt)
    }

    /// A run taken through approval.
    pub fn approved(&self) -> (String, PathBuf) {
        let (run, wt) = self.submitted();
        self.json(&["approve", &run], 0);
        (run, wt)
    }

    pub fn state(&self, run: &str) -> String {
        self.json(&["show", run, "--no-diff"], 0)["state"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// Everything of the main repository a run must never change: every
    /// ref, the index, config, hooks, HEAD, packed-refs and the checkout's
    /// files, as path -> sha256. Compare before and after an attack.
    pub fn main_fingerprint(&self) -> BTreeMap<String, String> {
        let mut map = BTreeMap::new();
        let git_dir = self.repo.join(".git");
        for rel in ["HEAD", "config", "index", "packed-refs", "info/exclude"] {
            if let Ok(bytes) = std::fs::read(git_dir.join(rel)) {
                map.insert(format!(".git/{rel}"), digest(&bytes));
            }
        }
        for sub in ["refs", "hooks"] {
            walk(&git_dir.join(sub), &git_dir, &mut map, ".git/");
        }
        for entry in std::fs::read_dir(&self.repo).unwrap() {
            let entry = entry.unwrap();
            let name = entry.file_name().to_string_lossy().into_owned();
            if name == ".git" {
                continue;
            }
            if name == ".airlock" {
                for f in ["workflow.toml", ".gitignore", "secrets-allow"] {
                    if let Ok(bytes) = std::fs::read(entry.path().join(f)) {
                        map.insert(format!(".airlock/{f}"), digest(&bytes));
                    }
                }
                continue;
            }
            walk(&entry.path(), &self.repo, &mut map, "");
        }
        map
    }

    /// The ledger must verify after anything a test did.
    pub fn assert_ledger_ok(&self) {
        let v = self.json(&["ledger", "verify"], 0);
        assert!(v["first_bad"].is_null(), "{v}");
    }
}

/// A directory for tests whose files must be seen by a sandboxed command as
/// they are on the host: `CARGO_TARGET_TMPDIR/NAME`, unless the build lives
/// below /tmp (a CI checkout, say), which the sandbox replaces with a private
/// one; then `/var/tmp/airlock-test-NAME`, outside it and open to every user.
pub fn outside_private_tmp(name: &str) -> PathBuf {
    let target_tmp = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    if target_tmp.starts_with("/tmp") {
        PathBuf::from(format!("/var/tmp/airlock-test-{name}"))
    } else {
        target_tmp.join(name)
    }
}

pub fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

fn digest(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn walk(path: &Path, base: &Path, map: &mut BTreeMap<String, String>, prefix: &str) {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(_) => return,
    };
    let rel = format!("{prefix}{}", path.strip_prefix(base).unwrap().display());
    if meta.is_dir() {
        let mut entries: Vec<_> = std::fs::read_dir(path)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for e in entries {
            walk(&e, base, map, prefix);
        }
    } else if meta.file_type().is_symlink() {
        map.insert(
            rel,
            format!("symlink:{}", std::fs::read_link(path).unwrap().display()),
        );
    } else {
        map.insert(rel, digest(&std::fs::read(path).unwrap()));
    }
}

// ---- Helpers for the lifecycle, refusal and promotion tests ----------------

/// Everything a refused command must leave as it was: the main repository,
/// every run's state, the number of ledger events and the run directories.
#[derive(Debug, PartialEq)]
pub struct World {
    pub fingerprint: BTreeMap<String, String>,
    pub runs: BTreeMap<String, String>,
    pub events: i64,
    pub run_dirs: Vec<String>,
}

impl Env {
    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.repo.join(rel)).unwrap()
    }

    /// airlock's local state directory in the main checkout.
    pub fn state_dir(&self) -> PathBuf {
        self.repo.join(".airlock/local")
    }

    /// The names under `.airlock/local/runs` (empty when there is none).
    pub fn run_dirs(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.state_dir().join("runs"))
            .map(|rd| {
                rd.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }

    /// Runs' refs in the main repository (`refs/airlock/runs/*`, and any
    /// left where older versions kept them), one per line.
    pub fn airlock_branches(&self) -> String {
        self.git(&[
            "for-each-ref",
            "--format=%(refname)",
            "refs/airlock/",
            "refs/heads/airlock/",
        ])
    }

    pub fn rev(&self, rev: &str) -> String {
        self.git(&["rev-parse", rev])
    }

    /// Writes a file in the main checkout and commits it on the current branch.
    pub fn commit_file(&self, rel: &str, text: &str, message: &str) -> String {
        self.write(rel, text);
        self.git(&["add", "-A"]);
        self.git(&["commit", "-q", "-m", message]);
        self.rev("HEAD")
    }

    /// `airlock ARGS` from another directory, with extra environment.
    pub fn airlock_in(&self, dir: &Path, args: &[&str], envs: &[(&str, &str)]) -> Output {
        let mut cmd = self.cmd(args);
        cmd.current_dir(dir);
        for (k, v) in envs {
            cmd.env(k, v);
        }
        cmd.output().unwrap().into()
    }

    /// `airlock ARGS` that must fail with `code`: checks the error shape
    /// (`error: …` on stderr, nothing on stdout) and returns the output.
    pub fn fails(&self, args: &[&str], code: i32) -> Output {
        let mut out = self.airlock(args);
        // The lines saying which gate runs (off a terminal) come before the error.
        while out.stderr.starts_with("running gate ") {
            let rest = out.stderr.split_once('\n').map_or("", |(_, r)| r);
            out.stderr = rest.to_string();
        }
        assert_eq!(
            out.code, code,
            "airlock {args:?}\nstdout:\n{}\nstderr:\n{}",
            out.stdout, out.stderr
        );
        assert!(
            out.stderr.starts_with("error: "),
            "airlock {args:?}: stderr should start with `error: `:\n{}",
            out.stderr
        );
        out
    }

    /// `airlock --json ARGS` that must fail with `code`; returns the `error` object.
    pub fn json_error(&self, args: &[&str], code: i32) -> Value {
        let v = self.json(args, code);
        assert!(v["error"]["message"].is_string(), "{v}");
        v["error"].clone()
    }

    pub fn db(&self) -> rusqlite::Connection {
        rusqlite::Connection::open(self.state_dir().join("ledger.db")).unwrap()
    }

    pub fn world(&self) -> World {
        let mut runs = BTreeMap::new();
        let mut events = 0;
        if self.state_dir().join("ledger.db").exists() {
            let db = self.db();
            let mut stmt = db.prepare("SELECT id, state FROM runs").unwrap();
            let rows = stmt
                .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
                .unwrap();
            for row in rows {
                let (id, state) = row.unwrap();
                runs.insert(id, state);
            }
            events = db
                .query_row("SELECT count(*) FROM events", [], |r| r.get(0))
                .unwrap();
        }
        World {
            fingerprint: self.main_fingerprint(),
            runs,
            events,
            run_dirs: self.run_dirs(),
        }
    }

    /// Nothing was lost or half-written since `before`, and the ledger verifies.
    pub fn assert_unchanged(&self, before: &World) {
        let now = self.world();
        assert_eq!(
            before.fingerprint, now.fingerprint,
            "main repository changed"
        );
        assert_eq!(before.runs, now.runs, "run states changed");
        assert_eq!(before.events, now.events, "ledger events were added");
        assert_eq!(before.run_dirs, now.run_dirs, "run directories changed");
        self.assert_ledger_ok();
    }

    /// The ledger's events as `log --json` shows them.
    pub fn events(&self, run: Option<&str>) -> Vec<Value> {
        let mut args = vec!["log"];
        args.extend(run);
        self.json(&args, 0)["events"].as_array().unwrap().clone()
    }
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    digest(bytes)
}

/// Deterministic pseudo-random text over `alphabet`, so tests can build
/// credential-shaped strings without a literal secret in the source.
pub fn random_text(seed: &str, alphabet: &[u8], len: usize) -> String {
    let mut out = String::new();
    let mut block = Sha256::digest(seed.as_bytes()).to_vec();
    while out.len() < len {
        for b in &block {
            if out.len() < len {
                out.push(alphabet[*b as usize % alphabet.len()] as char);
            }
        }
        block = Sha256::digest(&block).to_vec();
    }
    out
}

pub const UPPER_DIGITS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
pub const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
pub const BASE64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

// ---- Helpers for the sandbox escape corpus ---------------------------------

/// The uid and gid an unprivileged caller runs as (`nobody`).
pub const NOBODY: u32 = 65534;

/// A PATH every user can traverse (root's own PATH may start in /root).
pub const SYSTEM_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Who runs airlock (and git) in a [`Jail`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Caller {
    /// The user running the tests (root in CI).
    Current,
    /// uid/gid 65534 through `setpriv`, with the repository and HOME owned by
    /// it. Only possible when the tests run as root; see [`Caller::available`].
    Unprivileged,
}

impl Caller {
    /// Whether this caller can be used here: `Unprivileged` needs root to
    /// switch users (without root, `Current` already is unprivileged).
    pub fn available(self) -> bool {
        match self {
            Caller::Current => true,
            Caller::Unprivileged => rustix::process::getuid().is_root(),
        }
    }
}

/// An [`Env`] for attacking the sandbox: the repository and HOME live under
/// a world-traversable directory in `CARGO_TARGET_TMPDIR` (not below /tmp,
/// which the sandbox replaces with a private one, so that hiding is really
/// tested), owned by the caller, and every airlock and git command runs as
/// that caller. Derefs to the [`Env`] for fingerprints and paths.
pub struct Jail {
    pub env: Env,
    pub caller: Caller,
}

impl std::ops::Deref for Jail {
    type Target = Env;
    fn deref(&self) -> &Env {
        &self.env
    }
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// `chown -R uid:gid path` without following symlinks.
pub fn chown_tree(path: &Path, id: u32) {
    std::os::unix::fs::lchown(path, Some(id), Some(id)).unwrap();
    let meta = std::fs::symlink_metadata(path).unwrap();
    if meta.is_dir() {
        for entry in std::fs::read_dir(path).unwrap() {
            chown_tree(&entry.unwrap().path(), id);
        }
    }
}

impl Jail {
    /// A repository like [`Env::new`]'s, with `workflow` as its workflow
    /// (the harness's gates must stay in it), `packed-refs` present, and
    /// `airlock init` done and committed by `caller`.
    pub fn new(caller: Caller, workflow: &str) -> Jail {
        assert!(
            caller.available(),
            "{caller:?} needs the tests to run as root"
        );
        let target_tmp = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
        let parent = outside_private_tmp("jails");
        std::fs::create_dir_all(&parent).unwrap();
        // Every component down to the jail must be traversable by the caller:
        // the target directory's own folders are opened up, anything above
        // them must already be (chmod'ing the user's folders is not ours to do).
        let target = target_tmp.parent().unwrap().to_path_buf();
        let mut dir = parent.clone();
        loop {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&dir).unwrap().permissions().mode();
            if mode & 0o005 != 0o005 {
                assert!(
                    dir.starts_with(&target) || caller == Caller::Current,
                    "{} must be world-traversable to run the corpus as uid {NOBODY}; \
                     set CARGO_TARGET_DIR below a 0755 directory",
                    dir.display()
                );
                if dir.starts_with(&target) {
                    set_mode(&dir, mode | 0o005);
                }
            }
            if !dir.pop() || dir.as_os_str() == "/" {
                break;
            }
        }
        let tmp = tempfile::Builder::new()
            .prefix("jail")
            .tempdir_in(&parent)
            .unwrap();
        set_mode(tmp.path(), 0o755);
        let home = tmp.path().join("home");
        let repo = tmp.path().join("repo");
        std::fs::create_dir_all(&home).unwrap();
        std::fs::create_dir_all(&repo).unwrap();
        let jail = Jail {
            env: Env { tmp, repo, home },
            caller,
        };
        jail.env.write("src/app.sh", "#!/bin/sh\necho hello\n");
        jail.env
            .write("tests/run.sh", "#!/bin/sh\nsh src/app.sh | grep -q hello\n");
        jail.env.write("docs/guide.md", "# Guide\n");
        jail.env.write("ci/pipeline.yml", "steps: []\n");
        jail.env.write(".airlock/workflow.toml", workflow);
        jail.own(jail.tmp.path());
        jail.git(&["init", "-q", "-b", "main"]);
        jail.git(&["add", "-A"]);
        jail.git(&["commit", "-q", "-m", "initial"]);
        let out = jail.airlock(&["init"]);
        assert_eq!(out.code, 0, "init failed: {}", out.stderr);
        jail.git(&["add", "-A"]);
        jail.git(&["commit", "-q", "-m", "airlock init"]);
        jail.git(&["pack-refs", "--all"]);
        jail
    }

    /// The uid commands of this jail run as.
    pub fn uid(&self) -> u32 {
        match self.caller {
            Caller::Current => rustix::process::getuid().as_raw(),
            Caller::Unprivileged => NOBODY,
        }
    }

    /// Gives `path` (recursively) to the caller.
    pub fn own(&self, path: &Path) {
        if self.caller == Caller::Unprivileged {
            chown_tree(path, NOBODY);
        }
    }

    /// Writes a file (and its missing parents) owned by the caller.
    pub fn plant(&self, path: &Path, text: &str) {
        let mut first_new = path.to_path_buf();
        while !first_new.parent().unwrap().exists() {
            first_new.pop();
        }
        write(path, text);
        self.own(&first_new);
    }

    /// `program` as the caller, hermetic, in the repository.
    pub fn command(&self, program: &Path) -> Command {
        let mut cmd = match self.caller {
            Caller::Current => Command::new(program),
            Caller::Unprivileged => {
                let mut c = Command::new("setpriv");
                c.args([
                    format!("--reuid={NOBODY}"),
                    format!("--regid={NOBODY}"),
                    "--clear-groups".into(),
                    "--".into(),
                ])
                .arg(program);
                c
            }
        };
        self.env.hermetic(&mut cmd);
        cmd.env("PATH", SYSTEM_PATH).current_dir(&self.repo);
        cmd
    }

    pub fn airlock(&self, args: &[&str]) -> Output {
        self.airlock_env(args, &[])
    }

    pub fn airlock_env(&self, args: &[&str], envs: &[(&str, &str)]) -> Output {
        let mut cmd = self.command(&assert_cmd::cargo::cargo_bin("airlock"));
        cmd.args(args);
        for (k, v) in envs {
            cmd.env(k, v);
        }
        cmd.output().unwrap().into()
    }

    pub fn json(&self, args: &[&str], code: i32) -> Value {
        let mut full = vec!["--json"];
        full.extend_from_slice(args);
        self.airlock(&full).expect_json(args, code)
    }

    pub fn git(&self, args: &[&str]) -> String {
        let out = self.command(Path::new("git")).args(args).output().unwrap();
        assert!(
            out.status.success(),
            "git {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Starts a run from `brief`; returns (run id, worktree).
    pub fn start(&self, brief: &str) -> (String, PathBuf) {
        let dir = self.tmp.path().join("briefs");
        std::fs::create_dir_all(&dir).unwrap();
        let path = tempfile::Builder::new()
            .suffix(".toml")
            .tempfile_in(&dir)
            .unwrap()
            .into_temp_path()
            .keep()
            .unwrap();
        std::fs::write(&path, brief).unwrap();
        set_mode(&path, 0o644);
        self.own(&path);
        let v = self.json(&["start", path.to_str().unwrap()], 0);
        (
            v["run"].as_str().unwrap().to_string(),
            PathBuf::from(v["worktree"].as_str().unwrap()),
        )
    }
}

// ---- A terminal for programs that expect one ----------------------------------

use std::io::{Read as _, Write as _};
use std::os::fd::OwnedFd;
use std::os::unix::process::CommandExt as _;
use std::time::{Duration, Instant};

/// A pseudo-terminal the test owns: (leader, follower).
pub fn open_pty() -> (OwnedFd, OwnedFd) {
    use rustix::fs::{Mode, OFlags};
    use rustix::pty::{OpenptFlags, grantpt, openpt, ptsname, unlockpt};
    let leader = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC).unwrap();
    grantpt(&leader).unwrap();
    unlockpt(&leader).unwrap();
    // The follower is opened by the name the kernel gives.
    let name = ptsname(&leader, Vec::new()).unwrap();
    let follower = rustix::fs::open(
        name.as_c_str(),
        OFlags::RDWR | OFlags::NOCTTY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .unwrap();
    (leader, follower)
}

/// What a program run at a terminal of the test's printed there, its exit
/// code, and what is left in the terminal's input for whoever reads it
/// next (a shell, after the program). `answer` is typed once `prompt` is
/// shown, after the window is resized to `resize` (rows, columns).
pub struct AtTerminal {
    pub code: i32,
    pub shown: String,
    pub left_for_the_shell: String,
    pub settings_kept: bool,
}

pub fn at_terminal(
    mut cmd: Command,
    prompt: &str,
    answer: &str,
    resize: Option<(u16, u16)>,
) -> AtTerminal {
    let (leader, follower) = open_pty();
    let before = rustix::termios::tcgetattr(&follower).unwrap();
    for stream in 0..3 {
        let side = follower.try_clone().unwrap();
        match stream {
            0 => cmd.stdin(side),
            1 => cmd.stdout(side),
            _ => cmd.stderr(side),
        };
    }
    // The terminal is the program's controlling terminal, as a shell's is.
    // SAFETY: setsid and the ioctl are single system calls, safe between
    // fork and exec; fd 0 is the follower there (set as stdin above).
    unsafe {
        cmd.pre_exec(|| {
            let _ = rustix::process::setsid();
            rustix::process::ioctl_tiocsctty(std::os::fd::BorrowedFd::borrow_raw(0))?;
            Ok(())
        });
    }
    let mut child = cmd.spawn().unwrap();
    drop(cmd);
    rustix::fs::fcntl_setfl(&leader, rustix::fs::OFlags::NONBLOCK).unwrap();
    let mut leader = std::fs::File::from(leader);
    let mut shown = Vec::new();
    let mut typed = answer.is_empty();
    let deadline = Instant::now() + Duration::from_secs(120);
    let code = loop {
        let mut buf = [0u8; 4096];
        match leader.read(&mut buf) {
            Ok(n) if n > 0 => shown.extend_from_slice(&buf[..n]),
            _ => std::thread::sleep(Duration::from_millis(20)),
        }
        if !typed && String::from_utf8_lossy(&shown).contains(prompt) {
            if let Some((rows, cols)) = resize {
                let size = rustix::termios::Winsize {
                    ws_row: rows,
                    ws_col: cols,
                    ws_xpixel: 0,
                    ws_ypixel: 0,
                };
                rustix::termios::tcsetwinsize(&leader, size).unwrap();
                // The new size reaches the program before the answer.
                std::thread::sleep(Duration::from_millis(300));
            }
            leader.write_all(answer.as_bytes()).unwrap();
            typed = true;
        }
        if let Some(status) = child.try_wait().unwrap() {
            // What was written before the end.
            while let Ok(n) = leader.read(&mut buf) {
                if n == 0 {
                    break;
                }
                shown.extend_from_slice(&buf[..n]);
            }
            break status.code().unwrap_or(-1);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "the program did not end; it showed:\n{}",
                String::from_utf8_lossy(&shown)
            );
        }
    };
    // What a shell reading the terminal next would get.
    // FIONREAD, then a non-blocking read of that much.
    let pending = rustix::io::ioctl_fionread(&follower).unwrap_or(0);
    let mut left = vec![0u8; pending as usize];
    if !left.is_empty() {
        let _ = rustix::fs::fcntl_setfl(&follower, rustix::fs::OFlags::NONBLOCK);
        let n = rustix::io::read(&follower, &mut left).unwrap_or(0);
        left.truncate(n);
    }
    let after = rustix::termios::tcgetattr(&follower).unwrap();
    AtTerminal {
        code,
        shown: String::from_utf8_lossy(&shown).into_owned(),
        left_for_the_shell: String::from_utf8_lossy(&left).into_owned(),
        settings_kept: before.local_modes == after.local_modes
            && before.input_modes == after.input_modes
            && before.output_modes == after.output_modes,
    }
}

/// Runs a case taking a [`Caller`] twice: as the current user and as an
/// unprivileged one (uid 65534, skipped where the current user is not root).
// Allowed unused as `dead_code` is above: not every test binary runs cases twice.
#[allow(unused_macros)]
macro_rules! both {
    ($($case:ident),* $(,)?) => {$(
        mod $case {
            use super::*;
            #[test]
            fn as_root() {
                super::$case(Caller::Current);
            }
            #[test]
            fn as_unprivileged() {
                if !Caller::Unprivileged.available() {
                    eprintln!("skipped: switching to uid 65534 needs root; the current user is unprivileged already");
                    return;
                }
                super::$case(Caller::Unprivileged);
            }
        }
    )*};
}
#[allow(unused_imports)]
pub(crate) use both;
