//! The gates on a commit with no run's work in it: `init` runs each
//! detected gate once on the base, so a gate already red there is known
//! for what it is (red on the base: not caused by a run).
//!
//! There is no run at init, so the gates run in a scratch checkout of the
//! commit under the state directory, through the same confinement as a
//! run's gates (the workflow's default lane, a brief that asks for every
//! gate), and the checkout is removed afterwards. The results are kept in
//! `<state>/base-gates.json`; the logs in `<state>/base-gates/`.
//! `check --base` does the same for a run: its brief's gates on its base.

use std::ffi::OsString;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use airlock_sandbox::{CommandSpec, Echo};

use crate::Site;
use crate::brief::Brief;
use crate::error::{Error, Result};
use crate::run::{Run, State, now};
use crate::workflow::{Gate, Workflow};

/// One gate's result on the base.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BaseGate {
    pub name: String,
    pub command: String,
    /// `exit 0`, `exit 1`, `killed by …`; or why it could not run.
    pub outcome: String,
    /// The gate fails on the base: not caused by a run.
    pub red: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stdout_log: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stderr_log: Option<PathBuf>,
}

/// What `init` found on the base: the commit and each gate's result.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BaseGates {
    pub commit: String,
    pub at: String,
    pub gates: Vec<BaseGate>,
}

/// Runs every gate of `workflow` once on `commit`, confined as a run's
/// gates are, and records the results in the state directory.
pub fn run_on(site: &Site, workflow: &Workflow, commit: &str) -> Result<BaseGates> {
    let gates: Vec<&Gate> = workflow.gates.iter().collect();
    run_gates_on(site, workflow, &gates, commit)
}

/// `check --base`: the run's gates on the run's base, and which of those
/// failing in the run's last check were already red there. Recorded as a
/// `base-check` event of the run.
#[derive(Debug, Clone, Serialize)]
pub struct RunBaseCheck {
    pub run: String,
    pub base: BaseGates,
    /// Failing in the run's last check and red on the base: not caused by
    /// the run.
    pub already_red: Vec<String>,
    /// Failing in the run's last check and green on the base: the run's.
    pub caused_by_run: Vec<String>,
}

pub fn check_run_base(al: &mut crate::Airlock, run_id: &str) -> Result<RunBaseCheck> {
    let run = al.store.get(run_id)?;
    let workflow = al.workflow_for(&run)?;
    let brief = al.brief_of(&run, &workflow)?;
    let gates = crate::check::gates_for(&workflow, &brief);
    let base = run_gates_on(&al.site(), &workflow, &gates, &run.base)?;
    let failing: Vec<&str> = run
        .check
        .as_ref()
        .map(|c| {
            c.report
                .gates
                .iter()
                .filter(|g| g.status == "failed")
                .map(|g| g.name.as_str())
                .collect()
        })
        .unwrap_or_default();
    let red = |name: &str| base.gates.iter().any(|g| g.name == name && g.red);
    let already_red: Vec<String> = failing
        .iter()
        .filter(|n| red(n))
        .map(|n| n.to_string())
        .collect();
    let caused_by_run: Vec<String> = failing
        .iter()
        .filter(|n| !red(n))
        .map(|n| n.to_string())
        .collect();
    al.store.event(
        Some(&run.id),
        "base-check",
        serde_json::json!({"base": run.base, "gates": base.gates.iter().map(|g| serde_json::json!({"gate": g.name, "outcome": g.outcome, "red": g.red})).collect::<Vec<_>>(),
                           "already_red": already_red, "caused_by_run": caused_by_run}),
    )?;
    Ok(RunBaseCheck {
        run: run.id.clone(),
        base,
        already_red,
        caused_by_run,
    })
}

