//! `airlock hook claude|codex pre|post --run RUN` through the binary,
//! against a real started run: payloads in each agent's documented shape
//! (as in crates/airlock-hooks/tests/contracts.rs), the contract's reply
//! byte for byte, and failures that block (exit 2, reason on stderr)
//! without writing anything.

mod common;

use std::io::Write;
use std::path::Path;
use std::process::Stdio;

use common::*;
use serde_json::{Value, json};

/// `airlock hook AGENT EVENT --run RUN` with `input` on stdin.
fn hook(env: &Env, agent: &str, event: &str, run: &str, input: &[u8]) -> Output {
    let mut cmd = env.cmd(&["hook", agent, event, "--run", run]);
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    // The hook may refuse before reading everything: a closed pipe is fine.
    let _ = stdin.write_all(input);
    drop(stdin);
    child.wait_with_output().unwrap().into()
}

/// A Claude Code PreToolUse payload as the hooks reference shows it.
fn claude_pre(worktree: &Path, tool_name: &str, tool_input: Value) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "session_id": "abc123",
        "transcript_path": "/home/user/.claude/projects/run-1/00893aaf-19fa-41d2-8238-13269b9b3ca0.jsonl",
        "cwd": worktree,
        "permission_mode": "default",
        "hook_event_name": "PreToolUse",
        "tool_name": tool_name,
        "tool_input": tool_input,
        "tool_use_id": "toolu_01ABC123"
    }))
    .unwrap()
}

/// A Codex PreToolUse payload as its input schema has it.
fn codex_pre(worktree: &Path, tool_name: &str, tool_input: Value) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "session_id": "019a2b3c-0000-7000-8000-000000000001",
        "turn_id": "turn-1",
        "transcript_path": null,
        "cwd": worktree,
        "hook_event_name": "PreToolUse",
        "model": "gpt-5",
        "permission_mode": "default",
        "tool_name": tool_name,
        "tool_input": tool_input,
        "tool_use_id": "call_1"
    }))
    .unwrap()
}

