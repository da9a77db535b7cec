//! Release OCI image, format v1 (docs/design.md §3; the contract is spelled out in
//! docs/format.md).
//!
//! This module holds the wire types (manifest, config, metadata) and the two pure halves of the
//! format: [`build`] (in `build.rs`) turns validated inputs into the exact bytes of an image,
//! and `check.rs` decides whether a manifest is a release manifest, locates its layers
//! ([`check_manifest`]) and cross-checks its parts ([`cross_check`]). Neither does I/O.
//!
//! Invariants: bytes are produced deterministically (same inputs, same digests), so the wire
//! types serialise exactly as the format says — digests as `sha256:<hex>`, times as RFC 3339 in
//! UTC (`2026-11-22T10:30:00Z`). The descriptors a reader uses have typed digests; a manifest's
//! other layers keep whatever digest they name (they are never fetched).

mod build;
mod check;

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::ids::{CommitSha, Project, Repository};
use crate::manifests::ObjectRef;

pub use build::{ImageBytes, Inputs, build};
pub use check::{Expected, FormatError, Located, check_manifest, cross_check};

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

/// An OCI content descriptor. `D` is the digest's type: [`Digest`] (sha256, checked) for the
/// config and the release layers, `String` for a manifest's layers as listed (see
/// [`ImageManifest`]).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor<D = Digest> {
    pub media_type: String,
    pub digest: D,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub urls: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// A descriptor as a manifest lists it: its digest not yet checked (layers of other types than
/// ours may use any algorithm, and are never fetched).
pub type ListedDescriptor = Descriptor<String>;

impl From<Descriptor> for ListedDescriptor {
    fn from(d: Descriptor) -> Self {
        Self {
            media_type: d.media_type,
            digest: d.digest.to_string(),
            size: d.size,
            urls: d.urls,
            annotations: d.annotations,
        }
    }
}

/// An OCI image manifest, as far as a release needs it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageManifest {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    pub config: ListedDescriptor,
    pub layers: Vec<ListedDescriptor>,
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

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
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

/// A trigger type that is not one of `branch_push`, `tag`, `manual`.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("trigger type \"{}\" is unknown: expected one of branch_push, tag, manual", crate::text::excerpt(.actual))]
pub struct UnknownTriggerType {
    pub actual: String,
}

impl std::str::FromStr for TriggerType {
    type Err = UnknownTriggerType;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [Self::BranchPush, Self::Tag, Self::Manual]
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| UnknownTriggerType {
                actual: crate::text::excerpt(s),
            })
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
    #[serde(with = "rfc3339")]
    pub created_at: Timestamp,
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
    #[serde(default, with = "rfc3339::option")]
    pub committed_at: Option<Timestamp>,
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

/// Times on the wire: RFC 3339 in UTC, fractional seconds only when there are some
/// (`2026-11-22T10:30:00Z`); any RFC 3339 time with an offset is read.
mod rfc3339 {
    use jiff::Timestamp;
    use serde::{Deserialize as _, Deserializer, Serializer};

    #[allow(clippy::trivially_copy_pass_by_ref)] // serde's `with` passes a reference
    pub fn serialize<S: Serializer>(t: &Timestamp, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(t)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Timestamp, D::Error> {
        let text = std::borrow::Cow::<str>::deserialize(d)?;
        text.parse().map_err(|_| {
            serde::de::Error::custom(format_args!(
                "\"{}\" is not an RFC 3339 time such as 2026-11-22T10:30:00Z",
                crate::text::excerpt(&text)
            ))
        })
    }

    pub mod option {
        use jiff::Timestamp;
        use serde::{Deserialize as _, Deserializer, Serializer};

        #[allow(clippy::ref_option)] // serde's `with` passes a reference
        pub fn serialize<S: Serializer>(t: &Option<Timestamp>, s: S) -> Result<S::Ok, S::Error> {
            match t {
                Some(t) => super::serialize(t, s),
                None => s.serialize_none(),
            }
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Timestamp>, D::Error> {
            #[derive(serde::Deserialize)]
            struct Wrapped(#[serde(with = "super")] Timestamp);
            Ok(Option::<Wrapped>::deserialize(d)?.map(|Wrapped(t)| t))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_written_as_rfc_3339_in_utc_with_whole_seconds() {
        let info: Source = serde_json::from_str(
            r#"{"commit":null,"author":null,"message":null,"committed_at":"2026-11-22T11:30:00+01:00","repository_url":null}"#,
        )
        .unwrap();
        assert_eq!(
            serde_json::to_string(&info).unwrap(),
            r#"{"commit":null,"author":null,"message":null,"committed_at":"2026-11-22T10:30:00Z","repository_url":null}"#
        );
        let none: Source = serde_json::from_str("{}").unwrap();
        assert_eq!(none.committed_at, None);
        assert!(
            serde_json::to_string(&none)
                .unwrap()
                .contains(r#""committed_at":null"#)
        );
    }

    #[test]
    fn a_time_that_is_not_rfc_3339_is_refused_naming_it() {
        let err = serde_json::from_str::<Source>(r#"{"committed_at":"yesterday\u001b[31m"}"#)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("yesterday") && err.contains("RFC 3339"),
            "{err}"
        );
        assert!(!err.contains('\u{1b}'), "{err}");
    }

    #[test]
    fn trigger_types_parse_from_their_wire_names_only() {
        for t in [
            TriggerType::BranchPush,
            TriggerType::Tag,
            TriggerType::Manual,
        ] {
            assert_eq!(t.as_str().parse::<TriggerType>(), Ok(t));
        }
        let err = "Tag\n".parse::<TriggerType>().unwrap_err().to_string();
        assert!(
            err.contains("branch_push, tag, manual") && !err.contains('\n'),
            "{err}"
        );
    }
}
