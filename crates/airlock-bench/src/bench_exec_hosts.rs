//! `exec-hosts`: what a network that is a list of hosts adds to `airlock
//! exec RUN -- true` (issue 16): the egress proxy started and stopped for
//! the command, and the command's network namespace and bridge, which a
//! warm sandbox makes ahead of the command.
//!
//! - `exec-hosts`: a run of a lane whose network is `["pkg.test:443"]`
//!   against a run of the same repository whose lane's network is off (the
//!   default, so both in warm sandboxes);
//! - `exec-hosts-cold`: the same pair in a repository with `keep_warm = 0`,
//!   so both sides build their sandbox for each command and the difference
//!   is the proxy and the bridge alone.
//!
//! The two runs of each pair are interleaved, command by command.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};

use crate::env::{Env, make_repo, run, run_id, timed};
use crate::stats::{Comparison, Measure, Target};

pub struct Opts {
    pub pairs: usize,
}

impl Default for Opts {
    fn default() -> Self {
        Opts { pairs: 51 }
    }
}

/// The target: within 1 ms of the same command with the network off.
const ADDED: Duration = Duration::from_millis(1);

fn workflow(warm: bool) -> String {
    format!(
        "[gates.ok]\nrun = \"true\"\n\n[policy]\ntarget = \"main\"\n\n{}[lanes.staging]\nnetwork = [\"pkg.test:443\"]\n",
        if warm {
            ""
        } else {
            "[sandbox]\nkeep_warm = 0\n\n"
        }
    )
}

/// Starts a run of `lane` in `repo`: its id.
fn start(env: &Env, repo: &Path, name: &str, lane: &str) -> Result<String> {
    let brief = env.path(&format!("{name}.toml"));
    std::fs::write(
        &brief,
        format!(
            "title = \"{name}\"\nobjective = \"benchmark {name}\"\ntouch = [\"src/**\"]\nchecks = [\"ok\"]\nrollback = \"revert the merge commit\"\nlane = \"{lane}\"\n"
        ),
    )?;
    let out = run(env.airlock(repo, &["start", "--json", &brief.display().to_string()]))?;
    run_id(&out)
}

pub fn bench(
    airlock: &Path,
    opts: &Opts,
    verbose: bool,
    keep: &mut Vec<tempfile::TempDir>,
) -> Result<Vec<Comparison>> {
    let env = Env::new(airlock, "exec-hosts", verbose)?;
    let mut out = Vec::new();
    for (id, warm) in [("exec-hosts", true), ("exec-hosts-cold", false)] {
        let repo = env.path(id);
        make_repo(&env, &repo, 5, 10, &workflow(warm))?;
        let hosts = start(&env, &repo, &format!("{id}-hosts"), "staging")?;
        let off = start(&env, &repo, &format!("{id}-off"), "governed")?;
        // The list is what the command got, from one untimed exec.
        let shown = run(env.airlock(&repo, &["exec", &hosts, "--json", "--", "true"]))?;
        let trace: serde_json::Value =
            serde_json::from_slice(&shown.stdout).context("airlock exec --json printed no JSON")?;
        anyhow::ensure!(
            trace["egress"] == serde_json::json!(["pkg.test:443"]),
            "the list-of-hosts run's command did not go through the proxy: {trace}"
        );
        let mut subject = Measure::new("airlock exec RUN -- true, network = [\"pkg.test:443\"]");
        let mut baseline = Measure::new("airlock exec RUN -- true, network off");
        for i in 0..=opts.pairs {
            let (a, _) = timed(env.airlock(&repo, &["exec", &hosts, "--", "true"]))?;
            let (b, _) = timed(env.airlock(&repo, &["exec", &off, "--", "true"]))?;
            env.say(&format!(
                "{id}: round {i}: hosts {:.2} ms, off {:.2} ms",
                a.as_secs_f64() * 1e3,
                b.as_secs_f64() * 1e3
            ));
            if i > 0 {
                subject.push(a);
                baseline.push(b);
            }
        }
        out.push(Comparison {
            id: id.into(),
            title: format!(
                "{id}: airlock exec RUN -- true with a list of hosts vs network off, {} interleaved pairs{}",
                opts.pairs,
                if warm {
                    " (both in warm sandboxes, the default)"
                } else {
                    " (keep_warm = 0: both cold)"
                }
            ),
            subject,
            baseline,
            details: vec![],
            notes: vec![
                if warm {
                    "a list-of-hosts command gets a proxy of its own (started, stopped, records kept); its network namespace and bridge are made ahead by the warm sandbox".into()
                } else {
                    "a list-of-hosts command gets a proxy of its own (started, stopped, records kept) and a cold sandbox with the bridge".into()
                },
            ],
            target: Target::AddedPerCommandUnder {
                commands: 1,
                limit: ADDED,
            },
        });
    }
    keep.push(env.into_dir());
    Ok(out)
}
