//! `completions` and `man`: generated from the same argument definitions
//! that parse the command line, so they never fall behind it.

use airlock_core::{Error, Result};

use super::Ctx;
use crate::render::{Output, Report};

#[derive(clap::Args)]
pub struct Args {
    /// The shell: bash, zsh, fish, elvish or powershell.
    shell: clap_complete::Shell,
}

#[derive(clap::Args)]
pub struct ManArgs {}

pub fn completions(_ctx: &Ctx, args: Args) -> Result<Output> {
    let mut cmd = crate::cli_command();
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "airlock", &mut script);
    let script = String::from_utf8(script)
        .map_err(|e| Error::Internal(format!("the completion script is not UTF-8: {e}")))?;
    Ok(Output::report(&Completions {
        shell: args.shell.to_string(),
        script,
    }))
}

/// `airlock completions`: the shell's completion script.
#[derive(serde::Serialize)]
struct Completions {
    shell: String,
    script: String,
}

impl Report for Completions {
    fn human(&self) -> String {
        self.script.clone()
    }
}

/// `airlock man`: the man page, in roff.
#[derive(serde::Serialize)]
struct ManPage {
    roff: String,
}

impl Report for ManPage {
    fn human(&self) -> String {
        self.roff.clone()
    }
}

pub fn man(_ctx: &Ctx, _args: ManArgs) -> Result<Output> {
    let mut page = Vec::new();
    clap_mangen::Man::new(crate::cli_command())
        .render(&mut page)
        .map_err(|e| Error::Internal(format!("cannot render the man page: {e}")))?;
    let page = String::from_utf8(page)
        .map_err(|e| Error::Internal(format!("the man page is not UTF-8: {e}")))?;
    Ok(Output::report(&ManPage { roff: page }))
}
