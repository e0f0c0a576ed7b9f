//! The repository's policy: `.airlock/workflow.toml`.

use std::time::Duration;

use serde::Serialize;

use toml::de::{DeTable, DeValue};

use crate::action::settings::ActionSettings;
use crate::diag::{self, Diagnostics};
use crate::digest::sha256_hex;
pub use crate::durations::parse_duration;
use crate::durations::{parse_timeout, seconds_or_duration};
use crate::error::{Error, Result};
use crate::globs;
use crate::names::LANES;
pub use crate::names::valid_name;
use crate::network::{Network, Rule};

/// Paths that are always protected: the policy itself lives there.
pub const BUILTIN_PROTECTED: &[&str] = &[".airlock/**", ".gitleaks.toml"];
pub const DEFAULT_GATE_TIMEOUT: Duration = Duration::from_secs(600);
pub const DEFAULT_MAX_FILES: u64 = 200;
pub const DEFAULT_MAX_LINES: u64 = 5000;

#[derive(Debug, Clone, Serialize)]
pub struct Gate {
    pub name: String,
    pub run: String,
    #[serde(with = "humantime_serde_secs")]
    pub timeout: Duration,
    /// A golden snapshot the gate's output must match (`snapshot = "NAME"`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<String>,
    /// A JUnit XML report the gate writes, relative to the worktree
    /// (`junit = "target/junit.xml"`): where its test counts come from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub junit: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Policy {
    pub target: Option<String>,
    pub protected: Vec<String>,
    pub max_files: u64,
    pub max_lines: u64,
    pub secrets: bool,
    /// Environment variable names passed through to commands in a run.
    pub pass_env: Vec<String>,
}

/// How commands of a run are confined: `[sandbox]`.
#[derive(Debug, Clone, Serialize)]
pub struct Sandbox {
    /// The network of every lane that sets none: off (the default), on, or
    /// a list of hosts reached through airlock's egress proxy.
    pub network: Network,
    /// Names the egress proxy answers itself instead of asking the
    /// resolver, like curl's `--resolve`: `resolve = {"pkg.test" =
    /// "127.0.0.1"}` (or a list of addresses). For tests and for pinning a
    /// host; the host must still be listed, and a loopback or private
    /// address named too.
    pub resolve: std::collections::BTreeMap<String, Vec<core::net::IpAddr>>,
    /// Extra writable paths (`~` is the home directory).
    pub write: Vec<String>,
    /// Extra paths exposed read-only: below the hidden home directory, or
    /// in the main checkout (`confinement` has the defaults).
    pub read: Vec<String>,
    /// Extra paths hidden from commands, beside the built-in secret list.
    pub hide: Vec<String>,
    /// Run with the protections that need no namespaces when the kernel or
    /// the machine does not allow namespaces.
    pub accept_weaker: bool,
    pub max_output: u64,
    pub max_memory: Option<u64>,
    pub max_processes: u64,
    /// Largest file a command may write (RLIMIT_FSIZE).
    pub max_file_size: u64,
    /// Bytes of the files in a run's worktree that git sees (ignored ones
    /// aside): what a snapshot of it stores.
    pub max_worktree: u64,
    /// Bytes of new content a run's snapshots may write into the
    /// repository's object store, over the run's life.
    pub max_stored: u64,
    /// Wall time of a command started by `exec`, `snap run --run` or a
    /// rehearsal when the caller gives none (gates have their own).
    #[serde(with = "humantime_serde_opt_secs")]
    pub timeout: Option<Duration>,
    /// How long a run's sandbox stays built after its last command, so the
    /// next one starts without building it again; zero builds one per command.
    #[serde(with = "humantime_serde_secs")]
    pub keep_warm: Duration,
    /// At most this many warm sandboxes of this user at once (across
    /// repositories); one more ends the least recently used.
    pub max_warm: u64,
}

/// What one trust lane grants: `[lanes.NAME]`.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Lane {
    pub name: String,
    pub network: Option<Network>,
    pub write: Vec<String>,
    pub pass_env: Vec<String>,
    /// Environment variables actions of this lane may read when airlock
    /// applies them, beside `[actions] env`; never passed to commands.
    pub action_env: Vec<String>,
    /// Action scopes this lane grants (`http:POST:hooks.example.com/*`),
    /// beside every lower lane's ([`Workflow::lane_scopes`]).
    pub scopes: Vec<String>,
    /// Capabilities the workflow sets; `None` keeps the lane's default
    /// (`crate::lanes::Capabilities::defaults`, [`Workflow::capabilities`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exec: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub worktree: Option<crate::lanes::WorktreeAccess>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub submit: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub promote: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auto_promote: Option<Vec<String>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Workflow {
    /// Gates in the order the file declares them.
    pub gates: Vec<Gate>,
    /// Soak gates (`[gates.NAME] soak = …`), apart from `gates`: they are
    /// never run at check, and hold production actions after promotion.
    pub soaks: Vec<crate::soak::SoakGate>,
    pub policy: Policy,
    pub sandbox: Sandbox,
    pub lanes: Vec<Lane>,
    /// `[classes.NAME]`: when any is declared, a brief's class must be one.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub classes: Vec<crate::lanes::Class>,
    pub snapshots: Snapshots,
    /// `[actions]`: SMTP server, HTTP fixtures, protected refs.
    pub actions: crate::action::settings::ActionSettings,
    /// `[release]`: how release runs are made.
    pub release: Option<crate::release::ReleaseSettings>,
    /// `[mcp]`: upstream MCP servers, how their tools are treated, pins.
    pub mcp: crate::mcp::McpSettings,
    /// `[promotion]`: the thresholds `airlock lanes suggest` measures by.
    pub promotion: crate::promotion::PromotionSettings,
    /// `[conditions.ID]`: custom conditions over the evidence, in file order.
    pub conditions: Vec<crate::conditions::Condition>,
    /// `[panel]`: the review panel's perspectives and rules (issue 18).
    pub panel: crate::panel::Panel,
    /// `[team]`: the shared git remote (issue 20).
    pub team: crate::team::TeamSettings,
    /// `[store]`: the shared database and log store (issue 20).
    pub store: crate::team::StoreSettings,
    /// sha256 of the file's bytes.
    pub digest: String,
    /// Where each path of `write`, `read` and `hide` was written, for the
    /// checks that need the repository's layout
    /// (`confinement::check_paths`).
    #[serde(skip)]
    pub paths_written: Vec<PathEntry>,
    /// The file's name, as diagnostics name it.
    #[serde(skip)]
    pub origin: String,
}

