//! What is in a work tree, fingerprinted in process, and what changed
//! between two fingerprints.
//!
//! A fingerprint lists every file git would see (the `.gitignore` files and
//! the repository's exclude file apply; `.git` and nested repositories are
//! skipped) with its `lstat` data and a SHA-256 of its content (of its target,
//! for a symbolic link). Hashing is the slow part, so a scan takes an earlier
//! fingerprint as a cache, as git's index does: a file whose `lstat` data is
//! unchanged keeps its digest, unless it was written so close to the earlier
//! scan that a later write could have kept the same timestamps ("racily
//! clean", in git's words), in which case it is hashed again.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use ignore::Match;
use ignore::gitignore::{Gitignore, GitignoreBuilder};
use rustix::fs::{AtFlags, FileType, Mode, OFlags};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

/// Bumped whenever the cache's encoding changes; an older cache is ignored.
const FORMAT: u32 = 1;

/// A file written less than this long before a scan started is hashed
/// again by the next one, whatever its timestamps say: file times come from
/// a coarse clock, and a write in the same tick keeps them unchanged.
const RACY_NS: i64 = 1_000_000_000;

#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error("cannot read the work tree {path}: {source}")]
    Root {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write the scan cache {path}: {source}")]
    Save {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Where to look, beyond the work tree's own `.gitignore` files.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// More files in `.gitignore` syntax, relative to the work tree's root
    /// (the repository's `info/exclude`). Missing files are skipped.
    pub excludes: Vec<PathBuf>,
}

/// Every file of a work tree, as one scan saw it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Fingerprint {
    format: u32,
    /// When the scan started, in nanoseconds since the epoch.
    started_ns: i64,
    files: BTreeMap<Vec<u8>, Entry>,
    /// How many files this scan hashed (the others' digests came from the cache).
    #[serde(skip)]
    hashed: usize,
}

