//! The proxy airlock runs outside the sandbox: the sandbox's only way out.
//!
//! It listens on a Unix socket (which the sandbox reaches through a bridge)
//! and, optionally, on a loopback TCP port, and speaks on both, told apart by
//! the first byte: HTTP `CONNECT`, plain HTTP in absolute form, and SOCKS5
//! `CONNECT` with names resolved here. For each connection it decides by the
//! [`Allowlist`] on the host as the client asked for it, resolves the name
//! itself (the test name map first, then the system resolver), refuses
//! addresses that are not public unless the allowlist names them, and dials
//! exactly the address it checked. Every connection yields a
//! [`ConnectionRecord`] delivered to the [`Sink`].
//!
//! Blocking I/O, a thread per connection and one more per tunnel while it
//! relays; at most `max_connections` at once (further clients wait in the
//! listen backlog), each closed after `idle_timeout` with no byte either way.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::os::fd::OwnedFd;
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::address::classify;
use crate::allow::{Allowlist, Host, setting_for};
use crate::record::{ConnectionRecord, Outcome, Protocol, Refusal, Sink};

/// SOCKS5 reply: connection not allowed by ruleset (RFC 1928).
pub const SOCKS_NOT_ALLOWED: u8 = 0x02;
/// SOCKS5 reply: command not supported (`BIND`, `UDP ASSOCIATE`).
pub const SOCKS_COMMAND_NOT_SUPPORTED: u8 = 0x07;
/// SOCKS5 reply: address type not supported.
pub const SOCKS_ADDRESS_TYPE_NOT_SUPPORTED: u8 = 0x08;
const SOCKS_GENERAL_FAILURE: u8 = 0x01;
const SOCKS_NETWORK_UNREACHABLE: u8 = 0x03;
const SOCKS_HOST_UNREACHABLE: u8 = 0x04;
const SOCKS_CONNECTION_REFUSED: u8 = 0x05;

/// The largest request head read (HTTP request line and headers).
const MAX_HEAD: usize = 64 * 1024;
/// The relay's buffer, per direction: large reads keep a bulk download's
/// system calls few.
const RELAY_BUFFER: usize = 256 * 1024;
/// The relay's pipe, per direction, when it splices: kernel memory, filled
/// only as far as the data in flight.
const PIPE_SIZE: usize = 1024 * 1024;
/// The send buffer of a client's Unix socket while it relays (the kernel
/// doubles it, and caps it at `net.core.wmem_max`). A Unix stream's flow
/// control is its sender's buffer alone, 208 KiB by default: the relay
/// then stops and wakes the reader every 208 KiB of a download, which
/// costs a Unix-socket download about a third of its time on a busy
/// machine (BENCHMARKS.md, egress). Kernel memory, taken only by bytes in
/// flight. TCP sizes its own buffers.
const UNIX_SEND_BUFFER: usize = 4 * 1024 * 1024;

/// How the proxy is started.
#[derive(Debug, Clone)]
pub struct ProxyConfig {
    pub allowlist: Allowlist,
    /// Where to listen for the sandbox's bridge. The file must not exist; it
    /// is removed when the proxy stops. Its permissions are the umask's:
    /// put it in a directory only the sandbox's bridge can reach.
    pub unix_socket: Option<PathBuf>,
    /// A loopback address to listen on as well (port 0 picks one); anything
    /// but a loopback address is refused, so the proxy never serves the
    /// network.
    pub tcp: Option<SocketAddr>,
    /// Names answered without the system resolver, like curl's `--resolve`:
    /// for tests and for pinning a host. Keys are lower-case names. The
    /// addresses are checked like any other.
    pub names: HashMap<String, Vec<IpAddr>>,
    pub max_connections: usize,
    /// A connection with no byte either way for this long is closed; it also
    /// bounds the wait for a request and for each write.
    pub idle_timeout: Duration,
    pub connect_timeout: Duration,
    pub sink: Sink,
}

impl ProxyConfig {
    pub fn new(allowlist: Allowlist, sink: Sink) -> ProxyConfig {
        ProxyConfig {
            allowlist,
            unix_socket: None,
            tcp: None,
            names: HashMap::new(),
            max_connections: 256,
            idle_timeout: Duration::from_secs(300),
            connect_timeout: Duration::from_secs(10),
            sink,
        }
    }

    /// Answers `name` with `addresses` instead of asking the resolver.
    pub fn name(mut self, name: &str, addresses: &[IpAddr]) -> ProxyConfig {
        self.names
            .insert(name.to_ascii_lowercase(), addresses.to_vec());
        self
    }
}

/// The proxy could not start.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error(
        "the proxy has nowhere to listen: give a Unix socket path, a loopback TCP address, or both"
    )]
    NoListener,
    #[error(
        "the proxy listens on loopback only, not {0}: the sandbox reaches it through a bridge, and no other machine may use it"
    )]
    NotLoopback(SocketAddr),
    #[error("max_connections is 0: the proxy would never accept a connection; give at least 1")]
    NoConnections,
    #[error("cannot listen on {what}: {source}")]
    Listen {
        what: String,
        #[source]
        source: io::Error,
    },
}

/// A running proxy; stopped by [`Proxy::stop`] or when dropped.
pub struct Proxy {
    shared: Arc<Shared>,
    tcp_addr: Option<SocketAddr>,
    unix_path: Option<PathBuf>,
    /// The Unix socket's device and inode, so that stopping removes only
    /// the socket this proxy made, never a file put in its place.
    unix_id: Option<(u64, u64)>,
    /// A second descriptor of each listener: shutting it down wakes the
    /// acceptor blocked in accept(), whatever became of the socket's path.
    wake: Vec<OwnedFd>,
    acceptors: Vec<JoinHandle<()>>,
}

