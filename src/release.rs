//! The verifying release reader: the one place that turns a reference into a [`Release`]
//! (docs/design.md §5 rule 2; every step of docs/format.md §7).
//!
//! Order matters: manifest (capped, digest-checked) → descriptors located and declared sizes
//! checked against caps → config and metadata blobs (size and digest) → cross-checks between
//! manifest, config, metadata and what was asked for → resources blob (size and digest, and
//! the metadata's record of it) → the files against the metadata's record → the objects
//! against the metadata's record. Only a [`Release`] that came through all of it exists, and
//! its parts can only be read: nothing downstream can swap one.
//!
//! This module does I/O through an [`oci::Store`](crate::oci::Store) and takes what it needs
//! (store options, archive limits, what is expected) as parameters; it knows nothing of the
//! command line or the settings.

use std::io::Write;

use crate::archive::{self, Limits};
use crate::digest::{Digest, sha256_hex};
use crate::format::{self, Expected, Located, Metadata, ReleaseConfig};
use crate::ids::ReleaseId;
use crate::manifests::{self, Document, ObjectName, ObjectRef};
use crate::oci::{ImageRef, OciError, Store, StoreOptions};

#[derive(Debug, thiserror::Error)]
pub enum ReleaseError {
    #[error(transparent)]
    Oci(#[from] OciError),
    #[error("{what}")]
    Archive {
        what: String,
        #[source]
        source: archive::ArchiveError,
    },
    #[error("{what}: {reason}")]
    Contents { what: String, reason: String },
}

impl ReleaseError {
    /// Verification failures (exit 3) as opposed to remote failures (exit 5).
    #[must_use]
    pub fn is_verification(&self) -> bool {
        match self {
            Self::Oci(e) => e.is_verification(),
            Self::Archive { .. } | Self::Contents { .. } => true,
        }
    }
}

impl crate::exit::Classify for ReleaseError {
    fn exit(&self) -> crate::exit::Exit {
        match self {
            Self::Oci(o) => crate::exit::Classify::exit(o),
            _ => crate::exit::Exit::Verify,
        }
    }
}

/// A release's manifest, config and metadata, verified and cross-checked; the resources
/// layer not fetched. Enough to plan a deploy.
#[derive(Debug, Clone)]
pub struct Head {
    image: ImageRef,
    manifest_digest: Digest,
    manifest_bytes: Vec<u8>,
    located: Located,
    config_bytes: Vec<u8>,
    config: ReleaseConfig,
    metadata_bytes: Vec<u8>,
    metadata: Metadata,
}

impl Head {
    /// The reference it was read from, pinned to its manifest digest.
    #[must_use]
    pub fn image(&self) -> &ImageRef {
        &self.image
    }

    #[must_use]
    pub fn manifest_digest(&self) -> &Digest {
        &self.manifest_digest
    }

    /// The manifest exactly as stored (its sha256 is [`Self::manifest_digest`]).
    #[must_use]
    pub fn manifest_bytes(&self) -> &[u8] {
        &self.manifest_bytes
    }

    /// The manifest and the descriptors of the config and the two release layers.
    #[must_use]
    pub fn located(&self) -> &Located {
        &self.located
    }

    #[must_use]
    pub fn config(&self) -> &ReleaseConfig {
        &self.config
    }

    #[must_use]
    pub fn config_bytes(&self) -> &[u8] {
        &self.config_bytes
    }

    #[must_use]
    pub fn metadata(&self) -> &Metadata {
        &self.metadata
    }

    #[must_use]
    pub fn metadata_bytes(&self) -> &[u8] {
        &self.metadata_bytes
    }

    /// Which release this is (config, metadata and revision annotation agree on it).
    #[must_use]
    pub fn id(&self) -> ReleaseId {
        ReleaseId {
            repository: self.config.repository.clone(),
            project: self.config.project.clone(),
            commit: self.config.commit.clone(),
        }
    }

    /// The name of the resources layer in messages.
    fn resources_name(&self) -> String {
        format!("resources of {}", self.image)
    }
}

/// A release image whose manifest, config, metadata and resources were all verified, the
/// files and objects of its resources layer included.
#[derive(Debug)]
pub struct Release {
    head: Head,
    resources: Vec<u8>,
    manifests: Manifests,
}

impl std::ops::Deref for Release {
    type Target = Head;

    fn deref(&self) -> &Head {
        &self.head
    }
}

impl Release {
    /// The resources layer, compressed, exactly as stored.
    #[must_use]
    pub fn resources_layer(&self) -> &[u8] {
        &self.resources
    }

    /// The files and documents of the resources layer.
    #[must_use]
    pub fn manifests(&self) -> &Manifests {
        &self.manifests
    }

