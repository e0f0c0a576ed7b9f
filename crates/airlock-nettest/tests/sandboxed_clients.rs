//! Real clients in a real sandbox whose only way out is the egress proxy
//! (`run_with_egress`), against real servers on this machine: an HTTPS
//! server with a certificate authority made for the test, git over smart
//! HTTP(S) (`git http-backend`), a PEP 503 index with a wheel built by
//! `pip wheel`. Each allowed client reaches its host and the proxy records
//! it allowed; each refusal is attempted for real, and the server it aimed
//! at is checked untouched (its log holds no connection at all).

use std::net::{IpAddr, Ipv4Addr, UdpSocket};
use std::path::Path;
use std::sync::mpsc::Receiver;

use airlock_egress::{AddressClass, ConnectionRecord, Outcome, Protocol, Proxy, Refusal};
use airlock_nettest::{Lab, Pki, Ran, Served, Site, host_address, require_clients};
use airlock_sandbox::BRIDGE_PORT;

const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
/// The metadata service's address, and a private one: what names the
/// allowlist lets through resolve to in the refusal tests.
const METADATA: IpAddr = IpAddr::V4(Ipv4Addr::new(169, 254, 169, 254));
const PRIVATE: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 255, 0, 1));
const PACKAGE: &str = "airlock-probe";
const PACKAGE_VALUE: &str = "installed through the proxy";
const README: &str = "cloned through the proxy\n";

/// The errors a direct connection meets, as Python reports them.
mod libc_errno {
    pub const ECONNREFUSED: i32 = 111;
    pub const ENETUNREACH: i32 = 101;
}

/// A lab with its servers and a proxy: `pkg.test`, `git.test` (HTTPS) and
/// `plain.test` (HTTP) allowed, each naming a server on 127.0.0.1 whose
/// address and port the list names too (the proxy refuses loopback
/// otherwise); `denied.test` names the victim, a server on every address
/// of the machine serving the same site, that nothing may reach;
/// `metadata.test`, `intranet.test` and `internal.test` are allowed names
/// that resolve to the metadata service, a private address and the
/// victim's loopback port, none of them listed.
struct World {
    // Dropped in this order: the servers and the proxy before their files.
    https: Served,
    http: Served,
    victim: Served,
    proxy: Option<Proxy>,
    records: Receiver<ConnectionRecord>,
    pki: Pki,
    commit: String,
    lab: Lab,
}

impl World {
    fn new(with_index: bool) -> Option<World> {
        if !require_clients() {
            return None;
        }
        let lab = Lab::new(
            Path::new(env!("CARGO_TARGET_TMPDIR")),
            Path::new(env!("CARGO_BIN_EXE_airlock-nettest")),
        );
        let pki = Pki::make(&lab.base.join("pki"), &["pkg.test", "git.test"]);
        let site = Site::new(&lab.base.join("site"));
        let commit = site.repository("project", &[("README.md", README)]);
        if with_index {
            site.package_index(PACKAGE, "airlock_probe", PACKAGE_VALUE);
        }
        let https = Served::start(&site, "https", Ipv4Addr::LOCALHOST, Some(&pki));
        let http = Served::start(&site, "http", Ipv4Addr::LOCALHOST, None);
        let victim = Served::start(&site, "victim", Ipv4Addr::UNSPECIFIED, None);
        let allow = [
            "pkg.test".to_string(),
            "git.test".to_string(),
            "plain.test".to_string(),
            format!("127.0.0.1:{}", https.port()),
            format!("127.0.0.1:{}", http.port()),
            "metadata.test".to_string(),
            "intranet.test".to_string(),
            "internal.test".to_string(),
        ];
        let names = [
            ("pkg.test", LOOPBACK),
            ("git.test", LOOPBACK),
            ("plain.test", LOOPBACK),
            ("denied.test", LOOPBACK),
            ("metadata.test", METADATA),
            ("intranet.test", PRIVATE),
            ("internal.test", LOOPBACK),
        ];
        let (proxy, records) = lab.proxy(&allow, &names);
        Some(World {
            lab,
            pki,
            commit,
            https,
            http,
            victim,
            proxy: Some(proxy),
            records,
        })
    }

