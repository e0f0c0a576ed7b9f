//! Finishing or undoing work that a killed process left behind.
//!
//! `start` and `promote` record an intent (with a lock held while they run)
//! before touching the repository. Any later command finds intents whose
//! lock is free, repairs what they left, and says what it found.

use serde_json::json;

use crate::Airlock;
use crate::error::{Error, Result};
use crate::lock::FileLock;
use crate::run::{Promotion, State, now};
use crate::store::Intent;

pub fn recover(al: &mut Airlock) -> Result<Vec<String>> {
    let mut notes = Vec::new();
    for intent in al.store.intents()? {
        let token = intent.data["token"].as_str().unwrap_or("").to_string();
        let lock_path = al.store.intent_lock(&token);
        let Some(lock) = FileLock::acquire(&lock_path, false)? else {
            continue; // still running in another process
        };
        // The lock may be free because the work just finished: it ends its
        // intent before releasing the lock, so look again under the lock.
        if !al.store.intents()?.iter().any(|i| i.id == intent.id) {
            drop(lock);
            let _ = std::fs::remove_file(&lock_path);
            continue;
        }
        let note = match intent.kind.as_str() {
            "start" => recover_start(al, &intent)?,
            "promote" | "rollback" => recover_promote(al, &intent)?,
            crate::promote::remote::INTENT => match crate::promote::remote::recover(al, &intent)? {
                Some(note) => note,
                // The shared remote cannot say yet: the next command asks again.
                None => continue,
            },
            crate::action::rollback::remote::INTENT => {
                match crate::action::rollback::remote::recover(al, &intent)? {
                    Some(note) => note,
                    None => continue,
                }
            }
            other => format!(
                "dropped an unknown interrupted operation `{other}` of run {}",
                intent.run
            ),
        };
        al.store.end_intent(intent.id)?;
        drop(lock);
        let _ = std::fs::remove_file(&lock_path);
        notes.push(note);
    }
    Ok(notes)
}

fn recover_start(al: &mut Airlock, intent: &Intent) -> Result<String> {
    if al.store.exists(&intent.run)? {
        return Ok(format!(
            "run {} was started completely; nothing to repair",
            intent.run
        ));
    }
    let run_dir = al.layout.run_dir(&intent.run);
    let had_dir = run_dir.exists();
    if had_dir {
        let _ = std::fs::remove_dir_all(&run_dir);
    }
    let branch = intent.data["branch"].as_str().unwrap_or_default();
    let base = intent.data["base"].as_str().unwrap_or_default();
    let main = al.layout.git();
    let mut removed_branch = false;
    if !branch.is_empty() && main.ref_value(branch)?.as_deref() == Some(base) {
        removed_branch = main.try_run(&["update-ref", "-d", branch, base], None)?.0;
    }
    al.store.event(
        Some(&intent.run),
        "recover",
        json!({"operation": "start", "removed_worktree": had_dir, "removed_branch": removed_branch}),
    )?;
    Ok(format!(
        "an interrupted `airlock start` left run {} half-made; removed {}{}. Start it again with the same brief.",
        intent.run,
        if had_dir {
            "its worktree"
        } else {
            "nothing on disk"
        },
        if removed_branch {
            " and its branch"
        } else {
            ""
        }
    ))
}

/// A promotion or a rollback moves the target ref with compare-and-swap
/// from `previous` to `merge` (the revert, for a rollback); the ref says
/// whether it happened.
fn recover_promote(al: &mut Airlock, intent: &Intent) -> Result<String> {
    let op = intent.kind.clone();
    let target = intent.data["target"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let previous = intent.data["previous"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let merge = intent.data["merge"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let checked_out = intent.data["checked_out"].as_bool().unwrap_or(false);
    let main = al.layout.git();
    let now_at = main.ref_value(&target)?;
    if now_at.as_deref() == Some(previous.as_str()) {
        al.store.event(
            Some(&intent.run),
            "recover",
            json!({"operation": op, "outcome": "not started"}),
        )?;
        return Ok(format!(
            "an interrupted `airlock {op} {}` had not moved {target}; nothing changed. Run `airlock {op} {}` again.",
            intent.run, intent.run
        ));
    }
    if now_at.as_deref() != Some(merge.as_str()) {
        al.store.event(
            Some(&intent.run),
            "recover",
            json!({"operation": op, "outcome": "target moved since"}),
        )?;
        return Ok(format!(
            "an interrupted `airlock {op} {}` found {target} at neither its old nor its new commit; left it alone. Check `git log {target}`.",
            intent.run
        ));
    }
    // The ref moved: finish the job.
    let mut checkout_note = String::new();
    if checked_out {
        let checkout = main.with_checkout(&al.layout.root);
        let (sym, head, _) = checkout.try_run(&["symbolic-ref", "-q", "HEAD"], None)?;
        if sym && String::from_utf8_lossy(&head).trim() == target {
            match crate::repo::checkout::update_checkout(&al.layout, &previous, &merge) {
                Ok(()) => checkout_note = " and updated the main checkout".into(),
                Err(e) => {
                    checkout_note = format!(
                        "; the main checkout could not be updated ({e}): run `git status` there and `git reset --keep HEAD` to match the branch"
                    )
                }
            }
        }
    }
    let mut run = al.store.get(&intent.run)?;
    if op == "rollback" {
        if run.state == State::Promoted {
            run.state = State::RolledBack;
            al.transition(
                &run,
                State::Promoted,
                "rollback",
                json!({"reason": intent.data["reason"], "class": run.class, "target": target,
                       "previous": previous, "revert": merge, "recovered": true}),
            )?;
        }
        return Ok(format!(
            "an interrupted `airlock rollback {0}` had moved {target} to {1}; recorded the rollback{checkout_note}. Run `airlock rollback {0} --actions-only --reason …` to run its compensations.",
            intent.run,
            &merge[..12.min(merge.len())]
        ));
    }
    if run.state == State::Approved {
        // The soak the interrupted promotion decided on keeps its
        // production actions held; one that cannot be read stops here
        // rather than release them.
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
            strategy: "finished by recovery after an interruption".into(),
            regated: vec![],
            at: now(),
            soak,
        });
        let mut event = json!({"target": run.target, "previous": previous, "merge": merge, "recovered": true,
               "undo": crate::promote::undo_record(al, &intent.run, &merge)?});
        if let Some(plan) = &run.promotion.as_ref().and_then(|p| p.soak.clone()) {
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
    Ok(format!(
        "an interrupted `airlock promote {}` had moved {target} to {}; recorded the promotion{checkout_note}.{actions}",
        intent.run,
        &merge[..12.min(merge.len())]
    ))
}