struct Shared {
    config: ProxyConfig,
    stopping: AtomicBool,
    /// Connections being served, and the condition acceptors wait on when
    /// there are `max_connections` of them.
    active: Mutex<usize>,
    slot_free: Condvar,
    /// Sockets of live connections, so that stopping can cut them.
    live: Mutex<HashMap<u64, Vec<Stream>>>,
    next_id: AtomicU64,
    workers: Mutex<Vec<JoinHandle<()>>>,
}

impl Proxy {
    pub fn start(config: ProxyConfig) -> Result<Proxy, ProxyError> {
        if config.unix_socket.is_none() && config.tcp.is_none() {
            return Err(ProxyError::NoListener);
        }
        if config.max_connections == 0 {
            return Err(ProxyError::NoConnections);
        }
        let tcp = match config.tcp {
            Some(a) if !a.ip().is_loopback() => return Err(ProxyError::NotLoopback(a)),
            Some(a) => Some(TcpListener::bind(a).map_err(|source| ProxyError::Listen {
                what: a.to_string(),
                source,
            })?),
            None => None,
        };
        let unix = match &config.unix_socket {
            Some(p) => Some(UnixListener::bind(p).map_err(|source| ProxyError::Listen {
                what: p.display().to_string(),
                source,
            })?),
            None => None,
        };
        let tcp_addr = match &tcp {
            Some(l) => Some(l.local_addr().map_err(|source| ProxyError::Listen {
                what: "the TCP listener's address".into(),
                source,
            })?),
            None => None,
        };
        let unix_path = config.unix_socket.clone();
        let unix_id = unix_path.as_deref().and_then(file_id);
        let clone_failed = |source| ProxyError::Listen {
            what: "a second descriptor of the listener".into(),
            source,
        };
        let mut wake = Vec::new();
        if let Some(l) = &tcp {
            wake.push(OwnedFd::from(l.try_clone().map_err(clone_failed)?));
        }
        if let Some(l) = &unix {
            wake.push(OwnedFd::from(l.try_clone().map_err(clone_failed)?));
        }
        let shared = Arc::new(Shared {
            config,
            stopping: AtomicBool::new(false),
            active: Mutex::new(0),
            slot_free: Condvar::new(),
            live: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(0),
            workers: Mutex::new(Vec::new()),
        });
        let mut acceptors = Vec::new();
        if let Some(l) = tcp {
            let s = shared.clone();
            acceptors.push(std::thread::spawn(move || {
                accept_loop(&s, || l.accept().map(|(c, _)| Stream::Tcp(c)))
            }));
        }
        if let Some(l) = unix {
            let s = shared.clone();
            acceptors.push(std::thread::spawn(move || {
                accept_loop(&s, || l.accept().map(|(c, _)| Stream::Unix(c)))
            }));
        }
        Ok(Proxy {
            shared,
            tcp_addr,
            unix_path,
            unix_id,
            wake,
            acceptors,
        })
    }

    /// The TCP address the proxy listens on, when it does.
    pub fn tcp_addr(&self) -> Option<SocketAddr> {
        self.tcp_addr
    }

    pub fn unix_path(&self) -> Option<&Path> {
        self.unix_path.as_deref()
    }

    /// Stops accepting, cuts every live connection, waits for every thread
    /// (each delivers its record first), and removes the Unix socket.
    pub fn stop(mut self) {
        self.stop_now();
    }

    fn stop_now(&mut self) {
        if self.shared.stopping.swap(true, Ordering::SeqCst) {
            return;
        }
        {
            // Under the lock, so that no acceptor misses it between its
            // check and its wait.
            let _active = lock(&self.shared.active);
            self.shared.slot_free.notify_all();
        }
        // Wake the acceptors blocked in accept(): on Linux, shutting a
        // listening socket down makes accept() fail at once. Connecting to
        // the socket's path instead would hang if the path was removed or
        // replaced.
        for fd in &self.wake {
            let _ = rustix::net::shutdown(fd, rustix::net::Shutdown::Both);
        }
        for a in self.acceptors.drain(..) {
            let _ = a.join();
        }
        for streams in lock(&self.shared.live).values() {
            for s in streams {
                let _ = s.shutdown(Shutdown::Both);
            }
        }
        let workers = std::mem::take(&mut *lock(&self.shared.workers));
        for w in workers {
            let _ = w.join();
        }
        if let Some(p) = &self.unix_path
            && self.unix_id.is_some()
            && file_id(p) == self.unix_id
        {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// Device and inode of `path` itself (not what a link points to).
fn file_id(path: &Path) -> Option<(u64, u64)> {
    std::fs::symlink_metadata(path)
        .ok()
        .map(|m| (m.dev(), m.ino()))
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop_now();
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A worker that panicked leaves plain data behind; keep serving.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn accept_loop(shared: &Arc<Shared>, accept: impl Fn() -> io::Result<Stream>) {
    loop {
        let client = match accept() {
            Ok(c) => c,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            // The listener was shut down by stop().
            Err(_) if shared.stopping.load(Ordering::SeqCst) => return,
            // Out of descriptors and the like: wait rather than spin.
            Err(_) => {
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
        };
        // A slot first: at most `max_connections` are served, and while they
        // are, this client waits (and the next ones in the listen backlog).
        {
            let mut active = lock(&shared.active);
            while *active >= shared.config.max_connections
                && !shared.stopping.load(Ordering::SeqCst)
            {
                active = shared
                    .slot_free
                    .wait(active)
                    .unwrap_or_else(|e| e.into_inner());
            }
            if shared.stopping.load(Ordering::SeqCst) {
                return;
            }
            *active += 1;
        }
        let id = shared.next_id.fetch_add(1, Ordering::SeqCst);
        let s = shared.clone();
        let worker = std::thread::spawn(move || {
            serve(&s, id, client);
            lock(&s.live).remove(&id);
            *lock(&s.active) -= 1;
            // Each listener's acceptor may be waiting.
            s.slot_free.notify_all();
        });
        let mut workers = lock(&shared.workers);
        workers.retain(|w| !w.is_finished());
        workers.push(worker);
    }
}

/// A client or server socket.
#[derive(Debug)]
enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Stream {
    fn try_clone(&self) -> io::Result<Stream> {
        Ok(match self {
            Stream::Tcp(s) => Stream::Tcp(s.try_clone()?),
            Stream::Unix(s) => Stream::Unix(s.try_clone()?),
        })
    }

    fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.shutdown(how),
            Stream::Unix(s) => s.shutdown(how),
        }
    }

    fn set_timeouts(&self, d: Duration) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => {
                s.set_read_timeout(Some(d))?;
                s.set_write_timeout(Some(d))
            }
            Stream::Unix(s) => {
                s.set_read_timeout(Some(d))?;
                s.set_write_timeout(Some(d))
            }
        }
    }
}

impl std::os::fd::AsFd for Stream {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        match self {
            Stream::Tcp(s) => s.as_fd(),
            Stream::Unix(s) => s.as_fd(),
        }
    }
}

