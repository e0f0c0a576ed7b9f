//! Red team of the hand-off (`airlock_egress::handoff`): the sandbox's
//! bridge passes each accepted socket to the proxy over its Unix socket,
//! so the proxy takes a descriptor from code that runs in the sandbox's
//! network namespace. Each test hands it something the bridge never would,
//! with a request for an allowed host waiting in it, and checks that the
//! proxy refused it (a record saying why), dialled nobody, leaked no
//! descriptor, and kept serving the next client.

use std::fs::File;
use std::io::{IoSlice, Read, Write};
use std::mem::MaybeUninit;
use std::net::{IpAddr, Ipv4Addr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::Receiver;
use std::time::Duration;

use airlock_egress::handoff::{HANDOFF, hand_off};
use airlock_egress::{Allowlist, ConnectionRecord, Outcome, Proxy, ProxyConfig, Refusal, Sink};
use rustix::net::{SendAncillaryBuffer, SendAncillaryMessage, SendFlags, sendmsg};

/// Long enough for a loaded machine; a bound on waiting, never a measure.
const PATIENCE: Duration = Duration::from_secs(60);

/// An HTTP server on 127.0.0.1 that counts connections and answers each
/// request `200` with a short body, then closes.
struct Server {
    port: u16,
    connections: Arc<AtomicUsize>,
    listener: TcpListener,
}

impl Server {
    fn start() -> Server {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = listener.local_addr().unwrap().port();
        let connections = Arc::new(AtomicUsize::new(0));
        let (c, l) = (connections.clone(), listener.try_clone().unwrap());
        std::thread::spawn(move || {
            for conn in l.incoming() {
                let Ok(mut conn) = conn else { return };
                c.fetch_add(1, Ordering::SeqCst);
                std::thread::spawn(move || {
                    let _ = conn.set_read_timeout(Some(PATIENCE));
                    let mut head = Vec::new();
                    let mut byte = [0u8; 1];
                    while !head.ends_with(b"\r\n\r\n") {
                        match conn.read(&mut byte) {
                            Ok(1) => head.push(byte[0]),
                            _ => return,
                        }
                    }
                    let _ = conn.write_all(
                        b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\nConnection: close\r\n\r\nhello\n",
                    );
                });
            }
        });
        Server {
            port,
            connections,
            listener,
        }
    }

    fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = rustix::net::shutdown(&self.listener, rustix::net::Shutdown::Both);
    }
}

/// A proxy on a Unix socket (as the engine starts it) that allows
/// `allowed.test`, which names the allowed server on loopback.
struct Harness {
    proxy: Option<Proxy>,
    records: Receiver<ConnectionRecord>,
    socket: PathBuf,
    _dir: tempfile::TempDir,
}

impl Harness {
    fn start(allowed: &Server) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("proxy.sock");
        let (sink, records) = Sink::channel();
        let allow = [
            "allowed.test".to_string(),
            format!("127.0.0.1:{}", allowed.port),
        ];
        let mut config = ProxyConfig::new(Allowlist::parse(&allow).unwrap(), sink)
            .name("allowed.test", &[IpAddr::V4(Ipv4Addr::LOCALHOST)]);
        config.unix_socket = Some(socket.clone());
        Harness {
            proxy: Some(Proxy::start(config).unwrap()),
            records,
            socket,
            _dir: dir,
        }
    }

    fn connect(&self) -> UnixStream {
        UnixStream::connect(&self.socket).unwrap()
    }

    fn record(&self) -> ConnectionRecord {
        self.records
            .recv_timeout(PATIENCE)
            .expect("the proxy delivers a record for every connection")
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        if let Some(p) = self.proxy.take() {
            p.stop();
        }
    }
}

/// A CONNECT to the allowed server, and a request through the tunnel:
/// what a handed descriptor carries, so that serving it would dial.
fn request(allowed: &Server) -> Vec<u8> {
    format!(
        "CONNECT allowed.test:{port} HTTP/1.1\r\nHost: allowed.test:{port}\r\n\r\n\
         GET / HTTP/1.1\r\nHost: allowed.test\r\n\r\n",
        port = allowed.port
    )
    .into_bytes()
}

