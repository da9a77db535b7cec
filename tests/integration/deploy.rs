//! `deploy`, `promote`, `rollback`, `unblock`, `status`, `history`, `diff` (docs/design.md §7,
//! §10; issue 5), through the real binary against a real bare remote and an OCI layout.
//!
//! What must hold: the specification's example policy behaves end to end; every commit
//! message reads exactly as docs/design.md §7 shows (checked word for word from `git log`); a no-op
//! writes nothing and exits 0; a refusal writes nothing (no commit object anywhere) and exits
//! 4; `--dry-run` writes nothing and shows every decision; a group is one commit or nothing;
//! the pointer written is one `generate` reads back into that release's manifests.

use std::path::Path;

use serde_json::Value;

use crate::support::setup::{PROJECT, stdout_json as json};
use crate::support::world::{
    ACTOR, MONDAY, Release, World, assert_refused, assert_refused_at, assert_refused_each,
    pointer_path, sha,
};
use crate::support::{self, Cmd};

/// dev and staging deploy automatically; prod requires staging first.
const OPEN: &str = "environments:\n  dev:\n    promotion_policy: {auto_deploy: true}\n  \
    staging:\n    promotion_policy: {auto_deploy: true}\n  \
    prod:\n    promotion_policy: {requires: [staging]}\n";

/// `promote auth-service --from dev --to staging`.
const PROMOTE_TO_STAGING: [&str; 6] = ["promote", PROJECT, "--from", "dev", "--to", "staging"];

/// `promote auth-service --from staging --to production`.
const PROMOTE_TO_PRODUCTION: [&str; 6] = [
    "promote",
    PROJECT,
    "--from",
    "staging",
    "--to",
    "production",
];

/// Runs `args`, asserting success, that stdout says `says`, and that nothing was written.
#[track_caller]
fn no_op(world: &World, args: &[&str], says: &str) {
    world.writes_nothing(|| {
        world.ok(args).assert_stdout_contains(says);
    });
}

/// Asserts which release of the default project runs in each environment (`None`: none).
#[track_caller]
fn assert_running(world: &World, expected: &[(&str, Option<&Release>)]) {
    for (env, release) in expected {
        assert_eq!(
            world.running(env, PROJECT),
            release.map(|r| r.commit.clone()),
            "running in {env}"
        );
    }
}

fn trailers(r: &Release, env: &str, action: &str) -> String {
    format!(
        "Release-Commit: {}\nRelease-Digest: {}\nEnvironment: {env}\nProject: company/monorepo/{}\nAction: {action}\n",
        r.commit, r.digest, r.project
    )
}

// ---------------------------------------------------------------------------------------------
// The specification's example policy, end to end

/// A world with the example policy and a release of the default project at `sha(seed)`,
/// created with `flags`.
fn example_release(seed: &str, flags: &[&str]) -> (World, Release) {
    let world = World::example();
    let release = world.create(PROJECT, &sha(seed), flags);
    (world, release)
}

#[test]
fn example_policy_a_branch_release_auto_deploys_to_dev_only() {
    let (world, r) = example_release("feature", &["--source-branch", "feature/login"]);
    world.ok(&["deploy", "--auto", PROJECT, &r.number.to_string()]);
    assert_running(
        &world,
        &[("dev", Some(&r)), ("staging", None), ("production", None)],
    );
    // Even after the soak, staging refuses a feature branch, and production a branch push.
    assert_refused_each(
        &world,
        &PROMOTE_TO_STAGING,
        &[(
            "2026-11-23T12:00:00Z",
            "allowed_branches: required a branch matching main, release/*, actual feature/login",
        )],
    );
    assert_refused(
        &world,
        &["deploy", "production", PROJECT, &r.number.to_string()],
        &[
            "allowed_triggers: required one of tag, manual, actual branch_push",
            "allowed_branches: required a branch matching main, actual feature/login",
            "requires: required running (or having run) in staging, actual never deployed to staging",
            "approvals: required 2 distinct approvals",
        ],
    );
}

