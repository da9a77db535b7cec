//! The register's three formats (issue 14, docs/register.md): format 1, one YAML file
//! holding every release, and format 2, one file per release, commit and alias, are read as
//! they are and migrated to format 3 (bucket files of releases, commit and alias indexes, a
//! head) by the first registration or by `release migrate`; `check` understands all three
//! and finds an index that disagrees with the entries.
//!
//! Resolution (alias → number → commit prefix, ambiguous prefixes) in format 3 is the suite
//! of gitops.rs, which registers in format 3; here it runs against formats 1 and 2 too.

use std::fmt::Write as _;

use serde_json::Value;

use crate::register::{LEGACY_REGISTER, REGISTER, commit, numbers_and_commits, register_files};
use crate::support::setup::{self, PROJECT, REPOSITORY, stdout_json};
use crate::support::world::World;

/// One release as a YAML list item of format 1: `- number: …` and its fields indented.
fn entry_item(n: u64, c: &str, aliases: &[&str]) -> String {
    let mut text = format!(
        "- number: {n}\n  commit: {c}\n  digest: sha256:{}\n  created_at: '2023-11-14T22:13:20Z'\n  aliases:\n",
        setup::sha256(c.as_bytes())["sha256:".len()..].to_owned()
    );
    for a in aliases {
        let _ = write!(text, "  - alias: {a}\n    type: tag\n");
    }
    text.push_str("  triggers: []\n");
    text
}

/// A format 1 register of the default project: `(number, commit, aliases)`.
fn legacy_register(entries: &[(u64, &str, &[&str])]) -> String {
    let mut text = format!(
        "apiVersion: releasectl.dev/v1alpha1\nkind: ReleaseRegister\nrepository: {REPOSITORY}\n\
         project: {PROJECT}\nlast_number: {}\nreleases:\n",
        entries.iter().map(|e| e.0).max().unwrap_or(0)
    );
    for (n, c, aliases) in entries {
        text.push_str(&entry_item(*n, c, aliases));
    }
    text
}

/// The first three hex digits of the SHA-256 of `text`.
fn hash3(text: &str) -> String {
    setup::sha256(text.as_bytes())["sha256:".len()..][..3].to_owned()
}

/// The files of a format 2 register of the default project, as an older releasectl wrote
/// them: a head, `_releases/<n / 1000>/<n>.yaml`, `_commits/<c0c1>/<commit>` and
/// `_aliases/<h0h1>/<alias>` (these aliases need no escaping).
fn split_register(entries: &[(u64, &str, &[&str])]) -> Vec<(String, String)> {
    let mut files = vec![(
        format!("{REGISTER}/_register.yaml"),
        format!(
            "apiVersion: releasectl.dev/v1alpha1\nkind: ReleaseRegisterHead\nrepository: {REPOSITORY}\n\
             project: {PROJECT}\nlast_number: {}\n",
            entries.iter().map(|e| e.0).max().unwrap_or(0)
        ),
    )];
    for (n, c, aliases) in entries {
        let item = entry_item(*n, c, aliases);
        let mut entry = String::new();
        for l in item.lines() {
            entry.push_str(l.strip_prefix("- ").or(l.strip_prefix("  ")).unwrap_or(l));
            entry.push('\n');
        }
        files.push((format!("{REGISTER}/_releases/{}/{n}.yaml", n / 1000), entry));
        files.push((
            format!("{REGISTER}/_commits/{}/{c}", &c[..2]),
            format!("{n}\n"),
        ));
        for a in *aliases {
            files.push((
                format!("{REGISTER}/_aliases/{}/{a}", &hash3(a)[..2]),
                format!("{n}\n"),
            ));
        }
    }
    files
}

/// The format 3 bucket of the alias index holding `alias`.
fn alias_bucket(alias: &str) -> String {
    let h = hash3(alias);
    format!("{REGISTER}/_alias-index/{}/{h}", &h[..2])
}

/// The format 3 bucket of the commit index holding `commit`.
fn commit_bucket(commit: &str) -> String {
    format!("{REGISTER}/_commit-index/{}/{}", &commit[..2], &commit[..3])
}

/// Commits sharing the prefix `abcdef1` (1 and 2) and one that does not (3).
fn old_commits() -> [String; 3] {
    [
        format!("abcdef1{}", &commit("one")[7..]),
        format!("abcdef1{}", &commit("two")[7..]),
        commit("three"),
    ]
}

