//! A warm host whose commands go out only through an egress proxy (the
//! host's `InitSpec::egress`): each command gets a network namespace of its
//! own, with its loopback up and a bridge on `127.0.0.1:PORT` to the proxy
//! that airlock started for that command alone.
//!
//! All of it is made by the leader ahead of the command, beside its pid
//! namespace: the leader unshares a network namespace, listens there, and
//! forks the bridge, which waits for the command's proxy. The bridge stays
//! in the host's pid namespace, out of sight of the command (whose pid
//! namespace is made after it). The client sends the directory of its
//! proxy's socket with the command (`Request::egress`); the command's PID 1
//! hands it to the bridge before the command is passed on, and the bridge
//! relays to that socket and no other. It ends when the leader closes its
//! end of their channel, once the command is over.
//!
//! So nothing of one command's network outlives it: a listener or a
//! connection it left is gone with its namespace and its bridge, the next
//! command's bridge leads to the next command's proxy, and every connection
//! a command makes is recorded by its own proxy. A host without a proxy
//! sent refuses the command (it would have no way out), and a proxy that is
//! gone is a connection refused: nothing falls back to a direct route.

use super::{recv_with_fds, send_with_fds, socket_pair};
use crate::confine::bridge::{self, ProxySocket};
use crate::confine::{SetupError, check, errno, fail, loopback_up};
use rustix::process::{Signal, set_parent_process_death_signal};
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};

/// The leader's end of the channel to its command's bridge: the command's
/// PID 1 sends the proxy's directory on it, and closing it ends the bridge.
pub(crate) struct Bridge {
    pub(crate) channel: OwnedFd,
}

/// In the leader, before its command's pid namespace is made: moves the
/// leader (and so the command) into a network namespace of its own, brings
/// its loopback up, listens on `127.0.0.1:port` and forks the bridge.
/// `close` are the leader's descriptors the bridge must not keep.
pub(crate) fn ahead(port: u16, close: &[RawFd]) -> Result<Bridge, SetupError> {
    check(
        // SAFETY: unshare in this single-threaded leader.
        unsafe { libc::unshare(libc::CLONE_NEWNET) },
        "giving the command a network namespace of its own",
    )?;
    loopback_up()?;
    let listener = bridge::listen(port)?;
    let (ours, theirs) = socket_pair().map_err(|e| fail("making the bridge's channel", e))?;
    let leader = rustix::process::getpid();
    // libc: rustix has no fork.
    // SAFETY: fork in this single-threaded leader; the child relays and
    // leaves through _exit.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(errno("forking the egress bridge"));
    }
    if pid == 0 {
        drop(ours);
        // libc: descriptors known by number.
        // SAFETY: closing the leader's descriptors in this copy of it.
        unsafe {
            for fd in close {
                libc::close(*fd);
            }
        }
        // The bridge dies with its leader (and the leader with its host).
        let _ = set_parent_process_death_signal(Some(Signal::KILL));
        let code = if rustix::process::getppid() == Some(leader) {
            match serve(listener, theirs) {
                Ok(()) => 0,
                Err(_) => 1,
            }
        } else {
            1
        };
        // libc: rustix has no _exit, and std's exit would run the parent's handlers.
        // SAFETY: leaving the forked child.
        unsafe { libc::_exit(code) };
    }
    drop((listener, theirs));
    Ok(Bridge { channel: ours })
}

/// The bridge: waits for the command's proxy, then relays to it until the
/// leader hangs up. No proxy (the command never came): nothing to relay.
fn serve(listener: std::net::TcpListener, channel: OwnedFd) -> Result<(), SetupError> {
    let mut name = vec![0u8; 4096];
    let (n, fds) =
        recv_with_fds(&channel, &mut name).map_err(|e| fail("receiving the egress proxy", e))?;
    let Some(dir) = fds.into_iter().next() else {
        return Ok(());
    };
    let proxy = ProxySocket::of(dir, &name[..n]);
    bridge::serve_until(listener, proxy, channel)
}

/// In the command's PID 1, once the command has come: hands its proxy's
/// directory and socket name to the bridge, or refuses a command that
/// brought no proxy to a host whose commands have no other way out (and
/// one that brought a proxy to a host without a bridge).
pub(crate) fn hand_proxy(
    bridge: Option<RawFd>,
    name: Option<&[u8]>,
    dir: Option<OwnedFd>,
) -> Result<(), SetupError> {
    let step = "connecting the command to its egress proxy";
    match (bridge, name, dir) {
        (None, None, None) => Ok(()),
        (Some(channel), Some(name), Some(dir)) => {
            // SAFETY: the leader's channel, inherited and open for as long as
            // this process runs.
            let channel = unsafe { std::os::fd::BorrowedFd::borrow_raw(channel) };
            send_with_fds(channel, name, &[dir.as_fd()]).map_err(|e| fail(step, e))
        }
        (Some(_), _, _) => Err(fail(
            step,
            "this warm sandbox's commands go out only through an egress proxy, and the command \
             brought none",
        )),
        (None, _, _) => Err(fail(
            step,
            "the command brought an egress proxy to a warm sandbox that has no bridge",
        )),
    }
}

/// The number of the bridge's channel, as the command's PID 1 inherits it.
pub(crate) fn raw(bridge: Option<&Bridge>) -> Option<RawFd> {
    bridge.map(|b| b.channel.as_raw_fd())
}
