//! Policy rules as an on-call engineer reads them (issue 12): soak, progression, rollback,
//! approvals without a list, triggers, groups, promotion paths, dry runs and refused pushes.

use crate::support;
use crate::support::cmd::{Cmd, Output};
use crate::support::keys::{Key, keyed_policy};
use crate::support::setup::{PROJECT, fixture_manifests};
use crate::support::world::{
    ALICE, BOB, CAROL, PRODUCTION, World, assert_refused_at, plain_policy, policy_one, sha,
};

/// `dev` without rules; `staging` requires dev and a 30-minute soak.
const SOAK: &str =
    "environments:\n  dev: {}\n  staging:\n    promotion_policy: {requires: [dev], soak: 30m}\n";

fn at(time: &str) -> String {
    format!("2026-11-23T{time}:00Z")
}

/// `deploy ENV auth-service ID` at `time` (HH:MM on the world's Monday), asserting success.
fn deploy_ok(world: &World, time: &str, env: &str, id: &str) {
    world
        .run_at(&at(time), &["deploy", env, PROJECT, id])
        .assert_success();
}

/// Asserts that `deploy staging auth-service ID` at `time` is refused, saying `needles`.
#[track_caller]
fn refused_in_staging(world: &World, time: &str, id: &str, needles: &[&str]) {
    assert_refused_at(
        world,
        &at(time),
        &["deploy", "staging", PROJECT, id],
        needles,
    );
}

/// `promote auth-service --from FROM --to TO`.
fn promote<'a>(from: &'a str, to: &'a str) -> [&'a str; 6] {
    ["promote", PROJECT, "--from", from, "--to", to]
}

#[test]
pub(crate) fn soak_counts_the_most_recent_stay_not_the_time_since_the_first_deploy() {
    let world = World::new(SOAK);
    world.main_release("one");
    world.main_release("two");
    deploy_ok(&world, "12:00", "dev", "1");
    deploy_ok(&world, "12:05", "dev", "2");
    // Release 1 ran in dev from 12:00 to 12:05: at 13:20 it soaked 5 minutes, not 1h20m.
    refused_in_staging(
        &world,
        "13:20",
        "1",
        &["soak: required 30m in dev, actual 5m in dev (until replaced)"],
    );
    // Release 2 has run there since 12:05.
    deploy_ok(&world, "13:20", "staging", "2");
}

#[test]
pub(crate) fn a_stay_that_ended_in_a_rollback_neither_soaks_nor_satisfies_requires() {
    let world = World::new(SOAK);
    for seed in ["one", "two", "three"] {
        world.main_release(seed);
    }
    deploy_ok(&world, "10:00", "dev", "1");
    deploy_ok(&world, "10:05", "dev", "2");
    // Release 2 failed in dev: rolled back and blocked.
    world
        .run_at(&at("11:00"), &["rollback", "dev", PROJECT, "--block"])
        .assert_success();
    refused_in_staging(
        &world,
        "12:00",
        "2",
        &["requires: required running (or having run) in dev, actual blocked in dev"],
    );
    // Release 3 ran for an hour and was rolled back (not blocked): it did not pass dev.
    deploy_ok(&world, "11:10", "dev", "3");
    world
        .run_at(&at("12:10"), &["rollback", "dev", PROJECT])
        .assert_success();
    refused_in_staging(
        &world,
        "13:00",
        "3",
        &[
            "actual left dev by a rollback",
            "ended by a rollback: does not count",
        ],
    );
    // Release 1, running again since the rollback at 12:10, soaked 50 minutes.
    deploy_ok(&world, "13:00", "staging", "1");
}

#[test]
pub(crate) fn two_rollbacks_in_a_row_go_two_steps_back_and_never_forward() {
    let world = World::new(SOAK);
    let r = world.main_releases(&["one", "two", "three"]);
    for (i, t) in ["10:00", "10:10", "10:20"].iter().enumerate() {
        deploy_ok(&world, t, "dev", &(i + 1).to_string());
    }
    world.run(&["rollback", "dev", PROJECT]).assert_success();
    assert_eq!(world.running("dev", PROJECT), Some(r[1].commit.clone()));
    world.run(&["rollback", "dev", PROJECT]).assert_success();
    assert_eq!(world.running("dev", PROJECT), Some(r[0].commit.clone()));
    // Nothing earlier: no rollback, and no silent step forward.
    world
        .run(&["rollback", "dev", PROJECT])
        .assert_exit(2)
        .assert_stderr_contains("nothing to roll back to");
    // A rollback to a newer release is a deploy.
    let head = world.remote.head();
    world
        .run(&["rollback", "dev", PROJECT, "--to", "3"])
        .assert_exit(2)
        .assert_stderr_contains("that is a deploy");
    assert_eq!(world.remote.head(), head);
}

