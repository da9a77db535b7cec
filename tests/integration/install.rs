//! The install files for Argo CD users: the argo-helm values file (checked against the chart's
//! rendering rules, since `helm` is not available here: `configs.cmp.plugins.<name>` becomes the
//! `<name>.yaml` key of `argocd-cmp-cm`, holding a ConfigManagementPlugin named `<name>` whose
//! spec is the value), its equivalence with the kustomize patch, and the Argo CD cost settings
//! (no `discover`, `manifest-generate-paths` on the ApplicationSet).

use std::path::PathBuf;

use serde_json::{Value, json};

use crate::support;

const VALUES: &str = "manifests/helm/values-releasectl.yaml";
/// Volumes the argo-cd chart's repo-server Deployment defines itself (the sidecar mounts two).
const CHART_VOLUMES: [&str; 2] = ["var-files", "plugins"];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The single YAML document in the repository file `rel`.
fn load(rel: &str) -> Value {
    let bytes = std::fs::read(root().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"));
    let mut docs = releasectl::yaml::documents(&bytes).unwrap_or_else(|e| panic!("{rel}: {e}"));
    assert_eq!(docs.len(), 1, "{rel} must hold one document");
    docs.remove(0)
}

/// The container named `name` in `containers`.
fn container<'a>(containers: &'a Value, name: &str) -> &'a Value {
    containers
        .as_array()
        .expect("a container list")
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no container {name}"))
}

/// The releasectl sidecar as the Helm values declare it.
fn helm_sidecar(values: &Value) -> &Value {
    container(&values["repoServer"]["extraContainers"], "releasectl")
}

/// The releasectl sidecar as the kustomize patch declares it.
fn patch_sidecar(patch: &Value) -> &Value {
    container(
        &patch["spec"]["template"]["spec"]["containers"],
        "releasectl",
    )
}

/// The entries of the list `key` of `object`.
fn entries<'a>(object: &'a Value, key: &str) -> std::slice::Iter<'a, Value> {
    object[key]
        .as_array()
        .unwrap_or_else(|| panic!("no list {key} in {object}"))
        .iter()
}

fn mount_at<'a>(sidecar: &'a Value, path: &str) -> &'a Value {
    entries(sidecar, "volumeMounts")
        .find(|m| m["mountPath"] == path)
        .unwrap_or_else(|| panic!("no mount at {path}"))
}

fn mount_paths(sidecar: &Value) -> Vec<String> {
    let mut paths: Vec<String> = entries(sidecar, "volumeMounts")
        .map(|m| m["mountPath"].as_str().expect("mountPath").to_owned())
        .collect();
    paths.sort();
    paths
}

fn env_value<'a>(sidecar: &'a Value, name: &str) -> &'a str {
    entries(sidecar, "env")
        .find(|e| e["name"] == name)
        .and_then(|e| e["value"].as_str())
        .unwrap_or_else(|| panic!("no env {name} with a value"))
}

/// The `repoServer.volumes` entry named `name`.
fn helm_volume<'a>(values: &'a Value, name: &str) -> &'a Value {
    values["repoServer"]["volumes"]
        .as_array()
        .expect("repoServer.volumes")
        .iter()
        .find(|v| v["name"] == name)
        .unwrap_or_else(|| panic!("repoServer.volumes has no {name}"))
}

#[test]
fn the_helm_chart_renders_the_same_plugin_document_as_plugin_yaml() {
    let values = load(VALUES);
    let cmp = &values["configs"]["cmp"];
    assert_eq!(cmp["create"], true, "argocd-cmp-cm must be created");
    let plugins = cmp["plugins"].as_object().expect("configs.cmp.plugins");
    assert_eq!(
        plugins.keys().collect::<Vec<_>>(),
        ["releasectl"],
        "one plugin, named as Applications name it"
    );
    // What charts/argo-cd/templates/argocd-configs/argocd-cmp-cm.yaml writes under
    // `releasectl.yaml`.
    let rendered = json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "ConfigManagementPlugin",
        "metadata": {"name": "releasectl"},
        "spec": plugins["releasectl"],
    });
    assert_eq!(rendered, load("plugin/plugin.yaml"));
}

#[test]
fn the_helm_sidecar_runs_the_cmp_server_as_uid_999_with_the_plugin_socket_and_config() {
    let values = load(VALUES);
    let sidecar = helm_sidecar(&values);
    assert_eq!(
        sidecar["command"],
        json!(["/var/run/argocd/argocd-cmp-server"])
    );
    assert_eq!(sidecar["securityContext"]["runAsUser"], 999);
    assert_eq!(sidecar["securityContext"]["runAsNonRoot"], true);
    assert_eq!(mount_at(sidecar, "/var/run/argocd")["name"], "var-files");
    assert_eq!(
        mount_at(sidecar, "/home/argocd/cmp-server/plugins")["name"],
        "plugins"
    );
    let config = mount_at(sidecar, "/home/argocd/cmp-server/config/plugin.yaml");
    assert_eq!(
        config["subPath"], "releasectl.yaml",
        "the chart's key for plugin releasectl"
    );
    let volume = helm_volume(&values, config["name"].as_str().expect("volume name"));
    assert_eq!(volume["configMap"]["name"], "argocd-cmp-cm");
}

