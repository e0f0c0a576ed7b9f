//! The agents' hook contracts: payloads in the documented shapes in, the
//! exact replies out; malformed input fails closed.

use airlock_hooks::{HookInputError, HookReply, MAX_INPUT_BYTES, Policy, claude, codex};
use std::path::Path;

use serde_json::{Value, json};

const WORKTREE: &str = "/srv/repo/.airlock/worktrees/run-1";

fn policy() -> Policy {
    Policy::new(WORKTREE, &["src/**", "README.md"]).unwrap()
}

/// A Claude Code PreToolUse payload as the hooks reference shows it.
fn claude_pre(tool_name: &str, tool_input: Value) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "session_id": "abc123",
        "transcript_path": "/home/user/.claude/projects/run-1/00893aaf-19fa-41d2-8238-13269b9b3ca0.jsonl",
        "cwd": WORKTREE,
        "permission_mode": "default",
        "hook_event_name": "PreToolUse",
        "tool_name": tool_name,
        "tool_input": tool_input,
        "tool_use_id": "toolu_01ABC123"
    }))
    .unwrap()
}

/// A Codex PreToolUse payload as its input schema has it.
fn codex_pre(tool_name: &str, tool_input: Value) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "session_id": "019a2b3c-0000-7000-8000-000000000001",
        "turn_id": "turn-1",
        "transcript_path": null,
        "cwd": WORKTREE,
        "hook_event_name": "PreToolUse",
        "model": "gpt-5",
        "permission_mode": "default",
        "tool_name": tool_name,
        "tool_input": tool_input,
        "tool_use_id": "call_1"
    }))
    .unwrap()
}

fn stdout_json(reply: &HookReply) -> Value {
    assert_eq!(reply.exit_code, 0, "{reply:?}");
    assert_eq!(reply.stderr, "");
    serde_json::from_str(&reply.stdout).unwrap()
}

const PUSH_DENIAL: &str = "airlock: `git push` publishes commits to a remote. Propose it as an action for review \
     (`airlock propose RUN ACTION.toml`): it runs at promotion, after approval";

#[test]
fn claude_bash_push_is_denied_in_the_documented_shape() {
    let reply = claude::pre_tool_use(
        &claude_pre(
            "Bash",
            json!({"command": "git push", "description": "Push", "timeout": 120000}),
        ),
        &policy(),
    );
    assert_eq!(
        stdout_json(&reply),
        json!({"hookSpecificOutput": {
            "hookEventName": "PreToolUse",
            "permissionDecision": "deny",
            "permissionDecisionReason": PUSH_DENIAL
        }})
    );
}

#[test]
fn claude_asks_when_the_command_cannot_be_understood() {
    let reply = claude::pre_tool_use(
        &claude_pre("Bash", json!({"command": "eval \"$X\""})),
        &policy(),
    );
    assert_eq!(
        stdout_json(&reply),
        json!({"hookSpecificOutput": {
            "hookEventName": "PreToolUse",
            "permissionDecision": "ask",
            "permissionDecisionReason": "airlock could not check this command: `eval` runs a string as a command"
        }})
    );
}

#[test]
fn claude_allowed_calls_get_no_output_so_the_users_own_rules_apply() {
    for (tool, input) in [
        ("Bash", json!({"command": "cargo test"})),
        (
            "Edit",
            json!({"file_path": format!("{WORKTREE}/src/lib.rs"), "old_string": "a", "new_string": "b", "replace_all": false}),
        ),
        (
            "Write",
            json!({"file_path": format!("{WORKTREE}/README.md"), "content": "x"}),
        ),
        ("Read", json!({"file_path": "/etc/passwd"})),
        ("mcp__github__create_issue", json!({"title": "x"})),
    ] {
        let reply = claude::pre_tool_use(&claude_pre(tool, input), &policy());
        assert_eq!(reply, HookReply::silent(), "{tool}");
    }
}

