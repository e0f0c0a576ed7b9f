//! `rollback` of a run promoted on the shared remote (issue 20, `[team]
//! remote`), as `promote::remote` pushes its merge: under the promotion
//! lease on the target, the merge is reverted (against its first parent)
//! on top of the remote target's current tip, never reset or forced, and
//! the revert pushed in one `--atomic` push with
//! `refs/airlock/rolledback/<run>`, `--force-with-lease` on both (the
//! target at the tip reverted onto, the record absent). A target that moved
//! meanwhile is reverted onto again, up to `[team] remerges` times. The
//! record on the remote makes it once: a second machine, or the next
//! command after a kill, records what the remote says instead of reverting
//! again ([`recover`], [`rolled_back_elsewhere`]).

use serde_json::json;

use crate::Airlock;
use crate::error::{Code, Error, Result};
use crate::promote::remote::take_lease_for;
use crate::remote::{
    Interrupted, Pushed, fetch, files_commit, ls_remote, promoted_ref, push, rejected, remote_of,
    rolledback_ref,
};
use crate::run::{Promotion, Run, State};

/// What the remote rollback did: the target's tip it reverted onto and the
/// revert commit.
pub(crate) struct Reverted {
    pub previous: String,
    pub revert: String,
}

/// The intent `rollback` records before pushing: a kill after it is settled
/// from what the remote says ([`recover`]).
pub const INTENT: &str = "rollback-remote";

/// The largest rollback record read from a remote (a small JSON).
const MAX_RECORD: u64 = 64 * 1024;

/// The shared remote and the promotion record (`refs/airlock/promoted/<run>`
/// as the ledger recorded it) of a run promoted through the remote; `None`
/// for a run promoted on the local branch (outside team mode, or before it).
pub(crate) fn promoted_through(al: &Airlock, run: &Run) -> Result<Option<(String, String)>> {
    let events = al.store.events(Some(&run.id))?;
    let Some(promoted) = events.iter().rev().find(|e| e.kind == "promote") else {
        return Ok(None);
    };
    let Some(record) = promoted.data["record"].as_str() else {
        return Ok(None);
    };
    // The workflow's remote now, else the one the promotion went through.
    let remote = al
        .current_workflow()
        .ok()
        .as_ref()
        .and_then(remote_of)
        .or_else(|| promoted.data["remote"].as_str().map(str::to_string));
    Ok(remote.map(|remote| (remote, record.to_string())))
}

/// Reverts the run's merge on `remote` and records the rollback (the run is
/// `rolled_back` when this returns). `record` is the promotion record the
/// ledger holds for it.
pub(crate) fn rollback(
    al: &mut Airlock,
    remote: &str,
    run: &mut Run,
    promotion: &Promotion,
    record: &str,
    reason: &str,
) -> Result<Reverted> {
    // Rolled back on the remote already (a rollback killed after its push,
    // here or on another machine whose lease has not lapsed): recorded
    // from the remote without the lease, as nothing is pushed.
    let record_ref = rolledback_ref(&run.id);
    let doing = format!("roll back run {}", run.id);
    if let Some((_, record)) = ls_remote(al, remote, &[&record_ref], &doing)?
        .into_iter()
        .next()
    {
        return rolled_back_elsewhere(al, remote, run, promotion, &record);
    }
    let who = crate::identity::who(al)?;
    let lease = airlock_store::Lease {
        target: format!("{remote} refs/heads/{}", promotion.target),
        run: run.id.clone(),
        machine: who.machine.clone(),
        principal: who.principal.clone(),
        token: {
            use rand_core::RngCore;
            format!("{:016x}", rand_core::OsRng.next_u64())
        },
        expires_ms: 0,
    };
    take_lease_for(al, run, &lease, "roll back")?;
    let result = rollback_leased(al, remote, run, promotion, record, reason, &lease);
    // Released whatever came of it; a kill leaves it to lapse.
    let _ = al.store.release_lease(&lease.target, &lease.token);
    result
}

