//! Issue 14: the human output of the main flows as whole transcripts, one
//! snapshot per flow, so that every change in wording shows as a diff.
//! Each transcript is a sequence of `$ airlock ARGS` lines, each followed by
//! what the command printed (stdout, then stderr) and `[exit N]`. Only what
//! changes between runs is replaced (see [`filters`]); the words stay.

mod common;

use std::fmt::Write as _;
use std::path::PathBuf;

use common::*;

/// A run's whole human (or `--json`) conversation with airlock.
struct Transcript<'e> {
    env: &'e Env,
    text: String,
    /// Literal strings replaced by a placeholder before the generic filters
    /// (a port, a stale digest the test chose).
    literals: Vec<(String, String)>,
}

impl<'e> Transcript<'e> {
    fn new(env: &'e Env) -> Transcript<'e> {
        Transcript {
            env,
            text: String::new(),
            literals: Vec::new(),
        }
    }

    /// Shows `literal` as `placeholder` in the snapshot.
    fn name(&mut self, literal: &str, placeholder: &str) {
        self.literals
            .push((regex_escape(literal), placeholder.to_string()));
    }

    fn run(&mut self, args: &[&str]) -> Output {
        self.run_env(args, &[])
    }

    fn run_env(&mut self, args: &[&str], envs: &[(&str, &str)]) -> Output {
        let out = self.env.airlock_env(args, envs);
        let shown: Vec<String> = args.iter().map(|a| shell_quote(a)).collect();
        writeln!(self.text, "$ airlock {}", shown.join(" ")).unwrap();
        for stream in [&out.stdout, &out.stderr] {
            self.text.push_str(stream);
            if !stream.is_empty() && !stream.ends_with('\n') {
                self.text.push('\n');
            }
        }
        writeln!(self.text, "[exit {}]\n", out.code).unwrap();
        out
    }

    /// `start BRIEF` as the human types it; returns the run id and worktree.
    fn start(&mut self, brief: &str, name: &str) -> (String, PathBuf) {
        let path = self.env.write_brief(name, brief);
        let out = self.run(&["start", &path]);
        assert_eq!(out.code, 0, "{}", out.stderr);
        let runs = self.env.json(&["list"], 0)["runs"]
            .as_array()
            .unwrap()
            .clone();
        let run = runs.last().unwrap()["run"].as_str().unwrap().to_string();
        let worktree = self
            .env
            .state_dir()
            .join("runs")
            .join(&run)
            .join("worktree");
        assert!(worktree.is_dir(), "{}", worktree.display());
        (run, worktree)
    }

    fn snapshot(self, name: &str) {
        let mut settings = insta::Settings::clone_current();
        for (literal, placeholder) in &self.literals {
            settings.add_filter(literal, placeholder.as_str());
        }
        for (regex, placeholder) in filters(self.env) {
            settings.add_filter(&regex, placeholder);
        }
        settings.set_omit_expression(true);
        settings.bind(|| insta::assert_snapshot!(name, self.text));
    }
}

/// What changes from one test run to the next, and only that.
fn filters(env: &Env) -> Vec<(String, &'static str)> {
    vec![
        // The test's temporary directory (repository, HOME, briefs).
        (regex_escape(&env.tmp.path().display().to_string()), "[TMP]"),
        // An action's idempotency key.
        (
            r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b".into(),
            "[UUID]",
        ),
        // A run id is its title's slug and four random hex digits.
        (
            r"\b([a-z][a-z0-9]*(?:-[a-z0-9]+)*?)-[0-9a-f]{4}\b".into(),
            "$1-[ID]",
        ),
        // The signing key made for the test: its public half and fingerprint.
        (r"\bAAAA[0-9A-Za-z+/]+={0,2}".into(), "[PUBLIC-KEY]"),
        (
            r"\bSHA256:[0-9A-Za-z+/]{43}".into(),
            "SHA256:[KEY-FINGERPRINT]",
        ),
        // Times, as RFC 3339 and as a run's age in `list`.
        (
            r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d)".into(),
            "[TIME]",
        ),
        (r"\b\d+[smhd] {2,}".into(), "[AGE]  "),
        // Durations.
        (r"\b\d+(?:\.\d+)?( ?)(ms|µs|s)\b".into(), "[N]$1$2"),
        (r#""(\w*_ms|age_seconds)": ?\d+"#.into(), "\"$1\": [N]"),
        // Digests (sha256), commits, log file names, and abbreviations; not
        // the hex-looking tail of a word (`ssh-ed25519`).
        (r"\b[0-9a-f]{64}\b".into(), "[DIGEST]"),
        (r"\b[0-9a-f]{40}\b".into(), "[COMMIT]"),
        (r"\b[0-9a-f]{17,39}\b".into(), "[HEX]"),
        (r"(^|[^-\w])[0-9a-f]{7,16}\b".into(), "$1[SHORT]"),
    ]
}

fn regex_escape(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '/' || c == '_' {
                c.to_string()
            } else {
                format!("\\{c}")
            }
        })
        .collect()
}

