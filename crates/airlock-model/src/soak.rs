//! Soak gates: `[gates.NAME] soak = "24h", probe = "CMD", every = "5m"`.
//!
//! A soak gate is not run at `check`: it holds a run's production actions
//! after its first promotion until `soak` has passed since the run entered
//! staging and every `probe` run in that window succeeded. It applies to
//! every run with production actions, whatever its brief lists in `checks`
//! (a brief must not be able to leave a soak out).

use std::time::Duration;

use serde::{Deserialize, Serialize};
use toml::de::DeTable;

use crate::diag::{self, Diagnostics};
use crate::durations::parse_timeout;

/// How often a probe runs when `every` is not written (or the soak itself,
/// when that is shorter).
pub const DEFAULT_EVERY: Duration = Duration::from_secs(300);
/// A probe's time limit when `timeout` is not written.
pub const DEFAULT_PROBE_TIMEOUT: Duration = Duration::from_secs(300);

/// The keys that make `[gates.NAME]` a soak gate.
pub const KEYS: &[&str] = &["soak", "probe", "every"];

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SoakGate {
    pub name: String,
    /// How long a run stays in staging before its production actions may run.
    #[serde(with = "crate::workflow::humantime_serde_secs")]
    pub soak: Duration,
    /// The shell command that checks staging, run sandboxed with the run's
    /// lane's network.
    pub probe: String,
    /// At most one probe per this interval.
    #[serde(with = "crate::workflow::humantime_serde_secs")]
    pub every: Duration,
    /// A probe's time limit.
    #[serde(with = "crate::workflow::humantime_serde_secs")]
    pub timeout: Duration,
}

/// Whether `[gates.NAME]` is written as a soak gate.
pub fn is_soak(gate: &DeTable<'_>) -> bool {
    KEYS.iter().any(|k| diag::get(gate, k).is_some())
}

/// A duration written as a string (`"24h"`, `"5m"`); zero is refused.
fn duration(
    gate: &DeTable<'_>,
    key: &str,
    name: &str,
    diags: &mut Diagnostics<'_>,
) -> Option<Duration> {
    let value = diag::get(gate, key)?;
    let text = diag::string(value, key, diags)?;
    match crate::durations::parse_duration(&text) {
        Ok(d) => Some(d),
        Err(why) => {
            diags.error(
                value.span(),
                format!("`{key}` of gate `{name}` is not a usable duration: {why}"),
                Some(format!("write e.g. `{key} = \"24h\"` or `\"30m\"`")),
            );
            None
        }
    }
}

/// Parses a soak gate (one [`is_soak`] said yes to), every problem a
/// diagnostic at its place. `key_span` is the gate's name in the file.
pub(crate) fn parse_gate(
    name: &str,
    key_span: std::ops::Range<usize>,
    gate: &DeTable<'_>,
    diags: &mut Diagnostics<'_>,
) -> Option<SoakGate> {
    // A soak gate's command is its probe, run after the first promotion;
    // a `run` beside it would be a second command run at another time,
    // which a reader would take for the probe.
    for key in ["run", "snapshot", "junit"] {
        if let Some(v) = diag::get(gate, key) {
            diags.error(
                v.span(),
                format!("gate `{name}` is a soak gate and cannot have `{key}`"),
                Some(format!(
                    "a soak gate runs its `probe` while the promoted run soaks in staging; put `{key}` in a gate of its own, which `check` runs"
                )),
            );
        }
    }
    let soak = match diag::get(gate, "soak") {
        Some(_) => duration(gate, "soak", name, diags),
        None => {
            diags.error(
                key_span.clone(),
                format!("gate `{name}` has `probe` or `every` but no `soak`"),
                Some("add how long the run soaks in staging, e.g. `soak = \"24h\"`".into()),
            );
            None
        }
    };
    let probe = match diag::get(gate, "probe") {
        Some(v) => {
            let probe = diag::string(v, "probe", diags).unwrap_or_default();
            if probe.trim().is_empty() && matches!(v.get_ref(), toml::de::DeValue::String(_)) {
                diags.error(
                    v.span(),
                    format!("gate `{name}` has an empty `probe` command"),
                    Some("write the shell command that checks staging".into()),
                );
            }
            Some(probe)
        }
        None => {
            diags.error(
                key_span.clone(),
                format!("soak gate `{name}` has no `probe` command"),
                Some(
                    "add `probe = \"…\"`: a shell command that checks staging, run while the run soaks"
                        .into(),
                ),
            );
            None
        }
    };
    let every = match diag::get(gate, "every") {
        Some(_) => duration(gate, "every", name, diags),
        None => soak.map(|s| s.min(DEFAULT_EVERY)),
    };
    if let (Some(s), Some(e), Some(v)) = (soak, every, diag::get(gate, "every"))
        && e > s
    {
        diags.error(
            v.span(),
            format!(
                "`every` of gate `{name}` ({}) is longer than its `soak` ({})",
                humantime::format_duration(e),
                humantime::format_duration(s)
            ),
            Some("a probe must run at least once in the soak: make `every` at most `soak`".into()),
        );
    }
    let timeout = match diag::get(gate, "timeout") {
        Some(v) => parse_timeout(v, diags).unwrap_or(DEFAULT_PROBE_TIMEOUT),
        None => DEFAULT_PROBE_TIMEOUT,
    };
    Some(SoakGate {
        name: name.to_string(),
        soak: soak?,
        probe: probe.filter(|p| !p.trim().is_empty())?,
        every: every?,
        timeout,
    })
}

