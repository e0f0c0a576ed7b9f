//! `airlock serve` over HTTP: the real binary (`serve --port 0 --json`) on a
//! repository with a real submitted run, spoken to with a real HTTP client
//! (ureq). Each refusal is an attack tried: the test asserts the status,
//! the page's message, and that the run's state and the ledger are
//! unchanged (`Env::world`).

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};

use common::web::{self, CSP, Reply, digest, form, input_value, request};
use common::{Env, write};
use serde_json::Value;

/// A running `airlock serve`, stopped (SIGTERM, then killed) when dropped.
struct Serve {
    child: Child,
    /// The one-time URL.
    url: String,
    /// `http://127.0.0.1:PORT`.
    base: String,
    port: u16,
}

impl Serve {
    fn start(env: &Env) -> Serve {
        let started = web::start_serve(env, &[]);
        Serve {
            child: started.child,
            url: started.url,
            base: format!("http://{}", started.listen),
            port: started.port,
        }
    }

    /// SIGTERM; returns the exit code and stderr.
    fn stop(self) -> (Option<i32>, String) {
        self.stop_with(libc::SIGTERM)
    }

    /// Sends `signal`; returns the exit code and stderr.
    fn stop_with(mut self, signal: libc::c_int) -> (Option<i32>, String) {
        let pid = self.child.id() as libc::pid_t;
        // SAFETY: kill(2) on the child this test started.
        unsafe { libc::kill(pid, signal) };
        let status = self.child.wait().unwrap();
        let mut stderr = String::new();
        if let Some(mut e) = self.child.stderr.take() {
            std::io::Read::read_to_string(&mut e, &mut stderr).unwrap();
        }
        (status.code(), stderr)
    }

    /// Spends the token; returns the session's `Cookie` header value.
    fn session(&self) -> String {
        let r = get(&self.url, &[]);
        assert_eq!(r.status, 303, "{}", r.body);
        assert_eq!(r.header("location"), Some("/"));
        let set = r
            .header("set-cookie")
            .expect("a session cookie")
            .to_string();
        let name = format!("airlock_session_{}=", self.port);
        assert!(set.starts_with(&name), "{set}");
        assert!(
            set.contains("; HttpOnly")
                && set.contains("; SameSite=Strict")
                && set.contains("; Path=/"),
            "{set}"
        );
        assert!(!set.contains("Secure"), "{set}");
        set.split(';').next().unwrap().to_string()
    }

