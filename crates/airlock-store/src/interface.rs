//! The interface of a store: what the engine asks of whatever keeps its
//! state.

use std::path::PathBuf;

use airlock_ledger::{Event, VerifyReport};
use airlock_model::action::{Action, ActionState};
use airlock_model::run::{Run, State};
use airlock_model::trace::Trace;
use airlock_proof::{PublicKey, SigningKey};
use serde_json::Value;

use crate::head::HeadStatus;
use crate::lock::FileLock;
use crate::{Paths, Result};

/// The states in which a run's commands run, and so get traces.
pub const TRACED: [State; 2] = [State::Staged, State::Checked];

/// Everything the engine keeps about a repository, whatever keeps it: the
/// engine holds a `Box<dyn Store>` and names no backend but where it opens
/// one. Every change is committed with its ledger event, atomically, and
/// every event committed in full advances the ledger's head record.
pub trait Store {
    /// Where the repository's state is.
    fn paths(&self) -> &Paths;
    /// A number that changes with any change to the database's schema: a
    /// long-lived process sees the store replaced under it. None if it
    /// cannot be read.
    fn schema_cookie(&self) -> Option<i64>;

    // The signing key and the ledger's head record.
    fn signing_key(&mut self) -> Result<&SigningKey>;
    fn public_key(&mut self) -> Result<PublicKey>;
    fn head_status(&mut self, verify: bool) -> Result<HeadStatus>;
    fn require_head(&mut self, doing: Option<&str>) -> Result<()>;
    fn witness(&mut self, event: &Event) -> Result<()>;
    fn witness_replacing(&mut self, event: &Event) -> Result<()>;

    // Runs.
    fn get(&self, id: &str) -> Result<Run>;
    fn exists(&self, id: &str) -> Result<bool>;
    fn ids_with_prefix(&self, prefix: &str) -> Result<Vec<String>>;
    /// The full id of the run `given` names: itself, or the one run whose id
    /// starts with it. Several runs starting with it is a refusal that lists
    /// them; none, an unknown run with the nearest id as a suggestion.
    fn resolve(&self, given: &str) -> Result<String> {
        if self.exists(given)? {
            return Ok(given.to_string());
        }
        // Only what a run id can be made of is a prefix: "" or a path never is.
        let plausible = !given.is_empty()
            && given
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !plausible {
            return Err(crate::Error::UnknownRun(given.to_string()));
        }
        let mut candidates = self.ids_with_prefix(given)?;
        match candidates.len() {
            1 => return Ok(candidates.remove(0)),
            0 => {}
            _ => {
                return Err(crate::Error::AmbiguousRun {
                    given: given.to_string(),
                    candidates,
                });
            }
        }
        let all = self.ids_with_prefix("")?;
        let near = all
            .into_iter()
            .map(|id| (strsim::jaro_winkler(given, &id), id))
            .filter(|(score, _)| *score >= 0.85)
            .max_by(|a, b| a.0.total_cmp(&b.0))
            .map(|(_, id)| id);
        Err(match near {
            Some(near) => crate::Error::UnknownRunNear {
                given: given.to_string(),
                near,
            },
            None => crate::Error::UnknownRun(given.to_string()),
        })
    }
    fn finished_at(&self, run: &str) -> Result<Option<String>>;
    fn list(&self) -> Result<Vec<Run>>;
    fn insert(&mut self, run: &Run, intent: i64, event: Value) -> Result<Event>;
    fn transition(&mut self, run: &Run, from: State, kind: &str, data: Value) -> Result<Event>;
    fn transition_clearing(
        &mut self,
        run: &Run,
        from: State,
        kind: &str,
        data: Value,
        intent: Option<i64>,
    ) -> Result<Event>;

    // Traces.
    fn add_trace(&mut self, run: &str, trace: &mut Trace) -> Result<()>;
    fn traces(&self, run: &str) -> Result<Vec<Trace>>;

