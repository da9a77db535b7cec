//! The digest-keyed release cache of `generate` (`RELEASECTL_CACHE_DIR`, DESIGN.md §5 rule 5).
//!
//! The cache is an OCI image layout of verified blobs keyed by digest, so it needs no index:
//! a release pinned by manifest digest is read straight from `blobs/sha256/`. Blobs are
//! written to a temporary file and renamed (see `oci::layout`), so concurrent generates
//! never see half an entry, and content addressing means two writers of one blob write the
//! same bytes. A cached release goes through the very same verification as a downloaded one;
//! an entry that fails it is deleted and the release fetched again.

use std::path::{Path, PathBuf};

use crate::archive::Limits;
use crate::digest::Digest;
use crate::format::Expected;
use crate::oci::layout::Layout;
use crate::oci::reference::LayoutImage;
use crate::oci::{ImageRef, OciError, Store};
use crate::release::{self, Release, ReleaseError};

pub struct Cache {
    dir: PathBuf,
}

/// What a cache lookup came to.
pub enum Lookup {
    Hit(Box<Release>),
    Miss,
    /// The entry failed verification and was removed; the reason is for the log.
    Discarded(String),
}

impl Cache {
    #[must_use]
    pub fn new(dir: &Path) -> Self {
        Self {
            dir: dir.join("oci"),
        }
    }

    fn image(&self, digest: &Digest) -> ImageRef {
        ImageRef::Layout(LayoutImage {
            dir: self.dir.clone(),
            tag: None,
            digest: Some(digest.clone()),
        })
    }

    /// Reads the release with manifest `digest`, fully verified, if the cache has it.
    pub async fn get(&self, digest: &Digest, expected: &Expected, limits: &Limits) -> Lookup {
        let Ok(layout) = Layout::open(&self.dir) else {
            return Lookup::Miss;
        };
        let store = Store::Layout(layout);
        match release::fetch(&store, &self.image(digest), expected, limits).await {
            Ok(r) => Lookup::Hit(Box::new(r)),
            Err(ReleaseError::Oci(OciError::NotFound { .. })) => Lookup::Miss,
            Err(e) => {
                Self::remove(&store, digest);
                Lookup::Discarded(e.to_string())
            }
        }
    }

    /// Removes the entry's manifest and the blobs it names (what can be found of them).
    fn remove(store: &Store, digest: &Digest) {
        let Store::Layout(layout) = store else { return };
        if let Ok(bytes) = std::fs::read(layout.blob_path(digest))
            && let Ok(located) = crate::format::check_manifest("cache entry", &bytes, u64::MAX)
        {
            for d in [&located.config, &located.metadata, &located.resources] {
                if let Ok(d) = d.digest.parse::<Digest>() {
                    let _ = std::fs::remove_file(layout.blob_path(&d));
                }
            }
        }
        let _ = std::fs::remove_file(layout.blob_path(digest));
    }

    /// Stores a verified release: blobs first, manifest last, so a manifest in the cache
    /// always has its blobs (unless one was removed, which verification then catches).
    pub fn put(&self, release: &Release) -> Result<(), OciError> {
        let layout = Layout::create(&self.dir)?;
        for bytes in [
            &release.config_bytes,
            &release.metadata_bytes,
            &release.resources,
        ] {
            layout.put_blob(&Digest::of(bytes), bytes)?;
        }
        layout.put_blob(&release.manifest_digest, &release.manifest_bytes)
    }
}
