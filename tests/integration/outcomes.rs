//! How a run ends, as a pipeline sees it (issue 10): a refusal is an outcome whose report
//! is printed in full before the run exits 4, and a reader that closed stdout early is not a
//! failure.

use std::process::Stdio;

use crate::support::setup::{PROJECT, stdout_json as json};
use crate::support::world::{World, assert_refused};

/// dev deploys freely; prod requires staging first.
const POLICY: &str = "environments:\n  dev: {}\n  staging: {}\n  \
    prod:\n    promotion_policy: {requires: [staging]}\n";

#[test]
fn a_refused_deploy_with_json_output_prints_its_full_decision_report_and_exits_4() {
    let world = World::new(POLICY);
    let release = world.main_release("refused-json");
    let out = assert_refused(
        &world,
        &["-o", "json", "deploy", "prod", PROJECT, "1"],
        &["refused by policy", "requires"],
    );
    let report = json(&out);
    assert_eq!(report["action"], "deploy", "{report:#}");
    assert_eq!(report["result"], "refused: nothing written", "{report:#}");
    assert_eq!(report["commit"], serde_json::Value::Null);
    let item = &report["items"][0];
    assert_eq!(item["environment"], "prod");
    assert_eq!(item["release"]["commit"], release.commit.as_str());
    assert!(
        item["verdict"]
            .as_str()
            .is_some_and(|v| v.starts_with("refused: ")),
        "{report:#}"
    );
    let requires = item["decisions"]
        .as_array()
        .expect("decisions")
        .iter()
        .find(|d| d["rule"] == "requires")
        .unwrap_or_else(|| panic!("no requires decision in {report:#}"));
    assert_eq!(requires["pass"], false, "{report:#}");
}

#[test]
fn a_refused_deploy_with_text_output_prints_every_decision_and_exits_4() {
    let world = World::new(POLICY);
    world.main_release("refused-text");
    let out = assert_refused(&world, &["deploy", "prod", PROJECT, "1"], &["requires"]);
    out.assert_stdout_contains("FAIL requires")
        .assert_stdout_contains("refused: nothing written");
}

#[test]
fn status_into_a_reader_that_already_closed_its_end_exits_0() {
    let world = World::new(POLICY);
    let release = world.main_release("broken-pipe");
    world
        .run(&["deploy", "dev", PROJECT, &release.number.to_string()])
        .assert_success();
    let (reader, writer) = std::io::pipe().expect("create a pipe");
    // The reader is gone before releasectl writes a byte: its write must fail with EPIPE.
    drop(reader);
    let inherited = std::env::vars_os().map(|(name, _)| name);
    let mut command = world.cmd().arg("status").to_command(inherited);
    command.stdout(Stdio::from(writer));
    let output = command.output().expect("run releasectl status");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        output.status.code(),
        Some(0),
        "a closed stdout is not a failure\nstderr: {stderr}"
    );
    assert!(!stderr.contains("error"), "stderr: {stderr}");
}
