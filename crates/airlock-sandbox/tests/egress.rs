//! A sandbox whose only way out is the egress proxy, attacked from the
//! inside: each test runs real clients (curl, bash's `/dev/tcp` and
//! `/dev/udp`, getent) in a real sandbox against a real proxy and servers
//! on the host, and checks both what the client got and that the target
//! counted nothing it should not have.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, TcpListener, TcpStream, UdpSocket};
use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::Receiver;
use std::thread;
use std::time::Duration;

use airlock_egress::{Allowlist, ConnectionRecord, Proxy, ProxyConfig, Sink};
use airlock_sandbox::host::HostSettings;
use airlock_sandbox::{BRIDGE_PORT, CommandSpec, Egress, SandboxError, run_with_egress};

mod common;
use common::{Lab, read};

impl Lab {
    /// The proxy on the lab's socket: `allowed.test` and `denied.test` both
    /// name the host's loopback, where `server` listens; only
    /// `allowed.test` (and that address, which the proxy otherwise refuses
    /// as not public) is allowed.
    fn proxy(&self, server: &Server) -> (Proxy, Receiver<ConnectionRecord>) {
        let port = server.port;
        let allow =
            Allowlist::parse(&["allowed.test".to_string(), format!("127.0.0.1:{port}")]).unwrap();
        let (sink, records) = Sink::channel();
        let loopback = [IpAddr::V4(Ipv4Addr::LOCALHOST)];
        let mut config = ProxyConfig::new(allow, sink)
            .name("allowed.test", &loopback)
            .name("denied.test", &loopback);
        config.unix_socket = Some(self.socket.clone());
        (Proxy::start(config).unwrap(), records)
    }
}

/// The size of the server's `/big` body.
const BIG: usize = 8 << 20;

/// The server's `/big` body: every byte depends on its offset, so a byte
/// lost, repeated or reordered on the way shows.
fn big_body() -> Vec<u8> {
    (0..BIG).map(|i| (i % 251) as u8).collect()
}

/// An HTTP server on every address of the host, counting the connections
/// it accepts; stopped when dropped.
struct Server {
    port: u16,
    /// The last body `PUT /sink` received.
    sunk: Arc<std::sync::Mutex<Vec<u8>>>,
    accepted: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Server {
    fn start() -> Server {
        let listener = TcpListener::bind((Ipv4Addr::UNSPECIFIED, 0)).unwrap();
        let port = listener.local_addr().unwrap().port();
        let accepted = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let sunk = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (count, stopped, kept) = (accepted.clone(), stop.clone(), sunk.clone());
        let thread = thread::spawn(move || {
            let sunk = kept;
            for stream in listener.incoming() {
                if stopped.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(mut stream) = stream else { continue };
                count.fetch_add(1, Ordering::SeqCst);
                let mut head = [0u8; 4096];
                let n = stream.read(&mut head).unwrap_or(0);
                // `PUT /sink`: the body is kept, and its size answered.
                if head[..n].starts_with(b"PUT /sink ") {
                    let text = String::from_utf8_lossy(&head[..n]).to_ascii_lowercase();
                    let Some((headers, first)) = text.split_once("\r\n\r\n") else {
                        continue;
                    };
                    let length: usize = headers
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse().ok())
                        .unwrap_or(0);
                    let mut body = head[n - first.len()..n].to_vec();
                    let mut rest = vec![0u8; length.saturating_sub(body.len())];
                    if stream.read_exact(&mut rest).is_ok() {
                        body.extend(rest);
                    }
                    let answer = format!("got {}", body.len());
                    *sunk.lock().unwrap() = body;
                    let _ = stream.write_all(
                        format!(
                            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
                            answer.len()
                        )
                        .as_bytes(),
                    );
                    continue;
                }
                // `/big`: a body larger than any buffer on the way.
                if head[..n].windows(5).any(|w| w == b"/big ") {
                    let _ = stream.write_all(
                        format!(
                            "HTTP/1.1 200 OK\r\nContent-Length: {BIG}\r\nConnection: close\r\n\r\n"
                        )
                        .as_bytes(),
                    );
                    let _ = stream.write_all(&big_body());
                    continue;
                }
                let _ = stream.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello",
                );
            }
        });
        Server {
            port,
            sunk,
            accepted,
            stop,
            thread: Some(thread),
        }
    }

    fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect((Ipv4Addr::LOCALHOST, self.port));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// An address of this machine other than loopback, if it has a route out:
