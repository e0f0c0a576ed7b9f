//! airlock's store on PostgreSQL ([`PgStore`]): the same
//! [`airlock_store::Store`] as SQLite's, for a team that points airlock at
//! one database (`AIRLOCK_DATABASE_URL=postgres://…`).
//!
//! Every change commits with its ledger event in one transaction. The
//! ledger's events are hash-chained per run: an appender locks its run's
//! chain head (a row of `chains`) only, so appenders on different runs do
//! not wait for each other. The runs' heads are sealed into one global
//! log (`seal`: its leaves; airlock_core::seal signs and publishes its
//! checkpoints), so that a database administrator cannot drop a run's tail
//! or rewrite a chain unnoticed.
//!
//! What stays on the machine: the signing key and the ledger's head record
//! (files in the key directory, as with SQLite), the crash intents' locks,
//! and worktrees, logs and proofs under the state directory. The database
//! never holds a key.

mod lease;
mod pgpass;
mod schema;
pub mod seal;
mod spool;
#[cfg(feature = "testing")]
pub mod testing;
mod tls;

use std::cell::RefCell;
use std::collections::HashMap;
use std::str::FromStr;

use postgres::{Client, NoTls, Statement, Transaction};
use serde_json::{Value, json};

use airlock_ledger::{BadEvent, Event, GENESIS, Head, HeadCheck, VerifyReport, hash_event};
use airlock_model::action::{Action, ActionState};
use airlock_model::error::Refusal;
use airlock_model::run::{Run, State};
use airlock_model::trace::Trace;
use airlock_proof::{PublicKey, SigningKey};
use airlock_store::actions::{role_key, state_key};
use airlock_store::error::{Code, Error, Result};
use airlock_store::head::{Chain, HeadStatus};
use airlock_store::history::{STEP_KINDS, Step, StepFilter, StepRow};
use airlock_store::lock::FileLock;
use airlock_store::{InReview, Intent, IntentGuard, Paths, Store};

pub use schema::{MIGRATION_LOCK, VERSION as SCHEMA_VERSION};

/// The environment variable that points airlock at PostgreSQL.
pub const DATABASE_URL: &str = "AIRLOCK_DATABASE_URL";

/// Opens the store at `url` for the engine (what the `airlock` binary
/// installs with `airlock_core::store_backend::install`); `verified`
/// checks the ledger's head record.
pub fn open(url: &str, paths: &Paths, verified: bool) -> Result<Box<dyn Store>> {
    Ok(Box::new(if verified {
        PgStore::open(url, paths)?
    } else {
        PgStore::open_unverified(url, paths)?
    }))
}

/// The store in a PostgreSQL database.
pub struct PgStore {
    paths: Paths,
    client: RefCell<Client>,
    /// The database as messages name it (no password).
    location: String,
    /// Which machine's state this is: its intents, its head record marker.
    machine: String,
    statements: Statements,
    key: Option<SigningKey>,
    /// The ledger's first event's hash once there is one (it never
    /// changes), and this machine's values once set: asked at every
    /// witnessed event otherwise.
    identity: RefCell<Option<String>>,
    kept_meta: RefCell<HashMap<String, String>>,
}

/// The statements every append runs, prepared once per connection.
struct Statements {
    lock_chain: Statement,
    /// Inserts the event and advances its chain's head, in one round trip.
    insert_event: Statement,
    /// The whole append in one statement, committed on its own: see
    /// [`append_alone`].
    append_alone: Statement,
}

/// An event appended to a chain that exists, by one statement: the chain's
/// row locked (`FOR UPDATE`: under a concurrent appender, the version it
/// committed), the event numbered after it, its hash computed by the
/// server in the ledger's encoding (`airlock_ledger::hash_event`: the
/// domain tag, `seq` in 8 bytes big-endian, then `ts`, `run` after a 0 or 1
/// byte, `kind`, `data` and `prev`, each after its length in 8 bytes
/// big-endian, as UTF-8), the event inserted and the row advanced. No row
/// when the chain has none yet.
const APPEND_ALONE: &str = "WITH head AS (
        SELECT n, hash FROM chains WHERE chain = $1 FOR UPDATE
    ), next AS (
        SELECT nextval('events_seq') AS seq, n + 1 AS n, hash AS prev FROM head
    ), hashed AS (
        SELECT seq, n, prev, encode(sha256(
            convert_to(E'airlock-ledger/v1\\n', 'UTF8') || int8send(seq)
            || int8send(octet_length(convert_to($2::text, 'UTF8'))::bigint)
            || convert_to($2::text, 'UTF8')
            || CASE WHEN $3::text IS NULL THEN '\\x00'::bytea
                    ELSE '\\x01'::bytea
                        || int8send(octet_length(convert_to($3::text, 'UTF8'))::bigint)
                        || convert_to($3::text, 'UTF8') END
            || int8send(octet_length(convert_to($4::text, 'UTF8'))::bigint)
            || convert_to($4::text, 'UTF8')
            || int8send(octet_length(convert_to($5::text, 'UTF8'))::bigint)
            || convert_to($5::text, 'UTF8')
            || int8send(octet_length(convert_to(prev, 'UTF8'))::bigint)
            || convert_to(prev, 'UTF8')
        ), 'hex') AS hash FROM next
    ), moved AS (
        UPDATE chains SET n = hashed.n, hash = hashed.hash FROM hashed WHERE chain = $1
    )
    INSERT INTO events (seq, chain, n, ts, run, kind, data, prev, hash)
    SELECT seq, $1, n, $2::text, $3::text, $4::text, $5::text, prev, hash FROM hashed
    RETURNING seq, prev, hash";

impl PgStore {
    /// Whether no event in the database names this machine (its key's
    /// fingerprint, as every event's `who.machine` does): it never wrote here.
    /// Unknown who (no identity set) counts as not new.
    fn new_to_database(&self) -> Result<bool> {
        let Some(machine) = airlock_ledger::who()
            .and_then(|w| {
                w.get("machine")
                    .and_then(|m| m.as_str().map(str::to_string))
            })
            .filter(|m| m.starts_with("SHA256:") && m.len() > 20)
        else {
            return Ok(false);
        };
        Ok(self
            .query(
                "SELECT 1 FROM events WHERE strpos(data, $1) > 0 LIMIT 1",
                &[&machine],
            )?
            .is_empty())
    }

