//! How a run's commands are confined: what they may write, what is hidden
//! from them, whether they reach the network, what environment they see.
//! Every command airlock runs for a run (exec, gates, re-checks at promotion)
//! gets its sandbox from [`plan`], so these decisions live in one place.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use airlock_sandbox::ahead::LookAhead;
use airlock_sandbox::host::HostSettings;
use airlock_sandbox::{CommandSpec, Confinement, Limits, Outcome, SandboxError};

use crate::Site;
use crate::brief::Brief;
use crate::error::{Error, Result};
use crate::globs::Globs;
use crate::layout::Layout;
use crate::run::Run;
use crate::workflow::Workflow;
use airlock_model::network::{Allowlist, Network};

/// The home directory is hidden from every command (an empty read-only
/// directory stands in for it), and only these, below it, are shown again,
/// read-only, where they exist: toolchains and their caches, which builds
/// need and which hold no credentials, less [`HOME_SECRETS`] inside them.
/// `[sandbox] read` in the workflow adds to it; `[sandbox] hide` hides more.
/// `~/.gitconfig` is never shown: a file with its `user.name` and
/// `user.email` alone stands in for it (see [`git_identity`]), and
/// `$CARGO_HOME` and `$RUSTUP_HOME` are shown when they are below the home.
pub const HOME_EXPOSED: &[&str] = &[
    // Rust
    ".cargo",
    ".rustup",
    // Caches of every tool (pip, uv, go-build, sccache, …)
    ".cache",
    // Programs and libraries installed for the user (pip --user, pipx, uv tool)
    ".local/bin",
    ".local/lib",
    ".local/share/uv",
    ".pyenv",
    // JavaScript
    ".npm",
    ".nvm",
    ".volta",
    ".bun",
    ".deno",
    ".local/share/pnpm",
    // Go, Java, Ruby, version managers
    "go/bin",
    "go/pkg",
    ".m2/repository",
    ".gradle/caches",
    ".gradle/wrapper",
    ".rbenv",
    ".asdf",
    ".local/share/mise",
    ".sdkman/candidates",
];

/// Credentials that no command of a run may read: hidden with the rest of
/// the home, and hidden again inside whatever is shown of it (by default, or
/// by `[sandbox] read`).
pub const HOME_SECRETS: &[&str] = &[
    ".ssh",
    ".aws",
    ".gnupg",
    ".config/gh",
    ".config/hub",
    ".netrc",
    ".docker/config.json",
    ".config/containers/auth.json",
    ".git-credentials",
    ".config/git/credentials",
    ".cache/git/credential",
    ".gitconfig",
    ".config/git/config",
    ".config/gcloud",
    ".azure",
    ".kube",
    ".npmrc",
    ".yarnrc",
    ".yarnrc.yml",
    ".pypirc",
    ".config/pip",
    ".pip",
    ".cargo/credentials.toml",
    ".cargo/credentials",
    ".gem/credentials",
    ".m2/settings.xml",
    ".m2/settings-security.xml",
    ".gradle/gradle.properties",
    ".claude/.credentials.json",
    ".codex/auth.json",
    ".pgpass",
    ".my.cnf",
    ".vault-token",
    ".terraform.d/credentials.tfrc.json",
    ".s3cfg",
    ".boto",
    ".config/rclone",
    ".config/op",
    ".password-store",
    ".local/share/keyrings",
    ".local/share/uv/credentials",
    ".cache/huggingface/token",
    ".cache/huggingface/stored_tokens",
    ".bash_history",
    ".zsh_history",
    ".history",
    ".local/share/fish/fish_history",
    ".python_history",
    ".node_repl_history",
    ".psql_history",
    ".mysql_history",
    ".sqlite_history",
    ".lesshst",
    ".viminfo",
];

/// Virtual environments in the main checkout, shown read-only at their
/// place and activated (`VIRTUAL_ENV`, `PATH`) in every command, so gates
/// can run the project's Python tools without the agent being able to plant
/// anything (a `.pth` file) that the human's next Python would run.
pub const CHECKOUT_VENVS: &[&str] = &[".venv", "venv"];

/// What network a run's commands get, and why: none, the host's, or only
/// the hosts of a list, through airlock's egress proxy.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct NetworkDecision {
    /// `"off"`, `"on"` or the list of hosts.
    pub network: Network,
    pub reason: String,
}

impl NetworkDecision {
    /// The host's whole network (`"on"`).
    pub fn allowed(&self) -> bool {
        matches!(self.network, Network::On)
    }

    /// The hosts the egress proxy lets through, when the decision is a list.
    pub fn hosts(&self) -> Option<&Allowlist> {
        match &self.network {
            Network::Hosts(list) => Some(list),
            _ => None,
        }
    }
}

/// The one place the network is decided: the run's lane grants it (its
/// own `network`, else `[sandbox] network`, else off), and the brief may
/// narrow that, never widen it. Everything that runs a command of a run asks
/// this.
pub fn network(workflow: &Workflow, brief: &Brief, lane: &str) -> NetworkDecision {
    network_of(workflow, brief.network.as_ref(), lane)
}

/// [`network`], for a brief that sets the network (`Some`) or leaves it to
/// its lane (`None`). A brief that widens its lane is refused when it is
/// read with the workflow (`Brief::parse`); one that widens it here (the
/// workflow changed since) gets no network at all.
pub fn network_of(
    workflow: &Workflow,
    brief_network: Option<&Network>,
    lane: &str,
) -> NetworkDecision {
    let (granted, source) = workflow.lane_network(lane);
    let granted_text = airlock_model::network::describe(granted);
    let Some(asked) = brief_network else {
        let reason = match granted {
            Network::Off
                if source.starts_with("[sandbox]") && workflow_is_silent(workflow, lane) =>
            {
                "no lane, brief or workflow grants it".to_string()
            }
            Network::Off => format!("lane `{lane}` denies it ({source} = \"off\")"),
            Network::On => format!("lane `{lane}` grants it ({source} = \"on\")"),
            Network::Hosts(_) => {
                format!("lane `{lane}` allows a list of hosts ({source} = {granted_text})")
            }
        };
        return NetworkDecision {
            network: granted.clone(),
            reason,
        };
    };
    let widenings = Network::narrow(granted, asked);
    if !widenings.is_empty() {
        let listed: Vec<String> = widenings.iter().map(|w| w.to_string()).collect();
        return NetworkDecision {
            network: Network::Off,
            reason: format!(
                "the brief asks for more than lane `{lane}` allows ({source} = {granted_text}): {}; \
                 so its commands get no network",
                listed.join("; ")
            ),
        };
    }
    NetworkDecision {
        network: asked.clone(),
        reason: format!(
            "the brief sets network = {}, within lane `{lane}`'s {source} = {granted_text}",
            airlock_model::network::describe(asked)
        ),
    }
}

