//! `airlock`: argument parsing and rendering. The work is in airlock-core.

mod commands;
mod demo_site;
mod progress;
mod render;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, Parser};

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
    /// Colour diffs and results: on a terminal only (auto, the default; NO_COLOR turns it off), always or never.
    #[arg(long, global = true, value_name = "WHEN", default_value_t = clap::ColorChoice::Auto)]
    color: clap::ColorChoice,
    /// Print long output (`show`) straight to the terminal instead of through $PAGER.
    #[arg(long, global = true)]
    no_pager: bool,
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

/// The full argument definitions, which completions and the man page are
/// generated from.
pub fn cli_command() -> clap::Command {
    Cli::command()
}

fn main() -> ExitCode {
    // Conditions (and panel rules) are CEL, type-checked as the workflow
    // loads; built only when a workflow has some.
    airlock_core::evaluator::install(|| Box::new(airlock_cel::Cel::new()));
    airlock_core::store_backend::install(airlock_store_pg::open);
    // The sandbox re-executes this binary to build itself; see airlock-sandbox.
    match std::env::args_os().nth(1) {
        Some(a) if a == airlock_core::sandbox::confine::INIT_ARG => {
            airlock_core::sandbox::confine::init_main()
        }
        Some(a) if a == airlock_core::sandbox::host::HOST_ARG => {
            airlock_core::sandbox::host::host_main()
        }
        Some(a) if a == airlock_servers::ledger_server::SERVER_ARG => {
            airlock_servers::ledger_server::server_main()
        }
        Some(a) if a == airlock_core::agent::RELAY_ARG => {
            let args: Vec<_> = std::env::args_os().skip(2).collect();
            std::process::exit(commands::agent::relay_main(&args))
        }
        _ => {}
    }
    let cli = Cli::parse_quickly();
    let json = cli.global.json;
    render::configure(cli.global.color, cli.global.no_pager, json);
    let cwd = match cli.global.directory {
        Some(dir) => match directory_given(dir) {
            Ok(dir) => dir,
            Err(error) => return render::error(&error, json),
        },
        None => std::env::current_dir().unwrap_or_else(|_| PathBuf::from(".")),
    };
    let ctx = commands::Ctx { cwd, json };
    match commands::run(&ctx, cli.command) {
        Ok(output) => output.emit(ctx.json),
        Err(error) => render::error(&error, ctx.json),
    }
}

/// `-C DIR` must name a directory: otherwise every git airlock starts there
/// fails to start, which would read as git itself missing.
fn directory_given(dir: PathBuf) -> airlock_core::Result<PathBuf> {
    match std::fs::metadata(&dir) {
        Ok(meta) if meta.is_dir() => Ok(dir),
        Ok(_) => Err(airlock_core::Error::NoDirectory {
            path: dir,
            why: "is not a directory".into(),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Err(airlock_core::Error::NoDirectory {
                path: dir,
                why: "does not exist".into(),
            })
        }
        Err(e) => Err(airlock_core::Error::NoDirectory {
            path: dir,
            why: format!("cannot be read ({e})"),
        }),
    }
}
