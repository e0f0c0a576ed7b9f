use std::path::PathBuf;

use airlock_core::Result;
use airlock_core::action::Action;
use airlock_core::action::plan::{propose, propose_text, withdraw};

use super::Ctx;
use super::plan::render_action;
use crate::render::{Output, Report};

#[derive(clap::Args)]
pub struct Args {
    /// The run.
    pub(super) run: String,
    /// The action file (TOML): kind, scopes and the kind's fields.
    #[arg(required_unless_present = "withdraw", conflicts_with = "withdraw")]
    file: Option<PathBuf>,
    /// Drop the named action (and its compensation) from the plan instead.
    #[arg(long, value_name = "NAME")]
    withdraw: Option<String>,
}

pub fn run(ctx: &Ctx, args: Args) -> Result<Output> {
    let mut al = ctx.open()?;
    if let Some(name) = args.withdraw {
        withdraw(&mut al, &args.run, &name)?;
        return Ok(Output::report(&Withdrawn {
            run: args.run,
            withdrawn: name,
        }));
    }
    let file = args.file.unwrap_or_default();
    let file = if file.is_absolute() {
        file
    } else {
        ctx.cwd.join(file)
    };
    let actions = propose(
        &mut al,
        &args.run,
        &file,
        &airlock_mcp_proxy::WithMcp(airlock_effects::Live),
    )?;
    Ok(Output::report(&Proposed {
        run: args.run,
        actions,
    }))
}

/// What the MCP server's `propose` tool names the action it was given in
/// diagnostics and refusals: its argument, not a file.
pub const TOOL_ARGUMENT: &str = "action (the propose tool's argument)";

/// `propose` as the MCP server's tool: the action's text is the tool's
/// argument, parsed as it is (no file is written or read), and named as
/// that argument in every diagnostic.
pub fn serve(ctx: &Ctx, run: &str, action: &str) -> Result<Output> {
    let mut al = ctx.open()?;
    let actions = propose_text(
        &mut al,
        run,
        TOOL_ARGUMENT,
        "action",
        action,
        &airlock_mcp_proxy::WithMcp(airlock_effects::Live),
    )?;
    Ok(Output::report(&Proposed {
        run: run.to_string(),
        actions,
    }))
}

/// `airlock propose --withdraw`: the action dropped from the plan.
#[derive(serde::Serialize)]
struct Withdrawn {
    run: String,
    withdrawn: String,
}

impl Report for Withdrawn {
    fn human(&self) -> String {
        format!("withdrew action `{}` from run {}", self.withdrawn, self.run)
    }
}

/// `airlock propose`: the action added (and its compensation, if any).
#[derive(serde::Serialize)]
struct Proposed {
    run: String,
    actions: Vec<Action>,
}

impl Report for Proposed {
    fn human(&self) -> String {
        let mut human = format!(
            "proposed action `{}` for run {}; it runs only after the run is approved and promoted\n",
            self.actions[0].spec.name, self.run
        );
        for a in &self.actions {
            human += &render_action(a, None);
        }
        human
    }
}
