use std::path::PathBuf;

use serde_json::Value;

use airlock_core::action::{Action, ActionState, Role};
use airlock_core::check::{CheckReport, GateResult};
use airlock_core::decide::{Decision, History, RiskFlag};
use airlock_core::exec::Trace;
use airlock_core::git;
use airlock_core::proof::{ProofCheck, verify_run};
use airlock_core::run::{Approval, Promotion, Run, State, Submission};
use airlock_core::stops::StopResult;
use airlock_core::{Error, Result};

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
    let run = al.store.get(&args.run)?;
    let main = al.layout.git();
    let history = airlock_core::decide::history(&al, &run.id)?;
    // The diff's base: the run's start, or the commit of an earlier round.
    let from = match args.since_round {
        None => run.base.clone(),
        Some(n) => since_commit(&run, &history, n)?,
    };
    // The diff a reviewer decides on: the submitted commit, or the worktree as it is now.
    // With `--since-round`, the current round's work: a submission of an
    // earlier round is what is compared against, not what is shown.
    let submission = run
        .submission
        .as_ref()
        .filter(|s| args.since_round.is_none() || s.round == run.round);
    let (head, head_label) = match submission {
        Some(s) => (s.head.clone(), format!("commit {}", short(&s.head))),
        // Within the run's quotas (a snapshot stores the worktree's files);
        // past them, or without a workflow that sets them, the run is
        // shown without its diff, and why.
        None => match al
            .workflow_for(&run)
            .and_then(|w| airlock_core::quota::snapshot(&al.layout, &run.id, &w.sandbox))
        {
            Ok(tree) => (tree, "worktree (not submitted)".to_string()),
            Err(airlock_core::Error::Refused(refusal)) => (
                run.base.clone(),
                format!("worktree not shown: {}", refusal.what),
            ),
            Err(
                e @ (airlock_core::Error::InvalidToml { .. } | airlock_core::Error::NoWorkflow(_)),
            ) => (run.base.clone(), format!("worktree not shown: {e}")),
            Err(e) => return Err(e),
        },
    };
    let stat = git::numstat(&main, &from, &head)?;
    let patch = git::patch(&main, &from, &head)?;
    let flags = airlock_core::decide::risk_flags(&al, &run, &history)?;
    let mut traces = al.store.traces(&run.id)?;
    if let Some(n) = args.since_round {
        traces.retain(|t| t.round > n);
    }
    let brief_text =
        std::fs::read_to_string(al.layout.run_dir(&run.id).join("brief.toml")).unwrap_or_default();
    let proof = run
        .submission
        .as_ref()
        .map(|s| match verify_run(&al, &run, None) {
            Ok(report) => ProofState {
                path: s.proof.clone(),
                digest: s.digest.clone(),
                verified: report.ok(),
                checks: Some(report.checks),
                error: None,
            },
            Err(e) => ProofState {
                path: s.proof.clone(),
                digest: s.digest.clone(),
                verified: false,
                checks: None,
                error: Some(e.to_string()),
            },
        });
    let check = run.check.as_ref().map(|c| c.report.clone());
    let actions = airlock_core::action::plan::list(&al, &run.id)?;
    let round = run.submission.as_ref().map(|s| s.round);
    let mcp_calls = al
        .store
        .events(Some(&run.id))?
        .into_iter()
        .filter(|e| e.kind == airlock_core::action::plan::MCP_CALL_EVENT)
        .map(|e| McpCall {
            at: e.ts,
            record: e.data,
        })
        .collect();
    // What the run's lane grants under the workflow as it is now (the proof
    // carries what it granted at submit; a changed workflow voids approval).
    let capabilities = al
        .workflow_for(&run)
        .ok()
        .map(|w| w.capabilities(&run.lane));
    let soak = airlock_core::soak::status(&al, &run, airlock_core::soak::process_clock().as_ref())?;
    let next = match &soak {
        Some(s) if s.failed.is_some() => format!(
            "a soak probe failed: `airlock rollback {} --reason …`; its production actions never run",
            run.id
        ),
        Some(s) if s.passed_at.is_none() && s.left_secs > 0 => format!(
            "soaking in staging: `airlock soak {}` probes what is due; `airlock promote {}` once the soak is over",
            run.id, run.id
        ),
        Some(s) if s.passed_at.is_none() => format!(
            "the soak is over: `airlock promote {}` applies the production actions",
            run.id
        ),
        _ => next_step(&run, &actions),
    };
    // The decision signed into the proof at submit, and the one on the
    // merged tree at promote (a ledger event).
    let panel = run.submission.as_ref().and_then(|s| s.panel.clone());
    let panel_at_promote = al
        .store
        .events(Some(&run.id))?
        .into_iter()
        .rev()
        .filter(|e| e.kind == "promote")
        .find_map(|e| serde_json::from_value(e.data["panel"].clone()).ok());
    let shown = Shown {
        capabilities,
        soak,
        panel,
        panel_at_promote,
        mcp_calls,
        next,
        feedback: history.feedback().and_then(|d| d.reason.clone()),
        rollback: history
            .decisions
            .iter()
            .rev()
            .find(|d| d.kind == "rollback")
            .cloned(),
        risk_flags: flags,
        decisions: history.decisions,
        since_round: args.since_round,
        diff_from: from,
        head,
        brief: brief_text,
        diff: Diff {
            stat: stat
                .iter()
                .map(|c| StatLine {
                    path: c.path.clone(),
                    added: c.lines.map(|l| l.0),
                    deleted: c.lines.map(|l| l.1),
                    binary: c.lines.is_none(),
                })
                .collect(),
            patch,
        },
        gates: check.as_ref().map(|c| c.gates.clone()).unwrap_or_default(),
        stop_conditions: check.as_ref().map(|c| c.stops.clone()).unwrap_or_default(),
        check,
        egress: airlock_core::egress::Summary::of(&traces),
        traces,
        actions: crate::commands::plan::actions_json(&actions, round),
        proof,
        main_ref: run.main_ref(),
        head_label,
        listed: actions,
        submission: run.submission.clone(),
        no_diff: args.no_diff,
        run: run.id,
        state: run.state,
        round: run.round,
        label: run.label,
        class: run.class,
        lane: run.lane,
        base: run.base,
        branch: run.branch,
        target: run.target,
        worktree: run.worktree,
        approval: run.approval,
        promotion: run.promotion,
    };
    Ok(Output::report(&shown).hostile().paged())
}