    /// Connects to the database at `url`, brings its schema up to date, and
    /// refuses a ledger that does not reach this machine's head record.
    pub fn open(url: &str, paths: &Paths) -> Result<PgStore> {
        let mut store = PgStore::open_unverified(url, paths)?;
        store.require_head(None)?;
        Ok(store)
    }

    /// [`PgStore::open`] without the head record's check (`ledger verify`,
    /// `ledger accept-loss`).
    pub fn open_unverified(url: &str, paths: &Paths) -> Result<PgStore> {
        let (url, tls) = tls::split(url)?;
        let mut config = postgres::Config::from_str(&url).map_err(|e| {
            problem(
                Code::DatabaseUrlInvalid,
                format!("{DATABASE_URL} is not a PostgreSQL URL airlock can use"),
                vec![e.to_string()],
                format!(
                    "give postgres://USER:PASSWORD@HOST:PORT/DATABASE, or unset {DATABASE_URL} to use the local SQLite store"
                ),
            )
        })?;
        pgpass::fill(&mut config);
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(std::time::Duration::from_secs(10));
        }
        let location = describe(&config);
        let mut client = if tls.tls {
            config.ssl_mode(postgres::config::SslMode::Require);
            config.connect(tls::connector(&tls)?)
        } else {
            config.connect(NoTls)
        }
        .map_err(|e| connect_error(&location, e))?;
        schema::migrate(&mut client, &location)?;
        let statements = Statements {
            lock_chain: client
                .prepare(
                    "INSERT INTO chains (chain, n, hash) VALUES ($1, 0, $2)
                     ON CONFLICT (chain) DO UPDATE SET chain = EXCLUDED.chain
                     RETURNING n, hash, nextval('events_seq')",
                )
                .map_err(database_error)?,
            insert_event: client
                .prepare(
                    "WITH appended AS (
                         INSERT INTO events (seq, chain, n, ts, run, kind, data, prev, hash)
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                     )
                     UPDATE chains SET n = $3, hash = $9 WHERE chain = $2",
                )
                .map_err(database_error)?,
            append_alone: client.prepare(APPEND_ALONE).map_err(database_error)?,
        };
        // The worktrees, logs, proofs and intent locks stay local.
        airlock_store::files::private_dir(&paths.state).map_err(|source| Error::Write {
            path: paths.state.clone(),
            source,
        })?;
        let host = rustix::system::uname()
            .nodename()
            .to_string_lossy()
            .into_owned();
        let store = PgStore {
            machine: format!("{host}:{}", paths.state.display()),
            paths: paths.clone(),
            client: RefCell::new(client),
            location,
            statements,
            key: None,
            identity: RefCell::new(None),
            kept_meta: RefCell::new(HashMap::new()),
        };
        // What this machine recorded while the database was out of reach
        // (not when the command shows and resolves it: `ledger spool`).
        if !airlock_store::spool::flush_deferred() {
            spool::flush(&store)?;
        }
        Ok(store)
    }

    /// The database as messages name it: user, host, port and name, never
    /// the password.
    pub fn location(&self) -> &str {
        &self.location
    }

    /// Runs `work` in one transaction, committed when it returns Ok and
    /// rolled back otherwise. `relaxed` commits without waiting for the
    /// server's disk (command traces, see [`Store::record_event`]).
    fn in_transaction<T>(
        &self,
        relaxed: bool,
        work: impl FnOnce(&mut Transaction<'_>, &Statements) -> Result<T>,
    ) -> Result<T> {
        let mut client = self.client.borrow_mut();
        let mut tx = client.transaction().map_err(database_error)?;
        if relaxed {
            tx.batch_execute("SET LOCAL synchronous_commit = off")
                .map_err(database_error)?;
        }
        let value = work(&mut tx, &self.statements)?;
        tx.commit().map_err(database_error)?;
        Ok(value)
    }

    fn query(
        &self,
        sql: &str,
        params: &[&(dyn postgres::types::ToSql + Sync)],
    ) -> Result<Vec<postgres::Row>> {
        self.client
            .borrow_mut()
            .query(sql, params)
            .map_err(database_error)
    }

    /// Appends an event by one statement, committed alone (one round trip
    /// where a transaction takes four), when its chain exists and the event
    /// needs nothing else written with it (no promotion step); `None`
    /// otherwise, for [`append_in`] to do it. The server's hash is checked
    /// against the ledger's own before the event is returned.
    fn append_alone(&self, run: Option<&str>, kind: &str, data: &Value) -> Result<Option<Event>> {
        if kind.trim().is_empty() || run.is_some() && STEP_KINDS.contains(&kind) {
            return Ok(None);
        }
        // Who acted, as every event names it (see `append_in`).
        let data: &Value = &airlock_ledger::with_who(data);
        let data_text = serde_json::to_string(data).map_err(airlock_ledger::LedgerError::from)?;
        let chain = run.unwrap_or("");
        let ts = airlock_model::run::now();
        let rows = self
            .client
            .borrow_mut()
            .query(
                &self.statements.append_alone,
                &[&chain, &ts, &run, &kind, &data_text],
            )
            .map_err(database_error)?;
        let Some(row) = rows.first() else {
            return Ok(None);
        };
        let (seq, prev, hash): (i64, String, String) = (row.get(0), row.get(1), row.get(2));
        let ours = hash_event(seq as u64, &ts, run, kind, &data_text, &prev);
        if ours != hash {
            return Err(Error::Corrupt(format!(
                "the database hashed event {seq} as {hash:.16}…, the ledger's encoding gives {ours:.16}…; `airlock ledger verify` names it"
            )));
        }
        Ok(Some(Event {
            seq: seq as u64,
            ts,
            run: run.map(str::to_owned),
            kind: kind.to_owned(),
            data: data.clone(),
            prev,
            hash,
        }))
    }

    fn witnessed(&mut self, event: Event) -> Result<Event> {
        self.witness(&event)?;
        Ok(event)
    }
}

