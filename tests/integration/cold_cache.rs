//! The policy rules that read the past (soak, progression, the rollback target, `history`)
//! keep their meaning when every run starts from an empty cache over `git daemon`, where the
//! tip is fetched alone and history is deepened on demand (docs/design.md §7): the policy
//! suites run again cold ([`policy_suite`]), and soak, progression and rollback read the
//! pointer's record of recent stays (`releasectl.dev/history`, docs/format.md §11) without
//! fetching any history; pointers without the record still work, and `check` refuses a
//! record that is malformed or disagrees with its commit.

use crate::deploy_race::Daemon;
use crate::support::setup::PROJECT;
use crate::support::world::{World, pointer_path};

const SOAK: &str =
    "environments:\n  dev: {}\n  staging:\n    promotion_policy: {requires: [dev], soak: 30m}\n";

fn at(time: &str) -> String {
    format!("2026-11-23T{time}:00Z")
}

/// Serves the world's remote over `git daemon` with filters and any-object wants allowed,
/// as a partial fetch needs.
fn serve(world: &mut World) -> Daemon {
    for (key, value) in [
        ("uploadpack.allowFilter", "true"),
        ("uploadpack.allowAnySHA1InWant", "true"),
    ] {
        let status = std::process::Command::new("git")
            .arg("--git-dir")
            .arg(world.remote.path())
            .args(["config", key, value])
            .status()
            .expect("run git config");
        assert!(status.success(), "git config {key} {value}");
    }
    Daemon::serve(world)
}

/// Whether the shared cache is a partial clone of the remote (a `shallow` file, fewer objects
/// than the remote holds).
fn cache_is_partial(world: &World) -> bool {
    let root = world.cache("shared").join("git");
    std::fs::read_dir(&root)
        .into_iter()
        .flatten()
        .flatten()
        .any(|e| e.path().join("shallow").exists())
}

/// Empties the shared cache, as on an ephemeral CI runner.
fn forget(world: &World) {
    let dir = world.cache("shared");
    std::fs::remove_dir_all(&dir).expect("remove the shared cache");
}

/// `releasectl ARGS` at `time` on an empty cache, asserting success.
fn cold_ok(world: &World, time: &str, args: &[&str]) {
    forget(world);
    world.run_at(&at(time), args).assert_success();
}

#[test]
fn soak_on_an_empty_cache_counts_the_most_recent_stay() {
    let mut world = World::new(SOAK);
    let _daemon = serve(&mut world);
    for seed in ["one", "two", "three"] {
        world.main_release(seed);
    }
    cold_ok(&world, "12:00", &["deploy", "dev", PROJECT, "1"]);
    cold_ok(&world, "12:05", &["deploy", "dev", PROJECT, "2"]);
    forget(&world);
    let head = world.remote.head();
    world
        .run_at(&at("13:20"), &["deploy", "staging", PROJECT, "1"])
        .assert_exit(4)
        .assert_stdout_contains("soak: required 30m in dev, actual 5m in dev (until replaced)");
    assert_eq!(world.remote.head(), head, "a refusal writes nothing");
    cold_ok(&world, "13:20", &["deploy", "staging", PROJECT, "2"]);
    cold_ok(&world, "13:40", &["deploy", "dev", PROJECT, "3"]);
    assert!(
        cache_is_partial(&world),
        "a deploy to dev (no rule reads the past) fetched the tip alone"
    );
}

