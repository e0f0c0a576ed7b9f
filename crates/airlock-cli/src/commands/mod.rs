//! One file per command, as jj does. Each parses its own arguments, calls
//! airlock-core, and returns an [`Output`] built from the data it got back.

use std::path::PathBuf;

use clap::Subcommand;

use airlock_core::layout::Layout;
use airlock_core::{Airlock, Result};

use crate::render::{Output, warn};

pub mod agent;
mod approvals;
mod approve;
mod brief;
mod check;
mod completions;
mod demo;
mod evidence;
pub mod exec;
mod gc;
mod hook;
mod init;
mod key;
mod lanes;
mod ledger;
mod list;
mod log;
mod logs;
mod mcp;
mod mcp_proxy;
mod plan;
mod promote;
mod proof;
mod propose;
mod redirect;
mod reject;
mod release;
mod report;
mod resolve;
mod review;
mod rollback;
mod sandbox;
mod serve;
mod show;
mod snap;
mod soak;
mod start;
mod stats;
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
    /// Start the agent itself in a run's sandbox (Claude Code, Codex or any agent), with an interactive terminal.
    Agent(agent::Args),
    /// Run the brief's gates, then the stop conditions.
    Check(check::Args),
    /// Commit the checked worktree, sign the proof, queue the run for review.
    Submit(submit::Args),
    /// Every run: state, class, lane, age and what moves it on.
    #[command(visible_alias = "status")]
    List(list::Args),
    /// Remove finished runs' worktrees and refs (records, proofs and logs stay).
    Gc(gc::Args),
    /// Each class's record: runs, clean pass rate, rework, rejections, blocks, promotions, rollbacks, time to decision.
    Stats(stats::Args),
    /// The runs waiting for a decision, oldest first.
    Review(review::Args),
    /// Everything about a run: brief, state, diff, gates, traces, proof.
    Show(show::Args),
    /// Approve the proof a run carries now.
    Approve(approve::Args),
    /// A run's signed approvals (team mode); `--export DIR` writes each for `ssh-keygen -Y verify`.
    Approvals(approvals::Args),
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
    /// A run as a reviewer or a pull request wants it (Markdown or JSON): objective, commits, diff, gates, network, actions, decisions, rollback plan.
    Report(report::Args),
    /// Revert a promoted run and run the compensations of its actions.
    Rollback(rollback::Args),
    /// Probe staging for a run soaking there; say how long its soak has left.
    Soak(soak::Args),
    /// Start a release run: the runs promoted since the last release, the checklist, publish actions.
    Release(release::Args),
    /// Proof bundles.
    #[command(subcommand)]
    Proof(proof::Command),
    /// Trust lanes: which classes' records suggest moving them up or down.
    #[command(subcommand)]
    Lanes(lanes::Command),
    /// The signing key.
    #[command(subcommand)]
    Key(key::Command),
    /// Ledger events, all or one run's.
    Log(log::Args),
    /// The output a run's commands and gates printed: list the traces, or one's stdout and stderr.
    Logs(logs::Args),
    /// The evidence document of a run (what `[conditions]` and panel rules see), and the conditions evaluated on it.
    Evidence(evidence::Args),
    /// The ledger itself.
    #[command(subcommand)]
    Ledger(ledger::Command),
    /// Output snapshots: golden files of a command's normalized output.
    #[command(subcommand)]
    Snap(snap::Command),
    /// The sandbox that confines a run's commands.
    #[command(subcommand)]
    Sandbox(sandbox::Command),
    /// Serve the review queue in a browser on 127.0.0.1: a one-time link, then pages and decisions until ^C.
    Serve(serve::Args),
    /// Serve the Model Context Protocol on stdin and stdout for one run: the tools an agent uses (status, exec, check, logs, snapshot, propose, withdraw, plan, submit).
    Mcp(mcp::Args),
    /// Answer an agent's PreToolUse/PostToolUse hook for a run (advisory; the reply is the agent's contract).
    Hook(hook::Args),
    /// Serve MCP to the agent in front of an upstream MCP server: pass, stage or refuse each tool call.
    McpProxy(mcp_proxy::Args),
    /// The whole flow on a throwaway repository with a scripted agent.
    Demo(demo::Args),
    /// Print a shell's completion script (e.g. `airlock completions bash > /etc/bash_completion.d/airlock`).
    Completions(completions::Args),
    /// Print the man page (roff), e.g. `airlock man | man -l -`.
    Man(completions::ManArgs),
}

