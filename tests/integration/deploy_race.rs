//! Concurrent deploys to one remote (docs/design.md §7, issue 5): the non-forced push is the
//! compare-and-swap, and the loser of a race plans again on the new tip.
//!
//! What must hold: every deploy lands (or is refused by policy), history stays linear,
//! `git fsck --full` is clean, every pointer names what its last deploy said, and no commit
//! ever overwrites a change it did not see — each deploy commit's "Previous release" names
//! exactly the release its parent commit's pointer held. Every process has a cache of its own,
//! so they race at the remote, not on a local lock.

use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Duration;

use crate::support::Output;
use crate::support::setup::PROJECT;
use crate::support::world::{Release, World, pointer_path, sha};

const OPEN: &str = "environments:\n  dev:\n    promotion_policy: {auto_deploy: true}\n";

/// Runs every `args` at once (a barrier releases the threads together), each process with a
/// cache dir of its own.
pub(crate) fn race(world: &World, runs: Vec<Vec<String>>, tag: &str) -> Vec<Output> {
    let barrier = Arc::new(Barrier::new(runs.len()));
    let handles: Vec<_> = runs
        .into_iter()
        .enumerate()
        .map(|(i, args)| {
            let cmd = world
                .cmd()
                .env("RELEASECTL_CACHE_DIR", world.cache(&format!("{tag}-{i}")))
                .args(args)
                .timeout(Duration::from_secs(240));
            let barrier = Arc::clone(&barrier);
            thread::spawn(move || {
                barrier.wait();
                cmd.run()
            })
        })
        .collect();
    handles
        .into_iter()
        .map(|h| h.join().expect("race thread"))
        .collect()
}

/// The `Previous release:` line of a commit message.
fn previous_of(message: &str) -> Option<String> {
    message
        .lines()
        .find_map(|l| l.strip_prefix("Previous release: "))
        .map(str::to_owned)
}

/// The label the pointer at `path` in commit `rev` gives its release (`N (alias)`), or `none`.
fn label_at(world: &World, rev: &str, path: &str, releases: &[Release]) -> String {
    let out = crate::support::git::git()
        .arg("--git-dir")
        .arg(world.remote.path())
        .args(["show", &format!("{rev}:{path}")])
        .run();
    if !out.success() {
        return "none".into();
    }
    let text = out.stdout_str();
    let commit = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("release: "))
        .expect("spec.release")
        .trim()
        .trim_matches(['"', '\''])
        .to_owned();
    releases
        .iter()
        .find(|r| r.commit == commit)
        .map_or_else(|| format!("unknown {commit}"), |r| r.label.clone())
}

/// Every commit touching `path` says, as its previous release, what its parent held there.
fn assert_no_blind_overwrite(world: &World, path: &str, releases: &[Release]) {
    let revs = world
        .remote
        .git(["log", "--format=%H", "main", "--", path])
        .stdout_str();
    for rev in revs.lines() {
        let message = world.remote.message(rev);
        let Some(previous) = previous_of(&message) else {
            continue;
        };
        let parent_label = label_at(world, &format!("{rev}^"), path, releases);
        assert_eq!(
            previous, parent_label,
            "commit {rev} claims the previous release was {previous}, but its parent held {parent_label}:\n{message}"
        );
    }
}

/// `git daemon --enable=receive-pack` serving the world's remote (git's own receive-pack
/// takes the pushes, with its compare-and-swap on the ref).
pub(crate) struct Daemon(std::process::Child);

