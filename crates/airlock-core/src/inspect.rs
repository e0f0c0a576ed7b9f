//! What a reviewer reads about runs, gathered for whoever lays it out: the
//! queue of runs waiting for a decision (`airlock review`, the web queue)
//! and everything about one run (`airlock show`, the web run page). Reads
//! only; the CLI renders these as text or JSON, the web as HTML. Strings in
//! them are what the agent wrote unless said otherwise: a renderer escapes
//! them (`airlock_model::hostile`).

use std::collections::HashMap;
use std::path::PathBuf;

use serde_json::{Value, json};

use crate::action::{Action, ActionState, Role};
use crate::check::{CheckReport, GateResult};
use crate::decide::{Decision, History, RiskFlag};
use crate::exec::Trace;
use crate::git;
use crate::globs::{self, Globs};
use crate::hostile::clean;
use crate::proof::{ProofCheck, verify_run};
use crate::run::{Approval, Promotion, Run, State, Submission};
use crate::stops::StopResult;
use crate::{Airlock, Error, Result};

/// The runs waiting for a decision, oldest submission first.
#[derive(Debug, serde::Serialize)]
pub struct Queue {
    pub queue: Vec<Waiting>,
}

/// One run in review.
#[derive(Debug, serde::Serialize)]
pub struct Waiting {
    pub run: String,
    pub round: u32,
    pub label: String,
    pub class: String,
    pub lane: String,
    pub submitted: Option<String>,
    pub digest: Option<String>,
    /// What it would do beyond its diff: ``http `notify` ``, the name
    /// escaped ([`clean`]).
    pub actions: Vec<String>,
    pub risk_flags: Vec<RiskFlag>,
    /// Team mode: what the owners' rules at the target's tip still miss (a malformed
    /// rules file says so here).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub approvals_missing: Vec<String>,
    /// Read from the run's record (its last check and its submission), for
    /// a glance at the queue; not in `airlock review --json`.
    #[serde(skip)]
    pub glance: Glance,
}

/// What the queue shows of a run besides its flags, all from the run's own
/// record (no git, no proof read), so a long queue stays fast.
#[derive(Debug, Clone, Default)]
pub struct Glance {
    /// Files and lines (added plus deleted) changed, as the last check's
    /// blast-radius condition counted them.
    pub files: Option<u64>,
    pub lines: Option<u64>,
    /// The last check's gates (name, status, test counts).
    pub gates: Vec<GateResult>,
    pub passed: Option<bool>,
    /// The panel's outcome at submit (`approve`, `attention`, `block`).
    pub panel: Option<String>,
}

/// The queue: every run in review, oldest submission first, with what it
/// would do beyond its diff and its risk flags.
pub fn queue(al: &Airlock) -> Result<Queue> {
    // Every run in review with its actions, history events and traces'
    // confinements in a few queries, not three a run.
    let mut runs = al.store.in_review(&crate::decide::history_kinds())?;
    runs.retain(|r| r.run.state == State::InReview);
    let at = |r: &airlock_store::InReview| {
        r.run
            .submission
            .as_ref()
            .map(|s| s.at.clone())
            .unwrap_or_default()
    };
    runs.sort_by_key(at);
    // `workflow_for` reads the repository's current workflow whatever the
    // run: read once for the whole queue.
    let workflow = runs.first().and_then(|r| al.workflow_for(&r.run).ok());
    // Briefs parsed once per digest: copies that hash the same hold the
    // same text (each copy is still read and checked against its run's
    // digest, as `brief_of` does).
    let mut briefs: HashMap<String, Option<crate::brief::Brief>> = HashMap::new();
    let mut queue = Vec::with_capacity(runs.len());
    // Team mode's rules, read once per target (one `git ls-tree` when there are none).
    let mut rules: HashMap<String, std::result::Result<Option<crate::approvals::Rules>, String>> =
        HashMap::new();
    for airlock_store::InReview {
        run: r,
        actions,
        events,
        confinements,
    } in runs
    {
        // What each run would do beyond its diff, so nobody approves a push
        // or an email without noticing it.
        let actions = actions
            .iter()
            .filter(|a| a.role == Role::Apply)
            .map(|a| format!("{} `{}`", a.spec.body.kind(), clean(&a.spec.name)))
            .collect();
        let history = crate::decide::history_of(&events);
        let brief = workflow.as_ref().and_then(|w| {
            let (text, path) = crate::airlock::brief_text_of(&al.layout, &r).ok()?;
            briefs
                .entry(r.brief_digest.clone())
                .or_insert_with(|| {
                    crate::brief::Brief::parse(&text, &path.display().to_string(), Some(w)).ok()
                })
                .as_ref()
                .map(|b| (w, b))
        });
        let risk_flags = crate::decide::risk_flags_of(
            &r,
            &history,
            confinements.iter().map(|(n, c)| (*n, c.as_str())),
            brief,
        );
        let glance = glance(&r);
        let approvals_missing = match (
            rules.entry(r.target.clone()).or_insert_with(|| {
                crate::approvals::rules_at(al, &r.target).map_err(|e| e.to_string())
            }),
            r.submission.as_ref(),
        ) {
            (Ok(Some(rules)), Some(s)) => {
                match crate::approvals::standing(al, &r, s, rules, None) {
                    Ok(standing) => standing.missing(),
                    Err(e) => vec![e.to_string()],
                }
            }
            (Err(e), _) => vec![e.clone()],
            _ => Vec::new(),
        };
        queue.push(Waiting {
            approvals_missing,
            submitted: r.submission.as_ref().map(|s| s.at.clone()),
            digest: r.submission.as_ref().map(|s| s.digest.clone()),
            run: r.id,
            round: r.round,
            label: r.label,
            class: r.class,
            lane: r.lane,
            actions,
            risk_flags,
            glance,
        });
    }
    Ok(Queue { queue })
}

