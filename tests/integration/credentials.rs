//! Credentials never appear in any output (docs/design.md §5 rule 1): a canary password sits in
//! the docker config, and every failing command — wrong password, tampered image, missing
//! image — is run quiet and with `RELEASECTL_LOG=debug`, and neither stdout nor stderr may
//! hold the canary, its base64 form, or the `Authorization` value built from it.

use crate::support::setup::{
    COMMIT_A, IMAGE_PATH, RESOURCES_MEDIA_TYPE, Setup, assert_fails, fixture_create_args,
    fixture_manifests, layer,
};
use crate::support::{self, Cmd, DockerConfig, Mode, Output, Registry};

const USER: &str = "alice";
const CANARY: &str = "canary-Pa55-XYZ";

/// Every form the canary could leak in.
fn leak_forms() -> Vec<String> {
    vec![
        CANARY.to_owned(),
        support::base64(CANARY.as_bytes()),
        support::base64(format!("{USER}:{CANARY}").as_bytes()),
        // A prefix survives truncation in a message.
        CANARY[..10].to_owned(),
    ]
}

#[track_caller]
fn assert_no_leaks(out: &Output) {
    for form in leak_forms() {
        out.assert_no_leak(&form);
    }
}

/// Runs `cmd` quiet and with debug logging; both must fail with `code` and leak nothing.
#[track_caller]
fn run_both_ways(cmd: &Cmd, code: i32, needles: &[&str]) {
    for level in [None, Some("debug")] {
        let cmd = match level {
            Some(l) => cmd.clone().env("RELEASECTL_LOG", l),
            None => cmd.clone(),
        };
        let out = cmd.run();
        assert_fails(&out, code, needles);
        assert_no_leaks(&out);
    }
}

#[test]
fn wrong_password_fails_with_exit_5_and_never_prints_the_password() {
    // The registry knows another password; the docker config holds the canary.
    let registry = Registry::start(Mode::basic(USER, "the-real-one"));
    let host = registry.host();
    let configs = [
        ("auths", DockerConfig::new().auth(&host, USER, CANARY)),
        (
            "credHelpers",
            DockerConfig::new().cred_helper(&host, "testhelper", USER, CANARY),
        ),
        (
            "credsStore",
            DockerConfig::new().creds_store("teststore").helper_knows(
                "teststore",
                &host,
                USER,
                CANARY,
            ),
        ),
    ];
    let image = format!("{host}/{IMAGE_PATH}:{COMMIT_A}");
    for (how, config) in &configs {
        let base = Cmd::releasectl()
            .docker_config(config)
            .args(["--insecure-registry", &host]);
        // Reading: verify, inspect, copy.
        for args in [
            vec!["verify".to_owned(), image.clone()],
            vec![
                "inspect".to_owned(),
                "-o".into(),
                "json".into(),
                image.clone(),
            ],
            vec![
                "copy".to_owned(),
                image.clone(),
                format!("{host}/company/copies/auth-service:{COMMIT_A}"),
            ],
        ] {
            run_both_ways(
                &base.clone().args(&args),
                5,
                &["authentication failed", &host],
            );
        }
        // Writing: create.
        let create = base
            .clone()
            .args(["--registry", &host])
            .args(fixture_create_args())
            .env("SOURCE_DATE_EPOCH", "1700000000");
        run_both_ways(&create, 5, &[&host]);
        assert!(
            !registry
                .storage_dir()
                .join("docker/registry/v2/repositories")
                .exists(),
            "{how}: a create with the wrong password pushed something"
        );
    }
}

#[test]
fn tampered_and_missing_images_fail_without_printing_the_password() {
    // Here the canary is the right password: the commands get in, then fail.
    let setup = Setup::start(Mode::basic(USER, CANARY));
    let created = setup.create(COMMIT_A, &fixture_manifests());
    assert_no_leaks(&created.output);
    let missing = setup.image("company/monorepo/nothing-here", COMMIT_A);
    run_both_ways(
        &setup.releasectl().args(["verify", &missing]),
        5,
        &["not found"],
    );

    // A verify that succeeds logs nothing secret either.
    for level in ["info", "debug"] {
        let out = setup
            .releasectl()
            .env("RELEASECTL_LOG", level)
            .args(["verify", created.tagged()])
            .run();
        out.assert_success();
        assert_no_leaks(&out);
    }

    let manifest: serde_json::Value =
        serde_json::from_slice(&setup.get_manifest(IMAGE_PATH, &created.digest)).unwrap();
    let resources = layer(&manifest, RESOURCES_MEDIA_TYPE)["digest"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = setup.registry.blob_path(&resources);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[10] ^= 0xff;
    std::fs::write(&path, &bytes).unwrap();
    run_both_ways(
        &setup.releasectl().args(["verify", created.tagged()]),
        3,
        &["digest mismatch", &resources],
    );
}

#[test]
fn credentials_from_the_environment_never_appear_in_output() {
    let registry = Registry::start(Mode::basic(USER, "the-real-one"));
    let host = registry.host();
    let cmd = Cmd::releasectl()
        .args(["--insecure-registry", &host, "verify"])
        .arg(format!("{host}/{IMAGE_PATH}:{COMMIT_A}"))
        .env("RELEASECTL_REGISTRY_USERNAME", USER)
        .env("RELEASECTL_REGISTRY_PASSWORD", CANARY);
    run_both_ways(&cmd, 5, &["authentication failed"]);
}
