//! The `network` setting and its host allowlist: which hosts and ports a
//! lane may reach. Pure: no I/O, no name resolution (the addresses are
//! `core::net` values). The egress proxy (`airlock-egress`) decides with it.
//!
//! An entry is one of
//!
//! - `api.anthropic.com`: exactly that name;
//! - `*.pythonhosted.org`: every name *under* `pythonhosted.org`, never
//!   `pythonhosted.org` itself (list the apex separately if it is wanted);
//! - `10.0.0.5`, `[fd00::5]`: exactly that address, as the client wrote it.
//!
//! Any entry may end in `:PORT`, which narrows it to that port; without one
//! every port is allowed. Names are matched as the client asked for them,
//! never by what they resolve to, and a wildcard never matches an address:
//! an address must be written out.
//!
//! Names are case-insensitive (RFC 4343), so entries and requested names are
//! lower-cased before they are compared; an entry written in capitals is
//! accepted and shown lower-cased. Everything else that is not plainly a host
//! is refused with what to write instead: a bare `*`, a `*` anywhere but a
//! whole first label, an address under a wildcard, empty labels (a trailing
//! dot included), a scheme or a path, a bad port, a bare IPv6 address
//! (ambiguous with a port), a name whose last label is a number (an address
//! in a form other than dotted decimal, such as `127.1`), non-ASCII names
//! (write the `xn--` form).

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::fmt;

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::ser::{SerializeSeq, Serializer};
use serde::{Deserialize, Serialize};

/// A host as a client asked for it: a name (lower-case, without a trailing
/// dot) or an address (an IPv4-mapped IPv6 address is its IPv4 address).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Host {
    Name(String),
    Address(IpAddr),
}

impl Host {
    /// Reads a host as a client sent it (SOCKS5 domain, CONNECT authority
    /// without its port). `[v6]` and bare IPv6 are addresses.
    pub fn parse(text: &str) -> Result<Host, HostError> {
        let bad = |problem: &str| HostError {
            host: text.to_string(),
            problem: problem.to_string(),
        };
        if text.is_empty() {
            return Err(bad("the host is empty"));
        }
        if let Some(inner) = text.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
            return inner
                .parse::<Ipv6Addr>()
                .map(|a| Host::from(IpAddr::V6(a)))
                .map_err(|_| bad("the text in brackets is not an IPv6 address"));
        }
        if let Ok(a) = text.parse::<IpAddr>() {
            return Ok(Host::from(a));
        }
        let lower = text.to_ascii_lowercase();
        let name = lower.strip_suffix('.').unwrap_or(&lower);
        check_name(name).map_err(|p| bad(&p))?;
        Ok(Host::Name(name.to_string()))
    }
}

impl From<IpAddr> for Host {
    fn from(a: IpAddr) -> Host {
        Host::Address(a.to_canonical())
    }
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Name(n) => f.write_str(n),
            Host::Address(IpAddr::V6(a)) => write!(f, "[{a}]"),
            Host::Address(IpAddr::V4(a)) => write!(f, "{a}"),
        }
    }
}

/// A requested host that is not a host.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{host}` is not a host name or address: {problem}")]
pub struct HostError {
    pub host: String,
    pub problem: String,
}

/// What an entry's host part matches.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum HostPattern {
    /// Exactly this name.
    Name(String),
    /// Names strictly under this one (`*.NAME`), never NAME itself.
    Subdomains(String),
    /// Exactly this address, as written by the client.
    Address(IpAddr),
}

impl HostPattern {
    fn matches(&self, host: &Host) -> bool {
        match (self, host) {
            (HostPattern::Name(p), Host::Name(n)) => p == n,
            (HostPattern::Subdomains(p), Host::Name(n)) => is_under(n, p),
            (HostPattern::Address(p), Host::Address(a)) => p == a,
            _ => false,
        }
    }