#[test]
fn claude_edits_outside_touch_or_the_worktree_are_denied() {
    let cases = [
        (
            "Write",
            json!({"file_path": format!("{WORKTREE}/Cargo.toml"), "content": "x"}),
            "airlock: the brief's touch does not include `Cargo.toml`. The brief lets this run touch only `src/**`, `README.md`; if the change needs this path, say so in your summary so the reviewer can widen the brief",
        ),
        (
            "Edit",
            json!({"file_path": "/home/user/.bashrc", "old_string": "a", "new_string": "b"}),
            "airlock: the edit writes `/home/user/.bashrc`, outside the run's worktree. Edit files inside the worktree /srv/repo/.airlock/worktrees/run-1 \
             that the brief's touch includes",
        ),
        (
            "MultiEdit",
            json!({"file_path": format!("{WORKTREE}/../run-2/src/lib.rs"), "edits": []}),
            "airlock: the edit writes `/srv/repo/.airlock/worktrees/run-2/src/lib.rs`, outside the run's worktree. Edit files inside the worktree /srv/repo/.airlock/worktrees/run-1 \
             that the brief's touch includes",
        ),
        (
            "NotebookEdit",
            json!({"notebook_path": "/tmp/n.ipynb", "new_source": "x"}),
            "airlock: the edit writes `/tmp/n.ipynb`, outside the run's worktree. Edit files inside the worktree /srv/repo/.airlock/worktrees/run-1 \
             that the brief's touch includes",
        ),
    ];
    for (tool, input, reason) in cases {
        let reply = claude::pre_tool_use(&claude_pre(tool, input), &policy());
        assert_eq!(
            stdout_json(&reply),
            json!({"hookSpecificOutput": {"hookEventName": "PreToolUse", "permissionDecision": "deny", "permissionDecisionReason": reason}}),
            "{tool}"
        );
    }
}

#[test]
fn claude_optional_fields_of_the_reference_are_accepted() {
    let mut payload: Value =
        serde_json::from_slice(&claude_pre("Bash", json!({"command": "ls"}))).unwrap();
    payload["agent_id"] = json!("agent-7");
    payload["agent_type"] = json!("general-purpose");
    payload["prompt_id"] = json!("p-1");
    payload.as_object_mut().unwrap().remove("permission_mode");
    let parsed = claude::parse_pre_tool_use(&serde_json::to_vec(&payload).unwrap()).unwrap();
    assert_eq!(parsed.optional.agent_id.as_deref(), Some("agent-7"));
    assert_eq!(parsed.permission_mode, None);
    assert_eq!(parsed.tool_use_id, "toolu_01ABC123");
}

#[test]
fn a_field_the_agents_documentation_lacks_is_refused() {
    let mut claude_payload: Value =
        serde_json::from_slice(&claude_pre("Bash", json!({"command": "ls"}))).unwrap();
    claude_payload["skip_hooks"] = json!(true);
    let input = serde_json::to_vec(&claude_payload).unwrap();
    assert_eq!(
        claude::parse_pre_tool_use(&input).unwrap_err(),
        HookInputError::UnknownField {
            agent: "Claude Code",
            field: "skip_hooks".into()
        }
    );
    assert_refused(
        &claude::pre_tool_use(&input, &policy()),
        "airlock: refused the tool call because the hook input has a field `skip_hooks` that Claude Code's \
         documented hook input does not have. airlock refuses fields it cannot judge",
    );
    // Claude's `prompt_id` is not Codex's.
    let mut codex_payload: Value =
        serde_json::from_slice(&codex_pre("Bash", json!({"command": "ls"}))).unwrap();
    codex_payload["prompt_id"] = json!("p-7");
    let input = serde_json::to_vec(&codex_payload).unwrap();
    assert_refused(
        &codex::pre_tool_use(&input, &policy()),
        "airlock: refused the tool call because the hook input has a field `prompt_id` that Codex's documented hook input does not have",
    );
    // Inside a subagent Codex adds `agent_id` and `agent_type`
    // (codex-rs/hooks/src/events/pre_tool_use.rs, SubagentCommandInputFields).
    let mut subagent: Value =
        serde_json::from_slice(&codex_pre("Bash", json!({"command": "ls"}))).unwrap();
    subagent["agent_id"] = json!("agent-1");
    subagent["agent_type"] = json!("worker");
    assert_eq!(
        codex::pre_tool_use(&serde_json::to_vec(&subagent).unwrap(), &policy()),
        HookReply::silent()
    );
    // PostToolUse too, for both.
    let mut post: Value = serde_json::from_slice(&claude_post()).unwrap();
    post["extra"] = json!(1);
    assert_eq!(
        claude::post_tool_use(&serde_json::to_vec(&post).unwrap()).unwrap_err(),
        HookInputError::UnknownField {
            agent: "Claude Code",
            field: "extra".into()
        }
    );
    let mut post: Value = serde_json::from_slice(&codex_post()).unwrap();
    post["extra"] = json!(1);
    assert_eq!(
        codex::post_tool_use(&serde_json::to_vec(&post).unwrap()).unwrap_err(),
        HookInputError::UnknownField {
            agent: "Codex",
            field: "extra".into()
        }
    );
}

