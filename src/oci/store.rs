//! One interface over the two places images live: a registry repository or a layout directory.
//!
//! The store only dispatches: `registry` and `layout` know nothing of it, and both take their
//! settings from `options`.

use super::OciError;
use super::layout::Layout;
use super::options::StoreOptions;
use super::reference::ImageRef;
use super::registry::Registry;
use crate::digest::Digest;
use crate::format::MANIFEST_MEDIA_TYPE;

pub enum Store {
    Registry(Box<Registry>),
    Layout(Layout),
}

impl Store {
    /// Opens the store that holds `image`, for reading.
    pub fn open(image: &ImageRef, options: &StoreOptions) -> Result<Self, OciError> {
        match image {
            ImageRef::Registry(r) => Ok(Self::Registry(Box::new(Registry::new(
                &r.host, &r.path, options,
            )?))),
            ImageRef::Layout(l) => Ok(Self::Layout(Layout::open(&l.dir)?)),
        }
    }

    /// Opens the store that will hold `image`, for writing (a layout is created if needed).
    pub fn open_for_write(image: &ImageRef, options: &StoreOptions) -> Result<Self, OciError> {
        match image {
            ImageRef::Registry(r) => Ok(Self::Registry(Box::new(Registry::new(
                &r.host, &r.path, options,
            )?))),
            ImageRef::Layout(l) => Ok(Self::Layout(Layout::create(&l.dir)?)),
        }
    }

    /// Fetches the manifest `image` names. When `image` is pinned by digest, the bytes are
    /// checked against it; otherwise their digest is computed and returned.
    pub async fn manifest(&self, image: &ImageRef) -> Result<(Vec<u8>, Digest), OciError> {
        let what = format!("manifest of {image}");
        let (bytes, digest) = match self {
            Self::Registry(r) => {
                let reference = image
                    .digest()
                    .map(ToString::to_string)
                    .or_else(|| image.tag().map(str::to_owned))
                    .unwrap_or_default();
                r.manifest(&reference, &what).await?
            }
            Self::Layout(l) => {
                let (digest, size) = l.resolve(image.tag(), image.digest(), &what)?;
                let bytes = l.manifest(&digest, size, &what)?;
                (bytes, digest)
            }
        };
        if let Some(expected) = image.digest()
            && *expected != digest
        {
            return Err(OciError::DigestMismatch {
                what,
                expected: expected.clone(),
                actual: digest,
            });
        }
        Ok((bytes, digest))
    }

    /// Fetches a blob; it is returned only if it has exactly `size` bytes and `digest`.
    pub async fn blob(&self, digest: &Digest, size: u64, what: &str) -> Result<Vec<u8>, OciError> {
        match self {
            Self::Registry(r) => r.blob(digest, size, what).await,
            Self::Layout(l) => l.blob(digest, Some(size), size, what),
        }
    }

    pub async fn push_blob(
        &self,
        digest: &Digest,
        bytes: &[u8],
        what: &str,
    ) -> Result<(), OciError> {
        match self {
            Self::Registry(r) => {
                r.push_blob(digest, bytes::Bytes::copy_from_slice(bytes), what)
                    .await
            }
            Self::Layout(l) => l.put_blob(digest, bytes),
        }
    }

    /// Stores manifest bytes unchanged under `tag`.
    pub async fn push_manifest(&self, bytes: &[u8], tag: &str, what: &str) -> Result<(), OciError> {
        match self {
            Self::Registry(r) => r.push_manifest(bytes, tag, what).await,
            Self::Layout(l) => l
                .put_manifest(bytes, Some(tag), MANIFEST_MEDIA_TYPE)
                .map(|_| ()),
        }
    }
}
