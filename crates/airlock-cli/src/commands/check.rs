use airlock_core::base_gates::RunBaseCheck;
use airlock_core::check::{CheckReport, check_with};
use airlock_core::sandbox::Echo;
use airlock_core::{Airlock, Result, logs};

use super::Ctx;
use crate::progress::Progress;
use crate::render::{Output, Report, one_line};

#[derive(clap::Args)]
pub struct Args {
    /// The run.
    pub(super) run: String,
    /// Show the gates' output as they run.
    #[arg(long, short)]
    verbose: bool,
    /// Run the brief's gates on the run's base instead (a scratch checkout,
    /// confined the same way) and say which failing gates were already red there.
    #[arg(long)]
    base: bool,
}

pub fn run(ctx: &Ctx, args: Args) -> Result<Output> {
    let mut al = match ctx.open() {
        Ok(al) => al,
        // The database out of reach: a run this machine works on is
        // checked here, its traces and result recorded until it is back.
        Err(e) if !args.base && airlock_core::offline::is_unreachable(&e) => {
            let layout = airlock_core::layout::Layout::discover(&ctx.cwd)?;
            let al = airlock_core::offline::Offline::airlock_for_check(layout, &args.run, e)?;
            // Said on stderr (stdout is the report, the same as online).
            crate::render::warn(
                "the database is out of reach: this check is recorded on this machine and stored there when airlock next reaches it (`airlock ledger spool` shows what waits)",
            );
            al
        }
        Err(e) => return Err(e),
    };
    if args.base {
        return base(&mut al, &args.run);
    }
    // A run soaking in staging: `check` says how long its soak has left.
    if let Some(soaking) = super::soak::soaking(&al, &args.run)? {
        return Ok(soaking);
    }
    let echo = match (args.verbose, ctx.json) {
        (false, _) => Echo::None,
        (true, true) => Echo::Stderr,
        (true, false) => Echo::Passthrough,
    };
    let mut progress = Progress::new(ctx.json, args.verbose);
    let report = check_with(&mut al, &args.run, echo, &mut |e| progress.event(e))?;
    drop(progress);
    // Read from the logs only for the text.
    let gate_output = if report.passed || ctx.json {
        String::new()
    } else {
        failing_gate_output(&al, &args.run, &report)
    };
    Ok(Output::report(&Checked {
        report,
        run: args.run,
        gate_output,
    })
    .hostile()
    .painted())
}

/// `airlock check`: stop conditions and gates, and what to do next.
#[derive(serde::Serialize)]
#[serde(transparent)]
struct Checked {
    report: CheckReport,
    #[serde(skip)]
    run: String,
    /// The end of the failed gate's output ([`failing_gate_output`]).
    #[serde(skip)]
    gate_output: String,
}

impl Report for Checked {
    fn human(&self) -> String {
        let report = &self.report;
        let mut human = render(report);
        if report.passed {
            human += &format!("\ncheck passed; next: `airlock submit {}`", self.run);
        } else {
            human += &self.gate_output;
            let failures = report.failures();
            // The failures can quote paths and output the agent chose: no raw control characters.
            human += &format!(
                "\ncheck failed: {}",
                crate::render::one_line(failures.first().map_or("", |f| f.as_str()), 300)
            );
            for more in failures.iter().skip(1) {
                human += &format!("\n         also: {}", crate::render::one_line(more, 300));
            }
            human += &format!(
                "\nfix it in the worktree and run `airlock check {}` again",
                self.run
            );
        }
        human
    }

    fn exit_code(&self) -> u8 {
        if self.report.passed { 0 } else { 1 }
    }
}

/// Lines of a failing gate's output shown by `check`.
const TAIL_LINES: usize = 20;

