//! `airlock serve` in a real browser: headless Chromium (Debian's
//! `chromium`, which `.ci/run` installs) driven over the DevTools protocol
//! by `headless_chrome`, against the real `airlock serve --port 0 --json`
//! on a test repository with real runs. Every process a test starts (the
//! server, the browser, a second "attacker" web server) is stopped by a guard.

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use headless_chrome::protocol::cdp::Page;
use headless_chrome::{Browser, LaunchOptions, Tab};
use serde_json::Value;

// ---- The browser -----------------------------------------------------------

/// Debian's Chromium: `$CHROME` when set, else `chromium` on PATH. Never a
/// downloaded build (the crate's `fetch` feature is off).
fn chromium_path() -> PathBuf {
    if let Some(path) = std::env::var_os("CHROME") {
        return PathBuf::from(path);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join("chromium"))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| {
            panic!(
                "the browser tests need Chromium: install Debian's `chromium` \
                 (`apt-get install chromium`, as .ci/run does) or set CHROME to its path"
            )
        })
}

/// A headless Chromium with a throwaway profile; stopped when dropped, and
/// its profile removed after it (headless_chrome's own temporary profile
/// is sometimes left behind: its helpers still write there as it goes).
struct Chromium {
    browser: Option<Browser>,
    profile: PathBuf,
}

impl Chromium {
    fn launch() -> Chromium {
        let profile = tempfile::Builder::new()
            .prefix("airlock-test-chromium")
            .tempdir()
            .unwrap()
            .keep();
        let options = LaunchOptions::default_builder()
            .path(Some(chromium_path()))
            .headless(true)
            // Chromium refuses to start as root with its own sandbox on, and
            // CI runs the tests as root: only then is it turned off. The
            // pages it loads are the test's own.
            .sandbox(!rustix::process::getuid().is_root())
            .window_size(Some((1280, 1000)))
            .user_data_dir(Some(profile.clone()))
            // The connection is kept while a test runs airlock commands.
            .idle_browser_timeout(Duration::from_secs(300))
            .build()
            .unwrap();
        // Made first, so that the profile is removed even if the launch fails.
        let mut chromium = Chromium {
            browser: None,
            profile,
        };
        let browser = Browser::new(options)
            .unwrap_or_else(|e| panic!("could not start {}: {e}", chromium_path().display()));
        chromium.browser = Some(browser);
        chromium
    }

    /// A new tab in a fresh browser context (its own cookie jar, so no
    /// session), with a
    /// recorder of Content-Security-Policy violations installed before any
    /// page script (DevTools' scripts are not subject to the page's CSP).
    fn tab(&self) -> Arc<Tab> {
        let browser = self.browser.as_ref().unwrap();
        let tab = browser.new_context().unwrap().new_tab().unwrap();
        tab.set_default_timeout(Duration::from_secs(30));
        tab.call_method(Page::AddScriptToEvaluateOnNewDocument {
            source: CSP_RECORDER.to_string(),
            world_name: None,
            include_command_line_api: None,
            run_immediately: None,
        })
        .unwrap();
        tab
    }
}

/// One HTTP exchange as the browser's network layer saw it, whether or not
/// the page was allowed to read the answer. (The request's own headers are
/// not kept: headless_chrome fails to parse Chromium's event that carries
/// them, over a cookie field Chromium no longer sends.)
#[derive(Debug, Default, Clone)]
struct Exchange {
    method: String,
    url: String,
    status: Option<u64>,
    /// The response's headers as received, names lower-cased.
    received: BTreeMap<String, String>,
}

/// Every request a tab makes, from DevTools' network events: each hop of a
/// redirect apart (they share a request id).
#[derive(Default)]
struct Network {
    exchanges: Vec<Exchange>,
    current: BTreeMap<String, usize>,
}

fn record_network(tab: &Tab) -> Arc<Mutex<Network>> {
    use headless_chrome::protocol::cdp::Network as Cdp;
    use headless_chrome::protocol::cdp::types::Event;
    tab.call_method(Cdp::Enable {
        max_total_buffer_size: None,
        max_resource_buffer_size: None,
        max_post_data_size: None,
        report_direct_socket_traffic: None,
        enable_durable_messages: None,
    })
    .unwrap();
    let seen: Arc<Mutex<Network>> = Arc::default();
    let record = seen.clone();
    let listener = move |event: &Event| {
        let mut seen = record.lock().unwrap();
        let Network { exchanges, current } = &mut *seen;
        match event {
            Event::NetworkRequestWillBeSent(e) => {
                let id = &e.params.request_id;
                if let (Some(hop), Some(&at)) = (&e.params.redirect_response, current.get(id)) {
                    exchanges[at].status = Some(hop.status as u64);
                }
                exchanges.push(Exchange {
                    method: e.params.request.method.clone(),
                    url: e.params.request.url.clone(),
                    ..Exchange::default()
                });
                current.insert(id.clone(), exchanges.len() - 1);
            }
            Event::NetworkResponseReceivedExtraInfo(e) => {
                let Some(&at) = current.get(&e.params.request_id) else {
                    return;
                };
                let exchange = &mut exchanges[at];
                exchange.status.get_or_insert(e.params.status_code as u64);
                if let Some(Value::Object(headers)) = &e.params.headers.0 {
                    for (name, value) in headers {
                        let value = value.as_str().unwrap_or_default().to_string();
                        exchange.received.insert(name.to_lowercase(), value);
                    }
                }
            }
            _ => {}
        }
    };
    tab.add_event_listener(Arc::new(listener)).unwrap();
    seen
}

