//! Team mode's test harness (issue 20): one way to build "a machine" and a
//! team of them. A machine is a clone of the team's bare remote with its own
//! HOME (so its own airlock key and key directory: remembered checkpoint,
//! unsealed notes), its own git identity, principal and airlock state; the
//! bare remote and (optionally) one PostgreSQL database of the PG store's
//! private test cluster are shared. Reviewers' SSH keys are made by the real
//! `ssh-keygen`. The first machine is where `airlock init` was done and the
//! rules were committed; the others clone after and pull.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use super::{BRIEF, Env, Output, WORKFLOW, write};
use airlock_store_pg::testing::{self, Database};

/// One machine of the team.
pub struct Machine {
    pub env: Env,
    pub principal: String,
    /// The database's URL; empty: the machine's own SQLite store.
    pub url: String,
}

impl Machine {
    /// A machine on `env` (a repository already there), named `principal`.
    pub fn on(env: Env, principal: &str, url: &str) -> Machine {
        std::fs::create_dir_all(env.tmp.path().join("state")).unwrap();
        write(
            &env.tmp.path().join("gitconfig"),
            &format!("[user]\n\tname = {principal}\n\temail = {principal}\n"),
        );
        Machine {
            env,
            principal: principal.to_string(),
            url: url.to_string(),
        }
    }

    /// A clone of `remote` as a new machine.
    pub fn clone_of(remote: &Path, principal: &str, url: &str) -> Machine {
        let tmp = tempfile::tempdir().unwrap();
        let home = tmp.path().join("home");
        let repo = tmp.path().join("repo");
        std::fs::create_dir_all(&home).unwrap();
        let env = Env { tmp, repo, home };
        env.git_in(
            env.tmp.path(),
            &["clone", "-q", &remote.display().to_string(), "repo"],
        );
        Machine::on(env, principal, url)
    }

    /// `airlock ARGS` as this machine: its home, principal, git identity,
    /// state directory and database.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = self.env.cmd(args);
        if !self.url.is_empty() {
            cmd.env("AIRLOCK_DATABASE_URL", &self.url);
        }
        cmd.env("AIRLOCK_PRINCIPAL", &self.principal)
            .env("AIRLOCK_HOME", self.env.tmp.path().join("state"))
            .env("GIT_CONFIG_GLOBAL", self.env.tmp.path().join("gitconfig"));
        cmd
    }

    pub fn airlock(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap().into()
    }

    pub fn json(&self, args: &[&str], code: i32) -> Value {
        let mut full = vec!["--json"];
        full.extend_from_slice(args);
        self.airlock(&full).expect_json(args, code)
    }

    /// A refusal: exit `exit`, the error's `code`; the whole error.
    pub fn refused_with(&self, args: &[&str], exit: i32, code: &str) -> Value {
        let mut full = vec!["--json"];
        full.extend_from_slice(args);
        let out = self.airlock(&full);
        assert_eq!(out.code, exit, "{args:?}: {}\n{}", out.stdout, out.stderr);
        let v = out.json();
        assert_eq!(v["error"]["code"], code, "{args:?}: {v}");
        v["error"].clone()
    }

    /// A refusal with exit 1.
    pub fn refused(&self, args: &[&str], code: &str) -> Value {
        self.refused_with(args, 1, code)
    }

    /// This machine's airlock key (made by `init`) as a runners line's key.
    pub fn key_line(&self) -> String {
        let init = self.airlock(&["init"]);
        assert_eq!(init.code, 0, "{}", init.stderr);
        self.json(&["key", "public"], 0)["public_key"]
            .as_str()
            .unwrap()
            .to_string()
    }

    pub fn events(&self, run: &str) -> Vec<Value> {
        self.json(&["log", run], 0)["events"]
            .as_array()
            .unwrap()
            .clone()
    }

    pub fn state(&self, run: &str) -> String {
        self.json(&["show", run, "--no-diff"], 0)["state"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// A run started from `BRIEF`, `src/app.sh` changed, checked and
    /// submitted (its round pushed in team mode): (run, worktree).
    pub fn submitted(&self) -> (String, PathBuf) {
        let brief = self.env.write_brief("brief", BRIEF);
        let started = self.json(&["start", &brief], 0);
        let run = started["run"].as_str().unwrap().to_string();
        let wt = PathBuf::from(started["worktree"].as_str().unwrap());
        write(&wt.join("src/app.sh"), "#!/bin/sh\necho hello, please\n");
        self.json(&["check", &run], 0);
        self.json(&["submit", &run], 0);
        (run, wt)
    }

    /// `git pull` of the target from the remote.
    pub fn pull(&self) {
        self.env.git(&["pull", "-q", "origin", "main"]);
    }
}

/// How to build a team.
pub struct Options {
    /// One PostgreSQL database for all (else each machine's SQLite).
    pub postgres: bool,
    /// Every machine's key in `.airlock/runners` on `main`.
    pub runners: bool,
    /// Appended to the workflow after `[team] remote = "origin"`.
    pub workflow: String,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            postgres: true,
            runners: true,
            workflow: String::new(),
        }
    }
}

