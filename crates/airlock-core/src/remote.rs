//! Promotion on the shared remote (issue 20, `[team] remote`).
//!
//! `submit` pushes the run's round under `refs/airlock/runs/<run>/r<round>`:
//! one commit whose parent is the run's head and whose tree holds the proof
//! bundle, its SSH signature and airlock's copy of the brief. `promote`
//! takes the store's promotion lease on the target, fetches the target's
//! tip from the remote, merges with the plumbing `promote` uses locally,
//! and pushes the merge together with `refs/airlock/promoted/<run>` (a
//! commit recording the merge, the proof's digest and the approval, whose
//! parent is the merge) in one `--atomic` push, with `--force-with-lease`
//! on both refs: the target at the tip merged onto, the record absent. A
//! target that moved meanwhile is fetched, merged again, and the gates and
//! stop conditions re-run, up to `[team] remerges` times; nothing is ever
//! rebased. Every git call is airlock's hermetic git (no hooks, no global
//! config), refspecs after `--`.

use serde_json::json;

use crate::Airlock;
use crate::error::{Code, Error, Result};
use crate::run::{Promotion, Run, State, Submission, now};

/// How long a promotion lease lasts: renewed at each try, so it covers one
/// merge and its gates; a killed holder blocks the target no longer.
pub const LEASE_MS: i64 = 10 * 60 * 1000;

/// The intent `promote` records before pushing: a kill after it is settled
/// by what the remote says ([`recover`]).
pub const INTENT: &str = "promote-remote";

/// The shared remote the workflow names, if the repository is in team mode
/// through `[team] remote`.
pub fn remote_of(workflow: &crate::workflow::Workflow) -> Option<String> {
    workflow.team.remote.clone()
}

/// Where a run's round is on the remote.
pub fn round_ref(run: &str, round: u32) -> String {
    format!("refs/airlock/runs/{run}/r{round}")
}

/// Where [`round_ref`] is fetched to here: beside the run's own
/// `refs/airlock/runs/<run>`, which a ref under it would collide with.
fn fetched_round_ref(run: &str, round: u32) -> String {
    format!("refs/airlock/remote/runs/{run}/r{round}")
}

/// Where a run's promotion is recorded on the remote.
pub fn promoted_ref(run: &str) -> String {
    format!("refs/airlock/promoted/{run}")
}

/// What a push came to.
#[derive(Debug)]
enum Pushed {
    Done,
    /// A ref was not where `--force-with-lease` expected it.
    Stale(Vec<String>),
    /// The remote refused (a hook, a protection rule).
    Rejected(Vec<String>),
}

fn unreachable(remote: &str, doing: &str, detail: &[u8]) -> Error {
    let detail = String::from_utf8_lossy(detail);
    Error::refused(
        Code::RemoteUnreachable,
        format!("cannot {doing}: the shared remote `{remote}` cannot be reached"),
        detail
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .take(5)
            .map(str::to_string)
            .collect(),
        "check `[team] remote` in the workflow, the network and your credentials, then run the command again; nothing was recorded",
    )
}

/// `git push --porcelain --atomic` with `leases` (ref, expected old value;
/// empty: must not exist) and `refspecs`, classified.
fn push(
    al: &Airlock,
    remote: &str,
    leases: &[(&str, &str)],
    refspecs: &[String],
    doing: &str,
) -> Result<Pushed> {
    let mut args: Vec<String> = vec!["push".into(), "--porcelain".into(), "--atomic".into()];
    for (name, old) in leases {
        args.push(format!("--force-with-lease={name}:{old}"));
    }
    args.push("--".into());
    args.push(remote.to_string());
    args.extend(refspecs.iter().cloned());
    let (ok, out, err) = al.layout.git().try_run(&args, None)?;
    if ok {
        return Ok(Pushed::Done);
    }
    // Porcelain: `!\tSRC:DST\t[rejected] (stale info)` per refused ref; no
    // such line at all means the remote was never reached.
    let text = String::from_utf8_lossy(&out);
    let refused: Vec<&str> = text.lines().filter(|l| l.starts_with('!')).collect();
    if refused.is_empty() {
        return Err(unreachable(remote, doing, &err));
    }
    let describe = |l: &str| {
        let fields: Vec<&str> = l.split('\t').collect();
        format!(
            "{}: {}",
            fields
                .get(1)
                .and_then(|f| f.split(':').nth(1))
                .unwrap_or("?"),
            fields.get(2).unwrap_or(&"refused")
        )
    };
    let stale = refused
        .iter()
        .any(|l| l.contains("stale info") || l.contains("fetch first"));
    let hook: Vec<String> = String::from_utf8_lossy(&err)
        .lines()
        .filter(|l| l.starts_with("remote:"))
        .take(10)
        .map(|l| l.trim().to_string())
        .collect();
    let mut reasons: Vec<String> = refused.iter().map(|l| describe(l)).collect();
    if stale && !text.contains("remote rejected") {
        return Ok(Pushed::Stale(reasons));
    }
    reasons.extend(hook);
    Ok(Pushed::Rejected(reasons))
}

