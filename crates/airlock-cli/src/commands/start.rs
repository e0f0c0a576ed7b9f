use std::path::PathBuf;

use serde_json::json;

use airlock_core::Result;
use airlock_core::start::{StartOptions, start};

use super::Ctx;
use crate::render::Output;

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
    let human = format!(
        "started run {}\n  worktree: {}\n  ref:      {} (from {})\n  target:   {}\n  state:    {}\nnext: work in the worktree, e.g. `airlock exec {} -- <agent or command>`, then `airlock check {}`",
        run.id,
        run.worktree.display(),
        run.main_ref(),
        crate::render::short(&run.base),
        run.target,
        run.state,
        run.id,
        run.id
    );
    Ok(Output::new(
        json!({"run": run.id, "worktree": run.worktree, "branch": run.branch, "ref": run.main_ref(),
               "state": run.state, "base": run.base, "target": run.target, "lane": run.lane, "class": run.class}),
        human,
    ))
}