#[test]
fn example_policy_a_main_release_goes_from_dev_to_staging_after_the_soak() {
    let world = World::example();
    let r = world.main_release("main");
    world.ok_at("2026-11-23T10:00:00Z", &["deploy", "--auto", PROJECT, "1"]);
    assert_running(&world, &[("dev", Some(&r))]);
    // staging has auto_deploy: false.
    assert_running(&world, &[("staging", None)]);
    assert_refused_each(
        &world,
        &PROMOTE_TO_STAGING,
        &[(
            "2026-11-23T10:20:00Z",
            "soak: required 30m in dev, actual 20m in dev",
        )],
    );
    world.ok_at("2026-11-23T10:30:00Z", &PROMOTE_TO_STAGING);
    assert_running(&world, &[("staging", Some(&r))]);
    // A branch push never reaches production, however long it soaked and whoever approved.
    world.hand_approve_both("production", &r, "2026-11-24T10:00:00Z");
    assert_refused_each(
        &world,
        &PROMOTE_TO_PRODUCTION,
        &[(
            "2026-11-23T12:00:00Z",
            "allowed_triggers: required one of tag, manual, actual branch_push",
        )],
    );
}

#[test]
fn example_policy_production_needs_a_tag_two_approvals_staging_first_and_the_window() {
    let world = World::example();
    let r = world.tagged(&sha("tagged"), "v1.2.3");
    assert_eq!(r.label, "1 (v1.2.3)");
    // Monday 08:00 UTC = 09:00 Berlin.
    world.ok_at(
        "2026-11-23T07:00:00Z",
        &["deploy", "--auto", PROJECT, "v1.2.3"],
    );
    // Not in staging yet, no approvals.
    assert_refused_at(
        &world,
        "2026-11-23T08:00:00Z",
        &["deploy", "production", PROJECT, "v1.2.3"],
        &[
            "requires: required running (or having run) in staging, actual never deployed to staging",
            "approvals: required 2 distinct approvals by alice@company.com, bob@company.com, actual 0 valid (none)",
        ],
    );
    world.ok_at("2026-11-23T07:30:00Z", &PROMOTE_TO_STAGING);
    // One approval is not enough.
    world.hand_approve(
        "production",
        &r,
        &[(
            "alice@company.com",
            "production",
            &r.digest,
            "2026-11-24T08:00:00Z",
        )],
    );
    assert_refused_each(
        &world,
        &PROMOTE_TO_PRODUCTION,
        &[("2026-11-23T08:00:00Z", "actual 1 valid (alice@company.com)")],
    );
    world.hand_approve_both("production", &r, "2026-11-24T08:00:00Z");
    assert_refused_each(
        &world,
        &PROMOTE_TO_PRODUCTION,
        &[
            // Approved, but Monday 15:00 UTC is 16:00 in Berlin: the window has closed.
            (
                "2026-11-23T15:00:00Z",
                "windows: required within Mon-Thu 09:00-16:00 (Europe/Berlin), actual Mon 16:00 CET",
            ),
            // Tuesday 09:00 UTC: the approvals have expired (24h ttl) — approve again, then it
            // lands.
            ("2026-11-24T09:00:00Z", "expired at 2026-11-24T08:00:00Z"),
        ],
    );
    world.ok_at("2026-11-23T14:59:00Z", &PROMOTE_TO_PRODUCTION);
    assert_running(&world, &[("production", Some(&r))]);
    assert_eq!(
        world.remote.last_message(),
        format!(
            "Promote {PROJECT} from staging to production: release 1 (v1.2.3)\n\n\
             Previous release: none\nPromoted by: {ACTOR}\n\n{}Promoted-From: staging\n\n",
            trailers(&r, "production", "promote")
        )
    );
}

#[test]
fn example_policy_a_manual_release_from_main_may_go_to_production() {
    let (world, r) = example_release(
        "manual",
        &["--trigger", "manual", "--source-branch", "main"],
    );
    world.ok_at("2026-11-23T07:00:00Z", &["deploy", "dev", PROJECT, "1"]);
    world.ok_at("2026-11-23T07:30:00Z", &["deploy", "staging", PROJECT, "1"]);
    world.hand_approve_both("production", &r, "2026-11-24T08:00:00Z");
    world.ok_at(
        "2026-11-23T09:00:00Z",
        &["deploy", "production", PROJECT, "1"],
    );
    assert_running(&world, &[("production", Some(&r))]);
}

