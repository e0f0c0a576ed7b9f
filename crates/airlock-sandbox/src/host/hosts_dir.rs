//! The hosts' directory: one socket per host named by owner and view, one
//! lock, eviction of the least recently used hosts, ending an owner's hosts.

use sha2::{Digest, Sha256};
use std::fs::File;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// One lock for every host in a directory: connecting takes microseconds.
pub(crate) const LOCK_FILE: &str = "hosts.lock";
/// The part of a host's socket name that says whose it is.
pub(crate) fn owner_tag(owner: &str) -> String {
    hex::encode(&Sha256::digest(owner.as_bytes())[..4])
}

/// Whether `name` is a host's socket: `[<owner tag>-]<key>.sock`.
fn is_host_socket(name: &str) -> bool {
    let Some(stem) = name.strip_suffix(".sock") else {
        return false;
    };
    let key = match stem.split_once('-') {
        Some((tag, key)) if tag.len() == 8 && tag.bytes().all(|b| b.is_ascii_hexdigit()) => key,
        Some(_) => return false,
        None => stem,
    };
    key.len() == 24 && key.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Ends the hosts of `dir` started for `owner`: their sockets go (under
/// the hosts' lock, so that no connection is on its way), and each host,
/// finding its socket gone, exits as soon as it has no command running.
/// Returns how many there were.
pub fn end_hosts_of(dir: &Path, owner: &str) -> usize {
    let prefix = format!("{}-", owner_tag(owner));
    let Some(_lock) = lock_hosts(dir) else {
        return 0;
    };
    let mut ended = 0;
    for name in host_sockets(dir).into_iter().map(|(name, _)| name) {
        if name.starts_with(&prefix) && std::fs::remove_file(dir.join(&name)).is_ok() {
            ended += 1;
        }
    }
    ended
}

/// The hosts' sockets in `dir`, with when each was last used.
fn host_sockets(dir: &Path) -> Vec<(String, std::time::SystemTime)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let used = e.metadata().ok()?.modified().ok()?;
            is_host_socket(&name).then_some((name, used))
        })
        .collect()
}

/// Ends the least recently used hosts of `dir` until `keep` are left.
pub(crate) fn evict(dir: &Path, keep: usize) {
    let mut sockets = host_sockets(dir);
    if sockets.len() <= keep {
        return;
    }
    sockets.sort_by(|a, b| a.1.cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
    let excess = sockets.len() - keep;
    for (name, _) in sockets.into_iter().take(excess) {
        let _ = std::fs::remove_file(dir.join(name));
    }
}

/// The hosts' lock of `dir`, held: see the module's comment.
fn lock_hosts(dir: &Path) -> Option<File> {
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .mode(0o600)
        .open(dir.join(LOCK_FILE))
        .ok()?;
    // Released when it is closed.
    rustix::fs::flock(&lock, rustix::fs::FlockOperation::LockExclusive)
        .is_ok()
        .then_some(lock)
}

/// Marks a host's socket used now: the last to be ended by [`evict`].
pub(crate) fn mark_used(dir: &File, name: &str) {
    use rustix::fs::{AtFlags, Timespec, Timestamps, UTIME_NOW, utimensat};
    let now = Timespec {
        tv_sec: 0,
        tv_nsec: UTIME_NOW,
    };
    let times = Timestamps {
        last_access: now,
        last_modification: now,
    };
    let _ = utimensat(dir, name, &times, AtFlags::SYMLINK_NOFOLLOW);
}
