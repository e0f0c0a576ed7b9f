//! The one place that decides what a run's lane lets it do: every command
//! that acts (exec, check's gates, snap run, agent, submit, promote; actions
//! through their scopes, `airlock_model::action::scope::authorize`) asks
//! [`require`] before it acts, and a refusal is `lane-refused`, naming the
//! lane, the missing capability and the lowest lane that grants it.
//!
//! It reads only the workflow the command already loaded: no I/O.

use airlock_model::run::Run;
use airlock_model::workflow::Workflow;

pub use airlock_model::lanes::{
    Capabilities, Capability, Class, Denial, LaneRefusal, WorktreeAccess,
};

use crate::error::Result;

/// May `run` use `capability` for `command`? Its class must still allow its
/// lane (the workflow may have lowered `max_lane` since it started), and the
/// lane must grant the capability.
pub fn check(
    workflow: &Workflow,
    run: &Run,
    capability: Capability,
    command: &str,
) -> Result<(), Box<LaneRefusal>> {
    workflow
        .may(&run.lane, &run.class, capability)
        .map_err(|denial| {
            Box::new(LaneRefusal {
                command: command.to_string(),
                run: run.id.clone(),
                lane: run.lane.clone(),
                class: run.class.clone(),
                denial,
            })
        })
}

/// [`check`], as the engine's error (`lane-refused`).
pub fn require(
    workflow: &Workflow,
    run: &Run,
    capability: Capability,
    command: &str,
) -> Result<()> {
    check(workflow, run, capability, command)
        .map_err(|refusal| crate::Error::Refused(refusal.to_refusal()))
}

/// Only the class's limit: for a command that needs no capability of its
/// own (proposing an action, whose scopes the lane grants or not; a check
/// with no gates to run).
pub fn require_class(workflow: &Workflow, run: &Run, command: &str) -> Result<()> {
    workflow
        .class_allows(&run.class, &run.lane)
        .map_err(|denial| {
            crate::Error::Refused(
                LaneRefusal {
                    command: command.to_string(),
                    run: run.id.clone(),
                    lane: run.lane.clone(),
                    class: run.class.clone(),
                    denial,
                }
                .to_refusal(),
            )
        })
}
