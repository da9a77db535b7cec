//! Closing the loop with Argo CD (issue 16, docs/argocd.md "Waiting for Argo CD"): `--wait`
//! against the stand-in server, the outcome notes in `refs/notes/releasectl`, `status --live`,
//! `summary`, and the policy keys that read outcomes.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::argocd::{ArgoCd, TOKEN, frame};
use crate::support::setup::{PROJECT, stdout_json};
use crate::support::world::World;

const POLICY: &str = "environments:\n  dev: {}\n  staging: {}\n  prod: {}\n";
const DEV_APP: &str = "dev-company-monorepo-auth-service";

/// The note on `commit` in the remote's `refs/notes/releasectl`, parsed.
fn note(world: &World, commit: &str) -> Value {
    let text = world
        .remote
        .git_ok(&["notes", "--ref", "refs/notes/releasectl", "show", commit]);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// `deploy ENV auth-service ID --wait --wait-timeout 20s EXTRA…` against `argo`.
pub(crate) fn wait_deploy(
    world: &World,
    argo: &ArgoCd,
    env: &str,
    id: &str,
    extra: &[&str],
) -> crate::support::Output {
    wait_deploy_within(world, argo, env, id, "20s", extra)
}

/// `deploy ENV auth-service ID --wait --wait-timeout TIMEOUT EXTRA…` against `argo`.
fn wait_deploy_within(
    world: &World,
    argo: &ArgoCd,
    env: &str,
    id: &str,
    timeout: &str,
    extra: &[&str],
) -> crate::support::Output {
    argo.on(world.cmd())
        .args([
            "deploy",
            env,
            PROJECT,
            id,
            "--wait",
            "--wait-timeout",
            timeout,
        ])
        .args(extra)
        .run()
}

#[test]
fn a_deploy_that_becomes_synced_and_healthy_after_progressing_exits_0_and_records_succeeded() {
    let world = World::new(POLICY);
    let release = world.main_release("argo-ok");
    let argo = ArgoCd::start(
        &world,
        &json!({DEV_APP: [
            frame(0.0, "OutOfSync", "Healthy", "@start"),
            frame(1.0, "Synced", "Progressing", "@tip"),
            frame(2.0, "Synced", "Healthy", "@tip"),
        ]}),
    );
    let started = Instant::now();
    let out = wait_deploy(&world, &argo, "dev", "1", &["-o", "json"]);
    out.assert_success();
    assert!(started.elapsed() >= Duration::from_secs(2), "{out}");
    let report = stdout_json(&out);
    let tip = world.remote.main_sha().expect("a tip");
    assert_eq!(report["outcomes"][0]["state"], "succeeded", "{report:#}");
    let n = note(&world, &tip);
    let o = &n["outcomes"][0];
    assert_eq!(o["state"], "succeeded");
    assert_eq!(o["environment"], "dev");
    assert_eq!(o["release"], release.commit.as_str());
    assert_eq!(o["sync_revision"], tip.as_str());
    assert_eq!(
        (o["sync_status"].as_str(), o["health"].as_str()),
        (Some("Synced"), Some("Healthy"))
    );
    // The branch Argo CD reads got no commit for the note.
    assert_eq!(world.remote.main_sha().as_deref(), Some(tip.as_str()));
    // The Application is read by name, then followed on Argo CD's watch stream.
    let requests = argo.requests();
    assert_eq!(
        requests[0]["path"],
        format!("/api/v1/applications/{DEV_APP}")
    );
    assert!(
        requests
            .iter()
            .any(|r| r["path"] == "/api/v1/stream/applications"
                && r["query"]["name"] == json!([DEV_APP])),
        "{requests:#?}"
    );
}

#[test]
fn a_degraded_application_exits_7_naming_its_conditions_and_unhealthy_resources() {
    let world = World::new(POLICY);
    world.main_release("argo-degraded");
    let argo = ArgoCd::start(
        &world,
        &json!({DEV_APP: [
            frame(0.0, "Synced", "Progressing", "@tip"),
            {"after": 1.0, "sync": "Synced", "health": "Degraded", "revision": "@tip",
             "conditions": [{"type": "SyncError", "message": "quota exceeded\nerror: forged"}],
             "resources": [{"kind": "Deployment", "namespace": "auth", "name": "auth-service",
                            "health": {"status": "Degraded", "message": "CrashLoopBackOff"}}]},
        ]}),
    );
    let out = wait_deploy(&world, &argo, "dev", "1", &[]);
    out.assert_exit(7);
    out.assert_stderr_contains("deployed but not healthy");
    out.assert_stderr_contains("Deployment auth/auth-service is Degraded (CrashLoopBackOff)");
    out.assert_stderr_contains("condition SyncError: quota exceeded\\nerror: forged");
    let tip = world.remote.main_sha().expect("a tip");
    assert_eq!(note(&world, &tip)["outcomes"][0]["state"], "failed");
}

#[test]
fn a_failed_sync_operation_exits_7_with_its_message() {
    let world = World::new(POLICY);
    world.main_release("argo-syncfail");
    let argo = ArgoCd::start(
        &world,
        &json!({DEV_APP: [
            {"after": 0.0, "sync": "OutOfSync", "health": "Missing", "revision": "@tip",
             "phase": "Failed", "message": "one or more objects failed to apply"},
        ]}),
    );
    let out = wait_deploy(&world, &argo, "dev", "1", &[]);
    out.assert_exit(7);
    out.assert_stderr_contains("sync Failed: one or more objects failed to apply");
}

#[test]
fn the_wait_ends_at_its_deadline_with_exit_7_and_a_timed_out_note() {
    let world = World::new(POLICY);
    world.main_release("argo-slow");
    let argo = ArgoCd::start(
        &world,
        &json!({DEV_APP: [frame(0.0, "Synced", "Progressing", "@tip")]}),
    );
    let started = Instant::now();
    let out = wait_deploy_within(&world, &argo, "dev", "1", "3s", &[]);
    out.assert_exit(7);
    let took = started.elapsed();
    assert!(
        took >= Duration::from_secs(3) && took < Duration::from_secs(15),
        "{took:?} {out}"
    );
    out.assert_stderr_contains("timed_out");
    let tip = world.remote.main_sha().expect("a tip");
    assert_eq!(note(&world, &tip)["outcomes"][0]["state"], "timed_out");
}

#[test]
fn a_stalled_server_still_ends_the_wait_at_its_deadline() {
    let world = World::new(POLICY);
    world.main_release("argo-stall");
    let argo = ArgoCd::start(&world, &json!({DEV_APP: [{"after": 0.0, "stall": true}]}));
    let started = Instant::now();
    let out = wait_deploy_within(&world, &argo, "dev", "1", "3s", &[]);
    out.assert_exit(7);
    assert!(started.elapsed() < Duration::from_secs(15), "{out}");
    out.assert_stderr_contains("timed_out");
}

#[test]
fn a_stalled_watch_stream_falls_back_to_reading_the_application() {
    let world = World::new(POLICY);
    world.main_release("argo-stream-stall");
    let argo = ArgoCd::start(
        &world,
        &json!({DEV_APP: [
            frame(0.0, "Synced", "Progressing", "@tip"),
            {"after": 1.0, "sync": "Synced", "health": "Healthy", "revision": "@tip", "stream_stall": true},
        ]}),
    );
    let started = Instant::now();
    let out = wait_deploy_within(&world, &argo, "dev", "1", "30s", &[]);
    out.assert_success();
    assert!(started.elapsed() < Duration::from_secs(15), "{out}");
    let gets = argo
        .requests()
        .iter()
        .filter(|r| r["path"] == format!("/api/v1/applications/{DEV_APP}"))
        .count();
    assert!(gets >= 2, "the Application was read only {gets} times");
}

#[test]
fn unauthorized_forbidden_and_missing_applications_fail_at_once_naming_app_and_server() {
    let world = World::new(POLICY);
    world.main_release("argo-denied");
    world.main_release("argo-denied-2");
    let argo = ArgoCd::start(
        &world,
        &json!({"staging-company-monorepo-auth-service": [{"after": 0.0, "status": 403}]}),
    );
    // A wrong token: 401.
    let out = world
        .cmd()
        .args(["--argocd", &argo.url, "--argocd-insecure", "-vv"])
        .env("RELEASECTL_ARGOCD_TOKEN", "wrong-token-value")
        .args(["deploy", "dev", PROJECT, "1", "--wait"])
        .run();
    out.assert_exit(5);
    out.assert_stderr_contains("but --wait failed");
    out.assert_stderr_contains(&format!("argo cd {}: application {DEV_APP}: 401", argo.url));
    // The write landed before the wait began, and the report says so.
    out.assert_stdout_contains("deployed: ");
    out.assert_no_leak("wrong-token-value");
    // 403 for an Application the account may not read.
    let out = wait_deploy(&world, &argo, "staging", "1", &[]);
    out.assert_exit(5);
    out.assert_stderr_contains("application staging-company-monorepo-auth-service: 403");
    // 404 for an Application that does not exist.
    let out = wait_deploy(&world, &argo, "prod", "1", &[]);
    out.assert_exit(5);
    out.assert_stderr_contains("application prod-company-monorepo-auth-service not found (404)");
}

#[test]
fn the_token_never_appears_in_output_or_debug_logs() {
    let world = World::new(POLICY);
    world.main_release("argo-token");
    let argo = ArgoCd::start(
        &world,
        &json!({DEV_APP: [frame(0.0, "Synced", "Healthy", "@tip")]}),
    );
    let out = argo
        .on(world.cmd())
        .args(["-vv", "deploy", "dev", PROJECT, "1", "--wait"])
        .run();
    out.assert_success().assert_no_leak(TOKEN);
    let out = argo
        .on(world.cmd())
        .args(["-vv", "-o", "json", "status", "--live"])
        .run();
    out.assert_success().assert_no_leak(TOKEN);
    assert!(argo.requests().iter().all(|r| r["authorized"] == true));
}

#[test]
fn a_deploy_overtaken_while_waiting_succeeds_when_the_later_revision_contains_it() {
    let world = World::new(POLICY);
    world.main_release("argo-first");
    // Argo CD shows the old revision for 2 s, then the branch tip, which by then is a later
    // commit on top of ours.
    let argo = ArgoCd::start(
        &world,
        &json!({DEV_APP: [
            frame(0.0, "OutOfSync", "Healthy", "@start"),
            frame(2.5, "Synced", "Healthy", "@tip"),
        ]}),
    );
    let child = argo
        .on(world.cmd())
        .args([
            "-o",
            "json",
            "deploy",
            "dev",
            PROJECT,
            "1",
            "--wait",
            "--wait-timeout",
            "20s",
        ])
        .to_command(std::iter::empty())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn the waiting deploy");
    let start = world.remote.git_ok(&["rev-parse", "main"]);
    let deadline = Instant::now() + Duration::from_secs(20);
    while world.remote.git_ok(&["rev-parse", "main"]) == start {
        assert!(Instant::now() < deadline, "the first deploy never landed");
        std::thread::sleep(Duration::from_millis(50));
    }
    let ours = world.remote.git_ok(&["rev-parse", "main"]);
    let later = world.hand_push(&[("README.md", Some("later\n"))], "A later commit");
    let out = child.wait_with_output().expect("the deploy ends");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let n = note(&world, ours.trim());
    assert_eq!(n["outcomes"][0]["state"], "succeeded");
    assert_eq!(n["outcomes"][0]["sync_revision"], later.trim());
}

#[test]
fn outcome_notes_of_concurrent_writers_all_land() {
    let world = World::new("environments:\n  a: {}\n  b: {}\n  c: {}\n  d: {}\n");
    world.main_release("argo-concurrent");
    let envs = ["a", "b", "c", "d"];
    let apps: serde_json::Map<String, Value> = envs
        .iter()
        .map(|e| {
            (
                format!("{e}-company-monorepo-auth-service"),
                json!([frame(0.0, "Synced", "Healthy", "@tip")]),
            )
        })
        .collect();
    let argo = ArgoCd::start(&world, &Value::Object(apps));
    // The stand-in answers `@tip`, and each deploy's commit is contained in a later tip, so
    // every wait succeeds once its own commit landed.
    let children: Vec<_> = envs
        .iter()
        .map(|e| {
            argo.on(world.cmd())
                .env("RELEASECTL_CACHE_DIR", world.cache(e))
                .args(["deploy", e, PROJECT, "1", "--wait", "--wait-timeout", "30s"])
                .to_command(std::iter::empty())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("spawn")
        })
        .collect();
    for c in children {
        let out = c.wait_with_output().expect("wait");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let listed = world
        .remote
        .git_ok(&["notes", "--ref", "refs/notes/releasectl", "list"]);
    assert_eq!(listed.lines().count(), 4, "{listed}");
    let mut seen: Vec<String> = listed
        .lines()
        .map(|l| {
            let commit = l.split_whitespace().nth(1).expect("annotated commit");
            note(&world, commit)["outcomes"][0]["environment"]
                .as_str()
                .expect("environment")
                .to_owned()
        })
        .collect();
    seen.sort();
    assert_eq!(seen, envs);
}

#[test]
fn status_and_history_show_the_outcome_and_status_live_shows_argo_cds_view() {
    let world = World::new(POLICY);
    world.main_release("argo-status");
    let argo = ArgoCd::start(
        &world,
        &json!({DEV_APP: [frame(0.0, "Synced", "Healthy", "@tip")]}),
    );
    wait_deploy(&world, &argo, "dev", "1", &[]).assert_success();
    let rows = stdout_json(&world.ok(&["-o", "json", "status"]));
    assert_eq!(rows[0]["outcome"], "succeeded", "{rows:#}");
    let events = stdout_json(&world.ok(&["-o", "json", "history", "dev", PROJECT]));
    assert_eq!(events[0]["outcome"], "succeeded", "{events:#}");
    let out = argo
        .on(world.cmd())
        .args(["-o", "json", "status", "--live"])
        .run();
    out.assert_success();
    let rows = stdout_json(&out);
    assert_eq!(rows[0]["live"]["sync"], "Synced", "{rows:#}");
    assert_eq!(rows[0]["live"]["health"], "Healthy", "{rows:#}");
    assert_eq!(rows[0]["live"]["at_pointer"], true, "{rows:#}");
    let text = argo.on(world.cmd()).args(["status", "--live"]).run();
    text.assert_success()
        .assert_stdout_contains("Synced/Healthy");
    // A later deploy without `--wait` wrote the pointer: the earlier outcome is not its own.
    world.main_release("argo-status-2");
    world.ok(&["deploy", "dev", PROJECT, "2"]);
    let rows = stdout_json(&world.ok(&["-o", "json", "status"]));
    assert_eq!(rows[0]["number"], 2, "{rows:#}");
    assert!(rows[0]["outcome"].is_null(), "{rows:#}");
    // Waited on again, it has its own.
    wait_deploy(&world, &argo, "dev", "1", &[]).assert_success();
    let rows = stdout_json(&world.ok(&["-o", "json", "status"]));
    assert_eq!(rows[0]["number"], 1, "{rows:#}");
    assert_eq!(rows[0]["outcome"], "succeeded", "{rows:#}");
}

#[test]
fn summary_counts_deployments_active_services_completed_failed_and_rolled_back() {
    let world = World::new(POLICY);
    world.main_release("argo-sum-1");
    world.main_release("argo-sum-2");
    let argo = ArgoCd::start(
        &world,
        &json!({DEV_APP: [frame(0.0, "Synced", "Healthy", "@tip")],
               "staging-company-monorepo-auth-service": [frame(0.0, "Synced", "Degraded", "@tip")]}),
    );
    wait_deploy(&world, &argo, "dev", "1", &[]).assert_success();
    wait_deploy(&world, &argo, "dev", "2", &[]).assert_success();
    wait_deploy(&world, &argo, "staging", "1", &[]).assert_exit(7);
    world.ok(&["rollback", "dev", PROJECT]);
    let s = stdout_json(&world.ok(&["-o", "json", "summary"]));
    let dev = &s["environments"]["dev"];
    assert_eq!(dev["deployments"], 2, "{s:#}");
    assert_eq!(dev["completed"], 2, "{s:#}");
    assert_eq!(dev["rolled_back"], 1, "{s:#}");
    assert_eq!(dev["active_services"], 1, "{s:#}");
    assert_eq!(s["environments"]["staging"]["failed"], 1, "{s:#}");
    assert_eq!(s["overall"]["deployments"], 3, "{s:#}");
    assert_eq!(s["overall"]["failed"], 1, "{s:#}");
    assert_eq!(s["overall"]["active_services"], 1, "{s:#}");
    world.ok(&["summary"]).assert_stdout_contains("(overall)");
}

#[test]
fn requires_healthy_admits_a_release_only_after_a_succeeded_wait_in_that_environment() {
    let world = World::new(
        "environments:\n  staging: {}\n  prod:\n    promotion_policy: {requires: [{environment: staging, healthy: true}]}\n",
    );
    world.main_release("argo-healthy");
    let argo = ArgoCd::start(
        &world,
        &json!({"staging-company-monorepo-auth-service": [frame(0.0, "Synced", "Healthy", "@tip")]}),
    );
    world.ok(&["deploy", "staging", PROJECT, "1"]);
    let out = world.run(&["deploy", "prod", PROJECT, "1"]);
    out.assert_exit(4);
    out.assert_stdout_contains("FAIL healthy");
    out.assert_stdout_contains("no succeeded outcome recorded in staging");
    // Waiting on a no-op deploy records nothing: deploy another release, then come back.
    world.main_release("argo-healthy-2");
    world.ok(&["deploy", "staging", PROJECT, "2"]);
    let back = argo
        .on(world.cmd())
        .args(["rollback", "staging", PROJECT, "--wait"])
        .run();
    back.assert_success();
    let out = world.run(&["deploy", "prod", PROJECT, "1"]);
    out.assert_success();
    out.assert_stdout_contains("pass healthy");
}

#[test]
fn retry_limit_refuses_a_release_that_failed_that_often_until_overridden() {
    let world = World::new("environments:\n  dev:\n    promotion_policy: {retry_limit: 1}\n");
    world.main_release("argo-retry-1");
    world.main_release("argo-retry-2");
    let argo = ArgoCd::start(
        &world,
        &json!({DEV_APP: [frame(0.0, "Synced", "Degraded", "@tip")]}),
    );
    wait_deploy(&world, &argo, "dev", "1", &[]).assert_exit(7);
    world.ok(&["deploy", "dev", PROJECT, "2"]);
    let out = world.run(&["deploy", "dev", PROJECT, "1"]);
    out.assert_exit(4);
    out.assert_stdout_contains("FAIL retry_limit");
    out.assert_stdout_contains("1 failed");
    world.ok(&[
        "deploy",
        "dev",
        PROJECT,
        "1",
        "--override",
        "retry_limit",
        "--reason",
        "fixed the config map",
    ]);
}

#[test]
fn on_failure_rollback_rolls_a_degraded_release_back_and_blocks_it_with_a_descriptive_commit() {
    let world = World::new("environments:\n  dev:\n    promotion_policy: {on_failure: rollback}\n");
    let first = world.main_release("argo-onfail-1");
    let second = world.main_release("argo-onfail-2");
    world.ok(&["deploy", "dev", PROJECT, "1"]);
    let argo = ArgoCd::start(
        &world,
        &json!({DEV_APP: [
            frame(0.0, "Synced", "Progressing", "@tip"),
            {"after": 1.0, "sync": "Synced", "health": "Degraded", "revision": "@tip",
             "resources": [{"kind": "Deployment", "namespace": "auth", "name": "auth-service",
                            "health": {"status": "Degraded", "message": "Progress deadline exceeded"}}]},
        ]}),
    );
    let out = wait_deploy(&world, &argo, "dev", "2", &[]);
    out.assert_exit(7);
    out.assert_stdout_contains(
        "on_failure: rollback: rolled company/monorepo/auth-service back in dev",
    );
    assert_eq!(
        world.running("dev", PROJECT).as_deref(),
        Some(first.commit.as_str())
    );
    let message = world.remote.git_ok(&["log", "-1", "--format=%B", "main"]);
    assert!(
        message.starts_with("Rollback auth-service in dev to release 1"),
        "{message}"
    );
    assert!(
        message.contains("Rolled back by: releasectl (health check failed: Synced Degraded: Deployment auth/auth-service is Degraded (Progress deadline exceeded))"),
        "{message}"
    );
    assert!(
        message.contains(&format!("Blocked-Release: {}", second.commit)),
        "{message}"
    );
    // The failed release is blocked until unblocked.
    world.run(&["deploy", "dev", PROJECT, "2"]).assert_exit(4);
}
