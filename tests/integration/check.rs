//! `releasectl check` and the `pre-receive` hook (issue 6, docs/design.md §7–§8): the GitOps
//! repository checks itself, so a pointer change pushed around the CLI is flagged with its
//! commit, file and rule — and refused outright by a server running `scripts/hooks/pre-receive`.

use serde_json::Value;

use crate::support;
use crate::support::git::{GitDaemon, git};
use crate::support::keys::{Key, keyed_policy};
use crate::support::setup::{PROJECT, stdout_json as json};
use crate::support::world::{
    ALICE, BOB, EXPIRES, Entry, MONDAY as NOW, PRODUCTION, Release, World, approval_path,
    approvals_yaml, plain_policy, pointer_path, sha,
};

/// A world where v1.0.0 was approved by alice and bob and deployed to production by
/// releasectl, and v1.1.0 is registered but not approved.
fn deployed_v1() -> (World, Release, Release) {
    let world = World::without_actor(&plain_policy());
    let one = world.tagged(&sha("one"), "v1.0.0");
    world.approve_both(&one);
    world.deploy(PRODUCTION, &one).assert_success();
    let two = world.tagged(&sha("two"), "v1.1.0");
    (world, one, two)
}

/// Pushes, by hand, production's pointer naming `commit` with `digest`; returns the commit.
fn hand_pointer(world: &World, commit: &str, digest: &str) -> String {
    let pointer = world.pointer_naming(PRODUCTION, commit, digest);
    world.hand_push(
        &[(&pointer_path(PRODUCTION, PROJECT), Some(&pointer))],
        "Bump auth-service in production",
    )
}

/// The violations of a `check -o json` report.
fn violations(out: &crate::support::Output) -> Vec<Value> {
    json(out)["violations"]
        .as_array()
        .unwrap_or_else(|| out.fail("no violations list"))
        .clone()
}

/// `deploy production auth-service v1.0.0 --actor alice@company.com`.
pub(crate) const DEPLOY_V1: [&str; 6] = [
    "deploy",
    PRODUCTION,
    "auth-service",
    "v1.0.0",
    "--actor",
    ALICE,
];

/// Asserts that the production pointer at the tip names `release`.
#[track_caller]
fn assert_production_names(world: &World, release: &Release) {
    let pointer = world
        .remote
        .show_required(&pointer_path(PRODUCTION, PROJECT));
    assert!(pointer.contains(&release.commit), "{pointer}");
}

/// The violations `-o json check ARGS` finds, asserting exit 4.
fn violations_of(world: &World, args: &[&str]) -> Vec<Value> {
    let out = world.cmd().args(["-o", "json", "check"]).args(args).run();
    out.assert_exit(4);
    violations(&out)
}

/// Asserts that `v` is one violation, of `rule` by `commit`.
#[track_caller]
fn assert_only_violation(v: &[Value], commit: &str, rule: &str) {
    assert_eq!(v.len(), 1, "{v:#?}");
    assert_eq!(v[0]["commit"], commit);
    assert_eq!(v[0]["rule"], rule);
}

#[test]
fn a_clean_history_of_releasectl_deploys_passes() {
    let (world, one, two) = deployed_v1();
    world.deploy("staging", &two).assert_success();
    world.approve_both(&two);
    world.deploy(PRODUCTION, &two).assert_success();
    world.deploy("staging", &one).assert_success();
    let out = world.ok(&["check"]);
    out.assert_stdout_contains("0 violation(s)");
    let out = world.ok(&["check", "--range", "..main"]);
    out.assert_stdout_contains("0 violation(s)");
    let out = world.ok(&["-o", "json", "check", "--range", "..main"]);
    assert_eq!(violations(&out), Vec::<Value>::new());
    assert!(json(&out)["changes"].as_u64().is_some_and(|n| n >= 8));
}

