//! `airlock ledger verify` and `ledger accept-loss`: the ledger checked
//! against its head record and against the proofs' anchors, and a loss
//! accepted on the record. The head record itself is [`crate::ledger_head`].

use crate::error::{Error, Result};
use crate::ledger_head::*;
use airlock_ledger::VerifyReport;

use crate::store::Store;
use airlock_proof::PublicKey;
use serde::Serialize;
use serde_json::json;
use std::path::{Path, PathBuf};

/// A proof bundle's ledger anchor (the head when it was signed), checked as
/// a witness that the ledger is not older than the bundle.
#[derive(Debug, Clone, Serialize)]
pub struct Anchor {
    pub proof: PathBuf,
    pub run: Option<String>,
    pub seq: Option<u64>,
    pub hash: Option<String>,
    /// The bundle verifies with this repository's key and records an
    /// anchor. One that does not is no witness (`proof verify` fails it),
    /// and is reported without failing the ledger.
    pub witness: bool,
    /// The ledger holds the anchored event.
    pub ok: bool,
    /// Missing, but recorded as lost by `airlock ledger accept-loss`.
    pub accepted: bool,
    pub detail: String,
}

/// Everything `airlock ledger verify` checks.
#[derive(Debug, Clone, Serialize)]
pub struct Audit {
    #[serde(flatten)]
    pub chain: VerifyReport,
    pub head_record: HeadStatus,
    pub anchors: Vec<Anchor>,
}

impl Audit {
    pub fn ok(&self) -> bool {
        self.chain.is_ok()
            && self.head_record.problem.is_none()
            && self
                .anchors
                .iter()
                .all(|a| !a.witness || a.ok || a.accepted)
    }
}

/// The chain, the head record and every proof bundle's anchor.
pub fn audit(al: &mut crate::Airlock) -> Result<Audit> {
    let dir = al.layout.proofs_dir();
    let store = &mut al.store;
    let chain = store.verify_ledger()?;
    let head_record = store.head_status(true)?;
    let key = store.public_key()?;
    let accepted = accepted_losses(store.as_ref())?;
    let mut anchors = Vec::new();
    let mut bundles: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.to_string_lossy().ends_with(".intoto.jsonl"))
                .collect()
        })
        .unwrap_or_default();
    bundles.sort();
    for proof in bundles {
        anchors.push(anchor_of(store.as_ref(), &key, &proof, &accepted)?);
    }
    Ok(Audit {
        chain,
        head_record,
        anchors,
    })
}

