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
//! one. The server listens in `<key dir>/ledgers/`, which every sandbox
//! hides, on a socket named after the repository's state and the airlock
//! binary (a rebuilt airlock never talks to an old server), and answers
//! only processes of its user, in its own pid and mount namespaces, without
//! `no_new_privs`: never a sandboxed command, which always has
//! `no_new_privs`. None runs where a weaker sandbox, which hides nothing,
//! may run a command. It leaves after `[sandbox] keep_warm` without a
//! request (zero: none is started), and at once when the ledger file, its
//! schema or the workflow's consent is not what it was.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, RawFd};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags, Timespec};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use airlock_core::Airlock;
use airlock_core::config::WorkflowFile;
use airlock_core::error::{Error, Result};
use airlock_core::exec::{Records, Trace};
use airlock_core::layout::Layout;
use airlock_core::lock::FileLock;
use airlock_core::run::Run;
use airlock_core::workflow::Workflow;

/// `<airlock> __ledger-server ROOT SOCKET KEEP_MS`, with the listening
/// socket on fd 3.
pub const SERVER_ARG: &str = "__ledger-server";
const LISTEN_FD: RawFd = 3;
/// A frame larger than this is refused (a trace lists changed files).
const MAX_FRAME: u32 = 64 << 20;
/// How long an exec waits for an answer before doing the work itself
/// (the server may wait up to the ledger's busy timeout for a writer).
const ANSWER_WAIT: Duration = Duration::from_secs(15);
/// How long a request may take to arrive whole once it began.
const REQUEST_WAIT: Duration = Duration::from_secs(5);
/// How often an idle server looks whether its ledger is still there.
const LOOK_EVERY: Duration = Duration::from_secs(5);
/// Callers served at once; more are closed (each runs an exec).
const MAX_CONNS: usize = 256;

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
    let (dir, name) = socket_of(layout)?;
    let mut stream = at_socket(&dir, &name, |path| UnixStream::connect(path)).ok()?;
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
        let asked = self.asked.take();
        let already =
            matches!((&asked, request), (Some(asked), Request::Run { id }) if asked == id);
        let answer = if already {
            read_frame(stream)
        } else {
            // The answer to the question asked on connecting comes first,
            // wanted or not.
            let unread = match asked {
                Some(_) => read_frame::<Response>(stream).map(drop),
                None => Ok(()),
            };
            unread
                .and_then(|()| write_frame(stream, request))
                .and_then(|()| read_frame(stream))
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
            _ => Ok(self.direct()?.store.get(id)?),
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
            // The server stored nothing, or may have before the connection
            // failed, or may yet: a trace is stored once whoever comes
            // second (`Store::add_trace`), so it is stored here.
            _ => Ok(self.direct()?.store.add_trace(run, trace)?),
        }
    }
}

/// Starts a ledger server for the repository, for the execs after this
/// one, unless one is listening, another exec is starting one, or the
/// workflow keeps nothing warm or accepts weaker sandboxes. Best effort:
/// an exec works the same without.
pub fn start(layout: &Layout, workflow: &Workflow) {
    let keep = workflow.sandbox.keep_warm;
    // A weaker sandbox hides nothing, so its commands could reach the
    // socket; under `no_new_privs` the server could not tell its callers
    // from a sandboxed command, which always has it.
    if !serves(workflow) || no_new_privs(std::process::id()) != Some(false) {
        return;
    }
    let Some((dir, name)) = socket_of(layout) else {
        return;
    };
    let Ok(Some(lock)) = FileLock::acquire(&dir.join(format!("{name}.lock")), false) else {
        return;
    };
    if at_socket(&dir, &name, |path| UnixStream::connect(path)).is_ok() {
        return;
    }
    let _ = std::fs::remove_file(dir.join(&name));
    // The user's alone whatever the umask, like the directory it is in.
    let bound = at_socket(&dir, &name, |path| {
        let listener = UnixListener::bind(path)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
        Ok(listener)
    });
    let Ok(listener) = bound else {
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
            // Nothing else of the caller's: a pipe it was given (a shell's
            // `$(…)`, a job server) would stay open as long as the server.
            libc::syscall(
                libc::SYS_close_range,
                LISTEN_FD + 1,
                libc::c_uint::MAX,
                libc::CLOSE_RANGE_CLOEXEC,
            );
            libc::setsid();
            Ok(())
        });
    }
    let _ = command.spawn();
    drop(listener);
    drop(lock);
}