/// One path of `[sandbox]` or `[lanes.NAME]`, where it was written.
#[derive(Debug, Clone, PartialEq)]
pub struct PathEntry {
    /// `[sandbox] write`, `[lanes.staging] write`, `[sandbox] read`, …
    pub setting: String,
    /// What the kind of grant is: `write`, `read` or `hide`.
    pub key: &'static str,
    pub path: String,
    pub line: usize,
    pub column: usize,
}

impl Workflow {
    pub fn gate(&self, name: &str) -> Option<&Gate> {
        self.gates.iter().find(|g| g.name == name)
    }

    pub fn gate_names(&self) -> Vec<&str> {
        self.gates.iter().map(|g| g.name.as_str()).collect()
    }

    /// All protected globs: the built-in ones and the workflow's.
    pub fn protected(&self) -> Vec<String> {
        BUILTIN_PROTECTED
            .iter()
            .map(|s| s.to_string())
            .chain(self.policy.protected.iter().cloned())
            .collect()
    }

    /// The network lane `lane` grants and where that comes from: its own
    /// `network`, else `[sandbox] network` (off by default).
    pub fn lane_network(&self, lane: &str) -> (&Network, String) {
        match self
            .lanes
            .iter()
            .find(|l| l.name == lane)
            .and_then(|l| l.network.as_ref())
        {
            Some(n) => (n, format!("[lanes.{lane}] network")),
            None => (&self.sandbox.network, "[sandbox] network".to_string()),
        }
    }

    pub fn parse(text: &str, name: &str) -> Result<Workflow> {
        Workflow::parse_with(text, name, None)
    }

