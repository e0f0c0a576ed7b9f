//! Performing approved actions live, exactly once.
//!
//! Each live execution is bracketed by two ledger events, written in the
//! same transaction as the action's state: `action-started` before anything
//! leaves the machine and `action-finished` after. The caller holds the
//! promotion lock, so an action found `started` was left by a process that
//! died between the two, and what happens next depends on what the kind can
//! prove:
//!
//! - `http` is sent again with the same `Idempotency-Key`;
//! - `git-push` asks the remote: if the ref already holds the commit, the
//!   push happened and is recorded as done; otherwise it is pushed;
//! - `email` and `command` cannot be asked, so they become `outcome unknown`
//!   and wait for a human (`airlock resolve`).

use std::ffi::OsString;
use std::time::Duration;

use serde::Serialize;
use serde_json::json;

use airlock_sandbox::{CommandSpec, Echo, Limits};

use crate::Airlock;
use crate::action::plan::{self, attachment_blob, role_str, save};
use crate::action::{Action, ActionState, Attempt, Body, Role, parse, preview};
use crate::error::{Error, Result};
use crate::layout::sha256_hex;
use crate::run::{Run, now};

pub use airlock_model::action::effects::{
    Effects, Failure, HttpRequest, HttpResponse, OutgoingEmail,
};

