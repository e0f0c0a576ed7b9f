//! A sandbox kept warm: built once, then every command forked inside it.
//!
//! Building a sandbox (a fresh process, namespaces, a dozen mounts, the
//! loopback, the Landlock ruleset and seccomp filters) costs milliseconds,
//! and an agent runs many short commands. A host is that work done once per
//! run and view: `<init program> __sandbox-host` builds the sandbox exactly
//! as `__sandbox-init` does, then its PID 1 listens on a Unix socket in the
//! hosts' directory (which every sandbox hides). PID 1 keeps a leader forked
//! ahead, which has already given the next command a pid, mount and IPC
//! namespace of its own, with a PID 1 and a fresh `/proc` there. For each
//! command airlock connects and sends the argv, cwd, environment and limits
//! with the command's stdout and stderr pipes; PID 1 hands the connection to
//! the waiting leader, the command is confined as in `confine` (limits, no
//! privileges, Landlock, seccomp) and execs. Whatever it starts dies with
//! its namespace, and commands cannot see each other. The leader kills the
//! command's namespace when airlock hangs up (time limit, output limit,
//! airlock interrupted), and answers with the command's status.
//!
//! Whatever the host is told per command, the sandbox's view of the files,
//! the network and the writable paths are the host's own: a command needing
//! another view gets another host, because the socket's name is a digest of
//! that view, of which file each path is (device, inode, birth time), and of
//! the init program's identity. Before each command the leader also checks
//! that every path the host hid is still covered; if not, it refuses and the
//! host ends.
//!
//! A host with nothing to do for its idle time exits. Clients connect only
//! while holding the hosts' lock file, and a host exits only while holding
//! it with no connection pending, so a connection never lands on a host that
//! is going away.

use std::ffi::CString;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::confine::{self, InitReport, InitSpec, SetupError, check, errno, fail};
use crate::{Confinement, SandboxError};

pub const HOST_ARG: &str = "__sandbox-host";
const LISTEN_FD: RawFd = 3;
const READY_FD: RawFd = 4;
const LOCK_FD: RawFd = 5;
/// The hosts' directory, so that a host going away removes its socket.
const DIR_FD: RawFd = 6;
/// The read end of the pipe carrying the host's specification.
const SPEC_FD: RawFd = 7;
/// One lock for every host in a directory: connecting takes microseconds.
const LOCK_FILE: &str = "hosts.lock";
/// Requests larger than this, encoded (huge argv or environment), go through a
/// one-off sandbox instead: a datagram has to fit the socket's buffer.
pub(crate) const MAX_REQUEST: usize = 128 * 1024;
const MAX_RESPONSE: usize = 64 * 1024;

/// What a host is started with.
#[derive(Debug, Serialize, Deserialize)]
struct HostSpec {
    init: InitSpec,
    idle_ms: u64,
    /// The socket's file name in the hosts' directory.
    socket: String,
    /// Its inode: the name is removed at exit only if it is still this socket.
    socket_ino: u64,
}

/// One command for a host.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Request {
    pub argv: Vec<Vec<u8>>,
    pub cwd: Vec<u8>,
    pub env: Vec<(Vec<u8>, Vec<u8>)>,
    pub memory_bytes: Option<u64>,
    pub processes: Option<u64>,
    pub file_size_bytes: Option<u64>,
    /// stdin is the command's own terminal (see `InitSpec::terminal`).
    pub terminal: bool,
}

impl Request {
    /// The per-command part of `init`.
    pub(crate) fn of(init: &InitSpec) -> Request {
        Request {
            argv: init.argv.clone(),
            cwd: init.cwd.clone(),
            env: init.env.clone(),
            memory_bytes: init.memory_bytes,
            processes: init.processes,
            file_size_bytes: init.file_size_bytes,
            terminal: init.terminal,
        }
    }
}

/// What the host answers once the command is over.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Response {
    pub reports: Vec<InitReport>,
}

// ---------------------------------------------------------------------------
// The host process.

/// Entry point of `<init program> __sandbox-host`. Never returns.
pub fn host_main() -> ! {
    std::process::exit(confine::code_or_report(start_host().map(|()| 0), READY_FD))
}

fn start_host() -> Result<(), SetupError> {
    // Nothing the commands run may inherit these.
    // SAFETY: fcntl on descriptor numbers; harmless if they are not open.
    unsafe {
        for fd in [LISTEN_FD, READY_FD, LOCK_FD, DIR_FD, SPEC_FD] {
            libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
        }
    }
    let spec: HostSpec = confine::read_spec(SPEC_FD)?;
    confine::enter_namespaces(&spec.init)?;
    // SAFETY: single-threaded process; the child is PID 1 of the new pid
    // namespace and leaves through _exit.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(errno("forking PID 1 of the sandbox host"));
    }
    if pid == 0 {
        let code = confine::code_or_report(serve(&spec).map(|()| 0), READY_FD);
        // SAFETY: leaving the forked child without the parent's destructors.
        unsafe { libc::_exit(code) };
    }
    // PID 1 outlives this process (it is not airlock's to wait for); the
    // readiness report comes from PID 1 itself.
    Ok(())
}

