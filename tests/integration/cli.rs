//! The command line around the commands: version, completions and man pages, all generated
//! from the one clap definition; contexts and log levels; and the small things that must not
//! surprise (files left in a layout, a destination shown as written, a directory that is not
//! a layout, the pointer named in generate's errors, a clean non-terminal stderr).

use crate::support::Cmd;

fn run(args: &[&str]) -> crate::support::cmd::Output {
    Cmd::releasectl().args(args).run()
}

#[test]
fn version_names_the_build_in_text_and_json() {
    let text = run(&["version"]);
    text.assert_success()
        .assert_stdout_contains(&format!("releasectl {}", env!("CARGO_PKG_VERSION")))
        .assert_stdout_contains("commit:")
        .assert_stdout_contains("rustc");
    let json = run(&["-o", "json", "version"]);
    json.assert_success();
    let v: serde_json::Value = serde_json::from_str(&json.stdout_str()).expect("version JSON");
    assert_eq!(v["version"], env!("CARGO_PKG_VERSION"));
    for key in ["commit", "build_date", "rustc"] {
        assert!(
            v[key].as_str().is_some_and(|s| !s.is_empty()),
            "{key} missing in {v}"
        );
    }
    let flag = run(&["--version"]);
    flag.assert_success()
        .assert_stdout_contains(v["commit"].as_str().expect("commit"));
}

#[test]
fn completions_cover_every_shell_and_every_command() {
    for (shell, marker) in [
        ("bash", "_releasectl()"),
        ("zsh", "#compdef releasectl"),
        ("fish", "complete -c releasectl"),
        ("powershell", "Register-ArgumentCompleter"),
    ] {
        let out = run(&["completion", shell]);
        out.assert_success().assert_stdout_contains(marker);
        for command in ["deploy", "rollback", "generate", "completion"] {
            out.assert_stdout_contains(command);
        }
    }
    run(&["completion", "tcsh"]).assert_exit(2);
}

#[test]
fn man_pages_render_for_the_program_and_nested_commands() {
    run(&["man"])
        .assert_success()
        .assert_stdout_contains(".TH releasectl 1");
    run(&["man", "release", "create"])
        .assert_success()
        .assert_stdout_contains(".TH releasectl-release-create 1")
        .assert_stdout_contains("\\-\\-manifests");
    run(&["man", "deploy", "bogus"])
        .assert_exit(2)
        .assert_stdout_empty()
        .assert_stderr_contains("man deploy bogus: no such command");
}

#[test]
fn contexts_are_created_listed_switched_and_fill_what_flags_leave_unset() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("releasectl/config.yaml");
    let with_config = |args: &[&str]| {
        Cmd::releasectl()
            .env("RELEASECTL_CONFIG", &config)
            .args(args)
            .run()
    };
    let missing = dir.path().join("no-such-repo");
    with_config(&[
        "config",
        "set-context",
        "lab",
        "--gitops",
        missing.to_str().expect("utf-8"),
        "--actor",
        "lab@company.com",
    ])
    .assert_success()
    .assert_stdout_contains("Context lab created.");
    with_config(&[
        "config",
        "set-context",
        "prod",
        "--gitops-branch",
        "release",
    ])
    .assert_success();
    with_config(&["config", "current-context"])
        .assert_success()
        .assert_stdout_contains("lab");
    let listed = with_config(&["-o", "json", "config", "get-contexts"]);
    listed.assert_success();
    let v: serde_json::Value = serde_json::from_str(&listed.stdout_str()).expect("JSON");
    assert_eq!(v[0]["name"], "lab");
    assert_eq!(v[0]["current"], true);
    assert_eq!(v[1]["gitops_branch"], "release");
    // The current context's repository is used when no flag names one...
    with_config(&["status"])
        .assert_failure()
        .assert_stderr_contains("no-such-repo");
    // ...a flag wins over it...
    let other = dir.path().join("flag-repo");
    with_config(&["--gitops", other.to_str().expect("utf-8"), "status"])
        .assert_failure()
        .assert_stderr_contains("flag-repo");
    // ...and an unknown context is a usage error naming the known ones.
    with_config(&["--context", "staging", "status"])
        .assert_exit(2)
        .assert_stderr_contains("no context staging: expected one of lab, prod");
    with_config(&["config", "use-context", "nope"]).assert_exit(2);
    // A message, not data: printed as it is whatever -o asks.
    with_config(&["-o", "yaml", "config", "use-context", "prod"])
        .assert_success()
        .assert_stdout_contains("prod");
    with_config(&["config", "current-context"]).assert_stdout_contains("prod");
}

#[test]
fn an_unknown_log_level_is_a_usage_error() {
    Cmd::releasectl()
        .env("RELEASECTL_LOG", "bogus")
        .arg("version")
        .run()
        .assert_exit(2)
        .assert_stderr_contains("RELEASECTL_LOG is \"bogus\": expected quiet, info or debug");
    run(&["--log-level", "loud", "version"]).assert_exit(2);
    run(&["-vv", "version"]).assert_success();
}

