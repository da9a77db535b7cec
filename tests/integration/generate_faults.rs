//! `generate` against a misbehaving registry, and as a process Argo CD's cmp-server stops
//! (issue 3, "faults" and "process"; docs/design.md §5 rules 1, 6 and 7).
//!
//! A real release image is made once with `release create` into an OCI layout and held in
//! memory; a [`FakeServer`] serves it as a registry would, with one fault injected. Every
//! failure must look the same to Argo CD: the documented exit code (5 for a remote failure),
//! nothing on stdout, one line on stderr naming the image, and never the password — which is
//! a canary here, checked verbatim and in its base64 `Authorization` form.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::setup::{
    self, COMMIT_A, EPOCH, IMAGE_PATH, MANIFEST_MEDIA_TYPE, PROJECT, REPOSITORY,
    RESOURCES_MEDIA_TYPE,
};
use crate::support::{self, Action, Cmd, DockerConfig, FakeServer, Output, Request, Response};

/// The registry user and password every fault test configures; the password must never show.
pub const USER: &str = "ci-bot";
pub const CANARY: &str = "canary-pw-7f3a9c1e";

/// A release image held in memory, as a registry would serve it.
pub struct Image {
    pub manifest: Vec<u8>,
    /// `sha256:…` of the manifest.
    pub digest: String,
    /// Every blob by digest.
    pub blobs: BTreeMap<String, Vec<u8>>,
    /// The resources layer's digest (the big blob, fetched last).
    pub resources: String,
    /// What `generate` prints for this release, read from the OCI layout (no HTTP involved).
    pub expected: Vec<u8>,
}

impl Image {
    pub fn manifest_path(&self) -> String {
        format!("/v2/{IMAGE_PATH}/manifests/{}", self.digest)
    }

    pub fn resources_path(&self) -> String {
        format!("/v2/{IMAGE_PATH}/blobs/{}", self.resources)
    }

    pub fn resources_bytes(&self) -> &[u8] {
        &self.blobs[&self.resources]
    }

    /// Answers `req` as a healthy registry holding only this image would.
    pub fn serve(&self, req: &Request) -> Action {
        let path = req.path_only();
        if path == "/v2/" {
            return Action::json(200, &json!({}));
        }
        let Some(rest) = path.strip_prefix(&format!("/v2/{IMAGE_PATH}/")) else {
            return Action::status(404);
        };
        if let Some(reference) = rest.strip_prefix("manifests/") {
            if reference == self.digest || reference == COMMIT_A {
                return Action::respond(
                    200,
                    &[
                        ("Content-Type", MANIFEST_MEDIA_TYPE),
                        ("Docker-Content-Digest", &self.digest),
                    ],
                    self.manifest.clone(),
                );
            }
        } else if let Some(digest) = rest.strip_prefix("blobs/")
            && let Some(bytes) = self.blobs.get(digest)
        {
            return Action::respond(
                200,
                &[("Content-Type", "application/octet-stream")],
                bytes.clone(),
            );
        }
        Action::status(404)
    }

    /// The resources blob with headers announcing all of it (for truncating and stalling).
    pub fn resources_response(&self) -> Response {
        Response::new(200)
            .header("Content-Type", "application/octet-stream")
            .body(self.resources_bytes().to_vec())
    }
}

/// The image, made once per test process.
pub fn image() -> &'static Image {
    static IMAGE: OnceLock<Image> = OnceLock::new();
    IMAGE.get_or_init(make_image)
}

fn make_image() -> Image {
    let root = support::temp_dir();
    Cmd::releasectl()
        .arg("--registry")
        .arg(format!("oci:{}", root.path().display()))
        .args(setup::fixture_create_args())
        .env("SOURCE_DATE_EPOCH", EPOCH)
        .run()
        .assert_success();
    let layout = root.path().join(IMAGE_PATH);
    let index: Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).expect("index.json"))
            .expect("index.json is JSON");
    let digest = index["manifests"][0]["digest"]
        .as_str()
        .expect("index names a manifest")
        .to_owned();
    let mut blobs = BTreeMap::new();
    for entry in std::fs::read_dir(layout.join("blobs/sha256")).expect("blobs dir") {
        let entry = entry.expect("blob entry");
        let name = entry.file_name().to_string_lossy().into_owned();
        blobs.insert(
            format!("sha256:{name}"),
            std::fs::read(entry.path()).expect("read blob"),
        );
    }
    let manifest = blobs[&digest].clone();
    let parsed: Value = serde_json::from_slice(&manifest).expect("manifest is JSON");
    let resources = setup::layer(&parsed, RESOURCES_MEDIA_TYPE)["digest"]
        .as_str()
        .expect("resources digest")
        .to_owned();

    // The reference output: the same release generated straight from the layout (which a
    // pointer may name only when allowed explicitly).
    let app = app_dir(&format!("oci:{}", root.path().display()), &digest);
    let out = Cmd::releasectl()
        .arg("generate")
        .current_dir(app.path())
        .env("RELEASECTL_ALLOW_LAYOUT_POINTERS", "1")
        .run();
    out.assert_success();
    assert!(!out.stdout.is_empty(), "{out}");
    Image {
        manifest,
        digest,
        blobs,
        resources,
        expected: out.stdout,
    }
}

