use std::path::PathBuf;

use airlock_core::layout::Layout;
use airlock_core::ledger_audit::{Acceptance, Audit, accept_loss, audit};
use airlock_core::{Airlock, Result};

use super::Ctx;
use crate::render::{Output, Report, short};

#[derive(clap::Subcommand)]
pub enum Command {
    /// Check the hash chain, that the ledger is not older than its signed head record, and
    /// every proof's ledger anchor; report the first edited, removed or reordered event.
    Verify {
        /// Team mode: check the whole database against the sealed log's signed checkpoints on
        /// the team's remote (every chain recomputed, every leaf, the root), naming each problem.
        #[arg(long)]
        remote: bool,
    },
    /// Team mode: seal the chains that moved into the log and push a checkpoint, signed by
    /// this machine's key, to `refs/airlock/log` on the team's remote.
    Seal,
    /// Record that the ledger as it is now is the one airlock continues from, after its
    /// newest events were lost for good (a signed, ledgered decision).
    AcceptLoss {
        /// Why the lost events cannot be restored (recorded in the ledger).
        #[arg(long)]
        reason: Option<String>,
    },
}

pub fn run(ctx: &Ctx, cmd: Command) -> Result<Output> {
    // Both read a ledger that may be older than its record: opened without
    // the check (and without recovery, which would write to it).
    let mut al = Airlock::open_unverified(Layout::discover(&ctx.cwd)?)?;
    match cmd {
        Command::Verify { remote: false } => verify(&mut al),
        Command::Verify { remote: true } => verify_remote(&al),
        Command::Seal => Ok(Output::report(&SealDone(airlock_core::seal::seal(
            &mut al,
        )?))),
        Command::AcceptLoss { reason } => accept(&mut al, reason.as_deref()),
    }
}

fn verify(al: &mut Airlock) -> Result<Output> {
    let report = audit(al)?;
    Ok(Output::report(&Verified {
        report,
        db: al.layout.db_path(),
    }))
}

/// `airlock ledger verify`: the chain, the head record and every proof's
/// anchor; what to do when one fails.
#[derive(serde::Serialize)]
#[serde(transparent)]
struct Verified {
    report: Audit,
    #[serde(skip)]
    db: PathBuf,
}

impl Report for Verified {
    fn exit_code(&self) -> u8 {
        if self.report.ok() { 0 } else { 1 }
    }

    fn human(&self) -> String {
        let report = &self.report;
        let db = &self.db;
        let mut human = String::new();
        if report.ok() {
            human += &format!(
                "ledger verifies: {} events, head {}",
                report.chain.events,
                report.chain.head.as_deref().map(short).unwrap_or("(empty)")
            );
            human += &match &report.head_record.record {
                Some(r) => format!("\n  reaches its signed head record: event {}", r.seq),
                None => format!(
                    "\n  no head record yet at {} (written at the next decision)",
                    report.head_record.path.display()
                ),
            };
            let anchored = report.anchors.iter().filter(|a| a.ok).count();
            human += &format!("\n  holds the anchors of {anchored} proof(s)");
            for a in report.anchors.iter().filter(|a| a.accepted) {
                human += &format!("\n  {}: {}", a.proof.display(), a.detail);
            }
            for a in report.anchors.iter().filter(|a| !a.witness) {
                human += &format!("\n  no witness: {}: {}", a.proof.display(), a.detail);
            }
            return human;
        }
        let mut hint = format!(
            "restore {} from a backup; airlock never rewrites events",
            db.display()
        );
        if let Some(bad) = &report.chain.first_bad {
            human += &format!(
                "ledger does NOT verify: {}\n  {} events read; every event from {} on is untrusted",
                bad.problem, report.chain.events, bad.seq
            );
            if let Some(problem) = &report.head_record.problem {
                human += &format!("\n  also: {problem}");
            }
        } else {
            human += &format!(
                "ledger does NOT verify: {}",
                report
                    .head_record
                    .problem
                    .as_deref()
                    .unwrap_or("it does not hold every proof's ledger anchor")
            );
            for reason in &report.head_record.reasons {
                human += &format!("\n  {reason}");
            }
            hint = format!(
                "restore the newest copy of {} together with its -wal file; if the missing events are lost for good, `airlock ledger accept-loss --reason …` records the loss and continues from this ledger",
                db.display()
            );
        }
        for a in report
            .anchors
            .iter()
            .filter(|a| a.witness && !a.ok && !a.accepted)
        {
            human += &format!("\n  proof {}: {}", a.proof.display(), a.detail);
        }
        human += &format!("\n  hint: {hint}");
        human
    }
}

fn verify_remote(al: &Airlock) -> Result<Output> {
    Ok(Output::report(&RemoteVerified(
        airlock_core::seal::audit_remote(al)?,
    )))
}

/// `airlock ledger verify --remote`: the database against the checkpoints.
#[derive(serde::Serialize)]
#[serde(transparent)]
struct RemoteVerified(airlock_core::seal::RemoteAudit);

impl Report for RemoteVerified {
    fn exit_code(&self) -> u8 {
        if self.0.ok() { 0 } else { 1 }
    }

    fn human(&self) -> String {
        let a = &self.0;
        let checkpoint = match &a.checkpoint {
            Some(c) => format!(
                "checkpoint {} of {} leaves, signed by {}",
                short(&c.commit),
                c.size,
                c.principal
            ),
            None => "no checkpoint on the remote yet".to_string(),
        };
        if a.ok() {
            return format!(
                "the ledger agrees with the sealed log: {checkpoint}\n  {} chains, {} leaves, {} chain(s) with events not sealed yet",
                a.chains, a.leaves, a.unsealed_chains
            );
        }
        let mut human = format!(
            "the ledger does NOT agree with the sealed log ({checkpoint}): {} problem(s)",
            a.problems.len()
        );
        for p in &a.problems {
            human += &format!("\n  - {p}");
        }
        human += "\n  hint: do not trust this database; restore it from a backup that agrees with the checkpoints";
        human
    }
}

/// `airlock ledger seal`.
#[derive(serde::Serialize)]
#[serde(transparent)]
struct SealDone(airlock_core::seal::Sealed);

impl Report for SealDone {
    fn human(&self) -> String {
        let s = &self.0;
        format!(
            "{} checkpoint {} of {} leaves (signed by {}), root {}",
            if s.pushed {
                "pushed"
            } else {
                "already covered by"
            },
            short(&s.checkpoint.commit),
            s.checkpoint.size,
            s.checkpoint.principal,
            short(&s.checkpoint.root)
        )
    }
}

fn accept(al: &mut Airlock, reason: Option<&str>) -> Result<Output> {
    Ok(Output::report(&accept_loss(al, reason)?))
}

/// `airlock ledger accept-loss`: the event that records the loss, and what
/// the lost events said.
impl Report for Acceptance {
    fn human(&self) -> String {
        let done = self;
        let mut human = format!(
            "recorded the loss as event {} ({}); the ledger continues from here\n",
            done.seq,
            short(&done.hash)
        );
        if let Some(r) = &done.replaced {
            human += &format!(
                "  replaced the head record of event {} ({})\n",
                r.seq,
                short(&r.hash)
            );
        }
        for a in &done.lost_anchors {
            human += &format!("  lost: the anchor of {}\n", a.proof.display());
        }
        if !done.runs_to_check.is_empty() {
            human += "  what the lost events said of these runs is gone; check the target branch and the actions' endpoints before promoting or rolling them back:\n";
            for r in &done.runs_to_check {
                human += &format!("    {} ({} in this ledger)\n", r.run, r.state);
            }
        }
        human.trim_end().to_string()
    }
}