// ---------------------------------------------------------------------------------------------
// Commit messages, word for word

#[test]
fn a_deploy_commit_message_reads_as_designed() {
    let world = World::new(OPEN);
    let one = world.main_release("one");
    let two = world.tagged(&sha("two"), "v1.2.3");
    world.ok(&["deploy", "dev", PROJECT, "1"]);
    assert_eq!(
        world.remote.last_message(),
        format!(
            "Deploy {PROJECT} to dev: release 1 (main-1)\n\n\
             Previous release: none\nDeployed by: {ACTOR}\n\n{}\n",
            trailers(&one, "dev", "deploy")
        )
    );
    world.ok(&["deploy", "dev", PROJECT, "v1.2.3"]);
    assert_eq!(
        world.remote.last_message(),
        format!(
            "Deploy {PROJECT} to dev: release 2 (v1.2.3)\n\n\
             Previous release: 1 (main-1)\nDeployed by: {ACTOR}\n\n{}\n",
            trailers(&two, "dev", "deploy")
        )
    );
    // The author is the actor, at RELEASECTL_NOW.
    let author = world
        .remote
        .git(["log", "-1", "--format=%ae %at", "main"])
        .stdout_str();
    // 2026-11-23T10:00:00Z
    assert_eq!(author.trim(), format!("{ACTOR} 1795428000"));
}

#[test]
fn a_promote_commit_message_reads_as_designed() {
    let world = World::new(OPEN);
    let r = world.main_release("one");
    world.ok(&["deploy", "staging", PROJECT, "1"]);
    world.ok(&["promote", PROJECT, "--from", "staging", "--to", "prod"]);
    assert_eq!(
        world.remote.last_message(),
        format!(
            "Promote {PROJECT} from staging to prod: release 1 (main-1)\n\n\
             Previous release: none\nPromoted by: {ACTOR}\n\n{}Promoted-From: staging\n\n",
            trailers(&r, "prod", "promote")
        )
    );
}

#[test]
fn promote_from_an_environment_where_nothing_runs_is_exit_2() {
    let world = World::new(OPEN);
    world.main_release("one");
    let out = world.run(&["promote", PROJECT, "--from", "staging", "--to", "prod"]);
    out.assert_exit(2)
        .assert_stderr_contains("nothing of company/monorepo/auth-service runs in staging");
}

#[test]
fn an_auto_deploy_commit_message_reads_as_designed() {
    let world = World::new(OPEN);
    let old = world.main_release("old");
    world.ok(&["deploy", "dev", PROJECT, "1"]);
    let r = world.main_release("new");
    world.ok(&["deploy", "--auto", PROJECT, "2"]);
    assert_eq!(
        world.remote.last_message(),
        format!(
            "Deploy {PROJECT} to dev, staging: release 2 (main-2)\n\n\
             Previous releases:\n- dev: {}\n- staging: none\nDeployed by: {ACTOR} (auto)\n\n\
             Release-Commit: {}\nRelease-Digest: {}\nEnvironment: dev\nEnvironment: staging\n\
             Project: company/monorepo/{PROJECT}\nAction: auto-deploy\n\n",
            old.label, r.commit, r.digest
        )
    );
    // One commit changed both pointers.
    assert_eq!(
        world.remote.changed("main"),
        [
            pointer_path("dev", PROJECT),
            pointer_path("staging", PROJECT)
        ]
    );
}

#[test]
fn a_group_deploy_commit_message_reads_as_designed_and_changes_both_pointers_at_once() {
    let world = World::new(OPEN);
    let auth = world.main_release("auth");
    let billing = world.create("billing", &sha("billing"), &["--source-branch", "main"]);
    let before = world.remote.commit_count();
    world.ok(&["deploy", "dev", "auth-service=1", "billing=main-1"]);
    assert_eq!(world.remote.commit_count(), before + 1);
    assert_eq!(
        world.remote.last_message(),
        format!(
            "Deploy 2 projects to dev\n\n\
             - auth-service: release 1 (main-1), previously none\n\
             - billing: release 1 (main-1), previously none\n\n\
             Deployed by: {ACTOR}\n\n\
             Environment: dev\n\
             Project: company/monorepo/auth-service\n\
             Release-Commit: {}\nRelease-Digest: {}\n\
             Project: company/monorepo/billing\n\
             Release-Commit: {}\nRelease-Digest: {}\n\
             Action: deploy-group\n\n",
            auth.commit, auth.digest, billing.commit, billing.digest
        )
    );
    assert_eq!(
        world.remote.changed("main"),
        [pointer_path("dev", PROJECT), pointer_path("dev", "billing")]
    );
    assert_running(&world, &[("dev", Some(&auth))]);
    assert_eq!(world.running("dev", "billing"), Some(billing.commit));
}

