//! Signing and verifying through an OCI layout store, and every bad input refused.

use std::collections::BTreeMap;

use p256::ecdsa::SigningKey;

use super::*;
use crate::oci::layout::Layout;
use crate::oci::reference::LayoutImage;

struct Fixture {
    _dir: tempfile::TempDir,
    store: Store,
    image: ImageRef,
    digest: Digest,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let layout_dir = dir.path().join("company/app");
    let layout = Layout::create(&layout_dir).unwrap();
    let digest = layout
        .put_manifest(
            br#"{"schemaVersion":2}"#,
            Some("0123"),
            crate::format::MANIFEST_MEDIA_TYPE,
        )
        .unwrap();
    Fixture {
        _dir: dir,
        store: Store::Layout(layout),
        image: ImageRef::Layout(LayoutImage {
            dir: layout_dir,
            tag: Some("0123".into()),
            digest: Some(digest.clone()),
        }),
        digest,
    }
}

fn key(seed: u8) -> SigningKey {
    SigningKey::from_slice(&[seed; 32]).unwrap()
}

fn trusted(seed: u8) -> TrustedKey {
    let k = key(seed);
    TrustedKey {
        name: format!("key{seed}.pub"),
        fingerprint: keys::fingerprint(k.verifying_key()),
        key: *k.verifying_key(),
    }
}

fn subject(f: &Fixture) -> Subject<'_> {
    Subject {
        digest: &f.digest,
        repository: "company/app",
    }
}

fn block_on<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

/// Stores a signature manifest made of `layers` (payload, annotations) as is.
fn store_raw(f: &Fixture, layers: &[(Vec<u8>, BTreeMap<String, String>)]) {
    let mut e = Envelope::default();
    for (payload, annotations) in layers {
        block_on(f.store.push_blob(&Digest::of(payload), payload, "p")).unwrap();
        e.layers.push(envelope::Layer {
            media_type: envelope::PAYLOAD_MEDIA_TYPE.into(),
            size: payload.len() as u64,
            digest: Digest::of(payload),
            annotations: annotations.clone(),
        });
    }
    let (config, manifest) = e.to_bytes();
    block_on(f.store.push_blob(&Digest::of(&config), &config, "c")).unwrap();
    block_on(
        f.store
            .push_manifest(&manifest, &envelope::tag(&f.digest), "m"),
    )
    .unwrap();
}

fn signed(payload: &[u8], by: &SigningKey) -> (Vec<u8>, BTreeMap<String, String>) {
    (
        payload.to_vec(),
        BTreeMap::from([(
            envelope::SIGNATURE_ANNOTATION.to_owned(),
            sign_payload(by, payload),
        )]),
    )
}

fn refusal(f: &Fixture, keys: &[TrustedKey]) -> String {
    block_on(verify(&f.store, &f.image, &subject(f), keys))
        .unwrap_err()
        .to_string()
}

#[test]
fn a_signature_made_by_sign_verifies_and_names_its_key() {
    let f = fixture();
    assert!(
        block_on(sign(
            &f.store,
            &f.image,
            &f.digest,
            "localhost:5000/company/app",
            &key(1)
        ))
        .unwrap()
    );
    // Signing again with the same key adds nothing; another key adds a second signature.
    assert!(
        !block_on(sign(
            &f.store,
            &f.image,
            &f.digest,
            "localhost:5000/company/app",
            &key(1)
        ))
        .unwrap()
    );
    assert!(block_on(sign(&f.store, &f.image, &f.digest, "company/app", &key(2))).unwrap());
    let signer = block_on(verify(
        &f.store,
        &f.image,
        &subject(&f),
        &[trusted(3), trusted(2)],
    ))
    .unwrap();
    assert_eq!(signer.key, "key2.pub");
    assert_eq!(signer.fingerprint, trusted(2).fingerprint);
    let findings = block_on(examine(&f.store, &f.image, &subject(&f), &[trusted(1)]))
        .unwrap()
        .unwrap();
    assert_eq!(findings.len(), 2);
    assert_eq!(findings[0].signer.as_ref().unwrap().key, "key1.pub");
    assert!(
        findings[1]
            .problem
            .as_ref()
            .unwrap()
            .contains("none of the trusted keys")
    );
}

#[test]
fn an_unsigned_release_is_refused_naming_the_keys_and_the_digest() {
    let f = fixture();
    let err = refusal(&f, &[trusted(1), trusted(2)]);
    assert!(err.contains("not signed"), "{err}");
    assert!(err.contains(f.digest.as_str()), "{err}");
    assert!(
        err.contains(&trusted(1).describe()) && err.contains(&trusted(2).describe()),
        "{err}"
    );
}

#[test]
fn a_signature_by_an_untrusted_key_is_refused() {
    let f = fixture();
    block_on(sign(&f.store, &f.image, &f.digest, "company/app", &key(9))).unwrap();
    let err = refusal(&f, &[trusted(1)]);
    assert!(err.contains("none of the trusted keys"), "{err}");
    assert!(err.contains("key1.pub"), "{err}");
}

