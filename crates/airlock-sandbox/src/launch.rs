//! Starting the command's process: directly, or through the init process
//! that confines it, with the specification, report and gate pipes; its
//! stdin (a file, nothing, or a terminal of its own).

use crate::{CommandSpec, Confinement, Input, SandboxError};
use crate::{confine, terminal};
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::thread;

/// Copies keystrokes to the command's terminal (`leader`) until `stop`,
/// the returned pipe's write end, closes.
pub(crate) fn spawn_keys(
    leader: OwnedFd,
) -> Result<(OwnedFd, thread::JoinHandle<()>), SandboxError> {
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
pub(crate) fn stdin_of(input: Input) -> io::Result<OwnedFd> {
    if input == Input::Inherit
        && let Ok(fd) = rustix::io::fcntl_dupfd_cloexec(rustix::stdio::stdin(), 3)
    {
        return Ok(fd);
    }
    Ok(File::open("/dev/null")?.into())
}

pub(crate) fn unconfined_command(spec: &CommandSpec) -> Command {
    let mut command = Command::new(&spec.argv[0]);
    command
        .args(&spec.argv[1..])
        .current_dir(&spec.cwd)
        .env_clear()
        .envs(spec.env.iter().map(|(k, v)| (k, v)));
    command
}

pub(crate) type ReportPipe = (File, OwnedFd);
/// The gate pipe: (read end, for the command; write end, kept by us).
pub(crate) type GatePipe = (OwnedFd, File);

/// A pipe whose ends are both close-on-exec.
pub(crate) fn pipe_cloexec() -> io::Result<(OwnedFd, OwnedFd)> {
    Ok(rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?)
}

/// `<init program> __sandbox-init` (its network confined to `egress`, if
/// given), with a pipe on fd 3 for its report, the
/// specification's pipe on fd 5 (see [`SpecPipe`]) and, when `gated`, a pipe
/// on fd 4 it waits on before starting the command.
pub(crate) fn confined_command(
    spec: &CommandSpec,
    c: &Confinement,
    gated: bool,
    egress: Option<confine::EgressSpec>,
) -> Result<(Command, ReportPipe, Option<GatePipe>, SpecPipe), SandboxError> {
    let init = confine::InitSpec {
        egress,
        ..init_spec(spec, c, gated)
    };
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
    // libc: pre_exec is unsafe in std.
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
pub(crate) struct SpecPipe {
    /// The init's end, passed as [`confine::SPEC_FD`].
    read: OwnedFd,
    write: File,
    json: Vec<u8>,
}

impl SpecPipe {
    /// Once the init is started: our copy of its end closes, and the
    /// specification goes down the pipe (the init reads it first thing; one
    /// that died first is reported through its report pipe).
    pub(crate) fn send(self) {
        drop(self.read);
        let mut write = self.write;
        let _ = write.write_all(&self.json);
    }
}

/// What the sandbox's init (or host) is told to build and run.
pub(crate) fn init_spec(spec: &CommandSpec, c: &Confinement, gated: bool) -> confine::InitSpec {
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
        egress: None,
    }
}

pub(crate) fn read_report(mut reader: File) -> Option<confine::InitReport> {
    let mut text = String::new();
    let _ = reader.read_to_string(&mut text);
    text.lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .next()
}