/// The lane whose scopes, with every lower lane's, make an action a
/// staging action; an action needing a scope only a higher lane grants is
/// a production action.
pub const STAGING_LANE: &str = "staging";

/// Which side of a soak an approved action is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// Applied at the first promotion, as the run enters staging.
    Staging,
    /// Held until the soak is over and every probe passed.
    Production,
}

/// What a run's first promotion recorded about its soak (in the run's
/// promotion record and its `promote` event): when it entered staging by
/// the engine's clock, the soak gates as the workflow had them then, and
/// the production actions held until the soak is over.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SoakPlan {
    /// RFC 3339, from the clock the engine was given.
    pub entered: String,
    pub gates: Vec<SoakGate>,
    /// Names of the approved actions held for production.
    pub production: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;
    use crate::workflow::Workflow;
    use crate::workflow::tests::problems;

    #[test]
    fn a_soak_gate_is_kept_apart_from_the_gates_check_runs() {
        let wf = Workflow::parse(
            "[gates.unit]\nrun = \"true\"\n[gates.staging-clean]\nsoak = \"24h\"\nprobe = \"curl -fsS https://staging.example.com/health\"\nevery = \"5m\"\n[gates.short]\nsoak = \"2m\"\nprobe = \"true\"\ntimeout = \"30s\"\n",
            "wf.toml",
        )
        .unwrap();
        assert_eq!(wf.gate_names(), vec!["unit"]);
        assert_eq!(
            wf.soaks,
            vec![
                SoakGate {
                    name: "staging-clean".into(),
                    soak: Duration::from_secs(24 * 3600),
                    probe: "curl -fsS https://staging.example.com/health".into(),
                    every: Duration::from_secs(300),
                    timeout: DEFAULT_PROBE_TIMEOUT,
                },
                // `every` defaults to five minutes, or the soak when shorter.
                SoakGate {
                    name: "short".into(),
                    soak: Duration::from_secs(120),
                    probe: "true".into(),
                    every: Duration::from_secs(120),
                    timeout: Duration::from_secs(30),
                },
            ]
        );
    }

    #[test]
    fn a_brief_listing_a_soak_gate_in_checks_is_told_it_is_not_a_check() {
        let wf = Workflow::parse(
            "[gates.unit]\nrun = \"true\"\n[gates.staging-clean]\nsoak = \"1h\"\nprobe = \"true\"\n",
            "wf.toml",
        )
        .unwrap();
        let brief = "title = \"t\"\nobjective = \"o\"\ntouch = [\"src/**\"]\nchecks = [\"unit\", \"staging-clean\"]\nrollback = \"revert\"\n";
        match crate::brief::Brief::parse(brief, "b.toml", Some(&wf)) {
            Err(Error::InvalidToml { diagnostics, .. }) => {
                let d: Vec<String> = diagnostics
                    .iter()
                    .map(|d| format!("{}:{}: {} ({:?})", d.line, d.column, d.message, d.help))
                    .collect();
                assert_eq!(
                    d,
                    vec![
                        "4:19: gate `staging-clean` is a soak gate, not a check (Some(\"leave it out of `checks`: it applies after promotion to every run with production actions\"))"
                    ]
                );
            }
            other => panic!("expected a diagnostic, got {other:?}"),
        }
    }

    #[test]
    fn every_problem_of_a_soak_gate_is_refused_at_its_place() {
        let text = "\
[gates.a]
soak = \"forever\"
probe = \"true\"
[gates.b]
soak = \"1h\"
every = \"2h\"
probe = \"true\"
[gates.c]
soak = \"1h\"
[gates.d]
soak = \"1h\"
probe = \"\"
run = \"make test\"
[gates.e]
probe = \"true\"
every = \"0s\"
[gates.f]
soak = 24
probe = \"true\"
";
        assert_eq!(
            problems(text),
            vec![
                "2:8: `soak` of gate `a` is not a usable duration: `forever` is not a duration (expected number at 0); write e.g. 90s or 10m",
                "6:9: `every` of gate `b` (2h) is longer than its `soak` (1h)",
                "8:8: soak gate `c` has no `probe` command",
                "12:9: gate `d` has an empty `probe` command",
                "13:7: gate `d` is a soak gate and cannot have `run`",
                "14:8: gate `e` has `probe` or `every` but no `soak`",
                "16:9: `every` of gate `e` is not a usable duration: a time limit must be more than zero",
                "18:8: `soak` must be a string, found an integer",
            ]
        );
    }
}