impl Daemon {
    pub(crate) fn serve(world: &mut World) -> Self {
        let root = world.remote.path().parent().expect("remote dir").to_owned();
        for _ in 0..5 {
            let port = crate::support::registry::free_port();
            let child = crate::support::git::git()
                .args(["daemon", "--reuseaddr", "--listen=127.0.0.1"])
                .arg(format!("--port={port}"))
                .arg(format!("--base-path={}", root.display()))
                .args(["--export-all", "--enable=receive-pack"])
                .arg(&root)
                .to_command(std::env::vars_os().map(|(k, _)| k))
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .expect("start git daemon");
            let daemon = Self(child);
            for _ in 0..100 {
                if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    world.url = format!("git://127.0.0.1:{port}/gitops.git");
                    return daemon;
                }
                thread::sleep(Duration::from_millis(50));
            }
        }
        panic!("git daemon did not start");
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn sixteen_deploys_of_sixteen_projects_at_once_all_land_in_a_linear_history() {
    sixteen_at_once(&World::new(OPEN), None);
}

#[test]
fn sixteen_deploys_at_once_over_git_daemon_all_land_in_a_linear_history() {
    let mut world = World::new(OPEN);
    let daemon = Daemon::serve(&mut world);
    sixteen_at_once(&world, Some(&daemon));
}

fn sixteen_at_once(world: &World, _daemon: Option<&Daemon>) {
    let releases: Vec<Release> = (0..16)
        .map(|i| {
            world.create(
                &format!("svc-{i:02}"),
                &sha(&format!("svc-{i}")),
                &["--source-branch", "main"],
            )
        })
        .collect();
    let before = world.remote.commit_count();
    assert_eq!(before, 1 + 16, "seed and 16 registrations");
    let runs = releases
        .iter()
        .map(|r| {
            vec![
                "deploy".to_owned(),
                "dev".to_owned(),
                r.project.clone(),
                r.number.to_string(),
            ]
        })
        .collect();
    let outputs = race(world, runs, "sixteen");
    for out in &outputs {
        out.assert_success();
    }
    let lost: Vec<(&str, String)> = releases
        .iter()
        .zip(&outputs)
        .filter(|(r, _)| world.running("dev", &r.project).as_ref() != Some(&r.commit))
        .map(|(r, out)| (r.project.as_str(), out.stdout_str()))
        .collect();
    assert!(
        lost.is_empty(),
        "every deploy exited 0, but the pointers of {lost:#?} are not on main: a push overwrote \
         another's commit ({} of 16 deploy commits on main)",
        world.remote.commit_count() - before
    );
    assert_eq!(
        world.remote.commit_count(),
        before + 16,
        "all 16 commits land"
    );
    assert!(
        world.remote.is_linear(),
        "git rev-list --merges main is not empty"
    );
    world.remote.assert_fsck_clean();
    let subjects = world.remote.subjects();
    for r in &releases {
        let subject = format!("Deploy {} to dev: release {}", r.project, r.label);
        assert_eq!(
            subjects.iter().filter(|s| **s == subject).count(),
            1,
            "exactly one commit {subject:?}"
        );
    }
}

#[test]
fn two_deploys_to_the_same_pointer_at_once_never_overwrite_blindly() {
    same_pointer_rounds(&World::new(OPEN));
}

#[test]
fn two_deploys_to_the_same_pointer_at_once_over_git_daemon_never_overwrite_blindly() {
    let mut world = World::new(OPEN);
    let _daemon = Daemon::serve(&mut world);
    same_pointer_rounds(&world);
}

fn same_pointer_rounds(world: &World) {
    let mut releases = vec![world.main_release("base")];
    world.ok(&["deploy", "dev", PROJECT, "1"]);
    // Several rounds, so that at least some of them really race.
    for round in 0..4 {
        let a = world.main_release(&format!("a{round}"));
        let b = world.main_release(&format!("b{round}"));
        releases.push(a.clone());
        releases.push(b.clone());
        let head = world.remote.head();
        let deploy = |r: &Release| {
            vec![
                "deploy".to_owned(),
                "dev".to_owned(),
                PROJECT.to_owned(),
                r.number.to_string(),
            ]
        };
        let outputs = race(
            world,
            vec![deploy(&a), deploy(&b)],
            &format!("pair-{round}"),
        );
        for out in &outputs {
            // Landing after the winner, or a conflict (exit 6); never anything else.
            if !out.success() {
                out.assert_exit(6);
            }
        }
        let landed = outputs.iter().filter(|o| o.success()).count();
        let new_commits: usize = world
            .remote
            .git(["rev-list", "--count", &format!("{head}..main")])
            .stdout_str()
            .trim()
            .parse()
            .unwrap();
        assert_eq!(new_commits, landed, "one commit per deploy that succeeded");
        // The tip's pointer names the release of the last commit.
        let last = world.remote.last_message();
        let running = world.running("dev", PROJECT).unwrap();
        assert!(
            last.contains(&format!("Release-Commit: {running}")),
            "the pointer names what the last commit says\n{last}"
        );
    }
    assert!(world.remote.is_linear());
    world.remote.assert_fsck_clean();
    assert_no_blind_overwrite(world, &pointer_path("dev", PROJECT), &releases);
}

#[test]
fn a_deploy_racing_a_rollback_block_is_refused_or_lands_after_it_knowingly() {
    let world = World::new(OPEN);
    let one = world.main_release("one");
    let two = world.main_release("two");
    world.ok(&["deploy", "dev", PROJECT, "1"]);
    world.ok(&["deploy", "dev", PROJECT, "2"]);
    let three = world.main_release("three");
    let outputs = race(
        &world,
        vec![
            vec![
                "rollback".into(),
                "dev".into(),
                PROJECT.into(),
                "--block".into(),
            ],
            vec!["deploy".into(), "dev".into(), PROJECT.into(), "3".into()],
        ],
        "block",
    );
    for out in &outputs {
        if !out.success() {
            // A rollback that lost the race refuses to land on a pointer it did not judge
            // (exit 5, nothing written); a deploy may only be refused by policy.
            assert!(matches!(out.code(), Some(4 | 6)), "{out}");
        }
    }
    assert!(world.remote.is_linear());
    world.remote.assert_fsck_clean();
    assert_no_blind_overwrite(
        &world,
        &pointer_path("dev", PROJECT),
        &[one, two.clone(), three],
    );
    // Whatever happened, release 2 is still blocked if the rollback landed.
    if outputs[0].success() {
        assert!(world.pointer("dev", PROJECT).unwrap().contains(&two.commit));
    }
}
