//! An OCI image layout directory (image-spec `image-layout.md`): `oci-layout`, `index.json`,
//! `blobs/sha256/<hex>`.
//!
//! Blobs are written to a temporary name and renamed, so a reader never sees half a blob;
//! `index.json` is rewritten the same way under an exclusive lock on the layout directory
//! itself (whose inode never changes, so no lock file is left in the layout), so concurrent
//! writers to one layout lose no tag. Reads check a blob's file size against its descriptor
//! before reading it, and its digest before returning it. A directory that holds something
//! else than a layout is never turned into one.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::OciError;
use crate::digest::Digest;
use crate::format::MAX_MANIFEST_BYTES;

pub const REF_NAME: &str = "org.opencontainers.image.ref.name";
const LAYOUT_VERSION: &str = "1.0.0";

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Index {
    schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    media_type: Option<String>,
    manifests: Vec<IndexEntry>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct IndexEntry {
    media_type: String,
    digest: String,
    size: u64,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    annotations: BTreeMap<String, String>,
}

/// The `oci-layout` file.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Marker {
    image_layout_version: String,
}

pub struct Layout {
    dir: PathBuf,
    /// Whether writes are flushed to disk before they are renamed into place. A layout that
    /// holds releases is; the plugin's cache is not (every read verifies it, a torn entry is
    /// fetched again, and an fsync per blob is a quarter of a cold generate).
    durable: bool,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> OciError + '_ {
    move |source| OciError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Writes `bytes` to `path` through a temporary file in the same directory and a rename
/// (flushed to disk first when `durable`).
fn write_atomic(path: &Path, bytes: &[u8], durable: bool) -> Result<(), OciError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(io(dir))?;
    tmp.write_all(bytes).map_err(io(path))?;
    if durable {
        tmp.as_file().sync_data().map_err(io(path))?;
    }
    tmp.persist(path).map_err(|e| OciError::Io {
        path: path.to_owned(),
        source: e.error,
    })?;
    Ok(())
}

