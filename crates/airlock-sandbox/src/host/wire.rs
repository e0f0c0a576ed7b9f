//! What airlock and a warm host exchange on its socket: a request (argv,
//! cwd, environment, limits) with the command's stdin, stdout and stderr
//! passed as descriptors, and the response with the command's reports.

use crate::confine::{InitReport, InitSpec};
use serde::{Deserialize, Serialize};
use std::io::{IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

/// Requests larger than this, encoded (huge argv or environment), go through a
/// one-off sandbox instead: a datagram has to fit the socket's buffer.
pub(crate) const MAX_REQUEST: usize = 128 * 1024;
const MAX_RESPONSE: usize = 64 * 1024;

/// One command for a host.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Request {
    pub argv: Vec<Vec<u8>>,
    pub cwd: Vec<u8>,
    pub env: Vec<(Vec<u8>, Vec<u8>)>,
    pub memory_bytes: Option<u64>,
    pub processes: Option<u64>,
    pub file_size_bytes: Option<u64>,
    /// stdin is the command's own terminal (see `InitSpec::terminal`).
    pub terminal: bool,
    /// The name of the command's egress proxy's socket in the directory
    /// passed as a fourth descriptor, for a host whose commands go out only
    /// through a proxy (see `host::bridged`).
    pub egress: Option<Vec<u8>>,
}

impl Request {
    /// The per-command part of `init`.
    pub(crate) fn of(init: &InitSpec) -> Request {
        Request {
            argv: init.argv.clone(),
            cwd: init.cwd.clone(),
            env: init.env.clone(),
            memory_bytes: init.memory_bytes,
            processes: init.processes,
            file_size_bytes: init.file_size_bytes,
            terminal: init.terminal,
            egress: None,
        }
    }
}

/// What the host answers once the command is over.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Response {
    pub reports: Vec<InitReport>,
}

// ---------------------------------------------------------------------------
// The host process.

pub(crate) fn socket_pair() -> std::io::Result<(OwnedFd, OwnedFd)> {
    use rustix::net::{AddressFamily, SocketFlags, SocketType, socketpair};
    Ok(socketpair(
        AddressFamily::UNIX,
        SocketType::SEQPACKET,
        SocketFlags::CLOEXEC,
        None,
    )?)
}

/// Receives one request with its three descriptors (stdin, stdout,
/// stderr), and a fourth, the directory of its egress proxy's socket, when
/// the request names one.
pub(crate) fn receive(
    conn: impl AsFd,
) -> std::io::Result<(Request, [OwnedFd; 3], Option<OwnedFd>)> {
    let mut body = vec![0u8; MAX_REQUEST + 1];
    let (n, mut fds) = recv_with_fds(conn, &mut body)?;
    let request: Request = postcard::from_bytes(&body[..n]).map_err(std::io::Error::other)?;
    let proxy_dir = match (request.egress.is_some(), fds.len()) {
        (true, 4) => fds.pop(),
        (false, 3) => None,
        (true, _) => {
            return Err(std::io::Error::other(
                "a request naming an egress proxy carries four descriptors",
            ));
        }
        (false, _) => {
            return Err(std::io::Error::other("a request carries three descriptors"));
        }
    };
    let stdio: [OwnedFd; 3] = fds
        .try_into()
        .map_err(|_| std::io::Error::other("a request carries three descriptors"))?;
    Ok((request, stdio, proxy_dir))
}

// ---------------------------------------------------------------------------
// Descriptors over a Unix socket.

const FD_SPACE: usize = 4;

pub(crate) fn send_with_fds(
    sock: impl AsFd,
    body: &[u8],
    fds: &[BorrowedFd<'_>],
) -> std::io::Result<()> {
    use rustix::net::{SendAncillaryBuffer, SendAncillaryMessage, SendFlags, sendmsg};
    let mut space = vec![MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(fds.len()))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    if !control.push(SendAncillaryMessage::ScmRights(fds)) {
        return Err(std::io::Error::other("no room for the descriptors"));
    }
    sendmsg(
        sock,
        &[IoSlice::new(body)],
        &mut control,
        SendFlags::NOSIGNAL,
    )?;
    Ok(())
}

pub(crate) fn recv_with_fds(
    sock: impl AsFd,
    body: &mut [u8],
) -> std::io::Result<(usize, Vec<OwnedFd>)> {
    use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, ReturnFlags, recvmsg};
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(FD_SPACE))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let received = recvmsg(
        sock,
        &mut [IoSliceMut::new(body)],
        &mut control,
        RecvFlags::CMSG_CLOEXEC,
    )?;
    // Descriptors are owned from here on, and closed if the message is refused.
    let mut fds = Vec::new();
    for message in control.drain() {
        if let RecvAncillaryMessage::ScmRights(rights) = message {
            fds.extend(rights);
        }
    }
    if received
        .flags
        .intersects(ReturnFlags::TRUNC | ReturnFlags::CTRUNC)
    {
        return Err(std::io::Error::other("the message was cut short"));
    }
    Ok((received.bytes, fds))
}

// ---------------------------------------------------------------------------
// The client side.

