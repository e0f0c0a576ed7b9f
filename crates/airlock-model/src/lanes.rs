//! Trust lanes' capabilities and the workflow's classes: what each lane
//! grants (`[lanes.NAME] exec`, `worktree`, `submit`, `promote`,
//! `auto_promote`), how far a class may go (`[classes.NAME] max_lane`), the
//! parsing of both, and the refusal of the one question every acting command
//! asks (`Workflow::may`, in `lane_grants`, with cumulative scopes). Pure: it
//! reads only the workflow already parsed.

use serde::Serialize;
use toml::de::{DeTable, DeValue};

use crate::diag::{self, Diagnostics};
use crate::error::{Code, Refusal};
use crate::names::{LANES, valid_name};

/// What a lane's commands may do to the run's worktree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum WorktreeAccess {
    /// The sandbox mounts the worktree read-only: nothing a command does
    /// (git included) can change a file or the run's branch.
    ReadOnly,
    ReadWrite,
}

impl WorktreeAccess {
    pub fn as_str(self) -> &'static str {
        match self {
            WorktreeAccess::ReadOnly => "read-only",
            WorktreeAccess::ReadWrite => "read-write",
        }
    }
}

/// A capability a lane grants or withholds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Capability {
    /// Run commands, gates, snapshots, the agent (`exec`).
    Exec,
    /// Commands may change the worktree (`worktree = "read-write"`).
    WriteWorktree,
    /// Submit the run for review (`submit`).
    Submit,
    /// Be promoted after approval (`promote`).
    Promote,
    /// Be promoted by the panel alone (`auto_promote` lists the run's class).
    AutoPromote,
}

impl Capability {
    pub const ALL: &[Capability] = &[
        Capability::Exec,
        Capability::WriteWorktree,
        Capability::Submit,
        Capability::Promote,
        Capability::AutoPromote,
    ];

    /// The capability's name, as `--json` and the refusals give it.
    pub fn as_str(self) -> &'static str {
        match self {
            Capability::Exec => "exec",
            Capability::WriteWorktree => "write-worktree",
            Capability::Submit => "submit",
            Capability::Promote => "promote",
            Capability::AutoPromote => "auto-promote",
        }
    }

    /// What a lane's table says to grant it (for `class`, when it is
    /// auto-promotion).
    pub fn setting(self, class: &str) -> String {
        match self {
            Capability::Exec => "exec = true".into(),
            Capability::WriteWorktree => "worktree = \"read-write\"".into(),
            Capability::Submit => "submit = true".into(),
            Capability::Promote => "promote = true".into(),
            Capability::AutoPromote => format!("auto_promote = [\"{class}\"]"),
        }
    }
}

/// What one lane grants, defaults and the workflow's settings together.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Capabilities {
    pub exec: bool,
    pub worktree: WorktreeAccess,
    pub submit: bool,
    pub promote: bool,
    /// Classes whose runs the panel may promote alone.
    pub auto_promote: Vec<String>,
}

impl Capabilities {
    /// What `lane` grants when the workflow says nothing: draft runs
    /// commands on a read-only worktree and submits nothing; sandbox may
    /// change its worktree but not submit; governed, staging and production
    /// submit and are promoted after approval. No lane auto-promotes.
    pub fn defaults(lane: &str) -> Capabilities {
        let rank = rank(lane).unwrap_or(0);
        Capabilities {
            exec: true,
            worktree: if rank == 0 {
                WorktreeAccess::ReadOnly
            } else {
                WorktreeAccess::ReadWrite
            },
            submit: rank >= 2,
            promote: rank >= 2,
            auto_promote: Vec::new(),
        }
    }

    pub fn grants(&self, capability: Capability, class: &str) -> bool {
        match capability {
            Capability::Exec => self.exec,
            Capability::WriteWorktree => self.worktree == WorktreeAccess::ReadWrite,
            Capability::Submit => self.submit,
            Capability::Promote => self.promote,
            Capability::AutoPromote => self.auto_promote.iter().any(|c| c == class),
        }
    }
}

