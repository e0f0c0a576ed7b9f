//! `start`: a run and its isolated worktree.
//!
//! The worktree is a repository of its own (a "lane repository") that borrows
//! the main repository's objects through `objects/info/alternates`. The agent
//! can commit, branch, configure and plant hooks there; none of it is the
//! main repository's, and airlock never reads or runs any of it: airlock looks
//! at the worktree through a private index of its own, in its state directory.

use std::path::PathBuf;

use rand_core::{OsRng, RngCore};
use serde_json::json;

use crate::Airlock;
use crate::brief::Brief;
use crate::config::BriefFile;
use crate::error::{Error, Result};
use crate::git;
use crate::run::{Run, State, now};

pub struct StartOptions {
    pub brief: PathBuf,
    pub base: Option<String>,
    /// For a release run: what it releases, recorded with the run itself.
    pub release: Option<airlock_model::release::ReleaseInfo>,
}

pub fn start(al: &mut Airlock, opts: &StartOptions) -> Result<Run> {
    let workflow = al.current_workflow()?;
    // Team mode: from here on this machine notes the events it appends
    // until they are sealed (issue 20).
    crate::seal_notes::arm(al, &workflow)?;
    let (brief, text) = Brief::load(&opts.brief, Some(&workflow))?;
    // `release` is the class of airlock's own release runs: a brief that
    // claimed it would reach the release lane past its own class's limit,
    // be left out of the next release's list, and block `airlock release`.
    if brief.class == airlock_model::release::CLASS && opts.release.is_none() {
        return Err(Error::refused(
            crate::error::Code::LaneRefused,
            format!(
                "refusing to start {}: class `{}` is reserved for release runs",
                opts.brief.display(),
                airlock_model::release::CLASS
            ),
            vec![format!(
                "only `airlock release` starts runs of class `{}`",
                airlock_model::release::CLASS
            )],
            "name the class of the work in the brief's `class` (one the workflow's [classes] declares)",
        ));
    }
    let main = al.layout.git();

    let base_rev = opts.base.as_deref().unwrap_or("HEAD");
    let base = main.rev_parse(base_rev)?.ok_or_else(|| {
        Error::Invalid(if opts.base.is_some() {
            format!("--base `{base_rev}` does not name a commit in this repository")
        } else {
            "the repository has no commits yet: commit something first, then start a run".into()
        })
    })?;
    let target = target_branch(al, &workflow)?.ok_or_else(|| {
        Error::refused(
            crate::error::Code::DetachedHead,
            "cannot tell which branch the run should be promoted into",
            vec!["HEAD is detached and the workflow sets no `policy.target`".into()],
            "check out a branch, or set `target = \"main\"` under [policy] in .airlock/workflow.toml",
        )
    })?;

    let id = new_run_id(al, &brief)?;
    // The lane repository's own branch; the main repository's ref is
    // `run_ref`, outside `refs/heads/`.
    let branch = format!("airlock/{id}");
    let main_ref = crate::run::run_ref(&id);
    let run_dir = al.layout.run_dir(&id);
    let worktree = al.layout.worktree(&id);
    let (intent, _guard) = al.store.begin_intent(
        "start",
        &id,
        json!({"run_dir": run_dir, "branch": main_ref, "base": base}),
    )?;
    crate::failpoint("start:after-intent");

    let made = (|| -> Result<()> {
        std::fs::create_dir_all(&run_dir).map_err(|source| Error::Write {
            path: run_dir.clone(),
            source,
        })?;
        crate::layout::write_atomic(&run_dir.join("brief.toml"), text.as_bytes())?;
        make_lane_repository(al, &id, &branch, &base, &brief.forbid_read)?;
        crate::failpoint("start:after-worktree");
        let (ok, _, err) = main.try_run(&["update-ref", &main_ref, &base, ""], None)?;
        if !ok {
            return Err(Error::Git {
                args: "update-ref".into(),
                message: String::from_utf8_lossy(&err).trim().to_string(),
            });
        }
        crate::failpoint("start:after-branch");
        Ok(())
    })();
    if let Err(e) = made {
        let _ = std::fs::remove_dir_all(&run_dir);
        let _ = main.try_run(&["update-ref", "-d", &main_ref, &base], None);
        let _ = al.store.end_intent(intent);
        return Err(e);
    }

    let run = Run {
        id: id.clone(),
        state: State::Staged,
        round: 1,
        label: brief.label(),
        class: brief.class.clone(),
        lane: brief.lane.clone(),
        brief_path: opts.brief.display().to_string(),
        brief_digest: brief.digest.clone(),
        workflow_digest: workflow.digest.clone(),
        base: base.clone(),
        branch: branch.clone(),
        target: target.clone(),
        worktree: worktree.clone(),
        created: now(),
        check: None,
        submission: None,
        approval: None,
        promotion: None,
        release: opts.release.clone(),
    };
    al.store.insert(
        &run,
        intent,
        json!({
            "from": State::Drafted.as_str(), "to": State::Staged.as_str(),
            "brief": {"path": run.brief_path, "sha256": brief.digest, "objective": brief.objective,
                      "class": brief.class, "lane": brief.lane, "touch": brief.touch, "checks": brief.checks},
            "workflow_sha256": workflow.digest, "base": base, "branch": branch, "ref": main_ref, "target": target,
            "worktree": worktree,
            "release": run.release,
        }),
    )?;
    Ok(run)
}

