//! What a run allows: its worktree and the brief's `touch` globs, and the
//! decision a tool call gets against them.

use std::fmt;
use std::path::{Component, Path, PathBuf};

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};

/// The rule a denied call broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    /// Pushes or publishes (`git push`, `npm publish`, `gh release`, ...).
    Publish,
    /// Reaches the network (`curl`, `ssh`, `git fetch`, `npm install`, ...).
    Network,
    /// Writes a path outside the run's worktree.
    WriteOutside,
    /// Edits a path the brief's `touch` does not name.
    OutsideTouch,
    /// Writes the worktree of a run whose lane keeps it read-only
    /// (`[lanes.NAME] worktree = "read-only"`: draft, by default).
    ReadOnlyWorktree,
    /// Invokes airlock's approve, promote, resolve or rollback.
    AirlockControl,
    /// Could not be understood, for an agent that cannot ask the user.
    NotUnderstood,
}

/// A refusal: the rule, what was refused and why, and what to do instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    pub rule: Rule,
    pub reason: String,
    pub instead: String,
}

impl fmt::Display for Denial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "airlock: {}. {}", self.reason, self.instead)
    }
}

/// The answer to one tool call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Nothing airlock objects to. The agent's own permission rules still
    /// apply: airlock never answers `allow` on the wire (see the README).
    Allow,
    /// Could not be understood statically; a person should look.
    Ask {
        reason: String,
    },
    Deny(Denial),
}

impl Decision {
    /// The same decision for an agent that cannot ask (Codex): `ask` becomes
    /// a denial.
    pub fn without_ask(self) -> Decision {
        match self {
            Decision::Ask { reason } => Decision::Deny(Denial {
                rule: Rule::NotUnderstood,
                reason,
                instead: NOT_UNDERSTOOD_INSTEAD.to_string(),
            }),
            other => other,
        }
    }
}

pub(crate) const NOT_UNDERSTOOD_INSTEAD: &str = "Write it as plain commands airlock can read \
     (no eval, computed command names or scripts fed to a shell), or run the steps one at a time";

pub(crate) const PROPOSE: &str = "Propose it as an action for review (`airlock propose RUN ACTION.toml`): \
     it runs at promotion, after approval";

pub(crate) const EGRESS: &str = "Propose the request as an action for review (`airlock propose RUN ACTION.toml`), \
     or ask for a lane whose egress allows the host";

pub(crate) const REVIEWER_ONLY: &str = "Approve, promote, resolve and rollback belong to the reviewer: \
     finish with `airlock submit RUN` and wait for review";

/// A `touch` glob that does not compile.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("touch glob `{glob}` is not valid: {problem}")]
pub struct GlobError {
    pub glob: String,
    pub problem: String,
}

/// The run a hook answers for.
#[derive(Debug, Clone)]
pub struct Policy {
    worktree: PathBuf,
    touch: Vec<String>,
    touch_set: GlobSet,
    /// The run's lane, when it keeps the worktree read-only.
    read_only_lane: Option<String>,
}

impl Policy {
    /// `worktree` is the run's worktree (absolute); `touch` are the brief's
    /// globs, relative to the worktree root, written as briefs write them
    /// (`*` stays in one directory, `**` crosses them, `dir/` is all below).
    pub fn new<S: AsRef<str>>(
        worktree: impl Into<PathBuf>,
        touch: &[S],
    ) -> Result<Policy, GlobError> {
        let mut builder = GlobSetBuilder::new();
        let mut kept = Vec::new();
        for pattern in touch {
            let pattern = pattern.as_ref();
            let normalized = normalize_glob(pattern);
            let glob = GlobBuilder::new(&normalized)
                .literal_separator(true)
                .backslash_escape(true)
                .build()
                .map_err(|e| GlobError {
                    glob: pattern.to_string(),
                    problem: e.kind().to_string(),
                })?;
            builder.add(glob);
            kept.push(pattern.to_string());
        }
        let touch_set = builder.build().map_err(|e| GlobError {
            glob: kept.join(", "),
            problem: e.to_string(),
        })?;
        Ok(Policy {
            worktree: normalize(&worktree.into()),
            touch: kept,
            touch_set,
            read_only_lane: None,
        })
    }

