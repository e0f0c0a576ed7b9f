//! `web`: the pages of `airlock serve` rendered in process, as the server
//! renders them per request (the repository opened, the engine's data
//! gathered, the HTML made), against the terminal's view of the same data
//! through the binary: the run page with a 5,000-line diff beside
//! `airlock show RUN --no-pager` (target < 200 ms), and the queue of 1,000
//! waiting runs beside `airlock review` (target < 100 ms).
//!
//! The run is real (start, edit, check, submit through the binary). The
//! queue's 1,000 runs are one real submitted run and 999 copies of it
//! written into the store directly, untimed (its run row, its traces and
//! its ledger events appended through `append_in` and `note_step`, as
//! the store writes them): submitting 1,000 runs through the binary would
//! take minutes and measure nothing the queue reads differently.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use serde_json::Value;

use airlock_core::Airlock;
use airlock_core::decide::{self, RiskFlag};
use airlock_core::layout::{Layout, sha256_hex};
use airlock_core::run::State;
use airlock_core::store::SqliteStore;
use airlock_core::store::history::note_step;
use airlock_ledger::append_in;
use airlock_ledger::rusqlite::{TransactionBehavior, params};
use airlock_web::pages::{self, PageCtx};

use crate::env::{Env, make_repo, run, run_id, timed, write_brief};
use crate::stats::{Comparison, Measure, Target};

pub struct Opts {
    /// Lines the run adds (the diff's size).
    pub lines: usize,
    /// Runs waiting in the queue.
    pub waiting: usize,
    pub pairs: usize,
    /// The copies share the run's brief (one digest: parsed once) rather
    /// than each having its own (a digest each, as separate briefs have).
    pub same_brief: bool,
}

impl Default for Opts {
    fn default() -> Self {
        Opts {
            lines: 5000,
            waiting: 1000,
            pairs: 21,
            same_brief: false,
        }
    }
}

const LINES_PER_FILE: usize = 200;

fn workflow() -> String {
    "[gates.ok]\nrun = \"true\"\n\n[policy]\ntarget = \"main\"\nmax_files = 1000\nmax_lines = 1000000\n"
        .to_string()
}

/// A file of `n` lines that reads like code (for the diff's lines and any
/// highlighting to have the usual mix of words, strings and punctuation).
fn code_text(file: usize, n: usize) -> String {
    let mut text = String::with_capacity(n * 48);
    for i in 0..n {
        match i % 4 {
            0 => text += &format!("fn item_{file}_{i}(x: u64) -> u64 {{\n"),
            1 => text += &format!("    let label = \"file {file} line {i} <ok>\";\n"),
            2 => text += "    x.wrapping_mul(31).wrapping_add(label.len() as u64) // mix\n",
            _ => text += "}\n",
        }
    }
    text
}

fn open(repo: &Path, env: &Env) -> Result<Airlock> {
    let mut layout = Layout::discover(repo)?;
    layout.key_dir = env.home.join(".config").join("airlock");
    Ok(Airlock::open_in(layout)?)
}

fn ctx() -> PageCtx {
    PageCtx {
        csrf: "0".repeat(64),
        flash: None,
        user: "bench".into(),
    }
}

