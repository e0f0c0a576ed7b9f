//! Soak gates: a promoted run waiting in staging, its probes, and when its
//! production actions may run.
//!
//! A run with production actions (`airlock_model::soak::stage`), promoted
//! while the workflow has soak gates, is promoted in two stages. The first
//! `promote` merges, applies the staging actions and records the
//! [`SoakPlan`] (the time the run entered staging by the engine's
//! [`Clock`], the gates, the held actions) in the run's promotion and its
//! `promote` event, in one transaction. `airlock soak RUN` runs the probes
//! that are due, sandboxed like a gate on a scratch checkout of the merge
//! with the run's lane's network, each a `soak-probe` event. A second
//! `promote` ([`finish`]) refuses until every gate's soak has passed, runs
//! the probes then due, refuses on any failed probe, and records
//! `soak-passed` before `action::apply` lets the held actions go.
//!
//! Time comes only from the [`Clock`] the caller gives. Nothing a sandboxed
//! command can reach changes it: a release build reads the system's clock
//! alone; a build with debug assertions (the tests') also reads
//! `AIRLOCK_TEST_NOW` from airlock's own environment, which no command it
//! runs can set.

use std::ffi::OsString;
use std::time::{Duration, SystemTime};

use serde::Serialize;
use serde_json::json;

use airlock_sandbox::{CommandSpec, Echo};

pub use airlock_model::soak::{STAGING_LANE, SoakGate, SoakPlan, Stage};

use airlock_model::action::ActionSpec;
use airlock_model::names::LANES;
use airlock_model::workflow::Workflow;

use crate::Airlock;
use crate::action::Role;
use crate::error::{Code, Error, Result};
use crate::run::{Run, State};

/// Where the engine reads the time for soaks.
pub trait Clock {
    fn now(&self) -> SystemTime;
}

/// The system's clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// A clock that says what it is told (tests move it forward).
pub struct FixedClock(pub SystemTime);

impl Clock for FixedClock {
    fn now(&self) -> SystemTime {
        self.0
    }
}

/// The variable a test build of airlock reads its clock from (RFC 3339).
pub const TEST_CLOCK_VAR: &str = "AIRLOCK_TEST_NOW";

/// The clock of this process: the system's. Only a build with debug
/// assertions honours [`TEST_CLOCK_VAR`], so the CLI's tests can move time
/// forward; a release build has no way to set its clock.
pub fn process_clock() -> Box<dyn Clock> {
    if cfg!(debug_assertions)
        && let Some(at) = std::env::var_os(TEST_CLOCK_VAR)
        && let Some(t) = at.to_str().and_then(parse_time)
    {
        return Box::new(FixedClock(t));
    }
    Box::new(SystemClock)
}

