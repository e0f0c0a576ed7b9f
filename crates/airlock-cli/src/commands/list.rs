//! `airlock list` (alias `status`): every run, its state and what moves it on.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use airlock_core::Result;
use airlock_core::run::{Run, State};

use super::Ctx;
use crate::render::{Output, Report, clean};

#[derive(clap::Args)]
pub struct Args {
    /// Only runs in this state (repeatable): drafted, staged, checked,
    /// in_review, approved, promoted, rolled_back, rejected; or `active`
    /// (not finished) or `finished`.
    #[arg(long = "state", value_name = "STATE")]
    states: Vec<String>,
}

/// The command that moves a run on, short enough for a column.
fn next(state: State) -> &'static str {
    match state {
        State::Drafted => "start",
        State::Staged => "check",
        State::Checked => "submit",
        State::InReview => "approve, reject or redirect",
        State::Approved => "promote",
        State::Promoted => "- (rollback possible)",
        State::RolledBack | State::Rejected => "-",
    }
}

fn finished(state: State) -> bool {
    airlock_core::gc::FINISHED.contains(&state)
}

/// `3d`, `5h`, `12m`, `40s`: the largest unit, rounded down.
pub fn age(since: &str, now: SystemTime) -> String {
    let Some(d) = humantime::parse_rfc3339(since)
        .ok()
        .and_then(|t| now.duration_since(t).ok())
    else {
        return "?".into();
    };
    let s = d.as_secs();
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        3600..86400 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86400),
    }
}

/// The states `--state` asks for; empty for all.
fn wanted(filters: &[String]) -> Result<Vec<State>> {
    let mut states = Vec::new();
    for f in filters {
        match f.as_str() {
            "active" => states.extend(State::ALL.into_iter().filter(|s| !finished(*s))),
            "finished" => states.extend(State::ALL.into_iter().filter(|s| finished(*s))),
            other => states.push(State::parse(other).ok_or_else(|| {
                airlock_core::Error::Invalid(format!(
                    "`--state {other}` names no state: use drafted, staged, checked, in_review, approved, promoted, rolled_back, rejected, active or finished"
                ))
            })?),
        }
    }
    Ok(states)
}

pub fn run(ctx: &Ctx, args: Args) -> Result<Output> {
    let filters = wanted(&args.states)?;
    let al = ctx.open()?;
    let runs: Vec<Run> = al
        .store
        .list()?
        .into_iter()
        .filter(|r| filters.is_empty() || filters.contains(&r.state))
        .collect();
    let now = SystemTime::now();
    let items = runs
        .iter()
        .map(|r| ListedRun {
            run: r.id.clone(),
            state: r.state,
            round: r.round,
            label: r.label.clone(),
            class: r.class.clone(),
            lane: r.lane.clone(),
            created: r.created.clone(),
            age_seconds: humantime::parse_rfc3339(&r.created)
                .ok()
                .and_then(|t| now.duration_since(t).ok())
                .map(|d: Duration| d.as_secs()),
            worktree: r.worktree.exists().then(|| r.worktree.clone()),
            next: r.state.next_step(&r.id),
            age: age(&r.created, now),
        })
        .collect();
    Ok(Output::report(&Listed {
        runs: items,
        filtered: !filters.is_empty(),
    })
    .hostile())
}

/// `airlock list`: every run (or those in the states asked for).
#[derive(serde::Serialize)]
struct Listed {
    runs: Vec<ListedRun>,
    #[serde(skip)]
    filtered: bool,
}

#[derive(serde::Serialize)]
struct ListedRun {
    run: String,
    state: State,
    round: u32,
    label: String,
    class: String,
    lane: String,
    created: String,
    age_seconds: Option<u64>,
    /// Gone once `gc` removed it.
    worktree: Option<PathBuf>,
    next: String,
    /// `3d`: the age column.
    #[serde(skip)]
    age: String,
}

impl Report for Listed {
    fn human(&self) -> String {
        let rows: Vec<[String; 6]> = self
            .runs
            .iter()
            .map(|r| {
                [
                    r.run.clone(),
                    r.state.to_string(),
                    clean(&r.class),
                    clean(&r.lane),
                    r.age.clone(),
                    next(r.state).to_string(),
                ]
            })
            .collect();
        let mut human = String::new();
        if self.runs.is_empty() {
            human += if self.filtered {
                "no runs in that state"
            } else {
                "no runs yet: start one with `airlock start BRIEF.toml`"
            };
        } else {
            let header = ["RUN", "STATE", "CLASS", "LANE", "AGE", "NEXT"].map(String::from);
            let mut widths = [0usize; 6];
            for row in std::iter::once(&header).chain(&rows) {
                for (w, cell) in widths.iter_mut().zip(row) {
                    *w = (*w).max(cell.chars().count());
                }
            }
            for row in std::iter::once(&header).chain(&rows) {
                let mut line = String::new();
                for (i, (cell, w)) in row.iter().zip(widths).enumerate() {
                    if i + 1 == row.len() {
                        line += cell;
                    } else {
                        line += &format!("{cell:<w$}  ");
                    }
                }
                human += line.trim_end();
                human += "\n";
            }
            human += "a unique start of a run's id names it: `airlock show RUN` for one run";
        }
        human
    }
}
