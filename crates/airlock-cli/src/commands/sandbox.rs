use airlock_core::sandbox::doctor::diagnose;
use airlock_core::{Error, Result};

use super::Ctx;
use crate::render::Output;

#[derive(clap::Subcommand)]
pub enum Command {
    /// Try the sandbox on this machine and print which protections are in force.
    Doctor,
}

pub fn run(_ctx: &Ctx, cmd: Command) -> Result<Output> {
    let Command::Doctor = cmd;
    let exe = std::env::current_exe()
        .map_err(|e| Error::Invalid(format!("cannot find the airlock binary: {e}")))?;
    // Not under /tmp: the sandbox replaces /tmp with a private one.
    let base = std::env::var_os("HOME")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let scratch = tempfile::Builder::new()
        .prefix(".airlock-doctor-")
        .tempdir_in(&base)
        .or_else(|_| tempfile::tempdir())
        .map_err(|source| Error::Write { path: base, source })?;
    let report = diagnose(&exe, scratch.path());
    let mut human = format!(
        "sandbox backend: {}\n",
        match report.backend {
            "namespaces" => "namespaces (user, mount, pid, net) with Landlock and seccomp",
            "weaker" => "weaker: Landlock, seccomp and no privileges, without namespaces",
            _ => "none: commands cannot be confined on this machine",
        }
    );
    for p in &report.protections {
        human += &format!(
            "  {} {:<28} {}\n",
            if p.in_force { "yes" } else { "NO " },
            p.name,
            p.detail
        );
    }
    if let Some(problem) = &report.problem {
        human += &format!("why the full sandbox is unavailable: {problem}\n");
        human += "airlock refuses to run commands with a weaker sandbox unless the workflow sets `accept_weaker = true` under [sandbox]";
    }
    let code = if report.backend == "namespaces" { 0 } else { 1 };
    Ok(Output::new(&report, human.trim_end().to_string()).code(code))
}
