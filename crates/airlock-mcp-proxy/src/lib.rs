//! `airlock mcp-proxy`: an MCP server for the agent in front of an upstream
//! MCP server, which decides each tool call by the workflow's `[mcp]` rules
//! (pass, stage as an `mcp` action, refuse) and pins tool definitions by
//! digest; and [`WithMcp`], the MCP client that makes approved calls at
//! promotion behind the model's `Effects` trait. See README.md.

pub mod effects;
pub mod pins;
pub mod proxy;

pub use effects::WithMcp;
pub use proxy::{CallRecord, Config, MAX_ARGUMENTS, ProxyError, Stage, Staged, serve_stdio};
