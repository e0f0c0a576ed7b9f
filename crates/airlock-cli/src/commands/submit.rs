use serde_json::json;

use airlock_core::Result;
use airlock_core::submit::submit;

use super::Ctx;
use crate::render::{Output, short};

#[derive(clap::Args)]
pub struct Args {
    /// The run.
    pub(super) run: String,
}

pub fn run(ctx: &Ctx, args: Args) -> Result<Output> {
    let mut al = ctx.open()?;
    let s = submit(&mut al, &args.run, &airlock_effects::Live)?;
    let airlock = airlock_core::git::airlock_identity().to_string();
    if s.author.as_deref() == Some(airlock.as_str()) {
        crate::render::warn(&format!(
            "no git identity is configured, so the commit is authored by {airlock}; set yours with `git config --global user.name NAME` and `git config --global user.email ADDRESS`"
        ));
    }
    let human = format!(
        "submitted run {} (round {})\n  commit: {}\n  proof:  {}\n  digest: sha256:{}\nthe run is in the review queue: `airlock show {}`, then `airlock approve {}`",
        args.run,
        s.round,
        short(&s.head),
        s.proof.display(),
        s.digest,
        args.run,
        args.run
    );
    Ok(Output::new(
        json!({"run": args.run, "state": "in_review", "round": s.round, "head": s.head, "tree": s.tree,
               "proof": s.proof, "signature": format!("{}.sig", s.proof.display()), "digest": s.digest, "author": s.author}),
        human,
    ))
}
