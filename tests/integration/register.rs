//! `release create --gitops`: registration through real git remotes (issue 4).
//!
//! Every test runs the real binary against a real remote: a bare repository by path and
//! `file://`, `git daemon --enable=receive-pack`, and smart HTTP (`git http-backend` behind
//! lighttpd with basic auth). Releases go to an OCI layout (`--registry oci:DIR`) unless the
//! test is about the registry. Each process gets its own `RELEASECTL_CACHE_DIR` unless the
//! test is about sharing one, so processes race at the remote, where the non-forced push is
//! the compare-and-swap.
//!
//! What must hold: numbers are unique and dense under concurrency, the image's metadata
//! number equals the register's, no push is ever forced (the server's post-receive log shows
//! each accepted update starting where the previous one ended), a rejected or failed
//! registration leaves the remote untouched, and no credential reaches the output.

use std::time::Duration;

use serde_json::Value;

use crate::support::git::{BareRepo, GitDaemon, GitHttp, Hooks};
use crate::support::setup::{self, PROJECT, REPOSITORY, stdout_json};
use crate::support::world::World;
use crate::support::{Cmd, Output};

pub use crate::support::world::CI as ACTOR;
/// The register directory (format 2) of the default project.
pub const REGISTER: &str = "releases/company/monorepo/auth-service";
/// The one-file register (format 1) of the default project.
pub const LEGACY_REGISTER: &str = "releases/company/monorepo/auth-service.yaml";

/// Every file of the register directory `dir` at `main`, as `path:\ncontent` in path order;
/// `None` when there is no such directory.
pub fn register_files(repo: &BareRepo, dir: &str) -> Option<String> {
    let list = repo.git_ok(&["ls-tree", "-r", "--name-only", "refs/heads/main", "--", dir]);
    let mut out = String::new();
    for path in list.lines().filter(|p| !p.is_empty()) {
        out.push_str(path);
        out.push_str(":\n");
        out.push_str(&repo.show_required(path));
        out.push('\n');
    }
    (!out.is_empty()).then_some(out)
}

/// [`register_files`] of the default project, or a panic listing what is at `main`.
pub fn register_text(repo: &BareRepo) -> String {
    register_files(repo, REGISTER).unwrap_or_else(|| {
        panic!(
            "no register at main; files: {}",
            repo.git_ok(&["ls-tree", "-r", "--name-only", "refs/heads/main"])
        )
    })
}

/// A 40-hex commit id derived from `seed` (stable across runs).
pub fn commit(seed: &str) -> String {
    setup::sha256(seed.as_bytes())["sha256:".len()..][..40].to_owned()
}

/// `(number, commit)` of every release in a `release list -o json`, sorted by number.
pub fn numbers_and_commits(list: &Value) -> Vec<(u64, String)> {
    let mut v: Vec<(u64, String)> = list["releases"]
        .as_array()
        .unwrap_or_else(|| panic!("no releases in {list}"))
        .iter()
        .map(|r| {
            (
                r["number"].as_u64().expect("number"),
                r["commit"].as_str().expect("commit").to_owned(),
            )
        })
        .collect();
    v.sort();
    v
}

/// `release create` of the default project at `commit(seed)` through `gitops`, with the cache
/// dir `cache`.
fn create_of(env: &World, gitops: &str, cache: &str, seed: &str) -> Cmd {
    env.create_cmd(gitops, &env.cache(cache), &commit(seed), &[])
}

/// A successful registration round trip through `gitops`: the register at main holds the
/// release, and `release get`/`list` read it back.
fn registers_and_reads_back(repo: &BareRepo, gitops: &str, env: &World) {
    let c = commit("remote-round-trip");
    let created = env.register_via(
        gitops,
        &env.cache("writer"),
        &c,
        &["--source-branch", "main"],
    );
    assert_eq!(created["number"], 1, "{created}");
    let register = register_text(repo);
    assert!(
        register.contains(&c) && register.contains("kind: ReleaseRegisterHead"),
        "register at main:\n{register}"
    );
    assert!(
        register.contains(created["digest"].as_str().unwrap()),
        "{register}"
    );
    let subject = &repo.subjects()[0];
    assert!(
        subject.starts_with("Register release 1 (main-1) of company/monorepo/auth-service"),
        "commit subject: {subject}"
    );
    let author = repo.git(["log", "-1", "--format=%ae", "refs/heads/main"]);
    assert_eq!(author.stdout_str().trim(), ACTOR, "commit author");

    let out = env.get(gitops, PROJECT, "main-1");
    out.assert_success();
    let got = stdout_json(&out);
    assert_eq!(got["commit"], c.as_str(), "{out}");
    assert_eq!(got["number"], 1, "{out}");
    assert_eq!(got["digest"], created["digest"], "{out}");
    let list = env.list(gitops, &format!("{REPOSITORY}/{PROJECT}"));
    assert_eq!(numbers_and_commits(&list), vec![(1, c.clone())], "{list}");
    assert_eq!(env.image_number(&c), 1);
}

