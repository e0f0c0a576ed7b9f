//! `gc`: what finished runs no longer need, removed.
//!
//! A finished run (rejected, rolled back, or promoted) keeps its worktree,
//! its private index and scratch checkouts, and its ref in the main
//! repository until collected. Collecting a run removes those and keeps
//! what the audit trail needs: the run's record and ledger events, its proof
//! bundle, its brief copy, its lane config copy and its command logs. The
//! ref goes unless the run's commit is reachable only through it and the run
//! was promoted (a promoted run's proof names that commit); a rejected
//! run's ref goes, so that its commit, which may hold what it should not,
//! is left to git's own garbage collection. A run that is not finished is
//! never touched.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde::Serialize;
use serde_json::json;

use crate::Airlock;
use crate::error::{Error, Result};
use crate::lock::FileLock;
use crate::run::{Run, State};

/// The states a run can be collected in: nothing moves it on to a state
/// that needs its worktree.
pub const FINISHED: [State; 3] = [State::Rejected, State::RolledBack, State::Promoted];

/// What a run directory keeps once collected: the audit trail.
const KEPT: [&str; 3] = ["brief.toml", "lane.config", "logs"];

pub struct GcOptions {
    /// Only runs finished at least this long ago.
    pub older_than: Duration,
    /// Only runs in these states; all of [`FINISHED`] when empty.
    pub states: Vec<State>,
    /// Report what would go, remove nothing.
    pub dry_run: bool,
}

#[derive(Debug, Serialize)]
pub struct Collected {
    pub run: String,
    pub state: State,
    /// When the run reached its state (its last ledger event before this).
    pub finished: String,
    /// What went (or would go), as paths.
    pub removed: Vec<PathBuf>,
    /// Bytes on disk those held.
    pub bytes: u64,
    /// The run's ref, when it went (or would go).
    pub deleted_ref: Option<String>,
    /// Why the ref stays, when it does.
    pub kept_ref: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct GcReport {
    pub dry_run: bool,
    pub runs: Vec<Collected>,
    pub bytes: u64,
    /// Runs that are finished but not old enough, and runs not finished:
    /// how many of each were left alone.
    pub too_recent: usize,
    pub unfinished: usize,
    /// Directories of `airlock agent` launches that were killed before
    /// they could remove them (they may hold copies of credentials).
    pub agent_dirs: Vec<crate::agent::StaleAgentDir>,
}

pub fn gc(al: &mut Airlock, opts: &GcOptions) -> Result<GcReport> {
    for state in &opts.states {
        if !FINISHED.contains(state) {
            return Err(Error::Invalid(format!(
                "`gc` collects finished runs only (rejected, rolled_back, promoted), not {state} ones: a {state} run may still need its worktree"
            )));
        }
    }
    let states: &[State] = if opts.states.is_empty() {
        &FINISHED
    } else {
        &opts.states
    };
    // Promotion, rollback and applying actions hold this lock: no promoted
    // run moves on, and no scratch checkout is made, while it goes.
    let _lock = FileLock::acquire(&al.layout.promote_lock(), true)?;
    let now = SystemTime::now();
    let mut report = GcReport {
        dry_run: opts.dry_run,
        runs: Vec::new(),
        bytes: 0,
        too_recent: 0,
        unfinished: 0,
        agent_dirs: crate::agent::sweep_stale(&al.layout, opts.dry_run)?,
    };
    report.bytes += report.agent_dirs.iter().map(|d| d.bytes).sum::<u64>();
    for run in al.store.list()? {
        if !FINISHED.contains(&run.state) {
            report.unfinished += 1;
            continue;
        }
        if !states.contains(&run.state) {
            continue;
        }
        let finished = al
            .store
            .finished_at(&run.id)?
            .unwrap_or_else(|| run.created.clone());
        let age = humantime::parse_rfc3339(&finished)
            .ok()
            .and_then(|t| now.duration_since(t).ok())
            .unwrap_or_default();
        if age < opts.older_than {
            report.too_recent += 1;
            continue;
        }
        let Some(collected) = collect(al, &run, finished, opts.dry_run)? else {
            continue;
        };
        report.bytes += collected.bytes;
        report.runs.push(collected);
    }
    Ok(report)
}

/// Collects one run; `None` when nothing is left to collect.
fn collect(
    al: &mut Airlock,
    run: &Run,
    finished: String,
    dry_run: bool,
) -> Result<Option<Collected>> {
    let run_dir = al.layout.run_dir(&run.id);
    let mut heavy = Vec::new();
    if let Ok(entries) = std::fs::read_dir(&run_dir) {
        for entry in entries.flatten() {
            let name = entry.file_name();
            if !KEPT.iter().any(|k| name == *k) {
                heavy.push(entry.path());
            }
        }
    }
    heavy.sort();
    let bytes = heavy.iter().map(|p| airlock_fs::disk_usage(p)).sum();
    let main = al.layout.git();
    let run_ref = run.main_ref();
    let (mut deleted_ref, mut kept_ref) = (None, None);
    if let Some(commit) = main.ref_value(&run_ref)? {
        let reachable = main
            .try_run(
                &[
                    "merge-base",
                    "--is-ancestor",
                    &commit,
                    &format!("refs/heads/{}", run.target),
                ],
                None,
            )?
            .0;
        if run.state == State::Promoted && !reachable {
            kept_ref = Some(format!(
                "the promoted commit {commit} is not in {} any more: the ref keeps it for the proof",
                run.target
            ));
        } else {
            deleted_ref = Some((run_ref.clone(), commit));
        }
    }
    if heavy.is_empty() && deleted_ref.is_none() {
        return Ok(None);
    }
    if !dry_run {
        crate::confinement::end_warm(&al.layout, &run.id);
        for path in &heavy {
            remove(path)?;
        }
        // Last: a run whose files could not all go keeps its ref.
        if let Some((name, commit)) = &deleted_ref {
            main.run(&["update-ref", "-d", name, commit])?;
        }
        al.store.event(
            Some(&run.id),
            "collected",
            json!({"state": run.state, "removed": heavy, "bytes": bytes,
                   "deleted_ref": deleted_ref.as_ref().map(|(name, _)| name), "kept_ref": kept_ref}),
        )?;
    }
    Ok(Some(Collected {
        run: run.id.clone(),
        state: run.state,
        finished,
        removed: heavy,
        bytes,
        deleted_ref: deleted_ref.map(|(name, _)| name),
        kept_ref,
    }))
}

/// Removes `path` and everything below it, never following a link. The
/// agent may have left directories it cannot be removed from (mode 0500):
/// those are opened up first; they are airlock's user's own.
fn remove(path: &Path) -> Result<()> {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return Ok(());
    };
    let result = if meta.is_dir() {
        std::fs::remove_dir_all(path).or_else(|_| {
            open_up(path);
            std::fs::remove_dir_all(path)
        })
    } else {
        std::fs::remove_file(path)
    };
    match result {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(Error::Write {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Gives the owner every right on the directories below `dir`.
fn open_up(dir: &Path) {
    let Ok(meta) = std::fs::symlink_metadata(dir) else {
        return;
    };
    if !meta.is_dir() {
        return;
    }
    let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            open_up(&entry.path());
        }
    }
}
