//! `GET /`: the runs waiting for a decision, oldest first.

use airlock_core::{Airlock, Result};
use maud::{Markup, html};

use super::{Nav, PageCtx, age, flag_label, layout, run_href, text};

pub fn queue(al: &Airlock, ctx: &PageCtx) -> Result<Markup> {
    let queue = airlock_core::inspect::queue(al)?;
    let body = html! {
        h1 { "Waiting for a decision" }
        @if queue.queue.is_empty() {
            p.empty { "No runs are waiting for review." }
        } @else {
            p.lead { (queue.queue.len()) " run(s), oldest first." }
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
