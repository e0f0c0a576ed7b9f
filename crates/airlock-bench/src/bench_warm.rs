//! `warm`: the memory warm sandboxes hold after many recent runs, with the
//! default bound (`[sandbox] max_warm = 16`) and with a bound too high to
//! matter. Each run is started and runs one command (`airlock exec RUN --
//! true`), which leaves its sandbox warm for `keep_warm` (five minutes).
//! Memory is the proportional set size (PSS, shared pages divided among
//! their users) and the resident set size (RSS) of every process holding
//! this benchmark's hosts' directory open (hosts and the leaders they fork
//! ahead), read from /proc once every run is made and evicted hosts have
//! had a moment to exit.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Result;

use crate::env::{Env, make_repo, run, run_id, write_brief};

pub struct Opts {
    pub runs: usize,
}

impl Default for Opts {
    fn default() -> Self {
        Opts { runs: 1000 }
    }
}

/// What one configuration left behind.
struct Held {
    label: String,
    processes: usize,
    sockets: usize,
    pss_kib: u64,
    rss_kib: u64,
    seconds: f64,
}

pub fn bench(airlock: &Path, opts: &Opts, verbose: bool, json: bool) -> Result<()> {
    let mut rows = Vec::new();
    for (label, max_warm) in [
        ("max_warm = 16 (default)".to_string(), None),
        (
            format!("no bound (max_warm = {})", opts.runs * 4),
            Some(opts.runs * 4),
        ),
    ] {
        rows.push(one(airlock, opts.runs, &label, max_warm, verbose)?);
    }
    let doc = serde_json::json!({
        "id": "warm",
        "runs": opts.runs,
        "configurations": rows.iter().map(|r| serde_json::json!({
            "label": r.label, "processes": r.processes, "sockets": r.sockets,
            "pss_kib": r.pss_kib, "rss_kib": r.rss_kib, "seconds": r.seconds,
        })).collect::<Vec<_>>(),
    });
    if json {
        println!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(());
    }
    println!(
        "warm sandboxes after {} recent runs (one `exec` each; keep_warm 5 min)",
        opts.runs
    );
    println!(
        "  {:<32} {:>9} {:>8} {:>10} {:>10} {:>9}",
        "configuration", "processes", "sockets", "PSS MiB", "RSS MiB", "seconds"
    );
    for r in &rows {
        println!(
            "  {:<32} {:>9} {:>8} {:>10.1} {:>10.1} {:>9.1}",
            r.label,
            r.processes,
            r.sockets,
            r.pss_kib as f64 / 1024.0,
            r.rss_kib as f64 / 1024.0,
            r.seconds
        );
    }
    Ok(())
}

fn one(
    airlock: &Path,
    runs: usize,
    label: &str,
    max_warm: Option<usize>,
    verbose: bool,
) -> Result<Held> {
    let env = Env::new(airlock, "warm", verbose)?;
    let repo = env.path("repo");
    let mut workflow = String::from("[gates.ok]\nrun = \"true\"\n\n[policy]\ntarget = \"main\"\n");
    if let Some(n) = max_warm {
        workflow.push_str(&format!("\n[sandbox]\nmax_warm = {n}\n"));
    }
    make_repo(&env, &repo, 2, 2, &workflow)?;
    let started = Instant::now();
    for i in 0..runs {
        let brief = env.path(&format!("brief-{i}.toml"));
        write_brief(&brief, &format!("warm {i}"), &["ok"])?;
        let out = run(env.airlock(&repo, &["start", "--json", &brief.display().to_string()]))?;
        let id = run_id(&out)?;
        run(env.airlock(&repo, &["exec", &id, "--", "true"]))?;
        if (i + 1) % 50 == 0 {
            env.say(&format!("{label}: {} runs", i + 1));
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    let dir = env.home.join(".config/airlock/sandboxes");
    // Evicted hosts exit within a second of losing their socket.
    std::thread::sleep(Duration::from_secs(3));
    let pids = holders(&dir);
    let (mut pss, mut rss) = (0, 0);
    for pid in &pids {
        let rollup =
            std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap_or_default();
        pss += field_kib(&rollup, "Pss:");
        rss += field_kib(&rollup, "Rss:");
    }
    let sockets = std::fs::read_dir(&dir)
        .map(|rd| {
            rd.flatten()
                .filter(|e| e.file_name().to_string_lossy().ends_with(".sock"))
                .count()
        })
        .unwrap_or(0);
    // Ends them: without its socket a host leaves once idle; what is left
    // after that is this benchmark's to stop.
    for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
        if entry.file_name().to_string_lossy().ends_with(".sock") {
            let _ = std::fs::remove_file(entry.path());
        }
    }
    std::thread::sleep(Duration::from_secs(2));
    // Processes this benchmark started.
    for pid in holders(&dir)
        .into_iter()
        .filter_map(rustix::process::Pid::from_raw)
    {
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
    }
    Ok(Held {
        label: label.to_string(),
        processes: pids.len(),
        sockets,
        pss_kib: pss,
        rss_kib: rss,
        seconds,
    })
}

/// Processes holding `dir` open as descriptor 6: hosts and their leaders.
fn holders(dir: &Path) -> Vec<i32> {
    let Ok(dir) = dir.canonicalize() else {
        return Vec::new();
    };
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if std::fs::read_link(entry.path().join("fd/6")).is_ok_and(|l| l == dir) {
            pids.push(pid);
        }
    }
    pids
}

fn field_kib(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}
