//! OpenSSH `allowed_signers` files (ssh-keygen(1), "ALLOWED SIGNERS"): who may sign as whom,
//! in which SSHSIG namespaces, and when. airlock reads `.airlock/reviewers` and
//! `.airlock/runners` with it, so a file `ssh-keygen -Y verify -f FILE` accepts means the same
//! here.
//!
//! One line: `PRINCIPALS [OPTIONS] KEYTYPE BASE64 [COMMENT]`. Principals are a comma-separated
//! pattern list (`*`, `?`, `!` negation). Options: `cert-authority`, `namespaces="a,b"`,
//! `valid-after="…"`, `valid-before="…"`. Dates are `YYYYMMDD[HHMM[SS]]Z`: OpenSSH reads a
//! date without `Z` in the verifying machine's local time zone, so two members in different
//! zones would disagree about when a key expires; airlock refuses such a date and asks for
//! the `Z` form.
//!
//! The file comes from a commit an agent may have written: parsing never panics and every
//! fault names its line and what to write instead.

use ssh_encoding::pem::PemLabel;
use ssh_encoding::{Decode, DecodePem, Reader};
use ssh_key::public::KeyData;
use ssh_key::{Algorithm, Certificate, HashAlg, PublicKey, Signature, SshSig};

/// Lines longer than this are refused: a key line is a few hundred bytes (RSA 4096: ~750).
const MAX_LINE: usize = 16 * 1024;
/// Files longer than this are refused before parsing.
pub const MAX_FILE: usize = 1024 * 1024;

/// A malformed line of an `allowed_signers` file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {problem}; {hint}")]
pub struct SignersError {
    /// 1-based line number (0: the file as a whole).
    pub line: usize,
    pub problem: String,
    /// What to write instead.
    pub hint: String,
}

fn fault(line: usize, problem: impl Into<String>, hint: impl Into<String>) -> SignersError {
    SignersError {
        line,
        problem: problem.into(),
        hint: hint.into(),
    }
}

/// One line of the file.
#[derive(Debug, Clone)]
pub struct SignerEntry {
    /// 1-based line number, for messages.
    pub line: usize,
    /// The principal patterns as written.
    pub principals: Vec<String>,
    pub cert_authority: bool,
    /// `None`: any namespace.
    pub namespaces: Option<Vec<String>>,
    /// Unix seconds; the key is valid from this time on.
    pub valid_after: Option<u64>,
    /// Unix seconds; the key is valid before this time.
    pub valid_before: Option<u64>,
    pub key: PublicKey,
}

impl SignerEntry {
    /// Whether `principal` matches this line's principal patterns.
    pub fn names(&self, principal: &str) -> bool {
        match_pattern_list(principal, &self.principals)
    }

    fn allows_namespace(&self, namespace: &str) -> bool {
        match &self.namespaces {
            None => true,
            Some(list) => match_pattern_list(namespace, list),
        }
    }

    fn valid_at(&self, at: u64) -> Result<(), SignerDenied> {
        if let Some(after) = self.valid_after
            && at < after
        {
            return Err(SignerDenied::NotYetValid {
                line: self.line,
                valid_after: after,
            });
        }
        if let Some(before) = self.valid_before
            && at >= before
        {
            return Err(SignerDenied::Expired {
                line: self.line,
                valid_before: before,
            });
        }
        Ok(())
    }
}

/// Why a key may not sign as a principal. Each names the line that came closest, so a
/// message can say which entry to change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignerDenied {
    #[error("key {fingerprint} is not listed")]
    UnknownKey { fingerprint: String },
    #[error("key {fingerprint} is listed for {listed}, not for {principal}")]
    OtherPrincipal {
        fingerprint: String,
        principal: String,
        listed: String,
    },
    #[error(
        "key {fingerprint} (line {line}) may sign only in namespaces {allowed}, not {namespace}"
    )]
    Namespace {
        fingerprint: String,
        line: usize,
        namespace: String,
        allowed: String,
    },
    #[error("the key on line {line} is valid only from {} on", format_time(*valid_after))]
    NotYetValid { line: usize, valid_after: u64 },
    #[error("the key on line {line} expired at {}", format_time(*valid_before))]
    Expired { line: usize, valid_before: u64 },
    #[error("the certificate is not valid: {reason}")]
    Certificate { reason: String },
    #[error("the certificate {key_id:?} expired at {}", format_time(*valid_before))]
    CertificateExpired { key_id: String, valid_before: u64 },
    #[error("the certificate {key_id:?} is valid only from {} on", format_time(*valid_after))]
    CertificateNotYetValid { key_id: String, valid_after: u64 },
}

