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
//! With egress through a proxy (`InitSpec::egress`), the init process also
//! listens on the new namespace's loopback before step 2 and relays to the
//! proxy's socket while it waits for PID 1 (see `bridge`).
//!
//! Every setup step reports failure precisely ("mounting /proc: …") so that
//! `sandbox doctor` and refusals can name the missing protection.

pub(crate) mod bridge;
mod error;
mod landlock_rules;
mod mounts;
mod namespaces;
mod privileges;
mod process;
mod protocol;
mod seccomp_filter;

use rustix::process::{Signal, set_parent_process_death_signal};

pub(crate) use error::SetupError;
pub(crate) use error::check;
pub(crate) use error::cstr;
pub(crate) use error::errno;
pub(crate) use error::fail;
pub(crate) use error::failed;
pub(crate) use landlock_rules::landlock_ruleset;
pub(crate) use mounts::RealPaths;
pub(crate) use mounts::build_root;
pub(crate) use mounts::host_sockets;
pub(crate) use mounts::mount_proc;
pub(crate) use namespaces::cap_pids;
pub(crate) use namespaces::enter_namespaces;
pub(crate) use namespaces::loopback_up;
pub(crate) use namespaces::pid_max;
pub(crate) use namespaces::set_pid_max;
pub(crate) use privileges::Prepared;
pub(crate) use privileges::confine_prepared;
pub(crate) use privileges::confine_process;
pub(crate) use privileges::prepare;
pub(crate) use process::become_command;
pub(crate) use process::exec;
pub(crate) use process::limit;
pub(crate) use process::reap_and_report;
pub(crate) use process::wait_for;
pub(crate) use protocol::EgressSpec;
pub(crate) use protocol::GATE_FD;
pub(crate) use protocol::InitReport;
pub(crate) use protocol::InitSpec;
pub(crate) use protocol::RESULT_FD;
pub(crate) use protocol::SPEC_FD;
pub(crate) use protocol::bytes;
pub(crate) use protocol::code_or_report;
pub(crate) use protocol::os;
pub(crate) use protocol::read_spec;
pub(crate) use protocol::report_to;
pub(crate) use protocol::write_to;
pub(crate) use seccomp_filter::Filters;
pub(crate) use seccomp_filter::SOCKET_FAMILIES;
pub(crate) use seccomp_filter::seccomp_filters;

pub const INIT_ARG: &str = "__sandbox-init";
/// Entry point of `<init program> __sandbox-init`. Never returns.
pub fn init_main() -> ! {
    let code = code_or_report(init(), RESULT_FD);
    std::process::exit(code)
}

/// The pathname sockets `spec` shows read-only at their own path (a
/// read-only entry whose source and target are the socket: `airlock
/// agent`'s relay): the only host sockets the command may connect to. The
/// bind, deeper or later than the socket's hiding, shows it again; Landlock
/// (ABI 9, which refuses connecting to sockets outside the writable paths)
/// is given a rule for each.
pub(crate) fn shown_sockets(spec: &InitSpec) -> Vec<Vec<u8>> {
    use std::os::unix::fs::FileTypeExt;
    spec.read_only
        .iter()
        .filter(|(source, target)| source == target)
        .filter(|(source, _)| {
            std::fs::symlink_metadata(std::path::Path::new(&os(source)))
                .is_ok_and(|m| m.file_type().is_socket())
        })
        .map(|(_, target)| target.clone())
        .collect()
}

fn init() -> Result<i32, SetupError> {
    // libc: these descriptors are known by number and may not be open.
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
    // (A socket the caller shows by its own path, `airlock agent`'s relay,
    // is bound again over its hiding: see `shown_sockets`.)
    spec.hidden.extend(host_sockets());
    // If airlock dies (interrupted), so does everything it started.
    let _ = set_parent_process_death_signal(Some(Signal::KILL));
    if spec.weaker {
        if spec.egress.is_some() {
            return Err(fail(
                "confining the network to the egress proxy",
                "it needs a network namespace, which the weaker sandbox does not have",
            ));
        }
        confine_process(&spec, false)?;
        return Err(exec(&spec));
    }
    // The proxy's socket, reached from the host's tree (see `bridge`).
    let proxy = spec
        .egress
        .as_ref()
        .map(bridge::open_proxy_socket)
        .transpose()?;
    enter_namespaces(&spec)?;
    // Listening before the command exists, so its first connection finds
    // the bridge.
    let listener = match &spec.egress {
        Some(egress) => {
            loopback_up()?;
            Some(bridge::listen(egress.port)?)
        }
        None => None,
    };
    // libc: rustix has no fork (outside its unstable runtime module).
    // SAFETY: single-threaded process; the child only calls async-signal-safe
    // code or allocates in a fresh single-threaded copy.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(errno("forking PID 1 of the sandbox"));
    }
    if pid == 0 {
        // The bridge is the init process's alone.
        drop((proxy, listener));
        let code = code_or_report(pid1(&spec), RESULT_FD);
        // libc: rustix has no _exit, and std's exit would run the parent's handlers.
        // SAFETY: leaving the forked child without running the parent's destructors.
        unsafe { libc::_exit(code) };
    }
    if let (Some(listener), Some(proxy)) = (listener, proxy) {
        // Until PID 1 exits. A bridge that cannot run ends the sandbox,
        // reported as the step that failed.
        if let Err(e) = bridge::serve_until_exit(listener, proxy, pid) {
            report_to(RESULT_FD, &e.into());
            if let Some(pid1) = rustix::process::Pid::from_raw(pid) {
                let _ = rustix::process::kill_process(pid1, Signal::KILL);
            }
        }
    }
    let status = wait_for(pid);
    Ok(status.unwrap_or(125))
}

/// PID 1 of the sandbox: build the filesystem view, start the command, reap.
fn pid1(spec: &InitSpec) -> Result<i32, SetupError> {
    // PID 1 dies with the init process.
    let _ = set_parent_process_death_signal(Some(Signal::KILL));
    build_root(spec)?;
    if !spec.network {
        loopback_up()?;
    }
    if let Some(n) = spec.processes {
        cap_pids(n);
    }
    // libc: as above, no fork in rustix.
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
