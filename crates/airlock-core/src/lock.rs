//! Exclusive advisory locks on files (flock), released when the process
//! exits however it exits, which is what crash recovery relies on.

use std::fs::File;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};

use crate::error::{Error, Result};

/// An exclusive lock held for the life of the value.
pub struct FileLock(#[allow(dead_code)] File);

impl FileLock {
    pub fn acquire(path: &std::path::Path, wait: bool) -> Result<Option<FileLock>> {
        if let Some(dir) = path.parent() {
            // Locks live in airlock's own directories: private whatever
            // the umask.
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|source| Error::Write {
                    path: dir.to_path_buf(),
                    source,
                })?;
        }
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(path)
            .map_err(|source| Error::Write {
                path: path.to_path_buf(),
                source,
            })?;
        use rustix::fs::FlockOperation;
        let op = if wait {
            FlockOperation::LockExclusive
        } else {
            FlockOperation::NonBlockingLockExclusive
        };
        // Released when the file closes.
        let locked = rustix::fs::flock(&file, op).is_ok();
        Ok(locked.then_some(FileLock(file)))
    }
}