/// A world (example policy) whose register of the default project is in format 1 with
/// releases 1 (v1.0.0), 2 (v2.0.0) and 3 (main-3).
fn old_world() -> (World, [String; 3]) {
    let world = World::example();
    let c = old_commits();
    let text = legacy_register(&[
        (1, &c[0], &["v1.0.0"]),
        (2, &c[1], &["v2.0.0"]),
        (3, &c[2], &["main-3"]),
    ]);
    world.hand_push(
        &[(LEGACY_REGISTER, Some(&text))],
        "Register by an older releasectl",
    );
    (world, c)
}

fn number_of(world: &World, id: &str) -> Value {
    let out = world.get(&world.url, PROJECT, id);
    out.assert_success();
    stdout_json(&out)["number"].clone()
}

/// Resolution by alias, number, unique and ambiguous prefix gives the same answers in both
/// formats.
fn assert_resolution(world: &World, c: &[String; 3]) {
    assert_eq!(number_of(world, "v2.0.0"), 2);
    assert_eq!(number_of(world, "3"), 3);
    assert_eq!(number_of(world, &c[2][..9]), 3);
    assert_eq!(number_of(world, &c[1]), 2);
    let out = world.get(&world.url, PROJECT, "abcdef1");
    setup::assert_fails(
        &out,
        2,
        &["ambiguous", &c[0], "release 1", &c[1], "release 2"],
    );
    let out = world.get(&world.url, PROJECT, "v9");
    setup::assert_fails(&out, 2, &["no release \"v9\""]);
}

/// The register of the default project is in format 3 and holds `c` as releases 1 to 3 and
/// `last` as its last number.
fn assert_format_3(world: &World, c: &[String; 3], last: u64) {
    let files = register_files(&world.remote, REGISTER).expect("format 3 written");
    let paths: Vec<&str> = files.lines().filter_map(|l| l.strip_suffix(':')).collect();
    for expected in [
        format!("{REGISTER}/_register.yaml"),
        format!("{REGISTER}/_entries/0/0.yaml"),
        commit_bucket(&c[0]),
        commit_bucket(&c[2]),
        alias_bucket("v2.0.0"),
    ] {
        assert!(
            paths.contains(&expected.as_str()),
            "{expected} missing in\n{files}"
        );
    }
    assert!(
        paths.iter().all(|p| !p.contains("/_releases/")
            && !p.contains("/_commits/")
            && !p.contains("/_aliases/")),
        "no format 2 file left: {paths:?}"
    );
    assert!(
        files.contains("apiVersion: releasectl.dev/v1alpha2"),
        "{files}"
    );
    assert!(files.contains(&format!("last_number: {last}")), "{files}");
    let bucket = world.remote.show(&commit_bucket(&c[0])).unwrap();
    assert!(
        bucket.contains(&format!("{} 1\n", c[0])) && bucket.contains(&format!("{} 2\n", c[1])),
        "{bucket}"
    );
    assert!(
        world
            .remote
            .show(&alias_bucket("v2.0.0"))
            .unwrap()
            .contains("v2.0.0 2\n"),
        "alias line"
    );
}

/// Resolution in `world` (releases `c` in an older format) is as in format 3; the first
/// registration gets number 4 and migrates the register in the same commit; then every
/// release resolves, lists and checks as before.
fn first_registration_migrates(world: &World, c: &[String; 3], seed: &str) {
    assert_resolution(world, c);
    world.ok(&["check"]);
    let tip = world.remote.main_sha();
    let new = commit(seed);
    let created = world.register_via(
        &world.url,
        &world.cache("ci"),
        &new,
        &["--source-branch", "main"],
    );
    assert_eq!(created["number"], 4, "{created}");
    assert_eq!(
        world
            .remote
            .git_ok(&["rev-parse", "refs/heads/main~1"])
            .trim(),
        tip.unwrap(),
        "one commit migrates and registers"
    );
    assert_format_3(world, c, 4);
    assert_resolution(world, c);
    assert_eq!(number_of(world, "main-4"), 4);
    assert_eq!(number_of(world, &new[..7]), 4);
    let list = world.list(&world.url, PROJECT);
    assert_eq!(
        numbers_and_commits(&list),
        vec![
            (1, c[0].clone()),
            (2, c[1].clone()),
            (3, c[2].clone()),
            (4, new)
        ],
        "{list}"
    );
    world.ok(&["check"]);
    world.ok(&["check", "--range", "..main"]);
    world.remote.assert_fsck_clean();
}

#[test]
fn a_format_1_register_resolves_as_before_and_the_first_registration_migrates_it() {
    let (world, c) = old_world();
    first_registration_migrates(&world, &c, "after-migration");
    let changed = world.remote.changed("refs/heads/main");
    assert!(changed.contains(&LEGACY_REGISTER.to_owned()), "{changed:?}");
    assert!(
        world.remote.show(LEGACY_REGISTER).is_none(),
        "format 1 file removed"
    );
}