    /// Keeps only the files and documents (the rest can be large and is no longer needed).
    #[must_use]
    pub fn into_manifests(self) -> Manifests {
        self.manifests
    }
}

/// The checked documents of a release's resources layer in output order (docs/format.md
/// §5.2), with the files their text is in: written straight from the decompressed files, never
/// copied into one buffer (they may be hundreds of MB).
#[derive(Debug)]
pub struct Manifests {
    /// Sorted by path.
    files: Vec<archive::File>,
    /// Each with the index of its file in `files`.
    documents: Vec<(usize, Document)>,
}

impl Manifests {
    /// The layer's files, sorted by path, each checked against the metadata's record.
    #[must_use]
    pub fn files(&self) -> &[archive::File] {
        &self.files
    }

    /// The documents, in output order.
    pub fn documents(&self) -> impl Iterator<Item = &Document> {
        self.documents.iter().map(|(_, d)| d)
    }

    /// Writes every document as one YAML stream.
    ///
    /// # Errors
    ///
    /// The writer's.
    pub fn write_to(&self, out: &mut (impl Write + ?Sized)) -> std::io::Result<()> {
        for (i, document) in &self.documents {
            manifests::write_document(out, document, &self.files[*i].data)?;
        }
        Ok(())
    }
}

/// Opens the store `image` lives in and reads the release, as [`read_from`].
///
/// # Errors
///
/// A remote failure (exit 5) or a verification failure (exit 3): see [`ReleaseError`].
pub async fn read(
    image: &ImageRef,
    expected: &Expected,
    options: &StoreOptions,
    limits: &Limits,
) -> Result<Release, ReleaseError> {
    let store = Store::open(image, options)?;
    read_from(&store, image, expected, limits).await
}

/// Fetches the release `image` from `store` and runs every check of docs/format.md §7
/// against `expected` (and `image`'s digest, when it names one).
///
/// # Errors
///
/// A remote failure (exit 5) or a verification failure (exit 3): see [`ReleaseError`].
pub async fn read_from(
    store: &Store,
    image: &ImageRef,
    expected: &Expected,
    limits: &Limits,
) -> Result<Release, ReleaseError> {
    let (head, resources) = fetch_parts(store, image, expected, limits, true).await?;
    let resources = resources.unwrap_or_default();
    let manifests = check_resources(&head, &resources, limits)?;
    Ok(Release {
        head,
        resources,
        manifests,
    })
}

/// Fetches and verifies everything of the release `image` but its resources layer
/// (docs/format.md §7 steps 1–5).
///
/// # Errors
///
/// As [`read_from`].
pub async fn fetch_head(
    store: &Store,
    image: &ImageRef,
    expected: &Expected,
    limits: &Limits,
) -> Result<Head, ReleaseError> {
    Ok(fetch_parts(store, image, expected, limits, false).await?.0)
}

fn parse_blob<T: serde::de::DeserializeOwned>(
    what: &str,
    blob: &'static str,
    bytes: &[u8],
) -> Result<T, OciError> {
    serde_json::from_slice(bytes).map_err(|e| {
        format::FormatError::BadBlob {
            what: what.to_owned(),
            blob,
            reason: e.to_string(),
        }
        .into()
    })
}

/// The manifest first (it names everything else, and a 401 on it settles authentication);
/// then the blobs at once, each checked against its descriptor by the store; then the
/// cross-checks, before anything is used. Fetching the blobs concurrently saves round trips
/// on every cold generate; their sizes were capped by `check_manifest` before any download.
async fn fetch_parts(
    store: &Store,
    image: &ImageRef,
    expected: &Expected,
    limits: &Limits,
    with_resources: bool,
) -> Result<(Head, Option<Vec<u8>>), ReleaseError> {
    let (manifest_bytes, manifest_digest) = store.manifest(image).await?;
    let pinned = image.with_digest(manifest_digest.clone());
    let what = pinned.to_string();
    let located = format::check_manifest(&what, &manifest_bytes, resources_cap(limits))
        .map_err(OciError::from)?;
    let resources = async {
        if with_resources {
            blob(store, &located.resources, "resources", &what)
                .await
                .map(Some)
        } else {
            Ok(None)
        }
    };
    let (config_bytes, metadata_bytes, resources) = tokio::join!(
        blob(store, &located.config, "config", &what),
        blob(store, &located.metadata, "metadata", &what),
        resources
    );
    let config_bytes = config_bytes?;
    let config: ReleaseConfig = parse_blob(&what, "config", &config_bytes)?;
    let metadata_bytes = metadata_bytes?;
    let metadata: Metadata = parse_blob(&what, "metadata", &metadata_bytes)?;
    format::cross_check(&what, &located, &config, &metadata, expected).map_err(OciError::from)?;
    let resources = resources?;
    Ok((
        Head {
            image: pinned,
            manifest_digest,
            manifest_bytes,
            located,
            config_bytes,
            config,
            metadata_bytes,
            metadata,
        },
        resources,
    ))
}

async fn blob(
    store: &Store,
    d: &format::Descriptor,
    name: &str,
    what: &str,
) -> Result<Vec<u8>, OciError> {
    store
        .blob(&d.digest, d.size, &format!("{name} blob of {what}"))
        .await
}

/// The largest compressed resources layer worth downloading under `limits`: gzip can make
/// incompressible input slightly larger, never by more than a small fraction.
#[must_use]
pub fn resources_cap(limits: &Limits) -> u64 {
    limits.max_total_bytes + limits.max_total_bytes / 64 + 64 * 1024
}

/// How many threads hash and scan `bytes` of files: one below 64 KiB (threads cost more than
/// they save there), else every core up to 8.
fn threads_for(bytes: u64) -> usize {
    if bytes < 64 * 1024 {
        return 1;
    }
    std::thread::available_parallelism()
        .map_or(1, std::num::NonZero::get)
        .min(8)
}

/// A file of the resources layer, with its sha256, against the metadata's record of it.
fn check_file(
    file: &archive::File,
    sha256: &str,
    record: &format::FileEntry,
) -> Result<(), String> {
    if file.path != record.path {
        return Err(format!(
            "file \"{}\" is not in the metadata (expected \"{}\")",
            crate::text::excerpt(&file.path),
            crate::text::excerpt(&record.path)
        ));
    }
    if sha256 != record.sha256 || file.data.len() as u64 != record.size {
        return Err(format!(
            "file {}: expected sha256 {} ({} bytes), got {sha256} ({} bytes)",
            crate::text::excerpt(&file.path),
            crate::text::excerpt(&record.sha256),
            record.size,
            file.data.len()
        ));
    }
    Ok(())
}

/// What a file of the layer holds: its sha256 and its documents (or why they are refused).
type Scanned = (String, Result<Vec<Document>, manifests::ManifestError>);

/// Reads the resources layer safely and checks it against the metadata's record
/// (docs/format.md §7 steps 6–8): files (paths, sizes, sha256, total size), then objects.
///
/// Files are hashed and scanned for documents by every core while the layer is still being
/// decompressed (the cost of a cold `generate` of a big release); the result does not depend
/// on how the work was split.
fn check_resources(head: &Head, layer: &[u8], limits: &Limits) -> Result<Manifests, ReleaseError> {
    let what = head.resources_name();
    let contents = |reason: String| ReleaseError::Contents {
        what: what.clone(),
        reason,
    };
    let threads = threads_for(head.metadata.resources.uncompressed_size);
    let (sender, receiver) = std::sync::mpsc::channel::<archive::File>();
    let receiver = std::sync::Mutex::new(receiver);
    let done = std::sync::Mutex::new(std::collections::HashMap::<String, Scanned>::new());
    let drain = || {
        loop {
            // The lock is held only while waiting for the next file.
            let next = receiver.lock().map_or(None, |r| r.recv().ok());
            let Some(file) = next else { break };
            let sha256 = sha256_hex(&file.data);
            let documents = manifests::documents(&file.path, &file.data);
            if let Ok(mut done) = done.lock() {
                done.insert(file.path, (sha256, documents));
            }
        }
    };
    let read = std::thread::scope(|scope| {
        let helpers: Vec<_> = (1..threads).map(|_| scope.spawn(drain)).collect();
        let read = archive::read_with(layer, limits, |file| {
            // A file the helpers cannot take is simply not scanned: caught below.
            let _ = sender.send(file.clone());
        });
        drop(sender);
        crate::log::debug("resources layer decompressed");
        drain();
        for helper in helpers {
            if let Err(panic) = helper.join() {
                std::panic::resume_unwind(panic);
            }
        }
        read
    });
    let files = read.map_err(|source| ReleaseError::Archive {
        what: what.clone(),
        source,
    })?;
    let mut done = done.into_inner().unwrap_or_default();
    let recorded = &head.metadata.resources.files;
    if files.len() != recorded.len() {
        return Err(contents(format!(
            "the layer holds {} files: the metadata records {}",
            files.len(),
            recorded.len()
        )));
    }
    let mut recorded: Vec<&format::FileEntry> = recorded.iter().collect();
    recorded.sort_by(|a, b| a.path.cmp(&b.path));
    let mut scanned = Vec::with_capacity(files.len());
    for (file, record) in files.iter().zip(recorded) {
        let (sha256, documents) = done.remove(&file.path).ok_or_else(|| {
            contents(format!(
                "file {}: not read",
                crate::text::excerpt(&file.path)
            ))
        })?;
        check_file(file, &sha256, record).map_err(contents)?;
        scanned.push(documents);
    }
    let total: u64 = files.iter().map(|f| f.data.len() as u64).sum();
    if total != head.metadata.resources.uncompressed_size {
        return Err(contents(format!(
            "uncompressed size is {total}: the metadata records {}",
            head.metadata.resources.uncompressed_size
        )));
    }
    let mut documents = Vec::new();
    for (i, found) in scanned.into_iter().enumerate() {
        let found = found.map_err(|e| contents(e.to_string()))?;
        documents.extend(found.into_iter().map(|d| (i, d)));
    }
    check_objects(&documents, &head.metadata.resources.objects).map_err(contents)?;
    documents.sort_by(|(_, a), (_, b)| manifests::compare_documents(a, b));
    Ok(Manifests { files, documents })
}

/// The order objects are compared in: (kind, namespace with none first, name), then
/// `api_version`, so that equal lists compare equal whatever order they came in.
fn object_key(o: &ObjectRef) -> (&str, Option<&str>, &ObjectName, &str) {
    (&o.kind, o.namespace.as_deref(), &o.name, &o.api_version)
}

/// The objects the layer holds must be exactly the ones the metadata records
/// (docs/format.md §7 step 8): nothing downstream may trust a record that lies, such as one
/// that calls a ClusterRoleBinding a ConfigMap.
fn check_objects(documents: &[(usize, Document)], recorded: &[ObjectRef]) -> Result<(), String> {
    let mut actual: Vec<ObjectRef> = documents
        .iter()
        .map(|(_, d)| ObjectRef {
            api_version: d.api_version.clone(),
            kind: d.kind.clone(),
            namespace: d.namespace.clone(),
            name: d.name.clone(),
        })
        .collect();
    actual.sort_by(|a, b| object_key(a).cmp(&object_key(b)));
    let mut recorded: Vec<&ObjectRef> = recorded.iter().collect();
    recorded.sort_by(|a, b| object_key(a).cmp(&object_key(b)));
    if actual.len() != recorded.len() {
        return Err(format!(
            "the layer holds {} objects: the metadata records {}",
            actual.len(),
            recorded.len()
        ));
    }
    match actual.iter().zip(recorded).find(|(a, r)| a != r) {
        None => Ok(()),
        Some((a, r)) => Err(format!(
            "the layer holds {}: the metadata records {} in its place",
            show(a),
            show(r)
        )),
    }
}

/// An object's identity for messages: `apiVersion kind namespace/name`, escaped (a
/// `generateName` prefix shows as `prefix* (generateName)`).
fn show(o: &ObjectRef) -> String {
    let name = match &o.namespace {
        Some(ns) => format!("{ns}/{}", o.name),
        None => o.name.to_string(),
    };
    crate::text::excerpt(&format!("{} {} {name}", o.api_version, o.kind))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_work_runs_on_one_thread() {
        assert_eq!(threads_for(1000), 1);
        assert!((1..=8).contains(&threads_for(10 << 20)));
    }

    fn object(api_version: &str, kind: &str, namespace: Option<&str>, name: &str) -> ObjectRef {
        ObjectRef {
            api_version: api_version.into(),
            kind: kind.into(),
            namespace: namespace.map(Into::into),
            name: ObjectName::Name(name.into()),
        }
    }

    fn document(o: &ObjectRef) -> (usize, Document) {
        (
            0,
            Document {
                api_version: o.api_version.clone(),
                kind: o.kind.clone(),
                namespace: o.namespace.clone(),
                name: o.name.clone(),
                source: "a.yaml".into(),
                index: 0,
                body: manifests::Body::Rendered(String::new()),
            },
        )
    }

    #[test]
    fn the_objects_record_must_name_every_object_exactly_in_any_order() {
        let found = [
            object("v1", "ConfigMap", Some("a"), "x"),
            object(
                "rbac.authorization.k8s.io/v1",
                "ClusterRoleBinding",
                None,
                "admin",
            ),
        ];
        let documents: Vec<_> = found.iter().map(document).collect();
        let reversed: Vec<ObjectRef> = found.iter().rev().cloned().collect();
        assert_eq!(check_objects(&documents, &reversed), Ok(()));

        // A record that calls the ClusterRoleBinding a ConfigMap.
        let lying = [found[0].clone(), object("v1", "ConfigMap", None, "admin")];
        let err = check_objects(&documents, &lying).unwrap_err();
        assert!(
            err.contains("ClusterRoleBinding admin") && err.contains("v1 ConfigMap admin"),
            "{err}"
        );
        // Another apiVersion, a missing object, an extra one.
        let moved = [
            found[0].clone(),
            object("v1", "ClusterRoleBinding", None, "admin"),
        ];
        assert!(check_objects(&documents, &moved).is_err());
        assert!(check_objects(&documents, &found[..1]).is_err());
        let extra = [found[0].clone(), found[1].clone(), found[1].clone()];
        assert!(check_objects(&documents, &extra).is_err());
    }
}
