//! Issue 19's red team: attacks on the real `airlock serve` (`--port 0
//! --json`) over a real socket. Requests are written byte by byte (raw
//! HTTP/1.1 on a `TcpStream`): an attack needs what a polite client never
//! sends (absolute-form targets, two `Host` headers, a body that never
//! ends). Each test asserts the refusal (status, page) and that the run's
//! state and the ledger are unchanged (`Env::world`).

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Stdio};
use std::time::Duration;

use common::web::{self, CSP, digest, form, input_value};
use common::{Env, World};
use serde_json::Value;

/// A running `airlock serve`, killed when dropped.
struct Serve {
    child: Child,
    /// The one-time URL's path and query (`/?token=…`).
    token_path: String,
    token: String,
    port: u16,
}

impl Serve {
    fn start(env: &Env) -> Serve {
        Serve::start_with(env, &[])
    }

    /// `start`, with variables set in the server's environment.
    fn start_with(env: &Env, vars: &[(&str, &str)]) -> Serve {
        let web::Started {
            child, url, port, ..
        } = web::start_serve(env, vars);
        let token_path = url[url.find("/?").unwrap()..].to_string();
        let token = token_path.split("token=").nth(1).unwrap().to_string();
        Serve {
            child,
            token_path,
            token,
            port,
        }
    }

    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn origin(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Spends the token; returns the `Cookie` header's value.
    fn session(&self) -> String {
        let r = self.get(&self.token_path, &[]);
        assert_eq!(r.status, 303, "{}", r.body);
        let set = r.header("set-cookie").expect("a session cookie");
        set.split(';').next().unwrap().to_string()
    }

    /// A GET with `Host` this server's, then `headers` (a `host` there
    /// replaces it).
    fn get(&self, path: &str, headers: &[(&str, &str)]) -> Reply {
        let host = self.host();
        let mut all = vec![("host", host.as_str())];
        if headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
            all.clear();
        }
        all.extend_from_slice(headers);
        self.send(&request("GET", path, &all, b""))
    }

    /// A decision's form POST as the run page's form sends it (Host and
    /// Origin this server's), then `headers` (which may replace them: a
    /// header named here is not sent twice; `("origin", "")` drops it).
    fn post(&self, path: &str, cookie: &str, body: &str, headers: &[(&str, &str)]) -> Reply {
        let host = self.host();
        let origin = self.origin();
        let mut all: Vec<(&str, &str)> = vec![
            ("host", &host),
            ("origin", &origin),
            ("cookie", cookie),
            ("content-type", "application/x-www-form-urlencoded"),
        ];
        for (k, v) in headers {
            all.retain(|(n, _)| !n.eq_ignore_ascii_case(k));
            if !v.is_empty() {
                all.push((k, v));
            }
        }
        self.send(&request("POST", path, &all, body.as_bytes()))
    }

    /// Writes `raw` on a new connection and reads the whole reply.
    fn send(&self, raw: &[u8]) -> Reply {
        let mut stream = self.connect();
        stream.write_all(raw).unwrap();
        read_reply(&mut stream)
    }

    fn connect(&self) -> TcpStream {
        let stream = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        // A guard against a hung server, not a measurement.
        stream
            .set_read_timeout(Some(Duration::from_secs(60)))
            .unwrap();
        stream
    }

    /// SIGTERM; returns the exit code and stderr.
    fn stop(mut self) -> (Option<i32>, String) {
        // SAFETY: kill(2) on the child this test started.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        let status = self.child.wait().unwrap();
        let mut stderr = String::new();
        if let Some(mut e) = self.child.stderr.take() {
            e.read_to_string(&mut stderr).unwrap();
        }
        (status.code(), stderr)
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTP/1.1 request, `Connection: close`, with a `Content-Length` when
/// it has a body.
fn request(method: &str, target: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut raw = format!("{method} {target} HTTP/1.1\r\n");
    for (k, v) in headers {
        raw.push_str(&format!("{k}: {v}\r\n"));
    }
    if !body.is_empty() || method == "POST" {
        raw.push_str(&format!("content-length: {}\r\n", body.len()));
    }
    raw.push_str("connection: close\r\n\r\n");
    let mut raw = raw.into_bytes();
    raw.extend_from_slice(body);
    raw
}

#[derive(Debug)]
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn says(&self, text: &str) -> &Reply {
        assert!(
            self.body.contains(text),
            "the page ({}) should say {text:?}:\n{}",
            self.status,
            self.body
        );
        self
    }
}

fn read_reply(stream: &mut TcpStream) -> Reply {
    let mut raw = Vec::new();
    // The server closes after the reply (`Connection: close`); a reset
    // after a refusal of an unread body still leaves what was read.
    let mut buf = [0u8; 65536];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
            Err(e) if raw.is_empty() => panic!("no reply: {e}"),
            Err(_) => break,
        }
    }
    parse_reply(&raw)
}

