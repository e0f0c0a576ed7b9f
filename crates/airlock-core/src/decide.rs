//! The reviewer's decisions: approve, reject, redirect.

use serde_json::json;

use crate::Airlock;
use crate::error::{Error, Result};
pub use crate::guards::{refuse_from_lane, require_reason, short};
pub use crate::layout::{FEEDBACK_FILE, feedback_dir};
use crate::run::{Approval, Run, State, now};

/// Approves exactly the proof that is current; with `expected_digest`, only
/// if it is still the one the reviewer saw.
pub fn approve(
    al: &mut Airlock,
    run_id: &str,
    reason: Option<&str>,
    expected_digest: Option<&str>,
) -> Result<Run> {
    approve_via(al, run_id, reason, expected_digest, None)
}

/// Where a decision was made, when not in the terminal: its ledger event
/// gains `"via"` and the session that made it (a short random id naming
/// the browser's session, never its secret), beside `by`.
#[derive(Debug, Clone, Copy)]
pub struct Via<'a> {
    /// `browser` for `airlock serve`.
    pub via: &'a str,
    pub session: &'a str,
}

/// A decision's ledger data with [`Via`]'s fields added.
fn with_via(mut data: serde_json::Value, via: Option<Via>) -> serde_json::Value {
    if let Some(via) = via {
        data["via"] = json!(via.via);
        data["session"] = json!(via.session);
    }
    data
}

/// [`approve`], recording where the decision was made.
pub fn approve_via(
    al: &mut Airlock,
    run_id: &str,
    reason: Option<&str>,
    expected_digest: Option<&str>,
    via: Option<Via>,
) -> Result<Run> {
    approve_signed(al, run_id, reason, expected_digest, via, None).map(|a| a.run)
}

/// What a signed approval did (team mode, `crate::approvals`).
#[derive(Debug, Clone)]
pub struct Approved {
    /// `approved`, or still `in_review` when the owners' counts are not met.
    pub run: Run,
    /// Where the run's signed approvals stand (`None`: no `.airlock/reviewers` on the
    /// target, an approval as before).
    pub standing: Option<crate::approvals::Standing>,
}

/// [`approve_via`] signing with `key` when the target's tip has `.airlock/reviewers`.
pub fn approve_signed(
    al: &mut Airlock,
    run_id: &str,
    reason: Option<&str>,
    expected_digest: Option<&str>,
    via: Option<Via>,
    key: Option<&std::path::Path>,
) -> Result<Approved> {
    refuse_from_lane(al, "approve")?;
    crate::seal::check_run(al, run_id, &format!("approve run {run_id}"))?;
    let mut run = al.store.get(run_id)?;
    // A run the panel approved alone may still be approved by a person
    // (when the panel withdrew at promote, a person decides).
    let panel_approved = run.state == State::Approved
        && run
            .approval
            .as_ref()
            .is_some_and(|a| a.by.as_deref() == Some(crate::panel::PANEL_DECIDER));
    if !panel_approved {
        run.require("approve", &[State::InReview])?;
    }
    let from = run.state;
    let submission = run
        .submission
        .clone()
        .ok_or_else(|| Error::Corrupt("the run has no submission".into()))?;
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
            crate::error::Code::StaleApproval,
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
            crate::error::Code::ProofUnverified,
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
    crate::guards::require_worktree_unchanged(al, &run, &submission)?;
    let mut data = json!({"digest": submission.digest, "reason": reason, "by": decider(al)});
    let mut standing = None;
    if let Some(rules) = crate::approvals::rules_at(al, &run.target)? {
        let signed = crate::approvals::sign_approval(al, &run, &submission, &rules, reason, key)?;
        data["principal"] = json!(signed.approval.principal);
        data["key"] = json!(signed.approval.key);
        data["envelope"] = json!(signed.envelope);
        if !signed.standing.met() {
            data["missing"] = json!(signed.standing.missing());
            al.store.event(
                Some(&run.id),
                crate::approvals::APPROVAL_EVENT,
                with_via(data, via),
            )?;
            return Ok(Approved {
                run,
                standing: Some(signed.standing),
            });
        }
        standing = Some(signed.standing);
    }
    run.state = State::Approved;
    run.approval = Some(Approval {
        digest: submission.digest.clone(),
        reason: reason.map(str::to_string),
        at: now(),
        by: None,
    });
    al.transition(&run, from, "approve", with_via(data, via))?;
    Ok(Approved { run, standing })
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
    reject_via(al, run_id, reason, None)
}

/// [`reject`], recording where the decision was made.
pub fn reject_via(
    al: &mut Airlock,
    run_id: &str,
    reason: Option<&str>,
    via: Option<Via>,
) -> Result<Run> {
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
    al.transition(
        &run,
        from,
        "reject",
        with_via(json!({"reason": reason, "by": decider(al)}), via),
    )?;
    write_feedback(al, &run, "reject", &reason)?;
    Ok(run)
}

/// Back to the agent: a new round in the same worktree.
pub fn redirect(al: &mut Airlock, run_id: &str, reason: Option<&str>) -> Result<Run> {
    redirect_via(al, run_id, reason, None)
}