#[test]
fn a_signature_over_another_digest_is_refused() {
    let f = fixture();
    let other = Digest::of(b"another manifest");
    let payload = Payload::new("company/app", &other).to_bytes();
    store_raw(&f, &[signed(&payload, &key(1))]);
    let err = refusal(&f, &[trusted(1)]);
    assert!(
        err.contains(&format!("it signs {other}: expected {}", f.digest)),
        "{err}"
    );
}

#[test]
fn a_signature_over_another_repositorys_reference_is_refused() {
    let f = fixture();
    let payload = Payload::new("localhost:5000/company/other", &f.digest).to_bytes();
    store_raw(&f, &[signed(&payload, &key(1))]);
    let err = refusal(&f, &[trusted(1)]);
    assert!(err.contains("expected a reference to company/app"), "{err}");
}

#[test]
fn a_payload_with_unknown_critical_fields_is_refused_even_when_signed() {
    let f = fixture();
    let payload = format!(
        r#"{{"critical":{{"identity":{{"docker-reference":"company/app"}},"image":{{"docker-manifest-digest":"{}"}},"type":"cosign container image signature","not-before":"2030-01-01"}},"optional":null}}"#,
        f.digest
    );
    store_raw(&f, &[signed(payload.as_bytes(), &key(1))]);
    let err = refusal(&f, &[trusted(1)]);
    assert!(err.contains("unknown field `not-before`"), "{err}");
}

#[test]
fn truncated_and_non_der_signatures_are_refused() {
    let f = fixture();
    let payload = Payload::new("company/app", &f.digest).to_bytes();
    let good = sign_payload(&key(1), &payload);
    let der = base64::engine::general_purpose::STANDARD
        .decode(&good)
        .unwrap();
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    for (bad, want) in [
        (
            b64(&der[..der.len() - 5]),
            "not an ASN.1 DER ECDSA P-256 signature",
        ),
        (b64(&[0u8; 64]), "not an ASN.1 DER ECDSA P-256 signature"),
        ("%%%".to_owned(), "not base64"),
    ] {
        let ann = BTreeMap::from([(envelope::SIGNATURE_ANNOTATION.to_owned(), bad.clone())]);
        store_raw(&f, &[(payload.clone(), ann)]);
        let err = refusal(&f, &[trusted(1)]);
        assert!(err.contains(want), "{bad}: {err}");
    }
    store_raw(&f, &[(payload, BTreeMap::new())]);
    let err = refusal(&f, &[trusted(1)]);
    assert!(
        err.contains("no dev.cosignproject.cosign/signature annotation"),
        "{err}"
    );
}

#[test]
fn an_oversized_payload_is_not_downloaded() {
    let f = fixture();
    let mut payload = Payload::new("company/app", &f.digest);
    payload.optional = Some(serde_json::json!({"pad": "x".repeat(70_000)}));
    store_raw(&f, &[signed(&payload.to_bytes(), &key(1))]);
    let err = refusal(&f, &[trusted(1)]);
    assert!(err.contains("expected at most 65536"), "{err}");
}

#[test]
fn a_signature_tag_that_is_an_index_is_refused() {
    let f = fixture();
    let Store::Layout(layout) = &f.store else {
        unreachable!()
    };
    layout
        .put_manifest(
            br#"{"schemaVersion":2,"manifests":[]}"#,
            Some(&envelope::tag(&f.digest)),
            crate::format::INDEX_MEDIA_TYPE,
        )
        .unwrap();
    let err = refusal(&f, &[trusted(1)]);
    assert!(err.contains("is an image index"), "{err}");
}

#[test]
fn a_signature_manifest_with_hundreds_of_layers_is_refused() {
    let f = fixture();
    let payload = Payload::new("company/app", &f.digest).to_bytes();
    let layers = vec![signed(&payload, &key(1)); 300];
    store_raw(&f, &layers);
    let err = refusal(&f, &[trusted(1)]);
    assert!(err.contains("has 300 layers: expected at most 64"), "{err}");
}

#[test]
fn signatures_are_copied_with_their_blobs_and_still_verify() {
    let f = fixture();
    block_on(sign(
        &f.store,
        &f.image,
        &f.digest,
        "localhost:5000/company/app",
        &key(1),
    ))
    .unwrap();
    let dest = fixture();
    let n = block_on(copy(
        (&f.store, &f.image),
        (&dest.store, &dest.image),
        &f.digest,
    ))
    .unwrap();
    assert_eq!(n, 1);
    let dest_subject = Subject {
        digest: &f.digest,
        repository: "company/app",
    };
    let signer = block_on(verify(
        &dest.store,
        &dest.image,
        &dest_subject,
        &[trusted(1)],
    ))
    .unwrap();
    assert_eq!(signer.key, "key1.pub");
}