/// PID 1 of a host: build the sandbox, then serve until idle.
fn serve(spec: &HostSpec) -> Result<(), SetupError> {
    confine::build_root(&spec.init)?;
    if !spec.init.network {
        confine::loopback_up()?;
    }
    // What the sandbox covers now, checked again before every command.
    let covered: Vec<Vec<u8>> = spec
        .init
        .hidden
        .iter()
        .filter(|p| is_mount_point(p) == Some(true))
        .cloned()
        .collect();
    // Built once, applied by every command.
    let prepared = confine::prepare(&spec.init, true)?;
    // The processor's features, looked up once here and inherited by every
    // process forked for a command, rather than looked up by each: in a
    // virtual machine every `cpuid` traps, a few microseconds apiece.
    #[cfg(target_arch = "x86_64")]
    let _ = std::arch::is_x86_feature_detected!("avx2");
    confine::report_to(READY_FD, &InitReport::Ready);
    // SAFETY: closing our own descriptor: the client reads to its end.
    unsafe { libc::close(READY_FD) };

    let idle = Duration::from_millis(spec.idle_ms);
    let mut leaders = std::collections::BTreeSet::new();
    let mut last = Instant::now();
    // A leader forked ahead, its command's namespaces made: a command that
    // arrives starts without waiting for them. The next one is forked once
    // the command before has ended, not beside it: on a small machine the
    // fork would compete with the command for the CPU.
    let mut ready = spare(spec, &prepared, &covered);
    // A leader of a command in flight (its pid and a pidfd), to learn when
    // it ends.
    let mut busy: Option<(libc::pid_t, OwnedFd)> = None;
    loop {
        loop {
            let mut status = 0;
            // SAFETY: reaping our children (leaders, and orphans reparented to us).
            let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
            if pid <= 0 {
                break;
            }
            if leaders.remove(&pid) {
                last = Instant::now();
                if libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == STALE {
                    // The view moved under this host: no command more here.
                    remove_socket(spec);
                    return Ok(());
                }
            }
            if ready.as_ref().is_some_and(|s| s.pid == pid) {
                ready = None;
            }
        }
        // A reaped leader's pidfd stays readable: watch one still running.
        if busy.as_ref().is_some_and(|(pid, _)| !leaders.contains(pid)) {
            busy = None;
        }
        if busy.is_none() {
            busy = leaders
                .iter()
                .find_map(|&pid| pidfd(pid).map(|fd| (pid, fd)));
        }
        if leaders.is_empty() && ready.is_none() {
            ready = spare(spec, &prepared, &covered);
        }
        let wait = if leaders.is_empty() {
            idle.saturating_sub(last.elapsed())
        } else {
            Duration::from_secs(1)
        };
        let timeout = wait.as_millis().clamp(1, 1000) as libc::c_int;
        let (incoming, _) = poll_two(
            LISTEN_FD,
            busy.as_ref().map(|(_, fd)| fd.as_raw_fd()),
            timeout,
        );
        if incoming {
            // SAFETY: accept4 on our listening socket.
            let conn = unsafe {
                libc::accept4(
                    LISTEN_FD,
                    std::ptr::null_mut(),
                    std::ptr::null_mut(),
                    libc::SOCK_CLOEXEC,
                )
            };
            if conn < 0 {
                continue;
            }
            // Only this user's processes: the hosts' directory is private,
            // and whoever reaches the socket anyway (a privileged process
            // of another user) runs nothing as this one. A uid outside the
            // sandbox's user namespace reads as the overflow uid here.
            // SAFETY: getuid cannot fail.
            if crate::private::peer(conn).map(|c| c.uid) != Some(unsafe { libc::getuid() }) {
                // SAFETY: our own fresh descriptor.
                unsafe { libc::close(conn) };
                continue;
            }
            // The spare leader takes the connection; without one (it died,
            // or could not be forked), a new one does.
            let handed = ready
                .take()
                .and_then(|s| s.hand(conn))
                .or_else(|| spare(spec, &prepared, &covered).and_then(|s| s.hand(conn)));
            if let Some(pid) = handed {
                leaders.insert(pid);
                if busy.is_none() {
                    busy = pidfd(pid).map(|fd| (pid, fd));
                }
            }
            // SAFETY: the leader has its own copy.
            unsafe { libc::close(conn) };
            // Commands overlap (or the leader's end cannot be watched): the
            // next one should not wait for a fork either.
            if leaders.len() > 1 || busy.is_none() {
                ready = spare(spec, &prepared, &covered);
            }
            continue;
        }
        // Ended from outside (evicted, or its run finished): its socket is
        // gone. Whatever connected before that is served first.
        if leaders.is_empty() && !socket_is_ours(spec) && !poll_two(LISTEN_FD, None, 0).0 {
            return Ok(());
        }
        if leaders.is_empty() && last.elapsed() >= idle {
            // SAFETY: flock on our own descriptor.
            if unsafe { libc::flock(LOCK_FD, libc::LOCK_EX | libc::LOCK_NB) } == 0 {
                if !poll_two(LISTEN_FD, None, 0).0 {
                    // Returning closes the listener; the namespace goes with
                    // us. The socket's name goes first, under the lock.
                    remove_socket(spec);
                    return Ok(());
                }
                // SAFETY: as above.
                unsafe { libc::flock(LOCK_FD, libc::LOCK_UN) };
            }
        }
    }
}

/// Whether the host's socket is still in its directory under its name.
fn socket_is_ours(spec: &HostSpec) -> bool {
    if spec.socket_ino == 0 {
        return true; // not known: only the idle time ends this host
    }
    let Ok(name) = CString::new(spec.socket.as_str()) else {
        return true;
    };
    // SAFETY: an all-zero stat is valid; fstatat fills it.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: fstatat with a valid name below our directory.
    let found =
        unsafe { libc::fstatat(DIR_FD, name.as_ptr(), &mut st, libc::AT_SYMLINK_NOFOLLOW) } == 0;
    found && st.st_ino == spec.socket_ino
}

