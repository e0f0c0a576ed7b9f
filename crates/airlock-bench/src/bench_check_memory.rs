//! `check-memory`: the peak memory of `airlock check` on a large change
//! (5,000 files, 40 MB of diff by default), against `git diff` of the same
//! change. Memory is the figure; times are shown beside it.
//!
//! The peak is `ru_maxrss` from `wait4` on the child: the largest resident
//! set of that process or of any process it waited for (so a `git` airlock
//! runs counts if it is larger), not a sum.

use std::fs::File;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};

use crate::env::{Env, make_repo, run, run_id, sync, write_brief};
use crate::stats::{Comparison, Measure, Target};

pub struct Opts {
    pub files: usize,
    /// KiB of new text written into each file.
    pub kib: usize,
    pub rounds: usize,
}

impl Default for Opts {
    fn default() -> Self {
        Opts {
            files: 5000,
            kib: 8,
            rounds: 3,
        }
    }
}

const PER_DIR: usize = 100;

fn workflow(files: usize, lines: usize) -> String {
    format!(
        "[gates.ok]\nrun = \"true\"\n\n[policy]\ntarget = \"main\"\nmax_files = {}\nmax_lines = {}\n",
        files * 2,
        lines * 2
    )
}

/// Rewrites every file under `root/src` with about `kib` KiB of new lines;
/// returns the number of lines written.
fn edit(root: &Path, files: usize, kib: usize) -> Result<usize> {
    let mut lines = 0;
    for k in 0..files {
        let (d, f) = (k / PER_DIR, k % PER_DIR);
        let mut text = String::with_capacity(kib * 1024 + 100);
        let mut n = 0;
        while text.len() < kib * 1024 {
            text.push_str(&format!(
                "line {n:05} of file {d}/{f}: the quick brown fox jumps over the lazy dog\n"
            ));
            n += 1;
        }
        lines += n;
        std::fs::write(
            root.join("src")
                .join(format!("d{d:03}"))
                .join(format!("f{f:03}.txt")),
            text,
        )?;
    }
    Ok(lines)
}

/// Runs `cmd` to completion with its output discarded; returns how long it
/// took and its peak resident set in KiB. Fails unless it exits 0.
fn peak_rss(mut cmd: Command, stderr_log: &Path) -> Result<(Duration, u64)> {
    let log = File::create(stderr_log)?;
    let start = Instant::now();
    let child = cmd
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .with_context(|| format!("cannot run {:?}", cmd.get_program()))?;
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: rusage is plain data; wait4 fills it for our own child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: pid is a child of this process, not yet reaped (the
        // `Child` handle is never waited on).
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if r == pid {
            break;
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            bail!("wait4 on {pid} failed: {e}");
        }
    }
    let elapsed = start.elapsed();
    if !(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0) {
        bail!(
            "{:?} failed (wait status {status}):\n{}",
            cmd.get_program(),
            std::fs::read_to_string(stderr_log).unwrap_or_default()
        );
    }
    Ok((elapsed, usage.ru_maxrss as u64))
}

fn median(v: &mut [u64]) -> u64 {
    v.sort_unstable();
    v.get(v.len() / 2).copied().unwrap_or(0)
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

pub fn bench(
    airlock: &Path,
    opts: &Opts,
    verbose: bool,
    keep: &mut Vec<tempfile::TempDir>,
) -> Result<Comparison> {
    let env = Env::new(airlock, "check-memory", verbose)?;
    let dirs = opts.files.div_ceil(PER_DIR);
    let files = dirs * PER_DIR;
    let lines_guess = files * (opts.kib * 1024 / 60 + 1);
    let repo = env.path("repo");
    make_repo(&env, &repo, dirs, PER_DIR, &workflow(files, lines_guess))?;
    let brief = env.path("brief.toml");
    write_brief(&brief, "check memory bench", &["ok"])?;
    let out = run(env.airlock(&repo, &["start", "--json", &brief.display().to_string()]))?;
    let id = run_id(&out)?;
    let worktree = repo.join(".airlock/local/runs").join(&id).join("worktree");
    let lines = edit(&worktree, files, opts.kib)?;
    // The size of the change as git shows it: the patch `git diff` writes.
    let patch = run(env.git(&worktree, &["diff", "--no-ext-diff", "HEAD"]))?;
    let patch_bytes = patch.stdout.len();
    drop(patch);
    env.say(&format!(
        "check-memory: {files} files, {lines} new lines, a patch of {:.1} MiB",
        patch_bytes as f64 / 1048576.0
    ));

    let mut subject = Measure::new("airlock check");
    let mut baseline = Measure::new("git diff HEAD");
    let (mut check_rss, mut git_rss) = (Vec::new(), Vec::new());
    let log = env.path("stderr.log");
    for round in 0..=opts.rounds {
        sync();
        let (a, a_rss) = peak_rss(env.airlock(&repo, &["check", &id]), &log)?;
        sync();
        let (b, b_rss) = peak_rss(env.git(&worktree, &["diff", "--no-ext-diff", "HEAD"]), &log)?;
        env.say(&format!(
            "check-memory: round {round}: check {:.1} MiB in {:.0} ms, git diff {:.1} MiB in {:.0} ms",
            mib(a_rss),
            a.as_secs_f64() * 1e3,
            mib(b_rss),
            b.as_secs_f64() * 1e3
        ));
        if round > 0 {
            subject.push(a);
            baseline.push(b);
            check_rss.push(a_rss);
            git_rss.push(b_rss);
        }
    }
    let (c, g) = (median(&mut check_rss), median(&mut git_rss));
    ensure!(c > 0 && g > 0, "no peak resident set was reported");
    keep.push(env.into_dir());
    Ok(Comparison {
        id: "check-memory".into(),
        title: format!(
            "check-memory: peak memory of airlock check on a change of {files} files ({:.1} MiB patch) vs git diff of it, {} interleaved rounds",
            patch_bytes as f64 / 1048576.0,
            opts.rounds
        ),
        subject,
        baseline,
        details: vec![],
        notes: vec![
            format!(
                "peak resident set, median: airlock check {:.1} MiB, git diff {:.1} MiB ({:.2}x); {:.2}x the patch",
                mib(c),
                mib(g),
                c as f64 / g as f64,
                c as f64 * 1024.0 / patch_bytes as f64
            ),
            format!("peaks per round (KiB): airlock check {check_rss:?}, git diff {git_rss:?}"),
            format!("{files} files rewritten, {lines} new lines, patch {patch_bytes} bytes"),
        ],
        target: Target::None,
    })
}