/// `prod` requires dev, a soak, two approvals and a Monday-to-Thursday window.
const GATED: &str = "environments:\n  dev: {}\n  prod:\n    promotion_policy:\n      requires: [dev]\n      soak: 1h\n      requires_approval: true\n      approvals: {min: 2, approvers: [alice@company.com, bob@company.com]}\n      windows: [{allow: \"Mon-Thu 09:00-16:00\"}]\n";

/// `args` followed by `--override RULE` for each of `rules` and `--reason REASON`.
fn overriding<'a>(args: &[&'a str], rules: &[&'a str], reason: &'a str) -> Vec<&'a str> {
    let mut all = args.to_vec();
    for rule in rules {
        all.extend(["--override", rule]);
    }
    all.extend(["--reason", reason]);
    all
}

/// Releases 1 and 2 in prod (let in by override), 2 running.
fn two_in_prod(policy: &str) -> World {
    let world = World::new(policy);
    world.main_release("one");
    world.main_release("two");
    for id in ["1", "2"] {
        world
            .run(&overriding(
                &["deploy", "prod", PROJECT, id],
                &["requires", "soak", "approvals"],
                "setting the scene",
            ))
            .assert_success();
    }
    world
}

#[test]
pub(crate) fn a_rollback_to_a_release_that_ran_there_skips_approvals_progression_and_soak() {
    let world = two_in_prod(GATED);
    let out = world.run(&["rollback", "prod", PROJECT]);
    out.assert_success().assert_stdout_contains("pass windows");
    let text = out.stdout_str();
    for rule in ["approvals", "requires", "soak"] {
        assert!(!text.contains(rule), "rollback judged {rule}:\n{text}");
    }
}

#[test]
pub(crate) fn a_rollback_still_respects_windows_and_holds_unless_overridden_and_history_shows_it() {
    let world = two_in_prod(GATED);
    let saturday = "2026-11-28T12:00:00Z";
    assert_refused_at(
        &world,
        saturday,
        &["rollback", "prod", PROJECT],
        &["windows: required within Mon-Thu 09:00-16:00"],
    );
    world
        .run_at(
            saturday,
            &overriding(&["rollback", "prod", PROJECT], &["window"], "INC-7: outage"),
        )
        .assert_success();
    world.set_policy(&GATED.replace("  prod:\n", "  prod:\n    hold: change freeze\n"));
    // Roll forward to 2 again (by override of everything, hold included) ...
    world
        .run(&overriding(
            &["deploy", "prod", PROJECT, "2"],
            &["hold", "requires", "soak", "approvals"],
            "INC-8",
        ))
        .assert_success();
    // ... then a rollback under the hold is refused, and passes with `--override hold`.
    assert_refused_at(
        &world,
        &world.now.clone(),
        &["rollback", "prod", PROJECT],
        &["on hold: change freeze"],
    );
    world
        .run(&overriding(
            &["rollback", "prod", PROJECT],
            &["hold"],
            "INC-9: roll back now",
        ))
        .assert_success();
    let history = world.run(&["history", "prod", PROJECT]);
    history
        .assert_success()
        .assert_stdout_contains("override windows (reason: INC-7: outage)")
        .assert_stdout_contains("override hold (reason: INC-9: roll back now)");
}

#[test]
pub(crate) fn unblock_prints_no_policy_decisions_and_history_names_the_release_unblocked() {
    let world = two_in_prod(GATED);
    world
        .run(&["rollback", "prod", PROJECT, "--block"])
        .assert_success();
    let out = world.run(&["unblock", "prod", PROJECT, "2", "--actor", ALICE]);
    out.assert_success();
    for word in ["pass ", "FAIL ", "approvals", "windows"] {
        assert!(
            !out.stdout_str().contains(word),
            "unblock printed {word:?}:\n{}",
            out.stdout_str()
        );
    }
    world
        .run(&["history", "prod", PROJECT])
        .assert_success()
        .assert_stdout_contains("unblocked release 2 (main-2)");
}

#[test]
pub(crate) fn approvals_without_a_list_need_one_person_other_than_the_deployer() {
    let world = World::new(
        "environments:\n  dev: {}\n  prod:\n    promotion_policy: {requires_approval: true}\n",
    );
    let release = world.main_release("one");
    let deploy = ["deploy", "prod", PROJECT, "1", "--actor", ALICE];
    assert_refused_at(
        &world,
        &world.now.clone(),
        &deploy,
        &["approvals: required 1 distinct approvals by anyone other than the deployer"],
    );
    world
        .approve("prod", &release, ALICE, None)
        .assert_success();
    assert_refused_at(
        &world,
        &world.now.clone(),
        &deploy,
        &["approved by the deployer: another person must approve"],
    );
    world
        .approve("prod", &release, crate::support::world::BOB, None)
        .assert_success();
    world.run(&deploy).assert_success();
    assert_eq!(world.running("prod", PROJECT), Some(release.commit));
}

