//! `airlock mcp --run RUN` driven by a client airlock did not write: the
//! official MCP Python SDK (`pip install mcp`), in tests/mcp/client.py,
//! against a real repository and run. Malformed JSON-RPC, which no SDK
//! sends, is written to the server's stdin directly.
//!
//! Under `CI` a missing SDK fails the test; elsewhere the test says so and
//! passes without running.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::*;
use serde_json::{Value, json};

/// Every tool the server lists, and nothing else.
const TOOLS: &[&str] = &[
    "status", "exec", "check", "logs", "snapshot", "propose", "withdraw", "plan", "submit",
];

/// Names a reviewer's tool could have: none may answer.
const REVIEWER_TOOLS: &[&str] = &[
    "approve",
    "reject",
    "promote",
    "resolve",
    "rollback",
    "redirect",
    "release",
    "edit_workflow",
    "workflow",
    "ledger",
    "accept",
    "snap_accept",
    "start",
];

const LANE: &str = "\n[lanes.governed]\nscopes = [\"command:notify\"]\n";

const ACTION: &str = r#"kind = "command"
name = "notify"
scopes = ["command:notify"]
argv = ["sh", "-c", "echo notified"]
"#;

/// The Python interpreter that has the MCP SDK, or `None` (outside CI).
fn python_with_mcp() -> Option<PathBuf> {
    let out = Command::new("python3")
        .args(["-c", "import mcp, sys; print(sys.executable)"])
        .stderr(Stdio::null())
        .output();
    match out {
        Ok(out) if out.status.success() => Some(PathBuf::from(
            String::from_utf8_lossy(&out.stdout).trim().to_string(),
        )),
        _ => {
            assert!(
                std::env::var_os("CI").is_none(),
                "the MCP Python SDK is required on CI: `python3 -m pip install mcp` (.ci/run installs it)"
            );
            eprintln!(
                "skipping: the MCP Python SDK is not installed (`python3 -m pip install mcp`)"
            );
            None
        }
    }
}

/// A repository whose lane grants `command:notify`, with a started run.
fn setup() -> (Env, String, PathBuf) {
    let env = Env::new();
    env.write(".airlock/workflow.toml", &format!("{WORKFLOW}{LANE}"));
    env.git(&["add", "-A"]);
    env.git(&["commit", "-q", "-m", "workflow grants command:notify"]);
    let (run, wt) = env.start(BRIEF);
    (env, run, wt)
}