/// The branch runs are promoted into: the workflow's `policy.target`, or the
/// branch checked out in the main checkout; `None` when HEAD is detached.
pub(crate) fn target_branch(
    al: &Airlock,
    workflow: &crate::workflow::Workflow,
) -> Result<Option<String>> {
    if let Some(t) = &workflow.policy.target {
        return Ok(Some(t.clone()));
    }
    let (ok, out, _) = al
        .layout
        .git()
        .with_checkout(&al.layout.root)
        .try_run(&["symbolic-ref", "--short", "-q", "HEAD"], None)?;
    Ok(ok.then(|| String::from_utf8_lossy(&out).trim().to_string()))
}

fn make_lane_repository(
    al: &Airlock,
    id: &str,
    branch: &str,
    base: &str,
    forbid_read: &[String],
) -> Result<()> {
    let worktree = al.layout.worktree(id);
    let mut init = git::base_command();
    init.arg("init").arg("-q").arg("--template=").arg(&worktree);
    let (ok, _, err) = git::exec(&mut init, None)?;
    if !ok {
        return Err(Error::Git {
            args: "init".into(),
            message: String::from_utf8_lossy(&err).trim().to_string(),
        });
    }
    let lane_git_dir = worktree.join(".git");
    let lane = git::Git::new(&lane_git_dir);
    if forbid_read.is_empty() {
        let objects = &al.layout.objects_dir;
        let alternates = lane_git_dir.join("objects").join("info").join("alternates");
        crate::layout::write_atomic(&alternates, format!("{}\n", objects.display()).as_bytes())?;
    } else {
        own_objects_without(al, &lane, &lane_git_dir, base, forbid_read)?;
    }
    lane.run(&["symbolic-ref", "HEAD", &format!("refs/heads/{branch}")])?;
    lane.run(&["update-ref", &format!("refs/heads/{branch}"), base])?;
    // airlock's own view: main objects, private index, the new worktree.
    // Files the brief forbids reading are never written to the worktree.
    let trusted = al.layout.run_git(id);
    trusted.checkout_without(base, forbid_read)?;
    // The lane starts with the same index, so `git status` there is clean,
    // and its forbidden entries are `skip-worktree` there too: their blobs
    // are not in the lane, and git must not try to fetch them.
    std::fs::copy(al.layout.run_index(id), lane_git_dir.join("index")).map_err(|source| {
        Error::Write {
            path: lane_git_dir.join("index"),
            source,
        }
    })?;
    // Its config from the start in the form `lane::disarm` keeps it.
    // What it saw is the first walk cache: the first command's walk reads
    // only what changed.
    crate::lane::disarm(
        &worktree,
        Some(&al.layout.lane_config_copy(id)),
        Some(&al.layout.lane_walk_caches(id)[0]),
    )
    .map(|_| ())
}

