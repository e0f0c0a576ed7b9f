//! Crash-safe file writes: a file is replaced whole or not at all, and no
//! temporary file outlives a failed write.
//!
//! ```
//! # let dir = tempfile::tempdir().unwrap();
//! let path = dir.path().join("state.json");
//! airlock_fs::write(&path, b"{}").unwrap();
//! airlock_fs::Write::new().mode(0o600).write(&path, b"{\"a\":1}").unwrap();
//! assert_eq!(std::fs::read(&path).unwrap(), b"{\"a\":1}");
//! ```

mod private;

pub use private::private_dir;

use std::io::{self, Write as _};
use std::path::Path;

/// Replaces `path` with `data` durably; see [`Write`] for the steps.
pub fn write(path: &Path, data: &[u8]) -> io::Result<()> {
    Write::new().write(path, data)
}

/// Renames `from` to `to` (replacing it) and syncs the directory of `to`,
/// so that the rename survives a crash. `from` should already be synced.
pub fn rename(from: &Path, to: &Path) -> io::Result<()> {
    std::fs::rename(from, to)?;
    sync_dir(parent(to))
}

/// How a file is written: a temporary file in the target's directory,
/// written whole, synced, renamed over the target, then the directory
/// synced. The temporary file is removed on every error path.
#[derive(Debug, Clone)]
pub struct Write {
    mode: u32,
    clobber: bool,
    durable: bool,
}

impl Default for Write {
    fn default() -> Self {
        Self::new()
    }
}

impl Write {
    /// Replace the target, synced, with the permissions `File::create` gives.
    pub fn new() -> Self {
        Write {
            mode: 0o666,
            clobber: true,
            durable: true,
        }
    }

    /// Permission bits of the new file (the umask still applies); ignored
    /// off Unix.
    pub fn mode(mut self, mode: u32) -> Self {
        self.mode = mode;
        self
    }

    /// Fail with [`io::ErrorKind::AlreadyExists`] when the target exists,
    /// rather than replacing it: a concurrent creator wins.
    pub fn no_clobber(mut self) -> Self {
        self.clobber = false;
        self
    }

    /// Skip both syncs: for a cache, whose loss in a crash only costs time.
    /// Readers still see the old file or the new one whole.
    pub fn cache(mut self) -> Self {
        self.durable = false;
        self
    }

    /// Writes `data` to `path` as configured.
    pub fn write(&self, path: &Path, data: &[u8]) -> io::Result<()> {
        let dir = parent(path);
        let name = path
            .file_name()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no file name"))?;
        let mut prefix = std::ffi::OsString::from(".");
        prefix.push(name);
        prefix.push(".");
        let mut builder = tempfile::Builder::new();
        builder.prefix(&prefix).suffix(".tmp");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            builder.permissions(std::fs::Permissions::from_mode(self.mode));
        }
        // Dropped on every early return below, which removes it.
        let mut tmp = builder.tempfile_in(dir)?;
        tmp.as_file_mut().write_all(data)?;
        if self.durable {
            tmp.as_file().sync_all()?;
        }
        let persisted = if self.clobber {
            tmp.persist(path)
        } else {
            tmp.persist_noclobber(path)
        };
        // The error carries the temporary file; dropping it removes it.
        persisted.map_err(|e| e.error)?;
        if self.durable {
            sync_dir(dir)?;
        }
        Ok(())
    }
}

fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Makes a rename in `dir` durable.
fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    std::fs::File::open(dir)?.sync_all()?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// Bytes on disk below `path`, links not followed.
pub fn disk_usage(path: &Path) -> u64 {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return 0;
    };
    let mut bytes = std::os::unix::fs::MetadataExt::blocks(&meta) * 512;
    if meta.is_dir()
        && let Ok(entries) = std::fs::read_dir(path)
    {
        for entry in entries.flatten() {
            bytes += disk_usage(&entry.path());
        }
    }
    bytes
}
