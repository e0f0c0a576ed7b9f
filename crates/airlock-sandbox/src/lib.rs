//! Runs one command for a run and reports what happened.
//!
//! Today's backend confines a command to its own process group with a clean
//! environment, a working directory, a wall-time limit that kills the whole
//! group, and output captured to files with their digests. Kernel-enforced
//! confinement (filesystem, network) plugs in behind [`run`] without changing
//! its callers.

use std::ffi::OsString;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use serde::Serialize;
use sha2::{Digest, Sha256};

/// What to run and how.
#[derive(Debug, Clone)]
pub struct CommandSpec {
    pub argv: Vec<OsString>,
    pub cwd: PathBuf,
    /// The complete environment of the child; nothing else is inherited.
    pub env: Vec<(OsString, OsString)>,
    pub timeout: Option<Duration>,
    pub stdout_path: PathBuf,
    pub stderr_path: PathBuf,
    /// Where to echo the child's output as it arrives, besides the log files.
    pub echo: Echo,
}

/// Where a child's output is echoed while it is recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Echo {
    /// Nothing is echoed.
    None,
    /// stdout to our stdout, stderr to our stderr.
    Passthrough,
    /// Both streams to our stderr (keeps our stdout free for JSON).
    Stderr,
}

/// How a command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Exit {
    Exited { code: i32 },
    Signaled { signal: i32 },
    TimedOut { after_ms: u64 },
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
        }
    }

    pub fn describe(&self) -> String {
        match *self {
            Exit::Exited { code } => format!("exit {code}"),
            Exit::Signaled { signal } => format!("killed by signal {signal}"),
            Exit::TimedOut { after_ms } => format!("timed out after {}", fmt_ms(after_ms)),
        }
    }
}

fn fmt_ms(ms: u64) -> String {
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
}

/// Runs the command to completion (or its time limit) and reports the outcome.
pub fn run(spec: &CommandSpec) -> Result<Outcome, SandboxError> {
    let (program, args) = spec.argv.split_first().ok_or(SandboxError::EmptyCommand)?;
    let stdout_file = create_log(&spec.stdout_path)?;
    let stderr_file = create_log(&spec.stderr_path)?;

    let mut command = Command::new(program);
    command
        .args(args)
        .current_dir(&spec.cwd)
        .env_clear()
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Own process group: the time limit kills everything the command started.
        .process_group(0);
    let started = Instant::now();
    let mut child = command.spawn().map_err(|source| SandboxError::Spawn {
        program: program.to_string_lossy().into_owned(),
        source,
    })?;
    let pgid = child.id() as libc::pid_t;

    let out_pipe = child.stdout.take().expect("stdout was piped");
    let err_pipe = child.stderr.take().expect("stderr was piped");
    let (out_sink, err_sink) = match spec.echo {
        Echo::None => (Sink::None, Sink::None),
        Echo::Passthrough => (Sink::Stdout, Sink::Stderr),
        Echo::Stderr => (Sink::Stderr, Sink::Stderr),
    };
    let out_thread = spawn_copier(out_pipe, stdout_file, out_sink, spec.stdout_path.clone());
    let err_thread = spawn_copier(err_pipe, stderr_file, err_sink, spec.stderr_path.clone());

    // Wait on a thread so the main thread can enforce the deadline.
    let (tx, rx) = mpsc::channel();
    let waiter = thread::spawn(move || {
        let status = child.wait();
        let _ = tx.send(());
        status
    });
    let mut timed_out = false;
    match spec.timeout {
        Some(limit) => {
            if rx.recv_timeout(limit).is_err() {
                timed_out = true;
                kill_group(pgid);
            }
        }
        None => {
            let _ = rx.recv();
        }
    }
    let status = waiter
        .join()
        .map_err(|_| SandboxError::Wait(io::Error::other("waiter thread panicked")))?
        .map_err(SandboxError::Wait)?;
    // The leader is gone; anything it left behind in its group goes too, so
    // that a background child cannot hold the pipes open (or outlive the run).
    kill_group(pgid);
    let duration_ms = started.elapsed().as_millis() as u64;
    let stdout = join_copier(out_thread)?;
    let stderr = join_copier(err_thread)?;

    let exit = if timed_out {
        Exit::TimedOut {
            after_ms: duration_ms,
        }
    } else if let Some(code) = status.code() {
        Exit::Exited { code }
    } else {
        Exit::Signaled {
            signal: status.signal().unwrap_or(0),
        }
    };
    Ok(Outcome {
        exit,
        duration_ms,
        stdout,
        stderr,
    })
}

fn create_log(path: &Path) -> Result<File, SandboxError> {
    File::create(path).map_err(|source| SandboxError::Log {
        path: path.to_path_buf(),
        source,
    })
}

fn kill_group(pgid: libc::pid_t) {
    // SAFETY: killpg only sends a signal; a stale group id yields ESRCH.
    unsafe {
        libc::killpg(pgid, libc::SIGKILL);
    }
}

#[derive(Clone, Copy)]
enum Sink {
    None,
    Stdout,
    Stderr,
}

type Copier = thread::JoinHandle<Result<StreamDigest, SandboxError>>;

fn spawn_copier(
    mut pipe: impl Read + Send + 'static,
    mut file: File,
    sink: Sink,
    path: PathBuf,
) -> Copier {
    thread::spawn(move || {
        let mut hasher = Sha256::new();
        let mut size = 0u64;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match pipe.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            };
            let chunk = &buf[..n];
            hasher.update(chunk);
            size += n as u64;
            file.write_all(chunk).map_err(|source| SandboxError::Log {
                path: path.clone(),
                source,
            })?;
            // Echo failures (a closed terminal) must not lose the record.
            let _ = match sink {
                Sink::None => Ok(()),
                Sink::Stdout => io::stdout()
                    .write_all(chunk)
                    .and_then(|_| io::stdout().flush()),
                Sink::Stderr => io::stderr().write_all(chunk),
            };
        }
        file.flush()
            .map_err(|source| SandboxError::Log { path, source })?;
        Ok(StreamDigest {
            sha256: hex::encode(hasher.finalize()),
            size,
        })
    })
}

fn join_copier(handle: Copier) -> Result<StreamDigest, SandboxError> {
    handle
        .join()
        .map_err(|_| SandboxError::Wait(io::Error::other("output thread panicked")))?
}