/// Whether the workflow lets a server keep the ledger open: it keeps
/// things warm, and never runs a command in a weaker sandbox (no
/// namespaces: nothing hidden, so the server's socket would not be).
fn serves(workflow: &Workflow) -> bool {
    !workflow.sandbox.keep_warm.is_zero() && !workflow.sandbox.accept_weaker
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
        .map_err(|e| Error::Environment(e.to_string()))?;
    let layout = Layout::discover(root)?;
    // Only the repository it was started for, and only a ledger that is
    // there: a repository deleted meanwhile must not make the server adopt
    // an enclosing one, or create a ledger anywhere.
    let database = airlock_core::store_backend::database_url_for(&layout)
        .ok()
        .flatten()
        .is_some();
    if layout.root != root || !(layout.db_path().is_file() || database && layout.state.is_dir()) {
        return Ok(());
    }
    let Some((dir, expected)) = socket_of(&layout) else {
        return Ok(());
    };
    if expected != name {
        return Ok(());
    }
    let socket = dir.join(name);
    let lock = dir.join(format!("{name}.lock"));
    let socket_id = file_id(&socket);
    let mut al = Airlock::open_in(layout)?;
    let db = al.layout.db_path();
    let db_id = file_id(&db);
    let schema = schema_version(&al);
    let workflow_path = al.layout.workflow_path();
    let mut workflow = Watched::new(&workflow_path);
    // This process's namespaces, which a caller must share: read once.
    let namespaces = Namespaces::of("self");
    let mut conns: Vec<Conn> = Vec::new();
    // One buffer for every read: a fresh one would be zeroed each time.
    let mut buf = vec![0u8; 64 * 1024];
    let mut last = Instant::now();
    loop {
        let wait = if conns.is_empty() {
            keep.saturating_sub(last.elapsed()).min(LOOK_EVERY)
        } else {
            Duration::from_secs(1)
        };
        let millis = wait.as_millis().clamp(1, 5000) as i64;
        let timeout = Timespec {
            tv_sec: millis / 1000,
            tv_nsec: millis % 1000 * 1_000_000,
        };
        // Which of the listener, then each connection, has something to read.
        let ready: Vec<bool> = {
            let mut fds: Vec<PollFd> = std::iter::once(PollFd::new(&listener, PollFlags::IN))
                .chain(conns.iter().map(|c| PollFd::new(&c.stream, PollFlags::IN)))
                .collect();
            match rustix::event::poll(&mut fds, Some(&timeout)) {
                Ok(_) | Err(rustix::io::Errno::INTR) => {}
                Err(_) => return Ok(()),
            }
            fds.iter().map(|fd| !fd.revents().is_empty()).collect()
        };
        // The ledger replaced (a restore, a new repository at the same
        // path, the repository gone) or its schema changed (a guard
        // dropped): nothing more is served from this connection. An exec
        // opening the ledger itself repairs or refuses it.
        // So does a workflow that now accepts weaker sandboxes, whose
        // commands could reach the socket, or keeps nothing warm.
        let stale = |al: &Airlock, workflow: &mut Watched| {
            file_id(&db) != db_id || schema_version(al) != schema || !workflow.serves()
        };
        let mut gone = Vec::new();
        for (i, &readable) in ready.iter().enumerate().skip(1) {
            let conn = &mut conns[i - 1];
            let requests = if !readable {
                Ok(Vec::new())
            } else {
                last = Instant::now();
                conn.read(&mut buf)
            };
            let Ok(requests) = requests else {
                gone.push(i - 1);
                continue;
            };
            for request in requests {
                if stale(&al, &mut workflow) {
                    let _ = conn.answer(&Response::Failed);
                    remove_socket(&socket, socket_id);
                    return Ok(());
                }
                let response = answer(&mut al, request, &mut conn.exec_of);
                if conn.answer(&response).is_err() {
                    gone.push(i - 1);
                    break;
                }
            }
            if conn.overdue() && gone.last() != Some(&(i - 1)) {
                gone.push(i - 1);
            }
        }
        for i in gone.into_iter().rev() {
            conns.remove(i);
        }
        if ready[0] {
            loop {
                let stream = match listener.accept() {
                    Ok((stream, _)) => stream,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    // Out of descriptors, say: the connection waits in the
                    // backlog, and the loop must not spin on it.
                    Err(_) => {
                        std::thread::sleep(Duration::from_millis(20));
                        break;
                    }
                };
                // Only callers it serves count as activity; a caller it
                // refuses, or one too many, is closed at once.
                if conns.len() >= MAX_CONNS || !trusted(&stream, &namespaces) {
                    continue;
                }
                let set = stream
                    .set_nonblocking(true)
                    .and_then(|()| stream.set_write_timeout(Some(REQUEST_WAIT)));
                if set.is_ok() {
                    last = Instant::now();
                    conns.push(Conn::new(stream));
                }
            }
        }
        if conns.is_empty() && stale(&al, &mut workflow) {
            remove_socket(&socket, socket_id);
            return Ok(());
        }
        if conns.is_empty() && last.elapsed() >= keep {
            // Under the starters' lock, with nobody waiting: an exec either
            // connected before, or finds no socket and starts another.
            if let Ok(Some(_lock)) = FileLock::acquire(&lock, false) {
                let mut pending = [PollFd::new(&listener, PollFlags::IN)];
                if rustix::event::poll(&mut pending, Some(&Timespec::default())) == Ok(0) {
                    remove_socket(&socket, socket_id);
                    return Ok(());
                }
            }
        }
    }
}