#[test]
fn registers_over_a_file_url() {
    let repo = BareRepo::with_initial_commit();
    registers_and_reads_back(&repo, &repo.file_url(), &World::empty());
    repo.assert_fsck_clean();
    assert_eq!(repo.commit_count(), 2);
}

#[test]
fn registers_in_an_empty_repository_by_plain_path() {
    let repo = BareRepo::new();
    registers_and_reads_back(&repo, &repo.path().display().to_string(), &World::empty());
    repo.assert_fsck_clean();
    assert_eq!(repo.commit_count(), 1, "the register commit is the root");
}

#[test]
fn registers_over_git_daemon() {
    let repo = BareRepo::with_initial_commit();
    repo.install_hooks(&Hooks::log());
    let daemon = GitDaemon::start(&repo);
    registers_and_reads_back(&repo, &daemon.url(), &World::empty());
    repo.assert_fast_forward_only(1);
    repo.assert_fsck_clean();
}

#[test]
fn registers_over_smart_http_with_credentials_in_the_url() {
    let repo = BareRepo::with_initial_commit();
    repo.install_hooks(&Hooks::log());
    let http = GitHttp::start(&repo, "alice", "url-secret-5fd2");
    let env = World::empty();
    let url = http.url_with_credentials();
    let c = commit("http-url");
    let out = env.create_cmd(&url, &env.cache("writer"), &c, &[]).run();
    out.assert_success().assert_no_leak(http.password());
    assert_eq!(stdout_json(&out)["number"], 1, "{out}");
    assert!(register_text(&repo).contains(&c));
    let out = env.get(&url, PROJECT, &c[..7]);
    out.assert_success().assert_no_leak(http.password());
    assert_eq!(stdout_json(&out)["number"], 1, "{out}");
    repo.assert_fast_forward_only(1);
    // The cache clone must not keep the password in a remote URL or config.
    let cache = env.cache("writer");
    let grep = Cmd::new("grep")
        .args(["-r", "-l", "-a", http.password()])
        .arg(&cache)
        .run();
    assert!(
        grep.stdout.is_empty(),
        "the password was written into the cache: {grep}"
    );
}

#[test]
fn registers_over_smart_http_with_credentials_from_the_environment() {
    let repo = BareRepo::with_initial_commit();
    let http = GitHttp::start(&repo, "bot", "env-secret-81ac");
    let env = World::empty();
    let c = commit("http-env");
    let out = env
        .create_cmd(&http.url(), &env.cache("writer"), &c, &[])
        .env("RELEASECTL_GIT_USERNAME", http.user())
        .env("RELEASECTL_GIT_PASSWORD", http.password())
        .run();
    out.assert_success().assert_no_leak(http.password());
    assert_eq!(stdout_json(&out)["number"], 1, "{out}");
    let list = env
        .releasectl(&http.url(), &env.cache("reader"))
        .env("RELEASECTL_GIT_USERNAME", http.user())
        .env("RELEASECTL_GIT_PASSWORD", http.password())
        .args(["-o", "json", "release", "list", PROJECT])
        .run();
    list.assert_success();
    assert_eq!(numbers_and_commits(&stdout_json(&list)), vec![(1, c)]);
}

#[test]
fn registers_over_smart_http_with_credentials_from_a_git_credential_helper() {
    let repo = BareRepo::with_initial_commit();
    let http = GitHttp::start(&repo, "bot", "helper-secret-5d20");
    let env = World::empty();
    // A HOME whose git config names a credential helper, as a developer's machine would.
    let home = crate::support::temp_dir();
    let helper = home.path().join("git-credential-test");
    std::fs::write(
        &helper,
        format!(
            "#!/bin/sh\n[ \"$1\" = get ] || exit 0\necho \"$1\" >> {log}\necho username={user}\necho password={pass}\n",
            log = home.path().join("helper.log").display(),
            user = http.user(),
            pass = http.password()
        ),
    )
    .expect("write helper");
    crate::support::Cmd::new("chmod")
        .args(["+x"])
        .arg(&helper)
        .run()
        .assert_success();
    std::fs::write(
        home.path().join(".gitconfig"),
        format!("[credential]\n\thelper = {}\n", helper.display()),
    )
    .expect("write gitconfig");
    let c = commit("http-helper");
    let out = env
        .create_cmd(&http.url(), &env.cache("writer"), &c, &[])
        .env("HOME", home.path())
        .env_remove("XDG_CONFIG_HOME")
        .env_remove("GIT_CONFIG_GLOBAL")
        .run();
    out.assert_success().assert_no_leak(http.password());
    assert_eq!(stdout_json(&out)["number"], 1, "{out}");
    let asked = std::fs::read_to_string(home.path().join("helper.log")).unwrap_or_default();
    assert!(
        asked.contains("get"),
        "the credential helper was never asked: {out}"
    );
}