/// The last lines of the failed gate's stderr and stdout (each shares the
/// [`TAIL_LINES`]), escaped, with the command that shows them whole.
fn failing_gate_output(al: &Airlock, run: &str, report: &CheckReport) -> String {
    let Some(gate) = report.gates.iter().find(|g| g.status == "failed") else {
        return String::new();
    };
    // A changed snapshot is read with `airlock snap diff`, named below.
    if gate
        .snapshot
        .as_ref()
        .is_some_and(|s| s.decision != "matched")
    {
        return String::new();
    }
    let Some(trace) = gate.trace.and_then(|n| {
        al.store
            .traces(run)
            .ok()
            .and_then(|ts| ts.into_iter().find(|t| t.n == n))
    }) else {
        return String::new();
    };
    let read = |path: &std::path::Path| logs::tail(path, TAIL_LINES).unwrap_or_default();
    let (out, out_cut) = read(&trace.stdout.log);
    let (err, err_cut) = read(&trace.stderr.log);
    let err_take = err
        .len()
        .min((TAIL_LINES / 2).max(TAIL_LINES.saturating_sub(out.len())));
    let out_take = out.len().min(TAIL_LINES - err_take);
    let mut h = format!(
        "\noutput of gate `{}` (the last lines; all of it: `airlock logs {run} {}`):\n",
        gate.name, gate.name
    );
    for (name, lines, take, cut) in [
        ("stdout", &out, out_take, out_cut),
        ("stderr", &err, err_take, err_cut),
    ] {
        if lines.is_empty() {
            continue;
        }
        h += &format!("  {name}:\n");
        if cut || take < lines.len() {
            h += "  | …\n";
        }
        for line in &lines[lines.len() - take..] {
            h += &format!("  | {}\n", one_line(line, 300));
        }
    }
    if out.is_empty() && err.is_empty() {
        h += "  (it printed nothing)\n";
    }
    h.trim_end().to_string()
}

pub fn render(report: &CheckReport) -> String {
    let mut out = String::new();
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
    out += "gates:\n";
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
            out += &format!("  ({exit}, {} ms", g.duration_ms);
            if let Some(tests) = &g.tests {
                out += &format!("; {tests}");
            }
            out.push(')');
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
    out += &render_conditions(&report.conditions);
    out.trim_end().to_string()
}

/// The workflow's conditions: each with its effect, and the message of
/// those that hold.
pub fn render_conditions(conditions: &[airlock_core::conditions::ConditionResult]) -> String {
    use airlock_core::conditions::Effect;
    if conditions.is_empty() {
        return String::new();
    }
    let mut out = String::from(
        "conditions:
",
    );
    for c in conditions {
        let mark = match (c.held, c.effect) {
            (false, _) => "ok  ",
            (true, Effect::Block) => "FAIL",
            (true, Effect::NeedsReview) => "HOLD",
            (true, Effect::Warn) => "warn",
        };
        out += &format!("  {mark} {} ({})\n", c.id, c.effect.as_str());
        if c.held {
            out += &format!("       - {}\n", crate::render::escape(&c.message));
        }
        if let Some(e) = &c.error {
            out += &format!(
                "       note: could not be evaluated, so it holds: {}\n",
                crate::render::escape(e)
            );
        }
    }
    out
}

/// `check --base`: the gates on the run's base.
fn base(al: &mut airlock_core::Airlock, run: &str) -> Result<Output> {
    let report = airlock_core::base_gates::check_run_base(al, run)?;
    Ok(Output::report(&BaseChecked {
        report,
        run: run.to_string(),
    })
    .painted())
}

/// `airlock check --base`: each gate on the run's base, and which failures
/// the run did not cause.
#[derive(serde::Serialize)]
#[serde(transparent)]
struct BaseChecked {
    report: RunBaseCheck,
    #[serde(skip)]
    run: String,
}

impl Report for BaseChecked {
    fn human(&self) -> String {
        let (report, run) = (&self.report, &self.run);
        let mut human = format!(
            "gates on the base of run {run} ({}):\n",
            crate::render::short(&report.base.commit)
        );
        if report.base.gates.is_empty() {
            human += "  (the brief requires none)\n";
        }
        for g in &report.base.gates {
            human += &format!(
                "  {} {:<14} {}\n",
                super::init::base_gate_mark(g),
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
        human
    }
}
