//! `allowed_signers` files parsed and consulted as `ssh-keygen -Y verify` does: keys and
//! signatures made by the real ssh-keygen, each refusal checked against ssh-keygen's own
//! verdict on the same file.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use airlock_proof::signers::{AllowedSigners, SignatureRefused, SignerDenied};
use ssh_key::{Certificate, PublicKey};

const NS: &str = "airlock-approval";
/// 2030-01-01T00:00:00Z.
const Y2030: u64 = 1_893_456_000;

fn keygen(dir: &Path, name: &str) -> (PathBuf, String) {
    let path = dir.join(name);
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let public = fs::read_to_string(path.with_extension("pub")).unwrap();
    (path, public.trim().to_string())
}

fn sign(key: &Path, namespace: &str, message: &[u8]) -> String {
    let dir = key.parent().unwrap();
    let msg = dir.join("message");
    fs::write(&msg, message).unwrap();
    let out = Command::new("ssh-keygen")
        .args(["-Y", "sign", "-n", namespace, "-f"])
        .arg(key)
        .arg(&msg)
        .stderr(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let sig = fs::read_to_string(dir.join("message.sig")).unwrap();
    fs::remove_file(dir.join("message.sig")).unwrap();
    sig
}

/// ssh-keygen's own verdict, so each case is checked against the reference.
fn ssh_verifies(dir: &Path, signers: &str, principal: &str, message: &[u8], sig: &str) -> bool {
    let file = dir.join("allowed");
    fs::write(&file, signers).unwrap();
    fs::write(dir.join("m.sig"), sig).unwrap();
    let mut child = Command::new("ssh-keygen")
        .args(["-Y", "verify", "-n", NS, "-I", principal, "-f"])
        .arg(&file)
        .arg("-s")
        .arg(dir.join("m.sig"))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(message).unwrap();
    child.wait().unwrap().success()
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[test]
fn a_listed_key_verifies_as_its_principal_and_ssh_keygen_agrees() {
    let dir = tempfile::tempdir().unwrap();
    let (alice, alice_pub) = keygen(dir.path(), "alice");
    let file = format!(
        "# reviewers\n\n  alice@example.com,ally@example.com namespaces=\"airlock-approval\",valid-after=\"20200101Z\" {alice_pub}\n"
    );
    let signers = AllowedSigners::parse(&file).unwrap();
    let sig = sign(&alice, NS, b"statement");
    let ok = signers
        .verify("ally@example.com", NS, b"statement", &sig, now())
        .unwrap();
    assert_eq!(ok.line, 3);
    assert!(ok.fingerprint.starts_with("SHA256:"));
    assert!(ssh_verifies(
        dir.path(),
        &file,
        "ally@example.com",
        b"statement",
        &sig
    ));

    // Altered bytes: refused by both.
    let err = signers
        .verify("alice@example.com", NS, b"statement!", &sig, now())
        .unwrap_err();
    assert!(matches!(err, SignatureRefused::Invalid { .. }), "{err}");
    assert!(!ssh_verifies(
        dir.path(),
        &file,
        "alice@example.com",
        b"statement!",
        &sig
    ));

    // Another principal: refused by both.
    let err = signers
        .verify("mallory@example.com", NS, b"statement", &sig, now())
        .unwrap_err();
    assert!(
        matches!(
            err,
            SignatureRefused::Denied(SignerDenied::OtherPrincipal { .. })
        ),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("alice@example.com,ally@example.com"),
        "{err}"
    );
    assert!(!ssh_verifies(
        dir.path(),
        &file,
        "mallory@example.com",
        b"statement",
        &sig
    ));

    // Signed in another namespace.
    let other = sign(&alice, "file", b"statement");
    let err = signers
        .verify("alice@example.com", NS, b"statement", &other, now())
        .unwrap_err();
    assert!(matches!(err, SignatureRefused::Namespace { .. }), "{err}");
}

#[test]
fn an_unlisted_key_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (_alice, alice_pub) = keygen(dir.path(), "alice");
    let (mallory, _) = keygen(dir.path(), "mallory");
    let file = format!("alice@example.com {alice_pub}\n");
    let signers = AllowedSigners::parse(&file).unwrap();
    let sig = sign(&mallory, NS, b"x");
    let err = signers
        .verify("alice@example.com", NS, b"x", &sig, now())
        .unwrap_err();
    assert!(
        matches!(
            err,
            SignatureRefused::Denied(SignerDenied::UnknownKey { .. })
        ),
        "{err}"
    );
    assert!(!ssh_verifies(
        dir.path(),
        &file,
        "alice@example.com",
        b"x",
        &sig
    ));
}

#[test]
fn validity_dates_and_namespaces_are_enforced() {
    let dir = tempfile::tempdir().unwrap();
    let (alice, alice_pub) = keygen(dir.path(), "alice");
    let sig = sign(&alice, NS, b"x");

    let expired = format!("alice@example.com valid-before=\"20200101Z\" {alice_pub}\n");
    let err = AllowedSigners::parse(&expired)
        .unwrap()
        .verify("alice@example.com", NS, b"x", &sig, now())
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "the key on line 1 expired at 2020-01-01T00:00:00Z"
    );
    assert!(!ssh_verifies(
        dir.path(),
        &expired,
        "alice@example.com",
        b"x",
        &sig
    ));

    let future = format!("alice@example.com valid-after=\"20991231235959Z\" {alice_pub}\n");
    let err = AllowedSigners::parse(&future)
        .unwrap()
        .verify("alice@example.com", NS, b"x", &sig, now())
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("valid only from 2099-12-31T23:59:59Z"),
        "{err}"
    );
    assert!(!ssh_verifies(
        dir.path(),
        &future,
        "alice@example.com",
        b"x",
        &sig
    ));

    // Valid in 2030 only when the window holds it.
    let window = format!(
        "alice@example.com valid-after=\"202912310000Z\",valid-before=\"20300102Z\" {alice_pub}\n"
    );
    let signers = AllowedSigners::parse(&window).unwrap();
    assert!(
        signers
            .verify("alice@example.com", NS, b"x", &sig, Y2030)
            .is_ok()
    );
    assert!(
        signers
            .verify("alice@example.com", NS, b"x", &sig, Y2030 + 86_400)
            .is_err()
    );

    let git_only = format!("alice@example.com namespaces=\"git,file\" {alice_pub}\n");
    let err = AllowedSigners::parse(&git_only)
        .unwrap()
        .verify("alice@example.com", NS, b"x", &sig, now())
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "key {} (line 1) may sign only in namespaces git,file, not airlock-approval",
            PublicKey::from_openssh(&alice_pub)
                .unwrap()
                .fingerprint(ssh_key::HashAlg::Sha256)
        )
    );
    assert!(!ssh_verifies(
        dir.path(),
        &git_only,
        "alice@example.com",
        b"x",
        &sig
    ));
}

