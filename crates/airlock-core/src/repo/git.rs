//! Runs git for airlock's own (trusted) operations.
//!
//! Every invocation ignores system and global config, disables hooks and
//! fsmonitor, and never inherits `GIT_*` variables from the caller, so that
//! nothing configured by an agent (or by the machine) is executed.

use std::ffi::OsStr;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::error::{Error, Result};

pub const AIRLOCK_NAME: &str = "airlock";
pub const AIRLOCK_EMAIL: &str = "airlock@localhost";

#[derive(Debug, Clone)]
pub struct Git {
    git_dir: PathBuf,
    work_tree: Option<PathBuf>,
    index: Option<PathBuf>,
}

impl Git {
    /// Git over a repository directory (`.git`), with no work tree.
    pub fn new(git_dir: &Path) -> Git {
        Git {
            git_dir: git_dir.to_path_buf(),
            work_tree: None,
            index: None,
        }
    }

    /// The same repository, looking at `work_tree` through a private index.
    pub fn with_tree(&self, work_tree: &Path, index: &Path) -> Git {
        Git {
            git_dir: self.git_dir.clone(),
            work_tree: Some(work_tree.to_path_buf()),
            index: Some(index.to_path_buf()),
        }
    }

    /// The same repository, with its own work tree and index (the main checkout).
    pub fn with_checkout(&self, work_tree: &Path) -> Git {
        Git {
            git_dir: self.git_dir.clone(),
            work_tree: Some(work_tree.to_path_buf()),
            index: None,
        }
    }

    pub fn git_dir(&self) -> &Path {
        &self.git_dir
    }

