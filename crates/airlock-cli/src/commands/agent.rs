//! `airlock agent RUN [--preset claude|codex] -- CMD ARGS...`: the agent
//! itself in its run's sandbox (airlock_core::agent), with the relay its
//! hooks and MCP server reach airlock through (airlock_servers::agent_relay)
//! served for as long as it runs.

use std::ffi::OsString;

use airlock_core::Result;
use airlock_core::agent::{self, AgentOptions, AgentSession, Preset};
use airlock_core::sandbox::{Echo, Input};
use airlock_servers::agent_relay::{Relay, Served};

use super::Ctx;
use crate::render::{Output, Report};

#[derive(clap::Args)]
#[command(
    after_help = "The agent runs in the run's sandbox: the worktree, its lane's network (with a preset, unless the \
lane grants the whole network, the preset's API hosts added to the lane's through airlock's egress proxy), and with a preset its own settings and \
credentials (claude: ~/.claude, ~/.claude.json; codex: ~/.codex) and airlock's hooks and MCP server, \
configured for this launch only."
)]
pub struct Args {
    /// The run (a unique start of its id is enough).
    pub run: String,
    /// Which agent: shows it its own settings and credentials, allows its API hosts, and configures airlock's hooks and MCP server for this launch.
    #[arg(long, value_enum)]
    preset: Option<PresetArg>,
    /// The agent's command and its arguments, after `--`.
    #[arg(last = true, required = true, num_args = 1..)]
    command: Vec<OsString>,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum PresetArg {
    Claude,
    Codex,
}

impl From<PresetArg> for Preset {
    fn from(p: PresetArg) -> Preset {
        match p {
            PresetArg::Claude => Preset::Claude,
            PresetArg::Codex => Preset::Codex,
        }
    }
}

pub fn run(ctx: &Ctx, args: Args) -> Result<Output> {
    let mut al = ctx.open()?;
    let id = al.store.resolve(&args.run)?;
    airlock_core::guards::refuse_from_lane(&al, "agent")?;
    let preset = args.preset.map(Preset::from);
    // Fails early, before anything is made, on a run that cannot run commands.
    al.store.get(&id)?.require(
        "agent",
        &[
            airlock_core::run::State::Staged,
            airlock_core::run::State::Checked,
        ],
    )?;
    let dir = agent::prepare(&al.layout, preset)?;
    let program = std::env::current_exe().map_err(|e| {
        airlock_core::Error::Environment(format!("cannot find airlock's own program: {e}"))
    })?;
    let relay = Relay::start(
        &dir.short_path(agent::RELAY_SOCKET),
        Served {
            program,
            root: al.layout.root.clone(),
            run: id.clone(),
            log: dir.dir.join("mcp.stderr"),
        },
    )
    .map_err(|e| {
        airlock_core::Error::Environment(format!(
            "cannot listen on the agent's relay socket {}: {e}",
            dir.socket.display()
        ))
    });
    let relay = match relay {
        Ok(relay) => relay,
        Err(e) => {
            dir.remove();
            return Err(e);
        }
    };
    let output_is_terminal = {
        use std::io::IsTerminal;
        if ctx.json {
            std::io::stderr().is_terminal()
        } else {
            std::io::stdout().is_terminal()
        }
    };
    let session = agent::launch(
        &mut al,
        &id,
        &dir,
        AgentOptions {
            argv: args.command,
            preset,
            input: Input::of_stdin(output_is_terminal),
            echo: if ctx.json {
                Echo::Stderr
            } else {
                Echo::Passthrough
            },
        },
    );
    let relayed = relay.stop();
    dir.remove();
    let session = Session {
        session: session?,
        relayed,
        run: id,
    };
    if !ctx.json {
        eprintln!("{}", session.note());
    }
    Ok(Output::report(&session))
}

/// `airlock agent`: the agent's session. Its text is empty (the agent's
/// own output was shown live; the summary goes to stderr), its exit code
/// the agent's.
#[derive(serde::Serialize)]
struct Session {
    #[serde(flatten)]
    session: AgentSession,
    /// What the agent's hooks and MCP clients asked the relay for, in
    /// order (`hook claude pre`, `mcp`, or `refused`).
    relayed: Vec<String>,
    #[serde(skip)]
    run: String,
}

impl Session {
    fn note(&self) -> String {
        let s = &self.session;
        let mut note = format!(
            "airlock: the agent's session in run {} ended ({}); trace {}",
            self.run,
            crate::render::escape(&s.trace.exit.description),
            s.trace.n
        );
        let allowed: std::collections::BTreeSet<String> = s
            .connections
            .iter()
            .filter(|c| !c.refused())
            .map(|c| format!("{}:{}", c.host, c.port))
            .collect();
        let refused: std::collections::BTreeSet<String> = s
            .connections
            .iter()
            .filter(|c| c.refused())
            .map(|c| format!("{}:{}", c.host, c.port))
            .collect();
        if !allowed.is_empty() {
            let list: Vec<String> = allowed.iter().map(|h| crate::render::escape(h)).collect();
            note += &format!("\n  reached: {}", list.join(", "));
        }
        if !refused.is_empty() {
            let list: Vec<String> = refused.iter().map(|h| crate::render::escape(h)).collect();
            note += &format!("\n  refused: {}", list.join(", "));
        }
        if let Some(path) = &s.token_returned {
            note += &format!(
                "\n  token copied back: {} (the agent refreshed its sign-in; nothing else of its home flows back)",
                crate::render::escape(&path.display().to_string())
            );
        }
        note
    }
}

impl Report for Session {
    fn human(&self) -> String {
        String::new()
    }

    fn exit_code(&self) -> u8 {
        self.session.trace.exit.code.clamp(0, 255) as u8
    }
}

/// `airlock __agent-relay hook AGENT EVENT` or `… mcp`, run inside the
/// agent's sandbox by the hooks and MCP server `--preset` configures.
pub fn relay_main(args: &[OsString]) -> i32 {
    use airlock_servers::agent_relay::{Service, client};
    let line: Vec<String> = args
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let Some(service) = Service::parse(&line.join(" ")) else {
        eprintln!(
            "airlock: `{} {}` is not a service of the agent relay: it relays `hook claude|codex pre|post` and `mcp`",
            agent::RELAY_ARG,
            crate::render::escape(&line.join(" "))
        );
        return 2;
    };
    // Beside the program, as `airlock agent` shows it; the variable only
    // where the program was reached some other way.
    let socket = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|d| d.join(agent::RELAY_SOCKET)))
        .filter(|s| s.exists())
        .or_else(|| std::env::var_os("AIRLOCK_AGENT_RELAY").map(std::path::PathBuf::from))
        .unwrap_or_else(|| std::path::PathBuf::from(agent::RELAY_SOCKET));
    client(&socket, service)
}
