//! airlock's answers to coding agents' tool-call hooks.
//!
//! A pure library: it reads the bytes a hook was given and returns what the
//! hook should print and exit with. See the README for the contracts and
//! their sources. Hooks are advisory; the sandbox and the staging are the
//! boundary.

mod contract;
mod inline;
mod patch;
mod policy;
mod shell;

pub mod claude;
pub mod codex;

pub use contract::{
    HookInputError, HookReply, MAX_CWD_BYTES, MAX_ID_CHARS, MAX_INPUT_BYTES, MAX_SUMMARY_CHARS,
    ToolCallRecord,
};
pub use policy::{Decision, Denial, GlobError, Policy, Rule};
pub use shell::MAX_COMMAND_BYTES;
