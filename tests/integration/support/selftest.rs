//! The harness's own smoke tests: each real component starts and behaves as the product
//! tests assume.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::support::{
    self, Action, Cmd, DockerConfig, FakeServer, Mode, Registry, Response, fake_server, python,
    skopeo,
};
use serde_json::{Value, json};

// ---- Cmd ------------------------------------------------------------------------------------

#[test]
fn cmd_captures_stdout_stderr_and_exit_code() {
    let out = Cmd::new("/bin/sh")
        .args(["-c", "echo out; echo err >&2; exit 3"])
        .run();
    out.assert_exit(3).assert_failure();
    assert_eq!(out.stdout_str(), "out\n");
    assert_eq!(out.stderr_str(), "err\n");

    Cmd::new("/bin/echo")
        .args(["hello", "world"])
        .run()
        .assert_success()
        .assert_stdout_contains("hello world");
}

#[test]
fn cmd_passes_stdin_and_cwd() {
    let dir = support::temp_dir();
    let out = Cmd::new("/bin/sh")
        .args(["-c", "pwd; cat"])
        .current_dir(dir.path())
        .stdin("from stdin")
        .run();
    out.assert_success();
    let canonical = dir.path().canonicalize().unwrap();
    assert_eq!(
        out.stdout_str(),
        format!("{}\nfrom stdin", canonical.display())
    );
}

#[test]
fn cmd_kills_a_hung_child_and_its_children_at_the_timeout() {
    let started = Instant::now();
    // The grandchild `sleep` holds stdout open: the harness must not wait for it either.
    let out = Cmd::new("/bin/sh")
        .args(["-c", "sleep 30 & sleep 30"])
        .timeout(Duration::from_millis(300))
        .run();
    assert!(out.timed_out, "{out}");
    assert_eq!(out.code(), None);
    assert!(started.elapsed() < Duration::from_secs(5), "{out}");
    assert!(format!("{out}").contains("timeout"));
}

#[test]
fn cmd_failed_assertion_reports_command_cwd_status_and_output() {
    let out = Cmd::new("/bin/sh")
        .args(["-c", "echo visible-out; echo visible-err >&2; exit 4"])
        .current_dir("/tmp")
        .run();
    let panic = std::panic::catch_unwind(|| {
        out.assert_success();
    })
    .expect_err("assert_success must panic on exit 4");
    let msg = panic.downcast_ref::<String>().unwrap();
    for needle in [
        "command: /bin/sh -c 'echo visible-out; echo visible-err >&2; exit 4'",
        "cwd: /tmp",
        "exit status: 4",
        "visible-out",
        "visible-err",
    ] {
        assert!(msg.contains(needle), "{needle:?} missing from:\n{msg}");
    }
}

#[test]
fn cmd_sets_env_and_prepends_path() {
    let dir = support::temp_dir();
    let out = Cmd::new("/bin/sh")
        .args([
            "-c",
            "echo \"$RELEASECTL_REGISTRY|$DOCKER_CONFIG|${PATH%%:*}\"",
        ])
        .env("RELEASECTL_REGISTRY", "oci:/x")
        .env("DOCKER_CONFIG", "/dc")
        .path_prepend(dir.path())
        .run();
    out.assert_success();
    assert_eq!(
        out.stdout_str().trim(),
        format!("oci:/x|/dc|{}", dir.path().display())
    );
}

/// A test cannot put variables into its own process to see them scrubbed (`set_var` is unsafe
/// in edition 2024, and the crate forbids unsafe), so this checks the `std::process::Command`
/// built from a given inherited environment: removals for the leaky names, the explicit value
/// for what the test set, nothing for the rest.
#[test]
fn cmd_removes_inherited_releasectl_and_docker_config_variables() {
    let inherited = [
        "RELEASECTL_LEAK",
        "DOCKER_CONFIG",
        "RELEASECTL_REGISTRY",
        "HOME",
    ]
    .map(std::ffi::OsString::from);
    let command = Cmd::new("/usr/bin/env")
        .env("RELEASECTL_REGISTRY", "oci:/explicit")
        .to_command(inherited);
    let mut envs: Vec<(String, Option<String>)> = command
        .get_envs()
        .map(|(k, v)| {
            (
                k.to_string_lossy().into_owned(),
                v.map(|v| v.to_string_lossy().into_owned()),
            )
        })
        .collect();
    envs.sort();
    assert_eq!(
        envs,
        [
            ("DOCKER_CONFIG".to_owned(), None),
            (
                "RELEASECTL_CONFIG".to_owned(),
                Some("/nonexistent/releasectl-tests/config.yaml".to_owned())
            ),
            ("RELEASECTL_LEAK".to_owned(), None),
            (
                "RELEASECTL_REGISTRY".to_owned(),
                Some("oci:/explicit".to_owned())
            ),
        ]
    );
}

