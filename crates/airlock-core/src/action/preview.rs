//! What a reviewer reads before approving an action, and its rehearsal: the
//! closest thing to performing it that has no effect.

use std::ffi::OsString;

use airlock_sandbox::Echo;

use crate::Airlock;
pub use airlock_model::action::mask::{is_sensitive_header, mask, masked_spec};

use crate::action::{ActionSpec, Body, Rehearsal, parse, scope};
use crate::brief::Brief;
use crate::error::Result;
use crate::run::Run;
use crate::workflow::Workflow;

/// Quotes an argument for display the way a POSIX shell would read it.
pub fn shell_quote(arg: &str) -> String {
    if !arg.is_empty()
        && arg
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c))
    {
        arg.to_string()
    } else {
        format!("'{}'", arg.replace('\'', "'\\''"))
    }
}

/// Control characters shown escaped: a preview is read on a terminal. The
/// form is the CLI's (`\x1b`, `\u{85}`), which also escapes bidirectional
/// and invisible characters wherever it shows a preview.
fn visible(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '\n' | '\t' => c.to_string(),
            c if (c as u32) < 0x80 && c.is_control() => format!("\\x{:02x}", c as u32),
            c if c.is_control() => format!("\\u{{{:x}}}", c as u32),
            c => c.to_string(),
        })
        .collect()
}

