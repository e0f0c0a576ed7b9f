//! Red team of the proxy (issue 16): requests a hostile client inside the
//! sandbox can send, written by hand so that every spelling reaches the
//! proxy exactly as given. Each test attempts the attack and checks that a
//! server on this machine that the lane does not allow saw no connection.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv6Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use airlock_egress::{
    AddressClass, Allowlist, ConnectionRecord, Outcome, Proxy, ProxyConfig, Refusal, Sink,
};

/// Long enough for a loaded machine; a bound on waiting, never a measure.
const PATIENCE: Duration = Duration::from_secs(60);

/// An HTTP server on every address of this machine, IPv4 and IPv6 (one
/// dual-stack socket): whatever spelling of a local address reaches its
/// port is counted. It keeps each request's head and body, and answers
/// every request it reads on a connection until one says `Connection:
/// close` (or, made by `start_ignoring_close`, whatever that header says,
/// as a server that keeps every connection alive).
struct Server {
    port: u16,
    connections: Arc<AtomicUsize>,
    requests: Arc<Mutex<Vec<String>>>,
    listener: TcpListener,
}

impl Server {
    fn start() -> Server {
        Server::start_with(false)
    }

    fn start_ignoring_close() -> Server {
        Server::start_with(true)
    }

    fn start_with(ignore_close: bool) -> Server {
        let listener = TcpListener::bind((Ipv6Addr::UNSPECIFIED, 0)).expect("bind [::]:0");
        let port = listener.local_addr().unwrap().port();
        let connections = Arc::new(AtomicUsize::new(0));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let (c, r, l) = (
            connections.clone(),
            requests.clone(),
            listener.try_clone().unwrap(),
        );
        std::thread::spawn(move || {
            for conn in l.incoming() {
                let Ok(conn) = conn else { return };
                c.fetch_add(1, Ordering::SeqCst);
                let r = r.clone();
                std::thread::spawn(move || serve(conn, &r, ignore_close));
            }
        });
        Server {
            port,
            connections,
            requests,
            listener,
        }
    }

    fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // Wakes the acceptor, which then ends on the shut listener.
        let fd = std::os::fd::AsFd::as_fd(&self.listener);
        let _ = rustix::net::shutdown(fd, rustix::net::Shutdown::Both);
    }
}

fn serve(mut conn: TcpStream, requests: &Mutex<Vec<String>>, ignore_close: bool) {
    let _ = conn.set_read_timeout(Some(PATIENCE));
    let mut buf: Vec<u8> = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut req = httparse::Request::new(&mut headers);
        if let Ok(httparse::Status::Complete(n)) = req.parse(&buf) {
            let length: usize = req
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                .and_then(|h| std::str::from_utf8(h.value).ok()?.trim().parse().ok())
                .unwrap_or(0);
            let close = req.headers.iter().any(|h| {
                h.name.eq_ignore_ascii_case("connection") && h.value.eq_ignore_ascii_case(b"close")
            });
            while buf.len() < n + length {
                match conn.read(&mut chunk) {
                    Ok(0) | Err(_) => return,
                    Ok(k) => buf.extend_from_slice(&chunk[..k]),
                }
            }
            let seen = String::from_utf8_lossy(&buf[..n + length]).into_owned();
            requests.lock().unwrap().push(seen);
            buf.drain(..n + length);
            let body = "hello from the server\n";
            if write!(
                conn,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
            .is_err()
            {
                return;
            }
            if close && !ignore_close {
                let _ = conn.shutdown(Shutdown::Write);
                return;
            }
            continue;
        }
        match conn.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(k) => buf.extend_from_slice(&chunk[..k]),
        }
    }
}

struct Harness {
    proxy: Option<Proxy>,
    records: Receiver<ConnectionRecord>,
}

impl Harness {
    fn start(allow: &[String], names: &[(&str, &[&str])]) -> Harness {
        Harness::start_with(allow, names, |_| {})
    }

