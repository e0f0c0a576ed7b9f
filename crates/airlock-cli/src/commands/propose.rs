use std::path::PathBuf;

use serde_json::json;

use airlock_core::Result;
use airlock_core::action::plan::{propose, withdraw};

use super::Ctx;
use super::plan::render_action;
use crate::render::Output;

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
        return Ok(Output::new(
            json!({"run": args.run, "withdrawn": name}),
            format!("withdrew action `{name}` from run {}", args.run),
        ));
    }
    let file = args.file.unwrap_or_default();
    let file = if file.is_absolute() {
        file
    } else {
        ctx.cwd.join(file)
    };
    let actions = propose(&mut al, &args.run, &file, &airlock_effects::Live)?;
    let mut human = format!(
        "proposed action `{}` for run {}; it runs only after the run is approved and promoted\n",
        actions[0].spec.name, args.run
    );
    for a in &actions {
        human += &render_action(a, None);
    }
    Ok(Output::new(
        json!({"run": args.run, "actions": actions}),
        human,
    ))
}
