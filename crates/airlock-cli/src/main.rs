//! `airlock`: argument parsing and rendering. The work is in airlock-core.

mod commands;
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
    /// Print one JSON document on stdout instead of text.
    #[arg(long, global = true)]
    json: bool,
    /// Run as if started in this directory.
    #[arg(short = 'C', global = true, value_name = "DIR")]
    directory: Option<PathBuf>,
    #[command(subcommand)]
    command: commands::Command,
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
        _ => {}
    }
    let cli = Cli::parse();
    let cwd = match cli.directory {
        Some(dir) => dir,
        None => std::env::current_dir().unwrap_or_else(|_| PathBuf::from(".")),
    };
    let ctx = commands::Ctx {
        cwd,
        json: cli.json,
    };
    match commands::run(&ctx, cli.command) {
        Ok(output) => output.emit(ctx.json),
        Err(error) => render::error(&error, ctx.json),
    }
}
