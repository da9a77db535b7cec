//! `releasectl serve --tls-cert PEM --tls-key PEM`: the API over HTTPS with a certificate made
//! by `openssl` here (a test CA and a leaf for 127.0.0.1), reached by `curl --cacert` and
//! `openssl s_client`; a client that does not trust the CA is refused by its own check; the
//! dashboard's session cookie is `Secure`; bad files stop the server naming them.

use std::path::Path;

use serde_json::{Value, json};

use crate::support::certs::make_tls;
use crate::support::cmd::{Cmd, Output};
use crate::support::http::https_get;
use crate::support::serve::{Served, token};
use crate::support::setup::PROJECT;
use crate::support::world::{ALICE, World};

fn curl(ca: Option<&Path>, args: &[&str]) -> Output {
    let mut cmd = Cmd::new("curl").args(["--silent", "--show-error", "--max-time", "60"]);
    if let Some(ca) = ca {
        cmd = cmd.arg("--cacert").arg(ca);
    }
    cmd.args(args).run()
}

#[test]
fn serve_answers_the_api_over_https_with_the_certificate_it_was_given() {
    crate::support::require_command("curl", "curl");
    let world = World::example();
    let release = world.main_release("tls");
    let dir = crate::support::temp_dir();
    let tls = make_tls(dir.path());
    let served = Served::start_cmd(
        world
            .cmd_via(&world.url, &world.now)
            .env("RELEASECTL_TLS_CERT", &tls.cert_pem)
            .env("RELEASECTL_TLS_KEY", &tls.key_pem),
        "",
    );
    let base = format!("https://{}", served.addr);
    // openssl, checking the certificate for IP 127.0.0.1 against the CA.
    let health = https_get(&served.addr, "/healthz", &[], &tls.ca_pem);
    assert_eq!(health.status, 200, "{}", health.body_str());
    // curl: a read and a write, as alice.
    let bearer = format!("Authorization: Bearer {}", token(ALICE));
    let out = curl(
        Some(&tls.ca_pem),
        &[
            "--fail-with-body",
            "-H",
            &bearer,
            &format!("{base}/v1/releases/company/monorepo/{PROJECT}"),
        ],
    );
    out.assert_success();
    let list: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(list.to_string().contains(&release.commit), "{list}");
    let body = json!({"environment": "dev", "project": PROJECT, "release_id": release.tag});
    let out = curl(
        Some(&tls.ca_pem),
        &[
            "--fail-with-body",
            "-H",
            &bearer,
            "-H",
            "Content-Type: application/json",
            "--data",
            &body.to_string(),
            &format!("{base}/v1/deployments"),
        ],
    );
    out.assert_success();
    let answer: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(answer["result"], "deployed", "{answer}");
    assert_eq!(
        world.remote.git_ok(&["log", "-1", "--format=%ae"]).trim(),
        ALICE
    );
    // Without the CA, curl refuses the server's certificate.
    let out = curl(None, &[&format!("{base}/healthz")]);
    assert!(!out.status.success(), "curl trusted an unknown CA");
    // Plain HTTP to the HTTPS port gets no API answer.
    let out = curl(None, &[&format!("http://{}/healthz", served.addr)]);
    assert!(!String::from_utf8_lossy(&out.stdout).contains("\"ok\""));
    // Over HTTPS the dashboard's session cookie is Secure, whatever the client says.
    let out = curl(
        Some(&tls.ca_pem),
        &[
            "--include",
            "-H",
            "X-Forwarded-Proto: http",
            "--data-urlencode",
            &format!("token={}", token(ALICE)),
            &format!("{base}/ui/login"),
        ],
    );
    out.assert_success();
    let head = String::from_utf8_lossy(&out.stdout).to_lowercase();
    let cookie = head
        .lines()
        .find(|l| l.starts_with("set-cookie: releasectl_session="))
        .unwrap_or_else(|| panic!("no session cookie: {head}"));
    assert!(cookie.contains("; secure"), "{cookie}");
    assert!(!served.log().contains(token(ALICE)));
}

#[test]
fn serve_refuses_to_start_with_a_key_that_is_not_the_certificates() {
    let world = World::example();
    let dir = crate::support::temp_dir();
    let tls = make_tls(&dir.path().join("a"));
    let other = make_tls(&dir.path().join("b"));
    let out = world
        .cmd_via(&world.url, &world.now)
        .args(["serve", "--listen", "127.0.0.1:0", "--tls-cert"])
        .arg(&tls.cert_pem)
        .arg("--tls-key")
        .arg(&other.key_pem)
        .run();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--tls-cert") && err.contains(&tls.cert_pem.display().to_string()),
        "{err}"
    );
    // --tls-cert alone is a usage error.
    let out = world
        .cmd_via(&world.url, &world.now)
        .args(["serve", "--listen", "127.0.0.1:0", "--tls-cert"])
        .arg(&tls.cert_pem)
        .run();
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