impl Read for &Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => (&*s).read(buf),
            Stream::Unix(s) => (&*s).read(buf),
        }
    }
}

impl Write for &Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => (&*s).write(buf),
            Stream::Unix(s) => (&*s).write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// What is known of a connection so far; becomes its record.
struct Pending {
    protocol: Protocol,
    host: String,
    port: u16,
    address: Option<SocketAddr>,
    outcome: Option<Outcome>,
    bytes_up: u64,
    bytes_down: u64,
}

fn serve(shared: &Shared, id: u64, client: Stream) {
    let started = Instant::now();
    let started_unix_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    if let Ok(c) = client.try_clone() {
        lock(&shared.live).entry(id).or_default().push(c);
    }
    // Registered after `stop` cut the live connections: stop here.
    if shared.stopping.load(Ordering::SeqCst) {
        return;
    }
    let mut p = Pending {
        protocol: Protocol::Http,
        host: String::new(),
        port: 0,
        address: None,
        outcome: None,
        bytes_up: 0,
        bytes_down: 0,
    };
    let _ = client.set_timeouts(shared.config.idle_timeout);
    let mut first = [0u8; 1];
    match (&client).read(&mut first) {
        // A client that sent nothing (or the wake-up connection on stop) is
        // no connection attempt: no record.
        Ok(0) | Err(_) => return,
        Ok(_) => {}
    }
    if first[0] == 0x05 {
        p.protocol = Protocol::Socks5;
        socks5(shared, id, &client, &mut p);
    } else {
        http(shared, id, &client, first[0], &mut p);
    }
    let _ = client.shutdown(Shutdown::Both);
    // Every path sets an outcome; a client that hung up mid-request did not.
    let outcome = p.outcome.take().unwrap_or_else(|| {
        Outcome::Refused(Refusal::Malformed {
            problem: "the client closed the connection before its request was complete".into(),
        })
    });
    deliver(shared, p, outcome, started, started_unix_ms);
}

fn deliver(shared: &Shared, p: Pending, outcome: Outcome, started: Instant, started_unix_ms: u64) {
    shared.config.sink.deliver(ConnectionRecord {
        protocol: p.protocol,
        host: p.host,
        port: p.port,
        address: p.address,
        outcome,
        bytes_up: p.bytes_up,
        bytes_down: p.bytes_down,
        duration_us: started.elapsed().as_micros() as u64,
        started_unix_ms,
    });
}

/// The address to dial, chosen from the resolver's answers, or why none.
enum Target {
    Dial {
        stream: TcpStream,
        address: SocketAddr,
        address_rule: Option<String>,
    },
    Refused {
        address: SocketAddr,
        refusal: Refusal,
    },
    Failed {
        address: Option<SocketAddr>,
        error: String,
        /// The SOCKS reply that fits.
        socks: u8,
    },
}

fn resolve(shared: &Shared, host: &Host, port: u16) -> Result<Vec<IpAddr>, String> {
    match host {
        Host::Address(a) => Ok(vec![*a]),
        Host::Name(n) => {
            if let Some(list) = shared.config.names.get(n) {
                if list.is_empty() {
                    return Err(format!("{n} has no address"));
                }
                return Ok(list.clone());
            }
            let mut out = Vec::new();
            for a in (n.as_str(), port)
                .to_socket_addrs()
                .map_err(|e| format!("cannot resolve {n}: {e}"))?
            {
                let ip = a.ip().to_canonical();
                if !out.contains(&ip) {
                    out.push(ip);
                }
            }
            if out.is_empty() {
                return Err(format!("{n} has no address"));
            }
            Ok(out)
        }
    }
}

/// Resolves once, checks each address, and dials the first one that passes
/// (that very address: there is no second lookup).
fn choose_and_dial(shared: &Shared, host: &Host, port: u16) -> Target {
    let addresses = match resolve(shared, host, port) {
        Ok(a) => a,
        Err(error) => {
            return Target::Failed {
                address: None,
                error,
                socks: SOCKS_HOST_UNREACHABLE,
            };
        }
    };
    let mut first_refused = None;
    let mut last_error = None;
    for ip in addresses {
        let address = SocketAddr::new(ip, port);
        let address_rule = match classify(ip) {
            None => None,
            Some(class) => match shared.config.allowlist.names_address(ip, port) {
                Some(rule) => Some(rule.to_string()),
                None => {
                    first_refused.get_or_insert((address, class));
                    continue;
                }
            },
        };
        match TcpStream::connect_timeout(&address, shared.config.connect_timeout) {
            Ok(stream) => {
                return Target::Dial {
                    stream,
                    address,
                    address_rule,
                };
            }
            Err(e) => last_error = Some((address, e)),
        }
    }
    if let Some((address, e)) = last_error {
        let socks = match e.kind() {
            io::ErrorKind::ConnectionRefused => SOCKS_CONNECTION_REFUSED,
            io::ErrorKind::NetworkUnreachable => SOCKS_NETWORK_UNREACHABLE,
            _ => SOCKS_HOST_UNREACHABLE,
        };
        return Target::Failed {
            address: Some(address),
            error: format!("cannot connect to {address}: {e}"),
            socks,
        };
    }
    let Some((address, class)) = first_refused else {
        return Target::Failed {
            address: None,
            error: format!("{host} has no address"),
            socks: SOCKS_HOST_UNREACHABLE,
        };
    };
    Target::Refused {
        address,
        refusal: Refusal::NotPublic {
            class,
            allow_with: setting_for(&Host::from(address.ip()), port),
        },
    }
}

