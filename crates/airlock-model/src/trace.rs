//! The record of one traced command, as the store keeps it and the proof
//! embeds it.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// The record of one command.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Trace {
    pub n: u32,
    pub round: u32,
    /// `exec` or `gate:<name>`.
    pub origin: String,
    pub argv: Vec<String>,
    pub cwd: String,
    pub lane: String,
    pub exit: ExitRecord,
    pub duration_ms: u64,
    pub stdout: StreamRecord,
    pub stderr: StreamRecord,
    pub files_changed: Vec<FileChange>,
    pub started: String,
    /// How the command was confined (`confined`, `confined (weaker: …)`).
    #[serde(default)]
    pub confinement: String,
    #[serde(default)]
    pub network: bool,
    /// A limit that stopped the command, or that the worktree it left is
    /// over (`[sandbox] max_worktree`).
    #[serde(default)]
    pub limit_hit: Option<String>,
    /// What the command reported the sandbox denied it.
    #[serde(default)]
    pub denials: Vec<String>,
    /// What to do about how the command failed, when airlock can tell
    /// (the network it tried is off, say).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ExitRecord {
    /// What a shell would report: the code, 128+signal, or 124 for a time-out.
    pub code: i32,
    pub description: String,
    pub timed_out: bool,
    /// The signal that stopped airlock (and so the command): `SIGINT`, `SIGTERM`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_by_signal: Option<String>,
}

impl ExitRecord {
    pub fn success(&self) -> bool {
        self.code == 0 && !self.timed_out
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StreamRecord {
    pub sha256: String,
    pub size: u64,
    pub log: PathBuf,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FileChange {
    pub status: char,
    pub path: String,
}
