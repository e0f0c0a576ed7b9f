use std::path::PathBuf;

use airlock_core::Result;
use airlock_core::decide::reject;
use airlock_core::run::State;

use super::Ctx;
use crate::render::{Output, Report};

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
    Ok(Output::report(&Rejected {
        run: run.id,
        state: run.state,
        reason: args.reason,
        worktree: run.worktree,
    }))
}

/// `airlock reject`: the run, its state now, and why.
#[derive(serde::Serialize)]
struct Rejected {
    run: String,
    state: State,
    reason: Option<String>,
    #[serde(skip)]
    worktree: PathBuf,
}

impl Report for Rejected {
    fn human(&self) -> String {
        format!(
            "rejected run {}; its worktree stays at {} for reference",
            self.run,
            self.worktree.display()
        )
    }
}
