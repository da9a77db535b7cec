//! Objects named by `metadata.generateName` (docs/format.md §4.6, §5.1): Argo CD's own `PostSync`
//! hook example, a Job with `generateName` and no `name`, goes through `release create`,
//! `generate` and `inspect`; its record carries `generate_name`; a `generateName` never equals a
//! `name` of the same string; a repeated `generateName` is refused as a repeated name is.

use std::path::Path;

use serde_json::{Value, json};

use crate::support::cmp::{CmpRun, app_dir};
use crate::support::image::{COMMIT, ImageBuilder, PROJECT, Pointer, REPOSITORY};
use crate::support::{self, Cmd, Output, python};

/// Argo CD's `PostSync` hook example (its resource hooks documentation), as users copy it.
const POST_SYNC_JOB: &str = include_str!("../../fixtures/hooks/post-sync-job.yaml");

/// A PreSync hook named by `generateName` `migrate`, and a Job named `migrate`: two objects.
const MIGRATE_JOBS: &str = "\
apiVersion: batch/v1
kind: Job
metadata:
  generateName: migrate
  annotations:
    argocd.argoproj.io/hook: PreSync
spec:
  template:
    spec:
      containers: [{name: migrate, image: example.com/migrate:1.0}]
      restartPolicy: Never
---
apiVersion: batch/v1
kind: Job
metadata:
  name: migrate
spec:
  template:
    spec:
      containers: [{name: migrate, image: example.com/migrate:1.0}]
      restartPolicy: Never
";

const CONFIGMAP: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n  namespace: shop\ndata:\n  mode: fast\n";

fn oci(root: &Path) -> String {
    format!("oci:{}", root.display())
}

/// A manifests directory holding `files` (name, contents).
fn manifests(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = support::temp_dir();
    for (name, contents) in files {
        std::fs::write(dir.path().join(name), contents).expect("write manifest");
    }
    dir
}

/// `release create -o json` of `dir` into the layout root `root`.
fn create(root: &Path, dir: &Path) -> Output {
    Cmd::releasectl()
        .args(["--registry", &oci(root), "-o", "json"])
        .args(["release", "create", "--repository", REPOSITORY])
        .args(["--project", PROJECT, "--commit", COMMIT, "--manifests"])
        .arg(dir)
        .env("SOURCE_DATE_EPOCH", "1795000000")
        .run()
}

/// `generate`, as Argo CD runs it, of a pointer to `digest` in the layout root `root`.
fn generate(root: &Path, digest: &str) -> Output {
    let pointer = Pointer::unpinned(COMMIT).digest(Some(digest)).yaml();
    let app = app_dir(&[("release.yaml", &pointer)]);
    CmpRun::new(app.path())
        .env("RELEASECTL_REGISTRY", oci(root))
        .run()
}

/// The documents of a YAML stream, read by `PyYAML` (a YAML 1.1 reader, as Kubernetes tooling).
fn documents(out: &Output) -> Vec<Value> {
    support::python_yaml_documents(&out.stdout)
}

/// (kind, `name` or `generateName=…`) of each document.
fn identities(docs: &[Value]) -> Vec<(String, String)> {
    docs.iter()
        .map(|d| {
            let metadata = &d["metadata"];
            let name = metadata["name"].as_str().map_or_else(
                || {
                    format!(
                        "generateName={}",
                        metadata["generateName"].as_str().unwrap_or("?")
                    )
                },
                str::to_owned,
            );
            (d["kind"].as_str().unwrap_or("?").to_owned(), name)
        })
        .collect()
}

fn pair(kind: &str, name: &str) -> (String, String) {
    (kind.to_owned(), name.to_owned())
}

