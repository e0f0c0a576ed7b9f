//! The file operations the store's files need: private directories and
//! atomic writes, both `airlock-fs`'s.

pub use airlock_fs::private_dir;

use std::path::Path;

use crate::error::{Error as StoreError, Result};

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