/// An application directory holding only a `release.yaml` for the image, pinned to `digest`,
/// with `spec.registry` set to `registry`.
pub fn app_dir(registry: &str, digest: &str) -> tempfile::TempDir {
    let dir = support::temp_dir();
    std::fs::write(
        dir.path().join("release.yaml"),
        format!(
            "apiVersion: releasectl.dev/v1alpha1\n\
             kind: ReleasePointer\n\
             metadata:\n  name: {PROJECT}\n\
             spec:\n  repository: {REPOSITORY}\n  project: {PROJECT}\n  release: {COMMIT_A}\n  \
             digest: {digest}\n  registry: \"{registry}\"\n"
        ),
    )
    .expect("write release.yaml");
    dir
}

/// `releasectl generate` in `app`, as the Argo CD sidecar runs it against plain-HTTP `host`,
/// with no credentials (add them with [`with_env_credentials`] or a [`DockerConfig`]).
pub fn generate(app: &Path, host: &str) -> Cmd {
    Cmd::releasectl()
        .arg("generate")
        .current_dir(app)
        .env("RELEASECTL_INSECURE_REGISTRIES", host)
        .env("ARGOCD_APP_NAME", "auth-service-dev")
        .timeout(Duration::from_secs(60))
}

/// The sidecar's registry credentials, with the canary password. They apply only to the
/// default registry (`RELEASECTL_REGISTRY`), so that is set to `host` too.
fn with_env_credentials(cmd: Cmd, host: &str) -> Cmd {
    cmd.env("RELEASECTL_REGISTRY", host)
        .env("RELEASECTL_REGISTRY_USERNAME", USER)
        .env("RELEASECTL_REGISTRY_PASSWORD", CANARY)
}

/// The password in every form a careless client could print it.
/// `generate` (with the credentials in the environment) in a fresh app dir whose pointer names
/// `digest` at `server`; keep the dir as long as the command runs.
fn generate_from(server: &FakeServer, digest: &str) -> (tempfile::TempDir, Cmd) {
    let host = server.host();
    let app = app_dir(&host, digest);
    let cmd = with_env_credentials(generate(app.path(), &host), &host);
    (app, cmd)
}

/// Serves `action` once for the resources blob, then the blob: `generate` must retry once and
/// succeed.
fn succeeds_on_the_second_try(image: &Image, action: Action) {
    let server = fault_on(image.resources_path(), 1, action);
    let (_app, cmd) = generate_from(&server, &image.digest);
    let out = cmd.run();
    assert_generated(&out);
    assert_eq!(
        server.requests_to(&image.resources_path()).len(),
        2,
        "{out}"
    );
}

/// The resources blob, cut off after half of it by closing the connection.
fn close_mid_blob(image: &Image) -> Action {
    Action::close_mid_body(
        image.resources_response(),
        image.resources_bytes().len() / 2,
    )
}

/// The resources blob, stalled for a minute after half of it.
fn stall_mid_blob(image: &Image) -> Action {
    let half = image.resources_bytes().len() / 2;
    Action::stall_mid_body(image.resources_response(), half, Duration::from_secs(60))
}

fn assert_no_secret(out: &Output) {
    out.assert_no_leak(CANARY);
    out.assert_no_leak(&support::base64(format!("{USER}:{CANARY}").as_bytes()));
}

/// A failure as Argo CD must see it: `code`, empty stdout, exactly one stderr line holding
/// every needle, no panic, no secret.
#[track_caller]
fn assert_clean_failure(out: &Output, code: i32, needles: &[&str]) {
    setup::assert_fails(out, code, needles);
    let stderr = out.stderr_str();
    if stderr.lines().count() != 1 {
        out.fail("stderr was expected to be exactly one line");
    }
    if stderr.contains("panicked") {
        out.fail("stderr shows a panic");
    }
    assert_no_secret(out);
}

