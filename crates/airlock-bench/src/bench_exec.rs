//! `exec`: what running a command through `airlock exec` (kernel sandbox,
//! worktree snapshots before and after, trace and ledger record) adds to
//! the command itself.
//!
//! - single: `true` spawned directly against `airlock exec RUN -- true`;
//! - loop: one `sh -c` loop spawning `true` N times (the external binary,
//!   not the shell builtin, so every iteration is a fork and an exec), run
//!   directly against the same loop inside one `airlock exec RUN -- sh -c …`.
//!   The per-command cost is (airlock − bare) / N: airlock's fixed cost
//!   spread over N commands plus whatever the sandbox adds to each process.
//!
//! - ignored: `true` against `airlock exec RUN -- true` in a second run
//!   whose worktree also holds a git-ignored `target/` of N directories (a
//!   built project's), made before the first timed exec: every exec makes
//!   every repository in the worktree inert (`lane::disarm`), ignored
//!   directories included.
//!
//! Both sides run in the run's worktree, with the same hermetic environment.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result};

use crate::env::{Env, file_text, make_repo, run, run_id, timed, write_brief};
use crate::stats::{Comparison, Measure, Target};

pub struct Opts {
    pub pairs: usize,
    pub loop_pairs: usize,
    pub commands: usize,
    /// Directories in the ignored `target/` of the third comparison (none: not run).
    pub ignored_dirs: usize,
}

impl Default for Opts {
    fn default() -> Self {
        Opts {
            pairs: 51,
            loop_pairs: 21,
            commands: 200,
            ignored_dirs: 5000,
        }
    }
}

const WORKFLOW: &str = "[gates.ok]\nrun = \"true\"\n\n[policy]\ntarget = \"main\"\n";

/// The target: at most this much added per command, at the median.
const ADDED_PER_COMMAND: Duration = Duration::from_millis(5);

/// `true` as a file on PATH: the loop must spawn it, not run the builtin.
fn true_binary() -> Result<PathBuf> {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join("true"))
        .find(|p| p.is_file())
        .context("no `true` binary on PATH")
}

fn loop_script(true_bin: &Path, commands: usize) -> String {
    format!(
        "i=0; while [ $i -lt {commands} ]; do {}; i=$((i+1)); done",
        true_bin.display()
    )
}