    /// [`Workflow::parse`], type-checking every expression (`[conditions]`)
    /// with `evaluator` and reporting its problems with the others.
    pub fn parse_with(
        text: &str,
        name: &str,
        evaluator: Option<&dyn crate::evidence::Evaluator>,
    ) -> Result<Workflow> {
        let mut diags = Diagnostics::new(text);
        let doc = diag::parse(text, &mut diags);
        let root = doc.get_ref();
        diag::unknown_keys(
            root,
            &[
                "gates",
                "policy",
                "sandbox",
                "lanes",
                "snapshots",
                "actions",
                "release",
                "mcp",
                "promotion",
                "classes",
                "conditions",
                "panel",
                "team",
                "store",
            ],
            "the workflow",
            &mut diags,
        );

        let mut gates = Vec::new();
        let mut soaks = Vec::new();
        if let Some(value) = diag::get(root, "gates")
            && let Some(table) = diag::table(value, "gates", &mut diags)
        {
            for (key, value) in table.iter() {
                let gate_name = key.get_ref().to_string();
                if !valid_name(&gate_name) {
                    diags.error(
                        key.span(),
                        format!("gate name `{gate_name}` is not allowed"),
                        Some("use letters, digits, `-` and `_`".into()),
                    );
                }
                let Some(gate) = diag::table(value, &format!("gates.{gate_name}"), &mut diags)
                else {
                    continue;
                };
                diag::unknown_keys(
                    gate,
                    &[
                        "run", "timeout", "snapshot", "junit", "soak", "probe", "every",
                    ],
                    &format!("[gates.{gate_name}]"),
                    &mut diags,
                );
                if crate::soak::is_soak(gate) {
                    soaks.extend(crate::soak::parse_gate(
                        &gate_name,
                        key.span(),
                        gate,
                        &mut diags,
                    ));
                    continue;
                }
                let run = match diag::get(gate, "run") {
                    Some(v) => {
                        let run = diag::string(v, "run", &mut diags).unwrap_or_default();
                        if run.trim().is_empty()
                            && matches!(v.get_ref(), toml::de::DeValue::String(_))
                        {
                            diags.error(
                                v.span(),
                                format!("gate `{gate_name}` has an empty `run` command"),
                                Some("write the shell command that decides this gate".into()),
                            );
                        }
                        run
                    }
                    None => {
                        diags.error(
                            key.span(),
                            format!("gate `{gate_name}` has no `run` command"),
                            Some(
                                "add `run = \"…\"`: a shell command run in the run's worktree"
                                    .into(),
                            ),
                        );
                        String::new()
                    }
                };
                let timeout = match diag::get(gate, "timeout") {
                    Some(v) => parse_timeout(v, &mut diags).unwrap_or(DEFAULT_GATE_TIMEOUT),
                    None => DEFAULT_GATE_TIMEOUT,
                };
                let snapshot = diag::get(gate, "snapshot").and_then(|v| {
                    let name = diag::string(v, "snapshot", &mut diags)?;
                    match airlock_snap::validate_name(&name) {
                        Ok(()) => Some(name),
                        Err(e) => {
                            diags.error(v.span(), e.to_string(), e.hint());
                            None
                        }
                    }
                });
                let junit = diag::get(gate, "junit").and_then(|v| {
                    let path = diag::string(v, "junit", &mut diags)?;
                    let inside = !path.is_empty()
                        && std::path::Path::new(&path)
                            .components()
                            .all(|c| matches!(c, std::path::Component::Normal(_)));
                    if inside {
                        Some(path)
                    } else {
                        diags.error(
                            v.span(),
                            format!("`junit` of gate `{gate_name}` must be a path inside the worktree"),
                            Some("write a relative path without `..`, e.g. `junit = \"target/junit.xml\"`".into()),
                        );
                        None
                    }
                });
                gates.push(Gate {
                    name: gate_name,
                    run,
                    timeout,
                    snapshot,
                    junit,
                });
            }
        }

        let mut policy = Policy {
            target: None,
            protected: Vec::new(),
            max_files: DEFAULT_MAX_FILES,
            max_lines: DEFAULT_MAX_LINES,
            secrets: true,
            pass_env: Vec::new(),
        };
        if let Some(value) = diag::get(root, "policy")
            && let Some(table) = diag::table(value, "policy", &mut diags)
        {
            diag::unknown_keys(
                table,
                &[
                    "target",
                    "protected",
                    "max_files",
                    "max_lines",
                    "secrets",
                    "pass_env",
                ],
                "[policy]",
                &mut diags,
            );
            for (key, value) in table.iter() {
                match key.get_ref().as_ref() {
                    "target" => {
                        policy.target = diag::string(value, "target", &mut diags);
                        // Put after `refs/heads/` in refspecs and leases.
                        let problem = policy
                            .target
                            .as_deref()
                            .and_then(crate::names::branch_name_problem);
                        if let Some(problem) = problem {
                            diags.error(
                                value.span(),
                                format!("`target` is not a branch name git accepts: {problem}"),
                                Some("write the target branch's short name, e.g. `target = \"main\"`".into()),
                            );
                            policy.target = None;
                        }
                    }
                    "protected" => {
                        for (glob, span) in
                            diag::string_list(value, "protected", &mut diags).unwrap_or_default()
                        {
                            match globs::compile(&glob) {
                                Ok(_) => policy.protected.push(glob),
                                Err(e) => {
                                    diags.error(span, format!("invalid glob `{glob}`: {e}"), None)
                                }
                            }
                        }
                    }
                    "max_files" => {
                        policy.max_files = diag::positive(value, "max_files", &mut diags)
                            .unwrap_or(policy.max_files)
                    }
                    "max_lines" => {
                        policy.max_lines = diag::positive(value, "max_lines", &mut diags)
                            .unwrap_or(policy.max_lines)
                    }
                    "secrets" => {
                        policy.secrets = diag::boolean(value, "secrets", &mut diags).unwrap_or(true)
                    }
                    "pass_env" => {
                        policy.pass_env = diag::string_list(value, "pass_env", &mut diags)
                            .unwrap_or_default()
                            .into_iter()
                            .map(|(s, _)| s)
                            .collect()
                    }
                    _ => {}
                }
            }
        }

        let mut paths_written = Vec::new();
        let sandbox = parse_sandbox(root, text, &mut diags, &mut paths_written);
        let lanes = parse_lanes(root, text, &mut diags, &mut paths_written);
        let classes = crate::lanes::parse_classes(root, &mut diags);
        crate::lanes::check_auto_promote(root, &classes, &mut diags);
        let snapshots = parse_snapshots(root, text, &mut diags);
        let actions = crate::action::settings::parse(root, &mut diags);
        check_secrets_not_passed(root, &actions, &lanes, &mut diags);
        let release = crate::release::parse(root, &mut diags);
        let mcp = crate::mcp::parse(root, text, &mut diags);
        let promotion = crate::promotion::parse(root, &mut diags);
        let conditions = crate::conditions::parse(root, text, evaluator, &mut diags);
        let panel = crate::panel::parse(root, text, evaluator, &mut diags);
        let team = crate::team::parse_team(root, &mut diags);
        let store = crate::team::parse_store(root, &mut diags);
        if let Some(r) = &release {
            let names: Vec<&str> = gates.iter().map(|g| g.name.as_str()).collect();
            crate::release::check_gates(r, &names, &mut diags);
            crate::lanes::check_release_class(root, &classes, &r.lane, &mut diags);
        }

        if !diags.is_empty() {
            return Err(Error::InvalidToml {
                code: crate::error::Code::InvalidWorkflow,
                path: name.to_string(),
                diagnostics: diags.into_sorted(),
            });
        }
        Ok(Workflow {
            gates,
            soaks,
            policy,
            sandbox,
            lanes,
            classes,
            snapshots,
            actions,
            release,
            mcp,
            promotion,
            conditions,
            panel,
            team,
            store,
            digest: sha256_hex(text.as_bytes()),
            paths_written,
            origin: name.to_string(),
        })
    }
}