/// Removes the host's socket from its directory, unless the name now
/// belongs to another host's socket.
fn remove_socket(spec: &HostSpec) {
    let Ok(name) = CString::new(spec.socket.as_str()) else {
        return;
    };
    // SAFETY: an all-zero stat is valid; fstatat fills it.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: fstatat and unlinkat with a valid name below our directory.
    unsafe {
        if libc::fstatat(DIR_FD, name.as_ptr(), &mut st, libc::AT_SYMLINK_NOFOLLOW) == 0
            && st.st_ino == spec.socket_ino
        {
            libc::unlinkat(DIR_FD, name.as_ptr(), 0);
        }
    }
}

/// Polls `fd` and, if given, `other` for input; which of them have it.
fn poll_two(fd: RawFd, other: Option<RawFd>, timeout_ms: libc::c_int) -> (bool, bool) {
    let mut fds = [
        libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        },
        libc::pollfd {
            fd: other.unwrap_or(-1),
            events: libc::POLLIN,
            revents: 0,
        },
    ];
    // SAFETY: two valid pollfds (a negative fd is ignored).
    let rc = unsafe { libc::poll(fds.as_mut_ptr(), 2, timeout_ms) };
    (rc > 0 && fds[0].revents != 0, rc > 0 && fds[1].revents != 0)
}

/// A descriptor that becomes readable when our child `pid` exits.
fn pidfd(pid: libc::pid_t) -> Option<OwnedFd> {
    // SAFETY: pidfd_open on our own child; a fresh descriptor we then own.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    // SAFETY: as above.
    (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// A leader forked before its command arrives.
struct Spare {
    pid: libc::pid_t,
    /// Where the host hands it the client's connection.
    handoff: OwnedFd,
}

impl Spare {
    /// Gives it the connection `conn`; its pid, if it took it.
    fn hand(self, conn: RawFd) -> Option<libc::pid_t> {
        send_with_fds(self.handoff.as_raw_fd(), b"c", &[conn])
            .ok()
            .map(|()| self.pid)
    }
}

fn spare(spec: &HostSpec, prepared: &confine::Prepared, covered: &[Vec<u8>]) -> Option<Spare> {
    let (ours, theirs) = socket_pair().ok()?;
    // SAFETY: fork in this single-threaded PID 1; the child leads one
    // command and leaves through _exit.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return None;
    }
    if pid == 0 {
        drop(ours);
        // SAFETY: a leader needs neither the listener, the lock nor the
        // directory.
        unsafe {
            libc::close(LISTEN_FD);
            libc::close(LOCK_FD);
            libc::close(DIR_FD);
        }
        let code = lead(spec, theirs, prepared, covered);
        // SAFETY: leaving the forked child.
        unsafe { libc::_exit(code) };
    }
    drop(theirs);
    Some(Spare { pid, handoff: ours })
}

/// A leader: makes its command's namespaces and PID 1 first, then waits for
/// the connection the host hands it on `handoff`, runs the command it
/// carries, and answers. Returns the leader's exit code.
fn lead(
    spec: &HostSpec,
    handoff: OwnedFd,
    prepared: &confine::Prepared,
    covered: &[Vec<u8>],
) -> i32 {
    // SAFETY: plain prctl: a leader dies with its host.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) };
    let made = make_namespace(spec, prepared);
    let mut byte = [0u8; 1];
    let Ok((_, conns)) = recv_with_fds(handoff.as_raw_fd(), &mut byte) else {
        return 1;
    };
    let Some(conn) = conns.into_iter().next() else {
        return 1;
    };
    let conn = conn.as_raw_fd();
    // A path this sandbox hid that is no longer covered (the file behind it
    // was replaced on the host) must not be shown: refuse, and end the host.
    if let Some(path) = covered.iter().find(|p| is_mount_point(p) == Some(false)) {
        // The command, if it came already, is read and dropped: a socket
        // closed with unread data resets the client's end, which would
        // then lose this answer.
        let mut discard = vec![0u8; MAX_REQUEST];
        // SAFETY: a non-blocking receive into our buffer.
        unsafe {
            libc::recv(
                conn,
                discard.as_mut_ptr().cast(),
                discard.len(),
                libc::MSG_DONTWAIT,
            )
        };
        respond(
            conn,
            vec![InitReport::SetupFailed {
                step: STALE_STEP.into(),
                error: format!(
                    "{} is no longer hidden in it (it was replaced since); run the command again",
                    String::from_utf8_lossy(path)
                ),
            }],
        );
        return STALE;
    }
    // PID 1 takes the command straight from the client and answers it
    // itself: two hand-offs fewer for every command. The leader stays to
    // stop the command if the client hangs up, and to answer if PID 1
    // could not.
    let reports = match made {
        Err(e) => vec![e.into()],
        Ok((pid, mut reports, to_command)) => {
            match send_with_fds(to_command.as_raw_fd(), b"c", &[conn]) {
                Ok(()) => match watch(conn, pid, reports) {
                    None => {
                        linger(conn);
                        return 0;
                    }
                    Some(reports) => reports,
                },
                // PID 1 ended before the hand-off: what it reported says
                // why, once it and its namespace are gone.
                Err(e) => {
                    // SAFETY: killing and reaping our own child.
                    unsafe {
                        libc::kill(pid, libc::SIGKILL);
                        libc::waitpid(pid, std::ptr::null_mut(), 0);
                    }
                    let mut said = reports_left(&mut reports);
                    if said.is_empty() {
                        said.push(fail("passing the command on", e).into());
                    }
                    said
                }
            }
        }
    };
    respond(conn, reports);
    0
}

/// How long a leader whose command was answered waits for its client to
/// hang up before it ends (and its host builds the next sandbox).
const LINGER_MS: libc::c_int = 1000;

/// Waits, at most [`LINGER_MS`], for the client to close its connection:
/// the host forks the next sandbox once this leader ends, and building it
/// beside the client, which is still recording the command, would slow
/// the client down on a small machine (`Held`).
fn linger(conn: RawFd) {
    let mut hang_up = libc::pollfd {
        fd: conn,
        events: libc::POLLRDHUP,
        revents: 0,
    };
    let deadline = Instant::now() + Duration::from_millis(LINGER_MS as u64);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        // SAFETY: one valid pollfd.
        let rc = unsafe { libc::poll(&mut hang_up, 1, left.as_millis() as libc::c_int) };
        let interrupted =
            rc < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR);
        if !interrupted || left.is_zero() {
            return;
        }
    }
}

