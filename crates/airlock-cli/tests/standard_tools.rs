//! A run's proof bundle, as `airlock submit` writes it, checked with tools
//! that are not airlock: OpenSSH's `ssh-keygen -Y verify` over the detached
//! signature, Python's securesystemslib (a standard DSSE implementation)
//! over every envelope, and `openssl pkeyutl` over each envelope's DSSE PAE.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::*;
use serde_json::Value;
use sha2::{Digest, Sha256};

const STATEMENT_V1: &str = "https://in-toto.io/Statement/v1";
const PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";

struct Proof {
    env: Env,
    bundle: PathBuf,
    signature: PathBuf,
    /// `ssh-ed25519 AAAA…`
    public: String,
    dir: PathBuf,
}

/// A submitted run's bundle, its signature and airlock's public key.
fn proof() -> Proof {
    let env = Env::new();
    let (run, _wt) = env.submitted();
    let v = env.json(&["show", &run, "--no-diff"], 0);
    let bundle = PathBuf::from(v["proof"]["path"].as_str().unwrap());
    let signature = PathBuf::from(format!("{}.sig", bundle.display()));
    assert!(bundle.is_file() && signature.is_file());
    let out = env.airlock(&["key", "public"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let public = out.stdout.trim().to_string();
    assert!(public.starts_with("ssh-ed25519 AAAA"), "{public}");
    let dir = env.tmp.path().join("verifier");
    std::fs::create_dir_all(&dir).unwrap();
    Proof {
        env,
        bundle,
        signature,
        public,
        dir,
    }
}

struct Ran {
    ok: bool,
    text: String,
}

fn run_tool(cmd: &mut Command, stdin: &[u8]) -> Ran {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin).unwrap();
    drop(input);
    let out = child.wait_with_output().unwrap();
    Ran {
        ok: out.status.success(),
        text: format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}

fn ssh_verify(p: &Proof, bundle: &[u8]) -> Ran {
    std::fs::write(
        p.dir.join("allowed_signers"),
        format!("airlock {}\n", p.public),
    )
    .unwrap();
    run_tool(
        Command::new("ssh-keygen")
            .current_dir(&p.dir)
            .args(["-Y", "verify", "-f", "allowed_signers", "-I", "airlock"])
            .args(["-n", "airlock-proof", "-s"])
            .arg(&p.signature),
        bundle,
    )
}

#[test]
fn ssh_keygen_verifies_the_bundle_signature() {
    let p = proof();
    let bundle = std::fs::read(&p.bundle).unwrap();
    let good = ssh_verify(&p, &bundle);
    assert!(good.ok, "{}", good.text);
    assert!(
        good.text.contains("Good \"airlock-proof\" signature"),
        "{}",
        good.text
    );

    for at in [0, bundle.len() / 2, bundle.len() - 2] {
        let mut flipped = bundle.clone();
        flipped[at] ^= 1;
        let bad = ssh_verify(&p, &flipped);
        assert!(
            !bad.ok,
            "a flipped byte at {at} still verifies: {}",
            bad.text
        );
        assert!(!bad.text.contains("Good"), "{}", bad.text);
    }
    // Another namespace is another purpose: refused.
    let other = run_tool(
        Command::new("ssh-keygen")
            .current_dir(&p.dir)
            .args(["-Y", "verify", "-f", "allowed_signers", "-I", "airlock"])
            .args(["-n", "git", "-s"])
            .arg(&p.signature),
        &bundle,
    );
    assert!(!other.ok, "{}", other.text);
    p.env.assert_ledger_ok();
}

const DSSE_CHECK: &str = r#"
import base64, hashlib, json, struct, sys
from securesystemslib.dsse import Envelope
from securesystemslib.signer import SSlibKey
from securesystemslib.exceptions import VerificationError

bundle_path, openssh_public = sys.argv[1], sys.argv[2]

# The raw ed25519 key from the OpenSSH public key blob:
# string "ssh-ed25519", string key (32 bytes).
blob = base64.b64decode(openssh_public.split()[1])
(n,) = struct.unpack(">I", blob[:4])
assert blob[4:4 + n] == b"ssh-ed25519", blob[4:4 + n]
rest = blob[4 + n:]
(m,) = struct.unpack(">I", rest[:4])
raw = rest[4:4 + m]
assert m == 32 and len(raw) == 32, m

with open(bundle_path, "rb") as f:
    lines = f.read().split(b"\n")
assert lines[-1] == b"", "the bundle must end with a newline"
lines = lines[:-1]
assert len(lines) >= 2, len(lines)

statements = []
for i, line in enumerate(lines, 1):
    envelope = Envelope.from_dict(json.loads(line))
    assert envelope.payload_type == "application/vnd.in-toto+json", envelope.payload_type
    keyid = next(iter(envelope.signatures))
    key = SSlibKey(keyid, "ed25519", "ed25519", {"public": raw.hex()})
    verified = envelope.verify([key], 1)
    assert keyid in verified, verified
    statement = json.loads(envelope.payload)
    assert statement["_type"] == "https://in-toto.io/Statement/v1", statement["_type"]
    assert statement["subject"], "a statement needs subjects"
    statements.append(statement)
    print(f"line {i}: {statement['predicateType']} verified")

index = statements[-1]["predicate"]
listed = [e["sha256"] for e in index["envelopes"]]
actual = [hashlib.sha256(line).hexdigest() for line in lines[:-1]]
assert listed == actual, (listed, actual)
assert index["count"] == len(lines) - 1
subjects = [s["digest"]["sha256"] for s in statements[-1]["subject"]]
assert subjects == actual, (subjects, actual)

# A tampered payload must fail with the same verifier.
tampered = json.loads(lines[0])
payload = json.loads(base64.b64decode(tampered["payload"]))
payload["predicate"]["run"] = "someone-else"
tampered["payload"] = base64.b64encode(json.dumps(payload).encode()).decode()
try:
    Envelope.from_dict(tampered).verify([key], 1)
except VerificationError:
    print("tampered envelope refused")
else:
    raise SystemExit("a tampered envelope verified")
print("OK", len(lines))
"#;

#[test]
fn securesystemslib_verifies_every_envelope() {
    let has_it = Command::new("python3")
        .args([
            "-c",
            "import securesystemslib.dsse, securesystemslib.signer",
        ])
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_it {
        if std::env::var_os("CI").is_some() {
            panic!(
                "python3 with securesystemslib is required in CI (.ci/run installs it: \
                 python3 -m pip install 'securesystemslib[crypto]')"
            );
        }
        eprintln!(
            "SKIPPED securesystemslib_verifies_every_envelope: python3 cannot import securesystemslib; \
             install it with `python3 -m pip install 'securesystemslib[crypto]'`"
        );
        return;
    }
    let p = proof();
    let script = p.dir.join("dsse_check.py");
    std::fs::write(&script, DSSE_CHECK).unwrap();
    let out = run_tool(
        Command::new("python3")
            .arg(&script)
            .arg(&p.bundle)
            .arg(&p.public),
        b"",
    );
    assert!(out.ok, "{}", out.text);
    let lines = std::fs::read_to_string(&p.bundle).unwrap().lines().count();
    assert!(out.text.contains(&format!("OK {lines}")), "{}", out.text);
    assert!(
        out.text.contains("tampered envelope refused"),
        "{}",
        out.text
    );
    for predicate in [
        "https://airlock.dev/run/v1",
        "https://airlock.dev/traces/v1",
        "https://airlock.dev/checks/v1",
    ] {
        assert!(
            out.text.contains(&format!("{predicate} verified")),
            "{}",
            out.text
        );
    }

    // The same verifier refuses a bundle whose envelope was edited on disk.
    let text = std::fs::read_to_string(&p.bundle).unwrap();
    let mut first: Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    let sig = first["signatures"][0]["sig"].as_str().unwrap().to_string();
    let mut raw = base64_decode(&sig);
    raw[0] ^= 1;
    first["signatures"][0]["sig"] = Value::String(base64_encode(&raw));
    let forged = p.dir.join("forged.intoto.jsonl");
    let mut body = serde_json::to_string(&first).unwrap();
    body.push('\n');
    for line in text.lines().skip(1) {
        body.push_str(line);
        body.push('\n');
    }
    std::fs::write(&forged, body).unwrap();
    let out = run_tool(
        Command::new("python3")
            .arg(&script)
            .arg(&forged)
            .arg(&p.public),
        b"",
    );
    assert!(!out.ok, "a forged signature verified:\n{}", out.text);
    assert!(out.text.contains("VerificationError"), "{}", out.text);
}

/// DSSE v1 pre-authentication encoding.
fn pae(payload_type: &str, body: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "DSSEv1 {} {} {} ",
        payload_type.len(),
        payload_type,
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body);
    out
}

fn openssl_verify(dir: &Path, pem: &Path, message: &[u8], signature: &[u8]) -> Ran {
    let msg = dir.join("pae.bin");
    let sig = dir.join("sig.bin");
    std::fs::write(&msg, message).unwrap();
    std::fs::write(&sig, signature).unwrap();
    run_tool(
        Command::new("openssl")
            .args(["pkeyutl", "-verify", "-pubin", "-rawin", "-inkey"])
            .arg(pem)
            .arg("-in")
            .arg(&msg)
            .arg("-sigfile")
            .arg(&sig),
        b"",
    )
}

#[test]
fn openssl_verifies_each_envelope_over_its_pae() {
    let p = proof();
    // The OpenSSH public key as a PEM SubjectPublicKeyInfo (RFC 8410), built
    // from the raw key in the OpenSSH blob (`ssh-keygen -e -m PKCS8` does not
    // export ed25519 keys in every OpenSSH version).
    let raw = ed25519_from_openssh(&p.public);
    let mut der = vec![
        0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
    ];
    der.extend_from_slice(&raw);
    let pem_file = p.dir.join("airlock.pem");
    std::fs::write(
        &pem_file,
        format!(
            "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
            base64_encode(&der)
        ),
    )
    .unwrap();
    // openssl itself reads it as an ED25519 key.
    let described = run_tool(
        Command::new("openssl")
            .args(["pkey", "-pubin", "-noout", "-text", "-in"])
            .arg(&pem_file),
        b"",
    );
    assert!(described.ok, "{}", described.text);
    assert!(
        described.text.contains("ED25519 Public-Key"),
        "{}",
        described.text
    );

    let text = std::fs::read_to_string(&p.bundle).unwrap();
    let mut count = 0;
    for line in text.lines() {
        let envelope: Value = serde_json::from_str(line).unwrap();
        assert_eq!(envelope["payloadType"], PAYLOAD_TYPE);
        let body = base64_decode(envelope["payload"].as_str().unwrap());
        let statement: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(statement["_type"], STATEMENT_V1);
        let signatures = envelope["signatures"].as_array().unwrap();
        assert_eq!(signatures.len(), 1);
        let sig = base64_decode(signatures[0]["sig"].as_str().unwrap());
        assert_eq!(sig.len(), 64);
        let message = pae(PAYLOAD_TYPE, &body);
        let good = openssl_verify(&p.dir, &pem_file, &message, &sig);
        assert!(good.ok, "{}", good.text);
        assert!(
            good.text.contains("Signature Verified Successfully")
                || good.text.contains("Verified OK"),
            "{}",
            good.text
        );
        // The signature covers the PAE, not the bare payload, and every byte of it.
        let bare = openssl_verify(&p.dir, &pem_file, &body, &sig);
        assert!(!bare.ok, "{}", bare.text);
        let mut flipped = message.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        let bad = openssl_verify(&p.dir, &pem_file, &flipped, &sig);
        assert!(!bad.ok, "{}", bad.text);
        count += 1;
    }
    assert_eq!(
        count, 6,
        "five statements (run, traces, checks, actions, panel) and the index"
    );

    // The last line's index names every other line's sha256.
    let lines: Vec<&str> = text.lines().collect();
    let last: Value = serde_json::from_str(lines[lines.len() - 1]).unwrap();
    let index: Value =
        serde_json::from_slice(&base64_decode(last["payload"].as_str().unwrap())).unwrap();
    let listed: Vec<&str> = index["predicate"]["envelopes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["sha256"].as_str().unwrap())
        .collect();
    let actual: Vec<String> = lines[..lines.len() - 1]
        .iter()
        .map(|l| hex::encode(Sha256::digest(l.as_bytes())))
        .collect();
    assert_eq!(listed, actual);
}

/// The 32 raw bytes of an `ssh-ed25519 AAAA…` public key: the blob is
/// string "ssh-ed25519", then string key, each with a big-endian u32 length.
fn ed25519_from_openssh(line: &str) -> Vec<u8> {
    let blob = base64_decode(line.split_whitespace().nth(1).unwrap());
    let mut fields = Vec::new();
    let mut rest = &blob[..];
    while rest.len() >= 4 {
        let n = u32::from_be_bytes(rest[..4].try_into().unwrap()) as usize;
        fields.push(rest[4..4 + n].to_vec());
        rest = &rest[4 + n..];
    }
    assert!(rest.is_empty(), "trailing bytes in the key blob");
    assert_eq!(fields.len(), 2, "{fields:?}");
    assert_eq!(fields[0], b"ssh-ed25519");
    assert_eq!(fields[1].len(), 32);
    fields[1].clone()
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 (padding optional); the URL-safe alphabet is accepted too.
fn base64_decode(text: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let mut acc = 0u32;
    let mut bits = 0;
    for c in text.bytes().filter(|&c| c != b'=') {
        let v = match c {
            b'-' => 62,
            b'_' => 63,
            _ => B64
                .iter()
                .position(|&b| b == c)
                .unwrap_or_else(|| panic!("not base64: {c:?} in {text}")) as u32,
        };
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}

fn base64_encode(bytes: &[u8]) -> String {
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.len();
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let v = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= n {
                out.push(B64[((v >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[test]
fn base64_helpers_round_trip() {
    for sample in [&b""[..], b"f", b"fo", b"foo", b"foob", b"fooba", b"foobar"] {
        assert_eq!(base64_decode(&base64_encode(sample)), sample);
    }
    assert_eq!(base64_encode(b"foobar"), "Zm9vYmFy");
    assert_eq!(base64_encode(b"fo"), "Zm8=");
}
