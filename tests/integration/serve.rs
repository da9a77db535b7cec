//! `releasectl serve` end to end against a real GitOps remote (a bare repository by path and
//! over `git daemon`), the world's OCI layout and a real registry: every endpoint, the actor taken from the
//! token, permissions from environments.yaml, and bad input answered 4xx with nothing written.

use serde_json::{Value, json};

use crate::support::git::GitDaemon;
use crate::support::serve::{Served, TOKENS};
use crate::support::setup::{COMMIT_A, PROJECT, Setup, fixture_manifests};
use crate::support::world::{
    ALICE, BOB, CAROL, MONDAY, PRODUCTION, World, plain_policy, pointer_path, sha,
};

const FULL: &str = "company/monorepo/auth-service";

fn deploy_body(env: &str, id: &str) -> Value {
    json!({"environment": env, "project": PROJECT, "release_id": id})
}

#[test]
fn serve_answers_health_and_refuses_missing_and_unknown_tokens_without_echoing_them() {
    let world = World::example();
    let served = Served::start(&world, &world.url, "");
    assert_eq!(served.get("/healthz", None).0, 200);
    assert_eq!(served.get("/readyz", None).0, 200);
    let (status, body) = served.get(&format!("/v1/releases/{FULL}"), None);
    assert_eq!(status, 401, "{body}");
    let (status, body) = served.raw(
        "GET",
        &format!("/v1/releases/{FULL}"),
        Some("not-a-known-token"),
        b"",
    );
    assert_eq!(status, 401, "{body}");
    assert!(!body.to_string().contains("not-a-known-token"), "{body}");
    assert!(
        !served.log().contains("not-a-known-token"),
        "{}",
        served.log()
    );
    for (t, _) in TOKENS {
        assert!(!served.log().contains(t), "a token reached the log");
    }
    let (status, body) = served.get("/v1/nothing-here", Some(ALICE));
    assert_eq!(status, 404, "{body}");
}

#[test]
fn serve_lists_and_resolves_releases_splitting_the_repository_at_the_register() {
    let world = World::example();
    let release = world.main_release("serve-list");
    let served = Served::start(&world, &world.url, "");
    for prefix in ["/v1", "/api/v1"] {
        let (status, list) = served.get(&format!("{prefix}/releases/{FULL}"), Some(BOB));
        assert_eq!(status, 200, "{list}");
        assert_eq!(list["repository"], "company/monorepo");
        assert_eq!(list["releases"][0]["commit"], release.commit.as_str());
        let (status, one) = served.get(
            &format!("{prefix}/releases/{FULL}/{}", release.number),
            Some(BOB),
        );
        assert_eq!(status, 200, "{one}");
        assert_eq!(one["digest"], release.digest.as_str());
        assert_eq!(one["project"], PROJECT);
    }
    let (status, body) = served.get(&format!("/v1/releases/{FULL}/no-such-alias"), Some(BOB));
    assert_eq!(status, 404, "{body}");
    assert!(
        body["error"]["object"]
            .as_str()
            .unwrap()
            .contains("no-such-alias"),
        "{body}"
    );
    let (status, body) = served.get("/v1/releases/company/monorepo/billing", Some(BOB));
    assert_eq!(status, 404, "{body}");
}

#[test]
fn serve_deploys_as_the_token_identity_and_reports_the_status() {
    let world = World::example();
    let release = world.main_release("serve-deploy");
    let served = Served::start(&world, &world.url, "");
    let (status, report) = served.post("/v1/deployments", CAROL, &deploy_body("dev", &release.tag));
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["result"], "deployed");
    assert_eq!(report["items"][0]["environment"], "dev");
    let commit = report["commit"].as_str().expect("a commit").to_owned();
    assert_eq!(world.remote.head(), commit);
    assert_eq!(
        world
            .remote
            .git_ok(&["log", "-1", "--format=%ae", &commit])
            .trim(),
        CAROL,
        "the author is the token's identity"
    );
    assert!(
        world
            .remote
            .show_required(&pointer_path("dev", PROJECT))
            .contains(&release.commit)
    );
    let (status, st) = served.get(&format!("/v1/deployments/dev/{FULL}"), Some(ALICE));
    assert_eq!(status, 200, "{st}");
    assert_eq!(st["release"]["commit"], release.commit.as_str());
    assert_eq!(st["release"]["deployed_by"], CAROL);
    // Again: nothing to do, no commit.
    let (status, again) = served.post("/v1/deployments", CAROL, &deploy_body("dev", &release.tag));
    assert_eq!(
        (status, again["commit"].clone()),
        (200, Value::Null),
        "{again}"
    );
}