#[derive(Debug, Clone, Serialize)]
pub struct ActionOutcome {
    pub name: String,
    pub role: Role,
    pub kind: String,
    pub state: ActionState,
    pub summary: String,
    /// This attempt followed one that was interrupted.
    pub recovered: bool,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct ApplyReport {
    pub actions: Vec<ActionOutcome>,
    /// Every action of the role is done or skipped.
    pub complete: bool,
    /// Why applying stopped, and what to do.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped: Option<String>,
    /// Production actions held while the run soaks in staging (`soak`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub held: Vec<String>,
}

/// Applies the run's actions of `role` in order (compensations in reverse).
/// `commit` is what a push sends: the merge at promotion, the revert at
/// rollback. `round` is the submitted round (it keys idempotency).
pub fn apply(
    al: &mut Airlock,
    run: &Run,
    role: Role,
    commit: &str,
    round: u32,
    effects: &dyn Effects,
) -> Result<ApplyReport> {
    // An action recorded as done in events a restore dropped would run again.
    al.store
        .require_head(Some(&format!("apply the actions of run {}", run.id)))?;
    let all = plan::list(al, &run.id)?;
    let mut mine: Vec<Action> = all.iter().filter(|a| a.role == role).cloned().collect();
    if role == Role::Undo {
        mine.reverse();
    }
    // A run soaking in staging keeps its production actions, whatever
    // path asks (`promote`, `--actions-only`, after a recovery).
    let held = if role == Role::Apply {
        crate::soak::held(al, run)?
    } else {
        Vec::new()
    };
    let mut report = ApplyReport::default();
    for mut action in mine {
        if held.contains(&action.spec.name)
            && !matches!(action.state, ActionState::Done | ActionState::Skipped)
        {
            report.actions.push(outcome(
                &action,
                "held: a production action, applied once the run's soak in staging is over",
                false,
            ));
            report.held.push(action.spec.name.clone());
            continue;
        }
        if role == Role::Undo {
            let forward = all
                .iter()
                .find(|a| a.role == Role::Apply && a.spec.name == action.spec.name);
            if !forward.is_some_and(|f| f.state == ActionState::Done)
                && action.state == ActionState::Planned
            {
                let from = action.state;
                action.state = ActionState::Skipped;
                save(
                    al,
                    &action,
                    Some(from),
                    "action-skipped",
                    json!({"name": action.spec.name, "role": "undo",
                            "why": "the action it compensates never ran"}),
                )?;
                report.actions.push(outcome(
                    &action,
                    "skipped: the action it undoes never ran",
                    false,
                ));
                continue;
            }
        }
        let mut recovered = false;
        match action.state {
            ActionState::Done | ActionState::Skipped => {
                report.actions.push(outcome(&action, "already done", false));
                continue;
            }
            ActionState::Started => {
                recovered = true;
                match action.spec.body.clone() {
                    Body::Http(_) => {}
                    Body::GitPush(p) => {
                        if pushed_everywhere(al, &p, commit)? {
                            finish(
                                al,
                                &mut action,
                                ActionState::Done,
                                format!(
                                    "{} already holds {} on {}: the interrupted push had happened",
                                    p.dst,
                                    &commit[..12.min(commit.len())],
                                    p.remote
                                ),
                                Some(sha256_hex(commit.as_bytes())),
                                true,
                            )?;
                            report.actions.push(outcome(
                                &action,
                                "the interrupted push had happened",
                                true,
                            ));
                            continue;
                        }
                    }
                    Body::Email(_) | Body::Command(_) | Body::Mcp(_) => {
                        finish(
                            al,
                            &mut action,
                            ActionState::Unknown,
                            "interrupted after it started: it may or may not have happened".into(),
                            None,
                            true,
                        )?;
                        report.actions.push(outcome(
                            &action,
                            "outcome unknown after an interruption",
                            true,
                        ));
                        report.stopped = Some(resolve_hint(run, &action));
                        return Ok(report);
                    }
                }
            }
            ActionState::Unknown => {
                report
                    .actions
                    .push(outcome(&action, "outcome unknown", false));
                report.stopped = Some(resolve_hint(run, &action));
                return Ok(report);
            }
            ActionState::Failed => match &action.spec.body {
                // Retried: the key (http) or the push's atomicity makes it safe.
                Body::Http(_) | Body::GitPush(_) => {}
                _ => {
                    report
                        .actions
                        .push(outcome(&action, "failed earlier", false));
                    report.stopped = Some(resolve_hint(run, &action));
                    return Ok(report);
                }
            },
            ActionState::Planned => {}
        }
        // The workflow decides now, not only when the plan was approved: a
        // scope or variable revoked since then stops the action here.
        if let Err(e) = al
            .current_workflow()
            .and_then(|w| plan::authorize(al, run, &w, &action.spec))
        {
            report.actions.push(outcome(
                &action,
                "not allowed by the workflow as it is now",
                false,
            ));
            report.stopped = Some(format!(
                "action `{}` was not performed: {e}{}",
                action.spec.name,
                e.hint().map(|h| format!("; {h}")).unwrap_or_default()
            ));
            return Ok(report);
        }
        // The approval pinned where a push goes; git must still resolve the
        // remote to exactly that, or the push waits for a new approval.
        if let Err(e) = plan::check_destination(al, run, &action.spec) {
            report.actions.push(outcome(
                &action,
                "not pushed: the remote now resolves to another destination",
                false,
            ));
            report.stopped = Some(format!(
                "{e}{}",
                e.hint().map(|h| format!("\n{h}")).unwrap_or_default()
            ));
            return Ok(report);
        }
        let key = action.idempotency_key(round);
        let from = action.state;
        action.state = ActionState::Started;
        let attempt = action.attempts.len() + 1;
        save(
            al,
            &action,
            Some(from),
            "action-started",
            json!({"name": action.spec.name, "role": role_str(role), "kind": action.spec.body.kind(),
                    "idempotency_key": key, "attempt": attempt, "digest": action.digest}),
        )?;
        crate::failpoint("action:after-started");
        let (state, summary, result) = perform(al, run, &action, commit, &key, effects);
        crate::failpoint("action:after-live");
        finish(al, &mut action, state, summary.clone(), result, false)?;
        report.actions.push(outcome(&action, &summary, recovered));
        if state != ActionState::Done {
            report.stopped = Some(match state {
                ActionState::Failed
                    if matches!(action.spec.body, Body::Http(_) | Body::GitPush(_)) =>
                {
                    format!(
                        "action `{}` failed: {summary}; fix the cause and run `airlock {} {} --actions-only` to try it again (same idempotency key)",
                        action.spec.name,
                        if role == Role::Apply {
                            "promote"
                        } else {
                            "rollback"
                        },
                        run.id
                    )
                }
                _ => resolve_hint(run, &action),
            });
            return Ok(report);
        }
    }
    report.complete = report.held.is_empty();
    Ok(report)
}

fn resolve_hint(run: &Run, action: &Action) -> String {
    format!(
        "action `{name}` {state}; check whether it happened, then `airlock resolve {run} {name}{undo} --done --reason …` or `--retry --reason …`",
        name = action.spec.name,
        state = match action.state {
            ActionState::Failed => "failed",
            _ => "has an unknown outcome",
        },
        run = run.id,
        undo = if action.role == Role::Undo {
            " --undo"
        } else {
            ""
        },
    )
}

fn outcome(action: &Action, summary: &str, recovered: bool) -> ActionOutcome {
    ActionOutcome {
        name: action.spec.name.clone(),
        role: action.role,
        kind: action.spec.body.kind().to_string(),
        state: action.state,
        summary: summary.to_string(),
        recovered,
    }
}

fn finish(
    al: &mut Airlock,
    action: &mut Action,
    state: ActionState,
    summary: String,
    result: Option<String>,
    recovered: bool,
) -> Result<()> {
    let from = action.state;
    action.state = state;
    action.attempts.push(Attempt {
        at: now(),
        state,
        summary: summary.clone(),
        result_sha256: result.clone(),
    });
    save(
        al,
        action,
        Some(from),
        "action-finished",
        json!({"name": action.spec.name, "role": role_str(action.role), "state": state.as_str(),
               "summary": summary, "result_sha256": result, "recovered": recovered}),
    )
}

/// Whether every approved URL of a push already holds `commit` at its ref:
/// asked of the pinned URLs, the same ones the push went to.
fn pushed_everywhere(al: &Airlock, push: &crate::action::GitPush, commit: &str) -> Result<bool> {
    for url in &push.urls {
        if remote_ref(al, &push.remote, url, &push.dst)?.as_deref() != Some(commit) {
            return Ok(false);
        }
    }
    Ok(!push.urls.is_empty())
}

/// What `dst` points at now at `url`, one of `remote`'s approved URLs.
fn remote_ref(al: &Airlock, remote: &str, url: &str, dst: &str) -> Result<Option<String>> {
    let cannot = |why: String| {
        Error::refused(
            crate::error::Code::RemoteUnreachable,
            format!(
                "cannot ask remote `{remote}` ({}) where {dst} points",
                url.escape_debug()
            ),
            vec![why],
            "make the approved URL reachable as written, then run the command again; nothing was pushed twice",
        )
    };
    let out = preview::pinned_git(&al.layout, url)
        .map_err(cannot)?
        .args(["ls-remote", "--", url, dst])
        .output()
        .map_err(Error::GitMissing)?;
    if !out.status.success() {
        return Err(cannot(
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .find(|l| l.ends_with(&format!("\t{dst}")))
        .and_then(|l| l.split('\t').next())
        .map(str::to_string))
}

/// Expands `${NAME}` from airlock's environment.
fn expand(value: &str) -> std::result::Result<String, String> {
    let mut out = value.to_string();
    for name in parse::env_refs(value) {
        let v = std::env::var(&name)
            .map_err(|_| format!("environment variable `{name}` is not set"))?;
        out = out.replace(&format!("${{{name}}}"), &v);
    }
    Ok(out)
}

/// One live attempt: the new state, a summary, and the result's digest.
fn perform(
    al: &mut Airlock,
    run: &Run,
    action: &Action,
    commit: &str,
    key: &str,
    effects: &dyn Effects,
) -> (ActionState, String, Option<String>) {
    match &action.spec.body {
        Body::Http(h) => {
            let mut headers = Vec::new();
            for (name, value) in &h.headers {
                match expand(value) {
                    Ok(v) => headers.push((name.clone(), v)),
                    Err(e) => return (ActionState::Failed, format!("not sent: {e}"), None),
                }
            }
            headers.push(("Idempotency-Key".into(), key.to_string()));
            let request = HttpRequest {
                method: h.method.clone(),
                url: h.url.clone(),
                headers,
                body: h.body.as_ref().map(|b| b.as_bytes().to_vec()),
                timeout: Duration::from_secs(30),
            };
            match effects.http(&request) {
                Ok(resp) => {
                    let digest = Some(sha256_hex(&resp.body));
                    if (200..300).contains(&resp.status) {
                        (ActionState::Done, format!("HTTP {}", resp.status), digest)
                    } else {
                        (ActionState::Failed, format!("HTTP {}", resp.status), digest)
                    }
                }
                Err(f) => (ActionState::Failed, f.message, None),
            }
        }
        Body::Email(e) => {
            let workflow = match al.workflow_for(run) {
                Ok(w) => w,
                Err(err) => return (ActionState::Failed, format!("not sent: {err}"), None),
            };
            let Some(server) = workflow.actions.smtp.clone() else {
                return (
                    ActionState::Failed,
                    "not sent: no [actions.smtp] server is configured in the workflow".into(),
                    None,
                );
            };
            let credentials = match (&server.username_env, &server.password_env) {
                (Some(u), Some(p)) => match (std::env::var(u), std::env::var(p)) {
                    (Ok(u), Ok(p)) => Some((u, p)),
                    _ => {
                        return (
                            ActionState::Failed,
                            format!(
                                "not sent: the SMTP credentials `{u}`/`{p}` are not both set in the environment"
                            ),
                            None,
                        );
                    }
                },
                _ => None,
            };
            let mut attachments = Vec::new();
            let tree = match al.layout.git().tree_of(commit) {
                Ok(t) => t,
                Err(err) => return (ActionState::Failed, format!("not sent: {err}"), None),
            };
            for a in &e.attachments {
                match attachment_blob(al, &tree, &a.path) {
                    Ok(bytes) if sha256_hex(&bytes) == a.sha256 => {
                        let name = a.path.rsplit('/').next().unwrap_or(&a.path).to_string();
                        attachments.push((name, bytes));
                    }
                    Ok(_) => {
                        return (
                            ActionState::Failed,
                            format!(
                                "not sent: attachment {} differs from the one approved",
                                a.path
                            ),
                            None,
                        );
                    }
                    Err(why) => {
                        return (
                            ActionState::Failed,
                            format!("not sent: attachment {} {why}", a.path),
                            None,
                        );
                    }
                }
            }
            let message = OutgoingEmail {
                from: e.from.clone(),
                to: e.to.clone(),
                cc: e.cc.clone(),
                subject: e.subject.clone(),
                body: e.body.clone(),
                message_id: format!("{key}@airlock"),
                attachments,
            };
            match effects.email(&server, credentials, &message) {
                Ok(reply) => (
                    ActionState::Done,
                    format!(
                        "accepted by {}:{}: {}",
                        server.host,
                        server.port,
                        reply.trim()
                    ),
                    Some(sha256_hex(reply.as_bytes())),
                ),
                Err(f) if f.maybe_delivered => (ActionState::Unknown, f.message, None),
                Err(f) => (ActionState::Failed, f.message, None),
            }
        }
        Body::GitPush(p) => {
            // To each approved URL as written, never through the remote's
            // name: the configuration cannot redirect it.
            let refspec = format!("{commit}:{}", p.dst);
            let mut report = String::new();
            for url in &p.urls {
                let out = preview::pinned_git(&al.layout, url).and_then(|mut git| {
                    git.args(["push", "--porcelain", "--", url, &refspec])
                        .output()
                        .map_err(|e| format!("cannot run git: {e}"))
                });
                let o = match out {
                    Ok(o) => o,
                    Err(e) => return (ActionState::Failed, format!("not pushed: {e}"), None),
                };
                let text = format!(
                    "{}{}",
                    String::from_utf8_lossy(&o.stdout),
                    String::from_utf8_lossy(&o.stderr)
                );
                report.push_str(&text);
                if !o.status.success() {
                    return (
                        ActionState::Failed,
                        format!(
                            "git push to {} failed: {}",
                            url.escape_debug(),
                            text.lines()
                                .rfind(|l| !l.trim().is_empty())
                                .unwrap_or("")
                                .trim()
                        ),
                        Some(sha256_hex(report.as_bytes())),
                    );
                }
            }
            if p.urls.is_empty() {
                return (
                    ActionState::Failed,
                    "not pushed: the approval pins no destination URL".into(),
                    None,
                );
            }
            (
                ActionState::Done,
                format!(
                    "pushed {} to {} {} ({})",
                    &commit[..12.min(commit.len())],
                    p.remote,
                    p.dst,
                    p.urls
                        .iter()
                        .map(|u| u.escape_debug().to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                Some(sha256_hex(report.as_bytes())),
            )
        }
        Body::Command(c) => run_command(al, run, action, c, commit),
        Body::Mcp(m) => {
            let request = airlock_model::action::effects::McpRequest {
                server: m.server.clone(),
                command: m.command.clone(),
                cwd: al.layout.root.clone(),
                tool: m.tool.clone(),
                arguments: m.arguments.clone(),
                definition: m.definition.clone(),
                timeout: Duration::from_secs(60),
            };
            match effects.mcp(&request) {
                Ok(reply) => {
                    let digest = Some(sha256_hex(reply.result.as_bytes()));
                    let text: String = reply.text.chars().take(200).collect();
                    if reply.is_error {
                        (
                            ActionState::Failed,
                            format!("tool {} answered an error: {text}", m.tool),
                            digest,
                        )
                    } else {
                        (
                            ActionState::Done,
                            format!("tool {} of {} answered: {text}", m.tool, m.server),
                            digest,
                        )
                    }
                }
                Err(f) if f.maybe_delivered => (ActionState::Unknown, f.message, None),
                Err(f) => (ActionState::Failed, f.message, None),
            }
        }
    }
}

/// Runs a command action in a clean checkout of `commit`, outside the
/// sandbox (it was approved to have effects), with a time limit and only the
/// environment it names.
fn run_command(
    al: &mut Airlock,
    run: &Run,
    action: &Action,
    c: &crate::action::CommandAction,
    commit: &str,
) -> (ActionState, String, Option<String>) {
    let slot = format!("{}-{}", role_str(action.role), action.spec.name);
    let dir = al.layout.run_dir(&run.id).join("apply").join(&slot);
    let index = al
        .layout
        .run_dir(&run.id)
        .join("apply")
        .join(format!("{slot}.index"));
    if let Err(e) = al.layout.git().scratch_checkout(&dir, &index, commit) {
        return (
            ActionState::Failed,
            format!("not run: cannot check out {commit}: {e}"),
            None,
        );
    }
    // The directory must exist in the checkout and stay inside it once
    // symbolic links are followed: the tree is the agent's.
    let cwd = match (dir.canonicalize(), dir.join(&c.cwd).canonicalize()) {
        (Ok(root), Ok(cwd)) if cwd.starts_with(&root) && cwd.is_dir() => cwd,
        (_, Ok(cwd)) if cwd.is_dir() => {
            let _ = std::fs::remove_dir_all(&dir);
            return (
                ActionState::Failed,
                format!(
                    "not run: `cwd = {:?}` leads outside the checkout (to {}) through a symbolic link",
                    c.cwd,
                    cwd.display()
                ),
                None,
            );
        }
        _ => {
            let _ = std::fs::remove_dir_all(&dir);
            return (
                ActionState::Failed,
                format!(
                    "not run: `cwd = {:?}` is not a directory of the promoted commit",
                    c.cwd
                ),
                None,
            );
        }
    };
    let logs = al.layout.logs_dir(&run.id);
    let _ = std::fs::create_dir_all(&logs);
    let mut env: Vec<(OsString, OsString)> = Vec::new();
    for name in [
        "PATH",
        "HOME",
        "USER",
        "LOGNAME",
        "LANG",
        "LC_ALL",
        "TZ",
        "CARGO_HOME",
        "RUSTUP_HOME",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain(c.env.iter().cloned())
    {
        if let Some(v) = std::env::var_os(&name) {
            env.push((name.into(), v));
        }
    }
    env.push(("AIRLOCK_ACTION".into(), action.spec.name.clone().into()));
    let spec = CommandSpec {
        argv: c.argv.iter().map(OsString::from).collect(),
        cwd,
        env,
        timeout: Some(Duration::from_secs(c.timeout_secs)),
        stdout_path: logs.join(format!(
            "action-{}-{}.stdout",
            role_str(action.role),
            action.spec.name
        )),
        stderr_path: logs.join(format!(
            "action-{}-{}.stderr",
            role_str(action.role),
            action.spec.name
        )),
        echo: Echo::None,
        input: airlock_sandbox::Input::Null,
        confinement: None,
        limits: Limits::default(),
    };
    let result = airlock_sandbox::run(&spec);
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_file(&index);
    // The output goes to the team's shared store before the event that
    // names its digest (`action-finished`); a store that cannot be written
    // is said in the summary.
    let unshared = |o: &airlock_sandbox::Outcome| match crate::store_backend::log_store(&al.layout)
    {
        Ok(Some(store)) => store
            .share(&[
                (&spec.stdout_path, &o.stdout.sha256),
                (&spec.stderr_path, &o.stderr.sha256),
            ])
            .map(|note| format!("; {note}"))
            .unwrap_or_default(),
        Ok(None) => String::new(),
        Err(e) => format!("; its logs were not copied to the shared log store ({e})"),
    };
    match result {
        Ok(o) if o.exit.success() => (
            ActionState::Done,
            format!(
                "exited 0 (log {}){}",
                spec.stdout_path.display(),
                unshared(&o)
            ),
            Some(o.stdout.sha256),
        ),
        Ok(o) => (
            ActionState::Failed,
            format!(
                "{} (log {}){}",
                o.exit.describe(),
                spec.stderr_path.display(),
                unshared(&o)
            ),
            Some(o.stdout.sha256),
        ),
        Err(e) => (ActionState::Failed, format!("not run: {e}"), None),
    }
}

/// `airlock resolve`: a human says what happened to an action whose outcome
/// airlock cannot know (or that failed): done, or to be tried again.
pub fn resolve(
    al: &mut Airlock,
    run_id: &str,
    name: &str,
    role: Role,
    done: bool,
    reason: Option<&str>,
) -> Result<Action> {
    crate::guards::refuse_from_lane(al, "resolve")?;
    let reason = crate::guards::require_reason(reason, "resolve", "what you checked")?;
    // The promotion lock: no live attempt is under way while a human rules,
    // so an action found `started` now was left by a process that died.
    let _lock = crate::lock::FileLock::acquire(&al.layout.promote_lock(), true)?;
    let run = al.store.get(run_id)?;
    let mut action = plan::list(al, &run.id)?
        .into_iter()
        .find(|a| a.spec.name == name && a.role == role)
        .ok_or_else(|| {
            Error::Invalid(format!(
                "run {} has no {}action named `{}`; `airlock plan {}` lists them",
                run.id,
                if role == Role::Undo {
                    "compensating "
                } else {
                    ""
                },
                name.escape_debug(),
                run.id
            ))
        })?;
    if !matches!(
        action.state,
        ActionState::Unknown | ActionState::Failed | ActionState::Started
    ) {
        return Err(Error::refused(
            crate::error::Code::ActionNotResolvable,
            format!(
                "action `{}` of run {} is {}; only a failed action or one whose outcome is unknown is resolved by hand",
                name,
                run.id,
                action.state.as_str()
            ),
            vec![],
            format!("`airlock plan {}` shows every action's state", run.id),
        ));
    }
    let from = action.state;
    action.state = if done {
        ActionState::Done
    } else {
        ActionState::Planned
    };
    action.attempts.push(Attempt {
        at: now(),
        state: action.state,
        summary: format!(
            "resolved by hand as {}: {reason}",
            if done { "done" } else { "to retry" }
        ),
        result_sha256: None,
    });
    save(
        al,
        &action,
        Some(from),
        "action-resolved",
        json!({"name": name, "role": role_str(role), "as": if done { "done" } else { "retry" }, "reason": reason}),
    )?;
    Ok(action)
}
