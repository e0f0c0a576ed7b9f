//! What `check` found: the results of the stop conditions and the gates,
//! as a run records them and its proof embeds.

use std::path::PathBuf;

use airlock_snap::Outcome;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StopResult {
    pub name: String,
    pub passed: bool,
    /// Why it failed, one line per offending item.
    pub findings: Vec<String>,
    /// Things a reviewer should see that do not fail the check.
    pub notes: Vec<String>,
}

impl StopResult {
    pub fn new(name: &str, findings: Vec<String>, notes: Vec<String>) -> StopResult {
        StopResult {
            name: name.into(),
            passed: findings.is_empty(),
            findings,
            notes,
        }
    }
}

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
    pub snapshot: Option<SnapshotResult>,
    /// Test counts, when the gate's JUnit report or output states them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tests: Option<crate::counts::TestCounts>,
}

/// What a caller hears while gates run (the CLI shows progress from it).
#[derive(Debug, Clone, Copy)]
pub enum GateEvent<'a> {
    /// Gate `name` starts; it is number `index` (from 1) of `total`.
    Started {
        name: &'a str,
        index: usize,
        total: usize,
    },
    /// Gate `name` ended.
    Finished {
        name: &'a str,
        passed: bool,
        duration_ms: u64,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CheckReport {
    pub round: u32,
    pub passed: bool,
    pub tree: String,
    pub gates: Vec<GateResult>,
    pub stops: Vec<StopResult>,
    /// The workflow's custom conditions, evaluated after the gates.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<crate::conditions::ConditionResult>,
}

impl CheckReport {
    /// The first thing that failed, in a few words: a stop condition
    /// before a gate, in the order they are reported.
    pub fn first_failure(&self) -> Option<String> {
        self.failures().into_iter().next()
    }

    /// Everything that failed, each in a few words: the stop conditions,
    /// then the gate that failed.
    pub fn failures(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .stops
            .iter()
            .filter(|s| !s.passed)
            .map(|s| format!("stop condition `{}`: {}", s.name, s.findings.join("; ")))
            .collect();
        out.extend(
            self.conditions
                .iter()
                .filter(|c| c.blocks())
                .map(|c| c.describe()),
        );
        if let Some(g) = self.gates.iter().find(|g| g.status == "failed") {
            out.push(match g.snapshot.as_ref().filter(|s| s.decision != "matched") {
                Some(s) => format!(
                    "gate `{}`: snapshot `{}` is {} (`airlock snap diff {}`, then `airlock snap accept {}`)",
                    g.name, s.name, s.decision, s.name, s.name
                ),
                None => format!(
                    "gate `{}` failed ({})",
                    g.name,
                    g.exit.clone().unwrap_or_default()
                ),
            });
        }
        out
    }
}

/// A snapshot's result as a gate records it (and the proof embeds).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SnapshotResult {
    pub name: String,
    /// `matched`, `changed` or `new`.
    pub decision: String,
    pub golden_sha256: Option<String>,
    pub actual_sha256: String,
    /// Where the pending result was written (none on CI or when it matched).
    pub pending: Option<PathBuf>,
    pub added: usize,
    pub removed: usize,
    pub notes: Vec<String>,
}

impl From<&Outcome> for SnapshotResult {
    fn from(o: &Outcome) -> Self {
        SnapshotResult {
            name: o.name.clone(),
            decision: serde_json::to_value(o.decision)
                .ok()
                .and_then(|v| v.as_str().map(String::from))
                .unwrap_or_default(),
            golden_sha256: o.golden_sha256.clone(),
            actual_sha256: o.actual_sha256.clone(),
            pending: o.pending.clone(),
            added: o.stat.added,
            removed: o.stat.removed,
            notes: o.notes.clone(),
        }
    }
}