#[test]
fn argo_cds_post_sync_hook_example_goes_through_create_generate_and_inspect() {
    let dir = manifests(&[
        ("hook.yaml", POST_SYNC_JOB),
        ("jobs.yaml", MIGRATE_JOBS),
        ("settings.yaml", CONFIGMAP),
    ]);
    let root = support::temp_dir();
    let created = create(root.path(), dir.path());
    created.assert_success();
    let json: Value = serde_json::from_slice(&created.stdout).expect("release create -o json");
    let digest = json["digest"].as_str().expect("digest").to_owned();
    let reference = json["reference"].as_str().expect("reference").to_owned();

    // generate: exit 0, every object printed, the hook with its generateName and no name,
    // named objects before generateName ones of the same kind.
    let out = generate(root.path(), &digest);
    out.assert_success();
    let docs = documents(&out);
    assert_eq!(
        identities(&docs),
        [
            pair("ConfigMap", "settings"),
            pair("Job", "migrate"),
            pair("Job", "generateName=app-slack-notification-"),
            pair("Job", "generateName=migrate"),
        ],
        "{out}"
    );
    let hook = &docs[2];
    assert_eq!(hook["metadata"].get("name"), None, "{out}");
    assert_eq!(
        hook["metadata"]["annotations"]["argocd.argoproj.io/hook"], "PostSync",
        "{out}"
    );
    assert_eq!(hook["spec"]["backoffLimit"], 2, "{out}");
    // The author's text, as the fast path keeps it.
    assert!(
        out.stdout_str()
            .contains("  generateName: app-slack-notification-\n"),
        "{out}"
    );

    // The stream is valid Kubernetes, generateName objects included. kubernetes-validate's
    // command line names each object by `metadata.name` and fails on one without (KeyError
    // 'name'), so its library validates each document, against the same strict schemas.
    let validated = Cmd::new(python())
        .args([
            "-c",
            "import sys, yaml, kubernetes_validate as kv\n\
             for d in yaml.safe_load_all(sys.stdin):\n    \
             print(d['kind'], kv.validate(d, kv.latest_version(), strict=True))",
        ])
        .stdin(out.stdout.clone())
        .run();
    if !validated.success() || validated.stdout_str().lines().count() != docs.len() {
        validated.fail(&format!(
            "kubernetes-validate (strict) refused the generated stream:\n{}",
            out.stdout_str()
        ));
    }

    // inspect verifies the objects against the record and shows it: generate_name, no name.
    let inspected = Cmd::releasectl()
        .args(["--registry", &oci(root.path()), "inspect", "-o", "json"])
        .arg(&reference)
        .run();
    inspected.assert_success();
    let doc: Value = serde_json::from_slice(&inspected.stdout).expect("inspect -o json");
    assert_eq!(
        doc["metadata"]["resources"]["objects"],
        json!([
            {"api_version": "v1", "kind": "ConfigMap", "namespace": "shop", "name": "settings"},
            {"api_version": "batch/v1", "kind": "Job", "namespace": null, "name": "migrate"},
            {"api_version": "batch/v1", "kind": "Job", "namespace": null,
             "generate_name": "app-slack-notification-"},
            {"api_version": "batch/v1", "kind": "Job", "namespace": null,
             "generate_name": "migrate"},
        ]),
        "{inspected}"
    );
}

#[test]
fn the_same_generate_name_twice_in_a_namespace_is_refused_at_release_create() {
    let again = POST_SYNC_JOB.replace("PostSync", "PreSync");
    let dir = manifests(&[("a.yaml", POST_SYNC_JOB), ("b.yaml", &again)]);
    let root = support::temp_dir();
    let out = create(root.path(), dir.path());
    out.assert_exit(2);
    out.assert_stderr_contains(
        "b.yaml document 1: Job app-slack-notification-* (generateName) is defined twice",
    );
    out.assert_stderr_contains("a.yaml document 1");

    // In another namespace it is another object.
    let elsewhere = POST_SYNC_JOB.replace(
        "  generateName: app-slack-notification-\n",
        "  generateName: app-slack-notification-\n  namespace: other\n",
    );
    let dir = manifests(&[("a.yaml", POST_SYNC_JOB), ("b.yaml", &elsewhere)]);
    create(root.path(), dir.path()).assert_success();
}

#[test]
fn a_document_with_neither_name_nor_generate_name_is_refused_naming_both() {
    let nameless = POST_SYNC_JOB.replace("  generateName: app-slack-notification-\n", "");
    let dir = manifests(&[("hook.yaml", &nameless)]);
    let root = support::temp_dir();
    let out = create(root.path(), dir.path());
    out.assert_exit(2);
    out.assert_stderr_contains(
        "hook.yaml document 1: metadata.name (or metadata.generateName) is missing",
    );
}

#[test]
fn inspect_refuses_a_record_that_names_a_generate_name_object_by_name() {
    let record = |key: &'static str| {
        move |m: &mut Value| {
            m["resources"]["objects"] = json!([{
                "api_version": "batch/v1", "kind": "Job", "namespace": null,
                key: "app-slack-notification-",
            }]);
        }
    };
    let inspect = |image: &crate::support::image::Image| {
        let root = support::temp_dir();
        image.write_layout(root.path());
        let target = format!(
            "oci:{}/{}:{}@{}",
            root.path().display(),
            image.path(),
            image.commit,
            image.manifest_digest
        );
        Cmd::releasectl()
            .args(["inspect", "-o", "json", &target])
            .run()
    };
    let builder = || ImageBuilder::new().files(vec![("hook.yaml".into(), POST_SYNC_JOB.into())]);

    inspect(&builder().edit_metadata(record("generate_name")).build()).assert_success();
    let out = inspect(&builder().edit_metadata(record("name")).build());
    out.assert_exit(3);
    out.assert_stderr_contains("records batch/v1 Job app-slack-notification- in its place");
}
