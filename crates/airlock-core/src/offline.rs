//! Working offline (issue 20): a machine whose shared database is out of
//! reach goes on with the runs it works on, recording locally what it
//! would have stored (`airlock_store::spool`), flushed by the database's
//! store when it next connects.
//!
//! What may work offline is what changes only this machine's own run and
//! can be replayed onto the shared history later: `exec`, `snap run --run`
//! and `check` of a run this machine worked on last (its worktree is
//! here), recorded as traces and state changes that follow the run's last
//! event this machine knew: an agent that loses the database mid-task
//! finishes its loop. Nothing that decides or has an effect beyond the run
//! works offline: `submit`, `approve`, `reject`, `promote`, `rollback` and
//! everything else open the database and refuse (`database-unreachable`),
//! since nothing irreversible is done without the shared, sealed record.
//! A workflow with `[conditions]` cannot `check` offline: they read the
//! team's history.

use std::path::PathBuf;

use airlock_ledger::{Event, VerifyReport};
use airlock_model::action::{Action, ActionState};
use airlock_model::error::Refusal;
use airlock_store::head::HeadStatus;
use airlock_store::spool::{self, Change, Known, Spooled};
use airlock_store::{InReview, Intent, IntentGuard, LogLeaf, Paths, Store};
use serde_json::{Value, json};

use crate::airlock::{Airlock, init_program};
use crate::error::{Error, Result};
use crate::exec::{Records, Trace};
use crate::layout::Layout;
use crate::run::{Run, State, now};

type StoreResult<T> = airlock_store::Result<T>;

/// The store of one run while the database is out of reach: the run as
/// this machine last knew it, its records spooled here. It answers only
/// what `exec`, `snap run` and `check` of that run ask; anything else is
/// the database being out of reach.
pub struct Offline {
    paths: Paths,
    known: Known,
    /// The run as the records spooled so far leave it.
    current: Run,
    /// Why the database is out of reach, as opening it said.
    unreachable: Refusal,
}

impl Offline {
    /// The records of `run` offline, if this machine may go on with it:
    /// it knows the run (it changed it last time it was online) and the
    /// run's worktree is here. Otherwise `unreachable`, the error opening
    /// the database gave.
    pub fn for_run(paths: &Paths, run: &str, unreachable: Error) -> Result<Offline> {
        let refusal = match &unreachable {
            Error::Refused(r) => r.clone(),
            _ => return Err(unreachable),
        };
        match spool::known(paths, run)? {
            Some(known) if known.run.worktree.is_dir() => {
                let current = spool::pending(paths, run)?
                    .into_iter()
                    .filter_map(|(_, _, r)| r.change.map(|c| c.run))
                    .next_back()
                    .unwrap_or_else(|| known.run.clone());
                Ok(Offline {
                    paths: paths.clone(),
                    known,
                    current,
                    unreachable: refusal,
                })
            }
            _ => Err(unreachable),
        }
    }

    /// The repository with this store, for a command of the run offline
    /// (no recovery: it writes to the database).
    pub fn airlock(layout: Layout, run: &str, unreachable: Error) -> Result<Airlock> {
        let offline = Offline::for_run(&layout.store_paths(), run, unreachable)?;
        Ok(Airlock {
            layout,
            store: Box::new(offline),
            recovered: Vec::new(),
            init_program: init_program(),
        })
    }

    /// [`Offline::airlock`] for `check`, which offline cannot evaluate a
    /// workflow's `[conditions]` (they read the team's history and the
    /// run's actions, in the database): refused before any gate runs.
    pub fn airlock_for_check(layout: Layout, run: &str, unreachable: Error) -> Result<Airlock> {
        use crate::config::WorkflowFile;
        let conditions =
            crate::workflow::Workflow::load_for(&layout).is_ok_and(|w| !w.conditions.is_empty());
        if conditions {
            return Err(match unreachable {
                Error::Refused(mut r) => {
                    r.reasons.push(
                        "the workflow's [conditions] read the team's history in the database: `check` waits for it".into(),
                    );
                    Error::Refused(r)
                }
                other => other,
            });
        }
        Offline::airlock(layout, run, unreachable)
    }

    /// The refusal of anything this store does not do offline.
    fn refuse<T>(&self, doing: &str) -> StoreResult<T> {
        let mut refusal = self.unreachable.clone();
        refusal.reasons.push(format!(
            "{doing} needs the database; offline, only `exec`, `snap run --run` and `check` of run {} go on, recorded on this machine",
            self.known.run.id
        ));
        Err(airlock_store::Error::Refused(refusal))
    }

    fn ours(&self, id: &str) -> StoreResult<()> {
        if id == self.known.run.id {
            Ok(())
        } else {
            self.refuse(&format!("run {id}"))
        }
    }

    fn spooled(&self) -> StoreResult<Vec<Spooled>> {
        Ok(spool::pending(&self.paths, &self.known.run.id)?
            .into_iter()
            .map(|(_, _, r)| r)
            .collect())
    }

