//! Approvals (issue 6, docs/design.md §8): `approve` and `revoke` write and remove
//! `approvals/<env>/<repository>/<project>/<commit>.yaml` in commits of their own; an approval
//! counts only by a listed approver, for the exact digest and environment, until it expires,
//! once per approver, and (when the policy lists keys) only with a valid SSH signature over
//! the canonical payload — interoperable both ways with `ssh-keygen -Y sign` / `-Y verify`.
//!
//! Every refusal is checked where it shows: `deploy` exits 4, leaves the remote untouched,
//! and its stderr names the approval that does not count and why.

use std::path::Path;

use serde_json::Value;

use crate::support;
use crate::support::keys::{Key, NAMESPACE, keyed_policy, payload, ssh_keygen_verify};
use crate::support::setup::PROJECT;
use crate::support::world::{
    ALICE, BOB, CAROL, EXPIRES, Entry, MONDAY as NOW, PRODUCTION, Release, World, approval_path,
    approvals_policy as policy, approvals_yaml, assert_deploy_refused, plain_policy, pointer_path,
    sha, yaml,
};

/// A world with the plain policy (alice and bob by identity) and release v1.0.0.
fn plain() -> (World, Release) {
    let world = World::without_actor(&plain_policy());
    let release = world.tagged(&sha("one"), "v1.0.0");
    (world, release)
}

/// A world whose policy lists alice's and bob's keys, with release v1.0.0.
fn keyed() -> (World, Release, Key, Key) {
    // The keys must exist before the policy that lists them, and outlive the world's setup:
    // make them in a directory the world then keeps.
    let keys = support::temp_dir();
    let alice = Key::generate(keys.path(), "alice");
    let bob = Key::generate(keys.path(), "bob");
    let world = World::without_actor(&keyed_policy(&alice, &bob));
    world.keep(keys);
    let release = world.tagged(&sha("one"), "v1.0.0");
    (world, release, alice, bob)
}

/// `who` approves `release` in `env` (signed with `key`, if any), asserting success.
fn approved(world: &World, env: &str, release: &Release, who: &str, key: Option<&Path>) {
    world.approve(env, release, who, key).assert_success();
}

/// Asserts a refused deploy of `release` in which alice's approval counts and bob's does not,
/// for `why`.
#[track_caller]
fn refused_for_bob(world: &World, release: &Release, why: &str) {
    assert_deploy_refused(
        world,
        release,
        &[&format!("1 valid ({ALICE})"), &format!("{BOB}: {why}")],
    );
}

/// Asserts that the tip of `world`'s remote is one commit on top of `before`, by alice, whose
/// message is `subject`, a blank line, and a body with every line of `lines` and the
/// trailers of `action` on alice's approval of `release` in production, each a line of its own.
#[track_caller]
fn assert_approval_commit(
    world: &World,
    before: &str,
    release: &Release,
    (action, subject): (&str, &str),
    lines: &[&str],
) {
    assert_eq!(
        world.remote.git_ok(&["rev-parse", "main^"]),
        before,
        "one commit"
    );
    let message = world.remote.message("main");
    assert!(message.starts_with(&format!("{subject}\n\n")), "{message}");
    let trailers = [
        format!("Release-Commit: {}", release.commit),
        format!("Release-Digest: {}", release.digest),
        "Environment: production".to_owned(),
        "Project: company/monorepo/auth-service".to_owned(),
        format!("Action: {action}"),
        format!("Approver: {ALICE}"),
    ];
    for line in lines
        .iter()
        .copied()
        .chain(trailers.iter().map(String::as_str))
    {
        assert!(
            message.lines().any(|l| l == line),
            "commit message lacks {line:?}:\n{message}"
        );
    }
    assert_eq!(
        world
            .remote
            .git_ok(&["log", "-1", "--format=%an <%ae>", "main"]),
        format!("{ALICE} <{ALICE}>")
    );
}

/// Pushes `file` (JSON is YAML) by hand as the production approvals file of `release`.
fn push_approvals(world: &World, release: &Release, file: &Value, message: &str) {
    let text = serde_json::to_string_pretty(file).expect("json");
    world.hand_push(
        &[(&approval_path(PRODUCTION, &release.commit), Some(&text))],
        message,
    );
}

