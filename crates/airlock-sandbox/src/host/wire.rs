//! What airlock and a warm host exchange on its socket: a request (argv,
//! cwd, environment, limits) with the command's stdin, stdout and stderr
//! passed as descriptors, and the response with the command's reports.

use crate::confine::{InitReport, InitSpec};
use serde::{Deserialize, Serialize};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

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
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: socketpair fills two descriptors we then own.
    if unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    } < 0
    {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: fresh descriptors from socketpair.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Receives one request with its three descriptors (stdin, stdout, stderr).
pub(crate) fn receive(conn: RawFd) -> std::io::Result<(Request, [OwnedFd; 3])> {
    let mut body = vec![0u8; MAX_REQUEST + 1];
    let (n, fds) = recv_with_fds(conn, &mut body)?;
    let fds: [OwnedFd; 3] = fds
        .try_into()
        .map_err(|_| std::io::Error::other("a request carries three descriptors"))?;
    let request = postcard::from_bytes(&body[..n]).map_err(std::io::Error::other)?;
    Ok((request, fds))
}

// ---------------------------------------------------------------------------
// Descriptors over a Unix socket.

const FD_SPACE: usize = 4;

pub(crate) fn send_with_fds(sock: RawFd, body: &[u8], fds: &[RawFd]) -> std::io::Result<()> {
    let mut iov = libc::iovec {
        iov_base: body.as_ptr() as *mut libc::c_void,
        iov_len: body.len(),
    };
    // SAFETY: CMSG_SPACE is a pure computation.
    let space = unsafe { libc::CMSG_SPACE(std::mem::size_of_val(fds) as u32) } as usize;
    let mut control = vec![0u8; space];
    // SAFETY: a zeroed msghdr filled with valid pointers and lengths; the
    // control buffer is sized by CMSG_SPACE for exactly these descriptors.
    unsafe {
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = space as _;
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        (*cmsg).cmsg_level = libc::SOL_SOCKET;
        (*cmsg).cmsg_type = libc::SCM_RIGHTS;
        (*cmsg).cmsg_len = libc::CMSG_LEN(std::mem::size_of_val(fds) as u32) as _;
        std::ptr::copy_nonoverlapping(
            fds.as_ptr().cast::<u8>(),
            libc::CMSG_DATA(cmsg),
            std::mem::size_of_val(fds),
        );
        if libc::sendmsg(sock, &msg, libc::MSG_NOSIGNAL) < 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

pub(crate) fn recv_with_fds(
    sock: RawFd,
    body: &mut [u8],
) -> std::io::Result<(usize, Vec<OwnedFd>)> {
    let mut iov = libc::iovec {
        iov_base: body.as_mut_ptr().cast(),
        iov_len: body.len(),
    };
    // SAFETY: CMSG_SPACE is a pure computation.
    let space =
        unsafe { libc::CMSG_SPACE((FD_SPACE * std::mem::size_of::<RawFd>()) as u32) } as usize;
    let mut control = vec![0u8; space];
    let mut fds = Vec::new();
    // SAFETY: a zeroed msghdr with valid buffers; descriptors are taken from
    // SCM_RIGHTS headers only, each owned from then on.
    let n = unsafe {
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = space as _;
        let n = libc::recvmsg(sock, &mut msg, libc::MSG_CMSG_CLOEXEC);
        if n < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_RIGHTS {
                let data = libc::CMSG_DATA(cmsg);
                let len = (*cmsg).cmsg_len as usize - (data as usize - cmsg as usize);
                for i in 0..len / std::mem::size_of::<RawFd>() {
                    let fd = std::ptr::read_unaligned(data.cast::<RawFd>().add(i));
                    fds.push(OwnedFd::from_raw_fd(fd));
                }
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
        if msg.msg_flags & (libc::MSG_TRUNC | libc::MSG_CTRUNC) != 0 {
            return Err(std::io::Error::other("the message was cut short"));
        }
        n as usize
    };
    Ok((n, fds))
}

// ---------------------------------------------------------------------------
// The client side.

/// Hands one command to the host's leader on `sock`, with its stdin and
/// the write ends of its stdout and stderr pipes.
pub(crate) fn send(sock: &OwnedFd, body: &[u8], stdio: [RawFd; 3]) -> std::io::Result<()> {
    send_with_fds(sock.as_raw_fd(), body, &stdio)
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
        // SAFETY: receiving into our buffer.
        let n = unsafe { libc::recv(sock.as_raw_fd(), body.as_mut_ptr().cast(), body.len(), 0) };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if n == 0 {
            return Err(std::io::Error::other(
                "the sandbox host ended before the command did",
            ));
        }
        return serde_json::from_slice(&body[..n as usize]).map_err(std::io::Error::other);
    }
}

/// Tells the leader to stop the command: it kills the command's namespace.
pub(crate) fn hang_up(sock: RawFd) {
    // SAFETY: shutdown on a descriptor we hold.
    unsafe { libc::shutdown(sock, libc::SHUT_WR) };
}

#[cfg(test)]
mod tests {
    use super::{MAX_REQUEST, Request, encode, receive, send, send_with_fds, socket_pair};
    use std::io::{Read, Write};
    use std::os::fd::{AsRawFd, OwnedFd};

    fn request() -> Request {
        Request {
            argv: vec![b"cat".to_vec(), vec![0xff, 0x00, b'x']],
            cwd: b"/work".to_vec(),
            env: vec![(b"LANG".to_vec(), b"C.UTF-8".to_vec())],
            memory_bytes: Some(1 << 20),
            processes: None,
            file_size_bytes: Some(4096),
            terminal: true,
        }
    }

    /// A request arrives whole with its three descriptors, each a working
    /// descriptor of the receiver's (here: the ends of three pipes).
    #[test]
    fn a_request_and_its_descriptors_arrive_whole() {
        let (client, host) = socket_pair().unwrap();
        let pipes: Vec<(OwnedFd, OwnedFd)> =
            (0..3).map(|_| crate::pipe_cloexec().unwrap()).collect();
        let stdio = [
            pipes[0].1.as_raw_fd(),
            pipes[1].1.as_raw_fd(),
            pipes[2].1.as_raw_fd(),
        ];
        send(&client, &encode(&request()).unwrap(), stdio).unwrap();
        let (got, fds) = receive(host.as_raw_fd()).unwrap();
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
        send_with_fds(client.as_raw_fd(), &body, &[write.as_raw_fd()]).unwrap();
        let error = receive(host.as_raw_fd()).unwrap_err();
        assert_eq!(error.to_string(), "a request carries three descriptors");
    }

    #[test]
    fn a_malformed_request_is_refused() {
        let (client, host) = socket_pair().unwrap();
        let pipes: Vec<(OwnedFd, OwnedFd)> =
            (0..3).map(|_| crate::pipe_cloexec().unwrap()).collect();
        let stdio: Vec<_> = pipes.iter().map(|p| p.1.as_raw_fd()).collect();
        let body = encode(&request()).unwrap();
        for bad in [&body[..body.len() / 2], &[0xffu8; 16][..], &[][..]] {
            send_with_fds(client.as_raw_fd(), bad, &stdio).unwrap();
            assert!(receive(host.as_raw_fd()).is_err());
        }
    }

    /// Larger than [`MAX_REQUEST`] is not taken as a shorter request.
    #[test]
    fn an_oversized_request_is_refused() {
        let (client, host) = socket_pair().unwrap();
        let pipes: Vec<(OwnedFd, OwnedFd)> =
            (0..3).map(|_| crate::pipe_cloexec().unwrap()).collect();
        let stdio: Vec<_> = pipes.iter().map(|p| p.1.as_raw_fd()).collect();
        let mut big = request();
        big.argv.push(vec![b'a'; MAX_REQUEST]);
        let body = encode(&big).unwrap();
        // Refused on the way out (too large for the socket) or on the way in.
        let sent = send_with_fds(client.as_raw_fd(), &body, &stdio);
        assert!(sent.is_err() || receive(host.as_raw_fd()).is_err());
    }
}