/// `airlock show`: everything about a run a reviewer weighs.
#[derive(serde::Serialize)]
struct Shown {
    run: String,
    state: State,
    round: u32,
    label: String,
    class: String,
    lane: String,
    /// What `lane` grants (`None`: the workflow cannot be read).
    capabilities: Option<airlock_core::lane_policy::Capabilities>,
    base: String,
    next: String,
    risk_flags: Vec<RiskFlag>,
    decisions: Vec<Decision>,
    /// The review panel's decision log on the submitted tree (signed into
    /// the proof).
    #[serde(skip_serializing_if = "Option::is_none")]
    panel: Option<airlock_core::panel::Decision>,
    /// The panel's decision on the merged tree, when the run was promoted.
    #[serde(skip_serializing_if = "Option::is_none")]
    panel_at_promote: Option<airlock_core::panel::Decision>,
    /// The reason of the last redirect, which the agent works to.
    feedback: Option<String>,
    since_round: Option<u32>,
    diff_from: String,
    branch: String,
    target: String,
    worktree: PathBuf,
    head: String,
    brief: String,
    diff: Diff,
    gates: Vec<GateResult>,
    stop_conditions: Vec<StopResult>,
    check: Option<CheckReport>,
    traces: Vec<Trace>,
    /// The hosts reached and the connections refused through the egress
    /// proxy (a network that is a list of hosts).
    #[serde(skip_serializing_if = "airlock_core::egress::Summary::is_empty")]
    egress: airlock_core::egress::Summary,
    /// The upstream MCP calls `airlock mcp-proxy` passed or refused (its
    /// staged calls are actions).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    mcp_calls: Vec<McpCall>,
    /// [`crate::commands::plan::actions_json`] of `listed`.
    actions: Value,
    rollback: Option<Decision>,
    proof: Option<ProofState>,
    approval: Option<Approval>,
    promotion: Option<Promotion>,
    /// The run's soak in staging and its probes, when it soaks.
    #[serde(skip_serializing_if = "Option::is_none")]
    soak: Option<airlock_core::soak::SoakStatus>,
    #[serde(skip)]
    main_ref: String,
    /// What the diff goes to: a commit, or the worktree (and why not).
    #[serde(skip)]
    head_label: String,
    #[serde(skip)]
    listed: Vec<Action>,
    #[serde(skip)]
    submission: Option<Submission>,
    #[serde(skip)]
    no_diff: bool,
}