/// what a command with the host's network would reach the servers by.
fn host_address() -> Option<Ipv4Addr> {
    let probe = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).ok()?;
    probe.connect(("192.0.2.1", 9)).ok()?;
    match probe.local_addr().ok()?.ip() {
        IpAddr::V4(ip) if !ip.is_loopback() && !ip.is_unspecified() => Some(ip),
        _ => None,
    }
}

fn records(rx: &Receiver<ConnectionRecord>) -> Vec<ConnectionRecord> {
    rx.try_iter().collect()
}

#[test]
fn clients_reach_an_allowed_name_through_the_bridge_and_a_denied_one_gets_403() {
    let lab = Lab::new("egress-");
    let server = Server::start();
    let (proxy, rx) = lab.proxy(&server);
    let port = server.port;
    let (o, out, err) = lab.run(&format!(
        "env | grep -i _proxy | sort; \
         echo; echo plain=$(curl -sS -w ' %{{http_code}}' http://allowed.test:{port}/); \
         echo connect=$(curl -sS -p -w ' %{{http_code}}' http://allowed.test:{port}/); \
         echo socks=$(curl -sS -x socks5h://127.0.0.1:{BRIDGE_PORT} -w ' %{{http_code}}' \
             http://allowed.test:{port}/); \
         echo denied=$(curl -sS -w ' %{{http_code}}' http://denied.test:{port}/)"
    ));
    proxy.stop();
    assert!(o.exit.success(), "{out}\n{err}");
    assert_eq!(o.confinement, "confined");
    let out = format!("\n{out}");
    let url = format!("http://127.0.0.1:{BRIDGE_PORT}");
    for var in ["HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"] {
        assert!(out.contains(&format!("\n{var}={url}\n")), "{var}: {out}");
        let lower = var.to_ascii_lowercase();
        assert!(
            out.contains(&format!("\n{lower}={url}\n")),
            "{lower}: {out}"
        );
    }
    assert!(out.contains("NO_PROXY=localhost,127.0.0.1,::1\n"), "{out}");
    assert!(out.contains("no_proxy=localhost,127.0.0.1,::1\n"), "{out}");
    assert!(!out.contains("10.9.9.9"), "{out}");
    assert!(out.contains("plain=hello 200\n"), "{out}\n{err}");
    assert!(out.contains("connect=hello 200\n"), "{out}\n{err}");
    assert!(out.contains("socks=hello 200\n"), "{out}\n{err}");
    assert!(
        out.contains("not in this lane's network allowlist"),
        "{out}"
    );
    assert!(out.trim_end().ends_with(" 403"), "{out}");
    // Three allowed requests reached the server; the denied one did not.
    assert_eq!(server.accepted(), 3);
    let seen = records(&rx);
    let denied: Vec<_> = seen.iter().filter(|r| r.host == "denied.test").collect();
    assert_eq!(denied.len(), 1, "{seen:?}");
    assert!(!denied[0].allowed());
    assert_eq!(seen.iter().filter(|r| r.allowed()).count(), 3, "{seen:?}");
}

/// Many clients at once, each with a body larger than the bridge's
/// buffers, an upload as large, and a Python program using its standard library's HTTP
/// client with the variables as they are: every byte arrives, in order.
#[test]
fn many_connections_and_large_bodies_cross_the_bridge_intact() {
    let lab = Lab::new("egress-");
    let server = Server::start();
    let (proxy, _rx) = lab.proxy(&server);
    let port = server.port;
    let (o, out, err) = lab.run(&format!(
        "for i in $(seq 1 12); do \
           curl -sS -o big.$i http://allowed.test:{port}/big & \
         done; wait; \
         cmp big.1 big.12 && ls -l big.1 | awk '{{print \"size\", $5}}'; \
         tac big.1 > up && curl -sS -T up http://allowed.test:{port}/sink; echo; \
         python3 -c 'import urllib.request as u; \
           print(\"python\", u.urlopen(\"http://allowed.test:{port}/\").read().decode())'"
    ));
    proxy.stop();
    assert!(o.exit.success(), "{out}\n{err}");
    assert!(out.contains(&format!("size {BIG}\n")), "{out}\n{err}");
    assert!(out.contains("python hello\n"), "{out}\n{err}");
    assert!(out.contains(&format!("got {BIG}\n")), "{out}\n{err}");
    let sent = std::fs::read(lab.work.join("up")).unwrap();
    assert!(*server.sunk.lock().unwrap() == sent, "the upload differs");
    let expected = big_body();
    for i in 1..=12 {
        let got = std::fs::read(lab.work.join(format!("big.{i}"))).unwrap();
        assert!(got == expected, "body {i} differs ({} bytes)", got.len());
    }
    assert_eq!(server.accepted(), 14);
}

