use airlock_core::Result;
use airlock_core::decide::RiskFlag;
use airlock_core::run::State;

use super::Ctx;
use crate::render::{Output, Report, clean, short};

#[derive(clap::Args)]
pub struct Args {}

pub fn run(ctx: &Ctx, _args: Args) -> Result<Output> {
    let al = ctx.open()?;
    let mut queue: Vec<_> = al
        .store
        .list()?
        .into_iter()
        .filter(|r| r.state == State::InReview)
        .collect();
    queue.sort_by(|a, b| {
        let at = |r: &airlock_core::run::Run| {
            r.submission
                .as_ref()
                .map(|s| s.at.clone())
                .unwrap_or_default()
        };
        at(a).cmp(&at(b))
    });
    // What each run would do beyond its diff, so nobody approves a push or
    // an email without noticing it.
    let kinds: Vec<Vec<String>> = queue
        .iter()
        .map(|r| {
            airlock_core::action::plan::list(&al, &r.id).map(|actions| {
                actions
                    .iter()
                    .filter(|a| a.role == airlock_core::action::Role::Apply)
                    .map(|a| format!("{} `{}`", a.spec.body.kind(), clean(&a.spec.name)))
                    .collect()
            })
        })
        .collect::<Result<_>>()?;
    // What the evidence says a reviewer must weigh (see `airlock show`).
    let flags: Vec<Vec<RiskFlag>> = queue
        .iter()
        .map(|r| {
            let history = airlock_core::decide::history(&al, &r.id)?;
            airlock_core::decide::risk_flags(&al, r, &history)
        })
        .collect::<Result<_>>()?;
    let queue = queue
        .into_iter()
        .zip(kinds)
        .zip(flags)
        .map(|((r, actions), risk_flags)| Waiting {
            submitted: r.submission.as_ref().map(|s| s.at.clone()),
            digest: r.submission.as_ref().map(|s| s.digest.clone()),
            run: r.id,
            round: r.round,
            label: r.label,
            class: r.class,
            lane: r.lane,
            actions,
            risk_flags,
        })
        .collect();
    Ok(Output::report(&Queue { queue }).hostile())
}

/// `airlock review`: the runs waiting for a decision, oldest first.
#[derive(serde::Serialize)]
struct Queue {
    queue: Vec<Waiting>,
}

#[derive(serde::Serialize)]
struct Waiting {
    run: String,
    round: u32,
    label: String,
    class: String,
    lane: String,
    submitted: Option<String>,
    digest: Option<String>,
    /// What it would do beyond its diff: `http `notify``.
    actions: Vec<String>,
    risk_flags: Vec<RiskFlag>,
}

impl Report for Queue {
    fn human(&self) -> String {
        let mut human = String::new();
        if self.queue.is_empty() {
            human += "no runs are waiting for review";
        } else {
            human += &format!(
                "{} run(s) waiting for a decision, oldest first:\n",
                self.queue.len()
            );
            for r in &self.queue {
                human += &format!(
                    "  {:<32} round {}  submitted {}  proof {}  {}\n",
                    r.run,
                    r.round,
                    r.submitted.as_deref().unwrap_or("?"),
                    r.digest.as_deref().map(short).unwrap_or("?"),
                    clean(&r.label)
                );
                if !r.actions.is_empty() {
                    human += &format!(
                        "  {:<32} side effects on approval: {}\n",
                        "",
                        r.actions.join(", ")
                    );
                }
                if !r.risk_flags.is_empty() {
                    let mut codes: Vec<&str> = r.risk_flags.iter().map(|f| f.code).collect();
                    codes.dedup();
                    human += &format!("  {:<32} ! risk: {}\n", "", codes.join(", "));
                }
            }
            human += "inspect one with `airlock show RUN` (risk flags are explained at its top)";
        }
        human
    }
}
