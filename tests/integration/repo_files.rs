//! The files the repository ships besides the binary: the embedded default fixture (made by
//! a checked-in generator, so it must be exactly what the generator makes), the Argo CD plugin
//! config and the sidecar manifests.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::support::{self, Cmd};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every file under `dir`, relative, with its bytes.
fn tree(dir: &Path) -> Vec<(String, Vec<u8>)> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, Vec<u8>)>) {
        for e in std::fs::read_dir(dir).expect("read_dir") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                let rel = p.strip_prefix(root).expect("prefix").display().to_string();
                out.push((rel, std::fs::read(&p).expect("read")));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// The string `field` of every entry of the list `key` of `object`.
fn strings<'a>(object: &'a Value, key: &str, field: &str) -> Vec<&'a str> {
    object[key]
        .as_array()
        .unwrap_or_else(|| panic!("no list {key} in {object}"))
        .iter()
        .filter_map(|entry| entry[field].as_str())
        .collect()
}

#[test]
fn the_checked_in_fixture_is_exactly_what_its_generator_makes() {
    let out = support::temp_dir();
    Cmd::new("bash")
        .arg(root().join("scripts/make-fixtures.sh"))
        .arg(env!("CARGO_BIN_EXE_releasectl"))
        .arg(out.path())
        .current_dir(root())
        .run()
        .assert_success();
    for sub in ["registry", "gitops"] {
        let made = tree(&out.path().join(sub));
        let shipped = tree(&root().join("fixtures").join(sub));
        let names = |t: &[(String, Vec<u8>)]| t.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
        assert_eq!(
            names(&made),
            names(&shipped),
            "files of fixtures/{sub} differ from a fresh generation"
        );
        for ((name, a), (_, b)) in made.iter().zip(&shipped) {
            assert!(
                a == b,
                "fixtures/{sub}/{name} differs from a fresh generation: rerun scripts/make-fixtures.sh"
            );
        }
    }
}

#[test]
fn the_readme_main_job_prints_the_fixture_release_as_argo_cd_would_receive_it() {
    let out = Cmd::releasectl()
        .args([
            "generate",
            "--pointer",
            "fixtures/gitops/dev/apps/company/monorepo/auth-service/release.yaml",
        ])
        .env("RELEASECTL_REGISTRY", "oci:fixtures/registry")
        .current_dir(root())
        .run();
    out.assert_success();
    let text = out.stdout_str();
    for needle in [
        "kind: Deployment",
        "kind: Service",
        "kind: Namespace",
        "name: auth-service-env",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
    let readme = std::fs::read_to_string(root().join("README.md")).expect("README");
    assert!(
        readme.contains("RELEASECTL_REGISTRY=oci:fixtures/registry cargo run -- generate --pointer fixtures/gitops/dev/apps/company/monorepo/auth-service/release.yaml"),
        "the README's main command is not the one tested here"
    );
}

#[test]
fn the_plugin_config_follows_argo_cds_schema_and_its_kustomize_copy_is_identical() {
    let plugin = std::fs::read(root().join("plugin/plugin.yaml")).expect("plugin.yaml");
    let copy = std::fs::read(root().join("manifests/plugin.yaml")).expect("manifests/plugin.yaml");
    assert!(
        plugin == copy,
        "manifests/plugin.yaml must stay byte-identical to plugin/plugin.yaml"
    );
    let docs = releasectl::yaml::documents(&plugin).expect("plugin.yaml parses");
    let [doc] = docs.as_slice() else {
        panic!("plugin.yaml holds {} documents", docs.len())
    };
    assert_eq!(doc["apiVersion"], "argoproj.io/v1alpha1");
    assert_eq!(doc["kind"], "ConfigManagementPlugin");
    assert_eq!(doc["metadata"]["name"], "releasectl");
    assert_eq!(
        doc["spec"]["generate"]["command"],
        serde_json::json!(["releasectl", "generate"])
    );
    assert!(doc["spec"].get("discover").is_none(), "discover is opt-in");
    // The CMP v2 spec knows these keys only; anything else is silently ignored by Argo CD.
    for key in doc["spec"].as_object().expect("spec").keys() {
        assert!(
            [
                "version",
                "init",
                "generate",
                "discover",
                "parameters",
                "preserveFileMode"
            ]
            .contains(&key.as_str()),
            "unknown spec key {key}"
        );
    }
}

#[test]
fn the_sidecar_patch_runs_the_cmp_server_as_argo_cd_prescribes() {
    let text =
        std::fs::read_to_string(root().join("manifests/repo-server-patch.yaml")).expect("patch");
    let docs = releasectl::yaml::documents(text.as_bytes()).expect("patch parses");
    let deployment = &docs[0];
    assert_eq!(deployment["kind"], "Deployment");
    assert_eq!(deployment["metadata"]["name"], "argocd-repo-server");
    let containers = deployment["spec"]["template"]["spec"]["containers"]
        .as_array()
        .expect("containers");
    let sidecar = containers
        .iter()
        .find(|c| c["name"] == "releasectl")
        .expect("a releasectl container");
    assert_eq!(
        sidecar["command"],
        serde_json::json!(["/var/run/argocd/argocd-cmp-server"])
    );
    assert_eq!(sidecar["securityContext"]["runAsUser"], 999);
    assert_eq!(sidecar["securityContext"]["runAsNonRoot"], true);
    let mounts = strings(sidecar, "volumeMounts", "mountPath");
    for path in [
        "/var/run/argocd",
        "/home/argocd/cmp-server/plugins",
        "/home/argocd/cmp-server/config/plugin.yaml",
        "/tmp",
        "/var/cache/releasectl",
    ] {
        assert!(mounts.contains(&path), "no mount at {path}: {mounts:?}");
    }
    let env = strings(sidecar, "env", "name");
    assert!(
        env.contains(&"RELEASECTL_CACHE_DIR") && env.contains(&"DOCKER_CONFIG"),
        "{env:?}"
    );
}

#[test]
fn the_example_manifests_are_valid_kubernetes_objects() {
    let dir = root().join("manifests/examples");
    let secret = dir.join("registry-credentials.yaml");
    support::kubernetes_validate()
        .args(["--strict", "--no-warn"])
        .arg(&secret)
        .run()
        .assert_success();
    let appset = std::fs::read(dir.join("applicationset.yaml")).expect("applicationset");
    let docs = releasectl::yaml::documents(&appset).expect("parses");
    let a = &docs[0];
    assert_eq!(a["kind"], "ApplicationSet");
    let generators = a["spec"]["generators"].to_string();
    assert!(
        generators.contains("apps/**/release.yaml"),
        "the generator must select every pointer: {generators}"
    );
    assert_eq!(
        a["spec"]["template"]["spec"]["source"]["plugin"]["name"],
        "releasectl"
    );
}
