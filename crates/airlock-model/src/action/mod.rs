//! Side effects outside the worktree, staged as a plan: an agent proposes an
//! action, airlock previews and rehearses it, the proof lists it, a human
//! approves it with the run, and promotion performs it live exactly once.
//!
//! - [`parse`]: the action file (TOML) and its validation;
//! - [`settings`]: the workflow's `[actions]` table (SMTP server, HTTP
//!   fixtures, protected refs) and the lanes' scopes;
//! - [`scope`]: the scopes an action needs and the lane that grants them;
//! - [`mask`]: what of an action a reviewer may see;
//! - [`effects`]: the network side of live actions, as a trait.
//!
//! Previews, plans, live execution and rollback are the engine's
//! (`airlock_core::action`).

pub mod effects;
pub mod mask;
pub mod parse;
pub mod pattern;
pub mod scope;
pub mod settings;

use serde::{Deserialize, Serialize};

use crate::digest::sha256_hex;

/// One side effect, as proposed.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ActionSpec {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The scopes the action declares it needs.
    pub scopes: Vec<String>,
    #[serde(flatten)]
    pub body: Body,
}

/// What the action does, by kind.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Body {
    Http(Http),
    Email(Email),
    GitPush(GitPush),
    Command(CommandAction),
    /// A call of an upstream MCP server's tool, staged by `airlock mcp-proxy`.
    Mcp(McpCall),
}

impl Body {
    pub fn kind(&self) -> &'static str {
        match self {
            Body::Http(_) => "http",
            Body::Email(_) => "email",
            Body::GitPush(_) => "git-push",
            Body::Command(_) => "command",
            Body::Mcp(_) => "mcp",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Http {
    pub method: String,
    pub url: String,
    /// In file order; values may name environment variables as `${NAME}`.
    pub headers: Vec<(String, String)>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Email {
    pub from: String,
    pub to: Vec<String>,
    pub cc: Vec<String>,
    pub subject: String,
    pub body: String,
    pub attachments: Vec<Attachment>,
}

/// A file of the run's tree sent with an email, pinned by its digest when
/// proposed: the live send reads it from the promoted commit and refuses if
/// it differs.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Attachment {
    pub path: String,
    pub sha256: String,
    pub size: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct GitPush {
    /// A remote configured in the main repository (never a URL).
    pub remote: String,
    /// The destination ref on the remote (`refs/heads/…` or `refs/tags/…`);
    /// what is pushed is the promoted commit.
    #[serde(rename = "ref")]
    pub dst: String,
    /// Where the push goes, as the user's git resolves `remote` (every
    /// `pushurl`, else its `url`, with `insteadOf` and `pushInsteadOf`
    /// applied): pinned by airlock when the action is proposed and again at
    /// submit, never written by the agent. The digest covers it, so an
    /// approval covers these URLs and no others.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub urls: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CommandAction {
    pub argv: Vec<String>,
    /// Relative to the repository root, in a clean checkout of the promoted commit.
    pub cwd: String,
    /// Environment variable names passed from airlock's environment.
    pub env: Vec<String>,
    /// Run instead, in the run's sandbox, to rehearse (`cargo publish --dry-run`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rehearse: Option<Vec<String>>,
    pub timeout_secs: u64,
}

/// A tool call the proxy staged: made at promotion by starting the server
/// as the workflow's `[mcp.servers.NAME] command` says (pinned here when
/// staged, so the approval covers the program too).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct McpCall {
    pub server: String,
    pub command: Vec<String>,
    pub tool: String,
    /// The arguments exactly as the agent sent them (a JSON object).
    pub arguments: serde_json::Value,
    /// The pinned definition digest of the tool the call was made against.
    pub definition: String,
}

/// Whether an action runs at promotion or undoes one at rollback.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Apply,
    Undo,
}

/// Where an action is in its life.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ActionState {
    /// In the plan, not performed.
    Planned,
    /// The live execution began and has not been recorded as finished.
    Started,
    Done,
    /// It ran and failed; nothing (or, for a command, an unknown part) happened.
    Failed,
    /// It may or may not have happened; a human must say which.
    Unknown,
    /// Never performed (a rollback before it ran).
    Skipped,
}

impl ActionState {
    pub fn as_str(&self) -> &'static str {
        match self {
            ActionState::Planned => "planned",
            ActionState::Started => "started",
            ActionState::Done => "done",
            ActionState::Failed => "failed",
            ActionState::Unknown => "outcome unknown",
            ActionState::Skipped => "skipped",
        }
    }
}

/// What a rehearsal showed.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Rehearsal {
    /// `ok`, `failed` or `unavailable`.
    pub status: String,
    pub summary: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub detail: String,
}

/// The outcome of one live attempt.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Attempt {
    pub at: String,
    pub state: ActionState,
    pub summary: String,
    /// sha256 of the result (response, server reply, push report, output).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result_sha256: Option<String>,
}

/// An action in a run's plan, with everything recorded about it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Action {
    pub run: String,
    pub seq: u32,
    pub role: Role,
    /// For an undo, the action it compensates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub undoes: Option<String>,
    pub spec: ActionSpec,
    /// sha256 of the spec's canonical JSON: what an approval covers.
    pub digest: String,
    pub preview: String,
    pub preview_sha256: String,
    pub rehearsal: Rehearsal,
    pub state: ActionState,
    pub attempts: Vec<Attempt>,
    pub proposed: String,
}

impl Action {
    /// The key that makes a retry of the same action recognisable: stable
    /// for a run, round and action, and different for anything else.
    pub fn idempotency_key(&self, round: u32) -> String {
        let h = sha256_hex(
            format!(
                "airlock-action\0{}\0{}\0{}\0{}",
                self.run, round, self.spec.name, self.digest
            )
            .as_bytes(),
        );
        format!(
            "{}-{}-{}-{}-{}",
            &h[..8],
            &h[8..12],
            &h[12..16],
            &h[16..20],
            &h[20..32]
        )
    }
}

/// sha256 of a spec's canonical JSON (serde_json sorts nothing, so the
/// field order is the struct's: stable across runs of the same binary and
/// recorded in the proof beside the spec itself).
pub fn spec_digest(spec: &ActionSpec) -> String {
    sha256_hex(serde_json::to_string(spec).unwrap_or_default().as_bytes())
}
