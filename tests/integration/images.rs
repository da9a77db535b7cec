//! Release images through a real registry (Distribution 2.8) in each of its modes: create,
//! inspect (text and JSON), verify, and copy registry → OCI layout → another repository, with
//! the manifest digest preserved at every step. And reproducibility: same inputs and
//! `SOURCE_DATE_EPOCH`, same digest.

use serde_json::Value;

use crate::support::setup::{
    COMMIT_A, Creds, EPOCH, EPOCH_RFC3339, IMAGE_PATH, PROJECT, REPOSITORY, REVISION, Setup,
    fixture_create_args, fixture_manifests, stdout_json,
};
use crate::support::{self, Cmd, Mode};

/// Everything a release goes through, against one registry.
fn round_trip(setup: &Setup) {
    let created = setup.create(COMMIT_A, &fixture_manifests());
    assert_eq!(
        created.reference,
        format!("{}@{}", setup.image(IMAGE_PATH, COMMIT_A), created.digest),
        "{}",
        created.output
    );
    assert_eq!(created.json["objects"], 4, "{}", created.output);
    assert_eq!(created.json["number"], Value::Null, "{}", created.output);
    assert_eq!(created.json["commit"], COMMIT_A, "{}", created.output);
    let tagged = created.tagged();

    // inspect, text: a summary with every digest marked verified.
    let out = setup.releasectl().args(["inspect", tagged]).run();
    out.assert_success()
        .assert_stdout_contains(&format!("{REPOSITORY}/{PROJECT} @ {COMMIT_A}"))
        .assert_stdout_contains("(not registered)")
        .assert_stdout_contains(EPOCH_RFC3339)
        .assert_stdout_contains(&format!("Manifest    {}", created.digest))
        .assert_stdout_contains("Deployment")
        .assert_stdout_contains("auth-service-config");
    let text = out.stdout_str();
    assert_eq!(
        text.matches("verified").count(),
        4,
        "manifest, config, metadata and resources each verified\n{out}"
    );

    // inspect, JSON: the same facts for scripts.
    let (out, doc) = setup.inspect_json(tagged);
    assert_eq!(doc["digest"], created.digest.as_str(), "{out}");
    assert_eq!(doc["verified"], true, "{out}");
    assert_eq!(doc["manifest"]["digest"], created.digest.as_str(), "{out}");
    for blob in ["manifest", "config", "metadata_blob", "resources_blob"] {
        assert_eq!(doc[blob]["verified"], true, "{blob}: {out}");
    }
    assert_eq!(doc["annotations"][REVISION], COMMIT_A, "{out}");
    let meta = &doc["metadata"];
    assert_eq!(meta["format_version"], 1, "{out}");
    assert_eq!(meta["release"]["repository"], REPOSITORY, "{out}");
    assert_eq!(meta["release"]["project"], PROJECT, "{out}");
    assert_eq!(meta["release"]["commit"], COMMIT_A, "{out}");
    assert_eq!(meta["release"]["number"], Value::Null, "{out}");
    assert_eq!(meta["release"]["created_at"], EPOCH_RFC3339, "{out}");
    assert_eq!(
        meta["resources"]["layer_digest"], doc["resources_blob"]["digest"],
        "{out}"
    );
    let mut objects: Vec<String> = meta["resources"]["objects"]
        .as_array()
        .unwrap_or_else(|| out.fail("no metadata.resources.objects"))
        .iter()
        .map(|o| {
            format!(
                "{}/{}",
                o["kind"].as_str().unwrap(),
                o["name"].as_str().unwrap()
            )
        })
        .collect();
    objects.sort();
    assert_eq!(
        objects,
        [
            "ConfigMap/auth-service-config",
            "Deployment/auth-service",
            "Namespace/auth",
            "Service/auth-service",
        ],
        "{out}"
    );

    // verify: exit 0, by tag and by the pinned reference.
    for target in [tagged, created.reference.as_str()] {
        let out = setup.releasectl().args(["verify", target]).run();
        out.assert_success().assert_stdout_contains("verified");
    }

    // copy registry → OCI layout → another repository: the digest survives both hops.
    let layout = support::temp_dir();
    let layout_ref = format!("oci:{}", layout.path().join("release").display());
    let out = setup.releasectl().args(["copy", tagged, &layout_ref]).run();
    out.assert_success()
        .assert_stdout_contains(&format!("{layout_ref}:{COMMIT_A}@{}", created.digest));
    let index: Value = serde_json::from_slice(
        &std::fs::read(layout.path().join("release/index.json")).expect("index.json"),
    )
    .expect("index.json is JSON");
    let entry = &index["manifests"][0];
    assert_eq!(entry["digest"], created.digest.as_str(), "{index}");
    assert_eq!(
        entry["annotations"]["org.opencontainers.image.ref.name"], COMMIT_A,
        "{index}"
    );
    let in_layout = format!("{layout_ref}:{COMMIT_A}");
    let out = setup
        .releasectl()
        .args(["verify", "-o", "json", &in_layout])
        .run();
    out.assert_success();
    assert_eq!(
        stdout_json(&out)["digest"],
        created.digest.as_str(),
        "{out}"
    );

    let copies = setup.image("company/copies/auth-service", COMMIT_A);
    let out = setup.releasectl().args(["copy", &in_layout, &copies]).run();
    out.assert_success()
        .assert_stdout_contains(&format!("{copies}@{}", created.digest));
    let (out, doc) = setup.inspect_json(&copies);
    assert_eq!(doc["digest"], created.digest.as_str(), "{out}");
    assert_eq!(doc["metadata"]["release"]["commit"], COMMIT_A, "{out}");
}