    /// The run's lane keeps its worktree read-only (`lane` names it): every
    /// write there is denied too, as the sandbox refuses it.
    pub fn with_read_only_worktree(mut self, lane: impl Into<String>) -> Policy {
        self.read_only_lane = Some(lane.into());
        self
    }

    /// The lane that keeps the worktree read-only, if the run's does.
    pub fn read_only_lane(&self) -> Option<&str> {
        self.read_only_lane.as_deref()
    }

    pub fn worktree(&self) -> &Path {
        &self.worktree
    }

    pub fn touch(&self) -> &[String] {
        &self.touch
    }

    /// Refuses a call made in `cwd` outside the worktree: the payload is
    /// another run's (or the agent left it), and paths in it would be
    /// judged against the wrong tree.
    pub fn require_cwd(&self, cwd: &str) -> Result<(), crate::HookInputError> {
        crate::contract::require_cwd_inside(cwd, &self.worktree)
    }

    /// Whether `path` (absolute, normalized) lies in the worktree.
    pub(crate) fn inside(&self, path: &Path) -> bool {
        path.starts_with(&self.worktree)
    }

    /// The decision for a shell command an agent is about to run in `cwd`.
    pub fn decide_command(&self, command: &str, cwd: &Path) -> Decision {
        crate::shell::analyze(self, command, cwd)
    }

    /// The decision for an edit (create, modify or delete) of `path`;
    /// a relative path is taken from `cwd`.
    pub fn decide_edit(&self, path: &str, cwd: &Path) -> Decision {
        if path.is_empty() {
            return Decision::Deny(Denial {
                rule: Rule::WriteOutside,
                reason: "the edit names no file".into(),
                instead: "name the file to edit".into(),
            });
        }
        let full = normalize(&cwd.join(path));
        if !self.inside(&full) {
            // Unlike a command's scratch files, an edit is the run's work:
            // /tmp is not in the brief's touch either.
            let mut denial = self.outside_denial(&full, "the edit writes");
            denial.instead = format!(
                "Edit files inside the worktree {} that the brief's touch includes",
                self.worktree.to_string_lossy()
            );
            return Decision::Deny(denial);
        }
        if let Some(denial) = self.read_only_denial(&full, "the edit writes") {
            return Decision::Deny(denial);
        }
        let relative = full.strip_prefix(&self.worktree).unwrap_or(&full);
        let relative = relative.to_string_lossy();
        if relative.is_empty() || !self.touch_set.is_match(relative.as_ref()) {
            return Decision::Deny(Denial {
                rule: Rule::OutsideTouch,
                reason: format!("the brief's touch does not include `{relative}`"),
                instead: format!(
                    "The brief lets this run touch only {}; if the change needs this path, \
                     say so in your summary so the reviewer can widen the brief",
                    self.touch_list()
                ),
            });
        }
        Decision::Allow
    }

    /// The denial of a write of `path` in the worktree, when the run's lane
    /// keeps it read-only.
    pub(crate) fn read_only_denial(&self, path: &Path, what: &str) -> Option<Denial> {
        let lane = self.read_only_lane.as_deref()?;
        Some(Denial {
            rule: Rule::ReadOnlyWorktree,
            reason: format!(
                "{what} `{}`, and the run's lane `{lane}` keeps its worktree read-only",
                path.to_string_lossy()
            ),
            instead: format!(
                "A run in lane `{lane}` reads and proposes only: describe the change in your summary \
                 or propose it as an action (`airlock propose RUN ACTION.toml`); changing files \
                 needs a run in a lane whose `worktree` is \"read-write\""
            ),
        })
    }

