//! `lifecycle`: what airlock adds around the user's own commands. The
//! baseline runs the agent's edit and the gates directly (`sh -c`); airlock
//! runs start, exec (the edit), check (the same gates), submit, approve and
//! promote.

use std::path::Path;
use std::time::Duration;

use anyhow::Result;

use crate::env::{Env, generate_tree, make_repo, run, run_id, timed, write_brief};
use crate::stats::{Comparison, Measure, Target};

pub struct Opts {
    pub pairs: usize,
}

impl Default for Opts {
    fn default() -> Self {
        Opts { pairs: 15 }
    }
}

const EDIT: &str = "printf 'fixed %s\\n' \"$(date +%s%N)\" > src/d000/f000.txt";
const GATE_BUILD: &str = "test -f src/d000/f000.txt";
const GATE_TEST: &str = "grep -q fixed src/d000/f000.txt";

fn workflow() -> String {
    format!(
        "[gates.build]\nrun = \"{}\"\n\n[gates.test]\nrun = \"{}\"\n\n[policy]\ntarget = \"main\"\n",
        GATE_BUILD, GATE_TEST
    )
}

pub fn bench(
    airlock: &Path,
    opts: &Opts,
    verbose: bool,
    keep: &mut Vec<tempfile::TempDir>,
) -> Result<Comparison> {
    let env = Env::new(airlock, "lifecycle", verbose)?;
    let repo = env.path("repo");
    // A small repository: 5 dirs x 10 files.
    make_repo(&env, &repo, 5, 10, &workflow())?;
    let brief = env.path("brief.toml");
    write_brief(&brief, "lifecycle bench", &["build", "test"])?;
    let brief_arg = brief.display().to_string();
    // The baseline works in a plain copy of the same files.
    let plain = env.path("plain");
    generate_tree(&plain, 5, 10)?;

    let steps = ["start", "exec", "check", "submit", "approve", "promote"];
    let mut subject = Measure::new("airlock start..promote");
    let mut baseline = Measure::new("sh -c EDIT; sh -c GATE x2");
    let mut parts: Vec<Measure> = steps
        .iter()
        .map(|s| Measure::new(format!("airlock {s}")))
        .collect();

    for i in 0..=opts.pairs {
        let timed_round = i > 0;
        // A: airlock.
        let mut times = [Duration::ZERO; 6];
        let (d, out) = timed(env.airlock(&repo, &["start", "--json", &brief_arg]))?;
        times[0] = d;
        let id = run_id(&out)?;
        times[1] = timed(env.airlock(&repo, &["exec", &id, "--", "sh", "-c", EDIT]))?.0;
        times[2] = timed(env.airlock(&repo, &["check", &id]))?.0;
        times[3] = timed(env.airlock(&repo, &["submit", &id]))?.0;
        times[4] = timed(env.airlock(&repo, &["approve", &id]))?.0;
        times[5] = timed(env.airlock(&repo, &["promote", &id]))?.0;
        // B: the same commands, directly.
        let mut direct = Duration::ZERO;
        for script in [EDIT, GATE_BUILD, GATE_TEST] {
            let mut cmd = env.command("sh", &plain);
            cmd.args(["-c", script]);
            direct += timed(cmd)?.0;
        }
        if timed_round {
            subject.push(times.iter().sum());
            for (m, t) in parts.iter_mut().zip(times) {
                m.push(t);
            }
            baseline.push(direct);
        }
        env.say(&format!(
            "lifecycle: round {i}: airlock {:.1} ms, direct {:.1} ms",
            times.iter().sum::<Duration>().as_secs_f64() * 1e3,
            direct.as_secs_f64() * 1e3
        ));
    }
    // Sanity: every run was promoted into main.
    let log = run(env.git(&repo, &["rev-list", "--count", "--merges", "main"]))?;
    let merges: usize = String::from_utf8_lossy(&log.stdout).trim().parse()?;
    anyhow::ensure!(
        merges == opts.pairs + 1,
        "main has {merges} merges, expected {}",
        opts.pairs + 1
    );
    let overhead = subject.median().saturating_sub(baseline.median());
    keep.push(env.into_dir());
    Ok(Comparison {
        id: "lifecycle".into(),
        title: format!(
            "lifecycle: airlock start, exec, check, submit, approve, promote vs the same edit and gates run directly, {} interleaved pairs",
            opts.pairs
        ),
        subject,
        baseline,
        details: parts,
        notes: vec![format!(
            "airlock adds {:.1} ms (median) around 3 user commands (1 edit, 2 gates); 6 airlock processes",
            overhead.as_secs_f64() * 1e3
        )],
        target: Target::None,
    })
}
