//! Fetching a release image with every byte verified (DESIGN.md §5 rule 2).
//!
//! Order matters: manifest (capped, digest-checked) → descriptors located and declared sizes
//! checked against caps → config and metadata blobs (size and digest) → cross-checks between
//! manifest, config, metadata and what was asked for → resources blob (size and digest, and
//! the metadata's record of it). Only a [`Release`] that came through all of it exists.

use crate::archive::{self, Limits};
use crate::digest::{Digest, sha256_hex};
use crate::format::{self, Expected, Located, Metadata, ReleaseConfig};
use crate::oci::{ImageRef, OciError, Store};

/// A release image whose manifest, config, metadata and resources blobs were all verified.
#[derive(Debug, Clone)]
pub struct Release {
    pub head: Head,
    pub resources: Vec<u8>,
}

impl std::ops::Deref for Release {
    type Target = Head;

    fn deref(&self) -> &Head {
        &self.head
    }
}

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

/// A release's manifest, config and metadata, verified and cross-checked; the resources
/// layer not yet fetched. Enough to plan a deploy.
#[derive(Debug, Clone)]
pub struct Head {
    pub image: ImageRef,
    pub manifest_digest: Digest,
    pub manifest_bytes: Vec<u8>,
    pub located: Located,
    pub config_bytes: Vec<u8>,
    pub config: ReleaseConfig,
    pub metadata_bytes: Vec<u8>,
    pub metadata: Metadata,
}

/// Fetches and verifies everything of the release `image` but its resources layer.
pub async fn fetch_head(
    store: &Store,
    image: &ImageRef,
    expected: &Expected,
    limits: &Limits,
) -> Result<Head, ReleaseError> {
    Ok(fetch_parts(store, image, expected, limits, false).await?.0)
}

/// Fetches and verifies the release `image` from `store`.
pub async fn fetch(
    store: &Store,
    image: &ImageRef,
    expected: &Expected,
    limits: &Limits,
) -> Result<Release, ReleaseError> {
    let (head, resources) = fetch_parts(store, image, expected, limits, true).await?;
    Ok(Release {
        head,
        resources: resources.unwrap_or_default(),
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
    let digest: Digest = d.digest.parse().expect("checked by check_manifest");
    store
        .blob(&digest, d.size, &format!("{name} blob of {what}"))
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
            "file {:?} is not in the metadata (expected {:?})",
            file.path, record.path
        ));
    }
    if sha256 != record.sha256 || file.data.len() as u64 != record.size {
        return Err(format!(
            "file {}: expected sha256 {} ({} bytes), got {sha256} ({} bytes)",
            file.path,
            record.sha256,
            record.size,
            file.data.len()
        ));
    }
    Ok(())
}

impl Release {
    /// Reads the resources layer safely and checks every file against the metadata's record
    /// (paths, sizes, sha256, total size). Files come sorted by path.
    pub fn files(&self, limits: &Limits) -> Result<Vec<archive::File>, ReleaseError> {
        Ok(self
            .files_map(limits, |_| ())?
            .into_iter()
            .map(|(file, ())| file)
            .collect())
    }

    /// As [`Self::files`], and runs `work` on each file. Files are hashed and worked on by
    /// every core while the layer is still being decompressed (the cost of a cold `generate`
    /// of a big release); `work`'s results are returned only when every check passed, with
    /// their files, sorted by path.
    pub fn files_map<R: Send>(
        &self,
        limits: &Limits,
        work: impl Fn(&archive::File) -> R + Sync,
    ) -> Result<Vec<(archive::File, R)>, ReleaseError> {
        let what = format!("resources of {}", self.image);
        let threads = threads_for(self.metadata.resources.uncompressed_size);
        let (sender, receiver) = std::sync::mpsc::channel::<archive::File>();
        let receiver = std::sync::Mutex::new(receiver);
        let done = std::sync::Mutex::new(std::collections::HashMap::new());
        let drain = || {
            loop {
                // The lock is held only while waiting for the next file.
                let next = receiver.lock().map_or(None, |r| r.recv().ok());
                let Some(file) = next else { break };
                let sha256 = sha256_hex(&file.data);
                let result = work(&file);
                if let Ok(mut done) = done.lock() {
                    done.insert(file.path, (sha256, result));
                }
            }
        };
        let read = std::thread::scope(|scope| {
            let helpers: Vec<_> = (1..threads).map(|_| scope.spawn(drain)).collect();
            let read = archive::read_with(&self.resources, limits, |file| {
                // A file the helpers cannot take is simply not worked on: checked below.
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
        let contents = |reason: String| ReleaseError::Contents {
            what: what.clone(),
            reason,
        };
        let recorded = &self.metadata.resources.files;
        if files.len() != recorded.len() {
            return Err(contents(format!(
                "the layer holds {} files: the metadata records {}",
                files.len(),
                recorded.len()
            )));
        }
        let mut recorded: Vec<&format::FileEntry> = recorded.iter().collect();
        recorded.sort_by(|a, b| a.path.cmp(&b.path));
        let mut out = Vec::with_capacity(files.len());
        for (file, record) in files.into_iter().zip(recorded) {
            let (sha256, result) = done
                .remove(&file.path)
                .ok_or_else(|| contents(format!("file {}: not read", file.path)))?;
            check_file(&file, &sha256, record).map_err(contents)?;
            out.push((file, result));
        }
        let total: u64 = out.iter().map(|(f, _)| f.data.len() as u64).sum();
        if total != self.metadata.resources.uncompressed_size {
            return Err(contents(format!(
                "uncompressed size is {total}: the metadata records {}",
                self.metadata.resources.uncompressed_size
            )));
        }
        Ok(out)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_work_runs_on_one_thread() {
        assert_eq!(threads_for(1000), 1);
        assert!((1..=8).contains(&threads_for(10 << 20)));
    }
}
