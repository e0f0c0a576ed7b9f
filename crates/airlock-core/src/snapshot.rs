//! Output snapshots in airlock: `snap run` (in a run, through the same traced
//! and sandboxed runner as `exec`, or standalone in any directory) and
//! snapshot gates in `check`. The format, normalization and comparison are
//! in `airlock-snap`.

use crate::lane_policy::Capability;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use serde::Serialize;

use airlock_sandbox::Echo;
use airlock_snap::{Context, Normalizer, Outcome, SnapDir, Snapshot};

use crate::Airlock;
use crate::config::WorkflowFile;
use crate::error::{Error, Result};
use crate::exec::Trace;
use crate::run::{Run, State};
use crate::workflow::{Snapshots, Workflow};

pub const SNAPSHOTS_DIR: &str = ".airlock/snapshots";

/// Whether this is CI (`CI` set, and not empty, `0` or `false`): then no
/// snapshot file is ever written.
pub fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "0" && !v.eq_ignore_ascii_case("false"))
}

/// The top of the git checkout holding `cwd`, or `cwd` outside git.
pub fn root_for(cwd: &Path) -> PathBuf {
    let mut cmd = crate::git::base_command();
    cmd.current_dir(cwd).args(["rev-parse", "--show-toplevel"]);
    match crate::git::exec(&mut cmd, None) {
        Ok((true, out, _)) => {
            let text = String::from_utf8_lossy(&out);
            let top = text.trim_end_matches('\n');
            if top.is_empty() {
                cwd.to_path_buf()
            } else {
                PathBuf::from(top)
            }
        }
        _ => cwd.to_path_buf(),
    }
}

/// The goldens of the checkout holding `cwd`.
pub fn dir_for(cwd: &Path) -> SnapDir {
    SnapDir::new(root_for(cwd).join(SNAPSHOTS_DIR))
}

/// The snapshot settings of the workflow at `root`, when there is one.
fn settings_at(root: &Path) -> Result<Snapshots> {
    let path = root.join(crate::layout::WORKFLOW_FILE);
    if path.exists() {
        Ok(Workflow::load(&path)?.snapshots)
    } else {
        Ok(Snapshots {
            max_bytes: airlock_snap::DEFAULT_MAX_BYTES,
            filters: Vec::new(),
        })
    }
}

/// Names the workflow's gates give their snapshots.
pub fn gate_snapshots(root: &Path) -> Option<Vec<String>> {
    let path = root.join(crate::layout::WORKFLOW_FILE);
    let wf = Workflow::load(&path).ok()?;
    Some(wf.gates.iter().filter_map(|g| g.snapshot.clone()).collect())
}

/// What `snap run` did.
#[derive(Debug, Clone, Serialize)]
pub struct SnapRun {
    #[serde(flatten)]
    pub outcome: Outcome,
    pub exit: i32,
    /// The run and trace number, when run in a run.
    pub run: Option<String>,
    pub trace: Option<u32>,
    /// CI was set: nothing was written.
    pub ci: bool,
    /// The result, for rendering a difference (not in JSON: it can be large).
    #[serde(skip)]
    pub actual: Snapshot,
}

pub use airlock_model::check::SnapshotResult;

/// Reads the golden before anything runs, so a hand-broken golden is
/// reported with its position and no command is run for nothing.
fn preflight(dir: &SnapDir, name: &str) -> Result<()> {
    airlock_snap::validate_name(name)?;
    SnapDir::read(&dir.golden_path(name))?;
    Ok(())
}

fn argv_strings(argv: &[OsString]) -> Vec<String> {
    argv.iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect()
}

fn snapshot_of(
    argv: &[OsString],
    origin: &str,
    exit: i32,
    stdout: &Path,
    stderr: &Path,
    settings: &Snapshots,
    ctx: &Context,
) -> Result<Snapshot> {
    let normalizer = Normalizer::new(ctx, &settings.filters)?;
    Ok(Snapshot {
        command: argv_strings(argv),
        origin: origin.to_string(),
        normalizers: normalizer.names().to_vec(),
        exit,
        stdout: airlock_snap::read_body(stdout, settings.max_bytes, &normalizer)?,
        stderr: airlock_snap::read_body(stderr, settings.max_bytes, &normalizer)?,
    })
}

fn run_context(al: &Airlock, run: &Run) -> Context {
    let mut ctx = Context::current(Some(run.worktree.clone()));
    ctx.tmp.insert(0, al.layout.run_dir(&run.id).join("tmp"));
    ctx
}

