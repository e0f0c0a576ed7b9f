use std::path::PathBuf;

use airlock_core::Result;
use airlock_core::decide::redirect;
use airlock_core::run::State;

use super::Ctx;
use crate::render::{Output, Report};

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
    Ok(Output::report(&Redirected {
        run: run.id,
        state: run.state,
        round: run.round,
        reason: args.reason,
        worktree: run.worktree,
    }))
}

/// `airlock redirect`: the run, its state and the round that begins.
#[derive(serde::Serialize)]
struct Redirected {
    run: String,
    state: State,
    round: u32,
    reason: Option<String>,
    #[serde(skip)]
    worktree: PathBuf,
}

impl Report for Redirected {
    fn human(&self) -> String {
        format!(
            "redirected run {}: round {} begins in the same worktree\n  {}\n  the run's commands find your reason in the file $AIRLOCK_FEEDBACK\nnext: the agent works, then `airlock check {}`",
            self.run,
            self.round,
            self.worktree.display(),
            self.run
        )
    }
}
