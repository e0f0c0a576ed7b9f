//! `airlock agent`: the agent itself in its run's sandbox. A script stands
//! in for the agent (the CMD), and attempts what a hostile agent would:
//! reading the home, approving, promoting, resolving, rolling back,
//! touching the ledger, speaking to the relay socket directly. Each
//! attempt is refused and its target checked unchanged.

mod common;

use std::path::{Path, PathBuf};

use common::agent::{agent, agent_script, attempts};
use common::{BRIEF, Env, Output, write};
use serde_json::{Value, json};

/// The prologue of every stand-in agent: `$A` is the airlock binary the
/// agent is shown (beside the relay socket), `try` records a command's exit
/// code and what it printed in `attempts.txt`.
const PROLOGUE: &str = r#"#!/bin/sh
A="$(dirname "$AIRLOCK_AGENT_RELAY")/airlock"
W="$PWD"
try() { "$@" >"$W/out.txt" 2>&1; echo "$? $*" >> "$W/attempts.txt"; awk '{print "  | " $0}' "$W/out.txt" >> "$W/attempts.txt"; }
"#;

/// The home directory's top-level names, sorted.
fn home_entries(home: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(home)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn agents_dirs(env: &Env) -> Vec<PathBuf> {
    std::fs::read_dir(env.state_dir().join("agents"))
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default()
}

#[test]
fn the_agent_runs_in_its_worktree_with_the_home_hidden_and_is_traced() {
    let env = Env::new();
    write(&env.home.join(".ssh/id_ed25519"), "PRIVATE KEY\n");
    write(
        &env.home.join(".claude/.credentials.json"),
        "{\"token\":\"t\"}\n",
    );
    let (run, wt) = env.start(BRIEF);
    agent_script(
        &wt,
        &format!(
            "{PROLOGUE}pwd > seen.txt; ls src >> seen.txt\n\
             try cat \"$HOME/.ssh/id_ed25519\"\n\
             try cat \"$HOME/.claude/.credentials.json\"\n\
             try cat {repo}/src/app.sh\n\
             echo changed > src/app.sh\n",
            repo = env.repo.display()
        ),
    );
    let out = agent(&env, &[&run, "--", "./agent.sh"]);
    let v = out.expect_json(&["agent"], 0);
    assert_eq!(v["trace"]["origin"], "agent", "{v}");
    assert_eq!(v["trace"]["confinement"], "confined", "{v}");
    assert!(v["preset"].is_null(), "{v}");
    // The agent's session is a trace of the run, with the files it changed.
    let changed: Vec<&str> = v["trace"]["files_changed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["path"].as_str().unwrap())
        .collect();
    assert!(changed.contains(&"src/app.sh"), "{changed:?}");
    let seen = std::fs::read_to_string(wt.join("seen.txt")).unwrap();
    assert_eq!(seen, format!("{}\napp.sh\n", wt.display()));
    for (code, command, output) in attempts(&wt) {
        assert_ne!(
            code, 0,
            "{command} succeeded in the agent's sandbox:\n{output}"
        );
        assert!(
            !output.contains("PRIVATE KEY") && !output.contains("token"),
            "{output}"
        );
    }
    // Nothing of the launch is left behind.
    assert!(agents_dirs(&env).is_empty(), "{:?}", agents_dirs(&env));
    let traces = env.json(&["logs", &run], 0);
    assert!(traces.to_string().contains("\"agent\""), "{traces}");
}

/// The control plane is out of the agent's reach: `approve`, `promote`,
/// `resolve`, `rollback` and the ledger, tried with the airlock binary the
/// agent is shown, from its worktree, with `-C` at the main checkout and
/// from `/`, each against a run in the state where it would succeed.
#[test]
fn an_agent_cannot_approve_promote_resolve_roll_back_or_touch_the_ledger() {
    let env = Env::new();
    let (promoted, _) = env.approved();
    env.json(&["promote", &promoted], 0);
    let (approved, _) = env.approved();
    let (submitted, _) = env.submitted();
    let (run, wt) = env.start(BRIEF);
    let repo = env.repo.display().to_string();
    let script = format!(
        "{PROLOGUE}\
for where in . /; do (cd $where
  try \"$A\" approve {submitted}
  try \"$A\" -C {repo} approve {submitted}
  try \"$A\" -C {repo} promote {approved}
  try \"$A\" -C {repo} rollback {promoted} --reason undo
  try \"$A\" -C {repo} resolve --done {promoted} anything
  try \"$A\" -C {repo} ledger accept-loss --reason gone
  try \"$A\" -C {repo} ledger verify
  try env -u AIRLOCK_RUN \"$A\" -C {repo} approve {submitted}
  try sh -c 'echo x >> {repo}/.airlock/local/ledger.db'
  try git -C {repo} update-ref refs/heads/main HEAD
); done
"
    );
    agent_script(&wt, &script);
    let fingerprint = env.main_fingerprint();
    let events = env.events(None).len();
    let v = agent(&env, &[&run, "--", "./agent.sh"]).expect_json(&["agent"], 0);
    assert_eq!(v["trace"]["exit"]["code"], 0, "{v}");
    let tried = attempts(&wt);
    assert_eq!(tried.len(), 20, "{tried:?}");
    for (code, command, output) in &tried {
        // A write to the ledger's path is judged by the ledger below: with
        // the test's repository under /tmp, the path leads into the run's
        // private /tmp, where a write succeeds and reaches nothing.
        if command.contains("ledger.db") {
            continue;
        }
        assert_ne!(
            *code, 0,
            "`{command}` succeeded inside the agent's sandbox:\n{output}"
        );
    }
    // Refused with a reason, not merely failing to start.
    assert!(
        tried[0]
            .2
            .contains("a run's worktree, not a repository airlock manages"),
        "{tried:?}"
    );
    assert_eq!(env.state(&promoted), "promoted");
    assert_eq!(env.state(&approved), "approved");
    assert_eq!(env.state(&submitted), "in_review");
    assert_eq!(env.main_fingerprint(), fingerprint);
    // One event more: the agent's own trace.
    let after = env.events(None);
    assert_eq!(after.len(), events + 1, "{:?}", &after[events..]);
    assert_eq!(after.last().unwrap()["kind"], "exec", "{:?}", after.last());
    env.assert_ledger_ok();

    // The control: the same attempts outside the sandbox succeed, so the
    // checks above can see an attack that works.
    let outside = env.tmp.path().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    std::os::unix::fs::symlink(
        assert_cmd::cargo::cargo_bin("airlock"),
        outside.join("airlock"),
    )
    .unwrap();
    let mut bare = std::process::Command::new("sh");
    env.hermetic(&mut bare);
    let bare = bare
        .arg("-c")
        .arg(format!(
            "{PROLOGUE}try \"$A\" -C {repo} approve {submitted}"
        ))
        .env("AIRLOCK_AGENT_RELAY", outside.join("relay.sock"))
        .current_dir(&outside)
        .output()
        .unwrap();
    assert!(bare.status.success());
    assert_eq!(env.state(&submitted), "approved");
}

/// A hostile agent speaking to the relay socket directly gets only the
/// hooks and the MCP server of its own run: any other request is refused,
/// and a hook's ledger append lands in its run alone.
#[test]
fn the_relay_serves_only_hooks_and_mcp_for_the_agents_own_run() {
    let env = Env::new();
    let (other, _) = env.submitted();
    let (run, wt) = env.start(BRIEF);
    let post = json!({
        "session_id": "abc123", "transcript_path": "/t.jsonl", "cwd": wt,
        "hook_event_name": "PostToolUse", "tool_name": "Bash",
        "tool_input": {"command": "ls"}, "tool_response": {"stdout": ""},
        "tool_use_id": "toolu_1"
    });
    let pre = json!({
        "session_id": "abc123", "transcript_path": "/t.jsonl", "cwd": wt,
        "permission_mode": "default", "hook_event_name": "PreToolUse", "tool_name": "Bash",
        "tool_input": {"command": format!("airlock approve {other}")},
        "tool_use_id": "toolu_2"
    });
    write(&wt.join("post.json"), &post.to_string());
    write(&wt.join("pre.json"), &pre.to_string());
    // Raw requests on the socket: each answer's exit code byte and stderr.
    write(
        &wt.join("raw.py"),
        r#"import os, socket, struct, sys
path = os.environ["AIRLOCK_AGENT_RELAY"]
for line in sys.argv[1:]:
    s = socket.socket(socket.AF_UNIX)
    s.connect(path)
    s.sendall(line.encode().decode("unicode_escape").encode("latin-1"))
    s.shutdown(socket.SHUT_WR)
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    code = data[0] if data else -1
    out_len = struct.unpack("<I", data[1:5])[0] if len(data) >= 5 else 0
    err = data[9 + out_len:].decode(errors="replace") if data else ""
    print(f"{code} {line!r} {err.strip()}")
"#,
    );
    let script = format!(
        "{PROLOGUE}\
try \"$A\" __agent-relay hook claude post < post.json
try \"$A\" __agent-relay hook claude pre < pre.json
try \"$A\" __agent-relay approve {other}
try \"$A\" __agent-relay hook claude post --run {other}
python3 raw.py 'approve {other}\\n' 'promote {other}\\n' 'hook claude post --run {other}\\n' \
  'mcp --run {other}\\n' '{long}\\n' 'hook claude pre' > raw.txt
",
        long = "x".repeat(200)
    );
    agent_script(&wt, &script);
    let before_other = env.events(Some(&other)).len();
    let before = env.events(Some(&run)).len();
    let v = agent(&env, &[&run, "--", "./agent.sh"]).expect_json(&["agent"], 0);
    let tried = attempts(&wt);
    // The post hook was answered (recorded), the pre hook denied the
    // approval, the other two refused by the relay client itself.
    assert_eq!(tried[0].0, 0, "{tried:?}");
    assert_eq!(tried[1].0, 0, "{tried:?}");
    let reply: Value = serde_json::from_str(tried[1].2.trim()).unwrap_or(Value::Null);
    assert_eq!(
        reply["hookSpecificOutput"]["permissionDecision"], "deny",
        "{tried:?}"
    );
    for (code, command, output) in &tried[2..] {
        assert_eq!(*code, 2, "{command}: {output}");
        assert!(
            output.contains("is not a service of the agent relay"),
            "{output}"
        );
    }
    let raw = std::fs::read_to_string(wt.join("raw.txt")).unwrap();
    let lines: Vec<&str> = raw.lines().collect();
    assert_eq!(lines.len(), 6, "{raw}");
    for line in &lines[..5] {
        assert!(
            line.starts_with("2 ")
                && line.contains("serves only `hook claude|codex pre|post` and `mcp`"),
            "{raw}"
        );
    }
    // A service line that never ends is refused too (the connection closes).
    assert!(
        lines[5].starts_with("2 ") || lines[5].starts_with("-1 "),
        "{raw}"
    );
    assert_eq!(
        v["relayed"],
        json!([
            "hook claude post",
            "hook claude pre",
            "refused",
            "refused",
            "refused",
            "refused",
            "refused",
            "refused"
        ]),
        "{v}"
    );
    // The tool call landed in the agent's run, and nothing in the other's.
    let events = env.events(Some(&run));
    let calls: Vec<&Value> = events.iter().filter(|e| e["kind"] == "tool-call").collect();
    assert_eq!(calls.len(), 1, "{events:?}");
    assert_eq!(events.len(), before + 2, "{events:?}");
    assert_eq!(env.events(Some(&other)).len(), before_other);
    assert_eq!(env.state(&other), "in_review");
    env.assert_ledger_ok();
}

/// With a preset the agent sees a copy of its own settings and
/// credentials (and may write it; a refreshed token flows back); `exec` in
/// the same run still does not, nor anything else of the home.
#[test]
fn a_preset_shows_the_agent_its_own_credentials_and_nothing_else() {
    let env = Env::new();
    write(&env.home.join(".ssh/id_ed25519"), "PRIVATE KEY\n");
    write(
        &env.home.join(".claude/.credentials.json"),
        "claude-token\n",
    );
    write(&env.home.join(".codex/auth.json"), "codex-token\n");
    let (run, wt) = env.start(BRIEF);
    agent_script(
        &wt,
        &format!(
            "{PROLOGUE}\
try cat \"$HOME/.claude/.credentials.json\"
try cat \"$HOME/.claude.json\"
try cat \"$HOME/.codex/auth.json\"
try cat \"$HOME/.ssh/id_ed25519\"
try sh -c 'echo \"{{\\\"token\\\": \\\"refreshed\\\"}}\" > \"$HOME/.claude/.credentials.json\"'
try sh -c 'echo x > \"$HOME/planted\"'
"
        ),
    );
    let v =
        agent(&env, &["--preset", "claude", &run, "--", "./agent.sh"]).expect_json(&["agent"], 0);
    assert_eq!(v["preset"], "claude", "{v}");
    let tried = attempts(&wt);
    let codes: Vec<i32> = tried.iter().map(|t| t.0).collect();
    assert_eq!(codes[..2], [0, 0], "{tried:?}");
    assert!(tried[0].2.contains("claude-token"), "{tried:?}");
    assert_eq!(
        tried[1].2, "{}\n",
        "made for the agent, as it would on its first start"
    );
    assert_ne!(codes[2], 0, "Codex's token shown to Claude Code: {tried:?}");
    assert_ne!(codes[3], 0, "{tried:?}");
    assert_eq!(codes[4], 0, "the agent refreshes its token: {tried:?}");
    // The home stays read-only (here, below the test's /tmp, the attempt
    // lands in the run's private /tmp): nothing reaches the real home.
    // The refreshed token alone flows back.
    assert_eq!(
        std::fs::read_to_string(env.home.join(".claude/.credentials.json")).unwrap(),
        "{\"token\": \"refreshed\"}\n"
    );
    assert_eq!(
        v["token_returned"],
        json!(env.home.join(".claude/.credentials.json")),
        "{v}"
    );
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(env.home.join(".claude/.credentials.json"))
            .unwrap()
            .permissions(),
    );
    assert_eq!(mode & 0o077, 0, "{mode:o}");
    assert!(!env.home.join("planted").exists());
    // The agent's ~/.claude.json was its copy's: the user's is not made.
    assert!(!env.home.join(".claude.json").exists());

    // `exec` in the same run: the credentials stay hidden.
    let out = env.airlock(&[
        "exec",
        &run,
        "--",
        "cat",
        &format!("{}/.claude/.credentials.json", env.home.display()),
    ]);
    assert_ne!(out.code, 0, "{}", out.stdout);
    assert!(!out.stdout.contains("refreshed"), "{}", out.stdout);

    // Codex's preset: its own directory, not Claude's; here a link to a
    // directory elsewhere, found where the agent looks for it.
    std::fs::remove_file(wt.join("attempts.txt")).unwrap();
    let elsewhere = env.tmp.path().join("codex-home");
    std::fs::rename(env.home.join(".codex"), &elsewhere).unwrap();
    std::os::unix::fs::symlink(&elsewhere, env.home.join(".codex")).unwrap();
    let v =
        agent(&env, &["--preset", "codex", &run, "--", "./agent.sh"]).expect_json(&["agent"], 0);
    assert_eq!(v["preset"], "codex", "{v}");
    let tried = attempts(&wt);
    assert_ne!(tried[0].0, 0, "{tried:?}");
    assert_eq!(tried[2].0, 0, "{tried:?}");
    assert!(tried[2].2.contains("codex-token"), "{tried:?}");
}

