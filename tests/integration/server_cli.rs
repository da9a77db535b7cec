//! The CLI pointed at a real `releasectl serve` (`--server URL`, RELEASECTL_SERVER_TOKEN, a
//! context's `server` key) instead of the GitOps repository: writes land as the token's
//! identity, a refusal exits as a local one with the same decision report, the JSON of both
//! paths is equal, and a bad token or an `--actor` is refused clearly.

use serde_json::Value;

use crate::support::cmd::{Cmd, Output};
use crate::support::serve::{Served, token};
use crate::support::setup::PROJECT;
use crate::support::world::{ALICE, BOB, CAROL, PRODUCTION, World, plain_policy, pointer_path};

const FULL: &str = "company/monorepo/auth-service";

/// `releasectl --server` of `served` as `identity`, with no GitOps repository and no actor.
fn via(world: &World, served: &Served, identity: &str) -> Cmd {
    Cmd::releasectl()
        .args(["--server", &format!("http://{}", served.addr)])
        .env("RELEASECTL_SERVER_TOKEN", token(identity))
        .env("RELEASECTL_NOW", &world.now)
}

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
}

#[test]
fn a_deploy_through_the_server_lands_a_commit_authored_by_the_token_identity() {
    let world = World::example();
    let release = world.main_release("cli-server-deploy");
    let served = Served::start(&world, &world.url, "");
    let out = via(&world, &served, CAROL)
        .args(["deploy", "dev", PROJECT, &release.tag])
        .run();
    out.assert_success().assert_stdout_contains("deployed: ");
    out.assert_stdout_contains("deploy auth-service in dev: release ");
    let head = world.remote.head();
    assert!(out.stdout_str().contains(&head), "{out}");
    assert_eq!(
        world
            .remote
            .git_ok(&["log", "-1", "--format=%ae", &head])
            .trim(),
        CAROL
    );
    assert!(
        world
            .remote
            .show_required(&pointer_path("dev", PROJECT))
            .contains(&release.commit)
    );
    // History and the release itself, read back through the server.
    let history = via(&world, &served, BOB)
        .args(["-o", "json", "history", "dev", FULL])
        .run();
    history.assert_success();
    assert_eq!(json(&history)[0]["author"], CAROL, "{history}");
    let local = world.ok(&["-o", "json", "release", "get", PROJECT, &release.tag]);
    let remote = via(&world, &served, BOB)
        .args(["-o", "json", "release", "get", FULL, &release.tag])
        .run();
    remote.assert_success();
    assert_eq!(json(&remote), json(&local));
    let local = world.ok(&["-o", "json", "release", "list", PROJECT]);
    let remote = via(&world, &served, BOB)
        .args(["-o", "json", "release", "list", FULL])
        .run();
    assert_eq!(json(&remote), json(&local), "{remote}");
}

