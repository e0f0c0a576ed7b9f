//! Builds a run's evidence document (`airlock_model::evidence`) from what
//! airlock recorded, never from what the agent claims: the diff from git,
//! gates and their test counts from the check report, traces, connections
//! and actions from the store, the brief from airlock's own copy.

use std::collections::BTreeSet;

use airlock_model::action::Role;
use airlock_model::check::CheckReport;
use airlock_model::evidence::{
    ActionFacts, BriefFacts, ClassRecord, DiffFacts, GateFacts, NetworkFacts, ProtectedFacts,
    RunFacts, SecretsFacts, TestCounts, TraceFacts,
};
pub use airlock_model::evidence::{Evaluator, Evidence, VERSION};

use crate::Airlock;
use crate::brief::Brief;
use crate::error::Result;
use crate::git;
use crate::globs::Globs;
use crate::run::Run;
use crate::workflow::Workflow;

/// What the document describes: the change from `base` to `tree`, judged
/// by `report` (the gates and stop conditions run on it, when there are).
pub struct Subject<'a> {
    pub base: &'a str,
    pub tree: &'a str,
    pub report: Option<&'a CheckReport>,
}

/// The evidence of `run` for `subject`.
pub fn collect(
    al: &Airlock,
    run: &Run,
    brief: &Brief,
    workflow: &Workflow,
    subject: &Subject<'_>,
) -> Result<Evidence> {
    let git = al.layout.git();
    let changes = git::diff_tree(&git, subject.base, subject.tree)?;
    let numstat = git::numstat(&git, subject.base, subject.tree)?;
    let traces: Vec<_> = al
        .store
        .traces(&run.id)?
        .into_iter()
        .filter(|t| t.round == run.round)
        .collect();
    let actions = al.store.actions(&run.id)?;

    let mut paths: Vec<String> = changes.iter().map(|c| c.path.clone()).collect();
    paths.sort();
    paths.dedup();
    let of_status = |status: char| {
        let mut v: Vec<String> = changes
            .iter()
            .filter(|c| c.status == status)
            .map(|c| c.path.clone())
            .collect();
        v.sort();
        v
    };
    let diff = DiffFacts {
        files_changed: paths.len() as u64,
        insertions: numstat.iter().filter_map(|n| n.lines.map(|l| l.0)).sum(),
        deletions: numstat.iter().filter_map(|n| n.lines.map(|l| l.1)).sum(),
        added: of_status('A'),
        deleted: of_status('D'),
        paths,
    };

    let protected_globs = Globs::new(&workflow.protected());
    let protected = ProtectedFacts {
        paths: diff
            .paths
            .iter()
            .filter(|p| protected_globs.is_match(p))
            .cloned()
            .collect(),
    };

    let gates: Vec<GateFacts> = subject
        .report
        .map(|r| {
            r.gates
                .iter()
                .map(|g| GateFacts {
                    name: g.name.clone(),
                    status: g.status.clone(),
                    duration_ms: g.duration_ms,
                    tests: g.tests.as_ref().map(counts).unwrap_or_default(),
                })
                .collect()
        })
        .unwrap_or_default();
    let tests = gates
        .iter()
        .fold(TestCounts::default(), |sum, g| TestCounts {
            ran: sum.ran + g.tests.ran,
            passed: sum.passed + g.tests.passed,
            failed: sum.failed + g.tests.failed,
            skipped: sum.skipped + g.tests.skipped,
        });

    let mut hosts = BTreeSet::new();
    let mut refused = BTreeSet::new();
    for c in traces.iter().flat_map(|t| &t.connections) {
        if c.allowed() {
            hosts.insert(c.host.clone());
        } else {
            refused.insert(c.host.clone());
        }
    }

    Ok(Evidence {
        version: airlock_model::evidence::VERSION.to_string(),
        run: RunFacts {
            id: run.id.clone(),
            class: run.class.clone(),
            lane: run.lane.clone(),
            round: run.round,
            state: run.state.as_str().to_string(),
        },
        brief: BriefFacts {
            objective: brief.objective.clone(),
            non_goals: brief.non_goals.clone(),
            touch: brief.touch.clone(),
            forbid: brief.forbid_read.clone(),
            checks: brief.checks.clone(),
            rollback: brief.rollback.clone(),
            assumptions: brief.assumptions.clone(),
        },
        diff,
        gates,
        tests,
        traces: traces
            .iter()
            .map(|t| TraceFacts {
                argv: t.argv.clone(),
                exit: t.exit.code,
                duration_ms: t.duration_ms,
                files_changed: t.files_changed.len() as u64,
            })
            .collect(),
        network: NetworkFacts {
            hosts: hosts.into_iter().collect(),
            refused: refused.into_iter().collect(),
        },
        actions: actions
            .iter()
            .filter(|a| a.role == Role::Apply)
            .map(|a| ActionFacts {
                kind: a.spec.body.kind().to_string(),
                scope: a.spec.scopes.join(","),
                target: target(&a.spec.body),
                stage: a.state.as_str().to_string(),
            })
            .collect(),
        secrets: subject.report.map(secrets).unwrap_or_default(),
        protected,
        // The class's record is `airlock_core::stats`' (helper `metrics`
        // wires `stats::class_record` in here); until then it is empty.
        class: ClassRecord::default(),
    })
}

