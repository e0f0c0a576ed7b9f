//! The relay between an agent in its run's sandbox and airlock outside it.
//!
//! The hooks and the MCP server `airlock agent --preset` configures need the
//! run's store, which no sandbox sees. Inside, the configured command is
//! `airlock __agent-relay hook claude pre` (or `… mcp`): it connects to the
//! relay socket in the agent's directory, names the service on one line,
//! and copies its stdio to the socket. Outside, `airlock agent` accepts each
//! connection and serves it with a process of its own, started with
//! arguments of its own choosing for its own run: `airlock hook AGENT EVENT
//! --run RUN` or `airlock mcp --run RUN`. The agent chooses only which of
//! those five services and the bytes it feeds them; nothing else is
//! served, so a hostile agent that speaks to the socket directly gets what
//! the hooks and the MCP server give it already, and nothing that
//! approves, promotes, resolves or rolls back.
//!
//! Wire: the client sends the service line (`hook claude pre\n`, at most
//! [`MAX_SERVICE_LINE`] bytes). For a hook it then sends the payload and
//! shuts its side down; the answer is the exit code (one byte), then
//! stdout and stderr, each a little-endian `u32` length and the bytes. For
//! `mcp` both directions stream until either side closes. An unknown
//! service is answered with exit code 2 and a reason on stderr, as a hook
//! refusal, and the connection is closed.

use std::io::{self, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// The longest service line read.
pub const MAX_SERVICE_LINE: usize = 64;
/// The largest hook payload relayed (the hook itself refuses past its own
/// limit, 1 MiB); more is cut off, which the hook reads as malformed.
pub const MAX_HOOK_PAYLOAD: u64 = 4 << 20;
/// Connections served at once; more are closed at once.
pub const MAX_CONNECTIONS: usize = 32;

/// What a connection may ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    /// `hook AGENT EVENT`: agent `claude` or `codex`, event `pre` or `post`.
    Hook {
        agent: &'static str,
        event: &'static str,
    },
    /// `mcp`: airlock's MCP server for the run.
    Mcp,
}

impl Service {
    /// Parses a service line (without its newline); `None` for anything
    /// but the five services.
    pub fn parse(line: &str) -> Option<Service> {
        let words: Vec<&str> = line.split(' ').collect();
        match words.as_slice() {
            ["mcp"] => Some(Service::Mcp),
            ["hook", agent, event] => {
                let agent = ["claude", "codex"].into_iter().find(|a| a == agent)?;
                let event = ["pre", "post"].into_iter().find(|e| e == event)?;
                Some(Service::Hook { agent, event })
            }
            _ => None,
        }
    }

    pub fn line(self) -> String {
        match self {
            Service::Hook { agent, event } => format!("hook {agent} {event}"),
            Service::Mcp => "mcp".into(),
        }
    }
}

/// The relay's outside: listens on the agent directory's socket and
/// serves each connection for `run` only.
pub struct Relay {
    /// What each connection asked for, in order: a service's line, or
    /// `refused` for anything else.
    log: Arc<Mutex<Vec<String>>>,
    stopping: Arc<AtomicBool>,
    wake: UnixListener,
    socket: PathBuf,
    acceptor: Option<JoinHandle<()>>,
}

/// Who serves the connections: the airlock binary, run in the repository
/// `root` for run `run`, its MCP server's stderr in `log`.
#[derive(Debug, Clone)]
pub struct Served {
    pub program: PathBuf,
    pub root: PathBuf,
    pub run: String,
    pub log: PathBuf,
}

