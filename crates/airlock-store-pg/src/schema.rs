//! The store's tables in PostgreSQL: each version of the schema is a
//! migration from the one before, applied in order, once, under an
//! advisory lock (two machines opening a new database at once do not both
//! apply them), with the version reached in `airlock_schema`.

use postgres::Client;

use airlock_store::error::{Code, Error, Result};

/// The advisory lock key the migrations are applied under ("airlock" in
/// ASCII).
pub const MIGRATION_LOCK: i64 = 0x0061_6972_6c6f_636b;

/// The migrations, the one at index `i` taking a database from version `i`
/// to `i + 1`. Append only: a released migration never changes.
const MIGRATIONS: &[&str] = &[
    // 1: everything SQLite's store keeps, and the ledger's events chained
    // per run: `chains` holds each chain's head (a run's id; '' for events
    // of no run), so that an appender locks its run's row only, and
    // appenders on different runs do not wait for each other. `seq` is
    // global (a sequence: it orders the events across runs and may skip
    // numbers a rolled-back transaction took); `n` numbers a chain's
    // events from 1 without gaps.
    "CREATE TABLE airlock_meta (
    scope TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (scope, key)
);
CREATE TABLE runs (
    id TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    created TEXT NOT NULL,
    class TEXT NOT NULL DEFAULT '',
    data TEXT NOT NULL
);
CREATE INDEX runs_by_created ON runs (created, class, id, state);
CREATE TABLE traces (
    run TEXT NOT NULL,
    n INTEGER NOT NULL,
    log TEXT NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (run, n)
);
CREATE INDEX traces_by_log ON traces (run, log);
CREATE TABLE connections (
    run TEXT NOT NULL,
    n INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    host TEXT NOT NULL,
    port INTEGER NOT NULL,
    outcome TEXT NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (run, n, seq)
);
CREATE TABLE intents (
    id BIGSERIAL PRIMARY KEY,
    machine TEXT NOT NULL,
    kind TEXT NOT NULL,
    run TEXT NOT NULL,
    data TEXT NOT NULL
);
CREATE TABLE actions (
    run TEXT NOT NULL,
    role TEXT NOT NULL,
    name TEXT NOT NULL,
    seq BIGINT NOT NULL,
    state TEXT NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (run, role, name)
);
CREATE SEQUENCE events_seq;
CREATE TABLE chains (
    chain TEXT PRIMARY KEY,
    n BIGINT NOT NULL,
    hash TEXT NOT NULL
);
CREATE TABLE events (
    seq BIGINT PRIMARY KEY CHECK (seq >= 1),
    chain TEXT NOT NULL,
    n BIGINT NOT NULL CHECK (n >= 1),
    ts TEXT NOT NULL,
    run TEXT,
    kind TEXT NOT NULL,
    data TEXT NOT NULL,
    prev TEXT NOT NULL,
    hash TEXT NOT NULL,
    UNIQUE (chain, n)
);
CREATE INDEX events_by_run ON events (run, seq);
CREATE INDEX events_by_kind ON events (kind, seq);
CREATE FUNCTION airlock_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'airlock ledger is append-only';
END $$;
CREATE TRIGGER events_no_update BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION airlock_events_append_only();
CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION airlock_events_append_only();
CREATE TABLE run_steps (
    seq BIGINT PRIMARY KEY,
    run TEXT NOT NULL,
    kind TEXT NOT NULL,
    at BIGINT NOT NULL,
    failure TEXT
);
CREATE INDEX run_steps_by_run ON run_steps (run, seq);",
    // 2: the sealed log's leaves (issue 20, crate::seal).
    crate::seal::MIGRATION,
];

/// The schema version this build writes.
pub const VERSION: i32 = MIGRATIONS.len() as i32;

/// The schema version the database is at (0: none yet).
pub fn version(client: &mut Client) -> std::result::Result<i32, postgres::Error> {
    let exists: bool = client
        .query_one("SELECT to_regclass('airlock_schema') IS NOT NULL", &[])?
        .get(0);
    if !exists {
        return Ok(0);
    }
    Ok(client
        .query_opt("SELECT version FROM airlock_schema", &[])?
        .map_or(0, |r| r.get(0)))
}

/// Brings the database to [`VERSION`] under the migration lock, refusing
/// one a newer airlock has written (untouched).
pub fn migrate(client: &mut Client, location: &str) -> Result<()> {
    // Most opens find it current: no lock, no write.
    let at = version(client).map_err(crate::database_error)?;
    if at == VERSION {
        return Ok(());
    }
    if at > VERSION {
        return Err(newer(location, at));
    }
    let mut tx = client.transaction().map_err(crate::database_error)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .map_err(crate::database_error)?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS airlock_schema (version INTEGER NOT NULL);
         INSERT INTO airlock_schema (version)
             SELECT 0 WHERE NOT EXISTS (SELECT 1 FROM airlock_schema);",
    )
    .map_err(crate::database_error)?;
    // Under the lock: what another machine may have applied meanwhile.
    let at: i32 = tx
        .query_one("SELECT version FROM airlock_schema", &[])
        .map_err(crate::database_error)?
        .get(0);
    if at > VERSION {
        return Err(newer(location, at));
    }
    for (from, migration) in MIGRATIONS.iter().enumerate().skip(at as usize) {
        tx.batch_execute(migration).map_err(crate::database_error)?;
        tx.execute(
            "UPDATE airlock_schema SET version = $1",
            &[&(from as i32 + 1)],
        )
        .map_err(crate::database_error)?;
    }
    tx.commit().map_err(crate::database_error)
}

fn newer(location: &str, at: i32) -> Error {
    crate::problem(
        Code::DatabaseNewerSchema,
        format!("the PostgreSQL database {location} was set up by a newer airlock"),
        vec![format!(
            "its schema version is {at}; this airlock knows versions up to {VERSION}"
        )],
        "upgrade airlock on this machine (or point AIRLOCK_DATABASE_URL at another database); nothing was changed",
    )
}
