//! The review panel at work: its rules evaluated on a run's evidence
//! (through the model's `Evaluator`, never an expression language of the
//! engine's own), the decision log it leaves, and whether that decision may
//! stand in for a human's approval.
//!
//! The panel informs the reviewer. It decides alone only where the run's
//! lane lists the run's class in `auto_promote`, the outcome is
//! `recommend-approve` and no condition asks for a human's review; the
//! ledger then says the panel approved, not a person.

use airlock_model::conditions::{ConditionResult, Effect};
use airlock_model::evidence::{Evaluator, Evidence};
pub use airlock_model::panel::{
    CastVote, DECISION_VERSION, DEFAULT_PANEL, Decision, Outcome, Panel, Tally, Verdict, Vote, fmt,
};
use airlock_model::workflow::Workflow;

use crate::error::{Code, Error, Result};
use crate::run::Run;

/// The ledger event the panel's decision at submit is (`stage = "submit"`,
/// on the submitted tree); at promote the decision on the merged tree is
/// the `panel` field of the `promote` event.
pub const PANEL_EVENT: &str = "panel";

/// Who approved, in the `approve` event and the run's approval, when the
/// panel did.
pub const PANEL_DECIDER: &str = "panel";

/// The panel's decision on `evidence`, `None` when `[panel] enabled =
/// false`. Every rule is evaluated in one call (`eval_all`), so an
/// evaluator compiles the panel's expressions once. Refuses
/// (`no-evaluator`), never skips, when the panel has rules and no
/// evaluator is given.
pub fn decide(
    panel: &Panel,
    evidence: &Evidence,
    evaluator: Option<&dyn Evaluator>,
) -> Result<Option<Decision>> {
    if !panel.enabled {
        return Ok(None);
    }
    let exprs = panel.expressions();
    if exprs.is_empty() {
        return Ok(Some(panel.decide(&[])));
    }
    let evaluator = match evaluator {
        Some(e) => e,
        None => crate::evaluator::require("the review panel's rules")?,
    };
    let results = evaluator.eval_all(&exprs, evidence);
    Ok(Some(panel.decide(&results)))
}

/// Whether the run's lane lets the panel approve runs of its class alone:
/// its `auto_promote` lists the class.
pub fn lane_auto_promotes(workflow: &Workflow, lane: &str, class: &str) -> bool {
    workflow
        .may(lane, class, airlock_model::lanes::Capability::AutoPromote)
        .is_ok()
}

/// Why the panel may approve this run without a human, or why not.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AutoPromotion {
    pub approved: bool,
    pub reason: String,
}

/// The panel approves alone only when the lane grants auto-promotion to
/// the run's class, the decision recommends approval and no condition asks
/// for review (`needs_review`: the ids of the conditions that do).
pub fn auto_promotion(
    workflow: &Workflow,
    lane: &str,
    class: &str,
    decision: Option<&Decision>,
    needs_review: &[String],
    changed: &[String],
) -> AutoPromotion {
    let no = |reason: String| AutoPromotion {
        approved: false,
        reason,
    };
    if !lane_auto_promotes(workflow, lane, class) {
        return no(format!(
            "lane `{lane}` does not list class `{class}` in `auto_promote`: a person decides"
        ));
    }
    // A change to a protected path (the workflow itself, `.airlock/**`,
    // among them) always goes to a person: a brief may name such a path in
    // `touch`, and a run that could approve its own change to the lanes
    // would raise its own trust.
    let protected = airlock_model::globs::Globs::new(&workflow.protected());
    if let Some(path) = changed.iter().find(|p| protected.is_match(p)) {
        return no(format!(
            "the change touches protected path {path:?}: a person decides"
        ));
    }
    let Some(decision) = decision else {
        return no("the panel is off (`[panel] enabled = false`): a person decides".into());
    };
    if decision.outcome != Outcome::RecommendApprove {
        return no(format!(
            "the panel says {} ({}): a person decides",
            decision.outcome.as_str(),
            decision.reason
        ));
    }
    if !needs_review.is_empty() {
        return no(format!(
            "condition(s) {} ask for a person's review",
            needs_review.join(", ")
        ));
    }
    AutoPromotion {
        approved: true,
        reason: format!(
            "the panel recommends approval and lane `{lane}` auto-promotes class `{class}`"
        ),
    }
}

