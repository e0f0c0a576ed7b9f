//! `airlock report RUN [--format md|json]`: the run as a reviewer or a pull
//! request's body wants it. The Markdown is safe to paste into a pull
//! request: everything the agent wrote (brief, paths, commit subjects,
//! hosts, gate and action names) appears only inside code spans or fenced
//! blocks sized past any backtick run in it, with control and invisible
//! characters escaped, so it cannot add HTML, links, mentions, headings or
//! close a fence.

use std::time::Duration;

use airlock_core::Result;
use airlock_core::report::{RunReport, build};

use super::Ctx;
use crate::render::{Output, Report, clean};

#[derive(clap::Args)]
pub struct Args {
    /// The run.
    pub(super) run: String,
    /// `md` (Markdown, the default) or `json`.
    #[arg(long, value_name = "FORMAT", default_value = "md")]
    format: String,
}

pub fn run(ctx: &Ctx, args: Args) -> Result<Output> {
    let json = match args.format.as_str() {
        "md" | "markdown" => false,
        "json" => true,
        other => {
            return Err(airlock_core::Error::Invalid(format!(
                "`--format {}` is not a report format: use `md` (Markdown) or `json`",
                clean(other)
            )));
        }
    };
    let al = ctx.open()?;
    let run = al.store.get(&args.run)?;
    let report = build(&al, &run)?;
    if json && !ctx.json {
        let mut text = serde_json::to_string_pretty(&report).unwrap_or_default();
        text.push('\n');
        return Ok(Output::raw(text, 0));
    }
    Ok(Output::report(&Shown(report)).hostile())
}

#[derive(serde::Serialize)]
#[serde(transparent)]
struct Shown(RunReport);

/// `text` as an inline code span on one line: control and invisible
/// characters escaped, line breaks as `⏎`, delimited by one backtick more
/// than the longest run inside.
pub fn code(text: &str) -> String {
    let one_line = clean(&text.replace("\r\n", "\n")).replace('\n', " ⏎ ");
    let fence = "`".repeat(longest_run(&one_line, '`') + 1);
    // A space on each side keeps a backtick at either end from joining the
    // fence; CommonMark strips one such space from each side.
    format!("{fence} {one_line} {fence}")
}

/// `text` as a fenced block whose fence no line of it can close.
pub fn block(text: &str) -> String {
    let cleaned = clean(text.trim_end());
    let fence = "`".repeat((longest_run(&cleaned, '`') + 1).max(3));
    format!("{fence}text\n{cleaned}\n{fence}\n")
}

fn longest_run(text: &str, c: char) -> usize {
    let (mut best, mut now) = (0, 0);
    for ch in text.chars() {
        if ch == c {
            now += 1;
            best = best.max(now);
        } else {
            now = 0;
        }
    }
    best
}

fn ms(ms: u64) -> String {
    if ms < 1000 {
        format!("{ms} ms")
    } else {
        humantime::format_duration(Duration::from_secs(ms / 1000)).to_string()
    }
}

fn list(out: &mut String, items: &[String], none: &str) {
    if items.is_empty() {
        out.push_str(&format!("_{none}_\n"));
    }
    for item in items {
        out.push_str(&format!("- {}\n", code(item)));
    }
}

/// The heading of the panel's decision log (outcome, weights, every vote).
pub const PANEL_SECTION: &str = "## Panel";