    /// Whether every host `other` matches, this matches too.
    fn covers(&self, other: &HostPattern) -> bool {
        match (self, other) {
            (HostPattern::Subdomains(p), HostPattern::Name(n)) => is_under(n, p),
            (HostPattern::Subdomains(p), HostPattern::Subdomains(q)) => p == q || is_under(q, p),
            (a, b) => a == b,
        }
    }
}

/// `name` is strictly under `parent` (`a.b.c` under `b.c`, not `b.c` nor `xb.c`).
fn is_under(name: &str, parent: &str) -> bool {
    name.len() > parent.len() + 1
        && name.ends_with(parent)
        && name.as_bytes()[name.len() - parent.len() - 1] == b'.'
}

/// One allowlist entry: a host pattern and, optionally, the one port it allows.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Rule {
    pub host: HostPattern,
    pub port: Option<u16>,
}

impl Rule {
    /// Parses one entry; see the module documentation for the forms.
    pub fn parse(entry: &str) -> Result<Rule, PatternError> {
        parse_rule(entry)
    }

    /// Whether this entry allows `host` on `port`.
    pub fn allows(&self, host: &Host, port: u16) -> bool {
        self.port.is_none_or(|p| p == port) && self.host.matches(host)
    }

    /// Whether everything `other` allows, this allows too.
    pub fn covers(&self, other: &Rule) -> bool {
        let port_ok = match (self.port, other.port) {
            (None, _) => true,
            (Some(a), Some(b)) => a == b,
            (Some(_), None) => false,
        };
        port_ok && self.host.covers(&other.host)
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.host {
            HostPattern::Name(n) => f.write_str(n)?,
            HostPattern::Subdomains(n) => write!(f, "*.{n}")?,
            HostPattern::Address(a) => write!(f, "{}", Host::Address(*a))?,
        }
        if let Some(p) = self.port {
            write!(f, ":{p}")?;
        }
        Ok(())
    }
}

/// An entry that is refused, with what to write instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("network entry `{entry}`: {problem}; {instead}")]
pub struct PatternError {
    pub entry: String,
    pub problem: String,
    /// What to write instead, as a sentence ("write `example.com`").
    pub instead: String,
}

/// An entry of a list that is refused: its position (0-based) and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("entry {} of the network list: {error}", .index + 1)]
pub struct EntryError {
    pub index: usize,
    pub error: PatternError,
}