/// One MCP session: the SDK's client starts `airlock -C REPO mcp --run
/// RUN`, initializes, and runs `steps`; returns what it saw.
fn session(env: &Env, python: &Path, run: &str, steps: Value) -> Value {
    let client = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/mcp/client.py");
    let mut cmd = Command::new(python);
    env.hermetic(&mut cmd);
    let mut child = cmd
        .arg(client)
        .arg(env!("CARGO_BIN_EXE_airlock"))
        .arg(&env.repo)
        .arg(run)
        .current_dir(env.tmp.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(steps.to_string().as_bytes()).unwrap();
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the client failed: {}\nstdout: {stdout}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"))
}

fn call(tool: &str, args: Value) -> Value {
    json!({"op": "call", "tool": tool, "args": args})
}

/// A tool's successful result: its structured content and its text.
fn ok(result: &Value) -> (&Value, &str) {
    let r = &result["result"];
    assert_eq!(r["isError"], json!(false), "{result:#}");
    (
        &r["structuredContent"],
        r["content"][0]["text"].as_str().unwrap(),
    )
}

/// A tool error: the `error` object of its structured content, after
/// checking its text says the same.
fn tool_error(result: &Value) -> &Value {
    let r = &result["result"];
    assert_eq!(r["isError"], json!(true), "{result:#}");
    let error = &r["structuredContent"]["error"];
    let text = r["content"][0]["text"].as_str().unwrap();
    assert!(
        text.contains(error["message"].as_str().unwrap()),
        "{result:#}"
    );
    assert!(
        text.contains(&format!("code: {}", error["code"].as_str().unwrap())),
        "{text}"
    );
    error
}

/// The files of the run's logs directory: a command that ran leaves two.
fn logs_of(env: &Env, run: &str) -> Vec<String> {
    let dir = env.state_dir().join("runs").join(run).join("logs");
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[test]
fn the_tools_are_exactly_these_and_nothing_a_reviewer_does_answers() {
    let Some(python) = python_with_mcp() else {
        return;
    };
    let (env, run, _) = setup();
    let before = env.world();
    let mut steps = vec![json!({"op": "list"})];
    steps.extend(REVIEWER_TOOLS.iter().map(|t| call(t, json!({}))));
    let seen = session(&env, &python, &run, json!(steps));

    assert_eq!(seen["server"]["serverInfo"]["name"], "airlock");
    assert!(
        seen["server"]["instructions"]
            .as_str()
            .unwrap()
            .contains(&run)
    );
    let tools = seen["results"][0]["tools"].as_array().unwrap();
    let names: Vec<&str> = tools.iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(names, TOOLS);
    for tool in tools {
        let description = tool["description"].as_str().unwrap();
        assert!(description.len() > 80, "{tool:#}");
        let schema = &tool["inputSchema"];
        assert_eq!(schema["type"], "object", "{tool:#}");
        assert_eq!(schema["additionalProperties"], false, "{tool:#}");
        // No tool takes a run.
        let properties = schema["properties"].as_object().unwrap();
        assert!(properties.keys().all(|k| !k.contains("run")), "{tool:#}");
    }
    for (i, name) in REVIEWER_TOOLS.iter().enumerate() {
        let answer = &seen["results"][i + 1];
        let error = &answer["protocol_error"];
        assert_eq!(error["code"], -32602, "{name}: {answer:#}");
        let message = error["message"].as_str().unwrap();
        assert!(
            message.starts_with(&format!("unknown tool `{name}`")),
            "{message}"
        );
    }
    env.assert_unchanged(&before);
    assert_eq!(env.state(&run), "staged");
}

#[test]
fn exec_runs_traced_in_the_sandbox_and_answers_like_airlock_exec() {
    let Some(python) = python_with_mcp() else {
        return;
    };
    let (env, run, wt) = setup();
    let seen = session(
        &env,
        &python,
        &run,
        json!([
            call(
                "exec",
                json!({"command": ["sh", "-c", "echo out-line; echo err-line >&2; echo made > src/made.txt; exit 3"]})
            ),
            // stdin is the protocol's: the command reads end of file at once.
            call("exec", json!({"command": ["cat"]})),
            // The main checkout is hidden from the sandbox.
            call(
                "exec",
                json!({"command": ["cat", env.repo.join("docs/guide.md").to_str().unwrap()]})
            ),
            call("logs", json!({"trace": 1})),
            call("logs", json!({})),
            call(
                "snapshot",
                json!({"name": "greeting", "command": ["sh", "src/app.sh"]})
            ),
        ]),
    );
    let results = seen["results"].as_array().unwrap();
    let (trace, text) = ok(&results[0]);
    assert_eq!(trace["n"], 1);
    assert_eq!(trace["exit"]["code"], 3);
    assert_eq!(trace["origin"], "exec");
    assert_eq!(
        trace["files_changed"],
        json!([{"path": "src/made.txt", "status": "A"}])
    );
    assert!(text.starts_with("trace 1: exit 3"), "{text}");
    assert!(text.contains("--- stdout ---\nout-line"), "{text}");
    assert!(text.contains("--- stderr ---\nerr-line"), "{text}");
    assert_eq!(
        std::fs::read_to_string(wt.join("src/made.txt")).unwrap(),
        "made\n"
    );

    let (cat, _) = ok(&results[1]);
    assert_eq!(cat["exit"]["code"], 0);
    assert_eq!(cat["stdout"]["size"], 0);
    let (hidden, _) = ok(&results[2]);
    assert_ne!(hidden["exit"]["code"], 0, "{hidden:#}");

    // The same fields as `airlock --json exec` and `airlock --json logs`.
    let cli = env.json(&["exec", &run, "--", "true"], 0);
    let keys = |v: &Value| {
        let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    };
    assert_eq!(keys(trace), keys(&cli));
    let (logs, _) = ok(&results[3]);
    assert_eq!(logs, &env.json(&["logs", &run, "1"], 0));
    let (listed, _) = ok(&results[4]);
    assert_eq!(listed["traces"].as_array().unwrap().len(), 3, "{listed:#}");

    // Each MCP exec is a trace in the run's evidence, as `show` lists them.
    let shown = env.json(&["show", &run, "--no-diff"], 0);
    let argvs: Vec<&Value> = shown["traces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| &t["argv"])
        .collect();
    assert_eq!(argvs[1], &json!(["cat"]));
    assert_eq!(argvs[3], &json!(["sh", "src/app.sh"]));
    assert_eq!(argvs[4], &json!(["true"]));

    // A snapshot runs in the sandbox too, traced, and is left pending for
    // a person: new here, as `snap run` reports it.
    let (snapped, text) = ok(&results[5]);
    assert_eq!(snapped["decision"], "new", "{snapped:#}");
    assert_eq!(snapped["trace"], 4);
    assert_eq!(snapped["run"], json!(run));
    assert!(text.starts_with("new snapshot `greeting`"), "{text}");
    let pending = snapped["pending"].as_str().unwrap();
    assert!(
        std::fs::read_to_string(pending).unwrap().contains("hello"),
        "{pending}"
    );
    env.assert_ledger_ok();
}

#[test]
fn propose_withdraw_plan_check_and_submit_reach_the_run_as_the_cli_sees_it() {
    let Some(python) = python_with_mcp() else {
        return;
    };
    let (env, run, _) = setup();
    let seen = session(
        &env,
        &python,
        &run,
        json!([
            call("status", json!({})),
            // Submitting before check is the CLI's refusal, code and all.
            call("submit", json!({})),
            call(
                "exec",
                json!({"command": ["sh", "-c", "printf '#!/bin/sh\\necho hello, please\\n' > src/app.sh"]})
            ),
            call("propose", json!({"action": ACTION})),
            call(
                "propose",
                json!({"action": ACTION.replace("notify\"\nscopes", "second\"\nscopes")})
            ),
            call("withdraw", json!({"name": "second"})),
            call("plan", json!({})),
            call("check", json!({})),
            call("submit", json!({})),
            call("status", json!({})),
        ]),
    );
    let results = seen["results"].as_array().unwrap();
    let (status, text) = ok(&results[0]);
    assert_eq!(status["state"], "staged");
    assert!(status["diff"].get("patch").is_none(), "{status:#}");
    assert!(
        text.starts_with(&format!("run {run} is staged (round 1")),
        "{text}"
    );
    assert!(text.contains("reviewer's feedback: none yet"), "{text}");

    let refused = tool_error(&results[1]);
    assert_eq!(refused["code"], "wrong-state");
    assert_eq!(refused["class"], "refused");
    assert!(refused["hint"].as_str().unwrap().contains("airlock check"));

    let (proposed, _) = ok(&results[3]);
    assert_eq!(proposed["actions"][0]["spec"]["name"], "notify");
    let (withdrawn, _) = ok(&results[5]);
    assert_eq!(withdrawn, &json!({"run": run, "withdrawn": "second"}));
    let (plan, _) = ok(&results[6]);
    let (check, _) = ok(&results[7]);
    assert_eq!(check["passed"], true, "{check:#}");
    let (submitted, _) = ok(&results[8]);
    assert_eq!(submitted["state"], "in_review");
    let (status, _) = ok(&results[9]);
    assert_eq!(status["state"], "in_review");

    // What the agent did is what `airlock plan` and `show` say.
    let cli_plan = env.json(&["plan", &run], 0);
    let names: Vec<&str> = cli_plan["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["spec"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["notify"], "{cli_plan:#}");
    // Submit renders the previews again; the plan the agent saw before it
    // had the same action, with the same digest.
    assert_eq!(plan["actions"].as_array().unwrap().len(), 1, "{plan:#}");
    assert_eq!(
        plan["actions"][0]["digest"], cli_plan["actions"][0]["digest"],
        "{plan:#}"
    );
    assert_eq!(env.state(&run), "in_review");
    let proof = env.json(&["proof", "verify", &run], 0);
    assert_eq!(proof["verified"], true, "{proof:#}");

    // The reviewer's feedback reaches the agent.
    env.json(&["redirect", &run, "--reason", "also greet by name"], 0);
    let seen = session(&env, &python, &run, json!([call("status", json!({}))]));
    let (status, text) = ok(&seen["results"][0]);
    assert_eq!(status["state"], "staged");
    assert_eq!(status["feedback"], "also greet by name");
    assert!(
        text.contains("reviewer's feedback: also greet by name"),
        "{text}"
    );
    env.assert_ledger_ok();
}

#[test]
fn an_error_is_the_clis_error_with_its_code() {
    let Some(python) = python_with_mcp() else {
        return;
    };
    let (env, run, _) = setup();
    let before = env.world();
    let seen = session(
        &env,
        &python,
        &run,
        json!([
            call("logs", json!({"trace": 9})),
            call("withdraw", json!({"name": "nothing-here"})),
            call(
                "propose",
                json!({"action": "kind = \"command\"\nname = 3\n"})
            ),
        ]),
    );
    let results = seen["results"].as_array().unwrap();
    for (i, args) in [
        vec!["logs", run.as_str(), "9"],
        vec!["propose", run.as_str(), "--withdraw", "nothing-here"],
    ]
    .iter()
    .enumerate()
    {
        let cli = env.json_error(args, if i == 0 { 1 } else { 2 });
        assert_eq!(tool_error(&results[i]), &cli, "{args:?}");
    }
    let invalid = tool_error(&results[2]);
    assert_eq!(invalid["code"], "invalid-action");
    assert!(!invalid["diagnostics"].as_array().unwrap().is_empty());
    env.assert_unchanged(&before);
}

#[test]
fn bad_arguments_are_refused_precisely_and_record_nothing() {
    let Some(python) = python_with_mcp() else {
        return;
    };
    let (env, run, _) = setup();
    let before = env.world();
    let logs = logs_of(&env, &run);
    let other = "someone-elses-run-1234";
    let seen = session(
        &env,
        &python,
        &run,
        json!([
            call("exec", json!({"command": "touch src/x"})),
            call("exec", json!({"command": []})),
            call(
                "exec",
                json!({"command": ["true"], "timeout_seconds": "soon"})
            ),
            call(
                "exec",
                json!({"command": ["touch", "src/x"], "shell": true})
            ),
            call("logs", json!({"trace": -1})),
            call("snapshot", json!({"name": "--help", "command": ["true"]})),
            call("exec", json!({"command": ["touch", "src/x"], "run": other})),
            call("submit", json!({"run": other})),
            call("status", json!({"run": run})),
            call("propose", json!({"action": "x".repeat(1 << 20)})),
            // An action is text, never a path airlock would read for the agent.
            call("propose", json!({"file": "/etc/passwd"})),
        ]),
    );
    let results = seen["results"].as_array().unwrap();
    let expect = [
        (
            "invalid-input",
            "invalid type: string \"touch src/x\", expected a sequence",
        ),
        ("invalid-input", "`command` is empty"),
        (
            "invalid-input",
            "invalid type: string \"soon\", expected u64",
        ),
        ("invalid-input", "unknown field `shell`"),
        ("invalid-input", "`trace` is -1"),
        ("invalid-input", "`name` is \"--help\""),
        ("other-run", other),
        ("other-run", other),
        ("other-run", "takes no `run`"),
        ("invalid-input", "over the limit of 1048576"),
        ("invalid-input", "unknown field `file`"),
    ];
    assert_eq!(results.len(), expect.len());
    for (result, (code, says)) in results.iter().zip(expect) {
        let error = tool_error(result);
        assert_eq!(error["code"], code, "{error:#}");
        let message = error["message"].as_str().unwrap();
        assert!(message.contains(says), "{message} does not say {says}");
        assert!(error["hint"].as_str().is_some_and(|h| !h.is_empty()));
    }
    assert!(!env.tmp.path().join("repo/src/x").exists());
    assert_eq!(logs_of(&env, &run), logs, "no command ran");
    env.assert_unchanged(&before);
}

/// The server's stdout, a line at a time, with a guard against a server
/// that never answers.
struct Lines(mpsc::Receiver<String>);

impl Lines {
    fn next(&self) -> Value {
        let line = self
            .0
            .recv_timeout(Duration::from_secs(120))
            .expect("the server answered nothing");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"))
    }
}

/// `airlock mcp --run RUN` spoken to by hand: started, its answers read
/// line by line on a thread, and initialized.
fn raw_session(env: &Env, run: &str, stderr: Stdio) -> (Child, ChildStdin, Lines) {
    let mut child = env
        .cmd(&["mcp", "--run", run])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let lines = Lines(rx);
    send_line(&mut stdin, br#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}"#);
    assert_eq!(lines.next()["id"], 1);
    send_line(
        &mut stdin,
        br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
    );
    (child, stdin, lines)
}

/// One JSON-RPC message as the stdio transport frames it: a line.
fn send_line(stdin: &mut ChildStdin, bytes: &[u8]) {
    stdin.write_all(bytes).unwrap();
    stdin.write_all(b"\n").unwrap();
    stdin.flush().unwrap();
}

#[test]
fn malformed_json_rpc_gets_an_error_and_the_session_goes_on() {
    let (env, run, _) = setup();
    let before = env.world();
    let (mut child, mut stdin, lines) = raw_session(&env, &run, Stdio::null());
    let mut send = |bytes: &[u8]| send_line(&mut stdin, bytes);

    send(b"{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"tools/list\"");
    let answer = lines.next();
    assert_eq!(answer["id"], Value::Null);
    assert_eq!(answer["error"]["code"], -32700);
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("parse error: the message is not JSON"),
        "{answer}"
    );

    send(br#"{"id":3,"method":"tools/list"}"#);
    let answer = lines.next();
    assert_eq!(answer["id"], 3);
    assert_eq!(answer["error"]["code"], -32600);
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("\"jsonrpc\": \"2.0\""),
        "{answer}"
    );

    send(br#"{"jsonrpc":"2.0","id":4,"method":"tools/call","params":"exec"}"#);
    let answer = lines.next();
    assert_eq!(answer["id"], 4);
    assert_eq!(answer["error"]["code"], -32600);

    // A message over the limit is dropped as it comes, and said so.
    let mut big = br#"{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"exec","arguments":{"command":["touch","src/big"],"pad":""#.to_vec();
    big.extend(std::iter::repeat_n(b'a', 5 << 20));
    big.extend(br#""}}}"#);
    send(&big);
    let answer = lines.next();
    assert_eq!(answer["error"]["code"], -32600);
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("over the limit of 4194304 bytes"),
        "{answer}"
    );

    // The session is whole after all of it.
    send(br#"{"jsonrpc":"2.0","id":6,"method":"tools/list"}"#);
    let answer = lines.next();
    assert_eq!(answer["id"], 6);
    assert_eq!(
        answer["result"]["tools"].as_array().unwrap().len(),
        TOOLS.len()
    );
    drop(stdin);
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}");
    assert!(!env.tmp.path().join("repo/src/big").exists());
    env.assert_unchanged(&before);
}

#[test]
fn the_server_does_not_start_for_a_run_that_is_not_there() {
    let (env, _run, _) = setup();
    let before = env.world();
    let out: Output = env
        .cmd(&["--json", "mcp", "--run", "no-such-run-0000"])
        .stdin(Stdio::null())
        .output()
        .unwrap()
        .into();
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert_eq!(out.json()["error"]["code"], "unknown-run");
    env.assert_unchanged(&before);
}

/// A server told to stop (SIGTERM, as an agent's shutdown or `kill` does)
/// while an `exec` call runs stops the command and records its trace, as
/// `airlock exec` does, then exits with the signal's code: what the
/// command changed until then is part of the run.
#[test]
fn a_server_stopped_during_exec_records_the_interrupted_trace() {
    let (env, run, wt) = setup();
    let (child, mut stdin, _lines) = raw_session(&env, &run, Stdio::piped());
    let mut send = |bytes: &[u8]| send_line(&mut stdin, bytes);
    send(
        json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "exec",
               "arguments": {"command": ["sh", "-c", "echo partial > src/partial.txt; exec sleep 600"]}}})
        .to_string()
        .as_bytes(),
    );
    // The command is running once its file is there.
    let partial = wt.join("src/partial.txt");
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while !partial.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "the command never started"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(128 + 15), "{stderr}");
    assert!(
        stderr.contains("airlock mcp: stopped by SIGTERM; a command that was running was stopped and its trace recorded"),
        "{stderr}"
    );
    // The trace is in the run, with what the command changed.
    let traces = env.json(&["show", &run, "--no-diff"], 0)["traces"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(traces.len(), 1, "{traces:?}");
    let trace = &traces[0];
    assert_eq!(trace["argv"][0], "sh", "{trace}");
    assert!(
        trace["exit"]["description"]
            .as_str()
            .unwrap()
            .contains("SIGTERM"),
        "{trace}"
    );
    assert_eq!(
        trace["files_changed"][0]["path"], "src/partial.txt",
        "{trace}"
    );
    let execs: Vec<Value> = env
        .events(Some(&run))
        .into_iter()
        .filter(|e| e["kind"] == "exec")
        .collect();
    assert_eq!(execs.len(), 1);
    env.assert_ledger_ok();
}

/// A proposed action's problems name it as the tool's argument, with the
/// line, never a file of airlock's own that the model never saw.
#[test]
fn a_proposed_actions_problems_name_the_tool_argument_and_its_line() {
    let Some(python) = python_with_mcp() else {
        return;
    };
    let (env, run, _) = setup();
    let before = env.world();
    let seen = session(
        &env,
        &python,
        &run,
        json!([
            call(
                "propose",
                json!({"action": "kind = \"command\"\nscopes = [\"command:notify\"]\nname = 3\nargv = [\"true\"]\n"})
            ),
            call(
                "propose",
                json!({"action": "kind = \"command\"\nname = \"wipe\"\nscopes = [\"command:wipe\"]\nargv = [\"true\"]\n"})
            ),
        ]),
    );
    let results = seen["results"].as_array().unwrap();
    let invalid = tool_error(&results[0]);
    assert_eq!(invalid["code"], "invalid-action");
    assert_eq!(invalid["path"], "action (the propose tool's argument)");
    assert!(
        invalid["message"]
            .as_str()
            .unwrap()
            .starts_with("action (the propose tool's argument) has 1 problem"),
        "{invalid}"
    );
    assert_eq!(invalid["diagnostics"][0]["line"], 3, "{invalid}");
    let text = results[0]["result"]["content"][0]["text"].as_str().unwrap();
    assert!(
        text.contains("\n  - action (the propose tool's argument), line 3, column 8: "),
        "{text}"
    );
    assert_eq!(tool_error(&results[1])["code"], "scope-not-granted");
    let all = seen.to_string();
    assert!(!all.contains("airlock-mcp-action"), "{all}");
    assert!(!all.contains("action.toml"), "{all}");
    env.assert_unchanged(&before);
}
