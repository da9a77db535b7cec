//! Test harness: real servers (Distribution registry, skopeo, oras, kubernetes-validate),
//! docker credential configs, a hostile HTTP server, and a command runner whose failures explain
//! themselves; [`setup`] (a registry and the flags that reach it, raw registry HTTP) and
//! [`world`] (the one GitOps fixture world) for the product tests. `selftest` tests the
//! harness itself.
//!
//! Tests that need a component fail loudly when it is missing, with the command that installs
//! it: a test that skipped silently would let CI pass without testing anything.
//! `scripts/test.sh` installs everything.

pub mod argocd;
pub mod certs;
pub mod cmd;
pub mod cmp;
pub mod docker_config;
pub mod fake_server;
pub mod git;
pub mod http;
pub mod image;
pub mod keys;
pub mod registry;
mod selftest;
pub mod serve;
pub mod setup;
pub mod tar;
pub mod world;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

pub use cmd::{Cmd, Output};
pub use docker_config::DockerConfig;
pub use fake_server::{Action, FakeServer, Request, Response};
pub use http::{HttpResponse, basic_auth, http_get};
pub use registry::{Mode, Registry};

/// The crate root (where `scripts/test.sh` and `.venv` live).
pub fn manifest_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Finds `program` on `PATH`, or panics naming the Debian package that provides it.
pub fn require_command(program: &str, debian_package: &str) -> PathBuf {
    which(program).unwrap_or_else(|| {
        panic!(
            "`{program}` is not installed (PATH={}); install it with \
             `apt-get install -y --no-install-recommends {debian_package}` or run `bash scripts/test.sh`",
            std::env::var("PATH").unwrap_or_default()
        )
    })
}

/// The first executable `program` on `PATH`.
pub fn which(program: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|p| {
            p.metadata()
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// A Python interpreter that can import `PyPI`'s `oras` (0.2.x) and `kubernetes_validate`:
/// `RELEASECTL_TEST_PYTHON` if set, else `<crate>/.venv/bin/python`. Checked once per process;
/// panics with the install command if unusable.
/// The documents of a YAML stream as PyYAML (a YAML 1.1 reader, as Kubernetes tooling) reads
/// them.
pub fn python_yaml_documents(stream: &[u8]) -> Vec<serde_json::Value> {
    let parsed = Cmd::new(python())
        .args([
            "-c",
            "import sys, json, yaml\nprint(json.dumps(list(yaml.safe_load_all(sys.stdin))))",
        ])
        .stdin(stream.to_vec())
        .run();
    parsed.assert_success();
    serde_json::from_slice(&parsed.stdout).expect("python printed JSON")
}

pub fn python() -> &'static Path {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON.get_or_init(|| {
        let python = std::env::var_os("RELEASECTL_TEST_PYTHON")
            .map_or_else(|| manifest_dir().join(".venv/bin/python"), PathBuf::from);
        let install = format!(
            "python3 -m venv {venv} && {venv}/bin/pip install 'oras==0.2.*' 'kubernetes-validate==1.37.*' 'cryptography==46.*' \
             (or run `bash scripts/test.sh`)",
            venv = manifest_dir().join(".venv").display()
        );
        assert!(
            python.exists(),
            "no Python for the oras/kubernetes-validate tests at {}; set RELEASECTL_TEST_PYTHON or run: {install}",
            python.display()
        );
        let out = Cmd::new(&python)
            .args([
                "-c",
                "import oras.client, kubernetes_validate, importlib.metadata as m; print(m.version('oras'))",
            ])
            .run();
        if !out.success() {
            out.fail(&format!(
                "{} cannot import oras and kubernetes_validate; run: {install}",
                python.display()
            ));
        }
        python
    })
}

/// `python -m kubernetes_validate ARGS` (e.g. `--strict -k 1.33.0 file.yaml`, or `-` for stdin).
pub fn kubernetes_validate() -> Cmd {
    Cmd::new(python()).args(["-m", "kubernetes_validate"])
}

/// A `skopeo` command with a permissive signature policy written by the harness (so copies do
/// not depend on the machine's `/etc/containers/policy.json`). Add the subcommand and flags.
pub fn skopeo_cmd() -> Cmd {
    static POLICY: OnceLock<PathBuf> = OnceLock::new();
    require_command("skopeo", "skopeo");
    let policy = POLICY.get_or_init(|| {
        let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join("skopeo-policy.json");
        std::fs::write(&path, r#"{"default":[{"type":"insecureAcceptAnything"}]}"#)
            .expect("write skopeo policy");
        path
    });
    Cmd::new("skopeo").arg(format!("--policy={}", policy.display()))
}

/// Runs `skopeo ARGS` (see [`skopeo_cmd`]); assert on the result.
pub fn skopeo<I, S>(args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    skopeo_cmd().args(args).run()
}

/// Standard base64 with padding (docker `auths`, HTTP basic auth).
pub fn base64(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i)) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A fresh temp dir named for the harness (removed on drop).
pub fn temp_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("releasectl-test-")
        .tempdir()
        .expect("create temp dir")
}

/// Runs `check` on every case, then fails naming each case that failed: a table-driven test
/// reports which case broke (its panic is printed above) and still runs the others.
#[track_caller]
pub fn each_case<C: std::fmt::Debug>(cases: &[C], check: impl Fn(&C)) {
    let failed: Vec<String> = cases
        .iter()
        .filter(|case| {
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(case))).is_err()
        })
        .map(|case| format!("{case:?}"))
        .collect();
    assert!(failed.is_empty(), "failing cases: {failed:#?}");
}