#[test]
fn a_wrong_password_fails_once_fast_with_exit_5_and_never_shows_the_password() {
    const CANARY: &str = "canary-pw-3b9e61";
    let repo = BareRepo::with_initial_commit();
    let before = repo.main_sha();
    let mut http = GitHttp::start(&repo, "alice", "the-right-one");
    let env = World::empty();
    let out = create_of(
        &env,
        &http.url_with("alice", CANARY),
        "writer",
        "wrong-password",
    )
    .timeout(Duration::from_secs(30))
    .run();
    setup::assert_fails(&out, 5, &[&http.url(), "authentication"]);
    out.assert_no_leak(CANARY);
    assert!(
        out.elapsed < Duration::from_secs(10),
        "a refused password must fail at once, took {:?}\n{out}",
        out.elapsed
    );
    let log = http.stop_and_access_log();
    let refused = log.iter().filter(|l| l.contains("\" 401 ")).count();
    assert!(
        log.len() <= 3 && refused <= 3,
        "no retry loop: the server saw {} requests ({refused} refused):\n{}",
        log.len(),
        log.join("\n")
    );
    assert!(!log.is_empty(), "the server saw no request at all");
    assert_eq!(repo.main_sha(), before, "the remote must be untouched");
    // The fetch failed before anything was built: no image was pushed either.
    let inspect = Cmd::releasectl()
        .args([
            "inspect",
            &format!(
                "{}/{REPOSITORY}/{PROJECT}:{}",
                env.registry(),
                commit("wrong-password")
            ),
        ])
        .run();
    assert!(
        !inspect.success(),
        "an image was pushed although registration could not start\n{inspect}"
    );

    // The same through the environment variables.
    let mut http = GitHttp::start(&repo, "alice", "the-right-one");
    let out = create_of(&env, &http.url(), "writer-env", "wrong-password")
        .env("RELEASECTL_GIT_USERNAME", "alice")
        .env("RELEASECTL_GIT_PASSWORD", CANARY)
        .timeout(Duration::from_secs(30))
        .run();
    setup::assert_fails(&out, 5, &[&http.url()]);
    out.assert_no_leak(CANARY);
    assert!(out.elapsed < Duration::from_secs(10), "{out}");
    let log = http.stop_and_access_log();
    assert!(log.len() <= 3, "{}", log.join("\n"));
    assert_eq!(repo.main_sha(), before);
}

#[test]
fn a_rejecting_pre_receive_hook_is_a_clear_error_and_leaves_the_remote_untouched() {
    let repo = BareRepo::with_initial_commit();
    repo.install_hooks(&Hooks::reject("main is frozen for the audit"));
    let before = repo.main_sha();
    let daemon = GitDaemon::start(&repo);
    let env = World::empty();
    let out = create_of(&env, &daemon.url(), "writer", "rejected")
        .timeout(Duration::from_secs(120))
        .run();
    out.assert_failure().assert_stdout_empty();
    out.assert_stderr_contains(&daemon.url());
    let stderr = out.stderr_str();
    assert!(
        stderr.contains("declined") || stderr.contains("rejected"),
        "the error must say the server refused the push\n{out}"
    );
    assert_eq!(repo.main_sha(), before, "the remote must be untouched");
    assert!(repo.accepted_updates().is_empty());
    repo.assert_fsck_clean();
    // A hook that refuses while the branch stays where it was is not a race: retrying
    // cannot succeed, so the command must give up at once instead of looping.
    let attempts = repo.attempted_updates().len();
    assert!(
        attempts <= 2 && out.elapsed < Duration::from_secs(15),
        "a declined push (branch not moved) was retried {attempts} times over {:?}\n{out}",
        out.elapsed
    );
}

