//! `GET /runs/{id}` (and `?since=N`): everything about one run a reviewer
//! weighs, and the decision forms.

use airlock_core::inspect::{Shown, StatLine};
use airlock_core::logstore::{LogStore, Source};
use airlock_core::run::State;
use airlock_core::{Airlock, Result};
use maud::{Markup, html};

use super::diff::{self, FilePatch};
use super::highlight::{self, Lang};
use super::queue::gate_class;
use super::{Nav, PageCtx, flag_badge, layout, run_href, text};

/// Lines of a gate's output shown under it (the tail, as `airlock logs`).
const OUTPUT_LINES: usize = 40;

pub fn run(al: &Airlock, run_id: &str, since_round: Option<u32>, ctx: &PageCtx) -> Result<Markup> {
    let s = airlock_core::inspect::show(al, run_id, since_round)?;
    let diff = Fitted::new(&s);
    // Output another machine's commands printed is in the team's shared
    // log store (`[store] logs`), checked there against its digest.
    let shared = airlock_core::store_backend::log_store(&al.layout)
        .ok()
        .flatten();
    let events = al.store.events(Some(&s.run))?;
    let body = html! {
        (summary(&s))
        // The evidence first, the decision after it: a reviewer meets the
        // brief and the diff before the buttons (the link skips ahead).
        p.jump { a href="#decide" { "Decide ↓" } }
        (flags(&s))
        (brief(&s))
        (rounds(&s))
        (diff_section(&s, &diff))
        (check(&s, shared.as_ref()))
        (traces(&s))
        (actions(&s))
        (panel(&s))
        (proof(&s))
        (decisions(&s))
        (events_by(&s.run, &events))
        (signed_approvals(&s))
        (decide_forms(&s, ctx, diff.cut()))
    };
    Ok(layout(&format!("run {}", s.run), Nav::None, ctx, body))
}

fn summary(s: &Shown) -> Markup {
    html! {
        section.summary {
            h1 {
                "run " code { (s.run) }
                " " span class={ "badge state " (s.state.to_string()) } { (s.state.to_string()) }
                " round " (s.round)
            }
            p.label { (text::text(&s.label)) }
            dl.facts {
                dt { "class" } dd { (text::line(&s.class)) }
                dt { "lane" } dd {
                    (s.lane)
                    @if let Some(c) = &s.capabilities {
                        " (exec " (yes(c.exec)) ", worktree " (c.worktree.as_str())
                        ", submit " (yes(c.submit)) ", promote " (yes(c.promote)) ")"
                    }
                }
                dt { "branch" } dd { code { (text::line(&s.main_ref)) } " → " code { (text::line(&s.target)) } }
                dt { "base" } dd { code { (short(&s.base)) } }
                dt { "next" } dd { (text::text(&s.next)) }
                @if let Some(f) = &s.feedback {
                    dt { "last redirect" } dd { pre.words { (text::text(f)) } }
                }
            }
        }
    }
}

