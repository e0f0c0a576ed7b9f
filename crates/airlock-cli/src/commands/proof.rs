use std::path::PathBuf;

use airlock_core::proof::verify_file;
use airlock_core::proofs::PublicKey;
use airlock_core::{Error, Result};

use super::Ctx;
use crate::render::Output;

#[derive(clap::Subcommand)]
pub enum Command {
    /// Check a proof's signatures and every digest against the repository.
    Verify {
        /// A run id, or the path of a `.intoto.jsonl` bundle.
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
    let as_file = ctx.cwd.join(&target);
    let path = if as_file.is_file() {
        as_file
    } else {
        let run = al.store.get(&target)?;
        run.submission.map(|s| s.proof).ok_or_else(|| {
            Error::Invalid(format!(
                "run {target} has no proof yet: it is made by `airlock submit {target}`"
            ))
        })?
    };
    let report = verify_file(&al, &path, key.as_ref())?;
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
    .code(code))
}
