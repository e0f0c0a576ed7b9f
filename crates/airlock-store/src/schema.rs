//! The store's tables beside the ledger's, in one place: each version of the
//! schema is a migration from the one before, applied in order when a
//! database is opened, and the version reached is kept in SQLite's
//! `user_version` (the ledger keeps its own tables' version itself).

use rusqlite::Connection;

use crate::error::{Error, Result};

/// The migrations, the one at index `i` taking a database from version `i`
/// to `i + 1`. Append only: a released migration never changes.
const MIGRATIONS: &[&str] = &[
    // 1: runs, their traces, crash intents, and the actions runs propose.
    // `IF NOT EXISTS`, since databases older than this list have them.
    "CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    created TEXT NOT NULL,
    data TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS traces (
    run TEXT NOT NULL,
    n INTEGER NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (run, n)
);
CREATE INDEX IF NOT EXISTS traces_by_log ON traces (run, json_extract(data, '$.stdout.log'));
CREATE TABLE IF NOT EXISTS intents (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    run TEXT NOT NULL,
    data TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS actions (
    run TEXT NOT NULL,
    role TEXT NOT NULL,
    name TEXT NOT NULL,
    seq INTEGER NOT NULL,
    state TEXT NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (run, role, name)
);",
    // 2: the connections each traced command made through its egress
    // proxy (issue 16), one row each, in the order they ended; the host,
    // port and outcome as columns so that a run's refused connections and
    // the hosts it reached are one query.
    "CREATE TABLE connections (
    run TEXT NOT NULL,
    n INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    host TEXT NOT NULL,
    port INTEGER NOT NULL,
    outcome TEXT NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (run, n, seq)
);",
    // 3: what `airlock stats` reads (issue 18), so that a record over
    // 100,000 runs does not scan every event and every run's JSON: each
    // run's class as a column, covering indexes of runs by creation and by
    // id, and a
    // narrow copy of the events a record is made of (their kinds are
    // `history::STEP_KINDS`; `at` in milliseconds since the epoch), written
    // with each event, filled here from the ledger's events; its index by
    // run covers every column, so a record reads the index alone.
    "ALTER TABLE runs ADD COLUMN class TEXT NOT NULL DEFAULT '';
UPDATE runs SET class = coalesce(json_extract(data, '$.class'), '');
CREATE INDEX runs_by_created ON runs (created, class, id, state);
CREATE INDEX runs_by_id ON runs (id, class, created);
CREATE TABLE run_steps (
    seq INTEGER PRIMARY KEY,
    run TEXT NOT NULL,
    kind TEXT NOT NULL,
    at INTEGER NOT NULL,
    failure TEXT
);
CREATE INDEX run_steps_by_run ON run_steps (run, seq, kind, at, failure);
INSERT INTO run_steps (seq, run, kind, at, failure)
    SELECT seq, run, kind,
           CAST(round((julianday(ts) - 2440587.5) * 86400000.0) AS INTEGER),
           CASE WHEN kind = 'check' THEN json_extract(data, '$.failure') END
    FROM events
    WHERE run IS NOT NULL
      AND kind IN ('check', 'submit', 'approve', 'reject', 'redirect', 'promote', 'rollback');",
    // 4: the sealed log's leaves (issue 20). SQLite's ledger is one chain
    // (`''`), its events numbered by `seq`; a leaf names the head it had
    // when it was sealed.
    "CREATE TABLE log_leaves (
    idx INTEGER PRIMARY KEY CHECK (idx >= 0),
    chain TEXT NOT NULL,
    n INTEGER NOT NULL,
    hash TEXT NOT NULL
);",
    // 5: promotion leases (issue 20, `lease`): one row per target, the
    // holder as JSON.
    "CREATE TABLE leases (
    target TEXT PRIMARY KEY,
    expires INTEGER NOT NULL,
    data TEXT NOT NULL
);",
];

/// The schema version this build writes.
pub const VERSION: u32 = MIGRATIONS.len() as u32;

/// Brings the database on `conn` to [`VERSION`], refusing one a newer
/// airlock has written.
pub fn migrate(conn: &Connection) -> Result<()> {
    let at: u32 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if at > VERSION {
        return Err(Error::Invalid(format!(
            "the state database has schema version {at}, newer than this airlock's {VERSION}: upgrade airlock"
        )));
    }
    for (from, migration) in MIGRATIONS.iter().enumerate().skip(at as usize) {
        let tx = conn.unchecked_transaction()?;
        tx.execute_batch(migration)?;
        tx.pragma_update(None, "user_version", from as u32 + 1)?;
        tx.commit()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_database_gets_every_table_and_the_version() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = airlock_ledger::Ledger::open(&dir.path().join("ledger.db")).unwrap();
        let conn = ledger.connection();
        migrate(conn).unwrap();
        let version: u32 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, VERSION);
        for table in [
            "runs",
            "traces",
            "intents",
            "actions",
            "connections",
            "run_steps",
            "leases",
        ] {
            let n: u32 = conn
                .query_row(
                    "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?1",
                    [table],
                    |r| r.get(0),
                )
                .unwrap();
            assert_eq!(n, 1, "{table}");
        }
        // Again: nothing to do.
        migrate(conn).unwrap();
    }

    #[test]
    fn migration_3_fills_the_steps_and_classes_from_what_is_there() {
        let dir = tempfile::tempdir().unwrap();
        let mut ledger = airlock_ledger::Ledger::open(&dir.path().join("ledger.db")).unwrap();
        // A database as version 2 left it: runs and their events.
        for migration in &MIGRATIONS[..2] {
            ledger.connection().execute_batch(migration).unwrap();
        }
        ledger
            .connection()
            .pragma_update(None, "user_version", 2)
            .unwrap();
        ledger
            .connection()
            .execute(
                "INSERT INTO runs (id, state, created, data) VALUES ('r-1', 'approved', 't0', '{\"class\":\"docs\"}')",
                [],
            )
            .unwrap();
        let check = serde_json::json!({"passed": false, "failure": "stop condition `scope`: x"});
        ledger
            .append(Some("r-1"), "start", &serde_json::json!({}))
            .unwrap();
        ledger.append(Some("r-1"), "check", &check).unwrap();
        ledger
            .append(Some("r-1"), "exec", &serde_json::json!({}))
            .unwrap();
        ledger
            .append(Some("r-1"), "approve", &serde_json::json!({}))
            .unwrap();
        migrate(ledger.connection()).unwrap();
        let conn = ledger.connection();
        let class: String = conn
            .query_row("SELECT class FROM runs WHERE id = 'r-1'", [], |r| r.get(0))
            .unwrap();
        assert_eq!(class, "docs");
        let steps: Vec<(i64, String, Option<String>)> = conn
            .prepare("SELECT seq, kind, failure FROM run_steps WHERE at > 0 ORDER BY seq")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert_eq!(
            steps,
            vec![
                (2, "check".into(), Some("stop condition `scope`: x".into())),
                (4, "approve".into(), None)
            ]
        );
    }

    #[test]
    fn a_database_of_a_newer_airlock_is_refused_untouched() {
        let conn = Connection::open_in_memory().unwrap();
        conn.pragma_update(None, "user_version", VERSION + 1)
            .unwrap();
        let err = migrate(&conn).unwrap_err().to_string();
        assert!(err.contains("newer than this airlock"), "{err}");
        let tables: u32 = conn
            .query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))
            .unwrap();
        assert_eq!(tables, 0);
    }
}
