//! `airlock gc`: finished runs' worktrees, scratch files and refs removed.

use serde_json::json;

use airlock_core::Result;
use airlock_core::gc::{GcOptions, gc};
use airlock_core::run::State;

use super::Ctx;
use crate::render::Output;

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
    let verb = if report.dry_run {
        "would remove"
    } else {
        "removed"
    };
    let mut human = String::new();
    for c in &report.runs {
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
    human += &format!(
        "{} {} run(s), {} freed{}",
        if report.dry_run {
            "would collect"
        } else {
            "collected"
        },
        report.runs.len(),
        bytes(report.bytes),
        if report.dry_run {
            "; run without --dry-run to remove them"
        } else {
            ""
        }
    );
    if report.too_recent > 0 {
        human += &format!(
            "\nleft {} finished run(s) younger than {} (see --older-than)",
            report.too_recent, args.older_than
        );
    }
    if report.unfinished > 0 {
        human += &format!(
            "\nleft {} run(s) that are not finished alone",
            report.unfinished
        );
    }
    Ok(Output::new(json!(report), human).hostile())
}

/// `49.2 MB`, `812 kB`, `0 B`.
fn bytes(n: u64) -> String {
    match n {
        0..1_000 => format!("{n} B"),
        1_000..1_000_000 => format!("{} kB", n / 1_000),
        _ => format!("{:.1} MB", n as f64 / 1e6),
    }
}