#[test]
fn a_call_made_outside_the_runs_worktree_is_refused_as_another_runs() {
    for cwd in [
        "/srv/repo/.airlock/worktrees/run-2",
        "/srv/repo/.airlock/worktrees/run-1/../run-2",
        "/srv/repo/.airlock/worktrees/run-10",
        "/",
    ] {
        let mut payload: Value =
            serde_json::from_slice(&claude_pre("Bash", json!({"command": "ls"}))).unwrap();
        payload["cwd"] = json!(cwd);
        assert_refused(
            &claude::pre_tool_use(&serde_json::to_vec(&payload).unwrap(), &policy()),
            &format!(
                "airlock: refused the tool call because the tool call was made in {cwd}, outside this run's \
                 worktree {WORKTREE}: it is another run's call, or one made outside the run. each airlock hook \
                 answers for one run"
            ),
        );
        let mut payload: Value =
            serde_json::from_slice(&codex_pre("Bash", json!({"command": "ls"}))).unwrap();
        payload["cwd"] = json!(cwd);
        assert_refused(
            &codex::pre_tool_use(&serde_json::to_vec(&payload).unwrap(), &policy()),
            &format!(
                "airlock: refused the tool call because the tool call was made in {cwd}, outside"
            ),
        );
    }
    // A relative cwd cannot be placed at all.
    let mut payload: Value =
        serde_json::from_slice(&claude_pre("Bash", json!({"command": "ls"}))).unwrap();
    payload["cwd"] = json!("src");
    assert_refused(
        &claude::pre_tool_use(&serde_json::to_vec(&payload).unwrap(), &policy()),
        "airlock: refused the tool call because the hook input's `cwd` is not as documented: `src` is not an absolute path",
    );
    // A subdirectory of the worktree is the run's.
    let mut payload: Value =
        serde_json::from_slice(&claude_pre("Bash", json!({"command": "ls"}))).unwrap();
    payload["cwd"] = json!(format!("{WORKTREE}/src"));
    let reply = claude::pre_tool_use(&serde_json::to_vec(&payload).unwrap(), &policy());
    assert_eq!(reply, HookReply::silent());
    // The record says where it was made; the caller checks it.
    let record = claude::post_tool_use(&claude_post()).unwrap();
    assert!(record.require_worktree(Path::new(WORKTREE)).is_ok());
    assert_eq!(
        record.require_worktree(Path::new("/srv/repo/.airlock/worktrees/run-2")),
        Err(HookInputError::OtherWorktree {
            cwd: WORKTREE.into(),
            worktree: "/srv/repo/.airlock/worktrees/run-2".into()
        })
    );
}

