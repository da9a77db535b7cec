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
    rendered: PathBuf,
}

/// The rendering depends on this binary's code, so a new version renders afresh.
const RENDER_VERSION: &str = env!("CARGO_PKG_VERSION");

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
            rendered: dir.join("rendered"),
        }
    }

    fn rendered_path(&self, digest: &Digest) -> PathBuf {
        self.rendered
            .join(format!("{}.v{RENDER_VERSION}.yaml", digest.hex()))
    }

    /// The release's rendered manifests, as a previous run produced them from the verified
    /// blobs of the release pinned by `digest`. The entry records its own sha256 on its first
    /// line and is checked against it, so a torn or corrupted entry is discarded (and
    /// rendered again from verified blobs), never printed. Like the blob cache, it trusts
    /// the cache directory's owner: only the sidecar's user can write there.
    #[must_use]
    pub fn rendered(&self, digest: &Digest) -> Option<String> {
        let path = self.rendered_path(digest);
        let text = std::fs::read_to_string(&path).ok()?;
        let ok = text.split_once('\n').and_then(|(head, body)| {
            let recorded = head.strip_prefix("sha256:")?;
            (recorded == crate::digest::sha256_hex(body.as_bytes())).then(|| body.to_owned())
        });
        if ok.is_none() {
            crate::log::info(&format!(
                "{}: rendered cache entry is corrupt; rendering again",
                path.display()
            ));
            let _ = std::fs::remove_file(&path);
        }
        ok
    }

    /// Stores the rendered manifests of the release pinned by `digest` (temp file + rename).
    pub fn put_rendered(&self, digest: &Digest, body: &str) -> std::io::Result<()> {
        use std::io::Write as _;
        std::fs::create_dir_all(&self.rendered)?;
        let mut tmp = tempfile::NamedTempFile::new_in(&self.rendered)?;
        writeln!(tmp, "sha256:{}", crate::digest::sha256_hex(body.as_bytes()))?;
        tmp.write_all(body.as_bytes())?;
        tmp.persist(self.rendered_path(digest))
            .map_err(|e| e.error)?;
        Ok(())
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
        let layout = Layout::create_cache(&self.dir)?;
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
