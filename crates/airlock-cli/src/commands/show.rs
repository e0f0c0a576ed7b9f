use airlock_core::Result;
use airlock_core::decide::Decision;
use airlock_core::inspect;
use airlock_core::run::{Approval, State};

use super::Ctx;
use crate::render::{Output, Report, clean, escape, one_line, short};

#[derive(clap::Args)]
pub struct Args {
    /// The run.
    pub(super) run: String,
    /// Leave out the full diff (the stat stays).
    #[arg(long)]
    no_diff: bool,
    /// What changed since round N was submitted: the diff from that round's
    /// commit to the run's current one, and the traces of later rounds.
    #[arg(long, value_name = "N")]
    since_round: Option<u32>,
}

pub fn run(ctx: &Ctx, args: Args) -> Result<Output> {
    let al = ctx.open()?;
    let shown = Shown {
        shown: inspect::show(&al, &args.run, args.since_round)?,
        no_diff: args.no_diff,
    };
    Ok(Output::report(&shown).hostile().paged())
}

/// `airlock show`: everything about a run a reviewer weighs (gathered by
/// the engine's `inspect::show`), and whether to leave the diff out.
struct Shown {
    shown: inspect::Shown,
    no_diff: bool,
}

impl serde::Serialize for Shown {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        self.shown.serialize(s)
    }
}

impl std::ops::Deref for Shown {
    type Target = inspect::Shown;
    fn deref(&self) -> &inspect::Shown {
        &self.shown
    }
}