/// A leader's exit code when the host's view is stale: the host ends.
const STALE: i32 = 3;
/// The step a stale host's refusal names; the command did not start.
pub(crate) const STALE_STEP: &str = "checking the warm sandbox";

/// PID 1's exit code once it has answered the client itself; any other
/// end leaves the answer to the leader.
const ANSWERED: i32 = 0;
const UNANSWERED: i32 = 1;

/// Sends the answer; whether it went.
fn respond(conn: RawFd, reports: Vec<InitReport>) -> bool {
    let Ok(body) = serde_json::to_vec(&Response { reports }) else {
        return false;
    };
    // SAFETY: sending from a valid buffer on our connection.
    let sent = unsafe { libc::send(conn, body.as_ptr().cast(), body.len(), libc::MSG_NOSIGNAL) };
    sent == body.len() as isize
}

/// Whether `path` is a mount point in this mount namespace (`None` when it
/// cannot be told: gone, or a kernel without mount ids in `statx`).
fn is_mount_point(path: &[u8]) -> Option<bool> {
    let mount_id = |p: &[u8]| -> Option<u64> {
        let st = statx_nofollow(p, libc::STATX_MNT_ID)?;
        (st.stx_mask & libc::STATX_MNT_ID != 0).then_some(st.stx_mnt_id)
    };
    let parent = Path::new(std::ffi::OsStr::from_bytes(path)).parent()?;
    let here = match mount_id(path) {
        Some(id) => id,
        // Gone: whatever covered it went with it.
        None if std::fs::symlink_metadata(std::ffi::OsStr::from_bytes(path)).is_err() => {
            return Some(false);
        }
        None => return None,
    };
    Some(here != mount_id(parent.as_os_str().as_bytes())?)
}

/// Gives the coming command a pid (and mount, IPC) namespace of its own and
/// starts its PID 1 there, waiting for the command; returns that pid, the
/// read end of its report pipe, and where to send it the command.
fn make_namespace(
    spec: &HostSpec,
    prepared: &confine::Prepared,
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
            ),
            writer.as_raw_fd(),
        );
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
) -> Result<i32, SetupError> {
    let (reports_in, report) = reports;
    // SAFETY: plain prctl: the command dies with its leader.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) };
    // `/dev/shm`, like `/tmp`, is the run's: shared by its commands (the
    // prebuilt Landlock ruleset grants writes to this one).
    confine::mount_proc(b"/proc", "mounting /proc for the command")?;
    let (to_command, from_pid1) =
        socket_pair().map_err(|e| fail("making the command's channel", e))?;
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
    let (_, conns) = recv_with_fds(from_leader.as_raw_fd(), &mut byte)
        .map_err(|e| fail("receiving the connection", e))?;
    let Some(conn) = conns.into_iter().next() else {
        return Err(fail("receiving the connection", "none came"));
    };
    let (request, [stdin, stdout, stderr]) =
        receive(conn.as_raw_fd()).map_err(|e| fail("receiving the command", e))?;
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
        to_command.as_raw_fd(),
        &body,
        &[stdin.as_raw_fd(), stdout.as_raw_fd(), stderr.as_raw_fd()],
    );
    drop((stdin, stdout, stderr, to_command));
    confine::reap_and_report(child, report)?;
    // Nothing of the command runs now: every report is in the pipe.
    let mut text = Vec::new();
    // SAFETY: fcntl on our own descriptor; then read what is there.
    unsafe { libc::fcntl(reports_in.as_raw_fd(), libc::F_SETFL, libc::O_NONBLOCK) };
    let _ = File::from(reports_in).read_to_end(&mut text);
    if respond(conn.as_raw_fd(), parse_reports(&text)) {
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
        let (request, [stdin, stdout, stderr]) =
            receive(from_pid1.as_raw_fd()).map_err(|e| fail("receiving the command", e))?;
        init.argv = request.argv;
        init.cwd = request.cwd;
        init.env = request.env;
        init.memory_bytes = request.memory_bytes;
        init.processes = request.processes;
        init.file_size_bytes = request.file_size_bytes;
        init.terminal = request.terminal;
        init.gate = false;
        confine::limit(&init)?;
        // SAFETY: descriptor juggling in this process: 0, 1 and 2 onto
        // what the client sent (dup2 clears close-on-exec).
        let wired = unsafe {
            libc::dup2(stdin.as_raw_fd(), 0) >= 0
                && libc::dup2(stdout.as_raw_fd(), 1) >= 0
                && libc::dup2(stderr.as_raw_fd(), 2) >= 0
        };
        if wired {
            Ok(())
        } else {
            Err(errno("connecting the command's input and output"))
        }
    });
    confine::become_command(&init, ready, report)
}

