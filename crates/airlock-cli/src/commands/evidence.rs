use airlock_core::Result;
use airlock_core::conditions::ConditionResult;
use airlock_core::evidence::Evidence;

use super::Ctx;
use crate::render::{Output, Report};

#[derive(clap::Args)]
pub struct Args {
    /// The run.
    run: String,
}

pub fn run(ctx: &Ctx, args: Args) -> Result<Output> {
    let al = ctx.open()?;
    let run = al.store.get(&args.run)?;
    let evidence = airlock_core::evidence::of_run(&al, &run)?;
    let workflow = al.workflow_for(&run)?;
    let conditions = airlock_core::conditions::evaluate(&workflow, &evidence)?;
    Ok(Output::report(&Shown {
        run: run.id,
        evidence,
        conditions,
    })
    .hostile())
}

/// `airlock evidence RUN`: the document conditions and panel rules see
/// (docs/evidence.md), and the workflow's conditions evaluated on it now.
#[derive(serde::Serialize)]
struct Shown {
    #[serde(skip)]
    run: String,
    evidence: Evidence,
    conditions: Vec<ConditionResult>,
}

impl Report for Shown {
    fn human(&self) -> String {
        let mut h = format!(
            "evidence of run {} ({}), as conditions see it:\n",
            self.run, self.evidence.version
        );
        h += &serde_json::to_string_pretty(&self.evidence).unwrap_or_default();
        h.push('\n');
        if self.conditions.is_empty() {
            h += "conditions: none in the workflow\n";
        } else {
            h += &super::check::render_conditions(&self.conditions);
        }
        h.trim_end().to_string()
    }
}
