//! `airlock rollback`: the undo path every promotion records. It reverts the
//! merge on the target (a new commit; history is never rewritten), then runs
//! the compensations declared with the actions that were performed, newest
//! first, with the same exactly-once bookkeeping as promotion.

use serde::Serialize;
use serde_json::json;

use crate::Airlock;
use crate::action::apply::{ApplyReport, Effects, apply};
use crate::action::{ActionState, Role, plan};
use crate::error::{Error, Result};
use crate::lock::FileLock;
use crate::run::{Run, State};

pub(crate) mod remote;

#[derive(Debug, Clone, Serialize)]
pub struct RollbackReport {
    pub run: String,
    pub class: String,
    pub target: String,
    /// The target before the revert.
    pub previous: String,
    /// The revert commit (absent with `--actions-only` on a run rolled back earlier).
    pub revert: Option<String>,
    /// The shared remote the revert was pushed to (team mode).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remote: Option<String>,
    pub checkout_updated: bool,
    pub actions: ApplyReport,
}

pub fn rollback(
    al: &mut Airlock,
    run_id: &str,
    reason: Option<&str>,
    actions_only: bool,
    effects: &dyn Effects,
) -> Result<RollbackReport> {
    crate::guards::refuse_from_lane(al, "rollback")?;
    let reason = crate::guards::require_reason(reason, "rollback", "why the change is undone")?;
    let _lock = FileLock::acquire(&al.layout.promote_lock(), true)?;
    let mut run = al.store.get(run_id)?;
    // What the ledger says was done decides what is undone: a ledger older
    // than what airlock did would revert and compensate a second time.
    al.store
        .require_head(Some(&format!("roll back run {run_id}")))?;
    if actions_only {
        run.require("rollback --actions-only", &[State::RolledBack])?;
    } else {
        run.require("rollback", &[State::Promoted])?;
    }
    let promotion = run
        .promotion
        .clone()
        .ok_or_else(|| Error::Corrupt("the run has no promotion record".into()))?;
    let round = run
        .submission
        .as_ref()
        .map(|s| s.round)
        .unwrap_or(run.round);
    // Under the lock, an action still `started` was left by a dead process:
    // whether it happened is unknown. A failed one may have had part of its
    // effect (a push is the exception: it is all or nothing). Either way a
    // human says what happened before anything is compensated.
    let mut pending = Vec::new();
    for mut action in plan::list(al, &run.id)? {
        if action.role != Role::Apply {
            continue;
        }
        if action.state == ActionState::Started {
            action.state = ActionState::Unknown;
            plan::save(
                al,
                &action,
                Some(ActionState::Started),
                "action-finished",
                json!({"name": action.spec.name, "role": "apply", "state": action.state.as_str(),
                       "summary": "interrupted after it started: it may or may not have happened",
                       "recovered": true}),
            )?;
        }
        let unsettled = match action.state {
            ActionState::Unknown => true,
            ActionState::Failed => !matches!(action.spec.body, crate::action::Body::GitPush(_)),
            _ => false,
        };
        if unsettled {
            pending.push(format!(
                "action `{}` is {}",
                action.spec.name,
                action.state.as_str()
            ));
        }
    }
    if !pending.is_empty() {
        return Err(Error::refused(
            crate::error::Code::UnknownOutcome,
            format!(
                "refusing to roll back run {}: it is not known what some actions did",
                run.id
            ),
            pending,
            format!(
                "check what happened, then `airlock resolve {} NAME --done --reason …` (its compensation will run) or `--retry --reason …` (it is treated as never performed); nothing was changed",
                run.id
            ),
        ));
    }

    let main = al.layout.git();
    let target_ref = format!("refs/heads/{}", promotion.target);
    // Team mode: a run promoted through the shared remote has its merge
    // there, not on the local branch; it is reverted there.
    let on_remote = if actions_only {
        None
    } else {
        remote::promoted_through(al, &run)?
    };
    let mut pushed_to = None;
    let (previous, revert, checkout_updated) = if actions_only {
        let revert = run_rollback_commit(al, &run)?;
        (revert.clone(), Some(revert), false)
    } else if let Some((remote_name, record)) = on_remote {
        let reverted = remote::rollback(al, &remote_name, &mut run, &promotion, &record, &reason)?;
        pushed_to = Some(remote_name);
        (reverted.previous, Some(reverted.revert), false)
    } else {
        let tip = main.ref_value(&target_ref)?.ok_or_else(|| {
            Error::refused(
                crate::error::Code::TargetMissing,
                format!(
                    "refusing to roll back run {}: the target branch `{}` is gone",
                    run.id, promotion.target
                ),
                vec![],
                "recreate the branch, then roll back again",
            )
        })?;
        let tree = revert_tree(al, &run, &promotion, &tip, None)?;
        let message = revert_message(&run, &promotion, &reason);
        let revert = main.commit_tree(&tree, &[&tip], &message)?;
        let checked_out = crate::repo::checkout::checkout_can_move(
            &al.layout,
            &run.id,
            &target_ref,
            &tip,
            &revert,
            "roll back",
        )?;
        let (intent, _guard) = al.store.begin_intent(
            "rollback",
            &run.id,
            json!({"target": target_ref, "previous": tip, "merge": revert, "checked_out": checked_out,
                   "reason": reason}),
        )?;
        crate::failpoint("rollback:before-ref");
        let (ok, _, err) = main.try_run(&["update-ref", &target_ref, &revert, &tip], None)?;
        if !ok {
            al.store.end_intent(intent)?;
            return Err(Error::refused(
                crate::error::Code::TargetMoved,
                format!(
                    "refusing to roll back run {}: {} moved meanwhile",
                    run.id, promotion.target
                ),
                vec![String::from_utf8_lossy(&err).trim().to_string()],
                format!("run `airlock rollback {} --reason …` again", run.id),
            ));
        }
        crate::failpoint("rollback:after-ref");
        if checked_out {
            crate::repo::checkout::update_checkout(&al.layout, &tip, &revert)?;
        }
        run.state = State::RolledBack;
        al.transition_clearing(
            &run,
            State::Promoted,
            "rollback",
            json!({"reason": reason, "class": run.class, "target": promotion.target,
                   "previous": tip, "revert": revert, "merge": promotion.merge}),
            Some(intent),
        )?;
        (tip, Some(revert), checked_out)
    };
    let commit = revert.clone().unwrap_or_default();
    let actions = apply(al, &run, Role::Undo, &commit, round, effects)?;
    Ok(RollbackReport {
        run: run.id,
        class: run.class,
        target: promotion.target,
        previous,
        revert,
        remote: pushed_to,
        checkout_updated,
        actions,
    })
}

