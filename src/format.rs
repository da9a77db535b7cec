//! Release OCI image, format v1 (DESIGN.md §3; the contract is spelled out in docs/format.md).
//!
//! This module holds the wire types (manifest, config, metadata) and the two pure halves of the
//! format: [`build`] turns validated inputs into the exact bytes of an image, and
//! [`check_manifest`] decides whether a manifest is a release manifest and locates its layers.
//! Neither does I/O. Bytes are produced deterministically: same inputs, same digests.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::archive;
use crate::digest::Digest;
use crate::ids::{CommitSha, Project, ReleaseId, Repository};
use crate::manifests::ObjectRef;

pub const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
pub const INDEX_MEDIA_TYPE: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_MANIFEST_MEDIA_TYPE: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST_MEDIA_TYPE: &str =
    "application/vnd.docker.distribution.manifest.list.v2+json";
pub const CONFIG_MEDIA_TYPE: &str = "application/vnd.releasectl.release.config.v1+json";
pub const METADATA_MEDIA_TYPE: &str = "application/vnd.releasectl.release.metadata.v1+json";
pub const RESOURCES_MEDIA_TYPE: &str = "application/vnd.releasectl.release.resources.v1.tar+gzip";

pub const ANNOTATION_REVISION: &str = "org.opencontainers.image.revision";
pub const ANNOTATION_SOURCE: &str = "org.opencontainers.image.source";
pub const ANNOTATION_CREATED: &str = "org.opencontainers.image.created";
pub const ANNOTATION_TITLE: &str = "org.opencontainers.image.title";
pub const ANNOTATION_VERSION: &str = "org.opencontainers.image.version";

/// Layer titles, so that `oras pull` writes the layers under useful names.
pub const METADATA_TITLE: &str = "metadata.json";
pub const RESOURCES_TITLE: &str = "resources.tar.gz";

/// Largest manifest we read. Distribution refuses manifests over 4 MiB; a release manifest is
/// well under 2 KiB.
pub const MAX_MANIFEST_BYTES: u64 = 4 * 1024 * 1024;
/// Largest config blob we read.
pub const MAX_CONFIG_BYTES: u64 = 64 * 1024;
/// Largest metadata blob we read (a 10,000-object release has ~1.5 MiB of metadata).
pub const MAX_METADATA_BYTES: u64 = 16 * 1024 * 1024;

pub const FORMAT_VERSION: u32 = 1;

