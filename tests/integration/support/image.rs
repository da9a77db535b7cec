//! Release images built by the tests, independently of the product's own writer, with knobs to
//! make them hostile one property at a time.
//!
//! Invariants:
//! - by default an [`ImageBuilder`] produces a valid release (format v1, docs/format.md): every
//!   descriptor has the right digest and size, the metadata records the resources layer and its
//!   files, the revision annotation is the commit. Each knob breaks exactly one thing, so a test
//!   that turns one knob proves the product refuses *that*;
//! - nothing here uses the product's code: digests come from `sha2`, tarballs from [`Tar`]
//!   (`support::tar`, the suite's one raw tar writer, since the `tar` crate refuses `..` and
//!   absolute names), gzip from `flate2`;
//! - an image can be written to an OCI layout root (the product's `oci:` registry) or pushed to a
//!   real registry over plain HTTP; tampered blobs are written to the layout as they are, and
//!   into a registry's storage after the push (Distribution verifies digests on upload but serves
//!   blobs as they lie on disk).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use flate2::{Compression, GzBuilder};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use super::Registry;

pub const REPOSITORY: &str = "company/monorepo";
pub const PROJECT: &str = "auth-service";
pub const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";
pub const OTHER_COMMIT: &str = "89abcdef0123456789abcdef0123456789abcdef";

pub const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
pub const INDEX_MEDIA_TYPE: &str = "application/vnd.oci.image.index.v1+json";
pub const CONFIG_MEDIA_TYPE: &str = "application/vnd.releasectl.release.config.v1+json";
pub const METADATA_MEDIA_TYPE: &str = "application/vnd.releasectl.release.metadata.v1+json";
pub const RESOURCES_MEDIA_TYPE: &str = "application/vnd.releasectl.release.resources.v1.tar+gzip";
pub const REVISION: &str = "org.opencontainers.image.revision";
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// `sha256:<hex>` of `bytes`.
pub fn digest(bytes: &[u8]) -> String {
    format!("sha256:{}", sha256_hex(bytes))
}

/// 64 lower-case hex digits of SHA-256.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .fold(String::with_capacity(64), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// An OCI descriptor for `bytes`.
pub fn descriptor(media_type: &str, bytes: &[u8]) -> Value {
    json!({"mediaType": media_type, "digest": digest(bytes), "size": bytes.len()})
}

// ---- tar: the raw writer lives in `support::tar` -----------------------------------------

pub use super::tar::{Tar, pax_records, tar_header, typeflag};

/// One gzip member of `bytes` (mtime 0, no name).
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = GzBuilder::new()
        .mtime(0)
        .write(Vec::new(), Compression::default());
    enc.write_all(bytes).expect("gzip into memory");
    enc.finish().expect("gzip into memory")
}

/// One gzip member of `prefix` followed by `zeros` zero bytes, streamed through the encoder in
/// 1 MiB chunks so that a bomb never sits uncompressed in the test's memory.
pub fn gzip_zeros(prefix: &[u8], zeros: u64) -> Vec<u8> {
    let mut enc = GzBuilder::new()
        .mtime(0)
        .write(Vec::new(), Compression::best());
    enc.write_all(prefix).expect("gzip into memory");
    let chunk = vec![0u8; 1 << 20];
    let mut left = zeros;
    while left > 0 {
        let n = left.min(chunk.len() as u64) as usize;
        enc.write_all(&chunk[..n]).expect("gzip into memory");
        left -= n as u64;
    }
    enc.finish().expect("gzip into memory")
}

/// A tar.gz of regular files, as a well-behaved writer would make it.
pub fn tar_gz(files: &[(String, Vec<u8>)]) -> Vec<u8> {
    let tar = files
        .iter()
        .fold(Tar::new(), |t, (p, d)| t.file(p, d))
        .finish();
    gzip(&tar)
}

// ---- manifests used as release contents -----------------------------------------------------

pub const CONFIGMAP_YAML: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n  namespace: shop\ndata:\n  mode: fast\n";
pub const SERVICE_YAML: &str = "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\n  namespace: shop\nspec:\n  ports:\n  - port: 80\n    targetPort: 8080\n  selector:\n    app: web\n";