    fn ca(&self) -> String {
        self.pki.ca.display().to_string()
    }

    /// Runs `script` in the sandbox (git and pip without the machine's
    /// configuration), then stops the proxy, so every record is in.
    fn run(&mut self, script: &str) -> (Ran, Vec<ConnectionRecord>) {
        let ran = self.lab.run(
            script,
            &[
                ("GIT_CONFIG_NOSYSTEM", "1"),
                ("GIT_CONFIG_GLOBAL", "/dev/null"),
                ("PIP_CONFIG_FILE", "/dev/null"),
                ("PIP_DISABLE_PIP_VERSION_CHECK", "1"),
                ("PIP_NO_CACHE_DIR", "1"),
            ],
        );
        self.proxy.take().unwrap().stop();
        let records = self.records.try_iter().collect();
        assert!(ran.outcome.exit.success(), "{}\n{}", ran.stdout, ran.stderr);
        assert_eq!(ran.outcome.confinement, "confined");
        (ran, records)
    }
}

/// The line of `out` that starts with `label `, without the label.
fn line<'a>(ran: &'a Ran, label: &str) -> &'a str {
    let prefix = format!("{label} ");
    ran.stdout
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no {label:?} line in:\n{}\n{}", ran.stdout, ran.stderr))
}

fn allowed(records: &[ConnectionRecord], host: &str, protocol: Protocol) -> usize {
    records
        .iter()
        .filter(|r| r.host == host && r.protocol == protocol && r.allowed())
        .count()
}

fn refusals<'a>(records: &'a [ConnectionRecord], host: &str) -> Vec<&'a Refusal> {
    records
        .iter()
        .filter(|r| r.host == host)
        .map(|r| {
            r.refusal()
                .unwrap_or_else(|| panic!("{host} was not refused: {r:?}"))
        })
        .collect()
}

#[test]
fn curl_reaches_allowed_hosts_over_http_https_connect_and_socks5() {
    let Some(mut w) = World::new(false) else {
        return;
    };
    let (ca, s, p) = (w.ca(), w.https.port(), w.http.port());
    let (ran, records) = w.run(&format!(
        "echo https $(curl -sS --cacert {ca} -w ' %{{http_code}}' \
           https://pkg.test:{s}/git/project.git/HEAD); \
         echo http $(curl -sS -w ' %{{http_code}}' http://plain.test:{p}/git/project.git/HEAD); \
         echo socks-https $(curl -sS --cacert {ca} --socks5-hostname 127.0.0.1:{BRIDGE_PORT} \
           -w ' %{{http_code}}' https://pkg.test:{s}/git/project.git/HEAD); \
         echo socks-http $(curl -sS --socks5-hostname 127.0.0.1:{BRIDGE_PORT} \
           -w ' %{{http_code}}' http://plain.test:{p}/git/project.git/HEAD); \
         curl -sS https://pkg.test:{s}/git/project.git/HEAD >/dev/null 2>&1; echo untrusted $?"
    ));
    for label in ["https", "http", "socks-https", "socks-http"] {
        assert_eq!(line(&ran, label), "ref: refs/heads/main 200", "{label}");
    }
    // TLS is end to end, with the test's certificate: without its
    // authority curl refuses the server (60: peer certificate), after the
    // tunnel was made.
    assert_eq!(line(&ran, "untrusted"), "60");
    // Each server got its two requests, by the name the client used.
    for (server, host) in [
        (&w.https, format!("pkg.test:{s}")),
        (&w.http, format!("plain.test:{p}")),
    ] {
        let requests: Vec<_> = server
            .log()
            .into_iter()
            .filter(|e| e["event"] == "request")
            .collect();
        assert_eq!(requests.len(), 2, "{requests:?}");
        assert!(
            requests.iter().all(|r| r["host"] == host.as_str()),
            "{requests:?}"
        );
    }
    assert_eq!(
        allowed(&records, "pkg.test", Protocol::Connect),
        2,
        "{records:?}"
    );
    assert_eq!(
        allowed(&records, "plain.test", Protocol::Http),
        1,
        "{records:?}"
    );
    assert_eq!(
        allowed(&records, "pkg.test", Protocol::Socks5),
        1,
        "{records:?}"
    );
    assert_eq!(
        allowed(&records, "plain.test", Protocol::Socks5),
        1,
        "{records:?}"
    );
    assert_eq!(records.len(), 5, "{records:?}");
    for r in &records {
        let Outcome::Allowed { rule, address_rule } = &r.outcome else {
            unreachable!()
        };
        assert_eq!(rule, &r.host);
        assert_eq!(
            address_rule.as_deref(),
            Some(format!("127.0.0.1:{}", r.port).as_str())
        );
        assert!(r.bytes_up > 0 && r.bytes_down > 0, "{r:?}");
    }
    w.victim.assert_untouched("curl");
}

