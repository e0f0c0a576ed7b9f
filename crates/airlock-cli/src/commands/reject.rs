use serde_json::json;

use airlock_core::Result;
use airlock_core::decide::reject;

use super::Ctx;
use crate::render::Output;

#[derive(clap::Args)]
pub struct Args {
    /// The run.
    pub(super) run: String,
    /// Why it is rejected (recorded in the ledger).
    #[arg(long)]
    reason: Option<String>,
}

pub fn run(ctx: &Ctx, args: Args) -> Result<Output> {
    let mut al = ctx.open()?;
    let run = reject(&mut al, &args.run, args.reason.as_deref())?;
    let human = format!(
        "rejected run {}; its worktree stays at {} for reference",
        run.id,
        run.worktree.display()
    );
    Ok(Output::new(
        json!({"run": run.id, "state": run.state, "reason": args.reason}),
        human,
    ))
}