pub fn bench(airlock: &Path, opts: &Opts, verbose: bool) -> Result<Vec<Comparison>> {
    let env = Env::new(airlock, "web", verbose)?;
    let repo = env.path("repo");
    make_repo(&env, &repo, 1, 5, &workflow())?;
    let brief = env.path("brief.toml");
    write_brief(&brief, "web bench", &["ok"])?;
    let out = run(env.airlock(&repo, &["start", "--json", &brief.display().to_string()]))?;
    let id = run_id(&out)?;
    let worktree = repo.join(".airlock/local/runs").join(&id).join("worktree");
    let files = opts.lines.div_ceil(LINES_PER_FILE);
    std::fs::create_dir_all(worktree.join("src/web"))?;
    for f in 0..files {
        let n = LINES_PER_FILE.min(opts.lines - f * LINES_PER_FILE);
        std::fs::write(
            worktree.join("src/web").join(format!("m{f:03}.rs")),
            code_text(f, n),
        )?;
    }
    run(env.airlock(&repo, &["check", "--json", &id]))?;
    run(env.airlock(&repo, &["submit", "--json", &id]))?;

    let al = open(&repo, &env)?;
    let shown = airlock_core::inspect::show(&al, &id, None)?;
    let patch_lines = shown.diff.patch.lines().count();
    let added: u64 = shown.diff.stat.iter().filter_map(|s| s.added).sum();
    ensure!(
        added as usize == opts.lines,
        "the run adds {} lines ({added})",
        opts.lines
    );
    drop(al);

    // The run page.
    let mut page = Measure::new("run page (open + gather + render), in process");
    let mut show = Measure::new("airlock show RUN --no-pager");
    let mut gather = Measure::new("of which: inspect::show (the engine's data)");
    let mut html_bytes = 0;
    for round in 0..=opts.pairs {
        env.say(&format!("web run page: round {round}"));
        let t = Instant::now();
        let al = open(&repo, &env)?;
        let html = pages::run(&al, &id, None, &ctx())?.into_string();
        let a = t.elapsed();
        html_bytes = html.len();
        let al = open(&repo, &env)?;
        let t = Instant::now();
        airlock_core::inspect::show(&al, &id, None)?;
        let g = t.elapsed();
        let (b, _) = timed(env.airlock(&repo, &["show", "--no-pager", &id]))?;
        if round > 0 {
            page.push(a);
            show.push(b);
            gather.push(g);
        }
    }
    let run_page = Comparison {
        id: "web-run".into(),
        title: format!(
            "the run page of a {}-line diff ({files} files, {patch_lines} patch lines), in process, vs `airlock show`",
            opts.lines
        ),
        subject: page,
        baseline: show,
        details: vec![gather],
        notes: vec![format!("HTML: {} KiB", html_bytes / 1024)],
        target: Target::MedianUnder(Duration::from_millis(200)),
    };

    // The queue: the run and its copies.
    env.say(&format!("web queue: seeding {} runs", opts.waiting));
    let layout = {
        let mut l = Layout::discover(&repo)?;
        l.key_dir = env.home.join(".config").join("airlock");
        l
    };
    let copies = seed_copies(
        &mut SqliteStore::open(&layout.store_paths())?,
        &id,
        opts.waiting - 1,
    )?;
    copy_briefs(&layout, &id, &copies, opts.same_brief)?;
    let al = open(&repo, &env)?;
    let gathered = airlock_core::inspect::queue(&al)?.queue;
    ensure!(
        gathered.len() == opts.waiting,
        "{} runs in the queue",
        gathered.len()
    );
    let flags: Vec<_> = gathered
        .iter()
        .map(|w| (w.run.clone(), w.risk_flags.clone()))
        .collect();
    ensure!(
        per_run_gathering(&al)? == flags,
        "the queue's risk flags differ from those gathered run by run"
    );
    drop(al);
    let mut page = Measure::new("queue page (open + gather + render), in process");
    let mut review = Measure::new("airlock review");
    let mut gather = Measure::new("of which: inspect::queue (the engine's data)");
    let mut per_run =
        Measure::new("the same flags gathered run by run (three queries and a brief parse a run)");
    for round in 0..=opts.pairs {
        env.say(&format!("web queue: round {round}"));
        let t = Instant::now();
        let al = open(&repo, &env)?;
        let html = pages::queue(&al, &ctx())?.into_string();
        let a = t.elapsed();
        html_bytes = html.len();
        let al = open(&repo, &env)?;
        let t = Instant::now();
        airlock_core::inspect::queue(&al)?;
        let g = t.elapsed();
        let t = Instant::now();
        per_run_gathering(&al)?;
        let p = t.elapsed();
        let (b, _) = timed(env.airlock(&repo, &["review"]))?;
        if round > 0 {
            page.push(a);
            review.push(b);
            gather.push(g);
            per_run.push(p);
        }
    }
    let queue = Comparison {
        id: "web-queue".into(),
        title: format!(
            "the queue page of {} waiting runs, in process, vs `airlock review`",
            opts.waiting
        ),
        subject: page,
        baseline: review,
        details: vec![gather, per_run],
        notes: vec![
            format!("HTML: {} KiB", html_bytes / 1024),
            "one run submitted through the binary, the rest copies written into the store".into(),
        ],
        target: Target::MedianUnder(Duration::from_millis(100)),
    };
    Ok(vec![run_page, queue])
}

