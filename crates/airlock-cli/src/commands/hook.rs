//! `airlock hook claude|codex pre|post --run RUN`: the agents' PreToolUse
//! and PostToolUse hooks. The reply is the agent's contract, byte for
//! byte (see crates/airlock-hooks/README.md): `--json` does not apply to
//! it. Every failure fails closed: exit 2 with the reason on stderr, which
//! both agents read as "block" (and, after a tool ran, show to the model).

use std::io::Read;

use airlock_core::hook::{hook_scope, hook_scope_unopened, record_tool_call};
use airlock_core::layout::Layout;
use airlock_core::{Error, Result};
use airlock_hooks::{HookInputError, HookReply, MAX_INPUT_BYTES, Policy, ToolCallRecord};

use super::Ctx;
use crate::render::Output;

#[derive(clap::Args)]
#[command(
    after_help = "The reply is the agent's hook contract (stdout, stderr, exit code) and ignores --json. \
Hooks are advisory: the sandbox and the staging are airlock's boundary."
)]
pub struct Args {
    /// Whose hook contract to answer.
    #[arg(value_enum)]
    agent: Agent,
    /// `pre` (PreToolUse: may this call run?) or `post` (PostToolUse: record it in the run's ledger).
    #[arg(value_enum)]
    event: HookEvent,
    /// The run the agent works in (a unique start of its id is enough).
    #[arg(long)]
    run: String,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum Agent {
    Claude,
    Codex,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum HookEvent {
    Pre,
    Post,
}

pub fn run(ctx: &Ctx, args: Args) -> Result<Output> {
    // A panic would exit 101, which Claude reads as "no objection": it is
    // answered as a block like any other failure.
    let answered = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match read_stdin() {
        Ok(input) => match args.event {
            HookEvent::Pre => pre(ctx, &args, &input),
            HookEvent::Post => post(ctx, &args, &input),
        },
        Err(reply) => reply,
    }));
    let reply = answered.unwrap_or_else(|_| {
        HookReply::block("airlock: refused the tool call because airlock failed while answering the hook (a bug: please report it)")
    });
    eprint!("{}", reply.stderr);
    // Anything but 0 or 2 would let Claude run the call: only those two.
    let code = if reply.exit_code == 0 { 0 } else { 2 };
    Ok(Output::raw(reply.stdout, code))
}

/// The hook's input, at most [`MAX_INPUT_BYTES`] (one more is read, so that
/// the library refuses an oversized payload by its size).
fn read_stdin() -> std::result::Result<Vec<u8>, HookReply> {
    let mut input = Vec::new();
    let limit = u64::try_from(MAX_INPUT_BYTES).unwrap_or(u64::MAX) + 1;
    match std::io::stdin().lock().take(limit).read_to_end(&mut input) {
        Ok(_) => Ok(input),
        Err(e) => Err(HookReply::block(&format!(
            "airlock: refused the tool call because the hook input could not be read ({e})"
        ))),
    }
}

fn pre(ctx: &Ctx, args: &Args, input: &[u8]) -> HookReply {
    let policy = match policy(ctx, &args.run) {
        Ok(policy) => policy,
        Err(error) => return refuse(&error),
    };
    match args.agent {
        Agent::Claude => airlock_hooks::claude::pre_tool_use(input, &policy),
        Agent::Codex => airlock_hooks::codex::pre_tool_use(input, &policy),
    }
}

/// The run's worktree and its brief's `touch`, without opening the store
/// when the run's directory answers (see `hook_scope_unopened`).
fn policy(ctx: &Ctx, run: &str) -> Result<Policy> {
    let layout = Layout::discover(&ctx.cwd)?;
    let scope = match hook_scope_unopened(&layout, run)? {
        Some(scope) => scope,
        None => hook_scope(&ctx.open_in(layout)?, run)?,
    };
    let policy = Policy::new(scope.worktree, &scope.touch).map_err(|e| {
        Error::Invalid(format!(
            "the brief of run {} has a `touch` glob that cannot be read: {e}",
            scope.run
        ))
    })?;
    Ok(match scope.read_only_lane {
        Some(lane) => policy.with_read_only_worktree(lane),
        None => policy,
    })
}

fn post(ctx: &Ctx, args: &Args, input: &[u8]) -> HookReply {
    // The payload is read before the repository is opened: malformed
    // input writes nothing.
    let parsed: std::result::Result<ToolCallRecord, HookInputError> = match args.agent {
        Agent::Claude => airlock_hooks::claude::post_tool_use(input),
        Agent::Codex => airlock_hooks::codex::post_tool_use(input),
    };
    let record = match parsed {
        Ok(record) => record,
        Err(error) => return HookReply::refuse_input(&error),
    };
    // Then the run: a call made outside its worktree is another run's, and
    // is refused before anything is written.
    let recorded = ctx.open().and_then(|mut al| {
        let scope = hook_scope(&al, &args.run)?;
        if let Err(error) = record.require_worktree(&scope.worktree) {
            return Ok(Err(error));
        }
        let data = serde_json::to_value(&record).map_err(|e| {
            Error::Invalid(format!("the tool call cannot be recorded as JSON ({e})"))
        })?;
        record_tool_call(&mut al, &scope.run, data).map(Ok)
    });
    let recorded = match recorded {
        Ok(Err(error)) => return HookReply::refuse_input(&error),
        Ok(Ok(event)) => Ok(event),
        Err(error) => Err(error),
    };
    match recorded {
        Ok(_) => HookReply::silent(),
        Err(error) => refuse(&error),
    }
}

/// The fail-closed reply to an error of airlock's own (unknown run,
/// unreadable state): the block both agents understand, with the error
/// and what to do.
fn refuse(error: &Error) -> HookReply {
    let hint = error.hint();
    let mut reason = format!("airlock: refused the tool call because {error}");
    if let Some(hint) = hint {
        reason.push_str(&format!(". {hint}"));
    }
    HookReply::block(&reason)
}
