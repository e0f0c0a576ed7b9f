//! Runs one command for a run and reports what happened.
//!
//! Every command gets a clean environment, its own process group, a wall-time
//! limit that kills everything it started, an output cap, and its output
//! captured to files with their digests. With a [`Confinement`], the kernel
//! confines it too (see [`confine`]): a read-only view of the system with
//! secrets hidden, writes only to granted paths, no network but a private
//! loopback, a pid namespace that dies with the command, no privileges.

pub mod ahead;
pub mod confine;
pub mod doctor;
pub mod host;
pub mod interrupt;
pub mod private;
mod terminal;

use std::ffi::OsString;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
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
    /// What the command reads on its stdin.
    pub input: Input,
    /// Kernel confinement; `None` runs the command unconfined.
    pub confinement: Option<Confinement>,
    pub limits: Limits,
}

/// How the kernel confines a command.
#[derive(Debug, Clone)]
pub struct Confinement {
    /// The program that sets the sandbox up when started with
    /// [`confine::INIT_ARG`] (the airlock binary itself).
    pub init_program: PathBuf,
    /// Paths the command may write: (path outside, path inside). Everything
    /// else is read-only.
    pub writable: Vec<(PathBuf, PathBuf)>,
    /// Paths visible read-only again below a hidden path: (outside, inside).
    pub read_only: Vec<(PathBuf, PathBuf)>,
    /// Paths hidden from the command (secrets, other runs, the ledger).
    pub hidden: Vec<PathBuf>,
    /// Whether the host network is reachable. Without it the command has a
    /// loopback of its own and nothing else.
    pub network: bool,
    /// An empty directory the sandbox's root is assembled on.
    pub root: PathBuf,
    /// Accept the protections that work without namespaces (Landlock,
    /// seccomp, no_new_privs) when namespaces are unavailable.
    pub weaker: bool,
    /// Keep the sandbox warm between commands (see [`host`]); `None` builds
    /// one per command.
    pub host: Option<host::HostSettings>,
    /// Hidden paths looked up ahead of the command ([`ahead`]).
    pub ahead: Option<Arc<ahead::LookAhead>>,
}

/// Resource limits; `None` means no limit.
#[derive(Debug, Clone, Default)]
pub struct Limits {
    /// Bytes of stdout and stderr together; past it the command is killed.
    pub output_bytes: Option<u64>,
    /// Address space of each process (RLIMIT_AS).
    pub memory_bytes: Option<u64>,
    /// Processes of the command's user in the sandbox (RLIMIT_NPROC).
    pub processes: Option<u64>,
    /// Size of any file a process writes (RLIMIT_FSIZE): a write past it
    /// fails with `EFBIG`, after `SIGXFSZ`, which ends a process that does
    /// not ignore it.
    pub file_size_bytes: Option<u64>,
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

/// What a command reads on its stdin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input {
    /// `/dev/null`: end of file at once.
    Null,
    /// airlock's own stdin, passed as it is (a pipe or a file). Never give
    /// it a terminal: a command holding the user's terminal could change
    /// its settings or, where the kernel allows, push keystrokes into it.
    Inherit,
    /// airlock's stdin is the user's terminal: the command gets a
    /// pseudo-terminal of its own as stdin, stdout, stderr and controlling
    /// terminal, which airlock relays (see `terminal`). Both streams are
    /// recorded as stdout then.
    Terminal,
}

impl Input {
    /// What an interactive caller gives its command: a terminal of its own
    /// when airlock runs in the foreground of a terminal that its output
    /// goes to too (`output_is_terminal`); nothing when it runs at one
    /// otherwise (in the background, or writing to a file); else its stdin.
    pub fn of_stdin(output_is_terminal: bool) -> Input {
        // SAFETY: fd 0 is only looked at.
        let stdin = unsafe { std::os::fd::BorrowedFd::borrow_raw(0) };
        if !rustix::termios::isatty(stdin) {
            Input::Inherit
        } else if output_is_terminal && terminal::in_the_foreground() {
            Input::Terminal
        } else {
            Input::Null
        }
    }
}

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
    _connection: Arc<OwnedFd>,
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

/// What a confined command waits for right before it starts (see
/// [`run_gated`]): `Ok` lets it start, `Err(reason)` stops it. May be called
/// more than once (a retry with the weaker sandbox); it must answer the same.
pub type Gate<'a> = &'a mut dyn FnMut() -> Result<(), String>;

