//! The `actions` table: the actions runs propose and where each is in its
//! life, every change committed with its ledger event.

use airlock_ledger::{Event, Ledger, append_in};
use airlock_model::action::{Action, ActionState, Role};
use airlock_model::run::Run;
use rusqlite::{OptionalExtension, TransactionBehavior, params};
use serde_json::Value;

use crate::error::{Code, Error, Result};

/// How a role is kept (and named in an action's files).
pub fn role_key(role: Role) -> &'static str {
    match role {
        Role::Apply => "apply",
        Role::Undo => "undo",
    }
}

pub fn state_key(s: ActionState) -> &'static str {
    match s {
        ActionState::Planned => "planned",
        ActionState::Started => "started",
        ActionState::Done => "done",
        ActionState::Failed => "failed",
        ActionState::Unknown => "unknown",
        ActionState::Skipped => "skipped",
    }
}

pub(crate) fn list(ledger: &Ledger, run: &str) -> Result<Vec<Action>> {
    let conn = ledger.connection();
    let mut stmt =
        conn.prepare("SELECT data FROM actions WHERE run = ?1 ORDER BY role = 'undo', seq")?;
    let rows = stmt.query_map([run], |r| r.get::<_, String>(0))?;
    let mut out = Vec::new();
    for row in rows {
        out.push(
            serde_json::from_str(&row?).map_err(|e| {
                Error::Corrupt(format!("an action of run {run} is unreadable: {e}"))
            })?,
        );
    }
    Ok(out)
}

pub(crate) fn save(
    ledger: &mut Ledger,
    action: &Action,
    from: Option<ActionState>,
    kind: &str,
    event: Value,
) -> Result<Event> {
    let tx = ledger
        .connection_mut()
        .transaction_with_behavior(TransactionBehavior::Immediate)?;
    let data = serde_json::to_string(action).unwrap_or_default();
    let role = role_key(action.role);
    let changed = match from {
        Some(from) => tx.execute(
            "UPDATE actions SET state = ?1, data = ?2 WHERE run = ?3 AND role = ?4 AND name = ?5 AND state = ?6",
            params![state_key(action.state), data, action.run, role, action.spec.name, state_key(from)],
        )?,
        None => tx.execute(
            "INSERT OR REPLACE INTO actions (run, role, name, seq, state, data) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![action.run, role, action.spec.name, action.seq, state_key(action.state), data],
        )?,
    };
    if changed == 0 {
        return Err(Error::refused(
            Code::ConcurrentChange,
            format!(
                "action `{}` of run {} changed while this command ran",
                action.spec.name, action.run
            ),
            vec![],
            format!("see `airlock plan {}` and try again", action.run),
        ));
    }
    let event = append_in(&tx, Some(&action.run), kind, &event)?;
    tx.commit()?;
    Ok(event)
}

pub(crate) fn replace(
    ledger: &mut Ledger,
    run: &Run,
    name: &str,
    actions: &[Action],
    event: &dyn Fn(bool) -> Value,
) -> Result<Event> {
    let tx = ledger
        .connection_mut()
        .transaction_with_behavior(TransactionBehavior::Immediate)?;
    let state: Option<String> = tx
        .query_row("SELECT state FROM runs WHERE id = ?1", [&run.id], |r| {
            r.get(0)
        })
        .optional()?;
    if !matches!(state.as_deref(), Some("staged" | "checked")) {
        return Err(Error::refused(
            Code::ConcurrentChange,
            format!("run {} changed while this command ran", run.id),
            vec![format!("it is no longer {}", run.state)],
            format!("see `airlock show {}`", run.id),
        ));
    }
    let replaced = tx.execute(
        "DELETE FROM actions WHERE run = ?1 AND name = ?2",
        params![run.id, name],
    )? > 0;
    for a in actions {
        tx.execute(
            "INSERT INTO actions (run, role, name, seq, state, data) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![a.run, role_key(a.role), a.spec.name, a.seq, state_key(a.state),
                    serde_json::to_string(a).unwrap_or_default()],
        )?;
    }
    let event = append_in(&tx, Some(&run.id), "propose", &event(replaced))?;
    tx.commit()?;
    Ok(event)
}

/// The `withdraw` event, or none (and nothing changed) when the run has no
/// action `name`.
pub(crate) fn withdraw(ledger: &mut Ledger, run: &str, name: &str) -> Result<Option<Event>> {
    let tx = ledger
        .connection_mut()
        .transaction_with_behavior(TransactionBehavior::Immediate)?;
    let gone = tx.execute(
        "DELETE FROM actions WHERE run = ?1 AND name = ?2",
        params![run, name],
    )?;
    if gone == 0 {
        return Ok(None);
    }
    let event = append_in(
        &tx,
        Some(run),
        "withdraw",
        &serde_json::json!({"name": name}),
    )?;
    tx.commit()?;
    Ok(Some(event))
}
