use std::path::PathBuf;

use airlock_core::exec::{ExitRecord, StreamRecord, Trace};
use airlock_core::{Error, Result, logs};

use super::Ctx;
use crate::render::{Output, Report, one_line, short};

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
        return Ok(Output::report(&list(&run.id, run.round, &traces)).hostile());
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

    let mut logs = Vec::new();
    // Logs of a run another machine ran are in the team's shared log
    // store, checked there against the trace's digest.
    let shared = airlock_core::store_backend::log_store(&al.layout)?;
    for (name, record) in streams {
        let intact = logs::digest(&record.log)
            .map(|d| d == record.sha256)
            .unwrap_or(false);
        if !intact
            && let Some(store) = &shared
            && let Some(bytes) = store.get(&record.sha256)?
        {
            let (lines, cut) = logs::lines_of(&bytes, args.tail);
            logs.push(StreamLog {
                stream: name,
                path: store.blob(&record.sha256).unwrap_or_default(),
                size: record.size,
                sha256: record.sha256.clone(),
                intact: true,
                lines,
                cut,
            });
            continue;
        }
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
        logs.push(StreamLog {
            stream: name,
            path: record.log.clone(),
            size: record.size,
            sha256: record.sha256.clone(),
            intact,
            lines,
            cut,
        });
    }
    Ok(Output::report(&TraceLog {
        run: run.id,
        trace: trace.n,
        round: trace.round,
        origin: trace.origin.clone(),
        argv: trace.argv.clone(),
        exit: trace.exit.clone(),
        streams: logs,
        tail: args.tail,
    })
    .hostile())
}

/// `airlock logs RUN TRACE`: what one trace's command printed.
#[derive(serde::Serialize)]
struct TraceLog {
    run: String,
    trace: u32,
    round: u32,
    origin: String,
    argv: Vec<String>,
    exit: ExitRecord,
    streams: Vec<StreamLog>,
    /// `--tail N`.
    #[serde(skip)]
    tail: Option<usize>,
}

#[derive(serde::Serialize)]
struct StreamLog {
    stream: &'static str,
    path: PathBuf,
    size: u64,
    sha256: String,
    /// Whether the log still matches the digest recorded with the trace.
    intact: bool,
    #[serde(skip)]
    lines: Vec<String>,
    /// Lines before these were left out (`--tail`).
    #[serde(skip)]
    cut: bool,
}

impl Report for TraceLog {
    fn human(&self) -> String {
        let mut h = format!(
            "trace #{} of run {} ({}, round {}): {} -> {}\n",
            self.trace,
            self.run,
            self.origin,
            self.round,
            one_line(&airlock_core::hostile::shell_words(&self.argv), 120),
            self.exit.description
        );
        for s in &self.streams {
            h += &format!(
                "{} ({} B, sha256 {}{}){}:\n",
                s.stream,
                s.size,
                short(&s.sha256),
                if s.intact {
                    ""
                } else {
                    "; THE LOG NO LONGER MATCHES THIS DIGEST"
                },
                match self.tail {
                    Some(n) => format!(", the last {n} lines"),
                    None => String::new(),
                }
            );
            if s.cut {
                h += "  | …\n";
            }
            if s.lines.is_empty() && s.size == 0 {
                h += "  (empty)\n";
            }
            for line in &s.lines {
                // Each line of the command's output is marked, and escaped: it
                // can pass for neither a line of airlock's nor a terminal command.
                h += &format!("  | {}\n", crate::render::escape(line));
            }
        }
        h
    }
}

/// The run's traces, and how to pick one.
fn list(run: &str, round: u32, traces: &[Trace]) -> TraceList {
    let file = |s: &StreamRecord| StreamFile {
        path: s.log.clone(),
        size: s.size,
        sha256: s.sha256.clone(),
    };
    TraceList {
        run: run.to_string(),
        round,
        traces: traces
            .iter()
            .map(|t| ListedTrace {
                n: t.n,
                round: t.round,
                origin: t.origin.clone(),
                argv: t.argv.clone(),
                exit: t.exit.clone(),
                stdout: file(&t.stdout),
                stderr: file(&t.stderr),
            })
            .collect(),
    }
}

/// `airlock logs RUN`: the run's traces.
#[derive(serde::Serialize)]
struct TraceList {
    run: String,
    round: u32,
    traces: Vec<ListedTrace>,
}

#[derive(serde::Serialize)]
struct ListedTrace {
    n: u32,
    round: u32,
    origin: String,
    argv: Vec<String>,
    exit: ExitRecord,
    stdout: StreamFile,
    stderr: StreamFile,
}

#[derive(serde::Serialize)]
struct StreamFile {
    path: PathBuf,
    size: u64,
    sha256: String,
}

impl Report for TraceList {
    fn human(&self) -> String {
        let run = &self.run;
        let mut h = format!("traces of run {run} (round {} now):\n", self.round);
        if self.traces.is_empty() {
            h += "  (none yet: `airlock exec` and `airlock check` record them)\n";
        }
        for t in &self.traces {
            h += &format!(
                "  #{:<3} r{} {:<14} {} -> {}; stdout {} B, stderr {} B\n",
                t.n,
                t.round,
                t.origin,
                one_line(&airlock_core::hostile::shell_words(&t.argv), 80),
                t.exit.description,
                t.stdout.size,
                t.stderr.size
            );
        }
        if let Some(last) = self.traces.last() {
            h += &format!("pick one: `airlock logs {run} {}` (a trace number)", last.n);
            match self
                .traces
                .iter()
                .rev()
                .find_map(|t| t.origin.strip_prefix("gate:"))
            {
                Some(gate) => {
                    h += &format!(
                        " or `airlock logs {run} {gate}` (a gate's latest trace this round)"
                    )
                }
                None => h += " or a gate's name",
            }
            h += "; `--tail N` for the end only\n";
        }
        h
    }
}