#[test]
fn serve_refuses_by_policy_with_the_decisions_the_cli_prints() {
    let world = World::example();
    let release = world.main_release("serve-refuse");
    let served = Served::start(&world, &world.url, "");
    let (status, report) = world.writes_nothing(|| {
        served.post(
            "/v1/deployments",
            ALICE,
            &deploy_body(PRODUCTION, &release.tag),
        )
    });
    assert_eq!(status, 422, "{report}");
    assert_eq!(report["error"]["kind"], "refused");
    let rules: Vec<&str> = report["items"][0]["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["pass"] == false)
        .map(|d| d["rule"].as_str().unwrap())
        .collect();
    assert!(rules.contains(&"allowed_triggers"), "{report}");
    let cli = world
        .cmd()
        .args([
            "-o",
            "json",
            "deploy",
            PRODUCTION,
            PROJECT,
            &release.tag,
            "--dry-run",
        ])
        .run();
    let cli: Value = serde_json::from_slice(&cli.stdout).unwrap();
    assert_eq!(
        cli["items"][0]["decisions"],
        report["items"][0]["decisions"]
    );
    // A dry run answers 200 with the same decisions and whether a real run would be refused.
    let mut body = deploy_body(PRODUCTION, &release.tag);
    body["dry_run"] = true.into();
    let (status, dry) = served.post("/v1/deployments", ALICE, &body);
    assert_eq!(
        (status, dry["would_refuse"].clone()),
        (200, json!(true)),
        "{dry}"
    );
}

#[test]
fn serve_answers_bad_input_with_a_clear_4xx_and_writes_nothing() {
    let world = World::example();
    let release = world.main_release("serve-bad");
    let served = Served::start(&world, &world.url, "max_body_bytes: 2048\n");
    let alice = Some(crate::support::serve::token(ALICE));
    let oversized = format!(
        r#"{{"environment":"dev","project":"{}","release_id":"1"}}"#,
        "x".repeat(4096)
    );
    let cases: Vec<(&[u8], u16, &str)> = vec![
        (b"{\"environment\": \"dev\",", 400, "invalid_json"),
        (br#"{"environment":"dev","project":"auth-service","release_id":"1","force":true}"#, 400, "unknown field `force`"),
        (br#"{"environment":"dev","environment":"dev","project":"auth-service","release_id":"1"}"#, 400, "duplicate"),
        (br#"{"environment":"Dev!","project":"auth-service","release_id":"1"}"#, 400, "environment"),
        (br#"{"environment":"dev","project":"auth-service"}"#, 400, "project and release_id"),
        (br#"{"environment":"dev","project":"auth-service","release_id":"1","overrides":["soak"]}"#, 400, "reason"),
        (oversized.as_bytes(), 413, "at most 2048 bytes"),
    ];
    for (body, want, needle) in cases {
        let (status, answer) =
            world.writes_nothing(|| served.raw("POST", "/v1/deployments", alice, body));
        assert_eq!(status, want, "{}: {answer}", String::from_utf8_lossy(body));
        assert!(answer.to_string().contains(needle), "{needle}: {answer}");
    }
    let (status, answer) = world.writes_nothing(|| {
        served.raw(
            "POST",
            "/v1/deployments",
            Some("wrong"),
            deploy_body("dev", &release.tag).to_string().as_bytes(),
        )
    });
    assert_eq!(status, 401, "{answer}");
}

#[test]
fn serve_allows_only_the_deployers_environments_yaml_lists() {
    let policy = format!(
        "environments:\n  dev:\n    deployers: [{BOB}, \"ci@*\"]\n    promotion_policy: {{allowed_branches: [\"*\"]}}\n"
    );
    let world = World::new(&policy);
    let release = world.main_release("serve-deployers");
    let served = Served::start(&world, &world.url, "");
    let (status, answer) = world.writes_nothing(|| {
        served.post("/v1/deployments", CAROL, &deploy_body("dev", &release.tag))
    });
    assert_eq!(status, 403, "{answer}");
    assert_eq!(answer["error"]["actual"], CAROL);
    assert!(
        answer["error"]["expected"]
            .as_str()
            .unwrap()
            .contains("environments.dev.deployers"),
        "{answer}"
    );
    let (status, answer) = served.post(
        "/v1/deployments",
        "ci@example.com",
        &deploy_body("dev", &release.tag),
    );
    assert_eq!(status, 200, "a claim glob admits: {answer}");
}

#[test]
fn serve_approves_refuses_self_approval_and_reports_approval_status() {
    let world = World::new(&plain_policy());
    // Registered by alice (the world's actor): she triggered it.
    let release = world.tagged(&sha("serve-approve"), "v1.0.0");
    let served = Served::start(&world, &world.url, "");
    let body = json!({"environment": PRODUCTION, "project": PROJECT, "release_id": release.tag,
        "justification": "reviewed"});
    let (status, answer) = world.writes_nothing(|| served.post("/v1/approvals", ALICE, &body));
    assert_eq!(
        (status, answer["error"]["kind"].clone()),
        (403, json!("self_approval")),
        "{answer}"
    );
    let (status, answer) = world.writes_nothing(|| served.post("/v1/approvals", CAROL, &body));
    assert_eq!(status, 400, "carol is no approver: {answer}");
    let (status, answer) = served.post("/v1/approvals", BOB, &body);
    assert_eq!(status, 200, "{answer}");
    assert!(
        world
            .remote
            .last_message()
            .contains(&format!("Approved by: {BOB}"))
    );
    let path = format!(
        "/v1/approvals/{}/{PRODUCTION}?project={PROJECT}",
        release.tag
    );
    let (status, st) = served.get(&path, Some(CAROL));
    assert_eq!(status, 200, "{st}");
    assert_eq!(
        (st["live"].clone(), st["required"].clone()),
        (json!(1), json!(2)),
        "{st}"
    );
    assert_eq!(st["approvals"][0]["approver"], BOB);
    let revoke = json!({"environment": PRODUCTION, "project": PROJECT, "release_id": release.tag});
    let (status, answer) = served.post("/v1/revocations", BOB, &revoke);
    assert_eq!(status, 200, "{answer}");
    assert_eq!(served.get(&path, Some(CAROL)).1["live"], 0);
}

#[test]
fn serve_rolls_back_promotes_and_unblocks() {
    let world = World::example();
    let first = world.main_release("serve-r1");
    let second = world.main_release("serve-r2");
    world.deploy_each("dev", &[&first.tag, &second.tag]);
    let served = Served::start(&world, &world.url, "");
    let (status, answer) = served.post(
        "/v1/rollbacks",
        BOB,
        &json!({"environment": "dev", "project": PROJECT, "block": true}),
    );
    assert_eq!(
        (status, answer["result"].clone()),
        (200, json!("rolled back")),
        "{answer}"
    );
    assert!(
        world
            .remote
            .show_required(&pointer_path("dev", PROJECT))
            .contains(&first.commit)
    );
    let (status, answer) = served.post(
        "/v1/unblocks",
        BOB,
        &json!({"environment": "dev", "project": PROJECT, "release_id": second.tag}),
    );
    assert_eq!(
        (status, answer["result"].clone()),
        (200, json!("unblocked")),
        "{answer}"
    );
    let (status, answer) = served.post(
        "/v1/promotions",
        BOB,
        &json!({"project": PROJECT, "from": "dev", "to": "staging",
        "overrides": ["soak"], "reason": "hotfix"}),
    );
    assert_eq!(
        (status, answer["result"].clone()),
        (200, json!("promoted")),
        "{answer}"
    );
    assert!(
        world
            .remote
            .show_required(&pointer_path("staging", PROJECT))
            .contains(&first.commit)
    );
    let (status, history) = served.get(&format!("/v1/history/dev/{FULL}"), Some(CAROL));
    assert_eq!(status, 200, "{history}");
    let actions: Vec<&str> = history["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        ["unblock", "rollback", "deploy", "deploy"],
        "{history}"
    );
    let (status, diff) = served.get(&format!("/v1/diff/dev/{FULL}/{}", second.tag), Some(CAROL));
    assert_eq!(status, 200, "{diff}");
    assert!(
        diff["from"].as_str().unwrap().contains(&first.commit),
        "{diff}"
    );
    assert!(
        diff["to"].as_str().unwrap().contains(&second.commit),
        "{diff}"
    );
    assert_eq!(diff["added"], json!([]), "same manifests: {diff}");
    assert!(diff["unchanged"].as_u64().unwrap() > 0, "{diff}");
}

#[test]
fn two_serve_replicas_on_one_repository_land_every_deploy_in_its_own_commit() {
    let world = World::example();
    let daemon = GitDaemon::start(&world.remote);
    let projects: Vec<String> = (0..6).map(|n| format!("svc-{n}")).collect();
    for p in &projects {
        world.create(p, &sha(p), &["--source-branch", "main"]);
    }
    let before = world.remote.commit_count();
    let replicas = [
        Served::start(&world, &daemon.url(), ""),
        Served::start(&world, &daemon.url(), ""),
    ];
    std::thread::scope(|s| {
        for (n, p) in projects.iter().enumerate() {
            let served = &replicas[n % 2];
            s.spawn(move || {
                let body = json!({"environment": "dev", "project": p, "release_id": "1"});
                let (status, answer) = served.post("/v1/deployments", BOB, &body);
                assert_eq!(
                    (status, answer["result"].clone()),
                    (200, json!("deployed")),
                    "{p}: {answer}"
                );
            });
        }
    });
    assert_eq!(world.remote.commit_count(), before + projects.len());
    for p in &projects {
        assert!(
            world
                .remote
                .show_required(&pointer_path("dev", p))
                .contains(&sha(p)),
            "{p}"
        );
    }
}

#[test]
fn serve_finishes_its_work_and_exits_zero_on_sigterm() {
    let world = World::example();
    let served = Served::start(&world, &world.url, "");
    assert_eq!(served.get("/readyz", None).0, 200);
    assert!(served.terminate(), "serve exits 0 after SIGTERM");
}

#[test]
fn sigterm_lands_or_refuses_each_queued_write_whole_and_never_half() {
    let world = World::example();
    let projects: Vec<String> = (0..8).map(|n| format!("queued-{n}")).collect();
    for p in &projects {
        world.create(p, &sha(p), &["--source-branch", "main"]);
    }
    let before = world.remote.commit_count();
    let served = Served::start(&world, &world.url, "");
    let answers: Vec<(u16, Value)> = std::thread::scope(|s| {
        let threads: Vec<_> = projects
            .iter()
            .map(|p| {
                let served = &served;
                s.spawn(move || {
                    served.post(
                        "/v1/deployments",
                        BOB,
                        &json!({"environment": "dev", "project": p, "release_id": "1"}),
                    )
                })
            })
            .collect();
        std::thread::sleep(std::time::Duration::from_millis(150));
        served.sigterm();
        threads.into_iter().map(|t| t.join().unwrap()).collect()
    });
    assert!(served.wait_exit(), "serve exits 0 after SIGTERM");
    let mut landed = 0;
    for ((status, answer), p) in answers.iter().zip(&projects) {
        let pointer = world.remote.show(&pointer_path("dev", p));
        match status {
            200 => {
                landed += 1;
                assert_eq!(answer["result"], "deployed", "{answer}");
                assert!(
                    pointer.is_some_and(|t| t.contains(&sha(p))),
                    "{p} answered deployed"
                );
            }
            503 => assert!(pointer.is_none(), "{p} answered 503 but was written"),
            other => panic!("{p}: {other} {answer}"),
        }
    }
    assert!(
        landed > 0,
        "the writes queued before SIGTERM land: {answers:?}"
    );
    assert_eq!(world.remote.commit_count(), before + landed);
    assert_eq!(
        world.remote.git_ok(&["fsck", "--no-progress"]).trim(),
        "",
        "a whole repository"
    );
}

#[test]
fn serve_registers_an_image_pushed_to_a_real_registry_once_and_refuses_what_does_not_verify() {
    let setup = Setup::plain();
    let created = setup.create(COMMIT_A, &fixture_manifests());
    let world = World::new("release_creators: [\"ci@*\"]\nenvironments:\n  dev: {}\n");
    let base = setup
        .releasectl()
        .args(["--registry", &setup.host(), "--gitops", &world.url])
        .env("RELEASECTL_NOW", MONDAY);
    let served = Served::start_cmd(base, "");
    let body = json!({"reference": created.tagged(), "digest": created.digest});
    let (status, answer) = world.writes_nothing(|| served.post("/v1/releases", BOB, &body));
    assert_eq!(
        (status, answer["error"]["kind"].clone()),
        (403, json!("forbidden")),
        "{answer}"
    );
    let (status, answer) = served.post("/v1/releases", "ci@example.com", &body);
    assert_eq!(status, 201, "{answer}");
    assert_eq!(
        (answer["number"].clone(), answer["digest"].clone()),
        (json!(1), json!(created.digest))
    );
    assert!(
        world
            .remote
            .last_message()
            .starts_with(&format!("Register release 1 of {FULL}")),
        "{}",
        world.remote.last_message()
    );
    let (status, again) =
        world.writes_nothing(|| served.post("/v1/releases", "ci@example.com", &body));
    assert_eq!(
        (status, again["registration_commit"].clone()),
        (200, Value::Null),
        "{again}"
    );
    // A digest the registry does not hold, and an image outside the registry base: 422.
    let missing =
        json!({"reference": created.tagged(), "digest": format!("sha256:{}", "0".repeat(64))});
    let elsewhere = json!({"reference": created.tagged().replace("auth-service", "billing"), "digest": created.digest});
    for bad in [missing, elsewhere] {
        let (status, answer) =
            world.writes_nothing(|| served.post("/v1/releases", "ci@example.com", &bad));
        assert_eq!(status, 422, "{bad}: {answer}");
        assert!(
            answer["error"]["message"]
                .as_str()
                .unwrap()
                .contains("expected"),
            "{answer}"
        );
    }
    // Deployed from the registry it was registered from.
    let (status, answer) = served.post("/v1/deployments", BOB, &deploy_body("dev", "1"));
    assert_eq!(
        (status, answer["result"].clone()),
        (200, json!("deployed")),
        "{answer}"
    );
}

#[test]
fn serve_lists_what_runs_where_as_the_same_rows_as_status_and_filters_by_environment_and_project() {
    let world = World::example();
    let auth = world.main_release("serve-list-auth");
    let billing = world.create(
        "billing",
        &sha("serve-list-billing"),
        &["--source-branch", "main"],
    );
    world.deploy("dev", &auth).assert_success();
    world.deploy("dev", &billing).assert_success();
    let served = Served::start(&world, &world.url, "");
    let local = |args: &[&str]| -> Value {
        let out = world.ok(&[&["-o", "json", "status"], args].concat());
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let (status, all) = served.get("/v1/deployments", Some(CAROL));
    assert_eq!(status, 200, "{all}");
    assert_eq!(all["deployments"], local(&[]), "{all}");
    assert_eq!(all["deployments"].as_array().unwrap().len(), 2, "{all}");
    let (status, one) = served.get(
        "/v1/deployments?environment=dev&project=company%2Fmonorepo%2Fbilling",
        Some(CAROL),
    );
    assert_eq!(status, 200, "{one}");
    assert_eq!(one["deployments"], local(&["billing", "--env", "dev"]));
    assert_eq!(one["deployments"][0]["commit"], billing.commit.as_str());
    let (status, none) = served.get("/v1/deployments?environment=production", Some(CAROL));
    assert_eq!((status, none["deployments"].clone()), (200, json!([])));
    for bad in [
        "/v1/deployments?environment=Not%20An%20Env",
        "/v1/deployments?colour=blue",
        "/v1/deployments?project=auth-service&project=billing",
    ] {
        let (status, answer) = served.get(bad, Some(CAROL));
        assert_eq!(status, 400, "{bad}: {answer}");
        assert!(answer["error"]["expected"].is_string(), "{answer}");
    }
}