/// Alice and bob approve `release` in production, each signed with their key.
fn approved_signed(world: &World, release: &Release, alice: &Key, bob: &Key) {
    approved(world, PRODUCTION, release, ALICE, Some(&alice.private));
    approved(world, PRODUCTION, release, BOB, Some(&bob.private));
}

fn deployed(world: &World, release: &Release) {
    let out = world.deploy(PRODUCTION, release);
    out.assert_success();
    let pointer = world
        .remote
        .show_required(&pointer_path(PRODUCTION, PROJECT));
    if !pointer.contains(&release.commit) || !pointer.contains(&release.digest) {
        out.fail(&format!(
            "deploy succeeded but the pointer does not name the release:\n{pointer}"
        ));
    }
}

// ---- counting ----

#[test]
fn approval_by_a_listed_approver_counts_and_two_listed_approvers_meet_the_quorum() {
    let (world, release) = plain();
    approved(&world, PRODUCTION, &release, ALICE, None);
    // Below quorum: alice's counts, one is not two.
    assert_deploy_refused(
        &world,
        &release,
        &[
            "approvals",
            "2 distinct approvals",
            &format!("1 valid ({ALICE})"),
        ],
    );
    approved(&world, PRODUCTION, &release, BOB, None);
    deployed(&world, &release);
}

#[test]
fn no_approval_at_all_is_below_quorum() {
    let (world, release) = plain();
    assert_deploy_refused(&world, &release, &["approvals", "0 valid (none)"]);
}

#[test]
fn approval_by_an_unlisted_approver_does_not_count_and_the_refusal_says_so() {
    let (world, release) = plain();
    // `approve` refuses carol (see approve_by_an_unlisted_approver_is_refused_…): only a
    // hand-written approval can put her in the file.
    world.hand_approve(
        PRODUCTION,
        &release,
        &[(CAROL, PRODUCTION, &release.digest, EXPIRES)],
    );
    approved(&world, PRODUCTION, &release, ALICE, None);
    assert_deploy_refused(
        &world,
        &release,
        &[
            &format!("1 valid ({ALICE})"),
            &format!("{CAROL}: not a listed approver"),
        ],
    );
}

#[test]
fn approval_for_another_digest_does_not_count_and_the_refusal_names_both_digests() {
    let (world, release) = plain();
    world.approve_both(&release);
    let other = format!("sha256:{}", "ab".repeat(32));
    world.edit_approvals(PRODUCTION, &release, |f| {
        f["approvals"][1]["digest"] = Value::from(other.clone());
    });
    refused_for_bob(
        &world,
        &release,
        &format!("approves digest {other}, not {}", release.digest),
    );
}

#[test]
fn approval_for_another_environment_does_not_count() {
    let (world, release) = plain();
    // Approvals given for staging live in staging's file and say nothing about production.
    approved(&world, "staging", &release, ALICE, None);
    approved(&world, "staging", &release, BOB, None);
    assert!(
        world
            .remote
            .show(&approval_path("staging", &release.commit))
            .is_some()
    );
    assert_deploy_refused(&world, &release, &["0 valid (none)"]);
    // An entry for staging copied into production's file does not count either.
    world.approve_both(&release);
    world.edit_approvals(PRODUCTION, &release, |f| {
        f["approvals"][1]["environment"] = Value::from("staging");
    });
    refused_for_bob(
        &world,
        &release,
        "approves environment staging, not production",
    );
}

#[test]
fn expired_approval_does_not_count_and_the_refusal_says_when_it_expired() {
    let (world, release) = plain();
    world.approve_both(&release);
    let late = "2026-11-24T10:00:01Z";
    let head = world.remote.head();
    let out = world.deploy_at(late, PRODUCTION, &release);
    out.assert_exit(4)
        .assert_stdout_contains("refused: nothing written")
        .assert_stderr_contains(&format!("{ALICE}: expired at {EXPIRES}"))
        .assert_stderr_contains(&format!("{BOB}: expired at {EXPIRES}"))
        .assert_stderr_contains("0 valid (none)");
    assert_eq!(world.remote.head(), head, "a refused deploy moved main");
    // A second before they expire, the same approvals count.
    world
        .deploy_at("2026-11-24T09:59:59Z", PRODUCTION, &release)
        .assert_success();
}

