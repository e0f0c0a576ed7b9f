//! What the agents' tool-call hooks need from a run: where it may write
//! (its worktree and its brief's `touch`), and a place in its ledger for
//! each tool call the agent reports.

use std::path::PathBuf;

use airlock_ledger::Event;
use airlock_model::brief::Brief;
use serde_json::Value;

use crate::airlock::Airlock;
use crate::error::Result;
use crate::lane_policy::Capability;
use crate::layout::Layout;
use crate::workflow::Workflow;

/// The ledger event kind of a tool call reported by a PostToolUse hook.
pub const TOOL_CALL_EVENT: &str = "tool-call";

/// What a PreToolUse hook judges a call against.
#[derive(Debug, Clone)]
pub struct HookScope {
    pub run: String,
    pub worktree: PathBuf,
    /// The brief's `touch` globs, relative to the worktree.
    pub touch: Vec<String>,
    /// The run's lane, when the workflow keeps its worktree read-only
    /// (`[lanes.NAME] worktree`): the hook then denies every write there.
    pub read_only_lane: Option<String>,
}

/// `lane` when the workflow keeps a `class` run's worktree in it read-only.
fn read_only_lane(workflow: &Workflow, lane: &str, class: &str) -> Option<String> {
    (!workflow.grants(lane, Capability::WriteWorktree, class)).then(|| lane.to_string())
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
        read_only_lane: read_only_lane(&workflow, &run.lane, &run.class),
        run: run.id,
        worktree: run.worktree,
        touch: brief.touch,
    })
}

/// [`hook_scope`] without opening the store, for the PreToolUse hook that
/// runs before every tool call: the run's directory (found by its id or a
/// unique start of one) and airlock's own copy of its brief. Opening the
/// store (the ledger, its head record, recovery) cost as much CPU as the
/// rest of the hook (BENCHMARKS.md, hook). The copy's digest is not
/// compared with the one recorded at start here: the copy lies in
/// airlock's state, which a run's sandbox cannot see, and `check`,
/// `submit` and `promote` still compare it. `None` when the run is not
/// found this way (unknown, ambiguous, no brief): the caller opens the
/// store for the precise error.
pub fn hook_scope_unopened(layout: &Layout, run: &str) -> Result<Option<HookScope>> {
    let plausible = !run.is_empty()
        && run
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !plausible {
        return Ok(None);
    }
    let id = if layout.run_dir(run).join("brief.toml").is_file() {
        run.to_string()
    } else {
        let Ok(entries) = std::fs::read_dir(layout.runs_dir()) else {
            return Ok(None);
        };
        let mut found = entries
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|name| name.starts_with(run))
            .filter(|name| layout.run_dir(name).join("brief.toml").is_file());
        match (found.next(), found.next()) {
            (Some(id), None) => id,
            _ => return Ok(None),
        }
    };
    let path = layout.run_dir(&id).join("brief.toml");
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Ok(None);
    };
    let brief = Brief::parse(&text, &path.display().to_string(), None)?;
    // The lane and class the run started with are its brief's; what the lane
    // grants is the main checkout's workflow's (parsed only: the hook asks
    // one question of it).
    let workflow = <Workflow as crate::config::WorkflowFile>::load(&layout.workflow_path())?;
    Ok(Some(HookScope {
        read_only_lane: read_only_lane(&workflow, &brief.lane, &brief.class),
        worktree: layout.worktree(&id),
        run: id,
        touch: brief.touch,
    }))
}

/// Appends one tool call (as the hook library recorded it) to `run`'s
/// ledger; returns the event written.
pub fn record_tool_call(al: &mut Airlock, run: &str, record: Value) -> Result<Event> {
    let id = al.store.resolve(run)?;
    let run = al.store.get(&id)?;
    Ok(al.store.event(Some(&run.id), TOOL_CALL_EVENT, record)?)
}