impl Drop for Chromium {
    fn drop(&mut self) {
        // Closes the browser and waits for it; its helpers may still be
        // finishing their writes to the profile for a moment.
        drop(self.browser.take());
        for _ in 0..100 {
            match std::fs::remove_dir_all(&self.profile) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    std::thread::sleep(Duration::from_millis(50))
                }
                _ => return,
            }
        }
    }
}

const CSP_RECORDER: &str = "window.__csp = [];\
    document.addEventListener('securitypolicyviolation', e => \
    window.__csp.push({directive: e.violatedDirective, blocked: e.blockedURI, sample: e.sample}));";

/// Navigates and waits for the load; returns the HTTP status of the page.
fn goto(tab: &Tab, url: &str) -> u16 {
    tab.navigate_to(url)
        .unwrap()
        .wait_until_navigated()
        .unwrap();
    status(tab)
}

/// The HTTP status of the document in the tab (the Navigation Timing entry).
fn status(tab: &Tab) -> u16 {
    eval(
        tab,
        "performance.getEntriesByType('navigation')[0].responseStatus",
    )
    .as_u64()
    .unwrap() as u16
}

/// Evaluates `expr` in the page (awaiting a promise) and returns its value as JSON.
fn eval(tab: &Tab, expr: &str) -> Value {
    let wrapped = format!("(async () => JSON.stringify(await ({expr})))()");
    let result = tab.evaluate(&wrapped, true).unwrap();
    match &result.value {
        Some(Value::String(json)) => serde_json::from_str(json).unwrap(),
        other => panic!("`{expr}` gave no value: {other:?} ({result:?})"),
    }
}

/// The text of the page's body, as a person sees it.
fn body_text(tab: &Tab) -> String {
    eval(tab, "document.body.innerText")
        .as_str()
        .unwrap()
        .to_string()
}

/// The CSP violations the page reported.
fn csp_violations(tab: &Tab) -> Vec<Value> {
    eval(tab, "window.__csp || []").as_array().unwrap().clone()
}

/// The whole page, below the fold too, as one PNG.
fn full_page_screenshot(tab: &Tab) -> Vec<u8> {
    use base64::Engine as _;
    let size = tab
        .call_method(Page::GetLayoutMetrics(None))
        .unwrap()
        .css_content_size;
    let shot = tab
        .call_method(Page::CaptureScreenshot {
            format: Some(Page::CaptureScreenshotFormatOption::Png),
            quality: None,
            clip: Some(Page::Viewport {
                x: 0.0,
                y: 0.0,
                width: size.width,
                height: size.height,
                scale: 1.0,
            }),
            from_surface: Some(true),
            capture_beyond_viewport: Some(true),
            optimize_for_speed: None,
        })
        .unwrap();
    base64::engine::general_purpose::STANDARD
        .decode(shot.data)
        .unwrap()
}

/// Where a test keeps what a person should look at after the run:
/// `<target>/test-artifacts/web/`, the target directory being
/// `$CARGO_TARGET_DIR` or the workspace's `target` (not the per-triple one
/// that `CARGO_TARGET_TMPDIR` is in, since .cargo/config.toml names a target).
fn artifacts_dir() -> PathBuf {
    let workspace = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(|dir| workspace.join(dir))
        .unwrap_or_else(|| workspace.join("target"));
    let dir = target.join("test-artifacts/web");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A PNG's signature and its IHDR's width and height.
fn png_size(bytes: &[u8]) -> (u32, u32) {
    assert!(
        bytes.len() > 1000 && bytes.starts_with(b"\x89PNG\r\n\x1a\n") && &bytes[12..16] == b"IHDR",
        "not a PNG ({} bytes)",
        bytes.len()
    );
    let word = |at: usize| u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap());
    (word(16), word(20))
}

// ---- A second web server: another origin -------------------------------------

/// A web server on another port of 127.0.0.1 (another origin, the same
/// site), answering every request with `page`.
struct OtherSite {
    server: Arc<tiny_http::Server>,
    thread: Option<std::thread::JoinHandle<()>>,
    origin: String,
}

impl OtherSite {
    fn start(page: String) -> OtherSite {
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").unwrap());
        let origin = format!(
            "http://127.0.0.1:{}",
            server.server_addr().to_ip().unwrap().port()
        );
        let serving = server.clone();
        let thread = std::thread::spawn(move || {
            for rq in serving.incoming_requests() {
                let html =
                    tiny_http::Header::from_bytes("Content-Type", "text/html; charset=utf-8")
                        .unwrap();
                let _ =
                    rq.respond(tiny_http::Response::from_string(page.clone()).with_header(html));
            }
        });
        OtherSite {
            server,
            thread: Some(thread),
            origin,
        }
    }
}

