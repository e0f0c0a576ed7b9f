//! `proof`: `airlock submit` (commit, proof build and signing) plus
//! `airlock proof verify` for a checked change of N files, against
//! `git add -A` + `git commit` of the same change in a plain repository.

use std::path::Path;
use std::time::Duration;

use anyhow::Result;

use crate::env::{Env, file_text, make_repo, run, run_id, sync, timed, write_brief};
use crate::stats::{Comparison, Measure, Target};

pub struct Opts {
    pub changed: usize,
    pub rounds: usize,
}

impl Default for Opts {
    fn default() -> Self {
        Opts {
            changed: 1000,
            rounds: 9,
        }
    }
}

const PER_DIR: usize = 100;

fn workflow(changed: usize) -> String {
    format!(
        "[gates.ok]\nrun = \"true\"\n\n[policy]\ntarget = \"main\"\nmax_files = {}\nmax_lines = {}\n",
        changed * 2,
        changed * 10
    )
}

/// Rewrites the first line of the first `changed` files under `root/src`.
fn edit(root: &Path, changed: usize, round: usize) -> Result<()> {
    for k in 0..changed {
        let (d, f) = (k / PER_DIR, k % PER_DIR);
        std::fs::write(
            root.join("src")
                .join(format!("d{d:03}"))
                .join(format!("f{f:03}.txt")),
            file_text(d, f, round),
        )?;
    }
    Ok(())
}

pub fn bench(
    airlock: &Path,
    opts: &Opts,
    verbose: bool,
    keep: &mut Vec<tempfile::TempDir>,
) -> Result<Comparison> {
    let env = Env::new(airlock, "proof", verbose)?;
    // Twice as many files as change, so the change is part of a larger tree.
    let dirs = (opts.changed * 2).div_ceil(PER_DIR);
    let repo = env.path("repo");
    make_repo(&env, &repo, dirs, PER_DIR, &workflow(opts.changed))?;
    let brief = env.path("brief.toml");
    write_brief(&brief, "proof bench", &["ok"])?;
    let out = run(env.airlock(&repo, &["start", "--json", &brief.display().to_string()]))?;
    let id = run_id(&out)?;
    let worktree = repo.join(".airlock/local/runs").join(&id).join("worktree");
    // The baseline: a plain clone of the same commit.
    let plain = env.path("plain");
    run(env.git(
        env.dir.path(),
        &[
            "clone",
            "-q",
            &repo.display().to_string(),
            &plain.display().to_string(),
        ],
    ))?;

    let mut subject = Measure::new("airlock submit + proof verify");
    let mut baseline = Measure::new("git add -A + git commit");
    let mut submit = Measure::new("airlock submit");
    let mut verify = Measure::new("airlock proof verify");

    for round in 1..=opts.rounds + 1 {
        let timed_round = round > 1;
        // A: airlock. A new round of the same run, edited and checked untimed.
        if round > 1 {
            run(env.airlock(&repo, &["redirect", &id, "--reason", "again"]))?;
        }
        edit(&worktree, opts.changed, round)?;
        run(env.airlock(&repo, &["check", &id]))?;
        sync();
        let (s, _) = timed(env.airlock(&repo, &["submit", &id]))?;
        let (v, out) = timed(env.airlock(&repo, &["proof", "verify", &id, "--json"]))?;
        let report: serde_json::Value = serde_json::from_slice(&out.stdout)?;
        anyhow::ensure!(
            report["verified"] == true,
            "proof of round {round} does not verify"
        );
        let checks = report["report"]["checks"].as_array().map_or(0, Vec::len);
        anyhow::ensure!(checks > 0, "proof verify reported no checks");
        // B: git, on the same change.
        edit(&plain, opts.changed, round)?;
        sync();
        let (a, _) = timed(env.git(&plain, &["add", "-A"]))?;
        let (c, _) = timed(env.git(&plain, &["commit", "-q", "-m", &format!("round {round}")]))?;
        if timed_round {
            submit.push(s);
            verify.push(v);
            subject.push(s + v);
            baseline.push(a + c);
        }
        env.say(&format!(
            "proof: round {round}: submit {:.1} ms, verify {:.1} ms, git {:.1} ms",
            ms(s),
            ms(v),
            ms(a + c)
        ));
    }
    // Sanity: the last submission's diff covers the whole change.
    let stat = run(env.git(
        &repo,
        &[
            "diff",
            "--shortstat",
            "main",
            &format!("refs/airlock/runs/{id}"),
        ],
    ))?;
    let stat = String::from_utf8_lossy(&stat.stdout).trim().to_string();
    anyhow::ensure!(
        stat.starts_with(&format!("{} files changed", opts.changed)),
        "the run's branch differs from main by `{stat}`, expected {} files",
        opts.changed
    );
    keep.push(env.into_dir());
    Ok(Comparison {
        id: "proof".into(),
        title: format!(
            "proof: airlock submit + proof verify of a checked change of {} files vs git add + commit of it, {} interleaved rounds",
            opts.changed, opts.rounds
        ),
        subject,
        baseline,
        details: vec![submit, verify],
        notes: vec![format!(
            "tree of {} files; each round rewrites the same {} files (redirect, edit, check untimed); diff base..head: {stat}",
            dirs * PER_DIR,
            opts.changed
        )],
        target: Target::MedianUnder(Duration::from_secs(1)),
    })
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}