    pub fn command<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = base_command();
        cmd.env("GIT_DIR", &self.git_dir);
        if let Some(tree) = &self.work_tree {
            cmd.env("GIT_WORK_TREE", tree).current_dir(tree);
        } else {
            cmd.current_dir(&self.git_dir);
        }
        if let Some(index) = &self.index {
            cmd.env("GIT_INDEX_FILE", index);
        }
        cmd.args(args);
        cmd
    }

    /// Runs git and returns stdout; a non-zero exit is an error carrying stderr.
    pub fn run<S: AsRef<OsStr>>(&self, args: &[S]) -> Result<Vec<u8>> {
        self.run_with_input(args, None)
    }

    pub fn run_with_input<S: AsRef<OsStr>>(
        &self,
        args: &[S],
        input: Option<&[u8]>,
    ) -> Result<Vec<u8>> {
        let (ok, stdout, stderr) = self.try_run(args, input)?;
        if ok {
            Ok(stdout)
        } else {
            Err(Error::Git {
                args: describe_args(args),
                message: String::from_utf8_lossy(&stderr).trim().to_string(),
            })
        }
    }

    /// Runs git, returning (success, stdout, stderr) without judging the exit.
    pub fn try_run<S: AsRef<OsStr>>(
        &self,
        args: &[S],
        input: Option<&[u8]>,
    ) -> Result<(bool, Vec<u8>, Vec<u8>)> {
        let mut cmd = self.command(args);
        exec(&mut cmd, input)
    }

    /// stdout as trimmed text.
    pub fn text<S: AsRef<OsStr>>(&self, args: &[S]) -> Result<String> {
        Ok(String::from_utf8_lossy(&self.run(args)?).trim().to_string())
    }

    pub fn rev_parse(&self, rev: &str) -> Result<Option<String>> {
        let spec = format!("{rev}^{{commit}}");
        let (ok, out, _) = self.try_run(
            &[
                "rev-parse",
                "--verify",
                "--quiet",
                "--end-of-options",
                &spec,
            ],
            None,
        )?;
        Ok(ok.then(|| String::from_utf8_lossy(&out).trim().to_string()))
    }

    pub fn ref_value(&self, refname: &str) -> Result<Option<String>> {
        let (ok, out, _) = self.try_run(&["rev-parse", "--verify", "--quiet", refname], None)?;
        Ok(ok.then(|| String::from_utf8_lossy(&out).trim().to_string()))
    }

    pub fn tree_of(&self, commit: &str) -> Result<String> {
        self.text(&["rev-parse", &format!("{commit}^{{tree}}")])
    }

    pub fn object_exists(&self, id: &str) -> Result<bool> {
        Ok(self.try_run(&["cat-file", "-e", id], None)?.0)
    }

    /// Stages the whole work tree into the private index and writes its tree.
    pub fn snapshot(&self) -> Result<String> {
        self.run(&["add", "--all", "--", "."])?;
        self.text(&["write-tree"])
    }

    /// A fresh checkout of `rev` in `dir` (emptied first) through the
    /// private index `index`: a scratch copy of a commit to run something in.
    pub fn scratch_checkout(&self, dir: &Path, index: &Path, rev: &str) -> Result<()> {
        self.scratch_checkout_without(dir, index, rev, &[])
    }

    /// [`Git::scratch_checkout`], with the paths a brief forbids reading
    /// left out of `dir` (see [`Git::checkout_without`]).
    pub fn scratch_checkout_without(
        &self,
        dir: &Path,
        index: &Path,
        rev: &str,
        forbid_read: &[String],
    ) -> Result<()> {
        let _ = std::fs::remove_dir_all(dir);
        let _ = std::fs::remove_file(index);
        std::fs::create_dir_all(dir).map_err(|source| Error::Write {
            path: dir.to_path_buf(),
            source,
        })?;
        self.with_tree(dir, index)
            .checkout_without(rev, forbid_read)
    }

    /// Checks `rev` out into this view's work tree and index, never writing
    /// a file at a path `forbid_read` matches ([`forbidden`]): such entries
    /// stay in the index, flagged `skip-worktree`, so the tree's snapshots
    /// keep them unchanged, but their content is never on disk, where a
    /// rename or a `chmod` could have shown it to a command.
    pub fn checkout_without(&self, rev: &str, forbid_read: &[String]) -> Result<()> {
        if forbid_read.is_empty() {
            self.run(&["read-tree", "--reset", "-u", rev])?;
            return Ok(());
        }
        let globs = crate::globs::Globs::new(forbid_read);
        self.run(&["read-tree", "--reset", rev])?;
        let listed = self.run(&["ls-files", "-z"])?;
        let (mut left_out, mut written) = (Vec::new(), Vec::new());
        for path in listed.split(|b| *b == 0).filter(|p| !p.is_empty()) {
            let list = if forbidden(&globs, &String::from_utf8_lossy(path)) {
                &mut left_out
            } else {
                &mut written
            };
            list.extend_from_slice(path);
            list.push(0);
        }
        if !left_out.is_empty() {
            self.run_with_input(
                &["update-index", "--skip-worktree", "-z", "--stdin"],
                Some(&left_out),
            )?;
        }
        if !written.is_empty() {
            self.run_with_input(
                &["checkout-index", "-f", "-u", "-z", "--stdin"],
                Some(&written),
            )?;
        }
        Ok(())
    }

    /// Creates a commit with airlock as author and committer.
    pub fn commit_tree(&self, tree: &str, parents: &[&str], message: &str) -> Result<String> {
        self.commit_tree_by(tree, parents, message, &airlock_identity())
    }

    /// Creates a commit by `author`, with airlock as committer: the change
    /// is the user's, made into a commit by airlock.
    pub fn commit_tree_by(
        &self,
        tree: &str,
        parents: &[&str],
        message: &str,
        author: &Identity,
    ) -> Result<String> {
        let mut args = vec!["commit-tree".to_string(), tree.to_string()];
        for p in parents {
            args.push("-p".into());
            args.push(p.to_string());
        }
        let mut cmd = self.command(&args);
        cmd.env("GIT_AUTHOR_NAME", &author.name)
            .env("GIT_AUTHOR_EMAIL", &author.email);
        let (ok, out, err) = exec(&mut cmd, Some(message.as_bytes()))?;
        if !ok {
            return Err(Error::Git {
                args: describe_args(&args),
                message: String::from_utf8_lossy(&err).trim().to_string(),
            });
        }
        Ok(String::from_utf8_lossy(&out).trim().to_string())
    }
}

/// Whether a brief's `data.forbid_read` covers `path`: a pattern matches it
/// or one of the directories it is in (`config` forbids `config/prod.key`).
pub fn forbidden(globs: &crate::globs::Globs, path: &str) -> bool {
    let mut prefix = path;
    loop {
        if globs.is_match(prefix) {
            return true;
        }
        match prefix.rfind('/') {
            Some(cut) => prefix = &prefix[..cut],
            None => return false,
        }
    }
}

