//! The reviewer's decisions: approve, reject, redirect.

use serde_json::json;

use crate::Airlock;
use crate::error::{Error, Result};
use crate::run::{Approval, Run, State, now};

/// Refuses when the caller looks like it runs inside a run's lane: an agent
/// cannot approve its own run.
pub(crate) fn refuse_from_lane(al: &Airlock, command: &str) -> Result<()> {
    let inside_env = std::env::var_os("AIRLOCK_RUN").is_some();
    let cwd = std::env::current_dir().unwrap_or_default();
    let inside_dir = cwd.starts_with(al.layout.runs_dir());
    if inside_env || inside_dir {
        return Err(Error::refused(
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
pub(crate) fn require_reason(reason: Option<&str>, command: &str, what: &str) -> Result<String> {
    match reason.map(str::trim) {
        Some(r) if !r.is_empty() => Ok(r.to_string()),
        _ => Err(Error::Invalid(format!(
            "`airlock {command}` needs a reason: add `--reason \"…\"` saying {what}"
        ))),
    }
}

/// Approves exactly the proof that is current; with `expected_digest`, only
/// if it is still the one the reviewer saw.
pub fn approve(
    al: &mut Airlock,
    run_id: &str,
    reason: Option<&str>,
    expected_digest: Option<&str>,
) -> Result<Run> {
    refuse_from_lane(al, "approve")?;
    let mut run = al.store.get(run_id)?;
    run.require("approve", &[State::InReview])?;
    let submission = run
        .submission
        .clone()
        .ok_or_else(|| Error::Invalid("the run has no submission".into()))?;
    // A short prefix matches more than one proof after a few resubmits (an
    // empty one matches every proof): the approval would bind to a proof
    // the reviewer never saw.
    let expected_digest = expected_digest
        .map(|d| digest_prefix(d, &run.id))
        .transpose()?;
    if let Some(expected) = expected_digest.as_deref()
        && !submission.digest.starts_with(expected)
    {
        return Err(Error::refused(
            format!(
                "run {} now has proof {}, not the {expected} you reviewed",
                run.id,
                short(&submission.digest)
            ),
            vec!["the proof changed after you looked at it".into()],
            format!("review it again with `airlock show {}`", run.id),
        ));
    }
    let report = crate::proof::verify_run(al, &run, None)?;
    if !report.ok() {
        return Err(Error::refused(
            format!("the proof of run {} does not verify", run.id),
            report
                .checks
                .iter()
                .filter(|c| !c.ok)
                .map(|c| format!("{}: {}", c.name, c.detail))
                .collect(),
            format!(
                "redirect the run (`airlock redirect {} --reason …`) so it is checked and submitted again",
                run.id
            ),
        ));
    }
    crate::promote::require_worktree_unchanged(al, &run, &submission)?;
    run.state = State::Approved;
    run.approval = Some(Approval {
        digest: submission.digest.clone(),
        reason: reason.map(str::to_string),
        at: now(),
    });
    al.store.transition(
        &run,
        State::InReview,
        "approve",
        json!({"digest": submission.digest, "reason": reason, "by": decider(al)}),
    )?;
    Ok(run)
}

/// The fewest hex digits `approve --digest` takes: 48 bits, which no two
/// proofs of a run share by chance.
pub const MIN_DIGEST_PREFIX: usize = 12;

/// `--digest` as a lower-case prefix of a sha256, or why it is not one.
fn digest_prefix(given: &str, run: &str) -> Result<String> {
    let given = given.trim();
    let hex = given.strip_prefix("sha256:").unwrap_or(given);
    let wrong = if hex.is_empty() {
        "`--digest` is empty".to_string()
    } else if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        format!("`--digest {given}` is not a hex digest")
    } else if hex.len() < MIN_DIGEST_PREFIX {
        format!(
            "`--digest {given}` has {} hex digit{}, too few to name one proof",
            hex.len(),
            if hex.len() == 1 { "" } else { "s" }
        )
    } else if hex.len() > 64 {
        format!("`--digest {given}` is longer than a sha256 (64 hex digits)")
    } else {
        return Ok(hex.to_ascii_lowercase());
    };
    Err(Error::Invalid(format!(
        "{wrong}: give at least {MIN_DIGEST_PREFIX} hex digits of the proof digest you reviewed (`airlock show {run}` prints it)"
    )))
}

pub fn reject(al: &mut Airlock, run_id: &str, reason: Option<&str>) -> Result<Run> {
    refuse_from_lane(al, "reject")?;
    let reason = require_reason(reason, "reject", "what the agent should know")?;
    let mut run = al.store.get(run_id)?;
    // A run can be ended at any point before promotion: a runaway agent's
    // run, or a release that cannot pass its checklist.
    run.require(
        "reject",
        &[
            State::Staged,
            State::Checked,
            State::InReview,
            State::Approved,
        ],
    )?;
    let from = run.state;
    run.state = State::Rejected;
    al.store.transition(
        &run,
        from,
        "reject",
        json!({"reason": reason, "by": decider(al)}),
    )?;
    Ok(run)
}

/// Back to the agent: a new round in the same worktree.
pub fn redirect(al: &mut Airlock, run_id: &str, reason: Option<&str>) -> Result<Run> {
    refuse_from_lane(al, "redirect")?;
    let reason = require_reason(reason, "redirect", "what the agent should know")?;
    let mut run = al.store.get(run_id)?;
    run.require("redirect", &[State::InReview, State::Approved])?;
    let from = run.state;
    run.state = State::Staged;
    run.round += 1;
    run.check = None;
    run.approval = None;
    al.store.transition(
        &run,
        from,
        "redirect",
        json!({"reason": reason, "round": run.round, "by": decider(al)}),
    )?;
    Ok(run)
}

/// Who made a decision, for its ledger event: the user's git identity
/// (`None` when none is configured), the OS account's name (`USER`, else
/// `LOGNAME`) and uid.
pub fn decider(al: &Airlock) -> serde_json::Value {
    let git = crate::git::user_identity(&al.layout.git_dir).map(|i| i.to_string());
    let user = ["USER", "LOGNAME"]
        .iter()
        .find_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty()));
    // SAFETY: getuid has no preconditions and cannot fail.
    let uid = unsafe { libc::getuid() };
    json!({"git": git, "user": user, "uid": uid})
}

pub fn short(digest: &str) -> &str {
    &digest[..digest.len().min(12)]
}
