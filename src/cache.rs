//! The digest-keyed release cache of `generate` (`RELEASECTL_CACHE_DIR`, docs/design.md §5
//! rule 5).
//!
//! The cache is an OCI image layout of verified blobs keyed by digest, so it needs no index:
//! a release pinned by manifest digest is read straight from `blobs/sha256/`. Blobs are
//! written to a temporary file and renamed (see `oci::layout`), so concurrent generates
//! never see half an entry, and content addressing means two writers of one blob write the
//! same bytes. A cached release goes through the very same verification as a downloaded one;
//! an entry that fails it is deleted and the release fetched again.
//!
//! Invariant: the cache saves work, never checks. A cached release is handed out only for the
//! identity (repository, project, commit) it was verified against: a rendered entry is keyed
//! by identity and digest, and a blob entry whose release is another's is not used (the caller
//! fetches it from the registry, so a warm run ends exactly as a cold one).
//!
//! With trusted keys (docs/format.md §10), a verified signature is recorded as the fingerprint
//! of the key that made it, keyed by identity and digest: a warm run accepts the record only
//! while that key is still trusted, so removing a key sends the next run to the registry.

use std::path::{Path, PathBuf};

use crate::archive::Limits;
use crate::digest::Digest;
use crate::format::Expected;
use crate::ids::ReleaseId;
use crate::oci::layout::Layout;
use crate::oci::reference::LayoutImage;
use crate::oci::{ImageRef, OciError, Store};
use crate::release::{self, Release, ReleaseError};

pub struct Cache {
    dir: PathBuf,
    rendered: PathBuf,
    signed: PathBuf,
}

/// The rendering depends on this binary's code, so a new version renders afresh.
const RENDER_VERSION: &str = env!("CARGO_PKG_VERSION");

/// The last line of a rendered entry: `#crc32:<8 hex> len:<body length>`.
fn trailer_line(crc: &flate2::Crc) -> String {
    format!("#crc32:{:08x} len:{}\n", crc.sum(), crc.amount())
}

#[cfg(test)]
fn trailer(body: &[u8]) -> String {
    let mut crc = flate2::Crc::new();
    crc.update(body);
    trailer_line(&crc)
}

/// A writer that keeps the CRC-32 of what went through it.
struct Checksummed<W> {
    inner: W,
    crc: flate2::Crc,
}

impl<W: std::io::Write> std::io::Write for Checksummed<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.crc.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Size of the buffer rendered entries are read through: reusing one small buffer keeps a
/// warm run of a 100 MB release free of fresh pages, which cost more than the copying.
const READ_CHUNK: usize = 1 << 20;

/// The CRC and body length recorded in the trailer line that ends `tail` (the last bytes of
/// an entry of `total` bytes), when it is well formed and says where the body ends.
fn parse_trailer(tail: &[u8], total: u64) -> Option<(u32, u64)> {
    let without_newline = tail.strip_suffix(b"\n")?;
    let start = match without_newline.iter().rposition(|&b| b == b'\n') {
        Some(i) => i + 1,
        // No line before the trailer: only when the entry is the trailer alone.
        None if tail.len() as u64 == total => 0,
        None => return None,
    };
    let line = std::str::from_utf8(&without_newline[start..]).ok()?;
    let (hex, len) = line.strip_prefix("#crc32:")?.split_once(" len:")?;
    let crc = u32::from_str_radix(hex, 16).ok()?;
    let len: u64 = len.parse().ok()?;
    let canonical = format!("#crc32:{crc:08x} len:{len}");
    (line == canonical && len + (tail.len() - start) as u64 == total).then_some((crc, len))
}

/// The CRC-32 of the next `len` bytes of `from`, read through `buf` (each chunk handed to
/// `each` too), or `None` when there are fewer.
fn crc_of(
    from: &mut impl std::io::Read,
    len: u64,
    buf: &mut [u8],
    mut each: impl FnMut(&[u8]) -> std::io::Result<()>,
) -> std::io::Result<Option<u32>> {
    use std::io::Read as _;
    let mut crc = flate2::Crc::new();
    let mut from = from.take(len);
    loop {
        let n = from.read(buf)?;
        if n == 0 {
            break;
        }
        crc.update(&buf[..n]);
        each(&buf[..n])?;
    }
    Ok((from.limit() == 0).then(|| crc.sum()))
}

