//! `GET /`: the runs waiting for a decision, oldest first.

use airlock_core::{Airlock, Result};
use maud::{Markup, html};

use super::{
    Nav, PAGE_SIZE, PageCtx, age, flag_label, layout, page_range, pager, past_the_end, run_href,
    text,
};

/// The queue's first page.
pub fn queue(al: &Airlock, ctx: &PageCtx) -> Result<Markup> {
    queue_page(al, 1, ctx)
}

/// Page `page` (from 1) of the queue: `PAGE_SIZE` runs, oldest first, with
/// how many more wait and links to them.
pub fn queue_page(al: &Airlock, page: usize, ctx: &PageCtx) -> Result<Markup> {
    let mut queue = airlock_core::inspect::queue(al)?;
    let total = queue.queue.len();
    let Some(range) = page_range(page, total) else {
        let body = html! { h1 { "Waiting for a decision" } (past_the_end("/", page, total)) };
        return Ok(layout("queue", Nav::Queue, ctx, body));
    };
    let after = total - range.end;
    queue.queue.truncate(range.end);
    queue.queue.drain(..range.start);
    let body = html! {
        h1 { "Waiting for a decision" }
        @if total == 0 {
            p.empty { "No runs are waiting for review." }
        } @else {
            p.lead {
                (total) " run(s), oldest first."
                @if after > 0 {
                    " " strong.more { (after) " more after these" } " (" (PAGE_SIZE) " a page)."
                }
            }
            (pager("/", page, total, "runs"))
            table.queue {
                thead { tr {
                    th { "run" } th { "class / lane" } th { "submitted" } th { "size" }
                    th { "gates" } th { "panel" } th { "risk" } th { "on approval" }
                } }
                tbody {
                    @for w in &queue.queue {
                        tr {
                            td {
                                a href=(run_href(&w.run)) { code { (w.run) } }
                                " r" (w.round)
                                div.label { (text::short_line(&w.label, 120)) }
                            }
                            td { (text::line(&w.class)) " / " (w.lane) }
                            td {
                                @if let Some(at) = &w.submitted {
                                    time datetime=(at) title=(at) { (age(at)) }
                                } @else { "?" }
                            }
                            td.num {
                                @match (w.glance.files, w.glance.lines) {
                                    (Some(f), Some(l)) => { (f) " file(s), " (l) " line(s)" }
                                    _ => "?",
                                }
                            }
                            td {
                                @for g in &w.glance.gates {
                                    span class={ "badge gate " (gate_class(&g.status)) } title=(g.status) {
                                        (text::line(&g.name))
                                        @if let Some(t) = &g.tests {
                                            " " (t.passed) "/" (t.passed + t.failed)
                                        }
                                    }
                                    " "
                                }
                            }
                            td {
                                @if let Some(p) = &w.glance.panel {
                                    span class={ "badge panel " (p) } { (p) }
                                } @else { "—" }
                            }
                            td {
                                @for f in &w.risk_flags { (flag_label(f)) " " }
                            }
                            td {
                                @if w.actions.is_empty() { "merge only" }
                                @for a in &w.actions { div.action { (text::line(a)) } }
                            }
                        }
                    }
                }
            }
            (pager("/", page, total, "runs"))
        }
    };
    Ok(layout("queue", Nav::Queue, ctx, body))
}

pub(crate) fn gate_class(status: &str) -> &'static str {
    match status {
        "passed" => "ok",
        "failed" | "timeout" | "error" => "bad",
        _ => "info",
    }
}