#[test]
fn product_binary_path_is_available() {
    let bin = env!("CARGO_BIN_EXE_releasectl");
    assert!(std::path::Path::new(bin).is_file(), "{bin}");
    // No subcommand is a usage error (exit 2); `--version` is the harmless way to run it.
    Cmd::releasectl()
        .arg("--version")
        .run()
        .assert_success()
        .assert_stdout_contains("releasectl");
}

// ---- Registry -------------------------------------------------------------------------------

#[test]
fn plain_registry_answers_v2() {
    let registry = Registry::start(Mode::Plain);
    let resp = registry.get("/v2/", false);
    assert_eq!(resp.status, 200, "{}", registry.log());
    assert_eq!(
        resp.header("Docker-Distribution-Api-Version"),
        Some("registry/2.0")
    );
    assert!(registry.host().starts_with("127.0.0.1:"));
    assert!(registry.storage_dir().is_dir());
}

#[test]
fn basic_auth_registry_answers_401_without_credentials_and_200_with() {
    let registry = Registry::start(Mode::basic("alice", "s3cret"));
    let anonymous = registry.get("/v2/", false);
    assert_eq!(anonymous.status, 401);
    assert_eq!(
        anonymous.header("WWW-Authenticate"),
        Some("Basic realm=\"releasectl-test\"")
    );
    assert_eq!(registry.get("/v2/", true).status, 200);
    let wrong = support::http_get(
        &registry.host(),
        "/v2/",
        &[("Authorization", &support::basic_auth("alice", "wrong"))],
    )
    .unwrap();
    assert_eq!(wrong.status, 401);
}

#[test]
fn tls_registry_answers_v2_with_a_leaf_certificate_for_127_0_0_1() {
    let registry = Registry::start(Mode::Tls);
    assert!(registry.base_url().starts_with("https://"));
    assert_eq!(registry.get("/v2/", false).status, 200);
    // The leaf must not be a CA (rustls: CaUsedAsEndEntity) and must name IP 127.0.0.1.
    let text = Cmd::new("openssl")
        .args(["x509", "-noout", "-text", "-in"])
        .arg(&registry.tls_files().cert_pem)
        .run();
    text.assert_success()
        .assert_stdout_contains("CA:FALSE")
        .assert_stdout_contains("IP Address:127.0.0.1");
    // Plain HTTP to the TLS port is refused by the server, not hung.
    let plain = support::http_get(&registry.host(), "/v2/", &[]).unwrap();
    assert_eq!(plain.status, 400);
}

#[test]
fn tls_basic_registry_requires_credentials() {
    let registry = Registry::start(Mode::tls_basic("bob", "pw"));
    assert_eq!(registry.get("/v2/", false).status, 401);
    assert_eq!(registry.get("/v2/", true).status, 200);
}

#[test]
fn registry_stop_ends_the_server_and_blob_path_follows_distribution_layout() {
    let mut registry = Registry::start(Mode::Plain);
    let hex = "ab".repeat(32);
    assert_eq!(
        registry.blob_path(&format!("sha256:{hex}")),
        registry
            .storage_dir()
            .join(format!("docker/registry/v2/blobs/sha256/ab/{hex}/data"))
    );
    let host = registry.host();
    registry.stop();
    assert!(
        TcpStream::connect(&host).is_err(),
        "still listening on {host}"
    );
}

#[test]
fn registries_started_in_parallel_get_distinct_ports() {
    let handles: Vec<_> = (0..4)
        .map(|_| std::thread::spawn(|| Registry::start(Mode::Plain)))
        .collect();
    let registries: Vec<Registry> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let mut ports: Vec<u16> = registries.iter().map(Registry::port).collect();
    ports.sort_unstable();
    ports.dedup();
    assert_eq!(ports.len(), 4);
}

// ---- skopeo ---------------------------------------------------------------------------------

