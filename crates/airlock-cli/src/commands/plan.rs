use serde_json::json;

use airlock_core::Result;
use airlock_core::action::plan::list;
use airlock_core::action::{Action, Role};

use super::Ctx;
use crate::render::{Output, clean, escape};

#[derive(clap::Args)]
pub struct Args {
    /// The run.
    pub(super) run: String,
}

pub fn run(ctx: &Ctx, args: Args) -> Result<Output> {
    let al = ctx.open()?;
    let run = al.store.get(&args.run)?;
    let actions = list(&al, &run.id)?;
    let mut human = format!("plan of run {} [{}]: ", run.id, run.state);
    if actions.is_empty() {
        human += "no actions\n  `airlock propose RUN ACTION.toml` adds one\n";
    } else {
        human += &format!("{} action(s)\n", actions.len());
        for a in &actions {
            human += &render_action(a);
        }
    }
    Ok(Output::new(
        json!({"run": run.id, "state": run.state, "actions": actions}),
        human,
    )
    .hostile())
}

/// One action: header, state, scopes, preview, rehearsal, attempts.
pub fn render_action(a: &Action) -> String {
    let title = match a.role {
        Role::Apply => format!("#{} `{}`", a.seq, escape(&a.spec.name)),
        Role::Undo => format!("  undo for `{}`", escape(&a.spec.name)),
    };
    let mut h = format!(
        "\n{title} ({})  [{}]\n",
        a.spec.body.kind(),
        a.state.as_str()
    );
    if let Some(d) = &a.spec.description {
        h += &format!("  {}\n", escape(d));
    }
    h += &format!(
        "  digest {}  preview sha256 {}\n",
        &a.digest[..16],
        &a.preview_sha256[..16]
    );
    for line in a.preview.lines() {
        h += &format!("  | {}\n", clean(line));
    }
    h += &format!(
        "  rehearsal: {}: {}\n",
        a.rehearsal.status,
        escape(&a.rehearsal.summary)
    );
    for line in a.rehearsal.detail.lines().take(20) {
        h += &format!("  > {}\n", clean(line));
    }
    for at in &a.attempts {
        h += &format!(
            "  {} {}: {}\n",
            at.at,
            at.state.as_str(),
            escape(&at.summary)
        );
    }
    h
}