/// Waits for the command's PID 1 to end, killing it (and so its whole
/// namespace) if the client hangs up first. `None` if PID 1 answered the
/// client; otherwise the reports left for the leader to send.
fn watch(conn: RawFd, pid: libc::pid_t, mut reports: File) -> Option<Vec<InitReport>> {
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
            // SAFETY: signalling our own child.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            killed = true;
        }
        if fds[0].revents != 0 {
            break;
        }
    }
    let mut status = 0;
    // SAFETY: reaping our own child; its namespace is gone with it.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    if libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == ANSWERED {
        return None;
    }
    Some(reports_left(&mut reports))
}

/// What is left in PID 1's report pipe once PID 1 is gone.
fn reports_left(pipe: &mut File) -> Vec<InitReport> {
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

fn socket_pair() -> std::io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: socketpair fills two descriptors we then own.
    if unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    } < 0
    {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: fresh descriptors from socketpair.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Receives one request with its three descriptors (stdin, stdout, stderr).
fn receive(conn: RawFd) -> std::io::Result<(Request, [OwnedFd; 3])> {
    let mut body = vec![0u8; MAX_REQUEST + 1];
    let (n, fds) = recv_with_fds(conn, &mut body)?;
    let fds: [OwnedFd; 3] = fds
        .try_into()
        .map_err(|_| std::io::Error::other("a request carries three descriptors"))?;
    let request = postcard::from_bytes(&body[..n]).map_err(std::io::Error::other)?;
    Ok((request, fds))
}

// ---------------------------------------------------------------------------
// Descriptors over a Unix socket.

const FD_SPACE: usize = 4;

fn send_with_fds(sock: RawFd, body: &[u8], fds: &[RawFd]) -> std::io::Result<()> {
    let mut iov = libc::iovec {
        iov_base: body.as_ptr() as *mut libc::c_void,
        iov_len: body.len(),
    };
    // SAFETY: CMSG_SPACE is a pure computation.
    let space = unsafe { libc::CMSG_SPACE(std::mem::size_of_val(fds) as u32) } as usize;
    let mut control = vec![0u8; space];
    // SAFETY: a zeroed msghdr filled with valid pointers and lengths; the
    // control buffer is sized by CMSG_SPACE for exactly these descriptors.
    unsafe {
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = space as _;
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        (*cmsg).cmsg_level = libc::SOL_SOCKET;
        (*cmsg).cmsg_type = libc::SCM_RIGHTS;
        (*cmsg).cmsg_len = libc::CMSG_LEN(std::mem::size_of_val(fds) as u32) as _;
        std::ptr::copy_nonoverlapping(
            fds.as_ptr().cast::<u8>(),
            libc::CMSG_DATA(cmsg),
            std::mem::size_of_val(fds),
        );
        if libc::sendmsg(sock, &msg, libc::MSG_NOSIGNAL) < 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

fn recv_with_fds(sock: RawFd, body: &mut [u8]) -> std::io::Result<(usize, Vec<OwnedFd>)> {
    let mut iov = libc::iovec {
        iov_base: body.as_mut_ptr().cast(),
        iov_len: body.len(),
    };
    // SAFETY: CMSG_SPACE is a pure computation.
    let space =
        unsafe { libc::CMSG_SPACE((FD_SPACE * std::mem::size_of::<RawFd>()) as u32) } as usize;
    let mut control = vec![0u8; space];
    let mut fds = Vec::new();
    // SAFETY: a zeroed msghdr with valid buffers; descriptors are taken from
    // SCM_RIGHTS headers only, each owned from then on.
    let n = unsafe {
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = space as _;
        let n = libc::recvmsg(sock, &mut msg, libc::MSG_CMSG_CLOEXEC);
        if n < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_RIGHTS {
                let data = libc::CMSG_DATA(cmsg);
                let len = (*cmsg).cmsg_len as usize - (data as usize - cmsg as usize);
                for i in 0..len / std::mem::size_of::<RawFd>() {
                    let fd = std::ptr::read_unaligned(data.cast::<RawFd>().add(i));
                    fds.push(OwnedFd::from_raw_fd(fd));
                }
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
        if msg.msg_flags & (libc::MSG_TRUNC | libc::MSG_CTRUNC) != 0 {
            return Err(std::io::Error::other("the message was cut short"));
        }
        n as usize
    };
    Ok((n, fds))
}

// ---------------------------------------------------------------------------
// The client side.

/// Where hosts live and how long one waits for work.
#[derive(Debug, Clone)]
pub struct HostSettings {
    /// A private directory for the sockets and locks (the run's); it must
    /// be hidden from the sandbox.
    pub dir: std::path::PathBuf,
    /// How long a host with nothing to do stays.
    pub idle: Duration,
    /// Whose hosts these are (a run): [`end_hosts_of`] ends them.
    pub owner: Option<String>,
    /// At most this many hosts in `dir`: starting one more ends the least
    /// recently used first. Zero for no bound.
    pub max_hosts: usize,
}

/// The part of a host's socket name that says whose it is.
fn owner_tag(owner: &str) -> String {
    hex::encode(&Sha256::digest(owner.as_bytes())[..4])
}

/// Whether `name` is a host's socket: `[<owner tag>-]<key>.sock`.
fn is_host_socket(name: &str) -> bool {
    let Some(stem) = name.strip_suffix(".sock") else {
        return false;
    };
    let key = match stem.split_once('-') {
        Some((tag, key)) if tag.len() == 8 && tag.bytes().all(|b| b.is_ascii_hexdigit()) => key,
        Some(_) => return false,
        None => stem,
    };
    key.len() == 24 && key.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Ends the hosts of `dir` started for `owner`: their sockets go (under
/// the hosts' lock, so that no connection is on its way), and each host,
/// finding its socket gone, exits as soon as it has no command running.
/// Returns how many there were.
pub fn end_hosts_of(dir: &Path, owner: &str) -> usize {
    let prefix = format!("{}-", owner_tag(owner));
    let Some(_lock) = lock_hosts(dir) else {
        return 0;
    };
    let mut ended = 0;
    for name in host_sockets(dir).into_iter().map(|(name, _)| name) {
        if name.starts_with(&prefix) && std::fs::remove_file(dir.join(&name)).is_ok() {
            ended += 1;
        }
    }
    ended
}

/// The hosts' sockets in `dir`, with when each was last used.
fn host_sockets(dir: &Path) -> Vec<(String, std::time::SystemTime)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let used = e.metadata().ok()?.modified().ok()?;
            is_host_socket(&name).then_some((name, used))
        })
        .collect()
}

/// Ends the least recently used hosts of `dir` until `keep` are left.
fn evict(dir: &Path, keep: usize) {
    let mut sockets = host_sockets(dir);
    if sockets.len() <= keep {
        return;
    }
    sockets.sort_by(|a, b| a.1.cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
    let excess = sockets.len() - keep;
    for (name, _) in sockets.into_iter().take(excess) {
        let _ = std::fs::remove_file(dir.join(name));
    }
}

/// The hosts' lock of `dir`, held: see the module's comment.
fn lock_hosts(dir: &Path) -> Option<File> {
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .mode(0o600)
        .open(dir.join(LOCK_FILE))
        .ok()?;
    // SAFETY: flock on a file we hold; released when it is closed.
    (unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) } == 0).then_some(lock)
}

/// Marks a host's socket used now: the last to be ended by [`evict`].
fn mark_used(dir: &File, name: &str) {
    let Ok(name) = CString::new(name) else {
        return;
    };
    // SAFETY: utimensat below our directory's descriptor; a null time is now.
    unsafe {
        libc::utimensat(
            dir.as_raw_fd(),
            name.as_ptr(),
            std::ptr::null(),
            libc::AT_SYMLINK_NOFOLLOW,
        );
    }
}

/// Hands one command to the host's leader on `sock`, with its stdin and
/// the write ends of its stdout and stderr pipes.
pub(crate) fn send(sock: &OwnedFd, body: &[u8], stdio: [RawFd; 3]) -> std::io::Result<()> {
    send_with_fds(sock.as_raw_fd(), body, &stdio)
}

/// A request as it travels: compact (postcard), so that argv and
/// environment cost their own size, not four times it as JSON numbers.
pub(crate) fn encode(request: &Request) -> std::io::Result<Vec<u8>> {
    postcard::to_stdvec(request).map_err(std::io::Error::other)
}

/// Blocks until the leader answers; an error if the host went away instead.
pub(crate) fn response(sock: &OwnedFd) -> std::io::Result<Response> {
    let mut body = vec![0u8; MAX_RESPONSE];
    loop {
        // SAFETY: receiving into our buffer.
        let n = unsafe { libc::recv(sock.as_raw_fd(), body.as_mut_ptr().cast(), body.len(), 0) };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if n == 0 {
            return Err(std::io::Error::other(
                "the sandbox host ended before the command did",
            ));
        }
        return serde_json::from_slice(&body[..n as usize]).map_err(std::io::Error::other);
    }
}

/// Tells the leader to stop the command: it kills the command's namespace.
pub(crate) fn hang_up(sock: RawFd) {
    // SAFETY: shutdown on a descriptor we hold.
    unsafe { libc::shutdown(sock, libc::SHUT_WR) };
}

/// Connects to the host for this confinement, starting it if there is none.
/// `None` when no host can be kept here (its directory cannot be written, a
/// socket cannot be bound): the caller builds a sandbox for the command
/// alone. An error when the host could not build its sandbox: a sandbox of
/// one's own would fail the same way.
pub(crate) fn connect(
    confinement: &Confinement,
    settings: &HostSettings,
    init: &InitSpec,
) -> Result<Option<OwnedFd>, SandboxError> {
    // The host's pathname sockets as they are now: hidden in the sandbox,
    // and part of its name, so that a socket bound since (a restarted
    // daemon) gets a host that hides it too. Sockets below a hidden
    // directory are hidden with it, and covered whenever they appear: hosts'
    // own sockets are, so that one host starting does not rename the others.
    let mut init = init.clone();
    let dir = &settings.dir;
    let ahead = confinement.ahead.as_deref();
    // The hosts' own directory is hidden, whatever the caller hides, and by
    // its real path: a hidden path that is a link is not covered.
    let real_dir = match ahead.and_then(|a| a.hosts_dir.as_ref()) {
        Some((made, real)) if made == dir => real.clone(),
        _ => {
            if crate::private::private_dir(dir).is_err() {
                return Ok(None);
            }
            let Ok(real) = std::fs::canonicalize(dir) else {
                return Ok(None);
            };
            real
        }
    };
    init.hidden.push(real_dir.as_os_str().as_bytes().to_vec());
    let sockets = match ahead.and_then(|a| a.sockets.clone()) {
        Some(sockets) => sockets,
        None => confine::host_sockets(),
    };
    let sockets: Vec<Vec<u8>> = sockets
        .into_iter()
        .filter(|socket| {
            !init.hidden.iter().any(|dir| {
                Path::new(std::ffi::OsStr::from_bytes(socket))
                    .starts_with(std::ffi::OsStr::from_bytes(dir))
            })
        })
        .collect();
    init.hidden.extend(sockets);
    let init = &init;
    let key = host_key(confinement, settings, init);
    let socket_name = match &settings.owner {
        Some(owner) => format!("{}-{key}.sock", owner_tag(owner)),
        None => format!("{key}.sock"),
    };
    let lock_path = dir.join(LOCK_FILE);
    let open_lock = || {
        std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .mode(0o600)
            .open(&lock_path)
    };
    let Ok(lock) = open_lock() else {
        return Ok(None);
    };
    // SAFETY: flock on a file we hold; released when it is closed.
    if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) } < 0 {
        return Ok(None);
    }
    let Ok(dir_fd) = File::open(dir) else {
        return Ok(None);
    };
    // The socket's path through the directory's descriptor: the directory
    // can be longer than a socket address allows.
    let socket_path = format!("/proc/self/fd/{}/{socket_name}", dir_fd.as_raw_fd());
    if let Ok(sock) = connect_to(&socket_path) {
        mark_used(&dir_fd, &socket_name);
        return Ok(Some(sock));
    }
    let _ = std::fs::remove_file(dir.join(&socket_name));
    // One more host: the least recently used go first if that is too many.
    if settings.max_hosts > 0 {
        evict(dir, settings.max_hosts - 1);
    }
    let (Ok(listener), Ok(host_lock)) = (listen_on(&socket_path), open_lock()) else {
        return Ok(None);
    };
    let socket_ino = std::fs::symlink_metadata(dir.join(&socket_name))
        .map(|m| m.ino())
        .unwrap_or(0);
    let started = Started {
        listener: &listener,
        lock: &host_lock,
        dir: &dir_fd,
        socket: socket_name,
        socket_ino,
    };
    // A host that cannot even be started (its specification too large for
    // the environment, say): a sandbox of the command's own instead.
    match start(confinement, settings, init, started) {
        Ok(()) => {}
        Err(SandboxError::Spawn { .. }) => return Ok(None),
        Err(e) => return Err(e),
    }
    drop(listener);
    Ok(connect_to(&socket_path).ok())
}