#[test]
fn skopeo_inspect_of_a_missing_image_fails_with_manifest_unknown() {
    for mode in [Mode::Plain, Mode::basic("u", "p"), Mode::Tls] {
        let registry = Registry::start(mode);
        let mut args = vec!["inspect".to_owned(), "--raw".to_owned()];
        args.extend(registry.skopeo_flags());
        args.push(format!("docker://{}/company/missing:v1", registry.host()));
        let out = skopeo(&args);
        out.assert_failure().assert_stdout_empty();
        let err = out.stderr_str();
        assert!(
            err.contains("manifest unknown") || err.contains("name unknown"),
            "{out}"
        );
    }
}

#[test]
fn skopeo_without_credentials_is_refused_by_basic_registry() {
    let registry = Registry::start(Mode::basic("u", "p"));
    let out = skopeo([
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{}/company/x:v1", registry.host()),
    ]);
    out.assert_failure();
    assert!(
        out.stderr_str().contains("authentication required")
            || out.stderr_str().contains("unauthorized"),
        "{out}"
    );
}

// ---- Python: oras and kubernetes-validate ---------------------------------------------------

/// Pushes one file with a custom media type through `PyPI`'s oras, reads it back with skopeo,
/// and finds the blob where `blob_path` says it is.
#[test]
fn oras_push_lands_in_registry_storage_and_skopeo_reads_it() {
    let registry = Registry::start(Mode::Plain);
    let dir = support::temp_dir();
    std::fs::write(dir.path().join("hello.txt"), "hello release\n").unwrap();
    let target = format!("{}/company/hello:v1", registry.host());
    let script = r"
import sys, oras.client
client = oras.client.OrasClient(insecure=True)
client.push(files=['hello.txt:application/vnd.releasectl.test.v1'], target=sys.argv[1], disable_path_validation=True)
";
    Cmd::new(python())
        .args(["-c", script, &target])
        .current_dir(dir.path())
        .run()
        .assert_success();

    let out = skopeo([
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{target}"),
    ]);
    out.assert_success();
    let manifest: Value = serde_json::from_slice(&out.stdout).unwrap();
    let layer = &manifest["layers"][0];
    assert_eq!(layer["mediaType"], "application/vnd.releasectl.test.v1");
    let digest = layer["digest"].as_str().unwrap();
    assert_eq!(
        std::fs::read_to_string(registry.blob_path(digest)).unwrap(),
        "hello release\n"
    );
}

#[test]
fn kubernetes_validate_accepts_a_valid_object_and_rejects_an_unknown_field() {
    let good = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\ndata:\n  a: b\n";
    let bad = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\nbogus: 1\n";
    let dir = support::temp_dir();
    std::fs::write(dir.path().join("good.yaml"), good).unwrap();
    std::fs::write(dir.path().join("bad.yaml"), bad).unwrap();
    support::kubernetes_validate()
        .args(["--strict", "good.yaml"])
        .current_dir(dir.path())
        .run()
        .assert_success();
    support::kubernetes_validate()
        .args(["--strict", "bad.yaml"])
        .current_dir(dir.path())
        .run()
        .assert_failure();
}

// ---- DockerConfig and credential helpers ----------------------------------------------------

#[test]
fn docker_config_writes_auths_cred_helpers_and_creds_store() {
    let config = DockerConfig::new()
        .auth("127.0.0.1:5000", "alice", "pa:ss")
        .cred_helper("127.0.0.1:6000", "testhelper", "bob", "tok")
        .creds_store("teststore");
    let doc: Value = serde_json::from_slice(&std::fs::read(config.config_path()).unwrap()).unwrap();
    assert_eq!(
        doc,
        json!({
            "auths": {"127.0.0.1:5000": {"auth": "YWxpY2U6cGE6c3M="}},
            "credHelpers": {"127.0.0.1:6000": "testhelper"},
            "credsStore": "teststore",
        })
    );
    assert!(config.helper_path("testhelper").is_file());
    assert!(config.helper_path("teststore").is_file());
}

