//! `releasectl generate` never reads `release.yaml` or `env.yaml` through a symbolic link, nor
//! anything but a regular file: a link in an application directory could point at a token or
//! another application's Secret on the sidecar's disk, and neither may reach stderr or stdout.

use std::os::unix::fs::symlink;
use std::path::Path;

use crate::support::cmp::{CmpRun, app_dir, fixture_app, fixture_registry};
use crate::support::{self, Output};

const SECRET: &str = "ghp_TopSecretToken0123456789abcdefXYZ";
const SECRET_MANIFEST: &str = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: stolen\nstringData:\n  token: ghp_TopSecretToken0123456789abcdefXYZ\n";

fn fixture_pointer() -> String {
    std::fs::read_to_string(fixture_app().join("release.yaml")).expect("fixture pointer")
}

/// Runs generate in `app` as prepared (links are kept: no copy).
fn generate_in(app: &Path) -> Output {
    CmpRun::new(app)
        .env(
            "RELEASECTL_REGISTRY",
            format!("oci:{}", fixture_registry().display()),
        )
        .run_in(app)
}

#[track_caller]
fn assert_link_refused(out: &Output, file: &str) {
    out.assert_exit(2).assert_stdout_empty();
    let err = out.stderr_str();
    assert_eq!(err.trim_end().lines().count(), 1, "{out}");
    assert!(
        err.contains(file) && err.contains("symbolic link") && err.contains("regular file"),
        "{out}"
    );
    assert!(!err.contains(SECRET) && !err.contains("ghp_"), "{out}");
}

#[test]
fn generate_refuses_a_pointer_that_is_a_symlink_to_a_token_without_printing_the_token() {
    let outside = support::temp_dir();
    let token = outside.path().join("token");
    std::fs::write(&token, format!("{SECRET}\n")).unwrap();
    let app = app_dir(&[]);
    symlink(&token, app.path().join("release.yaml")).unwrap();
    assert_link_refused(&generate_in(app.path()), "release.yaml");
}

#[test]
fn generate_refuses_a_pointer_that_is_a_symlink_to_a_valid_pointer() {
    // Even a link to a perfectly good pointer: what is read must be what the directory holds.
    let outside = support::temp_dir();
    let real = outside.path().join("release.yaml");
    std::fs::write(&real, fixture_pointer()).unwrap();
    let app = app_dir(&[]);
    symlink(&real, app.path().join("release.yaml")).unwrap();
    assert_link_refused(&generate_in(app.path()), "release.yaml");
}

#[test]
fn generate_refuses_an_env_yaml_that_is_a_symlink_to_a_secret_manifest() {
    let outside = support::temp_dir();
    let secret = outside.path().join("secret.yaml");
    std::fs::write(&secret, SECRET_MANIFEST).unwrap();
    let app = app_dir(&[("release.yaml", &fixture_pointer())]);
    symlink(&secret, app.path().join("env.yaml")).unwrap();
    assert_link_refused(&generate_in(app.path()), "env.yaml");
}

#[test]
fn generate_refuses_a_pointer_that_is_a_directory() {
    let app = app_dir(&[]);
    std::fs::create_dir(app.path().join("release.yaml")).unwrap();
    let out = generate_in(app.path());
    out.assert_exit(2).assert_stdout_empty();
    assert!(out.stderr_str().contains("not a regular file"), "{out}");
}

#[test]
fn generate_still_reads_a_regular_env_yaml() {
    // The baseline of the cases above: the same files, not linked, are accepted.
    let app = app_dir(&[
        ("release.yaml", &fixture_pointer()),
        (
            "env.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: env-values\ndata:\n  a: b\n",
        ),
    ]);
    let out = generate_in(app.path());
    out.assert_success();
    assert!(out.stdout_str().contains("env-values"), "{out}");
}
