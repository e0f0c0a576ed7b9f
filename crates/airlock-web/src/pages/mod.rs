//! The pages, rendered on the server with `maud` (which escapes every
//! interpolated string); everything the agent wrote goes through `text`
//! (the model's `hostile` rule) first, so control, bidirectional and
//! invisible characters are shown, each escape marked.
//!
//! Each page is a pure function of the engine's state: the server opens
//! the repository per request and calls one of them. Links and forms name
//! exactly the server's routes (`/`, `/runs/{id}`, `/runs/{id}?since=N`,
//! `/history`, `/stats`, `/static/{name}`, `POST /runs/{id}/approve|reject|redirect`).

use maud::{DOCTYPE, Markup, html};

pub mod diff;
pub mod highlight;
mod history;
mod queue;
mod run;
mod stats;
pub mod text;

pub use history::{history, history_page};
pub use queue::{queue, queue_page};
pub use run::run;
pub use stats::stats;

/// What every page needs from the server: the session's anti-forgery token
/// (each form carries it), a one-time message after a decision, and who is
/// signed in (for the header).
#[derive(Debug, Clone, Default)]
pub struct PageCtx {
    pub csrf: String,
    pub flash: Option<Flash>,
    pub user: String,
}

/// A message shown once at the top of the next page (after a POST's redirect).
#[derive(Debug, Clone)]
pub struct Flash {
    pub ok: bool,
    pub text: String,
}

/// Which entry of the navigation a page belongs to.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Nav {
    Queue,
    History,
    Stats,
    None,
}

/// The frame of every page: the header with the user and the navigation,
/// the flash, then `body`. No inline script or style (the CSP forbids it).
pub(crate) fn layout(title: &str, nav: Nav, ctx: &PageCtx, body: Markup) -> Markup {
    let item = |to: Nav, href: &str, label: &str| {
        html! {
            @if nav == to { a href=(href) aria-current="page" { (label) } }
            @else { a href=(href) { (label) } }
        }
    };
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { "airlock: " (text::short_line(title, 80)) }
                link rel="stylesheet" href="/static/app.css";
                script src="/static/app.js" defer {}
            }
            body {
                header.top {
                    a.brand href="/" { "airlock" }
                    nav {
                        (item(Nav::Queue, "/", "Queue"))
                        (item(Nav::History, "/history", "History"))
                        (item(Nav::Stats, "/stats", "Stats"))
                    }
                    span.user title="who decisions are recorded as" { (text::line(&ctx.user)) }
                }
                @if let Some(flash) = &ctx.flash {
                    div class={ "flash " (if flash.ok { "ok" } else { "bad" }) } role="status" {
                        (text::text(&flash.text))
                    }
                }
                main { (body) }
            }
        }
    }
}

/// A page that explains a refusal or an error: what went wrong, why, and
/// what to do next, as the CLI's errors do. Every string is shown as text
/// (escapes marked): a reason may quote what the agent wrote.
pub fn error_page(status: u16, what: &str, why: &[String], next: &str) -> Markup {
    let body = html! {
        section.error {
            h1 { span.status { (status) } " " (text::line(what)) }
            @if !why.is_empty() {
                ul.why { @for w in why { li { (text::text(w)) } } }
            }
            p.next { (text::text(next)) }
            p { a href="/" { "Back to the queue" } }
        }
    };
    layout(what, Nav::None, &PageCtx::default(), body)
}

/// The files under `/static/`: our own stylesheet and script, embedded.
pub fn asset(name: &str) -> Option<(&'static str, &'static [u8])> {
    match name {
        "app.css" => Some((
            "text/css; charset=utf-8",
            include_bytes!("../../assets/app.css"),
        )),
        "app.js" => Some((
            "text/javascript; charset=utf-8",
            include_bytes!("../../assets/app.js"),
        )),
        _ => None,
    }
}

/// Rows on one page of the queue or the history (`?page=N` for the rest):
/// a page stays quick to render and to read however many runs there are.
pub const PAGE_SIZE: usize = 100;

/// Page `page` (from 1) of `total` rows: the range of rows it shows, or
/// `None` when the page is past the last one (page 1 always exists).
pub(crate) fn page_range(page: usize, total: usize) -> Option<std::ops::Range<usize>> {
    let start = page.checked_sub(1)?.checked_mul(PAGE_SIZE)?;
    if start >= total && page != 1 {
        return None;
    }
    Some(start.min(total)..(start.saturating_add(PAGE_SIZE)).min(total))
}

/// The links between the pages of `path` (`?page=N`), with where this one
/// is; nothing when everything fits on one page.
pub(crate) fn pager(path: &str, page: usize, total: usize, what: &str) -> Markup {
    let pages = total.div_ceil(PAGE_SIZE).max(1);
    let shown = page_range(page, total).unwrap_or(0..0);
    html! {
        @if pages > 1 {
            nav.pager aria-label="pages" {
                @if page > 1 { a rel="prev" href={ (path) "?page=" (page - 1) } { "← previous page" } " " }
                span { "page " (page) " of " (pages) " (" (what) " " (shown.start + 1) "–" (shown.end) " of " (total) ")" }
                @if page < pages { " " a rel="next" href={ (path) "?page=" (page + 1) } { "next page →" } }
            }
        }
    }
}