#[test]
fn credential_helper_script_answers_the_docker_protocol() {
    let config = DockerConfig::new()
        .cred_helper("127.0.0.1:6000", "testhelper", "bob", "t'o\"k en")
        .creds_store("teststore")
        .helper_knows("teststore", "127.0.0.1:7000", "carol", "pw");

    // Found: JSON on stdout. Docker sends the server URL without a newline.
    let out = Cmd::new("docker-credential-testhelper")
        .arg("get")
        .path_prepend(config.bin_dir())
        .stdin("127.0.0.1:6000")
        .run();
    out.assert_success();
    let answer: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        answer,
        json!({"ServerURL": "127.0.0.1:6000", "Username": "bob", "Secret": "t'o\"k en"})
    );

    // Unknown host: the message docker's client library recognises, exit 1.
    let out = Cmd::new("docker-credential-testhelper")
        .arg("get")
        .path_prepend(config.bin_dir())
        .stdin("127.0.0.1:7000\n")
        .run();
    out.assert_exit(1);
    assert_eq!(
        out.stdout_str().trim(),
        "credentials not found in native keychain"
    );

    // The store knows its own host; `docker_config` sets DOCKER_CONFIG and PATH together.
    let out = Cmd::new("/bin/sh")
        .args([
            "-c",
            "test -f \"$DOCKER_CONFIG/config.json\" && printf 127.0.0.1:7000 | docker-credential-teststore get",
        ])
        .docker_config(&config)
        .run();
    out.assert_success()
        .assert_stdout_contains("\"Username\":\"carol\"");

    assert_eq!(
        config.helper_calls(),
        [
            "testhelper get 127.0.0.1:6000",
            "testhelper get 127.0.0.1:7000",
            "teststore get 127.0.0.1:7000",
        ]
    );
}

/// skopeo reads the same `auths` the product will, so the helper's output is what a real
/// docker client accepts.
#[test]
fn skopeo_authenticates_with_the_written_docker_config() {
    let registry = Registry::start(Mode::basic("alice", "s3cret"));
    let config = DockerConfig::new().auth(&registry.host(), "alice", "s3cret");
    let out = support::skopeo_cmd()
        .args(["inspect", "--raw", "--tls-verify=false"])
        .arg(format!("--authfile={}", config.config_path().display()))
        .arg(format!("docker://{}/company/missing:v1", registry.host()))
        .run();
    out.assert_failure();
    assert!(out.stderr_str().contains("manifest unknown"), "{out}");
}

// ---- FakeServer -----------------------------------------------------------------------------

fn raw_exchange(host: &str, request: &str) -> Vec<u8> {
    let mut stream = TcpStream::connect(host).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut buf = Vec::new();
    let _ = stream.read_to_end(&mut buf);
    buf
}

#[test]
fn fake_server_serves_and_records_requests() {
    let server = FakeServer::start(|req| {
        if req.path == "/v2/" {
            Action::json(200, &json!({}))
        } else {
            Action::respond(404, &[("X-Test", "yes")], "nope")
        }
    });
    let ok = support::http_get(&server.host(), "/v2/", &[("Authorization", "Bearer t")]).unwrap();
    assert_eq!(ok.status, 200);
    assert_eq!(ok.body_str(), "{}");
    let missing = support::http_get(&server.host(), "/v2/x/manifests/y?a=1", &[]).unwrap();
    assert_eq!(missing.status, 404);
    assert_eq!(missing.header("x-test"), Some("yes"));
    assert_eq!(missing.body_str(), "nope");

    let reqs = server.requests();
    assert_eq!(reqs.len(), 2);
    assert_eq!(reqs[0].method, "GET");
    assert_eq!(reqs[0].header("authorization"), Some("Bearer t"));
    assert_eq!(reqs[1].path_only(), "/v2/x/manifests/y");
    assert!(!reqs[1].has_header("Authorization"));
    assert_eq!(server.requests_to("/v2/").len(), 1);
    server.assert_handler_ok();
}

#[test]
fn fake_server_keeps_connections_alive_and_reads_bodies() {
    let server = FakeServer::start(|req| Action::respond(201, &[], req.body.clone()));
    let mut stream = TcpStream::connect(server.host()).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream
        .write_all(b"PUT /a HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc")
        .unwrap();
    stream
        .write_all(
            b"PATCH /b HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n2\r\nde\r\n1\r\nf\r\n0\r\n\r\n",
        )
        .unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8(raw).unwrap();
    assert_eq!(text.matches("HTTP/1.1 201 Created").count(), 2, "{text}");
    let reqs = server.requests();
    assert_eq!(reqs[0].body, b"abc");
    assert_eq!(reqs[1].body, b"def");
    assert_eq!((reqs[0].connection, reqs[1].connection), (0, 0));
    assert_eq!(server.connection_count(), 1);
}

