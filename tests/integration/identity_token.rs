//! A docker config `identitytoken` (what `az acr login` writes for ACR) is an OAuth2 refresh
//! token: `generate` exchanges it at the registry's token service (`POST realm`, form
//! `grant_type=refresh_token&service=…&scope=…&refresh_token=…`) for an access token, and
//! never sends it to the registry itself. Both servers are in-test fakes.

use serde_json::json;

use crate::generate_faults::{app_dir, generate, image};
use crate::support::{Action, DockerConfig, FakeServer};

const REFRESH: &str = "refresh-canary-5e1d";
const ACCESS: &str = "access-token-77a2";

/// A token service that sells [`ACCESS`] only for the refresh token, by the OAuth2 POST.
fn token_service() -> FakeServer {
    FakeServer::start(|req| {
        let form = String::from_utf8_lossy(&req.body).into_owned();
        let fields: Vec<&str> = form.split('&').collect();
        let ok = req.method == "POST"
            && req.path_only() == "/oauth2/token"
            && fields.contains(&"grant_type=refresh_token")
            && fields.contains(&format!("refresh_token={REFRESH}").as_str())
            && fields.contains(&"service=fake-acr")
            && fields.iter().any(|f| f.starts_with("scope=repository"));
        if ok {
            Action::json(200, &json!({ "access_token": ACCESS }))
        } else {
            Action::status(401)
        }
    })
}

/// A registry serving the test image to the access token only.
fn bearer_registry(realm: &str) -> FakeServer {
    let challenge = format!("Bearer realm=\"{realm}\",service=\"fake-acr\"");
    let expected = format!("Bearer {ACCESS}");
    FakeServer::start(move |req| {
        if req.header("authorization") == Some(expected.as_str()) {
            image().serve(req)
        } else {
            Action::unauthorized(&challenge)
        }
    })
}

#[test]
fn generate_exchanges_an_identity_token_for_an_access_token_and_pulls_with_it() {
    let tokens = token_service();
    let registry = bearer_registry(&tokens.url("/oauth2/token"));
    let host = registry.host();
    let docker = DockerConfig::new().auth_entry(
        &host,
        json!({
            "auth": "MDAwMDAwMDAtMDAwMC0wMDAwLTAwMDAtMDAwMDAwMDAwMDAwOg==",
            "identitytoken": REFRESH
        }),
    );
    let app = app_dir(&host, &image().digest);
    let out = generate(app.path(), &host).docker_config(&docker).run();
    out.assert_success();
    assert_eq!(out.stdout, image().expected, "{out}");
    out.assert_no_leak(REFRESH);
    out.assert_no_leak(ACCESS);
    let sent_refresh = registry.requests();
    assert!(
        sent_refresh
            .iter()
            .all(|r| !r.header("authorization").unwrap_or("").contains(REFRESH)),
        "the refresh token reached the registry: {sent_refresh:?}"
    );
    assert!(
        tokens.requests().iter().any(|r| r.method == "POST"),
        "no token exchange happened"
    );
}
