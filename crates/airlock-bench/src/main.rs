//! airlock-bench: airlock against its baselines, side by side in one run.
//!
//! Every benchmark interleaves the two sides (A, B, A, B, …) after one
//! untimed round of each, and reports medians, p90s and the ratio of the
//! medians. Targets live here, never in tests. See BENCHMARKS.md.

mod bench_agent;
mod bench_check_memory;
mod bench_conditions;
mod bench_egress;
mod bench_exec;
mod bench_exec_hosts;
mod bench_hook;
mod bench_ledger;
mod bench_lifecycle;
mod bench_mcp;
mod bench_mcp_exec;
mod bench_metrics;
mod bench_panel;
mod bench_pg;
mod bench_proof;
mod bench_remote;
mod bench_review;
mod bench_snap;
mod bench_start;
mod bench_warm;
mod bench_web;
mod env;
mod stats;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

use stats::Comparison;

#[derive(Parser)]
#[command(
    name = "airlock-bench",
    about = "Benchmarks of airlock against its baselines, interleaved in one run"
)]
struct Cli {
    /// The airlock binary under test [default: `airlock` next to this binary].
    #[arg(long, global = true, value_name = "PATH")]
    airlock: Option<PathBuf>,
    /// Print one JSON document instead of tables.
    #[arg(long, global = true)]
    json: bool,
    /// Progress on stderr.
    #[arg(short, long, global = true)]
    verbose: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// `airlock start` vs `git worktree add --detach` on a generated repository.
    Start {
        /// Directories in the generated repository.
        #[arg(long, default_value_t = bench_start::Opts::default().dirs)]
        dirs: usize,
        /// Files per directory.
        #[arg(long, default_value_t = bench_start::Opts::default().files_per_dir)]
        files_per_dir: usize,
        /// Timed pairs (after one untimed pair).
        #[arg(long, default_value_t = bench_start::Opts::default().pairs)]
        pairs: usize,
    },
    /// The time a shared remote (`[team] remote`) adds to submit and promote.
    Remote {
        /// Timed pairs (after one untimed pair).
        #[arg(long, default_value_t = bench_remote::Opts::default().pairs)]
        pairs: usize,
    },
    /// Full lifecycle (start..promote) vs running the edit and gates directly.
    Lifecycle {
        /// Timed pairs (after one untimed pair).
        #[arg(long, default_value_t = bench_lifecycle::Opts::default().pairs)]
        pairs: usize,
    },
    /// Lane check + custom conditions + the review panel on one run's evidence, in process, vs `airlock show --json` of it.
    Panel {
        /// Files the run changes.
        #[arg(long, default_value_t = bench_panel::Opts::default().changed)]
        changed: usize,
        /// Timed pairs (after one untimed pair).
        #[arg(long, default_value_t = bench_panel::Opts::default().pairs)]
        pairs: usize,
    },
    /// `airlock submit` + `airlock proof verify` of a checked change vs `git add` + `git commit`.
    Proof {
        /// Files the change modifies.
        #[arg(long, default_value_t = bench_proof::Opts::default().changed)]
        changed: usize,
        /// Timed rounds (after one untimed round).
        #[arg(long, default_value_t = bench_proof::Opts::default().rounds)]
        rounds: usize,
    },
    /// airlock-ledger append and verify vs raw rusqlite inserts and SHA-256 alone.
    Ledger {
        /// Events appended and verified.
        #[arg(long, default_value_t = bench_ledger::Opts::default().events)]
        events: usize,
        /// Timed pairs of bulk appends (verify gets twice as many rounds).
        #[arg(long, default_value_t = bench_ledger::Opts::default().pairs)]
        pairs: usize,
        /// Single-event appends, each in its own transaction.
        #[arg(long, default_value_t = bench_ledger::Opts::default().single)]
        single: usize,
    },
    /// The PostgreSQL store's ledger appends by 8 writers on different runs vs plain INSERTs (a private cluster).
    PgAppends {
        /// Writers, each on its own run.
        #[arg(long, default_value_t = bench_pg::Opts::default().writers)]
        writers: usize,
        /// Events each writer appends.
        #[arg(long, default_value_t = bench_pg::Opts::default().events)]
        events: usize,
        /// Timed rounds (after one untimed round).
        #[arg(long, default_value_t = bench_pg::Opts::default().pairs)]
        pairs: usize,
    },
    /// `airlock stats` over a store of N runs vs a plain SQL count of the same events (and `ledger verify`).
    Metrics {
        /// Runs in the seeded store.
        #[arg(long, default_value_t = bench_metrics::Opts::default().runs)]
        runs: usize,
        /// Timed rounds (after one untimed round).
        #[arg(long, default_value_t = bench_metrics::Opts::default().rounds)]
        rounds: usize,
    },
    /// `airlock review` over a store of 10,000 runs on PostgreSQL (a private cluster) vs on SQLite.
    Review {
        /// Runs in each store.
        #[arg(long, default_value_t = bench_review::Opts::default().runs)]
        runs: usize,
        /// Of which waiting in review.
        #[arg(long, default_value_t = bench_review::Opts::default().waiting)]
        waiting: usize,
        /// Timed pairs (after one untimed pair).
        #[arg(long, default_value_t = bench_review::Opts::default().pairs)]
        pairs: usize,
    },
    /// The web pages (`airlock serve`) rendered in process: a run page with a large diff vs `airlock show`, the queue of many waiting runs vs `airlock review`.
    Web {
        /// Lines the run's diff adds.
        #[arg(long, default_value_t = bench_web::Opts::default().lines)]
        lines: usize,
        /// Runs waiting in the queue.
        #[arg(long, default_value_t = bench_web::Opts::default().waiting)]
        waiting: usize,
        /// Timed pairs (after one untimed pair).
        #[arg(long, default_value_t = bench_web::Opts::default().pairs)]
        pairs: usize,
        /// The queue's copies share the run's brief (parsed once for all)
        /// instead of each having its own.
        #[arg(long)]
        same_brief: bool,
    },
    /// airlock-snap compare, normalize and diff rendering vs plain `similar` and a copy.
    Snap {
        /// Megabytes of output to compare and to normalize.
        #[arg(long, default_value_t = bench_snap::Opts::default().mb)]
        mb: usize,
        /// Lines of the rendered diff.
        #[arg(long, default_value_t = bench_snap::Opts::default().lines)]
        lines: usize,
        /// Timed pairs (after one untimed pair).
        #[arg(long, default_value_t = bench_snap::Opts::default().pairs)]
        pairs: usize,
    },
    /// 20 CEL conditions (environment, type check, evaluation) on one run's evidence vs the same tests in Rust.
    Conditions {
        /// Changed paths in the evidence.
        #[arg(long, default_value_t = bench_conditions::Opts::default().paths)]
        paths: usize,
        /// Timed pairs (after one untimed pair).
        #[arg(long, default_value_t = bench_conditions::Opts::default().pairs)]
        pairs: usize,
    },
    /// `airlock exec RUN -- true` vs `true`, and one exec of a loop of N `true`s vs the loop.
    Exec {
        /// Timed pairs of single commands (after one untimed pair).
        #[arg(long, default_value_t = bench_exec::Opts::default().pairs)]
        pairs: usize,
        /// Timed pairs of loops (after one untimed pair).
        #[arg(long, default_value_t = bench_exec::Opts::default().loop_pairs)]
        loop_pairs: usize,
        /// Commands the loop spawns.
        #[arg(long, default_value_t = bench_exec::Opts::default().commands)]
        commands: usize,
        /// Directories in the git-ignored `target/` of the third comparison (0: not run).
        #[arg(long, default_value_t = bench_exec::Opts::default().ignored_dirs)]
        ignored_dirs: usize,
    },
    /// `airlock hook claude pre` on a Bash payload vs a minimal Python hook, process start included.
    Hook {
        /// Timed rounds (after one untimed round).
        #[arg(long, default_value_t = bench_hook::Opts::default().pairs)]
        pairs: usize,
        /// Another airlock binary (an earlier build) to time in the same rounds.
        #[arg(long, value_name = "PATH")]
        compare_with: Option<PathBuf>,
    },
    /// `airlock exec RUN -- true` with a list of hosts (through the egress proxy) vs the network off.
    ExecHosts {
        /// Timed pairs (after one untimed pair), for each of the two comparisons.
        #[arg(long, default_value_t = bench_exec_hosts::Opts::default().pairs)]
        pairs: usize,
    },
    /// Peak memory of `airlock check` on a large change vs `git diff` of it.
    CheckMemory {
        /// Files the change rewrites (rounded up to a multiple of 100).
        #[arg(long, default_value_t = bench_check_memory::Opts::default().files)]
        files: usize,
        /// KiB of new text in each file.
        #[arg(long, default_value_t = bench_check_memory::Opts::default().kib)]
        kib: usize,
        /// Measured rounds (after one unmeasured round).
        #[arg(long, default_value_t = bench_check_memory::Opts::default().rounds)]
        rounds: usize,
    },
    /// Memory held by warm sandboxes after N recent runs, bounded and not.
    Warm {
        /// Runs started, each running one command.
        #[arg(long, default_value_t = bench_warm::Opts::default().runs)]
        runs: usize,
    },
    /// `airlock agent RUN --preset claude -- AGENT` to the agent's first instruction vs the agent bare.
    Agent {
        /// Timed pairs (after one untimed pair).
        #[arg(long, default_value_t = bench_agent::Opts::default().pairs)]
        pairs: usize,
    },
    /// airlock-egress's proxy: one connection and a bulk download through it vs direct, on loopback.
    Egress {
        /// Timed pairs of single connections (after one untimed pair).
        #[arg(long, default_value_t = bench_egress::Opts::default().pairs)]
        pairs: usize,
        /// Megabytes each download carries.
        #[arg(long, default_value_t = bench_egress::Opts::default().mb)]
        mb: usize,
        /// Timed pairs of downloads (after one untimed pair).
        #[arg(long, default_value_t = bench_egress::Opts::default().download_pairs)]
        download_pairs: usize,
        /// Timed pairs of downloads by a reader in a sandbox with egress vs
        /// the same reader outside (after one untimed pair; 0: none).
        #[arg(long, default_value_t = bench_egress::Opts::default().sandbox_pairs)]
        sandbox_pairs: usize,
        /// The server sends at most this many MB/s, as a network link would
        /// (0: as fast as loopback goes, which is memory speed).
        #[arg(long, default_value_t = 0)]
        link_mbs: u64,
    },
    /// A tool call passed through `airlock mcp-proxy` vs the sandboxed upstream directly (needs `pip install mcp`).
    McpProxy {
        /// Timed calls on each session (after one untimed call).
        #[arg(long, default_value_t = bench_mcp::Opts::default().calls)]
        calls: usize,
    },
    /// The MCP server's `exec` tool on an open session vs `airlock exec RUN -- true`, same run.
    McpExec {
        /// Timed pairs (after one untimed pair).
        #[arg(long, default_value_t = bench_mcp_exec::Opts::default().pairs)]
        pairs: usize,
    },
    /// Everything, with the default sizes.
    All,
}