/// The body's length when `entry` is a body followed by its [`trailer`] and the CRC matches.
fn verify_entry(
    entry: &mut (impl std::io::Read + std::io::Seek),
    buf: &mut [u8],
) -> std::io::Result<Option<(u32, u64)>> {
    use std::io::SeekFrom;
    let total = entry.seek(SeekFrom::End(0))?;
    let tail_len = total.min(64);
    entry.seek(SeekFrom::Start(total - tail_len))?;
    let mut tail = vec![0; tail_len as usize];
    entry.read_exact(&mut tail)?;
    let Some((crc, len)) = parse_trailer(&tail, total) else {
        return Ok(None);
    };
    entry.seek(SeekFrom::Start(0))?;
    Ok((crc_of(entry, len, buf, |_| Ok(()))? == Some(crc)).then_some((crc, len)))
}

/// A verified rendered entry, open: [`Self::write_to`] copies its body.
pub struct RenderedEntry {
    file: std::fs::File,
    crc: u32,
    len: u64,
    /// The buffer the entry was checked through, used again to copy it out.
    buf: Vec<u8>,
}

impl RenderedEntry {
    /// Copies the body, checking it again on the way: entries are replaced, never changed in
    /// place, so a difference means someone wrote into the cache directory in place. That is
    /// an error (and a non-zero exit), though bytes may have been written by then.
    pub fn write_to(&mut self, out: &mut dyn std::io::Write) -> std::io::Result<()> {
        use std::io::{Seek as _, SeekFrom};
        self.file.seek(SeekFrom::Start(0))?;
        let crc = crc_of(&mut self.file, self.len, &mut self.buf, |chunk| {
            out.write_all(chunk)
        })?;
        if crc != Some(self.crc) {
            return Err(std::io::Error::other(
                "rendered cache entry changed while it was being written out",
            ));
        }
        Ok(())
    }
}

/// What a cache lookup came to.
pub enum Lookup {
    Hit(Box<Release>),
    Miss,
    /// The entry is a sound release, but not the one asked for (the reason is for the log).
    Other(String),
    /// The entry failed verification and was removed; the reason is for the log.
    Discarded(String),
}

impl Cache {
    #[must_use]
    pub fn new(dir: &Path) -> Self {
        Self {
            dir: dir.join("oci"),
            rendered: dir.join("rendered"),
            signed: dir.join("signed"),
        }
    }

    /// Named by digest and identity: the entry of one digest is never found for another
    /// identity, so it need not be read to be refused.
    fn rendered_path(&self, id: &ReleaseId, digest: &Digest) -> PathBuf {
        let identity = crate::digest::sha256_hex(
            format!("{}\0{}\0{}", id.repository, id.project, id.commit).as_bytes(),
        );
        self.rendered.join(format!(
            "{}.{}.v{RENDER_VERSION}.r3.yaml",
            digest.hex(),
            &identity[..32]
        ))
    }

    /// The release's rendered manifests, as a previous run produced them from the verified
    /// blobs of the release pinned by `digest`, verified to be the release `id`. The entry ends with a line recording the
    /// body's length and CRC-32, and is checked against it, so a torn or corrupted entry is
    /// discarded (and rendered again from verified blobs), never printed. Like the blob cache,
    /// it trusts the cache directory's owner (only the sidecar's user can write there): a
    /// stronger hash would add no protection against someone who can rewrite the trailer too.
    #[must_use]
    pub fn rendered(&self, id: &ReleaseId, digest: &Digest) -> Option<RenderedEntry> {
        let path = self.rendered_path(id, digest);
        let mut file = std::fs::File::open(&path).ok()?;
        let size = file.metadata().ok()?.len();
        let mut buf = vec![0; usize::try_from(size).map_or(READ_CHUNK, |s| s.clamp(1, READ_CHUNK))];
        if let Ok(Some((crc, len))) = verify_entry(&mut file, &mut buf) {
            return Some(RenderedEntry {
                file,
                crc,
                len,
                buf,
            });
        }
        crate::log::info(&format!(
            "{}: rendered cache entry is corrupt; rendering again",
            path.display()
        ));
        let _ = std::fs::remove_file(&path);
        None
    }

    /// Stores the rendered manifests of the release pinned by `digest`, verified to be the
    /// release `id`, as `write` writes them, followed by their trailer (temp file + rename).
    pub fn put_rendered(
        &self,
        id: &ReleaseId,
        digest: &Digest,
        write: impl FnOnce(&mut dyn std::io::Write) -> std::io::Result<()>,
    ) -> std::io::Result<()> {
        use std::io::Write as _;
        std::fs::create_dir_all(&self.rendered)?;
        let tmp = tempfile::NamedTempFile::new_in(&self.rendered)?;
        let mut out = Checksummed {
            inner: std::io::BufWriter::with_capacity(64 * 1024, tmp),
            crc: flate2::Crc::new(),
        };
        write(&mut out)?;
        let mut file = out
            .inner
            .into_inner()
            .map_err(std::io::IntoInnerError::into_error)?;
        file.write_all(trailer_line(&out.crc).as_bytes())?;
        file.persist(self.rendered_path(id, digest))
            .map_err(|e| e.error)?;
        Ok(())
    }

