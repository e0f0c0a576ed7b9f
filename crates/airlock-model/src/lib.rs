//! airlock's model: its data and the parsing of it, with no I/O. Briefs,
//! workflows (lanes, gates, policy, action and release settings), runs and
//! their states, action specs and scopes, check reports, diagnostics, and
//! the errors parsing and validation give. Reading files, running programs
//! and keeping state are the engine's (`airlock-core`) and the store's.

pub mod action;
pub mod brief;
pub mod check;
pub mod conditions;
pub mod counts;
pub mod diag;
pub mod digest;
pub mod durations;
pub mod error;
pub mod evidence;
pub mod globs;
pub mod hostile;
pub mod lane_grants;
pub mod lanes;
pub mod mcp;
pub mod names;
pub mod network;
pub mod owners;
pub mod panel;
pub mod promotion;
pub mod release;
pub mod run;
pub mod soak;
pub mod state;
pub mod team;
pub mod trace;
pub mod workflow;

pub use error::{Code, Error, ErrorClass, Refusal, Result};
