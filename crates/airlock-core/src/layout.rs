//! Where things live: the main checkout, its git directory, airlock's local
//! state (ledger, worktrees, logs, proofs) and the signing key.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::git;

pub const WORKFLOW_FILE: &str = ".airlock/workflow.toml";
pub const SECRETS_ALLOW_FILE: &str = ".airlock/secrets-allow";

#[derive(Debug, Clone)]
pub struct Layout {
    /// The main checkout's top directory.
    pub root: PathBuf,
    /// The main repository's git directory.
    pub git_dir: PathBuf,
    /// Where its objects are (differs from `git_dir/objects` in a linked worktree).
    pub objects_dir: PathBuf,
    /// airlock's local state for this repository.
    pub state: PathBuf,
    /// Where the signing key lives (outside every repository).
    pub key_dir: PathBuf,
}

impl Layout {
    /// Finds the repository containing `cwd` and the state and key locations
    /// (`AIRLOCK_HOME`, `AIRLOCK_KEY_DIR`, `XDG_CONFIG_HOME`, `HOME`).
    pub fn discover(cwd: &Path) -> Result<Layout> {
        let mut cmd = git::base_command();
        cmd.current_dir(cwd).args([
            "rev-parse",
            "--path-format=absolute",
            "--show-toplevel",
            "--absolute-git-dir",
            "--git-common-dir",
        ]);
        let (ok, out, _) = git::exec(&mut cmd, None)?;
        if !ok {
            return Err(Error::NotARepository(cwd.to_path_buf()));
        }
        let text = String::from_utf8_lossy(&out);
        let mut lines = text.lines();
        let (Some(root), Some(git_dir), Some(common_dir)) =
            (lines.next(), lines.next(), lines.next())
        else {
            return Err(Error::NotARepository(cwd.to_path_buf()));
        };
        let root = PathBuf::from(root);
        if let Some(main) = enclosing_main_checkout(&root) {
            return Err(Error::refused(
                format!(
                    "{} is a run's worktree, not a repository airlock manages",
                    root.display()
                ),
                vec![
                    "airlock commands act on the main checkout; a run cannot drive its own review"
                        .into(),
                ],
                format!("run airlock from {}", main.display()),
            ));
        }
        let state = match std::env::var_os("AIRLOCK_HOME") {
            Some(home) if !home.is_empty() => {
                let digest = hex::encode(Sha256::digest(root.as_os_str().as_encoded_bytes()));
                let name = root
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                PathBuf::from(home).join(format!("{name}-{}", &digest[..12]))
            }
            _ => root.join(".airlock").join("local"),
        };
        Ok(Layout {
            root,
            git_dir: PathBuf::from(git_dir),
            objects_dir: PathBuf::from(common_dir).join("objects"),
            state,
            key_dir: key_dir(),
        })
    }

    pub fn workflow_path(&self) -> PathBuf {
        self.root.join(WORKFLOW_FILE)
    }
    pub fn db_path(&self) -> PathBuf {
        self.state.join("ledger.db")
    }
    pub fn runs_dir(&self) -> PathBuf {
        self.state.join("runs")
    }
    pub fn run_dir(&self, id: &str) -> PathBuf {
        self.runs_dir().join(id)
    }
    pub fn worktree(&self, id: &str) -> PathBuf {
        self.run_dir(id).join("worktree")
    }
    pub fn run_index(&self, id: &str) -> PathBuf {
        self.run_dir(id).join("index")
    }
    pub fn logs_dir(&self, id: &str) -> PathBuf {
        self.run_dir(id).join("logs")
    }
    pub fn proofs_dir(&self) -> PathBuf {
        self.state.join("proofs")
    }
    pub fn promote_lock(&self) -> PathBuf {
        self.state.join("promote.lock")
    }
    pub fn git(&self) -> git::Git {
        git::Git::new(&self.git_dir)
    }
    /// Trusted view of a run's worktree through airlock's private index.
    pub fn run_git(&self, id: &str) -> git::Git {
        self.git()
            .with_tree(&self.worktree(id), &self.run_index(id))
    }

    /// The tree of what is in a run's worktree now. Snapshots of one run are
    /// serialised (an agent may run commands in parallel), and an index lock
    /// left by a killed process is cleared, since under our lock none is live.
    pub fn snapshot(&self, id: &str) -> Result<String> {
        let _lock = crate::lock::FileLock::acquire(&self.run_dir(id).join("snapshot.lock"), true)?;
        let stale = self.run_dir(id).join("index.lock");
        if stale.exists() {
            let _ = std::fs::remove_file(&stale);
        }
        self.run_git(id).snapshot()
    }
}

/// `…/.airlock/local/runs/<id>/worktree` → the main checkout above it.
fn enclosing_main_checkout(root: &Path) -> Option<PathBuf> {
    let mut parts = root.ancestors();
    let worktree = parts.next()?;
    let run = parts.next()?;
    let runs = parts.next()?;
    let local = parts.next()?;
    let dot_airlock = parts.next()?;
    (worktree.file_name()? == "worktree"
        && run.file_name().is_some()
        && runs.file_name()? == "runs"
        && local.file_name()? == "local"
        && dot_airlock.file_name()? == ".airlock")
        .then(|| dot_airlock.parent().map(Path::to_path_buf))
        .flatten()
}

pub fn key_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("AIRLOCK_KEY_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    if let Some(dir) = std::env::var_os("XDG_CONFIG_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir).join("airlock");
    }
    let home = std::env::var_os("HOME").unwrap_or_else(|| "/".into());
    PathBuf::from(home).join(".config").join("airlock")
}

/// Writes a file atomically: a temporary sibling, fsync, rename.
pub fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    use std::io::Write;
    let wrap = |source| Error::Write {
        path: path.to_path_buf(),
        source,
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(wrap)?;
    let tmp = dir.join(format!(
        ".{}.tmp{}",
        path.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        std::process::id()
    ));
    let mut file = std::fs::File::create(&tmp).map_err(wrap)?;
    file.write_all(data).map_err(wrap)?;
    file.sync_all().map_err(wrap)?;
    std::fs::rename(&tmp, path).map_err(wrap)
}

pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}