/// Clients that hang up in the middle of a body larger than every pipe and
/// buffer on the way (through the tunnel and through plain forwarding)
/// leave the bridge and the proxy serving: the next client gets its whole
/// body, byte for byte.
#[test]
fn clients_that_hang_up_mid_body_leave_the_bridge_serving() {
    let lab = Lab::new("egress-");
    let server = Server::start();
    let (proxy, rx) = lab.proxy(&server);
    let port = server.port;
    let (o, out, err) = lab.run(&format!(
        "curl -sS http://allowed.test:{port}/big | head -c 1000 | wc -c; \
         curl -sS -p http://allowed.test:{port}/big | head -c 10 | wc -c; \
         curl -sS -o after http://allowed.test:{port}/big; \
         ls -l after | awk '{{print \"size\", $5}}'"
    ));
    proxy.stop();
    assert!(o.exit.success(), "{out}\n{err}");
    assert!(out.starts_with("1000\n10\n"), "{out}\n{err}");
    assert!(out.contains(&format!("size {BIG}\n")), "{out}\n{err}");
    let got = std::fs::read(lab.work.join("after")).unwrap();
    assert!(got == big_body(), "the body after the hang-ups differs");
    assert_eq!(server.accepted(), 3);
    let seen = records(&rx);
    assert_eq!(seen.len(), 3, "{seen:?}");
    assert!(seen.iter().all(|r| r.allowed()), "{seen:?}");
    // The last one's record counts exactly what the server sent: its head
    // and the whole body; the others stopped short of it.
    let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {BIG}\r\nConnection: close\r\n\r\n");
    let whole = (head.len() + BIG) as u64;
    assert!(seen.iter().any(|r| r.bytes_down == whole), "{seen:?}");
    assert!(seen.iter().all(|r| r.bytes_down <= whole), "{seen:?}");
}

#[test]
fn a_direct_tcp_connection_finds_no_route_and_reaches_nothing() {
    let lab = Lab::new("egress-");
    let server = Server::start();
    let (proxy, _rx) = lab.proxy(&server);
    let port = server.port;
    let mut targets = vec![Ipv4Addr::LOCALHOST];
    targets.extend(host_address());
    let script: String = targets
        .iter()
        .map(|ip| {
            format!(
                "if (exec 3<>/dev/tcp/{ip}/{port}) 2>/dev/null; then echo 'reached {ip}'; \
                 else echo 'refused {ip}'; fi; \
                 curl -sS --noproxy '*' http://{ip}:{port}/ || echo 'curl failed {ip}'; "
            )
        })
        .chain(["echo routes; tail -n +2 /proc/net/route; echo end".to_string()])
        .collect();
    let (o, out, err) = lab.run(&script);
    proxy.stop();
    assert!(o.exit.success(), "{out}\n{err}");
    for ip in &targets {
        assert!(out.contains(&format!("refused {ip}\n")), "{out}\n{err}");
        assert!(out.contains(&format!("curl failed {ip}\n")), "{out}\n{err}");
    }
    assert!(!out.contains("hello"), "{out}");
    // No route at all: the namespace has its loopback and nothing else.
    assert!(out.contains("routes\nend\n"), "{out}");
    assert_eq!(server.accepted(), 0);
}

#[test]
fn udp_to_the_host_reaches_nothing() {
    let lab = Lab::new("egress-");
    let server = Server::start();
    let (proxy, _rx) = lab.proxy(&server);
    let target = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).unwrap();
    let port = target.local_addr().unwrap().port();
    let mut targets = vec![Ipv4Addr::LOCALHOST];
    targets.extend(host_address());
    let script: String = targets
        .iter()
        .map(|ip| format!("echo leak > /dev/udp/{ip}/{port} || echo 'not sent {ip}'; "))
        .collect();
    let (o, out, err) = lab.run(&script);
    proxy.stop();
    assert!(o.exit.success(), "{out}\n{err}");
    // The sandbox's own loopback takes the datagram to nobody; any other
    // address has no route.
    for ip in targets.iter().skip(1) {
        assert!(out.contains(&format!("not sent {ip}\n")), "{out}\n{err}");
    }
    // Whatever was sent has arrived by the time the command ended, if it
    // could arrive at all: datagrams on one machine are delivered at once.
    target.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 64];
    assert!(target.recv_from(&mut buf).is_err(), "a datagram got out");
}

