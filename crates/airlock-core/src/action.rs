//! Side effects outside the worktree, staged as a plan. The specs, their
//! parsing, scopes and settings are the model's ([`airlock_model::action`],
//! re-exported here); the engine previews and rehearses them, plans them
//! per run, applies them live and rolls them back:
//!
//! - [`preview`]: what a reviewer reads, and the rehearsals;
//! - [`plan`]: proposing, withdrawing and listing a run's actions;
//! - [`apply`]: live execution with `started`/`finished` ledger events;
//! - [`rollback`]: reverting a promotion and running the compensations.

pub use airlock_model::action::*;

pub mod apply;
pub mod plan;
pub mod preview;
pub mod rollback;
