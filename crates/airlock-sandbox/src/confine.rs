//! The Linux backend: a re-executed init process builds the sandbox, then
//! runs the command in it.
//!
//! `run` starts `<init program> __sandbox-init` with the specification on a
//! pipe (fd 5). That process is single-threaded and fresh, so it can
//! safely unshare namespaces, fork and set up mounts:
//!
//! 1. unshare user, mount, pid, ipc, uts (and net, unless the network is
//!    granted) namespaces; map the caller's uid and gid to themselves;
//! 2. fork: the child is PID 1 of the new pid namespace. It bind-mounts `/`
//!    read-only (recursively) into a new root, hides secret paths under empty
//!    tmpfs or `/dev/null`, binds the writable paths back read-write, mounts
//!    a fresh `/proc`, and pivots into the new root. Without the network it
//!    brings up the namespace's own loopback;
//! 3. PID 1 forks the command's process, which sets resource limits,
//!    `no_new_privs`, drops every capability, enters a Landlock domain (write
//!    only below the writable paths; no signals or abstract sockets outside)
//!    and seccomp filters (no mount, namespaces, keyrings, bpf, module or
//!    kexec calls; no io_uring; sockets of the Unix, IPv4, IPv6 and routing
//!    netlink families only; no x32 system calls), then execs;
//! 4. PID 1 reaps until the command exits, reports its status on fd 3 and
//!    exits. The kernel then kills everything left in the namespace, so a
//!    double fork or `setsid` does not outlive the command.
//!
//! Every setup step reports failure precisely ("mounting /proc: …") so that
//! `sandbox doctor` and refusals can name the missing protection.

use std::ffi::{CString, OsStr, OsString};
use std::io::Write;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub const INIT_ARG: &str = "__sandbox-init";
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

#[derive(Debug)]
pub(crate) struct SetupError {
    pub(crate) step: String,
    pub(crate) error: String,
}

pub(crate) fn fail(step: impl Into<String>, error: impl std::fmt::Display) -> SetupError {
    SetupError {
        step: step.into(),
        error: error.to_string(),
    }
}

pub(crate) fn errno(step: impl Into<String>) -> SetupError {
    fail(step, std::io::Error::last_os_error())
}

pub(crate) fn check(rc: libc::c_int, step: impl Into<String>) -> Result<(), SetupError> {
    if rc < 0 { Err(errno(step)) } else { Ok(()) }
}

