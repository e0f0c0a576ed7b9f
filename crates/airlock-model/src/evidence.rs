//! The evidence document: what custom conditions and the review panel see
//! of a run. It is a plain, versioned record (`airlock.evidence/v1`) built
//! by the engine (`airlock_core::evidence::collect`) from the store; an
//! expression language reads it through an [`Evaluator`], which this crate
//! only declares so that the engine never depends on one.
//!
//! Everything in it that came from the agent (paths, argv, brief text, host
//! names) is data: an evaluator binds it as values, never as expression
//! text. Counts are unsigned here and exposed to expressions as `int`; the
//! field-by-field reference is docs/evidence.md and [`SCHEMA`].
//!
//! Change it additively only: new fields get defaults, so an older
//! document still deserializes, and a removed or retyped field is a new
//! version.

use serde::{Deserialize, Serialize};

/// The value of [`Evidence::version`] this crate writes.
pub const VERSION: &str = "airlock.evidence/v1";

/// One run's evidence, as conditions and panel rules see it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Evidence {
    /// Always [`VERSION`] (`airlock.evidence/v1`) for this layout.
    pub version: String,
    /// The run itself: id, class, lane, round and state.
    pub run: RunFacts,
    /// The brief the run works to, as the human wrote it.
    pub brief: BriefFacts,
    /// The run's change against its base, at the tree being judged.
    pub diff: DiffFacts,
    /// The latest check's gates, in the workflow's order.
    pub gates: Vec<GateFacts>,
    /// Test counts summed over every gate that reported some.
    pub tests: TestCounts,
    /// Every traced command of the run (agent, `exec`, gates), oldest first.
    pub traces: Vec<TraceFacts>,
    /// Network connections the run's commands made through the egress proxy.
    pub network: NetworkFacts,
    /// The actions the run planned or proposed.
    pub actions: Vec<ActionFacts>,
    /// The secrets stop condition's outcome at the latest check.
    pub secrets: SecretsFacts,
    /// Protected paths (the workflow's `policy.protected`) the run changed.
    pub protected: ProtectedFacts,
    /// The record of the run's class over earlier runs.
    pub class: ClassRecord,
}

impl Default for Evidence {
    fn default() -> Self {
        Evidence {
            version: VERSION.to_string(),
            run: RunFacts::default(),
            brief: BriefFacts::default(),
            diff: DiffFacts::default(),
            gates: Vec::new(),
            tests: TestCounts::default(),
            traces: Vec::new(),
            network: NetworkFacts::default(),
            actions: Vec::new(),
            secrets: SecretsFacts::default(),
            protected: ProtectedFacts::default(),
            class: ClassRecord::default(),
        }
    }
}

/// `run`: which run this is and where it stands.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RunFacts {
    /// The run id (`r-…`).
    pub id: String,
    /// The brief's class of work (`bugfix`, `docs`, …).
    pub class: String,
    /// The run's trust lane (`draft` … `production`).
    pub lane: String,
    /// The review round, from 1; a rework after rejection adds one.
    pub round: u32,
    /// The run's state (`open`, `checked`, `submitted`, `approved`, …).
    pub state: String,
}

/// `brief`: the task contract.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct BriefFacts {
    /// What the run is to achieve.
    pub objective: String,
    /// What it must not attempt.
    pub non_goals: Vec<String>,
    /// Path globs the run may change.
    pub touch: Vec<String>,
    /// Path globs the run's commands may not read (the brief's
    /// `data.forbid_read`).
    pub forbid: Vec<String>,
    /// Gates the brief asks for.
    pub checks: Vec<String>,
    /// The rollback plan; empty when the brief gives none.
    pub rollback: String,
    /// The assumptions the brief states.
    pub assumptions: Vec<String>,
}

/// `diff`: the change against the run's base.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct DiffFacts {
    /// Number of paths changed (added, modified, deleted or renamed).
    pub files_changed: u64,
    /// Lines added over all text files.
    pub insertions: u64,
    /// Lines removed over all text files.
    pub deletions: u64,
    /// Every changed path (a rename gives its new path), sorted.
    pub paths: Vec<String>,
    /// The paths added, sorted.
    pub added: Vec<String>,
    /// The paths deleted, sorted.
    pub deleted: Vec<String>,
}

/// One gate of the latest check.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct GateFacts {
    /// The gate's name in the workflow.
    pub name: String,
    /// `passed`, `failed`, `timed-out`, `interrupted` or `skipped` (as in
    /// the check report).
    pub status: String,
    /// Wall time of the gate's command, in milliseconds.
    pub duration_ms: u64,
    /// Test counts the gate reported (JUnit XML or a known runner's
    /// summary); all zero when it reported none.
    pub tests: TestCounts,
}

