use serde_json::Value;

use airlock_core::Result;
use airlock_core::action::plan::list;
use airlock_core::action::{Action, Role};
use airlock_core::run::State;

use super::Ctx;
use crate::render::{Output, Report, clean, escape};

#[derive(clap::Args)]
pub struct Args {
    /// The run.
    pub(super) run: String,
}

pub fn run(ctx: &Ctx, args: Args) -> Result<Output> {
    let al = ctx.open()?;
    let run = al.store.get(&args.run)?;
    let actions = list(&al, &run.id)?;
    let round = run.submission.as_ref().map(|s| s.round);
    Ok(Output::report(&Plan {
        run: run.id,
        state: run.state,
        actions: actions_json(&actions, round),
        listed: actions,
        round,
    })
    .hostile())
}

/// `airlock plan`: the run's actions, each with its preview, rehearsal and
/// attempts.
#[derive(serde::Serialize)]
struct Plan {
    run: String,
    state: State,
    /// [`actions_json`] of `listed`.
    actions: Value,
    #[serde(skip)]
    listed: Vec<Action>,
    /// The submitted round, which keys the idempotency keys.
    #[serde(skip)]
    round: Option<u32>,
}

impl Report for Plan {
    fn human(&self) -> String {
        let actions = &self.listed;
        let mut human = format!("plan of run {} [{}]: ", self.run, self.state);
        if actions.is_empty() {
            human += "no actions\n  `airlock propose RUN ACTION.toml` adds one\n";
        } else {
            // A compensation is listed under the action it undoes, not counted as one.
            let undos = actions.iter().filter(|a| a.role == Role::Undo).count();
            human += &format!("{} action(s)", actions.len() - undos);
            if undos > 0 {
                human += &format!(", {undos} compensation(s) for rollback");
            }
            human.push('\n');
            for a in actions {
                human += &render_action(a, self.round);
            }
        }
        human
    }
}

/// The actions as JSON, each attempted one with the idempotency key its
/// attempts carried.
pub fn actions_json(actions: &[Action], round: Option<u32>) -> Value {
    airlock_core::inspect::actions_json(actions, round)
}

/// One action: header, state, scopes, preview, rehearsal, attempts, and,
/// once it was attempted, the idempotency key its attempts carried (keyed by
/// the submitted `round`).
pub fn render_action(a: &Action, round: Option<u32>) -> String {
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
    if let Some(round) = round.filter(|_| !a.attempts.is_empty()) {
        h += &format!("  idempotency key {}\n", a.idempotency_key(round));
    }
    h
}
