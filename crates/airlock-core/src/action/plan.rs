//! A run's plan of actions: proposing, withdrawing, listing, and refreshing
//! previews and rehearsals when the run is submitted.

use std::path::Path;

use serde_json::{Value, json};

use crate::Airlock;
use crate::action::{
    Action, ActionSpec, ActionState, Body, Role, parse, preview, scope, spec_digest,
};
use crate::brief::Brief;
use crate::error::{Error, Result};
use crate::git;
use crate::layout::sha256_hex;
use crate::run::{Run, State, now};
use crate::workflow::Workflow;
use airlock_model::action::effects::Effects;

pub use airlock_store::actions::role_key as role_str;

/// Every action of a run: those applied at promotion in plan order, then
/// their compensations.
pub fn list(al: &Airlock, run: &str) -> Result<Vec<Action>> {
    Ok(al.store.actions(run)?)
}

/// Stores an action's new state and data with its ledger event, atomically,
/// only if it is still in `from` (so two processes cannot both move it).
pub fn save(
    al: &mut Airlock,
    action: &Action,
    from: Option<ActionState>,
    kind: &str,
    event: Value,
) -> Result<()> {
    Ok(al.store.save_action(action, from, kind, event)?)
}

/// Action files are small; a larger one is refused before it is parsed.
const MAX_ACTION_FILE: u64 = 1 << 20;

/// The environment variables an action reads, by name.
fn env_names(spec: &ActionSpec) -> Vec<String> {
    match &spec.body {
        Body::Http(h) => h
            .headers
            .iter()
            .flat_map(|(_, v)| parse::env_refs(v))
            .collect(),
        Body::Command(c) => c.env.clone(),
        _ => Vec::new(),
    }
}

/// The environment variables actions of `lane` may read: `[actions] env`
/// and the lane's `action_env`. None of them reaches a sandboxed command
/// (the workflow refuses one that is also in a `pass_env`).
pub fn action_env<'w>(workflow: &'w Workflow, lane: &str) -> Vec<&'w str> {
    workflow
        .actions
        .env
        .iter()
        .chain(
            workflow
                .lanes
                .iter()
                .filter(|l| l.name == lane)
                .flat_map(|l| l.action_env.iter()),
        )
        .map(String::as_str)
        .collect()
}

fn passed_to_commands(workflow: &Workflow, lane: &str, name: &str) -> bool {
    workflow
        .policy
        .pass_env
        .iter()
        .chain(
            workflow
                .lanes
                .iter()
                .filter(|l| l.name == lane)
                .flat_map(|l| l.pass_env.iter()),
        )
        .any(|n| n == name)
}

/// Everything about an action that depends on the workflow and the
/// repository rather than the file alone.
pub(crate) fn authorize(
    al: &Airlock,
    run: &Run,
    workflow: &Workflow,
    spec: &ActionSpec,
) -> Result<()> {
    match authorize_all(al, run, workflow, spec)?.into_iter().next() {
        Some(problem) => Err(problem),
        None => Ok(()),
    }
}

/// Every refusal [`authorize`] would give, each check run whatever the
/// others found; an error that is not a refusal (git failing) stops it.
fn authorize_all(
    al: &Airlock,
    run: &Run,
    workflow: &Workflow,
    spec: &ActionSpec,
) -> Result<Vec<Error>> {
    let mut problems = Vec::new();
    for check in [
        parse::check_against_workflow(spec, workflow).map_err(Error::from),
        scope::authorize(spec, workflow, &run.lane).map_err(Error::from),
        authorize_env_and_remote(al, run, workflow, spec),
    ] {
        match check {
            Ok(()) => {}
            Err(e @ Error::Refused(_)) => problems.push(e),
            Err(e) => return Err(e),
        }
    }
    Ok(problems)
}

/// Several refusals of one action file as one, each with its reasons and
/// what would fix it; one refusal as it is.
fn one_refusal(file: &str, mut problems: Vec<Error>) -> Result<()> {
    if problems.len() <= 1 {
        return problems.pop().map_or(Ok(()), Err);
    }
    let mut reasons = Vec::new();
    for problem in &problems {
        match problem {
            Error::Refused(r) => {
                reasons.push(r.what.clone());
                reasons.extend(r.reasons.iter().map(|why| format!("  {why}")));
                reasons.push(format!("  fix: {}", r.hint));
            }
            other => reasons.push(other.to_string()),
        }
    }
    Err(Error::refused(
        crate::error::Code::ActionProblems,
        format!("{file} has {} problems", problems.len()),
        reasons,
        "fix them all and propose the file again; nothing was recorded",
    ))
}

