//! A process per repository that keeps the ledger open for `exec`.
//!
//! Agents run `airlock exec` for every command, and each exec that opens
//! SQLite itself spends most of a millisecond on it: the open, the shared
//! memory index SQLite rebuilds for each process's first connection, the
//! schema, the close (BENCHMARKS.md, exec). A ledger server keeps one
//! connection open; an exec asks it for the run and hands it the trace.
//!
//! It changes nothing an exec records: an exec that finds no server, or one
//! that fails it, opens the ledger itself, and starts a server for the next
//! one. The server listens on `ledger-<binary>.sock` in the repository's
//! state directory, which every sandbox hides; its name changes with the
//! airlock binary, so a rebuilt airlock never talks to an old server. It
//! leaves after `[sandbox] keep_warm` without a request (zero: none is
//! started), and at once if the ledger file is replaced under it.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, RawFd};
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::Airlock;
use crate::error::{Error, Result};
use crate::exec::{Records, Trace};
use crate::layout::Layout;
use crate::lock::FileLock;
use crate::run::Run;

/// `<airlock> __ledger-server ROOT SOCKET KEEP_MS`, with the listening
/// socket on fd 3.
pub const SERVER_ARG: &str = "__ledger-server";
const LISTEN_FD: RawFd = 3;
const LOCK_FILE: &str = "ledger-server.lock";
/// A frame larger than this is refused (a trace lists changed files).
const MAX_FRAME: u32 = 256 << 20;
/// How long an exec waits for an answer before doing the work itself.
const ANSWER_WAIT: Duration = Duration::from_secs(30);
/// How long the server waits for the rest of a request once it began.
const REQUEST_WAIT: Duration = Duration::from_secs(5);

#[derive(Serialize, Deserialize)]
enum Request {
    Run { id: String },
    AddTrace { run: String, trace: Box<Trace> },
}

#[derive(Serialize, Deserialize)]
enum Response {
    Run {
        run: Box<Run>,
        /// What recovery repaired before reading it, in sentences.
        recovered: Vec<String>,
    },
    UnknownRun,
    /// Stored, as the run's trace number `n`.
    Added {
        n: u32,
    },
    /// Nothing was changed; the exec does it itself and reports the error.
    Failed,
}

// ---------------------------------------------------------------------------
// The exec's side.

/// A connection to the repository's ledger server, falling back to the
/// ledger itself for whatever the server does not answer.
pub struct Served {
    stream: Option<UnixStream>,
    /// The run asked for on connecting, whose answer is not read yet.
    asked: Option<String>,
    layout: Layout,
    direct: Option<Airlock>,
    recovered: Vec<String>,
}

/// Connects to the repository's ledger server, if one is listening, and
/// asks it for run `id` at once: the answer is read when the run is needed.
pub fn connect(layout: &Layout, id: &str) -> Option<Served> {
    let name = socket_name()?;
    let mut stream = at_socket(&layout.state, &name, |path| UnixStream::connect(path)).ok()?;
    stream.set_read_timeout(Some(ANSWER_WAIT)).ok()?;
    stream.set_write_timeout(Some(ANSWER_WAIT)).ok()?;
    write_frame(&mut stream, &Request::Run { id: id.to_string() }).ok()?;
    Some(Served {
        stream: Some(stream),
        asked: Some(id.to_string()),
        layout: layout.clone(),
        direct: None,
        recovered: Vec::new(),
    })
}

impl Served {
    /// What recovery repaired, by the server or here.
    pub fn recovered(&self) -> &[String] {
        &self.recovered
    }

    /// The server's answer; `None` once the connection failed, after
    /// which everything is done here.
    fn ask(&mut self, request: &Request) -> Option<Response> {
        let stream = self.stream.as_mut()?;
        let already =
            matches!((&self.asked, request), (Some(asked), Request::Run { id }) if asked == id);
        self.asked = None;
        let answer = if already {
            read_frame(stream)
        } else {
            write_frame(stream, request).and_then(|()| read_frame(stream))
        };
        match answer {
            // Whatever failed there would fail again: the rest is done here.
            Ok(Response::Failed) => {
                self.stream = None;
                Some(Response::Failed)
            }
            Ok(response) => Some(response),
            Err(_) => {
                self.stream = None;
                None
            }
        }
    }

    fn direct(&mut self) -> Result<&mut Airlock> {
        if self.direct.is_none() {
            let al = Airlock::open_in(self.layout.clone())?;
            self.recovered.extend(al.recovered.iter().cloned());
            self.direct = Some(al);
        }
        Ok(self.direct.as_mut().expect("just opened"))
    }
}

impl Records for Served {
    fn run(&mut self, id: &str) -> Result<Run> {
        match self.ask(&Request::Run { id: id.to_string() }) {
            Some(Response::Run { run, recovered }) => {
                self.recovered.extend(recovered);
                Ok(*run)
            }
            Some(Response::UnknownRun) => Err(Error::UnknownRun(id.to_string())),
            _ => self.direct()?.store.get(id),
        }
    }