fn glance(run: &Run) -> Glance {
    let report = run.check.as_ref().map(|c| &c.report);
    let (files, lines) = report
        .and_then(|r| r.stops.iter().find(|s| s.name == "blast-radius"))
        .and_then(|s| s.notes.first())
        .map(|note| blast_counts(note))
        .unwrap_or((None, None));
    Glance {
        files,
        lines,
        gates: report.map(|r| r.gates.clone()).unwrap_or_default(),
        passed: report.map(|r| r.passed),
        panel: run
            .submission
            .as_ref()
            .and_then(|s| s.panel.as_ref())
            .map(|p| p.outcome.as_str().to_string()),
    }
}

/// `3 files, 12 lines changed` (the blast-radius note, written by airlock,
/// never by the agent) as numbers.
fn blast_counts(note: &str) -> (Option<u64>, Option<u64>) {
    let mut words = note.split_whitespace();
    let files = words.next().and_then(|w| w.parse().ok());
    let lines = words.nth(1).and_then(|w| w.parse().ok());
    (files, lines)
}

/// Everything about a run a reviewer weighs (`airlock show`).
#[derive(Debug, serde::Serialize)]
pub struct Shown {
    pub run: String,
    pub state: State,
    pub round: u32,
    pub label: String,
    pub class: String,
    pub lane: String,
    /// What `lane` grants (`None`: the workflow cannot be read).
    pub capabilities: Option<crate::lane_policy::Capabilities>,
    pub base: String,
    /// What moves the run on (airlock's words).
    pub next: String,
    pub risk_flags: Vec<RiskFlag>,
    pub decisions: Vec<Decision>,
    /// The review panel's decision log on the submitted tree (signed into
    /// the proof).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub panel: Option<crate::panel::Decision>,
    /// The panel's decision on the merged tree, when the run was promoted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub panel_at_promote: Option<crate::panel::Decision>,
    /// The reason of the last redirect, which the agent works to.
    pub feedback: Option<String>,
    pub since_round: Option<u32>,
    pub diff_from: String,
    pub branch: String,
    pub target: String,
    pub worktree: PathBuf,
    pub head: String,
    /// The run's copy of its brief, as written.
    pub brief: String,
    pub diff: Diff,
    pub gates: Vec<GateResult>,
    pub stop_conditions: Vec<StopResult>,
    pub check: Option<CheckReport>,
    pub traces: Vec<Trace>,
    /// The hosts reached and the connections refused through the egress
    /// proxy (a network that is a list of hosts).
    #[serde(skip_serializing_if = "crate::egress::Summary::is_empty")]
    pub egress: crate::egress::Summary,
    /// The upstream MCP calls `airlock mcp-proxy` passed or refused (its
    /// staged calls are actions).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub mcp_calls: Vec<McpCall>,
    /// [`actions_json`] of `listed`.
    pub actions: Value,
    pub rollback: Option<Decision>,
    pub proof: Option<ProofState>,
    pub approval: Option<Approval>,
    /// Team mode: the run's signed approvals under the rules at its target's tip, and
    /// what the owners' rules still miss (`None`: no `.airlock/reviewers` there).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signed_approvals: Option<crate::approvals::Standing>,
    /// Why the signed approvals could not be weighed (a malformed rules file).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approvals_problem: Option<String>,
    pub promotion: Option<Promotion>,
    /// The run's soak in staging and its probes, when it soaks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub soak: Option<crate::soak::SoakStatus>,
    /// `refs/heads/BRANCH` of the run in the main repository.
    #[serde(skip)]
    pub main_ref: String,
    /// What the diff goes to: a commit, or the worktree (and why not).
    #[serde(skip)]
    pub head_label: String,
    /// The run's actions (apply and undo), as stored.
    #[serde(skip)]
    pub listed: Vec<Action>,
    #[serde(skip)]
    pub submission: Option<Submission>,
    /// The brief parsed (without the workflow); `None` if it no longer
    /// parses.
    #[serde(skip)]
    pub brief_parsed: Option<crate::brief::Brief>,
    /// The rounds that were submitted, in order (for "since round N").
    #[serde(skip)]
    pub submitted_rounds: Vec<u32>,
}

