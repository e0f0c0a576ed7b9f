//! `airlock release`: a release is a run of its own. It starts from the
//! target branch, lists the runs promoted since the last release, must pass
//! the workflow's checklist (changelog updated, version bumped, …) and gates,
//! and carries the publish actions; it is reviewed, approved and promoted
//! like any run, so its publish actions stay blocked until a human approves.
//!
//! ```toml
//! [release]
//! lane = "production"                  # default
//! touch = ["CHANGELOG.md", "Cargo.toml", "Cargo.lock"]
//! checks = ["build", "test"]           # gates that must be green on the release
//! [[release.checklist]]
//! item = "changelog updated"
//! changed = "CHANGELOG.md"             # the release must change a path matching this glob
//! ```

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use toml::de::{DeTable, DeValue};

use crate::Airlock;
use crate::diag::{self, Diagnostics};
use crate::error::{Error, Result};
use crate::git::Change;
use crate::globs::{self, Globs};
use crate::layout::write_atomic;
use crate::run::{Run, State};
use crate::start::{StartOptions, start};
use crate::stops::StopResult;

pub const CLASS: &str = "release";

/// `[release]` in the workflow.
#[derive(Debug, Clone, Serialize)]
pub struct ReleaseSettings {
    pub lane: String,
    pub touch: Vec<String>,
    pub checks: Vec<String>,
    pub checklist: Vec<ChecklistItem>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ChecklistItem {
    pub item: String,
    /// A glob the release's diff must touch.
    pub changed: String,
}

/// What a release run carries besides its brief.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct ReleaseInfo {
    pub includes: Vec<Included>,
    pub checklist: Vec<ChecklistItem>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Included {
    pub run: String,
    pub label: String,
    pub class: String,
    pub merge: String,
    pub promoted: String,
}

pub(crate) fn parse(root: &DeTable<'_>, diags: &mut Diagnostics<'_>) -> Option<ReleaseSettings> {
    let value = diag::get(root, "release")?;
    let table = diag::table(value, "release", diags)?;
    diag::unknown_keys(
        table,
        &["lane", "touch", "checks", "checklist"],
        "[release]",
        diags,
    );
    let mut out = ReleaseSettings {
        lane: "production".into(),
        touch: Vec::new(),
        checks: Vec::new(),
        checklist: Vec::new(),
    };
    if let Some(v) = diag::get(table, "lane")
        && let Some(lane) = diag::string(v, "lane", diags)
    {
        if crate::brief::LANES.contains(&lane.as_str()) {
            out.lane = lane;
        } else {
            diags.error(
                v.span(),
                format!("unknown lane `{lane}`"),
                Some(format!("lanes are: {}", crate::brief::LANES.join(", "))),
            );
        }
    }
    match diag::get(table, "touch") {
        Some(v) => {
            for (glob, span) in diag::string_list(v, "touch", diags).unwrap_or_default() {
                match globs::compile(&glob) {
                    Ok(_) => out.touch.push(glob),
                    Err(e) => diags.error(span, format!("invalid glob `{glob}`: {e}"), None),
                }
            }
        }
        None => diags.error(
            value.span(),
            "[release] has no `touch`",
            Some(
                "list what a release may change, e.g. `touch = [\"CHANGELOG.md\", \"Cargo.toml\"]`"
                    .into(),
            ),
        ),
    }
    if let Some(v) = diag::get(table, "checks") {
        out.checks = diag::string_list(v, "checks", diags)
            .unwrap_or_default()
            .into_iter()
            .map(|(s, _)| s)
            .collect();
    }
    if let Some(v) = diag::get(table, "checklist") {
        let DeValue::Array(items) = v.get_ref() else {
            diags.error(
                v.span(),
                "`release.checklist` must be an array of tables",
                Some(
                    "write `[[release.checklist]]` with `item = \"…\"` and `changed = \"GLOB\"`"
                        .into(),
                ),
            );
            return Some(out);
        };
        for (i, item) in items.iter().enumerate() {
            let context = format!("[[release.checklist]] #{}", i + 1);
            let Some(t) = diag::table(item, "release.checklist", diags) else {
                continue;
            };
            diag::unknown_keys(t, &["item", "changed"], &context, diags);
            let text = diag::get(t, "item").and_then(|v| diag::string(v, "item", diags));
            let changed = diag::get(t, "changed").and_then(|v| {
                let glob = diag::string(v, "changed", diags)?;
                match globs::compile(&glob) {
                    Ok(_) => Some(glob),
                    Err(e) => {
                        diags.error(v.span(), format!("invalid glob `{glob}`: {e}"), None);
                        None
                    }
                }
            });
            match (text, changed) {
                (Some(item), Some(changed)) => out.checklist.push(ChecklistItem { item, changed }),
                _ => diags.error(
                    item.span(),
                    format!("{context} needs `item = \"…\"` and `changed = \"GLOB\"`"),
                    None,
                ),
            }
        }
    }
    Some(out)
}

/// Checks the release settings name gates the workflow has.
pub(crate) fn check_gates(settings: &ReleaseSettings, gates: &[&str], diags: &mut Diagnostics<'_>) {
    for c in &settings.checks {
        if !gates.contains(&c.as_str()) {
            diags.at_end(
                format!("[release] checks names gate `{c}`, which the workflow does not define"),
                diag::did_you_mean(c, gates.iter().copied()),
            );
        }
    }
}

/// The promoted runs not yet in a release, oldest first.
pub fn unreleased(al: &Airlock, target: &str) -> Result<Vec<Included>> {
    let runs = al.store.list()?;
    // A release that was rejected or rolled back released nothing.
    let released: Vec<String> = runs
        .iter()
        .filter(|r| r.state == State::Promoted)
        .filter_map(|r| r.release.as_ref())
        .flat_map(|rel| rel.includes.iter().map(|i| i.run.clone()))
        .collect();
    let mut out: Vec<Included> = runs
        .iter()
        .filter(|r| r.state == State::Promoted && r.class != CLASS && r.target == target)
        .filter(|r| !released.contains(&r.id))
        .filter_map(|r| {
            let p = r.promotion.as_ref()?;
            Some(Included {
                run: r.id.clone(),
                label: r.label.clone(),
                class: r.class.clone(),
                merge: p.merge.clone(),
                promoted: p.at.clone(),
            })
        })
        .collect();
    out.sort_by(|a, b| a.promoted.cmp(&b.promoted));
    Ok(out)
}

/// `airlock release`: starts a release run from the target branch.
pub fn start_release(al: &mut Airlock) -> Result<Run> {
    crate::decide::refuse_from_lane(al, "release")?;
    let workflow = al.current_workflow()?;
    let settings = workflow.release.clone().ok_or_else(|| {
        Error::refused(
            crate::error::Code::NoReleaseTable,
            "the workflow has no [release] table",
            vec![],
            "add one to .airlock/workflow.toml, e.g.\n  [release]\n  touch = [\"CHANGELOG.md\"]\n  checks = [\"test\"]\n  [[release.checklist]]\n  item = \"changelog updated\"\n  changed = \"CHANGELOG.md\"",
        )
    })?;
    let target = crate::start::target_branch(al, &workflow)?.ok_or_else(|| {
        Error::refused(
            crate::error::Code::DetachedHead,
            "cannot tell which branch to release",
            vec!["HEAD is detached and the workflow sets no `policy.target`".into()],
            "check out the branch, or set `target` under [policy]",
        )
    })?;
    let in_flight: Vec<String> = al
        .store
        .list()?
        .into_iter()
        .filter(|r| {
            r.class == CLASS
                && !matches!(
                    r.state,
                    State::Promoted | State::Rejected | State::RolledBack
                )
        })
        .map(|r| r.id)
        .collect();
    if !in_flight.is_empty() {
        return Err(Error::refused(
            crate::error::Code::ReleaseInProgress,
            "a release is already under way",
            in_flight
                .iter()
                .map(|r| format!("release run {r}"))
                .collect(),
            "finish it (promote it) or end it (`airlock reject RUN --reason …`) first",
        ));
    }
    let includes = unreleased(al, &target)?;
    if includes.is_empty() {
        return Err(Error::refused(
            crate::error::Code::NothingToRelease,
            format!("nothing to release on {target}"),
            vec!["no run has been promoted into it since the last release".into()],
            "promote a run first; `airlock review` lists those waiting",
        ));
    }
    let toml_list = |v: &[String]| {
        format!(
            "[{}]",
            v.iter()
                .map(|s| toml::Value::String(s.clone()).to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    let labels: Vec<String> = includes
        .iter()
        .map(|i| format!("{} ({})", i.run, i.label))
        .collect();
    let brief = format!(
        "title = {}\nobjective = {}\nclass = \"{CLASS}\"\nlane = \"{}\"\ntouch = {}\nchecks = {}\nrollback = \"airlock rollback on the release run: revert the release commit and run the publish actions' compensations\"\nassumptions = {}\n",
        toml::Value::String(format!("Release {target}")),
        toml::Value::String(format!(
            "release the {} run(s) promoted into {target} since the last release: {}",
            includes.len(),
            labels.join("; ")
        )),
        settings.lane,
        toml_list(&settings.touch),
        toml_list(&settings.checks),
        toml_list(
            &settings
                .checklist
                .iter()
                .map(|c| c.item.clone())
                .collect::<Vec<_>>()
        ),
    );
    let dir = al.layout.state.join("releases");
    std::fs::create_dir_all(&dir).map_err(|source| Error::Write {
        path: dir.clone(),
        source,
    })?;
    let path: PathBuf = dir.join(format!(
        "release-{}.toml",
        crate::run::now().replace([':', '.'], "-")
    ));
    write_atomic(&path, brief.as_bytes())?;
    let run = start(
        al,
        &StartOptions {
            brief: path,
            base: Some(format!("refs/heads/{target}")),
            release: Some(ReleaseInfo {
                includes,
                checklist: settings.checklist.clone(),
            }),
        },
    )?;
    Ok(run)
}

/// The release checklist as a stop condition.
pub fn checklist(info: &ReleaseInfo, changes: &[Change]) -> StopResult {
    let mut findings = Vec::new();
    let mut notes = Vec::new();
    for c in &info.checklist {
        let globs = Globs::new(std::slice::from_ref(&c.changed));
        match changes.iter().find(|ch| globs.is_match(&ch.path)) {
            Some(ch) => notes.push(format!("{}: {} {}", c.item, ch.status, ch.path)),
            None => findings.push(format!(
                "{}: the release changes nothing matching `{}`",
                c.item, c.changed
            )),
        }
    }
    notes.push(format!(
        "includes {} run(s): {}",
        info.includes.len(),
        info.includes
            .iter()
            .map(|i| i.run.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    ));
    StopResult {
        name: "release checklist".into(),
        passed: findings.is_empty(),
        findings,
        notes,
    }
}
