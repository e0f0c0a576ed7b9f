//! `airlock agent`: the agent itself runs in its run's sandbox, as any
//! command of the run does, with three additions: a copy of its own
//! settings and credentials (a [`Preset`]'s, for this launch only; only
//! the token file flows back), its model's API
//! hosts through the egress proxy, and a relay socket through which the
//! hooks and the MCP server it is configured with reach airlock outside.
//!
//! The relay is what lets the hook's ledger append and the MCP server
//! (which need the run's store, hidden from every sandbox) work for an
//! agent that cannot see the store: the configured commands are `airlock
//! __agent-relay …`, which copy their stdio to a socket in a directory of
//! airlock's own shown read-only in the sandbox; the `airlock agent`
//! process outside answers each connection for this run only
//! (`airlock_servers::agent_relay`).

use crate::lane_policy::Capability;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use crate::confinement::Plan;
use crate::error::{Error, Result};
use crate::exec::{Launch, Preflight, Trace};
use crate::layout::Layout;
use crate::run::State;
use crate::{Airlock, Site};

/// The hidden subcommand the configured hook and MCP commands run inside
/// the sandbox: it copies its stdio to the relay socket.
pub const RELAY_ARG: &str = "__agent-relay";
/// The relay socket's name in the agent's directory.
pub const RELAY_SOCKET: &str = "relay.sock";
/// The name, in the agent's directory, at which the airlock binary is shown.
pub const RELAY_PROGRAM: &str = "airlock";

/// A known agent: what it needs besides the run's sandbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Preset {
    /// Claude Code (`claude`).
    Claude,
    /// OpenAI Codex CLI (`codex`).
    Codex,
}

/// A path of the home directory an agent is shown, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct HomePath {
    /// Relative to the home directory.
    pub path: &'static str,
    /// A directory or a file, in the agent's home copy.
    pub dir: bool,
    pub why: &'static str,
}