/// The machines, the bare remote and the database.
pub struct Team {
    pub machines: Vec<Machine>,
    pub remote: PathBuf,
    pub db: Database,
    /// Reviewers' SSH keys (`ssh-keygen`), outside every machine's home.
    pub keys: PathBuf,
    _server: tempfile::TempDir,
}

impl Team {
    /// A team of `principals` (at least one) with `opts`.
    pub fn new(principals: &[&str], opts: Options) -> Team {
        let db = testing::shared().database();
        let url = if opts.postgres {
            db.url()
        } else {
            String::new()
        };
        let first = Machine::on(Env::new(), principals[0], &url);
        let server = tempfile::tempdir().unwrap();
        let remote = server.path().join("remote.git");
        let keys = server.path().join("reviewer-keys");
        std::fs::create_dir_all(&keys).unwrap();
        first.env.git(&[
            "clone",
            "-q",
            "--bare",
            &first.env.repo.display().to_string(),
            &remote.display().to_string(),
        ]);
        first
            .env
            .git(&["remote", "add", "origin", &remote.display().to_string()]);
        let mut machines = vec![first];
        for p in &principals[1..] {
            machines.push(Machine::clone_of(&remote, p, &url));
        }
        let a = &machines[0];
        if opts.runners {
            let lines: String = machines
                .iter()
                .map(|m| format!("{} {}\n", m.principal, m.key_line()))
                .collect();
            a.env.write(".airlock/runners", &lines);
        } else {
            for m in &machines {
                m.key_line();
            }
        }
        a.env.write(
            ".airlock/workflow.toml",
            &format!("{WORKFLOW}\n[team]\nremote = \"origin\"\n{}", opts.workflow),
        );
        a.env.git(&["add", "-A"]);
        a.env.git(&["commit", "-q", "-m", "team mode"]);
        a.env.git(&["push", "-q", "origin", "main"]);
        for m in &machines[1..] {
            m.pull();
        }
        Team {
            machines,
            remote,
            db,
            keys,
            _server: server,
        }
    }

    pub fn m(&self, i: usize) -> &Machine {
        &self.machines[i]
    }

    /// Another machine joining now (its key not in runners unless added).
    pub fn join(&self, principal: &str) -> Machine {
        let url = self.machines[0].url.clone();
        let m = Machine::clone_of(&self.remote, principal, &url);
        m.key_line();
        m
    }

    /// A reviewer's ed25519 key made by ssh-keygen: (private key, public line).
    pub fn reviewer_key(&self, name: &str) -> (PathBuf, String) {
        let key = self.keys.join(name);
        if !key.exists() {
            let out = Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
                .arg(&key)
                .output()
                .unwrap();
            assert!(out.status.success(), "{out:?}");
        }
        let public = std::fs::read_to_string(key.with_extension("pub")).unwrap();
        (key, public.trim().to_string())
    }

    /// Commits `files` (path, text) on machine 0's `main`, pushes them and
    /// has every other machine pull.
    pub fn commit_rules(&self, files: &[(&str, &str)]) {
        let a = &self.machines[0];
        for (path, text) in files {
            a.env.write(path, text);
        }
        a.env.git(&["add", "-A"]);
        a.env.git(&["commit", "-q", "-m", "rules"]);
        a.env.git(&["push", "-q", "origin", "main"]);
        for m in &self.machines[1..] {
            m.pull();
        }
    }

