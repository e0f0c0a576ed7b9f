//! A command's egress proxy: when its run's network is a list of hosts
//! ([`crate::confinement::network`]), airlock starts an
//! [`airlock_egress::Proxy`] for the one command, on a Unix socket in a
//! private directory no sandbox shows (the command reaches it only through
//! the bridge `airlock_sandbox::run_with_egress` builds), and stops it once
//! the command has ended, keeping every connection it recorded. A proxy that
//! cannot start refuses the command: it never runs with a direct route.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::mpsc::Receiver;

use airlock_egress::{ConnectionRecord, Proxy, ProxyConfig, Sink};
use airlock_model::network::Allowlist;
use airlock_model::trace::Connection;

use crate::error::{Error, Result};

/// What a command whose network is a list of hosts needs to get its proxy.
#[derive(Debug, Clone)]
pub struct EgressPlan {
    pub allowlist: Allowlist,
    /// `[sandbox] resolve`: names the proxy answers itself.
    pub names: BTreeMap<String, Vec<IpAddr>>,
    /// The directory under which the proxy's own private directory is
    /// made: one no sandbox shows (the key directory).
    pub dir: PathBuf,
}

/// The proxy of one command, running.
pub(crate) struct Running {
    proxy: Proxy,
    records: Receiver<ConnectionRecord>,
    dir: PathBuf,
    /// The directory, held open: the socket is bound and removed through
    /// it (`/proc/self/fd/N/s`), so the length of its path does not matter.
    _dir_fd: std::fs::File,
    pub(crate) socket: PathBuf,
}

/// Starts the proxy of one command.
pub(crate) fn start(plan: &EgressPlan) -> Result<Running> {
    let refuse = |why: String| {
        Error::refused(
            crate::error::Code::EgressNotStarted,
            "refusing to run the command: its egress proxy could not start",
            vec![
                why,
                "the run's network is a list of hosts, and the proxy is the only way to them; \
                 the command is never run with a direct route instead"
                    .into(),
            ],
            "check that airlock can make directories in its key directory and try again; \
             `airlock sandbox doctor` shows what this machine allows",
        )
    };
    let dir = plan.dir.join(crate::layout::unique_suffix());
    // 0700, the user's alone: nobody else may connect to the proxy.
    airlock_sandbox::private::private_dir(&dir)
        .map_err(|e| refuse(format!("making {}: {e}", dir.display())))?;
    let dir_fd = match std::fs::File::open(&dir) {
        Ok(f) => f,
        Err(e) => {
            remove_dir(&dir);
            return Err(refuse(format!("opening {}: {e}", dir.display())));
        }
    };
    // A socket address holds at most 107 bytes of path: bound through the
    // open directory, any directory will do.
    let bound = PathBuf::from(format!(
        "/proc/self/fd/{}/s",
        std::os::fd::AsRawFd::as_raw_fd(&dir_fd)
    ));
    let socket = dir.join("s");
    let (sink, records) = Sink::channel();
    let mut config = ProxyConfig::new(plan.allowlist.clone(), sink);
    for (host, addresses) in &plan.names {
        config = config.name(host, addresses);
    }
    config.unix_socket = Some(bound);
    match Proxy::start(config) {
        Ok(proxy) => Ok(Running {
            proxy,
            records,
            dir,
            _dir_fd: dir_fd,
            socket,
        }),
        Err(e) => {
            let _ = std::fs::remove_dir_all(&dir);
            Err(refuse(e.to_string()))
        }
    }
}

impl Running {
    /// Stops the proxy (cutting what is still open) and returns every
    /// connection it served, in the order they ended.
    pub(crate) fn finish(self) -> Vec<Connection> {
        // Stopped while the directory is still open: it removes its socket
        // through it.
        self.proxy.stop();
        let connections = self.records.try_iter().map(|r| connection(&r)).collect();
        remove_dir(&self.dir);
        connections
    }
}

impl Running {
    /// [`Running::finish`] on a thread of its own, so that the caller can
    /// go on meanwhile (`exec` scans the worktree): stopping joins the
    /// proxy's threads, and each join is a wait for the scheduler, long on
    /// a busy machine. The connections come with [`Pending::wait`]; dropped
    /// unwaited, [`Pending`] still waits, so the directory is always gone
    /// before airlock is.
    pub(crate) fn finish_aside(self) -> Pending {
        let slot = std::sync::Arc::new(std::sync::Mutex::new(Some(self)));
        let theirs = slot.clone();
        let take = |slot: &std::sync::Mutex<Option<Running>>| {
            slot.lock()
                .unwrap_or_else(|e| e.into_inner())
                .take()
                .map(Running::finish)
                .unwrap_or_default()
        };
        match std::thread::Builder::new()
            .name("egress-stop".into())
            .spawn(move || take(&theirs))
        {
            Ok(handle) => Pending {
                ready: Vec::new(),
                stopping: Some(handle),
            },
            // No thread: stopped here (the closure, and its copy, are gone).
            Err(_) => Pending::ready(take(&slot)),
        }
    }
}

/// The connections of a command's proxy, which may still be stopping.
pub struct Pending {
    ready: Vec<Connection>,
    stopping: Option<std::thread::JoinHandle<Vec<Connection>>>,
}

