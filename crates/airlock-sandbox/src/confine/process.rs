//! The command's process: its limits, the gate it waits on, its `execve`;
//! and the waiting and reaping around it.

use super::failed;
use super::{GATE_FD, InitReport, InitSpec, SetupError, cstr, errno, fail, os, report_to};
use rustix::io::Errno;
use rustix::process::{Pid, Resource, Rlimit, WaitOptions, setrlimit, wait, waitpid};
use std::ffi::CString;
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::PathBuf;

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
    // libc: rustix has no _exit, and std's exit would run the parent's handlers.
    // SAFETY: leaving the forked child without the parent's destructors.
    unsafe { libc::_exit(127) }
}

/// As PID 1 once the command's process is started: reaps until it exits,
/// kills and reaps whatever it left running, reports its status on `fd`,
/// and returns the code a shell would give. Once the status is reported,
/// nothing the command started is left to act.
pub(crate) fn reap_and_report(child: libc::pid_t, fd: libc::c_int) -> Result<i32, SetupError> {
    let status = reap_until(child)?;
    if rustix::process::getpid().is_init() {
        // libc: rustix's kill takes one process or group, not -1 (all).
        // SAFETY: kill(-1) from PID 1 of a pid namespace reaches that
        // namespace only (never anything outside it).
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

pub(crate) fn wait_for(pid: libc::pid_t) -> Option<i32> {
    let pid = Pid::from_raw(pid)?;
    loop {
        match waitpid(Some(pid), WaitOptions::empty()) {
            Ok(Some((_, status))) => return Some(shell_status(status.as_raw())),
            Ok(None) | Err(Errno::INTR) => {}
            Err(_) => return None,
        }
    }
}

pub(crate) fn shell_status(status: libc::c_int) -> i32 {
    if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        128 + libc::WTERMSIG(status)
    }
}

/// As PID 1: reaps every child until `child` exits; returns its wait status.
pub(crate) fn reap_until(child: libc::pid_t) -> Result<libc::c_int, SetupError> {
    loop {
        match wait(WaitOptions::empty()) {
            Ok(Some((pid, status))) if pid.as_raw_nonzero().get() == child => {
                return Ok(status.as_raw());
            }
            Ok(_) | Err(Errno::INTR) => {}
            Err(_) => return Err(fail("waiting for the command", "it vanished")),
        }
    }
}

/// Reaps every child until none is left.
fn reap_all() {
    loop {
        match wait(WaitOptions::empty()) {
            Ok(_) | Err(Errno::INTR) => {}
            Err(_) => return,
        }
    }
}

/// The command's own limits on processes, memory and file size.
pub(crate) fn limit(spec: &InitSpec) -> Result<(), SetupError> {
    let both = |n: u64| Rlimit {
        current: Some(n),
        maximum: Some(n),
    };
    if let Some(n) = spec.processes {
        setrlimit(Resource::Nproc, both(n)).map_err(failed("limiting the number of processes"))?;
    }
    if let Some(bytes) = spec.memory_bytes {
        setrlimit(Resource::As, both(bytes)).map_err(failed("limiting memory"))?;
    }
    if let Some(bytes) = spec.file_size_bytes {
        setrlimit(Resource::Fsize, both(bytes)).map_err(failed("limiting the size of files"))?;
    }
    Ok(())
}

/// Replaces the process with the command; returns only on failure.
pub(crate) fn exec(spec: &InitSpec) -> SetupError {
    let run = || -> Result<std::convert::Infallible, SetupError> {
        let cwd = cstr(&spec.cwd)?;
        rustix::process::chdir(cwd.as_c_str()).map_err(failed(format!(
            "entering {}",
            String::from_utf8_lossy(&spec.cwd)
        )))?;
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
            rustix::process::ioctl_tiocsctty(rustix::stdio::stdin()).map_err(failed(
                "making the command's terminal its controlling terminal",
            ))?;
        }
        // libc: rustix's execve is for runtimes (no C library state to keep).
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
    // libc: the gate is inherited by number.
    // SAFETY: GATE_FD is the gate pipe's read end, set up by the caller
    // for this process alone; taken over here, and closed when done.
    let gate = unsafe { OwnedFd::from_raw_fd(GATE_FD) };
    let mut byte = [0u8; 1];
    loop {
        match rustix::io::read(&gate, &mut byte) {
            Ok(1) => break,
            Ok(0) => {
                return Err(fail(
                    step,
                    "airlock closed the gate: what had to happen before the command \
                     (the snapshot of the worktree) failed, so the command was not run",
                ));
            }
            Ok(_) | Err(Errno::INTR) => {}
            Err(e) => return Err(failed(step)(e)),
        }
    }
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