#[test]
fn fake_server_answers_in_turn_for_retry_tests() {
    let server = FakeServer::start(fake_server::in_turn(vec![
        Action::status(500),
        Action::too_many_requests(1),
        Action::respond(200, &[], "finally"),
    ]));
    let statuses: Vec<u16> = (0..4)
        .map(|_| support::http_get(&server.host(), "/", &[]).unwrap().status)
        .collect();
    assert_eq!(statuses, [500, 429, 200, 200]);
}

#[test]
fn fake_server_misbehaves_on_request() {
    let body = vec![b'x'; 1000];
    let server = FakeServer::start(move |req| {
        let response = Response::new(200).body(body.clone());
        match req.path.as_str() {
            "/truncated" => Action::close_mid_body(response, 100),
            "/stall-headers" => Action::stall_after_headers(response, Duration::from_secs(30)),
            "/stall-body" => Action::stall_mid_body(response, 10, Duration::from_secs(30)),
            "/hang" => Action::Hang(Duration::from_secs(30)),
            "/close" => Action::Close,
            "/redirect" => Action::redirect(307, "http://127.0.0.1:1/elsewhere"),
            "/lie" => Action::Respond(
                Response::new(200)
                    .header("Content-Length", "5000")
                    .body("short"),
            ),
            _ => Action::status(404),
        }
    });
    let get = |path: &str| format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n");

    // Truncated: headers announce 1000 bytes, 100 arrive, then EOF.
    let raw = raw_exchange(&server.host(), &get("/truncated"));
    let text = String::from_utf8_lossy(&raw);
    assert!(text.contains("Content-Length: 1000"), "{text}");
    assert!(text.ends_with(&"x".repeat(100)) && !text.ends_with(&"x".repeat(101)));

    // Stall after headers: the headers arrive, then nothing until the client's read timeout.
    for (path, expect_body) in [("/stall-headers", 0), ("/stall-body", 10)] {
        let mut stream = TcpStream::connect(server.host()).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        stream.write_all(get(path).as_bytes()).unwrap();
        let started = Instant::now();
        let mut raw = Vec::new();
        let err = stream.read_to_end(&mut raw).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::WouldBlock, "{path}");
        assert!(started.elapsed() >= Duration::from_millis(400));
        let text = String::from_utf8_lossy(&raw);
        let body_len = text.split("\r\n\r\n").nth(1).unwrap().len();
        assert_eq!(body_len, expect_body, "{path}: {text}");
    }

    // Hang: no bytes at all.
    let mut stream = TcpStream::connect(server.host()).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    stream.write_all(get("/hang").as_bytes()).unwrap();
    let mut buf = [0u8; 16];
    assert!(stream.read(&mut buf).is_err());

    // Close: EOF with no response.
    assert!(raw_exchange(&server.host(), &get("/close")).is_empty());

    let resp = support::http_get(&server.host(), "/redirect", &[]).unwrap();
    assert_eq!(resp.status, 307);
    assert_eq!(
        resp.header("location"),
        Some("http://127.0.0.1:1/elsewhere")
    );

    let raw = raw_exchange(
        &server.host(),
        "GET /lie HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert!(String::from_utf8_lossy(&raw).contains("Content-Length: 5000"));

    assert_eq!(server.requests().len(), 7);
    // Dropping the server ends the stalled connections promptly.
    let started = Instant::now();
    drop(server);
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn fake_server_redirect_target_records_whether_authorization_was_forwarded() {
    let target = FakeServer::start(|_| Action::respond(200, &[], "blob"));
    let location = target.url("/blob");
    let origin = FakeServer::start(move |_| Action::redirect(307, &location));
    // A client that follows the redirect to another host and drops Authorization, as the
    // product must; the servers' records are what a product test will assert on.
    let auth = [("Authorization", "Basic c2VjcmV0")];
    let first = support::http_get(&origin.host(), "/v2/x/blobs/sha256:00", &auth).unwrap();
    let location = first.header("location").unwrap();
    let (host, path) = location
        .strip_prefix("http://")
        .and_then(|rest| rest.split_once('/'))
        .unwrap();
    let second = support::http_get(host, &format!("/{path}"), &[]).unwrap();
    assert_eq!(second.body_str(), "blob");
    assert_eq!(
        origin.requests()[0].header("authorization"),
        Some("Basic c2VjcmV0")
    );
    let forwarded = &target.requests()[0];
    assert_eq!(forwarded.path, "/blob");
    assert!(!forwarded.has_header("authorization"), "{forwarded:?}");
}
