//! Waiting for the command's end against its deadline, interruption and
//! output limit, and killing its process group.

use crate::{CommandSpec, Exit, Outcome, SandboxError, StreamDigest, file_size_limit, fmt_ms};
use crate::{confine, interrupt};
use std::io::{self};
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::Instant;

/// `Err` once airlock was told to stop: a command not started yet is not.
pub(crate) fn not_interrupted() -> Result<(), String> {
    match interrupt::received() {
        Some(signal) => Err(format!(
            "airlock received {} before it started",
            interrupt::name(signal)
        )),
        None => Ok(()),
    }
}

/// Waits until `done` closes (the command was reaped), calling `kill` at
/// the `deadline` or when airlock is told to stop. Whether the deadline
/// passed, and the signal airlock was stopped by.
pub(crate) fn wait_for_end(
    done: &OwnedFd,
    deadline: Option<Instant>,
    kill: impl Fn(),
) -> (bool, Option<i32>) {
    let mut timed_out = false;
    let mut stopped = None;
    loop {
        let until = deadline.filter(|_| !timed_out && stopped.is_none());
        let wait_ms = until.map_or(-1, |d| {
            d.saturating_duration_since(Instant::now())
                .as_micros()
                .div_ceil(1000)
                .min(i32::MAX as u128) as libc::c_int
        });
        let signals = interrupt::watch_fd().filter(|_| stopped.is_none());
        let mut fds = [
            libc::pollfd {
                fd: done.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: signals.unwrap_or(-1),
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        // SAFETY: two valid pollfds (a negative fd is ignored).
        let rc = unsafe { libc::poll(fds.as_mut_ptr(), 2, wait_ms) };
        if rc < 0 {
            if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
                continue;
            }
            // Cannot wait here: the waiter's join does.
            return (timed_out, stopped);
        }
        if fds[0].revents != 0 {
            return (timed_out, stopped);
        }
        if fds[1].revents != 0 && stopped.is_none() {
            stopped = interrupt::received();
            kill();
        }
        if until.is_some_and(|d| Instant::now() >= d) {
            timed_out = true;
            kill();
        }
    }
}

/// How a command ended, before it is told as an [`Outcome`].
pub(crate) struct Ended {
    /// What the sandbox reported, when it did.
    pub(crate) report: Option<confine::InitReport>,
    /// The status to go by when it did not.
    pub(crate) fallback: Exit,
    pub(crate) timed_out: bool,
    /// The signal airlock was stopped by, if it stopped the command.
    pub(crate) stopped: Option<i32>,
    pub(crate) duration_ms: u64,
    pub(crate) output_exceeded: bool,
}

impl Ended {
    pub(crate) fn outcome(
        self,
        spec: &CommandSpec,
        stdout: StreamDigest,
        stderr: StreamDigest,
        confinement: String,
    ) -> Result<Outcome, SandboxError> {
        if let Some(confine::InitReport::SetupFailed { step, error }) = &self.report {
            return Err(SandboxError::Setup {
                step: step.clone(),
                error: error.clone(),
            });
        }
        let exit = if let Some(signal) = self.stopped {
            Exit::Stopped { signal }
        } else if self.timed_out {
            Exit::TimedOut {
                after_ms: self.duration_ms,
            }
        } else {
            match self.report {
                Some(confine::InitReport::Exited { code }) => Exit::Exited { code },
                Some(confine::InitReport::Signaled { signal }) => Exit::Signaled { signal },
                _ => self.fallback,
            }
        };
        let limit_hit = if self.output_exceeded {
            Some(format!(
                "output limit of {} bytes: the command was killed",
                spec.limits.output_bytes.unwrap_or_default()
            ))
        } else if self.timed_out {
            spec.timeout
                .map(|t| format!("time limit of {}", fmt_ms(t.as_millis() as u64)))
        } else if exit.shell_code() == 128 + libc::SIGXFSZ {
            // Killed by SIGXFSZ, or a shell saying that its command was
            // (`sh -c 'cmd > file'`): the kernel sends it for a write past
            // the limit.
            spec.limits.file_size_bytes.map(file_size_limit)
        } else {
            None
        };
        Ok(Outcome {
            exit,
            duration_ms: self.duration_ms,
            stdout,
            stderr,
            limit_hit,
            confinement,
            held: None,
        })
    }
}

pub(crate) fn kill_group(pgid: libc::pid_t) {
    // A stale group id yields ESRCH: nothing left to kill.
    if let Some(group) = rustix::process::Pid::from_raw(pgid) {
        let _ = rustix::process::kill_process_group(group, rustix::process::Signal::KILL);
    }
}
