//! Recording the command's output: log files, digests and byte counts as it
//! streams, the output limit, echo to the terminal.

use crate::host;
use crate::{Echo, SandboxError, StreamDigest, kill_group};
use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

pub(crate) fn sinks(echo: Echo) -> (Sink, Sink) {
    match echo {
        Echo::None => (Sink::None, Sink::None),
        Echo::Passthrough => (Sink::Stdout, Sink::Stderr),
        Echo::Stderr => (Sink::Stderr, Sink::Stderr),
    }
}

pub(crate) fn create_log(path: &Path) -> Result<File, SandboxError> {
    File::create(path).map_err(|source| SandboxError::Log {
        path: path.to_path_buf(),
        source,
    })
}

#[derive(Clone, Copy)]
pub(crate) enum Sink {
    None,
    Stdout,
    Stderr,
}

pub(crate) type Copier = thread::JoinHandle<Result<StreamDigest, SandboxError>>;

/// Output counted across both streams; past the cap the group is killed.
pub(crate) struct OutputBudget {
    pub(crate) used: AtomicU64,
    pub(crate) cap: Option<u64>,
    pub(crate) exceeded: AtomicBool,
    pub(crate) stop: Stop,
}

/// How to kill a command and everything it started.
pub(crate) enum Stop {
    /// Its process group (and the sandbox's pid namespace dies with its init).
    Group(libc::pid_t),
    /// Hang up on the sandbox host's leader, which kills the command's pid
    /// namespace.
    HangUp(Arc<OwnedFd>),
}

impl Stop {
    fn now(&self) {
        match self {
            Stop::Group(pgid) => kill_group(*pgid),
            Stop::HangUp(sock) => host::hang_up(sock),
        }
    }
}

/// How long a warm sandbox's command may keep writing once it has
/// answered: only a pipe passed to another command is still open then.
pub(crate) const AFTER_ANSWER: Duration = Duration::from_millis(250);

/// Stops a command in a warm sandbox at its time limit, whatever the
/// thread recording its output is doing.
pub(crate) struct Watchdog {
    stop: mpsc::Sender<()>,
    fired: Arc<AtomicBool>,
}

impl Watchdog {
    pub(crate) fn start(sock: Arc<OwnedFd>, deadline: Instant) -> Watchdog {
        let (stop, stopped) = mpsc::channel::<()>();
        let fired = Arc::new(AtomicBool::new(false));
        let flag = fired.clone();
        thread::spawn(move || {
            let left = deadline.saturating_duration_since(Instant::now());
            if let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(left) {
                flag.store(true, Ordering::SeqCst);
                host::hang_up(&sock);
            }
        });
        Watchdog { stop, fired }
    }

    /// Whether it stopped the command; it stands down either way.
    pub(crate) fn fired(self) -> bool {
        let _ = self.stop.send(());
        self.fired.load(Ordering::SeqCst)
    }
}

/// One output stream as it is recorded: its log, its digest, its echo.
pub(crate) struct Recorder {
    file: File,
    sink: Sink,
    path: PathBuf,
    hasher: Sha256,
    size: u64,
}

impl Recorder {
    pub(crate) fn new(file: File, sink: Sink, path: PathBuf) -> Recorder {
        Recorder {
            file,
            sink,
            path,
            hasher: Sha256::new(),
            size: 0,
        }
    }

    /// Records what the command wrote, as far as the output budget goes;
    /// the first chunk past it stops the command.
    pub(crate) fn record(
        &mut self,
        chunk: &[u8],
        budget: &OutputBudget,
    ) -> Result<(), SandboxError> {
        let mut chunk = chunk;
        if let Some(cap) = budget.cap {
            let n = chunk.len() as u64;
            let before = budget.used.fetch_add(n, Ordering::SeqCst);
            if before + n > cap {
                // Keep what fits, then stop the flood at its source.
                chunk = &chunk[..cap.saturating_sub(before).min(n) as usize];
                if !budget.exceeded.swap(true, Ordering::SeqCst) {
                    budget.stop.now();
                }
            }
        }
        if chunk.is_empty() {
            return Ok(());
        }
        self.hasher.update(chunk);
        self.size += chunk.len() as u64;
        self.file
            .write_all(chunk)
            .map_err(|source| SandboxError::Log {
                path: self.path.clone(),
                source,
            })?;
        // Echo failures (a closed terminal) must not lose the record.
        let _ = match self.sink {
            Sink::None => Ok(()),
            Sink::Stdout => io::stdout()
                .write_all(chunk)
                .and_then(|_| io::stdout().flush()),
            Sink::Stderr => io::stderr().write_all(chunk),
        };
        Ok(())
    }

    pub(crate) fn finish(mut self) -> Result<StreamDigest, SandboxError> {
        self.file.flush().map_err(|source| SandboxError::Log {
            path: self.path,
            source,
        })?;
        Ok(StreamDigest {
            sha256: hex::encode(self.hasher.finalize()),
            size: self.size,
        })
    }
}

pub(crate) fn spawn_copier(
    mut pipe: impl Read + Send + 'static,
    file: File,
    sink: Sink,
    path: PathBuf,
    budget: Arc<OutputBudget>,
) -> Copier {
    thread::spawn(move || {
        let mut recorder = Recorder::new(file, sink, path);
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match pipe.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            };
            recorder.record(&buf[..n], &budget)?;
        }
        recorder.finish()
    })
}

pub(crate) fn join_copier(handle: Copier) -> Result<StreamDigest, SandboxError> {
    handle
        .join()
        .map_err(|_| SandboxError::Wait(io::Error::other("output thread panicked")))?
}
