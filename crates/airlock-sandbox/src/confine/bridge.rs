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
use rustix::pipe::{PipeFlags, SpliceFlags, fcntl_setpipe_size, pipe_with, splice};
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

impl ProxySocket {
    /// The proxy's socket as a directory already open and a name in it: a
    /// warm sandbox's bridge is handed one per command (see
    /// `host::bridged`).
    pub(crate) fn of(dir: OwnedFd, name: &[u8]) -> ProxySocket {
        ProxySocket {
            dir,
            name: PathBuf::from(os(name)),
        }
    }
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
    serve_until(listener, proxy, exited)
}

/// Relays every connection `listener` accepts to the proxy until `ended`
/// becomes readable (a pidfd whose process exited, a socket whose peer
/// hung up); then drops them all and returns.
pub(crate) fn serve_until(
    listener: TcpListener,
    proxy: ProxySocket,
    ended: OwnedFd,
) -> Result<(), SetupError> {
    let step = "relaying the egress bridge";
    let exited = ended;
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

/// A pipe's capacity when the bridge splices: kernel memory, filled only as
/// far as the bytes in flight; a large one moves a bulk download in few
/// calls. Refused above the system's limit, which is fine (64 KiB then).
const PIPE_SIZE: usize = 1024 * 1024;

/// The buffer of a direction the kernel cannot splice.
const BUFFER_SIZE: usize = 64 * 1024;

/// The send buffer of the Unix socket to the proxy (the kernel doubles it,
/// and caps it at `net.core.wmem_max`): a Unix stream's flow control is its
/// sender's buffer alone, 208 KiB by default, which would stop an upload
/// every 208 KiB. The proxy sizes its side alike for downloads.
const UNIX_SEND_BUFFER: usize = 4 * 1024 * 1024;

/// One direction's bytes in flight.
struct Flow {
    way: Way,
    /// Bytes read from the reading side and not yet written on.
    held: usize,
    /// Some byte has moved: a splice refused after that is an error of
    /// this connection, not of the kind of socket.
    moved: bool,
    /// The reading side has ended (or failed).
    ended: bool,
    /// The end was passed on: the writing side is shut for writing.
    passed: bool,
}

/// Where a direction's bytes wait between the two sockets.
enum Way {
    /// A pipe the bytes are spliced into and out of (splice(2)): they never
    /// enter this process, and a call moves up to the pipe's capacity.
    Pipe { out: OwnedFd, into: OwnedFd },
    /// A buffer of this process, read into and written from; `start` is
    /// where the bytes still held begin.
    Buffer { buf: Box<[u8]>, start: usize },
}

impl Way {
    fn pipe() -> Way {
        match pipe_with(PipeFlags::CLOEXEC | PipeFlags::NONBLOCK) {
            Ok((out, into)) => {
                let _ = fcntl_setpipe_size(&into, PIPE_SIZE);
                Way::Pipe { out, into }
            }
            // Out of descriptors or pipe memory: copy instead.
            Err(_) => Way::buffer(),
        }
    }

    fn buffer() -> Way {
        Way::Buffer {
            buf: vec![0; BUFFER_SIZE].into_boxed_slice(),
            start: 0,
        }
    }
}

impl Flow {
    fn new() -> Flow {
        Flow {
            way: Way::pipe(),
            held: 0,
            moved: false,
            ended: false,
            passed: false,
        }
    }

    /// Moves what it can from `from` to `to` without blocking; `Err` when
    /// `to` is gone (the whole connection ends then).
    fn progress(&mut self, from: &OwnedFd, to: &OwnedFd) -> Result<(), Errno> {
        loop {
            if self.held > 0 {
                match self.write(to) {
                    Ok(n) => self.held -= n,
                    Err(Errno::AGAIN) => return Ok(()),
                    Err(Errno::INTR) => {}
                    Err(e) => return Err(e),
                }
                continue;
            }
            if self.ended {
                if !self.passed {
                    self.passed = true;
                    let _ = shutdown(to, Shutdown::Write);
                }
                return Ok(());
            }
            match self.read(from) {
                Ok(0) => self.ended = true,
                Ok(n) => {
                    self.held = n;
                    self.moved = true;
                }
                Err(Errno::AGAIN) => return Ok(()),
                Err(Errno::INTR) => {}
                // This kernel cannot splice these sockets: copy instead,
                // before any byte went one way or the other.
                Err(Errno::INVAL | Errno::NOSYS)
                    if !self.moved && matches!(self.way, Way::Pipe { .. }) =>
                {
                    self.way = Way::buffer();
                }
                Err(_) => self.ended = true,
            }
        }
    }

    /// Reads what `from` has, up to the pipe's or buffer's room (all of it:
    /// it is read into only when empty).
    fn read(&mut self, from: &OwnedFd) -> Result<usize, Errno> {
        match &mut self.way {
            Way::Pipe { into, .. } => splice(
                from,
                None,
                &*into,
                None,
                PIPE_SIZE,
                SpliceFlags::MOVE | SpliceFlags::NONBLOCK,
            ),
            Way::Buffer { buf, start } => {
                *start = 0;
                recv(from, &mut buf[..], RecvFlags::empty()).map(|(n, _)| n)
            }
        }
    }

    /// Writes on what is held, as much as `to` takes.
    fn write(&mut self, to: &OwnedFd) -> Result<usize, Errno> {
        match &mut self.way {
            Way::Pipe { out, .. } => splice(
                &*out,
                None,
                to,
                None,
                self.held,
                SpliceFlags::MOVE | SpliceFlags::NONBLOCK,
            ),
            Way::Buffer { buf, start } => {
                let n = send(to, &buf[*start..*start + self.held], SendFlags::NOSIGNAL)?;
                *start += n;
                Ok(n)
            }
        }
    }

    /// What it waits for: its reading side to be readable, or its writing
    /// side to be writable.
    fn waits_to_read(&self) -> bool {
        self.held == 0 && !self.ended
    }

    fn waits_to_write(&self) -> bool {
        self.held > 0
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
        let _ = rustix::net::sockopt::set_socket_send_buffer_size(&upstream, UNIX_SEND_BUFFER);
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    /// Carries a body larger than any pipe or buffer through `flow`, the
    /// way the bridge's loop does (poll, then progress), and returns what
    /// arrived and whether the end was passed on.
    fn carry(mut flow: Flow, body: &[u8]) -> (Vec<u8>, bool) {
        let (mut source, from) = UnixStream::pair().unwrap();
        let (to, mut sink) = UnixStream::pair().unwrap();
        from.set_nonblocking(true).unwrap();
        to.set_nonblocking(true).unwrap();
        let (from, to): (OwnedFd, OwnedFd) = (from.into(), to.into());
        let sent = body.to_vec();
        let writer = std::thread::spawn(move || {
            source.write_all(&sent).unwrap();
            // Dropped: the end the flow must pass on.
        });
        let reader = std::thread::spawn(move || {
            let mut got = Vec::new();
            sink.read_to_end(&mut got).unwrap();
            got
        });
        while !flow.passed {
            let read = if flow.waits_to_read() {
                PollFlags::IN
            } else {
                PollFlags::empty()
            };
            let write = if flow.waits_to_write() {
                PollFlags::OUT
            } else {
                PollFlags::empty()
            };
            let mut fds = [PollFd::new(&from, read), PollFd::new(&to, write)];
            poll(&mut fds, None).unwrap();
            flow.progress(&from, &to).unwrap();
        }
        writer.join().unwrap();
        let passed = flow.passed;
        drop(to);
        (reader.join().unwrap(), passed)
    }

    fn body() -> Vec<u8> {
        // Every byte depends on its offset: a byte lost, repeated or
        // reordered shows.
        (0..(5 << 20) + 12_345).map(|i| (i % 251) as u8).collect()
    }

    #[test]
    fn a_spliced_flow_carries_every_byte_in_order_and_passes_the_end_on() {
        let flow = Flow::new();
        assert!(matches!(flow.way, Way::Pipe { .. }), "no pipe was made");
        let body = body();
        let (got, passed) = carry(flow, &body);
        assert!(passed);
        assert_eq!(got.len(), body.len());
        assert!(got == body, "the spliced body differs");
    }

    /// The copy a kernel that cannot splice the sockets falls back to.
    #[test]
    fn a_copying_flow_carries_every_byte_in_order_and_passes_the_end_on() {
        let mut flow = Flow::new();
        flow.way = Way::buffer();
        let body = body();
        let (got, passed) = carry(flow, &body);
        assert!(passed);
        assert_eq!(got.len(), body.len());
        assert!(got == body, "the copied body differs");
    }
}
