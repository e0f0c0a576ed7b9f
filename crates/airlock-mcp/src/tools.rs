//! The tools: their names, descriptions and input schemas, and the parsing
//! of a call's arguments into a [`Call`]. Nothing here runs anything.

use serde::Deserialize;
use serde_json::{Map, Value, json};

use airlock_core::Code;

/// The most a call's arguments may weigh, as JSON: far above any command
/// line or action file, far below what would let a client make the server
/// hold much memory for it.
pub const MAX_ARGUMENTS: usize = 1 << 20;

/// One tool call, its arguments checked.
#[derive(Debug, Clone, PartialEq)]
pub enum Call {
    Status,
    Exec {
        command: Vec<String>,
        timeout_seconds: Option<u64>,
    },
    Check,
    Logs {
        trace: Option<String>,
        tail: Option<usize>,
        stream: Option<String>,
    },
    Snapshot {
        name: String,
        command: Vec<String>,
    },
    Propose {
        action: String,
    },
    Withdraw {
        name: String,
    },
    Plan,
    Submit,
}

/// A tool as it is listed: name, description for a model, input schema.
pub struct ToolDef {
    pub name: &'static str,
    pub title: &'static str,
    pub description: &'static str,
    pub read_only: bool,
    pub schema: fn() -> Value,
}

/// Every tool, in the order they are listed. Nothing here approves,
/// rejects, promotes, resolves, rolls back or edits the workflow: those
/// are the reviewer's.
pub const TOOLS: &[ToolDef] = &[
    ToolDef {
        name: "status",
        title: "Run status and reviewer feedback",
        description: "The state of your run (staged, checked, in_review, approved, ...), its round, what moves it on next, and the reviewer's last feedback (the reason of the last redirect, which is what you work to in a new round). Call it first, and again after a redirect. Returns the same fields as `airlock show --json` (brief, gates, stop conditions, traces, actions, decisions) without the diff.",
        read_only: true,
        schema: no_arguments,
    },
    ToolDef {
        name: "exec",
        title: "Run a command in the run's sandbox",
        description: "Runs one command in your run's worktree, inside the run's sandbox (no network unless the lane allows it; the main checkout, the home directory and airlock's state are out of reach), and records it as a trace in the run's evidence. Use it for every command that builds, tests or changes files. `command` is an argv list, not a shell line: for pipes or `&&` give [\"sh\", \"-c\", \"...\"]. The command reads nothing on stdin. Returns the trace (number, exit code and description, duration, sizes and sha256 of stdout and stderr, files changed) and, as text, the end of its output. A command that fails is a result, not an error.",
        read_only: false,
        schema: exec_schema,
    },
    ToolDef {
        name: "check",
        title: "Run the gates and stop conditions",
        description: "Runs the brief's gates (build, lint, tests, ...) in the sandbox and then the stop conditions (scope, protected paths, secrets, blast radius) on the worktree. A run must pass check before submit. Returns each gate's result with its trace number and each stop condition's findings; `passed` says whether the run may be submitted. Read a failed gate's output with `logs`.",
        read_only: false,
        schema: no_arguments,
    },
    ToolDef {
        name: "logs",
        title: "Output of a trace or gate",
        description: "Without `trace`: lists the run's traces (number, round, kind, argv, exit). With `trace`: the stdout and stderr a trace recorded, by its number (\"3\") or a gate's name (\"unit\": that gate's latest trace in the current round). `tail` keeps only the last N lines of each stream; `stream` picks one. Use it to read why a gate or a command failed.",
        read_only: true,
        schema: logs_schema,
    },
    ToolDef {
        name: "snapshot",
        title: "Run an output snapshot",
        description: "Runs a command in the run's sandbox (traced, like exec), normalizes its output and compares it with the golden snapshot `name` in .airlock/snapshots/. Returns matched, changed (with the difference) or new. A changed or new result is left pending beside the golden for a person to accept: you cannot accept it.",
        read_only: false,
        schema: snapshot_schema,
    },
    ToolDef {
        name: "propose",
        title: "Propose a side effect",
        description: "Adds an action (an HTTP call, an email, a git push, a command with effects outside the worktree) to the run's plan. Nothing is sent now: the action is validated, previewed and rehearsed, and it runs only after a person approves and promotes the run, exactly once. `action` is the action file's TOML text: `name`, `kind` (http, email, git-push, command), `scopes` and the kind's fields, optionally an `[undo]` table. Returns the action with its preview and rehearsal; a refused action lists every problem at once.",
        read_only: false,
        schema: propose_schema,
    },
    ToolDef {
        name: "withdraw",
        title: "Withdraw a proposed action",
        description: "Drops the action `name` (and its undo) from the run's plan, before the run is submitted. Returns the run and the name withdrawn.",
        read_only: false,
        schema: withdraw_schema,
    },
    ToolDef {
        name: "plan",
        title: "The run's planned actions",
        description: "Lists the run's proposed actions: name, kind, state, scopes, digest, preview of what would be sent and the rehearsal's result. Use it to confirm what you proposed.",
        read_only: true,
        schema: no_arguments,
    },
    ToolDef {
        name: "submit",
        title: "Submit the run for review",
        description: "Commits the checked worktree, signs the run's proof bundle and puts the run in the review queue. The run must have passed check and the worktree must be unchanged since. After submit the worktree is frozen: a person approves, rejects or redirects the run (a redirect starts a new round; `status` then shows their feedback). Returns the commit, tree, proof path and digest.",
        read_only: false,
        schema: no_arguments,
    },
];

