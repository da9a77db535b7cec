//! Pushing to a registry that wants a bearer token from a separate token service (the flow of
//! Docker Hub, GHCR, Harbor; Debian's registry only does Basic): the challenge is answered with
//! a push-scoped token bought with the credentials, the upload goes where `Location` says, and
//! no credential or token shows in the output. Both servers are in-test fakes, so every request
//! can be inspected.

use std::collections::BTreeSet;

use serde_json::json;

use crate::support::setup::{COMMIT_A, IMAGE_PATH, MANIFEST_MEDIA_TYPE, fixture_create_args};
use crate::support::{self, Action, Cmd, FakeServer, Output, Request};

const USER: &str = "pusher";
const PASSWORD: &str = "pw-canary-81f3";
const TOKEN: &str = "push-token-c4d1";

/// A token service handing out [`TOKEN`] to anyone, and recording what it was asked.
fn token_service() -> FakeServer {
    FakeServer::start(|req| {
        if req.path_only() == "/token" {
            Action::json(200, &json!({ "access_token": TOKEN, "expires_in": 300 }))
        } else {
            Action::status(404)
        }
    })
}

/// How the fake registry departs from the plain one.
#[derive(Clone, Default)]
struct Quirks {
    /// Upload sessions live on this host (an absolute `Location`), not on the registry.
    upload_host: Option<String>,
    /// The `Docker-Content-Digest` answered to a manifest PUT, instead of the right one.
    manifest_digest: Option<String>,
}

/// A registry that refuses every request without the bearer token, and otherwise accepts
/// uploads: blobs are never present, sessions start at a relative `Location` with an upload
/// state in its query, and each PUT is answered with the digest it named.
fn bearer_registry(realm: &str, quirks: Quirks) -> FakeServer {
    let expected = format!("Bearer {TOKEN}");
    let challenge = format!("Bearer realm=\"{realm}\",service=\"fake-registry\"");
    FakeServer::start(move |req| {
        if req.header("authorization") != Some(expected.as_str()) {
            return Action::unauthorized(&challenge);
        }
        serve_upload(req, &quirks)
    })
}

/// The registry side of an upload, for a request that was allowed.
fn serve_upload(req: &Request, quirks: &Quirks) -> Action {
    let path = req.path_only();
    match req.method.as_str() {
        "HEAD" => Action::status(404),
        "POST" if path.ends_with("/blobs/uploads/") => {
            let location = match &quirks.upload_host {
                Some(host) => format!("http://{host}/upload/session-1?_state=s%3D1"),
                None => format!("{path}session-1?_state=s%3D1"),
            };
            Action::respond(202, &[("Location", &location)], Vec::new())
        }
        "PUT" if path.contains("/manifests/") => match &quirks.manifest_digest {
            Some(digest) => Action::respond(201, &[("Docker-Content-Digest", digest)], Vec::new()),
            None => stored(req),
        },
        "PUT" => stored(req),
        _ => Action::status(405),
    }
}

/// `201 Created` naming the digest the PUT asked for (a blob's `?digest=`, a manifest's own).
fn stored(req: &Request) -> Action {
    let digest = crate::support::setup::sha256(&req.body);
    // A blob PUT names its digest; it must be the digest of what it carries.
    if query_digest(&req.path).is_some_and(|named| named.replace("%3A", ":") != digest) {
        return Action::status(400);
    }
    Action::respond(201, &[("Docker-Content-Digest", &digest)], Vec::new())
}

fn query_digest(path: &str) -> Option<String> {
    let query = path.split_once('?')?.1;
    query
        .split('&')
        .find_map(|pair| pair.strip_prefix("digest="))
        .map(str::to_owned)
}

/// `release create` of the fixture to `host`, with the credentials in the environment.
fn create(host: &str) -> Output {
    Cmd::releasectl()
        .args(["--insecure-registry", host, "--registry", host])
        .args(fixture_create_args())
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .env("RELEASECTL_REGISTRY", host)
        .env("RELEASECTL_REGISTRY_USERNAME", USER)
        .env("RELEASECTL_REGISTRY_PASSWORD", PASSWORD)
        .env("RELEASECTL_LOG", "debug")
        .run()
}