/// Neither `[sandbox]` nor the lane says anything of the network.
fn workflow_is_silent(workflow: &Workflow, lane: &str) -> bool {
    matches!(workflow.sandbox.network, Network::Off)
        && !workflow
            .lanes
            .iter()
            .any(|l| l.name == lane && l.network.is_some())
}

/// A command's sandbox and environment, ready to run.
pub struct Plan {
    pub confinement: Confinement,
    pub limits: Limits,
    pub env: Vec<(OsString, OsString)>,
    pub network: NetworkDecision,
    /// The egress proxy the command needs, when its network is a list of
    /// hosts: give it to [`run`] or [`run_gated`].
    pub egress: Option<crate::egress::EgressPlan>,
}

fn home() -> Option<PathBuf> {
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
}

fn expand(path: &str) -> Option<PathBuf> {
    match path.strip_prefix('~') {
        Some(rest) => home().map(|h| h.join(rest.trim_start_matches('/'))),
        None => Some(PathBuf::from(path)),
    }
}

/// One path of a sandbox's view and why it is there.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Shown {
    /// The path as commands see it.
    pub path: PathBuf,
    /// Where it really is, when that differs (a link, a generated file).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<PathBuf>,
    pub why: String,
}

impl Shown {
    fn at(path: PathBuf, why: impl Into<String>) -> Shown {
        Shown {
            path,
            source: None,
            why: why.into(),
        }
    }
}

/// What every command of the repository sees, whatever its run: hidden
/// paths, paths shown read-only again and writable paths the workflow
/// grants (in any order: the sandbox mounts parents before children), and
/// the virtual environment it activates. A run adds its
/// worktree, its `/tmp`, its lane's grants and its brief's `forbid_read`.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct View {
    pub hidden: Vec<Shown>,
    pub read_only: Vec<Shown>,
    pub writable: Vec<Shown>,
    /// The main checkout's virtual environment, activated in every command.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub venv: Option<PathBuf>,
}

impl View {
    fn hidden_paths(&self) -> Vec<PathBuf> {
        self.hidden.iter().map(|h| h.path.clone()).collect()
    }
}

/// The work trees and the common git directory of the main repository: the
/// main checkout, every linked checkout (`git worktree add`), whichever of
/// them airlock was started from.
pub fn repository_checkouts(layout: &Layout) -> (Vec<PathBuf>, PathBuf) {
    let common = layout
        .objects_dir
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| layout.git_dir.clone());
    let mut trees = vec![layout.root.clone()];
    // A non-bare repository's first work tree holds the common directory.
    if common.file_name().is_some_and(|n| n == ".git")
        && let Some(primary) = common.parent()
    {
        trees.push(primary.to_path_buf());
    }
    if let Ok(entries) = std::fs::read_dir(common.join("worktrees")) {
        for entry in entries.flatten() {
            // `gitdir` holds the path of the linked checkout's `.git` file.
            let Ok(text) = std::fs::read_to_string(entry.path().join("gitdir")) else {
                continue;
            };
            // Relative since git 2.48 with `worktree.useRelativePaths`.
            let dot_git = lexical(&entry.path().join(text.trim_end_matches(['\n', '\r'])));
            // A tree at `/` would hide the system: not a checkout of ours.
            if let Some(tree) = dot_git.parent().filter(|t| t.parent().is_some()) {
                trees.push(tree.to_path_buf());
            }
        }
    }
    trees.sort();
    trees.dedup();
    (trees, common)
}

