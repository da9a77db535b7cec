//! Help texts: every argument of every command has a description, every command has
//! `Examples:`, a command's help shows only the global flags that matter to it, and every
//! example line runs as written against the fixture world.

use std::collections::BTreeSet;
use std::path::Path;

use crate::support::setup::{PROJECT, fixture_manifests};
use crate::support::world::{self, World};
use crate::support::{Cmd, manifest_dir};

/// Every command path (`["release", "create"]`) of the definition, parents before children,
/// in help order; the generated `help` command excluded.
fn paths(command: &clap::Command, prefix: &[String], out: &mut Vec<Vec<String>>) {
    for sub in command.get_subcommands() {
        if sub.get_name() == "help" {
            continue;
        }
        let mut path = prefix.to_vec();
        path.push(sub.get_name().to_owned());
        out.push(path.clone());
        paths(sub, &path, out);
    }
}

fn all_paths() -> Vec<Vec<String>> {
    let mut out = Vec::new();
    paths(&releasectl::cli::command(), &[], &mut out);
    out
}

/// `releasectl PATH --help`, asserting success.
fn help(path: &[String]) -> String {
    let out = Cmd::releasectl().args(path).arg("--help").run();
    out.assert_success();
    out.stdout_str()
}

#[test]
fn every_argument_has_a_description_and_every_command_examples() {
    let mut root = releasectl::cli::command();
    root.build();
    let mut missing = Vec::new();
    let check = |missing: &mut Vec<String>, name: &str, command: &clap::Command| {
        for arg in command.get_arguments() {
            let id = arg.get_id().as_str();
            if id == "help" || id == "version" {
                continue;
            }
            if arg
                .get_help()
                .is_none_or(|h| h.to_string().trim().is_empty())
            {
                missing.push(format!("{name}: argument {id} has no description"));
            }
        }
        if command.get_about().is_none() {
            missing.push(format!("{name}: no description"));
        }
    };
    check(&mut missing, "releasectl", &root);
    if !help(&[]).contains("\nExamples:\n  ") {
        missing.push("releasectl: no Examples: in --help".to_owned());
    }
    let paths = all_paths();
    assert!(paths.len() > 20, "too few commands: {paths:?}");
    for path in &paths {
        let mut command = &root;
        for word in path {
            command = command.find_subcommand(word).expect("a subcommand");
        }
        check(&mut missing, &path.join(" "), command);
        if !help(path).contains("\nExamples:\n  ") {
            missing.push(format!("{}: no Examples: in --help", path.join(" ")));
        }
    }
    assert!(missing.is_empty(), "{}", missing.join("\n"));
}

#[test]
fn a_command_shows_only_the_global_flags_that_matter_to_it() {
    let generate = help(&["generate".into()]);
    for flag in ["--gitops", "--actor", "--output", "--context"] {
        assert!(
            !generate.contains(flag),
            "generate --help shows {flag}:\n{generate}"
        );
    }
    assert!(generate.contains("--registry"), "{generate}");
    let status = help(&["status".into()]);
    assert!(
        !status.contains("--registry") && status.contains("--gitops"),
        "{status}"
    );
    assert!(!generate.contains("--argocd"), "{generate}");
    assert!(help(&["deploy".into()]).contains("--argocd"));
    let version = help(&["version".into()]);
    assert!(
        !version.contains("--gitops") && version.contains("--output"),
        "{version}"
    );
    // Hidden is still accepted, and its environment variable still read.
    Cmd::releasectl()
        .args(["status", "--registry", "oci:/nonexistent", "--gitops"])
        .arg(manifest_dir().join("no-such-repo"))
        .run()
        .assert_failure()
        .assert_stderr_contains("no-such-repo");
}

/// The example lines (`releasectl …`) of `text`'s `Examples:` section.
fn examples(text: &str) -> Vec<String> {
    let Some((_, section)) = text.split_once("\nExamples:\n") else {
        return Vec::new();
    };
    section
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("releasectl "))
        .map(str::to_owned)
        .collect()
}

