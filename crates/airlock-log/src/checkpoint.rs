//! Checkpoints in the C2SP checkpoint text form (<https://c2sp.org/tlog-checkpoint>):
//! the origin line, the tree size in decimal, the root hash in base64, each
//! ending in a newline. airlock writes no extension lines and accepts none.
//! The signature is not a signed note's: it is SSHSIG over the text in the
//! namespace [`NAMESPACE`], so `ssh-keygen -Y verify` checks it against the
//! repository's `.airlock/runners`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use airlock_proof::SigningKey;
use airlock_proof::signers::{AllowedSigners, SignatureRefused, VerifiedSigner};

use crate::tree::Hash;

/// The SSHSIG namespace of a checkpoint's signature.
pub const NAMESPACE: &str = "airlock-checkpoint";

/// The most bytes of a checkpoint's text or signature read from a remote.
pub const MAX_CHECKPOINT_BYTES: usize = 4096;

const MAX_ORIGIN: usize = 256;

/// What is wrong with a checkpoint, in a phrase.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CheckpointError {
    #[error("the checkpoint is malformed: {0}")]
    Malformed(String),
    #[error("the checkpoint's signature is malformed: {0}")]
    SignatureMalformed(String),
    #[error("the checkpoint's signer {principal:?} is not trusted by .airlock/runners: {reason}")]
    Refused { principal: String, reason: String },
    #[error("{0}")]
    BadSignature(String),
}

/// One state of the log: its origin, size and root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub origin: String,
    pub size: u64,
    pub root: Hash,
}

impl Checkpoint {
    /// The text that is signed.
    pub fn to_text(&self) -> String {
        format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            STANDARD.encode(self.root)
        )
    }

    /// Reads checkpoint text: exactly three lines, bounded.
    pub fn parse(text: &[u8]) -> Result<Checkpoint, CheckpointError> {
        let bad = |what: &str| CheckpointError::Malformed(what.to_string());
        if text.len() > MAX_CHECKPOINT_BYTES {
            return Err(bad(&format!(
                "it is {} bytes, more than {MAX_CHECKPOINT_BYTES}",
                text.len()
            )));
        }
        let text = std::str::from_utf8(text).map_err(|_| bad("it is not UTF-8"))?;
        let Some(body) = text.strip_suffix('\n') else {
            return Err(bad("its last line does not end in a newline"));
        };
        let lines: Vec<&str> = body.split('\n').collect();
        let [origin, size, root] = lines[..] else {
            return Err(bad(&format!(
                "it has {} lines; a checkpoint has 3 (origin, size, root)",
                lines.len()
            )));
        };
        if origin.is_empty() || origin.len() > MAX_ORIGIN || origin.chars().any(|c| c.is_control())
        {
            return Err(bad(
                "its origin line is empty, too long or has control characters",
            ));
        }
        let size_ok = !size.is_empty()
            && size.bytes().all(|b| b.is_ascii_digit())
            && (size == "0" || !size.starts_with('0'));
        let size: u64 = size
            .parse()
            .ok()
            .filter(|_| size_ok)
            .ok_or_else(|| bad("its size line is not a decimal number"))?;
        let root: Hash = STANDARD
            .decode(root)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| bad("its root line is not the base64 of 32 bytes"))?;
        Ok(Checkpoint {
            origin: origin.to_string(),
            size,
            root,
        })
    }

    /// Signs the text with the machine's key, as `principal`.
    pub fn sign(
        &self,
        key: &SigningKey,
        principal: &str,
    ) -> Result<SignedCheckpoint, CheckpointError> {
        let text = self.to_text();
        let signature = key
            .ssh_sign(NAMESPACE, text.as_bytes())
            .map_err(|e| CheckpointError::SignatureMalformed(e.to_string()))?;
        Ok(SignedCheckpoint {
            checkpoint: self.clone(),
            text,
            signature,
            principal: principal.to_string(),
        })
    }

    /// The root in hex, as reports show it.
    pub fn root_hex(&self) -> String {
        hex::encode(self.root)
    }
}

/// A checkpoint with its text as signed, its armored SSHSIG, and the
/// principal the signer claims (checked against `.airlock/runners`).
#[derive(Debug, Clone, PartialEq)]
pub struct SignedCheckpoint {
    pub checkpoint: Checkpoint,
    pub text: String,
    pub signature: String,
    pub principal: String,
}

impl SignedCheckpoint {
    /// Reads a checkpoint, its signature and its signer's principal as a
    /// remote holds them.
    pub fn parse(
        text: &[u8],
        signature: &[u8],
        principal: &[u8],
    ) -> Result<SignedCheckpoint, CheckpointError> {
        let checkpoint = Checkpoint::parse(text)?;
        let bad = |what: &str| CheckpointError::SignatureMalformed(what.to_string());
        if signature.len() > MAX_CHECKPOINT_BYTES {
            return Err(bad(&format!(
                "it is {} bytes, more than {MAX_CHECKPOINT_BYTES}",
                signature.len()
            )));
        }
        let signature = std::str::from_utf8(signature)
            .map_err(|_| bad("it is not UTF-8"))?
            .to_string();
        let principal = std::str::from_utf8(principal)
            .ok()
            .map(str::trim)
            .filter(|p| !p.is_empty() && p.len() <= MAX_ORIGIN && !p.chars().any(char::is_control))
            .ok_or_else(|| bad("its signer's principal is empty, too long or not text"))?
            .to_string();
        Ok(SignedCheckpoint {
            checkpoint,
            text: String::from_utf8_lossy(text).into_owned(),
            signature,
            principal,
        })
    }

