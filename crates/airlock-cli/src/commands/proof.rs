use std::path::PathBuf;

use airlock_core::proof::{verify_file, verify_run};
use airlock_core::proofs::PublicKey;
use airlock_core::{Error, Result};

use super::Ctx;
use crate::render::Output;

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
    let path = report.path.clone();
    let mut human = format!(
        "{}\n  sha256:{}\n  signed by {}\n",
        path.display(),
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
    human += if report.ok() {
        "the proof verifies"
    } else {
        "the proof does NOT verify"
    };
    let code = if report.ok() { 0 } else { 1 };
    Ok(Output::new(
        serde_json::json!({"verified": report.ok(), "report": report}),
        human,
    )
    .code(code)
    // A bundle handed over for checking is its signer's text: every field
    // it quotes (head, tree, digests) is escaped.
    .hostile())
}

/// Whether `proof verify`'s argument is a bundle's path rather than a run
/// id (which has neither a `/` nor a `.jsonl` end).
fn names_a_file(target: &str) -> bool {
    target.contains('/') || target.ends_with(".jsonl")
}