#[test]
fn a_hand_pushed_production_pointer_change_that_policy_forbids_is_flagged_with_its_commit() {
    let (world, _one, two) = deployed_v1();
    let bad = hand_pointer(&world, &two.commit, &two.digest);
    let file = pointer_path(PRODUCTION, PROJECT);

    let out = world.run(&["check"]);
    out.assert_exit(4)
        .assert_stdout_contains(&format!("{} {file}: approvals: required", &bad[..12]))
        .assert_stdout_contains("0 valid (none)")
        .assert_stdout_contains("1 violation(s)")
        .assert_stderr_contains("policy violation");

    let v = violations_of(&world, &[]);
    assert_eq!(v.len(), 1, "{v:#?}");
    assert_eq!(v[0]["commit"], bad.as_str());
    assert_eq!(v[0]["file"], file.as_str());
    assert_eq!(v[0]["rule"], "approvals");
    assert!(
        v[0]["required"]
            .as_str()
            .is_some_and(|r| r.contains("2 distinct approvals by alice@company.com")),
        "{v:#?}"
    );
    assert!(
        v[0]["actual"]
            .as_str()
            .is_some_and(|r| r.starts_with("0 valid")),
        "{v:#?}"
    );
}

#[test]
fn check_range_checks_each_commit_not_only_the_last_change() {
    let (world, one, two) = deployed_v1();
    let good = world.remote.head();
    let bad = hand_pointer(&world, &two.commit, &two.digest);
    // Put v1.0.0 back by hand: that change is allowed (approved), and is now the pointer's
    // last change, so the tip looks clean.
    let restore = hand_pointer(&world, &one.commit, &one.digest);
    world.ok(&["check"]);

    let v = violations_of(&world, &["--range", "..main"]);
    assert_only_violation(&v, &bad, "approvals");

    world
        .run(&["check", "--range", &format!("{good}..{bad}")])
        .assert_exit(4)
        .assert_stdout_contains(&bad[..12]);
    world.ok(&["check", "--range", &format!("{bad}..{restore}")]);
    // A range must be A..B.
    world
        .run(&["check", "--range", &bad])
        .assert_exit(2)
        .assert_stdout_empty();
}

#[test]
fn a_pointer_naming_an_unregistered_commit_is_flagged() {
    let (world, one, _two) = deployed_v1();
    let ghost = sha("never registered");
    let bad = hand_pointer(&world, &ghost, &one.digest);
    let v = violations_of(&world, &[]);
    assert!(
        v.iter().any(|x| x["commit"] == bad.as_str()
            && x["rule"] == "registered"
            && x["file"] == pointer_path(PRODUCTION, PROJECT).as_str()
            && x["actual"].as_str().is_some_and(|a| a.contains(&ghost))),
        "{v:#?}"
    );
}

#[test]
fn a_pointer_with_a_wrong_digest_is_flagged() {
    let (world, one, two) = deployed_v1();
    // v1.0.0's commit with v1.1.0's digest: approvals for v1.0.0 exist, so only the digest is
    // wrong.
    assert_ne!(one.digest, two.digest);
    let bad = hand_pointer(&world, &one.commit, &two.digest);
    let v = violations_of(&world, &[]);
    assert!(
        v.iter().any(|x| x["commit"] == bad.as_str()
            && x["rule"] == "digest"
            && x["required"]
                .as_str()
                .is_some_and(|r| r.contains(&one.digest))
            && x["actual"].as_str() == Some(two.digest.as_str())),
        "{v:#?}"
    );
}

#[test]
fn an_override_recorded_by_deploy_is_accepted_by_check() {
    let world = World::without_actor(&plain_policy());
    let one = world.tagged(&sha("one"), "v1.0.0");
    let out = world
        .cmd()
        .args(DEPLOY_V1)
        .args([
            "--override",
            "approvals",
            "--reason",
            "incident 4711: hotfix",
        ])
        .run();
    out.assert_success();
    let message = world.remote.message("main");
    assert!(
        message.lines().any(|l| l == "Override: approvals"),
        "{message}"
    );
    assert_production_names(&world, &one);
    world.ok(&["check"]);
    world.ok(&["check", "--range", "..main"]);
}

