//! Keeps a run's worktree safe for the user's own git.
//!
//! The lane repository (`<worktree>/.git`) is the agent's: a command in the
//! run can set `core.fsmonitor`, `core.pager`, a filter or an alias there,
//! plant hooks, or create more repositories below the worktree. The user's
//! git (a prompt running `git status` after `cd` into the printed worktree
//! path) would run all of it unsandboxed. So after every command airlock
//! runs in the worktree, [`disarm`] makes every repository in it inert:
//!
//! - a `.git` that is not a directory (a gitfile or a symbolic link, which
//!   could lead to the run's `/tmp` or anywhere else) is removed: git never
//!   tracks `.git`, so no snapshot changes;
//! - every git directory (a `.git` directory, or a directory git would take
//!   as a repository itself: `HEAD`, `objects`, `refs`) has its `config`
//!   rewritten to the few keys that run nothing ([`KEPT`]), and its `hooks`,
//!   `commondir`, `config.worktree` and `worktrees` removed.
//!
//! Everything is done through directory descriptors opened without following
//! symbolic links, so that a command still running in the run (an agent may
//! run several at once) cannot redirect any of it outside the worktree.

use std::ffi::{CStr, OsStr};
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Mode, OFlags};

use crate::error::{Error, Result};

/// Keys of a lane's git configuration that run nothing and that git needs
/// to read its own repository, or that the agent's commits and remotes use.
/// `*` stands for any subsection. Everything else is dropped: `core.fsmonitor`,
/// `core.hooksPath`, `core.pager`, `core.editor`, `core.sshCommand`,
/// `core.askPass`, `core.worktree`, `core.gitProxy`, `filter.*`, `diff.*`,
/// `merge.*`, `alias.*`, `include.*`, `includeIf.*`, `credential.*`,
/// `gpg.*`, `sequence.editor`, `uploadpack.*`, `protocol.*`, …
pub const KEPT: &[&str] = &[
    "core.repositoryformatversion",
    "core.filemode",
    "core.bare",
    "core.logallrefupdates",
    "core.ignorecase",
    "core.precomposeunicode",
    "core.symlinks",
    "extensions.objectformat",
    "extensions.refstorage",
    "extensions.partialclone",
    "user.name",
    "user.email",
    "remote.*.url",
    "remote.*.fetch",
    "remote.*.promisor",
    "remote.*.partialclonefilter",
    "branch.*.remote",
    "branch.*.merge",
];

/// What a `.git` directory must not have, besides an unsafe `config`; the
/// middle two, that move or add to its config, no git directory may have.
const REMOVED: &[&str] = &["hooks", "commondir", "config.worktree", "worktrees"];

/// A config file larger than this is not the agent's settings: replaced
/// whole, with nothing kept.
const MAX_CONFIG: u64 = 1 << 20;

/// A tree deeper than this is refused rather than walked (each level holds
/// a descriptor; nothing below it could be looked at).
const MAX_DEPTH: usize = 256;

/// Makes every repository in `worktree` inert for the user's git (see the
/// module), and in `tmp`, the run's `/tmp` on the host: a link in the
/// worktree can lead there. `clean_copy` is where the last config written
/// for the lane's own `.git` is kept, outside the worktree: a config still
/// equal to it needs no reading.
pub fn disarm_run(worktree: &Path, tmp: &Path, clean_copy: &Path) -> Result<()> {
    disarm(worktree, Some(clean_copy))?;
    match std::fs::symlink_metadata(tmp) {
        Ok(meta) if meta.is_dir() => disarm(tmp, None),
        _ => Ok(()),
    }
}

