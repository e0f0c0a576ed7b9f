//! airlock's engine: briefs, workflows, runs and their worktrees, traced
//! commands, gates and stop conditions, proofs, review decisions, promotion,
//! and recovery after a crash. It returns data; it never prints.

pub mod action;
pub mod base_gates;
pub mod brief;
pub mod check;
pub mod confinement;
pub mod counts;
pub mod decide;
pub mod diag;
pub mod error;
pub mod exec;
pub mod gc;
pub mod git;
pub mod globs;
pub mod init;
pub mod keydir;
pub mod lane;
pub mod layout;
pub mod ledger_head;
pub mod ledger_server;
pub mod lock;
pub mod logs;
pub mod migrate;
pub mod promote;
pub mod proof;
pub mod quota;
pub mod recover;
pub mod release;
pub mod run;
pub mod snapshot;
pub mod start;
pub mod stops;
pub mod store;
pub mod submit;
pub mod workflow;

use std::path::Path;

pub use airlock_ledger as ledger;
pub use airlock_proof as proofs;
pub use airlock_sandbox as sandbox;
pub use airlock_snap as snap;
pub use error::{Code, Error, ErrorClass, Result};

use airlock_proof::SigningKey;
use brief::Brief;
use layout::{Layout, sha256_hex};
use run::Run;
use store::Store;
use workflow::Workflow;

/// What running a command for a run needs of airlock: where the
/// repository's state is, and the program that builds sandboxes. An
/// [`Airlock`] gives one; so does `exec` served with no ledger open.
#[derive(Clone, Copy)]
pub struct Site<'a> {
    pub layout: &'a Layout,
    pub init_program: &'a std::path::Path,
}

/// An open repository: its layout, its state, and what recovery found.
pub struct Airlock {
    pub layout: Layout,
    pub store: Store,
    /// What was repaired after an earlier process died, in sentences.
    pub recovered: Vec<String>,
    /// The program that sets up the sandbox (`<it> __sandbox-init`): this
    /// binary, unless the caller says otherwise.
    pub init_program: std::path::PathBuf,
}

/// The program that sets up sandboxes unless a caller says otherwise:
/// this binary.
pub fn init_program() -> std::path::PathBuf {
    std::env::current_exe().unwrap_or_else(|_| "airlock".into())
}

impl Airlock {
    pub fn open(cwd: &Path) -> Result<Airlock> {
        Airlock::open_in(Layout::discover(cwd)?)
    }

    /// [`Airlock::open`] in a repository already found.
    pub fn open_in(layout: Layout) -> Result<Airlock> {
        let store = Store::open(&layout)?;
        let mut al = Airlock {
            layout,
            store,
            recovered: Vec::new(),
            init_program: init_program(),
        };
        al.recovered = recover::recover(&mut al)?;
        let moved = migrate::run_refs(&mut al)?;
        al.recovered.extend(moved);
        Ok(al)
    }

    /// The repository without recovery and without the check of the
    /// ledger's head record, for `ledger verify` and `ledger accept-loss`,
    /// which report and settle a ledger older than its record. Nothing
    /// else may run on it.
    pub fn open_unverified(layout: Layout) -> Result<Airlock> {
        let store = Store::open_unverified(&layout)?;
        Ok(Airlock {
            layout,
            store,
            recovered: Vec::new(),
            init_program: init_program(),
        })
    }

    /// Where commands for runs of this repository run from.
    pub fn site(&self) -> Site<'_> {
        Site {
            layout: &self.layout,
            init_program: &self.init_program,
        }
    }

    /// The workflow in the main checkout now (never the worktree's copy).
    pub fn current_workflow(&self) -> Result<Workflow> {
        Workflow::load_for(&self.layout)
    }

    /// The workflow a run is checked against: the current one.
    pub fn workflow_for(&self, _run: &Run) -> Result<Workflow> {
        self.current_workflow()
    }

    /// The brief a run was started with, from airlock's own copy, refusing
    /// if that copy no longer matches the digest recorded at start.
    pub fn brief_of(&self, run: &Run, workflow: &Workflow) -> Result<Brief> {
        brief_of(&self.layout, run, workflow)
    }

    pub fn signing_key(&self) -> Result<SigningKey> {
        Ok(SigningKey::load_or_create(&self.layout.key_dir)?.0)
    }
}

/// Test hook: dies (SIGKILL, like `kill -9`) at the named point when
/// `AIRLOCK_FAILPOINT` names it. Used by the crash-recovery tests.
pub fn failpoint(name: &str) {
    if std::env::var_os("AIRLOCK_FAILPOINT").is_some_and(|v| v == name) {
        use rustix::process::{Signal, getpid, kill_process};
        let _ = kill_process(getpid(), Signal::KILL);
    }
}

/// The brief a run was started with, from airlock's own copy, refusing
/// if that copy no longer matches the digest recorded at start.
pub(crate) fn brief_of(layout: &Layout, run: &Run, workflow: &Workflow) -> Result<Brief> {
    let path = layout.run_dir(&run.id).join("brief.toml");
    let text = std::fs::read_to_string(&path).map_err(|source| Error::Read {
        path: path.clone(),
        source,
    })?;
    if sha256_hex(text.as_bytes()) != run.brief_digest {
        return Err(Error::refused(
            crate::error::Code::BriefChanged,
            format!("the brief of run {} changed after the run started", run.id),
            vec![format!(
                "{} no longer matches the digest recorded at start",
                path.display()
            )],
            "a run's brief is fixed; start a new run with the new brief",
        ));
    }
    Brief::parse(&text, &path.display().to_string(), Some(workflow))
}