fn no_arguments() -> Value {
    json!({"type": "object", "properties": {}, "additionalProperties": false})
}

fn exec_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "command": {
                "type": "array",
                "items": {"type": "string"},
                "minItems": 1,
                "description": "The program and its arguments, e.g. [\"cargo\", \"test\"]."
            },
            "timeout_seconds": {
                "type": "integer",
                "minimum": 1,
                "description": "Kill the command and everything it started after this many seconds (default: the workflow's)."
            }
        },
        "required": ["command"],
        "additionalProperties": false
    })
}

fn logs_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "trace": {
                "type": ["string", "integer"],
                "description": "A trace number, or a gate's name. Leave it out to list the traces."
            },
            "tail": {"type": "integer", "minimum": 1, "description": "Only the last N lines of each stream."},
            "stream": {"type": "string", "enum": ["stdout", "stderr"], "description": "Only this stream."}
        },
        "additionalProperties": false
    })
}

fn snapshot_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "name": {
                "type": "string",
                "pattern": "^[A-Za-z0-9_][A-Za-z0-9_.-]*$",
                "description": "The snapshot's name: letters, digits, `-`, `_`, `.`."
            },
            "command": {
                "type": "array",
                "items": {"type": "string"},
                "minItems": 1,
                "description": "The program and its arguments."
            }
        },
        "required": ["name", "command"],
        "additionalProperties": false
    })
}

fn propose_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "action": {
                "type": "string",
                "description": "The action file's TOML text, e.g. name = \"notify\"\\nkind = \"http\"\\nscopes = [\"http:POST:hooks.example.com\"]\\nmethod = \"POST\"\\nurl = \"https://hooks.example.com/x\""
            }
        },
        "required": ["action"],
        "additionalProperties": false
    })
}

fn withdraw_schema() -> Value {
    json!({
        "type": "object",
        "properties": {"name": {"type": "string", "description": "The action's name."}},
        "required": ["name"],
        "additionalProperties": false
    })
}

/// Why a call's arguments were not taken: a stable code, what and how to
/// fix it, as an airlock error says them.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejected {
    pub code: Code,
    pub message: String,
    pub hint: String,
}

impl Rejected {
    fn invalid(tool: &str, message: impl Into<String>) -> Rejected {
        Rejected {
            code: Code::InvalidInput,
            message: format!("tool `{tool}`: {}", message.into()),
            hint: format!(
                "give the arguments `{tool}`'s input schema lists (tools/list), each of its type"
            ),
        }
    }

