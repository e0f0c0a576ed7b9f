use std::path::PathBuf;

use airlock_core::Result;
use airlock_core::release::{ChecklistItem, Included, start_release};
use airlock_core::run::State;

use super::Ctx;
use crate::render::{Output, Report, clean, short};

#[derive(clap::Args)]
pub struct Args {}

pub fn run(ctx: &Ctx, _args: Args) -> Result<Output> {
    let mut al = ctx.open()?;
    let run = start_release(&mut al)?;
    let info = run.release.clone().unwrap_or_default();
    Ok(Output::report(&ReleaseStarted {
        run: run.id,
        worktree: run.worktree,
        branch: run.branch,
        state: run.state,
        target: run.target,
        base: run.base,
        lane: run.lane,
        includes: info.includes,
        checklist: info.checklist,
    }))
}

/// `airlock release`: the release run, the runs it releases, its checklist.
#[derive(serde::Serialize)]
struct ReleaseStarted {
    run: String,
    worktree: PathBuf,
    branch: String,
    state: State,
    target: String,
    base: String,
    lane: String,
    includes: Vec<Included>,
    checklist: Vec<ChecklistItem>,
}

impl Report for ReleaseStarted {
    fn human(&self) -> String {
        let mut h = format!(
            "started release run {} from {} ({}) in lane {}\n  worktree {}\n\nreleases {} run(s):\n",
            self.run,
            self.target,
            short(&self.base),
            self.lane,
            self.worktree.display(),
            self.includes.len()
        );
        for i in &self.includes {
            h += &format!(
                "  {}  {}  merged as {}\n",
                i.run,
                clean(&i.label),
                short(&i.merge)
            );
        }
        if !self.checklist.is_empty() {
            h += "\nchecklist (checked by `airlock check`):\n";
            for c in &self.checklist {
                h += &format!(
                    "  [ ] {} (changes `{}`)\n",
                    clean(&c.item),
                    clean(&c.changed)
                );
            }
        }
        h += &format!(
            "\nnext: make the release changes in the worktree (`airlock exec {0} -- …`), add publish actions (`airlock propose {0} ACTION.toml`), then `airlock check {0}` and `airlock submit {0}`; publish actions run only when the release is approved and promoted",
            self.run
        );
        h
    }
}
