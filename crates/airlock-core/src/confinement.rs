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

/// Secrets in the home directory that no command of a run may read.
pub const HOME_SECRETS: &[&str] = &[
    ".ssh",
    ".aws",
    ".gnupg",
    ".config/gh",
    ".netrc",
    ".docker/config.json",
    ".git-credentials",
    ".config/gcloud",
    ".azure",
    ".kube",
    ".npmrc",
    ".pypirc",
    ".cargo/credentials.toml",
    ".cargo/credentials",
];

/// Whether a run's commands reach the host network, and why.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct NetworkDecision {
    pub allowed: bool,
    pub reason: String,
}

/// The one place the network is decided: a brief can deny it; the brief,
/// the run's lane or the whole workflow can grant it; otherwise it is off.
pub fn network(workflow: &Workflow, brief: &Brief, lane: &str) -> NetworkDecision {
    let lane_grant = workflow
        .lanes
        .iter()
        .find(|l| l.name == lane)
        .and_then(|l| l.network);
    let (allowed, reason) = match (brief.network, lane_grant, workflow.sandbox.network) {
        (Some(false), _, _) => (false, "the brief sets network = \"off\"".to_string()),
        (Some(true), _, _) => (true, "the brief sets network = \"on\"".to_string()),
        (_, Some(true), _) => (true, format!("lane `{lane}` grants it")),
        (_, Some(false), _) => (false, format!("lane `{lane}` denies it")),
        (_, _, true) => (
            true,
            "[sandbox] network = \"on\" in the workflow".to_string(),
        ),
        _ => (false, "no lane, brief or workflow grants it".to_string()),
    };
    NetworkDecision { allowed, reason }
}

/// A command's sandbox and environment, ready to run.
pub struct Plan {
    pub confinement: Confinement,
    pub limits: Limits,
    pub env: Vec<(OsString, OsString)>,
    pub network: NetworkDecision,
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
    for dir in [&tmp, &root] {
        std::fs::create_dir_all(dir).map_err(|source| Error::Write {
            path: dir.clone(),
            source,
        })?;
    }
    let lane = workflow.lanes.iter().find(|l| l.name == run.lane);

    let mut hidden = hidden_by_workflow(layout, workflow);
    hidden.extend(forbidden_in(cwd, &brief.forbid_read)?);

    let mut writable = vec![
        (cwd.to_path_buf(), cwd.to_path_buf()),
        (tmp, PathBuf::from("/tmp")),
    ];
    for granted in workflow
        .sandbox
        .write
        .iter()
        .chain(lane.map(|l| l.write.iter()).into_iter().flatten())
    {
        if let Some(path) = expand(granted).filter(|p| p.exists()) {
            writable.push((path.clone(), path));
        }
    }
    // The lane repository borrows the main objects: readable, never writable.
    // A lane whose brief forbids reading paths has objects of its own
    // without them (see `start`): the main object store stays hidden.
    let read_only = if brief.forbid_read.is_empty() {
        vec![(layout.objects_dir.clone(), layout.objects_dir.clone())]
    } else {
        Vec::new()
    };

    let network = network(workflow, brief, &run.lane);
    let mut pass: Vec<String> = workflow.policy.pass_env.clone();
    if let Some(lane) = lane {
        pass.extend(lane.pass_env.iter().cloned());
    }
    Ok(Plan {
        confinement: Confinement {
            init_program: site.init_program.to_path_buf(),
            writable,
            read_only,
            hidden,
            network: network.allowed,
            root,
            weaker: false,
            host: hosts_dir(layout, workflow).map(|dir| HostSettings {
                dir,
                idle: workflow.sandbox.keep_warm,
            }),
            ahead: None,
        },
        limits: Limits {
            output_bytes: Some(workflow.sandbox.max_output),
            memory_bytes: workflow.sandbox.max_memory,
            processes: Some(workflow.sandbox.max_processes),
        },
        env: environment(layout, run, &pass),
        network,
    })
}

