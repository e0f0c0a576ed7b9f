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
    /// The only way out is this proxy, through a bridge on the sandbox's
    /// loopback (see [`crate::Egress`]); `network` is then false.
    #[serde(default)]
    pub egress: Option<EgressSpec>,
}

/// Where the bridge relays to: the proxy's socket, as the directory it is
/// in and its name there (opened before the sandbox's root replaces the
/// host's, then connected to relative to it), and the port it listens on.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct EgressSpec {
    pub dir: Vec<u8>,
    pub name: Vec<u8>,
    pub port: u16,
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

#[cfg(test)]
mod tests {
    use super::{EgressSpec, InitReport, InitSpec, read_spec, report_to};
    use std::io::{Read, Write};
    use std::os::fd::{AsRawFd, IntoRawFd};

    fn spec() -> InitSpec {
        InitSpec {
            // Not UTF-8: names travel as bytes and must survive as they are.
            argv: vec![b"sh".to_vec(), vec![b'-', b'c', 0xff, 0xfe]],
            cwd: b"/work/\xc3\x28tree".to_vec(),
            env: vec![(b"PATH".to_vec(), b"/usr/bin".to_vec())],
            binds: vec![(b"/src".to_vec(), b"/dst".to_vec())],
            read_only: vec![(b"/ro".to_vec(), b"/ro".to_vec())],
            hidden: vec![b"/home/u/.ssh".to_vec()],
            network: false,
            root: b"/tmp/root".to_vec(),
            memory_bytes: Some(1 << 30),
            processes: Some(64),
            file_size_bytes: None,
            weaker: false,
            gate: true,
            terminal: false,
            egress: Some(EgressSpec {
                dir: b"/run/user/1/\xff".to_vec(),
                name: b"egress.sock".to_vec(),
                port: 3128,
            }),
        }
    }

    /// Sends `bytes` through a pipe and reads them back as the init process
    /// reads its specification.
    fn through_pipe(bytes: &[u8]) -> Result<InitSpec, super::SetupError> {
        let (read, write) = crate::pipe_cloexec().unwrap();
        let mut write = std::fs::File::from(write);
        write.write_all(bytes).unwrap();
        drop(write);
        read_spec(read.into_raw_fd())
    }

    #[test]
    fn a_specification_survives_the_pipe_byte_for_byte() {
        let sent = spec();
        let got = through_pipe(&serde_json::to_vec(&sent).unwrap()).unwrap();
        assert_eq!(format!("{got:?}"), format!("{sent:?}"));
    }

    /// A specification written before `read_only`, `gate`, `terminal`,
    /// `file_size_bytes` and `egress` existed still reads, with those off.
    #[test]
    fn fields_added_later_default_when_absent() {
        let mut value = serde_json::to_value(spec()).unwrap();
        let object = value.as_object_mut().unwrap();
        for later in ["read_only", "gate", "terminal", "file_size_bytes", "egress"] {
            object.remove(later);
        }
        let got = through_pipe(&serde_json::to_vec(&value).unwrap()).unwrap();
        assert!(got.read_only.is_empty() && !got.gate && !got.terminal);
        assert_eq!(got.file_size_bytes, None);
        assert_eq!(got.egress, None);
    }

    #[test]
    fn a_malformed_specification_is_refused_as_a_named_step() {
        let whole = serde_json::to_vec(&spec()).unwrap();
        let mut missing = serde_json::to_value(spec()).unwrap();
        missing.as_object_mut().unwrap().remove("argv");
        for bad in [
            b"".to_vec(),
            b"{not json".to_vec(),
            whole[..whole.len() / 2].to_vec(),
            br#"{"argv": "sh"}"#.to_vec(),
            serde_json::to_vec(&missing).unwrap(),
        ] {
            let error = through_pipe(&bad).unwrap_err();
            assert_eq!(error.step, "reading the specification");
            assert!(!error.error.is_empty());
        }
    }

    /// Reports travel as one JSON line each, tagged by `status`, which is
    /// what `read_report` and the warm host parse back.
    #[test]
    fn reports_are_one_tagged_json_line_each() {
        let reports = [
            InitReport::Exited { code: 3 },
            InitReport::Signaled { signal: 9 },
            InitReport::SetupFailed {
                step: "mounting /proc".into(),
                error: "Operation not permitted".into(),
            },
            InitReport::Ready,
        ];
        let (read, write) = crate::pipe_cloexec().unwrap();
        for r in &reports {
            report_to(write.as_raw_fd(), r);
        }
        drop(write);
        let mut text = String::new();
        std::fs::File::from(read).read_to_string(&mut text).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], r#"{"status":"exited","code":3}"#);
        assert_eq!(lines[3], r#"{"status":"ready"}"#);
        let back: Vec<InitReport> = lines
            .iter()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(back, reports);
        for bad in [r#"{"status":"exploded"}"#, r#"{"code":3}"#, "exited"] {
            assert!(serde_json::from_str::<InitReport>(bad).is_err(), "{bad}");
        }
    }
}
