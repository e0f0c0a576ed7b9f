//! `airlock mcp-proxy --run RUN [--server NAME] [-- UPSTREAM_CMD ARGS...]`:
//! serves MCP on stdio to the agent in front of an upstream MCP server the
//! workflow declares (`[mcp.servers.NAME]`), passing, staging or refusing
//! each tool call by its `[[mcp.tools]]` rules (crates/airlock-mcp-proxy).
//! stdout is the MCP stream: nothing else is written to it.

use std::sync::Arc;

use airlock_core::action::McpCall;
use airlock_core::action::Rehearsal;
use airlock_core::action::plan::{propose_staged, record_mcp_call};
use airlock_core::layout::Layout;
use airlock_core::run::State;
use airlock_core::{Airlock, Code, Error, Result};
use airlock_mcp_proxy::{CallRecord, Config, Stage, Staged, WithMcp, serve_stdio};

use super::Ctx;
use crate::render::Output;

#[derive(clap::Args)]
#[command(
    after_help = "stdin and stdout carry the MCP session (JSON-RPC, one message a line); --json does not apply. \
The upstream runs in the run's sandbox (through `airlock exec`) unless its [mcp.servers.NAME] says `sandbox = false`."
)]
pub struct Args {
    /// The run the agent works in (a unique start of its id is enough).
    #[arg(long)]
    pub(super) run: String,
    /// The upstream's name in the workflow's [mcp.servers]; by default the
    /// server whose `command` is the one given after `--`, or the only one.
    #[arg(long)]
    server: Option<String>,
    /// The upstream server's command, after `--`: it must be the `command`
    /// the workflow declares for it (approved calls are made with that one).
    #[arg(last = true)]
    command: Vec<String>,
}

/// Stages a call in the run's plan through the engine, opening the
/// repository for each call (the proxy holds nothing open between calls).
struct EngineStage {
    layout: Layout,
    run: String,
}

impl Stage for EngineStage {
    fn stage(
        &self,
        call: McpCall,
        rehearsal: Option<Rehearsal>,
    ) -> std::result::Result<Staged, String> {
        let staged = Airlock::open_in(self.layout.clone()).and_then(|mut al| {
            propose_staged(
                &mut al,
                &self.run,
                call,
                rehearsal,
                &WithMcp(airlock_effects::Live),
            )
        });
        staged
            .map(|a| Staged {
                seq: a.seq,
                name: a.spec.name,
            })
            .map_err(|e| describe(&e))
    }

    fn record(&self, call: CallRecord) -> std::result::Result<(), String> {
        let record = serde_json::to_value(&call).map_err(|e| e.to_string())?;
        Airlock::open_in(self.layout.clone())
            .and_then(|mut al| record_mcp_call(&mut al, &self.run, record))
            .map_err(|e| describe(&e))
    }
}

/// An engine error as one text for the model: code, what, why, what to do.
fn describe(e: &Error) -> String {
    let mut out = format!("{}: {e}", e.code());
    if let Error::Refused(r) = e {
        for why in &r.reasons {
            out.push_str(&format!("; {why}"));
        }
    }
    if let Some(hint) = e.hint() {
        out.push_str(&format!("; what to do: {hint}"));
    }
    out
}

pub fn run(ctx: &Ctx, args: Args) -> Result<Output> {
    let al = ctx.open()?;
    let run = al.store.get(&args.run)?;
    run.require("serve MCP for", &[State::Staged, State::Checked])?;
    let workflow = al.workflow_for(&run)?;
    let declared = match &args.server {
        Some(name) => workflow.mcp.server(name),
        // Neither named: the workflow's one server, if it declares one.
        None if args.command.is_empty() && workflow.mcp.servers.len() == 1 => {
            workflow.mcp.servers.first()
        }
        None => workflow.mcp.server_by_command(&args.command),
    };
    let Some(server) = declared.cloned() else {
        let what = match &args.server {
            Some(name) => format!("the workflow declares no MCP server `{name}`"),
            None if args.command.is_empty() => format!(
                "no MCP server named, and the workflow declares {}: give `--server NAME` or the server's command after `--`",
                workflow.mcp.servers.len()
            ),
            None => format!(
                "the workflow declares no MCP server started as {:?}",
                args.command
            ),
        };
        return Err(Error::refused(
            Code::McpServerUnknown,
            what,
            vec!["airlock makes approved calls by starting the server as the workflow says, so the proxy serves only declared servers".into()],
            format!(
                "declare it in .airlock/workflow.toml: `[mcp.servers.NAME] command = [{}]`",
                args.command
                    .iter()
                    .map(|a| format!("{a:?}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    };
    if !args.command.is_empty() && args.command != server.command {
        return Err(Error::refused(
            Code::McpServerUnknown,
            format!(
                "MCP server `{}` is declared as {:?}, not {:?}",
                server.name, server.command, args.command
            ),
            vec![
                "approved calls are made with the declared command, so the proxy starts no other"
                    .into(),
            ],
            format!(
                "run `airlock mcp-proxy --run {} --server {}` without a command, or change its `command` in .airlock/workflow.toml",
                run.id, server.name
            ),
        ));
    }
    let layout = al.layout.clone();
    let upstream_argv = if server.sandbox {
        let me = std::env::current_exe().map_err(|e| {
            Error::Environment(format!(
                "cannot find the airlock program to run the upstream in the sandbox: {e}"
            ))
        })?;
        let mut argv = vec![
            me.display().to_string(),
            "-C".into(),
            layout.root.display().to_string(),
            "exec".into(),
            run.id.clone(),
            // The session lasts as long as the agent's; exec's own limit
            // would end it mid-session.
            "--timeout".into(),
            "7d".into(),
            "--".into(),
        ];
        argv.extend(server.command.iter().cloned());
        argv
    } else {
        server.command.clone()
    };
    let config = Config {
        run: run.id.clone(),
        upstream_cwd: layout.worktree(&run.id),
        pins: layout.run_dir(&run.id).join("mcp-pins.json"),
        server,
        settings: workflow.mcp.clone(),
        origin: ".airlock/workflow.toml".into(),
        upstream_argv,
        stage: Arc::new(EngineStage {
            layout,
            run: run.id.clone(),
        }),
    };
    drop(al);
    serve_stdio(config).map_err(|e| Error::Environment(e.to_string()))?;
    Ok(Output::raw(String::new(), 0))
}
