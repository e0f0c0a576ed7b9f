//! `hook`: one PreToolUse decision, process start included, as an agent
//! pays for it: `airlock -C REPO hook claude pre --run RUN` started in the
//! run's worktree with a Claude Code Bash payload on stdin, against the
//! smallest hook written in Python reading the same payload (`json.load`
//! of stdin, exit 0), in the same run, interleaved.
//!
//! Details, not judged: the same hook denying `git push` (the decision
//! printed), Codex's contract, and the process alone (`airlock --version`,
//! no repository opened), which shows what the decision itself costs.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use serde_json::json;

use crate::env::{Env, make_repo, run, run_id, write_brief};
use crate::stats::{Comparison, Measure, Target};

pub struct Opts {
    pub pairs: usize,
    /// Another airlock binary (an earlier build) timed the same way in the
    /// same rounds, as a detail.
    pub compare_with: Option<std::path::PathBuf>,
}

impl Default for Opts {
    fn default() -> Self {
        Opts {
            pairs: 101,
            compare_with: None,
        }
    }
}

/// The target: a decision, process start included, under this at the median.
const TARGET: Duration = Duration::from_millis(5);

const WORKFLOW: &str = "[gates.ok]\nrun = \"true\"\n\n[policy]\ntarget = \"main\"\n";

/// The baseline: the least a hook in Python does.
const PYTHON_HOOK: &str = "import json, sys\njson.load(sys.stdin)\nsys.exit(0)\n";

/// A typical Bash call: a compound command with a pipe and a redirection.
const COMMAND: &str = "cd src && cargo test --workspace 2>&1 | tail -n 20 > /tmp/test.log";

pub fn bench(
    airlock: &Path,
    opts: &Opts,
    verbose: bool,
    keep: &mut Vec<tempfile::TempDir>,
) -> Result<Vec<Comparison>> {
    let python = which("python3").context(
        "the hook benchmark's baseline is a Python hook: python3 is not on PATH (install python3)",
    )?;
    let env = Env::new(airlock, "hook", verbose)?;
    let repo = env.path("repo");
    make_repo(&env, &repo, 5, 10, WORKFLOW)?;
    let brief = env.path("brief.toml");
    write_brief(&brief, "hook bench", &["ok"])?;
    let out = run(env.airlock(&repo, &["start", "--json", &brief.display().to_string()]))?;
    let id = run_id(&out)?;
    let worktree = repo.join(".airlock/local/runs").join(&id).join("worktree");
    let script = env.path("hook.py");
    std::fs::write(&script, PYTHON_HOOK)?;

    let allowed = claude_payload(&worktree, COMMAND);
    let push = claude_payload(&worktree, "git push origin HEAD:main");
    let codex = codex_payload(&worktree, COMMAND);
    let repo_arg = repo.display().to_string();
    let hook_of = |binary: &Path, agent: &str| {
        let mut cmd = env.command(binary, &worktree);
        cmd.args(["-C", &repo_arg, "hook", agent, "pre", "--run", &id]);
        cmd
    };
    let hook = |agent: &str| hook_of(airlock, agent);
    let python_hook = || {
        let mut cmd = env.command(&python, &worktree);
        cmd.arg(&script);
        cmd
    };
    let version = || {
        let mut cmd = env.command(airlock, &worktree);
        cmd.arg("--version");
        cmd
    };

    // The answers are the contract's: nothing for the allowed call, a
    // denial for the push.
    let out = fed(hook("claude"), &allowed)?;
    ensure!(out.is_empty(), "the allowed call got an answer: {out}");
    let out = fed(hook("claude"), &push)?;
    ensure!(
        out.contains("\"permissionDecision\":\"deny\""),
        "git push was not denied: {out:?}"
    );
    let out = fed(hook("codex"), &codex)?;
    ensure!(out.is_empty(), "Codex's allowed call got an answer: {out}");

    let mut subject = Measure::new("airlock hook claude pre (Bash, allowed)");
    let mut baseline = Measure::new("python3 hook.py (json.load of the same payload)");
    let mut denied = Measure::new("airlock hook claude pre (git push, denied)");
    let mut codex_side = Measure::new("airlock hook codex pre (Bash, allowed)");
    let mut start = Measure::new("airlock --version (process start, no repository)");
    let mut cpu_hook = Measure::new("CPU time: airlock hook claude pre (Bash, allowed)");
    let mut cpu_python = Measure::new("CPU time: python3 hook.py");
    let mut cpu_start = Measure::new("CPU time: airlock --version");
    let mut other = opts.compare_with.as_ref().map(|path| {
        (
            path.clone(),
            Measure::new(format!(
                "{} hook claude pre (Bash, allowed)",
                path.display()
            )),
            Measure::new(format!("CPU time: {} hook claude pre", path.display())),
        )
    });
    if let Some((path, _, _)) = &other {
        let out = fed(hook_of(path, "claude"), &allowed)?;
        ensure!(
            out.is_empty(),
            "{} answered the allowed call: {out}",
            path.display()
        );
    }
    for round in 0..=opts.pairs {
        let (a, a_cpu) = timed_fed(hook("claude"), &allowed)?;
        let (b, b_cpu) = timed_fed(python_hook(), &allowed)?;
        let (d, _) = timed_fed(hook("claude"), &push)?;
        let (c, _) = timed_fed(hook("codex"), &codex)?;
        let (v, v_cpu) = timed_fed(version(), b"")?;
        let o = match &other {
            Some((path, _, _)) => Some(timed_fed(hook_of(path, "claude"), &allowed)?),
            None => None,
        };
        env.say(&format!(
            "hook: round {round}{}: airlock {:.2} ms, python {:.2} ms",
            if round == 0 { " (untimed)" } else { "" },
            a.as_secs_f64() * 1e3,
            b.as_secs_f64() * 1e3
        ));
        if round > 0 {
            subject.push(a);
            baseline.push(b);
            denied.push(d);
            codex_side.push(c);
            start.push(v);
            cpu_hook.push(a_cpu);
            cpu_python.push(b_cpu);
            cpu_start.push(v_cpu);
            if let (Some((_, wall, cpu)), Some((o_wall, o_cpu))) = (&mut other, o) {
                wall.push(o_wall);
                cpu.push(o_cpu);
            }
        }
    }
    let comparison = Comparison {
        id: "hook".into(),
        title: format!(
            "hook: airlock hook claude pre on a Bash payload vs a minimal Python hook, process start included, {} interleaved rounds",
            opts.pairs
        ),
        subject,
        baseline,
        details: {
            let mut details = vec![denied, codex_side, start, cpu_hook, cpu_python, cpu_start];
            if let Some((_, wall, cpu)) = other {
                details.extend([wall, cpu]);
            }
            details
        },
        notes: vec![
            format!("command judged: {COMMAND}"),
            "started in the run's worktree with -C REPO, as `airlock agent` relays it; repository: 5 dirs x 10 files".into(),
        ],
        target: Target::MedianUnder(TARGET),
    };
    keep.push(env.into_dir());
    Ok(vec![comparison])
}