/// Records the panel's decision as a `panel` ledger event of `stage`
/// (`submit` or `promote`), with the whole decision log.
pub fn record(al: &mut crate::Airlock, run: &Run, stage: &str, decision: &Decision) -> Result<()> {
    al.store.event(
        Some(&run.id),
        PANEL_EVENT,
        serde_json::json!({
            "stage": stage,
            "round": run.round,
            "outcome": decision.outcome,
            "decision": decision,
        }),
    )?;
    Ok(())
}

/// The panel's approval of a just-submitted run: `approved`, with an
/// `approve` event whose `by` is the panel, never a person.
pub fn approve(al: &mut crate::Airlock, run: &mut Run, auto: &AutoPromotion) -> Result<()> {
    let submission = run
        .submission
        .clone()
        .ok_or_else(|| Error::Corrupt("the run has no submission".into()))?;
    run.state = crate::run::State::Approved;
    run.approval = Some(crate::run::Approval {
        digest: submission.digest.clone(),
        reason: Some(auto.reason.clone()),
        at: crate::run::now(),
        by: Some(PANEL_DECIDER.to_string()),
    });
    al.transition(
        run,
        crate::run::State::InReview,
        "approve",
        serde_json::json!({"digest": submission.digest, "reason": auto.reason, "by": PANEL_DECIDER,
                           "panel": {"outcome": submission.panel.as_ref().map(|d| d.outcome)}}),
    )?;
    Ok(())
}

/// At promote, for a run the panel approved alone: its decision on the
/// merged tree must still recommend approval, else a person decides.
pub fn require_still_approved(
    run: &Run,
    decision: Option<&Decision>,
    conditions: &[ConditionResult],
) -> Result<()> {
    let needs_review = needs_review(conditions);
    let by_panel = run
        .approval
        .as_ref()
        .is_some_and(|a| a.by.as_deref() == Some(PANEL_DECIDER));
    if !by_panel {
        return Ok(());
    }
    let why = match decision {
        Some(d) if d.outcome != Outcome::RecommendApprove => Some(format!(
            "on the merged tree the panel says {}: {}",
            d.outcome.as_str(),
            d.reason
        )),
        None => Some("the panel is off now, and no person approved the run".into()),
        Some(_) if !needs_review.is_empty() => Some(format!(
            "on the merged tree condition(s) {} ask for a person's review",
            needs_review.join(", ")
        )),
        Some(_) => None,
    };
    match why {
        None => Ok(()),
        Some(why) => Err(Error::refused(
            Code::PanelWithdrew,
            format!(
                "refusing to promote run {}: the panel approved it alone, and no longer recommends it",
                run.id
            ),
            vec![why],
            format!(
                "a person decides: see the votes with `airlock show {0}`, then `airlock approve {0}` or `airlock redirect {0} --reason …`",
                run.id
            ),
        )),
    }
}

/// The ids of the conditions that held with effect `needs-review`.
pub fn needs_review(conditions: &[ConditionResult]) -> Vec<String> {
    conditions
        .iter()
        .filter(|c| c.held && c.effect == Effect::NeedsReview)
        .map(|c| c.id.clone())
        .collect()
}

/// After `submit` moved the run to `in_review`: the panel's decision as a
/// ledger event, then its approval when [`auto_promotion`] allows.
pub fn after_submit(
    al: &mut crate::Airlock,
    run: &mut Run,
    workflow: &Workflow,
    conditions: &[ConditionResult],
    changed: &[String],
) -> Result<Option<AutoPromotion>> {
    let Some(decision) = run.submission.as_ref().and_then(|s| s.panel.clone()) else {
        return Ok(None);
    };
    record(al, run, "submit", &decision)?;
    let auto = auto_promotion(
        workflow,
        &run.lane,
        &run.class,
        Some(&decision),
        &needs_review(conditions),
        changed,
    );
    if auto.approved {
        approve(al, run, &auto)?;
    }
    Ok(Some(auto))
}