fn run_gates_on(
    site: &Site,
    workflow: &Workflow,
    gates: &[&Gate],
    commit: &str,
) -> Result<BaseGates> {
    let layout = site.layout;
    let id = format!("base-{}", &commit[..commit.len().min(12)]);
    let dir = layout.run_dir(&id);
    let tree = dir.join("worktree");
    let index = dir.join("index");
    let logs = layout.state.join("base-gates");
    for d in [&dir, &logs] {
        std::fs::create_dir_all(d).map_err(|source| Error::Write {
            path: d.clone(),
            source,
        })?;
    }
    let result = run_in(site, workflow, gates, commit, &id, &tree, &index, &logs);
    // Nothing of the scratch checkout stays: it is no run.
    let _ = std::fs::remove_dir_all(&dir);
    let report = BaseGates {
        commit: commit.to_string(),
        at: now(),
        gates: result?,
    };
    let record = layout.state.join("base-gates.json");
    let text = serde_json::to_vec_pretty(&report).unwrap_or_default();
    crate::layout::write_atomic(&record, &text)?;
    Ok(report)
}

#[allow(clippy::too_many_arguments)]
fn run_in(
    site: &Site,
    workflow: &Workflow,
    gates: &[&Gate],
    commit: &str,
    id: &str,
    tree: &std::path::Path,
    index: &std::path::Path,
    logs: &std::path::Path,
) -> Result<Vec<BaseGate>> {
    let names: Vec<String> = gates.iter().map(|g| g.name.clone()).collect();
    let brief_text = format!(
        "title = \"the gates on the base\"\nobjective = \"run every gate once on the base\"\ntouch = [\"**\"]\nchecks = {}\nrollback = \"nothing to roll back\"\n",
        serde_json::to_string(&names).unwrap_or_else(|_| "[]".into())
    );
    // Without the workflow: its gates are the checks, and no class or lane
    // of this brief stands for anyone's work.
    let brief = Brief::parse(&brief_text, "the base check", None)?;
    let main = site.layout.git();
    main.scratch_checkout(tree, index, commit)?;
    let run = Run {
        id: id.to_string(),
        state: State::Staged,
        round: 1,
        label: "the gates on the base".into(),
        class: brief.class.clone(),
        lane: brief.lane.clone(),
        brief_path: String::new(),
        brief_digest: brief.digest.clone(),
        workflow_digest: workflow.digest.clone(),
        base: commit.to_string(),
        branch: String::new(),
        target: String::new(),
        worktree: tree.to_path_buf(),
        created: now(),
        check: None,
        submission: None,
        approval: None,
        promotion: None,
        release: None,
    };
    let mut results = Vec::new();
    for gate in gates {
        let plan = match crate::confinement::plan(site, &run, workflow, &brief, tree) {
            Ok(plan) => plan,
            Err(e) => {
                results.push(BaseGate {
                    name: gate.name.clone(),
                    command: gate.run.clone(),
                    outcome: format!("not run: {e}"),
                    red: false,
                    stdout_log: None,
                    stderr_log: None,
                });
                continue;
            }
        };
        let mut spec = CommandSpec {
            argv: vec!["/bin/sh".into(), "-c".into(), OsString::from(&gate.run)],
            cwd: tree.to_path_buf(),
            env: plan.env,
            timeout: Some(gate.timeout),
            stdout_path: logs.join(format!("{}.stdout", gate.name)),
            stderr_path: logs.join(format!("{}.stderr", gate.name)),
            echo: Echo::None,
            confinement: Some(plan.confinement),
            limits: plan.limits,
            input: airlock_sandbox::Input::Null,
        };
        let (outcome, red, ran) =
            match crate::confinement::run(workflow, &mut spec, plan.egress.as_ref()) {
                Ok(crate::confinement::Ran { outcome, .. }) => {
                    (outcome.exit.describe(), !outcome.exit.success(), true)
                }
                Err(e) => (format!("not run: {e}"), false, false),
            };
        results.push(BaseGate {
            name: gate.name.clone(),
            command: gate.run.clone(),
            outcome,
            red,
            stdout_log: ran.then(|| spec.stdout_path.clone()),
            stderr_log: ran.then(|| spec.stderr_path.clone()),
        });
    }
    Ok(results)
}