/// The tree of the target at `tip` without what the run's merge brought:
/// the merge undone against its first parent, whatever came after it kept.
/// Later commits that touched the same lines are a refusal naming them.
fn revert_tree(
    al: &Airlock,
    run: &Run,
    promotion: &crate::run::Promotion,
    tip: &str,
    remote: Option<&str>,
) -> Result<String> {
    let main = al.layout.git();
    if tip == promotion.merge {
        return main.tree_of(&promotion.previous);
    }
    let (ok, out, _) = main.try_run(
        &[
            "merge-tree",
            "--write-tree",
            "--name-only",
            "--no-messages",
            &format!("--merge-base={}", promotion.merge),
            tip,
            &promotion.previous,
        ],
        None,
    )?;
    let text = String::from_utf8_lossy(&out).to_string();
    if !ok {
        return Err(Error::refused(
            crate::error::Code::TargetConflict,
            format!(
                "refusing to roll back run {}: {} changed the run's paths since it was promoted",
                run.id, promotion.target
            ),
            text.lines()
                .skip(1)
                .filter(|l| !l.is_empty())
                .map(|p| format!("{p} conflicts"))
                .collect(),
            match remote {
                None => format!(
                    "revert it by hand (`git revert -m 1 {}` on an up-to-date {}) and resolve the conflicts; nothing was changed",
                    promotion.merge, promotion.target
                ),
                Some(remote) => format!(
                    "revert it by hand: `git fetch {remote}`, `git switch {0}`, `git merge --ff-only {remote}/{0}`, `git revert -m 1 {1}`, resolve the conflicts, `git revert --continue`, `git push {remote} {0}`; nothing was changed or pushed",
                    promotion.target, promotion.merge
                ),
            },
        ));
    }
    Ok(text.lines().next().unwrap_or_default().trim().to_string())
}

/// The revert commit's message (the reason's control characters blanked).
fn revert_message(run: &Run, promotion: &crate::run::Promotion, reason: &str) -> String {
    format!(
        "Revert airlock run {} on {}\n\nThis reverts the merge {}.\nReason: {}\n",
        run.id,
        promotion.target,
        promotion.merge,
        reason
            .chars()
            .map(|c| if c.is_control() && c != '\n' { ' ' } else { c })
            .collect::<String>()
    )
}

/// The revert commit recorded by the run's `rollback` event.
fn run_rollback_commit(al: &Airlock, run: &Run) -> Result<String> {
    let events = al.store.events(Some(&run.id))?;
    events
        .iter()
        .rev()
        .find(|e| e.kind == "rollback")
        .and_then(|e| e.data["revert"].as_str().map(str::to_string))
        .ok_or_else(|| Error::Corrupt(format!("run {} has no recorded rollback", run.id)))
}
