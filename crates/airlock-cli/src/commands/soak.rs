//! `airlock soak RUN`: probe staging for a run soaking there, and say how
//! long its soak has left.

use airlock_core::Result;
use airlock_core::soak::{SoakReport, SoakStatus, probe, process_clock};

use super::Ctx;
use crate::render::{Output, Report, escape};

#[derive(clap::Args)]
pub struct Args {
    /// The run.
    pub(super) run: String,
    /// Run this gate's probe now, due or not (default: every probe that is due).
    #[arg(long)]
    gate: Option<String>,
}

pub fn run(ctx: &Ctx, args: Args) -> Result<Output> {
    let mut al = ctx.open()?;
    let clock = process_clock();
    let report = probe(&mut al, &args.run, args.gate.as_deref(), clock.as_ref())?;
    Ok(Output::report(&Soaked(report)).hostile())
}

/// Where the soak of `run` stands, when it soaks in staging (nothing is
/// run): what `check` says of such a run.
pub fn soaking(al: &airlock_core::Airlock, run: &str) -> Result<Option<Output>> {
    let Ok(run) = al.store.get(run) else {
        return Ok(None);
    };
    if run.state != airlock_core::run::State::Promoted {
        return Ok(None);
    }
    Ok(
        airlock_core::soak::status(al, &run, process_clock().as_ref())?
            .map(|s| Output::report(&Standing(s)).hostile()),
    )
}

#[derive(serde::Serialize)]
#[serde(transparent)]
struct Standing(SoakStatus);

impl Report for Standing {
    fn human(&self) -> String {
        render_status(&self.0).trim_end().to_string()
    }

    /// A failed probe: 1.
    fn exit_code(&self) -> u8 {
        u8::from(self.0.failed.is_some())
    }
}

#[derive(serde::Serialize)]
#[serde(transparent)]
struct Soaked(SoakReport);

impl Report for Soaked {
    fn human(&self) -> String {
        let r = &self.0;
        let mut h = String::new();
        if r.ran.is_empty() {
            h += "no probe was due\n";
        }
        for p in &r.ran {
            h += &format!(
                "probe {}: {} ({}, {} ms)\n",
                p.gate,
                if p.passed { "passed" } else { "failed" },
                p.exit,
                p.duration_ms
            );
            if !p.passed {
                for line in p
                    .output
                    .lines()
                    .rev()
                    .take(20)
                    .collect::<Vec<_>>()
                    .iter()
                    .rev()
                {
                    h += &format!("  | {}\n", escape(line));
                }
            }
        }
        h += &render_status(&r.status);
        h.trim_end().to_string()
    }

    /// A failed probe: 1.
    fn exit_code(&self) -> u8 {
        u8::from(self.0.status.failed.is_some())
    }
}

/// The soak's summary line, each gate, and what to do next.
pub fn render_status(s: &SoakStatus) -> String {
    let mut h = format!("{}\n", s.summary);
    h += &format!("  entered staging {}, soak ends {}\n", s.entered, s.ends);
    for g in &s.gates {
        h += &format!(
            "  gate {}: {} of {} probes passed{}\n",
            g.name,
            g.passed,
            g.probes,
            g.next_due
                .as_deref()
                .filter(|_| s.passed_at.is_none())
                .map(|d| format!(", next probe due {d}"))
                .unwrap_or_default()
        );
    }
    if !s.production.is_empty() {
        h += &format!(
            "  production actions {}: {}\n",
            if s.passed_at.is_some() {
                "released"
            } else {
                "held"
            },
            s.production
                .iter()
                .map(|n| escape(n))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    if let Some(proof) = &s.proof {
        h += &format!("  signed record: {}\n", proof.display());
    }
    if let Some(f) = &s.failed {
        h += &format!(
            "  probe {} failed at {}: roll the run back (`airlock rollback {} --reason …`)\n",
            f.gate, f.at, s.run
        );
    } else if s.passed_at.is_none() && s.left_secs == 0 {
        h += &format!(
            "  next: `airlock promote {}` runs a last probe and applies the production actions\n",
            s.run
        );
    } else if s.passed_at.is_none() {
        h += &format!(
            "  next: `airlock soak {}` probes what is due; `airlock promote {}` once the soak is over\n",
            s.run, s.run
        );
    }
    h
}
