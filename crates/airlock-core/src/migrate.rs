//! State written by older versions of airlock, brought up to date on open.

use serde_json::json;

use crate::Airlock;
use crate::error::Result;
use crate::run::{OLD_RUN_REFS, run_ref};

/// Present once the run refs of this repository live under
/// [`crate::run::RUN_REFS`]: every later open costs one `stat`.
const RUN_REFS_MOVED: &str = "run-refs-moved";

/// Moves the refs of known runs from `refs/heads/airlock/<run>` (where
/// versions before 0.2 kept them, and where `git push --all` publishes
/// them) to `refs/airlock/runs/<run>`, in one git transaction, and records
/// it in the ledger. A branch under `refs/heads/airlock/` that names no run
/// is the user's and stays. Returns a note when something moved.
pub(crate) fn run_refs(al: &mut Airlock) -> Result<Option<String>> {
    let marker = al.layout.state.join(RUN_REFS_MOVED);
    if marker.exists() {
        return Ok(None);
    }
    let main = al.layout.git();
    let listing = main.text(&[
        "for-each-ref",
        "--format=%(objectname) %(refname)",
        OLD_RUN_REFS,
    ])?;
    let mut moves = Vec::new();
    for line in listing.lines() {
        let Some((oid, old)) = line.split_once(' ') else {
            continue;
        };
        let id = &old[OLD_RUN_REFS.len().min(old.len())..];
        if !id.is_empty() && al.store.exists(id)? {
            moves.push((oid.to_string(), old.to_string(), run_ref(id)));
        }
    }
    if !moves.is_empty() {
        let mut script = String::from("start\n");
        for (oid, old, new) in &moves {
            script.push_str(&format!("update {new} {oid}\ndelete {old} {oid}\n"));
        }
        script.push_str("prepare\ncommit\n");
        let (ok, _, err) = main.try_run(&["update-ref", "--stdin"], Some(script.as_bytes()))?;
        if !ok {
            // Another airlock moved them meanwhile, or a ref changed under
            // us: the next open looks again.
            return Ok(Some(format!(
                "could not move run refs out of refs/heads/airlock/ yet ({}); the next command tries again",
                String::from_utf8_lossy(&err).trim()
            )));
        }
        al.store.event(
            None,
            "run_refs_moved",
            json!({"from": OLD_RUN_REFS, "to": crate::run::RUN_REFS,
                   "runs": moves.iter().map(|(oid, old, new)| json!({"from": old, "to": new, "commit": oid})).collect::<Vec<_>>()}),
        )?;
    }
    std::fs::create_dir_all(&al.layout.state).map_err(|source| crate::Error::Write {
        path: al.layout.state.clone(),
        source,
    })?;
    crate::layout::write_atomic(&marker, b"")?;
    Ok((!moves.is_empty()).then(|| {
        format!(
            "moved {} run ref{} from refs/heads/airlock/ to {}, out of what `git push --all` publishes",
            moves.len(),
            if moves.len() == 1 { "" } else { "s" },
            crate::run::RUN_REFS
        )
    }))
}