/// `path` with its `.` and `..` taken away by name, as git resolves the
/// relative paths it writes.
fn lexical(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// What every command of the repository sees; see [`View`].
pub fn view(layout: &Layout, workflow: &Workflow) -> View {
    let mut view = View::default();
    let (trees, common) = repository_checkouts(layout);
    for tree in &trees {
        let why = if *tree == layout.root {
            "the main checkout: uncommitted work, .env files, its .git"
        } else {
            "another work tree of the repository"
        };
        view.hidden.push(Shown::at(tree.clone(), why));
    }
    if !trees.iter().any(|t| common.starts_with(t)) {
        view.hidden.push(Shown::at(
            common.clone(),
            "the repository's git directory: config, refs, hooks",
        ));
    }
    view.hidden.push(Shown::at(
        layout.state.clone(),
        "airlock's state: the ledger, other runs, logs, proofs",
    ));
    view.hidden.push(Shown::at(
        layout.key_dir.clone(),
        "the signing key, warm sandboxes' and ledger servers' sockets",
    ));
    if let Some(dir) = &workflow.store.logs {
        view.hidden.push(Shown::at(
            crate::logstore::LogStore::at(layout, dir).dir,
            "the team's shared log store ([store] logs): every run's output, every machine's",
        ));
    }
    // The object store, borrowed by every run's repository: readable, never
    // writable. A run whose brief forbids reading paths has objects of its
    // own (see `start`): `plan` leaves it hidden then.
    view.read_only.push(Shown::at(
        layout.objects_dir.clone(),
        "the repository's object store, which runs borrow",
    ));

    if let Some(home) = home() {
        home_view(layout, &home, &mut view);
    }
    // The reviewer's signing key (issue 20) wherever git's config keeps it, and the
    // global config file that names it: `airlock approve` signs with that key.
    for (path, why) in signing_key_paths(layout) {
        view.hidden.push(Shown::at(path, why));
    }
    for entry in workflow.paths_written.iter().filter(|e| e.key == "hide") {
        if let Some(path) = expand(&entry.path) {
            let why = format!("{} (line {})", entry.setting, entry.line);
            view.hidden.push(Shown::at(path, why));
        }
    }
    for entry in workflow.paths_written.iter().filter(|e| e.key == "read") {
        if let Some(path) = expand(&entry.path) {
            let why = format!("{} (line {})", entry.setting, entry.line);
            push_exposed(&mut view, path, why);
        }
    }
    for entry in workflow
        .paths_written
        .iter()
        .filter(|e| e.setting == "[sandbox] write")
    {
        // Checked to exist when the workflow was loaded; gone since, it is
        // left out rather than made.
        if let Some(path) = expand(&entry.path).filter(|p| p.exists()) {
            let why = format!("{} (line {})", entry.setting, entry.line);
            view.writable.push(Shown::at(path, why));
        }
    }
    for name in CHECKOUT_VENVS {
        let venv = layout.root.join(name);
        if venv.join("pyvenv.cfg").is_file() && venv.join("bin").is_dir() {
            push_exposed(
                &mut view,
                venv.clone(),
                "the main checkout's virtual environment, activated in every command",
            );
            view.venv.get_or_insert(venv);
        }
    }
    view
}

/// Shows `path` read-only where it is, from where it really leads.
fn push_exposed(view: &mut View, path: PathBuf, why: impl Into<String>) {
    // Most are not there: one `lstat` says so, where resolving it looks up
    // each component (it fails wherever the `lstat` fails).
    if std::fs::symlink_metadata(&path).is_err() {
        return;
    }
    let Ok(real) = std::fs::canonicalize(&path) else {
        return;
    };
    view.read_only.push(Shown {
        source: (real != path).then_some(real),
        path,
        why: why.into(),
    });
}

/// Files outside the home that hold or name a reviewer's SSH signing key: the file
/// `GIT_CONFIG_GLOBAL` names, and git's `user.signingkey` (with `gpg.format = ssh`) and,
/// when that is a `.pub`, its private half beside it. (Those in the home are hidden with it.)
fn signing_key_paths(layout: &Layout) -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    if let Some(config) = std::env::var_os("GIT_CONFIG_GLOBAL").map(PathBuf::from)
        && config.is_absolute()
        && !config.starts_with("/dev")
    {
        out.push((
            config,
            "the git configuration $GIT_CONFIG_GLOBAL names, which names the signing key".into(),
        ));
    }
    if let Some(key) = crate::git::ssh_signing_key(&layout.git_dir, &layout.key_dir)
        && key.is_absolute()
    {
        if let Some(private) = key.to_str().and_then(|k| k.strip_suffix(".pub")) {
            out.push((
                PathBuf::from(private),
                "the private half of git's user.signingkey (approvals are signed with it)".into(),
            ));
        }
        out.push((
            key,
            "git's user.signingkey, the SSH key approvals are signed with".into(),
        ));
    }
    out
}

/// The home directory's part of the view: all of it hidden, the toolchains
/// shown again, the secrets hidden again inside them, and the git identity.
fn home_view(layout: &Layout, home: &Path, view: &mut View) {
    // Hiding `/` (a service account's home) would hide the system.
    let Some(real_home) = std::fs::canonicalize(home)
        .ok()
        .filter(|h| h.parent().is_some())
    else {
        return;
    };
    view.hidden.push(Shown::at(
        home.to_path_buf(),
        "the home directory; only the paths below are shown again",
    ));
    for rel in HOME_EXPOSED {
        push_exposed(
            view,
            real_home.join(rel),
            "a toolchain or cache (HOME_EXPOSED)",
        );
    }
    for name in ["CARGO_HOME", "RUSTUP_HOME"] {
        if let Some(dir) = std::env::var_os(name).map(PathBuf::from)
            && dir.is_absolute()
            && let Ok(real) = std::fs::canonicalize(&dir)
            && real.starts_with(&real_home)
            && real != real_home
            && !view.read_only.iter().any(|s| real.starts_with(&s.path))
        {
            push_exposed(view, dir, format!("${name}"));
        }
    }
    if let Some(file) = git_identity(layout, home) {
        view.read_only.push(Shown {
            path: real_home.join(".gitconfig"),
            source: Some(file),
            why: "user.name and user.email of your git configuration, nothing else".into(),
        });
    }
    for rel in HOME_SECRETS {
        view.hidden
            .push(Shown::at(home.join(rel), "a credential (HOME_SECRETS)"));
    }
}

/// A git configuration with only the user's identity (`user.name`,
/// `user.email` from `~/.gitconfig` and `$XDG_CONFIG_HOME/git/config`), in
/// airlock's state, for commands to see as `~/.gitconfig`: commits in the
/// worktree carry the user's name, and nothing else of the configuration
/// (credential helpers, tokens in URLs, includes) is shown. Rewritten only
/// when it changes, so that the warm sandbox, named after the file, stays.
pub fn git_identity(layout: &Layout, home: &Path) -> Option<PathBuf> {
    let xdg = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .unwrap_or_else(|| home.join(".config"));
    let (mut name, mut email) = (None, None);
    // git reads the XDG file first; `~/.gitconfig` wins.
    for file in [xdg.join("git/config"), home.join(".gitconfig")] {
        let Ok(text) = std::fs::read_to_string(&file) else {
            continue;
        };
        let (n, e) = user_identity(&text);
        name = n.or(name);
        email = e.or(email);
    }
    let quote = |v: &str| -> Option<String> {
        (!v.chars().any(|c| c.is_control() && c != '\t'))
            .then(|| format!("\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\"")))
    };
    let mut text = String::from(
        "# airlock: your git identity, and nothing else of your git configuration\n[user]\n",
    );
    let mut any = false;
    for (key, value) in [("name", name), ("email", email)] {
        if let Some(quoted) = value.as_deref().and_then(quote) {
            text += &format!("\t{key} = {quoted}\n");
            any = true;
        }
    }
    if !any {
        return None;
    }
    let path = layout.state.join("sandbox-gitconfig");
    if std::fs::read_to_string(&path).is_ok_and(|old| old == text) {
        return Some(path);
    }
    // Written where runs are: a repository airlock has not set up (asked
    // by `sandbox doctor`) gets no state for it.
    if !layout.state.is_dir() {
        return None;
    }
    airlock_fs::write(&path, text.as_bytes()).ok()?;
    Some(path)
}