fn yes(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

fn short(id: &str) -> &str {
    &id[..id.len().min(12)]
}

fn flags(s: &Shown) -> Markup {
    html! {
        @if !s.risk_flags.is_empty() {
            section.flags {
                h2 { "Risk flags" }
                p.lead { "Weigh these before approving." }
                ul.flags {
                    @for f in &s.risk_flags {
                        li { (flag_badge(f)) " " span.message { (text::text(&f.message)) } }
                    }
                }
            }
        }
    }
}

/// The three decisions, each a plain POST form (no script needed). The
/// approve form carries the full digest of the proof this page shows, so
/// the server refuses it if the run changed since.
fn decide_forms(s: &Shown, ctx: &PageCtx, diff_cut: bool) -> Markup {
    let href = run_href(&s.run);
    let digest = s.submission.as_ref().map(|sub| sub.digest.as_str());
    html! {
        section #decide .decide {
            h2 { "Decision" }
            @match (s.state, digest) {
                (State::InReview, Some(digest)) => {
                    p {
                        "Approving approves exactly the proof "
                        code.digest { "sha256:" (digest) }
                        "; if the run changes before you submit, the approval is refused."
                    }
                    @if diff_cut {
                        p.warn.cut {
                            strong { "This page does not show the whole diff" }
                            " (it is too large for one page): read it whole with "
                            code { "airlock show " (s.run) } " before you approve."
                        }
                    }
                    div.forms {
                        form.approve method="post" action={ (href) "/approve" } {
                            input type="hidden" name="csrf" value=(ctx.csrf);
                            input type="hidden" name="digest" value=(digest);
                            label { "Reason (optional)" textarea name="reason" rows="2" maxlength="4096" {} }
                            button type="submit" { "Approve" }
                        }
                        form.reject method="post" action={ (href) "/reject" } {
                            input type="hidden" name="csrf" value=(ctx.csrf);
                            input type="hidden" name="digest" value=(digest);
                            label { "Reason (required)" textarea name="reason" rows="2" required maxlength="4096" {} }
                            button type="submit" { "Reject" }
                        }
                        form.redirect method="post" action={ (href) "/redirect" } {
                            input type="hidden" name="csrf" value=(ctx.csrf);
                            input type="hidden" name="digest" value=(digest);
                            label { "What to change (required; the agent reads it)" textarea name="reason" rows="2" required maxlength="4096" {} }
                            button type="submit" { "Redirect" }
                        }
                    }
                }
                _ => p.none { "No decision to make: the run is " (s.state.to_string()) "." }
            }
        }
    }
}

fn brief(s: &Shown) -> Markup {
    html! {
        section.brief {
            h2 { "Brief" }
            @if let Some(b) = &s.brief_parsed {
                @if let Some(t) = &b.title { p.title { (text::text(t)) } }
                h3 { "Objective" }
                pre.words { (text::text(&b.objective)) }
                @if !b.non_goals.is_empty() {
                    h3 { "Non-goals" }
                    ul { @for g in &b.non_goals { li { (text::text(g)) } } }
                }
                h3 { "Touch" }
                ul.paths { @for t in &b.touch { li { code { (text::line(t)) } } } }
                @if !b.assumptions.is_empty() {
                    h3 { "Assumptions" }
                    ul { @for a in &b.assumptions { li { (text::text(a)) } } }
                }
                details {
                    summary { "The brief as written" }
                    pre.source { (text::text(&s.brief)) }
                }
            } @else {
                p.warn { "The run's brief does not parse; shown as written." }
                pre.source { (text::text(&s.brief)) }
            }
        }
    }
}

fn rounds(s: &Shown) -> Markup {
    let href = run_href(&s.run);
    let earlier: Vec<u32> = s
        .submitted_rounds
        .iter()
        .copied()
        .filter(|r| *r < s.round)
        .collect();
    html! {
        @if !earlier.is_empty() {
            section.rounds {
                h2 { "Rounds" }
                p {
                    @if let Some(n) = s.since_round {
                        "Showing what changed since round " (n) ". "
                        a href=(href) { "Show the whole change" }
                    } @else {
                        "Compare with an earlier round: "
                        @for r in &earlier {
                            a href={ (href) "?since=" (r) } { "since round " (r) } " "
                        }
                    }
                }
            }
        }
    }
}

/// How much of a diff one page shows, in bytes of markup (about): far more
/// than a person reads line by line, little enough that a huge diff cannot
/// make the page too large for the browser or the server. Whole lines only
/// (a cut line could hide its end); what is left out is said, with where
/// to read it whole.
const DIFF_BUDGET: usize = 2 << 20;
/// The most files listed (or headed, once the budget is spent) on a page.
const FILES_LISTED: usize = 1000;

/// About what `line` adds to the page: its text, its span, and the mark
/// around each escape; a coloured line, what its colouring renders to.
fn line_cost(line: &str, lang: Option<Lang>) -> usize {
    if let Some(lang) = lang
        && let Some(code) = line.strip_prefix(['+', '-', ' '])
    {
        return 40 + highlight::line(lang, code).into_string().len();
    }
    let escapes = line
        .chars()
        .filter(|&c| text::needs_escape(c, true))
        .count();
    line.len() + 32 + escapes * 48
}

