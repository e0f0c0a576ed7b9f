//! Output snapshots: golden files of a command's normalized output.
//!
//! - [`format`]: the `.snap` file (header, exit code, fenced stdout and stderr);
//! - [`normalize`]: what varies between runs becomes a placeholder;
//! - [`matcher`]: `[..]` and `...` wildcards in goldens, without backtracking;
//! - [`diff`]: comparison and a readable, optionally coloured difference;
//! - [`capture`]: output logs to bodies (binary and oversized output by digest);
//! - [`store`]: a directory of goldens and pending `.snap.new` results.
//!
//! It returns data and strings; it never prints.

pub mod capture;
pub mod diff;
pub mod error;
pub mod format;
pub mod matcher;
pub mod normalize;
pub mod store;

pub use capture::{DEFAULT_MAX_BYTES, body_of, is_binary, read_body};
pub use diff::{Comparison, DiffStat, compare, is_hidden_format, render_diff, render_text_diff};
pub use error::SnapError;
pub use format::{Body, FORMAT_VERSION, Snapshot};
pub use normalize::{Context, Filter, Normalizer, check_regex};
pub use store::{Decision, Entry, Outcome, SnapDir, State, validate_name};
