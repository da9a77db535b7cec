//! `-o text|json|yaml`: one JSON style (pretty, 2-space, a trailing newline) in every
//! command, YAML as the same structure, aliases as `{alias, type}` everywhere, a clear refusal
//! where a command's output has a format of its own; `diff --exit-code`; `history ENV`.

use serde_json::Value;

use crate::support::setup::{PROJECT, fixture_manifests};
use crate::support::world::{self, World};

/// Asserts the JSON style of `stdout`, and returns it parsed.
#[track_caller]
fn pretty(what: &str, stdout: &str) -> Value {
    let value: Value = serde_json::from_str(stdout)
        .unwrap_or_else(|e| panic!("{what}: not JSON ({e}):\n{stdout}"));
    let expected = format!(
        "{}\n",
        serde_json::to_string_pretty(&value).expect("serialise")
    );
    // Same style: the same length and lines as serde's pretty printer (key order aside).
    assert_eq!(
        stdout.len(),
        expected.len(),
        "{what}: not pretty JSON:\n{stdout}"
    );
    assert_eq!(
        stdout.lines().count(),
        expected.lines().count(),
        "{what}: not pretty JSON:\n{stdout}"
    );
    value
}

/// A world with two releases of auth-service (the second with one more object), both run in
/// dev, and one of a second project.
fn world_with_history() -> (World, world::Release, world::Release) {
    let world = World::example();
    let first = world.tagged(&world::sha("first"), "v1.0.0");
    let dir = tempfile::tempdir().expect("tempdir");
    for entry in std::fs::read_dir(fixture_manifests()).expect("read fixtures") {
        let entry = entry.expect("entry");
        std::fs::copy(entry.path(), dir.path().join(entry.file_name())).expect("copy");
    }
    std::fs::write(
        dir.path().join("extra.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: extra\n  namespace: auth\ndata:\n  A: b\n",
    )
    .expect("write extra");
    let second = world.create_from(
        PROJECT,
        &world::sha("second"),
        dir.path(),
        &[
            "--source-branch",
            "main",
            "--source-tag",
            "auth-service/v1.1.0",
        ],
    );
    world.keep(dir);
    world.create(
        "billing",
        &world::sha("billing"),
        &["--source-branch", "main"],
    );
    world.ok_at(
        "2026-11-23T07:00:00Z",
        &["deploy", "dev", PROJECT, "v1.0.0"],
    );
    world.ok_at(
        "2026-11-23T08:00:00Z",
        &["deploy", "dev", "billing", "main-1"],
    );
    world.ok_at(
        "2026-11-23T09:00:00Z",
        &["deploy", "dev", PROJECT, "v1.1.0"],
    );
    (world, first, second)
}

#[test]
fn every_data_command_prints_pretty_json_and_the_same_structure_as_yaml() {
    let (world, first, _) = world_with_history();
    let image = format!(
        "{}/company/monorepo/{PROJECT}:{}",
        world.registry(),
        first.commit
    );
    let copy_to = format!("oci:{}/copy", world.dir().display());
    let commands: Vec<Vec<&str>> = vec![
        vec!["version"],
        vec!["status"],
        vec!["history", "dev", PROJECT],
        vec!["history", "dev"],
        vec!["release", "get", PROJECT, "v1.0.0"],
        vec!["release", "list", PROJECT],
        vec!["inspect", &image],
        vec!["verify", &image],
        vec!["copy", &image, &copy_to],
        vec!["diff", "dev", PROJECT, "v1.0.0"],
        vec!["check"],
        vec!["deploy", "staging", PROJECT, "v1.0.0", "--dry-run"],
    ];
    for command in &commands {
        let what = command.join(" ");
        let json = world.run(&[&["-o", "json"], command.as_slice()].concat());
        assert!(json.code() != Some(2), "{json}");
        let value = pretty(&what, &json.stdout_str());
        let yaml = world.run(&[&["-o", "yaml"], command.as_slice()].concat());
        assert_eq!(yaml.code(), json.code(), "{what}: {yaml}");
        let text = yaml.stdout_str();
        assert!(
            !text.trim_start().starts_with('{'),
            "{what}: JSON, not YAML:\n{text}"
        );
        assert_eq!(
            world::yaml(&text),
            value,
            "{what}: -o yaml differs from -o json"
        );
    }
}

#[test]
fn aliases_are_alias_and_type_objects_in_status_release_get_and_create() {
    let (world, _, second) = world_with_history();
    let status = world.ok(&["-o", "json", "status", PROJECT]);
    let status: Value = serde_json::from_str(&status.stdout_str()).expect("JSON");
    let get = world.ok(&["-o", "json", "release", "get", PROJECT, &second.tag]);
    let get: Value = serde_json::from_str(&get.stdout_str()).expect("JSON");
    assert_eq!(status[0]["aliases"], get["aliases"], "{status}\n{get}");
    assert_eq!(get["aliases"][0]["alias"], "v1.1.0", "{get}");
    assert_eq!(get["aliases"][0]["type"], "tag", "{get}");
    // `release create -o json` printed the same objects (the world read `aliases[0].alias`).
    assert_eq!(second.tag, "v1.1.0");
}

#[test]
fn commands_with_a_format_of_their_own_refuse_json_and_yaml_naming_why() {
    let world = World::example();
    for (args, name) in [
        (&["-o", "json", "generate"][..], "generate"),
        (&["-o", "yaml", "generate", "--parameters"][..], "generate"),
        (&["-o", "json", "completion", "bash"][..], "completion"),
        (&["-o", "yaml", "man"][..], "man"),
    ] {
        world
            .run(args)
            .assert_exit(2)
            .assert_stdout_empty()
            .assert_stderr_contains(&format!("{name} prints"))
            .assert_stderr_contains("in no other format");
    }
}

#[test]
fn diff_exit_code_is_1_with_differences_and_0_without() {
    let (world, first, second) = world_with_history();
    // dev runs the second release: the first lacks one object...
    let out = world.run(&["diff", "--exit-code", "dev", PROJECT, &first.tag]);
    out.assert_exit(1)
        .assert_stdout_contains("1 removed")
        .assert_stdout_contains("- ConfigMap auth/extra");
    assert!(!out.stderr_str().contains("error:"), "{out}");
    // ...the same release has none, and without the flag differences still exit 0.
    world
        .run(&["diff", "--exit-code", "dev", PROJECT, &second.tag])
        .assert_success()
        .assert_stdout_contains("0 added, 0 removed, 0 changed");
    world
        .run(&["diff", "dev", PROJECT, &first.tag])
        .assert_success();
}

#[test]
fn history_of_an_environment_lists_every_project_newest_first() {
    let (world, _, _) = world_with_history();
    let out = world.ok(&["-o", "json", "history", "dev"]);
    let events: Value = serde_json::from_str(&out.stdout_str()).expect("JSON");
    let seen: Vec<(&str, &str)> = events
        .as_array()
        .expect("a list")
        .iter()
        .map(|e| {
            (
                e["project"].as_str().expect("project"),
                e["label"].as_str().expect("label"),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("company/monorepo/auth-service", "2 (v1.1.0)"),
            ("company/monorepo/billing", "1 (main-1)"),
            ("company/monorepo/auth-service", "1 (v1.0.0)"),
        ],
        "{out}"
    );
    let text = world.ok(&["history", "dev"]);
    text.assert_stdout_contains("PROJECT")
        .assert_stdout_contains("company/monorepo/billing");
    // One project's history names no other.
    let one = world.ok(&["history", "dev", PROJECT]);
    assert!(!one.stdout_str().contains("billing"), "{one}");
}
