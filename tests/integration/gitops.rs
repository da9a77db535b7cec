//! The register as people use it (issue 4, docs/design.md §2): `release get` resolution
//! (exact alias → number → unique commit prefix of at least 7 hex → error), `release list`,
//! idempotent registration, tag strategies and branch aliases.
//!
//! The remote is a bare repository over `file://`: what is tested here is the register, not
//! the transport (`register.rs` covers the transports).

use serde_json::Value;

use crate::register::{commit, numbers_and_commits, register_files, register_text};
use crate::support::git::BareRepo;
use crate::support::setup::{self, PROJECT, REPOSITORY, stdout_json};
use crate::support::world::World;

/// The aliases of a `release get -o json` / `create -o json` document.
fn aliases(doc: &Value) -> Vec<String> {
    doc["aliases"]
        .as_array()
        .unwrap_or_else(|| panic!("no aliases in {doc}"))
        .iter()
        .map(|a| a["alias"].as_str().expect("alias").to_owned())
        .collect()
}

/// `release get` resolves `id` to release `number`.
#[track_caller]
/// An empty world and a remote with one commit, reached by its `file://` URL.
fn file_remote() -> (World, BareRepo, String) {
    let repo = BareRepo::with_initial_commit();
    let url = repo.file_url();
    (World::empty(), repo, url)
}

fn assert_resolves(env: &World, gitops: &str, project: &str, id: &str, number: u64) {
    let out = env.get(gitops, project, id);
    out.assert_success();
    let doc = stdout_json(&out);
    assert_eq!(doc["number"], number, "release get {project} {id}\n{out}");
}

/// A register with: 1 = tag v1.0.0 + main-1; 2 = tag "1" (an alias that looks like a
/// number); 3 and 4 share the prefix `abcdef1`; 5 has a unique prefix.
struct Resolution {
    env: World,
    repo: BareRepo,
    c: [String; 5],
}

impl Resolution {
    fn new() -> Self {
        let env = World::empty();
        let repo = BareRepo::with_initial_commit();
        let c = [
            commit("resolution-1"),
            commit("resolution-2"),
            format!("abcdef1{}", &commit("resolution-3")[7..]),
            format!("abcdef1{}", &commit("resolution-4")[7..]),
            format!("1234567{}", &commit("resolution-5")[7..]),
        ];
        let url = repo.file_url();
        let cache = env.cache("writer");
        env.register_via(
            &url,
            &cache,
            &c[0],
            &[
                "--source-branch",
                "main",
                "--source-tag",
                "auth-service/v1.0.0",
            ],
        );
        env.register_via(
            &url,
            &cache,
            &c[1],
            &["--tag-strategy", "tag-all", "--source-tag", "1"],
        );
        for x in &c[2..] {
            env.register_via(&url, &cache, x, &[]);
        }
        Self { env, repo, c }
    }

    fn url(&self) -> String {
        self.repo.file_url()
    }
}

#[test]
fn release_get_resolves_alias_then_number_then_commit_prefix() {
    let r = Resolution::new();
    let url = r.url();
    // exact alias (tag and branch)
    assert_resolves(&r.env, &url, PROJECT, "v1.0.0", 1);
    assert_resolves(&r.env, &url, PROJECT, "main-1", 1);
    // "1" is both the alias of release 2 and the number of release 1: the alias wins.
    assert_resolves(&r.env, &url, PROJECT, "1", 2);
    // numbers
    assert_resolves(&r.env, &url, PROJECT, "2", 2);
    assert_resolves(&r.env, &url, PROJECT, "5", 5);
    // a unique commit prefix of 7 hex digits, and a whole commit
    assert_resolves(&r.env, &url, PROJECT, &r.c[0][..7], 1);
    assert_resolves(&r.env, &url, PROJECT, &r.c[3], 4);
    // "1234567" parses as a number, but there is no release 1234567: it is a commit prefix.
    assert_resolves(&r.env, &url, PROJECT, "1234567", 5);

    let out = r.env.get(&url, PROJECT, &r.c[0]);
    out.assert_success();
    let doc = stdout_json(&out);
    assert_eq!(doc["repository"], REPOSITORY, "{out}");
    assert_eq!(doc["project"], PROJECT, "{out}");
    assert_eq!(aliases(&doc), ["v1.0.0", "main-1"], "{out}");
    let trigger = &doc["triggers"][0];
    assert_eq!(trigger["type"], "tag", "{out}");
    assert_eq!(trigger["tag"], "auth-service/v1.0.0", "{out}");
    assert_eq!(trigger["branch"], "main", "{out}");
    assert_eq!(trigger["triggered_by"], crate::register::ACTOR, "{out}");

    // text output names the release
    let out = r
        .env
        .releasectl(&url, &r.env.cache("readers"))
        .args(["release", "get", PROJECT, "v1.0.0"])
        .run();
    out.assert_success()
        .assert_stdout_contains(&format!("Release     1 of {REPOSITORY}/{PROJECT}"))
        .assert_stdout_contains(&r.c[0]);
}

