//! `agent`: `airlock agent RUN --preset claude -- AGENT` from its start to
//! the agent's first instruction, against the same agent started bare.
//! The agent is a script whose first instruction writes the wall clock
//! (`date +%s%N`) to a file; the time counted is from just before the
//! process is spawned to that clock. airlock's side includes opening the
//! repository, the agent's directory and configuration, the relay, the
//! egress proxy (the preset's hosts: the lane's network is off) and a cold
//! sandbox; the bare side is the script in a copy of the same directory.
//! The whole session is reported too (start to airlock's exit: the trace
//! stored, the relay and proxy stopped).

use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};

use crate::env::{Env, make_repo, run, run_id, timed, write_brief};
use crate::stats::{Comparison, Measure, Target};

pub struct Opts {
    pub pairs: usize,
}

impl Default for Opts {
    fn default() -> Self {
        Opts { pairs: 21 }
    }
}

const WORKFLOW: &str = "[gates.ok]\nrun = \"true\"\n\n[policy]\ntarget = \"main\"\n";

/// The stand-in agent: its first instruction notes the time.
const AGENT: &str = "#!/bin/sh\ndate +%s%N > \"$(dirname \"$0\")/first.ns\"\n";

fn now_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

/// The time from `spawned_ns` to the clock the agent wrote in `dir`.
fn to_first(dir: &Path, spawned_ns: u128) -> Result<Duration> {
    let text = std::fs::read_to_string(dir.join("first.ns"))
        .with_context(|| format!("the agent wrote no first.ns in {}", dir.display()))?;
    let first: u128 = text.trim().parse().context("first.ns is not a number")?;
    Ok(Duration::from_nanos(first.saturating_sub(spawned_ns) as u64))
}

pub fn bench(
    airlock: &Path,
    opts: &Opts,
    verbose: bool,
    keep: &mut Vec<tempfile::TempDir>,
) -> Result<Vec<Comparison>> {
    let env = Env::new(airlock, "agent", verbose)?;
    let repo = env.path("repo");
    make_repo(&env, &repo, 10, 10, WORKFLOW)?;
    let brief = env.path("brief.toml");
    write_brief(&brief, "agent bench", &["ok"])?;
    let out = run(env.airlock(&repo, &["start", "--json", &brief.display().to_string()]))?;
    let id = run_id(&out)?;
    let wt = repo.join(".airlock/local/runs").join(&id).join("worktree");
    let bare = env.path("bare");
    std::fs::create_dir_all(&bare)?;
    for dir in [&wt, &bare] {
        let script = dir.join("agent.sh");
        std::fs::write(&script, AGENT)?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755))?;
    }

    let mut first = Measure::new("airlock agent --preset claude: to the first instruction");
    let mut first_bare = Measure::new("the agent bare: to the first instruction");
    let mut session = Measure::new("airlock agent --preset claude: the whole session");
    let mut session_bare = Measure::new("the agent bare: the whole session");
    for i in 0..=opts.pairs {
        let timed_round = i > 0;
        let spawned = now_ns();
        let (a_all, _) = timed(env.airlock(
            &repo,
            &["agent", &id, "--preset", "claude", "--", "./agent.sh"],
        ))?;
        let a = to_first(&wt, spawned)?;
        let mut cmd = env.command(bare.join("agent.sh"), &bare);
        cmd.arg("--settings=x");
        let spawned = now_ns();
        let started = Instant::now();
        run(cmd)?;
        let b_all = started.elapsed();
        let b = to_first(&bare, spawned)?;
        if timed_round {
            first.push(a);
            first_bare.push(b);
            session.push(a_all);
            session_bare.push(b_all);
        }
        env.say(&format!(
            "agent: round {i}{}: airlock {:.1} ms to the first instruction ({:.1} ms in all), bare {:.1} ms",
            if timed_round { "" } else { " (untimed)" },
            a.as_secs_f64() * 1e3,
            a_all.as_secs_f64() * 1e3,
            b.as_secs_f64() * 1e3
        ));
    }
    keep.push(env.into_dir());
    Ok(vec![
        Comparison {
            id: "agent".into(),
            title: format!(
                "agent: airlock agent start-up to the agent's first instruction vs the agent bare, {} interleaved pairs",
                opts.pairs
            ),
            subject: first,
            baseline: first_bare,
            details: vec![],
            notes: vec![
                "the agent is `sh` running `date +%s%N`; airlock's side: preset claude, a lane with no network (so the proxy with the preset's hosts), a cold sandbox, the relay".into(),
            ],
            target: Target::None,
        },
        Comparison {
            id: "agent-session".into(),
            title: "agent-session: the whole `airlock agent` session (trace stored, relay and proxy stopped) vs the agent bare".into(),
            subject: session,
            baseline: session_bare,
            details: vec![],
            notes: vec![],
            target: Target::None,
        },
    ])
}
