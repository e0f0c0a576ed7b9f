//! One command inside a warm host: its own pid, mount and IPC namespace with
//! a PID 1 and a fresh `/proc`, the confined process, and the watch that kills
//! it when airlock hangs up.

use super::{
    ANSWERED, HostSpec, UNANSWERED, bridged, encode, receive, recv_with_fds, respond,
    send_with_fds, socket_pair,
};
use crate::confine::{self, InitReport, InitSpec, SetupError, check, errno, fail};
use rustix::process::{
    Pid, Signal, WaitOptions, kill_process, set_parent_process_death_signal, waitpid,
};
use std::fs::File;
use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};

/// Gives the coming command a pid (and mount, IPC) namespace of its own and
/// starts its PID 1 there, waiting for the command; returns that pid, the
/// read end of its report pipe, and where to send it the command.
pub(crate) fn make_namespace(
    spec: &HostSpec,
    prepared: &confine::Prepared,
    bridge: Option<RawFd>,
) -> Result<(libc::pid_t, File, OwnedFd), SetupError> {
    let (reader, writer) = crate::pipe_cloexec().map_err(|e| fail("making a pipe", e))?;
    let (to_command, from_leader) =
        socket_pair().map_err(|e| fail("making the command's channel", e))?;
    check(
        // SAFETY: unshare in this single-threaded leader.
        unsafe { libc::unshare(libc::CLONE_NEWPID | libc::CLONE_NEWNS | libc::CLONE_NEWIPC) },
        "giving the command a pid namespace of its own",
    )?;
    // SAFETY: fork in this single-threaded leader.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(errno("forking the command's PID 1"));
    }
    if pid == 0 {
        drop(to_command);
        let code = confine::code_or_report(
            command_pid1(
                &spec.init,
                &from_leader,
                (reader, writer.as_raw_fd()),
                prepared,
                bridge,
            ),
            writer.as_raw_fd(),
        );
        // libc: rustix has no _exit, and std's exit would run the parent's handlers.
        // SAFETY: leaving the forked child.
        unsafe { libc::_exit(code) };
    }
    Ok((pid, File::from(reader), to_command))
}

/// PID 1 of the command's namespace: mount its `/proc`, fork the command's
/// process and confine it, all before the command arrives; then take the
/// client's connection from the leader and the command from the client,
/// pass it on, reap until it exits, report its status, and answer the
/// client with every report (`reports`: both ends of the report pipe).
fn command_pid1(
    base: &InitSpec,
    from_leader: &OwnedFd,
    reports: (OwnedFd, RawFd),
    prepared: &confine::Prepared,
    bridge: Option<RawFd>,
) -> Result<i32, SetupError> {
    let (reports_in, report) = reports;
    // The command dies with its leader.
    let _ = set_parent_process_death_signal(Some(Signal::KILL));
    // `/dev/shm`, like `/tmp`, is the run's: shared by its commands (the
    // prebuilt Landlock ruleset grants writes to this one).
    confine::mount_proc(b"/proc", "mounting /proc for the command")?;
    let (to_command, from_pid1) =
        socket_pair().map_err(|e| fail("making the command's channel", e))?;
    // libc: rustix has no fork.
    // SAFETY: fork in this single-threaded process; the child confines
    // itself, waits for its command, then execs or leaves through _exit.
    let child = unsafe { libc::fork() };
    if child < 0 {
        return Err(errno("forking the command"));
    }
    if child == 0 {
        drop(to_command);
        drop(reports_in);
        command_process(base, &from_pid1, report, prepared);
    }
    drop(from_pid1);
    // The namespace's process count capped ahead as the host's first caller
    // asked (commands of a run ask the same): then only a different cap
    // costs a write once the command is here.
    let uncapped = base.processes.and_then(|_| confine::pid_max());
    if let Some(n) = base.processes {
        confine::cap_pids(n);
    }
    let mut byte = [0u8; 1];
    let (_, conns) =
        recv_with_fds(from_leader, &mut byte).map_err(|e| fail("receiving the connection", e))?;
    let Some(conn) = conns.into_iter().next() else {
        return Err(fail("receiving the connection", "none came"));
    };
    let (mut request, [stdin, stdout, stderr], proxy_dir) =
        receive(&conn).map_err(|e| fail("receiving the command", e))?;
    // Its proxy to its bridge, before the command can start; then this
    // process keeps neither (the command's process drops its copy of the
    // channel at its exec).
    bridged::hand_proxy(bridge, request.egress.as_deref(), proxy_dir)?;
    if let Some(channel) = bridge {
        // libc: the inherited channel, known by number.
        // SAFETY: closing our copy; nothing here uses it after this.
        unsafe { libc::close(channel) };
    }
    request.egress = None;
    // Before the command can start: its process count is capped here.
    if request.processes != base.processes {
        match (request.processes, uncapped) {
            (Some(n), _) => confine::cap_pids(n),
            (None, Some(value)) => confine::set_pid_max(&value),
            (None, None) => {}
        }
    }
    let body = encode(&request).map_err(|e| fail("passing the command on", e))?;
    // A failure here leaves the command's process without a command: it
    // reports that itself, and is reaped below.
    let _ = send_with_fds(
        &to_command,
        &body,
        &[stdin.as_fd(), stdout.as_fd(), stderr.as_fd()],
    );
    drop((stdin, stdout, stderr, to_command));
    confine::reap_and_report(child, report)?;
    // Nothing of the command runs now: every report is in the pipe.
    let mut text = Vec::new();
    // Read what is there, not waiting for more.
    let _ = rustix::fs::fcntl_setfl(&reports_in, rustix::fs::OFlags::NONBLOCK);
    let _ = File::from(reports_in).read_to_end(&mut text);
    if respond(conn.as_fd(), parse_reports(&text)) {
        return Ok(ANSWERED);
    }
    // Not sent: the reports go back in the pipe for the leader to answer.
    confine::write_to(report, &text);
    Ok(UNANSWERED)
}