pub const DEFAULT_MAX_OUTPUT: u64 = 64 << 20;
pub const DEFAULT_MAX_PROCESSES: u64 = 4096;
pub const DEFAULT_MAX_FILE_SIZE: u64 = 1 << 30;
pub const DEFAULT_MAX_WORKTREE: u64 = 4 << 30;
pub const DEFAULT_MAX_STORED: u64 = 2 << 30;
/// Agents think between commands: a sandbox kept for five minutes is there
/// for the next one.
pub const DEFAULT_KEEP_WARM: Duration = Duration::from_secs(300);
pub const DEFAULT_MAX_WARM: u64 = 16;

/// Every variable read only for actions (`[actions] env`, the lanes'
/// `action_env`, the SMTP credentials) must stay out of `pass_env`, which
/// hands a variable to every command and gate of a lane: a command that can
/// print the token can send it anywhere its output goes.
fn check_secrets_not_passed(
    root: &DeTable<'_>,
    settings: &ActionSettings,
    lanes: &[Lane],
    diags: &mut Diagnostics<'_>,
) {
    let mut secrets: Vec<(&str, String)> = settings
        .env
        .iter()
        .map(|n| (n.as_str(), "[actions] env".to_string()))
        .collect();
    for lane in lanes {
        for n in &lane.action_env {
            secrets.push((n, format!("[lanes.{}] action_env", lane.name)));
        }
    }
    if let Some(smtp) = &settings.smtp {
        for (n, key) in [
            (&smtp.username_env, "username_env"),
            (&smtp.password_env, "password_env"),
        ] {
            if let Some(n) = n {
                secrets.push((n, format!("[actions.smtp] {key}")));
            }
        }
    }
    if secrets.is_empty() {
        return;
    }
    // The `pass_env` lists as written, with their spans; malformed ones are
    // reported where they are parsed.
    let mut passed: Vec<(String, String, std::ops::Range<usize>)> = Vec::new();
    let mut collect = |table: &DeTable<'_>, label: String| {
        if let Some(v) = diag::get(table, "pass_env")
            && let DeValue::Array(items) = v.get_ref()
        {
            for item in items.iter() {
                if let DeValue::String(s) = item.get_ref() {
                    passed.push((s.to_string(), label.clone(), item.span()));
                }
            }
        }
    };
    if let Some(v) = diag::get(root, "policy")
        && let DeValue::Table(t) = v.get_ref()
    {
        collect(t, "[policy] pass_env".into());
    }
    if let Some(v) = diag::get(root, "lanes")
        && let DeValue::Table(lanes) = v.get_ref()
    {
        for (name, lane) in lanes.iter() {
            if let DeValue::Table(t) = lane.get_ref() {
                collect(t, format!("[lanes.{}] pass_env", name.get_ref()));
            }
        }
    }
    for (name, where_passed, span) in passed {
        if let Some((_, where_read)) = secrets.iter().find(|(s, _)| *s == name.as_str()) {
            diags.error(
                span,
                format!(
                    "`{name}` is read by actions ({where_read}) and also passed to every command by {where_passed}"
                ),
                Some(format!(
                    "remove \"{name}\" from {where_passed}: airlock reads it itself when it applies an action, and no sandboxed command may see it"
                )),
            );
        }
    }
}

/// `network = "off"`, `"on"` or a list of hosts (see [`crate::network`]):
/// every refused entry is reported at its own place, with what to write
/// instead.
pub(crate) fn network_setting(
    value: &toml::Spanned<DeValue<'_>>,
    diags: &mut Diagnostics<'_>,
) -> Option<Network> {
    let help = "write `network = \"off\"`, `network = \"on\"`, or a list of hosts such as `network = [\"pypi.org\", \"*.pythonhosted.org\", \"crates.io:443\"]`";
    match value.get_ref() {
        DeValue::String(s) => {
            match s.as_ref() {
                "on" => Some(Network::On),
                "off" => Some(Network::Off),
                other => {
                    diags.error(
                    value.span(),
                    format!("`network` must be \"on\", \"off\" or a list of hosts, found \"{other}\""),
                    Some(format!("{help}; to allow that host: `network = [\"{other}\"]`")),
                );
                    None
                }
            }
        }
        DeValue::Array(_) => {
            let entries = diag::string_list(value, "network", diags)?;
            let mut rules = Vec::new();
            let mut bad = false;
            for (entry, span) in entries {
                match Rule::parse(&entry) {
                    Ok(rule) => rules.push(rule.to_string()),
                    Err(e) => {
                        bad = true;
                        diags.error(
                            span,
                            format!("network entry `{entry}`: {}", e.problem),
                            Some(e.instead),
                        );
                    }
                }
            }
            if bad {
                return None;
            }
            crate::network::Allowlist::parse(&rules)
                .ok()
                .map(Network::Hosts)
        }
        other => {
            diags.error(
                value.span(),
                format!(
                    "`network` must be \"on\", \"off\" or a list of hosts, found {}",
                    diag::kind_name(other)
                ),
                Some(help.into()),
            );
            None
        }
    }
}