/// Starts `n` registrations of different commits at once; every one must succeed.
pub fn race(env: &World, gitops: &str, n: usize, shared_cache: bool) -> Vec<(String, Output)> {
    let commits: Vec<String> = (0..n).map(|i| commit(&format!("race-{i}"))).collect();
    let outputs: Vec<Output> = std::thread::scope(|s| {
        let handles: Vec<_> = commits
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let cache = if shared_cache {
                    env.cache("shared")
                } else {
                    env.cache(&format!("writer-{i}"))
                };
                let cmd = env
                    .create_cmd(gitops, &cache, c, &["--source-branch", "main"])
                    .timeout(Duration::from_secs(240));
                s.spawn(move || cmd.run())
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for out in &outputs {
        out.assert_success();
    }
    commits.into_iter().zip(outputs).collect()
}

/// After `race`: numbers 1..n each exactly once, printed number = register number = image
/// metadata number, `fsck` clean, a linear history of n register commits on the seed.
fn assert_race_outcome(repo: &BareRepo, env: &World, gitops: &str, results: &[(String, Output)]) {
    let n = results.len();
    let list = env.list(gitops, PROJECT);
    let registered = numbers_and_commits(&list);
    let numbers: Vec<u64> = registered.iter().map(|(num, _)| *num).collect();
    assert_eq!(
        numbers,
        (1..=n as u64).collect::<Vec<_>>(),
        "numbers 1..{n}, each once: {list}"
    );
    for (c, out) in results {
        let printed = stdout_json(out)["number"].as_u64().expect("number printed");
        let in_register = registered
            .iter()
            .find(|(_, rc)| rc == c)
            .unwrap_or_else(|| panic!("{c} is missing from the register: {list}\n{out}"))
            .0;
        assert_eq!(printed, in_register, "printed vs register for {c}\n{out}");
        assert_eq!(
            env.image_number(c),
            in_register,
            "image metadata number vs register for {c}"
        );
        let branch_alias = format!("main-{in_register}");
        assert!(
            stdout_json(out)["aliases"]
                .as_array()
                .is_some_and(|a| a.iter().any(|x| x["alias"] == branch_alias.as_str())),
            "{c} should carry {branch_alias}\n{out}"
        );
    }
    repo.assert_fsck_clean();
    assert!(repo.is_linear(), "history of main is not linear");
    assert_eq!(repo.commit_count(), n + 1, "seed + one commit per release");
    let registers = repo
        .subjects()
        .iter()
        .filter(|s| s.starts_with("Register release "))
        .count();
    assert_eq!(registers, n, "{:#?}", repo.subjects());
}

/// Ten concurrent creates through `git daemon` into a remote that logs its updates (see
/// [`race`]): asserts their outcome and that no push was forced; returns the remote.
fn ten_racers_through_a_daemon(shared_cache: bool) -> BareRepo {
    let repo = BareRepo::with_initial_commit();
    repo.install_hooks(&Hooks::log());
    let daemon = GitDaemon::start(&repo);
    let env = World::empty();
    let results = race(&env, &daemon.url(), 10, shared_cache);
    assert_race_outcome(&repo, &env, &daemon.url(), &results);
    repo.assert_fast_forward_only(10);
    repo
}

#[test]
fn ten_concurrent_creates_with_their_own_caches_get_numbers_1_to_10_without_force() {
    ten_racers_through_a_daemon(false);
}

#[test]
fn ten_concurrent_creates_sharing_one_cache_take_turns_and_get_numbers_1_to_10() {
    let repo = ten_racers_through_a_daemon(true);
    // Holding the cache lock, nobody should have had to retry.
    assert_eq!(
        repo.attempted_updates().len(),
        10,
        "{:#?}",
        repo.attempted_updates()
    );
}

/// libgit2 pushes to `file://` in-process; its compare-and-swap must hold there too.
#[test]
fn ten_concurrent_creates_over_a_file_url_lose_no_registration() {
    let repo = BareRepo::with_initial_commit();
    let env = World::empty();
    let results = race(&env, &repo.file_url(), 10, false);
    assert_race_outcome(&repo, &env, &repo.file_url(), &results);
}

#[test]
fn a_push_race_is_detected_rederived_from_the_new_tip_and_lands_on_top() {
    let repo = BareRepo::with_initial_commit();
    let competitor_content = "owned by another team\n";
    repo.install_hooks(&Hooks::competing_commit(
        "teams/other.yaml",
        competitor_content,
    ));
    let seed = repo.main_sha().unwrap();
    let daemon = GitDaemon::start(&repo);
    let env = World::empty();
    let c = commit("forced-race");
    let created = env.register_via(&daemon.url(), &env.cache("writer"), &c, &[]);
    assert_eq!(created["number"], 1, "{created}");

    let competitor = repo
        .competing_commit()
        .expect("the competing-commit hook ran");
    let attempts = repo.attempted_updates();
    assert_eq!(
        attempts.len(),
        2,
        "one rejected push, one accepted: {attempts:#?}"
    );
    assert_eq!(attempts[0].old, seed, "first try was based on the seed");
    assert_eq!(
        attempts[1].old, competitor,
        "the retry was re-derived from the competitor's tip"
    );
    // History: seed, competitor, ours on top; nothing rebased or overwritten.
    let log = repo.git(["rev-list", "--first-parent", "refs/heads/main"]);
    let shas: Vec<String> = log.stdout_str().lines().map(str::to_owned).collect();
    assert_eq!(shas.len(), 3, "{log}");
    assert_eq!(shas[1], competitor);
    assert_eq!(shas[2], seed);
    assert_eq!(
        repo.show("teams/other.yaml").as_deref(),
        Some(competitor_content),
        "the competitor's file must survive our commit on top of it\n{}",
        repo.git(["log", "--stat", "--format=%H %s", "refs/heads/main"])
    );
    assert!(register_text(&repo).contains(&c));
    repo.assert_fast_forward_only(1);
    repo.assert_fsck_clean();
    assert!(repo.is_linear());
    assert_eq!(env.image_number(&c), 1);
}

/// A competitor that registered release 1 of the same project between our fetch and our
/// push: ours must become release 2, and its image must be rebuilt with number 2.
#[test]
fn a_push_race_against_another_registration_takes_the_next_number_and_rebuilds_the_image() {
    let repo = BareRepo::with_initial_commit();
    let other = commit("competitor-release");
    let register = format!(
        "apiVersion: releasectl.dev/v1alpha1\nkind: ReleaseRegister\nrepository: {REPOSITORY}\n\
         project: {PROJECT}\nlast_number: 1\nreleases:\n- number: 1\n  commit: {other}\n  \
         digest: sha256:{}\n  created_at: '2023-11-14T22:13:20Z'\n  aliases: []\n  triggers: []\n",
        "ab".repeat(32)
    );
    // The competitor is an older releasectl: it writes format 1, which our write migrates.
    let mut hooks = Hooks::competing_commit(LEGACY_REGISTER, &register);
    if let Some(cc) = hooks.competing_commit.as_mut() {
        cc.message = "Register release 1 elsewhere".into();
    }
    repo.install_hooks(&hooks);
    let daemon = GitDaemon::start(&repo);
    let env = World::empty();
    let c = commit("loses-the-race");
    let created = env.register_via(
        &daemon.url(),
        &env.cache("writer"),
        &c,
        &["--source-branch", "main"],
    );
    assert!(repo.competing_commit().is_some(), "the hook ran");
    assert_eq!(created["number"], 2, "{created}");
    assert_eq!(
        env.image_number(&c),
        2,
        "the image was rebuilt for number 2"
    );
    let list = env.list(&daemon.url(), PROJECT);
    assert_eq!(
        numbers_and_commits(&list),
        vec![(1, other), (2, c.clone())],
        "{list}"
    );
    let out = env.get(&daemon.url(), PROJECT, "main-2");
    out.assert_success();
    assert_eq!(stdout_json(&out)["commit"], c.as_str(), "{out}");
    assert!(
        repo.show(LEGACY_REGISTER).is_none(),
        "the format 1 file is migrated away"
    );
    repo.assert_fsck_clean();
}

#[test]
fn a_failed_image_push_registers_nothing() {
    let repo = BareRepo::with_initial_commit();
    let before = repo.main_sha();
    let env = World::empty();
    let out = Cmd::releasectl()
        .args([
            "--registry",
            "127.0.0.1:1",
            "--insecure-registry",
            "127.0.0.1:1",
        ])
        .args(["--gitops", &repo.file_url(), "--actor", ACTOR, "-o", "json"])
        .args(setup::create_args(
            REPOSITORY,
            PROJECT,
            &commit("unpushable"),
            &setup::fixture_manifests(),
        ))
        .env("RELEASECTL_CACHE_DIR", env.cache("writer"))
        .timeout(Duration::from_secs(60))
        .run();
    setup::assert_fails(&out, 5, &["127.0.0.1:1"]);
    assert_eq!(repo.main_sha(), before, "nothing may be registered");
    assert!(register_files(&repo, REGISTER).is_none());
}
