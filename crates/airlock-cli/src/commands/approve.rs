use airlock_core::Result;
use airlock_core::decide::approve;
use airlock_core::run::State;

use super::Ctx;
use crate::render::{Output, Report, short};

#[derive(clap::Args)]
pub struct Args {
    /// The run.
    pub(super) run: String,
    /// Why it is approved (recorded in the ledger).
    #[arg(long)]
    reason: Option<String>,
    /// Approve only if the proof is still this one (a prefix of the digest `airlock show` printed).
    #[arg(long, value_name = "SHA256")]
    digest: Option<String>,
}

pub fn run(ctx: &Ctx, args: Args) -> Result<Output> {
    let mut al = ctx.open()?;
    let run = approve(
        &mut al,
        &args.run,
        args.reason.as_deref(),
        args.digest.as_deref(),
    )?;
    let digest = run
        .approval
        .as_ref()
        .map(|a| a.digest.clone())
        .unwrap_or_default();
    Ok(Output::report(&Approved {
        run: run.id,
        state: run.state,
        digest,
        reason: args.reason,
    }))
}

/// `airlock approve`: the run, its state now, the proof it is approved for.
#[derive(serde::Serialize)]
struct Approved {
    run: String,
    state: State,
    digest: String,
    reason: Option<String>,
}

impl Report for Approved {
    fn human(&self) -> String {
        format!(
            "approved run {} for proof sha256:{}\nnext: `airlock promote {}`",
            self.run,
            short(&self.digest),
            self.run
        )
    }
}
