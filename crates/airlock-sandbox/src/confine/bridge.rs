//! The bridge of a sandbox whose only way out is a proxy (see
//! [`crate::Egress`]): a listener on the sandbox's own loopback that relays
//! each TCP connection to the proxy's Unix socket outside.
//!
//! It runs in the init process, as the loop that waits for PID 1: that
//! process is in the sandbox's network namespace (so its listener is on the
//! sandbox's loopback, made before the command exists), but outside its pid
//! namespace (so the command can neither see, signal nor trace it) and never
//! confined (it is airlock's own code, relaying bytes). One thread, with
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
use rustix::net::{RecvFlags, SendFlags, Shutdown, recv, send, shutdown};
use rustix::process::{Pid, PidfdFlags, pidfd_open};
use std::io;
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;

/// Connections relayed at once (each holds two descriptors and two
/// buffers); further ones wait in the listen backlog. As many as the proxy
/// serves at once by default, so the bridge never fills its backlog.
const MAX_CONNECTIONS: usize = 256;

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

/// Relays every connection `listener` accepts to the proxy until PID 1
/// (`pid`) exits; then drops them all and returns.
pub(crate) fn serve_until_exit(
    listener: TcpListener,
    proxy: ProxySocket,
    pid: libc::pid_t,
) -> Result<(), SetupError> {
    let step = "relaying the egress bridge";
    let pid1 = Pid::from_raw(pid).ok_or_else(|| fail(step, "PID 1 has no pid"))?;
    let exited = pidfd_open(pid1, PidfdFlags::empty()).map_err(failed(step))?;
    listener.set_nonblocking(true).map_err(|e| fail(step, e))?;
    let mut relays: Vec<Relay> = Vec::new();
    loop {
        let mut fds = vec![
            PollFd::new(&exited, PollFlags::IN),
            PollFd::new(
                &listener,
                if relays.len() < MAX_CONNECTIONS {
                    PollFlags::IN
                } else {
                    PollFlags::empty()
                },
            ),
        ];
        for relay in &relays {
            let (client, upstream) = relay.interest();
            fds.push(PollFd::new(&relay.client, client));
            fds.push(PollFd::new(&relay.upstream, upstream));
        }
        match poll(&mut fds, None) {
            Ok(_) | Err(Errno::INTR) => {}
            Err(e) => return Err(failed(step)(e)),
        }
        let ready: Vec<bool> = fds.iter().map(|f| !f.revents().is_empty()).collect();
        let hung_up: Vec<bool> = fds
            .iter()
            .map(|f| f.revents().intersects(PollFlags::HUP | PollFlags::ERR))
            .collect();
        drop(fds);
        if ready[0] {
            return Ok(());
        }
        for (i, relay) in relays.iter_mut().enumerate() {
            if ready[2 + 2 * i] || ready[3 + 2 * i] {
                relay.progress();
                // The proxy closed the connection both ways (a refusal, an
                // answer with `Connection: close`) and all it sent is passed
                // on: nothing the client still sends can go anywhere. Ended
                // here, or the relay would wait for the client to close (a
                // flood of such clients holding every relay) while poll
                // reports the hang-up at once, again and again.
                if hung_up[3 + 2 * i] && relay.down.passed {
                    relay.broken = true;
                }
            }
        }
        relays.retain(|r| !r.finished());
        if ready[1] {
            while relays.len() < MAX_CONNECTIONS {
                match listener.accept() {
                    Ok((client, _)) => {
                        if let Some(mut relay) = Relay::open(client, &proxy) {
                            relay.progress();
                            relays.push(relay);
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(_) => break,
                }
            }
        }
    }
}

/// One direction's bytes in flight.
struct Flow {
    buf: Box<[u8]>,
    start: usize,
    end: usize,
    /// The reading side has ended (or failed).
    ended: bool,
    /// The end was passed on: the writing side is shut for writing.
    passed: bool,
}

impl Flow {
    fn new() -> Flow {
        Flow {
            buf: vec![0; 64 * 1024].into_boxed_slice(),
            start: 0,
            end: 0,
            ended: false,
            passed: false,
        }
    }

    /// Moves what it can from `from` to `to` without blocking; `Err` when
    /// `to` is gone (the whole connection ends then).
    fn progress(&mut self, from: &OwnedFd, to: &OwnedFd) -> Result<(), Errno> {
        loop {
            if self.start < self.end {
                match send(to, &self.buf[self.start..self.end], SendFlags::NOSIGNAL) {
                    Ok(n) => self.start += n,
                    Err(Errno::AGAIN) => return Ok(()),
                    Err(Errno::INTR) => continue,
                    Err(e) => return Err(e),
                }
                continue;
            }
            self.start = 0;
            self.end = 0;
            if self.ended {
                if !self.passed {
                    self.passed = true;
                    let _ = shutdown(to, Shutdown::Write);
                }
                return Ok(());
            }
            match recv(from, &mut self.buf[..], RecvFlags::empty()) {
                Ok((0, _)) => self.ended = true,
                Ok((n, _)) => self.end = n,
                Err(Errno::AGAIN) => return Ok(()),
                Err(Errno::INTR) => {}
                Err(_) => self.ended = true,
            }
        }
    }

    /// What it waits for: its reading side to be readable, or its writing
    /// side to be writable.
    fn waits_to_read(&self) -> bool {
        self.start == self.end && !self.ended
    }

    fn waits_to_write(&self) -> bool {
        self.start < self.end
    }
}

/// A client on the sandbox's loopback and its connection to the proxy.
struct Relay {
    client: OwnedFd,
    upstream: OwnedFd,
    up: Flow,
    down: Flow,
    broken: bool,
}

impl Relay {
    /// Connects to the proxy for `client`; `None` (the client is closed)
    /// when the proxy is not there.
    fn open(client: TcpStream, proxy: &ProxySocket) -> Option<Relay> {
        client.set_nonblocking(true).ok()?;
        // Each time: PID 1's `pivot_root` moves a working directory that
        // is the old root (a socket in `/`) to the new one.
        rustix::process::fchdir(&proxy.dir).ok()?;
        let upstream = UnixStream::connect(&proxy.name).ok()?;
        upstream.set_nonblocking(true).ok()?;
        Some(Relay {
            client: client.into(),
            upstream: upstream.into(),
            up: Flow::new(),
            down: Flow::new(),
            broken: false,
        })
    }

    fn progress(&mut self) {
        let up = self.up.progress(&self.client, &self.upstream);
        let down = self.down.progress(&self.upstream, &self.client);
        self.broken |= up.is_err() || down.is_err();
    }

    /// The poll events of (client, upstream).
    fn interest(&self) -> (PollFlags, PollFlags) {
        let mut client = PollFlags::empty();
        let mut upstream = PollFlags::empty();
        if self.up.waits_to_read() {
            client |= PollFlags::IN;
        }
        if self.up.waits_to_write() {
            upstream |= PollFlags::OUT;
        }
        if self.down.waits_to_read() {
            upstream |= PollFlags::IN;
        }
        if self.down.waits_to_write() {
            client |= PollFlags::OUT;
        }
        (client, upstream)
    }

    /// Both ways ended and passed on, or one side gone.
    fn finished(&self) -> bool {
        self.broken || (self.up.passed && self.down.passed)
    }
}