fn shell_quote(arg: &str) -> String {
    if !arg.is_empty()
        && arg
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:@,+".contains(c))
    {
        arg.to_string()
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}

fn brief_titled(title: &str) -> String {
    BRIEF.replace("Make greet polite", title)
}

fn polite_edit(worktree: &std::path::Path) {
    write(
        &worktree.join("src/app.sh"),
        "#!/bin/sh\necho hello, please\n",
    );
}

// ---------------------------------------------------------------- flows

#[test]
fn init_in_a_fresh_repository() {
    let env = Env::bare();
    env.write("src/app.sh", "#!/bin/sh\necho hello\n");
    env.write("tests/run.sh", "#!/bin/sh\nsh src/app.sh | grep -q hello\n");
    env.git(&["add", "-A"]);
    env.git(&["commit", "-q", "-m", "initial"]);
    let mut t = Transcript::new(&env);
    t.run(&["init"]);
    // A second init keeps what is there.
    t.run(&["init"]);
    t.run(&["--json", "init"]);
    t.snapshot("init");
}

#[test]
fn main_flow_from_start_to_promotion_and_rollback() {
    let env = Env::new();
    let mut t = Transcript::new(&env);
    let (run, wt) = t.start(BRIEF, "polite");
    polite_edit(&wt);
    t.run(&["exec", &run, "--", "sh", "src/app.sh"]);
    t.run(&["exec", &run, "--", "sh", "-c", "echo broken >&2; exit 3"]);
    t.run(&["check", &run]);
    t.run(&["submit", &run]);
    t.run(&["show", &run]);
    t.run(&["approve", &run]);
    t.run(&["promote", &run]);
    t.run(&["rollback", &run, "--reason", "greets too politely"]);
    t.run(&["show", &run, "--no-diff"]);
    t.snapshot("main_flow");
}

#[test]
fn main_flow_as_json() {
    let env = Env::new();
    let mut t = Transcript::new(&env);
    let path = env.write_brief("polite", BRIEF);
    let started = t.run(&["--json", "start", &path]);
    let run = started.json()["run"].as_str().unwrap().to_string();
    let wt = PathBuf::from(started.json()["worktree"].as_str().unwrap());
    polite_edit(&wt);
    t.run(&["--json", "exec", &run, "--", "sh", "src/app.sh"]);
    t.run(&[
        "--json",
        "exec",
        &run,
        "--",
        "sh",
        "-c",
        "echo broken >&2; exit 3",
    ]);
    t.run(&["--json", "check", &run]);
    t.run(&["--json", "submit", &run]);
    t.run(&["--json", "show", &run]);
    t.run(&["--json", "approve", &run]);
    t.run(&["--json", "promote", &run]);
    t.run(&[
        "--json",
        "rollback",
        &run,
        "--reason",
        "greets too politely",
    ]);
    t.run(&["--json", "list"]);
    t.snapshot("main_flow_json");
}

#[test]
fn refusals_scope_stale_digest_not_approved_unknown_and_ambiguous_runs() {
    let env = Env::new();
    let mut t = Transcript::new(&env);
    // A change outside the brief's touch list, and a protected path.
    let (wide, wt) = t.start(&brief_titled("Make greet loud"), "loud");
    polite_edit(&wt);
    write(&wt.join("docs/guide.md"), "# Guide, edited\n");
    write(&wt.join("ci/pipeline.yml"), "steps: [deploy]\n");
    t.run(&["check", &wide]);
    t.run(&["submit", &wide]);
    // Approving with a digest that is not the proof's.
    let (run, wt) = t.start(BRIEF, "polite");
    polite_edit(&wt);
    env.json(&["check", &run], 0);
    t.run(&["submit", &run]);
    t.name("0badc0ffee00", "[STALE-DIGEST]");
    t.run(&["approve", &run, "--digest", "0badc0ffee00"]);
    // Promoting what nobody approved.
    t.run(&["promote", &run]);
    // Runs that do not exist, or a prefix naming two.
    t.run(&["show", "no-such-run"]);
    t.run(&["approve", "make-greet"]);
    t.snapshot("refusals");

    // The same refusals as `--json` documents.
    let mut t = Transcript::new(&env);
    t.name("0badc0ffee00", "[STALE-DIGEST]");
    t.run(&["--json", "check", &wide]);
    t.run(&["--json", "submit", &wide]);
    t.run(&["--json", "approve", &run, "--digest", "0badc0ffee00"]);
    t.run(&["--json", "promote", &run]);
    t.run(&["--json", "show", "no-such-run"]);
    t.run(&["--json", "approve", "make-greet"]);
    t.snapshot("refusals_json");
}

#[test]
fn redirect_reject_and_the_review_queue() {
    let env = Env::new();
    let mut t = Transcript::new(&env);
    t.run(&["review"]);
    let (first, wt) = t.start(BRIEF, "polite");
    polite_edit(&wt);
    env.json(&["check", &first], 0);
    env.json(&["submit", &first], 0);
    let (second, wt) = t.start(&brief_titled("Try a risky thing"), "risky");
    polite_edit(&wt);
    env.json(&["check", &second], 0);
    env.json(&["submit", &second], 0);
    t.run(&["review"]);
    t.run(&["redirect", &first, "--reason", "also greet by name"]);
    t.run(&["reject", &second, "--reason", "not what we need"]);
    t.run(&["review"]);
    t.run(&["list"]);
    t.snapshot("redirect_reject_review");
}

#[test]
fn ledger_verify_and_log() {
    let env = Env::new();
    let (run, _) = env.approved();
    env.json(&["promote", &run], 0);
    env.json(&["rollback", &run, "--reason", "greets too politely"], 0);
    let mut t = Transcript::new(&env);
    t.run(&["ledger", "verify"]);
    t.run(&["log"]);
    t.run(&["log", &run]);
    t.run(&["--json", "ledger", "verify"]);
    t.run(&["--json", "log", &run]);
    t.snapshot("ledger_verify_and_log");
}

/// An HTTP server on 127.0.0.1 answering 202 and counting what it receives.
struct HttpPeer {
    port: u16,
    received: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl HttpPeer {
    fn start() -> HttpPeer {
        let server = tiny_http::Server::http("127.0.0.1:0").unwrap();
        let port = server.server_addr().to_ip().unwrap().port();
        let received = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let count = received.clone();
        std::thread::spawn(move || {
            for rq in server.incoming_requests() {
                count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let _ = rq.respond(
                    tiny_http::Response::from_string("{\"queued\": true}").with_status_code(202),
                );
            }
        });
        HttpPeer { port, received }
    }

    fn received(&self) -> usize {
        self.received.load(std::sync::atomic::Ordering::SeqCst)
    }
}

#[test]
fn an_http_action_proposed_planned_approved_and_performed_once() {
    let server = HttpPeer::start();
    let env = Env::new();
    env.write(
        ".airlock/workflow.toml",
        &format!(
            r#"{WORKFLOW}
[lanes.governed]
scopes = ["http:POST:127.0.0.1:*"]
action_env = ["HOOK_TOKEN"]

[[actions.fixtures]]
method = "POST"
url = "http://127.0.0.1:{port}/hooks/*"
status = 202
body = '{{"queued": true}}'
"#,
            port = server.port
        ),
    );
    env.git(&["commit", "-qam", "workflow grants http"]);
    let action = env.tmp.path().join("actions/notify.toml");
    write(
        &action,
        &format!(
            r#"kind = "http"
name = "notify"
scopes = ["http:POST:127.0.0.1:{port}/*"]
method = "POST"
url = "http://127.0.0.1:{port}/hooks/deploy"
body = '{{"ref": "main"}}'
[headers]
Content-Type = "application/json"
Authorization = "Bearer ${{HOOK_TOKEN}}"
"#,
            port = server.port
        ),
    );
    let action = action.display().to_string();
    let mut t = Transcript::new(&env);
    t.name(&format!("127.0.0.1:{}", server.port), "127.0.0.1:[PORT]");
    let (run, wt) = t.start(BRIEF, "polite");
    polite_edit(&wt);
    t.run(&["propose", &run, &action]);
    t.run(&["check", &run]);
    t.run(&["submit", &run]);
    t.run(&["plan", &run]);
    t.run(&["approve", &run]);
    assert_eq!(server.received(), 0, "nothing is sent before promotion");
    t.run_env(&["promote", &run], &[("HOOK_TOKEN", "tok-42")]);
    assert_eq!(server.received(), 1);
    t.run_env(
        &["promote", &run, "--actions-only"],
        &[("HOOK_TOKEN", "tok-42")],
    );
    assert_eq!(server.received(), 1, "performed exactly once");
    t.run(&["plan", &run]);
    t.snapshot("http_action");

    // The plan and the promotion's actions as `--json` documents.
    let mut t = Transcript::new(&env);
    t.name(&format!("127.0.0.1:{}", server.port), "127.0.0.1:[PORT]");
    t.run(&["--json", "plan", &run]);
    t.run_env(
        &["--json", "promote", &run, "--actions-only"],
        &[("HOOK_TOKEN", "tok-42")],
    );
    assert_eq!(server.received(), 1, "performed exactly once");
    t.snapshot("http_action_json");
}

/// Issue 18: a run with a staging and a production action under a soak
/// gate, promoted in two stages; the clock is the test build's
/// (`AIRLOCK_TEST_NOW`), moved forward command by command.
#[test]
fn soak_promotes_staging_then_production_after_the_soak() {
    let server = HttpPeer::start();
    let port = server.port;
    let env = Env::new();
    env.write(
        ".airlock/workflow.toml",
        &format!(
            r#"{WORKFLOW}
[gates.staging-clean]
soak = "24h"
probe = "echo staging answers 200"
every = "1h"

[lanes.staging]
scopes = ["http:POST:127.0.0.1:{port}/staging/*"]

[lanes.production]
scopes = ["http:POST:127.0.0.1:{port}/prod/*"]
"#
        ),
    );
    env.git(&["commit", "-qam", "soak gate"]);
    let mut t = Transcript::new(&env);
    t.name(&format!("127.0.0.1:{port}"), "127.0.0.1:[PORT]");
    let (run, wt) = t.start(&format!("{BRIEF}lane = \"production\"\n"), "polite");
    polite_edit(&wt);
    for (name, path) in [("deploy-staging", "staging"), ("deploy-prod", "prod")] {
        let file = env.tmp.path().join(format!("actions/{name}.toml"));
        write(
            &file,
            &format!(
                "kind = \"http\"\nname = \"{name}\"\nscopes = [\"http:POST:127.0.0.1:{port}/{path}/*\"]\nmethod = \"POST\"\nurl = \"http://127.0.0.1:{port}/{path}/deploy\"\n"
            ),
        );
        env.json(&["propose", &run, file.to_str().unwrap()], 0);
    }
    env.json(&["check", &run], 0);
    env.json(&["submit", &run], 0);
    env.json(&["approve", &run], 0);
    fn now(t: &str) -> [(&str, &str); 1] {
        [("AIRLOCK_TEST_NOW", t)]
    }
    t.run_env(&["promote", &run], &now("2030-01-01T00:00:00Z"));
    assert_eq!(server.received(), 1, "the staging action alone");
    t.run_env(&["soak", &run], &now("2030-01-01T00:50:00Z"));
    t.run_env(&["soak", &run], &now("2030-01-01T01:10:00Z"));
    t.run_env(&["promote", &run], &now("2030-01-01T23:00:00Z"));
    assert_eq!(server.received(), 1, "nothing before the soak is over");
    t.run_env(&["promote", &run], &now("2030-01-02T00:00:00Z"));
    assert_eq!(server.received(), 2, "the production action, once");
    t.snapshot("soak");
}