fn format_time(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

fn parse_time(text: &str) -> Option<SystemTime> {
    humantime::parse_rfc3339_weak(text).ok()
}

/// `23h 10m`, `4m`, `35s`: a time left, rounded up to the minute past
/// the first minute.
pub fn human_duration(d: Duration) -> String {
    let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    if secs < 60 {
        return format!("{secs}s");
    }
    let minutes = secs.div_ceil(60);
    let (hours, mins) = (minutes / 60, minutes % 60);
    let mut parts = Vec::new();
    if hours > 0 {
        parts.push(format!("{hours}h"));
    }
    if mins > 0 {
        parts.push(format!("{mins}m"));
    }
    parts.join(" ")
}

/// An action is a staging action when every scope it declares is granted
/// by `staging` or a lane below it; otherwise it needs production's own
/// scopes and is a production action. Lanes are cumulative upwards, so
/// these are the scopes a staging run may use.
pub fn stage(spec: &ActionSpec, workflow: &Workflow) -> Stage {
    let staging = spec.scopes.iter().all(|s| {
        workflow
            .lowest_lane_granting_scope(s)
            .and_then(|lane| LANES.iter().position(|l| *l == lane))
            .zip(LANES.iter().position(|l| *l == STAGING_LANE))
            .is_some_and(|(granted, staging)| granted <= staging)
    });
    if staging {
        Stage::Staging
    } else {
        Stage::Production
    }
}

/// The soak the run's first promotion must record, if any: the workflow
/// has soak gates and the run has production actions.
pub(crate) fn plan(
    al: &Airlock,
    run: &Run,
    workflow: &crate::workflow::Workflow,
    clock: &dyn Clock,
) -> Result<Option<SoakPlan>> {
    if workflow.soaks.is_empty() {
        return Ok(None);
    }
    let production: Vec<String> = crate::action::plan::list(al, &run.id)?
        .into_iter()
        .filter(|a| a.role == Role::Apply && stage(&a.spec, workflow) == Stage::Production)
        .map(|a| a.spec.name)
        .collect();
    if production.is_empty() {
        return Ok(None);
    }
    Ok(Some(SoakPlan {
        entered: format_time(clock.now()),
        gates: workflow.soaks.clone(),
        production,
    }))
}

/// One probe's run, as its `soak-probe` event records it.
#[derive(Debug, Clone, Serialize)]
pub struct Probe {
    pub gate: String,
    /// When it ran, by the engine's clock.
    pub at: String,
    pub passed: bool,
    pub exit: String,
    pub duration_ms: u64,
    /// The end of its stdout and stderr (the agent's tree ran; hostile).
    pub output: String,
    pub stdout_sha256: String,
    pub stderr_sha256: String,
    pub connections: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct GateStatus {
    pub name: String,
    pub probe: String,
    pub soak_secs: u64,
    pub every_secs: u64,
    /// When this gate's soak is over.
    pub ends: String,
    pub left_secs: u64,
    pub probes: usize,
    pub passed: usize,
    /// When the next probe is due (now or later); none once one failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_due: Option<String>,
}

/// Where a soaking run stands.
#[derive(Debug, Clone, Serialize)]
pub struct SoakStatus {
    pub run: String,
    pub entered: String,
    /// When the last gate's soak is over.
    pub ends: String,
    pub left_secs: u64,
    pub gates: Vec<GateStatus>,
    pub probes: Vec<Probe>,
    /// The first probe that failed: the production actions never run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failed: Option<Probe>,
    /// When a promotion found the soak passed (the held actions may run).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub passed_at: Option<String>,
    /// The production actions held by the soak.
    pub production: Vec<String>,
    /// `soak: 23h 10m left, 14 of 14 probes passed`.
    pub summary: String,
    /// The signed record of the probes (`soak_proof_path`), once one ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proof: Option<std::path::PathBuf>,
}

impl SoakStatus {
    /// Over, and nothing failed: the second promotion may go on.
    pub fn ready(&self) -> bool {
        self.left_secs == 0 && self.failed.is_none()
    }
}

/// The soak of a run, read from its promotion record and its ledger
/// events; `None` when the run was promoted without one (or not yet).
pub fn status(al: &Airlock, run: &Run, clock: &dyn Clock) -> Result<Option<SoakStatus>> {
    let Some(plan) = run.promotion.as_ref().and_then(|p| p.soak.clone()) else {
        return Ok(None);
    };
    let entered = parse_time(&plan.entered)
        .ok_or_else(|| Error::Corrupt(format!("run {}: soak entry time unreadable", run.id)))?;
    let now = clock.now();
    let mut probes = Vec::new();
    let mut passed_at = None;
    for event in al.store.events(Some(&run.id))? {
        match event.kind.as_str() {
            "soak-probe" => {
                if let Ok(p) = probe_of(&event.data) {
                    probes.push(p);
                }
            }
            "soak-passed" => {
                passed_at = event.data["at"].as_str().map(str::to_string);
            }
            _ => {}
        }
    }
    let failed = probes.iter().find(|p| !p.passed).cloned();
    let mut gates = Vec::new();
    let mut ends_max = entered;
    for gate in &plan.gates {
        let ends = entered + gate.soak;
        ends_max = ends_max.max(ends);
        let mine: Vec<&Probe> = probes.iter().filter(|p| p.gate == gate.name).collect();
        let last = mine.iter().filter_map(|p| parse_time(&p.at)).max();
        let next_due = if failed.is_some() {
            None
        } else {
            Some(format_time(last.map_or(entered, |l| l + gate.every)))
        };
        gates.push(GateStatus {
            name: gate.name.clone(),
            probe: gate.probe.clone(),
            soak_secs: gate.soak.as_secs(),
            every_secs: gate.every.as_secs(),
            ends: format_time(ends),
            left_secs: left(ends, now).as_secs(),
            probes: mine.len(),
            passed: mine.iter().filter(|p| p.passed).count(),
            next_due,
        });
    }
    let left_total = left(ends_max, now);
    let passed = probes.iter().filter(|p| p.passed).count();
    let summary = if let Some(f) = &failed {
        format!(
            "soak: failed: probe `{}` failed at {} ({}); {passed} of {} probes passed",
            f.gate,
            f.at,
            f.exit,
            probes.len()
        )
    } else if passed_at.is_some() {
        format!(
            "soak: passed, {passed} of {} probes passed; production actions released",
            probes.len()
        )
    } else if left_total.is_zero() {
        format!(
            "soak: over, {passed} of {} probes passed; `airlock promote {}` applies the production actions",
            probes.len(),
            run.id
        )
    } else {
        format!(
            "soak: {} left, {passed} of {} probes passed",
            human_duration(left_total),
            probes.len()
        )
    };
    Ok(Some(SoakStatus {
        run: run.id.clone(),
        entered: plan.entered.clone(),
        ends: format_time(ends_max),
        left_secs: left_total.as_secs() + u64::from(left_total.subsec_nanos() > 0),
        gates,
        probes,
        failed,
        passed_at,
        production: plan.production.clone(),
        summary,
        proof: Some(soak_proof_path(al, &run.id)).filter(|p| p.is_file()),
    }))
}

fn left(ends: SystemTime, now: SystemTime) -> Duration {
    ends.duration_since(now).unwrap_or_default()
}

fn probe_of(data: &serde_json::Value) -> std::result::Result<Probe, ()> {
    let s = |k: &str| data[k].as_str().map(str::to_string).ok_or(());
    Ok(Probe {
        gate: s("gate")?,
        at: s("at")?,
        passed: data["passed"].as_bool().ok_or(())?,
        exit: s("exit")?,
        duration_ms: data["duration_ms"].as_u64().unwrap_or_default(),
        output: s("output").unwrap_or_default(),
        stdout_sha256: s("stdout_sha256").unwrap_or_default(),
        stderr_sha256: s("stderr_sha256").unwrap_or_default(),
        connections: data["connections"].as_array().map_or(0, Vec::len),
    })
}

/// Names of the production actions still held: the run soaks and no
/// promotion has found the soak passed. `action::apply` skips them.
pub(crate) fn held(al: &Airlock, run: &Run) -> Result<Vec<String>> {
    let Some(plan) = run.promotion.as_ref().and_then(|p| p.soak.as_ref()) else {
        return Ok(Vec::new());
    };
    let passed = al
        .store
        .events(Some(&run.id))?
        .iter()
        .any(|e| e.kind == "soak-passed");
    Ok(if passed {
        Vec::new()
    } else {
        plan.production.clone()
    })
}

/// What `airlock soak RUN` did and where the soak stands.
#[derive(Debug, Clone, Serialize)]
pub struct SoakReport {
    /// The probes run now.
    pub ran: Vec<Probe>,
    pub status: SoakStatus,
}

fn soaking_run(al: &Airlock, run_id: &str) -> Result<(Run, SoakPlan)> {
    let run = al.store.get(run_id)?;
    match run.promotion.as_ref().and_then(|p| p.soak.clone()) {
        Some(plan) if run.state == State::Promoted => Ok((run, plan)),
        _ => Err(Error::refused(
            Code::NotSoaking,
            format!("run {} is not soaking in staging", run.id),
            vec![match run.state {
                State::Promoted => "it was promoted without a soak: the workflow had no soak gate, or the run has no production action".to_string(),
                State::RolledBack => "it was rolled back".to_string(),
                s => format!("it is {s}; a run soaks once `promote` has moved it into staging"),
            }],
            format!("`airlock show {}` says what the run waits for", run.id),
        )),
    }
}

/// `airlock soak RUN [--gate NAME]`: runs every probe that is due (or the
/// named gate's, due or not), each recorded, then says where the soak
/// stands. Nothing runs once a probe failed or the soak has passed.
pub fn probe(
    al: &mut Airlock,
    run_id: &str,
    gate: Option<&str>,
    clock: &dyn Clock,
) -> Result<SoakReport> {
    crate::guards::refuse_from_lane(al, "soak")?;
    // Probes and the promotion's decision never interleave.
    let _lock = crate::lock::FileLock::acquire(&al.layout.promote_lock(), true)?;
    let (run, plan) = soaking_run(al, run_id)?;
    if let Some(name) = gate
        && !plan.gates.iter().any(|g| g.name == name)
    {
        return Err(Error::refused(
            Code::UnknownSoakGate,
            format!(
                "run {} does not soak under a gate `{}`",
                run.id,
                name.escape_debug()
            ),
            vec![format!(
                "its soak gates: {}",
                plan.gates
                    .iter()
                    .map(|g| g.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )],
            format!(
                "name one of them, or leave `--gate` out to run every probe that is due: `airlock soak {}`",
                run.id
            ),
        ));
    }
    let ran = run_due(al, &run, &plan, gate, clock)?;
    let mut status = status(al, &run, clock)?
        .ok_or_else(|| Error::Corrupt(format!("run {}: its soak vanished", run.id)))?;
    if !ran.is_empty() {
        status.proof = Some(write_proof(al, &run, &status)?);
    }
    Ok(SoakReport { ran, status })
}

/// Runs the probes due now (every one of `only` when given), in the
/// order of the gates; stops at the first that fails.
fn run_due(
    al: &mut Airlock,
    run: &Run,
    plan: &SoakPlan,
    only: Option<&str>,
    clock: &dyn Clock,
) -> Result<Vec<Probe>> {
    let Some(before) = status(al, run, clock)? else {
        return Ok(Vec::new());
    };
    if before.failed.is_some() || before.passed_at.is_some() {
        return Ok(Vec::new());
    }
    let now = clock.now();
    let mut ran = Vec::new();
    for (gate, st) in plan.gates.iter().zip(&before.gates) {
        let due = match only {
            Some(name) => gate.name == name,
            None => st
                .next_due
                .as_deref()
                .and_then(parse_time)
                .is_some_and(|t| t <= now),
        };
        if !due {
            continue;
        }
        let probe = run_probe(al, run, gate, clock)?;
        let failed = !probe.passed;
        ran.push(probe);
        if failed {
            break;
        }
    }
    Ok(ran)
}

/// The most of a probe's output kept in its event.
const OUTPUT_TAIL: u64 = 2048;

fn tail(path: &std::path::Path) -> String {
    use std::io::{Read, Seek, SeekFrom};
    let Ok(mut f) = std::fs::File::open(path) else {
        return String::new();
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = f.seek(SeekFrom::Start(len.saturating_sub(OUTPUT_TAIL)));
    let mut bytes = Vec::new();
    let _ = f.take(OUTPUT_TAIL).read_to_end(&mut bytes);
    String::from_utf8_lossy(&bytes).into_owned()
}

/// One probe: the gate's command in the run's sandbox (the lane's network,
/// through the egress proxy when that is a list of hosts), on a scratch
/// checkout of the promoted merge, as `promote` re-runs gates; recorded as
/// a `soak-probe` event committed in full.
fn run_probe(al: &mut Airlock, run: &Run, gate: &SoakGate, clock: &dyn Clock) -> Result<Probe> {
    let merge = run
        .promotion
        .as_ref()
        .map(|p| p.merge.clone())
        .ok_or_else(|| Error::Corrupt(format!("run {} has no promotion", run.id)))?;
    let workflow = al.current_workflow()?;
    // A probe runs a command as a gate does: the lane must grant that.
    crate::lane_policy::require(&workflow, run, crate::lane_policy::Capability::Exec, "soak")?;
    let brief = al.brief_of(run, &workflow)?;
    let main = al.layout.git();
    let dir = al.layout.run_dir(&run.id);
    let scratch = dir.join("soak-check");
    let index = dir.join("soak-check.index");
    let _ = std::fs::remove_dir_all(&scratch);
    main.scratch_checkout_without(&scratch, &index, &merge, &brief.forbid_read)?;
    let logs = al.layout.logs_dir(&run.id);
    for d in [&logs, &dir.join("tmp")] {
        std::fs::create_dir_all(d).map_err(|source| Error::Write {
            path: d.to_path_buf(),
            source,
        })?;
    }
    let at = clock.now();
    let n = al
        .store
        .events(Some(&run.id))?
        .iter()
        .filter(|e| e.kind == "soak-probe")
        .count()
        + 1;
    let plan = crate::confinement::plan(&al.site(), run, &workflow, &brief, &scratch)?;
    let mut spec = CommandSpec {
        argv: vec!["/bin/sh".into(), "-c".into(), OsString::from(&gate.probe)],
        cwd: scratch.clone(),
        env: plan.env,
        timeout: Some(gate.timeout),
        stdout_path: logs.join(format!("soak-{}-{n}.stdout", gate.name)),
        stderr_path: logs.join(format!("soak-{}-{n}.stderr", gate.name)),
        echo: Echo::None,
        input: airlock_sandbox::Input::Null,
        confinement: Some(plan.confinement),
        limits: plan.limits,
    };
    let ran = crate::confinement::run(&workflow, &mut spec, plan.egress.as_ref());
    let _ = std::fs::remove_dir_all(&scratch);
    let _ = std::fs::remove_file(&index);
    let crate::confinement::Ran {
        outcome,
        connections,
    } = ran?;
    let mut output = tail(&spec.stdout_path);
    let err = tail(&spec.stderr_path);
    if !err.is_empty() {
        if !output.is_empty() && !output.ends_with('\n') {
            output.push('\n');
        }
        output.push_str(&err);
    }
    let probe = Probe {
        gate: gate.name.clone(),
        at: format_time(at),
        passed: outcome.exit.success(),
        exit: outcome.exit.describe(),
        duration_ms: outcome.duration_ms,
        output,
        stdout_sha256: outcome.stdout.sha256.clone(),
        stderr_sha256: outcome.stderr.sha256.clone(),
        connections: connections.len(),
    };
    // The logs go to the team's shared store before the event names them.
    let unshared = crate::logstore::share(
        &al.layout,
        &workflow,
        &[
            (&spec.stdout_path, &probe.stdout_sha256),
            (&spec.stderr_path, &probe.stderr_sha256),
        ],
    );
    al.store.event(
        Some(&run.id),
        "soak-probe",
        json!({"gate": probe.gate, "at": probe.at, "passed": probe.passed, "exit": probe.exit,
               "duration_ms": probe.duration_ms, "output": probe.output,
               "stdout_sha256": probe.stdout_sha256, "stderr_sha256": probe.stderr_sha256,
               "merge": merge, "connections": connections, "logs_unshared": unshared}),
    )?;
    Ok(probe)
}

/// The second `promote` of a soaking run, under the promotion lock:
/// refuses before the soak is over (nothing runs), runs the probes due
/// then, refuses on a failed probe, and records `soak-passed`, after which
/// `action::apply` releases the held actions. Once passed, it does nothing.
pub(crate) fn finish(al: &mut Airlock, run: &Run, clock: &dyn Clock) -> Result<()> {
    let Some(plan) = run.promotion.as_ref().and_then(|p| p.soak.clone()) else {
        return Ok(());
    };
    let Some(before) = status(al, run, clock)? else {
        return Ok(());
    };
    if before.passed_at.is_some() {
        return Ok(());
    }
    if before.failed.is_none() && before.left_secs > 0 {
        return Err(Error::refused(
            Code::SoakNotOver,
            format!(
                "refusing to promote run {} to production: it soaks in staging for {} more",
                run.id,
                human_duration(Duration::from_secs(before.left_secs))
            ),
            before
                .gates
                .iter()
                .map(|g| {
                    format!(
                        "gate `{}`: soak {} from {} ends {}, {} of {} probes passed",
                        g.name,
                        human_duration(Duration::from_secs(g.soak_secs)),
                        before.entered,
                        g.ends,
                        g.passed,
                        g.probes
                    )
                })
                .chain(std::iter::once(format!(
                    "held: {}; nothing was applied",
                    plan.production.join(", ")
                )))
                .collect(),
            format!(
                "run `airlock soak {}` to probe staging meanwhile, and `airlock promote {}` again after {}",
                run.id, run.id, before.ends
            ),
        ));
    }
    let ran = run_due(al, run, &plan, None, clock)?;
    let after = status(al, run, clock)?
        .ok_or_else(|| Error::Corrupt(format!("run {}: its soak vanished", run.id)))?;
    if !ran.is_empty() {
        write_proof(al, run, &after)?;
    }
    if let Some(failed) = &after.failed {
        let mut reasons = vec![format!(
            "probe `{}` of gate `{}` failed at {} ({})",
            plan.gates
                .iter()
                .find(|g| g.name == failed.gate)
                .map_or("", |g| g.probe.as_str()),
            failed.gate,
            failed.at,
            failed.exit
        )];
        reasons.extend(
            failed
                .output
                .lines()
                .rev()
                .take(20)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .map(|l| format!("  | {l}")),
        );
        reasons.push(format!(
            "held, never applied: {}",
            plan.production.join(", ")
        ));
        return Err(Error::refused(
            Code::SoakProbeFailed,
            format!(
                "refusing to promote run {} to production: a soak probe failed in staging",
                run.id
            ),
            reasons,
            format!(
                "roll it back (`airlock rollback {} --reason …`, which reverts the merge and compensates the staging actions) and fix the cause in a new run",
                run.id
            ),
        ));
    }
    crate::failpoint("soak:before-passed");
    al.store.event(
        Some(&run.id),
        "soak-passed",
        json!({"at": format_time(clock.now()), "entered": after.entered,
               "probes": after.probes.len(), "production": plan.production}),
    )?;
    crate::failpoint("soak:after-passed");
    if let Some(passed) = status(al, run, clock)? {
        write_proof(al, run, &passed)?;
    }
    Ok(())
}

/// The predicate type of a soak's signed record.
pub const SOAK_PREDICATE: &str = "https://airlock.dev/soak/v1";

/// Where a run's soak record is: beside its proofs.
pub fn soak_proof_path(al: &Airlock, run: &str) -> std::path::PathBuf {
    al.layout
        .proofs_dir()
        .join(format!("{run}-soak.intoto.jsonl"))
}

/// Signs the soak as it stands (every probe with its digests, the entry,
/// whether it passed) into `<run>-soak.intoto.jsonl` and its `.sig`, a
/// bundle of one statement as `submit`'s (verifiable by DSSE verifiers and
/// `ssh-keygen -Y verify`), its subjects the merge and the submitted
/// proof. Rewritten after each probe; the ledger events stay the record.
fn write_proof(al: &Airlock, run: &Run, status: &SoakStatus) -> Result<std::path::PathBuf> {
    use airlock_proof::{Statement, Subject, build_bundle};
    let merge = run
        .promotion
        .as_ref()
        .map(|p| p.merge.clone())
        .unwrap_or_default();
    let proof = run
        .submission
        .as_ref()
        .map(|s| s.digest.clone())
        .unwrap_or_default();
    let subjects = vec![
        Subject {
            name: format!("git+commit:{}", run.target),
            digest: [("gitCommit".to_string(), merge)].into_iter().collect(),
        },
        Subject {
            name: "proof".into(),
            digest: [("sha256".to_string(), proof)].into_iter().collect(),
        },
    ];
    let mut predicate = serde_json::to_value(status).map_err(|e| Error::Corrupt(e.to_string()))?;
    predicate["ledger_head"] = json!(
        al.store
            .ledger_head()?
            .map(|(seq, hash)| json!({"seq": seq, "hash": hash}))
    );
    if let Some(map) = predicate.as_object_mut() {
        map.remove("proof");
    }
    let bundle = build_bundle(
        &al.signing_key()?,
        &[Statement::new(subjects, SOAK_PREDICATE, predicate)],
    )?;
    let path = soak_proof_path(al, &run.id);
    let signature = std::path::PathBuf::from(format!("{}.sig", path.display()));
    crate::layout::write_atomic(&signature, bundle.ssh_signature.as_bytes())?;
    crate::layout::write_atomic(&path, &bundle.jsonl)?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staging_actions_are_those_staging_or_a_lane_below_grants() {
        let wf = Workflow::parse(
            "[lanes.governed]\nscopes = [\"email:send:*@example.com\"]\n[lanes.staging]\nscopes = [\"http:POST:staging.example.com/*\"]\n[lanes.production]\nscopes = [\"http:POST:*\"]\n",
            "wf.toml",
        )
        .unwrap();
        let spec = |scopes: &[&str]| {
            let text = format!(
                "kind = \"command\"\nname = \"a\"\nargv = [\"true\"]\nscopes = [{}]\n",
                scopes
                    .iter()
                    .map(|s| format!("\"{s}\""))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            let mut spec = airlock_model::action::parse::parse(&text, "a.toml", "a")
                .unwrap()
                .action;
            spec.scopes = scopes.iter().map(|s| s.to_string()).collect();
            spec
        };
        assert_eq!(
            stage(&spec(&["http:POST:staging.example.com/deploy"]), &wf),
            Stage::Staging
        );
        assert_eq!(
            stage(&spec(&["email:send:ops@example.com"]), &wf),
            Stage::Staging
        );
        assert_eq!(
            stage(
                &spec(&[
                    "http:POST:staging.example.com/deploy",
                    "http:POST:prod.example.com/deploy"
                ]),
                &wf
            ),
            Stage::Production
        );
        assert_eq!(stage(&spec(&["command:publish"]), &wf), Stage::Production);
    }

    #[test]
    fn time_left_reads_as_a_person_would_say_it() {
        assert_eq!(human_duration(Duration::from_secs(0)), "0s");
        assert_eq!(human_duration(Duration::from_millis(35_200)), "36s");
        assert_eq!(human_duration(Duration::from_secs(60)), "1m");
        assert_eq!(human_duration(Duration::from_secs(61)), "2m");
        assert_eq!(
            human_duration(Duration::from_secs(23 * 3600 + 600)),
            "23h 10m"
        );
        assert_eq!(human_duration(Duration::from_secs(86_400 * 2)), "48h");
    }
}