/// `resolve = {"NAME" = "ADDRESS"}` or `{"NAME" = ["ADDRESS", …]}`.
fn resolve_map(
    value: &toml::Spanned<DeValue<'_>>,
    diags: &mut Diagnostics<'_>,
) -> std::collections::BTreeMap<String, Vec<core::net::IpAddr>> {
    let mut out = std::collections::BTreeMap::new();
    let Some(table) = diag::table(value, "resolve", diags) else {
        return out;
    };
    for (key, v) in table.iter() {
        let name = key.get_ref().to_string();
        if let Err(e) = crate::network::Host::parse(&name) {
            diags.error(
                key.span(),
                format!("`resolve` names `{name}`: {}", e.problem),
                Some("write a host name such as `pkg.test`".into()),
            );
            continue;
        }
        let texts: Vec<(String, std::ops::Range<usize>)> = match v.get_ref() {
            DeValue::String(s) => vec![(s.to_string(), v.span())],
            _ => diag::string_list(v, "resolve", diags).unwrap_or_default(),
        };
        let mut addresses = Vec::new();
        for (text, span) in texts {
            match text.parse::<core::net::IpAddr>() {
                Ok(a) => addresses.push(a),
                Err(_) => diags.error(
                    span,
                    format!("`{text}` in `resolve` is not an IP address"),
                    Some(format!(
                        "write `\"{name}\" = \"127.0.0.1\"` or a list of addresses"
                    )),
                ),
            }
        }
        out.insert(name.to_ascii_lowercase(), addresses);
    }
    out
}

/// `64MiB`, `2GiB`, `500kB`, or a number of bytes.
pub fn parse_size(text: &str) -> Option<u64> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let n: u64 = number.parse().ok()?;
    let factor: u64 = match unit.trim() {
        "" | "B" => 1,
        "kB" | "KB" => 1000,
        "KiB" | "K" => 1 << 10,
        "MB" => 1_000_000,
        "MiB" | "M" => 1 << 20,
        "GB" => 1_000_000_000,
        "GiB" | "G" => 1 << 30,
        _ => return None,
    };
    n.checked_mul(factor).filter(|v| *v > 0)
}

fn size(
    value: &toml::Spanned<toml::de::DeValue<'_>>,
    key: &str,
    diags: &mut Diagnostics<'_>,
) -> Option<u64> {
    use toml::de::DeValue;
    let parsed = match value.get_ref() {
        DeValue::Integer(i) => i
            .as_str()
            .replace('_', "")
            .parse::<u64>()
            .ok()
            .filter(|n| *n > 0),
        DeValue::String(s) => parse_size(s),
        _ => None,
    };
    if parsed.is_none() {
        diags.error(
            value.span(),
            format!("`{key}` must be a size"),
            Some(format!(
                "write e.g. `{key} = \"64MiB\"` or a number of bytes"
            )),
        );
    }
    parsed
}

/// Where a list of paths is read from, and where each one is noted.
struct PathList<'a> {
    text: &'a str,
    setting: String,
    written: &'a mut Vec<PathEntry>,
}

fn paths(
    value: &toml::Spanned<toml::de::DeValue<'_>>,
    key: &'static str,
    diags: &mut Diagnostics<'_>,
    list: PathList<'_>,
) -> Vec<String> {
    let mut out = Vec::new();
    for (p, span) in diag::string_list(value, key, diags).unwrap_or_default() {
        let (line, column) = diag::line_column(list.text, span.start);
        let entry = PathEntry {
            setting: format!("{} {key}", list.setting),
            key,
            path: p.clone(),
            line,
            column,
        };
        if !(p.starts_with('/') || p == "~" || p.starts_with("~/")) {
            diags.error(
                span,
                format!("`{p}` in `{key}` must be an absolute path or start with `~/`"),
                None,
            );
        } else if p.split('/').any(|c| c == "..") {
            diags.error(
                span,
                format!("`{p}` in `{key}` must not contain `..`"),
                None,
            );
        } else {
            list.written.push(entry);
            out.push(p);
        }
    }
    out
}

