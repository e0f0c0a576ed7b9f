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
    /// Working offline: what this machine recorded while the database was out of reach and
    /// has not stored there yet (runs, records, since when, and whether each would flush or
    /// conflicts); `--resolve RUN` settles a run's records after an `offline-conflict`.
    Spool(SpoolArgs),
}

#[derive(clap::Args)]
#[command(group(clap::ArgGroup::new("how").args(["append", "discard"])))]
pub struct SpoolArgs {
    /// Resolve this run's records (needs `--append` or `--discard`).
    #[arg(long, value_name = "RUN", requires = "how")]
    resolve: Option<String>,
    /// Add them to the run after its head as it is now, as an offline branch that keeps
    /// their original hashes (a trace becomes a trace while the run runs commands; a
    /// `check` made offline is kept as an `offline-check` event and changes no state).
    #[arg(long, requires = "resolve")]
    append: bool,
    /// Set them aside into a file under the state directory, named with its sha256 in a
    /// ledger event with `--reason`; the run gets none of them.
    #[arg(long, requires = "resolve")]
    discard: bool,
    /// Why the records are set aside (recorded in the ledger).
    #[arg(long, requires = "discard")]
    reason: Option<String>,
}

pub fn run(ctx: &Ctx, cmd: Command) -> Result<Output> {
    if let Command::Spool(args) = cmd {
        return spool(ctx, args);
    }
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
        Command::Spool(_) => unreachable!("handled above"),
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

/// `airlock ledger spool`: the records made offline, read from this
/// machine's files (it works offline), each run's standing asked of the
/// database when it is reachable; or `--resolve`. The spool is not flushed
/// by this command's opening of the store: it shows and settles it.
fn spool(ctx: &Ctx, args: SpoolArgs) -> Result<Output> {
    use airlock_core::store::spool::{self, Resolution};
    spool::defer_flush();
    let layout = Layout::discover(&ctx.cwd)?;
    if let Some(run) = args.resolve {
        let how = if args.discard {
            Resolution::Discard {
                reason: airlock_core::guards::require_reason(
                    args.reason.as_deref(),
                    "ledger spool --discard",
                    "why the records made offline are set aside",
                )?,
            }
        } else {
            Resolution::Append
        };
        let mut al = Airlock::open_unverified(layout)?;
        airlock_core::guards::refuse_from_lane(&al, "ledger spool --resolve")?;
        let resolved = al.store.resolve_spool(&run, &how)?;
        return Ok(Output::report(&SpoolResolved(resolved)));
    }
    let summaries = spool::summaries(&layout.store_paths())?;
    let mut listed = SpoolList {
        database: "not asked",
        runs: summaries
            .into_iter()
            .map(|summary| SpoolRun {
                summary,
                conflict: None,
            })
            .collect(),
    };
    if !listed.runs.is_empty() {
        match Airlock::open_unverified(layout) {
            Ok(al) => {
                listed.database = "reachable";
                for r in &mut listed.runs {
                    r.conflict = al.store.spool_standing(&r.summary.run)?;
                }
            }
            Err(e) if airlock_core::offline::is_unreachable(&e) => {
                listed.database = "out of reach";
            }
            Err(e) => return Err(e),
        }
    }
    Ok(Output::report(&listed))
}

#[derive(serde::Serialize)]
struct SpoolList {
    /// `reachable`, `out of reach`, or `not asked` (nothing spooled).
    database: &'static str,
    runs: Vec<SpoolRun>,
}

#[derive(serde::Serialize)]
struct SpoolRun {
    #[serde(flatten)]
    summary: airlock_core::store::spool::Summary,
    /// What the run's chain is at, when the records no longer follow it.
    conflict: Option<String>,
}

impl Report for SpoolList {
    fn human(&self) -> String {
        if self.runs.is_empty() {
            return "nothing recorded offline on this machine is waiting for the database".into();
        }
        let records: usize = self.runs.iter().map(|r| r.summary.records).sum();
        let mut human = format!(
            "{records} record(s) of {} run(s) made offline on this machine, not yet in the database ({}):",
            self.runs.len(),
            self.database
        );
        for r in &self.runs {
            let s = &r.summary;
            let changes = if s.changes.is_empty() {
                String::new()
            } else {
                format!(", then {}", s.changes.join(", "))
            };
            human += &format!(
                "\n  {}: {} record(s): {} trace(s){changes}; since {}, last {}; following event {} ({})\n    kept in {}",
                s.run,
                s.records,
                s.traces,
                s.since,
                s.last,
                s.after.n,
                short(&s.after.hash),
                s.dir.display()
            );
            match &r.conflict {
                Some(c) => {
                    human += &format!(
                        "\n    CONFLICT: {}\n    resolve: `airlock ledger spool --resolve {run} --append` (an offline branch after the run's head) or `airlock ledger spool --resolve {run} --discard --reason TEXT` (set aside in a file the ledger names)",
                        crate::render::one_line(c, 300),
                        run = s.run
                    );
                }
                None if self.database == "reachable" => {
                    human += "\n    follows the run's chain: stored by the next command";
                }
                None => {}
            }
        }
        if self.database == "out of reach" {
            human += "\n  the database is out of reach: the records are stored by the first command that reaches it";
        }
        human
    }

    /// A conflict waits for the user: 1.
    fn exit_code(&self) -> u8 {
        u8::from(self.runs.iter().any(|r| r.conflict.is_some()))
    }
}

#[derive(serde::Serialize)]
#[serde(transparent)]
struct SpoolResolved(airlock_core::store::spool::Resolved);

impl Report for SpoolResolved {
    fn human(&self) -> String {
        let r = &self.0;
        let mut human = match r.how.as_str() {
            "flushed" => format!(
                "run {}: the {} record(s) made offline still followed its chain: stored as made ({} new)",
                r.run, r.records, r.stored
            ),
            "appended" => format!(
                "run {}: {} record(s) made offline added after its head as an offline branch ({} stored in the run), their original hashes kept",
                r.run, r.records, r.stored
            ),
            _ => format!(
                "run {}: {} record(s) made offline set aside ({} were already stored)",
                r.run, r.records, r.stored
            ),
        };
        if let Some(e) = &r.event {
            human += &format!("\n  recorded as event {} ({})", e.n, short(&e.hash));
        }
        if let (Some(path), Some(sha)) = (&r.set_aside, &r.sha256) {
            human += &format!("\n  kept in {} (sha256 {})", path.display(), short(sha));
        }
        human
    }
}