pub(crate) fn cstr(b: &[u8]) -> Result<CString, SetupError> {
    CString::new(b.to_vec()).map_err(|_| {
        fail(
            "encoding arguments",
            "a NUL byte in an argument, path or variable",
        )
    })
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

impl From<SetupError> for crate::SandboxError {
    fn from(e: SetupError) -> crate::SandboxError {
        crate::SandboxError::Setup {
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

/// The command's own process: once `confined` (every confinement step
/// taken), it becomes the command; a step that failed, or the `execve`, is
/// reported on `fd` and the process exits 127.
pub(crate) fn become_command(
    spec: &InitSpec,
    confined: Result<(), SetupError>,
    fd: libc::c_int,
) -> ! {
    let error = match confined {
        Ok(()) => exec(spec),
        Err(e) => e,
    };
    report_to(fd, &error.into());
    // SAFETY: leaving the forked child without the parent's destructors.
    unsafe { libc::_exit(127) }
}

/// As PID 1 once the command's process is started: reaps until it exits,
/// kills and reaps whatever it left running, reports its status on `fd`,
/// and returns the code a shell would give. Once the status is reported,
/// nothing the command started is left to act.
pub(crate) fn reap_and_report(child: libc::pid_t, fd: libc::c_int) -> Result<i32, SetupError> {
    let status = reap_until(child)?;
    // SAFETY: getpid is always safe; kill(-1) from PID 1 of a pid namespace
    // reaches that namespace only (never anything outside it).
    if unsafe { libc::getpid() } == 1 {
        unsafe { libc::kill(-1, libc::SIGKILL) };
        reap_all();
    }
    let r = if libc::WIFEXITED(status) {
        InitReport::Exited {
            code: libc::WEXITSTATUS(status),
        }
    } else {
        InitReport::Signaled {
            signal: libc::WTERMSIG(status),
        }
    };
    report_to(fd, &r);
    Ok(shell_status(status))
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

/// Entry point of `<init program> __sandbox-init`. Never returns.
pub fn init_main() -> ! {
    let code = code_or_report(init(), RESULT_FD);
    std::process::exit(code)
}

fn init() -> Result<i32, SetupError> {
    // The report pipe must not reach the command, or it could forge a report;
    // nor the gate, which it has no use for.
    // SAFETY: fcntl on descriptor numbers; harmless if they are not open.
    unsafe {
        libc::fcntl(RESULT_FD, libc::F_SETFD, libc::FD_CLOEXEC);
        libc::fcntl(GATE_FD, libc::F_SETFD, libc::FD_CLOEXEC);
    }
    let mut spec: InitSpec = read_spec(SPEC_FD)?;
    // Pathname sockets ignore network namespaces, mount flags and (before
    // Landlock ABI 9) Landlock: hide the host's, or the command could talk to
    // any daemon (docker.sock, agents, session buses) it can see.
    spec.hidden.extend(host_sockets());
    // If airlock dies (interrupted), so does everything it started.
    // SAFETY: plain prctl.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) };
    if spec.weaker {
        confine_process(&spec, false)?;
        return Err(exec(&spec));
    }
    enter_namespaces(&spec)?;
    // SAFETY: single-threaded process; the child only calls async-signal-safe
    // code or allocates in a fresh single-threaded copy.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(errno("forking PID 1 of the sandbox"));
    }
    if pid == 0 {
        let code = code_or_report(pid1(&spec), RESULT_FD);
        // SAFETY: leaving the forked child without running the parent's destructors.
        unsafe { libc::_exit(code) };
    }
    let status = wait_for(pid);
    Ok(status.unwrap_or(125))
}

pub(crate) fn wait_for(pid: libc::pid_t) -> Option<i32> {
    let mut status = 0;
    loop {
        // SAFETY: waiting for our own child.
        let rc = unsafe { libc::waitpid(pid, &mut status, 0) };
        if rc == pid {
            break;
        }
        if rc < 0 && std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            return None;
        }
    }
    Some(shell_status(status))
}

pub(crate) fn shell_status(status: libc::c_int) -> i32 {
    if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        128 + libc::WTERMSIG(status)
    }
}

pub(crate) fn enter_namespaces(spec: &InitSpec) -> Result<(), SetupError> {
    // SAFETY: plain system calls.
    let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
    let mut flags = libc::CLONE_NEWUSER
        | libc::CLONE_NEWNS
        | libc::CLONE_NEWPID
        | libc::CLONE_NEWIPC
        | libc::CLONE_NEWUTS;
    if !spec.network {
        flags |= libc::CLONE_NEWNET;
    }
    // SAFETY: unshare in a single-threaded process.
    check(
        unsafe { libc::unshare(flags) },
        "creating user, mount, pid and network namespaces",
    )?;
    std::fs::write("/proc/self/setgroups", "deny")
        .map_err(|e| fail("denying setgroups in the user namespace", e))?;
    std::fs::write("/proc/self/uid_map", format!("{uid} {uid} 1"))
        .map_err(|e| fail("mapping the user id", e))?;
    std::fs::write("/proc/self/gid_map", format!("{gid} {gid} 1"))
        .map_err(|e| fail("mapping the group id", e))?;
    Ok(())
}

/// PID 1 of the sandbox: build the filesystem view, start the command, reap.
fn pid1(spec: &InitSpec) -> Result<i32, SetupError> {
    // SAFETY: plain prctl; PID 1 dies with the init process.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) };
    build_root(spec)?;
    if !spec.network {
        loopback_up()?;
    }
    if let Some(n) = spec.processes {
        cap_pids(n);
    }
    // SAFETY: fork in the single-threaded PID 1.
    let child = unsafe { libc::fork() };
    if child < 0 {
        return Err(errno("forking the command"));
    }
    if child == 0 {
        become_command(spec, confine_process(spec, true), RESULT_FD);
    }
    reap_and_report(child, RESULT_FD)
}

/// Caps the processes of the current pid namespace. RLIMIT_NPROC does not
/// bind the host's root user (the kernel exempts it), so the namespace's own
/// pid_max (Linux >= 6.14, at least 301) bounds the processes in it whatever
/// the uid. Pid 0 is never used and PID 1 is ours. Older kernels refuse the
/// write and keep RLIMIT_NPROC only.
pub(crate) fn cap_pids(n: u64) {
    set_pid_max(&n.saturating_add(2).max(301).to_string());
}

const PID_MAX: &str = "/proc/sys/kernel/pid_max";

/// The current pid namespace's pid_max, as the kernel writes it.
pub(crate) fn pid_max() -> Option<String> {
    std::fs::read_to_string(PID_MAX)
        .ok()
        .map(|v| v.trim().to_string())
}

/// Sets the current pid namespace's pid_max (see [`cap_pids`]).
pub(crate) fn set_pid_max(value: &str) {
    let _ = std::fs::write(PID_MAX, value);
}

/// As PID 1: reaps every child until `child` exits; returns its wait status.
pub(crate) fn reap_until(child: libc::pid_t) -> Result<libc::c_int, SetupError> {
    loop {
        let mut status = 0;
        // SAFETY: reaping children of PID 1.
        let rc = unsafe { libc::waitpid(-1, &mut status, 0) };
        if rc < 0 {
            if std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            return Err(fail("waiting for the command", "it vanished"));
        }
        if rc == child {
            return Ok(status);
        }
    }
}

/// Reaps every child until none is left.
fn reap_all() {
    loop {
        let mut status = 0;
        // SAFETY: reaping children of PID 1.
        let rc = unsafe { libc::waitpid(-1, &mut status, 0) };
        if rc < 0 && std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            return;
        }
    }
}

/// Mounts an empty, private `/dev/shm` on `target`, if there is one.
fn mount_shm(target: &[u8]) -> Result<(), SetupError> {
    if !Path::new(&os(target)).is_dir() {
        return Ok(());
    }
    mount(
        Some(b"tmpfs"),
        target,
        Some("tmpfs"),
        libc::MS_NOSUID | libc::MS_NODEV,
        Some("size=64m,mode=1777"),
        "mounting /dev/shm",
    )
}

/// Mounts a fresh proc (of the current pid namespace) on `target`.
pub(crate) fn mount_proc(target: &[u8], step: &str) -> Result<(), SetupError> {
    mount(
        Some(b"proc"),
        target,
        Some("proc"),
        libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
        None,
        step,
    )
}

fn mount(
    src: Option<&[u8]>,
    target: &[u8],
    fstype: Option<&str>,
    flags: libc::c_ulong,
    data: Option<&str>,
    step: &str,
) -> Result<(), SetupError> {
    let src = src.map(cstr).transpose()?;
    let target_c = cstr(target)?;
    let fstype = fstype.map(|f| CString::new(f).expect("static"));
    let data = data.map(|d| CString::new(d).expect("static"));
    // SAFETY: all pointers are valid NUL-terminated strings or null.
    let rc = unsafe {
        libc::mount(
            src.as_ref().map_or(std::ptr::null(), |s| s.as_ptr()),
            target_c.as_ptr(),
            fstype.as_ref().map_or(std::ptr::null(), |s| s.as_ptr()),
            flags,
            data.as_ref()
                .map_or(std::ptr::null(), |s| s.as_ptr() as *const libc::c_void),
        )
    };
    check(rc, format!("{step} ({})", String::from_utf8_lossy(target)))
}

#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

const MOUNT_ATTR_RDONLY: u64 = 0x1;
const MOUNT_ATTR_NOSUID: u64 = 0x2;
const AT_RECURSIVE: libc::c_int = 0x8000;

fn set_read_only_recursive(target: &[u8]) -> Result<(), SetupError> {
    let path = cstr(target)?;
    let attr = MountAttr {
        attr_set: MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID,
        attr_clr: 0,
        propagation: 0,
        userns_fd: 0,
    };
    // SAFETY: mount_setattr with a valid path and attribute struct.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            libc::AT_FDCWD,
            path.as_ptr(),
            AT_RECURSIVE as libc::c_uint,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    check(rc as libc::c_int, "making the whole filesystem read-only")
}

fn join(root: &[u8], path: &[u8]) -> Vec<u8> {
    let mut out = root.to_vec();
    out.extend_from_slice(path);
    out
}

pub(crate) fn build_root(spec: &InitSpec) -> Result<(), SetupError> {
    let root = &spec.root;
    mount(
        None,
        b"/",
        None,
        libc::MS_REC | libc::MS_PRIVATE,
        None,
        "making mounts private",
    )?;
    mount(
        Some(b"/"),
        root,
        None,
        libc::MS_BIND | libc::MS_REC,
        None,
        "binding the filesystem into the sandbox",
    )?;
    set_read_only_recursive(root)?;

    // Hidden and writable paths, parents before children, so that a later
    // mount is never buried under an earlier one (a private /tmp bound over
    // the host's must come before a worktree that lives below /tmp).
    enum Op<'a> {
        Hide(&'a [u8]),
        Bind(&'a [u8], &'a [u8], bool),
    }
    let mut ops: Vec<Op> = spec.hidden.iter().map(|h| Op::Hide(h)).collect();
    ops.extend(spec.binds.iter().map(|(s, t)| Op::Bind(s, t, true)));
    ops.extend(spec.read_only.iter().map(|(s, t)| Op::Bind(s, t, false)));
    let depth = |op: &Op| {
        let target = match op {
            Op::Hide(t) | Op::Bind(_, t, _) => t,
        };
        target
            .split(|b| *b == b'/')
            .filter(|c| !c.is_empty())
            .count()
    };
    ops.sort_by_key(|op| depth(op));
    let mut hidden_dirs = Vec::new();
    for op in ops {
        match op {
            Op::Hide(path) => {
                // Judged inside the new root: what is not visible needs no hiding.
                let target = join(root, path);
                let Ok(meta) = std::fs::symlink_metadata(Path::new(&os(&target))) else {
                    continue;
                };
                let hidden = if meta.is_dir() {
                    mount(
                        Some(b"tmpfs"),
                        &target,
                        Some("tmpfs"),
                        libc::MS_NOSUID | libc::MS_NODEV,
                        Some("size=1m,mode=0755"),
                        "hiding a directory",
                    )
                    .map(|()| hidden_dirs.push(target.clone()))
                } else if meta.is_file() {
                    mount(
                        Some(b"/dev/null"),
                        &target,
                        None,
                        libc::MS_BIND,
                        None,
                        "hiding a file",
                    )
                } else if std::os::unix::fs::FileTypeExt::is_socket(&meta.file_type()) {
                    // connect() to /dev/null is refused.
                    mount(
                        Some(b"/dev/null"),
                        &target,
                        None,
                        libc::MS_BIND,
                        None,
                        "hiding a socket",
                    )
                } else {
                    Ok(())
                };
                // Removed since it was looked at (a socket of a daemon or a
                // test that just ended): nothing is there to hide.
                let gone = || std::fs::symlink_metadata(Path::new(&os(&target))).is_err();
                match hidden {
                    Err(_) if gone() => {}
                    hidden => hidden?,
                }
            }
            Op::Bind(source, target, writable) => {
                let inside = join(root, target);
                let inside_path = PathBuf::from(os(&inside));
                if !inside_path.exists() {
                    // Below a hidden directory (the home), the mount point
                    // is made in its empty tmpfs: a directory, or an empty
                    // file for a file.
                    let is_file =
                        std::fs::metadata(Path::new(&os(source))).is_ok_and(|m| !m.is_dir());
                    let dir = if is_file {
                        inside_path.parent()
                    } else {
                        Some(inside_path.as_path())
                    };
                    dir.map_or(Ok(()), std::fs::create_dir_all)
                        .and_then(|()| {
                            if is_file {
                                std::fs::File::create(&inside_path).map(drop)
                            } else {
                                Ok(())
                            }
                        })
                        .map_err(|e| {
                            fail(
                                format!("making the mount point {}", inside_path.display()),
                                e,
                            )
                        })?;
                }
                mount(
                    Some(source),
                    &inside,
                    None,
                    libc::MS_BIND | libc::MS_REC,
                    None,
                    "binding a path into the sandbox",
                )?;
                if !writable {
                    set_read_only_recursive(&inside)?;
                }
            }
        }
    }
    for dir in &hidden_dirs {
        mount(
            None,
            dir,
            None,
            libc::MS_REMOUNT | libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV,
            None,
            "making a hidden directory read-only",
        )?;
    }
    mount_proc(&join(root, b"/proc"), "mounting /proc for the sandbox")?;
    mount_shm(&join(root, b"/dev/shm"))?;

    let root_c = cstr(root)?;
    // SAFETY: chdir and pivot_root(".", ".") with valid strings: the old root
    // is stacked under the new one and detached right after.
    unsafe {
        check(libc::chdir(root_c.as_ptr()), "entering the new root")?;
        let dot = CString::new(".").expect("static");
        check(
            libc::syscall(libc::SYS_pivot_root, dot.as_ptr(), dot.as_ptr()) as libc::c_int,
            "pivoting into the new root",
        )?;
        check(
            libc::umount2(dot.as_ptr(), libc::MNT_DETACH),
            "detaching the old root",
        )?;
        let slash = CString::new("/").expect("static");
        check(libc::chdir(slash.as_ptr()), "entering the new root")?;
    }
    Ok(())
}

/// `std::fs::canonicalize` for many paths that share directories: each
/// directory on the way is looked at once (one `lstat`, where
/// `canonicalize` reads every component of every path again). A sandbox
/// resolves every hidden path, a score of them under the same home, before
/// every command.
#[derive(Debug, Clone, Default)]
pub(crate) struct RealPaths {
    seen: std::collections::HashMap<PathBuf, Option<PathBuf>>,
}

impl RealPaths {
    /// The path with every link resolved, if it exists: as
    /// `canonicalize`, except that a trailing `/` after a file resolves
    /// rather than fails (which only ever hides more).
    pub(crate) fn real(&mut self, path: &Path) -> Option<PathBuf> {
        use std::path::Component;
        let plain = path.is_absolute()
            && path
                .components()
                .all(|c| matches!(c, Component::RootDir | Component::Normal(_)));
        let (true, Some(parent), Some(name)) = (plain, path.parent(), path.file_name()) else {
            // The root, `..`, a relative path: rare enough to resolve whole.
            return std::fs::canonicalize(path).ok();
        };
        if let Some(known) = self.seen.get(path) {
            return known.clone();
        }
        let real = self.real(parent).and_then(|dir| {
            let candidate = dir.join(name);
            match std::fs::symlink_metadata(&candidate) {
                Ok(meta) if meta.file_type().is_symlink() => std::fs::canonicalize(&candidate).ok(),
                Ok(_) => Some(candidate),
                Err(_) => None,
            }
        });
        self.seen.insert(path.to_path_buf(), real.clone());
        real
    }
}

/// The host's bound pathname sockets, as canonical paths, from
/// `/proc/net/unix` (read before leaving the host's network namespace).
/// Sockets bound later are not covered; Landlock ABI 9 covers them all.
pub(crate) fn host_sockets() -> Vec<Vec<u8>> {
    let Ok(table) = std::fs::read("/proc/net/unix") else {
        return Vec::new();
    };
    // Accepted connections repeat their listener's path: dedup before resolving.
    let bound: std::collections::BTreeSet<&[u8]> = table
        .split(|b| *b == b'\n')
        .skip(1)
        .filter_map(|line| {
            // Num RefCount Protocol Flags Type St Inode (padded), one space, Path.
            let mut rest = line;
            for _ in 0..7 {
                rest = rest.trim_ascii_start();
                rest = &rest[rest.iter().position(|b| *b == b' ')?..];
            }
            rest.strip_prefix(b" ")
        })
        // A socket bound through a descriptor (`/proc/self/fd/N/…`) names
        // a file only in the process that bound it: resolved here, it
        // would name whatever this process has open as N.
        .filter(|p| p.starts_with(b"/") && !p.starts_with(b"/proc/") && !p.starts_with(b"/dev/fd/"))
        .collect();
    let mut real = RealPaths::default();
    let mut paths: Vec<Vec<u8>> = bound
        .into_iter()
        .filter_map(|p| real.real(Path::new(&os(p))))
        .map(|p| p.into_os_string().into_vec())
        .collect();
    paths.sort();
    paths.dedup();
    paths
}

/// Brings up `lo` in the new network namespace: tests can serve on 127.0.0.1
/// without reaching the host's loopback.
pub(crate) fn loopback_up() -> Result<(), SetupError> {
    // SAFETY: an ioctl on a socket we own, with a zeroed, filled-in ifreq.
    unsafe {
        let sock = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        if sock < 0 {
            return Err(errno("opening a socket to configure loopback"));
        }
        let mut req: libc::ifreq = std::mem::zeroed();
        for (i, b) in b"lo\0".iter().enumerate() {
            req.ifr_name[i] = *b as libc::c_char;
        }
        let rc = libc::ioctl(sock, libc::SIOCGIFFLAGS, &mut req);
        if rc < 0 {
            libc::close(sock);
            return Err(errno("reading loopback flags"));
        }
        req.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
        let rc = libc::ioctl(sock, libc::SIOCSIFFLAGS, &req);
        libc::close(sock);
        check(rc, "bringing up the sandbox's loopback")
    }
}

/// The Landlock ruleset and seccomp filters of a sandbox, built ahead of the
/// command: a warm sandbox builds them once and every command applies them.
pub(crate) struct Prepared {
    ruleset: landlock::RulesetCreated,
    filters: Filters,
}

/// Builds what [`confine_process`] applies: in the sandbox's final view of
/// the files (after `pivot_root`), since the ruleset holds its paths open.
pub(crate) fn prepare(spec: &InitSpec, in_namespaces: bool) -> Result<Prepared, SetupError> {
    let filters = seccomp_filters()?;
    Ok(Prepared {
        ruleset: landlock_ruleset(spec, in_namespaces)?,
        filters,
    })
}

/// Limits, no_new_privs, capabilities, Landlock, seccomp: everything that
/// applies to the command's own process.
pub(crate) fn confine_process(spec: &InitSpec, in_namespaces: bool) -> Result<(), SetupError> {
    let prepared = prepare(spec, in_namespaces)?;
    limit(spec)?;
    confine_prepared(in_namespaces, &prepared)
}

/// The command's own limits on processes, memory and file size.
pub(crate) fn limit(spec: &InitSpec) -> Result<(), SetupError> {
    // SAFETY: plain system calls on our own process.
    unsafe {
        if let Some(n) = spec.processes {
            let lim = libc::rlimit {
                rlim_cur: n,
                rlim_max: n,
            };
            check(
                libc::setrlimit(libc::RLIMIT_NPROC, &lim),
                "limiting the number of processes",
            )?;
        }
        if let Some(bytes) = spec.memory_bytes {
            let lim = libc::rlimit {
                rlim_cur: bytes,
                rlim_max: bytes,
            };
            check(libc::setrlimit(libc::RLIMIT_AS, &lim), "limiting memory")?;
        }
        if let Some(bytes) = spec.file_size_bytes {
            let lim = libc::rlimit {
                rlim_cur: bytes,
                rlim_max: bytes,
            };
            check(
                libc::setrlimit(libc::RLIMIT_FSIZE, &lim),
                "limiting the size of files",
            )?;
        }
    }
    Ok(())
}

/// [`confine_process`] without the limits, with the ruleset and filters
/// built beforehand: nothing here depends on the command.
pub(crate) fn confine_prepared(in_namespaces: bool, prepared: &Prepared) -> Result<(), SetupError> {
    // SAFETY: plain system calls on our own process.
    unsafe {
        if libc::setsid() < 0 && in_namespaces {
            return Err(errno("starting a session"));
        }
        check(
            libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0),
            "setting no_new_privs",
        )?;
        if in_namespaces {
            // Empty the bounding set so that exec grants no capability, even to uid 0.
            for cap in 0..=63 {
                if libc::prctl(libc::PR_CAPBSET_DROP, cap, 0, 0, 0) < 0
                    && std::io::Error::last_os_error().raw_os_error() != Some(libc::EINVAL)
                {
                    return Err(errno("dropping capabilities"));
                }
            }
            let _ = libc::prctl(
                libc::PR_CAP_AMBIENT,
                libc::PR_CAP_AMBIENT_CLEAR_ALL,
                0,
                0,
                0,
            );
        }
    }
    prepared
        .ruleset
        .try_clone()
        .map_err(|e| fail("entering the Landlock domain", e))?
        .restrict_self()
        .map_err(|e| fail("entering the Landlock domain", e))?;
    for filter in [
        &prepared.filters.deny,
        &prepared.filters.absent,
        &prepared.filters.families,
        &prepared.filters.x32,
    ] {
        seccompiler::apply_filter(filter).map_err(|e| fail("installing the seccomp filter", e))?;
    }
    Ok(())
}

