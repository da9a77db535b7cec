//! Writing a release image: validated inputs to the exact bytes of its manifest, config,
//! metadata and resources layer. Pure and deterministic: same inputs, same digests.

use std::collections::BTreeMap;

use jiff::Timestamp;

use super::{
    ANNOTATION_CREATED, ANNOTATION_REVISION, ANNOTATION_SOURCE, ANNOTATION_TITLE,
    ANNOTATION_VERSION, Alias, Artifact, CONFIG_MEDIA_TYPE, Descriptor, FORMAT_VERSION, FileEntry,
    ImageManifest, MANIFEST_MEDIA_TYPE, METADATA_MEDIA_TYPE, METADATA_TITLE, Metadata,
    RESOURCES_MEDIA_TYPE, RESOURCES_TITLE, ReleaseConfig, ReleaseInfo, Resources, Source, Trigger,
};
use crate::archive;
use crate::digest::Digest;
use crate::ids::ReleaseId;
use crate::manifests::ObjectRef;

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
    pub created_at: Timestamp,
    pub trigger: Option<Trigger>,
    pub source: Option<Source>,
    pub artifacts: Vec<Artifact>,
}

fn descriptor(media_type: &str, bytes: &[u8], title: Option<&str>) -> Descriptor {
    Descriptor {
        media_type: media_type.to_owned(),
        digest: Digest::of(bytes),
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
            metadata.release.created_at.to_string(),
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
        config: descriptor(CONFIG_MEDIA_TYPE, &config, None).into(),
        layers: vec![
            descriptor(METADATA_MEDIA_TYPE, &metadata_bytes, Some(METADATA_TITLE)).into(),
            descriptor(RESOURCES_MEDIA_TYPE, &resources, Some(RESOURCES_TITLE)).into(),
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
