//! Helpers shared by the product tests: a registry with the flags and credentials that reach
//! it, `release create` with its result parsed, and raw registry HTTP for building and
//! tampering with images behind the product's back.
//!
//! The raw helpers speak plain HTTP only (std `TcpStream`): tamper tests run against the plain
//! registry, so what they push is exactly the bytes they wrote.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::{Cmd, DockerConfig, HttpResponse, Mode, Output, Registry};
use crate::support;

pub use super::image::{
    INDEX_MEDIA_TYPE, MANIFEST_MEDIA_TYPE, METADATA_MEDIA_TYPE, PROJECT, REPOSITORY,
    RESOURCES_MEDIA_TYPE, REVISION,
};

/// The path of the release image inside the registry.
pub const IMAGE_PATH: &str = "company/monorepo/auth-service";
pub const COMMIT_A: &str = super::image::COMMIT;
pub const COMMIT_B: &str = super::image::OTHER_COMMIT;
/// 2023-11-14T22:13:20Z
pub const EPOCH: &str = "1700000000";
pub const EPOCH_RFC3339: &str = "2023-11-14T22:13:20Z";

/// `sha256:<hex>` of `bytes`.
pub fn sha256(bytes: &[u8]) -> String {
    super::image::digest(bytes)
}

/// The checked-in example release's manifests (4 objects in 3 files).
pub fn fixture_manifests() -> PathBuf {
    support::manifest_dir().join("fixtures/manifests/auth-service")
}

/// A temp dir with one ConfigMap per `names` entry, in `configmaps.yaml`: a release whose
/// contents (and so digests) differ from the fixture's.
pub fn write_configmaps(names: &[&str]) -> tempfile::TempDir {
    let dir = support::temp_dir();
    let docs: Vec<String> = names
        .iter()
        .map(|n| {
            format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {n}\n  namespace: auth\ndata:\n  k: v\n")
        })
        .collect();
    std::fs::write(dir.path().join("configmaps.yaml"), docs.join("---\n")).unwrap();
    dir
}

/// How the test hands credentials to the product.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Creds {
    /// `auths[host]` in `config.json`.
    Auths,
    /// `credHelpers[host] = "testhelper"`.
    Helper,
    /// `credsStore = "teststore"`.
    Store,
}

/// A running registry, the docker config that holds its credentials (an empty one for the
/// modes without auth), and how `releasectl` reaches it.
pub struct Setup {
    pub registry: Registry,
    pub docker: DockerConfig,
}

impl Setup {
    /// A registry in `mode`; credentials, if the mode has any, in `auths`.
    pub fn start(mode: Mode) -> Self {
        Self::start_with(mode, Creds::Auths)
    }

    pub fn plain() -> Self {
        Self::start(Mode::Plain)
    }

    /// A registry in `mode`; credentials, if the mode has any, handed over as `creds` says.
    pub fn start_with(mode: Mode, creds: Creds) -> Self {
        let registry = Registry::start(mode);
        let host = registry.host();
        let mut docker = DockerConfig::new();
        if let Some((user, pass)) = registry.credentials() {
            docker = match creds {
                Creds::Auths => docker.auth(&host, user, pass),
                Creds::Helper => docker.cred_helper(&host, "testhelper", user, pass),
                Creds::Store => {
                    docker
                        .creds_store("teststore")
                        .helper_knows("teststore", &host, user, pass)
                }
            };
        }
        Self { registry, docker }
    }

    pub fn host(&self) -> String {
        self.registry.host()
    }

    /// `HOST/PATH:TAG`.
    pub fn image(&self, path: &str, tag: &str) -> String {
        format!("{}/{path}:{tag}", self.host())
    }

    /// `releasectl inspect -o json IMAGE`, asserting success: the output and its JSON.
    pub fn inspect_json(&self, image: &str) -> (Output, Value) {
        let out = self
            .releasectl()
            .args(["inspect", "-o", "json", image])
            .run();
        out.assert_success();
        let doc = stdout_json(&out);
        (out, doc)
    }

    /// `releasectl` with the flags that reach this registry: `--insecure-registry HOST` for
    /// plain HTTP, `--ca-file CA` for TLS, and `DOCKER_CONFIG` (plus its helpers on `PATH`).
    pub fn releasectl(&self) -> Cmd {
        let cmd = Cmd::releasectl().docker_config(&self.docker);
        match self.registry.mode() {
            Mode::Plain | Mode::Basic { .. } => cmd.arg("--insecure-registry").arg(self.host()),
            Mode::Tls | Mode::TlsBasic { .. } => {
                cmd.arg("--ca-file").arg(self.registry.ca_pem_path())
            }
        }
    }

    /// `release create` of `manifests` as `company/monorepo/auth-service` at `commit`, with
    /// `SOURCE_DATE_EPOCH` fixed; panics unless it succeeds.
    pub fn create(&self, commit: &str, manifests: &Path) -> Created {
        self.create_at(IMAGE_PATH, commit, manifests)
    }

    /// As [`Setup::create`], for another `repository/project` path.
    pub fn create_at(&self, image_path: &str, commit: &str, manifests: &Path) -> Created {
        let (repository, project) = image_path.rsplit_once('/').expect("repository/project");
        let out = self
            .releasectl()
            .args(["--registry", &self.host(), "-o", "json"])
            .args(create_args(repository, project, commit, manifests))
            .env("SOURCE_DATE_EPOCH", EPOCH)
            .run();
        Created::parse(out)
    }

    /// Authorization header for raw requests, in the auth modes.
    fn auth_header(&self) -> Option<String> {
        self.registry
            .credentials()
            .map(|(u, p)| support::basic_auth(u, p))
    }