/// The sentence a refused client is shown.
pub fn refusal_message(host: &str, port: u16, address: Option<SocketAddr>, r: &Refusal) -> String {
    match r {
        Refusal::NotListed { allow_with } => format!(
            "airlock: connection to {host}:{port} refused: {host} is not in this lane's network allowlist.\n\
             To allow it, add it to the lane's network setting: {allow_with}\n"
        ),
        Refusal::NotPublic { class, allow_with } => format!(
            "airlock: connection to {host}:{port} refused: {host} resolves to {}, {}, which a name in the allowlist may not reach.\n\
             To allow that address, name it in the lane's network setting: {allow_with}\n",
            address.map(|a| a.ip().to_string()).unwrap_or_default(),
            class.describe()
        ),
        Refusal::Unsupported { what } => format!("airlock: refused: {what}\n"),
        Refusal::Malformed { problem } => format!("airlock: bad proxy request: {problem}\n"),
    }
}

fn http_reply(client: &Stream, status: &str, body: &str) {
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let mut w = client;
    let _ = w.write_all(head.as_bytes());
    let _ = w.write_all(body.as_bytes());
    // Read what the client still sends, briefly, so that closing does not
    // reset the connection before it has read the answer.
    let _ = client.shutdown(Shutdown::Write);
    let _ = client.set_timeouts(Duration::from_millis(200));
    let mut sink = [0u8; 4096];
    let mut drained = 0;
    let mut r = client;
    while drained < MAX_HEAD {
        match r.read(&mut sink) {
            Ok(0) | Err(_) => break,
            Ok(n) => drained += n,
        }
    }
}

fn http(shared: &Shared, id: u64, client: &Stream, first: u8, p: &mut Pending) {
    let mut buf = vec![first];
    let mut chunk = [0u8; 8192];
    // The whole head within the idle time, not only each read: a client
    // sending a byte at a time, each just in time, would otherwise hold one
    // of the `max_connections` threads for hours (slowloris).
    let head_started = Instant::now();
    // Read until the head is complete.
    let head_len = loop {
        if head_started.elapsed() >= shared.config.idle_timeout {
            return refuse_http(
                client,
                p,
                "408 Request Timeout",
                Refusal::Malformed {
                    problem: format!(
                        "the request head did not arrive whole within {} s",
                        shared.config.idle_timeout.as_secs_f64()
                    ),
                },
            );
        }
        let mut headers = [httparse::EMPTY_HEADER; 128];
        let mut req = httparse::Request::new(&mut headers);
        match req.parse(&buf) {
            Ok(httparse::Status::Complete(n)) => break n,
            Ok(httparse::Status::Partial) if buf.len() < MAX_HEAD => {}
            Ok(httparse::Status::Partial) => {
                return refuse_http(
                    client,
                    p,
                    "431 Request Header Fields Too Large",
                    Refusal::Malformed {
                        problem: format!("the request head is over {MAX_HEAD} bytes"),
                    },
                );
            }
            Err(e) => {
                return refuse_http(
                    client,
                    p,
                    "400 Bad Request",
                    Refusal::Malformed {
                        problem: format!("not an HTTP request or SOCKS5 greeting ({e})"),
                    },
                );
            }
        }
        match (&*client).read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let mut headers = [httparse::EMPTY_HEADER; 128];
    let mut req = httparse::Request::new(&mut headers);
    let _ = req.parse(&buf);
    let method = req.method.unwrap_or("").to_string();
    let target = req.path.unwrap_or("").to_string();

    if method.eq_ignore_ascii_case("CONNECT") {
        p.protocol = Protocol::Connect;
        let Some((h, port)) = target.rsplit_once(':') else {
            return refuse_http(
                client,
                p,
                "400 Bad Request",
                Refusal::Malformed {
                    problem: format!("CONNECT needs HOST:PORT, not `{target}`"),
                },
            );
        };
        // Digits only: `+443` parses as a u16 too, a spelling no client
        // sends and the allowlist does not accept.
        let Some(port) = port
            .parse::<u16>()
            .ok()
            .filter(|_| port.bytes().all(|b| b.is_ascii_digit()))
        else {
            return refuse_http(
                client,
                p,
                "400 Bad Request",
                Refusal::Malformed {
                    problem: format!("`{port}` in `CONNECT {target}` is not a port"),
                },
            );
        };
        p.port = port;
        let host = match Host::parse(h) {
            Ok(host) => host,
            Err(e) => {
                p.host = h.to_string();
                return refuse_http(
                    client,
                    p,
                    "400 Bad Request",
                    Refusal::Malformed {
                        problem: e.to_string(),
                    },
                );
            }
        };
        p.host = host.to_string();
        let Some(upstream) = open(shared, id, &host, port, p, |status, body| {
            http_reply(client, status, body)
        }) else {
            return;
        };
        let mut w = client;
        if w.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
            .is_err()
        {
            return;
        }
        // Bytes the client sent after the head (an early TLS hello) go first.
        let early = &buf[head_len..];
        if !early.is_empty() {
            if (&upstream).write_all(early).is_err() {
                return;
            }
            p.bytes_up += early.len() as u64;
        }
        relay(shared, client, &upstream, p, false);
        return;
    }

    // Plain HTTP: an absolute-form URL.
    let url = match url::Url::parse(&target) {
        Ok(u) if u.has_host() => u,
        _ => {
            return refuse_http(
                client,
                p,
                "400 Bad Request",
                Refusal::Malformed {
                    problem: format!(
                        "`{method} {target}` is not a proxy request: a client of this proxy sends the whole URL (`{method} http://HOST/PATH`), as clients given HTTP_PROXY do"
                    ),
                },
            );
        }
    };
    if url.scheme() != "http" {
        return refuse_http(
            client,
            p,
            "400 Bad Request",
            Refusal::Unsupported {
                what: format!(
                    "`{}://` is forwarded only through a CONNECT tunnel; a client given HTTPS_PROXY sends CONNECT",
                    url.scheme()
                ),
            },
        );
    }
    let host = match url.host() {
        Some(url::Host::Domain(d)) => match Host::parse(d) {
            Ok(h) => h,
            Err(e) => {
                p.host = d.to_string();
                return refuse_http(
                    client,
                    p,
                    "400 Bad Request",
                    Refusal::Malformed {
                        problem: e.to_string(),
                    },
                );
            }
        },
        Some(url::Host::Ipv4(a)) => Host::from(IpAddr::V4(a)),
        Some(url::Host::Ipv6(a)) => Host::from(IpAddr::V6(a)),
        None => unreachable!("has_host checked"),
    };
    let port = url.port_or_known_default().unwrap_or(80);
    p.host = host.to_string();
    p.port = port;
    let body = match request_body(req.headers) {
        Ok(body) => body,
        Err(problem) => {
            return refuse_http(client, p, "400 Bad Request", Refusal::Malformed { problem });
        }
    };
    let Some(upstream) = open(shared, id, &host, port, p, |status, body| {
        http_reply(client, status, body)
    }) else {
        return;
    };

    // The request as the server expects it: origin form, this hop's headers
    // dropped, one request per connection.
    let path = &url[url::Position::BeforePath..url::Position::AfterQuery];
    let hop: Vec<String> = req
        .headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case("connection"))
        .flat_map(|h| {
            String::from_utf8_lossy(h.value)
                .split(',')
                .map(|t| t.trim().to_ascii_lowercase())
                .collect::<Vec<_>>()
        })
        // The body's framing is the whole message's, never this hop's: a
        // client naming it in `Connection` would have the proxy send the
        // body without it, for the server to read as a request of its own.
        .filter(|name| name != "content-length" && name != "transfer-encoding")
        .collect();
    let mut head = format!("{method} {path} HTTP/1.{}\r\n", req.version.unwrap_or(1)).into_bytes();
    for h in req.headers.iter() {
        let name = h.name.to_ascii_lowercase();
        let drop = matches!(
            name.as_str(),
            "host"
                | "connection"
                | "proxy-connection"
                | "keep-alive"
                | "proxy-authorization"
                | "proxy-authenticate"
                | "te"
                | "trailer"
                | "upgrade"
        ) || hop.contains(&name);
        if !drop {
            head.extend_from_slice(h.name.as_bytes());
            head.extend_from_slice(b": ");
            head.extend_from_slice(h.value);
            head.extend_from_slice(b"\r\n");
        }
    }
    let authority = match url.port() {
        Some(port) => format!("{}:{port}", url.host_str().unwrap_or_default()),
        None => url.host_str().unwrap_or_default().to_string(),
    };
    head.extend_from_slice(format!("Host: {authority}\r\nConnection: close\r\n\r\n").as_bytes());
    if (&upstream).write_all(&head).is_err() {
        return;
    }
    p.bytes_up += head.len() as u64;
    relay_one_request(shared, client, &upstream, p, &buf[head_len..], body);
}