#[test]
fn principal_patterns_follow_openssh() {
    let dir = tempfile::tempdir().unwrap();
    let (alice, alice_pub) = keygen(dir.path(), "alice");
    let file = format!("*@example.com,!eve@example.com {alice_pub}\n");
    let signers = AllowedSigners::parse(&file).unwrap();
    let sig = sign(&alice, NS, b"x");
    for (principal, expected) in [
        ("alice@example.com", true),
        ("eve@example.com", false),
        ("alice@example.org", false),
    ] {
        assert_eq!(
            signers.verify(principal, NS, b"x", &sig, now()).is_ok(),
            expected,
            "{principal}"
        );
        assert_eq!(
            ssh_verifies(dir.path(), &file, principal, b"x", &sig),
            expected,
            "ssh-keygen on {principal}"
        );
    }
    let key = PublicKey::from_openssh(&alice_pub).unwrap();
    let found = signers.find_principals(key.key_data(), NS, now()).unwrap();
    assert_eq!(found[0].principals, ["*@example.com", "!eve@example.com"]);
}

#[test]
fn certificates_signed_by_a_listed_authority() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, ca_pub) = keygen(dir.path(), "ca");
    let (_bob, bob_pub) = keygen(dir.path(), "bob");
    let out = Command::new("ssh-keygen")
        .args(["-q", "-s"])
        .arg(&ca)
        .args(["-I", "bob-cert", "-n", "bob@example.com", "-V", "-1d:+1d"])
        .arg(dir.path().join("bob.pub"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let cert =
        Certificate::read_file(&dir.path().join("bob-cert.pub")).expect("certificate written");
    let file = format!("*@example.com cert-authority,namespaces=\"airlock-approval\" {ca_pub}\n");
    let signers = AllowedSigners::parse(&file).unwrap();
    let entry = signers
        .authorize_certificate("bob@example.com", &cert, NS, now())
        .unwrap();
    assert_eq!(entry.line, 1);
    // The certificate names bob only.
    let err = signers
        .authorize_certificate("alice@example.com", &cert, NS, now())
        .unwrap_err();
    assert!(err.to_string().contains("names bob@example.com"), "{err}");
    // Outside its validity period.
    assert!(
        signers
            .authorize_certificate("bob@example.com", &cert, NS, Y2030)
            .is_err()
    );
    // The bare key is not listed: only certificates are.
    let bob = PublicKey::from_openssh(&bob_pub).unwrap();
    assert!(matches!(
        signers.authorize("bob@example.com", bob.key_data(), NS, now()),
        Err(SignerDenied::UnknownKey { .. })
    ));
    // A CA listed without cert-authority does not vouch for certificates.
    let plain = AllowedSigners::parse(&format!("*@example.com {ca_pub}\n")).unwrap();
    assert!(
        plain
            .authorize_certificate("bob@example.com", &cert, NS, now())
            .is_err()
    );
}

#[test]
fn malformed_lines_are_named_with_what_to_write() {
    let key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl";
    let cases = [
        (
            "alice@example.com\n".to_string(),
            "line 1: the line has principals but no key; write PRINCIPALS [OPTIONS] KEYTYPE BASE64, e.g. alice@example.com ssh-ed25519 AAAA…",
        ),
        (
            format!("# c\nalice@example.com valid-before=\"20270101\" {key}\n"),
            "line 2: valid-before=\"20270101\" has no Z: OpenSSH reads such a date in each machine's local time zone, so machines would disagree; airlock needs UTC; write valid-before=\"YYYYMMDDZ\", \"YYYYMMDDHHMMZ\" or \"YYYYMMDDHHMMSSZ\" (UTC), e.g. valid-before=\"20270101Z\"",
        ),
        (
            format!("a@x valid-after=\"20271340Z\" {key}\n"),
            "line 1: valid-after=\"20271340Z\" is not a valid date; write valid-after=\"YYYYMMDDZ\", \"YYYYMMDDHHMMZ\" or \"YYYYMMDDHHMMSSZ\" (UTC), e.g. valid-after=\"20270101Z\"",
        ),
        (
            format!("a@x expires=\"x\" {key}\n"),
            "line 1: unknown option \"expires=\\\"x\\\"\"; the options are cert-authority, namespaces=\"…\", valid-after=\"YYYYMMDD[HHMM[SS]]Z\", valid-before=\"…\", separated by commas without spaces",
        ),
        (
            "a@x ssh-ed25519 AAAA\n".to_string(),
            "line 1: the ssh-ed25519 key is not a valid public key",
        ),
        (
            "a@x ssh-ed25519\n".to_string(),
            "line 1: the ssh-ed25519 key has no base64 data",
        ),
        (
            format!("a@x,,b@x {key}\n"),
            "line 1: the principal list \"a@x,,b@x\" has an empty entry",
        ),
        (format!("a@x namespaces=\"git {key}\n"), "line 1: "),
        (
            format!("a@x valid-after=\"20280101Z\",valid-before=\"20270101Z\" {key}\n"),
            "line 1: valid-after is not before valid-before",
        ),
        (
            format!("a@x namespaces= {key}\n"),
            "line 1: option namespaces needs a quoted value; write namespaces=\"VALUE\"",
        ),
    ];
    for (text, expected) in cases {
        let err = AllowedSigners::parse(&text).unwrap_err();
        assert!(
            err.to_string().starts_with(expected),
            "{text:?}: {err} (expected {expected})"
        );
    }
    // Hostile bytes never panic.
    for text in [
        "\u{0}\u{ffff}",
        "\"",
        "a \"",
        "a ,",
        "a ! ssh-rsa",
        "ä ssh-ed25519 ä",
    ] {
        assert!(AllowedSigners::parse(text).is_err(), "{text:?}");
    }
    assert!(AllowedSigners::parse(&"x".repeat(2 << 20)).is_err());
}

/// A key of `ssh-keygen -t KIND [-b BITS]`, its public line.
fn keygen_kind(dir: &Path, name: &str, kind: &[&str]) -> (PathBuf, String) {
    let path = dir.join(name);
    let out = Command::new("ssh-keygen")
        .args(["-q", "-N", "", "-C", name, "-t"])
        .args(kind)
        .arg("-f")
        .arg(&path)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let public = fs::read_to_string(path.with_extension("pub")).unwrap();
    (path, public.trim().to_string())
}

/// `ssh-keygen -s CA -I ID -n PRINCIPALS -V VALIDITY [EXTRA] KEY.pub`: KEY-cert.pub.
fn certify(ca: &Path, key: &Path, principals: &str, validity: &str, extra: &[&str]) -> PathBuf {
    let mut cmd = Command::new("ssh-keygen");
    cmd.args(["-q", "-s"])
        .arg(ca)
        .args(["-I", "cert-id", "-V", validity]);
    if !principals.is_empty() {
        cmd.args(["-n", principals]);
    }
    let out = cmd
        .args(extra)
        .arg(key.with_extension("pub"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let name = key.file_name().unwrap().to_str().unwrap();
    key.with_file_name(format!("{name}-cert.pub"))
}

#[test]
fn rsa_and_ecdsa_keys_verify_as_ssh_keygen_verifies_them() {
    let dir = tempfile::tempdir().unwrap();
    for (name, kind) in [
        ("rsa3072", &["rsa", "-b", "3072"][..]),
        ("ecdsa256", &["ecdsa", "-b", "256"][..]),
        ("ecdsa384", &["ecdsa", "-b", "384"][..]),
        ("ecdsa521", &["ecdsa", "-b", "521"][..]),
        ("ed25519", &["ed25519"][..]),
    ] {
        let (key, public) = keygen_kind(dir.path(), name, kind);
        let file = format!("{name}@example.com {public}\n");
        let signers = AllowedSigners::parse(&file).unwrap();
        let sig = sign(&key, NS, b"statement");
        let principal = format!("{name}@example.com");
        let ok = signers.verify(&principal, NS, b"statement", &sig, now());
        assert!(ok.is_ok(), "{name}: {ok:?}");
        assert!(ok.unwrap().certificate.is_none());
        assert!(ssh_verifies(
            dir.path(),
            &file,
            &principal,
            b"statement",
            &sig
        ));
        // Altered bytes: both refuse.
        let bad = signers.verify(&principal, NS, b"statemenT", &sig, now());
        assert!(
            matches!(bad, Err(SignatureRefused::Invalid { .. })),
            "{name}: {bad:?}"
        );
        assert!(!ssh_verifies(
            dir.path(),
            &file,
            &principal,
            b"statemenT",
            &sig
        ));
    }
}

#[test]
fn a_signature_made_with_a_certificate_verifies_under_its_authority() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, ca_pub) = keygen(dir.path(), "ca");
    let (bob, _) = keygen_kind(dir.path(), "bob", &["ecdsa", "-b", "256"]);
    let cert = certify(
        &ca,
        &bob,
        "bob@example.com,robert@example.com",
        "-5m:+1h",
        &[],
    );
    let sig = sign(&cert, NS, b"statement");
    let file = format!("*@example.com cert-authority,namespaces=\"airlock-approval\" {ca_pub}\n");
    let signers = AllowedSigners::parse(&file).unwrap();
    let verified = signers
        .verify("bob@example.com", NS, b"statement", &sig, now())
        .unwrap();
    let certified = verified
        .certificate
        .expect("admitted through the certificate");
    assert_eq!(certified.key_id, "cert-id");
    assert_eq!(
        certified.principals,
        ["bob@example.com", "robert@example.com"]
    );
    let bob_pub = PublicKey::read_openssh_file(&bob.with_extension("pub")).unwrap();
    assert_eq!(
        verified.fingerprint,
        bob_pub.fingerprint(ssh_key::HashAlg::Sha256).to_string()
    );
    assert!(ssh_verifies(
        dir.path(),
        &file,
        "bob@example.com",
        b"statement",
        &sig
    ));
    // The bytes altered: both refuse.
    assert!(matches!(
        signers.verify("bob@example.com", NS, b"other", &sig, now()),
        Err(SignatureRefused::Invalid { .. })
    ));
    assert!(!ssh_verifies(
        dir.path(),
        &file,
        "bob@example.com",
        b"other",
        &sig
    ));
}

/// Each refusal of a certificate's signature, with ssh-keygen's verdict on the same files.
#[test]
fn certificate_refusals_match_ssh_keygen_or_are_stricter_as_documented() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, ca_pub) = keygen(dir.path(), "ca");
    let (other_ca, _) = keygen(dir.path(), "otherca");
    let listed = format!("*@example.com cert-authority {ca_pub}\n");
    let message = b"statement";
    let case = |name: &str,
                key_kind: &[&str],
                ca: &Path,
                principals: &str,
                validity: &str,
                extra: &[&str]| {
        let (key, key_pub) = keygen_kind(dir.path(), name, key_kind);
        let cert = certify(ca, &key, principals, validity, extra);
        (sign(&cert, NS, message), key_pub)
    };
    let verdict = |file: &str, principal: &str, sig: &str| {
        let signers = AllowedSigners::parse(file).unwrap();
        (
            signers.verify(principal, NS, message, sig, now()),
            ssh_verifies(dir.path(), file, principal, message, sig),
        )
    };

    // Signed by an authority that is not listed.
    let (sig, _) = case(
        "k1",
        &["ed25519"],
        &other_ca,
        "bob@example.com",
        "-5m:+1h",
        &[],
    );
    let (ours, theirs) = verdict(&listed, "bob@example.com", &sig);
    assert!(
        matches!(
            ours,
            Err(SignatureRefused::Denied(SignerDenied::UnknownKey { .. }))
        ),
        "{ours:?}"
    );
    assert!(!theirs);

    // Expired.
    let (sig, _) = case(
        "k2",
        &["ed25519"],
        &ca,
        "bob@example.com",
        "20200101:20210101",
        &[],
    );
    let (ours, theirs) = verdict(&listed, "bob@example.com", &sig);
    let err = ours.unwrap_err();
    assert!(
        matches!(
            err,
            SignatureRefused::Denied(SignerDenied::CertificateExpired { .. })
        ),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "the certificate \"cert-id\" expired at 2021-01-01T00:00:00Z"
    );
    assert!(!theirs);

    // Not yet valid.
    let (sig, _) = case("k3", &["ed25519"], &ca, "bob@example.com", "+1d:+2d", &[]);
    let (ours, theirs) = verdict(&listed, "bob@example.com", &sig);
    assert!(
        matches!(
            ours,
            Err(SignatureRefused::Denied(
                SignerDenied::CertificateNotYetValid { .. }
            ))
        ),
        "{ours:?}"
    );
    assert!(!theirs);

    // The principal is not among the certificate's.
    let (sig, _) = case("k4", &["ed25519"], &ca, "bob@example.com", "-5m:+1h", &[]);
    let (ours, theirs) = verdict(&listed, "alice@example.com", &sig);
    assert_eq!(
        ours.unwrap_err().to_string(),
        "the certificate is not valid: it names bob@example.com, not alice@example.com"
    );
    assert!(!theirs);

    // A certificate naming nobody: OpenSSH refuses it for signatures; so does airlock.
    let (sig, _) = case("k5", &["ed25519"], &ca, "", "-5m:+1h", &[]);
    let (ours, theirs) = verdict(&listed, "bob@example.com", &sig);
    assert!(ours.unwrap_err().to_string().contains("names no principal"));
    assert!(!theirs);

    // A host certificate.
    let (sig, _) = case(
        "k6",
        &["ed25519"],
        &ca,
        "bob@example.com",
        "-5m:+1h",
        &["-h"],
    );
    let (ours, theirs) = verdict(&listed, "bob@example.com", &sig);
    assert!(ours.unwrap_err().to_string().contains("host certificate"));
    assert!(!theirs);

    // The authority listed for other principals only.
    let (sig, _) = case("k7", &["ed25519"], &ca, "bob@example.org", "-5m:+1h", &[]);
    let (ours, theirs) = verdict(&listed, "bob@example.org", &sig);
    assert!(
        matches!(
            ours,
            Err(SignatureRefused::Denied(
                SignerDenied::OtherPrincipal { .. }
            ))
        ),
        "{ours:?}"
    );
    assert!(!theirs);

    // The authority's line restricted to another namespace.
    let restricted = format!("*@example.com cert-authority,namespaces=\"git\" {ca_pub}\n");
    let (sig, _) = case("k8", &["ed25519"], &ca, "bob@example.com", "-5m:+1h", &[]);
    let (ours, theirs) = verdict(&restricted, "bob@example.com", &sig);
    assert!(
        matches!(
            ours,
            Err(SignatureRefused::Denied(SignerDenied::Namespace { .. }))
        ),
        "{ours:?}"
    );
    assert!(!theirs);

    // The authority listed as a plain key, without cert-authority.
    let plain = format!("*@example.com {ca_pub}\n");
    let (ours, theirs) = verdict(&plain, "bob@example.com", &sig);
    assert!(
        matches!(
            ours,
            Err(SignatureRefused::Denied(SignerDenied::UnknownKey { .. }))
        ),
        "{ours:?}"
    );
    assert!(!theirs);

    // A critical option (force-command): stricter than OpenSSH, which accepts it.
    let (sig, _) = case(
        "k9",
        &["ed25519"],
        &ca,
        "bob@example.com",
        "-5m:+1h",
        &["-O", "force-command=true"],
    );
    let (ours, theirs) = verdict(&listed, "bob@example.com", &sig);
    assert!(ours.unwrap_err().to_string().contains("critical options"));
    assert!(
        theirs,
        "ssh-keygen accepts a certificate with critical options"
    );

    // The certificate's key is carol's plain key: stricter than OpenSSH, which accepts it.
    let (sig, carol_pub) = case("k10", &["ed25519"], &ca, "bob@example.com", "-5m:+1h", &[]);
    let both = format!("{listed}carol@example.com {carol_pub}\n");
    let (ours, theirs) = verdict(&both, "bob@example.com", &sig);
    let err = ours.unwrap_err();
    assert!(
        matches!(
            err,
            SignatureRefused::Denied(SignerDenied::OtherPrincipal { .. })
        ),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .contains("is listed for carol@example.com, not for bob@example.com"),
        "{err}"
    );
    assert!(
        theirs,
        "ssh-keygen accepts a certificate whose key is listed for another"
    );
    // Listed for bob himself as well: admitted, as ssh-keygen admits it.
    let same = format!("{listed}bob@example.com {carol_pub}\n");
    let (ours, theirs) = verdict(&same, "bob@example.com", &sig);
    assert!(ours.is_ok(), "{ours:?}");
    assert!(theirs);
}

