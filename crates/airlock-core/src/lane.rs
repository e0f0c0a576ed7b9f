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

/// A directory's or file's ctime closer than this to the start of the walk
/// that saw it does not vouch for it: file times come from a coarse clock,
/// and a change in the same tick keeps them as they were.
const RACY_NS: i64 = 1_000_000_000;

/// Makes every repository in `worktree` inert for the user's git (see the
/// module), and in `tmp`, the run's `/tmp` on the host: a link in the
/// worktree can lead there. `clean_copy` is where the last config written
/// for the lane's own `.git` is kept, outside the worktree: a config still
/// equal to it needs no reading. `caches` are where what each walk saw is
/// kept, outside the worktree, for the worktree then for `tmp` ([`disarm`]).
pub fn disarm_run(
    worktree: &Path,
    tmp: &Path,
    clean_copy: &Path,
    caches: [&Path; 2],
) -> Result<Walked> {
    let mut walked = disarm(worktree, Some(clean_copy), Some(caches[0]))?;
    if let Ok(meta) = std::fs::symlink_metadata(tmp)
        && meta.is_dir()
    {
        let in_tmp = disarm(tmp, None, Some(caches[1]))?;
        walked.listed += in_tmp.listed;
        walked.directories += in_tmp.directories;
        walked.git_checked += in_tmp.git_checked;
    }
    Ok(walked)
}

/// How much a walk had to look at.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Walked {
    /// Directories in the tree.
    pub directories: usize,
    /// Of those, the ones read again (the others were as the last walk
    /// left them).
    pub listed: usize,
    /// Git directories whose files were looked at again.
    pub git_checked: usize,
}

/// Makes every repository below `worktree` inert; `clean_copy` as in
/// [`disarm_run`], for a worktree.
///
/// With a `cache`, a directory is read again only if its identity changed
/// since the last walk saw it: its device, inode, mode, mtime and ctime.
/// Any new, removed or renamed entry changes a directory's ctime, which the
/// kernel sets (a command can set the mtime, not the ctime), and a ctime
/// that could still be in the clock tick of the walk that saw it
/// ([`RACY_NS`]) vouches for nothing. A git directory's `config` (and a bare
/// one's `HEAD`) is written in place without changing the directory: their
/// identities are kept and checked too.
pub fn disarm(worktree: &Path, clean_copy: Option<&Path>, cache: Option<&Path>) -> Result<Walked> {
    let fail = |path: &Path, e: std::io::Error| unsafe_for_git(worktree, path, e);
    let started_ns = now_ns();
    let root = rustix::fs::open(
        worktree,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| fail(worktree, e.into()))?;
    let known = clean_copy.and_then(|copy| std::fs::read(copy).ok());
    let seen = cache
        .and_then(|path| std::fs::read(path).ok())
        .and_then(|bytes| Seen::decode(&bytes));
    let (trusted_before, last) = match seen {
        Some(seen) => (seen.started_ns.saturating_sub(RACY_NS), Some(seen.root)),
        None => (i64::MIN, None),
    };
    let mut walk = Walk {
        clean_copy,
        known,
        path: PathBuf::new(),
        trusted_before,
        walked: Walked::default(),
    };
    let ident = Ident::of(&rustix::fs::fstat(&root).map_err(|e| fail(worktree, e.into()))?);
    let tree = walk
        .visit(&root, ident, last, 0, false)
        .map_err(|(path, e)| fail(&worktree.join(path), e))?;
    let walked = walk.walked;
    if let Some(path) = cache
        && walked.listed + walked.git_checked > 0
    {
        let seen = Seen {
            started_ns,
            root: tree,
        };
        write_cache(path, &seen.encode()).map_err(|e| fail(path, e))?;
    }
    Ok(walked)
}

/// The refusal when a repository below `dir` could not be made inert.
fn unsafe_for_git(dir: &Path, path: &Path, e: std::io::Error) -> Error {
    Error::refused(
        crate::error::Code::UnsafeWorktree,
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

type WalkResult<T = ()> = std::result::Result<T, (PathBuf, std::io::Error)>;

struct Walk<'a> {
    clean_copy: Option<&'a Path>,
    known: Option<Vec<u8>>,
    /// The directory being walked, relative to the worktree.
    path: PathBuf,
    /// A ctime before this vouches for what the last walk saw.
    trusted_before: i64,
    walked: Walked,
}

struct Entry {
    name: std::ffi::CString,
    kind: FileType,
}

/// What identifies a directory or file as it was: any change to a
/// directory's entries, or to a file's content, gives it another ctime.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Ident {
    dev: u64,
    ino: u64,
    mode: u32,
    mtime_ns: i64,
    ctime_ns: i64,
}

