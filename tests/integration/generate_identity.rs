//! `generate` hands Argo CD exactly the verified release the pointer names, or nothing (issue
//! 11, items 2 and 3):
//!
//! - the metadata's record of the objects (`resources.objects`, docs/format.md §7 step 8) must
//!   be what the resources layer holds: `generate` refuses a record that lies just as `verify`
//!   does;
//! - a warm cache saves work, never checks: a pointer that names another commit, project or
//!   repository than the cached release with that digest ends exactly as it would with an
//!   empty cache (same exit code, nothing on stdout), and the good entry stays usable.

use std::path::Path;
use std::time::Duration;

use serde_json::json;

use crate::support::cmp::app_dir;
use crate::support::image::{Image, ImageBuilder};
use crate::support::setup::{
    self as common, COMMIT_A, COMMIT_B, IMAGE_PATH, PROJECT, REPOSITORY, Setup,
};
use crate::support::{self, Cmd, Mode, Output, Registry};

/// A ClusterRoleBinding that grants cluster-admin: what a lying record would hide.
const BINDING_YAML: &str = "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata:\n  name: everyone-is-admin\nroleRef:\n  apiGroup: rbac.authorization.k8s.io\n  kind: ClusterRole\n  name: cluster-admin\nsubjects:\n- apiGroup: rbac.authorization.k8s.io\n  kind: Group\n  name: system:authenticated\n";
const CONFIGMAP_YAML: &str =
    "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n  namespace: shop\n";

/// A release of a ConfigMap and a ClusterRoleBinding whose objects record is changed by
/// `edit` (every digest right: only the record lies).
fn image_with_record(edit: impl Fn(&mut serde_json::Value) + 'static) -> Image {
    ImageBuilder::new()
        .files(vec![
            ("binding.yaml".to_owned(), BINDING_YAML.into()),
            ("configmap.yaml".to_owned(), CONFIGMAP_YAML.into()),
        ])
        .edit_metadata(move |m| edit(&mut m["resources"]["objects"]))
        .build()
}

/// The record entry of the binding, wherever the writer put it.
fn binding(objects: &mut serde_json::Value) -> &mut serde_json::Value {
    objects
        .as_array_mut()
        .expect("objects is a list")
        .iter_mut()
        .find(|o| o["kind"] == "ClusterRoleBinding")
        .expect("the record names the binding")
}

fn verify_pushed(image: &Image, registry: &Registry) -> Output {
    let reference = format!(
        "{}/{}@{}",
        registry.host(),
        image.path(),
        image.manifest_digest
    );
    Cmd::releasectl()
        .args([
            "--insecure-registry",
            &registry.host(),
            "verify",
            &reference,
        ])
        .run()
}

/// Exit 3, nothing on stdout, one stderr line holding every needle.
#[track_caller]
fn assert_refused(out: &Output, needles: &[&str]) {
    out.assert_exit(3).assert_stdout_empty();
    let err = out.stderr_str();
    if err.trim_end().lines().count() != 1 {
        out.fail("expected exactly one line on stderr");
    }
    for needle in needles {
        out.assert_stderr_contains(needle);
    }
}

#[test]
fn an_unchanged_record_of_the_objects_generates() {
    // The baseline the lying records below change one thing of.
    let registry = Registry::start(Mode::Plain);
    let image = image_with_record(|_| {});
    let out = crate::support::cmp::generate_pushed(&image, &registry);
    out.assert_success()
        .assert_stdout_contains("kind: ClusterRoleBinding");
    verify_pushed(&image, &registry).assert_success();
}

#[test]
fn a_record_calling_a_cluster_role_binding_a_config_map_is_refused_by_generate_and_verify() {
    let registry = Registry::start(Mode::Plain);
    let image = image_with_record(|objects| {
        let b = binding(objects);
        b["api_version"] = json!("v1");
        b["kind"] = json!("ConfigMap");
    });
    let needles = [IMAGE_PATH, "ClusterRoleBinding", "ConfigMap", "metadata"];
    assert_refused(
        &crate::support::cmp::generate_pushed(&image, &registry),
        &needles,
    );
    assert_refused(&verify_pushed(&image, &registry), &needles);
}

#[test]
fn a_record_that_misses_an_object_or_names_an_extra_one_is_refused_by_generate() {
    let registry = Registry::start(Mode::Plain);
    let missing = image_with_record(|objects| {
        objects
            .as_array_mut()
            .unwrap()
            .retain(|o| o["kind"] != "ClusterRoleBinding");
    });
    assert_refused(
        &crate::support::cmp::generate_pushed(&missing, &registry),
        &[IMAGE_PATH, "holds 2 objects", "records 1"],
    );
    let extra = image_with_record(|objects| {
        let copy = binding(objects).clone();
        objects.as_array_mut().unwrap().push(copy);
    });
    assert_refused(
        &crate::support::cmp::generate_pushed(&extra, &registry),
        &[IMAGE_PATH, "holds 2 objects", "records 3"],
    );
    let moved = image_with_record(|objects| {
        binding(objects)["namespace"] = json!("kube-system");
    });
    assert_refused(
        &crate::support::cmp::generate_pushed(&moved, &registry),
        &[IMAGE_PATH],
    );
}

// ---- a warm cache and another identity --------------------------------------------------------