/// `user.name` and `user.email` of a git configuration file's `[user]`
/// sections (the last one wins, as git has it); includes are not followed.
fn user_identity(text: &str) -> (Option<String>, Option<String>) {
    let (mut name, mut email) = (None, None);
    let mut in_user = false;
    for line in text.lines() {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix('[') {
            let section = rest.split(']').next().unwrap_or("").trim();
            in_user = section.eq_ignore_ascii_case("user");
            // `[user] name = x` on one line
            let after = rest.split_once(']').map_or("", |(_, a)| a.trim());
            if !in_user || after.is_empty() {
                continue;
            }
            assign(after, &mut name, &mut email);
            continue;
        }
        if in_user {
            assign(line, &mut name, &mut email);
        }
    }
    (name, email)
}

fn assign(line: &str, name: &mut Option<String>, email: &mut Option<String>) {
    let Some((key, value)) = line.split_once('=') else {
        return;
    };
    let slot = match key.trim().to_ascii_lowercase().as_str() {
        "name" => name,
        "email" => email,
        _ => return,
    };
    let mut out = String::new();
    let mut quoted = false;
    let mut chars = value.trim().chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => quoted = !quoted,
            '\\' => match chars.next() {
                Some('t') => out.push('\t'),
                Some('n') => out.push('\n'),
                Some(c) => out.push(c),
                None => {}
            },
            '#' | ';' if !quoted => break,
            c => out.push(c),
        }
    }
    let value = out.trim().to_string();
    if !value.is_empty() {
        *slot = Some(value);
    }
}

/// Checks the paths the workflow grants against the repository: a `write`
/// or `read` that covers (or is) the main checkout, a work tree or the git
/// directory of the repository, airlock's state or the signing key's
/// directory, a `write` inside any of them, or a `read` inside the state,
/// the key directory or the git directory, would open to every command what
/// the sandbox exists to keep from it. Each such line is a problem of the
/// workflow. (A granted path that does not exist is one only when a command
/// is to run: see [`require_existing`].)
pub fn check_paths(layout: &Layout, workflow: &Workflow) -> Result<()> {
    let grants: Vec<_> = workflow
        .paths_written
        .iter()
        .filter(|e| e.key != "hide")
        .collect();
    if grants.is_empty() {
        return Ok(());
    }
    let (trees, common) = repository_checkouts(layout);
    // (path, what it is, whether a `read` may lie inside it)
    let mut guarded: Vec<(PathBuf, String, bool)> = Vec::new();
    for tree in trees {
        let what = if tree == layout.root {
            format!("the main checkout {}", tree.display())
        } else {
            format!("the work tree {} of the repository", tree.display())
        };
        guarded.push((tree, what, true));
    }
    guarded.push((
        common.clone(),
        format!("the repository's git directory {}", common.display()),
        false,
    ));
    guarded.push((
        layout.git_dir.clone(),
        format!(
            "the repository's git directory {}",
            layout.git_dir.display()
        ),
        false,
    ));
    guarded.push((
        layout.state.clone(),
        format!(
            "airlock's state {} (the ledger, every run)",
            layout.state.display()
        ),
        false,
    ));
    guarded.push((
        layout.key_dir.clone(),
        format!("the signing key's directory {}", layout.key_dir.display()),
        false,
    ));
    if let Some(dir) = &workflow.store.logs {
        let store = crate::logstore::LogStore::at(layout, dir).dir;
        let what = format!("the shared log store {}", store.display());
        guarded.push((store, what, false));
    }
    let both = |p: &Path| -> Vec<PathBuf> {
        let mut forms = vec![p.to_path_buf()];
        if let Ok(real) = std::fs::canonicalize(p)
            && real != p
        {
            forms.push(real);
        }
        forms
    };
    let mut diagnostics = Vec::new();
    for entry in grants {
        let problem = |message: String, help: &str| crate::diag::Diagnostic {
            line: entry.line,
            column: entry.column,
            message,
            help: Some(help.to_string()),
        };
        let Some(path) = expand(&entry.path) else {
            diagnostics.push(problem(
                format!(
                    "`{}` in `{}` starts with `~`, and HOME is not set",
                    entry.path, entry.setting
                ),
                "write the absolute path",
            ));
            continue;
        };
        let granted = both(&path);
        'guards: for (guard, what, read_inside) in &guarded {
            for g in both(guard) {
                for p in &granted {
                    let message = if g.starts_with(p) {
                        if g == *p {
                            format!("`{}` in `{}` is {what}", entry.path, entry.setting)
                        } else {
                            format!("`{}` in `{}` contains {what}", entry.path, entry.setting)
                        }
                    } else if p.starts_with(&g) && (entry.key == "write" || !read_inside) {
                        format!("`{}` in `{}` is inside {what}", entry.path, entry.setting)
                    } else {
                        continue;
                    };
                    let help = if entry.key == "write" {
                        "commands of a run may never write the main checkout, the repository's git directory, airlock's state or the signing key; grant a narrower path outside them (a cache directory, say), or remove this one"
                    } else {
                        "commands of a run may never read airlock's state, the signing key or the repository's git directory (its object store is shown already); show a narrower path, or remove this one"
                    };
                    diagnostics.push(problem(message, help));
                    break 'guards;
                }
            }
        }
    }
    if diagnostics.is_empty() {
        return Ok(());
    }
    diagnostics.sort_by_key(|d| (d.line, d.column));
    Err(Error::InvalidToml {
        code: crate::error::Code::InvalidWorkflow,
        path: workflow.origin.clone(),
        diagnostics,
    })
}