/// Device (major, minor), inode, birth time (seconds, nanoseconds).
pub(crate) type Identity = (u32, u32, u64, i64, u32);

/// Which file `path` is now: device, inode and birth time (the change
/// time where the filesystem keeps none). An inode number alone is reused
/// as soon as it is freed: a secret deleted and written again could get the
/// same one, and a stale host, whose cover over it went with the old file,
/// would show it.
pub(crate) fn identity(path: &[u8]) -> Option<Identity> {
    let st = statx_nofollow(
        path,
        libc::STATX_INO | libc::STATX_BTIME | libc::STATX_CTIME,
    )?;
    let born = if st.stx_mask & libc::STATX_BTIME != 0 {
        st.stx_btime
    } else {
        st.stx_ctime
    };
    Some((
        st.stx_dev_major,
        st.stx_dev_minor,
        st.stx_ino,
        born.tv_sec,
        born.tv_nsec,
    ))
}

/// `statx` of `path` itself (not what a link leads to), asking for `mask`.
fn statx_nofollow(path: &[u8], mask: libc::c_uint) -> Option<libc::statx> {
    let path = CString::new(path).ok()?;
    // SAFETY: an all-zero statx is valid; statx fills it.
    let mut st: libc::statx = unsafe { std::mem::zeroed() };
    // SAFETY: statx with a valid path and buffer.
    let rc = unsafe {
        libc::statx(
            libc::AT_FDCWD,
            path.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
            mask,
            &mut st,
        )
    };
    (rc == 0).then_some(st)
}