fn landlock_ruleset(
    spec: &InitSpec,
    in_namespaces: bool,
) -> Result<landlock::RulesetCreated, SetupError> {
    use landlock::{
        ABI, Access, AccessFs, CompatLevel, Compatible, PathBeneath, PathFd, Ruleset, RulesetAttr,
        RulesetCreatedAttr, Scope,
    };
    // V9 adds ResolveUnix: connecting to a pathname socket is then allowed
    // only below the writable paths (best effort: older kernels drop it and
    // rely on the sockets hidden in build_root).
    let abi = ABI::V9;
    let step = |e: &dyn std::fmt::Display| fail("entering the Landlock domain", e);
    let mut ruleset = Ruleset::default()
        .set_compatibility(CompatLevel::BestEffort)
        .handle_access(AccessFs::from_all(abi))
        .map_err(|e| step(&e))?;
    ruleset = ruleset
        .scope(Scope::from_all(ABI::V6))
        .map_err(|e| step(&e))?;
    let mut created = ruleset.create().map_err(|e| step(&e))?;
    let read = AccessFs::from_read(abi);
    created = created
        .add_rule(PathBeneath::new(
            PathFd::new("/").map_err(|e| step(&e))?,
            read,
        ))
        .map_err(|e| step(&e))?;
    let mut writable: Vec<Vec<u8>> = spec
        .binds
        .iter()
        .map(|(source, target)| {
            if in_namespaces {
                target.clone()
            } else {
                source.clone()
            }
        })
        .collect();
    writable.push(b"/dev/shm".to_vec());
    for path in &writable {
        if let Ok(fd) = PathFd::new(os(path)) {
            created = created
                .add_rule(PathBeneath::new(fd, AccessFs::from_all(abi)))
                .map_err(|e| step(&e))?;
        }
    }
    // Devices a command legitimately writes to.
    let device_rights = AccessFs::ReadFile | AccessFs::WriteFile | AccessFs::IoctlDev;
    for dev in [
        "/dev/null",
        "/dev/zero",
        "/dev/full",
        "/dev/tty",
        "/dev/ptmx",
        "/dev/pts",
    ] {
        if let Ok(fd) = PathFd::new(dev) {
            let rights = if dev == "/dev/pts" {
                device_rights | read
            } else {
                device_rights
            };
            created = created
                .add_rule(PathBeneath::new(fd, rights))
                .map_err(|e| step(&e))?;
        }
    }
    Ok(created)
}