/// Test counts (`tests`, and each gate's `tests`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TestCounts {
    /// Tests that ran: passed + failed + skipped.
    pub ran: u64,
    /// Tests that passed.
    pub passed: u64,
    /// Tests that failed (JUnit failures and errors).
    pub failed: u64,
    /// Tests reported as skipped.
    pub skipped: u64,
}

/// One traced command.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TraceFacts {
    /// The command and its arguments, as run.
    pub argv: Vec<String>,
    /// What a shell would report: the exit code, 128+signal, or 124 for a
    /// time-out.
    pub exit: i32,
    /// Wall time, in milliseconds.
    pub duration_ms: u64,
    /// Number of worktree paths the command changed.
    pub files_changed: u64,
}

/// `network`: hosts the run's commands reached and were refused.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct NetworkFacts {
    /// Host names (or addresses) with at least one allowed connection,
    /// sorted, each once.
    pub hosts: Vec<String>,
    /// Host names (or addresses) with at least one refused connection,
    /// sorted, each once.
    pub refused: Vec<String>,
}

/// One action the run planned or proposed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ActionFacts {
    /// `http`, `email`, `git-push`, `command` or `mcp`.
    pub kind: String,
    /// The scopes the action needs, joined with `,` when more than one.
    pub scope: String,
    /// What it acts on: a URL, the recipients, a remote and ref, a command
    /// line, an MCP server and tool.
    pub target: String,
    /// Where it stands: `planned`, `proposed`, `approved`, `applied`,
    /// `failed`.
    pub stage: String,
}

/// `secrets`: what the secrets stop condition found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SecretsFacts {
    /// Findings that stop the run.
    pub findings: u64,
    /// Findings a human allowed (the allowlist or a reviewed marker).
    pub allowed: u64,
}

/// `protected`: protected paths the run changed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ProtectedFacts {
    /// The changed paths a protected glob matches, sorted.
    pub paths: Vec<String>,
}

/// A class's record over its runs (filled by `airlock_core::stats`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ClassRecord {
    /// Runs of the class that reached a decision (approved, rejected,
    /// blocked) in the window.
    pub runs: u64,
    /// Those approved on their first round.
    pub clean: u64,
    /// `clean / runs`, 0.0 when `runs` is 0.
    pub clean_rate: f64,
    /// Rework rounds over those runs (rounds beyond the first).
    pub rework_rounds: u64,
    /// Runs rejected by a human.
    pub rejected: u64,
    /// Runs stopped by a stop condition or a `block` condition.
    pub blocked: u64,
    /// Runs promoted.
    pub promoted: u64,
    /// Runs rolled back after promotion.
    pub rolled_back: u64,
}

/// A problem with one expression, located in the expression's own text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExprError {
    /// Byte offset of the problem in the expression.
    pub offset: usize,
    /// Length in bytes of the offending part (at least 1 where there is
    /// text to point at; 0 at the end of the expression).
    pub len: usize,
    /// What is wrong, in words a workflow author can act on.
    pub message: String,
}

/// An expression language over [`Evidence`]. The engine holds one when the
/// workflow has conditions or panel rules and refuses to run them without
/// one; the CLI installs the CEL evaluator (`airlock-cel`).
pub trait Evaluator: Send + Sync {
    /// Parses and type-checks one expression against the evidence schema:
    /// every name it uses must exist, every function must be known, and
    /// its result must be a bool. Returns every problem found.
    fn check(&self, expr: &str) -> Result<(), Vec<ExprError>>;

    /// Evaluates each expression against one evidence document, in order:
    /// `Ok(bool)` or the reason it could not be evaluated (an error at run
    /// time, a cost limit). One expression's failure does not affect the
    /// others.
    fn eval_all(&self, exprs: &[&str], evidence: &Evidence) -> Vec<Result<bool, String>>;
}

/// A type in the evidence schema, as expressions see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldType {
    Bool,
    /// A signed 64-bit integer (counts, exit codes, milliseconds).
    Int,
    Double,
    String,
    List(&'static FieldType),
    Object(&'static [Field]),
}

/// One named field of an object in the evidence schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field {
    pub name: &'static str,
    pub ty: FieldType,
}

const fn field(name: &'static str, ty: FieldType) -> Field {
    Field { name, ty }
}

const STRINGS: FieldType = FieldType::List(&FieldType::String);

const RUN: &[Field] = &[
    field("id", FieldType::String),
    field("class", FieldType::String),
    field("lane", FieldType::String),
    field("round", FieldType::Int),
    field("state", FieldType::String),
];

const BRIEF: &[Field] = &[
    field("objective", FieldType::String),
    field("non_goals", STRINGS),
    field("touch", STRINGS),
    field("forbid", STRINGS),
    field("checks", STRINGS),
    field("rollback", FieldType::String),
    field("assumptions", STRINGS),
];

