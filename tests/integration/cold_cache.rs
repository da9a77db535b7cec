//! The policy rules that read the past (soak, progression, the rollback target, `history`)
//! keep their meaning when every run starts from an empty cache over `git daemon`, where the
//! tip is fetched alone and history is deepened on demand (docs/design.md §7).

use crate::deploy_race::Daemon;
use crate::support::setup::PROJECT;
use crate::support::world::World;

const SOAK: &str =
    "environments:\n  dev: {}\n  staging:\n    promotion_policy: {requires: [dev], soak: 30m}\n";

fn at(time: &str) -> String {
    format!("2026-11-23T{time}:00Z")
}

/// Serves the world's remote over `git daemon` with filters and any-object wants allowed,
/// as a partial fetch needs.
fn serve(world: &mut World) -> Daemon {
    for (key, value) in [
        ("uploadpack.allowFilter", "true"),
        ("uploadpack.allowAnySHA1InWant", "true"),
    ] {
        let status = std::process::Command::new("git")
            .arg("--git-dir")
            .arg(world.remote.path())
            .args(["config", key, value])
            .status()
            .expect("run git config");
        assert!(status.success(), "git config {key} {value}");
    }
    Daemon::serve(world)
}

/// Whether the shared cache is a partial clone of the remote (a `shallow` file, fewer objects
/// than the remote holds).
fn cache_is_partial(world: &World) -> bool {
    let root = world.cache("shared").join("git");
    std::fs::read_dir(&root)
        .into_iter()
        .flatten()
        .flatten()
        .any(|e| e.path().join("shallow").exists())
}

/// Empties the shared cache, as on an ephemeral CI runner.
fn forget(world: &World) {
    let dir = world.cache("shared");
    std::fs::remove_dir_all(&dir).expect("remove the shared cache");
}

/// `releasectl ARGS` at `time` on an empty cache, asserting success.
fn cold_ok(world: &World, time: &str, args: &[&str]) {
    forget(world);
    world.run_at(&at(time), args).assert_success();
}

#[test]
fn soak_on_an_empty_cache_counts_the_most_recent_stay() {
    let mut world = World::new(SOAK);
    let _daemon = serve(&mut world);
    for seed in ["one", "two", "three"] {
        world.main_release(seed);
    }
    cold_ok(&world, "12:00", &["deploy", "dev", PROJECT, "1"]);
    cold_ok(&world, "12:05", &["deploy", "dev", PROJECT, "2"]);
    forget(&world);
    let head = world.remote.head();
    world
        .run_at(&at("13:20"), &["deploy", "staging", PROJECT, "1"])
        .assert_exit(4)
        .assert_stdout_contains("soak: required 30m in dev, actual 5m in dev (until replaced)");
    assert_eq!(world.remote.head(), head, "a refusal writes nothing");
    cold_ok(&world, "13:20", &["deploy", "staging", PROJECT, "2"]);
    cold_ok(&world, "13:40", &["deploy", "dev", PROJECT, "3"]);
    assert!(
        cache_is_partial(&world),
        "a deploy to dev (no rule reads the past) fetched the tip alone"
    );
}

#[test]
fn rollback_on_an_empty_cache_goes_back_one_step_and_history_lists_every_deploy() {
    let mut world = World::new(SOAK);
    let _daemon = serve(&mut world);
    let r: Vec<_> = ["one", "two", "three"]
        .iter()
        .map(|s| world.main_release(s))
        .collect();
    for (i, t) in ["10:00", "10:10", "10:20"].iter().enumerate() {
        cold_ok(&world, t, &["deploy", "dev", PROJECT, &(i + 1).to_string()]);
    }
    cold_ok(&world, "10:30", &["rollback", "dev", PROJECT]);
    assert_eq!(world.running("dev", PROJECT), Some(r[1].commit.clone()));
    cold_ok(&world, "10:40", &["rollback", "dev", PROJECT]);
    assert_eq!(world.running("dev", PROJECT), Some(r[0].commit.clone()));
    forget(&world);
    world
        .run(&["status"])
        .assert_success()
        .assert_stdout_contains(&r[0].commit[..12]);
    forget(&world);
    let out = world.run(&["-o", "json", "history", "dev", PROJECT]);
    out.assert_success();
    let events: serde_json::Value = serde_json::from_slice(&out.stdout).expect("history JSON");
    let actions: Vec<&str> = events
        .as_array()
        .expect("a list of events")
        .iter()
        .map(|e| e["action"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(
        actions,
        ["rollback", "rollback", "deploy", "deploy", "deploy"],
        "history on an empty cache lists every change, newest first"
    );
}

/// The `fetched N wanted: M objects` lines of a `-vv` run, as (N, M).
fn fetches(stderr: &[u8]) -> Vec<(u64, u64)> {
    String::from_utf8_lossy(stderr)
        .lines()
        .filter_map(|l| {
            let rest = l.split("fetched ").nth(1)?;
            let mut words = rest.split([' ', ':']).filter(|w| !w.is_empty());
            let wanted = words.next()?.parse().ok()?;
            let objects = words.nth(1)?.parse().ok()?;
            Some((wanted, objects))
        })
        .collect()
}

#[test]
fn a_cold_run_gets_the_root_level_with_the_tip_and_status_all_pointers_in_one_request() {
    let mut world = World::new(SOAK);
    let _daemon = serve(&mut world);
    let projects = ["auth-service", "billing", "search"];
    for p in projects {
        world.create(
            p,
            &crate::support::world::sha(p),
            &["--source-branch", "main"],
        );
        world.ok(&["deploy", "dev", p, "1"]);
    }
    forget(&world);
    let out = world
        .cmd()
        .args(["-vv", "deploy", "dev", PROJECT, "1"])
        .run();
    out.assert_success();
    let got = fetches(&out.stderr);
    // The commit, the root tree, environments.yaml and the trees of dev/ and releases/.
    assert!(
        got.first()
            .is_some_and(|(wanted, objects)| *wanted == 1 && *objects >= 5),
        "the first fetch of a cold run brings the root level with the tip: {got:?}"
    );
    forget(&world);
    let out = world.cmd().args(["-vv", "status"]).run();
    out.assert_success();
    for p in projects {
        out.assert_stdout_contains(p);
    }
    let got = fetches(&out.stderr);
    let batched = got
        .iter()
        .filter(|(wanted, _)| *wanted >= projects.len() as u64)
        .count();
    assert!(
        batched >= 1,
        "status fetched the pointers of all projects in one request: {got:?}"
    );
}
