//! Writes are a compare-and-swap on the pointers their plan read (issue 12, point 3): an
//! explicit `deploy` whose pointer moved under it writes nothing and exits 6 naming the
//! pointer, the release it planned on, the release it found, and the commit and author that
//! moved it; a change to another path is re-planned silently; `deploy --auto` re-plans and
//! never downgrades.
//!
//! The races are made deterministic with the remote's `pre-receive` hook landing a competing
//! commit the first time a push arrives (over `git daemon`, whose `receive-pack` runs hooks);
//! the 16-writer tests race for real and print their wall time.

use std::time::{Duration, Instant};

use crate::support::Output;
use crate::support::git::{GitDaemon, Hooks};
use crate::support::setup::PROJECT;
use crate::support::world::{Release, World, pointer_path, sha};

const OPEN: &str = "environments:\n  dev:\n    promotion_policy: {auto_deploy: true}\n";

/// A world whose dev pointer names release 1, with releases 2 and 3 registered.
fn three_releases() -> (World, Vec<Release>) {
    let world = World::new(OPEN);
    let releases: Vec<Release> = (1..=3)
        .map(|i| world.main_release(&format!("r{i}")))
        .collect();
    world.deploy("dev", &releases[0]).assert_success();
    (world, releases)
}

/// Serves the world's remote over `git daemon` with `hooks`; the world now pushes there.
fn serve(world: &mut World, hooks: &Hooks) -> GitDaemon {
    world.remote.install_hooks(hooks);
    let daemon = GitDaemon::start(&world.remote);
    world.url = daemon.url();
    daemon
}

#[test]
fn a_deploy_whose_pointer_moved_under_it_writes_nothing_and_names_who_moved_it() {
    let (mut world, r) = three_releases();
    // Someone deploys release 2 while our deploy of release 3 is on its way.
    let theirs = world.pointer_naming("dev", &r[1].commit, &r[1].digest);
    let _daemon = serve(
        &mut world,
        &Hooks::competing_commit(&pointer_path("dev", PROJECT), &theirs),
    );
    let out = world.deploy("dev", &r[2]);
    out.assert_exit(6);
    let competing = world.remote.competing_commit().expect("the hook ran");
    out.assert_stderr_contains("conflict")
        .assert_stderr_contains(&pointer_path("dev", PROJECT))
        .assert_stderr_contains(&format!("planned on release {}", r[0].label))
        .assert_stderr_contains(&format!("found release {}", r[1].label))
        .assert_stderr_contains(&competing)
        .assert_stderr_contains("competitor@example.com");
    assert_eq!(world.remote.head(), competing, "nothing was written");
    assert_eq!(
        world.running("dev", PROJECT).as_deref(),
        Some(&*r[1].commit)
    );
}

#[test]
fn a_rollback_whose_pointer_moved_under_it_is_a_conflict_too() {
    let (mut world, r) = three_releases();
    world.deploy("dev", &r[1]).assert_success();
    let theirs = world.pointer_naming("dev", &r[2].commit, &r[2].digest);
    let _daemon = serve(
        &mut world,
        &Hooks::competing_commit(&pointer_path("dev", PROJECT), &theirs),
    );
    let out = world.run(&["rollback", "dev", PROJECT]);
    out.assert_exit(6)
        .assert_stderr_contains(&format!("found release {}", r[2].label));
    assert_eq!(
        world.running("dev", PROJECT).as_deref(),
        Some(&*r[2].commit)
    );
}

#[test]
fn a_change_to_another_path_is_re_planned_silently() {
    let (mut world, r) = three_releases();
    let _daemon = serve(
        &mut world,
        &Hooks::competing_commit("notes/README.md", "someone else's change\n"),
    );
    world.deploy("dev", &r[2]).assert_success();
    let competing = world.remote.competing_commit().expect("the hook ran");
    assert_eq!(
        world.running("dev", PROJECT).as_deref(),
        Some(&*r[2].commit)
    );
    assert_eq!(
        world.remote.git_ok(&["rev-parse", "main^"]).trim(),
        competing,
        "the deploy landed on top of the competing commit"
    );
}

