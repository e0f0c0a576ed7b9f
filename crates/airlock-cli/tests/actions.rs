//! Staged side effects against real peers on 127.0.0.1: an HTTP server
//! (tiny_http) in this process, an SMTP server (Python's aiosmtpd) in a child
//! process, and a bare git repository as the remote. Nothing is mocked: the
//! airlock binary's own HTTP and SMTP clients and git do the talking.

mod common;

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

use common::*;
use serde_json::Value;

// ---------------------------------------------------------------- peers

#[derive(Debug, Clone)]
struct Request {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: String,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// An HTTP server answering with `statuses` in turn (the last one repeats)
/// and recording every request.
struct HttpPeer {
    port: u16,
    requests: Arc<Mutex<Vec<Request>>>,
}

impl HttpPeer {
    fn start(statuses: &[u16]) -> HttpPeer {
        let server = tiny_http::Server::http("127.0.0.1:0").unwrap();
        let port = server.server_addr().to_ip().unwrap().port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = requests.clone();
        let statuses = statuses.to_vec();
        std::thread::spawn(move || {
            for (i, mut rq) in server.incoming_requests().enumerate() {
                let mut body = String::new();
                let _ = rq.as_reader().read_to_string(&mut body);
                seen.lock().unwrap().push(Request {
                    method: rq.method().to_string(),
                    path: rq.url().to_string(),
                    headers: rq
                        .headers()
                        .iter()
                        .map(|h| (h.field.to_string(), h.value.to_string()))
                        .collect(),
                    body,
                });
                let status = statuses[i.min(statuses.len() - 1)];
                let _ = rq.respond(
                    tiny_http::Response::from_string(format!("{{\"seen\":{}}}", i + 1))
                        .with_status_code(status),
                );
            }
        });
        HttpPeer { port, requests }
    }

    fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }
}

/// aiosmtpd delivering into a Maildir. `None` when it is not installed and
/// `CI` is unset (CI installs it and requires it).
struct SmtpPeer {
    child: Child,
    port: u16,
    maildir: PathBuf,
}

