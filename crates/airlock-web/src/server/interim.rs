//! Plain pages the server uses until `pages`' own (queue, run, history,
//! stats, assets) are wired: enough to open a session, find a run and
//! decide on it. Everything shown goes through maud's escaping.

use airlock_core::Airlock;
use airlock_core::run::State;
use maud::{DOCTYPE, Markup, html};

use crate::pages::PageCtx;

fn layout(title: &str, ctx: &PageCtx, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head { meta charset="utf-8"; title { "airlock: " (title) } }
            body {
                p { a href="/" { "queue" } " · " a href="/history" { "history" } " · " a href="/stats" { "stats" } " · " (ctx.user) }
                @if let Some(flash) = &ctx.flash {
                    p class=(if flash.ok { "flash ok" } else { "flash" }) { (flash.text) }
                }
                h1 { (title) }
                (body)
            }
        }
    }
}

pub fn queue(al: &Airlock, ctx: &PageCtx) -> airlock_core::Result<Markup> {
    let runs: Vec<_> = al
        .store
        .list()?
        .into_iter()
        .filter(|r| r.state == State::InReview)
        .collect();
    Ok(layout(
        "review queue",
        ctx,
        html! {
            @if runs.is_empty() { p { "No run is waiting for a decision." } }
            ul { @for r in &runs { li { a href={ "/runs/" (r.id) } { (r.id) } } } }
        },
    ))
}

pub fn history(al: &Airlock, ctx: &PageCtx) -> airlock_core::Result<Markup> {
    let runs: Vec<_> = al
        .store
        .list()?
        .into_iter()
        .filter(|r| {
            matches!(
                r.state,
                State::Promoted | State::Rejected | State::RolledBack
            )
        })
        .collect();
    Ok(layout(
        "history",
        ctx,
        html! { ul { @for r in &runs { li { a href={ "/runs/" (r.id) } { (r.id) } " " (r.state) } } } },
    ))
}

pub fn stats(_al: &Airlock, ctx: &PageCtx) -> airlock_core::Result<Markup> {
    Ok(layout(
        "stats",
        ctx,
        html! { p { "`airlock stats` has each class's record." } },
    ))
}

pub fn run(
    al: &Airlock,
    id: &str,
    _since: Option<u32>,
    ctx: &PageCtx,
) -> airlock_core::Result<Markup> {
    let run = al.store.get(id)?;
    let digest = run.submission.as_ref().map(|s| s.digest.clone());
    Ok(layout(
        &format!("run {}", run.id),
        ctx,
        html! {
            p { "state: " (run.state) }
            @if let Some(d) = &digest { p { "proof: " code { (d) } } }
            @if run.state == State::InReview {
                form method="post" action={ "/runs/" (run.id) "/approve" } {
                    input type="hidden" name="csrf" value=(ctx.csrf);
                    @if let Some(d) = &digest { input type="hidden" name="digest" value=(d); }
                    input name="reason" placeholder="reason (optional)";
                    button { "Approve" }
                }
                form method="post" action={ "/runs/" (run.id) "/reject" } {
                    input type="hidden" name="csrf" value=(ctx.csrf);
                    input name="reason" required placeholder="reason";
                    button { "Reject" }
                }
                form method="post" action={ "/runs/" (run.id) "/redirect" } {
                    input type="hidden" name="csrf" value=(ctx.csrf);
                    input name="reason" required placeholder="what the agent should do";
                    button { "Redirect" }
                }
            }
        },
    ))
}

pub fn asset(_name: &str) -> Option<(&'static str, &'static [u8])> {
    None
}
