use airlock_core::Result;

use super::Ctx;
use crate::render::Output;

#[derive(clap::Subcommand)]
pub enum Command {
    /// Check the hash chain; report the first edited, removed or reordered event.
    Verify,
}

pub fn run(ctx: &Ctx, cmd: Command) -> Result<Output> {
    let Command::Verify = cmd;
    let al = ctx.open()?;
    let report = al.store.ledger.verify()?;
    let (human, code) = match &report.first_bad {
        None => (
            format!(
                "ledger verifies: {} events, head {}",
                report.events,
                report
                    .head
                    .as_deref()
                    .map(crate::render::short)
                    .unwrap_or("(empty)")
            ),
            0,
        ),
        Some(bad) => (
            format!(
                "ledger does NOT verify: {}\n  {} events read; every event from {} on is untrusted\n  hint: restore {} from a backup; airlock never rewrites events",
                bad.problem,
                report.events,
                bad.seq,
                al.layout.db_path().display()
            ),
            1,
        ),
    };
    Ok(Output::new(&report, human).code(code))
}
