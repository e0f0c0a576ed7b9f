//! Promotion metrics: each class's record read from the ledger (`airlock
//! stats`), and the lane moves that record suggests (`airlock lanes
//! suggest`). Reads only; nothing here changes the workflow.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use serde::Serialize;

use crate::error::{Error, Result};
use crate::store::Store;
use crate::store::history::{StepFilter, StepRow};

/// A share with the number it is a share of: a rate is never shown without
/// its sample size.
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct Rate {
    /// How many of `of` (none when `of` is zero).
    pub rate: Option<f64>,
    pub count: u64,
    pub of: u64,
}

impl Rate {
    pub fn new(count: u64, of: u64) -> Rate {
        Rate {
            rate: (of > 0).then(|| count as f64 / of as f64),
            count,
            of,
        }
    }
}

/// The median of some durations, with how many there were.
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct Median {
    pub median_ms: Option<u64>,
    pub of: u64,
}

/// One class's record over the runs selected.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ClassStats {
    pub class: String,
    /// Runs started.
    pub runs: u64,
    /// Runs a reviewer decided on at least once (approve, reject or
    /// redirect): the sample of the review rates.
    pub reviewed: u64,
    /// Reviewed runs approved in their first round, never redirected or
    /// rejected: the clean pass rate.
    pub clean: Rate,
    /// Redirects: rounds sent back to the agent.
    pub rework_rounds: u64,
    /// Reviewed runs redirected at least once.
    pub reworked: Rate,
    /// Reviewed runs rejected.
    pub rejected: Rate,
    /// Runs a check failed on a stop condition, and how many runs each
    /// condition stopped (a run stopped by two counts once in `blocked`).
    pub blocked: Rate,
    pub blocked_by: BTreeMap<String, u64>,
    /// Runs with at least one failed gate.
    pub gate_failed: Rate,
    pub promoted: u64,
    /// Promoted runs rolled back.
    pub rolled_back: Rate,
    /// From each submit to the review decision on it.
    pub time_to_decision: Median,
    /// The last rollback in the selection (its ledger time).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_rollback: Option<String>,
}

impl ClassStats {
    /// The record as the evidence document carries it (conditions and the
    /// panel read it): `runs` is the reviewed runs, the sample of
    /// `clean_rate`, which is 0 with no sample.
    pub fn record(&self) -> airlock_model::evidence::ClassRecord {
        airlock_model::evidence::ClassRecord {
            runs: self.reviewed,
            clean: self.clean.count,
            clean_rate: self.clean.rate.unwrap_or(0.0),
            rework_rounds: self.rework_rounds,
            rejected: self.rejected.count,
            blocked: self.blocked.count,
            promoted: self.promoted,
            rolled_back: self.rolled_back.count,
        }
    }
}

/// Every class's record, sorted by class.
#[derive(Debug, Clone, Serialize)]
pub struct Stats {
    /// Runs created at or after this time (RFC 3339), if limited.
    pub since: Option<String>,
    pub class: Option<String>,
    pub classes: Vec<ClassStats>,
}

/// Reads the records of the runs `filter` selects.
pub fn stats(store: &dyn Store, filter: &StepFilter) -> Result<Stats> {
    let mut records = Records::default();
    store.for_each_step(filter, &mut |row| records.push(row))?;
    Ok(Stats {
        since: filter.since.clone(),
        class: filter.class.clone(),
        classes: records.finish(),
    })
}

/// One class's record (the evidence's `class`): zeros for a class with no
/// runs yet.
pub fn class_record(store: &dyn Store, class: &str, since: Option<String>) -> Result<ClassStats> {
    let filter = StepFilter {
        since,
        class: Some(class.to_string()),
    };
    Ok(stats(store, &filter)?
        .classes
        .into_iter()
        .next()
        .unwrap_or_else(|| Tally::default().finish(class)))
}

#[derive(Default)]
struct Tally {
    runs: u64,
    reviewed: u64,
    clean: u64,
    rework_rounds: u64,
    reworked: u64,
    rejected: u64,
    blocked: u64,
    blocked_by: BTreeMap<String, u64>,
    gate_failed: u64,
    promoted: u64,
    rolled_back: u64,
    decision_ms: Vec<u64>,
    last_rollback_ms: Option<i64>,
}

