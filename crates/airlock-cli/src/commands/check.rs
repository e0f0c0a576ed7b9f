use airlock_core::Result;
use airlock_core::check::{CheckReport, check};
use airlock_core::sandbox::Echo;

use super::Ctx;
use crate::render::Output;

#[derive(clap::Args)]
pub struct Args {
    /// The run.
    pub(super) run: String,
    /// Show the gates' output as they run.
    #[arg(long, short)]
    verbose: bool,
}

pub fn run(ctx: &Ctx, args: Args) -> Result<Output> {
    let mut al = ctx.open()?;
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
    Ok(Output::new(&report, human).code(code))
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
