//! airlock's network egress: what a sandbox may reach, and the proxy that is
//! its only way out.
//!
//! - [`allow`]: the host allowlist of the `network` setting, parsed and
//!   refused with what to write instead, the decision for a host and port,
//!   and [`allow::narrow`]: a brief may only narrow its lane. It is pure
//!   syntax, so it lives in the model (`airlock_model::network`), which
//!   the workflow and the brief parse with; re-exported here as `allow`.
//! - [`address`]: which resolved addresses are not public (loopback,
//!   private, link-local, multicast, metadata, ...).
//! - [`proxy`]: the HTTP CONNECT / plain HTTP / SOCKS5 proxy on a Unix
//!   socket and a loopback port, which resolves, checks and dials itself.
//! - [`record`]: the [`ConnectionRecord`] every connection leaves.
//!
//! The library never prints; it returns data and typed errors.

pub mod address;
pub use airlock_model::network as allow;
pub mod proxy;
pub mod record;

pub use address::{AddressClass, classify};
pub use allow::{
    Allowlist, Host, HostPattern, Network, NotListed, PatternError, Rule, Widening, narrow,
};
pub use proxy::{Proxy, ProxyConfig, ProxyError};
pub use record::{ConnectionRecord, Outcome, Protocol, Refusal, Sink};
