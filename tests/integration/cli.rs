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
