use std::ffi::OsString;

use serde_json::json;

use airlock_core::sandbox::Echo;
use airlock_core::snap::{Body, Decision, SnapDir, Snapshot, render_diff};
use airlock_core::snapshot::{self, SnapRun};
use airlock_core::{Error, Result};

use super::Ctx;
use crate::render::{Output, clean};

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
            let mut al = ctx.open()?;
            // The command's own output is captured for the snapshot, not echoed.
            snapshot::run_in_run(&mut al, run, name, command, Echo::None)?
        }
        None => snapshot::run_standalone(&ctx.cwd, name, command)?,
    };
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
            if let Some((g, _)) = SnapDir::read(&o.golden)? {
                human += &render_diff(&g, &report.actual, color(ctx));
            }
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
    let code = if o.passed() { 0 } else { 1 };
    Ok(Output::new(&report, human).code(code))
}

fn list(ctx: &Ctx) -> Result<Output> {
    let root = snapshot::root_for(&ctx.cwd);
    let dir = snapshot::dir_for(&ctx.cwd);
    let gates = snapshot::gate_snapshots(&root);
    let entries = dir.list(gates.as_deref())?;
    let mut human = String::new();
    if entries.is_empty() {
        human += &format!("no snapshots in {}", dir.dir.display());
    }
    for e in &entries {
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
    Ok(Output::new(
        json!({"dir": dir.dir, "snapshots": entries}),
        human,
    ))
}

fn diff(ctx: &Ctx, name: &str) -> Result<Output> {
    airlock_core::snap::validate_name(name)?;
    let dir = snapshot::dir_for(&ctx.cwd);
    let golden = SnapDir::read(&dir.golden_path(name))?;
    let pending = SnapDir::read(&dir.pending_path(name))?;
    let Some((pending, pending_sha)) = pending else {
        if golden.is_some() {
            return Ok(Output::new(
                json!({"name": name, "state": "ok", "diff": null}),
                format!("snapshot `{name}` has nothing pending: the golden is current"),
            ));
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
    let mut human = if color(ctx) {
        render_diff(&base, &pending, true)
    } else {
        plain.clone()
    };
    if state == "new" {
        human = format!(
            "new snapshot `{name}` (no golden yet), exit {}:\n{human}",
            pending.exit
        );
    } else if plain.is_empty() {
        human = format!("the pending result of `{name}` matches its golden\n");
    }
    human +=
        &format!("keep it: `airlock snap accept {name}`; drop it: `airlock snap reject {name}`");
    Ok(Output::new(
        json!({
            "name": name,
            "state": state,
            "golden_sha256": golden.as_ref().map(|(_, d)| d),
            "pending_sha256": pending_sha,
            "diff": plain,
        }),
        human,
    ))
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
    let mut done = Vec::new();
    for n in &names {
        let path = if accept {
            dir.accept(n)?
        } else {
            dir.reject(n)?
        };
        done.push(json!({"name": n, "path": path}));
    }
    let human = if names.is_empty() {
        format!("nothing pending in {}", dir.dir.display())
    } else {
        let past = if accept { "accepted" } else { "rejected" };
        names
            .iter()
            .map(|n| format!("{past} `{n}`"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    Ok(Output::new(
        json!({"action": verb, "snapshots": done}),
        human,
    ))
}
