//! Stopping a command when airlock itself is told to stop.
//!
//! A command stopped with airlock (^C, `kill`) still changed files; its
//! trace must say so. [`install`] catches SIGINT, SIGTERM and SIGHUP: the
//! handler only notes the signal and writes a byte to a pipe (the one
//! async-signal-safe way to wake a `poll`), which the runners watch. They
//! then stop the command and everything it started, and return its outcome
//! as [`crate::Exit::Stopped`], so the caller records the trace before it
//! exits with the signal's code.

use std::os::fd::RawFd;
use std::sync::atomic::{AtomicI32, Ordering};

static READ_END: AtomicI32 = AtomicI32::new(-1);
static WRITE_END: AtomicI32 = AtomicI32::new(-1);
static RECEIVED: AtomicI32 = AtomicI32::new(0);

const SIGNALS: [libc::c_int; 3] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP];

extern "C" fn note(signal: libc::c_int) {
    let _ = RECEIVED.compare_exchange(0, signal, Ordering::SeqCst, Ordering::SeqCst);
    let fd = WRITE_END.load(Ordering::SeqCst);
    if fd >= 0 {
        // SAFETY: write is async-signal-safe; the pipe is non-blocking, so
        // a full pipe (already woken) drops the byte.
        unsafe { libc::write(fd, b"!".as_ptr().cast(), 1) };
    }
}

/// Catches SIGINT, SIGTERM and SIGHUP for the rest of the process's life.
/// Idempotent.
pub fn install() -> std::io::Result<()> {
    if READ_END.load(Ordering::SeqCst) >= 0 {
        return Ok(());
    }
    use rustix::pipe::{PipeFlags, pipe_with};
    use std::os::fd::IntoRawFd;
    // Kept for the process's life: the handler writes to one by its number.
    let (read, write) = pipe_with(PipeFlags::CLOEXEC | PipeFlags::NONBLOCK)?;
    WRITE_END.store(write.into_raw_fd(), Ordering::SeqCst);
    READ_END.store(read.into_raw_fd(), Ordering::SeqCst);
    for signal in SIGNALS {
        // libc: rustix has no sigaction.
        // SAFETY: an all-zero sigaction is valid; the handler only touches
        // atomics and writes to a pipe.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = note as extern "C" fn(libc::c_int) as usize;
            action.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut action.sa_mask);
            if libc::sigaction(signal, &action, std::ptr::null_mut()) < 0 {
                return Err(std::io::Error::last_os_error());
            }
        }
    }
    Ok(())
}

/// The signal that told airlock to stop, if one came.
pub fn received() -> Option<i32> {
    match RECEIVED.load(Ordering::SeqCst) {
        0 => None,
        signal => Some(signal),
    }
}

/// Blocks until a signal came and returns it; at once with `None` unless
/// [`install`]ed. For a long-lived process (`airlock mcp`) that must stop
/// on a signal it caught, once the command it runs is stopped and recorded.
pub fn wait() -> Option<i32> {
    let fd = watch_fd()?;
    loop {
        if let Some(signal) = received() {
            return Some(signal);
        }
        let mut fds = [libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        }];
        // SAFETY: one valid pollfd, the process's own pipe, kept open.
        let rc = unsafe { libc::poll(fds.as_mut_ptr(), 1, -1) };
        if rc < 0 && std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
            return None;
        }
    }
}

/// The descriptor that becomes readable once a signal came (`None` unless
/// [`install`]ed). It stays readable: it is never drained.
pub(crate) fn watch_fd() -> Option<RawFd> {
    Some(READ_END.load(Ordering::SeqCst)).filter(|fd| *fd >= 0)
}

/// The usual name of a signal (`SIGTERM`), or its number.
pub fn name(signal: i32) -> String {
    match signal {
        libc::SIGHUP => "SIGHUP".into(),
        libc::SIGINT => "SIGINT".into(),
        libc::SIGQUIT => "SIGQUIT".into(),
        libc::SIGKILL => "SIGKILL".into(),
        libc::SIGPIPE => "SIGPIPE".into(),
        libc::SIGTERM => "SIGTERM".into(),
        libc::SIGXFSZ => "SIGXFSZ".into(),
        n => format!("signal {n}"),
    }
}
