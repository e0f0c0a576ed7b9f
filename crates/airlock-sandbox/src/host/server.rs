//! PID 1 of a warm host: listens on the host's socket, keeps a leader ready
//! for the next command, hands each connection to it, and exits when idle
//! with no connection pending.

use super::{
    DIR_FD, HostSpec, LISTEN_FD, LOCK_FD, READY_FD, SPEC_FD, STALE, spare, statx_nofollow,
};
use crate::confine::{self, InitReport, SetupError, errno};
use rustix::event::{PollFd, PollFlags, Timespec, poll};
use rustix::fs::{AtFlags, FlockOperation, flock, statat, unlinkat};
use rustix::net::{SocketFlags, accept_with};
use rustix::process::{Pid, PidfdFlags, WaitOptions, getuid, pidfd_open, wait};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::{Duration, Instant};

pub(crate) fn start_host() -> Result<(), SetupError> {
    // libc: these descriptors are known by number and may not be open.
    // Nothing the commands run may inherit these.
    // SAFETY: fcntl on descriptor numbers; harmless if they are not open.
    unsafe {
        for fd in [LISTEN_FD, READY_FD, LOCK_FD, DIR_FD, SPEC_FD] {
            libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
        }
    }
    let spec: HostSpec = confine::read_spec(SPEC_FD)?;
    confine::enter_namespaces(&spec.init)?;
    // libc: rustix has no fork.
    // SAFETY: single-threaded process; the child is PID 1 of the new pid
    // namespace and leaves through _exit.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(errno("forking PID 1 of the sandbox host"));
    }
    if pid == 0 {
        let code = confine::code_or_report(serve(&spec).map(|()| 0), READY_FD);
        // libc: rustix has no _exit, and std's exit would run the parent's handlers.
        // SAFETY: leaving the forked child without the parent's destructors.
        unsafe { libc::_exit(code) };
    }
    // PID 1 outlives this process (it is not airlock's to wait for); the
    // readiness report comes from PID 1 itself.
    Ok(())
}

/// PID 1 of a host: build the sandbox, then serve until idle.
fn serve(spec: &HostSpec) -> Result<(), SetupError> {
    confine::build_root(&spec.init)?;
    if !spec.init.network {
        confine::loopback_up()?;
    }
    // What the sandbox covers now, checked again before every command.
    let covered: Vec<Vec<u8>> = spec
        .init
        .hidden
        .iter()
        .filter(|p| is_mount_point(p) == Some(true))
        .cloned()
        .collect();
    // Built once, applied by every command.
    let prepared = confine::prepare(&spec.init, true)?;
    // The processor's features, looked up once here and inherited by every
    // process forked for a command, rather than looked up by each: in a
    // virtual machine every `cpuid` traps, a few microseconds apiece.
    #[cfg(target_arch = "x86_64")]
    let _ = std::arch::is_x86_feature_detected!("avx2");
    confine::report_to(READY_FD, &InitReport::Ready);
    // libc: the descriptor is inherited by number.
    // SAFETY: closing our own descriptor: the client reads to its end.
    unsafe { libc::close(READY_FD) };

    let idle = Duration::from_millis(spec.idle_ms);
    let mut leaders = std::collections::BTreeSet::new();
    let mut last = Instant::now();
    // A leader forked ahead, its command's namespaces made: a command that
    // arrives starts without waiting for them. The next one is forked once
    // the command before has ended, not beside it: on a small machine the
    // fork would compete with the command for the CPU.
    let mut ready = spare(spec, &prepared, &covered);
    // A leader of a command in flight (its pid and a pidfd), to learn when
    // it ends.
    let mut busy: Option<(libc::pid_t, OwnedFd)> = None;
    loop {
        // Reaping our children (leaders, and orphans reparented to us).
        while let Ok(Some((pid, status))) = wait(WaitOptions::NOHANG) {
            let pid = pid.as_raw_nonzero().get();
            if leaders.remove(&pid) {
                last = Instant::now();
                if status.exit_status() == Some(STALE) {
                    // The view moved under this host: no command more here.
                    remove_socket(spec);
                    return Ok(());
                }
            }
            if ready.as_ref().is_some_and(|s| s.pid == pid) {
                ready = None;
            }
        }
        // A reaped leader's pidfd stays readable: watch one still running.
        if busy.as_ref().is_some_and(|(pid, _)| !leaders.contains(pid)) {
            busy = None;
        }
        if busy.is_none() {
            busy = leaders
                .iter()
                .find_map(|&pid| pidfd(pid).map(|fd| (pid, fd)));
        }
        if leaders.is_empty() && ready.is_none() {
            ready = spare(spec, &prepared, &covered);
        }
        let wait = if leaders.is_empty() {
            idle.saturating_sub(last.elapsed())
        } else {
            Duration::from_secs(1)
        };
        let timeout = wait.as_millis().clamp(1, 1000) as libc::c_int;
        let (incoming, _) = poll_two(
            inherited(LISTEN_FD),
            busy.as_ref().map(|(_, fd)| fd.as_fd()),
            timeout,
        );
        if incoming {
            let Ok(conn) = accept_with(inherited(LISTEN_FD), SocketFlags::CLOEXEC) else {
                continue;
            };
            // Only this user's processes: the hosts' directory is private,
            // and whoever reaches the socket anyway (a privileged process
            // of another user) runs nothing as this one. A uid outside the
            // sandbox's user namespace reads as the overflow uid here.
            if crate::private::peer(conn.as_raw_fd()).map(|c| c.uid) != Some(getuid().as_raw()) {
                continue;
            }
            // The spare leader takes the connection; without one (it died,
            // or could not be forked), a new one does.
            let handed = ready
                .take()
                .and_then(|s| s.hand(conn.as_fd()))
                .or_else(|| spare(spec, &prepared, &covered).and_then(|s| s.hand(conn.as_fd())));
            if let Some(pid) = handed {
                leaders.insert(pid);
                if busy.is_none() {
                    busy = pidfd(pid).map(|fd| (pid, fd));
                }
            }
            // The leader has its own copy.
            drop(conn);
            // Commands overlap (or the leader's end cannot be watched): the
            // next one should not wait for a fork either.
            if leaders.len() > 1 || busy.is_none() {
                ready = spare(spec, &prepared, &covered);
            }
            continue;
        }
        // Ended from outside (evicted, or its run finished): its socket is
        // gone. Whatever connected before that is served first.
        if leaders.is_empty() && !socket_is_ours(spec) && !poll_two(inherited(LISTEN_FD), None, 0).0
        {
            return Ok(());
        }
        if leaders.is_empty() && last.elapsed() >= idle {
            let lock = inherited(LOCK_FD);
            if flock(lock, FlockOperation::NonBlockingLockExclusive).is_ok() {
                if !poll_two(inherited(LISTEN_FD), None, 0).0 {
                    // Returning closes the listener; the namespace goes with
                    // us. The socket's name goes first, under the lock.
                    remove_socket(spec);
                    return Ok(());
                }
                let _ = flock(lock, FlockOperation::Unlock);
            }
        }
    }
}