fn anchor_of(
    store: &dyn Store,
    key: &PublicKey,
    proof: &Path,
    accepted: &[(String, u64, String)],
) -> Result<Anchor> {
    let mut anchor = Anchor {
        proof: proof.to_path_buf(),
        run: None,
        seq: None,
        hash: None,
        witness: false,
        ok: false,
        accepted: false,
        detail: String::new(),
    };
    let jsonl = std::fs::read(proof).unwrap_or_default();
    let sig = std::fs::read_to_string(format!("{}.sig", proof.display())).unwrap_or_default();
    let verified = match airlock_proof::verify_bundle(key, &jsonl, Some(&sig)) {
        Ok(v) => v,
        Err(e) => {
            anchor.detail =
                format!("the bundle does not verify, so its anchor cannot be read: {e}");
            return Ok(anchor);
        }
    };
    let p = verified
        .statements
        .iter()
        // A soak's record (`soak::write_proof`) anchors the ledger too.
        .find(|s| {
            s.predicate_type == crate::proof::RUN_PREDICATE
                || s.predicate_type == crate::soak::SOAK_PREDICATE
        })
        .map(|s| &s.predicate);
    anchor.run = p.and_then(|p| p["run"].as_str()).map(str::to_string);
    let head = p.map(|p| &p["ledger_head"]);
    let (Some(seq), Some(hash)) = (
        head.and_then(|h| h["seq"].as_u64()),
        head.and_then(|h| h["hash"].as_str()),
    ) else {
        anchor.detail = "the bundle records no ledger anchor".into();
        return Ok(anchor);
    };
    anchor.witness = true;
    anchor.seq = Some(seq);
    anchor.hash = Some(hash.to_string());
    anchor.ok = store.ledger_contains(seq, hash)?;
    let name = file_name(proof);
    anchor.accepted = !anchor.ok
        && accepted
            .iter()
            .any(|(p, s, h)| *p == name && *s == seq && h == hash);
    anchor.detail = if anchor.ok {
        format!("event {seq} is in the ledger with the anchored hash")
    } else {
        format!(
            "anchored at event {seq} (hash {hash:.16}…), which the ledger does not hold{}",
            if anchor.accepted {
                ": recorded as lost by `airlock ledger accept-loss`"
            } else {
                ""
            }
        )
    };
    Ok(anchor)
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The anchors `accept-loss` recorded as lost: (bundle file name, seq, hash).
fn accepted_losses(store: &dyn Store) -> Result<Vec<(String, u64, String)>> {
    let mut out = Vec::new();
    for event in store.events_of_kind(LOSS_ACCEPTED)? {
        let data = event.data;
        for a in data["lost_anchors"].as_array().into_iter().flatten() {
            if let (Some(p), Some(s), Some(h)) =
                (a["proof"].as_str(), a["seq"].as_u64(), a["hash"].as_str())
            {
                out.push((p.to_string(), s, h.to_string()));
            }
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------- accepting a loss

/// What `airlock ledger accept-loss` recorded.
#[derive(Debug, Clone, Serialize)]
pub struct Acceptance {
    /// The `ledger-loss-accepted` event, now the recorded head.
    pub seq: u64,
    pub hash: String,
    /// The record it replaced, if any, and what was wrong.
    pub replaced: Option<HeadRecord>,
    pub problem: Option<String>,
    pub lost_anchors: Vec<Anchor>,
    /// Runs this ledger has approved or promoted: what the lost events
    /// said of them is gone, so a human checks them before promoting or
    /// rolling back.
    pub runs_to_check: Vec<RunToCheck>,
}

/// A run in a state from which an irreversible step may follow.
#[derive(Debug, Clone, Serialize)]
pub struct RunToCheck {
    pub run: String,
    pub state: String,
}

/// Records, as an explicit and signed decision, that the ledger as it is
/// now is the one airlock continues from: a `ledger-loss-accepted` event
/// naming the record it replaces, the anchors lost and the reason, then a
/// head record for that event.
pub fn accept_loss(al: &mut crate::Airlock, reason: Option<&str>) -> Result<Acceptance> {
    crate::guards::refuse_from_lane(al, "ledger accept-loss")?;
    let reason = crate::guards::require_reason(
        reason,
        "ledger accept-loss",
        "why the missing events cannot be restored",
    )?;
    let audit = audit(al)?;
    let store = &mut al.store;
    if let Some(bad) = &audit.chain.first_bad {
        return Err(Error::refused(
            crate::error::Code::LedgerChainBroken,
            "refusing to accept the ledger: its chain is broken",
            vec![bad.problem.clone()],
            format!(
                "an edited ledger is not a lost tail; restore {} from a backup",
                store.paths().db_path().display()
            ),
        ));
    }
    let lost_anchors: Vec<Anchor> = audit
        .anchors
        .iter()
        .filter(|a| a.witness && !a.ok && !a.accepted)
        .cloned()
        .collect();
    let head = &audit.head_record;
    let new = head.record.is_none() && audit.chain.events == 0;
    if head.problem.is_none() && (head.record.is_some() || new) && lost_anchors.is_empty() {
        return Err(Error::refused(
            crate::error::Code::NothingToAccept,
            if new {
                "nothing to accept: the ledger is new"
            } else {
                "nothing to accept: the ledger holds everything airlock recorded"
            },
            vec![if new {
                "it is new: it has no events, no head record and no proof anchored in it".into()
            } else {
                format!(
                    "it reaches its head record {} and every proof's anchor",
                    head.path.display()
                )
            }],
            "`airlock ledger verify` shows the checks",
        ));
    }
    let runs_to_check: Vec<RunToCheck> = store
        .list()?
        .into_iter()
        .filter(|r| {
            matches!(
                r.state,
                crate::run::State::Approved | crate::run::State::Promoted
            )
        })
        .map(|r| RunToCheck {
            state: r.state.as_str().to_string(),
            run: r.id,
        })
        .collect();
    let data = json!({
        "reason": reason,
        "replaced": head.record,
        "problem": head.problem,
        "reasons": head.reasons,
        "events": audit.chain.events,
        "lost_anchors": lost_anchors.iter().map(|a| json!({
            "proof": file_name(&a.proof), "run": a.run, "seq": a.seq, "hash": a.hash,
        })).collect::<Vec<_>>(),
        "runs_to_check": runs_to_check,
    });
    let event = store.event_replacing_head(LOSS_ACCEPTED, data)?;
    Ok(Acceptance {
        seq: event.seq,
        hash: event.hash,
        replaced: head.record.clone(),
        problem: head.problem.clone(),
        lost_anchors,
        runs_to_check,
    })
}