#[test]
fn a_group_deploy_where_one_member_fails_policy_writes_nothing() {
    let world =
        World::new("environments:\n  dev:\n    promotion_policy: {allowed_branches: [main]}\n");
    world.main_release("auth");
    world.create(
        "billing",
        &sha("billing"),
        &["--source-branch", "feature/x"],
    );
    assert_refused(
        &world,
        &["deploy", "dev", "auth-service=1", "billing=1"],
        &[
            "company/monorepo/billing in dev: allowed_branches: required a branch matching main, actual feature/x",
        ],
    );
    assert_running(&world, &[("dev", None)]);
    assert_eq!(world.running("dev", "billing"), None);
}

// ---------------------------------------------------------------------------------------------
// Rollback

/// A world with releases 1, 2 and 3 deployed to dev in turn.
fn three_deploys() -> (World, [Release; 3]) {
    let world = World::new(OPEN);
    let rs = [
        world.main_release("r1"),
        world.main_release("r2"),
        world.main_release("r3"),
    ];
    for r in &rs {
        world.ok(&["deploy", "dev", PROJECT, &r.number.to_string()]);
    }
    (world, rs)
}

#[test]
fn rollback_goes_to_the_release_before_the_current_one_by_default() {
    let (world, [_, two, three]) = three_deploys();
    world.ok(&["rollback", "dev", PROJECT]);
    assert_running(&world, &[("dev", Some(&two))]);
    assert_eq!(
        world.remote.last_message(),
        format!(
            "Rollback {PROJECT} in dev to release {}\n\n\
             Previous release: {}\nRolled back by: {ACTOR}\n\n{}\n",
            two.label,
            three.label,
            trailers(&two, "dev", "rollback")
        )
    );
}

#[test]
fn rollback_to_a_named_release() {
    let (world, [one, _, three]) = three_deploys();
    world.ok(&["rollback", "dev", PROJECT, "--to", "main-1"]);
    assert_running(&world, &[("dev", Some(&one))]);
    assert_eq!(
        world.remote.last_message(),
        format!(
            "Rollback {PROJECT} in dev to release 1 (main-1)\n\n\
             Previous release: {}\nRolled back by: {ACTOR}\n\n{}\n",
            three.label,
            trailers(&one, "dev", "rollback")
        )
    );
}

#[test]
fn rollback_with_nothing_to_roll_back_to_is_exit_2_with_a_clear_error() {
    let world = World::new(OPEN);
    world.main_release("only");
    let head = world.remote.head();
    let out = world.run(&["rollback", "dev", PROJECT]);
    out.assert_exit(2).assert_stderr_contains(
        "nothing to roll back: company/monorepo/auth-service does not run in dev",
    );
    world.ok(&["deploy", "dev", PROJECT, "1"]);
    let head2 = world.remote.head();
    assert_ne!(head, head2);
    let out = world.run(&["rollback", "dev", PROJECT]);
    out.assert_exit(2).assert_stderr_contains(
        "nothing to roll back to: company/monorepo/auth-service has had no other release in dev",
    );
    assert_eq!(world.remote.head(), head2);
}

