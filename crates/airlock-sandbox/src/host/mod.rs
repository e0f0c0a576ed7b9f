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

mod bridged;
mod client;
mod command;
mod hosts_dir;
mod leader;
mod server;
mod socket;
mod wire;

use crate::confine::{self, InitSpec};
use serde::{Deserialize, Serialize};
use std::os::fd::RawFd;
use std::time::Duration;

pub(crate) use client::Identity;
pub(crate) use client::connect;
pub(crate) use client::identity;
pub(crate) use client::statx_nofollow;
pub(crate) use command::make_namespace;
pub(crate) use command::reports_left;
pub(crate) use command::watch;
pub(crate) use hosts_dir::LOCK_FILE;
pub use hosts_dir::end_hosts_of;
pub(crate) use hosts_dir::evict;
pub(crate) use hosts_dir::mark_used;
pub(crate) use hosts_dir::owner_tag;
pub(crate) use leader::ANSWERED;
pub(crate) use leader::STALE;
pub(crate) use leader::STALE_STEP;
pub(crate) use leader::UNANSWERED;
pub(crate) use leader::respond;
pub(crate) use leader::spare;
pub(crate) use server::is_mount_point;
pub(crate) use server::start_host;
pub(crate) use socket::connect_to;
pub(crate) use socket::listen_on;
pub(crate) use wire::MAX_REQUEST;
pub(crate) use wire::Request;
pub(crate) use wire::Response;
pub(crate) use wire::encode;
pub(crate) use wire::hang_up;
pub(crate) use wire::receive;
pub(crate) use wire::recv_with_fds;
pub(crate) use wire::response;
pub(crate) use wire::send;
pub(crate) use wire::send_with_fds;
pub(crate) use wire::socket_pair;

pub const HOST_ARG: &str = "__sandbox-host";
const LISTEN_FD: RawFd = 3;
const READY_FD: RawFd = 4;
const LOCK_FD: RawFd = 5;
/// The hosts' directory, so that a host going away removes its socket.
const DIR_FD: RawFd = 6;
/// The read end of the pipe carrying the host's specification.
const SPEC_FD: RawFd = 7;
/// What a host is started with.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct HostSpec {
    init: InitSpec,
    idle_ms: u64,
    /// The socket's file name in the hosts' directory.
    socket: String,
    /// Its inode: the name is removed at exit only if it is still this socket.
    socket_ino: u64,
}

/// Entry point of `<init program> __sandbox-host`. Never returns.
pub fn host_main() -> ! {
    std::process::exit(confine::code_or_report(start_host().map(|()| 0), READY_FD))
}

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