/// How a plain-HTTP request's body ends (RFC 9112, section 6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Body {
    Length(u64),
    Chunked,
}

/// The framing of a request's body, or why it is ambiguous. The proxy
/// forwards that body and nothing after it, so a framing a server could
/// read otherwise (both `Transfer-Encoding` and `Content-Length`, two
/// lengths, a coding other than `chunked` alone) would let bytes the proxy
/// took for the body pass as a second request: refused.
fn request_body(headers: &[httparse::Header]) -> Result<Body, String> {
    let mut coding = None;
    let mut length = None;
    for h in headers {
        let value = String::from_utf8_lossy(h.value);
        let value = value.trim();
        if h.name.eq_ignore_ascii_case("transfer-encoding") {
            if coding.replace(value.to_string()).is_some() {
                return Err("more than one Transfer-Encoding header".into());
            }
        } else if h.name.eq_ignore_ascii_case("content-length") {
            let n = value
                .parse::<u64>()
                .ok()
                .filter(|_| !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()))
                .ok_or_else(|| format!("Content-Length `{value}` is not a number of bytes"))?;
            if length.replace(n).is_some() {
                return Err("more than one Content-Length header".into());
            }
        }
    }
    match (coding, length) {
        (Some(_), Some(_)) => Err(
            "both Transfer-Encoding and Content-Length: send one of them, as a server could frame the body by either"
                .into(),
        ),
        (Some(c), None) if c.eq_ignore_ascii_case("chunked") => Ok(Body::Chunked),
        (Some(c), None) => Err(format!(
            "Transfer-Encoding `{c}`: this proxy forwards bodies sent as `chunked` or with a Content-Length"
        )),
        (None, length) => Ok(Body::Length(length.unwrap_or(0))),
    }
}

