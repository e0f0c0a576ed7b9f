//! What the workflow's lanes grant: the one decision every acting command
//! asks ([`Workflow::may`]), each capability of a lane with its default
//! ([`Workflow::capabilities`], [`Workflow::grants`]), the classes' limits,
//! and action scopes cumulated up the order. The types are `lanes`'s; this
//! sits above `workflow` so that `workflow` can parse them.

use crate::lanes::{Capabilities, Capability, Class, Denial, WorktreeAccess, rank};
use crate::names::LANES;
use crate::workflow::Workflow;

impl Workflow {
    /// What `lane` grants: its defaults with the workflow's `[lanes.NAME]`
    /// settings over them.
    pub fn capabilities(&self, lane: &str) -> Capabilities {
        let mut caps = Capabilities::defaults(lane);
        if let Some(l) = self.lanes.iter().find(|l| l.name == lane) {
            caps.exec = l.exec.unwrap_or(caps.exec);
            caps.worktree = l.worktree.unwrap_or(caps.worktree);
            caps.submit = l.submit.unwrap_or(caps.submit);
            caps.promote = l.promote.unwrap_or(caps.promote);
            if let Some(classes) = &l.auto_promote {
                caps.auto_promote = classes.clone();
            }
        }
        caps
    }

    /// Whether `lane` grants `capability` (to `class`): [`Self::capabilities`]
    /// without building it, as every acting command asks.
    pub fn grants(&self, lane: &str, capability: Capability, class: &str) -> bool {
        let set = self.lanes.iter().find(|l| l.name == lane);
        let defaults = || Capabilities::defaults(lane);
        match capability {
            Capability::Exec => set.and_then(|l| l.exec).unwrap_or_else(|| defaults().exec),
            Capability::WriteWorktree => {
                set.and_then(|l| l.worktree)
                    .unwrap_or_else(|| defaults().worktree)
                    == WorktreeAccess::ReadWrite
            }
            Capability::Submit => set
                .and_then(|l| l.submit)
                .unwrap_or_else(|| defaults().submit),
            Capability::Promote => set
                .and_then(|l| l.promote)
                .unwrap_or_else(|| defaults().promote),
            // No lane auto-promotes by default.
            Capability::AutoPromote => set
                .and_then(|l| l.auto_promote.as_ref())
                .is_some_and(|classes| classes.iter().any(|c| c == class)),
        }
    }

    /// The lowest lane that grants `capability` (to `class`).
    pub fn lowest_lane_granting(
        &self,
        capability: Capability,
        class: &str,
    ) -> Option<&'static str> {
        LANES
            .iter()
            .copied()
            .find(|l| self.grants(l, capability, class))
    }

    /// `[classes.NAME]`, when the workflow declares it.
    pub fn class(&self, name: &str) -> Option<&Class> {
        self.classes.iter().find(|c| c.name == name)
    }

    /// Whether a run of `class` may be in `lane`: always when the workflow
    /// declares no classes; otherwise the class must be declared and `lane`
    /// at most its `max_lane`.
    pub fn class_allows(&self, class: &str, lane: &str) -> Result<(), Denial> {
        if self.classes.is_empty() {
            return Ok(());
        }
        match self.class(class) {
            None => Err(Denial::ClassLimit { max_lane: None }),
            Some(Class {
                max_lane: Some(max),
                ..
            }) if rank(lane) > rank(max) => Err(Denial::ClassLimit {
                max_lane: Some(max.clone()),
            }),
            Some(_) => Ok(()),
        }
    }

    /// The one decision: may a run of `class` in `lane` use `capability`?
    /// Its class must allow the lane (the workflow may have lowered the
    /// limit since the run started), and the lane must grant it.
    pub fn may(&self, lane: &str, class: &str, capability: Capability) -> Result<(), Denial> {
        self.class_allows(class, lane)?;
        if self.grants(lane, capability, class) {
            return Ok(());
        }
        Err(Denial::NotGranted {
            capability,
            granted_by: self
                .lowest_lane_granting(capability, class)
                .map(str::to_string),
        })
    }

    /// The action scopes `lane` grants: its own and every lower lane's.
    pub fn lane_scopes(&self, lane: &str) -> Vec<&str> {
        let top = rank(lane).unwrap_or(0);
        LANES[..=top]
            .iter()
            .filter_map(|name| self.lanes.iter().find(|l| l.name == *name))
            .flat_map(|l| l.scopes.iter().map(String::as_str))
            .collect()
    }

    /// The lowest lane whose (cumulative) scopes cover `scope`.
    pub fn lowest_lane_granting_scope(&self, scope: &str) -> Option<&'static str> {
        LANES.iter().copied().find(|l| {
            self.lane_scopes(l)
                .iter()
                .any(|g| crate::action::pattern::matches(g, scope))
        })
    }

    /// Whether `scope` is a *production* scope: granted by `production`'s own
    /// scopes and by no lower lane (`staging` or below grants the others).
    pub fn is_production_scope(&self, scope: &str) -> bool {
        self.lowest_lane_granting_scope(scope) == Some("production")
    }
}
