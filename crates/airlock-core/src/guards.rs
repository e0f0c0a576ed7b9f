//! Checks several steps make before they act: that a human (not an agent
//! inside a run) gives the command, with a reason, and that a submitted
//! worktree has not changed since.

use crate::Airlock;
use crate::error::{Error, Result};
use crate::git;
use crate::run::{Run, Submission};

/// Refuses when the caller looks like it runs inside a run's lane: an agent
/// cannot approve its own run.
pub fn refuse_from_lane(al: &Airlock, command: &str) -> Result<()> {
    let inside_env = std::env::var_os("AIRLOCK_RUN").is_some();
    let cwd = std::env::current_dir().unwrap_or_default();
    let inside_dir = cwd.starts_with(al.layout.runs_dir());
    if inside_env || inside_dir {
        return Err(Error::refused(
            crate::error::Code::InsideRun,
            format!("`airlock {command}` cannot be run from inside a run"),
            vec![if inside_env {
                "AIRLOCK_RUN is set: this process was started by `airlock exec` or a gate".into()
            } else {
                format!(
                    "the current directory {} is inside a run's worktree",
                    cwd.display()
                )
            }],
            "a human decides at the boundary: run it from your own shell in the main checkout",
        ));
    }
    Ok(())
}

/// The trimmed `--reason`, or a refusal saying what it should say (`what`).
pub fn require_reason(reason: Option<&str>, command: &str, what: &str) -> Result<String> {
    match reason.map(str::trim) {
        Some(r) if !r.is_empty() => Ok(r.to_string()),
        _ => Err(Error::Invalid(format!(
            "`airlock {command}` needs a reason: add `--reason \"…\"` saying {what}"
        ))),
    }
}

pub fn short(digest: &str) -> &str {
    &digest[..digest.len().min(12)]
}

pub fn require_worktree_unchanged(al: &Airlock, run: &Run, submission: &Submission) -> Result<()> {
    // Team mode: a run started on another machine has its worktree there.
    if crate::remote::checked_without_worktree(al, run, submission)?.is_some() {
        return Ok(());
    }
    let workflow = al.workflow_for(run)?;
    let now_tree = crate::quota::snapshot(&al.layout, &run.id, &workflow.sandbox)?;
    if now_tree == submission.tree {
        return Ok(());
    }
    let changes = git::diff_tree(&al.layout.git(), &submission.tree, &now_tree)?;
    Err(Error::refused(
        crate::error::Code::WorktreeChanged,
        format!("the worktree of run {} changed after it was submitted", run.id),
        changes
            .iter()
            .take(20)
            .map(|c| format!("{} {}", c.status, c.path))
            .chain(std::iter::once(
                "the proof no longer describes the worktree, so it and any approval no longer apply".into(),
            ))
            .collect(),
        format!(
            "redirect the run (`airlock redirect {} --reason …`) so it is checked and submitted again, or reject it",
            run.id
        ),
    ))
}
