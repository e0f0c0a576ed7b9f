//! The workflow's custom conditions (`[conditions.ID]`) on a run's
//! evidence: evaluated by `check` after the gates, by `submit`, and by
//! `promote` on the merged tree. A `block` condition that holds stops
//! `submit` and `promote` as a failed stop condition does; `needs-review`
//! marks the run for a human; `warn` is shown.

pub use airlock_model::conditions::{Condition, ConditionResult, Effect};
use airlock_model::evidence::Evidence;

use crate::error::{Code, Error, Result};
use crate::workflow::Workflow;

/// Every condition of `workflow` on `evidence`, in the workflow's order.
/// An expression that cannot be evaluated holds, with the reason.
pub fn evaluate(workflow: &Workflow, evidence: &Evidence) -> Result<Vec<ConditionResult>> {
    if workflow.conditions.is_empty() {
        return Ok(Vec::new());
    }
    let evaluator = crate::evaluator::require("the workflow's `[conditions]`")?;
    let exprs: Vec<&str> = workflow
        .conditions
        .iter()
        .map(|c| c.when.as_str())
        .collect();
    let outcomes = evaluator.eval_all(&exprs, evidence);
    Ok(workflow
        .conditions
        .iter()
        .zip(outcomes)
        .map(|(c, outcome)| ConditionResult {
            id: c.id.clone(),
            effect: c.effect,
            held: outcome.as_ref().map_or(true, |held| *held),
            message: c.message.clone(),
            error: outcome.err(),
        })
        .collect())
}

/// The refusal of `doing` (`submit`, `promote`) when a `block` condition
/// holds: each such condition named with its message.
pub fn refuse_blocked(results: &[ConditionResult], doing: &str, run: &str) -> Result<()> {
    let blocking: Vec<String> = results
        .iter()
        .filter(|r| r.blocks())
        .map(|r| r.describe())
        .collect();
    if blocking.is_empty() {
        return Ok(());
    }
    Err(Error::refused(
        Code::ConditionBlocked,
        format!(
            "{doing} of run {run} is blocked by {} workflow condition{}",
            blocking.len(),
            if blocking.len() == 1 { "" } else { "s" }
        ),
        blocking,
        format!(
            "change the run so the condition no longer holds (`airlock evidence {run}` shows what it sees), or change `[conditions]` in the workflow"
        ),
    ))
}

/// The conditions' results as a ledger event records them.
pub fn summary(results: &[ConditionResult]) -> serde_json::Value {
    serde_json::Value::Array(
        results
            .iter()
            .map(|r| {
                serde_json::json!({"id": r.id, "effect": r.effect, "held": r.held,
                                   "error": r.error})
            })
            .collect(),
    )
}
