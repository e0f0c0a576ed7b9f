//! `submit`: commit the checked worktree on the run branch, sign the proof,
//! and put the run in the review queue.

use serde_json::json;

use crate::Airlock;
use crate::error::{Error, Result};
use crate::git;
use crate::proof::{self, Evidence};
use crate::run::{State, Submission, now};

pub fn submit(
    al: &mut Airlock,
    run_id: &str,
    effects: &dyn crate::action::apply::Effects,
) -> Result<Submission> {
    let mut run = al.store.get(run_id)?;
    run.require("submit", &[State::Checked])?;
    let check = run
        .check
        .clone()
        .filter(|c| c.round == run.round && c.report.passed)
        .ok_or_else(|| {
            Error::refused(
                crate::error::Code::CheckNotPassed,
                format!("run {} has no passing check in round {}", run.id, run.round),
                vec![],
                format!("run `airlock check {}`", run.id),
            )
        })?;
    let workflow = al.workflow_for(&run)?;
    crate::lane_policy::require(
        &workflow,
        &run,
        crate::lane_policy::Capability::Submit,
        "submit",
    )?;
    // Team mode: a proof no listed machine could vouch for is refused now,
    // not at promote (`.airlock/runners` at the remote's target tip).
    if let Some(remote) = crate::remote::remote_of(&workflow) {
        crate::seal::require_runners(
            al,
            &remote,
            &run.target,
            None,
            &format!("submit run {}", run.id),
        )?;
    }
    let tree = crate::quota::snapshot(&al.layout, &run.id, &workflow.sandbox)?;
    if tree != check.tree {
        let changed = git::diff_tree(&al.layout.git(), &check.tree, &tree)?;
        return Err(Error::refused(
            crate::error::Code::WorktreeChanged,
            format!(
                "the worktree of run {} changed after it was checked",
                run.id
            ),
            changed
                .iter()
                .take(20)
                .map(|c| format!("{} {}", c.status, c.path))
                .collect(),
            format!("run `airlock check {}` again, then submit", run.id),
        ));
    }
    let brief = al.brief_of(&run, &workflow)?;

    crate::action::plan::recheck(al, &run, &workflow, effects)?;

    // The workflow's conditions again, on the evidence as submitted (the
    // actions may have changed since the check); the proof records these.
    let mut report = check.report.clone();
    let mut panel = None;
    // The paths the submitted change touches, as the panel saw them.
    let mut changed = Vec::new();
    if !workflow.conditions.is_empty() || workflow.panel.enabled {
        let evidence = crate::evidence::collect(
            al,
            &run,
            &brief,
            &workflow,
            &crate::evidence::Subject {
                base: &run.base,
                tree: &tree,
                report: Some(&check.report),
            },
        )?;
        report.conditions = crate::conditions::evaluate(&workflow, &evidence)?;
        crate::conditions::refuse_blocked(&report.conditions, "submit", &run.id)?;
        // The review panel on the same evidence; signed into the proof.
        panel = crate::panel::decide(&workflow.panel, &evidence, crate::evaluator::installed())?;
        changed = evidence.diff.paths;
    }

    let main = al.layout.git();
    let parent = run
        .submission
        .as_ref()
        .map(|s| s.head.clone())
        .unwrap_or_else(|| run.base.clone());
    let message = format!(
        "{}\n\nairlock run {} round {}\n",
        sanitize_subject(&run.label),
        run.id,
        run.round
    );
    // Authored by the user (git's own identity for the main repository),
    // committed by airlock.
    let author = git::user_identity(&al.layout.git_dir).unwrap_or_else(git::airlock_identity);
    let head = main.commit_tree_by(&tree, &[&parent], &message, &author)?;
    main.run(&["update-ref", &run.main_ref(), &head])?;
    crate::failpoint("submit:after-commit");

    // Previews and rehearsals against what is submitted: the proof shows
    // what the actions will do with this commit.
    let actions = crate::action::plan::refresh(al, &run, &workflow, &brief, &tree, &head)?;
    let diff_digest = proof::diff_digest(al, &run.base, &head)?;
    let numstat = git::numstat(&main, &run.base, &head)?;
    let traces: Vec<_> = al
        .store
        .traces(&run.id)?
        .into_iter()
        .filter(|t| t.round == run.round)
        .collect();
    let diff_stat = json!({
        "files": numstat.len(),
        "added": numstat.iter().filter_map(|c| c.lines.map(|(a, _)| a)).sum::<u64>(),
        "deleted": numstat.iter().filter_map(|c| c.lines.map(|(_, d)| d)).sum::<u64>(),
    });
    let written = proof::build(
        al,
        &Evidence {
            run: &run,
            brief: &brief,
            workflow_digest: &workflow.digest,
            head: &head,
            tree: &tree,
            diff_digest: &diff_digest,
            diff_stat,
            traces: &traces,
            check: &report,
            actions: &actions,
            lane_capabilities: &workflow.capabilities(&run.lane),
            panel: panel.as_ref(),
        },
    )?;
    crate::failpoint("submit:after-proof");
    // Team mode: the round goes to the shared remote before it is recorded.
    if let Some(remote) = crate::remote::remote_of(&workflow) {
        crate::remote::push_round(
            al,
            &remote,
            &run,
            &head,
            (&written.path, &written.signature, &written.digest),
        )?;
    }

    let submission = Submission {
        round: run.round,
        tree,
        head,
        diff_digest,
        proof: written.path.clone(),
        digest: written.digest.clone(),
        at: now(),
        author: Some(author.to_string()),
        panel,
    };
    run.state = State::InReview;
    run.workflow_digest = workflow.digest.clone();
    run.submission = Some(submission.clone());
    run.approval = None;
    let mut event = json!({"round": run.round, "head": submission.head, "tree": submission.tree,
           "proof": submission.proof, "digest": submission.digest, "diff_sha256": submission.diff_digest,
           "author": submission.author});
    if !report.conditions.is_empty() {
        event["conditions"] = crate::conditions::summary(&report.conditions);
    }
    al.transition(&run, State::Checked, "submit", event)?;
    // The panel's decision in the ledger, and its approval where the lane
    // lets it decide alone.
    crate::panel::after_submit(al, &mut run, &workflow, &report.conditions, &changed)?;
    Ok(submission)
}

/// One line, printable, bounded: the brief's label is hostile input.
fn sanitize_subject(label: &str) -> String {
    let clean: String = label
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(72)
        .collect();
    let clean = clean.trim();
    if clean.is_empty() {
        "airlock run".into()
    } else {
        clean.to_string()
    }
}
