use std::ffi::OsString;

use airlock_core::Result;
use airlock_core::Site;
use airlock_core::exec::{ExecOptions, Preflight, exec, exec_recorded};
use airlock_core::layout::Layout;
use airlock_core::sandbox::{Echo, Input, interrupt};
use airlock_servers::ledger_server;

use super::Ctx;
use crate::render::{Output, Report};

#[derive(clap::Args)]
pub struct Args {
    /// The run.
    run: String,
    /// Kill the command (and everything it started) after this long, e.g. 90s or 10m.
    #[arg(long, value_parser = humantime_parse)]
    timeout: Option<std::time::Duration>,
    /// The command and its arguments, after `--`.
    #[arg(last = true, required = true, num_args = 1..)]
    command: Vec<OsString>,
}

/// What the command reads: airlock's stdin (a pipe, a file); never the
/// user's terminal, which a command could reconfigure or push keystrokes
/// into, but a terminal of its own that airlock relays.
fn input(json: bool) -> Input {
    use std::io::IsTerminal;
    // With --json the command's output goes to stderr.
    let output = if json {
        std::io::stderr().is_terminal()
    } else {
        std::io::stdout().is_terminal()
    };
    Input::of_stdin(output)
}

/// An exec stopped (^C, SIGTERM) before its command started exits as the
/// signal says, like one stopped while it ran.
fn stopped_first(error: airlock_core::Error) -> airlock_core::Error {
    match interrupt::received() {
        Some(signal) => airlock_core::Error::NotRunnable {
            message: format!("{error}"),
            hint: format!(
                "airlock received {} before the command started: nothing ran; run it again",
                interrupt::name(signal)
            ),
            code: (128 + signal).clamp(0, 255) as u8,
        },
        None => error,
    }
}

fn humantime_parse(s: &str) -> std::result::Result<std::time::Duration, String> {
    s.parse::<u64>()
        .map(std::time::Duration::from_secs)
        .or_else(|_| airlock_core::workflow::parse_duration(s))
}

pub fn run(ctx: &Ctx, mut args: Args) -> Result<Output> {
    let layout = Layout::discover(&ctx.cwd)?;
    // ^C or a `kill` stops the command, and its trace is still recorded:
    // what it changed until then is part of the run.
    interrupt::install().map_err(|e| {
        airlock_core::Error::Environment(format!("cannot watch for ^C and SIGTERM: {e}"))
    })?;
    // A run is named by its whole id on every command's path; a unique
    // prefix costs a lookup only once the whole id was not found, and
    // nothing ran or was made for it.
    let (input, echo) = (
        input(ctx.json),
        // With --json, the command's output goes to stderr so stdout stays one document.
        if ctx.json {
            Echo::Stderr
        } else {
            Echo::Passthrough
        },
    );
    let trace = match exec_traced(ctx, &layout, &args, args.command.clone(), input, echo) {
        Err(airlock_core::Error::UnknownRun(given)) => {
            let al = ctx.open_in(layout.clone())?;
            args.run = al.store.resolve(&given)?;
            drop(al);
            exec_traced(ctx, &layout, &args, args.command.clone(), input, echo)?
        }
        other => other?,
    };
    render(ctx, &args, trace)
}

/// `exec` as the MCP server's tool: the same traced, sandboxed run of the
/// command in `run` (a whole id), except that the command reads
/// `/dev/null` and nothing is echoed, since the server's stdin and stdout
/// carry the protocol. The trace is returned beside the report, for its
/// logs.
pub fn serve(
    ctx: &Ctx,
    run: String,
    command: Vec<OsString>,
    timeout: Option<std::time::Duration>,
) -> Result<(Output, airlock_core::exec::Trace)> {
    let layout = Layout::discover(&ctx.cwd)?;
    let args = Args {
        run,
        timeout,
        command,
    };
    let trace = exec_traced(
        ctx,
        &layout,
        &args,
        args.command.clone(),
        Input::Null,
        Echo::None,
    )?;
    let output = render(ctx, &args, trace.clone())?;
    Ok((output, trace))
}