#[test]
pub(crate) fn a_group_naming_a_project_twice_is_a_usage_error_naming_it() {
    let world = World::new(SOAK);
    world.main_release("one");
    world.main_release("two");
    let head = world.remote.head();
    world
        .run(&[
            "deploy",
            "dev",
            &format!("{PROJECT}=1"),
            &format!("{PROJECT}=2"),
        ])
        .assert_exit(2)
        .assert_stderr_contains(&format!("{PROJECT} is named more than once"));
    assert_eq!(world.remote.head(), head);
}

#[test]
pub(crate) fn a_dry_run_needs_no_actor_and_exits_as_the_real_run_would_be_judged() {
    let world = World::without_actor(SOAK);
    world.main_release("one");
    let head = world.remote.head();
    let refused = world.run(&["-o", "json", "deploy", "--dry-run", "staging", PROJECT, "1"]);
    refused.assert_exit(4);
    let report: serde_json::Value = serde_json::from_str(&refused.stdout_str()).unwrap();
    let rules: Vec<&str> = report["items"][0]["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["rule"].as_str().unwrap())
        .collect();
    assert_eq!(rules, ["requires", "soak"], "every decision, on stdout");
    world
        .run(&["deploy", "--dry-run", "dev", PROJECT, "1"])
        .assert_success()
        .assert_stdout_contains("dry run: nothing written");
    assert_eq!(world.remote.head(), head);
}

#[test]
fn a_push_refused_by_a_hook_over_git_daemon_exits_5_with_the_servers_message() {
    let mut world = World::new(SOAK);
    world.main_release("one");
    world
        .remote
        .install_hooks(&crate::support::git::Hooks::reject(
            "deploys are frozen by INC-77",
        ));
    let daemon = crate::support::git::GitDaemon::start(&world.remote);
    world.url = daemon.url();
    world
        .run(&["deploy", "dev", PROJECT, "1"])
        .assert_exit(5)
        .assert_stderr_contains("deploys are frozen by INC-77");
}

#[test]
fn a_push_to_a_path_remote_runs_its_pre_receive_hook_and_a_refusal_exits_5_writing_nothing() {
    let world = World::new(SOAK);
    world.main_release("one");
    world
        .remote
        .install_hooks(&crate::support::git::Hooks::reject(
            "deploys are frozen by INC-78",
        ));
    let out = world.writes_nothing(|| world.run(&["deploy", "dev", PROJECT, "1"]));
    out.assert_exit(5)
        .assert_stderr_contains("deploys are frozen by INC-78");
    assert_eq!(world.running("dev", PROJECT), None);
}

/// `ssh-keygen -lf` of `key`'s public half: its `SHA256:…` fingerprint.
fn fingerprint(key: &Key) -> String {
    let out = Cmd::new("ssh-keygen")
        .arg("-lf")
        .arg(key.private.with_extension("pub"))
        .run();
    out.assert_success();
    out.stdout_str()
        .split_whitespace()
        .nth(1)
        .expect("a fingerprint")
        .to_owned()
}

#[test]
pub(crate) fn approve_refuses_an_approval_that_could_never_count_and_writes_nothing() {
    let keys = support::temp_dir();
    let alice = Key::generate(keys.path(), "alice");
    let bob = Key::generate(keys.path(), "bob");
    let mallory = Key::generate(keys.path(), "mallory");
    let world = World::without_actor(&keyed_policy(&alice, &bob));
    world.keep(keys);
    let release = world.tagged(&sha("one"), "v1.0.0");
    let required = fingerprint(&bob);
    // (who, key, what the refusal says)
    let cases: [(&str, Option<&Key>, &[&str]); 3] = [
        (BOB, None, &["pass --key", &required]),
        (BOB, Some(&mallory), &["requires the key", &required]),
        (CAROL, None, &["not an approver for production", ALICE, BOB]),
    ];
    for (who, key, needles) in cases {
        let out = world.writes_nothing(|| {
            world.approve(PRODUCTION, &release, who, key.map(|k| k.private.as_path()))
        });
        out.assert_exit(2);
        for needle in needles {
            out.assert_stderr_contains(needle);
        }
    }
    // The listed key signs: recorded.
    world
        .approve(PRODUCTION, &release, BOB, Some(&bob.private))
        .assert_success();
    assert_eq!(
        world.approvals(PRODUCTION, &release)["approvals"][0]["approver"],
        BOB
    );
}

#[test]
pub(crate) fn approving_where_no_approval_is_needed_says_so_and_refuses_no_one() {
    let world = World::without_actor(&plain_policy());
    let release = world.tagged(&sha("one"), "v1.0.0");
    world
        .approve("staging", &release, CAROL, None)
        .assert_success()
        .assert_stderr_contains("staging needs no approvals");
}

/// dev → staging → production, by `requires`.
const PATH: &str = "environments:\n  dev: {}\n  staging:\n    promotion_policy: {requires: [dev]}\n  production:\n    promotion_policy: {requires: [staging]}\n";

#[test]
pub(crate) fn a_promote_against_the_path_is_refused_with_rule_promotion_path_unless_overridden() {
    let world = World::new(PATH);
    let one = world.main_release("one");
    world.deploy_each("dev", &["1"]);
    world.ok(&promote("dev", "staging"));
    world.ok(&promote("staging", "production"));
    let two = world.main_release("two");
    world.deploy_each("dev", &["2"]);
    // Backwards, and to itself: refused, nothing written.
    let cases: [(&str, &str, &[&str]); 2] = [
        (
            "production",
            "dev",
            &[
                "required: dev requires production",
                "actual: dev requires no environment",
            ],
        ),
        (
            "staging",
            "staging",
            &[
                "required: --to an environment other than --from",
                "cannot be promoted to where it runs",
            ],
        ),
    ];
    for (from, to, needles) in cases {
        let out = assert_refused_at(
            &world,
            &at("10:00"),
            &promote(from, to),
            &["promotion_path"],
        );
        out.assert_stdout_contains("FAIL promotion_path");
        for needle in needles {
            out.assert_stdout_contains(needle);
        }
    }
    assert_eq!(world.running("dev", PROJECT), Some(two.commit.clone()));
    // An on-call engineer may go against it, with a reason recorded in the commit.
    let out = world.ok(&overriding(
        &promote("production", "dev"),
        &["promotion_path"],
        "INC-7: dev must match production",
    ));
    out.assert_stdout_contains("promotion_path");
    assert_eq!(world.running("dev", PROJECT), Some(one.commit));
    assert!(
        world
            .remote
            .message("main")
            .contains("Override: promotion_path")
    );
}

/// `release create` of auth-service at `commit` with `extra` flags.
fn create(world: &World, commit: &str, extra: &[&str]) -> Output {
    world
        .cmd()
        .args([
            "-o",
            "json",
            "release",
            "create",
            "--repository",
            "company/monorepo",
        ])
        .args(["--project", PROJECT, "--commit", commit, "--manifests"])
        .arg(fixture_manifests())
        .args(extra)
        .run()
}

#[test]
pub(crate) fn under_the_monorepo_strategy_another_projects_tag_is_neither_alias_nor_trigger() {
    let world = World::new(&policy_one("allowed_triggers: [tag]"));
    let out = create(
        &world,
        &sha("one"),
        &["--source-branch", "main", "--source-tag", "billing/v5.0.0"],
    );
    out.assert_success()
        .assert_stderr_contains("not a tag of auth-service");
    assert!(!out.stdout_str().contains("v5.0.0"), "{out}");
    world
        .run(&["release", "get", PROJECT, "v5.0.0"])
        .assert_exit(2);
    assert_refused_at(
        &world,
        &at("10:00"),
        &["deploy", "prod", PROJECT, "1"],
        &["allowed_triggers"],
    );
    // Its own tag is both.
    create(
        &world,
        &sha("one"),
        &["--source-tag", "auth-service/v1.0.0"],
    )
    .assert_success();
    world.ok(&["deploy", "prod", PROJECT, "v1.0.0"]);
}

#[test]
pub(crate) fn a_trigger_without_its_source_is_a_usage_error_and_a_new_branch_adds_its_alias() {
    let world = World::new(&policy_one("allowed_triggers: [tag]"));
    for extra in [
        &["--trigger", "tag", "--source-branch", "main"][..],
        &["--trigger", "tag", "--source-tag", "billing/v5.0.0"],
        &[
            "--trigger",
            "branch_push",
            "--source-tag",
            "auth-service/v1.0.0",
        ],
    ] {
        let out = world.writes_nothing(|| create(&world, &sha("one"), extra));
        out.assert_exit(2).assert_stderr_contains("--trigger");
    }
    create(&world, &sha("one"), &["--source-branch", "main"]).assert_success();
    create(&world, &sha("one"), &["--source-branch", "release/1.2"]).assert_success();
    for alias in ["main-1", "release-1.2-1"] {
        world
            .run(&["release", "get", PROJECT, alias])
            .assert_success()
            .assert_stdout_contains(&sha("one"));
    }
}