#[test]
fn release_round_trips_through_a_plain_http_registry_with_its_digest_preserved() {
    round_trip(&Setup::plain());
}

#[test]
fn release_round_trips_through_a_basic_auth_registry_with_credentials_from_auths() {
    round_trip(&Setup::start_with(
        Mode::basic("alice", "s3cret"),
        Creds::Auths,
    ));
}

/// [`round_trip`] through a basic-auth registry whose credentials come from the docker
/// config's `creds` program (`name`), asserting that it was asked for the host.
fn round_trip_asking(creds: Creds, name: &str) {
    let setup = Setup::start_with(Mode::basic("alice", "s3cret"), creds);
    round_trip(&setup);
    let calls = setup.docker.helper_calls();
    let expected = format!("{name} get {}", setup.host());
    assert!(
        calls.contains(&expected),
        "{name} was never asked for {}: {calls:?}",
        setup.host()
    );
}

#[test]
fn release_round_trips_through_a_basic_auth_registry_with_a_cred_helper() {
    round_trip_asking(Creds::Helper, "testhelper");
}

#[test]
fn release_round_trips_through_a_basic_auth_registry_with_a_creds_store() {
    round_trip_asking(Creds::Store, "teststore");
}

#[test]
fn release_round_trips_through_a_tls_registry_trusting_the_ca_file() {
    round_trip(&Setup::start(Mode::Tls));
}

#[test]
fn release_round_trips_through_a_tls_registry_with_basic_auth() {
    round_trip(&Setup::start(Mode::tls_basic("bob", "pw-tls")));
}

/// `release create` into a layout root (`--registry oci:DIR`) with the given epoch.
fn create_in_layout(root: &std::path::Path, epoch: &str) -> String {
    let out = Cmd::releasectl()
        .arg("--registry")
        .arg(format!("oci:{}", root.display()))
        .args(fixture_create_args())
        .env("SOURCE_DATE_EPOCH", epoch)
        .run();
    out.assert_success();
    let printed = out.stdout_str();
    let Some((_, digest)) = printed.trim().rsplit_once('@') else {
        out.fail("no @digest in the printed reference")
    };
    let digest = digest.to_owned();
    assert!(
        printed.starts_with(&format!(
            "oci:{}/{IMAGE_PATH}:{COMMIT_A}@sha256:",
            root.display()
        )),
        "{out}"
    );
    digest
}

#[test]
fn same_inputs_and_source_date_epoch_give_the_same_digest_in_two_layouts() {
    let (one, two) = (support::temp_dir(), support::temp_dir());
    let first = create_in_layout(one.path(), EPOCH);
    let second = create_in_layout(two.path(), EPOCH);
    assert_eq!(first, second);
    // Byte for byte: the same blobs under the same names.
    let blobs = |root: &std::path::Path| {
        let mut names: Vec<String> = std::fs::read_dir(root.join(IMAGE_PATH).join("blobs/sha256"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    assert_eq!(blobs(one.path()), blobs(two.path()));
}

#[test]
fn a_different_source_date_epoch_gives_a_different_digest() {
    let (one, two) = (support::temp_dir(), support::temp_dir());
    let first = create_in_layout(one.path(), EPOCH);
    let second = create_in_layout(two.path(), "1700000001");
    assert_ne!(first, second);
}

#[test]
fn the_same_release_pushed_to_a_registry_and_a_layout_has_one_digest() {
    let setup = Setup::plain();
    let created = setup.create(COMMIT_A, &fixture_manifests());
    let root = support::temp_dir();
    assert_eq!(create_in_layout(root.path(), EPOCH), created.digest);
}