/// Equal when they list the same files with the same data, taken at the
/// same moment (however much hashing each took).
impl PartialEq for Fingerprint {
    fn eq(&self, other: &Self) -> bool {
        self.format == other.format
            && self.started_ns == other.started_ns
            && self.files == other.files
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
struct Entry {
    stat: Stat,
    content: Content,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
struct Stat {
    kind: Kind,
    size: u64,
    mtime_ns: i64,
    ctime_ns: i64,
    ino: u64,
    dev: u64,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
enum Kind {
    File,
    Executable,
    Symlink,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
enum Content {
    Sha256([u8; 32]),
    /// It could not be read (no permission, or it changed while being
    /// read): only its `lstat` data tells whether it changed.
    Unreadable,
}

/// A path that differs between two fingerprints, with git's status letter:
/// `A` added, `D` deleted, `M` modified (content or executable bit), `T` a
/// file became a symbolic link or the other way round.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub status: char,
    pub path: String,
}

impl Fingerprint {
    /// How many files the scan hashed rather than took from its cache: with
    /// none, and no change, a cache saved now would say nothing new.
    pub fn hashed(&self) -> usize {
        self.hashed
    }

    /// How many files it lists.
    pub fn len(&self) -> usize {
        self.files.len()
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// The bytes of every file it lists (a link's: its target's name), as
    /// `lstat` gives them: what a snapshot of the tree would store.
    pub fn bytes(&self) -> u64 {
        self.files
            .values()
            .fold(0u64, |sum, e| sum.saturating_add(e.stat.size))
    }

    /// The `n` largest files, largest first: (path, bytes).
    pub fn largest(&self, n: usize) -> Vec<(String, u64)> {
        let mut sizes: Vec<(&Vec<u8>, u64)> =
            self.files.iter().map(|(p, e)| (p, e.stat.size)).collect();
        sizes.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
        sizes
            .into_iter()
            .take(n)
            .map(|(p, size)| (String::from_utf8_lossy(p).into_owned(), size))
            .collect()
    }

    /// The paths it lists, as bytes relative to the root, `/`-separated, sorted.
    pub fn paths(&self) -> impl Iterator<Item = &[u8]> {
        self.files.keys().map(Vec::as_slice)
    }

    /// A cache written by [`Fingerprint::save`]; `None` when there is none
    /// or it cannot be used (damaged, another format), since a cache only
    /// saves work.
    pub fn load(path: &Path) -> Option<Fingerprint> {
        let bytes = std::fs::read(path).ok()?;
        let fingerprint: Fingerprint = postcard::from_bytes(&bytes).ok()?;
        (fingerprint.format == FORMAT).then_some(fingerprint)
    }

    /// Writes it as a cache for later scans, whole or not at all.
    pub fn save(&self, path: &Path) -> Result<(), ScanError> {
        let error = |source| ScanError::Save {
            path: path.to_path_buf(),
            source,
        };
        let bytes = postcard::to_stdvec(self).map_err(|e| error(std::io::Error::other(e)))?;
        // Parallel scans of one tree each write their own file; the last
        // rename wins, and any of them is a valid cache. Not synced: a
        // cache lost in a crash only means a scan of everything.
        airlock_fs::Write::new()
            .cache()
            .write(path, &bytes)
            .map_err(error)
    }

    /// What changed from `self` to `after`, sorted by path.
    pub fn changes(&self, after: &Fingerprint) -> Vec<Change> {
        let mut out = Vec::new();
        let mut before = self.files.iter().peekable();
        let mut now = after.files.iter().peekable();
        let change = |status, path: &[u8]| Change {
            status,
            path: String::from_utf8_lossy(path).into_owned(),
        };
        loop {
            match (before.peek(), now.peek()) {
                (None, None) => break,
                (Some((path, _)), None) => {
                    out.push(change('D', path));
                    before.next();
                }
                (None, Some((path, _))) => {
                    out.push(change('A', path));
                    now.next();
                }
                (Some((bp, b)), Some((ap, a))) => match bp.cmp(ap) {
                    std::cmp::Ordering::Less => {
                        out.push(change('D', bp));
                        before.next();
                    }
                    std::cmp::Ordering::Greater => {
                        out.push(change('A', ap));
                        now.next();
                    }
                    std::cmp::Ordering::Equal => {
                        if let Some(status) = differs(b, a) {
                            out.push(change(status, bp));
                        }
                        before.next();
                        now.next();
                    }
                },
            }
        }
        out
    }
}

fn differs(before: &Entry, after: &Entry) -> Option<char> {
    let link = |e: &Entry| e.stat.kind == Kind::Symlink;
    if link(before) != link(after) {
        return Some('T');
    }
    let changed = match (before.content, after.content) {
        (Content::Sha256(b), Content::Sha256(a)) => b != a || before.stat.kind != after.stat.kind,
        // Without a digest on both sides, any difference in lstat data counts.
        _ => before.stat != after.stat,
    };
    changed.then_some('M')
}

/// Fingerprints the work tree at `root`, reusing digests from `cache` for
/// files whose `lstat` data it already holds and can trust.
pub fn scan(
    root: &Path,
    cache: Option<&Fingerprint>,
    options: &Options,
) -> Result<Fingerprint, ScanError> {
    let started_ns = now_ns();
    // The root itself is opened as a directory, never through a link.
    let top = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW)
        .open(root)
        .map_err(|source| ScanError::Root {
            path: root.to_path_buf(),
            source: match source.raw_os_error() {
                Some(libc::ENOTDIR | libc::ELOOP) => std::io::Error::other("it is not a directory"),
                _ => source,
            },
        })?;
    // The repository's exclude files apply below the root, under every
    // `.gitignore` (which take precedence, deepest first, as in git). Not the
    // user's global excludes (airlock runs git without them), nor the
    // `.git/info/exclude` inside the tree (the agent's repository's, not the
    // project's). A bad line is skipped, as git skips it.
    let mut excludes = GitignoreBuilder::new(root);
    for exclude in &options.excludes {
        if exclude.is_file() {
            let _ = excludes.add(exclude);
        }
    }
    let mut walker = Walker {
        cache: cache.map(|c| (c, c.started_ns.saturating_sub(RACY_NS))),
        files: BTreeMap::new(),
        hashed: 0,
        rules: excludes
            .build()
            .map(|g| {
                vec![Rules {
                    depth: 0,
                    ignore: g,
                }]
            })
            .unwrap_or_default(),
    };
    walker.directory(&OwnedFd::from(top), &mut Vec::new(), 0);
    Ok(Fingerprint {
        format: FORMAT,
        started_ns,
        files: walker.files,
        hashed: walker.hashed,
    })
}

/// One directory's ignore rules, and the length of that directory's path
/// (relative to the root, in bytes) that paths below it start with.
struct Rules {
    depth: usize,
    ignore: Gitignore,
}

struct Walker<'a> {
    /// The cache, and the time before which its entries can be trusted.
    cache: Option<(&'a Fingerprint, i64)>,
    files: BTreeMap<Vec<u8>, Entry>,
    hashed: usize,
    rules: Vec<Rules>,
}

impl Walker<'_> {
    /// Lists the directory open as `dir`, whose path relative to the root is
    /// `relative` (empty for the root). Every directory is opened below its
    /// parent's descriptor without following links, and listed through its
    /// own descriptor, so a directory swapped for a link meanwhile leads
    /// nowhere else; entries are examined through it too (`fstatat`).
    fn directory(&mut self, dir: &OwnedFd, relative: &mut Vec<u8>, depth: usize) {
        // Deeper than git itself goes in practice: not followed (the
        // commands' traces say less; the tree airlock commits is git's).
        if depth > MAX_DEPTH {
            return;
        }
        // An unreadable directory, or one removed meanwhile, lists nothing.
        // Listed from its descriptor: no path to look up again.
        let Ok(listing) = rustix::fs::Dir::read_from(dir) else {
            return;
        };
        let entries: Vec<Listed> = listing
            .filter_map(Result::ok)
            .filter(|e| !matches!(e.file_name().to_bytes(), b"." | b".."))
            .map(|e| Listed::of(dir, &e))
            .collect();
        // A repository inside the tree is its own business, as in git.
        if !relative.is_empty() && is_repository(dir, &entries) {
            return;
        }
        let own_rules = entries.iter().any(|e| e.name == ".gitignore")
            && match ignore_file(dir) {
                Some(ignore) => {
                    self.rules.push(Rules {
                        depth: relative.len(),
                        ignore,
                    });
                    true
                }
                None => false,
            };
        for entry in entries {
            let name = &entry.name;
            if name == ".git" {
                continue;
            }
            let Some(file_type) = entry.kind else {
                continue;
            };
            let mark = relative.len();
            if !relative.is_empty() {
                relative.push(b'/');
            }
            relative.extend_from_slice(name.as_bytes());
            let is_dir = file_type == FileType::Directory;
            if !self.ignored(relative, is_dir) {
                if is_dir {
                    if let Ok(sub) = open_below(dir, name, OFlags::DIRECTORY) {
                        self.directory(&sub, relative, depth + 1);
                    }
                } else if matches!(file_type, FileType::RegularFile | FileType::Symlink) {
                    self.file(dir, name, relative);
                }
            }
            relative.truncate(mark);
        }
        if own_rules {
            self.rules.pop();
        }
    }

    /// Whether the rules exclude `relative`: the deepest rule that says
    /// anything decides.
    fn ignored(&self, relative: &[u8], is_dir: bool) -> bool {
        for rules in self.rules.iter().rev() {
            let below = if rules.depth == 0 {
                relative
            } else {
                &relative[rules.depth + 1..]
            };
            match rules
                .ignore
                .matched(Path::new(std::ffi::OsStr::from_bytes(below)), is_dir)
            {
                Match::Ignore(_) => return true,
                Match::Whitelist(_) => return false,
                Match::None => {}
            }
        }
        false
    }

    fn file(&mut self, dir: &OwnedFd, name: &OsStr, relative: &[u8]) {
        // Removed since it was listed: not there.
        let Ok(meta) = rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) else {
            return;
        };
        let Some(stat) = stat_of(&meta) else { return };
        let cached = self
            .cache
            .and_then(|(c, limit)| c.files.get(relative).map(|e| (e, limit)))
            .filter(|(e, limit)| {
                e.stat == stat && e.stat.mtime_ns < *limit && e.stat.ctime_ns < *limit
            })
            .map(|(e, _)| e.content);
        let content = match cached {
            Some(content) => content,
            None => {
                self.hashed += 1;
                digest(&fd_path(dir).join(name), &stat)
            }
        };
        self.files
            .insert(relative.to_vec(), Entry { stat, content });
    }
}

/// Directories deeper than this below the root are not listed.
const MAX_DEPTH: usize = 256;
/// A `.gitignore` larger than this is not read (git's own limit is 100 MB;
/// a real one is a few kilobytes).
const MAX_IGNORE_FILE: u64 = 1 << 20;

/// A directory's entry: its name and, unless it could not be told, what
/// it is (a link is a link, never what it leads to).
struct Listed {
    name: OsString,
    kind: Option<FileType>,
}

impl Listed {
    fn of(dir: &OwnedFd, entry: &rustix::fs::DirEntry) -> Listed {
        let name = OsString::from_vec(entry.file_name().to_bytes().to_vec());
        // Some filesystems do not say in the listing: asked of the entry.
        let kind = match entry.file_type() {
            FileType::Unknown => rustix::fs::statat(dir, &*name, AtFlags::SYMLINK_NOFOLLOW)
                .ok()
                .map(|st| FileType::from_raw_mode(st.st_mode)),
            kind => Some(kind),
        };
        Listed { name, kind }
    }
}

/// The path that names an open descriptor, whatever happens to its name.
fn fd_path(fd: &OwnedFd) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

/// Opens `name` in the directory `dir`, never through a symbolic link, and
/// never waiting on a FIFO.
fn open_below(dir: &OwnedFd, name: &std::ffi::OsStr, flags: OFlags) -> std::io::Result<OwnedFd> {
    let name = std::ffi::CString::new(name.as_bytes()).map_err(std::io::Error::other)?;
    let flags = flags | OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
    Ok(rustix::fs::openat(
        dir,
        name.as_c_str(),
        flags,
        Mode::empty(),
    )?)
}

/// Up to `limit` bytes of the regular file `name` in `dir`; `None` if it is
/// anything else (a link, a FIFO, a device) or larger.
fn read_small(dir: &OwnedFd, name: &str, limit: u64) -> Option<Vec<u8>> {
    let fd = open_below(dir, std::ffi::OsStr::new(name), OFlags::empty()).ok()?;
    let mut file = File::from(fd);
    let meta = file.metadata().ok()?;
    if !meta.is_file() || meta.len() > limit {
        return None;
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    Read::by_ref(&mut file)
        .take(limit)
        .read_to_end(&mut bytes)
        .ok()?;
    Some(bytes)
}

/// Whether the directory holds a repository of its own, as git decides: a
/// `.git` directory that is one (`HEAD`, `objects`, `refs`), or a `.git`
/// file pointing to one.
fn is_repository(dir: &OwnedFd, entries: &[Listed]) -> bool {
    let Some(git) = entries.iter().find(|e| e.name == ".git") else {
        return false;
    };
    match git.kind {
        Some(FileType::Directory) => {
            let Ok(git) = open_below(dir, std::ffi::OsStr::new(".git"), OFlags::DIRECTORY) else {
                return false;
            };
            let kind = |name: &str| {
                open_below(&git, std::ffi::OsStr::new(name), OFlags::PATH)
                    .and_then(|fd| File::from(fd).metadata())
                    .map(|m| m.file_type())
            };
            kind("HEAD").is_ok_and(|t| t.is_file())
                && kind("objects").is_ok_and(|t| t.is_dir())
                && kind("refs").is_ok_and(|t| t.is_dir())
        }
        Some(FileType::RegularFile) => {
            read_small(dir, ".git", 4096).is_some_and(|text| text.starts_with(b"gitdir: "))
        }
        _ => false,
    }
}

/// The rules of the directory's `.gitignore`, read as git reads it: a
/// regular file only, never through a link.
fn ignore_file(dir: &OwnedFd) -> Option<Gitignore> {
    let text = read_small(dir, ".gitignore", MAX_IGNORE_FILE)?;
    let mut builder = GitignoreBuilder::new("/");
    for line in String::from_utf8_lossy(&text).lines() {
        // A bad line is skipped, as git skips it.
        let _ = builder.add_line(None, line);
    }
    builder.build().ok()
}

// The casts are no-ops here, not on every target: `struct stat`'s field
// types differ between architectures.
#[allow(clippy::unnecessary_cast)]
fn stat_of(meta: &rustix::fs::Stat) -> Option<Stat> {
    let kind = match FileType::from_raw_mode(meta.st_mode) {
        FileType::Symlink => Kind::Symlink,
        FileType::RegularFile if meta.st_mode & 0o111 != 0 => Kind::Executable,
        FileType::RegularFile => Kind::File,
        _ => return None,
    };
    let ns = |s: i64, n: i64| s.saturating_mul(1_000_000_000).saturating_add(n);
    Some(Stat {
        kind,
        size: meta.st_size as u64,
        mtime_ns: ns(meta.st_mtime as i64, meta.st_mtime_nsec as i64),
        ctime_ns: ns(meta.st_ctime as i64, meta.st_ctime_nsec as i64),
        ino: meta.st_ino as u64,
        dev: meta.st_dev as u64,
    })
}

fn digest(path: &Path, stat: &Stat) -> Content {
    let mut hasher = Sha256::new();
    if stat.kind == Kind::Symlink {
        return match std::fs::read_link(path) {
            Ok(target) => {
                hasher.update(target.as_os_str().as_bytes());
                Content::Sha256(hasher.finalize().into())
            }
            Err(_) => Content::Unreadable,
        };
    }
    // Not through a link swapped in since the lstat, and not stuck on a
    // FIFO swapped in either.
    let opened = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path);
    let Ok(mut file) = opened else {
        return Content::Unreadable;
    };
    match file.metadata() {
        Ok(m) if m.is_file() && m.ino() == stat.ino && m.dev() == stat.dev => {}
        _ => return Content::Unreadable,
    }
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        match file.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => hasher.update(&buffer[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return Content::Unreadable,
        }
    }
    Content::Sha256(hasher.finalize().into())
}

fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(root: &Path, path: &str, text: &str) {
        let path = root.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    fn poison(fp: &mut Fingerprint, path: &str) {
        fp.files.get_mut(path.as_bytes()).unwrap().content = Content::Sha256([7; 32]);
    }

    #[test]
    fn an_old_unchanged_file_keeps_its_cached_digest() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "a.txt", "a");
        let mut cache = scan(dir.path(), None, &Options::default()).unwrap();
        assert_eq!(cache.hashed(), 1);
        poison(&mut cache, "a.txt");
        // As if the cache had been taken well after the file was written.
        cache.started_ns += 10 * RACY_NS;
        let again = scan(dir.path(), Some(&cache), &Options::default()).unwrap();
        assert_eq!(again.hashed(), 0);
        assert_eq!(
            again.files[b"a.txt".as_slice()].content,
            Content::Sha256([7; 32]),
            "the digest came from the cache, not from the file"
        );
    }