#[test]
fn the_helm_sidecar_has_its_own_tmp_and_a_cache_dir_that_releasectl_is_told_about() {
    let values = load(VALUES);
    let sidecar = helm_sidecar(&values);
    let tmp = mount_at(sidecar, "/tmp")["name"].as_str().expect("name");
    assert_ne!(tmp, "tmp", "never the repo-server's own tmp volume");
    assert_eq!(helm_volume(&values, tmp)["emptyDir"], json!({}));
    let cache_dir = env_value(sidecar, "RELEASECTL_CACHE_DIR");
    let cache = mount_at(sidecar, cache_dir)["name"].as_str().expect("name");
    assert_eq!(helm_volume(&values, cache)["emptyDir"], json!({}));
    let docker = env_value(sidecar, "DOCKER_CONFIG");
    let creds = mount_at(sidecar, docker)["name"].as_str().expect("name");
    assert_eq!(
        helm_volume(&values, creds)["secret"]["optional"],
        true,
        "the sidecar must start without registry credentials"
    );
}

#[test]
fn every_volume_the_helm_sidecar_mounts_exists_exactly_once_in_the_pod() {
    let values = load(VALUES);
    let defined: Vec<&str> = values["repoServer"]["volumes"]
        .as_array()
        .expect("repoServer.volumes")
        .iter()
        .map(|v| v["name"].as_str().expect("volume name"))
        .collect();
    for name in &defined {
        assert!(
            !CHART_VOLUMES.contains(name),
            "{name} is the chart's own volume: defining it again makes an invalid pod"
        );
        assert_eq!(
            defined.iter().filter(|n| *n == name).count(),
            1,
            "{name} twice"
        );
    }
    for mount in helm_sidecar(&values)["volumeMounts"]
        .as_array()
        .expect("volumeMounts")
    {
        let name = mount["name"].as_str().expect("name");
        assert!(
            defined.contains(&name) || CHART_VOLUMES.contains(&name),
            "mount of {name}, a volume nobody defines"
        );
    }
}

#[test]
fn the_helm_sidecar_and_its_volumes_form_a_valid_kubernetes_pod() {
    let values = load(VALUES);
    let mut volumes = values["repoServer"]["volumes"].clone();
    for name in CHART_VOLUMES {
        volumes
            .as_array_mut()
            .expect("volumes")
            .push(json!({"name": name, "emptyDir": {}}));
    }
    let pod = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "argocd-repo-server"},
        "spec": {"containers": [helm_sidecar(&values)], "volumes": volumes},
    });
    let dir = support::temp_dir();
    let file = dir.path().join("pod.json");
    std::fs::write(&file, pod.to_string()).expect("write pod");
    support::kubernetes_validate()
        .args(["--strict", "--no-warn"])
        .arg(&file)
        .run()
        .assert_success();
}

#[test]
fn the_helm_sidecar_matches_the_kustomize_patch() {
    let values = load(VALUES);
    let patch = load("manifests/repo-server-patch.yaml");
    let (helm, kustomize) = (helm_sidecar(&values), patch_sidecar(&patch));
    for key in ["image", "command", "securityContext", "resources"] {
        assert_eq!(helm[key], kustomize[key], "{key} differs");
    }
    assert_eq!(mount_paths(helm), mount_paths(kustomize));
    for e in kustomize["env"].as_array().expect("env") {
        let name = e["name"].as_str().expect("name");
        assert_eq!(
            env_value(helm, name),
            e["value"].as_str().expect("value"),
            "{name}"
        );
    }
    // The patch's settings ConfigMap (kustomization.yaml) has no Helm counterpart: its keys
    // are plain env entries in the values file.
    assert!(!env_value(helm, "RELEASECTL_REGISTRY").is_empty());
}

#[test]
fn no_copy_of_the_plugin_config_turns_discovery_on() {
    let values = load(VALUES);
    for (file, spec) in [
        (
            "plugin/plugin.yaml",
            load("plugin/plugin.yaml")["spec"].clone(),
        ),
        (
            "manifests/plugin.yaml",
            load("manifests/plugin.yaml")["spec"].clone(),
        ),
        (
            VALUES,
            values["configs"]["cmp"]["plugins"]["releasectl"].clone(),
        ),
    ] {
        assert!(spec.is_object(), "{file}: no plugin spec");
        assert!(
            spec.get("discover").is_none(),
            "{file}: discover streams the repository to the sidecar for every app"
        );
    }
}

#[test]
fn the_example_applicationset_refreshes_an_application_only_for_its_own_directory() {
    let appset = load("manifests/examples/applicationset.yaml");
    assert_eq!(
        appset["spec"]["template"]["metadata"]["annotations"]["argocd.argoproj.io/manifest-generate-paths"],
        "."
    );
}

#[test]
fn the_helm_values_hold_nothing_the_chart_would_template() {
    // The chart passes repoServer.extraContainers through `tpl` (comments do not matter).
    let values = load(VALUES);
    let sidecar = helm_sidecar(&values).to_string();
    assert!(
        !sidecar.contains("{{"),
        "{VALUES}: the sidecar holds a template expression: {sidecar}"
    );
}