/// The remote's refs among `names`, as (name, object id).
fn ls_remote(
    al: &Airlock,
    remote: &str,
    names: &[&str],
    doing: &str,
) -> Result<Vec<(String, String)>> {
    let mut args = vec!["ls-remote", "--refs", "--", remote];
    args.extend_from_slice(names);
    let (ok, out, err) = al.layout.git().try_run(&args, None)?;
    if !ok {
        return Err(unreachable(remote, doing, &err));
    }
    Ok(String::from_utf8_lossy(&out)
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .filter(|(id, name)| names.contains(name) && is_object_id(id))
        .map(|(id, name)| (name.to_string(), id.to_string()))
        .collect())
}

fn is_object_id(id: &str) -> bool {
    matches!(id.len(), 40 | 64) && id.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Fetches `refspecs` (objects checked as they arrive: the remote is not
/// trusted to send well-formed ones).
fn fetch(al: &Airlock, remote: &str, refspecs: &[String], doing: &str) -> Result<()> {
    let mut args: Vec<String> = [
        "-c",
        "fetch.fsckObjects=true",
        "fetch",
        "--quiet",
        "--no-tags",
        "--no-write-fetch-head",
        "--no-recurse-submodules",
        "--",
        remote,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(refspecs.iter().cloned());
    let (ok, _, err) = al.layout.git().try_run(&args, None)?;
    if !ok {
        return Err(unreachable(remote, doing, &err));
    }
    Ok(())
}

/// A commit whose tree holds `files` (name, bytes), with `parents`.
fn files_commit(
    al: &Airlock,
    files: &[(&str, Vec<u8>)],
    parents: &[&str],
    message: &str,
) -> Result<String> {
    let git = al.layout.git();
    let mut listing = String::new();
    for (name, bytes) in files {
        let id = String::from_utf8_lossy(
            &git.run_with_input(&["hash-object", "-w", "--stdin"], Some(bytes))?,
        )
        .trim()
        .to_string();
        listing.push_str(&format!("100644 blob {id}\t{name}\n"));
    }
    let tree = String::from_utf8_lossy(&git.run_with_input(&["mktree"], Some(listing.as_bytes()))?)
        .trim()
        .to_string();
    git.commit_tree(&tree, parents, message)
}

fn read(path: &std::path::Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|source| Error::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// `submit`'s push: the round's commit (the head as its parent; the proof
/// bundle, its signature and the brief in its tree) to
/// [`round_ref`]. Refused (`remote-unreachable`, `remote-rejected`) before
/// anything is recorded: the run stays checked.
pub fn push_round(
    al: &Airlock,
    remote: &str,
    run: &Run,
    head: &str,
    proof: &crate::proof::WrittenProof,
) -> Result<String> {
    let brief = al.layout.run_dir(&run.id).join("brief.toml");
    let commit = files_commit(
        al,
        &[
            ("brief.toml", read(&brief)?),
            ("proof.intoto.jsonl", read(&proof.path)?),
            ("proof.intoto.jsonl.sig", read(&proof.signature)?),
        ],
        &[head],
        &format!(
            "airlock run {} round {}\n\nhead: {head}\nproof: sha256 {}\n",
            run.id, run.round, proof.digest
        ),
    )?;
    let target = round_ref(&run.id, run.round);
    let doing = format!("submit run {}", run.id);
    match push(al, remote, &[], &[format!("+{commit}:{target}")], &doing)? {
        Pushed::Done => Ok(commit),
        Pushed::Stale(reasons) | Pushed::Rejected(reasons) => {
            Err(rejected(remote, &doing, reasons))
        }
    }
}

fn rejected(remote: &str, doing: &str, reasons: Vec<String>) -> Error {
    Error::refused(
        Code::RemoteRejected,
        format!("cannot {doing}: the shared remote `{remote}` refused the push"),
        reasons,
        "fix what the remote names (a hook or a branch protection on the server), then run the command again; nothing was recorded",
    )
}

/// The approvals helper's check, run at each try against the tip being
/// merged onto (the rules in force there): the hook point for
/// `approvals::require_at` (issue 20, helper 1). Until it lands, the
/// approval `promote` verified (`verify_approved`) is the one that counts.
fn check_approvals_at_tip(_al: &Airlock, _run: &Run, _tip: &str) -> Result<()> {
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
    let now = airlock_store::lease::now_ms();
    let mut lease = lease.clone();
    lease.expires_ms = now + LEASE_MS;
    let Some(other) = al.store.take_lease(&lease, now)? else {
        return Ok(());
    };
    let left = (other.expires_ms - now).max(0) / 1000;
    Err(Error::refused(
        Code::LeaseHeld,
        format!(
            "refusing to promote run {}: {} is promoting run {} onto {} from machine {}",
            run.id, other.principal, other.run, run.target, other.machine
        ),
        vec![format!(
            "its promotion lease on {} lapses in {}m{:02}s unless renewed",
            other.target,
            left / 60,
            left % 60
        )],
        format!(
            "wait for that promotion to finish, then `airlock promote {}` again",
            run.id
        ),
    ))
}

#[allow(clippy::too_many_arguments)]
fn promote_leased(
    al: &mut Airlock,
    remote: &str,
    mut run: Run,
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
        check_approvals_at_tip(al, &run, &tip)?;
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
        let (conditions, panel) = merged_conditions(al, &run, brief, workflow, &tip, &tree)?;
        let message = format!(
            "Merge airlock run {} into {}\n\nProof: sha256 {}\nApproved: {}\n",
            run.id, run.target, submission.digest, approval.at
        );
        let author = crate::git::user_identity(&al.layout.git_dir)
            .unwrap_or_else(crate::git::airlock_identity);
        let merge = main.commit_tree_by(&tree, &[&tip, &submission.head], &message, &author)?;
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
        let promotion = Promotion {
            target: run.target.clone(),
            previous: tip.clone(),
            merge: merge.clone(),
            strategy: strategy.clone(),
            regated: regated.clone(),
            at: now(),
            soak: soak.clone(),
        };
        let mut event = json!({"target": run.target, "previous": tip, "merge": merge, "strategy": strategy,
               "regated": regated, "digest": submission.digest, "remote": remote,
               "record": record, "remerged": moved.len(),
               "undo": crate::promote::undo_record(al, &run.id, &merge)?});
        if !conditions.is_empty() {
            event["conditions"] = crate::conditions::summary(&conditions);
        }
        if panel.is_some() {
            event["panel"] = json!(panel);
        }
        if let Some(plan) = &soak {
            event["soak"] = json!(plan);
        }
        run.state = State::Promoted;
        run.promotion = Some(promotion);
        al.transition_clearing(&run, State::Approved, "promote", event, Some(intent))?;
        let actions = crate::action::apply::apply(
            al,
            &run,
            crate::action::Role::Apply,
            &merge,
            submission.round,
            effects,
        )?;
        let soak = crate::soak::status(al, &run, clock)?;
        return Ok(crate::promote::PromoteReport {
            run: run.id,
            target: run.target,
            previous: tip,
            merge,
            strategy,
            regated,
            checkout_updated: false,
            actions,
            soak,
            to_production: false,
        });
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

type Conditions = (
    Vec<crate::conditions::ConditionResult>,
    Option<airlock_model::panel::Decision>,
);

/// The workflow's conditions and the review panel on what the merge brings
/// to the target, as the local `promote` checks them.
fn merged_conditions(
    al: &Airlock,
    run: &Run,
    brief: &crate::brief::Brief,
    workflow: &crate::workflow::Workflow,
    tip: &str,
    tree: &str,
) -> Result<Conditions> {
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
    let Ok(seen) = ls_remote(
        al,
        &remote,
        &[&record_ref],
        "recover an interrupted promotion",
    ) else {
        return Ok(None);
    };
    // Whatever the remote says, the killed promotion's lease is over.
    if let (Some(target), Some(token)) = (
        intent.data["lease"]["target"].as_str(),
        intent.data["lease"]["token"].as_str(),
    ) {
        al.store.release_lease(target, token)?;
    }
    let on_remote = seen.first().map(|(_, id)| id.clone());
    if on_remote.is_none() {
        al.store.event(
            Some(&intent.run),
            "recover",
            json!({"operation": "promote", "remote": remote, "outcome": "not pushed"}),
        )?;
        return Ok(Some(format!(
            "an interrupted `airlock promote {0}` had not pushed to `{remote}`; nothing changed. Run `airlock promote {0}` again.",
            intent.run
        )));
    }
    if on_remote.as_deref() != Some(record.as_str()) {
        al.store.event(
            Some(&intent.run),
            "recover",
            json!({"operation": "promote", "remote": remote, "outcome": "promoted by another"}),
        )?;
        return Ok(Some(format!(
            "an interrupted `airlock promote {}` found the run promoted on `{remote}` by another promotion ({record_ref}); left it alone",
            intent.run
        )));
    }
    let mut run = al.store.get(&intent.run)?;
    if run.state != State::Approved {
        return Ok(Some(format!(
            "an interrupted `airlock promote {}` had pushed {target} to {} on `{remote}`; the promotion was recorded already",
            intent.run,
            crate::guards::short(&merge)
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

/// The largest proof bundle, signature or brief read from a run's round.
const MAX_FETCHED: u64 = 64 * 1024 * 1024;

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

/// A run started on another machine, in a store shared with it: its
/// submitted round's objects (the head, its tree, the proof commit) are
/// fetched from the shared remote when this repository lacks them, so
/// that `show` can diff it. Nothing is done outside team mode or when the
/// objects are here.
pub fn materialise(al: &Airlock, run: &Run) -> Result<()> {
    let Some(submission) = &run.submission else {
        return Ok(());
    };
    let main = al.layout.git();
    if main.object_exists(&format!("{}^{{commit}}", submission.head))? {
        return Ok(());
    }
    let Some(remote) = al.current_workflow().ok().as_ref().and_then(remote_of) else {
        return Ok(());
    };
    fetch(
        al,
        &remote,
        &[format!(
            "+{}:{}",
            round_ref(&run.id, submission.round),
            fetched_round_ref(&run.id, submission.round)
        )],
        &format!("read run {}", run.id),
    )
}

/// Whether `run` was started on another machine: team mode, and its
/// proof is not here or was not signed by this machine's key.
fn started_elsewhere(al: &Airlock, run: &Run) -> Option<String> {
    let submission = run.submission.as_ref()?;
    let remote = al.current_workflow().ok().as_ref().and_then(remote_of)?;
    // Ours: its bundle is here and this machine's key signed it.
    let ours =
        submission.proof.exists() && crate::proof::verify_file(al, &submission.proof, None).is_ok();
    (!ours).then_some(remote)
}

/// The proof of a run started on another machine, fetched from its round
/// on the shared remote into this machine's proofs (`remote/`), and the
/// key that signed it: one of the machines' keys in `.airlock/runners` on
/// the target's tip on the remote (never a file of a run's branch). The
/// brief's copy is put where `brief_of` reads it (it checks the digest the
/// run recorded). `None`: the run is this machine's (or not in team mode).
pub fn fetched_proof(
    al: &Airlock,
    run: &Run,
) -> Result<Option<(std::path::PathBuf, airlock_proof::PublicKey)>> {
    let Some(remote) = started_elsewhere(al, run) else {
        return Ok(None);
    };
    let Some(submission) = &run.submission else {
        return Ok(None);
    };
    let doing = format!("read run {} started on another machine", run.id);
    let round = fetched_round_ref(&run.id, submission.round);
    let tracking = format!("refs/airlock/remote/heads/{}", run.target);
    fetch(
        al,
        &remote,
        &[
            format!("+{}:{round}", round_ref(&run.id, submission.round)),
            format!("+refs/heads/{}:{tracking}", run.target),
        ],
        &doing,
    )?;
    let main = al.layout.git();
    let blob = |name: &str| -> Result<Vec<u8>> {
        // The remote is not trusted to keep them small.
        let size: u64 = main
            .text(&["cat-file", "-s", &format!("{round}:{name}")])
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        if size > MAX_FETCHED {
            return Err(Error::refused(
                Code::ProofUnverified,
                format!(
                    "refusing run {}: its {name} on the shared remote is {size} bytes, over the {MAX_FETCHED} airlock reads",
                    run.id
                ),
                vec![],
                "ask whoever runs the remote who wrote the run's round",
            ));
        }
        let (ok, out, _) = main.try_run(&["cat-file", "blob", &format!("{round}:{name}")], None)?;
        if !ok {
            return Err(Error::Corrupt(format!(
                "run {}'s round on the shared remote has no {name}",
                run.id
            )));
        }
        Ok(out)
    };
    let dir = al.layout.proofs_dir().join("remote");
    std::fs::create_dir_all(&dir).map_err(|source| Error::Write {
        path: dir.clone(),
        source,
    })?;
    let path = dir.join(format!("{}-r{}.intoto.jsonl", run.id, submission.round));
    let write = |path: &std::path::Path, bytes: &[u8]| {
        std::fs::write(path, bytes).map_err(|source| Error::Write {
            path: path.to_path_buf(),
            source,
        })
    };
    write(&path, &blob("proof.intoto.jsonl")?)?;
    write(
        &std::path::PathBuf::from(format!("{}.sig", path.display())),
        &blob("proof.intoto.jsonl.sig")?,
    )?;
    let run_dir = al.layout.run_dir(&run.id);
    let brief = run_dir.join("brief.toml");
    if !brief.exists() {
        std::fs::create_dir_all(&run_dir).map_err(|source| Error::Write {
            path: run_dir.clone(),
            source,
        })?;
        write(&brief, &blob("brief.toml")?)?;
    }
    let runners = main
        .try_run(
            &["cat-file", "blob", &format!("{tracking}:.airlock/runners")],
            None,
        )?
        .1;
    let keys = runner_keys(&String::from_utf8_lossy(&runners));
    for key in &keys {
        if crate::proof::verify_file(al, &path, Some(key)).is_ok() {
            return Ok(Some((path, key.clone())));
        }
    }
    Err(Error::refused(
        Code::ProofUnverified,
        format!(
            "refusing run {}: its proof was signed on another machine by a key not in .airlock/runners",
            run.id
        ),
        vec![format!(
            "{} key(s) in .airlock/runners on {} of `{remote}`; none verifies the proof",
            keys.len(),
            run.target
        )],
        "add the machine's key (`airlock key` prints the line) to .airlock/runners on the target branch",
    ))
}

/// The keys of an `allowed_signers` file (`.airlock/runners`): each line's
/// key type and base64 after the principals and any options; lines that
/// are not one are skipped (the approvals' parser reports them).
fn runner_keys(text: &str) -> Vec<airlock_proof::PublicKey> {
    text.lines()
        .take(10_000)
        .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let at = fields.iter().position(|f| {
                f.starts_with("ssh-") || f.starts_with("ecdsa-") || f.starts_with("sk-")
            })?;
            let blob = fields.get(at + 1)?;
            airlock_proof::PublicKey::from_openssh(&format!("{} {blob}", fields[at])).ok()
        })
        .collect()
}

/// The check a run started on another machine gets instead of its
/// worktree's (which is on that machine): its submitted commit, fetched
/// from the remote, has the tree the proof names. `None`: the run is this
/// machine's.
pub fn checked_without_worktree(
    al: &Airlock,
    run: &Run,
    submission: &Submission,
) -> Result<Option<()>> {
    if started_elsewhere(al, run).is_none() {
        return Ok(None);
    }
    materialise(al, run)?;
    let main = al.layout.git();
    let tree = main.tree_of(&submission.head).unwrap_or_default();
    if tree == submission.tree {
        return Ok(Some(()));
    }
    Err(Error::refused(
        Code::WorktreeChanged,
        format!(
            "run {}'s submitted commit on the shared remote does not have the tree its proof names",
            run.id
        ),
        vec![format!(
            "commit {} has tree {tree}; the proof says {}",
            submission.head, submission.tree
        )],
        format!(
            "redirect the run (`airlock redirect {} --reason …`) so it is submitted again",
            run.id
        ),
    ))
}
