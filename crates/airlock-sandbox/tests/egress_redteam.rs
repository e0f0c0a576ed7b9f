//! Red team of the egress sandbox (issue 16): a command with code execution
//! inside `run_with_egress` tries every other way out than the proxy. Each
//! test makes the attempt for real and checks the target on the host
//! untouched (a listener that must have accepted nothing).

use std::io::Read;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, TcpListener, UdpSocket};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr as UnixAddr, UnixListener};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use airlock_egress::{Allowlist, Proxy, ProxyConfig, Sink};

mod common;
use common::Lab;

impl Lab {
    /// A proxy that allows nothing: every way out the tests find is one
    /// the proxy did not grant.
    fn proxy(&self) -> Proxy {
        let (sink, _records) = Sink::channel();
        let mut config = ProxyConfig::new(Allowlist::parse::<&str>(&[]).unwrap(), sink);
        config.unix_socket = Some(self.socket.clone());
        Proxy::start(config).unwrap()
    }
}

/// The host's own addresses other than loopback, IPv4 and IPv6, where it
/// has a route out.
fn host_addresses() -> Vec<IpAddr> {
    let mut found = Vec::new();
    for (bind, probe) in [("0.0.0.0:0", "192.0.2.1:9"), ("[::]:0", "[2001:db8::1]:9")] {
        if let Ok(s) = UdpSocket::bind(bind)
            && s.connect(probe).is_ok()
            && let Ok(local) = s.local_addr()
            && !local.ip().is_unspecified()
            && !local.ip().is_loopback()
        {
            found.push(local.ip());
        }
    }
    found
}

/// A TCP listener on every host address, IPv4 and IPv6 (dual stack):
/// whatever reaches its port, by any address of the host, is counted.
fn dual_stack_listener() -> TcpListener {
    let l = TcpListener::bind((Ipv6Addr::UNSPECIFIED, 0)).unwrap();
    l.set_nonblocking(true).unwrap();
    l
}

fn untouched(l: &TcpListener, what: &str, out: &str) {
    match l.accept() {
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
        other => panic!("{what} was reached: {other:?}\n{out}"),
    }
}

/// Raw and ICMP sockets, routes, addresses and links: the namespace has no
/// route out and the command no capability to make one; IPv6 to the host's
/// loopback and addresses reaches nothing either.
#[test]
fn raw_sockets_icmp_routes_and_ipv6_to_the_host_reach_nothing() {
    let lab = Lab::new("redteam-");
    let proxy = lab.proxy();
    let target = dual_stack_listener();
    let port = target.local_addr().unwrap().port();
    let mut addresses = vec![
        IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(Ipv6Addr::LOCALHOST),
    ];
    addresses.extend(host_addresses());
    let tries: String = addresses
        .iter()
        .map(|a| {
            let url_host = match a {
                IpAddr::V6(v6) => format!("[{v6}]"),
                IpAddr::V4(v4) => v4.to_string(),
            };
            format!(
                "curl -sS -m 10 --noproxy '*' http://{url_host}:{port}/ && echo 'reached {a}'; \
                 python3 - {a} <<'EOF' || true
import socket, sys
a = sys.argv[1]
fam = socket.AF_INET6 if ':' in a else socket.AF_INET
for kind, proto, name in [(socket.SOCK_RAW, socket.IPPROTO_ICMP if fam == socket.AF_INET else socket.IPPROTO_ICMPV6, 'raw'),
                          (socket.SOCK_DGRAM, socket.IPPROTO_ICMP if fam == socket.AF_INET else socket.IPPROTO_ICMPV6, 'ping'),
                          (socket.SOCK_RAW, socket.IPPROTO_TCP, 'rawtcp')]:
    try:
        s = socket.socket(fam, kind, proto)
    except OSError as e:
        print(name, 'socket refused', e.errno)
        continue
    try:
        s.sendto(b'\\x08\\x00\\xf7\\xff\\x00\\x00\\x00\\x00', (a, 0))
        print(name, 'SENT', a)
    except OSError as e:
        print(name, 'send refused', e.errno)
EOF
"
            )
        })
        .collect();
    let script = format!(
        "{tries}\
         command -v ip >/dev/null || {{ echo 'ip (iproute2) is not installed'; exit 3; }}; \
         ip route add default dev lo 2>&1 || echo 'route refused'; \
         ip route add 0.0.0.0/0 via 127.0.0.1 2>&1 || echo 'via refused'; \
         ip addr add 10.200.0.1/24 dev lo 2>&1 || echo 'addr refused'; \
         ip link add dummy0 type dummy 2>&1 || echo 'link refused'; \
         ip link set lo down 2>&1 || echo 'down refused'; \
         echo routes; tail -n +2 /proc/net/route; cat /proc/net/ipv6_route | grep -v ' lo$' ; echo end"
    );
    let (o, out, err) = lab.run(&script);
    proxy.stop();
    assert!(o.exit.success(), "{out}\n{err}");
    assert!(!out.contains("reached"), "{out}\n{err}");
    assert!(!out.contains("SENT"), "{out}\n{err}");
    for refused in [
        "route refused",
        "via refused",
        "addr refused",
        "link refused",
        "down refused",
    ] {
        assert!(out.contains(refused), "{refused}: {out}\n{err}");
    }
    assert!(out.contains("routes\nend\n"), "{out}");
    untouched(&target, "a TCP listener of the host", &out);
}