/// A git command with a clean, hermetic environment.
pub fn base_command() -> Command {
    let mut cmd = Command::new("git");
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("GIT_") {
            cmd.env_remove(&key);
        }
    }
    cmd.env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_OPTIONAL_LOCKS", "0")
        .env("GIT_AUTHOR_NAME", AIRLOCK_NAME)
        .env("GIT_AUTHOR_EMAIL", AIRLOCK_EMAIL)
        .env("GIT_COMMITTER_NAME", AIRLOCK_NAME)
        .env("GIT_COMMITTER_EMAIL", AIRLOCK_EMAIL)
        .env("LC_ALL", "C")
        .args([
            "-c",
            "core.hooksPath=/dev/null",
            "-c",
            "core.fsmonitor=false",
            "-c",
            "core.untrackedCache=false",
            "-c",
            "commit.gpgSign=false",
            "-c",
            "core.quotePath=false",
        ]);
    cmd
}

pub fn exec(cmd: &mut Command, input: Option<&[u8]>) -> Result<(bool, Vec<u8>, Vec<u8>)> {
    cmd.stdin(if input.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(Error::GitMissing)?;
    if let Some(data) = input {
        let mut stdin = child.stdin.take().expect("stdin was piped");
        let data = data.to_vec();
        // Write on a thread so a large input cannot deadlock against stdout.
        let writer = std::thread::spawn(move || {
            let _ = stdin.write_all(&data);
        });
        let out = child.wait_with_output().map_err(Error::GitMissing)?;
        let _ = writer.join();
        return Ok((out.status.success(), out.stdout, out.stderr));
    }
    let out = child.wait_with_output().map_err(Error::GitMissing)?;
    Ok((out.status.success(), out.stdout, out.stderr))
}

fn describe_args<S: AsRef<OsStr>>(args: &[S]) -> String {
    args.iter()
        .take(3)
        .map(|a| a.as_ref().to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// One entry of `git diff-tree --raw`.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct Change {
    pub status: char,
    pub old_mode: String,
    pub new_mode: String,
    pub old_id: String,
    pub new_id: String,
    pub path: String,
}

impl Change {
    pub fn is_symlink(&self) -> bool {
        self.new_mode == "120000"
    }
    pub fn is_gitlink(&self) -> bool {
        self.new_mode == "160000"
    }
}

/// The changes between two trees (or commits), without rename detection.
pub fn diff_tree(git: &Git, from: &str, to: &str) -> Result<Vec<Change>> {
    let out = git.run(&[
        "diff-tree",
        "-r",
        "-z",
        "--no-renames",
        "--raw",
        "--full-index",
        from,
        to,
    ])?;
    parse_raw(&out)
}

fn parse_raw(out: &[u8]) -> Result<Vec<Change>> {
    let mut changes = Vec::new();
    let mut fields = out.split(|b| *b == 0).filter(|f| !f.is_empty());
    while let Some(meta) = fields.next() {
        let meta = String::from_utf8_lossy(meta);
        let meta = meta.trim_start_matches(':');
        let parts: Vec<&str> = meta.split(' ').collect();
        let path = fields
            .next()
            .map(|p| String::from_utf8_lossy(p).into_owned())
            .unwrap_or_default();
        if parts.len() < 5 {
            return Err(Error::Git {
                args: "diff-tree --raw".into(),
                message: format!("unexpected output line `{meta}`"),
            });
        }
        changes.push(Change {
            old_mode: parts[0].into(),
            new_mode: parts[1].into(),
            old_id: parts[2].into(),
            new_id: parts[3].into(),
            status: parts[4].chars().next().unwrap_or('?'),
            path,
        });
    }
    Ok(changes)
}

/// Lines added and deleted in one path; `lines` is `None` for a binary file.
#[derive(Debug, Clone, PartialEq)]
pub struct LineCount {
    pub lines: Option<(u64, u64)>,
    pub path: String,
}

/// Lines added and deleted per path.
pub fn numstat(git: &Git, from: &str, to: &str) -> Result<Vec<LineCount>> {
    let out = git.run(&[
        "diff-tree",
        "-r",
        "-z",
        "--no-renames",
        "--numstat",
        "--no-ext-diff",
        "--no-textconv",
        from,
        to,
    ])?;
    let mut rows = Vec::new();
    for record in out.split(|b| *b == 0).filter(|f| !f.is_empty()) {
        let record = String::from_utf8_lossy(record);
        let mut it = record.splitn(3, '\t');
        let (added, deleted, path) = (it.next(), it.next(), it.next());
        let counts = match (
            added.and_then(|a| a.parse().ok()),
            deleted.and_then(|d| d.parse().ok()),
        ) {
            (Some(a), Some(d)) => Some((a, d)),
            _ => None,
        };
        rows.push(LineCount {
            lines: counts,
            path: path.unwrap_or("").to_string(),
        });
    }
    Ok(rows)
}

/// The full textual diff (for humans), with nothing external run.
pub fn patch(git: &Git, from: &str, to: &str) -> Result<String> {
    let out = git.run(&[
        "diff-tree",
        "-r",
        "-p",
        "--no-renames",
        "--no-ext-diff",
        "--no-textconv",
        "--no-color",
        from,
        to,
    ])?;
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// A git identity: who a commit is by, who decided.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Identity {
    pub name: String,
    pub email: String,
}

impl std::fmt::Display for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} <{}>", self.name, self.email)
    }
}