#[test]
fn git_clones_over_https_through_the_proxy() {
    let Some(mut w) = World::new(false) else {
        return;
    };
    let (ca, s) = (w.ca(), w.https.port());
    let url = format!("https://git.test:{s}/git/project.git");
    let (ran, records) = w.run(&format!(
        "GIT_SSL_CAINFO={ca} git clone -q {url} by-variable && \
           echo by-variable $(git -C by-variable rev-parse HEAD) $(cat by-variable/README.md); \
         git -c http.sslCAInfo={ca} clone -q {url} by-config && \
           echo by-config $(git -C by-config rev-parse HEAD) $(cat by-config/README.md); \
         git -c http.sslCAInfo={ca} -C by-config fetch -q && echo fetched $(git -C by-config rev-parse FETCH_HEAD)"
    ));
    let expected = format!("{} {}", w.commit, README.trim());
    assert_eq!(line(&ran, "by-variable"), expected);
    assert_eq!(line(&ran, "by-config"), expected);
    assert_eq!(line(&ran, "fetched"), w.commit);
    let requests = w.https.requests();
    let refs = "GET /git/project.git/info/refs?service=git-upload-pack";
    assert_eq!(
        requests.iter().filter(|r| *r == refs).count(),
        3,
        "{requests:?}"
    );
    assert!(
        requests
            .iter()
            .any(|r| r == "POST /git/project.git/git-upload-pack"),
        "{requests:?}"
    );
    assert!(
        allowed(&records, "git.test", Protocol::Connect) >= 3,
        "{records:?}"
    );
    assert!(records.iter().all(|r| r.allowed()), "{records:?}");
    w.victim.assert_untouched("git");
}

#[test]
fn pip_installs_from_a_package_index_through_the_proxy() {
    let Some(mut w) = World::new(true) else {
        return;
    };
    let (ca, s) = (w.ca(), w.https.port());
    let (ran, records) = w.run(&format!(
        "python3 -m pip install --quiet --index-url https://pkg.test:{s}/simple/ --cert {ca} \
           --target site {PACKAGE} && \
         PYTHONPATH=site python3 -c 'import airlock_probe; print(\"value\", airlock_probe.VALUE)'"
    ));
    assert_eq!(line(&ran, "value"), PACKAGE_VALUE, "{}", ran.stderr);
    let requests = w.https.requests();
    assert!(
        requests.contains(&format!("GET /simple/{PACKAGE}/")),
        "{requests:?}"
    );
    assert!(
        requests
            .iter()
            .any(|r| r.starts_with("GET /packages/airlock_probe-1.0-") && r.ends_with(".whl")),
        "{requests:?}"
    );
    assert!(
        allowed(&records, "pkg.test", Protocol::Connect) >= 1,
        "{records:?}"
    );
    assert!(records.iter().all(|r| r.allowed()), "{records:?}");
    w.victim.assert_untouched("pip");
}