/// [`redirect`], recording where the decision was made.
pub fn redirect_via(
    al: &mut Airlock,
    run_id: &str,
    reason: Option<&str>,
    via: Option<Via>,
) -> Result<Run> {
    refuse_from_lane(al, "redirect")?;
    let reason = require_reason(reason, "redirect", "what the agent should know")?;
    let mut run = al.store.get(run_id)?;
    run.require("redirect", &[State::InReview, State::Approved])?;
    let from = run.state;
    run.state = State::Staged;
    run.round += 1;
    run.check = None;
    run.approval = None;
    al.transition(
        &run,
        from,
        "redirect",
        with_via(
            json!({"reason": reason, "round": run.round, "by": decider(al)}),
            via,
        ),
    )?;
    write_feedback(al, &run, "redirect", &reason)?;
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
    let uid = rustix::process::getuid().as_raw();
    json!({"git": git, "user": user, "uid": uid})
}

/// A decision about a run as its ledger event recorded it: a review
/// (approve, reject, redirect), a promotion or a rollback.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Decision {
    /// The ledger event's sequence number.
    pub seq: u64,
    pub at: String,
    /// `approve`, `reject`, `redirect`, `promote` or `rollback`.
    pub kind: String,
    /// The round the decision was about (a redirect ends this round).
    pub round: u32,
    /// Who decided, when the event names them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    /// The principal the event names (`data.who`, issue 20).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub who: Option<String>,
    /// The reason as given, whole (hostile text: escape it to display).
    pub reason: Option<String>,
    /// The commit a promotion made or a rollback reverted with.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
}

const DECISION_KINDS: [&str; 5] = ["approve", "reject", "redirect", "promote", "rollback"];

/// What the ledger says happened to a run, round by round.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct History {
    pub decisions: Vec<Decision>,
    /// Each round's submitted commits, in order (a round may be submitted
    /// only once, but its record is the ledger's).
    pub submissions: Vec<(u32, String)>,
    /// Per round: the `check` results in order (true: passed).
    pub checks: Vec<(u32, Vec<bool>)>,
}

impl History {
    /// The commit submitted last in `round`.
    pub fn submitted_in(&self, round: u32) -> Option<&str> {
        self.submissions
            .iter()
            .rev()
            .find(|(r, _)| *r == round)
            .map(|(_, c)| c.as_str())
    }

    /// The last reject or redirect: the reviewer's words to the agent.
    pub fn feedback(&self) -> Option<&Decision> {
        self.decisions
            .iter()
            .rev()
            .find(|d| d.kind == "redirect" || d.kind == "reject")
    }
}

/// Reads a run's history from its ledger events.
pub fn history(al: &Airlock, run_id: &str) -> Result<History> {
    Ok(history_of(&al.store.events(Some(run_id))?))
}

/// The ledger event kinds a run's [`History`] is made of (the others are
/// skipped).
pub fn history_kinds() -> Vec<&'static str> {
    let mut kinds = vec!["check", "submit"];
    kinds.extend(DECISION_KINDS);
    kinds
}

/// A run's history from its ledger events, in order (those of other kinds
/// than [`history_kinds`] are skipped).
pub fn history_of(events: &[airlock_ledger::Event]) -> History {
    let mut out = History::default();
    let mut round = 1u32;
    for e in events {
        let text = |key: &str| e.data[key].as_str().map(str::to_string);
        match e.kind.as_str() {
            "check" => {
                let passed = e.data["passed"].as_bool().unwrap_or(false);
                match out.checks.last_mut() {
                    Some((r, list)) if *r == round => list.push(passed),
                    _ => out.checks.push((round, vec![passed])),
                }
            }
            "submit" => {
                if let Some(head) = text("head") {
                    out.submissions.push((round, head));
                }
            }
            kind if DECISION_KINDS.contains(&kind) => {
                out.decisions.push(Decision {
                    seq: e.seq,
                    at: e.ts.clone(),
                    kind: kind.to_string(),
                    round,
                    by: text("by"),
                    who: e.data["who"]["principal"].as_str().map(str::to_string),
                    reason: text("reason"),
                    commit: match kind {
                        "promote" => text("merge"),
                        "rollback" => text("revert"),
                        _ => None,
                    },
                });
                if kind == "redirect" {
                    round = e.data["round"]
                        .as_u64()
                        .and_then(|r| u32::try_from(r).ok())
                        .unwrap_or(round + 1);
                }
            }
            _ => {}
        }
    }
    out
}

/// Writes the reviewer's words where the run's commands find them
/// (`$AIRLOCK_FEEDBACK`).
fn write_feedback(al: &Airlock, run: &Run, kind: &str, reason: &str) -> Result<()> {
    let what = match kind {
        "redirect" => format!(
            "Round {} was redirected by the reviewer; round {} begins.",
            run.round - 1,
            run.round
        ),
        _ => format!("Round {} was rejected by the reviewer.", run.round),
    };
    let text = format!(
        "# Reviewer feedback for run {}\n\n{what}\n\n{}\n",
        run.id,
        reason.trim_end()
    );
    crate::layout::write_atomic(
        &feedback_dir(&al.layout, &run.id).join(FEEDBACK_FILE),
        text.as_bytes(),
    )
}