fn seccomp_filters() -> Result<Filters, SetupError> {
    use seccompiler::{SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompRule};
    use std::collections::BTreeMap;
    let step = |e: &dyn std::fmt::Display| fail("building the seccomp filter", e);
    let denied = [
        libc::SYS_mount,
        libc::SYS_umount2,
        libc::SYS_pivot_root,
        libc::SYS_unshare,
        libc::SYS_setns,
        libc::SYS_open_by_handle_at,
        libc::SYS_keyctl,
        libc::SYS_add_key,
        libc::SYS_request_key,
        libc::SYS_bpf,
        libc::SYS_userfaultfd,
        libc::SYS_kexec_load,
        libc::SYS_kexec_file_load,
        libc::SYS_init_module,
        libc::SYS_finit_module,
        libc::SYS_delete_module,
        libc::SYS_reboot,
        libc::SYS_swapon,
        libc::SYS_swapoff,
        libc::SYS_fsopen,
        libc::SYS_fsmount,
        libc::SYS_move_mount,
        libc::SYS_open_tree,
        libc::SYS_mount_setattr,
    ];
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = denied.iter().map(|s| (*s, vec![])).collect();
    // clone with any namespace flag: a new namespace could undo the sandbox's view.
    let ns_flags = [
        libc::CLONE_NEWUSER,
        libc::CLONE_NEWNS,
        libc::CLONE_NEWNET,
        libc::CLONE_NEWPID,
        libc::CLONE_NEWIPC,
        libc::CLONE_NEWUTS,
        libc::CLONE_NEWCGROUP,
    ];
    let mut clone_rules = Vec::new();
    for flag in ns_flags {
        let cond = SeccompCondition::new(
            0,
            SeccompCmpArgLen::Qword,
            SeccompCmpOp::MaskedEq(flag as u64),
            flag as u64,
        )
        .map_err(|e| step(&e))?;
        clone_rules.push(SeccompRule::new(vec![cond]).map_err(|e| step(&e))?);
    }
    rules.insert(libc::SYS_clone, clone_rules);
    let deny = program(rules, libc::EPERM)?;
    // Calls answered as a kernel without them answers, so that programs
    // fall back. clone3 passes its flags in memory, out of a filter's
    // reach: the C library falls back to clone, which is checked above.
    // io_uring does its work in the kernel without system calls a filter
    // could see (opening, connecting, sending), and its code has been a
    // steady source of kernel exploits.
    let absent = program(
        [
            libc::SYS_clone3,
            libc::SYS_io_uring_setup,
            libc::SYS_io_uring_enter,
            libc::SYS_io_uring_register,
        ]
        .into_iter()
        .map(|s| (s, vec![]))
        .collect(),
        libc::ENOSYS,
    )?;
    let families = program(socket_family_rules()?, libc::EAFNOSUPPORT)?;
    Ok(Filters {
        deny,
        absent,
        families,
        x32: x32_program(),
    })
}