    fn origin(&self) -> String {
        self.base.clone()
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

trait ReadUntilUrl {
    /// Reads lines into `out` until one carries the one-time URL or the
    /// stream ends.
    fn read_to_string_until_url(self, out: &mut String);
}

impl<R: std::io::Read> ReadUntilUrl for BufReader<R> {
    fn read_to_string_until_url(mut self, out: &mut String) {
        loop {
            let mut line = String::new();
            if self.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            out.push_str(&line);
            if line.contains("token=") {
                return;
            }
        }
    }
}

fn get(url: &str, headers: &[(&str, &str)]) -> Reply {
    request("GET", url, headers, None)
}

/// A form POST as a browser on the review page sends it.
fn post_form(
    serve: &Serve,
    path: &str,
    cookie: &str,
    fields: &[(&str, &str)],
    extra: &[(&str, &str)],
) -> Reply {
    let body = form(fields);
    let origin = serve.origin();
    let mut headers = vec![
        ("cookie", cookie),
        ("content-type", "application/x-www-form-urlencoded"),
    ];
    // A test that gives its own Origin (or none) says so in `extra`.
    if !extra
        .iter()
        .any(|(k, _)| *k == "origin" || *k == "no-origin")
    {
        headers.push(("origin", origin.as_str()));
    }
    headers.extend(extra.iter().filter(|(k, _)| *k != "no-origin"));
    request(
        "POST",
        &format!("{}{path}", serve.base),
        &headers,
        Some(body.into_bytes()),
    )
}

const SECURITY_HEADERS: [(&str, &str); 7] = [
    ("content-security-policy", CSP),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "no-referrer"),
    ("cache-control", "no-store"),
    ("x-frame-options", "DENY"),
    ("cross-origin-opener-policy", "same-origin"),
    ("cross-origin-resource-policy", "same-origin"),
];

fn assert_security_headers(r: &Reply) {
    for (name, value) in SECURITY_HEADERS {
        assert_eq!(
            r.header(name),
            Some(value),
            "{name} on a {} reply",
            r.status
        );
    }
}

#[test]
fn the_token_opens_one_session_and_nothing_is_served_without_it() {
    let env = Env::new();
    let (run, _) = env.submitted();
    let serve = Serve::start(&env);
    let before = env.world();

    // Without a session: 401 for every path, static files included.
    for path in [
        "/",
        &format!("/runs/{run}"),
        "/history",
        "/stats",
        "/static/app.css",
        "/nowhere",
    ] {
        let r = get(&format!("{}{path}", serve.base), &[]);
        assert_eq!(r.status, 401, "{path}: {}", r.body);
        r.says("No session");
        assert_security_headers(&r);
        assert!(
            !r.body.contains(&run),
            "{path} showed the run without a session"
        );
    }
    // A HEAD (a link preview) does not spend the token.
    let head = request("HEAD", &serve.url, &[], None);
    assert_eq!(head.status, 401);
    assert!(head.header("set-cookie").is_none());
    // A guessed token opens nothing, and does not spend the real one.
    let guessed = format!("{}/?token={}", serve.base, "0".repeat(64));
    get(&guessed, &[]).says("This link does not open a session");

    let cookie = serve.session();
    // The token is spent: used again, it opens nothing.
    let again = get(&serve.url, &[]);
    assert_eq!(again.status, 401);
    again.says("This link does not open a session");
    assert!(again.header("set-cookie").is_none());
    // Opened again in the browser that holds the session, the link leads
    // to the queue, and opens no second session.
    let back = get(&serve.url, &[("cookie", &cookie)]);
    assert_eq!(back.status, 303);
    assert_eq!(back.header("location"), Some("/"));
    assert!(back.header("set-cookie").is_none());
    // A made-up cookie is no session.
    let forged = format!("airlock_session_{}={}", serve.port, "ab".repeat(32));
    assert_eq!(
        get(&format!("{}/", serve.base), &[("cookie", &forged)]).status,
        401
    );

    let queue = get(&format!("{}/", serve.base), &[("cookie", &cookie)]);
    assert_eq!(queue.status, 200, "{}", queue.body);
    queue.says(&run);
    assert_security_headers(&queue);
    // `localhost` names this server too.
    let local = get(
        &format!("{}/", serve.base),
        &[
            ("cookie", &cookie),
            ("host", &format!("localhost:{}", serve.port)),
        ],
    );
    assert_eq!(local.status, 200);

    let page = get(
        &format!("{}/runs/{run}", serve.base),
        &[("cookie", &cookie)],
    );
    assert_eq!(page.status, 200, "{}", page.body);
    page.says(&run).says(&digest(&env, &run));

    // With the session, the pages' own assets; nothing else under /static.
    let css = get(
        &format!("{}/static/app.css", serve.base),
        &[("cookie", &cookie)],
    );
    assert_eq!(css.status, 200);
    assert!(css.header("content-type").unwrap().starts_with("text/css"));
    assert_security_headers(&css);
    let none = get(
        &format!("{}/static/..%2FCargo.toml", serve.base),
        &[("cookie", &cookie)],
    );
    assert_eq!(none.status, 404);
    none.says("No such page");

    // Reading changes nothing.
    env.assert_unchanged(&before);
    let (code, stderr) = serve.stop();
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("stopped by SIGTERM"), "{stderr}");
}

