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
    /// The hosts the command could reach through airlock's egress proxy
    /// (the lane's `network` list, as the decision gave it), when its
    /// network was a list of hosts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub egress: Option<Vec<String>>,
    /// Every connection the command asked the egress proxy for, allowed or
    /// refused, in the order they ended.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub connections: Vec<Connection>,
}

/// One connection through the egress proxy, as evidence.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Connection {
    /// `connect` (HTTP CONNECT), `http` (plain HTTP) or `socks5`.
    pub protocol: String,
    /// The host as the client asked for it (a name, or an address).
    pub host: String,
    pub port: u16,
    /// The address the proxy dialled, or the one it refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// `allowed`, `failed` (allowed, but the name did not resolve or the
    /// address did not answer) or `refused`.
    pub outcome: String,
    /// The allowlist entry that allowed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// Why it was refused or failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The lane setting that would allow it, for a refused one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_with: Option<String>,
    pub bytes_up: u64,
    pub bytes_down: u64,
    pub duration_us: u64,
    pub started_unix_ms: u64,
}

impl Connection {
    pub fn refused(&self) -> bool {
        self.outcome == "refused"
    }

    pub fn allowed(&self) -> bool {
        self.outcome == "allowed"
    }
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