    // Ledger events.
    fn event(&mut self, run: Option<&str>, kind: &str, data: Value) -> Result<Event>;
    /// Appends a frequent record as traces are appended: committed without
    /// waiting for the disk and not witnessed in the head record (the run's
    /// next decision flushes and witnesses it).
    fn record_event(&mut self, run: &str, kind: &str, data: Value) -> Result<Event>;
    fn events(&self, run: Option<&str>) -> Result<Vec<Event>>;
    fn events_of_kind(&self, kind: &str) -> Result<Vec<Event>>;
    /// Hands `visit` the runs `filter` selects with the events their
    /// promotion records are made of, a run's together (`airlock stats`).
    fn for_each_step(
        &self,
        filter: &crate::history::StepFilter,
        visit: &mut dyn FnMut(crate::history::StepRow<'_>),
    ) -> Result<()>;
    /// The last event's seq and hash.
    fn ledger_head(&self) -> Result<Option<(u64, String)>>;
    fn ledger_contains(&self, seq: u64, hash: &str) -> Result<bool>;
    fn verify_ledger(&self) -> Result<VerifyReport>;
    /// Appends an event that replaces the head record whatever it says
    /// (`ledger accept-loss`).
    fn event_replacing_head(&mut self, kind: &str, data: Value) -> Result<Event>;

    // Crash intents.
    fn begin_intent(&mut self, kind: &str, run: &str, data: Value) -> Result<(i64, IntentGuard)>;
    fn intent_lock(&self, token: &str) -> PathBuf;
    fn end_intent(&mut self, id: i64) -> Result<()>;
    fn intents(&self) -> Result<Vec<Intent>>;

    // The actions runs propose.
    /// A run's actions: those applied at promotion in plan order, then
    /// their compensations.
    fn actions(&self, run: &str) -> Result<Vec<Action>>;
    /// Stores an action's new state with its event, only if it is still in
    /// `from` (so two processes cannot both move it).
    fn save_action(
        &mut self,
        action: &Action,
        from: Option<ActionState>,
        kind: &str,
        event: Value,
    ) -> Result<()>;
    /// Replaces the action `name` of `run` (and its compensation) by
    /// `actions`, with the `propose` event `event(replaced)`, refused unless
    /// the run is still staged or checked.
    fn replace_actions(
        &mut self,
        run: &Run,
        name: &str,
        actions: &[Action],
        event: &dyn Fn(bool) -> Value,
    ) -> Result<()>;
    /// Drops the action `name` of `run` with a `withdraw` event; false when
    /// the run has none of that name.
    fn withdraw_action(&mut self, run: &str, name: &str) -> Result<bool>;

    // The review queue.
    /// The runs in review, as [`Store::list`] orders them, each with what
    /// the queue shows of it: in a few queries however many runs wait,
    /// rather than three a run.
    fn in_review(&self, kinds: &[&str]) -> Result<Vec<InReview>>;

    // Promotion leases (issue 20; see [`crate::lease`]).
    /// Takes (or renews, with the same token) the lease on `lease.target`
    /// unless another holder's is still live at `now_ms`: then that one is
    /// returned and nothing changes.
    fn take_lease(&mut self, lease: &crate::Lease, now_ms: i64) -> Result<Option<crate::Lease>>;
    /// Gives up the lease on `target` if `token` still holds it.
    fn release_lease(&mut self, target: &str, token: &str) -> Result<()>;
    /// The live lease on `target` at `now_ms`, if any.
    fn lease(&self, target: &str, now_ms: i64) -> Result<Option<crate::Lease>>;

    // The sealed log (issue 20): the chains' heads as leaves of a Merkle
    // tree whose signed checkpoints live on the team's git remote.
    /// Appends, under the store's lock and in one transaction, a leaf for
    /// every chain whose head moved since that chain's last leaf (in the
    /// order of the chains' names); returns how many leaves the log holds.
    fn seal(&mut self) -> Result<u64>;
    /// The log's leaves in order, each with the hash its event has now.
    fn log_leaves(&self) -> Result<Vec<LogLeaf>>;
    /// Every chain's head as the store records it: (chain, n, hash).
    fn chain_heads(&self) -> Result<Vec<(String, u64, String)>>;
    /// The hash of event `n` of `chain`, if it is stored.
    fn chain_event(&self, chain: &str, n: u64) -> Result<Option<String>>;
    /// Where this machine notes the events it appended and has not seen
    /// sealed (`crate::unsealed`); `None` for a store only this machine
    /// writes, whose head record covers them.
    fn unsealed_notes(&self) -> Option<PathBuf> {
        None
    }

    // Working offline (issue 20; see [`crate::spool`]).
    /// Whether `run`'s records made offline would flush (None) or conflict
    /// (what the run's chain is at now); a store no other machine writes
    /// has none.
    fn spool_standing(&self, run: &str) -> Result<Option<String>> {
        let _ = run;
        Ok(None)
    }
    /// Resolves `run`'s records made offline (`airlock ledger spool
    /// --resolve`).
    fn resolve_spool(
        &mut self,
        run: &str,
        how: &crate::spool::Resolution,
    ) -> Result<crate::spool::Resolved> {
        let _ = how;
        Err(crate::Error::Refused(
            airlock_model::error::Refusal::problem(
                crate::error::Code::InvalidInput,
                format!("run {run} has no records made offline to resolve"),
                vec!["records are made offline only for a shared PostgreSQL database".into()],
                "set AIRLOCK_DATABASE_URL to the database the records were made for",
            ),
        ))
    }
}

/// One leaf of the sealed log as the store keeps it ([`Store::log_leaves`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLeaf {
    /// Its position in the log, from 0.
    pub index: u64,
    /// The chain (a run's id, or `""`), the number of its event, and the
    /// event's hash when it was sealed.
    pub chain: String,
    pub n: u64,
    pub hash: String,
    /// The hash the event `n` of `chain` has in the store now (`None`:
    /// no such event is stored).
    pub event: Option<String>,
}

/// A run in review and what the review queue reads of it
/// ([`Store::in_review`]).
#[derive(Debug, Clone)]
pub struct InReview {
    pub run: Run,
    /// Its actions, as [`Store::actions`] orders them.
    pub actions: Vec<Action>,
    /// Its ledger events of the kinds asked for, in ledger order.
    pub events: Vec<Event>,
    /// Each of its traces' number and confinement (empty when the trace
    /// records none), in trace order.
    pub confinements: Vec<(u32, String)>,
}

/// Work that was begun and must be finished or undone if the process dies.
#[derive(Debug, Clone)]
pub struct Intent {
    pub id: i64,
    pub kind: String,
    pub run: String,
    pub data: Value,
}

/// The lock of a running intent. When the work ends normally, its lock file
/// is removed (while still held) so that finished work leaves no files;
/// after a crash the file stays and recovery removes it.
pub struct IntentGuard {
    pub(crate) _lock: FileLock,
    pub(crate) path: std::path::PathBuf,
}

impl IntentGuard {
    /// The guard of an intent whose lock, at `path`, is `lock` (for
    /// another crate's store).
    pub fn new(lock: FileLock, path: PathBuf) -> IntentGuard {
        IntentGuard { _lock: lock, path }
    }
}

impl Drop for IntentGuard {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}