/// A caller's connection: what it sent of a request so far.
struct Conn {
    stream: UnixStream,
    pending: Vec<u8>,
    /// When the request now arriving began.
    began: Option<Instant>,
    /// The run this connection is an exec of: the one it asked for, found
    /// in a state that runs commands. Its trace, and no other, is taken
    /// from this connection.
    exec_of: Option<String>,
}

impl Conn {
    fn new(stream: UnixStream) -> Conn {
        Conn {
            stream,
            pending: Vec::new(),
            began: None,
            exec_of: None,
        }
    }

    /// Reads what is there; every request now whole, in order. An error
    /// when the caller left or sent something that is not a request.
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<Vec<Request>> {
        loop {
            match self.stream.read(buf) {
                Ok(0) => return Err(std::io::ErrorKind::UnexpectedEof.into()),
                Ok(n) => {
                    self.began.get_or_insert_with(Instant::now);
                    self.pending.extend_from_slice(&buf[..n]);
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
            if self.pending.len() > 4 + MAX_FRAME as usize {
                return Err(std::io::Error::other("a message too large"));
            }
        }
        let mut requests = Vec::new();
        while let Some(len) = self
            .pending
            .first_chunk::<4>()
            .map(|b| u32::from_le_bytes(*b))
        {
            if len > MAX_FRAME {
                return Err(std::io::Error::other("a message too large"));
            }
            let end = 4 + len as usize;
            if self.pending.len() < end {
                break;
            }
            requests.push(
                serde_json::from_slice(&self.pending[4..end]).map_err(std::io::Error::other)?,
            );
            self.pending.drain(..end);
            self.began = (!self.pending.is_empty()).then(Instant::now);
        }
        Ok(requests)
    }

    /// Sends an answer, waiting at most [`REQUEST_WAIT`] for a caller that
    /// does not read.
    fn answer(&mut self, response: &Response) -> std::io::Result<()> {
        self.stream.set_nonblocking(false)?;
        let sent = write_frame(&mut self.stream, response);
        self.stream.set_nonblocking(true)?;
        sent
    }

    /// A request begun long ago and still not whole: a caller that stalls
    /// must not hold the others up.
    fn overdue(&self) -> bool {
        self.began.is_some_and(|t| t.elapsed() > REQUEST_WAIT)
    }
}

/// The workflow file, read again whenever it changes.
struct Watched {
    path: PathBuf,
    seen: Option<(u64, u64, u64, i64, i64)>,
    serves: bool,
}

impl Watched {
    fn new(path: &Path) -> Watched {
        let mut watched = Watched {
            path: path.to_path_buf(),
            seen: None,
            serves: false,
        };
        watched.serves();
        watched
    }

    /// Whether the workflow, as it is now, lets the server serve.
    fn serves(&mut self) -> bool {
        let now = std::fs::metadata(&self.path)
            .ok()
            .map(|m| (m.dev(), m.ino(), m.size(), m.mtime(), m.mtime_nsec()));
        if now != self.seen || now.is_none() {
            self.seen = now;
            self.serves = Workflow::load(&self.path).is_ok_and(|w| serves(&w));
        }
        self.serves
    }
}

/// Whether the peer may use the ledger: this user's process, in this
/// server's pid and mount namespaces, not under `no_new_privs`. Every
/// command airlock runs in a sandbox fails the last (and, fully confined,
/// the first two as well).
fn trusted(stream: &UnixStream, ours: &Namespaces) -> bool {
    let Some(cred) = airlock_sandbox::private::peer(stream.as_raw_fd()) else {
        return false;
    };
    if cred.pid <= 0 || cred.uid != rustix::process::getuid().as_raw() {
        return false;
    }
    let pid = cred.pid as u32;
    let theirs = Namespaces::of(&pid.to_string());
    theirs.pid.is_some()
        && theirs.mnt.is_some()
        && theirs == *ours
        && no_new_privs(pid) == Some(false)
}

/// Which pid and mount namespaces a process is in (`None`: unreadable).
#[derive(PartialEq)]
struct Namespaces {
    pid: Option<PathBuf>,
    mnt: Option<PathBuf>,
}

impl Namespaces {
    /// Of `/proc/<process>`: a pid, or `self`.
    fn of(process: &str) -> Namespaces {
        let ns = |kind: &str| std::fs::read_link(format!("/proc/{process}/ns/{kind}")).ok();
        Namespaces {
            pid: ns("pid"),
            mnt: ns("mnt"),
        }
    }
}

/// Whether process `pid` runs under `no_new_privs`.
fn no_new_privs(pid: u32) -> Option<bool> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("NoNewPrivs:"))
        .map(|v| v.trim() != "0")
}