/// Refuses a command whose sandbox would grant, in `[sandbox]` or its
/// lane, a path that does not exist: written by hand, it is a typo or a
/// directory still to be made, and silently leaving it out would leave a
/// build failing for a reason nobody sees.
fn require_existing(workflow: &Workflow, lane: &str) -> Result<()> {
    let lane_setting = format!("[lanes.{lane}] write");
    let diagnostics: Vec<_> = workflow
        .paths_written
        .iter()
        .filter(|e| e.key != "hide")
        .filter(|e| e.setting.starts_with("[sandbox]") || e.setting == lane_setting)
        .filter(|e| expand(&e.path).is_none_or(|p| std::fs::metadata(p).is_err()))
        .map(|e| crate::diag::Diagnostic {
            line: e.line,
            column: e.column,
            message: format!(
                "`{}` in `{}` does not exist{}",
                e.path,
                e.setting,
                expand(&e.path)
                    .filter(|p| p.as_os_str() != e.path.as_str())
                    .map(|p| format!(" ({})", p.display()))
                    .unwrap_or_default()
            ),
            help: Some("create it, or remove it from the list".into()),
        })
        .collect();
    if diagnostics.is_empty() {
        return Ok(());
    }
    Err(Error::InvalidToml {
        code: crate::error::Code::InvalidWorkflow,
        path: workflow.origin.clone(),
        diagnostics,
    })
}

/// Plans the sandbox of a command of `run` working in `cwd` (its worktree,
/// or a scratch checkout of it).
pub fn plan(
    site: &Site,
    run: &Run,
    workflow: &Workflow,
    brief: &Brief,
    cwd: &Path,
) -> Result<Plan> {
    let layout = site.layout;
    let tmp = layout.run_dir(&run.id).join("tmp");
    let root = layout.state.join("sandbox-root");
    let feedback = crate::layout::feedback_dir(layout, &run.id);
    for dir in [&tmp, &root, &feedback] {
        std::fs::create_dir_all(dir).map_err(|source| Error::Write {
            path: dir.clone(),
            source,
        })?;
    }
    let lane = workflow.lanes.iter().find(|l| l.name == run.lane);
    require_existing(workflow, &run.lane)?;
    let view = view(layout, workflow);

    let mut hidden = view.hidden_paths();
    hidden.extend(forbidden_in(cwd, &brief.forbid_read)?);

    // A lane whose worktree is read-only (draft, by default) has it mounted
    // read-only: no command, git included, can change a file or the run's
    // branch, whatever it tries. A scratch checkout (a rehearsal's, the
    // merged tree's) is airlock's to throw away, and stays writable.
    let worktree_writable = cwd != run.worktree
        || workflow.grants(
            &run.lane,
            crate::lane_policy::Capability::WriteWorktree,
            &run.class,
        );
    let mut writable = vec![(tmp, PathBuf::from("/tmp"))];
    if worktree_writable {
        writable.insert(0, (cwd.to_path_buf(), cwd.to_path_buf()));
    }
    writable.extend(
        view.writable
            .iter()
            .map(|w| (w.path.clone(), w.path.clone())),
    );
    for granted in lane.map(|l| l.write.iter()).into_iter().flatten() {
        if let Some(path) = expand(granted).filter(|p| p.exists()) {
            writable.push((path.clone(), path));
        }
    }
    let mut read_only = view
        .read_only
        .iter()
        // A lane whose brief forbids reading paths has objects of its own
        // without them (see `start`): the main object store stays hidden.
        .filter(|r| brief.forbid_read.is_empty() || r.path != layout.objects_dir)
        .map(|r| {
            (
                r.source.clone().unwrap_or_else(|| r.path.clone()),
                r.path.clone(),
            )
        })
        .collect::<Vec<_>>();
    // The reviewer's words ($AIRLOCK_FEEDBACK): readable, never writable.
    read_only.push((feedback.clone(), feedback));
    if !worktree_writable {
        read_only.push((cwd.to_path_buf(), cwd.to_path_buf()));
    }

    let network = network(workflow, brief, &run.lane);
    let mut pass: Vec<String> = workflow.policy.pass_env.clone();
    if let Some(lane) = lane {
        pass.extend(lane.pass_env.iter().cloned());
    }
    let mut env = environment(layout, run, &pass);
    if let Some(venv) = &view.venv {
        activate(&mut env, venv);
    }
    if matches!(network.network, Network::Off) {
        offline(&mut env);
    }
    let egress = network.hosts().map(|list| crate::egress::EgressPlan {
        allowlist: list.clone(),
        names: workflow.sandbox.resolve.clone(),
        // The key directory: no sandbox shows it.
        dir: layout.key_dir.join("egress"),
    });
    Ok(Plan {
        confinement: Confinement {
            init_program: site.init_program.to_path_buf(),
            writable,
            read_only,
            hidden,
            network: network.allowed(),
            root,
            weaker: false,
            host: hosts_dir(layout, workflow).map(|dir| HostSettings {
                dir,
                idle: workflow.sandbox.keep_warm,
                owner: Some(run.id.clone()),
                max_hosts: workflow.sandbox.max_warm as usize,
            }),
            ahead: None,
        },
        limits: Limits {
            output_bytes: Some(workflow.sandbox.max_output),
            memory_bytes: workflow.sandbox.max_memory,
            processes: Some(workflow.sandbox.max_processes),
            file_size_bytes: Some(workflow.sandbox.max_file_size),
        },
        env,
        network,
        egress,
    })
}

/// What package tools read to stay off the network, each as its own
/// documentation names it: without a network they would otherwise spend
/// seconds in name lookups and retries before failing. A variable the
/// workflow or lane passes through keeps its value.
pub const OFFLINE_ENV: &[(&str, &str)] = &[
    // cargo: `net.offline`; resolves and builds from ~/.cargo's registry.
    ("CARGO_NET_OFFLINE", "true"),
    // npm (and npm run's children): `offline`, from the cache in ~/.npm.
    ("npm_config_offline", "true"),
    // yarn 2 and later: `enableOfflineMode`.
    ("YARN_ENABLE_OFFLINE_MODE", "1"),
    // pip: `--no-index`; local wheels and directories still install.
    ("PIP_NO_INDEX", "1"),
    // uv: `--offline`, from ~/.cache/uv.
    ("UV_OFFLINE", "1"),
    // go: no module downloads; the module cache in ~/go/pkg serves.
    ("GOPROXY", "off"),
];

/// Adds [`OFFLINE_ENV`] to a command's environment.
fn offline(env: &mut Vec<(OsString, OsString)>) {
    for (name, value) in OFFLINE_ENV {
        if !env.iter().any(|(k, _)| k == name) {
            env.push((name.into(), value.into()));
        }
    }
}