impl Report for Shown {
    fn human(&self) -> String {
        let mut h = format!("run {}  [{}]  round {}\n", self.run, self.state, self.round);
        h += &format!("  {}\n", clean(&self.label));
        h += &format!("  class {}, lane {}", self.class, self.lane);
        if let Some(c) = &self.capabilities {
            h += &format!(" ({})", describe_capabilities(c));
        }
        h += "\n";
        h += &format!(
            "  ref {} from {} -> target {}\n",
            self.main_ref,
            short(&self.base),
            self.target
        );
        h += &format!("  worktree {}\n", self.worktree.display());
        h += &format!("  next: {}\n", self.next);
        if !self.risk_flags.is_empty() {
            h += "\nrisk flags (weigh these before approving):\n";
            for f in &self.risk_flags {
                h += &format!("  ! {:<22} {}\n", f.code, escape(&f.message));
            }
        }
        h += "\ndecisions:\n";
        if self.decisions.is_empty() {
            h += "  (none)\n";
        }
        for d in &self.decisions {
            h += &render_decision(d);
        }
        if let Some(s) = &self.signed_approvals {
            h += &format!(
                "\nsigned approvals (rules of {} at {}):\n",
                s.target,
                short(&s.tip)
            );
            if s.approvals.is_empty() {
                h += "  (none)\n";
            }
            for a in &s.approvals {
                h += &format!("  {} with {}", escape(&a.principal), a.key);
                if let Some(c) = &a.checkpoint {
                    h += &format!(", having seen checkpoint {} ({})", c.size, short(&c.commit));
                }
                h += "\n";
            }
            for (seq, why, _) in &s.refused {
                h += &format!("  event {seq} does not count: {}\n", escape(why));
            }
            for m in s.missing() {
                h += &format!("  missing: {}\n", escape(&m));
            }
        }
        if let Some(p) = &self.approvals_problem {
            h += &format!("\nsigned approvals cannot be weighed: {}\n", escape(p));
        }
        if let Some(d) = &self.panel {
            h += &render_panel(d, "submitted tree", self.approval.as_ref());
        }
        if let Some(d) = &self.panel_at_promote {
            h += &render_panel(d, "merged tree, at promote", None);
        }
        h += "\nbrief:\n";
        for line in clean(&self.brief).lines() {
            h += &format!("  | {line}\n");
        }
        let head_label = &self.head_label;
        match self.since_round {
            None => h += &format!("\ndiff stat ({head_label}):\n"),
            Some(n) => {
                h += &format!(
                    "\ndiff stat since round {n} (commit {} -> {head_label}):\n",
                    short(&self.diff_from)
                )
            }
        }
        if self.diff.stat.is_empty() {
            h += "  (no changes)\n";
        }
        for c in &self.diff.stat {
            match (c.added, c.deleted) {
                (Some(a), Some(d)) => {
                    h += &format!("  {:>5} +{:<5} -{:<5} {}\n", "", a, d, escape(&c.path))
                }
                _ => h += &format!("  {:>5} binary        {}\n", "", escape(&c.path)),
            }
        }
        match &self.check {
            Some(report) => {
                h += &format!(
                    "\ncheck (round {}): {}\n",
                    report.round,
                    if report.passed { "passed" } else { "FAILED" }
                );
                h += &crate::commands::check::render(report);
                h.push('\n');
            }
            None => h += "\ncheck: not run in this round\n",
        }
        match self.since_round {
            None => h += "\ntraces:\n",
            Some(n) => h += &format!("\ntraces after round {n}:\n"),
        }
        if self.traces.is_empty() {
            h += "  (none)\n";
        }
        for t in &self.traces {
            h += &format!(
                "  #{:<3} r{} {:<14} {} -> {} in {} ms; stdout {} B, stderr {} B",
                t.n,
                t.round,
                t.origin,
                one_line(&airlock_core::hostile::shell_words(&t.argv), 80),
                t.exit.description,
                t.duration_ms,
                t.stdout.size,
                t.stderr.size
            );
            if !t.files_changed.is_empty() {
                h += &format!(
                    "; changed {}",
                    t.files_changed
                        .iter()
                        .map(|f| format!("{} {}", f.status, escape(&f.path)))
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
            h.push('\n');
            if t.confinement != "confined" && !t.confinement.is_empty() {
                h += &format!("         sandbox: {}\n", t.confinement);
            }
            if t.network {
                h += "         network: granted\n";
            }
            if let Some(hosts) = &t.egress {
                h += &format!(
                    "         network: only {} (egress proxy), {} connection(s)\n",
                    escape(&hosts.join(", ")),
                    t.connections.len()
                );
            }
            if let Some(limit) = &t.limit_hit {
                h += &format!("         LIMIT HIT: {limit}\n");
            }
            for denial in &t.denials {
                h += &format!("         denied: {}\n", one_line(denial, 160));
            }
        }
        if !self.egress.is_empty() {
            h += "\nnetwork (through the egress proxy):\n";
            for r in &self.egress.reached {
                h += &format!(
                    "  reached {}:{}: {} connection(s), {} B up, {} B down\n",
                    escape(&r.host),
                    r.port,
                    r.connections,
                    r.bytes_up,
                    r.bytes_down
                );
            }
            for r in &self.egress.refused {
                h += &format!(
                    "  REFUSED #{} {}:{}: {}",
                    r.trace,
                    escape(&r.host),
                    r.port,
                    escape(&r.reason)
                );
                if let Some(setting) = &r.allow_with {
                    h += &format!(" (to allow: {})", escape(setting));
                }
                h.push('\n');
            }
        }
        if !self.mcp_calls.is_empty() {
            h += "\nMCP calls through airlock mcp-proxy (passed or refused; staged ones are actions):\n";
            for c in &self.mcp_calls {
                let text = |key: &str| c.record[key].as_str().unwrap_or("?").to_string();
                h += &format!(
                    "  {} {:<5} {}/{}, arguments {} B sha256:{}: {}\n",
                    c.at,
                    text("decision"),
                    escape(&text("server")),
                    escape(&text("tool")),
                    c.record["arguments_bytes"].as_u64().unwrap_or(0),
                    short(&text("arguments_sha256")),
                    one_line(&text("why"), 160)
                );
            }
        }
        h += "\nactions (side effects, performed only at promotion):\n";
        if self.listed.is_empty() {
            h += "  (none)\n";
        }
        for a in &self.listed {
            h +=
                &crate::commands::plan::render_action(a, self.submission.as_ref().map(|s| s.round));
        }
        h += "\nproof:\n";
        match (&self.submission, &self.proof) {
            (Some(s), Some(proof)) => {
                h += &format!("  {}\n  digest sha256:{}\n", s.proof.display(), s.digest);
                if proof.verified {
                    h += "  verified: signatures, envelope index, commit, tree, diff and brief digests\n";
                } else {
                    h += &format!(
                        "  DOES NOT VERIFY: {}\n",
                        proof.error.clone().unwrap_or_else(|| proof.failing())
                    );
                }
            }
            _ => h += "  none yet (made by `airlock submit`)\n",
        }
        if let Some(a) = &self.approval {
            h += &format!("  approved for sha256:{} at {}\n", short(&a.digest), a.at);
        }
        if let Some(p) = &self.promotion {
            h += &format!(
                "  promoted into {} as {} ({})\n",
                p.target,
                short(&p.merge),
                p.strategy
            );
        }
        if let Some(soak) = &self.soak {
            for line in crate::commands::soak::render_status(soak).lines() {
                h += &format!("  {line}\n");
            }
            for p in &soak.probes {
                h += &format!(
                    "    probe {} at {}: {} ({})\n",
                    p.gate,
                    p.at,
                    if p.passed { "passed" } else { "failed" },
                    p.exit
                );
            }
        }
        if self.state == State::RolledBack
            && let Some(d) = &self.rollback
        {
            h += &format!(
                "  rolled back by revert commit {} at {}: {}\n",
                d.commit.as_deref().map(short).unwrap_or("?"),
                d.at,
                escape(d.reason.as_deref().unwrap_or(""))
            );
        }
        if !self.no_diff && !self.diff.patch.is_empty() {
            h += "\ndiff:\n";
            h += &clean(&self.diff.patch);
        }
        h
    }
}

/// The panel's section of `show`: outcome and why, the weighted tally,
/// each perspective's verdict, and every vote with its rationale.
pub(crate) fn render_panel(
    d: &airlock_core::panel::Decision,
    on: &str,
    approval: Option<&Approval>,
) -> String {
    use airlock_core::panel::fmt;
    let mut h = format!(
        "\npanel ({on}): {}\n  {}\n",
        d.outcome.as_str(),
        escape(&d.reason)
    );
    let t = &d.tally;
    h += &format!(
        "  tally: approve {}, concern {}, block {} of {} cast (block_at {}, attention_above {})\n",
        fmt(t.approve),
        fmt(t.concern),
        fmt(t.block),
        fmt(t.cast),
        fmt(t.block_at),
        fmt(t.attention_above)
    );
    for v in &d.verdicts {
        h += &format!(
            "  {:<24} weight {:<4}{:<6}{}\n",
            v.perspective,
            fmt(v.weight),
            if v.veto { "veto" } else { "" },
            v.vote.map_or("abstains", |v| v.as_str())
        );
    }
    if d.votes.is_empty() {
        h += "  votes: none (no rule held)\n";
    } else {
        h += "  votes:\n";
    }
    for v in &d.votes {
        h += &format!(
            "    {:<8} {} #{}: {}\n",
            v.vote.as_str(),
            v.perspective,
            v.rule,
            one_line(&v.rationale, 200)
        );
        if let Some(e) = &v.error {
            h += &format!("             not evaluated: {}\n", one_line(e, 200));
        }
    }
    if let Some(a) = approval
        && a.by.as_deref() == Some(airlock_core::panel::PANEL_DECIDER)
    {
        h += &format!(
            "  approved by the panel, not a person: {}\n",
            escape(a.reason.as_deref().unwrap_or(""))
        );
    }
    h
}

/// One decision: when, what, which round, who, and the reason whole, each
/// line escaped (a reason quotes text the agent wrote).
fn render_decision(d: &Decision) -> String {
    let mut h = format!("  {} {:<8} round {}", d.at, d.kind, d.round);
    if let Some(by) = d.by.as_ref().or(d.who.as_ref()) {
        h += &format!(" by {}", escape(by));
    }
    if let Some(commit) = &d.commit {
        h += &format!(
            " ({} {})",
            if d.kind == "rollback" {
                "revert"
            } else {
                "merge"
            },
            short(commit)
        );
    }
    match d.reason.as_deref().filter(|r| !r.trim().is_empty()) {
        None => h += "\n",
        Some(reason) => {
            h += ":\n";
            for line in reason.lines() {
                h += &format!("      | {}\n", escape(line));
            }
        }
    }
    h
}

/// A lane's capabilities in a few words: `exec, worktree read-write, submit,
/// promote`, or what it withholds (`no exec`, `no submit`, …).
pub fn describe_capabilities(c: &airlock_core::lane_policy::Capabilities) -> String {
    let flag = |on: bool, name: &str| {
        if on {
            name.to_string()
        } else {
            format!("no {name}")
        }
    };
    let mut parts = vec![
        flag(c.exec, "exec"),
        format!("worktree {}", c.worktree.as_str()),
        flag(c.submit, "submit"),
        flag(c.promote, "promote"),
    ];
    if !c.auto_promote.is_empty() {
        parts.push(format!(
            "auto-promote {}",
            c.auto_promote
                .iter()
                .map(|s| escape(s))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    parts.join(", ")
}
