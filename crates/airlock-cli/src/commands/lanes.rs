//! `airlock lanes suggest`: which classes' records meet the workflow's
//! `[promotion]` thresholds to move up one lane, and which should move down.
//! It suggests; moving a class is a human's change to the workflow.

use std::time::SystemTime;

use airlock_core::Result;
use airlock_core::stats::{Move, Suggestion, suggest, window};

use super::Ctx;
use crate::render::{Output, Report, clean};

#[derive(clap::Subcommand)]
pub enum Command {
    /// Classes ready to move up one lane and classes that should move down, with the numbers (changes nothing).
    Suggest,
}

pub fn run(ctx: &Ctx, command: Command) -> Result<Output> {
    match command {
        Command::Suggest => suggest_cmd(ctx),
    }
}

fn suggest_cmd(ctx: &Ctx) -> Result<Output> {
    let al = ctx.open()?;
    let workflow = al.current_workflow()?;
    let settings = workflow.promotion.clone();
    let since = SystemTime::now()
        .checked_sub(settings.window)
        .map(|t| humantime::format_rfc3339_millis(t).to_string());
    let (records, rollbacks) = window(al.store.as_ref(), since.as_deref())?;
    let classes: Vec<(String, Option<String>)> = workflow
        .classes
        .iter()
        .map(|c| (c.name.clone(), c.max_lane.clone()))
        .collect();
    Ok(Output::report(&Suggested {
        since,
        window_seconds: settings.window.as_secs(),
        thresholds: settings.clone(),
        classes: suggest(&settings, &classes, &records, &rollbacks),
    })
    .hostile())
}

#[derive(serde::Serialize)]
struct Suggested {
    /// The window's start (RFC 3339).
    since: Option<String>,
    window_seconds: u64,
    thresholds: airlock_core::promotion::PromotionSettings,
    classes: Vec<Suggestion>,
}

fn line(s: &Suggestion) -> String {
    let head = match (s.direction, &s.to) {
        (Move::Up, Some(to)) => format!("up    {}: max_lane {} -> {to}", clean(&s.class), s.lane),
        (Move::Down, Some(to)) => format!("down  {}: max_lane {} -> {to}", clean(&s.class), s.lane),
        _ if !s.declared => format!("-     {}: no max_lane", clean(&s.class)),
        _ => format!("stay  {}: max_lane {}", clean(&s.class), s.lane),
    };
    let mut out = head;
    out += &format!(
        " ({} run{}, {} reviewed)\n",
        s.record.runs,
        if s.record.runs == 1 { "" } else { "s" },
        s.record.reviewed
    );
    for r in &s.reasons {
        out += &format!("      {}\n", clean(r));
    }
    out
}

impl Report for Suggested {
    fn human(&self) -> String {
        let t = &self.thresholds;
        let mut out = format!(
            "thresholds ([promotion]): at least {} reviewed runs and {:.0}% clean in the last {}; down on {}{} rejections\n",
            t.min_runs,
            t.min_clean_rate * 100.0,
            days_or_duration(t.window),
            if t.demote_on_rollback {
                "a rollback or "
            } else {
                ""
            },
            t.demote_rejections
        );
        if self.classes.is_empty() {
            out += "no classes declared and no runs in the window";
            return out;
        }
        for s in &self.classes {
            out += &line(s);
        }
        out += "suggestions only: change `[classes.NAME] max_lane` in .airlock/workflow.toml to move a class";
        out
    }
}

/// `30d` for whole days, else humantime's form (`36h`).
fn days_or_duration(d: std::time::Duration) -> String {
    let secs = d.as_secs();
    if secs > 0 && secs.is_multiple_of(86_400) {
        format!("{}d", secs / 86_400)
    } else {
        humantime::format_duration(d).to_string()
    }
}
