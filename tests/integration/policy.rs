//! `environments.yaml` (docs/design.md §6, issue 5): strict parsing, and every rule passing and
//! failing, alone and together, through the real binary against a real remote.
//!
//! A policy file error is exit 2 naming the file, the key and the value; a refusal is exit 4
//! listing every failing decision with what was required and what was found, and writes
//! nothing (see [`assert_refused`]: `main` does not move, neither the remote nor the product's
//! clone gains an object). `RELEASECTL_NOW` sets the clock for windows, soak and expiry.

use serde_json::Value;

use crate::support::setup::{PROJECT, stdout_json as json};
use crate::support::world::{
    ACTOR, Release, World, assert_refused, assert_refused_at, assert_refused_each, decision,
    policy_one, sha,
};
use crate::support::{self, Output};

// ---------------------------------------------------------------------------------------------
// Parsing

/// Registers a release under a valid policy, replaces the policy with `bad`, and checks that
/// `deploy --dry-run` exits 2 naming the file, the key and the value, with nothing on stdout.
#[track_caller]
fn assert_policy_error(bad: &str, key: &str, value: &str) {
    let world = World::new(&policy_one("allowed_triggers: [tag]"));
    world.main_release("one");
    world.set_policy(bad);
    for args in [
        &["deploy", "--dry-run", "prod", PROJECT, "1"][..],
        &["deploy", "prod", PROJECT, "1"][..],
    ] {
        let out = world.run(args);
        out.assert_exit(2).assert_stdout_empty();
        out.assert_stderr_contains("environments.yaml")
            .assert_stderr_contains(key)
            .assert_stderr_contains(value);
    }
}

#[test]
pub(crate) fn a_bad_policy_is_exit_2_naming_file_key_and_value() {
    // (prod's promotion_policy, the key below it, the value named)
    #[rustfmt::skip]
    let cases = [
        ("allowed_trigers: [tag]", "allowed_trigers", "\"allowed_trigers\""),
        ("allowed_triggers: [tag, push]", "allowed_triggers", "\"push\""),
        ("allowed_branches: [main, \"release/[0-9]*\"]", "allowed_branches", "\"release/[0-9]*\""),
        ("requires: [dev], soak: 30 minutes", "soak", "\"30 minutes\""),
        ("requires: [stagin]", "requires", "\"stagin\""),
        ("requires_approval: true, approvals: {min: 1, approver: [alice@company.com]}", "approvals.approver", "\"approver\""),
        ("requires_approval: true, approvals: {min: 1, ttl: 1w, approvers: [alice@company.com]}", "approvals.ttl", "\"1w\""),
        ("requires_approval: true, approvals: {min: 2, approvers: [alice@company.com]}", "approvals.approvers", "alice@company.com"),
        ("windows: [{allow: \"Mon-Fri 9-17\", tz: UTC}]", "windows[0].allow", "\"Mon-Fri 9-17\""),
        ("windows: [{allow: \"Mon-Thu 09:00-16:00\"}, {deny: \"Fry 00:00-24:00\"}]", "windows[1].deny", "\"Fry 00:00-24:00\""),
        ("windows: [{allow: \"Mon-Thu 09:00-16:00\", tz: Europe/Atlantis}]", "windows[0].tz", "\"Europe/Atlantis\""),
    ];
    support::each_case(&cases, |(body, key, value)| {
        let key = format!("environments.prod.promotion_policy.{key}");
        assert_policy_error(&policy_one(body), &key, value);
    });
}

#[test]
pub(crate) fn an_unknown_key_in_an_environment_is_exit_2() {
    assert_policy_error(
        "environments:\n  dev:\n    promotion_polcy: {auto_deploy: true}\n  prod: {}\n",
        "environments.dev.promotion_polcy",
        "\"promotion_polcy\"",
    );
}

// ---------------------------------------------------------------------------------------------
// Rules, one at a time

fn deploy_prod(release: &Release) -> Vec<String> {
    vec![
        "deploy".into(),
        "prod".into(),
        PROJECT.into(),
        release.number.to_string(),
    ]
}