/// The seccomp filters of a command: denied calls (`EPERM`), calls
/// answered as absent (`ENOSYS`), socket families refused (`EAFNOSUPPORT`).
/// A filter has one answer, hence three.
struct Filters {
    deny: seccompiler::BpfProgram,
    absent: seccompiler::BpfProgram,
    families: seccompiler::BpfProgram,
    x32: seccompiler::BpfProgram,
}

/// The x32 ABI's system calls (on x86_64 kernels built with it) carry the
/// number of their x86_64 twin with bit 30 set, under the x86_64
/// architecture: the other filters, which match exact numbers, never see
/// them, so `mount`, `unshare` or `io_uring_setup` called that way would
/// pass. Every such number is answered `ENOSYS`, as a kernel without the
/// ABI answers. seccompiler cannot compare a number by range, hence a
/// program of our own: load the architecture; anything but x86_64 is left
/// to the other filters (which kill a foreign architecture); load the
/// number; at or above the x32 bit, `ENOSYS`; otherwise allow.
fn x32_program() -> seccompiler::BpfProgram {
    if !cfg!(target_arch = "x86_64") {
        return Vec::new();
    }
    // Classic BPF, as in linux/filter.h and linux/seccomp.h.
    const LOAD_WORD: u16 = 0x20; // BPF_LD (0) | BPF_W (0) | BPF_ABS
    const JUMP_IF_EQUAL: u16 = 0x05 | 0x10; // BPF_JMP | BPF_JEQ | BPF_K
    const JUMP_IF_AT_LEAST: u16 = 0x05 | 0x30; // BPF_JMP | BPF_JGE | BPF_K
    const RETURN: u16 = 0x06; // BPF_RET | BPF_K
    const NR_OFFSET: u32 = 0; // seccomp_data.nr
    const ARCH_OFFSET: u32 = 4; // seccomp_data.arch
    const AUDIT_ARCH_X86_64: u32 = 62 | 0x8000_0000 | 0x4000_0000;
    const X32_SYSCALL_BIT: u32 = 0x4000_0000;
    let op = |code, jt, jf, k| seccompiler::sock_filter { code, jt, jf, k };
    vec![
        op(LOAD_WORD, 0, 0, ARCH_OFFSET),
        op(JUMP_IF_EQUAL, 0, 3, AUDIT_ARCH_X86_64),
        op(LOAD_WORD, 0, 0, NR_OFFSET),
        op(JUMP_IF_AT_LEAST, 0, 1, X32_SYSCALL_BIT),
        op(RETURN, 0, 0, libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32),
        op(RETURN, 0, 0, libc::SECCOMP_RET_ALLOW),
    ]
}