/// One `mcp-call` event: when, and what the proxy recorded.
#[derive(serde::Serialize)]
struct McpCall {
    at: String,
    #[serde(flatten)]
    record: Value,
}

#[derive(serde::Serialize)]
struct Diff {
    stat: Vec<StatLine>,
    patch: String,
}

#[derive(serde::Serialize)]
struct StatLine {
    path: String,
    added: Option<u64>,
    deleted: Option<u64>,
    binary: bool,
}

/// The proof of the submitted round, verified now.
#[derive(serde::Serialize)]
struct ProofState {
    path: PathBuf,
    digest: String,
    verified: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    checks: Option<Vec<ProofCheck>>,
    /// Why it could not be verified at all.
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
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
                one_line(&shell_words(&t.argv), 80),
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
                        proof.error.clone().unwrap_or_else(|| failing(proof))
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

/// The commit round `n` was submitted as, or why there is none to compare with.
fn since_commit(run: &Run, history: &History, n: u32) -> Result<String> {
    let submitted: Vec<String> = history
        .submissions
        .iter()
        .map(|(r, _)| r.to_string())
        .collect();
    if n >= run.round {
        return Err(Error::Invalid(format!(
            "`--since-round {n}`: run {} is in round {}, so there is no later round to compare round {n} with; give an earlier round ({})",
            run.id,
            run.round,
            if submitted.is_empty() {
                "none was submitted yet".to_string()
            } else {
                format!("submitted: {}", submitted.join(", "))
            }
        )));
    }
    history.submitted_in(n).map(str::to_string).ok_or_else(|| {
        Error::Invalid(format!(
            "`--since-round {n}`: round {n} of run {} was never submitted, so it has no commit to compare with ({})",
            run.id,
            if submitted.is_empty() { "no round was submitted yet".to_string() } else { format!("submitted rounds: {}", submitted.join(", ")) }
        ))
    })
}

/// What moves the run on; a rolled-back run whose compensations are all
/// settled has nothing left to do.
fn next_step(run: &Run, actions: &[Action]) -> String {
    if run.state == State::RolledBack {
        let unfinished = actions
            .iter()
            .filter(|a| a.role == Role::Undo)
            .filter(|a| !matches!(a.state, ActionState::Done | ActionState::Skipped))
            .count();
        return match unfinished {
            0 => "nothing: the run was rolled back and every compensation is done".into(),
            n => format!(
                "the run was rolled back with {n} compensation{} unfinished: `airlock rollback {} --actions-only --reason …` finishes {}",
                if n == 1 { "" } else { "s" },
                run.id,
                if n == 1 { "it" } else { "them" }
            ),
        };
    }
    run.state.next_step(&run.id)
}

/// One decision: when, what, which round, who, and the reason whole, each
/// line escaped (a reason quotes text the agent wrote).
fn render_decision(d: &Decision) -> String {
    let mut h = format!("  {} {:<8} round {}", d.at, d.kind, d.round);
    if let Some(by) = &d.by {
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

/// The checks of a proof that failed, `name: detail`, joined.
fn failing(proof: &ProofState) -> String {
    proof
        .checks
        .iter()
        .flatten()
        .filter(|c| !c.ok)
        .map(|c| format!("{}: {}", c.name, c.detail))
        .collect::<Vec<_>>()
        .join("; ")
}

pub(crate) fn shell_words(argv: &[String]) -> String {
    argv.iter()
        .map(|a| {
            if !a.is_empty()
                && a.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@".contains(c))
            {
                a.clone()
            } else {
                format!("'{}'", a.replace('\'', "'\\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
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
