use serde_json::json;

use airlock_core::Result;
use airlock_core::release::start_release;

use super::Ctx;
use crate::render::{Output, clean, short};

#[derive(clap::Args)]
pub struct Args {}

pub fn run(ctx: &Ctx, _args: Args) -> Result<Output> {
    let mut al = ctx.open()?;
    let run = start_release(&mut al)?;
    let info = run.release.clone().unwrap_or_default();
    let mut h = format!(
        "started release run {} from {} ({}) in lane {}\n  worktree {}\n\nreleases {} run(s):\n",
        run.id,
        run.target,
        short(&run.base),
        run.lane,
        run.worktree.display(),
        info.includes.len()
    );
    for i in &info.includes {
        h += &format!(
            "  {}  {}  merged as {}\n",
            i.run,
            clean(&i.label),
            short(&i.merge)
        );
    }
    if !info.checklist.is_empty() {
        h += "\nchecklist (checked by `airlock check`):\n";
        for c in &info.checklist {
            h += &format!(
                "  [ ] {} (changes `{}`)\n",
                clean(&c.item),
                clean(&c.changed)
            );
        }
    }
    h += &format!(
        "\nnext: make the release changes in the worktree (`airlock exec {0} -- …`), add publish actions (`airlock propose {0} ACTION.toml`), then `airlock check {0}` and `airlock submit {0}`; publish actions run only when the release is approved and promoted",
        run.id
    );
    Ok(Output::new(
        json!({"run": run.id, "worktree": run.worktree, "branch": run.branch, "state": run.state,
               "target": run.target, "base": run.base, "lane": run.lane,
               "includes": info.includes, "checklist": info.checklist}),
        h,
    ))
}
