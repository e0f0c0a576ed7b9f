//! What a warm sandbox's name needs to know about the paths it hides,
//! looked up ahead of the command.
//!
//! Naming a warm sandbox resolves every hidden path, takes each one's
//! identity and reads the host's sockets: a fifth of a millisecond, and a
//! third of one more for each hundred processes whose network namespace
//! the sockets' walk reads (BENCHMARKS.md, exec: other network namespaces'
//! sockets). Most of those paths are the workflow's, not the run's, so
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
        let mut ahead = LookAhead::default();
        fn note(ahead: &mut LookAhead, path: &[u8]) {
            ahead
                .identities
                .entry(path.to_vec())
                .or_insert_with(|| host::identity(path));
        }
        for path in hidden {
            note(&mut ahead, path.as_os_str().as_bytes());
            if let Some(real) = ahead.real.real(path) {
                note(&mut ahead, real.as_os_str().as_bytes());
            }
        }
        if let Some(dir) = hosts
            && crate::private::private_dir(dir).is_ok()
            && let Ok(real) = std::fs::canonicalize(dir)
        {
            note(&mut ahead, real.as_os_str().as_bytes());
            ahead.hosts_dir = Some((dir.to_path_buf(), real));
        }
        let sockets = confine::host_sockets();
        for socket in &sockets {
            note(&mut ahead, socket);
        }
        ahead.sockets = Some(sockets);
        ahead
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