impl SignerDenied {
    /// Whether the key or certificate was admitted but is outside its validity period
    /// (renewing it helps; listing it does not).
    pub fn is_expiry(&self) -> bool {
        matches!(
            self,
            SignerDenied::Expired { .. }
                | SignerDenied::NotYetValid { .. }
                | SignerDenied::CertificateExpired { .. }
                | SignerDenied::CertificateNotYetValid { .. }
        )
    }
}

/// What makes (or made) an SSH signature: a plain key, or an OpenSSH user certificate whose
/// key signs and whose certificate authority vouches for the principals it names.
#[derive(Debug, Clone)]
pub enum SshIdentity {
    Key(KeyData),
    Certificate(Box<Certificate>),
}

impl SshIdentity {
    /// A `.pub` file's line: a public key or a certificate (`…-cert.pub`).
    pub fn from_openssh(text: &str) -> Option<SshIdentity> {
        let text = text.trim();
        if let Ok(key) = PublicKey::from_openssh(text) {
            return Some(SshIdentity::Key(key.key_data().clone()));
        }
        Certificate::from_openssh(text)
            .ok()
            .map(|cert| SshIdentity::Certificate(Box::new(cert)))
    }

    /// The key that signs (a certificate's own key, not its authority's).
    pub fn key_data(&self) -> &KeyData {
        match self {
            SshIdentity::Key(key) => key,
            SshIdentity::Certificate(cert) => cert.public_key(),
        }
    }

    /// `SHA256:…` of the key that signs, as `ssh-keygen -Y verify` prints it.
    pub fn fingerprint(&self) -> String {
        self.key_data().fingerprint(HashAlg::Sha256).to_string()
    }
}

/// How a certificate vouched for a signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertifiedBy {
    /// `SHA256:…` of the certificate authority's key.
    pub authority: String,
    /// The certificate's key id (`ssh-keygen -s CA -I ID`).
    pub key_id: String,
    pub serial: u64,
    /// Every principal the certificate names: one person's names, so an approval under any
    /// of them is that person's.
    pub principals: Vec<String>,
}

/// A verified SSH signature: the entry that admitted it and the key that made it.
#[derive(Debug, Clone)]
pub struct VerifiedSigner {
    pub line: usize,
    pub principal: String,
    /// `SHA256:…` of the signing key (a certificate's own key).
    pub fingerprint: String,
    /// The certificate it signed with, when a `cert-authority` line admitted it.
    pub certificate: Option<CertifiedBy>,
}

/// Why a detached SSH signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureRefused {
    #[error(
        "the SSH signature is not an armored SSHSIG block (\"-----BEGIN SSH SIGNATURE-----\"): {reason}"
    )]
    Format { reason: String },
    #[error("the SSH signature is for namespace {found:?}, expected {expected:?}")]
    Namespace { found: String, expected: String },
    #[error(
        "the SSH signature does not verify with key {fingerprint} (the signed bytes were altered after signing, or the signature belongs to something else)"
    )]
    Invalid { fingerprint: String },
    #[error(transparent)]
    Denied(SignerDenied),
}

/// A parsed `allowed_signers` file.
#[derive(Debug, Clone, Default)]
pub struct AllowedSigners {
    pub entries: Vec<SignerEntry>,
}

