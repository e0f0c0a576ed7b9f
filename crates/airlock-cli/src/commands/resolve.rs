use serde_json::json;

use airlock_core::Result;
use airlock_core::action::Role;
use airlock_core::action::apply::resolve;

use super::Ctx;
use crate::render::Output;

#[derive(clap::Args)]
#[command(group = clap::ArgGroup::new("verdict").required(true).args(["done", "retry"]))]
pub struct Args {
    /// The run.
    pub(super) run: String,
    /// The action.
    name: String,
    /// It happened: record it as done.
    #[arg(long)]
    done: bool,
    /// It did not happen: try it again on the next `promote --actions-only`.
    #[arg(long)]
    retry: bool,
    /// The action's compensation (run at rollback), not the action.
    #[arg(long)]
    undo: bool,
    /// What you checked (recorded in the ledger).
    #[arg(long)]
    reason: Option<String>,
}

pub fn run(ctx: &Ctx, args: Args) -> Result<Output> {
    let mut al = ctx.open()?;
    let role = if args.undo { Role::Undo } else { Role::Apply };
    let action = resolve(
        &mut al,
        &args.run,
        &args.name,
        role,
        args.done,
        args.reason.as_deref(),
    )?;
    let next = if args.done {
        String::new()
    } else if args.undo {
        format!(
            "; `airlock rollback {} --actions-only --reason …` tries it again",
            args.run
        )
    } else {
        format!(
            "; `airlock promote {} --actions-only` tries it again",
            args.run
        )
    };
    Ok(Output::new(
        json!({"run": args.run, "action": action.spec.name, "state": action.state}),
        format!(
            "action `{}` of run {} is now {}{next}",
            action.spec.name,
            args.run,
            action.state.as_str()
        ),
    ))
}