/// What one run's steps add up to, read as they stream by.
#[derive(Default)]
struct RunAcc {
    first_review: Option<&'static str>,
    redirects: u64,
    rejected: bool,
    promoted: bool,
    rolled_back: bool,
    last_rollback_ms: Option<i64>,
    stopped_by: Vec<String>,
    gate_failed: bool,
    submitted_ms: Option<i64>,
    decision_ms: Vec<u64>,
}

impl RunAcc {
    fn step(&mut self, kind: &str, at_ms: i64, failure: Option<&str>) {
        match kind {
            "check" => match failure.map(failed_stop) {
                Some(Some(name)) if !self.stopped_by.iter().any(|n| n == name) => {
                    self.stopped_by.push(name.to_string());
                }
                Some(Some(_)) | None => {}
                Some(None) => self.gate_failed = true,
            },
            "submit" => self.submitted_ms = Some(at_ms),
            "approve" | "reject" | "redirect" => {
                let kind = match kind {
                    "approve" => "approve",
                    "reject" => "reject",
                    _ => "redirect",
                };
                self.first_review.get_or_insert(kind);
                match kind {
                    "redirect" => self.redirects += 1,
                    "reject" => self.rejected = true,
                    _ => {}
                }
                if let Some(at) = self.submitted_ms.take() {
                    self.decision_ms
                        .push(u64::try_from(at_ms.saturating_sub(at)).unwrap_or(0));
                }
            }
            "promote" => self.promoted = true,
            "rollback" => {
                self.rolled_back = true;
                self.last_rollback_ms = self.last_rollback_ms.max(Some(at_ms));
            }
            _ => {}
        }
    }
}

impl Tally {
    fn add(&mut self, run: RunAcc) {
        self.runs += 1;
        if run.first_review.is_some() {
            self.reviewed += 1;
            if run.first_review == Some("approve") && run.redirects == 0 && !run.rejected {
                self.clean += 1;
            }
        }
        self.rework_rounds += run.redirects;
        self.reworked += u64::from(run.redirects > 0);
        self.rejected += u64::from(run.rejected);
        self.blocked += u64::from(!run.stopped_by.is_empty());
        for name in run.stopped_by {
            *self.blocked_by.entry(name).or_default() += 1;
        }
        self.gate_failed += u64::from(run.gate_failed);
        self.promoted += u64::from(run.promoted);
        self.rolled_back += u64::from(run.rolled_back);
        self.last_rollback_ms = self.last_rollback_ms.max(run.last_rollback_ms);
        self.decision_ms.extend(run.decision_ms);
    }

    fn finish(mut self, class: &str) -> ClassStats {
        ClassStats {
            class: class.to_string(),
            runs: self.runs,
            reviewed: self.reviewed,
            clean: Rate::new(self.clean, self.reviewed),
            rework_rounds: self.rework_rounds,
            reworked: Rate::new(self.reworked, self.reviewed),
            rejected: Rate::new(self.rejected, self.reviewed),
            blocked: Rate::new(self.blocked, self.runs),
            blocked_by: self.blocked_by,
            gate_failed: Rate::new(self.gate_failed, self.runs),
            promoted: self.promoted,
            rolled_back: Rate::new(self.rolled_back, self.promoted),
            time_to_decision: Median {
                median_ms: median(&mut self.decision_ms),
                of: self.decision_ms.len() as u64,
            },
            last_rollback: self.last_rollback_ms.map(rfc3339),
        }
    }
}

/// The stop condition or `block` condition a check's `failure` names
/// (`stop condition `NAME`: …`, `condition `ID` (block): …`), or none for a
/// failed gate.
fn failed_stop(failure: &str) -> Option<&str> {
    if let Some(rest) = failure.strip_prefix("stop condition `") {
        return rest.split_once('`').map(|(name, _)| name);
    }
    let (id, rest) = failure.strip_prefix("condition `")?.split_once('`')?;
    rest.starts_with(" (block)").then_some(id)
}

/// The lower median (a duration that was observed), none of nothing.
fn median(values: &mut [u64]) -> Option<u64> {
    if values.is_empty() {
        return None;
    }
    let mid = (values.len() - 1) / 2;
    Some(*values.select_nth_unstable(mid).1)
}

