use serde_json::{Value, json};

use airlock_core::exec::{StreamRecord, Trace};
use airlock_core::{Error, Result, logs};

use super::Ctx;
use crate::render::{Output, one_line, short};

#[derive(clap::Args)]
pub struct Args {
    /// The run.
    run: String,
    /// A trace number (`3`), or a gate name: that gate's latest trace in the
    /// run's current round. Without it, the run's traces are listed.
    trace: Option<String>,
    /// Only the last N lines of each stream.
    #[arg(long, value_name = "N")]
    tail: Option<usize>,
    /// Only this stream.
    #[arg(long, value_enum)]
    stream: Option<Stream>,
}

#[derive(Clone, Copy, PartialEq, clap::ValueEnum)]
enum Stream {
    Stdout,
    Stderr,
}

pub fn run(ctx: &Ctx, args: Args) -> Result<Output> {
    let al = ctx.open()?;
    let run = al.store.get(&args.run)?;
    let traces = al.store.traces(&run.id)?;
    let Some(selector) = &args.trace else {
        return Ok(list(&run.id, run.round, &traces));
    };
    let trace = logs::select(&run.id, &traces, run.round, selector)?;
    let streams: Vec<(&str, &StreamRecord)> = [
        (Stream::Stdout, "stdout", &trace.stdout),
        (Stream::Stderr, "stderr", &trace.stderr),
    ]
    .into_iter()
    .filter(|(s, _, _)| args.stream.is_none_or(|want| want == *s))
    .map(|(_, name, record)| (name, record))
    .collect();

    let mut h = format!(
        "trace #{} of run {} ({}, round {}): {} -> {}\n",
        trace.n,
        run.id,
        trace.origin,
        trace.round,
        one_line(&super::show::shell_words(&trace.argv), 120),
        trace.exit.description
    );
    let mut data = Vec::new();
    for (name, record) in streams {
        let intact = logs::digest(&record.log)
            .map(|d| d == record.sha256)
            .unwrap_or(false);
        data.push(json!({
            "stream": name, "path": record.log, "size": record.size,
            "sha256": record.sha256, "intact": intact,
        }));
        let missing = |e: std::io::Error| Error::Read {
            path: record.log.clone(),
            source: e,
        };
        let (lines, cut) = match args.tail {
            Some(n) => logs::tail(&record.log, n).map_err(missing)?,
            None => (
                logs::read(&record.log)
                    .map_err(missing)?
                    .lines()
                    .map(str::to_string)
                    .collect(),
                false,
            ),
        };
        h += &format!(
            "{name} ({} B, sha256 {}{}){}:\n",
            record.size,
            short(&record.sha256),
            if intact {
                ""
            } else {
                "; THE LOG NO LONGER MATCHES THIS DIGEST"
            },
            match args.tail {
                Some(n) => format!(", the last {n} lines"),
                None => String::new(),
            }
        );
        if cut {
            h += "  | …\n";
        }
        if lines.is_empty() && record.size == 0 {
            h += "  (empty)\n";
        }
        for line in &lines {
            // Each line of the command's output is marked, and escaped: it
            // can pass for neither a line of airlock's nor a terminal command.
            h += &format!("  | {}\n", crate::render::escape(line));
        }
    }
    let body = json!({
        "run": run.id, "trace": trace.n, "round": trace.round, "origin": trace.origin,
        "argv": trace.argv, "exit": trace.exit, "streams": data,
    });
    Ok(Output::new(body, h).hostile())
}

/// The run's traces, and how to pick one.
fn list(run: &str, round: u32, traces: &[Trace]) -> Output {
    let mut h = format!("traces of run {run} (round {round} now):\n");
    if traces.is_empty() {
        h += "  (none yet: `airlock exec` and `airlock check` record them)\n";
    }
    for t in traces {
        h += &format!(
            "  #{:<3} r{} {:<14} {} -> {}; stdout {} B, stderr {} B\n",
            t.n,
            t.round,
            t.origin,
            one_line(&super::show::shell_words(&t.argv), 80),
            t.exit.description,
            t.stdout.size,
            t.stderr.size
        );
    }
    if let Some(last) = traces.last() {
        h += &format!("pick one: `airlock logs {run} {}` (a trace number)", last.n);
        match traces
            .iter()
            .rev()
            .find_map(|t| t.origin.strip_prefix("gate:"))
        {
            Some(gate) => {
                h += &format!(" or `airlock logs {run} {gate}` (a gate's latest trace this round)")
            }
            None => h += " or a gate's name",
        }
        h += "; `--tail N` for the end only\n";
    }
    let data: Vec<Value> = traces
        .iter()
        .map(|t| {
            json!({
                "n": t.n, "round": t.round, "origin": t.origin, "argv": t.argv, "exit": t.exit,
                "stdout": {"path": t.stdout.log, "size": t.stdout.size, "sha256": t.stdout.sha256},
                "stderr": {"path": t.stderr.log, "size": t.stderr.size, "sha256": t.stderr.sha256},
            })
        })
        .collect();
    Output::new(json!({"run": run, "round": round, "traces": data}), h).hostile()
}
