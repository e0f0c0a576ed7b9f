//! What a run may leave on the disk its repository lives on.
//!
//! Three limits under `[sandbox]`, each refused with the setting to raise:
//!
//! - `max_file_size`: no file a command writes grows past it (the sandbox's
//!   `RLIMIT_FSIZE`; see `confinement::plan`);
//! - `max_worktree`: the bytes of the worktree's files that git sees (what
//!   a snapshot stores; ignored files aside), known from the fingerprint
//!   taken after every command, so a trace says when a command left the
//!   worktree over it, and every snapshot refuses while it is;
//! - `max_stored`: the bytes of new content a run's snapshots may write
//!   into the repository's object store over the run's life. `git add
//!   --all` writes a blob for every file that is new or changed since the
//!   run's last snapshot (its private index says which); those are counted
//!   before anything is written, and refused past the limit.

use std::collections::BTreeMap;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use airlock_scan::Fingerprint;

use crate::error::{Error, Result};
use crate::layout::Layout;
use crate::workflow::Sandbox;

/// `5.0 MiB`: sizes as people read them.
pub fn human(bytes: u64) -> String {
    const UNITS: &[&str] = &["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64;
    let mut unit = "B";
    for u in UNITS {
        if value < 1024.0 {
            break;
        }
        value /= 1024.0;
        unit = u;
    }
    format!("{value:.1} {unit}")
}

fn listing(files: &[(String, u64)]) -> String {
    files
        .iter()
        .map(|(path, size)| format!("{path} ({})", human(*size)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// What a trace records when the command left the worktree over
/// `max_worktree`; `None` when it is within.
pub fn worktree_over(after: &Fingerprint, max_worktree: u64) -> Option<String> {
    let total = after.bytes();
    (total > max_worktree).then(|| {
        format!(
            "worktree limit of {} (max_worktree): the worktree holds {} of files git would store \
             (largest: {}); check and submit refuse until it is back under",
            human(max_worktree),
            human(total),
            listing(&after.largest(3))
        )
    })
}

/// Refuses when the run's worktree is over `max_worktree` now.
pub fn require_worktree_within(layout: &Layout, id: &str, sandbox: &Sandbox) -> Result<()> {
    let now = layout.scan(id, None)?;
    if now.hashed() > 0 {
        layout.keep_scan(id, &now)?;
    }
    let total = now.bytes();
    if total <= sandbox.max_worktree {
        return Ok(());
    }
    Err(Error::refused(
        crate::error::Code::WorktreeQuota,
        format!(
            "run {id}'s worktree holds {} of files git would store, over the limit of {}",
            human(total),
            human(sandbox.max_worktree)
        ),
        vec![
            "`max_worktree` under [sandbox] in .airlock/workflow.toml caps the files of a run's \
             worktree that git sees (ignored files aside): check, submit, approve and promote \
             store them in the repository's object store, on the disk the repository lives on"
                .into(),
            format!("largest: {}", listing(&now.largest(5))),
            "nothing was written to the repository's object store".into(),
        ],
        format!(
            "remove what the run does not need, or list it in .gitignore \
             (`airlock exec {id} -- rm …`); if the run needs it, raise `max_worktree` under \
             [sandbox] in .airlock/workflow.toml"
        ),
    ))
}

/// The tree of the run's worktree (`Layout::snapshot`), taken only within
/// `max_worktree` and `max_stored`: a snapshot past either is refused
/// before git writes anything.
pub fn snapshot(layout: &Layout, id: &str, sandbox: &Sandbox) -> Result<String> {
    // Counting and writing go together: two snapshots of a run must not
    // both count against the same room.
    let _lock = crate::lock::FileLock::acquire(&layout.run_dir(id).join("quota.lock"), true)?;
    require_worktree_within(layout, id, sandbox)?;
    let (new, largest) = new_content(layout, id)?;
    let record = layout.run_dir(id).join("stored");
    let stored = read_stored(&record)?;
    let total = stored.saturating_add(new);
    if total > sandbox.max_stored {
        return Err(Error::refused(
            crate::error::Code::SnapshotQuota,
            format!(
                "a snapshot of run {id} would store {} of new or changed files in the repository's \
                 object store; with the {} its earlier snapshots stored, that is over the limit of {}",
                human(new),
                human(stored),
                human(sandbox.max_stored)
            ),
            vec![
                "`max_stored` under [sandbox] in .airlock/workflow.toml caps what a run's \
                 snapshots (check, submit, approve, promote) write into the repository's object \
                 store over the run's life, on the disk the repository lives on"
                    .into(),
                format!("largest new or changed: {}", listing(&largest)),
                "nothing was written to the repository's object store".into(),
            ],
            format!(
                "remove what the run does not need, or list it in .gitignore \
                 (`airlock exec {id} -- rm …`); if the run needs it, raise `max_stored` under \
                 [sandbox] in .airlock/workflow.toml"
            ),
        ));
    }
    // Counted before git writes: a snapshot cut short counts as taken,
    // never the other way round.
    if new > 0 {
        crate::layout::write_atomic(&record, total.to_string().as_bytes())?;
    }
    layout.snapshot(id)
}

/// What the run's snapshots have stored so far.
fn read_stored(record: &Path) -> Result<u64> {
    match std::fs::read_to_string(record) {
        Ok(text) => text.trim().parse().map_err(|_| {
            Error::Corrupt(format!(
                "{} does not hold a number of bytes; it counts what the run's snapshots stored \
                 (only airlock writes it, and commands of the run cannot see it): end the run \
                 with `airlock reject`",
                record.display()
            ))
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
        Err(source) => Err(Error::Read {
            path: record.to_path_buf(),
            source,
        }),
    }
}

/// The bytes `git add --all` would write for the run's worktree: every
/// file that is untracked (and not ignored) or modified against the run's
/// private index, as git itself lists them; and the five largest.
fn new_content(layout: &Layout, id: &str) -> Result<(u64, Vec<(String, u64)>)> {
    let listed = layout.run_git(id).run(&[
        "ls-files",
        "-z",
        "--modified",
        "--others",
        "--exclude-standard",
    ])?;
    let worktree = layout.worktree(id);
    // A path in conflict is listed once per stage.
    let mut sizes = BTreeMap::new();
    for path in listed.split(|b| *b == 0).filter(|p| !p.is_empty()) {
        let rel = Path::new(std::ffi::OsStr::from_bytes(path));
        // Deleted files are listed as modified; directories are nested
        // repositories, stored as a commit id.
        let Ok(meta) = std::fs::symlink_metadata(worktree.join(rel)) else {
            continue;
        };
        if meta.is_file() || meta.file_type().is_symlink() {
            sizes.insert(path, meta.len());
        }
    }
    let total = sizes
        .values()
        .fold(0u64, |sum, size| sum.saturating_add(*size));
    let mut files: Vec<(String, u64)> = sizes
        .into_iter()
        .map(|(path, size)| (String::from_utf8_lossy(path).into_owned(), size))
        .collect();
    files.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    files.truncate(5);
    Ok((total, files))
}

#[cfg(test)]
mod tests {
    use super::human;

    #[test]
    fn sizes_read_as_people_read_them() {
        assert_eq!(human(0), "0 B");
        assert_eq!(human(1023), "1023 B");
        assert_eq!(human(1024), "1.0 KiB");
        assert_eq!(human(5 << 20), "5.0 MiB");
        assert_eq!(human(3 << 29), "1.5 GiB");
        assert_eq!(human(u64::MAX), "16777216.0 TiB");
    }
}