impl Ident {
    // The casts are no-ops here, not on every target.
    #[allow(clippy::unnecessary_cast)]
    fn of(stat: &rustix::fs::Stat) -> Ident {
        let ns = |s: i64, n: i64| s.saturating_mul(1_000_000_000).saturating_add(n);
        Ident {
            dev: stat.st_dev as u64,
            ino: stat.st_ino as u64,
            mode: stat.st_mode as u32,
            mtime_ns: ns(stat.st_mtime as i64, stat.st_mtime_nsec as i64),
            ctime_ns: ns(stat.st_ctime as i64, stat.st_ctime_nsec as i64),
        }
    }
}

/// One directory as a walk saw it: its identity before it was read, its
/// subdirectories, and, for a git directory, its files' identities after
/// it was disarmed.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Node {
    ident: Ident,
    git: Option<GitFiles>,
    /// Sorted by name.
    children: Vec<(std::ffi::CString, Node)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct GitFiles {
    config: Option<Ident>,
    head: Option<Ident>,
}

/// What the last walk saw, and when it started.
struct Seen {
    started_ns: i64,
    root: Node,
}

impl Walk<'_> {
    /// The file `name` of the directory open as `dir`, if it is there.
    fn file_ident(&self, dir: &OwnedFd, name: &CStr) -> WalkResult<Option<Ident>> {
        match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(stat) => Ok(Some(Ident::of(&stat))),
            Err(rustix::io::Errno::NOENT) => Ok(None),
            Err(e) => Err((self.path.join(OsStr::from_bytes(name.to_bytes())), e.into())),
        }
    }

    fn trusted(&self, ident: &Ident) -> bool {
        ident.ctime_ns < self.trusted_before
    }

    /// Walks the directory at `self.path`, open as `dir`, whose identity
    /// is now `ident`; `last` is what the last walk saw there. `dir` may be
    /// a path-only descriptor when `ident` is as the last walk saw it:
    /// nothing is read through it then but the git files' identities. A
    /// `.git` (`dot_git`) is disarmed before it is walked. Every directory
    /// is walked, git's own included: git finds a repository from any
    /// directory below.
    fn visit(
        &mut self,
        dir: &OwnedFd,
        ident: Ident,
        last: Option<Node>,
        depth: usize,
        dot_git: bool,
    ) -> WalkResult<Node> {
        if depth > MAX_DEPTH {
            return Err((
                self.path.clone(),
                std::io::Error::other(format!(
                    "more than {MAX_DEPTH} directories deep: not looked at"
                )),
            ));
        }
        self.walked.directories += 1;
        let (last, unchanged) = match last {
            Some(node) if node.ident == ident && self.trusted(&ident) => (Some(node), true),
            other => (other, false),
        };
        let mut node = Node {
            ident,
            git: None,
            children: Vec::new(),
        };
        // The subdirectories to walk, each with what the last walk saw there.
        let mut subdirs: Vec<(std::ffi::CString, Option<Node>)> = Vec::new();
        let candidate;
        if unchanged {
            let last = last.expect("unchanged means seen");
            candidate = !dot_git && last.git.is_some();
            subdirs = last
                .children
                .into_iter()
                .map(|(name, child)| (name, Some(child)))
                .collect();
            node.git = last.git;
        } else {
            self.walked.listed += 1;
            // What is read is what the identity was taken of.
            node.ident =
                Ident::of(&rustix::fs::fstat(dir).map_err(|e| (self.path.clone(), e.into()))?);
            let entries = list(dir).map_err(|e| (self.path.clone(), e))?;
            let has = |name: &[u8], kind: FileType| {
                entries
                    .iter()
                    .any(|e| e.name.as_bytes() == name && e.kind == kind)
            };
            // A directory git would take as a repository by itself.
            candidate = !dot_git
                && has(b"HEAD", FileType::RegularFile)
                && has(b"objects", FileType::Directory)
                && has(b"refs", FileType::Directory);
            let mut last_children: Vec<(std::ffi::CString, Option<Node>)> = last
                .map(|n| n.children)
                .unwrap_or_default()
                .into_iter()
                .map(|(name, child)| (name, Some(child)))
                .collect();
            for entry in entries {
                if entry.name.as_bytes() == b".git" && entry.kind != FileType::Directory {
                    remove(dir, &entry.name).map_err(|e| (self.path.join(".git"), e))?;
                    continue;
                }
                if entry.kind != FileType::Directory {
                    continue;
                }
                let seen = last_children
                    .binary_search_by(|(name, _)| name.as_c_str().cmp(&entry.name))
                    .ok()
                    .and_then(|at| last_children[at].1.take());
                subdirs.push((entry.name, seen));
            }
            subdirs.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        }
        if dot_git || candidate {
            let files = GitFiles {
                config: self.file_ident(dir, c"config")?,
                head: if candidate {
                    self.file_ident(dir, c"HEAD")?
                } else {
                    None
                },
            };
            let vouched = unchanged
                && node.git == Some(files)
                && [files.config, files.head]
                    .iter()
                    .flatten()
                    .all(|ident| self.trusted(ident));
            if !vouched {
                self.walked.git_checked += 1;
                // Opened for reading and writing in, whatever `dir` is.
                let fd = open_dir(dir, c".").map_err(|e| (self.path.clone(), e))?;
                if dot_git {
                    self.git_dir(&fd, true, depth == 1)?;
                } else if names_a_commit(&fd) {
                    self.git_dir(&fd, false, false)?;
                }
                // As disarming left them: the next walk checks them again
                // if that was in the same tick.
                node.git = Some(GitFiles {
                    config: self.file_ident(&fd, c"config")?,
                    head: if candidate {
                        self.file_ident(&fd, c"HEAD")?
                    } else {
                        None
                    },
                });
            }
        }
        for (name, seen) in subdirs {
            self.path.push(OsStr::from_bytes(name.to_bytes()));
            let done = self.child(dir, &name, seen, depth);
            self.path.pop();
            if let Some(child) = done? {
                node.children.push((name, child));
            }
        }
        Ok(node)
    }

    /// Walks the subdirectory `name` (at `self.path`) of the directory open
    /// as `parent`; `None` if it is gone. Everything goes through the
    /// parent's descriptor, never through a link.
    fn child(
        &mut self,
        parent: &OwnedFd,
        name: &CStr,
        seen: Option<Node>,
        depth: usize,
    ) -> WalkResult<Option<Node>> {
        let ident = match rustix::fs::statat(parent, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(stat) => Ident::of(&stat),
            // Gone meanwhile: nothing to disarm there.
            Err(rustix::io::Errno::NOENT) => return Ok(None),
            Err(e) => return Err((self.path.clone(), e.into())),
        };
        let dot_git = name.to_bytes() == b".git";
        let as_seen = seen
            .as_ref()
            .is_some_and(|n| n.ident == ident && self.trusted(&ident));
        let opened = match seen {
            // As the last walk saw it, with nothing below it and no git
            // files to look at: nothing to open.
            Some(seen)
                if as_seen
                    && !dot_git
                    && seen.git.is_none()
                    && seen.children.is_empty()
                    && depth < MAX_DEPTH =>
            {
                self.walked.directories += 1;
                return Ok(Some(seen));
            }
            // As the last walk saw it: only its subdirectories' (and git
            // files') identities are taken, through a path-only descriptor.
            ref seen if as_seen && seen.is_some() => rustix::fs::openat(
                parent,
                name,
                OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(std::io::Error::from),
            _ => open_dir(parent, name),
        };
        match opened {
            Ok(sub) => self.visit(&sub, ident, seen, depth + 1, dot_git).map(Some),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err((self.path.clone(), e)),
        }
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

fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// The first bytes of a walk cache; another version is not read.
const CACHE_MAGIC: &[u8] = b"airlock lane walk 1\n";

impl Seen {
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64 * 1024);
        out.extend_from_slice(CACHE_MAGIC);
        out.extend_from_slice(&self.started_ns.to_le_bytes());
        encode_node(&self.root, &mut out);
        out
    }

    /// `None` unless the bytes are a whole cache of this version: a torn
    /// or foreign file means a walk of everything.
    fn decode(bytes: &[u8]) -> Option<Seen> {
        let mut input = bytes.strip_prefix(CACHE_MAGIC)?;
        let started_ns = i64::from_le_bytes(take(&mut input, 8)?.try_into().ok()?);
        let root = decode_node(&mut input, 0)?;
        input.is_empty().then_some(Seen { started_ns, root })
    }
}

