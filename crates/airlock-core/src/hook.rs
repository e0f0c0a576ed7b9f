//! What the agents' tool-call hooks need from a run: where it may write
//! (its worktree and its brief's `touch`), and a place in its ledger for
//! each tool call the agent reports.

use std::path::PathBuf;

use airlock_ledger::Event;
use serde_json::Value;

use crate::airlock::Airlock;
use crate::error::Result;

/// The ledger event kind of a tool call reported by a PostToolUse hook.
pub const TOOL_CALL_EVENT: &str = "tool-call";

/// What a PreToolUse hook judges a call against.
#[derive(Debug, Clone)]
pub struct HookScope {
    pub run: String,
    pub worktree: PathBuf,
    /// The brief's `touch` globs, relative to the worktree.
    pub touch: Vec<String>,
}

/// The scope of `run` (a whole id or a unique start of one), from the
/// store and airlock's own copy of the brief (refused if that copy no
/// longer matches its recorded digest).
pub fn hook_scope(al: &Airlock, run: &str) -> Result<HookScope> {
    let id = al.store.resolve(run)?;
    let run = al.store.get(&id)?;
    let workflow = al.workflow_for(&run)?;
    let brief = al.brief_of(&run, &workflow)?;
    Ok(HookScope {
        run: run.id,
        worktree: run.worktree,
        touch: brief.touch,
    })
}

/// Appends one tool call (as the hook library recorded it) to `run`'s
/// ledger; returns the event written.
pub fn record_tool_call(al: &mut Airlock, run: &str, record: Value) -> Result<Event> {
    let id = al.store.resolve(run)?;
    let run = al.store.get(&id)?;
    Ok(al.store.event(Some(&run.id), TOOL_CALL_EVENT, record)?)
}