impl Relay {
    /// Binds `socket` (0600; its directory is the caller's private one) and
    /// serves connections on a thread until stopped.
    pub fn start(socket: &Path, served: Served) -> io::Result<Relay> {
        let listener = UnixListener::bind(socket)?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(socket, std::fs::Permissions::from_mode(0o600))?;
        let wake = listener.try_clone()?;
        let stopping = Arc::new(AtomicBool::new(false));
        let active = Arc::new(AtomicUsize::new(0));
        let served = Arc::new(served);
        let log = Arc::new(Mutex::new(Vec::new()));
        let flag = stopping.clone();
        let kept = log.clone();
        let acceptor = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if flag.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                if !same_user(&conn) || active.load(Ordering::SeqCst) >= MAX_CONNECTIONS {
                    continue;
                }
                active.fetch_add(1, Ordering::SeqCst);
                let (active, served, log) = (active.clone(), served.clone(), kept.clone());
                std::thread::spawn(move || {
                    let _ = serve(conn, &served, &log);
                    active.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        Ok(Relay {
            log,
            stopping,
            wake,
            socket: socket.to_path_buf(),
            acceptor: Some(acceptor),
        })
    }

    /// Stops accepting and removes the socket; returns what each
    /// connection asked for. Connections being served end with the
    /// agent's sandbox, which holds their other ends.
    pub fn stop(mut self) -> Vec<String> {
        self.stop_now();
        std::mem::take(&mut *self.log.lock().unwrap_or_else(|p| p.into_inner()))
    }

    fn stop_now(&mut self) {
        self.stopping.store(true, Ordering::SeqCst);
        // Wakes the acceptor blocked in accept().
        let _ = rustix::net::shutdown(&self.wake, rustix::net::Shutdown::Both);
        let _ = UnixStream::connect(&self.socket);
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
        let _ = std::fs::remove_file(&self.socket);
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop_now();
    }
}

/// Only processes of airlock's user (the sandbox maps it to itself).
fn same_user(conn: &UnixStream) -> bool {
    rustix::net::sockopt::socket_peercred(conn)
        .is_ok_and(|cred| cred.uid == rustix::process::getuid())
}

fn read_service(conn: &mut UnixStream) -> io::Result<Option<Service>> {
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while line.len() <= MAX_SERVICE_LINE {
        if conn.read(&mut byte)? == 0 {
            return Ok(None);
        }
        if byte[0] == b'\n' {
            return Ok(std::str::from_utf8(&line).ok().and_then(Service::parse));
        }
        line.push(byte[0]);
    }
    Ok(None)
}

fn serve(mut conn: UnixStream, served: &Served, log: &Mutex<Vec<String>>) -> io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(30)))?;
    let service = read_service(&mut conn);
    let note = match &service {
        Ok(Some(service)) => service.line(),
        _ => "refused".into(),
    };
    log.lock().unwrap_or_else(|p| p.into_inner()).push(note);
    let Some(service) = service? else {
        let reason = "airlock: the agent relay serves only `hook claude|codex pre|post` and `mcp`; \
                      refused the request\n";
        write_answer(&mut conn, 2, b"", reason.as_bytes())?;
        // What the client sent after is read and dropped (briefly): closing
        // with it unread would reset the connection before the answer is read.
        conn.shutdown(std::net::Shutdown::Write)?;
        conn.set_read_timeout(Some(Duration::from_secs(2)))?;
        let _ = io::copy(&mut (&mut conn).take(MAX_HOOK_PAYLOAD), &mut io::sink());
        return Ok(());
    };
    match service {
        Service::Hook { agent, event } => {
            let mut payload = Vec::new();
            (&mut conn)
                .take(MAX_HOOK_PAYLOAD)
                .read_to_end(&mut payload)?;
            let output = Command::new(&served.program)
                .args(["hook", agent, event, "--run", &served.run])
                .current_dir(&served.root)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .and_then(|mut child| {
                    if let Some(mut stdin) = child.stdin.take() {
                        // A hook that exits before reading all is answered anyway.
                        let _ = stdin.write_all(&payload);
                    }
                    child.wait_with_output()
                });
            match output {
                Ok(out) => {
                    // Only 0 and 2 mean anything to the agents: anything
                    // else is a block, as `airlock hook` answers failures.
                    let code = if out.status.code() == Some(0) { 0 } else { 2 };
                    write_answer(&mut conn, code, &out.stdout, &out.stderr)
                }
                Err(e) => {
                    let reason = format!(
                        "airlock: refused the tool call because the hook could not be started ({e})\n"
                    );
                    write_answer(&mut conn, 2, b"", reason.as_bytes())
                }
            }
        }
        Service::Mcp => {
            conn.set_read_timeout(None)?;
            let log = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&served.log)?;
            let input = conn.try_clone()?;
            let mut child = Command::new(&served.program)
                .args(["mcp", "--run", &served.run])
                .current_dir(&served.root)
                .stdin(Stdio::from(std::os::fd::OwnedFd::from(input)))
                .stdout(Stdio::from(std::os::fd::OwnedFd::from(conn)))
                .stderr(Stdio::from(log))
                .spawn()?;
            child.wait()?;
            Ok(())
        }
    }
}