/// A descriptor the host inherits by number.
fn inherited(fd: RawFd) -> BorrowedFd<'static> {
    // SAFETY: LISTEN_FD, LOCK_FD and DIR_FD are set up by the client that
    // starts the host and stay open in PID 1 for as long as it serves.
    unsafe { BorrowedFd::borrow_raw(fd) }
}

/// Whether the host's socket is still in its directory under its name.
fn socket_is_ours(spec: &HostSpec) -> bool {
    if spec.socket_ino == 0 {
        return true; // not known: only the idle time ends this host
    }
    statat(
        inherited(DIR_FD),
        spec.socket.as_str(),
        AtFlags::SYMLINK_NOFOLLOW,
    )
    .is_ok_and(|st| st.st_ino == spec.socket_ino)
}

/// Removes the host's socket from its directory, unless the name now
/// belongs to another host's socket.
fn remove_socket(spec: &HostSpec) {
    let dir = inherited(DIR_FD);
    let name = spec.socket.as_str();
    if statat(dir, name, AtFlags::SYMLINK_NOFOLLOW).is_ok_and(|st| st.st_ino == spec.socket_ino) {
        let _ = unlinkat(dir, name, AtFlags::empty());
    }
}

/// Polls `fd` and, if given, `other` for input; which of them have it.
fn poll_two(
    fd: BorrowedFd<'_>,
    other: Option<BorrowedFd<'_>>,
    timeout_ms: libc::c_int,
) -> (bool, bool) {
    let mut fds = vec![PollFd::new(&fd, PollFlags::IN)];
    if let Some(other) = &other {
        fds.push(PollFd::new(other, PollFlags::IN));
    }
    let timeout = Timespec {
        tv_sec: i64::from(timeout_ms / 1000),
        tv_nsec: i64::from(timeout_ms % 1000) * 1_000_000,
    };
    let ready = poll(&mut fds, Some(&timeout)).is_ok_and(|n| n > 0);
    let has_input = |i: usize| ready && fds.get(i).is_some_and(|f| !f.revents().is_empty());
    (has_input(0), has_input(1))
}

/// A descriptor that becomes readable when our child `pid` exits.
fn pidfd(pid: libc::pid_t) -> Option<OwnedFd> {
    pidfd_open(Pid::from_raw(pid)?, PidfdFlags::empty()).ok()
}

/// Whether `path` is a mount point in this mount namespace (`None` when it
/// cannot be told: gone, or a kernel without mount ids in `statx`).
pub(crate) fn is_mount_point(path: &[u8]) -> Option<bool> {
    let mount_id = |p: &[u8]| -> Option<u64> {
        let st = statx_nofollow(p, libc::STATX_MNT_ID)?;
        (st.stx_mask & libc::STATX_MNT_ID != 0).then_some(st.stx_mnt_id)
    };
    let parent = Path::new(std::ffi::OsStr::from_bytes(path)).parent()?;
    let here = match mount_id(path) {
        Some(id) => id,
        // Gone: whatever covered it went with it.
        None if std::fs::symlink_metadata(std::ffi::OsStr::from_bytes(path)).is_err() => {
            return Some(false);
        }
        None => return None,
    };
    Some(here != mount_id(parent.as_os_str().as_bytes())?)
}