    fn add_trace(&mut self, run: &str, trace: &mut Trace) -> Result<()> {
        let request = Request::AddTrace {
            run: run.to_string(),
            trace: Box::new(trace.clone()),
        };
        match self.ask(&request) {
            Some(Response::Added { n }) => {
                trace.n = n;
                Ok(())
            }
            // The server stored nothing: storing it here gives the error.
            Some(_) => self.direct()?.store.add_trace(run, trace).map(|_| ()),
            // The server may have stored it before the connection failed:
            // the command's log files are its own, so look for them first.
            None => {
                let store = &mut self.direct()?.store;
                match store.trace_with_log(run, &trace.stdout.log)? {
                    Some(stored) => *trace = stored,
                    None => {
                        store.add_trace(run, trace)?;
                    }
                }
                Ok(())
            }
        }
    }
}

/// Starts a ledger server for the repository, for the execs after this
/// one, unless one is listening, another exec is starting one, or `keep`
/// is zero. Best effort: an exec works the same without.
pub fn start(layout: &Layout, keep: Duration) {
    if keep.is_zero() {
        return;
    }
    let Some(name) = socket_name() else {
        return;
    };
    let Ok(Some(lock)) = FileLock::acquire(&layout.state.join(LOCK_FILE), false) else {
        return;
    };
    if at_socket(&layout.state, &name, |path| UnixStream::connect(path)).is_ok() {
        return;
    }
    let _ = std::fs::remove_file(layout.state.join(&name));
    let Ok(listener) = at_socket(&layout.state, &name, |path| UnixListener::bind(path)) else {
        return;
    };
    let Ok(program) = std::env::current_exe() else {
        return;
    };
    let fd = listener.as_raw_fd();
    let mut command = std::process::Command::new(program);
    command
        .arg(SERVER_ARG)
        .arg(&layout.root)
        .arg(&name)
        .arg(keep.as_millis().to_string())
        .current_dir("/")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        command.pre_exec(move || {
            // The listener on fd 3, kept across exec; a session of its own,
            // so that the caller's terminal and process group are not its.
            if fd == LISTEN_FD {
                libc::fcntl(fd, libc::F_SETFD, 0);
            } else if libc::dup2(fd, LISTEN_FD) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            libc::setsid();
            Ok(())
        });
    }
    let _ = command.spawn();
    drop(listener);
    drop(lock);
}

// ---------------------------------------------------------------------------
// The server's side.

/// Entry point of `<airlock> __ledger-server`. Never returns.
pub fn server_main() -> ! {
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(2).collect();
    let code = match args.as_slice() {
        [root, name, keep] => {
            let keep = keep
                .to_str()
                .and_then(|k| k.parse::<u64>().ok())
                .map(Duration::from_millis);
            match keep {
                Some(keep) => {
                    serve(Path::new(root), &name.to_string_lossy(), keep).map_or(1, |()| 0)
                }
                None => 2,
            }
        }
        _ => 2,
    };
    std::process::exit(code)
}

fn serve(root: &Path, name: &str, keep: Duration) -> Result<()> {
    // Started by hand, with nothing on fd 3: nothing to serve.
    // SAFETY: fcntl on a descriptor number only reads its flags.
    if unsafe { libc::fcntl(LISTEN_FD, libc::F_GETFD) } < 0 {
        return Ok(());
    }
    // SAFETY: fd 3 is open, and the listening socket our starter passed.
    let listener = unsafe { UnixListener::from_raw_fd(LISTEN_FD) };
    listener
        .set_nonblocking(true)
        .map_err(|e| Error::Invalid(e.to_string()))?;
    let layout = Layout::discover(root)?;
    // Only the repository it was started for, and only a ledger that is
    // there: a repository deleted meanwhile must not make the server adopt
    // an enclosing one, or create a ledger anywhere.
    if layout.root != root || !layout.db_path().is_file() {
        return Ok(());
    }
    let socket = layout.state.join(name);
    let socket_id = file_id(&socket);
    let mut al = Airlock::open_in(layout)?;
    let db = al.layout.db_path();
    let db_id = file_id(&db);
    let mut conns: Vec<UnixStream> = Vec::new();
    let mut last = Instant::now();
    loop {
        let mut fds: Vec<libc::pollfd> = std::iter::once(listener.as_raw_fd())
            .chain(conns.iter().map(|c| c.as_raw_fd()))
            .map(|fd| libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            })
            .collect();
        let wait = if conns.is_empty() {
            keep.saturating_sub(last.elapsed())
        } else {
            Duration::from_secs(1)
        };
        let timeout = wait.as_millis().clamp(1, 1000) as libc::c_int;
        // SAFETY: valid pollfds.
        let rc = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout) };
        if rc < 0 && std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
            return Ok(());
        }
        let mut gone = Vec::new();
        for (i, pfd) in fds.iter().enumerate().skip(1) {
            if pfd.revents == 0 {
                continue;
            }
            last = Instant::now();
            let conn = &mut conns[i - 1];
            let request = match read_frame::<Request>(conn) {
                Ok(request) => request,
                Err(_) => {
                    gone.push(i - 1);
                    continue;
                }
            };
            // The ledger replaced (a new repository state at the same
            // path): this connection must not write to the old file.
            if file_id(&db) != db_id {
                let _ = write_frame(conn, &Response::Failed);
                remove_socket(&socket, socket_id);
                return Ok(());
            }
            let response = answer(&mut al, request);
            if write_frame(conn, &response).is_err() {
                gone.push(i - 1);
            }
        }
        for i in gone.into_iter().rev() {
            conns.remove(i);
        }
        if fds[0].revents != 0 {
            while let Ok((conn, _)) = listener.accept() {
                let set = conn
                    .set_nonblocking(false)
                    .and_then(|()| conn.set_read_timeout(Some(REQUEST_WAIT)))
                    .and_then(|()| conn.set_write_timeout(Some(REQUEST_WAIT)));
                if set.is_ok() {
                    conns.push(conn);
                }
                last = Instant::now();
            }
        }
        if conns.is_empty() && last.elapsed() >= keep {
            // Under the starters' lock, with nobody waiting: an exec either
            // connected before, or finds no socket and starts another.
            let lock = FileLock::acquire(&al.layout.state.join(LOCK_FILE), false);
            if let Ok(Some(_lock)) = lock {
                let mut pending = libc::pollfd {
                    fd: listener.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                };
                // SAFETY: one valid pollfd, no wait.
                if unsafe { libc::poll(&mut pending, 1, 0) } == 0 {
                    remove_socket(&socket, socket_id);
                    return Ok(());
                }
            }
        }
    }
}