#[test]
fn an_approval_in_the_browser_is_the_engine_s_bound_to_the_digest_shown() {
    let env = Env::new();
    let (run, _) = env.submitted();
    let serve = Serve::start(&env);
    let cookie = serve.session();
    let page = get(
        &format!("{}/runs/{run}", serve.base),
        &[("cookie", &cookie)],
    );
    let csrf = input_value(&page.body, "csrf");
    let shown = digest(&env, &run);

    let r = post_form(
        &serve,
        &format!("/runs/{run}/approve"),
        &cookie,
        &[
            ("csrf", &csrf),
            ("digest", &shown),
            ("reason", "read every line"),
        ],
        &[],
    );
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(r.header("location"), Some(format!("/runs/{run}").as_str()));
    assert_security_headers(&r);
    // The next page says what happened, once.
    let after = get(
        &format!("{}/runs/{run}", serve.base),
        &[("cookie", &cookie)],
    );
    after.says(&format!("Approved run {run}"));
    let later = get(
        &format!("{}/runs/{run}", serve.base),
        &[("cookie", &cookie)],
    );
    assert!(!later.body.contains(&format!("Approved run {run}")));

    assert_eq!(env.state(&run), "approved");
    // The same form again: the run is no longer in review.
    let before = env.world();
    let again = post_form(
        &serve,
        &format!("/runs/{run}/approve"),
        &cookie,
        &[("csrf", &csrf), ("digest", &shown)],
        &[],
    );
    assert_eq!(again.status, 409, "{}", again.body);
    again.says(&format!("run {run} is approved"));
    env.assert_unchanged(&before);
    let events = env.events(Some(&run));
    let approve = events
        .iter()
        .find(|e| e["kind"] == "approve")
        .unwrap_or_else(|| panic!("no approve event: {events:?}"));
    let data = &approve["data"];
    assert_eq!(data["via"], "browser", "{approve}");
    assert_eq!(data["reason"], "read every line");
    assert!(
        data["digest"].as_str().unwrap().ends_with(&shown),
        "{approve}"
    );
    assert!(data["by"].is_object(), "{approve}");
    let session = data["session"].as_str().expect("the session's id");
    assert!(!session.is_empty());
    // The session's id is neither the token nor the cookie.
    assert!(!serve.url.contains(session) || session.len() < 12);
    assert!(!cookie.contains(session) || session.len() < 12);
    assert!(
        !approve
            .to_string()
            .contains(cookie.split('=').nth(1).unwrap())
    );
    assert!(
        !approve
            .to_string()
            .contains(serve.url.split("token=").nth(1).unwrap())
    );
    env.assert_ledger_ok();
}