fn parse_rule(entry: &str) -> Result<Rule, PatternError> {
    let refuse = |problem: String, instead: String| PatternError {
        entry: entry.to_string(),
        problem,
        instead,
    };
    if entry.is_empty() {
        return Err(refuse(
            "the entry is empty".into(),
            "remove it, or write a host such as `example.com`".into(),
        ));
    }
    if entry.chars().any(char::is_whitespace) {
        let squeezed: String = entry.chars().filter(|c| !c.is_whitespace()).collect();
        return Err(refuse(
            "an entry holds no spaces".into(),
            format!("write `{squeezed}`"),
        ));
    }
    if let Some((scheme, rest)) = entry.split_once("://") {
        let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
        let authority = authority.rsplit('@').next().unwrap_or(authority);
        return Err(refuse(
            format!("an entry is a host, not a URL (`{scheme}://` is a scheme)"),
            format!("write `{authority}`, with `:PORT` to allow only that port"),
        ));
    }
    if let Some(i) = entry.find(['/', '?', '#']) {
        return Err(refuse(
            "an entry is a host, not a URL: paths are not matched".into(),
            format!("write `{}`", &entry[..i]),
        ));
    }
    if let Some((_, host)) = entry.rsplit_once('@') {
        return Err(refuse(
            "an entry holds no user name".into(),
            format!("write `{host}`"),
        ));
    }
    if entry == "*" || entry.starts_with("*:") {
        return Err(refuse(
            "a bare `*` would allow every host".into(),
            "write `network = \"on\"` to allow the whole network, or list the hosts, such as `*.example.com`".into(),
        ));
    }

    // Host and port.
    let (host_text, port_text) = if let Some(rest) = entry.strip_prefix('[') {
        let Some((inner, after)) = rest.split_once(']') else {
            return Err(refuse(
                "`[` opens an IPv6 address that no `]` closes".into(),
                "write `[ADDRESS]` or `[ADDRESS]:PORT`, such as `[fd00::5]:8080`".into(),
            ));
        };
        let port = match after {
            "" => None,
            p => match p.strip_prefix(':') {
                Some(p) => Some(p),
                None => {
                    return Err(refuse(
                        format!("`{after}` follows the address"),
                        format!("write `[{inner}]` or `[{inner}]:PORT`"),
                    ));
                }
            },
        };
        let Ok(a) = inner.parse::<Ipv6Addr>() else {
            return Err(refuse(
                format!("`{inner}` in brackets is not an IPv6 address"),
                "write an IPv6 address in brackets, such as `[fd00::5]:8080`".into(),
            ));
        };
        (HostText::Address(IpAddr::V6(a)), port)
    } else if entry.matches(':').count() > 1 {
        if let Ok(a) = entry.parse::<Ipv6Addr>() {
            return Err(refuse(
                "an IPv6 address without brackets cannot carry a port".into(),
                format!("write `[{a}]`, or `[{a}]:PORT` for one port"),
            ));
        }
        return Err(refuse(
            "more than one `:`".into(),
            "write `HOST` or `HOST:PORT`, and an IPv6 address in brackets, such as `[fd00::5]:8080`".into(),
        ));
    } else {
        match entry.split_once(':') {
            Some((h, p)) => (HostText::Text(h), Some(p)),
            None => (HostText::Text(entry), None),
        }
    };
    let port = match port_text {
        None => None,
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n > 0 && p.bytes().all(|b| b.is_ascii_digit()) => Some(n),
            _ => {
                let host = match &host_text {
                    HostText::Address(a) => Host::Address(*a).to_string(),
                    HostText::Text(h) => h.to_string(),
                };
                return Err(refuse(
                    format!("`{p}` is not a port (a number from 1 to 65535)"),
                    format!("write `{host}:443`, or `{host}` for every port"),
                ));
            }
        },
    };

    let host = match host_text {
        HostText::Address(a) => HostPattern::Address(a.to_canonical()),
        HostText::Text(h) => parse_host_pattern(h).map_err(|(p, i)| refuse(p, i))?,
    };
    Ok(Rule { host, port })
}

enum HostText<'a> {
    Address(IpAddr),
    Text(&'a str),
}

fn parse_host_pattern(text: &str) -> Result<HostPattern, (String, String)> {
    if text.is_empty() {
        return Err((
            "the host before `:` is empty".into(),
            "write `HOST:PORT`, such as `crates.io:443`".into(),
        ));
    }
    if !text.is_ascii() {
        return Err((
            "a name is written in ASCII".into(),
            "write its `xn--` (punycode) form".into(),
        ));
    }
    let lower = text.to_ascii_lowercase();
    if let Some(parent) = lower.strip_prefix("*.") {
        if parent.contains('*') {
            return Err(star_misplaced());
        }
        if parent.parse::<IpAddr>().is_ok() || last_label_is_number(parent) {
            return Err((
                format!("a wildcard never matches an address (`{parent}` is one)"),
                format!("write the address itself, such as `{parent}`"),
            ));
        }
        check_name(parent).map_err(|p| {
            (
                p,
                "write `*.` before a name, such as `*.example.com`".to_string(),
            )
        })?;
        if !parent.contains('.') {
            return Err((
                format!("`*.{parent}` would allow every host under a top-level domain"),
                format!(
                    "write the names under `{parent}` that are needed, such as `*.example.{parent}`"
                ),
            ));
        }
        return Ok(HostPattern::Subdomains(parent.to_string()));
    }
    if lower.contains('*') {
        return Err(star_misplaced());
    }
    if let Ok(a) = lower.parse::<Ipv4Addr>() {
        return Ok(HostPattern::Address(IpAddr::V4(a)));
    }
    if let Some(name) = lower.strip_suffix('.') {
        return Err((
            "a trailing dot is an empty label".into(),
            format!("write `{name}`"),
        ));
    }
    check_name(&lower).map_err(|p| {
        let instead = if last_label_is_number(&lower) {
            "write an IPv4 address in dotted decimal with four numbers, such as `10.0.0.5`".into()
        } else {
            "write a host name such as `example.com`".into()
        };
        (p, instead)
    })?;
    Ok(HostPattern::Name(lower))
}