/// Runs the command to completion (or its time limit) and reports the outcome.
pub fn run(spec: &CommandSpec) -> Result<Outcome, SandboxError> {
    run_gated(spec, None)
}

/// [`run`], with the command held back until `gate` lets it start.
///
/// A confined command's sandbox is built while `gate` runs (on the caller's
/// thread): the command's process waits on a pipe right before its `execve`,
/// after every confinement step, for the byte written when `gate` returns
/// `Ok`. When `gate` returns `Err`, the pipe closes without that byte, the
/// command is never executed, and the result is [`SandboxError::NotStarted`].
/// The time limit counts from the moment the gate opens. An unconfined
/// command simply starts after `gate`.
pub fn run_gated(spec: &CommandSpec, mut gate: Option<Gate>) -> Result<Outcome, SandboxError> {
    if spec.argv.is_empty() {
        return Err(SandboxError::EmptyCommand);
    }
    if spec.confinement.is_none()
        && let Some(gate) = gate.take()
    {
        gate().map_err(|reason| SandboxError::NotStarted { reason })?;
    }
    // What was looked up ahead, unless something changed since.
    let checked;
    let spec = match spec.confinement.as_ref().and_then(|c| c.ahead.as_deref()) {
        Some(ahead) if !ahead.still_holds() => {
            let mut fresh = spec.clone();
            if let Some(c) = fresh.confinement.as_mut() {
                c.ahead = None;
            }
            checked = fresh;
            &checked
        }
        _ => spec,
    };
    if let Some(c) = &spec.confinement
        && !c.weaker
        && let Some(settings) = &c.host
    {
        let init = init_spec(spec, c, false);
        if let Ok(request) = host::encode(&host::Request::of(&init))
            && request.len() <= host::MAX_REQUEST
        {
            // A warm sandbox that finds a path it hid replaced since (a
            // socket bound again under the same name) refuses before the
            // command runs, and ends: the next connection gets a sandbox
            // that hides it, so one more try is all it takes.
            for attempt in 0..2 {
                // Looked up afresh the second time: what was looked up ahead
                // named the stale sandbox.
                let fresh;
                let c = if attempt == 0 {
                    c
                } else {
                    fresh = Confinement {
                        ahead: None,
                        ..c.clone()
                    };
                    &fresh
                };
                let Some(sock) = host::connect(c, settings, &init)? else {
                    break;
                };
                let mut through = || gate.as_mut().map_or(Ok(()), |g| g());
                let ran = run_hosted(spec, sock, &request, Some(&mut through));
                match ran {
                    Err(SandboxError::Setup { step, .. })
                        if attempt == 0 && step == host::STALE_STEP => {}
                    ran => return ran,
                }
            }
        }
    }
    let stdout_file = create_log(&spec.stdout_path)?;
    let stderr_file = create_log(&spec.stderr_path)?;
    let mut gate_writer = None;
    let mut spec_pipe = None;
    let (mut command, report_pipe, confinement) = match &spec.confinement {
        None => (unconfined_command(spec), None, "unconfined".to_string()),
        Some(c) => {
            let (cmd, pipe, writer, specification) = confined_command(spec, c, gate.is_some())?;
            gate_writer = writer;
            spec_pipe = Some(specification);
            let words = if c.weaker {
                "confined (weaker: Landlock, seccomp, no privileges; no namespaces)"
            } else {
                "confined"
            };
            (cmd, Some(pipe), words.to_string())
        }
    };
    let pty = match spec.input {
        Input::Terminal => Some(terminal::open().map_err(SandboxError::Wait)?),
        _ => None,
    };
    match &pty {
        Some(pty) => {
            let side = || pty.follower.try_clone().map_err(SandboxError::Wait);
            command
                .stdin(Stdio::from(side()?))
                .stdout(Stdio::from(side()?))
                .stderr(Stdio::from(side()?));
        }
        None => {
            command
                .stdin(Stdio::from(
                    stdin_of(spec.input).map_err(SandboxError::Wait)?,
                ))
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
        }
    }
    // A session of its own, so its own process group: the time limit kills
    // everything the command started; and no controlling terminal, so
    // `/dev/tty` is not the user's.
    // SAFETY: setsid is async-signal-safe.
    unsafe {
        command.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    let mut started = Instant::now();
    let program = spec.argv[0].to_string_lossy().into_owned();
    let spawned = command.spawn();
    if spawned.is_ok()
        && let Some(specification) = spec_pipe
    {
        specification.send();
    }
    // The parent's copy of the report pipe's write end must close, or reading
    // it would never end.
    let report_reader = report_pipe.map(|(read, write)| {
        drop(write);
        read
    });
    // Likewise the gate's read end: the command holds the only one, so a
    // write after the sandbox died fails instead of filling a pipe.
    let gate_writer = gate_writer.map(|(read, write)| {
        drop(read);
        write
    });
    // Our copies of the command's terminal go: the leader reads its end
    // once the command and everything it started are gone.
    drop(command);
    let mut child = spawned.map_err(|source| SandboxError::Spawn { program, source })?;
    let pgid = child.id() as libc::pid_t;

    let out_pipe: Box<dyn Read + Send> = match &pty {
        Some(pty) => Box::new(File::from(
            pty.leader.try_clone().map_err(SandboxError::Wait)?,
        )),
        None => Box::new(child.stdout.take().expect("stdout was piped")),
    };
    let err_pipe = child.stderr.take();
    let (out_sink, err_sink) = sinks(spec.echo);
    let budget = Arc::new(OutputBudget {
        used: AtomicU64::new(0),
        cap: spec.limits.output_bytes,
        exceeded: AtomicBool::new(false),
        stop: Stop::Group(pgid),
    });
    let out_thread = spawn_copier(
        out_pipe,
        stdout_file,
        out_sink,
        spec.stdout_path.clone(),
        budget.clone(),
    );
    let err_thread = match err_pipe {
        Some(pipe) => spawn_copier(
            pipe,
            stderr_file,
            err_sink,
            spec.stderr_path.clone(),
            budget.clone(),
        ),
        None => spawn_copier(
            io::empty(),
            stderr_file,
            err_sink,
            spec.stderr_path.clone(),
            budget.clone(),
        ),
    };
    // Keystrokes to the command's terminal, on a thread of their own.
    let raw_mode = pty.as_ref().and_then(|_| terminal::RawMode::enter());
    let keys = match &pty {
        Some(pty) => Some(spawn_keys(
            pty.leader.try_clone().map_err(SandboxError::Wait)?,
        )?),
        None => None,
    };
    drop(pty);

    // Wait on a thread so the main thread can enforce the deadline; the
    // thread closes `done` once the command's process is reaped.
    let (done, done_write) = pipe_cloexec().map_err(SandboxError::Wait)?;
    let waiter = thread::spawn(move || {
        let status = child.wait();
        drop(done_write);
        status
    });
    // The sandbox is being built meanwhile; the command starts when the gate
    // opens, and its time limit starts with it.
    let mut refused = None;
    if let (Some(gate), Some(writer)) = (gate, gate_writer) {
        match gate().and_then(|()| not_interrupted()) {
            Ok(()) => {
                // A failed write (the sandbox died first) is reported by the
                // init process; there is nothing to add here.
                let _ = (&writer).write_all(b"\x01");
                started = Instant::now();
            }
            Err(reason) => refused = Some(reason),
        }
        // Closing without the byte is what stops the command.
        drop(writer);
    }
    let deadline = spec.timeout.map(|limit| Instant::now() + limit);
    let (timed_out, stopped) = wait_for_end(&done, deadline, || kill_group(pgid));
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
    if let Some((stop, thread)) = keys {
        drop(stop);
        let _ = thread.join();
    }
    drop(raw_mode);

    let report = report_reader.and_then(read_report);
    if let Some(reason) = refused {
        return Err(SandboxError::NotStarted { reason });
    }
    let fallback = match (status.code(), status.signal()) {
        (Some(code), _) => Exit::Exited { code },
        (None, signal) => Exit::Signaled {
            signal: signal.unwrap_or(0),
        },
    };
    let ended = Ended {
        report,
        fallback,
        timed_out,
        stopped,
        duration_ms,
        output_exceeded: budget.exceeded.load(Ordering::SeqCst),
    };
    ended.outcome(spec, stdout, stderr, confinement)
}

/// Copies keystrokes to the command's terminal (`leader`) until `stop`,
/// the returned pipe's write end, closes.
fn spawn_keys(leader: OwnedFd) -> Result<(OwnedFd, thread::JoinHandle<()>), SandboxError> {
    let (stopped, stop) = pipe_cloexec().map_err(SandboxError::Wait)?;
    let thread = thread::spawn(move || {
        let mut keys = terminal::Keys::new();
        loop {
            let [user, room, resized] = keys.pollfds(&leader);
            let mut fds = [
                user,
                room,
                resized,
                libc::pollfd {
                    fd: stopped.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                },
            ];
            // SAFETY: four valid pollfds (a negative fd is ignored).
            let rc = unsafe { libc::poll(fds.as_mut_ptr(), 4, -1) };
            if rc < 0 {
                if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return;
            }
            if fds[3].revents != 0 {
                return;
            }
            keys.relay(&[fds[0], fds[1], fds[2]], &leader);
        }
    });
    Ok((stop, thread))
}

/// The command's stdin: `/dev/null`, or a copy of airlock's own (which is
/// `/dev/null` too when airlock has none).
fn stdin_of(input: Input) -> io::Result<OwnedFd> {
    if input == Input::Inherit {
        // SAFETY: duplicating fd 0 into a fresh descriptor we then own.
        let fd = unsafe { libc::fcntl(0, libc::F_DUPFD_CLOEXEC, 3) };
        if fd >= 0 {
            // SAFETY: just made.
            return Ok(unsafe { OwnedFd::from_raw_fd(fd) });
        }
    }
    Ok(File::open("/dev/null")?.into())
}

/// `Err` once airlock was told to stop: a command not started yet is not.
fn not_interrupted() -> Result<(), String> {
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
fn wait_for_end(done: &OwnedFd, deadline: Option<Instant>, kill: impl Fn()) -> (bool, Option<i32>) {
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
struct Ended {
    /// What the sandbox reported, when it did.
    report: Option<confine::InitReport>,
    /// The status to go by when it did not.
    fallback: Exit,
    timed_out: bool,
    /// The signal airlock was stopped by, if it stopped the command.
    stopped: Option<i32>,
    duration_ms: u64,
    output_exceeded: bool,
}

impl Ended {
    fn outcome(
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
fn run_hosted(
    spec: &CommandSpec,
    sock: OwnedFd,
    request: &[u8],
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
        Ok(()) => host::send(&sock, request, stdio.each_ref().map(|fd| fd.as_raw_fd()))
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
            host::hang_up(sock.as_raw_fd());
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
            // SAFETY: reading into our buffer from our pipe.
            let n = unsafe { libc::read(reader.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            match n {
                0 => *pipe = None,
                n if n > 0 => recorder.record(&buf[..n as usize], &budget)?,
                _ if matches!(
                    io::Error::last_os_error().kind(),
                    io::ErrorKind::Interrupted | io::ErrorKind::WouldBlock
                ) => {}
                // A terminal's leader reads EIO once the command's side is
                // closed everywhere: its end.
                _ => *pipe = None,
            }
        }
        if let (Some(leader), Some(ready)) = (&key_leader, fds.get(4..7)) {
            keys.relay(&[ready[0], ready[1], ready[2]], leader);
        }
        if fds[3].revents != 0 && stopped.is_none() {
            stopped = interrupt::received();
            host::hang_up(sock.as_raw_fd());
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

fn sinks(echo: Echo) -> (Sink, Sink) {
    match echo {
        Echo::None => (Sink::None, Sink::None),
        Echo::Passthrough => (Sink::Stdout, Sink::Stderr),
        Echo::Stderr => (Sink::Stderr, Sink::Stderr),
    }
}

fn unconfined_command(spec: &CommandSpec) -> Command {
    let mut command = Command::new(&spec.argv[0]);
    command
        .args(&spec.argv[1..])
        .current_dir(&spec.cwd)
        .env_clear()
        .envs(spec.env.iter().map(|(k, v)| (k, v)));
    command
}

type ReportPipe = (File, OwnedFd);
/// The gate pipe: (read end, for the command; write end, kept by us).
type GatePipe = (OwnedFd, File);

/// A pipe whose ends are both close-on-exec.
pub(crate) fn pipe_cloexec() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: pipe2 fills two descriptors we then own.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fresh descriptors from pipe2.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// `<init program> __sandbox-init`, with a pipe on fd 3 for its report, the
/// specification's pipe on fd 5 (see [`SpecPipe`]) and, when `gated`, a pipe
/// on fd 4 it waits on before starting the command.
fn confined_command(
    spec: &CommandSpec,
    c: &Confinement,
    gated: bool,
) -> Result<(Command, ReportPipe, Option<GatePipe>, SpecPipe), SandboxError> {
    let init = init_spec(spec, c, gated);
    let json = serde_json::to_vec(&init).map_err(|e| SandboxError::Setup {
        step: "encoding the sandbox specification".into(),
        error: e.to_string(),
    })?;
    let (read, write) = pipe_cloexec().map_err(SandboxError::Wait)?;
    let read = File::from(read);
    let write_fd = write.as_raw_fd();
    let gate = if gated {
        let (read, write) = pipe_cloexec().map_err(SandboxError::Wait)?;
        Some((read, File::from(write)))
    } else {
        None
    };
    let gate_fd = gate.as_ref().map(|(read, _)| read.as_raw_fd());
    let (spec_read, spec_write) = pipe_cloexec().map_err(SandboxError::Wait)?;
    let spec_fd = spec_read.as_raw_fd();
    let mut command = Command::new(&c.init_program);
    command.arg(confine::INIT_ARG).current_dir("/").env_clear();
    // SAFETY: dup2 and fcntl are async-signal-safe. The init marks fds 3
    // and 4 close-on-exec itself before anything untrusted runs.
    unsafe {
        command.pre_exec(move || {
            // Copy both above the target numbers first: dup2 onto the same
            // number would keep close-on-exec, and one target could be the
            // other's source.
            let high = |fd: libc::c_int| {
                let copy = libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 10);
                if copy < 0 {
                    Err(io::Error::last_os_error())
                } else {
                    Ok(copy)
                }
            };
            let report = high(write_fd)?;
            let gate = gate_fd.map(high).transpose()?;
            let spec = high(spec_fd)?;
            if libc::dup2(report, confine::RESULT_FD) < 0 || libc::dup2(spec, confine::SPEC_FD) < 0
            {
                return Err(io::Error::last_os_error());
            }
            if let Some(gate) = gate
                && libc::dup2(gate, confine::GATE_FD) < 0
            {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let spec_pipe = SpecPipe {
        read: spec_read,
        write: File::from(spec_write),
        json,
    };
    Ok((command, (read, write), gate, spec_pipe))
}

/// The specification on its way to the init process.
struct SpecPipe {
    /// The init's end, passed as [`confine::SPEC_FD`].
    read: OwnedFd,
    write: File,
    json: Vec<u8>,
}

impl SpecPipe {
    /// Once the init is started: our copy of its end closes, and the
    /// specification goes down the pipe (the init reads it first thing; one
    /// that died first is reported through its report pipe).
    fn send(self) {
        drop(self.read);
        let mut write = self.write;
        let _ = write.write_all(&self.json);
    }
}

/// What the sandbox's init (or host) is told to build and run.
fn init_spec(spec: &CommandSpec, c: &Confinement, gated: bool) -> confine::InitSpec {
    let mut real_paths = c.ahead.as_ref().map(|a| a.real.clone()).unwrap_or_default();
    confine::InitSpec {
        argv: spec.argv.iter().map(|a| confine::bytes(a)).collect(),
        cwd: confine::bytes(spec.cwd.as_os_str()),
        env: spec
            .env
            .iter()
            .map(|(k, v)| (confine::bytes(k), confine::bytes(v)))
            .collect(),
        binds: c
            .writable
            .iter()
            .map(|(outside, inside)| {
                (
                    confine::bytes(outside.as_os_str()),
                    confine::bytes(inside.as_os_str()),
                )
            })
            .collect(),
        read_only: c
            .read_only
            .iter()
            .map(|(outside, inside)| {
                (
                    confine::bytes(outside.as_os_str()),
                    confine::bytes(inside.as_os_str()),
                )
            })
            .collect(),
        // A hidden path that is (or passes through) a link is hidden where
        // the link leads too: a link cannot be mounted over, and what it
        // points to would otherwise be readable by its real name.
        hidden: c
            .hidden
            .iter()
            .flat_map(|h| {
                let real = real_paths.real(h).filter(|r| r != h);
                std::iter::once(h.clone()).chain(real)
            })
            .map(|h| confine::bytes(h.as_os_str()))
            .collect(),
        network: c.network,
        root: confine::bytes(c.root.as_os_str()),
        memory_bytes: spec.limits.memory_bytes,
        processes: spec.limits.processes,
        file_size_bytes: spec.limits.file_size_bytes,
        weaker: c.weaker,
        gate: gated,
        terminal: spec.input == Input::Terminal,
    }
}

fn read_report(mut reader: File) -> Option<confine::InitReport> {
    let mut text = String::new();
    let _ = reader.read_to_string(&mut text);
    text.lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .next()
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

/// Output counted across both streams; past the cap the group is killed.
struct OutputBudget {
    used: AtomicU64,
    cap: Option<u64>,
    exceeded: AtomicBool,
    stop: Stop,
}

/// How to kill a command and everything it started.
enum Stop {
    /// Its process group (and the sandbox's pid namespace dies with its init).
    Group(libc::pid_t),
    /// Hang up on the sandbox host's leader, which kills the command's pid
    /// namespace.
    HangUp(Arc<OwnedFd>),
}

impl Stop {
    fn now(&self) {
        match self {
            Stop::Group(pgid) => kill_group(*pgid),
            Stop::HangUp(sock) => host::hang_up(sock.as_raw_fd()),
        }
    }
}

/// How long a warm sandbox's command may keep writing once it has
/// answered: only a pipe passed to another command is still open then.
const AFTER_ANSWER: Duration = Duration::from_millis(250);

/// Stops a command in a warm sandbox at its time limit, whatever the
/// thread recording its output is doing.
struct Watchdog {
    stop: mpsc::Sender<()>,
    fired: Arc<AtomicBool>,
}

impl Watchdog {
    fn start(sock: Arc<OwnedFd>, deadline: Instant) -> Watchdog {
        let (stop, stopped) = mpsc::channel::<()>();
        let fired = Arc::new(AtomicBool::new(false));
        let flag = fired.clone();
        thread::spawn(move || {
            let left = deadline.saturating_duration_since(Instant::now());
            if let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(left) {
                flag.store(true, Ordering::SeqCst);
                host::hang_up(sock.as_raw_fd());
            }
        });
        Watchdog { stop, fired }
    }

    /// Whether it stopped the command; it stands down either way.
    fn fired(self) -> bool {
        let _ = self.stop.send(());
        self.fired.load(Ordering::SeqCst)
    }
}

/// One output stream as it is recorded: its log, its digest, its echo.
struct Recorder {
    file: File,
    sink: Sink,
    path: PathBuf,
    hasher: Sha256,
    size: u64,
}

impl Recorder {
    fn new(file: File, sink: Sink, path: PathBuf) -> Recorder {
        Recorder {
            file,
            sink,
            path,
            hasher: Sha256::new(),
            size: 0,
        }
    }

    /// Records what the command wrote, as far as the output budget goes;
    /// the first chunk past it stops the command.
    fn record(&mut self, chunk: &[u8], budget: &OutputBudget) -> Result<(), SandboxError> {
        let mut chunk = chunk;
        if let Some(cap) = budget.cap {
            let n = chunk.len() as u64;
            let before = budget.used.fetch_add(n, Ordering::SeqCst);
            if before + n > cap {
                // Keep what fits, then stop the flood at its source.
                chunk = &chunk[..cap.saturating_sub(before).min(n) as usize];
                if !budget.exceeded.swap(true, Ordering::SeqCst) {
                    budget.stop.now();
                }
            }
        }
        if chunk.is_empty() {
            return Ok(());
        }
        self.hasher.update(chunk);
        self.size += chunk.len() as u64;
        self.file
            .write_all(chunk)
            .map_err(|source| SandboxError::Log {
                path: self.path.clone(),
                source,
            })?;
        // Echo failures (a closed terminal) must not lose the record.
        let _ = match self.sink {
            Sink::None => Ok(()),
            Sink::Stdout => io::stdout()
                .write_all(chunk)
                .and_then(|_| io::stdout().flush()),
            Sink::Stderr => io::stderr().write_all(chunk),
        };
        Ok(())
    }

    fn finish(mut self) -> Result<StreamDigest, SandboxError> {
        self.file.flush().map_err(|source| SandboxError::Log {
            path: self.path,
            source,
        })?;
        Ok(StreamDigest {
            sha256: hex::encode(self.hasher.finalize()),
            size: self.size,
        })
    }
}

fn spawn_copier(
    mut pipe: impl Read + Send + 'static,
    file: File,
    sink: Sink,
    path: PathBuf,
    budget: Arc<OutputBudget>,
) -> Copier {
    thread::spawn(move || {
        let mut recorder = Recorder::new(file, sink, path);
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match pipe.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            };
            recorder.record(&buf[..n], &budget)?;
        }
        recorder.finish()
    })
}

fn join_copier(handle: Copier) -> Result<StreamDigest, SandboxError> {
    handle
        .join()
        .map_err(|_| SandboxError::Wait(io::Error::other("output thread panicked")))?
}
