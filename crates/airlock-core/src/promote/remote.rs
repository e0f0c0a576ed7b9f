//! `promote` in team mode (issue 20): through the shared remote
//! (`crate::remote`). `promote` takes the store's promotion lease on the
//! target, fetches the target's tip, merges with the plumbing the local
//! promotion uses, and pushes the merge together with
//! `refs/airlock/promoted/<run>` in one `--atomic` push, with
//! `--force-with-lease` on both refs: the target at the tip merged onto,
//! the record absent. A target that moved meanwhile is fetched, merged
//! again, and the gates and stop conditions re-run, up to `[team] remerges`
//! times; nothing is ever rebased. A kill is settled from what the remote
//! says ([`recover`]).

use serde_json::json;

use crate::Airlock;
use crate::error::{Code, Error, Result};
use crate::remote::{
    Interrupted, Pushed, fetch, fetched_round_ref, files_commit, ls_remote, promoted_ref, push,
    rejected, remote_of, round_ref, started_elsewhere,
};
use crate::run::{Promotion, Run, State, Submission, now};

/// The signed approvals again, under the rules at the tip being merged onto
/// (as the local promotion does): a target that gained `.airlock/reviewers`
/// or a stricter `.airlock/owners` since the approval refuses the run.
fn check_approvals_at_tip(
    al: &Airlock,
    run: &Run,
    submission: &Submission,
    tip: &str,
) -> Result<()> {
    if let Some(rules) = crate::approvals::rules_at_tip(al, &run.target, tip)? {
        crate::approvals::require_approved(al, run, submission, &rules)?;
    }
    Ok(())
}

