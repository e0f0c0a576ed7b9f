//! `GET /history`: the runs that were decided for good (promoted, rejected,
//! rolled back), newest first, with the last decision and its words.

use airlock_core::run::State;
use airlock_core::{Airlock, Result};
use maud::{Markup, html};

use super::{Nav, PageCtx, layout, page_range, pager, past_the_end, run_href, text};

/// The history's first page.
pub fn history(al: &Airlock, ctx: &PageCtx) -> Result<Markup> {
    history_page(al, 1, ctx)
}

/// Page `page` (from 1) of the history: `PAGE_SIZE` runs, newest decision
/// first, with links to the other pages.
pub fn history_page(al: &Airlock, page: usize, ctx: &PageCtx) -> Result<Markup> {
    let mut runs: Vec<_> = al
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
    let mut rows = Vec::with_capacity(runs.len());
    runs.sort_by(|a, b| b.created.cmp(&a.created));
    for r in runs {
        let last = airlock_core::decide::history(al, &r.id)?
            .decisions
            .into_iter()
            .next_back();
        rows.push((r, last));
    }
    rows.sort_by(|a, b| {
        let at = |row: &(
            airlock_core::run::Run,
            Option<airlock_core::decide::Decision>,
        )| { row.1.as_ref().map(|d| d.at.clone()).unwrap_or_default() };
        at(b).cmp(&at(a))
    });
    let total = rows.len();
    let Some(range) = page_range(page, total) else {
        let body = html! { h1 { "History" } (past_the_end("/history", page, total)) };
        return Ok(layout("history", Nav::History, ctx, body));
    };
    let rows = &rows[range];
    let body = html! {
        h1 { "History" }
        @if rows.is_empty() {
            p.empty { "No run was promoted, rejected or rolled back yet." }
        } @else {
            (pager("/history", page, total, "runs"))
            table.history {
                thead { tr { th { "run" } th { "state" } th { "class / lane" } th { "last decision" } } }
                tbody {
                    @for (r, last) in rows {
                        tr {
                            td {
                                a href=(run_href(&r.id)) { code { (r.id) } }
                                div.label { (text::short_line(&r.label, 120)) }
                            }
                            td { span class={ "badge state " (r.state.to_string()) } { (r.state.to_string()) } }
                            td { (text::line(&r.class)) " / " (r.lane) }
                            td {
                                @if let Some(d) = last {
                                    (text::line(&d.kind)) " at " time datetime=(d.at) { (text::line(&d.at)) }
                                    @if let Some(by) = &d.by { " by " (text::line(by)) }
                                    @if let Some(reason) = d.reason.as_deref().filter(|r| !r.trim().is_empty()) {
                                        div.words { (text::short_line(reason, 300)) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            (pager("/history", page, total, "runs"))
        }
    };
    Ok(layout("history", Nav::History, ctx, body))
}
