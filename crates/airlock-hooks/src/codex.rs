//! Codex's hook contract.
//!
//! Sources: OpenAI Codex, "Hooks", https://developers.openai.com/codex/hooks,
//! and the JSON schemas Codex generates for it in its repository,
//! `codex-rs/hooks/schema/generated/pre-tool-use.command.input.schema.json`
//! and `...output.schema.json` (with `codex-rs/hooks/src/engine/output_parser.rs`,
//! which says which outputs it honours). Field by field, see the README.
//!
//! Codex honours only `deny`: `allow`, `ask`, `additionalContext`,
//! `updatedInput` or any field its schema lacks make the hook "failed" and
//! the call runs. So airlock sends a denial or nothing.

use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::contract::{self, CallIds, HookInputError, HookReply, ToolCallRecord};
use crate::patch;
use crate::policy::{Decision, Denial, Policy, Rule};

const AGENT: &str = "Codex";

/// The PreToolUse input (stdin). Codex's schema has
/// `additionalProperties: false`: any other field is refused.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PreToolUseInput {
    pub session_id: String,
    pub turn_id: String,
    /// `string | null`, always present.
    #[serde(deserialize_with = "contract::nullable_string")]
    pub transcript_path: Option<String>,
    pub cwd: String,
    pub hook_event_name: String,
    pub model: String,
    pub permission_mode: String,
    pub tool_name: String,
    /// `{"command": ...}` for Bash and apply_patch; the arguments for MCP tools.
    pub tool_input: Value,
    pub tool_use_id: String,
    /// Sent inside a subagent (`SubagentCommandInputFields`): accepted, not judged.
    #[serde(default)]
    pub agent_id: Option<String>,
    #[serde(default)]
    pub agent_type: Option<String>,
}

/// The PostToolUse input (stdin), as closed as [`PreToolUseInput`].
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostToolUseInput {
    pub session_id: String,
    pub turn_id: String,
    #[serde(deserialize_with = "contract::nullable_string")]
    pub transcript_path: Option<String>,
    pub cwd: String,
    pub hook_event_name: String,
    pub model: String,
    pub permission_mode: String,
    pub tool_name: String,
    pub tool_input: Value,
    pub tool_response: Value,
    pub tool_use_id: String,
    #[serde(default)]
    pub agent_id: Option<String>,
    #[serde(default)]
    pub agent_type: Option<String>,
}

/// The tool calls airlock judges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToolCall {
    Bash {
        command: String,
    },
    /// `apply_patch`: the patch text.
    ApplyPatch {
        patch: String,
    },
    /// MCP tools and anything else: staged by the MCP proxy, not here.
    Other,
}

#[derive(Deserialize)]
struct CommandInput {
    command: String,
}

impl PreToolUseInput {
    pub fn tool_call(&self) -> Result<ToolCall, HookInputError> {
        Ok(match self.tool_name.as_str() {
            "Bash" => ToolCall::Bash {
                command: contract::from_value::<CommandInput>(
                    self.tool_input.clone(),
                    "tool_input",
                    AGENT,
                )?
                .command,
            },
            "apply_patch" => ToolCall::ApplyPatch {
                patch: contract::from_value::<CommandInput>(
                    self.tool_input.clone(),
                    "tool_input",
                    AGENT,
                )?
                .command,
            },
            _ => ToolCall::Other,
        })
    }
}

/// The only decision Codex honours.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PermissionDecision {
    Deny,
}

/// The PreToolUse JSON output (stdout, exit 0): only the fields Codex's
/// output schema has and its parser honours.
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
    /// Must not be blank: Codex treats a blank reason as a failed hook.
    pub permission_decision_reason: String,
}

pub fn parse_pre_tool_use(input: &[u8]) -> Result<PreToolUseInput, HookInputError> {
    let parsed: PreToolUseInput = contract::parse(input, AGENT)?;
    contract::require_event(&parsed.hook_event_name, "PreToolUse")?;
    Ok(parsed)
}

/// The decision for a parsed call. Codex cannot ask, so what would be
/// `ask` is a denial here.
pub fn decide(input: &PreToolUseInput, policy: &Policy) -> Result<Decision, HookInputError> {
    policy.require_cwd(&input.cwd)?;
    let cwd = Path::new(&input.cwd);
    let decision = match input.tool_call()? {
        ToolCall::Bash { command } => policy.decide_command(&command, cwd),
        ToolCall::ApplyPatch { patch } => match patch::touched_paths(&patch) {
            Some(paths) => paths
                .iter()
                .map(|p| policy.decide_edit(p, cwd))
                .find(|d| *d != Decision::Allow)
                .unwrap_or(Decision::Allow),
            None => Decision::Deny(Denial {
                rule: Rule::NotUnderstood,
                reason: "the apply_patch input is not a patch airlock can read \
                         (`*** Begin Patch` ... `*** End Patch` naming at least one file)"
                    .into(),
                instead: "Send the edit as one patch in Codex's apply_patch format".into(),
            }),
        },
        ToolCall::Other => Decision::Allow,
    };
    Ok(decision.without_ask())
}

/// The output for a decision; `None` is no output at all (exit 0).
pub fn output(decision: &Decision) -> Option<PreToolUseOutput> {
    let reason = match decision.clone().without_ask() {
        Decision::Deny(denial) => denial.to_string(),
        Decision::Allow | Decision::Ask { .. } => return None,
    };
    Some(PreToolUseOutput {
        hook_specific_output: PreToolUseSpecificOutput {
            hook_event_name: "PreToolUse",
            permission_decision: PermissionDecision::Deny,
            permission_decision_reason: reason,
        },
    })
}

/// The whole PreToolUse hook: bytes in, reply out. Input that cannot be
/// read is refused (exit 2 with the reason on stderr, which Codex reads as
/// a block).
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
    let summary = match (parsed.tool_name.as_str(), &parsed.tool_input) {
        ("apply_patch", Value::Object(o)) => match o.get("command").and_then(Value::as_str) {
            Some(text) => patch::touched_paths(text)
                .map(|paths| format!("patch: {}", paths.join(", ")))
                .unwrap_or_else(|| contract::summary_of(&parsed.tool_input)),
            None => contract::summary_of(&parsed.tool_input),
        },
        _ => contract::summary_of(&parsed.tool_input),
    };
    Ok(ToolCallRecord::new(
        "codex",
        input,
        CallIds {
            session_id: parsed.session_id,
            turn_id: Some(parsed.turn_id),
            tool_use_id: parsed.tool_use_id,
            tool_name: parsed.tool_name,
            cwd: parsed.cwd,
        },
        &summary,
    ))
}
