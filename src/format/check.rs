//! Reading a release image's manifest and cross-checking its parts (docs/format.md §2 and §7
//! steps 2, 3 and 5). Pure: the caller fetched the bytes.

use serde::Deserialize;

use super::{
    ANNOTATION_REVISION, CONFIG_MEDIA_TYPE, DOCKER_LIST_MEDIA_TYPE, Descriptor, FORMAT_VERSION,
    INDEX_MEDIA_TYPE, ImageManifest, ListedDescriptor, MANIFEST_MEDIA_TYPE, MAX_CONFIG_BYTES,
    MAX_METADATA_BYTES, METADATA_MEDIA_TYPE, Metadata, RESOURCES_MEDIA_TYPE, ReleaseConfig,
};
use crate::digest::Digest;
use crate::ids::{CommitSha, Project, ReleaseId, Repository};

/// Why a manifest is not a valid release manifest.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FormatError {
    #[error("{what} is an image index, not a release image manifest")]
    IsIndex { what: String },
    #[error("{what} is not a valid image manifest: {}", crate::text::excerpt(.reason))]
    NotAManifest { what: String, reason: String },
    #[error("{what} has media type \"{}\": expected {MANIFEST_MEDIA_TYPE}", crate::text::excerpt(.actual))]
    ManifestMediaType { what: String, actual: String },
    #[error("{what} has schemaVersion {actual}: expected 2")]
    SchemaVersion { what: String, actual: u32 },
    #[error("{what} has config media type \"{}\": expected {CONFIG_MEDIA_TYPE}", crate::text::excerpt(.actual))]
    ConfigMediaType { what: String, actual: String },
    #[error("{what} has {count} layers of type {media_type}: expected exactly one")]
    LayerCount {
        what: String,
        media_type: &'static str,
        count: usize,
    },
    #[error(
        "{what}: descriptor {} lists foreign urls [{}]: releases are fetched only from their registry",
        crate::text::excerpt(.digest),
        crate::text::excerpt(&.urls.join(", "))
    )]
    ForeignUrls {
        what: String,
        digest: String,
        urls: Vec<String>,
    },
    #[error("{what}: descriptor digest \"{}\" is not sha256:<64 hex>", crate::text::excerpt(.value))]
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
    #[error("{what}: revision annotation is \"{}\": expected {expected}", crate::text::excerpt(.actual))]
    RevisionMismatch {
        what: String,
        expected: String,
        actual: String,
    },
    #[error("{what}: {blob} is not valid: {}", crate::text::excerpt(.reason))]
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
    #[error("{what}: {field} is \"{}\" in {blob}: expected \"{}\"", crate::text::excerpt(.actual), crate::text::excerpt(.expected))]
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
    let pick = |media_type: &'static str| -> Result<&ListedDescriptor, FormatError> {
        let found: Vec<&ListedDescriptor> = manifest
            .layers
            .iter()
            .filter(|l| l.media_type == media_type)
            .collect();
        match found.as_slice() {
            [one] => Ok(one),
            _ => Err(FormatError::LayerCount {
                what: what.clone(),
                media_type,
                count: found.len(),
            }),
        }
    };
    let metadata = pick(METADATA_MEDIA_TYPE)?;
    let resources = pick(RESOURCES_MEDIA_TYPE)?;
    let checked =
        |blob: &'static str, d: &ListedDescriptor, limit: u64| -> Result<Descriptor, FormatError> {
            let digest = d
                .digest
                .parse::<Digest>()
                .map_err(|_| FormatError::DescriptorDigest {
                    what: what.clone(),
                    value: d.digest.clone(),
                })?;
            if d.size > limit {
                return Err(FormatError::DeclaredSizeTooLarge {
                    what: what.clone(),
                    blob,
                    size: d.size,
                    limit,
                });
            }
            Ok(Descriptor {
                media_type: d.media_type.clone(),
                digest,
                size: d.size,
                urls: d.urls.clone(),
                annotations: d.annotations.clone(),
            })
        };
    let config = checked("config", &manifest.config, MAX_CONFIG_BYTES)?;
    let metadata = checked("metadata", metadata, MAX_METADATA_BYTES)?;
    let resources = checked("resources", resources, max_resources_bytes)?;
    Ok(Located {
        manifest,
        config,
        metadata,
        resources,
    })
}

/// Cross-checks a release's parts against each other and against what was asked for
/// (docs/design.md §3 "A reader cross-checks").
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
    if resources.layer_digest != located.resources.digest {
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

crate::exit_class!(FormatError => Verify);