#[test]
fn a_hand_pushed_commit_whose_trailers_lie_is_flagged() {
    let (world, one, two) = deployed_v1();
    world.approve_both(&two);
    // An allowed change (v1.1.0 is approved), dressed as releasectl's deploy of another
    // release.
    let pointer = world.pointer_naming(PRODUCTION, &two.commit, &two.digest);
    let bad = world.hand_push(
        &[(&pointer_path(PRODUCTION, PROJECT), Some(&pointer))],
        &format!(
            "Deploy auth-service to production: release 1 (v1.0.0)\n\nRelease-Commit: {}\nRelease-Digest: {}\nEnvironment: production\nProject: company/monorepo/auth-service\nAction: deploy\n",
            one.commit, one.digest
        ),
    );
    let v = violations_of(&world, &[]);
    assert!(
        v.iter()
            .any(|x| x["commit"] == bad.as_str() && x["rule"] == "trailers"),
        "{v:#?}"
    );
}

// ---- the pre-receive hook ----

#[test]
fn the_pre_receive_hook_rejects_a_forbidden_push_and_accepts_a_releasectl_deploy() {
    let world = World::without_actor(&plain_policy());
    let one = world.tagged(&sha("one"), "v1.0.0");
    let two = world.tagged(&sha("two"), "v1.1.0");

    // scripts/hooks/pre-receive, installed verbatim.
    let hook = world.remote.path().join("hooks/pre-receive");
    std::fs::copy(
        support::manifest_dir().join("scripts/hooks/pre-receive"),
        &hook,
    )
    .expect("install the hook");
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755))
            .expect("chmod the hook");
    }
    let bin = env!("CARGO_BIN_EXE_releasectl");
    let hook_env = [("RELEASECTL", bin), ("RELEASECTL_NOW", NOW)];
    let daemon = GitDaemon::start_with_env(&world.remote, &hook_env);
    let via = |args: &[&str]| world.cmd_via(&daemon.url(), NOW).args(args).run();

    // Good: approvals and a deploy through the hooked remote.
    for who in [ALICE, BOB] {
        via(&[
            "approve",
            PRODUCTION,
            "auth-service",
            "v1.0.0",
            "--justification",
            "canary is green",
            "--actor",
            who,
        ])
        .assert_success();
    }
    let out = via(&DEPLOY_V1);
    out.assert_success();
    assert_production_names(&world, &one);
    let good = world.remote.head();
    assert!(world.remote.message(&good).contains("Action: deploy"));

    // Bad: v1.1.0 has no approvals; a plain git push of the pointer is refused by the server.
    let pointer = world.pointer_naming(PRODUCTION, &two.commit, &two.digest);
    let bad = world.hand_commit(
        &[(&pointer_path(PRODUCTION, PROJECT), Some(&pointer))],
        "Bump auth-service in production",
    );
    let out = world.push_with(&hook_env);
    out.assert_failure();
    let stderr = out.stderr_str();
    for needle in [
        "pre-receive hook declined",
        "push to main refused",
        &bad[..12],
        "approvals",
    ] {
        if !stderr.contains(needle) {
            out.fail(&format!("git push stderr should contain {needle:?}"));
        }
    }
    assert_eq!(world.remote.head(), good, "the refused push moved main");
    let objects = git()
        .arg("--git-dir")
        .arg(world.remote.path())
        .args(["cat-file", "-e", &bad])
        .run();
    assert!(
        !objects.success(),
        "the refused commit's objects reached the repository"
    );

    // The same kind of push through the daemon is refused too.
    let daemon_push = git()
        .arg("-C")
        .arg(world.work())
        .args(["push", &daemon.url(), "HEAD:main"])
        .run();
    daemon_push
        .assert_failure()
        .assert_stderr_contains("push to main refused");
    assert_eq!(world.remote.head(), good);
}

