//! Running a command in a warm host (see [`crate::host`]).

use crate::{
    AFTER_ANSWER, CommandSpec, Echo, Ended, Exit, Gate, Held, Input, Outcome, OutputBudget,
    Recorder, SandboxError, Stop, Watchdog, create_log, not_interrupted, pipe_cloexec, sinks,
    stdin_of,
};
use crate::{confine, host, interrupt, terminal};
use std::io::{self};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

/// Why a warm sandbox did not take a command: a sandbox that refused it
/// before it came (its view is stale) answered and hung up, and its answer
/// says why; otherwise `error`, from handing the command over.
fn refused_before(sock: &OwnedFd, error: io::Error) -> SandboxError {
    let hung_up = matches!(error.raw_os_error(), Some(libc::EPIPE | libc::ECONNRESET));
    // Only from a peer that hung up: reading cannot wait then.
    let answer = hung_up.then(|| host::response(sock).ok()).flatten();
    answer
        .into_iter()
        .flat_map(|a| a.reports)
        .find_map(|report| match report {
            confine::InitReport::SetupFailed { step, error } => {
                Some(SandboxError::Setup { step, error })
            }
            _ => None,
        })
        .unwrap_or_else(|| SandboxError::Setup {
            step: "handing the command to the sandbox".into(),
            error: error.to_string(),
        })
}