/// `deploy prod auth-service 1 --override RULE --reason REASON`.
fn override_prod<'a>(rule: &'a str, reason: &'a str) -> [&'a str; 8] {
    [
        "deploy",
        "prod",
        PROJECT,
        "1",
        "--override",
        rule,
        "--reason",
        reason,
    ]
}

/// Asserts that deploying `release` to prod is refused with messages that say `needles`.
#[track_caller]
fn refused_in_prod(world: &World, release: &Release, needles: &[&str]) -> Output {
    assert_refused(world, &args(&deploy_prod(release)), needles)
}

/// Deploys `release` to prod, asserting success and that prod then runs it.
#[track_caller]
fn deployed_to_prod(world: &World, release: &Release) {
    world.ok(&args(&deploy_prod(release)));
    assert_eq!(world.running("prod", PROJECT), Some(release.commit.clone()));
}

/// A world whose prod has the promotion policy `{body}` (see [`policy_one`]), with a release
/// from `main` at `sha(seed)`.
fn prod_with(body: &str, seed: &str) -> (World, Release) {
    let world = World::new(&policy_one(body));
    let release = world.main_release(seed);
    (world, release)
}

/// The `-o json` report of `deploy --dry-run prod auth-service 1`.
/// The plan of deploying release 1 to prod (a dry run exits 0 or 4: it is read from stdout).
fn dry_run_prod(world: &World) -> Value {
    json(&world.run(&["-o", "json", "deploy", "--dry-run", "prod", PROJECT, "1"]))
}