/// A Claude Code PostToolUse payload of a Write.
fn claude_post() -> Vec<u8> {
    serde_json::to_vec(&json!({
        "session_id": "abc123",
        "transcript_path": "/t.jsonl",
        "cwd": WORKTREE,
        "permission_mode": "default",
        "hook_event_name": "PostToolUse",
        "tool_name": "Write",
        "tool_input": {"file_path": format!("{WORKTREE}/src/a.rs"), "content": "secret = hunter2"},
        "tool_response": {"filePath": format!("{WORKTREE}/src/a.rs"), "success": true},
        "tool_use_id": "toolu_01ABC123"
    }))
    .unwrap()
}

/// A Codex PostToolUse payload of a Bash call.
fn codex_post() -> Vec<u8> {
    serde_json::to_vec(&json!({
        "session_id": "s", "turn_id": "turn-2", "transcript_path": "/t.jsonl", "cwd": WORKTREE,
        "hook_event_name": "PostToolUse", "model": "gpt-5", "permission_mode": "default",
        "tool_name": "Bash", "tool_input": {"command": "cargo test"},
        "tool_response": "test result: ok", "tool_use_id": "call_9"
    }))
    .unwrap()
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

#[test]
fn claude_post_tool_use_becomes_a_record_of_a_summary_and_a_digest() {
    let payload = claude_post();
    let record = claude::post_tool_use(&payload).unwrap();
    assert_eq!(
        serde_json::to_value(&record).unwrap(),
        json!({
            "agent": "claude", "session_id": "abc123", "turn_id": null, "tool_use_id": "toolu_01ABC123",
            "tool_name": "Write", "cwd": WORKTREE,
            "summary": format!("{WORKTREE}/src/a.rs"), "truncated": false,
            "payload_sha256": sha256_hex(&payload), "payload_bytes": payload.len()
        })
    );
    // The file's content is not kept.
    assert!(!serde_json::to_string(&record).unwrap().contains("hunter2"));
}

#[test]
fn codex_post_tool_use_becomes_a_record_of_a_summary_and_a_digest() {
    let payload = codex_post();
    let record = codex::post_tool_use(&payload).unwrap();
    assert_eq!(record.agent, "codex");
    assert_eq!(record.turn_id.as_deref(), Some("turn-2"));
    assert_eq!(record.summary, "cargo test");
    assert_eq!(record.payload_sha256, sha256_hex(&payload));
    // apply_patch: the paths it touches.
    let mut patch: Value = serde_json::from_slice(&payload).unwrap();
    patch["tool_name"] = json!("apply_patch");
    patch["tool_input"] = json!({"command": "*** Begin Patch\n*** Add File: src/x.rs\n+fn x() {}\n*** Update File: README.md\n@@\n-a\n+b\n*** End Patch\n"});
    let record = codex::post_tool_use(&serde_json::to_vec(&patch).unwrap()).unwrap();
    assert_eq!(record.summary, "patch: src/x.rs, README.md");
}

#[test]
fn a_records_agent_chosen_strings_are_bounded() {
    let mut payload: Value = serde_json::from_slice(&codex_post()).unwrap();
    let long = "é".repeat(100_000);
    payload["tool_input"] = json!({ "command": format!("echo {long}") });
    payload["session_id"] = json!(long);
    let bytes = serde_json::to_vec(&payload).unwrap();
    let record = codex::post_tool_use(&bytes).unwrap();
    assert_eq!(
        record.summary.chars().count(),
        airlock_hooks::MAX_SUMMARY_CHARS
    );
    assert!(record.summary.starts_with("echo éé"));
    assert_eq!(
        record.session_id.chars().count(),
        airlock_hooks::MAX_ID_CHARS
    );
    assert!(record.truncated);
    assert_eq!(record.payload_bytes, bytes.len());
    assert_eq!(record.payload_sha256, sha256_hex(&bytes));
}

#[test]
fn codex_bash_push_is_denied_with_only_the_fields_codex_honours() {
    let reply = codex::pre_tool_use(
        &codex_pre("Bash", json!({"command": "git push"})),
        &policy(),
    );
    assert_eq!(
        stdout_json(&reply),
        json!({"hookSpecificOutput": {
            "hookEventName": "PreToolUse",
            "permissionDecision": "deny",
            "permissionDecisionReason": PUSH_DENIAL
        }})
    );
}

#[test]
fn codex_cannot_ask_so_what_is_not_understood_is_denied() {
    let reply = codex::pre_tool_use(
        &codex_pre(
            "Bash",
            json!({"command": "echo Z2l0IHB1c2g= | base64 -d | sh"}),
        ),
        &policy(),
    );
    assert_eq!(
        stdout_json(&reply),
        json!({"hookSpecificOutput": {
            "hookEventName": "PreToolUse",
            "permissionDecision": "deny",
            "permissionDecisionReason": "airlock: `sh` runs commands read from a pipe, which the hook cannot see. \
                Write it as plain commands airlock can read (no eval, computed command names or scripts fed to a shell), \
                or run the steps one at a time"
        }})
    );
}

#[test]
fn codex_allowed_calls_get_no_output() {
    for (tool, input) in [
        ("Bash", json!({"command": "cargo test"})),
        (
            "apply_patch",
            json!({"command": "*** Begin Patch\n*** Update File: src/lib.rs\n@@\n-a\n+b\n*** End Patch\n"}),
        ),
        ("mcp__github__create_issue", json!({"title": "x"})),
    ] {
        let reply = codex::pre_tool_use(&codex_pre(tool, input), &policy());
        assert_eq!(reply, HookReply::silent(), "{tool}");
    }
}

#[test]
fn codex_patches_outside_touch_or_unreadable_are_denied() {
    let cases = [
        (
            "*** Begin Patch\n*** Add File: src/ok.rs\n+x\n*** Add File: Cargo.toml\n+y\n*** End Patch\n",
            "airlock: the brief's touch does not include `Cargo.toml`. The brief lets this run touch only `src/**`, `README.md`; if the change needs this path, say so in your summary so the reviewer can widen the brief",
        ),
        (
            "*** Begin Patch\n*** Update File: src/a.rs\n*** Move to: ../../../../../etc/cron.d/x\n*** End Patch\n",
            "airlock: the edit writes `/etc/cron.d/x`, outside the run's worktree. Edit files inside the worktree /srv/repo/.airlock/worktrees/run-1 \
             that the brief's touch includes",
        ),
        (
            "rm -rf src",
            "airlock: the apply_patch input is not a patch airlock can read (`*** Begin Patch` ... `*** End Patch` naming at least one file). Send the edit as one patch in Codex's apply_patch format",
        ),
    ];
    for (patch, reason) in cases {
        let reply = codex::pre_tool_use(
            &codex_pre("apply_patch", json!({"command": patch})),
            &policy(),
        );
        assert_eq!(
            stdout_json(&reply),
            json!({"hookSpecificOutput": {"hookEventName": "PreToolUse", "permissionDecision": "deny", "permissionDecisionReason": reason}}),
            "{patch}"
        );
    }
}

/// Refused input: exit 2 with the reason on stderr (both agents block on
/// it) and nothing on stdout.
fn assert_refused(reply: &HookReply, message: &str) {
    assert_eq!(reply.exit_code, 2, "{reply:?}");
    assert_eq!(reply.stdout, "");
    assert!(reply.stderr.starts_with(message), "{}", reply.stderr);
    assert!(reply.stderr.ends_with('\n'));
}

#[test]
fn malformed_input_fails_closed_for_both_agents() {
    let oversized = vec![b' '; MAX_INPUT_BYTES + 1];
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (
            b"not json".to_vec(),
            "airlock: refused the tool call because the hook input is not JSON (expected ident at line 1 column 2)",
        ),
        (
            b"".to_vec(),
            "airlock: refused the tool call because the hook input is empty",
        ),
        (
            b"[1, 2]".to_vec(),
            "airlock: refused the tool call because the hook input is JSON but not an object",
        ),
        (
            b"{\"session_id\": ".to_vec(),
            "airlock: refused the tool call because the hook input is not JSON (EOF while parsing a value",
        ),
        (
            oversized,
            "airlock: refused the tool call because the hook input is 8388609 bytes, more than the 8388608 airlock reads",
        ),
    ];
    for (input, message) in cases {
        assert_refused(&claude::pre_tool_use(&input, &policy()), message);
        assert_refused(&codex::pre_tool_use(&input, &policy()), message);
    }
}

