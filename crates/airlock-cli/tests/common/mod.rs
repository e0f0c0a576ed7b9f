//! A hermetic test repository and helpers to drive the `airlock` binary.
//!
//! Every test gets its own temporary directory holding a fake HOME (so the
//! signing key and any git config are throwaway) and a git repository with a
//! small shell project and a workflow whose gates are plain shell commands.

#![allow(dead_code)]

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

impl Output {
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
            if key.starts_with("GIT_") || key.starts_with("AIRLOCK_") || key == "XDG_CONFIG_HOME" {
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
        let out = cmd.output().unwrap();
        Output {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// `airlock --json ARGS`, asserting the exit code; returns the document.
    pub fn json(&self, args: &[&str], code: i32) -> Value {
        let mut full = vec!["--json"];
        full.extend_from_slice(args);
        let out = self.airlock(&full);
        assert_eq!(
            out.code, code,
            "airlock {args:?}\nstdout:\n{}\nstderr:\n{}",
            out.stdout, out.stderr
        );
        out.json()
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
