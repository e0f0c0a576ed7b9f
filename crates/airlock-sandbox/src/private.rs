//! Directories and sockets private to the user running airlock, whatever
//! the umask: another user who could enter the warm sandboxes' directory
//! could connect to a host and run commands as this user.

pub use airlock_fs::private_dir;

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
