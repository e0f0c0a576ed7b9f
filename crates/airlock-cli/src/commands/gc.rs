//! `airlock gc`: finished runs' worktrees, scratch files and refs removed.

use airlock_core::Result;
use airlock_core::gc::{GcOptions, GcReport, gc};
use airlock_core::run::State;

use super::Ctx;
use crate::render::{Output, Report};

#[derive(clap::Args)]
pub struct Args {
    /// Only runs that finished at least this long ago (`7d`, `12h`, `0s`).
    #[arg(long, value_name = "AGE", default_value = "7d")]
    older_than: String,
    /// Only runs in this state (repeatable): rejected, rolled_back, promoted.
    #[arg(long = "state", value_name = "STATE")]
    states: Vec<String>,
    /// Say what would be removed and how much it holds; remove nothing.
    #[arg(long)]
    dry_run: bool,
}

pub fn run(ctx: &Ctx, args: Args) -> Result<Output> {
    let older_than = humantime::parse_duration(&args.older_than).map_err(|e| {
        airlock_core::Error::Invalid(format!(
            "`--older-than {}` is not a duration ({e}): write it like `7d`, `36h` or `0s`",
            args.older_than
        ))
    })?;
    let states = args
        .states
        .iter()
        .map(|s| {
            State::parse(s).ok_or_else(|| {
                airlock_core::Error::Invalid(format!(
                    "`--state {s}` names no state: gc takes rejected, rolled_back or promoted"
                ))
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let mut al = ctx.open()?;
    let report = gc(
        &mut al,
        &GcOptions {
            older_than,
            states,
            dry_run: args.dry_run,
        },
    )?;
    Ok(Output::report(&Collected {
        report,
        older_than: args.older_than,
    })
    .hostile())
}

/// `airlock gc`: each run collected (or that would be), and what it freed.
#[derive(serde::Serialize)]
#[serde(transparent)]
struct Collected {
    report: GcReport,
    #[serde(skip)]
    older_than: String,
}

impl Report for Collected {
    fn human(&self) -> String {
        let verb = if self.report.dry_run {
            "would remove"
        } else {
            "removed"
        };
        let mut human = String::new();
        for c in &self.report.runs {
            human += &format!(
                "{verb} {} ({}, finished {}): {}{}\n",
                c.run,
                c.state,
                c.finished,
                bytes(c.bytes),
                match (&c.deleted_ref, &c.kept_ref) {
                    (Some(r), _) => format!(" and {r}"),
                    (None, Some(why)) => format!("; kept its ref: {why}"),
                    (None, None) => String::new(),
                }
            );
        }
        for d in &self.report.agent_dirs {
            human += &format!(
                "{verb} {} ({}): left by an `airlock agent` launch that was killed\n",
                d.path.display(),
                bytes(d.bytes)
            );
        }
        human += &format!(
            "{} {} run(s), {} freed{}",
            if self.report.dry_run {
                "would collect"
            } else {
                "collected"
            },
            self.report.runs.len(),
            bytes(self.report.bytes),
            if self.report.dry_run {
                "; run without --dry-run to remove them"
            } else {
                ""
            }
        );
        if self.report.too_recent > 0 {
            human += &format!(
                "\nleft {} finished run(s) younger than {} (see --older-than)",
                self.report.too_recent, self.older_than
            );
        }
        if self.report.unfinished > 0 {
            human += &format!(
                "\nleft {} run(s) that are not finished alone",
                self.report.unfinished
            );
        }
        human
    }
}

/// `49.2 MB`, `812 kB`, `0 B`.
fn bytes(n: u64) -> String {
    match n {
        0..1_000 => format!("{n} B"),
        1_000..1_000_000 => format!("{} kB", n / 1_000),
        _ => format!("{:.1} MB", n as f64 / 1e6),
    }
}
