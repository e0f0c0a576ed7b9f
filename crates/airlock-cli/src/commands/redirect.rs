use serde_json::json;

use airlock_core::Result;
use airlock_core::decide::redirect;

use super::Ctx;
use crate::render::Output;

#[derive(clap::Args)]
pub struct Args {
    /// The run.
    pub(super) run: String,
    /// What the agent should do differently (recorded in the ledger).
    #[arg(long)]
    reason: Option<String>,
}

pub fn run(ctx: &Ctx, args: Args) -> Result<Output> {
    let mut al = ctx.open()?;
    let run = redirect(&mut al, &args.run, args.reason.as_deref())?;
    let human = format!(
        "redirected run {}: round {} begins in the same worktree\n  {}\n  the run's commands find your reason in the file $AIRLOCK_FEEDBACK\nnext: the agent works, then `airlock check {}`",
        run.id,
        run.round,
        run.worktree.display(),
        run.id
    );
    Ok(Output::new(
        json!({"run": run.id, "state": run.state, "round": run.round, "reason": args.reason}),
        human,
    ))
}