/// Two valid files: a ConfigMap and a Service.
pub fn default_files() -> Vec<(String, Vec<u8>)> {
    vec![
        ("configmap.yaml".to_owned(), CONFIGMAP_YAML.into()),
        ("service.yaml".to_owned(), SERVICE_YAML.into()),
    ]
}

// ---- images ---------------------------------------------------------------------------------

/// Which blob of an image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    Manifest,
    Config,
    Metadata,
    Resources,
}

type Edit = Box<dyn Fn(&mut Value)>;
type BytesEdit = Box<dyn Fn(&mut Vec<u8>)>;

/// Builds a release image; see the module documentation.
pub struct ImageBuilder {
    repository: String,
    project: String,
    commit: String,
    files: Vec<(String, Vec<u8>)>,
    resources: Option<Vec<u8>>,
    config_edits: Vec<Edit>,
    metadata_edits: Vec<Edit>,
    manifest_edits: Vec<Edit>,
    manifest_bytes: Option<Vec<u8>>,
    extra_blobs: Vec<Vec<u8>>,
    tampers: Vec<(Part, BytesEdit)>,
}

impl Default for ImageBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl ImageBuilder {
    /// A valid release of [`default_files`] for `company/monorepo/auth-service` at [`COMMIT`].
    pub fn new() -> Self {
        Self {
            repository: REPOSITORY.to_owned(),
            project: PROJECT.to_owned(),
            commit: COMMIT.to_owned(),
            files: default_files(),
            resources: None,
            config_edits: Vec::new(),
            metadata_edits: Vec::new(),
            manifest_edits: Vec::new(),
            manifest_bytes: None,
            extra_blobs: Vec::new(),
            tampers: Vec::new(),
        }
    }

    /// The commit everything in the image names (config, metadata, revision annotation).
    #[must_use]
    pub fn commit(mut self, commit: &str) -> Self {
        commit.clone_into(&mut self.commit);
        self
    }

    /// The manifest files: packed into the resources layer (unless [`Self::resources`] gives
    /// the layer's bytes) and recorded in the metadata's `resources.files`.
    #[must_use]
    pub fn files(mut self, files: Vec<(String, Vec<u8>)>) -> Self {
        self.files = files;
        self
    }

    /// One manifest file, `name` with `contents`.
    #[must_use]
    pub fn file(self, name: &str, contents: impl Into<Vec<u8>>) -> Self {
        self.files(vec![(name.to_owned(), contents.into())])
    }

    /// The resources layer's exact bytes (the metadata records their digest and size, so the
    /// digest checks pass and the archive reader is what has to refuse them).
    #[must_use]
    pub fn resources(mut self, bytes: Vec<u8>) -> Self {
        self.resources = Some(bytes);
        self
    }

    #[must_use]
    pub fn edit_config(mut self, f: impl Fn(&mut Value) + 'static) -> Self {
        self.config_edits.push(Box::new(f));
        self
    }

    #[must_use]
    pub fn edit_metadata(mut self, f: impl Fn(&mut Value) + 'static) -> Self {
        self.metadata_edits.push(Box::new(f));
        self
    }

    /// Edits the manifest JSON after its descriptors were filled in.
    #[must_use]
    pub fn edit_manifest(mut self, f: impl Fn(&mut Value) + 'static) -> Self {
        self.manifest_edits.push(Box::new(f));
        self
    }

    /// Replaces the manifest's bytes (the pointer then pins the digest of these bytes).
    #[must_use]
    pub fn manifest_bytes(mut self, bytes: Vec<u8>) -> Self {
        self.manifest_bytes = Some(bytes);
        self
    }

    /// A further blob to store (e.g. for an extra layer added by [`Self::edit_manifest`]).
    #[must_use]
    pub fn extra_blob(mut self, bytes: Vec<u8>) -> Self {
        self.extra_blobs.push(bytes);
        self
    }

    /// Stores `part` changed by `f` under its original digest: descriptors stay as they were.
    #[must_use]
    pub fn tamper(mut self, part: Part, f: impl Fn(&mut Vec<u8>) + 'static) -> Self {
        self.tampers.push((part, Box::new(f)));
        self
    }

