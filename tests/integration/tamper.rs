//! Tampered images: every byte `verify` reads is checked, so each change behind the product's
//! back — in the registry's own storage directory or through a hand-edited manifest pushed
//! over HTTP — makes it exit 3, print nothing on stdout, and name on stderr what it expected
//! and what it found.

use serde_json::Value;

use crate::support::setup::{
    COMMIT_A, COMMIT_B, IMAGE_PATH, INDEX_MEDIA_TYPE, MANIFEST_MEDIA_TYPE, METADATA_MEDIA_TYPE,
    RESOURCES_MEDIA_TYPE, Setup, assert_fails, fixture_manifests, layer, sha256, write_configmaps,
};

/// A plain registry holding the fixture release at `COMMIT_A`, and its manifest.
fn released() -> (Setup, String, Value) {
    let setup = Setup::plain();
    let created = setup.create(COMMIT_A, &fixture_manifests());
    let manifest: Value =
        serde_json::from_slice(&setup.get_manifest(IMAGE_PATH, &created.digest)).unwrap();
    (setup, created.tagged().to_owned(), manifest)
}

fn verify(setup: &Setup, target: &str) -> crate::support::Output {
    setup.releasectl().args(["verify", target]).run()
}

/// Flips one byte in the middle of a file.
fn flip_byte(path: &std::path::Path) -> Vec<u8> {
    let mut bytes = std::fs::read(path).unwrap();
    let i = bytes.len() / 2;
    bytes[i] ^= 0x01;
    std::fs::write(path, &bytes).unwrap();
    bytes
}

/// The digest of the layer of `manifest` with `media_type`.
fn layer_digest(manifest: &Value, media_type: &str) -> String {
    layer(manifest, media_type)["digest"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[test]
fn flipped_byte_in_the_resources_blob_fails_verify_naming_both_digests() {
    let (setup, tagged, manifest) = released();
    let expected = layer_digest(&manifest, RESOURCES_MEDIA_TYPE);
    let tampered = flip_byte(&setup.registry.blob_path(&expected));
    let actual = sha256(&tampered);
    let out = verify(&setup, &tagged);
    assert_fails(&out, 3, &["resources", &expected, &actual]);
    // inspect refuses the same way: nothing unverified is shown.
    let out = setup.releasectl().args(["inspect", &tagged]).run();
    assert_fails(&out, 3, &[&expected, &actual]);
}

#[test]
fn flipped_byte_in_the_metadata_blob_fails_verify_naming_both_digests() {
    let (setup, tagged, manifest) = released();
    let expected = layer_digest(&manifest, METADATA_MEDIA_TYPE);
    let tampered = flip_byte(&setup.registry.blob_path(&expected));
    let out = verify(&setup, &tagged);
    assert_fails(&out, 3, &["metadata", &expected, &sha256(&tampered)]);
}

#[test]
fn truncated_resources_blob_fails_verify_naming_both_sizes() {
    let (setup, tagged, manifest) = released();
    let resources = layer(&manifest, RESOURCES_MEDIA_TYPE);
    let size = resources["size"].as_u64().unwrap();
    let path = setup
        .registry
        .blob_path(resources["digest"].as_str().unwrap());
    let bytes = std::fs::read(&path).unwrap();
    let kept = bytes.len() / 2;
    std::fs::write(&path, &bytes[..kept]).unwrap();
    let out = verify(&setup, &tagged);
    assert_fails(
        &out,
        3,
        &[
            "resources",
            "truncated",
            &size.to_string(),
            &kept.to_string(),
        ],
    );
}

/// Pushes `manifest` (re-serialised) under `tag`; returns its digest.
fn push_manifest(setup: &Setup, tag: &str, manifest: &Value) -> String {
    setup.put_manifest(
        IMAGE_PATH,
        tag,
        MANIFEST_MEDIA_TYPE,
        &serde_json::to_vec(manifest).unwrap(),
    )
}

/// The index (within `manifest["layers"]`) of the layer with `media_type`.
fn layer_index(manifest: &Value, media_type: &str) -> usize {
    manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .position(|l| l["mediaType"] == media_type)
        .unwrap()
}

/// `verify` of a release whose manifest's descriptor of the `media_type` layer claims its size
/// plus `delta`; returns the output, the true size and the claimed one.
fn verify_with_layer_size_off(
    media_type: &str,
    delta: i64,
) -> (crate::support::Output, String, String) {
    let (setup, tagged, mut manifest) = released();
    let i = layer_index(&manifest, media_type);
    let size = manifest["layers"][i]["size"].as_u64().unwrap();
    let claimed = size.checked_add_signed(delta).unwrap();
    manifest["layers"][i]["size"] = claimed.into();
    push_manifest(&setup, COMMIT_A, &manifest);
    (
        verify(&setup, &tagged),
        size.to_string(),
        claimed.to_string(),
    )
}

#[test]
fn descriptor_sizes_off_by_one_fail_verify_naming_the_sizes() {
    // (layer, its name in the message, size error, whether the message names the true size)
    let cases = [
        (METADATA_MEDIA_TYPE, "metadata", 1, true),
        (METADATA_MEDIA_TYPE, "metadata", -1, false),
        (RESOURCES_MEDIA_TYPE, "resources", 1, true),
    ];
    crate::support::each_case(&cases, |&(media_type, name, delta, names_size)| {
        let (out, size, claimed) = verify_with_layer_size_off(media_type, delta);
        let mut needles = vec![name, &claimed];
        if names_size {
            needles.push(&size);
        }
        assert_fails(&out, 3, &needles);
    });
}

#[test]
fn moved_tag_naming_another_commit_fails_verify_naming_both_commits() {
    let (setup, tagged, _) = released();
    let other = write_configmaps(&["other"]);
    let second = setup.create(COMMIT_B, other.path());
    // The second release's manifest, moved under the first release's commit tag.
    let bytes = setup.get_manifest(IMAGE_PATH, &second.digest);
    setup.put_manifest(IMAGE_PATH, COMMIT_A, MANIFEST_MEDIA_TYPE, &bytes);
    let out = verify(&setup, &tagged);
    assert_fails(&out, 3, &["revision", COMMIT_A, COMMIT_B]);
}

#[test]
fn image_index_served_instead_of_a_manifest_fails_verify() {
    let (setup, tagged, _) = released();
    let bytes = setup.get_manifest(IMAGE_PATH, COMMIT_A);
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": INDEX_MEDIA_TYPE,
        "manifests": [{
            "mediaType": MANIFEST_MEDIA_TYPE,
            "digest": sha256(&bytes),
            "size": bytes.len(),
            "platform": {"architecture": "amd64", "os": "linux"},
        }],
    });
    setup.put_manifest(
        IMAGE_PATH,
        COMMIT_A,
        INDEX_MEDIA_TYPE,
        &serde_json::to_vec(&index).unwrap(),
    );
    let out = verify(&setup, &tagged);
    assert_fails(&out, 3, &["image index", "not a release image manifest"]);
}

