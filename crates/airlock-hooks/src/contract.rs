//! What the agents' hook contracts share: reading the input (fail closed)
//! and the reply a hook process gives (stdout, stderr, exit code).

use serde::de::DeserializeOwned;
use serde_json::Value;

/// Inputs larger than this are refused. Claude Code sends a whole file's
/// content in a Write call, so this is generous.
pub const MAX_INPUT_BYTES: usize = 8 * 1024 * 1024;

/// Why a hook's input could not be read. Every one fails closed: see
/// [`HookReply::refuse_input`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HookInputError {
    #[error("the hook input is empty")]
    Empty,
    #[error("the hook input is {size} bytes, more than the {limit} airlock reads")]
    Oversized { size: usize, limit: usize },
    #[error("the hook input is not JSON ({detail})")]
    NotJson { detail: String },
    #[error("the hook input is JSON but not an object")]
    NotAnObject,
    #[error("the hook input's `{path}` is not as documented: {problem}")]
    Invalid { path: String, problem: String },
    #[error("the hook input is for the `{found}` event, but this hook answers `{expected}`")]
    WrongEvent {
        expected: &'static str,
        found: String,
    },
}

impl HookInputError {
    /// What to do about it.
    pub fn fix(&self) -> &'static str {
        match self {
            HookInputError::WrongEvent { .. } => {
                "check the agent's hook configuration: each airlock hook command answers one event"
            }
            _ => {
                "airlock reads the payload the agent documents; check that the hook is run by the agent \
                 (not by hand) and that the agent's version sends its documented hook input"
            }
        }
    }
}

/// What a hook process does: print `stdout`, print `stderr`, exit with
/// `exit_code`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookReply {
    pub exit_code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl HookReply {
    /// Exit 0 with no output: no objection; the agent's own rules decide.
    pub fn silent() -> HookReply {
        HookReply {
            exit_code: 0,
            stdout: String::new(),
            stderr: String::new(),
        }
    }

    pub(crate) fn json<T: serde::Serialize>(output: &T) -> HookReply {
        // Serializing these plain structs cannot fail; if it somehow did,
        // blocking is the safe answer.
        match serde_json::to_string(output) {
            Ok(stdout) => HookReply {
                exit_code: 0,
                stdout,
                stderr: String::new(),
            },
            Err(e) => HookReply::block(&format!("airlock: could not write the hook answer: {e}")),
        }
    }

    /// Exit 2 with the reason on stderr: both agents block the call and
    /// show the reason to the model.
    pub fn block(reason: &str) -> HookReply {
        HookReply {
            exit_code: 2,
            stdout: String::new(),
            stderr: format!("{}\n", reason.trim_end()),
        }
    }

    /// The fail-closed answer to input that could not be read. Exit code 2
    /// is the one answer both contracts read as "block" without parsing
    /// anything, whatever the event.
    pub fn refuse_input(error: &HookInputError) -> HookReply {
        HookReply::block(&format!(
            "airlock: refused the tool call because {error}. {}",
            error.fix()
        ))
    }
}

/// One tool call as the PostToolUse hooks report it, for the run's ledger.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ToolCallRecord {
    /// `claude` or `codex`.
    pub agent: &'static str,
    pub session_id: String,
    /// Codex only.
    pub turn_id: Option<String>,
    pub tool_use_id: String,
    pub tool_name: String,
    pub cwd: String,
    pub tool_input: Value,
    pub tool_response: Value,
}

/// Refuses a payload meant for another event than the one this hook answers.
pub(crate) fn require_event(found: &str, expected: &'static str) -> Result<(), HookInputError> {
    if found == expected {
        return Ok(());
    }
    Err(HookInputError::WrongEvent {
        expected,
        found: found.to_string(),
    })
}

/// Reads a JSON object into `T`, failing closed with a precise error.
pub(crate) fn parse<T: DeserializeOwned>(input: &[u8]) -> Result<T, HookInputError> {
    if input.len() > MAX_INPUT_BYTES {
        return Err(HookInputError::Oversized {
            size: input.len(),
            limit: MAX_INPUT_BYTES,
        });
    }
    if input.iter().all(u8::is_ascii_whitespace) {
        return Err(HookInputError::Empty);
    }
    let value: Value = serde_json::from_slice(input).map_err(|e| HookInputError::NotJson {
        detail: e.to_string(),
    })?;
    if !value.is_object() {
        return Err(HookInputError::NotAnObject);
    }
    from_value(value, "")
}

/// Deserializes `value` into `T`; `prefix` names where `value` sits.
pub(crate) fn from_value<T: DeserializeOwned>(
    value: Value,
    prefix: &str,
) -> Result<T, HookInputError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let problem = e.inner().to_string();
        let mut path = e.path().to_string();
        if path == "." {
            path.clear();
        }
        // serde names a missing field in its message, at the parent's path.
        if let Some(field) = problem
            .strip_prefix("missing field `")
            .and_then(|rest| rest.split('`').next())
        {
            path = if path.is_empty() {
                field.to_string()
            } else {
                format!("{path}.{field}")
            };
        }
        let path = match (prefix.is_empty(), path.is_empty()) {
            (true, _) => path,
            (false, true) => prefix.to_string(),
            (false, false) => format!("{prefix}.{path}"),
        };
        HookInputError::Invalid { path, problem }
    })
}

/// `transcript_path` in Codex is `string | null` but must be present.
pub(crate) fn nullable_string<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<String>, D::Error> {
    <Option<String> as serde::Deserialize>::deserialize(deserializer)
}
