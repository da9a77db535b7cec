//! `releasectl generate`, the Argo CD plugin, on inputs that should work (docs/design.md §5): run as
//! the cmp-server runs it, its stdout must be a YAML stream of Kubernetes objects that
//! `kubernetes-validate --strict` accepts, sorted by (kind, namespace, name) with `env.yaml`
//! last, the same bytes every time, from an OCI layout and from a real registry alike. The
//! failure cases are in `generate_inputs`.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use crate::support::cmp::{self, CmpRun, app_dir, fixture_app, fixture_registry};
use crate::support::image::{COMMIT, ImageBuilder, OTHER_COMMIT, PROJECT, Pointer, REPOSITORY};
use crate::support::{self, Action, Cmd, FakeServer, Mode, Output, Registry, kubernetes_validate};

const ENV_YAML: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: aaa-env\n  namespace: shop\ndata:\n  ENVIRONMENT: dev\n";

/// Parses `stdout` as a YAML stream with `PyYAML` (an independent, YAML 1.1 reader, as
/// Kubernetes tooling is), checks every document is a Kubernetes object, and validates the
/// stream with `kubernetes-validate --strict`. Returns the documents.
fn assert_kubernetes_stream(out: &Output) -> Vec<Value> {
    out.assert_success();
    assert!(!out.stdout.is_empty(), "empty stdout\n{out}");
    let docs = crate::support::python_yaml_documents(&out.stdout);
    for (i, doc) in docs.iter().enumerate() {
        for field in ["apiVersion", "kind"] {
            assert!(
                doc[field].as_str().is_some_and(|s| !s.is_empty()),
                "document {i} has no {field}: {doc}\n{out}"
            );
        }
        assert!(
            doc["metadata"]["name"]
                .as_str()
                .is_some_and(|s| !s.is_empty()),
            "document {i} has no metadata.name: {doc}\n{out}"
        );
        assert_ne!(
            doc["kind"], "ReleasePointer",
            "the pointer is not a cluster object\n{out}"
        );
    }
    let dir = support::temp_dir();
    let file = dir.path().join("generated.yaml");
    std::fs::write(&file, &out.stdout).expect("write generated.yaml");
    let validated = kubernetes_validate()
        .args(["--strict", "--no-warn"])
        .arg(&file)
        .run();
    if !validated.success() {
        validated.fail(&format!(
            "kubernetes-validate --strict refused the generated stream:\n{}",
            out.stdout_str()
        ));
    }
    docs
}

