//! Signed pointer commits (issue 17, docs/policy.md `commit_signers`): with
//! `RELEASECTL_SIGNING_KEY` every commit releasectl writes carries a git SSH signature that
//! `git verify-commit` accepts; `check` accepts commits signed by `git commit -S`
//! (`gpg.format=ssh`) with a listed key and reports unsigned ones and unlisted keys; `history`
//! shows who signed.

use std::path::Path;

use serde_json::Value;

use crate::support::git::git;
use crate::support::keys::Key;
use crate::support::setup::stdout_json as json;
use crate::support::world::{ALICE, BOB, PRODUCTION, World, approval_path, plain_policy, sha};
use crate::support::{self, Output};

/// The plain approvals policy with `commit_signers` listing `ci`.
fn signed_policy(ci: &Key) -> String {
    format!(
        "{}commit_signers:\n  - {{id: ci@example.com, key: \"{}\"}}\n",
        plain_policy(),
        ci.public
    )
}

/// An allowed-signers file (`gpg.ssh.allowedSignersFile`) trusting `key` for commits.
fn allowed_signers(dir: &Path, key: &Key) -> std::path::PathBuf {
    let path = dir.join("allowed_signers");
    std::fs::write(
        &path,
        format!("ci@example.com namespaces=\"git\" {}\n", key.public),
    )
    .unwrap();
    path
}

/// Commits `content` at `path` in a clone of the world's remote with `git commit`, signed
/// with `key` (`-S`, `gpg.format=ssh`) when given, and pushes it; returns the commit.
fn git_commit(world: &World, path: &str, content: &str, key: Option<&Key>) -> String {
    let dir = support::temp_dir();
    let work = dir.path().join("work");
    git()
        .args(["clone", "-q"])
        .arg(world.remote.path())
        .arg(&work)
        .run()
        .assert_success();
    let file = work.join(path);
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(&file, content).unwrap();
    let in_work = |args: &[&str]| {
        let out = git().current_dir(&work).args(args).run();
        out.assert_success();
        out.stdout_str().trim().to_owned()
    };
    in_work(&["add", "-A"]);
    let mut commit = vec![
        "-c".to_owned(),
        "user.name=Mallory".to_owned(),
        "-c".to_owned(),
        "user.email=mallory@example.com".to_owned(),
    ];
    if let Some(k) = key {
        commit.extend([
            "-c".into(),
            "gpg.format=ssh".into(),
            "-c".into(),
            format!("user.signingkey={}", k.private.display()),
        ]);
    }
    commit.extend([
        "commit".into(),
        "-q".into(),
        "-m".into(),
        format!("Edit {path}"),
    ]);
    if key.is_some() {
        commit.push("-S".into());
    }
    let args: Vec<&str> = commit.iter().map(String::as_str).collect();
    in_work(&args);
    in_work(&["push", "-q", "origin", "HEAD:main"]);
    in_work(&["rev-parse", "HEAD"])
}

/// The `signature` violations of `check --range FROM..HEAD`.
fn signature_violations(world: &World, from: &str) -> Vec<Value> {
    let out = world
        .cmd()
        .args(["-o", "json", "check", "--range", &format!("{from}..main")])
        .run();
    json(&out)["violations"]
        .as_array()
        .unwrap_or_else(|| out.fail("no violations"))
        .iter()
        .filter(|v| v["rule"] == "signature")
        .cloned()
        .collect()
}

fn verify_commit(world: &World, signers: &Path, rev: &str) -> Output {
    world.remote.git([
        "-c",
        &format!("gpg.ssh.allowedSignersFile={}", signers.display()),
        "verify-commit",
        rev,
    ])
}

#[test]
fn commits_written_with_a_signing_key_pass_git_verify_commit_and_check() {
    let keys = support::temp_dir();
    let ci = Key::generate(keys.path(), "ci");
    let world = World::without_actor(&signed_policy(&ci));
    let one = world.tagged(&sha("one"), "v1.0.0");
    let before = world.remote.head();
    let approve = world
        .cmd()
        .env("RELEASECTL_SIGNING_KEY", &ci.private)
        .args(["approve", PRODUCTION, &one.project, &one.tag])
        .args(["--justification", "reviewed", "--actor", ALICE])
        .run();
    approve.assert_success();
    let signers = allowed_signers(keys.path(), &ci);
    let verified = verify_commit(&world, &signers, "main");
    assert!(
        verified.success(),
        "git verify-commit: {}",
        verified.stderr_str()
    );
    assert!(
        verified.stderr_str().contains("Good \"git\" signature"),
        "{}",
        verified.stderr_str()
    );
    // The register commits before were written without a key: git refuses those.
    assert!(!verify_commit(&world, &signers, &before).success());
    assert_eq!(signature_violations(&world, &before), Vec::<Value>::new());
}

#[test]
fn check_accepts_git_commit_s_by_a_listed_key_and_reports_unsigned_and_unlisted_ones() {
    let keys = support::temp_dir();
    let ci = Key::generate(keys.path(), "ci");
    let mallory = Key::generate(keys.path(), "mallory");
    let world = World::without_actor(&signed_policy(&ci));
    let start = world.remote.head();
    let path = approval_path(PRODUCTION, &sha("one"));
    let listed = git_commit(&world, &path, "approvals: []\n", Some(&ci));
    assert_eq!(signature_violations(&world, &start), Vec::<Value>::new());
    let unlisted = git_commit(&world, &path, "approvals: [1]\n", Some(&mallory));
    let unsigned = git_commit(&world, &path, "approvals: [2]\n", None);
    let found = signature_violations(&world, &listed);
    assert_eq!(found.len(), 2, "{found:#?}");
    assert_eq!(found[0]["commit"], unlisted.as_str());
    let actual = found[0]["actual"].as_str().unwrap();
    assert!(
        actual.contains("a key not listed") && actual.contains("SHA256:"),
        "{actual}"
    );
    assert_eq!(found[1]["commit"], unsigned.as_str());
    assert_eq!(found[1]["actual"], "unsigned");
    assert!(
        found[1]["required"]
            .as_str()
            .unwrap()
            .contains("ci@example.com"),
        "{found:#?}"
    );
}

#[test]
fn history_shows_who_signed_a_deploy() {
    let keys = support::temp_dir();
    let ci = Key::generate(keys.path(), "ci");
    let world = World::without_actor(&signed_policy(&ci));
    let one = world.tagged(&sha("one"), "v1.0.0");
    world.approve_both(&one);
    world
        .cmd()
        .env("RELEASECTL_SIGNING_KEY", &ci.private)
        .args([
            "deploy",
            PRODUCTION,
            "auth-service",
            "v1.0.0",
            "--actor",
            BOB,
        ])
        .run()
        .assert_success();
    let history = world
        .cmd()
        .args(["history", PRODUCTION, "auth-service"])
        .run();
    history
        .assert_success()
        .assert_stdout_contains("signed by ci@example.com (SHA256:");
}
