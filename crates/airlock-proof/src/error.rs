use std::path::PathBuf;

/// Why one DSSE envelope was rejected. Inside a bundle it is wrapped in
/// [`ProofError::Line`], which prefixes the line number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    #[error(
        "the line is empty (a blank line was inserted or appended; every line must be a DSSE envelope)"
    )]
    EmptyLine,
    #[error(
        "the line ends with a carriage return (the file was converted to CRLF line endings; restore the original bytes)"
    )]
    CarriageReturn,
    #[error(
        "not a DSSE envelope: expected a JSON object with \"payload\", \"payloadType\" and \"signatures\" ({reason})"
    )]
    NotEnvelope { reason: String },
    #[error("payloadType is {found:?}, expected {expected:?}")]
    WrongPayloadType { found: String, expected: String },
    #[error("payload is not valid standard base64 ({reason})")]
    PayloadBase64 { reason: String },
    #[error("the envelope has no signatures (it must be signed by key {expected})")]
    NoSignatures { expected: String },
    #[error("signature {index}: \"sig\" is not valid standard base64 ({reason})")]
    SignatureBase64 { index: usize, reason: String },
    #[error("signature {index} is {len} bytes long; an ed25519 signature is 64 bytes")]
    SignatureLength { index: usize, len: usize },
    #[error(
        "signature {index} was made by key {found}, not by the expected key {expected} (the envelope was signed by another key)"
    )]
    OtherKey {
        index: usize,
        found: String,
        expected: String,
    },
    #[error(
        "signature does not verify with key {key_id} (the envelope was altered or signed by another key)"
    )]
    BadSignature { key_id: String },
    #[error(
        "the envelope is not in the canonical form airlock writes (it was re-serialized or edited outside the signed payload)"
    )]
    NotCanonical,
    #[error("payload is not an in-toto Statement v1 ({reason})")]
    NotStatement { reason: String },
    #[error("payload has _type {found:?}, expected {expected:?}")]
    WrongStatementType { found: String, expected: String },
}

/// Every failure of this crate. Messages are complete sentences naming what failed and,
/// where it helps, how to fix it.
#[derive(Debug, thiserror::Error)]
pub enum ProofError {
    // ---- signing keys -------------------------------------------------------------
    #[error("signing key {} does not exist", path.display())]
    KeyMissing { path: PathBuf },
    #[error("cannot read signing key {}: {source}", path.display())]
    KeyRead {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write signing key {}: {source}", path.display())]
    KeyWrite {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "signing key {} has mode {mode:04o}; run chmod 600 {} (a private key must not be readable by group or others)",
        path.display(), path.display()
    )]
    KeyPermissions { path: PathBuf, mode: u32 },
    #[error(
        "signing key {} is not an OpenSSH private key ({reason}); expected an unencrypted ed25519 key as written by `ssh-keygen -t ed25519 -N ''`",
        path.display()
    )]
    KeyFormat { path: PathBuf, reason: String },
    #[error(
        "signing key {} is an {algorithm} key; airlock signs with ed25519 only (create one with `ssh-keygen -t ed25519 -N '' -f {}`)",
        path.display(), path.display()
    )]
    KeyAlgorithm { path: PathBuf, algorithm: String },
    #[error(
        "signing key {} is encrypted with a passphrase; airlock needs an unencrypted ed25519 key (remove the passphrase with `ssh-keygen -p -N '' -f {}`)",
        path.display(), path.display()
    )]
    KeyEncrypted { path: PathBuf },

    // ---- public keys and SSH signatures --------------------------------------------
    #[error(
        "not an OpenSSH ed25519 public key ({reason}); expected a line like \"ssh-ed25519 AAAA… comment\""
    )]
    PublicKeyFormat { reason: String },
    #[error("cannot create the SSH signature: {reason}")]
    SshSign { reason: String },
    #[error(
        "the SSH signature is not an armored SSHSIG block (\"-----BEGIN SSH SIGNATURE-----\"): {reason}"
    )]
    SshSignatureFormat { reason: String },
    #[error("the SSH signature was made by key {found}, not by the expected key {expected}")]
    SshSignatureOtherKey { found: String, expected: String },
    #[error("the SSH signature is for namespace {found:?}, expected {expected:?}")]
    SshSignatureNamespace { found: String, expected: String },
    #[error(
        "the SSH signature does not verify with key {key_id} (the signed file was altered after signing, or the signature belongs to another file)"
    )]
    SshSignatureInvalid { key_id: String },

    // ---- envelopes and bundles -----------------------------------------------------
    #[error(transparent)]
    Envelope(EnvelopeError),
    #[error("line {line}: {fault}")]
    Line { line: usize, fault: EnvelopeError },
    #[error("cannot build the bundle: statement {index} {reason}")]
    InvalidStatement { index: usize, reason: String },
    #[error(
        "the bundle is empty (expected one DSSE envelope per line, ending with the bundle index)"
    )]
    EmptyBundle,
    #[error(
        "the last line ({line}) is not the bundle index: its predicateType is {found:?}, expected {expected:?} (the index line was moved, a line was appended after it, or the file was truncated)"
    )]
    MissingIndex {
        line: usize,
        found: String,
        expected: String,
    },
    #[error(
        "line {line} is a bundle index but not the last line (an index was injected or bundles were concatenated)"
    )]
    IndexNotLast { line: usize },
    #[error("the bundle index on line {line} is malformed: {reason}")]
    IndexMalformed { line: usize, reason: String },
    #[error("line {line} duplicates line {first} (a line was duplicated)")]
    DuplicateLine { line: usize, first: usize },
    #[error("line {line} is not listed in the bundle index (a line was injected)")]
    LineNotListed { line: usize },
    #[error(
        "the bundle index lists {listed} envelopes but the file has {actual} (a line was dropped: envelope {missing} of the index, sha256 {digest}, is missing)"
    )]
    LineDropped {
        listed: usize,
        actual: usize,
        missing: usize,
        digest: String,
    },
    #[error(
        "line {line} is listed in the bundle index as envelope {listed_as} (lines were reordered)"
    )]
    LinesReordered { line: usize, listed_as: usize },
}

impl ProofError {
    pub(crate) fn at(line: usize, fault: EnvelopeError) -> ProofError {
        ProofError::Line { line, fault }
    }
}

impl From<EnvelopeError> for ProofError {
    fn from(fault: EnvelopeError) -> ProofError {
        ProofError::Envelope(fault)
    }
}