fn parse_reply(raw: &[u8]) -> Reply {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no header end in {:?}", String::from_utf8_lossy(raw)));
    let head = String::from_utf8_lossy(&raw[..end]).to_string();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let mut body = raw[end + 4..].to_vec();
    if headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"))
    {
        body = dechunk(&body);
    }
    Reply {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = raw.windows(2).position(|w| w == b"\r\n") {
        let size =
            usize::from_str_radix(String::from_utf8_lossy(&raw[..eol]).trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        let start = eol + 2;
        out.extend_from_slice(&raw[start..(start + size).min(raw.len())]);
        raw = &raw[(start + size + 2).min(raw.len())..];
    }
    out
}

fn assert_headers(r: &Reply, what: &str) {
    assert_eq!(
        r.header("content-security-policy"),
        Some(CSP),
        "{what}: {r:?}"
    );
    assert_eq!(
        r.header("x-content-type-options"),
        Some("nosniff"),
        "{what}"
    );
    assert_eq!(r.header("referrer-policy"), Some("no-referrer"), "{what}");
    assert_eq!(r.header("cache-control"), Some("no-store"), "{what}");
    assert_eq!(r.header("x-frame-options"), Some("DENY"), "{what}");
}

/// A refusal: its status, and nothing recorded.
fn refused(env: &Env, before: &World, r: &Reply, status: u16, what: &str) {
    assert_eq!(r.status, status, "{what}: {}", r.body);
    assert_headers(r, what);
    env.assert_unchanged(before);
}

/// A server, its session, a submitted run and the session's csrf token.
struct Setup {
    env: Env,
    run: String,
    serve: Serve,
    cookie: String,
    csrf: String,
    digest: String,
}

fn setup() -> Setup {
    let env = Env::new();
    let (run, _) = env.submitted();
    let serve = Serve::start(&env);
    let cookie = serve.session();
    let page = serve.get(&format!("/runs/{run}"), &[("cookie", &cookie)]);
    assert_eq!(page.status, 200, "{}", page.body);
    let csrf = input_value(&page.body, "csrf");
    let digest = digest(&env, &run);
    Setup {
        env,
        run,
        serve,
        cookie,
        csrf,
        digest,
    }
}

// ---------------------------------------------------------------- session

#[test]
fn session_attacks_token_reuse_guesses_extra_params_fixation_and_logs() {
    let env = Env::new();
    let (run, _) = env.submitted();
    let serve = Serve::start(&env);
    let before = env.world();
    let port = serve.port;

    // Guesses, many, of every shape: none opens a session, none spends the
    // real token.
    // The token but its last digit.
    let (head, last) = serve.token.split_at(serve.token.len() - 1);
    let near = format!("{head}{}", if last == "0" { "1" } else { "0" });
    let upper = serve.token.to_ascii_uppercase();
    let prefix = &serve.token[..32];
    for guess in [
        "",
        "0",
        near.as_str(),
        upper.as_str(),
        prefix,
        &format!("{} ", serve.token),
    ] {
        let r = serve.get(&format!("/?token={}", &form(&[("", guess)])[1..]), &[]);
        assert_eq!(r.status, 401, "guess {guess:?}: {}", r.body);
        assert!(r.header("set-cookie").is_none(), "guess {guess:?}");
    }
    for i in 0..200 {
        let r = serve.get(&format!("/?token={i:064x}"), &[]);
        assert_eq!(r.status, 401);
    }
    // The token in a wrong place: another path, a second value after a
    // wrong first one.
    for path in [
        format!("/stats?token={}", serve.token),
        format!("/static/app.css?token={}", serve.token),
        format!("/?token=0&token={}", serve.token),
    ] {
        let r = serve.get(&path, &[]);
        assert_eq!(r.status, 401, "{path}: {}", r.body);
        assert!(r.header("set-cookie").is_none(), "{path}");
    }
    // Session fixation: a cookie planted before the token (by another
    // server on this host: cookies do not tell ports apart) is not adopted.
    let planted = format!("airlock_session_{port}={}", "ab".repeat(32));
    let r = serve.get(
        &format!("{}&next=//evil.example/%0d%0aX:y", serve.token_path),
        &[("cookie", &planted)],
    );
    assert_eq!(r.status, 303, "{}", r.body);
    // The token leaves the address: the redirect goes to `/` whatever else
    // the link carried, and no Referer can carry the token on.
    assert_eq!(r.header("location"), Some("/"));
    assert!(r.header("x").is_none());
    assert_headers(&r, "the token's redirect");
    let set = r.header("set-cookie").unwrap().to_string();
    for flag in ["; HttpOnly", "; SameSite=Strict", "; Path=/"] {
        assert!(set.contains(flag), "{set}");
    }
    assert!(!set.contains("Domain"), "{set}");
    let cookie = set.split(';').next().unwrap().to_string();
    assert_ne!(cookie, planted);
    assert!(!cookie.contains(&serve.token));
    assert_eq!(serve.get("/", &[("cookie", &planted)]).status, 401);
    // The planted cookie beside the real one neither breaks nor replaces it.
    let both = format!("{planted}; {cookie}");
    assert_eq!(serve.get("/", &[("cookie", &both)]).status, 200);

    // Spent: the same token again, in any spelling, opens nothing.
    for path in [
        serve.token_path.clone(),
        format!("/?token={}&again=1", serve.token),
    ] {
        let r = serve.get(&path, &[]);
        assert_eq!(r.status, 401, "{path}");
        assert!(r.header("set-cookie").is_none());
    }
    // The token is nowhere in what the server sends or logs.
    let queue = serve.get("/", &[("cookie", &cookie)]);
    assert_eq!(queue.status, 200);
    assert!(queue.body.contains(&run));
    let page = serve.get(&format!("/runs/{run}"), &[("cookie", &cookie)]);
    assert!(!queue.body.contains(&serve.token) && !page.body.contains(&serve.token));
    let csrf = input_value(&page.body, "csrf");
    assert_ne!(csrf, serve.token);
    assert!(!page.body.contains(cookie.split('=').nth(1).unwrap()));
    env.assert_unchanged(&before);
    let token = serve.token.clone();
    let (code, stderr) = serve.stop();
    assert_eq!(code, Some(0), "{stderr}");
    assert!(!stderr.contains(&token), "the token in the log: {stderr}");
}

#[test]
fn a_session_of_another_server_opens_nothing_here() {
    // Two repositories, two servers on one machine.
    let env_a = Env::new();
    let (run_a, _) = env_a.submitted();
    let env_b = Env::new();
    let (run_b, _) = env_b.submitted();
    let a = Serve::start(&env_a);
    let b = Serve::start(&env_b);
    let before_a = env_a.world();
    let before_b = env_b.world();
    let cookie_a = a.session();
    let page_a = a.get(&format!("/runs/{run_a}"), &[("cookie", &cookie_a)]);
    let csrf_a = input_value(&page_a.body, "csrf");

    // A's token at B opens nothing, and B's own still works after.
    assert_eq!(b.get(&format!("/?token={}", a.token), &[]).status, 401);
    // A's cookie at B, as sent and renamed to B's cookie.
    let value_a = cookie_a.split_once('=').unwrap().1;
    for cookie in [
        cookie_a.clone(),
        format!("airlock_session_{}={value_a}", b.port),
    ] {
        let r = b.get("/", &[("cookie", &cookie)]);
        assert_eq!(r.status, 401, "{cookie}: {}", r.body);
        assert!(!r.body.contains(&run_b));
    }
    let cookie_b = b.session();
    // B's session with A's anti-forgery token: refused.
    let body = form(&[("csrf", &csrf_a), ("digest", &digest(&env_b, &run_b))]);
    let r = b.post(&format!("/runs/{run_b}/approve"), &cookie_b, &body, &[]);
    refused(&env_b, &before_b, &r, 403, "A's csrf at B");
    // A run of the other repository is no run here, to read or decide.
    let r = b.get(&format!("/runs/{run_a}"), &[("cookie", &cookie_b)]);
    assert_eq!(r.status, 404, "{}", r.body);
    let page_b = b.get(&format!("/runs/{run_b}"), &[("cookie", &cookie_b)]);
    let csrf_b = input_value(&page_b.body, "csrf");
    let body = form(&[("csrf", &csrf_b), ("reason", "cross-repository")]);
    let r = b.post(&format!("/runs/{run_a}/reject"), &cookie_b, &body, &[]);
    assert_eq!(r.status, 404, "{}", r.body);
    env_a.assert_unchanged(&before_a);
    env_b.assert_unchanged(&before_b);
    assert_eq!(env_a.state(&run_a), "in_review");
}

// ------------------------------------------------------------------- CSRF

#[test]
fn forged_decisions_are_refused_whatever_their_shape() {
    let s = setup();
    let (env, serve) = (&s.env, &s.serve);
    let approve = format!("/runs/{}/approve", s.run);
    let before = env.world();
    let good = form(&[("csrf", &s.csrf), ("digest", &s.digest)]);
    let no_csrf = form(&[("digest", &s.digest)]);

    // The anti-forgery token: empty, another's, only in the query string.
    for (body, path, what) in [
        (
            form(&[("csrf", ""), ("digest", &s.digest)]),
            approve.clone(),
            "empty csrf",
        ),
        (
            form(&[("csrf", &"0".repeat(64)), ("digest", &s.digest)]),
            approve.clone(),
            "a made-up csrf",
        ),
        (
            no_csrf.clone(),
            format!("{approve}?csrf={}", s.csrf),
            "csrf in the query string",
        ),
        (
            form(&[("CSRF", &s.csrf), ("digest", &s.digest)]),
            approve.clone(),
            "csrf under another case",
        ),
    ] {
        let r = serve.post(&path, &s.cookie, &body, &[]);
        refused(env, &before, &r, 403, what);
    }
    // Content types a cross-site form or fetch can send without a preflight.
    for kind in [
        "text/plain",
        "multipart/form-data; boundary=x",
        "application/json",
        "application/x-www-form-urlencoded-evil",
        "",
    ] {
        let body = if kind.starts_with("multipart") {
            format!(
                "--x\r\ncontent-disposition: form-data; name=\"csrf\"\r\n\r\n{}\r\n--x\r\ncontent-disposition: form-data; name=\"digest\"\r\n\r\n{}\r\n--x--\r\n",
                s.csrf, s.digest
            )
        } else {
            good.clone()
        };
        let r = serve.post(&approve, &s.cookie, &body, &[("content-type", kind)]);
        refused(env, &before, &r, 400, kind);
    }
    // Origins: `null` (a sandboxed frame, a data: URL), another port of this
    // host (same-site, so the SameSite cookie goes along), the name of this
    // host with a trailing dot, no Origin with a cross-site or same-site
    // fetch.
    let other_port = format!("http://127.0.0.1:{}", serve.port.wrapping_add(1));
    let dotted = format!("http://localhost.:{}", serve.port);
    let slash = format!("{}/", serve.origin());
    for headers in [
        vec![("origin", "null")],
        vec![("origin", "null"), ("sec-fetch-site", "cross-site")],
        vec![
            ("origin", other_port.as_str()),
            ("sec-fetch-site", "same-site"),
        ],
        vec![("origin", dotted.as_str())],
        vec![("origin", "http://evil.example")],
        vec![("origin", slash.as_str()), ("sec-fetch-site", "cross-site")],
        vec![("origin", ""), ("sec-fetch-site", "cross-site")],
        vec![("origin", ""), ("sec-fetch-site", "same-site")],
        vec![("origin", ""), ("sec-fetch-site", "none")],
        vec![
            ("origin", ""),
            ("referer", &format!("{}/runs/x", serve.origin())),
        ],
    ] {
        let r = serve.post(&approve, &s.cookie, &good, &headers);
        refused(env, &before, &r, 403, &format!("{headers:?}"));
    }
    // GET never decides, whatever it says it is.
    for (path, headers) in [
        (format!("{approve}?{good}"), vec![]),
        (
            format!("{approve}?{good}"),
            vec![("x-http-method-override", "POST")],
        ),
        (
            format!("{approve}?{good}&_method=POST"),
            vec![("x-method-override", "POST")],
        ),
    ] {
        let mut all = headers.clone();
        all.push(("cookie", s.cookie.as_str()));
        let r = serve.get(&path, &all);
        assert_ne!(r.status / 100, 2, "{path}");
        assert_ne!(r.status / 100, 3, "{path}");
        refused(env, &before, &r, 405, &path);
    }
    // Nor another method dressed as a POST.
    for method in ["PUT", "PATCH", "DELETE"] {
        let host = serve.host();
        let origin = serve.origin();
        let raw = request(
            method,
            &approve,
            &[
                ("host", &host),
                ("origin", &origin),
                ("cookie", &s.cookie),
                ("content-type", "application/x-www-form-urlencoded"),
                ("x-http-method-override", "POST"),
            ],
            good.as_bytes(),
        );
        let r = serve.send(&raw);
        refused(env, &before, &r, 405, method);
    }

    // The same form as the page sends it is taken: each refusal above was
    // its check's.
    let r = serve.post(&approve, &s.cookie, &good, &[]);
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(env.state(&s.run), "approved");
}

// ---------------------------------------------------------- DNS rebinding

#[test]
fn rebinding_hosts_and_absolute_form_targets_are_refused() {
    let s = setup();
    let (env, serve) = (&s.env, &s.serve);
    let port = serve.port;
    let before = env.world();
    let page = format!("/runs/{}", s.run);
    let approve = format!("/runs/{}/approve", s.run);
    let good = form(&[("csrf", &s.csrf), ("digest", &s.digest)]);

    // Names a rebound DNS record would give, and spellings of this host
    // that are not the address served.
    let hosts = [
        format!("evil.example:{port}"),
        format!("localhost.:{port}"),
        format!("127.0.0.1.:{port}"),
        format!("[::1]:{port}"),
        format!("127.1:{port}"),
        format!("2130706433:{port}"),
        format!("localhost.evil.example:{port}"),
        format!("evil@127.0.0.1:{port}"),
        format!("127.0.0.1:{port}@evil.example"),
        "127.0.0.1".to_string(),
        String::new(),
    ];
    for host in &hosts {
        let r = serve.get(&page, &[("host", host), ("cookie", &s.cookie)]);
        refused(env, &before, &r, 421, host);
        assert!(!r.body.contains(&s.digest), "{host}: the page leaked");
        let origin = format!("http://{host}");
        let r = serve.post(
            &approve,
            &s.cookie,
            &good,
            &[("host", host), ("origin", &origin)],
        );
        refused(env, &before, &r, 421, host);
    }
    // A case variant of this host is this host (DNS names are caseless).
    let upper = format!("LOCALHOST:{port}");
    let r = serve.get(&page, &[("host", &upper), ("cookie", &s.cookie)]);
    assert_eq!(r.status, 200, "{}", r.body);

    // Absolute-form targets: the authority in the request line is the host
    // asked for, whatever `Host` says.
    let cookie = s.cookie.as_str();
    for (target, host) in [
        (format!("http://evil.example:{port}{page}"), serve.host()),
        (
            format!("http://127.0.0.1:{port}{page}"),
            format!("evil.example:{port}"),
        ),
        (format!("http://evil.example{page}"), serve.host()),
    ] {
        let raw = request("GET", &target, &[("host", &host), ("cookie", cookie)], b"");
        let r = serve.send(&raw);
        refused(env, &before, &r, 421, &target);
        let origin = serve.origin();
        let target = target.replace(&page, &approve);
        let raw = request(
            "POST",
            &target,
            &[
                ("host", &host),
                ("origin", &origin),
                ("cookie", cookie),
                ("content-type", "application/x-www-form-urlencoded"),
            ],
            good.as_bytes(),
        );
        let r = serve.send(&raw);
        refused(env, &before, &r, 421, &target);
    }
    // Two `Host` headers: the server must not pick the one it likes.
    for pair in [
        [serve.host(), format!("evil.example:{port}")],
        [format!("evil.example:{port}"), serve.host()],
    ] {
        let raw = request(
            "GET",
            &page,
            &[("host", &pair[0]), ("host", &pair[1]), ("cookie", cookie)],
            b"",
        );
        let r = serve.send(&raw);
        assert!(
            r.status == 400 || r.status == 421,
            "{pair:?}: {} {}",
            r.status,
            r.body
        );
        assert!(!r.body.contains(&s.digest), "{pair:?}: the page leaked");
        env.assert_unchanged(&before);
    }
    // The token is not spent under another name.
    let r = serve.get(
        &serve.token_path,
        &[("host", &format!("evil.example:{port}"))],
    );
    assert_eq!(r.status, 421);
    assert!(r.header("set-cookie").is_none());
}

// -------------------------------------------------------------- decisions

#[test]
fn decisions_out_of_turn_malformed_or_misaddressed_record_nothing() {
    let s = setup();
    let (env, serve) = (&s.env, &s.serve);
    let run = &s.run;
    let before = env.world();
    let csrf = s.csrf.as_str();
    let post =
        |path: &str, fields: &[(&str, &str)]| serve.post(path, &s.cookie, &form(fields), &[]);
    let approve = format!("/runs/{run}/approve");

    // A digest that is not the whole one shown: a prefix, a stale one, one
    // with junk around it, two of them.
    let prefix = &s.digest[..12];
    let almost = format!(
        "{}{}",
        &s.digest[..63],
        if s.digest.ends_with('0') { "1" } else { "0" }
    );
    let other = if s.digest.starts_with('0') { "1" } else { "0" }.repeat(64);
    for (fields, status) in [
        (vec![("csrf", csrf), ("digest", prefix)], 400),
        (vec![("csrf", csrf), ("digest", &other)], 409),
        (vec![("csrf", csrf), ("digest", &almost)], 409),
        (vec![("csrf", csrf), ("digest", "sha256:")], 400),
        (
            vec![("csrf", csrf), ("digest", &format!("{} x", s.digest))],
            400,
        ),
        (
            vec![("csrf", csrf), ("digest", &s.digest), ("digest", &other)],
            400,
        ),
        (
            vec![("csrf", csrf), ("csrf", csrf), ("digest", &s.digest)],
            400,
        ),
    ] {
        let r = post(&approve, &fields);
        refused(env, &before, &r, status, &format!("{fields:?}"));
    }
    // The ids of no run: traversal, encoded separators, a NUL, overlong.
    let long = "r".repeat(4096);
    for id in [
        "..%2f..%2fetc%2fpasswd",
        "%2e%2e",
        "..",
        "r%00",
        "%252e%252e",
        long.as_str(),
        "r-%E2%80%AE",
        "%FF%FE",
    ] {
        let r = serve.get(&format!("/runs/{id}"), &[("cookie", &s.cookie)]);
        refused(env, &before, &r, 404, id);
        r.says("No such run");
        let r = post(
            &format!("/runs/{id}/reject"),
            &[("csrf", csrf), ("reason", "no")],
        );
        assert_eq!(r.status, 404, "{id}: {}", r.body);
        r.says("No such run");
        env.assert_unchanged(&before);
    }
    // Oversized fields, each alone under the body limit.
    let reason = "x".repeat(4097);
    let r = post(
        &format!("/runs/{run}/reject"),
        &[("csrf", csrf), ("reason", &reason)],
    );
    refused(env, &before, &r, 413, "a long reason");
    let big_digest = "a".repeat(60_000);
    let r = post(&approve, &[("csrf", csrf), ("digest", &big_digest)]);
    refused(env, &before, &r, 400, "a long digest");
    let big_csrf = "a".repeat(60_000);
    let r = post(&approve, &[("csrf", &big_csrf), ("digest", &s.digest)]);
    refused(env, &before, &r, 403, "a long csrf");
    // Reject and redirect without a reason, or with only blanks.
    for kind in ["reject", "redirect"] {
        for fields in [
            vec![("csrf", csrf)],
            vec![("csrf", csrf), ("reason", "")],
            vec![("csrf", csrf), ("reason", " \t\r\n ")],
        ] {
            let r = post(&format!("/runs/{run}/{kind}"), &fields);
            refused(env, &before, &r, 400, kind);
        }
    }

    // A reason with control, bidirectional and invisible characters is
    // recorded as given and shown escaped.
    let words = "no\u{202e}txt.exe \u{200b}<script>alert(1)</script>\x1b[31m red \u{2066}x";
    let r = post(
        &format!("/runs/{run}/reject"),
        &[("csrf", csrf), ("reason", words)],
    );
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(env.state(run), "rejected");
    let events = env.events(Some(run));
    let reject = events.iter().find(|e| e["kind"] == "reject").unwrap();
    assert_eq!(reject["data"]["reason"], words, "{reject}");
    assert_eq!(reject["data"]["via"], "browser");
    let page = serve.get(&format!("/runs/{run}"), &[("cookie", &s.cookie)]);
    assert_eq!(page.status, 200);
    assert!(!page.body.contains("<script>alert(1)"), "{}", page.body);
    assert!(!page.body.contains('\u{202e}') && !page.body.contains('\x1b'));
    page.says("&lt;script&gt;alert(1)&lt;/script&gt;");
    page.says("title=\"U+202E\"");

    // A run not in review: decided already, it takes no other decision.
    let before = env.world();
    for (kind, fields) in [
        ("approve", vec![("csrf", csrf), ("digest", &s.digest)]),
        ("reject", vec![("csrf", csrf), ("reason", "again")]),
        ("redirect", vec![("csrf", csrf), ("reason", "again")]),
    ] {
        let r = post(&format!("/runs/{run}/{kind}"), &fields);
        refused(env, &before, &r, 409, kind);
    }
    assert_eq!(env.state(run), "rejected");
}

// --------------------------------------------------------------- resources

#[test]
fn idle_connections_huge_bodies_and_floods_neither_kill_nor_hang_the_server() {
    let s = setup();
    let (env, serve) = (&s.env, &s.serve);
    let before = env.world();
    let approve = format!("/runs/{}/approve", s.run);

    // Slowloris: connections that send half a request and wait.
    let idle: Vec<TcpStream> = (0..200)
        .map(|i| {
            let mut c = serve.connect();
            let half = if i % 2 == 0 {
                format!("GET / HTTP/1.1\r\nhost: {}\r\nx-slow: ", serve.host())
            } else {
                format!(
                    "POST {approve} HTTP/1.1\r\nhost: {}\r\ncookie: {}\r\ncontent-type: application/x-www-form-urlencoded\r\norigin: {}\r\ncontent-length: 1000000\r\n\r\ncsrf=",
                    serve.host(),
                    s.cookie,
                    serve.origin()
                )
            };
            c.write_all(half.as_bytes()).unwrap();
            c
        })
        .collect();
    // Others are still answered.
    let r = serve.get("/", &[("cookie", &s.cookie)]);
    assert_eq!(r.status, 200, "{}", r.body);

    // 100 MB bodies: with the session and without, declared or chunked.
    let chunk = vec![b'a'; 1 << 20];
    for (cookie, chunked) in [
        (s.cookie.as_str(), false),
        ("", false),
        (s.cookie.as_str(), true),
    ] {
        let mut c = serve.connect();
        let length = if chunked {
            "transfer-encoding: chunked".to_string()
        } else {
            format!("content-length: {}", 100 << 20)
        };
        let head = format!(
            "POST {approve} HTTP/1.1\r\nhost: {}\r\norigin: {}\r\ncookie: {cookie}\r\ncontent-type: application/x-www-form-urlencoded\r\n{length}\r\nconnection: close\r\n\r\ncsrf={}&digest={}&reason=",
            serve.host(),
            serve.origin(),
            s.csrf,
            s.digest
        );
        c.write_all(head.as_bytes()).unwrap();
        // The server may refuse and close before all is sent.
        for _ in 0..100 {
            let sent = if chunked {
                c.write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
                    .and_then(|()| c.write_all(&chunk))
                    .and_then(|()| c.write_all(b"\r\n"))
            } else {
                c.write_all(&chunk)
            };
            if sent.is_err() {
                break;
            }
        }
        let _ = c.shutdown(std::net::Shutdown::Write);
        let mut raw = Vec::new();
        let _ = c.read_to_end(&mut raw);
        if !raw.is_empty() {
            let r = parse_reply(&raw);
            let want = if cookie.is_empty() { 401 } else { 413 };
            assert_eq!(r.status, want, "{}", r.body);
            assert_headers(&r, "a 100 MB body");
        }
        env.assert_unchanged(&before);
    }
    // Headers without end.
    let mut c = serve.connect();
    let mut head = format!("GET / HTTP/1.1\r\nhost: {}\r\n", serve.host()).into_bytes();
    for i in 0..20_000 {
        head.extend_from_slice(format!("x-{i}: {}\r\n", "y".repeat(64)).as_bytes());
    }
    let _ = c.write_all(&head);
    let mut raw = Vec::new();
    let _ = c.read_to_end(&mut raw);
    if !raw.is_empty() {
        let status = parse_reply(&raw).status;
        assert!(status == 431 || status == 400, "{status}");
    }

    // A flood of sessions: tokens tried by the thousand open none.
    let tries: Vec<_> = (0..4)
        .map(|t| {
            let port = serve.port;
            std::thread::spawn(move || {
                for i in 0..250 {
                    let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
                    let raw = request(
                        "GET",
                        &format!("/?token={t}{i:063x}"),
                        &[("host", &format!("127.0.0.1:{port}"))],
                        b"",
                    );
                    c.write_all(&raw).unwrap();
                    assert_eq!(read_reply(&mut c).status, 401);
                }
            })
        })
        .collect();
    for t in tries {
        t.join().unwrap();
    }

    // Still serving, still the same session, nothing recorded.
    let r = serve.get(&format!("/runs/{}", s.run), &[("cookie", &s.cookie)]);
    assert_eq!(r.status, 200, "{}", r.body);
    drop(idle);
    env.assert_unchanged(&before);
    let r = serve.post(
        &approve,
        &s.cookie,
        &form(&[("csrf", &s.csrf), ("digest", &s.digest)]),
        &[],
    );
    assert_eq!(r.status, 303, "{}", r.body);
}

// --------------------------------------------------------------- recording

#[test]
fn a_browser_and_a_terminal_deciding_at_once_one_wins_nothing_half_recorded() {
    let env = Env::new();
    let serve = Serve::start(&env);
    let cookie = serve.session();
    for round in 0..3 {
        let (run, _) = env.submitted();
        let page = serve.get(&format!("/runs/{run}"), &[("cookie", &cookie)]);
        let csrf = input_value(&page.body, "csrf");
        let shown = digest(&env, &run);
        let events_before = env.world().events;
        let body = form(&[("csrf", &csrf), ("digest", &shown), ("reason", "browser")]);
        let path = format!("/runs/{run}/approve");
        // Both go at once: the browser's approve, the terminal's reject.
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(2));
        let b = barrier.clone();
        let raw = {
            let host = serve.host();
            let origin = serve.origin();
            request(
                "POST",
                &path,
                &[
                    ("host", &host),
                    ("origin", &origin),
                    ("cookie", &cookie),
                    ("content-type", "application/x-www-form-urlencoded"),
                ],
                body.as_bytes(),
            )
        };
        let port = serve.port;
        let browser = std::thread::spawn(move || {
            let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
            b.wait();
            c.write_all(&raw).unwrap();
            read_reply(&mut c)
        });
        barrier.wait();
        let terminal = env.airlock(&["--json", "reject", &run, "--reason", "terminal"]);
        let browser = browser.join().unwrap();

        let state = env.state(&run);
        let events = env.events(Some(&run));
        let approvals = events.iter().filter(|e| e["kind"] == "approve").count();
        let rejections = events.iter().filter(|e| e["kind"] == "reject").count();
        let browser_won = browser.status == 303;
        let terminal_won = terminal.code == 0;
        assert!(
            browser_won != terminal_won,
            "round {round}: exactly one wins (browser {} {}, terminal {} {})",
            browser.status,
            browser.body,
            terminal.code,
            terminal.stderr
        );
        if browser_won {
            assert_eq!((state.as_str(), approvals, rejections), ("approved", 1, 0));
        } else {
            assert_eq!(browser.status, 409, "{}", browser.body);
            assert_eq!((state.as_str(), approvals, rejections), ("rejected", 0, 1));
        }
        assert_eq!(env.world().events, events_before + 1, "round {round}");
        env.assert_ledger_ok();
    }
}

// -------------------------------------------------------------- rendering

/// The elements and attributes a page of ours may carry; anything else
/// came from the agent's text as markup. Also: one script, ours, by `src`;
/// no `style` element or attribute; no `javascript:` anywhere a URL goes;
/// no raw bidirectional, invisible or control character.
fn assert_inert(html: &str, what: &str) {
    const TAGS: &[&str] = &[
        "!DOCTYPE",
        "html",
        "head",
        "meta",
        "title",
        "link",
        "script",
        "body",
        "header",
        "nav",
        "a",
        "span",
        "div",
        "main",
        "section",
        "h1",
        "h2",
        "h3",
        "p",
        "ul",
        "ol",
        "li",
        "dl",
        "dt",
        "dd",
        "code",
        "pre",
        "small",
        "strong",
        "table",
        "thead",
        "tbody",
        "tr",
        "th",
        "td",
        "time",
        "form",
        "input",
        "label",
        "textarea",
        "button",
        "details",
        "summary",
        "article",
        "blockquote",
        "em",
        "b",
        "i",
        "br",
        "hr",
        "caption",
        "abbr",
        "mark",
        "kbd",
        "var",
        "sup",
        "sub",
        "ins",
        "del",
        "q",
        "cite",
        "figure",
        "figcaption",
        "aside",
        "footer",
        "fieldset",
        "legend",
        "output",
        "progress",
        "meter",
        "colgroup",
        "col",
        "tfoot",
    ];
    const ATTRS: &[&str] = &[
        "lang",
        "charset",
        "name",
        "content",
        "rel",
        "href",
        "src",
        "defer",
        "class",
        "title",
        "id",
        "datetime",
        "method",
        "action",
        "type",
        "value",
        "rows",
        "cols",
        "maxlength",
        "required",
        "open",
        "aria-current",
        "aria-label",
        "role",
        "html",
        "placeholder",
        "colspan",
        "rowspan",
        "scope",
        "for",
        "data-n",
        "data-line",
        "hidden",
    ];
    let mut rest = html;
    while let Some(open) = rest.find('<') {
        let close = rest[open..]
            .find('>')
            .unwrap_or_else(|| panic!("{what}: a tag does not close"))
            + open;
        let tag = &rest[open + 1..close];
        rest = &rest[close + 1..];
        let tag = tag.strip_prefix('/').unwrap_or(tag);
        let name = tag.split_whitespace().next().unwrap_or("");
        assert!(
            TAGS.contains(&name),
            "{what}: element <{name}> came through"
        );
        let mut attrs = tag[name.len()..].to_string();
        while let Some(q) = attrs.find('"') {
            let end = attrs[q + 1..].find('"').expect("quoted value closes") + q + 1;
            let value = attrs[q + 1..end].to_ascii_lowercase();
            assert!(
                !value.trim_start().starts_with("javascript:"),
                "{what}: a javascript: URL in <{tag}>"
            );
            attrs.replace_range(q..=end, " ");
        }
        for attr in attrs
            .split(|c: char| c.is_whitespace() || c == '=')
            .filter(|a| !a.is_empty())
        {
            assert!(
                ATTRS.contains(&attr) && attr != "style",
                "{what}: attribute {attr} on <{name}> came through"
            );
        }
    }
    assert_eq!(
        html.matches("<script").count(),
        1,
        "{what}: one script, ours"
    );
    assert!(
        html.contains("<script src=\"/static/app.js\" defer></script>"),
        "{what}"
    );
    assert!(!html.contains("<style"), "{what}: an inline style element");
    for c in html.chars() {
        assert!(
            !airlock_core::hostile::is_hidden_format(c)
                && (!c.is_control() || c == '\n' || c == '\t'),
            "{what}: raw U+{:04X} in the page",
            c as u32
        );
    }
}

const HOSTILE_BRIEF: &str = concat!(
    "title = \"</title></style><script>alert('t')</script>\\\" onmouseover=\\\"alert(1)\"\n",
    "objective = \"<a href='javascript:alert(2)'>click</a> \\u202Etxt.exe \\u200B\\u2066x\\u2069 \\u0000nul\"\n",
    "non_goals = [\"</textarea></pre><iframe src=//evil>\", \"<!-- open comment\"]\n",
    "touch = [\"src/**\", \"tests/**\"]\nchecks = [\"build\", \"test\"]\n",
    "rollback = \"<base href=//evil.example/>\"\n",
);

#[test]
fn a_hostile_run_renders_inert_and_whole_and_every_response_carries_the_csp() {
    let env = Env::new();
    // A lane that lets the run propose an email (its preview is the
    // agent's words).
    env.write(
        ".airlock/workflow.toml",
        &format!(
            "{}\n[lanes.governed]\nscopes = [\"email:send:*@example.com\", \"email:from:bot@example.com\"]\n",
            common::WORKFLOW
        ),
    );
    env.git(&["add", "-A"]);
    env.git(&["commit", "-q", "-m", "a lane with email"]);
    let (run, wt) = env.start(HOSTILE_BRIEF);
    let action = env.tmp.path().join("announce.toml");
    common::write(
        &action,
        concat!(
            "kind = \"email\"\nname = \"announce\"\n",
            "scopes = [\"email:send:*@example.com\", \"email:from:bot@example.com\"]\n",
            "from = \"bot <bot@example.com>\"\nto = [\"team@example.com\"]\n",
            "subject = \"</summary><script>alert(10)</script>\\u202Ereview\"\n",
            "body = \"<a href=javascript:alert(11)>ok</a>\\u200B\\n\\u001b]8;;http://evil\\u0007link\"\n",
        ),
    );
    let out = env.airlock(&["propose", &run, action.to_str().unwrap()]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    common::write(&wt.join("src/app.sh"), "#!/bin/sh\necho hello, please\n");
    // File names that are markup, a URL scheme, an attribute break.
    for name in [
        "src/</style><script>alert(3)</script>.sh",
        "src/javascript:alert(4)",
        "src/\" onfocus=\"alert(5)\" autofocus=\".txt",
        "src/\u{202e}hs.txt",
    ] {
        common::write(&wt.join(name), "x\n");
    }
    // Contents: a NUL (binary to git), invalid UTF-8, a line whose end is
    // pushed far right behind spaces, a comment that closes the `pre`.
    std::fs::write(wt.join("src/nul.bin"), b"a\0b<script>alert(6)</script>\n").unwrap();
    std::fs::write(wt.join("src/latin1.txt"), b"caf\xe9 \xff\xfe<b>bold</b>\n").unwrap();
    let hidden = format!(
        "echo safe{}; rm -rf ~ # hidden far right\n",
        " ".repeat(2000)
    );
    common::write(&wt.join("src/long.sh"), &hidden);
    common::write(
        &wt.join("src/closing.txt"),
        "</pre></code></span></article><script src=//evil/x.js></script>\n</style><style>body{display:none}</style>\n",
    );
    // Gate output and a traced command the agent controls.
    common::write(
        &wt.join("tests/run.sh"),
        "#!/bin/sh\nprintf '<img src=x onerror=alert(7)>\\342\\200\\256gate\\033[2J\\n'\nsh src/app.sh | grep -q hello\n",
    );
    env.json(
        &[
            "exec",
            &run,
            "--",
            "sh",
            "-c",
            "echo '<script>alert(8)</script>' \"$0\"",
            "\u{202e}arg\"><svg onload=alert(9)>",
        ],
        0,
    );
    env.json(&["check", &run], 0);
    env.json(&["submit", &run], 0);
    let serve = Serve::start(&env);
    let cookie = serve.session();
    let before = env.world();

    let page = serve.get(&format!("/runs/{run}"), &[("cookie", &cookie)]);
    assert_eq!(page.status, 200, "{}", page.body);
    assert_headers(&page, "the run page");
    assert_inert(&page.body, "the run page");
    // Nothing is hidden: each hostile name and line is on the page, as text.
    for shown in [
        "&lt;/title&gt;&lt;/style&gt;&lt;script&gt;alert('t')&lt;/script&gt;&quot; onmouseover=&quot;alert(1)",
        "src/&lt;/style&gt;&lt;script&gt;alert(3)&lt;/script&gt;.sh",
        "src/javascript:alert(4)",
        "src/&quot; onfocus=&quot;alert(5)&quot; autofocus=&quot;.txt",
        "src/<span class=\"esc\" title=\"U+202E\">",
        "&lt;/pre&gt;&lt;/code&gt;&lt;/span&gt;&lt;/article&gt;&lt;script src=//evil/x.js&gt;",
        "&lt;style&gt;body{display:none}&lt;/style&gt;",
        "&lt;img src=x onerror=alert(7)&gt;",
        "&lt;/textarea&gt;&lt;/pre&gt;&lt;iframe src=//evil&gt;",
        "&lt;base href=//evil.example/&gt;",
        "src/nul.bin",
        "src/latin1.txt",
        "&lt;/summary&gt;&lt;script&gt;alert(10)&lt;/script&gt;",
        "&lt;a href=javascript:alert(11)&gt;ok&lt;/a&gt;",
    ] {
        page.says(shown);
    }
    // The line's end pushed right is on the page (coloured: read as text).
    let mut visible = String::new();
    let mut in_tag = false;
    for c in page.body.chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => visible.push(c),
            _ => {}
        }
    }
    assert!(
        visible.contains(&hidden[1..hidden.len() - 1]),
        "the long line, whole"
    );
    // The binary file is said to be one, its bytes not poured out.
    assert!(
        !page.body.contains("alert(6)"),
        "the binary's bytes on the page"
    );

    // The other pages, the same.
    for path in ["/", "/history", "/stats"] {
        let r = serve.get(path, &[("cookie", &cookie)]);
        assert_eq!(r.status, 200, "{path}: {}", r.body);
        assert_headers(&r, path);
        assert_inert(&r.body, path);
    }
    // Every response carries the policy: refusals, errors, 404s, 405s,
    // redirects, static files.
    let replies = [
        serve.get("/", &[]),
        serve.get("/nowhere", &[("cookie", &cookie)]),
        serve.get("/runs/no-such-run", &[("cookie", &cookie)]),
        serve.get("/runs/..%2f..", &[("cookie", &cookie)]),
        serve.get("/runs/%FF%FE", &[("cookie", &cookie)]),
        serve.get("/runs/%FF%FE/approve", &[("cookie", &cookie)]),
        serve.get(&format!("/runs/{run}?since=x"), &[("cookie", &cookie)]),
        serve.get(&format!("/runs/{run}?since=99"), &[("cookie", &cookie)]),
        serve.get(&format!("/runs/{run}/approve"), &[("cookie", &cookie)]),
        serve.get("/static/app.css", &[("cookie", &cookie)]),
        serve.get("/static/app.js", &[("cookie", &cookie)]),
        serve.get("/static/..%2fCargo.toml", &[("cookie", &cookie)]),
        serve.get(&serve.token_path, &[]),
        serve.get("/", &[("host", "evil.example")]),
        serve.post(&format!("/runs/{run}/approve"), &cookie, "csrf=x", &[]),
    ];
    for r in &replies {
        assert_headers(r, &format!("a {} reply", r.status));
        if r.header("content-type")
            .is_some_and(|t| t.starts_with("text/html"))
        {
            assert_inert(&r.body, &format!("the {} page", r.status));
        }
    }
    env.assert_unchanged(&before);
}

