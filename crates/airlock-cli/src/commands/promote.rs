use airlock_core::Result;
use airlock_core::promote::promote;

use super::Ctx;
use crate::render::{Output, short};

#[derive(clap::Args)]
pub struct Args {
    /// The run.
    run: String,
}

pub fn run(ctx: &Ctx, args: Args) -> Result<Output> {
    let mut al = ctx.open()?;
    let report = promote(&mut al, &args.run)?;
    let mut human = format!(
        "promoted run {} into {}: {} -> {}\n  {}\n",
        report.run,
        report.target,
        short(&report.previous),
        short(&report.merge),
        report.strategy
    );
    if report.checkout_updated {
        human += &format!(
            "  updated the main checkout ({} is checked out)\n",
            report.target
        );
    }
    human += &format!("  undo: git revert -m 1 {}", short(&report.merge));
    Ok(Output::new(&report, human))
}
