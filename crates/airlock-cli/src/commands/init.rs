use airlock_core::Result;
use airlock_core::init::init;

use super::Ctx;
use crate::render::Output;

#[derive(clap::Args)]
pub struct Args {}

pub fn run(ctx: &Ctx, _args: Args) -> Result<Output> {
    let report = init(&ctx.cwd)?;
    let mut human = String::new();
    if report.workflow_written {
        human += &format!(
            "wrote {} ({})\n",
            report.workflow.display(),
            report.detected
        );
    } else {
        human += &format!("kept {}\n", report.workflow.display());
    }
    human += &format!(
        "  gates, in order: {}\n",
        if report.gates.is_empty() {
            "(none yet: edit the workflow)".to_string()
        } else {
            report.gates.join(", ")
        }
    );
    human += &format!("ignored local state in {}\n", report.gitignore.display());
    human += &format!(
        "{} signing key in {}\n  {}\n",
        if report.key_created {
            "created"
        } else {
            "using"
        },
        report.key_dir.display(),
        report.public_key
    );
    human += "next: write a brief (see README) and run `airlock brief check BRIEF.toml`";
    Ok(Output::new(&report, human))
}