#[test]
fn revoked_approval_does_not_count() {
    let (world, release) = plain();
    world.approve_both(&release);
    world.revoke(PRODUCTION, &release, BOB).assert_success();
    assert_deploy_refused(&world, &release, &[&format!("1 valid ({ALICE})")]);
}

#[test]
fn an_approver_cannot_approve_twice_and_a_hand_made_duplicate_counts_once() {
    let (world, release) = plain();
    approved(&world, PRODUCTION, &release, ALICE, None);
    let head = world.remote.head();
    let out = world.approve(PRODUCTION, &release, ALICE, None);
    out.assert_exit(2)
        .assert_stdout_empty()
        .assert_stderr_contains("already approved");
    assert_eq!(world.remote.head(), head, "a refused approval moved main");
    // The same approver twice in the file, by hand: one approval, not a quorum.
    world.edit_approvals(PRODUCTION, &release, |f| {
        let first = f["approvals"][0].clone();
        f["approvals"].as_array_mut().expect("list").push(first);
    });
    assert_deploy_refused(
        &world,
        &release,
        &[
            &format!("1 valid ({ALICE})"),
            &format!("{ALICE}: approved more than once; counted once"),
        ],
    );
}

// ---- the files and commits ----

#[test]
fn approve_writes_the_approval_file_in_its_own_descriptive_commit() {
    let world = World::without_actor(&plain_policy().replace("ttl: 24h", "ttl: 12h"));
    let release = world.tagged(&sha("one"), "v1.0.0");
    let before = world.remote.head();
    let out = world.approve(PRODUCTION, &release, ALICE, None);
    out.assert_success();
    let commit = world.remote.head();
    out.assert_stdout_contains(&commit);
    let path = approval_path(PRODUCTION, &release.commit);
    assert_eq!(world.remote.changed("main"), vec![path.clone()]);

    let file = world.approvals(PRODUCTION, &release);
    assert_eq!(file["apiVersion"], "releasectl.dev/v1alpha1");
    assert_eq!(file["kind"], "ReleaseApprovals");
    assert_eq!(file["environment"], PRODUCTION);
    assert_eq!(file["repository"], "company/monorepo");
    assert_eq!(file["project"], "auth-service");
    assert_eq!(file["commit"], release.commit.as_str());
    let approvals = file["approvals"].as_array().expect("approvals list");
    assert_eq!(approvals.len(), 1, "{file:#}");
    let a = &approvals[0];
    assert_eq!(a["approver"], ALICE);
    assert_eq!(a["environment"], PRODUCTION);
    assert_eq!(a["digest"], release.digest.as_str());
    assert_eq!(a["approved_at"], NOW);
    // The policy's ttl, not the default.
    assert_eq!(a["expires_at"], "2026-11-23T22:00:00Z");
    assert_eq!(a["justification"], "reviewed the change log and the canary");
    assert!(a.get("signature").is_none(), "unsigned without --key");

    assert_approval_commit(
        &world,
        &before,
        &release,
        (
            "approve",
            "Approve release 1 (v1.0.0) of auth-service for production",
        ),
        &[
            "Justification: reviewed the change log and the canary",
            &format!("Approved by: {ALICE}"),
            "Expires: 2026-11-23T22:00:00Z",
        ],
    );
}

#[test]
fn approve_without_a_ttl_in_the_policy_expires_after_24_hours() {
    let world = World::without_actor(&policy(&format!("{ALICE}, {BOB}")).replace("ttl: 24h, ", ""));
    let release = world.tagged(&sha("one"), "v1.0.0");
    approved(&world, PRODUCTION, &release, ALICE, None);
    let file = world.approvals(PRODUCTION, &release);
    assert_eq!(file["approvals"][0]["expires_at"], EXPIRES);
}

#[test]
fn approve_without_a_justification_is_refused_and_writes_nothing() {
    let (world, _release) = plain();
    let head = world.remote.head();
    let out = world
        .cmd()
        .args(["approve", PRODUCTION, "auth-service", "v1.0.0"])
        .args(["--justification", "  ", "--actor", ALICE])
        .run();
    out.assert_exit(2)
        .assert_stdout_empty()
        .assert_stderr_contains("justification");
    assert_eq!(world.remote.head(), head);
}

