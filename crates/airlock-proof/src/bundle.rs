use std::collections::HashMap;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::dsse::{Envelope, Statement, Subject, check_envelope, sign_envelope};
use crate::error::{EnvelopeError, ProofError};
use crate::key::{PublicKey, SigningKey};
use crate::{INDEX_PREDICATE, PAYLOAD_TYPE, SSH_NAMESPACE, STATEMENT_TYPE};

/// A signed proof bundle, ready to be written as `<run>.intoto.jsonl` plus a detached
/// `<run>.intoto.jsonl.sig`.
#[derive(Clone, Debug, PartialEq)]
pub struct Bundle {
    /// One DSSE envelope per line (each line ends with `\n`), the bundle index last.
    pub jsonl: Vec<u8>,
    /// Armored SSHSIG over `jsonl` in namespace [`SSH_NAMESPACE`].
    pub ssh_signature: String,
    /// Lowercase hex sha256 of `jsonl`.
    pub digest: String,
}

/// What a verified bundle says.
#[derive(Clone, Debug, PartialEq)]
pub struct VerifiedBundle {
    /// The statements in file order, without the index.
    pub statements: Vec<Statement>,
    /// Lowercase hex sha256 of the whole file.
    pub digest: String,
    /// `SHA256:…` fingerprint of the key that signed every envelope.
    pub key_id: String,
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// One DSSE envelope per line for each statement, then a final index envelope (predicateType
/// [`INDEX_PREDICATE`]) whose subjects are the sha256 of each preceding line's bytes (name
/// "envelope-1", …) and whose predicate is
/// `{"envelopes": [{"line": 1, "sha256": …, "predicateType": …}, …], "count": N}`.
/// Also produces the SSHSIG of the whole file (namespace [`SSH_NAMESPACE`]).
pub fn build_bundle(key: &SigningKey, statements: &[Statement]) -> Result<Bundle, ProofError> {
    if statements.is_empty() {
        return Err(ProofError::InvalidStatement {
            index: 0,
            reason: "list is empty: a bundle needs at least one statement".into(),
        });
    }
    let mut jsonl = Vec::new();
    let mut subjects = Vec::with_capacity(statements.len());
    let mut entries = Vec::with_capacity(statements.len());
    for (i, st) in statements.iter().enumerate() {
        let index = i + 1;
        let invalid = |reason: String| ProofError::InvalidStatement { index, reason };
        if st.type_ != STATEMENT_TYPE {
            return Err(invalid(format!(
                "has _type {:?}, expected {STATEMENT_TYPE:?}",
                st.type_
            )));
        }
        if st.predicate_type == INDEX_PREDICATE {
            return Err(invalid(format!(
                "uses the reserved predicateType {INDEX_PREDICATE:?}"
            )));
        }
        if let Some(reason) = st.problem() {
            return Err(invalid(format!(
                "is not a valid in-toto statement: {reason}"
            )));
        }
        if let Some(first) = statements[..i].iter().position(|s| s == st) {
            return Err(invalid(format!(
                "is identical to statement {} (a bundle cannot hold the same statement twice)",
                first + 1
            )));
        }
        let line = envelope_line(key, st).map_err(|e| invalid(e.to_string()))?;
        let digest = sha256_hex(&line);
        subjects.push(Subject {
            name: format!("envelope-{index}"),
            digest: [("sha256".to_string(), digest.clone())].into(),
        });
        entries.push(json!({"line": index, "sha256": digest, "predicateType": st.predicate_type}));
        jsonl.extend_from_slice(&line);
        jsonl.push(b'\n');
    }
    let count = entries.len();
    let index = Statement::new(
        subjects,
        INDEX_PREDICATE,
        json!({"envelopes": entries, "count": count}),
    );
    let line = envelope_line(key, &index).map_err(|e| ProofError::InvalidStatement {
        index: count + 1,
        reason: format!("(the bundle index) cannot be serialized: {e}"),
    })?;
    jsonl.extend_from_slice(&line);
    jsonl.push(b'\n');
    let ssh_signature = key.ssh_sign(SSH_NAMESPACE, &jsonl)?;
    let digest = sha256_hex(&jsonl);
    Ok(Bundle {
        jsonl,
        ssh_signature,
        digest,
    })
}

fn envelope_line(key: &SigningKey, st: &Statement) -> Result<Vec<u8>, serde_json::Error> {
    let payload = serde_json::to_vec(st)?;
    serde_json::to_vec(&sign_envelope(key, PAYLOAD_TYPE, &payload))
}

/// Verify a bundle file. Checks, in order: every line is a DSSE envelope with
/// [`PAYLOAD_TYPE`] whose every signature verifies with `key` and whose payload is an in-toto
/// v1 statement; no line repeats another; the last line is the index and no other line is;
/// the index lists exactly the preceding lines' digests in order (dropped, injected,
/// duplicated or reordered lines fail); and `ssh_signature`, if given, verifies over the
/// file bytes.
pub fn verify_bundle(
    key: &PublicKey,
    jsonl: &[u8],
    ssh_signature: Option<&str>,
) -> Result<VerifiedBundle, ProofError> {
    if jsonl.iter().all(u8::is_ascii_whitespace) {
        return Err(ProofError::EmptyBundle);
    }
    let mut lines: Vec<&[u8]> = jsonl.split(|&b| b == b'\n').collect();
    if lines.last().is_some_and(|l| l.is_empty()) {
        lines.pop(); // the terminator of the last line
    }

    // 1. Every line on its own.
    let mut parsed: Vec<(String, Statement)> = Vec::with_capacity(lines.len());
    for (i, raw) in lines.iter().enumerate() {
        let n = i + 1;
        let st = check_line(key, raw).map_err(|fault| ProofError::at(n, fault))?;
        parsed.push((sha256_hex(raw), st));
    }

    // 2. No line twice.
    let mut first_seen: HashMap<&str, usize> = HashMap::new();
    for (i, (digest, _)) in parsed.iter().enumerate() {
        if let Some(&first) = first_seen.get(digest.as_str()) {
            return Err(ProofError::DuplicateLine { line: i + 1, first });
        }
        first_seen.insert(digest, i + 1);
    }

    // 3. The index closes the file, and only there.
    let total = parsed.len();
    let Some(((_, index), body)) = parsed.split_last() else {
        return Err(ProofError::EmptyBundle);
    };
    if index.predicate_type != INDEX_PREDICATE {
        return Err(ProofError::MissingIndex {
            line: total,
            found: index.predicate_type.clone(),
            expected: INDEX_PREDICATE.to_string(),
        });
    }
    if let Some(pos) = body
        .iter()
        .position(|(_, st)| st.predicate_type == INDEX_PREDICATE)
    {
        return Err(ProofError::IndexNotLast { line: pos + 1 });
    }

    // 4. The index lists exactly the preceding lines, in order.
    let entries = read_index(total, index)?;
    let position: HashMap<&str, usize> = entries
        .iter()
        .enumerate()
        .map(|(i, e)| (e.sha256.as_str(), i + 1))
        .collect();
    for (i, (digest, _)) in body.iter().enumerate() {
        if !position.contains_key(digest.as_str()) {
            return Err(ProofError::LineNotListed { line: i + 1 });
        }
    }
    if entries.len() != body.len() {
        // Every line is listed and no line repeats, so the index lists more than the file has.
        let present: HashMap<&str, ()> = body.iter().map(|(d, _)| (d.as_str(), ())).collect();
        let (missing, entry) = entries
            .iter()
            .enumerate()
            .find(|(_, e)| !present.contains_key(e.sha256.as_str()))
            .map(|(i, e)| (i + 1, e))
            .ok_or_else(|| ProofError::IndexMalformed {
                line: total,
                reason: "it lists the same envelope twice".into(),
            })?;
        return Err(ProofError::LineDropped {
            listed: entries.len(),
            actual: body.len(),
            missing,
            digest: entry.sha256.clone(),
        });
    }
    for (i, (digest, st)) in body.iter().enumerate() {
        let listed_as = position[digest.as_str()];
        if listed_as != i + 1 {
            return Err(ProofError::LinesReordered {
                line: i + 1,
                listed_as,
            });
        }
        if entries[i].predicate_type != st.predicate_type {
            return Err(ProofError::IndexMalformed {
                line: total,
                reason: format!(
                    "envelope {} is listed with predicateType {:?} but line {} has {:?}",
                    i + 1,
                    entries[i].predicate_type,
                    i + 1,
                    st.predicate_type
                ),
            });
        }
    }

    // 5. The detached signature over the whole file.
    if let Some(sig) = ssh_signature {
        key.ssh_verify(SSH_NAMESPACE, jsonl, sig)?;
    }

    Ok(VerifiedBundle {
        statements: body.iter().map(|(_, st)| st.clone()).collect(),
        digest: sha256_hex(jsonl),
        key_id: key.key_id(),
    })
}

fn check_line(key: &PublicKey, raw: &[u8]) -> Result<Statement, EnvelopeError> {
    if raw.is_empty() || raw.iter().all(u8::is_ascii_whitespace) {
        return Err(EnvelopeError::EmptyLine);
    }
    if raw.ends_with(b"\r") {
        return Err(EnvelopeError::CarriageReturn);
    }
    let env: Envelope = serde_json::from_slice(raw).map_err(|e| EnvelopeError::NotEnvelope {
        reason: e.to_string(),
    })?;
    if env.payload_type != PAYLOAD_TYPE {
        return Err(EnvelopeError::WrongPayloadType {
            found: env.payload_type,
            expected: PAYLOAD_TYPE.to_string(),
        });
    }
    let payload = check_envelope(key, &env)?;
    let statement = Statement::from_payload(&payload)?;
    // The signature covers only the payload; the line's bytes must also be exactly what
    // build_bundle writes, so that nothing unsigned (field names, keyid, spacing) can change
    // without changing the digest recorded in the index or breaking the SSH signature.
    if serde_json::to_vec(&env).ok().as_deref() != Some(raw) {
        return Err(EnvelopeError::NotCanonical);
    }
    Ok(statement)
}

struct IndexEntry {
    sha256: String,
    predicate_type: String,
}

/// Parse and cross-check the index predicate and subjects.
fn read_index(line: usize, index: &Statement) -> Result<Vec<IndexEntry>, ProofError> {
    let bad = |reason: String| ProofError::IndexMalformed { line, reason };
    let list = index
        .predicate
        .get("envelopes")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("its predicate has no \"envelopes\" array".into()))?;
    let count = index
        .predicate
        .get("count")
        .and_then(Value::as_u64)
        .ok_or_else(|| bad("its predicate has no unsigned integer \"count\"".into()))?;
    if u64::try_from(list.len()).ok() != Some(count) {
        return Err(bad(format!(
            "its \"count\" is {count} but it lists {} envelopes",
            list.len()
        )));
    }
    let mut entries = Vec::with_capacity(list.len());
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (i, item) in list.iter().enumerate() {
        let n = i + 1;
        let listed_line = item.get("line").and_then(Value::as_u64);
        if listed_line != u64::try_from(n).ok() {
            return Err(bad(format!("envelope {n} does not have \"line\": {n}")));
        }
        let sha256 = item
            .get("sha256")
            .and_then(Value::as_str)
            .filter(|s| {
                s.len() == 64
                    && s.bytes()
                        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
            })
            .ok_or_else(|| bad(format!("envelope {n} has no lowercase hex \"sha256\"")))?;
        let predicate_type = item
            .get("predicateType")
            .and_then(Value::as_str)
            .ok_or_else(|| bad(format!("envelope {n} has no \"predicateType\"")))?;
        if let Some(first) = seen.insert(sha256.to_string(), n) {
            return Err(bad(format!(
                "envelopes {first} and {n} have the same sha256"
            )));
        }
        let subject = index.subject.get(i);
        let subject_ok = subject.is_some_and(|s| {
            s.name == format!("envelope-{n}")
                && s.digest.len() == 1
                && s.digest.get("sha256").map(String::as_str) == Some(sha256)
        });
        if !subject_ok {
            return Err(bad(format!(
                "subject {n} does not match envelope {n} of the predicate (expected name \"envelope-{n}\" with that sha256)"
            )));
        }
        entries.push(IndexEntry {
            sha256: sha256.to_string(),
            predicate_type: predicate_type.to_string(),
        });
    }
    if index.subject.len() != entries.len() {
        return Err(bad(format!(
            "it has {} subjects but lists {} envelopes",
            index.subject.len(),
            entries.len()
        )));
    }
    Ok(entries)
}