    pub fn build(&self) -> Image {
        let resources = self
            .resources
            .clone()
            .unwrap_or_else(|| tar_gz(&self.files));
        let mut config = json!({
            "format_version": 1,
            "repository": self.repository,
            "project": self.project,
            "commit": self.commit,
        });
        for edit in &self.config_edits {
            edit(&mut config);
        }
        let config = serde_json::to_vec(&config).expect("json");

        let files: Vec<Value> = self
            .files
            .iter()
            .map(|(path, data)| {
                let documents = String::from_utf8_lossy(data)
                    .matches("kind:")
                    .count()
                    .max(1);
                json!({"path": path, "sha256": sha256_hex(data), "size": data.len(), "documents": documents})
            })
            .collect();
        let uncompressed: usize = self.files.iter().map(|(_, d)| d.len()).sum();
        let mut metadata = json!({
            "format_version": 1,
            "release": {
                "repository": self.repository,
                "project": self.project,
                "commit": self.commit,
                "number": 7,
                "aliases": [{"alias": "v1.0.0", "type": "tag"}],
                "created_at": "2026-11-22T10:30:00Z",
            },
            "trigger": {"type": "tag", "branch": "main", "tag": "auth-service/v1.0.0", "triggered_by": "ci@example.com"},
            "source": {"commit": self.commit, "author": "Alice <alice@example.com>", "message": "test",
                       "committed_at": "2026-11-22T10:00:00Z", "repository_url": "https://git.example.com/company/monorepo"},
            "artifacts": [],
            "resources": {
                "layer_digest": digest(&resources),
                "layer_size": resources.len(),
                "uncompressed_size": uncompressed,
                "documents": files.len(),
                "files": files,
                "objects": objects_record(&self.files),
            },
        });
        for edit in &self.metadata_edits {
            edit(&mut metadata);
        }
        let metadata = serde_json::to_vec(&metadata).expect("json");

        let mut manifest = json!({
            "schemaVersion": 2,
            "mediaType": MANIFEST_MEDIA_TYPE,
            "config": descriptor(CONFIG_MEDIA_TYPE, &config),
            "layers": [
                descriptor(METADATA_MEDIA_TYPE, &metadata),
                descriptor(RESOURCES_MEDIA_TYPE, &resources),
            ],
            "annotations": {
                REVISION: self.commit,
                "org.opencontainers.image.created": "2026-11-22T10:30:00Z",
                "org.opencontainers.image.title": self.project,
            },
        });
        for edit in &self.manifest_edits {
            edit(&mut manifest);
        }
        let manifest = self
            .manifest_bytes
            .clone()
            .unwrap_or_else(|| serde_json::to_vec(&manifest).expect("json"));

        let mut blobs = BTreeMap::new();
        for bytes in [&config, &metadata, &resources]
            .into_iter()
            .chain(&self.extra_blobs)
        {
            blobs.insert(digest(bytes), bytes.clone());
        }
        let mut stored = BTreeMap::new();
        for (part, f) in &self.tampers {
            let original = match part {
                Part::Manifest => &manifest,
                Part::Config => &config,
                Part::Metadata => &metadata,
                Part::Resources => &resources,
            };
            let mut bytes = stored
                .get(&digest(original))
                .cloned()
                .unwrap_or_else(|| original.clone());
            f(&mut bytes);
            stored.insert(digest(original), bytes);
        }
        Image {
            repository: self.repository.clone(),
            project: self.project.clone(),
            commit: self.commit.clone(),
            manifest_digest: digest(&manifest),
            manifest_media_type: media_type_of(&manifest),
            manifest,
            config,
            metadata,
            resources,
            blobs,
            tampered: stored,
        }
    }
}

/// The objects record (`resources.objects`) of `files`, as a writer makes it: each document's
/// apiVersion, kind, namespace (absent, null or empty: null) and name (or generate_name). A
/// file or document this plain reader cannot read adds nothing: the product refuses it before
/// it compares the record.
fn objects_record(files: &[(String, Vec<u8>)]) -> Vec<Value> {
    let mut out = Vec::new();
    for (path, data) in files {
        let Ok(text) = std::str::from_utf8(data) else {
            continue;
        };
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let documents: Vec<Value> = if Path::new(path).extension().is_some_and(|e| e == "json") {
            serde_json::from_str(text)
                .map(|v| vec![v])
                .unwrap_or_default()
        } else {
            serde_saphyr::from_multiple(text).unwrap_or_default()
        };
        for doc in &documents {
            let metadata = &doc["metadata"];
            let (Some(api_version), Some(kind)) =
                (doc["apiVersion"].as_str(), doc["kind"].as_str())
            else {
                continue;
            };
            let namespace = metadata["namespace"].as_str().filter(|s| !s.is_empty());
            let mut record =
                json!({"api_version": api_version, "kind": kind, "namespace": namespace});
            // A name wins over a generateName, as in Kubernetes.
            match (metadata["name"].as_str(), metadata["generateName"].as_str()) {
                (Some(name), _) => record["name"] = json!(name),
                (None, Some(prefix)) => record["generate_name"] = json!(prefix),
                (None, None) => continue,
            }
            out.push(record);
        }
    }
    out
}