/// What every command of the repository has hidden, whatever its run:
/// the main checkout (uncommitted work, .env files, its .git), the state
/// (ledger, other runs, logs), the signing key, the home's secrets, and what
/// the workflow adds.
fn hidden_by_workflow(layout: &Layout, workflow: &Workflow) -> Vec<PathBuf> {
    let mut hidden = vec![
        layout.root.clone(),
        layout.state.clone(),
        layout.key_dir.clone(),
    ];
    if let Some(home) = home() {
        hidden.extend(HOME_SECRETS.iter().map(|s| home.join(s)));
    }
    hidden.extend(workflow.sandbox.hide.iter().filter_map(|p| expand(p)));
    hidden
}

/// Where warm sandboxes live, if the workflow keeps them: beside the
/// signing key, hidden from every sandbox, so that no command can reach a
/// host, whatever the repository or the moment.
fn hosts_dir(layout: &Layout, workflow: &Workflow) -> Option<PathBuf> {
    (!workflow.sandbox.keep_warm.is_zero()).then(|| layout.key_dir.join("sandboxes"))
}

/// Looks up ahead what naming the sandbox of any command of the repository
/// needs ([`airlock_sandbox::ahead`]): done while the run is on its way.
pub fn look_ahead(layout: &Layout, workflow: &Workflow) -> Arc<LookAhead> {
    Arc::new(LookAhead::of(
        &hidden_by_workflow(layout, workflow),
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
    // If the agent deletes its own .git, git must not find the main repository above.
    env.push((
        "GIT_CEILING_DIRECTORIES".into(),
        layout.run_dir(&run.id).into_os_string(),
    ));
    env
}

/// Runs a command in its sandbox. When the kernel or machine cannot build the
/// full sandbox, refuses, naming what failed, unless the workflow accepts the
/// weaker one.
pub fn run(workflow: &Workflow, spec: &mut CommandSpec) -> Result<Outcome> {
    run_gated(workflow, spec, None)
}

/// [`run`], with the command held back until `gate` lets it start (see
/// [`airlock_sandbox::run_gated`]).
pub fn run_gated(
    workflow: &Workflow,
    spec: &mut CommandSpec,
    mut gate: Option<airlock_sandbox::Gate>,
) -> Result<Outcome> {
    // Reborrowed, so that a retry with the weaker sandbox can use it again.
    let first: Option<airlock_sandbox::Gate> = match gate.as_mut() {
        Some(g) => Some(&mut **g),
        None => None,
    };
    match airlock_sandbox::run_gated(spec, first) {
        // The sandbox was built; the command itself could not start in it
        // (a typo, or a program in a place the sandbox does not show).
        Err(SandboxError::Setup { step, error })
            if step.starts_with("starting `") || step.starts_with("entering ") =>
        {
            Err(Error::Invalid(format!(
                "{step} in the run's sandbox failed: {error}; \
                 check the name and the path: the sandbox shows the system read-only, the worktree and a private /tmp, \
                 so a program or directory under /tmp, /dev/shm, the main checkout or a hidden path is not there"
            )))
        }
        Err(SandboxError::Setup { step, error })
            if spec.confinement.as_ref().is_some_and(|c| !c.weaker) =>
        {
            if workflow.sandbox.accept_weaker {
                if let Some(c) = spec.confinement.as_mut() {
                    c.weaker = true;
                }
                return Ok(airlock_sandbox::run_gated(spec, gate)?);
            }
            Err(Error::refused(
                "refusing to run the command without its sandbox",
                vec![
                    format!("{step} failed: {error}"),
                    "without namespaces these protections are missing: secrets hidden, no network, whole process tree killed".into(),
                ],
                "`airlock sandbox doctor` shows what this machine allows; to run with Landlock, seccomp and no privileges only, set `accept_weaker = true` under [sandbox] in .airlock/workflow.toml",
            ))
        }
        other => Ok(other?),
    }
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
    let Ok(file) = std::fs::File::open(stderr_log) else {
        return Vec::new();
    };
    use std::io::{BufRead, Read};
    let reader = std::io::BufReader::new(file.take(1 << 20));
    let mut out = Vec::new();
    for line in reader.split(b'\n').map_while(|l| l.ok()) {
        let line = String::from_utf8_lossy(&line);
        if SIGNS.iter().any(|s| line.contains(s)) {
            out.push(line.chars().take(300).collect());
            if out.len() == 20 {
                break;
            }
        }
    }
    out
}
