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
    let (principal, missing, rules, met) = match &approved.standing {
        Some(s) => (
            s.approvals.last().map(|a| a.principal.clone()),
            s.missing(),
            s.requirements.iter().map(RuleCount::of).collect(),
            Some(s.met()),
        ),
        None => (None, Vec::new(), Vec::new(), None),
    };
    Ok(Output::report(&Approved {
        run: run.id,
        state: run.state,
        digest,
        reason: args.reason,
        principal,
        met,
        rules,
        missing,
    })
    .hostile())
}

/// Team mode: how many of the approvals one owners' rule needs are in.
#[derive(serde::Serialize)]
struct RuleCount {
    /// The rule's pattern (`*`: paths no rule names).
    pattern: String,
    /// Its line in `.airlock/owners`; `None`: paths no rule names.
    line: Option<usize>,
    needed: usize,
    approved: usize,
    approved_by: Vec<String>,
    /// One line: "src/** (line 1): 1 of 2 approvals from … (src/app.sh)".
    describe: String,
}

impl RuleCount {
    fn of(r: &airlock_core::approvals::Requirement) -> RuleCount {
        RuleCount {
            pattern: r.pattern.clone(),
            line: r.line,
            needed: r.needed,
            approved: r.approved_by.len(),
            approved_by: r.approved_by.clone(),
            describe: r.describe(),
        }
    }
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
    /// Team mode: whether the signed approvals meet every owners' rule now.
    #[serde(skip_serializing_if = "Option::is_none")]
    met: Option<bool>,
    /// Team mode: per owners' rule governing a changed path, the approvals in.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    rules: Vec<RuleCount>,
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
        // "approved" only when the owners' counts are met: a run the panel
        // approved alone is `approved` in state, yet promote still needs them.
        if self.state == State::InReview || self.met == Some(false) {
            let stays = if self.state == State::InReview {
                "it stays in review"
            } else {
                "the owners' rules are not met yet, so `promote` refuses it"
            };
            let mut out = format!(
                "recorded the approval of run {}{signed} for proof sha256:{}; {stays}:\n",
                self.run,
                short(&self.digest)
            );
            for r in &self.rules {
                let mark = if r.approved >= r.needed {
                    "met"
                } else {
                    "missing"
                };
                out.push_str(&format!("  {mark}: {}\n", r.describe));
            }
            out.push_str(&format!(
                "next: the owners named approve with `airlock approve {} --key PATH`",
                self.run
            ));
            return out;
        }
        let mut out = format!(
            "approved run {}{signed} for proof sha256:{}\n",
            self.run,
            short(&self.digest)
        );
        for r in &self.rules {
            out.push_str(&format!("  met: {}\n", r.describe));
        }
        out.push_str(&format!("next: `airlock promote {}`", self.run));
        out
    }
}