fn parse_sandbox(
    root: &toml::de::DeTable<'_>,
    text: &str,
    diags: &mut Diagnostics<'_>,
    written: &mut Vec<PathEntry>,
) -> Sandbox {
    let mut sandbox = Sandbox {
        network: Network::Off,
        resolve: Default::default(),
        write: vec![],
        read: vec![],
        hide: vec![],
        accept_weaker: false,
        max_output: DEFAULT_MAX_OUTPUT,
        max_memory: None,
        max_processes: DEFAULT_MAX_PROCESSES,
        max_file_size: DEFAULT_MAX_FILE_SIZE,
        max_worktree: DEFAULT_MAX_WORKTREE,
        max_stored: DEFAULT_MAX_STORED,
        timeout: None,
        keep_warm: DEFAULT_KEEP_WARM,
        max_warm: DEFAULT_MAX_WARM,
    };
    let Some(value) = diag::get(root, "sandbox") else {
        return sandbox;
    };
    let Some(table) = diag::table(value, "sandbox", diags) else {
        return sandbox;
    };
    diag::unknown_keys(
        table,
        &[
            "network",
            "resolve",
            "write",
            "read",
            "hide",
            "accept_weaker",
            "max_output",
            "max_memory",
            "max_processes",
            "max_file_size",
            "max_worktree",
            "max_stored",
            "timeout",
            "keep_warm",
            "max_warm",
        ],
        "[sandbox]",
        diags,
    );
    for (key, value) in table.iter() {
        match key.get_ref().as_ref() {
            "network" => sandbox.network = network_setting(value, diags).unwrap_or(Network::Off),
            "resolve" => sandbox.resolve = resolve_map(value, diags),
            "write" | "read" | "hide" => {
                let list = PathList {
                    text,
                    setting: "[sandbox]".into(),
                    written: &mut *written,
                };
                match key.get_ref().as_ref() {
                    "write" => sandbox.write = paths(value, "write", diags, list),
                    "read" => sandbox.read = paths(value, "read", diags, list),
                    _ => sandbox.hide = paths(value, "hide", diags, list),
                }
            }
            "accept_weaker" => {
                sandbox.accept_weaker =
                    diag::boolean(value, "accept_weaker", diags).unwrap_or(false)
            }
            "max_output" => {
                sandbox.max_output = size(value, "max_output", diags).unwrap_or(DEFAULT_MAX_OUTPUT)
            }
            "max_memory" => sandbox.max_memory = size(value, "max_memory", diags),
            "max_file_size" => {
                sandbox.max_file_size =
                    size(value, "max_file_size", diags).unwrap_or(DEFAULT_MAX_FILE_SIZE)
            }
            "max_worktree" => {
                sandbox.max_worktree =
                    size(value, "max_worktree", diags).unwrap_or(DEFAULT_MAX_WORKTREE)
            }
            "max_stored" => {
                sandbox.max_stored = size(value, "max_stored", diags).unwrap_or(DEFAULT_MAX_STORED)
            }
            "timeout" => sandbox.timeout = parse_timeout(value, diags),
            "keep_warm" => {
                sandbox.keep_warm = parse_keep_warm(value, diags).unwrap_or(DEFAULT_KEEP_WARM)
            }
            "max_warm" => {
                sandbox.max_warm =
                    diag::positive(value, "max_warm", diags).unwrap_or(DEFAULT_MAX_WARM)
            }
            "max_processes" => {
                sandbox.max_processes =
                    diag::positive(value, "max_processes", diags).unwrap_or(DEFAULT_MAX_PROCESSES)
            }
            _ => {}
        }
    }
    sandbox
}

fn parse_lanes(
    root: &toml::de::DeTable<'_>,
    text: &str,
    diags: &mut Diagnostics<'_>,
    written: &mut Vec<PathEntry>,
) -> Vec<Lane> {
    let mut lanes = Vec::new();
    let Some(value) = diag::get(root, "lanes") else {
        return lanes;
    };
    let Some(table) = diag::table(value, "lanes", diags) else {
        return lanes;
    };
    for (key, value) in table.iter() {
        let name = key.get_ref().to_string();
        if !LANES.contains(&name.as_str()) {
            let help = diag::did_you_mean(&name, LANES.iter().copied())
                .unwrap_or_else(|| format!("lanes are: {}", LANES.join(", ")));
            diags.error(key.span(), format!("unknown lane `{name}`"), Some(help));
            continue;
        }
        let Some(lane_table) = diag::table(value, &format!("lanes.{name}"), diags) else {
            continue;
        };
        diag::unknown_keys(
            lane_table,
            &[
                "network",
                "write",
                "pass_env",
                "action_env",
                "scopes",
                "exec",
                "worktree",
                "submit",
                "promote",
                "auto_promote",
            ],
            &format!("[lanes.{name}]"),
            diags,
        );
        let mut lane = Lane {
            name,
            ..Lane::default()
        };
        for (k, v) in lane_table.iter() {
            match k.get_ref().as_ref() {
                "network" => lane.network = network_setting(v, diags),
                "write" => {
                    let list = PathList {
                        text,
                        setting: format!("[lanes.{}]", lane.name),
                        written: &mut *written,
                    };
                    lane.write = paths(v, "write", diags, list)
                }
                "pass_env" => {
                    lane.pass_env = diag::string_list(v, "pass_env", diags)
                        .unwrap_or_default()
                        .into_iter()
                        .map(|(s, _)| s)
                        .collect()
                }
                "action_env" => {
                    lane.action_env = crate::action::settings::env_names(v, "action_env", diags)
                }
                "exec" => lane.exec = diag::boolean(v, "exec", diags),
                "submit" => lane.submit = diag::boolean(v, "submit", diags),
                "promote" => lane.promote = diag::boolean(v, "promote", diags),
                "worktree" => lane.worktree = crate::lanes::worktree_access(v, diags),
                "auto_promote" => {
                    lane.auto_promote = diag::string_list(v, "auto_promote", diags)
                        .map(|list| list.into_iter().map(|(s, _)| s).collect())
                }
                "scopes" => {
                    for (scope, span) in diag::string_list(v, "scopes", diags).unwrap_or_default() {
                        match crate::action::pattern::check_pattern(&scope) {
                            Ok(()) => lane.scopes.push(scope),
                            Err(e) => diags.error(
                                span,
                                format!("invalid scope `{scope}`: {e}"),
                                Some(crate::action::pattern::FORMS.into()),
                            ),
                        }
                    }
                }
                _ => {}
            }
        }
        lanes.push(lane);
    }
    lanes
}

