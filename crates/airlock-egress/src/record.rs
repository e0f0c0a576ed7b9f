//! The evidence each connection leaves: one [`ConnectionRecord`], delivered
//! to the caller's [`Sink`] when the connection ends.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::mpsc;

use serde::{Deserialize, Serialize};

use crate::address::AddressClass;

/// How the client asked the proxy for the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Protocol {
    /// HTTP `CONNECT host:port` (a tunnel; HTTPS goes this way).
    Connect,
    /// A plain HTTP request in absolute form (`GET http://host/path`).
    Http,
    /// SOCKS5 `CONNECT`, names resolved by the proxy.
    Socks5,
}

/// Why a connection was refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "kebab-case")]
pub enum Refusal {
    /// No allowlist entry allows the host and port as the client asked.
    NotListed { allow_with: String },
    /// The name is allowed, but every address it resolved to is loopback,
    /// private, link-local, multicast, metadata or otherwise not public, and
    /// the allowlist does not name the address itself.
    NotPublic {
        class: AddressClass,
        allow_with: String,
    },
    /// A request the proxy does not carry (SOCKS5 `BIND`, `UDP ASSOCIATE`,
    /// an authentication method other than none, `https://` without CONNECT).
    Unsupported { what: String },
    /// A request that could not be read as HTTP or SOCKS5, or a host that is
    /// not a host.
    Malformed { problem: String },
}

/// What became of the connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "kebab-case")]
pub enum Outcome {
    /// Allowed by `rule`; `address_rule` is the entry that lets a name reach
    /// a non-public address, when one did.
    Allowed {
        rule: String,
        address_rule: Option<String>,
    },
    /// Allowed by `rule`, but the name did not resolve or the address did
    /// not answer.
    Failed {
        rule: String,
        error: String,
    },
    Refused(Refusal),
}

/// One connection through the proxy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectionRecord {
    pub protocol: Protocol,
    /// The host as the client asked for it (a name, or an address; IPv6 in
    /// brackets); empty when the request could not be read that far.
    pub host: String,
    pub port: u16,
    /// The address dialled, or the address refused.
    pub address: Option<SocketAddr>,
    #[serde(flatten)]
    pub outcome: Outcome,
    /// Bytes from the client to the server (for plain HTTP, the rewritten
    /// request head and the body).
    pub bytes_up: u64,
    /// Bytes from the server to the client.
    pub bytes_down: u64,
    /// From accepting the client's connection to closing it.
    pub duration_us: u64,
    /// When the client's connection was accepted, in milliseconds since the
    /// Unix epoch.
    pub started_unix_ms: u64,
}

impl ConnectionRecord {
    pub fn allowed(&self) -> bool {
        matches!(self.outcome, Outcome::Allowed { .. })
    }

    pub fn refusal(&self) -> Option<&Refusal> {
        match &self.outcome {
            Outcome::Refused(r) => Some(r),
            _ => None,
        }
    }
}

/// Where the proxy delivers records: called once per connection, from the
/// connection's thread, after it closed.
#[derive(Clone)]
pub struct Sink(Arc<dyn Fn(ConnectionRecord) + Send + Sync>);

impl Sink {
    pub fn new(f: impl Fn(ConnectionRecord) + Send + Sync + 'static) -> Sink {
        Sink(Arc::new(f))
    }

    /// A sink that sends every record on a channel; records sent after the
    /// receiver is dropped are discarded.
    pub fn channel() -> (Sink, mpsc::Receiver<ConnectionRecord>) {
        let (tx, rx) = mpsc::channel();
        (
            Sink::new(move |r| {
                let _ = tx.send(r);
            }),
            rx,
        )
    }

    /// A sink that drops every record.
    pub fn discard() -> Sink {
        Sink::new(|_| {})
    }

    pub(crate) fn deliver(&self, r: ConnectionRecord) {
        (self.0)(r)
    }
}

impl std::fmt::Debug for Sink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sink")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_serialize_flat_with_their_outcome_and_read_back() {
        let refused = ConnectionRecord {
            protocol: Protocol::Socks5,
            host: "pkg.test".into(),
            port: 8080,
            address: Some("127.0.0.1:8080".parse().unwrap()),
            outcome: Outcome::Refused(Refusal::NotPublic {
                class: AddressClass::Loopback,
                allow_with: "network = [\"127.0.0.1:8080\"]".into(),
            }),
            bytes_up: 0,
            bytes_down: 0,
            duration_us: 120,
            started_unix_ms: 1,
        };
        let json = serde_json::to_value(&refused).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "protocol": "socks5", "host": "pkg.test", "port": 8080,
                "address": "127.0.0.1:8080", "outcome": "refused", "reason": "not-public",
                "class": "loopback", "allow_with": "network = [\"127.0.0.1:8080\"]",
                "bytes_up": 0, "bytes_down": 0, "duration_us": 120, "started_unix_ms": 1,
            })
        );
        assert_eq!(
            serde_json::from_value::<ConnectionRecord>(json).unwrap(),
            refused
        );
        let failed = ConnectionRecord {
            outcome: Outcome::Failed {
                rule: "pkg.test".into(),
                error: "cannot connect".into(),
            },
            ..refused
        };
        let json = serde_json::to_string(&failed).unwrap();
        assert_eq!(
            serde_json::from_str::<ConnectionRecord>(&json).unwrap(),
            failed
        );
    }
}