/// Makes every repository below `worktree` inert; `clean_copy` as in
/// [`disarm_run`], for a worktree.
pub fn disarm(worktree: &Path, clean_copy: Option<&Path>) -> Result<()> {
    let fail = |path: &Path, e: std::io::Error| unsafe_for_git(worktree, path, e);
    let root = rustix::fs::open(
        worktree,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| fail(worktree, e.into()))?;
    let known = clean_copy.and_then(|copy| std::fs::read(copy).ok());
    let mut walk = Walk {
        clean_copy,
        known,
        path: PathBuf::new(),
    };
    walk.directory(&root, 0, false)
        .map_err(|(path, e)| fail(&worktree.join(path), e))
}

/// The refusal when a repository below `dir` could not be made inert.
fn unsafe_for_git(dir: &Path, path: &Path, e: std::io::Error) -> Error {
    Error::refused(
        format!(
            "cannot make {} safe for git: {} failed",
            dir.display(),
            path.display()
        ),
        vec![
            e.to_string(),
            "git settings a command in the run wrote must be removed before anyone's git reads them"
                .into(),
        ],
        format!(
            "do not run git in {}; remove its `.git` directories by hand, or discard the run",
            dir.display()
        ),
    )
}

type WalkResult = std::result::Result<(), (PathBuf, std::io::Error)>;

struct Walk<'a> {
    clean_copy: Option<&'a Path>,
    known: Option<Vec<u8>>,
    /// The directory being walked, relative to the worktree.
    path: PathBuf,
}

struct Entry {
    name: std::ffi::CString,
    kind: FileType,
}

impl Walk<'_> {
    /// Walks the directory open as `dir`; `disarmed` when it is a git
    /// directory already seen to. Every directory is walked, git's own
    /// included: git finds a repository from any directory below.
    fn directory(&mut self, dir: &OwnedFd, depth: usize, disarmed: bool) -> WalkResult {
        if depth > MAX_DEPTH {
            return Err((
                self.path.clone(),
                std::io::Error::other(format!(
                    "more than {MAX_DEPTH} directories deep: not looked at"
                )),
            ));
        }
        let entries = list(dir).map_err(|e| (self.path.clone(), e))?;
        let has = |name: &[u8], kind: FileType| {
            entries
                .iter()
                .any(|e| e.name.as_bytes() == name && e.kind == kind)
        };
        // A directory git would take as a repository by itself.
        if !disarmed
            && has(b"HEAD", FileType::RegularFile)
            && has(b"objects", FileType::Directory)
            && has(b"refs", FileType::Directory)
            && names_a_commit(dir)
        {
            self.git_dir(dir, false, false)?;
        }
        for entry in &entries {
            let name = entry.name.as_c_str();
            if name.to_bytes() == b".git" && entry.kind != FileType::Directory {
                remove(dir, name).map_err(|e| (self.path.join(".git"), e))?;
                continue;
            }
            if entry.kind != FileType::Directory {
                continue;
            }
            self.path.push(OsStr::from_bytes(name.to_bytes()));
            let done = match open_dir(dir, name) {
                Ok(sub) if name.to_bytes() == b".git" => self
                    .git_dir(&sub, true, depth == 0)
                    .and_then(|()| self.directory(&sub, depth + 1, true)),
                Ok(sub) => self.directory(&sub, depth + 1, false),
                // Gone meanwhile: nothing to disarm there.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err((self.path.clone(), e)),
            };
            self.path.pop();
            done?;
        }
        Ok(())
    }

    /// Disarms one git directory: a `.git` directory (`dot_git`; `top` when
    /// it is the lane's own), or a directory git takes as a repository by
    /// itself. Only a `.git` loses its hooks and linked work trees: no
    /// project can hold one, while a bare repository may be test data, and
    /// git runs its hooks only when asked to work in it.
    fn git_dir(&mut self, git: &OwnedFd, dot_git: bool, top: bool) -> WalkResult {
        let at = |name: &str| self.path.join(name);
        owner_may_change(git).map_err(|e| (self.path.clone(), e))?;
        let removed: &[&str] = if dot_git { REMOVED } else { &REMOVED[1..3] };
        for name in removed {
            remove_if_present(git, name).map_err(|e| (at(name), e))?;
        }
        let (current, unusable) = match read_config(git).map_err(|e| (at("config"), e))? {
            Config::Absent => return Ok(()),
            Config::Unusable => (Vec::new(), true),
            Config::Text(text) => {
                if top && self.known.as_ref() == Some(&text) {
                    return Ok(());
                }
                (text, false)
            }
        };
        // Left as it is when nothing in it runs anything: a repository
        // committed as test data keeps its bytes.
        let replacement = match kept_entries(&current) {
            Some((_, false)) if !unusable => None,
            Some((kept, _)) => Some(render(&kept)),
            None => Some(Vec::new()),
        };
        let safe = match replacement {
            Some(safe) => {
                replace_config(git, &safe).map_err(|e| (at("config"), e))?;
                safe
            }
            None => current,
        };
        if top && let Some(copy) = self.clean_copy {
            crate::layout::write_atomic(copy, &safe)
                .map_err(|e| (copy.to_path_buf(), std::io::Error::other(e.to_string())))?;
            self.known = Some(safe);
        }
        Ok(())
    }
}

