//! Remote failures exit 5 (docs/design.md §10): a registry that is down, an image that is not
//! there, credentials that are wrong or missing, a certificate nobody trusts. Each prints
//! nothing on stdout and one message naming the host or image.

use std::time::{Duration, Instant};

use crate::support::setup::{
    COMMIT_A, IMAGE_PATH, Setup, assert_fails, fixture_create_args, fixture_manifests,
};
use crate::support::{Cmd, DockerConfig, Mode, Registry};

#[test]
fn registry_that_is_down_exits_5_naming_the_host() {
    let mut registry = Registry::start(Mode::Plain);
    let host = registry.host();
    registry.stop();
    let image = format!("{host}/{IMAGE_PATH}:{COMMIT_A}");
    let started = Instant::now();
    let cmd = Cmd::releasectl().args(["--insecure-registry", &host, "--timeout", "20s"]);
    let out = cmd.clone().args(["verify", &image]).run();
    assert_fails(&out, 5, &[&host]);
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "a refused connection took {:?}\n{out}",
        started.elapsed()
    );
    let out = cmd
        .args(["--registry", &host])
        .args(fixture_create_args())
        .run();
    assert_fails(&out, 5, &[&host]);
}

#[test]
fn missing_image_exits_5_saying_not_found() {
    let setup = Setup::plain();
    let image = setup.image(IMAGE_PATH, COMMIT_A);
    let out = setup.releasectl().args(["verify", &image]).run();
    assert_fails(&out, 5, &["not found", &image]);
    let out = setup.releasectl().args(["inspect", &image]).run();
    assert_fails(&out, 5, &["not found"]);
    // A missing digest in an existing repository, too.
    let created = setup.create(COMMIT_A, &fixture_manifests());
    let absent = format!("{}@sha256:{}", created.tagged(), "0".repeat(64));
    let out = setup.releasectl().args(["verify", &absent]).run();
    assert_fails(&out, 5, &["not found"]);
}

#[test]
fn missing_layout_exits_5() {
    let dir = crate::support::temp_dir();
    let target = format!("oci:{}:{COMMIT_A}", dir.path().join("nothing").display());
    let out = Cmd::releasectl().args(["verify", &target]).run();
    assert_fails(&out, 5, &["not found"]);
}

/// Runs `releasectl --insecure-registry HOST ARGS` (at `SOURCE_DATE_EPOCH`) against a
/// registry that wants alice's basic auth, with the docker config `config(HOST)`, and asserts
/// exit 5 saying authentication failed at HOST.
fn assert_auth_fails(config: fn(&str) -> DockerConfig, args: fn(&str) -> Vec<String>) {
    let registry = Registry::start(Mode::basic("alice", "right"));
    let host = registry.host();
    let out = Cmd::releasectl()
        .docker_config(&config(&host))
        .args(["--insecure-registry", &host])
        .args(args(&host))
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .run();
    assert_fails(&out, 5, &["authentication failed", &host]);
}

fn wrong_password(host: &str) -> DockerConfig {
    DockerConfig::new().auth(host, "alice", "wrong")
}

fn verify_fixture(host: &str) -> Vec<String> {
    vec!["verify".into(), format!("{host}/{IMAGE_PATH}:{COMMIT_A}")]
}

#[test]
fn wrong_password_exits_5_saying_authentication_failed() {
    assert_auth_fails(wrong_password, verify_fixture);
}

/// A 401 on a push (the blob `HEAD` or the upload) must read as an authentication failure,
/// not as an unreachable registry.
#[test]
fn create_with_a_wrong_password_exits_5_saying_authentication_failed() {
    assert_auth_fails(wrong_password, |host| {
        let mut args = vec!["--registry".to_owned(), host.to_owned()];
        args.extend(fixture_create_args());
        args
    });
}

#[test]
fn no_credentials_for_a_basic_auth_registry_exits_5() {
    assert_auth_fails(|_| DockerConfig::new(), verify_fixture);
}

#[test]
fn tls_registry_without_the_ca_file_exits_5_naming_the_certificate_problem() {
    let setup = Setup::start(Mode::Tls);
    let created = setup.create(COMMIT_A, &fixture_manifests());
    let out = Cmd::releasectl()
        .args(["--timeout", "20s", "verify", created.tagged()])
        .run();
    assert_fails(&out, 5, &[&setup.host(), "certificate"]);
}

/// An untrusted certificate will not become trusted on a second try: retrying it only burns
/// the deadline Argo CD gives the plugin (docs/design.md §5 rule 6 retries 429, 5xx and resets).
#[test]
fn untrusted_certificate_fails_at_once_without_retries() {
    let setup = Setup::start(Mode::Tls);
    let out = Cmd::releasectl()
        .args(["--timeout", "20s", "verify"])
        .arg(setup.image(IMAGE_PATH, COMMIT_A))
        .run();
    assert_fails(&out, 5, &["certificate"]);
    if out.stderr_str().contains("attempts") {
        out.fail("a certificate error was retried");
    }
}