impl SmtpPeer {
    fn start(dir: &Path) -> Option<SmtpPeer> {
        let has_it = Command::new("python3")
            .args(["-c", "import aiosmtpd"])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !has_it {
            assert!(
                std::env::var_os("CI").is_none(),
                "Python's aiosmtpd is required on CI: `python3 -m pip install aiosmtpd`"
            );
            eprintln!(
                "skipping: Python's aiosmtpd is not installed (`python3 -m pip install aiosmtpd`)"
            );
            return None;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let maildir = dir.join("maildir");
        let mut child = Command::new("python3")
            .args(["-m", "aiosmtpd", "-n", "-l"])
            .arg(format!("127.0.0.1:{port}"))
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(&maildir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        for _ in 0..200 {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Some(SmtpPeer {
                    child,
                    port,
                    maildir,
                });
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("aiosmtpd did not start listening on 127.0.0.1:{port}");
    }

    /// The delivered messages, as text.
    fn messages(&self) -> Vec<String> {
        let mut out = Vec::new();
        for sub in ["new", "cur"] {
            if let Ok(rd) = std::fs::read_dir(self.maildir.join(sub)) {
                for e in rd {
                    out.push(std::fs::read_to_string(e.unwrap().path()).unwrap());
                }
            }
        }
        out
    }
}

impl Drop for SmtpPeer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------- set-up

const LANE: &str = r#"
[lanes.governed]
scopes = [
  "http:POST:127.0.0.1:*",
  "email:send:*@example.com",
  "email:from:bot@example.com",
  "git:push:origin:refs/heads/release/*",
  "command:notify",
]
action_env = ["HOOK_TOKEN"]
"#;

/// A repository whose workflow grants the governed lane some scopes, with a
/// bare repository as `origin`, plus `extra` workflow text.
fn setup(extra: &str) -> Env {
    let env = Env::new();
    env.write(
        ".airlock/workflow.toml",
        &format!("{WORKFLOW}{LANE}{extra}"),
    );
    env.git(&["add", "-A"]);
    env.git(&["commit", "-q", "-m", "workflow grants scopes"]);
    let remote = env.tmp.path().join("remote.git");
    env.git(&["init", "-q", "--bare", remote.to_str().unwrap()]);
    env.git(&["remote", "add", "origin", remote.to_str().unwrap()]);
    env.git(&["push", "-q", "origin", "main"]);
    env
}

/// Writes an action file outside the repository; returns its path.
fn action_file(env: &Env, name: &str, text: &str) -> String {
    let path = env.tmp.path().join("actions").join(format!("{name}.toml"));
    write(&path, text);
    path.display().to_string()
}

/// Starts a run with an in-scope edit, ready to be checked.
fn edited_run(env: &Env) -> (String, PathBuf) {
    let (run, wt) = env.start(BRIEF);
    write(&wt.join("src/app.sh"), "#!/bin/sh\necho hello, please\n");
    (run, wt)
}

fn check_submit_approve(env: &Env, run: &str) -> Value {
    env.json(&["check", run], 0);
    let submitted = env.json(&["submit", run], 0);
    env.json(&["approve", run], 0);
    submitted
}

fn http_action(port: u16) -> String {
    format!(
        r#"kind = "http"
name = "notify"
scopes = ["http:POST:127.0.0.1:{port}/*"]
method = "POST"
url = "http://127.0.0.1:{port}/hooks/deploy"
body = '{{"ref": "main"}}'
[headers]
Content-Type = "application/json"
Authorization = "Bearer ${{HOOK_TOKEN}}"
"#
    )
}

fn kinds_of(env: &Env, run: &str) -> Vec<String> {
    env.events(Some(run))
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_string())
        .collect()
}

fn plan_of(env: &Env, run: &str) -> Vec<Value> {
    env.json(&["plan", run], 0)["actions"]
        .as_array()
        .unwrap()
        .clone()
}

// ---------------------------------------------------------------- http

#[test]
fn an_http_action_is_previewed_masked_rehearsed_then_sent_exactly_once_after_approval() {
    let server = HttpPeer::start(&[202]);
    let env = setup(&format!(
        r#"
[actions]
env = ["HOOK_KEY"]
[[actions.fixtures]]
method = "POST"
url = "http://127.0.0.1:{}/hooks/*"
status = 202
body = '{{"queued": true}}'
"#,
        server.port
    ));
    let (run, _) = edited_run(&env);
    let text = format!(
        "{}X-Api-Key = \"${{HOOK_KEY}}\"\n",
        http_action(server.port)
    );
    let file = action_file(&env, "notify", &text);
    let out = env.airlock(&["propose", &run, &file]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    // The preview shows the request; the literal credential is masked,
    // the environment reference is shown as a reference.
    assert!(
        out.stdout.contains(&format!(
            "POST http://127.0.0.1:{}/hooks/deploy",
            server.port
        )),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("Authorization: Bearer ${HOOK_TOKEN}"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("X-Api-Key: ${HOOK_KEY}"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("rehearsal: ok: the recorded fixture"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("{\"queued\": true}"), "{}", out.stdout);
    assert!(server.requests().is_empty(), "proposing sent something");

    let submitted = check_submit_approve(&env, &run);
    assert!(
        server.requests().is_empty(),
        "submit or approve sent something"
    );
    // The proof carries the action, masked, with its digests.
    let bundle = std::fs::read_to_string(submitted["proof"].as_str().unwrap()).unwrap();
    let statement = actions_statement(&bundle);
    let listed = &statement["predicate"]["actions"][0];
    assert_eq!(listed["name"], "notify");
    assert_eq!(listed["kind"], "http");
    assert_eq!(listed["digest"], plan_of(&env, &run)[0]["digest"]);
    assert_eq!(listed["spec"]["headers"][2][1], "${HOOK_KEY}");

    let out = env.airlock_env(
        &["promote", &run],
        &[
            ("HOOK_TOKEN", "tok-42"),
            ("HOOK_KEY", "key-from-the-environment"),
        ],
    );
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains("notify (http): done: HTTP 202"),
        "{}",
        out.stdout
    );
    let requests = server.requests();
    assert_eq!(requests.len(), 1, "{requests:?}");
    let r = &requests[0];
    assert_eq!(
        (r.method.as_str(), r.path.as_str()),
        ("POST", "/hooks/deploy")
    );
    assert_eq!(r.body, "{\"ref\": \"main\"}");
    assert_eq!(r.header("Authorization"), Some("Bearer tok-42"));
    assert_eq!(r.header("X-Api-Key"), Some("key-from-the-environment"));
    let key = r.header("Idempotency-Key").unwrap().to_string();
    assert_eq!(key, listed["idempotency_key"].as_str().unwrap());

    // Applying again sends nothing.
    let again = env.json(&["promote", &run, "--actions-only"], 0);
    assert_eq!(again["actions"]["actions"][0]["summary"], "already done");
    assert_eq!(server.requests().len(), 1);
    let kinds = kinds_of(&env, &run);
    let started = kinds.iter().filter(|k| *k == "action-started").count();
    let finished = kinds.iter().filter(|k| *k == "action-finished").count();
    assert_eq!((started, finished), (1, 1), "{kinds:?}");
    env.assert_ledger_ok();
}

/// Every file under `dir` whose bytes contain `needle`.
fn files_containing(dir: &Path, needle: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in rd.flatten() {
        let path = e.path();
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if meta.is_dir() {
            out.extend(files_containing(&path, needle));
        } else if meta.is_file()
            && let Ok(bytes) = std::fs::read(&path)
            && bytes.windows(needle.len()).any(|w| w == needle.as_bytes())
        {
            out.push(path);
        }
    }
    out
}

/// The token an http action sends is read by airlock when it applies the
/// action, and never reaches a command of the run: the agent's `exec`s and
/// the gates (whose script the agent may rewrite) run with it in airlock's
/// environment and print theirs, and the token is in no log.
#[test]
fn an_action_token_reaches_the_action_and_never_a_sandboxed_command() {
    const TOKEN: &str = "tok-only-for-the-webhook-7f3a";
    let server = HttpPeer::start(&[200]);
    let env = setup("");
    let (run, wt) = edited_run(&env);
    // The agent rewrites a gate's script to print everything it is given.
    write(
        &wt.join("tests/run.sh"),
        "#!/bin/sh
env
echo \"gate-token=$HOOK_TOKEN\"
sh src/app.sh | grep -q hello
",
    );
    let with_token = [("HOOK_TOKEN", TOKEN)];
    let out = env.airlock_env(
        &[
            "exec",
            &run,
            "--",
            "sh",
            "-c",
            "env; echo \"exec-token=$HOOK_TOKEN\"",
        ],
        &with_token,
    );
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("exec-token=\n"), "{}", out.stdout);
    assert!(!out.stdout.contains(TOKEN), "{}", out.stdout);
    env.json(
        &[
            "propose",
            &run,
            &action_file(&env, "notify", &http_action(server.port)),
        ],
        0,
    );
    let out = env.airlock_env(&["--json", "check", &run], &with_token);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    env.json(&["submit", &run], 0);
    env.json(&["approve", &run], 0);
    let state = env.state_dir();
    let gate_logs: Vec<PathBuf> = std::fs::read_dir(state.join("runs").join(&run).join("logs"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| std::fs::read_to_string(p).is_ok_and(|t| t.contains("gate-token=")))
        .collect();
    assert!(!gate_logs.is_empty(), "the gate ran and printed");
    assert_eq!(files_containing(&state, TOKEN), Vec::<PathBuf>::new());

    let out = env.airlock_env(&["promote", &run], &with_token);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let requests = server.requests();
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert_eq!(
        requests[0].header("Authorization"),
        Some(format!("Bearer {TOKEN}").as_str())
    );
    assert_eq!(files_containing(&state, TOKEN), Vec::<PathBuf>::new());
}

/// A workflow that hands an action's token to commands too is refused, by
/// every command, naming the line; one that only passes it to commands (as
/// before actions had their own list) has its actions refused with the way
/// out.
#[test]
fn an_action_token_in_pass_env_is_refused() {
    let env = setup("");
    let (run, _) = edited_run(&env);
    env.write(
        ".airlock/workflow.toml",
        &format!(
            "{WORKFLOW}{LANE}\n[actions]\nenv = [\"DEPLOY_KEY\"]\n[actions.smtp]\nhost = \"127.0.0.1\"\ntls = \"none\"\nusername_env = \"SMTP_USER\"\npassword_env = \"SMTP_PASSWORD\"\n"
        )
        .replace("action_env = [\"HOOK_TOKEN\"]", "action_env = [\"HOOK_TOKEN\"]\npass_env = [\"HOOK_TOKEN\", \"DEPLOY_KEY\", \"SMTP_PASSWORD\", \"LANG\"]"),
    );
    let out = env.airlock_env(&["exec", &run, "--", "true"], &[("HOOK_TOKEN", "t")]);
    assert_eq!(out.code, 2, "{}\n{}", out.stdout, out.stderr);
    for needle in [
        "`HOOK_TOKEN` is read by actions ([lanes.governed] action_env) and also passed to every command by [lanes.governed] pass_env",
        "`DEPLOY_KEY` is read by actions ([actions] env)",
        "`SMTP_PASSWORD` is read by actions ([actions.smtp] password_env)",
        "remove \"HOOK_TOKEN\" from [lanes.governed] pass_env",
    ] {
        assert!(out.stderr.contains(needle), "{needle}\n{}", out.stderr);
    }
    assert!(!out.stderr.contains("`LANG`"), "{}", out.stderr);
    let traces: i64 = env
        .db()
        .query_row("SELECT count(*) FROM traces", [], |r| r.get(0))
        .unwrap();
    assert_eq!(traces, 0, "nothing ran");

    // The token only in pass_env, as a workflow written before `action_env`.
    env.write(
        ".airlock/workflow.toml",
        &format!("{WORKFLOW}{LANE}").replace("action_env", "pass_env"),
    );
    env.git(&["commit", "-q", "-am", "token in pass_env"]);
    refused(
        &env,
        &run,
        "notify",
        &http_action(9),
        1,
        &[
            "reads environment variables the workflow does not give actions of lane `governed`",
            "`HOOK_TOKEN` is in `pass_env`, which passes it to every command of the lane, not to actions",
            "keep them out of `pass_env`",
        ],
    );
    assert!(plan_of(&env, &run).is_empty());
}

fn actions_statement(bundle: &str) -> Value {
    use base64::Engine;
    for line in bundle.lines() {
        let env: Value = serde_json::from_str(line).unwrap();
        let payload = base64::engine::general_purpose::STANDARD
            .decode(env["payload"].as_str().unwrap())
            .unwrap();
        let statement: Value = serde_json::from_slice(&payload).unwrap();
        if statement["predicateType"] == "https://airlock.dev/actions/v1" {
            return statement;
        }
    }
    panic!("no actions statement in the bundle");
}

#[test]
fn an_http_action_killed_after_sending_is_retried_with_the_same_idempotency_key() {
    let server = HttpPeer::start(&[200]);
    let env = setup("");
    let (run, _) = edited_run(&env);
    let file = action_file(&env, "notify", &http_action(server.port));
    env.json(&["propose", &run, &file], 0);
    check_submit_approve(&env, &run);
    let out = env.airlock_env(
        &["promote", &run],
        &[
            ("HOOK_TOKEN", "t"),
            ("AIRLOCK_FAILPOINT", "action:after-live"),
        ],
    );
    assert_eq!(
        out.code, -1,
        "the failpoint kills the process: {}",
        out.stderr
    );
    assert_eq!(server.requests().len(), 1);
    assert_eq!(plan_of(&env, &run)[0]["state"], "started");
    // The merge itself was recorded before any action ran.
    assert_eq!(env.state(&run), "promoted");

    let out = env.airlock_env(&["promote", &run, "--actions-only"], &[("HOOK_TOKEN", "t")]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains("(after an interrupted attempt)"),
        "{}",
        out.stdout
    );
    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(
        requests[0].header("Idempotency-Key"),
        requests[1].header("Idempotency-Key"),
        "a retry must carry the same key so the server can drop the duplicate"
    );
    assert_eq!(plan_of(&env, &run)[0]["state"], "done");
    env.assert_ledger_ok();
}

#[test]
fn a_failing_http_action_stops_promotion_and_is_retried_on_actions_only() {
    let server = HttpPeer::start(&[503, 201]);
    let env = setup("");
    let (run, _) = edited_run(&env);
    env.json(
        &[
            "propose",
            &run,
            &action_file(&env, "notify", &http_action(server.port)),
        ],
        0,
    );
    let second = action_file(
        &env,
        "second",
        &http_action(server.port).replace("name = \"notify\"", "name = \"second\""),
    );
    env.json(&["propose", &run, &second], 0);
    check_submit_approve(&env, &run);
    let out = env.airlock_env(&["promote", &run], &[("HOOK_TOKEN", "t")]);
    assert_eq!(out.code, 1, "{}", out.stdout);
    assert!(
        out.stdout.contains("notify (http): failed: HTTP 503"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains(&format!(
            "run `airlock promote {run} --actions-only` to try it again"
        )),
        "{}",
        out.stdout
    );
    assert_eq!(
        server.requests().len(),
        1,
        "the second action must wait for the first"
    );
    let out = env.airlock_env(&["promote", &run, "--actions-only"], &[("HOOK_TOKEN", "t")]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let requests = server.requests();
    assert_eq!(requests.len(), 3);
    assert_eq!(
        requests[0].header("Idempotency-Key"),
        requests[1].header("Idempotency-Key")
    );
    assert_ne!(
        requests[1].header("Idempotency-Key"),
        requests[2].header("Idempotency-Key")
    );
}

// ---------------------------------------------------------------- email

fn email_setup(smtp: &SmtpPeer) -> Env {
    setup(&format!(
        r#"
[actions.smtp]
host = "127.0.0.1"
port = {}
tls = "none"
"#,
        smtp.port
    ))
}

/// A run whose one action is [`EMAIL`], approved and ready to promote.
fn approved_email_run(smtp: &SmtpPeer) -> (Env, String) {
    let env = email_setup(smtp);
    let (run, _) = edited_run(&env);
    env.json(&["propose", &run, &action_file(&env, "announce", EMAIL)], 0);
    check_submit_approve(&env, &run);
    (env, run)
}

const EMAIL: &str = r#"kind = "email"
name = "announce"
scopes = ["email:send:*@example.com", "email:from:bot@example.com"]
from = "airlock bot <bot@example.com>"
to = ["team@example.com"]
cc = "lead@example.com"
subject = "greet is polite now"
body = "The greeting says please.\n"
attachments = ["src/app.sh"]
"#;

#[test]
fn an_email_action_is_sent_once_through_a_real_smtp_server_with_its_attachment() {
    let dir = tempfile::tempdir().unwrap();
    let Some(smtp) = SmtpPeer::start(dir.path()) else {
        return;
    };
    let env = email_setup(&smtp);
    let (run, _) = edited_run(&env);
    let out = env.airlock(&["propose", &run, &action_file(&env, "announce", EMAIL)]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout.contains("Subject: greet is polite now"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("Attachment: src/app.sh (29 bytes"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains(&format!(
            "sent through 127.0.0.1:{} with no encryption",
            smtp.port
        )),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("rehearsal: ok: 2 recipient(s)"),
        "{}",
        out.stdout
    );
    check_submit_approve(&env, &run);
    assert!(smtp.messages().is_empty());
    let out = env.airlock(&["promote", &run]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stdout
            .contains("announce (email): done: accepted by 127.0.0.1"),
        "{}",
        out.stdout
    );
    let messages = smtp.messages();
    assert_eq!(messages.len(), 1);
    let m = &messages[0];
    assert!(m.contains("Subject: greet is polite now"), "{m}");
    assert!(m.contains("To: team@example.com"), "{m}");
    assert!(m.contains("Cc: lead@example.com"), "{m}");
    let key = plan_of(&env, &run)[0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(!key.is_empty());
    assert!(
        m.contains("@airlock>"),
        "Message-ID from the idempotency key: {m}"
    );
    // The attachment is the approved file (plain ASCII, so sent as 7bit).
    assert!(
        m.contains("Content-Disposition: attachment; filename=\"app.sh\""),
        "{m}"
    );
    assert!(m.contains("#!/bin/sh\necho hello, please\n"), "{m}");
}

#[test]
fn an_email_killed_after_sending_is_never_resent_without_a_human() {
    let dir = tempfile::tempdir().unwrap();
    let Some(smtp) = SmtpPeer::start(dir.path()) else {
        return;
    };
    let (env, run) = approved_email_run(&smtp);
    let out = env.airlock_env(
        &["promote", &run],
        &[("AIRLOCK_FAILPOINT", "action:after-live")],
    );
    assert_eq!(out.code, -1, "{}", out.stderr);
    assert_eq!(smtp.messages().len(), 1);

    let out = env.airlock(&["promote", &run, "--actions-only"]);
    assert_eq!(out.code, 1, "{}", out.stdout);
    assert!(
        out.stdout
            .contains("announce (email): outcome unknown (after an interrupted attempt)"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains(&format!(
            "`airlock resolve {run} announce --done --reason …`"
        )),
        "{}",
        out.stdout
    );
    // Asking again changes nothing and sends nothing.
    let out = env.airlock(&["promote", &run, "--actions-only"]);
    assert_eq!(out.code, 1);
    assert_eq!(smtp.messages().len(), 1);
    // Rollback refuses while an outcome is unknown.
    let out = env.fails(&["rollback", &run, "--reason", "undo"], 1);
    assert!(
        out.stderr.contains("it is not known what some actions did"),
        "{}",
        out.stderr
    );
    // A reason is required; then the human's word is recorded.
    let out = env.fails(&["resolve", &run, "announce", "--done"], 2);
    assert!(out.stderr.contains("needs a reason"), "{}", out.stderr);
    env.json(
        &[
            "resolve",
            &run,
            "announce",
            "--done",
            "--reason",
            "it is in the team inbox",
        ],
        0,
    );
    let again = env.json(&["promote", &run, "--actions-only"], 0);
    assert_eq!(again["actions"]["complete"], true);
    assert_eq!(smtp.messages().len(), 1, "never sent twice");
    assert!(kinds_of(&env, &run).contains(&"action-resolved".to_string()));
    env.assert_ledger_ok();
}

#[test]
fn an_email_killed_before_sending_is_sent_once_after_a_retry_is_decided() {
    let dir = tempfile::tempdir().unwrap();
    let Some(smtp) = SmtpPeer::start(dir.path()) else {
        return;
    };
    let (env, run) = approved_email_run(&smtp);
    let out = env.airlock_env(
        &["promote", &run],
        &[("AIRLOCK_FAILPOINT", "action:after-started")],
    );
    assert_eq!(out.code, -1, "{}", out.stderr);
    assert!(smtp.messages().is_empty());
    let out = env.airlock(&["promote", &run, "--actions-only"]);
    assert_eq!(out.code, 1, "{}", out.stdout);
    assert!(
        smtp.messages().is_empty(),
        "an unknown outcome is never retried silently"
    );
    env.json(
        &[
            "resolve",
            &run,
            "announce",
            "--retry",
            "--reason",
            "not in the inbox",
        ],
        0,
    );
    env.json(&["promote", &run, "--actions-only"], 0);
    assert_eq!(smtp.messages().len(), 1);
}

// ---------------------------------------------------------------- git push, command, rollback

const PUSH: &str = r#"kind = "git-push"
name = "release"
scopes = ["git:push:origin:refs/heads/release/*"]
remote = "origin"
ref = "refs/heads/release/1.0"
[undo]
kind = "command"
scopes = ["command:notify"]
argv = ["sh", "-c", "echo compensated > \"$MARK\""]
env = []
"#;

#[test]
fn a_push_is_rehearsed_then_pushes_the_promoted_commit_and_rollback_reverts_and_compensates() {
    let env = setup("");
    let remote = env.tmp.path().join("remote.git");
    let mark = env.tmp.path().join("compensated");
    let (run, _) = edited_run(&env);
    let push = PUSH.replace("$MARK", &mark.display().to_string());
    let out = env.airlock(&["propose", &run, &action_file(&env, "release", &push)]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout.contains(
            "rehearsal: ok: `git push --dry-run` to origin refs/heads/release/1.0 would be accepted"
        ),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("M src/app.sh"), "{}", out.stdout);
    let remote_refs = || env.git_in(&remote, &["for-each-ref", "--format=%(refname)"]);
    assert_eq!(remote_refs(), "refs/heads/main", "a dry run pushes nothing");
    check_submit_approve(&env, &run);
    let promoted = env.json(&["promote", &run], 0);
    let merge = promoted["merge"].as_str().unwrap();
    // The promotion records how to undo it, compensations included.
    let events = env.events(Some(&run));
    let promote = events.iter().find(|e| e["kind"] == "promote").unwrap();
    assert_eq!(
        promote["data"]["undo"]["compensations"],
        serde_json::json!(["release"])
    );
    assert_eq!(
        env.git_in(&remote, &["rev-parse", "refs/heads/release/1.0"]),
        merge
    );

    let rolled = env.json(&["rollback", &run, "--reason", "greeting too polite"], 0);
    let revert = rolled["revert"].as_str().unwrap();
    assert_eq!(env.rev("main"), revert);
    assert_eq!(
        env.git(&["rev-parse", &format!("{revert}^")]),
        merge,
        "history is not rewritten"
    );
    assert_eq!(env.read("src/app.sh"), "#!/bin/sh\necho hello\n");
    assert_eq!(std::fs::read_to_string(&mark).unwrap(), "compensated\n");
    assert_eq!(env.state(&run), "rolled_back");
    let events = env.events(Some(&run));
    let rollback = events.iter().find(|e| e["kind"] == "rollback").unwrap();
    assert_eq!(rollback["data"]["class"], "default");
    assert_eq!(rollback["data"]["reason"], "greeting too polite");
    // Nothing is undone twice.
    let out = env.fails(&["rollback", &run, "--reason", "again"], 1);
    assert!(
        out.stderr
            .contains("is rolled_back; `rollback` needs it to be promoted"),
        "{}",
        out.stderr
    );
    env.assert_ledger_ok();
}

#[test]
fn a_push_killed_after_it_happened_is_recognised_on_the_remote_and_not_repeated() {
    let env = setup("");
    let remote = env.tmp.path().join("remote.git");
    let (run, _) = edited_run(&env);
    let push = PUSH.split("[undo]").next().unwrap().to_string();
    env.json(&["propose", &run, &action_file(&env, "release", &push)], 0);
    check_submit_approve(&env, &run);
    let out = env.airlock_env(
        &["promote", &run],
        &[("AIRLOCK_FAILPOINT", "action:after-live")],
    );
    assert_eq!(out.code, -1, "{}", out.stderr);
    let merge = env.rev("main");
    assert_eq!(
        env.git_in(&remote, &["rev-parse", "refs/heads/release/1.0"]),
        merge
    );
    let out = env.airlock(&["promote", &run, "--actions-only"]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("release (git-push): done (after an interrupted attempt): the interrupted push had happened"), "{}", out.stdout);
    let plan = plan_of(&env, &run);
    let attempts = plan[0]["attempts"].as_array().unwrap();
    // The killed attempt left only its `started` event; the one attempt
    // recorded is the recognition, not a second push.
    assert_eq!(attempts.len(), 1, "{attempts:?}");
    assert!(
        attempts[0]["summary"]
            .as_str()
            .unwrap()
            .contains("already holds")
    );
    let kinds = kinds_of(&env, &run);
    assert_eq!(
        kinds.iter().filter(|k| *k == "action-started").count(),
        1,
        "{kinds:?}"
    );
}

/// Every ref of the bare repository at `dir` (empty if it has none).
fn refs_of(env: &Env, dir: &Path) -> String {
    env.git_in(dir, &["for-each-ref", "--format=%(refname) %(objectname)"])
}

fn bare(env: &Env, name: &str) -> PathBuf {
    let dir = env.tmp.path().join(name);
    env.git(&["init", "-q", "--bare", dir.to_str().unwrap()]);
    dir
}

/// Proposes the push (without its compensation) on a fresh edited run;
/// returns the run and `propose`'s output.
fn proposed_push(env: &Env) -> (String, Output) {
    let (run, _) = edited_run(env);
    let push = PUSH.split("[undo]").next().unwrap().to_string();
    let out = env.airlock(&["propose", &run, &action_file(env, "release", &push)]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    (run, out)
}

#[test]
fn a_push_goes_to_the_pushurl_the_reviewer_saw_and_the_proof_signs() {
    let env = setup("");
    let fetch_remote = env.tmp.path().join("remote.git");
    let push_remote = bare(&env, "push-here.git");
    let push_url = push_remote.display().to_string();
    env.git(&["config", "remote.origin.pushurl", &push_url]);
    let (run, out) = proposed_push(&env);
    // The preview names where git sends the push, not the fetch URL.
    assert!(
        out.stdout.contains(&format!("pushes to: {push_url}\n")),
        "{}",
        out.stdout
    );
    let submitted = check_submit_approve(&env, &run);
    let bundle = std::fs::read_to_string(submitted["proof"].as_str().unwrap()).unwrap();
    let listed = &actions_statement(&bundle)["predicate"]["actions"][0];
    assert_eq!(listed["spec"]["urls"], serde_json::json!([push_url]));
    assert!(
        listed["preview"]
            .as_str()
            .unwrap()
            .contains(&format!("pushes to: {push_url}")),
        "{listed}"
    );
    let before = refs_of(&env, &fetch_remote);
    let out = env.airlock(&["promote", &run]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert_eq!(
        env.git_in(&push_remote, &["rev-parse", "refs/heads/release/1.0"]),
        env.rev("main")
    );
    assert_eq!(
        refs_of(&env, &fetch_remote),
        before,
        "the fetch URL got nothing"
    );
}

#[test]
fn insteadof_and_pushinsteadof_rewrites_are_shown_and_followed() {
    let env = setup("");
    let fetch_remote = env.tmp.path().join("remote.git");
    let base = env.tmp.path().display().to_string();
    // insteadOf rewrites the fetch URL; pushInsteadOf wins for a push.
    let fetched = env.tmp.path().join("mirror-fetch");
    let pushed = env.tmp.path().join("mirror-push");
    env.git(&[
        "init",
        "-q",
        "--bare",
        fetched.join("remote.git").to_str().unwrap(),
    ]);
    env.git(&[
        "init",
        "-q",
        "--bare",
        pushed.join("remote.git").to_str().unwrap(),
    ]);
    env.git(&[
        "config",
        &format!("url.{}/.insteadOf", fetched.display()),
        &format!("{base}/"),
    ]);
    let (run, out) = proposed_push(&env);
    let via_insteadof = fetched.join("remote.git").display().to_string();
    assert!(
        out.stdout
            .contains(&format!("pushes to: {via_insteadof}\n")),
        "{}",
        out.stdout
    );
    env.git(&[
        "config",
        &format!("url.{}/.pushInsteadOf", pushed.display()),
        &format!("{base}/"),
    ]);
    let out = env.airlock(&[
        "propose",
        &run,
        &action_file(&env, "release", PUSH.split("[undo]").next().unwrap()),
    ]);
    let via_pushinsteadof = pushed.join("remote.git").display().to_string();
    assert!(
        out.stdout
            .contains(&format!("pushes to: {via_pushinsteadof}\n")),
        "{}",
        out.stdout
    );
    check_submit_approve(&env, &run);
    let out = env.airlock(&["promote", &run]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert_eq!(
        env.git_in(
            &pushed.join("remote.git"),
            &["rev-parse", "refs/heads/release/1.0"]
        ),
        env.rev("main")
    );
    assert_eq!(refs_of(&env, &fetched.join("remote.git")), "");
    assert_eq!(
        refs_of(&env, &fetch_remote).lines().count(),
        1,
        "only main, pushed by the test's setup"
    );
}

#[test]
fn a_push_whose_destination_changed_after_approval_is_refused_before_anything_moves() {
    let env = setup("");
    let approved = env.tmp.path().join("remote.git");
    let elsewhere = bare(&env, "elsewhere.git");
    let (run, _) = proposed_push(&env);
    check_submit_approve(&env, &run);
    // After approval, the remote is pointed elsewhere, each way git allows.
    let redirects: [&[&str]; 3] = [
        &[
            "config",
            "remote.origin.pushurl",
            elsewhere.to_str().unwrap(),
        ],
        &[
            "config",
            &format!("url.{}.pushInsteadOf", elsewhere.display()),
            approved.to_str().unwrap(),
        ],
        &[
            "config",
            &format!("url.{}.insteadOf", elsewhere.display()),
            approved.to_str().unwrap(),
        ],
    ];
    let main_before = env.rev("main");
    let approved_before = refs_of(&env, &approved);
    for redirect in redirects {
        env.git(redirect);
        let before = env.world();
        let out = env.fails(&["promote", &run], 1);
        assert!(
            out.stderr.contains("action `release` of run")
                && out
                    .stderr
                    .contains("would push somewhere the approval does not cover"),
            "{}",
            out.stderr
        );
        assert!(
            out.stderr.contains(&format!(
                "approved: remote `origin` pushes to {}",
                approved.display()
            )),
            "{}",
            out.stderr
        );
        assert!(
            out.stderr.contains(&format!(
                "now: git resolves remote `origin` to {}",
                elsewhere.display()
            )),
            "{}",
            out.stderr
        );
        assert!(
            out.stderr
                .contains("submit it again so the reviewer sees it"),
            "{}",
            out.stderr
        );
        env.assert_unchanged(&before);
        assert_eq!(env.rev("main"), main_before, "nothing merged");
        assert_eq!(refs_of(&env, &approved), approved_before);
        assert_eq!(refs_of(&env, &elsewhere), "", "nothing pushed elsewhere");
        assert_eq!(env.state(&run), "approved");
        env.git(&["config", "--unset", redirect[1]]);
    }
    // Restored, the approved push goes where it was approved to go.
    let out = env.airlock(&["promote", &run]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert_eq!(
        env.git_in(&approved, &["rev-parse", "refs/heads/release/1.0"]),
        env.rev("main")
    );
    assert_eq!(refs_of(&env, &elsewhere), "");
}

#[test]
fn recovery_of_a_push_asks_the_pinned_url_not_where_the_remote_now_leads() {
    let env = setup("");
    let approved = env.tmp.path().join("remote.git");
    let elsewhere = env.tmp.path().join("elsewhere");
    let redirected = elsewhere.join("remote.git");
    env.git(&["init", "-q", "--bare", redirected.to_str().unwrap()]);
    let (run, _) = proposed_push(&env);
    check_submit_approve(&env, &run);
    // Killed after the push started: recovery asks the approved URL, even
    // though the remote now resolves elsewhere, and does not push again.
    let out = env.airlock_env(
        &["promote", &run],
        &[("AIRLOCK_FAILPOINT", "action:after-live")],
    );
    assert_eq!(out.code, -1, "{}", out.stderr);
    // (insteadOf redirects the question too when it is asked by name.)
    env.git(&[
        "config",
        &format!("url.{}/.insteadOf", elsewhere.display()),
        &format!("{}/", env.tmp.path().display()),
    ]);
    let out = env.airlock(&["promote", &run, "--actions-only"]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains("the interrupted push had happened"),
        "{}",
        out.stdout
    );
    assert_eq!(refs_of(&env, &redirected), "");
    assert_eq!(
        env.git_in(&approved, &["rev-parse", "refs/heads/release/1.0"]),
        env.rev("main")
    );
}

#[test]
fn a_push_killed_before_it_left_is_not_sent_to_a_destination_changed_since() {
    let env = setup("");
    let approved = env.tmp.path().join("remote.git");
    let elsewhere = bare(&env, "elsewhere.git");
    let (run, _) = proposed_push(&env);
    check_submit_approve(&env, &run);
    let out = env.airlock_env(
        &["promote", &run],
        &[("AIRLOCK_FAILPOINT", "action:after-started")],
    );
    assert_eq!(out.code, -1, "{}", out.stderr);
    let approved_before = refs_of(&env, &approved);
    env.git(&[
        "config",
        "remote.origin.pushurl",
        elsewhere.to_str().unwrap(),
    ]);
    let out = env.airlock(&["promote", &run, "--actions-only"]);
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stdout
            .contains("not pushed: the remote now resolves to another destination"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("would push somewhere the approval does not cover"),
        "{}",
        out.stdout
    );
    assert_eq!(refs_of(&env, &elsewhere), "");
    assert_eq!(refs_of(&env, &approved), approved_before);
}

#[test]
fn a_pushurl_is_pushed_to_as_written_even_when_a_pushinsteadof_prefix_matches_it() {
    // git does not apply pushInsteadOf to a pushurl, but it does to a URL
    // on the command line: pushing the pinned URL must not be rewritten.
    let env = setup("");
    let base = env.tmp.path().display().to_string();
    let target = bare(&env, "pinned.git");
    let decoy = bare(&env, "decoy");
    env.git(&[
        "init",
        "-q",
        "--bare",
        decoy.join("pinned.git").to_str().unwrap(),
    ]);
    env.git(&["config", "remote.origin.pushurl", target.to_str().unwrap()]);
    env.git(&[
        "config",
        &format!("url.{}/.pushInsteadOf", decoy.display()),
        &format!("{base}/"),
    ]);
    let (run, out) = proposed_push(&env);
    assert!(
        out.stdout
            .contains(&format!("pushes to: {}\n", target.display())),
        "{}",
        out.stdout
    );
    check_submit_approve(&env, &run);
    let out = env.airlock(&["promote", &run]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert_eq!(
        env.git_in(&target, &["rev-parse", "refs/heads/release/1.0"]),
        env.rev("main")
    );
    assert_eq!(refs_of(&env, &decoy.join("pinned.git")), "");
}

#[test]
fn a_rewrite_rule_for_exactly_the_pinned_url_is_refused_not_followed() {
    // Such a rule ties with airlock's own and git picks the one read first.
    let env = setup("");
    let target = bare(&env, "pinned.git");
    let decoy = bare(&env, "decoy.git");
    env.git(&["config", "remote.origin.pushurl", target.to_str().unwrap()]);
    let (run, _) = proposed_push(&env);
    check_submit_approve(&env, &run);
    env.git(&[
        "config",
        &format!("url.{}.pushInsteadOf", decoy.display()),
        target.to_str().unwrap(),
    ]);
    let before = refs_of(&env, &target);
    let out = env.airlock(&["promote", &run]);
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains("the git configuration rewrites"),
        "{}",
        out.stdout
    );
    assert_eq!(refs_of(&env, &decoy), "");
    assert_eq!(refs_of(&env, &target), before);
}

#[test]
fn a_failing_command_action_waits_for_a_human() {
    let env = setup("");
    let (run, _) = edited_run(&env);
    let cmd = r#"kind = "command"
name = "publish"
scopes = ["command:notify"]
argv = ["sh", "-c", "test -f src/app.sh && grep -q please src/app.sh && exit 3"]
rehearse = ["sh", "-c", "grep -q please src/app.sh"]
"#;
    let out = env.airlock(&["propose", &run, &action_file(&env, "publish", cmd)]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("rehearsal: ok: `sh -c 'grep -q please src/app.sh'` in the run's sandbox, on a scratch checkout: exit 0 (trace 1)"), "{}", out.stdout);
    check_submit_approve(&env, &run);
    let out = env.airlock(&["promote", &run]);
    assert_eq!(out.code, 1, "{}", out.stdout);
    assert!(
        out.stdout
            .contains("publish (command): failed: exit 3 (log"),
        "{}",
        out.stdout
    );
    let out = env.airlock(&["promote", &run, "--actions-only"]);
    assert_eq!(out.code, 1);
    assert!(
        out.stdout.contains(&format!(
            "`airlock resolve {run} publish --done --reason …`"
        )),
        "{}",
        out.stdout
    );
    let attempts = plan_of(&env, &run)[0]["attempts"].as_array().unwrap().len();
    assert_eq!(
        attempts, 1,
        "a failed command is not re-run without a human"
    );
}

// ---------------------------------------------------------------- approval covers exactly the plan

#[test]
fn an_action_added_after_approval_is_not_covered_and_promotion_refuses() {
    let server = HttpPeer::start(&[200]);
    let env = setup("");
    let (run, _) = edited_run(&env);
    check_submit_approve(&env, &run);
    // Through the front door: refused by state.
    let file = action_file(&env, "notify", &http_action(server.port));
    let out = env.fails(&["propose", &run, &file], 1);
    assert!(
        out.stderr.contains(&format!(
            "run {run} is approved; `propose` needs it to be staged or checked"
        )),
        "{}",
        out.stderr
    );
    // Through the back door: a row written into the database.
    let (other, _) = edited_run(&env);
    env.json(&["propose", &other, &file], 0);
    let db = env.db();
    db.execute(
        "INSERT INTO actions (run, role, name, seq, state, data) SELECT ?1, role, name, seq, state, replace(data, ?2, ?1) FROM actions WHERE run = ?2",
        [&run, &other],
    )
    .unwrap();
    drop(db);
    let before = env.main_fingerprint();
    let out = env.fails(&["promote", &run], 1);
    assert!(out.stderr.contains("action plan: the plan differs from the signed one, so the approval does not cover: apply `notify`"), "{}", out.stderr);
    assert_eq!(env.main_fingerprint(), before, "nothing merged");
    assert!(server.requests().is_empty(), "nothing sent");
}

// ---------------------------------------------------------------- refusals

/// Proposes `text` for a fresh run and expects a refusal with `code`,
/// nothing recorded, and `needle` in the message.
fn refused(env: &Env, run: &str, name: &str, text: &str, code: i32, needles: &[&str]) {
    let before = env.world();
    let out = env.fails(&["propose", run, &action_file(env, name, text)], code);
    for needle in needles {
        assert!(
            out.stderr.contains(needle),
            "missing {needle:?} in:\n{}",
            out.stderr
        );
    }
    env.assert_unchanged(&before);
    assert!(plan_of(env, run).is_empty());
}

#[test]
fn bad_action_files_are_refused_with_every_problem_and_nothing_recorded() {
    let env = setup("");
    let (run, _) = edited_run(&env);
    refused(
        &env,
        &run,
        "syntax",
        "kind = \"http\"\nmethod = \n",
        2,
        &["syntax.toml:2:"],
    );
    refused(
        &env,
        &run,
        "kind",
        "kind = \"htpp\"\nscopes = [\"http:GET:x/*\"]\n",
        2,
        &["unknown action kind `htpp`", "did you mean `http`?"],
    );
    refused(
        &env,
        &run,
        "creds",
        "kind = \"http\"\nscopes = [\"http:GET:127.0.0.1:*\"]\nmethod = \"GET\"\nurl = \"http://user:pw@127.0.0.1:9/x\"\nbogus = 1\n",
        2,
        &[
            "creds.toml:4:7: `url` has credentials embedded in it",
            "unknown key `bogus`",
        ],
    );
    refused(
        &env,
        &run,
        "inject",
        "kind = \"email\"\nscopes = [\"email:send:*@example.com\"]\nfrom = \"bot@example.com\"\nto = [\"a@example.com\"]\nsubject = \"hi\\r\\nBcc: victim@evil.org\"\n",
        2,
        &["`subject` contains a line break or NUL: header injection is refused"],
    );
    refused(
        &env,
        &run,
        "hdr",
        "kind = \"http\"\nscopes = [\"http:GET:127.0.0.1:*\"]\nmethod = \"GET\"\nurl = \"http://127.0.0.1:9/x\"\n[headers]\nX-A = \"ok\\nHost: evil\"\nIdempotency-Key = \"mine\"\n",
        2,
        &[
            "header injection is refused",
            "header `Idempotency-Key` is set by airlock",
        ],
    );
    refused(
        &env,
        &run,
        "force",
        "kind = \"git-push\"\nscopes = [\"git:push:origin:*\"]\nremote = \"origin\"\nref = \"+refs/heads/release/x\"\n",
        2,
        &["asks for a force push"],
    );
    refused(
        &env,
        &run,
        "empty",
        "",
        2,
        &["has no `kind`", "has no `scopes`"],
    );
}

#[test]
fn actions_the_lane_or_workflow_does_not_allow_are_refused_naming_the_rule() {
    let env = setup(
        r#"
[lanes.production]
scopes = ["http:DELETE:api.example.com/*"]
"#,
    );
    let (run, _) = edited_run(&env);
    refused(
        &env,
        &run,
        "main",
        "kind = \"git-push\"\nscopes = [\"git:push:origin:refs/heads/main\"]\nremote = \"origin\"\nref = \"refs/heads/main\"\n",
        1,
        &[
            "action `main` pushes to a protected ref",
            "refs/heads/main matches `refs/heads/main` in [actions] protected_refs",
        ],
    );
    refused(
        &env,
        &run,
        "delete",
        "kind = \"http\"\nscopes = [\"http:DELETE:api.example.com/*\"]\nmethod = \"DELETE\"\nurl = \"https://api.example.com/v1/things/1\"\n",
        1,
        &[
            "action `delete` needs scopes lane `governed` does not grant",
            "lane `governed` does not grant `http:DELETE:api.example.com/*`; `production` is the lowest lane that does",
            "[lanes.governed] scopes",
        ],
    );
    refused(
        &env,
        &run,
        "sneaky",
        "kind = \"http\"\nscopes = [\"http:POST:127.0.0.1:9/allowed\"]\nmethod = \"POST\"\nurl = \"http://127.0.0.1:9/elsewhere\"\n",
        1,
        &[
            "action `sneaky` does more than its scopes declare",
            "it needs `http:POST:127.0.0.1:9/elsewhere`",
        ],
    );
    refused(
        &env,
        &run,
        "ceo",
        "kind = \"email\"\nscopes = [\"email:send:*@example.com\"]\nfrom = \"ceo@example.com\"\nto = [\"all@example.com\"]\nsubject = \"raise\"\n",
        1,
        &[
            "does more than its scopes declare",
            "it needs `email:from:ceo@example.com`",
        ],
    );
    refused(
        &env,
        &run,
        "ceo2",
        "kind = \"email\"\nscopes = [\"email:send:*@example.com\", \"email:from:ceo@example.com\"]\nfrom = \"ceo@example.com\"\nto = [\"all@example.com\"]\nsubject = \"raise\"\n",
        1,
        &["lane `governed` does not grant `email:from:ceo@example.com`, and no lane does"],
    );
    refused(
        &env,
        &run,
        "env",
        "kind = \"http\"\nscopes = [\"http:POST:127.0.0.1:*\"]\nmethod = \"POST\"\nurl = \"http://127.0.0.1:9/x\"\n[headers]\nAuthorization = \"Bearer ${AWS_SECRET_ACCESS_KEY}\"\n",
        1,
        &[
            "reads environment variables the workflow does not give actions of lane `governed`",
            "`AWS_SECRET_ACCESS_KEY`",
            "`[actions] env = [\"AWS_SECRET_ACCESS_KEY\"]`",
        ],
    );
    refused(
        &env,
        &run,
        "nowhere",
        "kind = \"git-push\"\nscopes = [\"git:push:upstream:refs/heads/release/*\"]\nremote = \"upstream\"\nref = \"refs/heads/release/1\"\n",
        1,
        &[
            "lane `governed` does not grant `git:push:upstream:refs/heads/release/*`, and no lane does",
        ],
    );
}

#[test]
fn proposing_for_a_run_in_the_wrong_state_or_an_unknown_run_is_refused() {
    let server = HttpPeer::start(&[200]);
    let env = setup("");
    let file = action_file(&env, "notify", &http_action(server.port));
    let out = env.fails(&["propose", "no-such-run", &file], 2);
    assert!(
        out.stderr.contains("no run named `no-such-run`"),
        "{}",
        out.stderr
    );
    let (run, _) = edited_run(&env);
    env.json(&["check", &run], 0);
    env.json(&["submit", &run], 0);
    let before = env.world();
    let out = env.fails(&["propose", &run, &file], 1);
    assert!(
        out.stderr.contains(&format!(
            "run {run} is in_review; `propose` needs it to be staged or checked"
        )),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains(&format!("hint: a reviewer runs `airlock approve {run}`")),
        "{}",
        out.stderr
    );
    env.assert_unchanged(&before);
    let out = env.fails(&["propose", &run, "--withdraw", "notify"], 1);
    assert!(out.stderr.contains("in_review"), "{}", out.stderr);
}

#[test]
fn withdrawing_and_replacing_an_action_before_submit() {
    let server = HttpPeer::start(&[200]);
    let env = setup("");
    let (run, _) = edited_run(&env);
    let file = action_file(&env, "notify", &http_action(server.port));
    env.json(&["propose", &run, &file], 0);
    let first = plan_of(&env, &run)[0]["digest"].clone();
    let changed = action_file(
        &env,
        "notify",
        &http_action(server.port).replace("/hooks/deploy", "/hooks/deploy2"),
    );
    env.json(&["propose", &run, &changed], 0);
    let plan = plan_of(&env, &run);
    assert_eq!(plan.len(), 1, "same name replaces");
    assert_ne!(plan[0]["digest"], first);
    env.json(&["propose", &run, "--withdraw", "notify"], 0);
    assert!(plan_of(&env, &run).is_empty());
    let out = env.fails(&["propose", &run, "--withdraw", "notify"], 2);
    assert!(
        out.stderr.contains("has no action named `notify`"),
        "{}",
        out.stderr
    );
}

// ---------------------------------------------------------------- rollback edges

/// A promoted run whose one action pushed a release branch and whose
/// compensation writes a marker file.
fn promoted_with_push(env: &Env) -> (String, PathBuf) {
    let mark = env.tmp.path().join("compensated");
    let (run, _) = edited_run(env);
    let push = PUSH.replace("$MARK", &mark.display().to_string());
    env.json(&["propose", &run, &action_file(env, "release", &push)], 0);
    check_submit_approve(env, &run);
    env.json(&["promote", &run], 0);
    (run, mark)
}

#[test]
fn a_rollback_killed_after_moving_the_target_is_finished_by_recovery() {
    let env = setup("");
    let (run, mark) = promoted_with_push(&env);
    let merge = env.rev("main");
    let out = env.airlock_env(
        &["rollback", &run, "--reason", "bad"],
        &[("AIRLOCK_FAILPOINT", "rollback:after-ref")],
    );
    assert_eq!(out.code, -1, "{}", out.stderr);
    assert_ne!(env.rev("main"), merge, "the ref moved before the kill");
    // The next command finds the interrupted rollback and records it.
    let out = env.airlock(&["plan", &run]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stderr.contains(&format!(
            "warning: recovered: an interrupted `airlock rollback {run}` had moved refs/heads/main"
        )),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("--actions-only"), "{}", out.stderr);
    assert_eq!(env.state(&run), "rolled_back");
    assert_eq!(
        env.read("src/app.sh"),
        "#!/bin/sh\necho hello\n",
        "checkout updated"
    );
    assert!(!mark.exists());
    let out = env.fails(&["rollback", &run, "--reason", "again"], 1);
    assert!(out.stderr.contains("--actions-only"), "{}", out.stderr);
    env.json(
        &["rollback", &run, "--actions-only", "--reason", "finish"],
        0,
    );
    assert_eq!(std::fs::read_to_string(&mark).unwrap(), "compensated\n");
    // Once: a second pass finds the compensation done.
    std::fs::remove_file(&mark).unwrap();
    let again = env.json(
        &["rollback", &run, "--actions-only", "--reason", "finish"],
        0,
    );
    assert_eq!(again["actions"]["actions"][0]["summary"], "already done");
    assert!(!mark.exists());
    env.assert_ledger_ok();
}

#[test]
fn rollback_refuses_to_overwrite_uncommitted_work_and_reverts_onto_a_moved_target() {
    let env = setup("");
    let (run, _) = promoted_with_push(&env);
    // Uncommitted work on the file the revert changes: refused, nothing moved.
    env.write("src/app.sh", "#!/bin/sh\necho mine\n");
    let before = env.world();
    let out = env.fails(&["rollback", &run, "--reason", "bad"], 1);
    assert!(
        out.stderr
            .contains("it would overwrite uncommitted changes"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("nothing was changed"), "{}", out.stderr);
    env.assert_unchanged(&before);
    env.git(&["checkout", "--", "src/app.sh"]);
    // The target moves on elsewhere; the revert applies on top of it.
    let moved = env.commit_file("docs/guide.md", "# Guide\n\nMore.\n", "docs");
    let rolled = env.json(&["rollback", &run, "--reason", "bad"], 0);
    assert_eq!(env.git(&["rev-parse", "main^"]), moved);
    assert_eq!(rolled["revert"].as_str().unwrap(), env.rev("main"));
    assert_eq!(env.read("src/app.sh"), "#!/bin/sh\necho hello\n");
    assert_eq!(env.read("docs/guide.md"), "# Guide\n\nMore.\n");
}

#[test]
fn show_lists_the_actions_a_reviewer_approves() {
    let env = setup("");
    let (run, _) = edited_run(&env);
    let push = PUSH.split("[undo]").next().unwrap().to_string();
    env.json(&["propose", &run, &action_file(&env, "release", &push)], 0);
    let out = env.airlock(&["show", &run, "--no-diff"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout
            .contains("actions (side effects, performed only at promotion):"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("#1 `release` (git-push)  [planned]"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("| git push origin <promoted commit>:refs/heads/release/1.0"),
        "{}",
        out.stdout
    );
    let v = env.json(&["show", &run, "--no-diff"], 0);
    assert_eq!(v["actions"][0]["spec"]["kind"], "git-push");
    // The review queue says which runs carry side effects.
    env.json(&["check", &run], 0);
    env.json(&["submit", &run], 0);
    let out = env.airlock(&["review"]);
    assert!(
        out.stdout
            .contains("side effects on approval: git-push `release`"),
        "{}",
        out.stdout
    );
    let queue = env.json(&["review"], 0);
    assert_eq!(
        queue["queue"][0]["actions"],
        serde_json::json!(["git-push `release`"])
    );
}

// ---------------------------------------------------------------- attacks found in review

#[test]
fn a_header_value_the_preview_masks_must_come_from_the_environment() {
    let env = setup("");
    let (run, _) = edited_run(&env);
    // A value the preview masks is never literal: the reviewer could not
    // read what would be sent to an approved host.
    for (header, value) in [
        ("X-Api-Key", "literal-secret-value-123"),
        ("Authorization", "Bearer sk_live_0123456789"),
        ("X-Session-Id", "exfil-${HOOK_TOKEN}"),
        ("Cookie", "${HOOK_TOKEN}; data=c2VjcmV0"),
    ] {
        refused(
            &env,
            &run,
            "masked",
            &format!(
                "kind = \"http\"\nscopes = [\"http:POST:127.0.0.1:*\"]\nmethod = \"POST\"\nurl = \"http://127.0.0.1:9/x\"\n[headers]\n{header} = \"{value}\"\n"
            ),
            2,
            &[
                &format!(
                    "header `{header}` is masked in the preview, so its value cannot be written in the action file"
                ),
                "must come from airlock's environment by reference",
                "list NAME in `[actions] env` or the lane's `action_env`",
            ],
        );
    }
}

#[test]
fn urls_are_checked_as_sent_and_host_wildcards_stay_in_the_host() {
    let env = setup(
        r#"
[lanes.staging]
scopes = ["http:POST:*.example.com/*"]
"#,
    );
    let (run, _) = edited_run(&env);
    // Checked as /public/x, sent as /admin/%2e%2e/public/x: refused.
    refused(
        &env,
        &run,
        "dots",
        "kind = \"http\"\nscopes = [\"http:POST:127.0.0.1:*\"]\nmethod = \"POST\"\nurl = \"http://127.0.0.1:9/admin/%2e%2e/public/x\"\n",
        2,
        &[
            "`url` is not in canonical form: it reads as `http://127.0.0.1:9/public/x`",
            "write `url = \"http://127.0.0.1:9/public/x\"`",
        ],
    );
    // `*.example.com` covers hosts, not a path that ends in `.example.com`.
    refused(
        &env,
        &run,
        "host",
        "kind = \"http\"\nscopes = [\"http:POST:*.example.com/*\"]\nmethod = \"POST\"\nurl = \"https://evil.com/.example.com/x\"\n",
        1,
        &[
            "does more than its scopes declare",
            "it needs `http:POST:evil.com/.example.com/x`",
        ],
    );
    // Credentials never travel in plain http beyond the loopback.
    refused(
        &env,
        &run,
        "plain",
        "kind = \"http\"\nscopes = [\"http:POST:hooks.example.com/*\"]\nmethod = \"POST\"\nurl = \"http://hooks.example.com/x\"\n[headers]\nAuthorization = \"Bearer ${HOOK_TOKEN}\"\n",
        2,
        &["`url` is plain http but the request carries credentials"],
    );
    // What the mail and HTTP clients would refuse is refused before approval.
    refused(
        &env,
        &run,
        "comma",
        "kind = \"email\"\nscopes = [\"email:send:*@example.com\", \"email:from:bot@example.com\"]\nfrom = \"Doe, John <bot@example.com>\"\nto = [\"team@example.com\"]\nsubject = \"hi\"\n",
        1,
        &[
            "action `comma` could not be sent as written",
            "the mail client refuses the address `Doe, John <bot@example.com>`",
        ],
    );
    refused(
        &env,
        &run,
        "ctl",
        "kind = \"http\"\nscopes = [\"http:POST:127.0.0.1:*\"]\nmethod = \"POST\"\nurl = \"http://127.0.0.1:9/x\"\n[headers]\nX-A = \"a\\u0001b\"\n",
        2,
        &["`headers.X-A` contains the control character '\\u{1}'"],
    );
}

#[test]
fn symlinks_that_leave_the_repository_only_when_chained_are_caught() {
    let env = setup("");
    let (run, wt) = edited_run(&env);
    std::os::unix::fs::symlink(".", wt.join("src/d")).unwrap();
    std::os::unix::fs::symlink("d/d/d/../../..", wt.join("src/out")).unwrap();
    let check = env.json(&["check", &run], 1);
    let kinds = check["stops"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "file-kinds")
        .unwrap()
        .clone();
    assert_eq!(kinds["passed"], false, "{kinds}");
    assert!(
        kinds["findings"]
            .to_string()
            .contains("src/out is a symlink to `d/d/d/../../..`, outside the repository"),
        "{kinds}"
    );
}

#[test]
fn a_command_whose_cwd_is_missing_is_not_run() {
    let env = setup("");
    let (run, _) = edited_run(&env);
    let mark = env.tmp.path().join("ran");
    let cmd = format!(
        "kind = \"command\"\nname = \"publish\"\nscopes = [\"command:notify\"]\ncwd = \"nowhere\"\nargv = [\"touch\", \"{}\"]\n",
        mark.display()
    );
    env.json(&["propose", &run, &action_file(&env, "publish", &cmd)], 0);
    check_submit_approve(&env, &run);
    let out = env.airlock(&["promote", &run]);
    assert_eq!(out.code, 1, "{}", out.stdout);
    assert!(
        out.stdout
            .contains("not run: `cwd = \"nowhere\"` is not a directory of the promoted commit"),
        "{}",
        out.stdout
    );
    assert!(!mark.exists());
}

#[test]
fn a_rehearsal_never_changes_the_worktree_and_a_refused_proposal_runs_nothing() {
    let env = setup("");
    let (run, wt) = edited_run(&env);
    // The undo's attachment is missing: refused before anything runs.
    let bad = r#"kind = "command"
name = "publish"
scopes = ["command:notify"]
argv = ["true"]
rehearse = ["sh", "-c", "date >> src/rehearsed.txt"]
[undo]
kind = "email"
scopes = ["email:send:*@example.com", "email:from:bot@example.com"]
from = "bot@example.com"
to = ["team@example.com"]
subject = "undone"
attachments = ["missing.txt"]
"#;
    let before = env.world();
    let out = env.fails(&["propose", &run, &action_file(&env, "publish", bad)], 1);
    assert!(
        out.stderr
            .contains("attachment `missing.txt` of action `publish` is not in the run's tree"),
        "{}",
        out.stderr
    );
    env.assert_unchanged(&before);
    assert_eq!(
        env.json(&["show", &run, "--no-diff"], 0)["traces"],
        serde_json::json!([])
    );
    assert!(!wt.join("src/rehearsed.txt").exists());
    // A rehearsal that writes runs on a scratch checkout, at propose and at
    // submit, so the submitted worktree stays what was submitted.
    let good = bad.split("[undo]").next().unwrap();
    env.json(&["propose", &run, &action_file(&env, "publish", good)], 0);
    assert!(!wt.join("src/rehearsed.txt").exists());
    check_submit_approve(&env, &run);
    assert!(!wt.join("src/rehearsed.txt").exists());
    let traces = env.json(&["show", &run, "--no-diff"], 0)["traces"].clone();
    let origins: Vec<&str> = traces
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["origin"].as_str().unwrap())
        .collect();
    assert_eq!(
        origins.iter().filter(|o| **o == "rehearse:publish").count(),
        2,
        "{origins:?}"
    );
}

#[test]
fn a_command_interrupted_after_it_started_blocks_rollback_until_a_human_rules() {
    let env = setup("");
    let (run, _) = edited_run(&env);
    let mark = env.tmp.path().join("compensated");
    let cmd = format!(
        "kind = \"command\"\nname = \"publish\"\nscopes = [\"command:notify\"]\nargv = [\"true\"]\n[undo]\nkind = \"command\"\nscopes = [\"command:notify\"]\nargv = [\"touch\", \"{}\"]\n",
        mark.display()
    );
    env.json(&["propose", &run, &action_file(&env, "publish", &cmd)], 0);
    check_submit_approve(&env, &run);
    let out = env.airlock_env(
        &["promote", &run],
        &[("AIRLOCK_FAILPOINT", "action:after-started")],
    );
    assert_eq!(out.code, -1, "{}", out.stderr);
    let main_before = env.rev("main");
    let out = env.fails(&["rollback", &run, "--reason", "bad"], 1);
    assert!(
        out.stderr.contains("action `publish` is outcome unknown"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains(&format!("airlock resolve {run} NAME --done")),
        "{}",
        out.stderr
    );
    assert_eq!(env.rev("main"), main_before, "nothing reverted");
    // The hint leads somewhere: resolve accepts it, and the compensation runs.
    env.json(
        &["resolve", &run, "publish", "--done", "--reason", "it ran"],
        0,
    );
    env.json(&["rollback", &run, "--reason", "bad"], 0);
    assert!(mark.exists(), "the compensation of a performed action runs");
}

#[test]
fn a_scope_revoked_after_approval_stops_the_remaining_actions() {
    let server = HttpPeer::start(&[503, 200]);
    let env = setup("");
    let (run, _) = edited_run(&env);
    env.json(
        &[
            "propose",
            &run,
            &action_file(&env, "notify", &http_action(server.port)),
        ],
        0,
    );
    check_submit_approve(&env, &run);
    let out = env.airlock_env(&["promote", &run], &[("HOOK_TOKEN", "t")]);
    assert_eq!(out.code, 1, "{}", out.stdout);
    // The owner revokes the scope before the retry.
    env.write(
        ".airlock/workflow.toml",
        &format!("{WORKFLOW}\n[lanes.governed]\nscopes = []\naction_env = [\"HOOK_TOKEN\"]\n"),
    );
    env.git(&["commit", "-q", "-am", "revoke"]);
    let out = env.airlock_env(&["promote", &run, "--actions-only"], &[("HOOK_TOKEN", "t")]);
    assert_eq!(out.code, 1, "{}", out.stdout);
    assert!(
        out.stdout
            .contains("not allowed by the workflow as it is now"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("lane `governed` does not grant"),
        "{}",
        out.stdout
    );
    assert_eq!(server.requests().len(), 1, "no second request");
}

// ---------------------------------------------------------------- kill -9 at every point, every kind

/// Every kind, killed at each point around its live execution, then
/// recovered the way a user would (`promote --actions-only`, and `resolve`
/// by looking at the world when airlock cannot know): the effect happens
/// exactly once.
#[test]
fn every_kind_killed_at_every_point_takes_effect_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let smtp = SmtpPeer::start(dir.path());
    for failpoint in ["action:after-started", "action:after-live"] {
        for kind in ["http", "git-push", "command", "email"] {
            if kind == "email" && smtp.is_none() {
                continue;
            }
            let server = HttpPeer::start(&[200]);
            let env = match (&smtp, kind) {
                (Some(s), "email") => email_setup(s),
                _ => setup(""),
            };
            let remote = env.tmp.path().join("remote.git");
            env.git_in(&remote, &["config", "core.logAllRefUpdates", "always"]);
            let counter = env.tmp.path().join("count");
            let (run, _) = edited_run(&env);
            let before_mail = smtp.as_ref().map_or(0, |s| s.messages().len());
            let text = match kind {
                "http" => http_action(server.port),
                "git-push" => PUSH.split("[undo]").next().unwrap().to_string(),
                "command" => format!(
                    "kind = \"command\"\nname = \"count\"\nscopes = [\"command:notify\"]\nargv = [\"sh\", \"-c\", \"echo once >> {}\"]\n",
                    counter.display()
                ),
                _ => EMAIL.to_string(),
            };
            env.json(&["propose", &run, &action_file(&env, "a", &text)], 0);
            check_submit_approve(&env, &run);
            // How many times the effect has happened, seen from the world.
            let effects = || -> usize {
                match kind {
                    // A server honouring Idempotency-Key acts once per key.
                    "http" => {
                        let mut keys: Vec<String> = server
                            .requests()
                            .iter()
                            .filter_map(|r| r.header("Idempotency-Key").map(str::to_string))
                            .collect();
                        keys.sort();
                        keys.dedup();
                        keys.len()
                    }
                    "git-push" => {
                        let log = std::process::Command::new("git")
                            .args([
                                "--git-dir",
                                remote.to_str().unwrap(),
                                "reflog",
                                "show",
                                "refs/heads/release/1.0",
                            ])
                            .output()
                            .unwrap();
                        String::from_utf8_lossy(&log.stdout).lines().count()
                    }
                    "command" => std::fs::read_to_string(&counter)
                        .map(|t| t.lines().count())
                        .unwrap_or(0),
                    _ => smtp.as_ref().unwrap().messages().len() - before_mail,
                }
            };
            let out = env.airlock_env(
                &["promote", &run],
                &[("HOOK_TOKEN", "t"), ("AIRLOCK_FAILPOINT", failpoint)],
            );
            assert_eq!(out.code, -1, "{kind} {failpoint}: {}", out.stderr);
            let mut rounds = 0;
            loop {
                rounds += 1;
                assert!(rounds < 5, "{kind} {failpoint}: never settled");
                let out =
                    env.airlock_env(&["promote", &run, "--actions-only"], &[("HOOK_TOKEN", "t")]);
                if out.code == 0 {
                    break;
                }
                assert_eq!(
                    out.code, 1,
                    "{kind} {failpoint}: {}{}",
                    out.stdout, out.stderr
                );
                let name = plan_of(&env, &run)[0]["spec"]["name"]
                    .as_str()
                    .unwrap()
                    .to_string();
                assert!(
                    out.stdout
                        .contains(&format!("airlock resolve {run} {name}")),
                    "{kind} {failpoint}: {}",
                    out.stdout
                );
                // A human looks at the world and says what happened.
                let verdict = if effects() == 1 { "--done" } else { "--retry" };
                env.json(&["resolve", &run, &name, verdict, "--reason", "checked"], 0);
            }
            assert_eq!(
                effects(),
                1,
                "{kind} killed at {failpoint}: the effect must happen exactly once"
            );
            assert_eq!(
                plan_of(&env, &run)[0]["state"],
                "done",
                "{kind} {failpoint}"
            );
            env.assert_ledger_ok();
        }
    }
}

// ---------------------------------------------------------------- a ledger older than what airlock did

/// An HTTP action whose compensation is another HTTP call, both to `port`.
fn http_with_undo(port: u16) -> String {
    format!(
        r#"kind = "http"
name = "deploy"
scopes = ["http:POST:127.0.0.1:{port}/*"]
method = "POST"
url = "http://127.0.0.1:{port}/hooks/deploy"
body = "go"
[undo]
kind = "http"
scopes = ["http:POST:127.0.0.1:{port}/*"]
method = "POST"
url = "http://127.0.0.1:{port}/hooks/undeploy"
body = "back"
"#
    )
}

/// A promoted run whose action was sent once.
fn promoted_with_http_undo(server: &HttpPeer) -> (Env, String) {
    let env = setup(&format!(
        r#"
[[actions.fixtures]]
method = "POST"
url = "http://127.0.0.1:{}/hooks/*"
status = 200
"#,
        server.port
    ));
    let (run, _) = edited_run(&env);
    let file = action_file(&env, "deploy", &http_with_undo(server.port));
    let out = env.airlock(&["propose", &run, &file]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    check_submit_approve(&env, &run);
    env.json(&["promote", &run], 0);
    assert_eq!(paths_sent(server), ["/hooks/deploy"]);
    (env, run)
}

fn paths_sent(server: &HttpPeer) -> Vec<String> {
    server.requests().into_iter().map(|r| r.path).collect()
}

/// A copy of the ledger as a backup tool makes one.
fn backup_ledger(env: &Env, to: &Path) {
    env.db()
        .execute("VACUUM INTO ?1", [to.to_str().unwrap()])
        .unwrap();
}

/// Puts `from` in place of the ledger, its write-ahead log gone with the old file.
fn restore_ledger(env: &Env, from: &Path) {
    let db = env.state_dir().join("ledger.db");
    for suffix in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
    std::fs::rename(from, &db).unwrap();
}

/// The head records airlock keeps beside the signing key.
fn head_records(env: &Env) -> Vec<PathBuf> {
    let dir = env.home.join(".config/airlock/ledgers");
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.map(|e| e.unwrap().path())
                .filter(|p| p.extension().is_some_and(|x| x == "head"))
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    found
}

/// A second rollback of `run` is refused as `why` says, and undoes nothing.
fn second_rollback_refused(env: &Env, server: &HttpPeer, run: &str, why: &str) {
    let main = env.rev("main");
    let commits = env.git(&["rev-list", "--all", "--count"]);
    let out = env.fails(&["rollback", run, "--reason", "again"], 1);
    assert!(out.stderr.contains(why), "{}", out.stderr);
    assert!(
        out.stderr.contains("airlock ledger accept-loss --reason"),
        "{}",
        out.stderr
    );
    let e = env.json_error(&["rollback", run, "--reason", "again"], 1);
    assert_eq!(e["class"], "refused", "{e}");
    assert_eq!(env.rev("main"), main, "a revert commit was made");
    assert_eq!(env.git(&["rev-list", "--all", "--count"]), commits);
    assert_eq!(
        paths_sent(server),
        ["/hooks/deploy", "/hooks/undeploy"],
        "the compensation ran again"
    );
}

#[test]
fn a_ledger_restored_from_before_a_rollback_is_refused_and_nothing_is_undone_twice() {
    let server = HttpPeer::start(&[200]);
    let (env, run) = promoted_with_http_undo(&server);
    let backup = env.tmp.path().join("ledger-after-promote.db");
    backup_ledger(&env, &backup);
    env.json(&["rollback", &run, "--reason", "bad deploy"], 0);
    assert_eq!(paths_sent(&server), ["/hooks/deploy", "/hooks/undeploy"]);
    let events = env.json(&["ledger", "verify"], 0)["events"]
        .as_u64()
        .unwrap();
    assert_eq!(head_records(&env).len(), 1);

    restore_ledger(&env, &backup);
    // The chain alone is whole; the head record outside it says it is short.
    let out = env.airlock(&["ledger", "verify"]);
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stdout
            .starts_with("ledger does NOT verify: the ledger is older than what airlock recorded"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains(&format!("but airlock recorded event {events}")),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("an older copy of the ledger was restored"),
        "{}",
        out.stdout
    );
    let v = env.json(&["ledger", "verify"], 1);
    assert!(v["first_bad"].is_null(), "{v}");
    assert_eq!(v["head_record"]["record"]["seq"], events);
    assert_eq!(
        v["head_record"]["problem"],
        "the ledger is older than what airlock recorded"
    );

    // Every other command refuses the ledger, `proof verify` included.
    let out = env.fails(&["proof", "verify", &run], 1);
    assert!(
        out.stderr
            .starts_with("error: the ledger is older than what airlock recorded"),
        "{}",
        out.stderr
    );
    second_rollback_refused(
        &env,
        &server,
        &run,
        "the ledger is older than what airlock recorded",
    );
}

#[test]
fn a_lost_write_ahead_log_or_a_ledger_with_no_events_is_refused_and_nothing_is_undone_twice() {
    let server = HttpPeer::start(&[200]);
    let (env, run) = promoted_with_http_undo(&server);
    // Everything so far in the database file, the rollback only in the log.
    env.db()
        .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        .unwrap();
    env.json(&["rollback", &run, "--reason", "bad deploy"], 0);
    let db = env.state_dir().join("ledger.db");
    let wal = PathBuf::from(format!("{}-wal", db.display()));
    assert!(std::fs::metadata(&wal).unwrap().len() > 0);
    std::fs::remove_file(&wal).unwrap();
    let _ = std::fs::remove_file(format!("{}-shm", db.display()));
    let v = env.json(&["ledger", "verify"], 1);
    assert!(v["first_bad"].is_null(), "{v}");
    assert_eq!(
        v["head_record"]["problem"],
        "the ledger is older than what airlock recorded"
    );
    second_rollback_refused(
        &env,
        &server,
        &run,
        "the ledger is older than what airlock recorded",
    );

    // Nothing of it left: a ledger with no events at all.
    std::fs::remove_file(&db).unwrap();
    let out = env.airlock(&["ledger", "verify"]);
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("ends at event 0"), "{}", out.stdout);
    let out = env.fails(&["rollback", &run, "--reason", "again"], 1);
    assert!(
        out.stderr
            .starts_with("error: the ledger is older than what airlock recorded"),
        "{}",
        out.stderr
    );
    assert_eq!(paths_sent(&server), ["/hooks/deploy", "/hooks/undeploy"]);
}

#[test]
fn without_a_head_record_nothing_irreversible_runs_until_the_ledger_is_accepted() {
    let server = HttpPeer::start(&[200]);
    let (env, run) = promoted_with_http_undo(&server);
    let records = head_records(&env);
    assert_eq!(records.len(), 1);
    // A ledger from before head records: none kept, and none in its memory.
    std::fs::remove_file(&records[0]).unwrap();
    env.db()
        .execute("DELETE FROM ledger_meta WHERE key = 'head_record'", [])
        .unwrap();
    // Reading still works; the ledger is whole as far as anything can tell.
    env.json(&["ledger", "verify"], 0);
    env.json(&["show", &run, "--no-diff"], 0);
    let main = env.rev("main");
    let out = env.fails(&["rollback", &run, "--reason", "bad"], 1);
    assert!(
        out.stderr.starts_with(&format!(
            "error: refusing to roll back run {run}: the ledger cannot prove it is not older than what airlock did"
        )),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("there is no head record at"),
        "{}",
        out.stderr
    );
    let out = env.fails(&["promote", &run, "--actions-only"], 1);
    assert!(
        out.stderr.contains("the ledger cannot prove"),
        "{}",
        out.stderr
    );
    assert_eq!(env.rev("main"), main);
    assert_eq!(paths_sent(&server), ["/hooks/deploy"]);

    // Accepting it is a decision with a reason, never made from a run.
    let out = env.fails(&["ledger", "accept-loss"], 2);
    assert!(out.stderr.contains("needs a reason"), "{}", out.stderr);
    let out = env.airlock_env(
        &["ledger", "accept-loss", "--reason", "x"],
        &[("AIRLOCK_RUN", &run)],
    );
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr.contains("cannot be run from inside a run"),
        "{}",
        out.stderr
    );
    assert!(head_records(&env).is_empty());

    let done = env.json(
        &[
            "ledger",
            "accept-loss",
            "--reason",
            "key directory restored without it",
        ],
        0,
    );
    assert_eq!(done["runs_to_check"][0]["run"], run.as_str());
    assert_eq!(done["runs_to_check"][0]["state"], "promoted");
    let events = env.events(None);
    let accepted = events.last().unwrap();
    assert_eq!(accepted["kind"], "ledger-loss-accepted");
    assert_eq!(
        accepted["data"]["reason"],
        "key directory restored without it"
    );
    assert_eq!(accepted["seq"], done["seq"]);
    assert_eq!(head_records(&env).len(), 1);
    // Once is enough.
    let out = env.fails(&["ledger", "accept-loss", "--reason", "again"], 1);
    assert!(out.stderr.contains("nothing to accept"), "{}", out.stderr);

    env.json(&["rollback", &run, "--reason", "bad"], 0);
    assert_eq!(paths_sent(&server), ["/hooks/deploy", "/hooks/undeploy"]);
    env.assert_ledger_ok();
}

#[test]
fn a_head_record_removed_with_a_restore_is_missed_and_never_made_anew() {
    let server = HttpPeer::start(&[200]);
    let (env, run) = promoted_with_http_undo(&server);
    let backup = env.tmp.path().join("ledger-after-promote.db");
    backup_ledger(&env, &backup);
    env.json(&["rollback", &run, "--reason", "bad deploy"], 0);
    restore_ledger(&env, &backup);
    for record in head_records(&env) {
        std::fs::remove_file(record).unwrap();
    }
    // No command runs on it, so none writes a record that would make the
    // older ledger pass as current.
    let brief = env.write_brief("other", BRIEF);
    for args in [
        vec!["start", brief.as_str()],
        vec!["show", run.as_str(), "--no-diff"],
        vec!["rollback", run.as_str(), "--reason", "again"],
    ] {
        let out = env.fails(&args, 1);
        assert!(
            out.stderr
                .starts_with("error: the ledger's head record is missing\n"),
            "{args:?}: {}",
            out.stderr
        );
        assert!(
            out.stderr.contains("has had a head record, kept at"),
            "{}",
            out.stderr
        );
    }
    assert!(head_records(&env).is_empty());
    assert_eq!(paths_sent(&server), ["/hooks/deploy", "/hooks/undeploy"]);
    let v = env.json(&["ledger", "verify"], 1);
    assert_eq!(
        v["head_record"]["problem"],
        "the ledger's head record is missing"
    );
}

#[test]
fn a_head_record_rolled_back_with_the_ledger_and_signed_by_another_key_is_refused() {
    use airlock_core::proofs::{SigningKey, sign_envelope};
    let server = HttpPeer::start(&[200]);
    let (env, run) = promoted_with_http_undo(&server);
    let backup = env.tmp.path().join("ledger-after-promote.db");
    backup_ledger(&env, &backup);
    let (old_seq, old_hash): (i64, String) = env
        .db()
        .query_row(
            "SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    env.json(&["rollback", &run, "--reason", "bad deploy"], 0);
    let record = head_records(&env).remove(0);
    let good = std::fs::read_to_string(&record).unwrap();

    // The attack: the older ledger back, and a record to match it, signed
    // with a key of the attacker's own.
    restore_ledger(&env, &backup);
    let envelope: Value = serde_json::from_str(&good).unwrap();
    let payload = base64::Engine::decode(
        &base64::engine::general_purpose::STANDARD,
        envelope["payload"].as_str().unwrap(),
    )
    .unwrap();
    let mut lowered: Value = serde_json::from_slice(&payload).unwrap();
    lowered["seq"] = old_seq.into();
    lowered["hash"] = old_hash.into();
    let forged = sign_envelope(
        &SigningKey::generate(),
        envelope["payloadType"].as_str().unwrap(),
        lowered.to_string().as_bytes(),
    );
    std::fs::write(&record, serde_json::to_string(&forged).unwrap()).unwrap();
    // Reading goes on (opening reads the record, it does not verify it) ...
    env.json(&["show", &run, "--no-diff"], 0);
    // ... but nothing irreversible runs, and `verify` says why.
    let main = env.rev("main");
    let out = env.fails(&["rollback", &run, "--reason", "again"], 1);
    assert!(
        out.stderr.starts_with(&format!(
            "error: refusing to roll back run {run}: the ledger's head record cannot be trusted"
        )),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains("its signature does not verify with this repository's key"),
        "{}",
        out.stderr
    );
    assert_eq!(env.rev("main"), main);
    assert_eq!(paths_sent(&server), ["/hooks/deploy", "/hooks/undeploy"]);
    let v = env.json(&["ledger", "verify"], 1);
    assert_eq!(
        v["head_record"]["problem"],
        "the ledger's head record cannot be trusted"
    );

    // A damaged record is refused on opening: its content cannot be read.
    std::fs::write(&record, "not a record\n").unwrap();
    let out = env.fails(&["show", &run, "--no-diff"], 1);
    assert!(
        out.stderr
            .starts_with("error: the ledger's head record cannot be trusted"),
        "{}",
        out.stderr
    );
    // The genuine record back: the older ledger is found again.
    std::fs::write(&record, &good).unwrap();
    let out = env.fails(&["rollback", &run, "--reason", "again"], 1);
    assert!(
        out.stderr
            .starts_with("error: the ledger is older than what airlock recorded"),
        "{}",
        out.stderr
    );
    assert_eq!(paths_sent(&server), ["/hooks/deploy", "/hooks/undeploy"]);
}

// ---------------------------------------------------------------- red team

/// The agent writes the action file. A literal in a header whose name
/// looks sensitive (`*session*`, `*key*`, `Cookie`, …) is masked in the
/// preview, `show`, `plan` and the proof, and sent verbatim when applied:
/// the reviewer approves a request whose content they cannot see (a
/// privilege in a cookie, data smuggled out in a header). Either the
/// action is refused, or what will be sent is shown.
#[test]
fn red_team_an_agent_cannot_hide_what_a_header_sends_behind_the_mask() {
    let server = HttpPeer::start(&[202]);
    let env = setup("");
    let (run, _) = edited_run(&env);
    let hidden = "role=admin; exfil=c2VjcmV0LWZyb20tdGhlLXdvcmt0cmVl";
    let file = action_file(
        &env,
        "notify",
        &format!(
            "kind = \"http\"\nname = \"notify\"\nscopes = [\"http:POST:127.0.0.1:{port}/*\"]\nmethod = \"POST\"\nurl = \"http://127.0.0.1:{port}/hooks/deploy\"\n[headers]\nX-Session = \"{hidden}\"\n",
            port = server.port
        ),
    );
    let out = env.airlock(&["propose", &run, &file]);
    if out.code != 0 {
        // Refused: nothing hidden can be approved.
        assert!(plan_of(&env, &run).is_empty());
        return;
    }
    let plan = env.airlock(&["plan", &run]);
    let show = env.airlock(&["show", &run, "--no-diff"]);
    assert!(
        out.stdout.contains(hidden) && plan.stdout.contains(hidden) && show.stdout.contains(hidden),
        "the reviewer is not shown what the action sends:\n{}",
        plan.stdout
    );
}

// ---------------------------------------------------------------- environment before merging

#[test]
fn promote_refuses_before_merging_when_an_action_needs_a_variable_that_is_not_set() {
    let server = HttpPeer::start(&[202]);
    let env = setup(&format!(
        "\n[actions]\nenv = [\"DEPLOY_KEY\"]\n[[actions.fixtures]]\nmethod = \"POST\"\nurl = \"http://127.0.0.1:{}/hooks/*\"\nstatus = 202\n",
        server.port
    ));
    let (run, _) = edited_run(&env);
    let out = env.airlock(&[
        "propose",
        &run,
        &action_file(&env, "notify", &http_action(server.port)),
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let deploy = "kind = \"command\"\nname = \"deploy\"\nscopes = [\"command:notify\"]\nargv = [\"true\"]\nenv = [\"DEPLOY_KEY\"]\n";
    let out = env.airlock(&["propose", &run, &action_file(&env, "deploy", deploy)]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    check_submit_approve(&env, &run);
    let before = env.world();
    let main_before = env.git(&["rev-parse", "main"]);

    // Neither variable set: refused, both named, nothing merged or sent.
    let out = env.fails(&["promote", &run], 1);
    assert!(
        out.stderr.contains(&format!(
            "refusing to promote run {run}: 2 environment variables the approved actions need are not set; nothing was merged"
        )),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains("`HOOK_TOKEN` is not set; action `notify` (http) reads it"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains("`DEPLOY_KEY` is not set; action `deploy` (command) reads it"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("hint: set them in the environment"),
        "{}",
        out.stderr
    );
    env.assert_unchanged(&before);
    assert_eq!(env.git(&["rev-parse", "main"]), main_before);
    assert_eq!(env.state(&run), "approved");
    assert!(server.requests().is_empty(), "something was sent");

    // One set: the other is still named, still nothing done.
    let out = env.airlock_env(&["promote", &run], &[("HOOK_TOKEN", "t")]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("1 environment variable the approved actions need is not set"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("HOOK_TOKEN"), "{}", out.stderr);
    env.assert_unchanged(&before);

    // Both set: promoted, the actions applied.
    let out = env.airlock_env(
        &["promote", &run],
        &[("HOOK_TOKEN", "t"), ("DEPLOY_KEY", "k")],
    );
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert_eq!(env.state(&run), "promoted");
    assert_eq!(server.requests().len(), 1);
}

#[test]
fn propose_reports_every_problem_of_an_action_file_at_once() {
    let env = setup("");
    let (run, _) = edited_run(&env);
    // Four problems: a scope the action needs but does not declare, a
    // variable the workflow does not give actions, and an undo whose scope
    // no lane grants, pushing to a remote the repository does not have.
    let file = action_file(
        &env,
        "notify",
        "kind = \"http\"\nname = \"notify\"\nscopes = [\"http:POST:10.9.8.7:*\"]\nmethod = \"POST\"\nurl = \"https://10.9.8.7/hooks\"\n[headers]\nAuthorization = \"Bearer ${UNLISTED_TOKEN}\"\n\n[undo]\nkind = \"git-push\"\nscopes = [\"git:push:nowhere:refs/heads/release/*\"]\nremote = \"nowhere\"\nref = \"refs/heads/release/x\"\n",
    );
    let before = env.world();
    let out = env.fails(&["propose", &run, &file], 1);
    assert!(
        out.stderr
            .contains(&format!("error: {file} has 4 problems")),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("which no declared scope covers"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("does not grant `git:push:nowhere"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("`UNLISTED_TOKEN`"), "{}", out.stderr);
    assert!(out.stderr.contains("remote `nowhere`"), "{}", out.stderr);
    assert!(out.stderr.contains("fix them all"), "{}", out.stderr);
    env.assert_unchanged(&before);
    assert!(plan_of(&env, &run).is_empty());
}

/// The refusals of `propose` carry a code in `--json` (docs/errors.md), so an
/// agent can tell a scope violation from a rule of the lane or workflow.
#[test]
fn refused_actions_carry_their_code_in_json() {
    let env = setup("");
    let (run, _) = edited_run(&env);
    let before = env.world();
    for (name, text, exit, code) in [
        (
            "sneaky",
            "kind = \"http\"\nscopes = [\"http:POST:127.0.0.1:9/allowed\"]\nmethod = \"POST\"\nurl = \"http://127.0.0.1:9/elsewhere\"\n",
            1,
            "scope-violation",
        ),
        (
            "delete",
            "kind = \"http\"\nscopes = [\"http:DELETE:api.example.com/*\"]\nmethod = \"DELETE\"\nurl = \"https://api.example.com/v1/things/1\"\n",
            1,
            "scope-not-granted",
        ),
        (
            "main",
            "kind = \"git-push\"\nscopes = [\"git:push:origin:refs/heads/main\"]\nremote = \"origin\"\nref = \"refs/heads/main\"\n",
            1,
            // Two refusals at once (a protected ref, a scope no lane
            // grants) are one, listing both.
            "action-problems",
        ),
        (
            "syntax",
            "kind = \"http\"\nmethod = \n",
            2,
            "invalid-action",
        ),
    ] {
        let e = env.json_error(&["propose", &run, &action_file(&env, name, text)], exit);
        assert_eq!(e["code"], code, "{name}: {e}");
        assert_eq!(
            e["class"],
            if exit == 1 { "refused" } else { "invalid" },
            "{name}: {e}"
        );
    }
    env.assert_unchanged(&before);
    assert!(plan_of(&env, &run).is_empty());
}