fn default_airlock() -> Result<PathBuf> {
    let exe = std::env::current_exe().context("cannot find this binary's path")?;
    Ok(exe
        .parent()
        .context("this binary has no parent directory")?
        .join("airlock"))
}

fn main() -> ExitCode {
    // The parts this binary plays inside the egress benchmark's sandbox:
    // its init (as airlock's own binary does) and the reader it runs.
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some(airlock_sandbox::confine::INIT_ARG) => airlock_sandbox::confine::init_main(),
        Some(bench_egress::READER_ARG) => bench_egress::reader_main(&args[2..]),
        _ => {}
    }
    let cli = Cli::parse();
    // Temp directories are deleted only after everything is timed and printed.
    let mut keep = Vec::new();
    match run(&cli, &mut keep) {
        // `warm` printed its own figures.
        Ok(results) if results.is_empty() => ExitCode::SUCCESS,
        Ok(results) => {
            if cli.json {
                let doc = serde_json::json!({
                    "benchmarks": results.iter().map(Comparison::to_json).collect::<Vec<_>>(),
                    "all_targets_met": results.iter().all(|c| c.met() != Some(false)),
                });
                println!(
                    "{}",
                    serde_json::to_string_pretty(&doc).expect("JSON values serialise")
                );
            } else {
                for c in &results {
                    c.print();
                }
                let missed: Vec<&str> = results
                    .iter()
                    .filter(|c| c.met() == Some(false))
                    .map(|c| c.id.as_str())
                    .collect();
                if results.iter().all(|c| c.met().is_none()) {
                    println!("no targets in this benchmark: figures reported");
                } else if missed.is_empty() {
                    println!("all targets met");
                } else {
                    println!("targets missed: {}", missed.join(", "));
                }
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("airlock-bench: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: &Cli, keep: &mut Vec<tempfile::TempDir>) -> Result<Vec<Comparison>> {
    let airlock = match &cli.airlock {
        Some(p) => p.clone(),
        None => default_airlock()?,
    };
    let needs_airlock = !matches!(
        cli.command,
        Command::Ledger { .. }
            | Command::PgAppends { .. }
            | Command::Snap { .. }
            | Command::Egress { .. }
            | Command::Conditions { .. }
            | Command::Metrics { .. }
    );
    if needs_airlock && !airlock.is_file() {
        anyhow::bail!(
            "no airlock binary at {}; build it with `cargo build --release -p airlock-cli`, or pass --airlock PATH",
            airlock.display()
        );
    }
    let airlock = airlock.canonicalize().unwrap_or(airlock);
    let v = cli.verbose;
    if let Command::Warm { runs } = &cli.command {
        bench_warm::bench(&airlock, &bench_warm::Opts { runs: *runs }, v, cli.json)?;
        return Ok(Vec::new());
    }
    Ok(match &cli.command {
        Command::Start {
            dirs,
            files_per_dir,
            pairs,
        } => vec![bench_start::bench(
            &airlock,
            &bench_start::Opts {
                dirs: *dirs,
                files_per_dir: *files_per_dir,
                pairs: *pairs,
            },
            v,
            keep,
        )?],
        Command::Remote { pairs } => {
            bench_remote::bench(&airlock, &bench_remote::Opts { pairs: *pairs }, v, keep)?
        }
        Command::Lifecycle { pairs } => vec![bench_lifecycle::bench(
            &airlock,
            &bench_lifecycle::Opts { pairs: *pairs },
            v,
            keep,
        )?],
        Command::Panel { changed, pairs } => vec![bench_panel::bench(
            &airlock,
            &bench_panel::Opts {
                changed: *changed,
                pairs: *pairs,
            },
            v,
        )?],
        Command::Proof { changed, rounds } => vec![bench_proof::bench(
            &airlock,
            &bench_proof::Opts {
                changed: *changed,
                rounds: *rounds,
            },
            v,
            keep,
        )?],
        Command::Web {
            lines,
            waiting,
            pairs,
            same_brief,
        } => bench_web::bench(
            &airlock,
            &bench_web::Opts {
                lines: *lines,
                waiting: (*waiting).max(1),
                pairs: *pairs,
                same_brief: *same_brief,
            },
            v,
        )?,
        Command::Review {
            runs,
            waiting,
            pairs,
        } => bench_review::bench(
            &airlock,
            &bench_review::Opts {
                runs: (*runs).max(1),
                waiting: *waiting,
                pairs: *pairs,
            },
            v,
        )?,
        Command::Metrics { runs, rounds } => bench_metrics::bench(
            &bench_metrics::Opts {
                runs: *runs,
                rounds: *rounds,
            },
            v,
            keep,
        )?,
        Command::Ledger {
            events,
            pairs,
            single,
        } => bench_ledger::bench(
            &bench_ledger::Opts {
                events: *events,
                pairs: *pairs,
                single: *single,
            },
            v,
            keep,
        )?,
        Command::PgAppends {
            writers,
            events,
            pairs,
        } => bench_pg::bench(
            &bench_pg::Opts {
                writers: *writers,
                events: *events,
                pairs: *pairs,
            },
            v,
        )?,
        Command::Conditions { paths, pairs } => bench_conditions::bench(
            &bench_conditions::Opts {
                paths: *paths,
                pairs: *pairs,
            },
            v,
        )?,
        Command::Snap { mb, lines, pairs } => bench_snap::bench(
            &bench_snap::Opts {
                mb: *mb,
                lines: *lines,
                pairs: *pairs,
            },
            v,
        )?,
        Command::Exec {
            pairs,
            loop_pairs,
            commands,
            ignored_dirs,
        } => bench_exec::bench(
            &airlock,
            &bench_exec::Opts {
                pairs: *pairs,
                loop_pairs: *loop_pairs,
                commands: *commands,
                ignored_dirs: *ignored_dirs,
            },
            v,
            keep,
        )?,
        Command::Hook {
            pairs,
            compare_with,
        } => bench_hook::bench(
            &airlock,
            &bench_hook::Opts {
                pairs: *pairs,
                compare_with: compare_with.clone(),
            },
            v,
            keep,
        )?,
        Command::Agent { pairs } => {
            bench_agent::bench(&airlock, &bench_agent::Opts { pairs: *pairs }, v, keep)?
        }
        Command::ExecHosts { pairs } => {
            bench_exec_hosts::bench(&airlock, &bench_exec_hosts::Opts { pairs: *pairs }, v, keep)?
        }
        Command::CheckMemory { files, kib, rounds } => vec![bench_check_memory::bench(
            &airlock,
            &bench_check_memory::Opts {
                files: *files,
                kib: *kib,
                rounds: *rounds,
            },
            v,
            keep,
        )?],
        Command::McpExec { pairs } => vec![bench_mcp_exec::bench(
            &airlock,
            &bench_mcp_exec::Opts { pairs: *pairs },
            v,
            keep,
        )?],
        Command::Egress {
            pairs,
            mb,
            download_pairs,
            sandbox_pairs,
            link_mbs,
        } => bench_egress::bench(
            &bench_egress::Opts {
                pairs: *pairs,
                mb: *mb,
                download_pairs: *download_pairs,
                sandbox_pairs: *sandbox_pairs,
                link_mbs: *link_mbs,
            },
            v,
        )?,
        Command::McpProxy { calls } => vec![bench_mcp::bench(
            &airlock,
            &bench_mcp::Opts { calls: *calls },
            v,
        )?],
        Command::All => {
            let mut out = vec![
                bench_start::bench(&airlock, &bench_start::Opts::default(), v, keep)?,
                bench_lifecycle::bench(&airlock, &bench_lifecycle::Opts::default(), v, keep)?,
                bench_proof::bench(&airlock, &bench_proof::Opts::default(), v, keep)?,
            ];
            out.extend(bench_exec::bench(
                &airlock,
                &bench_exec::Opts::default(),
                v,
                keep,
            )?);
            out.extend(bench_exec_hosts::bench(
                &airlock,
                &bench_exec_hosts::Opts::default(),
                v,
                keep,
            )?);
            out.extend(bench_ledger::bench(
                &bench_ledger::Opts::default(),
                v,
                keep,
            )?);
            out.extend(bench_snap::bench(&bench_snap::Opts::default(), v)?);
            out.push(bench_panel::bench(
                &airlock,
                &bench_panel::Opts::default(),
                v,
            )?);
            out.extend(bench_egress::bench(&bench_egress::Opts::default(), v)?);
            out.extend(bench_hook::bench(
                &airlock,
                &bench_hook::Opts::default(),
                v,
                keep,
            )?);
            out.extend(bench_agent::bench(
                &airlock,
                &bench_agent::Opts::default(),
                v,
                keep,
            )?);
            out.push(bench_mcp_exec::bench(
                &airlock,
                &bench_mcp_exec::Opts::default(),
                v,
                keep,
            )?);
            out
        }
        Command::Warm { .. } => unreachable!("handled above"),
    })
}
