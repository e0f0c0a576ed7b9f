//! `promote`: verify everything again, then merge the run into its target.
//!
//! Promotion runs nothing the agent configured: objects are read from the
//! main repository with airlock's hermetic git, the merge is computed with
//! plumbing (`commit-tree`, `merge-tree`), and the target ref moves with a
//! compare-and-swap. Promotions are serialised by a lock file.

pub mod remote;

use std::ffi::OsString;

use serde::Serialize;
use serde_json::json;

use airlock_sandbox::{CommandSpec, Echo};

use crate::Airlock;
use crate::error::{Error, Result};
use crate::git;
pub use crate::guards::require_worktree_unchanged;
use crate::lock::FileLock;
use crate::run::{Promotion, Run, State, Submission, now};

#[derive(Debug, Clone, Serialize)]
pub struct PromoteReport {
    pub run: String,
    pub target: String,
    pub previous: String,
    pub merge: String,
    /// How the merge was made, in a sentence.
    pub strategy: String,
    /// Gates re-run on the merged result (when the target had moved).
    pub regated: Vec<String>,
    pub checkout_updated: bool,
    /// The approved actions, applied after the merge.
    pub actions: crate::action::apply::ApplyReport,
    /// The soak in staging that holds the production actions, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub soak: Option<crate::soak::SoakStatus>,
    /// This was the second promotion of a soaked run: to production.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub to_production: bool,
}

/// Verifies everything, merges, then applies the approved actions. With
/// `actions_only`, a promoted run's remaining actions are applied. A run
/// with production actions under soak gates is promoted in two stages
/// (`soak`): `clock` says when it entered staging and whether its soak is
/// over.
pub fn promote(
    al: &mut Airlock,
    run_id: &str,
    effects: &dyn crate::action::apply::Effects,
    actions_only: bool,
    clock: &dyn crate::soak::Clock,
) -> Result<PromoteReport> {
    promote_with(al, run_id, effects, actions_only, clock, &mut |_| {})
}

