use airlock_core::Result;
use airlock_core::action::apply::ApplyReport;
use airlock_core::promote::promote_with;

use super::Ctx;
use crate::render::{Output, escape, short};

#[derive(clap::Args)]
pub struct Args {
    /// The run.
    pub(super) run: String,
    /// The run is merged already: apply the approved actions that remain.
    #[arg(long)]
    actions_only: bool,
}

pub fn run(ctx: &Ctx, args: Args) -> Result<Output> {
    let mut al = ctx.open()?;
    // Gates run again only when the target moved; they can take a while.
    let mut progress = crate::progress::Progress::new(ctx.json, false);
    let report = promote_with(
        &mut al,
        &args.run,
        &airlock_effects::Live,
        args.actions_only,
        &mut |e| progress.event(e),
    )?;
    drop(progress);
    let mut human = if args.actions_only {
        format!("run {} is merged into {}\n", report.run, report.target)
    } else {
        format!(
            "promoted run {} into {}: {} -> {}\n  {}\n",
            report.run,
            report.target,
            short(&report.previous),
            short(&report.merge),
            report.strategy
        )
    };
    if report.checkout_updated {
        human += &format!(
            "  updated the main checkout ({} is checked out)\n",
            report.target
        );
    }
    human += &render_actions(&report.actions, "actions");
    human += &format!(
        "  undo: airlock rollback {} --reason …  (reverts {})",
        report.run,
        short(&report.merge)
    );
    let code = if report.actions.complete { 0 } else { 1 };
    Ok(Output::new(&report, human).code(code))
}

/// What happened to each action, and why applying stopped.
pub fn render_actions(report: &ApplyReport, what: &str) -> String {
    if report.actions.is_empty() && report.stopped.is_none() {
        return String::new();
    }
    let mut h = format!("  {what}:\n");
    for a in &report.actions {
        h += &format!(
            "    {} ({}): {}{}: {}\n",
            escape(&a.name),
            a.kind,
            a.state.as_str(),
            if a.recovered {
                " (after an interrupted attempt)"
            } else {
                ""
            },
            escape(&a.summary)
        );
    }
    if let Some(stopped) = &report.stopped {
        h += &format!("  stopped: {}\n", escape(stopped));
    }
    h
}
