//! `airlock mcp --run RUN`: the run's MCP server on stdin and stdout
//! (airlock-mcp). Each tool is the CLI command of the same job, parsed and
//! run as `airlock --json …` would be, so its result is that command's
//! JSON and its error that command's error.

use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use clap::Parser;
use serde_json::Value;

use airlock_core::sandbox::interrupt;
use airlock_core::{Error, Result};
use airlock_mcp::{Backend, Call, Reply};

use super::Ctx;
use crate::render::{Output, clean, one_line};

#[derive(clap::Args)]
pub struct Args {
    /// The run the server is bound to: every tool acts on it, and on no other.
    #[arg(long, value_name = "RUN")]
    pub(super) run: String,
}

pub fn run(ctx: &Ctx, args: Args) -> Result<Output> {
    // The run must be there before the client is told anything.
    let al = ctx.open()?;
    al.store.get(&args.run)?;
    drop(al);
    // ^C, SIGTERM or SIGHUP stop a command an `exec` call runs, as they
    // stop `airlock exec`'s, and its trace is still recorded: the call in
    // progress ends first, then the server exits with the signal's code.
    interrupt::install()
        .map_err(|e| Error::Environment(format!("cannot watch for ^C and SIGTERM: {e}")))?;
    let busy = Arc::new(Mutex::new(()));
    let watched = busy.clone();
    std::thread::spawn(move || {
        if let Some(signal) = interrupt::wait() {
            let _call_done = watched.lock().unwrap_or_else(|p| p.into_inner());
            eprintln!(
                "airlock mcp: stopped by {}; a command that was running was stopped and its trace recorded",
                interrupt::name(signal)
            );
            std::process::exit((128 + signal).clamp(0, 255));
        }
    });
    let tools = Tools {
        cwd: ctx.cwd.clone(),
        run: args.run.clone(),
        busy,
    };
    airlock_mcp::serve_stdio(args.run, tools).map_err(|e| {
        Error::Environment(format!("the MCP server on stdin and stdout stopped: {e}"))
    })?;
    Ok(Output::raw(String::new(), 0))
}

/// The tools, run as the CLI's commands in the repository at `cwd`.
struct Tools {
    cwd: PathBuf,
    run: String,
    /// Held for each call, so a signal's exit waits for the call's record.
    busy: Arc<Mutex<()>>,
}

/// The most of a stream's end an `exec` result carries as text; the whole
/// output is in the trace's logs (`logs`).
const OUTPUT_LINES: usize = 60;

impl Tools {
    fn ctx(&self) -> Ctx {
        Ctx {
            cwd: self.cwd.clone(),
            json: true,
        }
    }

    /// Runs `airlock --json ARGS` in this process.
    fn command(&self, args: &[OsString]) -> Result<Output> {
        let mut argv: Vec<OsString> = vec!["airlock".into(), "--json".into()];
        argv.extend_from_slice(args);
        let cli = crate::Cli::try_parse_from(argv).map_err(|e| {
            Error::Internal(format!(
                "the MCP server built a command line the CLI does not take: {e}"
            ))
        })?;
        super::run(&self.ctx(), cli.command)
    }

    fn reply(output: Output) -> Reply {
        Reply {
            text: clean(&output.human),
            data: output.data,
        }
    }

