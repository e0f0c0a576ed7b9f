//! `check`: the brief's gates in workflow order, then the stop conditions.

use serde::{Deserialize, Serialize};
use serde_json::json;

use airlock_sandbox::Echo;

use crate::Airlock;
use crate::brief::Brief;
use crate::error::Result;
use crate::run::{CheckRecord, State};
use crate::stops::{self, StopResult};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GateResult {
    pub name: String,
    pub command: String,
    /// `passed`, `failed` or `skipped` (after an earlier failure).
    pub status: String,
    pub exit: Option<String>,
    pub duration_ms: u64,
    pub trace: Option<u32>,
    /// For a snapshot gate: golden digest, actual digest and the decision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<crate::snapshot::SnapshotResult>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CheckReport {
    pub round: u32,
    pub passed: bool,
    pub tree: String,
    pub gates: Vec<GateResult>,
    pub stops: Vec<StopResult>,
}

impl CheckReport {
    /// The first thing that failed, in a few words.
    pub fn first_failure(&self) -> Option<String> {
        if let Some(g) = self.gates.iter().find(|g| g.status == "failed") {
            if let Some(s) = g.snapshot.as_ref().filter(|s| s.decision != "matched") {
                return Some(format!(
                    "gate `{}`: snapshot `{}` is {} (`airlock snap diff {}`, then `airlock snap accept {}`)",
                    g.name, s.name, s.decision, s.name, s.name
                ));
            }
            return Some(format!(
                "gate `{}` failed ({})",
                g.name,
                g.exit.clone().unwrap_or_default()
            ));
        }
        self.stops
            .iter()
            .find(|s| !s.passed)
            .map(|s| format!("stop condition `{}`: {}", s.name, s.findings.join("; ")))
    }
}

pub fn check(al: &mut Airlock, run_id: &str, echo: Echo) -> Result<CheckReport> {
    let mut run = al.store.get(run_id)?;
    run.require("check", &[State::Staged, State::Checked])?;
    let workflow = al.workflow_for(&run)?;
    let brief = al.brief_of(&run, &workflow)?;
    // Before the gates spend their time on a snapshot that would be refused.
    crate::quota::require_worktree_within(&al.layout, &run.id, &workflow.sandbox)?;

    let mut gates = Vec::new();
    let mut failed = false;
    for gate in workflow
        .gates
        .iter()
        .filter(|g| brief.checks.contains(&g.name))
    {
        if failed {
            gates.push(GateResult {
                name: gate.name.clone(),
                command: gate.run.clone(),
                status: "skipped".into(),
                exit: None,
                duration_ms: 0,
                trace: None,
                snapshot: None,
            });
            continue;
        }
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
        gates.push(GateResult {
            name: gate.name.clone(),
            command: gate.run.clone(),
            status: if passed { "passed" } else { "failed" }.into(),
            exit: Some(trace.exit.description.clone()),
            duration_ms: trace.duration_ms,
            trace: Some(trace.n),
            snapshot,
        });
    }

    let tree = crate::quota::snapshot(&al.layout, &run.id, &workflow.sandbox)?;
    let stops = if failed {
        Vec::new()
    } else {
        stops::evaluate(al, &run, &brief, &workflow, &tree)?
    };
    let passed = !failed && stops.iter().all(|s| s.passed);
    let report = CheckReport {
        round: run.round,
        passed,
        tree: tree.clone(),
        gates,
        stops,
    };
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
    al.store.transition(
        &run,
        from,
        "check",
        json!({"passed": passed, "tree": report.tree, "failure": report.first_failure()}),
    )?;
    Ok(report)
}

/// Re-evaluates only the stop conditions against a tree (used by promotion
/// when it re-checks a merged result).
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