/// The host's name: a digest of everything that shapes its sandbox,
/// including which file each path is now. A directory removed and made
/// again (a scratch checkout), a secret file or a host socket that appeared
/// since, all mean a different sandbox, so a different host.
fn host_key(confinement: &Confinement, settings: &HostSettings, init: &InitSpec) -> String {
    let identity = |path: &[u8]| match confinement.ahead.as_deref() {
        Some(ahead) => ahead.identity(path),
        None => identity(path),
    };
    let sources: Vec<_> = init
        .binds
        .iter()
        .chain(&init.read_only)
        .map(|(source, _)| identity(source))
        .collect();
    let hidden: Vec<_> = init.hidden.iter().map(|p| identity(p)).collect();
    let view = (
        &init.binds,
        &init.read_only,
        &init.hidden,
        init.network,
        &init.root,
        settings.idle.as_millis() as u64,
        sources,
        hidden,
    );
    let mut h = Sha256::new();
    h.update(serde_json::to_vec(&view).unwrap_or_default());
    h.update(confinement.init_program.as_os_str().as_bytes());
    // A rebuilt airlock gets a new host rather than talking to the old code.
    if let Ok(meta) = std::fs::metadata(&confinement.init_program) {
        h.update(meta.ino().to_le_bytes());
        h.update(meta.mtime().to_le_bytes());
        h.update(meta.mtime_nsec().to_le_bytes());
        h.update(meta.size().to_le_bytes());
    }
    hex::encode(&h.finalize()[..12])
}