#[test]
fn a_huge_diff_gives_a_bounded_page_that_says_what_it_leaves_out() {
    let env = Env::new();
    // A policy that lets the huge change reach review.
    env.write(
        ".airlock/workflow.toml",
        &common::WORKFLOW.replace("max_lines = 1000", "max_lines = 100000000"),
    );
    env.git(&["add", "-A"]);
    env.git(&["commit", "-q", "-m", "no line limit"]);
    let (run, wt) = env.start(common::BRIEF);
    common::write(&wt.join("src/app.sh"), "#!/bin/sh\necho hello, please\n");
    // 200,000 lines in one file, and one line of 4 MB in another.
    let mut big = String::with_capacity(200_000 * 48);
    for i in 0..200_000 {
        big.push_str(&format!(
            "line {i:06} <b>&amp;</b> \u{202e}padding padding\n"
        ));
    }
    common::write(&wt.join("src/big.txt"), &big);
    // Coloured code costs more markup per byte: a number in every token.
    let mut dense = String::with_capacity(100_000 * 40);
    for _ in 0..100_000 {
        dense.push_str("1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9\n");
    }
    common::write(&wt.join("src/0dense.rs"), &dense);
    common::write(
        &wt.join("src/wide.txt"),
        &format!("{}\n", "w".repeat(4 << 20)),
    );
    env.json(&["check", &run], 0);
    env.json(&["submit", &run], 0);
    let serve = Serve::start(&env);
    let cookie = serve.session();
    let page = serve.get(&format!("/runs/{run}"), &[("cookie", &cookie)]);
    assert_eq!(page.status, 200);
    assert_inert(&page.body, "the huge run page");
    // Beside the approve form: the page did not show it all.
    let form = page.body.find("/approve\"").expect("the approve form");
    let warned = page
        .body
        .find("This page does not show the whole diff")
        .expect("the warning by the decision");
    assert!(warned < form, "the warning comes before the form");
    assert!(
        page.body.len() < 4 << 20,
        "the page is {} bytes for a {} byte diff",
        page.body.len(),
        big.len() + dense.len() + (4 << 20)
    );
    // What is left out is said, with where to read it whole.
    page.says("src/big.txt")
        .says("src/wide.txt")
        .says("src/0dense.rs");
    // The first file's first lines are there, coloured.
    page.says("<span class=\"hl-n\">1</span> <span class=\"hl-n\">2</span>");
    page.says("not shown");
    page.says(&format!("airlock show {run}"));
    // The small file is there whole.
    page.says("+echo hello, please");
    // And the server still answers.
    assert_eq!(serve.get("/", &[("cookie", &cookie)]).status, 200);
}

