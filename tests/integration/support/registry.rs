//! A real registry: Debian's `docker-registry` (Distribution 2.8) on 127.0.0.1.
//!
//! Each [`Registry`] has its own config, storage directory and port, so tests run in parallel
//! without seeing each other's images. It is killed on drop. Debian's own config is never used
//! (its htpasswd path is a directory), and `REGISTRY_*` variables are removed from the server's
//! environment because Distribution lets them override any config key.
//!
//! Blobs are served as they lie on disk, so editing [`Registry::blob_path`] is a faithful
//! tamper test.

use std::fmt::Write as _;
use std::fs;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use super::certs::{self, TlsFiles};
use super::cmd::Cmd;
use super::http::{self, HttpResponse};

/// How the registry is exposed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Plain HTTP, no auth (clients need their "insecure registry" setting).
    Plain,
    /// Plain HTTP with htpasswd (bcrypt) basic auth.
    Basic { user: String, pass: String },
    /// HTTPS with a test CA, no auth.
    Tls,
    /// HTTPS with a test CA and basic auth.
    TlsBasic { user: String, pass: String },
}

impl Mode {
    pub fn basic(user: &str, pass: &str) -> Self {
        Mode::Basic {
            user: user.to_owned(),
            pass: pass.to_owned(),
        }
    }

    pub fn tls_basic(user: &str, pass: &str) -> Self {
        Mode::TlsBasic {
            user: user.to_owned(),
            pass: pass.to_owned(),
        }
    }

    fn is_tls(&self) -> bool {
        matches!(self, Mode::Tls | Mode::TlsBasic { .. })
    }

    fn credentials(&self) -> Option<(&str, &str)> {
        match self {
            Mode::Basic { user, pass } | Mode::TlsBasic { user, pass } => Some((user, pass)),
            Mode::Plain | Mode::Tls => None,
        }
    }
}

/// A running `docker-registry serve`.
pub struct Registry {
    mode: Mode,
    port: u16,
    child: Option<Child>,
    tls: Option<TlsFiles>,
    storage: PathBuf,
    log: PathBuf,
    dir: TempDir,
}

const START_ATTEMPTS: usize = 5;
const READY_TIMEOUT: Duration = Duration::from_secs(15);

impl Registry {
    /// Starts a registry and waits until it answers `/v2/`. Panics (with the server's log) if it
    /// cannot: a test that needs a registry must fail, never skip.
    // By value so call sites read `Registry::start(Mode::Plain)`.
    #[allow(clippy::needless_pass_by_value)]
    pub fn start(mode: Mode) -> Self {
        super::require_command("docker-registry", "docker-registry");
        let dir = tempfile::Builder::new()
            .prefix("releasectl-registry-")
            .tempdir()
            .expect("create registry temp dir");
        let storage = dir.path().join("storage");
        fs::create_dir_all(&storage).expect("create storage dir");
        let tls = mode
            .is_tls()
            .then(|| certs::make_tls(&dir.path().join("tls")));
        let htpasswd = mode.credentials().map(|(user, pass)| {
            super::require_command("htpasswd", "apache2-utils");
            let out = Cmd::new("htpasswd").args(["-Bbn", user, pass]).run();
            out.assert_success();
            let path = dir.path().join("htpasswd");
            fs::write(&path, &out.stdout).expect("write htpasswd");
            path
        });
        let log = dir.path().join("registry.log");
        let mut dir = dir;

        let mut last_log = String::new();
        for attempt in 1..=START_ATTEMPTS {
            let port = free_port();
            let config = dir.path().join("config.yml");
            fs::write(
                &config,
                config_yaml(port, &storage, tls.as_ref(), htpasswd.as_deref()),
            )
            .expect("write registry config");
            let child = spawn(&config, &log);
            let mut registry = Registry {
                mode: mode.clone(),
                port,
                child: Some(child),
                tls: tls.clone(),
                storage: storage.clone(),
                log: log.clone(),
                dir,
            };
            match registry.wait_ready() {
                Ok(()) => {
                    if registry.mode.is_tls() {
                        // Proves the chain verifies for IP 127.0.0.1 before any test relies on it.
                        let resp = registry.get("/v2/", true);
                        assert_eq!(resp.status, 200, "TLS registry /v2/: {}", resp.body_str());
                    }
                    return registry;
                }
                Err(Retry::PortTaken) => {
                    last_log = registry.log();
                    registry.stop();
                    // Take the temp dir back for the next attempt.
                    dir = registry.into_dir();
                    eprintln!("registry port {port} was taken (attempt {attempt}), retrying");
                }
                Err(Retry::Fatal(why)) => {
                    let log = registry.log();
                    registry.stop();
                    panic!("docker-registry did not start: {why}\n---- registry log ----\n{log}");
                }
            }
        }
        panic!(
            "docker-registry could not get a free port in {START_ATTEMPTS} attempts\n{last_log}"
        );
    }

