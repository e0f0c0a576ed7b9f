//! Our formats checked by independent tools: OpenSSH's ssh-keygen and OpenSSL.

mod common;

use std::fs;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use airlock_proof::{
    Envelope, PAYLOAD_TYPE, PublicKey, SSH_NAMESPACE, SigningKey, build_bundle, pae, sign_envelope,
};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use common::statements;

const SSH_KEYGEN: &str = "/usr/bin/ssh-keygen";

fn run(cmd: &mut Command, stdin: Option<&[u8]>) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn tool");
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.unwrap_or_default()).unwrap();
    drop(input);
    child.wait_with_output().unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn ssh_verify(dir: &Path, key: &PublicKey, jsonl: &[u8], sig: &str) -> Output {
    fs::write(
        dir.join("allowed_signers"),
        format!("airlock {}\n", key.to_openssh()),
    )
    .unwrap();
    fs::write(dir.join("bundle.intoto.jsonl.sig"), sig).unwrap();
    run(
        Command::new(SSH_KEYGEN)
            .current_dir(dir)
            .args(["-Y", "verify", "-f", "allowed_signers", "-I", "airlock"])
            .args(["-n", SSH_NAMESPACE, "-s", "bundle.intoto.jsonl.sig"]),
        Some(jsonl),
    )
}

#[test]
fn ssh_keygen_verifies_bundle_signature() {
    let dir = tempfile::tempdir().unwrap();
    let (key, created) = SigningKey::load_or_create(&dir.path().join("keys")).unwrap();
    assert!(created);
    let bundle = build_bundle(&key, &statements("ssh")).unwrap();
    fs::write(dir.path().join("bundle.intoto.jsonl"), &bundle.jsonl).unwrap();

    let out = ssh_verify(
        dir.path(),
        &key.public(),
        &bundle.jsonl,
        &bundle.ssh_signature,
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("Good"), "{}", text(&out));

    // One flipped byte: ssh-keygen refuses.
    let mut tampered = bundle.jsonl.clone();
    tampered[10] ^= 1;
    let out = ssh_verify(dir.path(), &key.public(), &tampered, &bundle.ssh_signature);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(!text(&out).contains("Good"));

    // Another namespace: refused.
    let other_ns = key.ssh_sign("git", &bundle.jsonl).unwrap();
    let out = ssh_verify(dir.path(), &key.public(), &bundle.jsonl, &other_ns);
    assert!(!out.status.success(), "{}", text(&out));
}

#[test]
fn ssh_keygen_reads_our_private_key() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    let (key, _) = SigningKey::load_or_create(&keys).unwrap();

    // ssh-keygen derives the public key from our private key file.
    let out = run(
        Command::new(SSH_KEYGEN)
            .arg("-y")
            .arg("-f")
            .arg(keys.join("signing_key")),
        None,
    );
    assert!(out.status.success(), "{}", text(&out));
    let derived = String::from_utf8(out.stdout).unwrap();
    let ours = key.public().to_openssh();
    assert_eq!(
        derived.split_whitespace().nth(1),
        ours.split_whitespace().nth(1)
    );
    assert_eq!(
        fs::read_to_string(keys.join("signing_key.pub")).unwrap(),
        format!("{ours}\n")
    );

    // Its fingerprint is our key id.
    let out = run(
        Command::new(SSH_KEYGEN)
            .arg("-l")
            .arg("-f")
            .arg(keys.join("signing_key.pub")),
        None,
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&key.public().key_id()),
        "{}",
        text(&out)
    );

    // ssh-keygen signs with our key file; we verify its signature.
    let msg = dir.path().join("msg");
    fs::write(&msg, b"hello from ssh-keygen").unwrap();
    let out = run(
        Command::new(SSH_KEYGEN)
            .args(["-Y", "sign", "-n", SSH_NAMESPACE, "-f"])
            .arg(keys.join("signing_key"))
            .arg(&msg),
        None,
    );
    assert!(out.status.success(), "{}", text(&out));
    let sig = fs::read_to_string(dir.path().join("msg.sig")).unwrap();
    key.public()
        .ssh_verify(SSH_NAMESPACE, b"hello from ssh-keygen", &sig)
        .unwrap();
    let e = key
        .public()
        .ssh_verify(SSH_NAMESPACE, b"hello from ssh-keygen!", &sig)
        .unwrap_err();
    assert!(
        e.to_string()
            .starts_with("the SSH signature does not verify")
    );
    let e = key
        .public()
        .ssh_verify("other", b"hello from ssh-keygen", &sig)
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "the SSH signature is for namespace \"airlock-proof\", expected \"other\""
    );

    // And check-novalidate accepts our own signature.
    let ours = key.ssh_sign(SSH_NAMESPACE, b"payload").unwrap();
    fs::write(dir.path().join("ours.sig"), &ours).unwrap();
    let out = run(
        Command::new(SSH_KEYGEN).current_dir(dir.path()).args([
            "-Y",
            "check-novalidate",
            "-n",
            SSH_NAMESPACE,
            "-s",
            "ours.sig",
        ]),
        Some(b"payload"),
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("Good"), "{}", text(&out));
}