    /// Checks the signature was made in [`NAMESPACE`] over the text by a key
    /// `signers` (the repository's `.airlock/runners`) lets sign as the
    /// claimed principal at `at` (Unix seconds): what `ssh-keygen -Y verify
    /// -f .airlock/runners -I PRINCIPAL -n airlock-checkpoint` checks.
    pub fn verify(
        &self,
        signers: &AllowedSigners,
        at: u64,
    ) -> Result<VerifiedSigner, CheckpointError> {
        signers
            .verify(
                &self.principal,
                NAMESPACE,
                self.text.as_bytes(),
                &self.signature,
                at,
            )
            .map_err(|e| match e {
                SignatureRefused::Format { reason } => CheckpointError::SignatureMalformed(reason),
                SignatureRefused::Denied(denied) => CheckpointError::Refused {
                    principal: self.principal.clone(),
                    reason: denied.to_string(),
                },
                other => CheckpointError::BadSignature(other.to_string()),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checkpoint() -> Checkpoint {
        Checkpoint {
            origin: "airlock.dev/log/abc".into(),
            size: 12,
            root: [7; 32],
        }
    }

    #[test]
    fn the_text_is_the_c2sp_form_and_reads_back() {
        let c = checkpoint();
        let text = c.to_text();
        assert_eq!(
            text,
            "airlock.dev/log/abc\n12\nBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=\n"
        );
        assert_eq!(Checkpoint::parse(text.as_bytes()).unwrap(), c);
    }

    #[test]
    fn malformed_text_is_refused_naming_the_line() {
        let cases: &[(&[u8], &str)] = &[
            (b"o\n12\n", "has 2 lines"),
            (b"o\n12\nBwc=", "newline"),
            (
                b"o\n012\nBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=\n",
                "size",
            ),
            (
                b"o\n-1\nBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=\n",
                "size",
            ),
            (b"o\n1\nBwc=\n", "32 bytes"),
            (
                b"\n1\nBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=\n",
                "origin",
            ),
            (
                b"o\x1b\n1\nBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=\n",
                "origin",
            ),
            (b"\xff\n1\n", "UTF-8"),
            (
                b"o\n1\nBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=\n\n",
                "lines",
            ),
        ];
        for (text, needle) in cases {
            let err = Checkpoint::parse(text).unwrap_err().to_string();
            assert!(err.contains(needle), "{text:?}: {err}");
        }
        let big = vec![b'a'; MAX_CHECKPOINT_BYTES + 1];
        assert!(Checkpoint::parse(&big).is_err());
    }

    #[test]
    fn a_signature_verifies_by_its_signer_only() {
        let key = SigningKey::generate();
        let other = SigningKey::generate();
        let signed = checkpoint().sign(&key, "ci@example.com").unwrap();
        let runners = AllowedSigners::parse(&format!(
            "ci@example.com {}\nx@example.com {}\n",
            key.public().to_openssh(),
            other.public().to_openssh()
        ))
        .unwrap();
        let only_other =
            AllowedSigners::parse(&format!("x@example.com {}\n", other.public().to_openssh()))
                .unwrap();
        let back = SignedCheckpoint::parse(
            signed.text.as_bytes(),
            signed.signature.as_bytes(),
            b"ci@example.com\n",
        )
        .unwrap();
        assert_eq!(back, signed);
        let now = 1_800_000_000;
        assert_eq!(
            back.verify(&runners, now).unwrap().principal,
            "ci@example.com"
        );
        assert!(matches!(
            back.verify(&only_other, now),
            Err(CheckpointError::Refused { .. })
        ));
        // Claiming another runner's principal.
        let mut claimed = back.clone();
        claimed.principal = "x@example.com".into();
        assert!(matches!(
            claimed.verify(&runners, now),
            Err(CheckpointError::Refused { .. })
        ));
        // The text changed after signing.
        let mut forged = back.clone();
        forged.text = forged.text.replace("12", "13");
        assert!(matches!(
            forged.verify(&runners, now),
            Err(CheckpointError::BadSignature(_))
        ));
        let junk =
            SignedCheckpoint::parse(signed.text.as_bytes(), b"junk", b"ci@example.com").unwrap();
        assert!(matches!(
            junk.verify(&runners, now),
            Err(CheckpointError::SignatureMalformed(_))
        ));
        assert!(SignedCheckpoint::parse(signed.text.as_bytes(), b"", b"\x1b").is_err());
    }
}
