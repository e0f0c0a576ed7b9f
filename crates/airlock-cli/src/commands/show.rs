use serde_json::{Value, json};

use airlock_core::action::{Action, ActionState, Role};
use airlock_core::decide::{Decision, History};
use airlock_core::git;
use airlock_core::proof::verify_run;
use airlock_core::run::{Run, State};
use airlock_core::{Error, Result};

use super::Ctx;
use crate::render::{Output, clean, escape, one_line, short};

#[derive(clap::Args)]
pub struct Args {
    /// The run.
    pub(super) run: String,
    /// Leave out the full diff (the stat stays).
    #[arg(long)]
    no_diff: bool,
    /// What changed since round N was submitted: the diff from that round's
    /// commit to the run's current one, and the traces of later rounds.
    #[arg(long, value_name = "N")]
    since_round: Option<u32>,
}

pub fn run(ctx: &Ctx, args: Args) -> Result<Output> {
    let al = ctx.open()?;
    let run = al.store.get(&args.run)?;
    let main = al.layout.git();
    let history = airlock_core::decide::history(&al, &run.id)?;
    // The diff's base: the run's start, or the commit of an earlier round.
    let from = match args.since_round {
        None => run.base.clone(),
        Some(n) => since_commit(&run, &history, n)?,
    };
    // The diff a reviewer decides on: the submitted commit, or the worktree as it is now.
    // With `--since-round`, the current round's work: a submission of an
    // earlier round is what is compared against, not what is shown.
    let submission = run
        .submission
        .as_ref()
        .filter(|s| args.since_round.is_none() || s.round == run.round);
    let (head, head_label) = match submission {
        Some(s) => (s.head.clone(), format!("commit {}", short(&s.head))),
        // Within the run's quotas (a snapshot stores the worktree's files);
        // past them, or without a workflow that sets them, the run is
        // shown without its diff, and why.
        None => match al
            .workflow_for(&run)
            .and_then(|w| airlock_core::quota::snapshot(&al.layout, &run.id, &w.sandbox))
        {
            Ok(tree) => (tree, "worktree (not submitted)".to_string()),
            Err(airlock_core::Error::Refused(refusal)) => (
                run.base.clone(),
                format!("worktree not shown: {}", refusal.what),
            ),
            Err(
                e @ (airlock_core::Error::InvalidToml { .. } | airlock_core::Error::NoWorkflow(_)),
            ) => (run.base.clone(), format!("worktree not shown: {e}")),
            Err(e) => return Err(e),
        },
    };
    let stat = git::numstat(&main, &from, &head)?;
    let patch = git::patch(&main, &from, &head)?;
    let flags = airlock_core::decide::risk_flags(&al, &run, &history)?;
    let mut traces = al.store.traces(&run.id)?;
    if let Some(n) = args.since_round {
        traces.retain(|t| t.round > n);
    }
    let brief_text =
        std::fs::read_to_string(al.layout.run_dir(&run.id).join("brief.toml")).unwrap_or_default();
    let proof: Value = match &run.submission {
        Some(s) => match verify_run(&al, &run, None) {
            Ok(report) => {
                json!({"path": s.proof, "digest": s.digest, "verified": report.ok(), "checks": report.checks})
            }
            Err(e) => {
                json!({"path": s.proof, "digest": s.digest, "verified": false, "error": e.to_string()})
            }
        },
        None => Value::Null,
    };
    let check = run.check.as_ref().map(|c| &c.report);

    let mut h = format!("run {}  [{}]  round {}\n", run.id, run.state, run.round);
    h += &format!("  {}\n", clean(&run.label));
    h += &format!("  class {}, lane {}\n", run.class, run.lane);
    h += &format!(
        "  ref {} from {} -> target {}\n",
        run.main_ref(),
        short(&run.base),
        run.target
    );
    h += &format!("  worktree {}\n", run.worktree.display());
    let actions = airlock_core::action::plan::list(&al, &run.id)?;
    h += &format!("  next: {}\n", next_step(&run, &actions));
    if !flags.is_empty() {
        h += "\nrisk flags (weigh these before approving):\n";
        for f in &flags {
            h += &format!("  ! {:<22} {}\n", f.code, escape(&f.message));
        }
    }
    h += "\ndecisions:\n";
    if history.decisions.is_empty() {
        h += "  (none)\n";
    }
    for d in &history.decisions {
        h += &render_decision(d);
    }
    h += "\nbrief:\n";
    for line in clean(&brief_text).lines() {
        h += &format!("  | {line}\n");
    }
    match args.since_round {
        None => h += &format!("\ndiff stat ({head_label}):\n"),
        Some(n) => {
            h += &format!(
                "\ndiff stat since round {n} (commit {} -> {head_label}):\n",
                short(&from)
            )
        }
    }
    if stat.is_empty() {
        h += "  (no changes)\n";
    }
    for c in &stat {
        match c.lines {
            Some((a, d)) => h += &format!("  {:>5} +{:<5} -{:<5} {}\n", "", a, d, escape(&c.path)),
            None => h += &format!("  {:>5} binary        {}\n", "", escape(&c.path)),
        }
    }
    match check {
        Some(report) => {
            h += &format!(
                "\ncheck (round {}): {}\n",
                report.round,
                if report.passed { "passed" } else { "FAILED" }
            );
            h += &crate::commands::check::render(report);
            h.push('\n');
        }
        None => h += "\ncheck: not run in this round\n",
    }
    match args.since_round {
        None => h += "\ntraces:\n",
        Some(n) => h += &format!("\ntraces after round {n}:\n"),
    }
    if traces.is_empty() {
        h += "  (none)\n";
    }
    for t in &traces {
        h += &format!(
            "  #{:<3} r{} {:<14} {} -> {} in {} ms; stdout {} B, stderr {} B",
            t.n,
            t.round,
            t.origin,
            one_line(&shell_words(&t.argv), 80),
            t.exit.description,
            t.duration_ms,
            t.stdout.size,
            t.stderr.size
        );
        if !t.files_changed.is_empty() {
            h += &format!(
                "; changed {}",
                t.files_changed
                    .iter()
                    .map(|f| format!("{} {}", f.status, escape(&f.path)))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        h.push('\n');
        if t.confinement != "confined" && !t.confinement.is_empty() {
            h += &format!("         sandbox: {}\n", t.confinement);
        }
        if t.network {
            h += "         network: granted\n";
        }
        if let Some(limit) = &t.limit_hit {
            h += &format!("         LIMIT HIT: {limit}\n");
        }
        for denial in &t.denials {
            h += &format!("         denied: {}\n", one_line(denial, 160));
        }
    }
    h += "\nactions (side effects, performed only at promotion):\n";
    if actions.is_empty() {
        h += "  (none)\n";
    }
    for a in &actions {
        h += &crate::commands::plan::render_action(a, run.submission.as_ref().map(|s| s.round));
    }
    h += "\nproof:\n";
    match &run.submission {
        None => h += "  none yet (made by `airlock submit`)\n",
        Some(s) => {
            h += &format!("  {}\n  digest sha256:{}\n", s.proof.display(), s.digest);
            if proof["verified"] == json!(true) {
                h += "  verified: signatures, envelope index, commit, tree, diff and brief digests\n";
            } else {
                h += &format!(
                    "  DOES NOT VERIFY: {}\n",
                    proof
                        .get("error")
                        .and_then(Value::as_str)
                        .map(str::to_string)
                        .unwrap_or_else(|| failing(&proof))
                );
            }
        }
    }
    if let Some(a) = &run.approval {
        h += &format!("  approved for sha256:{} at {}\n", short(&a.digest), a.at);
    }
    if let Some(p) = &run.promotion {
        h += &format!(
            "  promoted into {} as {} ({})\n",
            p.target,
            short(&p.merge),
            p.strategy
        );
    }
    if run.state == State::RolledBack
        && let Some(d) = history
            .decisions
            .iter()
            .rev()
            .find(|d| d.kind == "rollback")
    {
        h += &format!(
            "  rolled back by revert commit {} at {}: {}\n",
            d.commit.as_deref().map(short).unwrap_or("?"),
            d.at,
            escape(d.reason.as_deref().unwrap_or(""))
        );
    }
    if !args.no_diff && !patch.is_empty() {
        h += "\ndiff:\n";
        h += &clean(&patch);
    }

    let data = json!({
        "run": run.id, "state": run.state, "round": run.round, "label": run.label, "class": run.class,
        "lane": run.lane, "base": run.base, "next": next_step(&run, &actions),
        "risk_flags": flags, "decisions": history.decisions,
        "feedback": history.feedback().and_then(|d| d.reason.clone()),
        "since_round": args.since_round, "diff_from": from, "branch": run.branch, "target": run.target,
        "worktree": run.worktree, "head": head, "brief": brief_text,
        "diff": {"stat": stat.iter().map(|c| json!({"path": c.path, "added": c.lines.map(|l| l.0), "deleted": c.lines.map(|l| l.1), "binary": c.lines.is_none()})).collect::<Vec<_>>(),
                 "patch": patch},
        "gates": check.map(|c| json!(c.gates)).unwrap_or(json!([])),
        "stop_conditions": check.map(|c| json!(c.stops)).unwrap_or(json!([])),
        "check": check,
        "traces": traces,
        "actions": crate::commands::plan::actions_json(&actions, run.submission.as_ref().map(|s| s.round)),
        "rollback": history.decisions.iter().rev().find(|d| d.kind == "rollback"),
        "proof": proof,
        "approval": run.approval,
        "promotion": run.promotion,
    });
    Ok(Output::new(data, h).hostile().paged())
}

/// The commit round `n` was submitted as, or why there is none to compare with.
fn since_commit(run: &Run, history: &History, n: u32) -> Result<String> {
    let submitted: Vec<String> = history
        .submissions
        .iter()
        .map(|(r, _)| r.to_string())
        .collect();
    if n >= run.round {
        return Err(Error::Invalid(format!(
            "`--since-round {n}`: run {} is in round {}, so there is no later round to compare round {n} with; give an earlier round ({})",
            run.id,
            run.round,
            if submitted.is_empty() {
                "none was submitted yet".to_string()
            } else {
                format!("submitted: {}", submitted.join(", "))
            }
        )));
    }
    history.submitted_in(n).map(str::to_string).ok_or_else(|| {
        Error::Invalid(format!(
            "`--since-round {n}`: round {n} of run {} was never submitted, so it has no commit to compare with ({})",
            run.id,
            if submitted.is_empty() { "no round was submitted yet".to_string() } else { format!("submitted rounds: {}", submitted.join(", ")) }
        ))
    })
}

/// What moves the run on; a rolled-back run whose compensations are all
/// settled has nothing left to do.
fn next_step(run: &Run, actions: &[Action]) -> String {
    if run.state == State::RolledBack
        && actions
            .iter()
            .filter(|a| a.role == Role::Undo)
            .all(|a| matches!(a.state, ActionState::Done | ActionState::Skipped))
    {
        return "nothing: the run was rolled back and every compensation is done".into();
    }
    run.state.next_step(&run.id)
}

/// One decision: when, what, which round, who, and the reason whole, each
/// line escaped (a reason quotes text the agent wrote).
fn render_decision(d: &Decision) -> String {
    let mut h = format!("  {} {:<8} round {}", d.at, d.kind, d.round);
    if let Some(by) = &d.by {
        h += &format!(" by {}", escape(by));
    }
    if let Some(commit) = &d.commit {
        h += &format!(
            " ({} {})",
            if d.kind == "rollback" {
                "revert"
            } else {
                "merge"
            },
            short(commit)
        );
    }
    match d.reason.as_deref().filter(|r| !r.trim().is_empty()) {
        None => h += "\n",
        Some(reason) => {
            h += ":\n";
            for line in reason.lines() {
                h += &format!("      | {}\n", escape(line));
            }
        }
    }
    h
}

fn failing(proof: &Value) -> String {
    proof["checks"]
        .as_array()
        .map(|checks| {
            checks
                .iter()
                .filter(|c| c["ok"] == json!(false))
                .map(|c| {
                    format!(
                        "{}: {}",
                        c["name"].as_str().unwrap_or(""),
                        c["detail"].as_str().unwrap_or("")
                    )
                })
                .collect::<Vec<_>>()
                .join("; ")
        })
        .unwrap_or_default()
}

pub(crate) fn shell_words(argv: &[String]) -> String {
    argv.iter()
        .map(|a| {
            if !a.is_empty()
                && a.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@".contains(c))
            {
                a.clone()
            } else {
                format!("'{}'", a.replace('\'', "'\\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}
