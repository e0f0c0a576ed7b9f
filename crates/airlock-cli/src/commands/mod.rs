//! One file per command, as jj does. Each parses its own arguments, calls
//! airlock-core, and returns an [`Output`] built from the data it got back.

use std::path::PathBuf;

use clap::Subcommand;

use airlock_core::layout::Layout;
use airlock_core::{Airlock, Result};

use crate::render::{Output, warn};

mod approve;
mod brief;
mod check;
mod completions;
mod demo;
pub mod exec;
mod init;
mod key;
mod ledger;
mod log;
mod logs;
mod plan;
mod promote;
mod proof;
mod propose;
mod redirect;
mod reject;
mod release;
mod resolve;
mod review;
mod rollback;
mod sandbox;
mod show;
mod snap;
mod start;
mod submit;

pub struct Ctx {
    pub cwd: PathBuf,
    pub json: bool,
}

impl Ctx {
    /// Opens the repository, reporting anything recovery repaired.
    pub fn open(&self) -> Result<Airlock> {
        self.open_in(Layout::discover(&self.cwd)?)
    }

    /// [`Ctx::open`] in a repository already found.
    pub fn open_in(&self, layout: Layout) -> Result<Airlock> {
        let al = Airlock::open_in(layout)?;
        report_recovered(&al.recovered);
        Ok(al)
    }
}

/// Says what recovery repaired on opening the repository.
pub fn report_recovered(notes: &[String]) {
    for note in notes {
        warn(&format!("recovered: {note}"));
    }
}

#[derive(Subcommand)]
pub enum Command {
    /// Write .airlock/workflow.toml, ignore local state, create the signing key.
    Init(init::Args),
    /// Validate briefs.
    #[command(subcommand)]
    Brief(brief::Command),
    /// Create a run and its isolated worktree from a brief.
    Start(start::Args),
    /// Run a command in a run's worktree and record its trace.
    Exec(exec::Args),
    /// Run the brief's gates, then the stop conditions.
    Check(check::Args),
    /// Commit the checked worktree, sign the proof, queue the run for review.
    Submit(submit::Args),
    /// The runs waiting for a decision, oldest first.
    Review(review::Args),
    /// Everything about a run: brief, state, diff, gates, traces, proof.
    Show(show::Args),
    /// Approve the proof a run carries now.
    Approve(approve::Args),
    /// Reject a run.
    Reject(reject::Args),
    /// Send a run back to the agent for a new round.
    Redirect(redirect::Args),
    /// Verify everything again, merge an approved run, apply its approved actions.
    Promote(promote::Args),
    /// Add a side effect (HTTP call, email, push, command) to a run's plan.
    Propose(propose::Args),
    /// A run's planned actions: previews, rehearsals, scopes, states.
    Plan(plan::Args),
    /// Say what happened to an action whose outcome airlock cannot know.
    Resolve(resolve::Args),
    /// Revert a promoted run and run the compensations of its actions.
    Rollback(rollback::Args),
    /// Start a release run: the runs promoted since the last release, the checklist, publish actions.
    Release(release::Args),
    /// Proof bundles.
    #[command(subcommand)]
    Proof(proof::Command),
    /// The signing key.
    #[command(subcommand)]
    Key(key::Command),
    /// Ledger events, all or one run's.
    Log(log::Args),
    /// The output a run's commands and gates printed: list the traces, or one's stdout and stderr.
    Logs(logs::Args),
    /// The ledger itself.
    #[command(subcommand)]
    Ledger(ledger::Command),
    /// Output snapshots: golden files of a command's normalized output.
    #[command(subcommand)]
    Snap(snap::Command),
    /// The sandbox that confines a run's commands.
    #[command(subcommand)]
    Sandbox(sandbox::Command),
    /// The whole flow on a throwaway repository with a scripted agent.
    Demo(demo::Args),
    /// Print a shell's completion script (e.g. `airlock completions bash > /etc/bash_completion.d/airlock`).
    Completions(completions::Args),
    /// Print the man page (roff), e.g. `airlock man | man -l -`.
    Man(completions::ManArgs),
}

pub fn run(ctx: &Ctx, command: Command) -> Result<Output> {
    match command {
        Command::Init(args) => init::run(ctx, args),
        Command::Brief(cmd) => brief::run(ctx, cmd),
        Command::Start(args) => start::run(ctx, args),
        Command::Exec(args) => exec::run(ctx, args),
        Command::Check(args) => check::run(ctx, args),
        Command::Submit(args) => submit::run(ctx, args),
        Command::Review(args) => review::run(ctx, args),
        Command::Show(args) => show::run(ctx, args),
        Command::Approve(args) => approve::run(ctx, args),
        Command::Reject(args) => reject::run(ctx, args),
        Command::Redirect(args) => redirect::run(ctx, args),
        Command::Promote(args) => promote::run(ctx, args),
        Command::Propose(args) => propose::run(ctx, args),
        Command::Plan(args) => plan::run(ctx, args),
        Command::Resolve(args) => resolve::run(ctx, args),
        Command::Rollback(args) => rollback::run(ctx, args),
        Command::Release(args) => release::run(ctx, args),
        Command::Proof(cmd) => proof::run(ctx, cmd),
        Command::Key(cmd) => key::run(ctx, cmd),
        Command::Log(args) => log::run(ctx, args),
        Command::Logs(args) => logs::run(ctx, args),
        Command::Ledger(cmd) => ledger::run(ctx, cmd),
        Command::Snap(cmd) => snap::run(ctx, cmd),
        Command::Sandbox(cmd) => sandbox::run(ctx, cmd),
        Command::Demo(args) => demo::run(ctx, args),
        Command::Completions(args) => completions::completions(ctx, args),
        Command::Man(args) => completions::man(ctx, args),
    }
}