/// Socket families a command may use: Unix sockets, IPv4 and IPv6 (with
/// the network off they reach only the sandbox's own loopback), and
/// routing netlink (what the C library's resolver and `ip` ask about
/// interfaces and addresses). Everything else is answered as a kernel
/// without the family answers: vsock, which no network namespace
/// confines, reaches the hypervisor; packet, crypto (`AF_ALG`), key,
/// TIPC, RDS, XDP, Bluetooth, CAN, netfilter and the other netlink
/// protocols are kernel code no build or test needs.
pub(crate) const SOCKET_FAMILIES: &[(libc::c_int, &str)] = &[
    (libc::AF_UNIX, "Unix"),
    (libc::AF_INET, "IPv4"),
    (libc::AF_INET6, "IPv6"),
    (libc::AF_NETLINK, "netlink (routing only)"),
];

fn socket_family_rules()
-> Result<std::collections::BTreeMap<i64, Vec<seccompiler::SeccompRule>>, SetupError> {
    use seccompiler::{SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompRule};
    let step = |e: &dyn std::fmt::Display| fail("building the seccomp filter", e);
    // The family and protocol are C ints: compared as 32 bits, as the
    // kernel reads them.
    let arg = |index: u8, op: SeccompCmpOp, value: libc::c_int| {
        SeccompCondition::new(index, SeccompCmpArgLen::Dword, op, value as u32 as u64)
            .map_err(|e| step(&e))
    };
    let other_family = SOCKET_FAMILIES
        .iter()
        .map(|(family, _)| arg(0, SeccompCmpOp::Ne, *family))
        .collect::<Result<Vec<_>, _>>()?;
    let other_netlink = vec![
        arg(0, SeccompCmpOp::Eq, libc::AF_NETLINK)?,
        arg(2, SeccompCmpOp::Ne, libc::NETLINK_ROUTE)?,
    ];
    let rule = |conditions| SeccompRule::new(conditions).map_err(|e| step(&e));
    Ok([
        (
            libc::SYS_socket,
            vec![rule(other_family)?, rule(other_netlink)?],
        ),
        // Pairs are Unix sockets (TIPC makes pairs too).
        (
            libc::SYS_socketpair,
            vec![rule(vec![arg(0, SeccompCmpOp::Ne, libc::AF_UNIX)?])?],
        ),
    ]
    .into_iter()
    .collect())
}