fn args(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

#[test]
pub(crate) fn allowed_triggers_refuses_a_branch_push_and_admits_a_tag_or_a_manual_release() {
    let (world, pushed) = prod_with("allowed_triggers: [tag, manual]", "pushed");
    refused_in_prod(
        &world,
        &pushed,
        &[
            "allowed_triggers: required one of tag, manual, actual branch_push",
            "company/monorepo/auth-service in prod",
        ],
    );
    let tagged = world.tagged(&sha("tagged"), "v1.2.3");
    deployed_to_prod(&world, &tagged);
    let manual = world.create(
        PROJECT,
        &sha("manual"),
        &["--trigger", "manual", "--source-branch", "main"],
    );
    deployed_to_prod(&world, &manual);
}

#[test]
pub(crate) fn a_release_pushed_from_main_and_later_tagged_passes_allowed_triggers() {
    let world = World::new(&policy_one("allowed_triggers: [tag]"));
    let r = world.main_release("later-tagged");
    assert_refused(&world, &args(&deploy_prod(&r)), &["allowed_triggers"]);
    // Registering the same commit again with a tag adds the trigger (docs/design.md §6: any
    // registered trigger passing is enough).
    world.create(
        PROJECT,
        &r.commit,
        &[
            "--source-branch",
            "main",
            "--source-tag",
            "auth-service/v2.0.0",
        ],
    );
    deployed_to_prod(&world, &r);
}

#[test]
pub(crate) fn allowed_branches_are_anchored_globs() {
    let world = World::new(&policy_one("allowed_branches: [main, \"release/*\"]"));
    // Refused ones first, then admitted ones (each deploy replaces the one before).
    let refused = ["main2", "feature/main", "xmain", "release", "xrelease/1.2"];
    let admitted = ["main", "release/1.2", "release/2026-11"];
    for (i, branch) in refused.iter().chain(&admitted).enumerate() {
        let r = world.create(
            PROJECT,
            &sha(&format!("branch-{i}")),
            &["--source-branch", branch],
        );
        if admitted.contains(branch) {
            deployed_to_prod(&world, &r);
        } else {
            refused_in_prod(
                &world,
                &r,
                &[&format!(
                    "allowed_branches: required a branch matching main, release/*, actual {branch}"
                )],
            );
        }
    }
}

#[test]
pub(crate) fn a_release_without_a_branch_fails_allowed_branches() {
    let world = World::new(&policy_one("allowed_branches: [\"*\"]"));
    let r = world.create(PROJECT, &sha("no-branch"), &["--trigger", "manual"]);
    refused_in_prod(
        &world,
        &r,
        &["allowed_branches: required a branch matching *, actual no branch"],
    );
}

#[test]
pub(crate) fn auto_deploy_writes_only_the_environments_that_have_it() {
    let world = World::new(
        "environments:\n  dev:\n    promotion_policy: {auto_deploy: true}\n  \
         qa:\n    promotion_policy: {auto_deploy: true, allowed_branches: [main]}\n  \
         prod:\n    promotion_policy: {auto_deploy: false}\n",
    );
    let r = world.main_release("auto");
    world.ok(&["deploy", "--auto", PROJECT, "1"]);
    assert_eq!(world.running("dev", PROJECT), Some(r.commit.clone()));
    assert_eq!(world.running("qa", PROJECT), Some(r.commit.clone()));
    assert_eq!(world.running("prod", PROJECT), None);
    // One commit for both environments.
    assert_eq!(
        world.remote.subjects()[0],
        format!("Deploy {PROJECT} to dev, qa: release {}", r.label)
    );
    // A feature-branch release goes where auto_deploy admits it: dev, not qa.
    let feature = world.create(PROJECT, &sha("feature"), &["--source-branch", "feature/x"]);
    world.ok(&["deploy", "--auto", PROJECT, &feature.number.to_string()]);
    assert_eq!(world.running("dev", PROJECT), Some(feature.commit));
    assert_eq!(world.running("qa", PROJECT), Some(r.commit));
}

#[test]
pub(crate) fn auto_deploy_with_no_auto_environment_is_exit_2_and_writes_nothing() {
    let world = World::new(
        "environments:\n  dev:\n    promotion_policy: {auto_deploy: false}\n  prod: {}\n",
    );
    world.main_release("x");
    let head = world.remote.head();
    let out = world.run(&["deploy", "--auto", PROJECT, "1"]);
    out.assert_exit(2).assert_stderr_contains("auto_deploy");
    assert_eq!(world.remote.head(), head);
}

#[test]
pub(crate) fn auto_deploy_that_no_environment_admits_writes_nothing_and_says_so() {
    let world = World::new(
        "environments:\n  dev:\n    promotion_policy: {auto_deploy: true, allowed_branches: [main]}\n",
    );
    let r = world.create(PROJECT, &sha("feature"), &["--source-branch", "feature/x"]);
    let head = world.remote.head();
    let out = world.ok(&["deploy", "--auto", PROJECT, &r.number.to_string()]);
    out.assert_stdout_contains("no environment admits the release");
    assert_eq!(world.remote.head(), head);
}

#[test]
pub(crate) fn requires_admits_a_release_running_or_having_run_in_the_required_environment() {
    let (world, one) = prod_with("requires: [dev]", "one");
    refused_in_prod(
        &world,
        &one,
        &["requires: required running (or having run) in dev, actual never deployed to dev"],
    );
    world.ok(&["deploy", "dev", PROJECT, "1"]);
    let plan = dry_run_prod(&world);
    assert_eq!(decision(&plan, "requires")["actual"], "running in dev");
    assert_eq!(decision(&plan, "requires")["pass"], true);
    // Release 2 replaces it in dev: release 1 ran there, which is enough.
    world.main_release("two");
    world.ok(&["deploy", "dev", PROJECT, "2"]);
    let plan = dry_run_prod(&world);
    assert_eq!(
        decision(&plan, "requires")["actual"],
        "ran in dev until release 2 (main-2) replaced it"
    );
    world.ok(&["deploy", "prod", PROJECT, "1"]);
    assert_eq!(world.running("prod", PROJECT), Some(one.commit));
}

/// A world whose prod requires dev and a 30m soak, with release 1 deployed to dev at 10:00.
fn soaking() -> (World, Release) {
    let (world, r) = prod_with("requires: [dev], soak: 30m", "soak");
    world.ok_at("2026-11-23T10:00:00Z", &["deploy", "dev", PROJECT, "1"]);
    (world, r)
}

#[test]
pub(crate) fn soak_counts_from_when_the_release_reached_the_required_environment() {
    let (world, r) = soaking();
    assert_refused_each(
        &world,
        &args(&deploy_prod(&r)),
        &[
            (
                "2026-11-23T10:10:00Z",
                "soak: required 30m in dev, actual 10m in dev",
            ),
            (
                "2026-11-23T10:29:59Z",
                "soak: required 30m in dev, actual 29m59s in dev",
            ),
        ],
    );
    world.ok_at("2026-11-23T10:30:00Z", &args(&deploy_prod(&r)));
    assert_eq!(world.running("prod", PROJECT), Some(r.commit));
}

#[test]
pub(crate) fn soak_is_not_reset_by_an_unrelated_commit_in_the_required_environment() {
    let (world, r) = soaking();
    // Another project's deploy to dev 20 minutes later does not restart this one's soak.
    world.create("billing", &sha("billing"), &["--source-branch", "main"]);
    world.ok_at("2026-11-23T10:20:00Z", &["deploy", "dev", "billing", "1"]);
    world.ok_at("2026-11-23T10:31:00Z", &args(&deploy_prod(&r)));
}

const BERLIN: &str = "[{allow: \"Mon-Thu 09:00-16:00\", tz: Europe/Berlin}]";
const UTC: &str = "[{allow: \"Mon-Thu 09:00-16:00\", tz: UTC}]";
const WEEKEND: &str = "[{deny: \"Sat,Sun 00:00-24:00\", tz: UTC}]";
/// Friday 18:00 until Saturday 08:00.
const OVERNIGHT: &str = "[{deny: \"Fri 18:00-08:00\", tz: UTC}]";
const MONDAY_BERLIN: &str = "[{allow: \"Mon 00:00-01:00\", tz: Europe/Berlin}]";
/// Weekdays 08-18, but not during the Wednesday 12-13 maintenance.
const BOTH: &str = "[{allow: \"Mon-Fri 08:00-18:00\"}, {deny: \"Wed 12:00-13:00\"}]";
const BERLIN_OUT: &str =
    "windows: required within Mon-Thu 09:00-16:00 (Europe/Berlin), actual Mon 16:30 CET";
const WEEKEND_IN: &str = "windows: required outside Sat,Sun 00:00-24:00 (UTC), \
                          actual Sat 12:00 UTC, inside deny Sat,Sun 00:00-24:00";

#[test]
pub(crate) fn windows_admit_and_refuse_by_weekday_time_and_time_zone() {
    // (windows, now, what the refusal names; "" when the deploy lands). Each case deploys a
    // fresh release to prod under its own remote.
    #[rustfmt::skip]
    let cases = [
        (BERLIN, "2026-11-23T15:30:00Z", BERLIN_OUT), // 16:30 in Berlin: outside
        (BERLIN, "2026-11-27T10:00:00Z", "actual Fri 11:00 CET"), // the wrong day
        (BERLIN, "2026-11-23T08:30:00Z", ""),         // 09:30 in Berlin: inside
        (UTC, "2026-11-23T08:30:00Z", "actual Mon 08:30 UTC"), // the same instant, outside
        (BERLIN, "2026-07-06T07:30:00Z", ""),         // 09:30 CEST: daylight saving time
        (WEEKEND, "2026-11-28T12:00:00Z", WEEKEND_IN),
        (WEEKEND, "2026-11-29T23:59:00Z", "actual Sun 23:59 UTC"),
        (WEEKEND, "2026-11-30T00:00:00Z", ""),
        (OVERNIGHT, "2026-11-27T18:00:00Z", "inside deny Fri 18:00-08:00"),
        (OVERNIGHT, "2026-11-28T07:59:00Z", "inside deny Fri 18:00-08:00"),
        (OVERNIGHT, "2026-11-28T08:00:00Z", ""),
        (MONDAY_BERLIN, "2026-11-29T23:30:00Z", ""), // Sunday 23:30 UTC is Monday in Berlin
        (BOTH, "2026-11-25T12:30:00Z", "inside deny Wed 12:00-13:00"),
        (BOTH, "2026-11-25T13:00:00Z", ""),
    ];
    support::each_case(&cases, |(windows, now, refusal)| {
        let world = World::new(&policy_one(&format!("windows: {windows}")));
        let deploy = deploy_prod(&world.main_release("window"));
        if refusal.is_empty() {
            world.run_at(now, &args(&deploy)).assert_success();
        } else {
            assert_refused_at(&world, now, &args(&deploy), &[refusal]);
        }
    });
}

const APPROVAL_POLICY: &str = "requires_approval: true, approvals: {min: 2, ttl: 24h, approvers: [alice@company.com, bob@company.com]}";
const VALID_UNTIL: &str = "2026-11-24T08:00:00Z";

#[test]
pub(crate) fn two_valid_approvals_by_listed_approvers_admit_the_release() {
    let world = World::new(&policy_one(APPROVAL_POLICY));
    let r = world.main_release("approved");
    refused_in_prod(
        &world,
        &r,
        &[
            "approvals: required 2 distinct approvals by alice@company.com, bob@company.com, actual 0 valid (none)",
        ],
    );
    world.hand_approve_both("prod", &r, VALID_UNTIL);
    let plan = dry_run_prod(&world);
    assert_eq!(
        decision(&plan, "approvals")["actual"],
        "2 valid (alice@company.com, bob@company.com)"
    );
    deployed_to_prod(&world, &r);
}

#[test]
pub(crate) fn approvals_that_do_not_count_are_named_and_leave_the_quorum_short() {
    type Approval<'a> = (&'a str, &'a str, &'a str, &'a str);
    let world = World::new(&policy_one(APPROVAL_POLICY));
    let r = world.main_release("short");
    let other = world.main_release("other");
    let alice = ("alice@company.com", "prod", r.digest.as_str(), VALID_UNTIL);
    let cases: Vec<(&str, Approval<'_>, String)> = vec![
        (
            "unlisted approver",
            ("carol@company.com", "prod", &r.digest, VALID_UNTIL),
            "carol@company.com: not a listed approver".into(),
        ),
        (
            "other digest",
            ("bob@company.com", "prod", &other.digest, VALID_UNTIL),
            format!(
                "bob@company.com: approves digest {}, not {}",
                other.digest, r.digest
            ),
        ),
        (
            "other environment",
            ("bob@company.com", "dev", &r.digest, VALID_UNTIL),
            "bob@company.com: approves environment dev, not prod".into(),
        ),
        (
            "expired",
            ("bob@company.com", "prod", &r.digest, "2026-11-23T09:59:59Z"),
            "bob@company.com: expired at 2026-11-23T09:59:59Z".into(),
        ),
        (
            "duplicate by one approver",
            alice,
            "alice@company.com: approved more than once; counted once".into(),
        ),
    ];
    for (what, second, named) in cases {
        world.hand_approve("prod", &r, &[alice, second]);
        let out = refused_in_prod(&world, &r, &["actual 1 valid (alice@company.com)", &named]);
        assert!(
            out.stderr_str()
                .contains("approvals: required 2 distinct approvals"),
            "{what}: the refusal must name the approvals rule\n{out}"
        );
    }
    // Below quorum: one valid approval alone.
    world.hand_approve("prod", &r, &[alice]);
    refused_in_prod(
        &world,
        &r,
        &[
            "approvals: required 2 distinct approvals by alice@company.com, bob@company.com, actual 1 valid (alice@company.com)",
        ],
    );
}

#[test]
pub(crate) fn an_approval_does_not_outlive_the_policy_ttl() {
    // Approved 2026-11-20 08:00 with a hand-written expiry a month later; the policy's ttl is
    // 24h, so on 2026-11-23 it no longer counts (docs/design.md §8: expiry is the policy `ttl`).
    let (world, r) = prod_with(
        "requires_approval: true, approvals: {min: 1, ttl: 24h, approvers: [alice@company.com]}",
        "ttl",
    );
    let yaml = format!(
        "apiVersion: releasectl.dev/v1alpha1\nkind: ReleaseApprovals\nenvironment: prod\n\
         repository: company/monorepo\nproject: {PROJECT}\ncommit: {}\napprovals:\n\
         - approver: alice@company.com\n  environment: prod\n  digest: \"{}\"\n  \
         approved_at: \"2026-11-20T08:00:00Z\"\n  expires_at: \"2026-12-20T08:00:00Z\"\n  \
         justification: long-lived\n",
        r.commit, r.digest
    );
    world.hand_push(
        &[(
            &format!(
                "approvals/prod/company/monorepo/{PROJECT}/{}.yaml",
                r.commit
            ),
            Some(&yaml),
        )],
        "Approve by hand",
    );
    refused_in_prod(
        &world,
        &r,
        &[
            "approvals: required 1 distinct approvals",
            "alice@company.com",
        ],
    );
}

#[test]
pub(crate) fn a_malformed_approval_file_is_exit_2_naming_it() {
    let world = World::new(&policy_one(APPROVAL_POLICY));
    let r = world.main_release("bad-file");
    let path = format!(
        "approvals/prod/company/monorepo/{PROJECT}/{}.yaml",
        r.commit
    );
    world.hand_push(&[(&path, Some("approvals: [{who: alice}]\n"))], "Bad");
    let out = world.run(&args(&deploy_prod(&r)));
    out.assert_exit(2).assert_stderr_contains(&path);
}

#[test]
pub(crate) fn a_held_environment_refuses_every_deploy_with_its_reason() {
    let world = World::new(
        "environments:\n  dev:\n    promotion_policy: {auto_deploy: true}\n  \
         prod:\n    hold: \"change freeze INC-42\"\n    promotion_policy: {}\n",
    );
    let r = world.main_release("held");
    refused_in_prod(
        &world,
        &r,
        &["environment prod is on hold: change freeze INC-42"],
    );
    // An override of the rules does not lift a hold.
    assert_refused(&world, &override_prod("windows", "urgent"), &["on hold"]);
    // Lifting the hold in the policy lets it through.
    world.set_policy(
        "environments:\n  dev:\n    promotion_policy: {auto_deploy: true}\n  prod:\n    hold: false\n",
    );
    world.run(&args(&deploy_prod(&r))).assert_success();
}

#[test]
pub(crate) fn hold_true_is_a_hold_too() {
    let world = World::new("environments:\n  prod:\n    hold: true\n");
    let r = world.main_release("held");
    refused_in_prod(&world, &r, &["environment prod is on hold"]);
}

// ---------------------------------------------------------------------------------------------
// Overrides

#[test]
pub(crate) fn an_override_with_a_reason_lets_the_rule_pass_and_is_recorded_in_the_commit() {
    let (world, r) = prod_with("requires: [dev], soak: 30m", "hotfix");
    world.ok(&["deploy", "dev", PROJECT, "1"]);
    refused_in_prod(&world, &r, &["soak: required 30m in dev"]);
    world
        .ok(&override_prod("soak", "hotfix for INC-7"))
        .assert_stdout_contains("(overridden)");
    assert_eq!(
        world.remote.last_message(),
        format!(
            "Deploy {PROJECT} to prod: release {label}\n\n\
             Previous release: none\n\
             Deployed by: {ACTOR}\n\
             Overridden: soak (reason: hotfix for INC-7)\n\n\
             Release-Commit: {commit}\n\
             Release-Digest: {digest}\n\
             Environment: prod\n\
             Project: company/monorepo/{PROJECT}\n\
             Override: soak\n\
             Override-Reason: hotfix for INC-7\n\
             Action: deploy\n\n",
            label = r.label,
            commit = r.commit,
            digest = r.digest,
        )
    );
}

#[test]
pub(crate) fn an_override_without_a_reason_is_exit_2_and_writes_nothing() {
    let world = World::new(&policy_one("requires: [dev]"));
    world.main_release("no-reason");
    let head = world.remote.head();
    for extra in [&[][..], &["--reason", "  "][..]] {
        let out = world
            .cmd()
            .args(["deploy", "prod", PROJECT, "1", "--override", "requires"])
            .args(extra)
            .run();
        out.assert_exit(2).assert_stderr_contains("--reason");
        assert_eq!(world.remote.head(), head);
    }
}

#[test]
pub(crate) fn an_override_of_an_unknown_rule_is_exit_2() {
    let world = World::new(&policy_one("requires: [dev]"));
    world.main_release("unknown-rule");
    let out = world.run(&override_prod("everything", "yolo"));
    out.assert_exit(2).assert_stderr_contains("everything");
}

#[test]
pub(crate) fn an_override_of_one_rule_leaves_the_others_failing() {
    let world = World::new(&policy_one(
        "requires: [dev], windows: [{deny: \"Mon-Sun 00:00-24:00\"}]",
    ));
    let r = world.main_release("partial");
    let out = assert_refused(
        &world,
        &override_prod("windows", "night shift"),
        &["requires: required running (or having run) in dev"],
    );
    assert!(
        !out.stderr_str().contains("windows:"),
        "an overridden rule is not a failing decision\n{out}"
    );
    let _ = r;
}

// ---------------------------------------------------------------------------------------------
// Together

const EVERYTHING: &str = "environments:\n  dev:\n    promotion_policy: {auto_deploy: true}\n  \
    prod:\n    promotion_policy:\n      allowed_triggers: [tag]\n      allowed_branches: [main]\n      \
    requires: [dev]\n      soak: 1h\n      requires_approval: true\n      \
    approvals: {min: 1, ttl: 24h, approvers: [bob@company.com]}\n      \
    windows: [{allow: \"Mon-Thu 09:00-16:00\", tz: Europe/Berlin}]\n";

#[test]
pub(crate) fn a_refusal_lists_every_failing_decision_with_required_and_actual() {
    let world = World::new(EVERYTHING);
    let r = world.create(PROJECT, &sha("bad"), &["--source-branch", "feature/x"]);
    assert_refused_at(
        &world,
        "2026-11-28T12:00:00Z",
        &args(&deploy_prod(&r)),
        &[
            "allowed_triggers: required one of tag, actual branch_push",
            "allowed_branches: required a branch matching main, actual feature/x",
            "requires: required running (or having run) in dev, actual never deployed to dev",
            "soak: required 1h in dev, actual never in dev",
            "approvals: required 1 distinct approvals by bob@company.com, actual 0 valid (none)",
            "windows: required within Mon-Thu 09:00-16:00 (Europe/Berlin), actual Sat 13:00 CET",
        ],
    );
}

#[test]
pub(crate) fn a_release_passing_every_rule_together_lands() {
    let world = World::new(EVERYTHING);
    let r = world.tagged(&sha("good"), "v1.0.0");
    world.ok_at(
        "2026-11-23T08:00:00Z",
        &["deploy", "dev", PROJECT, "v1.0.0"],
    );
    world.hand_approve(
        "prod",
        &r,
        &[("bob@company.com", "prod", &r.digest, VALID_UNTIL)],
    );
    // 09:00 UTC: an hour in dev, 10:00 in Berlin.
    let out = world.ok_at(
        "2026-11-23T09:00:00Z",
        &["-o", "json", "deploy", "prod", PROJECT, "v1.0.0"],
    );
    let report = json(&out);
    let rules: Vec<&str> = report["items"][0]["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            assert_eq!(d["pass"], true, "{d}");
            d["rule"].as_str().unwrap()
        })
        .collect();
    assert_eq!(
        rules,
        [
            "allowed_triggers",
            "allowed_branches",
            "requires",
            "soak",
            "approvals",
            "windows"
        ]
    );
    assert_eq!(world.running("prod", PROJECT), Some(r.commit));
}
