//! What changes when a file is written in place or replaced, and when a
//! copy of what it said can stand for it: a file written in the same clock
//! tick as it was read could change again without its times changing, so
//! only a file last written well before the read is trusted unchanged by
//! its stamp (git's "racily clean" index entries).

use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

/// How long before a read a file must have been last written for its
/// stamp to vouch for the copy: well over a clock tick.
pub const SETTLED: Duration = Duration::from_secs(2);

/// A file's device, inode, size and change times.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileStamp {
    pub dev: u64,
    pub ino: u64,
    pub len: u64,
    pub mtime: (i64, i64),
    pub ctime: (i64, i64),
}

impl FileStamp {
    pub fn of(meta: &std::fs::Metadata) -> FileStamp {
        use std::os::unix::fs::MetadataExt;
        FileStamp {
            dev: meta.dev(),
            ino: meta.ino(),
            len: meta.len(),
            mtime: (meta.mtime(), meta.mtime_nsec()),
            ctime: (meta.ctime(), meta.ctime_nsec()),
        }
    }

    /// Whether the file was last written at least [`SETTLED`] before
    /// `read_at`, so that a later write shows in its stamp.
    pub fn settled_by(&self, read_at: SystemTime) -> bool {
        let (secs, nanos) = self.mtime;
        SystemTime::UNIX_EPOCH
            .checked_add(Duration::new(
                secs.max(0) as u64,
                nanos.clamp(0, 999_999_999) as u32,
            ))
            .is_some_and(|written| written + SETTLED <= read_at)
    }
}