/// A lane whose brief forbids reading some paths cannot borrow the main
/// object store: every version of those files is in it. It gets objects of
/// its own instead: the base commit and its trees and blobs, less the blobs
/// at forbidden paths, as a shallow partial clone whose missing blobs can
/// never be fetched. The sandbox then hides the main object store.
fn own_objects_without(
    al: &Airlock,
    lane: &git::Git,
    lane_git_dir: &std::path::Path,
    base: &str,
    forbid_read: &[String],
) -> Result<()> {
    let main = al.layout.git();
    let listing = main.run(&["rev-list", "--objects", "--no-walk", base])?;
    let forbidden = crate::globs::Globs::new(forbid_read);
    let mut keep = String::new();
    for line in String::from_utf8_lossy(&listing).lines() {
        let (oid, path) = line.split_once(' ').unwrap_or((line, ""));
        if !path.is_empty() && git::forbidden(&forbidden, path) {
            let kind = main.text(&["cat-file", "-t", oid])?;
            if kind == "blob" {
                continue;
            }
        }
        keep.push_str(oid);
        keep.push('\n');
    }
    let pack_base = lane_git_dir.join("objects").join("pack").join("pack");
    std::fs::create_dir_all(pack_base.parent().unwrap_or(lane_git_dir)).map_err(|source| {
        Error::Write {
            path: pack_base.clone(),
            source,
        }
    })?;
    let out = main.run_with_input(
        &[
            "pack-objects".to_string(),
            "-q".to_string(),
            pack_base.display().to_string(),
        ],
        Some(keep.as_bytes()),
    )?;
    let hash = String::from_utf8_lossy(&out).trim().to_string();
    let promisor = lane_git_dir
        .join("objects")
        .join("pack")
        .join(format!("pack-{hash}.promisor"));
    crate::layout::write_atomic(&promisor, b"")?;
    crate::layout::write_atomic(
        &lane_git_dir.join("shallow"),
        format!("{base}\n").as_bytes(),
    )?;
    // Missing blobs are a promisor's to fetch, and this promisor is nowhere.
    for (key, value) in [
        ("core.repositoryformatversion", "1"),
        ("extensions.partialClone", "airlock-forbidden"),
        ("remote.airlock-forbidden.promisor", "true"),
        (
            "remote.airlock-forbidden.url",
            "file:///nonexistent/airlock-forbid-read",
        ),
    ] {
        lane.run(&["config", key, value])?;
    }
    Ok(())
}

/// `<slug of the brief's label>-<4 hex>`: readable, typeable, unique. Runs
/// of briefs with the same title differ in the first hex digit a person
/// reads after the slug, while there are fewer than 16 of them (then in the
/// first two, and so on), so that `airlock list` tells them apart at a
/// glance and a short prefix names each.
fn new_run_id(al: &Airlock, brief: &Brief) -> Result<String> {
    let slug = slug(&brief.label());
    let stem = format!("{slug}-");
    let taken: Vec<String> = al
        .store
        .ids_with_prefix(&stem)?
        .into_iter()
        .map(|id| id[stem.len()..].to_string())
        .collect();
    for distinct in 1..=4 {
        for _ in 0..64 {
            let suffix = format!("{:04x}", OsRng.next_u32() & 0xffff);
            if taken
                .iter()
                .any(|t| t.get(..distinct) == suffix.get(..distinct))
            {
                continue;
            }
            let id = format!("{stem}{suffix}");
            if !al.store.exists(&id)? && !al.layout.run_dir(&id).exists() {
                return Ok(id);
            }
        }
    }
    Err(Error::Invalid(format!(
        "could not pick a free run id starting `{stem}`: the 65,536 of them are taken; give the brief another title"
    )))
}

/// The brief's label in lower case, runs of anything else than letters and
/// digits made one `-`, at most 24 characters; `run` when nothing is left.
fn slug(label: &str) -> String {
    let mut slug = String::new();
    for c in label.to_lowercase().chars() {
        if c.is_ascii_alphanumeric() {
            slug.push(c);
        } else if !slug.ends_with('-') && !slug.is_empty() {
            slug.push('-');
        }
        if slug.len() >= 24 {
            break;
        }
    }
    let slug = slug.trim_end_matches('-');
    if slug.is_empty() {
        "run".into()
    } else {
        slug.into()
    }
}