#[track_caller]
fn assert_no_secret(out: &Output) {
    out.assert_no_leak(PASSWORD)
        .assert_no_leak(TOKEN)
        .assert_no_leak(&support::base64(format!("{USER}:{PASSWORD}").as_bytes()));
}

#[test]
fn a_push_answers_the_bearer_challenge_with_one_push_scoped_token_bought_with_the_credentials() {
    let tokens = token_service();
    let registry = bearer_registry(&tokens.url("/token"), Quirks::default());
    let out = create(&registry.host());
    out.assert_success();
    assert_no_secret(&out);

    let asked = tokens.requests_to("/token");
    assert_eq!(asked.len(), 1, "one token for the whole push\n{out}");
    let query = &asked[0].path;
    assert!(
        query.contains("service=fake-registry")
            && query.contains(&format!(
                "scope=repository%3A{}%3Apull%2Cpush",
                IMAGE_PATH.replace('/', "%2F")
            )),
        "token request without the service or the push scope: {query}"
    );
    assert_eq!(
        asked[0].header("authorization"),
        Some(support::basic_auth(USER, PASSWORD).as_str()),
        "the token was not bought with the credentials"
    );

    let requests = registry.requests();
    let allowed: Vec<&Request> = requests
        .iter()
        .filter(|r| r.header("authorization") == Some(&format!("Bearer {TOKEN}")))
        .collect();
    let methods: BTreeSet<&str> = allowed.iter().map(|r| r.method.as_str()).collect();
    assert_eq!(
        methods,
        BTreeSet::from(["HEAD", "POST", "PUT"]),
        "every step of the push should have carried the token: {requests:?}"
    );
    let blob_puts: Vec<&&Request> = allowed
        .iter()
        .filter(|r| r.method == "PUT" && r.path_only().ends_with("/blobs/uploads/session-1"))
        .collect();
    assert!(!blob_puts.is_empty(), "no blob was uploaded: {requests:?}");
    for put in &blob_puts {
        assert!(
            put.path.contains("_state=s%3D1&digest=sha256%3A"),
            "the upload state was lost or the digest not added: {}",
            put.path
        );
    }
    let manifest = allowed
        .iter()
        .find(|r| {
            r.method == "PUT" && r.path_only() == format!("/v2/{IMAGE_PATH}/manifests/{COMMIT_A}")
        })
        .unwrap_or_else(|| panic!("no manifest PUT under the commit tag: {requests:?}"));
    assert_eq!(manifest.header("content-type"), Some(MANIFEST_MEDIA_TYPE));
    registry.assert_handler_ok();
}

#[test]
fn an_upload_location_on_another_host_gets_the_bytes_but_no_credentials() {
    let tokens = token_service();
    let storage = FakeServer::start(|req| {
        if req.method == "PUT" {
            stored(req)
        } else {
            Action::status(405)
        }
    });
    let quirks = Quirks {
        upload_host: Some(storage.host()),
        ..Quirks::default()
    };
    let registry = bearer_registry(&tokens.url("/token"), quirks);
    let out = create(&registry.host());
    out.assert_success();
    assert_no_secret(&out);
    let puts = storage.requests();
    assert!(
        !puts.is_empty(),
        "nothing was uploaded to the Location\n{out}"
    );
    for put in &puts {
        assert!(
            !put.has_header("authorization"),
            "registry credentials went to another host: {put:?}"
        );
        assert!(
            put.path
                .starts_with("/upload/session-1?_state=s%3D1&digest=")
        );
    }
}

#[test]
fn a_registry_that_answers_another_manifest_digest_fails_the_push_naming_both() {
    let tokens = token_service();
    let wrong = format!("sha256:{}", "0".repeat(64));
    let quirks = Quirks {
        manifest_digest: Some(wrong.clone()),
        ..Quirks::default()
    };
    let registry = bearer_registry(&tokens.url("/token"), quirks);
    let out = create(&registry.host());
    out.assert_exit(3)
        .assert_stdout_empty()
        .assert_stderr_contains("digest mismatch")
        .assert_stderr_contains(&wrong);
    assert_no_secret(&out);
}
