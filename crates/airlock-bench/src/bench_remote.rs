//! `remote`: the time a shared remote (`[team] remote`, issue 20) adds to
//! `submit` (the round's push) and to `promote` (ls-remote, fetch, the
//! lease, the atomic push with the promotion record). Two repositories
//! made alike, one with `[team] remote` pointing at a bare repository on
//! the same disk, one without; each pair runs the same run in both. The
//! team's promotion includes sealing the run's events (a checkpoint signed
//! and pushed to `refs/airlock/log`).

use std::path::Path;
use std::time::Duration;

use anyhow::Result;

use crate::env::{Env, make_repo, run, run_id, timed, write_brief};
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

fn workflow(team: bool) -> String {
    let mut text =
        "[gates.build]\nrun = \"test -f src/d000/f000.txt\"\n\n[policy]\ntarget = \"main\"\n"
            .to_string();
    if team {
        text.push_str("\n[team]\nremote = \"origin\"\n");
    }
    text
}

pub fn bench(
    airlock: &Path,
    opts: &Opts,
    verbose: bool,
    keep: &mut Vec<tempfile::TempDir>,
) -> Result<Vec<Comparison>> {
    let env = Env::new(airlock, "remote", verbose)?;
    let local = env.path("local");
    let team = env.path("team");
    let bare = env.path("remote.git");
    make_repo(&env, &local, 5, 10, &workflow(false))?;
    make_repo(&env, &team, 5, 10, &workflow(true))?;
    // Team mode needs this machine's key in `.airlock/runners` on the
    // remote's target (its events are sealed before every promotion).
    let line = run(env.airlock(&team, &["key", "public", "--runners-line"]))?;
    std::fs::create_dir_all(team.join(".airlock"))?;
    std::fs::write(team.join(".airlock/runners"), &line.stdout)?;
    run(env.git(&team, &["add", ".airlock/runners"]))?;
    run(env.git(&team, &["commit", "-q", "-m", "runners"]))?;
    let bare_arg = bare.display().to_string();
    run(env.git(&team, &["clone", "-q", "--bare", ".", &bare_arg]))?;
    run(env.git(&team, &["remote", "add", "origin", &bare_arg]))?;
    let brief = env.path("brief.toml");
    write_brief(&brief, "remote bench", &["build"])?;
    let brief_arg = brief.display().to_string();

    let mut submit_team = Measure::new("airlock submit, [team] remote on disk");
    let mut submit_local = Measure::new("airlock submit, no remote");
    let mut promote_team = Measure::new("airlock promote, [team] remote on disk");
    let mut promote_local = Measure::new("airlock promote, no remote");
    for i in 0..=opts.pairs {
        let timed_round = i > 0;
        let mut times = [Duration::ZERO; 4];
        // Alternate which repository goes first.
        let order: [(&Path, usize); 2] = if i % 2 == 0 {
            [(&team, 0), (&local, 2)]
        } else {
            [(&local, 2), (&team, 0)]
        };
        for (repo, slot) in order {
            let (_, out) = timed(env.airlock(repo, &["start", "--json", &brief_arg]))?;
            let id = run_id(&out)?;
            run(env.airlock(repo, &["exec", &id, "--", "sh", "-c", EDIT]))?;
            run(env.airlock(repo, &["check", &id]))?;
            times[slot] = timed(env.airlock(repo, &["submit", &id]))?.0;
            run(env.airlock(repo, &["approve", &id]))?;
            times[slot + 1] = timed(env.airlock(repo, &["promote", &id]))?.0;
            // The next run starts from the promoted target: a remote's
            // promotion lands there, so bring it back (untimed).
            if repo == team.as_path() {
                run(env.git(repo, &["fetch", "-q", "origin", "main"]))?;
                run(env.git(repo, &["merge", "-q", "--ff-only", "FETCH_HEAD"]))?;
            }
        }
        if timed_round {
            submit_team.push(times[0]);
            promote_team.push(times[1]);
            submit_local.push(times[2]);
            promote_local.push(times[3]);
        }
        env.say(&format!(
            "remote: round {i}: submit {:.1} / {:.1} ms, promote {:.1} / {:.1} ms (remote / none)",
            times[0].as_secs_f64() * 1e3,
            times[2].as_secs_f64() * 1e3,
            times[1].as_secs_f64() * 1e3,
            times[3].as_secs_f64() * 1e3
        ));
    }
    // Sanity: every promotion landed on the remote, each with its record.
    let merges = run(env.git(&bare, &["rev-list", "--count", "--merges", "main"]))?;
    let merges: usize = String::from_utf8_lossy(&merges.stdout).trim().parse()?;
    anyhow::ensure!(
        merges == opts.pairs + 1,
        "the remote's main has {merges} merges, expected {}",
        opts.pairs + 1
    );
    let records = run(env.git(&bare, &["for-each-ref", "refs/airlock/promoted/"]))?;
    anyhow::ensure!(
        String::from_utf8_lossy(&records.stdout).lines().count() == opts.pairs + 1,
        "the remote lacks promotion records"
    );
    keep.push(env.into_dir());
    let note = |team: &Measure, local: &Measure| {
        format!(
            "the remote adds {:.1} ms (median)",
            (team.median().as_secs_f64() - local.median().as_secs_f64()) * 1e3
        )
    };
    Ok(vec![
        Comparison {
            id: "remote-submit".into(),
            title: format!(
                "remote: the time a shared remote adds to `submit` (push of the round), {} interleaved pairs",
                opts.pairs
            ),
            notes: vec![note(&submit_team, &submit_local)],
            subject: submit_team,
            baseline: submit_local,
            details: vec![],
            target: Target::None,
        },
        Comparison {
            id: "remote-promote".into(),
            title: format!(
                "remote: the time a shared remote adds to `promote` (ls-remote, fetch, lease, atomic push), {} interleaved pairs",
                opts.pairs
            ),
            notes: vec![note(&promote_team, &promote_local)],
            subject: promote_team,
            baseline: promote_local,
            details: vec![],
            target: Target::None,
        },
    ])
}