fn encode_ident(ident: &Ident, out: &mut Vec<u8>) {
    out.extend_from_slice(&ident.dev.to_le_bytes());
    out.extend_from_slice(&ident.ino.to_le_bytes());
    out.extend_from_slice(&ident.mode.to_le_bytes());
    out.extend_from_slice(&ident.mtime_ns.to_le_bytes());
    out.extend_from_slice(&ident.ctime_ns.to_le_bytes());
}

fn encode_optional(ident: &Option<Ident>, out: &mut Vec<u8>) {
    match ident {
        Some(ident) => {
            out.push(1);
            encode_ident(ident, out);
        }
        None => out.push(0),
    }
}

fn encode_node(node: &Node, out: &mut Vec<u8>) {
    encode_ident(&node.ident, out);
    match &node.git {
        Some(files) => {
            out.push(1);
            encode_optional(&files.config, out);
            encode_optional(&files.head, out);
        }
        None => out.push(0),
    }
    out.extend_from_slice(&(node.children.len() as u32).to_le_bytes());
    for (name, child) in &node.children {
        out.extend_from_slice(&(name.as_bytes().len() as u32).to_le_bytes());
        out.extend_from_slice(name.as_bytes());
        encode_node(child, out);
    }
}

fn take<'a>(input: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
    if input.len() < n {
        return None;
    }
    let (head, rest) = input.split_at(n);
    *input = rest;
    Some(head)
}