/// Proves the credentials were in play: some request to `server` carried them. Without this,
/// a run that never loaded them would pass every leak check trivially.
#[track_caller]
fn assert_sent_credentials(server: &FakeServer) {
    let expected = support::basic_auth(USER, CANARY);
    let requests = server.requests();
    assert!(
        requests
            .iter()
            .any(|r| r.header("authorization") == Some(expected.as_str())),
        "no request carried the configured credentials: {requests:?}"
    );
}

/// Success with exactly the reference manifests.
#[track_caller]
fn assert_generated(out: &Output) {
    out.assert_success();
    if out.stdout != image().expected {
        out.fail("stdout differs from the manifests generated from the OCI layout");
    }
    assert_no_secret(out);
}

/// A server holding the image; `fault` may take over any request (`None`: serve normally).
fn faulty_server<F>(fault: F) -> FakeServer
where
    F: Fn(&Request) -> Option<Action> + Send + Sync + 'static,
{
    let image = image();
    FakeServer::start(move |req| fault(req).unwrap_or_else(|| image.serve(req)))
}

/// A fault applied to the first `times` requests for `path` (`usize::MAX`: forever).
fn fault_on(path: String, times: usize, action: Action) -> FakeServer {
    let seen = AtomicUsize::new(0);
    faulty_server(move |req| {
        (req.path_only() == path && seen.fetch_add(1, Ordering::SeqCst) < times)
            .then(|| action.clone())
    })
}

// ---- faults ---------------------------------------------------------------------------------

#[test]
fn a_healthy_fake_registry_serves_exactly_the_layouts_manifests() {
    // The baseline every fault below departs from: without a fault, the fake registry works.
    let server = faulty_server(|_| None);
    let app = app_dir(&server.host(), &image().digest);
    let out = with_env_credentials(generate(app.path(), &server.host()), &server.host()).run();
    assert_generated(&out);
    assert_sent_credentials(&server);
    server.assert_handler_ok();
}

#[test]
fn registry_down_fails_quickly_with_exit_5_and_names_the_host() {
    // A port that was free a moment ago: nothing listens there.
    let host = format!("127.0.0.1:{}", support::registry::free_port());
    let app = app_dir(&host, &image().digest);
    let out = with_env_credentials(generate(app.path(), &host), &host).run();
    assert_clean_failure(&out, 5, &[&host, IMAGE_PATH]);
    assert!(
        out.elapsed < Duration::from_secs(10),
        "a dead registry took {:?}: it should fail well before the 45 s deadline\n{out}",
        out.elapsed
    );
}

#[test]
fn unauthorized_fails_at_once_with_exit_5_and_no_retry_loop() {
    let server = FakeServer::start(|_| Action::unauthorized("Basic realm=\"registry\""));
    let app = app_dir(&server.host(), &image().digest);
    let out = with_env_credentials(generate(app.path(), &server.host()), &server.host()).run();
    assert_clean_failure(&out, 5, &[IMAGE_PATH, &server.host()]);
    assert_sent_credentials(&server);
    // One try, and at most one more after asking /v2/ how to authenticate.
    let manifests = server.requests_to(&image().manifest_path()).len();
    let total = server.requests().len();
    assert!(
        manifests <= 2 && total <= 3,
        "401 must not be retried: {manifests} manifest requests, {total} in all\n{out}"
    );
    assert!(out.elapsed < Duration::from_secs(5), "{out}");
}

#[test]
fn not_found_fails_at_once_with_exit_5_after_one_request() {
    let server = FakeServer::start(|_| Action::status(404));
    let app = app_dir(&server.host(), &image().digest);
    let out = with_env_credentials(generate(app.path(), &server.host()), &server.host()).run();
    assert_clean_failure(&out, 5, &[IMAGE_PATH, "not found"]);
    assert_eq!(server.requests().len(), 1, "404 must not be retried\n{out}");
}

#[test]
fn too_many_requests_is_retried_after_the_retry_after_delay() {
    let image = image();
    let times = Arc::new(Mutex::new(Vec::new()));
    let recorded = Arc::clone(&times);
    let manifest = image.manifest_path();
    let server = faulty_server(move |req| {
        if req.path_only() != manifest {
            return None;
        }
        let mut times = recorded.lock().unwrap();
        times.push(Instant::now());
        (times.len() == 1).then(|| Action::too_many_requests(1))
    });
    let (_app, cmd) = generate_from(&server, &image.digest);
    let out = cmd.run();
    assert_generated(&out);
    let times = times.lock().unwrap();
    assert_eq!(times.len(), 2, "one 429, then one successful try\n{out}");
    let waited = times[1] - times[0];
    assert!(
        waited >= Duration::from_secs(1),
        "the retry came {waited:?} after the 429: Retry-After asked for 1 s\n{out}"
    );
}

