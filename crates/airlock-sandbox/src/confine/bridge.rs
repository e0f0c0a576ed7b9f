//! The bridge of a sandbox whose only way out is a proxy (see
//! [`crate::Egress`]): a listener on the sandbox's own loopback that hands
//! each TCP connection it accepts to the proxy outside, over the proxy's
//! Unix socket (`SCM_RIGHTS`): the proxy serves the accepted socket itself
//! and splices between it and the upstream, so the bytes cross the kernel
//! once fewer than through a relay here. Only that way: the bridge never
//! reads from the proxy's socket, so no descriptor (a socket of the host's
//! network, which its holder could disconnect with `AF_UNSPEC` and connect
//! anywhere) ever comes into the sandbox. The proxy checks what it is
//! handed (`airlock_egress::handoff`).
//!
//! It runs in the init process, as the loop that waits for PID 1: that
//! process is in the sandbox's network namespace (so its listener is on the
//! sandbox's loopback, made before the command exists), but outside its pid
//! namespace (so the command can neither see, signal nor trace it) and never
//! confined (it is airlock's own code, handing sockets over). One thread, with
//! non-blocking sockets: a process that has unshared its pid namespace
//! cannot start threads. It ends when PID 1 does; if it is gone,
//! connections are refused, and there is no other way out.
//!
//! The socket is reached through its directory, opened before PID 1
//! replaces the root: `pivot_root` moves the init's root too, but a
//! directory opened before stays reachable, and a name connected to
//! relative to it (the init's working directory) is that socket and no
//! other. The command's own view never holds the socket (it is hidden as
//! every host socket is); nothing the command sends can choose another
//! destination.

use super::{EgressSpec, SetupError, fail, failed, os};
use rustix::event::{PollFd, PollFlags, poll};
use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;
use rustix::net::{SendAncillaryBuffer, SendAncillaryMessage, SendFlags, sendmsg};
use rustix::process::{Pid, PidfdFlags, pidfd_open};
use std::io::{self, IoSlice};
use std::mem::MaybeUninit;
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;

/// The proxy's socket, reachable whatever root the process has since.
pub(crate) struct ProxySocket {
    dir: OwnedFd,
    name: PathBuf,
}

/// Opens the directory of the proxy's socket. Before the sandbox's root
/// replaces the host's.
pub(crate) fn open_proxy_socket(egress: &EgressSpec) -> Result<ProxySocket, SetupError> {
    let dir = os(&egress.dir);
    let fd = rustix::fs::open(
        &dir,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(failed(format!(
        "opening the directory of the egress proxy's socket ({})",
        String::from_utf8_lossy(&egress.dir)
    )))?;
    Ok(ProxySocket {
        dir: fd,
        name: PathBuf::from(os(&egress.name)),
    })
}

/// Listens on `127.0.0.1:port` of the current network namespace (the
/// sandbox's, with its loopback up).
pub(crate) fn listen(port: u16) -> Result<TcpListener, SetupError> {
    TcpListener::bind((Ipv4Addr::LOCALHOST, port)).map_err(|e| {
        fail(
            format!("listening on 127.0.0.1:{port} for the egress bridge"),
            e,
        )
    })
}

/// Hands every connection `listener` accepts to the proxy until PID 1
/// (`pid`) exits; then returns.
pub(crate) fn serve_until_exit(
    listener: TcpListener,
    proxy: ProxySocket,
    pid: libc::pid_t,
) -> Result<(), SetupError> {
    let step = "handing the egress bridge's connections to the proxy";
    let pid1 = Pid::from_raw(pid).ok_or_else(|| fail(step, "PID 1 has no pid"))?;
    let exited = pidfd_open(pid1, PidfdFlags::empty()).map_err(failed(step))?;
    listener.set_nonblocking(true).map_err(|e| fail(step, e))?;
    loop {
        let mut fds = [
            PollFd::new(&exited, PollFlags::IN),
            PollFd::new(&listener, PollFlags::IN),
        ];
        match poll(&mut fds, None) {
            Ok(_) | Err(Errno::INTR) => {}
            Err(e) => return Err(failed(step)(e)),
        }
        let (ended, waiting) = (!fds[0].revents().is_empty(), !fds[1].revents().is_empty());
        if ended {
            return Ok(());
        }
        if waiting {
            loop {
                match listener.accept() {
                    // The bridge's copy is closed either way: the proxy
                    // holds the connection now, or nobody does (refused).
                    Ok((client, _)) => {
                        let _ = hand_off(&client, &proxy);
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(_) => break,
                }
            }
        }
    }
}

/// The byte a hand-off carries its descriptor with: `airlock_egress::handoff::HANDOFF`
/// (this crate does not depend on the proxy's; the egress tests run both).
const HANDOFF: u8 = 0;

/// Connects to the proxy and hands it `client`: the marker byte with the
/// socket as `SCM_RIGHTS`. Nothing is ever read from the proxy's side, so
/// no descriptor can come back into the sandbox's namespace.
fn hand_off(client: &TcpStream, proxy: &ProxySocket) -> io::Result<()> {
    // Each time: PID 1's `pivot_root` moves a working directory that
    // is the old root (a socket in `/`) to the new one.
    rustix::process::fchdir(&proxy.dir)?;
    let upstream = UnixStream::connect(&proxy.name)?;
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    let handed = [client.as_fd()];
    control.push(SendAncillaryMessage::ScmRights(&handed));
    loop {
        match sendmsg(
            &upstream,
            &[IoSlice::new(&[HANDOFF])],
            &mut control,
            SendFlags::NOSIGNAL,
        ) {
            Ok(_) => return Ok(()),
            Err(Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
}
