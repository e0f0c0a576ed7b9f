use std::ffi::OsString;
use std::path::PathBuf;

use airlock_core::sandbox::Echo;
use airlock_core::snap::store::Entry as ListEntry;
use airlock_core::snap::{Body, Decision, SnapDir, Snapshot, render_diff};
use airlock_core::snapshot::{self, SnapRun};
use airlock_core::{Error, Result};

use super::Ctx;
use crate::render::{Output, Report, clean};

#[derive(clap::Subcommand)]
pub enum Command {
    /// Run a command, normalize its output, compare it with the golden NAME.
    ///
    /// A difference or a new snapshot is written beside the golden as
    /// NAME.snap.new and exits 1; with CI set nothing is written.
    Run {
        /// The snapshot's name: letters, digits, `-`, `_`, `.`.
        name: String,
        /// Run the command in this run's worktree and sandbox, and trace it.
        #[arg(long, value_name = "RUN")]
        run: Option<String>,
        /// The command and its arguments, after `--`.
        #[arg(last = true, required = true, num_args = 1..)]
        command: Vec<OsString>,
    },
    /// Every snapshot: ok, changed (pending), new, orphaned.
    List,
    /// The difference between a golden and its pending result.
    Diff { name: String },
    /// Make pending results the goldens.
    Accept {
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        name: Option<String>,
        /// Every pending result.
        #[arg(long)]
        all: bool,
    },
    /// Drop pending results; goldens stay as they are.
    Reject {
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        name: Option<String>,
        /// Every pending result.
        #[arg(long)]
        all: bool,
    },
}

pub fn run(ctx: &Ctx, cmd: Command) -> Result<Output> {
    match cmd {
        Command::Run { name, run, command } => snap_run(ctx, &name, run, command),
        Command::List => list(ctx),
        Command::Diff { name } => diff(ctx, &name),
        Command::Accept { name, all } => decide(ctx, name, all, true),
        Command::Reject { name, all } => decide(ctx, name, all, false),
    }
}

/// Colour as `--color` says: by default only on a terminal, never with
/// NO_COLOR or --json.
fn color(_ctx: &Ctx) -> bool {
    crate::render::color_enabled()
}

fn snap_run(ctx: &Ctx, name: &str, run: Option<String>, command: Vec<OsString>) -> Result<Output> {
    let report: SnapRun = match &run {
        Some(run) => {
            let mut al = match ctx.open() {
                Ok(al) => al,
                // The database out of reach: the command's trace is
                // recorded here until it is back (as `exec`'s).
                Err(e) if airlock_core::offline::is_unreachable(&e) => {
                    let layout = airlock_core::layout::Layout::discover(&ctx.cwd)?;
                    airlock_core::offline::Offline::airlock(layout, run, e)?
                }
                Err(e) => return Err(e),
            };
            // The command's own output is captured for the snapshot, not echoed.
            snapshot::run_in_run(&mut al, run, name, command, Echo::None)?
        }
        None => snapshot::run_standalone(&ctx.cwd, name, command)?,
    };
    let o = &report.outcome;
    // A changed result is shown against the golden as it is on disk.
    let difference = match o.decision {
        Decision::Changed => SnapDir::read(&o.golden)?
            .map(|(g, _)| render_diff(&g, &report.actual, color(ctx)))
            .unwrap_or_default(),
        _ => String::new(),
    };
    Ok(Output::report(&SnapRan {
        report,
        name: name.to_string(),
        difference,
    }))
}

/// `airlock snap run`: the snapshot matched, changed or new.
#[derive(serde::Serialize)]
#[serde(transparent)]
struct SnapRan {
    report: SnapRun,
    #[serde(skip)]
    name: String,
    /// The rendered difference from the golden, when it changed.
    #[serde(skip)]
    difference: String,
}

impl Report for SnapRan {
    fn human(&self) -> String {
        let (report, name) = (&self.report, &self.name);
        let o = &report.outcome;
        let golden = o.golden.display();
        let mut human = String::new();
        let ci_note = if report.ci {
            "\nCI is set: nothing was written"
        } else {
            ""
        };
        match o.decision {
            Decision::Matched => {
                human += &format!("snapshot `{name}` matches {golden}");
                if o.removed_stale_pending {
                    human += "\n  removed the stale pending result";
                }
            }
            Decision::Changed => {
                human += &self.difference;
                human += &format!(
                    "snapshot `{name}` changed (+{} -{} lines) against {golden}",
                    o.stat.added, o.stat.removed
                );
                if let Some(p) = &o.pending {
                    human += &format!(
                        "\n  wrote the result to {}\n  review: `airlock snap diff {name}`; keep it: `airlock snap accept {name}`; drop it: `airlock snap reject {name}`",
                        p.display()
                    );
                }
                human += ci_note;
            }
            Decision::New => {
                human += &format!("new snapshot `{name}`: no golden at {golden}");
                if let Some(p) = &o.pending {
                    human += &format!(
                        "\n  wrote the result to {} (pending, not accepted)\n  review: `airlock snap diff {name}`; keep it: `airlock snap accept {name}`",
                        p.display()
                    );
                }
                human += ci_note;
            }
        }
        // A rendered difference already carries the notes.
        for n in o.notes.iter().filter(|_| o.decision != Decision::Changed) {
            human += &format!("\n  note: {}", clean(n));
        }
        if let Some(t) = report.trace {
            human += &format!(
                "\n  trace {t} of run {}",
                report.run.as_deref().unwrap_or("")
            );
        }
        human
    }

    fn exit_code(&self) -> u8 {
        if self.report.outcome.passed() { 0 } else { 1 }
    }
}