#[test]
fn a_server_error_then_success_is_retried_and_succeeds() {
    let image = image();
    succeeds_on_the_second_try(image, Action::status(500));
}

#[test]
fn a_server_error_forever_gives_up_after_bounded_attempts_with_exit_5() {
    let image = image();
    let server = fault_on(image.manifest_path(), usize::MAX, Action::status(500));
    let (_app, cmd) = generate_from(&server, &image.digest);
    let out = cmd.env("RELEASECTL_TIMEOUT", "30s").run();
    assert_clean_failure(&out, 5, &[IMAGE_PATH, "500"]);
    let attempts = server.requests_to(&image.manifest_path()).len();
    assert!(
        (2..=6).contains(&attempts),
        "expected a few bounded retries, got {attempts} attempts\n{out}"
    );
    assert!(
        out.elapsed < Duration::from_secs(20),
        "retries should stop well before the 30 s deadline\n{out}"
    );
}

/// A body that stalls fails within the deadline, naming the image and the registry that stalled.
#[test]
fn a_body_stalled_past_the_deadline_fails_within_the_deadline() {
    let image = image();
    let server = fault_on(image.resources_path(), usize::MAX, stall_mid_blob(image));
    let (_app, cmd) = generate_from(&server, &image.digest);
    let out = cmd
        .env("RELEASECTL_TIMEOUT", "3s")
        .timeout(Duration::from_secs(30))
        .run();
    assert_clean_failure(&out, 5, &[IMAGE_PATH, &server.host()]);
    assert!(
        out.elapsed < Duration::from_secs(5),
        "RELEASECTL_TIMEOUT=3s, but generate ran {:?}\n{out}",
        out.elapsed
    );
    assert!(
        !server.requests_to(&image.resources_path()).is_empty(),
        "the stall was never reached\n{out}"
    );
}

#[test]
fn a_connection_reset_mid_blob_then_success_is_retried_and_succeeds() {
    let image = image();
    succeeds_on_the_second_try(image, close_mid_blob(image));
}

#[test]
fn a_connection_reset_mid_blob_forever_fails_with_exit_5() {
    let image = image();
    let server = fault_on(image.resources_path(), usize::MAX, close_mid_blob(image));
    let (_app, cmd) = generate_from(&server, &image.digest);
    let out = cmd.run();
    assert_clean_failure(&out, 5, &[IMAGE_PATH, "resources"]);
    let attempts = server.requests_to(&image.resources_path()).len();
    assert!((2..=6).contains(&attempts), "{attempts} attempts\n{out}");
}

/// The blob GET is redirected to a second host (as registries do to object storage). The
/// first host must get the credentials; the second must not (CVE-2020-15157's lesson).
fn redirect_to_another_host(cmd: impl Fn(&Path, &str) -> Cmd) {
    let image = image();
    let resources = image.resources_path();
    let storage = faulty_server(move |req| {
        (req.path_only() == "/storage/resources").then(|| {
            Action::respond(
                200,
                &[("Content-Type", "application/octet-stream")],
                image.resources_bytes().to_vec(),
            )
        })
    });
    let location = storage.url("/storage/resources?X-Signature=presigned");
    let server = faulty_server(move |req| {
        (req.path_only() == resources).then(|| Action::redirect(307, &location))
    });
    let app = app_dir(&server.host(), &image.digest);
    let out = cmd(app.path(), &server.host()).run();
    assert_generated(&out);
    let first = server.requests_to(&image.resources_path());
    assert!(
        first.iter().all(|r| r.has_header("authorization")),
        "the registry itself should have received the credentials: {first:?}"
    );
    let second = storage.requests_to("/storage/resources");
    assert_eq!(second.len(), 1, "{out}");
    assert!(
        !second[0].has_header("authorization"),
        "the redirect target received the Authorization header: {:?}",
        second[0]
    );
}

#[test]
fn a_redirect_to_another_host_does_not_forward_docker_config_credentials() {
    let docker = std::cell::OnceCell::new();
    redirect_to_another_host(|app, host| {
        let docker = docker.get_or_init(|| DockerConfig::new().auth(host, USER, CANARY));
        generate(app, host).docker_config(docker)
    });
}

