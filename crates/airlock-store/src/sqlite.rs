//! airlock's local state: run records, traces and crash intents, kept in the
//! same SQLite file as the ledger so that a state change and its ledger event
//! commit together or not at all.

use rusqlite::{OptionalExtension, TransactionBehavior, params};
use serde_json::{Value, json};

use airlock_ledger::{Event, Ledger, VerifyReport, append_in};
use airlock_model::action::{Action, ActionState};

use crate::Store;
use crate::interface::{InReview, Intent, IntentGuard};
use airlock_proof::{PublicKey, SigningKey};
use std::collections::HashMap;

use crate::error::{Error, Result};
use crate::lock::FileLock;
use crate::paths::Paths;
use airlock_model::run::{Run, State};
use airlock_model::trace::Trace;

pub struct SqliteStore {
    pub paths: Paths,
    pub ledger: Ledger,
    /// The signing key, loaded when a head record is first read or written.
    key: Option<SigningKey>,
}

impl SqliteStore {
    /// Opens (creating if needed) the state of the repository in `paths`,
    /// refusing a ledger that does not reach its head record (see
    /// [`crate::head`]): one older than what airlock has done.
    pub fn open(paths: &Paths) -> Result<SqliteStore> {
        let mut store = SqliteStore::open_unverified(paths)?;
        store.require_head(None)?;
        Ok(store)
    }

    /// [`SqliteStore::open`] without the head record's check, for the commands
    /// that report or settle it (`ledger verify`, `ledger accept-loss`).
    pub fn open_unverified(paths: &Paths) -> Result<SqliteStore> {
        // The ledger, worktrees, logs and proofs: this user's alone,
        // whatever the umask (an existing directory open to others is closed).
        crate::files::private_dir(&paths.state).map_err(|source| Error::Write {
            path: paths.state.clone(),
            source,
        })?;
        let ledger = Ledger::open(&paths.db_path())?;
        crate::schema::migrate(ledger.connection())?;
        Ok(SqliteStore {
            paths: paths.clone(),
            ledger,
            key: None,
        })
    }
}

impl crate::Store for SqliteStore {
    /// The repository's signing key, loaded once.
    fn signing_key(&mut self) -> Result<&SigningKey> {
        if self.key.is_none() {
            self.key = Some(SigningKey::load_or_create(&self.paths.key_dir)?.0);
        }
        Ok(self.key.as_ref().expect("just loaded"))
    }

    fn public_key(&mut self) -> Result<PublicKey> {
        Ok(self.signing_key()?.public())
    }

    /// How the ledger stands against its head record; with `verify`, the
    /// record's signature is checked as well.
    fn head_status(&mut self, verify: bool) -> Result<crate::head::HeadStatus> {
        let SqliteStore { paths, ledger, key } = self;
        crate::head::status(paths, &*ledger, || {
            if !verify {
                return Ok(None);
            }
            if key.is_none() {
                *key = Some(SigningKey::load_or_create(&paths.key_dir)?.0);
            }
            Ok(key.as_ref().map(SigningKey::public))
        })
    }

    /// Refuses a ledger that does not reach its head record; with `doing`
    /// (an irreversible step, e.g. "roll back run X"), also one whose
    /// record is missing or not signed by the repository's key, and so
    /// cannot prove it is not older than what was done.
    fn require_head(&mut self, doing: Option<&str>) -> Result<()> {
        let status = self.head_status(doing.is_some())?;
        crate::head::require(&self.paths, &status, doing)
    }

    /// Records `event`, just committed in full, as the ledger's head, so
    /// that a ledger restored from before it is refused. Called after every
    /// commit made in full, before the command goes on.
    fn witness(&mut self, event: &Event) -> Result<()> {
        self.signing_key()?;
        let key = self.key.as_ref().expect("loaded");
        crate::head::advance(&self.paths, &self.ledger, key, event)
    }

