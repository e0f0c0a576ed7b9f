//! `airlock serve` in a real browser: headless Chromium (Debian's
//! `chromium`, which `.ci/run` installs) driven over the DevTools protocol
//! by `headless_chrome`, against the real `airlock serve --port 0 --json`
//! on a test repository with real runs. Every process a test starts (the
//! server, the browser, a second "attacker" web server) is stopped by a guard.

mod common;

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

/// A headless Chromium with a throwaway profile; killed when dropped.
struct Chromium {
    browser: Browser,
}

impl Chromium {
    fn launch() -> Chromium {
        let options = LaunchOptions::default_builder()
            .path(Some(chromium_path()))
            .headless(true)
            // Chromium refuses to start as root with its own sandbox on, and
            // CI runs the tests as root: only then is it turned off. The
            // pages it loads are the test's own.
            .sandbox(!rustix::process::getuid().is_root())
            .window_size(Some((1280, 1000)))
            // The connection is kept while a test runs airlock commands.
            .idle_browser_timeout(Duration::from_secs(300))
            .build()
            .unwrap();
        let browser = Browser::new(options)
            .unwrap_or_else(|e| panic!("could not start {}: {e}", chromium_path().display()));
        Chromium { browser }
    }

    /// A new tab in a fresh browser context (its own cookie jar), with a
    /// recorder of Content-Security-Policy violations installed before any
    /// page script (DevTools' scripts are not subject to the page's CSP).
    fn tab(&self) -> Arc<Tab> {
        let tab = self.browser.new_tab().unwrap();
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

fn screenshot(tab: &Tab) -> Vec<u8> {
    tab.capture_screenshot(Page::CaptureScreenshotFormatOption::Png, None, None, true)
        .unwrap()
}

/// Where a test keeps what a person should look at after the run:
/// `<target>/test-artifacts/web/`.
fn artifacts_dir() -> PathBuf {
    let target_tmp = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let dir = target_tmp.parent().unwrap().join("test-artifacts/web");
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
/// site), answering every GET with `page` and recording what is POSTed to it.
struct OtherSite {
    server: Arc<tiny_http::Server>,
    thread: Option<std::thread::JoinHandle<()>>,
    origin: String,
    posted: Arc<Mutex<Vec<String>>>,
}

impl OtherSite {
    fn start(page: String) -> OtherSite {
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").unwrap());
        let origin = format!(
            "http://127.0.0.1:{}",
            server.server_addr().to_ip().unwrap().port()
        );
        let posted = Arc::new(Mutex::new(Vec::new()));
        let (serving, seen) = (server.clone(), posted.clone());
        let thread = std::thread::spawn(move || {
            for mut rq in serving.incoming_requests() {
                let mut body = String::new();
                let _ = rq.as_reader().read_to_string(&mut body);
                let answer = if *rq.method() == tiny_http::Method::Post {
                    seen.lock().unwrap().push(body);
                    "received".to_string()
                } else {
                    page.clone()
                };
                let html =
                    tiny_http::Header::from_bytes("Content-Type", "text/html; charset=utf-8")
                        .unwrap();
                let _ = rq.respond(tiny_http::Response::from_string(answer).with_header(html));
            }
        });
        OtherSite {
            server,
            thread: Some(thread),
            origin,
            posted,
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

// ---- The harness itself ------------------------------------------------------

/// The harness works here (and as root in CI): Chromium starts, navigates,
/// answers DOM queries, submits a form, reports a CSP violation and takes a
/// screenshot, against a page of the test's own.
#[test]
fn the_browser_harness_drives_chromium() {
    let site = OtherSite::start(
        "<!doctype html><html><head><title>harness</title></head><body>\
         <h1 id=greeting>hello, browser</h1>\
         <form method=post action=/submit><input name=field value=v1>\
         <button id=send>send</button></form></body></html>"
            .to_string(),
    );
    let chromium = Chromium::launch();
    let tab = chromium.tab();
    assert_eq!(goto(&tab, &site.origin), 200);
    assert_eq!(
        tab.find_element("#greeting")
            .unwrap()
            .get_inner_text()
            .unwrap(),
        "hello, browser"
    );
    let shot = screenshot(&tab);
    let (width, height) = png_size(&shot);
    assert!(width == 1280 && height > 0, "{width}x{height}");
    tab.find_element("#send").unwrap().click().unwrap();
    tab.wait_until_navigated().unwrap();
    assert_eq!(body_text(&tab), "received");
    assert_eq!(*site.posted.lock().unwrap(), vec!["field=v1".to_string()]);
    assert!(csp_violations(&tab).is_empty());
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
fn hidden_text() -> String {
    format!(
        "admin\u{202E}txt.sh is\u{2066}iso\u{2069} \u{2067}rtl\u{2069} \u{2068}fsi\u{2069} \
         zero\u{200B}width join\u{200D}er bom\u{FEFF}here"
    )
}

/// A repository with two runs in review: a plain one (a one-line change)
/// and the hostile one.
struct Fixture {
    env: Env,
    plain: String,
    hostile: String,
}

fn fixture() -> Fixture {
    let env = Env::new();
    let (plain, _) = env.submitted();
    let hidden = hidden_text();
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
    let hostile = started["run"].as_str().unwrap().to_string();
    let wt = PathBuf::from(started["worktree"].as_str().unwrap());
    write(
        &wt.join("src/app.sh"),
        &format!("#!/bin/sh\necho hello\n# {MARKUP}\n# {hidden}\n"),
    );
    write(&wt.join(format!("src/{MARKUP_NAME}")), "named\n");
    write(
        &wt.join(format!("src/{}", "admin\u{202E}txt.sh")),
        "bidi name\n",
    );
    write(&wt.join("src/zero\u{200B}width.txt"), "zero width name\n");
    // The gate's output is the agent's too: its test script prints the payload.
    write(
        &wt.join("tests/run.sh"),
        &format!("#!/bin/sh\necho '{MARKUP}' '{hidden}'\nsh src/app.sh | grep -q hello\n"),
    );
    env.json(&["check", &hostile], 0);
    env.json(&["submit", &hostile], 0);
    Fixture {
        env,
        plain,
        hostile,
    }
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

#[test]
fn the_fixture_runs_are_in_review() {
    let fx = fixture();
    assert_eq!(fx.env.state(&fx.plain), "in_review");
    assert_eq!(fx.env.state(&fx.hostile), "in_review");
    let shown = fx.env.json(&["show", &fx.hostile], 0);
    eprintln!("{}", serde_json::to_string_pretty(&shown).unwrap());
}
