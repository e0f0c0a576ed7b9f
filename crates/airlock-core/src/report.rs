//! `airlock report RUN`: a run as a reviewer or a pull request's body wants
//! it, gathered from what the run recorded. Data only: the CLI lays it out
//! (Markdown or JSON). Every string from the brief, the worktree, commits or
//! commands is the agent's, and hostile.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::Airlock;
use crate::brief::Brief;
use crate::counts::TestCounts;
use crate::error::Result;
use crate::git;
use crate::run::Run;

#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    pub run: RunPart,
    /// None when the run's copy of its brief cannot be read or parsed.
    pub brief: Option<BriefPart>,
    pub commits: Vec<Commit>,
    /// From the run's first ledger event to its last, in milliseconds.
    pub duration_ms: Option<u64>,
    pub diff: DiffPart,
    pub gates: Vec<GatePart>,
    pub stop_conditions: Vec<crate::stops::StopResult>,
    /// The workflow's custom conditions as the last check evaluated them.
    pub conditions: Vec<airlock_model::conditions::ConditionResult>,
    /// The review panel's decision signed into the proof at submit.
    pub panel: Option<airlock_model::panel::Decision>,
    pub snapshots: Vec<SnapshotPart>,
    pub network: crate::egress::Summary,
    pub actions: Vec<ActionPart>,
    pub decisions: Vec<crate::decide::Decision>,
    pub confidence_limits: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RunPart {
    pub id: String,
    pub label: String,
    pub class: String,
    pub lane: String,
    pub state: String,
    pub round: u32,
    pub base: String,
    pub target: String,
    /// The commit the report's diff ends at: the submitted one, else the base.
    pub head: String,
    pub proof_digest: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct BriefPart {
    pub objective: String,
    pub non_goals: Vec<String>,
    pub touch: Vec<String>,
    pub checks: Vec<String>,
    pub assumptions: Vec<String>,
    pub rollback: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Commit {
    pub commit: String,
    /// The commit's subject line, as written (hostile).
    pub subject: String,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct DiffPart {
    pub files_changed: u64,
    pub insertions: u64,
    pub deletions: u64,
    /// Files by area (the first directory of the path, `.` for the root).
    pub areas: BTreeMap<String, u64>,
    pub files: Vec<FileChange>,
}

#[derive(Debug, Clone, Serialize)]
pub struct FileChange {
    pub path: String,
    /// None for a binary file.
    pub added: Option<u64>,
    pub deleted: Option<u64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct GatePart {
    pub name: String,
    pub status: String,
    pub duration_ms: u64,
    /// Test counts, from the gate's JUnit report when it writes one, else
    /// its runner's summary line.
    pub tests: Option<TestCounts>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SnapshotPart {
    pub gate: String,
    pub name: String,
    pub decision: String,
    pub added: usize,
    pub removed: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct ActionPart {
    pub name: String,
    pub kind: String,
    pub role: String,
    pub scopes: Vec<String>,
    pub state: String,
}

/// The first directory of `path`, or `.` for a file at the root.
pub fn area(path: &str) -> &str {
    match path.split_once('/') {
        Some((dir, _)) => dir,
        None => ".",
    }
}

/// Gathers run `run`'s report.
pub fn build(al: &Airlock, run: &Run) -> Result<RunReport> {
    let main = al.layout.git();
    let history = crate::decide::history(al, &run.id)?;
    let head = run
        .submission
        .as_ref()
        .map(|s| s.head.clone())
        .unwrap_or_else(|| run.base.clone());
    let brief = std::fs::read_to_string(al.layout.run_dir(&run.id).join("brief.toml"))
        .ok()
        .and_then(|text| Brief::parse(&text, "brief.toml", None).ok())
        .map(|b| BriefPart {
            objective: b.objective,
            non_goals: b.non_goals,
            touch: b.touch,
            checks: b.checks,
            assumptions: b.assumptions,
            rollback: b.rollback,
        });
    let commits = if head == run.base {
        Vec::new()
    } else {
        let out = main.run(&[
            "log",
            "-z",
            "--no-decorate",
            "--format=%H%x00%s",
            &format!("{}..{}", run.base, head),
        ])?;
        let text = String::from_utf8_lossy(&out);
        let mut parts = text.split('\0');
        let mut commits = Vec::new();
        while let (Some(commit), Some(subject)) = (parts.next(), parts.next()) {
            let commit = commit.trim_start_matches('\n');
            if !commit.is_empty() {
                commits.push(Commit {
                    commit: commit.to_string(),
                    subject: subject.to_string(),
                });
            }
        }
        commits
    };
    let mut diff = DiffPart::default();
    for change in git::numstat(&main, &run.base, &head)? {
        diff.files_changed += 1;
        if let Some((a, d)) = change.lines {
            diff.insertions += a;
            diff.deletions += d;
        }
        *diff
            .areas
            .entry(area(&change.path).to_string())
            .or_default() += 1;
        diff.files.push(FileChange {
            path: change.path,
            added: change.lines.map(|l| l.0),
            deleted: change.lines.map(|l| l.1),
        });
    }
    let check = run.check.as_ref().map(|c| &c.report);
    let gates = check
        .map(|c| {
            c.gates
                .iter()
                .map(|g| GatePart {
                    name: g.name.clone(),
                    status: g.status.clone(),
                    duration_ms: g.duration_ms,
                    tests: g.tests.clone(),
                })
                .collect()
        })
        .unwrap_or_default();
    let snapshots = check
        .map(|c| {
            c.gates
                .iter()
                .filter_map(|g| {
                    g.snapshot.as_ref().map(|s| SnapshotPart {
                        gate: g.name.clone(),
                        name: s.name.clone(),
                        decision: s.decision.clone(),
                        added: s.added,
                        removed: s.removed,
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    let traces = al.store.traces(&run.id)?;
    let actions = crate::action::plan::list(al, &run.id)?
        .into_iter()
        .map(|a| ActionPart {
            name: a.spec.name.clone(),
            kind: a.spec.body.kind().to_string(),
            role: serde_json::to_value(a.role)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
            scopes: a.spec.scopes.clone(),
            state: serde_json::to_value(a.state)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
        })
        .collect();
    let events = al.store.events(Some(&run.id))?;
    let duration_ms = match (events.first(), events.last()) {
        (Some(first), Some(last)) => humantime::parse_rfc3339(&first.ts)
            .ok()
            .zip(humantime::parse_rfc3339(&last.ts).ok())
            .and_then(|(a, b)| b.duration_since(a).ok())
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        _ => None,
    };
    Ok(RunReport {
        run: RunPart {
            id: run.id.clone(),
            label: run.label.clone(),
            class: run.class.clone(),
            lane: run.lane.clone(),
            state: run.state.to_string(),
            round: run.round,
            base: run.base.clone(),
            target: run.target.clone(),
            head,
            proof_digest: run.submission.as_ref().map(|s| s.digest.clone()),
        },
        brief,
        commits,
        duration_ms,
        diff,
        gates,
        stop_conditions: check.map(|c| c.stops.clone()).unwrap_or_default(),
        conditions: check.map(|c| c.conditions.clone()).unwrap_or_default(),
        panel: run.submission.as_ref().and_then(|s| s.panel.clone()),
        snapshots,
        network: crate::egress::Summary::of(&traces),
        actions,
        decisions: history.decisions,
        confidence_limits: crate::proof::confidence_limits(&traces),
    })
}