#[test]
fn a_missing_field_is_named() {
    let mut payload: Value =
        serde_json::from_slice(&claude_pre("Bash", json!({"command": "ls"}))).unwrap();
    payload.as_object_mut().unwrap().remove("cwd");
    let input = serde_json::to_vec(&payload).unwrap();
    assert_eq!(
        claude::parse_pre_tool_use(&input).unwrap_err(),
        HookInputError::Invalid {
            path: "cwd".into(),
            problem: "missing field `cwd`".into()
        }
    );
    assert_refused(
        &claude::pre_tool_use(&input, &policy()),
        "airlock: refused the tool call because the hook input's `cwd` is not as documented: missing field `cwd`. airlock reads",
    );

    let mut payload: Value =
        serde_json::from_slice(&codex_pre("Bash", json!({"command": "ls"}))).unwrap();
    payload.as_object_mut().unwrap().remove("turn_id");
    let err = codex::parse_pre_tool_use(&serde_json::to_vec(&payload).unwrap()).unwrap_err();
    assert_eq!(
        err,
        HookInputError::Invalid {
            path: "turn_id".into(),
            problem: "missing field `turn_id`".into()
        }
    );

    // `string | null`, but present.
    let mut payload: Value =
        serde_json::from_slice(&codex_pre("Bash", json!({"command": "ls"}))).unwrap();
    payload.as_object_mut().unwrap().remove("transcript_path");
    let err = codex::parse_pre_tool_use(&serde_json::to_vec(&payload).unwrap()).unwrap_err();
    assert!(
        matches!(err, HookInputError::Invalid { ref path, .. } if path == "transcript_path"),
        "{err:?}"
    );
}