/// A diff line's end pushed out of sight (`safe();` then thousands of
/// spaces, then what runs) must wrap into view as a terminal wraps it, not
/// sit right of a scrolled box: the stylesheet's rule for diff lines says
/// `pre-wrap` and breaks anywhere, and no rule of it hides or clips text.
#[test]
fn the_stylesheet_wraps_diff_lines_and_hides_no_text() {
    let env = Env::new();
    let serve = Serve::start(&env);
    let cookie = serve.session();
    let css = serve.get("/static/app.css", &[("cookie", &cookie)]);
    assert_eq!(css.status, 200);
    assert_headers(&css, "the stylesheet");
    let rules: Vec<(&str, &str)> = css
        .body
        .split('}')
        .filter_map(|r| r.split_once('{'))
        .map(|(sel, body)| {
            // Drop comments before the selector.
            let sel = sel.rsplit("*/").next().unwrap_or(sel).trim();
            (sel, body.trim())
        })
        .collect();
    let line_rule = rules
        .iter()
        .find(|(sel, _)| *sel == "pre.diff .l")
        .unwrap_or_else(|| panic!("no rule for diff lines in:\n{}", css.body))
        .1;
    assert!(line_rule.contains("white-space: pre-wrap"), "{line_rule}");
    assert!(line_rule.contains("overflow-wrap: anywhere"), "{line_rule}");
    for (sel, body) in &rules {
        // Only a file the reviewer folds (app.js) is hidden.
        if body.contains("display: none") {
            assert_eq!(
                *sel, "article.file.collapsed pre.diff",
                "{sel} {{ {body} }}"
            );
        }
        for hiding in [
            "visibility: hidden",
            "font-size: 0",
            "opacity: 0",
            "text-overflow",
        ] {
            assert!(!body.contains(hiding), "{sel} {{ {body} }}");
        }
    }
}

