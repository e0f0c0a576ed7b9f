//! Working offline (issue 20): a machine whose shared database is out of
//! reach goes on with the runs it works on, recording locally what it
//! would have stored (`airlock_store::spool`), flushed by the database's
//! store when it next connects.
//!
//! What may work offline is what changes only this machine's own run and
//! can be replayed onto the shared history later: `exec` of a run this
//! machine started (its worktree is here), recorded as a trace that
//! follows the run's last event this machine knew. Nothing that decides or
//! has an effect beyond the run works offline: `approve`, `reject`,
//! `promote`, `rollback`, `submit` and everything else open the database and
//! refuse (`database-unreachable`), since nothing irreversible is done
//! without the shared, sealed record. `check` and `snap` do not work
//! offline yet (they change the run's state or its snapshots).

use airlock_store::Paths;
use airlock_store::spool::{self, Known, Spooled};

use crate::error::{Error, Result};
use crate::exec::{Records, Trace};
use crate::run::{Run, now};

/// [`Records`] for a run while the database is out of reach.
pub struct Offline {
    paths: Paths,
    known: Known,
}

impl Offline {
    /// The records of `run` offline, if this machine may go on with it:
    /// it knows the run (it changed it last time it was online) and the
    /// run's worktree is here. Otherwise `unreachable`, the error opening
    /// the database gave.
    pub fn for_run(paths: &Paths, run: &str, unreachable: Error) -> Result<Offline> {
        match spool::known(paths, run)? {
            Some(known) if known.run.worktree.is_dir() => Ok(Offline {
                paths: paths.clone(),
                known,
            }),
            _ => Err(unreachable),
        }
    }
}

/// Whether `error` is the database being out of reach (as opposed to
/// refusing airlock, or being of a newer airlock), the one failure a
/// command may go on offline after.
pub fn is_unreachable(error: &Error) -> bool {
    error.code() == crate::error::Code::DatabaseUnreachable
}

impl Records for Offline {
    fn run(&mut self, id: &str) -> Result<Run> {
        if id != self.known.run.id {
            return Err(Error::UnknownRun(id.to_string()));
        }
        Ok(self.known.run.clone())
    }

    fn add_trace(&mut self, run: &str, trace: &mut Trace) -> Result<()> {
        let note = "recorded on this machine while the database is out of reach: stored there, and numbered, when airlock next reaches it";
        trace.n = 0;
        trace.hint = Some(match trace.hint.take() {
            Some(h) => format!("{h}; {note}"),
            None => note.to_string(),
        });
        spool::push(
            &self.paths,
            run,
            &Spooled {
                after: self.known.head.clone(),
                at: now(),
                trace: trace.clone(),
            },
        )?;
        Ok(())
    }
}
