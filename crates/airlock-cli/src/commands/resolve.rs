use airlock_core::Result;
use airlock_core::action::apply::resolve;
use airlock_core::action::{ActionState, Role};

use super::Ctx;
use crate::render::{Output, Report};

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
    Ok(Output::report(&Resolved {
        run: args.run,
        action: action.spec.name,
        state: action.state,
        done: args.done,
        undo: args.undo,
    }))
}

/// `airlock resolve`: the action and the state it was given.
#[derive(serde::Serialize)]
struct Resolved {
    run: String,
    action: String,
    state: ActionState,
    #[serde(skip)]
    done: bool,
    #[serde(skip)]
    undo: bool,
}

impl Report for Resolved {
    fn human(&self) -> String {
        let next = if self.done {
            String::new()
        } else if self.undo {
            format!(
                "; `airlock rollback {} --actions-only --reason …` tries it again",
                self.run
            )
        } else {
            format!(
                "; `airlock promote {} --actions-only` tries it again",
                self.run
            )
        };
        format!(
            "action `{}` of run {} is now {}{next}",
            self.action,
            self.run,
            self.state.as_str()
        )
    }
}