    /// GET a manifest as the registry stores it (plain HTTP only).
    pub fn get_manifest(&self, path: &str, reference: &str) -> Vec<u8> {
        let accept = format!("{MANIFEST_MEDIA_TYPE}, {INDEX_MEDIA_TYPE}");
        let resp = self.raw(
            "GET",
            &format!("/v2/{path}/manifests/{reference}"),
            &[("Accept", &accept)],
            b"",
        );
        assert_eq!(resp.status, 200, "GET manifest: {}", resp.body_str());
        resp.body
    }

    /// GET a blob (plain HTTP only).
    pub fn get_blob(&self, path: &str, digest: &str) -> Vec<u8> {
        let resp = self.raw("GET", &format!("/v2/{path}/blobs/{digest}"), &[], b"");
        assert_eq!(resp.status, 200, "GET blob: {}", resp.body_str());
        resp.body
    }

    /// Uploads `bytes` as a blob (POST, then PUT with the digest); returns its digest.
    pub fn push_blob(&self, path: &str, bytes: &[u8]) -> String {
        let digest = sha256(bytes);
        let start = self.raw("POST", &format!("/v2/{path}/blobs/uploads/"), &[], b"");
        assert_eq!(start.status, 202, "start upload: {}", start.body_str());
        let location = start.header("Location").expect("upload Location");
        // Distribution answers with an absolute URL; keep the path and query.
        let location = location
            .strip_prefix(&format!("http://{}", self.host()))
            .unwrap_or(location);
        let sep = if location.contains('?') { '&' } else { '?' };
        let put = self.raw(
            "PUT",
            &format!("{location}{sep}digest={digest}"),
            &[("Content-Type", "application/octet-stream")],
            bytes,
        );
        assert_eq!(put.status, 201, "finish upload: {}", put.body_str());
        digest
    }

    /// PUTs `bytes` as a manifest of `media_type` under `reference`; returns its digest.
    pub fn put_manifest(
        &self,
        path: &str,
        reference: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> String {
        let resp = self.raw(
            "PUT",
            &format!("/v2/{path}/manifests/{reference}"),
            &[("Content-Type", media_type)],
            bytes,
        );
        assert_eq!(resp.status, 201, "PUT manifest: {}", resp.body_str());
        sha256(bytes)
    }

    /// The repositories the registry holds (`/v2/_catalog`).
    pub fn catalog(&self) -> Vec<String> {
        let resp = self.raw("GET", "/v2/_catalog", &[], b"");
        assert_eq!(resp.status, 200, "catalog: {}", resp.body_str());
        let doc: Value = serde_json::from_slice(&resp.body).expect("catalog JSON");
        doc["repositories"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|v| v.as_str().unwrap_or_default().to_owned())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// One plain-HTTP request with a body, authenticated in the auth modes.
    pub fn raw(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> HttpResponse {
        let auth = self.auth_header();
        let mut all: Vec<(&str, &str)> = headers.to_vec();
        if let Some(a) = auth.as_deref() {
            all.push(("Authorization", a));
        }
        http_request(&self.host(), method, path, &all, body)
    }
}

/// Arguments of `release create` (after the global flags).
pub fn create_args(repository: &str, project: &str, commit: &str, manifests: &Path) -> Vec<String> {
    vec![
        "release".into(),
        "create".into(),
        "--repository".into(),
        repository.into(),
        "--project".into(),
        project.into(),
        "--commit".into(),
        commit.into(),
        "--manifests".into(),
        manifests.display().to_string(),
    ]
}

/// [`create_args`] of the fixture's manifests as auth-service of company/monorepo at
/// [`COMMIT_A`].
pub fn fixture_create_args() -> Vec<String> {
    create_args(REPOSITORY, PROJECT, COMMIT_A, &fixture_manifests())
}

/// What `release create -o json` printed.
pub struct Created {
    /// `HOST/PATH:COMMIT@sha256:…`
    pub reference: String,
    pub digest: String,
    pub json: Value,
    pub output: Output,
}

impl Created {
    fn parse(out: Output) -> Self {
        out.assert_success();
        let json: Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| out.fail(&format!("stdout is not JSON: {e}")));
        let digest = json["digest"].as_str().unwrap_or_default().to_owned();
        let reference = json["reference"].as_str().unwrap_or_default().to_owned();
        if !digest.starts_with("sha256:") || !reference.ends_with(&format!("@{digest}")) {
            out.fail("create printed no reference pinned to its digest");
        }
        Self {
            reference,
            digest,
            json,
            output: out,
        }
    }

    /// The reference without its digest (`HOST/PATH:COMMIT`), as a person would type it.
    pub fn tagged(&self) -> &str {
        self.reference
            .split_once('@')
            .map_or(&*self.reference, |(r, _)| r)
    }
}

/// The descriptor of the layer with `media_type` in a manifest.
pub fn layer<'a>(manifest: &'a Value, media_type: &str) -> &'a Value {
    manifest["layers"]
        .as_array()
        .and_then(|layers| layers.iter().find(|l| l["mediaType"] == media_type))
        .unwrap_or_else(|| panic!("no {media_type} layer in {manifest}"))
}

/// Parses JSON stdout, failing with the command's report.
pub fn stdout_json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| out.fail(&format!("stdout is not JSON: {e}")))
}

/// Asserts a failure the way every product failure must look: `code`, nothing on stdout, and
/// each of `needles` on stderr.
#[track_caller]
pub fn assert_fails(out: &Output, code: i32, needles: &[&str]) {
    out.assert_exit(code).assert_stdout_empty();
    for needle in needles {
        out.assert_stderr_contains(needle);
    }
}

/// One plain-HTTP request (see [`super::image::http`]).
pub use super::image::http as http_request;