#[test]
fn no_resolver_is_reachable_from_inside() {
    let lab = Lab::new("egress-");
    let server = Server::start();
    let (proxy, _rx) = lab.proxy(&server);
    let (o, out, err) = lab.run(
        "getent hosts example.com && echo resolved; \
         for ns in $(awk '/^nameserver/ {print $2}' /etc/resolv.conf); do \
           case $ns in *:*) continue;; esac; \
           echo q > /dev/udp/$ns/53 2>/dev/null && echo \"sent $ns\"; \
           (exec 3<>/dev/tcp/$ns/53) 2>/dev/null && echo \"connected $ns\"; \
           echo \"tried $ns\"; \
         done; echo done",
    );
    proxy.stop();
    assert!(o.exit.success(), "{out}\n{err}");
    assert!(!out.contains("resolved"), "{out}");
    assert!(out.contains("done"), "{out}");
    // A nameserver on a loopback address is the sandbox's own, where
    // nothing listens; any other is not routed.
    for line in out.lines().filter_map(|l| l.strip_prefix("sent ")) {
        assert!(line.starts_with("127."), "{out}");
    }
    assert!(!out.contains("connected"), "{out}");
}

#[test]
fn with_the_proxy_stopped_connections_fail_and_nothing_falls_back() {
    let lab = Lab::new("egress-");
    let server = Server::start();
    let (proxy, _rx) = lab.proxy(&server);
    proxy.stop();
    let port = server.port;
    let (o, out, err) = lab.run(&format!(
        "curl -sS http://allowed.test:{port}/ && echo through; \
         curl -sS -p http://allowed.test:{port}/ && echo tunnel; \
         curl -sS --noproxy '*' http://allowed.test:{port}/ && echo direct; \
         curl -sS --noproxy '*' http://127.0.0.1:{port}/ && echo loopback; \
         echo done"
    ));
    assert!(o.exit.success(), "{out}\n{err}");
    assert_eq!(out, "done\n", "{err}");
    assert_eq!(server.accepted(), 0);
}

#[test]
fn the_bridge_relays_to_the_proxy_only_never_to_another_host_socket() {
    let lab = Lab::new("egress-");
    let server = Server::start();
    let (proxy, rx) = lab.proxy(&server);
    let other = lab.base.join("other.sock");
    let listener = UnixListener::bind(&other).unwrap();
    listener.set_nonblocking(true).unwrap();
    let (o, out, err) = lab.run(&format!(
        "curl -sS -m 10 --unix-socket {other} http://x/ && echo 'other socket'; \
         curl -sS -m 10 --unix-socket {proxy_sock} -x http://p/ http://allowed.test/ \
           && echo 'proxy socket'; \
         curl -sS -w ' %{{http_code}}\\n' 'http://unix:{other}/'; \
         curl -sS -w ' %{{http_code}}\\n' -p 'http://{other}/'; \
         echo done",
        other = other.display(),
        proxy_sock = lab.socket.display(),
    ));
    proxy.stop();
    assert!(o.exit.success(), "{out}\n{err}");
    assert!(!out.contains("other socket"), "{out}");
    assert!(!out.contains("proxy socket"), "{out}");
    assert!(out.contains("done"), "{out}");
    // Nothing connected to the other socket, by its path or through the bridge.
    assert!(listener.accept().is_err(), "{out}\n{err}");
    assert_eq!(server.accepted(), 0);
    assert!(records(&rx).iter().all(|r| !r.allowed()));
}