/// The ledger's schema cookie: it changes with any change to its schema.
fn schema_version(al: &Airlock) -> Option<i64> {
    al.store.schema_cookie()
}

/// Answers one request of a connection that is an exec of run `exec_of`
/// (if it asked for one that runs commands).
fn answer(al: &mut Airlock, request: Request, exec_of: &mut Option<String>) -> Response {
    match request {
        Request::Run { id } => {
            // What a process that died left half done is repaired first,
            // as every opening of the ledger does.
            let recovered = match airlock_core::recover::recover(al) {
                Ok(notes) => notes,
                Err(_) => return Response::Failed,
            };
            match al.store.get(&id) {
                Ok(run) => {
                    if airlock_core::store::TRACED.contains(&run.state) {
                        *exec_of = Some(run.id.clone());
                    }
                    Response::Run {
                        run: Box::new(run),
                        recovered,
                    }
                }
                Err(airlock_store::Error::UnknownRun(_)) => Response::UnknownRun,
                Err(_) => Response::Failed,
            }
        }
        // A trace only from the exec that asked for its run, here, while
        // the run could run it; the store refuses it too once the run has
        // moved on. Refused, it is the caller's to store: which, for
        // anything but the run's exec, the store refuses with the reason.
        Request::AddTrace { run, mut trace } if exec_of.as_deref() == Some(run.as_str()) => {
            match al.store.add_trace(&run, &mut trace) {
                Ok(_) => Response::Added { n: trace.n },
                Err(_) => Response::Failed,
            }
        }
        Request::AddTrace { .. } => Response::Failed,
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

/// Where the repository's server listens: `<key dir>/ledgers/`, hidden
/// from every sandbox like the warm sandboxes' sockets, under a name that
/// changes with the repository's state directory and with the airlock
/// binary, whose protocol it speaks (the file this process runs, not
/// resolving its name).
fn socket_of(layout: &Layout) -> Option<(PathBuf, String)> {
    let meta = std::fs::metadata("/proc/self/exe").ok()?;
    let mut h = Sha256::new();
    h.update(layout.state.as_os_str().as_encoded_bytes());
    h.update([0]);
    // A server per store: one serving the local SQLite file never answers
    // an exec pointed at a database, nor one database another's.
    if let Ok(Some(url)) = airlock_core::store_backend::database_url_for(layout) {
        h.update(url.as_bytes());
        h.update([0]);
    }
    for n in [
        meta.dev(),
        meta.ino(),
        meta.size(),
        meta.mtime() as u64,
        meta.mtime_nsec() as u64,
    ] {
        h.update(n.to_le_bytes());
    }
    let dir = layout.key_dir.join("ledgers");
    airlock_sandbox::private::private_dir(&dir).ok()?;
    Some((dir, format!("{}.sock", hex::encode(&h.finalize()[..12]))))
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
