//! Red team of the proxy (issue 16): a client floods it with connections
//! until the proxy's process has no descriptor left. Out of descriptors,
//! the proxy must fail closed (a refusal, a 502, a client left waiting),
//! never skip a check; the server it must not reach sees nothing, and the
//! proxy serves again once descriptors are free. Alone in its test binary:
//! it lowers this process's descriptor limit.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, TcpListener, TcpStream};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use airlock_egress::{Allowlist, Proxy, ProxyConfig, Sink};

const PATIENCE: Duration = Duration::from_secs(60);

/// A server on loopback that counts connections and answers each with
/// `hello` and closes.
fn server() -> (u16, Arc<AtomicUsize>) {
    let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let port = l.local_addr().unwrap().port();
    let count = Arc::new(AtomicUsize::new(0));
    let c = count.clone();
    std::thread::spawn(move || {
        for conn in l.incoming() {
            let Ok(mut conn) = conn else {
                // Out of descriptors too (the same process): wait, not spin.
                std::thread::sleep(Duration::from_millis(20));
                continue;
            };
            c.fetch_add(1, Ordering::SeqCst);
            std::thread::spawn(move || {
                let _ = conn.set_read_timeout(Some(PATIENCE));
                let mut buf = [0u8; 4096];
                let _ = conn.read(&mut buf);
                let _ = conn.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\nConnection: close\r\n\r\nhello\n",
                );
            });
        }
    });
    (port, count)
}

fn open_descriptors() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

fn set_soft_nofile(n: usize) {
    let status = Command::new("prlimit")
        .arg(format!("--pid={}", std::process::id()))
        .arg(format!("--nofile={n}:"))
        .status()
        .expect("run prlimit (util-linux)");
    assert!(status.success());
}

#[test]
fn out_of_descriptors_the_proxy_fails_closed_and_recovers() {
    let (allowed_port, allowed) = server();
    let (denied_port, denied) = server();
    let (sink, _records) = Sink::channel();
    let loopback = [IpAddr::V4(Ipv4Addr::LOCALHOST)];
    let mut config = ProxyConfig::new(
        Allowlist::parse(&[
            "allowed.test".to_string(),
            format!("127.0.0.1:{allowed_port}"),
        ])
        .unwrap(),
        sink,
    )
    .name("allowed.test", &loopback)
    .name("denied.test", &loopback);
    config.tcp = Some("127.0.0.1:0".parse().unwrap());
    let proxy = Proxy::start(config).unwrap();
    let addr = proxy.tcp_addr().unwrap();
    let original = std::fs::read_to_string("/proc/self/limits").unwrap();
    let soft: usize = original
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3)?.parse().ok())
        .unwrap();

    // A few dozen descriptors to spare, for the server threads' sockets
    // and the proxy's: a handful of tunnels exhaust them.
    set_soft_nofile(open_descriptors() + 40);
    // The flood comes from another process (its own limit raised back), so
    // only the proxy's process runs out. Every connection asks for a tunnel
    // and holds it: to the allowed server, to a name the lane does not
    // list, to the listed name's address on an unlisted port.
    let flood = Command::new("python3")
        .arg("-c")
        .arg(
            "import resource, socket, sys, time\n\
             soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)\n\
             resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))\n\
             proxy = ('127.0.0.1', int(sys.argv[1]))\n\
             targets = [f'allowed.test:{sys.argv[2]}', f'denied.test:{sys.argv[3]}', f'127.0.0.1:{sys.argv[3]}']\n\
             socks = []\n\
             for i in range(300):\n\
             \x20   s = socket.create_connection(proxy)\n\
             \x20   s.sendall(f'CONNECT {targets[i % 3]} HTTP/1.1\\r\\n\\r\\n'.encode())\n\
             \x20   socks.append((targets[i % 3], s))\n\
             time.sleep(2)\n\
             for target, s in socks:\n\
             \x20   s.settimeout(0.01)\n\
             \x20   try:\n\
             \x20       line = s.recv(64).split(b'\\r\\n')[0].decode()\n\
             \x20   except OSError:\n\
             \x20       line = 'waiting'\n\
             \x20   print(target.split(':')[0], line or 'closed')\n",
        )
        .arg(addr.port().to_string())
        .arg(allowed_port.to_string())
        .arg(denied_port.to_string())
        .output()
        .expect("run python3");
    set_soft_nofile(soft);
    let out = String::from_utf8_lossy(&flood.stdout).into_owned();
    assert!(
        flood.status.success(),
        "{out}\n{}",
        String::from_utf8_lossy(&flood.stderr)
    );
    let granted: Vec<&str> = out
        .lines()
        .filter(|l| l.contains(" HTTP/1.1 200"))
        .collect();
    // Only tunnels to the allowed server were granted, each a connection
    // the server counted; the flood did exhaust the proxy (some clients
    // got no tunnel).
    assert!(
        granted.iter().all(|l| l.starts_with("allowed.test ")),
        "{out}"
    );
    let allowed_asked = out
        .lines()
        .filter(|l| l.starts_with("allowed.test "))
        .count();
    assert!(
        granted.len() < allowed_asked,
        "the proxy never ran out:\n{out}"
    );
    assert_eq!(
        denied.load(Ordering::SeqCst),
        0,
        "the denied server was reached:\n{out}"
    );

    // Descriptors free again: the proxy serves, and refuses, as before.
    let ask = |target: &str| {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(PATIENCE)).unwrap();
        write!(s, "GET http://{target}/ HTTP/1.1\r\n\r\n").unwrap();
        let mut answer = String::new();
        let _ = s.read_to_string(&mut answer);
        answer
    };
    assert!(
        ask(&format!("allowed.test:{allowed_port}")).ends_with("hello\n"),
        "the proxy did not recover"
    );
    assert!(ask(&format!("denied.test:{denied_port}")).starts_with("HTTP/1.1 403"));
    proxy.stop();
    assert_eq!(denied.load(Ordering::SeqCst), 0);
    // Dialled: at least each granted tunnel and the last request (clients
    // that gave up while waiting in the backlog are served later, to the
    // allowed server only).
    assert!(allowed.load(Ordering::SeqCst) > granted.len(), "{out}");
}