/// Sends `byte` with `fds` attached on a new connection to the proxy.
fn send_with(h: &Harness, byte: u8, fds: &[BorrowedFd<'_>]) -> UnixStream {
    let conn = h.connect();
    let mut space = vec![MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(fds.len()))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    assert!(control.push(SendAncillaryMessage::ScmRights(fds)));
    sendmsg(
        &conn,
        &[IoSlice::new(&[byte])],
        &mut control,
        SendFlags::empty(),
    )
    .unwrap();
    conn
}

/// The refusal's problem, after checking the connection was refused.
fn refused(record: &ConnectionRecord) -> String {
    match &record.outcome {
        Outcome::Refused(Refusal::Malformed { problem }) => problem.clone(),
        other => panic!("not refused as malformed: {other:?} ({record:?})"),
    }
}

fn open_descriptors() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// Waits (a bound, not a measure) until this process has `before`
/// descriptors open again: the proxy's worker closes its side of a refused
/// connection just after delivering the record.
fn no_descriptor_kept(before: usize) {
    let until = std::time::Instant::now() + PATIENCE;
    while open_descriptors() != before && std::time::Instant::now() < until {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        open_descriptors(),
        before,
        "the proxy kept a descriptor it refused"
    );
}

/// The tests count this process's descriptors: one at a time.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// A loopback TCP connection: (the accepted side, the client side), as
/// the bridge's listener makes it.
fn tcp_pair() -> (TcpStream, TcpStream) {
    let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let client = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let (accepted, _) = l.accept().unwrap();
    (accepted, client)
}

/// A good hand-off, as the bridge makes it: served, the allowed server
/// reached; and one for a host off the list: refused with 403, its server
/// untouched.
fn still_serves(h: &Harness, allowed: &Server, before: usize) {
    let (accepted, mut client) = tcp_pair();
    hand_off(&h.connect(), accepted.as_fd()).unwrap();
    drop(accepted);
    client.set_read_timeout(Some(PATIENCE)).unwrap();
    client.write_all(&request(allowed)).unwrap();
    let mut answer = Vec::new();
    let _ = client.read_to_end(&mut answer);
    // The tunnel's record comes once both ways ended.
    drop(client);
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.starts_with("HTTP/1.1 200") && answer.ends_with("hello\n"),
        "{answer}"
    );
    assert!(h.record().allowed());
    assert_eq!(allowed.connections(), before + 1);

    let off_list = Server::start();
    let (accepted, mut client) = tcp_pair();
    hand_off(&h.connect(), accepted.as_fd()).unwrap();
    drop(accepted);
    client.set_read_timeout(Some(PATIENCE)).unwrap();
    write!(
        client,
        "CONNECT 127.0.0.1:{0} HTTP/1.1\r\nHost: 127.0.0.1:{0}\r\n\r\n",
        off_list.port
    )
    .unwrap();
    let mut answer = Vec::new();
    let _ = client.read_to_end(&mut answer);
    assert!(
        String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 403"),
        "{}",
        String::from_utf8_lossy(&answer)
    );
    assert!(!h.record().allowed());
    assert_eq!(off_list.connections(), 0);
}

