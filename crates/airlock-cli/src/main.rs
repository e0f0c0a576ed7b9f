//! `airlock`: argument parsing and rendering. The work is in airlock-core.

mod commands;
mod progress;
mod render;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

#[derive(Parser)]
#[command(
    name = "airlock",
    version,
    about = "A staging layer between AI coding agents and the real world",
    long_about = "airlock takes an agent's task from a brief to a reviewed, evidenced change: \
an isolated worktree, traced commands, gates and stop conditions, a signed proof bundle, \
a human decision, then promotion."
)]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: commands::Command,
}

/// The options every command takes.
#[derive(clap::Args)]
struct Global {
    /// Print one JSON document on stdout instead of text.
    #[arg(long, global = true)]
    json: bool,
    /// Run as if started in this directory.
    #[arg(short = 'C', global = true, value_name = "DIR")]
    directory: Option<PathBuf>,
}

/// `airlock exec` alone: agents run it for every command, and building the
/// parser of every command costs a quarter of a millisecond. Anything it
/// does not accept (help, a mistake, another command) goes to [`Cli`],
/// which reports it.
#[derive(Parser)]
#[command(name = "airlock")]
struct ExecCli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: ExecOnly,
}

#[derive(clap::Subcommand)]
enum ExecOnly {
    Exec(commands::exec::Args),
}

impl Cli {
    fn parse_quickly() -> Cli {
        match ExecCli::try_parse() {
            Ok(ExecCli {
                global,
                command: ExecOnly::Exec(args),
            }) => Cli {
                global,
                command: commands::Command::Exec(args),
            },
            Err(_) => Cli::parse(),
        }
    }
}

fn main() -> ExitCode {
    // The sandbox re-executes this binary to build itself; see airlock-sandbox.
    match std::env::args_os().nth(1) {
        Some(a) if a == airlock_core::sandbox::confine::INIT_ARG => {
            airlock_core::sandbox::confine::init_main()
        }
        Some(a) if a == airlock_core::sandbox::host::HOST_ARG => {
            airlock_core::sandbox::host::host_main()
        }
        Some(a) if a == airlock_core::ledger_server::SERVER_ARG => {
            airlock_core::ledger_server::server_main()
        }
        _ => {}
    }
    let cli = Cli::parse_quickly();
    let cwd = match cli.global.directory {
        Some(dir) => dir,
        None => std::env::current_dir().unwrap_or_else(|_| PathBuf::from(".")),
    };
    let ctx = commands::Ctx {
        cwd,
        json: cli.global.json,
    };
    match commands::run(&ctx, cli.command) {
        Ok(output) => output.emit(ctx.json),
        Err(error) => render::error(&error, ctx.json),
    }
}