/// The command's process, forked ahead by its PID 1: confined at once (none
/// of that depends on the command), then waits for the command, takes its
/// limits, input and output, and becomes it.
fn command_process(
    base: &InitSpec,
    from_pid1: &OwnedFd,
    report: RawFd,
    prepared: &confine::Prepared,
) -> ! {
    let confined = confine::confine_prepared(true, prepared);
    let mut init = base.clone();
    let ready = confined.and_then(|()| {
        let (request, [stdin, stdout, stderr], _) =
            receive(from_pid1).map_err(|e| fail("receiving the command", e))?;
        init.argv = request.argv;
        init.cwd = request.cwd;
        init.env = request.env;
        init.memory_bytes = request.memory_bytes;
        init.processes = request.processes;
        init.file_size_bytes = request.file_size_bytes;
        init.terminal = request.terminal;
        init.gate = false;
        confine::limit(&init)?;
        // 0, 1 and 2 onto what the client sent (dup2 clears close-on-exec).
        rustix::stdio::dup2_stdin(&stdin)
            .and_then(|()| rustix::stdio::dup2_stdout(&stdout))
            .and_then(|()| rustix::stdio::dup2_stderr(&stderr))
            .map_err(confine::failed("connecting the command's input and output"))
    });
    confine::become_command(&init, ready, report)
}

/// Waits for the command's PID 1 to end, killing it (and so its whole
/// namespace) if the client hangs up first. `None` if PID 1 answered the
/// client; otherwise the reports left for the leader to send.
pub(crate) fn watch(conn: RawFd, pid: libc::pid_t, mut reports: File) -> Option<Vec<InitReport>> {
    let mut killed = false;
    loop {
        // The report pipe is PID 1's to read while it lives: watched only
        // for its end, when every writer (PID 1, the command's process
        // before its exec) is gone. The connection carries the command to
        // PID 1: watched only for the client's hang-up.
        let mut fds = [
            libc::pollfd {
                fd: reports.as_raw_fd(),
                events: 0,
                revents: 0,
            },
            libc::pollfd {
                fd: if killed { -1 } else { conn },
                events: libc::POLLRDHUP,
                revents: 0,
            },
        ];
        // SAFETY: two valid pollfds (a negative fd is ignored).
        let rc = unsafe { libc::poll(fds.as_mut_ptr(), 2, -1) };
        if rc < 0 {
            if std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            break;
        }
        if fds[1].revents != 0 && !killed {
            // The client hung up or asked to stop: everything in the
            // command's namespace dies with its PID 1.
            if let Some(pid) = Pid::from_raw(pid) {
                let _ = kill_process(pid, Signal::KILL);
            }
            killed = true;
        }
        if fds[0].revents != 0 {
            break;
        }
    }
    // Reaping our own child; its namespace is gone with it.
    let status =
        Pid::from_raw(pid).and_then(|pid| waitpid(Some(pid), WaitOptions::empty()).ok()?);
    // Not reaped (it cannot be told): taken as answered, as a zero status.
    if status.is_none_or(|(_, status)| status.exit_status() == Some(ANSWERED)) {
        return None;
    }
    Some(reports_left(&mut reports))
}

/// What is left in PID 1's report pipe once PID 1 is gone.
pub(crate) fn reports_left(pipe: &mut File) -> Vec<InitReport> {
    let mut text = Vec::new();
    let _ = pipe.read_to_end(&mut text);
    parse_reports(&text)
}

/// The complete report lines in `text`.
fn parse_reports(text: &[u8]) -> Vec<InitReport> {
    text.split(|b| *b == b'\n')
        .filter_map(|line| serde_json::from_slice(line).ok())
        .collect()
}