#[test]
fn release_get_rejects_ambiguous_prefixes_listing_candidates_and_unknown_ids() {
    let r = Resolution::new();
    let url = r.url();
    let out = r.env.get(&url, PROJECT, "abcdef1");
    setup::assert_fails(&out, 2, &["ambiguous", &r.c[2], &r.c[3]]);

    for unknown in ["v9.9.9", "99", "fedcba9", "abcdef"] {
        let out = r.env.get(&url, PROJECT, unknown);
        setup::assert_fails(&out, 2, &[unknown, "company/monorepo/auth-service"]);
    }
    // Six hex digits are too few to be a commit prefix, even when unique.
    let out = r.env.get(&url, PROJECT, &r.c[0][..6]);
    setup::assert_fails(&out, 2, &[&r.c[0][..6]]);
}

#[test]
fn release_list_prints_every_release_as_json_and_as_a_table() {
    let r = Resolution::new();
    let url = r.url();
    let list = r.env.list(&url, PROJECT);
    assert_eq!(list["repository"], REPOSITORY, "{list}");
    assert_eq!(list["project"], PROJECT, "{list}");
    let expected: Vec<(u64, String)> = (1..=5u64).zip(r.c.iter().cloned()).collect();
    assert_eq!(numbers_and_commits(&list), expected, "{list}");
    for rel in list["releases"].as_array().unwrap() {
        assert!(
            rel["digest"].as_str().unwrap().starts_with("sha256:"),
            "{rel}"
        );
        assert_eq!(rel["created_at"], setup::EPOCH_RFC3339, "{rel}");
    }
    let out = r
        .env
        .releasectl(&url, &r.env.cache("readers"))
        .args(["release", "list", PROJECT])
        .run();
    out.assert_success()
        .assert_stdout_contains("NUMBER")
        .assert_stdout_contains("v1.0.0,main-1");
    assert_eq!(out.stdout_str().lines().count(), 6, "header + 5\n{out}");
}

#[test]
fn project_may_be_a_bare_name_when_unique_and_is_ambiguous_in_two_repositories() {
    let (env, repo, url) = file_remote();
    let cache = env.cache("writer");
    let c = commit("project-names");
    env.register_via(&url, &cache, &c, &[]);
    assert_resolves(&env, &url, PROJECT, "1", 1);
    assert_resolves(&env, &url, &format!("{REPOSITORY}/{PROJECT}"), "1", 1);

    // The same project name in a second repository.
    let out = env
        .create_cmd_for(&url, &cache, "company/other", PROJECT, &c, &[])
        .run();
    out.assert_success();
    assert!(register_files(&repo, "releases/company/other/auth-service").is_some());
    let out = env.get(&url, PROJECT, "1");
    setup::assert_fails(
        &out,
        2,
        &[
            "ambiguous",
            "company/monorepo/auth-service",
            "company/other/auth-service",
        ],
    );
    assert_resolves(&env, &url, "company/other/auth-service", "1", 1);
    assert_resolves(&env, &url, &format!("{REPOSITORY}/{PROJECT}"), "1", 1);

    // An unknown project is invalid input naming it.
    let out = env.get(&url, "billing", "1");
    setup::assert_fails(&out, 2, &["billing"]);
}