/// What `source bin/activate` does: the environment's `bin` first on PATH.
fn activate(env: &mut Vec<(OsString, OsString)>, venv: &Path) {
    let bin = venv.join("bin");
    for (key, value) in env.iter_mut() {
        if key == "PATH" {
            let mut path = bin.clone().into_os_string();
            path.push(":");
            path.push(&*value);
            *value = path;
        }
    }
    env.push(("VIRTUAL_ENV".into(), venv.as_os_str().to_owned()));
}

/// Where warm sandboxes live, if the workflow keeps them: beside the
/// signing key, hidden from every sandbox, so that no command can reach a
/// host, whatever the repository or the moment.
fn hosts_dir(layout: &Layout, workflow: &Workflow) -> Option<PathBuf> {
    (!workflow.sandbox.keep_warm.is_zero()).then(|| layout.key_dir.join("sandboxes"))
}

/// Ends the warm sandboxes of run `id`, whatever the workflow says now:
/// done when the run leaves the states in which it runs commands.
pub fn end_warm(layout: &Layout, id: &str) -> usize {
    airlock_sandbox::host::end_hosts_of(&layout.key_dir.join("sandboxes"), id)
}

/// Looks up ahead what naming the sandbox of any command of the repository
/// needs ([`airlock_sandbox::ahead`]): done while the run is on its way.
pub fn look_ahead(layout: &Layout, workflow: &Workflow) -> Arc<LookAhead> {
    Arc::new(LookAhead::of(
        &view(layout, workflow).hidden_paths(),
        hosts_dir(layout, workflow).as_deref(),
    ))
}

/// Paths in the worktree matching the brief's `data.forbid_read`. The
/// checkout never writes forbidden files (`git::Git::checkout_without`), so
/// what this finds is what the run made there itself; a directory that
/// cannot be listed is an error, never a skip, since what it holds cannot
/// be told.
fn forbidden_in(cwd: &Path, patterns: &[String]) -> Result<Vec<PathBuf>> {
    if patterns.is_empty() {
        return Ok(Vec::new());
    }
    let globs = Globs::new(patterns);
    let mut found = Vec::new();
    let mut stack = vec![cwd.to_path_buf()];
    let unreadable = |dir: &Path, e: std::io::Error| {
        Error::refused(
            crate::error::Code::SandboxPathUnreadable,
            format!(
                "refusing to run the command: {} cannot be listed",
                dir.display()
            ),
            vec![
                format!("reading the directory failed: {e}"),
                "the brief's `data.forbid_read` paths are looked for in the whole worktree, \
                 and what an unreadable directory holds cannot be told"
                    .into(),
            ],
            format!(
                "make it readable again (`chmod u+rx {}`) or remove it",
                dir.display()
            ),
        )
    };
    while let Some(dir) = stack.pop() {
        let entries = std::fs::read_dir(&dir).map_err(|e| unreadable(&dir, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| unreadable(&dir, e))?;
            let path = entry.path();
            let Ok(rel) = path.strip_prefix(cwd) else {
                continue;
            };
            let rel_text = rel.to_string_lossy();
            if rel_text == ".git" {
                continue;
            }
            if globs.is_match(&rel_text) {
                found.push(path);
            } else if entry.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(path);
            }
        }
    }
    Ok(found)
}

/// The environment of a command in a run: a short fixed list, the names the
/// workflow and lane pass through, and airlock's own variables. Nothing else,
/// so tokens in the caller's environment do not leak into the run.
fn environment(layout: &Layout, run: &Run, pass: &[String]) -> Vec<(OsString, OsString)> {
    const BASE: &[&str] = &[
        "PATH",
        "HOME",
        "USER",
        "LOGNAME",
        "LANG",
        "LC_ALL",
        "TERM",
        "TZ",
        "CARGO_HOME",
        "RUSTUP_HOME",
        "RUSTUP_TOOLCHAIN",
    ];
    let mut env: Vec<(OsString, OsString)> = Vec::new();
    for name in BASE.iter().copied().chain(pass.iter().map(String::as_str)) {
        if let Some(value) = std::env::var_os(name)
            && !env.iter().any(|(k, _)| k == name)
        {
            env.push((name.into(), value));
        }
    }
    if !env.iter().any(|(k, _)| k == "PATH") {
        env.push(("PATH".into(), "/usr/local/bin:/usr/bin:/bin".into()));
    }
    env.push(("TMPDIR".into(), "/tmp".into()));
    env.push(("AIRLOCK_RUN".into(), run.id.clone().into()));
    env.push(("AIRLOCK_WORKTREE".into(), run.worktree.clone().into()));
    // Once a reviewer has rejected or redirected the run: their last words.
    let feedback = crate::layout::feedback_dir(layout, &run.id).join(crate::layout::FEEDBACK_FILE);
    if feedback.is_file() {
        env.push(("AIRLOCK_FEEDBACK".into(), feedback.into_os_string()));
    }
    // If the agent deletes its own .git, git must not find the main repository above.
    env.push((
        "GIT_CEILING_DIRECTORIES".into(),
        layout.run_dir(&run.id).into_os_string(),
    ));
    env
}

/// A command that ran: its outcome, and the connections it made through
/// its egress proxy (none when its network is not a list of hosts).
pub struct Ran {
    pub outcome: Outcome,
    pub connections: Vec<airlock_model::trace::Connection>,
}

/// Runs a command in its sandbox. When the kernel or machine cannot build the
/// full sandbox, refuses, naming what failed, unless the workflow accepts the
/// weaker one. With `egress` (the plan's, for a network that is a list of
/// hosts), the command's only way out is a proxy started for it, and no
/// weaker sandbox is ever taken.
pub fn run(
    workflow: &Workflow,
    spec: &mut CommandSpec,
    egress: Option<&crate::egress::EgressPlan>,
) -> Result<Ran> {
    run_gated(workflow, spec, egress, None)
}

/// [`run`], with the command held back until `gate` lets it start (see
/// [`airlock_sandbox::run_gated`]).
pub fn run_gated(
    workflow: &Workflow,
    spec: &mut CommandSpec,
    egress: Option<&crate::egress::EgressPlan>,
    gate: Option<airlock_sandbox::Gate>,
) -> Result<Ran> {
    let (outcome, connections) = run_gated_pending(workflow, spec, egress, gate)?;
    Ok(Ran {
        outcome,
        connections: connections.wait(),
    })
}

