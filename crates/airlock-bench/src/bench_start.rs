//! `start`: `airlock start BRIEF` against `git worktree add --detach` of the
//! same commit, on a generated repository.

use std::path::Path;

use anyhow::Result;

use crate::env::{Env, make_repo, run, run_id, sync, timed, write_brief};
use crate::stats::{Comparison, Measure, Target};

pub struct Opts {
    pub dirs: usize,
    pub files_per_dir: usize,
    pub pairs: usize,
}

impl Default for Opts {
    fn default() -> Self {
        Opts {
            dirs: 200,
            files_per_dir: 100,
            pairs: 9,
        }
    }
}

const WORKFLOW: &str = "[gates.ok]\nrun = \"true\"\n\n[policy]\ntarget = \"main\"\n";

pub fn bench(
    airlock: &Path,
    opts: &Opts,
    verbose: bool,
    keep: &mut Vec<tempfile::TempDir>,
) -> Result<Comparison> {
    let env = Env::new(airlock, "start", verbose)?;
    let repo = env.path("repo");
    let files = opts.dirs * opts.files_per_dir;
    env.say(&format!("start: generating a repository of {files} files"));
    make_repo(&env, &repo, opts.dirs, opts.files_per_dir, WORKFLOW)?;
    let brief = env.path("brief.toml");
    write_brief(&brief, "start bench", &["ok"])?;
    let brief_arg = brief.display().to_string();

    let mut subject = Measure::new("airlock start BRIEF");
    let mut baseline = Measure::new("git worktree add --detach DIR HEAD");
    let mut runs = Vec::new();
    let mut worktrees = Vec::new();

    // One untimed round of each first: page cache, git's first-run costs.
    for i in 0..=opts.pairs {
        let timed_round = i > 0;
        // A: airlock start (the run and its worktree are left in place).
        sync();
        let (a, out) = timed(env.airlock(&repo, &["start", "--json", &brief_arg]))?;
        runs.push(run_id(&out)?);
        // B: git worktree add. Removed only after the last timed round:
        // removing 20,000 files slows down whatever creates files next (ext4
        // skips recently deleted inodes), which would be the next start.
        let wt = env.path(&format!("wt-{i}"));
        let wt_arg = wt.display().to_string();
        sync();
        let (b, _) = timed(env.git(&repo, &["worktree", "add", "--detach", &wt_arg, "HEAD"]))?;
        worktrees.push(wt_arg);
        if timed_round {
            subject.push(a);
            baseline.push(b);
        }
        env.say(&format!(
            "start: round {i}{}: airlock {:.1} ms, git {:.1} ms",
            if timed_round { "" } else { " (untimed)" },
            a.as_secs_f64() * 1e3,
            b.as_secs_f64() * 1e3
        ));
    }
    // Sanity: every run's worktree holds the whole tree.
    if let Some(last) = runs.last() {
        let wt = repo.join(".airlock/local/runs").join(last).join("worktree");
        let n = count_files(&wt.join("src"))?;
        anyhow::ensure!(
            n == files,
            "run {last}'s worktree has {n} files under src, expected {files}"
        );
    }
    for wt in &worktrees {
        run(env.git(&repo, &["worktree", "remove", "--force", wt]))?;
    }
    keep.push(env.into_dir());
    Ok(Comparison {
        id: "start".into(),
        title: format!(
            "start: airlock start vs git worktree add, {files} files, {} interleaved pairs",
            opts.pairs
        ),
        subject,
        baseline,
        details: vec![],
        notes: vec![format!(
            "repository: {} dirs x {} files, one commit; airlock's runs are left in place, git's worktrees removed after the last timed round",
            opts.dirs, opts.files_per_dir
        )],
        target: Target::RatioAtMost(1.2),
    })
}

fn count_files(dir: &Path) -> Result<usize> {
    let mut n = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            n += count_files(&entry.path())?;
        } else {
            n += 1;
        }
    }
    Ok(n)
}