/// `[classes.NAME]`: a kind of work, and the highest lane its briefs may ask.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Class {
    pub name: String,
    /// `None`: every lane.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_lane: Option<String>,
}

/// The position of `lane` in the order draft < sandbox < governed < staging
/// < production.
pub fn rank(lane: &str) -> Option<usize> {
    LANES.iter().position(|l| *l == lane)
}

/// Why [`Workflow::may`] said no.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Denial {
    /// The lane does not grant `capability`; `granted_by` is the lowest lane
    /// that does (none: no lane of this workflow does).
    NotGranted {
        capability: Capability,
        granted_by: Option<String>,
    },
    /// The run's class may not be in its lane (the workflow's `[classes]`
    /// no longer allow it): `max_lane` is the class's limit, `None` when
    /// the workflow declares classes but not this one.
    ClassLimit { max_lane: Option<String> },
}

/// A command refused by its run's lane: the typed form of `lane-refused`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LaneRefusal {
    /// The command that asked (`submit`, `exec`, `check`, …).
    pub command: String,
    pub run: String,
    pub lane: String,
    pub class: String,
    pub denial: Denial,
}

impl LaneRefusal {
    /// The refusal as every error is reported: what, why, what to change.
    pub fn to_refusal(&self) -> Refusal {
        let LaneRefusal {
            command,
            run,
            lane,
            class,
            denial,
        } = self;
        let (what, reasons, hint) = match denial {
            Denial::NotGranted {
                capability,
                granted_by,
            } => {
                let setting = capability.setting(class);
                let what = format!(
                    "`{command}` is refused: run {run} is in lane `{lane}`, which does not grant `{}`",
                    capability.as_str()
                );
                let mut reasons = vec![format!(
                    "lane `{lane}` does not grant `{}` ({setting} is not set under [lanes.{lane}])",
                    capability.as_str()
                )];
                let hint = match granted_by {
                    Some(l) => {
                        reasons.push(format!(
                            "`{l}` is the lowest lane that grants `{}`",
                            capability.as_str()
                        ));
                        format!(
                            "start the brief again with `lane = \"{l}\"` (if class `{class}` may use it), \
                             or grant it in .airlock/workflow.toml: `[lanes.{lane}] {setting}`"
                        )
                    }
                    None => {
                        reasons.push(format!(
                            "no lane of this workflow grants `{}`",
                            capability.as_str()
                        ));
                        format!("grant it in .airlock/workflow.toml: `[lanes.{lane}] {setting}`")
                    }
                };
                (what, reasons, hint)
            }
            Denial::ClassLimit { max_lane } => {
                let what = format!(
                    "`{command}` is refused: run {run} of class `{class}` may not be in lane `{lane}`"
                );
                let (reason, hint) = match max_lane {
                    Some(max) => (
                        format!("[classes.{class}] max_lane is `{max}`, below `{lane}`"),
                        format!(
                            "end the run (`airlock reject {run} --reason ...`) and start the brief with \
                             `lane = \"{max}\"` or a lower lane, or raise `[classes.{class}] max_lane`"
                        ),
                    ),
                    None => (
                        format!("the workflow declares classes, and not `{class}`"),
                        format!(
                            "end the run and start a brief of a declared class, or declare \
                             `[classes.{class}] max_lane = \"{lane}\"` in .airlock/workflow.toml"
                        ),
                    ),
                };
                (what, vec![reason], hint)
            }
        };
        let mut refusal = Refusal::new(Code::LaneRefused, what, reasons, hint);
        refusal.details = serde_json::to_value(self).ok();
        refusal
    }
}

impl From<LaneRefusal> for crate::error::Error {
    fn from(r: LaneRefusal) -> Self {
        crate::error::Error::Refused(r.to_refusal())
    }
}

