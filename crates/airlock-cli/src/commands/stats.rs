//! `airlock stats`: each class's promotion record, read from the ledger.

use std::time::{Duration, SystemTime};

use airlock_core::Result;
use airlock_core::stats::{ClassStats, Median, Rate, Stats, since, stats};
use airlock_core::store::history::StepFilter;

use super::Ctx;
use crate::render::{Output, Report, clean};

#[derive(clap::Args)]
pub struct Args {
    /// Only this class of work.
    #[arg(long, value_name = "CLASS")]
    class: Option<String>,
    /// Only runs started since: a date (`2026-12-01`), a time (RFC 3339) or a duration back from now (`30d`).
    #[arg(long, value_name = "WHEN")]
    since: Option<String>,
}

pub fn run(ctx: &Ctx, args: Args) -> Result<Output> {
    let since = args
        .since
        .as_deref()
        .map(|s| since(s, SystemTime::now()))
        .transpose()?;
    let al = ctx.open()?;
    let filter = StepFilter {
        since,
        class: args.class,
    };
    Ok(Output::report(&Shown(stats(al.store.as_ref(), &filter)?)).hostile())
}

#[derive(serde::Serialize)]
#[serde(transparent)]
struct Shown(Stats);

/// `90% (9 of 10 reviewed)`; `- (0 reviewed)` with no sample.
pub fn rate(r: &Rate, of_what: &str) -> String {
    match r.rate {
        Some(rate) => format!(
            "{}% ({} of {} {of_what})",
            (rate * 100.0).round(),
            r.count,
            r.of
        ),
        None => format!("- (0 {of_what})"),
    }
}

/// `median 3m 2s (of 12 decisions)`.
fn median(m: &Median) -> String {
    match m.median_ms {
        Some(ms) => format!(
            "median {} (of {} decision{})",
            humantime::format_duration(Duration::from_secs(ms / 1000)),
            m.of,
            if m.of == 1 { "" } else { "s" }
        ),
        None => "- (no decisions yet)".into(),
    }
}

pub fn class_lines(c: &ClassStats) -> String {
    let mut out = String::new();
    let mut line = |label: &str, value: String| out += &format!("  {label:<17} {value}\n");
    line("clean pass rate", rate(&c.clean, "reviewed"));
    line(
        "rework rounds",
        format!(
            "{} (in {} of {} reviewed runs)",
            c.rework_rounds, c.reworked.count, c.reworked.of
        ),
    );
    line("rejected", rate(&c.rejected, "reviewed"));
    let mut blocked = rate(&c.blocked, "runs");
    if !c.blocked_by.is_empty() {
        let by: Vec<String> = c
            .blocked_by
            .iter()
            .map(|(name, n)| format!("{} {n}", clean(name)))
            .collect();
        blocked += &format!(": {}", by.join(", "));
    }
    line("blocked", blocked);
    line("gates failed", rate(&c.gate_failed, "runs"));
    line("promoted", c.promoted.to_string());
    line("rolled back", rate(&c.rolled_back, "promoted"));
    line("time to decision", median(&c.time_to_decision));
    out
}

impl Report for Shown {
    fn human(&self) -> String {
        let s = &self.0;
        let scope = match &s.since {
            Some(t) => format!(" since {t}"),
            None => String::new(),
        };
        if s.classes.is_empty() {
            return match &s.class {
                Some(c) => format!("no runs of class `{}`{scope}", clean(c)),
                None if s.since.is_some() => format!("no runs{scope}"),
                None => "no runs yet: start one with `airlock start BRIEF.toml`".into(),
            };
        }
        let mut out = String::new();
        for c in &s.classes {
            out += &format!(
                "class {}: {} run{}{scope}\n",
                clean(&c.class),
                c.runs,
                if c.runs == 1 { "" } else { "s" }
            );
            out += &class_lines(c);
        }
        out.trim_end().to_string()
    }
}