fn star_misplaced() -> (String, String) {
    (
        "`*` may only be the whole first label".into(),
        "write `*.example.com` to allow the names under `example.com`".into(),
    )
}

/// The last label is a number (decimal or `0x` hex): WHATWG URL and
/// `inet_aton` read such a name as an IPv4 address (`127.1`, `0x7f.1`).
fn last_label_is_number(name: &str) -> bool {
    let last = name.rsplit('.').next().unwrap_or(name);
    let digits = last
        .strip_prefix("0x")
        .or_else(|| last.strip_prefix("0X"))
        .map(|h| h.bytes().all(|b| b.is_ascii_hexdigit()))
        .unwrap_or(false);
    !last.is_empty() && (last.bytes().all(|b| b.is_ascii_digit()) || digits)
}

/// Checks a lower-case name: labels of letters, digits, `-` and `_`, none
/// empty, none over 63 bytes, the whole under 254, the last not a number.
fn check_name(name: &str) -> Result<(), String> {
    if name.len() > 253 {
        return Err("a name is at most 253 characters".into());
    }
    for label in name.split('.') {
        if label.is_empty() {
            return Err(format!(
                "`{name}` has an empty label (`..`, or a dot at an end)"
            ));
        }
        if label.len() > 63 {
            return Err(format!("the label `{label}` is over 63 characters"));
        }
        if let Some(c) = label
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
        {
            return Err(format!("`{c}` cannot be in a host name"));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(format!("the label `{label}` starts or ends with `-`"));
        }
    }
    if last_label_is_number(name) {
        return Err(format!(
            "`{name}` ends in a number, so it reads as an IPv4 address in a non-standard form"
        ));
    }
    Ok(())
}

/// The lane setting that would allow `host` on `port`, for refusal messages:
/// `network = ["host:port"]`.
pub fn setting_for(host: &Host, port: u16) -> String {
    format!("network = [\"{host}:{port}\"]")
}

/// An ordered list of [`Rule`]s; the first that allows a connection is named
/// as the rule that allowed it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Allowlist {
    rules: Vec<Rule>,
}

/// A connection no entry allows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{host}:{port} is not in the network allowlist; to allow it: {allow_with}")]
pub struct NotListed {
    pub host: Host,
    pub port: u16,
    /// The setting that would allow it, such as `network = ["example.com:443"]`.
    pub allow_with: String,
}

impl Allowlist {
    /// Parses every entry; the first refused one is returned with its
    /// position.
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<Allowlist, EntryError> {
        let rules = entries
            .iter()
            .enumerate()
            .map(|(index, e)| Rule::parse(e.as_ref()).map_err(|error| EntryError { index, error }))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Allowlist { rules })
    }

    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Which rule allows a connection to `host` on `port`, as the client
    /// asked for it (a name is not resolved here).
    pub fn decide(&self, host: &Host, port: u16) -> Result<&Rule, NotListed> {
        self.rules
            .iter()
            .find(|r| r.allows(host, port))
            .ok_or_else(|| NotListed {
                host: host.clone(),
                port,
                allow_with: setting_for(host, port),
            })
    }

    /// The rule that names `address` literally for `port`, if any: what lets
    /// a name resolve to a loopback, private or metadata address.
    pub fn names_address(&self, address: IpAddr, port: u16) -> Option<&Rule> {
        let host = Host::from(address);
        self.rules
            .iter()
            .find(|r| matches!(r.host, HostPattern::Address(_)) && r.allows(&host, port))
    }
}