/// How many of each file's lines the page shows, whole lines within the
/// budget: first each file up to an equal share (so one huge file cannot
/// crowd the others off the page), then, in order, what is left.
fn lines_shown(files: &[FilePatch<'_>], langs: &[Option<Lang>]) -> Vec<usize> {
    let headers: usize = files
        .iter()
        .map(|f| f.header.iter().map(|h| line_cost(h, None)).sum::<usize>() + 256)
        .sum();
    let mut left = DIFF_BUDGET.saturating_sub(headers);
    let mut shown = vec![0; files.len()];
    let share = left / files.len().max(1);
    for pass_budget in [Some(share), None] {
        for (i, (f, lang)) in files.iter().zip(langs).enumerate() {
            let mut allowed = pass_budget.unwrap_or(left).min(left);
            for line in &f.lines[shown[i]..] {
                let cost = line_cost(line, *lang);
                if cost > allowed {
                    break;
                }
                allowed -= cost;
                left -= cost;
                shown[i] += 1;
            }
        }
    }
    shown
}

/// A run's patch cut into files, and how much of each the page shows.
struct Fitted<'a> {
    files: Vec<FilePatch<'a>>,
    /// numstat and the patch come from the same `diff-tree` (same trees, no
    /// renames): the same files in the same order.
    paired: bool,
    langs: Vec<Option<Lang>>,
    shown: Vec<usize>,
    /// The files given a section (the others are only counted).
    headed: usize,
}

