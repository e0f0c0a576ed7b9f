//! Claude Code's hook contract.
//!
//! Source: Claude Code, "Hooks reference", https://code.claude.com/docs/en/hooks
//! (sections "Hook input", "PreToolUse", "PostToolUse", "Exit code output",
//! "JSON output"). Field by field, see the crate README.

use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::contract::{self, CallIds, HookInputError, HookReply, ToolCallRecord};
use crate::policy::{Decision, Policy};

const AGENT: &str = "Claude Code";

/// The PreToolUse input (stdin). A field the reference does not list is
/// refused ([`HookInputError::UnknownField`]).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PreToolUseInput {
    pub session_id: String,
    pub transcript_path: String,
    pub cwd: String,
    /// Not sent with every event, so optional.
    #[serde(default)]
    pub permission_mode: Option<String>,
    pub hook_event_name: String,
    pub tool_name: String,
    pub tool_input: Map<String, Value>,
    pub tool_use_id: String,
    #[serde(flatten)]
    pub optional: OptionalFields,
}

/// The PostToolUse input (stdin), refused like [`PreToolUseInput`] when it
/// has a field the reference does not list.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostToolUseInput {
    pub session_id: String,
    pub transcript_path: String,
    pub cwd: String,
    #[serde(default)]
    pub permission_mode: Option<String>,
    pub hook_event_name: String,
    pub tool_name: String,
    pub tool_input: Map<String, Value>,
    pub tool_response: Value,
    pub tool_use_id: String,
    #[serde(flatten)]
    pub optional: OptionalFields,
}

/// The common fields the reference lists as sent only sometimes (inside a
/// subagent, after the first prompt, ...): accepted, not judged.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct OptionalFields {
    #[serde(default)]
    pub agent_id: Option<String>,
    #[serde(default)]
    pub agent_type: Option<String>,
    #[serde(default)]
    pub prompt_id: Option<String>,
    #[serde(default)]
    pub scratchpad_dir: Option<String>,
    #[serde(default)]
    pub effort: Option<Value>,
}

/// The tool calls airlock judges; every other tool gets no objection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToolCall {
    Bash {
        command: String,
    },
    /// Write, Edit, MultiEdit (`file_path`) and NotebookEdit (`notebook_path`).
    Edit {
        path: String,
    },
    Other,
}

#[derive(Deserialize)]
struct BashInput {
    command: String,
}

#[derive(Deserialize)]
struct FileInput {
    file_path: String,
}

#[derive(Deserialize)]
struct NotebookInput {
    notebook_path: String,
}

impl PreToolUseInput {
    pub fn tool_call(&self) -> Result<ToolCall, HookInputError> {
        let input = Value::Object(self.tool_input.clone());
        Ok(match self.tool_name.as_str() {
            "Bash" => ToolCall::Bash {
                command: contract::from_value::<BashInput>(input, "tool_input", AGENT)?.command,
            },
            "Write" | "Edit" | "MultiEdit" => ToolCall::Edit {
                path: contract::from_value::<FileInput>(input, "tool_input", AGENT)?.file_path,
            },
            "NotebookEdit" => ToolCall::Edit {
                path: contract::from_value::<NotebookInput>(input, "tool_input", AGENT)?
                    .notebook_path,
            },
            _ => ToolCall::Other,
        })
    }
}

/// `hookSpecificOutput.permissionDecision`. airlock never sends `allow`:
/// it would skip the user's own permission prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PermissionDecision {
    Deny,
    Ask,
}

/// The PreToolUse JSON output (stdout, exit 0).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PreToolUseOutput {
    pub hook_specific_output: PreToolUseSpecificOutput,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PreToolUseSpecificOutput {
    /// Always `PreToolUse`.
    pub hook_event_name: &'static str,
    pub permission_decision: PermissionDecision,
    /// Shown to Claude for `deny`, to the user for `ask`.
    pub permission_decision_reason: String,
}

/// Reads a PreToolUse payload.
pub fn parse_pre_tool_use(input: &[u8]) -> Result<PreToolUseInput, HookInputError> {
    let parsed: PreToolUseInput = contract::parse(input, AGENT)?;
    contract::require_event(&parsed.hook_event_name, "PreToolUse")?;
    Ok(parsed)
}

/// The decision for a parsed PreToolUse call. A call made outside the
/// run's worktree is refused as another run's.
pub fn decide(input: &PreToolUseInput, policy: &Policy) -> Result<Decision, HookInputError> {
    policy.require_cwd(&input.cwd)?;
    let cwd = Path::new(&input.cwd);
    Ok(match input.tool_call()? {
        ToolCall::Bash { command } => policy.decide_command(&command, cwd),
        ToolCall::Edit { path } => policy.decide_edit(&path, cwd),
        ToolCall::Other => Decision::Allow,
    })
}

/// The output for a decision; `None` is no output at all (exit 0).
pub fn output(decision: &Decision) -> Option<PreToolUseOutput> {
    let (permission_decision, reason) = match decision {
        Decision::Allow => return None,
        Decision::Ask { reason } => (
            PermissionDecision::Ask,
            format!("airlock could not check this command: {reason}"),
        ),
        Decision::Deny(denial) => (PermissionDecision::Deny, denial.to_string()),
    };
    Some(PreToolUseOutput {
        hook_specific_output: PreToolUseSpecificOutput {
            hook_event_name: "PreToolUse",
            permission_decision,
            permission_decision_reason: reason,
        },
    })
}

/// The whole PreToolUse hook: bytes in, reply out. Input that cannot be
/// read is refused (exit 2, reason on stderr).
pub fn pre_tool_use(input: &[u8], policy: &Policy) -> HookReply {
    match parse_pre_tool_use(input).and_then(|parsed| decide(&parsed, policy)) {
        Ok(decision) => match output(&decision) {
            Some(out) => HookReply::json(&out),
            None => HookReply::silent(),
        },
        Err(error) => HookReply::refuse_input(&error),
    }
}

/// Reads a PostToolUse payload into a record for the ledger (see
/// [`ToolCallRecord`]: a summary and the payload's digest).
pub fn post_tool_use(input: &[u8]) -> Result<ToolCallRecord, HookInputError> {
    let parsed: PostToolUseInput = contract::parse(input, AGENT)?;
    contract::require_event(&parsed.hook_event_name, "PostToolUse")?;
    let summary = contract::summary_of(&Value::Object(parsed.tool_input));
    Ok(ToolCallRecord::new(
        "claude",
        input,
        CallIds {
            session_id: parsed.session_id,
            turn_id: None,
            tool_use_id: parsed.tool_use_id,
            tool_name: parsed.tool_name,
            cwd: parsed.cwd,
        },
        &summary,
    ))
}