/// `[snapshots]`: the size cap and the workflow's own output filters.
#[derive(Debug, Clone, Serialize)]
pub struct Snapshots {
    /// Past this many bytes a stream is compared by digest, unnormalized.
    pub max_bytes: u64,
    /// `[[snapshots.filters]]`, applied after the built-in normalizers, in order.
    pub filters: Vec<airlock_snap::Filter>,
}

fn parse_snapshots(
    root: &toml::de::DeTable<'_>,
    source: &str,
    diags: &mut Diagnostics<'_>,
) -> Snapshots {
    use toml::de::DeValue;
    let mut out = Snapshots {
        max_bytes: airlock_snap::DEFAULT_MAX_BYTES,
        filters: Vec::new(),
    };
    let Some(table) = diag::get(root, "snapshots").and_then(|v| diag::table(v, "snapshots", diags))
    else {
        return out;
    };
    diag::unknown_keys(table, &["max_bytes", "filters"], "[snapshots]", diags);
    if let Some(v) = diag::get(table, "max_bytes") {
        out.max_bytes = size(v, "max_bytes", diags).unwrap_or(out.max_bytes);
    }
    let Some(filters) = diag::get(table, "filters") else {
        return out;
    };
    let DeValue::Array(items) = filters.get_ref() else {
        diags.error(
            filters.span(),
            "`snapshots.filters` must be an array of tables",
            Some(
                "write `[[snapshots.filters]]` with `regex = \"…\"` and `placeholder = \"…\"`"
                    .into(),
            ),
        );
        return out;
    };
    for (i, item) in items.iter().enumerate() {
        let context = format!("[[snapshots.filters]] #{}", i + 1);
        let Some(f) = diag::table(item, "snapshots.filters", diags) else {
            continue;
        };
        diag::unknown_keys(f, &["regex", "placeholder"], &context, diags);
        let mut field = |key: &str| match diag::get(f, key) {
            Some(v) => diag::string(v, key, diags).map(|s| (s, v.span())),
            None => {
                diags.error(
                    item.span(),
                    format!("{context} has no `{key}`"),
                    Some("a filter needs `regex = \"…\"` and `placeholder = \"…\"`".into()),
                );
                None
            }
        };
        let (regex, placeholder) = (field("regex"), field("placeholder"));
        let (Some((regex, span)), Some((placeholder, _))) = (regex, placeholder) else {
            continue;
        };
        if let Err(airlock_snap::SnapError::Filter {
            offset, message, ..
        }) = airlock_snap::check_regex(&regex)
        {
            // Point into the regex when the TOML string holds it verbatim
            // (a literal string, or a basic string without escapes).
            let inner = source.get(span.start + 1..span.end.saturating_sub(1));
            let at = match inner {
                Some(raw) if raw == regex => {
                    let byte = regex
                        .char_indices()
                        .nth(offset)
                        .map_or(regex.len(), |(b, _)| b);
                    span.start + 1 + byte
                }
                _ => span.start,
            };
            diags.error(
                at..at,
                format!("invalid regex in {context} at character {}: {message}", offset + 1),
                Some("Rust `regex` syntax; in a TOML literal string 'like\\this' backslashes need no escaping".into()),
            );
            continue;
        }
        out.filters
            .push(airlock_snap::Filter { regex, placeholder });
    }
    out
}

/// `keep_warm`: seconds or a duration, zero (or `false`) for none.
fn parse_keep_warm(
    value: &toml::Spanned<toml::de::DeValue<'_>>,
    diags: &mut Diagnostics<'_>,
) -> Option<Duration> {
    use toml::de::DeValue;
    let parsed = match value.get_ref() {
        DeValue::Boolean(false) => Some(Duration::ZERO),
        DeValue::Boolean(true) => Some(DEFAULT_KEEP_WARM),
        _ => seconds_or_duration(value),
    };
    if parsed.is_none() {
        diags.error(
            value.span(),
            "`keep_warm` must be a number of seconds or a duration",
            Some("write e.g. `keep_warm = \"5m\"`, or `keep_warm = 0` to build a sandbox per command".into()),
        );
    }
    parsed
}

mod humantime_serde_opt_secs {
    pub fn serialize<S: serde::Serializer>(
        d: &Option<std::time::Duration>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_some(&d.as_secs()),
            None => s.serialize_none(),
        }
    }
}

/// A duration as whole seconds, both ways (soak plans read it back).
pub(crate) mod humantime_serde_secs {
    use serde::Deserialize;

