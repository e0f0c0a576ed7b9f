//! A throw-away place to run the real `airlock` binary and real `git`:
//! a temp directory with a private HOME, and a hermetic environment for
//! every process spawned there.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

pub struct Env {
    pub airlock: PathBuf,
    pub dir: tempfile::TempDir,
    pub home: PathBuf,
    pub verbose: bool,
}

impl Env {
    pub fn new(airlock: &Path, tag: &str, verbose: bool) -> Result<Env> {
        let dir = tempfile::Builder::new()
            .prefix(&format!("airlock-bench-{tag}-"))
            .tempdir()
            .context("cannot create a temp directory")?;
        let home = dir.path().join("home");
        std::fs::create_dir_all(&home)?;
        // The identity from a config file, as on a user's machine (not
        // GIT_AUTHOR_*): what airlock pays to learn who acts is measured.
        std::fs::write(
            home.join(".gitconfig"),
            "[user]\n\tname = bench\n\temail = bench@localhost\n",
        )?;
        Ok(Env {
            airlock: airlock.to_path_buf(),
            dir,
            home,
            verbose,
        })
    }

    /// The temp directory, for the caller to delete once nothing is timed any
    /// more: on ext4, creating files soon after deleting many is slow (inode
    /// allocation skips recently deleted inodes), which would land in
    /// whatever is timed next.
    pub fn into_dir(self) -> tempfile::TempDir {
        self.dir
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn say(&self, text: &str) {
        say(self.verbose, text);
    }

    /// A command with nothing of the caller's environment but PATH: private
    /// HOME with its own git config (the identity), no system git config,
    /// fixed locale.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>, cwd: &Path) -> Command {
        let mut cmd = Command::new(program);
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", &self.home)
            .env("GIT_CONFIG_GLOBAL", self.home.join(".gitconfig"))
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("LC_ALL", "C")
            .env("TMPDIR", std::env::temp_dir())
            .current_dir(cwd)
            .stdin(Stdio::null());
        cmd
    }

    pub fn git(&self, cwd: &Path, args: &[&str]) -> Command {
        let mut cmd = self.command("git", cwd);
        cmd.args(args);
        cmd
    }

    pub fn airlock(&self, cwd: &Path, args: &[&str]) -> Command {
        let mut cmd = self.command(&self.airlock, cwd);
        cmd.args(args);
        cmd
    }
}

/// Runs a command to completion, output captured; fails unless it exits 0.
pub fn run(mut cmd: Command) -> Result<Output> {
    let out = cmd
        .output()
        .with_context(|| format!("cannot run {:?}", cmd.get_program()))?;
    if !out.status.success() {
        bail!(
            "{} exited {}:\n{}{}",
            describe(&cmd),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(out)
}

/// [`run`], timed from spawn to exit.
pub fn timed(cmd: Command) -> Result<(Duration, Output)> {
    let t = Instant::now();
    let out = run(cmd)?;
    Ok((t.elapsed(), out))
}

fn describe(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a| a.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Flush dirty pages so earlier iterations' writeback does not land in the
/// next timed region. Never timed.
pub fn sync() {
    let _ = Command::new("sync").status();
}

/// Creates `dirs` × `per_dir` small text files under `root/src`.
pub fn generate_tree(root: &Path, dirs: usize, per_dir: usize) -> Result<()> {
    for d in 0..dirs {
        let dir = root.join("src").join(format!("d{d:03}"));
        std::fs::create_dir_all(&dir)?;
        for f in 0..per_dir {
            std::fs::write(dir.join(format!("f{f:03}.txt")), file_text(d, f, 0))?;
        }
    }
    Ok(())
}

/// The text of generated file (`d`, `f`) in edit round `round` (0: original).
pub fn file_text(d: usize, f: usize, round: usize) -> String {
    format!(
        "round {round}\nfile {d}/{f}\nThe quick brown fox jumps over the lazy dog.\nline four\nline five\n"
    )
}

/// A repository at `root` with `dirs` × `per_dir` files, the given
/// workflow, one commit on `main`, and `airlock init` done (its git-ignore
/// committed too, so the checkout is clean).
pub fn make_repo(
    env: &Env,
    root: &Path,
    dirs: usize,
    per_dir: usize,
    workflow: &str,
) -> Result<()> {
    std::fs::create_dir_all(root.join(".airlock"))?;
    run(env.git(root, &["init", "-q", "-b", "main"]))?;
    generate_tree(root, dirs, per_dir)?;
    std::fs::write(root.join(".airlock/workflow.toml"), workflow)?;
    run(env.git(root, &["add", "-A"]))?;
    run(env.git(root, &["commit", "-q", "-m", "generated"]))?;
    run(env.airlock(root, &["init"]))?;
    run(env.git(root, &["add", "-A"]))?;
    run(env.git(root, &["commit", "-q", "-m", "airlock init"]))?;
    Ok(())
}

/// A brief touching `src/**` and needing `checks`, written outside the repository.
pub fn write_brief(path: &Path, title: &str, checks: &[&str]) -> Result<()> {
    let checks = checks
        .iter()
        .map(|c| format!("\"{c}\""))
        .collect::<Vec<_>>()
        .join(", ");
    std::fs::write(
        path,
        format!(
            "title = \"{title}\"\nobjective = \"benchmark {title}\"\ntouch = [\"src/**\"]\nchecks = [{checks}]\nrollback = \"revert the merge commit\"\n"
        ),
    )?;
    Ok(())
}

/// The `run` field of `airlock … --json` output.
pub fn run_id(out: &Output) -> Result<String> {
    let v: serde_json::Value =
        serde_json::from_slice(&out.stdout).context("airlock --json printed no JSON")?;
    v["run"]
        .as_str()
        .map(str::to_string)
        .context("airlock --json printed no run id")
}

/// Progress on stderr, when `--verbose`: for benches that need no [`Env`].
pub fn say(verbose: bool, text: &str) {
    if verbose {
        eprintln!("airlock-bench: {text}");
    }
}
