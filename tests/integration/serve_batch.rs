//! The batched writer of `releasectl serve` under concurrent load, over `git daemon`: deploys
//! queued together are decided in order on one fetch and pushed as one chain, yet each request
//! still lands in its own commit (its own trailers) or gets its own 4xx; nothing is lost, the
//! history stays linear and `git fsck` clean, also with two replicas on one repository.

use std::collections::HashSet;

use serde_json::{Value, json};

use crate::support::cmd::Cmd;
use crate::support::git::GitDaemon;
use crate::support::image::REPOSITORY;
use crate::support::serve::Served;
use crate::support::setup::{EPOCH, create_args, fixture_manifests};
use crate::support::world::{ALICE, BOB, CAROL, World, pointer_path, sha};

const CI: &str = "ci@example.com";

/// `dev` admits any branch but only bob and CI robots deploy there; `production` only tags.
fn policy() -> String {
    format!(
        "environments:\n  dev:\n    deployers: [{BOB}, \"ci@*\"]\n    promotion_policy: {{allowed_triggers: [branch_push, tag, manual], allowed_branches: [\"*\"]}}\n  production:\n    promotion_policy: {{allowed_triggers: [tag], allowed_branches: [main]}}\n"
    )
}

/// Posts every `(identity, body)` at once, one thread each; the answers in the same order.
fn post_all(replicas: &[&Served], requests: &[(&str, Value)]) -> Vec<(u16, Value)> {
    std::thread::scope(|s| {
        let threads: Vec<_> = requests
            .iter()
            .enumerate()
            .map(|(n, (who, body))| {
                let server = replicas[n % replicas.len()];
                s.spawn(move || server.post("/v1/deployments", who, body))
            })
            .collect();
        threads.into_iter().map(|t| t.join().unwrap()).collect()
    })
}

/// A server on `world` through `daemon`, logging each batch (`RELEASECTL_LOG=debug`): the
/// tests count its pushes.
fn serve_logging(world: &World, daemon: &GitDaemon) -> Served {
    Served::start_cmd(
        world
            .cmd_via(&daemon.url(), &world.now)
            .env("RELEASECTL_LOG", "debug"),
        "",
    )
}

fn deploy(env: &str, project: &str) -> Value {
    json!({"environment": env, "project": project, "release_id": "1"})
}

/// Every commit an answer names is distinct, carries that request's trailers, and the
/// remote gained exactly those commits, in a linear history that fsck finds whole.
fn assert_each_landed_alone(world: &World, before: usize, answers: &[(u16, Value)]) {
    let mut commits = HashSet::new();
    for (_, answer) in answers {
        let Some(commit) = answer["commit"].as_str() else {
            continue;
        };
        assert!(commits.insert(commit.to_owned()), "{commit} answered twice");
        let project = answer["items"][0]["project"].as_str().unwrap_or_default();
        let message = world.remote.message(commit);
        for trailer in [
            format!("Project: {project}"),
            "Environment: dev".to_owned(),
            "Action: deploy".to_owned(),
        ] {
            assert!(
                message.contains(&trailer),
                "{commit} lacks {trailer:?}:\n{message}"
            );
        }
        let short = project.rsplit('/').next().unwrap();
        assert!(
            message.contains(&format!("Release-Commit: {}", sha(short))),
            "{commit}: {message}"
        );
    }
    assert_eq!(world.remote.commit_count(), before + commits.len());
    assert!(world.remote.is_linear(), "a linear history");
    world.remote.assert_fsck_clean();
}