fn rollback_leased(
    al: &mut Airlock,
    remote: &str,
    run: &mut Run,
    promotion: &Promotion,
    promoted_record: &str,
    reason: &str,
    lease: &airlock_store::Lease,
) -> Result<Reverted> {
    let target_ref = format!("refs/heads/{}", promotion.target);
    let promoted = promoted_ref(&run.id);
    let record_ref = rolledback_ref(&run.id);
    let tracking = format!("refs/airlock/remote/heads/{}", promotion.target);
    let doing = format!("roll back run {}", run.id);
    let main = al.layout.git();
    let tries = al.current_workflow()?.team.remerges + 1;
    let mut moved: Vec<String> = Vec::new();
    for attempt in 0..tries {
        take_lease_for(al, run, lease, "roll back")?;
        let seen = ls_remote(al, remote, &[&target_ref, &promoted, &record_ref], &doing)?;
        let at = |name: &str| {
            seen.iter()
                .find(|(n, _)| n == name)
                .map(|(_, id)| id.clone())
        };
        if let Some(record) = at(&record_ref) {
            // Rolled back already: by another machine, or by a rollback
            // killed after its push. Recorded here from the remote, once.
            return rolled_back_elsewhere(al, remote, run, promotion, &record);
        }
        if at(&promoted).as_deref() != Some(promoted_record) {
            return Err(Error::refused(
                Code::RemoteRecordInvalid,
                format!(
                    "refusing to roll back run {}: its promotion record on the shared remote `{remote}` is not the one the ledger recorded",
                    run.id
                ),
                vec![format!(
                    "{promoted} is {} on `{remote}`; the ledger recorded {promoted_record}",
                    at(&promoted).as_deref().unwrap_or("absent")
                )],
                format!(
                    "ask whoever runs the remote who moved {promoted}; to undo the merge {} by hand: `git revert -m 1 {}` on an up-to-date {}, then push; nothing was changed",
                    crate::guards::short(&promotion.merge),
                    promotion.merge,
                    promotion.target
                ),
            ));
        }
        if at(&target_ref).is_none() {
            return Err(Error::refused(
                Code::TargetMissing,
                format!(
                    "refusing to roll back run {}: the shared remote `{remote}` has no branch `{}`",
                    run.id, promotion.target
                ),
                vec![],
                "push the branch to the remote again, then roll back again; nothing was changed",
            ));
        }
        fetch(al, remote, &[format!("+{target_ref}:{tracking}")], &doing)?;
        let tip = main
            .ref_value(&tracking)?
            .ok_or_else(|| Error::Corrupt(format!("{tracking} vanished after the fetch")))?;
        require_merge_on_target(al, remote, run, promotion, &tip)?;
        let tree = super::revert_tree(al, run, promotion, &tip, Some(remote))?;
        let revert = main.commit_tree(
            &tree,
            &[&tip],
            &super::revert_message(run, promotion, reason),
        )?;
        let body = json!({"run": run.id, "target": target_ref, "merge": promotion.merge,
            "promoted": promoted_record, "previous": tip, "revert": revert, "reason": reason,
            "by": {"principal": lease.principal, "machine": lease.machine}});
        let record = files_commit(
            al,
            &[(
                "rollback.json",
                serde_json::to_vec_pretty(&body).unwrap_or_default(),
            )],
            &[&revert],
            &format!(
                "airlock rolled back run {} on {}\n",
                run.id, promotion.target
            ),
        )?;
        // Sealed before the push under the runners at the remote's tip, as
        // the remote promotion is (team mode has no rollback unsealed).
        crate::seal::require_runners(al, remote, &promotion.target, Some(&tip), &doing)?;
        crate::seal::require_sealed(al, "roll back", &run.id, &tip)?;
        let (intent, _guard) = al.store.begin_intent(
            INTENT,
            &run.id,
            json!({"remote": remote, "target": target_ref, "previous": tip,
                   "merge": promotion.merge, "revert": revert, "record": record,
                   "reason": reason, "lease": {"target": lease.target, "token": lease.token}}),
        )?;
        crate::repo::failpoint::pausepoint("rollback:before-push");
        crate::failpoint("rollback:before-push");
        let pushed = push(
            al,
            remote,
            &[(&target_ref, &tip), (&record_ref, "")],
            &[
                format!("{revert}:{target_ref}"),
                format!("{record}:{record_ref}"),
            ],
            &doing,
        );
        let reasons = match pushed {
            Ok(Pushed::Done) => None,
            Ok(Pushed::Stale(reasons)) => Some(reasons),
            Ok(Pushed::Rejected(reasons)) => {
                // Two pushes past git's lease check at once: the server's
                // compare-and-swap refuses the later as a failed transaction.
                let now_at = ls_remote(al, remote, &[&target_ref, &record_ref], &doing);
                let moved_on = now_at.as_ref().is_ok_and(|refs| {
                    refs.iter()
                        .any(|(n, id)| (*n == target_ref && *id != tip) || *n == record_ref)
                });
                if !moved_on {
                    al.store.end_intent(intent)?;
                    return Err(rejected(remote, &doing, reasons));
                }
                Some(reasons)
            }
            Err(e) => {
                al.store.end_intent(intent)?;
                return Err(e);
            }
        };
        if let Some(reasons) = reasons {
            al.store.end_intent(intent)?;
            al.store.event(
                Some(&run.id),
                "rollback-retry",
                json!({"remote": remote, "target": target_ref, "reverted_onto": tip,
                       "attempt": attempt + 1, "reasons": reasons}),
            )?;
            moved.push(tip);
            continue;
        }
        crate::failpoint("rollback:after-push");
        let _ = main.try_run(&["update-ref", &tracking, &revert, &tip], None);
        run.state = State::RolledBack;
        al.transition_clearing(
            run,
            State::Promoted,
            "rollback",
            json!({"reason": reason, "class": run.class, "target": promotion.target,
                   "previous": tip, "revert": revert, "merge": promotion.merge,
                   "remote": remote, "record": record, "reverted_again": moved.len()}),
            Some(intent),
        )?;
        return Ok(Reverted {
            previous: tip,
            revert,
        });
    }
    Err(Error::refused(
        Code::TargetMovedTooOften,
        format!(
            "refusing to roll back run {}: {} on `{remote}` moved at each of {} tries",
            run.id,
            promotion.target,
            moved.len()
        ),
        moved
            .iter()
            .map(|tip| {
                format!(
                    "reverted onto {} and it moved before the push",
                    crate::guards::short(tip)
                )
            })
            .collect(),
        format!(
            "`airlock rollback {} --reason …` again when {} is quieter, or raise `[team] remerges`; nothing was rolled back",
            run.id, promotion.target
        ),
    ))
}

