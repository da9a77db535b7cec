//! `releasectl generate --parameters`, the plugin's `parameters.dynamic` command: the Argo CD
//! parameter announcement of the verified release, and nothing that changes what `generate`
//! prints.

use serde_json::Value;

use crate::support::cmp::{CmpRun, app_dir};
use crate::support::image::{COMMIT, Image, ImageBuilder, Pointer};
use crate::support::{self, Output};

fn run(image: &Image, parameters: bool) -> Output {
    let root = support::temp_dir();
    image.write_layout(root.path());
    let app = app_dir(&[("release.yaml", &Pointer::to(image).yaml())]);
    let mut run = CmpRun::new(app.path()).env(
        "RELEASECTL_REGISTRY",
        format!("oci:{}", root.path().display()),
    );
    if parameters {
        run = run.arg("--parameters");
    }
    run.run()
}

#[test]
fn generate_parameters_announces_the_verified_release_as_one_map() {
    let image = ImageBuilder::new().build();
    let out = run(&image, true);
    out.assert_success();
    let json: Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| out.fail(&e.to_string()));
    let [param] = json.as_array().map(Vec::as_slice).unwrap_or_default() else {
        out.fail("expected one parameter");
    };
    assert_eq!(param["name"], "release");
    assert_eq!(param["title"], "Release");
    assert_eq!(param["collectionType"], "map");
    let map = &param["map"];
    assert_eq!(map["commit"], COMMIT);
    assert_eq!(map["digest"], image.manifest_digest.as_str());
    assert_eq!(map["aliases"], "v1.0.0");
    assert_eq!(map["repository"], "company/monorepo");
    assert_eq!(map["project"], "auth-service");
    assert!(map["number"].is_string(), "{map}");
    // And generate itself prints the manifests, as always.
    let manifests = run(&image, false);
    manifests.assert_success();
    assert!(
        manifests.stdout_str().contains("kind: Service"),
        "{manifests}"
    );
}

#[test]
fn generate_parameters_verifies_the_release_like_generate() {
    let image = ImageBuilder::new()
        .edit_manifest(|m| m["config"]["mediaType"] = "application/evil".into())
        .build();
    let out = run(&image, true);
    out.assert_exit(3).assert_stdout_empty();
}