#[test]
fn rollback_block_keeps_the_release_out_until_unblocked() {
    let world = World::new(OPEN);
    let one = world.main_release("one");
    let two = world.main_release("two");
    world.deploy_each("dev", &["1", "2"]);
    world.ok(&["rollback", "dev", PROJECT, "--block"]);
    assert_running(&world, &[("dev", Some(&one))]);
    assert_eq!(
        world.remote.last_message(),
        format!(
            "Rollback {PROJECT} in dev to release 1 (main-1)\n\n\
             Previous release: 2 (main-2)\nRolled back by: {ACTOR}\n\
             Blocked: release 2 (main-2) may not return to dev until unblocked\n\n\
             {}Blocked-Release: {}\n\n",
            trailers(&one, "dev", "rollback"),
            two.commit
        )
    );
    assert!(
        world.pointer("dev", PROJECT).unwrap().contains(&two.commit),
        "the pointer records the blocked release"
    );
    // `deploy` refuses it, naming the way out.
    assert_refused(
        &world,
        &["deploy", "dev", PROJECT, "2"],
        &[
            "release 2 (main-2) of company/monorepo/auth-service is blocked in dev by a rollback",
            "releasectl unblock dev company/monorepo/auth-service 2",
        ],
    );
    // `deploy --auto` (CI) does not bring it back either: staging gets it, dev does not.
    let head = world.remote.head();
    world.ok(&["deploy", "--auto", PROJECT, "2"]);
    assert_running(&world, &[("dev", Some(&one)), ("staging", Some(&two))]);
    assert_ne!(world.remote.head(), head);
    // Another deploy to dev keeps the block.
    let three = world.main_release("three");
    world.ok(&["deploy", "dev", PROJECT, "3"]);
    assert_refused(
        &world,
        &["deploy", "dev", PROJECT, "2"],
        &["is blocked in dev"],
    );
    // Unblock lifts it.
    world.ok(&["unblock", "dev", PROJECT, "2"]);
    assert_eq!(
        world.remote.last_message(),
        format!(
            "Unblock release 2 (main-2) of {PROJECT} in dev\n\n\
             Unblocked by: {ACTOR}\n\n\
             Unblocked-Release: {}\nEnvironment: dev\nProject: company/monorepo/{PROJECT}\n\
             Action: unblock\n\n",
            two.commit
        )
    );
    assert_running(&world, &[("dev", Some(&three))]);
    world.ok(&["deploy", "dev", PROJECT, "2"]);
    assert_running(&world, &[("dev", Some(&two))]);
}

#[test]
fn rollback_block_is_honoured_by_deploy_auto_even_when_only_the_blocked_environment_is_auto() {
    let world = World::new("environments:\n  dev:\n    promotion_policy: {auto_deploy: true}\n");
    world.main_release("one");
    world.main_release("two");
    world.deploy_each("dev", &["1", "2"]);
    world.ok(&["rollback", "dev", PROJECT, "--block"]);
    no_op(
        &world,
        &["deploy", "--auto", PROJECT, "2"],
        "no environment admits the release",
    );
}

#[test]
fn unblocking_a_release_that_is_not_blocked_is_a_no_op() {
    let world = World::new(OPEN);
    world.main_release("one");
    world.ok(&["deploy", "dev", PROJECT, "1"]);
    no_op(&world, &["unblock", "dev", PROJECT, "1"], "not blocked");
}

// ---------------------------------------------------------------------------------------------
// Eligibility and dry run

#[test]
fn deploying_what_already_runs_exits_0_without_a_commit() {
    let world = World::new(OPEN);
    world.main_release("one");
    world.ok(&["deploy", "dev", PROJECT, "1"]);
    no_op(
        &world,
        &["deploy", "dev", PROJECT, "main-1"],
        "already deployed",
    );
    let report =
        world.writes_nothing(|| json(&world.ok(&["-o", "json", "deploy", "dev", PROJECT, "1"])));
    assert_eq!(report["commit"], Value::Null);
    assert_eq!(report["items"][0]["verdict"], "already deployed");
}

#[test]
fn a_refusal_creates_no_commit_object_and_names_the_failing_decisions() {
    let world = World::new(OPEN);
    world.main_release("one");
    let unreachable = world.remote.unreachable();
    let out = assert_refused(
        &world,
        &["deploy", "prod", PROJECT, "1"],
        &[
            "company/monorepo/auth-service in prod: requires: required running (or having run) in staging, actual never deployed to staging",
        ],
    );
    assert!(
        !out.stderr_str().contains("password"),
        "no secrets in a refusal"
    );
    assert_eq!(world.remote.unreachable(), unreachable);
}

