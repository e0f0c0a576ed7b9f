//! Directories and sockets private to the user running airlock, whatever
//! the umask: another user who could enter the warm sandboxes' directory
//! could connect to a host and run commands as this user.

use std::io::{Error, ErrorKind, Result};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::Path;

/// Makes `dir`, and any parent it lacks, with mode 0700 (the umask only
/// takes bits away). An existing `dir` must be a directory of this user;
/// any group or other permission it has is taken away.
pub fn private_dir(dir: &Path) -> Result<()> {
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

/// Who is at the other end of a Unix socket connection (`SO_PEERCRED`), as
/// this process's namespaces see it: a uid its user namespace does not map
/// reads as the overflow uid, a pid outside its pid namespace as 0 (hence
/// libc's `ucred`, not rustix's, whose pid cannot be 0).
pub fn peer(conn: std::os::fd::RawFd) -> Option<libc::ucred> {
    let mut cred = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: getsockopt into a ucred of the given size.
    let rc = unsafe {
        libc::getsockopt(
            conn,
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    };
    (rc == 0 && len as usize == std::mem::size_of::<libc::ucred>()).then_some(cred)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn made_private_and_opened_ones_closed() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("a/b");
        // (Made under umask 000 by the CLI's tests: the umask is the
        // whole process's, and other tests here run beside this one.)
        private_dir(&dir).unwrap();
        for d in [tmp.path().join("a"), dir.clone()] {
            assert_eq!(std::fs::metadata(&d).unwrap().mode() & 0o777, 0o700);
        }
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        private_dir(&dir).unwrap();
        assert_eq!(std::fs::metadata(&dir).unwrap().mode() & 0o777, 0o700);
        let file = tmp.path().join("file");
        std::fs::write(&file, "x").unwrap();
        let err = private_dir(&file).unwrap_err();
        assert!(
            matches!(
                err.kind(),
                ErrorKind::AlreadyExists | ErrorKind::NotADirectory
            ),
            "{err}"
        );
        assert_eq!(std::fs::read(&file).unwrap(), b"x");
    }
}