/// (kind, namespace or "", name) of each document.
fn identities(docs: &[Value]) -> Vec<(String, String, String)> {
    docs.iter()
        .map(|d| {
            (
                d["kind"].as_str().unwrap_or_default().to_owned(),
                d["metadata"]["namespace"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                d["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            )
        })
        .collect()
}

fn id(kind: &str, namespace: &str, name: &str) -> (String, String, String) {
    (kind.to_owned(), namespace.to_owned(), name.to_owned())
}

fn oci(root: &Path) -> String {
    format!("oci:{}", root.display())
}

/// The fixture application with the fixture layout as the configured default registry.
fn fixture_run() -> CmpRun {
    CmpRun::new(fixture_app()).env("RELEASECTL_REGISTRY", oci(&fixture_registry()))
}

/// A release of `company/monorepo/auth-service` at `commit` created with `release create`
/// from the fixture manifests in `registry`; returns the printed manifest digest.
fn create_in_registry(registry: &Registry, commit: &str) -> String {
    let host = registry.host();
    let out = Cmd::releasectl()
        .args([
            "--registry",
            &host,
            "--insecure-registry",
            &host,
            "-o",
            "json",
        ])
        .args(["release", "create", "--repository", REPOSITORY])
        .args(["--project", PROJECT, "--commit", commit, "--manifests"])
        .arg(support::manifest_dir().join("fixtures/manifests/auth-service"))
        .env("SOURCE_DATE_EPOCH", "1795000000")
        .run();
    out.assert_success();
    let created: Value = serde_json::from_slice(&out.stdout).expect("release create -o json");
    created["digest"]
        .as_str()
        .expect("digest in release create output")
        .to_owned()
}

fn registry_run(app: &Path, registry: &Registry) -> CmpRun {
    CmpRun::new(app)
        .env("RELEASECTL_REGISTRY", registry.host())
        .env("RELEASECTL_INSECURE_REGISTRIES", registry.host())
        .env("RELEASECTL_TIMEOUT", "20s")
}

fn fixture_env_yaml() -> String {
    std::fs::read_to_string(fixture_app().join("env.yaml")).expect("fixture env.yaml")
}

// ---- the fixture, through the cmp harness ---------------------------------------------------

#[test]
fn generate_of_the_fixture_prints_valid_kubernetes_objects_sorted_with_env_yaml_last() {
    let out = fixture_run().run();
    let docs = assert_kubernetes_stream(&out);
    assert_eq!(
        identities(&docs),
        [
            id("ConfigMap", "auth", "auth-service-config"),
            id("Deployment", "auth", "auth-service"),
            id("Namespace", "", "auth"),
            id("Service", "auth", "auth-service"),
            // env.yaml's object would sort second; it is appended instead.
            id("ConfigMap", "auth", "auth-service-env"),
        ],
        "{out}"
    );
    assert!(
        out.stdout_str().starts_with("---\n"),
        "every document starts with a marker\n{out}"
    );
}

#[test]
fn generate_output_is_byte_identical_across_runs() {
    let first = fixture_run().run();
    let second = fixture_run()
        .source_path("prod/apps/company/monorepo/auth-service")
        .run();
    first.assert_success();
    second.assert_success();
    assert!(!first.stdout.is_empty(), "{first}");
    assert_eq!(
        first.stdout_str(),
        second.stdout_str(),
        "two generates of one pointer differ"
    );
}

#[test]
fn generate_is_quiet_on_stderr_when_it_succeeds() {
    let out = fixture_run().run();
    out.assert_success();
    assert!(out.stderr.is_empty(), "stderr is not quiet\n{out}");
}

#[test]
fn generate_log_names_the_argo_cd_app_and_the_resolved_digest_when_asked() {
    let pointer = std::fs::read_to_string(fixture_app().join("release.yaml")).unwrap();
    let digest = pointer
        .lines()
        .find_map(|l| l.trim().strip_prefix("digest: "))
        .expect("fixture pointer is pinned")
        .to_owned();
    let out = fixture_run().env("RELEASECTL_LOG", "info").run();
    assert_kubernetes_stream(&out);
    let err = out.stderr_str();
    assert!(err.contains(cmp::APP_NAME), "app name not logged\n{out}");
    assert!(err.contains(&digest), "digest not logged\n{out}");
}

#[test]
fn generate_sorts_objects_from_several_files_by_kind_namespace_and_name() {
    let files = vec![
        (
            "z-services.yaml".to_owned(),
            b"apiVersion: v1\nkind: Service\nmetadata:\n  name: web\n  namespace: shop\nspec:\n  ports:\n  - port: 80\n---\napiVersion: v1\nkind: Service\nmetadata:\n  name: api\n  namespace: shop\nspec:\n  ports:\n  - port: 81\n".to_vec(),
        ),
        (
            "a/namespace.json".to_owned(),
            br#"{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}}"#.to_vec(),
        ),
        (
            "m/mixed.yml".to_owned(),
            b"apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: runner\n  namespace: shop\n---\n# a comment-only document is skipped\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: reader\nrules: []\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n  namespace: shop\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n  namespace: admin\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: zeta\n".to_vec(),
        ),
    ];
    let image = ImageBuilder::new().files(files).build();
    let root = support::temp_dir();
    image.write_layout(root.path());
    let app = app_dir(&[
        ("release.yaml", &Pointer::to(&image).yaml()),
        ("env.yaml", ENV_YAML),
    ]);
    let out = CmpRun::new(app.path())
        .env("RELEASECTL_REGISTRY", oci(root.path()))
        .run();
    let docs = assert_kubernetes_stream(&out);
    assert_eq!(
        identities(&docs),
        [
            id("ClusterRole", "", "reader"),
            id("ConfigMap", "", "zeta"),
            id("ConfigMap", "admin", "settings"),
            id("ConfigMap", "shop", "settings"),
            id("Namespace", "", "shop"),
            id("Service", "shop", "api"),
            id("Service", "shop", "web"),
            id("ServiceAccount", "shop", "runner"),
            // "aaa-env" would sort among the ConfigMaps: env.yaml comes last regardless.
            id("ConfigMap", "shop", "aaa-env"),
        ],
        "{out}"
    );
}

// ---- a real registry ------------------------------------------------------------------------

#[test]
fn generate_from_a_real_registry_prints_the_release_created_there() {
    let registry = Registry::start(Mode::Plain);
    let digest = create_in_registry(&registry, COMMIT);
    let pointer = Pointer::unpinned(COMMIT).digest(Some(&digest));
    let app = app_dir(&[
        ("release.yaml", &pointer.yaml()),
        ("env.yaml", &fixture_env_yaml()),
    ]);
    let out = registry_run(app.path(), &registry).run();
    let docs = assert_kubernetes_stream(&out);
    assert_eq!(docs.len(), 5, "{out}");
    assert_eq!(
        identities(&docs).last(),
        Some(&id("ConfigMap", "auth", "auth-service-env"))
    );
    // The same manifests from the layout fixture give the same bytes: where a release is
    // stored changes nothing in what Argo CD applies.
    let from_layout = fixture_run().run();
    from_layout.assert_success();
    assert_eq!(out.stdout_str(), from_layout.stdout_str());
    let again = registry_run(app.path(), &registry).run();
    assert_eq!(
        out.stdout, again.stdout,
        "two generates from the registry differ"
    );
}

#[test]
fn generate_without_a_digest_pulls_the_commit_tag_from_a_real_registry() {
    let registry = Registry::start(Mode::Plain);
    create_in_registry(&registry, COMMIT);
    let app = app_dir(&[("release.yaml", &Pointer::unpinned(COMMIT).yaml())]);
    let out = registry_run(app.path(), &registry).run();
    let docs = assert_kubernetes_stream(&out);
    assert_eq!(docs.len(), 4, "{out}");
}

#[test]
fn generate_without_a_digest_refuses_a_registry_tag_that_holds_another_commits_release() {
    let registry = Registry::start(Mode::Plain);
    // A consistent release of OTHER_COMMIT, tagged as if it were COMMIT (a moved tag).
    let image = ImageBuilder::new().commit(OTHER_COMMIT).build();
    image.push(&registry, COMMIT);
    let app = app_dir(&[("release.yaml", &Pointer::unpinned(COMMIT).yaml())]);
    let out = registry_run(app.path(), &registry).run();
    out.assert_exit(3).assert_stdout_empty();
    for needle in [
        "revision",
        COMMIT,
        OTHER_COMMIT,
        "company/monorepo/auth-service",
    ] {
        out.assert_stderr_contains(needle);
    }
}

#[test]
fn generate_with_spec_registry_uses_it_over_releasectl_registry() {
    let registry = Registry::start(Mode::Plain);
    let digest = create_in_registry(&registry, COMMIT);
    let pointer = Pointer::unpinned(COMMIT)
        .digest(Some(&digest))
        .registry(&registry.host());
    let app = app_dir(&[("release.yaml", &pointer.yaml())]);
    let empty = support::temp_dir();
    let out = CmpRun::new(app.path())
        .env("RELEASECTL_REGISTRY", oci(empty.path()))
        .env("RELEASECTL_INSECURE_REGISTRIES", registry.host())
        .env("RELEASECTL_TIMEOUT", "20s")
        .run();
    assert_eq!(assert_kubernetes_stream(&out).len(), 4, "{out}");
}

// ---- OCI layouts: tags, precedence, --pointer -----------------------------------------------

#[test]
fn generate_without_a_digest_pulls_the_commit_tag_from_a_layout() {
    let image = ImageBuilder::new().build();
    let root = support::temp_dir();
    image.write_layout(root.path());
    let app = app_dir(&[("release.yaml", &Pointer::unpinned(COMMIT).yaml())]);
    let out = CmpRun::new(app.path())
        .env("RELEASECTL_REGISTRY", oci(root.path()))
        .run();
    assert_eq!(
        identities(&assert_kubernetes_stream(&out)),
        [
            id("ConfigMap", "shop", "settings"),
            id("Service", "shop", "web")
        ]
    );
}

#[test]
fn generate_without_a_digest_refuses_a_layout_tag_that_holds_another_commits_release() {
    let image = ImageBuilder::new().commit(OTHER_COMMIT).build();
    let root = support::temp_dir();
    image.write_layout_tagged(root.path(), COMMIT);
    let app = app_dir(&[("release.yaml", &Pointer::unpinned(COMMIT).yaml())]);
    let out = CmpRun::new(app.path())
        .env("RELEASECTL_REGISTRY", oci(root.path()))
        .run();
    out.assert_exit(3).assert_stdout_empty();
    for needle in ["revision", COMMIT, OTHER_COMMIT] {
        out.assert_stderr_contains(needle);
    }
}

#[test]
fn generate_prefers_spec_registry_and_falls_back_to_releasectl_registry() {
    let good = support::temp_dir();
    let image = ImageBuilder::new().build();
    image.write_layout(good.path());
    let empty = support::temp_dir();

    // spec.registry names the layout that has the release; the default does not: spec wins.
    let pointer = Pointer::to(&image).registry(&oci(good.path()));
    let app = app_dir(&[("release.yaml", &pointer.yaml())]);
    let out = CmpRun::new(app.path())
        .env("RELEASECTL_REGISTRY", oci(empty.path()))
        .env("RELEASECTL_ALLOW_LAYOUT_POINTERS", "1")
        .run();
    assert_eq!(assert_kubernetes_stream(&out).len(), 2, "{out}");

    // The other way round: spec.registry is empty, the default has it. spec still wins, so
    // this fails, naming the place it looked.
    let pointer = Pointer::to(&image).registry(&oci(empty.path()));
    let app = app_dir(&[("release.yaml", &pointer.yaml())]);
    let out = CmpRun::new(app.path())
        .env("RELEASECTL_REGISTRY", oci(good.path()))
        .env("RELEASECTL_ALLOW_LAYOUT_POINTERS", "1")
        .run();
    out.assert_failure().assert_stdout_empty();
    out.assert_stderr_contains(&empty.path().display().to_string());

    // No spec.registry: the default is used.
    let app = app_dir(&[("release.yaml", &Pointer::to(&image).yaml())]);
    let out = CmpRun::new(app.path())
        .env("RELEASECTL_REGISTRY", oci(good.path()))
        .run();
    assert_eq!(assert_kubernetes_stream(&out).len(), 2, "{out}");
}

#[test]
fn a_pointer_naming_an_oci_layout_is_refused_unless_allowed() {
    let good = support::temp_dir();
    let image = ImageBuilder::new().build();
    image.write_layout(good.path());
    let pointer = Pointer::to(&image).registry(&oci(good.path()));
    let app = app_dir(&[("release.yaml", &pointer.yaml())]);
    let out = CmpRun::new(app.path()).run();
    out.assert_exit(2).assert_stdout_empty();
    out.assert_stderr_contains("spec.registry")
        .assert_stderr_contains("RELEASECTL_ALLOW_LAYOUT_POINTERS");
}

#[test]
fn generate_without_any_registry_is_a_usage_error_naming_both_settings() {
    let out = CmpRun::new(fixture_app()).run();
    out.assert_exit(2).assert_stdout_empty();
    out.assert_stderr_contains("spec.registry")
        .assert_stderr_contains("RELEASECTL_REGISTRY")
        .assert_stderr_contains("release.yaml");
}

#[test]
fn generate_pointer_flag_reads_a_pointer_with_another_name_and_its_env_yaml() {
    let image = ImageBuilder::new().build();
    let root = support::temp_dir();
    image.write_layout(root.path());
    // The application directory holds only the pointer under another name and env.yaml.
    let app = app_dir(&[
        ("pointer.yaml", &Pointer::to(&image).yaml()),
        ("env.yaml", ENV_YAML),
    ]);
    let run = CmpRun::new(app.path()).env("RELEASECTL_REGISTRY", oci(root.path()));
    // Without the flag there is no release.yaml.
    let out = run.clone().run();
    out.assert_exit(2).assert_stdout_empty();
    out.assert_stderr_contains("release.yaml");
    let out = run.arg("--pointer").arg("pointer.yaml").run();
    assert_eq!(
        identities(&assert_kubernetes_stream(&out)),
        [
            id("ConfigMap", "shop", "settings"),
            id("Service", "shop", "web"),
            id("ConfigMap", "shop", "aaa-env"),
        ]
    );
}

#[test]
fn generate_pointer_flag_to_a_file_in_another_directory_uses_that_directory() {
    let image = ImageBuilder::new().build();
    let root = support::temp_dir();
    image.write_layout(root.path());
    let app = app_dir(&[
        ("envs/prod/release.yaml", &Pointer::to(&image).yaml()),
        ("envs/prod/env.yaml", ENV_YAML),
    ]);
    let out = CmpRun::new(app.path())
        .env("RELEASECTL_REGISTRY", oci(root.path()))
        .arg("--pointer")
        .arg("envs/prod/release.yaml")
        .run();
    let docs = assert_kubernetes_stream(&out);
    assert_eq!(
        identities(&docs).last(),
        Some(&id("ConfigMap", "shop", "aaa-env"))
    );
}

#[test]
fn generate_pointer_flag_to_a_missing_file_is_refused_naming_it() {
    let out = fixture_run().arg("--pointer").arg("nowhere.yaml").run();
    out.assert_exit(2).assert_stdout_empty();
    out.assert_stderr_contains("nowhere.yaml");
}

#[test]
fn generate_refuses_a_project_directory_with_an_extra_file() {
    let pointer = std::fs::read_to_string(fixture_app().join("release.yaml")).unwrap();
    for (extra, contents) in [
        ("kustomization.yaml", "resources: []\n"),
        (
            "deployment.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: sneaky\n",
        ),
        ("sub/release.yaml", "x: 1\n"),
    ] {
        let app = app_dir(&[
            ("release.yaml", &pointer),
            ("env.yaml", &fixture_env_yaml()),
            (extra, contents),
        ]);
        let out = CmpRun::new(app.path())
            .env("RELEASECTL_REGISTRY", oci(&fixture_registry()))
            .run();
        out.assert_exit(2).assert_stdout_empty();
        let name = extra.split('/').next().unwrap();
        out.assert_stderr_contains(name)
            .assert_stderr_contains("release.yaml");
    }
}

// ---- the cmp-server's deadline --------------------------------------------------------------

#[test]
fn generate_stopped_by_the_cmp_servers_sigterm_exits_without_writing_stdout() {
    // A "registry" that accepts the connection and never answers.
    let server = FakeServer::start(|_| Action::Hang(Duration::from_secs(60)));
    let app = app_dir(&[(
        "release.yaml",
        &Pointer::to(&ImageBuilder::new().build())
            .registry(&server.host())
            .yaml(),
    )]);
    let out = CmpRun::new(app.path())
        .env("RELEASECTL_INSECURE_REGISTRIES", server.host())
        .timeout(Duration::from_secs(2))
        .grace(Duration::from_secs(10))
        .run();
    assert!(
        out.timed_out,
        "generate finished before the deadline\n{out}"
    );
    // It exited on SIGTERM by itself (no SIGKILL needed), non-zero, with nothing on stdout.
    assert!(
        matches!(out.status.code(), Some(c) if c != 0),
        "expected a non-zero exit after SIGTERM\n{out}"
    );
    assert!(out.elapsed < Duration::from_secs(8), "{out}");
    out.assert_stdout_empty().assert_stderr_contains("SIGTERM");
}

#[test]
fn cmp_harness_kills_a_generate_that_ignores_sigterm_after_the_grace_period() {
    // The harness's own guarantee, on a stand-in for the product that ignores SIGTERM, so
    // that a product hang can never hang the suite.
    let dir = support::temp_dir();
    let script = dir.path().join("stubborn-generate");
    std::fs::write(&script, "#!/bin/sh\ntrap '' TERM\nsleep 30\n").unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let started = std::time::Instant::now();
    let out = CmpRun::new(dir.path())
        .program(&script)
        .timeout(Duration::from_millis(300))
        .grace(Duration::from_millis(300))
        .run();
    assert!(out.timed_out, "{out}");
    assert!(started.elapsed() < Duration::from_secs(10), "{out}");
    assert_eq!(out.status.code(), None, "expected death by SIGKILL\n{out}");
}