    /// The error as `--json` reports one (docs/errors.md).
    pub fn to_json(&self) -> Value {
        json!({
            "message": self.message,
            "code": self.code,
            "class": self.code.class().as_str(),
            "hint": self.hint,
        })
    }
}

/// Checks a call to `tool` for the server's run `run` and returns what to
/// do. `None`: no such tool (the caller answers "unknown tool").
pub fn parse(
    run: &str,
    tool: &str,
    arguments: Option<&Map<String, Value>>,
) -> Option<Result<Call, Rejected>> {
    let def = TOOLS.iter().find(|t| t.name == tool)?;
    let empty = Map::new();
    let arguments = arguments.unwrap_or(&empty);
    Some(check_arguments(run, def.name, arguments).and_then(|()| call_of(def.name, arguments)))
}

/// What every tool refuses alike: too large, or naming a run.
fn check_arguments(run: &str, tool: &str, arguments: &Map<String, Value>) -> Result<(), Rejected> {
    let size = serde_json::to_vec(arguments).map_or(usize::MAX, |v| v.len());
    if size > MAX_ARGUMENTS {
        return Err(Rejected {
            code: Code::InvalidInput,
            message: format!(
                "tool `{tool}`: the arguments are {size} bytes of JSON, over the limit of {MAX_ARGUMENTS}"
            ),
            hint: "send less: a long action file or command line belongs in a file in the worktree, read by a command"
                .into(),
        });
    }
    for key in ["run", "run_id", "runId"] {
        if let Some(named) = arguments.get(key) {
            let named = match named {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            let message = if named == run {
                format!(
                    "tool `{tool}` takes no `{key}`: this server is bound to run {run}, and every tool acts on it"
                )
            } else {
                format!(
                    "tool `{tool}` named run {named}, but this server serves only run {run}; nothing was done"
                )
            };
            return Err(Rejected {
                code: Code::OtherRun,
                message,
                hint: format!(
                    "leave `{key}` out to act on run {run}; another run needs its own `airlock mcp --run RUN`, which a person starts"
                ),
            });
        }
    }
    Ok(())
}

fn from_object<T: for<'de> Deserialize<'de>>(
    tool: &str,
    arguments: &Map<String, Value>,
) -> Result<T, Rejected> {
    serde_json::from_value(Value::Object(arguments.clone()))
        .map_err(|e| Rejected::invalid(tool, e.to_string()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Nothing {}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExecArgs {
    command: Vec<String>,
    timeout_seconds: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LogsArgs {
    trace: Option<Value>,
    tail: Option<usize>,
    stream: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SnapshotArgs {
    name: String,
    command: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProposeArgs {
    action: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WithdrawArgs {
    name: String,
}

fn command_line(tool: &str, command: Vec<String>) -> Result<Vec<String>, Rejected> {
    if command.is_empty() {
        return Err(Rejected::invalid(
            tool,
            "`command` is empty: give the program and its arguments, e.g. [\"cargo\", \"test\"]",
        ));
    }
    if command.iter().any(|a| a.contains('\0')) {
        return Err(Rejected::invalid(
            tool,
            "an argument of `command` holds a NUL character, which no program can receive",
        ));
    }
    Ok(command)
}

fn call_of(tool: &str, arguments: &Map<String, Value>) -> Result<Call, Rejected> {
    Ok(match tool {
        "status" | "check" | "plan" | "submit" => {
            from_object::<Nothing>(tool, arguments)?;
            match tool {
                "status" => Call::Status,
                "check" => Call::Check,
                "plan" => Call::Plan,
                _ => Call::Submit,
            }
        }
        "exec" => {
            let a: ExecArgs = from_object(tool, arguments)?;
            if a.timeout_seconds == Some(0) {
                return Err(Rejected::invalid(
                    tool,
                    "`timeout_seconds` must be at least 1",
                ));
            }
            Call::Exec {
                command: command_line(tool, a.command)?,
                timeout_seconds: a.timeout_seconds,
            }
        }
        "logs" => {
            let a: LogsArgs = from_object(tool, arguments)?;
            let trace = match a.trace {
                None => None,
                Some(Value::Number(n)) if n.as_u64().is_some_and(|n| n >= 1) => Some(n.to_string()),
                Some(Value::String(s)) if !s.is_empty() && !s.starts_with('-') => Some(s),
                Some(other) => {
                    return Err(Rejected::invalid(
                        tool,
                        format!(
                            "`trace` is {other}: give a trace number (1 or more) or a gate's name"
                        ),
                    ));
                }
            };
            if a.tail == Some(0) {
                return Err(Rejected::invalid(tool, "`tail` must be at least 1"));
            }
            if let Some(s) = &a.stream
                && s != "stdout"
                && s != "stderr"
            {
                return Err(Rejected::invalid(
                    tool,
                    format!("`stream` is {s:?}: give \"stdout\" or \"stderr\""),
                ));
            }
            Call::Logs {
                trace,
                tail: a.tail,
                stream: a.stream,
            }
        }
        "snapshot" => {
            let a: SnapshotArgs = from_object(tool, arguments)?;
            let good = !a.name.is_empty()
                && !a.name.starts_with(['-', '.'])
                && a.name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
            if !good {
                return Err(Rejected::invalid(
                    tool,
                    format!(
                        "`name` is {:?}: a snapshot's name is letters, digits, `-`, `_` and `.`, not starting with `-` or `.`",
                        a.name
                    ),
                ));
            }
            Call::Snapshot {
                name: a.name,
                command: command_line(tool, a.command)?,
            }
        }
        "propose" => {
            let a: ProposeArgs = from_object(tool, arguments)?;
            Call::Propose { action: a.action }
        }
        "withdraw" => {
            let a: WithdrawArgs = from_object(tool, arguments)?;
            if a.name.is_empty() || a.name.starts_with('-') {
                return Err(Rejected::invalid(
                    tool,
                    format!(
                        "`name` is {:?}: give the name of a proposed action (`plan` lists them)",
                        a.name
                    ),
                ));
            }
            Call::Withdraw { name: a.name }
        }
        _ => unreachable!("every listed tool is parsed"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn a_call_is_checked_against_its_tool() {
        assert_eq!(
            parse("r-1", "exec", Some(&args(json!({"command": ["true"]})))),
            Some(Ok(Call::Exec {
                command: vec!["true".into()],
                timeout_seconds: None
            }))
        );
        assert_eq!(parse("r-1", "approve", None), None);
        let wrong = parse("r-1", "exec", Some(&args(json!({"command": "true"})))).unwrap();
        let wrong = wrong.unwrap_err();
        assert_eq!(wrong.code, Code::InvalidInput);
        assert!(
            wrong.message.contains("invalid type: string"),
            "{}",
            wrong.message
        );
        let extra = parse("r-1", "plan", Some(&args(json!({"x": 1}))))
            .unwrap()
            .unwrap_err();
        assert!(
            extra.message.contains("unknown field `x`"),
            "{}",
            extra.message
        );
    }

    #[test]
    fn a_call_naming_a_run_is_refused() {
        let other = parse("r-1", "submit", Some(&args(json!({"run": "r-2"}))))
            .unwrap()
            .unwrap_err();
        assert_eq!(other.code, Code::OtherRun);
        assert!(other.message.contains("r-2"), "{}", other.message);
        let same = parse("r-1", "status", Some(&args(json!({"run": "r-1"}))))
            .unwrap()
            .unwrap_err();
        assert_eq!(same.code, Code::OtherRun);
    }

    #[test]
    fn oversized_arguments_are_refused() {
        let big = "x".repeat(MAX_ARGUMENTS);
        let r = parse("r-1", "propose", Some(&args(json!({"action": big}))))
            .unwrap()
            .unwrap_err();
        assert!(r.message.contains("over the limit"), "{}", r.message);
    }
}