/// airlock's own identity, used when the user has none configured.
pub fn airlock_identity() -> Identity {
    Identity {
        name: AIRLOCK_NAME.into(),
        email: AIRLOCK_EMAIL.into(),
    }
}

/// The user's git identity, as git itself would take it for a commit in
/// the main repository: `GIT_AUTHOR_NAME`/`GIT_AUTHOR_EMAIL`, else
/// `user.name`/`user.email` from the main repository's config, the
/// user's global and system config (`EMAIL` last for the address).
/// Only `git config --get` runs, which executes nothing; the main
/// repository's config is the user's (no run can write it), and the lane's
/// config is never read. `None` when a name or an address is missing or
/// could not be written into a commit header.
pub fn user_identity(git_dir: &Path) -> Option<Identity> {
    identity_from(|key| user_config(git_dir, key))
}

/// [`user_identity`] from the remembered config ([`remembered_user_config`]).
pub fn remembered_user_identity(git_dir: &Path, key_dir: &Path) -> Option<Identity> {
    identity_from(|key| remembered_user_config(git_dir, key_dir, key))
}

fn identity_from(read: impl Fn(&str) -> Option<String>) -> Option<Identity> {
    let from_env = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
    let name = from_env("GIT_AUTHOR_NAME").or_else(|| read("user.name"))?;
    let email = from_env("GIT_AUTHOR_EMAIL")
        .or_else(|| read("user.email"))
        .or_else(|| from_env("EMAIL"))?;
    let fits = |s: &str| {
        !s.trim().is_empty() && !s.chars().any(|c| c.is_control() || c == '<' || c == '>')
    };
    (fits(&name) && fits(&email)).then(|| Identity {
        name: name.trim().to_string(),
        email: email.trim().to_string(),
    })
}

/// One value of the user's git config as `git config --get` reads it in the
/// main repository (its config, the user's global and system config), with
/// none of git's environment but the user's config locations. Runs nothing
/// but `git config`.
pub fn user_config(git_dir: &Path, key: &str) -> Option<String> {
    let mut cmd = Command::new("git");
    // The user's own config locations stay (GIT_CONFIG_GLOBAL,
    // GIT_CONFIG_NOSYSTEM, HOME, XDG_CONFIG_HOME); nothing else of git's
    // environment may point it elsewhere.
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy();
        if k.starts_with("GIT_") && k != "GIT_CONFIG_GLOBAL" && k != "GIT_CONFIG_NOSYSTEM" {
            cmd.env_remove(&*k);
        }
    }
    cmd.env("GIT_DIR", git_dir)
        .current_dir(git_dir)
        .args(["config", "--get", key])
        .stdin(Stdio::null())
        .stderr(Stdio::null());
    let out = cmd.output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// The SSH key git signs with for the user of the repository at `git_dir`
/// (`user.signingkey` when `gpg.format` is `ssh`; a `key::` literal or a
/// path, `~/` the home): the default key of a signed approval, and one the
/// sandbox hides from commands.
pub fn ssh_signing_key(git_dir: &Path, key_dir: &Path) -> Option<PathBuf> {
    let read = |key: &str| remembered_user_config(git_dir, key_dir, key);
    let format = read("gpg.format")?;
    if format != "ssh" {
        return None;
    }
    let key = read("user.signingkey")?;
    let key = key.strip_prefix("key::").map(str::to_string).unwrap_or(key);
    let path = match key.strip_prefix("~/") {
        Some(rest) => PathBuf::from(std::env::var_os("HOME")?).join(rest),
        None => PathBuf::from(key),
    };
    Some(path)
}

