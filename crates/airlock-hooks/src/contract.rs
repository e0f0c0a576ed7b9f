//! What the agents' hook contracts share: reading the input (fail closed)
//! and the reply a hook process gives (stdout, stderr, exit code).

use std::path::Path;

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
    /// A top-level field the agent's documented input does not have: a
    /// payload from another agent or version, or one made by hand.
    #[error(
        "the hook input has a field `{field}` that {agent}'s documented hook input does not have"
    )]
    UnknownField { agent: &'static str, field: String },
    /// The call was made in a directory outside the run's worktree: the
    /// payload is another run's, or another session's.
    #[error(
        "the tool call was made in {cwd}, outside this run's worktree {worktree}: it is another run's call, or one made outside the run"
    )]
    OtherWorktree { cwd: String, worktree: String },
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
            HookInputError::UnknownField { .. } => {
                "airlock refuses fields it cannot judge; if the agent's documentation now lists this field, \
                 update airlock (or report it), and check that the hook is wired to the right agent's command"
            }
            HookInputError::OtherWorktree { .. } => {
                "each airlock hook answers for one run: launch the agent with `airlock agent RUN` \
                 (or give the hook the run whose worktree the agent works in, `--run RUN`)"
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

/// The longest summary of a call the ledger keeps, in characters.
pub const MAX_SUMMARY_CHARS: usize = 512;
/// The longest identifier (session, turn, tool use, tool name) kept, in characters.
pub const MAX_ID_CHARS: usize = 256;
/// The longest `cwd` accepted, in bytes: Linux's `PATH_MAX`.
pub const MAX_CWD_BYTES: usize = 4096;

/// One tool call as the PostToolUse hooks report it, for the run's ledger:
/// who called which tool where, a bounded summary of what it was asked,
/// and the SHA-256 of the whole payload. The payload itself (a file's whole
/// content, a command's output) is not kept: it may hold what the agent
/// read, secrets included, and the agent's own transcript has it; the
/// digest shows whether a payload shown later is the one reported.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ToolCallRecord {
    /// `claude` or `codex`.
    pub agent: &'static str,
    pub session_id: String,
    /// Codex only.
    pub turn_id: Option<String>,
    pub tool_use_id: String,
    pub tool_name: String,
    pub cwd: String,
    /// The command, the file path or the patched paths; at most
    /// [`MAX_SUMMARY_CHARS`].
    pub summary: String,
    /// Whether `summary` (or an identifier) was cut to its bound.
    pub truncated: bool,
    /// SHA-256 of the payload exactly as the hook read it, in hex.
    pub payload_sha256: String,
    pub payload_bytes: usize,
}

impl ToolCallRecord {
    /// Builds a record of `payload`; every agent-chosen string bounded.
    pub(crate) fn new(
        agent: &'static str,
        payload: &[u8],
        ids: CallIds,
        summary: &str,
    ) -> ToolCallRecord {
        use sha2::Digest;
        let mut truncated = false;
        let mut bound = |text: &str, max: usize| {
            let (kept, cut) = bounded(text, max);
            truncated |= cut;
            kept
        };
        ToolCallRecord {
            agent,
            session_id: bound(&ids.session_id, MAX_ID_CHARS),
            turn_id: ids.turn_id.map(|t| bound(&t, MAX_ID_CHARS)),
            tool_use_id: bound(&ids.tool_use_id, MAX_ID_CHARS),
            tool_name: bound(&ids.tool_name, MAX_ID_CHARS),
            cwd: ids.cwd,
            summary: bound(summary, MAX_SUMMARY_CHARS),
            truncated,
            payload_sha256: hex::encode(sha2::Sha256::digest(payload)),
            payload_bytes: payload.len(),
        }
    }

    /// Refuses a record whose `cwd` is not in `worktree` (another run's call).
    pub fn require_worktree(&self, worktree: &Path) -> Result<(), HookInputError> {
        require_cwd_inside(&self.cwd, worktree)
    }
}

/// The identifiers of a reported call, before bounding.
pub(crate) struct CallIds {
    pub session_id: String,
    pub turn_id: Option<String>,
    pub tool_use_id: String,
    pub tool_name: String,
    pub cwd: String,
}

/// `text` cut to at most `max` characters, and whether it was cut.
fn bounded(text: &str, max: usize) -> (String, bool) {
    match text.char_indices().nth(max) {
        None => (text.to_string(), false),
        Some((end, _)) => (text[..end].to_string(), true),
    }
}

/// What a tool call was asked, in a line: the first of the fields that name
/// it (`command`, `file_path`, ...), or the tool's input keys.
pub(crate) fn summary_of(tool_input: &Value) -> String {
    const NAMING: [&str; 7] = [
        "command",
        "file_path",
        "notebook_path",
        "path",
        "url",
        "pattern",
        "query",
    ];
    let Some(object) = tool_input.as_object() else {
        return match tool_input {
            Value::String(text) => text.clone(),
            other => other.to_string(),
        };
    };
    for key in NAMING {
        if let Some(Value::String(text)) = object.get(key) {
            return text.clone();
        }
    }
    let keys: Vec<&str> = object.keys().map(String::as_str).collect();
    format!("{{{}}}", keys.join(", "))
}

/// Refuses a `cwd` that is relative, too long, or outside `worktree`.
pub(crate) fn require_cwd_inside(cwd: &str, worktree: &Path) -> Result<(), HookInputError> {
    if cwd.len() > MAX_CWD_BYTES {
        return Err(HookInputError::Invalid {
            path: "cwd".into(),
            problem: format!(
                "{} bytes, longer than any path Linux accepts ({MAX_CWD_BYTES})",
                cwd.len()
            ),
        });
    }
    let path = Path::new(cwd);
    if !path.is_absolute() {
        return Err(HookInputError::Invalid {
            path: "cwd".into(),
            problem: format!("`{cwd}` is not an absolute path"),
        });
    }
    if crate::policy::normalize(path).starts_with(crate::policy::normalize(worktree)) {
        return Ok(());
    }
    Err(HookInputError::OtherWorktree {
        cwd: cwd.to_string(),
        worktree: worktree.to_string_lossy().into_owned(),
    })
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
pub(crate) fn parse<T: DeserializeOwned>(
    input: &[u8],
    agent: &'static str,
) -> Result<T, HookInputError> {
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
    from_value(value, "", agent)
}

/// Deserializes `value` into `T`; `prefix` names where `value` sits.
pub(crate) fn from_value<T: DeserializeOwned>(
    value: Value,
    prefix: &str,
    agent: &'static str,
) -> Result<T, HookInputError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let problem = e.inner().to_string();
        let mut path = e.path().to_string();
        if let Some(field) = problem
            .strip_prefix("unknown field `")
            .and_then(|rest| rest.split('`').next())
            && (path == "." || path == field)
            && prefix.is_empty()
        {
            return HookInputError::UnknownField {
                agent,
                field: field.to_string(),
            };
        }
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
