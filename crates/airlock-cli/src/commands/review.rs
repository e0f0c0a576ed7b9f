use airlock_core::Result;
use airlock_core::inspect;

use super::Ctx;
use crate::render::{Output, Report, clean, short};

#[derive(clap::Args)]
pub struct Args {}

pub fn run(ctx: &Ctx, _args: Args) -> Result<Output> {
    let al = ctx.open()?;
    // Team mode: the queue is read only from a database that agrees with
    // the sealed log (issue 20).
    airlock_core::seal::check(&al, "review")?;
    Ok(Output::report(&Queue(inspect::queue(&al)?)).hostile())
}

/// `airlock review`: the runs waiting for a decision, oldest first
/// (gathered by the engine's `inspect::queue`).
struct Queue(inspect::Queue);

impl serde::Serialize for Queue {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

impl Report for Queue {
    fn human(&self) -> String {
        let mut human = String::new();
        if self.0.queue.is_empty() {
            human += "no runs are waiting for review";
        } else {
            human += &format!(
                "{} run(s) waiting for a decision, oldest first:\n",
                self.0.queue.len()
            );
            for r in &self.0.queue {
                human += &format!(
                    "  {:<32} round {}  submitted {}  proof {}  {}\n",
                    r.run,
                    r.round,
                    r.submitted.as_deref().unwrap_or("?"),
                    r.digest.as_deref().map(short).unwrap_or("?"),
                    clean(&r.label)
                );
                if !r.actions.is_empty() {
                    human += &format!(
                        "  {:<32} side effects on approval: {}\n",
                        "",
                        r.actions.join(", ")
                    );
                }
                if !r.risk_flags.is_empty() {
                    let mut codes: Vec<&str> = r.risk_flags.iter().map(|f| f.code).collect();
                    codes.dedup();
                    human += &format!("  {:<32} ! risk: {}\n", "", codes.join(", "));
                }
                for missing in &r.approvals_missing {
                    human += &format!("  {:<32} needs approvals: {}\n", "", clean(missing));
                }
            }
            human += "inspect one with `airlock show RUN` (risk flags are explained at its top)";
        }
        human
    }
}