#[test]
fn revoke_removes_the_approval_in_its_own_descriptive_commit() {
    let (world, release) = plain();
    world.approve_both(&release);
    let path = approval_path(PRODUCTION, &release.commit);

    let before = world.remote.head();
    world.revoke(PRODUCTION, &release, ALICE).assert_success();
    assert_eq!(world.remote.changed("main"), vec![path.clone()]);
    let file = world.approvals(PRODUCTION, &release);
    let approvers: Vec<&str> = file["approvals"]
        .as_array()
        .expect("list")
        .iter()
        .map(|a| a["approver"].as_str().expect("approver"))
        .collect();
    assert_eq!(approvers, vec![BOB], "only alice's approval is gone");
    assert_approval_commit(
        &world,
        &before,
        &release,
        (
            "revoke",
            "Revoke approval of release 1 (v1.0.0) of auth-service for production",
        ),
        &[&format!("Revoked by: {ALICE}")],
    );

    // The last approval revoked: the file goes.
    world.revoke(PRODUCTION, &release, BOB).assert_success();
    assert_eq!(world.remote.changed("main"), vec![path.clone()]);
    assert!(world.remote.show(&path).is_none(), "{path} is still there");

    // Nothing left to revoke: usage error, no commit.
    let head = world.remote.head();
    world
        .revoke(PRODUCTION, &release, BOB)
        .assert_exit(2)
        .assert_stdout_empty();
    assert_eq!(world.remote.head(), head);
}

// ---- signatures ----

#[test]
fn signed_approval_made_by_us_is_verified_by_ssh_keygen() {
    let (world, release, alice, _bob) = keyed();
    approved(&world, PRODUCTION, &release, ALICE, Some(&alice.private));
    assert!(
        world
            .remote
            .message("main")
            .lines()
            .any(|l| l == "Signed: yes"),
        "{}",
        world.remote.message("main")
    );
    let file = world.approvals(PRODUCTION, &release);
    let approval = &file["approvals"][0];
    let signature = approval["signature"]
        .as_str()
        .unwrap_or_else(|| panic!("no signature in {file:#}"));
    assert!(signature.starts_with("-----BEGIN SSH SIGNATURE-----"));
    let payload = payload(&file, approval);
    assert_eq!(
        payload,
        format!(
            "releasectl-approval-v1\nenvironment=production\nrepository=company/monorepo\nproject=auth-service\ncommit={}\ndigest={}\napprover={ALICE}\nexpires_at={EXPIRES}\n",
            release.commit, release.digest
        )
    );
    let out = ssh_keygen_verify(ALICE, &alice.public, &payload, signature);
    out.assert_success()
        .assert_stdout_contains(&format!("Good \"{NAMESPACE}\" signature for {ALICE}"));
    // The same check fails on a payload edited after signing: the verification is real.
    let tampered = payload.replace(EXPIRES, "2027-11-24T10:00:00Z");
    ssh_keygen_verify(ALICE, &alice.public, &tampered, signature).assert_failure();
}

/// An approvals file with alice's and bob's approvals of `release`, signed by `ssh-keygen`.
fn signed_by_ssh_keygen(release: &Release, alice: &Key, bob: &Key) -> String {
    let head = approvals_yaml(PRODUCTION, release, &[]);
    let file = yaml(&head);
    let entry = |who: &'static str, key: &Key| {
        let mut a = serde_json::json!({
            "approver": who, "environment": PRODUCTION,
            "digest": release.digest, "expires_at": EXPIRES,
        });
        let sig = key.sign(&payload(&file, &a), NAMESPACE);
        a["signature"] = Value::from(sig);
        a
    };
    let (a, b) = (entry(ALICE, alice), entry(BOB, bob));
    let e = |v: &'static str, a: &Value| Entry {
        approver: v,
        environment: PRODUCTION,
        digest: &release.digest,
        expires_at: EXPIRES,
        signature: a["signature"].as_str().map(str::to_owned),
    };
    approvals_yaml(PRODUCTION, release, &[e(ALICE, &a), e(BOB, &b)])
}

#[test]
fn signatures_made_by_ssh_keygen_are_accepted_by_deploy_and_check() {
    let (world, release, alice, bob) = keyed();
    let text = signed_by_ssh_keygen(&release, &alice, &bob);
    world.hand_push(
        &[(&approval_path(PRODUCTION, &release.commit), Some(&text))],
        "Approve v1.0.0 with ssh-keygen signatures",
    );
    deployed(&world, &release);
    world.ok(&["check"]);
    world.ok(&["check", "--range", "..main"]);
}

