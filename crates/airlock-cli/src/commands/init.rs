use airlock_core::Result;
use airlock_core::init::{InitReport, init};

use super::Ctx;
use crate::render::{Output, Report};

#[derive(clap::Args)]
pub struct Args {}

pub fn run(ctx: &Ctx, _args: Args) -> Result<Output> {
    let report = init(&ctx.cwd)?;
    Ok(Output::report(&report).painted())
}

/// `airlock init`: the workflow written or kept, the gates run once on the
/// base, the signing key.
impl Report for InitReport {
    fn human(&self) -> String {
        let report = self;
        let mut human = String::new();
        if report.workflow_written {
            human += &format!(
                "wrote {} ({})\n",
                report.workflow.display(),
                report.detected
            );
        } else {
            human += &format!("kept {}\n", report.workflow.display());
        }
        human += &format!(
            "  gates, in order: {}\n",
            if report.gates.is_empty() {
                "(none yet: edit the workflow)".to_string()
            } else {
                report.gates.join(", ")
            }
        );
        if let Some(base) = &report.base {
            human += &format!(
                "  ran them once on the base ({}):\n",
                crate::render::short(&base.commit)
            );
            for g in &base.gates {
                human += &format!(
                    "    {} {:<10} {}\n",
                    base_gate_mark(g),
                    g.name,
                    crate::render::one_line(&g.outcome, 200)
                );
                if let (true, Some(out), Some(err)) = (g.red, &g.stdout_log, &g.stderr_log) {
                    human += &format!("         output: {}\n", out.display());
                    human += &format!("                 {}\n", err.display());
                }
            }
            let red: Vec<&str> = base
                .gates
                .iter()
                .filter(|g| g.red)
                .map(|g| g.name.as_str())
                .collect();
            if !red.is_empty() {
                human += &format!(
                    "  red on the base: not caused by a run: {}\n",
                    red.join(", ")
                );
            }
        }
        if !report.offline_lanes.is_empty() {
            let lanes = if report.offline_lanes.len() == airlock_core::brief::LANES.len() {
                "every lane".to_string()
            } else {
                format!("lanes {}", report.offline_lanes.join(", "))
            };
            human += &format!(
                "network off for commands in {lanes}: package tools run offline, from their caches\n  ({})\n",
                report.offline_env.join(" ")
            );
        }
        human += &format!("ignored local state in {}\n", report.gitignore.display());
        human += &format!(
            "{} signing key in {}\n  {}\n",
            if report.key_created {
                "created"
            } else {
                "using"
            },
            report.key_dir.display(),
            report.public_key
        );
        human += "next: write a brief (see README) and run `airlock brief check BRIEF.toml`";
        human
    }
}

/// How a gate run on the base is marked: `FAIL` (red there), `skip` (not
/// run) or `ok`, padded to one width.
pub(super) fn base_gate_mark(g: &airlock_core::base_gates::BaseGate) -> &'static str {
    if g.red {
        "FAIL"
    } else if g.outcome.starts_with("not run") {
        "skip"
    } else {
        "ok  "
    }
}