#[test]
fn the_bridge_ends_with_the_sandbox_and_the_command_cannot_end_it() {
    let lab = Lab::new("egress-");
    let server = Server::start();
    let (proxy, _rx) = lab.proxy(&server);
    let port = server.port;
    // The command kills everything it can see (the bridge is not among
    // it), then tries to outlive the sandbox. It asks for a warm sandbox,
    // and runs in one: with a network namespace and a bridge of its own.
    let script = format!(
        "readlink /proc/self/ns/net; kill -9 -1 2>/dev/null; \
         curl -sS -w ' %{{http_code}}\\n' http://allowed.test:{port}/; \
         (setsid sleep 300 &)"
    );
    let mut spec = lab.spec(&script);
    spec.confinement.as_mut().unwrap().host = Some(HostSettings {
        dir: lab.base.join("hosts"),
        idle: Duration::from_secs(5),
        owner: None,
        max_hosts: 0,
    });
    let o = run_with_egress(&spec, &lab.egress(), None).expect("sandbox");
    let (out, err) = (read(&lab.logs.join("out")), read(&lab.logs.join("err")));
    // The connection to the warm sandbox goes: its leader ends.
    drop(o.held);
    assert!(o.exit.success(), "{out}\n{err}");
    assert!(out.contains("hello 200\n"), "{out}\n{err}");
    let sockets = || {
        std::fs::read_dir(lab.base.join("hosts"))
            .map(|d| {
                d.flatten()
                    .filter(|e| e.file_name().to_string_lossy().ends_with(".sock"))
                    .count()
            })
            .unwrap_or(0)
    };
    assert_eq!(sockets(), 1, "no warm sandbox was kept");
    let netns = out.lines().next().unwrap().to_string();
    assert!(netns.starts_with("net:["), "{out}");
    // No process is left in the command's network namespace: neither the
    // bridge nor what the command started (nor the leader that made it,
    // once airlock has let go). A bound on waiting, not a measure.
    let in_netns = |netns: &str| {
        let mut left = Vec::new();
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            let ns = entry.path().join("ns/net");
            if let Ok(link) = std::fs::read_link(&ns)
                && link.to_string_lossy() == netns
            {
                left.push(entry.file_name());
            }
        }
        left
    };
    let until = std::time::Instant::now() + Duration::from_secs(30);
    while !in_netns(&netns).is_empty() && std::time::Instant::now() < until {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        in_netns(&netns).is_empty(),
        "still in {netns}: {:?}",
        in_netns(&netns)
    );
    // The next command, in the same warm sandbox, has a network namespace
    // of its own, and its bridge leads to the proxy as the first one's did.
    let o = run_with_egress(&spec, &lab.egress(), None).expect("sandbox");
    let (out, err) = (read(&lab.logs.join("out")), read(&lab.logs.join("err")));
    drop(o.held);
    proxy.stop();
    assert!(out.contains("hello 200\n"), "{out}\n{err}");
    let second = out.lines().next().unwrap().to_string();
    assert!(
        second.starts_with("net:[") && second != netns,
        "{netns} {second}"
    );
    assert_eq!(sockets(), 1, "the warm sandbox was not reused");
    // Nothing was left beside the proxy's socket (which the stopped proxy removed).
    let beside: Vec<_> = std::fs::read_dir(lab.socket.parent().unwrap())
        .unwrap()
        .collect();
    assert!(beside.is_empty(), "{beside:?}");
}

#[test]
fn egress_is_refused_where_it_cannot_be_enforced_and_nothing_runs() {
    let lab = Lab::new("egress-");
    let made = lab.work.join("ran");
    let script = format!("touch {}", made.display());
    let cases: Vec<(CommandSpec, Egress, &str)> = {
        let mut host_network = lab.spec(&script);
        host_network.confinement.as_mut().unwrap().network = true;
        let mut weaker = lab.spec(&script);
        weaker.confinement.as_mut().unwrap().weaker = true;
        let mut unconfined = lab.spec(&script);
        unconfined.confinement = None;
        let relative = Egress {
            proxy_socket: PathBuf::from("proxy/egress.sock"),
        };
        let long = Egress {
            proxy_socket: lab.base.join("x".repeat(120)),
        };
        // A socket the command could replace (by a link to another socket
        // of the host, which the unconfined bridge would follow).
        let writable = Egress {
            proxy_socket: lab.work.join("sub/egress.sock"),
        };
        vec![
            (
                lab.spec(&script),
                writable,
                "which the command may write to",
            ),
            (host_network, lab.egress(), "grants the host's network"),
            (
                weaker,
                lab.egress(),
                "the weaker sandbox has no network namespace",
            ),
            (unconfined, lab.egress(), "the command is not confined"),
            (lab.spec(&script), relative, "must be an absolute path"),
            (lab.spec(&script), long, "at most 107 bytes"),
        ]
    };
    for (spec, egress, expected) in cases {
        match run_with_egress(&spec, &egress, None) {
            Err(SandboxError::Setup { step, error }) => {
                assert_eq!(step, "confining the network to the egress proxy");
                assert!(error.contains(expected), "{error}");
            }
            other => panic!("{expected}: {other:?}"),
        }
        assert!(!made.exists(), "{expected}: the command ran");
    }
}