#[test]
fn python_urllib_and_rust_ureq_reach_allowed_hosts_through_the_proxy() {
    let Some(mut w) = World::new(false) else {
        return;
    };
    let (ca, s, p) = (w.ca(), w.https.port(), w.http.port());
    let fetch = env!("CARGO_BIN_EXE_airlock-nettest");
    let path = "/git/project.git/HEAD";
    let (ran, records) = w.run(&format!(
        "python3 -c '
import ssl, sys, urllib.request as u
tls = ssl.create_default_context(cafile=sys.argv[1])
for label, url in ((\"urllib-https\", sys.argv[2]), (\"urllib-http\", sys.argv[3])):
    with u.urlopen(url, context=tls) as r:
        print(label, r.status, r.read().decode().strip())
' {ca} https://pkg.test:{s}{path} http://plain.test:{p}{path}; \
         echo ureq-https $({fetch} fetch https://pkg.test:{s}{path} {ca}); \
         echo ureq-http $({fetch} fetch http://plain.test:{p}{path})"
    ));
    for label in ["urllib-https", "urllib-http", "ureq-https", "ureq-http"] {
        assert_eq!(
            line(&ran, label),
            "200 ref: refs/heads/main",
            "{label}: {}",
            ran.stderr
        );
    }
    assert_eq!(w.https.requests().len(), 2);
    assert_eq!(w.http.requests().len(), 2);
    // urllib tunnels HTTPS (CONNECT) and forwards HTTP; ureq tunnels both.
    assert_eq!(
        allowed(&records, "pkg.test", Protocol::Connect),
        2,
        "{records:?}"
    );
    assert_eq!(
        allowed(&records, "plain.test", Protocol::Http)
            + allowed(&records, "plain.test", Protocol::Connect),
        2,
        "{records:?}"
    );
    assert!(records.iter().all(|r| r.allowed()), "{records:?}");
    w.victim.assert_untouched("urllib and ureq");
}

/// Every client asks for a host the list does not name: the proxy refuses
/// each, saying which setting would allow it, and the server the name maps
/// to (serving the same repository and index) sees nothing.
#[test]
fn every_client_is_refused_a_host_not_on_the_list_and_the_host_sees_nothing() {
    let Some(mut w) = World::new(true) else {
        return;
    };
    let (ca, v) = (w.ca(), w.victim.port());
    let fetch = env!("CARGO_BIN_EXE_airlock-nettest");
    let (ran, records) = w.run(&format!(
        "echo curl-http $(curl -sS -w ' %{{http_code}}' http://denied.test:{v}/simple/); \
         curl -sS -p http://denied.test:{v}/simple/ 2>&1 | sed 's/^/curl-connect /'; \
         curl -sS --socks5-hostname 127.0.0.1:{BRIDGE_PORT} http://denied.test:{v}/simple/ 2>&1 \
           | sed 's/^/curl-socks /'; \
         git clone -q http://denied.test:{v}/git/project.git clone 2>&1 | sed 's/^/git /'; \
         echo git-cloned $(test -e clone && echo yes || echo no); \
         python3 -m pip install --log pip.log --retries 0 --index-url http://denied.test:{v}/simple/ \
           --trusted-host denied.test --target site {PACKAGE} >/dev/null 2>&1; echo pip-exit $?; \
         grep -o 'Could not fetch URL .*' pip.log | sed 's/^/pip /'; \
         echo pip-installed $(test -e site/airlock_probe && echo yes || echo no); \
         python3 -c '
import sys, urllib.request as u, urllib.error as e
try:
    u.urlopen(sys.argv[1])
except e.HTTPError as x:
    print(\"urllib\", x.code, x.read().decode().splitlines()[0])
' http://denied.test:{v}/simple/; \
         {fetch} fetch https://denied.test:{v}/simple/ {ca} 2>&1 | sed 's/^/ureq /'; \
         echo done"
    ));
    assert!(
        ran.stdout.ends_with("done\n"),
        "{}\n{}",
        ran.stdout,
        ran.stderr
    );
    let refused = format!(
        "airlock: connection to denied.test:{v} refused: denied.test is not in this lane's network allowlist."
    );
    assert!(
        line(&ran, "curl-http").starts_with(&refused),
        "{}",
        ran.stdout
    );
    assert!(line(&ran, "curl-http").ends_with(" 403"), "{}", ran.stdout);
    assert_eq!(
        line(&ran, "curl-connect"),
        "curl: (56) CONNECT tunnel failed, response 403"
    );
    // SOCKS reply 2: connection not allowed by ruleset.
    assert!(line(&ran, "curl-socks").ends_with(" (2)"), "{}", ran.stdout);
    // git shows the agent the proxy's answer, with the setting to ask for.
    assert!(
        line(&ran, "git").starts_with(&format!("remote: {refused}")),
        "{}",
        ran.stdout
    );
    assert!(
        ran.stdout.contains(&format!(
            "git fatal: unable to access 'http://denied.test:{v}/git/project.git/': \
             The requested URL returned error: 403\n"
        )),
        "{}",
        ran.stdout
    );
    assert_eq!(line(&ran, "git-cloned"), "no");
    assert_ne!(line(&ran, "pip-exit"), "0");
    assert!(
        line(&ran, "pip").contains(": 403 Client Error: Forbidden for url: "),
        "{}",
        ran.stdout
    );
    assert_eq!(line(&ran, "pip-installed"), "no");
    assert_eq!(line(&ran, "urllib"), format!("403 {refused}"));
    assert!(
        line(&ran, "ureq").ends_with("proxy server responded 403/403"),
        "{}",
        ran.stdout
    );
    w.victim.assert_untouched("a host not on the list");
    let refused = refusals(&records, "denied.test");
    // curl three ways, git, pip, urllib, ureq: one request each.
    assert_eq!(refused.len(), 7, "{records:?}");
    let setting = format!("network = [\"denied.test:{v}\"]");
    for r in refused {
        assert_eq!(
            r,
            &Refusal::NotListed {
                allow_with: setting.clone()
            }
        );
    }
    assert!(
        records.iter().all(|r| r.host == "denied.test"),
        "{records:?}"
    );
}

/// The proxy refuses addresses a client writes out that the list does not
/// name, and allowed names that resolve to the metadata service, a private
/// or a loopback address: through plain HTTP, CONNECT and SOCKS5 alike.
#[test]
fn raw_addresses_the_metadata_service_and_private_addresses_are_refused_through_the_proxy() {
    let Some(mut w) = World::new(false) else {
        return;
    };
    let v = w.victim.port();
    let mut raw = vec![format!("127.0.0.2:{v}"), "169.254.169.254:80".to_string()];
    raw.extend(host_address().map(|ip| format!("{ip}:{v}")));
    let mut script = String::new();
    for target in &raw {
        script += &format!(
            "echo raw {target} $(curl -sS -w ' %{{http_code}}' http://{target}/latest/meta-data/); \
             curl -sS -p http://{target}/ 2>&1 | sed 's/^/raw-connect {target} /'; "
        );
    }
    for name in ["metadata.test", "intranet.test", "internal.test"] {
        script += &format!(
            "echo name {name} $(curl -sS -w ' %{{http_code}}' http://{name}:{v}/); \
             curl -sS --socks5-hostname 127.0.0.1:{BRIDGE_PORT} http://{name}:{v}/ 2>&1 \
               | sed 's/^/name-socks {name} /'; "
        );
    }
    let (ran, records) = w.run(&(script + "echo done"));
    assert!(
        ran.stdout.ends_with("done\n"),
        "{}\n{}",
        ran.stdout,
        ran.stderr
    );
    for target in &raw {
        let shown = line(&ran, &format!("raw {target}"));
        assert!(
            shown.contains("is not in this lane's network allowlist"),
            "{shown}"
        );
        assert!(shown.ends_with(" 403"), "{shown}");
        assert_eq!(
            line(&ran, &format!("raw-connect {target}")),
            "curl: (56) CONNECT tunnel failed, response 403"
        );
        let (host, port) = target.rsplit_once(':').unwrap();
        let refused = refusals(&records, host);
        assert_eq!(refused.len(), 2, "{records:?}");
        for r in refused {
            assert_eq!(
                r,
                &Refusal::NotListed {
                    allow_with: format!("network = [\"{host}:{port}\"]")
                }
            );
        }
    }
    for (name, class, address) in [
        ("metadata.test", AddressClass::Metadata, METADATA),
        ("intranet.test", AddressClass::Private, PRIVATE),
        ("internal.test", AddressClass::Loopback, LOOPBACK),
    ] {
        let shown = line(&ran, &format!("name {name}"));
        assert!(shown.contains(class.describe()), "{shown}");
        assert!(shown.ends_with(" 403"), "{shown}");
        assert!(
            line(&ran, &format!("name-socks {name}")).ends_with(" (2)"),
            "{}",
            ran.stdout
        );
        let refused = refusals(&records, name);
        assert_eq!(refused.len(), 2, "{records:?}");
        for r in refused {
            assert_eq!(
                r,
                &Refusal::NotPublic {
                    class,
                    allow_with: format!(
                        "network = [\"{}\"]",
                        std::net::SocketAddr::new(address, v)
                    )
                }
            );
        }
    }
    assert!(
        records.iter().all(|r| !r.allowed() && r.bytes_up == 0),
        "{records:?}"
    );
    w.victim.assert_untouched("raw and not-public addresses");
}

/// Clients told to go around the proxy (curl and git with the proxy
/// disabled, pip to an address `NO_PROXY` lists, a raw socket) find no
/// route: not to the machine's loopback, not to its other address; and a
/// UDP datagram to either arrives nowhere.
#[test]
fn direct_tcp_and_udp_bypassing_the_proxy_reach_nothing() {
    let Some(mut w) = World::new(false) else {
        return;
    };
    let v = w.victim.port();
    let udp = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).unwrap();
    let u = udp.local_addr().unwrap().port();
    let mut targets = vec![Ipv4Addr::LOCALHOST];
    targets.extend(host_address());
    // Around the proxy: no proxy variables at all.
    let mut script =
        String::from("unset HTTP_PROXY http_proxy HTTPS_PROXY https_proxy ALL_PROXY all_proxy; ");
    for ip in &targets {
        script += &format!(
            "curl -sS --noproxy '*' http://{ip}:{v}/simple/ 2>/dev/null; echo curl {ip} $?; \
             git clone -q http://{ip}:{v}/git/project.git c-{ip} 2>&1 | sed 's/^/git-says {ip} /'; \
               echo git {ip} ${{PIPESTATUS[0]}}; \
             python3 -m pip install --log pip-{ip}.log --retries 0 --timeout 5 \
               --index-url http://{ip}:{v}/simple/ --trusted-host {ip} --target site-{ip} {PACKAGE} \
               >/dev/null 2>&1; echo pip {ip} $?; \
             grep -o 'Could not fetch URL .*' pip-{ip}.log | sed 's/^/pip-says {ip} /'; \
             python3 -c '
import socket, sys
ip, tcp, udp = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
try:
    socket.create_connection((ip, tcp), timeout=5)
    print(\"socket\", ip, \"connected\")
except OSError as e:
    print(\"socket\", ip, \"refused\", e.errno)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
try:
    s.sendto(b\"leak\", (ip, udp))
    print(\"udp\", ip, \"sent\")
except OSError as e:
    print(\"udp\", ip, \"not-sent\", e.errno)
' {ip} {v} {u}; "
        );
    }
    let (ran, records) = w.run(&(script + "echo done"));
    assert!(
        ran.stdout.ends_with("done\n"),
        "{}\n{}",
        ran.stdout,
        ran.stderr
    );
    for ip in &targets {
        // The sandbox's own loopback has nothing listening; any other
        // address has no route.
        let (errno, error) = if ip.is_loopback() {
            (libc_errno::ECONNREFUSED, "Connection refused")
        } else {
            (libc_errno::ENETUNREACH, "Network is unreachable")
        };
        assert_eq!(line(&ran, &format!("curl {ip}")), "7", "{}", ran.stdout);
        assert_eq!(line(&ran, &format!("git {ip}")), "128", "{}", ran.stdout);
        let git = line(&ran, &format!("git-says {ip}"));
        assert!(
            git.contains("Failed to connect to") || git.contains("Couldn't connect"),
            "{git}"
        );
        assert_ne!(line(&ran, &format!("pip {ip}")), "0", "{}", ran.stdout);
        let pip = line(&ran, &format!("pip-says {ip}"));
        assert!(
            pip.contains("connection error: ") && pip.contains(error),
            "{pip}"
        );
        assert_eq!(
            line(&ran, &format!("socket {ip}")),
            format!("refused {errno}")
        );
    }
    // The datagram to the sandbox's own loopback goes to nobody; any other
    // address has no route.
    for ip in targets.iter().skip(1) {
        assert_eq!(
            line(&ran, &format!("udp {ip}")),
            format!("not-sent {}", libc_errno::ENETUNREACH)
        );
    }
    // Datagrams on one machine are delivered at once: whatever could arrive
    // has arrived by now.
    udp.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 64];
    assert!(udp.recv_from(&mut buf).is_err(), "a datagram got out");
    w.victim.assert_untouched("direct connections");
    assert!(records.is_empty(), "{records:?}");
}

/// No resolver inside: neither getent nor getaddrinfo answers, for names
/// the proxy knows or any other (`pypi.org`, which the machine itself may
/// well resolve), and a client that resolves for itself (curl with the
/// proxy disabled) gets nowhere.
#[test]
fn names_do_not_resolve_inside_the_sandbox() {
    let Some(mut w) = World::new(false) else {
        return;
    };
    let s = w.https.port();
    let (ran, records) = w.run(&format!(
        "for name in pkg.test denied.test pypi.org; do \
           getent hosts $name; echo getent $name $?; \
         done; \
         python3 -c '
import socket
for name in (\"pkg.test\", \"pypi.org\"):
    try:
        print(\"getaddrinfo\", name, socket.getaddrinfo(name, 443))
    except socket.gaierror as e:
        print(\"getaddrinfo\", name, \"failed\")
'; \
         curl -sS --noproxy '*' --cacert {ca} https://pkg.test:{s}/ 2>&1 | sed 's/^/direct /'",
        ca = w.ca()
    ));
    for name in ["pkg.test", "denied.test", "pypi.org"] {
        assert_ne!(line(&ran, &format!("getent {name}")), "0", "{}", ran.stdout);
    }
    for name in ["pkg.test", "pypi.org"] {
        assert_eq!(
            line(&ran, &format!("getaddrinfo {name}")),
            "failed",
            "{}",
            ran.stdout
        );
    }
    assert!(
        line(&ran, "direct").contains("Could not resolve host"),
        "{}",
        ran.stdout
    );
    w.https.assert_untouched("resolving");
    assert!(records.is_empty(), "{records:?}");
}

/// The log the refusal tests rely on: a connection that sends nothing is
/// logged too, so an empty log means nothing connected at all.
#[test]
fn a_server_logs_a_connection_that_sends_nothing() {
    let Some(w) = World::new(false) else {
        return;
    };
    drop(std::net::TcpStream::connect((Ipv4Addr::LOCALHOST, w.victim.port())).unwrap());
    // The server logs in its own process: wait for it, within bounds.
    let mut log = w.victim.log();
    for _ in 0..600 {
        if !log.is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
        log = w.victim.log();
    }
    assert_eq!(log.len(), 1, "{log:?}");
    assert_eq!(log[0]["event"], "connect");
}
