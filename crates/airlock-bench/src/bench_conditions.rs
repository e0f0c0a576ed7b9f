//! `conditions`: the workflow's custom conditions on one run's evidence, as
//! a command that loads the workflow and evaluates them does: build the CEL
//! environment, type-check 20 conditions (workflow load), then compile and
//! evaluate them on the evidence (`airlock_cel::Cel::eval_all`), against the
//! same 20 tests written in Rust over the same document.

use std::time::Instant;

use airlock_cel::Cel;
use airlock_model::evidence::{
    ActionFacts, Evaluator, Evidence, GateFacts, TestCounts, TraceFacts,
};
use anyhow::{Result, ensure};

use crate::stats::{Comparison, Measure, Target};

pub struct Opts {
    /// Paths the run changed.
    pub paths: usize,
    pub pairs: usize,
}

impl Default for Opts {
    fn default() -> Self {
        Opts {
            paths: 200,
            pairs: 21,
        }
    }
}

/// A run's evidence: `paths` changed paths, 4 gates, 40 traces, 2 hosts, 2 actions.
fn evidence(paths: usize) -> Evidence {
    let mut e = Evidence::default();
    e.run.class = "bugfix".into();
    e.run.lane = "governed".into();
    e.brief.touch = vec!["src/**".into(), "tests/**".into()];
    e.brief.rollback = "revert".into();
    e.diff.paths = (0..paths)
        .map(|i| format!("src/module{}/file{i}.rs", i % 17))
        .collect();
    e.diff.added = e.diff.paths.iter().take(paths / 10).cloned().collect();
    e.diff.files_changed = paths as u64;
    e.diff.insertions = 20 * paths as u64;
    e.gates = ["build", "lint", "unit", "integration"]
        .iter()
        .map(|g| GateFacts {
            name: g.to_string(),
            status: "passed".into(),
            duration_ms: 1000,
            tests: TestCounts {
                ran: 100,
                passed: 100,
                failed: 0,
                skipped: 0,
            },
        })
        .collect();
    e.tests = TestCounts {
        ran: 400,
        passed: 400,
        failed: 0,
        skipped: 0,
    };
    e.traces = (0..40)
        .map(|i| TraceFacts {
            argv: vec!["cargo".into(), "test".into(), format!("t{i}")],
            exit: 0,
            duration_ms: 100,
            files_changed: 1,
        })
        .collect();
    e.network.hosts = vec!["crates.io".into(), "static.crates.io".into()];
    e.actions = vec![
        ActionFacts {
            kind: "http".into(),
            scope: "http:POST:hooks.example.com/*".into(),
            target: "POST https://hooks.example.com/deploy".into(),
            stage: "planned".into(),
        };
        2
    ];
    e
}

const CONDITIONS: [&str; 20] = [
    r#"diff.files_changed > 30 && !brief.touch.exists(g, g.startsWith("migrations/"))"#,
    r#"diff.paths.exists(p, p.startsWith("migrations/"))"#,
    "diff.insertions + diff.deletions > 5000",
    r#"gates.exists(g, g.status == "failed")"#,
    "tests.failed > 0",
    r#"tests.ran == 0 && diff.paths.exists(p, p.endsWith(".rs"))"#,
    r#"!diff.paths.exists(p, p.startsWith("tests/"))"#,
    "size(network.hosts) > 3",
    "size(network.refused) > 0",
    r#"actions.exists(a, a.kind == "git-push")"#,
    r#"actions.exists(a, a.kind == "http" && !a.target.startsWith("POST https://hooks.example.com/"))"#,
    "secrets.findings > 0 || secrets.allowed > 0",
    "size(protected.paths) > 0",
    r#"brief.rollback == """#,
    r#"traces.exists(t, t.exit != 0)"#,
    r#"traces.exists(t, t.argv.exists(a, a == "curl" || a == "wget"))"#,
    r#"run.lane == "production" && class.clean_rate < 0.95"#,
    "class.rolled_back > 0",
    r#"diff.added.exists(p, p.endsWith(".lock"))"#,
    r#"gates.all(g, g.duration_ms < 600000)"#,
];