impl Drop for OtherSite {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

// ---- airlock serve -----------------------------------------------------------

/// `airlock --json serve --port 0` in the test's repository: the URL it
/// printed (carrying the one-time token) and the origin it serves; stopped
/// (SIGTERM, then SIGKILL if it lingers) when dropped.
struct Served {
    child: Child,
    url: String,
    origin: String,
    stderr: Arc<Mutex<String>>,
}

impl Served {
    fn start(env: &Env) -> Served {
        let mut cmd = env.cmd(&["--json", "serve", "--port", "0"]);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        let stderr = Arc::new(Mutex::new(String::new()));
        let (err_pipe, kept) = (child.stderr.take().unwrap(), stderr.clone());
        std::thread::spawn(move || {
            for line in BufReader::new(err_pipe).lines().map_while(Result::ok) {
                kept.lock().unwrap().push_str(&format!("{line}\n"));
            }
        });
        // The first line on stdout is the JSON document; the rest is drained.
        let (tx, rx) = std::sync::mpsc::channel();
        let out_pipe = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(out_pipe).lines().map_while(Result::ok);
            let _ = tx.send(lines.next());
            lines.for_each(drop);
        });
        let first = rx.recv_timeout(Duration::from_secs(60));
        let mut served = Served {
            child,
            url: String::new(),
            origin: String::new(),
            stderr,
        };
        let line = match first {
            Ok(Some(line)) => line,
            other => panic!(
                "`airlock serve` printed no first line ({other:?}); stderr:\n{}",
                served.stderr()
            ),
        };
        let doc: Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("`airlock serve --json` printed {line:?}: {e}"));
        served.url = doc["url"].as_str().unwrap().to_string();
        let listen = doc["listen"].as_str().unwrap();
        served.origin = format!("http://{listen}");
        assert!(
            served.url.starts_with(&served.origin) && served.url.contains("token="),
            "{doc}"
        );
        served
    }

    fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// `PATH` on the served origin.
    fn at(&self, path: &str) -> String {
        format!("{}{path}", self.origin)
    }

    /// Stops the server with SIGTERM; returns its exit code.
    fn stop(mut self) -> Option<i32> {
        self.terminate()
    }

    fn terminate(&mut self) -> Option<i32> {
        if let Ok(Some(status)) = self.child.try_wait() {
            return status.code();
        }
        let pid = rustix::process::Pid::from_child(&self.child);
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        for _ in 0..200 {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        None
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        self.terminate();
    }
}

// ---- Fixtures: real runs -------------------------------------------------------

/// What the hostile run's agent wrote, in its brief, file names, lines,
/// commit message (the brief's title) and gate output: markup that would
/// run script, break out of a text area or link to `javascript:`, each
/// setting a marker the test looks for.
const MARKUP: &str = "<script>document.title='pwned';window.__pwned='script'</script>\
<img src=x onerror=\"window.__pwned='img'\" id=payload-img>\
</textarea><b id=payload-bold>bold</b>\
<a id=payload-link href=\"javascript:window.__pwned='link'\">click me</a>";

/// Bidirectional controls and invisible characters, each of which the
/// pages must show as a visible escape.
const HIDDEN: &[char] = &[
    '\u{202E}', '\u{2066}', '\u{2067}', '\u{2068}', '\u{2069}', '\u{200B}', '\u{200D}', '\u{FEFF}',
];

/// `admin\u{202E}txt.sh` reads as `adminhs.txt`; the others hide in words.
const HIDDEN_TEXT: &str = "admin\u{202E}txt.sh is\u{2066}iso\u{2069} \u{2067}rtl\u{2069} \
    \u{2068}fsi\u{2069} zero\u{200B}width join\u{200D}er bom\u{FEFF}here";

/// A repository with one run in review: the plain one (a one-line change
/// whose first check failed, so it carries a risk flag) or the hostile one.
struct Fixture {
    env: Env,
    run: String,
}

impl Fixture {
    fn plain() -> Fixture {
        let env = Env::new();
        let run = plain_run(&env);
        Fixture { env, run }
    }

    fn hostile() -> Fixture {
        let env = Env::new();
        let run = hostile_run(&env);
        Fixture { env, run }
    }

    /// The full SHA-256 of the run's current proof, as the CLI shows it.
    fn digest(&self, run: &str) -> String {
        self.env.json(&["show", run, "--no-diff"], 0)["proof"]["digest"]
            .as_str()
            .unwrap()
            .to_string()
    }
}

/// A run whose first check fails (the test gate), then passes, submitted.
fn plain_run(env: &Env) -> String {
    let (run, wt) = env.start(BRIEF);
    write(&wt.join("src/app.sh"), "#!/bin/sh\necho goodbye\n");
    let failed = env.airlock(&["--json", "check", &run]);
    assert_ne!(failed.code, 0, "{}", failed.stdout);
    write(&wt.join("src/app.sh"), "#!/bin/sh\necho hello, please\n");
    env.json(&["check", &run], 0);
    env.json(&["submit", &run], 0);
    run
}

/// The hostile run: the payloads in its brief (title, hence the commit
/// message, objective, non-goals), file names, lines and gate output.
fn hostile_run(env: &Env) -> String {
    let hidden = HIDDEN_TEXT;
    let brief = format!(
        "title = {title}\nobjective = {objective}\nnon_goals = [{non_goal}]\n\
         touch = [\"src/**\", \"tests/**\"]\nchecks = [\"build\", \"test\"]\n\
         rollback = \"revert the merge commit\"\n",
        title = toml_string(&format!("Tidy {MARKUP} {hidden}")),
        objective = toml_string(&format!("objective {MARKUP} {hidden}")),
        non_goal = toml_string(&format!("non-goal {MARKUP} {hidden}")),
    );
    let path = env.write_brief("hostile", &brief);
    let started = env.json(&["start", &path], 0);
    let run = started["run"].as_str().unwrap().to_string();
    let wt = PathBuf::from(started["worktree"].as_str().unwrap());
    write(
        &wt.join("src/app.sh"),
        &format!("#!/bin/sh\necho hello\n# {MARKUP}\n# {hidden}\n"),
    );
    write(&wt.join(format!("src/{MARKUP_NAME}")), "named\n");
    write(&wt.join("src/admin\u{202E}txt.sh"), "bidi name\n");
    write(&wt.join("src/zero\u{200B}width.txt"), "zero width name\n");
    // The gate's output is the agent's too: its test script prints the payload.
    write(
        &wt.join("tests/payload.txt"),
        &format!("{MARKUP} {hidden}\n"),
    );
    write(
        &wt.join("tests/run.sh"),
        "#!/bin/sh\ncat tests/payload.txt\nsh src/app.sh | grep -q hello\n",
    );
    env.json(&["check", &run], 0);
    env.json(&["submit", &run], 0);
    run
}

