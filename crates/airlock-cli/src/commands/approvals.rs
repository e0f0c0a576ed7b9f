use std::path::PathBuf;

use airlock_core::Result;
use airlock_core::hostile::{one_line, shell_words};

use super::Ctx;
use crate::render::{Output, Report};

#[derive(clap::Args)]
pub struct Args {
    /// The run.
    pub(super) run: String,
    /// Write each approval's PAE bytes (`N-PRINCIPAL.pae`), its armored SSH signature
    /// (`N-PRINCIPAL.sig`) and the target's `.airlock/reviewers` (`allowed_signers`) here.
    #[arg(long, value_name = "DIR")]
    export: Option<PathBuf>,
}

pub fn run(ctx: &Ctx, args: Args) -> Result<Output> {
    let al = ctx.open()?;
    let run = al.store.get(&args.run)?;
    let (rules, approvals) = airlock_core::approvals::list(&al, &run, args.export.as_deref())?;
    Ok(Output::report(&Approvals {
        run: run.id,
        target: run.target,
        tip: rules.as_ref().map(|r| r.tip.clone()),
        export: args.export,
        approvals,
    })
    .hostile())
}

/// `airlock approvals`: each signed approval of the run's current proof.
#[derive(serde::Serialize)]
struct Approvals {
    run: String,
    target: String,
    /// The target's tip whose rules were applied (`None`: no `.airlock/reviewers` there).
    tip: Option<String>,
    export: Option<PathBuf>,
    approvals: Vec<airlock_core::approvals::Exported>,
}

impl Report for Approvals {
    fn human(&self) -> String {
        let mut out = String::new();
        if self.tip.is_none() {
            out.push_str(&format!(
                "{} has no .airlock/reviewers: approvals of run {} are not signed\n",
                self.target, self.run
            ));
        }
        if self.approvals.is_empty() {
            out.push_str(&format!("run {} has no signed approval\n", self.run));
        }
        for a in &self.approvals {
            let verdict = match &a.problem {
                None => "verifies".to_string(),
                Some(p) => format!("does not count: {p}"),
            };
            // The principal is the envelope's word (a database writer's or a wildcard
            // key's): escaped on one line, and shell-quoted in the command to copy.
            out.push_str(&format!(
                "event {}: {} ({})\n",
                a.seq,
                one_line(&a.principal, usize::MAX),
                one_line(&verdict, usize::MAX)
            ));
            if let (Some(pae), Some(sig)) = (&a.pae, &a.sig) {
                let words = |p: &std::path::Path| p.display().to_string();
                let verify = shell_words(&[
                    "ssh-keygen".into(),
                    "-Y".into(),
                    "verify".into(),
                    "-f".into(),
                    words(&pae.with_file_name("allowed_signers")),
                    "-I".into(),
                    a.principal.clone(),
                    "-n".into(),
                    "airlock-approval".into(),
                    "-s".into(),
                    words(sig),
                ]);
                out.push_str(&format!(
                    "  {} < {}\n",
                    one_line(&verify, usize::MAX),
                    one_line(&shell_words(&[words(pae)]), usize::MAX)
                ));
            }
        }
        out.trim_end().to_string()
    }
}