    fn start_with(
        allow: &[String],
        names: &[(&str, &[&str])],
        adjust: impl FnOnce(&mut ProxyConfig),
    ) -> Harness {
        let (sink, records) = Sink::channel();
        let mut config = ProxyConfig::new(Allowlist::parse(allow).unwrap(), sink);
        config.tcp = Some("127.0.0.1:0".parse().unwrap());
        for (name, addresses) in names {
            let addresses: Vec<IpAddr> = addresses.iter().map(|a| a.parse().unwrap()).collect();
            config = config.name(name, &addresses);
        }
        adjust(&mut config);
        Harness {
            proxy: Some(Proxy::start(config).expect("start the proxy")),
            records,
        }
    }

    fn addr(&self) -> SocketAddr {
        self.proxy.as_ref().unwrap().tcp_addr().unwrap()
    }

    fn record(&self) -> ConnectionRecord {
        self.records
            .recv_timeout(PATIENCE)
            .expect("the proxy delivers a record for every connection")
    }

    /// Stops the proxy (which delivers what is pending); every record.
    fn stop(mut self) -> Vec<ConnectionRecord> {
        self.proxy.take().unwrap().stop();
        self.records.try_iter().collect()
    }
}

/// Sends `request` on a new connection and reads the whole answer.
fn exchange(proxy: SocketAddr, request: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(proxy).unwrap();
    s.set_read_timeout(Some(PATIENCE)).unwrap();
    let _ = s.write_all(request);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    out
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A SOCKS5 CONNECT by hand with address type `kind` and `address` as
/// its bytes; the reply code.
fn socks5(proxy: SocketAddr, kind: u8, address: &[u8], port: u16) -> Option<u8> {
    let mut s = TcpStream::connect(proxy).unwrap();
    s.set_read_timeout(Some(PATIENCE)).unwrap();
    s.write_all(&[5, 1, 0]).ok()?;
    let mut choice = [0u8; 2];
    s.read_exact(&mut choice).ok()?;
    let mut req = vec![5, 1, 0, kind];
    if kind == 3 {
        req.push(address.len() as u8);
    }
    req.extend_from_slice(address);
    req.extend_from_slice(&port.to_be_bytes());
    s.write_all(&req).ok()?;
    let mut reply = [0u8; 10];
    s.read_exact(&mut reply).ok()?;
    if reply[1] == 0 {
        // Granted: prove it by a request through the tunnel.
        let _ = s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        let mut rest = Vec::new();
        let _ = s.read_to_end(&mut rest);
    }
    Some(reply[1])
}

/// Spellings of this machine's own addresses (loopback, "this host", IPv4
/// in forms other than dotted decimal, IPv6 forms that carry IPv4, zone
/// ids, userinfo), none of which the lane lists: each is refused through
/// CONNECT, plain HTTP and SOCKS5, and the server on their port sees
/// nothing. The lane does list one local address (the allowed server's),
/// so the refusals are not only "loopback is never allowed".
#[test]
fn every_spelling_of_a_local_address_is_refused_on_every_protocol() {
    let target = Server::start();
    let allowed = Server::start();
    let port = target.port;
    let h = Harness::start(
        &[
            "allowed.test".to_string(),
            format!("127.0.0.1:{}", allowed.port),
        ],
        &[("allowed.test", &["127.0.0.1"])],
    );
    let spellings = [
        "127.1",
        "127.0.1",
        "2130706433",
        "0x7f000001",
        "017700000001",
        "0177.0.0.1",
        "0x7f.0.0.1",
        "127.0.0.1",
        "127.0.0.1.",
        "127.000.000.001",
        "0.0.0.0",
        "0",
        "[::1]",
        "[::ffff:127.0.0.1]",
        "[::ffff:7f00:1]",
        "[0:0:0:0:0:ffff:7f00:1]",
        "[::]",
        "[64:ff9b::7f00:1]",
        "[::127.0.0.1]",
        "[2002:7f00:1::1]",
        "[fe80::1%25lo]",
        "[fe80::1%lo]",
        "[::1%251]",
        "localhost",
        "localhost.",
        "LOCALHOST",
        "LocalHost.",
        "ip6-localhost",
        "allowed.test@127.0.0.1",
        "allowed.test:1@127.0.0.1",
        "127.0.0.1#allowed.test",
        "127.0.0.1%2f",
        "①②⑦.0.0.1",
    ];
    let mut answers = Vec::new();
    for s in spellings {
        let connect = text(&exchange(
            h.addr(),
            format!("CONNECT {s}:{port} HTTP/1.1\r\nHost: {s}:{port}\r\n\r\n").as_bytes(),
        ));
        assert!(
            !connect.starts_with("HTTP/1.1 200"),
            "CONNECT {s}:{port} was granted:\n{connect}"
        );
        let plain = text(&exchange(
            h.addr(),
            format!("GET http://{s}:{port}/ HTTP/1.1\r\nHost: {s}:{port}\r\n\r\n").as_bytes(),
        ));
        assert!(
            !plain.contains("hello from the server"),
            "GET http://{s}:{port}/ reached the server:\n{plain}"
        );
        let socks = socks5(h.addr(), 3, s.as_bytes(), port);
        assert_ne!(socks, Some(0), "SOCKS5 {s}:{port} was granted");
        answers.push((
            s,
            connect.lines().next().unwrap_or("").to_string(),
            plain.lines().next().unwrap_or("").to_string(),
            socks,
        ));
    }
    // The address types of SOCKS5 itself.
    for a in ["127.0.0.1", "0.0.0.0", "127.0.0.2"] {
        let ip: std::net::Ipv4Addr = a.parse().unwrap();
        assert_ne!(socks5(h.addr(), 1, &ip.octets(), port), Some(0), "{a}");
    }
    for a in [
        "::1",
        "::",
        "::ffff:127.0.0.1",
        "64:ff9b::7f00:1",
        "::127.0.0.1",
    ] {
        let ip: Ipv6Addr = a.parse().unwrap();
        assert_ne!(socks5(h.addr(), 4, &ip.octets(), port), Some(0), "{a}");
    }
    let records = h.stop();
    assert!(records.iter().all(|r| !r.allowed()), "{records:#?}");
    assert_eq!(
        target.connections(),
        0,
        "the server was reached: {answers:#?}"
    );
    assert_eq!(allowed.connections(), 0);
}

/// A listed name whose resolver answers the metadata service of a cloud
/// other than at 169.254.169.254 (Oracle's legacy endpoint, Azure's
/// WireServer, Alibaba's), or an IPv6 address that embeds a local IPv4 one (6to4 `2002::/16`, IPv4-compatible `::/96`, the local-use NAT64
/// prefix `64:ff9b:1::/48`, SIIT `::ffff:0:0:0/96`) is not public: refused
/// before it is dialled.
#[test]
fn a_listed_name_resolving_to_an_address_that_embeds_a_local_one_is_refused() {
    let target = Server::start();
    let port = target.port;
    let cases: [(&str, &str, AddressClass); 9] = [
        ("oracle-meta.test", "192.0.0.192", AddressClass::Metadata),
        ("azure-wire.test", "168.63.129.16", AddressClass::Metadata),
        (
            "alibaba-meta.test",
            "100.100.100.200",
            AddressClass::Metadata,
        ),
        ("sixtofour.test", "2002:7f00:1::1", AddressClass::Loopback),
        (
            "sixtofour-private.test",
            "2002:a00:5::1",
            AddressClass::Private,
        ),
        ("compat.test", "::127.0.0.1", AddressClass::Loopback),
        (
            "nat64-local.test",
            "64:ff9b:1::7f00:1",
            AddressClass::Private,
        ),
        ("siit.test", "::ffff:0:7f00:1", AddressClass::Loopback),
        (
            "sixtofour-meta.test",
            "2002:a9fe:a9fe::1",
            AddressClass::Metadata,
        ),
    ];
    let names: Vec<(&str, &[&str])> = cases
        .iter()
        .map(|(name, address, _)| (*name, std::slice::from_ref(address)))
        .collect();
    let allow: Vec<String> = cases.iter().map(|(n, _, _)| n.to_string()).collect();
    let h = Harness::start_with(&allow, &names, |c| {
        c.connect_timeout = Duration::from_secs(2)
    });
    for (name, address, class) in cases {
        let answer = text(&exchange(
            h.addr(),
            format!("CONNECT {name}:{port} HTTP/1.1\r\n\r\n").as_bytes(),
        ));
        assert!(answer.starts_with("HTTP/1.1 403"), "{name}: {answer}");
        let r = h.record();
        let want_address: IpAddr = address.parse().unwrap();
        assert_eq!(
            r.outcome,
            Outcome::Refused(Refusal::NotPublic {
                class,
                allow_with: match want_address {
                    IpAddr::V4(v4) => format!("network = [\"{v4}:{port}\"]"),
                    IpAddr::V6(v6) => format!("network = [\"[{v6}]:{port}\"]"),
                },
            }),
            "{name}: {r:#?}"
        );
    }
    h.stop();
    assert_eq!(target.connections(), 0);
}

/// Names that look like a listed one (a suffix, a prefix glued on, the
/// apex of a wildcard, a homograph) are not listed; the one name that is
/// reaches the server, so the others would have too.
#[test]
fn lookalike_names_are_not_listed() {
    let target = Server::start();
    let port = target.port;
    let lookalikes = [
        "example.test.evil",
        "a.example.test.evil",
        "evil-example.test",
        "evilexample.test",
        "example.test",
        "example.test.",
        "a.example.test..",
        "a..example.test",
        ".a.example.test",
        "xn--exmple-cua.test",
    ];
    // Not lookalikes but the listed name itself, as a URL parser reads it
    // (`a.example.test%2e`, `a.example.test\\`): allowed, rightly.
    let mut names: Vec<(&str, &[&str])> = lookalikes
        .iter()
        .map(|n| (*n, &["127.0.0.1"][..]))
        .collect();
    names.push(("a.example.test", &["127.0.0.1"]));
    let h = Harness::start(
        &["*.example.test".to_string(), format!("127.0.0.1:{port}")],
        &names,
    );
    for n in lookalikes {
        let connect = text(&exchange(
            h.addr(),
            format!("CONNECT {n}:{port} HTTP/1.1\r\n\r\n").as_bytes(),
        ));
        assert!(!connect.starts_with("HTTP/1.1 200"), "{n}: {connect}");
        let plain = text(&exchange(
            h.addr(),
            format!("GET http://{n}:{port}/ HTTP/1.1\r\n\r\n").as_bytes(),
        ));
        assert!(!plain.contains("hello from the server"), "{n}: {plain}");
        assert_ne!(socks5(h.addr(), 3, n.as_bytes(), port), Some(0), "{n}");
    }
    // Non-ASCII, as UTF-8 on the wire (CONNECT, SOCKS5) and through the URL
    // parser (plain HTTP, which writes it as punycode): `exаmple` has a
    // Cyrillic `а`.
    for n in ["a.exаmple.test", "ä.example.test.evil"] {
        let connect = text(&exchange(
            h.addr(),
            format!("CONNECT {n}:{port} HTTP/1.1\r\n\r\n").as_bytes(),
        ));
        assert!(!connect.starts_with("HTTP/1.1 200"), "{n}: {connect}");
        let plain = text(&exchange(
            h.addr(),
            format!("GET http://{n}:{port}/ HTTP/1.1\r\n\r\n").as_bytes(),
        ));
        assert!(!plain.contains("hello from the server"), "{n}: {plain}");
        assert_ne!(socks5(h.addr(), 3, n.as_bytes(), port), Some(0), "{n}");
    }
    assert_eq!(target.connections(), 0, "a lookalike was allowed");
    // The control: the listed name, in capitals and with its dot, passes.
    let ok = text(&exchange(
        h.addr(),
        format!("GET http://A.Example.TEST.:{port}/ HTTP/1.1\r\n\r\n").as_bytes(),
    ));
    assert!(ok.contains("hello from the server"), "{ok}");
    assert_eq!(target.connections(), 1);
    h.stop();
}

/// Ports: only 1 to 65535 written in digits; anything else is refused
/// before any dial, and the narrowed port is the only one reached.
#[test]
fn ports_outside_one_to_65535_or_not_in_digits_are_refused() {
    let target = Server::start();
    let port = target.port;
    let h = Harness::start(
        &[format!("allowed.test:{port}"), format!("127.0.0.1:{port}")],
        &[("allowed.test", &["127.0.0.1"])],
    );
    for p in [
        "0".to_string(),
        "65536".to_string(),
        format!("{}", port as u32 + 65536),
        "-1".to_string(),
        format!("+{port}"),
        format!(" {port}"),
        format!("{port} "),
        "".to_string(),
        "0x50".to_string(),
    ] {
        let connect = text(&exchange(
            h.addr(),
            format!("CONNECT allowed.test:{p} HTTP/1.1\r\n\r\n").as_bytes(),
        ));
        assert!(
            connect.starts_with("HTTP/1.1 400") || connect.starts_with("HTTP/1.1 403"),
            "CONNECT allowed.test:{p}: {connect}"
        );
        let plain = text(&exchange(
            h.addr(),
            format!("GET http://allowed.test:{p}/ HTTP/1.1\r\n\r\n").as_bytes(),
        ));
        assert!(!plain.contains("hello from the server"), ":{p}: {plain}");
    }
    assert_ne!(socks5(h.addr(), 3, b"allowed.test", 0), Some(0));
    let records = h.stop();
    assert!(records.iter().all(|r| !r.allowed()), "{records:#?}");
    assert_eq!(target.connections(), 0);
}

/// A tunnel goes to the host of the CONNECT line, whatever Host header
/// comes with it; a plain request goes to its URL's host, with its Host
/// header rewritten to match; an origin-form request is refused, whatever
/// its Host header names.
#[test]
fn the_host_header_never_chooses_the_destination() {
    let target = Server::start();
    let allowed = Server::start();
    let h = Harness::start(
        &[
            "allowed.test".to_string(),
            format!("127.0.0.1:{}", allowed.port),
        ],
        &[("allowed.test", &["127.0.0.1"])],
    );
    let (a, t) = (allowed.port, target.port);
    let mut s = TcpStream::connect(h.addr()).unwrap();
    s.set_read_timeout(Some(PATIENCE)).unwrap();
    write!(
        s,
        "CONNECT allowed.test:{a} HTTP/1.1\r\nHost: 127.0.0.1:{t}\r\n\r\n\
         GET http://127.0.0.1:{t}/ HTTP/1.1\r\nHost: 127.0.0.1:{t}\r\n\r\n"
    )
    .unwrap();
    let mut answer = vec![0u8; 0];
    let mut chunk = [0u8; 1024];
    while !text(&answer).contains("hello from the server") {
        let n = s.read(&mut chunk).unwrap();
        assert!(n > 0, "{}", text(&answer));
        answer.extend_from_slice(&chunk[..n]);
    }
    drop(s);

    let plain = text(&exchange(
        h.addr(),
        format!("GET http://allowed.test:{a}/x HTTP/1.1\r\nHost: 127.0.0.1:{t}\r\nHost: 127.0.0.1:{t}\r\n\r\n")
            .as_bytes(),
    ));
    assert!(plain.contains("hello from the server"), "{plain}");
    let origin = text(&exchange(
        h.addr(),
        format!("GET / HTTP/1.1\r\nHost: allowed.test:{a}\r\n\r\n").as_bytes(),
    ));
    assert!(origin.starts_with("HTTP/1.1 400"), "{origin}");
    h.stop();
    assert_eq!(target.connections(), 0);
    let seen = allowed.requests();
    assert_eq!(seen.len(), 2, "{seen:#?}");
    assert!(seen[1].starts_with("GET /x HTTP/1.1\r\n"), "{seen:#?}");
    assert!(
        seen[1].contains(&format!("\r\nHost: allowed.test:{a}\r\n"))
            && !seen[1].contains("127.0.0.1"),
        "{seen:#?}"
    );
}

/// One plain-HTTP request per client connection: a second request on the
/// same connection (pipelined, or smuggled in a body the proxy and the
/// server would frame differently) never reaches the server, even one that
/// keeps connections alive against the `Connection: close` it is sent, and
/// a request whose framing is ambiguous is refused.
#[test]
fn a_second_request_on_a_plain_http_connection_is_never_forwarded() {
    let target = Server::start();
    let allowed = Server::start_ignoring_close();
    let (a, t) = (allowed.port, target.port);
    // The server never closes: the proxy ends each exchange when the
    // connection has been quiet this long.
    let h = Harness::start_with(
        &["allowed.test".to_string(), format!("127.0.0.1:{a}")],
        &[
            ("allowed.test", &["127.0.0.1"]),
            ("denied.test", &["127.0.0.1"]),
        ],
        |c| c.idle_timeout = Duration::from_secs(1),
    );
    let second = format!(
        "GET http://denied.test:{t}/second HTTP/1.1\r\nHost: denied.test:{t}\r\n\r\n\
         GET /third HTTP/1.1\r\nHost: denied.test:{t}\r\n\r\n"
    );
    // Pipelined.
    let answer = text(&exchange(
        h.addr(),
        format!("GET http://allowed.test:{a}/first HTTP/1.1\r\nHost: allowed.test\r\n\r\n{second}")
            .as_bytes(),
    ));
    assert!(answer.contains("hello from the server"), "{answer}");
    // After a body of the length it declares.
    let body = "0123456789";
    let answer = text(&exchange(
        h.addr(),
        format!(
            "POST http://allowed.test:{a}/with-body HTTP/1.1\r\nContent-Length: {}\r\n\r\n{body}{second}",
            body.len()
        )
        .as_bytes(),
    ));
    assert!(answer.contains("hello from the server"), "{answer}");
    // A body whose framing header the client names as hop-by-hop, so that
    // a proxy dropping what `Connection` names would send the body as a
    // request of its own.
    for framing in [
        format!(
            "Content-Length: {}\r\nConnection: content-length",
            second.len()
        ),
        "Transfer-Encoding: chunked\r\nConnection: Transfer-Encoding".to_string(),
    ] {
        let body = if framing.starts_with("Content-Length") {
            second.clone()
        } else {
            format!("{:x}\r\n{second}\r\n0\r\n\r\n", second.len())
        };
        let answer = text(&exchange(
            h.addr(),
            format!("POST http://allowed.test:{a}/named-hop HTTP/1.1\r\n{framing}\r\n\r\n{body}")
                .as_bytes(),
        ));
        assert!(answer.contains("hello from the server"), "{answer}");
    }
    // After a chunked body's last chunk.
    let answer = text(&exchange(
        h.addr(),
        format!(
            "POST http://allowed.test:{a}/chunked HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n\
             5\r\nhello\r\n0\r\n\r\n{second}"
        )
        .as_bytes(),
    ));
    assert!(answer.contains("hello from the server"), "{answer}");
    // Framings the proxy and a server could read differently: refused.
    for framing in [
        "Content-Length: 0\r\nTransfer-Encoding: chunked\r\n".to_string(),
        "Transfer-Encoding: chunked\r\nContent-Length: 0\r\n".to_string(),
        "Content-Length: 0\r\nContent-Length: 60\r\n".to_string(),
        "Content-Length: 0, 60\r\n".to_string(),
        "Content-Length: +0\r\n".to_string(),
        "Content-Length: -1\r\n".to_string(),
        "Transfer-Encoding: gzip\r\n".to_string(),
        "Transfer-Encoding: chunked, identity\r\n".to_string(),
    ] {
        let answer = text(&exchange(
            h.addr(),
            format!(
                "POST http://allowed.test:{a}/ambiguous HTTP/1.1\r\n{framing}\r\n0\r\n\r\n{second}"
            )
            .as_bytes(),
        ));
        assert!(answer.starts_with("HTTP/1.1 400"), "{framing}: {answer}");
    }
    h.stop();
    assert_eq!(target.connections(), 0, "the denied server was reached");
    let seen = allowed.requests();
    let paths: Vec<&str> = seen
        .iter()
        .map(|r| r.split(' ').nth(1).unwrap_or(""))
        .collect();
    assert_eq!(
        paths,
        [
            "/first",
            "/with-body",
            "/named-hop",
            "/named-hop",
            "/chunked"
        ],
        "{seen:#?}"
    );
    assert!(seen[1].ends_with(&format!("\r\n\r\n{body}")), "{seen:#?}");
    // Only inside the bodies of the two requests that carried it.
    assert!(
        !seen
            .iter()
            .any(|r| r.starts_with("GET http://denied.test") || r.starts_with("GET /third")),
        "{seen:#?}"
    );
}

/// SOCKS4 and SOCKS4a (which name the target by address, or by a name the
/// proxy would resolve) are not spoken: refused, nothing dialled.
#[test]
fn socks4_and_socks4a_are_refused() {
    let target = Server::start();
    let port = target.port;
    let h = Harness::start(
        &["allowed.test".to_string(), format!("127.0.0.1:{port}")],
        &[("allowed.test", &["127.0.0.1"])],
    );
    let mut socks4 = vec![4, 1];
    socks4.extend_from_slice(&port.to_be_bytes());
    socks4.extend_from_slice(&[127, 0, 0, 1]);
    socks4.extend_from_slice(b"user\0");
    let mut socks4a = vec![4, 1];
    socks4a.extend_from_slice(&port.to_be_bytes());
    socks4a.extend_from_slice(&[0, 0, 0, 1]);
    socks4a.extend_from_slice(b"user\0allowed.test\0");
    for (what, request) in [("SOCKS4", socks4), ("SOCKS4a", socks4a)] {
        let answer = exchange(h.addr(), &request);
        // A SOCKS4 grant is byte 0x5a in the second place.
        assert!(
            answer.len() < 2 || answer[1] != 0x5a,
            "{what} granted: {answer:?}"
        );
        assert!(
            text(&answer).starts_with("HTTP/1.1 400"),
            "{what}: {}",
            text(&answer)
        );
    }
    let records = h.stop();
    assert!(records.iter().all(|r| !r.allowed()), "{records:#?}");
    assert_eq!(target.connections(), 0);
}

/// A client that sends its request head a byte at a time, each byte just
/// inside the idle time, still has its head cut off after the idle time
/// as a whole: a slow client cannot keep one of the proxy's threads (of
/// `max_connections`) for ever.
#[test]
fn a_slow_request_head_is_cut_off() {
    let target = Server::start();
    let port = target.port;
    let h = Harness::start_with(
        &["allowed.test".to_string(), format!("127.0.0.1:{port}")],
        &[("allowed.test", &["127.0.0.1"])],
        |c| c.idle_timeout = Duration::from_millis(600),
    );
    let mut s = TcpStream::connect(h.addr()).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let request = format!(
        "GET http://allowed.test:{port}/ HTTP/1.1\r\nX-Pad: {}\r\n\r\n",
        "a".repeat(400)
    );
    let mut answer = Vec::new();
    for b in request.bytes() {
        if s.write_all(&[b]).is_err() {
            break;
        }
        let mut chunk = [0u8; 512];
        match s.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => {
                answer.extend_from_slice(&chunk[..n]);
                break;
            }
            Err(_) => {}
        }
    }
    let _ = s.shutdown(Shutdown::Write);
    s.set_read_timeout(Some(PATIENCE)).unwrap();
    let _ = s.read_to_end(&mut answer);
    let answer = text(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    let r = h.record();
    assert!(
        matches!(r.refusal(), Some(Refusal::Malformed { .. })),
        "{r:#?}"
    );
    h.stop();
    assert_eq!(target.connections(), 0);
}

/// The same for a SOCKS5 request trickled a byte at a time: the proxy ends
/// the connection before the request is whole, and dials nothing.
#[test]
fn a_slow_socks5_request_is_cut_off() {
    let target = Server::start();
    let port = target.port;
    let name = format!("allowed.test{}", ".".to_string() + &"a".repeat(30));
    let h = Harness::start_with(
        &[name.clone(), format!("127.0.0.1:{port}")],
        &[(name.as_str(), &["127.0.0.1"])],
        |c| c.idle_timeout = Duration::from_millis(600),
    );
    let mut s = TcpStream::connect(h.addr()).unwrap();
    s.set_read_timeout(Some(PATIENCE)).unwrap();
    s.write_all(&[5, 1, 0]).unwrap();
    let mut choice = [0u8; 2];
    s.read_exact(&mut choice).unwrap();
    let mut request = vec![5, 1, 0, 3, name.len() as u8];
    request.extend_from_slice(name.as_bytes());
    request.extend_from_slice(&port.to_be_bytes());
    for b in request {
        if s.write_all(&[b]).is_err() {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let mut reply = Vec::new();
    let _ = s.read_to_end(&mut reply);
    assert!(
        reply.is_empty(),
        "the proxy answered a request that took too long: {reply:?}"
    );
    let r = h.record();
    assert!(!r.allowed(), "{r:#?}");
    h.stop();
    assert_eq!(target.connections(), 0);
}

/// Heads the proxy will not hold: more header fields than it parses, one
/// line longer than a whole head may be, a request line of that length.
/// Each refused, nothing dialled.
#[test]
fn over_long_heads_and_too_many_headers_are_refused() {
    let target = Server::start();
    let port = target.port;
    let h = Harness::start(
        &["allowed.test".to_string(), format!("127.0.0.1:{port}")],
        &[("allowed.test", &["127.0.0.1"])],
    );
    let many: String = (0..200).map(|i| format!("X-{i}: v\r\n")).collect();
    let long = "a".repeat(70 * 1024);
    for (what, request, status) in [
        (
            "200 header fields",
            format!("GET http://allowed.test:{port}/ HTTP/1.1\r\n{many}\r\n"),
            "HTTP/1.1 400",
        ),
        (
            "a 70 KiB header line",
            format!("GET http://allowed.test:{port}/ HTTP/1.1\r\nX-Long: {long}\r\n\r\n"),
            "HTTP/1.1 431",
        ),
        (
            "a 70 KiB request line",
            format!("GET http://allowed.test:{port}/{long} HTTP/1.1\r\n\r\n"),
            "HTTP/1.1 431",
        ),
        (
            "a 70 KiB CONNECT line",
            format!("CONNECT allowed.test:{port}{long} HTTP/1.1\r\n\r\n"),
            "HTTP/1.1 431",
        ),
    ] {
        let answer = text(&exchange(h.addr(), request.as_bytes()));
        assert!(answer.starts_with(status), "{what}: {answer}");
    }
    let records = h.stop();
    assert!(records.iter().all(|r| !r.allowed()), "{records:#?}");
    assert_eq!(target.connections(), 0);
}