/// A file name that is markup (no `/`).
const MARKUP_NAME: &str = "<img src=x onerror=window.__pwned=1>.txt";

/// `text` as a TOML basic string.
fn toml_string(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

// ---- Helpers over airlock's pages ------------------------------------------

/// A tab with a session: the one-time URL opened, then the queue.
fn signed_in(chromium: &Chromium, served: &Served) -> Arc<Tab> {
    let tab = chromium.tab();
    assert_eq!(goto(&tab, &served.url), 200, "{}", body_text(&tab));
    // The token left the address bar: the server answered with a redirect to `/`.
    assert_eq!(tab.get_url(), served.at("/"));
    tab
}

fn approve_form(run: &str) -> String {
    format!("form[action=\"/runs/{run}/approve\"]")
}

/// The approve form's hidden fields as the page holds them: (csrf, digest).
fn form_tokens(tab: &Tab, run: &str) -> (String, String) {
    let field = |name: &str| {
        eval(
            tab,
            &format!(
                "document.querySelector('{} [name={name}]').value",
                approve_form(run).replace('"', "\\\"")
            ),
        )
        .as_str()
        .unwrap()
        .to_string()
    };
    (field("csrf"), field("digest"))
}

/// Waits (bounded) until the tab shows a page of `origin`, after a script
/// or a form sent it there.
fn wait_for_origin(tab: &Tab, origin: &str) {
    for _ in 0..600 {
        // Mid-navigation the page may have no context to evaluate in yet.
        let ready = tab
            .evaluate("document.readyState", false)
            .ok()
            .and_then(|r| r.value);
        if tab.get_url().starts_with(origin) && ready == Some(Value::from("complete")) {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("the tab never reached {origin}; it is at {}", tab.get_url());
}

/// Clicks `selector` and waits (bounded) until a new document has loaded
/// in its place: the old one is marked first, so a click whose navigation
/// starts late is not mistaken for one that finished.
fn click_and_wait(tab: &Tab, selector: &str) {
    eval(tab, "window.__old_document = true");
    tab.find_element(selector).unwrap().click().unwrap();
    for _ in 0..600 {
        let state = tab
            .evaluate(
                "typeof window.__old_document === 'undefined' && document.readyState === 'complete'",
                false,
            )
            .ok()
            .and_then(|r| r.value);
        if state == Some(Value::Bool(true)) {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!(
        "clicking {selector} loaded no new page; the tab is at {}",
        tab.get_url()
    );
}

/// Posts `fields` (URL-encoded) to `target` with a form built in the page
/// (the page's policy allows no fetch: `connect-src` falls back to
/// `default-src 'none'`), and waits for the answer to load.
fn post_from_page(tab: &Tab, target: &str, fields: &str) {
    eval(
        tab,
        &format!(
            "(() => {{
                const f = document.createElement('form');
                f.method = 'post';
                f.action = '{target}';
                f.id = 'posted-from-page';
                for (const [name, value] of new URLSearchParams('{fields}')) {{
                    const input = document.createElement('input');
                    input.name = name;
                    input.value = value;
                    f.appendChild(input);
                }}
                const send = document.createElement('button');
                send.type = 'submit';
                f.appendChild(send);
                document.body.appendChild(f);
                return true;
            }})()"
        ),
    );
    click_and_wait(tab, "#posted-from-page button");
}

fn approve_events(env: &Env, run: &str) -> Vec<Value> {
    env.events(Some(run))
        .into_iter()
        .filter(|e| e["kind"] == "approve")
        .collect()
}

// ---- The tests of issue 19 ------------------------------------------------------

/// The whole path a reviewer takes: the one-time URL opens the queue, the
/// queue lists the run with its flag, the run page shows the diff and the
/// flag, the approve form records an approval from the browser, bound to
/// the digest the page showed. The run page's screenshot is kept.
#[test]
fn a_reviewer_approves_a_run_in_the_browser() {
    let fx = Fixture::plain();
    let run = fx.run.as_str();
    let digest = fx.digest(run);
    let served = Served::start(&fx.env);
    let chromium = Chromium::launch();
    let tab = signed_in(&chromium, &served);

    std::fs::write(
        artifacts_dir().join("queue.png"),
        full_page_screenshot(&tab),
    )
    .unwrap();
    // The queue's row of the run carries its risk flag as a badge: a short
    // label, what it means in its title.
    let row = eval(
        &tab,
        &format!(
            "[...document.querySelectorAll('tr')].filter(r => r.querySelector('a[href=\"/runs/{run}\"]'))\
             .map(r => [...r.querySelectorAll('.badge.flag')].map(b => [b.textContent, b.title]))"
        ),
    );
    assert_eq!(
        row,
        serde_json::json!([[[
            "failed first",
            "checks-failed-first: check failed 1 time(s) in round 1 before it passed"
        ]]]),
        "{}",
        body_text(&tab)
    );
    click_and_wait(&tab, &format!("a[href=\"/runs/{run}\"]"));
    assert_eq!(tab.get_url(), served.at(&format!("/runs/{run}")));
    assert_eq!(status(&tab), 200);
    let page = body_text(&tab);
    for seen in ["greet prints a polite greeting", "src/app.sh", &digest] {
        assert!(page.contains(seen), "the run page shows {seen:?}:\n{page}");
    }
    // The flag with its reason, and the diff's removed and added lines.
    let flags = eval(&tab, "document.querySelector('section.flags').innerText");
    assert!(
        flags
            .as_str()
            .unwrap()
            .contains("check failed 1 time(s) in round 1 before it passed"),
        "{flags}"
    );
    let diff = eval(
        &tab,
        "['del', 'add'].map(k => [...document.querySelectorAll('pre.diff span.l.' + k)].map(e => e.textContent))",
    );
    assert_eq!(
        diff,
        serde_json::json!([["-echo hello"], ["+echo hello, please"]]),
        "{page}"
    );
    // One line of text per diff line (no blank line between: what a
    // reviewer sees and what a copy gives).
    let lines = eval(
        &tab,
        "[...document.querySelectorAll('pre.diff')].map(p => [p.innerText.replace(/\\n$/, '').split('\\n').length, p.querySelectorAll('span.l').length])",
    );
    for pair in lines.as_array().unwrap() {
        assert_eq!(pair[0], pair[1], "lines shown, lines of the diff: {lines}");
    }
    assert!(!lines.as_array().unwrap().is_empty(), "{page}");
    // The evidence before the decision: the forms follow the diff, the
    // checks and the proof; a link at the top leads to them.
    let order = eval(
        &tab,
        "['section.flags', 'section.brief', 'pre.diff', 'section.proof'].map(s => \
         !!(document.querySelector(s).compareDocumentPosition(document.querySelector('#decide')) & Node.DOCUMENT_POSITION_FOLLOWING))\
         .concat([document.querySelector('a[href=\"#decide\"]').textContent])",
    );
    assert_eq!(
        order,
        serde_json::json!([true, true, true, true, "Decide ↓"]),
        "{page}"
    );
    let flag_title = eval(
        &tab,
        "document.querySelector('section.flags .badge.flag').title",
    );
    assert_eq!(
        flag_title,
        "checks-failed-first: check failed 1 time(s) in round 1 before it passed"
    );
    assert_eq!(form_tokens(&tab, run).1, digest);
    assert!(
        csp_violations(&tab).is_empty(),
        "{:?}",
        csp_violations(&tab)
    );

    let shot = full_page_screenshot(&tab);
    let path = artifacts_dir().join("run-page.png");
    std::fs::write(&path, &shot).unwrap();
    // The whole page: as wide as the window (less its scroll bar), taller.
    let (width, height) = png_size(&std::fs::read(&path).unwrap());
    assert!(width > 1200 && height > 1000, "{width}x{height}");

    let form = approve_form(run);
    tab.find_element(&format!("{form} textarea[name=reason]"))
        .unwrap()
        .type_into("read in the browser")
        .unwrap();
    click_and_wait(&tab, &format!("{form} button[type=submit]"));
    // The POST answered with a redirect back to the run, which says so.
    assert_eq!(tab.get_url(), served.at(&format!("/runs/{run}")));
    assert_eq!(status(&tab), 200);
    let after = body_text(&tab);
    assert!(
        after.contains(&format!("Approved run {run} (proof {digest})")),
        "{after}"
    );

    assert_eq!(fx.env.state(run), "approved");
    let approvals = approve_events(&fx.env, run);
    assert_eq!(approvals.len(), 1, "{approvals:?}");
    let data = &approvals[0]["data"];
    assert_eq!(data["via"], "browser", "{data}");
    assert_eq!(data["digest"], digest.as_str(), "{data}");
    assert_eq!(data["reason"], "read in the browser", "{data}");
    let session = data["session"].as_str().unwrap();
    assert!(
        !session.is_empty() && !served.url.contains(session),
        "{data}"
    );
    fx.env.assert_ledger_ok();
    assert_eq!(served.stop(), Some(0));
}

/// Without a session nothing is served, static files included, and the
/// one-time token opens no second session.
#[test]
fn no_session_no_page_and_a_token_opens_one_session_only() {
    let fx = Fixture::plain();
    let run = fx.run.as_str();
    let served = Served::start(&fx.env);
    let chromium = Chromium::launch();

    let stranger = chromium.tab();
    for path in [
        "/".to_string(),
        format!("/runs/{run}"),
        "/history".into(),
        "/stats".into(),
        "/static/app.css".into(),
        "/?token=0000".into(),
    ] {
        assert_eq!(goto(&stranger, &served.at(&path)), 401, "{path}");
        let text = body_text(&stranger);
        assert!(!text.contains(run), "{path} showed the run:\n{text}");
    }

    let first = signed_in(&chromium, &served);
    assert!(body_text(&first).contains(run));
    // The same URL again, in another browser context: the token is spent.
    let second = chromium.tab();
    assert_eq!(goto(&second, &served.url), 401);
    let refusal = body_text(&second);
    assert!(!refusal.contains(run), "{refusal}");
    assert_eq!(goto(&second, &served.at("/")), 401);
    // The first session still works; a run that does not exist is a 404 page.
    assert_eq!(goto(&first, &served.at(&format!("/runs/{run}"))), 200);
    assert_eq!(goto(&first, &served.at("/runs/no-such-run")), 404);
    assert_eq!(fx.env.state(run), "in_review");
}

/// Another origin on the same machine (the same site, so the session's
/// SameSite=Strict cookie goes along) tries to approve: a form that posts
/// itself without the anti-forgery token, then fetch and XHR carrying the
/// right token and digest (read from the page, as if leaked), so that only
/// the Origin check stands in the way. Nothing is recorded. The same
/// request from the served origin then approves: the refusals were the
/// origin's and the token's, not a malformed request's.
#[test]
fn forged_and_cross_origin_posts_change_nothing() {
    let fx = Fixture::plain();
    let run = fx.run.as_str();
    let served = Served::start(&fx.env);
    let chromium = Chromium::launch();
    let tab = signed_in(&chromium, &served);
    assert_eq!(goto(&tab, &served.at(&format!("/runs/{run}"))), 200);
    let (csrf, digest) = form_tokens(&tab, run);
    let target = served.at(&format!("/runs/{run}/approve"));
    let network = record_network(&tab);
    let before = fx.env.world();

    // 1. A page elsewhere that submits a form to airlock as soon as it loads.
    let forged = OtherSite::start(format!(
        "<!doctype html><form id=f method=post action=\"{target}\">\
         <input name=digest value=\"{digest}\"><input name=reason value=forged></form>\
         <script>document.getElementById('f').submit()</script>"
    ));
    tab.navigate_to(&forged.origin).unwrap();
    wait_for_origin(&tab, &served.origin);
    assert_eq!(tab.get_url(), target);
    assert_eq!(status(&tab), 403, "{}", body_text(&tab));
    let refusal = body_text(&tab);
    assert!(refusal.contains(&forged.origin), "{refusal}");
    assert_eq!(fx.env.state(run), "in_review");
    fx.env.assert_unchanged(&before);

    // 2. fetch and XHR from the other origin, with the session's own tokens.
    let body = format!("csrf={csrf}&digest={digest}&reason=cross-origin");
    let elsewhere = OtherSite::start("<!doctype html><p>elsewhere</p>".to_string());
    assert_eq!(goto(&tab, &elsewhere.origin), 200);
    let read = eval(
        &tab,
        &format!(
            "(async () => {{
                const init = {{method: 'POST', credentials: 'include',
                    headers: {{'Content-Type': 'application/x-www-form-urlencoded'}},
                    body: '{body}'}};
                const opaque = await fetch('{target}', {{...init, mode: 'no-cors'}})
                    .then(r => 'read ' + r.status, e => 'unreadable');
                const cors = await fetch('{target}', init).then(r => 'read ' + r.status, e => 'unreadable');
                const xhr = await new Promise(done => {{
                    const x = new XMLHttpRequest();
                    x.open('POST', '{target}');
                    x.withCredentials = true;
                    x.setRequestHeader('Content-Type', 'application/x-www-form-urlencoded');
                    x.onload = () => done('read ' + x.status);
                    x.onerror = () => done('unreadable');
                    x.send('{body}');
                }});
                return [opaque, cors, xhr];
            }})()"
        ),
    );
    // The other origin reads nothing (no-cors answers are opaque, and the
    // server's Cross-Origin-Resource-Policy withholds even those).
    assert!(
        read.as_array()
            .unwrap()
            .iter()
            .all(|r| !r.as_str().unwrap().starts_with("read 2")),
        "{read}"
    );
    assert_eq!(fx.env.state(run), "in_review");
    fx.env.assert_unchanged(&before);

    // 3. From airlock's own page (the right origin), a form without the
    // anti-forgery token, then one with another session's kind of token,
    // are refused: the token is checked on its own, not only the origin.
    for fields in [
        format!("digest={digest}&reason=no-token"),
        format!(
            "csrf={}&digest={digest}&reason=wrong-token",
            "0".repeat(csrf.len())
        ),
    ] {
        assert_eq!(goto(&tab, &served.at(&format!("/runs/{run}"))), 200);
        post_from_page(&tab, &target, &fields);
        assert_eq!(status(&tab), 403, "{fields}: {}", body_text(&tab));
        assert_eq!(fx.env.state(run), "in_review");
        fx.env.assert_unchanged(&before);
    }

    // 4. The same fields as the other origin's, posted from airlock's own
    // page, approve.
    assert_eq!(goto(&tab, &served.at(&format!("/runs/{run}"))), 200);
    post_from_page(&tab, &target, &body);
    assert_eq!(
        tab.get_url(),
        served.at(&format!("/runs/{run}")),
        "{}: {}",
        status(&tab),
        body_text(&tab)
    );
    assert_eq!(fx.env.state(run), "approved");
    assert_eq!(approve_events(&fx.env, run)[0]["data"]["via"], "browser");

    // On the wire: the four attempts of the other origin each reached
    // airlock and were answered 403, not 401: the session's cookie went
    // along (the other port is the same site; without a session airlock
    // answers 401 before it looks at the origin), so for fetch and XHR,
    // which carried the right token, the Origin check alone refused them.
    // The two without the token were refused too; the last was answered
    // with the redirect to the run.
    let posts = || -> Vec<Exchange> {
        network
            .lock()
            .unwrap()
            .exchanges
            .iter()
            .filter(|x| x.method == "POST" && x.url == target)
            .cloned()
            .collect()
    };
    // The second is the no-cors fetch: its answer is opaque, and the
    // server's Cross-Origin-Resource-Policy makes Chromium block it, which
    // it sometimes reports as a failed load without the status. That the
    // request changed nothing is checked above (the run still in review,
    // the world unchanged); here it may be 403 or unseen, never anything
    // else.
    let seen = |x: &[Exchange]| {
        x.len() == 7
            && x.iter()
                .enumerate()
                .all(|(i, e)| i == 1 || e.status.is_some())
    };
    for _ in 0..200 {
        if seen(&posts()) {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut statuses: Vec<Option<u64>> = posts().iter().map(|x| x.status).collect();
    if statuses.len() == 7 && statuses[1].is_none() {
        statuses[1] = Some(403);
    }
    assert_eq!(
        statuses,
        [
            Some(403),
            Some(403),
            Some(403),
            Some(403),
            Some(403),
            Some(403),
            Some(303)
        ],
        "{:#?}",
        posts()
    );
}

/// The run changes while its page is open (redirected, changed, checked
/// and submitted again from the terminal): the page's approve form carries
/// the digest it showed, and the server refuses it, saying which proof the
/// page showed and which is current. Reloaded, the page approves.
#[test]
fn an_approval_of_a_stale_page_is_refused() {
    let fx = Fixture::plain();
    let run = fx.run.as_str();
    let shown_digest = fx.digest(run);
    let served = Served::start(&fx.env);
    let chromium = Chromium::launch();
    let tab = signed_in(&chromium, &served);
    assert_eq!(goto(&tab, &served.at(&format!("/runs/{run}"))), 200);
    assert_eq!(form_tokens(&tab, run).1, shown_digest);

    let wt = PathBuf::from(
        fx.env.json(&["show", run, "--no-diff"], 0)["worktree"]
            .as_str()
            .unwrap(),
    );
    fx.env
        .json(&["redirect", run, "--reason", "say it more warmly"], 0);
    write(&wt.join("src/app.sh"), "#!/bin/sh\necho hello, warmly\n");
    fx.env.json(&["check", run], 0);
    fx.env.json(&["submit", run], 0);
    let current = fx.digest(run);
    assert_ne!(current, shown_digest);
    let before = fx.env.world();

    click_and_wait(&tab, &format!("{} button[type=submit]", approve_form(run)));
    assert_eq!(status(&tab), 409);
    let refusal = body_text(&tab);
    assert!(
        refusal.contains(&shown_digest[..12]) && refusal.contains(&current[..12]),
        "the refusal names both proofs:\n{refusal}"
    );
    assert!(refusal.to_lowercase().contains("reload"), "{refusal}");
    assert_eq!(fx.env.state(run), "in_review");
    assert!(approve_events(&fx.env, run).is_empty());
    fx.env.assert_unchanged(&before);

    assert_eq!(goto(&tab, &served.at(&format!("/runs/{run}"))), 200);
    assert_eq!(form_tokens(&tab, run).1, current);
    click_and_wait(&tab, &format!("{} button[type=submit]", approve_form(run)));
    assert_eq!(fx.env.state(run), "approved");
    assert_eq!(
        approve_events(&fx.env, run)[0]["data"]["digest"],
        current.as_str()
    );
}

/// The hostile run's page, in the queue and on its own: the markup the
/// agent wrote is text, no script of it runs (a script or handler would
/// set `window.__pwned` or the title), none of its elements exists, the
/// Content-Security-Policy is in force, and every bidirectional or
/// invisible character is shown as a marked escape, none left raw.
#[test]
fn a_hostile_run_runs_nothing_and_hides_nothing() {
    let fx = Fixture::hostile();
    let run = fx.run.as_str();
    let served = Served::start(&fx.env);
    let chromium = Chromium::launch();
    let tab = signed_in(&chromium, &served);
    for path in ["/".to_string(), format!("/runs/{run}")] {
        assert_eq!(goto(&tab, &served.at(&path)), 200, "{path}");
        let text = body_text(&tab);
        let html = eval(&tab, "document.documentElement.outerHTML");
        let html = html.as_str().unwrap();
        assert!(text.contains(run), "{path}:\n{text}");
        // The markup is shown as the agent wrote it.
        assert!(
            text.contains("<script>document.title='pwned';window.__pwned='script'</script>"),
            "{path}:\n{text}"
        );
        // Nothing of it ran or became an element.
        assert_eq!(eval(&tab, "typeof window.__pwned"), "undefined", "{path}");
        let title = eval(&tab, "document.title");
        assert!(
            !title.as_str().unwrap().contains("pwned"),
            "{path}: {title}"
        );
        let planted = eval(
            &tab,
            "[...document.querySelectorAll('#payload-img, #payload-bold, #payload-link, img[src=x], [onerror], a[href^=\"javascript:\" i], iframe, object, embed')].map(e => e.outerHTML)",
        );
        assert_eq!(planted, serde_json::json!([]), "{path}");
        let scripts = eval(
            &tab,
            "[...document.scripts].filter(s => !s.src.startsWith(location.origin + '/static/')).map(s => s.outerHTML)",
        );
        assert_eq!(scripts, serde_json::json!([]), "{path}");
        assert!(
            csp_violations(&tab).is_empty(),
            "{path}: {:?}",
            csp_violations(&tab)
        );
        // No hidden character is left raw anywhere in the document.
        for c in HIDDEN {
            assert!(
                !html.contains(*c),
                "{path}: U+{:04X} is in the page raw",
                *c as u32
            );
        }
    }

    // On the run page each hidden character is a marked escape.
    let marked = eval(
        &tab,
        "[...document.querySelectorAll('span.esc')].map(e => [e.title, e.textContent])",
    );
    for c in HIDDEN {
        let code = format!("U+{:04X}", *c as u32);
        let shown = format!("\\u{{{:x}}}", *c as u32);
        assert!(
            marked
                .as_array()
                .unwrap()
                .iter()
                .any(|m| m[0] == code.as_str() && m[1] == shown.as_str()),
            "{code} is not shown as {shown}: {marked}"
        );
    }
    // The gate's output (the agent's test script printed the payload) is
    // on the page, as text, its hidden characters marked.
    let outputs = eval(
        &tab,
        "[...document.querySelectorAll('details.gate pre.output')].map(e => e.textContent)",
    );
    assert!(
        outputs.as_array().unwrap().iter().any(|o| {
            let o = o.as_str().unwrap();
            o.starts_with("<script>document.title='pwned'") && o.contains("admin\\u{202e}txt.sh")
        }),
        "{outputs}"
    );
    let text = body_text(&tab);
    for seen in [
        MARKUP_NAME,
        "admin\\u{202e}txt.sh",
        "zero\\u{200b}width.txt",
    ] {
        assert!(
            text.contains(seen),
            "the file name {seen:?} is shown:\n{text}"
        );
    }

    // The policy is the one the design fixes, and it is in force: an inline
    // script added to the page (as a payload that slipped through would be)
    // is blocked and reported.
    let network = record_network(&tab);
    assert_eq!(goto(&tab, &served.at(&format!("/runs/{run}"))), 200);
    let page_url = served.at(&format!("/runs/{run}"));
    let policy = network
        .lock()
        .unwrap()
        .exchanges
        .iter()
        .find(|x| x.url == page_url)
        .and_then(|x| x.received.get("content-security-policy").cloned());
    assert_eq!(policy.as_deref(), Some(web::CSP));
    eval(
        &tab,
        "(() => { const s = document.createElement('script'); s.textContent = 'window.__inline = 1'; document.body.appendChild(s); return true; })()",
    );
    assert_eq!(eval(&tab, "typeof window.__inline"), "undefined");
    let violations = csp_violations(&tab);
    assert!(
        violations
            .iter()
            .any(|v| v["directive"].as_str().unwrap().starts_with("script-src")),
        "{violations:?}"
    );

    let shot = full_page_screenshot(&tab);
    png_size(&shot);
    std::fs::write(artifacts_dir().join("hostile-run-page.png"), &shot).unwrap();
    assert_eq!(fx.env.state(run), "in_review");
}

/// Reject needs its reason in the browser as in the terminal: with the
/// form's `required` taken off (as a hand-made request would be), an empty
/// reason is refused with the engine's words and nothing is recorded; with
/// a reason the run is rejected, the ledger's event says it came from the
/// browser with those words, and the run's history shows them.
#[test]
fn a_rejection_needs_its_reason() {
    let fx = Fixture::plain();
    let run = fx.run.as_str();
    let served = Served::start(&fx.env);
    let chromium = Chromium::launch();
    let tab = signed_in(&chromium, &served);
    assert_eq!(goto(&tab, &served.at(&format!("/runs/{run}"))), 200);
    let reject = format!("form[action=\"/runs/{run}/reject\"]");
    let before = fx.env.world();

    eval(
        &tab,
        &format!(
            "(document.querySelector('{} textarea[name=reason]').removeAttribute('required'), true)",
            reject.replace('"', "\\\"")
        ),
    );
    click_and_wait(&tab, &format!("{reject} button[type=submit]"));
    let refusal = body_text(&tab);
    assert_eq!(status(&tab), 400, "{refusal}");
    assert!(refusal.contains("reason"), "{refusal}");
    assert_eq!(fx.env.state(run), "in_review");
    fx.env.assert_unchanged(&before);

    assert_eq!(goto(&tab, &served.at(&format!("/runs/{run}"))), 200);
    tab.find_element(&format!("{reject} textarea[name=reason]"))
        .unwrap()
        .type_into("rude to the user")
        .unwrap();
    click_and_wait(&tab, &format!("{reject} button[type=submit]"));
    assert_eq!(tab.get_url(), served.at(&format!("/runs/{run}")));
    assert_eq!(fx.env.state(run), "rejected");
    let rejected: Vec<Value> = fx
        .env
        .events(Some(run))
        .into_iter()
        .filter(|e| e["kind"] == "reject")
        .collect();
    assert_eq!(rejected.len(), 1, "{rejected:?}");
    assert_eq!(rejected[0]["data"]["via"], "browser");
    assert_eq!(rejected[0]["data"]["reason"], "rude to the user");
    let history = eval(&tab, "document.body.innerText");
    assert!(
        history.as_str().unwrap().contains("rude to the user"),
        "{history}"
    );
    fx.env.assert_ledger_ok();
}