#[test]
fn a_redirect_to_another_host_does_not_forward_environment_credentials() {
    redirect_to_another_host(|app, host| with_env_credentials(generate(app, host), host));
}

const TOKEN: &str = "tok-secret-5b2e";

/// A registry that wants a bearer token from a separate token service.
fn bearer_registry() -> (FakeServer, FakeServer) {
    let tokens = FakeServer::start(|req| {
        if req.path_only() == "/token" {
            Action::json(200, &json!({ "token": TOKEN }))
        } else {
            Action::status(404)
        }
    });
    let challenge = format!("Bearer realm=\"{}\",service=\"x\"", tokens.url("/token"));
    let expected = format!("Bearer {TOKEN}");
    let server = faulty_server(move |req| {
        (req.header("authorization") != Some(expected.as_str()))
            .then(|| Action::unauthorized(&challenge))
    });
    (server, tokens)
}

#[test]
fn a_bearer_token_challenge_is_answered_and_the_token_is_used() {
    let image = image();
    let (server, tokens) = bearer_registry();
    let (_app, cmd) = generate_from(&server, &image.digest);
    let out = cmd.run();
    assert_generated(&out);
    out.assert_no_leak(TOKEN);
    let asked = tokens.requests_to("/token");
    assert_eq!(asked.len(), 1, "{out}");
    assert!(
        asked[0]
            .path
            .contains("scope=repository%3Acompany%2Fmonorepo%2Fauth-service%3Apull")
            || asked[0]
                .path
                .contains("scope=repository:company/monorepo/auth-service:pull"),
        "token request without the pull scope: {}",
        asked[0].path
    );
    let resources = server.requests_to(&image.resources_path());
    assert!(
        resources
            .iter()
            .any(|r| r.header("authorization") == Some(&format!("Bearer {TOKEN}"))),
        "the blob was never fetched with the token: {resources:?}"
    );
}

#[test]
fn the_password_never_appears_in_output_even_with_debug_logging() {
    let image = image();
    let servers = [
        FakeServer::start(|_| Action::unauthorized("Basic realm=\"registry\"")),
        FakeServer::start(|_| Action::status(404)),
        fault_on(image.manifest_path(), usize::MAX, Action::status(503)),
        fault_on(image.resources_path(), usize::MAX, close_mid_blob(image)),
    ];
    let (bearer, _tokens) = bearer_registry();
    for server in servers.iter().chain([&bearer]) {
        let app = app_dir(&server.host(), &image.digest);
        let env = with_env_credentials(generate(app.path(), &server.host()), &server.host())
            .env("RELEASECTL_LOG", "debug")
            .env("RELEASECTL_TIMEOUT", "20s")
            .run();
        let docker = DockerConfig::new().auth(&server.host(), USER, CANARY);
        let config = generate(app.path(), &server.host())
            .docker_config(&docker)
            .env("RELEASECTL_LOG", "debug")
            .env("RELEASECTL_TIMEOUT", "20s")
            .run();
        for out in [env, config] {
            assert_no_secret(&out);
            if !out.success() {
                out.assert_stdout_empty();
            }
            // Debug logging was on: the check above looked at a talkative stderr.
            if out.stderr_str().lines().count() < 2 {
                out.fail("RELEASECTL_LOG=debug should have logged more than the error");
            }
        }
        assert_sent_credentials(server);
    }
}

// ---- process --------------------------------------------------------------------------------

/// Runs `cmd` as a child we control directly (the harness's `run` waits for the end).
fn spawn(cmd: &Cmd) -> std::process::Child {
    cmd.to_command(std::env::vars_os().map(|(name, _)| name))
        .spawn()
        .expect("spawn releasectl")
}

fn read_in_background(
    mut pipe: impl std::io::Read + Send + 'static,
) -> thread::JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = pipe.read_to_end(&mut buf);
        buf
    })
}

