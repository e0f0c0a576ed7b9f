use airlock_core::Result;
use airlock_core::action::apply::ApplyReport;
use airlock_core::promote::{PromoteReport, promote_with};

use super::Ctx;
use crate::render::{Output, Report, escape, short};

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
    let clock = airlock_core::soak::process_clock();
    let report = promote_with(
        &mut al,
        &args.run,
        &airlock_mcp_proxy::WithMcp(airlock_effects::Live),
        args.actions_only,
        clock.as_ref(),
        &mut |e| progress.event(e),
    )?;
    drop(progress);
    Ok(Output::report(&Promoted {
        report,
        actions_only: args.actions_only,
    }))
}

/// `airlock promote`: the merge, the checkout, and each action applied.
#[derive(serde::Serialize)]
#[serde(transparent)]
struct Promoted {
    report: PromoteReport,
    #[serde(skip)]
    actions_only: bool,
}

impl Report for Promoted {
    fn human(&self) -> String {
        let report = &self.report;
        let mut human = if report.to_production {
            format!(
                "promoted run {} to production (merged into {} earlier as {})\n  {}\n",
                report.run,
                report.target,
                short(&report.merge),
                report.strategy
            )
        } else if self.actions_only {
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
        if let Some(soak) = &report.soak {
            for line in crate::commands::soak::render_status(soak).lines() {
                human += &format!("  {line}\n");
            }
        }
        human += &format!(
            "  undo: airlock rollback {} --reason …  (reverts {})",
            report.run,
            short(&report.merge)
        );
        human
    }

    /// Actions left to apply: 1; production actions held by a soak are
    /// not left over, they wait.
    fn exit_code(&self) -> u8 {
        let a = &self.report.actions;
        if a.complete || (a.stopped.is_none() && !a.held.is_empty()) {
            0
        } else {
            1
        }
    }
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