    pub fn serialize<S: serde::Serializer>(
        d: &std::time::Duration,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_secs())
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(
        d: D,
    ) -> Result<std::time::Duration, D::Error> {
        u64::deserialize(d).map(std::time::Duration::from_secs)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Each problem `text` has, as `line:column: message`; panics when it
    /// parses. The other modules' workflow tests use it too.
    pub(crate) fn problems(text: &str) -> Vec<String> {
        match Workflow::parse(text, "wf.toml") {
            Err(Error::InvalidToml { diagnostics, .. }) => diagnostics
                .iter()
                .map(|d| format!("{}:{}: {}", d.line, d.column, d.message))
                .collect(),
            other => panic!("expected problems, got {other:?}"),
        }
    }

    #[test]
    fn gates_keep_the_order_of_the_file() {
        let wf = Workflow::parse(
            "[gates.zeta]\nrun = \"true\"\n[gates.alpha]\nrun = \"true\"\ntimeout = \"90s\"\n[gates.mid]\nrun = \"true\"\ntimeout = 5\n",
            "wf.toml",
        )
        .unwrap();
        assert_eq!(wf.gate_names(), vec!["zeta", "alpha", "mid"]);
        assert_eq!(wf.gate("alpha").unwrap().timeout, Duration::from_secs(90));
        assert_eq!(wf.gate("mid").unwrap().timeout, Duration::from_secs(5));
        assert_eq!(wf.gate("zeta").unwrap().timeout, DEFAULT_GATE_TIMEOUT);
    }

    #[test]
    fn every_problem_is_reported_with_its_position() {
        let found = problems(
            "[gates.build]\nrun = \"\"\n[gates.test]\ntimeout = 0\n[policy]\nmax_file = 3\nprotected = [\"../x\"]\n",
        );
        assert_eq!(
            found,
            vec![
                "2:7: gate `build` has an empty `run` command",
                "3:8: gate `test` has no `run` command",
                "4:11: `timeout` must be a positive number of seconds or a duration",
                "6:1: unknown key `max_file` in [policy]",
                "7:14: invalid glob `../x`: `..` cannot appear in a glob: paths never leave the repository",
            ]
        );
    }

    #[test]
    fn max_warm_is_a_positive_count() {
        assert_eq!(Workflow::parse("", "wf.toml").unwrap().sandbox.max_warm, 16);
        assert_eq!(
            Workflow::parse("[sandbox]\nmax_warm = 3\n", "wf.toml")
                .unwrap()
                .sandbox
                .max_warm,
            3
        );
        assert_eq!(problems("[sandbox]\nmax_warm = 0\n").len(), 1);
    }

    #[test]
    fn keep_warm_takes_seconds_durations_or_false() {
        let warm = |v: &str| {
            Workflow::parse(&format!("[sandbox]\nkeep_warm = {v}\n"), "wf.toml")
                .unwrap()
                .sandbox
                .keep_warm
        };
        assert_eq!(warm("90"), Duration::from_secs(90));
        assert_eq!(warm("\"2m\""), Duration::from_secs(120));
        assert_eq!(warm("0"), Duration::ZERO);
        assert_eq!(warm("false"), Duration::ZERO);
        assert_eq!(warm("true"), DEFAULT_KEEP_WARM);
        assert_eq!(
            Workflow::parse("", "wf.toml").unwrap().sandbox.keep_warm,
            DEFAULT_KEEP_WARM
        );
        assert_eq!(
            problems("[sandbox]\nkeep_warm = \"a while\"\n"),
            vec!["2:13: `keep_warm` must be a number of seconds or a duration"]
        );
    }

    #[test]
    fn quotas_take_sizes_and_have_defaults() {
        let wf = Workflow::parse(
            "[sandbox]\nmax_file_size = \"256MiB\"\nmax_worktree = \"2GiB\"\nmax_stored = 1048576\n",
            "wf.toml",
        )
        .unwrap();
        assert_eq!(wf.sandbox.max_file_size, 256 << 20);
        assert_eq!(wf.sandbox.max_worktree, 2 << 30);
        assert_eq!(wf.sandbox.max_stored, 1 << 20);
        let default = Workflow::parse("", "wf.toml").unwrap().sandbox;
        assert_eq!(default.max_file_size, DEFAULT_MAX_FILE_SIZE);
        assert_eq!(default.max_worktree, DEFAULT_MAX_WORKTREE);
        assert_eq!(default.max_stored, DEFAULT_MAX_STORED);
        assert_eq!(
            problems("[sandbox]\nmax_worktree = \"lots\"\nmax_stored = 0\n"),
            vec![
                "2:16: `max_worktree` must be a size",
                "3:14: `max_stored` must be a size",
            ]
        );
    }

    #[test]
    fn the_workflow_itself_is_always_protected() {
        let wf = Workflow::parse("[policy]\nprotected = [\"ci/**\"]\n", "wf.toml").unwrap();
        assert_eq!(
            wf.protected(),
            vec![".airlock/**", ".gitleaks.toml", "ci/**"]
        );
    }

    #[test]
    fn every_granted_path_keeps_its_line() {
        let wf = Workflow::parse(
            "[sandbox]\nread = [\"~/data\"]\nwrite = [\"/var/cache/x\"]\nhide = [\"~/.k\"]\n\n\
             [lanes.staging]\nwrite = [\"~/deploy\"]\n",
            "wf.toml",
        )
        .unwrap();
        let places: Vec<(String, &str, usize, usize)> = wf
            .paths_written
            .iter()
            .map(|e| (e.setting.clone(), e.path.as_str(), e.line, e.column))
            .collect();
        assert_eq!(
            places,
            [
                ("[sandbox] read".to_string(), "~/data", 2, 9),
                ("[sandbox] write".to_string(), "/var/cache/x", 3, 10),
                ("[sandbox] hide".to_string(), "~/.k", 4, 9),
                ("[lanes.staging] write".to_string(), "~/deploy", 7, 10),
            ]
        );
        assert_eq!(wf.sandbox.read, ["~/data"]);
        assert_eq!(
            problems("[sandbox]\nread = [\"data\", \"/a/../b\"]\n"),
            vec![
                "2:9: `data` in `read` must be an absolute path or start with `~/`",
                "2:17: `/a/../b` in `read` must not contain `..`",
            ]
        );
    }
}