#[test]
fn release_migrate_rewrites_every_format_1_register_in_one_commit_and_is_idempotent() {
    let (world, c) = old_world();
    let other = "releases/company/other/billing.yaml";
    let billing = legacy_register(&[(7, &commit("billing"), &["v7"])])
        .replace("project: auth-service", "project: billing")
        .replace("repository: company/monorepo", "repository: company/other");
    world.hand_push(&[(other, Some(&billing))], "Another old register");
    let before = world.remote.commit_count();

    let out = world.ok(&["-o", "json", "release", "migrate", "--all"]);
    let doc = stdout_json(&out);
    let mut migrated: Vec<String> = doc["migrated"]
        .as_array()
        .unwrap_or_else(|| out.fail("no migrated list"))
        .iter()
        .map(|m| m.as_str().unwrap().to_owned())
        .collect();
    migrated.sort();
    assert_eq!(
        migrated,
        ["company/monorepo/auth-service", "company/other/billing"],
        "{out}"
    );
    assert_eq!(world.remote.commit_count(), before + 1, "one commit");
    assert!(
        world
            .remote
            .last_message()
            .contains("Action: migrate-register")
    );
    assert!(world.remote.show(LEGACY_REGISTER).is_none());
    assert!(world.remote.show(other).is_none());
    let billing_files = register_files(&world.remote, "releases/company/other/billing").unwrap();
    assert!(billing_files.contains("last_number: 7"), "{billing_files}");
    assert_resolution(&world, &c);
    assert_eq!(number_of(&world, "2"), 2);

    // Again: nothing to migrate, no commit; by name too.
    let out = world.ok(&["-o", "json", "release", "migrate", "--all"]);
    assert_eq!(
        stdout_json(&out)["migrated"],
        serde_json::json!([]),
        "{out}"
    );
    let out = world.ok(&["release", "migrate", PROJECT]);
    assert!(out.stdout_str().contains("nothing to migrate"), "{out}");
    assert_eq!(world.remote.commit_count(), before + 1, "no further commit");

    // The next registration numbers on from the head.
    let created = world.register_via(&world.url, &world.cache("ci"), &commit("next"), &[]);
    assert_eq!(created["number"], 4, "{created}");
    world.ok(&["check"]);
}

#[test]
fn release_migrate_names_the_duplicate_in_a_hand_edited_register_and_writes_nothing() {
    let world = World::example();
    let c = old_commits();
    let text = legacy_register(&[(1, &c[0], &["v1"]), (2, &c[1], &["v1"])]);
    world.hand_push(&[(LEGACY_REGISTER, Some(&text))], "A hand edit");
    let before = world.remote.main_sha();
    let out = world.run(&["release", "migrate", PROJECT]);
    setup::assert_fails(
        &out,
        2,
        &[LEGACY_REGISTER, "alias v1 names releases 1 and 2"],
    );
    assert_eq!(world.remote.main_sha(), before);
    let out = world.cmd().args(["-o", "json", "check"]).run();
    out.assert_exit(4);
    assert!(
        out.stdout_str().contains("alias v1 names releases 1 and 2"),
        "{out}"
    );
}

/// The violations of `check -o json ARGS`, asserting exit 4.
fn register_violations(world: &World, args: &[&str]) -> Vec<(String, String)> {
    let out = world.cmd().args(["-o", "json", "check"]).args(args).run();
    out.assert_exit(4);
    stdout_json(&out)["violations"]
        .as_array()
        .unwrap_or_else(|| out.fail("no violations"))
        .iter()
        .filter(|v| v["rule"] == "register")
        .map(|v| {
            (
                v["file"].as_str().unwrap().to_owned(),
                format!("required {}; actual {}", v["required"], v["actual"]),
            )
        })
        .collect()
}