/// `--open` must not hand the token to other users of the machine: a
/// program's arguments are world-readable (`/proc/PID/cmdline`), and a
/// local user watching for `xdg-open http://…?token=` spends the token
/// before the browser starts, and owns the session. The browser gets a
/// page private to this user that leads on to the link; it goes when the
/// server stops.
#[test]
fn open_gives_the_browser_no_token_in_its_arguments() {
    use std::os::unix::fs::PermissionsExt;
    let env = Env::new();
    let seen = env.tmp.path().join("browser-argv");
    let browser = env.tmp.path().join("browser.sh");
    common::write(
        &browser,
        &format!(
            "#!/bin/sh\nprintf '%s\\n' \"$0\" \"$@\" > {seen}.tmp && mv {seen}.tmp {seen}\n",
            seen = seen.display()
        ),
    );
    std::fs::set_permissions(&browser, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut child = env
        .cmd(&["serve", "--port", "0", "--json", "--open"])
        .env("BROWSER", &browser)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let v: Value = serde_json::from_str(&line).unwrap();
    let url = v["url"].as_str().unwrap().to_string();
    let token = url.split("token=").nth(1).unwrap().to_string();
    let port = v["listen"]
        .as_str()
        .unwrap()
        .rsplit_once(':')
        .unwrap()
        .1
        .parse()
        .unwrap();
    let serve = Serve {
        child,
        token_path: url[url.find("/?").unwrap()..].to_string(),
        token: token.clone(),
        port,
    };
    // The browser script writes what it was given; wait for it (bounded).
    for _ in 0..500 {
        if seen.exists() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let argv = std::fs::read_to_string(&seen).expect("the browser was started");
    assert!(
        !argv.contains(&token),
        "the token in the browser's argv: {argv}"
    );
    let page = argv.lines().nth(1).unwrap().to_string();
    let path = std::path::PathBuf::from(page.strip_prefix("file://").expect("a file URL"));
    // Only this user can read the page, and it leads to the link.
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&path), 0o600, "{}", path.display());
    assert_eq!(mode(path.parent().unwrap()), 0o700);
    let html = std::fs::read_to_string(&path).unwrap();
    assert!(html.contains(&format!("url={url}")), "{html}");
    // The link still works, once, for the browser that follows the page.
    assert!(
        serve
            .session()
            .starts_with(&format!("airlock_session_{port}="))
    );
    let (code, stderr) = serve.stop();
    assert_eq!(code, Some(0), "{stderr}");
    assert!(!path.exists(), "the page outlived the server");
    assert!(!stderr.contains(&token), "{stderr}");
}