const DIFF: &[Field] = &[
    field("files_changed", FieldType::Int),
    field("insertions", FieldType::Int),
    field("deletions", FieldType::Int),
    field("paths", STRINGS),
    field("added", STRINGS),
    field("deleted", STRINGS),
];

const TESTS: &[Field] = &[
    field("ran", FieldType::Int),
    field("passed", FieldType::Int),
    field("failed", FieldType::Int),
    field("skipped", FieldType::Int),
];

const GATE: &[Field] = &[
    field("name", FieldType::String),
    field("status", FieldType::String),
    field("duration_ms", FieldType::Int),
    field("tests", FieldType::Object(TESTS)),
];

const TRACE: &[Field] = &[
    field("argv", STRINGS),
    field("exit", FieldType::Int),
    field("duration_ms", FieldType::Int),
    field("files_changed", FieldType::Int),
];

const NETWORK: &[Field] = &[field("hosts", STRINGS), field("refused", STRINGS)];

const ACTION: &[Field] = &[
    field("kind", FieldType::String),
    field("scope", FieldType::String),
    field("target", FieldType::String),
    field("stage", FieldType::String),
];

const SECRETS: &[Field] = &[
    field("findings", FieldType::Int),
    field("allowed", FieldType::Int),
];

const PROTECTED: &[Field] = &[field("paths", STRINGS)];

const CLASS: &[Field] = &[
    field("runs", FieldType::Int),
    field("clean", FieldType::Int),
    field("clean_rate", FieldType::Double),
    field("rework_rounds", FieldType::Int),
    field("rejected", FieldType::Int),
    field("blocked", FieldType::Int),
    field("promoted", FieldType::Int),
    field("rolled_back", FieldType::Int),
];

/// The evidence document's top-level fields and their types: what an
/// evaluator declares to its type checker. Kept equal to [`Evidence`]'s
/// serialized form by a test.
pub const SCHEMA: &[Field] = &[
    field("version", FieldType::String),
    field("run", FieldType::Object(RUN)),
    field("brief", FieldType::Object(BRIEF)),
    field("diff", FieldType::Object(DIFF)),
    field("gates", FieldType::List(&FieldType::Object(GATE))),
    field("tests", FieldType::Object(TESTS)),
    field("traces", FieldType::List(&FieldType::Object(TRACE))),
    field("network", FieldType::Object(NETWORK)),
    field("actions", FieldType::List(&FieldType::Object(ACTION))),
    field("secrets", FieldType::Object(SECRETS)),
    field("protected", FieldType::Object(PROTECTED)),
    field("class", FieldType::Object(CLASS)),
];

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    /// An evidence document with one element in every list, so that the
    /// serialized form shows every nested field.
    fn full() -> Evidence {
        Evidence {
            gates: vec![GateFacts::default()],
            traces: vec![TraceFacts::default()],
            actions: vec![ActionFacts::default()],
            ..Evidence::default()
        }
    }

    /// Walks a serialized value against the schema and names every
    /// mismatch: a field missing from one side, or a JSON type that is not
    /// the schema's.
    fn compare(path: &str, value: &Value, ty: &FieldType, out: &mut Vec<String>) {
        match (ty, value) {
            (FieldType::Bool, Value::Bool(_)) | (FieldType::String, Value::String(_)) => {}
            (FieldType::Int, Value::Number(n)) if n.is_i64() || n.is_u64() => {}
            (FieldType::Double, Value::Number(n)) if n.is_f64() => {}
            (FieldType::List(inner), Value::Array(items)) => {
                for item in items {
                    compare(&format!("{path}[]"), item, inner, out);
                }
            }
            (FieldType::Object(fields), Value::Object(map)) => {
                for f in *fields {
                    match map.get(f.name) {
                        Some(v) => compare(&format!("{path}.{}", f.name), v, &f.ty, out),
                        None => out.push(format!("{path}.{} is in SCHEMA only", f.name)),
                    }
                }
                for key in map.keys() {
                    if !fields.iter().any(|f| f.name == key) {
                        out.push(format!("{path}.{key} is serialized but not in SCHEMA"));
                    }
                }
            }
            _ => out.push(format!("{path}: {value} is not a {ty:?}")),
        }
    }

    #[test]
    fn schema_matches_the_serialized_document() {
        let value = serde_json::to_value(full()).unwrap();
        let mut problems = Vec::new();
        compare("", &value, &FieldType::Object(SCHEMA), &mut problems);
        assert_eq!(problems, Vec::<String>::new());
    }

    #[test]
    fn a_document_missing_fields_reads_with_defaults() {
        let evidence: Evidence =
            serde_json::from_str(r#"{"version":"airlock.evidence/v1","diff":{"files_changed":3}}"#)
                .unwrap();
        assert_eq!(evidence.diff.files_changed, 3);
        assert_eq!(evidence.run, RunFacts::default());
        assert_eq!(Evidence::default().version, VERSION);
    }
}
