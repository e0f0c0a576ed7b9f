//! `snap`: airlock-snap called directly, on generated log-like output.
//!
//! - compare: a golden file of `mb` MB against an output that differs in 1%
//!   of its lines (read and parse the golden, compare, count the changed
//!   lines, digest the result: what `snap run` and a snapshot gate do),
//!   against a plain `similar` line diff of the same two texts;
//! - normalize: `mb` MB through every built-in normalizer, against a plain
//!   copy of the same bytes;
//! - render: the readable diff of 100,000 lines, 1% changed, against
//!   `similar`'s own unified diff.

use std::time::Instant;

use airlock_snap::{Body, Context, Normalizer, SnapDir, Snapshot, render_text_diff};
use anyhow::{Result, ensure};

use crate::stats::{Comparison, Measure, Target};

pub struct Opts {
    pub mb: usize,
    pub lines: usize,
    pub pairs: usize,
}

impl Default for Opts {
    fn default() -> Self {
        Opts {
            mb: 10,
            lines: 100_000,
            pairs: 7,
        }
    }
}

/// Raw output: about 100 bytes a line, with a timestamp, a UUID, a hash, a
/// duration and a home path on every line.
fn raw_output(bytes: usize) -> String {
    let mut out = String::with_capacity(bytes + 200);
    let mut i = 0u64;
    while out.len() < bytes {
        out += &format!(
            "2024-05-01T12:{:02}:{:02}.{:03}Z INFO req {:08x}-e89b-12d3-a456-426614174000 commit {:07x}a took {}ms at /home/ann/src/f{}.rs\n",
            i / 60 % 60,
            i % 60,
            i % 1000,
            i,
            i,
            i % 997,
            i % 50
        );
        i += 1;
    }
    out
}

/// Normalized-looking output of `n` lines, and a copy with 1% of them changed.
fn texts(n: usize, line_len: usize) -> (String, String) {
    let mut golden = String::new();
    let mut actual = String::new();
    for i in 0..n {
        let line = format!("{i:>8} [TIMESTAMP] status of item {i}: ok, took [DURATION]");
        let pad = line_len.saturating_sub(line.len() + 1);
        let line = format!("{line}{}", ".".repeat(pad));
        golden += &line;
        golden.push('\n');
        if i % 100 == 50 {
            actual += &line.replace("ok", "FAILED");
        } else {
            actual += &line;
        }
        actual.push('\n');
    }
    (golden, actual)
}

fn snapshot(stdout: String) -> Snapshot {
    Snapshot {
        command: vec!["generate".into()],
        origin: "snap run".into(),
        normalizers: vec![],
        exit: 0,
        stdout: Body::Text { text: stdout },
        stderr: Body::Text {
            text: String::new(),
        },
    }
}

pub fn bench(opts: &Opts, verbose: bool) -> Result<Vec<Comparison>> {
    let bytes = opts.mb * 1_000_000;
    let dir = tempfile::tempdir()?;
    let snaps = SnapDir::new(dir.path());

    // 1. Compare.
    let lines = bytes / 100;
    let (golden, actual) = texts(lines, 100);
    std::fs::write(snaps.golden_path("big"), snapshot(golden.clone()).render())?;
    let actual_snap = snapshot(actual.clone());
    let mut compare = Measure::new("airlock-snap record (no write)");
    let mut plain = Measure::new("similar line diff");
    let mut changed = 0;
    for round in 0..=opts.pairs {
        if verbose {
            eprintln!("snap compare: round {round}");
        }
        let t = Instant::now();
        let outcome = snaps.record("big", &actual_snap, false)?;
        let a = t.elapsed();
        ensure!(!outcome.passed(), "the outputs differ");
        changed = outcome.stat.added;
        let t = Instant::now();
        let diff = similar::TextDiff::from_lines(&golden, &actual);
        let n = diff
            .iter_all_changes()
            .filter(|c| c.tag() == similar::ChangeTag::Insert)
            .count();
        let b = t.elapsed();
        ensure!(
            n == changed,
            "both sides find the same {changed} lines ({n})"
        );
        if round > 0 {
            compare.push(a);
            plain.push(b);
        }
    }

    // 2. Normalize.
    let raw = raw_output(bytes);
    let ctx = Context {
        root: Some("/work/repo".into()),
        tmp: vec!["/tmp".into()],
        home: Some("/home/ann".into()),
    };
    let normalizer = Normalizer::new(&ctx, &[])?;
    let mut norm = Measure::new("Normalizer::apply, all built-ins");
    let mut copy = Measure::new("copy of the same bytes");
    let mut out_len = 0;
    for round in 0..=opts.pairs {
        if verbose {
            eprintln!("snap normalize: round {round}");
        }
        let t = Instant::now();
        let out = normalizer.apply(&raw);
        let a = t.elapsed();
        out_len = out.len();
        let t = Instant::now();
        let c = std::hint::black_box(raw.clone());
        let b = t.elapsed();
        drop(c);
        if round > 0 {
            norm.push(a);
            copy.push(b);
        }
    }
    let sample = normalizer.apply(raw.lines().next().unwrap_or(""));

    // 3. Render.
    let (g, a) = texts(opts.lines, 60);
    let mut render = Measure::new("render_text_diff");
    let mut unified = Measure::new("similar unified_diff");
    let mut render_len = 0;
    for round in 0..=opts.pairs {
        if verbose {
            eprintln!("snap render: round {round}");
        }
        let t = Instant::now();
        let d = render_text_diff(&g, &a, 3, true);
        let x = t.elapsed();
        render_len = d.len();
        let t = Instant::now();
        let u = similar::TextDiff::from_lines(&g, &a)
            .unified_diff()
            .context_radius(3)
            .to_string();
        let y = t.elapsed();
        drop(u);
        if round > 0 {
            render.push(x);
            unified.push(y);
        }
    }

    Ok(vec![
        Comparison {
            id: "snap-compare".into(),
            title: format!(
                "snapshot compare: {} MB golden file ({lines} lines) vs an output with {changed} lines changed, {} interleaved pairs",
                opts.mb, opts.pairs
            ),
            subject: compare,
            baseline: plain,
            details: vec![],
            notes: vec![
                "subject: read + parse the golden, wildcard-aware compare, count changed lines (patience), render + sha256 the result".into(),
            ],
            target: Target::MedianUnder(std::time::Duration::from_millis(300)),
        },
        Comparison {
            id: "snap-normalize".into(),
            title: format!(
                "snapshot normalize: {} MB of log lines through every built-in normalizer, {} interleaved pairs",
                opts.mb, opts.pairs
            ),
            subject: norm,
            baseline: copy,
            details: vec![],
            notes: vec![
                format!("{} bytes in, {out_len} bytes out", raw.len()),
                format!("a line becomes: {sample}"),
            ],
            target: Target::MedianUnder(std::time::Duration::from_millis(300)),
        },
        Comparison {
            id: "snap-render".into(),
            title: format!(
                "snapshot diff render: {} lines, 1% changed, coloured, {} interleaved pairs",
                opts.lines, opts.pairs
            ),
            subject: render,
            baseline: unified,
            details: vec![],
            notes: vec![format!("{render_len} bytes of diff")],
            target: Target::MedianUnder(std::time::Duration::from_secs(1)),
        },
    ])
}