/// A brief's entry that allows more than its lane does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Widening {
    /// The brief's entry in its canonical form (lower-case), or `on` for a
    /// brief that turns the whole network on.
    pub entry: String,
    pub reason: String,
}

impl fmt::Display for Widening {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}`: {}", self.entry, self.reason)
    }
}

/// The entries of `brief` that its lane does not allow: a brief may only
/// narrow what its lane allows. Empty when the brief narrows or equals it.
pub fn narrow(lane: &Allowlist, brief: &Allowlist) -> Vec<Widening> {
    brief
        .rules
        .iter()
        .filter(|b| !lane.rules.iter().any(|l| l.covers(b)))
        .map(|b| Widening {
            entry: b.to_string(),
            reason: widening_reason(lane, b),
        })
        .collect()
}

fn widening_reason(lane: &Allowlist, b: &Rule) -> String {
    let same_host = lane.rules.iter().find(|l| l.host.covers(&b.host));
    match (same_host, b.port) {
        (Some(l), None) => format!(
            "the lane allows this host on port {} only (`{l}`); add that port",
            l.port.unwrap_or_default()
        ),
        (Some(l), Some(_)) => format!("the lane allows this host on another port only (`{l}`)"),
        (None, _) if matches!(b.host, HostPattern::Subdomains(_)) => {
            "the lane does not allow every name this wildcard matches; list the names it allows"
                .into()
        }
        (None, _) => "the lane does not allow this host".into(),
    }
}

/// The `network` setting: off, on, or a list of hosts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Network {
    Off,
    On,
    Hosts(Allowlist),
}

impl Network {
    /// The parts of `brief` that its lane's setting does not allow.
    pub fn narrow(lane: &Network, brief: &Network) -> Vec<Widening> {
        match (lane, brief) {
            (_, Network::Off) | (Network::On, _) => Vec::new(),
            (Network::Off, Network::On) | (Network::Hosts(_), Network::On) => vec![Widening {
                entry: "on".into(),
                reason: match lane {
                    Network::Off => "the lane's network is off".into(),
                    _ => "`on` allows every host; the lane allows a list of hosts: list the ones needed".into(),
                },
            }],
            (Network::Off, Network::Hosts(b)) => b
                .rules
                .iter()
                .map(|r| Widening {
                    entry: r.to_string(),
                    reason: "the lane's network is off".into(),
                })
                .collect(),
            (Network::Hosts(l), Network::Hosts(b)) => narrow(l, b),
        }
    }
}

/// The setting as a workflow writes it: `"off"`, `"on"`, `["a", "b"]`.
pub fn describe(network: &Network) -> String {
    match network {
        Network::Off => "\"off\"".into(),
        Network::On => "\"on\"".into(),
        Network::Hosts(list) => {
            let entries: Vec<String> = list.rules().iter().map(|r| format!("\"{r}\"")).collect();
            format!("[{}]", entries.join(", "))
        }
    }
}

impl Serialize for Allowlist {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.rules.len()))?;
        for r in &self.rules {
            seq.serialize_element(&r.to_string())?;
        }
        seq.end()
    }
}

impl<'de> Deserialize<'de> for Allowlist {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let entries = Vec::<String>::deserialize(d)?;
        Allowlist::parse(&entries).map_err(de::Error::custom)
    }
}

impl Serialize for Network {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Network::Off => s.serialize_str("off"),
            Network::On => s.serialize_str("on"),
            Network::Hosts(list) => list.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for Network {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Network;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("\"off\", \"on\" or a list of hosts such as [\"example.com:443\"]")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Network, E> {
                match v {
                    "off" => Ok(Network::Off),
                    "on" => Ok(Network::On),
                    other => Err(E::custom(format!(
                        "network = \"{other}\": write \"off\", \"on\", or a list of hosts such as [\"{other}\"]"
                    ))),
                }
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Network, A::Error> {
                let mut entries = Vec::new();
                while let Some(e) = seq.next_element::<String>()? {
                    entries.push(e);
                }
                Allowlist::parse(&entries)
                    .map(Network::Hosts)
                    .map_err(de::Error::custom)
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(s: &str) -> Rule {
        Rule::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn refused(s: &str) -> PatternError {
        match Rule::parse(s) {
            Ok(r) => panic!("`{s}` was accepted as {r:?}"),
            Err(e) => e,
        }
    }

    fn name(s: &str) -> Host {
        Host::parse(s).unwrap()
    }

    #[test]
    fn forms_parse_and_print_canonically() {
        assert_eq!(rule("api.anthropic.com").to_string(), "api.anthropic.com");
        assert_eq!(rule("API.Anthropic.COM").to_string(), "api.anthropic.com");
        assert_eq!(
            rule("*.pythonhosted.org").host,
            HostPattern::Subdomains("pythonhosted.org".into())
        );
        assert_eq!(rule("crates.io:443").port, Some(443));
        assert_eq!(rule("10.0.0.5:8080").to_string(), "10.0.0.5:8080");
        assert_eq!(rule("[::1]:8080").to_string(), "[::1]:8080");
        assert_eq!(rule("[fd00::5]").port, None);
        // An IPv4-mapped address is its IPv4 address.
        assert_eq!(rule("[::ffff:10.0.0.5]").to_string(), "10.0.0.5");
        assert_eq!(
            rule("under_score.example.com").to_string(),
            "under_score.example.com"
        );
    }

    #[test]
    fn bad_entries_are_refused_with_what_to_write_instead() {
        let cases: &[(&str, &str, &str)] = &[
            ("*", "bare `*`", "network = \"on\""),
            ("*:443", "bare `*`", "network = \"on\""),
            ("a.*.com", "whole first label", "*.example.com"),
            ("*example.com", "whole first label", "*.example.com"),
            ("foo*.example.com", "whole first label", "*.example.com"),
            ("*.*.example.com", "whole first label", "*.example.com"),
            ("**.example.com", "whole first label", "*.example.com"),
            ("*.10.0.0.5", "never matches an address", "`10.0.0.5`"),
            ("*.0.5", "never matches an address", "`0.5`"),
            ("*.com", "top-level domain", "*.example.com"),
            ("a..b", "empty label", "example.com"),
            (".example.com", "empty label", "example.com"),
            ("example.com.", "trailing dot", "write `example.com`"),
            ("*.", "empty label", "*.example.com"),
            ("crates.io:0", "not a port", "`crates.io:443`"),
            ("crates.io:65536", "not a port", "`crates.io:443`"),
            ("crates.io:+443", "not a port", "`crates.io:443`"),
            ("crates.io:https", "not a port", "`crates.io:443`"),
            ("crates.io:", "not a port", "`crates.io` for every port"),
            (":443", "empty", "HOST:PORT"),
            ("https://crates.io/api", "not a URL", "write `crates.io`"),
            (
                "https://u@crates.io:8443/x",
                "not a URL",
                "write `crates.io:8443`",
            ),
            (
                "crates.io/api/v1",
                "paths are not matched",
                "write `crates.io`",
            ),
            ("user@crates.io", "user name", "write `crates.io`"),
            ("", "empty", "remove it"),
            ("crates .io", "no spaces", "write `crates.io`"),
            ("::1", "without brackets", "`[::1]`"),
            ("fd00::1:8080", "without brackets", "`[fd00::1:8080]`"),
            ("[::1", "no `]` closes", "[fd00::5]:8080"),
            ("[::1]8080", "follows the address", "`[::1]:PORT`"),
            ("[10.0.0.5]", "not an IPv6 address", "[fd00::5]"),
            ("127.1", "ends in a number", "dotted decimal"),
            ("0x7f.1", "ends in a number", "dotted decimal"),
            ("2130706433", "ends in a number", "dotted decimal"),
            ("bücher.example", "ASCII", "xn--"),
            ("-x.example.com", "starts or ends with `-`", "example.com"),
            ("a!.example.com", "`!` cannot be", "example.com"),
        ];
        for (entry, problem, instead) in cases {
            let e = refused(entry);
            let text = e.to_string();
            assert!(
                e.problem.contains(problem),
                "`{entry}`: problem {:?} lacks {problem:?}",
                e.problem
            );
            assert!(
                e.instead.contains(instead),
                "`{entry}`: instead {:?} lacks {instead:?}",
                e.instead
            );
            assert!(
                text.starts_with(&format!("network entry `{entry}`: ")),
                "{text}"
            );
        }
    }

    #[test]
    fn list_errors_name_the_entry_position() {
        let e = Allowlist::parse(&["pypi.org", "*"]).unwrap_err();
        assert_eq!(e.index, 1);
        assert!(
            e.to_string()
                .starts_with("entry 2 of the network list: network entry `*`")
        );
    }

    #[test]
    fn wildcard_matches_subdomains_only_never_the_apex_or_a_lookalike() {
        let list = Allowlist::parse(&["*.pythonhosted.org"]).unwrap();
        assert!(list.decide(&name("files.pythonhosted.org"), 443).is_ok());
        assert!(list.decide(&name("a.b.pythonhosted.org"), 443).is_ok());
        assert!(list.decide(&name("FILES.PythonHosted.org."), 443).is_ok());
        let apex = list.decide(&name("pythonhosted.org"), 443).unwrap_err();
        assert_eq!(apex.allow_with, "network = [\"pythonhosted.org:443\"]");
        assert!(list.decide(&name("evilpythonhosted.org"), 443).is_err());
        assert!(
            list.decide(&name("pythonhosted.org.evil.com"), 443)
                .is_err()
        );
    }

    #[test]
    fn a_port_narrows_and_no_port_allows_every_port() {
        let list = Allowlist::parse(&["crates.io:443", "pypi.org"]).unwrap();
        assert_eq!(
            list.decide(&name("crates.io"), 443).unwrap().to_string(),
            "crates.io:443"
        );
        let e = list.decide(&name("crates.io"), 80).unwrap_err();
        assert_eq!(
            e.to_string(),
            "crates.io:80 is not in the network allowlist; to allow it: network = [\"crates.io:80\"]"
        );
        assert!(list.decide(&name("pypi.org"), 8443).is_ok());
    }

    #[test]
    fn addresses_match_only_when_written_out() {
        let list = Allowlist::parse(&["*.example.com", "example.com", "10.0.0.5:8080"]).unwrap();
        let a = |s: &str| Host::parse(s).unwrap();
        assert!(list.decide(&a("10.0.0.5"), 8080).is_ok());
        assert!(list.decide(&a("10.0.0.6"), 8080).is_err());
        assert!(list.decide(&a("10.0.0.5"), 8081).is_err());
        assert!(list.decide(&a("[::ffff:10.0.0.5]"), 8080).is_ok());
        assert_eq!(
            list.decide(&a("::1"), 80).unwrap_err().allow_with,
            "network = [\"[::1]:80\"]"
        );
        assert!(
            list.names_address("10.0.0.5".parse().unwrap(), 8080)
                .is_some()
        );
        assert!(
            list.names_address("10.0.0.5".parse().unwrap(), 80)
                .is_none()
        );
        // A name never matches an address rule, nor an address a name rule.
        let by_address = Allowlist::parse(&["127.0.0.1"]).unwrap();
        assert!(by_address.decide(&a("localhost"), 80).is_err());
    }

    #[test]
    fn requested_hosts_that_are_not_hosts_are_refused() {
        for bad in [
            "",
            "a..b",
            "127.1",
            "0x7f.0.0.1",
            "ex ample.com",
            "[10.0.0.1]",
            "x/y",
        ] {
            assert!(Host::parse(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(
            Host::parse("Example.COM.").unwrap(),
            Host::Name("example.com".into())
        );
        assert_eq!(
            Host::parse("::ffff:127.0.0.1").unwrap(),
            Host::Address("127.0.0.1".parse().unwrap())
        );
    }

    #[test]
    fn a_brief_may_narrow_its_lane_but_never_widen_it() {
        let lane = Allowlist::parse(&[
            "*.pythonhosted.org",
            "pypi.org",
            "crates.io:443",
            "10.0.0.5",
        ])
        .unwrap();
        let ok = Allowlist::parse(&[
            "files.pythonhosted.org",
            "*.cdn.pythonhosted.org",
            "*.pythonhosted.org",
            "pypi.org:443",
            "crates.io:443",
            "10.0.0.5:8080",
        ])
        .unwrap();
        assert_eq!(narrow(&lane, &ok), vec![]);

        let wide = Allowlist::parse(&[
            "pythonhosted.org",
            "*.pypi.org",
            "crates.io",
            "crates.io:80",
            "10.0.0.6",
            "evil.example",
            "pypi.org",
        ])
        .unwrap();
        let w = narrow(&lane, &wide);
        let entries: Vec<&str> = w.iter().map(|w| w.entry.as_str()).collect();
        assert_eq!(
            entries,
            [
                "pythonhosted.org",
                "*.pypi.org",
                "crates.io",
                "crates.io:80",
                "10.0.0.6",
                "evil.example"
            ]
        );
        assert!(w[2].reason.contains("port 443 only"), "{}", w[2].reason);
        assert!(w[1].reason.contains("wildcard"), "{}", w[1].reason);
    }

    #[test]
    fn network_setting_reads_from_toml_as_the_workflow_will() {
        #[derive(Deserialize)]
        struct Lane {
            network: Network,
        }
        let lane: Lane =
            toml::from_str("network = [\"pypi.org\", \"*.pythonhosted.org\"]").unwrap();
        assert!(matches!(lane.network, Network::Hosts(ref l) if l.rules().len() == 2));
        let lane: Lane = toml::from_str("network = \"off\"").unwrap();
        assert_eq!(lane.network, Network::Off);
        let e = toml::from_str::<Lane>("network = [\"pypi.org\", \"*.10.0.0.5\"]")
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.contains("entry 2 of the network list: network entry `*.10.0.0.5`: a wildcard never matches an address"),
            "{e}"
        );
        // The line and column of the setting, for the load-time message.
        assert!(e.contains("line 1"), "{e}");
    }

    #[test]
    fn network_setting_parses_and_narrows() {
        let parse = |s: &str| -> Result<Network, String> {
            serde_json::from_str::<Network>(s).map_err(|e| e.to_string())
        };
        assert_eq!(parse("\"off\"").unwrap(), Network::Off);
        assert_eq!(parse("\"on\"").unwrap(), Network::On);
        let hosts = parse("[\"pypi.org\", \"crates.io:443\"]").unwrap();
        assert_eq!(
            serde_json::to_string(&hosts).unwrap(),
            "[\"pypi.org\",\"crates.io:443\"]"
        );
        let e = parse("[\"pypi.org\", \"*\"]").unwrap_err();
        assert!(
            e.contains("entry 2 of the network list: network entry `*`"),
            "{e}"
        );
        let e = parse("\"pypi.org\"").unwrap_err();
        assert!(e.contains("a list of hosts such as [\"pypi.org\"]"), "{e}");

        // Today a brief could turn the network on by itself: under a lane
        // with a list (or off) that is a widening.
        let w = Network::narrow(&hosts, &Network::On);
        assert_eq!(w.len(), 1);
        assert_eq!(w[0].entry, "on");
        assert_eq!(Network::narrow(&Network::Off, &hosts).len(), 2);
        assert!(Network::narrow(&Network::On, &hosts).is_empty());
        assert!(Network::narrow(&hosts, &Network::Off).is_empty());
    }
}
