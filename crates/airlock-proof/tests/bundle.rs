//! Round trip and tampering of proof bundles.

mod common;

use airlock_proof::{
    Envelope, INDEX_PREDICATE, PAYLOAD_TYPE, ProofError, SigningKey, Statement, build_bundle,
    sign_envelope, verify_bundle,
};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use common::{join, lines, statements, subject};
use serde_json::json;
use sha2::{Digest, Sha256};

fn err(key: &SigningKey, jsonl: &[u8]) -> String {
    match verify_bundle(&key.public(), jsonl, None) {
        Ok(_) => panic!("tampered bundle verified"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn round_trip() {
    let key = SigningKey::generate();
    let sts = statements("one");
    let bundle = build_bundle(&key, &sts).unwrap();
    assert_eq!(bundle.digest, hex::encode(Sha256::digest(&bundle.jsonl)));
    assert!(bundle.jsonl.ends_with(b"\n"));
    assert_eq!(lines(&bundle.jsonl).len(), 4);
    assert!(
        bundle
            .ssh_signature
            .starts_with("-----BEGIN SSH SIGNATURE-----")
    );

    let v = verify_bundle(&key.public(), &bundle.jsonl, Some(&bundle.ssh_signature)).unwrap();
    assert_eq!(v.statements, sts);
    assert_eq!(v.digest, bundle.digest);
    assert_eq!(v.key_id, key.public().key_id());
}

#[test]
fn index_lists_every_line() {
    let key = SigningKey::generate();
    let bundle = build_bundle(&key, &statements("idx")).unwrap();
    let ls = lines(&bundle.jsonl);
    let env: Envelope = serde_json::from_slice(ls.last().unwrap()).unwrap();
    assert_eq!(env.payload_type, PAYLOAD_TYPE);
    let index: Statement = serde_json::from_slice(&STANDARD.decode(&env.payload).unwrap()).unwrap();
    assert_eq!(index.predicate_type, INDEX_PREDICATE);
    assert_eq!(index.predicate["count"], json!(3));
    for (i, l) in ls[..3].iter().enumerate() {
        let d = hex::encode(Sha256::digest(l));
        assert_eq!(index.subject[i].name, format!("envelope-{}", i + 1));
        assert_eq!(index.subject[i].digest["sha256"], d);
        assert_eq!(index.predicate["envelopes"][i]["line"], json!(i + 1));
        assert_eq!(index.predicate["envelopes"][i]["sha256"], json!(d));
    }
    assert_eq!(
        index.predicate["envelopes"][1]["predicateType"],
        json!("https://airlock.dev/command/v1")
    );
}

#[test]
fn flipped_payload_byte() {
    let key = SigningKey::generate();
    let bundle = build_bundle(&key, &statements("a")).unwrap();
    let mut ls = lines(&bundle.jsonl);
    let mut env: Envelope = serde_json::from_slice(&ls[1]).unwrap();
    let mut payload = STANDARD.decode(&env.payload).unwrap();
    let pos = payload.iter().position(|&b| b == b'0').unwrap(); // "exit": 0
    payload[pos] = b'1';
    env.payload = STANDARD.encode(&payload);
    ls[1] = serde_json::to_vec(&env).unwrap();
    assert_eq!(
        err(&key, &join(&ls)),
        format!(
            "line 2: signature does not verify with key {} (the envelope was altered or signed by another key)",
            key.public().key_id()
        )
    );
}

#[test]
fn flipped_raw_byte_anywhere() {
    // Flipping any single byte of any line must fail, never verify, never panic.
    let key = SigningKey::generate();
    let bundle = build_bundle(&key, &statements("b")).unwrap();
    let mut step = 0;
    for i in (0..bundle.jsonl.len()).step_by(37) {
        let mut j = bundle.jsonl.clone();
        j[i] ^= 0x01;
        assert!(verify_bundle(&key.public(), &j, None).is_err(), "byte {i}");
        step += 1;
    }
    assert!(step > 50);
}

#[test]
fn swapped_lines() {
    let key = SigningKey::generate();
    let bundle = build_bundle(&key, &statements("c")).unwrap();
    let mut ls = lines(&bundle.jsonl);
    ls.swap(0, 1);
    assert_eq!(
        err(&key, &join(&ls)),
        "line 1 is listed in the bundle index as envelope 2 (lines were reordered)"
    );
}

#[test]
fn swapped_with_index() {
    let key = SigningKey::generate();
    let bundle = build_bundle(&key, &statements("c2")).unwrap();
    let mut ls = lines(&bundle.jsonl);
    ls.swap(2, 3);
    assert_eq!(
        err(&key, &join(&ls)),
        format!(
            "the last line (4) is not the bundle index: its predicateType is \"https://airlock.dev/approval/v1\", expected \"{INDEX_PREDICATE}\" (the index line was moved, a line was appended after it, or the file was truncated)"
        )
    );
}

#[test]
fn dropped_line() {
    let key = SigningKey::generate();
    let bundle = build_bundle(&key, &statements("d")).unwrap();
    let mut ls = lines(&bundle.jsonl);
    let gone = ls.remove(1);
    assert_eq!(
        err(&key, &join(&ls)),
        format!(
            "the bundle index lists 3 envelopes but the file has 2 (a line was dropped: envelope 2 of the index, sha256 {}, is missing)",
            hex::encode(Sha256::digest(&gone))
        )
    );
}

#[test]
fn dropped_index() {
    let key = SigningKey::generate();
    let bundle = build_bundle(&key, &statements("d2")).unwrap();
    let mut ls = lines(&bundle.jsonl);
    ls.pop();
    assert!(
        err(&key, &join(&ls)).starts_with("the last line (3) is not the bundle index"),
        "{}",
        err(&key, &join(&ls))
    );
}

#[test]
fn duplicated_line() {
    let key = SigningKey::generate();
    let bundle = build_bundle(&key, &statements("e")).unwrap();
    let mut ls = lines(&bundle.jsonl);
    ls.insert(2, ls[1].clone());
    assert_eq!(
        err(&key, &join(&ls)),
        "line 3 duplicates line 2 (a line was duplicated)"
    );
    // Duplicating the index itself is caught the same way.
    let mut ls = lines(&bundle.jsonl);
    ls.push(ls[3].clone());
    assert_eq!(
        err(&key, &join(&ls)),
        "line 5 duplicates line 4 (a line was duplicated)"
    );
}

#[test]
fn injected_envelope_from_another_key() {
    let key = SigningKey::generate();
    let other = SigningKey::generate();
    let bundle = build_bundle(&key, &statements("f")).unwrap();
    let payload = serde_json::to_vec(&statements("evil")[0]).unwrap();

    let mut ls = lines(&bundle.jsonl);
    ls.insert(
        1,
        serde_json::to_vec(&sign_envelope(&other, PAYLOAD_TYPE, &payload)).unwrap(),
    );
    assert_eq!(
        err(&key, &join(&ls)),
        format!(
            "line 2: signature 1 was made by key {}, not by the expected key {} (the envelope was signed by another key)",
            other.public().key_id(),
            key.public().key_id()
        )
    );

    // Forging the keyid does not help: the signature itself is checked.
    let mut env = sign_envelope(&other, PAYLOAD_TYPE, &payload);
    env.signatures[0].keyid = key.public().key_id();
    let mut ls = lines(&bundle.jsonl);
    ls.insert(1, serde_json::to_vec(&env).unwrap());
    assert_eq!(
        err(&key, &join(&ls)),
        format!(
            "line 2: signature does not verify with key {} (the envelope was altered or signed by another key)",
            key.public().key_id()
        )
    );

    // A second signature by another key beside ours is refused too.
    let mut env = sign_envelope(&key, PAYLOAD_TYPE, &payload);
    env.signatures
        .push(sign_envelope(&other, PAYLOAD_TYPE, &payload).signatures[0].clone());
    let mut ls = lines(&bundle.jsonl);
    ls[0] = serde_json::to_vec(&env).unwrap();
    assert!(err(&key, &join(&ls)).starts_with("line 1: signature 2 was made by key"));
}

#[test]
fn envelope_from_another_bundle_of_same_key() {
    let key = SigningKey::generate();
    let a = build_bundle(&key, &statements("g1")).unwrap();
    let b = build_bundle(&key, &statements("g2")).unwrap();
    let mut ls = lines(&a.jsonl);
    ls.insert(1, lines(&b.jsonl)[0].clone());
    assert_eq!(
        err(&key, &join(&ls)),
        "line 2 is not listed in the bundle index (a line was injected)"
    );
    // Replacing a line with one from the other bundle is an injection as well.
    let mut ls = lines(&a.jsonl);
    ls[2] = lines(&b.jsonl)[2].clone();
    assert_eq!(
        err(&key, &join(&ls)),
        "line 3 is not listed in the bundle index (a line was injected)"
    );
    // Appending the other bundle whole: its index follows ours.
    let mut joined = a.jsonl.clone();
    joined.extend_from_slice(&b.jsonl);
    assert_eq!(
        err(&key, &joined),
        "line 4 is a bundle index but not the last line (an index was injected or bundles were concatenated)"
    );
}

#[test]
fn appended_blank_and_garbage_lines() {
    let key = SigningKey::generate();
    let bundle = build_bundle(&key, &statements("h")).unwrap();
    let mut j = bundle.jsonl.clone();
    j.push(b'\n');
    assert_eq!(
        err(&key, &j),
        "line 5: the line is empty (a blank line was inserted or appended; every line must be a DSSE envelope)"
    );
    let mut j = bundle.jsonl.clone();
    j.extend_from_slice(b"hello\n");
    let e = err(&key, &j);
    assert!(
        e.starts_with("line 5: not a DSSE envelope: expected a JSON object with \"payload\", \"payloadType\" and \"signatures\" ("),
        "{e}"
    );
    let mut j = bundle.jsonl.clone();
    j.extend_from_slice(b"{\"payload\":\"\",\"payloadType\":\"x\"}");
    assert!(err(&key, &j).contains("missing field `signatures`"));
}

#[test]
fn wrong_payload_type() {
    let key = SigningKey::generate();
    let bundle = build_bundle(&key, &statements("i")).unwrap();
    let payload = serde_json::to_vec(&statements("i")[1]).unwrap();
    let mut ls = lines(&bundle.jsonl);
    ls[1] = serde_json::to_vec(&sign_envelope(&key, "application/json", &payload)).unwrap();
    assert_eq!(
        err(&key, &join(&ls)),
        "line 2: payloadType is \"application/json\", expected \"application/vnd.in-toto+json\""
    );
}

#[test]
fn unsigned_fields_are_bound_too() {
    // Renaming "keyid", changing spacing or dropping keyid leaves the DSSE signature valid,
    // so the line format itself is checked; this matters for the index line, whose own digest
    // is listed nowhere.
    let key = SigningKey::generate();
    let bundle = build_bundle(&key, &statements("u")).unwrap();
    let ls = lines(&bundle.jsonl);
    let canon = "line 4: the envelope is not in the canonical form airlock writes (it was re-serialized or edited outside the signed payload)";
    for edit in [
        |s: String| s.replace("\"keyid\"", "\"keyhd\""),
        |s: String| s.replacen("{", "{ ", 1),
        |s: String| {
            let mut v: serde_json::Value = serde_json::from_str(&s).unwrap();
            v["signatures"][0].as_object_mut().unwrap().remove("keyid");
            v["extra"] = json!(1);
            v.to_string()
        },
    ] {
        let mut ls = ls.clone();
        ls[3] = edit(String::from_utf8(ls[3].clone()).unwrap()).into_bytes();
        assert_eq!(err(&key, &join(&ls)), canon);
    }
}

#[test]
fn crlf_conversion() {
    let key = SigningKey::generate();
    let bundle = build_bundle(&key, &statements("crlf")).unwrap();
    let text = String::from_utf8(bundle.jsonl)
        .unwrap()
        .replace('\n', "\r\n");
    assert!(err(&key, text.as_bytes()).starts_with("line 1: the line ends with a carriage return"));
}

#[test]
fn verified_with_another_key() {
    let key = SigningKey::generate();
    let other = SigningKey::generate();
    let bundle = build_bundle(&key, &statements("j")).unwrap();
    let e = verify_bundle(&other.public(), &bundle.jsonl, None).unwrap_err();
    assert!(matches!(e, ProofError::Line { line: 1, .. }), "{e}");
}

#[test]
fn ssh_signature_of_another_file() {
    let key = SigningKey::generate();
    let a = build_bundle(&key, &statements("k1")).unwrap();
    let b = build_bundle(&key, &statements("k2")).unwrap();
    let e = verify_bundle(&key.public(), &a.jsonl, Some(&b.ssh_signature)).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "the SSH signature does not verify with key {} (the signed file was altered after signing, or the signature belongs to another file)",
            key.public().key_id()
        )
    );
    let other = SigningKey::generate();
    let c = build_bundle(&other, &statements("k3")).unwrap();
    let e = verify_bundle(&key.public(), &a.jsonl, Some(&c.ssh_signature)).unwrap_err();
    assert!(
        e.to_string().starts_with(&format!(
            "the SSH signature was made by key {}",
            other.public().key_id()
        )),
        "{e}"
    );
    let e = verify_bundle(&key.public(), &a.jsonl, Some("not a signature")).unwrap_err();
    assert!(matches!(e, ProofError::SshSignatureFormat { .. }), "{e}");
}

/// Sign an index statement by hand to exercise malformed indexes.
fn with_index(key: &SigningKey, body: &[Vec<u8>], index: &Statement) -> Vec<u8> {
    let payload = serde_json::to_vec(index).unwrap();
    let mut ls = body.to_vec();
    ls.push(serde_json::to_vec(&sign_envelope(key, PAYLOAD_TYPE, &payload)).unwrap());
    join(&ls)
}

#[test]
fn malformed_index() {
    let key = SigningKey::generate();
    let bundle = build_bundle(&key, &statements("m")).unwrap();
    let body = lines(&bundle.jsonl)[..3].to_vec();
    let d: Vec<String> = body
        .iter()
        .map(|l| hex::encode(Sha256::digest(l)))
        .collect();
    let subjects: Vec<_> = d
        .iter()
        .enumerate()
        .map(|(i, d)| subject(&format!("envelope-{}", i + 1), d))
        .collect();
    let entries: Vec<_> = d
        .iter()
        .enumerate()
        .map(|(i, d)| json!({"line": i + 1, "sha256": d, "predicateType": "p"}))
        .collect();

    // Huge count.
    let idx = Statement::new(
        subjects.clone(),
        INDEX_PREDICATE,
        json!({"envelopes": entries, "count": 1e300}),
    );
    assert_eq!(
        err(&key, &with_index(&key, &body, &idx)),
        "the bundle index on line 4 is malformed: its predicate has no unsigned integer \"count\""
    );
    let idx = Statement::new(
        subjects.clone(),
        INDEX_PREDICATE,
        json!({"envelopes": entries, "count": u64::MAX}),
    );
    assert_eq!(
        err(&key, &with_index(&key, &body, &idx)),
        format!(
            "the bundle index on line 4 is malformed: its \"count\" is {} but it lists 3 envelopes",
            u64::MAX
        )
    );
    // Huge line number written as raw JSON.
    let raw_idx = format!(
        r#"{{"_type":"https://in-toto.io/Statement/v1","subject":{},"predicateType":"{INDEX_PREDICATE}","predicate":{{"count":3,"envelopes":[{{"line":123456789012345678901234567890,"sha256":"{}","predicateType":"p"}}]}}}}"#,
        serde_json::to_string(&subjects).unwrap(),
        d[0]
    );
    let mut ls = body.clone();
    ls.push(serde_json::to_vec(&sign_envelope(&key, PAYLOAD_TYPE, raw_idx.as_bytes())).unwrap());
    assert!(err(&key, &join(&ls)).starts_with("the bundle index on line 4 is malformed"));
    // Subjects that do not match the list.
    let mut bad_subjects = subjects.clone();
    bad_subjects.swap(0, 1);
    let idx = Statement::new(
        bad_subjects,
        INDEX_PREDICATE,
        json!({"envelopes": entries, "count": 3}),
    );
    assert_eq!(
        err(&key, &with_index(&key, &body, &idx)),
        "the bundle index on line 4 is malformed: subject 1 does not match envelope 1 of the predicate (expected name \"envelope-1\" with that sha256)"
    );
    // No envelopes array.
    let idx = Statement::new(subjects, INDEX_PREDICATE, json!([1, 2]));
    assert_eq!(
        err(&key, &with_index(&key, &body, &idx)),
        "the bundle index on line 4 is malformed: its predicate has no \"envelopes\" array"
    );
}

#[test]
fn bad_input_never_panics() {
    let key = SigningKey::generate();
    let pk = key.public();
    for input in [
        &b""[..],
        b"\n",
        b"   \n\n",
        b"\xff\xfe\x00",
        b"[]",
        b"null\n",
        b"{\"payload\":\"!!!\",\"payloadType\":\"application/vnd.in-toto+json\",\"signatures\":[{\"keyid\":\"\",\"sig\":\"AAAA\"}]}",
        b"{\"payload\":\"e30=\",\"payloadType\":\"application/vnd.in-toto+json\",\"signatures\":[]}",
        b"{\"payload\":\"e30=\",\"payloadType\":\"application/vnd.in-toto+json\",\"signatures\":[{\"sig\":\"AAAA\"}]}",
        b"{\"payload\":\"e30=\",\"payloadType\":\"application/vnd.in-toto+json\",\"signatures\":[{\"sig\":\"%%%\"}]}",
        b"{\"payload\":1e999999}",
        b"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[",
    ] {
        assert!(verify_bundle(&pk, input, None).is_err());
    }
    assert_eq!(
        verify_bundle(&pk, b"", None).unwrap_err().to_string(),
        "the bundle is empty (expected one DSSE envelope per line, ending with the bundle index)"
    );
    assert_eq!(
        verify_bundle(&pk, b"{\"payload\":\"e30=\",\"payloadType\":\"application/vnd.in-toto+json\",\"signatures\":[{\"sig\":\"AAAA\"}]}\n", None)
            .unwrap_err()
            .to_string(),
        "line 1: signature 1 is 3 bytes long; an ed25519 signature is 64 bytes"
    );
    assert_eq!(
        verify_bundle(&pk, b"{\"payload\":\"e30=\",\"payloadType\":\"application/vnd.in-toto+json\",\"signatures\":[]}", None)
            .unwrap_err()
            .to_string(),
        format!("line 1: the envelope has no signatures (it must be signed by key {})", pk.key_id())
    );
    // A correctly signed payload that is not a statement.
    let env = sign_envelope(&key, PAYLOAD_TYPE, b"{\"hello\":1}");
    let e = verify_bundle(&pk, &serde_json::to_vec(&env).unwrap(), None).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("line 1: payload is not an in-toto Statement v1 (missing field"),
        "{e}"
    );
    let mut st = statements("x")[0].clone();
    st.type_ = "https://in-toto.io/Statement/v0.1".into();
    let env = sign_envelope(&key, PAYLOAD_TYPE, &serde_json::to_vec(&st).unwrap());
    assert_eq!(
        verify_bundle(&pk, &serde_json::to_vec(&env).unwrap(), None)
            .unwrap_err()
            .to_string(),
        "line 1: payload has _type \"https://in-toto.io/Statement/v0.1\", expected \"https://in-toto.io/Statement/v1\""
    );
}

#[test]
fn build_refuses_bad_statements() {
    let key = SigningKey::generate();
    assert!(build_bundle(&key, &[]).is_err());
    let mut sts = statements("n");
    sts[1].predicate_type = INDEX_PREDICATE.into();
    assert_eq!(
        build_bundle(&key, &sts).unwrap_err().to_string(),
        format!(
            "cannot build the bundle: statement 2 uses the reserved predicateType \"{INDEX_PREDICATE}\""
        )
    );
    let mut sts = statements("n");
    sts.push(sts[1].clone());
    assert_eq!(
        build_bundle(&key, &sts).unwrap_err().to_string(),
        "cannot build the bundle: statement 4 is identical to statement 2 (a bundle cannot hold the same statement twice)"
    );
    let mut sts = statements("n");
    sts[0].subject.clear();
    assert_eq!(
        build_bundle(&key, &sts).unwrap_err().to_string(),
        "cannot build the bundle: statement 1 is not a valid in-toto statement: it has no subject"
    );
}