impl Preset {
    pub fn name(self) -> &'static str {
        match self {
            Preset::Claude => "claude",
            Preset::Codex => "codex",
        }
    }

    /// The hosts the agent must reach, added to its lane's: the model's
    /// API and the sign-in hosts that refresh its token.
    pub fn hosts(self) -> &'static [&'static str] {
        match self {
            // The Messages API; claude.ai and platform.claude.com (and the
            // older console.anthropic.com) sign in and refresh a
            // subscription's or console account's token.
            Preset::Claude => &[
                "api.anthropic.com:443",
                "claude.ai:443",
                "platform.claude.com:443",
                "console.anthropic.com:443",
            ],
            // The Responses API; auth.openai.com signs in and refreshes,
            // chatgpt.com serves a ChatGPT plan's requests.
            Preset::Codex => &[
                "api.openai.com:443",
                "auth.openai.com:443",
                "chatgpt.com:443",
            ],
        }
    }

    /// The agent's own settings and credentials in the home directory,
    /// shown to it (and to what it runs) and to no other command.
    pub fn home(self) -> &'static [HomePath] {
        match self {
            Preset::Claude => &[
                HomePath {
                    path: ".claude",
                    dir: true,
                    why: "a copy of Claude Code's settings, CLAUDE.md and sign-in token (.credentials.json, which alone is copied back)",
                },
                HomePath {
                    path: ".claude.json",
                    dir: false,
                    why: "a copy of Claude Code's state: account, projects, onboarding; it writes it on every start",
                },
            ],
            Preset::Codex => &[HomePath {
                path: ".codex",
                dir: true,
                why: "a copy of Codex's config.toml, AGENTS.md and sign-in token (auth.json, which alone is copied back)",
            }],
        }
    }

    /// The user's files copied into the agent's home for a launch
    /// (regular files of at most 1 MiB, through the user's links); never
    /// sessions, transcripts or history.
    pub fn copied_in(self) -> &'static [&'static str] {
        match self {
            Preset::Claude => &[
                ".claude.json",
                ".claude/settings.json",
                ".claude/settings.local.json",
                ".claude/.credentials.json",
                ".claude/CLAUDE.md",
            ],
            Preset::Codex => &[".codex/config.toml", ".codex/auth.json", ".codex/AGENTS.md"],
        }
    }

    /// The user's directories shown read-only inside the agent's home copy
    /// when they exist: what the agent reads (plugins, skills) but must
    /// not change, too large to copy.
    pub fn shown_read_only(self) -> &'static [&'static str] {
        match self {
            Preset::Claude => &[
                ".claude/plugins",
                ".claude/skills",
                ".claude/commands",
                ".claude/agents",
            ],
            Preset::Codex => &[".codex/prompts", ".codex/skills", ".codex/rules"],
        }
    }

    /// The one file copied back to the user's home when the agent ends:
    /// its sign-in token, which it may have refreshed.
    pub fn token(self) -> &'static str {
        self.own_secrets()[0]
    }

    /// Variables passed from airlock's environment when set: the agent's
    /// API keys and tokens (never given to `exec` or the gates).
    pub fn env_passed(self) -> &'static [&'static str] {
        match self {
            Preset::Claude => &[
                "ANTHROPIC_API_KEY",
                "ANTHROPIC_AUTH_TOKEN",
                "CLAUDE_CODE_OAUTH_TOKEN",
                "ANTHROPIC_MODEL",
            ],
            Preset::Codex => &["OPENAI_API_KEY", "CODEX_API_KEY"],
        }
    }

    /// Variables set for the agent: no traffic beyond its API (telemetry,
    /// error reports, self-updates), which its hosts do not allow anyway.
    pub fn env_set(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Preset::Claude => &[
                ("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1"),
                ("DISABLE_AUTOUPDATER", "1"),
            ],
            Preset::Codex => &[],
        }
    }

    /// Credentials of [`crate::confinement::HOME_SECRETS`] this agent is
    /// shown after all: its own.
    fn own_secrets(self) -> &'static [&'static str] {
        match self {
            Preset::Claude => &[".claude/.credentials.json"],
            Preset::Codex => &[".codex/auth.json"],
        }
    }
}

/// What `airlock agent` prepared outside the sandbox for one launch: a
/// private directory under airlock's state (hidden like the rest of it,
/// shown read-only to this agent only) holding the relay socket's place,
/// the agent's hook and MCP configuration, the mount point of the
/// airlock binary and, with a preset, the agent's home copy (`home/`).
#[derive(Debug, Clone)]
pub struct AgentDir {
    pub dir: PathBuf,
    /// The directory, open: see [`AgentDir::short_path`].
    handle: std::sync::Arc<std::fs::File>,
    /// Where `airlock agent` listens for the relay (not bound here).
    pub socket: PathBuf,
    /// The airlock binary as the agent sees it.
    pub program: PathBuf,
    /// The configuration files written for this launch.
    pub files: Vec<PathBuf>,
    /// What the agent's command line gets after its program name.
    pub args: Vec<String>,
}

impl AgentDir {
    /// `name` in the directory by a path short enough for a socket's
    /// (`/proc/self/fd/N/NAME`), valid in this process while it lives.
    pub fn short_path(&self, name: &str) -> PathBuf {
        use std::os::fd::AsRawFd;
        PathBuf::from(format!("/proc/self/fd/{}/{name}", self.handle.as_raw_fd()))
    }