    fn push(&self, trace: Option<Trace>, change: Option<Change>) -> StoreResult<Spooled> {
        let (_, record) = spool::push(
            &self.paths,
            &self.known.run.id,
            &Spooled {
                after: self.known.head.clone(),
                at: now(),
                trace,
                change,
                prev: String::new(),
                hash: String::new(),
            },
        )?;
        Ok(record)
    }
}

/// Whether `error` is the database being out of reach (as opposed to
/// refusing airlock, or being of a newer airlock), the one failure a
/// command may go on offline after.
pub fn is_unreachable(error: &Error) -> bool {
    error.code() == crate::error::Code::DatabaseUnreachable
}

impl Records for Offline {
    fn run(&mut self, id: &str) -> Result<Run> {
        if id != self.known.run.id {
            return Err(Error::UnknownRun(id.to_string()));
        }
        Ok(self.current.clone())
    }

    fn add_trace(&mut self, run: &str, trace: &mut Trace) -> Result<()> {
        Ok(Store::add_trace(self, run, trace)?)
    }
}

const NOTE: &str = "recorded on this machine while the database is out of reach: stored there when airlock next reaches it";

impl Store for Offline {
    fn paths(&self) -> &Paths {
        &self.paths
    }
    fn schema_cookie(&self) -> Option<i64> {
        None
    }
    fn signing_key(&mut self) -> StoreResult<&airlock_proof::SigningKey> {
        self.refuse("signing")
    }
    fn public_key(&mut self) -> StoreResult<airlock_proof::PublicKey> {
        self.refuse("the ledger's key")
    }
    fn head_status(&mut self, _verify: bool) -> StoreResult<HeadStatus> {
        self.refuse("the ledger's head record")
    }
    fn require_head(&mut self, _doing: Option<&str>) -> StoreResult<()> {
        self.refuse("the ledger's head record")
    }
    fn witness(&mut self, _event: &Event) -> StoreResult<()> {
        self.refuse("the ledger's head record")
    }
    fn witness_replacing(&mut self, _event: &Event) -> StoreResult<()> {
        self.refuse("the ledger's head record")
    }
    fn get(&self, id: &str) -> StoreResult<Run> {
        self.ours(id)?;
        Ok(self.current.clone())
    }
    fn exists(&self, id: &str) -> StoreResult<bool> {
        self.ours(id)?;
        Ok(true)
    }
    fn ids_with_prefix(&self, _prefix: &str) -> StoreResult<Vec<String>> {
        self.refuse("finding a run by a prefix of its id")
    }
    fn finished_at(&self, run: &str) -> StoreResult<Option<String>> {
        self.ours(run)?;
        Ok(None)
    }
    fn list(&self) -> StoreResult<Vec<Run>> {
        self.refuse("the list of runs")
    }
    fn insert(&mut self, _run: &Run, _intent: i64, _event: Value) -> StoreResult<Event> {
        self.refuse("starting a run")
    }
    fn transition(
        &mut self,
        run: &Run,
        from: State,
        kind: &str,
        data: Value,
    ) -> StoreResult<Event> {
        self.transition_clearing(run, from, kind, data, None)
    }
    /// A change of the run's state made offline (`check`'s), spooled as a
    /// record; the event returned is provisional (no seq: it is numbered
    /// when flushed), its hash the record's.
    fn transition_clearing(
        &mut self,
        run: &Run,
        from: State,
        kind: &str,
        data: Value,
        intent: Option<i64>,
    ) -> StoreResult<Event> {
        self.ours(&run.id)?;
        if intent.is_some() || kind != "check" {
            return self.refuse(&format!("`{kind}`"));
        }
        if self.current.state != from {
            return Err(airlock_store::Error::refused(
                crate::error::Code::ConcurrentChange,
                format!("run {} changed while this command ran", run.id),
                vec![format!("it is no longer {from}")],
                format!("run `airlock check {}` again", run.id),
            ));
        }
        let record = self.push(
            None,
            Some(Change {
                kind: kind.to_string(),
                from,
                run: run.clone(),
                data: data.clone(),
            }),
        )?;
        self.current = run.clone();
        let mut data = data;
        if let Value::Object(map) = &mut data {
            map.insert("from".into(), json!(from.as_str()));
            map.insert("to".into(), json!(run.state.as_str()));
            map.insert("offline".into(), json!({"hash": record.hash, "note": NOTE}));
        }
        Ok(Event {
            seq: 0,
            ts: record.at,
            run: Some(run.id.clone()),
            kind: kind.to_string(),
            data,
            prev: record.prev,
            hash: record.hash,
        })
    }
    /// A trace made offline, spooled; numbered as it will be when flushed
    /// (after the traces the run had and those spooled before it), or 0
    /// when this machine did not note how many the run had.
    fn add_trace(&mut self, run: &str, trace: &mut Trace) -> StoreResult<()> {
        self.ours(run)?;
        if !airlock_store::TRACED.contains(&self.current.state) {
            return Err(airlock_store::Error::WrongState {
                run: run.to_string(),
                state: self.current.state,
                command: "exec",
                needed: "staged or checked".into(),
                next: self.current.state.next_step(run),
            });
        }
        let before = self.spooled()?.iter().filter(|r| r.trace.is_some()).count() as u32;
        trace.hint = Some(match trace.hint.take() {
            Some(h) => format!("{h}; {NOTE}"),
            None => NOTE.to_string(),
        });
        trace.n = 0;
        let record = trace.clone();
        trace.n = self.known.traces.map_or(0, |t| t + before + 1);
        self.push(Some(record), None)?;
        Ok(())
    }
    /// The traces made offline (what `check` shows of a failing gate).
    fn traces(&self, run: &str) -> StoreResult<Vec<Trace>> {
        self.ours(run)?;
        let base = self.known.traces;
        Ok(self
            .spooled()?
            .into_iter()
            .filter_map(|r| r.trace)
            .enumerate()
            .map(|(i, mut t)| {
                t.n = base.map_or(0, |b| b + i as u32 + 1);
                t
            })
            .collect())
    }
    fn event(&mut self, _run: Option<&str>, kind: &str, _data: Value) -> StoreResult<Event> {
        self.refuse(&format!("recording `{kind}`"))
    }
    fn record_event(&mut self, _run: &str, kind: &str, _data: Value) -> StoreResult<Event> {
        self.refuse(&format!("recording `{kind}`"))
    }
    fn events(&self, _run: Option<&str>) -> StoreResult<Vec<Event>> {
        self.refuse("the ledger")
    }
    fn events_of_kind(&self, _kind: &str) -> StoreResult<Vec<Event>> {
        self.refuse("the ledger")
    }
    fn for_each_step(
        &self,
        _filter: &airlock_store::history::StepFilter,
        _visit: &mut dyn FnMut(airlock_store::history::StepRow<'_>),
    ) -> StoreResult<()> {
        self.refuse("the runs' history")
    }
    fn ledger_head(&self) -> StoreResult<Option<(u64, String)>> {
        self.refuse("the ledger")
    }
    fn ledger_contains(&self, _seq: u64, _hash: &str) -> StoreResult<bool> {
        self.refuse("the ledger")
    }
    fn verify_ledger(&self) -> StoreResult<VerifyReport> {
        self.refuse("the ledger")
    }
    fn event_replacing_head(&mut self, _kind: &str, _data: Value) -> StoreResult<Event> {
        self.refuse("the ledger")
    }
    fn begin_intent(
        &mut self,
        kind: &str,
        _run: &str,
        _data: Value,
    ) -> StoreResult<(i64, IntentGuard)> {
        self.refuse(&format!("`{kind}`"))
    }
    fn intent_lock(&self, token: &str) -> PathBuf {
        self.paths
            .state
            .join("offline")
            .join(format!("{token}.lock"))
    }
    fn end_intent(&mut self, _id: i64) -> StoreResult<()> {
        self.refuse("ending an intent")
    }
    fn intents(&self) -> StoreResult<Vec<Intent>> {
        Ok(Vec::new())
    }
    fn actions(&self, _run: &str) -> StoreResult<Vec<Action>> {
        self.refuse("the run's actions")
    }
    fn save_action(
        &mut self,
        _action: &Action,
        _from: Option<ActionState>,
        _kind: &str,
        _event: Value,
    ) -> StoreResult<()> {
        self.refuse("an action")
    }
    fn replace_actions(
        &mut self,
        _run: &Run,
        _name: &str,
        _actions: &[Action],
        _event: &dyn Fn(bool) -> Value,
    ) -> StoreResult<()> {
        self.refuse("proposing an action")
    }
    fn withdraw_action(&mut self, _run: &str, _name: &str) -> StoreResult<bool> {
        self.refuse("withdrawing an action")
    }
    fn in_review(&self, _kinds: &[&str]) -> StoreResult<Vec<InReview>> {
        self.refuse("the review queue")
    }
    fn take_lease(
        &mut self,
        _lease: &airlock_store::Lease,
        _now_ms: i64,
    ) -> StoreResult<Option<airlock_store::Lease>> {
        self.refuse("a promotion lease")
    }
    fn release_lease(&mut self, _target: &str, _token: &str) -> StoreResult<()> {
        self.refuse("a promotion lease")
    }
    fn lease(&self, _target: &str, _now_ms: i64) -> StoreResult<Option<airlock_store::Lease>> {
        self.refuse("a promotion lease")
    }
    fn seal(&mut self) -> StoreResult<u64> {
        self.refuse("sealing")
    }
    fn log_leaves(&self) -> StoreResult<Vec<LogLeaf>> {
        self.refuse("the sealed log")
    }
    fn chain_heads(&self) -> StoreResult<Vec<(String, u64, String)>> {
        self.refuse("the sealed log")
    }
    fn chain_event(&self, _chain: &str, _n: u64) -> StoreResult<Option<String>> {
        self.refuse("the sealed log")
    }
}