/// Relays one plain-HTTP request's body (`early`, read with the head, then
/// the client's) and the server's answer, then closes both sides. Bytes
/// after the body are never forwarded: a second request on the connection
/// (pipelined, or smuggled after the body) would reach the server, for a
/// host that was never checked, if the server kept the connection alive
/// against the `Connection: close` it was sent.
fn relay_one_request(
    shared: &Shared,
    client: &Stream,
    upstream: &Stream,
    p: &mut Pending,
    early: &[u8],
    body: Body,
) {
    let idle = shared.config.idle_timeout;
    let origin = Instant::now();
    let last = AtomicU64::new(0);
    let (up, down) = std::thread::scope(|s| {
        let up = s.spawn(|| {
            let mut from = BodyReader {
                client,
                pending: early.to_vec(),
                last: &last,
                origin,
                idle,
            };
            let mut sent = 0u64;
            let _ = from.forward(upstream, body, &mut sent);
            sent
        });
        let down = pump(upstream, client, &last, origin, idle);
        let _ = client.shutdown(Shutdown::Both);
        let _ = upstream.shutdown(Shutdown::Both);
        (up.join().unwrap_or(0), down.0)
    });
    p.bytes_up += up;
    p.bytes_down += down;
}

/// The client's bytes after a request head: those already read, then the
/// socket's.
struct BodyReader<'a> {
    client: &'a Stream,
    pending: Vec<u8>,
    last: &'a AtomicU64,
    origin: Instant,
    idle: Duration,
}

impl BodyReader<'_> {
    /// Reads more into `pending`; an error at the client's end or when it
    /// was quiet for the idle time.
    fn fill(&mut self) -> io::Result<()> {
        let mut chunk = vec![0u8; 64 * 1024];
        loop {
            match (&*self.client).read(&mut chunk) {
                Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                Ok(n) => {
                    self.pending.extend_from_slice(&chunk[..n]);
                    self.last
                        .store(self.origin.elapsed().as_nanos() as u64, Ordering::Relaxed);
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) && quiet_for(self.last, self.origin) < self.idle => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Writes the first `n` pending bytes to `to`.
    fn pass(&mut self, to: &Stream, n: usize, sent: &mut u64) -> io::Result<()> {
        let mut w = to;
        w.write_all(&self.pending[..n])?;
        self.pending.drain(..n);
        *sent += n as u64;
        Ok(())
    }

    /// Forwards exactly one body framed as `body`.
    fn forward(&mut self, to: &Stream, body: Body, sent: &mut u64) -> io::Result<()> {
        let bad = |what: &str| io::Error::new(io::ErrorKind::InvalidData, what.to_string());
        match body {
            Body::Length(mut left) => {
                while left > 0 {
                    if self.pending.is_empty() {
                        self.fill()?;
                    }
                    let n = self
                        .pending
                        .len()
                        .min(usize::try_from(left).unwrap_or(usize::MAX));
                    self.pass(to, n, sent)?;
                    left -= n as u64;
                }
                Ok(())
            }
            Body::Chunked => loop {
                // The chunk's size line.
                let (line, size) = loop {
                    match httparse::parse_chunk_size(&self.pending) {
                        Ok(httparse::Status::Complete(found)) => break found,
                        Ok(httparse::Status::Partial) if self.pending.len() < MAX_HEAD => {
                            self.fill()?
                        }
                        _ => return Err(bad("not a chunk size line")),
                    }
                };
                // httparse lets an extension hold a bare LF, which a server
                // may take for the line's end: refused.
                if self.pending[..line - 1].contains(&b'\n') {
                    return Err(bad("a line feed inside a chunk size line"));
                }
                self.pass(to, line, sent)?;
                if size == 0 {
                    // Trailer fields, up to the empty line.
                    let mut trailers = 0;
                    loop {
                        let Some(end) = self.pending.windows(2).position(|w| w == b"\r\n") else {
                            if trailers + self.pending.len() >= MAX_HEAD {
                                return Err(bad("trailers too long"));
                            }
                            self.fill()?;
                            continue;
                        };
                        trailers += end + 2;
                        self.pass(to, end + 2, sent)?;
                        if end == 0 {
                            return Ok(());
                        }
                    }
                }
                // The data and its CRLF.
                let mut left = size;
                while left > 0 {
                    if self.pending.is_empty() {
                        self.fill()?;
                    }
                    let n = self
                        .pending
                        .len()
                        .min(usize::try_from(left).unwrap_or(usize::MAX));
                    self.pass(to, n, sent)?;
                    left -= n as u64;
                }
                while self.pending.len() < 2 {
                    self.fill()?;
                }
                if &self.pending[..2] != b"\r\n" {
                    return Err(bad("a chunk's data does not end with CRLF"));
                }
                self.pass(to, 2, sent)?;
            },
        }
    }
}

fn refuse_http(client: &Stream, p: &mut Pending, status: &str, refusal: Refusal) {
    let body = refusal_message(&p.host, p.port, p.address, &refusal);
    http_reply(client, status, &body);
    p.outcome = Some(Outcome::Refused(refusal));
}

/// Decides, resolves, checks and dials; on refusal or failure answers the
/// client through `answer(status, body)` (HTTP) and returns `None`.
fn open(
    shared: &Shared,
    id: u64,
    host: &Host,
    port: u16,
    p: &mut Pending,
    answer: impl FnOnce(&str, &str),
) -> Option<Stream> {
    match open_socks(shared, id, host, port, p) {
        Ok(s) => Some(s),
        Err(_) => {
            let (status, body) = match p.outcome.as_ref() {
                Some(Outcome::Refused(r @ Refusal::Malformed { .. })) => (
                    "400 Bad Request",
                    refusal_message(&p.host, p.port, p.address, r),
                ),
                Some(Outcome::Refused(r)) => (
                    "403 Forbidden",
                    refusal_message(&p.host, p.port, p.address, r),
                ),
                Some(Outcome::Failed { error, .. }) => {
                    ("502 Bad Gateway", format!("airlock: {error}\n"))
                }
                _ => ("502 Bad Gateway", "airlock: cannot connect\n".to_string()),
            };
            answer(status, &body);
            None
        }
    }
}

/// Like [`open`], but reports a failure as the SOCKS5 reply code that fits.
fn open_socks(
    shared: &Shared,
    id: u64,
    host: &Host,
    port: u16,
    p: &mut Pending,
) -> Result<Stream, u8> {
    // Port 0 is no port: nothing listens there; refused as the request it
    // is rather than dialled.
    if port == 0 {
        p.outcome = Some(Outcome::Refused(Refusal::Malformed {
            problem: "port 0 is not a port a server listens on".into(),
        }));
        return Err(SOCKS_NOT_ALLOWED);
    }
    let rule = match shared.config.allowlist.decide(host, port) {
        Ok(rule) => rule.to_string(),
        Err(e) => {
            p.outcome = Some(Outcome::Refused(Refusal::NotListed {
                allow_with: e.allow_with,
            }));
            return Err(SOCKS_NOT_ALLOWED);
        }
    };
    match choose_and_dial(shared, host, port) {
        Target::Dial {
            stream,
            address,
            address_rule,
        } => {
            p.address = Some(address);
            let upstream = Stream::Tcp(stream);
            let _ = upstream.set_timeouts(shared.config.idle_timeout);
            if let Ok(c) = upstream.try_clone() {
                lock(&shared.live).entry(id).or_default().push(c);
            }
            // Registered after `stop` cut the live connections: stop here.
            if shared.stopping.load(Ordering::SeqCst) {
                p.outcome = Some(Outcome::Failed {
                    rule,
                    error: "the proxy is stopping".into(),
                });
                return Err(SOCKS_GENERAL_FAILURE);
            }
            p.outcome = Some(Outcome::Allowed { rule, address_rule });
            Ok(upstream)
        }
        Target::Refused { address, refusal } => {
            p.address = Some(address);
            p.outcome = Some(Outcome::Refused(refusal));
            Err(SOCKS_NOT_ALLOWED)
        }
        Target::Failed {
            address,
            error,
            socks,
        } => {
            p.address = address;
            p.outcome = Some(Outcome::Failed { rule, error });
            Err(socks)
        }
    }
}

fn socks_reply(client: &Stream, code: u8) -> io::Result<()> {
    // The bound address is not told: 0.0.0.0:0.
    (&*client).write_all(&[5, code, 0, 1, 0, 0, 0, 0, 0, 0])
}

/// Reads a request from a client with one deadline for the whole of it, not
/// one per read: a client trickling a byte at a time, each just inside the
/// idle time, would otherwise hold one of the proxy's threads for hours
/// (slowloris).
struct Deadline<'a> {
    client: &'a Stream,
    until: Instant,
}

impl Read for Deadline<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::ErrorKind::TimedOut.into());
        }
        self.client.set_timeouts(left)?;
        (&*self.client).read(buf)
    }
}