/// The evidence of `run` as it stands: its latest check's tree and report,
/// or its worktree's tree when it has not been checked in this round.
pub fn of_run(al: &Airlock, run: &Run) -> Result<Evidence> {
    let workflow = al.workflow_for(run)?;
    let brief = al.brief_of(run, &workflow)?;
    let check = run.check.as_ref().filter(|c| c.round == run.round);
    let tree = match (&run.submission, check) {
        (Some(s), _) if s.round == run.round => s.tree.clone(),
        (_, Some(c)) => c.tree.clone(),
        _ => crate::quota::snapshot(&al.layout, &run.id, &workflow.sandbox)?,
    };
    collect(
        al,
        run,
        &brief,
        &workflow,
        &Subject {
            base: &run.base,
            tree: &tree,
            report: check.map(|c| &c.report),
        },
    )
}

fn counts(c: &airlock_model::counts::TestCounts) -> TestCounts {
    TestCounts {
        ran: c.passed + c.failed + c.skipped,
        passed: c.passed,
        failed: c.failed,
        skipped: c.skipped,
    }
}

/// What an action acts on, in one string.
fn target(body: &airlock_model::action::Body) -> String {
    use airlock_model::action::Body;
    match body {
        Body::Http(h) => format!("{} {}", h.method, h.url),
        Body::Email(e) => {
            e.to.iter()
                .chain(&e.cc)
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        }
        Body::GitPush(p) => format!("{} {}", p.remote, p.dst),
        Body::Command(c) => c.argv.join(" "),
        Body::Mcp(m) => format!("{}/{}", m.server, m.tool),
    }
}

/// The secrets stop's findings, and the findings it reports as allowed
/// (its notes `PATH:LINE: RULE (fingerprint F) allowed by WHY`, WHY one of
/// the three ways a finding is allowed; the note listing binary files is
/// airlock's own and names paths, so it is not counted).
fn secrets(report: &CheckReport) -> SecretsFacts {
    let Some(stop) = report.stops.iter().find(|s| s.name == "secrets") else {
        return SecretsFacts::default();
    };
    let ways = [
        crate::stops::INLINE_MARKER_SUPPRESSION,
        crate::layout::SECRETS_ALLOW_FILE,
        crate::stops::GITLEAKS_FILE,
    ];
    SecretsFacts {
        findings: stop.findings.len() as u64,
        allowed: stop
            .notes
            .iter()
            .filter(|n| !n.starts_with("binary files scanned whole"))
            .filter(|n| {
                ways.iter()
                    .any(|w| n.ends_with(&format!(" allowed by {w}")))
            })
            .count() as u64,
    }
}