    #[test]
    fn a_racily_clean_file_is_hashed_again() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "a.txt", "a");
        let mut cache = scan(dir.path(), None, &Options::default()).unwrap();
        let real = cache.files[b"a.txt".as_slice()].content;
        poison(&mut cache, "a.txt");
        // Written within a second of the cached scan: not trusted.
        let again = scan(dir.path(), Some(&cache), &Options::default()).unwrap();
        assert_eq!(again.files[b"a.txt".as_slice()].content, real);
    }

    #[test]
    fn without_a_digest_any_stat_difference_is_a_change() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "a.txt", "a");
        let fp = scan(dir.path(), None, &Options::default()).unwrap();
        let mut unreadable = fp.files[b"a.txt".as_slice()].clone();
        unreadable.content = Content::Unreadable;
        assert_eq!(differs(&unreadable, &unreadable), None);
        let mut touched = unreadable.clone();
        touched.stat.mtime_ns += 1;
        assert_eq!(differs(&unreadable, &touched), Some('M'));
        // A digest on one side only cannot vouch for the other.
        assert_eq!(differs(&fp.files[b"a.txt".as_slice()], &touched), Some('M'));
    }

    #[test]
    fn a_changed_stat_is_hashed_again_even_when_old() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "a.txt", "a");
        let mut cache = scan(dir.path(), None, &Options::default()).unwrap();
        cache.started_ns += 10 * RACY_NS;
        poison(&mut cache, "a.txt");
        write(dir.path(), "a.txt", "bb");
        let again = scan(dir.path(), Some(&cache), &Options::default()).unwrap();
        let expected: [u8; 32] = Sha256::digest(b"bb").into();
        assert_eq!(
            again.files[b"a.txt".as_slice()].content,
            Content::Sha256(expected)
        );
    }
}
