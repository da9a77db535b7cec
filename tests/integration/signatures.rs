//! Release image signatures in cosign's format (issue 17, docs/format.md §10): what releasectl
//! signs verifies with an independent implementation of the cosign spec (fixtures/cosign/
//! cosign.py, Python `cryptography`, plain HTTP), what that implementation signs verifies
//! with releasectl, bad signatures are refused, `generate` enforces trusted keys cold and
//! warm (the warm run with the registry stopped), and `copy` carries signatures.

use std::path::{Path, PathBuf};

use crate::generate_faults::{app_dir, generate};
use crate::support::setup::{
    COMMIT_A, EPOCH, IMAGE_PATH, INDEX_MEDIA_TYPE, Setup, create_args, fixture_manifests,
};
use crate::support::{self, Cmd, Output};

/// `fixtures/cosign/cosign.py ARGS` with the test Python.
fn cosign_py(args: &[&str]) -> Output {
    Cmd::new(support::python())
        .arg(support::manifest_dir().join("fixtures/cosign/cosign.py"))
        .args(args)
        .run()
}

/// A P-256 key pair made by the Python implementation: (`NAME.key`, `NAME.pub`).
pub(crate) fn keygen(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    cosign_py(&["keygen", &dir.display().to_string(), name]).assert_success();
    (
        dir.join(format!("{name}.key")),
        dir.join(format!("{name}.pub")),
    )
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

/// `release create` of the fixture release, signed with `key` when given; its digest.
fn create(setup: &Setup, key: Option<&Path>) -> String {
    let (repository, project) = IMAGE_PATH.rsplit_once('/').unwrap();
    let mut cmd = setup
        .releasectl()
        .args(["--registry", &setup.host(), "-o", "json"])
        .args(create_args(
            repository,
            project,
            COMMIT_A,
            &fixture_manifests(),
        ))
        .env("SOURCE_DATE_EPOCH", EPOCH);
    if let Some(k) = key {
        cmd = cmd.arg("--sign-key").arg(k);
    }
    let out = cmd.run();
    out.assert_success();
    crate::support::setup::stdout_json(&out)["digest"]
        .as_str()
        .expect("digest")
        .to_owned()
}

#[test]
fn a_release_signed_by_release_create_verifies_with_an_independent_cosign_implementation() {
    let setup = Setup::plain();
    let dir = support::temp_dir();
    let (key, public) = keygen(dir.path(), "ci");
    let digest = create(&setup, Some(&key));
    let out = cosign_py(&["verify", &setup.host(), IMAGE_PATH, &digest, &s(&public)]);
    out.assert_success()
        .assert_stdout_contains("verified 1 signature(s)");
    let image = setup.image(IMAGE_PATH, COMMIT_A);
    setup
        .releasectl()
        .args(["verify", &image, "--key", &s(&public)])
        .run()
        .assert_success()
        .assert_stdout_contains("signed by ci.pub (SHA256:");
    // `sign` again with the same key adds nothing (signatures are deterministic).
    setup
        .releasectl()
        .args(["sign", &image, "--key", &s(&key)])
        .run()
        .assert_success()
        .assert_stdout_contains("already signed");
}

#[test]
fn a_signature_made_by_the_independent_implementation_verifies_with_releasectl() {
    let setup = Setup::plain();
    let dir = support::temp_dir();
    let (key, public) = keygen(dir.path(), "python");
    let (_, other) = keygen(dir.path(), "other");
    let digest = create(&setup, None);
    let image = setup.image(IMAGE_PATH, COMMIT_A);
    let unsigned = setup
        .releasectl()
        .args(["verify", &image, "--key", &s(&public)])
        .run();
    unsigned
        .assert_exit(3)
        .assert_stdout_empty()
        .assert_stderr_contains("not signed");
    cosign_py(&["sign", &setup.host(), IMAGE_PATH, &digest, &s(&key)]).assert_success();
    setup
        .releasectl()
        .args(["verify", &image, "--key", &s(&public)])
        .run()
        .assert_success()
        .assert_stdout_contains("signed by python.pub");
    let inspect = setup
        .releasectl()
        .args(["inspect", &image, "--key", &s(&other), "--key", &s(&public)])
        .run();
    inspect
        .assert_success()
        .assert_stdout_contains("Signatures  1\n  signed by python.pub (SHA256:");
    let refused = setup
        .releasectl()
        .args(["verify", &image, "--key", &s(&other)])
        .run();
    refused
        .assert_exit(3)
        .assert_stdout_empty()
        .assert_stderr_contains(&digest)
        .assert_stderr_contains("other.pub (SHA256:")
        .assert_stderr_contains("none of the trusted keys");
}

#[test]
fn signatures_over_another_digest_or_repository_and_an_index_tag_are_refused() {
    let setup = Setup::plain();
    let dir = support::temp_dir();
    let (key, public) = keygen(dir.path(), "python");
    let digest = create(&setup, None);
    let image = setup.image(IMAGE_PATH, COMMIT_A);
    let verify = || {
        setup
            .releasectl()
            .args(["verify", &image, "--key", &s(&public)])
            .run()
    };
    let other = format!("sha256:{}", "ab".repeat(32));
    cosign_py(&[
        "sign",
        &setup.host(),
        IMAGE_PATH,
        &digest,
        &s(&key),
        "--payload-digest",
        &other,
    ])
    .assert_success();
    verify()
        .assert_exit(3)
        .assert_stderr_contains(&format!("it signs {other}: expected {digest}"));
    let foreign = format!("{}/company/monorepo/billing", setup.host());
    cosign_py(&[
        "sign",
        &setup.host(),
        IMAGE_PATH,
        &digest,
        &s(&key),
        "--reference",
        &foreign,
    ])
    .assert_success();
    verify()
        .assert_exit(3)
        .assert_stderr_contains("expected a reference to company/monorepo/auth-service");
    let tag = format!("{}.sig", digest.replace(':', "-"));
    let index = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}"#;
    setup.put_manifest(IMAGE_PATH, &tag, INDEX_MEDIA_TYPE, index);
    verify()
        .assert_exit(3)
        .assert_stdout_empty()
        .assert_stderr_contains("is an image index");
}