fn claude_payload(worktree: &Path, command: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "session_id": "00893aaf-19fa-41d2-8238-13269b9b3ca0",
        "transcript_path": "/home/user/.claude/projects/bench/00893aaf-19fa-41d2-8238-13269b9b3ca0.jsonl",
        "cwd": worktree,
        "permission_mode": "default",
        "hook_event_name": "PreToolUse",
        "tool_name": "Bash",
        "tool_input": {"command": command, "description": "Run the tests", "timeout": 120000},
        "tool_use_id": "toolu_01ABC123"
    }))
    .expect("a JSON value serializes")
}

fn codex_payload(worktree: &Path, command: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "session_id": "019a2b3c-0000-7000-8000-000000000001",
        "turn_id": "turn-1",
        "transcript_path": null,
        "cwd": worktree,
        "hook_event_name": "PreToolUse",
        "model": "gpt-5",
        "permission_mode": "default",
        "tool_name": "Bash",
        "tool_input": {"command": command},
        "tool_use_id": "call_1"
    }))
    .expect("a JSON value serializes")
}

/// Runs `cmd` with `input` on stdin; its stdout. Fails unless it exits 0.
fn fed(cmd: Command, input: &[u8]) -> Result<String> {
    let (_, out) = run_fed(cmd, input)?;
    Ok(out)
}

/// [`fed`], timed from spawn to exit: the wall time, and the CPU time
/// (user + system) the process used, which a loaded machine inflates less.
fn timed_fed(cmd: Command, input: &[u8]) -> Result<(Duration, Duration)> {
    let cpu_before = children_cpu();
    let (elapsed, _) = run_fed(cmd, input)?;
    Ok((elapsed, children_cpu().saturating_sub(cpu_before)))
}

/// User + system time of this process's waited-for children so far.
fn children_cpu() -> Duration {
    // SAFETY: getrusage writes one `rusage` into the zeroed struct it is given.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage);
        usage
    };
    let tv = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec.max(0) as u64) + Duration::from_micros(t.tv_usec.max(0) as u64)
    };
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

fn run_fed(mut cmd: Command, input: &[u8]) -> Result<(Duration, String)> {
    let t = Instant::now();
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot start {:?}", cmd.get_program()))?;
    let mut stdin = child.stdin.take().context("no stdin")?;
    stdin.write_all(input)?;
    drop(stdin);
    let out = child.wait_with_output()?;
    let elapsed = t.elapsed();
    if !out.status.success() {
        bail!(
            "{:?} exited {}: {}",
            cmd.get_program(),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok((elapsed, String::from_utf8_lossy(&out.stdout).into_owned()))
}

fn which(program: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
}