fn authorize_env_and_remote(
    al: &Airlock,
    run: &Run,
    workflow: &Workflow,
    spec: &ActionSpec,
) -> Result<()> {
    let granted = action_env(workflow, &run.lane);
    let ungranted: Vec<String> = env_names(spec)
        .into_iter()
        .filter(|n| !granted.contains(&n.as_str()))
        .collect();
    if !ungranted.is_empty() {
        let quoted = ungranted
            .iter()
            .map(|n| format!("\"{n}\""))
            .collect::<Vec<_>>()
            .join(", ");
        return Err(Error::refused(
            crate::error::Code::EnvNotGranted,
            format!(
                "action `{}` reads environment variables the workflow does not give actions of lane `{}`",
                spec.name, run.lane
            ),
            ungranted
                .iter()
                .map(|n| {
                    if passed_to_commands(workflow, &run.lane, n) {
                        format!("`{n}` is in `pass_env`, which passes it to every command of the lane, not to actions")
                    } else {
                        format!("`{n}`")
                    }
                })
                .collect(),
            format!(
                "list them for actions in .airlock/workflow.toml: `[actions] env = [{quoted}]` (every lane) or `[lanes.{}] action_env = [{quoted}]`, and keep them out of `pass_env`: airlock reads them only when it applies an action",
                run.lane
            ),
        ));
    }
    if let Body::GitPush(p) = &spec.body
        && push_urls(al, &p.remote)?.is_none()
    {
        return Err(Error::refused(
            crate::error::Code::UnknownRemote,
            format!(
                "action `{}` pushes to remote `{}`, which the repository does not have",
                spec.name, p.remote
            ),
            vec![],
            "add it yourself in the main checkout (`git remote add NAME URL`): an action names a remote, it never brings one",
        ));
    }
    Ok(())
}

/// Where `git push REMOTE` sends, asked of the user's git with the user's
/// configuration (the push needs their credentials, so it is the
/// configuration that decides): every `remote.NAME.pushurl`, else
/// `remote.NAME.url`, with `url.*.insteadOf` and `url.*.pushInsteadOf`
/// applied as git applies them. `None` if the repository has no such remote.
pub fn push_urls(al: &Airlock, remote: &str) -> Result<Option<Vec<String>>> {
    let out = preview::user_git(&al.layout)
        .args(["remote", "get-url", "--push", "--all", remote])
        .output()
        .map_err(Error::GitMissing)?;
    if !out.status.success() {
        return Ok(None);
    }
    let urls: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect();
    Ok((!urls.is_empty()).then_some(urls))
}

/// Pins where each push goes: the URLs git resolves now, shown in the
/// preview and covered by the digest.
fn pin_push(al: &Airlock, spec: &mut ActionSpec) -> Result<()> {
    if let Body::GitPush(p) = &mut spec.body {
        p.urls = push_urls(al, &p.remote)?.unwrap_or_default();
    }
    Ok(())
}