#[test]
fn creating_the_same_release_twice_keeps_one_entry_and_makes_no_commit() {
    let (env, repo, url) = file_remote();
    let c = commit("idempotent");
    let first = env.register_via(&url, &env.cache("a"), &c, &["--source-branch", "main"]);
    let tip = repo.main_sha();
    let register = register_text(&repo);
    // A second run, from another machine's (empty) cache and from the warm one.
    for cache in ["b", "a"] {
        let again = env.register_via(&url, &env.cache(cache), &c, &["--source-branch", "main"]);
        assert_eq!(again["digest"], first["digest"], "same digest\n{again}");
        assert_eq!(again["number"], 1, "{again}");
        assert_eq!(
            repo.main_sha(),
            tip,
            "a repeated create must make no commit"
        );
    }
    assert_eq!(register_text(&repo), register);
    let list = env.list(&url, PROJECT);
    assert_eq!(numbers_and_commits(&list), vec![(1, c.clone())], "{list}");

    // A later tag of the same commit adds an alias and a trigger, in a new commit.
    let tagged = env.register_via(
        &url,
        &env.cache("a"),
        &c,
        &["--source-tag", "auth-service/v2.0.0"],
    );
    assert_eq!(tagged["digest"], first["digest"], "{tagged}");
    assert_eq!(tagged["number"], 1, "{tagged}");
    assert_ne!(repo.main_sha(), tip, "the new alias needs a commit");
    assert_eq!(repo.commit_count(), 3);
    assert!(
        repo.subjects()[0].starts_with("Update release 1"),
        "{:?}",
        repo.subjects()
    );
    let out = env.get(&url, PROJECT, "v2.0.0");
    out.assert_success();
    let doc = stdout_json(&out);
    assert_eq!(aliases(&doc), ["main-1", "v2.0.0"], "{out}");
    let triggers: Vec<&str> = doc["triggers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["type"].as_str().unwrap())
        .collect();
    assert_eq!(triggers, ["branch_push", "tag"], "{out}");
    assert_eq!(
        numbers_and_commits(&env.list(&url, PROJECT)).len(),
        1,
        "still one entry"
    );

    // And the same tag again changes nothing.
    let tip = repo.main_sha();
    env.register_via(
        &url,
        &env.cache("a"),
        &c,
        &["--source-tag", "auth-service/v2.0.0"],
    );
    assert_eq!(repo.main_sha(), tip);
}

#[test]
fn monorepo_strategy_takes_only_project_tags_and_tag_all_takes_every_tag() {
    let (env, repo, url) = file_remote();
    let cache = env.cache("writer");
    let cases: [(&str, &[&str], &[&str]); 5] = [
        (
            "mono-own",
            &["--source-tag", "auth-service/v1.2.3"],
            &["v1.2.3"],
        ),
        ("mono-other", &["--source-tag", "billing/v1.2.3"], &[]),
        ("mono-plain", &["--source-tag", "v7.0.0"], &[]),
        (
            "all-plain",
            &["--tag-strategy", "tag-all", "--source-tag", "v3.0.0"],
            &["v3.0.0"],
        ),
        (
            "all-other",
            &[
                "--tag-strategy",
                "tag-all",
                "--source-tag",
                "billing/v4.0.0",
            ],
            &["v4.0.0"],
        ),
    ];
    for (seed, flags, expected) in cases {
        let c = commit(seed);
        let created = env.register_via(&url, &cache, &c, flags);
        assert_eq!(aliases(&created), expected, "{seed}: {created}");
        let out = env.get(&url, PROJECT, &c);
        out.assert_success();
        assert_eq!(aliases(&stdout_json(&out)), expected, "{seed}\n{out}");
        for alias in expected {
            let out = env.get(&url, PROJECT, alias);
            out.assert_success();
            assert_eq!(stdout_json(&out)["commit"], c.as_str(), "{out}");
        }
    }
    // A tag alias names one release only: the same tag for another commit is refused.
    let tip = repo.main_sha();
    let out = env
        .create_cmd(
            &url,
            &cache,
            &commit("mono-dup"),
            &["--source-tag", "auth-service/v1.2.3"],
        )
        .run();
    setup::assert_fails(&out, 2, &["v1.2.3"]);
    assert_eq!(
        repo.main_sha(),
        tip,
        "a refused registration makes no commit"
    );
    // Nor may an image claiming a release number be left behind for it: the conflict is
    // known from the register before anything is pushed.
    let out = crate::support::Cmd::releasectl()
        .args([
            "inspect",
            &format!(
                "{}/{REPOSITORY}/{PROJECT}:{}",
                env.registry(),
                commit("mono-dup")
            ),
        ])
        .run();
    assert!(
        !out.success(),
        "an image was pushed for a registration that was refused\n{out}"
    );
}

#[test]
fn branch_aliases_are_branch_dash_number_with_slashes_made_dashes() {
    let (env, _repo, url) = file_remote();
    let cache = env.cache("writer");
    for (seed, branch, alias) in [
        ("branch-1", "main", "main-1"),
        ("branch-2", "release/2.x", "release-2.x-2"),
        ("branch-3", "feature/a/b", "feature-a-b-3"),
    ] {
        let created = env.register_via(&url, &cache, &commit(seed), &["--source-branch", branch]);
        assert_eq!(aliases(&created), [alias], "{created}");
    }
    assert_resolves(&env, &url, PROJECT, "release-2.x-2", 2);
    assert_resolves(&env, &url, PROJECT, "feature-a-b-3", 3);
    assert_eq!(env.image_number(&commit("branch-3")), 3);
    // The image carries the branch alias too.
    let out = crate::support::Cmd::releasectl()
        .args([
            "inspect",
            "-o",
            "json",
            &format!(
                "{}/{REPOSITORY}/{PROJECT}:{}",
                env.registry(),
                commit("branch-2")
            ),
        ])
        .run();
    out.assert_success();
    let meta = stdout_json(&out);
    assert_eq!(
        meta["metadata"]["release"]["aliases"][0]["alias"], "release-2.x-2",
        "{out}"
    );
    assert_eq!(meta["metadata"]["trigger"]["type"], "branch_push", "{out}");
}