/// A connection that sent half a request must not keep the server from
/// stopping: SIGTERM ends it (requests under way finish, a request never
/// finished is not waited for).
#[test]
fn a_half_sent_request_does_not_keep_the_server_from_stopping() {
    let env = Env::new();
    let serve = Serve::start(&env);
    let cookie = serve.session();
    let mut half = serve.connect();
    half.write_all(
        format!(
            "GET / HTTP/1.1\r\nhost: {}\r\ncookie: {cookie}\r\nx-slow: ",
            serve.host()
        )
        .as_bytes(),
    )
    .unwrap();
    let mut body = serve.connect();
    body.write_all(
        format!(
            "POST /runs/x/reject HTTP/1.1\r\nhost: {}\r\ncookie: {cookie}\r\norigin: {}\r\ncontent-type: application/x-www-form-urlencoded\r\ncontent-length: 100\r\n\r\ncsrf=",
            serve.host(),
            serve.origin()
        )
        .as_bytes(),
    )
    .unwrap();
    // The server answers others meanwhile.
    assert_eq!(serve.get("/", &[("cookie", &cookie)]).status, 200);
    let mut serve = serve;
    // SAFETY: kill(2) on the child this test started.
    unsafe { libc::kill(serve.child.id() as libc::pid_t, libc::SIGTERM) };
    // Bounded wait (a guard, not a measurement): it must exit by itself.
    let mut status = None;
    for _ in 0..1500 {
        if let Some(s) = serve.child.try_wait().unwrap() {
            status = Some(s);
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let status =
        status.expect("serve still running 30 s after SIGTERM, held by a half-sent request");
    assert_eq!(status.code(), Some(0));
    let mut stderr = String::new();
    serve
        .child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(stderr.contains("stopped by SIGTERM"), "{stderr}");
    drop((half, body));
}

/// An idle connection (opened, nothing sent, or half a request head) is
/// closed by the server once the header read timeout passes (shortened
/// here through the debug builds' test variable), while another client is
/// answered: connections cannot be held open forever to exhaust it.
#[test]
fn an_idle_connection_is_closed_by_the_server_while_others_are_answered() {
    let env = Env::new();
    let serve = Serve::start_with(&env, &[("AIRLOCK_TEST_HEADER_TIMEOUT_MS", "500")]);
    let cookie = serve.session();
    let mut silent = serve.connect();
    let mut half = serve.connect();
    half.write_all(format!("GET / HTTP/1.1\r\nhost: {}\r\nx-slow: ", serve.host()).as_bytes())
        .unwrap();
    assert_eq!(serve.get("/", &[("cookie", &cookie)]).status, 200);
    // The server ends both: a read sees the end of the stream (or a reset)
    // well before the 60 s guard `connect` sets, which would fail here.
    for (what, stream) in [("silent", &mut silent), ("half a head", &mut half)] {
        let mut got = Vec::new();
        match stream.read_to_end(&mut got) {
            Ok(_) => {}
            Err(e) => assert!(
                e.kind() == std::io::ErrorKind::ConnectionReset,
                "{what}: the server held the connection ({e}); got {:?}",
                String::from_utf8_lossy(&got)
            ),
        }
    }
    // And it still serves.
    assert_eq!(serve.get("/", &[("cookie", &cookie)]).status, 200);
    let (code, stderr) = serve.stop();
    assert_eq!(code, Some(0), "{stderr}");
}

/// The queue and the history are served a page at a time (`?page=N`); a
/// page past the end says so, a page number that is none is refused.
#[test]
fn pages_of_the_queue_and_the_history_and_page_numbers_that_are_none() {
    let env = Env::new();
    let serve = Serve::start(&env);
    let cookie = serve.session();
    assert_eq!(serve.get("/", &[("cookie", &cookie)]).status, 200);
    for path in ["/?page=1", "/?page=2", "/history?page=1", "/history?page=5"] {
        assert_eq!(
            serve.get(path, &[("cookie", &cookie)]).status,
            200,
            "{path}"
        );
    }
    serve
        .get("/?page=2", &[("cookie", &cookie)])
        .says("There is no page 2");
    for path in ["/?page=0", "/history?page=x", "/history?page=-1"] {
        let r = serve.get(path, &[("cookie", &cookie)]);
        assert_eq!(r.status, 400, "{path}: {}", r.body);
        r.says("`page` is not a page number");
    }
    let (code, stderr) = serve.stop();
    assert_eq!(code, Some(0), "{stderr}");
}
