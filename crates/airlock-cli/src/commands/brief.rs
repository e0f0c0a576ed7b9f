use std::path::PathBuf;

use airlock_core::Result;
use airlock_core::brief::Brief;
use airlock_core::config::{BriefFile, WorkflowFile};
use airlock_core::layout::Layout;
use airlock_core::workflow::Workflow;

use super::Ctx;
use crate::render::{Output, Report};

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
    let capabilities = workflow.as_ref().map(|w| w.capabilities(&parsed.lane));
    Ok(Output::report(&BriefChecked {
        capabilities,
        valid: true,
        brief: parsed,
        workflow_checked: workflow.is_some(),
        given: brief,
    })
    // Every field is the brief's, which the agent may have written.
    .hostile())
}

/// `airlock brief check`: the brief as parsed, and whether its gate names
/// were checked against a workflow.
#[derive(serde::Serialize)]
struct BriefChecked {
    valid: bool,
    brief: Brief,
    workflow_checked: bool,
    /// What the brief's lane grants under the workflow (none without one).
    #[serde(skip_serializing_if = "Option::is_none")]
    capabilities: Option<airlock_core::lane_policy::Capabilities>,
    /// The path as given on the command line.
    #[serde(skip)]
    given: PathBuf,
}

impl Report for BriefChecked {
    fn human(&self) -> String {
        let parsed = &self.brief;
        let mut human = format!("{} is a valid brief\n", self.given.display());
        human += &format!("  objective: {}\n", crate::render::clean(&parsed.objective));
        human += &format!("  class {}, lane {}", parsed.class, parsed.lane);
        if let Some(c) = &self.capabilities {
            human += &format!(" ({})", crate::commands::show::describe_capabilities(c));
        }
        human += "\n";
        human += &format!("  touch: {}\n", parsed.touch.join(", "));
        human += &format!(
            "  checks: {}",
            if parsed.checks.is_empty() {
                "(none)".into()
            } else {
                parsed.checks.join(", ")
            }
        );
        if !self.workflow_checked {
            human +=
                "\n  note: no workflow found, so gate names were not checked (run `airlock init`)";
        }
        human
    }
}