    fn signed_path(&self, id: &ReleaseId, digest: &Digest) -> PathBuf {
        let identity = crate::digest::sha256_hex(
            format!("{}\0{}\0{}", id.repository, id.project, id.commit).as_bytes(),
        );
        self.signed
            .join(format!("{}.{}.sig", digest.hex(), &identity[..32]))
    }

    /// The fingerprint of the key whose signature of release `id` at `digest` an earlier run
    /// verified, if any.
    #[must_use]
    pub fn signed_by(&self, id: &ReleaseId, digest: &Digest) -> Option<String> {
        let text = std::fs::read_to_string(self.signed_path(id, digest)).ok()?;
        let line = text.strip_suffix('\n')?;
        (line.starts_with("SHA256:") && !line.contains('\n')).then(|| line.to_owned())
    }

    /// Records that `fingerprint`'s signature of release `id` at `digest` verified.
    pub fn put_signed(
        &self,
        id: &ReleaseId,
        digest: &Digest,
        fingerprint: &str,
    ) -> std::io::Result<()> {
        use std::io::Write as _;
        std::fs::create_dir_all(&self.signed)?;
        let mut tmp = tempfile::NamedTempFile::new_in(&self.signed)?;
        tmp.write_all(format!("{fingerprint}\n").as_bytes())?;
        tmp.persist(self.signed_path(id, digest))
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

    /// Reads the release with manifest `digest`, fully verified, if the cache has it and it
    /// is the release `id`. The entry is verified on its own first, so that a sound entry asked
    /// for under another identity is left in place (and reported as [`Lookup::Other`]).
    pub async fn get(&self, id: &ReleaseId, digest: &Digest, limits: &Limits) -> Lookup {
        let Ok(layout) = Layout::open(&self.dir) else {
            return Lookup::Miss;
        };
        let store = Store::Layout(layout);
        let image = self.image(digest);
        match release::read_from(&store, &image, &Expected::default(), limits).await {
            Ok(r) if r.id() == *id => Lookup::Hit(Box::new(r)),
            Ok(r) => Lookup::Other(format!("it holds {}, not {id}", r.id())),
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
                let _ = std::fs::remove_file(layout.blob_path(&d.digest));
            }
        }
        let _ = std::fs::remove_file(layout.blob_path(digest));
    }

    /// Stores a verified release: blobs first, manifest last, so a manifest in the cache
    /// always has its blobs (unless one was removed, which verification then catches).
    pub fn put(&self, release: &Release) -> Result<(), OciError> {
        let layout = Layout::create_cache(&self.dir)?;
        let located = release.located();
        for (descriptor, bytes) in [
            (&located.config, release.config_bytes()),
            (&located.metadata, release.metadata_bytes()),
            (&located.resources, release.resources_layer()),
        ] {
            // The bytes were verified against these digests: no need to hash them again.
            layout.put_blob(&descriptor.digest, bytes)?;
        }
        layout.put_blob(release.manifest_digest(), release.manifest_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(entry: &[u8]) -> Option<u64> {
        verify_entry(&mut std::io::Cursor::new(entry), &mut vec![0; READ_CHUNK])
            .unwrap()
            .map(|(_, len)| len)
    }

    #[test]
    fn a_rendered_entry_is_its_body_and_a_trailer_that_checks_it() {
        let body = b"---\napiVersion: v1\nkind: A\nmetadata: {name: a}\n".to_vec();
        let entry = [body.as_slice(), trailer(&body).as_bytes()].concat();
        assert_eq!(check(&entry), Some(body.len() as u64));
        assert_eq!(check(trailer(b"").as_bytes()), Some(0));
        // Bodies longer than a read chunk are checked whole.
        let mut big = vec![b'x'; READ_CHUNK * 2 + 7];
        big.push(b'\n');
        let mut big_entry = [big.as_slice(), trailer(&big).as_bytes()].concat();
        assert_eq!(check(&big_entry), Some(big.len() as u64));
        big_entry[READ_CHUNK + 1] = b'y';
        assert_eq!(check(&big_entry), None);
        // A flipped byte, a torn end, extra bytes, or no trailer at all: refused.
        let mut flipped = entry.clone();
        flipped[5] ^= 1;
        assert_eq!(check(&flipped), None);
        assert_eq!(check(&entry[..entry.len() - 3]), None);
        assert_eq!(check(&[entry.as_slice(), b"x\n"].concat()), None);
        assert_eq!(check(&[b"x".as_slice(), &entry].concat()), None);
        assert_eq!(check(&body), None);
        assert_eq!(check(b""), None);
    }
}