impl AllowedSigners {
    /// Parse the whole file; the first malformed line is the error.
    pub fn parse(text: &str) -> Result<AllowedSigners, SignersError> {
        if text.len() > MAX_FILE {
            return Err(fault(
                0,
                format!(
                    "the file is {} bytes, more than the {MAX_FILE} airlock reads",
                    text.len()
                ),
                "keep one line per key",
            ));
        }
        let mut entries = Vec::new();
        for (index, raw) in text.split('\n').enumerate() {
            let line = index + 1;
            let raw = raw.strip_suffix('\r').unwrap_or(raw);
            if raw.len() > MAX_LINE {
                return Err(fault(
                    line,
                    format!("the line is {} bytes long", raw.len()),
                    "a key line is a few hundred bytes: write PRINCIPALS [OPTIONS] KEYTYPE BASE64",
                ));
            }
            let trimmed = raw.trim_matches([' ', '\t']);
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            entries.push(parse_line(line, trimmed)?);
        }
        Ok(AllowedSigners { entries })
    }

    /// The entries (plain keys, not certificate authorities) that let `key` sign in
    /// `namespace` at `at`, whatever the principal: `ssh-keygen -Y find-principals`.
    pub fn find_principals(
        &self,
        key: &KeyData,
        namespace: &str,
        at: u64,
    ) -> Result<Vec<&SignerEntry>, SignerDenied> {
        self.admit(None, key, namespace, at)
    }

    /// The entry that lets `key` sign as `principal` in `namespace` at `at` (Unix seconds).
    pub fn authorize(
        &self,
        principal: &str,
        key: &KeyData,
        namespace: &str,
        at: u64,
    ) -> Result<&SignerEntry, SignerDenied> {
        self.admit(Some(principal), key, namespace, at)
            .map(|found| found[0])
    }

    fn admit(
        &self,
        principal: Option<&str>,
        key: &KeyData,
        namespace: &str,
        at: u64,
    ) -> Result<Vec<&SignerEntry>, SignerDenied> {
        let fingerprint = key.fingerprint(HashAlg::Sha256).to_string();
        let keyed: Vec<&SignerEntry> = self
            .entries
            .iter()
            .filter(|e| !e.cert_authority && e.key.key_data() == key)
            .collect();
        self.narrow(keyed, principal, namespace, at, fingerprint)
    }

