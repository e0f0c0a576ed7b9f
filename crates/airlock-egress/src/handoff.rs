//! A client socket handed to the proxy instead of relayed to it.
//!
//! The sandbox's bridge accepts each connection on the sandbox's loopback
//! and, rather than copying its bytes to the proxy's Unix socket and back,
//! passes the accepted TCP socket itself over that Unix socket
//! (`SCM_RIGHTS`, with the one byte [`HANDOFF`]): the proxy then serves
//! that socket as it serves any client, and its relay splices between it
//! and the upstream directly, one kernel crossing fewer on every byte.
//!
//! The descriptor comes from inside a sandbox's network namespace: the
//! proxy takes nothing on trust. It accepts exactly one descriptor with
//! the marker byte, and only a connected (not listening) TCP stream socket
//! whose both ends are loopback addresses, which is what the bridge
//! accepts on `127.0.0.1`; FIFOs, files, directories, Unix, UDP, raw and
//! listening sockets, and several descriptors at once are refused and
//! closed. Nothing is ever handed the other way: the bridge never reads
//! from its Unix connection, so no socket of the host's network (which a
//! holder could disconnect with `AF_UNSPEC` and connect anywhere) can
//! reach the sandbox.

use std::io::{self, IoSliceMut};
use std::mem::MaybeUninit;
use std::net::TcpStream;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;

use rustix::fs::FileType;
use rustix::io::Errno;
use rustix::net::{
    AddressFamily, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, ReturnFlags, SocketType,
    ipproto, recvmsg, sockopt,
};

/// The byte a hand-off carries its descriptor with. No HTTP request or
/// SOCKS5 greeting starts with it.
pub const HANDOFF: u8 = 0;

/// What a Unix-socket client's first message was.
pub(crate) enum First {
    /// The client closed (or failed) before sending anything.
    Nothing,
    /// A request's first byte: the client speaks on the Unix socket itself.
    Byte(u8),
    /// A handed-off socket, checked: the client to serve instead.
    Socket(TcpStream),
}

/// Reads the first byte of a Unix-socket client with room for one
/// descriptor; `Err` says what was wrong with what came (every descriptor
/// that came is closed by then).
pub(crate) fn receive_first(client: &UnixStream) -> Result<First, String> {
    let mut byte = [0u8; 1];
    // Room for one descriptor (and, rounded up, a few more: counted
    // below); the kernel closes whatever does not fit and says so with
    // MSG_CTRUNC.
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let received = loop {
        match recvmsg(
            client,
            &mut [IoSliceMut::new(&mut byte)],
            &mut control,
            RecvFlags::CMSG_CLOEXEC,
        ) {
            Ok(r) => break r,
            Err(Errno::INTR) => {}
            Err(_) => return Ok(First::Nothing),
        }
    };
    let mut fds: Vec<OwnedFd> = Vec::new();
    let mut other_messages = 0;
    for message in control.drain() {
        match message {
            RecvAncillaryMessage::ScmRights(handed) => fds.extend(handed),
            _ => other_messages += 1,
        }
    }
    let truncated = received.flags.contains(ReturnFlags::CTRUNC);
    if fds.is_empty() && !truncated && other_messages == 0 {
        return match (received.bytes, byte[0]) {
            (0, _) => Ok(First::Nothing),
            (_, HANDOFF) => Err("a hand-off came without a socket".into()),
            (_, b) => Ok(First::Byte(b)),
        };
    }
    if truncated && fds.is_empty() {
        // The kernel could not give this process the descriptor (out of
        // descriptors, or a limit): the connection cannot be served.
        return Err(
            "a handed descriptor could not be received (the proxy may be out of descriptors)"
                .into(),
        );
    }
    if truncated || fds.len() != 1 {
        let count = if truncated {
            format!("more than {}", fds.len())
        } else {
            fds.len().to_string()
        };
        return Err(format!(
            "{count} descriptors were handed over at once; the bridge hands over one socket per connection"
        ));
    }
    if received.bytes == 0 || byte[0] != HANDOFF {
        return Err(
            "a descriptor came with a request instead of as a hand-off; it was closed".into(),
        );
    }
    let fd = fds.pop().expect("one descriptor, counted above");
    check_handed(fd).map(First::Socket)
}

/// The handed descriptor as a TCP stream, if it is what the bridge hands
/// over: a connected TCP stream socket between two loopback addresses.
fn check_handed(fd: OwnedFd) -> Result<TcpStream, String> {
    let not = |what: &str| format!("the handed descriptor is {what}, not a connected TCP socket");
    let kind = rustix::fs::fstat(&fd)
        .map(|s| FileType::from_raw_mode(s.st_mode))
        .map_err(|e| not(&format!("unreadable ({e})")))?;
    if kind != FileType::Socket {
        return Err(not(match kind {
            FileType::RegularFile => "a regular file",
            FileType::Directory => "a directory",
            FileType::Symlink => "a symbolic link",
            FileType::Fifo => "a FIFO (pipe)",
            FileType::CharacterDevice => "a character device",
            FileType::BlockDevice => "a block device",
            _ => "not a socket",
        }));
    }
    let family = sockopt::socket_domain(&fd).map_err(|e| not(&format!("a socket ({e})")))?;
    if family != AddressFamily::INET && family != AddressFamily::INET6 {
        return Err(not(if family == AddressFamily::UNIX {
            "a Unix socket"
        } else {
            "a socket of another family than IPv4 or IPv6"
        }));
    }
    let kind = sockopt::socket_type(&fd).map_err(|e| not(&format!("a socket ({e})")))?;
    if kind != SocketType::STREAM {
        return Err(not(if kind == SocketType::DGRAM {
            "a UDP socket"
        } else {
            "an IP socket that is not a stream"
        }));
    }
    if sockopt::socket_protocol(&fd).ok().flatten() != Some(ipproto::TCP) {
        return Err(not("a stream socket of another protocol than TCP"));
    }
    if sockopt::socket_acceptconn(&fd).unwrap_or(true) {
        return Err(not("a listening socket"));
    }
    let stream = TcpStream::from(fd);
    let (Ok(peer), Ok(local)) = (stream.peer_addr(), stream.local_addr()) else {
        return Err(not("a TCP socket that is not connected"));
    };
    if !peer.ip().to_canonical().is_loopback() || !local.ip().to_canonical().is_loopback() {
        return Err(not(&format!(
            "a TCP socket between {local} and {peer}, not one on the sandbox's loopback"
        )));
    }
    // The bridge accepted it blocking, but the status flags are the open
    // file's: the proxy's threads block with timeouts, never spin.
    stream
        .set_nonblocking(false)
        .map_err(|e| not(&format!("a socket whose flags cannot be set ({e})")))?;
    Ok(stream)
}

/// Hands `socket` to the proxy on `proxy` (the bridge's side, and the
/// tests'): the marker byte with the one descriptor. The caller closes its
/// own copy after.
pub fn hand_off(proxy: &UnixStream, socket: std::os::fd::BorrowedFd<'_>) -> io::Result<()> {
    use rustix::net::{SendAncillaryBuffer, SendAncillaryMessage, SendFlags, sendmsg};
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    let fds = [socket];
    control.push(SendAncillaryMessage::ScmRights(&fds));
    loop {
        match sendmsg(
            proxy,
            &[io::IoSlice::new(&[HANDOFF])],
            &mut control,
            SendFlags::NOSIGNAL,
        ) {
            Ok(1) => return Ok(()),
            Ok(_) => return Err(io::ErrorKind::WriteZero.into()),
            Err(Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
}
