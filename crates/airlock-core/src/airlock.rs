//! An open repository ([`Airlock`]): what every step works on.

use airlock_proof::SigningKey;

use crate::brief::Brief;
use crate::config::WorkflowFile;
use crate::error::{Error, Result};
use crate::layout::{Layout, sha256_hex};
use crate::run::{Run, State};
use crate::site::Site;
use crate::store::Store;
use crate::workflow::Workflow;
use airlock_ledger::Event;

/// An open repository: its layout, its state, and what recovery found.
pub struct Airlock {
    pub layout: Layout,
    pub store: Box<dyn Store>,
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

    /// Moves `run` on from `from` in the store (see [`Store::transition`]),
    /// and ends its warm sandboxes when it can no longer run commands.
    pub fn transition(
        &mut self,
        run: &Run,
        from: State,
        kind: &str,
        data: serde_json::Value,
    ) -> Result<Event> {
        let event = self.store.transition(run, from, kind, data)?;
        self.end_warm_after(run, from);
        Ok(event)
    }

    /// [`Airlock::transition`] through [`Store::transition_clearing`].
    pub fn transition_clearing(
        &mut self,
        run: &Run,
        from: State,
        kind: &str,
        data: serde_json::Value,
        intent: Option<i64>,
    ) -> Result<Event> {
        let event = self
            .store
            .transition_clearing(run, from, kind, data, intent)?;
        self.end_warm_after(run, from);
        Ok(event)
    }

    /// A run that can no longer run commands needs no warm sandbox.
    fn end_warm_after(&self, run: &Run, from: State) {
        if crate::store::TRACED.contains(&from) && !crate::store::TRACED.contains(&run.state) {
            crate::confinement::end_warm(&self.layout, &run.id);
        }
    }

    pub fn signing_key(&self) -> Result<SigningKey> {
        Ok(SigningKey::load_or_create(&self.layout.key_dir)?.0)
    }
}

/// The brief a run was started with, from airlock's own copy, refusing
/// if that copy no longer matches the digest recorded at start.
pub(crate) fn brief_of(layout: &Layout, run: &Run, workflow: &Workflow) -> Result<Brief> {
    let (text, path) = brief_text_of(layout, run)?;
    Ok(Brief::parse(
        &text,
        &path.display().to_string(),
        Some(workflow),
    )?)
}

/// The text of the brief a run was started with, and where it is, refusing
/// as [`brief_of`] does.
pub(crate) fn brief_text_of(layout: &Layout, run: &Run) -> Result<(String, std::path::PathBuf)> {
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
    Ok((text, path))
}
