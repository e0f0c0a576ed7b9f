//! What a command is run with: the command, its confinement, limits, input
//! and output echo.

use crate::{ahead, host, terminal};
use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

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
        let stdin = rustix::stdio::stdin();
        if !rustix::termios::isatty(stdin) {
            Input::Inherit
        } else if output_is_terminal && terminal::in_the_foreground() {
            Input::Terminal
        } else {
            Input::Null
        }
    }
}

/// What a confined command waits for right before it starts (see
/// [`run_gated`]): `Ok` lets it start, `Err(reason)` stops it. May be called
/// more than once (a retry with the weaker sandbox); it must answer the same.
pub type Gate<'a> = &'a mut dyn FnMut() -> Result<(), String>;

/// The port of the bridge inside a sandbox whose only way out is a proxy
/// (see [`Egress`]): 3128, the port HTTP proxies conventionally listen on.
/// The command's own servers may use any other port of its loopback.
pub const BRIDGE_PORT: u16 = 3128;

/// The third kind of network, besides none and the host's: the command keeps
/// a network namespace of its own, with only a loopback and no route out,
/// and its one way out is the proxy listening on `proxy_socket` outside the
/// sandbox (an `airlock_egress::Proxy`). A bridge listening on
/// `127.0.0.1:`[`BRIDGE_PORT`] inside relays every TCP connection to that
/// socket, and to nothing else. Give it to [`run_with_egress`](crate::run_with_egress).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Egress {
    /// The proxy's Unix socket, an absolute path on the host.
    pub proxy_socket: PathBuf,
}

impl Egress {
    /// The proxy's address as the command sees it.
    pub fn proxy_url() -> String {
        format!("http://127.0.0.1:{BRIDGE_PORT}")
    }

    /// The variables a command gets so that ordinary clients use the proxy:
    /// `HTTP_PROXY`, `HTTPS_PROXY` and `ALL_PROXY` (upper and lower case)
    /// name the bridge as an HTTP proxy (`CONNECT` for HTTPS), which every
    /// client that reads them speaks; `socks5h://` would break clients
    /// without SOCKS support (Python's httpx without `socksio`), and the
    /// bridge's port serves SOCKS5 too for a client told so explicitly.
    /// `NO_PROXY` keeps the sandbox's own loopback direct.
    pub fn env() -> Vec<(OsString, OsString)> {
        let url = Egress::proxy_url();
        let mut vars = Vec::new();
        for name in ["HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"] {
            vars.push((name.into(), url.clone().into()));
            vars.push((name.to_ascii_lowercase().into(), url.clone().into()));
        }
        for name in ["NO_PROXY", "no_proxy"] {
            vars.push((name.into(), "localhost,127.0.0.1,::1".into()));
        }
        vars
    }
}
