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

mod hosted;
mod launch;
mod outcome;
mod output;
mod spec;
mod terminal;
mod wait;

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::AsFd;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::Instant;

pub use outcome::Exit;
pub use outcome::Held;
pub use outcome::Outcome;
pub use outcome::SandboxError;
pub use outcome::StreamDigest;
pub use outcome::file_size_limit;
pub use spec::BRIDGE_PORT;
pub use spec::CommandSpec;
pub use spec::Confinement;
pub use spec::Echo;
pub use spec::Egress;
pub use spec::Gate;
pub use spec::Input;
pub use spec::Limits;

pub(crate) use hosted::run_hosted;
pub(crate) use launch::confined_command;
pub(crate) use launch::init_spec;
pub(crate) use launch::pipe_cloexec;
pub(crate) use launch::read_report;
pub(crate) use launch::spawn_keys;
pub(crate) use launch::stdin_of;
pub(crate) use launch::unconfined_command;
pub(crate) use outcome::fmt_ms;
pub(crate) use output::AFTER_ANSWER;
pub(crate) use output::OutputBudget;
pub(crate) use output::Recorder;
pub(crate) use output::Stop;
pub(crate) use output::Watchdog;
pub(crate) use output::create_log;
pub(crate) use output::join_copier;
pub(crate) use output::sinks;
pub(crate) use output::spawn_copier;
pub(crate) use wait::Ended;
pub(crate) use wait::kill_group;
pub(crate) use wait::not_interrupted;
pub(crate) use wait::wait_for_end;

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
pub fn run_gated(spec: &CommandSpec, gate: Option<Gate>) -> Result<Outcome, SandboxError> {
    run_confined(spec, None, gate)
}

/// [`run_gated`], with the command's only way out the proxy of `egress`
/// (see [`Egress`]): its own network namespace with a loopback and no
/// route, a bridge on `127.0.0.1:`[`BRIDGE_PORT`] to the proxy's socket,
/// and [`Egress::env`] in its environment (replacing any variable of the
/// same name). Needs a confinement with `network: false` that is not the
/// weaker one, and a socket in a directory no writable path covers;
/// refused with [`SandboxError::Setup`] otherwise, before anything runs.
/// With a warm sandbox (`host`), the command runs in one whose commands
/// each get a network namespace and a bridge of their own, made ahead (see
/// `host::bridged`), the bridge leading to this command's proxy alone. The
/// outcome's `confinement` is `confined`, as for any full sandbox (airlock
/// reads anything else as a weaker one).
pub fn run_with_egress(
    spec: &CommandSpec,
    egress: &Egress,
    gate: Option<Gate>,
) -> Result<Outcome, SandboxError> {
    let step = "confining the network to the egress proxy";
    let refuse = |error: String| {
        Err(SandboxError::Setup {
            step: step.into(),
            error,
        })
    };
    let Some(c) = &spec.confinement else {
        return refuse(
            "the command is not confined: give it a confinement, or run it without egress".into(),
        );
    };
    if c.network {
        return refuse(
            "the confinement grants the host's network: set `network: false` to confine it \
             to the proxy"
                .into(),
        );
    }
    if c.weaker {
        return refuse(
            "the weaker sandbox has no network namespace, so nothing would stop a direct \
             connection: run in the full sandbox"
                .into(),
        );
    }
    let socket = &egress.proxy_socket;
    let (Some(dir), Some(name)) = (socket.parent(), socket.file_name()) else {
        return refuse(format!(
            "{} names no socket: give the absolute path of the proxy's Unix socket",
            socket.display()
        ));
    };
    // A socket's name is at most 107 bytes; connected to relative to its
    // directory, only the last component counts.
    if !socket.is_absolute() || name.len() > 107 {
        return refuse(format!(
            "{} must be an absolute path whose last component is at most 107 bytes",
            socket.display()
        ));
    }
    // The bridge connects by name, unconfined, from the host's view: a
    // command able to write in the socket's directory could put a link to
    // any socket of the host there under that name.
    let real = |p: &std::path::Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    let real_dir = real(dir);
    if let Some((writable, _)) = c
        .writable
        .iter()
        .find(|(w, _)| real_dir.starts_with(real(w)))
    {
        return refuse(format!(
            "the proxy's socket {} is below {}, which the command may write to: it could \
             replace the socket; put the socket in a directory of airlock's own",
            socket.display(),
            writable.display()
        ));
    }
    let mut spec = spec.clone();
    let vars = Egress::env();
    spec.env.retain(|(k, _)| !vars.iter().any(|(v, _)| v == k));
    spec.env.extend(vars);
    let bridge = confine::EgressSpec {
        dir: confine::bytes(dir.as_os_str()),
        name: confine::bytes(name),
        port: BRIDGE_PORT,
    };
    run_confined(&spec, Some(bridge), gate)
}

fn run_confined(
    spec: &CommandSpec,
    egress: Option<confine::EgressSpec>,
    mut gate: Option<Gate>,
) -> Result<Outcome, SandboxError> {
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
        let mut init = init_spec(spec, c, false);
        // The host's view: with egress, a bridge for each command, to the
        // proxy the command brings (its socket's directory, opened here).
        init.egress = egress.as_ref().map(|e| confine::EgressSpec {
            dir: Vec::new(),
            name: Vec::new(),
            port: e.port,
        });
        let mut request = host::Request::of(&init);
        request.egress = egress.as_ref().map(|e| e.name.clone());
        let proxy_dir = egress.as_ref().map(|e| {
            rustix::fs::open(
                confine::os(&e.dir),
                rustix::fs::OFlags::PATH
                    | rustix::fs::OFlags::DIRECTORY
                    | rustix::fs::OFlags::CLOEXEC,
                rustix::fs::Mode::empty(),
            )
        });
        // A directory that cannot be opened: the sandbox of the command's
        // own below reports it.
        let proxy_dir = match proxy_dir {
            None => Some(None),
            Some(Ok(dir)) => Some(Some(dir)),
            Some(Err(_)) => None,
        };
        if let Some(proxy_dir) = proxy_dir
            && let Ok(request) = host::encode(&request)
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
                let ran = run_hosted(
                    spec,
                    sock,
                    &request,
                    proxy_dir.as_ref().map(|d| d.as_fd()),
                    Some(&mut through),
                );
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
            let (cmd, pipe, writer, specification) =
                confined_command(spec, c, gate.is_some(), egress.clone())?;
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
    // libc: pre_exec is unsafe in std.
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