/// `[classes.NAME] max_lane = "LANE"`: every problem reported.
pub(crate) fn parse_classes(root: &DeTable<'_>, diags: &mut Diagnostics<'_>) -> Vec<Class> {
    let mut classes = Vec::new();
    let Some(table) = diag::get(root, "classes").and_then(|v| diag::table(v, "classes", diags))
    else {
        return classes;
    };
    for (key, value) in table.iter() {
        let name = key.get_ref().to_string();
        if !valid_name(&name) {
            diags.error(
                key.span(),
                format!("class name `{name}` is not allowed"),
                Some("use letters, digits, `-` and `_`, e.g. `[classes.bugfix]`".into()),
            );
            continue;
        }
        let Some(class_table) = diag::table(value, &format!("classes.{name}"), diags) else {
            continue;
        };
        diag::unknown_keys(
            class_table,
            &["max_lane"],
            &format!("[classes.{name}]"),
            diags,
        );
        let max_lane = diag::get(class_table, "max_lane").and_then(|v| {
            let lane = diag::string(v, "max_lane", diags)?;
            if rank(&lane).is_some() {
                return Some(lane);
            }
            let help = diag::did_you_mean(&lane, LANES.iter().copied())
                .unwrap_or_else(|| format!("lanes are, in order: {}", LANES.join(", ")));
            diags.error(
                v.span(),
                format!("`max_lane` of class `{name}` is `{lane}`, which is not a lane"),
                Some(help),
            );
            None
        });
        classes.push(Class { name, max_lane });
    }
    classes
}

/// `worktree = "read-only" | "read-write"`.
pub(crate) fn worktree_access(
    value: &toml::Spanned<DeValue<'_>>,
    diags: &mut Diagnostics<'_>,
) -> Option<WorktreeAccess> {
    let text = diag::string(value, "worktree", diags)?;
    match text.as_str() {
        "read-only" => Some(WorktreeAccess::ReadOnly),
        "read-write" => Some(WorktreeAccess::ReadWrite),
        other => {
            diags.error(
                value.span(),
                format!("`worktree` must be \"read-only\" or \"read-write\", found \"{other}\""),
                Some("write `worktree = \"read-only\"` (commands cannot change the worktree) or `worktree = \"read-write\"`".into()),
            );
            None
        }
    }
}

