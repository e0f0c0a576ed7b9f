use airlock_core::Result;
use airlock_core::check::{CheckReport, check};
use airlock_core::sandbox::Echo;

use super::Ctx;
use crate::render::Output;

#[derive(clap::Args)]
pub struct Args {
    /// The run.
    run: String,
    /// Show the gates' output as they run.
    #[arg(long, short)]
    verbose: bool,
    /// Run the brief's gates on the run's base instead (a scratch checkout,
    /// confined the same way) and say which failing gates were already red there.
    #[arg(long)]
    base: bool,
}

pub fn run(ctx: &Ctx, args: Args) -> Result<Output> {
    let mut al = ctx.open()?;
    if args.base {
        return base(&mut al, &args.run);
    }
    let echo = match (args.verbose, ctx.json) {
        (false, _) => Echo::None,
        (true, true) => Echo::Stderr,
        (true, false) => Echo::Passthrough,
    };
    let report = check(&mut al, &args.run, echo)?;
    let mut human = render(&report);
    if report.passed {
        human += &format!("\ncheck passed; next: `airlock submit {}`", args.run);
    } else {
        human += &format!(
            "\ncheck failed: {}\nfix it in the worktree and run `airlock check {}` again (gate logs: `airlock show {}`)",
            // The failure can quote a path the agent named: no raw control characters.
            crate::render::one_line(&report.first_failure().unwrap_or_default(), 300),
            args.run,
            args.run
        );
    }
    let code = if report.passed { 0 } else { 1 };
    Ok(Output::new(&report, human).code(code).painted())
}

pub fn render(report: &CheckReport) -> String {
    let mut out = String::from("gates:\n");
    if report.gates.is_empty() {
        out += "  (the brief requires none)\n";
    }
    for g in &report.gates {
        let mark = match g.status.as_str() {
            "passed" => "ok  ",
            "failed" => "FAIL",
            _ => "skip",
        };
        out += &format!(
            "  {mark} {:<14} {}",
            g.name,
            crate::render::clean(&g.command)
        );
        if let Some(exit) = &g.exit {
            out += &format!("  ({exit}, {} ms)", g.duration_ms);
        }
        out.push('\n');
        if let Some(s) = &g.snapshot {
            out += &format!("       snapshot `{}`: {}", s.name, s.decision);
            if s.decision == "changed" {
                out += &format!(" (+{} -{} lines)", s.added, s.removed);
            }
            if let Some(p) = &s.pending {
                out += &format!("; pending result in {}", p.display());
            }
            out.push('\n');
            for n in &s.notes {
                out += &format!("       note: {}\n", crate::render::escape(n));
            }
        }
    }
    if !report.stops.is_empty() {
        out += "stop conditions:\n";
    }
    for s in &report.stops {
        out += &format!("  {} {}\n", if s.passed { "ok  " } else { "FAIL" }, s.name);
        for f in &s.findings {
            out += &format!("       - {}\n", crate::render::escape(f));
        }
        for n in &s.notes {
            out += &format!("       note: {}\n", crate::render::escape(n));
        }
    }
    out.trim_end().to_string()
}

/// `check --base`: the gates on the run's base.
fn base(al: &mut airlock_core::Airlock, run: &str) -> Result<Output> {
    let report = airlock_core::base_gates::check_run_base(al, run)?;
    let mut human = format!(
        "gates on the base of run {run} ({}):\n",
        crate::render::short(&report.base.commit)
    );
    if report.base.gates.is_empty() {
        human += "  (the brief requires none)\n";
    }
    for g in &report.base.gates {
        let mark = if g.red {
            "FAIL"
        } else if g.outcome.starts_with("not run") {
            "skip"
        } else {
            "ok  "
        };
        human += &format!(
            "  {mark} {:<14} {}\n",
            g.name,
            crate::render::one_line(&g.outcome, 200)
        );
    }
    if !report.already_red.is_empty() {
        human += &format!(
            "red on the base: not caused by a run: {}\n",
            report.already_red.join(", ")
        );
    }
    if !report.caused_by_run.is_empty() {
        human += &format!(
            "green on the base, failing in the run: {}\n",
            report.caused_by_run.join(", ")
        );
    }
    Ok(Output::new(&report, human).painted())
}