#[test]
fn concurrent_requests_each_land_in_their_own_commit_or_get_their_own_4xx_in_a_batch() {
    let world = World::new(&policy());
    let daemon = GitDaemon::start(&world.remote);
    let projects: Vec<String> = (0..10).map(|n| format!("batch-{n}")).collect();
    for p in &projects {
        world.create(p, &sha(p), &["--source-branch", "main"]);
    }
    let before = world.remote.commit_count();
    let served = serve_logging(&world, &daemon);
    let mut requests: Vec<(&str, Value)> = Vec::new();
    for p in &projects {
        requests.push((BOB, deploy("dev", p)));
    }
    for p in &projects[..3] {
        requests.push((BOB, deploy("production", p)));
    }
    for p in &projects[3..5] {
        requests.push((CAROL, deploy("dev", p)));
    }
    // Three requests for one pointer: one lands, the others find it done.
    requests.push((CI, deploy("dev", &projects[6])));
    requests.push((BOB, deploy("dev", &projects[6])));
    let answers = post_all(&[&served], &requests);
    for (n, ((who, body), (status, answer))) in requests.iter().zip(&answers).enumerate() {
        let env = body["environment"].as_str().unwrap();
        match (env, *who) {
            ("production", _) => {
                assert_eq!(status, &422, "request {n}: {answer}");
                assert_eq!(answer["error"]["kind"], "refused", "{answer}");
                assert!(answer["commit"].is_null(), "{answer}");
            }
            (_, CAROL) => {
                assert_eq!(status, &403, "request {n}: {answer}");
                assert!(
                    answer["error"]["expected"]
                        .as_str()
                        .unwrap()
                        .contains("environments.dev.deployers"),
                    "{answer}"
                );
            }
            _ => assert_eq!(status, &200, "request {n}: {answer}"),
        }
    }
    let for_six: Vec<&Value> = requests
        .iter()
        .zip(&answers)
        .filter(|((_, b), _)| b["project"] == projects[6].as_str() && b["environment"] == "dev")
        .map(|(_, (_, a))| a)
        .collect();
    assert_eq!(for_six.len(), 3);
    assert_eq!(
        for_six.iter().filter(|a| a["commit"].is_string()).count(),
        1,
        "one of three lands: {for_six:?}"
    );
    assert!(
        for_six
            .iter()
            .filter(|a| a["commit"].is_null())
            .all(|a| a["result"] == "already deployed: nothing to do"),
        "{for_six:?}"
    );
    let landed = answers
        .iter()
        .filter(|(_, a)| a["commit"].is_string())
        .count();
    assert_eq!(
        landed,
        projects.len(),
        "one commit per project: {answers:?}"
    );
    for p in &projects {
        assert!(
            world
                .remote
                .show_required(&pointer_path("dev", p))
                .contains(&sha(p)),
            "{p}"
        );
        assert!(world.remote.show(&pointer_path("production", p)).is_none());
    }
    assert_each_landed_alone(&world, before, &answers);
    let log = served.log();
    assert!(
        log.lines()
            .filter_map(|l| l.split("writing a batch of ").nth(1))
            .filter_map(|rest| rest.split(' ').next()?.parse::<usize>().ok())
            .any(|n| n > 1),
        "concurrent requests were decided together in one batch:\n{log}"
    );
}

#[test]
fn two_replicas_under_concurrent_load_land_each_deploy_once_and_keep_history_linear() {
    let world = World::new(&policy());
    // With `filter` offered, each replica's cache is lazy: a batch fetches the tip's tree whole.
    world
        .remote
        .git_ok(&["config", "uploadpack.allowFilter", "true"]);
    let daemon = GitDaemon::start(&world.remote);
    let projects: Vec<String> = (0..12).map(|n| format!("replica-{n}")).collect();
    for p in &projects {
        world.create(p, &sha(p), &["--source-branch", "main"]);
    }
    let before = world.remote.commit_count();
    let replicas = [
        Served::start(&world, &daemon.url(), ""),
        Served::start(&world, &daemon.url(), ""),
    ];
    // Every project is asked of both replicas, and a refused request rides along with each.
    let mut requests: Vec<(&str, Value)> = Vec::new();
    for p in &projects {
        requests.push((BOB, deploy("dev", p)));
        requests.push((CI, deploy("dev", p)));
        requests.push((BOB, deploy("production", p)));
    }
    let answers = post_all(&[&replicas[0], &replicas[1]], &requests);
    for ((_, body), (status, answer)) in requests.iter().zip(&answers) {
        if body["environment"] == "production" {
            assert_eq!(status, &422, "{answer}");
        } else {
            assert_eq!(status, &200, "{answer}");
            assert!(
                answer["result"] == "deployed"
                    || answer["result"] == "already deployed: nothing to do",
                "{answer}"
            );
        }
    }
    for p in &projects {
        let landed = requests
            .iter()
            .zip(&answers)
            .filter(|((_, b), (_, a))| b["project"] == p.as_str() && a["commit"].is_string())
            .count();
        assert_eq!(landed, 1, "{p} lands exactly once: {answers:?}");
    }
    assert_each_landed_alone(&world, before, &answers);
}