/// Hands one command to the host's leader on `sock`, with its stdin and
/// the write ends of its stdout and stderr pipes, and the directory of its
/// egress proxy's socket if it has one.
pub(crate) fn send(
    sock: &OwnedFd,
    body: &[u8],
    stdio: [BorrowedFd<'_>; 3],
    proxy_dir: Option<BorrowedFd<'_>>,
) -> std::io::Result<()> {
    let mut fds = stdio.to_vec();
    fds.extend(proxy_dir);
    send_with_fds(sock, body, &fds)
}

/// A request as it travels: compact (postcard), so that argv and
/// environment cost their own size, not four times it as JSON numbers.
pub(crate) fn encode(request: &Request) -> std::io::Result<Vec<u8>> {
    postcard::to_stdvec(request).map_err(std::io::Error::other)
}

/// Blocks until the leader answers; an error if the host went away instead.
pub(crate) fn response(sock: &OwnedFd) -> std::io::Result<Response> {
    let mut body = vec![0u8; MAX_RESPONSE];
    loop {
        let n = match rustix::net::recv(sock, &mut body, rustix::net::RecvFlags::empty()) {
            Ok((n, _)) => n,
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        };
        if n == 0 {
            return Err(std::io::Error::other(
                "the sandbox host ended before the command did",
            ));
        }
        return serde_json::from_slice(&body[..n]).map_err(std::io::Error::other);
    }
}

/// Tells the leader to stop the command: it kills the command's namespace.
pub(crate) fn hang_up(sock: impl AsFd) {
    let _ = rustix::net::shutdown(sock, rustix::net::Shutdown::Write);
}

#[cfg(test)]
mod tests {
    use super::{MAX_REQUEST, Request, encode, receive, send, send_with_fds, socket_pair};
    use std::io::{Read, Write};
    use std::os::fd::{AsFd, OwnedFd};

    fn request() -> Request {
        Request {
            argv: vec![b"cat".to_vec(), vec![0xff, 0x00, b'x']],
            cwd: b"/work".to_vec(),
            env: vec![(b"LANG".to_vec(), b"C.UTF-8".to_vec())],
            memory_bytes: Some(1 << 20),
            processes: None,
            file_size_bytes: Some(4096),
            terminal: true,
            egress: None,
        }
    }

    /// A request arrives whole with its three descriptors, each a working
    /// descriptor of the receiver's (here: the ends of three pipes).
    #[test]
    fn a_request_and_its_descriptors_arrive_whole() {
        let (client, host) = socket_pair().unwrap();
        let pipes: Vec<(OwnedFd, OwnedFd)> =
            (0..3).map(|_| crate::pipe_cloexec().unwrap()).collect();
        let stdio = [pipes[0].1.as_fd(), pipes[1].1.as_fd(), pipes[2].1.as_fd()];
        send(&client, &encode(&request()).unwrap(), stdio, None).unwrap();
        let (got, fds, proxy_dir) = receive(&host).unwrap();
        assert!(proxy_dir.is_none());
        assert_eq!(format!("{got:?}"), format!("{:?}", request()));
        for (i, (fd, (read, write))) in fds.into_iter().zip(pipes).enumerate() {
            drop(write);
            let mut end = std::fs::File::from(fd);
            end.write_all(format!("stream {i}").as_bytes()).unwrap();
            drop(end);
            let mut text = String::new();
            std::fs::File::from(read).read_to_string(&mut text).unwrap();
            assert_eq!(text, format!("stream {i}"));
        }
    }

    #[test]
    fn a_request_without_three_descriptors_is_refused() {
        let (client, host) = socket_pair().unwrap();
        let (_read, write) = crate::pipe_cloexec().unwrap();
        let body = encode(&request()).unwrap();
        send_with_fds(&client, &body, &[write.as_fd()]).unwrap();
        let error = receive(&host).unwrap_err();
        assert_eq!(error.to_string(), "a request carries three descriptors");
    }

    #[test]
    fn a_malformed_request_is_refused() {
        let (client, host) = socket_pair().unwrap();
        let pipes: Vec<(OwnedFd, OwnedFd)> =
            (0..3).map(|_| crate::pipe_cloexec().unwrap()).collect();
        let stdio: Vec<_> = pipes.iter().map(|p| p.1.as_fd()).collect();
        let body = encode(&request()).unwrap();
        for bad in [&body[..body.len() / 2], &[0xffu8; 16][..], &[][..]] {
            send_with_fds(&client, bad, &stdio).unwrap();
            assert!(receive(&host).is_err());
        }
    }

    /// Larger than [`MAX_REQUEST`] is not taken as a shorter request.
    #[test]
    fn an_oversized_request_is_refused() {
        let (client, host) = socket_pair().unwrap();
        let pipes: Vec<(OwnedFd, OwnedFd)> =
            (0..3).map(|_| crate::pipe_cloexec().unwrap()).collect();
        let stdio: Vec<_> = pipes.iter().map(|p| p.1.as_fd()).collect();
        let mut big = request();
        big.argv.push(vec![b'a'; MAX_REQUEST]);
        let body = encode(&big).unwrap();
        // Refused on the way out (too large for the socket) or on the way in.
        let sent = send_with_fds(&client, &body, &stdio);
        assert!(sent.is_err() || receive(&host).is_err());
    }
}