/// The preview of an action. `files` are the paths the run changes (for a
/// push, whose destination URLs are pinned in the spec).
pub fn render(
    spec: &ActionSpec,
    role: crate::action::Role,
    workflow: &Workflow,
    files: &[String],
) -> String {
    let mut out = String::new();
    match &spec.body {
        Body::Http(h) => {
            out.push_str(&format!("{} {}\n", h.method, visible(&h.url)));
            for (name, value) in &h.headers {
                let shown = if is_sensitive_header(name) {
                    mask(value)
                } else {
                    value.clone()
                };
                out.push_str(&format!("{name}: {}\n", visible(&shown)));
            }
            out.push_str("Idempotency-Key: (set by airlock when applied)\n");
            if let Some(body) = &h.body {
                out.push('\n');
                out.push_str(&visible(body));
                if !body.ends_with('\n') {
                    out.push('\n');
                }
            }
            let refs: Vec<String> = h
                .headers
                .iter()
                .flat_map(|(_, v)| parse::env_refs(v))
                .collect();
            if !refs.is_empty() {
                out.push_str(&format!(
                    "\n(${{…}} values come from airlock's environment when applied: {})\n",
                    refs.join(", ")
                ));
            }
        }
        Body::Email(e) => {
            out.push_str(&format!("From: {}\n", visible(&e.from)));
            if !e.to.is_empty() {
                out.push_str(&format!("To: {}\n", visible(&e.to.join(", "))));
            }
            if !e.cc.is_empty() {
                out.push_str(&format!("Cc: {}\n", visible(&e.cc.join(", "))));
            }
            out.push_str(&format!("Subject: {}\n", visible(&e.subject)));
            out.push_str("Message-ID: (derived from the idempotency key when applied)\n");
            for a in &e.attachments {
                out.push_str(&format!(
                    "Attachment: {} ({} bytes, sha256 {})\n",
                    visible(&a.path),
                    a.size,
                    &a.sha256[..a.sha256.len().min(16)]
                ));
            }
            out.push('\n');
            out.push_str(&visible(&e.body));
            if !e.body.ends_with('\n') {
                out.push('\n');
            }
            out.push_str(&match &workflow.actions.smtp {
                Some(s) => format!(
                    "\n(sent through {}:{} with {})\n",
                    s.host,
                    s.port,
                    match s.tls {
                        crate::action::settings::Tls::Starttls => "STARTTLS",
                        crate::action::settings::Tls::Tls => "TLS",
                        crate::action::settings::Tls::None => "no encryption (loopback)",
                    }
                ),
                None => {
                    "\n(no [actions.smtp] server is configured: it cannot be sent yet)\n".into()
                }
            });
        }
        Body::GitPush(p) => {
            out.push_str(&format!(
                "git push {} <promoted commit>:{}\n",
                p.remote, p.dst
            ));
            match p.urls.as_slice() {
                [] => out.push_str(&format!("remote {}: (not configured)\n", p.remote)),
                [url] => out.push_str(&format!("pushes to: {}\n", visible(url))),
                urls => {
                    out.push_str(&format!("pushes to each of {} URLs:\n", urls.len()));
                    for url in urls {
                        out.push_str(&format!("  {}\n", visible(url)));
                    }
                }
            }
            out.push_str(&format!(
                "(where git sends `git push {}` now, `pushurl`, `insteadOf` and `pushInsteadOf` applied; airlock pushes to exactly this and refuses if it changes)\n",
                p.remote
            ));
            out.push_str(match role {
                crate::action::Role::Apply => {
                    "pushes the target branch as promotion leaves it: its history plus this run's change\n"
                }
                crate::action::Role::Undo => {
                    "pushes the target branch as rollback leaves it: the revert of this run, on top of whatever was promoted after it\n"
                }
            });
            out.push_str(&format!("files this run changes ({}):\n", files.len()));
            for f in files.iter().take(50) {
                out.push_str(&format!("  {}\n", visible(f)));
            }
            if files.len() > 50 {
                out.push_str(&format!("  … and {} more\n", files.len() - 50));
            }
        }
        Body::Command(c) => {
            out.push_str(&format!(
                "$ {}\n",
                visible(
                    &c.argv
                        .iter()
                        .map(|a| shell_quote(a))
                        .collect::<Vec<_>>()
                        .join(" ")
                )
            ));
            out.push_str(&format!(
                "in {} of a clean checkout of the promoted commit, not sandboxed\n",
                visible(&c.cwd)
            ));
            out.push_str(&format!(
                "environment: the base set{}\n",
                if c.env.is_empty() {
                    String::new()
                } else {
                    format!(" plus {}", c.env.join(", "))
                }
            ));
            out.push_str(&format!("time limit: {} s\n", c.timeout_secs));
        }
        Body::Mcp(m) => {
            out.push_str(&format!(
                "MCP tool call: server {}, tool {}\n",
                visible(&m.server),
                visible(&m.tool)
            ));
            out.push_str(&format!(
                "server started as: {}\n",
                visible(
                    &m.command
                        .iter()
                        .map(|a| shell_quote(a))
                        .collect::<Vec<_>>()
                        .join(" ")
                )
            ));
            out.push_str(&format!(
                "tool definition: sha256 {}\n",
                &m.definition[..m.definition.len().min(16)]
            ));
            out.push_str("arguments:\n");
            let args = serde_json::to_string_pretty(&m.arguments).unwrap_or_default();
            for line in args.lines() {
                out.push_str(&format!("  {}\n", visible(line)));
            }
            out.push_str("(called once at promotion, outside the sandbox, in the main checkout)\n");
        }
    }
    let needs = scope::derived(spec);
    out.push_str(&format!(
        "scopes: {}{}\n",
        spec.scopes.join(", "),
        if needs.is_empty() {
            String::new()
        } else {
            format!(" (needed: {})", needs.join(", "))
        }
    ));
    out
}