    fn exec(&self, command: Vec<String>, timeout: Option<u64>) -> Result<Reply> {
        let (output, trace) = super::exec::serve(
            &self.ctx(),
            self.run.clone(),
            command.into_iter().map(OsString::from).collect(),
            timeout.map(std::time::Duration::from_secs),
        )?;
        let mut text = format!(
            "trace {}: {}{}",
            trace.n,
            trace.exit.description,
            if trace.files_changed.is_empty() {
                String::new()
            } else {
                format!("; {} file(s) changed", trace.files_changed.len())
            }
        );
        if let Some(limit) = &trace.limit_hit {
            text += &format!("\nlimit hit: {}", one_line(limit, 300));
        }
        if let Some(hint) = &trace.hint {
            text += &format!("\nhint: {}", one_line(hint, 300));
        }
        for (name, stream) in [("stdout", &trace.stdout), ("stderr", &trace.stderr)] {
            if stream.size == 0 {
                continue;
            }
            if let Ok((lines, cut)) = airlock_core::logs::tail(&stream.log, OUTPUT_LINES) {
                text += &format!(
                    "\n--- {name}{} ---\n{}",
                    if cut {
                        format!(
                            " (last {OUTPUT_LINES} lines; `logs` with trace {} has all)",
                            trace.n
                        )
                    } else {
                        String::new()
                    },
                    clean(&lines.join("\n"))
                );
            }
        }
        Ok(Reply {
            data: output.data,
            text,
        })
    }

    /// `show RUN --no-diff`, with a short text: state, next step, feedback.
    fn status(&self) -> Result<Reply> {
        let output = self.command(&["show".into(), self.run.clone().into(), "--no-diff".into()])?;
        let mut data = output.data;
        // Without the diff, as asked: its stat stays.
        if let Some(diff) = data.get_mut("diff").and_then(Value::as_object_mut) {
            diff.remove("patch");
        }
        let field = |k: &str| {
            data.get(k)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        let mut text = format!(
            "run {} is {} (round {}, lane {})\nnext: {}",
            field("run"),
            field("state"),
            data.get("round")
                .and_then(Value::as_u64)
                .unwrap_or_default(),
            field("lane"),
            one_line(&field("next"), 400)
        );
        match data.get("feedback").and_then(Value::as_str) {
            Some(feedback) => text += &format!("\nreviewer's feedback: {}", clean(feedback)),
            None => text += "\nreviewer's feedback: none yet",
        }
        Ok(Reply { data, text })
    }

    fn propose(&self, action: &str) -> Result<Reply> {
        // The action's text is parsed as given: the server never reads a
        // path the agent names (it would let it have airlock read any file).
        Ok(Self::reply(super::propose::serve(
            &self.ctx(),
            &self.run,
            action,
        )?))
    }
}

impl Backend for Tools {
    fn call(&self, call: Call) -> Result<Reply> {
        let _busy = self.busy.lock().unwrap_or_else(|p| p.into_inner());
        let run: OsString = self.run.clone().into();
        match call {
            Call::Status => self.status(),
            Call::Exec {
                command,
                timeout_seconds,
            } => self.exec(command, timeout_seconds),
            Call::Check => Ok(Self::reply(self.command(&["check".into(), run])?)),
            Call::Logs {
                trace,
                tail,
                stream,
            } => {
                let mut args: Vec<OsString> = vec!["logs".into(), run];
                if let Some(n) = tail {
                    args.push(format!("--tail={n}").into());
                }
                if let Some(s) = stream {
                    args.push(format!("--stream={s}").into());
                }
                if let Some(t) = trace {
                    args.extend(["--".into(), t.into()]);
                }
                Ok(Self::reply(self.command(&args)?))
            }
            Call::Snapshot { name, command } => {
                let mut args: Vec<OsString> = vec![
                    "snap".into(),
                    "run".into(),
                    format!("--run={}", self.run).into(),
                    name.into(),
                    "--".into(),
                ];
                args.extend(command.into_iter().map(OsString::from));
                Ok(Self::reply(self.command(&args)?))
            }
            Call::Propose { action } => self.propose(&action),
            Call::Withdraw { name } => Ok(Self::reply(self.command(&[
                "propose".into(),
                run,
                format!("--withdraw={name}").into(),
            ])?)),
            Call::Plan => Ok(Self::reply(self.command(&["plan".into(), run])?)),
            Call::Submit => Ok(Self::reply(self.command(&["submit".into(), run])?)),
        }
    }
}