/// Waits up to `limit` for `child`; kills it (and fails) if it is still running.
fn wait_for(child: &mut std::process::Child, limit: Duration) -> std::process::ExitStatus {
    let end = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return status;
        }
        if Instant::now() >= end {
            let _ = child.kill();
            let _ = child.wait();
            panic!("releasectl generate still ran {limit:?} after it was asked to stop");
        }
        thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn sigterm_mid_download_ends_promptly_with_empty_stdout_and_one_line() {
    let image = image();
    let server = fault_on(image.resources_path(), usize::MAX, stall_mid_blob(image));
    let (_app, cmd) = generate_from(&server, &image.digest);
    let mut child = spawn(&cmd);
    let stdout = read_in_background(child.stdout.take().expect("stdout"));
    let stderr = read_in_background(child.stderr.take().expect("stderr"));

    let until = Instant::now() + Duration::from_secs(30);
    while server.requests_to(&image.resources_path()).is_empty() {
        assert!(Instant::now() < until, "the download never started");
        thread::sleep(Duration::from_millis(10));
    }
    // Let the first half of the body arrive: the process is now mid-download.
    thread::sleep(Duration::from_millis(200));
    let signalled = Instant::now();
    Cmd::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .run()
        .assert_success();
    let status = wait_for(&mut child, Duration::from_secs(10));
    let took = signalled.elapsed();
    let (stdout, stderr) = (stdout.join().unwrap(), stderr.join().unwrap());
    let stderr = String::from_utf8_lossy(&stderr);
    let report = format!("status: {status:?}\nstderr:\n{stderr}");
    assert!(took < Duration::from_secs(2), "took {took:?}\n{report}");
    assert!(
        status.code().is_some_and(|c| c != 0),
        "SIGTERM should end generate through its own error path, with a non-zero exit\n{report}"
    );
    assert!(
        stdout.is_empty(),
        "stdout: {:?}",
        String::from_utf8_lossy(&stdout)
    );
    assert_eq!(stderr.lines().count(), 1, "{report}");
    assert!(!stderr.contains("panicked"), "{report}");
    assert!(!stderr.contains(CANARY), "{report}");
}

#[test]
fn stdout_closed_before_the_manifests_are_written_causes_no_panic() {
    let image = image();
    let server = faulty_server(|_| None);
    let app = app_dir(&server.host(), &image.digest);
    let mut child = spawn(&generate(app.path(), &server.host()));
    // The reader is gone before generate writes anything.
    drop(child.stdout.take());
    let stderr = read_in_background(child.stderr.take().expect("stderr"));
    let status = wait_for(&mut child, Duration::from_secs(60));
    let stderr = String::from_utf8_lossy(&stderr.join().unwrap()).into_owned();
    assert!(
        status.code().is_some(),
        "killed by a signal instead of exiting: {status:?}\n{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        stderr.lines().count() <= 1,
        "a closed stdout is not worth a report: {stderr}"
    );
    // The server did serve the release: the write really went to a closed pipe.
    assert!(!server.requests_to(&image.resources_path()).is_empty());
}

#[test]
fn stdout_closed_mid_write_by_head_causes_no_panic() {
    let image = image();
    let server = faulty_server(|_| None);
    let app = app_dir(&server.host(), &image.digest);
    // An environment object far larger than a pipe's buffer, so generate is still writing
    // when `head` exits.
    let big = "x".repeat(512 * 1024);
    std::fs::write(
        app.path().join("env.yaml"),
        format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: big\n  namespace: auth\ndata:\n  big: {big}\n"
        ),
    )
    .unwrap();
    let out = Cmd::new("/bin/sh")
        .args([
            "-c",
            "\"$0\" generate | head -c 10 >/dev/null; echo done",
            env!("CARGO_BIN_EXE_releasectl"),
        ])
        .current_dir(app.path())
        .env("RELEASECTL_INSECURE_REGISTRIES", server.host())
        .run();
    out.assert_success().assert_stdout_contains("done");
    if out.stderr_str().contains("panicked") {
        out.fail("a closed stdout made generate panic");
    }
    // Without the pipe, the same run succeeds and prints all of it: the test above was real.
    let full = generate(app.path(), &server.host()).run();
    full.assert_success();
    assert!(full.stdout.len() > 512 * 1024, "{full}");
}

#[test]
fn a_redirect_to_a_file_url_is_named_as_such_with_its_target() {
    let image = image();
    let server = fault_on(
        image.resources_path(),
        usize::MAX,
        Action::redirect(302, "file:///etc/passwd?X-Signature=secret"),
    );
    let (_app, cmd) = generate_from(&server, &image.digest);
    let out = cmd.env("RELEASECTL_TIMEOUT", "20s").run();
    assert_clean_failure(
        &out,
        5,
        &[
            IMAGE_PATH,
            "redirect (302)",
            "file:///etc/passwd",
            "http(s)",
        ],
    );
    let err = out.stderr_str();
    assert!(
        !err.contains("X-Signature") && !err.contains('\u{1b}'),
        "{out}"
    );
}