/// Rehearses an action. `commit` is what a push would send now (the
/// submitted head, or a snapshot commit before submit).
pub fn rehearse(
    al: &mut Airlock,
    run: &Run,
    workflow: &Workflow,
    brief: &Brief,
    spec: &ActionSpec,
    commit: &str,
) -> Result<Rehearsal> {
    Ok(match &spec.body {
        Body::Http(h) => {
            let fixture = workflow
                .actions
                .fixtures
                .iter()
                .find(|f| f.method == h.method && scope::matches(&f.url, &h.url));
            match fixture {
                Some(f) => {
                    let mut detail = format!("HTTP {}\n", f.status);
                    for (k, v) in &f.headers {
                        detail.push_str(&format!("{k}: {v}\n"));
                    }
                    if !f.body.is_empty() {
                        detail.push('\n');
                        detail.push_str(&f.body);
                    }
                    Rehearsal {
                        status: if (200..300).contains(&f.status) {
                            "ok".into()
                        } else {
                            "failed".into()
                        },
                        summary: format!(
                            "the recorded fixture for {} {} answers {}",
                            f.method, f.url, f.status
                        ),
                        detail,
                    }
                }
                None => Rehearsal {
                    status: "unavailable".into(),
                    summary: format!(
                        "no recorded fixture matches {} {}; add one under [[actions.fixtures]] to see what would come back",
                        h.method, h.url
                    ),
                    detail: String::new(),
                },
            }
        }
        Body::Email(e) => {
            let mut problems = Vec::new();
            let size = e.subject.len()
                + e.body.len()
                + e.attachments
                    .iter()
                    .map(|a| a.size as usize * 4 / 3)
                    .sum::<usize>();
            if size as u64 > workflow.actions.max_email_bytes {
                problems.push(format!(
                    "the message is about {size} bytes, over max_email_bytes ({})",
                    workflow.actions.max_email_bytes
                ));
            }
            if workflow.actions.smtp.is_none() {
                problems.push("no [actions.smtp] server is configured".into());
            }
            let recipients = e.to.len() + e.cc.len();
            if problems.is_empty() {
                Rehearsal {
                    status: "ok".into(),
                    summary: format!(
                        "{recipients} recipient(s), addresses well-formed, about {size} bytes"
                    ),
                    detail: String::new(),
                }
            } else {
                Rehearsal {
                    status: "failed".into(),
                    summary: problems.join("; "),
                    detail: String::new(),
                }
            }
        }
        Body::GitPush(p) => {
            let refspec = format!("{commit}:{}", p.dst);
            let mut ok = !p.urls.is_empty();
            let mut detail = String::new();
            for url in &p.urls {
                let out = pinned_git(&al.layout, url).and_then(|mut git| {
                    git.args([
                        "push",
                        "--dry-run",
                        "--porcelain",
                        "--no-verify",
                        "--",
                        url,
                        &refspec,
                    ])
                    .output()
                    .map_err(|e| format!("cannot run git: {e}"))
                });
                match out {
                    Ok(o) => {
                        ok &= o.status.success();
                        detail.push_str(&String::from_utf8_lossy(&o.stdout));
                        detail.push_str(&String::from_utf8_lossy(&o.stderr));
                    }
                    Err(e) => {
                        ok = false;
                        detail.push_str(&e);
                        detail.push('\n');
                    }
                }
            }
            Rehearsal {
                status: if ok { "ok" } else { "failed" }.into(),
                summary: if ok {
                    format!(
                        "`git push --dry-run` to {} {} would be accepted",
                        p.remote, p.dst
                    )
                } else {
                    format!("`git push --dry-run` to {} {} fails", p.remote, p.dst)
                },
                detail: visible(detail.trim()),
            }
        }
        // The proxy rehearses a staged call itself, through the session it
        // has open, when the workflow names a read-only counterpart.
        Body::Mcp(_) => Rehearsal {
            status: "unavailable".into(),
            summary:
                "no read-only counterpart named: `rehearse = \"TOOL\"` in its [[mcp.tools]] rule"
                    .into(),
            detail: String::new(),
        },
        Body::Command(c) => match &c.rehearse {
            None => Rehearsal {
                status: "unavailable".into(),
                summary: "no `rehearse` command declared".into(),
                detail: String::new(),
            },
            Some(argv) => {
                let trace =
                    rehearse_command(al, run, workflow, brief, spec, argv, c.timeout_secs, commit)?;
                Rehearsal {
                    status: if trace.exit.success() { "ok" } else { "failed" }.into(),
                    summary: format!(
                        "`{}` in the run's sandbox, on a scratch checkout: {} (trace {})",
                        argv.iter()
                            .map(|s| shell_quote(s))
                            .collect::<Vec<_>>()
                            .join(" "),
                        trace.exit.description,
                        trace.n
                    ),
                    detail: String::new(),
                }
            }
        },
    })
}