/// Something a reviewer should weigh before approving, found in what the
/// run recorded.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RiskFlag {
    /// Stable: `secret-allowed-inline`, `weaker-sandbox`, `brief-network`,
    /// `protected-path`, `checks-failed-first`, `condition-needs-review`,
    /// `condition-warn`.
    pub code: &'static str,
    pub message: String,
}

/// The risk flags of a run: from its last check (secrets hidden by the
/// agent's own inline marker, protected paths touched), its traces
/// (commands in the weaker sandbox), its brief (the network turned on) and
/// its history (checks that failed before one passed).
pub fn risk_flags(al: &Airlock, run: &Run, history: &History) -> Result<Vec<RiskFlag>> {
    risk_flags_under(al, run, history, al.workflow_for(run).ok().as_ref())
}

/// [`risk_flags`] under a workflow the caller read once (`None`: it does
/// not load): a queue of many runs reads it once, not once a run.
pub fn risk_flags_under(
    al: &Airlock,
    run: &Run,
    history: &History,
    workflow: Option<&airlock_model::workflow::Workflow>,
) -> Result<Vec<RiskFlag>> {
    let traces = al.store.traces(&run.id)?;
    let confinements = traces.iter().map(|t| (t.n, t.confinement.as_str()));
    let brief = workflow.and_then(|w| al.brief_of(run, w).ok());
    Ok(risk_flags_of(
        run,
        history,
        confinements,
        workflow.zip(brief.as_ref()),
    ))
}

/// The flags a run's last check raised: secrets allowed by the agent's own
/// inline marker, protected paths touched, conditions that held.
fn check_flags(run: &Run) -> Vec<RiskFlag> {
    let mut flags = Vec::new();
    if let Some(check) = &run.check {
        for stop in &check.report.stops {
            match stop.name.as_str() {
                "secrets" => {
                    for note in stop.notes.iter().filter(|n| {
                        n.ends_with(&format!(
                            "allowed by {}",
                            crate::stops::INLINE_MARKER_SUPPRESSION
                        ))
                    }) {
                        flags.push(RiskFlag {
                            code: "secret-allowed-inline",
                            message: format!(
                                "a possible secret allowed by the agent's own `{}` marker: {note}",
                                airlock_secrets::INLINE_MARKER
                            ),
                        });
                    }
                }
                "protected" => {
                    for item in stop.findings.iter().chain(&stop.notes) {
                        flags.push(RiskFlag {
                            code: "protected-path",
                            message: format!("protected path touched: {item}"),
                        });
                    }
                }
                _ => {}
            }
        }
        for c in check
            .report
            .conditions
            .iter()
            .filter(|c| c.held && !c.blocks())
        {
            flags.push(RiskFlag {
                code: match c.effect {
                    airlock_model::conditions::Effect::NeedsReview => "condition-needs-review",
                    _ => "condition-warn",
                },
                message: c.describe(),
            });
        }
    }
    flags
}

/// [`risk_flags`] from what the caller gathered: each trace's number and
/// confinement, and the workflow with the run's brief (`None`: either does
/// not load; the flag needs both).
pub fn risk_flags_of<'a>(
    run: &Run,
    history: &History,
    confinements: impl Iterator<Item = (u32, &'a str)>,
    workflow_and_brief: Option<(
        &airlock_model::workflow::Workflow,
        &airlock_model::brief::Brief,
    )>,
) -> Vec<RiskFlag> {
    let mut flags = check_flags(run);
    let weaker: Vec<String> = confinements
        .filter(|(_, confinement)| !confinement.is_empty() && *confinement != "confined")
        .map(|(n, _)| format!("#{n}"))
        .collect();
    if !weaker.is_empty() {
        flags.push(RiskFlag {
            code: "weaker-sandbox",
            message: format!(
                "{} command(s) ran in the weaker sandbox (no namespaces: the host's files and network visible): trace {}",
                weaker.len(),
                weaker.join(", ")
            ),
        });
    }
    // A brief or workflow that no longer loads is shown by `show` itself;
    // the flag needs both.
    if let Some((workflow, brief)) = workflow_and_brief
        && brief.network == Some(airlock_model::network::Network::On)
    {
        let decision = crate::confinement::network(workflow, brief, &run.lane);
        flags.push(RiskFlag {
            code: "brief-network",
            message: format!(
                "the brief asks for the whole network for its commands ({})",
                decision.reason
            ),
        });
    }
    if let Some((round, checks)) = history.checks.iter().rev().find(|(r, _)| *r == run.round)
        && let Some(pass) = checks.iter().rposition(|passed| *passed)
    {
        let failed = checks[..pass].iter().filter(|p| !**p).count();
        if failed > 0 {
            flags.push(RiskFlag {
                code: "checks-failed-first",
                message: format!("check failed {failed} time(s) in round {round} before it passed"),
            });
        }
    }
    flags
}
