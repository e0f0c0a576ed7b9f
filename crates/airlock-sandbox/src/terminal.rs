//! A terminal of the command's own, relayed to and from the user's.
//!
//! A command that should be interactive (its stdin is the user's terminal)
//! never gets that terminal: holding it, a command could change its
//! settings under the user or, where the kernel allows `TIOCSTI`, push
//! keystrokes into it that the user's shell would run after airlock ends.
//! It gets the follower side of a pseudo-terminal airlock opens instead,
//! as its stdin, stdout, stderr and controlling terminal; airlock puts the
//! user's terminal in raw mode and copies keystrokes to the leader side and
//! what the command writes back out (into the stdout log too). Anything the
//! command pushes into its terminal reaches only itself.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicI32, Ordering};

use rustix::pty::{OpenptFlags, grantpt, ioctl_tiocgptpeer, openpt, unlockpt};
use rustix::termios::{
    OptionalActions, SpecialCodeIndex, Termios, tcgetattr, tcgetpgrp, tcgetwinsize, tcsetattr,
    tcsetwinsize,
};

/// A pseudo-terminal for one command.
pub(crate) struct Pty {
    /// airlock's side: reads what the command writes, takes keystrokes.
    pub leader: OwnedFd,
    /// The command's side: its stdin, stdout and stderr.
    pub follower: OwnedFd,
}

/// airlock's stdin, the user's terminal.
fn user() -> BorrowedFd<'static> {
    rustix::stdio::stdin()
}

/// Opens a pseudo-terminal shaped like the user's (settings, window size).
pub(crate) fn open() -> io::Result<Pty> {
    let flags = OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC;
    let leader = openpt(flags)?;
    grantpt(&leader)?;
    unlockpt(&leader)?;
    // The follower straight from the leader: no path to look up and race.
    let follower = ioctl_tiocgptpeer(&leader, flags)?;
    if let Ok(mut settings) = tcgetattr(user()) {
        // ^Z would stop the command where no shell of the user's can
        // resume it: it reaches the command as a key instead.
        settings.special_codes[SpecialCodeIndex::VSUSP] = 0;
        tcsetattr(&follower, OptionalActions::Now, &settings)?;
    }
    if let Ok(size) = tcgetwinsize(user()) {
        tcsetwinsize(&follower, size)?;
    }
    Ok(Pty { leader, follower })
}

/// Whether airlock's stdin is a terminal it is in the foreground of: a
/// job in the background that set the terminal's mode would be stopped.
pub(crate) fn in_the_foreground() -> bool {
    rustix::termios::isatty(user())
        && tcgetpgrp(user()).is_ok_and(|group| group == rustix::process::getpgrp())
}

/// The user's terminal in raw mode until dropped: every key goes to the
/// command's terminal as typed, whose own settings decide what ^C does.
pub(crate) struct RawMode {
    saved: Termios,
}