/// git as the user runs it (their configuration and credentials, for a
/// remote that needs them), on the main repository, without inherited
/// `GIT_*` variables that could point it elsewhere.
pub fn user_git(layout: &crate::layout::Layout) -> std::process::Command {
    let mut cmd = std::process::Command::new("git");
    for (key, _) in std::env::vars_os() {
        let k = key.to_string_lossy();
        if k.starts_with("GIT_")
            && !matches!(
                k.as_ref(),
                "GIT_CONFIG_GLOBAL" | "GIT_CONFIG_NOSYSTEM" | "GIT_SSH_COMMAND" | "GIT_ASKPASS"
            )
        {
            cmd.env_remove(&key);
        }
    }
    cmd.arg("--git-dir").arg(&layout.git_dir);
    cmd.stdin(std::process::Stdio::null());
    cmd
}

/// The user's git set to talk to exactly `url`: the push and the question
/// of where a ref points go to the URL the reviewer approved, with the
/// user's credentials and transport settings but no URL rewriting. git
/// rewrites a URL given on the command line too, by the longest matching
/// `insteadOf`/`pushInsteadOf` prefix, so a rule mapping the URL to itself
/// is added (no prefix is longer than the whole URL); what could still
/// redirect it is refused: another rule for exactly this URL (a tie goes
/// to the rule read first), or a remote whose name is the URL (git would
/// use that remote's configuration).
pub fn pinned_git(
    layout: &crate::layout::Layout,
    url: &str,
) -> std::result::Result<std::process::Command, String> {
    let config = [
        (format!("url.{url}.insteadOf"), url),
        (format!("url.{url}.pushInsteadOf"), url),
    ];
    let with_config = || {
        let mut cmd = user_git(layout);
        // The environment form takes any key and value as they are;
        // `-c` would split a URL that holds `=`.
        cmd.env("GIT_CONFIG_COUNT", config.len().to_string());
        for (i, (key, value)) in config.iter().enumerate() {
            cmd.env(format!("GIT_CONFIG_KEY_{i}"), key)
                .env(format!("GIT_CONFIG_VALUE_{i}"), value);
        }
        cmd
    };
    let out = with_config()
        .args(["config", "--null", "--list"])
        .output()
        .map_err(|e| format!("cannot run git: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "cannot read the git configuration: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let listed = String::from_utf8_lossy(&out.stdout);
    let own_remote = format!("remote.{url}.");
    for entry in listed.split('\0').filter(|e| !e.is_empty()) {
        let (key, value) = entry.split_once('\n').unwrap_or((entry, ""));
        let lower = key.to_ascii_lowercase();
        let rewrite = key
            .strip_prefix("url.")
            .filter(|_| lower.ends_with(".insteadof") || lower.ends_with(".pushinsteadof"))
            .and_then(|rest| rest.rsplit_once('.'))
            .map(|(base, _)| base);
        if let Some(base) = rewrite
            && value == url
            && base != url
        {
            return Err(format!(
                "the git configuration rewrites {} to {} (`{}`)",
                url.escape_debug(),
                base.escape_debug(),
                key.escape_debug()
            ));
        }
        if key.starts_with(&own_remote) {
            return Err(format!(
                "the git configuration has a remote named {} (`{}`), which git would use instead of the URL",
                url.escape_debug(),
                key.escape_debug()
            ));
        }
    }
    // A legacy remote file of that name would be read the same way.
    if !url.contains('/') && !url.is_empty() && url != "." && url != ".." {
        for dir in ["remotes", "branches"] {
            if layout.git_dir.join(dir).join(url).exists() {
                return Err(format!(
                    "{} names a remote file in {}, which git would use instead of the URL",
                    url.escape_debug(),
                    layout.git_dir.join(dir).display()
                ));
            }
        }
    }
    Ok(with_config())
}

/// Runs a command's `rehearse` argv in the run's sandbox on a scratch
/// checkout of `commit`, so that whatever it writes never reaches the
/// worktree (a submitted worktree must stay as it was submitted). The
/// command is traced like any other of the run.
#[allow(clippy::too_many_arguments)]
fn rehearse_command(
    al: &mut Airlock,
    run: &Run,
    workflow: &Workflow,
    brief: &Brief,
    spec: &ActionSpec,
    argv: &[String],
    timeout_secs: u64,
    commit: &str,
) -> Result<crate::exec::Trace> {
    use crate::error::Error;
    use crate::exec::{StreamRecord, Trace};
    // A rehearsal runs the agent's argv in the run's sandbox: a command like
    // any other, so only a lane that grants `exec` may have one.
    crate::lane_policy::require(
        workflow,
        run,
        crate::lane_policy::Capability::Exec,
        "propose",
    )?;
    let base = al.layout.run_dir(&run.id).join("rehearse");
    let scratch = base.join(&spec.name);
    let index = base.join(format!("{}.index", spec.name));
    let logs = al.layout.logs_dir(&run.id);
    std::fs::create_dir_all(&logs).map_err(|source| Error::Write {
        path: logs.clone(),
        source,
    })?;
    al.layout
        .git()
        .scratch_checkout_without(&scratch, &index, commit, &brief.forbid_read)?;
    let plan = crate::confinement::plan(&al.site(), run, workflow, brief, &scratch)?;
    let log_name = format!("rehearse-{}-{}", spec.name, crate::layout::unique_suffix());
    let mut command = airlock_sandbox::CommandSpec {
        argv: argv.iter().map(OsString::from).collect(),
        cwd: scratch.clone(),
        env: plan.env,
        timeout: Some(std::time::Duration::from_secs(timeout_secs)),
        stdout_path: logs.join(format!("{log_name}.stdout")),
        stderr_path: logs.join(format!("{log_name}.stderr")),
        echo: Echo::None,
        input: airlock_sandbox::Input::Null,
        confinement: Some(plan.confinement),
        limits: plan.limits,
    };
    let started = crate::run::now();
    let ran = crate::confinement::run(workflow, &mut command, plan.egress.as_ref());
    let _ = std::fs::remove_dir_all(&scratch);
    let _ = std::fs::remove_file(&index);
    let crate::confinement::Ran {
        outcome,
        connections,
    } = ran?;
    let mut trace = Trace {
        n: 0,
        round: run.round,
        origin: format!("rehearse:{}", spec.name),
        argv: argv.to_vec(),
        cwd: scratch.display().to_string(),
        lane: run.lane.clone(),
        exit: crate::exec::exit_record(&outcome.exit),
        duration_ms: outcome.duration_ms,
        stdout: StreamRecord {
            sha256: outcome.stdout.sha256.clone(),
            size: outcome.stdout.size,
            log: command.stdout_path.clone(),
        },
        stderr: StreamRecord {
            sha256: outcome.stderr.sha256.clone(),
            size: outcome.stderr.size,
            log: command.stderr_path.clone(),
        },
        files_changed: Vec::new(),
        started,
        confinement: outcome.confinement.clone(),
        network: plan.network.allowed(),
        limit_hit: outcome.limit_hit.clone(),
        denials: crate::confinement::denials(&command.stderr_path),
        hint: crate::egress::refused_hint(&connections, &run.lane),
        egress: plan.network.hosts().map(crate::egress::entries),
        connections,
    };
    crate::exec::share_logs(&al.layout, workflow, &mut trace);
    al.store.add_trace(&run.id, &mut trace)?;
    Ok(trace)
}
