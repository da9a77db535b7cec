//! The command line around the commands: version, completions and man pages, all generated
//! from the one clap definition.

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
    with_config(&["config", "use-context", "prod"]).assert_success();
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