#[test]
fn signature_by_another_key_does_not_count() {
    let (world, release, alice, _bob) = keyed();
    let mallory = Key::generate(world.dir(), "mallory");
    // `approve` refuses a signature by another key: bob's is written by hand, by mallory.
    let text = signed_by_ssh_keygen(&release, &alice, &mallory);
    world.hand_push(
        &[(&approval_path(PRODUCTION, &release.commit), Some(&text))],
        "Approve with bob's name and mallory's key",
    );
    refused_for_bob(&world, &release, "signature does not verify");
}

#[test]
fn signature_in_another_namespace_does_not_count() {
    let (world, release, alice, bob) = keyed();
    let text = signed_by_ssh_keygen(&release, &alice, &bob);
    let mut file = yaml(&text);
    let sig = bob.sign(&payload(&file, &file["approvals"][1]), "git");
    file["approvals"][1]["signature"] = Value::from(sig);
    push_approvals(
        &world,
        &release,
        &file,
        "Approve with a git-namespace signature",
    );
    assert_deploy_refused(
        &world,
        &release,
        &[&format!("{BOB}: signature does not verify"), "namespace"],
    );
}

#[test]
fn payload_edited_after_signing_does_not_count() {
    let (world, release, alice, bob) = keyed();
    approved_signed(&world, &release, &alice, &bob);
    // Extend bob's approval by a year after he signed it.
    world.edit_approvals(PRODUCTION, &release, |f| {
        f["approvals"][1]["expires_at"] = Value::from("2027-11-24T10:00:00Z");
    });
    refused_for_bob(&world, &release, "signature does not verify");
}

#[test]
fn signed_approval_moved_to_another_release_does_not_count() {
    let (world, one, alice, bob) = keyed();
    let two = world.tagged(&sha("two"), "v1.1.0");
    approved_signed(&world, &one, &alice, &bob);
    // Copy release one's approvals to release two, with two's digest: what push access alone
    // could do. The signatures cover one's commit and digest.
    let mut file = world.approvals(PRODUCTION, &one);
    file["commit"] = Value::from(two.commit.clone());
    for a in file["approvals"].as_array_mut().expect("list") {
        a["digest"] = Value::from(two.digest.clone());
    }
    push_approvals(&world, &two, &file, "Copy approvals by hand");
    assert_deploy_refused(
        &world,
        &two,
        &[
            "0 valid (none)",
            &format!("{ALICE}: signature does not verify"),
            &format!("{BOB}: signature does not verify"),
        ],
    );
}

#[test]
fn truncated_signature_does_not_count() {
    let (world, release, alice, bob) = keyed();
    approved_signed(&world, &release, &alice, &bob);
    world.edit_approvals(PRODUCTION, &release, |f| {
        let sig = f["approvals"][1]["signature"]
            .as_str()
            .expect("signature")
            .to_owned();
        let lines: Vec<&str> = sig.lines().collect();
        // Drop the last line of the base64 body, keep the armour.
        let mut cut: Vec<&str> = lines[..lines.len() - 2].to_vec();
        cut.push(lines[lines.len() - 1]);
        f["approvals"][1]["signature"] = Value::from(cut.join("\n") + "\n");
    });
    refused_for_bob(&world, &release, "signature does not verify");
}

#[test]
fn unsigned_approval_does_not_count_when_the_policy_lists_the_key() {
    let (world, release, alice, bob) = keyed();
    // `approve` refuses an unsigned approval here: bob's is written by hand, without one.
    let mut file = yaml(&signed_by_ssh_keygen(&release, &alice, &bob));
    file["approvals"][1]
        .as_object_mut()
        .expect("approval")
        .remove("signature");
    push_approvals(&world, &release, &file, "Approve unsigned by hand");
    refused_for_bob(
        &world,
        &release,
        "unsigned, but the policy lists the approver's key",
    );
}

#[test]
fn signed_approvals_by_both_listed_keys_meet_the_quorum() {
    let (world, release, alice, bob) = keyed();
    approved_signed(&world, &release, &alice, &bob);
    deployed(&world, &release);
}
