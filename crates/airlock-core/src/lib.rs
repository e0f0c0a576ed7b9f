//! airlock's engine: briefs, workflows, runs and their worktrees, traced
//! commands, gates and stop conditions, proofs, review decisions, promotion,
//! and recovery after a crash. It returns data; it never prints.

pub mod action;
pub mod agent;
pub mod airlock;
pub mod approvals;
pub mod base_gates;
pub mod check;
pub mod conditions;
pub mod config;
pub mod confinement;
pub mod decide;
pub mod egress;
pub mod error;
pub mod evaluator;
pub mod evidence;
pub mod exec;
pub mod gate_counts;
pub mod gc;
pub mod guards;
pub mod hook;
pub mod identity;
pub mod init;
pub mod inspect;
pub mod lane;
pub mod lane_policy;
pub mod ledger_audit;
pub mod logs;
pub mod logstore;
pub mod migrate;
pub mod offline;
pub mod open;
pub mod panel;
pub mod promote;
pub mod proof;
pub mod quota;
pub mod recover;
pub mod release;
pub mod remote;
pub mod repo;
pub mod report;
mod rules_file;
pub mod seal;
pub mod seal_notes;
pub mod site;
pub mod snapshot;
pub mod soak;
pub mod start;
pub mod stats;
pub mod stops;
pub mod store_backend;
pub mod submit;

// The model's modules, at the paths they had when they were the engine's.
pub use airlock_model::{brief, counts, diag, globs, hostile, promotion, run, workflow};
// The store's modules, at the paths they had when they were the engine's.
pub use airlock_store::{self as store, head as ledger_head};

pub use airlock::{Airlock, init_program};
pub use airlock_ledger as ledger;
pub use airlock_proof as proofs;
pub use airlock_sandbox as sandbox;
pub use airlock_snap as snap;
pub use error::{Code, Error, ErrorClass, Result};
pub use repo::failpoint::failpoint;
pub use site::Site;
// The repository helpers, at the paths they had before `repo/`.
pub use repo::{git, keydir, layout, lock};