#[test]
fn dry_run_writes_nothing_and_prints_every_decision() {
    let world = World::new(
        "environments:\n  dev:\n    promotion_policy: {auto_deploy: true}\n  \
         prod:\n    promotion_policy: {allowed_triggers: [branch_push], requires: [dev], soak: 1h}\n",
    );
    world.main_release("one");
    let head = world.remote.head();
    // A dry run that would be refused exits 4, and writes nothing.
    let out = world.writes_nothing(|| world.run(&["deploy", "--dry-run", "prod", PROJECT, "1"]));
    out.assert_exit(4);
    let text = out.stdout_str();
    for line in [
        "deploy auth-service in prod: release 1 (main-1) (previous: none)",
        "pass allowed_triggers  required: one of branch_push; actual: branch_push",
        "FAIL requires          required: running (or having run) in dev; actual: never deployed to dev",
        "FAIL soak              required: 1h in dev; actual: never in dev",
        "dry run: nothing written",
    ] {
        assert!(text.contains(line), "missing {line:?} in\n{out}");
    }
    let out = world
        .writes_nothing(|| world.run(&["-o", "json", "deploy", "--dry-run", "prod", PROJECT, "1"]));
    out.assert_exit(4);
    let report = json(&out);
    assert_eq!(report["result"], "dry run: nothing written");
    assert_eq!(report["commit"], Value::Null);
    let decisions = report["items"][0]["decisions"].as_array().unwrap();
    let seen: Vec<(&str, bool)> = decisions
        .iter()
        .map(|d| (d["rule"].as_str().unwrap(), d["pass"].as_bool().unwrap()))
        .collect();
    assert_eq!(
        seen,
        [
            ("allowed_triggers", true),
            ("requires", false),
            ("soak", false)
        ]
    );
    for d in decisions {
        assert!(d["required"].is_string() && d["actual"].is_string(), "{d}");
    }
    assert!(
        report["items"][0]["verdict"]
            .as_str()
            .unwrap()
            .starts_with("refused")
    );
    // An eligible dry run writes nothing either, for every command.
    for args in [
        &["deploy", "--dry-run", "dev", PROJECT, "1"][..],
        &["deploy", "--dry-run", "--auto", PROJECT, "1"][..],
    ] {
        no_op(&world, args, "dry run: nothing written");
    }
    world.ok(&["deploy", "dev", PROJECT, "1"]);
    assert_ne!(world.remote.head(), head);
    world.main_release("two");
    world.ok(&["deploy", "dev", PROJECT, "2"]);
    for args in [
        &[
            "promote",
            "--dry-run",
            PROJECT,
            "--from",
            "dev",
            "--to",
            "prod",
        ][..],
        &["rollback", "--dry-run", "dev", PROJECT][..],
        &["rollback", "--dry-run", "--block", "dev", PROJECT][..],
    ] {
        // The promote would be refused (release 2 has not soaked in dev): a dry run exits 4.
        let out = world.writes_nothing(|| world.run(args));
        out.assert_exit(if args[0] == "promote" { 4 } else { 0 })
            .assert_stdout_contains("dry run: nothing written");
    }
}

// ---------------------------------------------------------------------------------------------
// status and history

#[test]
fn status_shows_which_release_runs_where_as_text_and_json() {
    let world = World::new(OPEN);
    let auth = world.main_release("auth");
    let billing = world.create("billing", &sha("billing"), &["--source-branch", "main"]);
    world.ok(&["deploy", "--auto", PROJECT, "1"]);
    world.ok_at("2026-11-23T11:00:00Z", &["deploy", "dev", "billing", "1"]);
    let out = world.ok(&["status"]);
    let text = out.stdout_str();
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("ENVIRONMENT"), "{out}");
    assert!(lines[0].contains("PROJECT") && lines[0].contains("RELEASE"));
    assert_eq!(lines.len(), 4, "header + 3 rows\n{out}");
    for (line, env, project, commit, at) in [
        (
            lines[1],
            "dev",
            "company/monorepo/auth-service",
            &auth.commit,
            MONDAY,
        ),
        (
            lines[2],
            "dev",
            "company/monorepo/billing",
            &billing.commit,
            "2026-11-23T11:00:00Z",
        ),
        (
            lines[3],
            "staging",
            "company/monorepo/auth-service",
            &auth.commit,
            MONDAY,
        ),
    ] {
        let words: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(
            words,
            [env, project, "1", "main-1", &commit[..12], at, ACTOR],
            "{out}"
        );
    }
    let out = world.ok(&["-o", "json", "status", PROJECT]);
    let rows = json(&out);
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["environment"], "dev");
    assert_eq!(rows[0]["project"], "company/monorepo/auth-service");
    assert_eq!(rows[0]["number"], 1);
    assert_eq!(rows[0]["commit"], auth.commit.as_str());
    assert_eq!(rows[0]["digest"], auth.digest.as_str());
    assert_eq!(rows[0]["deployed_by"], ACTOR);
    assert_eq!(rows[0]["deployed_at"], MONDAY);
    assert_eq!(rows[1]["environment"], "staging");
}

