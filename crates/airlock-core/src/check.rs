//! `check`: the stop conditions on the worktree as it is, then the brief's
//! gates in workflow order, whether or not a stop condition failed: the
//! stops are cheap and the agent learns every problem in one check. A gate
//! that fails skips the gates after it. The report (what the proof records)
//! holds the stops of the tree the gates left: if a gate changed the
//! worktree, they are evaluated again on that tree.

use serde_json::json;

use airlock_sandbox::Echo;

use crate::Airlock;
use crate::brief::Brief;
use crate::error::Result;
use crate::run::{CheckRecord, State};
use crate::stops::{self};

pub use airlock_model::check::{CheckReport, GateEvent, GateResult};

pub fn check(al: &mut Airlock, run_id: &str, echo: Echo) -> Result<CheckReport> {
    check_with(al, run_id, echo, &mut |_| {})
}

/// [`check`], telling `progress` as each gate starts and ends.
pub fn check_with(
    al: &mut Airlock,
    run_id: &str,
    echo: Echo,
    progress: &mut dyn FnMut(GateEvent<'_>),
) -> Result<CheckReport> {
    let mut run = al.store.get(run_id)?;
    run.require("check", &[State::Staged, State::Checked])?;
    let workflow = al.workflow_for(&run)?;
    let brief = al.brief_of(&run, &workflow)?;
    // Before the gates spend their time on a snapshot that would be refused.
    crate::quota::require_worktree_within(&al.layout, &run.id, &workflow.sandbox)?;

    // The stop conditions first: they take a moment where gates take
    // minutes, and a failing one is reported with the gates' results.
    let before = crate::quota::snapshot(&al.layout, &run.id, &workflow.sandbox)?;
    let early_stops = stops::evaluate(al, &run, &brief, &workflow, &before)?;

    let mut gates = Vec::new();
    let mut failed = false;
    let selected = gates_for(&workflow, &brief);
    let total = selected.len();
    for (index, gate) in selected.into_iter().enumerate() {
        if failed {
            gates.push(GateResult {
                name: gate.name.clone(),
                command: gate.run.clone(),
                status: "skipped".into(),
                exit: None,
                duration_ms: 0,
                trace: None,
                snapshot: None,
                tests: None,
            });
            continue;
        }
        progress(GateEvent::Started {
            name: &gate.name,
            index: index + 1,
            total,
        });
        if let Some(name) = &gate.snapshot {
            crate::snapshot::gate_preflight(al, name)?;
        }
        let argv = vec!["/bin/sh".into(), "-c".into(), gate.run.clone().into()];
        let (mut trace, held) = crate::exec::run_traced(
            &al.site(),
            &run,
            &workflow,
            &brief,
            &format!("gate:{}", gate.name),
            argv,
            Some(gate.timeout),
            echo,
            None,
        )?;
        al.store.add_trace(&run.id, &mut trace)?;
        drop(held);
        let snapshot = match &gate.snapshot {
            Some(name) => Some(crate::snapshot::gate_result(
                al, &run, &workflow, gate, name, &trace,
            )?),
            None => None,
        };
        // A snapshot gate decides by its golden, which records the exit code.
        let passed = match &snapshot {
            Some(s) => s.decision == "matched" && !trace.exit.timed_out,
            None => trace.exit.success(),
        };
        failed |= !passed;
        progress(GateEvent::Finished {
            name: &gate.name,
            passed,
            duration_ms: trace.duration_ms,
        });
        let tests = crate::gate_counts::of_gate(
            &run.worktree,
            gate.junit.as_deref(),
            &trace.stdout.log,
            &trace.stderr.log,
        );
        gates.push(GateResult {
            name: gate.name.clone(),
            command: gate.run.clone(),
            status: if passed { "passed" } else { "failed" }.into(),
            exit: Some(trace.exit.description.clone()),
            duration_ms: trace.duration_ms,
            trace: Some(trace.n),
            snapshot,
            tests,
        });
    }

    // The checked tree is the one the gates left (what `submit` commits).
    let tree = if total == 0 {
        before.clone()
    } else {
        crate::quota::snapshot(&al.layout, &run.id, &workflow.sandbox)?
    };
    let stops = if tree == before {
        early_stops
    } else {
        stops::evaluate(al, &run, &brief, &workflow, &tree)?
    };
    let mut report = CheckReport {
        round: run.round,
        passed: false,
        tree: tree.clone(),
        gates,
        stops,
        conditions: Vec::new(),
    };
    // The workflow's conditions see the gates' and stops' results.
    if !workflow.conditions.is_empty() {
        let evidence = crate::evidence::collect(
            al,
            &run,
            &brief,
            &workflow,
            &crate::evidence::Subject {
                base: &run.base,
                tree: &tree,
                report: Some(&report),
            },
        )?;
        report.conditions = crate::conditions::evaluate(&workflow, &evidence)?;
    }
    let passed = !failed
        && report.stops.iter().all(|s| s.passed)
        && !report.conditions.iter().any(|c| c.blocks());
    report.passed = passed;
    let from = run.state;
    run.state = if passed {
        State::Checked
    } else {
        State::Staged
    };
    run.check = Some(CheckRecord {
        round: run.round,
        tree,
        report: report.clone(),
    });
    al.transition(&run, from, "check", check_event(&report))?;
    Ok(report)
}

/// The `check` ledger event: the outcome, and the conditions' results when
/// the workflow has any.
fn check_event(report: &CheckReport) -> serde_json::Value {
    let mut event =
        json!({"passed": report.passed, "tree": report.tree, "failure": report.first_failure()});
    if !report.conditions.is_empty() {
        event["conditions"] = crate::conditions::summary(&report.conditions);
    }
    event
}

/// The workflow's gates the brief requires, in workflow order.
pub fn gates_for<'w>(
    workflow: &'w crate::workflow::Workflow,
    brief: &Brief,
) -> Vec<&'w crate::workflow::Gate> {
    workflow
        .gates
        .iter()
        .filter(|g| brief.checks.contains(&g.name))
        .collect()
}