/// [`user_config`], remembered in the key directory (outside every
/// repository, hidden from every sandbox) beside a stamp of the config
/// files git reads for it: a `git config` process costs about 1.3 ms, and
/// every command asks for the user's identity and `exec` for the signing
/// key it hides. A changed file's stamp drops the answers. An answer is
/// remembered only while every file was last written well before it was
/// asked ([`stamp::FileStamp::settled_by`]), so that a later write shows in
/// the stamp; a config that includes other files is asked every time, as
/// its stamp cannot cover them.
pub fn remembered_user_config(git_dir: &Path, key_dir: &Path, key: &str) -> Option<String> {
    use std::collections::BTreeMap;
    #[derive(serde::Serialize, serde::Deserialize)]
    struct Remembered {
        stamp: ConfigStamp,
        values: BTreeMap<String, Option<String>>,
    }
    let Some(stamp) = config_stamp(git_dir) else {
        return user_config(git_dir, key);
    };
    let path = {
        use sha2::{Digest, Sha256};
        let digest = hex::encode(Sha256::digest(git_dir.as_os_str().as_encoded_bytes()));
        key_dir
            .join("git-config")
            .join(format!("{}.json", &digest[..24]))
    };
    let mut known = std::fs::read(&path)
        .ok()
        .and_then(|bytes| serde_json::from_slice::<Remembered>(&bytes).ok())
        .filter(|known| known.stamp == stamp)
        .unwrap_or(Remembered {
            stamp,
            values: BTreeMap::new(),
        });
    if let Some(value) = known.values.get(key) {
        return value.clone();
    }
    let asked = std::time::SystemTime::now();
    let value = user_config(git_dir, key);
    let settled = known
        .stamp
        .files
        .iter()
        .all(|(_, file)| file.as_ref().is_none_or(|f| f.settled_by(asked)));
    known.values.insert(key.to_string(), value.clone());
    // Best effort: without it the next command asks git again.
    if settled
        && let Ok(bytes) = serde_json::to_vec(&known)
        && std::os::unix::fs::DirBuilderExt::mode(std::fs::DirBuilder::new().recursive(true), 0o700)
            .create(path.parent().unwrap_or(key_dir))
            .is_ok()
    {
        // Renamed into place whole; not synced (a cache, asked again if lost).
        let part = path.with_extension(format!("{}.part", std::process::id()));
        if std::fs::write(&part, &bytes).is_err() || std::fs::rename(&part, &path).is_err() {
            let _ = std::fs::remove_file(&part);
        }
    }
    value
}

/// What [`user_config`]'s answers depend on: whether git reads the
/// system's config, and the files it reads (the repository's, the user's
/// global ones, the system's, as [`user_config`] leaves git's
/// environment), each stamped (`None`: absent, or `/dev/null`).
#[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
struct ConfigStamp {
    system: bool,
    files: Vec<(PathBuf, Option<super::stamp::FileStamp>)>,
}

/// The [`ConfigStamp`] of the files git reads now; `None` when one of them
/// includes others, or is neither a file nor `/dev/null`.
fn config_stamp(git_dir: &Path) -> Option<ConfigStamp> {
    let env = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
    let mut paths = vec![git_dir.join("config"), git_dir.join("config.worktree")];
    match env("GIT_CONFIG_GLOBAL") {
        Some(global) => paths.push(global.into()),
        None => {
            let home = env("HOME").map(PathBuf::from);
            match env("XDG_CONFIG_HOME") {
                Some(xdg) => paths.push(PathBuf::from(xdg).join("git/config")),
                None => paths.extend(home.as_ref().map(|h| h.join(".config/git/config"))),
            }
            paths.extend(home.map(|h| h.join(".gitconfig")));
        }
    }
    let system = env("GIT_CONFIG_NOSYSTEM").is_none();
    if system {
        paths.push("/etc/gitconfig".into());
    }
    let mut files = Vec::with_capacity(paths.len());
    for path in paths {
        let stamp = match std::fs::metadata(&path) {
            Ok(meta) if meta.is_file() => {
                let text = std::fs::read(&path).ok()?;
                if text.windows(7).any(|w| w.eq_ignore_ascii_case(b"include")) {
                    return None;
                }
                Some(super::stamp::FileStamp::of(&meta))
            }
            // An empty config by name (tests, scripts), as good as none (its
            // device's times move with every write to it).
            Ok(_) if path == Path::new("/dev/null") => None,
            // A directory, another device: not something to stamp.
            Ok(_) => return None,
            Err(_) => None,
        };
        files.push((path, stamp));
    }
    Some(ConfigStamp { system, files })
}
