//! Reading what a gate left for its test counts: its JUnit report, beneath
//! the worktree through no link, or the end of its output logs. The
//! parsers are the model's ([`airlock_model::counts`]).

use std::io::Read;
use std::path::Path;

use airlock_model::counts::{
    MAX_JUNIT_BYTES, MAX_OUTPUT_BYTES, TestCounts, from_junit, from_output,
};

/// The counts of a gate: from its JUnit report (`junit`, relative to the
/// worktree) if it has one that parses, else from its output logs.
pub fn of_gate(
    worktree: &Path,
    junit: Option<&str>,
    stdout: &Path,
    stderr: &Path,
) -> Option<TestCounts> {
    if let Some(counts) = junit
        .and_then(|rel| read_beneath(worktree, rel, MAX_JUNIT_BYTES))
        .and_then(|bytes| from_junit(&bytes))
    {
        return Some(counts);
    }
    let out = read_end(stdout, MAX_OUTPUT_BYTES).unwrap_or_default();
    let err = read_end(stderr, MAX_OUTPUT_BYTES).unwrap_or_default();
    from_output(&format!("{out}\n{err}"))
}

/// The last `max` bytes of a file, as text (invalid UTF-8 replaced).
pub fn read_end(path: &Path, max: u64) -> std::io::Result<String> {
    use std::io::{Seek, SeekFrom};
    let mut file = std::fs::File::open(path)?;
    let len = file.metadata()?.len();
    if len > max {
        file.seek(SeekFrom::Start(len - max))?;
    }
    let mut bytes = Vec::new();
    file.take(max).read_to_end(&mut bytes)?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// A regular file at `rel` below `dir`, read only if it resolves beneath
/// `dir` through no link (the worktree is the agent's: a link could point
/// at anything airlock's user can read) and is at most `max` bytes.
fn read_beneath(dir: &Path, rel: &str, max: u64) -> Option<Vec<u8>> {
    use rustix::fs::{Mode, OFlags, ResolveFlags};
    let root = rustix::fs::open(
        dir,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .ok()?;
    let fd = rustix::fs::openat2(
        &root,
        rel,
        // NONBLOCK: a FIFO planted there must not hang the check.
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS,
    )
    .ok()?;
    let stat = rustix::fs::fstat(&fd).ok()?;
    if rustix::fs::FileType::from_raw_mode(stat.st_mode) != rustix::fs::FileType::RegularFile
        || stat.st_size as u64 > max
    {
        return None;
    }
    let mut bytes = Vec::new();
    std::fs::File::from(fd)
        .take(max)
        .read_to_end(&mut bytes)
        .ok()?;
    Some(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(passed: u64, failed: u64, skipped: u64, source: &str) -> Option<TestCounts> {
        Some(TestCounts {
            passed,
            failed,
            skipped,
            source: source.into(),
        })
    }

    #[test]
    fn a_junit_path_through_a_link_or_outside_is_not_read() {
        let dir = tempfile::tempdir().unwrap();
        let work = dir.path().join("work");
        std::fs::create_dir_all(work.join("target")).unwrap();
        let report = b"<testsuite><testcase name=\"a\"/></testsuite>";
        std::fs::write(dir.path().join("outside.xml"), report).unwrap();
        std::os::unix::fs::symlink(dir.path().join("outside.xml"), work.join("target/link.xml"))
            .unwrap();
        std::os::unix::fs::symlink(dir.path(), work.join("up")).unwrap();
        let none = Path::new("/nonexistent");
        for rel in ["target/link.xml", "up/outside.xml", "../outside.xml"] {
            assert_eq!(of_gate(&work, Some(rel), none, none), None, "{rel}");
        }
        std::fs::write(work.join("target/junit.xml"), report).unwrap();
        assert_eq!(
            of_gate(&work, Some("target/junit.xml"), none, none),
            counts(1, 0, 0, "junit")
        );
        // A FIFO is not waited on.
        let fifo = work.join("target/fifo.xml");
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &fifo,
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o600),
            0,
        )
        .unwrap();
        assert_eq!(of_gate(&work, Some("target/fifo.xml"), none, none), None);
    }
}