    /// Records `event` as the head whatever the record said before
    /// (`airlock ledger accept-loss`).
    fn witness_replacing(&mut self, event: &Event) -> Result<()> {
        self.signing_key()?;
        let key = self.key.as_ref().expect("loaded");
        crate::head::replace(&self.paths, &self.ledger, key, event)
    }

    fn get(&self, id: &str) -> Result<Run> {
        let data: Option<String> = self
            .ledger
            .connection()
            .prepare_cached("SELECT data FROM runs WHERE id = ?1")?
            .query_row([id], |r| r.get(0))
            .optional()?;
        let data = data.ok_or_else(|| Error::UnknownRun(id.to_string()))?;
        serde_json::from_str(&data)
            .map_err(|e| Error::Corrupt(format!("the record of run {id} is unreadable: {e}")))
    }

    fn exists(&self, id: &str) -> Result<bool> {
        Ok(self
            .ledger
            .connection()
            .query_row("SELECT 1 FROM runs WHERE id = ?1", [id], |_| Ok(()))
            .optional()?
            .is_some())
    }

    /// The ids of runs that start with `prefix`, sorted.
    fn ids_with_prefix(&self, prefix: &str) -> Result<Vec<String>> {
        let conn = self.ledger.connection();
        let mut stmt = conn.prepare_cached(
            "SELECT id FROM runs WHERE substr(id, 1, length(?1)) = ?1 ORDER BY id",
        )?;
        let ids = stmt
            .query_map([prefix], |r| r.get::<_, String>(0))?
            .collect::<rusqlite::Result<Vec<String>>>()?;
        Ok(ids)
    }

    /// When the run reached the state it is in: its last ledger event,
    /// `gc`'s own left out.
    fn finished_at(&self, run: &str) -> Result<Option<String>> {
        Ok(self.ledger.connection().query_row(
            "SELECT max(ts) FROM events WHERE run = ?1 AND kind != 'collected'",
            [run],
            |r| r.get(0),
        )?)
    }

    /// All runs, oldest first.
    fn list(&self) -> Result<Vec<Run>> {
        let conn = self.ledger.connection();
        let mut stmt = conn.prepare("SELECT id, data FROM runs ORDER BY created, id")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
        let mut runs = Vec::new();
        for row in rows {
            let (id, data) = row?;
            runs.push(serde_json::from_str(&data).map_err(|e| {
                Error::Corrupt(format!("the record of run {id} is unreadable: {e}"))
            })?);
        }
        Ok(runs)
    }