    /// `127.0.0.1:PORT`, the registry part of an image reference.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn mode(&self) -> &Mode {
        &self.mode
    }

    /// `http://127.0.0.1:PORT` or `https://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        let scheme = if self.mode.is_tls() { "https" } else { "http" };
        format!("{scheme}://{}", self.host())
    }

    /// `(user, pass)` for the auth modes.
    pub fn credentials(&self) -> Option<(&str, &str)> {
        self.mode.credentials()
    }

    /// The test CA's certificate (PEM). Panics for a plain-HTTP registry.
    pub fn ca_pem_path(&self) -> &Path {
        &self.tls_files().ca_pem
    }

    /// A directory holding only `ca.crt`, for skopeo's `--cert-dir`. Panics for plain HTTP.
    pub fn cert_dir(&self) -> &Path {
        &self.tls_files().cert_dir
    }

    /// All certificate files (CA key included, to sign more). Panics for plain HTTP.
    pub fn tls_files(&self) -> &TlsFiles {
        self.tls.as_ref().unwrap_or_else(|| {
            panic!(
                "registry {} runs {:?}, it has no TLS files",
                self.host(),
                self.mode
            )
        })
    }

    /// The registry's storage root (`rootdirectory`).
    pub fn storage_dir(&self) -> &Path {
        &self.storage
    }

    /// Where the registry keeps blob `hex` (with or without `sha256:`).
    pub fn blob_path(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
        assert!(
            hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()),
            "blob_path wants a sha256 hex digest, got {digest:?}"
        );
        self.storage
            .join("docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }

    /// What the server has logged so far (stdout and stderr).
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `GET path` against the registry, with its credentials when `authenticated` (and the mode
    /// has any), trusting the test CA in the TLS modes.
    pub fn get(&self, path: &str, authenticated: bool) -> HttpResponse {
        let auth = self
            .credentials()
            .filter(|_| authenticated)
            .map(|(u, p)| http::basic_auth(u, p));
        let headers: Vec<(&str, &str)> = auth
            .as_deref()
            .map(|a| vec![("Authorization", a)])
            .unwrap_or_default();
        if self.mode.is_tls() {
            http::https_get(&self.host(), path, &headers, self.ca_pem_path())
        } else {
            http::http_get(&self.host(), path, &headers)
                .unwrap_or_else(|e| panic!("GET {}{path}: {e}", self.base_url()))
        }
    }

    /// skopeo flags to reach this registry: TLS trust or `--tls-verify=false`, plus `--creds`.
    /// Pass them to a subcommand that takes one image (e.g. `inspect`).
    pub fn skopeo_flags(&self) -> Vec<String> {
        let mut flags = if self.mode.is_tls() {
            vec![format!("--cert-dir={}", self.cert_dir().display())]
        } else {
            vec!["--tls-verify=false".to_owned()]
        };
        if let Some((u, p)) = self.credentials() {
            flags.push(format!("--creds={u}:{p}"));
        }
        flags
    }

    /// Kills the server (idempotent). Storage stays until the `Registry` is dropped.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn into_dir(mut self) -> TempDir {
        self.stop();
        let placeholder = tempfile::tempdir().expect("temp dir");
        std::mem::replace(&mut self.dir, placeholder)
    }

    fn wait_ready(&mut self) -> Result<(), Retry> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().expect("wait for registry"))
            {
                let log = self.log();
                return Err(if log.contains("address already in use") {
                    Retry::PortTaken
                } else {
                    Retry::Fatal(format!("exited with {status}"))
                });
            }
            // "listening on" is logged only after *this* process bound the port: without it, a
            // server that won the race for the port could answer our probe instead.
            if self.log().contains("listening on") && self.answers() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(Retry::Fatal(format!(
                    "no answer on {} within {READY_TIMEOUT:?}",
                    self.host()
                )));
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Does the server answer? Plain: any HTTP status for `GET /v2/`. TLS: the port accepts
    /// (`start` then makes one verified HTTPS GET).
    fn answers(&self) -> bool {
        if self.mode.is_tls() {
            TcpStream::connect(self.host()).is_ok()
        } else {
            http::http_get(&self.host(), "/v2/", &[]).is_ok()
        }
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.stop();
    }
}

enum Retry {
    PortTaken,
    Fatal(String),
}

/// A port that was free a moment ago (the OS picks it for port 0). Someone may take it before
/// the server binds it: `Registry::start` retries then.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

fn spawn(config: &Path, log: &Path) -> Child {
    let log_file = fs::File::create(log).expect("create registry log");
    let mut command = Command::new("docker-registry");
    command
        .arg("serve")
        .arg(config)
        .stdin(Stdio::null())
        .stdout(log_file.try_clone().expect("clone log handle"))
        .stderr(log_file);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("REGISTRY_") {
            command.env_remove(name);
        }
    }
    command
        .spawn()
        .unwrap_or_else(|e| panic!("could not run docker-registry: {e}"))
}

fn config_yaml(
    port: u16,
    storage: &Path,
    tls: Option<&TlsFiles>,
    htpasswd: Option<&Path>,
) -> String {
    // JSON strings are valid YAML scalars, and escape any odd character in a temp path.
    let q = |p: &Path| serde_json::to_string(&p.to_string_lossy()).expect("json string");
    let mut yaml = format!(
        "version: 0.1\n\
         log:\n  level: info\n  formatter: text\n\
         storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n\
         http:\n  addr: 127.0.0.1:{port}\n  secret: releasectl-test-secret\n",
        q(storage)
    );
    if let Some(tls) = tls {
        let _ = write!(
            yaml,
            "  tls:\n    certificate: {}\n    key: {}\n",
            q(&tls.cert_pem),
            q(&tls.key_pem)
        );
    }
    if let Some(htpasswd) = htpasswd {
        let _ = write!(
            yaml,
            "auth:\n  htpasswd:\n    realm: releasectl-test\n    path: {}\n",
            q(htpasswd)
        );
    }
    yaml
}