#[test]
fn a_wrong_type_is_named_with_its_path() {
    let reply = claude::pre_tool_use(&claude_pre("Bash", json!({"command": 5})), &policy());
    assert_refused(
        &reply,
        "airlock: refused the tool call because the hook input's `tool_input.command` is not as documented: invalid type: integer `5`, expected a string",
    );
    let reply = codex::pre_tool_use(&codex_pre("Bash", json!({"cmd": "git push"})), &policy());
    assert_refused(
        &reply,
        "airlock: refused the tool call because the hook input's `tool_input.command` is not as documented: missing field `command`",
    );
    let reply = claude::pre_tool_use(&claude_pre("Bash", json!("git push")), &policy());
    assert_refused(
        &reply,
        "airlock: refused the tool call because the hook input's `tool_input` is not as documented: invalid type: string",
    );
    let reply = claude::pre_tool_use(
        &claude_pre("Write", json!({"file_path": null, "content": "x"})),
        &policy(),
    );
    assert_refused(
        &reply,
        "airlock: refused the tool call because the hook input's `tool_input.file_path` is not as documented: invalid type: null",
    );
}

#[test]
fn a_payload_for_another_event_is_refused() {
    let mut payload: Value =
        serde_json::from_slice(&codex_pre("Bash", json!({"command": "git push"}))).unwrap();
    payload["hook_event_name"] = json!("PostToolUse");
    let input = serde_json::to_vec(&payload).unwrap();
    assert_eq!(
        codex::parse_pre_tool_use(&input).unwrap_err(),
        HookInputError::WrongEvent {
            expected: "PreToolUse",
            found: "PostToolUse".into()
        }
    );
    assert_refused(
        &codex::pre_tool_use(&input, &policy()),
        "airlock: refused the tool call because the hook input is for the `PostToolUse` event, but this hook answers `PreToolUse`. check the agent's hook configuration",
    );
    let err = claude::post_tool_use(&claude_pre("Bash", json!({"command": "ls"}))).unwrap_err();
    assert!(
        matches!(err, HookInputError::Invalid { ref path, .. } if path == "tool_response"),
        "{err:?}"
    );
}