/// A page number past the last page: said, with the way back.
pub(crate) fn past_the_end(path: &str, page: usize, total: usize) -> Markup {
    let pages = total.div_ceil(PAGE_SIZE).max(1);
    html! {
        p.empty {
            "There is no page " (page) ": " (total) " run(s) fill " (pages) " page(s). "
            a href=(path) { "Back to the first page" }
        }
    }
}

/// `/runs/{id}`: run ids are airlock's own (checked by the store), but the
/// link is built as any URL path segment would be.
pub(crate) fn run_href(id: &str) -> String {
    let mut href = String::from("/runs/");
    for b in id.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            href.push(b as char);
        } else {
            href.push_str(&format!("%{b:02X}"));
        }
    }
    href
}

/// `2h 5m ago` from an RFC 3339 time (`?` when it does not parse).
pub(crate) fn age(at: &str) -> String {
    let Ok(then) = humantime::parse_rfc3339_weak(at) else {
        return "?".into();
    };
    let Ok(elapsed) = std::time::SystemTime::now().duration_since(then) else {
        return "just now".into();
    };
    let secs = elapsed.as_secs();
    let (d, h, m) = (secs / 86_400, secs / 3600 % 24, secs / 60 % 60);
    match (d, h, m) {
        (0, 0, 0) => "just now".into(),
        (0, 0, m) => format!("{m}m ago"),
        (0, h, m) => format!("{h}h {m}m ago"),
        (d, h, _) => format!("{d}d {h}h ago"),
    }
}

/// A risk flag as a badge: its code, its message as the tooltip and text.
/// A risk flag's badge: its code shown, its message (the agent's text
/// among it, escaped onto one line) as the badge's `title`.
pub(crate) fn flag_badge(flag: &airlock_core::decide::RiskFlag) -> Markup {
    html! {
        span class={ "badge flag " (flag_class(flag.code)) } title=(flag_title(flag)) { (flag.code) }
    }
}

/// A risk flag in a table cell: a short label, the message as its `title`
/// (hovered or read by a screen reader), the code in its class.
pub(crate) fn flag_label(flag: &airlock_core::decide::RiskFlag) -> Markup {
    html! {
        span class={ "badge flag " (flag_class(flag.code)) " " (flag.code) } title=(flag_title(flag)) {
            (flag_short(flag.code))
        }
    }
}

fn flag_title(flag: &airlock_core::decide::RiskFlag) -> String {
    format!(
        "{}: {}",
        flag.code,
        airlock_core::hostile::one_line(&flag.message, 300)
    )
}

/// A few words for a flag's code, for a narrow column.
fn flag_short(code: &str) -> &str {
    match code {
        "secret-allowed-inline" => "secret allowed",
        "protected-path" => "protected path",
        "weaker-sandbox" => "weaker sandbox",
        "brief-network" => "network",
        "checks-failed-first" => "failed first",
        "condition-needs-review" => "condition: review",
        "condition-warn" => "condition",
        other => other,
    }
}

fn flag_class(code: &str) -> &'static str {
    match code {
        "secret-allowed-inline" | "protected-path" | "weaker-sandbox" => "danger",
        "checks-failed-first" | "brief-network" | "condition-needs-review" => "warn",
        _ => "info",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_page_shows_hostile_reasons_as_text() {
        let html = error_page(
            404,
            "no run <b>x</b>",
            &["id \u{202e}<script>alert(1)</script>".into()],
            "list runs",
        )
        .into_string();
        assert!(!html.contains("<script>alert"), "{html}");
        assert!(html.contains("&lt;script&gt;"));
        assert!(html.contains("title=\"U+202E\""));
    }

    #[test]
    fn assets_are_ours_and_nothing_else() {
        assert!(asset("app.css").is_some_and(|(t, b)| t.starts_with("text/css") && !b.is_empty()));
        assert!(asset("app.js").is_some());
        assert!(asset("../Cargo.toml").is_none());
        assert_eq!(run_href("r-1/../x"), "/runs/r-1%2F..%2Fx");
    }

    #[test]
    fn pages_hold_page_size_rows_and_link_each_other() {
        assert_eq!(page_range(1, 0), Some(0..0));
        assert_eq!(page_range(1, 100), Some(0..100));
        assert_eq!(page_range(2, 100), None);
        assert_eq!(page_range(2, 250), Some(100..200));
        assert_eq!(page_range(3, 250), Some(200..250));
        assert_eq!(page_range(4, 250), None);
        assert_eq!(page_range(0, 250), None);
        assert_eq!(page_range(usize::MAX, 250), None);
        // One page: no links.
        assert_eq!(pager("/history", 1, 100, "runs").into_string(), "");
        let first = pager("/history", 1, 250, "runs").into_string();
        assert!(!first.contains("rel=\"prev\""), "{first}");
        assert!(first.contains("href=\"/history?page=2\""), "{first}");
        assert!(first.contains("page 1 of 3 (runs 1–100 of 250)"), "{first}");
        let last = pager("/", 3, 250, "runs").into_string();
        assert!(last.contains("rel=\"prev\" href=\"/?page=2\""), "{last}");
        assert!(!last.contains("rel=\"next\""), "{last}");
        assert!(last.contains("page 3 of 3 (runs 201–250 of 250)"), "{last}");
        let past = past_the_end("/history", 4, 250).into_string();
        assert!(
            past.contains("There is no page 4: 250 run(s) fill 3 page(s)."),
            "{past}"
        );
    }
}