#[test]
fn history_reads_the_deploys_back_from_the_trailers() {
    let (world, [one, two, three]) = three_deploys();
    world.ok(&["rollback", "dev", PROJECT]);
    // A hand edit of the pointer shows up as such.
    let pointer = world.pointer("dev", PROJECT).unwrap();
    world.hand_push(
        &[(
            &pointer_path("dev", PROJECT),
            Some(&pointer.replace(ACTOR, "bob@company.com")),
        )],
        "Edit the pointer by hand",
    );
    let out = world.ok(&["-o", "json", "history", "dev", PROJECT]);
    let events = json(&out);
    let got: Vec<(&str, &str, Option<u64>)> = events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap(),
                e["release_commit"].as_str().unwrap(),
                e["number"].as_u64(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("edited outside releasectl", two.commit.as_str(), Some(2)),
            ("rollback", two.commit.as_str(), Some(2)),
            ("deploy", three.commit.as_str(), Some(3)),
            ("deploy", two.commit.as_str(), Some(2)),
            ("deploy", one.commit.as_str(), Some(1)),
        ]
    );
    assert_eq!(
        events[1]["subject"],
        format!("Rollback {PROJECT} in dev to release 2 (main-2)")
    );
    assert_eq!(events[1]["label"], "2 (main-2)");
    let out = world.ok(&["history", "dev", PROJECT]);
    let text = out.stdout_str();
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[0].starts_with("TIME") && lines[0].contains("ACTION"),
        "{out}"
    );
    assert_eq!(lines.len(), 6, "{out}");
    assert!(
        lines[2].contains("rollback")
            && lines[2].contains("2 (main-2)")
            && lines[2].contains(&two.commit[..12]),
        "{out}"
    );
    assert!(
        lines[5].contains("deploy") && lines[5].contains("1 (main-1)"),
        "{out}"
    );
}

// ---------------------------------------------------------------------------------------------
// diff

fn write_manifests(dir: &Path, objects: &[(&str, &str)]) {
    let docs: Vec<String> = objects
        .iter()
        .map(|(name, value)| {
            format!(
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  namespace: auth\ndata:\n  key: {value}\n"
            )
        })
        .collect();
    std::fs::write(dir.join("configmaps.yaml"), docs.join("---\n")).unwrap();
}

/// Release 1 holds a, b; release 2 holds b (changed) and c.
fn two_different_releases(world: &World) -> (Release, Release) {
    let d1 = support::temp_dir();
    write_manifests(d1.path(), &[("a", "one"), ("b", "old"), ("same", "x")]);
    let d2 = support::temp_dir();
    write_manifests(d2.path(), &[("b", "new"), ("c", "three"), ("same", "x")]);
    let r1 = world.create_from(PROJECT, &sha("d1"), d1.path(), &["--source-branch", "main"]);
    let r2 = world.create_from(PROJECT, &sha("d2"), d2.path(), &["--source-branch", "main"]);
    (r1, r2)
}

