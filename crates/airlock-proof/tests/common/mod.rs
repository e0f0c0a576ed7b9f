#![allow(dead_code)]

use std::collections::BTreeMap;

use airlock_proof::{Statement, Subject};
use serde_json::json;

pub fn subject(name: &str, sha: &str) -> Subject {
    Subject {
        name: name.to_string(),
        digest: BTreeMap::from([("sha256".to_string(), sha.to_string())]),
    }
}

/// Three statements with distinct predicates.
pub fn statements(tag: &str) -> Vec<Statement> {
    let commit = Subject {
        name: format!("run-{tag}"),
        digest: BTreeMap::from([
            ("gitCommit".to_string(), "a".repeat(40)),
            ("gitTree".to_string(), "b".repeat(40)),
        ]),
    };
    vec![
        Statement::new(
            vec![commit],
            "https://airlock.dev/run/v1",
            json!({"run": tag, "brief": "fix the bug"}),
        ),
        Statement::new(
            vec![subject("src/lib.rs", &"1".repeat(64))],
            "https://airlock.dev/command/v1",
            json!({"command": ["cargo", "test"], "exit": 0, "tag": tag}),
        ),
        Statement::new(
            vec![subject("approval", &"2".repeat(64))],
            "https://airlock.dev/approval/v1",
            json!({"by": "reviewer", "tag": tag}),
        ),
    ]
}

/// Lines of a jsonl file without their terminators.
pub fn lines(jsonl: &[u8]) -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = jsonl.split(|&b| b == b'\n').map(<[u8]>::to_vec).collect();
    if out.last().is_some_and(Vec::is_empty) {
        out.pop();
    }
    out
}

pub fn join(lines: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    for l in lines {
        out.extend_from_slice(l);
        out.push(b'\n');
    }
    out
}