/// An application directory whose pointer names `repository/project` at `commit`, pinned to
/// `digest` in `registry`.
fn pointer_app(
    registry: &str,
    repository: &str,
    project: &str,
    commit: &str,
    digest: &str,
) -> tempfile::TempDir {
    let pointer = format!(
        "apiVersion: releasectl.dev/v1alpha1\nkind: ReleasePointer\nmetadata:\n  name: {project}\n\
         spec:\n  repository: {repository}\n  project: {project}\n  release: {commit}\n  \
         digest: {digest}\n  registry: \"{registry}\"\n"
    );
    app_dir(&[("release.yaml", &pointer)])
}

/// `generate` for `app` against plain-HTTP `host`, caching in `cache`.
fn generate(app: &Path, host: &str, cache: &Path) -> Output {
    Cmd::releasectl()
        .arg("generate")
        .current_dir(app)
        .env("RELEASECTL_INSECURE_REGISTRIES", host)
        .env("RELEASECTL_CACHE_DIR", cache)
        .env("RELEASECTL_TIMEOUT", "20s")
        .timeout(Duration::from_secs(60))
        .run()
}

/// Runs the pointer `app` with an empty cache and with the warm `cache`: both must fail the
/// same way (`code`), print nothing on stdout, and agree on stderr.
#[track_caller]
fn assert_warm_is_cold(app: &Path, host: &str, cache: &Path, code: i32) {
    let cold = generate(app, host, support::temp_dir().path());
    cold.assert_exit(code).assert_stdout_empty();
    let warm = generate(app, host, cache);
    warm.assert_exit(code).assert_stdout_empty();
    if warm.stderr != cold.stderr {
        warm.fail(&format!(
            "stderr differs from the cold run's:\n{}",
            cold.stderr_str()
        ));
    }
}

/// A registry holding the fixture release (and, under `other/monorepo/auth-service` and
/// `company/monorepo/other`, the very same image), and a cache warmed by a good pointer.
struct Warm {
    setup: Setup,
    digest: String,
    cache: tempfile::TempDir,
    good: tempfile::TempDir,
    first: Output,
}

fn warm() -> Warm {
    let setup = Setup::plain();
    let created = setup.create(COMMIT_A, &common::fixture_manifests());
    let host = setup.host();
    let source = format!("{host}/{IMAGE_PATH}@{}", created.digest);
    for path in ["other/monorepo/auth-service", "company/monorepo/other"] {
        setup
            .releasectl()
            .args(["copy", &source, &format!("{host}/{path}:{COMMIT_A}")])
            .run()
            .assert_success();
    }
    let cache = support::temp_dir();
    let good = pointer_app(&host, REPOSITORY, PROJECT, COMMIT_A, &created.digest);
    let first = generate(good.path(), &host, cache.path());
    first.assert_success();
    assert!(!first.stdout.is_empty(), "{first}");
    // Warm twice: the second run is served from the rendered entry.
    let again = generate(good.path(), &host, cache.path());
    again.assert_success();
    assert_eq!(again.stdout, first.stdout, "{again}");
    Warm {
        setup,
        digest: created.digest,
        cache,
        good,
        first,
    }
}

#[test]
fn a_pointer_naming_another_commit_with_a_cached_digest_fails_as_without_the_cache() {
    let w = warm();
    let host = w.setup.host();
    let app = pointer_app(&host, REPOSITORY, PROJECT, COMMIT_B, &w.digest);
    // The image's revision is not the commit asked for: a verification failure.
    assert_warm_is_cold(app.path(), &host, w.cache.path(), 3);
    // The good entry was not thrown away.
    let again = generate(w.good.path(), &host, w.cache.path());
    again.assert_success();
    assert_eq!(again.stdout, w.first.stdout, "{again}");
}

#[test]
fn a_pointer_naming_another_project_with_a_cached_digest_fails_as_without_the_cache() {
    let w = warm();
    let host = w.setup.host();
    // The same image copied under the other project's path: the config names another project.
    let copied = pointer_app(&host, REPOSITORY, "other", COMMIT_A, &w.digest);
    assert_warm_is_cold(copied.path(), &host, w.cache.path(), 3);
    // A project the registry does not hold: a remote failure.
    let absent = pointer_app(&host, REPOSITORY, "absent", COMMIT_A, &w.digest);
    assert_warm_is_cold(absent.path(), &host, w.cache.path(), 5);
}

#[test]
fn a_pointer_naming_another_repository_with_a_cached_digest_fails_as_without_the_cache() {
    let w = warm();
    let host = w.setup.host();
    let copied = pointer_app(&host, "other/monorepo", PROJECT, COMMIT_A, &w.digest);
    assert_warm_is_cold(copied.path(), &host, w.cache.path(), 3);
    let absent = pointer_app(&host, "absent/monorepo", PROJECT, COMMIT_A, &w.digest);
    assert_warm_is_cold(absent.path(), &host, w.cache.path(), 5);
}

#[test]
fn with_the_registry_down_a_pointer_naming_another_commit_gets_nothing_from_the_cache() {
    let mut w = warm();
    let host = w.setup.host();
    w.setup.registry.stop();
    // The good pointer is served from the cache with no registry at all.
    let good = generate(w.good.path(), &host, w.cache.path());
    good.assert_success();
    assert_eq!(good.stdout, w.first.stdout, "{good}");
    // Another commit with the cached digest: the cache may not vouch for it, so the registry
    // must, and it is gone.
    let app = pointer_app(&host, REPOSITORY, PROJECT, COMMIT_B, &w.digest);
    let warm = generate(app.path(), &host, w.cache.path());
    warm.assert_exit(5).assert_stdout_empty();
}