#[test]
fn key_made_by_ssh_keygen_loads() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("id_ed25519");
    let out = run(
        Command::new(SSH_KEYGEN)
            .args(["-q", "-t", "ed25519", "-N", "", "-C", "someone", "-f"])
            .arg(&path),
        None,
    );
    assert!(out.status.success(), "{}", text(&out));
    let key = SigningKey::load(&path).unwrap();
    let pub_line = fs::read_to_string(path.with_extension("pub")).unwrap();
    assert_eq!(PublicKey::from_openssh(&pub_line).unwrap(), key.public());
    // The key loaded from ssh-keygen's file signs envelopes that verify.
    let env = sign_envelope(&key, PAYLOAD_TYPE, b"{}");
    assert_eq!(
        airlock_proof::verify_envelope(&key.public(), &env).unwrap(),
        b"{}"
    );
}

/// SubjectPublicKeyInfo PEM of an ed25519 key: a fixed 12-byte DER header and the key.
fn spki_pem(key: &PublicKey) -> String {
    let mut der = hex::decode("302a300506032b6570032100").unwrap();
    der.extend_from_slice(&key.to_bytes());
    format!(
        "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
        STANDARD.encode(der)
    )
}

fn openssl_verify(dir: &Path, key: &PublicKey, message: &[u8], sig: &[u8]) -> Output {
    fs::write(dir.join("pub.pem"), spki_pem(key)).unwrap();
    fs::write(dir.join("pae.bin"), message).unwrap();
    fs::write(dir.join("sig.bin"), sig).unwrap();
    run(
        Command::new("openssl").current_dir(dir).args([
            "pkeyutl", "-verify", "-pubin", "-inkey", "pub.pem", "-rawin", "-in", "pae.bin",
            "-sigfile", "sig.bin",
        ]),
        None,
    )
}

#[test]
fn openssl_verifies_dsse_envelopes() {
    let dir = tempfile::tempdir().unwrap();
    let key = SigningKey::generate();
    let bundle = build_bundle(&key, &statements("openssl")).unwrap();
    for line in common::lines(&bundle.jsonl) {
        let env: Envelope = serde_json::from_slice(&line).unwrap();
        let payload = STANDARD.decode(&env.payload).unwrap();
        let sig = STANDARD.decode(&env.signatures[0].sig).unwrap();
        assert_eq!(env.signatures[0].keyid, key.public().key_id());
        let message = pae(&env.payload_type, &payload);
        let out = openssl_verify(dir.path(), &key.public(), &message, &sig);
        assert!(out.status.success(), "{}", text(&out));
        assert!(
            text(&out).contains("Signature Verified Successfully"),
            "{}",
            text(&out)
        );

        // Signature over the bare payload (without PAE) must not verify: proves PAE is used.
        let out = openssl_verify(dir.path(), &key.public(), &payload, &sig);
        assert!(!out.status.success(), "{}", text(&out));
    }
    // Another key's signature fails in openssl too.
    let other = SigningKey::generate();
    let env = sign_envelope(&other, PAYLOAD_TYPE, b"x");
    let sig = STANDARD.decode(&env.signatures[0].sig).unwrap();
    let out = openssl_verify(dir.path(), &key.public(), &pae(PAYLOAD_TYPE, b"x"), &sig);
    assert!(!out.status.success(), "{}", text(&out));
}