impl Layout {
    /// Opens an existing layout for reading.
    pub fn open(dir: &Path) -> Result<Self, OciError> {
        let marker = dir.join("oci-layout");
        let bytes = fs::read(&marker).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                OciError::NotFound {
                    what: format!("OCI layout {} (no oci-layout file)", dir.display()),
                }
            } else {
                io(&marker)(e)
            }
        })?;
        let marker: Marker = serde_json::from_slice(&bytes).map_err(|e| OciError::BadLayout {
            path: dir.to_owned(),
            reason: format!("oci-layout is not valid: {e}"),
        })?;
        if marker.image_layout_version != LAYOUT_VERSION {
            return Err(OciError::BadLayout {
                path: dir.to_owned(),
                reason: format!(
                    "imageLayoutVersion is {:?}: expected {LAYOUT_VERSION:?}",
                    marker.image_layout_version
                ),
            });
        }
        Ok(Self {
            dir: dir.to_owned(),
            durable: true,
        })
    }

    /// Opens a layout for writing, creating it if needed: in a new or empty directory, or one
    /// that holds only what an interrupted or concurrent creation leaves (`blobs/`, the
    /// temporary files of [`write_atomic`], and `oci-layout` or `index.json` when a
    /// concurrent creation wrote them between our two looks).
    pub fn create(dir: &Path) -> Result<Self, OciError> {
        let marker = dir.join("oci-layout");
        if !marker.exists()
            && let Ok(entries) = fs::read_dir(dir)
        {
            let mut others: Vec<String> = entries
                .filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|name| {
                    !matches!(name.as_str(), "blobs" | "oci-layout" | "index.json")
                        && !name.starts_with(".tmp")
                })
                .collect();
            if !others.is_empty() {
                others.sort();
                return Err(OciError::BadLayout {
                    path: dir.to_owned(),
                    reason: format!(
                        "the directory exists and is not an OCI layout (no oci-layout file; it holds {}): expected a new or empty directory, or a layout",
                        crate::text::printable(&others.join(", "), 200)
                    ),
                });
            }
        }
        let blobs = dir.join("blobs/sha256");
        fs::create_dir_all(&blobs).map_err(io(&blobs))?;
        if !marker.exists() {
            write_atomic(&marker, br#"{"imageLayoutVersion":"1.0.0"}"#, true)?;
        }
        Self::open(dir)
    }

    /// Opens (creating if needed) a layout used as a verified cache: writes are not flushed.
    pub fn create_cache(dir: &Path) -> Result<Self, OciError> {
        let mut layout = Self::create(dir)?;
        layout.durable = false;
        Ok(layout)
    }

    #[must_use]
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.dir.join("blobs/sha256").join(digest.hex())
    }

    fn read_index(&self) -> Result<Index, OciError> {
        let path = self.dir.join("index.json");
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Index {
                    schema_version: 2,
                    media_type: Some(crate::format::INDEX_MEDIA_TYPE.to_owned()),
                    manifests: Vec::new(),
                });
            }
            Err(e) => return Err(io(&path)(e)),
        };
        serde_json::from_slice(&bytes).map_err(|e| OciError::BadLayout {
            path: self.dir.clone(),
            reason: format!("index.json is not valid: {e}"),
        })
    }

    /// Finds the manifest a tag or digest names: returns its digest and size (when the index
    /// lists it). Without either, the layout must hold exactly one manifest.
    pub fn resolve(
        &self,
        tag: Option<&str>,
        digest: Option<&Digest>,
        what: &str,
    ) -> Result<(Digest, Option<u64>), OciError> {
        let index = self.read_index()?;
        let entry = index.manifests.iter().find(|e| match (tag, digest) {
            (_, Some(d)) => e.digest == d.as_str(),
            (Some(t), None) => e.annotations.get(REF_NAME).map(String::as_str) == Some(t),
            (None, None) => true,
        });
        if tag.is_none() && digest.is_none() && index.manifests.len() > 1 {
            let tags: Vec<&str> = index
                .manifests
                .iter()
                .filter_map(|e| e.annotations.get(REF_NAME).map(String::as_str))
                .collect();
            return Err(OciError::NotFound {
                what: format!(
                    "{what}: the layout holds {} images, name one by tag (:{})",
                    index.manifests.len(),
                    tags.join(", :")
                ),
            });
        }
        match (entry, digest) {
            (Some(e), _) => {
                if matches!(
                    e.media_type.as_str(),
                    crate::format::INDEX_MEDIA_TYPE | crate::format::DOCKER_LIST_MEDIA_TYPE
                ) {
                    return Err(crate::format::FormatError::IsIndex {
                        what: what.to_owned(),
                    }
                    .into());
                }
                let d = e
                    .digest
                    .parse::<Digest>()
                    .map_err(|_| OciError::BadLayout {
                        path: self.dir.clone(),
                        reason: format!("index.json names digest {:?}", e.digest),
                    })?;
                Ok((d, Some(e.size)))
            }
            // A manifest addressed by digest need not be listed in the index.
            (None, Some(d)) => Ok((d.clone(), None)),
            (None, None) => Err(OciError::NotFound {
                what: what.to_owned(),
            }),
        }
    }

    /// Reads a blob, checking its size before reading and its digest after.
    pub fn blob(
        &self,
        digest: &Digest,
        size: Option<u64>,
        cap: u64,
        what: &str,
    ) -> Result<Vec<u8>, OciError> {
        let path = self.blob_path(digest);
        let meta = fs::metadata(&path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                OciError::NotFound {
                    what: what.to_owned(),
                }
            } else {
                io(&path)(e)
            }
        })?;
        let actual = meta.len();
        let expected = size.unwrap_or(actual);
        if actual > cap {
            return Err(OciError::TooLarge {
                what: what.to_owned(),
                limit: cap,
                actual,
            });
        }
        if actual > expected {
            return Err(OciError::Overlong {
                what: what.to_owned(),
                expected,
            });
        }
        let bytes = fs::read(&path).map_err(io(&path))?;
        super::check_blob(what, &bytes, expected, digest)?;
        Ok(bytes)
    }

    /// Reads a manifest by its digest (the index entry's size, when known, is checked too).
    pub fn manifest(
        &self,
        digest: &Digest,
        size: Option<u64>,
        what: &str,
    ) -> Result<Vec<u8>, OciError> {
        self.blob(digest, size, MAX_MANIFEST_BYTES, what)
    }

    /// Stores a blob unless a blob of that digest and size is already there.
    pub fn put_blob(&self, digest: &Digest, bytes: &[u8]) -> Result<(), OciError> {
        let path = self.blob_path(digest);
        if fs::metadata(&path).is_ok_and(|m| m.len() == bytes.len() as u64) {
            return Ok(());
        }
        write_atomic(&path, bytes, self.durable)
    }

    /// Stores a manifest and points `tag` at it (replacing what the tag named before).
    pub fn put_manifest(
        &self,
        bytes: &[u8],
        tag: Option<&str>,
        media_type: &str,
    ) -> Result<Digest, OciError> {
        let digest = Digest::of(bytes);
        self.put_blob(&digest, bytes)?;
        // The directory is the lock: it exists as long as the layout, its inode never
        // changes, and locking it leaves nothing behind (a lock file would be left in the
        // layout, and removing one races with the next writer's open).
        let lock = fs::File::open(&self.dir).map_err(io(&self.dir))?;
        lock.lock().map_err(io(&self.dir))?;
        let mut index = self.read_index()?;
        index.manifests.retain(|e| match tag {
            Some(t) => e.annotations.get(REF_NAME).map(String::as_str) != Some(t),
            None => e.digest != digest.as_str(),
        });
        index.manifests.push(IndexEntry {
            media_type: media_type.to_owned(),
            digest: digest.to_string(),
            size: bytes.len() as u64,
            annotations: tag
                .map(|t| BTreeMap::from([(REF_NAME.to_owned(), t.to_owned())]))
                .unwrap_or_default(),
        });
        let json = serde_json::to_vec_pretty(&index).expect("index serialises");
        write_atomic(&self.dir.join("index.json"), &json, self.durable)?;
        drop(lock);
        Ok(digest)
    }
}