pub fn run(ctx: &Ctx, mut command: Command) -> Result<Output> {
    if let Some(given) = named_run(&mut command) {
        resolve_run(ctx, given)?;
    }
    match command {
        Command::List(args) => list::run(ctx, args),
        Command::Gc(args) => gc::run(ctx, args),
        Command::Init(args) => init::run(ctx, args),
        Command::Brief(cmd) => brief::run(ctx, cmd),
        Command::Start(args) => start::run(ctx, args),
        Command::Exec(args) => exec::run(ctx, args),
        Command::Agent(args) => agent::run(ctx, args),
        Command::Check(args) => check::run(ctx, args),
        Command::Submit(args) => submit::run(ctx, args),
        Command::Stats(args) => stats::run(ctx, args),
        Command::Review(args) => review::run(ctx, args),
        Command::Show(args) => show::run(ctx, args),
        Command::Approve(args) => approve::run(ctx, args),
        Command::Approvals(args) => approvals::run(ctx, args),
        Command::Reject(args) => reject::run(ctx, args),
        Command::Redirect(args) => redirect::run(ctx, args),
        Command::Promote(args) => promote::run(ctx, args),
        Command::Propose(args) => propose::run(ctx, args),
        Command::Plan(args) => plan::run(ctx, args),
        Command::Resolve(args) => resolve::run(ctx, args),
        Command::Report(args) => report::run(ctx, args),
        Command::Rollback(args) => rollback::run(ctx, args),
        Command::Soak(args) => soak::run(ctx, args),
        Command::Release(args) => release::run(ctx, args),
        Command::Proof(cmd) => proof::run(ctx, cmd),
        Command::Key(cmd) => key::run(ctx, cmd),
        Command::Lanes(cmd) => lanes::run(ctx, cmd),
        Command::Log(args) => log::run(ctx, args),
        Command::Logs(args) => logs::run(ctx, args),
        Command::Evidence(args) => evidence::run(ctx, args),
        Command::Ledger(cmd) => ledger::run(ctx, cmd),
        Command::Snap(cmd) => snap::run(ctx, cmd),
        Command::Sandbox(cmd) => sandbox::run(ctx, cmd),
        Command::Serve(args) => serve::run(ctx, args),
        Command::Mcp(args) => mcp::run(ctx, args),
        Command::Hook(args) => hook::run(ctx, args),
        Command::McpProxy(args) => mcp_proxy::run(ctx, args),
        Command::Demo(args) => demo::run(ctx, args),
        Command::Completions(args) => completions::completions(ctx, args),
        Command::Man(args) => completions::man(ctx, args),
    }
}

/// The run a command names. `exec` is left out: agents give full ids, and
/// it is on every command's path.
fn named_run(command: &mut Command) -> Option<&mut String> {
    match command {
        Command::Check(a) => Some(&mut a.run),
        Command::Agent(a) => Some(&mut a.run),
        Command::Submit(a) => Some(&mut a.run),
        Command::Show(a) => Some(&mut a.run),
        Command::Report(a) => Some(&mut a.run),
        Command::Approve(a) => Some(&mut a.run),
        Command::Approvals(a) => Some(&mut a.run),
        Command::Reject(a) => Some(&mut a.run),
        Command::Redirect(a) => Some(&mut a.run),
        Command::Promote(a) => Some(&mut a.run),
        Command::Propose(a) => Some(&mut a.run),
        Command::Plan(a) => Some(&mut a.run),
        Command::Resolve(a) => Some(&mut a.run),
        Command::Rollback(a) => Some(&mut a.run),
        Command::Soak(a) => Some(&mut a.run),
        Command::Log(a) => a.run.as_mut(),
        Command::McpProxy(a) => Some(&mut a.run),
        Command::Mcp(a) => Some(&mut a.run),
        _ => None,
    }
}

/// Replaces a unique start of a run's id with the whole id; refuses an
/// ambiguous one (listing the runs it starts) and an unknown one (with the
/// nearest id). Where there is no state yet, the command itself reports it.
fn resolve_run(ctx: &Ctx, given: &mut String) -> Result<()> {
    let Ok(layout) = Layout::discover(&ctx.cwd) else {
        return Ok(());
    };
    let database = airlock_core::store_backend::database_url_for(&layout)?.is_some();
    if !database && !layout.db_path().exists() {
        return Ok(());
    }
    let store = match airlock_core::store_backend::open_for(&layout, false) {
        Ok(store) => store,
        // The database out of reach: the command says so, or goes on
        // offline with the id as given (`check` of a run worked on here).
        Err(e) if airlock_core::offline::is_unreachable(&e) => return Ok(()),
        Err(e) => return Err(e),
    };
    match store.resolve(given) {
        Ok(id) => {
            *given = id;
            Ok(())
        }
        // A ledger older than its head record knows too few runs: that
        // refusal comes first (the command makes it).
        Err(e) => {
            drop(store);
            airlock_core::store_backend::open_for(&layout, true)?;
            Err(e.into())
        }
    }
}