/// A time in milliseconds since the epoch, as the ledger writes times.
fn rfc3339(ms: i64) -> String {
    let at = std::time::UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0));
    humantime::format_rfc3339_millis(at).to_string()
}

/// The records being read: the run whose steps stream by, and a tally per
/// class (few, so a list).
#[derive(Default)]
struct Records {
    run: String,
    class: String,
    acc: Option<RunAcc>,
    tallies: Vec<(String, Tally)>,
}

impl Records {
    fn push(&mut self, row: StepRow<'_>) {
        if self.acc.is_none() || self.run != row.run {
            self.flush();
            self.run.clear();
            self.run.push_str(row.run);
            self.class.clear();
            self.class.push_str(row.class);
            self.acc = Some(RunAcc::default());
        }
        if let (Some(acc), Some(step)) = (self.acc.as_mut(), row.step) {
            acc.step(step.kind, step.at_ms, step.failure);
        }
    }

    fn flush(&mut self) {
        let Some(acc) = self.acc.take() else { return };
        match self.tallies.iter_mut().find(|(c, _)| *c == self.class) {
            Some((_, tally)) => tally.add(acc),
            None => {
                let mut tally = Tally::default();
                tally.add(acc);
                self.tallies.push((self.class.clone(), tally));
            }
        }
    }

    /// Every class's record, sorted by class.
    fn finish(mut self) -> Vec<ClassStats> {
        self.flush();
        self.tallies.sort_by(|a, b| a.0.cmp(&b.0));
        self.tallies
            .into_iter()
            .map(|(class, tally)| tally.finish(&class))
            .collect()
    }
}