impl<'a> Fitted<'a> {
    fn new(s: &'a Shown) -> Fitted<'a> {
        let files = diff::split(&s.diff.patch);
        let paired = files.len() == s.diff.stat.len();
        let langs: Vec<Option<Lang>> = (0..files.len())
            .map(|i| {
                let st = if paired { s.diff.stat.get(i) } else { None };
                st.and_then(|st| highlight::lang_for(&st.path))
            })
            .collect();
        let shown = lines_shown(&files, &langs);
        // Files past the budget get a header saying so, up to a count.
        let headed = files
            .iter()
            .zip(&shown)
            .enumerate()
            .filter(|(_, (f, n))| **n > 0 || f.lines.is_empty())
            .map(|(i, _)| i + 1)
            .max()
            .unwrap_or(0)
            .max(FILES_LISTED)
            .min(files.len());
        Fitted {
            files,
            paired,
            langs,
            shown,
            headed,
        }
    }

    fn lines_left_out(&self) -> usize {
        let total: usize = self.files.iter().map(|f| f.lines.len()).sum();
        total - self.shown.iter().sum::<usize>()
    }

    fn cut(&self) -> bool {
        self.lines_left_out() > 0 || self.headed < self.files.len()
    }
}

fn diff_section(s: &Shown, fitted: &Fitted<'_>) -> Markup {
    let Fitted {
        files,
        paired,
        shown,
        headed,
        ..
    } = fitted;
    let (paired, headed) = (*paired, *headed);
    let total: usize = files.iter().map(|f| f.lines.len()).sum();
    let left_out = fitted.lines_left_out();
    let whole = format!("airlock show {}", s.run);
    html! {
        section.diff {
            h2 {
                @match s.since_round {
                    Some(n) => { "Diff since round " (n) }
                    None => "Diff",
                }
                " " small { "(" (text::line(&s.head_label)) ")" }
            }
            @if fitted.cut() {
                p.warn.cut {
                    strong { "This change is too large to show whole on one page: " }
                    (left_out) " of its " (total) " lines"
                    @if headed < files.len() { " and " (files.len() - headed) " of its " (files.len()) " files" }
                    " are not shown. Read the whole diff with " code { (whole) } " before you decide."
                }
            }
            @if s.diff.stat.is_empty() {
                p.empty { "No changes." }
            } @else {
                nav.files {
                    ol {
                        @for (i, st) in s.diff.stat.iter().enumerate().take(FILES_LISTED) {
                            li {
                                a href={ "#file-" (i) } { code { (text::line(&st.path)) } }
                                " " (counts(st)) " " (path_flags(st))
                            }
                        }
                    }
                    @if s.diff.stat.len() > FILES_LISTED {
                        p.warn.cut { "… and " (s.diff.stat.len() - FILES_LISTED) " more files: " code { (whole) } " lists them all." }
                    }
                }
                @for (i, f) in files.iter().enumerate().take(headed) {
                    @let st = if paired { s.diff.stat.get(i) } else { None };
                    (file_section(i, f, st, paired, (shown[i], fitted.langs[i]), &whole))
                }
            }
        }
    }
}

fn counts(st: &StatLine) -> Markup {
    html! {
        @match (st.added, st.deleted) {
            (Some(a), Some(d)) => { span.added { "+" (a) } " " span.deleted { "−" (d) } }
            _ => span.badge.info { "binary" },
        }
    }
}

fn path_flags(st: &StatLine) -> Markup {
    html! {
        @if st.out_of_scope {
            span.badge.danger title="matches none of the brief's touch patterns" { "out of scope" } " "
        }
        @if !st.protected.is_empty() {
            span.badge.danger title={ "protected: " (st.protected.join(", ")) } { "protected" } " "
        }
    }
}

/// A file's diff, its first `shown` lines (the rest said, with `whole`,
/// the command that shows them).
fn file_section(
    i: usize,
    f: &FilePatch<'_>,
    st: Option<&StatLine>,
    paired: bool,
    (shown, lang): (usize, Option<Lang>),
    whole: &str,
) -> Markup {
    let shown = shown.min(f.lines.len());
    let left_out = f.lines.len() - shown;
    let cut = FilePatch {
        header: f.header.clone(),
        lines: f.lines[..shown].to_vec(),
    };
    let f = &cut;
    html! {
        article.file id={ "file-" (i) } {
            header {
                @if let Some(st) = st {
                    code.path { (text::line(&st.path)) } " " (counts(st)) " " (path_flags(st))
                } @else if !paired {
                    code.path { (text::line(f.header[0])) }
                }
                a.top href="#decide" { "decide ↓" }
            }
            (diff::render(f, lang))
            @if left_out > 0 {
                p.warn.cut { (left_out) " more lines of this file are not shown here (the page has a size limit): read them with " code { (whole) } "." }
            }
        }
    }
}

fn check(s: &Shown, shared: Option<&LogStore>) -> Markup {
    html! {
        section.check {
            @match &s.check {
                None => { h2 { "Check" } p { "Not run in this round." } }
                Some(report) => {
                    h2 {
                        "Check (round " (report.round) ") "
                        @if report.passed { span.badge.ok { "passed" } } @else { span.badge.danger { "FAILED" } }
                    }
                    h3 { "Gates" }
                    @for g in &report.gates {
                        details.gate open[g.status != "passed"] {
                            summary {
                                span class={ "badge " (gate_class(&g.status)) } { (text::line(&g.status)) }
                                " " strong { (text::line(&g.name)) }
                                " " code { (text::short_line(&g.command, 120)) }
                                " " (g.duration_ms) " ms"
                                @if let Some(t) = &g.tests {
                                    " · tests " (t.passed) " passed, " (t.failed) " failed, " (t.skipped) " skipped"
                                }
                            }
                            @if let Some(snap) = &g.snapshot {
                                p {
                                    "snapshot " code { (text::line(&snap.name)) } ": " (text::line(&snap.decision))
                                    " (+" (snap.added) " −" (snap.removed) ")"
                                }
                                @for n in &snap.notes { pre.output { (text::text(n)) } }
                            }
                            (gate_output(s, g.trace, shared))
                        }
                    }
                    h3 { "Stop conditions" }
                    ul.stops {
                        @for st in &report.stops {
                            li {
                                @if st.passed { span.badge.ok { "ok" } } @else { span.badge.danger { "FAIL" } }
                                " " (text::line(&st.name))
                                @for f in &st.findings { div.finding { (text::text(f)) } }
                                @for n in &st.notes { div.note { (text::text(n)) } }
                            }
                        }
                    }
                    @if !report.conditions.is_empty() {
                        h3 { "Conditions" }
                        ul.conditions {
                            @for c in &report.conditions {
                                li {
                                    @if c.held { span.badge.warn { "held" } } @else { span.badge.ok { "not held" } }
                                    " " code { (text::line(&c.id)) } " " (text::text(&c.describe()))
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The tail of a gate's stdout and stderr (bounded), from its trace's logs:
/// this machine's, else the shared store's copy. A log that does not hash to
/// its trace's digest is named, never shown.
fn gate_output(s: &Shown, trace: Option<u32>, shared: Option<&LogStore>) -> Markup {
    let Some(t) = trace.and_then(|n| s.traces.iter().find(|t| t.n == n)) else {
        return html! {};
    };
    html! {
        @for (name, rec) in [("stdout", &t.stdout), ("stderr", &t.stderr)] {
            @if rec.size > 0 {
                @match airlock_core::logstore::read_log(&rec.log, &rec.sha256, shared) {
                    Ok(Some((bytes, source))) => {
                        @let (lines, cut) = airlock_core::logs::lines_of(&bytes, Some(OUTPUT_LINES));
                        div.stream {
                            span.stream-name {
                                (name) " (" (rec.size) " B" @if cut { ", last " (lines.len()) " lines" }
                                @if matches!(source, Source::Shared(_)) { ", from the shared log store" }
                                ")"
                            }
                            pre.output { @for l in &lines { (text::text(l)) "\n" } }
                        }
                    }
                    Ok(None) if rec.log.exists() => p.refused {
                        (name) ": the log no longer matches the sha256 its trace recorded; it is not shown"
                    },
                    Ok(None) => p.warn {
                        (name) ": the log is not on this machine"
                        @if shared.is_none() { " (a team names a shared log store: [store] logs)" }
                        @else { " nor in the shared log store" }
                    },
                    Err(e) => p.refused { (name) ": " (text::text(&e.to_string())) " (" (e.code().to_string()) ")" },
                }
            }
        }
    }
}

fn traces(s: &Shown) -> Markup {
    html! {
        section.traces {
            h2 {
                @match s.since_round { Some(n) => { "Traces after round " (n) } None => "Traces" }
            }
            @if s.traces.is_empty() { p.empty { "None." } }
            @else {
                table.traces {
                    thead { tr { th { "#" } th { "round" } th { "origin" } th { "command" } th { "exit" } th { "ms" } th { "notes" } } }
                    tbody {
                        @for t in &s.traces {
                            tr {
                                td { (t.n) } td { (t.round) } td { (text::line(&t.origin)) }
                                td { code { (text::short_line(&airlock_core::hostile::shell_words(&t.argv), 200)) } }
                                td { (text::line(&t.exit.description)) } td.num { (t.duration_ms) }
                                td {
                                    @if !t.confinement.is_empty() && t.confinement != "confined" {
                                        span.badge.danger { "sandbox: " (text::line(&t.confinement)) } " "
                                    }
                                    @if t.network { span.badge.warn { "network granted" } " " }
                                    @if let Some(hosts) = &t.egress {
                                        span.badge.info { "only " (text::line(&hosts.join(", "))) } " "
                                    }
                                    @if let Some(l) = &t.limit_hit { span.badge.danger { "limit: " (text::line(l)) } " " }
                                    @for d in &t.denials { div.note { "denied: " (text::short_line(d, 300)) } }
                                    @if !t.files_changed.is_empty() {
                                        div.note {
                                            "changed "
                                            @for f in &t.files_changed { code { (f.status) " " (text::line(&f.path)) } " " }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            @if !s.egress.is_empty() {
                h3 { "Network (through the egress proxy)" }
                ul.egress {
                    @for r in &s.egress.reached {
                        li { "reached " code { (text::line(&r.host)) ":" (r.port) } ": " (r.connections) " connection(s), " (r.bytes_up) " B up, " (r.bytes_down) " B down" }
                    }
                    @for r in &s.egress.refused {
                        li.refused {
                            span.badge.danger { "refused" } " #" (r.trace) " " code { (text::line(&r.host)) ":" (r.port) } ": " (text::text(&r.reason))
                            @if let Some(a) = &r.allow_with { " (to allow: " (text::line(a)) ")" }
                        }
                    }
                }
            }
            @if !s.mcp_calls.is_empty() {
                h3 { "MCP calls" }
                ul.mcp {
                    @for c in &s.mcp_calls {
                        @let field = |k: &str| c.record[k].as_str().unwrap_or("?").to_string();
                        li {
                            (text::line(&c.at)) " " (text::line(&field("decision"))) " "
                            code { (text::line(&field("server"))) "/" (text::line(&field("tool"))) }
                            ": " (text::short_line(&field("why"), 300))
                        }
                    }
                }
            }
        }
    }
}

fn actions(s: &Shown) -> Markup {
    html! {
        section.actions {
            h2 { "Actions " small { "(side effects, performed only at promotion)" } }
            @if s.listed.is_empty() { p.empty { "None." } }
            @for a in &s.listed {
                article.action {
                    h3 {
                        "#" (a.seq) " " code { (text::line(&a.spec.name)) }
                        " (" (a.spec.body.kind()) ") "
                        span.badge.info { (a.state.as_str()) }
                        @if a.role == airlock_core::action::Role::Undo { " " span.badge.info { "undo" } }
                    }
                    @if let Some(d) = &a.spec.description { p { (text::text(d)) } }
                    p.meta { "digest " code { (short(&a.digest)) } ", preview sha256 " code { (short(&a.preview_sha256)) } }
                    pre.preview { (text::text(&a.preview)) }
                    p {
                        "rehearsal: " (text::line(&a.rehearsal.status)) " — " (text::text(&a.rehearsal.summary))
                    }
                    @if !a.rehearsal.detail.is_empty() { pre.output { (text::text(&a.rehearsal.detail)) } }
                }
            }
        }
    }
}

fn panel(s: &Shown) -> Markup {
    html! {
        @for (d, on) in s.panel.iter().map(|d| (d, "submitted tree")).chain(s.panel_at_promote.iter().map(|d| (d, "merged tree, at promote"))) {
            section.panel {
                h2 { "Panel (" (on) "): " span class={ "badge panel " (d.outcome.as_str()) } { (d.outcome.as_str()) } }
                p { (text::text(&d.reason)) }
                table.verdicts {
                    thead { tr { th { "perspective" } th { "weight" } th { "vote" } } }
                    tbody {
                        @for v in &d.verdicts {
                            tr {
                                td { (text::line(&v.perspective)) @if v.veto { " " span.badge.warn { "veto" } } }
                                td.num { (airlock_core::panel::fmt(v.weight)) }
                                td { (v.vote.map_or("abstains", |v| v.as_str())) }
                            }
                        }
                    }
                }
                @if d.votes.is_empty() { p { "Votes: none (no rule held)." } }
                ul.votes {
                    @for v in &d.votes {
                        li {
                            span.badge.info { (v.vote.as_str()) } " " (text::line(&v.perspective)) " #" (v.rule) ": " (text::text(&v.rationale))
                            @if let Some(e) = &v.error { div.note { "not evaluated: " (text::text(e)) } }
                        }
                    }
                }
            }
        }
    }
}

fn proof(s: &Shown) -> Markup {
    html! {
        section.proof {
            h2 { "Proof" }
            @match &s.proof {
                None => p { "None yet (made by " code { "airlock submit" } ")." },
                Some(p) => {
                    p { "digest " code.digest { "sha256:" (p.digest) } }
                    @if p.verified {
                        p { span.badge.ok { "verified" } " signatures, envelope index, commit, tree, diff and brief digests" }
                    } @else {
                        p {
                            span.badge.danger { "DOES NOT VERIFY" } " "
                            (text::text(&p.error.clone().unwrap_or_else(|| p.failing())))
                        }
                    }
                    @if let Some(checks) = &p.checks {
                        ul.proof-checks {
                            @for c in checks {
                                li { @if c.ok { "✓ " } @else { "✗ " } (text::line(&c.name)) ": " (text::text(&c.detail)) }
                            }
                        }
                    }
                }
            }
            @if let Some(a) = &s.approval {
                p { "approved for " code { "sha256:" (short(&a.digest)) } " at " (text::line(&a.at)) }
            }
            @if let Some(p) = &s.promotion {
                p { "promoted into " code { (text::line(&p.target)) } " as " code { (short(&p.merge)) } " (" (text::line(&p.strategy)) ")" }
            }
        }
    }
}

/// Team mode: the signed approvals and what the owners' rules still miss.
fn signed_approvals(s: &Shown) -> Markup {
    html! {
        @if let Some(st) = &s.signed_approvals {
            section.approvals {
                h2 { "Signed approvals" }
                p { "Rules of " (text::line(&st.target)) " at " code { (short(&st.tip)) } }
                @if st.approvals.is_empty() { p.empty { "No signed approval yet." } }
                ul {
                    @for a in &st.approvals {
                        li { (text::line(&a.principal)) " with " code { (text::line(&a.key)) } }
                    }
                    @for (seq, why, _) in &st.refused {
                        li.refused { "Event " (seq) " does not count: " (text::line(why)) }
                    }
                }
                @let missing = st.missing();
                @if !missing.is_empty() {
                    h3 { "Missing" }
                    ul.missing { @for m in &missing { li { (text::line(m)) } } }
                }
            }
        }
        @if let Some(p) = &s.approvals_problem {
            section.approvals { h2 { "Signed approvals" } p.refused { (text::line(p)) } }
        }
    }
}

/// Events listed on the page at most; `airlock log RUN` has them all.
const EVENTS_LISTED: usize = 200;

/// The run's ledger events and who made each (`data.who`: the principal
/// and the machine's key, issue 20), as `airlock log RUN` lists them: in
/// team mode several people and machines act on one run.
fn events_by(run: &str, events: &[airlock_core::ledger::Event]) -> Markup {
    let field = |e: &airlock_core::ledger::Event, key: &str| {
        e.data["who"][key].as_str().map(str::to_string)
    };
    html! {
        section.events {
            h2 { "Ledger" }
            @if events.is_empty() { p.empty { "No events." } }
            @else {
                table.events {
                    thead { tr { th { "#" } th { "at" } th { "event" } th { "by" } th { "machine" } } }
                    tbody {
                        @for e in events.iter().take(EVENTS_LISTED) {
                            tr {
                                td.num { (e.seq) }
                                td { time datetime=(e.ts) { (text::line(&e.ts)) } }
                                td { (text::line(&e.kind)) }
                                td { @match field(e, "principal") { Some(p) => (text::line(&p)), None => span.empty { "?" } } }
                                td { @if let Some(m) = field(e, "machine") { code { (text::short_line(&m, 60)) } } }
                            }
                        }
                    }
                }
                @if events.len() > EVENTS_LISTED {
                    p.warn.cut { "… and " (events.len() - EVENTS_LISTED) " more: " code { "airlock log " (run) } " lists them all." }
                }
            }
        }
    }
}

fn decisions(s: &Shown) -> Markup {
    html! {
        section.history {
            h2 { "History" }
            @if s.decisions.is_empty() { p.empty { "No decisions yet." } }
            ol.decisions {
                @for d in &s.decisions {
                    li {
                        time datetime=(d.at) { (text::line(&d.at)) } " "
                        strong { (text::line(&d.kind)) } " round " (d.round)
                        @if let Some(by) = d.by.as_ref().or(d.who.as_ref()) { " by " (text::line(by)) }
                        // In team mode the principal (`who`) is whom the rules know.
                        @if let (Some(by), Some(who)) = (&d.by, &d.who) && !by.contains(who.as_str()) {
                            " (principal " (text::line(who)) ")"
                        }
                        @if let Some(c) = &d.commit { " (" code { (short(c)) } ")" }
                        @if let Some(r) = d.reason.as_deref().filter(|r| !r.trim().is_empty()) {
                            blockquote.words { (text::text(r)) }
                        }
                    }
                }
            }
        }
    }
}