#[test]
fn auto_deploy_re_plans_and_never_replaces_a_release_with_an_older_one() {
    let (mut world, r) = three_releases();
    // Release 3 reaches dev while the pipeline of release 2 is pushing.
    let theirs = world.pointer_naming("dev", &r[2].commit, &r[2].digest);
    let _daemon = serve(
        &mut world,
        &Hooks::competing_commit(&pointer_path("dev", PROJECT), &theirs),
    );
    let out = world.run(&["deploy", "--auto", PROJECT, &r[1].tag]);
    out.assert_success()
        .assert_stdout_contains("skipped: release 3 already runs in dev");
    assert_eq!(
        world.running("dev", PROJECT).as_deref(),
        Some(&*r[2].commit)
    );
    assert_eq!(
        world.remote.head(),
        world.remote.competing_commit().unwrap()
    );
    // Without any race too: a late pipeline never downgrades.
    let out = world.run(&["deploy", "--auto", PROJECT, &r[0].tag]);
    out.assert_success()
        .assert_stdout_contains("skipped: release 3 already runs in dev");
    assert_eq!(
        world.running("dev", PROJECT).as_deref(),
        Some(&*r[2].commit)
    );
}

/// Runs every `args` at once (deploy_race's race, each process with a cache of its own);
/// returns the outputs and the wall time of the whole race.
fn race(world: &World, runs: Vec<Vec<String>>, tag: &str) -> (Vec<Output>, Duration) {
    let started = Instant::now();
    let outs = crate::deploy_race::race(world, runs, tag);
    (outs, started.elapsed())
}

/// Sixteen releases from `main`, release `i` of project `project(i)` at commit `seed(i)`,
/// registered before the world starts serving over `git daemon`; the daemon and the
/// `deploy dev PROJECT NUMBER` of each release.
fn sixteen(
    world: &mut World,
    project: impl Fn(usize) -> String,
    seed: impl Fn(usize) -> String,
) -> (Vec<Release>, GitDaemon, Vec<Vec<String>>) {
    let releases: Vec<Release> = (0..16)
        .map(|i| world.create(&project(i), &sha(&seed(i)), &["--source-branch", "main"]))
        .collect();
    let daemon = serve(world, &Hooks::log());
    let runs = releases
        .iter()
        .map(|r| {
            vec![
                "deploy".into(),
                "dev".into(),
                r.project.clone(),
                r.number.to_string(),
            ]
        })
        .collect();
    (releases, daemon, runs)
}

#[test]
fn sixteen_deploys_to_one_pointer_at_once_land_or_conflict_and_none_is_lost() {
    let mut world = World::new(OPEN);
    let (releases, _daemon, runs) = sixteen(
        &mut world,
        |_| PROJECT.to_owned(),
        |i| format!("load-{}", i + 1),
    );
    let before = world.remote.commit_count();
    let (outs, took) = race(&world, runs, "one-pointer");
    let landed: Vec<&Release> = releases
        .iter()
        .zip(&outs)
        .filter(|(_, o)| o.success())
        .map(|(r, _)| r)
        .collect();
    let conflicts = outs.iter().filter(|o| o.code() == Some(6)).count();
    eprintln!(
        "16 deploys to one pointer over git daemon: {took:?}, {} landed, {conflicts} conflicts",
        landed.len()
    );
    for o in &outs {
        if !o.success() {
            o.assert_exit(6).assert_stderr_contains("found release");
        }
    }
    assert!(!landed.is_empty(), "at least one deploy lands");
    assert_eq!(
        world.remote.commit_count() - before,
        landed.len(),
        "one commit per deploy that exited 0, none for a conflict"
    );
    // The pointer names the release of the last deploy that said it succeeded.
    let last = world.remote.last_message();
    let running = world.running("dev", PROJECT).unwrap();
    assert!(
        last.contains(&format!("Release-Commit: {running}")),
        "{last}"
    );
    assert!(landed.iter().any(|r| r.commit == running));
    assert!(world.remote.is_linear());
    world.remote.assert_fsck_clean();
}

#[test]
fn sixteen_deploys_to_sixteen_pointers_at_once_all_land_over_git_daemon() {
    let mut world = World::new(OPEN);
    let (releases, _daemon, runs) = sixteen(
        &mut world,
        |i| format!("svc-{i:02}"),
        |i| format!("svc-{i}"),
    );
    let before = world.remote.commit_count();
    let (outs, took) = race(&world, runs, "sixteen-pointers");
    eprintln!("16 deploys to 16 pointers over git daemon: {took:?}");
    for o in &outs {
        o.assert_success();
    }
    assert_eq!(world.remote.commit_count(), before + 16);
    for r in &releases {
        assert_eq!(
            world.running("dev", &r.project).as_deref(),
            Some(&*r.commit)
        );
    }
    assert!(world.remote.is_linear());
    world.remote.assert_fsck_clean();
}