/// Each lane's `auto_promote` must name declared classes: with no
/// `[classes]`, a brief could claim any class and be promoted by the panel
/// alone.
pub(crate) fn check_auto_promote(
    root: &DeTable<'_>,
    classes: &[Class],
    diags: &mut Diagnostics<'_>,
) {
    let Some(v) = diag::get(root, "lanes") else {
        return;
    };
    let DeValue::Table(lanes) = v.get_ref() else {
        return;
    };
    for (lane, table) in lanes.iter() {
        let DeValue::Table(table) = table.get_ref() else {
            continue;
        };
        let Some(list) = diag::get(table, "auto_promote") else {
            continue;
        };
        let DeValue::Array(items) = list.get_ref() else {
            continue;
        };
        for item in items.iter() {
            let DeValue::String(class) = item.get_ref() else {
                continue;
            };
            if classes.iter().any(|c| c.name == class.as_ref()) {
                continue;
            }
            let lane = lane.get_ref();
            let help = if classes.is_empty() {
                format!(
                    "declare it, `[classes.{class}] max_lane = \"{lane}\"`: while the workflow declares no classes a brief may name any class, and would be promoted without review"
                )
            } else {
                diag::did_you_mean(class, classes.iter().map(|c| c.name.as_str())).unwrap_or_else(
                    || {
                        format!(
                            "declared classes: {}; or declare it: `[classes.{class}] max_lane = \"{lane}\"`",
                            classes
                                .iter()
                                .map(|c| c.name.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        )
                    },
                )
            };
            diags.error(
                item.span(),
                format!(
                    "`auto_promote` of lane `{lane}` names class `{class}`, which [classes] does not declare"
                ),
                Some(help),
            );
        }
    }
}

/// Release runs are of class `release` in `[release] lane`: once the
/// workflow declares classes, it must declare that one and let it reach
/// that lane, or no release could start.
pub(crate) fn check_release_class(
    root: &DeTable<'_>,
    classes: &[Class],
    lane: &str,
    diags: &mut Diagnostics<'_>,
) {
    let class = crate::release::CLASS;
    if classes.is_empty() {
        return;
    }
    let problem = match classes.iter().find(|c| c.name == class) {
        None => {
            format!("the workflow declares classes but not `{class}`, the class of release runs")
        }
        Some(Class {
            max_lane: Some(max),
            ..
        }) if rank(lane) > rank(max) => format!(
            "release runs are in lane `{lane}` ([release] lane), past `[classes.{class}] max_lane = \"{max}\"`"
        ),
        Some(_) => return,
    };
    let span = diag::get(root, "release").map_or(0..0, |v| v.span());
    diags.error(
        span,
        problem,
        Some(format!(
            "declare `[classes.{class}] max_lane = \"{lane}\"`, or set `[release] lane` within its limit"
        )),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::brief::Brief;
    use crate::error::Error;
    use crate::workflow::Workflow;
    use crate::workflow::tests::problems;

    fn brief_problems(workflow: &Workflow, text: &str) -> Vec<String> {
        match Brief::parse(text, "b.toml", Some(workflow)) {
            Err(Error::InvalidToml { diagnostics, .. }) => diagnostics
                .iter()
                .map(|d| format!("{}:{}: {}", d.line, d.column, d.message))
                .collect(),
            other => panic!("expected problems, got {other:?}"),
        }
    }

    const BRIEF: &str =
        "objective = \"o\"\ntouch = [\"src/**\"]\nchecks = []\nrollback = \"revert\"\n";

    #[test]
    fn the_defaults_grow_up_the_order() {
        let wf = Workflow::parse("", "wf.toml").unwrap();
        let row = |lane: &str| {
            let c = wf.capabilities(lane);
            (
                c.exec,
                c.worktree.as_str(),
                c.submit,
                c.promote,
                c.auto_promote.len(),
            )
        };
        assert_eq!(row("draft"), (true, "read-only", false, false, 0));
        assert_eq!(row("sandbox"), (true, "read-write", false, false, 0));
        for lane in ["governed", "staging", "production"] {
            assert_eq!(row(lane), (true, "read-write", true, true, 0));
        }
    }

    #[test]
    fn the_workflow_overrides_a_lane_and_the_refusal_names_the_lowest_granting_lane() {
        let wf = Workflow::parse(
            "[lanes.sandbox]\nsubmit = true\nworktree = \"read-only\"\n[lanes.governed]\nexec = false\n",
            "wf.toml",
        )
        .unwrap();
        assert!(wf.capabilities("sandbox").submit);
        assert_eq!(
            wf.capabilities("sandbox").worktree,
            WorktreeAccess::ReadOnly
        );
        assert_eq!(
            wf.may("draft", "x", Capability::Submit),
            Err(Denial::NotGranted {
                capability: Capability::Submit,
                granted_by: Some("sandbox".into())
            })
        );
        assert_eq!(
            wf.may("sandbox", "x", Capability::WriteWorktree),
            Err(Denial::NotGranted {
                capability: Capability::WriteWorktree,
                granted_by: Some("governed".into())
            })
        );
        assert!(wf.may("governed", "x", Capability::Exec).is_err());
        assert_eq!(
            wf.may("production", "x", Capability::AutoPromote),
            Err(Denial::NotGranted {
                capability: Capability::AutoPromote,
                granted_by: None
            })
        );
    }

    #[test]
    fn grants_agrees_with_capabilities_for_every_lane_and_capability() {
        let wf = Workflow::parse(
            "[classes.docs]\n[lanes.draft]\nworktree = \"read-write\"\nsubmit = true\n\
             [lanes.staging]\nexec = false\npromote = false\nauto_promote = [\"docs\"]\n",
            "wf.toml",
        )
        .unwrap();
        for lane in LANES {
            for capability in Capability::ALL {
                for class in ["docs", "other"] {
                    assert_eq!(
                        wf.grants(lane, *capability, class),
                        wf.capabilities(lane).grants(*capability, class),
                        "{lane} {capability:?} {class}"
                    );
                }
            }
        }
    }

    #[test]
    fn scopes_are_cumulative_up_the_order() {
        let wf = Workflow::parse(
            "[lanes.sandbox]\nscopes = [\"http:POST:a.test/*\"]\n\
             [lanes.staging]\nscopes = [\"http:POST:staging.test/*\"]\n\
             [lanes.production]\nscopes = [\"http:POST:prod.test/*\"]\n",
            "wf.toml",
        )
        .unwrap();
        assert_eq!(wf.lane_scopes("draft"), Vec::<&str>::new());
        assert_eq!(wf.lane_scopes("governed"), ["http:POST:a.test/*"]);
        assert_eq!(
            wf.lane_scopes("production"),
            [
                "http:POST:a.test/*",
                "http:POST:staging.test/*",
                "http:POST:prod.test/*"
            ]
        );
        assert_eq!(
            wf.lowest_lane_granting_scope("http:POST:staging.test/x"),
            Some("staging")
        );
        assert!(!wf.is_production_scope("http:POST:staging.test/x"));
        assert!(!wf.is_production_scope("http:POST:a.test/x"));
        assert!(wf.is_production_scope("http:POST:prod.test/x"));
        assert_eq!(
            wf.lowest_lane_granting_scope("http:POST:other.test/x"),
            None
        );
    }

    #[test]
    fn every_bad_lane_and_class_setting_is_reported_at_once() {
        assert_eq!(
            problems(
                "[lanes.draft]\nexec = \"yes\"\nworktree = \"rw\"\nsubmt = true\n\
                 [lanes.gouverned]\nsubmit = true\n\
                 [lanes.production]\nauto_promote = [\"bugfix\"]\n\
                 [classes.docs]\nmax_lane = \"prod\"\nmax_lanes = \"x\"\n\
                 [classes.\"bad name\"]\n"
            ),
            vec![
                "2:8: `exec` must be true or false, found a string",
                "3:12: `worktree` must be \"read-only\" or \"read-write\", found \"rw\"",
                "4:1: unknown key `submt` in [lanes.draft]",
                "5:8: unknown lane `gouverned`",
                "8:17: `auto_promote` of lane `production` names class `bugfix`, which [classes] does not declare",
                "10:12: `max_lane` of class `docs` is `prod`, which is not a lane",
                "11:1: unknown key `max_lanes` in [classes.docs]",
                "12:10: class name `bad name` is not allowed",
            ]
        );
    }

    #[test]
    fn a_brief_must_name_a_declared_class_and_stay_within_its_max_lane() {
        let wf = Workflow::parse(
            "[classes.docs]\nmax_lane = \"sandbox\"\n[classes.bugfix]\n",
            "wf.toml",
        )
        .unwrap();
        let ok = Brief::parse(
            &format!("{BRIEF}class = \"docs\"\nlane = \"draft\"\n"),
            "b.toml",
            Some(&wf),
        )
        .unwrap();
        assert_eq!((ok.class.as_str(), ok.lane.as_str()), ("docs", "draft"));
        // No max_lane: every lane.
        Brief::parse(
            &format!("{BRIEF}class = \"bugfix\"\nlane = \"production\"\n"),
            "b.toml",
            Some(&wf),
        )
        .unwrap();
        assert_eq!(
            brief_problems(
                &wf,
                &format!("{BRIEF}class = \"docs\"\nlane = \"staging\"\n")
            ),
            vec![
                "6:8: lane `staging` is past what class `docs` may use: its `max_lane` is `sandbox`"
            ]
        );
        assert_eq!(
            brief_problems(&wf, &format!("{BRIEF}class = \"docs\"\n")),
            vec![
                "6:1: lane `governed` is past what class `docs` may use: its `max_lane` is `sandbox` (the brief sets no `lane`, so it is `governed`)"
            ]
        );
        assert_eq!(
            brief_problems(
                &wf,
                &format!("{BRIEF}class = \"invented\"\nlane = \"draft\"\n")
            ),
            vec!["5:9: class `invented` is not declared in the workflow's [classes]"]
        );
        assert_eq!(
            brief_problems(&wf, BRIEF),
            vec!["5:1: the brief has no `class`, and the workflow declares classes"]
        );
        // Without classes, any class, any lane.
        let open = Workflow::parse("", "wf.toml").unwrap();
        Brief::parse(
            &format!("{BRIEF}class = \"invented\"\nlane = \"production\"\n"),
            "b.toml",
            Some(&open),
        )
        .unwrap();
    }

    #[test]
    fn a_release_table_needs_the_release_class_once_classes_are_declared() {
        assert_eq!(
            problems("[classes.docs]\n[release]\nlane = \"staging\"\ntouch = [\"CHANGELOG.md\"]\n"),
            vec!["2:1: the workflow declares classes but not `release`, the class of release runs"]
        );
        assert_eq!(
            problems(
                "[classes.release]\nmax_lane = \"governed\"\n[release]\nlane = \"staging\"\ntouch = [\"CHANGELOG.md\"]\n"
            ),
            vec![
                "3:1: release runs are in lane `staging` ([release] lane), past `[classes.release] max_lane = \"governed\"`"
            ]
        );
        Workflow::parse(
            "[classes.release]\n[release]\nlane = \"staging\"\ntouch = [\"CHANGELOG.md\"]\n",
            "wf.toml",
        )
        .unwrap();
        Workflow::parse("[release]\ntouch = [\"CHANGELOG.md\"]\n", "wf.toml").unwrap();
    }

    #[test]
    fn a_run_past_a_lowered_class_limit_is_refused_whatever_it_asks() {
        let wf = Workflow::parse("[classes.docs]\nmax_lane = \"draft\"\n", "wf.toml").unwrap();
        assert_eq!(
            wf.may("governed", "docs", Capability::Exec),
            Err(Denial::ClassLimit {
                max_lane: Some("draft".into())
            })
        );
        assert_eq!(
            wf.may("draft", "other", Capability::Exec),
            Err(Denial::ClassLimit { max_lane: None })
        );
        assert_eq!(wf.may("draft", "docs", Capability::Exec), Ok(()));
    }

    #[test]
    fn the_refusal_says_lane_capability_and_what_to_change() {
        let r = LaneRefusal {
            command: "submit".into(),
            run: "fix-1".into(),
            lane: "sandbox".into(),
            class: "bugfix".into(),
            denial: Denial::NotGranted {
                capability: Capability::Submit,
                granted_by: Some("governed".into()),
            },
        }
        .to_refusal();
        assert_eq!(r.code, Code::LaneRefused);
        assert_eq!(
            r.to_string(),
            "`submit` is refused: run fix-1 is in lane `sandbox`, which does not grant `submit`\n  \
             - lane `sandbox` does not grant `submit` (submit = true is not set under [lanes.sandbox])\n  \
             - `governed` is the lowest lane that grants `submit`"
        );
        assert!(r.hint.contains("`lane = \"governed\"`"), "{}", r.hint);
        assert!(
            r.hint.contains("`[lanes.sandbox] submit = true`"),
            "{}",
            r.hint
        );
        let details = r.details.unwrap();
        assert_eq!(details["lane"], "sandbox");
        assert_eq!(details["denial"]["kind"], "not-granted");
        assert_eq!(details["denial"]["capability"], "submit");
        assert_eq!(details["denial"]["granted_by"], "governed");
    }
}