pub fn bench(
    airlock: &Path,
    opts: &Opts,
    verbose: bool,
    keep: &mut Vec<tempfile::TempDir>,
) -> Result<Vec<Comparison>> {
    let env = Env::new(airlock, "exec", verbose)?;
    let repo = env.path("repo");
    // A small repository, as in lifecycle: exec snapshots the worktree
    // before and after the command, which costs more on a larger tree.
    make_repo(&env, &repo, 5, 10, WORKFLOW)?;
    let brief = env.path("brief.toml");
    write_brief(&brief, "exec bench", &["ok"])?;
    let out = run(env.airlock(&repo, &["start", "--json", &brief.display().to_string()]))?;
    let id = run_id(&out)?;
    let worktree = repo.join(".airlock/local/runs").join(&id).join("worktree");
    let true_bin = true_binary()?;
    let script = loop_script(&true_bin, opts.commands);

    // How the commands are confined, from one untimed `exec --json`.
    let out = run(env.airlock(&repo, &["exec", &id, "--json", "--", "true"]))?;
    let trace: serde_json::Value =
        serde_json::from_slice(&out.stdout).context("airlock exec --json printed no JSON")?;
    let confinement = trace["confinement"].as_str().unwrap_or("?").to_string();
    let mut traces = 1;

    let exec = |argv: &[&str]| {
        let mut args = vec!["exec", id.as_str(), "--"];
        args.extend_from_slice(argv);
        env.airlock(&repo, &args)
    };
    let ignored = if opts.ignored_dirs > 0 {
        Some(ignored_run(&env, opts.ignored_dirs)?)
    } else {
        None
    };

    // (a) one command and (b) N commands inside one exec, interleaved with
    // each other as well, so that both see the same machine.
    let sides = [
        Sides {
            label: "single",
            pairs: opts.pairs,
            airlock: Box::new(|| exec(&["true"])),
            bare: Box::new(|| env.command(&true_bin, &worktree)),
            subject: Measure::new("airlock exec RUN -- true"),
            baseline: Measure::new("true"),
        },
        Sides {
            label: "loop",
            pairs: opts.loop_pairs,
            airlock: Box::new(|| exec(&["sh", "-c", &script])),
            bare: Box::new(|| {
                let mut cmd = env.command("sh", &worktree);
                cmd.args(["-c", &script]);
                cmd
            }),
            subject: Measure::new(format!(
                "airlock exec RUN -- sh -c LOOP ({} x true)",
                opts.commands
            )),
            baseline: Measure::new(format!("sh -c LOOP ({} x true)", opts.commands)),
        },
    ];
    let mut sides: Vec<Sides> = sides.into_iter().collect();
    if let Some((repo, id, worktree)) = &ignored {
        sides.push(Sides {
            label: "ignored",
            pairs: opts.pairs,
            airlock: Box::new(|| env.airlock(repo, &["exec", id, "--", "true"])),
            bare: Box::new(|| env.command(&true_bin, worktree)),
            subject: Measure::new("airlock exec RUN -- true"),
            baseline: Measure::new("true"),
        });
    }
    let execs = interleave(&env, &mut sides)?;
    traces += execs[0] + execs[1];
    let mut sides = sides.into_iter();
    let mut next = || {
        let s = sides.next().expect("a side for each comparison");
        (s.subject, s.baseline)
    };
    let (single_airlock, single_bare) = next();
    let (loop_airlock, loop_bare) = next();
    let in_ignored = ignored.as_ref().map(|_| next());
    // The commands borrow `env`, handed over below.
    drop(sides);

    // Sanity: every exec was recorded as a trace of the run.
    let shown = run(env.airlock(&repo, &["show", &id, "--json"]))?;
    let shown: serde_json::Value =
        serde_json::from_slice(&shown.stdout).context("airlock show --json printed no JSON")?;
    let recorded = count_exec_traces(&shown);
    anyhow::ensure!(
        recorded == Some(traces),
        "run {id} shows {recorded:?} exec traces, expected {traces}"
    );

    let mut single = Comparison {
        id: "exec".into(),
        title: format!(
            "exec: airlock exec RUN -- true vs true spawned directly, {} interleaved pairs",
            opts.pairs
        ),
        subject: single_airlock,
        baseline: single_bare,
        details: vec![],
        notes: vec![],
        target: Target::AddedPerCommandUnder {
            commands: 1,
            limit: ADDED_PER_COMMAND,
        },
    };
    single.notes = vec![
        format!("confinement: {confinement}"),
        "repository: 5 dirs x 10 files; every exec is recorded (trace, logs, ledger event)".into(),
    ];
    let fixed_ms = single.difference_ms();
    let mut looped = Comparison {
        id: "exec-loop".into(),
        title: format!(
            "exec-loop: one airlock exec of a shell loop spawning {} x {} vs the same loop directly, {} interleaved pairs",
            opts.commands,
            true_bin.display(),
            opts.loop_pairs
        ),
        subject: loop_airlock,
        baseline: loop_bare,
        details: vec![],
        notes: vec![],
        target: Target::AddedPerCommandUnder {
            commands: opts.commands as u64,
            limit: ADDED_PER_COMMAND,
        },
    };
    let per_process = (looped.difference_ms() - fixed_ms) / opts.commands as f64;
    looped.notes = vec![format!(
        "less exec's fixed cost measured by `exec` ({fixed_ms:.1} ms), the sandbox adds {per_process:.3} ms to each process{}",
        if per_process < 0.0 {
            " (below zero: within the noise)"
        } else {
            ""
        }
    )];
    let mut out = vec![single, looped];
    if let (Some((repo, id, _)), Some((subject, baseline))) = (&ignored, in_ignored) {
        let shown = run(env.airlock(repo, &["show", id, "--json"]))?;
        let shown: serde_json::Value =
            serde_json::from_slice(&shown.stdout).context("airlock show --json printed no JSON")?;
        let recorded = count_exec_traces(&shown);
        anyhow::ensure!(
            recorded == Some(execs[2]),
            "run {id} shows {recorded:?} exec traces, expected {}",
            execs[2]
        );
        out.push(Comparison {
            id: "exec-ignored".into(),
            title: format!(
                "exec-ignored: airlock exec RUN -- true vs true, the worktree holding an ignored target/ of {} directories, {} interleaved pairs",
                opts.ignored_dirs, opts.pairs
            ),
            subject,
            baseline,
            details: vec![],
            notes: vec![
                "repository: 5 dirs x 10 files, and target/ (git-ignored) made in the worktree before the first exec: directories of 2 files each, 100 to a parent".into(),
            ],
            target: Target::AddedPerCommandUnder {
                commands: 1,
                limit: ADDED_PER_COMMAND,
            },
        });
    }
    keep.push(env.into_dir());
    Ok(out)
}