/// [`Store::add_trace`] in the caller's transaction.
fn add_trace_in(
    tx: &mut Transaction<'_>,
    st: &Statements,
    run: &str,
    trace: &mut Trace,
) -> Result<()> {
    let state: Option<String> = tx
        .query_opt("SELECT state FROM runs WHERE id = $1 FOR UPDATE", &[&run])
        .map_err(database_error)?
        .map(|r| r.get(0));
    let log = trace.stdout.log.to_string_lossy().into_owned();
    let stored = tx
        .query_opt(
            "SELECT n FROM traces WHERE run = $1 AND log = $2",
            &[&run, &log],
        )
        .map_err(database_error)?;
    if let Some(row) = stored {
        trace.n = row.get::<_, i32>(0) as u32;
        return Ok(());
    }
    let state = state
        .as_deref()
        .and_then(State::parse)
        .ok_or_else(|| Error::UnknownRun(run.to_string()))?;
    if !airlock_store::TRACED.contains(&state) {
        return Err(Error::WrongState {
            run: run.to_string(),
            state,
            command: "exec",
            needed: "staged or checked".into(),
            next: state.next_step(run),
        });
    }
    let last: Option<i32> = tx
        .query_one("SELECT max(n) FROM traces WHERE run = $1", &[&run])
        .map_err(database_error)?
        .get(0);
    trace.n = last.unwrap_or(0) as u32 + 1;
    let connections = std::mem::take(&mut trace.connections);
    let data = to_json(&*trace);
    trace.connections = connections;
    tx.execute(
        "INSERT INTO traces (run, n, log, data) VALUES ($1, $2, $3, $4)",
        &[&run, &(trace.n as i32), &log, &data],
    )
    .map_err(database_error)?;
    for (seq, c) in trace.connections.iter().enumerate() {
        tx.execute(
            "INSERT INTO connections (run, n, seq, host, port, outcome, data)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            &[
                &run,
                &(trace.n as i32),
                &(seq as i32),
                &c.host,
                &i32::from(c.port),
                &c.outcome,
                &to_json(c),
            ],
        )
        .map_err(database_error)?;
    }
    append_in(
        tx,
        st,
        Some(run),
        "exec",
        &serde_json::to_value(&*trace).unwrap_or(Value::Null),
    )?;
    Ok(())
}

/// Appends an event to its run's chain (or, for an event of no run, the
/// chain of such events) in the caller's transaction: the chain's head row
/// is locked until the transaction ends, so a run's events are numbered
/// without gaps and other runs' appenders go on.
fn append_in(
    tx: &mut Transaction<'_>,
    statements: &Statements,
    run: Option<&str>,
    kind: &str,
    data: &Value,
) -> Result<Event> {
    if kind.trim().is_empty() {
        return Err(airlock_ledger::LedgerError::InvalidEvent(
            "the event kind is empty; pass a kind such as `run.created`".into(),
        )
        .into());
    }
    let data: &Value = &airlock_ledger::with_who(data);
    let data_text = serde_json::to_string(data).map_err(airlock_ledger::LedgerError::from)?;
    let chain = run.unwrap_or("");
    let head = tx
        .query_one(&statements.lock_chain, &[&chain, &GENESIS])
        .map_err(database_error)?;
    let (last, prev, seq): (i64, String, i64) = (head.get(0), head.get(1), head.get(2));
    let n = last + 1;
    let ts = airlock_model::run::now();
    let hash = hash_event(seq as u64, &ts, run, kind, &data_text, &prev);
    tx.execute(
        &statements.insert_event,
        &[&seq, &chain, &n, &ts, &run, &kind, &data_text, &prev, &hash],
    )
    .map_err(database_error)?;
    let event = Event {
        seq: seq as u64,
        ts,
        run: run.map(str::to_owned),
        kind: kind.to_owned(),
        data: data.clone(),
        prev,
        hash,
    };
    note_step(tx, &event)?;
    Ok(event)
}

/// Keeps `event` in `run_steps` when it is one a promotion record is made
/// of (see `airlock_store::history`).
fn note_step(tx: &mut Transaction<'_>, event: &Event) -> Result<()> {
    let Some(run) = event.run.as_deref() else {
        return Ok(());
    };
    if !STEP_KINDS.contains(&event.kind.as_str()) {
        return Ok(());
    }
    let failure = (event.kind == "check")
        .then(|| event.data["failure"].as_str())
        .flatten();
    tx.execute(
        "INSERT INTO run_steps (seq, run, kind, at, failure) VALUES ($1, $2, $3, $4, $5)",
        &[
            &(event.seq as i64),
            &run,
            &event.kind,
            &millis(&event.ts),
            &failure,
        ],
    )
    .map_err(database_error)?;
    Ok(())
}

/// Milliseconds since the epoch of an RFC 3339 time (0 if unreadable).
fn millis(ts: &str) -> i64 {
    humantime::parse_rfc3339(ts)
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_millis() as i64)
}

fn to_json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "null".into())
}

fn event_from_row(row: &postgres::Row) -> Result<Event> {
    let seq: i64 = row.get(0);
    let data: String = row.get(4);
    Ok(Event {
        seq: seq as u64,
        ts: row.get(1),
        run: row.get(2),
        kind: row.get(3),
        data: serde_json::from_str(&data).map_err(|e| airlock_ledger::LedgerError::Corrupt {
            seq: seq as u64,
            problem: format!("data is not valid JSON ({e})"),
        })?,
        prev: row.get(5),
        hash: row.get(6),
    })
}

const EVENT_COLUMNS: &str = "seq, ts, run, kind, data, prev, hash";

impl Chain for PgStore {
    fn location(&self) -> String {
        format!("the PostgreSQL database {}", self.location)
    }

    fn lost_tail(&self) -> String {
        "events were deleted from the database, or an older backup of it was restored".into()
    }

    /// The database (never the password): its head record is not the
    /// local file's, nor another database's.
    fn record_scope(&self) -> Option<String> {
        Some(format!("postgres {}", self.location))
    }

    fn restore(&self) -> String {
        format!(
            "restore {} from its newest backup (or point-in-time recovery)",
            self.location()
        )
    }

    /// The hash of the first event.
    fn identity(&self) -> Result<Option<String>> {
        if let Some(known) = self.identity.borrow().clone() {
            return Ok(Some(known));
        }
        let found: Option<String> = self
            .query("SELECT hash FROM events ORDER BY seq LIMIT 1", &[])?
            .first()
            .map(|r| r.get(0));
        self.identity.borrow_mut().clone_from(&found);
        Ok(found)
    }

