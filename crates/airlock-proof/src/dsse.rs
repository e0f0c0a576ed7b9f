use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

use crate::STATEMENT_TYPE;
use crate::error::{EnvelopeError, ProofError};
use crate::key::{PublicKey, SigningKey};

/// DSSE pre-authentication encoding:
/// `"DSSEv1" SP len(type) SP type SP len(body) SP body`, lengths in ASCII decimal.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let head = format!(
        "DSSEv1 {} {} {} ",
        payload_type.len(),
        payload_type,
        payload.len()
    );
    let mut out = Vec::with_capacity(head.len() + payload.len());
    out.extend_from_slice(head.as_bytes());
    out.extend_from_slice(payload);
    out
}

/// A DSSE envelope (JSON serialization).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Envelope {
    /// Standard base64 of the payload bytes.
    pub payload: String,
    #[serde(rename = "payloadType")]
    pub payload_type: String,
    pub signatures: Vec<Signature>,
}

/// One DSSE signature.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Signature {
    /// `SHA256:…` OpenSSH fingerprint of the signing key (optional in DSSE, always written here).
    #[serde(default)]
    pub keyid: String,
    /// Standard base64 of the raw 64-byte ed25519 signature over the PAE.
    pub sig: String,
}

/// Sign `payload` as a DSSE envelope with one signature.
pub fn sign_envelope(key: &SigningKey, payload_type: &str, payload: &[u8]) -> Envelope {
    let sig = key.sign_raw(&pae(payload_type, payload));
    Envelope {
        payload: STANDARD.encode(payload),
        payload_type: payload_type.to_string(),
        signatures: vec![Signature {
            keyid: key.public().key_id(),
            sig: STANDARD.encode(sig),
        }],
    }
}

/// Verify a DSSE envelope: it has at least one signature and every signature is a valid
/// ed25519 signature by `key` over `PAE(payloadType, payload)`. Returns the payload bytes.
/// The payload type is not restricted here; bundles require [`crate::PAYLOAD_TYPE`].
pub fn verify_envelope(key: &PublicKey, env: &Envelope) -> Result<Vec<u8>, ProofError> {
    check_envelope(key, env).map_err(ProofError::Envelope)
}

pub(crate) fn check_envelope(key: &PublicKey, env: &Envelope) -> Result<Vec<u8>, EnvelopeError> {
    let payload =
        STANDARD
            .decode(env.payload.as_bytes())
            .map_err(|e| EnvelopeError::PayloadBase64 {
                reason: e.to_string(),
            })?;
    let key_id = key.key_id();
    if env.signatures.is_empty() {
        return Err(EnvelopeError::NoSignatures { expected: key_id });
    }
    let message = pae(&env.payload_type, &payload);
    for (i, s) in env.signatures.iter().enumerate() {
        let index = i + 1;
        if !s.keyid.is_empty() && s.keyid != key_id {
            return Err(EnvelopeError::OtherKey {
                index,
                found: s.keyid.clone(),
                expected: key_id,
            });
        }
        let raw =
            STANDARD
                .decode(s.sig.as_bytes())
                .map_err(|e| EnvelopeError::SignatureBase64 {
                    index,
                    reason: e.to_string(),
                })?;
        let raw: [u8; 64] =
            raw.as_slice()
                .try_into()
                .map_err(|_| EnvelopeError::SignatureLength {
                    index,
                    len: raw.len(),
                })?;
        if !key.verify_raw(&message, &raw) {
            return Err(EnvelopeError::BadSignature { key_id });
        }
    }
    Ok(payload)
}

/// An in-toto Statement v1.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Statement {
    #[serde(rename = "_type")]
    pub type_: String,
    pub subject: Vec<Subject>,
    #[serde(rename = "predicateType")]
    pub predicate_type: String,
    pub predicate: serde_json::Value,
}

/// A subject of a statement: a name and its digests, e.g. `{"sha256": …}` or
/// `{"gitCommit": …, "gitTree": …}`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Subject {
    pub name: String,
    pub digest: BTreeMap<String, String>,
}

impl Statement {
    /// A statement of type [`STATEMENT_TYPE`].
    pub fn new(
        subject: Vec<Subject>,
        predicate_type: &str,
        predicate: serde_json::Value,
    ) -> Statement {
        Statement {
            type_: STATEMENT_TYPE.to_string(),
            subject,
            predicate_type: predicate_type.to_string(),
            predicate,
        }
    }

    /// Parse and check a statement payload.
    pub(crate) fn from_payload(payload: &[u8]) -> Result<Statement, EnvelopeError> {
        let st: Statement =
            serde_json::from_slice(payload).map_err(|e| EnvelopeError::NotStatement {
                reason: e.to_string(),
            })?;
        if st.type_ != STATEMENT_TYPE {
            return Err(EnvelopeError::WrongStatementType {
                found: st.type_,
                expected: STATEMENT_TYPE.to_string(),
            });
        }
        if let Some(reason) = st.problem() {
            return Err(EnvelopeError::NotStatement { reason });
        }
        Ok(st)
    }

    /// What makes this statement invalid, if anything (besides `_type`).
    pub(crate) fn problem(&self) -> Option<String> {
        if self.subject.is_empty() {
            return Some("it has no subject".into());
        }
        if let Some((i, s)) = self
            .subject
            .iter()
            .enumerate()
            .find(|(_, s)| s.digest.is_empty())
        {
            return Some(format!("subject {} ({:?}) has no digest", i + 1, s.name));
        }
        if self.predicate_type.is_empty() {
            return Some("its predicateType is empty".into());
        }
        None
    }
}