/// `promote` in team mode, from where the local one would merge: the
/// run's proof and approval are verified, the workflow, lane and actions'
/// environment checked.
#[allow(clippy::too_many_arguments)]
pub(crate) fn promote(
    al: &mut Airlock,
    remote: &str,
    run: Run,
    submission: &Submission,
    approval: &crate::run::Approval,
    workflow: &crate::workflow::Workflow,
    brief: &crate::brief::Brief,
    effects: &dyn crate::action::apply::Effects,
    clock: &dyn crate::soak::Clock,
    progress: &mut dyn FnMut(crate::check::GateEvent<'_>),
) -> Result<crate::promote::PromoteReport> {
    let who = crate::identity::who(al)?;
    let target_ref = format!("refs/heads/{}", run.target);
    let lease = airlock_store::Lease {
        target: format!("{remote} {target_ref}"),
        run: run.id.clone(),
        machine: who.machine.clone(),
        principal: who.principal.clone(),
        token: {
            use rand_core::RngCore;
            format!("{:016x}", rand_core::OsRng.next_u64())
        },
        expires_ms: 0,
    };
    take_lease(al, &run, &lease)?;
    let result = promote_leased(
        al, remote, run, submission, approval, workflow, brief, effects, clock, progress, &lease,
    );
    // Released whatever came of it; a kill leaves it to lapse.
    let _ = al.store.release_lease(&lease.target, &lease.token);
    result
}

fn take_lease(al: &mut Airlock, run: &Run, lease: &airlock_store::Lease) -> Result<()> {
    take_lease_for(al, run, lease, "promote")
}

/// The promotion lease on the run's target for `verb` (`promote`, `roll
/// back`): one holder per target, so a rollback and a promotion take turns.
pub(crate) fn take_lease_for(
    al: &mut Airlock,
    run: &Run,
    lease: &airlock_store::Lease,
    verb: &str,
) -> Result<()> {
    let now = airlock_store::lease::now_ms();
    let mut lease = lease.clone();
    lease.expires_ms = now + LEASE_MS;
    let Some(other) = al.store.take_lease(&lease, now)? else {
        return Ok(());
    };
    let left = (other.expires_ms - now).max(0) / 1000;
    // The lease does not say what its holder does: a promotion's words stay
    // as they were; a rollback names the lease.
    let holder = if verb == "promote" {
        format!("{} is promoting run {}", other.principal, other.run)
    } else {
        format!(
            "{} holds the promotion lease for run {}",
            other.principal, other.run
        )
    };
    let again = if verb == "promote" {
        "promote"
    } else {
        "rollback"
    };
    let mut reasons = vec![format!(
        "its promotion lease on {} lapses in {}m{:02}s unless renewed",
        other.target,
        left / 60,
        left % 60
    )];
    let mut hint = format!(
        "wait for that promotion or rollback to finish, then `airlock {again} {}` again",
        run.id
    );
    // airlock takes a lease for LEASE_MS at most (a minute's leeway for
    // clocks): a longer one was written outside airlock, and waiting for it
    // is no answer.
    if other.expires_ms - now > LEASE_MS + 60_000 {
        reasons.push(format!(
            "no airlock takes a lease for longer than {} minutes: this one was written into the database by hand",
            LEASE_MS / 60_000
        ));
        hint = format!(
            "find who wrote it (the database's administrators); once it is removed (`DELETE FROM airlock_meta WHERE scope = 'lease' AND key = '{}'` in PostgreSQL), `airlock {again} {}` again",
            other.target, run.id
        );
    }
    Err(Error::refused(
        Code::LeaseHeld,
        format!(
            "refusing to {verb} run {}: {holder} onto {} from machine {}",
            run.id, run.target, other.machine
        ),
        reasons,
        hint,
    ))
}

#[allow(clippy::too_many_arguments)]
fn promote_leased(
    al: &mut Airlock,
    remote: &str,
    run: Run,
    submission: &Submission,
    approval: &crate::run::Approval,
    workflow: &crate::workflow::Workflow,
    brief: &crate::brief::Brief,
    effects: &dyn crate::action::apply::Effects,
    clock: &dyn crate::soak::Clock,
    progress: &mut dyn FnMut(crate::check::GateEvent<'_>),
    lease: &airlock_store::Lease,
) -> Result<crate::promote::PromoteReport> {
    let target_ref = format!("refs/heads/{}", run.target);
    let record_ref = promoted_ref(&run.id);
    let doing = format!("promote run {}", run.id);
    let tracking = format!("refs/airlock/remote/heads/{}", run.target);
    let main = al.layout.git();
    let tries = workflow.team.remerges + 1;
    let mut moved: Vec<String> = Vec::new();
    for attempt in 0..tries {
        take_lease(al, &run, lease)?;
        // What the remote says now: the target's tip, and whether the run
        // was promoted already (by another machine, or before a kill).
        let seen = ls_remote(al, remote, &[&target_ref, &record_ref], &doing)?;
        if seen.iter().any(|(n, _)| *n == record_ref) {
            // Promoted meanwhile by another machine: recorded here, once
            // (a store that has it already refuses the second record).
            if let Some(report) = promoted_elsewhere(al, &run, submission)? {
                return Ok(report);
            }
        }
        if !seen.iter().any(|(n, _)| *n == target_ref) {
            return Err(Error::refused(
                Code::TargetMissing,
                format!(
                    "refusing to promote run {}: the shared remote `{remote}` has no branch `{}`",
                    run.id, run.target
                ),
                vec![],
                "push the branch to the remote, or set `policy.target` in the workflow",
            ));
        }
        fetch(
            al,
            remote,
            &[
                format!("+{target_ref}:{tracking}"),
                format!(
                    "+{}:{}",
                    round_ref(&run.id, submission.round),
                    fetched_round_ref(&run.id, submission.round)
                ),
            ],
            &doing,
        )?;
        require_round_on_remote(al, &run, submission)?;
        let tip = main
            .ref_value(&tracking)?
            .ok_or_else(|| Error::Corrupt(format!("{tracking} vanished after the fetch")))?;
        // Team mode needs `.airlock/runners` at the tip merged onto (no
        // promotion unsealed), checked before any merge or gate.
        crate::seal::require_runners(al, remote, &run.target, Some(&tip), &doing)?;
        check_approvals_at_tip(al, &run, submission, &tip)?;
        let (tree, mut strategy, regated) = if tip == run.base {
            (
                submission.tree.clone(),
                format!(
                    "merged into {} on `{remote}` (the target had not moved)",
                    run.target
                ),
                vec![],
            )
        } else {
            crate::promote::merge_onto_moved_target(al, &run, brief, submission, &tip, progress)?
        };
        if !moved.is_empty() {
            strategy = format!(
                "{strategy}; the target moved during the promotion {} time(s) and the run was merged again each time",
                moved.len()
            );
        }
        let (conditions, panel) =
            crate::promote::conditions_on_merge(al, &run, brief, workflow, &tip, &tree)?;
        let merge = crate::promote::merge_commit(al, &run, submission, approval, &tip, &tree)?;
        let record_body = json!({"run": run.id, "target": target_ref, "previous": tip, "merge": merge,
            "proof": {"sha256": submission.digest}, "head": submission.head, "approval": approval,
            "by": {"principal": lease.principal, "machine": lease.machine}});
        let record = files_commit(
            al,
            &[(
                "promotion.json",
                serde_json::to_vec_pretty(&record_body).unwrap_or_default(),
            )],
            &[&merge],
            &format!("airlock promoted run {} into {}\n", run.id, run.target),
        )?;
        let soak = crate::soak::plan(al, &run, workflow, clock)?;
        let mut intent_data = json!({"remote": remote, "target": target_ref, "previous": tip,
            "merge": merge, "record": record, "strategy": strategy, "regated": regated,
            "lease": {"target": lease.target, "token": lease.token}});
        if let Some(plan) = &soak {
            intent_data["soak"] = json!(plan);
        }
        // The run's events sealed on the team's remote before the push,
        // under the runners at the tip merged onto: never unsealed.
        crate::seal::require_sealed(al, "promote", &run.id, &tip)?;
        let (intent, _guard) = al.store.begin_intent(INTENT, &run.id, intent_data)?;
        crate::repo::failpoint::pausepoint("promote:before-push");
        crate::failpoint("promote:before-push");
        let pushed = push(
            al,
            remote,
            &[(&target_ref, &tip), (&record_ref, "")],
            &[
                format!("{merge}:{target_ref}"),
                format!("{record}:{record_ref}"),
            ],
            &doing,
        );
        let pushed = match pushed {
            Ok(p) => p,
            Err(e) => {
                al.store.end_intent(intent)?;
                return Err(e);
            }
        };
        match pushed {
            Pushed::Done => {}
            Pushed::Stale(reasons) => {
                al.store.end_intent(intent)?;
                al.store.event(
                    Some(&run.id),
                    "promote-retry",
                    json!({"remote": remote, "target": target_ref, "merged_onto": tip,
                           "attempt": attempt + 1, "reasons": reasons}),
                )?;
                moved.push(tip);
                continue;
            }
            Pushed::Rejected(reasons) => {
                al.store.end_intent(intent)?;
                // Two pushes that pass git's check of the lease at once:
                // the server's compare-and-swap refuses the later one as a
                // failed transaction. The target having moved says so.
                let now_at = ls_remote(al, remote, &[&target_ref], &doing)?;
                if now_at.first().is_some_and(|(_, id)| *id != tip) {
                    al.store.event(
                        Some(&run.id),
                        "promote-retry",
                        json!({"remote": remote, "target": target_ref, "merged_onto": tip,
                               "attempt": attempt + 1, "reasons": reasons}),
                    )?;
                    moved.push(tip);
                    continue;
                }
                return Err(rejected(remote, &doing, reasons));
            }
        }
        crate::failpoint("promote:after-push");
        let _ = main.try_run(&["update-ref", &tracking, &merge, &tip], None);
        let mut extra = serde_json::Map::new();
        extra.insert("remote".into(), json!(remote));
        extra.insert("record".into(), json!(record));
        extra.insert("remerged".into(), json!(moved.len()));
        return crate::promote::record_promotion(
            al,
            run,
            submission,
            intent,
            crate::promote::Landed {
                tip,
                merge,
                strategy,
                regated,
                conditions,
                panel,
                soak,
                checkout_updated: false,
                extra,
            },
            effects,
            clock,
        );
    }
    Err(Error::refused(
        Code::TargetMovedTooOften,
        format!(
            "refusing to promote run {}: {} on `{remote}` moved at each of {} tries",
            run.id,
            run.target,
            moved.len()
        ),
        moved
            .iter()
            .map(|tip| {
                format!(
                    "merged onto {} and it moved before the push",
                    crate::guards::short(tip)
                )
            })
            .collect(),
        format!(
            "`airlock promote {}` again when {} is quieter, or raise `[team] remerges`; nothing was promoted",
            run.id, run.target
        ),
    ))
}

/// The round on the remote is the one submitted here: its commit's parent
/// is the submitted head and its proof the submitted bundle.
fn require_round_on_remote(al: &Airlock, run: &Run, submission: &Submission) -> Result<()> {
    let main = al.layout.git();
    let name = round_ref(&run.id, submission.round);
    let commit = main
        .ref_value(&fetched_round_ref(&run.id, submission.round))?
        .unwrap_or_default();
    let parent = main.ref_value(&format!("{commit}^1")).ok().flatten();
    let proof = main.try_run(
        &["cat-file", "blob", &format!("{commit}:proof.intoto.jsonl")],
        None,
    )?;
    // A run started elsewhere has no bundle here but the one fetched from
    // this round, whose digest `verify_run` checked against the record.
    let proof_ok = proof.0
        && match std::fs::read(&submission.proof) {
            Ok(local) => proof.1 == local,
            Err(_) => started_elsewhere(al, run).is_some(),
        };
    if parent.as_deref() == Some(submission.head.as_str()) && proof_ok {
        return Ok(());
    }
    Err(Error::refused(
        Code::RunRefMoved,
        format!(
            "refusing to promote run {}: its round on the shared remote ({name}) is not the one submitted",
            run.id
        ),
        vec![format!(
            "the proof is for {}; the remote's round {} it{}",
            submission.head,
            if parent.as_deref() == Some(submission.head.as_str()) {
                "has that head but another proof"
            } else {
                "has another head"
            },
            ""
        )],
        format!(
            "redirect the run so airlock submits it again: `airlock redirect {} --reason …`",
            run.id
        ),
    ))
}

/// Settles a `promote` killed after its intent, from what the remote says:
/// the record ref there with the commit this machine made means the push
/// happened (the promotion is recorded here; its actions are left to
/// `promote --actions-only`, which applies each once); absent, it did not
/// (the lease lapses). `None` when the remote cannot be reached: the
/// intent stays for the next command.
pub fn recover(al: &mut Airlock, intent: &crate::store::Intent) -> Result<Option<String>> {
    let text = |k: &str| intent.data[k].as_str().unwrap_or_default().to_string();
    let (remote, target, previous, merge, record) = (
        text("remote"),
        text("target"),
        text("previous"),
        text("merge"),
        text("record"),
    );
    let record_ref = promoted_ref(&intent.run);
    // Whatever the remote says, the killed promotion's lease is over.
    match crate::remote::interrupted(al, intent, &record_ref, "promote", "promoted by another")? {
        None => return Ok(None),
        Some(Interrupted::NotPushed) => {
            return Ok(Some(format!(
                "an interrupted `airlock promote {0}` had not pushed to `{remote}`; nothing changed. Run `airlock promote {0}` again.",
                intent.run
            )));
        }
        Some(Interrupted::ByAnother) => {
            return Ok(Some(format!(
                "an interrupted `airlock promote {}` found the run promoted on `{remote}` by another promotion ({record_ref}); left it alone",
                intent.run
            )));
        }
        Some(Interrupted::Pushed) => {}
    }
    let mut run = al.store.get(&intent.run)?;
    if run.state != State::Approved {
        return Ok(Some(format!(
            "an interrupted `airlock promote {}` had pushed {target} to {} on `{remote}`; the promotion was recorded already",
            intent.run,
            crate::guards::short(&merge)
        )));
    }
    // The intent is a row of the shared database: its merge must be the
    // one this machine made and put under the record it pushed (both are
    // objects made here), else it was changed outside airlock and says
    // nothing about what landed.
    let main = al.layout.git();
    let under_record = main.rev_parse(&format!("{record}^1")).ok().flatten();
    let merged_onto = main.rev_parse(&format!("{merge}^1")).ok().flatten();
    if under_record.as_deref() != Some(merge.as_str())
        || merged_onto.as_deref() != Some(previous.as_str())
    {
        al.store.event(
            Some(&intent.run),
            "recover",
            json!({"operation": "promote", "remote": remote, "outcome": "intent does not match the record"}),
        )?;
        return Ok(Some(format!(
            "an interrupted `airlock promote {0}` left an intent whose merge {1} is not the one under its record {2} on `{remote}`: the intent was changed outside airlock; nothing recorded from it. `airlock promote {0}` checks the remote's record and records it",
            intent.run,
            crate::guards::short(&merge),
            crate::guards::short(&record)
        )));
    }
    {
        let soak: Option<airlock_model::soak::SoakPlan> =
            serde_json::from_value(intent.data["soak"].clone()).map_err(|e| {
                Error::Corrupt(format!(
                    "the interrupted promotion of run {} recorded a soak airlock cannot read: {e}",
                    intent.run
                ))
            })?;
        run.state = State::Promoted;
        run.promotion = Some(Promotion {
            target: run.target.clone(),
            previous: previous.clone(),
            merge: merge.clone(),
            strategy: "finished by recovery after an interruption: the shared remote had the push"
                .into(),
            regated: vec![],
            at: now(),
            soak: soak.clone(),
        });
        let mut event = json!({"target": run.target, "previous": previous, "merge": merge,
               "remote": remote, "record": record, "recovered": true,
               "undo": crate::promote::undo_record(al, &intent.run, &merge)?});
        if let Some(plan) = &soak {
            event["soak"] = json!(plan);
        }
        al.transition(&run, State::Approved, "promote", event)?;
    }
    let actions = if crate::action::plan::list(al, &intent.run)?.is_empty() {
        String::new()
    } else {
        format!(
            " Its actions were not applied: run `airlock promote {} --actions-only`.",
            intent.run
        )
    };
    Ok(Some(format!(
        "an interrupted `airlock promote {}` had pushed {target} to {} on `{remote}`; recorded the promotion.{actions}",
        intent.run,
        crate::guards::short(&merge)
    )))
}

/// The largest promotion record read from a remote (it is a small JSON).
const MAX_RECORD: u64 = 64 * 1024;

/// `promote` of a run the shared remote records as promoted while this
/// store does not (its promoter was killed after the push, or promoted it
/// from another machine sharing the database): the record is checked
/// against the run (its proof's digest, its head the merge's second
/// parent, the merge in the target's history on the remote) and the
/// promotion recorded here, once. `None`: not in team mode, or not
/// promoted on the remote.
pub fn promoted_elsewhere(
    al: &mut Airlock,
    run: &Run,
    submission: &Submission,
) -> Result<Option<crate::promote::PromoteReport>> {
    let workflow = al.current_workflow()?;
    let Some(remote) = remote_of(&workflow) else {
        return Ok(None);
    };
    let record_ref = promoted_ref(&run.id);
    let target_ref = format!("refs/heads/{}", run.target);
    let doing = format!("promote run {}", run.id);
    let seen = ls_remote(al, &remote, &[&record_ref], &doing)?;
    let Some((_, record)) = seen.into_iter().next() else {
        return Ok(None);
    };
    let fetched = format!("refs/airlock/remote/promoted/{}", run.id);
    let tracking = format!("refs/airlock/remote/heads/{}", run.target);
    fetch(
        al,
        &remote,
        &[
            format!("+{record_ref}:{fetched}"),
            format!("+{target_ref}:{tracking}"),
        ],
        &doing,
    )?;
    let main = al.layout.git();
    let bad = |why: String| {
        Error::refused(
            Code::RemoteRecordInvalid,
            format!(
                "refusing to promote run {}: the shared remote `{remote}` has a promotion record for it that does not match it",
                run.id
            ),
            vec![why],
            format!(
                "ask whoever runs the remote who wrote {record_ref}; nothing was recorded here"
            ),
        )
    };
    let size: u64 = main
        .text(&["cat-file", "-s", &format!("{record}:promotion.json")])
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(u64::MAX);
    if size > MAX_RECORD {
        return Err(bad("its promotion.json is missing or too large".into()));
    }
    let body: serde_json::Value = serde_json::from_slice(&main.run(&[
        "cat-file",
        "blob",
        &format!("{record}:promotion.json"),
    ])?)
    .map_err(|e| bad(format!("its promotion.json is not JSON: {e}")))?;
    let merge = main.rev_parse(&format!("{record}^1"))?.unwrap_or_default();
    let previous = main.rev_parse(&format!("{merge}^1"))?.unwrap_or_default();
    let brought = main.rev_parse(&format!("{merge}^2"))?.unwrap_or_default();
    let tip = main.ref_value(&tracking)?.unwrap_or_default();
    if body["run"] != run.id.as_str()
        || body["proof"]["sha256"] != submission.digest.as_str()
        || body["merge"] != merge.as_str()
    {
        return Err(bad(format!(
            "it names run {}, proof {} and merge {}; this run's proof is {}",
            body["run"], body["proof"]["sha256"], body["merge"], submission.digest
        )));
    }
    if brought != submission.head {
        return Err(bad(format!(
            "its merge {merge} brings {brought}, not the run's head {}",
            submission.head
        )));
    }
    // The merge must carry the run and nothing else: a pusher without a
    // runner's key could otherwise land files of their own under the run's
    // name. Its tree is the one `promote` makes from its first parent.
    let expected = if previous == run.base {
        Ok(submission.tree.clone())
    } else {
        crate::promote::merge_trees(al, run, &previous, &submission.head)
    };
    let tree = main.tree_of(&merge).unwrap_or_default();
    match expected {
        Ok(expected) if expected == tree => {}
        Ok(expected) => {
            return Err(bad(format!(
                "its merge {merge} has tree {tree}; merging the run's head onto {previous} gives {expected}"
            )));
        }
        Err(e) => {
            return Err(bad(format!(
                "its merge {merge} has tree {tree}; the run's head does not merge onto {previous} ({e})"
            )));
        }
    }
    let (in_history, _, _) = main.try_run(&["merge-base", "--is-ancestor", &merge, &tip], None)?;
    if !in_history {
        return Err(bad(format!(
            "its merge {merge} is not in {target_ref}'s history on the remote"
        )));
    }
    let mut run = run.clone();
    let mut strategy = format!(
        "promoted on `{remote}` by {} from machine {}; recorded here from the shared remote",
        body["by"]["principal"].as_str().unwrap_or("?"),
        body["by"]["machine"].as_str().unwrap_or("?")
    );
    let pending = !crate::action::plan::list(al, &run.id)?.is_empty();
    if pending {
        strategy.push_str(&format!(
            "; its actions were not applied: run `airlock promote {} --actions-only`",
            run.id
        ));
    }
    run.state = State::Promoted;
    run.promotion = Some(Promotion {
        target: run.target.clone(),
        previous: previous.clone(),
        merge: merge.clone(),
        strategy: strategy.clone(),
        regated: vec![],
        at: now(),
        soak: None,
    });
    al.transition(
        &run,
        State::Approved,
        "promote",
        json!({"target": run.target, "previous": previous, "merge": merge, "strategy": strategy,
               "digest": submission.digest, "remote": remote, "record": record,
               "recorded_from_remote": true,
               "undo": crate::promote::undo_record(al, &run.id, &merge)?}),
    )?;
    Ok(Some(crate::promote::PromoteReport {
        run: run.id.clone(),
        target: run.target.clone(),
        previous,
        merge,
        strategy,
        regated: vec![],
        checkout_updated: false,
        actions: crate::action::apply::ApplyReport {
            complete: !pending,
            stopped: pending.then(|| {
                format!(
                    "promoted elsewhere; apply the actions with `airlock promote {} --actions-only`",
                    run.id
                )
            }),
            ..Default::default()
        },
        soak: None,
        to_production: false,
    }))
}

/// How long a promotion lease lasts: renewed at each try, so it covers one
/// merge and its gates; a killed holder blocks the target no longer.
pub const LEASE_MS: i64 = 10 * 60 * 1000;

/// The intent `promote` records before pushing: a kill after it is settled
/// by what the remote says ([`recover`]).
pub const INTENT: &str = "promote-remote";