/// The same 20 tests in Rust.
fn native(e: &Evidence) -> Vec<bool> {
    vec![
        e.diff.files_changed > 30 && !e.brief.touch.iter().any(|g| g.starts_with("migrations/")),
        e.diff.paths.iter().any(|p| p.starts_with("migrations/")),
        e.diff.insertions + e.diff.deletions > 5000,
        e.gates.iter().any(|g| g.status == "failed"),
        e.tests.failed > 0,
        e.tests.ran == 0 && e.diff.paths.iter().any(|p| p.ends_with(".rs")),
        !e.diff.paths.iter().any(|p| p.starts_with("tests/")),
        e.network.hosts.len() > 3,
        !e.network.refused.is_empty(),
        e.actions.iter().any(|a| a.kind == "git-push"),
        e.actions
            .iter()
            .any(|a| a.kind == "http" && !a.target.starts_with("POST https://hooks.example.com/")),
        e.secrets.findings > 0 || e.secrets.allowed > 0,
        !e.protected.paths.is_empty(),
        e.brief.rollback.is_empty(),
        e.traces.iter().any(|t| t.exit != 0),
        e.traces
            .iter()
            .any(|t| t.argv.iter().any(|a| a == "curl" || a == "wget")),
        e.run.lane == "production" && e.class.clean_rate < 0.95,
        e.class.rolled_back > 0,
        e.diff.added.iter().any(|p| p.ends_with(".lock")),
        e.gates.iter().all(|g| g.duration_ms < 600_000),
    ]
}

pub fn bench(opts: &Opts, verbose: bool) -> Result<Vec<Comparison>> {
    let e = evidence(opts.paths);
    let mut whole = Measure::new("new + check 20 + eval_all 20");
    let mut rust = Measure::new("the same 20 tests in Rust");
    let mut env = Measure::new("Cel::new (environment)");
    let mut check = Measure::new("check 20 (workflow load)");
    let mut eval = Measure::new("eval_all 20 (compile + evaluate)");
    for round in 0..=opts.pairs {
        if verbose {
            eprintln!("conditions: round {round}");
        }
        let t = Instant::now();
        let cel = Cel::new();
        let t_env = t.elapsed();
        for c in CONDITIONS {
            cel.check(c).map_err(|e| anyhow::anyhow!("{c}: {e:?}"))?;
        }
        let t_check = t.elapsed();
        let results = cel.eval_all(&CONDITIONS, &e);
        let a = t.elapsed();
        let t = Instant::now();
        let expected = std::hint::black_box(native(std::hint::black_box(&e)));
        let b = t.elapsed();
        let got: Vec<bool> = results
            .into_iter()
            .collect::<Result<_, _>>()
            .map_err(anyhow::Error::msg)?;
        ensure!(
            got == expected,
            "CEL and Rust agree: {got:?} vs {expected:?}"
        );
        if round > 0 {
            whole.push(a);
            rust.push(b);
            env.push(t_env);
            check.push(t_check - t_env);
            eval.push(a - t_check);
        }
    }

    // One condition over 100,000 changed paths: linear, never blowing up.
    let big = evidence(100_000);
    let cel = Cel::new();
    let t = Instant::now();
    let out = cel.eval_all(&[CONDITIONS[1]], &big);
    let big_time = t.elapsed();
    ensure!(out == vec![Ok(false)], "{out:?}");

    Ok(vec![Comparison {
        id: "conditions".into(),
        title: format!(
            "20 conditions on one run's evidence ({} paths, 4 gates, 40 traces): CEL vs Rust",
            opts.paths
        ),
        subject: whole,
        baseline: rust,
        details: vec![env, check, eval],
        notes: vec![format!(
            "one `exists` over 100,000 changed paths: {:.1} ms (evidence converted and walked once)",
            big_time.as_secs_f64() * 1000.0
        )],
        target: Target::MedianUnder(std::time::Duration::from_millis(5)),
    }])
}
