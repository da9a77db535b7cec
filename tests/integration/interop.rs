//! Interop both ways (docs/design.md §3, §9): independent clients read what `release create`
//! pushes — skopeo gets exactly our manifest bytes and copies the image with its digest — and
//! an image made by PyPI's oras SDK from the format description alone is read and verified.

use serde_json::Value;

use crate::support::setup::{
    COMMIT_A, COMMIT_B, REVISION, Setup, fixture_manifests, sha256, stdout_json,
};
use crate::support::{self, Cmd, Mode, python, skopeo};

#[test]
fn skopeo_inspect_raw_returns_exactly_the_manifest_bytes_create_pushed() {
    for mode in [Mode::Plain, Mode::Tls] {
        let setup = Setup::start(mode);
        let created = setup.create(COMMIT_A, &fixture_manifests());
        let mut args = vec!["inspect".to_owned(), "--raw".to_owned()];
        args.extend(setup.registry.skopeo_flags());
        args.push(format!("docker://{}", created.tagged()));
        let out = skopeo(&args);
        out.assert_success();
        assert_eq!(sha256(&out.stdout), created.digest, "{out}");
        let manifest: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(manifest["annotations"][REVISION], COMMIT_A, "{out}");
        assert_eq!(
            manifest["config"]["mediaType"],
            "application/vnd.releasectl.release.config.v1+json"
        );
    }
}

#[test]
fn skopeo_copy_preserving_digests_gives_a_layout_that_releasectl_verifies() {
    let setup = Setup::plain();
    let created = setup.create(COMMIT_A, &fixture_manifests());
    let layout = support::temp_dir();
    let dir = layout.path().join("by-skopeo");
    let out = skopeo([
        "copy",
        "--preserve-digests",
        "--src-tls-verify=false",
        &format!("docker://{}", created.tagged()),
        &format!("oci:{}:{COMMIT_A}", dir.display()),
    ]);
    out.assert_success();
    let target = format!("oci:{}:{COMMIT_A}", dir.display());
    let out = Cmd::releasectl()
        .args(["verify", "-o", "json", &target])
        .run();
    out.assert_success();
    let doc = stdout_json(&out);
    assert_eq!(doc["digest"], created.digest.as_str(), "{out}");
    assert_eq!(doc["verified"], true, "{out}");
    let out = Cmd::releasectl()
        .args(["inspect", "-o", "json", &target])
        .run();
    out.assert_success();
    assert_eq!(
        stdout_json(&out)["metadata"]["release"]["commit"],
        COMMIT_A,
        "{out}"
    );
}

/// Runs `tests/fixtures_py/oras_push_release.py`; returns the digest oras pushed.
fn oras_push(setup: &Setup, repository: &str, project: &str, commit: &str) -> String {
    let work = support::temp_dir();
    let script = support::manifest_dir().join("tests/fixtures_py/oras_push_release.py");
    let out = Cmd::new(python())
        .arg(&script)
        .args([&setup.host(), repository, project, commit])
        .arg(work.path())
        .run();
    out.assert_success();
    let digest = out.stdout_str().trim().to_owned();
    assert!(digest.starts_with("sha256:"), "{out}");
    digest
}

#[test]
fn release_built_with_the_oras_python_sdk_is_inspected_and_verified() {
    let setup = Setup::plain();
    let digest = oras_push(&setup, "shop/platform", "web", COMMIT_B);
    let image = setup.image("shop/platform/web", COMMIT_B);
    let bytes = setup.get_manifest("shop/platform/web", COMMIT_B);
    assert_eq!(sha256(&bytes), digest);

    let out = setup.releasectl().args(["verify", &image]).run();
    out.assert_success().assert_stdout_contains("verified");
    let out = setup
        .releasectl()
        .args(["verify", &format!("{image}@{digest}")])
        .run();
    out.assert_success();

    let out = setup.releasectl().args(["inspect", &image]).run();
    out.assert_success()
        .assert_stdout_contains(&format!("shop/platform/web @ {COMMIT_B}"))
        .assert_stdout_contains("Deployment")
        .assert_stdout_contains("Namespace");
    let (out, doc) = setup.inspect_json(&image);
    assert_eq!(doc["digest"], digest.as_str(), "{out}");
    assert_eq!(doc["verified"], true, "{out}");
    assert_eq!(
        doc["metadata"]["resources"]["objects"]
            .as_array()
            .map(Vec::len),
        Some(3)
    );
    assert_eq!(
        doc["metadata"]["trigger"]["triggered_by"], "oras-test",
        "{out}"
    );

    // And it travels like one of ours: copied to a layout with its digest and its extra layer.
    let layout = support::temp_dir();
    let dst = format!("oci:{}", layout.path().join("web").display());
    let out = setup.releasectl().args(["copy", &image, &dst]).run();
    out.assert_success()
        .assert_stdout_contains(&format!("@{digest}"));
    let out = Cmd::releasectl()
        .args(["verify", &format!("{dst}:{COMMIT_B}")])
        .run();
    out.assert_success();
    let manifest: Value = serde_json::from_slice(&bytes).unwrap();
    for layer in manifest["layers"].as_array().unwrap() {
        let hex = layer["digest"]
            .as_str()
            .unwrap()
            .trim_start_matches("sha256:");
        assert!(
            layout.path().join("web/blobs/sha256").join(hex).is_file(),
            "layer {layer} was not copied"
        );
    }
}

#[test]
fn oras_image_tagged_under_another_commit_is_refused_by_verify() {
    let setup = Setup::plain();
    // Pushed as COMMIT_B's release, but under the tag COMMIT_A: the tag moved.
    let digest = oras_push(&setup, "shop/platform", "web", COMMIT_B);
    let bytes = setup.get_manifest("shop/platform/web", &digest);
    setup.put_manifest(
        "shop/platform/web",
        COMMIT_A,
        crate::support::setup::MANIFEST_MEDIA_TYPE,
        &bytes,
    );
    let out = setup
        .releasectl()
        .args(["verify", &setup.image("shop/platform/web", COMMIT_A)])
        .run();
    crate::support::setup::assert_fails(&out, 3, &[COMMIT_A, COMMIT_B]);
}