fn write_answer(conn: &mut UnixStream, code: u8, stdout: &[u8], stderr: &[u8]) -> io::Result<()> {
    let mut answer = vec![code];
    for part in [stdout, stderr] {
        answer.extend_from_slice(&(part.len() as u32).to_le_bytes());
        answer.extend_from_slice(part);
    }
    conn.write_all(&answer)
}

/// The relay's inside: `airlock __agent-relay SERVICE…`. Connects to the
/// socket, relays stdio, and returns the exit code to end with.
pub fn client(socket: &Path, service: Service) -> i32 {
    match relay(socket, service) {
        Ok(code) => code,
        Err(e) => {
            // A hook's exit 2 blocks the tool call: fail closed.
            eprintln!(
                "airlock: refused the tool call because the agent relay {} cannot be reached ({e}); \
                 was the agent started with `airlock agent`?",
                socket.display()
            );
            2
        }
    }
}

/// Connects to `socket` through its directory's descriptor
/// (`/proc/self/fd/N/NAME`) when its path is longer than a socket's may be.
fn connect(socket: &Path) -> io::Result<UnixStream> {
    if socket.as_os_str().len() <= 100 {
        return UnixStream::connect(socket);
    }
    let (Some(dir), Some(name)) = (socket.parent(), socket.file_name()) else {
        return UnixStream::connect(socket);
    };
    let dir = std::fs::File::open(dir)?;
    use std::os::fd::AsRawFd;
    let short = Path::new("/proc/self/fd")
        .join(dir.as_raw_fd().to_string())
        .join(name);
    UnixStream::connect(short)
}

fn relay(socket: &Path, service: Service) -> io::Result<i32> {
    let mut conn = connect(socket)?;
    conn.write_all(format!("{}\n", service.line()).as_bytes())?;
    match service {
        Service::Hook { .. } => {
            io::copy(&mut io::stdin().lock().take(MAX_HOOK_PAYLOAD), &mut conn)?;
            conn.shutdown(std::net::Shutdown::Write)?;
            let mut code = [0u8; 1];
            conn.read_exact(&mut code)?;
            let stdout = read_part(&mut conn)?;
            let stderr = read_part(&mut conn)?;
            io::stdout().write_all(&stdout)?;
            io::stdout().flush()?;
            io::stderr().write_all(&stderr)?;
            Ok(i32::from(code[0]))
        }
        Service::Mcp => {
            let mut up = conn.try_clone()?;
            // stdin to the server until the agent closes it; the server's
            // answers back until it closes.
            std::thread::spawn(move || {
                let _ = io::copy(&mut io::stdin().lock(), &mut up);
                let _ = up.shutdown(std::net::Shutdown::Write);
            });
            let mut out = io::stdout().lock();
            let mut buf = [0u8; 64 * 1024];
            loop {
                let n = conn.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                out.write_all(&buf[..n])?;
                out.flush()?;
            }
            Ok(0)
        }
    }
}

fn read_part(conn: &mut UnixStream) -> io::Result<Vec<u8>> {
    let mut len = [0u8; 4];
    conn.read_exact(&mut len)?;
    let len = u32::from_le_bytes(len) as u64;
    let mut part = Vec::new();
    conn.take(len.min(MAX_HOOK_PAYLOAD))
        .read_to_end(&mut part)?;
    Ok(part)
}

#[cfg(test)]
mod tests {
    use super::Service;

    #[test]
    fn only_the_five_services_parse() {
        for line in [
            "hook claude pre",
            "hook claude post",
            "hook codex pre",
            "hook codex post",
            "mcp",
        ] {
            assert_eq!(
                Service::parse(line).map(Service::line).as_deref(),
                Some(line)
            );
        }
        for line in [
            "approve",
            "promote RUN",
            "hook claude pre --run other",
            "hook gemini pre",
            "mcp --run other",
            "hook  claude pre",
            "",
        ] {
            assert_eq!(Service::parse(line), None, "{line:?}");
        }
    }
}