#[test]
fn generate_with_trusted_keys_refuses_unsigned_releases_and_runs_warm_without_the_registry() {
    let mut setup = Setup::plain();
    let dir = support::temp_dir();
    let (key, public) = keygen(dir.path(), "ci");
    let (_, rotated) = keygen(dir.path(), "next");
    let digest = create(&setup, None);
    let host = setup.host();
    let app = app_dir(&host, &digest);
    let cache = support::temp_dir();
    let trusted = support::temp_dir();
    std::fs::copy(&public, trusted.path().join("ci.pub")).unwrap();
    let run = |keys: &Path| {
        generate(app.path(), &host)
            .env("RELEASECTL_CACHE_DIR", cache.path())
            .env("RELEASECTL_TRUSTED_KEYS", keys)
            .run()
    };
    let refused = run(trusted.path());
    refused
        .assert_exit(3)
        .assert_stdout_empty()
        .assert_stderr_contains("not signed")
        .assert_stderr_contains("ci.pub (SHA256:")
        .assert_stderr_contains(&digest);
    // Without keys, behaviour is unchanged.
    let plain = generate(app.path(), &host).run();
    plain.assert_success();
    setup
        .releasectl()
        .args([
            "sign",
            &setup.image(IMAGE_PATH, COMMIT_A),
            "--key",
            &s(&key),
        ])
        .run()
        .assert_success()
        .assert_stdout_contains("signed ");
    let cold = run(trusted.path());
    cold.assert_success();
    assert_eq!(cold.stdout, plain.stdout);
    // Rotation: two keys trusted at once.
    std::fs::copy(&rotated, trusted.path().join("next.pub")).unwrap();
    setup.registry.stop();
    let warm = run(trusted.path());
    warm.assert_success();
    assert_eq!(warm.stdout, plain.stdout);
    // The old key retired: the cached verdict no longer counts, and the registry is gone.
    std::fs::remove_file(trusted.path().join("ci.pub")).unwrap();
    let retired = run(trusted.path());
    retired.assert_failure().assert_stdout_empty();
    assert_ne!(retired.code(), Some(0));
}

#[test]
fn copy_carries_signatures_to_a_layout_and_back_to_a_registry() {
    let setup = Setup::plain();
    let dir = support::temp_dir();
    let (key, public) = keygen(dir.path(), "ci");
    let digest = create(&setup, Some(&key));
    let layout = support::temp_dir();
    let oci = format!("oci:{}:{COMMIT_A}", layout.path().display());
    setup
        .releasectl()
        .args(["copy", &setup.image(IMAGE_PATH, COMMIT_A), &oci])
        .run()
        .assert_success();
    setup
        .releasectl()
        .args(["verify", &oci, "--key", &s(&public)])
        .run()
        .assert_success()
        .assert_stdout_contains("signed by ci.pub");
    let back = setup.image("mirror/company/monorepo/auth-service", COMMIT_A);
    setup
        .releasectl()
        .args(["copy", &oci, &back])
        .run()
        .assert_success();
    setup
        .releasectl()
        .args(["verify", &back, "--key", &s(&public)])
        .run()
        .assert_success()
        .assert_stdout_contains("signed by ci.pub");
    // The bytes are unchanged: the Python verifier accepts the original's signature.
    cosign_py(&["verify", &setup.host(), IMAGE_PATH, &digest, &s(&public)]).assert_success();
}