/// Examples that need more than the fixture world: a registry host, a path outside it, a
/// project it does not have, an SSH key, or a state an earlier example does not leave. Each
/// must still parse (no usage error) and fail for the reason given.
const NEEDS_MORE: &[(&str, &str)] = &[
    ("copy registry.example.com/", "registry.example.com"),
    ("billing=v2.0.1", "billing"),
    ("--override windows", "approv"),
    ("--from staging --to production", "approv"),
    ("--to v1.2.2 --block", "v1.2.2"),
    ("--key ~/.ssh/", "approves once"),
    ("--here --range", "could not find repository"),
    ("--config /etc/releasectl/serve.yaml", "serve.yaml"),
    ("sign registry.example.com/", "registry.example.com"),
    (
        "--server https://releasectl.example.com",
        "releasectl.example.com",
    ),
];

/// Where the examples run: the world's directory, holding its `registry/` layout, the
/// rendered manifests in `rendered/`, and `release.yaml` (and `app/release.yaml`), the
/// pointer dev's deploy wrote.
pub fn example_world() -> World {
    let world = World::example();
    let rendered = world.dir().join("rendered");
    copy_dir(&fixture_manifests(), &rendered);
    world.tagged(&world::sha("v1.2.2"), "v1.2.2");
    world.tagged("0123456789abcdef0123456789abcdef01234567", "v1.2.3");
    world.ok_at(
        "2026-11-23T07:00:00Z",
        &["deploy", "dev", PROJECT, "v1.2.2"],
    );
    world.ok_at(
        "2026-11-23T08:00:00Z",
        &["deploy", "dev", PROJECT, "v1.2.3"],
    );
    let pointer = world
        .remote
        .show_required(&world::pointer_path("dev", PROJECT));
    std::fs::write(world.dir().join("release.yaml"), &pointer).expect("write release.yaml");
    std::fs::create_dir(world.dir().join("app")).expect("mkdir app");
    std::fs::write(world.dir().join("app/release.yaml"), &pointer).expect("write app/");
    crate::signatures::keygen(world.dir(), "cosign");
    world
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read_dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).expect("copy");
        }
    }
}

/// A shell command line run in `world`'s directory, with `releasectl` on PATH and the
/// settings that reach the world in the environment.
pub fn in_world(world: &World, line: &str) -> Cmd {
    let bin = Path::new(env!("CARGO_BIN_EXE_releasectl"))
        .parent()
        .expect("bin dir")
        .to_owned();
    Cmd::new("sh")
        .args(["-c", line])
        .path_prepend(&bin)
        .current_dir(world.dir())
        .env("RELEASECTL_GITOPS", &world.url)
        .env("RELEASECTL_REGISTRY", "oci:registry")
        .env("RELEASECTL_ACTOR", world::ALICE)
        .env("RELEASECTL_NOW", &world.now)
        .env("RELEASECTL_CACHE_DIR", world.cache("examples"))
        .env("RELEASECTL_ALLOW_LAYOUT_POINTERS", "1")
        .env(
            "RELEASECTL_CONFIG",
            world.dir().join("config/releasectl.yaml"),
        )
        .env("SOURCE_DATE_EPOCH", crate::support::setup::EPOCH)
}

#[test]
fn every_example_in_help_runs_as_written() {
    let world = example_world();
    let mut seen = BTreeSet::new();
    let mut ran = 0;
    let mut failures = Vec::new();
    let mut texts = vec![help(&[])];
    texts.extend(all_paths().iter().map(|p| help(p)));
    for text in &texts {
        for line in examples(text) {
            if !seen.insert(line.clone()) {
                continue;
            }
            let out = in_world(&world, &line).run();
            ran += 1;
            let said = format!("{}{}", out.stdout_str(), out.stderr_str());
            let wrong = if said.contains("For more information, try '--help'") {
                Some("a usage error".to_owned())
            } else {
                match NEEDS_MORE.iter().find(|(marker, _)| line.contains(marker)) {
                    Some((_, reason)) if out.success() || !said.contains(reason) => {
                        Some(format!("expected a failure naming {reason:?}"))
                    }
                    None if !out.success() => Some("expected success".to_owned()),
                    _ => None,
                }
            };
            if let Some(wrong) = wrong {
                failures.push(format!("{wrong}: {out}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    assert!(ran > 40, "only {ran} examples ran");
    assert!(
        world
            .remote
            .show(&world::pointer_path("staging", PROJECT))
            .is_some(),
        "the promotion example did not reach staging"
    );
}
