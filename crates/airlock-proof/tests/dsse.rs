//! DSSE envelopes and PAE.

use airlock_proof::{
    EnvelopeError, PAYLOAD_TYPE, ProofError, PublicKey, STATEMENT_TYPE, SigningKey, Statement, pae,
    sign_envelope, verify_envelope,
};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

#[test]
fn pae_known_answer_from_dsse_spec() {
    assert_eq!(
        pae("http://example.com/HelloWorld", b"hello world"),
        b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    );
    assert_eq!(pae("", b""), b"DSSEv1 0  0 ");
    // Lengths count bytes, not characters.
    assert_eq!(pae("é", "ü".as_bytes()), "DSSEv1 2 é 2 ü".as_bytes());
}

#[test]
fn envelope_round_trip_and_json_shape() {
    let key = SigningKey::generate();
    let env = sign_envelope(&key, PAYLOAD_TYPE, b"{\"a\":1}");
    assert_eq!(env.payload, STANDARD.encode(b"{\"a\":1}"));
    assert_eq!(verify_envelope(&key.public(), &env).unwrap(), b"{\"a\":1}");
    let json: serde_json::Value = serde_json::to_value(&env).unwrap();
    assert_eq!(json["payloadType"], PAYLOAD_TYPE);
    assert_eq!(json["signatures"][0]["keyid"], key.public().key_id());
    assert_eq!(
        STANDARD
            .decode(json["signatures"][0]["sig"].as_str().unwrap())
            .unwrap()
            .len(),
        64
    );

    // The payload type is signed: changing it breaks the signature.
    let mut changed = env.clone();
    changed.payload_type = "application/json".into();
    assert!(matches!(
        verify_envelope(&key.public(), &changed),
        Err(ProofError::Envelope(EnvelopeError::BadSignature { .. }))
    ));
    // Bad base64 payload.
    let mut changed = env.clone();
    changed.payload = "***".into();
    assert!(
        verify_envelope(&key.public(), &changed)
            .unwrap_err()
            .to_string()
            .starts_with("payload is not valid standard base64")
    );
    // Empty keyid is allowed by DSSE; the signature still decides.
    let mut changed = env.clone();
    changed.signatures[0].keyid.clear();
    verify_envelope(&key.public(), &changed).unwrap();
    assert!(verify_envelope(&SigningKey::generate().public(), &changed).is_err());
}

#[test]
fn statement_json_shape() {
    let st = Statement::new(vec![], "https://example.com/p", serde_json::json!({"k": 1}));
    let v = serde_json::to_value(&st).unwrap();
    assert_eq!(v["_type"], STATEMENT_TYPE);
    assert_eq!(v["predicateType"], "https://example.com/p");
    assert_eq!(v["predicate"]["k"], 1);
}

#[test]
fn public_key_text_forms() {
    let key = SigningKey::generate();
    let pk = key.public();
    let line = pk.to_openssh();
    assert!(line.starts_with("ssh-ed25519 AAAA"), "{line}");
    assert!(line.ends_with(" airlock"));
    assert_eq!(PublicKey::from_openssh(&line).unwrap(), pk);
    assert_eq!(PublicKey::from_openssh(&format!("  {line}\n")).unwrap(), pk);
    assert!(pk.key_id().starts_with("SHA256:"));
    assert_eq!(pk.key_id().len(), 7 + 43);
    assert_ne!(pk.key_id(), SigningKey::generate().public().key_id());

    for bad in ["", "garbage", "ssh-ed25519 !!!", "ssh-ed25519 AAAA"] {
        let e = PublicKey::from_openssh(bad).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("not an OpenSSH ed25519 public key"),
            "{e}"
        );
    }
    let rsa = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQDGQ2JqfwuFvCZuwNWNSyz8Ne3ugMx9LFoGdcAHHi0jxFWLtKAeqlEa9fjnpOI8I5Q6RRYn9U8wnu1YwVrkUqrGWmgK4mmfHLvOa9skwrn8Y/7Gj2pYBN9fjOfwLXqSRdmHHvwlJbgCSyM0O/D7Uw72MCyRUuJG7g4Kom+H+bxu+w== rsa";
    let e = PublicKey::from_openssh(rsa).unwrap_err();
    assert!(e.to_string().contains("it is an ssh-rsa key"), "{e}");
}
