use std::path::PathBuf;

use serde_json::json;

use airlock_core::Result;
use airlock_core::brief::Brief;
use airlock_core::config::{BriefFile, WorkflowFile};
use airlock_core::layout::Layout;
use airlock_core::workflow::Workflow;

use super::Ctx;
use crate::render::Output;

#[derive(clap::Subcommand)]
pub enum Command {
    /// Validate a brief: every problem at once, with file:line:column.
    Check {
        /// The brief (TOML).
        brief: PathBuf,
    },
}

pub fn run(ctx: &Ctx, cmd: Command) -> Result<Output> {
    let Command::Check { brief } = cmd;
    let path = ctx.cwd.join(&brief);
    // Gate names are checked against the workflow when there is one.
    let workflow = match Layout::discover(&ctx.cwd) {
        Ok(layout) if layout.workflow_path().exists() => Some(Workflow::load_for(&layout)?),
        _ => None,
    };
    let (parsed, _) = Brief::load(&path, workflow.as_ref())?;
    let mut human = format!("{} is a valid brief\n", brief.display());
    human += &format!("  objective: {}\n", crate::render::clean(&parsed.objective));
    human += &format!("  class {}, lane {}\n", parsed.class, parsed.lane);
    human += &format!("  touch: {}\n", parsed.touch.join(", "));
    human += &format!(
        "  checks: {}",
        if parsed.checks.is_empty() {
            "(none)".into()
        } else {
            parsed.checks.join(", ")
        }
    );
    if workflow.is_none() {
        human += "\n  note: no workflow found, so gate names were not checked (run `airlock init`)";
    }
    Ok(Output::new(
        json!({"valid": true, "brief": parsed, "workflow_checked": workflow.is_some()}),
        human,
    )
    // Every field is the brief's, which the agent may have written.
    .hostile())
}
