//! A ledger older than what airlock recorded: its head record outside it,
//! and the proofs' anchors as witnesses. The scenarios with actions and
//! rollbacks, against a real HTTP server, are in actions.rs.

mod common;

use std::path::PathBuf;

use common::*;

fn head_records(env: &Env) -> Vec<PathBuf> {
    let dir = env.home.join(".config/airlock/ledgers");
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.map(|e| e.unwrap().path())
                .filter(|p| p.extension().is_some_and(|x| x == "head"))
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    found
}

/// The ledger's files gone (its events with them), as after losing the
/// state directory's copy; and the head record gone too, so that only the
/// proofs are left to tell.
fn lose_ledger_and_head_record(env: &Env) {
    let db = env.state_dir().join("ledger.db");
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
    for record in head_records(env) {
        std::fs::remove_file(record).unwrap();
    }
}

#[test]
fn proof_verify_fails_when_the_run_is_missing_from_the_ledger() {
    let env = Env::new();
    let (run, _) = env.submitted();
    let bundle = env
        .state_dir()
        .join("proofs")
        .join(format!("{run}-r1.intoto.jsonl"));
    env.json(&["proof", "verify", bundle.to_str().unwrap()], 0);
    lose_ledger_and_head_record(&env);

    let out = env.airlock(&["proof", "verify", bundle.to_str().unwrap()]);
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    for check in ["brief digest", "action plan", "ledger anchor"] {
        assert!(
            out.stdout.contains(&format!(
                "FAIL {check:<14} run \"{run}\" is not in the ledger"
            )),
            "{check}: {}",
            out.stdout
        );
    }
    assert!(
        out.stdout.ends_with("the proof does NOT verify\n"),
        "{}",
        out.stdout
    );
    let v = env.json(&["proof", "verify", bundle.to_str().unwrap()], 1);
    assert_eq!(v["verified"], false);
}

#[test]
fn ledger_verify_takes_every_proofs_anchor_as_a_witness() {
    let env = Env::new();
    let (run, _) = env.submitted();
    let v = env.json(&["ledger", "verify"], 0);
    assert_eq!(v["anchors"].as_array().unwrap().len(), 1, "{v}");
    assert_eq!(v["anchors"][0]["ok"], true);
    lose_ledger_and_head_record(&env);

    let out = env.airlock(&["ledger", "verify"]);
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stdout
            .starts_with("ledger does NOT verify: it does not hold every proof's ledger anchor\n"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains(&format!("{run}-r1.intoto.jsonl: anchored at event ")),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("which the ledger does not hold"),
        "{}",
        out.stdout
    );
    let v = env.json(&["ledger", "verify"], 1);
    assert_eq!(v["anchors"][0]["ok"], false, "{v}");
    assert_eq!(v["anchors"][0]["run"], run.as_str());

    // Accepted, the loss is on record, and the anchor no longer fails.
    let done = env.json(&["ledger", "accept-loss", "--reason", "disk died"], 0);
    assert_eq!(done["lost_anchors"].as_array().unwrap().len(), 1, "{done}");
    let out = env.airlock(&["ledger", "verify"]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stdout
            .contains("recorded as lost by `airlock ledger accept-loss`"),
        "{}",
        out.stdout
    );
}

#[test]
fn decisions_advance_the_head_record_and_command_traces_do_not() {
    let env = Env::new();
    env.write(
        ".airlock/workflow.toml",
        &format!("{WORKFLOW}\n[sandbox]\nkeep_warm = 0\n"),
    );
    env.git(&["commit", "-qam", "no ledger server"]);
    let (run, _) = env.start(BRIEF);
    let record = || {
        let found = head_records(&env);
        assert_eq!(found.len(), 1, "{found:?}");
        let v = env.json(&["ledger", "verify"], 0);
        (
            std::fs::read(&found[0]).unwrap(),
            v["head_record"]["record"]["seq"].as_u64().unwrap(),
            v["events"].as_u64().unwrap(),
        )
    };
    let (started, seq, events) = record();
    assert_eq!(seq, events, "the start is recorded");
    env.json(&["exec", &run, "--", "true"], 0);
    let (after_exec, seq, events) = record();
    assert_eq!(after_exec, started, "a trace rewrote the head record");
    assert_eq!(seq + 1, events);
    env.json(&["check", &run], 0);
    let (_, seq, events) = record();
    assert_eq!(seq, events, "the check covers the traces before it");
}

#[test]
fn accept_loss_refuses_an_edited_ledger_and_changes_nothing() {
    let env = Env::new();
    let (run, _) = env.submitted();
    let db = env.db();
    db.execute_batch("DROP TRIGGER events_no_update;").unwrap();
    db.execute(
        "UPDATE events SET data = replace(data, '\"passed\":true', '\"passed\":false') WHERE run = ?1 AND kind = 'check'",
        [&run],
    )
    .unwrap();
    drop(db);
    let record = std::fs::read(&head_records(&env)[0]).unwrap();
    let count = || -> i64 {
        env.db()
            .query_row("SELECT count(*) FROM events", [], |r| r.get(0))
            .unwrap()
    };
    let before = count();
    let out = env.fails(&["ledger", "accept-loss", "--reason", "hide the edit"], 1);
    assert!(
        out.stderr
            .starts_with("error: refusing to accept the ledger: its chain is broken\n"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains("stored hash does not match its contents (edited?)"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("an edited ledger is not a lost tail"),
        "{}",
        out.stderr
    );
    assert_eq!(count(), before, "an event was added");
    assert_eq!(std::fs::read(&head_records(&env)[0]).unwrap(), record);
}

#[test]
fn accept_loss_of_a_new_ledger_has_nothing_to_accept() {
    let env = Env::new();
    let out = env.fails(&["ledger", "accept-loss", "--reason", "why not"], 1);
    assert!(
        out.stderr
            .starts_with("error: nothing to accept: the ledger is new\n"),
        "{}",
        out.stderr
    );
    assert!(head_records(&env).is_empty());
    assert!(env.events(None).is_empty());
}
