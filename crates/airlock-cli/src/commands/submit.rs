use std::path::PathBuf;

use airlock_core::Result;
use airlock_core::run::State;
use airlock_core::submit::submit;

use super::Ctx;
use crate::render::{Output, Report, short};

#[derive(clap::Args)]
pub struct Args {
    /// The run.
    pub(super) run: String,
}

pub fn run(ctx: &Ctx, args: Args) -> Result<Output> {
    let mut al = ctx.open()?;
    let s = submit(
        &mut al,
        &args.run,
        &airlock_mcp_proxy::WithMcp(airlock_effects::Live),
    )?;
    let airlock = airlock_core::git::airlock_identity().to_string();
    if s.author.as_deref() == Some(airlock.as_str()) {
        crate::render::warn(&format!(
            "no git identity is configured, so the commit is authored by {airlock}; set yours with `git config --global user.name NAME` and `git config --global user.email ADDRESS`"
        ));
    }
    Ok(Output::report(&Submitted {
        signature: format!("{}.sig", s.proof.display()),
        run: args.run,
        state: State::InReview,
        round: s.round,
        head: s.head,
        tree: s.tree,
        proof: s.proof,
        digest: s.digest,
        author: s.author,
    }))
}

/// `airlock submit`: the commit, the signed proof and its digest.
#[derive(serde::Serialize)]
struct Submitted {
    run: String,
    state: State,
    round: u32,
    head: String,
    tree: String,
    proof: PathBuf,
    signature: String,
    digest: String,
    author: Option<String>,
}

impl Report for Submitted {
    fn human(&self) -> String {
        format!(
            "submitted run {} (round {})\n  commit: {}\n  proof:  {}\n  digest: sha256:{}\nthe run is in the review queue: `airlock show {}`, then `airlock approve {}`",
            self.run,
            self.round,
            short(&self.head),
            self.proof.display(),
            self.digest,
            self.run,
            self.run
        )
    }
}
