use std::fs;
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use ed25519_dalek::Signer;
use sha2::{Digest, Sha256};
use ssh_key::private::{Ed25519Keypair, KeypairData};
use ssh_key::public::{Ed25519PublicKey, KeyData};
use ssh_key::{HashAlg, LineEnding, SshSig};

use crate::error::ProofError;

/// Comment written into generated keys and public key lines.
const COMMENT: &str = "airlock";
const KEY_FILE: &str = "signing_key";
const PUB_FILE: &str = "signing_key.pub";

/// An ed25519 signing key. Its `Debug` output never shows the secret.
pub struct SigningKey {
    inner: ed25519_dalek::SigningKey,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("key_id", &self.public().key_id())
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// A fresh key from the operating system's random source.
    pub fn generate() -> SigningKey {
        SigningKey {
            inner: ed25519_dalek::SigningKey::generate(&mut rand_core::OsRng),
        }
    }

    /// Load `dir/signing_key` (OpenSSH private key format, unencrypted ed25519) or create it
    /// (dir mode 0700 when created, key 0600, plus `dir/signing_key.pub` in OpenSSH public
    /// form). Returns the key and whether it was created.
    pub fn load_or_create(dir: &Path) -> Result<(SigningKey, bool), ProofError> {
        let path = dir.join(KEY_FILE);
        match fs::symlink_metadata(&path) {
            Ok(_) => return SigningKey::load(&path).map(|k| (k, false)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(ProofError::KeyRead { path, source }),
        }
        create_private_dir(dir).map_err(|source| ProofError::KeyWrite {
            path: dir.to_path_buf(),
            source,
        })?;
        let key = SigningKey::generate();
        let pem = key.to_openssh_private()?;
        // The private key is written under a temporary name and linked into place, so an
        // interrupted run never leaves a half-written key behind, and a concurrent creator
        // that won the race is respected.
        match write_file(&path, pem.as_bytes(), 0o600, false) {
            Ok(()) => {}
            Err(ProofError::KeyWrite { source, .. })
                if source.kind() == std::io::ErrorKind::AlreadyExists =>
            {
                return SigningKey::load(&path).map(|k| (k, false));
            }
            Err(e) => return Err(e),
        }
        let public_line = format!("{}\n", key.public().to_openssh());
        write_file(&dir.join(PUB_FILE), public_line.as_bytes(), 0o644, true)?;
        Ok((key, true))
    }

    /// Load an unencrypted ed25519 private key in OpenSSH format.
    pub fn load(path: &Path) -> Result<SigningKey, ProofError> {
        let meta = match fs::metadata(path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(ProofError::KeyMissing {
                    path: path.to_path_buf(),
                });
            }
            Err(source) => {
                return Err(ProofError::KeyRead {
                    path: path.to_path_buf(),
                    source,
                });
            }
        };
        if !meta.is_file() {
            return Err(ProofError::KeyFormat {
                path: path.to_path_buf(),
                reason: "it is not a regular file".into(),
            });
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = meta.permissions().mode() & 0o7777;
            if mode & 0o077 != 0 {
                return Err(ProofError::KeyPermissions {
                    path: path.to_path_buf(),
                    mode,
                });
            }
        }
        if meta.len() > 64 * 1024 {
            return Err(ProofError::KeyFormat {
                path: path.to_path_buf(),
                reason: format!("the file is {} bytes, far too large for a key", meta.len()),
            });
        }
        let bytes = fs::read(path).map_err(|source| ProofError::KeyRead {
            path: path.to_path_buf(),
            source,
        })?;
        parse_private(path, &bytes)
    }

    /// The matching public key.
    pub fn public(&self) -> PublicKey {
        PublicKey {
            inner: self.inner.verifying_key(),
        }
    }

    /// SSHSIG armored signature ("-----BEGIN SSH SIGNATURE-----"), hash sha512, over
    /// `message` in `namespace`. `ssh-keygen -Y verify -n <namespace>` accepts it.
    pub fn ssh_sign(&self, namespace: &str, message: &[u8]) -> Result<String, ProofError> {
        let private = self.ssh_private()?;
        let sig = SshSig::sign(&private, namespace, HashAlg::Sha512, message).map_err(|e| {
            ProofError::SshSign {
                reason: e.to_string(),
            }
        })?;
        sig.to_pem(LineEnding::LF).map_err(|e| ProofError::SshSign {
            reason: e.to_string(),
        })
    }

    /// Raw ed25519 signature over `message`.
    pub(crate) fn sign_raw(&self, message: &[u8]) -> [u8; 64] {
        self.inner.sign(message).to_bytes()
    }