fn list(ctx: &Ctx) -> Result<Output> {
    let root = snapshot::root_for(&ctx.cwd);
    let dir = snapshot::dir_for(&ctx.cwd);
    let gates = snapshot::gate_snapshots(&root);
    let snapshots = dir.list(gates.as_deref())?;
    Ok(Output::report(&SnapList {
        dir: dir.dir,
        snapshots,
    }))
}

/// `airlock snap list`: every snapshot and its state.
#[derive(serde::Serialize)]
struct SnapList {
    dir: PathBuf,
    snapshots: Vec<ListEntry>,
}

impl Report for SnapList {
    fn human(&self) -> String {
        let mut human = String::new();
        if self.snapshots.is_empty() {
            human += &format!("no snapshots in {}", self.dir.display());
        }
        for e in &self.snapshots {
            human += &format!("{:<9} {}", e.state.as_str(), e.name);
            if let Some(o) = &e.origin
                && o != "snap run"
            {
                human += &format!("  ({})", clean(o));
            }
            if let Some(p) = &e.problem {
                human += &format!("\n          problem: {}", clean(p));
            }
            human.push('\n');
        }
        human
    }
}

fn diff(ctx: &Ctx, name: &str) -> Result<Output> {
    airlock_core::snap::validate_name(name)?;
    let dir = snapshot::dir_for(&ctx.cwd);
    let golden = SnapDir::read(&dir.golden_path(name))?;
    let pending = SnapDir::read(&dir.pending_path(name))?;
    let Some((pending, pending_sha)) = pending else {
        if golden.is_some() {
            return Ok(Output::report(&NothingPending {
                name: name.to_string(),
                state: "ok",
                diff: None,
            }));
        }
        return Err(airlock_core::snap::SnapError::Unknown {
            name: name.to_string(),
            dir: dir.dir.clone(),
        }
        .into());
    };
    let (base, state) = match &golden {
        Some((g, _)) => (g.clone(), "changed"),
        None => (
            Snapshot {
                exit: pending.exit,
                stdout: Body::text(""),
                stderr: Body::text(""),
                ..pending.clone()
            },
            "new",
        ),
    };
    let plain = render_diff(&base, &pending, false);
    let shown = if color(ctx) {
        render_diff(&base, &pending, true)
    } else {
        plain.clone()
    };
    Ok(Output::report(&SnapDiff {
        name: name.to_string(),
        state,
        golden_sha256: golden.map(|(_, d)| d),
        pending_sha256: pending_sha,
        diff: plain,
        shown,
        exit: pending.exit,
    }))
}

/// `airlock snap diff` of a snapshot with nothing pending.
#[derive(serde::Serialize)]
struct NothingPending {
    name: String,
    state: &'static str,
    diff: Option<String>,
}

impl Report for NothingPending {
    fn human(&self) -> String {
        format!(
            "snapshot `{}` has nothing pending: the golden is current",
            self.name
        )
    }
}

/// `airlock snap diff`: the pending result against its golden.
#[derive(serde::Serialize)]
struct SnapDiff {
    name: String,
    /// `changed` or `new`.
    state: &'static str,
    golden_sha256: Option<String>,
    pending_sha256: String,
    diff: String,
    /// The difference as shown: coloured on a terminal.
    #[serde(skip)]
    shown: String,
    /// The pending result's exit code.
    #[serde(skip)]
    exit: i32,
}

impl Report for SnapDiff {
    fn human(&self) -> String {
        let name = &self.name;
        let mut human = self.shown.clone();
        if self.state == "new" {
            human = format!(
                "new snapshot `{name}` (no golden yet), exit {}:\n{human}",
                self.exit
            );
        } else if self.diff.is_empty() {
            human = format!("the pending result of `{name}` matches its golden\n");
        }
        human += &format!(
            "keep it: `airlock snap accept {name}`; drop it: `airlock snap reject {name}`"
        );
        human
    }
}

fn decide(ctx: &Ctx, name: Option<String>, all: bool, accept: bool) -> Result<Output> {
    let verb = if accept { "accept" } else { "reject" };
    if snapshot::ci() {
        return Err(Error::refused(
            airlock_core::error::Code::SnapOnCi,
            format!("`airlock snap {verb}` does not run on CI"),
            vec!["CI is set, and on CI airlock never writes snapshot files".into()],
            format!("review and {verb} snapshots locally, then commit the goldens"),
        ));
    }
    let dir = snapshot::dir_for(&ctx.cwd);
    let names = match name {
        Some(n) => vec![n],
        None => {
            debug_assert!(all);
            dir.pending_names()?
        }
    };
    let mut snapshots = Vec::new();
    for n in names {
        let path = if accept {
            dir.accept(&n)?
        } else {
            dir.reject(&n)?
        };
        snapshots.push(Decided { name: n, path });
    }
    Ok(Output::report(&SnapDecided {
        action: verb,
        snapshots,
        dir: dir.dir,
    }))
}

/// `airlock snap accept` and `reject`: each snapshot and the file written
/// or removed.
#[derive(serde::Serialize)]
struct SnapDecided {
    /// `accept` or `reject`.
    action: &'static str,
    snapshots: Vec<Decided>,
    #[serde(skip)]
    dir: PathBuf,
}

#[derive(serde::Serialize)]
struct Decided {
    name: String,
    path: PathBuf,
}

impl Report for SnapDecided {
    fn human(&self) -> String {
        if self.snapshots.is_empty() {
            format!("nothing pending in {}", self.dir.display())
        } else {
            let past = if self.action == "accept" {
                "accepted"
            } else {
                "rejected"
            };
            self.snapshots
                .iter()
                .map(|s| format!("{past} `{}`", s.name))
                .collect::<Vec<_>>()
                .join("\n")
        }
    }
}