/// The run's merge is in the remote target's history at `tip` (a force-push
/// may have dropped it: then there is nothing of it to revert here).
fn require_merge_on_target(
    al: &Airlock,
    remote: &str,
    run: &Run,
    promotion: &Promotion,
    tip: &str,
) -> Result<()> {
    let main = al.layout.git();
    let present = main.object_exists(&format!("{}^{{commit}}", promotion.merge))?
        && main
            .try_run(
                &["merge-base", "--is-ancestor", &promotion.merge, tip],
                None,
            )?
            .0;
    if present {
        return Ok(());
    }
    Err(Error::refused(
        Code::MergeNotOnTarget,
        format!(
            "refusing to roll back run {}: its merge {} is not in {}'s history on `{remote}`",
            run.id,
            crate::guards::short(&promotion.merge),
            promotion.target
        ),
        vec![format!(
            "{} on `{remote}` is at {}; the ledger recorded the merge {}",
            promotion.target, tip, promotion.merge
        )],
        format!(
            "the branch was rewritten since the promotion: check `git log {}` on the remote; nothing was changed",
            promotion.target
        ),
    ))
}

/// A rollback the remote records (`refs/airlock/rolledback/<run>`) and this
/// store does not: checked against the run (its merge, the revert's parent
/// in the target's history) and recorded here once. Its compensations are
/// then run by the caller, as after a rollback made here.
fn rolled_back_elsewhere(
    al: &mut Airlock,
    remote: &str,
    run: &mut Run,
    promotion: &Promotion,
    record: &str,
) -> Result<Reverted> {
    let record_ref = rolledback_ref(&run.id);
    let target_ref = format!("refs/heads/{}", promotion.target);
    let fetched = format!("refs/airlock/remote/rolledback/{}", run.id);
    let tracking = format!("refs/airlock/remote/heads/{}", promotion.target);
    let doing = format!("roll back run {}", run.id);
    fetch(
        al,
        remote,
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
                "refusing to roll back run {}: the shared remote `{remote}` has a rollback record for it that does not match it",
                run.id
            ),
            vec![why],
            format!("ask whoever runs the remote who wrote {record_ref}; nothing was changed"),
        )
    };
    let size: u64 = main
        .text(&["cat-file", "-s", &format!("{record}:rollback.json")])
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(u64::MAX);
    if size > MAX_RECORD {
        return Err(bad("its rollback.json is missing or too large".into()));
    }
    let body: serde_json::Value = serde_json::from_slice(&main.run(&[
        "cat-file",
        "blob",
        &format!("{record}:rollback.json"),
    ])?)
    .map_err(|e| bad(format!("its rollback.json is not JSON: {e}")))?;
    let revert = main.rev_parse(&format!("{record}^1"))?.unwrap_or_default();
    let previous = main.rev_parse(&format!("{revert}^1"))?.unwrap_or_default();
    if body["run"] != run.id.as_str()
        || body["merge"] != promotion.merge.as_str()
        || body["revert"] != revert.as_str()
    {
        return Err(bad(format!(
            "it names run {}, merge {} and revert {}; this run's merge is {}",
            body["run"], body["merge"], body["revert"], promotion.merge
        )));
    }
    // The revert undoes the merge: its tree is the merge's first parent's,
    // with whatever came between the merge and the revert kept. Checked as
    // the revert of the merge onto the revert's own parent.
    let expected = super::revert_tree(al, run, promotion, &previous, None).ok();
    if expected.as_deref() != Some(main.tree_of(&revert)?.as_str()) {
        return Err(bad(format!(
            "its commit {revert} is not the revert of the merge {} onto {previous}",
            promotion.merge
        )));
    }
    let tip = main.ref_value(&tracking)?.unwrap_or_default();
    let (in_history, _, _) = main.try_run(&["merge-base", "--is-ancestor", &revert, &tip], None)?;
    if !in_history {
        return Err(bad(format!(
            "its revert {revert} is not in {target_ref}'s history on the remote"
        )));
    }
    run.state = State::RolledBack;
    al.transition(
        run,
        State::Promoted,
        "rollback",
        json!({"reason": body["reason"], "class": run.class, "target": promotion.target,
               "previous": previous, "revert": revert, "merge": promotion.merge,
               "remote": remote, "record": record, "recorded_from_remote": true,
               "by": body["by"]}),
    )?;
    Ok(Reverted { previous, revert })
}