fn answer(al: &mut Airlock, request: Request) -> Response {
    match request {
        Request::Run { id } => {
            // What a process that died left half done is repaired first,
            // as every opening of the ledger does.
            let recovered = match crate::recover::recover(al) {
                Ok(notes) => notes,
                Err(_) => return Response::Failed,
            };
            match al.store.get(&id) {
                Ok(run) => Response::Run {
                    run: Box::new(run),
                    recovered,
                },
                Err(Error::UnknownRun(_)) => Response::UnknownRun,
                Err(_) => Response::Failed,
            }
        }
        Request::AddTrace { run, mut trace } => match al.store.add_trace(&run, &mut trace) {
            Ok(_) => Response::Added { n: trace.n },
            Err(_) => Response::Failed,
        },
    }
}

/// Removes the server's socket, unless the name is another server's now.
fn remove_socket(socket: &Path, id: Option<(u64, u64)>) {
    if id.is_some() && file_id(socket) == id {
        let _ = std::fs::remove_file(socket);
    }
}

// ---------------------------------------------------------------------------
// Shared.

/// The socket's name: it changes with the airlock binary, whose protocol
/// it speaks (the file this process runs, without resolving its name).
fn socket_name() -> Option<String> {
    let meta = std::fs::metadata("/proc/self/exe").ok()?;
    let mut h = Sha256::new();
    for n in [
        meta.dev(),
        meta.ino(),
        meta.size(),
        meta.mtime() as u64,
        meta.mtime_nsec() as u64,
    ] {
        h.update(n.to_le_bytes());
    }
    Some(format!("ledger-{}.sock", hex::encode(&h.finalize()[..8])))
}

/// Calls `f` with a path to `dir/name` short enough for a socket address
/// (through the directory's descriptor when `dir` is long).
fn at_socket<T>(
    dir: &Path,
    name: &str,
    f: impl FnOnce(&Path) -> std::io::Result<T>,
) -> std::io::Result<T> {
    let direct = dir.join(name);
    if direct.as_os_str().len() < 100 {
        return f(&direct);
    }
    let handle = File::open(dir)?;
    f(&PathBuf::from(format!(
        "/proc/self/fd/{}/{name}",
        handle.as_raw_fd()
    )))
}

/// Device and inode of `path`, to tell a file from its replacement.
fn file_id(path: &Path) -> Option<(u64, u64)> {
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

fn write_frame<T: Serialize>(stream: &mut UnixStream, value: &T) -> std::io::Result<()> {
    let body = serde_json::to_vec(value).map_err(std::io::Error::other)?;
    let len = u32::try_from(body.len())
        .ok()
        .filter(|&n| n <= MAX_FRAME)
        .ok_or_else(|| std::io::Error::other("a message too large"))?;
    let mut frame = Vec::with_capacity(4 + body.len());
    frame.extend_from_slice(&len.to_le_bytes());
    frame.extend_from_slice(&body);
    stream.write_all(&frame)
}

fn read_frame<T: for<'de> Deserialize<'de>>(stream: &mut UnixStream) -> std::io::Result<T> {
    let mut len = [0u8; 4];
    stream.read_exact(&mut len)?;
    let len = u32::from_le_bytes(len);
    if len > MAX_FRAME {
        return Err(std::io::Error::other("a message too large"));
    }
    let mut body = vec![0u8; len as usize];
    stream.read_exact(&mut body)?;
    serde_json::from_slice(&body).map_err(std::io::Error::other)
}
