//! What the caller and the init process exchange: the specification it is
//! given on a pipe, the report it answers with, and the descriptors they use.

use super::{SetupError, fail};
use serde::{Deserialize, Serialize};
use std::ffi::{OsStr, OsString};
use std::io::Write;
use std::os::unix::ffi::{OsStrExt, OsStringExt};

/// The read end of a pipe carrying the specification (JSON) to the init
/// process: an environment variable would cap a command's arguments far
/// below what `execve` allows.
pub(crate) const SPEC_FD: i32 = 5;
pub(crate) const RESULT_FD: i32 = 3;
/// With [`InitSpec::gate`], the read end of a pipe the command's process
/// waits on right before its `execve`: one byte lets it start, end of file
/// (airlock gave up) stops it.
pub(crate) const GATE_FD: i32 = 4;

/// What the init process is asked to build. Paths and strings travel as
/// bytes so that non-UTF-8 names survive.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct InitSpec {
    pub argv: Vec<Vec<u8>>,
    pub cwd: Vec<u8>,
    pub env: Vec<(Vec<u8>, Vec<u8>)>,
    /// (source, target) pairs bound read-write.
    pub binds: Vec<(Vec<u8>, Vec<u8>)>,
    /// (source, target) pairs bound read-only (re-exposing parts of hidden paths).
    #[serde(default)]
    pub read_only: Vec<(Vec<u8>, Vec<u8>)>,
    pub hidden: Vec<Vec<u8>>,
    pub network: bool,
    /// An empty directory the new root is assembled on.
    pub root: Vec<u8>,
    pub memory_bytes: Option<u64>,
    pub processes: Option<u64>,
    /// RLIMIT_FSIZE of the command.
    #[serde(default)]
    pub file_size_bytes: Option<u64>,
    /// Run with the protections that need no namespaces only.
    pub weaker: bool,
    /// Wait for one byte on [`GATE_FD`] before starting the command.
    #[serde(default)]
    pub gate: bool,
    /// The command's stdin is a pseudo-terminal of its own, to become its
    /// controlling terminal.
    #[serde(default)]
    pub terminal: bool,
}

/// What the init process reports on fd 3, one JSON line.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "status", rename_all = "snake_case")]
pub(crate) enum InitReport {
    Exited {
        code: i32,
    },
    Signaled {
        signal: i32,
    },
    SetupFailed {
        step: String,
        error: String,
    },
    /// A sandbox host is built and listening (see `host`).
    Ready,
}

pub(crate) fn bytes(s: &OsStr) -> Vec<u8> {
    s.as_bytes().to_vec()
}

pub(crate) fn os(b: &[u8]) -> OsString {
    OsString::from_vec(b.to_vec())
}

/// Reads a specification from the pipe `fd` to its end, then closes it.
pub(crate) fn read_spec<T: serde::de::DeserializeOwned>(fd: libc::c_int) -> Result<T, SetupError> {
    use std::io::Read;
    // SAFETY: `fd` was set up by the parent; this takes it over and closes it.
    let mut file = unsafe { <std::fs::File as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    let mut raw = Vec::new();
    file.read_to_end(&mut raw)
        .map_err(|e| fail("reading the specification", e))?;
    serde_json::from_slice(&raw).map_err(|e| fail("reading the specification", e))
}

impl From<SetupError> for InitReport {
    fn from(e: SetupError) -> InitReport {
        InitReport::SetupFailed {
            step: e.step,
            error: e.error,
        }
    }
}

/// The exit code of a sandbox process that ran `result`: its own, or 125
/// once the failed step is reported on `fd`.
pub(crate) fn code_or_report(result: Result<i32, SetupError>, fd: libc::c_int) -> i32 {
    result.unwrap_or_else(|e| {
        report_to(fd, &e.into());
        125
    })
}

/// Writes `bytes` to `fd`, which stays open.
pub(crate) fn write_to(fd: libc::c_int, bytes: &[u8]) {
    // SAFETY: `fd` was set up by the parent (or is closed, and the write
    // fails harmlessly); the File is forgotten, never closing it.
    let mut file = unsafe { <std::fs::File as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    let _ = file.write_all(bytes);
    std::mem::forget(file);
}

/// Writes one report line to `fd`.
pub(crate) fn report_to(fd: libc::c_int, r: &InitReport) {
    if let Ok(mut line) = serde_json::to_vec(r) {
        line.push(b'\n');
        write_to(fd, &line);
    }
}