impl RawMode {
    pub(crate) fn enter() -> Option<RawMode> {
        let saved = tcgetattr(user()).ok()?;
        let mut raw = saved.clone();
        raw.make_raw();
        tcsetattr(user(), OptionalActions::Now, &raw).ok()?;
        Some(RawMode { saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        // Output still on its way to the terminal is written first.
        let _ = tcsetattr(user(), OptionalActions::Drain, &self.saved);
    }
}

/// The read end of the pipe `SIGWINCH` writes to (-1 until watched).
static RESIZED: AtomicI32 = AtomicI32::new(-1);
static RESIZED_WRITE: AtomicI32 = AtomicI32::new(-1);

extern "C" fn note_resize(_: libc::c_int) {
    let fd = RESIZED_WRITE.load(Ordering::SeqCst);
    if fd >= 0 {
        // SAFETY: write is async-signal-safe; the pipe is non-blocking.
        unsafe { libc::write(fd, b"w".as_ptr().cast(), 1) };
    }
}

/// Watches the user's terminal for a new window size (`SIGWINCH`), once
/// per process; the descriptor that becomes readable then.
fn resizes() -> Option<libc::c_int> {
    if RESIZED.load(Ordering::SeqCst) < 0 {
        use rustix::pipe::{PipeFlags, pipe_with};
        use std::os::fd::IntoRawFd;
        // Kept for the process's life: the handler writes to one by its number.
        let (read, write) = pipe_with(PipeFlags::CLOEXEC | PipeFlags::NONBLOCK).ok()?;
        RESIZED_WRITE.store(write.into_raw_fd(), Ordering::SeqCst);
        RESIZED.store(read.into_raw_fd(), Ordering::SeqCst);
        // libc: rustix has no sigaction.
        // SAFETY: an all-zero sigaction is valid; the handler only touches
        // atomics and writes to a pipe.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = note_resize as extern "C" fn(libc::c_int) as usize;
            action.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(libc::SIGWINCH, &action, std::ptr::null_mut());
        }
    }
    Some(RESIZED.load(Ordering::SeqCst)).filter(|fd| *fd >= 0)
}

/// Keystrokes on their way from the user's terminal to the command's, and
/// its window size.
pub(crate) struct Keys {
    pending: Vec<u8>,
    /// The user's side ended (or failed): nothing more to read.
    ended: bool,
    resized: Option<libc::c_int>,
}

impl Keys {
    pub(crate) fn new() -> Keys {
        Keys {
            pending: Vec::new(),
            ended: false,
            resized: resizes(),
        }
    }

    /// What to poll: the user's terminal for input while nothing waits to
    /// be written, otherwise the leader for room; and a new window size.
    pub(crate) fn pollfds(&self, leader: &OwnedFd) -> [libc::pollfd; 3] {
        let reading = !self.ended && self.pending.is_empty();
        [
            libc::pollfd {
                fd: if reading { 0 } else { -1 },
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: if self.pending.is_empty() {
                    -1
                } else {
                    leader.as_raw_fd()
                },
                events: libc::POLLOUT,
                revents: 0,
            },
            libc::pollfd {
                fd: self.resized.unwrap_or(-1),
                events: libc::POLLIN,
                revents: 0,
            },
        ]
    }

    /// Moves what `pollfds` found ready; never blocks.
    pub(crate) fn relay(&mut self, ready: &[libc::pollfd; 3], leader: &OwnedFd) {
        if ready[2].revents != 0
            && let Some(fd) = self.resized
        {
            let mut drained = [0u8; 64];
            // SAFETY: a non-blocking read from our own pipe.
            unsafe { libc::read(fd, drained.as_mut_ptr().cast(), drained.len()) };
            // The command's terminal takes the new size; the kernel tells
            // its foreground processes (SIGWINCH).
            if let Ok(size) = tcgetwinsize(user()) {
                let _ = tcsetwinsize(leader, size);
            }
        }
        if ready[0].revents != 0 {
            let mut buf = [0u8; 4096];
            match rustix::io::read(user(), &mut buf) {
                Ok(0) => self.ended = true,
                Ok(n) => self.pending.extend_from_slice(&buf[..n]),
                Err(rustix::io::Errno::INTR | rustix::io::Errno::AGAIN) => {}
                Err(_) => self.ended = true,
            }
        }
        if ready[1].revents & libc::POLLOUT != 0 {
            match rustix::io::write(leader.as_fd(), &self.pending) {
                Ok(n) => {
                    self.pending.drain(..n);
                }
                Err(rustix::io::Errno::INTR | rustix::io::Errno::AGAIN) => {}
                // The command's side is gone: nobody reads keys any more.
                Err(_) => {
                    self.pending.clear();
                    self.ended = true;
                }
            }
        } else if ready[1].revents != 0 {
            self.pending.clear();
            self.ended = true;
        }
    }
}

/// Marks `fd` non-blocking, so that a relay never waits on it.
pub(crate) fn non_blocking(fd: &OwnedFd) -> io::Result<()> {
    use rustix::fs::{OFlags, fcntl_getfl, fcntl_setfl};
    let flags = fcntl_getfl(fd)?;
    fcntl_setfl(fd, flags | OFlags::NONBLOCK)?;
    Ok(())
}