    /// The key in OpenSSH private key format (unencrypted), as written by `load_or_create`.
    pub fn to_openssh_private(&self) -> Result<String, ProofError> {
        self.ssh_private()?
            .to_openssh(LineEnding::LF)
            .map(|pem| pem.to_string())
            .map_err(|e| ProofError::SshSign {
                reason: format!("cannot encode the key in OpenSSH format: {e}"),
            })
    }

    fn ssh_private(&self) -> Result<ssh_key::PrivateKey, ProofError> {
        let pair = Ed25519Keypair::from(&self.inner);
        ssh_key::PrivateKey::new(KeypairData::Ed25519(pair), COMMENT).map_err(|e| {
            ProofError::SshSign {
                reason: format!("cannot build the OpenSSH key: {e}"),
            }
        })
    }
}

/// An ed25519 public key.
#[derive(Clone, Debug, PartialEq)]
pub struct PublicKey {
    inner: ed25519_dalek::VerifyingKey,
}

impl PublicKey {
    /// `"ssh-ed25519 AAAA… airlock"`.
    pub fn to_openssh(&self) -> String {
        format!(
            "ssh-ed25519 {} {COMMENT}",
            STANDARD.encode(self.wire_blob())
        )
    }

    /// Parse an OpenSSH public key line (`ssh-ed25519 AAAA… [comment]`).
    pub fn from_openssh(line: &str) -> Result<PublicKey, ProofError> {
        let line = line.trim();
        if line.is_empty() {
            return Err(ProofError::PublicKeyFormat {
                reason: "the text is empty".into(),
            });
        }
        let key =
            ssh_key::PublicKey::from_openssh(line).map_err(|e| ProofError::PublicKeyFormat {
                reason: e.to_string(),
            })?;
        match key.key_data() {
            KeyData::Ed25519(pk) => PublicKey::from_bytes(&pk.0),
            other => Err(ProofError::PublicKeyFormat {
                reason: format!("it is an {} key", other.algorithm()),
            }),
        }
    }

    /// From the raw 32-byte ed25519 public key.
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<PublicKey, ProofError> {
        ed25519_dalek::VerifyingKey::from_bytes(bytes)
            .map(|inner| PublicKey { inner })
            .map_err(|_| ProofError::PublicKeyFormat {
                reason: "the 32 bytes are not a valid ed25519 point".into(),
            })
    }

    /// The raw 32-byte ed25519 public key.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.inner.to_bytes()
    }

    /// `"SHA256:…"`, the OpenSSH fingerprint (as `ssh-keygen -l` shows it); used as DSSE keyid.
    pub fn key_id(&self) -> String {
        format!(
            "SHA256:{}",
            STANDARD_NO_PAD.encode(Sha256::digest(self.wire_blob()))
        )
    }

    /// Verify an armored SSHSIG over `message` in `namespace`.
    pub fn ssh_verify(
        &self,
        namespace: &str,
        message: &[u8],
        armored: &str,
    ) -> Result<(), ProofError> {
        let sig = SshSig::from_pem(armored.trim()).map_err(|e| ProofError::SshSignatureFormat {
            reason: e.to_string(),
        })?;
        let ours = KeyData::Ed25519(Ed25519PublicKey(self.inner.to_bytes()));
        if sig.public_key() != &ours {
            return Err(ProofError::SshSignatureOtherKey {
                found: sig.public_key().fingerprint(HashAlg::Sha256).to_string(),
                expected: self.key_id(),
            });
        }
        if sig.namespace() != namespace {
            return Err(ProofError::SshSignatureNamespace {
                found: sig.namespace().to_string(),
                expected: namespace.to_string(),
            });
        }
        ssh_key::PublicKey::new(ours, COMMENT)
            .verify(namespace, message, &sig)
            .map_err(|_| ProofError::SshSignatureInvalid {
                key_id: self.key_id(),
            })
    }

    /// Strict ed25519 verification of a raw signature.
    pub(crate) fn verify_raw(&self, message: &[u8], sig: &[u8; 64]) -> bool {
        let sig = ed25519_dalek::Signature::from_bytes(sig);
        self.inner.verify_strict(message, &sig).is_ok()
    }

    /// SSH wire encoding: string "ssh-ed25519", string key.
    fn wire_blob(&self) -> Vec<u8> {
        let mut blob = Vec::with_capacity(51);
        blob.extend_from_slice(&11u32.to_be_bytes());
        blob.extend_from_slice(b"ssh-ed25519");
        blob.extend_from_slice(&32u32.to_be_bytes());
        blob.extend_from_slice(self.inner.as_bytes());
        blob
    }
}