/// An OCI content descriptor.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub digest: String,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub urls: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// An OCI image manifest, as far as a release needs it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageManifest {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// The config blob: what the image is a release of.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ReleaseConfig {
    pub format_version: u32,
    pub repository: Repository,
    pub project: Project,
    pub commit: CommitSha,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum AliasType {
    Tag,
    Branch,
    Number,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Alias {
    pub alias: String,
    #[serde(rename = "type")]
    pub kind: AliasType,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
#[value(rename_all = "snake_case")]
pub enum TriggerType {
    BranchPush,
    Tag,
    Manual,
}

impl TriggerType {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BranchPush => "branch_push",
            Self::Tag => "tag",
            Self::Manual => "manual",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ReleaseInfo {
    pub repository: Repository,
    pub project: Project,
    pub commit: CommitSha,
    pub number: Option<u64>,
    #[serde(default)]
    pub aliases: Vec<Alias>,
    pub created_at: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Trigger {
    #[serde(rename = "type")]
    pub kind: Option<TriggerType>,
    pub branch: Option<String>,
    pub tag: Option<String>,
    pub triggered_by: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Source {
    pub commit: Option<CommitSha>,
    pub author: Option<String>,
    pub message: Option<String>,
    pub committed_at: Option<String>,
    pub repository_url: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Artifact {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub uri: String,
    pub digest: Option<String>,
    pub tracking_oci_uri: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct FileEntry {
    pub path: String,
    pub sha256: String,
    pub size: u64,
    pub documents: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Resources {
    pub layer_digest: Digest,
    pub layer_size: u64,
    pub uncompressed_size: u64,
    pub documents: usize,
    pub files: Vec<FileEntry>,
    pub objects: Vec<ObjectRef>,
}

/// The metadata layer. Readers ignore unknown fields, so later versions can add some.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Metadata {
    pub format_version: u32,
    pub release: ReleaseInfo,
    pub trigger: Option<Trigger>,
    pub source: Option<Source>,
    #[serde(default)]
    pub artifacts: Vec<Artifact>,
    pub resources: Resources,
}

/// Everything a release image is made of, as bytes ready to push.
#[derive(Debug, Clone)]
pub struct ImageBytes {
    pub manifest: Vec<u8>,
    pub manifest_digest: Digest,
    pub config: Vec<u8>,
    pub metadata: Vec<u8>,
    pub resources: Vec<u8>,
}

impl ImageBytes {
    /// The blobs with their digests: config, metadata, resources.
    #[must_use]
    pub fn blobs(&self) -> [(Digest, &[u8]); 3] {
        [
            (Digest::of(&self.config), &self.config),
            (Digest::of(&self.metadata), &self.metadata),
            (Digest::of(&self.resources), &self.resources),
        ]
    }
}

/// The validated files of a release and what is known about it, ready to be packed.
pub struct Inputs<'a> {
    pub id: &'a ReleaseId,
    /// Manifest files: relative path and contents, already validated.
    pub files: &'a [(String, Vec<u8>)],
    /// Per file: how many documents it holds, in the order of `files`.
    pub documents_per_file: &'a [usize],
    pub objects: Vec<ObjectRef>,
    pub number: Option<u64>,
    pub aliases: Vec<Alias>,
    pub created_at: String,
    pub trigger: Option<Trigger>,
    pub source: Option<Source>,
    pub artifacts: Vec<Artifact>,
}

fn descriptor(media_type: &str, bytes: &[u8], title: Option<&str>) -> Descriptor {
    Descriptor {
        media_type: media_type.to_owned(),
        digest: Digest::of(bytes).to_string(),
        size: bytes.len() as u64,
        urls: None,
        annotations: title
            .map(|t| BTreeMap::from([(ANNOTATION_TITLE.to_owned(), t.to_owned())]))
            .unwrap_or_default(),
    }
}

/// Packs a release: resources layer, metadata, config and manifest, all deterministic.
pub fn build(inputs: Inputs<'_>) -> Result<(ImageBytes, Metadata), archive::ArchiveError> {
    let resources = archive::build(inputs.files)?;
    let files: Vec<FileEntry> = inputs
        .files
        .iter()
        .zip(inputs.documents_per_file)
        .map(|((path, data), &documents)| FileEntry {
            path: path.clone(),
            sha256: crate::digest::sha256_hex(data),
            size: data.len() as u64,
            documents,
        })
        .collect();
    let metadata = Metadata {
        format_version: FORMAT_VERSION,
        release: ReleaseInfo {
            repository: inputs.id.repository.clone(),
            project: inputs.id.project.clone(),
            commit: inputs.id.commit.clone(),
            number: inputs.number,
            aliases: inputs.aliases,
            created_at: inputs.created_at,
        },
        trigger: inputs.trigger,
        source: inputs.source,
        artifacts: inputs.artifacts,
        resources: Resources {
            layer_digest: Digest::of(&resources),
            layer_size: resources.len() as u64,
            uncompressed_size: files.iter().map(|f| f.size).sum(),
            documents: files.iter().map(|f| f.documents).sum(),
            files,
            objects: inputs.objects,
        },
    };
    let config = ReleaseConfig {
        format_version: FORMAT_VERSION,
        repository: inputs.id.repository.clone(),
        project: inputs.id.project.clone(),
        commit: inputs.id.commit.clone(),
    };
    let config = serde_json::to_vec(&config).expect("config serialises");
    let metadata_bytes = serde_json::to_vec(&metadata).expect("metadata serialises");

    let mut annotations = BTreeMap::from([
        (ANNOTATION_REVISION.to_owned(), inputs.id.commit.to_string()),
        (
            ANNOTATION_CREATED.to_owned(),
            metadata.release.created_at.clone(),
        ),
        (ANNOTATION_TITLE.to_owned(), inputs.id.project.to_string()),
    ]);
    if let Some(url) = metadata
        .source
        .as_ref()
        .and_then(|s| s.repository_url.clone())
    {
        annotations.insert(ANNOTATION_SOURCE.to_owned(), url);
    }
    if let Some(first) = metadata.release.aliases.first() {
        annotations.insert(ANNOTATION_VERSION.to_owned(), first.alias.clone());
    }
    let manifest = ImageManifest {
        schema_version: 2,
        media_type: Some(MANIFEST_MEDIA_TYPE.to_owned()),
        config: descriptor(CONFIG_MEDIA_TYPE, &config, None),
        layers: vec![
            descriptor(METADATA_MEDIA_TYPE, &metadata_bytes, Some(METADATA_TITLE)),
            descriptor(RESOURCES_MEDIA_TYPE, &resources, Some(RESOURCES_TITLE)),
        ],
        annotations,
    };
    let manifest = serde_json::to_vec(&manifest).expect("manifest serialises");
    Ok((
        ImageBytes {
            manifest_digest: Digest::of(&manifest),
            manifest,
            config,
            metadata: metadata_bytes,
            resources,
        },
        metadata,
    ))
}

/// Why a manifest is not a valid release manifest.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FormatError {
    #[error("{what} is an image index, not a release image manifest")]
    IsIndex { what: String },
    #[error("{what} is not a valid image manifest: {reason}")]
    NotAManifest { what: String, reason: String },
    #[error("{what} has media type {actual:?}: expected {MANIFEST_MEDIA_TYPE}")]
    ManifestMediaType { what: String, actual: String },
    #[error("{what} has schemaVersion {actual}: expected 2")]
    SchemaVersion { what: String, actual: u32 },
    #[error("{what} has config media type {actual:?}: expected {CONFIG_MEDIA_TYPE}")]
    ConfigMediaType { what: String, actual: String },
    #[error("{what} has {count} layers of type {media_type}: expected exactly one")]
    LayerCount {
        what: String,
        media_type: &'static str,
        count: usize,
    },
    #[error(
        "{what}: descriptor {digest} lists foreign urls {urls:?}: releases are fetched only from their registry"
    )]
    ForeignUrls {
        what: String,
        digest: String,
        urls: Vec<String>,
    },
    #[error("{what}: descriptor digest {value:?} is not sha256:<64 hex>")]
    DescriptorDigest { what: String, value: String },
    #[error("{what}: {blob} declares size {size}, over the limit of {limit} bytes")]
    DeclaredSizeTooLarge {
        what: String,
        blob: &'static str,
        size: u64,
        limit: u64,
    },
    #[error("{what} lacks the {ANNOTATION_REVISION} annotation: expected {expected}")]
    MissingRevision { what: String, expected: String },
    #[error("{what}: revision annotation is {actual}: expected {expected}")]
    RevisionMismatch {
        what: String,
        expected: String,
        actual: String,
    },
    #[error("{what}: {blob} is not valid: {reason}")]
    BadBlob {
        what: String,
        blob: &'static str,
        reason: String,
    },
    #[error("{what}: format_version of {blob} is {actual}: expected {FORMAT_VERSION}")]
    FormatVersion {
        what: String,
        blob: &'static str,
        actual: u32,
    },
    #[error("{what}: {field} is {actual:?} in {blob}: expected {expected:?}")]
    Mismatch {
        what: String,
        blob: &'static str,
        field: &'static str,
        expected: String,
        actual: String,
    },
}

/// The descriptors a reader needs, checked.
#[derive(Debug, Clone)]
pub struct Located {
    pub manifest: ImageManifest,
    pub config: Descriptor,
    pub metadata: Descriptor,
    pub resources: Descriptor,
}

/// Parses manifest bytes and locates the config, metadata and resources descriptors.
///
/// Refuses image indexes, foreign `urls`, non-sha256 digests on our descriptors, missing or
/// repeated layers of our types, and declared sizes over the caps (so nothing absurd is ever
/// downloaded). `what` names the image in messages.
pub fn check_manifest(
    what: &str,
    bytes: &[u8],
    max_resources_bytes: u64,
) -> Result<Located, FormatError> {
    #[derive(Deserialize)]
    struct Probe {
        #[serde(rename = "mediaType")]
        media_type: Option<String>,
        manifests: Option<serde::de::IgnoredAny>,
    }
    let what = what.to_owned();
    let probe: Probe = serde_json::from_slice(bytes).map_err(|e| FormatError::NotAManifest {
        what: what.clone(),
        reason: e.to_string(),
    })?;
    let media_type = probe.media_type.as_deref();
    if probe.manifests.is_some()
        || matches!(media_type, Some(INDEX_MEDIA_TYPE | DOCKER_LIST_MEDIA_TYPE))
    {
        return Err(FormatError::IsIndex { what });
    }
    if let Some(mt) = media_type
        && mt != MANIFEST_MEDIA_TYPE
    {
        return Err(FormatError::ManifestMediaType {
            what,
            actual: mt.to_owned(),
        });
    }
    let manifest: ImageManifest =
        serde_json::from_slice(bytes).map_err(|e| FormatError::NotAManifest {
            what: what.clone(),
            reason: e.to_string(),
        })?;
    if manifest.schema_version != 2 {
        return Err(FormatError::SchemaVersion {
            what,
            actual: manifest.schema_version,
        });
    }
    if manifest.config.media_type != CONFIG_MEDIA_TYPE {
        return Err(FormatError::ConfigMediaType {
            what,
            actual: manifest.config.media_type.clone(),
        });
    }
    for d in std::iter::once(&manifest.config).chain(&manifest.layers) {
        if let Some(urls) = d.urls.as_ref().filter(|u| !u.is_empty()) {
            return Err(FormatError::ForeignUrls {
                what,
                digest: d.digest.clone(),
                urls: urls.clone(),
            });
        }
    }
    let pick = |media_type: &'static str| -> Result<Descriptor, FormatError> {
        let found: Vec<&Descriptor> = manifest
            .layers
            .iter()
            .filter(|l| l.media_type == media_type)
            .collect();
        match found.as_slice() {
            [one] => Ok((*one).clone()),
            _ => Err(FormatError::LayerCount {
                what: what.clone(),
                media_type,
                count: found.len(),
            }),
        }
    };
    let metadata = pick(METADATA_MEDIA_TYPE)?;
    let resources = pick(RESOURCES_MEDIA_TYPE)?;
    let config = manifest.config.clone();
    for (blob, d, limit) in [
        ("config", &config, MAX_CONFIG_BYTES),
        ("metadata", &metadata, MAX_METADATA_BYTES),
        ("resources", &resources, max_resources_bytes),
    ] {
        if d.digest.parse::<Digest>().is_err() {
            return Err(FormatError::DescriptorDigest {
                what,
                value: d.digest.clone(),
            });
        }
        if d.size > limit {
            return Err(FormatError::DeclaredSizeTooLarge {
                what,
                blob,
                size: d.size,
                limit,
            });
        }
    }
    Ok(Located {
        manifest,
        config,
        metadata,
        resources,
    })
}

/// Cross-checks a release's parts against each other and against what was asked for
/// (DESIGN.md §3 "A reader cross-checks").
///
/// `expected` holds what the caller knows: always the commit when it asked by tag or pointer,
/// the repository and project when it knows them.
pub fn cross_check(
    what: &str,
    located: &Located,
    config: &ReleaseConfig,
    metadata: &Metadata,
    expected: &Expected,
) -> Result<(), FormatError> {
    let what = what.to_owned();
    let mismatch =
        |blob, field, expected: &dyn ToString, actual: &dyn ToString| FormatError::Mismatch {
            what: what.clone(),
            blob,
            field,
            expected: expected.to_string(),
            actual: actual.to_string(),
        };
    if config.format_version != FORMAT_VERSION {
        return Err(FormatError::FormatVersion {
            what,
            blob: "config",
            actual: config.format_version,
        });
    }
    if metadata.format_version != FORMAT_VERSION {
        return Err(FormatError::FormatVersion {
            what,
            blob: "metadata",
            actual: metadata.format_version,
        });
    }
    let revision = located
        .manifest
        .annotations
        .get(ANNOTATION_REVISION)
        .ok_or_else(|| FormatError::MissingRevision {
            what: what.clone(),
            expected: config.commit.to_string(),
        })?;
    if let Some(commit) = &expected.commit
        && revision != commit.as_str()
    {
        return Err(FormatError::RevisionMismatch {
            what,
            expected: commit.to_string(),
            actual: revision.clone(),
        });
    }
    if revision != config.commit.as_str() {
        return Err(mismatch("config", "commit", revision, &config.commit));
    }
    let release = &metadata.release;
    if release.commit != config.commit {
        return Err(mismatch(
            "metadata",
            "release.commit",
            &config.commit,
            &release.commit,
        ));
    }
    if release.repository != config.repository {
        return Err(mismatch(
            "metadata",
            "release.repository",
            &config.repository,
            &release.repository,
        ));
    }
    if release.project != config.project {
        return Err(mismatch(
            "metadata",
            "release.project",
            &config.project,
            &release.project,
        ));
    }
    if let Some(repository) = &expected.repository
        && *repository != config.repository
    {
        return Err(mismatch(
            "config",
            "repository",
            repository,
            &config.repository,
        ));
    }
    if let Some(project) = &expected.project
        && *project != config.project
    {
        return Err(mismatch("config", "project", project, &config.project));
    }
    let resources = &metadata.resources;
    if resources.layer_digest.as_str() != located.resources.digest {
        return Err(mismatch(
            "metadata",
            "resources.layer_digest",
            &located.resources.digest,
            &resources.layer_digest,
        ));
    }
    if resources.layer_size != located.resources.size {
        return Err(mismatch(
            "metadata",
            "resources.layer_size",
            &located.resources.size,
            &resources.layer_size,
        ));
    }
    Ok(())
}

/// What a caller knows about the release it asked for.
#[derive(Debug, Clone, Default)]
pub struct Expected {
    pub repository: Option<Repository>,
    pub project: Option<Project>,
    pub commit: Option<CommitSha>,
}

impl From<&ReleaseId> for Expected {
    fn from(id: &ReleaseId) -> Self {
        Self {
            repository: Some(id.repository.clone()),
            project: Some(id.project.clone()),
            commit: Some(id.commit.clone()),
        }
    }
}

impl crate::exit::Classify for FormatError {
    fn exit(&self) -> crate::exit::Exit {
        crate::exit::Exit::Verify
    }
}