#[test]
fn dry_run_status_and_a_refusal_print_the_same_json_as_the_local_path() {
    let world = World::example();
    let release = world.main_release("cli-server-same");
    let served = Served::start(&world, &world.url, "");
    // A dry run: nothing written either way, the same report.
    let args = [
        "-o",
        "json",
        "deploy",
        "dev",
        PROJECT,
        &release.tag,
        "--dry-run",
    ];
    let local = world.ok(&args);
    let remote = world.writes_nothing(|| via(&world, &served, CAROL).args(args).run());
    remote.assert_success();
    assert_eq!(json(&remote), json(&local));
    // The text the same too.
    let text = ["deploy", "dev", PROJECT, &release.tag, "--dry-run"];
    assert_eq!(
        via(&world, &served, CAROL).args(text).run().stdout_str(),
        world.ok(&text).stdout_str()
    );
    // A refusal by policy: exit 4 both ways, the same decisions, nothing written.
    let args = ["-o", "json", "deploy", PRODUCTION, PROJECT, &release.tag];
    let local = world.writes_nothing(|| world.run(&args));
    local.assert_exit(4);
    let remote = world.writes_nothing(|| via(&world, &served, CAROL).args(args).run());
    remote
        .assert_exit(4)
        .assert_stderr_contains("refused by policy");
    assert_eq!(json(&remote), json(&local));
    assert!(
        json(&remote)["items"][0]["decisions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["rule"] == "allowed_triggers" && d["pass"] == false),
        "{remote}"
    );
    // Status after a deploy through the server.
    via(&world, &served, CAROL)
        .args(["deploy", "dev", PROJECT, &release.tag])
        .run()
        .assert_success();
    let local = world.ok(&["-o", "json", "status", PROJECT, "--env", "dev"]);
    let remote = via(&world, &served, BOB)
        .args(["-o", "json", "status", FULL, "--env", "dev"])
        .run();
    remote.assert_success();
    assert_eq!(json(&remote), json(&local));
    assert_eq!(json(&remote)[0]["deployed_by"], CAROL, "{remote}");
    let text = via(&world, &served, BOB)
        .args(["status", FULL, "--env", "dev"])
        .run();
    assert_eq!(
        text.stdout_str(),
        world.ok(&["status", PROJECT, "--env", "dev"]).stdout_str()
    );
    // Every pointer of every environment, in one request: the same rows and the same table.
    let everything = via(&world, &served, BOB)
        .args(["-o", "json", "status"])
        .run();
    everything.assert_success();
    assert_eq!(
        json(&everything),
        json(&world.ok(&["-o", "json", "status"]))
    );
    assert!(
        json(&everything)
            .as_array()
            .is_some_and(|rows| !rows.is_empty()),
        "{everything}"
    );
    let table = via(&world, &served, BOB).args(["status"]).run();
    assert_eq!(table.stdout_str(), world.ok(&["status"]).stdout_str());
}

#[test]
fn a_bad_token_is_a_clear_authentication_error_that_never_shows_the_token() {
    let world = World::example();
    let release = world.main_release("cli-server-token");
    let served = Served::start(&world, &world.url, "");
    let secret = "wrong-token-very-secret-42";
    let out = world.writes_nothing(|| {
        Cmd::releasectl()
            .args(["--server", &format!("http://{}", served.addr)])
            .env("RELEASECTL_SERVER_TOKEN", secret)
            .args(["deploy", "dev", PROJECT, &release.tag])
            .run()
    });
    out.assert_exit(5)
        .assert_stderr_contains("refused the token")
        .assert_stderr_contains("RELEASECTL_SERVER_TOKEN")
        .assert_no_leak(secret);
    assert!(!served.log().contains(secret), "{}", served.log());
    // From a file: the same, and the file's token is not shown either.
    let dir = crate::support::temp_dir();
    let file = dir.path().join("token");
    std::fs::write(&file, format!("{secret}\n")).unwrap();
    let out = Cmd::releasectl()
        .args(["--server", &format!("http://{}", served.addr)])
        .arg("--server-token-file")
        .arg(&file)
        .args(["status", FULL, "--env", "dev"])
        .run();
    out.assert_exit(5).assert_no_leak(secret);
    // A server that is not there: a remote failure (5) naming it.
    let out = Cmd::releasectl()
        .args(["--server", "http://127.0.0.1:9"])
        .env("RELEASECTL_SERVER_TOKEN", secret)
        .args(["status", FULL, "--env", "dev"])
        .run();
    out.assert_exit(5)
        .assert_stderr_contains("127.0.0.1:9")
        .assert_no_leak(secret);
}

#[test]
fn an_actor_with_a_server_is_refused_as_a_usage_error() {
    let world = World::example();
    let served = Served::start(&world, &world.url, "");
    for actor in [
        via(&world, &served, CAROL).args(["--actor", ALICE]),
        via(&world, &served, CAROL).env("RELEASECTL_ACTOR", ALICE),
    ] {
        let out = world.writes_nothing(|| actor.args(["deploy", "dev", PROJECT, "1"]).run());
        out.assert_exit(2)
            .assert_stderr_contains("--actor")
            .assert_stderr_contains("identity of its token");
    }
}

#[test]
fn a_context_server_key_sends_the_cli_through_that_server() {
    let world = World::new(&plain_policy());
    let release = world.tagged(&crate::support::world::sha("cli-ctx"), "v1.0.0");
    let served = Served::start(&world, &world.url, "");
    let dir = crate::support::temp_dir();
    let config = dir.path().join("config.yaml");
    let ctx = |args: &[&str]| {
        Cmd::releasectl()
            .env("RELEASECTL_CONFIG", &config)
            .args(args)
            .run()
    };
    ctx(&[
        "config",
        "set-context",
        "api",
        "--server",
        &format!("http://{}", served.addr),
    ])
    .assert_success();
    assert!(
        std::fs::read_to_string(&config)
            .unwrap()
            .contains(&served.addr),
        "the context records the server"
    );
    // An approval through the context's server: the approver is the token's identity (alice
    // registered the release: four eyes refuse her, 403, exit 5).
    let approve = |who: &str| {
        Cmd::releasectl()
            .env("RELEASECTL_CONFIG", &config)
            .env("RELEASECTL_SERVER_TOKEN", token(who))
            .env("RELEASECTL_NOW", &world.now)
            .args(["-o", "json", "approve", PRODUCTION, FULL, &release.tag])
            .args(["--justification", "reviewed"])
            .run()
    };
    world
        .writes_nothing(|| approve(ALICE))
        .assert_exit(5)
        .assert_stderr_contains("self_approval");
    let out = Cmd::releasectl()
        .env("RELEASECTL_CONFIG", &config)
        .env("RELEASECTL_SERVER_TOKEN", token(BOB))
        .env("RELEASECTL_NOW", &world.now)
        .args(["-o", "json", "approve", PRODUCTION, FULL, &release.tag])
        .args(["--justification", "reviewed"])
        .run();
    out.assert_success();
    let answer = json(&out);
    let file = answer["file"].as_str().expect("an approvals file");
    assert!(world.remote.show_required(file).contains(BOB), "{answer}");
    assert_eq!(
        answer["commit"].as_str(),
        Some(world.remote.head().as_str()),
        "{answer}"
    );
    // Commands the API does not serve say so.
    let out = Cmd::releasectl()
        .env("RELEASECTL_CONFIG", &config)
        .env("RELEASECTL_SERVER_TOKEN", token(ALICE))
        .arg("summary")
        .run();
    out.assert_exit(2)
        .assert_stderr_contains("the API has no summary");
}

#[test]
fn release_create_pushes_the_image_itself_and_registers_it_through_the_server() {
    use crate::support::setup::{COMMIT_A, EPOCH, Setup, create_args, fixture_manifests};
    let setup = Setup::plain();
    let world = World::new("release_creators: [\"ci@*\"]\nenvironments:\n  dev: {}\n");
    let served = Served::start_cmd(
        setup
            .releasectl()
            .args(["--registry", &setup.host(), "--gitops", &world.url])
            .env("RELEASECTL_NOW", &world.now),
        "",
    );
    let create = |who: &str| {
        setup
            .releasectl()
            .args(["--registry", &setup.host(), "-o", "json"])
            .args(["--server", &format!("http://{}", served.addr)])
            .env("RELEASECTL_SERVER_TOKEN", token(who))
            .env("SOURCE_DATE_EPOCH", EPOCH)
            .args(create_args(
                "company/monorepo",
                PROJECT,
                COMMIT_A,
                &fixture_manifests(),
            ))
            .run()
    };
    // Pushed, but not a release creator: refused (403), nothing registered.
    world
        .writes_nothing(|| create(BOB))
        .assert_exit(5)
        .assert_stderr_contains("release_creators");
    let out = create(crate::support::world::CI);
    out.assert_success();
    let created = json(&out);
    assert_eq!(
        (created["number"].clone(), created["registered"].clone()),
        (Value::from(1), Value::from(true)),
        "{out}"
    );
    assert!(
        world
            .remote
            .last_message()
            .starts_with(&format!("Register release 1 of {FULL}")),
        "{}",
        world.remote.last_message()
    );
    assert_eq!(
        world.remote.git_ok(&["log", "-1", "--format=%ae"]).trim(),
        crate::support::world::CI
    );
}

#[test]
fn commands_that_do_not_go_through_the_server_ignore_it_and_its_actor_check() {
    let world = World::example();
    let release = world.main_release("cli-server-ignored");
    // No server listens there, and the world's --actor is given: `inspect` reads the
    // registry as always.
    let out = world
        .cmd()
        .env("RELEASECTL_SERVER", "http://127.0.0.1:9")
        .args(["inspect", "-o", "json"])
        .arg(format!(
            "{}/company/monorepo/auth-service:{}",
            world.registry(),
            release.commit
        ))
        .run();
    out.assert_success();
    assert_eq!(json(&out)["digest"], release.digest.as_str(), "{out}");
}

#[test]
fn rollback_promote_and_diff_through_the_server_match_the_local_path() {
    let world = World::example();
    let first = world.main_release("cli-server-first");
    let second = world.main_release("cli-server-second");
    let served = Served::start(&world, &world.url, "");
    for r in [&first, &second] {
        via(&world, &served, CAROL)
            .args(["deploy", "dev", PROJECT, &r.tag])
            .run()
            .assert_success();
    }
    let same = |local: &[&str], remote: &[&str]| {
        let l = world.writes_nothing(|| world.run(local));
        let r = world.writes_nothing(|| via(&world, &served, CAROL).args(remote).run());
        assert_eq!(r.code(), l.code(), "{l}\n{r}");
        assert_eq!(json(&r), json(&l), "{l}\n{r}");
    };
    same(
        &["-o", "json", "rollback", "dev", PROJECT, "--dry-run"],
        &["-o", "json", "rollback", "dev", FULL, "--dry-run"],
    );
    same(
        &[
            "-o",
            "json",
            "promote",
            PROJECT,
            "--from",
            "dev",
            "--to",
            "staging",
            "--dry-run",
        ],
        &[
            "-o",
            "json",
            "promote",
            FULL,
            "--from",
            "dev",
            "--to",
            "staging",
            "--dry-run",
        ],
    );
    same(
        &["-o", "json", "diff", "dev", PROJECT, &first.tag],
        &["-o", "json", "diff", "dev", FULL, &first.tag],
    );
    // The rollback itself, as carol.
    let out = via(&world, &served, CAROL)
        .args(["rollback", "dev", PROJECT])
        .run();
    out.assert_success().assert_stdout_contains("rolled back: ");
    assert!(
        world
            .remote
            .show_required(&pointer_path("dev", PROJECT))
            .contains(&first.commit)
    );
    // --wait and --auto are refused: the API does neither.
    for args in [
        &["deploy", "dev", PROJECT, &second.tag, "--wait"][..],
        &["deploy", "--auto", PROJECT, &second.tag][..],
    ] {
        world
            .writes_nothing(|| via(&world, &served, CAROL).args(args).run())
            .assert_exit(2);
    }
}

#[test]
fn a_release_id_with_url_characters_names_that_id_through_the_server_not_another_release() {
    let world = World::example();
    let release = world.main_release("cli-server-odd-id");
    let served = Served::start(&world, &world.url, "");
    // `?`, `#` and `%` would end or change the path: the id must reach the server whole, and
    // no such release exists, as the local path says too.
    for odd in [
        format!("{}?x", release.tag),
        format!("{}#x", release.tag),
        format!("{}%3F", release.tag),
    ] {
        let local = world.run(&["release", "get", PROJECT, &odd]);
        local.assert_exit(2);
        let remote = via(&world, &served, BOB)
            .args(["-o", "json", "release", "get", FULL, &odd])
            .run();
        remote.assert_exit(2);
        let shown = remote.stderr_str();
        assert!(shown.contains("no release"), "{odd}: {remote}");
    }
}