/// The `mediaType` field of a manifest or index, or the manifest type.
fn media_type_of(manifest: &[u8]) -> String {
    serde_json::from_slice::<Value>(manifest)
        .ok()
        .and_then(|v| v["mediaType"].as_str().map(str::to_owned))
        .unwrap_or_else(|| MANIFEST_MEDIA_TYPE.to_owned())
}

/// A built image: the true bytes of every part, and what is stored instead where tampered.
#[derive(Clone, Debug)]
pub struct Image {
    pub repository: String,
    pub project: String,
    pub commit: String,
    pub manifest: Vec<u8>,
    pub manifest_digest: String,
    pub manifest_media_type: String,
    pub config: Vec<u8>,
    pub metadata: Vec<u8>,
    pub resources: Vec<u8>,
    /// Blobs by digest (config, metadata, resources, extras), as they really are.
    pub blobs: BTreeMap<String, Vec<u8>>,
    /// Bytes stored under a digest they do not have.
    pub tampered: BTreeMap<String, Vec<u8>>,
}

impl Image {
    /// `company/monorepo/auth-service`: the image's path in a registry or layout root.
    pub fn path(&self) -> String {
        format!("{}/{}", self.repository, self.project)
    }

    /// An image index (OCI) whose only entry is this image's manifest.
    pub fn index(&self) -> Vec<u8> {
        let mut entry = descriptor(&self.manifest_media_type, &self.manifest);
        entry["platform"] = json!({"architecture": "amd64", "os": "linux"});
        serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": INDEX_MEDIA_TYPE,
            "manifests": [entry],
        }))
        .expect("json")
    }

    /// Writes the image into the OCI layout `<root>/<repository>/<project>`, its manifest
    /// tagged with the commit. Returns the layout directory.
    pub fn write_layout(&self, root: &Path) -> PathBuf {
        self.write_layout_tagged(root, &self.commit.clone())
    }

    /// As [`Self::write_layout`], tagged `tag`.
    pub fn write_layout_tagged(&self, root: &Path, tag: &str) -> PathBuf {
        let dir = root.join(&self.repository).join(&self.project);
        let blobs = dir.join("blobs/sha256");
        std::fs::create_dir_all(&blobs).expect("create layout");
        std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#)
            .expect("write oci-layout");
        let all = self
            .blobs
            .iter()
            .chain(std::iter::once((&self.manifest_digest, &self.manifest)));
        for (d, bytes) in all {
            let bytes = self.tampered.get(d).unwrap_or(bytes);
            std::fs::write(blobs.join(hex_of(d)), bytes).expect("write blob");
        }
        let mut entry = descriptor(&self.manifest_media_type, &self.manifest);
        entry["annotations"] = json!({ REF_NAME: tag });
        let index =
            json!({"schemaVersion": 2, "mediaType": INDEX_MEDIA_TYPE, "manifests": [entry]});
        std::fs::write(
            dir.join("index.json"),
            serde_json::to_vec_pretty(&index).expect("json"),
        )
        .expect("write index.json");
        dir
    }

    /// Pushes the image to `registry` (plain HTTP, no auth) as `<repository>/<project>:<tag>`,
    /// then overwrites tampered blobs in the registry's storage.
    pub fn push(&self, registry: &Registry, tag: &str) {
        let host = registry.host();
        let path = self.path();
        for bytes in self.blobs.values() {
            push_blob(&host, &path, bytes);
        }
        put_manifest(&host, &path, tag, &self.manifest_media_type, &self.manifest);
        for (d, bytes) in &self.tampered {
            let file = registry.blob_path(d);
            assert!(file.is_file(), "{d} is not in the registry's storage");
            std::fs::write(file, bytes).expect("tamper with registry storage");
        }
    }
}