    /// Removes the directory and everything in it.
    pub fn remove(&self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Makes the agent's directory for a launch and writes the
/// preset's hook and MCP configuration there: for this launch only, never
/// in the repository or the user's settings.
pub fn prepare(layout: &Layout, preset: Option<Preset>) -> Result<AgentDir> {
    let base = layout.state.join("agents");
    let dir = base.join(&crate::layout::unique_suffix()[..12]);
    let write_err = |path: &Path, source: std::io::Error| Error::Write {
        path: path.to_path_buf(),
        source,
    };
    airlock_fs::private_dir(&dir).map_err(|e| write_err(&dir, e))?;
    // Sockets are bound and reached through this descriptor: a socket's
    // path may be at most 107 bytes, and the state directory's may be long.
    let handle = std::fs::File::open(&dir).map_err(|e| write_err(&dir, e))?;
    let socket = dir.join(RELAY_SOCKET);
    let program = dir.join(RELAY_PROGRAM);
    // The mount point of the airlock binary, shown there read-only.
    std::fs::write(&program, b"").map_err(|e| write_err(&program, e))?;
    let mut agent = AgentDir {
        dir,
        handle: std::sync::Arc::new(handle),
        socket,
        program,
        files: Vec::new(),
        args: Vec::new(),
    };
    let written = match preset {
        Some(Preset::Claude) => claude_config(&mut agent),
        Some(Preset::Codex) => codex_config(&mut agent),
        None => Ok(()),
    };
    if let Err(e) = written {
        agent.remove();
        return Err(e);
    }
    Ok(agent)
}

/// `'…'` for a POSIX shell: the agents run a hook's command with `sh -c`.
fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

fn hook_command(program: &Path, agent: &str, event: &str) -> String {
    format!(
        "{} {RELAY_ARG} hook {agent} {event}",
        shell_quote(&program.to_string_lossy())
    )
}

/// Claude Code: `--settings=FILE` (hooks) and `--mcp-config=FILE` (the
/// MCP server), both read for this launch only. `=`: the option takes
/// several files and would swallow the next words otherwise.
fn claude_config(agent: &mut AgentDir) -> Result<()> {
    let program = agent.program.to_string_lossy().into_owned();
    let hook = |event: &str| {
        serde_json::json!([{
            "matcher": "*",
            "hooks": [{"type": "command", "command": hook_command(&agent.program, "claude", event)}],
        }])
    };
    let settings = serde_json::json!({
        "hooks": {"PreToolUse": hook("pre"), "PostToolUse": hook("post")},
    });
    let mcp = serde_json::json!({
        "mcpServers": {"airlock": {"type": "stdio", "command": program, "args": [RELAY_ARG, "mcp"]}},
    });
    let settings_file = agent.dir.join("claude-settings.json");
    let mcp_file = agent.dir.join("claude-mcp.json");
    write_json(&settings_file, &settings)?;
    write_json(&mcp_file, &mcp)?;
    agent.args = vec![
        format!("--settings={}", settings_file.display()),
        format!("--mcp-config={}", mcp_file.display()),
    ];
    agent.files = vec![settings_file, mcp_file];
    Ok(())
}

/// Codex: `-c key=value` overrides (TOML values), which apply to this
/// launch only and leave `~/.codex/config.toml` as it is; the hooks are
/// trusted for this launch (`--dangerously-bypass-hook-trust`) since airlock
/// wrote them, and they run in the sandbox like everything else the agent
/// starts.
fn codex_config(agent: &mut AgentDir) -> Result<()> {
    let toml_string = |s: &str| toml::Value::String(s.to_string()).to_string();
    let program = agent.program.to_string_lossy().into_owned();
    let hook = |event: &str| {
        format!(
            "[{{hooks=[{{type=\"command\",command={}}}]}}]",
            toml_string(&hook_command(&agent.program, "codex", event))
        )
    };
    let overrides = [
        format!("mcp_servers.airlock.command={}", toml_string(&program)),
        format!("mcp_servers.airlock.args=[\"{RELAY_ARG}\",\"mcp\"]"),
        format!("hooks.PreToolUse={}", hook("pre")),
        format!("hooks.PostToolUse={}", hook("post")),
    ];
    let mut args = Vec::new();
    for o in &overrides {
        args.push("-c".to_string());
        args.push(o.clone());
    }
    args.push("--dangerously-bypass-hook-trust".to_string());
    // Kept beside the socket so that what the agent was given can be read.
    let file = agent.dir.join("codex-overrides.txt");
    let text = overrides.join("\n") + "\n";
    std::fs::write(&file, text).map_err(|source| Error::Write {
        path: file.clone(),
        source,
    })?;
    agent.args = args;
    agent.files = vec![file];
    Ok(())
}

fn write_json(path: &Path, value: &serde_json::Value) -> Result<()> {
    let text = serde_json::to_vec_pretty(value)
        .map_err(|e| Error::Internal(format!("cannot write {}: {e}", path.display())))?;
    std::fs::write(path, text).map_err(|source| Error::Write {
        path: path.to_path_buf(),
        source,
    })
}

/// The agent's home for one launch, in its private directory (under
/// airlock's state, never the worktree): copies of the preset's files
/// ([`Preset::copied_in`]), shown read-write where the agent finds them
/// (below the home's real path). The user's own files are never shown
/// writable: whatever the agent writes there (hooks, MCP servers, skills,
/// CLAUDE.md, rules) dies with this directory, and only the token file
/// flows back ([`return_token`]). Returns the (copy, where it is shown)
/// pairs, read-write, and the user's directories shown read-only inside
/// them ([`Preset::shown_read_only`]).
fn home_copy(preset: Preset, agent: &AgentDir) -> Result<HomeCopy> {
    let Some(home) = std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
    else {
        return Ok(HomeCopy::default());
    };
    let real_home = std::fs::canonicalize(&home).map_err(|source| Error::Write {
        path: home.clone(),
        source,
    })?;
    let write_err = |path: &Path, source: std::io::Error| Error::Write {
        path: path.to_path_buf(),
        source,
    };
    let copy_home = agent.dir.join("home");
    airlock_fs::private_dir(&copy_home).map_err(|e| write_err(&copy_home, e))?;
    let mut shown = Vec::new();
    for entry in preset.home() {
        let copy = copy_home.join(entry.path);
        if entry.dir {
            airlock_fs::private_dir(&copy).map_err(|e| write_err(&copy, e))?;
        } else {
            // A file is shown by itself: it must exist to be bound.
            airlock_fs::Write::new()
                .mode(0o600)
                .write(&copy, b"{}\n")
                .map_err(|e| write_err(&copy, e))?;
        }
        shown.push((copy, real_home.join(entry.path)));
    }
    for rel in preset.copied_in() {
        let Some(bytes) = user_file(&home.join(rel)) else {
            continue;
        };
        let copy = copy_home.join(rel);
        airlock_fs::Write::new()
            .mode(0o600)
            .write(&copy, &bytes)
            .map_err(|e| write_err(&copy, e))?;
    }
    // A directory of the user's (through the user's link) is bound at its
    // place in the copy: the sandbox makes the mount point there.
    let read_only = preset
        .shown_read_only()
        .iter()
        .filter_map(|rel| {
            let real = std::fs::canonicalize(home.join(rel)).ok()?;
            real.is_dir().then(|| (real, real_home.join(rel)))
        })
        .collect();
    Ok(HomeCopy {
        writable: shown,
        read_only,
    })
}

/// What [`home_copy`] shows the agent: (source, target) pairs.
#[derive(Debug, Default)]
struct HomeCopy {
    writable: Vec<(PathBuf, PathBuf)>,
    read_only: Vec<(PathBuf, PathBuf)>,
}

/// The largest file copied into the agent's home or back out of it.
const COPY_LIMIT: u64 = 1 << 20;

/// A user's file to copy into the agent's home: its content when it is a
/// regular file (through the user's own link, as a dotfile manager makes)
/// of at most [`COPY_LIMIT`]; anything else is left out.
fn user_file(path: &Path) -> Option<Vec<u8>> {
    let meta = std::fs::metadata(path).ok()?;
    if !meta.is_file() || meta.len() > COPY_LIMIT {
        return None;
    }
    std::fs::read(path).ok()
}

/// The token file the agent left in its home copy, when it is a regular
/// file (opened without following a link) of at most [`COPY_LIMIT`]
/// holding JSON.
fn agents_token(path: &Path) -> Option<Vec<u8>> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .ok()?;
    let meta = file.metadata().ok()?;
    if !meta.is_file() || meta.len() > COPY_LIMIT {
        return None;
    }
    let mut bytes = Vec::new();
    file.take(COPY_LIMIT + 1).read_to_end(&mut bytes).ok()?;
    if bytes.len() as u64 > COPY_LIMIT {
        return None;
    }
    serde_json::from_slice::<serde_json::Value>(&bytes).ok()?;
    Some(bytes)
}

/// After the agent ended: its token file (a refreshed sign-in) copied to
/// the user's, atomically, when it is valid and changed; nothing else of
/// the agent's home flows back. Returns the user's path when written.
fn return_token(preset: Preset, agent: &AgentDir) -> Result<Option<PathBuf>> {
    let Some(home) = std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
    else {
        return Ok(None);
    };
    let rel = preset.token();
    let Some(bytes) = agents_token(&agent.dir.join("home").join(rel)) else {
        return Ok(None);
    };
    let user = home.join(rel);
    if user_file(&user).as_deref() == Some(&bytes[..]) {
        return Ok(None);
    }
    let write_err = |source: std::io::Error| Error::Write {
        path: user.clone(),
        source,
    };
    if let Some(parent) = user.parent()
        && std::fs::symlink_metadata(parent).is_err()
    {
        airlock_fs::private_dir(parent).map_err(write_err)?;
    }
    // Through the user's own link (a dotfile manager's), kept a link.
    let target = std::fs::canonicalize(&user).unwrap_or_else(|_| user.clone());
    airlock_fs::Write::new()
        .mode(0o600)
        .write(&target, &bytes)
        .map_err(write_err)?;
    Ok(Some(user))
}

/// How to launch the agent.
pub struct AgentOptions {
    /// The agent's program and arguments (the preset's arguments are put
    /// after the program).
    pub argv: Vec<OsString>,
    pub preset: Option<Preset>,
    pub input: airlock_sandbox::Input,
    pub echo: airlock_sandbox::Echo,
}

/// How the agent ended: its trace (recorded like an `exec`'s, origin
/// `agent`) and every connection it made through the proxy.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AgentSession {
    pub trace: Trace,
    pub preset: Option<Preset>,
    /// The hosts the proxy allowed (none when the lane grants the whole
    /// network, or none at all).
    pub hosts: Vec<String>,
    /// Every connection through the proxy (the trace's, repeated).
    pub connections: Vec<airlock_model::trace::Connection>,
    /// The user's token file, when the agent's refreshed token was copied
    /// back to it (nothing else of the agent's home ever is).
    pub token_returned: Option<PathBuf>,
}

