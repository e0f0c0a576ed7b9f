//! Proofs for airlock: ed25519 signing keys in OpenSSH format, DSSE envelopes holding
//! in-toto Statement v1, proof bundles (`<run>.intoto.jsonl`) whose last line is a signed
//! index of every other line, and detached SSH signatures (SSHSIG) that
//! `ssh-keygen -Y verify` accepts.
//!
//! The library returns data and typed errors; it never prints.

mod bundle;
mod dsse;
mod error;
mod key;
pub mod signers;

pub use bundle::{Bundle, VerifiedBundle, build_bundle, verify_bundle};
pub use dsse::{Envelope, Signature, Statement, Subject, pae, sign_envelope, verify_envelope};
pub use error::{EnvelopeError, ProofError};
pub use key::{PublicKey, SigningKey};

/// DSSE `payloadType` of every envelope in a bundle.
pub const PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";
/// `_type` of an in-toto Statement v1.
pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
/// `predicateType` of the index statement that closes a bundle.
pub const INDEX_PREDICATE: &str = "https://airlock.dev/bundle-index/v1";
/// SSHSIG namespace of the detached signature over a bundle file.
pub const SSH_NAMESPACE: &str = "airlock-proof";
/// SSHSIG namespace of approvals (`.airlock/reviewers`).
pub const APPROVAL_NAMESPACE: &str = "airlock-approval";