    fn narrow<'a>(
        &self,
        keyed: Vec<&'a SignerEntry>,
        principal: Option<&str>,
        namespace: &str,
        at: u64,
        fingerprint: String,
    ) -> Result<Vec<&'a SignerEntry>, SignerDenied> {
        if keyed.is_empty() {
            return Err(SignerDenied::UnknownKey { fingerprint });
        }
        let named: Vec<&SignerEntry> = match principal {
            Some(p) => keyed.iter().copied().filter(|e| e.names(p)).collect(),
            None => keyed.clone(),
        };
        if named.is_empty() {
            return Err(SignerDenied::OtherPrincipal {
                fingerprint,
                principal: principal.unwrap_or_default().to_string(),
                listed: keyed
                    .iter()
                    .map(|e| e.principals.join(","))
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
        let in_namespace: Vec<&SignerEntry> = named
            .iter()
            .copied()
            .filter(|e| e.allows_namespace(namespace))
            .collect();
        if in_namespace.is_empty() {
            let first = named[0];
            return Err(SignerDenied::Namespace {
                fingerprint,
                line: first.line,
                namespace: namespace.to_string(),
                allowed: first.namespaces.clone().unwrap_or_default().join(","),
            });
        }
        let mut first_denial = None;
        let mut valid = Vec::new();
        for entry in in_namespace {
            match entry.valid_at(at) {
                Ok(()) => valid.push(entry),
                Err(denial) => {
                    first_denial.get_or_insert(denial);
                }
            }
        }
        match (valid.is_empty(), first_denial) {
            (true, Some(denial)) => Err(denial),
            _ => Ok(valid),
        }
    }

    /// The entry that lets `identity` (a plain key or a certificate) sign as `principal` in
    /// `namespace` at `at`.
    pub fn authorize_identity(
        &self,
        principal: &str,
        identity: &SshIdentity,
        namespace: &str,
        at: u64,
    ) -> Result<&SignerEntry, SignerDenied> {
        match identity {
            SshIdentity::Key(key) => self.authorize(principal, key, namespace, at),
            SshIdentity::Certificate(cert) => {
                self.authorize_certificate(principal, cert, namespace, at)
            }
        }
    }

    /// The certificate-authority entry that lets `cert` sign as `principal` in `namespace` at
    /// `at`, with OpenSSH's rules for signatures (sshsig.c, `sshkey_cert_check_authority`):
    /// a `cert-authority` line naming `principal` lists the key that signed it, it is a user
    /// certificate, it names `principal` (a certificate naming nobody is refused, as
    /// ssh-keygen does), and `at` is inside its validity period. Stricter than OpenSSH: a
    /// certificate with critical options is refused (a signature cannot honour them), and
    /// so is one whose key is listed as a plain key for other principals only (one key is
    /// one person; ssh-keygen would accept it).
    pub fn authorize_certificate(
        &self,
        principal: &str,
        cert: &Certificate,
        namespace: &str,
        at: u64,
    ) -> Result<&SignerEntry, SignerDenied> {
        let ca = cert.signature_key();
        let fingerprint = ca.fingerprint(HashAlg::Sha256);
        let authorities: Vec<&SignerEntry> = self
            .entries
            .iter()
            .filter(|e| e.cert_authority && e.key.key_data() == ca)
            .collect();
        let entry = self.narrow(
            authorities,
            Some(principal),
            namespace,
            at,
            fingerprint.to_string(),
        )?[0];
        let invalid = |reason: &str| SignerDenied::Certificate {
            reason: reason.to_string(),
        };
        if cert.cert_type() != ssh_key::certificate::CertType::User {
            return Err(invalid(
                "it is a host certificate (ssh-keygen -s CA -h), not a user certificate",
            ));
        }
        if !cert.critical_options().is_empty() {
            return Err(invalid(
                "it carries critical options, which a signature cannot honour",
            ));
        }
        if cert.valid_principals().is_empty() {
            return Err(invalid(
                "it names no principal (OpenSSH accepts a certificate for signatures only when it names the signer: ssh-keygen -s CA -n PRINCIPAL)",
            ));
        }
        if !cert.valid_principals().iter().any(|p| p == principal) {
            return Err(invalid(&format!(
                "it names {}, not {principal}",
                cert.valid_principals().join(", ")
            )));
        }
        let key_id = cert.key_id().to_string();
        if at < cert.valid_after() {
            return Err(SignerDenied::CertificateNotYetValid {
                key_id,
                valid_after: cert.valid_after(),
            });
        }
        if at >= cert.valid_before() {
            return Err(SignerDenied::CertificateExpired {
                key_id,
                valid_before: cert.valid_before(),
            });
        }
        cert.validate_at(at, [&fingerprint]).map_err(|_| {
            invalid(&format!(
                "its signature does not verify with the authority's key {fingerprint}"
            ))
        })?;
        let key_fingerprint = cert.public_key().fingerprint(HashAlg::Sha256).to_string();
        let plain: Vec<&SignerEntry> = self
            .entries
            .iter()
            .filter(|e| !e.cert_authority && e.key.key_data() == cert.public_key())
            .collect();
        if !plain.is_empty() && !plain.iter().any(|e| e.names(principal)) {
            return Err(SignerDenied::OtherPrincipal {
                fingerprint: key_fingerprint,
                principal: principal.to_string(),
                listed: plain
                    .iter()
                    .map(|e| e.principals.join(","))
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
        Ok(entry)
    }

    /// Verify an armored SSHSIG over `message` made in `namespace`, and that its key (or
    /// certificate) may sign as `principal` at `at`: `ssh-keygen -Y verify -f FILE -I
    /// PRINCIPAL -n NAMESPACE`.
    pub fn verify(
        &self,
        principal: &str,
        namespace: &str,
        message: &[u8],
        armored: &str,
        at: u64,
    ) -> Result<VerifiedSigner, SignatureRefused> {
        let sig = ArmoredSignature::parse(armored)?;
        if sig.namespace != namespace {
            return Err(SignatureRefused::Namespace {
                found: sig.namespace,
                expected: namespace.to_string(),
            });
        }
        let fingerprint = sig.identity.fingerprint();
        let invalid = || SignatureRefused::Invalid {
            fingerprint: fingerprint.clone(),
        };
        // The signed data is the same whether a key or a certificate signed
        // (PROTOCOL.sshsig): check it with the signing key itself.
        let key = PublicKey::from(sig.identity.key_data().clone());
        let plain = SshSig::new(
            key.key_data().clone(),
            namespace,
            sig.hash_alg,
            sig.signature,
        )
        .map_err(|_| invalid())?;
        key.verify(namespace, message, &plain)
            .map_err(|_| invalid())?;
        let entry = self
            .authorize_identity(principal, &sig.identity, namespace, at)
            .map_err(SignatureRefused::Denied)?;
        let certificate = match &sig.identity {
            SshIdentity::Key(_) => None,
            SshIdentity::Certificate(cert) => Some(CertifiedBy {
                authority: cert
                    .signature_key()
                    .fingerprint(HashAlg::Sha256)
                    .to_string(),
                key_id: cert.key_id().to_string(),
                serial: cert.serial(),
                principals: cert.valid_principals().to_vec(),
            }),
        };
        Ok(VerifiedSigner {
            line: entry.line,
            principal: principal.to_string(),
            fingerprint,
            certificate,
        })
    }
}

/// An armored SSHSIG (PROTOCOL.sshsig) whose key may be a certificate. ssh-key's `SshSig`
/// reads only plain keys, so a signature made with a certificate (`ssh-keygen -Y sign -f
/// KEY-cert.pub`, or a certificate in ssh-agent) is read here, field by field with
/// ssh-encoding.
struct ArmoredSignature {
    identity: SshIdentity,
    namespace: String,
    hash_alg: HashAlg,
    signature: Signature,
}

impl ArmoredSignature {
    fn parse(armored: &str) -> Result<ArmoredSignature, SignatureRefused> {
        let armored = armored.trim().as_bytes();
        match SshSig::from_pem(armored) {
            Ok(sig) => Ok(ArmoredSignature {
                identity: SshIdentity::Key(sig.public_key().clone()),
                namespace: sig.namespace().to_string(),
                hash_alg: sig.hash_alg(),
                signature: sig.signature().clone(),
            }),
            // Only a certificate's signature is read again; any other fault is reported
            // as ssh-key found it, but for a SHA-1 RSA signature, which it cannot read.
            Err(plain) => match ArmoredSignature::decode_pem(armored) {
                Ok(sig) if matches!(sig.identity, SshIdentity::Certificate(_)) => Ok(sig),
                Err(ssh_key::Error::AlgorithmUnsupported { .. }) => Err(SignatureRefused::Format {
                    reason: "it is an RSA signature over SHA-1 (ssh-rsa), which OpenSSH refuses for SSH signatures too; sign again with ssh-keygen -Y sign, which uses rsa-sha2-512".into(),
                }),
                _ => Err(SignatureRefused::Format {
                    reason: plain.to_string(),
                }),
            },
        }
    }
}

impl PemLabel for ArmoredSignature {
    const PEM_LABEL: &'static str = "SSH SIGNATURE";
}

impl Decode for ArmoredSignature {
    type Error = ssh_key::Error;

    fn decode(reader: &mut impl Reader) -> ssh_key::Result<Self> {
        let mut magic = [0u8; 6];
        reader.read(&mut magic)?;
        if &magic != b"SSHSIG" {
            return Err(ssh_key::Error::FormatEncoding);
        }
        let version = u32::decode(reader)?;
        if version != 1 {
            return Err(ssh_key::Error::Version { number: version });
        }
        let blob = Vec::<u8>::decode(reader)?;
        let algorithm = String::decode(&mut blob.as_slice())?;
        let mut blob = blob.as_slice();
        let identity = if Algorithm::new_certificate(&algorithm).is_ok() {
            SshIdentity::Certificate(Box::new(Certificate::decode(&mut blob)?))
        } else {
            SshIdentity::Key(KeyData::decode(&mut blob)?)
        };
        let identity = blob.finish(identity)?;
        let namespace = String::decode(reader)?;
        if namespace.is_empty() {
            return Err(ssh_key::Error::Namespace);
        }
        let _reserved = Vec::<u8>::decode(reader)?;
        let hash_alg = HashAlg::decode(reader)?;
        let signature = Vec::<u8>::decode(reader)?;
        if String::decode(&mut signature.as_slice())? == "ssh-rsa" {
            return Err(ssh_key::Error::AlgorithmUnsupported {
                algorithm: Algorithm::Rsa { hash: None },
            });
        }
        let mut signature = signature.as_slice();
        let signature = Signature::decode(&mut signature).and_then(|s| Ok(signature.finish(s)?))?;
        Ok(ArmoredSignature {
            identity,
            namespace,
            hash_alg,
            signature,
        })
    }
}

fn parse_line(line: usize, text: &str) -> Result<SignerEntry, SignersError> {
    let (principals_field, rest) = split_field(text);
    let principals: Vec<String> = principals_field
        .trim_matches('"')
        .split(',')
        .map(str::to_string)
        .collect();
    if principals.iter().any(String::is_empty) {
        return Err(fault(
            line,
            format!("the principal list {principals_field:?} has an empty entry"),
            "write principals separated by commas without spaces, e.g. alice@example.com,bob@example.com",
        ));
    }
    if rest.is_empty() {
        return Err(fault(
            line,
            "the line has principals but no key",
            "write PRINCIPALS [OPTIONS] KEYTYPE BASE64, e.g. alice@example.com ssh-ed25519 AAAA…",
        ));
    }
    let (second, after_second) = split_field(rest);
    let (options, key_text) = if ssh_key::Algorithm::new(second).is_ok() {
        (None, rest)
    } else {
        (Some(second), after_second)
    };
    let mut entry = SignerEntry {
        line,
        principals,
        cert_authority: false,
        namespaces: None,
        valid_after: None,
        valid_before: None,
        key: parse_key(line, key_text)?,
    };
    if let Some(options) = options {
        for option in split_options(line, options)? {
            apply_option(line, &mut entry, &option)?;
        }
    }
    if let (Some(after), Some(before)) = (entry.valid_after, entry.valid_before)
        && after >= before
    {
        return Err(fault(
            line,
            "valid-after is not before valid-before",
            "write a valid-after date earlier than the valid-before date",
        ));
    }
    Ok(entry)
}

fn parse_key(line: usize, text: &str) -> Result<PublicKey, SignersError> {
    let (kind, rest) = split_field(text);
    let (blob, _comment) = split_field(rest);
    if ssh_key::Algorithm::new(kind).is_err() {
        return Err(fault(
            line,
            format!("{kind:?} is neither an option list nor a key type"),
            "write PRINCIPALS [OPTIONS] KEYTYPE BASE64, e.g. alice@example.com ssh-ed25519 AAAA… (options such as namespaces=\"airlock-approval\" go before the key type)",
        ));
    }
    if blob.is_empty() {
        return Err(fault(
            line,
            format!("the {kind} key has no base64 data"),
            "paste the whole public key line (the contents of the .pub file)",
        ));
    }
    let key = PublicKey::from_openssh(&format!("{kind} {blob}")).map_err(|e| {
        fault(
            line,
            format!("the {kind} key is not a valid public key ({e})"),
            "paste the whole public key line (the contents of the .pub file)",
        )
    })?;
    Ok(key)
}

fn apply_option(line: usize, entry: &mut SignerEntry, option: &str) -> Result<(), SignersError> {
    let (name, value) = match option.split_once('=') {
        Some((n, v)) => (n, Some(v)),
        None => (option, None),
    };
    let name = name.to_ascii_lowercase();
    let quoted = |value: Option<&str>| -> Result<String, SignersError> {
        let v = value.unwrap_or_default();
        match v.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
            Some(inner) if !inner.is_empty() => Ok(inner.to_string()),
            _ => Err(fault(
                line,
                format!("option {name} needs a quoted value"),
                format!("write {name}=\"VALUE\""),
            )),
        }
    };
    match (name.as_str(), value) {
        ("cert-authority", None) => entry.cert_authority = true,
        ("namespaces", _) => {
            let list: Vec<String> = quoted(value)?.split(',').map(str::to_string).collect();
            if list.iter().any(String::is_empty) {
                return Err(fault(
                    line,
                    "namespaces has an empty entry",
                    "write namespaces=\"airlock-approval\" or a comma-separated list",
                ));
            }
            entry.namespaces = Some(list);
        }
        ("valid-after", _) => entry.valid_after = Some(parse_time(line, &name, &quoted(value)?)?),
        ("valid-before", _) => entry.valid_before = Some(parse_time(line, &name, &quoted(value)?)?),
        _ => {
            return Err(fault(
                line,
                format!("unknown option {option:?}"),
                "the options are cert-authority, namespaces=\"…\", valid-after=\"YYYYMMDD[HHMM[SS]]Z\", valid-before=\"…\", separated by commas without spaces",
            ));
        }
    }
    Ok(())
}

/// `YYYYMMDD[HHMM[SS]]Z` to Unix seconds.
fn parse_time(line: usize, option: &str, text: &str) -> Result<u64, SignersError> {
    let bad = |why: &str| {
        fault(
            line,
            format!("{option}=\"{text}\" {why}"),
            format!(
                "write {option}=\"YYYYMMDDZ\", \"YYYYMMDDHHMMZ\" or \"YYYYMMDDHHMMSSZ\" (UTC), e.g. {option}=\"20270101Z\""
            ),
        )
    };
    let Some(digits) = text.strip_suffix(['Z', 'z']) else {
        return Err(bad(
            "has no Z: OpenSSH reads such a date in each machine's local time zone, so machines would disagree; airlock needs UTC",
        ));
    };
    if !digits.bytes().all(|b| b.is_ascii_digit()) || ![8, 12, 14].contains(&digits.len()) {
        return Err(bad("is not a date"));
    }
    let part = |range: std::ops::Range<usize>| digits.get(range).unwrap_or("00");
    let rfc3339 = format!(
        "{}-{}-{}T{}:{}:{}Z",
        &digits[0..4],
        &digits[4..6],
        &digits[6..8],
        part(8..10),
        part(10..12),
        part(12..14)
    );
    let time = humantime::parse_rfc3339(&rfc3339).map_err(|_| bad("is not a valid date"))?;
    time.duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .map_err(|_| bad("is before 1970"))
}

fn format_time(secs: u64) -> String {
    humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs))
        .to_string()
}

/// The first whitespace-separated field (a double-quoted part may hold spaces) and the rest.
fn split_field(text: &str) -> (&str, &str) {
    let mut in_quotes = false;
    for (i, c) in text.char_indices() {
        match c {
            '"' => in_quotes = !in_quotes,
            ' ' | '\t' if !in_quotes => {
                return (&text[..i], text[i..].trim_start_matches([' ', '\t']));
            }
            _ => {}
        }
    }
    (text, "")
}

/// Options separated by commas outside double quotes.
fn split_options(line: usize, text: &str) -> Result<Vec<String>, SignersError> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut in_quotes = false;
    for c in text.chars() {
        match c {
            '"' => {
                in_quotes = !in_quotes;
                current.push(c);
            }
            ',' if !in_quotes => out.push(std::mem::take(&mut current)),
            _ => current.push(c),
        }
    }
    if in_quotes {
        return Err(fault(
            line,
            "an option's quote is not closed",
            "close every quoted value, e.g. namespaces=\"airlock-approval\"",
        ));
    }
    out.push(current);
    if out.iter().any(String::is_empty) {
        return Err(fault(
            line,
            "the option list has an empty entry",
            "separate options with single commas, without spaces",
        ));
    }
    Ok(out)
}

/// OpenSSH's pattern lists (ssh_config(5), PATTERNS): a negated pattern that matches refuses
/// outright; otherwise any positive match accepts.
pub fn match_pattern_list(text: &str, patterns: &[String]) -> bool {
    let mut matched = false;
    for pattern in patterns {
        if let Some(negated) = pattern.strip_prefix('!') {
            if wildcard_match(text.as_bytes(), negated.as_bytes()) {
                return false;
            }
        } else if wildcard_match(text.as_bytes(), pattern.as_bytes()) {
            matched = true;
        }
    }
    matched
}

/// `*` any run, `?` one byte; iterative with one backtrack point, so linear-ish in practice
/// and never exponential.
fn wildcard_match(text: &[u8], pattern: &[u8]) -> bool {
    let (mut t, mut p) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && (pattern[p] == b'?' || pattern[p] == text[t]) {
            t += 1;
            p += 1;
        } else if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, t));
            p += 1;
        } else if let Some((sp, st)) = star {
            p = sp + 1;
            t = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&b| b == b'*')
}