/// Starts the agent in run `id`'s sandbox and waits for it to end, then
/// records its trace. `agent` is the directory [`prepare`] made, whose
/// relay socket the caller serves meanwhile.
pub fn launch(
    al: &mut Airlock,
    id: &str,
    agent: &AgentDir,
    opts: AgentOptions,
) -> Result<AgentSession> {
    let run = al.store.get(id)?;
    run.require("agent", &[State::Staged, State::Checked])?;
    if opts.argv.is_empty() {
        return Err(Error::Invalid(
            "nothing to run: give the agent's command after `--`, e.g. \
             `airlock agent RUN --preset claude -- claude`"
                .into(),
        ));
    }
    let workflow = al.workflow_for(&run)?;
    crate::lane_policy::require(&workflow, &run, Capability::Exec, "agent")?;
    let brief = al.brief_of(&run, &workflow)?;
    let mut argv = opts.argv.clone();
    argv.splice(1..1, agent.args.iter().map(OsString::from));

    let shown_home = match opts.preset {
        Some(preset) => home_copy(preset, agent)?,
        None => HomeCopy::default(),
    };
    let exe = std::fs::canonicalize(&al.init_program).unwrap_or_else(|_| al.init_program.clone());
    let hidden_again: Vec<PathBuf> = match (opts.preset, std::env::var_os("HOME")) {
        (Some(preset), Some(home)) => preset
            .own_secrets()
            .iter()
            .map(|s| PathBuf::from(&home).join(s))
            .collect(),
        _ => Vec::new(),
    };
    // The network: the host's when the lane grants it; otherwise the proxy,
    // with the lane's hosts (a brief may have narrowed them) and the preset's.
    let network = crate::confinement::network(&workflow, &brief, &run.lane);
    let mut hosts: Vec<String> = network
        .hosts()
        .map(crate::egress::entries)
        .unwrap_or_default();
    if !network.allowed()
        && let Some(p) = opts.preset
    {
        hosts.extend(p.hosts().iter().map(|h| h.to_string()));
    }
    let egress = if hosts.is_empty() {
        None
    } else {
        let allowlist = airlock_model::network::Allowlist::parse(&hosts).map_err(|e| {
            Error::Internal(format!("the agent's list of hosts does not parse: {e}"))
        })?;
        Some(crate::egress::EgressPlan {
            allowlist,
            names: workflow.sandbox.resolve.clone(),
            // The key directory: no sandbox shows it.
            dir: al.layout.key_dir.join("egress"),
        })
    };
    let preset = opts.preset;
    let adjust = |plan: &mut Plan| {
        let c = &mut plan.confinement;
        // Its own credentials: shown to this agent, hidden from `exec`.
        c.hidden.retain(|h| !hidden_again.contains(h));
        // Its home copy, writable; the user's own files are not shown.
        // (The sandbox mounts parents first, so the read-only directories
        // land inside the copy.)
        c.writable.extend(shown_home.writable.iter().cloned());
        c.read_only.extend(shown_home.read_only.iter().cloned());
        // The relay's directory, its socket (shown by its own path, so the
        // sandbox leaves it reachable) and the airlock binary.
        c.read_only.push((agent.dir.clone(), agent.dir.clone()));
        c.read_only
            .push((agent.socket.clone(), agent.socket.clone()));
        c.read_only.push((exe.clone(), agent.program.clone()));
        // One sandbox for the agent's whole life, never a warm one.
        c.host = None;
        c.ahead = None;
        if let Some(preset) = preset {
            for name in preset.env_passed() {
                if let Some(value) = std::env::var_os(name) {
                    plan.env.retain(|(k, _)| k != name);
                    plan.env.push((name.into(), value));
                }
            }
            for (name, value) in preset.env_set() {
                plan.env.retain(|(k, _)| k != name);
                plan.env.push((name.into(), value.into()));
            }
        }
        plan.env.push((
            "AIRLOCK_AGENT_RELAY".into(),
            agent.socket.clone().into_os_string(),
        ));
        // The proxy the engine starts for the command: the lane's hosts and
        // the preset's, for the agent's whole life.
        if egress.is_some() {
            plan.egress = egress.clone();
        }
    };
    let launch = Launch {
        adjust: Some(&adjust),
    };

    // The network: the host's when the lane grants it; otherwise the proxy,
    // with the lane's hosts (a brief may have narrowed them) and the preset's.
    let Airlock {
        layout,
        store,
        init_program,
        ..
    } = al;
    let site = Site {
        layout,
        init_program,
    };
    let preflight = Preflight::start(layout, &run.id, "agent");
    let traced = crate::exec::run_traced_reading(
        &site,
        &run,
        &workflow,
        &brief,
        "agent",
        argv,
        None,
        (opts.echo, opts.input),
        preflight,
        &launch,
    );
    // The token back before anything else can fail, even when the launch
    // did: the agent may have refreshed it (and the old one be revoked).
    let token_returned = match preset {
        Some(preset) => return_token(preset, agent),
        None => Ok(None),
    };
    let (mut trace, held) = traced?;
    let token_returned = token_returned?;
    crate::exec::Records::add_trace(store, &run.id, &mut trace)?;
    drop(held);
    let connections = trace.connections.clone();
    Ok(AgentSession {
        trace,
        preset,
        hosts,
        connections,
        token_returned,
    })
}