    /// This machine's values: the head record that marks a ledger as kept
    /// is this machine's, and another machine has its own.
    fn meta(&self, key: &str) -> Result<Option<String>> {
        if let Some(known) = self.kept_meta.borrow().get(key) {
            return Ok(Some(known.clone()));
        }
        let found: Option<String> = self
            .query(
                "SELECT value FROM airlock_meta WHERE scope = $1 AND key = $2",
                &[&self.machine, &key],
            )?
            .first()
            .map(|r| r.get(0));
        if let Some(value) = &found {
            self.kept_meta
                .borrow_mut()
                .insert(key.to_string(), value.clone());
        }
        Ok(found)
    }

    fn set_meta(&self, key: &str, value: &str) -> Result<()> {
        self.client
            .borrow_mut()
            .execute(
                "INSERT INTO airlock_meta (scope, key, value) VALUES ($1, $2, $3)
                 ON CONFLICT (scope, key) DO UPDATE SET value = EXCLUDED.value",
                &[&self.machine, &key, &value],
            )
            .map_err(database_error)?;
        self.kept_meta
            .borrow_mut()
            .insert(key.to_string(), value.to_string());
        Ok(())
    }

    fn check_head(&self, head: &Head) -> Result<HeadCheck> {
        let Ok(seq) = i64::try_from(head.seq) else {
            return Ok(HeadCheck::Older { events: 0 });
        };
        let row = self
            .query(
                "SELECT (SELECT max(seq) FROM events), (SELECT hash FROM events WHERE seq = $1)",
                &[&seq],
            )?
            .remove(0);
        let last: Option<i64> = row.get(0);
        let at: Option<String> = row.get(1);
        let last = last.unwrap_or(0) as u64;
        Ok(match at {
            _ if last < head.seq => HeadCheck::Older { events: last },
            Some(found) if found != head.hash => HeadCheck::Differs { found },
            Some(_) => HeadCheck::Holds,
            None => HeadCheck::Differs {
                found: String::new(),
            },
        })
    }
}

impl Store for PgStore {
    fn paths(&self) -> &Paths {
        &self.paths
    }

    /// The schema's version: a database set up anew under a long-lived
    /// process shows as a change.
    fn schema_cookie(&self) -> Option<i64> {
        let mut client = self.client.borrow_mut();
        schema::version(&mut client).ok().map(i64::from)
    }

    fn signing_key(&mut self) -> Result<&SigningKey> {
        if self.key.is_none() {
            self.key = Some(SigningKey::load_or_create(&self.paths.key_dir)?.0);
        }
        Ok(self.key.as_ref().expect("just loaded"))
    }

    fn public_key(&mut self) -> Result<PublicKey> {
        Ok(self.signing_key()?.public())
    }

    fn head_status(&mut self, verify: bool) -> Result<HeadStatus> {
        let key = if verify {
            Some(self.public_key()?)
        } else {
            None
        };
        airlock_store::head::status(&self.paths, &*self, || Ok(key))
    }

    fn require_head(&mut self, doing: Option<&str>) -> Result<()> {
        let status = self.head_status(doing.is_some())?;
        // A machine new to a shared database (a reviewer approving before
        // it ever ran anything here) has no record to hold it to yet: its
        // first decision starts one. Only when the database has no event
        // naming this machine: one that wrote here and lost its record (or
        // had its marker deleted) is still refused.
        if doing.is_some()
            && status.record.is_none()
            && status.problem.is_none()
            && self.new_to_database()?
        {
            return Ok(());
        }
        airlock_store::head::require(&self.paths, &status, doing)
    }

    fn witness(&mut self, event: &Event) -> Result<()> {
        self.signing_key()?;
        let key = self.key.as_ref().expect("loaded");
        // This machine's processes write its record in turn, one write
        // for every event waiting (see `head::advance_grouped`).
        airlock_store::head::advance_grouped(&self.paths, self, key, event)?;
        seal::note_unsealed(self, event)
    }

    fn witness_replacing(&mut self, event: &Event) -> Result<()> {
        self.signing_key()?;
        let key = self.key.as_ref().expect("loaded");
        airlock_store::head::replace(&self.paths, self, key, event)
    }

    fn get(&self, id: &str) -> Result<Run> {
        let rows = self.query("SELECT data FROM runs WHERE id = $1", &[&id])?;
        let data: String = rows
            .first()
            .ok_or_else(|| Error::UnknownRun(id.to_string()))?
            .get(0);
        serde_json::from_str(&data)
            .map_err(|e| Error::Corrupt(format!("the record of run {id} is unreadable: {e}")))
    }

    fn exists(&self, id: &str) -> Result<bool> {
        Ok(!self
            .query("SELECT 1 FROM runs WHERE id = $1", &[&id])?
            .is_empty())
    }

    fn ids_with_prefix(&self, prefix: &str) -> Result<Vec<String>> {
        Ok(self
            .query(
                "SELECT id FROM runs WHERE left(id, length($1)) = $1 ORDER BY id COLLATE \"C\"",
                &[&prefix],
            )?
            .iter()
            .map(|r| r.get(0))
            .collect())
    }

    fn finished_at(&self, run: &str) -> Result<Option<String>> {
        Ok(self
            .query(
                "SELECT max(ts COLLATE \"C\") FROM events WHERE run = $1 AND kind != 'collected'",
                &[&run],
            )?
            .first()
            .and_then(|r| r.get(0)))
    }

    fn list(&self) -> Result<Vec<Run>> {
        self.query(
            "SELECT id, data FROM runs ORDER BY created COLLATE \"C\", id COLLATE \"C\"",
            &[],
        )?
        .iter()
        .map(|row| {
            let (id, data): (String, String) = (row.get(0), row.get(1));
            serde_json::from_str(&data)
                .map_err(|e| Error::Corrupt(format!("the record of run {id} is unreadable: {e}")))
        })
        .collect()
    }

