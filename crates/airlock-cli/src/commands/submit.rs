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
               "proof": s.proof, "signature": format!("{}.sig", s.proof.display()), "digest": s.digest}),
        human,
    ))
}