#[test]
fn rollback_on_an_empty_cache_goes_back_one_step_and_history_lists_every_deploy() {
    let mut world = World::new(SOAK);
    let _daemon = serve(&mut world);
    let r = world.main_releases(&["one", "two", "three"]);
    for (i, t) in ["10:00", "10:10", "10:20"].iter().enumerate() {
        cold_ok(&world, t, &["deploy", "dev", PROJECT, &(i + 1).to_string()]);
    }
    cold_ok(&world, "10:30", &["rollback", "dev", PROJECT]);
    assert_eq!(world.running("dev", PROJECT), Some(r[1].commit.clone()));
    cold_ok(&world, "10:40", &["rollback", "dev", PROJECT]);
    assert_eq!(world.running("dev", PROJECT), Some(r[0].commit.clone()));
    forget(&world);
    world
        .run(&["status"])
        .assert_success()
        .assert_stdout_contains(&r[0].commit[..12]);
    forget(&world);
    let out = world.run(&["-o", "json", "history", "dev", PROJECT]);
    out.assert_success();
    let events: serde_json::Value = serde_json::from_slice(&out.stdout).expect("history JSON");
    let actions: Vec<&str> = events
        .as_array()
        .expect("a list of events")
        .iter()
        .map(|e| e["action"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(
        actions,
        ["rollback", "rollback", "deploy", "deploy", "deploy"],
        "history on an empty cache lists every change, newest first"
    );
}

/// The `fetched N wanted: M objects` lines of a `-vv` run, as (N, M).
fn fetches(stderr: &[u8]) -> Vec<(u64, u64)> {
    String::from_utf8_lossy(stderr)
        .lines()
        .filter_map(|l| {
            let rest = l.split("fetched ").nth(1)?;
            let mut words = rest.split([' ', ':']).filter(|w| !w.is_empty());
            let wanted = words.next()?.parse().ok()?;
            let objects = words.nth(1)?.parse().ok()?;
            Some((wanted, objects))
        })
        .collect()
}

#[test]
fn a_cold_run_gets_the_root_level_with_the_tip_and_status_all_pointers_in_one_request() {
    let mut world = World::new(SOAK);
    let _daemon = serve(&mut world);
    let projects = ["auth-service", "billing", "search"];
    for p in projects {
        world.create(
            p,
            &crate::support::world::sha(p),
            &["--source-branch", "main"],
        );
        world.ok(&["deploy", "dev", p, "1"]);
    }
    forget(&world);
    let out = world
        .cmd()
        .args(["-vv", "deploy", "dev", PROJECT, "1"])
        .run();
    out.assert_success();
    let got = fetches(&out.stderr);
    // The commit, the root tree, environments.yaml and the trees of dev/ and releases/.
    assert!(
        got.first()
            .is_some_and(|(wanted, objects)| *wanted == 1 && *objects >= 5),
        "the first fetch of a cold run brings the root level with the tip: {got:?}"
    );
    forget(&world);
    let out = world.cmd().args(["-vv", "status"]).run();
    out.assert_success();
    for p in projects {
        out.assert_stdout_contains(p);
    }
    let got = fetches(&out.stderr);
    let batched = got
        .iter()
        .filter(|(wanted, _)| *wanted >= projects.len() as u64)
        .count();
    assert!(
        batched >= 1,
        "status fetched the pointers of all projects in one request: {got:?}"
    );
}

/// The policy suites (`policy.rs`, `policy_semantics.rs`) once more, every world cold
/// ([`crate::support::world::cold`]): each command starts from an empty cache over
/// `git daemon`, and every decision must come out as on a warm cache. (The two tests that
/// serve their remote themselves, to run its hooks, are left out.)
mod policy_suite {
    /// `#[test] fn NAME` running `crate::SUITE::NAME` cold, for each NAME.
    macro_rules! cold {
        ($suite:ident: $($name:ident,)*) => {
            $(
                #[test]
                fn $name() {
                    crate::support::world::cold(crate::$suite::$name);
                }
            )*
        };
    }

    /// `tests/integration/policy.rs`, cold.
    mod policy {
        cold! {
            policy:
        a_bad_policy_is_exit_2_naming_file_key_and_value,
        an_unknown_key_in_an_environment_is_exit_2,
        allowed_triggers_refuses_a_branch_push_and_admits_a_tag_or_a_manual_release,
        a_release_pushed_from_main_and_later_tagged_passes_allowed_triggers,
        allowed_branches_are_anchored_globs,
        a_release_without_a_branch_fails_allowed_branches,
        auto_deploy_writes_only_the_environments_that_have_it,
        auto_deploy_with_no_auto_environment_is_exit_2_and_writes_nothing,
        auto_deploy_that_no_environment_admits_writes_nothing_and_says_so,
        requires_admits_a_release_running_or_having_run_in_the_required_environment,
        soak_counts_from_when_the_release_reached_the_required_environment,
        soak_is_not_reset_by_an_unrelated_commit_in_the_required_environment,
        windows_admit_and_refuse_by_weekday_time_and_time_zone,
        two_valid_approvals_by_listed_approvers_admit_the_release,
        approvals_that_do_not_count_are_named_and_leave_the_quorum_short,
        an_approval_does_not_outlive_the_policy_ttl,
        a_malformed_approval_file_is_exit_2_naming_it,
        a_held_environment_refuses_every_deploy_with_its_reason,
        hold_true_is_a_hold_too,
        an_override_with_a_reason_lets_the_rule_pass_and_is_recorded_in_the_commit,
        an_override_without_a_reason_is_exit_2_and_writes_nothing,
        an_override_of_an_unknown_rule_is_exit_2,
        an_override_of_one_rule_leaves_the_others_failing,
        a_refusal_lists_every_failing_decision_with_required_and_actual,
        a_release_passing_every_rule_together_lands,
        }
    }

    /// `tests/integration/policy_semantics.rs`, cold.
    mod policy_semantics {
        cold! {
            policy_semantics:
        soak_counts_the_most_recent_stay_not_the_time_since_the_first_deploy,
        a_stay_that_ended_in_a_rollback_neither_soaks_nor_satisfies_requires,
        two_rollbacks_in_a_row_go_two_steps_back_and_never_forward,
        a_rollback_to_a_release_that_ran_there_skips_approvals_progression_and_soak,
        a_rollback_still_respects_windows_and_holds_unless_overridden_and_history_shows_it,
        unblock_prints_no_policy_decisions_and_history_names_the_release_unblocked,
        approvals_without_a_list_need_one_person_other_than_the_deployer,
        a_group_naming_a_project_twice_is_a_usage_error_naming_it,
        a_dry_run_needs_no_actor_and_exits_as_the_real_run_would_be_judged,
        approve_refuses_an_approval_that_could_never_count_and_writes_nothing,
        approving_where_no_approval_is_needed_says_so_and_refuses_no_one,
        a_promote_against_the_path_is_refused_with_rule_promotion_path_unless_overridden,
        under_the_monorepo_strategy_another_projects_tag_is_neither_alias_nor_trigger,
        a_trigger_without_its_source_is_a_usage_error_and_a_new_branch_adds_its_alias,
        }
    }
}

/// Whether the shared cache still holds the tip alone (shallow) and fewer objects than the
/// remote: nothing fetched the history.
fn history_not_fetched(world: &World) -> bool {
    cache_is_partial(world) && world.cache_object_count() < world.remote.object_count()
}

/// The pointer of auth-service in `env`, its `releasectl.dev/history` value.
fn record(world: &World, env: &str) -> Option<String> {
    world.pointer(env, PROJECT).and_then(|p| {
        p.lines().find_map(|l| {
            l.trim()
                .strip_prefix("releasectl.dev/history: ")
                .map(|v| v.trim_matches('"').to_owned())
        })
    })
}

#[test]
fn a_promote_with_soak_and_a_rollback_on_an_empty_cache_fetch_no_history() {
    let mut world = World::new(SOAK);
    let _daemon = serve(&mut world);
    let r = world.main_releases(&["one", "two", "three"]);
    cold_ok(&world, "12:00", &["deploy", "dev", PROJECT, "1"]);
    cold_ok(&world, "12:05", &["deploy", "dev", PROJECT, "2"]);
    // Soak and progression read dev's record: 1 ran 5 minutes and was replaced.
    forget(&world);
    world
        .run_at(&at("13:20"), &["deploy", "staging", PROJECT, "1"])
        .assert_exit(4)
        .assert_stdout_contains("soak: required 30m in dev, actual 5m in dev (until replaced)");
    assert!(history_not_fetched(&world), "the refusal read no history");
    cold_ok(
        &world,
        "13:20",
        &["promote", PROJECT, "--from", "dev", "--to", "staging"],
    );
    assert!(history_not_fetched(&world), "the promote read no history");
    assert_eq!(world.running("staging", PROJECT), Some(r[1].commit.clone()));
    cold_ok(&world, "13:30", &["deploy", "dev", PROJECT, "3"]);
    cold_ok(&world, "13:40", &["rollback", "dev", PROJECT]);
    assert!(history_not_fetched(&world), "the rollback read no history");
    assert_eq!(world.running("dev", PROJECT), Some(r[1].commit.clone()));
    cold_ok(&world, "13:50", &["rollback", "dev", PROJECT]);
    assert!(
        history_not_fetched(&world),
        "the second rollback read no history"
    );
    assert_eq!(world.running("dev", PROJECT), Some(r[0].commit.clone()));
    // The record, newest first, says how each stay began; dev's pointer was created by
    // the first deploy.
    let line = record(&world, "dev").expect("dev's pointer has a record");
    let stays: Vec<&str> = line.split(',').collect();
    assert_eq!(stays.len(), 6, "{line}");
    assert!(
        stays[0].starts_with("2026-11-23T13:50:00Z rollback 1 ")
            && stays[1].starts_with("2026-11-23T13:40:00Z rollback 2 ")
            && stays[2].starts_with("2026-11-23T13:30:00Z deploy 3 ")
            && stays[5] == "created",
        "{line}"
    );
    forget(&world);
    world.run(&["check"]).assert_success();
}

#[test]
fn a_pointer_without_the_record_still_counts_its_stays_and_gets_one_with_the_next_write() {
    let world = World::new(SOAK);
    let r = world.main_releases(&["one", "two", "three"]);
    for (i, t) in ["10:00", "10:10", "10:20"].iter().enumerate() {
        world
            .run_at(&at(t), &["deploy", "dev", PROJECT, &(i + 1).to_string()])
            .assert_success();
    }
    // As written before the record existed: the same pointer without it.
    let path = pointer_path("dev", PROJECT);
    let old: String = world
        .pointer("dev", PROJECT)
        .expect("dev's pointer")
        .lines()
        .filter(|l| !l.contains("releasectl.dev/history"))
        .flat_map(|l| [l, "\n"])
        .collect();
    world.hand_push(&[(&path, Some(&old))], "Drop the record");
    assert_eq!(record(&world, "dev"), None);
    // Soak walks dev's history: release 2 ran 10 minutes.
    world
        .run_at(&at("11:00"), &["deploy", "staging", PROJECT, "2"])
        .assert_exit(4)
        .assert_stdout_contains("actual 10m in dev (until replaced)");
    world
        .run_at(&at("11:00"), &["rollback", "dev", PROJECT])
        .assert_success();
    assert_eq!(world.running("dev", PROJECT), Some(r[1].commit.clone()));
    // The rollback walked the history: the new record carries it, whole.
    let line = record(&world, "dev").expect("the rollback wrote a record");
    assert!(
        line.starts_with("2026-11-23T11:00:00Z rollback 2 "),
        "{line}"
    );
    assert!(
        line.contains("2026-11-23T10:00:00Z deploy 1 ") && line.ends_with(",created"),
        "{line}"
    );
    // A second rollback reads it: back to 1.
    world
        .run_at(&at("11:10"), &["rollback", "dev", PROJECT])
        .assert_success();
    assert_eq!(world.running("dev", PROJECT), Some(r[0].commit.clone()));
    world.run(&["check"]).assert_success();
}

#[test]
fn check_refuses_a_malformed_record_and_a_pointer_moved_by_hand_is_judged_by_its_commits() {
    let world = World::new(SOAK);
    let r = world.main_releases(&["one", "two"]);
    world
        .run_at(&at("10:00"), &["deploy", "dev", PROJECT, "1"])
        .assert_success();
    let path = pointer_path("dev", PROJECT);
    let good = world.pointer("dev", PROJECT).expect("dev's pointer");
    let line = record(&world, "dev").expect("a record");
    let broken = good.replace(&line, &line.replace(" deploy ", " promoted "));
    world.hand_push(&[(&path, Some(&broken))], "Break the record");
    world
        .run(&["check"])
        .assert_exit(4)
        .assert_stdout_contains(&path)
        .assert_stdout_contains("history: required a valid record")
        .assert_stdout_contains("stay 1 action: expected deploy or rollback, found \"promoted\"");
    // Moved by hand to release 2, the record left naming 1: stale, so check flags it and
    // the rules walk the commits instead (release 2 has run since the hand commit).
    let moved = good.replace(
        &format!("release: \"{}\"", r[0].commit),
        &format!("release: \"{}\"", r[1].commit),
    );
    assert_ne!(moved, good);
    world.hand_push(&[(&path, Some(&moved))], "Move dev by hand");
    world
        .run(&["check"])
        .assert_exit(4)
        .assert_stdout_contains(&format!(
            "history: required a record whose newest stay is release {}",
            r[1].commit
        ))
        .assert_stdout_contains(&format!(
            "actual its newest stay is release {}",
            r[0].commit
        ));
    world
        .run_at(&at("12:00"), &["rollback", "dev", PROJECT])
        .assert_success();
    assert_eq!(world.running("dev", PROJECT), Some(r[0].commit.clone()));
}

#[test]
fn status_on_an_empty_cache_shows_the_noted_outcome_without_fetching_history() {
    let mut world = World::new("environments:\n  dev: {}\n  staging: {}\n");
    let _daemon = serve(&mut world);
    world.main_release("noted-one");
    let argo = crate::support::argocd::ArgoCd::start(
        &world,
        &serde_json::json!({"dev-company-monorepo-auth-service":
            [crate::support::argocd::frame(0.0, "Synced", "Healthy", "@tip")]}),
    );
    crate::argocd::wait_deploy(&world, &argo, "dev", "1", &[]).assert_success();
    // A later commit that leaves dev's pointer alone: dev's last write is not the tip.
    cold_ok(&world, "12:10", &["deploy", "staging", PROJECT, "1"]);
    forget(&world);
    let rows = crate::support::setup::stdout_json(&world.ok(&["-o", "json", "status"]));
    let row = |env: &str| {
        rows.as_array()
            .and_then(|r| r.iter().find(|x| x["environment"] == env))
            .cloned()
            .unwrap_or_default()
    };
    assert_eq!(row("dev")["outcome"], "succeeded", "{rows:#}");
    assert!(row("staging")["outcome"].is_null(), "{rows:#}");
    assert!(
        history_not_fetched(&world),
        "status found the noted write without fetching history"
    );
}

#[test]
fn status_live_says_whether_argo_cds_revision_holds_the_pointer_without_fetching_history() {
    let mut world = World::new("environments:\n  dev: {}\n  staging: {}\n");
    let _daemon = serve(&mut world);
    world.main_release("live-one");
    let registered = world.remote.main_sha().expect("a tip");
    world.ok(&["deploy", "dev", PROJECT, "1"]);
    let written = world.remote.main_sha().expect("a tip");
    // Later commits that leave dev's pointer alone: the tip holds it as `written` does.
    world.ok(&["deploy", "staging", PROJECT, "1"]);
    world.hand_push(
        &[("docs/README", Some("unrelated\n"))],
        "An unrelated change",
    );
    let unknown = "0123456789abcdef0123456789abcdef01234567".to_owned();
    for (revision, holds) in [
        (registered.clone(), false),
        (written.clone(), true),
        ("@tip".to_owned(), true),
        (unknown, false),
    ] {
        let argo = crate::support::argocd::ArgoCd::start(
            &world,
            &serde_json::json!({"dev-company-monorepo-auth-service":
                [crate::support::argocd::frame(0.0, "Synced", "Healthy", &revision)]}),
        );
        forget(&world);
        let out = argo
            .on(world.cmd())
            .args(["-o", "json", "status", "--live", "--env", "dev"])
            .run();
        out.assert_success();
        let rows = crate::support::setup::stdout_json(&out);
        assert_eq!(
            rows[0]["live"]["at_pointer"], holds,
            "revision {revision}: {rows:#}"
        );
        assert!(
            history_not_fetched(&world),
            "revision {revision}: status --live fetched history"
        );
    }
}