/// Whether the `HEAD` in `dir` reads as git's: a symbolic ref or an
/// object id (git takes the directory as a repository only then).
fn names_a_commit(dir: &OwnedFd) -> bool {
    let Ok(fd) = rustix::fs::openat(
        dir,
        c"HEAD",
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
        Mode::empty(),
    ) else {
        // Unreadable: git could not tell either, but say yes to be safe.
        return true;
    };
    let mut head = Vec::new();
    if std::fs::File::from(fd)
        .take(256)
        .read_to_end(&mut head)
        .is_err()
    {
        return true;
    }
    let head = String::from_utf8_lossy(&head);
    let head = head.trim_end();
    head.starts_with("ref:") || (head.len() >= 40 && head.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Gives the owner read, write and search on the directory open as `dir`
/// if a command took them away: airlock must change what is in it.
fn owner_may_change(dir: &OwnedFd) -> std::io::Result<()> {
    let mode = rustix::fs::fstat(dir)?.st_mode & 0o7777;
    if mode & 0o700 != 0o700 {
        rustix::fs::fchmod(dir, Mode::from_raw_mode(mode | 0o700))?;
    }
    Ok(())
}

enum Config {
    Absent,
    /// Not a regular file, unreadable, or too large: replaced, nothing kept.
    Unusable,
    Text(Vec<u8>),
}

/// The entries of a directory, with their types (looked up without
/// following links where the listing does not say).
fn list(dir: &OwnedFd) -> std::io::Result<Vec<Entry>> {
    let mut out = Vec::new();
    for entry in rustix::fs::Dir::read_from(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        if matches!(name.to_bytes(), b"." | b"..") {
            continue;
        }
        let kind = match entry.file_type() {
            FileType::Unknown => match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
                Ok(stat) => FileType::from_raw_mode(stat.st_mode),
                Err(_) => continue,
            },
            kind => kind,
        };
        out.push(Entry {
            name: name.to_owned(),
            kind,
        });
    }
    Ok(out)
}

/// Opens the directory `name` in `dir`, never through a link. One that the
/// run made unlistable (`chmod 0311`) is made listable for its owner again:
/// what it holds must be looked at.
fn open_dir(dir: &OwnedFd, name: &CStr) -> std::io::Result<OwnedFd> {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    match rustix::fs::openat(dir, name, flags, Mode::empty()) {
        Err(rustix::io::Errno::ACCESS) => {
            let path_only = rustix::fs::openat(
                dir,
                name,
                OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )?;
            let mode = rustix::fs::fstat(&path_only)?.st_mode & 0o7777;
            // Through the descriptor: the directory itself, whatever its name is now.
            let by_fd = format!(
                "/proc/self/fd/{}",
                std::os::fd::AsRawFd::as_raw_fd(&path_only)
            );
            rustix::fs::chmod(by_fd.as_str(), Mode::from_raw_mode(mode | 0o700))?;
            Ok(rustix::fs::openat(dir, name, flags, Mode::empty())?)
        }
        other => Ok(other?),
    }
}

/// Removes `name` from `dir` whatever it is (a tree is removed whole).
fn remove(dir: &OwnedFd, name: &CStr) -> std::io::Result<()> {
    match rustix::fs::unlinkat(dir, name, AtFlags::empty()) {
        Ok(()) => Ok(()),
        Err(rustix::io::Errno::ISDIR) => {
            let sub = open_dir(dir, name)?;
            owner_may_change(&sub)?;
            for entry in list(&sub)? {
                remove(&sub, &entry.name)?;
            }
            Ok(rustix::fs::unlinkat(dir, name, AtFlags::REMOVEDIR)?)
        }
        Err(e) => Err(e.into()),
    }
}

fn remove_if_present(dir: &OwnedFd, name: &str) -> std::io::Result<()> {
    let name = std::ffi::CString::new(name).map_err(std::io::Error::other)?;
    match remove(dir, &name) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

/// What the git directory's `config` is.
fn read_config(git: &OwnedFd) -> std::io::Result<Config> {
    let opened = rustix::fs::openat(
        git,
        c"config",
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
        Mode::empty(),
    );
    let fd = match opened {
        Ok(fd) => fd,
        Err(rustix::io::Errno::NOENT) => return Ok(Config::Absent),
        Err(rustix::io::Errno::LOOP | rustix::io::Errno::ACCESS | rustix::io::Errno::ISDIR) => {
            return Ok(Config::Unusable);
        }
        Err(e) => return Err(e.into()),
    };
    let stat = rustix::fs::fstat(&fd)?;
    if FileType::from_raw_mode(stat.st_mode) != FileType::RegularFile {
        return Ok(Config::Unusable);
    }
    let mut bytes = Vec::new();
    std::fs::File::from(fd)
        .take(MAX_CONFIG + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_CONFIG {
        return Ok(Config::Unusable);
    }
    Ok(Config::Text(bytes))
}

/// Writes `config` anew beside the old one and renames it over it.
fn replace_config(git: &OwnedFd, text: &[u8]) -> std::io::Result<()> {
    let tmp = format!(".config.airlock-{}", crate::exec::unique_suffix());
    let tmp = std::ffi::CString::new(tmp).map_err(std::io::Error::other)?;
    let fd = rustix::fs::openat(
        git,
        &tmp,
        OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o644),
    )?;
    let mut file = std::fs::File::from(fd);
    let written = file.write_all(text).and_then(|()| file.sync_all());
    let renamed = written.and_then(|()| {
        match rustix::fs::renameat(git, &tmp, git, c"config") {
            // A directory named `config`: it goes first.
            Err(rustix::io::Errno::ISDIR) | Err(rustix::io::Errno::NOTEMPTY) => {
                remove(git, c"config")?;
                Ok(rustix::fs::renameat(git, &tmp, git, c"config")?)
            }
            other => Ok(other?),
        }
    });
    if renamed.is_err() {
        let _ = rustix::fs::unlinkat(git, &tmp, AtFlags::empty());
    }
    renamed
}

/// The entries of a config text that [`KEPT`] allows, as git reads them
/// (no includes followed), and whether any other entry was there; `None`
/// when git cannot read it.
fn kept_entries(config: &[u8]) -> Option<(Vec<(String, String)>, bool)> {
    let mut cmd = crate::git::base_command();
    // Reading a file given on stdin needs no repository: none is looked for.
    cmd.current_dir("/")
        .env("GIT_CEILING_DIRECTORIES", "/")
        .args(["config", "--file", "-", "--no-includes", "--list", "-z"]);
    let Ok((true, out, _)) = crate::git::exec(&mut cmd, Some(config)) else {
        return None;
    };
    let mut kept = Vec::new();
    let mut dropped = false;
    for record in out.split(|b| *b == 0).filter(|r| !r.is_empty()) {
        let record = String::from_utf8_lossy(record);
        let (key, value) = record.split_once('\n').unwrap_or((&record, "true"));
        if allowed(key) {
            kept.push((key.to_string(), value.to_string()));
        } else {
            dropped = true;
        }
    }
    Some((kept, dropped))
}

/// Whether `key` (`section.subsection.name`, as `git config --list` spells
/// it) is in [`KEPT`].
fn allowed(key: &str) -> bool {
    let Some((section, rest)) = key.split_once('.') else {
        return false;
    };
    let Some((sub, name)) = rest.rsplit_once('.') else {
        return KEPT.contains(&key);
    };
    if sub.contains('\n') || sub.is_empty() {
        return false;
    }
    KEPT.contains(&format!("{section}.*.{name}").as_str())
}

/// A config text holding `entries`, in git's syntax, every value quoted.
fn render(entries: &[(String, String)]) -> Vec<u8> {
    let mut sections: Vec<(String, Vec<(String, String)>)> = Vec::new();
    for (key, value) in entries {
        let (header, name) = match key.split_once('.') {
            Some((section, rest)) => match rest.rsplit_once('.') {
                Some((sub, name)) => (format!("[{section} \"{}\"]", escape(sub)), name),
                None => (format!("[{section}]"), rest),
            },
            None => continue,
        };
        match sections.iter_mut().find(|(h, _)| *h == header) {
            Some((_, list)) => list.push((name.to_string(), value.clone())),
            None => sections.push((header, vec![(name.to_string(), value.clone())])),
        }
    }
    let mut out = String::new();
    for (header, list) in sections {
        out.push_str(&header);
        out.push('\n');
        for (name, value) in list {
            out.push_str(&format!("\t{name} = \"{}\"\n", escape(&value)));
        }
    }
    out.into_bytes()
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn git(dir: &Path, args: &[&str]) -> String {
        let mut cmd = crate::git::base_command();
        let out = cmd.current_dir(dir).args(args).output().unwrap();
        assert!(out.status.success(), "git {args:?}: {out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    #[test]
    fn only_keys_that_run_nothing_survive() {
        let tmp = tempfile::tempdir().unwrap();
        let wt = tmp.path().join("wt");
        std::fs::create_dir_all(&wt).unwrap();
        git(&wt, &["init", "-q", "--template="]);
        for (key, value) in [
            ("core.fsmonitor", "/bin/evil"),
            ("core.pager", "evil"),
            ("core.hooksPath", "/tmp/hooks"),
            ("core.worktree", "/"),
            ("filter.x.clean", "evil"),
            ("diff.x.textconv", "evil"),
            ("alias.st", "!evil"),
            ("include.path", "/tmp/more"),
            ("includeIf.gitdir:/.path", "/tmp/more"),
            ("user.name", "Agent \"Smith\"\\"),
            ("remote.origin.url", "https://example.invalid/x"),
            ("remote.origin.uploadpack", "evil"),
            ("branch.main.remote", "origin"),
        ] {
            git(&wt, &["config", key, value]);
        }
        std::fs::create_dir_all(wt.join(".git/hooks")).unwrap();
        std::fs::write(wt.join(".git/hooks/pre-commit"), "evil").unwrap();
        std::fs::write(wt.join(".git/commondir"), "/elsewhere").unwrap();
        // A nested repository, a gitfile, a symlinked `.git`, a bare one.
        let nested = wt.join("sub/inner");
        std::fs::create_dir_all(&nested).unwrap();
        git(&nested, &["init", "-q", "--template="]);
        git(&nested, &["config", "core.fsmonitor", "/bin/evil"]);
        std::fs::create_dir_all(wt.join("gitfile")).unwrap();
        std::fs::write(wt.join("gitfile/.git"), "gitdir: /tmp/x\n").unwrap();
        std::fs::create_dir_all(wt.join("link")).unwrap();
        std::os::unix::fs::symlink("/tmp", wt.join("link/.git")).unwrap();
        git(&wt, &["init", "-q", "--bare", "--template=", "bare.git"]);
        git(
            &wt.join("bare.git"),
            &["config", "core.fsmonitor", "/bin/evil"],
        );

        let copy = tmp.path().join("clean");
        disarm(&wt, Some(&copy)).unwrap();

        let listed = git(&wt, &["config", "--file", ".git/config", "--list"]);
        for gone in [
            "fsmonitor",
            "pager",
            "hookspath",
            "worktree",
            "filter",
            "textconv",
            "alias",
            "include",
            "uploadpack",
        ] {
            assert!(
                !listed.to_lowercase().contains(gone),
                "{gone} kept:\n{listed}"
            );
        }
        assert_eq!(
            git(&wt, &["config", "user.name"]).trim(),
            "Agent \"Smith\"\\"
        );
        assert_eq!(
            git(&wt, &["config", "remote.origin.url"]).trim(),
            "https://example.invalid/x"
        );
        assert_eq!(git(&wt, &["config", "branch.main.remote"]).trim(), "origin");
        assert!(!wt.join(".git/hooks").exists());
        assert!(!wt.join(".git/commondir").exists());
        assert_eq!(
            std::fs::read(&copy).unwrap(),
            std::fs::read(wt.join(".git/config")).unwrap()
        );
        for nested_config in [nested.join(".git/config"), wt.join("bare.git/config")] {
            let text = std::fs::read_to_string(&nested_config).unwrap();
            assert!(
                !text.contains("fsmonitor"),
                "{}: {text}",
                nested_config.display()
            );
            assert!(text.contains("repositoryformatversion"), "{text}");
        }
        assert!(std::fs::symlink_metadata(wt.join("gitfile/.git")).is_err());
        assert!(std::fs::symlink_metadata(wt.join("link/.git")).is_err());
        assert!(Path::new("/tmp").is_dir());
        // The lane still works as a repository.
        git(&wt, &["status", "--short"]);
        // Again: nothing left to change.
        disarm(&wt, Some(&copy)).unwrap();
    }

    /// A bare repository committed as test data, with nothing in it that
    /// runs anything, keeps every byte: its config and its hooks.
    #[test]
    fn a_harmless_bare_repository_is_left_as_it_is() {
        let tmp = tempfile::tempdir().unwrap();
        let wt = tmp.path().join("wt");
        std::fs::create_dir_all(wt.join("tests/fixtures")).unwrap();
        git(&wt, &["init", "-q", "--template="]);
        git(
            &wt,
            &[
                "init",
                "-q",
                "--bare",
                "--template=",
                "tests/fixtures/repo.git",
            ],
        );
        let fixture = wt.join("tests/fixtures/repo.git");
        let config = fixture.join("config");
        let text = "[core]\n\tbare = true\n[remote \"origin\"]\n\turl = ../x\n";
        std::fs::write(&config, text).unwrap();
        std::fs::create_dir_all(fixture.join("hooks")).unwrap();
        std::fs::write(fixture.join("hooks/pre-commit.sample"), "#!/bin/sh\n").unwrap();
        let lane_config = std::fs::read(wt.join(".git/config")).unwrap();
        let copy = tmp.path().join("clean");
        disarm(&wt, Some(&copy)).unwrap();
        assert_eq!(std::fs::read_to_string(&config).unwrap(), text);
        assert!(fixture.join("hooks/pre-commit.sample").is_file());
        // The lane's own config, harmless as `git init` wrote it, too.
        assert_eq!(std::fs::read(wt.join(".git/config")).unwrap(), lane_config);
        assert_eq!(std::fs::read(&copy).unwrap(), lane_config);
    }
}