/// Each copy's copy of the run's brief, where the risk flags read it: the
/// same text for all (`same`), else with a comment naming the copy and the
/// copy's record given that text's digest, as separate briefs would be.
fn copy_briefs(layout: &Layout, id: &str, copies: &[String], same: bool) -> Result<()> {
    let text = std::fs::read_to_string(layout.run_dir(id).join("brief.toml"))?;
    let mut store = SqliteStore::open(&layout.store_paths())?;
    let tx = store
        .ledger
        .connection_mut()
        .transaction_with_behavior(TransactionBehavior::Immediate)?;
    for copy in copies {
        let dir = layout.run_dir(copy);
        std::fs::create_dir_all(&dir)?;
        let text = if same {
            text.clone()
        } else {
            format!("{text}# the brief of {copy}\n")
        };
        std::fs::write(dir.join("brief.toml"), &text)?;
        tx.execute(
            "UPDATE runs SET data = json_set(data, '$.brief_digest', ?2) WHERE id = ?1",
            params![copy, sha256_hex(text.as_bytes())],
        )?;
    }
    tx.commit()?;
    Ok(())
}

/// Every waiting run's risk flags gathered as the queue did before
/// `Store::in_review`: the runs listed, then per run its actions, its
/// events and its traces (a query each) and its brief read and parsed.
/// Measured beside the queue, and its flags checked equal to the queue's.
fn per_run_gathering(al: &Airlock) -> Result<Vec<(String, Vec<RiskFlag>)>> {
    let workflow = al.current_workflow().ok();
    let mut runs: Vec<_> = al
        .store
        .list()?
        .into_iter()
        .filter(|r| r.state == State::InReview)
        .collect();
    runs.sort_by_key(|r| r.submission.as_ref().map(|s| s.at.clone()));
    let mut out = Vec::with_capacity(runs.len());
    for r in runs {
        al.store.actions(&r.id)?;
        let history = decide::history(al, &r.id)?;
        let flags = decide::risk_flags_under(al, &r, &history, workflow.as_ref())?;
        out.push((r.id, flags));
    }
    Ok(out)
}

/// `copies` runs in review that are run `id` under other names: its row
/// (the id and the submission time changed), its traces and its events.
fn seed_copies(store: &mut SqliteStore, id: &str, copies: usize) -> Result<Vec<String>> {
    let tx = store
        .ledger
        .connection_mut()
        .transaction_with_behavior(TransactionBehavior::Immediate)?;
    let (data, created, class): (String, String, String) = tx.query_row(
        "SELECT data, created, class FROM runs WHERE id = ?1",
        params![id],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )?;
    let original: Value = serde_json::from_str(&data)?;
    let traces: Vec<(i64, String)> = {
        let mut q = tx.prepare("SELECT n, data FROM traces WHERE run = ?1")?;
        q.query_map(params![id], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<std::result::Result<_, _>>()?
    };
    let events: Vec<(String, String)> = {
        let mut q = tx.prepare("SELECT kind, data FROM events WHERE run = ?1 ORDER BY seq")?;
        q.query_map(params![id], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<std::result::Result<_, _>>()?
    };
    let mut ids = Vec::with_capacity(copies);
    for i in 0..copies {
        let copy = format!("{id}-c{i:04}");
        ids.push(copy.clone());
        let mut run = original.clone();
        run["id"] = Value::from(copy.clone());
        run["submission"]["at"] = Value::from(format!(
            "2026-01-01T00:{:02}:{:02}.000Z",
            i / 60 % 60,
            i % 60
        ));
        tx.execute(
            "INSERT INTO runs (id, state, created, data, class) VALUES (?1, 'in_review', ?2, ?3, ?4)",
            params![copy, created, run.to_string(), class],
        )?;
        for (n, data) in &traces {
            tx.execute(
                "INSERT INTO traces (run, n, data) VALUES (?1, ?2, ?3)",
                params![copy, n, data],
            )?;
        }
        for (kind, data) in &events {
            let event = append_in(&tx, Some(&copy), kind, &serde_json::from_str(data)?)
                .context("appending a copied event")?;
            note_step(&tx, &event)?;
        }
    }
    tx.commit()?;
    Ok(ids)
}
