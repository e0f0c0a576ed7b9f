//! `GET /stats`: the promotion metrics per class and the lane suggestions
//! (`airlock stats`, `airlock lanes suggest`).

use std::time::SystemTime;

use airlock_core::stats::{Move, Rate};
use airlock_core::{Airlock, Result};
use maud::{Markup, html};

use super::{Nav, PageCtx, layout, text};

pub fn stats(al: &Airlock, ctx: &PageCtx) -> Result<Markup> {
    let all = airlock_core::stats::stats(al.store.as_ref(), &Default::default())?;
    // The suggestions need the workflow's `[promotion]`; a workflow that
    // does not load leaves the metrics and says why.
    let suggestions = al.current_workflow().and_then(|w| {
        let settings = w.promotion.clone();
        let since = SystemTime::now()
            .checked_sub(settings.window)
            .map(|t| humantime::format_rfc3339_millis(t).to_string());
        let (records, rollbacks) =
            airlock_core::stats::window(al.store.as_ref(), since.as_deref())?;
        let classes: Vec<(String, Option<String>)> = w
            .classes
            .iter()
            .map(|c| (c.name.clone(), c.max_lane.clone()))
            .collect();
        Ok(airlock_core::stats::suggest(
            &settings, &classes, &records, &rollbacks,
        ))
    });
    let body = html! {
        h1 { "Stats" }
        h2 { "Runs per class" }
        @if all.classes.is_empty() {
            p.empty { "No runs yet." }
        } @else {
            table.stats {
                thead { tr {
                    th { "class" } th { "runs" } th { "reviewed" } th { "clean" } th { "reworked" }
                    th { "rejected" } th { "blocked" } th { "gate failed" } th { "promoted" }
                    th { "rolled back" } th { "time to decision" }
                } }
                tbody {
                    @for c in &all.classes {
                        tr {
                            td { (text::line(&c.class)) }
                            td.num { (c.runs) } td.num { (c.reviewed) }
                            td.num { (rate(&c.clean)) } td.num { (rate(&c.reworked)) }
                            td.num { (rate(&c.rejected)) } td.num { (rate(&c.blocked)) }
                            td.num { (rate(&c.gate_failed)) } td.num { (c.promoted) }
                            td.num { (rate(&c.rolled_back)) }
                            td.num {
                                @match c.time_to_decision.median_ms {
                                    Some(ms) => { (humantime::format_duration(std::time::Duration::from_secs(ms / 1000))) " (of " (c.time_to_decision.of) ")" }
                                    None => "—",
                                }
                            }
                        }
                    }
                }
            }
        }
        h2 { "Lane suggestions" }
        @match &suggestions {
            Err(e) => p.warn { "No suggestions: " (text::text(&e.to_string())) }
            Ok(list) if list.is_empty() => p.empty { "No classes." },
            Ok(list) => {
                table.suggest {
                    thead { tr { th { "class" } th { "max_lane" } th { "move" } th { "why" } } }
                    tbody {
                        @for s in list {
                            tr {
                                td { (text::line(&s.class)) @if !s.declared { " " span.badge.warn { "not declared" } } }
                                td { (s.lane) @if let Some(to) = &s.to { " → " (to) } }
                                td {
                                    @match s.direction {
                                        Move::Up => span.badge.ok { "up" },
                                        Move::Down => span.badge.danger { "down" },
                                        Move::Stay => span.badge.info { "stay" },
                                    }
                                }
                                td { ul { @for r in &s.reasons { li { (text::text(r)) } } } }
                            }
                        }
                    }
                }
                p.note { "Suggestions only: moving a class is a change to the workflow, yours to make." }
            }
        }
    };
    Ok(layout("stats", Nav::Stats, ctx, body))
}

fn rate(r: &Rate) -> String {
    match r.rate {
        Some(v) => format!("{:.0}% ({}/{})", v * 100.0, r.count, r.of),
        None => "—".into(),
    }
}