/// `--since`: a date (`2026-12-01`), a time (RFC 3339) or a duration back
/// from `now` (`30d`, `12h`), as the RFC 3339 time the ledger's times
/// compare with.
pub fn since(text: &str, now: SystemTime) -> Result<String> {
    let text = text.trim();
    let at = if let Ok(d) = humantime::parse_duration(text) {
        now.checked_sub(d)
    } else if let Ok(t) = humantime::parse_rfc3339_weak(text) {
        Some(t)
    } else {
        humantime::parse_rfc3339_weak(&format!("{text} 00:00:00")).ok()
    };
    let at = at.ok_or_else(|| {
        Error::Invalid(format!(
            "`--since {text}` is neither a date, a time nor a duration: write e.g. `--since 2026-12-01`, `--since 2026-12-01T09:00:00Z` or `--since 30d`"
        ))
    })?;
    Ok(humantime::format_rfc3339_millis(at).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::history::Step;

    /// A step as the tests write it: kind, RFC 3339 time, failure.
    type TestStep<'a> = (&'a str, &'a str, Option<&'a str>);

    /// Every class's record of `runs` (a class and its steps each).
    fn aggregate(runs: &[(&str, Vec<TestStep<'_>>)]) -> Vec<ClassStats> {
        let mut records = Records::default();
        for (n, (class, steps)) in runs.iter().enumerate() {
            let id = format!("run-{n}");
            let row = |step| StepRow {
                run: &id,
                class,
                created: "2026-12-01T00:00:00.000Z",
                step,
            };
            if steps.is_empty() {
                records.push(row(None));
            }
            for (kind, ts, failure) in steps {
                let at_ms = humantime::parse_rfc3339(ts)
                    .unwrap()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_millis() as i64;
                records.push(row(Some(Step {
                    kind,
                    at_ms,
                    failure: *failure,
                })));
            }
        }
        records.finish()
    }

    #[test]
    fn a_blocked_check_names_its_condition_and_a_gate_failure_is_not_a_block() {
        assert_eq!(failed_stop("stop condition `scope`: a.txt"), Some("scope"));
        assert_eq!(failed_stop("gate `unit` failed (exit 1)"), None);
        assert_eq!(
            failed_stop("condition `no-src` (block): src/ needs review"),
            Some("no-src")
        );
        assert_eq!(failed_stop("condition `w` (warn): x"), None);
        let stats = aggregate(&[
            (
                "bugfix",
                vec![
                    (
                        "check",
                        "2026-12-01T00:00:01Z",
                        Some("stop condition `scope`: x"),
                    ),
                    (
                        "check",
                        "2026-12-01T00:00:02Z",
                        Some("stop condition `scope`: y"),
                    ),
                    (
                        "check",
                        "2026-12-01T00:00:03Z",
                        Some("gate `unit` failed (1)"),
                    ),
                    ("submit", "2026-12-01T00:00:04Z", None),
                    ("redirect", "2026-12-01T00:00:06Z", None),
                    ("submit", "2026-12-01T00:00:10Z", None),
                    ("approve", "2026-12-01T00:00:11Z", None),
                    ("promote", "2026-12-01T00:00:12Z", None),
                    ("rollback", "2026-12-01T00:00:13Z", None),
                ],
            ),
            ("bugfix", vec![]),
        ]);
        let s = &stats[0];
        assert_eq!(s.blocked, Rate::new(1, 2));
        assert_eq!(s.blocked_by.get("scope"), Some(&1));
        assert_eq!(s.gate_failed, Rate::new(1, 2));
        assert_eq!(s.runs, 2);
        assert_eq!(s.reviewed, 1);
        assert_eq!(s.clean, Rate::new(0, 1));
        assert_eq!(s.rework_rounds, 1);
        assert_eq!(s.rolled_back, Rate::new(1, 1));
        assert_eq!(s.last_rollback.as_deref(), Some("2026-12-01T00:00:13.000Z"));
        // 2 s from the first submit to the redirect, 1 s from the second to
        // the approval: the lower median.
        assert_eq!(
            s.time_to_decision,
            Median {
                median_ms: Some(1000),
                of: 2
            }
        );
    }

    #[test]
    fn the_median_is_an_observed_value() {
        assert_eq!(median(&mut []), None);
        assert_eq!(median(&mut [5]), Some(5));
        assert_eq!(median(&mut [9, 1, 5, 3]), Some(3));
        assert_eq!(median(&mut [9, 1, 5]), Some(5));
    }

    #[test]
    fn since_takes_dates_times_and_durations_and_refuses_the_rest() {
        let now = humantime::parse_rfc3339("2026-12-07T12:00:00Z").unwrap();
        assert_eq!(
            since("2026-12-01", now).unwrap(),
            "2026-12-01T00:00:00.000Z"
        );
        assert_eq!(
            since("2026-12-01T09:30:00Z", now).unwrap(),
            "2026-12-01T09:30:00.000Z"
        );
        assert_eq!(since("30d", now).unwrap(), "2026-11-07T12:00:00.000Z");
        let err = since("last tuesday", now).unwrap_err().to_string();
        assert!(
            err.contains("neither a date, a time nor a duration"),
            "{err}"
        );
    }

    fn record(
        class: &str,
        reviewed: u64,
        clean: u64,
        rejected: u64,
        promoted: u64,
        rolled: u64,
    ) -> ClassStats {
        let mut c = Tally::default().finish(class);
        c.runs = reviewed;
        c.reviewed = reviewed;
        c.clean = Rate::new(clean, reviewed);
        c.rejected = Rate::new(rejected, reviewed);
        c.promoted = promoted;
        c.rolled_back = Rate::new(rolled, promoted);
        c
    }

    #[test]
    fn suggest_moves_up_down_or_says_what_is_missing() {
        let settings = airlock_model::promotion::PromotionSettings::default();
        let declared = |n: &str, l: &str| (n.to_string(), Some(l.to_string()));
        let classes = vec![
            declared("ready", "governed"),
            declared("few", "governed"),
            declared("rolled", "staging"),
            declared("rejected", "sandbox"),
            declared("bottom", "draft"),
            declared("top", "production"),
            declared("idle", "sandbox"),
        ];
        let records = vec![
            record("ready", 20, 19, 1, 19, 0),
            record("few", 19, 19, 0, 19, 0),
            record("rolled", 40, 40, 0, 40, 1),
            record("rejected", 30, 27, 3, 27, 0),
            record("bottom", 5, 0, 5, 0, 0),
            record("top", 50, 50, 0, 50, 0),
            record("stray", 3, 3, 0, 3, 0),
        ];
        let mut late = BTreeMap::new();
        // A run started before the window, rolled back inside it.
        late.insert("top".to_string(), 1u64);
        let got = suggest(&settings, &classes, &records, &late);
        let find = |n: &str| got.iter().find(|s| s.class == n).unwrap();
        let ready = find("ready");
        assert_eq!(
            (ready.direction, ready.to.as_deref()),
            (Move::Up, Some("staging"))
        );
        assert!(
            ready.reasons[0].contains("95% (19 of 20)"),
            "{:?}",
            ready.reasons
        );
        let few = find("few");
        assert_eq!(few.direction, Move::Stay);
        assert_eq!(
            few.reasons,
            ["19 reviewed runs in the window, 20 needed (min_runs)"]
        );
        let rolled = find("rolled");
        assert_eq!(
            (rolled.direction, rolled.to.as_deref()),
            (Move::Down, Some("governed"))
        );
        assert_eq!(
            rolled.reasons,
            ["1 rollback in the window (1 of 40 promoted runs started in it rolled back)"]
        );
        let rejected = find("rejected");
        assert_eq!(
            (rejected.direction, rejected.to.as_deref()),
            (Move::Down, Some("draft"))
        );
        assert!(
            rejected.reasons[0].starts_with("3 rejections in the window"),
            "{:?}",
            rejected.reasons
        );
        let bottom = find("bottom");
        assert_eq!(bottom.direction, Move::Stay);
        assert!(bottom.reasons.last().unwrap().contains("the lowest lane"));
        let top = find("top");
        assert_eq!(
            (top.direction, top.to.as_deref()),
            (Move::Down, Some("staging"))
        );
        assert_eq!(
            top.reasons,
            ["1 rollback in the window (0 of 50 promoted runs started in it rolled back)"]
        );
        let idle = find("idle");
        assert_eq!(idle.record.runs, 0);
        assert_eq!(idle.reasons.len(), 2, "{:?}", idle.reasons);
        assert!(idle.reasons[1].contains("none yet"));
        let stray = find("stray");
        assert!(!stray.declared);
        assert_eq!(stray.direction, Move::Stay);
        assert!(stray.reasons[0].contains("[classes.stray] max_lane"));
    }
}

/// Which way a class's record points.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Move {
    Up,
    Down,
    Stay,
}

/// What `lanes suggest` says about one class: the move, the lane it would
/// get as its `max_lane`, and why, with the numbers.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Suggestion {
    pub class: String,
    /// The class's `max_lane` now (`production` when it has none).
    pub lane: String,
    #[serde(rename = "move")]
    pub direction: Move,
    /// The `max_lane` the move would set; none to stay.
    pub to: Option<String>,
    /// Each reason, a sentence with its numbers.
    pub reasons: Vec<String>,
    /// Whether the workflow declares the class (`[classes.NAME]`).
    pub declared: bool,
    /// Rollbacks in the window, of runs started before it too: a rollback
    /// counts against its class at once.
    pub rollbacks_in_window: u64,
    pub record: ClassStats,
}