impl Pending {
    /// Connections known already (none, for a command without a proxy).
    pub fn ready(connections: Vec<Connection>) -> Pending {
        Pending {
            ready: connections,
            stopping: None,
        }
    }

    /// Every connection the proxy served, once it has stopped.
    pub fn wait(mut self) -> Vec<Connection> {
        match self.stopping.take() {
            Some(handle) => handle
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
            None => std::mem::take(&mut self.ready),
        }
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        if let Some(handle) = self.stopping.take() {
            let _ = handle.join();
        }
    }
}

fn remove_dir(dir: &Path) {
    let _ = std::fs::remove_dir_all(dir);
}

/// A list of hosts as a trace keeps it: each entry in its canonical form.
pub fn entries(list: &Allowlist) -> Vec<String> {
    list.rules().iter().map(|r| r.to_string()).collect()
}

/// The evidence of one connection, as the trace keeps it.
pub fn connection(r: &ConnectionRecord) -> Connection {
    use airlock_egress::{Outcome, Refusal};
    let protocol = serde_json::to_value(r.protocol)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    let (outcome, rule, reason, allow_with) = match &r.outcome {
        Outcome::Allowed { rule, address_rule } => (
            "allowed",
            Some(match address_rule {
                Some(a) if a != rule => format!("{rule} (address: {a})"),
                _ => rule.clone(),
            }),
            None,
            None,
        ),
        Outcome::Failed { rule, error } => {
            ("failed", Some(rule.clone()), Some(error.clone()), None)
        }
        Outcome::Refused(refusal) => {
            let (reason, allow_with) = match refusal {
                Refusal::NotListed { allow_with } => (
                    "not in the network allowlist".to_string(),
                    Some(allow_with.clone()),
                ),
                Refusal::NotPublic { class, allow_with } => (
                    format!(
                        "the name resolved to a {} address, which a name may not reach unless the list names the address",
                        serde_json::to_value(class)
                            .ok()
                            .and_then(|v| v.as_str().map(str::to_string))
                            .unwrap_or_default()
                    ),
                    Some(allow_with.clone()),
                ),
                Refusal::Unsupported { what } => (format!("unsupported: {what}"), None),
                Refusal::Malformed { problem } => (format!("malformed: {problem}"), None),
            };
            ("refused", None, Some(reason), allow_with)
        }
    };
    Connection {
        protocol,
        host: r.host.clone(),
        port: r.port,
        address: r.address.map(|a| a.to_string()),
        outcome: outcome.to_string(),
        rule,
        reason,
        allow_with,
        bytes_up: r.bytes_up,
        bytes_down: r.bytes_down,
        duration_us: r.duration_us,
        started_unix_ms: r.started_unix_ms,
    }
}

/// The hint of a command some of whose connections were refused: which
/// lane setting would allow each.
pub fn refused_hint(connections: &[Connection], lane: &str) -> Option<String> {
    let mut settings: Vec<String> = Vec::new();
    for c in connections.iter().filter(|c| c.refused()) {
        let what = match &c.allow_with {
            Some(setting) => format!("{}:{} ({setting})", c.host, c.port),
            None => format!(
                "{}:{} ({})",
                c.host,
                c.port,
                c.reason.as_deref().unwrap_or("refused")
            ),
        };
        if !settings.contains(&what) {
            settings.push(what);
        }
    }
    if settings.is_empty() {
        return None;
    }
    Some(format!(
        "the egress proxy refused {}: to allow a host, add it to `network` under [lanes.{lane}] in \
         .airlock/workflow.toml (a brief may only narrow its lane's list)",
        settings.join(", ")
    ))
}

/// What a run's commands did through their egress proxies, for `show`: the
/// hosts reached and every refused connection.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Summary {
    pub reached: Vec<Reached>,
    pub refused: Vec<RefusedConnection>,
}

/// A host and port connections were allowed to.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Reached {
    pub host: String,
    pub port: u16,
    pub connections: u64,
    pub bytes_up: u64,
    pub bytes_down: u64,
}

/// A connection the proxy refused, with the trace that asked for it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RefusedConnection {
    pub trace: u32,
    pub host: String,
    pub port: u16,
    pub reason: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow_with: Option<String>,
}

impl Summary {
    pub fn of(traces: &[airlock_model::trace::Trace]) -> Summary {
        let mut summary = Summary::default();
        for t in traces {
            for c in &t.connections {
                if c.refused() {
                    summary.refused.push(RefusedConnection {
                        trace: t.n,
                        host: c.host.clone(),
                        port: c.port,
                        reason: c.reason.clone().unwrap_or_default(),
                        allow_with: c.allow_with.clone(),
                    });
                } else if c.allowed() {
                    match summary
                        .reached
                        .iter_mut()
                        .find(|r| r.host == c.host && r.port == c.port)
                    {
                        Some(r) => {
                            r.connections += 1;
                            r.bytes_up += c.bytes_up;
                            r.bytes_down += c.bytes_down;
                        }
                        None => summary.reached.push(Reached {
                            host: c.host.clone(),
                            port: c.port,
                            connections: 1,
                            bytes_up: c.bytes_up,
                            bytes_down: c.bytes_down,
                        }),
                    }
                }
            }
        }
        summary
    }

    pub fn is_empty(&self) -> bool {
        self.reached.is_empty() && self.refused.is_empty()
    }
}