/// The host's abstract Unix sockets belong to its network namespace (and
/// Landlock scopes them): one of the host's is out of reach.
#[test]
fn an_abstract_socket_of_the_host_is_out_of_reach() {
    let lab = Lab::new("redteam-");
    let proxy = lab.proxy();
    let name = format!("airlock-redteam-{}", std::process::id());
    let listener = UnixListener::bind_addr(&UnixAddr::from_abstract_name(&name).unwrap()).unwrap();
    listener.set_nonblocking(true).unwrap();
    let (o, out, err) = lab.run(&format!(
        "python3 -c 'import socket; s = socket.socket(socket.AF_UNIX); s.connect(\"\\0{name}\"); print(\"CONNECTED\")' \
         2>&1 | tail -1; echo done"
    ));
    proxy.stop();
    assert!(o.exit.success(), "{out}\n{err}");
    assert!(!out.contains("CONNECTED"), "{out}\n{err}");
    assert!(out.contains("done"), "{out}");
    assert!(
        listener.accept().is_err(),
        "the abstract socket was reached: {out}"
    );
}

/// A daemon in a network namespace of its own (rootless docker's dockerd
/// under rootlesskit, a service with a private network) binds its socket
/// in the shared file system: the host's `/proc/net/unix` does not list it,
/// yet connect() by path ignores namespaces. It must be hidden all the same.
#[test]
fn a_socket_bound_in_another_network_namespace_is_hidden_too() {
    let lab = Lab::new("redteam-");
    let proxy = lab.proxy();
    let dir = lab.base.join("daemon");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("docker.sock");
    let log = dir.join("accepted");
    let ready = dir.join("ready");
    let mut daemon: Child = Command::new("unshare")
        .args(["-rn", "python3", "-c"])
        .arg(
            "import socket, sys\n\
             s = socket.socket(socket.AF_UNIX)\n\
             s.bind(sys.argv[1]); s.listen(8)\n\
             open(sys.argv[3], 'w').close()\n\
             while True:\n\
             \x20   c, _ = s.accept()\n\
             \x20   open(sys.argv[2], 'a').write('accepted\\n')\n\
             \x20   c.sendall(b'daemon here\\n'); c.close()\n",
        )
        .arg(&path)
        .arg(&log)
        .arg(&ready)
        .stdin(Stdio::null())
        .spawn()
        .expect("unshare -rn python3");
    while !ready.exists() {
        if let Ok(Some(status)) = daemon.try_wait() {
            panic!("the daemon in its own network namespace ended: {status}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let (o, out, err) = lab.run(&format!(
        "ls -l {path}; \
         python3 -c 'import socket, sys; s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); \
           print(\"CONNECTED\", s.recv(64))' {path} 2>&1 | tail -1; \
         curl -sS -m 10 --unix-socket {path} http://x/ && echo CURL; echo done",
        path = path.display()
    ));
    let _ = daemon.kill();
    let _ = daemon.wait();
    proxy.stop();
    assert!(o.exit.success(), "{out}\n{err}");
    assert!(!out.contains("CONNECTED"), "{out}\n{err}");
    assert!(!out.contains("daemon here"), "{out}\n{err}");
    assert!(out.contains("done"), "{out}");
    let mut accepted = String::new();
    if let Ok(mut f) = std::fs::File::open(&log) {
        f.read_to_string(&mut accepted).unwrap();
    }
    assert_eq!(
        accepted, "",
        "the daemon's socket was reached from inside:\n{out}"
    );
}

/// The proxy goes away while the command runs (airlock stopped it, or it
/// died): the connection that worked before now fails, through the bridge
/// (which still accepts, then has nowhere to relay), through a tunnel, and
/// directly; nothing falls back to a route of its own.
#[test]
fn the_proxy_gone_mid_run_leaves_no_way_out() {
    let lab = Lab::new("redteam-");
    let server = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let port = server.local_addr().unwrap().port();
    let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = accepted.clone();
    let serving = server.try_clone().unwrap();
    std::thread::spawn(move || {
        for conn in serving.incoming() {
            let Ok(mut conn) = conn else { return };
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let mut head = [0u8; 4096];
            let _ = conn.read(&mut head);
            let _ = std::io::Write::write_all(
                &mut conn,
                b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\nConnection: close\r\n\r\nhello\n",
            );
        }
    });
    let (sink, _records) = Sink::channel();
    let loopback = [IpAddr::V4(Ipv4Addr::LOCALHOST)];
    let mut config = ProxyConfig::new(
        Allowlist::parse(&["allowed.test".to_string(), format!("127.0.0.1:{port}")]).unwrap(),
        sink,
    )
    .name("allowed.test", &loopback);
    config.unix_socket = Some(lab.socket.clone());
    let proxy = Proxy::start(config).unwrap();
    let (step1, step2) = (lab.work.join("step1"), lab.work.join("step2"));
    let script = format!(
        "curl -sS -m 20 http://allowed.test:{port}/; \
         touch step1; while [ ! -e step2 ]; do sleep 0.05; done; \
         curl -sS -m 10 http://allowed.test:{port}/ && echo THROUGH; \
         curl -sS -m 10 -p http://allowed.test:{port}/ && echo TUNNEL; \
         curl -sS -m 10 --socks5-hostname 127.0.0.1:3128 http://allowed.test:{port}/ && echo SOCKS; \
         curl -sS -m 10 --noproxy '*' http://127.0.0.1:{port}/ && echo DIRECT; \
         echo done"
    );
    let running = std::thread::scope(|s| {
        let run = s.spawn(|| lab.run(&script));
        let until = std::time::Instant::now() + Duration::from_secs(60);
        while !step1.exists() && std::time::Instant::now() < until && !run.is_finished() {
            std::thread::sleep(Duration::from_millis(20));
        }
        proxy.stop();
        std::fs::write(&step2, "").unwrap();
        run.join().unwrap()
    });
    let (o, out, err) = running;
    assert!(o.exit.success(), "{out}\n{err}");
    assert_eq!(out, "hello\ndone\n", "{err}");
    assert_eq!(
        accepted.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "only the request made while the proxy ran reaches the server"
    );
    let _ = rustix::net::shutdown(&server, rustix::net::Shutdown::Both);
}

/// A flood of connections from inside (more than the bridge and the proxy
/// serve at once), each asking for a host the lane does not allow: each is
/// refused, none reaches the target, and the bridge still relays
/// afterwards.
#[test]
fn a_flood_of_connections_through_the_bridge_reaches_nothing() {
    let lab = Lab::new("redteam-");
    let proxy = lab.proxy();
    let target = dual_stack_listener();
    let port = target.local_addr().unwrap().port();
    let (o, out, err) = lab.run(&format!(
        "python3 - <<'EOF'
import socket
socks = []
for i in range(600):
    s = socket.create_connection(('127.0.0.1', 3128))
    s.sendall(b'CONNECT 127.0.0.1:{port} HTTP/1.1\\r\\n\\r\\n')
    socks.append(s)
answers = {{}}
for s in socks:
    s.settimeout(30)
    try:
        line = s.recv(64).split(b'\\r\\n')[0].decode() or 'closed'
    except OSError as e:
        line = 'error'
    answers[line] = answers.get(line, 0) + 1
    s.close()
print(answers)
EOF
curl -sS -m 20 --noproxy '' -x http://127.0.0.1:3128 -w ' %{{http_code}}\\n' \
           http://127.0.0.1:{port}/"
    ));
    proxy.stop();
    assert!(o.exit.success(), "{out}\n{err}");
    assert!(
        out.contains("{'HTTP/1.1 403 Forbidden': 600}"),
        "{out}\n{err}"
    );
    assert!(out.trim_end().ends_with(" 403"), "{out}\n{err}");
    untouched(&target, "the target", &out);
}