/// A filter answering `errno` to the calls `rules` match, allowing the rest.
fn program(
    rules: std::collections::BTreeMap<i64, Vec<seccompiler::SeccompRule>>,
    errno: libc::c_int,
) -> Result<seccompiler::BpfProgram, SetupError> {
    use seccompiler::{SeccompAction, SeccompFilter, TargetArch};
    let step = |e: &dyn std::fmt::Display| fail("building the seccomp filter", e);
    let arch = TargetArch::try_from(std::env::consts::ARCH).map_err(|e| step(&e))?;
    SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(errno as u32),
        arch,
    )
    .map_err(|e| step(&e))?
    .try_into()
    .map_err(|e: seccompiler::BackendError| step(&e))
}

/// Replaces the process with the command; returns only on failure.
pub(crate) fn exec(spec: &InitSpec) -> SetupError {
    let run = || -> Result<std::convert::Infallible, SetupError> {
        let cwd = cstr(&spec.cwd)?;
        // SAFETY: chdir with a valid string.
        check(
            unsafe { libc::chdir(cwd.as_ptr()) },
            format!("entering {}", String::from_utf8_lossy(&spec.cwd)),
        )?;
        let argv: Vec<CString> = spec
            .argv
            .iter()
            .map(|a| cstr(a))
            .collect::<Result<_, _>>()?;
        let env: Vec<CString> = spec
            .env
            .iter()
            .map(|(k, v)| {
                let mut kv = k.clone();
                kv.push(b'=');
                kv.extend_from_slice(v);
                cstr(&kv)
            })
            .collect::<Result<_, _>>()?;
        let program = resolve(&spec.argv[0], &spec.env);
        let mut argv_ptrs: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
        argv_ptrs.push(std::ptr::null());
        let mut env_ptrs: Vec<*const libc::c_char> = env.iter().map(|e| e.as_ptr()).collect();
        env_ptrs.push(std::ptr::null());
        let program = cstr(&program)?;
        if spec.gate {
            wait_for_gate()?;
        }
        if spec.terminal {
            // The session's controlling terminal (the command leads a
            // session of its own): job control and ^C work in it.
            // SAFETY: an ioctl on our own stdin.
            check(
                unsafe { libc::ioctl(0, libc::TIOCSCTTY, 0) },
                "making the command's terminal its controlling terminal",
            )?;
        }
        // SAFETY: NUL-terminated arrays of valid strings.
        unsafe { libc::execve(program.as_ptr(), argv_ptrs.as_ptr(), env_ptrs.as_ptr()) };
        Err(errno(format!(
            "starting `{}`",
            String::from_utf8_lossy(&spec.argv[0])
        )))
    };
    match run() {
        Err(e) => e,
        Ok(never) => match never {},
    }
}

/// Blocks until airlock lets the command start (one byte on [`GATE_FD`]);
/// end of file means it must not start. Called after every confinement
/// step, so the sandbox is built while airlock finishes what must come
/// before the command (its snapshot of the worktree).
fn wait_for_gate() -> Result<(), SetupError> {
    let step = "waiting for airlock to let the command start";
    let mut byte = 0u8;
    loop {
        // SAFETY: reading one byte into a local buffer.
        let n = unsafe { libc::read(GATE_FD, (&mut byte as *mut u8).cast(), 1) };
        match n {
            1 => break,
            0 => {
                return Err(fail(
                    step,
                    "airlock closed the gate: what had to happen before the command \
                     (the snapshot of the worktree) failed, so the command was not run",
                ));
            }
            _ if std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) => {}
            _ => return Err(errno(step)),
        }
    }
    // SAFETY: closing our own descriptor (it is close-on-exec anyway).
    unsafe { libc::close(GATE_FD) };
    Ok(())
}

/// Finds a program on the command's PATH, as a shell would.
fn resolve(program: &[u8], env: &[(Vec<u8>, Vec<u8>)]) -> Vec<u8> {
    if program.contains(&b'/') {
        return program.to_vec();
    }
    let path = env
        .iter()
        .find(|(k, _)| k == b"PATH")
        .map(|(_, v)| v.clone())
        .unwrap_or_else(|| b"/usr/local/bin:/usr/bin:/bin".to_vec());
    for dir in path.split(|b| *b == b':').filter(|d| !d.is_empty()) {
        let mut candidate = dir.to_vec();
        candidate.push(b'/');
        candidate.extend_from_slice(program);
        let p = PathBuf::from(os(&candidate));
        if let Ok(meta) = std::fs::metadata(&p)
            && meta.is_file()
            && std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o111 != 0
        {
            return candidate;
        }
    }
    program.to_vec()
}