fn take_u32(input: &mut &[u8]) -> Option<u32> {
    Some(u32::from_le_bytes(take(input, 4)?.try_into().ok()?))
}

fn take_u64(input: &mut &[u8]) -> Option<u64> {
    Some(u64::from_le_bytes(take(input, 8)?.try_into().ok()?))
}

fn decode_ident(input: &mut &[u8]) -> Option<Ident> {
    Some(Ident {
        dev: take_u64(input)?,
        ino: take_u64(input)?,
        mode: take_u32(input)?,
        mtime_ns: take_u64(input)? as i64,
        ctime_ns: take_u64(input)? as i64,
    })
}

fn decode_optional(input: &mut &[u8]) -> Option<Option<Ident>> {
    match take(input, 1)?[0] {
        0 => Some(None),
        1 => Some(Some(decode_ident(input)?)),
        _ => None,
    }
}

fn decode_node(input: &mut &[u8], depth: usize) -> Option<Node> {
    if depth > MAX_DEPTH + 1 {
        return None;
    }
    let ident = decode_ident(input)?;
    let git = match take(input, 1)?[0] {
        0 => None,
        1 => Some(GitFiles {
            config: decode_optional(input)?,
            head: decode_optional(input)?,
        }),
        _ => return None,
    };
    let count = take_u32(input)? as usize;
    // Each child takes more than 40 bytes: a count larger than what is
    // left is a torn file.
    if count > input.len() / 40 {
        return None;
    }
    let mut children = Vec::with_capacity(count);
    for _ in 0..count {
        let len = take_u32(input)? as usize;
        let name = std::ffi::CString::new(take(input, len)?).ok()?;
        children.push((name, decode_node(input, depth + 1)?));
    }
    // Looked up by binary search: sorted, or not used.
    if !children.windows(2).all(|w| w[0].0 < w[1].0) {
        return None;
    }
    Some(Node {
        ident,
        git,
        children,
    })
}