#[test]
fn diff_env_project_release_shows_added_removed_and_changed_objects_with_a_unified_diff() {
    let world = World::new(OPEN);
    let (_r1, _r2) = two_different_releases(&world);
    world.ok(&["deploy", "dev", PROJECT, "1"]);
    let out = world.ok(&["diff", "dev", PROJECT, "2"]);
    let text = out.stdout_str();
    for needle in [
        "1 added, 1 removed, 1 changed, 1 unchanged",
        "+ ConfigMap auth/c",
        "- ConfigMap auth/a",
        "~ ConfigMap auth/b",
        "-  key: old",
        "+  key: new",
        "@@",
    ] {
        assert!(text.contains(needle), "missing {needle:?}\n{out}");
    }
    let out = world.ok(&["-o", "json", "diff", "dev", PROJECT, "2"]);
    let report = json(&out);
    assert_eq!(report["added"], serde_json::json!(["ConfigMap auth/c"]));
    assert_eq!(report["removed"], serde_json::json!(["ConfigMap auth/a"]));
    assert_eq!(report["changed"][0]["object"], "ConfigMap auth/b");
    assert!(
        report["changed"][0]["diff"]
            .as_str()
            .unwrap()
            .contains("+  key: new")
    );
    assert_eq!(report["unchanged"], 1);
    // diff writes nothing.
    assert_eq!(world.running("dev", PROJECT), Some(sha("d1")));
}

#[test]
fn diff_against_an_environment_where_nothing_runs_shows_everything_added() {
    let world = World::new(OPEN);
    two_different_releases(&world);
    let out = world.ok(&["-o", "json", "diff", "prod", PROJECT, "2"]);
    let report = json(&out);
    assert_eq!(report["added"].as_array().unwrap().len(), 3);
    assert_eq!(report["removed"].as_array().unwrap().len(), 0);
}

#[test]
fn diff_of_two_references_compares_their_objects() {
    let world = World::new(OPEN);
    let (r1, r2) = two_different_releases(&world);
    let reference = |r: &Release| {
        format!(
            "{}/company/monorepo/{PROJECT}:{}",
            world.registry(),
            r.commit
        )
    };
    let out = world.ok(&["diff", &reference(&r1), &reference(&r2)]);
    out.assert_stdout_contains("1 added, 1 removed, 1 changed, 1 unchanged")
        .assert_stdout_contains("+ ConfigMap auth/c")
        .assert_stdout_contains("- ConfigMap auth/a")
        .assert_stdout_contains("+  key: new");
    let out = world.run(&["-o", "json", "diff", &reference(&r2), &reference(&r1)]);
    let report = json(out.assert_success());
    assert_eq!(report["added"], serde_json::json!(["ConfigMap auth/a"]));
    assert_eq!(report["removed"], serde_json::json!(["ConfigMap auth/c"]));
}

// ---------------------------------------------------------------------------------------------
// generate reads back what deploy wrote

/// `releasectl generate` in `dir` against the world's registry with the cache `cache`,
/// asserting success.
fn generate_in(world: &World, dir: &Path, cache: &str) -> support::Output {
    let out = Cmd::releasectl()
        .arg("generate")
        .current_dir(dir)
        .env("RELEASECTL_REGISTRY", world.registry())
        .env("RELEASECTL_CACHE_DIR", world.cache(cache))
        .run();
    out.assert_success();
    out
}

#[test]
fn the_pointer_written_is_read_back_by_generate_into_that_releases_manifests() {
    let world = World::new(OPEN);
    let (_r1, r2) = two_different_releases(&world);
    world.deploy_each("dev", &["1", "2"]);
    let app = support::temp_dir();
    let pointer = world.pointer("dev", PROJECT).unwrap();
    assert!(pointer.contains(&r2.digest), "{pointer}");
    std::fs::write(app.path().join("release.yaml"), &pointer).unwrap();
    let out = generate_in(&world, app.path(), "generate");
    let text = out.stdout_str();
    for name in ["name: b", "name: c", "name: same", "key: new"] {
        assert!(text.contains(name), "missing {name:?}\n{out}");
    }
    assert!(
        !text.contains("name: a\n") && !text.contains("key: old"),
        "{out}"
    );
    // And it is byte for byte what generating from the release itself gives.
    let direct = support::temp_dir();
    std::fs::write(
        direct.path().join("release.yaml"),
        format!(
            "apiVersion: releasectl.dev/v1alpha1\nkind: ReleasePointer\nmetadata:\n  name: {PROJECT}\n\
             spec:\n  repository: company/monorepo\n  project: {PROJECT}\n  release: {}\n  digest: {}\n",
            r2.commit, r2.digest
        ),
    )
    .unwrap();
    let expected = generate_in(&world, direct.path(), "generate2");
    assert_eq!(out.stdout, expected.stdout);
}
