//! `env.yaml` holds the environment's values, appended after the release: it may not replace
//! a release object (same group, kind, namespace and name: Argo CD keeps the last duplicate),
//! and it may only hold the kinds `RELEASECTL_ENV_KINDS` allows (default ConfigMap and
//! Crossplane's EnvironmentConfig).

use crate::support::Output;
use crate::support::cmp::{CmpRun, app_dir};
use crate::support::image::{CONFIGMAP_YAML, ImageBuilder, Pointer};
use crate::support::{self};

/// Generates the default test image (a ConfigMap `shop/settings`, a Service `shop/web`) with
/// `env` as the environment's objects.
fn generate_with_env(env: &str, vars: &[(&str, &str)]) -> Output {
    let image = ImageBuilder::new().build();
    let root = support::temp_dir();
    image.write_layout(root.path());
    let app = app_dir(&[
        ("release.yaml", &Pointer::to(&image).yaml()),
        ("env.yaml", env),
    ]);
    let mut run = CmpRun::new(app.path()).env(
        "RELEASECTL_REGISTRY",
        format!("oci:{}", root.path().display()),
    );
    for (k, v) in vars {
        run = run.env(k, v);
    }
    run.run()
}

#[track_caller]
fn assert_refused(out: &Output, code: i32, needles: &[&str]) {
    out.assert_exit(code).assert_stdout_empty();
    let err = out.stderr_str();
    assert_eq!(err.trim_end().lines().count(), 1, "{out}");
    for n in needles {
        assert!(err.contains(n), "expected {n:?} in stderr: {out}");
    }
}

const DEPLOYMENT: &str = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  namespace: shop\nspec:\n  template:\n    spec:\n      containers:\n      - name: web\n        image: attacker.example/evil:latest\n";

#[test]
fn generate_refuses_an_env_object_that_would_replace_a_release_object() {
    let out = generate_with_env(&CONFIGMAP_YAML.replace("fast", "evil"), &[]);
    assert_refused(&out, 3, &["env.yaml", "ConfigMap shop/settings", "replace"]);
    assert!(!out.stderr_str().contains("evil"), "{out}");
}

#[test]
fn generate_refuses_an_env_object_whose_kind_is_not_allowed() {
    let out = generate_with_env(DEPLOYMENT, &[]);
    assert_refused(
        &out,
        2,
        &[
            "env.yaml",
            "apps/Deployment shop/web",
            "ConfigMap",
            "RELEASECTL_ENV_KINDS",
        ],
    );
}

#[test]
fn generate_accepts_env_kinds_the_operator_allows_and_an_environmentconfig_by_default() {
    let config = "apiVersion: apiextensions.crossplane.io/v1alpha1\nkind: EnvironmentConfig\nmetadata:\n  name: dev\ndata:\n  region: eu\n";
    let out = generate_with_env(config, &[]);
    out.assert_success();
    assert!(
        out.stdout_str().contains("kind: EnvironmentConfig"),
        "{out}"
    );
    let out = generate_with_env(
        DEPLOYMENT
            .replace("name: web\n  namespace", "name: sidecar\n  namespace")
            .as_str(),
        &[("RELEASECTL_ENV_KINDS", "ConfigMap,apps/Deployment")],
    );
    out.assert_success();
    assert!(out.stdout_str().contains("name: sidecar"), "{out}");
}

#[test]
fn generate_accepts_a_configmap_of_another_name() {
    let out = generate_with_env(
        &CONFIGMAP_YAML.replace("name: settings", "name: env-values"),
        &[],
    );
    out.assert_success();
    let stdout = out.stdout_str();
    assert!(
        stdout.contains("name: env-values") && stdout.contains("name: settings"),
        "{out}"
    );
}