/// The deny reply: exit 0, nothing on stderr, the contract's JSON alone on
/// stdout (no trailing newline or anything else); returns the reason.
fn assert_denied(out: &Output) -> String {
    assert_eq!(
        out.code, 0,
        "stdout: {}\nstderr: {}",
        out.stdout, out.stderr
    );
    assert_eq!(out.stderr, "");
    let v: Value = serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("stdout is not the contract's JSON ({e}): {}", out.stdout));
    assert_eq!(
        serde_json::to_string(&v).unwrap(),
        out.stdout,
        "extra bytes"
    );
    let specific = v["hookSpecificOutput"].as_object().unwrap();
    assert_eq!(v.as_object().unwrap().len(), 1, "{v}");
    assert_eq!(specific["hookEventName"], "PreToolUse");
    assert_eq!(specific["permissionDecision"], "deny");
    specific["permissionDecisionReason"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Blocked: exit 2, nothing on stdout, the reason on stderr.
fn assert_blocked(out: &Output, reason: &str) {
    assert_eq!(
        out.code, 2,
        "stdout: {}\nstderr: {}",
        out.stdout, out.stderr
    );
    assert_eq!(out.stdout, "");
    assert!(
        out.stderr
            .starts_with("airlock: refused the tool call because")
            && out.stderr.contains(reason),
        "stderr: {}",
        out.stderr
    );
}

#[test]
fn a_benign_command_gets_no_objection_from_either_agent() {
    let env = Env::new();
    let (run, wt) = env.start(BRIEF);
    let before = env.world();
    let command = json!({"command": "cd src && grep -n hello app.sh | wc -l && cargo test"});
    for (agent, input) in [
        ("claude", claude_pre(&wt, "Bash", command.clone())),
        ("codex", codex_pre(&wt, "Bash", command.clone())),
    ] {
        let out = hook(&env, agent, "pre", &run, &input);
        assert_eq!(
            (out.code, out.stdout.as_str()),
            (0, ""),
            "{agent}: {}",
            out.stderr
        );
        assert_eq!(out.stderr, "", "{agent}");
    }
    // An edit inside the brief's touch, and a run named by a prefix.
    let edit = claude_pre(
        &wt,
        "Write",
        json!({"file_path": wt.join("src/app.sh"), "content": "echo hi\n"}),
    );
    let out = hook(&env, "claude", "pre", &run[..run.len() - 2], &edit);
    assert_eq!((out.code, out.stdout.as_str()), (0, ""), "{}", out.stderr);
    // A PreToolUse hook records nothing.
    env.assert_unchanged(&before);
}

#[test]
fn from_the_worktree_the_hook_needs_the_repository_named() {
    let env = Env::new();
    let (run, wt) = env.start(BRIEF);
    // Started where the agent works, in the run's worktree: airlock does not
    // take a worktree for its repository, so the hook fails closed unless
    // it is pointed at the repository with `-C` (as `airlock agent` must).
    let push = claude_pre(&wt, "Bash", json!({"command": "git push"}));
    let repo = env.repo.display().to_string();
    for (args, denied) in [
        (vec!["hook", "claude", "pre", "--run", &run], false),
        (
            vec!["-C", &repo, "hook", "claude", "pre", "--run", &run],
            true,
        ),
    ] {
        let mut cmd = env.cmd(&args);
        cmd.current_dir(&wt);
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let _ = child.stdin.take().unwrap().write_all(&push);
        let out: Output = child.wait_with_output().unwrap().into();
        if denied {
            assert!(assert_denied(&out).contains("git push"));
        } else {
            assert_blocked(
                &out,
                "is a run's worktree, not a repository airlock manages",
            );
        }
    }
}

#[test]
fn git_push_is_denied_in_each_agents_contract() {
    let env = Env::new();
    let (run, wt) = env.start(BRIEF);
    let before = env.world();
    let push = json!({"command": "git push origin HEAD:main"});
    let claude = assert_denied(&hook(
        &env,
        "claude",
        "pre",
        &run,
        &claude_pre(&wt, "Bash", push.clone()),
    ));
    let codex = assert_denied(&hook(
        &env,
        "codex",
        "pre",
        &run,
        &codex_pre(&wt, "Bash", push),
    ));
    for reason in [&claude, &codex] {
        assert!(
            reason.starts_with("airlock: `git push` publishes commits to a remote")
                && reason.contains("airlock propose"),
            "{reason}"
        );
    }
    env.assert_unchanged(&before);
}

#[test]
fn an_edit_outside_the_briefs_touch_is_denied() {
    let env = Env::new();
    let (run, wt) = env.start(BRIEF);
    // Claude's Write of docs/ (the brief touches src/** and tests/**).
    let write = claude_pre(
        &wt,
        "Write",
        json!({"file_path": wt.join("docs/guide.md"), "content": "# Owned\n"}),
    );
    let reason = assert_denied(&hook(&env, "claude", "pre", &run, &write));
    assert!(
        reason.contains("the brief's touch does not include `docs/guide.md`"),
        "{reason}"
    );
    // Codex's apply_patch adding a file at the root.
    let patch = "*** Begin Patch\n*** Add File: ci/deploy.yml\n+steps: [deploy]\n*** End Patch\n";
    let reason = assert_denied(&hook(
        &env,
        "codex",
        "pre",
        &run,
        &codex_pre(&wt, "apply_patch", json!({ "command": patch })),
    ));
    assert!(
        reason.contains("the brief's touch does not include `ci/deploy.yml`"),
        "{reason}"
    );
}

#[test]
fn airlock_approve_inside_sh_c_is_denied() {
    let env = Env::new();
    let (run, wt) = env.start(BRIEF);
    let command = format!("sh -c 'cd /tmp; airlock approve {run}'");
    let input = json!({ "command": command });
    for (agent, payload) in [
        ("claude", claude_pre(&wt, "Bash", input.clone())),
        ("codex", codex_pre(&wt, "Bash", input.clone())),
    ] {
        let reason = assert_denied(&hook(&env, agent, "pre", &run, &payload));
        assert!(
            reason.contains("approve") && reason.contains("airlock submit"),
            "{agent}: {reason}"
        );
    }
}

#[test]
fn malformed_input_fails_closed_and_writes_nothing() {
    let env = Env::new();
    let (run, wt) = env.start(BRIEF);
    let before = env.world();
    let missing_command = claude_pre(&wt, "Bash", json!({"description": "no command"}));
    let wrong_event = {
        let mut v: Value =
            serde_json::from_slice(&codex_pre(&wt, "Bash", json!({"command": "ls"}))).unwrap();
        v["hook_event_name"] = json!("PostToolUse");
        serde_json::to_vec(&v).unwrap()
    };
    let cases: [(&str, &str, &[u8], &str); 6] = [
        ("claude", "pre", b"{not json", "the hook input is not JSON"),
        ("codex", "pre", b"", "the hook input is empty"),
        ("claude", "pre", &missing_command, "`tool_input.command`"),
        ("codex", "pre", &wrong_event, "for the `PostToolUse` event"),
        ("claude", "post", b"[1, 2]", "JSON but not an object"),
        (
            "codex",
            "post",
            b"{\"session_id\": 1}",
            "is not as documented",
        ),
    ];
    for (agent, event, input, reason) in cases {
        let out = hook(&env, agent, event, &run, input);
        assert_blocked(&out, reason);
    }
    // More than 8 MiB: refused by its size, not read whole.
    let huge = vec![b' '; 8 * 1024 * 1024 + 10];
    assert_blocked(
        &hook(&env, "claude", "post", &run, &huge),
        "more than the 8388608 airlock reads",
    );
    env.assert_unchanged(&before);
}

#[test]
fn an_unknown_run_fails_closed_and_writes_nothing() {
    let env = Env::new();
    let (_run, wt) = env.start(BRIEF);
    let before = env.world();
    let benign = claude_pre(&wt, "Bash", json!({"command": "ls"}));
    let out = hook(&env, "claude", "pre", "no-such-run", &benign);
    assert_blocked(&out, "no-such-run");
    assert!(out.stderr.contains("airlock list"), "{}", out.stderr);
    let post = json!({
        "session_id": "abc123", "transcript_path": "/t.jsonl", "cwd": wt,
        "hook_event_name": "PostToolUse", "tool_name": "Bash",
        "tool_input": {"command": "ls"}, "tool_response": {"stdout": ""},
        "tool_use_id": "toolu_1"
    });
    let out = hook(
        &env,
        "claude",
        "post",
        "no-such-run",
        &serde_json::to_vec(&post).unwrap(),
    );
    assert_blocked(&out, "no-such-run");
    // `--json` changes nothing: the reply is the contract.
    let mut cmd = env.cmd(&["--json", "hook", "codex", "pre", "--run", "no-such-run"]);
    let out: Output = cmd.stdin(Stdio::null()).output().unwrap().into();
    assert_eq!((out.code, out.stdout.as_str()), (2, ""), "{}", out.stderr);
    // Outside any repository.
    let elsewhere = tempfile::tempdir().unwrap();
    let mut cmd = env.cmd(&["hook", "claude", "pre", "--run", "x"]);
    cmd.current_dir(elsewhere.path());
    let out: Output = cmd.stdin(Stdio::null()).output().unwrap().into();
    assert_eq!((out.code, out.stdout.as_str()), (2, ""), "{}", out.stderr);
    env.assert_unchanged(&before);
}

#[test]
fn post_appends_one_ledger_event_per_tool_call() {
    let env = Env::new();
    let (run, wt) = env.start(BRIEF);
    let before = env.events(Some(&run)).len();
    let claude = json!({
        "session_id": "abc123",
        "transcript_path": "/t.jsonl",
        "cwd": wt,
        "permission_mode": "default",
        "hook_event_name": "PostToolUse",
        "tool_name": "Write",
        "tool_input": {"file_path": wt.join("src/a.sh"), "content": "TOKEN=s3cr3t-in-the-file"},
        "tool_response": {"filePath": wt.join("src/a.sh"), "success": true},
        "tool_use_id": "toolu_01ABC123"
    });
    let out = hook(
        &env,
        "claude",
        "post",
        &run,
        &serde_json::to_vec(&claude).unwrap(),
    );
    assert_eq!(
        (out.code, out.stdout.as_str(), out.stderr.as_str()),
        (0, "", "")
    );
    let events = env.events(Some(&run));
    assert_eq!(events.len(), before + 1, "{events:?}");
    let mut last = events.last().unwrap().clone();
    assert_eq!(last["kind"], "tool-call", "{last}");
    assert_eq!(last["run"], run.as_str(), "{last}");
    // Who acted (issue 20), beside what the hook recorded.
    let who = last["data"].as_object_mut().unwrap().remove("who");
    assert!(who.is_some_and(|w| w["principal"].is_string()), "{last}");
    // The tool name, a summary and the payload's digest; not the payload
    // (the file's content, the tool's response).
    let payload = serde_json::to_vec(&claude).unwrap();
    assert_eq!(
        last["data"],
        json!({
            "agent": "claude", "session_id": "abc123", "turn_id": null, "tool_use_id": "toolu_01ABC123",
            "tool_name": "Write", "cwd": wt, "summary": wt.join("src/a.sh"), "truncated": false,
            "payload_sha256": sha256_hex(&payload), "payload_bytes": payload.len()
        }),
        "{last}"
    );

    let codex = json!({
        "session_id": "s", "turn_id": "turn-2", "transcript_path": "/t.jsonl", "cwd": wt,
        "hook_event_name": "PostToolUse", "model": "gpt-5", "permission_mode": "default",
        "tool_name": "Bash", "tool_input": {"command": "cargo test"},
        "tool_response": "test result: ok", "tool_use_id": "call_9"
    });
    let out = hook(
        &env,
        "codex",
        "post",
        &run,
        &serde_json::to_vec(&codex).unwrap(),
    );
    assert_eq!(
        (out.code, out.stdout.as_str(), out.stderr.as_str()),
        (0, "", "")
    );
    let events = env.events(Some(&run));
    assert_eq!(events.len(), before + 2, "{events:?}");
    let last = events.last().unwrap();
    assert_eq!(last["kind"], "tool-call", "{last}");
    assert_eq!(last["data"]["agent"], "codex", "{last}");
    assert_eq!(last["data"]["tool_name"], "Bash", "{last}");
    assert_eq!(last["data"]["turn_id"], "turn-2", "{last}");
    assert_eq!(last["data"]["summary"], "cargo test", "{last}");
    env.assert_ledger_ok();
    let log = env.json(&["log"], 0).to_string();
    assert!(
        !log.contains("s3cr3t-in-the-file"),
        "the payload's content is in the ledger"
    );
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// A Claude Code PostToolUse payload of a Bash call made in `cwd`.
fn claude_post(cwd: &Path) -> Value {
    json!({
        "session_id": "abc123", "transcript_path": "/t.jsonl", "cwd": cwd,
        "permission_mode": "default", "hook_event_name": "PostToolUse", "tool_name": "Bash",
        "tool_input": {"command": "ls"}, "tool_response": {"stdout": "", "stderr": ""},
        "tool_use_id": "toolu_1"
    })
}

/// A Codex PostToolUse payload of a Bash call made in `cwd`.
fn codex_post(cwd: &Path) -> Value {
    json!({
        "session_id": "s", "turn_id": "turn-2", "transcript_path": null, "cwd": cwd,
        "hook_event_name": "PostToolUse", "model": "gpt-5", "permission_mode": "default",
        "tool_name": "Bash", "tool_input": {"command": "ls"}, "tool_response": "",
        "tool_use_id": "call_9"
    })
}

#[test]
fn bad_post_payloads_are_refused_and_record_nothing() {
    let env = Env::new();
    let (run, wt) = env.start(BRIEF);
    let (_other, other_wt) = env.start(BRIEF);
    let before = env.world();
    let with = |mut v: Value, key: &str, value: Value| {
        v[key] = value;
        serde_json::to_vec(&v).unwrap()
    };
    let without = |mut v: Value, key: &str| {
        v.as_object_mut().unwrap().remove(key);
        serde_json::to_vec(&v).unwrap()
    };
    let cases: Vec<(&str, Vec<u8>, String)> = vec![
        ("claude", b"{\"tool_name\": ".to_vec(), "the hook input is not JSON".into()),
        ("codex", b"not json".to_vec(), "the hook input is not JSON".into()),
        (
            "claude",
            without(claude_post(&wt), "tool_response"),
            "the hook input's `tool_response` is not as documented: missing field `tool_response`".into(),
        ),
        (
            "codex",
            without(codex_post(&wt), "turn_id"),
            "the hook input's `turn_id` is not as documented: missing field `turn_id`".into(),
        ),
        (
            "claude",
            with(claude_post(&wt), "debug_payload", json!("x")),
            "the hook input has a field `debug_payload` that Claude Code's documented hook input does not have".into(),
        ),
        (
            "codex",
            with(codex_post(&wt), "prompt_id", json!("a")),
            "the hook input has a field `prompt_id` that Codex's documented hook input does not have".into(),
        ),
        (
            "claude",
            with(claude_post(&wt), "hook_event_name", json!("PreToolUse")),
            "the hook input is for the `PreToolUse` event, but this hook answers `PostToolUse`".into(),
        ),
        (
            "codex",
            with(codex_post(&wt), "hook_event_name", json!("Stop")),
            "the hook input is for the `Stop` event, but this hook answers `PostToolUse`".into(),
        ),
        // Another run's call, and a call made outside any run.
        (
            "claude",
            serde_json::to_vec(&claude_post(&other_wt)).unwrap(),
            format!(
                "the tool call was made in {}, outside this run's worktree {}: it is another run's call",
                other_wt.display(),
                wt.display()
            ),
        ),
        (
            "codex",
            serde_json::to_vec(&codex_post(&env.repo)).unwrap(),
            format!("the tool call was made in {}, outside this run's worktree", env.repo.display()),
        ),
        (
            "claude",
            with(claude_post(&wt), "cwd", json!(format!("{}/../..", wt.display()))),
            "outside this run's worktree".into(),
        ),
    ];
    for (agent, input, reason) in &cases {
        let out = hook(&env, agent, "post", &run, input);
        assert_blocked(&out, reason);
    }
    // Oversized: refused by its size.
    let mut huge = serde_json::to_vec(&claude_post(&wt)).unwrap();
    huge.resize(8 * 1024 * 1024 + 1, b' ');
    assert_blocked(
        &hook(&env, "codex", "post", &run, &huge),
        "the hook input is 8388609 bytes, more than the 8388608 airlock reads",
    );
    env.assert_unchanged(&before);
    // The same payloads made right are recorded.
    for (agent, input) in [
        ("claude", serde_json::to_vec(&claude_post(&wt)).unwrap()),
        (
            "codex",
            serde_json::to_vec(&codex_post(&wt.join("src"))).unwrap(),
        ),
    ] {
        let out = hook(&env, agent, "post", &run, &input);
        assert_eq!((out.code, out.stderr.as_str()), (0, ""), "{agent}");
    }
    assert_eq!(env.world().events, before.events + 2);
}

#[test]
fn bad_pre_payloads_are_refused_per_each_agents_contract() {
    let env = Env::new();
    let (run, wt) = env.start(BRIEF);
    let (_other, other_wt) = env.start(BRIEF);
    let before = env.world();
    let ls = json!({"command": "ls"});
    let mut unknown: Value = serde_json::from_slice(&claude_pre(&wt, "Bash", ls.clone())).unwrap();
    unknown["bypass"] = json!(true);
    let cases: Vec<(&str, Vec<u8>, String)> = vec![
        (
            "claude",
            serde_json::to_vec(&unknown).unwrap(),
            "the hook input has a field `bypass` that Claude Code's documented hook input does not have".into(),
        ),
        // A Claude payload at the Codex hook: Claude sends no `turn_id`.
        (
            "codex",
            claude_pre(&wt, "Bash", ls.clone()),
            "the hook input's `turn_id` is not as documented: missing field `turn_id`".into(),
        ),
        (
            "claude",
            claude_pre(&other_wt, "Bash", json!({"command": "git push"})),
            format!("the tool call was made in {}, outside this run's worktree", other_wt.display()),
        ),
        (
            "codex",
            codex_pre(&other_wt, "Bash", ls.clone()),
            format!("the tool call was made in {}, outside this run's worktree", other_wt.display()),
        ),
    ];
    for (agent, input, reason) in &cases {
        // Exit 2 and the reason on stderr: Claude blocks on it, and Codex
        // blocks on exit 2 with a reason; nothing on stdout, so Codex never
        // sees an output field it does not know.
        assert_blocked(&hook(&env, agent, "pre", &run, input), reason);
    }
    env.assert_unchanged(&before);
}

#[test]
fn the_pre_hook_answers_without_opening_the_ledger() {
    let env = Env::new();
    let (run, wt) = env.start(BRIEF);
    let before = env.world();
    // The ledger moved away: anything that opens the store would make a new,
    // empty one (and refuse it against the head record).
    let state = env.state_dir();
    let aside = env.tmp.path().join("ledger-aside");
    std::fs::create_dir_all(&aside).unwrap();
    let moved: Vec<_> = std::fs::read_dir(&state)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("ledger.db"))
        })
        .collect();
    assert!(!moved.is_empty());
    for path in &moved {
        std::fs::rename(path, aside.join(path.file_name().unwrap())).unwrap();
    }
    let push = claude_pre(&wt, "Bash", json!({"command": "git push"}));
    let reason = assert_denied(&hook(&env, "claude", "pre", &run[..run.len() - 3], &push));
    assert!(reason.contains("git push"), "{reason}");
    let ls = codex_pre(&wt, "Bash", json!({"command": "ls"}));
    let out = hook(&env, "codex", "pre", &run, &ls);
    assert_eq!(
        (out.code, out.stdout.as_str(), out.stderr.as_str()),
        (0, "", "")
    );
    // Another run's call is still refused.
    let elsewhere = claude_pre(&env.repo, "Bash", json!({"command": "ls"}));
    assert_blocked(
        &hook(&env, "claude", "pre", &run, &elsewhere),
        "outside this run's worktree",
    );
    assert!(
        !state.join("ledger.db").exists(),
        "the pre hook opened the store"
    );
    for path in &moved {
        std::fs::rename(aside.join(path.file_name().unwrap()), path).unwrap();
    }
    env.assert_unchanged(&before);
}
