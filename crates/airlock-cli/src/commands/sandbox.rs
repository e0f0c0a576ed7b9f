use std::path::PathBuf;

use airlock_core::config::WorkflowFile;
use airlock_core::confinement::{self, Shown};
use airlock_core::layout::Layout;
use airlock_core::sandbox::doctor::{Doctor, diagnose};
use airlock_core::workflow::Workflow;
use airlock_core::{Error, Result};

use super::Ctx;
use crate::render::{Output, Report};

#[derive(clap::Subcommand)]
pub enum Command {
    /// Try the sandbox on this machine and print which protections are in
    /// force; in a repository, also what its commands see: hidden, shown
    /// read-only, writable.
    Doctor,
}

/// What `sandbox doctor` reports: the machine, and in a repository, the view.
#[derive(serde::Serialize)]
struct DoctorReport {
    #[serde(flatten)]
    doctor: Doctor,
    /// What the repository's commands see, when run in one.
    #[serde(skip_serializing_if = "Option::is_none")]
    repository: Option<RepositoryView>,
}

#[derive(serde::Serialize)]
struct RepositoryView {
    root: PathBuf,
    /// The workflow's problem, when it has one (its paths are then left out).
    #[serde(skip_serializing_if = "Option::is_none")]
    workflow_error: Option<String>,
    hidden: Vec<Shown>,
    read_only: Vec<Shown>,
    writable: Vec<Shown>,
    #[serde(skip_serializing_if = "Option::is_none")]
    venv: Option<PathBuf>,
}

fn repository_view(layout: &Layout) -> RepositoryView {
    let (workflow, workflow_error) = match Workflow::load_for(layout) {
        Ok(w) => (Some(w), None),
        Err(e) => {
            let mut text = e.to_string();
            if let Error::InvalidToml {
                path, diagnostics, ..
            } = &e
            {
                for d in diagnostics {
                    text += &format!("\n{path}:{}:{}: {}", d.line, d.column, d.message);
                }
            }
            (None, Some(text))
        }
    };
    let empty;
    let workflow = match &workflow {
        Some(w) => w,
        None => {
            empty = Workflow::parse("", "(none)").expect("an empty workflow parses");
            &empty
        }
    };
    let view = confinement::view(layout, workflow);
    let run = layout.run_dir("RUN");
    let mut writable = vec![
        Shown {
            path: run.join("worktree"),
            source: None,
            why: "the run's worktree (its own .git included)".into(),
        },
        Shown {
            path: "/tmp".into(),
            source: Some(run.join("tmp")),
            why: "a private /tmp for the run".into(),
        },
        Shown {
            path: "/dev/shm".into(),
            source: None,
            why: "a private /dev/shm".into(),
        },
    ];
    writable.extend(view.writable);
    for entry in workflow
        .paths_written
        .iter()
        .filter(|e| e.key == "write" && e.setting.starts_with("[lanes."))
    {
        writable.push(Shown {
            path: entry.path.clone().into(),
            source: None,
            why: format!(
                "{} (line {}): that lane's runs only",
                entry.setting, entry.line
            ),
        });
    }
    RepositoryView {
        root: layout.root.clone(),
        workflow_error,
        hidden: view.hidden,
        read_only: view.read_only,
        writable,
        venv: view.venv,
    }
}

/// One line per path, or, for paths that share a reason (the credentials
/// of the home), the reason and then the paths, `~` for the home.
fn list(human: &mut String, title: &str, items: &[Shown]) {
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let short = |p: &std::path::Path| -> String {
        match home.as_deref().and_then(|h| p.strip_prefix(h).ok()) {
            Some(rest) if !rest.as_os_str().is_empty() => format!("~/{}", rest.display()),
            _ => p.display().to_string(),
        }
    };
    *human += &format!("{title}:\n");
    let mut i = 0;
    while i < items.len() {
        let why = &items[i].why;
        let same = items[i..].iter().take_while(|x| &x.why == why).count();
        if same > 2 {
            *human += &format!("  {why}:\n");
            let names: Vec<String> = items[i..i + same].iter().map(|x| short(&x.path)).collect();
            let mut line = String::from("     ");
            for name in names {
                if line.len() + name.len() > 96 {
                    *human += &format!("{}\n", line.trim_end_matches(','));
                    line = String::from("     ");
                }
                line += &format!(" {name},");
            }
            *human += &format!("{}\n", line.trim_end_matches(','));
        } else {
            for item in &items[i..i + same] {
                let source = item
                    .source
                    .as_ref()
                    .map(|s| format!(" (from {})", s.display()))
                    .unwrap_or_default();
                *human += &format!(
                    "  {}{source}\n      {}\n",
                    crate::render::clean(&item.path.display().to_string()),
                    item.why
                );
            }
        }
        i += same;
    }
}

pub fn run(ctx: &Ctx, cmd: Command) -> Result<Output> {
    let Command::Doctor = cmd;
    let exe = std::env::current_exe()
        .map_err(|e| Error::Environment(format!("cannot find the airlock binary: {e}")))?;
    // Not under /tmp: the sandbox replaces /tmp with a private one.
    let base = std::env::var_os("HOME")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let scratch = tempfile::Builder::new()
        .prefix(".airlock-doctor-")
        .tempdir_in(&base)
        .or_else(|_| tempfile::tempdir())
        .map_err(|source| Error::Write { path: base, source })?;
    let doctor = diagnose(&exe, scratch.path());
    let repository = Layout::discover(&ctx.cwd).ok().map(|l| repository_view(&l));
    Ok(Output::report(&DoctorReport { doctor, repository }))
}

impl Report for DoctorReport {
    fn human(&self) -> String {
        let doctor = &self.doctor;
        let mut human = format!(
            "sandbox backend: {}\n",
            match doctor.backend {
                "namespaces" => "namespaces (user, mount, pid, net) with Landlock and seccomp",
                "weaker" => "weaker: Landlock, seccomp and no privileges, without namespaces",
                _ => "none: commands cannot be confined on this machine",
            }
        );
        for p in &doctor.protections {
            human += &format!(
                "  {} {:<28} {}\n",
                if p.in_force { "yes" } else { "NO " },
                p.name,
                p.detail
            );
        }
        if let Some(problem) = &doctor.problem {
            human += &format!("why the full sandbox is unavailable: {problem}\n");
            human += "airlock refuses to run commands with a weaker sandbox unless the workflow sets `accept_weaker = true` under [sandbox]\n";
        }
        if let Some(view) = &self.repository {
            human += &format!(
                "\nwhat commands of runs of {} see{}:\n",
                view.root.display(),
                if doctor.backend == "namespaces" {
                    ""
                } else {
                    " (with namespaces; a weaker sandbox hides nothing)"
                }
            );
            if let Some(error) = &view.workflow_error {
                human += &format!("the workflow has problems; its paths are left out:\n{error}\n");
            }
            human += "everything else of the system is visible read-only\n";
            list(&mut human, "hidden", &view.hidden);
            list(&mut human, "shown again, read-only", &view.read_only);
            list(&mut human, "writable", &view.writable);
            if let Some(venv) = &view.venv {
                human += &format!(
                    "activated in every command: {} (VIRTUAL_ENV, first on PATH)\n",
                    venv.display()
                );
            }
        }
        human.trim_end().to_string()
    }

    /// Without the full sandbox: 1.
    fn exit_code(&self) -> u8 {
        if self.doctor.backend == "namespaces" {
            0
        } else {
            1
        }
    }
}