/// Every kind of descriptor the bridge never hands over, each with a
/// request for the allowed host ready to be read from it where it can hold
/// one: refused with what it was, nothing dialled, nothing leaked.
#[test]
fn a_descriptor_that_is_not_a_connected_loopback_tcp_socket_is_refused() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let allowed = Server::start();
    let h = Harness::start(&allowed);
    let dir = tempfile::tempdir().unwrap();
    let before = open_descriptors();

    // A FIFO (pipe) with the request in it.
    {
        let (out, into) = rustix::pipe::pipe().unwrap();
        rustix::io::write(&into, &request(&allowed)).unwrap();
        drop(into);
        let _c = send_with(&h, HANDOFF, &[out.as_fd()]);
        assert!(refused(&h.record()).contains("a FIFO"));
    }
    // A regular file holding the request.
    {
        let path = dir.path().join("request");
        std::fs::write(&path, request(&allowed)).unwrap();
        let file = File::open(&path).unwrap();
        let _c = send_with(&h, HANDOFF, &[file.as_fd()]);
        assert!(refused(&h.record()).contains("a regular file"));
    }
    // A directory.
    {
        let d = File::open(dir.path()).unwrap();
        let _c = send_with(&h, HANDOFF, &[d.as_fd()]);
        assert!(refused(&h.record()).contains("a directory"));
    }
    // A connected Unix socket whose peer writes the request.
    {
        let (a, mut b) = UnixStream::pair().unwrap();
        b.write_all(&request(&allowed)).unwrap();
        let _c = send_with(&h, HANDOFF, &[a.as_fd()]);
        assert!(refused(&h.record()).contains("a Unix socket"));
    }
    // A connected UDP socket with the request waiting as a datagram.
    {
        let a = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let b = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        a.connect(b.local_addr().unwrap()).unwrap();
        b.connect(a.local_addr().unwrap()).unwrap();
        b.send(&request(&allowed)).unwrap();
        let _c = send_with(&h, HANDOFF, &[a.as_fd()]);
        assert!(refused(&h.record()).contains("a UDP socket"));
    }
    // A listening TCP socket with a client waiting that would send the
    // request: served, the proxy would take connections itself.
    {
        let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let mut waiting = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        waiting.write_all(&request(&allowed)).unwrap();
        let _c = send_with(&h, HANDOFF, &[l.as_fd()]);
        assert!(refused(&h.record()).contains("a listening socket"));
    }
    // A TCP socket never connected.
    {
        let s = rustix::net::socket(
            rustix::net::AddressFamily::INET,
            rustix::net::SocketType::STREAM,
            None,
        )
        .unwrap();
        let _c = send_with(&h, HANDOFF, &[s.as_fd()]);
        assert!(refused(&h.record()).contains("not connected"));
    }
    // A TCP socket connected outside loopback (the machine's own address,
    // where it has one other than loopback): not one the bridge accepted.
    if let Some(ip) = own_address() {
        let l = TcpListener::bind((ip, 0)).unwrap();
        let mut far = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (near, _) = l.accept().unwrap();
        far.write_all(&request(&allowed)).unwrap();
        let _c = send_with(&h, HANDOFF, &[near.as_fd()]);
        assert!(refused(&h.record()).contains("not one on the sandbox's loopback"));
    }
    // The marker byte without a descriptor.
    {
        let mut c = h.connect();
        c.write_all(&[HANDOFF]).unwrap();
        c.write_all(&request(&allowed)).unwrap();
        assert!(refused(&h.record()).contains("without a socket"));
    }
    // A good socket sent with a request's first byte instead of the marker.
    {
        let (accepted, mut client) = tcp_pair();
        client.write_all(&request(&allowed)).unwrap();
        let _c = send_with(&h, b'C', &[accepted.as_fd()]);
        assert!(refused(&h.record()).contains("instead of as a hand-off"));
    }

    assert_eq!(allowed.connections(), 0, "a refused descriptor was served");
    no_descriptor_kept(before);
    still_serves(&h, &allowed, 0);
}

/// Two good sockets at once, then a flood of them (more than the proxy
/// makes room for; the kernel's limit is 253 in one message): refused,
/// every one closed, none served.
#[test]
fn several_descriptors_at_once_are_refused_and_all_closed() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let allowed = Server::start();
    let h = Harness::start(&allowed);
    let before = open_descriptors();
    for count in [2, 3, 200] {
        let pairs: Vec<(TcpStream, TcpStream)> = (0..count).map(|_| tcp_pair()).collect();
        for (_, client) in &pairs {
            (&*client).write_all(&request(&allowed)).unwrap();
        }
        let fds: Vec<BorrowedFd<'_>> = pairs.iter().map(|(a, _)| a.as_fd()).collect();
        let conn = send_with(&h, HANDOFF, &fds);
        let problem = refused(&h.record());
        assert!(problem.contains("at once"), "{problem}");
        drop(conn);
        drop(pairs);
    }
    assert_eq!(allowed.connections(), 0, "a refused descriptor was served");
    no_descriptor_kept(before);
    still_serves(&h, &allowed, 0);
}

/// An address of this machine other than loopback, if it has one.
fn own_address() -> Option<IpAddr> {
    // No packet is sent: connecting a UDP socket only picks the route.
    let s = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).ok()?;
    s.connect((Ipv4Addr::new(192, 0, 2, 1), 9)).ok()?;
    let ip = s.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
}