/// Writes the walk cache beside itself and renames it into place; not
/// synced: a cache lost or torn in a crash only means a walk of everything.
fn write_cache(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    airlock_fs::Write::new().cache().write(path, bytes)
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
    let tmp = format!(".config.airlock-{}", crate::layout::unique_suffix());
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
        disarm(&wt, Some(&copy), None).unwrap();

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
        disarm(&wt, Some(&copy), None).unwrap();
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
        disarm(&wt, Some(&copy), None).unwrap();
        assert_eq!(std::fs::read_to_string(&config).unwrap(), text);
        assert!(fixture.join("hooks/pre-commit.sample").is_file());
        // The lane's own config, harmless as `git init` wrote it, too.
        assert_eq!(std::fs::read(wt.join(".git/config")).unwrap(), lane_config);
        assert_eq!(std::fs::read(&copy).unwrap(), lane_config);
    }

    /// Sets the mtime of `path` back to what it was: a command can, with
    /// `utimensat`, but the kernel still gives it a new ctime.
    fn set_mtime(path: &Path, to: std::time::SystemTime) {
        std::fs::File::open(path)
            .unwrap()
            .set_times(std::fs::FileTimes::new().set_modified(to))
            .unwrap();
    }

    fn mtime(path: &Path) -> std::time::SystemTime {
        std::fs::symlink_metadata(path).unwrap().modified().unwrap()
    }

    /// A tree made more than a clock tick ago ([`RACY_NS`]), walked once:
    /// the next walk reads nothing again.
    fn settled_tree() -> (tempfile::TempDir, PathBuf, PathBuf, PathBuf) {
        let tmp = tempfile::tempdir().unwrap();
        let wt = tmp.path().join("wt");
        std::fs::create_dir_all(&wt).unwrap();
        git(&wt, &["init", "-q", "--template="]);
        for i in 0..40 {
            std::fs::create_dir_all(wt.join(format!("target/debug/deps{i}/x"))).unwrap();
        }
        let nested = wt.join("target/debug/deps3/x");
        git(&nested, &["init", "-q", "--template="]);
        // Not a repository yet: its HEAD names no commit.
        let data = wt.join("target/data");
        std::fs::create_dir_all(data.join("objects")).unwrap();
        std::fs::create_dir_all(data.join("refs")).unwrap();
        std::fs::write(data.join("HEAD"), "nothing\n").unwrap();
        std::fs::write(data.join("config"), "[core]\n\tfsmonitor = /bin/evil\n").unwrap();
        std::thread::sleep(std::time::Duration::from_millis(1100));
        let copy = tmp.path().join("clean");
        let cache = tmp.path().join("walk");
        let first = disarm(&wt, Some(&copy), Some(&cache)).unwrap();
        assert_eq!(first.listed, first.directories);
        (tmp, wt, copy, cache)
    }

    #[test]
    fn an_unchanged_tree_is_not_read_again() {
        let (_tmp, wt, copy, cache) = settled_tree();
        let again = disarm(&wt, Some(&copy), Some(&cache)).unwrap();
        assert!(again.directories > 80, "{again:?}");
        assert_eq!((again.listed, again.git_checked), (0, 0), "{again:?}");
        // A cache that is not whole is not used: everything is read.
        let bytes = std::fs::read(&cache).unwrap();
        std::fs::write(&cache, &bytes[..bytes.len() - 1]).unwrap();
        let torn = disarm(&wt, Some(&copy), Some(&cache)).unwrap();
        assert_eq!(torn.listed, torn.directories);
    }

    /// Changes a command can make without changing what the cache checks
    /// first (the directory's mtime set back, a file written in place) are
    /// still caught: every one changes a ctime.
    #[test]
    fn changes_in_directories_the_cache_saw_are_caught() {
        let (_tmp, wt, copy, cache) = settled_tree();
        // The nested repository's config, written in place (its directory
        // unchanged), mtime set back.
        let config = wt.join("target/debug/deps3/x/.git/config");
        let config_mtime = mtime(&config);
        let mut text = std::fs::read_to_string(&config).unwrap();
        text.push_str("\tfsmonitor = /bin/evil\n");
        std::fs::OpenOptions::new()
            .write(true)
            .open(&config)
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
        set_mtime(&config, config_mtime);
        // A gitfile in an old directory, its mtime set back.
        let old_dir = wt.join("target/debug/deps7/x");
        let dir_mtime = mtime(&old_dir);
        std::fs::write(old_dir.join(".git"), "gitdir: /tmp/x\n").unwrap();
        set_mtime(&old_dir, dir_mtime);
        // A directory replaced by another (a new inode), holding a repository.
        let replaced = wt.join("target/debug/deps9");
        std::fs::rename(&replaced, wt.join("target/debug/moved")).unwrap();
        std::fs::create_dir_all(replaced.join("x")).unwrap();
        git(&replaced.join("x"), &["init", "-q", "--template="]);
        git(&replaced.join("x"), &["config", "core.pager", "evil"]);
        // A directory that was not a repository made one by writing its
        // HEAD in place, mtime set back.
        let head = wt.join("target/data/HEAD");
        let head_mtime = mtime(&head);
        std::fs::OpenOptions::new()
            .write(true)
            .open(&head)
            .unwrap()
            .write_all(b"ref: refs/heads/main\n")
            .unwrap();
        set_mtime(&head, head_mtime);

        let walked = disarm(&wt, Some(&copy), Some(&cache)).unwrap();
        // Read again: only what changed, not the whole tree.
        assert!(walked.listed < walked.directories / 4, "{walked:?}");
        let nested = std::fs::read_to_string(&config).unwrap();
        assert!(!nested.contains("fsmonitor"), "{nested}");
        assert!(std::fs::symlink_metadata(old_dir.join(".git")).is_err());
        let inner = std::fs::read_to_string(replaced.join("x/.git/config")).unwrap();
        assert!(!inner.contains("pager"), "{inner}");
        let data = std::fs::read_to_string(wt.join("target/data/config")).unwrap();
        assert!(!data.contains("fsmonitor"), "{data}");
    }
}
