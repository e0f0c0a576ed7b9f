//! Which gate runs, on stderr while `check` and `promote` wait for gates:
//! on a terminal one line redrawn every second and cleared when the gate
//! ends; elsewhere one line as each gate starts; nothing with `--json`.

use std::io::{IsTerminal, Write};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use airlock_core::check::GateEvent;

use crate::render::escape;

pub struct Progress {
    mode: Mode,
    ticker: Option<(mpsc::Sender<()>, JoinHandle<()>)>,
}

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Silent,
    Lines,
    Redrawn,
}

impl Progress {
    /// Silent with `--json`; plain lines when stderr is no terminal or the
    /// gates' own output goes there too (`verbose`).
    pub fn new(json: bool, verbose: bool) -> Progress {
        let mode = if json {
            Mode::Silent
        } else if verbose || !std::io::stderr().is_terminal() {
            Mode::Lines
        } else {
            Mode::Redrawn
        };
        Progress { mode, ticker: None }
    }

    pub fn event(&mut self, event: GateEvent<'_>) {
        match (self.mode, event) {
            (Mode::Silent, _) => {}
            (Mode::Lines, GateEvent::Started { name, index, total }) => {
                eprintln!("running gate {} ({index}/{total})…", escape(name));
            }
            (Mode::Lines, GateEvent::Finished { .. }) => {}
            (Mode::Redrawn, GateEvent::Started { name, index, total }) => {
                self.stop();
                let label = format!("running gate {} ({index}/{total})", escape(name));
                let (tx, rx) = mpsc::channel::<()>();
                let started = Instant::now();
                let thread = std::thread::spawn(move || {
                    loop {
                        let mut err = std::io::stderr().lock();
                        let _ = write!(err, "\r\x1b[2K{label}… {} s", started.elapsed().as_secs());
                        let _ = err.flush();
                        drop(err);
                        match rx.recv_timeout(Duration::from_secs(1)) {
                            Err(mpsc::RecvTimeoutError::Timeout) => continue,
                            _ => break,
                        }
                    }
                    let mut err = std::io::stderr().lock();
                    let _ = write!(err, "\r\x1b[2K");
                    let _ = err.flush();
                });
                self.ticker = Some((tx, thread));
            }
            (Mode::Redrawn, GateEvent::Finished { .. }) => self.stop(),
        }
    }

    /// Stops the redrawn line and clears it.
    fn stop(&mut self) {
        if let Some((tx, thread)) = self.ticker.take() {
            drop(tx);
            let _ = thread.join();
        }
    }
}

impl Drop for Progress {
    /// A gate that ended in an error leaves no line behind.
    fn drop(&mut self) {
        self.stop();
    }
}