    pub(crate) fn outside_denial(&self, path: &Path, what: &str) -> Denial {
        Denial {
            rule: Rule::WriteOutside,
            reason: format!(
                "{what} `{}`, outside the run's worktree",
                path.to_string_lossy()
            ),
            instead: self.keep_inside(),
        }
    }

    /// What to do instead of writing outside the worktree.
    pub(crate) fn keep_inside(&self) -> String {
        format!(
            "Keep writes inside the worktree {} (or the run's own /tmp); a change elsewhere is a side effect: \
             propose it as an action for review (`airlock propose RUN ACTION.toml`)",
            self.worktree.to_string_lossy()
        )
    }

    fn touch_list(&self) -> String {
        if self.touch.is_empty() {
            return "nothing".into();
        }
        self.touch
            .iter()
            .map(|t| format!("`{t}`"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// `dir/` means everything below `dir`, as in briefs.
fn normalize_glob(pattern: &str) -> String {
    let p = pattern.trim_start_matches("./");
    match p.strip_suffix('/') {
        Some(dir) => format!("{dir}/**"),
        None => p.to_string(),
    }
}

/// Resolves `.` and `..` without touching the file system (symlinks are the
/// sandbox's business, not the hook's). `..` at the root stays at the root.
pub(crate) fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push("/");
                }
                if out.as_os_str().is_empty() {
                    out.push("/");
                }
            }
            other => out.push(other.as_os_str()),
        }
    }
    if out.as_os_str().is_empty() {
        out.push("/");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_resolves_dots_lexically() {
        assert_eq!(
            normalize(Path::new("/a/b/../c/./d")),
            PathBuf::from("/a/c/d")
        );
        assert_eq!(normalize(Path::new("/a/../../..")), PathBuf::from("/"));
        assert_eq!(
            normalize(Path::new("/w/run/../../etc")),
            PathBuf::from("/etc")
        );
    }

    #[test]
    fn a_read_only_worktree_denies_edits_and_command_writes_there_only() {
        let policy = Policy::new("/w", &["src/**"])
            .unwrap()
            .with_read_only_worktree("draft");
        let cwd = Path::new("/w");
        let rule = |d: Decision| match d {
            Decision::Deny(denial) => Some(denial.rule),
            _ => None,
        };
        assert_eq!(
            rule(policy.decide_edit("src/a.rs", cwd)),
            Some(Rule::ReadOnlyWorktree)
        );
        assert_eq!(
            rule(policy.decide_edit("/etc/x", cwd)),
            Some(Rule::WriteOutside)
        );
        assert_eq!(
            rule(policy.decide_command("echo x > src/a.rs", cwd)),
            Some(Rule::ReadOnlyWorktree)
        );
        assert_eq!(
            rule(policy.decide_command("git commit -qam x", cwd)),
            Some(Rule::ReadOnlyWorktree)
        );
        assert_eq!(
            rule(policy.decide_command("git -C /w/src branch evil", cwd)),
            Some(Rule::ReadOnlyWorktree)
        );
        assert_eq!(rule(policy.decide_command("git status", cwd)), None);
        assert_eq!(
            rule(policy.decide_command("cargo test > /tmp/log", cwd)),
            None
        );
        assert_eq!(rule(policy.decide_command("cat src/a.rs", cwd)), None);
        // Without the lane's say-so, the same edit is the run's work.
        let writable = Policy::new("/w", &["src/**"]).unwrap();
        assert_eq!(rule(writable.decide_edit("src/a.rs", cwd)), None);
    }

    #[test]
    fn invalid_touch_glob_is_a_typed_error() {
        let err = Policy::new("/w", &["src/[x"]).unwrap_err();
        assert_eq!(err.glob, "src/[x");
        assert!(err.to_string().contains("touch glob `src/[x` is not valid"));
    }
}
