//! What a warm sandbox's name needs to know about the paths it hides,
//! looked up ahead of the command.
//!
//! Naming a warm sandbox resolves every hidden path, takes each one's
//! identity and reads the host's sockets, those of every other network
//! namespace a process is in included: a fifth of a millisecond for the
//! paths, as much again and more for the sockets, which grows with the
//! processes (one walk of `/proc`, on a thread of its own beside the
//! paths). Most of those paths are the workflow's, not the run's, so
//! airlock looks them up while it still waits for the run from its ledger
//! server (see `airlock-core::exec`), and the sandbox takes them from here.
//! A path not looked up ahead is looked up when needed, as ever.
//!
//! Before the sandbox is named, every path looked up is looked at again
//! (its identity: one `statx`, which naming the sandbox takes anyway): a
//! file that appeared, was replaced or became a link meanwhile, anywhere on
//! its way, voids the whole look-ahead, and everything is looked up afresh.
//! Only a socket bound meanwhile is missed, as one bound after the sandbox
//! is named always is.

use std::collections::HashMap;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::confine::{self, RealPaths};
use crate::host::{self, Identity};

/// Paths resolved and identified ahead; see the module.
#[derive(Debug, Default)]
pub struct LookAhead {
    pub(crate) real: RealPaths,
    identities: HashMap<Vec<u8>, Option<Identity>>,
    /// The host's pathname sockets, as [`confine::host_sockets`] reads them.
    pub(crate) sockets: Option<Vec<Vec<u8>>>,
    /// The hosts' directory (made) and its real path.
    pub(crate) hosts_dir: Option<(PathBuf, PathBuf)>,
}

impl LookAhead {
    /// Looks up `hidden` (each path, and where it leads), the host's sockets
    /// and, when sandboxes are kept warm, their directory `hosts`.
    pub fn of(hidden: &[PathBuf], hosts: Option<&Path>) -> LookAhead {
        // The sockets' walk reads every process's network namespace (one
        // system call each, about half a millisecond for 150 processes): on
        // a thread of its own, beside the paths' look-up, which needs
        // nothing of it. Where no thread can be started, it runs here.
        std::thread::scope(|scope| {
            let walk = std::thread::Builder::new()
                .name("airlock-sockets".into())
                .spawn_scoped(scope, confine::host_sockets);
            let mut ahead = LookAhead::paths(hidden, hosts);
            let sockets = match walk {
                Ok(walk) => walk
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
                Err(_) => confine::host_sockets(),
            };
            for socket in &sockets {
                ahead.note(socket);
            }
            ahead.sockets = Some(sockets);
            ahead
        })
    }

    /// Looks up `hidden` and the hosts' directory.
    fn paths(hidden: &[PathBuf], hosts: Option<&Path>) -> LookAhead {
        let mut ahead = LookAhead::default();
        for path in hidden {
            ahead.note(path.as_os_str().as_bytes());
            if let Some(real) = ahead.real.real(path) {
                ahead.note(real.as_os_str().as_bytes());
            }
        }
        if let Some(dir) = hosts
            && crate::private::private_dir(dir).is_ok()
            && let Ok(real) = std::fs::canonicalize(dir)
        {
            ahead.note(real.as_os_str().as_bytes());
            ahead.hosts_dir = Some((dir.to_path_buf(), real));
        }
        ahead
    }

    fn note(&mut self, path: &[u8]) {
        self.identities
            .entry(path.to_vec())
            .or_insert_with(|| host::identity(path));
    }

    /// Whether every path looked up is still the file it was: if so, what
    /// was looked up stands.
    pub(crate) fn still_holds(&self) -> bool {
        self.identities
            .iter()
            .all(|(path, then)| host::identity(path) == *then)
    }

    /// The identity of `path`: as looked up ahead (and checked since), or
    /// now.
    pub(crate) fn identity(&self, path: &[u8]) -> Option<Identity> {
        match self.identities.get(path) {
            Some(known) => *known,
            None => host::identity(path),
        }
    }
}