/// The names in `dir`, sorted.
fn names(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn copy_and_create_leave_only_layout_files_and_a_clean_stderr_when_it_is_not_a_terminal() {
    use crate::support::setup::{PROJECT, REPOSITORY};
    let world = crate::support::world::World::example();
    let release = world.tagged(&crate::support::world::sha("lock"), "v1.0.0");
    let layout = world.dir().join("registry").join(REPOSITORY).join(PROJECT);
    assert_eq!(names(&layout), ["blobs", "index.json", "oci-layout"]);
    let source = format!("oci:{}:{}", layout.display(), release.commit);
    let copy = world.dir().join("airgap/company/monorepo/auth-service");
    let out = Cmd::releasectl()
        .args(["copy", &source])
        .arg(format!("oci:{}", copy.display()))
        .run();
    out.assert_success();
    assert_eq!(
        out.stderr_str(),
        "",
        "progress or noise on a non-terminal stderr"
    );
    assert_eq!(names(&copy), ["blobs", "index.json", "oci-layout"]);
    // The copy is where --registry oci:airgap looks for the project.
    Cmd::releasectl()
        .arg("--registry")
        .arg(format!("oci:{}", world.dir().join("airgap").display()))
        .args([
            "verify",
            &format!("oci:{}:{}", copy.display(), release.commit),
        ])
        .run()
        .assert_success();
}

#[test]
fn copy_refuses_a_directory_that_is_not_a_layout_and_shows_the_destination_as_written() {
    let world = crate::support::world::World::example();
    let release = world.tagged(&crate::support::world::sha("dest"), "v1.0.0");
    let source = format!(
        "{}/company/monorepo/auth-service:{}",
        world.registry(),
        release.commit
    );
    let out = Cmd::releasectl().args(["copy", &source, "oci:"]).run();
    out.assert_exit(2).assert_stderr_contains("\"oci:\"");
    assert!(!out.stderr_str().contains("oci::"), "{out}");
    let photos = world.dir().join("photos");
    std::fs::create_dir(&photos).expect("mkdir");
    std::fs::write(photos.join("holiday.jpg"), b"jpeg").expect("write");
    Cmd::releasectl()
        .args(["copy", &source])
        .arg(format!("oci:{}", photos.display()))
        .run()
        .assert_failure()
        .assert_stderr_contains("is not an OCI layout")
        .assert_stderr_contains("holiday.jpg");
    assert_eq!(names(&photos), ["holiday.jpg"], "layout files were added");
}

#[test]
fn generate_names_the_pointer_it_was_given_in_its_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pointer = crate::support::manifest_dir()
        .join("fixtures/gitops/dev/apps/company/monorepo/auth-service/release.yaml");
    std::fs::copy(&pointer, dir.path().join("release.yaml")).expect("copy");
    std::fs::copy(&pointer, dir.path().join("wrong.yaml")).expect("copy");
    Cmd::releasectl()
        .current_dir(dir.path())
        .args(["generate", "--pointer", "wrong.yaml"])
        .run()
        .assert_exit(2)
        .assert_stderr_contains("unexpected \"release.yaml\" next to the ReleasePointer \"wrong.yaml\": expected only wrong.yaml and env.yaml");
    Cmd::releasectl()
        .current_dir(dir.path())
        .args(["generate", "--pointer", "missing.yaml"])
        .run()
        .assert_exit(2)
        .assert_stderr_contains("missing.yaml: no ReleasePointer here");
}

#[test]
fn a_relative_oci_registry_in_a_pointer_is_relative_to_the_pointer_and_a_flags_to_the_working_directory()
 {
    let root = crate::support::manifest_dir();
    let dir = tempfile::tempdir().expect("tempdir");
    let app = dir.path().join("gitops/dev/auth-service");
    std::fs::create_dir_all(&app).expect("mkdir");
    let pointer = std::fs::read_to_string(
        root.join("fixtures/gitops/dev/apps/company/monorepo/auth-service/release.yaml"),
    )
    .expect("fixture pointer");
    // The fixture pointer's spec ends the file: a registry appended there is the spec's.
    // Relative to the pointer's directory: ../../../registry from gitops/dev/auth-service.
    let relative = format!("{pointer}  registry: \"oci:../../../registry\"\n");
    std::os::unix::fs::symlink(root.join("fixtures/registry"), dir.path().join("registry"))
        .expect("symlink");
    std::fs::write(app.join("release.yaml"), relative).expect("write pointer");
    Cmd::releasectl()
        .current_dir(root)
        .env("RELEASECTL_ALLOW_LAYOUT_POINTERS", "1")
        .arg("generate")
        .arg("--pointer")
        .arg(app.join("release.yaml"))
        .run()
        .assert_success()
        .assert_stdout_contains("kind: Deployment");
    // The fixture's own pointer, in its application directory, with the registry as the
    // README sets it (an absolute path).
    Cmd::releasectl()
        .current_dir(root.join("fixtures/gitops/dev/apps/company/monorepo/auth-service"))
        .env(
            "RELEASECTL_REGISTRY",
            format!("oci:{}", root.join("fixtures/registry").display()),
        )
        .arg("generate")
        .run()
        .assert_success()
        .assert_stdout_contains("image: registry.example.com/company/auth-service@sha256:");
}