/// Runs a confined command in its run's sandbox host (see [`host`]).
pub(crate) fn run_hosted(
    spec: &CommandSpec,
    sock: OwnedFd,
    request: &[u8],
    proxy_dir: Option<std::os::fd::BorrowedFd<'_>>,
    gate: Option<Gate>,
) -> Result<Outcome, SandboxError> {
    let stdout_file = create_log(&spec.stdout_path)?;
    let stderr_file = create_log(&spec.stderr_path)?;
    let sock = Arc::new(sock);
    // What the command's stdin, stdout and stderr are, and what airlock
    // reads its output from: two pipes, or its own terminal's leader.
    let pty = match spec.input {
        Input::Terminal => Some(terminal::open().map_err(SandboxError::Wait)?),
        _ => None,
    };
    let (reads, stdio): ([Option<OwnedFd>; 2], [OwnedFd; 3]) = match &pty {
        Some(pty) => {
            let side = || pty.follower.try_clone().map_err(SandboxError::Wait);
            let leader = pty.leader.try_clone().map_err(SandboxError::Wait)?;
            // One thread relays both ways: it must never wait on either.
            terminal::non_blocking(&leader).map_err(SandboxError::Wait)?;
            ([Some(leader), None], [side()?, side()?, side()?])
        }
        None => {
            let (out_read, out_write) = pipe_cloexec().map_err(SandboxError::Wait)?;
            let (err_read, err_write) = pipe_cloexec().map_err(SandboxError::Wait)?;
            let stdin = stdin_of(spec.input).map_err(SandboxError::Wait)?;
            (
                [Some(out_read), Some(err_read)],
                [stdin, out_write, err_write],
            )
        }
    };
    let key_leader = pty.map(|pty| pty.leader);
    let (out_sink, err_sink) = sinks(spec.echo);
    let budget = OutputBudget {
        used: AtomicU64::new(0),
        cap: spec.limits.output_bytes,
        exceeded: AtomicBool::new(false),
        stop: Stop::HangUp(sock.clone()),
    };
    let sent = match gate
        .map(|g| g())
        .unwrap_or(Ok(()))
        .and_then(|()| not_interrupted())
    {
        Err(reason) => Err(SandboxError::NotStarted { reason }),
        Ok(()) => host::send(
            &sock,
            request,
            stdio.each_ref().map(|fd| fd.as_fd()),
            proxy_dir,
        )
        .map_err(|e| refused_before(&sock, e)),
    };
    // The command holds the only write ends now (or nobody does): the
    // streams end when it and everything it started are gone.
    drop(stdio);
    let started = Instant::now();
    sent?;
    let deadline = spec.timeout.map(|limit| started + limit);
    // Echoing can block (whoever reads airlock's output stops reading):
    // then a watchdog keeps the time limit.
    let watchdog = match deadline {
        Some(deadline) if spec.echo != Echo::None => Some(Watchdog::start(sock.clone(), deadline)),
        _ => None,
    };
    let [out_read, err_read] = reads;
    let mut streams = [
        (
            out_read,
            Recorder::new(stdout_file, out_sink, spec.stdout_path.clone()),
        ),
        (
            err_read,
            Recorder::new(stderr_file, err_sink, spec.stderr_path.clone()),
        ),
    ];
    let raw_mode = key_leader.as_ref().and_then(|_| terminal::RawMode::enter());
    let mut keys = terminal::Keys::new();
    let mut response = None;
    let mut answered_at = None;
    let mut timed_out = false;
    let mut stopped = None;
    let mut buf = vec![0u8; 64 * 1024];
    // Both streams to their end and the leader's answer, on this thread:
    // threads to copy and to wait would cost more than the command `true`.
    while response.is_none() || streams.iter().any(|(pipe, _)| pipe.is_some()) {
        let now = Instant::now();
        if let Some(d) = deadline
            && !timed_out
            && now >= d
        {
            // Past the time limit: the leader stops the command and answers.
            timed_out = true;
            host::hang_up(&sock);
        }
        // Everything in the command's namespace is dead once it has
        // answered; a pipe still open then was passed to another command
        // (through the run's /tmp). What came within a moment is kept.
        if let Some(at) = answered_at
            && now >= at + AFTER_ANSWER
        {
            for (pipe, _) in streams.iter_mut() {
                *pipe = None;
            }
            break;
        }
        let until = match (answered_at, deadline) {
            (Some(at), _) => Some(at + AFTER_ANSWER),
            (None, Some(d)) if !timed_out => Some(d),
            _ => None,
        };
        let wait_ms = until.map_or(-1, |u| {
            u.saturating_duration_since(now)
                .as_micros()
                .div_ceil(1000)
                .min(i32::MAX as u128) as libc::c_int
        });
        let mut fds: Vec<libc::pollfd> = streams
            .iter()
            .map(|(pipe, _)| libc::pollfd {
                fd: pipe.as_ref().map_or(-1, |p| p.as_raw_fd()),
                events: libc::POLLIN,
                revents: 0,
            })
            .collect();
        fds.push(libc::pollfd {
            fd: if response.is_none() {
                sock.as_raw_fd()
            } else {
                -1
            },
            events: libc::POLLIN,
            revents: 0,
        });
        // airlock told to stop: the leader stops the command and answers.
        fds.push(libc::pollfd {
            fd: match interrupt::watch_fd() {
                Some(fd) if stopped.is_none() && response.is_none() => fd,
                _ => -1,
            },
            events: libc::POLLIN,
            revents: 0,
        });
        // Keystrokes, while the command may read them.
        if let Some(leader) = key_leader.as_ref().filter(|_| response.is_none()) {
            fds.extend(keys.pollfds(leader));
        }
        // libc: the poll set mixes descriptors known by number (interrupt, terminal).
        // SAFETY: valid pollfds (a negative fd is ignored).
        let rc = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, wait_ms) };
        if rc < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(SandboxError::Wait(e));
        }
        for ((pipe, recorder), pfd) in streams.iter_mut().zip(&fds) {
            if pfd.revents == 0 {
                continue;
            }
            let Some(reader) = pipe.as_ref() else {
                continue;
            };
            match rustix::io::read(reader, &mut buf[..]) {
                Ok(0) => *pipe = None,
                Ok(n) => recorder.record(&buf[..n], &budget)?,
                Err(rustix::io::Errno::INTR | rustix::io::Errno::AGAIN) => {}
                // A terminal's leader reads EIO once the command's side is
                // closed everywhere: its end.
                Err(_) => *pipe = None,
            }
        }
        if let (Some(leader), Some(ready)) = (&key_leader, fds.get(4..7)) {
            keys.relay(&[ready[0], ready[1], ready[2]], leader);
        }
        if fds[3].revents != 0 && stopped.is_none() {
            stopped = interrupt::received();
            host::hang_up(&sock);
        }
        if fds[2].revents != 0 {
            response = Some(host::response(&sock).map_err(|e| {
                // Reset before any answer: the sandbox closed with the
                // command unread, so it never ran; as a stale sandbox does.
                if e.kind() == io::ErrorKind::ConnectionReset {
                    SandboxError::Setup {
                        step: host::STALE_STEP.into(),
                        error: "the warm sandbox closed before it took the command".into(),
                    }
                } else {
                    SandboxError::Wait(e)
                }
            })?);
            answered_at = Some(Instant::now());
        }
    }
    let timed_out = timed_out || watchdog.is_some_and(Watchdog::fired);
    drop(raw_mode);
    let response = response.expect("the loop ends with the answer");
    let duration_ms = started.elapsed().as_millis() as u64;
    let [(_, out), (_, err)] = streams;
    let stdout = out.finish()?;
    let stderr = err.finish()?;
    let report = response
        .reports
        .iter()
        .find(|r| matches!(r, confine::InitReport::SetupFailed { .. }))
        .or_else(|| response.reports.last())
        .cloned();
    let ended = Ended {
        report,
        fallback: Exit::Signaled {
            signal: libc::SIGKILL,
        },
        timed_out,
        stopped,
        duration_ms,
        output_exceeded: budget.exceeded.load(Ordering::SeqCst),
    };
    let mut outcome = ended.outcome(spec, stdout, stderr, "confined".to_string())?;
    outcome.held = Some(Held { _connection: sock });
    Ok(outcome)
}
