//! The file operations the store's files need: private directories and
//! atomic writes.

use std::io::{Error, ErrorKind};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::Path;

use crate::error::{Error as StoreError, Result};

/// Makes `dir`, and any parent it lacks, with mode 0700 (the umask only
/// takes bits away). An existing `dir` must be a directory of this user;
/// any group or other permission it has is taken away.
pub fn private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    let meta = std::fs::metadata(dir)?;
    if !meta.is_dir() {
        return Err(Error::new(ErrorKind::NotADirectory, "not a directory"));
    }
    let me = rustix::process::geteuid().as_raw();
    if meta.uid() != me {
        return Err(Error::new(
            ErrorKind::PermissionDenied,
            format!(
                "it belongs to uid {}, not to uid {me}, which runs airlock",
                meta.uid()
            ),
        ));
    }
    if meta.mode() & 0o077 != 0 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

/// Writes a file atomically and durably (`airlock_fs::write`), creating
/// its directory first.
pub fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    let wrap = |source| StoreError::Write {
        path: path.to_path_buf(),
        source,
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(wrap)?;
    airlock_fs::write(path, data).map_err(wrap)
}