/// [`promote`], telling `progress` as each gate re-run on a merged tree
/// starts and ends.
pub fn promote_with(
    al: &mut Airlock,
    run_id: &str,
    effects: &dyn crate::action::apply::Effects,
    actions_only: bool,
    clock: &dyn crate::soak::Clock,
    progress: &mut dyn FnMut(crate::check::GateEvent<'_>),
) -> Result<PromoteReport> {
    crate::guards::refuse_from_lane(al, "promote")?;
    let _lock = FileLock::acquire(&al.layout.promote_lock(), true)?;
    let run = al.store.get(run_id)?;
    al.store
        .require_head(Some(&format!("promote run {run_id}")))?;
    // Team mode: the database agrees with the sealed log (issue 20).
    crate::seal::check_before_promote(al, &run.id)?;
    if actions_only {
        return apply_remaining(al, &run, effects, clock);
    }
    if run.state == State::Promoted && run.promotion.as_ref().is_some_and(|p| p.soak.is_some()) {
        return promote_to_production(al, &run, effects, clock);
    }
    run.require("promote", &[State::Approved])?;
    let submission = run
        .submission
        .clone()
        .ok_or_else(|| Error::Corrupt("the run has no submission".into()))?;
    let approval = run
        .approval
        .clone()
        .ok_or_else(|| Error::Corrupt("the run has no approval".into()))?;
    // Team mode: promoted on the shared remote already (issue 20).
    if let Some(report) = remote::promoted_elsewhere(al, &run, &submission)? {
        return Ok(report);
    }

    verify_approved(al, &run, &submission, &approval)?;
    require_worktree_unchanged(al, &run, &submission)?;
    let workflow = al.current_workflow()?;
    if workflow.digest != run.workflow_digest {
        return Err(Error::refused(
            crate::error::Code::WorkflowChanged,
            format!(
                "refusing to promote run {}: the workflow changed after it was submitted",
                run.id
            ),
            vec![format!(
                "{} was {} at submit and is {} now",
                crate::layout::WORKFLOW_FILE,
                crate::guards::short(&run.workflow_digest),
                crate::guards::short(&workflow.digest)
            )],
            format!(
                "redirect the run so it is checked against the current workflow: `airlock redirect {} --reason …`",
                run.id
            ),
        ));
    }
    crate::lane_policy::require(
        &workflow,
        &run,
        crate::lane_policy::Capability::Promote,
        "promote",
    )?;
    let brief = al.brief_of(&run, &workflow)?;
    // Where the approved pushes go is checked before anything is merged.
    crate::action::plan::check_destinations(al, &run)?;
    require_action_env(al, &run, &workflow)?;
    // Team mode: the target is on the shared remote (issue 20).
    if let Some(remote) = crate::remote::remote_of(&workflow) {
        return remote::promote(
            al,
            &remote,
            run,
            &submission,
            &approval,
            &workflow,
            &brief,
            effects,
            clock,
            progress,
        );
    }

    let main = al.layout.git();
    let run_ref = run.main_ref();
    if main.ref_value(&run_ref)?.as_deref() != Some(submission.head.as_str()) {
        return Err(Error::refused(
            crate::error::Code::RunRefMoved,
            format!(
                "refusing to promote run {}: its ref {run_ref} was moved",
                run.id
            ),
            vec![format!("the proof is for {}", submission.head)],
            format!(
                "redirect the run so airlock commits it again: `airlock redirect {} --reason …`",
                run.id
            ),
        ));
    }
    let target_ref = format!("refs/heads/{}", run.target);
    let tip = main.ref_value(&target_ref)?.ok_or_else(|| {
        Error::refused(
            crate::error::Code::TargetMissing,
            format!(
                "refusing to promote run {}: the target branch `{}` does not exist",
                run.id, run.target
            ),
            vec![],
            "create the branch, or set `policy.target` in the workflow",
        )
    })?;

    // Team mode: the signed approvals again, under the rules at the tip merged onto.
    if let Some(rules) = crate::approvals::rules_at_tip(al, &run.target, &tip)? {
        crate::approvals::require_approved(al, &run, &submission, &rules)?;
    }
    let (tree, strategy, regated) = if tip == run.base {
        (
            submission.tree.clone(),
            format!("merged into {} (the target had not moved)", run.target),
            vec![],
        )
    } else {
        merge_onto_moved_target(al, &run, &brief, &submission, &tip, progress)?
    };
    let (conditions, panel) = conditions_on_merge(al, &run, &brief, &workflow, &tip, &tree)?;
    let merge = merge_commit(al, &run, &submission, &approval, &tip, &tree)?;

    let checked_out = crate::repo::checkout::checkout_can_move(
        &al.layout,
        &run.id,
        &target_ref,
        &tip,
        &merge,
        "promote",
    )?;

    // Recorded with the promotion itself (and in the intent, for a
    // recovery to record): no moment exists where the run is promoted and
    // its production actions are not held.
    let soak = crate::soak::plan(al, &run, &workflow, clock)?;
    let mut intent_data =
        json!({"target": target_ref, "previous": tip, "merge": merge, "checked_out": checked_out});
    if let Some(plan) = &soak {
        intent_data["soak"] = json!(plan);
    }
    // Team mode: the run's events sealed on the team's remote first.
    crate::seal::require_sealed(al, "promote", &run.id, &tip)?;
    let (intent, _guard) = al.store.begin_intent("promote", &run.id, intent_data)?;
    crate::failpoint("promote:before-ref");
    let (ok, _, err) = main.try_run(&["update-ref", &target_ref, &merge, &tip], None)?;
    if !ok {
        al.store.end_intent(intent)?;
        return Err(Error::refused(
            crate::error::Code::TargetMoved,
            format!(
                "refusing to promote run {}: {} moved while promoting",
                run.id, run.target
            ),
            vec![String::from_utf8_lossy(&err).trim().to_string()],
            format!("run `airlock promote {}` again", run.id),
        ));
    }
    crate::failpoint("promote:after-ref");
    if checked_out {
        crate::repo::checkout::update_checkout(&al.layout, &tip, &merge)?;
    }
    crate::failpoint("promote:after-checkout");
    record_promotion(
        al,
        run,
        &submission,
        intent,
        Landed {
            tip,
            merge,
            strategy,
            regated,
            conditions,
            panel,
            soak,
            checkout_updated: checked_out,
            extra: serde_json::Map::new(),
        },
        effects,
        clock,
    )
}

/// The workflow's conditions on what the merge brings to the target (the
/// merged `tree` against the target's `tip`), before anything moves, and
/// the review panel again on it: a run the panel approved alone needs its
/// approval to stand there. Both promotions, local and on the remote.
pub(crate) fn conditions_on_merge(
    al: &Airlock,
    run: &Run,
    brief: &crate::brief::Brief,
    workflow: &crate::workflow::Workflow,
    tip: &str,
    tree: &str,
) -> Result<(
    Vec<crate::conditions::ConditionResult>,
    Option<airlock_model::panel::Decision>,
)> {
    if workflow.conditions.is_empty() && !workflow.panel.enabled {
        return Ok((Vec::new(), None));
    }
    let evidence = crate::evidence::collect(
        al,
        run,
        brief,
        workflow,
        &crate::evidence::Subject {
            base: tip,
            tree,
            report: run.check.as_ref().map(|c| &c.report),
        },
    )?;
    let results = crate::conditions::evaluate(workflow, &evidence)?;
    crate::conditions::refuse_blocked(&results, "promotion", &run.id)?;
    let panel = crate::panel::decide(&workflow.panel, &evidence, crate::evaluator::installed())?;
    crate::panel::require_still_approved(run, panel.as_ref(), &results)?;
    Ok((results, panel))
}

/// The merge commit of `run` onto `tip` with `tree`, the user's like the
/// run's commit (`submit`), naming the proof and the approval.
pub(crate) fn merge_commit(
    al: &Airlock,
    run: &Run,
    submission: &Submission,
    approval: &crate::run::Approval,
    tip: &str,
    tree: &str,
) -> Result<String> {
    let message = format!(
        "Merge airlock run {} into {}\n\nProof: sha256 {}\nApproved: {}\n",
        run.id, run.target, submission.digest, approval.at
    );
    let author = git::user_identity(&al.layout.git_dir).unwrap_or_else(git::airlock_identity);
    al.layout
        .git()
        .commit_tree_by(tree, &[tip, &submission.head], &message, &author)
}

/// What a promotion landed on its target, for [`record_promotion`].
pub(crate) struct Landed {
    pub tip: String,
    pub merge: String,
    pub strategy: String,
    pub regated: Vec<String>,
    pub conditions: Vec<crate::conditions::ConditionResult>,
    pub panel: Option<airlock_model::panel::Decision>,
    pub soak: Option<airlock_model::soak::SoakPlan>,
    pub checkout_updated: bool,
    /// The event's fields besides the common ones (the remote's record),
    /// placed after `digest`.
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// Once the target holds the merge: the run recorded as promoted with its
/// event (ending intent `intent`), then its approved actions applied.
pub(crate) fn record_promotion(
    al: &mut Airlock,
    mut run: Run,
    submission: &Submission,
    intent: i64,
    landed: Landed,
    effects: &dyn crate::action::apply::Effects,
    clock: &dyn crate::soak::Clock,
) -> Result<PromoteReport> {
    let Landed {
        tip,
        merge,
        strategy,
        regated,
        conditions,
        panel,
        soak,
        checkout_updated,
        extra,
    } = landed;
    let promotion = Promotion {
        target: run.target.clone(),
        previous: tip.clone(),
        merge: merge.clone(),
        strategy: strategy.clone(),
        regated: regated.clone(),
        at: now(),
        soak: soak.clone(),
    };
    let mut promote_event = json!({"target": run.target, "previous": tip, "merge": merge, "strategy": strategy,
           "regated": regated, "digest": submission.digest});
    for (key, value) in extra {
        promote_event[key] = value;
    }
    promote_event["undo"] = undo_record(al, &run.id, &merge)?;
    if !conditions.is_empty() {
        promote_event["conditions"] = crate::conditions::summary(&conditions);
    }
    if panel.is_some() {
        promote_event["panel"] = json!(panel);
    }
    if let Some(plan) = &soak {
        promote_event["soak"] = json!(plan);
    }
    run.state = State::Promoted;
    run.promotion = Some(promotion);
    al.transition_clearing(
        &run,
        State::Approved,
        "promote",
        promote_event,
        Some(intent),
    )?;
    let actions = crate::action::apply::apply(
        al,
        &run,
        crate::action::Role::Apply,
        &merge,
        submission.round,
        effects,
    )?;
    let soak = crate::soak::status(al, &run, clock)?;
    Ok(PromoteReport {
        run: run.id,
        target: run.target,
        previous: tip,
        merge,
        strategy,
        regated,
        checkout_updated,
        actions,
        soak,
        to_production: false,
    })
}

/// The second `promote` of a run soaking in staging: refused until its
/// soak is over and every probe passed (`soak::finish`); then the held
/// production actions are applied.
fn promote_to_production(
    al: &mut Airlock,
    run: &Run,
    effects: &dyn crate::action::apply::Effects,
    clock: &dyn crate::soak::Clock,
) -> Result<PromoteReport> {
    crate::soak::finish(al, run, clock)?;
    let mut report = apply_remaining(al, run, effects, clock)?;
    report.strategy =
        "soaked in staging; every probe passed; applied the production actions".into();
    report.to_production = true;
    Ok(report)
}

/// The proof verifies (its action plan included) and is the one approved.
fn verify_approved(
    al: &Airlock,
    run: &Run,
    submission: &Submission,
    approval: &crate::run::Approval,
) -> Result<()> {
    let report = if crate::remote::fetched_proof(al, run)?.is_some() {
        // Team mode: a run started on another machine (issue 20).
        crate::proof::verify_run(al, run, None)?
    } else {
        crate::proof::verify_file(al, &submission.proof, None)?
    };
    if !report.ok() {
        return Err(Error::refused(
            crate::error::Code::ProofUnverified,
            format!(
                "refusing to promote run {}: its proof does not verify",
                run.id
            ),
            report
                .checks
                .iter()
                .filter(|c| !c.ok)
                .map(|c| format!("{}: {}", c.name, c.detail))
                .collect(),
            format!(
                "redirect the run (`airlock redirect {} --reason …`) to produce a fresh proof",
                run.id
            ),
        ));
    }
    if approval.digest != report.digest || approval.digest != submission.digest {
        return Err(Error::refused(
            crate::error::Code::StaleApproval,
            format!(
                "refusing to promote run {}: the approval is for another proof",
                run.id
            ),
            vec![format!(
                "approved proof {}, current proof {}",
                crate::guards::short(&approval.digest),
                crate::guards::short(&report.digest)
            )],
            format!(
                "review the current proof with `airlock show {}` and approve it again",
                run.id
            ),
        ));
    }
    Ok(())
}

/// `promote --actions-only`: the run is merged; apply what remains of its
/// approved plan.
fn apply_remaining(
    al: &mut Airlock,
    run: &Run,
    effects: &dyn crate::action::apply::Effects,
    clock: &dyn crate::soak::Clock,
) -> Result<PromoteReport> {
    run.require("promote --actions-only", &[State::Promoted])?;
    let (Some(submission), Some(approval), Some(promotion)) = (
        run.submission.clone(),
        run.approval.clone(),
        run.promotion.clone(),
    ) else {
        return Err(Error::Corrupt(format!(
            "the record of run {} lacks its submission, approval or promotion",
            run.id
        )));
    };
    verify_approved(al, run, &submission, &approval)?;
    // Applying the rest is promotion too: a lane that no longer grants it
    // (the workflow withdrew `promote` after a failed action) applies nothing.
    let workflow = al.current_workflow()?;
    crate::lane_policy::require(
        &workflow,
        run,
        crate::lane_policy::Capability::Promote,
        "promote --actions-only",
    )?;
    let actions = crate::action::apply::apply(
        al,
        run,
        crate::action::Role::Apply,
        &promotion.merge,
        submission.round,
        effects,
    )?;
    let soak = crate::soak::status(al, run, clock)?;
    Ok(PromoteReport {
        run: run.id.clone(),
        target: promotion.target,
        previous: promotion.previous,
        merge: promotion.merge,
        strategy: "merged earlier; applied the remaining actions".into(),
        regated: vec![],
        checkout_updated: false,
        actions,
        soak,
        to_production: false,
    })
}

/// How to undo a promotion: the revert of its merge and the compensations
/// declared with its actions, in the order rollback runs them.
pub(crate) fn undo_record(al: &Airlock, run: &str, merge: &str) -> Result<serde_json::Value> {
    let mut compensations: Vec<String> = crate::action::plan::list(al, run)?
        .into_iter()
        .filter(|a| a.role == crate::action::Role::Undo)
        .map(|a| a.spec.name)
        .collect();
    compensations.reverse();
    Ok(
        json!({"command": format!("airlock rollback {run} --reason …"),
              "revert": format!("git revert -m 1 {merge}"),
              "compensations": compensations}),
    )
}

/// The target moved since the run's base. If it touched none of the run's
/// paths, merge the two and re-run the brief's gates on the result.
pub(crate) fn merge_onto_moved_target(
    al: &mut Airlock,
    run: &Run,
    brief: &crate::brief::Brief,
    submission: &Submission,
    tip: &str,
    progress: &mut dyn FnMut(crate::check::GateEvent<'_>),
) -> Result<(String, String, Vec<String>)> {
    let main = al.layout.git();
    let (is_ancestor, _, _) =
        main.try_run(&["merge-base", "--is-ancestor", &run.base, tip], None)?;
    if !is_ancestor {
        return Err(Error::refused(
            crate::error::Code::TargetRewritten,
            format!(
                "refusing to promote run {}: {} was rewritten since the run started",
                run.id, run.target
            ),
            vec![format!(
                "the run's base {} is no longer in {}'s history",
                &run.base[..12],
                run.target
            )],
            "start a new run from the current target",
        ));
    }
    let theirs: Vec<String> = git::diff_tree(&main, &run.base, tip)?
        .into_iter()
        .map(|c| c.path)
        .collect();
    let ours: Vec<String> = git::diff_tree(&main, &run.base, &submission.head)?
        .into_iter()
        .map(|c| c.path)
        .collect();
    let overlap: Vec<String> = ours
        .iter()
        .filter(|p| theirs.contains(p))
        .cloned()
        .collect();
    if !overlap.is_empty() {
        return Err(Error::refused(
            crate::error::Code::TargetConflict,
            format!(
                "refusing to promote run {}: {} moved and touches the run's paths",
                run.id, run.target
            ),
            overlap
                .iter()
                .map(|p| format!("{p} changed on both sides"))
                .collect(),
            format!(
                "redirect the run (`airlock redirect {} --reason \"rebase onto {}\"`) so the agent resolves it and the gates run again",
                run.id, run.target
            ),
        ));
    }
    let tree = merge_trees(al, run, tip, &submission.head)?;
    let commits = main.text(&["rev-list", "--count", &format!("{}..{tip}", run.base)])?;
    let workflow = al.current_workflow()?;
    recheck_stops(al, run, brief, &workflow, tip, &tree, &commits)?;

    // Re-run the gates on the merged tree, in a scratch checkout of it.
    let scratch = al.layout.run_dir(&run.id).join("promote-check");
    let index = al.layout.run_dir(&run.id).join("promote-check.index");
    main.scratch_checkout_without(&scratch, &index, &tree, &brief.forbid_read)?;
    let mut regated = Vec::new();
    let logs = al.layout.logs_dir(&run.id);
    std::fs::create_dir_all(&logs).map_err(|source| Error::Write {
        path: logs.clone(),
        source,
    })?;
    let tmp = al.layout.run_dir(&run.id).join("tmp");
    std::fs::create_dir_all(&tmp).map_err(|source| Error::Write {
        path: tmp.clone(),
        source,
    })?;
    let gates = crate::check::gates_for(&workflow, brief);
    let total = gates.len();
    for (index, gate) in gates.into_iter().enumerate() {
        progress(crate::check::GateEvent::Started {
            name: &gate.name,
            index: index + 1,
            total,
        });
        let plan = crate::confinement::plan(&al.site(), run, &workflow, brief, &scratch)?;
        let mut spec = CommandSpec {
            argv: vec!["/bin/sh".into(), "-c".into(), OsString::from(&gate.run)],
            cwd: scratch.clone(),
            env: plan.env,
            timeout: Some(gate.timeout),
            stdout_path: logs.join(format!("promote-{}.stdout", gate.name)),
            stderr_path: logs.join(format!("promote-{}.stderr", gate.name)),
            echo: Echo::None,
            input: airlock_sandbox::Input::Null,
            confinement: Some(plan.confinement),
            limits: plan.limits,
        };
        let crate::confinement::Ran {
            outcome,
            connections,
        } = crate::confinement::run(&workflow, &mut spec, plan.egress.as_ref())?;
        progress(crate::check::GateEvent::Finished {
            name: &gate.name,
            passed: outcome.exit.success(),
            duration_ms: outcome.duration_ms,
        });
        // The logs go to the team's shared store before the event names them.
        let unshared = crate::logstore::share(
            &al.layout,
            &workflow,
            &[
                (&spec.stdout_path, &outcome.stdout.sha256),
                (&spec.stderr_path, &outcome.stderr.sha256),
            ],
        );
        al.store.event(
            Some(&run.id),
            "promote-gate",
            json!({"gate": gate.name, "tree": tree, "exit": outcome.exit.describe(),
                   "stdout_sha256": outcome.stdout.sha256, "stderr_sha256": outcome.stderr.sha256,
                   "connections": connections, "logs_unshared": unshared}),
        )?;
        if !outcome.exit.success() {
            let _ = std::fs::remove_dir_all(&scratch);
            return Err(Error::refused(
                crate::error::Code::GateFailedMerged,
                format!(
                    "refusing to promote run {}: gate `{}` fails on the run merged with {}'s {commits} new commit(s)",
                    run.id, gate.name, run.target
                ),
                vec![
                    format!("{} ({})", gate.run, outcome.exit.describe()),
                    format!("log: {}", spec.stderr_path.display()),
                ],
                format!(
                    "redirect the run so the agent works on top of the current {}",
                    run.target
                ),
            ));
        }
        regated.push(gate.name.clone());
    }
    let _ = std::fs::remove_dir_all(&scratch);
    let _ = std::fs::remove_file(&index);
    Ok((
        tree,
        format!(
            "merged with {}'s {commits} new commit(s), which touch none of the run's paths; re-checked the stop conditions and re-ran gates on the result: {}",
            run.target,
            if regated.is_empty() {
                "none required".to_string()
            } else {
                regated.join(", ")
            }
        ),
        regated,
    ))
}

/// `merge-tree --write-tree` of the target's tip and the run's head, with
/// rename detection off whatever the repository's configuration says: a
/// rename on the target must not carry the run's files into a directory
/// the run never wrote (`merge.directoryRenames`), where its brief's
/// `touch` and the reviewer's diff do not reach. A conflict is a refusal
/// naming what conflicted; nothing has been written but objects.
fn merge_trees(al: &Airlock, run: &Run, tip: &str, head: &str) -> Result<String> {
    let main = al.layout.git();
    let out = main
        .command([
            "-c",
            "merge.renames=false",
            "-c",
            "merge.directoryRenames=false",
            "-c",
            "diff.renames=false",
            "merge-tree",
            "--write-tree",
            "--name-only",
            "-z",
            tip,
            head,
        ])
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(Error::GitMissing)?;
    // With -z: the tree, NUL, the conflicted paths each followed by NUL, an
    // empty field, then the messages: a count of paths, the paths, a type
    // and the message, each field followed by NUL.
    let text = String::from_utf8_lossy(&out.stdout);
    let mut fields = text.split('\0');
    let tree = fields.next().unwrap_or_default().trim().to_string();
    match out.status.code() {
        Some(0) if !tree.is_empty() => return Ok(tree),
        Some(1) if !tree.is_empty() => {}
        _ => {
            return Err(Error::Git {
                args: format!("merge-tree --write-tree {tip} {head}"),
                message: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            });
        }
    }
    let conflicted: Vec<String> = fields
        .by_ref()
        .take_while(|f| !f.is_empty())
        .map(str::to_string)
        .collect();
    let mut messages = Vec::new();
    while let Some(count) = fields.next().and_then(|f| f.parse::<usize>().ok()) {
        let paths: Vec<&str> = fields.by_ref().take(count).collect();
        let (Some(_kind), Some(message)) = (fields.next(), fields.next()) else {
            break;
        };
        let message = message.trim();
        if message.starts_with("CONFLICT")
            || paths.iter().any(|p| conflicted.iter().any(|c| c == p))
        {
            messages.push(message.to_string());
        }
    }
    let mut reasons: Vec<String> = conflicted
        .iter()
        .map(|p| format!("{p} conflicts"))
        .collect();
    reasons.extend(messages);
    if reasons.is_empty() {
        reasons.push("git merge-tree reported a conflict without naming a path".into());
    }
    Err(Error::refused(
        crate::error::Code::MergeConflict,
        format!(
            "refusing to promote run {}: it does not merge cleanly onto {}, which moved since the run started",
            run.id, run.target
        ),
        reasons,
        format!(
            "redirect the run (`airlock redirect {} --reason \"rebase onto {}\"`) so the agent resolves it on top of the current {} and the gates run again; nothing was changed",
            run.id, run.target, run.target
        ),
    ))
}

/// The stop conditions (scope, protected paths, secrets, blast radius,
/// file kinds) on what the merge brings to the target: the merged tree
/// against the target's tip. The run's own diff passed them at check; the
/// merged tree is new, and only it is what the target gets (a link of the
/// run that leads out of the repository through a link of the target).
fn recheck_stops(
    al: &Airlock,
    run: &Run,
    brief: &crate::brief::Brief,
    workflow: &crate::workflow::Workflow,
    tip: &str,
    tree: &str,
    commits: &str,
) -> Result<()> {
    // The stop conditions measure a run's changes from its base; here the
    // changes that count are those from the target's tip.
    let mut onto_tip = run.clone();
    onto_tip.base = tip.to_string();
    let failed: Vec<crate::stops::StopResult> =
        crate::stops::evaluate(al, &onto_tip, brief, workflow, tree)?
            .into_iter()
            .filter(|s| !s.passed)
            .collect();
    if failed.is_empty() {
        return Ok(());
    }
    Err(Error::refused(
        crate::error::Code::StopFailedMerged,
        format!(
            "refusing to promote run {}: merged with {}'s {commits} new commit(s), it fails stop condition(s) {}",
            run.id,
            run.target,
            failed
                .iter()
                .map(|s| format!("`{}`", s.name))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        failed
            .iter()
            .flat_map(|s| s.findings.iter().map(move |f| format!("{}: {f}", s.name)))
            .collect(),
        format!(
            "redirect the run (`airlock redirect {} --reason \"rebase onto {}\"`) so it is checked on top of the current {}; nothing was changed",
            run.id, run.target, run.target
        ),
    ))
}

/// Every variable the approved actions will read from airlock's
/// environment when they run (`${NAME}` in HTTP headers, the SMTP
/// credentials of an email, a command's `env`), checked before the merge:
/// a missing one refuses the promotion with all of them listed, before
/// anything is merged or sent, instead of failing an action after the
/// target moved.
fn require_action_env(al: &Airlock, run: &Run, workflow: &crate::workflow::Workflow) -> Result<()> {
    use crate::action::{Body, Role, parse::env_refs};
    let mut missing = Vec::new();
    for action in crate::action::plan::list(al, &run.id)? {
        if action.role != Role::Apply {
            continue;
        }
        let names: Vec<String> = match &action.spec.body {
            Body::Http(h) => h.headers.iter().flat_map(|(_, v)| env_refs(v)).collect(),
            Body::Email(_) => workflow
                .actions
                .smtp
                .iter()
                .flat_map(|s| [s.username_env.clone(), s.password_env.clone()])
                .flatten()
                .collect(),
            Body::Command(c) => c.env.clone(),
            Body::GitPush(_) | Body::Mcp(_) => Vec::new(),
        };
        for name in names {
            if std::env::var_os(&name).is_none() {
                missing.push(format!(
                    "`{name}` is not set; action `{}` ({}) reads it",
                    action.spec.name,
                    action.spec.body.kind()
                ));
            }
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    missing.dedup();
    Err(Error::refused(
        crate::error::Code::MissingActionEnv,
        format!(
            "refusing to promote run {}: {} environment variable{} the approved actions need {} not set; nothing was merged",
            run.id,
            missing.len(),
            if missing.len() == 1 { "" } else { "s" },
            if missing.len() == 1 { "is" } else { "are" }
        ),
        missing,
        format!(
            "set them in the environment airlock runs in, then `airlock promote {}` again",
            run.id
        ),
    ))
}
