//! A leader forked ahead by the host: waits for a connection, checks that the
//! sandbox's hidden paths are still covered, runs the command in namespaces of
//! its own and answers with its reports.

use super::{
    DIR_FD, HostSpec, LISTEN_FD, LOCK_FD, MAX_REQUEST, Response, bridged, is_mount_point,
    make_namespace, recv_with_fds, reports_left, send_with_fds, socket_pair, watch,
};
use crate::confine::{self, InitReport, fail};
use rustix::event::{PollFd, PollFlags, Timespec, poll};
use rustix::io::Errno;
use rustix::net::{RecvFlags, SendFlags};
use rustix::process::{
    Pid, Signal, WaitOptions, kill_process, set_parent_process_death_signal, waitpid,
};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::time::{Duration, Instant};

/// A leader forked before its command arrives.
pub(crate) struct Spare {
    pub(crate) pid: libc::pid_t,
    /// Where the host hands it the client's connection.
    handoff: OwnedFd,
}

impl Spare {
    /// Gives it the connection `conn`; its pid, if it took it.
    pub(crate) fn hand(self, conn: BorrowedFd<'_>) -> Option<libc::pid_t> {
        send_with_fds(&self.handoff, b"c", &[conn])
            .ok()
            .map(|()| self.pid)
    }
}

pub(crate) fn spare(
    spec: &HostSpec,
    prepared: &confine::Prepared,
    covered: &[Vec<u8>],
) -> Option<Spare> {
    let (ours, theirs) = socket_pair().ok()?;
    // libc: rustix has no fork.
    // SAFETY: fork in this single-threaded PID 1; the child leads one
    // command and leaves through _exit.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return None;
    }
    if pid == 0 {
        drop(ours);
        // libc: the host's descriptors are known by number.
        // SAFETY: a leader needs neither the listener, the lock nor the
        // directory.
        unsafe {
            libc::close(LISTEN_FD);
            libc::close(LOCK_FD);
            libc::close(DIR_FD);
        }
        let code = lead(spec, theirs, prepared, covered);
        // SAFETY: leaving the forked child.
        unsafe { libc::_exit(code) };
    }
    drop(theirs);
    Some(Spare { pid, handoff: ours })
}

/// A leader: makes its command's namespaces and PID 1 first, then waits for
/// the connection the host hands it on `handoff`, runs the command it
/// carries, and answers. Returns the leader's exit code.
fn lead(
    spec: &HostSpec,
    handoff: OwnedFd,
    prepared: &confine::Prepared,
    covered: &[Vec<u8>],
) -> i32 {
    // A leader dies with its host.
    let _ = set_parent_process_death_signal(Some(Signal::KILL));
    // With egress, a network namespace and a bridge of the command's own,
    // made before its pid namespace (see `bridged`).
    let ahead = spec
        .init
        .egress
        .as_ref()
        .map(|e| bridged::ahead(e.port, &[handoff.as_raw_fd()]))
        .transpose();
    let (mut bridge, made) = match ahead {
        Ok(bridge) => {
            let made = make_namespace(spec, prepared, bridged::raw(bridge.as_ref()));
            (bridge, made)
        }
        Err(e) => (None, Err(e)),
    };
    let mut byte = [0u8; 1];
    let Ok((_, conns)) = recv_with_fds(&handoff, &mut byte) else {
        return 1;
    };
    let Some(conn) = conns.into_iter().next() else {
        return 1;
    };
    let conn = conn.as_fd();
    // A path this sandbox hid that is no longer covered (the file behind it
    // was replaced on the host) must not be shown: refuse, and end the host.
    if let Some(path) = covered.iter().find(|p| is_mount_point(p) == Some(false)) {
        // The command, if it came already, is read and dropped: a socket
        // closed with unread data resets the client's end, which would
        // then lose this answer.
        let mut discard = vec![0u8; MAX_REQUEST];
        let _ = rustix::net::recv(conn, &mut discard[..], RecvFlags::DONTWAIT);
        respond(
            conn,
            vec![InitReport::SetupFailed {
                step: STALE_STEP.into(),
                error: format!(
                    "{} is no longer hidden in it (it was replaced since); run the command again",
                    String::from_utf8_lossy(path)
                ),
            }],
        );
        return STALE;
    }
    // PID 1 takes the command straight from the client and answers it
    // itself: two hand-offs fewer for every command. The leader stays to
    // stop the command if the client hangs up, and to answer if PID 1
    // could not.
    let reports = match made {
        Err(e) => vec![e.into()],
        Ok((pid, mut reports, to_command)) => {
            match send_with_fds(&to_command, b"c", &[conn]) {
                Ok(()) => {
                    let watched = watch(conn.as_raw_fd(), pid, reports);
                    // The command is over: its bridge goes now, not after
                    // the linger.
                    bridge.take();
                    match watched {
                        None => {
                            linger(conn);
                            return 0;
                        }
                        Some(reports) => reports,
                    }
                }
                // PID 1 ended before the hand-off: what it reported says
                // why, once it and its namespace are gone.
                Err(e) => {
                    // Killing and reaping our own child.
                    if let Some(pid) = Pid::from_raw(pid) {
                        let _ = kill_process(pid, Signal::KILL);
                        let _ = waitpid(Some(pid), WaitOptions::empty());
                    }
                    let mut said = reports_left(&mut reports);
                    if said.is_empty() {
                        said.push(fail("passing the command on", e).into());
                    }
                    said
                }
            }
        }
    };
    respond(conn, reports);
    0
}

/// How long a leader whose command was answered waits for its client to
/// hang up before it ends (and its host builds the next sandbox).
const LINGER_MS: libc::c_int = 1000;

/// Waits, at most [`LINGER_MS`], for the client to close its connection:
/// the host forks the next sandbox once this leader ends, and building it
/// beside the client, which is still recording the command, would slow
/// the client down on a small machine (`Held`).
fn linger(conn: BorrowedFd<'_>) {
    let mut hang_up = [PollFd::new(&conn, PollFlags::RDHUP)];
    let deadline = Instant::now() + Duration::from_millis(LINGER_MS as u64);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let timeout = Timespec::try_from(left).unwrap_or_default();
        let interrupted = poll(&mut hang_up, Some(&timeout)) == Err(Errno::INTR);
        if !interrupted || left.is_zero() {
            return;
        }
    }
}

/// A leader's exit code when the host's view is stale: the host ends.
pub(crate) const STALE: i32 = 3;
/// The step a stale host's refusal names; the command did not start.
pub(crate) const STALE_STEP: &str = "checking the warm sandbox";

/// PID 1's exit code once it has answered the client itself; any other
/// end leaves the answer to the leader.
pub(crate) const ANSWERED: i32 = 0;
pub(crate) const UNANSWERED: i32 = 1;

/// Sends the answer; whether it went.
pub(crate) fn respond(conn: BorrowedFd<'_>, reports: Vec<InitReport>) -> bool {
    let Ok(body) = serde_json::to_vec(&Response { reports }) else {
        return false;
    };
    rustix::net::send(conn, &body, SendFlags::NOSIGNAL) == Ok(body.len())
}