#[test]
fn metadata_naming_another_resources_digest_fails_verify_naming_both_digests() {
    let (setup, tagged, mut manifest) = released();
    // Another release's resources layer: a real digest, just not this image's.
    let other = write_configmaps(&["other"]);
    let second = setup.create(COMMIT_B, other.path());
    let second_manifest: Value =
        serde_json::from_slice(&setup.get_manifest(IMAGE_PATH, &second.digest)).unwrap();
    let foreign = layer_digest(&second_manifest, RESOURCES_MEDIA_TYPE);

    // A consistent image: every descriptor names the blob's true digest and size; only the
    // metadata's record of the resources layer lies.
    let i = layer_index(&manifest, METADATA_MEDIA_TYPE);
    let metadata_digest = manifest["layers"][i]["digest"].as_str().unwrap().to_owned();
    let mut metadata: Value =
        serde_json::from_slice(&setup.get_blob(IMAGE_PATH, &metadata_digest)).unwrap();
    let own = metadata["resources"]["layer_digest"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(own, foreign);
    metadata["resources"]["layer_digest"] = foreign.clone().into();
    let bytes = serde_json::to_vec(&metadata).unwrap();
    let digest = setup.push_blob(IMAGE_PATH, &bytes);
    manifest["layers"][i]["digest"] = digest.into();
    manifest["layers"][i]["size"] = bytes.len().into();
    push_manifest(&setup, COMMIT_A, &manifest);

    let out = verify(&setup, &tagged);
    assert_fails(&out, 3, &["resources.layer_digest", &own, &foreign]);
}

#[test]
fn edited_manifest_in_storage_fails_a_pinned_verify_naming_both_digests() {
    let (setup, tagged, _) = released();
    let digest = sha256(&setup.get_manifest(IMAGE_PATH, COMMIT_A));
    // Still valid JSON (Distribution parses a manifest before serving it), different bytes.
    let path = setup.registry.blob_path(&digest);
    let text = std::fs::read_to_string(&path).unwrap();
    let edited = text.replacen("2023-11-14T22:13:20Z", "2023-11-14T22:13:21Z", 1);
    assert_ne!(text, edited);
    std::fs::write(&path, &edited).unwrap();
    let out = verify(&setup, &format!("{tagged}@{digest}"));
    assert_fails(&out, 3, &["manifest", &digest, &sha256(edited.as_bytes())]);
}

#[test]
fn copy_of_a_tampered_image_fails_and_writes_nothing_to_the_destination() {
    let (setup, tagged, manifest) = released();
    let resources = layer_digest(&manifest, RESOURCES_MEDIA_TYPE);
    flip_byte(&setup.registry.blob_path(&resources));

    let layout = crate::support::temp_dir();
    let dir = layout.path().join("copy");
    let out = setup
        .releasectl()
        .args(["copy", &tagged])
        .arg(format!("oci:{}", dir.display()))
        .run();
    assert_fails(&out, 3, &[&resources]);
    assert!(!dir.join("index.json").exists(), "a tag was written\n{out}");

    let out = setup
        .releasectl()
        .args([
            "copy",
            &tagged,
            &setup.image("company/copies/auth-service", COMMIT_A),
        ])
        .run();
    assert_fails(&out, 3, &[&resources]);
    assert_eq!(
        setup.catalog(),
        [IMAGE_PATH],
        "the copy pushed something\n{out}"
    );
}