/// Runs the command in the run `args.run` names, traced.
fn exec_traced(
    ctx: &Ctx,
    layout: &Layout,
    args: &Args,
    argv: Vec<std::ffi::OsString>,
    input: Input,
    echo: Echo,
) -> Result<airlock_core::exec::Trace> {
    let layout = layout.clone();
    // The command's log files and the worktree's fingerprint are made
    // while the repository's state opens.
    let preflight = Preflight::start(&layout, &args.run, "exec");
    let opts = ExecOptions {
        input,
        preflight,
        argv,
        timeout: args.timeout,
        echo,
    };
    // The repository's ledger server, when one runs, saves opening the
    // ledger; otherwise this exec opens it and starts one for the next.
    let trace = match ledger_server::connect(&layout, &args.run) {
        Some(mut served) => {
            let init_program = airlock_core::init_program();
            let site = Site {
                layout: &layout,
                init_program: &init_program,
            };
            let trace = exec_recorded(&site, &mut served, &args.run, opts);
            super::report_recovered(served.recovered());
            trace.map_err(stopped_first)?
        }
        None => {
            let mut al = match ctx.open_in(layout.clone()) {
                Ok(al) => al,
                // The database out of reach: a run this machine works on
                // goes on, recorded here until it is back.
                Err(e) if airlock_core::offline::is_unreachable(&e) => {
                    let mut offline = airlock_core::offline::Offline::for_run(
                        &layout.store_paths(),
                        &args.run,
                        e,
                    )?;
                    let init_program = airlock_core::init_program();
                    let site = Site {
                        layout: &layout,
                        init_program: &init_program,
                    };
                    return exec_recorded(&site, &mut offline, &args.run, opts)
                        .map_err(stopped_first);
                }
                Err(e) => return Err(e),
            };
            let trace = exec(&mut al, &args.run, opts).map_err(stopped_first)?;
            if let Ok(workflow) = al.current_workflow() {
                ledger_server::start(&al.layout, &workflow);
            }
            trace
        }
    };
    Ok(trace)
}

/// What `exec` prints and exits with, once the command's trace is stored.
fn render(ctx: &Ctx, args: &Args, trace: airlock_core::exec::Trace) -> Result<Output> {
    let executed = Executed {
        trace,
        run: args.run.clone(),
    };
    // The command's own output was shown live; a note only when something
    // needs saying, on stderr: stdout is the command's.
    let note = executed.note();
    if !ctx.json && !note.is_empty() {
        eprintln!("{note}");
    }
    Ok(Output::report(&executed))
}

/// `airlock exec`: the command's trace. Its text is empty (the command's
/// own output was shown live), and its exit code the command's.
#[derive(serde::Serialize)]
#[serde(transparent)]
struct Executed {
    trace: airlock_core::exec::Trace,
    #[serde(skip)]
    run: String,
}

impl Executed {
    /// The line printed on stderr when the command failed, hit a limit or
    /// left a hint.
    fn note(&self) -> String {
        let (trace, run) = (&self.trace, &self.run);
        let mut note = match (&trace.limit_hit, trace.exit.success()) {
            (None, true) => String::new(),
            (None, false) => format!(
                "airlock: trace {} of run {}: {}",
                trace.n, run, trace.exit.description
            ),
            // The limit names files the command chose: shown, never obeyed.
            (Some(limit), _) => format!(
                "airlock: trace {} of run {}: {}; {}",
                trace.n,
                run,
                trace.exit.description,
                crate::render::escape(limit)
            ),
        };
        if let Some(hint) = &trace.hint {
            // A command that succeeded can leave a hint too (a connection
            // the egress proxy refused): name the trace first.
            if note.is_empty() {
                note = format!(
                    "airlock: trace {} of run {}: {}",
                    trace.n, run, trace.exit.description
                );
            }
            note = format!("{note}\n  hint: {}", crate::render::escape(hint));
        }
        note
    }
}

impl Report for Executed {
    fn human(&self) -> String {
        String::new()
    }

    /// A command that succeeded but left the worktree over its limit fails:
    /// the run cannot be checked until something is removed.
    fn exit_code(&self) -> u8 {
        match (&self.trace.limit_hit, self.trace.exit.success()) {
            (Some(_), true) => 1,
            _ => self.trace.exit.code.clamp(0, 255) as u8,
        }
    }
}
