use airlock_core::Result;
use airlock_core::decide::approve_signed;
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
    /// The SSH key that signs the approval when the target branch has `.airlock/reviewers`:
    /// a private key file, or a public key whose private half is in ssh-agent (default:
    /// git's user.signingkey when gpg.format is ssh).
    #[arg(long, value_name = "PATH")]
    key: Option<std::path::PathBuf>,
}

pub fn run(ctx: &Ctx, args: Args) -> Result<Output> {
    let mut al = ctx.open()?;
    let key = args
        .key
        .clone()
        .or_else(|| airlock_core::approvals::default_key(&al));
    let approved = approve_signed(
        &mut al,
        &args.run,
        args.reason.as_deref(),
        args.digest.as_deref(),
        None,
        key.as_deref(),
    )?;
    let run = approved.run;
    let digest = run
        .submission
        .as_ref()
        .map(|s| s.digest.clone())
        .unwrap_or_default();
    let (principal, missing) = match &approved.standing {
        Some(s) => (s.approvals.last().map(|a| a.principal.clone()), s.missing()),
        None => (None, Vec::new()),
    };
    Ok(Output::report(&Approved {
        run: run.id,
        state: run.state,
        digest,
        reason: args.reason,
        principal,
        missing,
    })
    .hostile())
}

/// `airlock approve`: the run, its state now, the proof it is approved for.
#[derive(serde::Serialize)]
struct Approved {
    run: String,
    state: State,
    digest: String,
    reason: Option<String>,
    /// Team mode: who signed.
    #[serde(skip_serializing_if = "Option::is_none")]
    principal: Option<String>,
    /// Team mode: the owners' rules not met yet (the run stays in review).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    missing: Vec<String>,
}

impl Report for Approved {
    fn human(&self) -> String {
        let signed = match &self.principal {
            Some(p) => format!(" (signed by {p})"),
            None => String::new(),
        };
        if self.state == State::InReview {
            let mut out = format!(
                "recorded the approval of run {}{signed} for proof sha256:{}; it stays in review:\n",
                self.run,
                short(&self.digest)
            );
            for m in &self.missing {
                out.push_str(&format!("  missing: {m}\n"));
            }
            out.push_str(&format!(
                "next: the owners named approve with `airlock approve {} --key PATH`",
                self.run
            ));
            return out;
        }
        format!(
            "approved run {}{signed} for proof sha256:{}\nnext: `airlock promote {}`",
            self.run,
            short(&self.digest),
            self.run
        )
    }
}
