//! What running a command gives back: how it ended, the digests of its
//! output, and the errors that stopped it from running.

use crate::interrupt;
use serde::Serialize;
use std::io;
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::sync::Arc;

/// How a command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Exit {
    Exited {
        code: i32,
    },
    Signaled {
        signal: i32,
    },
    TimedOut {
        after_ms: u64,
    },
    /// airlock was told to stop (`signal`: ^C, `kill`) and stopped the
    /// command and everything it started.
    Stopped {
        signal: i32,
    },
}

impl Exit {
    pub fn success(&self) -> bool {
        matches!(self, Exit::Exited { code: 0 })
    }

    /// The exit code a shell would report for this outcome.
    pub fn shell_code(&self) -> i32 {
        match *self {
            Exit::Exited { code } => code,
            Exit::Signaled { signal } => 128 + signal,
            Exit::TimedOut { .. } => 124,
            Exit::Stopped { signal } => 128 + signal,
        }
    }

    pub fn describe(&self) -> String {
        match *self {
            Exit::Exited { code } => format!("exit {code}"),
            Exit::Signaled { signal } => format!("killed by signal {signal}"),
            Exit::TimedOut { after_ms } => format!("timed out after {}", fmt_ms(after_ms)),
            Exit::Stopped { signal } => format!(
                "stopped: airlock received {} and killed the command",
                interrupt::name(signal)
            ),
        }
    }
}

/// What a command that wrote past the file size limit is told it hit.
pub fn file_size_limit(bytes: u64) -> String {
    format!("file size limit of {bytes} bytes: a write past it was refused")
}

pub(crate) fn fmt_ms(ms: u64) -> String {
    if ms >= 1000 {
        format!("{:.1}s", ms as f64 / 1000.0)
    } else {
        format!("{ms}ms")
    }
}

/// Digest and size of one output stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StreamDigest {
    pub sha256: String,
    pub size: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub exit: Exit,
    pub duration_ms: u64,
    pub stdout: StreamDigest,
    pub stderr: StreamDigest,
    /// A limit that stopped the command, in words (`output limit of … bytes`).
    pub limit_hit: Option<String>,
    /// `confined`, `confined (weaker: …)` or `unconfined`.
    pub confinement: String,
    /// The warm sandbox's connection, when one ran the command.
    #[serde(skip)]
    pub held: Option<Held>,
}

/// The connection to the warm sandbox that ran a command. Its host builds
/// the sandbox for the next command once this is dropped (or a second
/// after the command ended): hold it until the command is recorded, so
/// that building it does not compete with that for a small machine's
/// processors.
#[derive(Clone)]
pub struct Held {
    pub(crate) _connection: Arc<OwnedFd>,
}

impl std::fmt::Debug for Held {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Held")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("nothing to run: the command is empty")]
    EmptyCommand,
    #[error("cannot run `{program}`: {source}")]
    Spawn {
        program: String,
        #[source]
        source: io::Error,
    },
    #[error("cannot write the command's log {path}: {source}")]
    Log {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("lost track of the command: {0}")]
    Wait(#[source] io::Error),
    #[error("the sandbox could not be set up: {step} failed: {error}")]
    Setup { step: String, error: String },
    /// The caller's gate (see [`run_gated`]) refused: the command did not run.
    #[error("the command was not run: {reason}")]
    NotStarted { reason: String },
}