/// The records of the runs started since `since`, and per class the
/// rollbacks made since then of any run (one read of the store).
pub fn window(
    store: &dyn Store,
    since: Option<&str>,
) -> Result<(Vec<ClassStats>, BTreeMap<String, u64>)> {
    let since_ms = since
        .and_then(|t| humantime::parse_rfc3339(t).ok())
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    let mut records = Records::default();
    let mut rollbacks: BTreeMap<String, u64> = BTreeMap::new();
    store.for_each_step(&StepFilter::default(), &mut |row| {
        if let Some(step) = row.step
            && step.kind == "rollback"
            && since_ms.is_none_or(|t| step.at_ms >= t)
        {
            *rollbacks.entry(row.class.to_string()).or_default() += 1;
        }
        if since.is_none_or(|t| row.created >= t) {
            records.push(row);
        }
    })?;
    Ok((records.finish(), rollbacks))
}

/// The move each class's record suggests under `settings`. `classes` are
/// the workflow's declared classes and their `max_lane`; a class with runs
/// but no declaration is listed too (it has no limit to move). Suggests
/// only: the workflow is the human's to change.
pub fn suggest(
    settings: &airlock_model::promotion::PromotionSettings,
    classes: &[(String, Option<String>)],
    records: &[ClassStats],
    rollbacks_in_window: &BTreeMap<String, u64>,
) -> Vec<Suggestion> {
    use airlock_model::names::LANES;
    let top = LANES[LANES.len() - 1];
    let mut names: Vec<(&str, bool)> = classes.iter().map(|(n, _)| (n.as_str(), true)).collect();
    for r in records {
        if !names.iter().any(|(n, _)| *n == r.class) {
            names.push((r.class.as_str(), false));
        }
    }
    names.sort();
    let mut out = Vec::new();
    for (name, declared) in names {
        let record = records
            .iter()
            .find(|r| r.class == name)
            .cloned()
            .unwrap_or_else(|| Tally::default().finish(name));
        let lane = classes
            .iter()
            .find(|(n, _)| n == name)
            .and_then(|(_, l)| l.clone())
            .unwrap_or_else(|| top.to_string());
        let at = LANES
            .iter()
            .position(|l| *l == lane)
            .unwrap_or(LANES.len() - 1);
        let pct = |r: &Rate| match r.rate {
            Some(v) => format!("{:.0}% ({} of {})", v * 100.0, r.count, r.of),
            None => "none yet".into(),
        };
        let rollbacks = rollbacks_in_window
            .get(name)
            .copied()
            .unwrap_or(0)
            .max(record.rolled_back.count);
        let mut down = Vec::new();
        if settings.demote_on_rollback && rollbacks > 0 {
            down.push(format!(
                "{rollbacks} rollback{} in the window ({} of {} promoted run{} started in it rolled back)",
                if rollbacks == 1 { "" } else { "s" },
                record.rolled_back.count,
                record.rolled_back.of,
                if record.rolled_back.of == 1 { "" } else { "s" }
            ));
        }
        if record.rejected.count >= settings.demote_rejections {
            down.push(format!(
                "{} rejection{} in the window (demote_rejections = {}), of {} reviewed",
                record.rejected.count,
                if record.rejected.count == 1 { "" } else { "s" },
                settings.demote_rejections,
                record.reviewed
            ));
        }
        let (direction, to, reasons) = if !declared {
            (
                Move::Stay,
                None,
                vec![format!(
                    "not declared: add `[classes.{name}] max_lane = \"…\"` to the workflow to limit its lanes"
                )],
            )
        } else if !down.is_empty() {
            match at.checked_sub(1) {
                Some(below) => (Move::Down, Some(LANES[below].to_string()), down),
                None => {
                    down.push(format!("already at `{}`, the lowest lane", LANES[0]));
                    (Move::Stay, None, down)
                }
            }
        } else {
            let mut missing = Vec::new();
            if record.reviewed < settings.min_runs {
                missing.push(format!(
                    "{} reviewed run{} in the window, {} needed (min_runs)",
                    record.reviewed,
                    if record.reviewed == 1 { "" } else { "s" },
                    settings.min_runs
                ));
            }
            if record
                .clean
                .rate
                .is_none_or(|r| r < settings.min_clean_rate)
            {
                missing.push(format!(
                    "clean pass rate {}, {:.0}% needed (min_clean_rate)",
                    pct(&record.clean),
                    settings.min_clean_rate * 100.0
                ));
            }
            if at + 1 >= LANES.len() {
                missing.push(format!("already at `{top}`, the highest lane"));
            }
            if missing.is_empty() {
                (
                    Move::Up,
                    Some(LANES[at + 1].to_string()),
                    vec![
                        format!(
                            "clean pass rate {}, at least {:.0}% (min_clean_rate)",
                            pct(&record.clean),
                            settings.min_clean_rate * 100.0
                        ),
                        format!(
                            "{} reviewed runs, at least {} (min_runs)",
                            record.reviewed, settings.min_runs
                        ),
                        "no rollback and fewer rejections than demote_rejections in the window"
                            .into(),
                    ],
                )
            } else {
                (Move::Stay, None, missing)
            }
        };
        out.push(Suggestion {
            class: name.to_string(),
            lane,
            direction,
            to,
            reasons,
            declared,
            rollbacks_in_window: rollbacks,
            record,
        });
    }
    out
}