#[test]
fn approvals_revoked_or_expired_after_the_deploy_do_not_make_check_flag_it() {
    let (world, one, _two) = deployed_v1();
    world.revoke(PRODUCTION, &one, ALICE).assert_success();
    // A change is judged at its commit time: two days later, with alice's approval gone and
    // bob's expired, the deploy was still allowed when it landed.
    world
        .at("2026-11-25T10:00:00Z")
        .args(["check", "--range", "..main"])
        .run()
        .assert_success();
}

#[test]
fn a_hand_pushed_pointer_change_with_forged_unsigned_approvals_is_flagged() {
    let keys = support::temp_dir();
    let alice = Key::generate(keys.path(), "alice");
    let bob = Key::generate(keys.path(), "bob");
    let world = World::without_actor(&keyed_policy(&alice, &bob));
    let one = world.tagged(&sha("one"), "v1.0.0");
    // Push access alone: approvals written by hand, unsigned, and the pointer, in one commit.
    let approvals = approvals_yaml(
        PRODUCTION,
        &one,
        &[ALICE, BOB].map(|who| Entry {
            approver: who,
            environment: PRODUCTION,
            digest: &one.digest,
            expires_at: EXPIRES,
            signature: None,
        }),
    );
    let pointer = format!(
        "apiVersion: releasectl.dev/v1alpha1\nkind: ReleasePointer\nmetadata:\n  name: auth-service\nspec:\n  repository: company/monorepo\n  project: auth-service\n  release: {}\n  digest: {}\n",
        one.commit, one.digest
    );
    let bad = world.hand_push(
        &[
            (&approval_path(PRODUCTION, &one.commit), Some(&approvals)),
            (&pointer_path(PRODUCTION, PROJECT), Some(&pointer)),
        ],
        "Deploy auth-service v1.0.0 to production",
    );
    let v = violations_of(&world, &["--range", "..main"]);
    assert_only_violation(&v, &bad, "approvals");
    assert!(
        v[0]["actual"]
            .as_str()
            .is_some_and(|a| a.contains("0 valid") && a.contains("unsigned")),
        "{v:#?}"
    );
}

/// Product bug: the pointer writer (src/pointer.rs `render`) leaves `spec.release` unquoted,
/// so a commit SHA made of digits only (or digits and one `e`) reads back as a YAML number and
/// every later `check` (and deploy reading that pointer) fails on the pointer releasectl wrote.
#[test]
fn a_release_whose_commit_is_all_digits_deploys_and_checks_clean() {
    let world = World::without_actor(&plain_policy());
    let one = world.tagged(&"1234567890".repeat(4), "v1.0.0");
    world.approve_both(&one);
    world.deploy(PRODUCTION, &one).assert_success();
    world.ok(&["check"]);
}

/// Product gap (security): a pointer change is judged by the policy of its own commit, so a
/// push that moves the pointer and, in the same commit, drops `requires_approval` (or swaps
/// the approvers' keys for the pusher's) judges itself by the rules it just wrote. The
/// change should be judged by the policy in force before it (its parent's).
#[test]
fn a_hand_push_that_relaxes_the_policy_in_the_same_commit_is_flagged() {
    let (world, _one, two) = deployed_v1();
    let pointer = world.pointer_naming(PRODUCTION, &two.commit, &two.digest);
    let relaxed = plain_policy().replace("requires_approval: true", "requires_approval: false");
    let bad = world.hand_push(
        &[
            ("environments.yaml", Some(&relaxed)),
            (&pointer_path(PRODUCTION, PROJECT), Some(&pointer)),
        ],
        "Bump auth-service in production",
    );
    let v = violations_of(&world, &["--range", "..main"]);
    assert!(
        v.iter()
            .any(|x| x["commit"] == bad.as_str() && x["rule"] == "approvals"),
        "{v:#?}"
    );
}