/// A second repository, ignoring `target/`, and a run of it whose worktree
/// holds a `target/` of `dirs` directories as a build leaves one, made more
/// than a clock tick before the first exec sees it: (repository, run,
/// worktree).
fn ignored_run(env: &Env, dirs: usize) -> Result<(PathBuf, String, PathBuf)> {
    let repo = env.path("repo-ignored");
    make_repo(env, &repo, 5, 10, WORKFLOW)?;
    std::fs::write(repo.join(".gitignore"), "/target/\n")?;
    run(env.git(&repo, &["add", "-A"]))?;
    run(env.git(&repo, &["commit", "-q", "-m", "ignore target"]))?;
    let brief = env.path("brief-ignored.toml");
    write_brief(&brief, "exec bench, ignored target", &["ok"])?;
    let out = run(env.airlock(&repo, &["start", "--json", &brief.display().to_string()]))?;
    let id = run_id(&out)?;
    let worktree = repo.join(".airlock/local/runs").join(&id).join("worktree");
    for d in 0..dirs {
        let dir = worktree
            .join("target/debug")
            .join(format!("p{:03}", d / 100))
            .join(format!("d{:03}", d % 100));
        std::fs::create_dir_all(&dir)?;
        for f in 0..2 {
            std::fs::write(dir.join(format!("f{f}.o")), file_text(d, f, 0))?;
        }
    }
    std::thread::sleep(Duration::from_millis(1500));
    Ok((repo, id, worktree))
}

/// Both sides of one comparison: the commands and their timings.
struct Sides<'a> {
    label: &'static str,
    pairs: usize,
    airlock: Box<dyn Fn() -> Command + 'a>,
    bare: Box<dyn Fn() -> Command + 'a>,
    subject: Measure,
    baseline: Measure,
}

/// Round `i` runs, for each comparison that has a round `i`, its airlock
/// side then its bare side; round 0 is untimed. Returns how many airlock
/// execs of each ran.
fn interleave(env: &Env, sides: &mut [Sides<'_>]) -> Result<Vec<usize>> {
    let rounds = sides.iter().map(|s| s.pairs).max().unwrap_or(0);
    let mut execs = vec![0; sides.len()];
    for i in 0..=rounds {
        let timed_round = i > 0;
        for (n, s) in sides.iter_mut().enumerate().filter(|(_, s)| i <= s.pairs) {
            let (a, _) = timed((s.airlock)())?;
            let (b, _) = timed((s.bare)())?;
            execs[n] += 1;
            if timed_round {
                s.subject.push(a);
                s.baseline.push(b);
            }
            env.say(&format!(
                "exec {}: round {i}{}: airlock {:.2} ms, bare {:.2} ms",
                s.label,
                if timed_round { "" } else { " (untimed)" },
                a.as_secs_f64() * 1e3,
                b.as_secs_f64() * 1e3
            ));
        }
    }
    Ok(execs)
}

/// The number of `exec` traces `airlock show --json` lists.
fn count_exec_traces(shown: &serde_json::Value) -> Option<usize> {
    let traces = shown["traces"].as_array()?;
    Some(
        traces
            .iter()
            .filter(|t| t["origin"].as_str() == Some("exec"))
            .count(),
    )
}
