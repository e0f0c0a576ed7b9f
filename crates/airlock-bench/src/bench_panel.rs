//! `panel`: what deciding on one run's evidence costs, in process: the
//! lane's auto-promotion check, the workflow's custom conditions and the
//! review panel (every default rule plus the workflow's), each through the
//! CEL evaluator (`eval_all`, compiled once per call), against
//! `airlock show --json` of the same run (what a reviewer's look costs),
//! with `airlock evidence --json` (collecting the document) beside it.

use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result, ensure};

use airlock_core::evidence::Evidence;
use airlock_core::workflow::Workflow;

use crate::env::{Env, file_text, make_repo, run, run_id, timed, write_brief};
use crate::stats::{Comparison, Measure, Target};

pub struct Opts {
    /// Files the run changes.
    pub changed: usize,
    pub pairs: usize,
}

impl Default for Opts {
    fn default() -> Self {
        Opts {
            changed: 40,
            pairs: 21,
        }
    }
}

const PER_DIR: usize = 20;

fn workflow() -> String {
    "[gates.ok]\nrun = \"true\"\n\n[policy]\ntarget = \"main\"\n\n\
     [lanes.governed]\nauto_promote = [\"bench\"]\n\n[classes.bench]\nmax_lane = \"governed\"\n\n\
     [conditions.big]\nwhen = 'diff.files_changed > 30 && !brief.touch.exists(g, g.startsWith(\"migrations/\"))'\n\
     message = \"a large change\"\neffect = \"needs-review\"\n\n\
     [conditions.hosts]\nwhen = 'network.hosts.exists(h, h.endsWith(\".internal\"))'\n\
     message = \"internal hosts\"\neffect = \"block\"\n\n\
     [conditions.slow]\nwhen = 'gates.exists(g, g.duration_ms > 600000)'\n\
     message = \"a slow gate\"\neffect = \"warn\"\n\n\
     [[panel.security.rules]]\nwhen = 'diff.paths.exists(p, p.endsWith(\".pem\"))'\n\
     vote = \"block\"\nrationale = \"Key files are never committed.\"\n"
        .to_string()
}

pub fn bench(airlock: &Path, opts: &Opts, verbose: bool) -> Result<Comparison> {
    airlock_core::evaluator::install(|| Box::new(airlock_cel::Cel::new()));
    let env = Env::new(airlock, "panel", verbose)?;
    let repo = env.path("repo");
    let dirs = (opts.changed * 2).div_ceil(PER_DIR);
    make_repo(&env, &repo, dirs, PER_DIR, &workflow())?;
    let brief = env.path("brief.toml");
    write_brief(&brief, "panel bench", &["ok"])?;
    let mut text = std::fs::read_to_string(&brief)?;
    text += "class = \"bench\"\n";
    std::fs::write(&brief, text)?;
    let out = run(env.airlock(&repo, &["start", "--json", &brief.display().to_string()]))?;
    let id = run_id(&out)?;
    let worktree = repo.join(".airlock/local/runs").join(&id).join("worktree");
    for k in 0..opts.changed {
        let (d, f) = (k / PER_DIR, k % PER_DIR);
        std::fs::write(
            worktree
                .join("src")
                .join(format!("d{d:03}"))
                .join(format!("f{f:03}.txt")),
            file_text(d, f, 1),
        )?;
    }
    run(env.airlock(&repo, &["check", "--json", &id]))?;
    run(env.airlock(&repo, &["submit", "--json", &id]))?;

    // The run's evidence as the engine collects it, and the workflow.
    let out = run(env.airlock(&repo, &["evidence", "--json", &id]))?;
    let shown: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let evidence: Evidence =
        serde_json::from_value(shown["evidence"].clone()).context("airlock evidence --json")?;
    ensure!(
        evidence.diff.files_changed as usize == opts.changed,
        "the evidence has the run's {} files ({})",
        opts.changed,
        evidence.diff.files_changed
    );
    let text = std::fs::read_to_string(repo.join(".airlock/workflow.toml"))?;
    let wf = Workflow::parse_with(&text, "workflow.toml", airlock_core::evaluator::installed())?;
    let (lane, class) = (evidence.run.lane.clone(), evidence.run.class.clone());
    let rules = wf.panel.expressions().len();

    let mut subject = Measure::new("lane check + conditions + panel, in process");
    let mut show = Measure::new("airlock show --json --no-diff RUN");
    let mut collect = Measure::new("airlock evidence --json RUN");
    let mut conditions_only = Measure::new("conditions alone");
    let mut panel_only = Measure::new("panel alone");
    let mut outcome = String::new();
    for round in 0..=opts.pairs {
        env.say(&format!("panel: round {round}"));
        let t = Instant::now();
        let granted = airlock_core::panel::lane_auto_promotes(&wf, &lane, &class);
        let results = airlock_core::conditions::evaluate(&wf, &evidence)?;
        let decision = airlock_core::panel::decide(
            &wf.panel,
            &evidence,
            airlock_core::evaluator::installed(),
        )?;
        let auto = airlock_core::panel::auto_promotion(
            &wf,
            &lane,
            &class,
            decision.as_ref(),
            &airlock_core::panel::needs_review(&results),
            &evidence.diff.paths,
        );
        let a = t.elapsed();
        ensure!(granted, "the bench lane auto-promotes its class");
        outcome = format!(
            "{} ({}); auto-promotion: {}",
            decision.as_ref().map_or("off", |d| d.outcome.as_str()),
            decision
                .as_ref()
                .map_or(String::new(), |d| d.reason.clone()),
            auto.reason
        );
        let t = Instant::now();
        airlock_core::conditions::evaluate(&wf, &evidence)?;
        let c = t.elapsed();
        let t = Instant::now();
        airlock_core::panel::decide(&wf.panel, &evidence, airlock_core::evaluator::installed())?;
        let p = t.elapsed();
        let (b, _) = timed(env.airlock(&repo, &["show", "--json", "--no-diff", &id]))?;
        let (e, _) = timed(env.airlock(&repo, &["evidence", "--json", &id]))?;
        if round > 0 {
            subject.push(a);
            show.push(b);
            collect.push(e);
            conditions_only.push(c);
            panel_only.push(p);
        }
    }
    Ok(Comparison {
        id: "panel".into(),
        title: format!(
            "deciding on one run's evidence ({} files changed, {} conditions, {rules} panel rules) vs a reviewer's `show`",
            opts.changed,
            wf.conditions.len()
        ),
        subject,
        baseline: show,
        details: vec![conditions_only, panel_only, collect],
        notes: vec![format!("outcome: {outcome}")],
        target: Target::MedianUnder(std::time::Duration::from_millis(5)),
    })
}