/// A launch killed before it could clean up leaves its directory, with the
/// copy of the user's credentials in it. While the launch lives, `gc` and
/// a second launch leave its directory alone; once it is gone, `gc` removes
/// it (and says so), and so would the next launch.
#[test]
fn a_killed_launch_leaves_no_credentials_behind() {
    let env = Env::new();
    write(
        &env.home.join(".claude/.credentials.json"),
        "claude-token\n",
    );
    let (run, wt) = env.start(BRIEF);
    agent_script(&wt, "#!/bin/sh\ntouch started\nexec sleep 60\n");
    let mut child = env
        .cmd(&["agent", "--preset", "claude", &run, "--", "./agent.sh"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !wt.join("started").exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "the agent never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let dirs = agents_dirs(&env);
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    let copy = dirs[0].join("home/.claude/.credentials.json");
    assert_eq!(std::fs::read_to_string(&copy).unwrap(), "claude-token\n");

    // Live: collected by nothing.
    let v = env.json(&["gc", "--older-than", "0s"], 0);
    assert_eq!(v["agent_dirs"], json!([]), "{v}");
    assert!(copy.exists());

    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        copy.exists(),
        "the kill left the copy: what this test is about"
    );

    let dry = env.json(&["gc", "--older-than", "0s", "--dry-run"], 0);
    assert_eq!(dry["agent_dirs"][0]["path"], json!(dirs[0]), "{dry}");
    assert!(copy.exists(), "a dry run removes nothing");
    let human = env.airlock(&["gc", "--older-than", "0s"]);
    assert_eq!(human.code, 0, "{}", human.stderr);
    assert!(
        human
            .stdout
            .contains(&format!("removed {} (", dirs[0].display()))
            && human
                .stdout
                .contains("left by an `airlock agent` launch that was killed"),
        "{}",
        human.stdout
    );
    assert!(agents_dirs(&env).is_empty(), "{:?}", agents_dirs(&env));
    // The user's own file is untouched.
    assert_eq!(
        std::fs::read_to_string(env.home.join(".claude/.credentials.json")).unwrap(),
        "claude-token\n"
    );

    // Killed again: the next launch removes what the last one left.
    std::fs::remove_file(wt.join("started")).unwrap();
    let mut child = env
        .cmd(&["agent", "--preset", "claude", &run, "--", "./agent.sh"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    while !wt.join("started").exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "the agent never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let left = agents_dirs(&env);
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(left.len(), 1, "{left:?}");
    agent_script(&wt, "#!/bin/sh\ntrue\n");
    agent(&env, &["--preset", "claude", &run, "--", "./agent.sh"]).expect_json(&["agent"], 0);
    assert!(agents_dirs(&env).is_empty(), "{:?}", agents_dirs(&env));
}

/// The hooks and the MCP server are configured for this launch only: the
/// agent's command line names files in airlock's own directory, which go
/// when the agent ends; the repository and the user's settings are left
/// as they were.
#[test]
fn a_preset_configures_hooks_and_mcp_for_this_launch_only() {
    let env = Env::new();
    let (run, wt) = env.start(BRIEF);
    agent_script(
        &wt,
        "#!/bin/sh\nfor a in \"$@\"; do echo \"$a\"; done > args.txt\n\
         for a in \"$@\"; do case $a in --settings=*|--mcp-config=*) cat \"${a#*=}\"; echo; echo ---;; esac; done > files.txt\n",
    );
    let home_before = home_entries(&env.home);
    let fingerprint = env.main_fingerprint();
    agent(
        &env,
        &[
            "--preset",
            "claude",
            &run,
            "--",
            "./agent.sh",
            "-p",
            "hello",
        ],
    )
    .expect_json(&["agent"], 0);
    let args = std::fs::read_to_string(wt.join("args.txt")).unwrap();
    let args: Vec<&str> = args.lines().collect();
    assert_eq!(args.len(), 4, "{args:?}");
    assert!(
        args[0].starts_with("--settings=") && args[0].ends_with("claude-settings.json"),
        "{args:?}"
    );
    assert!(
        args[1].starts_with("--mcp-config=") && args[1].ends_with("claude-mcp.json"),
        "{args:?}"
    );
    assert_eq!(args[2..], ["-p", "hello"]);
    let settings_path = PathBuf::from(args[0].trim_start_matches("--settings="));
    assert!(
        settings_path.starts_with(env.state_dir()),
        "{settings_path:?}"
    );
    assert!(!settings_path.exists(), "left behind: {settings_path:?}");
    let files = std::fs::read_to_string(wt.join("files.txt")).unwrap();
    let mut docs = files.split("\n---\n").filter(|d| !d.trim().is_empty());
    let settings: Value = serde_json::from_str(docs.next().unwrap()).unwrap();
    let mcp: Value = serde_json::from_str(docs.next().unwrap()).unwrap();
    let program = settings_path.parent().unwrap().join("airlock");
    assert_eq!(
        settings["hooks"]["PreToolUse"][0]["hooks"][0]["command"],
        format!("'{}' __agent-relay hook claude pre", program.display()),
        "{settings}"
    );
    assert_eq!(
        settings["hooks"]["PostToolUse"][0]["hooks"][0]["command"],
        format!("'{}' __agent-relay hook claude post", program.display()),
        "{settings}"
    );
    assert_eq!(
        mcp["mcpServers"]["airlock"],
        json!({"type": "stdio", "command": program, "args": ["__agent-relay", "mcp"]}),
        "{mcp}"
    );
    // Codex: `-c` overrides and nothing written where Codex reads files.
    agent(&env, &["--preset", "codex", &run, "--", "./agent.sh"]).expect_json(&["agent"], 0);
    let args = std::fs::read_to_string(wt.join("args.txt")).unwrap();
    let args: Vec<&str> = args.lines().collect();
    assert_eq!(args[0], "-c");
    assert!(
        args[1].starts_with("mcp_servers.airlock.command=\""),
        "{args:?}"
    );
    assert_eq!(
        args[3],
        "mcp_servers.airlock.args=[\"__agent-relay\",\"mcp\"]"
    );
    assert!(
        args[5].starts_with("hooks.PreToolUse=[{hooks=[{type=\"command\",command="),
        "{args:?}"
    );
    assert!(args[5].contains("__agent-relay hook codex pre"), "{args:?}");
    assert!(
        args[7].contains("__agent-relay hook codex post"),
        "{args:?}"
    );
    assert_eq!(args[8], "--dangerously-bypass-hook-trust");
    // The user's settings: nothing made (the agent's home is a copy).
    let mut home_after = home_entries(&env.home);
    home_after.retain(|p| !home_before.contains(p));
    assert!(home_after.is_empty(), "{home_after:?}");
    assert_eq!(env.main_fingerprint(), fingerprint);
}

/// Refusals: a run that cannot run commands, an unknown run, nothing to
/// run; each with its code under `--json`, and nothing made.
#[test]
fn airlock_agent_refuses_a_run_that_cannot_run_commands() {
    let env = Env::new();
    let (submitted, _) = env.submitted();
    let events = env.events(None).len();
    let out = agent(&env, &[&submitted, "--", "true"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    let v = out.json();
    assert_eq!(v["error"]["code"], "wrong-state", "{v}");
    assert!(
        v["error"]["message"].as_str().unwrap().contains("agent"),
        "{v}"
    );
    let out = agent(&env, &["no-such-run", "--", "true"]);
    assert_ne!(out.code, 0);
    assert_eq!(out.json()["error"]["code"], "unknown-run", "{}", out.stdout);
    let out = env.airlock(&["agent", &submitted]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    let out = env.airlock(&["agent", "--preset", "gemini", &submitted, "--", "true"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("claude, codex"), "{}", out.stderr);
    assert_eq!(env.events(None).len(), events);
    assert!(agents_dirs(&env).is_empty(), "{:?}", agents_dirs(&env));
}

/// A session that ended well: its document and what it printed on stderr
/// (the agent's own output, with `--json`).
fn ok(out: Output) -> (Value, String) {
    let stderr = out.stderr.clone();
    (out.expect_json(&["agent"], 0), stderr)
}

/// The agents' programs as `.ci/run` installs them from the npm registry
/// (`npm install --prefix target/agents @anthropic-ai/claude-code
/// @openai/codex`). Missing: a failure under CI=true, a skip otherwise.
fn installed(program: &str) -> Option<PathBuf> {
    let bin = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../target/agents/node_modules/.bin")
        .join(program);
    let found = std::fs::canonicalize(&bin).ok().filter(|p| p.is_file());
    if found.is_none() {
        let why = format!(
            "{} is not installed: `.ci/run` installs it (npm install --prefix target/agents \
             @anthropic-ai/claude-code @openai/codex)",
            bin.display()
        );
        assert!(std::env::var_os("CI").is_none_or(|v| v != "true"), "{why}");
        eprintln!("skipped: {why}");
    }
    // The link in .bin, which the agent's own launcher expects.
    found.map(|_| bin)
}

/// The harness's workflow with every host of `hosts` answered with
/// 127.0.0.1 by the proxy (`[sandbox] resolve`: the tests never leave the
/// machine), and a lane that names that address, so that the preset's
/// rule lets the agent reach the fake API there.
fn workflow_resolving(hosts: &[&str]) -> String {
    let names: Vec<String> = hosts
        .iter()
        .map(|h| format!("\"{h}\" = \"127.0.0.1\""))
        .collect();
    format!(
        "{}\n[sandbox]\nresolve = {{{}}}\n\n[lanes.governed]\nnetwork = [\"127.0.0.1:443\"]\n",
        common::WORKFLOW,
        names.join(", ")
    )
}

/// A listener on 127.0.0.1:443, where the proxy dials the agent's API host
/// in these tests (when the port can be bound), accepting and closing.
fn fake_api_port() -> Option<std::thread::JoinHandle<()>> {
    let listener = std::net::TcpListener::bind("127.0.0.1:443").ok()?;
    listener.set_nonblocking(true).ok()?;
    Some(std::thread::spawn(move || {
        let end = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while std::time::Instant::now() < end {
            match listener.accept() {
                Ok((conn, _)) => drop(conn),
                Err(_) => std::thread::sleep(std::time::Duration::from_millis(20)),
            }
        }
    }))
}

/// The connections the session recorded to `host`.
fn connections_to<'a>(v: &'a Value, host: &str) -> Vec<&'a Value> {
    v["connections"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["host"] == host)
        .collect()
}

/// Claude Code itself, installed from npm: it starts in the sandbox, reads
/// the worktree (its project's `.mcp.json` shows in `claude mcp list`),
/// starts airlock's MCP server from the configuration written for this
/// launch (through the relay), and its API connection goes through the
/// proxy, recorded under the preset's rule, while another host is refused.
#[test]
fn claude_code_runs_in_the_sandbox_and_reaches_only_its_api_through_the_proxy() {
    let Some(claude) = installed("claude") else {
        return;
    };
    let env = Env::new();
    env.write(
        ".airlock/workflow.toml",
        &workflow_resolving(&[
            "api.anthropic.com",
            "claude.ai",
            "platform.claude.com",
            "console.anthropic.com",
            "example.org",
        ]),
    );
    env.git(&["commit", "-qam", "the lane reaches the fake API's address"]);
    let (run, wt) = env.start(BRIEF);
    let claude = claude.display().to_string();

    let out = agent(
        &env,
        &["--preset", "claude", &run, "--", &claude, "--version"],
    );
    let (v, stderr) = ok(out);
    assert!(stderr.contains("(Claude Code)"), "{}", stderr);
    assert_eq!(v["trace"]["confinement"], "confined");

    write(
        &wt.join(".mcp.json"),
        r#"{"mcpServers":{"worktree-probe":{"command":"true"}}}"#,
    );
    let out = agent(
        &env,
        &["--preset", "claude", &run, "--", &claude, "mcp", "list"],
    );
    let (_, stderr) = ok(out);
    assert!(stderr.contains("worktree-probe"), "{}", stderr);

    // Claude Code's own MCP client completes the handshake with airlock's
    // server through the relay: `claude mcp list` checks a project's
    // servers (not `--mcp-config`'s), so the agent copies the file airlock
    // wrote for this launch into the project and approves it there.
    write(
        &wt.join(".claude/settings.local.json"),
        r#"{"enableAllProjectMcpServers": true}"#,
    );
    agent_script(
        &wt,
        &format!(
            "#!/bin/sh
for a in \"$@\"; do case $a in --mcp-config=*) cp \"${{a#*=}}\" .mcp.json;; esac; done
\
             exec {claude} mcp list
"
        ),
    );
    let out = agent(&env, &["--preset", "claude", &run, "--", "./agent.sh"]);
    let (v, stderr) = ok(out);
    let line = stderr
        .lines()
        .find(|l| l.starts_with("airlock: "))
        .unwrap_or_else(|| panic!("{}", stderr));
    assert!(line.contains("__agent-relay mcp"), "{line}");
    assert!(line.contains("Connected"), "{line}");
    assert_eq!(v["relayed"], json!(["mcp"]), "{v}");

    agent_script(
        &wt,
        &format!(
            "#!/bin/sh\ntimeout 40 {claude} \"$@\" -p hello </dev/null; echo claude=$?\n\
             curl -sS -m 5 https://example.org -o /dev/null; echo curl=$?\n"
        ),
    );
    let api = fake_api_port();
    let out = env.airlock_env(
        &[
            "--json",
            "agent",
            "--preset",
            "claude",
            &run,
            "--",
            "./agent.sh",
        ],
        &[("ANTHROPIC_API_KEY", "sk-ant-test-not-a-key")],
    );
    let (v, stderr) = ok(out);
    let reached = connections_to(&v, "api.anthropic.com");
    assert!(!reached.is_empty(), "{v}");
    for c in &reached {
        assert_eq!(c["port"], 443, "{c}");
        assert_eq!(c["protocol"], "connect", "{c}");
        // The preset's entry allowed the name (the lane's, its address).
        let rule = c["rule"].as_str().unwrap_or_default();
        assert!(rule.starts_with("api.anthropic.com:443"), "{c}");
        assert!(c["outcome"] == "allowed" || c["outcome"] == "failed", "{c}");
    }
    if api.is_some() {
        assert!(reached.iter().any(|c| c["outcome"] == "allowed"), "{v}");
    }
    let refused = connections_to(&v, "example.org");
    assert_eq!(refused.len(), 1, "{v}");
    assert_eq!(refused[0]["outcome"], "refused");
    assert!(
        refused[0]["allow_with"]
            .as_str()
            .is_some_and(|a| a.contains("example.org:443")),
        "{v}"
    );
    assert!(stderr.contains("curl=56"), "{}", stderr);
    // Claude Code started airlock's MCP server from the file written for
    // this launch: its connection came through the relay.
    assert!(
        v["relayed"].as_array().unwrap().iter().any(|r| r == "mcp"),
        "{v}"
    );
    // In the run's trace too, as every command's connections are.
    assert_eq!(v["trace"]["connections"], v["connections"], "{v}");
    if let Some(api) = api {
        drop(api.join());
    }
}

/// Codex itself: it starts in the sandbox, lists airlock's MCP server from
/// the `-c` overrides of this launch, and its API connection goes through
/// the proxy, recorded under the preset's rule.
#[test]
fn codex_runs_in_the_sandbox_with_its_configuration_for_this_launch() {
    let Some(codex) = installed("codex") else {
        return;
    };
    let env = Env::new();
    env.write(
        ".airlock/workflow.toml",
        &workflow_resolving(&["api.openai.com", "auth.openai.com", "chatgpt.com"]),
    );
    env.git(&["commit", "-qam", "the lane reaches the fake API's address"]);
    let (run, wt) = env.start(BRIEF);
    let codex = codex.display().to_string();

    let out = agent(
        &env,
        &["--preset", "codex", &run, "--", &codex, "--version"],
    );
    let (_, stderr) = ok(out);
    assert!(stderr.contains("codex-cli"), "{}", stderr);

    let out = agent(
        &env,
        &["--preset", "codex", &run, "--", &codex, "mcp", "list"],
    );
    let (_, stderr) = ok(out);
    let line = stderr
        .lines()
        .find(|l| l.starts_with("airlock "))
        .unwrap_or_else(|| panic!("{}", stderr));
    assert!(line.contains("__agent-relay mcp"), "{line}");
    assert!(
        !env.home.join(".codex/config.toml").exists(),
        "written in the user's settings"
    );

    agent_script(
        &wt,
        &format!(
            "#!/bin/sh\ntimeout 10 {codex} \"$@\" exec --skip-git-repo-check hello </dev/null; echo codex=$?\n"
        ),
    );
    let out = env.airlock_env(
        &[
            "--json",
            "agent",
            "--preset",
            "codex",
            &run,
            "--",
            "./agent.sh",
        ],
        &[("OPENAI_API_KEY", "sk-test-not-a-key")],
    );
    let (v, _) = ok(out);
    // It started airlock's MCP server from the `-c` overrides (through the
    // relay); whether the handshake completed, Codex does not say here.
    assert!(
        v["relayed"].as_array().unwrap().iter().any(|r| r == "mcp"),
        "{v}"
    );
    let reached = connections_to(&v, "api.openai.com");
    assert!(!reached.is_empty(), "{v}");
    for c in &reached {
        let rule = c["rule"].as_str().unwrap_or_default();
        assert!(rule.starts_with("api.openai.com:443"), "{c}");
    }
    // Whatever else it tried (its update check on github.com) was refused.
    for c in v["connections"].as_array().unwrap() {
        let host = c["host"].as_str().unwrap();
        if !["api.openai.com", "auth.openai.com", "chatgpt.com"].contains(&host) {
            assert_eq!(c["outcome"], "refused", "{c}");
        }
    }
}

/// The MCP server through the relay: the agent's MCP client starts
/// `airlock __agent-relay mcp` in the sandbox and speaks JSON-RPC to
/// `airlock mcp --run RUN` outside, bound to the agent's run: the
/// handshake completes, the tools are the run's (none a reviewer's), and a
/// call answers for the agent's run.
#[test]
fn the_agents_mcp_client_reaches_airlocks_mcp_server_through_the_relay() {
    let env = Env::new();
    let (run, wt) = env.start(BRIEF);
    write(
        &wt.join("client.py"),
        r#"import json, os, subprocess, sys
relay = os.path.join(os.path.dirname(os.environ["AIRLOCK_AGENT_RELAY"]), "airlock")
p = subprocess.Popen([relay, "__agent-relay", "mcp"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
def send(m):
    p.stdin.write((json.dumps(m) + "\n").encode()); p.stdin.flush()
def answer():
    return json.loads(p.stdout.readline())
send({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
    "protocolVersion": "2025-06-18", "capabilities": {},
    "clientInfo": {"name": "agent-test", "version": "1"}}})
init = answer()
send({"jsonrpc": "2.0", "method": "notifications/initialized"})
send({"jsonrpc": "2.0", "id": 2, "method": "tools/list"})
tools = answer()
send({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "status", "arguments": {}}})
status = answer()
p.stdin.close()
p.wait(timeout=20)
json.dump({"init": init, "tools": [t["name"] for t in tools["result"]["tools"]], "status": status}, open("mcp.json", "w"))
"#,
    );
    agent_script(&wt, "#!/bin/sh\nexec python3 client.py\n");
    let v = agent(&env, &[&run, "--", "./agent.sh"]).expect_json(&["agent"], 0);
    assert_eq!(v["relayed"], json!(["mcp"]), "{v}");
    let seen: Value =
        serde_json::from_str(&std::fs::read_to_string(wt.join("mcp.json")).unwrap()).unwrap();
    assert_eq!(
        seen["init"]["result"]["serverInfo"]["name"], "airlock",
        "{seen}"
    );
    let tools: Vec<&str> = seen["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    assert_eq!(
        tools,
        [
            "status", "exec", "check", "logs", "snapshot", "propose", "withdraw", "plan", "submit"
        ],
        "{seen}"
    );
    for reviewer in ["approve", "promote", "resolve", "rollback", "reject"] {
        assert!(!tools.iter().any(|t| t.contains(reviewer)), "{tools:?}");
    }
    // The server answers for the agent's run, the one the relay chose.
    let status = &seen["status"]["result"];
    assert_ne!(status["isError"], true, "{seen}");
    assert!(status.to_string().contains(&run), "{seen}");
}