impl Report for Shown {
    fn human(&self) -> String {
        let r = &self.0;
        let mut o = String::new();
        o += &format!("# airlock run `{}`: {}\n\n", r.run.id, code(&r.run.label));
        o += &format!(
            "- class {} in lane `{}`, state `{}`, round {}\n",
            code(&r.run.class),
            r.run.lane,
            r.run.state,
            r.run.round
        );
        o += &format!(
            "- base `{}`, head `{}`, target {}\n",
            r.run.base,
            r.run.head,
            code(&r.run.target)
        );
        if let Some(d) = &r.run.proof_digest {
            o += &format!("- proof `sha256:{d}`\n");
        }
        if let Some(d) = r.duration_ms {
            o += &format!("- duration {} (first to last ledger event)\n", ms(d));
        }

        o += "\n## Objective\n\n";
        match &r.brief {
            Some(b) => {
                o += &block(&b.objective);
                o += "\n### Non-goals\n\n";
                list(&mut o, &b.non_goals, "none stated");
                o += "\n### Touchpoints\n\n";
                list(&mut o, &b.touch, "none");
            }
            None => o += "_the run's copy of its brief cannot be read_\n",
        }

        o += "\n## Commits\n\n";
        if r.commits.is_empty() {
            o += "_nothing submitted yet_\n";
        }
        for c in &r.commits {
            o += &format!("- `{}` {}\n", c.commit, code(&c.subject));
        }

        let d = &r.diff;
        o += &format!(
            "\n## Diff\n\n{} file{} changed, +{} −{}\n\n",
            d.files_changed,
            if d.files_changed == 1 { "" } else { "s" },
            d.insertions,
            d.deletions
        );
        if !d.areas.is_empty() {
            o += "By area:\n\n";
            for (area, n) in &d.areas {
                o += &format!("- {} {n}\n", code(area));
            }
            o += "\nFiles:\n\n";
        }
        for f in &d.files {
            let lines = match (f.added, f.deleted) {
                (Some(a), Some(x)) => format!("+{a} −{x}"),
                _ => "binary".into(),
            };
            o += &format!("- {} {lines}\n", code(&f.path));
        }

        o += "\n## Gates\n\n";
        if r.gates.is_empty() {
            o += "_no check recorded_\n";
        }
        for g in &r.gates {
            let tests = match &g.tests {
                Some(t) => format!(
                    ", tests: {} passed, {} failed, {} skipped ({})",
                    t.passed,
                    t.failed,
                    t.skipped,
                    clean(&t.source)
                ),
                None => String::new(),
            };
            o += &format!(
                "- {} {} in {}{tests}\n",
                code(&g.name),
                g.status,
                ms(g.duration_ms)
            );
        }
        o += "\n### Stop conditions\n\n";
        if r.stop_conditions.is_empty() {
            o += "_no check recorded_\n";
        }
        for s in &r.stop_conditions {
            o += &format!(
                "- {} {}\n",
                code(&s.name),
                if s.passed { "passed" } else { "failed" }
            );
            for f in &s.findings {
                o += &format!("  - {}\n", code(f));
            }
        }

        o += "\n## Snapshots\n\n";
        if r.snapshots.is_empty() {
            o += "_no snapshot gates_\n";
        }
        for s in &r.snapshots {
            o += &format!(
                "- {} (gate {}): {}, +{} −{} lines\n",
                code(&s.name),
                code(&s.gate),
                clean(&s.decision),
                s.added,
                s.removed
            );
        }

        o += "\n## Network\n\n";
        if r.network.reached.is_empty() && r.network.refused.is_empty() {
            o += "_no connections through the egress proxy_\n";
        }
        for h in &r.network.reached {
            o += &format!(
                "- reached {} port {}: {} connection{}, {} bytes up, {} down\n",
                code(&h.host),
                h.port,
                h.connections,
                if h.connections == 1 { "" } else { "s" },
                h.bytes_up,
                h.bytes_down
            );
        }
        for h in &r.network.refused {
            o += &format!(
                "- refused {} port {} (trace {}): {}\n",
                code(&h.host),
                h.port,
                h.trace,
                code(&h.reason)
            );
        }

        o += "\n## Planned actions\n\n";
        if r.actions.is_empty() {
            o += "_none_\n";
        }
        for a in &r.actions {
            let scopes: Vec<String> = a.scopes.iter().map(|s| code(s)).collect();
            o += &format!(
                "- {} {} ({}), {}, scopes {}\n",
                a.kind,
                code(&a.name),
                a.role,
                a.state,
                if scopes.is_empty() {
                    "none".into()
                } else {
                    scopes.join(", ")
                }
            );
        }

        o += "\n## Conditions\n\n";
        if r.conditions.is_empty() {
            o += "_the workflow declares none_\n";
        }
        for c in &r.conditions {
            let mut line = format!(
                "- {} ({}): {}",
                code(&c.id),
                c.effect.as_str(),
                if c.held { "**held**" } else { "not held" }
            );
            line += &format!(" — {}", code(&c.message));
            if let Some(error) = &c.error {
                line += &format!(" (could not be evaluated: {})", code(error));
            }
            o += &line;
            o += "\n";
        }

        o += &format!("\n{PANEL_SECTION}\n\n");
        match &r.panel {
            None => o += "_no panel decision: the run was not submitted, or the panel is off_\n",
            Some(p) => {
                let t = &p.tally;
                o += &format!(
                    "**{}**: {}\n\nWeights: approve {}, concern {}, block {} of {} cast\n\n",
                    p.outcome.as_str(),
                    code(&p.reason),
                    t.approve,
                    t.concern,
                    t.block,
                    t.cast
                );
                if p.votes.is_empty() {
                    o += "_no rule voted_\n";
                }
                for v in &p.votes {
                    let mut line = format!(
                        "- {} {}: {}",
                        v.perspective,
                        v.vote.as_str(),
                        code(&v.rationale)
                    );
                    if let Some(error) = &v.error {
                        line += &format!(" (could not be evaluated: {})", code(error));
                    }
                    o += &line;
                    o += "\n";
                }
            }
        }

        o += "\n## Decisions\n\n";
        if r.decisions.is_empty() {
            o += "_none yet_\n";
        }
        for d in &r.decisions {
            let mut line = format!("- {} (round {}) at {}", d.kind, d.round, d.at);
            if let Some(by) = d.by.as_ref().or(d.who.as_ref()) {
                line += &format!(" by {}", code(by));
            }
            if let Some(reason) = &d.reason {
                line += &format!(": {}", code(reason));
            }
            o += &line;
            o += "\n";
        }

        o += "\n## Assumptions and confidence limits\n\n";
        if let Some(b) = &r.brief {
            list(&mut o, &b.assumptions, "no assumptions stated");
        }
        o += "\n";
        for l in &r.confidence_limits {
            o += &format!("- {}\n", clean(l));
        }

        o += "\n## Rollback plan\n\n";
        match r.brief.as_ref().map(|b| b.rollback.as_str()) {
            Some(plan) if !plan.trim().is_empty() => o += &block(plan),
            _ => o += "_none stated_\n",
        }
        o += &format!("\nUndo after promotion: `airlock rollback {}`.", r.run.id);
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_code_span_outlasts_every_backtick_run_and_stays_on_one_line() {
        assert_eq!(code("plain"), "` plain `");
        assert_eq!(code("a `b` c"), "`` a `b` c ``");
        assert_eq!(code("``x"), "``` ``x ```");
        assert_eq!(code("one\ntwo"), "` one ⏎ two `");
    }

    #[test]
    fn a_block_fence_cannot_be_closed_from_inside() {
        let b = block("x\n```\n<script>\n````");
        assert!(b.starts_with("`````text\n"), "{b}");
        assert!(b.ends_with("\n`````\n"), "{b}");
    }
}