/// One `mcp-call` event: when, and what the proxy recorded.
#[derive(Debug, serde::Serialize)]
pub struct McpCall {
    pub at: String,
    #[serde(flatten)]
    pub record: Value,
}

#[derive(Debug, serde::Serialize)]
pub struct Diff {
    pub stat: Vec<StatLine>,
    /// `git diff-tree -p` of the change, as git wrote it.
    pub patch: String,
}

#[derive(Debug, serde::Serialize)]
pub struct StatLine {
    pub path: String,
    pub added: Option<u64>,
    pub deleted: Option<u64>,
    pub binary: bool,
    /// The path matches none of the brief's `touch` patterns (unknown when
    /// the brief cannot be read: `false`).
    #[serde(skip)]
    pub out_of_scope: bool,
    /// The protected globs (built-in and the workflow's) the path matches.
    #[serde(skip)]
    pub protected: Vec<String>,
}

/// The proof of the submitted round, verified now.
#[derive(Debug, serde::Serialize)]
pub struct ProofState {
    pub path: PathBuf,
    pub digest: String,
    pub verified: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checks: Option<Vec<ProofCheck>>,
    /// Why it could not be verified at all.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl ProofState {
    /// The checks that failed, `name: detail`, joined.
    pub fn failing(&self) -> String {
        self.checks
            .iter()
            .flatten()
            .filter(|c| !c.ok)
            .map(|c| format!("{}: {}", c.name, c.detail))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// Everything about run `id`; with `since_round`, the diff from the commit
/// round N was submitted as, and only the traces of later rounds.
pub fn show(al: &Airlock, id: &str, since_round: Option<u32>) -> Result<Shown> {
    let run = al.store.get(id)?;
    // Team mode: a run started on another machine (issue 20).
    crate::remote::materialise(al, &run)?;
    let main = al.layout.git();
    let history = crate::decide::history(al, &run.id)?;
    // The diff's base: the run's start, or the commit of an earlier round.
    let from = match since_round {
        None => run.base.clone(),
        Some(n) => since_commit(&run, &history, n)?,
    };
    // The diff a reviewer decides on: the submitted commit, or the worktree as it is now.
    // With `since_round`, the current round's work: a submission of an
    // earlier round is what is compared against, not what is shown.
    let submission = run
        .submission
        .as_ref()
        .filter(|s| since_round.is_none() || s.round == run.round);
    let (head, head_label) = match submission {
        Some(s) => (
            s.head.clone(),
            format!("commit {}", &s.head[..s.head.len().min(12)]),
        ),
        // Within the run's quotas (a snapshot stores the worktree's files);
        // past them, or without a workflow that sets them, the run is
        // shown without its diff, and why.
        None => match al
            .workflow_for(&run)
            .and_then(|w| crate::quota::snapshot(&al.layout, &run.id, &w.sandbox))
        {
            Ok(tree) => (tree, "worktree (not submitted)".to_string()),
            Err(Error::Refused(refusal)) => (
                run.base.clone(),
                format!("worktree not shown: {}", refusal.what),
            ),
            Err(e @ (Error::InvalidToml { .. } | Error::NoWorkflow(_))) => {
                (run.base.clone(), format!("worktree not shown: {e}"))
            }
            Err(e) => return Err(e),
        },
    };
    let stat = git::numstat(&main, &from, &head)?;
    let patch = git::patch(&main, &from, &head)?;
    let flags = crate::decide::risk_flags(al, &run, &history)?;
    let mut traces = al.store.traces(&run.id)?;
    if let Some(n) = since_round {
        traces.retain(|t| t.round > n);
    }
    let brief_text =
        std::fs::read_to_string(al.layout.run_dir(&run.id).join("brief.toml")).unwrap_or_default();
    let brief_parsed = crate::brief::Brief::parse(&brief_text, "brief.toml", None).ok();
    let touch = brief_parsed.as_ref().map(|b| Globs::new(&b.touch));
    // What the run's lane grants under the workflow as it is now (the proof
    // carries what it granted at submit; a changed workflow voids approval).
    let workflow = al.workflow_for(&run).ok();
    let protected = workflow.as_ref().map(|w| w.protected()).unwrap_or_else(|| {
        crate::workflow::BUILTIN_PROTECTED
            .iter()
            .map(|s| s.to_string())
            .collect()
    });
    let protected = Globs::new(&protected);
    let proof = run
        .submission
        .as_ref()
        .map(|s| match verify_run(al, &run, None) {
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
    let actions = crate::action::plan::list(al, &run.id)?;
    let round = run.submission.as_ref().map(|s| s.round);
    let events = al.store.events(Some(&run.id))?;
    let mcp_calls = events
        .iter()
        .filter(|e| e.kind == crate::action::plan::MCP_CALL_EVENT)
        .map(|e| McpCall {
            at: e.ts.clone(),
            record: e.data.clone(),
        })
        .collect();
    let capabilities = workflow.as_ref().map(|w| w.capabilities(&run.lane));
    let soak = crate::soak::status(al, &run, crate::soak::process_clock().as_ref())?;
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
    let panel_at_promote = events
        .iter()
        .rev()
        .filter(|e| e.kind == "promote")
        .find_map(|e| serde_json::from_value(e.data["panel"].clone()).ok());
    let submitted_rounds = history.submissions.iter().map(|(r, _)| *r).collect();
    let (signed_approvals, approvals_problem) = signed_standing(al, &run);
    Ok(Shown {
        signed_approvals,
        approvals_problem,
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
        since_round,
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
                    out_of_scope: touch.as_ref().is_some_and(|t| !t.is_match(&c.path)),
                    protected: protected
                        .matching(&c.path)
                        .into_iter()
                        .map(globs::normalize)
                        .collect(),
                })
                .collect(),
            patch,
        },
        gates: check.as_ref().map(|c| c.gates.clone()).unwrap_or_default(),
        stop_conditions: check.as_ref().map(|c| c.stops.clone()).unwrap_or_default(),
        check,
        egress: crate::egress::Summary::of(&traces),
        traces,
        actions: actions_json(&actions, round),
        proof,
        main_ref: run.main_ref(),
        head_label,
        listed: actions,
        submission: run.submission.clone(),
        brief_parsed,
        submitted_rounds,
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
    })
}

/// Actions as JSON, each with the idempotency key its attempts carried
/// (keyed by the submitted `round`) once it was attempted.
pub fn actions_json(actions: &[Action], round: Option<u32>) -> Value {
    Value::Array(
        actions
            .iter()
            .map(|a| {
                let mut v = serde_json::to_value(a).unwrap_or(Value::Null);
                if let (Some(round), Value::Object(map)) = (round, &mut v)
                    && !a.attempts.is_empty()
                {
                    map.insert("idempotency_key".into(), json!(a.idempotency_key(round)));
                }
                v
            })
            .collect(),
    )
}

/// The commit round `n` was submitted as, or why there is none to compare with
/// (in words for the CLI's `--since-round` and the web's `?since=` alike).
fn since_commit(run: &Run, history: &History, n: u32) -> Result<String> {
    let submitted: Vec<String> = history
        .submissions
        .iter()
        .map(|(r, _)| r.to_string())
        .collect();
    if n >= run.round {
        return Err(Error::Invalid(format!(
            "no diff since round {n}: run {} is in round {}, so there is no later round to compare round {n} with; give an earlier round ({})",
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
            "no diff since round {n}: round {n} of run {} was never submitted, so it has no commit to compare with ({})",
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

/// Where a run in review (or approved) stands with its signed approvals, in team mode.
pub fn signed_standing(
    al: &Airlock,
    run: &crate::run::Run,
) -> (Option<crate::approvals::Standing>, Option<String>) {
    let Some(submission) = run
        .submission
        .as_ref()
        .filter(|_| matches!(run.state, State::InReview | State::Approved))
    else {
        return (None, None);
    };
    match crate::approvals::rules_at(al, &run.target).and_then(|rules| {
        rules
            .map(|r| crate::approvals::standing(al, run, submission, &r, None))
            .transpose()
    }) {
        Ok(standing) => (standing, None),
        Err(e) => (None, Some(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blast_counts_reads_airlocks_own_note() {
        assert_eq!(
            blast_counts("3 files, 12 lines changed"),
            (Some(3), Some(12))
        );
        assert_eq!(blast_counts("1 file, 1 line changed"), (Some(1), Some(1)));
        assert_eq!(blast_counts("garbled"), (None, None));
    }
}
