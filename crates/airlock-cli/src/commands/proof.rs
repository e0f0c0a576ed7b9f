use std::path::PathBuf;

use airlock_core::proof::{ProofReport, verify_file, verify_run};
use airlock_core::proofs::PublicKey;
use airlock_core::{Error, Result};

use super::Ctx;
use crate::render::{Output, Report};

#[derive(clap::Subcommand)]
pub enum Command {
    /// Check a proof's signatures and every digest against the repository.
    Verify {
        /// A run id, or the path of a bundle: a path has a `/` in it or
        /// ends in `.jsonl` (`./FILE.intoto.jsonl`), and a run id is never
        /// looked up as a file.
        target: String,
        /// Verify with this OpenSSH public key file instead of airlock's own key.
        #[arg(long, value_name = "FILE")]
        key: Option<PathBuf>,
    },
}

pub fn run(ctx: &Ctx, cmd: Command) -> Result<Output> {
    let Command::Verify { target, key } = cmd;
    let al = ctx.open()?;
    let key = match key {
        Some(path) => {
            let text = std::fs::read_to_string(ctx.cwd.join(&path))
                .map_err(|source| Error::Read { path, source })?;
            Some(PublicKey::from_openssh(text.trim())?)
        }
        None => None,
    };
    // A run id names the run's own proof, never a file that happens to
    // bear its name; a bundle is named by a path that looks like one.
    let report = if names_a_file(&target) {
        verify_file(&al, &ctx.cwd.join(&target), key.as_ref())?
    } else {
        verify_run(&al, &al.store.get(&target)?, key.as_ref())?
    };
    Ok(Output::report(&Verified {
        verified: report.ok(),
        report,
    })
    // A bundle handed over for checking is its signer's text: every field
    // it quotes (head, tree, digests) is escaped.
    .hostile())
}

/// `airlock proof verify`: each check of the bundle, and the verdict.
#[derive(serde::Serialize)]
struct Verified {
    verified: bool,
    report: ProofReport,
}

impl Report for Verified {
    fn human(&self) -> String {
        let report = &self.report;
        let mut human = format!(
            "{}\n  sha256:{}\n  signed by {}\n",
            report.path.display(),
            report.digest,
            report.key_id
        );
        for c in &report.checks {
            human += &format!(
                "  {} {:<14} {}\n",
                if c.ok { "ok  " } else { "FAIL" },
                c.name,
                c.detail
            );
        }
        human += if self.verified {
            "the proof verifies"
        } else {
            "the proof does NOT verify"
        };
        human
    }

    fn exit_code(&self) -> u8 {
        if self.verified { 0 } else { 1 }
    }
}

/// Whether `proof verify`'s argument is a bundle's path rather than a run
/// id (which has neither a `/` nor a `.jsonl` end).
fn names_a_file(target: &str) -> bool {
    target.contains('/') || target.ends_with(".jsonl")
}