#[test]
fn a_plain_key_line_does_not_admit_that_keys_certificate_nor_a_certificate_line_its_bare_key() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, ca_pub) = keygen(dir.path(), "ca");
    let (bob, bob_pub) = keygen(dir.path(), "bob");
    let cert = certify(&ca, &bob, "bob@example.com", "-5m:+1h", &[]);
    let by_cert = sign(&cert, NS, b"m");
    let by_key = sign(&bob, NS, b"m");
    let plain = format!("bob@example.com {bob_pub}\n");
    let authority = format!("bob@example.com cert-authority {ca_pub}\n");
    for (file, sig, expected) in [
        (&plain, &by_cert, false),
        (&plain, &by_key, true),
        (&authority, &by_cert, true),
        (&authority, &by_key, false),
    ] {
        let signers = AllowedSigners::parse(file).unwrap();
        assert_eq!(
            signers
                .verify("bob@example.com", NS, b"m", sig, now())
                .is_ok(),
            expected,
            "{file}"
        );
        assert_eq!(
            ssh_verifies(dir.path(), file, "bob@example.com", b"m", sig),
            expected,
            "ssh-keygen: {file}"
        );
    }
}

/// An RSA signature relabelled as SHA-1 `ssh-rsa` (a downgrade): refused with its reason,
/// as ssh-keygen refuses it ("unsupported RSA signature algorithm").
#[test]
fn an_rsa_signature_over_sha1_is_refused_as_openssh_refuses_it() {
    let dir = tempfile::tempdir().unwrap();
    let (key, public) = keygen_kind(dir.path(), "rsa", &["rsa", "-b", "2048"]);
    let file = format!("rsa@example.com {public}\n");
    let signers = AllowedSigners::parse(&file).unwrap();
    // Rewrite the signature's algorithm name in place (rsa-sha2-512 -> ssh-rsa), fixing
    // the two lengths around it: ssh-key cannot even encode such a signature.
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let good = sign(&key, NS, b"m");
    let body: String = good.lines().filter(|l| !l.starts_with("-----")).collect();
    let mut bytes = b64.decode(body).unwrap();
    let name = b"\0\0\0\x0crsa-sha2-512";
    let at = bytes.windows(name.len()).position(|w| w == name).unwrap();
    let outer = u32::from_be_bytes(bytes[at - 4..at].try_into().unwrap()) - 5;
    bytes[at - 4..at].copy_from_slice(&outer.to_be_bytes());
    bytes.splice(at..at + name.len(), b"\0\0\0\x07ssh-rsa".iter().copied());
    let encoded = b64.encode(&bytes);
    let lines: Vec<&str> = encoded
        .as_bytes()
        .chunks(70)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    let sha1 = format!(
        "-----BEGIN SSH SIGNATURE-----\n{}\n-----END SSH SIGNATURE-----\n",
        lines.join("\n")
    );
    let err = signers
        .verify("rsa@example.com", NS, b"m", &sha1, now())
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("RSA signature over SHA-1 (ssh-rsa)"),
        "{err}"
    );
    assert!(!ssh_verifies(
        dir.path(),
        &file,
        "rsa@example.com",
        b"m",
        &sha1
    ));
}