/// [`run_gated`], with the proxy stopped on a thread of its own once the
/// command has ended: its connections come with
/// [`crate::egress::Pending::wait`], and the caller can go on meanwhile.
pub fn run_gated_pending(
    workflow: &Workflow,
    spec: &mut CommandSpec,
    egress: Option<&crate::egress::EgressPlan>,
    gate: Option<airlock_sandbox::Gate>,
) -> Result<(Outcome, crate::egress::Pending)> {
    let Some(plan) = egress else {
        let outcome = run_sandboxed(workflow, spec, None, gate)?;
        return Ok((outcome, crate::egress::Pending::ready(Vec::new())));
    };
    let proxy = crate::egress::start(plan)?;
    let egress = airlock_sandbox::Egress {
        proxy_socket: proxy.socket.clone(),
    };
    let outcome = run_sandboxed(workflow, spec, Some(&egress), gate);
    // Stopped (and its records kept) however the command ended.
    let connections = proxy.finish_aside();
    match outcome {
        Ok(outcome) => Ok((outcome, connections)),
        Err(e) => {
            connections.wait();
            Err(e)
        }
    }
}

fn run_sandboxed(
    workflow: &Workflow,
    spec: &mut CommandSpec,
    egress: Option<&airlock_sandbox::Egress>,
    mut gate: Option<airlock_sandbox::Gate>,
) -> Result<Outcome> {
    // Reborrowed, so that a retry with the weaker sandbox can use it again.
    let first: Option<airlock_sandbox::Gate> = match gate.as_mut() {
        Some(g) => Some(&mut **g),
        None => None,
    };
    let attempt = match egress {
        Some(egress) => airlock_sandbox::run_with_egress(spec, egress, first),
        None => airlock_sandbox::run_gated(spec, first),
    };
    match attempt {
        // The sandbox was built; the command itself could not start in it
        // (a typo, or a program in a place the sandbox does not show).
        Err(SandboxError::Setup { step, error }) if step.starts_with("starting `") => {
            Err(not_runnable(spec, &error))
        }
        Err(SandboxError::Setup { step, error }) if step.starts_with("entering ") => {
            Err(Error::Invalid(format!(
                "{step} in the run's sandbox failed: {error}; \
                 check the name and the path: the sandbox shows the system read-only, the worktree and a private /tmp, \
                 so a program or directory under /tmp, /dev/shm, the main checkout or a hidden path is not there"
            )))
        }
        Err(SandboxError::Setup { step, error })
            if spec.confinement.as_ref().is_some_and(|c| !c.weaker) =>
        {
            // Only a machine that cannot build the full sandbox at all may
            // fall back to the weaker one: one that can, but not this
            // command's, has a reason the weaker sandbox would only hide
            // (and the weaker sandbox hides nothing and shares the network).
            let machine = spec.confinement.as_ref().and_then(machine_lacks);
            match machine {
                Some(missing) => {
                    // The weaker sandbox shares the host's network: a list
                    // of hosts cannot be kept in it.
                    if workflow.sandbox.accept_weaker && egress.is_none() {
                        if let Some(c) = spec.confinement.as_mut() {
                            c.weaker = true;
                        }
                        return Ok(airlock_sandbox::run_gated(spec, gate)?);
                    }
                    if egress.is_some() {
                        return Err(Error::refused(
                            crate::error::Code::SandboxUnsupported,
                            "refusing to run the command without its sandbox",
                            vec![
                                format!("{step} failed: {error}"),
                                format!("`airlock sandbox doctor` finds this machine cannot build the full sandbox: {missing}"),
                                "the run's network is a list of hosts, which only the full sandbox's own network namespace keeps: the weaker sandbox shares the host's network".into(),
                            ],
                            "run it on a machine that allows user namespaces (`airlock sandbox doctor` says what is missing); `accept_weaker` does not apply to a list of hosts",
                        ));
                    }
                    Err(Error::refused(
                        crate::error::Code::SandboxUnsupported,
                        "refusing to run the command without its sandbox",
                        vec![
                            format!("{step} failed: {error}"),
                            format!("`airlock sandbox doctor` finds this machine cannot build the full sandbox: {missing}"),
                            "without namespaces these protections are missing: secrets hidden, no network, whole process tree killed".into(),
                        ],
                        "`airlock sandbox doctor` shows what this machine allows; to run with Landlock, seccomp and no privileges only, set `accept_weaker = true` under [sandbox] in .airlock/workflow.toml",
                    ))
                }
                None => Err(Error::refused(
                    crate::error::Code::SandboxNotBuilt,
                    "refusing to run the command: its sandbox could not be built",
                    vec![
                        format!("{step} failed: {error}"),
                        "this machine builds the full sandbox (`airlock sandbox doctor` finds every protection working), so the cause is this run's sandbox: a path it hides, shows or grants".into(),
                    ],
                    "check the paths of [sandbox] and [lanes.NAME] in .airlock/workflow.toml (`airlock sandbox doctor` in the repository lists what is hidden, shown and writable); a weaker sandbox is no way around this",
                )),
            }
        }
        other => Ok(other?),
    }
}

/// A program that could not be started in the sandbox: 127 when it is not
/// there, 126 when it is but cannot be run, as shells answer.
fn not_runnable(spec: &CommandSpec, error: &str) -> Error {
    let program = spec
        .argv
        .first()
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default();
    let missing = error.ends_with(&format!("(os error {})", libc_enoent()));
    let (code, what) = if missing {
        (127, "not found")
    } else {
        (126, "cannot be run")
    };
    let under_tmp = Path::new(&program).is_absolute()
        && (Path::new(&program).starts_with("/tmp") || Path::new(&program).starts_with("/dev/shm"));
    let hint = if under_tmp {
        format!(
            "the sandbox has a private /tmp (and /dev/shm): the host's {program} is not there; \
             put the file in the run's worktree ({}) and run it from there",
            spec.cwd.display()
        )
    } else if missing && program.contains('/') {
        "check the path: the sandbox shows the system read-only, the run's worktree and a private /tmp; \
         the main checkout, the home (but its toolchains) and hidden paths are not there (`airlock sandbox doctor` lists them)"
            .to_string()
    } else if missing {
        "check the name: it is looked up on the command's PATH, in the sandbox, which shows the system, \
         the toolchains of the home and the run's worktree (`airlock sandbox doctor` lists what is hidden)"
            .to_string()
    } else {
        format!(
            "make it executable (`chmod +x {program}`) or run it through its interpreter (`sh {program}`)"
        )
    };
    Error::NotRunnable {
        message: format!("`{program}` {what} in the run's sandbox: {error}"),
        hint,
        code,
    }
}