#[test]
fn a_chain_the_server_refuses_is_pushed_again_one_by_one_so_only_the_refused_request_fails() {
    let world = World::new(&policy());
    let daemon = GitDaemon::start(&world.remote);
    let projects: Vec<String> = (0..8).map(|n| format!("hooked-{n}")).collect();
    for p in &projects {
        world.create(p, &sha(p), &["--source-branch", "main"]);
    }
    // The server's own rule: nothing may touch hooked-7's pointer.
    let hook = world.remote.path().join("hooks/pre-receive");
    std::fs::write(
        &hook,
        "#!/bin/sh\nwhile read old new ref; do\n  if git diff --name-only \"$old\" \"$new\" | grep -q /hooked-7/; then\n    echo 'hooked-7 is frozen' >&2; exit 1\n  fi\ndone\nexit 0\n",
    )
    .unwrap();
    let mut perms = std::fs::metadata(&hook).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(&hook, perms).unwrap();
    let before = world.remote.commit_count();
    let served = serve_logging(&world, &daemon);
    let requests: Vec<(&str, Value)> = projects.iter().map(|p| (BOB, deploy("dev", p))).collect();
    let answers = post_all(&[&served], &requests);
    for (p, (status, answer)) in projects.iter().zip(&answers) {
        if p == "hooked-7" {
            assert_eq!(status, &502, "{answer}");
            let message = answer["error"]["message"].as_str().unwrap();
            assert!(
                message.contains("refused the push") && message.contains("hooked-7 is frozen"),
                "{answer}"
            );
        } else {
            assert_eq!(
                (status, &answer["result"]),
                (&200, &json!("deployed")),
                "{p}: {answer}"
            );
        }
    }
    assert!(
        world
            .remote
            .show(&pointer_path("dev", "hooked-7"))
            .is_none()
    );
    assert_each_landed_alone(&world, before, &answers);
    assert_eq!(world.remote.commit_count(), before + projects.len() - 1);
    let log = served.log();
    assert!(
        log.contains("pushing each on its own"),
        "hooked-7 was refused inside a chain:\n{log}"
    );
}

/// `dev` as in [`policy`], `production` waits for approvals by alice or bob, and only CI
/// robots create releases.
fn mixed_policy() -> String {
    format!(
        "release_creators: [\"ci@*\"]\nenvironments:\n  dev:\n    deployers: [{BOB}, \"ci@*\"]\n    promotion_policy: {{allowed_triggers: [branch_push, tag, manual], allowed_branches: [\"*\"]}}\n  production:\n    promotion_policy:\n      allowed_triggers: [tag, manual]\n      allowed_branches: [main]\n      requires_approval: true\n      approvals: {{min: 2, ttl: 24h, approvers: [{ALICE}, {BOB}]}}\n"
    )
}

/// Posts every `(path, identity, body)` at once, one thread each; the answers in order.
fn post_mixed(served: &Served, requests: &[(&str, &str, Value)]) -> Vec<(u16, Value)> {
    std::thread::scope(|s| {
        let threads: Vec<_> = requests
            .iter()
            .map(|(path, who, body)| s.spawn(move || served.post(path, who, body)))
            .collect();
        threads.into_iter().map(|t| t.join().unwrap()).collect()
    })
}

/// `release create` of `project` at `commit` into the world's registry, not registered: the
/// body of a `POST /v1/releases` for it.
fn pushed_image(world: &World, project: &str, commit: &str) -> Value {
    let out = Cmd::releasectl()
        .args(["--registry", &world.registry(), "-o", "json"])
        .args(create_args(
            REPOSITORY,
            project,
            commit,
            &fixture_manifests(),
        ))
        .env("SOURCE_DATE_EPOCH", EPOCH)
        .run();
    out.assert_success();
    let created: Value = serde_json::from_slice(&out.stdout).expect("create prints JSON");
    json!({"reference": created["reference"], "digest": created["digest"]})
}

