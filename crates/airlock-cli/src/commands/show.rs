use serde_json::{Value, json};

use airlock_core::Result;
use airlock_core::git;
use airlock_core::proof::verify_run;

use super::Ctx;
use crate::render::{Output, clean, escape, one_line, short};

#[derive(clap::Args)]
pub struct Args {
    /// The run.
    pub(super) run: String,
    /// Leave out the full diff (the stat stays).
    #[arg(long)]
    no_diff: bool,
}

pub fn run(ctx: &Ctx, args: Args) -> Result<Output> {
    let al = ctx.open()?;
    let run = al.store.get(&args.run)?;
    let main = al.layout.git();
    // The diff a reviewer decides on: the submitted commit, or the worktree as it is now.
    let (head, head_label) = match &run.submission {
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
    let stat = git::numstat(&main, &run.base, &head)?;
    let patch = git::patch(&main, &run.base, &head)?;
    let traces = al.store.traces(&run.id)?;
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
    h += &format!("  next: {}\n", run.state.next_step(&run.id));
    h += "\nbrief:\n";
    for line in clean(&brief_text).lines() {
        h += &format!("  | {line}\n");
    }
    h += &format!("\ndiff stat ({head_label}):\n");
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
    h += "\ntraces:\n";
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
    let actions = airlock_core::action::plan::list(&al, &run.id)?;
    h += "\nactions (side effects, performed only at promotion):\n";
    if actions.is_empty() {
        h += "  (none)\n";
    }
    for a in &actions {
        h += &crate::commands::plan::render_action(a);
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
    if !args.no_diff && !patch.is_empty() {
        h += "\ndiff:\n";
        h += &clean(&patch);
    }

    let data = json!({
        "run": run.id, "state": run.state, "round": run.round, "label": run.label, "class": run.class,
        "lane": run.lane, "base": run.base, "branch": run.branch, "target": run.target,
        "worktree": run.worktree, "head": head, "brief": brief_text,
        "diff": {"stat": stat.iter().map(|c| json!({"path": c.path, "added": c.lines.map(|l| l.0), "deleted": c.lines.map(|l| l.1), "binary": c.lines.is_none()})).collect::<Vec<_>>(),
                 "patch": patch},
        "gates": check.map(|c| json!(c.gates)).unwrap_or(json!([])),
        "stop_conditions": check.map(|c| json!(c.stops)).unwrap_or(json!([])),
        "check": check,
        "traces": traces,
        "actions": actions,
        "proof": proof,
        "approval": run.approval,
        "promotion": run.promotion,
    });
    Ok(Output::new(data, h).hostile())
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

fn shell_words(argv: &[String]) -> String {
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