/// ENOENT, as `std::io::Error` prints it.
fn libc_enoent() -> i32 {
    std::io::Error::from(std::io::ErrorKind::NotFound)
        .raw_os_error()
        .unwrap_or(2)
}

/// The hint of a failed command that tried the network while it is off.
pub fn network_hint(
    trace: &airlock_model::trace::Trace,
    network: &NetworkDecision,
    lane: &str,
) -> Option<String> {
    if !matches!(network.network, Network::Off)
        || trace.exit.success()
        || !trace
            .denials
            .iter()
            .any(|line| NETWORK_SIGNS.iter().any(|s| line.contains(s)))
    {
        return None;
    }
    Some(format!(
        "the command failed after trying the network, which is off for this run ({}); \
         to grant it, set `network = \"on\"` under [lanes.{lane}] in .airlock/workflow.toml, \
         or a list of the hosts it needs, such as `network = [\"pypi.org\"]` (a brief may only \
         narrow its lane's network); package tools run offline meanwhile, from the caches in the home",
        network.reason
    ))
}

/// What a command's stderr says when it tried the network and found none.
const NETWORK_SIGNS: &[&str] = &[
    "Network is unreachable",
    "Temporary failure in name resolution",
    "Name or service not known",
    "No address associated with hostname",
    "Could not resolve host",
    "failed to lookup address information",
    "getaddrinfo",
    "EAI_AGAIN",
    "ENOTFOUND",
];

/// What this machine lacks for the full sandbox, as `sandbox doctor` finds
/// it by trying a sandbox of its own (in a scratch directory beside the
/// command's sandbox root); `None` when it builds it.
fn machine_lacks(c: &Confinement) -> Option<String> {
    let base = c.root.parent().unwrap_or(&c.root);
    let scratch = match tempfile::Builder::new()
        .prefix("doctor-")
        .tempdir_in(base)
        .or_else(|_| tempfile::tempdir())
    {
        Ok(dir) => dir,
        Err(e) => return Some(format!("it could not be tried: {e}")),
    };
    let report = airlock_sandbox::doctor::diagnose(&c.init_program, scratch.path());
    (report.backend != "namespaces").then(|| {
        report
            .problem
            .unwrap_or_else(|| format!("its backend is `{}`", report.backend))
    })
}

/// A memory or process limit the command ran into, recognised from what it
/// printed (rlimits leave no other trace): `None` when nothing says so.
pub fn limit_from_output(stderr_log: &Path, limits: &Limits, failed: bool) -> Option<String> {
    if !failed {
        return None;
    }
    let text = {
        use std::io::Read;
        let mut buf = Vec::new();
        let file = std::fs::File::open(stderr_log).ok()?;
        file.take(1 << 20).read_to_end(&mut buf).ok()?;
        String::from_utf8_lossy(&buf).into_owned()
    };
    if let Some(bytes) = limits.memory_bytes {
        const SIGNS: &[&str] = &[
            "MemoryError",
            "Cannot allocate memory",
            "memory allocation of",
            "out of memory",
            "std::bad_alloc",
        ];
        if SIGNS.iter().any(|s| text.contains(s)) {
            return Some(format!(
                "memory limit of {bytes} bytes (the command reported an allocation failure)"
            ));
        }
    }
    if let Some(n) = limits.processes
        && (text.contains("fork: Resource temporarily unavailable")
            || text.contains("Cannot fork")
            || text.contains("can't fork"))
    {
        return Some(format!("process limit of {n} (the command could not fork)"));
    }
    if let Some(bytes) = limits.file_size_bytes
        && (text.contains("File too large") || text.contains("File size limit exceeded"))
    {
        return Some(airlock_sandbox::file_size_limit(bytes));
    }
    None
}

/// Lines of a command's stderr that report a denied operation: the evidence
/// of what the sandbox stopped, as precisely as the command itself said it.
pub fn denials(stderr_log: &Path) -> Vec<String> {
    const SIGNS: &[&str] = &[
        "Read-only file system",
        "Permission denied",
        "Operation not permitted",
        "Network is unreachable",
        "Connection refused",
        "Temporary failure in name resolution",
        "Resource temporarily unavailable",
    ];
    // A network sign is a denial too, when the network is off.
    let signs = SIGNS.iter().chain(NETWORK_SIGNS);
    let Ok(file) = std::fs::File::open(stderr_log) else {
        return Vec::new();
    };
    use std::io::{BufRead, Read};
    let reader = std::io::BufReader::new(file.take(1 << 20));
    let mut out = Vec::new();
    for line in reader.split(b'\n').map_while(|l| l.ok()) {
        let line = String::from_utf8_lossy(&line);
        if signs.clone().any(|s| line.contains(s)) {
            out.push(line.chars().take(300).collect());
            if out.len() == 20 {
                break;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::user_identity;

    #[test]
    fn the_identity_is_read_from_user_sections_only() {
        let text = "[core]\n\tname = not-me\n[user]\n\tname = \"Ann \\\"A\\\" Human\" # comment\n\
                    [user \"sub\"]\n\temail = sub@example.invalid\n[User]\n\tEmail = ann@example.invalid ; c\n\
                    [include]\n\tpath = ~/.gitconfig.local\n";
        assert_eq!(
            user_identity(text),
            (
                Some("Ann \"A\" Human".to_string()),
                Some("ann@example.invalid".to_string())
            )
        );
        assert_eq!(
            user_identity("[user] name = Bo\n"),
            (Some("Bo".to_string()), None)
        );
        assert_eq!(
            user_identity("name = x\n[credential]\nhelper = store\n"),
            (None, None)
        );
    }
}
