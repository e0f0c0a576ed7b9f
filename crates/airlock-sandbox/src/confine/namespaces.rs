//! The namespaces of a sandbox: user (with the caller's uid and gid mapped
//! to themselves), mount, pid, IPC, UTS and network; the pid namespace's
//! process cap; the network namespace's loopback.

use super::{InitSpec, SetupError, check, errno, fail};

pub(crate) fn enter_namespaces(spec: &InitSpec) -> Result<(), SetupError> {
    let (uid, gid) = (
        rustix::process::getuid().as_raw(),
        rustix::process::getgid().as_raw(),
    );
    let mut flags = libc::CLONE_NEWUSER
        | libc::CLONE_NEWNS
        | libc::CLONE_NEWPID
        | libc::CLONE_NEWIPC
        | libc::CLONE_NEWUTS;
    if !spec.network {
        flags |= libc::CLONE_NEWNET;
    }
    // libc: rustix's unshare is unsafe as well (unshare_unsafe).
    // SAFETY: unshare in a single-threaded process.
    check(
        unsafe { libc::unshare(flags) },
        "creating user, mount, pid and network namespaces",
    )?;
    std::fs::write("/proc/self/setgroups", "deny")
        .map_err(|e| fail("denying setgroups in the user namespace", e))?;
    std::fs::write("/proc/self/uid_map", format!("{uid} {uid} 1"))
        .map_err(|e| fail("mapping the user id", e))?;
    std::fs::write("/proc/self/gid_map", format!("{gid} {gid} 1"))
        .map_err(|e| fail("mapping the group id", e))?;
    Ok(())
}

/// Caps the processes of the current pid namespace. RLIMIT_NPROC does not
/// bind the host's root user (the kernel exempts it), so the namespace's own
/// pid_max (Linux >= 6.14, at least 301) bounds the processes in it whatever
/// the uid. Pid 0 is never used and PID 1 is ours. Older kernels refuse the
/// write and keep RLIMIT_NPROC only.
pub(crate) fn cap_pids(n: u64) {
    set_pid_max(&n.saturating_add(2).max(301).to_string());
}

const PID_MAX: &str = "/proc/sys/kernel/pid_max";

/// The current pid namespace's pid_max, as the kernel writes it.
pub(crate) fn pid_max() -> Option<String> {
    std::fs::read_to_string(PID_MAX)
        .ok()
        .map(|v| v.trim().to_string())
}

/// Sets the current pid namespace's pid_max (see [`cap_pids`]).
pub(crate) fn set_pid_max(value: &str) {
    let _ = std::fs::write(PID_MAX, value);
}

/// Brings up `lo` in the new network namespace: tests can serve on 127.0.0.1
/// without reaching the host's loopback.
pub(crate) fn loopback_up() -> Result<(), SetupError> {
    // libc: rustix has no SIOCGIFFLAGS/SIOCSIFFLAGS.
    // SAFETY: an ioctl on a socket we own, with a zeroed, filled-in ifreq.
    unsafe {
        let sock = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        if sock < 0 {
            return Err(errno("opening a socket to configure loopback"));
        }
        let mut req: libc::ifreq = std::mem::zeroed();
        for (i, b) in b"lo\0".iter().enumerate() {
            req.ifr_name[i] = *b as libc::c_char;
        }
        let rc = libc::ioctl(sock, libc::SIOCGIFFLAGS, &mut req);
        if rc < 0 {
            libc::close(sock);
            return Err(errno("reading loopback flags"));
        }
        req.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
        let rc = libc::ioctl(sock, libc::SIOCSIFFLAGS, &req);
        libc::close(sock);
        check(rc, "bringing up the sandbox's loopback")
    }
}