    /// `git ARGS` in the bare remote (asserting success).
    pub fn remote_git(&self, args: &[&str]) -> String {
        let mut full = vec!["--git-dir", self.remote.to_str().unwrap()];
        full.extend_from_slice(args);
        self.machines[0].env.git_in(&self.remote, &full)
    }

    /// Where `name` points on the remote, if it exists.
    pub fn remote_ref(&self, name: &str) -> Option<String> {
        let out = Command::new("git")
            .args(["--git-dir", self.remote.to_str().unwrap()])
            .args(["rev-parse", "--verify", "--quiet", name])
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .output()
            .unwrap();
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    /// Every ref of the remote, `OID NAME` a line: compare before and after.
    pub fn remote_refs(&self) -> String {
        self.remote_git(&["for-each-ref", "--format=%(objectname) %(refname)"])
    }

    /// As someone with push rights to the remote and no key airlock trusts:
    /// a commit with `files` (name, bytes) in its tree and `parents`, pushed
    /// forced to `name` on the remote; returns the commit.
    pub fn force_push(&self, name: &str, files: &[(&str, &[u8])], parents: &[&str]) -> String {
        let a = &self.machines[0].env;
        let dir = tempfile::tempdir().unwrap();
        let work = dir.path().join("forge");
        let remote = self.remote.display().to_string();
        a.git_in(
            dir.path(),
            &["init", "-q", "-b", "forge", &work.display().to_string()],
        );
        for (file, bytes) in files {
            let path = work.join(file);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, bytes).unwrap();
        }
        a.git_in(&work, &["add", "-A"]);
        let tree = a.git_in(&work, &["write-tree"]);
        a.git_in(
            &work,
            &["fetch", "-q", &remote, "+refs/*:refs/remote-all/*"],
        );
        let mut args = vec!["commit-tree", tree.as_str(), "-m", "forged"];
        for p in parents {
            args.extend(["-p", p]);
        }
        let commit = a.git_in(&work, &args);
        a.git_in(
            &work,
            &["push", "-q", "-f", &remote, &format!("{commit}:{name}")],
        );
        commit
    }

    /// Moves `name` on the remote to `to` (an object already there), as a
    /// pusher would with `git push -f`.
    pub fn remote_set(&self, name: &str, to: &str) {
        self.remote_git(&["update-ref", name, to]);
    }

    /// The remote's blob `REV:PATH`.
    pub fn remote_blob(&self, spec: &str) -> Vec<u8> {
        let out = Command::new("git")
            .args(["--git-dir", self.remote.to_str().unwrap()])
            .args(["cat-file", "blob", spec])
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .output()
            .unwrap();
        assert!(out.status.success(), "{spec}");
        out.stdout
    }

    /// Runs `sql` as the database superuser, the guard triggers dropped.
    pub fn superuser(&self, sql: &str) {
        let mut admin = self.db.admin();
        admin
            .batch_execute(
                "DROP TRIGGER IF EXISTS events_no_update ON events;
                 DROP TRIGGER IF EXISTS log_leaves_no_update ON log_leaves;",
            )
            .unwrap();
        admin.batch_execute(sql).unwrap();
    }

    /// Rows of `sql` (one text column) as the superuser.
    pub fn superuser_texts(&self, sql: &str) -> Vec<String> {
        self.db
            .admin()
            .query(sql, &[])
            .unwrap()
            .iter()
            .map(|r| r.get::<_, String>(0))
            .collect()
    }

    /// The database's rows that matter to an attack (runs, events, chains,
    /// leases, log leaves), as text: compare before and after.
    pub fn rows(&self) -> String {
        let mut text = String::new();
        let schema: bool = self
            .db
            .admin()
            .query_one("SELECT to_regclass('runs') IS NOT NULL", &[])
            .unwrap()
            .get(0);
        if !schema {
            return text;
        }
        for sql in [
            "SELECT id || ' ' || state FROM runs ORDER BY id",
            "SELECT seq::text || ' ' || hash FROM events ORDER BY seq",
            "SELECT chain || ' ' || n::text || ' ' || hash FROM chains ORDER BY chain",
            "SELECT count(*)::text FROM log_leaves",
        ] {
            for row in self.superuser_texts(sql) {
                text.push_str(&row);
                text.push('\n');
            }
        }
        text
    }
}