fn unix_socket() -> std::io::Result<OwnedFd> {
    // SAFETY: a fresh socket we then own.
    let fd = unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: just created.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn address(path: &str) -> std::io::Result<(libc::sockaddr_un, libc::socklen_t)> {
    // SAFETY: an all-zero sockaddr_un is valid.
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    let bytes = path.as_bytes();
    if bytes.len() >= addr.sun_path.len() {
        return Err(std::io::Error::other("socket path too long"));
    }
    for (slot, b) in addr.sun_path.iter_mut().zip(bytes) {
        *slot = *b as libc::c_char;
    }
    let len = std::mem::size_of::<libc::sa_family_t>() + bytes.len() + 1;
    Ok((addr, len as libc::socklen_t))
}

fn connect_to(path: &str) -> std::io::Result<OwnedFd> {
    let sock = unix_socket()?;
    let (addr, len) = address(path)?;
    // SAFETY: a valid address of the given length.
    let rc = unsafe {
        libc::connect(
            sock.as_raw_fd(),
            (&addr as *const libc::sockaddr_un).cast(),
            len,
        )
    };
    if rc < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(sock)
}

fn listen_on(path: &str) -> std::io::Result<OwnedFd> {
    let sock = unix_socket()?;
    let (addr, len) = address(path)?;
    // SAFETY: a valid address of the given length.
    unsafe {
        if libc::bind(
            sock.as_raw_fd(),
            (&addr as *const libc::sockaddr_un).cast(),
            len,
        ) < 0
        {
            return Err(std::io::Error::last_os_error());
        }
    }
    // The user's alone whatever the umask (its directory is too), before
    // anyone can connect.
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    // SAFETY: listen on the socket just bound.
    if unsafe { libc::listen(sock.as_raw_fd(), 128) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(sock)
}

/// What a new host is handed: its listening socket, its own descriptor of
/// the lock file, the hosts' directory and its socket's name there.
struct Started<'a> {
    listener: &'a OwnedFd,
    lock: &'a File,
    dir: &'a File,
    socket: String,
    socket_ino: u64,
}

/// Starts `<init program> __sandbox-host` and waits until its sandbox is
/// built (or its setup failed).
fn start(
    confinement: &Confinement,
    settings: &HostSettings,
    init: &InitSpec,
    handed: Started,
) -> Result<(), SandboxError> {
    // Only the sandbox's view: each command brings its own argv and
    // environment.
    let mut view = init.clone();
    view.argv.clear();
    view.env.clear();
    let spec = HostSpec {
        init: view,
        idle_ms: settings.idle.as_millis() as u64,
        socket: handed.socket,
        socket_ino: handed.socket_ino,
    };
    let json = serde_json::to_vec(&spec).map_err(|e| SandboxError::Setup {
        step: "encoding the sandbox specification".into(),
        error: e.to_string(),
    })?;
    let pipe = || crate::pipe_cloexec().map_err(|e| fail("making a pipe", e));
    let (ready_read, ready_write) = pipe()?;
    let (spec_read, spec_write) = pipe()?;
    let sources = [
        handed.listener.as_raw_fd(),
        ready_write.as_raw_fd(),
        handed.lock.as_raw_fd(),
        handed.dir.as_raw_fd(),
        spec_read.as_raw_fd(),
    ];
    let mut command = Command::new(&confinement.init_program);
    command
        .arg(HOST_ARG)
        .current_dir("/")
        .env_clear()
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // SAFETY: fcntl, dup2 and setsid are async-signal-safe.
    unsafe {
        command.pre_exec(move || {
            // Copy above the targets first: one target could be another's source.
            let mut high = [0; 5];
            for (slot, fd) in high.iter_mut().zip(sources) {
                *slot = libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 10);
                if *slot < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            for (fd, target) in high
                .into_iter()
                .zip([LISTEN_FD, READY_FD, LOCK_FD, DIR_FD, SPEC_FD])
            {
                if libc::dup2(fd, target) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            // Nothing else airlock's own caller left open reaches a
            // process that outlives it (a CI job's pipes, say).
            const CLOSE_RANGE_CLOEXEC: libc::c_uint = 1 << 2;
            libc::syscall(
                libc::SYS_close_range,
                SPEC_FD + 1,
                libc::c_uint::MAX,
                CLOSE_RANGE_CLOEXEC,
            );
            // Not in airlock's process group or session: the host outlives
            // this command, and the group kill of a time limit.
            libc::setsid();
            Ok(())
        });
    }
    let mut child = command.spawn().map_err(|source| SandboxError::Spawn {
        program: confinement.init_program.display().to_string(),
        source,
    })?;
    drop(ready_write);
    drop(spec_read);
    // The host reads it all first thing; a host that died first is
    // reported below, through the ready pipe.
    let _ = File::from(spec_write).write_all(&json);
    let mut text = String::new();
    let _ = File::from(ready_read).read_to_string(&mut text);
    let _ = child.wait();
    let report = text
        .lines()
        .filter_map(|l| serde_json::from_str::<InitReport>(l).ok())
        .next();
    match report {
        Some(InitReport::Ready) => Ok(()),
        Some(InitReport::SetupFailed { step, error }) => Err(SandboxError::Setup { step, error }),
        _ => Err(SandboxError::Setup {
            step: "starting the sandbox host".into(),
            error: "it ended without saying whether its sandbox was built".into(),
        }),
    }
}
