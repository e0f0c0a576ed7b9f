//! Traced commands inside a run's worktree.

use crate::lane_policy::Capability;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use airlock_sandbox::ahead::LookAhead;
use airlock_sandbox::{CommandSpec, Echo, Exit, Held, Input, Outcome, StreamDigest};
use airlock_scan::Fingerprint;

use crate::brief::Brief;
use crate::config::WorkflowFile;
use crate::error::{Error, Result};
use crate::layout::Layout;
use crate::run::{Run, State, now};
use crate::workflow::Workflow;
use crate::{Airlock, Site};

pub use airlock_model::trace::{ExitRecord, FileChange, StreamRecord, Trace};

/// How a command ended, as its trace records it.
pub fn exit_record(exit: &Exit) -> ExitRecord {
    {
        ExitRecord {
            code: exit.shell_code(),
            description: exit.describe(),
            timed_out: matches!(exit, Exit::TimedOut { .. }),
            ended_by_signal: match exit {
                Exit::Stopped { signal } => Some(airlock_sandbox::interrupt::name(*signal)),
                _ => None,
            },
        }
    }
}

pub struct ExecOptions {
    pub argv: Vec<OsString>,
    pub timeout: Option<Duration>,
    pub echo: Echo,
    /// What the command reads on its stdin.
    pub input: Input,
    /// The command's preflight, started before the repository was opened
    /// (see [`Preflight::start`]); one is started here otherwise.
    pub preflight: Option<Preflight>,
}

/// What a command of a run needs that the run's name alone gives, done on
/// another thread while airlock gets ready to run it: the command's two
/// log files, created (creating a file can cost a fifth of a millisecond),
/// and the fingerprint of the worktree before it.
pub struct Preflight {
    log_name: String,
    thread: Option<std::thread::JoinHandle<Prepared>>,
    done: Option<Prepared>,
    /// Whether the command was handed to the sandbox: if not, the log
    /// files made for it are removed again.
    used: bool,
    /// The sandbox's hidden paths, looked up while the run was on its way.
    ahead: Option<Arc<LookAhead>>,
}

struct Prepared {
    logs_made: Vec<PathBuf>,
    fingerprint: Option<Result<Fingerprint>>,
}

impl Preflight {
    /// Starts the preflight of a command from `origin` in run `id`. The run
    /// need not exist (nothing is created for a run that does not); a name
    /// that is not a plain file name starts nothing.
    pub fn start(layout: &Layout, id: &str, origin: &str) -> Option<Preflight> {
        let plain = !id.is_empty()
            && id != "."
            && id != ".."
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        if !plain {
            return None;
        }
        Preflight::spawn(layout, id, origin).ok()
    }

    fn spawn(layout: &Layout, id: &str, origin: &str) -> Result<Preflight> {
        // The trace number is assigned when the trace is stored; logs get a
        // name of their own that parallel commands cannot share.
        let log_name = format!(
            "{}-{}",
            origin.replace(':', "-"),
            crate::layout::unique_suffix()
        );
        let logs = layout.logs_dir(id);
        let names = log_paths(&logs, &log_name);
        let layout = layout.clone();
        let id = id.to_string();
        let thread = std::thread::Builder::new()
            .spawn(move || {
                // Only in a run's existing log directory, and never over a
                // file: the sandbox creates whatever is not made here.
                let logs_made = if logs.is_dir() {
                    names
                        .into_iter()
                        .filter(|p| {
                            std::fs::OpenOptions::new()
                                .write(true)
                                .create_new(true)
                                .open(p)
                                .is_ok()
                        })
                        .collect()
                } else {
                    Vec::new()
                };
                Prepared {
                    logs_made,
                    fingerprint: Some(layout.scan(&id, None)),
                }
            })
            .map_err(|e| {
                Error::Environment(format!(
                    "cannot start fingerprinting the worktree before the command: {e}"
                ))
            })?;
        Ok(Preflight {
            log_name,
            thread: Some(thread),
            done: None,
            used: false,
            ahead: None,
        })
    }

    /// Waits for the fingerprint (once), then lets the command start if it
    /// was taken.
    fn release(&mut self) -> std::result::Result<(), String> {
        match self.settle() {
            Ok(_) => Ok(()),
            Err(e) => Err(format!(
                "the fingerprint of the worktree before it failed: {e}"
            )),
        }
    }