fn socks5(shared: &Shared, id: u64, client: &Stream, p: &mut Pending) {
    let mut r = Deadline {
        client,
        until: Instant::now() + shared.config.idle_timeout,
    };
    let mut n = [0u8; 1];
    if r.read_exact(&mut n).is_err() {
        return;
    }
    let mut methods = vec![0u8; n[0] as usize];
    if r.read_exact(&mut methods).is_err() {
        return;
    }
    if !methods.contains(&0) {
        let _ = (&*client).write_all(&[5, 0xff]);
        p.outcome = Some(Outcome::Refused(Refusal::Unsupported {
            what: "SOCKS5 authentication: this proxy offers only \"no authentication\"".into(),
        }));
        return;
    }
    if (&*client).write_all(&[5, 0]).is_err() {
        return;
    }
    let mut head = [0u8; 4];
    if r.read_exact(&mut head).is_err() {
        return;
    }
    let [version, command, _, kind] = head;
    if version != 5 {
        let _ = socks_reply(client, SOCKS_GENERAL_FAILURE);
        p.outcome = Some(Outcome::Refused(Refusal::Malformed {
            problem: format!("SOCKS request version {version}, not 5"),
        }));
        return;
    }
    let host = match kind {
        1 => {
            let mut a = [0u8; 4];
            if r.read_exact(&mut a).is_err() {
                return;
            }
            Ok(Host::from(IpAddr::from(a)))
        }
        4 => {
            let mut a = [0u8; 16];
            if r.read_exact(&mut a).is_err() {
                return;
            }
            Ok(Host::from(IpAddr::from(a)))
        }
        3 => {
            let mut len = [0u8; 1];
            if r.read_exact(&mut len).is_err() {
                return;
            }
            let mut name = vec![0u8; len[0] as usize];
            if r.read_exact(&mut name).is_err() {
                return;
            }
            let text = String::from_utf8_lossy(&name).into_owned();
            p.host = text.clone();
            Host::parse(&text).map_err(|e| e.to_string())
        }
        other => {
            let _ = socks_reply(client, SOCKS_ADDRESS_TYPE_NOT_SUPPORTED);
            p.outcome = Some(Outcome::Refused(Refusal::Malformed {
                problem: format!("SOCKS address type {other} does not exist"),
            }));
            return;
        }
    };
    let mut port = [0u8; 2];
    if r.read_exact(&mut port).is_err() {
        return;
    }
    p.port = u16::from_be_bytes(port);
    if let Ok(h) = &host {
        p.host = h.to_string();
    }
    if command != 1 {
        let _ = socks_reply(client, SOCKS_COMMAND_NOT_SUPPORTED);
        let what = match command {
            2 => "SOCKS5 BIND: nothing outside may connect into the sandbox".to_string(),
            3 => "SOCKS5 UDP ASSOCIATE: only TCP connections leave the sandbox".to_string(),
            c => format!("SOCKS5 command {c} does not exist"),
        };
        p.outcome = Some(Outcome::Refused(Refusal::Unsupported { what }));
        return;
    }
    // The request is in: the idle time bounds each read and write again.
    let _ = client.set_timeouts(shared.config.idle_timeout);
    let host = match host {
        Ok(h) => h,
        Err(problem) => {
            let _ = socks_reply(client, SOCKS_NOT_ALLOWED);
            p.outcome = Some(Outcome::Refused(Refusal::Malformed { problem }));
            return;
        }
    };
    let upstream = match open_socks(shared, id, &host, p.port, p) {
        Ok(s) => s,
        Err(code) => {
            let _ = socks_reply(client, code);
            return;
        }
    };
    if socks_reply(client, 0).is_err() {
        return;
    }
    relay(shared, client, &upstream, p, false);
}