/// Refuses a push whose remote now resolves to URLs other than the ones
/// approved: a `pushurl`, `insteadOf` or `pushInsteadOf` changed since.
pub fn check_destination(al: &Airlock, run: &Run, spec: &ActionSpec) -> Result<()> {
    let Body::GitPush(p) = &spec.body else {
        return Ok(());
    };
    let now = push_urls(al, &p.remote)?.unwrap_or_default();
    if !p.urls.is_empty() && now == p.urls {
        return Ok(());
    }
    let list = |urls: &[String]| {
        if urls.is_empty() {
            "nothing".to_string()
        } else {
            urls.iter()
                .map(|u| u.escape_debug().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        }
    };
    Err(Error::refused(
        crate::error::Code::PushNotApproved,
        format!(
            "action `{}` of run {} would push somewhere the approval does not cover",
            spec.name, run.id
        ),
        vec![
            format!(
                "approved: remote `{}` pushes to {}",
                p.remote,
                list(&p.urls)
            ),
            format!("now: git resolves remote `{}` to {}", p.remote, list(&now)),
            format!(
                "git applies `remote.{0}.pushurl`, `remote.{0}.url`, `url.*.insteadOf` and `url.*.pushInsteadOf`; one of them changed after the approval",
                p.remote
            ),
        ],
        format!(
            "nothing was pushed; if the new destination is right, redirect the run (`airlock redirect {} --reason …`) and submit it again so the reviewer sees it, otherwise restore the remote's configuration and run the command again",
            run.id
        ),
    ))
}

/// Refuses, before anything is merged or pushed, if any push the run will
/// make at promotion now goes somewhere other than approved.
pub fn check_destinations(al: &Airlock, run: &Run) -> Result<()> {
    for a in list(al, &run.id)? {
        if a.role == Role::Apply && a.state != ActionState::Done {
            check_destination(al, run, &a.spec)?;
        }
    }
    Ok(())
}

/// Pins each attachment to the blob in `tree`: its digest and size.
fn pin_attachments(al: &Airlock, spec: &mut ActionSpec, tree: &str) -> Result<()> {
    if let Body::Email(e) = &mut spec.body {
        for a in &mut e.attachments {
            let blob = attachment_blob(al, tree, &a.path).map_err(|why| {
                Error::refused(
                    crate::error::Code::InvalidAttachment,
                    format!("attachment `{}` of action `{}` {why}", a.path.escape_debug(), spec.name),
                    vec![],
                    "attach a regular file of the run's worktree (an attachment is sent from the promoted commit)",
                )
            })?;
            a.sha256 = sha256_hex(&blob);
            a.size = blob.len() as u64;
        }
    }
    Ok(())
}

/// The bytes of a regular file at `path` in `tree`.
pub fn attachment_blob(
    al: &Airlock,
    tree: &str,
    path: &str,
) -> std::result::Result<Vec<u8>, String> {
    let git = al.layout.git();
    let entry = git
        .text(&["ls-tree", "-z", "--full-tree", tree, "--", path])
        .map_err(|e| e.to_string())?;
    let mode = entry.split(' ').next().unwrap_or_default();
    if entry.is_empty() {
        return Err("is not in the run's tree".into());
    }
    if mode != "100644" && mode != "100755" {
        return Err(format!("is not a regular file (mode {mode})"));
    }
    git.run(&["cat-file", "blob", &format!("{tree}:{path}")])
        .map_err(|e| e.to_string())
}

/// The paths a run changes between `base` and `tree`.
fn changed_files(al: &Airlock, base: &str, tree: &str) -> Result<Vec<String>> {
    let base_tree = al.layout.git().tree_of(base)?;
    Ok(git::diff_tree(&al.layout.git(), &base_tree, tree)?
        .into_iter()
        .map(|c| format!("{} {}", c.status, c.path))
        .collect())
}

/// Builds the record of an action: attachments pinned, preview, digests.
/// Nothing runs here, so a refusal leaves nothing behind; the rehearsal
/// comes after, in [`rehearse`].
fn prepare(
    al: &Airlock,
    run: &Run,
    workflow: &Workflow,
    mut spec: ActionSpec,
    role: Role,
    seq: u32,
    tree: &str,
) -> Result<Action> {
    pin_attachments(al, &mut spec, tree)?;
    pin_push(al, &mut spec)?;
    let files = match &spec.body {
        Body::GitPush(_) => changed_files(al, &run.base, tree)?,
        _ => Vec::new(),
    };
    let text = preview::render(&spec, role, workflow, &files);
    Ok(Action {
        run: run.id.clone(),
        seq,
        role,
        undoes: (role == Role::Undo).then(|| spec.name.clone()),
        digest: spec_digest(&spec),
        preview_sha256: sha256_hex(text.as_bytes()),
        preview: text,
        // A compensation is rehearsed when it is needed, not now: it undoes
        // a promotion that has not happened.
        rehearsal: crate::action::Rehearsal {
            status: "unavailable".into(),
            summary: format!("runs only on `airlock rollback {}`", run.id),
            detail: String::new(),
        },
        spec,
        state: ActionState::Planned,
        attempts: Vec::new(),
        proposed: now(),
    })
}

/// Rehearses an action that runs at promotion, against `commit`.
fn rehearse(
    al: &mut Airlock,
    run: &Run,
    workflow: &Workflow,
    brief: &Brief,
    action: &mut Action,
    commit: &str,
) -> Result<()> {
    if action.role == Role::Apply {
        action.rehearsal = preview::rehearse(al, run, workflow, brief, &action.spec, commit)?;
    }
    Ok(())
}

/// The longest name a staged call gets before its sequence number.
const STAGED_NAME_STEM: usize = 50;

/// Adds a call `airlock mcp-proxy` staged to the plan of a run that has
/// not been submitted, as the next action: checked against the workflow
/// like a proposed file (server declared, scopes granted), previewed, and
/// stored with its ledger event in one transaction. `rehearsal` is what
/// the proxy's read-only counterpart call showed, if the workflow names
/// one. The action is named `mcp-TOOL-SEQ` (the tool's name reduced to
/// letters, digits, `-` and `_`).
pub fn propose_staged(
    al: &mut Airlock,
    run_id: &str,
    call: crate::action::McpCall,
    rehearsal: Option<crate::action::Rehearsal>,
    effects: &dyn Effects,
) -> Result<Action> {
    let run = al.store.get(run_id)?;
    run.require("stage an MCP call in", &[State::Staged, State::Checked])?;
    let workflow = al.workflow_for(&run)?;
    crate::lane_policy::require_class(&workflow, &run, "propose")?;
    let existing = list(al, &run.id)?;
    let seq = existing.iter().map(|a| a.seq).max().unwrap_or(0) + 1;
    let stem: String = call
        .tool
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(STAGED_NAME_STEM)
        .collect();
    let name = format!("mcp-{stem}-{seq}");
    let spec = ActionSpec {
        name: name.clone(),
        description: Some(format!("{} call staged by airlock mcp-proxy", call.tool)),
        scopes: vec![format!("mcp:{}:{}", call.server, call.tool)],
        body: Body::Mcp(call),
    };
    let mut problems = authorize_all(al, &run, &workflow, &spec)?;
    problems.extend(validate(&spec, effects).err());
    one_refusal(&format!("the staged call `{name}`"), problems)?;
    let tree = crate::quota::snapshot(&al.layout, &run.id, &workflow.sandbox)?;
    let mut action = prepare(al, &run, &workflow, spec, Role::Apply, seq, &tree)?;
    action.rehearsal = rehearsal.unwrap_or_else(|| crate::action::Rehearsal {
        status: "unavailable".into(),
        summary: "no read-only counterpart named: `rehearse = \"TOOL\"` in its [[mcp.tools]] rule"
            .into(),
        detail: String::new(),
    });
    let record = [action];
    let event = |replaced: bool| {
        let a = &record[0];
        json!({"name": a.spec.name, "kind": a.spec.body.kind(), "digest": a.digest,
                "preview_sha256": a.preview_sha256, "scopes": a.spec.scopes,
                "rehearsal": a.rehearsal.status, "replaced": replaced, "undo": null,
                "staged_by": "mcp-proxy"})
    };
    al.store.replace_actions(&run, &name, &record, &event)?;
    let [action] = record;
    Ok(action)
}

/// The ledger event kind of an upstream MCP call `airlock mcp-proxy` passed
/// or refused (a staged call is a `propose` event of its action).
pub const MCP_CALL_EVENT: &str = "mcp-call";

/// Appends a passed or refused MCP call (server, tool, decision, rule, the
/// arguments' digest and size, as the proxy recorded it) to `run_id`'s
/// ledger. Written as a trace is (no flush, no head witness; the run's next
/// decision does both): the proxy records a call before every call it
/// passes, and a flush each time doubled what a passed call costs.
pub fn record_mcp_call(al: &mut Airlock, run_id: &str, record: Value) -> Result<()> {
    let run = al.store.get(run_id)?;
    al.store.record_event(&run.id, MCP_CALL_EVENT, record)?;
    Ok(())
}

/// Refuses what the live clients would refuse when sending.
fn validate(spec: &ActionSpec, effects: &dyn Effects) -> Result<()> {
    effects.validate(&spec.body).map_err(|problems| {
        Error::refused(
            crate::error::Code::ActionUnsendable,
            format!("action `{}` could not be sent as written", spec.name),
            problems,
            "fix the action file and propose it again; nothing was recorded",
        )
    })
}

/// `airlock propose RUN FILE`: adds (or replaces, by name) an action in the
/// plan of a run that has not been submitted.
pub fn propose(
    al: &mut Airlock,
    run_id: &str,
    file: &Path,
    effects: &dyn Effects,
) -> Result<Vec<Action>> {
    let run = al.store.get(run_id)?;
    run.require("propose", &[State::Staged, State::Checked])?;
    let meta = std::fs::metadata(file).map_err(|source| Error::Read {
        path: file.to_path_buf(),
        source,
    })?;
    if meta.len() > MAX_ACTION_FILE {
        return Err(Error::Invalid(format!(
            "{} is {} bytes; an action file is at most {MAX_ACTION_FILE}",
            file.display(),
            meta.len()
        )));
    }
    let text = std::fs::read_to_string(file).map_err(|source| Error::Read {
        path: file.to_path_buf(),
        source,
    })?;
    let stem = file
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    propose_parsed(al, run, &file.display().to_string(), &stem, &text, effects)
}

/// [`propose`] of an action given as text rather than a file (the MCP
/// server's `propose` tool): `origin` names it in every diagnostic and
/// refusal (e.g. "action (the propose tool's argument)"), `stem` is the
/// name a file's stem would give.
pub fn propose_text(
    al: &mut Airlock,
    run_id: &str,
    origin: &str,
    stem: &str,
    text: &str,
    effects: &dyn Effects,
) -> Result<Vec<Action>> {
    let run = al.store.get(run_id)?;
    run.require("propose", &[State::Staged, State::Checked])?;
    if text.len() as u64 > MAX_ACTION_FILE {
        return Err(Error::Invalid(format!(
            "{origin} is {} bytes; an action file is at most {MAX_ACTION_FILE}",
            text.len()
        )));
    }
    propose_parsed(al, run, origin, stem, text, effects)
}

fn propose_parsed(
    al: &mut Airlock,
    run: Run,
    origin: &str,
    stem: &str,
    text: &str,
    effects: &dyn Effects,
) -> Result<Vec<Action>> {
    let parsed = parse::parse(text, origin, stem)?;
    let workflow = al.workflow_for(&run)?;
    crate::lane_policy::require_class(&workflow, &run, "propose")?;
    let brief = al.brief_of(&run, &workflow)?;
    // Every problem at once, as `brief check` does: each check of the
    // action and of its undo, not the first that fails.
    let mut problems = Vec::new();
    for spec in std::iter::once(&parsed.action).chain(parsed.undo.as_ref()) {
        problems.extend(authorize_all(al, &run, &workflow, spec)?);
        problems.extend(validate(spec, effects).err());
    }
    one_refusal(origin, problems)?;
    let existing = list(al, &run.id)?;
    let seq = existing
        .iter()
        .find(|a| a.spec.name == parsed.action.name)
        .map(|a| a.seq)
        .unwrap_or_else(|| existing.iter().map(|a| a.seq).max().unwrap_or(0) + 1);
    let tree = crate::quota::snapshot(&al.layout, &run.id, &workflow.sandbox)?;
    let mut records = vec![prepare(
        al,
        &run,
        &workflow,
        parsed.action.clone(),
        Role::Apply,
        seq,
        &tree,
    )?];
    if let Some(undo) = parsed.undo {
        records.push(prepare(al, &run, &workflow, undo, Role::Undo, seq, &tree)?);
    }
    // Everything is valid: only now does anything run.
    let commit = al.layout.git().commit_tree(
        &tree,
        &[&run.base],
        &format!("airlock rehearsal of run {}\n", run.id),
    )?;
    rehearse(al, &run, &workflow, &brief, &mut records[0], &commit)?;
    // Replace atomically: the old action and its old compensation go.
    let main = &records[0];
    let propose = |replaced: bool| {
        json!({"name": main.spec.name, "kind": main.spec.body.kind(), "digest": main.digest,
                "preview_sha256": main.preview_sha256, "scopes": main.spec.scopes,
                "rehearsal": main.rehearsal.status, "replaced": replaced,
                "undo": records.get(1).map(|u| json!({"kind": u.spec.body.kind(), "digest": u.digest}))})
    };
    al.store
        .replace_actions(&run, &parsed.action.name, &records, &propose)?;
    Ok(records)
}

/// `airlock propose RUN --withdraw NAME`: drops an action (and its
/// compensation) from a run that has not been submitted.
pub fn withdraw(al: &mut Airlock, run_id: &str, name: &str) -> Result<()> {
    let run = al.store.get(run_id)?;
    run.require("withdraw an action from", &[State::Staged, State::Checked])?;
    if !al.store.withdraw_action(&run.id, name)? {
        return Err(Error::Invalid(format!(
            "run {} has no action named `{}`; `airlock plan {}` lists them",
            run.id,
            name.escape_debug(),
            run.id
        )));
    }
    Ok(())
}

/// At submit, before anything is committed: every action is still allowed
/// by the current workflow and would be accepted by the live clients.
pub fn recheck(al: &Airlock, run: &Run, workflow: &Workflow, effects: &dyn Effects) -> Result<()> {
    for a in list(al, &run.id)? {
        authorize(al, run, workflow, &a.spec).map_err(|e| match e {
            Error::Refused(mut r) => {
                r.hint = format!(
                    "{}; or withdraw it: `airlock propose {} --withdraw {}`",
                    r.hint, run.id, a.spec.name
                );
                Error::Refused(r)
            }
            other => other,
        })?;
        validate(&a.spec, effects)?;
    }
    Ok(())
}

/// At submit, after [`recheck`]: renders previews and rehearsals against the
/// commit being submitted, so the proof shows what will happen, not what
/// would have happened earlier.
pub fn refresh(
    al: &mut Airlock,
    run: &Run,
    workflow: &Workflow,
    brief: &Brief,
    tree: &str,
    head: &str,
) -> Result<Vec<Action>> {
    let mut fresh = Vec::new();
    for a in list(al, &run.id)? {
        fresh.push(prepare(
            al,
            run,
            workflow,
            a.spec.clone(),
            a.role,
            a.seq,
            tree,
        )?);
    }
    let mut out = Vec::new();
    let earlier = list(al, &run.id)?;
    for mut action in fresh {
        if matches!(action.spec.body, Body::Mcp(_)) {
            // Rehearsed by the proxy when it was staged; nothing here can
            // call the server again.
            if let Some(a) = earlier
                .iter()
                .find(|a| a.role == action.role && a.spec.name == action.spec.name)
            {
                action.rehearsal = a.rehearsal.clone();
            }
        } else {
            rehearse(al, run, workflow, brief, &mut action, head)?;
        }
        save(
            al,
            &action,
            Some(ActionState::Planned),
            "rehearse",
            json!({"name": action.spec.name, "role": role_str(action.role),
                   "preview_sha256": action.preview_sha256, "rehearsal": action.rehearsal.status}),
        )?;
        out.push(action);
    }
    Ok(out)
}

/// The actions statement of a proof: what an approval covers.
pub fn evidence(actions: &[Action], round: u32) -> Value {
    json!({"actions": actions.iter().map(|a| json!({
        "name": a.spec.name,
        "role": role_str(a.role),
        "seq": a.seq,
        "kind": a.spec.body.kind(),
        "digest": a.digest,
        "idempotency_key": a.idempotency_key(round),
        "scopes": a.spec.scopes,
        "spec": preview::masked_spec(&a.spec),
        "preview": a.preview,
        "preview_sha256": a.preview_sha256,
        "rehearsal": a.rehearsal,
    })).collect::<Vec<_>>()})
}

/// `(role, name, digest)` of each action, sorted: compared between a proof
/// and the plan to find anything added, changed or dropped.
pub fn fingerprint(actions: &[Action]) -> Vec<(String, String, String)> {
    let mut v: Vec<_> = actions
        .iter()
        .map(|a| {
            (
                role_str(a.role).to_string(),
                a.spec.name.clone(),
                a.digest.clone(),
            )
        })
        .collect();
    v.sort();
    v
}

pub fn fingerprint_of_evidence(predicate: &Value) -> Vec<(String, String, String)> {
    let mut v: Vec<_> = predicate["actions"]
        .as_array()
        .map(|list| {
            list.iter()
                .map(|a| {
                    let s = |k: &str| a[k].as_str().unwrap_or_default().to_string();
                    (s("role"), s("name"), s("digest"))
                })
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}