#[test]
fn forged_and_cross_origin_decisions_are_refused_and_record_nothing() {
    let env = Env::new();
    let (run, _) = env.submitted();
    let serve = Serve::start(&env);
    let cookie = serve.session();
    let page = get(
        &format!("{}/runs/{run}", serve.base),
        &[("cookie", &cookie)],
    );
    let csrf = input_value(&page.body, "csrf");
    let shown = digest(&env, &run);
    let approve = format!("/runs/{run}/approve");
    let before = env.world();
    let refused = |r: &Reply, status: u16, says: &str| {
        assert_eq!(r.status, status, "{}", r.body);
        r.says(says);
        assert_security_headers(r);
        env.assert_unchanged(&before);
        assert_eq!(env.state(&run), "in_review");
    };

    // A forged form without the anti-forgery token.
    let r = post_form(&serve, &approve, &cookie, &[("digest", &shown)], &[]);
    refused(&r, 403, "anti-forgery token is missing or wrong");
    // A wrong one.
    let wrong = "0".repeat(64);
    let r = post_form(
        &serve,
        &approve,
        &cookie,
        &[("csrf", &wrong), ("digest", &shown)],
        &[],
    );
    refused(&r, 403, "anti-forgery token is missing or wrong");
    // The right token from another site (Origin).
    let fields = [("csrf", csrf.as_str()), ("digest", shown.as_str())];
    let r = post_form(
        &serve,
        &approve,
        &cookie,
        &fields,
        &[("origin", "http://evil.example")],
    );
    refused(&r, 403, "did not come from the review pages");
    assert!(r.body.contains("http://evil.example"));
    // The same host on another port is another origin.
    let other = format!("http://127.0.0.1:{}", serve.port.wrapping_add(1));
    let r = post_form(&serve, &approve, &cookie, &fields, &[("origin", &other)]);
    refused(&r, 403, "did not come from the review pages");
    // No Origin, and the browser says the request is cross-site.
    let r = post_form(
        &serve,
        &approve,
        &cookie,
        &fields,
        &[("no-origin", ""), ("sec-fetch-site", "cross-site")],
    );
    refused(&r, 403, "did not come from the review pages");
    // No Origin and nothing else.
    let r = post_form(&serve, &approve, &cookie, &fields, &[("no-origin", "")]);
    refused(&r, 403, "carries no Origin");
    // Without a session, even with the right token and origin.
    let r = post_form(&serve, &approve, "nothing=here", &fields, &[]);
    refused(&r, 401, "No session");
    // A GET that tries to change state.
    let url = format!("{}{approve}?{}", serve.base, form(&fields));
    let r = get(&url, &[("cookie", &cookie)]);
    refused(&r, 405, "Only the review pages' forms decide");
    // Not a form.
    let r = request(
        "POST",
        &format!("{}{approve}", serve.base),
        &[
            ("cookie", &cookie),
            ("origin", &serve.origin()),
            ("content-type", "application/json"),
        ],
        Some(format!(r#"{{"csrf":"{csrf}","digest":"{shown}"}}"#).into_bytes()),
    );
    refused(&r, 400, "a decision is a form");
    // A field given twice.
    let r = post_form(
        &serve,
        &approve,
        &cookie,
        &[("csrf", &csrf), ("digest", &shown), ("digest", &wrong)],
        &[],
    );
    refused(&r, 400, "given twice");

    // Without Origin, a same-origin fetch is taken: each refusal above was
    // its check's, not the request's.
    let r = post_form(
        &serve,
        &approve,
        &cookie,
        &fields,
        &[("no-origin", ""), ("sec-fetch-site", "same-origin")],
    );
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(env.state(&run), "approved");
}

#[test]
fn a_proof_that_changed_while_the_page_was_open_is_not_approved() {
    let env = Env::new();
    let (run, wt) = env.submitted();
    let serve = Serve::start(&env);
    let cookie = serve.session();
    let page = get(
        &format!("{}/runs/{run}", serve.base),
        &[("cookie", &cookie)],
    );
    let csrf = input_value(&page.body, "csrf");
    let shown = digest(&env, &run);
    page.says(&shown);

    // The run is resubmitted after the page loaded.
    env.json(&["redirect", &run, "--reason", "more"], 0);
    write(
        &wt.join("src/app.sh"),
        "#!/bin/sh\necho hello, please and thanks\n",
    );
    env.json(&["check", &run], 0);
    env.json(&["submit", &run], 0);
    let current = digest(&env, &run);
    assert_ne!(shown, current);
    let before = env.world();

    let r = post_form(
        &serve,
        &format!("/runs/{run}/approve"),
        &cookie,
        &[("csrf", &csrf), ("digest", &shown)],
        &[],
    );
    assert_eq!(r.status, 409, "{}", r.body);
    r.says("the proof changed while the page was open")
        .says(&format!("the page showed proof {shown}"))
        .says(&current)
        .says("Reload");
    env.assert_unchanged(&before);
    assert_eq!(env.state(&run), "in_review");

    // A digest that is not whole is no binding either.
    let short = &current[..12];
    let r = post_form(
        &serve,
        &format!("/runs/{run}/approve"),
        &cookie,
        &[("csrf", &csrf), ("digest", short)],
        &[],
    );
    assert_eq!(r.status, 400, "{}", r.body);
    r.says("not a whole sha256");
    let r = post_form(
        &serve,
        &format!("/runs/{run}/approve"),
        &cookie,
        &[("csrf", &csrf)],
        &[],
    );
    assert_eq!(r.status, 400, "{}", r.body);
    r.says("carries no `digest`");
    env.assert_unchanged(&before);

    // Redirected from the browser: a new round, recorded as the browser's.
    let r = post_form(
        &serve,
        &format!("/runs/{run}/redirect"),
        &cookie,
        &[("csrf", &csrf), ("reason", "split the change in two")],
        &[],
    );
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(env.state(&run), "staged");
    let events = env.events(Some(&run));
    let e = events
        .iter()
        .rev()
        .find(|e| e["kind"] == "redirect")
        .unwrap();
    assert_eq!(e["data"]["via"], "browser", "{e}");
    assert_eq!(e["data"]["round"], 3, "{e}");
    assert_eq!(e["data"]["reason"], "split the change in two");
}

#[test]
fn oversized_unknown_and_incomplete_requests_are_refused() {
    let env = Env::new();
    let (run, _) = env.submitted();
    let serve = Serve::start(&env);
    let cookie = serve.session();
    let page = get(
        &format!("{}/runs/{run}", serve.base),
        &[("cookie", &cookie)],
    );
    let csrf = input_value(&page.body, "csrf");
    let before = env.world();
    let reject = format!("/runs/{run}/reject");

    // A body over 64 KiB.
    let huge = "x".repeat(70 * 1024);
    let r = post_form(
        &serve,
        &reject,
        &cookie,
        &[("csrf", &csrf), ("reason", &huge)],
        &[],
    );
    assert_eq!(r.status, 413, "{}", r.body);
    r.says("the form is too large").says("over 64 KiB");
    env.assert_unchanged(&before);
    // A reason over 4 KiB in a small body.
    let long = "y".repeat(4 * 1024 + 1);
    let r = post_form(
        &serve,
        &reject,
        &cookie,
        &[("csrf", &csrf), ("reason", &long)],
        &[],
    );
    assert_eq!(r.status, 413, "{}", r.body);
    r.says("the reason has 4097 bytes");
    env.assert_unchanged(&before);
    // No reason for a reject or a redirect.
    for kind in ["reject", "redirect"] {
        let path = format!("/runs/{run}/{kind}");
        let r = post_form(
            &serve,
            &path,
            &cookie,
            &[("csrf", &csrf), ("reason", "  ")],
            &[],
        );
        assert_eq!(r.status, 400, "{kind}: {}", r.body);
        r.says("reason");
        env.assert_unchanged(&before);
    }
    // An unknown run, to read or to decide.
    let r = get(
        &format!("{}/runs/no-such-run-0000", serve.base),
        &[("cookie", &cookie)],
    );
    assert_eq!(r.status, 404, "{}", r.body);
    r.says("no-such-run-0000");
    let r = post_form(
        &serve,
        "/runs/no-such-run-0000/reject",
        &cookie,
        &[("csrf", &csrf), ("reason", "gone")],
        &[],
    );
    assert_eq!(r.status, 404, "{}", r.body);
    // An id that is not an id never reaches the store.
    for bad in ["..%2F..%2Fetc", "a%00b", "%3Cscript%3E"] {
        let r = get(
            &format!("{}/runs/{bad}", serve.base),
            &[("cookie", &cookie)],
        );
        assert_eq!(r.status, 404, "{bad}: {}", r.body);
        r.says("No such run");
        assert!(!r.body.contains("<script>"));
    }
    // A bad round number.
    let r = get(
        &format!("{}/runs/{run}?since=x", serve.base),
        &[("cookie", &cookie)],
    );
    assert_eq!(r.status, 400, "{}", r.body);
    env.assert_unchanged(&before);

    // The same reject with a reason goes through.
    let r = post_form(
        &serve,
        &reject,
        &cookie,
        &[("csrf", &csrf), ("reason", "not this way")],
        &[],
    );
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(env.state(&run), "rejected");
    let events = env.events(Some(&run));
    let e = events.iter().find(|e| e["kind"] == "reject").unwrap();
    assert_eq!(e["data"]["via"], "browser", "{e}");
    assert_eq!(e["data"]["reason"], "not this way");
}

#[test]
fn a_request_for_another_host_is_refused_dns_rebinding() {
    let env = Env::new();
    let (run, _) = env.submitted();
    let serve = Serve::start(&env);
    let cookie = serve.session();
    let page = get(
        &format!("{}/runs/{run}", serve.base),
        &[("cookie", &cookie)],
    );
    let csrf = input_value(&page.body, "csrf");
    let shown = digest(&env, &run);
    let before = env.world();
    let evil = format!("evil.example:{}", serve.port);
    let other_port = format!("127.0.0.1:{}", serve.port.wrapping_add(1));

    for host in [
        evil.as_str(),
        other_port.as_str(),
        "127.0.0.1",
        "localhost.evil.example",
    ] {
        // A page of a name rebound to 127.0.0.1 reads...
        let r = get(
            &format!("{}/runs/{run}", serve.base),
            &[("cookie", &cookie), ("host", host)],
        );
        assert_eq!(r.status, 421, "{host}: {}", r.body);
        r.says("This server does not answer for that host");
        assert!(!r.body.contains(&shown), "{host}: the page leaked");
        assert_security_headers(&r);
        // ...or decides, with its own origin and everything else right.
        let r = post_form(
            &serve,
            &format!("/runs/{run}/approve"),
            &cookie,
            &[("csrf", &csrf), ("digest", &shown)],
            &[("host", host), ("origin", &format!("http://{host}"))],
        );
        assert_eq!(r.status, 421, "{host}: {}", r.body);
        env.assert_unchanged(&before);
    }
    // The token, too, is refused under another name, and not spent there.
    let fresh = Serve::start(&env);
    let r = get(
        &fresh.url,
        &[("host", &format!("evil.example:{}", fresh.port))],
    );
    assert_eq!(r.status, 421);
    fresh.session();
    let (code, stderr) = fresh.stop_with(libc::SIGINT);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("stopped by SIGINT"), "{stderr}");
}

#[test]
fn serve_refuses_a_port_in_use_and_addresses_beyond_loopback() {
    let env = Env::new();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let before = env.world();

    let out = env.fails(&["serve", "--port", &port], 3);
    assert!(
        out.stderr.contains(&format!("port {port} is in use")),
        "{}",
        out.stderr
    );
    // This test's own process holds it, and /proc says so.
    assert!(
        out.stderr
            .contains(&format!("(pid {})", std::process::id())),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("--port"), "{}", out.stderr);
    let e = env.json_error(&["serve", "--port", &port], 3);
    assert_eq!(e["code"], "port-in-use", "{e}");

    let out = env.fails(&["serve", "--port", "0.0.0.0:7878"], 1);
    assert!(out.stderr.contains("beyond this machine"), "{}", out.stderr);
    assert!(
        out.stderr.contains("--listen 0.0.0.0:7878"),
        "{}",
        out.stderr
    );
    let e = env.json_error(&["serve", "--port", "0.0.0.0:7878"], 1);
    assert_eq!(e["code"], "listen-required", "{e}");

    for args in [
        &["serve", "--listen", "review.example"][..],
        &["serve", "--port", "http"],
        &["serve", "--port", "65536"],
        &["serve", "--listen", "127.0.0.1:1", "--port", "2"],
    ] {
        let out = env.fails(args, 2);
        assert!(
            out.stderr.contains("hint: give `--port` a number"),
            "{args:?}: {}",
            out.stderr
        );
        let mut json = vec!["--json"];
        json.extend_from_slice(args);
        let e = env.airlock(&json).expect_json(args, 2);
        assert_eq!(e["error"]["code"], "invalid-address", "{args:?}: {e}");
    }
    // From inside a run (an agent's command): refused before it listens.
    // (Spawned and read line by line: a server that started anyway is
    // killed, so a regression fails instead of hanging.)
    let mut child = env
        .cmd(&["--json", "serve", "--port", "0"])
        .env("AIRLOCK_RUN", "x")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut said = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_to_string_until_url(&mut said);
    let served = said.contains("token=");
    if served {
        let _ = child.kill();
    }
    let status = child.wait().unwrap();
    assert!(!served, "serve started inside a run: {said}");
    assert_eq!(status.code(), Some(1), "{said}");
    let v: Value = serde_json::from_str(&said).unwrap();
    assert_eq!(v["error"]["code"], "inside-run", "{v}");
    // An address that is not this machine's.
    let out = env.fails(&["serve", "--listen", "192.0.2.1:0"], 3);
    assert!(
        out.stderr.contains("cannot listen on 192.0.2.1:0"),
        "{}",
        out.stderr
    );
    let e = env.json_error(&["serve", "--listen", "192.0.2.1:0"], 3);
    assert_eq!(e["code"], "listen-failed", "{e}");
    env.assert_unchanged(&before);
    drop(taken);
}

#[test]
fn open_starts_the_browser_with_the_link_or_says_it_cannot() {
    let env = Env::new();
    let seen = env.tmp.path().join("browser-saw");
    let browser = env.tmp.path().join("browser.sh");
    write(
        &browser,
        &format!(
            "#!/bin/sh\nprintf '%s' \"$1\" > {}.tmp && mv {}.tmp {}\n",
            seen.display(),
            seen.display(),
            seen.display()
        ),
    );
    std::fs::set_permissions(
        &browser,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    for (value, works) in [
        (browser.display().to_string(), true),
        ("/nonexistent/browser".to_string(), false),
    ] {
        let mut child = env
            .cmd(&["serve", "--port", "0", "--json", "--open"])
            .env("BROWSER", &value)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let url = serde_json::from_str::<Value>(&line).unwrap()["url"]
            .as_str()
            .unwrap()
            .to_string();
        let serve = Serve {
            child,
            url,
            base: String::new(),
            port: 0,
        };
        if works {
            let mut waited = 0;
            while !seen.exists() && waited < 500 {
                std::thread::sleep(std::time::Duration::from_millis(20));
                waited += 1;
            }
            // The browser is given a private page that leads to the link
            // (never the link itself: web_attacks.rs).
            let page = std::fs::read_to_string(&seen).unwrap();
            let path = page.strip_prefix("file://").expect("a file URL");
            assert!(
                std::fs::read_to_string(path)
                    .unwrap()
                    .contains(&format!("url={}", serve.url)),
                "{page}"
            );
        }
        let (code, stderr) = serve.stop();
        assert_eq!(code, Some(0), "{stderr}");
        assert_eq!(
            stderr.contains("cannot open a browser (/nonexistent/browser"),
            !works,
            "{stderr}"
        );
    }
}

/// The human output of `serve` and of its refusals, as a whole transcript
/// (issue 15): what changes between runs (the temporary directory, ports,
/// the token, the process holding a port) is replaced; the words stay.
#[test]
fn serve_transcript() {
    let env = Env::new();
    let mut text = String::new();
    let mut ports = Vec::new();

    let mut child = env
        .cmd(&["serve", "--port", "0"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    text.push_str("$ airlock serve --port 0\n");
    loop {
        let mut line = String::new();
        assert!(
            stdout.read_line(&mut line).unwrap() > 0,
            "serve ended early"
        );
        if let Some(at) = line.find("http://127.0.0.1:") {
            let rest = &line[at + "http://127.0.0.1:".len()..];
            ports.push(rest[..rest.find('/').unwrap()].to_string());
        }
        text.push_str(&line);
        if line.starts_with("Stop with ^C.") {
            break;
        }
    }
    let serve = Serve {
        child,
        url: String::new(),
        base: String::new(),
        port: 0,
    };
    let (code, stderr) = serve.stop();
    text.push_str(&stderr);
    text.push_str(&format!("[exit {}]\n\n", code.unwrap_or(-1)));

    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    ports.push(port.clone());
    for args in [
        &["serve", "--port", port.as_str()][..],
        &["serve", "--port", "0.0.0.0:7878"],
        &["serve", "--listen", "review.example"],
        &["serve", "--listen", "192.0.2.1:0"],
    ] {
        let out = env.airlock(args);
        text.push_str(&format!(
            "$ airlock {}\n{}{}[exit {}]\n\n",
            args.join(" "),
            out.stdout,
            out.stderr,
            out.code
        ));
    }
    drop(taken);

    let mut settings = insta::Settings::clone_current();
    settings.add_filter(
        &regex_escape(&env.tmp.path().display().to_string()),
        "[TMP]",
    );
    for port in &ports {
        settings.add_filter(&format!(r"\b{port}\b"), "[PORT]");
    }
    settings.add_filter(r"\b[0-9a-f]{64}\b", "[TOKEN]");
    settings.add_filter(r"process \S+ \(pid \d+\)", "process [NAME] (pid [PID])");
    settings.set_omit_expression(true);
    settings.bind(|| insta::assert_snapshot!("serve", text));
}

fn regex_escape(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '/' || c == '_' || c == '-' {
                c.to_string()
            } else {
                format!("\\{c}")
            }
        })
        .collect()
}
