//! Unix stream sockets bound and connected by path.

use rustix::net::{AddressFamily, SocketAddrUnix, SocketFlags, SocketType, bind, connect, listen};
use std::os::fd::OwnedFd;
use std::os::unix::fs::PermissionsExt;

fn unix_socket() -> std::io::Result<OwnedFd> {
    Ok(rustix::net::socket_with(
        AddressFamily::UNIX,
        SocketType::SEQPACKET,
        SocketFlags::CLOEXEC,
        None,
    )?)
}

fn address(path: &str) -> std::io::Result<SocketAddrUnix> {
    // sun_path holds the path and its terminating NUL.
    const SUN_PATH: usize = 108;
    if path.len() >= SUN_PATH {
        return Err(std::io::Error::other("socket path too long"));
    }
    Ok(SocketAddrUnix::new(path)?)
}

pub(crate) fn connect_to(path: &str) -> std::io::Result<OwnedFd> {
    let sock = unix_socket()?;
    connect(&sock, &address(path)?)?;
    Ok(sock)
}

pub(crate) fn listen_on(path: &str) -> std::io::Result<OwnedFd> {
    let sock = unix_socket()?;
    bind(&sock, &address(path)?)?;
    // The user's alone whatever the umask (its directory is too), before
    // anyone can connect.
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    listen(&sock, 128)?;
    Ok(sock)
}
