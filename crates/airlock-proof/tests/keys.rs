//! Loading and creating signing keys.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use airlock_proof::{ProofError, SigningKey};

fn mode(p: &Path) -> u32 {
    fs::metadata(p).unwrap().permissions().mode() & 0o777
}

fn keygen(args: &[&str], path: &Path) {
    let out = Command::new("/usr/bin/ssh-keygen")
        .args(["-q"])
        .args(args)
        .arg("-f")
        .arg(path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn load_or_create_creates_then_loads() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("a").join("keys");
    let (key, created) = SigningKey::load_or_create(&dir).unwrap();
    assert!(created);
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&dir.join("signing_key")), 0o600);
    assert_eq!(mode(&dir.join("signing_key.pub")), 0o644);
    let pem = fs::read_to_string(dir.join("signing_key")).unwrap();
    assert!(pem.starts_with("-----BEGIN OPENSSH PRIVATE KEY-----\n"));
    assert!(pem.ends_with("-----END OPENSSH PRIVATE KEY-----\n"));
    // No temporary files are left behind.
    assert_eq!(fs::read_dir(&dir).unwrap().count(), 2);

    let (again, created) = SigningKey::load_or_create(&dir).unwrap();
    assert!(!created);
    assert_eq!(again.public(), key.public());
    assert_eq!(
        SigningKey::load(&dir.join("signing_key")).unwrap().public(),
        key.public()
    );
    // Debug never shows the secret.
    let dbg = format!("{key:?}");
    assert!(
        dbg.contains(&key.public().key_id()) && !dbg.contains("inner"),
        "{dbg}"
    );
}

#[test]
fn load_missing() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("nope");
    let e = SigningKey::load(&p).unwrap_err();
    assert!(matches!(e, ProofError::KeyMissing { .. }));
    assert_eq!(
        e.to_string(),
        format!("signing key {} does not exist", p.display())
    );
}

#[test]
fn load_wrong_mode() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, _) = SigningKey::load_or_create(tmp.path()).unwrap();
    let p = tmp.path().join("signing_key");
    for m in [0o644, 0o640, 0o604, 0o660] {
        fs::set_permissions(&p, fs::Permissions::from_mode(m)).unwrap();
        let e = SigningKey::load(&p).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "signing key {0} has mode {m:04o}; run chmod 600 {0} (a private key must not be readable by group or others)",
                p.display()
            )
        );
        // load_or_create refuses the same way rather than replacing the key.
        assert!(matches!(
            SigningKey::load_or_create(tmp.path()),
            Err(ProofError::KeyPermissions { .. })
        ));
    }
    fs::set_permissions(&p, fs::Permissions::from_mode(0o400)).unwrap();
    SigningKey::load(&p).unwrap();
}

fn private_file(dir: &Path, name: &str, content: &[u8]) -> std::path::PathBuf {
    let p = dir.join(name);
    fs::write(&p, content).unwrap();
    fs::set_permissions(&p, fs::Permissions::from_mode(0o600)).unwrap();
    p
}

#[test]
fn load_garbage() {
    let tmp = tempfile::tempdir().unwrap();
    let cases: [(&str, &[u8], &str); 6] = [
        ("empty", b"", "the file is empty"),
        ("binary", b"\xff\x00\xfe", "the file is not text"),
        ("text", b"hello world\n", "it does not start with -----BEGIN OPENSSH PRIVATE KEY-----"),
        (
            "pem",
            b"-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n",
            "it is an RSA key in PEM (PKCS#1) format",
        ),
        (
            "pub",
            b"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGb6SJ6sZgx5m0Pz1sOnPZvQ0aX7ci4t5Xcl1m8Yb3mS x\n",
            "it is a public key, not a private key",
        ),
        (
            "broken",
            b"-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n",
            "it cannot be decoded: ",
        ),
    ];
    for (name, content, reason) in cases {
        let p = private_file(tmp.path(), name, content);
        let e = SigningKey::load(&p).unwrap_err();
        let expect = format!(
            "signing key {} is not an OpenSSH private key ({reason}",
            p.display()
        );
        assert!(e.to_string().starts_with(&expect), "{e}\n{expect}");
        assert!(
            e.to_string().ends_with(
                "expected an unencrypted ed25519 key as written by `ssh-keygen -t ed25519 -N ''`"
            ),
            "{e}"
        );
    }
    // A directory is not a key either.
    let e = SigningKey::load(tmp.path()).unwrap_err();
    assert!(e.to_string().contains("it is not a regular file"), "{e}");
}

#[test]
fn load_rsa_and_ecdsa_keys() {
    let tmp = tempfile::tempdir().unwrap();
    for (kind, alg, extra) in [
        ("rsa", "ssh-rsa", &["-b", "2048"][..]),
        ("ecdsa", "ecdsa-sha2-nistp256", &["-b", "256"][..]),
    ] {
        let p = tmp.path().join(kind);
        let mut args = vec!["-t", kind, "-N", ""];
        args.extend_from_slice(extra);
        keygen(&args, &p);
        let e = SigningKey::load(&p).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "signing key {0} is an {alg} key; airlock signs with ed25519 only (create one with `ssh-keygen -t ed25519 -N '' -f {0}`)",
                p.display()
            ),
        );
    }
}

#[test]
fn load_encrypted_key() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("enc");
    keygen(&["-t", "ed25519", "-N", "secret passphrase"], &p);
    let e = SigningKey::load(&p).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "signing key {0} is encrypted with a passphrase; airlock needs an unencrypted ed25519 key (remove the passphrase with `ssh-keygen -p -N '' -f {0}`)",
            p.display()
        )
    );
}
