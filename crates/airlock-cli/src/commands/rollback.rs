use airlock_core::Result;
use airlock_core::action::rollback::{RollbackReport, rollback};

use super::Ctx;
use super::promote::render_actions;
use crate::render::{Output, Report, short};

#[derive(clap::Args)]
pub struct Args {
    /// The run.
    pub(super) run: String,
    /// Why the change is undone (recorded in the ledger).
    #[arg(long)]
    reason: Option<String>,
    /// The revert is done: run the compensations that remain.
    #[arg(long)]
    actions_only: bool,
}

pub fn run(ctx: &Ctx, args: Args) -> Result<Output> {
    let mut al = ctx.open()?;
    let report = rollback(
        &mut al,
        &args.run,
        args.reason.as_deref(),
        args.actions_only,
        &airlock_mcp_proxy::WithMcp(airlock_effects::Live),
    )?;
    Ok(Output::report(&RolledBack {
        report,
        actions_only: args.actions_only,
    }))
}

/// `airlock rollback`: the revert, the checkout, and each compensation run.
#[derive(serde::Serialize)]
#[serde(transparent)]
struct RolledBack {
    report: RollbackReport,
    #[serde(skip)]
    actions_only: bool,
}

impl Report for RolledBack {
    fn human(&self) -> String {
        let report = &self.report;
        let mut human = match &report.revert {
            Some(revert) if !self.actions_only => format!(
                "rolled back run {} on {}{}: {} -> {} (a revert commit)\n",
                report.run,
                report.target,
                match &report.remote {
                    Some(remote) => format!(" of `{remote}` (pushed)"),
                    None => String::new(),
                },
                short(&report.previous),
                short(revert)
            ),
            _ => format!("run {} was rolled back earlier\n", report.run),
        };
        if report.checkout_updated {
            human += &format!(
                "  updated the main checkout ({} is checked out)\n",
                report.target
            );
        }
        human += &render_actions(&report.actions, "compensations");
        human
    }

    /// Compensations left to run: 1.
    fn exit_code(&self) -> u8 {
        if self.report.actions.complete { 0 } else { 1 }
    }
}