#[test]
fn concurrent_registrations_approvals_and_deploys_land_in_few_pushes_each_its_own_commit_or_refusal()
 {
    let world = World::new(&mixed_policy());
    let daemon = GitDaemon::start(&world.remote);
    let projects: Vec<String> = (0..6).map(|n| format!("mixed-{n}")).collect();
    for p in &projects {
        world.create(p, &sha(p), &["--source-branch", "main"]);
    }
    let images: Vec<Value> = (0..6)
        .map(|n| pushed_image(&world, "fresh", &sha(&format!("fresh-{n}"))))
        .collect();
    let stranger = pushed_image(&world, "fresh", &sha("fresh-stranger"));
    let before = world.remote.commit_count();
    let served = serve_logging(&world, &daemon);
    // Interleaved, with a refusal of each kind in the middle: bob creates no releases, alice
    // triggered the releases she would approve, carol deploys nowhere.
    let mut requests: Vec<(&str, &str, Value)> = Vec::new();
    for (n, p) in projects.iter().enumerate() {
        requests.push(("/v1/releases", CI, images[n].clone()));
        requests.push(("/v1/deployments", BOB, deploy("dev", p)));
        let approval = json!({"environment": "production", "project": p, "release_id": "1",
            "justification": "reviewed"});
        requests.push(("/v1/approvals", BOB, approval.clone()));
        if n == 3 {
            requests.push(("/v1/releases", BOB, stranger.clone()));
            requests.push(("/v1/approvals", ALICE, approval));
            requests.push(("/v1/deployments", CAROL, deploy("dev", p)));
        }
    }
    let answers = post_mixed(&served, &requests);
    let mut commits = HashSet::new();
    let mut numbers = Vec::new();
    for ((path, who, body), (status, answer)) in requests.iter().zip(&answers) {
        let expected = match (*path, *who) {
            ("/v1/releases", BOB) | ("/v1/approvals", ALICE) | ("/v1/deployments", CAROL) => 403,
            ("/v1/releases", _) => 201,
            _ => 200,
        };
        assert_eq!(*status, expected, "{path} by {who} {body}: {answer}");
        // A registration's `commit` is the release's source commit; its own is named apart.
        let key = if *path == "/v1/releases" {
            "registration_commit"
        } else {
            "commit"
        };
        let commit = answer[key].as_str();
        if expected != 200 && expected != 201 {
            assert!(commit.is_none(), "{answer}");
            continue;
        }
        let commit = commit.unwrap_or_else(|| panic!("{path}: no commit in {answer}"));
        assert!(commits.insert(commit.to_owned()), "{commit} answered twice");
        let message = world.remote.message(commit);
        let trailers: Vec<String> = match *path {
            "/v1/releases" => {
                let number = answer["number"].as_u64().unwrap();
                numbers.push(number);
                vec![
                    "Action: register".into(),
                    format!("Release-Number: {number}"),
                    format!("Release-Digest: {}", body["digest"].as_str().unwrap()),
                ]
            }
            "/v1/deployments" => vec![
                "Action: deploy".into(),
                format!(
                    "Project: {REPOSITORY}/{}",
                    body["project"].as_str().unwrap()
                ),
            ],
            _ => vec![
                "Action: approve".into(),
                format!("Approver: {BOB}"),
                format!(
                    "Project: {REPOSITORY}/{}",
                    body["project"].as_str().unwrap()
                ),
            ],
        };
        for trailer in trailers {
            assert!(
                message.contains(&trailer),
                "{commit} lacks {trailer:?}:\n{message}"
            );
        }
    }
    numbers.sort_unstable();
    assert_eq!(
        numbers,
        (1..=6).collect::<Vec<u64>>(),
        "consecutive, no gap"
    );
    assert_eq!(commits.len(), projects.len() * 3);
    assert_eq!(world.remote.commit_count(), before + commits.len());
    assert!(world.remote.is_linear(), "a linear history");
    world.remote.assert_fsck_clean();
    let log = served.log();
    let pushes = log
        .lines()
        .filter_map(|l| l.split("landed ").nth(1))
        .filter(|rest| !rest.starts_with("0 "))
        .count();
    assert!(
        pushes < commits.len() / 2,
        "{} commits in {pushes} pushes:\n{log}",
        commits.len()
    );
}
