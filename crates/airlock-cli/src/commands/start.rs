use std::path::PathBuf;

use airlock_core::Result;
use airlock_core::run::State;
use airlock_core::start::{StartOptions, start};

use super::Ctx;
use crate::render::{Output, Report};

#[derive(clap::Args)]
pub struct Args {
    /// The brief (TOML) the run works to.
    brief: PathBuf,
    /// Start from this commit instead of HEAD.
    #[arg(long, value_name = "REV")]
    base: Option<String>,
}

pub fn run(ctx: &Ctx, args: Args) -> Result<Output> {
    let mut al = ctx.open()?;
    let run = start(
        &mut al,
        &StartOptions {
            brief: ctx.cwd.join(&args.brief),
            base: args.base,
            release: None,
        },
    )?;
    Ok(Output::report(&Started {
        r#ref: run.main_ref(),
        run: run.id,
        worktree: run.worktree,
        branch: run.branch,
        state: run.state,
        base: run.base,
        target: run.target,
        lane: run.lane,
        class: run.class,
    }))
}

/// `airlock start`: the new run, its worktree, ref and target.
#[derive(serde::Serialize)]
struct Started {
    run: String,
    worktree: PathBuf,
    branch: String,
    r#ref: String,
    state: State,
    base: String,
    target: String,
    lane: String,
    class: String,
}

impl Report for Started {
    fn human(&self) -> String {
        format!(
            "started run {}\n  worktree: {}\n  ref:      {} (from {})\n  target:   {}\n  state:    {}\nnext: work in the worktree, e.g. `airlock exec {} -- <agent or command>`, then `airlock check {}`",
            self.run,
            self.worktree.display(),
            self.r#ref,
            crate::render::short(&self.base),
            self.target,
            self.state,
            self.run,
            self.run
        )
    }
}