    fn insert(&mut self, run: &Run, intent: i64, event: Value) -> Result<Event> {
        let event = self.in_transaction(false, |tx, st| {
            tx.execute(
                "INSERT INTO runs (id, state, created, data, class) VALUES ($1, $2, $3, $4, $5)",
                &[
                    &run.id,
                    &run.state.as_str(),
                    &run.created,
                    &to_json(run),
                    &run.class,
                ],
            )
            .map_err(database_error)?;
            tx.execute("DELETE FROM intents WHERE id = $1", &[&intent])
                .map_err(database_error)?;
            append_in(tx, st, Some(&run.id), "start", &event)
        })?;
        spool::remember(self, run);
        self.witnessed(event)
    }

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
        let event = self.in_transaction(false, |tx, st| {
            let changed = tx
                .execute(
                    "UPDATE runs SET state = $1, data = $2 WHERE id = $3 AND state = $4",
                    &[&run.state.as_str(), &to_json(run), &run.id, &from.as_str()],
                )
                .map_err(database_error)?;
            if changed == 0 {
                return Err(Error::refused(
                    Code::ConcurrentChange,
                    format!("run {} changed while this command ran", run.id),
                    vec![format!("it is no longer {from}")],
                    format!("see `airlock show {}` and try again", run.id),
                ));
            }
            if let Some(id) = intent {
                tx.execute("DELETE FROM intents WHERE id = $1", &[&id])
                    .map_err(database_error)?;
            }
            let mut data = data;
            if let Value::Object(map) = &mut data {
                map.insert("from".into(), json!(from.as_str()));
                map.insert("to".into(), json!(run.state.as_str()));
            }
            append_in(tx, st, Some(&run.id), kind, &data)
        })?;
        spool::remember(self, run);
        self.witnessed(event)
    }

    /// Stores `trace` as the run's next trace with its event, once (a trace
    /// whose stdout log is already stored gets that trace's number), only
    /// while the run runs commands. The run's row is locked first, so a
    /// run's parallel commands are numbered one after another.
    fn add_trace(&mut self, run: &str, trace: &mut Trace) -> Result<()> {
        self.in_transaction(true, |tx, st| add_trace_in(tx, st, run, trace))?;
        spool::remember_after(self, run);
        Ok(())
    }

    fn traces(&self, run: &str) -> Result<Vec<Trace>> {
        let mut out: Vec<Trace> = self
            .query("SELECT data FROM traces WHERE run = $1 ORDER BY n", &[&run])?
            .iter()
            .map(|r| {
                serde_json::from_str(r.get::<_, &str>(0))
                    .map_err(|e| Error::Corrupt(format!("unreadable trace: {e}")))
            })
            .collect::<Result<_>>()?;
        for row in self.query(
            "SELECT n, data FROM connections WHERE run = $1 ORDER BY n, seq",
            &[&run],
        )? {
            let n = row.get::<_, i32>(0) as u32;
            let connection = serde_json::from_str(row.get::<_, &str>(1))
                .map_err(|e| Error::Corrupt(format!("unreadable connection of trace {n}: {e}")))?;
            if let Some(trace) = out.iter_mut().find(|t| t.n == n) {
                trace.connections.push(connection);
            }
        }
        Ok(out)
    }

    fn event(&mut self, run: Option<&str>, kind: &str, data: Value) -> Result<Event> {
        if let Some(event) = self.append_alone(run, kind, &data)? {
            return self.witnessed(event);
        }
        let event = self.in_transaction(false, |tx, st| append_in(tx, st, run, kind, &data))?;
        self.witnessed(event)
    }

    fn record_event(&mut self, run: &str, kind: &str, data: Value) -> Result<Event> {
        self.in_transaction(true, |tx, st| append_in(tx, st, Some(run), kind, &data))
    }

    fn events(&self, run: Option<&str>) -> Result<Vec<Event>> {
        let rows = match run {
            None => self.query(
                &format!("SELECT {EVENT_COLUMNS} FROM events ORDER BY seq"),
                &[],
            )?,
            Some(run) => self.query(
                &format!("SELECT {EVENT_COLUMNS} FROM events WHERE run = $1 ORDER BY seq"),
                &[&run],
            )?,
        };
        rows.iter().map(event_from_row).collect()
    }

    fn events_of_kind(&self, kind: &str) -> Result<Vec<Event>> {
        self.query(
            &format!("SELECT {EVENT_COLUMNS} FROM events WHERE kind = $1 ORDER BY seq"),
            &[&kind],
        )?
        .iter()
        .map(event_from_row)
        .collect()
    }

    fn for_each_step(&self, filter: &StepFilter, visit: &mut dyn FnMut(StepRow<'_>)) -> Result<()> {
        // One class: by creation (as SQLite's store hands them); every
        // class: by id. Text compared byte by byte, as SQLite does.
        let order = if filter.class.is_some() {
            "r.created COLLATE \"C\", r.class COLLATE \"C\", r.id COLLATE \"C\", s.seq"
        } else {
            "r.id COLLATE \"C\", s.seq"
        };
        let rows = self.query(
            &format!(
                "SELECT r.id, r.class, r.created, s.kind, s.at, s.failure
                 FROM runs r LEFT JOIN run_steps s ON s.run = r.id
                 WHERE ($1::TEXT IS NULL OR r.created >= $1 COLLATE \"C\")
                   AND ($2::TEXT IS NULL OR r.class = $2)
                 ORDER BY {order}"
            ),
            &[&filter.since, &filter.class],
        )?;
        for row in &rows {
            let step = row.get::<_, Option<&str>>(3).map(|kind| Step {
                kind,
                at_ms: row.get(4),
                failure: row.get(5),
            });
            visit(StepRow {
                run: row.get(0),
                class: row.get(1),
                created: row.get(2),
                step,
            });
        }
        Ok(())
    }

    fn ledger_head(&self) -> Result<Option<(u64, String)>> {
        Ok(self
            .query(
                "SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1",
                &[],
            )?
            .first()
            .map(|r| (r.get::<_, i64>(0) as u64, r.get(1))))
    }

    fn ledger_contains(&self, seq: u64, hash: &str) -> Result<bool> {
        let Ok(seq) = i64::try_from(seq) else {
            return Ok(false);
        };
        Ok(!self
            .query(
                "SELECT 1 FROM events WHERE seq = $1 AND hash = $2",
                &[&seq, &hash],
            )?
            .is_empty())
    }

    /// Walks every chain in one snapshot: each event's hash recomputed,
    /// each link to the one before it in its chain, the chain's numbers
    /// without gaps, and its recorded head reached. Names the bad event
    /// with the lowest seq.
    fn verify_ledger(&self) -> Result<VerifyReport> {
        let mut client = self.client.borrow_mut();
        let mut tx = client
            .build_transaction()
            .isolation_level(postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .map_err(database_error)?;
        let rows = tx
            .query(
                "SELECT seq, chain, n, ts, run, kind, data, prev, hash FROM events
                 ORDER BY chain COLLATE \"C\", n",
                &[],
            )
            .map_err(database_error)?;
        let heads = tx
            .query("SELECT chain, n, hash FROM chains", &[])
            .map_err(database_error)?;
        tx.commit().map_err(database_error)?;
        let mut bad: Option<BadEvent> = None;
        fn keep_first(bad: &mut Option<BadEvent>, found: BadEvent) {
            if bad.as_ref().is_none_or(|b| found.seq < b.seq) {
                *bad = Some(found);
            }
        }
        let name = |chain: &str| {
            if chain.is_empty() {
                "the events of no run".to_string()
            } else {
                format!("run {chain}")
            }
        };
        let mut last_seq: Option<i64> = None;
        let mut head_hash: Option<String> = None;
        let mut i = 0;
        let mut ends: std::collections::HashMap<String, (i64, String, i64)> =
            std::collections::HashMap::new();
        // Chains already named broken: their head is not compared.
        let mut broken_chains = std::collections::HashSet::new();
        while i < rows.len() {
            let chain: &str = rows[i].get(1);
            let mut expected_n = 1i64;
            let mut prev = GENESIS.to_string();
            let mut broken = false;
            while i < rows.len() && rows[i].get::<_, &str>(1) == chain {
                let row = &rows[i];
                i += 1;
                let seq: i64 = row.get(0);
                if last_seq.is_none_or(|s| seq > s) {
                    last_seq = Some(seq);
                    head_hash = Some(row.get(8));
                }
                if broken {
                    continue;
                }
                let (n, ts, run, kind, data, stored_prev, hash): (
                    i64,
                    &str,
                    Option<&str>,
                    &str,
                    &str,
                    &str,
                    &str,
                ) = (
                    row.get(2),
                    row.get(3),
                    row.get(4),
                    row.get(5),
                    row.get(6),
                    row.get(7),
                    row.get(8),
                );
                let problem = if n != expected_n {
                    Some(format!(
                        "{}: event {expected_n} of its chain is missing (the next stored is {n}, seq {seq}): an event was removed",
                        name(chain)
                    ))
                } else if run.unwrap_or("") != chain {
                    Some(format!(
                        "event {seq} names run {:?} but is in the chain of {} (the row was rewritten)",
                        run.unwrap_or(""),
                        name(chain)
                    ))
                } else if stored_prev != prev {
                    Some(format!(
                        "event {seq} ({}, event {n} of its chain): previous-hash link broken: expected {prev:.16}…, found {stored_prev:.16}… (an event was removed or reordered)",
                        name(chain)
                    ))
                } else {
                    let computed = hash_event(seq as u64, ts, run, kind, data, stored_prev);
                    (computed != hash).then(|| {
                        format!(
                            "event {seq} ({}, event {n} of its chain): stored hash does not match its contents (edited?): stored {hash:.16}…, computed {computed:.16}…",
                            name(chain)
                        )
                    })
                };
                if let Some(problem) = problem {
                    keep_first(
                        &mut bad,
                        BadEvent {
                            seq: seq as u64,
                            problem,
                        },
                    );
                    broken = true;
                    broken_chains.insert(chain.to_string());
                    continue;
                }
                prev = hash.to_string();
                expected_n += 1;
                ends.insert(chain.to_string(), (n, hash.to_string(), seq));
            }
        }
        // A chain's events must reach the head its row records: a tail
        // deleted without the row shows here.
        for head in &heads {
            let (chain, n, hash): (&str, i64, &str) = (head.get(0), head.get(1), head.get(2));
            if n == 0 || broken_chains.contains(chain) {
                continue;
            }
            match ends.get(chain) {
                Some((last, last_hash, _)) if *last == n && last_hash == hash => {}
                Some((last, _, seq)) if *last < n => keep_first(
                    &mut bad,
                    BadEvent {
                        seq: *seq as u64,
                        problem: format!(
                            "{}: events {}..={n} of its chain are missing after event {seq}: its chain ends at its event {last}, but its head records event {n} (the tail was deleted)",
                            name(chain),
                            last + 1
                        ),
                    },
                ),
                Some((_, _, seq)) => keep_first(
                    &mut bad,
                    BadEvent {
                        seq: *seq as u64,
                        problem: format!(
                            "{}: its last event does not match the chain's recorded head (the chain was rewritten)",
                            name(chain)
                        ),
                    },
                ),
                None => keep_first(
                    &mut bad,
                    BadEvent {
                        seq: 1,
                        problem: format!(
                            "{}: its chain records {n} events, and none is stored (the run's events were deleted)",
                            name(chain)
                        ),
                    },
                ),
            }
        }
        Ok(VerifyReport {
            events: rows.len() as u64,
            head: head_hash,
            first_bad: bad,
        })
    }

    fn seal(&mut self) -> Result<u64> {
        self.in_transaction(false, |tx, _| seal::seal(tx))
    }

    fn log_leaves(&self) -> Result<Vec<airlock_store::LogLeaf>> {
        self.read_log_leaves()
    }

    fn chain_heads(&self) -> Result<Vec<(String, u64, String)>> {
        self.read_chain_heads()
    }

    fn chain_event(&self, chain: &str, n: u64) -> Result<Option<String>> {
        self.read_chain_event(chain, n)
    }

    fn unsealed_notes(&self) -> Option<std::path::PathBuf> {
        Some(seal::unsealed_path(self))
    }

    fn spool_standing(&self, run: &str) -> Result<Option<String>> {
        spool::standing(self, run)
    }

    fn resolve_spool(
        &mut self,
        run: &str,
        how: &airlock_store::spool::Resolution,
    ) -> Result<airlock_store::spool::Resolved> {
        spool::resolve(self, run, how)
    }

    fn event_replacing_head(&mut self, kind: &str, data: Value) -> Result<Event> {
        let event = self.in_transaction(false, |tx, st| append_in(tx, st, None, kind, &data))?;
        self.witness_replacing(&event)?;
        Ok(event)
    }

    /// Intents are this machine's: its processes hold their locks (files
    /// in its state directory), and only it can tell a live one from a
    /// dead one.
    fn begin_intent(&mut self, kind: &str, run: &str, data: Value) -> Result<(i64, IntentGuard)> {
        use rand_core::RngCore;
        let token = format!("{:016x}", rand_core::OsRng.next_u64());
        let path = self.intent_lock(&token);
        let lock = FileLock::acquire(&path, false)?
            .ok_or_else(|| Error::Environment("could not take a fresh intent lock".into()))?;
        let guard = IntentGuard::new(lock, path);
        let mut data = data;
        if let Value::Object(map) = &mut data {
            map.insert("token".into(), json!(token));
        }
        let id: i64 = self
            .query(
                "INSERT INTO intents (machine, kind, run, data) VALUES ($1, $2, $3, $4) RETURNING id",
                &[&self.machine, &kind, &run, &data.to_string()],
            )?
            .remove(0)
            .get(0);
        Ok((id, guard))
    }

    fn intent_lock(&self, token: &str) -> std::path::PathBuf {
        self.paths.state.join("locks").join(format!("{token}.lock"))
    }

    fn end_intent(&mut self, id: i64) -> Result<()> {
        self.query("DELETE FROM intents WHERE id = $1", &[&id])?;
        Ok(())
    }

    fn intents(&self) -> Result<Vec<Intent>> {
        Ok(self
            .query(
                "SELECT id, kind, run, data FROM intents WHERE machine = $1 ORDER BY id",
                &[&self.machine],
            )?
            .iter()
            .map(|r| Intent {
                id: r.get(0),
                kind: r.get(1),
                run: r.get(2),
                data: serde_json::from_str(r.get::<_, &str>(3)).unwrap_or(Value::Null),
            })
            .collect())
    }

    fn actions(&self, run: &str) -> Result<Vec<Action>> {
        self.query(
            "SELECT data FROM actions WHERE run = $1 ORDER BY role = 'undo', seq",
            &[&run],
        )?
        .iter()
        .map(|r| {
            serde_json::from_str(r.get::<_, &str>(0))
                .map_err(|e| Error::Corrupt(format!("an action of run {run} is unreadable: {e}")))
        })
        .collect()
    }

    fn save_action(
        &mut self,
        action: &Action,
        from: Option<ActionState>,
        kind: &str,
        event: Value,
    ) -> Result<()> {
        let event = self.in_transaction(false, |tx, st| {
            let data = to_json(action);
            let role = role_key(action.role);
            let changed = match from {
                Some(from) => tx.execute(
                    "UPDATE actions SET state = $1, data = $2
                     WHERE run = $3 AND role = $4 AND name = $5 AND state = $6",
                    &[
                        &state_key(action.state),
                        &data,
                        &action.run,
                        &role,
                        &action.spec.name,
                        &state_key(from),
                    ],
                ),
                None => tx.execute(
                    "INSERT INTO actions (run, role, name, seq, state, data)
                     VALUES ($1, $2, $3, $4, $5, $6)
                     ON CONFLICT (run, role, name) DO UPDATE
                     SET seq = EXCLUDED.seq, state = EXCLUDED.state, data = EXCLUDED.data",
                    &[
                        &action.run,
                        &role,
                        &action.spec.name,
                        &i64::from(action.seq),
                        &state_key(action.state),
                        &data,
                    ],
                ),
            }
            .map_err(database_error)?;
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
            append_in(tx, st, Some(&action.run), kind, &event)
        })?;
        self.witness(&event)
    }

    fn replace_actions(
        &mut self,
        run: &Run,
        name: &str,
        actions: &[Action],
        event: &dyn Fn(bool) -> Value,
    ) -> Result<()> {
        let event = self.in_transaction(false, |tx, st| {
            let state: Option<String> = tx
                .query_opt(
                    "SELECT state FROM runs WHERE id = $1 FOR UPDATE",
                    &[&run.id],
                )
                .map_err(database_error)?
                .map(|r| r.get(0));
            if !matches!(state.as_deref(), Some("staged" | "checked")) {
                return Err(Error::refused(
                    Code::ConcurrentChange,
                    format!("run {} changed while this command ran", run.id),
                    vec![format!("it is no longer {}", run.state)],
                    format!("see `airlock show {}`", run.id),
                ));
            }
            let replaced = tx
                .execute(
                    "DELETE FROM actions WHERE run = $1 AND name = $2",
                    &[&run.id, &name],
                )
                .map_err(database_error)?
                > 0;
            for a in actions {
                tx.execute(
                    "INSERT INTO actions (run, role, name, seq, state, data)
                     VALUES ($1, $2, $3, $4, $5, $6)",
                    &[
                        &a.run,
                        &role_key(a.role),
                        &a.spec.name,
                        &i64::from(a.seq),
                        &state_key(a.state),
                        &to_json(a),
                    ],
                )
                .map_err(database_error)?;
            }
            append_in(tx, st, Some(&run.id), "propose", &event(replaced))
        })?;
        self.witness(&event)
    }

    fn in_review(&self, kinds: &[&str]) -> Result<Vec<InReview>> {
        let mut client = self.client.borrow_mut();
        // One snapshot for the four queries: a run decided meanwhile is
        // either wholly in the queue or not in it.
        let mut tx = client
            .build_transaction()
            .isolation_level(postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .map_err(database_error)?;
        // Each query sent with its types (one round trip, where a query
        // prepared first takes three).
        use postgres::types::Type;
        let mut queue: Vec<InReview> = Vec::new();
        let mut at: HashMap<String, usize> = HashMap::new();
        for row in tx
            .query_typed(
                "SELECT id, data FROM runs WHERE state = 'in_review'
                 ORDER BY created COLLATE \"C\", id COLLATE \"C\"",
                &[],
            )
            .map_err(database_error)?
        {
            let (id, data): (String, &str) = (row.get(0), row.get(1));
            let run: Run = serde_json::from_str(data).map_err(|e| {
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
        // The waiting runs' ids, found once: each query below reads its
        // rows of those runs by index, rather than the runs table again.
        let ids: Vec<String> = queue.iter().map(|q| q.run.id.clone()).collect();
        for row in tx
            .query_typed(
                "SELECT run, data FROM actions WHERE run = ANY($1)
                 ORDER BY run, role = 'undo', seq",
                &[(&ids, Type::TEXT_ARRAY)],
            )
            .map_err(database_error)?
        {
            let (run, data): (&str, &str) = (row.get(0), row.get(1));
            let action = serde_json::from_str(data).map_err(|e| {
                Error::Corrupt(format!("an action of run {run} is unreadable: {e}"))
            })?;
            if let Some(&i) = at.get(run) {
                queue[i].actions.push(action);
            }
        }
        for row in tx
            .query_typed(
                "SELECT run, (data::jsonb ->> 'n')::bigint, data::jsonb ->> 'confinement'
                 FROM traces WHERE run = ANY($1) ORDER BY run, n",
                &[(&ids, Type::TEXT_ARRAY)],
            )
            .map_err(database_error)?
        {
            let run: &str = row.get(0);
            let n = row
                .get::<_, Option<i64>>(1)
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(|| {
                    Error::Corrupt(format!(
                        "a trace of run {run} is unreadable: it has no number"
                    ))
                })?;
            let confinement: Option<String> = row.get(2);
            if let Some(&i) = at.get(run) {
                queue[i]
                    .confinements
                    .push((n, confinement.unwrap_or_default()));
            }
        }
        if !kinds.is_empty() {
            for row in tx
                .query_typed(
                    &format!(
                        "SELECT {EVENT_COLUMNS} FROM events
                         WHERE run = ANY($1) AND kind = ANY($2) ORDER BY seq"
                    ),
                    &[(&ids, Type::TEXT_ARRAY), (&kinds, Type::TEXT_ARRAY)],
                )
                .map_err(database_error)?
            {
                let event = event_from_row(&row)?;
                if let Some(&i) = event.run.as_ref().and_then(|r| at.get(r)) {
                    queue[i].events.push(event);
                }
            }
        }
        tx.commit().map_err(database_error)?;
        Ok(queue)
    }

    fn take_lease(
        &mut self,
        lease: &airlock_store::Lease,
        now_ms: i64,
    ) -> Result<Option<airlock_store::Lease>> {
        self.in_transaction(false, |tx, _| lease::take(tx, lease, now_ms))
    }

    fn release_lease(&mut self, target: &str, token: &str) -> Result<()> {
        self.in_transaction(false, |tx, _| lease::release(tx, target, token))
    }

    fn lease(&self, target: &str, now_ms: i64) -> Result<Option<airlock_store::Lease>> {
        let rows = self.query(
            "SELECT value FROM airlock_meta WHERE scope = 'lease' AND key = $1",
            &[&target],
        )?;
        Ok(lease::get(rows, now_ms))
    }

    fn withdraw_action(&mut self, run: &str, name: &str) -> Result<bool> {
        let event = self.in_transaction(false, |tx, st| {
            let gone = tx
                .execute(
                    "DELETE FROM actions WHERE run = $1 AND name = $2",
                    &[&run, &name],
                )
                .map_err(database_error)?;
            if gone == 0 {
                return Ok(None);
            }
            append_in(tx, st, Some(run), "withdraw", &json!({"name": name})).map(Some)
        })?;
        match event {
            Some(event) => {
                self.witness(&event)?;
                Ok(true)
            }
            None => Ok(false),
        }
    }
}

/// The database as messages name it, from its configuration: never the
/// password.
fn describe(config: &postgres::Config) -> String {
    use postgres::config::Host;
    let host = match config.get_hosts().first() {
        Some(Host::Tcp(h)) => h.clone(),
        Some(Host::Unix(p)) => p.display().to_string(),
        None => "localhost".into(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    format!(
        "`{}` on {host} port {port} (user {})",
        config.get_dbname().unwrap_or("(the user's)"),
        config.get_user().unwrap_or("(this user)")
    )
}

/// A failure to connect, named by what the user fixes: the server's
/// address, the credentials, or the database's name.
fn connect_error(location: &str, e: postgres::Error) -> Error {
    use postgres::error::SqlState;
    let detail = e
        .as_db_error()
        .map(|d| d.message().to_string())
        .unwrap_or_else(|| source_chain(&e));
    match e.code() {
        Some(c)
            if *c == SqlState::INVALID_PASSWORD
                || *c == SqlState::INVALID_AUTHORIZATION_SPECIFICATION =>
        {
            problem(
                Code::DatabaseCredentials,
                format!("the PostgreSQL server refused airlock's credentials for {location}"),
                vec![detail],
                format!(
                    "fix the user and password in {DATABASE_URL} (or the server's pg_hba.conf); nothing was changed"
                ),
            )
        }
        Some(c) if *c == SqlState::INVALID_CATALOG_NAME => problem(
            Code::DatabaseUnreachable,
            format!("the PostgreSQL database {location} does not exist"),
            vec![detail],
            format!(
                "create it (`createdb`), or fix the database name in {DATABASE_URL}; nothing was changed"
            ),
        ),
        _ => problem(
            Code::DatabaseUnreachable,
            format!("cannot reach the PostgreSQL database {location}"),
            vec![detail],
            format!(
                "start the server or fix the host and port in {DATABASE_URL}; unset it to use the local SQLite store; nothing was changed"
            ),
        ),
    }
}

fn source_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let more = s.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = s.source();
    }
    text
}

/// A failure of a statement: a lost connection is the server's address to
/// check; anything else the database's own message.
pub(crate) fn database_error(e: postgres::Error) -> Error {
    if e.is_closed() || e.as_db_error().is_none() && e.code().is_none() && is_io(&e) {
        return problem(
            Code::DatabaseUnreachable,
            "the connection to the PostgreSQL database was lost",
            vec![source_chain(&e)],
            format!(
                "check that the server named by {DATABASE_URL} is running, then run the command again"
            ),
        );
    }
    problem(
        Code::DatabaseFailed,
        "the PostgreSQL state database failed",
        vec![source_chain(&e)],
        "read the database's message above; check the server's log, then run the command again",
    )
}

fn is_io(e: &postgres::Error) -> bool {
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if s.is::<std::io::Error>() {
            return true;
        }
        source = s.source();
    }
    false
}

/// A failure that is not a refusal (an unreachable database, wrong
/// credentials), said the same way, with its own code and class.
pub(crate) fn problem(
    code: Code,
    what: impl Into<String>,
    reasons: Vec<String>,
    hint: impl Into<String>,
) -> Error {
    Error::Refused(Refusal::problem(code, what, reasons, hint))
}