    /// Records a new run and its `start` event, and clears the intent that
    /// guarded its creation.
    fn insert(&mut self, run: &Run, intent: i64, event: Value) -> Result<Event> {
        let tx = self
            .ledger
            .connection_mut()
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute(
            "INSERT INTO runs (id, state, created, data, class) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                run.id,
                run.state.as_str(),
                run.created,
                to_json(run),
                run.class
            ],
        )?;
        tx.execute("DELETE FROM intents WHERE id = ?1", [intent])?;
        let event = append_in(&tx, Some(&run.id), "start", &event)?;
        tx.commit()?;
        self.witness(&event)?;
        Ok(event)
    }

    /// Moves a run from `from` to the state in `run`, with its ledger event,
    /// atomically. Refuses if another process moved the run meanwhile.
    fn transition(&mut self, run: &Run, from: State, kind: &str, data: Value) -> Result<Event> {
        self.transition_clearing(run, from, kind, data, None)
    }

    fn transition_clearing(
        &mut self,
        run: &Run,
        from: State,
        kind: &str,
        data: Value,
        intent: Option<i64>,
    ) -> Result<Event> {
        let tx = self
            .ledger
            .connection_mut()
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let changed = tx.execute(
            "UPDATE runs SET state = ?1, data = ?2 WHERE id = ?3 AND state = ?4",
            params![run.state.as_str(), to_json(run), run.id, from.as_str()],
        )?;
        if changed == 0 {
            return Err(Error::refused(
                crate::error::Code::ConcurrentChange,
                format!("run {} changed while this command ran", run.id),
                vec![format!("it is no longer {from}")],
                format!("see `airlock show {}` and try again", run.id),
            ));
        }
        if let Some(id) = intent {
            tx.execute("DELETE FROM intents WHERE id = ?1", [id])?;
        }
        let mut data = data;
        if let Value::Object(map) = &mut data {
            map.insert("from".into(), json!(from.as_str()));
            map.insert("to".into(), json!(run.state.as_str()));
        }
        let event = append_in(&tx, Some(&run.id), kind, &data)?;
        crate::history::note_step(&tx, &event)?;
        tx.commit()?;
        self.witness(&event)?;
        Ok(event)
    }

    /// Records a trace and its ledger event, numbering it in the same
    /// transaction so that parallel commands of one run never collide.
    /// Records a trace and its event. Traces are committed without waiting
    /// for the disk (see [`Ledger::with_relaxed_sync`]): a command's record
    /// costs no flush, and the run's next decision flushes it.
    /// Stores `trace` as the run's next trace and appends its event. Once
    /// only: a trace whose stdout log (the command's own file) is already
    /// stored gets that trace's number, and nothing is added, so a trace
    /// handed over twice (a ledger server that answered too late) is kept
    /// once.
    fn add_trace(&mut self, run: &str, trace: &mut Trace) -> Result<()> {
        self.ledger.with_relaxed_sync(|conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            // Cached: the ledger server stores trace after trace.
            let stored: Option<u32> = tx
                .prepare_cached(
                    "SELECT n FROM traces WHERE run = ?1 AND json_extract(data, '$.stdout.log') = ?2",
                )?
                .query_row(
                    params![run, trace.stdout.log.to_string_lossy()],
                    |r| r.get(0),
                )
                .optional()?;
            if let Some(n) = stored {
                trace.n = n;
                return Ok(());
            }
            // Only a run that runs commands gets traces: one handed over
            // once the run is submitted or decided would sit beside the
            // evidence the reviewer saw.
            let state: Option<String> = tx
                .prepare_cached("SELECT state FROM runs WHERE id = ?1")?
                .query_row([run], |r| r.get(0))
                .optional()?;
            let state = state
                .as_deref()
                .and_then(State::parse)
                .ok_or_else(|| Error::UnknownRun(run.to_string()))?;
            if !crate::TRACED.contains(&state) {
                return Err(Error::WrongState {
                    run: run.to_string(),
                    state,
                    command: "exec",
                    needed: "staged or checked".into(),
                    next: state.next_step(run),
                });
            }
            let last: Option<u32> = tx
                .prepare_cached("SELECT MAX(n) FROM traces WHERE run = ?1")?
                .query_row([run], |r| r.get(0))?;
            trace.n = last.unwrap_or(0) + 1;
            // The connections go to their own table; the trace's row keeps
            // the rest, and `traces` puts them back together.
            let connections = std::mem::take(&mut trace.connections);
            let data = to_json(&*trace);
            trace.connections = connections;
            tx.prepare_cached("INSERT INTO traces (run, n, data) VALUES (?1, ?2, ?3)")?
                .execute(params![run, trace.n, data])?;
            for (seq, c) in trace.connections.iter().enumerate() {
                tx.prepare_cached(
                    "INSERT INTO connections (run, n, seq, host, port, outcome, data) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )?
                .execute(params![
                    run,
                    trace.n,
                    seq as i64,
                    c.host,
                    c.port,
                    c.outcome,
                    to_json(c)
                ])?;
            }
            append_in(
                &tx,
                Some(run),
                "exec",
                &serde_json::to_value(&*trace).unwrap_or(Value::Null),
            )?;
            tx.commit()?;
            Ok(())
        })
    }

    fn traces(&self, run: &str) -> Result<Vec<Trace>> {
        let conn = self.ledger.connection();
        let mut stmt = conn.prepare("SELECT data FROM traces WHERE run = ?1 ORDER BY n")?;
        let rows = stmt.query_map([run], |r| r.get::<_, String>(0))?;
        let mut out: Vec<Trace> = Vec::new();
        for row in rows {
            out.push(
                serde_json::from_str(&row?)
                    .map_err(|e| Error::Corrupt(format!("unreadable trace: {e}")))?,
            );
        }
        let mut stmt =
            conn.prepare_cached("SELECT n, data FROM connections WHERE run = ?1 ORDER BY n, seq")?;
        let rows = stmt.query_map([run], |r| Ok((r.get::<_, u32>(0)?, r.get::<_, String>(1)?)))?;
        for row in rows {
            let (n, data) = row?;
            let connection = serde_json::from_str(&data)
                .map_err(|e| Error::Corrupt(format!("unreadable connection of trace {n}: {e}")))?;
            if let Some(trace) = out.iter_mut().find(|t| t.n == n) {
                trace.connections.push(connection);
            }
        }
        Ok(out)
    }

    /// Records an event with no state change (e.g. a failed check).
    fn event(&mut self, run: Option<&str>, kind: &str, data: Value) -> Result<Event> {
        let tx = self
            .ledger
            .connection_mut()
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let event = append_in(&tx, run, kind, &data)?;
        crate::history::note_step(&tx, &event)?;
        tx.commit()?;
        self.witness(&event)?;
        Ok(event)
    }

    fn record_event(&mut self, run: &str, kind: &str, data: Value) -> Result<Event> {
        self.ledger.with_relaxed_sync(|conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let event = append_in(&tx, Some(run), kind, &data)?;
            crate::history::note_step(&tx, &event)?;
            tx.commit()?;
            Ok(event)
        })
    }

    /// Records work about to begin. The returned lock is held while the work
    /// runs; recovery treats an intent whose lock it can take as abandoned by
    /// a process that died. The lock exists before the intent row does.
    fn begin_intent(&mut self, kind: &str, run: &str, data: Value) -> Result<(i64, IntentGuard)> {
        use rand_core::RngCore;
        let token = format!("{:016x}", rand_core::OsRng.next_u64());
        let path = self.intent_lock(&token);
        let lock = FileLock::acquire(&path, false)?
            .ok_or_else(|| Error::Environment("could not take a fresh intent lock".into()))?;
        let lock = IntentGuard { _lock: lock, path };
        let mut data = data;
        if let Value::Object(map) = &mut data {
            map.insert("token".into(), json!(token));
        }
        let conn = self.ledger.connection();
        conn.execute(
            "INSERT INTO intents (kind, run, data) VALUES (?1, ?2, ?3)",
            params![kind, run, data.to_string()],
        )?;
        Ok((conn.last_insert_rowid(), lock))
    }

    fn intent_lock(&self, token: &str) -> std::path::PathBuf {
        self.paths.state.join("locks").join(format!("{token}.lock"))
    }

    fn end_intent(&mut self, id: i64) -> Result<()> {
        self.ledger
            .connection()
            .execute("DELETE FROM intents WHERE id = ?1", [id])?;
        Ok(())
    }

    fn intents(&self) -> Result<Vec<Intent>> {
        let conn = self.ledger.connection();
        // Cached: every exec asks (recovery runs first), often of the ledger server.
        let mut stmt =
            conn.prepare_cached("SELECT id, kind, run, data FROM intents ORDER BY id")?;
        let rows = stmt.query_map([], |r| {
            Ok(Intent {
                id: r.get(0)?,
                kind: r.get(1)?,
                run: r.get(2)?,
                data: serde_json::from_str(&r.get::<_, String>(3)?).unwrap_or(Value::Null),
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn paths(&self) -> &Paths {
        &self.paths
    }

    fn schema_cookie(&self) -> Option<i64> {
        self.ledger
            .connection()
            .prepare_cached("PRAGMA schema_version")
            .and_then(|mut stmt| stmt.query_row([], |r| r.get(0)))
            .ok()
    }

    fn events(&self, run: Option<&str>) -> Result<Vec<Event>> {
        Ok(self.ledger.events(run)?)
    }

    fn events_of_kind(&self, kind: &str) -> Result<Vec<Event>> {
        Ok(self
            .ledger
            .events(None)?
            .into_iter()
            .filter(|e| e.kind == kind)
            .collect())
    }

    fn for_each_step(
        &self,
        filter: &crate::history::StepFilter,
        visit: &mut dyn FnMut(crate::history::StepRow<'_>),
    ) -> Result<()> {
        crate::history::for_each_step(self.ledger.connection(), filter, visit)
    }

    fn ledger_head(&self) -> Result<Option<(u64, String)>> {
        Ok(self.ledger.head()?)
    }

    fn ledger_contains(&self, seq: u64, hash: &str) -> Result<bool> {
        Ok(self.ledger.contains(seq, hash)?)
    }

    fn verify_ledger(&self) -> Result<VerifyReport> {
        Ok(self.ledger.verify()?)
    }

    fn seal(&mut self) -> Result<u64> {
        let conn = self.ledger.connection_mut();
        // IMMEDIATE: the write lock is the seal's lock.
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let head: Option<(i64, String)> = tx
            .query_row(
                "SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let (count, sealed): (i64, Option<i64>) = tx.query_row(
            "SELECT count(*), max(n) FROM log_leaves WHERE chain = ''",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        let mut total = count;
        if let Some((seq, hash)) = head
            && sealed.is_none_or(|n| seq > n)
        {
            tx.execute(
                "INSERT INTO log_leaves (idx, chain, n, hash) VALUES (?1, '', ?2, ?3)",
                params![count, seq, hash],
            )?;
            total += 1;
        }
        tx.commit()?;
        Ok(total as u64)
    }

    fn log_leaves(&self) -> Result<Vec<crate::LogLeaf>> {
        let conn = self.ledger.connection();
        let mut stmt = conn.prepare(
            "SELECT l.idx, l.chain, l.n, l.hash, e.hash FROM log_leaves l
             LEFT JOIN events e ON l.chain = '' AND e.seq = l.n
             ORDER BY l.idx",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(crate::LogLeaf {
                index: r.get::<_, i64>(0)? as u64,
                chain: r.get(1)?,
                n: r.get::<_, i64>(2)? as u64,
                hash: r.get(3)?,
                event: r.get(4)?,
            })
        })?;
        Ok(rows.collect::<std::result::Result<Vec<_>, _>>()?)
    }

    fn chain_heads(&self) -> Result<Vec<(String, u64, String)>> {
        Ok(self
            .ledger
            .head()?
            .map(|(seq, hash)| (String::new(), seq, hash))
            .into_iter()
            .collect())
    }

    fn chain_event(&self, chain: &str, n: u64) -> Result<Option<String>> {
        if !chain.is_empty() {
            return Ok(None);
        }
        let Ok(seq) = i64::try_from(n) else {
            return Ok(None);
        };
        Ok(self
            .ledger
            .connection()
            .query_row("SELECT hash FROM events WHERE seq = ?1", [seq], |r| {
                r.get(0)
            })
            .optional()?)
    }

    fn event_replacing_head(&mut self, kind: &str, data: Value) -> Result<Event> {
        let event = self.ledger.append(None, kind, &data)?;
        self.witness_replacing(&event)?;
        Ok(event)
    }

    fn actions(&self, run: &str) -> Result<Vec<Action>> {
        crate::actions::list(&self.ledger, run)
    }

    fn save_action(
        &mut self,
        action: &Action,
        from: Option<ActionState>,
        kind: &str,
        event: Value,
    ) -> Result<()> {
        let event = crate::actions::save(&mut self.ledger, action, from, kind, event)?;
        // Before anything it announces leaves the machine.
        self.witness(&event)
    }

    fn replace_actions(
        &mut self,
        run: &Run,
        name: &str,
        actions: &[Action],
        event: &dyn Fn(bool) -> Value,
    ) -> Result<()> {
        let event = crate::actions::replace(&mut self.ledger, run, name, actions, event)?;
        self.witness(&event)
    }

    fn in_review(&self, kinds: &[&str]) -> Result<Vec<InReview>> {
        const IN_REVIEW: &str = "SELECT id FROM runs WHERE state = 'in_review'";
        let conn = self.ledger.connection();
        // One snapshot for the four queries: a run decided meanwhile is
        // either wholly in the queue or not in it.
        let tx = conn.unchecked_transaction()?;
        let mut queue: Vec<InReview> = Vec::new();
        let mut at: HashMap<String, usize> = HashMap::new();
        let mut stmt = conn
            .prepare("SELECT id, data FROM runs WHERE state = 'in_review' ORDER BY created, id")?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            let (id, data): (String, String) = (row.get(0)?, row.get(1)?);
            let run: Run = serde_json::from_str(&data).map_err(|e| {
                Error::Corrupt(format!("the record of run {id} is unreadable: {e}"))
            })?;
            at.insert(id, queue.len());
            queue.push(InReview {
                run,
                actions: Vec::new(),
                events: Vec::new(),
                confinements: Vec::new(),
            });
        }
        if queue.is_empty() {
            return Ok(queue);
        }
        let mut stmt = conn.prepare(&format!(
            "SELECT run, data FROM actions WHERE run IN ({IN_REVIEW}) ORDER BY run, role = 'undo', seq"
        ))?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            let (run, data): (String, String) = (row.get(0)?, row.get(1)?);
            let action = serde_json::from_str(&data).map_err(|e| {
                Error::Corrupt(format!("an action of run {run} is unreadable: {e}"))
            })?;
            if let Some(&i) = at.get(&run) {
                queue[i].actions.push(action);
            }
        }
        let mut stmt = conn.prepare(&format!(
            "SELECT run, json_extract(data, '$.n'), json_extract(data, '$.confinement')
             FROM traces WHERE run IN ({IN_REVIEW}) ORDER BY run, n"
        ))?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            let run: String = row.get(0)?;
            let n: Option<u32> = row.get(1).ok().flatten();
            let confinement: Option<String> = row.get(2).ok().flatten();
            let Some(n) = n else {
                return Err(Error::Corrupt(format!(
                    "a trace of run {run} is unreadable: it has no number"
                )));
            };
            if let Some(&i) = at.get(&run) {
                queue[i]
                    .confinements
                    .push((n, confinement.unwrap_or_default()));
            }
        }
        if !kinds.is_empty() {
            let placeholders = (1..=kinds.len())
                .map(|i| format!("?{i}"))
                .collect::<Vec<_>>()
                .join(", ");
            let events = self.ledger.events_where(
                &format!("run IN ({IN_REVIEW}) AND kind IN ({placeholders})"),
                rusqlite::params_from_iter(kinds),
            )?;
            for event in events {
                if let Some(&i) = event.run.as_ref().and_then(|r| at.get(r)) {
                    queue[i].events.push(event);
                }
            }
        }
        tx.commit()?;
        Ok(queue)
    }

    fn take_lease(&mut self, lease: &crate::Lease, now_ms: i64) -> Result<Option<crate::Lease>> {
        crate::lease::sqlite_take(self.ledger.connection(), lease, now_ms)
    }

    fn release_lease(&mut self, target: &str, token: &str) -> Result<()> {
        crate::lease::sqlite_release(self.ledger.connection(), target, token)
    }

    fn lease(&self, target: &str, now_ms: i64) -> Result<Option<crate::Lease>> {
        crate::lease::sqlite_get(self.ledger.connection(), target, now_ms)
    }

    fn withdraw_action(&mut self, run: &str, name: &str) -> Result<bool> {
        match crate::actions::withdraw(&mut self.ledger, run, name)? {
            Some(event) => {
                self.witness(&event)?;
                Ok(true)
            }
            None => Ok(false),
        }
    }
}

fn to_json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "null".into())
}