fn parse_private(path: &Path, bytes: &[u8]) -> Result<SigningKey, ProofError> {
    let format_err = |reason: &str| ProofError::KeyFormat {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    };
    let text = std::str::from_utf8(bytes).map_err(|_| format_err("the file is not text"))?;
    let text = text.trim();
    if text.is_empty() {
        return Err(format_err("the file is empty"));
    }
    if !text.starts_with("-----BEGIN OPENSSH PRIVATE KEY-----") {
        let reason = if text.starts_with("-----BEGIN RSA PRIVATE KEY-----") {
            "it is an RSA key in PEM (PKCS#1) format"
        } else if text.starts_with("-----BEGIN EC PRIVATE KEY-----") {
            "it is an EC key in PEM format"
        } else if text.starts_with("-----BEGIN PRIVATE KEY-----")
            || text.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----")
        {
            "it is a PKCS#8 PEM key"
        } else if text.starts_with("ssh-") || text.starts_with("ecdsa-") {
            "it is a public key, not a private key"
        } else {
            "it does not start with -----BEGIN OPENSSH PRIVATE KEY-----"
        };
        return Err(format_err(reason));
    }
    let key = match ssh_key::PrivateKey::from_openssh(text) {
        Ok(k) => k,
        Err(e) => {
            // ssh-key cannot decode every algorithm; read the header ourselves so the
            // message names what the file holds.
            return Err(match sniff_openssh(text) {
                Some((cipher, _)) if cipher != "none" => ProofError::KeyEncrypted {
                    path: path.to_path_buf(),
                },
                Some((_, alg)) if alg != "ssh-ed25519" => ProofError::KeyAlgorithm {
                    path: path.to_path_buf(),
                    algorithm: alg,
                },
                _ => format_err(&format!("it cannot be decoded: {e}")),
            });
        }
    };
    if key.is_encrypted() {
        return Err(ProofError::KeyEncrypted {
            path: path.to_path_buf(),
        });
    }
    match key.key_data() {
        KeypairData::Ed25519(pair) => {
            let inner = ed25519_dalek::SigningKey::from_bytes(&pair.private.to_bytes());
            if inner.verifying_key().to_bytes() != pair.public.0 {
                return Err(format_err(
                    "its public half does not match its private half (the file is corrupt)",
                ));
            }
            Ok(SigningKey { inner })
        }
        other => Err(ProofError::KeyAlgorithm {
            path: path.to_path_buf(),
            algorithm: other
                .algorithm()
                .map(|a| a.to_string())
                .unwrap_or_else(|_| "unknown".into()),
        }),
    }
}

/// Read (cipher name, public key algorithm) from an `openssh-key-v1` container.
fn sniff_openssh(text: &str) -> Option<(String, String)> {
    let body: String = text
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .flat_map(|l| l.trim().chars())
        .collect();
    let raw = STANDARD.decode(body).ok()?;
    let mut rest = raw.strip_prefix(b"openssh-key-v1\0".as_slice())?;
    let cipher = read_string(&mut rest)?;
    let _kdf = read_string(&mut rest)?;
    let _kdf_options = read_string(&mut rest)?;
    let count = rest.get(..4)?;
    rest = &rest[4..];
    if count != [0, 0, 0, 1] {
        return None;
    }
    let mut public = read_string(&mut rest)?;
    let alg = read_string(&mut public)?;
    Some((
        String::from_utf8_lossy(cipher).into_owned(),
        String::from_utf8_lossy(alg).into_owned(),
    ))
}

fn read_string<'a>(buf: &mut &'a [u8]) -> Option<&'a [u8]> {
    let len = u32::from_be_bytes(buf.get(..4)?.try_into().ok()?) as usize;
    let s = buf.get(4..4usize.checked_add(len)?)?;
    *buf = &buf[4 + len..];
    Some(s)
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)
}

/// Write `data` to `path` with `mode`, whole or not at all (`airlock_fs`).
/// With `replace == false` an existing `path` is an error (a concurrent creator won).
fn write_file(path: &Path, data: &[u8], mode: u32, replace: bool) -> Result<(), ProofError> {
    let mut write = airlock_fs::Write::new().mode(mode);
    if !replace {
        write = write.no_clobber();
    }
    write
        .write(path, data)
        .map_err(|source| ProofError::KeyWrite {
            path: path.to_path_buf(),
            source,
        })
}
