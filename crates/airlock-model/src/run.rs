//! A run: one attempt at one brief, and the states it moves through.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::check::CheckReport;
use crate::error::Error;
pub use crate::state::State;

/// Where the main repository keeps runs' commits: outside `refs/heads/`,
/// so that `git push --all` and branch listings never carry an agent's
/// commit (a rejected run's may hold a credential). `airlock gc` deletes
/// the refs of finished runs.
pub const RUN_REFS: &str = "refs/airlock/runs/";

/// Where older versions kept them; moved on open (`airlock_core::migrate`).
pub const OLD_RUN_REFS: &str = "refs/heads/airlock/";

/// The main repository's ref holding run `id`'s commit: its base at start,
/// its submitted commit from submit on.
pub fn run_ref(id: &str) -> String {
    format!("{RUN_REFS}{id}")
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Run {
    pub id: String,
    pub state: State,
    pub round: u32,
    pub label: String,
    pub class: String,
    pub lane: String,
    /// Where the brief was read from (informational; the copy is in the run dir).
    pub brief_path: String,
    pub brief_digest: String,
    pub workflow_digest: String,
    pub base: String,
    pub branch: String,
    pub target: String,
    pub worktree: PathBuf,
    pub created: String,
    pub check: Option<CheckRecord>,
    pub submission: Option<Submission>,
    pub approval: Option<Approval>,
    pub promotion: Option<Promotion>,
    /// For a release run: the runs it releases and its checklist.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release: Option<crate::release::ReleaseInfo>,
}

/// The last `check`: what tree it saw and what it found.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CheckRecord {
    pub round: u32,
    pub tree: String,
    pub report: CheckReport,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Submission {
    pub round: u32,
    pub tree: String,
    pub head: String,
    pub diff_digest: String,
    pub proof: PathBuf,
    pub digest: String,
    pub at: String,
    /// Whom the commit is authored by (`Name <email>`); airlock's own
    /// identity when the user has none configured. Older runs have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    /// The review panel's decision log on the submitted tree, signed into
    /// the proof; none when the panel is off (or for older runs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub panel: Option<crate::panel::Decision>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Approval {
    pub digest: String,
    pub reason: Option<String>,
    pub at: String,
    /// `panel` when the review panel approved alone (its lane auto-promotes
    /// the run's class); none for a person's approval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Promotion {
    pub target: String,
    pub previous: String,
    pub merge: String,
    pub strategy: String,
    pub regated: Vec<String>,
    pub at: String,
    /// The run entered staging and soaks before its production actions run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub soak: Option<crate::soak::SoakPlan>,
}

impl Run {
    /// The main repository's ref holding this run's commit.
    pub fn main_ref(&self) -> String {
        run_ref(&self.id)
    }

    /// Refuses unless the run is in one of `allowed`.
    pub fn require(&self, command: &'static str, allowed: &[State]) -> Result<(), Error> {
        if allowed.contains(&self.state) {
            return Ok(());
        }
        let needed = allowed
            .iter()
            .map(State::as_str)
            .collect::<Vec<_>>()
            .join(" or ");
        Err(Error::WrongState {
            run: self.id.clone(),
            state: self.state,
            command,
            needed,
            next: self.state.next_step(&self.id),
        })
    }
}

pub fn now() -> String {
    humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string()
}

/// Seconds since the Unix epoch now (0 on a clock before it): the time
/// `allowed_signers` validity dates are checked at.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}
