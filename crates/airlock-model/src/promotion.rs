//! `[promotion]` in the workflow: the thresholds `airlock lanes suggest`
//! measures a class's record against. Suggestions only: moving a class is a
//! human's change to the workflow.

use std::time::Duration;

use serde::Serialize;
use toml::de::{DeTable, DeValue};

use crate::diag::{self, Diagnostics};

pub const DEFAULT_MIN_RUNS: u64 = 20;
pub const DEFAULT_MIN_CLEAN_RATE: f64 = 0.95;
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(30 * 86_400);
pub const DEFAULT_DEMOTE_REJECTIONS: u64 = 3;

/// `[promotion]`, defaults filled in.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PromotionSettings {
    /// Reviewed runs in the window a class needs before it may move up.
    pub min_runs: u64,
    /// Share of reviewed runs approved in their first round, 0 to 1.
    pub min_clean_rate: f64,
    /// How far back the record counts, in seconds.
    #[serde(serialize_with = "as_secs")]
    pub window: Duration,
    /// A class with a rollback in the window should move down.
    pub demote_on_rollback: bool,
    /// A class with this many rejections in the window should move down.
    pub demote_rejections: u64,
}

impl Default for PromotionSettings {
    fn default() -> Self {
        PromotionSettings {
            min_runs: DEFAULT_MIN_RUNS,
            min_clean_rate: DEFAULT_MIN_CLEAN_RATE,
            window: DEFAULT_WINDOW,
            demote_on_rollback: true,
            demote_rejections: DEFAULT_DEMOTE_REJECTIONS,
        }
    }
}

fn as_secs<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_secs())
}

pub(crate) fn parse(root: &DeTable<'_>, diags: &mut Diagnostics<'_>) -> PromotionSettings {
    let mut out = PromotionSettings::default();
    let Some(value) = diag::get(root, "promotion") else {
        return out;
    };
    let Some(table) = diag::table(value, "promotion", diags) else {
        return out;
    };
    diag::unknown_keys(
        table,
        &[
            "min_runs",
            "min_clean_rate",
            "window",
            "demote_on_rollback",
            "demote_rejections",
        ],
        "[promotion]",
        diags,
    );
    if let Some(v) = diag::get(table, "min_runs") {
        out.min_runs = diag::positive(v, "min_runs", diags).unwrap_or(out.min_runs);
    }
    if let Some(v) = diag::get(table, "min_clean_rate") {
        let rate = match v.get_ref() {
            DeValue::Float(f) => f.as_str().replace('_', "").parse::<f64>().ok(),
            DeValue::Integer(i) => i.as_str().replace('_', "").parse::<f64>().ok(),
            _ => None,
        }
        .filter(|r| (0.0..=1.0).contains(r));
        match rate {
            Some(r) => out.min_clean_rate = r,
            None => diags.error(
                v.span(),
                "`min_clean_rate` must be a number from 0 to 1 (the share of runs approved in their first round)",
                Some("write e.g. `min_clean_rate = 0.95` for 95%".into()),
            ),
        }
    }
    if let Some(v) = diag::get(table, "window")
        && let Some(text) = diag::string(v, "window", diags)
    {
        match crate::durations::parse_duration(&text) {
            Ok(d) => out.window = d,
            Err(_) => diags.error(
                v.span(),
                format!("`window = \"{text}\"` is not a duration"),
                Some("write e.g. `window = \"30d\"` or `window = \"2w\"`".into()),
            ),
        }
    }
    if let Some(v) = diag::get(table, "demote_on_rollback") {
        out.demote_on_rollback =
            diag::boolean(v, "demote_on_rollback", diags).unwrap_or(out.demote_on_rollback);
    }
    if let Some(v) = diag::get(table, "demote_rejections") {
        out.demote_rejections =
            diag::positive(v, "demote_rejections", diags).unwrap_or(out.demote_rejections);
    }
    out
}

#[cfg(test)]
mod tests {
    use crate::error::Error;
    use crate::workflow::Workflow;

    fn problems(text: &str) -> Vec<String> {
        match Workflow::parse(text, "wf.toml") {
            Err(Error::InvalidToml { diagnostics, .. }) => diagnostics
                .iter()
                .map(|d| format!("{}:{}: {}", d.line, d.column, d.message))
                .collect(),
            Err(e) => panic!("{e}"),
            Ok(_) => Vec::new(),
        }
    }

    #[test]
    fn defaults_apply_without_the_table() {
        let wf = Workflow::parse("", "wf.toml").unwrap();
        assert_eq!(wf.promotion, super::PromotionSettings::default());
        assert_eq!(wf.promotion.min_runs, 20);
        assert_eq!(wf.promotion.window.as_secs(), 30 * 86_400);
    }

    #[test]
    fn every_setting_is_read() {
        let wf = Workflow::parse(
            "[promotion]\nmin_runs = 5\nmin_clean_rate = 0.8\nwindow = \"7d\"\ndemote_on_rollback = false\ndemote_rejections = 2\n",
            "wf.toml",
        )
        .unwrap();
        let p = wf.promotion;
        assert_eq!(
            (
                p.min_runs,
                p.min_clean_rate,
                p.window.as_secs(),
                p.demote_on_rollback,
                p.demote_rejections
            ),
            (5, 0.8, 7 * 86_400, false, 2)
        );
    }

    #[test]
    fn every_bad_setting_is_refused_at_once_with_its_place() {
        let got = problems(
            "[promotion]\nmin_runs = 0\nmin_clean_rate = 1.5\nwindow = \"soon\"\ndemote_rejections = \"3\"\nmin_clen_rate = 0.9\ndemote_on_rollback = 1\n",
        );
        assert_eq!(
            got,
            vec![
                "2:12: `min_runs` must be a positive integer, found `0`",
                "3:18: `min_clean_rate` must be a number from 0 to 1 (the share of runs approved in their first round)",
                "4:10: `window = \"soon\"` is not a duration",
                "5:21: `demote_rejections` must be a positive integer, found a string",
                "6:1: unknown key `min_clen_rate` in [promotion]",
                "7:22: `demote_on_rollback` must be true or false, found an integer",
            ],
        );
    }

    #[test]
    fn a_promotion_that_is_not_a_table_is_refused() {
        let got = problems("promotion = 3\n");
        assert_eq!(got.len(), 1, "{got:?}");
        assert!(got[0].contains("`promotion` must be a table"), "{got:?}");
    }
}
