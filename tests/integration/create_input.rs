//! Bad input to `release create`: exit 2, one message that names the bad thing, nothing on
//! stdout, and nothing pushed — the registry's catalog and storage stay empty.

use std::path::Path;

use crate::support;
use crate::support::setup::{COMMIT_A, PROJECT, REPOSITORY, Setup, assert_fails, create_args};

/// Runs `release create` against a fresh plain registry and checks it was refused with exit 2,
/// `needles` on stderr, and the registry untouched.
#[track_caller]
fn assert_refused(repository: &str, project: &str, commit: &str, dir: &Path, needles: &[&str]) {
    let setup = Setup::plain();
    let out = setup
        .releasectl()
        .args(["--registry", &setup.host()])
        .args(create_args(repository, project, commit, dir))
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .run();
    assert_fails(&out, 2, needles);
    assert_eq!(
        setup.catalog(),
        Vec::<String>::new(),
        "something was pushed\n{out}"
    );
    let repositories = setup
        .registry
        .storage_dir()
        .join("docker/registry/v2/repositories");
    assert!(
        !repositories.exists(),
        "the registry's storage has {}\n{out}",
        repositories.display()
    );
}

/// A temp dir holding `files` (relative path, contents).
fn dir_with(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = support::temp_dir();
    for (path, contents) in files {
        let path = dir.path().join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, contents).unwrap();
    }
    dir
}

const CONFIGMAP: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: good\n";

#[test]
fn create_refuses_a_missing_manifests_directory_and_pushes_nothing() {
    let parent = support::temp_dir();
    let missing = parent.path().join("no-such-dir");
    assert_refused(
        REPOSITORY,
        PROJECT,
        COMMIT_A,
        &missing,
        &[&missing.display().to_string(), "does not exist"],
    );
}

#[test]
fn create_refuses_an_empty_manifests_directory_and_pushes_nothing() {
    let dir = support::temp_dir();
    assert_refused(
        REPOSITORY,
        PROJECT,
        COMMIT_A,
        dir.path(),
        &[&dir.path().display().to_string(), "no .yaml"],
    );
}

#[test]
fn create_refuses_a_non_yaml_file_naming_it_and_pushes_nothing() {
    let dir = dir_with(&[("configmap.yaml", CONFIGMAP), ("README.md", "# notes\n")]);
    assert_refused(
        REPOSITORY,
        PROJECT,
        COMMIT_A,
        dir.path(),
        &["README.md", "expected .yaml, .yml or .json"],
    );
}

#[test]
fn create_refuses_a_document_without_kind_naming_file_and_field_and_pushes_nothing() {
    let dir = dir_with(&[
        ("a-good.yaml", CONFIGMAP),
        (
            "b-bad.yaml",
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\n---\napiVersion: v1\nmetadata:\n  name: no-kind\n",
        ),
    ]);
    assert_refused(
        REPOSITORY,
        PROJECT,
        COMMIT_A,
        dir.path(),
        &["b-bad.yaml", "document 2", "kind"],
    );
}

#[test]
fn create_refuses_invalid_yaml_naming_the_file_and_pushes_nothing() {
    let dir = dir_with(&[("broken.yaml", "apiVersion: v1\nkind: [unclosed\n")]);
    assert_refused(
        REPOSITORY,
        PROJECT,
        COMMIT_A,
        dir.path(),
        &["broken.yaml", "YAML"],
    );
}

#[test]
fn create_refuses_an_invalid_commit_sha_and_pushes_nothing() {
    let dir = dir_with(&[("configmap.yaml", CONFIGMAP)]);
    for bad in [
        "0123456",                                  // short
        "0123456789ABCDEF0123456789ABCDEF01234567", // upper case
        "0123456789abcdef0123456789abcdef0123456g", // not hex
    ] {
        assert_refused(
            REPOSITORY,
            PROJECT,
            bad,
            dir.path(),
            &["--commit", bad, "40"],
        );
    }
}

#[test]
fn create_refuses_an_invalid_repository_name_and_pushes_nothing() {
    let dir = dir_with(&[("configmap.yaml", CONFIGMAP)]);
    for bad in [
        "Company/monorepo",
        "company//monorepo",
        "company/mono_-repo",
        "/company",
    ] {
        assert_refused(bad, PROJECT, COMMIT_A, dir.path(), &["--repository", bad]);
    }
}

#[test]
fn create_refuses_an_invalid_project_name_and_pushes_nothing() {
    let dir = dir_with(&[("configmap.yaml", CONFIGMAP)]);
    assert_refused(
        REPOSITORY,
        "Auth_Service",
        COMMIT_A,
        dir.path(),
        &["--project", "Auth_Service"],
    );
}

#[test]
fn create_refuses_the_same_object_defined_twice_and_pushes_nothing() {
    let dir = dir_with(&[("one.yaml", CONFIGMAP), ("two.yaml", CONFIGMAP)]);
    assert_refused(
        REPOSITORY,
        PROJECT,
        COMMIT_A,
        dir.path(),
        &["two.yaml", "defined twice", "one.yaml"],
    );
}
