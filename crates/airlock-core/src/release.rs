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

use crate::Airlock;
use crate::error::{Error, Result};
use crate::layout::write_atomic;
use crate::run::{Run, State};
use crate::start::{StartOptions, start};

pub use crate::stops::checklist;
pub use airlock_model::release::*;

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
    crate::guards::refuse_from_lane(al, "release")?;
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