#[test]
fn check_finds_an_index_that_disagrees_with_the_entries_at_the_tip_and_in_a_range() {
    let world = World::example();
    let c1 = commit("indexed-1");
    let c2 = commit("indexed-2");
    world.register_via(
        &world.url,
        &world.cache("ci"),
        &c1,
        &["--source-branch", "main"],
    );
    world.register_via(
        &world.url,
        &world.cache("ci"),
        &c2,
        &["--source-branch", "main"],
    );
    world.ok(&["check"]);
    let good = world.remote.main_sha().unwrap();

    // main-1 now says release 2; c2's commit line is gone; a stray alias names release 9.
    let alias_file = alias_bucket("main-1");
    let text = world
        .remote
        .show(&alias_file)
        .unwrap()
        .replace("main-1 1\n", "main-1 2\n");
    let commit_file = commit_bucket(&c2);
    let without_c2: String = world
        .remote
        .show(&commit_file)
        .unwrap()
        .split_inclusive('\n')
        .filter(|l| !l.starts_with(&c2))
        .collect();
    let stray = format!("{REGISTER}/_alias-index/00/000");
    let bad = world.hand_push(
        &[
            (&alias_file, Some(&text)),
            (
                &commit_file,
                (!without_c2.is_empty()).then_some(without_c2.as_str()),
            ),
            (&stray, Some("stray 9\n")),
        ],
        "Corrupt the index by hand",
    );
    let v = register_violations(&world, &[]);
    let has = |file: &str, text: &str| v.iter().any(|(f, t)| f == file && t.contains(text));
    assert!(has(&alias_file, "release 2 to name alias main-1"), "{v:#?}");
    assert!(has(&commit_file, "missing"), "{v:#?}");
    assert!(has(&stray, "no release 9"), "{v:#?}");
    // The entry of release 1 still names main-1, whose index line now says 2.
    assert!(has(&alias_file, "`main-1 1`"), "{v:#?}");

    // In a range, the commit that did it is named.
    let out = world
        .cmd()
        .args(["-o", "json", "check", "--range", &format!("{good}..{bad}")])
        .run();
    out.assert_exit(4);
    let doc = stdout_json(&out);
    let flagged: Vec<&Value> = doc["violations"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| v["rule"] == "register")
        .collect();
    assert!(
        !flagged.is_empty() && flagged.iter().all(|v| v["commit"] == bad.as_str()),
        "{doc:#}"
    );
    // And resolution refuses to trust the broken index rather than answer wrong.
    let out = world.get(&world.url, PROJECT, "main-1");
    setup::assert_fails(&out, 2, &[&alias_file, "does not name it back"]);
}

#[test]
fn concurrent_creates_against_a_format_1_register_migrate_once_and_get_dense_numbers() {
    let (world, c) = old_world();
    let results = crate::register::race(&world, &world.url, 6, false);
    let mut numbers: Vec<u64> = results
        .iter()
        .map(|(_, out)| stdout_json(out)["number"].as_u64().unwrap())
        .collect();
    numbers.sort_unstable();
    assert_eq!(numbers, vec![4, 5, 6, 7, 8, 9]);
    assert!(world.remote.show(LEGACY_REGISTER).is_none());
    let list = world.list(&world.url, PROJECT);
    let got = numbers_and_commits(&list);
    assert_eq!(got.len(), 9, "{list}");
    assert_eq!(
        got[..3],
        [(1, c[0].clone()), (2, c[1].clone()), (3, c[2].clone())]
    );
    world.remote.assert_fsck_clean();
    assert!(world.remote.is_linear());
    world.ok(&["check"]);
}

/// A world whose register of the default project is in format 2 (one file per release,
/// commit and alias) with releases 1 (v1.0.0), 2 (v2.0.0) and 3 (main-3).
fn split_world() -> (World, [String; 3]) {
    let world = World::example();
    let c = old_commits();
    let files = split_register(&[
        (1, &c[0], &["v1.0.0"]),
        (2, &c[1], &["v2.0.0"]),
        (3, &c[2], &["main-3"]),
    ]);
    let edits: Vec<(&str, Option<&str>)> = files
        .iter()
        .map(|(p, t)| (p.as_str(), Some(t.as_str())))
        .collect();
    world.hand_push(&edits, "Register by a releasectl of format 2");
    (world, c)
}

#[test]
fn a_format_2_register_resolves_as_before_and_the_first_registration_migrates_it() {
    let (world, c) = split_world();
    first_registration_migrates(&world, &c, "after-split");
    let changed = world.remote.changed("refs/heads/main");
    assert!(
        changed
            .iter()
            .any(|p| p.starts_with(&format!("{REGISTER}/_releases/"))),
        "format 2 files removed in the same commit: {changed:?}"
    );
}

