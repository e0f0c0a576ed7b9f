//! Where `airlock serve` listens: `--port` and `--listen` read into one
//! address, and the socket bound there, each failure a typed error with its
//! code (docs/errors.md).

use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};

use airlock_core::{Code, Error, Result};

/// The port served when none is given.
pub const DEFAULT_PORT: u16 = 7878;

/// The address to serve, from `--port` and `--listen` as given. `--port`
/// takes a port number (or a loopback address with its port); anything
/// beyond this machine needs `--listen`, which takes an IP address with an
/// optional port. Returns the address and whether it reaches beyond
/// loopback (the caller warns).
pub fn address(port: Option<&str>, listen: Option<&str>) -> Result<(SocketAddr, bool)> {
    let port_number = match port {
        None => None,
        Some(given) => Some(port_arg(given)?),
    };
    let Some(listen) = listen else {
        let addr = match port_number {
            Some(PortArg::Number(p)) => SocketAddr::new(Ipv4Addr::LOCALHOST.into(), p),
            Some(PortArg::Address(addr)) => addr,
            None => SocketAddr::new(Ipv4Addr::LOCALHOST.into(), DEFAULT_PORT),
        };
        return Ok((addr, false));
    };
    let given = listen.trim();
    let addr = if let Ok(addr) = given.parse::<SocketAddr>() {
        if port_number.is_some() {
            return Err(invalid_address(format!(
                "`--listen {given}` names a port and `--port` another"
            )));
        }
        addr
    } else if let Ok(ip) = given
        .strip_prefix('[')
        .and_then(|g| g.strip_suffix(']'))
        .unwrap_or(given)
        .parse::<IpAddr>()
    {
        let port = match port_number {
            Some(PortArg::Number(p)) => p,
            Some(PortArg::Address(_)) => {
                return Err(invalid_address(format!(
                    "`--listen {given}` names an address and `--port` another"
                )));
            }
            None => DEFAULT_PORT,
        };
        SocketAddr::new(ip, port)
    } else {
        return Err(invalid_address(format!(
            "`--listen {given}` is not an IP address with an optional port"
        )));
    };
    Ok((addr, !addr.ip().is_loopback()))
}

enum PortArg {
    Number(u16),
    /// A loopback address with its port, which needs no `--listen`.
    Address(SocketAddr),
}

fn port_arg(given: &str) -> Result<PortArg> {
    let given = given.trim();
    if let Ok(port) = given.parse::<u16>() {
        return Ok(PortArg::Number(port));
    }
    match given.parse::<SocketAddr>() {
        Ok(addr) if addr.ip().is_loopback() => Ok(PortArg::Address(addr)),
        Ok(addr) => Err(Error::refused(
            Code::ListenRequired,
            format!(
                "`--port {given}` would serve the review queue on {}, beyond this machine",
                addr.ip()
            ),
            vec![
                "`airlock serve` answers only this machine (127.0.0.1) unless `--listen` says otherwise".into(),
                "whoever reaches that address could try the one-time link and the session".into(),
            ],
            format!(
                "to serve there, say so with `--listen {given}`; to stay on this machine give `--port {}`",
                addr.port()
            ),
        )),
        Err(_) => Err(invalid_address(format!(
            "`--port {given}` is not a port number (0 to 65535)"
        ))),
    }
}

fn invalid_address(message: String) -> Error {
    Error::Listen {
        code: Code::InvalidAddress,
        message,
        hint: "give `--port` a number (0 picks a free port) and `--listen` an IP address, e.g. `--listen 127.0.0.1:7878` or `--listen [::1]`".into(),
    }
}

/// Binds `addr`. A port in use names the process holding it when this
/// system says (`/proc`, for this user's processes).
pub fn bind(addr: SocketAddr) -> Result<TcpListener> {
    TcpListener::bind(addr).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AddrInUse {
            let holder = holder_of(addr.port())
                .map(|h| format!(" (held by {h})"))
                .unwrap_or_default();
            Error::Listen {
                code: Code::PortInUse,
                message: format!("port {} is in use{holder}: cannot serve on {addr}", addr.port()),
                hint: "stop what holds it, or choose another port with `--port P` (`--port 0` takes any free one)".into(),
            }
        } else {
            Error::Listen {
                code: Code::ListenFailed,
                message: format!("cannot listen on {addr}: {e}"),
                hint: "give another address with `--listen`, or another port with `--port` (ports below 1024 need privileges)".into(),
            }
        }
    })
}

/// `process NAME (pid N)` for the process listening on TCP `port`, when
/// `/proc` shows it (another user's processes' descriptors are not shown).
fn holder_of(port: u16) -> Option<String> {
    let inode = ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .find_map(|table| {
            let text = std::fs::read_to_string(table).ok()?;
            text.lines().skip(1).find_map(|line| {
                let cols: Vec<&str> = line.split_whitespace().collect();
                // local_address is HEXIP:HEXPORT; state 0A is LISTEN.
                let local_port = cols.get(1)?.rsplit_once(':')?.1;
                (u16::from_str_radix(local_port, 16).ok()? == port && *cols.get(3)? == "0A")
                    .then(|| cols.get(9).map(|s| s.to_string()))
                    .flatten()
            })
        })?;
    let wanted = format!("socket:[{inode}]");
    for proc_entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let name = proc_entry.file_name();
        let Some(pid) = name
            .to_str()
            .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
        else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(proc_entry.path().join("fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            if std::fs::read_link(fd.path()).is_ok_and(|t| t.as_os_str() == wanted.as_str()) {
                let comm = std::fs::read_to_string(proc_entry.path().join("comm"))
                    .map(|c| c.trim().to_string())
                    .unwrap_or_else(|_| "?".into());
                return Some(format!("process {comm} (pid {pid})"));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        let loopback = |p| SocketAddr::new(Ipv4Addr::LOCALHOST.into(), p);
        assert_eq!(address(None, None).unwrap(), (loopback(7878), false));
        assert_eq!(address(Some("0"), None).unwrap(), (loopback(0), false));
        assert_eq!(
            address(Some("127.0.0.1:9000"), None).unwrap(),
            (loopback(9000), false)
        );
        assert_eq!(
            address(Some("8080"), Some("0.0.0.0")).unwrap(),
            ("0.0.0.0:8080".parse().unwrap(), true)
        );
        assert_eq!(
            address(None, Some("[::1]:81")).unwrap(),
            ("[::1]:81".parse().unwrap(), false)
        );
        assert_eq!(
            address(None, Some("::1")).unwrap(),
            ("[::1]:7878".parse().unwrap(), false)
        );
        let code = |p: Option<&str>, l: Option<&str>| address(p, l).unwrap_err().code();
        assert_eq!(code(Some("0.0.0.0:80"), None), Code::ListenRequired);
        assert_eq!(code(Some("http"), None), Code::InvalidAddress);
        assert_eq!(code(Some("70000"), None), Code::InvalidAddress);
        assert_eq!(code(None, Some("example.com")), Code::InvalidAddress);
        assert_eq!(code(Some("1"), Some("10.0.0.1:2")), Code::InvalidAddress);
    }
}
