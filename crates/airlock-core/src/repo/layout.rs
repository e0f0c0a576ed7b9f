//! Where things live: the main checkout, its git directory, airlock's local
//! state (ledger, worktrees, logs, proofs) and the signing key.

use airlock_scan::Fingerprint;
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
        // Where the process really is, not where git says the top level is:
        // a lane's own config (`core.worktree`) can make git report the main
        // checkout while the repository it found is the lane's.
        let real_cwd = std::fs::canonicalize(cwd).ok();
        if let Some(run) = real_cwd.as_deref().and_then(enclosing_run) {
            return Err(run.refusal(real_cwd.as_deref().unwrap_or(cwd), "the current directory"));
        }
        let Found {
            root,
            git_dir,
            common_dir,
        } = match find_plain_repository(cwd) {
            Some(found) => found,
            None => ask_git(cwd)?.ok_or_else(|| Error::NotARepository(cwd.to_path_buf()))?,
        };
        // The repository found must not be a lane's, however git got there.
        for (path, what) in [
            (&git_dir, "the git directory found"),
            (&common_dir, "the git directory found"),
            (&root, "the top level git reports"),
        ] {
            let real = std::fs::canonicalize(path).unwrap_or_else(|_| path.clone());
            if let Some(run) = enclosing_run(&real) {
                return Err(run.refusal(&real, what));
            }
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
        // And nothing of it lies in this repository's own runs: the state
        // belongs to the main repository, never to a run's worktree.
        let runs = std::fs::canonicalize(state.join("runs")).ok();
        if let Some(runs) = runs {
            for (path, what) in [
                (real_cwd.as_ref(), "the current directory"),
                (Some(&git_dir), "the git directory found"),
                (Some(&common_dir), "the git directory found"),
            ] {
                let Some(path) = path else { continue };
                let real = std::fs::canonicalize(path).unwrap_or_else(|_| path.clone());
                if let Ok(rest) = real.strip_prefix(&runs)
                    && let Some(id) = rest.components().next()
                {
                    let run = RunDir {
                        dir: runs.join(id),
                        main: Some(root.clone()),
                    };
                    return Err(run.refusal(&real, what));
                }
            }
        }
        Ok(Layout {
            root,
            git_dir,
            objects_dir: common_dir.join("objects"),
            state,
            key_dir: crate::keydir::checked(key_dir())?,
        })
    }

    pub fn workflow_path(&self) -> PathBuf {
        self.root.join(WORKFLOW_FILE)
    }
    pub fn db_path(&self) -> PathBuf {
        self.store_paths().db_path()
    }
    /// Where the store keeps this repository's state.
    pub fn store_paths(&self) -> airlock_store::Paths {
        airlock_store::Paths {
            state: self.state.clone(),
            key_dir: self.key_dir.clone(),
        }
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
    /// The last git config airlock wrote for a run's lane repository
    /// ([`crate::lane::disarm`]), kept where the run cannot write.
    pub fn lane_config_copy(&self, id: &str) -> PathBuf {
        self.run_dir(id).join("lane.config")
    }
    /// What the last walks that disarmed a run's worktree and its `/tmp`
    /// saw ([`crate::lane::disarm`]), kept where the run cannot write.
    pub fn lane_walk_caches(&self, id: &str) -> [PathBuf; 2] {
        let dir = self.run_dir(id);
        [dir.join("lane.walk"), dir.join("tmp.walk")]
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

    /// A fingerprint of what is in a run's worktree now, in process: the
    /// files git would see, with digests kept from the run's last scan where
    /// their `lstat` data says they cannot have changed.
    pub fn scan(&self, id: &str, cache: Option<&Fingerprint>) -> Result<Fingerprint> {
        let loaded;
        let cache = match cache {
            Some(c) => Some(c),
            None => {
                loaded = Fingerprint::load(&self.scan_cache(id));
                loaded.as_ref()
            }
        };
        // The project's exclude file, as git reads it for the run's snapshots
        // (a linked checkout keeps it in the common directory).
        let mut excludes = vec![self.git_dir.join("info/exclude")];
        if let Some(common) = self.objects_dir.parent().filter(|c| *c != self.git_dir) {
            excludes.push(common.join("info/exclude"));
        }
        let options = airlock_scan::Options { excludes };
        Ok(airlock_scan::scan(&self.worktree(id), cache, &options)?)
    }

    /// Keeps a fingerprint as the cache for the run's next scan.
    pub fn keep_scan(&self, id: &str, fingerprint: &Fingerprint) -> Result<()> {
        Ok(fingerprint.save(&self.scan_cache(id))?)
    }

    fn scan_cache(&self, id: &str) -> PathBuf {
        self.run_dir(id).join("scan.cache")
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

/// Where a repository is: what `git rev-parse --path-format=absolute
/// --show-toplevel --absolute-git-dir --git-common-dir` prints.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Found {
    root: PathBuf,
    git_dir: PathBuf,
    common_dir: PathBuf,
}

/// Asks git where the repository containing `cwd` is; `None` when git says
/// there is none.
fn ask_git(cwd: &Path) -> Result<Option<Found>> {
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
        return Ok(None);
    }
    let text = String::from_utf8_lossy(&out);
    let mut lines = text.lines();
    let (Some(root), Some(git_dir), Some(common_dir)) = (lines.next(), lines.next(), lines.next())
    else {
        return Ok(None);
    };
    Ok(Some(Found {
        root: PathBuf::from(root),
        git_dir: PathBuf::from(git_dir),
        common_dir: PathBuf::from(common_dir),
    }))
}

/// What [`ask_git`] would answer, without starting git, in the common case
/// only: walking up from `cwd` (resolved, as git's getcwd is) on one
/// filesystem, the first `.git` is a plain directory (not a gitfile, not a
/// symlink, no `commondir`: not a linked worktree) that git would accept as
/// a repository (`HEAD`, `objects`, `refs`), owned like its work tree by
/// the current user, with nothing in its config that moves or changes the
/// work tree (`core.worktree`, `core.bare`, includes, extensions, a format
/// version above 1). Anything else, or any doubt, is `None`: ask git.
fn find_plain_repository(cwd: &Path) -> Option<Found> {
    use std::os::unix::fs::MetadataExt;
    let start = std::fs::canonicalize(cwd).ok()?;
    // git's output is read as UTF-8 lines: keep to paths it renders intact.
    if start.to_str().is_none_or(|s| s.contains('\n')) {
        return None;
    }
    let device = std::fs::metadata(&start).ok()?.dev();
    let euid = rustix::process::geteuid().as_raw();
    for dir in start.ancestors() {
        // Without GIT_DISCOVERY_ACROSS_FILESYSTEM git stops at a mount point.
        if std::fs::metadata(dir).ok()?.dev() != device {
            return None;
        }
        let dot_git = dir.join(".git");
        match std::fs::symlink_metadata(&dot_git) {
            Ok(meta) if meta.is_dir() => {
                let owned = |m: &std::fs::Metadata| m.uid() == euid;
                if !owned(&meta) || !owned(&std::fs::symlink_metadata(dir).ok()?) {
                    return None;
                }
                return plain_git_dir(&dot_git).then(|| Found {
                    root: dir.to_path_buf(),
                    git_dir: dot_git.clone(),
                    common_dir: dot_git,
                });
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                // A directory that is itself a repository (bare, or inside
                // a `.git`): git's answer differs; let it give it.
                if std::fs::symlink_metadata(dir.join("HEAD")).is_ok() {
                    return None;
                }
            }
            // A gitfile (linked worktree, submodule), a symlink, an error.
            _ => return None,
        }
    }
    None
}

/// Whether git would take `dot_git` as the repository of the directory
/// above it, as is.
fn plain_git_dir(dot_git: &Path) -> bool {
    let is_dir =
        |name: &str| std::fs::symlink_metadata(dot_git.join(name)).is_ok_and(|m| m.is_dir());
    if !is_dir("objects") || !is_dir("refs") {
        return false;
    }
    match std::fs::symlink_metadata(dot_git.join("commondir")) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        _ => return false,
    }
    if !std::fs::symlink_metadata(dot_git.join("HEAD")).is_ok_and(|m| m.is_file()) {
        return false;
    }
    let Ok(head) = std::fs::read_to_string(dot_git.join("HEAD")) else {
        return false;
    };
    let head = head.trim_end();
    let detached = matches!(head.len(), 40 | 64) && head.bytes().all(|b| b.is_ascii_hexdigit());
    if !detached && !head.starts_with("ref: refs/") {
        return false;
    }
    let Ok(config) = std::fs::read_to_string(dot_git.join("config")) else {
        return false;
    };
    let config = config.to_ascii_lowercase();
    if ["worktree", "include", "[extensions"]
        .iter()
        .any(|word| config.contains(word))
    {
        return false;
    }
    // Only the spellings `git init` writes (a bare `bare` line means true).
    config.lines().all(|line| {
        let line: String = line.chars().filter(|c| !c.is_whitespace()).collect();
        if line.contains("bare") {
            return line == "bare=false";
        }
        if line.contains("repositoryformatversion") {
            return line == "repositoryformatversion=0" || line == "repositoryformatversion=1";
        }
        true
    })
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

/// A run's directory in some repository's state: `<state>/runs/<id>`.
struct RunDir {
    dir: PathBuf,
    /// The main checkout, when the state is inside it (`.airlock/local`).
    main: Option<PathBuf>,
}

impl RunDir {
    /// Refuses to act from `path` (what it is: `what`), inside this run.
    fn refusal(&self, path: &Path, what: &str) -> Error {
        let worktree = self.dir.join("worktree");
        let id = self
            .dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        Error::refused(
            crate::error::Code::InsideWorktree,
            format!(
                "{} is a run's worktree, not a repository airlock manages",
                worktree.display()
            ),
            vec![
                format!(
                    "{what}, {}, is inside run {id}'s directory",
                    path.display()
                ),
                "a run's repository and its configuration are the agent's: airlock never adopts \
                 them, and a run cannot drive its own review"
                    .into(),
            ],
            match &self.main {
                Some(main) => format!(
                    "run airlock from {} (`cd {}`, or `airlock -C {} …`)",
                    main.display(),
                    main.display(),
                    main.display()
                ),
                None => "run airlock from the main checkout (`cd` there, or `airlock -C <main checkout> …`)".into(),
            },
        )
    }
}

/// The run whose directory holds `real` (a resolved path), found from the
/// path alone, whatever git would say: an ancestor `<state>/runs/<id>` with
/// the run's `brief.toml`, in a state holding a ledger. The state may be
/// anywhere (`AIRLOCK_HOME`); when it is `<main>/.airlock/local`, the main
/// checkout is known too.
fn enclosing_run(real: &Path) -> Option<RunDir> {
    for dir in real.ancestors() {
        // Where the state is hidden (in a run's sandbox), by its shape.
        if let Some(main) = enclosing_main_checkout(dir) {
            return Some(RunDir {
                dir: dir.parent()?.to_path_buf(),
                main: Some(main),
            });
        }
        let Some(runs) = dir.parent() else { continue };
        if runs.file_name() != Some(std::ffi::OsStr::new("runs")) {
            continue;
        }
        let Some(state) = runs.parent() else { continue };
        if !dir.join("brief.toml").is_file() || !state.join("ledger.db").is_file() {
            continue;
        }
        let main = (state.file_name() == Some(std::ffi::OsStr::new("local")))
            .then(|| state.parent())
            .flatten()
            .filter(|a| a.file_name() == Some(std::ffi::OsStr::new(".airlock")))
            .and_then(Path::parent)
            .map(Path::to_path_buf);
        return Some(RunDir {
            dir: dir.to_path_buf(),
            main,
        });
    }
    None
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

/// Writes a file atomically and durably (`airlock_fs::write`), creating
/// its directory first.
pub fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    let wrap = |source| Error::Write {
        path: path.to_path_buf(),
        source,
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(wrap)?;
    airlock_fs::write(path, data).map_err(wrap)
}

pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// 128 random bits, in hex: a command's log files are its own, and a
/// trace is stored once per log (`Store::add_trace`), so two commands must
/// never draw the same name.
pub fn unique_suffix() -> String {
    let mut bytes = [0u8; 16];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut bytes);
    hex::encode(bytes)
}

/// Where the reviewer's last words to the agent are kept for the run's
/// commands: a directory of the run shown read-only in its sandbox (see
/// `confinement::plan`), holding [`FEEDBACK_FILE`]. A copy for the agent to
/// read; the ledger stays the record.
pub fn feedback_dir(layout: &crate::layout::Layout, run_id: &str) -> std::path::PathBuf {
    layout.run_dir(run_id).join("feedback")
}

pub const FEEDBACK_FILE: &str = "feedback.md";

#[cfg(test)]
mod tests {
    use super::*;

    fn git(dir: &Path, args: &[&str]) {
        let mut cmd = git::base_command();
        let out = cmd.current_dir(dir).args(args).output().unwrap();
        assert!(out.status.success(), "git {args:?}: {out:?}");
    }

    fn repo(dir: &Path) {
        std::fs::create_dir_all(dir.join("src/deep")).unwrap();
        std::fs::write(dir.join("src/deep/a.txt"), "a").unwrap();
        git(dir, &["init", "-q", "-b", "main"]);
        git(dir, &["add", "-A"]);
        git(dir, &["commit", "-q", "-m", "one"]);
    }

    /// The fast answer, when there is one, is git's answer.
    fn same_as_git(cwd: &Path) -> Option<Found> {
        let fast = find_plain_repository(cwd);
        let slow = ask_git(cwd).unwrap();
        if let Some(fast) = &fast {
            assert_eq!(Some(fast), slow.as_ref(), "from {}", cwd.display());
        }
        fast
    }

    #[test]
    fn a_plain_repository_is_found_as_git_finds_it() {
        let tmp = tempfile::tempdir().unwrap();
        let base = std::fs::canonicalize(tmp.path()).unwrap();
        let main = base.join("main");
        repo(&main);
        for cwd in [main.clone(), main.join("src"), main.join("src/deep")] {
            let found = same_as_git(&cwd).expect("found without git");
            assert_eq!(found.root, main);
            assert_eq!(found.git_dir, main.join(".git"));
        }
        // Through a symlink: the resolved path, as git reports it.
        std::os::unix::fs::symlink(main.join("src"), base.join("link")).unwrap();
        std::os::unix::fs::symlink(&main, base.join("main-link")).unwrap();
        for cwd in [base.join("link/deep"), base.join("main-link")] {
            let found = same_as_git(&cwd).expect("found without git");
            assert_eq!(found.root, main);
        }
        // A relative path, and a path with `..`.
        assert_eq!(
            same_as_git(&main.join("src/deep/../.."))
                .expect("found")
                .root,
            main
        );
        // A repository inside another: the nearest one, as git does.
        let inner = main.join("src/inner");
        repo(&inner);
        assert_eq!(same_as_git(&inner.join("src")).expect("found").root, inner);
    }

    #[test]
    fn anything_unusual_is_left_to_git() {
        let tmp = tempfile::tempdir().unwrap();
        let base = std::fs::canonicalize(tmp.path()).unwrap();
        let main = base.join("main");
        repo(&main);
        // A linked worktree has a gitfile.
        let linked = base.join("linked");
        git(&main, &["worktree", "add", "-q", linked.to_str().unwrap()]);
        assert_eq!(same_as_git(&linked.join("src")), None);
        let layout = Layout::discover(&linked.join("src")).unwrap();
        let git_says = ask_git(&linked).unwrap().unwrap();
        assert_eq!(layout.root, git_says.root);
        assert_eq!(layout.git_dir, git_says.git_dir);
        assert_eq!(layout.objects_dir, main.join(".git/objects"));
        // Inside the git directory, where the worktree has no top.
        assert_eq!(same_as_git(&main.join(".git/refs")), None);
        // A bare repository.
        let bare = base.join("bare.git");
        git(&base, &["init", "-q", "--bare", bare.to_str().unwrap()]);
        assert_eq!(same_as_git(&bare), None);
        // A configuration that moves the work tree.
        let moved = base.join("moved");
        repo(&moved);
        git(&moved, &["config", "core.worktree", main.to_str().unwrap()]);
        assert_eq!(same_as_git(&moved.join("src")), None);
        // `bare` alone means true.
        let odd = base.join("odd");
        repo(&odd);
        let config = odd.join(".git/config");
        let text = std::fs::read_to_string(&config).unwrap();
        std::fs::write(&config, text.replace("bare = false", "bare")).unwrap();
        assert_eq!(same_as_git(&odd), None);
        // `.git` as a symlink to a directory.
        let via_link = base.join("via-link");
        std::fs::create_dir_all(&via_link).unwrap();
        std::os::unix::fs::symlink(main.join(".git"), via_link.join(".git")).unwrap();
        assert_eq!(same_as_git(&via_link), None);
        // No repository at all (the temporary directory is not in one,
        // unless the machine's /tmp is: then git and the walk agree anyway).
        let none = base.join("none");
        std::fs::create_dir_all(&none).unwrap();
        let _ = same_as_git(&none);
        // A missing directory (git cannot even start there).
        assert_eq!(find_plain_repository(&base.join("missing")), None);
    }
}