#[test]
fn release_migrate_moves_a_format_2_register_to_format_3_and_check_flags_a_format_2_file_left_behind()
 {
    let (world, c) = split_world();
    let before = world.remote.commit_count();
    let out = world.ok(&["-o", "json", "release", "migrate", "--all"]);
    assert_eq!(
        stdout_json(&out)["migrated"],
        serde_json::json!(["company/monorepo/auth-service"]),
        "{out}"
    );
    assert_eq!(world.remote.commit_count(), before + 1, "one commit");
    assert_format_3(&world, &c, 3);
    assert_resolution(&world, &c);
    let out = world.ok(&["release", "migrate", "--all"]);
    assert!(out.stdout_str().contains("nothing to migrate"), "{out}");
    assert_eq!(world.remote.commit_count(), before + 1, "idempotent");
    world.ok(&["check"]);

    // A format 2 file put back by hand next to format 3 is named.
    let left = format!("{REGISTER}/_commits/{}/{}", &c[0][..2], c[0]);
    world.hand_push(&[(&left, Some("1\n"))], "An old file back");
    let v = register_violations(&world, &[]);
    assert!(
        v.iter()
            .any(|(f, t)| *f == left && t.contains("no format 2 file next to")),
        "{v:#?}"
    );
}

#[test]
fn check_refuses_index_and_entry_buckets_out_of_order_or_in_the_wrong_place() {
    let world = World::example();
    let c1 = commit("bucket-1");
    world.register_via(
        &world.url,
        &world.cache("ci"),
        &c1,
        &["--source-branch", "main"],
    );
    world.ok(&["check"]);
    let entries = format!("{REGISTER}/_entries/0/0.yaml");
    let text = world.remote.show(&entries).unwrap();
    // The same entry as release 100 in the bucket of 0..99, an unsorted alias bucket, and a
    // bucket file under a name no number gives.
    let alias_file = alias_bucket("main-1");
    world.hand_push(
        &[
            (
                &entries,
                Some(&text.replacen("number: 1\n", "number: 100\n", 1)),
            ),
            (&alias_file, Some("zzz 1\nmain-1 1\n")),
            (&format!("{REGISTER}/_entries/0/50.yaml"), Some("[]\n")),
        ],
        "Break the buckets by hand",
    );
    let v = register_violations(&world, &[]);
    let has = |file: &str, text: &str| v.iter().any(|(f, t)| f == file && t.contains(text));
    assert!(has(&entries, "expected numbers 0 to 19"), "{v:#?}");
    assert!(has(&alias_file, "increasing order"), "{v:#?}");
    assert!(
        has(&format!("{REGISTER}/_entries/0/50.yaml"), "another name"),
        "{v:#?}"
    );
    let out = world.get(&world.url, PROJECT, "1");
    setup::assert_fails(&out, 2, &[&entries, "expected numbers 0 to 19"]);
}

#[test]
fn a_head_below_a_registered_number_fails_a_registration_rather_than_overwrite_the_release() {
    let world = World::example();
    let (c1, c2) = (commit("low-1"), commit("low-2"));
    for c in [&c1, &c2] {
        world.register_via(
            &world.url,
            &world.cache("ci"),
            c,
            &["--source-branch", "main"],
        );
    }
    let head = format!("{REGISTER}/_register.yaml");
    let lowered = world
        .remote
        .show(&head)
        .unwrap()
        .replace("last_number: 2", "last_number: 1");
    world.hand_push(&[(&head, Some(&lowered))], "Lower the head by hand");
    let before = world.remote.main_sha();
    let out = world
        .create_cmd(&world.url, &world.cache("ci"), &commit("low-3"), &[])
        .run();
    setup::assert_fails(
        &out,
        2,
        &[
            &format!("{REGISTER}/_entries/0/0.yaml"),
            "already holds release 2",
        ],
    );
    assert_eq!(world.remote.main_sha(), before, "nothing written");
    assert_eq!(number_of(&world, &c2[..9]), 2, "release 2 is still c2's");
    let v = register_violations(&world, &[]);
    assert!(
        v.iter()
            .any(|(f, t)| f.ends_with("_entries/0/0.yaml") && t.contains("last_number 1")),
        "{v:#?}"
    );
}

#[test]
fn migrating_a_format_2_register_whose_head_is_below_a_number_raises_the_head() {
    let world = World::example();
    let c = old_commits();
    let mut files = split_register(&[(1, &c[0], &["v1.0.0"]), (5, &c[1], &["v5"])]);
    files[0].1 = files[0].1.replace("last_number: 5", "last_number: 2");
    let edits: Vec<(&str, Option<&str>)> = files
        .iter()
        .map(|(p, t)| (p.as_str(), Some(t.as_str())))
        .collect();
    world.hand_push(&edits, "A format 2 register with a low head");
    world.ok(&["release", "migrate", PROJECT]);
    let head = world
        .remote
        .show(&format!("{REGISTER}/_register.yaml"))
        .unwrap();
    assert!(head.contains("last_number: 5"), "{head}");
    let created = world.register_via(&world.url, &world.cache("ci"), &c[2], &[]);
    assert_eq!(created["number"], 6, "{created}");
    world.ok(&["check"]);
}