fn hex_of(digest: &str) -> &str {
    digest.strip_prefix("sha256:").expect("sha256 digest")
}

// ---- raw registry HTTP (plain, no auth) -----------------------------------------------------

/// One plain-HTTP request with a body; returns status, headers and body.
pub fn http(
    host: &str,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> super::HttpResponse {
    let mut stream = TcpStream::connect(host).unwrap_or_else(|e| panic!("connect {host}: {e}"));
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("read timeout");
    let mut head = format!(
        "{method} {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        let _ = write!(head, "{k}: {v}\r\n");
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).expect("send head");
    stream.write_all(body).expect("send body");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("read response");
    super::http::parse_response(&raw).unwrap_or_else(|| {
        panic!(
            "{method} {target}: not an HTTP response: {:?}",
            String::from_utf8_lossy(&raw)
        )
    })
}

/// Uploads a blob (monolithic: POST then PUT with the digest); returns its digest.
pub fn push_blob(host: &str, path: &str, bytes: &[u8]) -> String {
    let d = digest(bytes);
    let start = http(
        host,
        "POST",
        &format!("/v2/{path}/blobs/uploads/"),
        &[],
        b"",
    );
    assert_eq!(start.status, 202, "POST upload: {}", start.body_str());
    let location = start.header("location").expect("upload location");
    let target = location
        .strip_prefix(&format!("http://{host}"))
        .unwrap_or(location);
    let sep = if target.contains('?') { '&' } else { '?' };
    let put = http(
        host,
        "PUT",
        &format!("{target}{sep}digest={d}"),
        &[("Content-Type", "application/octet-stream")],
        bytes,
    );
    assert_eq!(put.status, 201, "PUT blob {d}: {}", put.body_str());
    d
}

/// Stores manifest bytes as they are under `reference` (a tag or digest).
pub fn put_manifest(host: &str, path: &str, reference: &str, media_type: &str, bytes: &[u8]) {
    let put = http(
        host,
        "PUT",
        &format!("/v2/{path}/manifests/{reference}"),
        &[("Content-Type", media_type)],
        bytes,
    );
    assert_eq!(
        put.status,
        201,
        "PUT manifest {reference}: {}",
        put.body_str()
    );
}

// ---- pointers -------------------------------------------------------------------------------

/// A `ReleasePointer` document.
#[derive(Clone, Debug)]
pub struct Pointer {
    pub repository: String,
    pub project: String,
    pub release: String,
    pub digest: Option<String>,
    pub registry: Option<String>,
}

impl Pointer {
    /// A pointer to `image`, pinned to its manifest digest.
    pub fn to(image: &Image) -> Self {
        Self {
            repository: image.repository.clone(),
            project: image.project.clone(),
            release: image.commit.clone(),
            digest: Some(image.manifest_digest.clone()),
            registry: None,
        }
    }

    /// A pointer to `company/monorepo/auth-service` at `commit`, without a digest.
    pub fn unpinned(commit: &str) -> Self {
        Self {
            repository: REPOSITORY.to_owned(),
            project: PROJECT.to_owned(),
            release: commit.to_owned(),
            digest: None,
            registry: None,
        }
    }

    #[must_use]
    pub fn digest(mut self, digest: Option<&str>) -> Self {
        self.digest = digest.map(str::to_owned);
        self
    }

    #[must_use]
    pub fn registry(mut self, registry: &str) -> Self {
        self.registry = Some(registry.to_owned());
        self
    }

    pub fn yaml(&self) -> String {
        let mut out = format!(
            "apiVersion: releasectl.dev/v1alpha1\nkind: ReleasePointer\nmetadata:\n  name: {}\n  annotations:\n    releasectl.dev/deployed-by: alice@example.com\nspec:\n  repository: {}\n  project: {}\n  release: {}\n",
            self.project, self.repository, self.project, self.release
        );
        if let Some(d) = &self.digest {
            let _ = writeln!(out, "  digest: {d}");
        }
        if let Some(r) = &self.registry {
            let _ = writeln!(out, "  registry: {r}");
        }
        out
    }
}