    fn settle(&mut self) -> &Result<Fingerprint> {
        if let Some(thread) = self.thread.take() {
            self.done = Some(thread.join().unwrap_or_else(|_| Prepared {
                logs_made: Vec::new(),
                fingerprint: Some(Err(Error::Internal(
                    "the fingerprint of the worktree before the command panicked".into(),
                ))),
            }));
        }
        self.done
            .as_ref()
            .and_then(|d| d.fingerprint.as_ref())
            .expect("the fingerprint is either being taken or settled")
    }

    fn wait(mut self) -> Result<Fingerprint> {
        self.settle();
        self.done
            .as_mut()
            .and_then(|d| d.fingerprint.take())
            .expect("the fingerprint is either being taken or settled")
    }
}

impl Drop for Preflight {
    fn drop(&mut self) {
        if self.used {
            return;
        }
        // Refused before the command ran: no log files of it stay behind.
        if let Some(thread) = self.thread.take()
            && let Ok(done) = thread.join()
        {
            self.done = Some(done);
        }
        for path in self.done.iter().flat_map(|d| &d.logs_made) {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// A command's two log files, stdout then stderr.
fn log_paths(logs: &Path, log_name: &str) -> [PathBuf; 2] {
    [
        logs.join(format!("{log_name}.stdout")),
        logs.join(format!("{log_name}.stderr")),
    ]
}

/// Where `exec` reads its run and records the command's trace: the store,
/// or the repository's ledger server (`airlock_servers::ledger_server`).
pub trait Records {
    fn run(&mut self, id: &str) -> Result<Run>;
    /// Stores `trace` as the run's next trace, numbering it.
    fn add_trace(&mut self, run: &str, trace: &mut Trace) -> Result<()>;
}

impl Records for Box<dyn crate::store::Store> {
    fn run(&mut self, id: &str) -> Result<Run> {
        Ok(self.get(id)?)
    }

    fn add_trace(&mut self, run: &str, trace: &mut Trace) -> Result<()> {
        crate::store::Store::add_trace(self.as_mut(), run, trace)?;
        Ok(())
    }
}

/// Runs a command in the run's worktree and records its trace.
pub fn exec(al: &mut Airlock, run_id: &str, opts: ExecOptions) -> Result<Trace> {
    let Airlock {
        layout,
        store,
        init_program,
        ..
    } = al;
    let site = Site {
        layout,
        init_program,
    };
    exec_recorded(&site, store, run_id, opts)
}

/// [`exec`], with the run read from and the trace stored in `records`.
pub fn exec_recorded(
    site: &Site,
    records: &mut dyn Records,
    run_id: &str,
    mut opts: ExecOptions,
) -> Result<Trace> {
    // Read while the run may still be on its way (`ledger_server`), with
    // what the sandbox will hide whatever the run; the workflow's errors
    // come after the run's, as they always have.
    let workflow = Workflow::load_for(site.layout);
    if let (Ok(workflow), Some(preflight)) = (&workflow, opts.preflight.as_mut()) {
        preflight.ahead = Some(crate::confinement::look_ahead(site.layout, workflow));
    }
    let run = records.run(run_id)?;
    run.require("exec", &[State::Staged, State::Checked])?;
    if opts.argv.is_empty() {
        return Err(Error::Invalid(
            "nothing to run: give the command after `--`, e.g. `airlock exec RUN -- cargo test`"
                .into(),
        ));
    }
    let workflow = workflow?;
    crate::lane_policy::require(&workflow, &run, Capability::Exec, "exec")?;
    let brief = crate::airlock::brief_of(site.layout, &run, &workflow)?;
    let (mut trace, held) = run_traced_reading(
        site,
        &run,
        &workflow,
        &brief,
        "exec",
        opts.argv,
        opts.timeout,
        (opts.echo, opts.input),
        opts.preflight,
        &Launch::default(),
    )?;
    records.add_trace(&run.id, &mut trace)?;
    drop(held);
    crate::failpoint("exec:after-trace");
    Ok(trace)
}

/// Runs one command for a run (exec or gate), snapshotting the worktree
/// before and after to record which files it changed. The warm sandbox
/// that ran it, if one did, is held until the caller drops it ([`Held`]):
/// after storing the trace.
#[allow(clippy::too_many_arguments)]
pub(crate) fn run_traced(
    site: &Site,
    run: &Run,
    workflow: &Workflow,
    brief: &Brief,
    origin: &str,
    argv: Vec<OsString>,
    timeout: Option<Duration>,
    echo: Echo,
    preflight: Option<Preflight>,
) -> Result<(Trace, Option<Held>)> {
    run_traced_reading(
        site,
        run,
        workflow,
        brief,
        origin,
        argv,
        timeout,
        (echo, Input::Null),
        preflight,
        &Launch::default(),
    )
}

/// How a command is launched beyond what its run's plan says: `airlock
/// agent` shows the agent its own settings and credentials, and adds its
/// model's hosts to the egress proxy.
#[derive(Default)]
pub(crate) struct Launch<'a> {
    /// Changes the run's plan before the command runs.
    pub adjust: Option<&'a dyn Fn(&mut crate::confinement::Plan)>,
}

/// [`run_traced`], the command reading `input`, launched as `launch` says.
#[allow(clippy::too_many_arguments)]
pub(crate) fn run_traced_reading(
    site: &Site,
    run: &Run,
    workflow: &Workflow,
    brief: &Brief,
    origin: &str,
    argv: Vec<OsString>,
    timeout: Option<Duration>,
    (echo, input): (Echo, Input),
    preflight: Option<Preflight>,
    launch: &Launch,
) -> Result<(Trace, Option<Held>)> {
    let layout = site.layout;
    // The worktree is fingerprinted before the command on another thread
    // while the sandbox is built; the command, confined, waits right before
    // it starts until the fingerprint is taken, so nothing it does can
    // precede it.
    let mut before = match preflight {
        Some(preflight) => preflight,
        None => Preflight::spawn(layout, &run.id, origin)?,
    };
    let traced = run_gated(
        site,
        run,
        workflow,
        brief,
        argv,
        timeout,
        (echo, input),
        &mut before,
        launch,
    );
    // However the command ended (killed at its time limit included), the
    // git configuration it may have written in the worktree is made inert
    // before anyone's git can read it.
    let [walk_cache, tmp_walk_cache] = layout.lane_walk_caches(&run.id);
    let disarmed = crate::lane::disarm_run(
        &run.worktree,
        &layout.run_dir(&run.id).join("tmp"),
        &layout.lane_config_copy(&run.id),
        [&walk_cache, &tmp_walk_cache],
    );
    // A failed scan is the error, whatever else went wrong after it.
    let before = before.wait()?;
    let ran = traced?;
    disarmed?;
    let (mut trace, held) = finish(layout, run, origin, &before, ran)?;
    share_logs(layout, workflow, &mut trace);
    Ok((trace, held))
}

/// Copies the trace's logs into the team's shared log store, when the
/// workflow names one (`[store] logs`). The command has run: a store that
/// cannot be written leaves the logs on this machine, and the trace says so.
pub(crate) fn share_logs(layout: &Layout, workflow: &Workflow, trace: &mut Trace) {
    let logs = [
        (trace.stdout.log.as_path(), trace.stdout.sha256.as_str()),
        (trace.stderr.log.as_path(), trace.stderr.sha256.as_str()),
    ];
    if let Some(note) = crate::logstore::share(layout, workflow, &logs) {
        trace.hint = Some(match trace.hint.take() {
            Some(h) => format!("{h}; {note}"),
            None => note,
        });
    }
}

/// Plans the sandbox and runs the command in it, held back until `before`
/// is taken.
#[allow(clippy::too_many_arguments)]
fn run_gated(
    site: &Site,
    run: &Run,
    workflow: &Workflow,
    brief: &Brief,
    argv: Vec<OsString>,
    timeout: Option<Duration>,
    (echo, input): (Echo, Input),
    before: &mut Preflight,
    launch: &Launch,
) -> Result<Ran> {
    let layout = site.layout;
    let logs = layout.logs_dir(&run.id);
    std::fs::create_dir_all(&logs).map_err(|source| Error::Write {
        path: logs.clone(),
        source,
    })?;
    let tmp = layout.run_dir(&run.id).join("tmp");
    std::fs::create_dir_all(&tmp).map_err(|source| Error::Write {
        path: tmp.clone(),
        source,
    })?;
    let [stdout_path, stderr_path] = log_paths(&logs, &before.log_name);
    let mut plan = crate::confinement::plan(site, run, workflow, brief, &run.worktree)?;
    plan.confinement.ahead = before.ahead.take();
    if let Some(adjust) = launch.adjust {
        adjust(&mut plan);
    }
    let mut spec = CommandSpec {
        argv,
        cwd: run.worktree.clone(),
        env: plan.env,
        timeout: timeout.or(workflow.sandbox.timeout),
        stdout_path,
        stderr_path,
        echo,
        input,
        confinement: Some(plan.confinement),
        limits: plan.limits,
    };
    let started = now();
    before.used = true;
    let mut release = || before.release();
    let (outcome, connections) = crate::confinement::run_gated_pending(
        workflow,
        &mut spec,
        plan.egress.as_ref(),
        Some(&mut release),
    )?;
    Ok(Ran {
        outcome,
        connections,
        spec,
        started,
        network: plan.network,
        max_worktree: workflow.sandbox.max_worktree,
    })
}

/// A command that ran.
struct Ran {
    outcome: Outcome,
    /// What it asked the egress proxy for (the proxy may still be
    /// stopping: waited for once the worktree is scanned).
    connections: crate::egress::Pending,
    spec: CommandSpec,
    started: String,
    network: crate::confinement::NetworkDecision,
    /// What the worktree may hold after it (`[sandbox] max_worktree`).
    max_worktree: u64,
}

/// The trace of a command that ran: the snapshot after it and what changed.
fn finish(
    layout: &crate::layout::Layout,
    run: &Run,
    origin: &str,
    before: &Fingerprint,
    ran: Ran,
) -> Result<(Trace, Option<Held>)> {
    let Ran {
        mut outcome,
        connections,
        spec,
        started,
        network,
        max_worktree,
    } = ran;
    let after = layout.scan(&run.id, Some(before))?;
    let connections = connections.wait();
    let files_changed: Vec<FileChange> = before
        .changes(&after)
        .into_iter()
        .map(|c| FileChange {
            status: c.status,
            path: c.path,
        })
        .collect();
    // Both scans took every digest from the cache and nothing changed: the
    // cache already says all this one would.
    if before.hashed() > 0 || after.hashed() > 0 || !files_changed.is_empty() {
        layout.keep_scan(&run.id, &after)?;
    }
    let held = outcome.held.take();
    // At a terminal both streams are one, recorded as stdout.
    let errors_log = match spec.input {
        Input::Terminal => &spec.stdout_path,
        _ => &spec.stderr_path,
    };
    let trace = Trace {
        n: 0,
        round: run.round,
        origin: origin.to_string(),
        argv: spec
            .argv
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect(),
        cwd: run.worktree.display().to_string(),
        lane: run.lane.clone(),
        exit: exit_record(&outcome.exit),
        duration_ms: outcome.duration_ms,
        stdout: stream(&outcome.stdout, spec.stdout_path.clone()),
        stderr: stream(&outcome.stderr, spec.stderr_path.clone()),
        files_changed,
        started,
        confinement: outcome.confinement.clone(),
        network: network.allowed(),
        limit_hit: [
            outcome.limit_hit.clone().or_else(|| {
                crate::confinement::limit_from_output(
                    errors_log,
                    &spec.limits,
                    !outcome.exit.success(),
                )
            }),
            crate::quota::worktree_over(&after, max_worktree),
        ]
        .into_iter()
        .flatten()
        .reduce(|a, b| format!("{a}; {b}")),
        denials: crate::confinement::denials(errors_log),
        hint: None,
        egress: network.hosts().map(crate::egress::entries),
        connections,
    };
    let hint = [
        crate::confinement::network_hint(&trace, &network, &run.lane),
        crate::egress::refused_hint(&trace.connections, &run.lane),
        host_tmp_hint(layout, run, &trace),
    ]
    .into_iter()
    .flatten()
    .reduce(|a, b| format!("{a}; {b}"));
    Ok((Trace { hint, ..trace }, held))
}

/// The hint of a failed command given a path under the host's `/tmp` (or
/// `/dev/shm`) that exists there but not in the run's private one.
fn host_tmp_hint(layout: &crate::layout::Layout, run: &Run, trace: &Trace) -> Option<String> {
    if trace.exit.success() {
        return None;
    }
    let private = layout.run_dir(&run.id).join("tmp");
    let path = trace.argv.iter().skip(1).find_map(|arg| {
        let path = Path::new(arg.rsplit_once('=').map_or(arg.as_str(), |(_, p)| p));
        let inside = path.strip_prefix("/tmp").ok()?;
        (!inside.as_os_str().is_empty() && path.exists() && !private.join(inside).exists())
            .then(|| path.to_path_buf())
    })?;
    Some(format!(
        "{} is in the host's /tmp, which the sandbox does not show (it has a private /tmp); \
         put the file in the run's worktree ({}) and name it there",
        path.display(),
        run.worktree.display()
    ))
}

fn stream(d: &StreamDigest, log: PathBuf) -> StreamRecord {
    StreamRecord {
        sha256: d.sha256.clone(),
        size: d.size,
        log,
    }
}
