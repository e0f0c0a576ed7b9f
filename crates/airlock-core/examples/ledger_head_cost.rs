//! What the ledger's head record costs (BENCHMARKS.md, Ledger): opening the
//! store with and without its check, and an event committed in full with
//! and without the record written after it, interleaved, medians of 300.
//!
//!     cargo run --release -p airlock-core --example ledger_head_cost [DIR]
//!
//! DIR (default: a temporary directory) should be on the disk the state
//! directory lives on: the record is one more small file synced.

use std::time::Instant;

use airlock_core::layout::Layout;
use airlock_core::store::{SqliteStore, Store};
use serde_json::json;

fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(|a, b| a.total_cmp(b));
    samples[samples.len() / 2]
}

fn micros(f: impl FnOnce()) -> f64 {
    let start = Instant::now();
    f();
    start.elapsed().as_secs_f64() * 1e6
}

fn main() {
    let tmp = tempfile::tempdir_in(std::env::args().nth(1).unwrap_or_else(|| "/tmp".into()))
        .expect("a temporary directory");
    let dir = tmp.path();
    let layout = Layout {
        root: dir.to_path_buf(),
        git_dir: dir.join(".git"),
        objects_dir: dir.join(".git/objects"),
        state: dir.join("state"),
        key_dir: dir.join("keys"),
    };
    let mut store = SqliteStore::open(&layout.store_paths()).expect("the store");
    for i in 0..200 {
        store
            .event(None, "warm-up", json!({ "i": i }))
            .expect("an event");
    }
    let n = 300;
    let (mut bare, mut checked, mut plain, mut recorded) = (vec![], vec![], vec![], vec![]);
    for i in 0..n {
        // The first opening after a commit reads the new log frames: each
        // side goes first in turn.
        let data = json!({ "i": i });
        for side in [i % 2, 1 - i % 2] {
            if side == 0 {
                bare.push(micros(|| {
                    drop(SqliteStore::open_unverified(&layout.store_paths()).expect("open"))
                }));
                plain.push(micros(|| {
                    drop(store.ledger.append(None, "plain", &data).expect("append"))
                }));
            } else {
                checked.push(micros(|| {
                    drop(SqliteStore::open(&layout.store_paths()).expect("open"))
                }));
                recorded.push(micros(|| {
                    drop(store.event(None, "recorded", data.clone()).expect("event"))
                }));
            }
        }
    }
    let (bare, checked, plain, recorded) = (
        median(bare),
        median(checked),
        median(plain),
        median(recorded),
    );
    println!(
        "open: {bare:.1} us; with the head record's check: {checked:.1} us ({:+.1})",
        checked - bare
    );
    println!(
        "an event committed in full: {plain:.1} us; with the head record written: {recorded:.1} us ({:+.1})",
        recorded - plain
    );
}