/// Settles a `rollback` killed after its intent, from what the remote says:
/// the record ref there with the commit this machine made means the push
/// happened (the rollback is recorded; its compensations are left to
/// `rollback --actions-only`, which runs each once); absent, it did not.
/// `None` when the remote cannot be reached: the intent stays.
pub fn recover(al: &mut Airlock, intent: &crate::store::Intent) -> Result<Option<String>> {
    let text = |k: &str| intent.data[k].as_str().unwrap_or_default().to_string();
    let (remote, target, previous, merge, revert, record) = (
        text("remote"),
        text("target"),
        text("previous"),
        text("merge"),
        text("revert"),
        text("record"),
    );
    let record_ref = rolledback_ref(&intent.run);
    match crate::remote::interrupted(
        al,
        intent,
        &record_ref,
        "rollback",
        "rolled back by another",
    )? {
        None => return Ok(None),
        Some(Interrupted::NotPushed) => {
            return Ok(Some(format!(
                "an interrupted `airlock rollback {0}` had not pushed to `{remote}`; nothing changed. Run `airlock rollback {0} --reason …` again.",
                intent.run
            )));
        }
        Some(Interrupted::ByAnother) => {
            return Ok(Some(format!(
                "an interrupted `airlock rollback {0}` found the run rolled back on `{remote}` by another rollback ({record_ref}); left it alone. `airlock rollback {0} --reason …` records it here.",
                intent.run
            )));
        }
        Some(Interrupted::Pushed) => {}
    }
    let mut run = al.store.get(&intent.run)?;
    if run.state != State::Promoted {
        return Ok(Some(format!(
            "an interrupted `airlock rollback {}` had pushed {target} to {} on `{remote}`; the rollback was recorded already",
            intent.run,
            crate::guards::short(&revert)
        )));
    }
    run.state = State::RolledBack;
    al.transition(
        &run,
        State::Promoted,
        "rollback",
        json!({"reason": intent.data["reason"], "class": run.class,
               "target": target.strip_prefix("refs/heads/").unwrap_or(&target),
               "previous": previous, "revert": revert, "merge": merge,
               "remote": remote, "record": record, "recovered": true}),
    )?;
    let compensations = if crate::action::plan::list(al, &intent.run)?.is_empty() {
        String::new()
    } else {
        format!(
            " Run `airlock rollback {} --actions-only --reason …` to run its compensations.",
            intent.run
        )
    };
    Ok(Some(format!(
        "an interrupted `airlock rollback {}` had pushed {target} to {} on `{remote}`; recorded the rollback.{compensations}",
        intent.run,
        crate::guards::short(&revert)
    )))
}