#[cfg(test)]
mod tests {
    use super::{RealPaths, host_sockets, x32_program};
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::symlink;
    use std::os::unix::net::UnixListener;
    use std::path::PathBuf;

    /// Resolving through remembered directories gives what resolving each
    /// path whole gives: links at the end, links on the way, paths missing
    /// at either end, `..`, relative paths.
    #[test]
    fn real_paths_resolve_as_canonicalize_does() {
        let tmp = tempfile::tempdir().unwrap();
        let base = tmp.path();
        std::fs::create_dir_all(base.join("home/.config")).unwrap();
        std::fs::write(base.join("home/.netrc"), "secret").unwrap();
        std::fs::create_dir(base.join("elsewhere")).unwrap();
        std::fs::write(base.join("elsewhere/token"), "secret").unwrap();
        symlink(base.join("elsewhere/token"), base.join("home/.token")).unwrap();
        symlink(base.join("home"), base.join("link-to-home")).unwrap();
        symlink(base.join("gone"), base.join("home/dangling")).unwrap();
        let paths: Vec<PathBuf> = [
            "home/.netrc",
            "home/.token",
            "home/.config",
            "home/missing",
            "home/dangling",
            "link-to-home/.netrc",
            "link-to-home/.token",
            "missing-dir/.netrc",
            "home/.config/../.netrc",
            "home/.config/..",
            "home/.netrc/below-a-file",
            "link-to-home/.config",
        ]
        .iter()
        .map(|p| base.join(p))
        .chain([PathBuf::from("relative/path"), PathBuf::from("/")])
        .collect();
        let mut real = RealPaths::default();
        for path in &paths {
            // Twice: the second time from what the first remembered.
            for _ in 0..2 {
                assert_eq!(
                    real.real(path),
                    std::fs::canonicalize(path).ok(),
                    "{}",
                    path.display()
                );
            }
        }
        assert_eq!(
            real.real(&base.join("home/.token")),
            Some(std::fs::canonicalize(base).unwrap().join("elsewhere/token"))
        );
    }

    /// A socket bound through a descriptor names a file only in the process
    /// that bound it; resolved elsewhere it names whatever that process has
    /// open under the number (here: another directory). Such names are
    /// left out; a socket bound by its path is listed by its real path.
    #[test]
    fn host_sockets_are_listed_by_real_paths_only() {
        let tmp = tempfile::tempdir().unwrap();
        let base = std::fs::canonicalize(tmp.path()).unwrap();
        for dir in ["bound-here", "opened-later", "direct"] {
            std::fs::create_dir(base.join(dir)).unwrap();
        }
        let here = std::fs::File::open(base.join("bound-here")).unwrap();
        let through_fd = format!("/proc/self/fd/{}/through-fd.sock", here.as_raw_fd());
        let _by_fd = UnixListener::bind(&through_fd).unwrap();
        drop(here);
        // Most likely under the number just freed, and holding a file of
        // the socket's name: resolved here, the name would lead to it.
        std::fs::write(base.join("opened-later/through-fd.sock"), "").unwrap();
        let _later = std::fs::File::open(base.join("opened-later")).unwrap();
        let direct = base.join("direct/by-path.sock");
        let _by_path = UnixListener::bind(&direct).unwrap();
        let listed: Vec<String> = host_sockets()
            .iter()
            .map(|p| String::from_utf8_lossy(p).into_owned())
            .collect();
        assert!(
            listed.iter().any(|p| *p == direct.to_string_lossy()),
            "{listed:?}"
        );
        assert!(
            !listed.iter().any(|p| p.contains("through-fd")),
            "{listed:?}"
        );
    }

    /// Runs a classic BPF program of the few instructions a seccomp filter
    /// of ours uses on a system call (architecture, number), as the kernel
    /// would: the x32 filter cannot be tried on a kernel without x32, so
    /// its logic is checked here instruction by instruction.
    fn verdict(program: &[seccompiler::sock_filter], arch: u32, nr: u32) -> u32 {
        let (mut pc, mut acc) = (0usize, 0u32);
        loop {
            let op = &program[pc];
            match op.code {
                0x20 => acc = if op.k == 4 { arch } else { nr },
                0x15 | 0x35 => {
                    let taken = if op.code == 0x15 {
                        acc == op.k
                    } else {
                        acc >= op.k
                    };
                    pc += usize::from(if taken { op.jt } else { op.jf });
                }
                0x06 => return op.k,
                other => panic!("instruction {other:#x} is not one the filter uses"),
            }
            pc += 1;
        }
    }

    #[test]
    #[cfg(target_arch = "x86_64")]
    fn x32_system_calls_are_answered_as_absent() {
        const X86_64: u32 = 62 | 0x8000_0000 | 0x4000_0000;
        const I386: u32 = 3 | 0x4000_0000;
        let enosys = libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32;
        let program = x32_program();
        for call in [
            libc::SYS_mount,
            libc::SYS_unshare,
            libc::SYS_io_uring_setup,
            0,
            511,
        ] {
            let nr = call as u32;
            assert_eq!(
                verdict(&program, X86_64, nr | 0x4000_0000),
                enosys,
                "x32 {nr}"
            );
            assert_eq!(
                verdict(&program, X86_64, nr),
                libc::SECCOMP_RET_ALLOW,
                "{nr}"
            );
            // Other architectures are the other filters' to kill.
            assert_eq!(
                verdict(&program, I386, nr | 0x4000_0000),
                libc::SECCOMP_RET_ALLOW
            );
        }
        assert_eq!(verdict(&program, X86_64, u32::MAX), enosys);
    }
}