/// `snap run` outside any run: the command runs as is (not sandboxed) in
/// `cwd`, like any golden-test tool; goldens are in the checkout's
/// `.airlock/snapshots`, or in `cwd`'s outside git.
pub fn run_standalone(cwd: &Path, name: &str, argv: Vec<OsString>) -> Result<SnapRun> {
    let root = root_for(cwd);
    let dir = SnapDir::new(root.join(SNAPSHOTS_DIR));
    preflight(&dir, name)?;
    let settings = settings_at(&root)?;
    let Some((program, args)) = argv.split_first() else {
        return Err(nothing_to_run());
    };
    let scratch = tempfile::tempdir().map_err(|source| Error::Write {
        path: std::env::temp_dir(),
        source,
    })?;
    let out_path = scratch.path().join("stdout");
    let err_path = scratch.path().join("stderr");
    let create = |p: &Path| {
        std::fs::File::create(p).map_err(|source| Error::Write {
            path: p.to_path_buf(),
            source,
        })
    };
    let status = std::process::Command::new(program)
        .args(args)
        .current_dir(cwd)
        .stdin(std::process::Stdio::null())
        .stdout(create(&out_path)?)
        .stderr(create(&err_path)?)
        .status()
        .map_err(|e| Error::Invalid(format!("cannot run `{}`: {e}", program.to_string_lossy())))?;
    let exit = status.code().unwrap_or_else(|| {
        use std::os::unix::process::ExitStatusExt;
        128 + status.signal().unwrap_or(0)
    });
    let actual = snapshot_of(
        &argv,
        "snap run",
        exit,
        &out_path,
        &err_path,
        &settings,
        &Context::current(Some(root)),
    )?;
    let ci = ci();
    let outcome = dir.record(name, &actual, !ci)?;
    Ok(SnapRun {
        outcome,
        exit,
        run: None,
        trace: None,
        ci,
        actual,
    })
}

fn nothing_to_run() -> Error {
    Error::Invalid(
        "nothing to run: give the command after `--`, e.g. `airlock snap run help -- mytool --help`"
            .into(),
    )
}

/// `snap run --run RUN`: the command runs in the run's worktree through the
/// same traced, sandboxed runner as `exec`, and its trace is recorded.
pub fn run_in_run(
    al: &mut Airlock,
    run_id: &str,
    name: &str,
    argv: Vec<OsString>,
    echo: Echo,
) -> Result<SnapRun> {
    let run = al.store.get(run_id)?;
    run.require("snap run", &[State::Staged, State::Checked])?;
    let dir = SnapDir::new(al.layout.root.join(SNAPSHOTS_DIR));
    preflight(&dir, name)?;
    if argv.is_empty() {
        return Err(nothing_to_run());
    }
    let workflow = al.workflow_for(&run)?;
    crate::lane_policy::require(&workflow, &run, Capability::Exec, "snap run")?;
    let brief = al.brief_of(&run, &workflow)?;
    let (mut trace, held) = crate::exec::run_traced(
        &al.site(),
        &run,
        &workflow,
        &brief,
        &format!("snap:{name}"),
        argv.clone(),
        None,
        echo,
        None,
    )?;
    al.store.add_trace(&run.id, &mut trace)?;
    drop(held);
    let actual = snapshot_of(
        &argv,
        "snap run",
        trace.exit.code,
        &trace.stdout.log,
        &trace.stderr.log,
        &workflow.snapshots,
        &run_context(al, &run),
    )?;
    let ci = ci();
    let outcome = dir.record(name, &actual, !ci)?;
    Ok(SnapRun {
        outcome,
        exit: trace.exit.code,
        run: Some(run.id.clone()),
        trace: Some(trace.n),
        ci,
        actual,
    })
}

/// A snapshot gate: the gate's traced output compared with its golden.
pub(crate) fn gate_result(
    al: &Airlock,
    run: &Run,
    workflow: &Workflow,
    gate: &crate::workflow::Gate,
    name: &str,
    trace: &Trace,
) -> Result<SnapshotResult> {
    let dir = SnapDir::new(al.layout.root.join(SNAPSHOTS_DIR));
    let argv: Vec<OsString> = vec!["/bin/sh".into(), "-c".into(), gate.run.clone().into()];
    let actual = snapshot_of(
        &argv,
        &format!("gate:{}", gate.name),
        trace.exit.code,
        &trace.stdout.log,
        &trace.stderr.log,
        &workflow.snapshots,
        &run_context(al, run),
    )?;
    let outcome = dir.record(name, &actual, !ci())?;
    Ok(SnapshotResult::from(&outcome))
}

/// Checks the golden of a gate before the gate runs.
pub(crate) fn gate_preflight(al: &Airlock, name: &str) -> Result<()> {
    preflight(&SnapDir::new(al.layout.root.join(SNAPSHOTS_DIR)), name)
}