/// Copies both ways until both sides are done. The end of one direction is
/// passed on as a half-close; with `close_on_server_eof` (plain HTTP, one
/// request per connection) the server's end closes the client entirely.
fn relay(
    shared: &Shared,
    client: &Stream,
    upstream: &Stream,
    p: &mut Pending,
    close_on_server_eof: bool,
) {
    if let Stream::Unix(c) = client {
        let _ = rustix::net::sockopt::set_socket_send_buffer_size(c, UNIX_SEND_BUFFER);
    }
    let idle = shared.config.idle_timeout;
    let origin = Instant::now();
    let last = AtomicU64::new(0);
    let (up, down) = std::thread::scope(|s| {
        let up = s.spawn(|| pump(client, upstream, &last, origin, idle));
        let down = pump(upstream, client, &last, origin, idle);
        if close_on_server_eof || down.1.is_err() {
            let _ = client.shutdown(Shutdown::Both);
            let _ = upstream.shutdown(Shutdown::Both);
        }
        let up = up.join().unwrap_or((0, Ok(())));
        (up, down)
    });
    if up.1.is_err() {
        let _ = client.shutdown(Shutdown::Both);
        let _ = upstream.shutdown(Shutdown::Both);
    }
    p.bytes_up += up.0;
    p.bytes_down += down.0;
}

/// Copies `from` to `to` until `from` ends (then half-closes `to`), an error,
/// or `idle` with no byte in either direction (`last`: nanoseconds since
/// `origin` of the last byte either way). Through a pipe with splice(2)
/// where the kernel can, so the bytes never enter the proxy; by read and
/// write where it cannot.
fn pump(
    from: &Stream,
    to: &Stream,
    last: &AtomicU64,
    origin: Instant,
    idle: Duration,
) -> (u64, io::Result<()>) {
    match pump_splice(from, to, last, origin, idle) {
        Some(done) => done,
        None => pump_copy(from, to, last, origin, idle),
    }
}

fn quiet_for(last: &AtomicU64, origin: Instant) -> Duration {
    origin
        .elapsed()
        .saturating_sub(Duration::from_nanos(last.load(Ordering::Relaxed)))
}

/// `None` when splice is not available for these sockets, before any byte
/// moved.
fn pump_splice(
    from: &Stream,
    to: &Stream,
    last: &AtomicU64,
    origin: Instant,
    idle: Duration,
) -> Option<(u64, io::Result<()>)> {
    use rustix::io::Errno;
    use rustix::pipe::{PipeFlags, SpliceFlags, fcntl_setpipe_size, pipe_with, splice};
    let (pipe_out, pipe_in) = pipe_with(PipeFlags::CLOEXEC).ok()?;
    // A pipe holds 64 KiB unless told otherwise; larger moves mean fewer
    // calls. Refused above the system's limit, which is fine.
    let _ = fcntl_setpipe_size(&pipe_in, PIPE_SIZE);
    let mut total = 0u64;
    let fail = |total: u64, e: io::Error| {
        let _ = to.shutdown(Shutdown::Both);
        let _ = from.shutdown(Shutdown::Both);
        Some((total, Err(e)))
    };
    loop {
        let n = match splice(from, None, &pipe_in, None, PIPE_SIZE, SpliceFlags::MOVE) {
            Ok(0) => {
                let _ = to.shutdown(Shutdown::Write);
                return Some((total, Ok(())));
            }
            Ok(n) => n,
            Err(Errno::INTR) => continue,
            Err(Errno::AGAIN) => {
                if quiet_for(last, origin) >= idle {
                    return fail(total, io::ErrorKind::TimedOut.into());
                }
                continue;
            }
            Err(Errno::INVAL | Errno::NOSYS) if total == 0 => return None,
            Err(e) => return fail(total, e.into()),
        };
        let mut left = n;
        while left > 0 {
            match splice(&pipe_out, None, to, None, left, SpliceFlags::MOVE) {
                Ok(0) => return fail(total, io::ErrorKind::WriteZero.into()),
                Ok(k) => left -= k,
                Err(Errno::INTR) => {}
                Err(Errno::AGAIN) => {
                    if quiet_for(last, origin) >= idle {
                        return fail(total, io::ErrorKind::TimedOut.into());
                    }
                }
                Err(e) => return fail(total, e.into()),
            }
        }
        total += n as u64;
        last.store(origin.elapsed().as_nanos() as u64, Ordering::Relaxed);
    }
}

fn pump_copy(
    from: &Stream,
    to: &Stream,
    last: &AtomicU64,
    origin: Instant,
    idle: Duration,
) -> (u64, io::Result<()>) {
    let mut buf = vec![0u8; RELAY_BUFFER];
    let mut total = 0u64;
    let (mut r, mut w) = (from, to);
    loop {
        match r.read(&mut buf) {
            Ok(0) => {
                let _ = to.shutdown(Shutdown::Write);
                return (total, Ok(()));
            }
            Ok(n) => {
                if let Err(e) = w.write_all(&buf[..n]) {
                    let _ = from.shutdown(Shutdown::Both);
                    return (total, Err(e));
                }
                total += n as u64;
                last.store(origin.elapsed().as_nanos() as u64, Ordering::Relaxed);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                if quiet_for(last, origin) >= idle {
                    let _ = to.shutdown(Shutdown::Both);
                    let _ = from.shutdown(Shutdown::Both);
                    return (total, Err(e));
                }
            }
            Err(e) => {
                let _ = to.shutdown(Shutdown::Both);
                return (total, Err(e));
            }
        }
    }
}
