//! The resources layer of a release image: a gzip'd tar of Kubernetes manifest files
//! (DESIGN.md §3 "Resources layer", §5 rule 3).
//!
//! Invariants:
//!
//! - [`build`] is a pure function of its input. Entries are sorted bytewise by normalised path,
//!   regular files only (no directory entries), mode 0644, uid/gid 0, empty user and group
//!   names, mtime 0, GNU headers (paths over 100 bytes use a GNU `././@LongLink` entry, itself
//!   fixed), the standard two zero blocks at the end; one gzip member with mtime 0, no file name,
//!   no comment, OS byte 255, compression level 6 with flate2's zlib-rs backend. Same input,
//!   same bytes, same digest. Changing the deflate backend or its version may change the bytes
//!   (`build_output_is_pinned` catches that).
//! - [`read`] works in memory only and never touches the file system. It never holds more than
//!   `max_total_bytes + 1` bytes of decompressed tar stream: a gzip bomb fails while it is being
//!   decompressed, not after.
//! - Everything [`read`] returns is a regular file with a normalised relative path (no `./`, no
//!   empty or `.` components, no trailing slash), a `.yaml`, `.yml` or `.json` extension, within
//!   the per-file cap, unique, and not used as a directory by another entry. The result is sorted
//!   by path and holds at least one file.
//! - Anything an extracting tool could read differently from us is an error rather than a guess:
//!   links, devices, FIFOs, unknown entry types, `..`, absolute or backslash paths, a PAX `size`
//!   that disagrees with the header (CVE-2026-33056-style parser differentials), non-zero bytes
//!   after the end-of-archive marker (what `tar --ignore-zeros` would read), a second gzip member
//!   (what `gzip -d` would read), a truncated stream.
//! - Paths inside error messages are printed with Rust's `{:?}` escaping, so hostile names cannot
//!   inject newlines or control characters into logs.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Read};

use bytes::Bytes;
use flate2::bufread::GzDecoder;
use flate2::{Compression, GzBuilder};
use tar::{Archive, Builder, EntryType, Header};

/// Size of a tar block.
const BLOCK: u64 = 512;
/// The end-of-archive marker is two zero blocks.
const END_OF_ARCHIVE: u64 = 2 * BLOCK;
/// File name endings accepted for manifest files.
pub const EXTENSIONS: [&str; 3] = [".yaml", ".yml", ".json"];

/// Caps applied by [`read`] to untrusted archives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Cap on the decompressed tar stream (headers, data and padding included).
    pub max_total_bytes: u64,
    /// Cap on the number of regular files.
    pub max_files: usize,
    /// Cap on the size of one regular file.
    pub max_file_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_total_bytes: 64 * 1024 * 1024,
            max_files: 10_000,
            max_file_bytes: 16 * 1024 * 1024,
        }
    }
}

/// A regular file read from the archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct File {
    /// Normalised relative path, `/`-separated.
    pub path: String,
    /// The file's bytes: a view of the decompressed archive, shared rather than copied.
    pub data: Bytes,
}

/// Why an archive could not be built or read. Paths are as found in the archive.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ArchiveError {
    #[error("resources archive is not a valid gzip stream")]
    Gzip {
        #[source]
        source: io::Error,
    },
    #[error("resources archive exceeds the limit of {limit} uncompressed bytes")]
    TooLarge { limit: u64 },
    #[error(
        "resources archive has a second gzip member at byte {offset}: expected exactly one member"
    )]
    SecondGzipMember { offset: usize },
    #[error(
        "resources archive has {len} bytes of trailing data at byte {offset} after the gzip stream"
    )]
    TrailingGzipData { offset: usize, len: usize },
    #[error("resources archive is not a valid tar stream")]
    Tar {
        #[source]
        source: io::Error,
    },
    #[error(
        "resources archive has non-zero data at tar offset {offset} after the end-of-archive marker"
    )]
    TrailingTarData { offset: u64 },
    #[error(
        "resources archive has no end-of-archive marker: expected {END_OF_ARCHIVE} zero bytes after the last entry, found {found}"
    )]
    MissingEndOfArchive { found: u64 },
    #[error("archive entry {path:?} is truncated: expected {expected} bytes, found {actual}")]
    TruncatedEntry {
        path: String,
        expected: u64,
        actual: u64,
    },
    #[error("archive entry at tar offset {offset} has an empty path")]
    EmptyPath { offset: u64 },
    #[error("archive entry path {path:?} is not valid UTF-8")]
    NonUtf8Path { path: String },
    #[error("archive entry path {path:?} contains a NUL byte")]
    NulInPath { path: String },
    #[error("archive entry path {path:?} contains a control character")]
    ControlInPath { path: String },
    #[error("archive entry path {path:?} contains a backslash: expected `/` separators")]
    Backslash { path: String },
    #[error("archive entry path {path:?} is absolute: expected a relative path")]
    AbsolutePath { path: String },
    #[error("archive entry path {path:?} has a `..` component")]
    ParentComponent { path: String },
    #[error("archive entry {path:?} is a symlink to {target:?}: expected a regular file")]
    Symlink { path: String, target: String },
    #[error("archive entry {path:?} is a hard link to {target:?}: expected a regular file")]
    Hardlink { path: String, target: String },
    #[error("archive entry {path:?} is a character device: expected a regular file")]
    CharDevice { path: String },
    #[error("archive entry {path:?} is a block device: expected a regular file")]
    BlockDevice { path: String },
    #[error("archive entry {path:?} is a FIFO: expected a regular file")]
    Fifo { path: String },
    #[error(
        "archive entry {path:?} has unsupported type {entry_type:?}: expected a regular file or directory"
    )]
    UnsupportedEntryType { path: String, entry_type: char },
    #[error("archive entry {path:?} has a PAX size of {pax:?} but a header size of {header}")]
    PaxSizeMismatch {
        path: String,
        header: u64,
        pax: String,
    },
    #[error("archive entry {path:?} appears more than once")]
    DuplicatePath { path: String },
    #[error("archive entry {path:?} conflicts with file {file:?}, which it uses as a directory")]
    PathConflict { path: String, file: String },
    #[error("resources archive has more than {limit} files")]
    TooManyFiles { limit: usize },
    #[error("archive entry {path:?} is {size} bytes: the limit is {limit}")]
    FileTooLarge { path: String, size: u64, limit: u64 },
    #[error("resources archive holds no regular files: expected at least one manifest")]
    NoFiles,
    #[error("archive entry {path:?} is not a manifest: expected a .yaml, .yml or .json file")]
    BadExtension { path: String },
    #[error("cannot write archive entry {path:?}")]
    Write {
        path: String,
        #[source]
        source: io::Error,
    },
}

/// Builds the reproducible tar.gz for `files` (path, contents). Paths are validated with the
/// rules [`read`] applies and written normalised; the result reads back with [`read`].
///
/// # Errors
///
/// An invalid, duplicate or conflicting path, a bad extension, or no files at all.
pub fn build(files: &[(String, Vec<u8>)]) -> Result<Vec<u8>, ArchiveError> {
    let mut sorted: BTreeMap<String, &[u8]> = BTreeMap::new();
    for (raw, data) in files {
        let path = normalise_path(raw.as_bytes())?;
        if path.is_empty() {
            return Err(ArchiveError::EmptyPath { offset: 0 });
        }
        check_extension(&path)?;
        if sorted.insert(path, data).is_some() {
            return Err(ArchiveError::DuplicatePath { path: raw.clone() });
        }
    }
    if sorted.is_empty() {
        return Err(ArchiveError::NoFiles);
    }
    check_conflicts(sorted.keys(), &BTreeSet::new())?;

    let gz = GzBuilder::new()
        .mtime(0)
        .write(Vec::new(), Compression::default());
    let mut builder = Builder::new(gz);
    for (path, data) in &sorted {
        let mut header = Header::new_gnu();
        header.set_entry_type(EntryType::Regular);
        header.set_mode(0o644);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        header.set_size(data.len() as u64);
        builder
            .append_data(&mut header, path, *data)
            .map_err(|source| ArchiveError::Write {
                path: path.clone(),
                source,
            })?;
    }
    let write_err = |source| ArchiveError::Write {
        path: String::new(),
        source,
    };
    // `into_inner` writes the two zero blocks that end the archive.
    let gz = builder.into_inner().map_err(write_err)?;
    gz.finish().map_err(write_err)
}

/// Reads and checks an untrusted resources layer in memory. Returns the regular files, sorted
/// by normalised path.
///
/// # Errors
///
/// Any of the conditions in the module documentation, each with its own [`ArchiveError`].
pub fn read(gz: &[u8], limits: &Limits) -> Result<Vec<File>, ArchiveError> {
    read_with(gz, limits, |_| {})
}

/// As [`read`], and hands each regular file to `each` as soon as it is decompressed, so that
/// work on the files can overlap the decompression. `each` sees files in archive order and
/// before the archive as a whole has been checked: its results mean nothing unless this
/// returns `Ok`.
///
/// # Errors
///
/// As [`read`], with the same precedence: faults of the gzip stream (including its size cap)
/// first, then of the tar stream, as if the whole stream had been decompressed first.
pub fn read_with(
    gz: &[u8],
    limits: &Limits,
    mut each: impl FnMut(&File),
) -> Result<Vec<File>, ArchiveError> {
    let cap = limits.max_total_bytes;
    let mut input = Inflate {
        decoder: GzDecoder::new(gz),
        cap,
        count: 0,
        error: None,
    };
    let walked = walk(&mut input, limits, &mut each);
    // Read what the tar reader left, to find faults of the gzip stream before reporting the
    // tar's; after the last entry it must be zeros (the end-of-archive marker and padding).
    let mut first_nonzero = None;
    let mut buf = vec![0; 64 * 1024];
    loop {
        let at = input.count;
        match input.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if first_nonzero.is_none()
                    && let Some(pos) = buf[..n].iter().position(|b| *b != 0)
                {
                    first_nonzero = Some(at + pos as u64);
                }
            }
        }
    }
    if let Some(source) = input.error.take() {
        return Err(ArchiveError::Gzip { source });
    }
    if input.count > cap {
        return Err(ArchiveError::TooLarge { limit: cap });
    }
    // The bufread decoder consumed exactly one member (header, deflate data, CRC and size, all
    // verified at its end); what is left of the input must be nothing.
    let rest = input.decoder.into_inner();
    if !rest.is_empty() {
        let offset = gz.len().saturating_sub(rest.len());
        return Err(if rest.starts_with(&[0x1f, 0x8b]) {
            ArchiveError::SecondGzipMember { offset }
        } else {
            ArchiveError::TrailingGzipData {
                offset,
                len: rest.len(),
            }
        });
    }
    let Walked { files, dirs, end } = walked?;

    // The tar reader stops at the first zero block, which it has consumed. Everything after
    // the last entry must be zeros, and there must be a whole end-of-archive marker.
    if let Some(offset) = first_nonzero {
        return Err(ArchiveError::TrailingTarData { offset });
    }
    let tail = input.count.saturating_sub(end);
    if tail < END_OF_ARCHIVE {
        return Err(ArchiveError::MissingEndOfArchive { found: tail });
    }
    if files.is_empty() {
        return Err(ArchiveError::NoFiles);
    }
    check_conflicts(files.keys(), &dirs)?;
    Ok(files
        .into_iter()
        .map(|(path, data)| File { path, data })
        .collect())
}

/// The decompressed tar stream: counts what it hands out, stops after `cap + 1` bytes (so a
/// bomb stops there, however large it claims to be), and keeps the decoder's own error, which
/// the tar reader would otherwise report as its own.
struct Inflate<'a> {
    decoder: GzDecoder<&'a [u8]>,
    cap: u64,
    count: u64,
    error: Option<io::Error>,
}

impl Read for Inflate<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let room = self.cap.saturating_add(1).saturating_sub(self.count);
        let len = buf.len().min(usize::try_from(room).unwrap_or(usize::MAX));
        if len == 0 {
            return Ok(0);
        }
        match self.decoder.read(&mut buf[..len]) {
            Ok(n) => {
                self.count += n as u64;
                Ok(n)
            }
            Err(e) => {
                let reported = io::Error::new(e.kind(), e.to_string());
                self.error.get_or_insert(e);
                Err(reported)
            }
        }
    }
}

/// What walking the tar stream found.
struct Walked {
    files: BTreeMap<String, Bytes>,
    dirs: BTreeSet<String>,
    /// Where the last entry's data (rounded to a block) ends: the end-of-archive marker follows.
    end: u64,
}

fn tar_error(source: io::Error) -> ArchiveError {
    ArchiveError::Tar { source }
}

/// Walks the tar stream up to its end-of-archive marker, reading each regular file.
fn walk(
    input: impl Read,
    limits: &Limits,
    each: &mut impl FnMut(&File),
) -> Result<Walked, ArchiveError> {
    let mut files: BTreeMap<String, Bytes> = BTreeMap::new();
    let mut dirs: BTreeSet<String> = BTreeSet::new();
    let mut end: u64 = 0;

    let mut archive = Archive::new(input);
    for entry in archive.entries().map_err(tar_error)? {
        let mut entry = entry.map_err(tar_error)?;
        let offset = entry.raw_header_position();
        let size = entry.size();
        end = offset
            .checked_add(BLOCK)
            .and_then(|e| e.checked_add(size.checked_next_multiple_of(BLOCK)?))
            .ok_or_else(|| tar_error(io::Error::other("entry size overflows")))?;

        let raw_path = entry.path_bytes().into_owned();
        let shown = String::from_utf8_lossy(&raw_path).into_owned();
        if raw_path.is_empty() {
            return Err(ArchiveError::EmptyPath { offset });
        }
        let path = normalise_path(&raw_path)?;
        check_pax_size(&mut entry, &shown)?;

        if !is_regular_file(&entry, &raw_path, shown.clone())? {
            // A directory: allowed, checked for conflicts, otherwise ignored. `./` (from
            // `tar -C dir .`) normalises to the empty path, the root itself.
            if !path.is_empty() {
                dirs.insert(path);
            }
            continue;
        }

        if path.is_empty() {
            return Err(ArchiveError::EmptyPath { offset });
        }
        check_extension(&path)?;
        if files.contains_key(&path) {
            return Err(ArchiveError::DuplicatePath { path: shown });
        }
        if files.len() >= limits.max_files {
            return Err(ArchiveError::TooManyFiles {
                limit: limits.max_files,
            });
        }
        // Checked on the header's word, before a byte is read or allocated.
        if size > limits.max_file_bytes {
            return Err(ArchiveError::FileTooLarge {
                path: shown,
                size,
                limit: limits.max_file_bytes,
            });
        }
        let mut data = Vec::with_capacity(usize::try_from(size).unwrap_or(usize::MAX));
        entry.read_to_end(&mut data).map_err(tar_error)?;
        let actual = data.len() as u64;
        if actual != size {
            return Err(ArchiveError::TruncatedEntry {
                path: shown,
                expected: size,
                actual,
            });
        }
        let file = File {
            path,
            data: Bytes::from(data),
        };
        each(&file);
        files.insert(file.path, file.data);
    }
    Ok(Walked { files, dirs, end })
}

/// Whether an entry is a regular file (`true`) or a directory (`false`); anything else is an
/// error naming the entry.
fn is_regular_file<R: Read>(
    entry: &tar::Entry<'_, R>,
    raw_path: &[u8],
    path: String,
) -> Result<bool, ArchiveError> {
    let target = || {
        entry
            .link_name_bytes()
            .map(|t| String::from_utf8_lossy(&t).into_owned())
            .unwrap_or_default()
    };
    match entry.header().entry_type() {
        // A "regular" entry whose name ends in `/` is a directory in pre-POSIX archives;
        // GNU tar and Go's archive/tar read it so, and so do we.
        EntryType::Regular => Ok(!raw_path.ends_with(b"/")),
        EntryType::Directory => Ok(false),
        EntryType::Symlink => Err(ArchiveError::Symlink {
            target: target(),
            path,
        }),
        EntryType::Link => Err(ArchiveError::Hardlink {
            target: target(),
            path,
        }),
        EntryType::Char => Err(ArchiveError::CharDevice { path }),
        EntryType::Block => Err(ArchiveError::BlockDevice { path }),
        EntryType::Fifo => Err(ArchiveError::Fifo { path }),
        other => Err(ArchiveError::UnsupportedEntryType {
            path,
            entry_type: char::from(other.as_byte()),
        }),
    }
}

/// Validates a raw entry path and returns it normalised: `.` and empty components dropped,
/// so `./a//b/` becomes `a/b`. The root (`.`, `./`) normalises to the empty string.
fn normalise_path(raw: &[u8]) -> Result<String, ArchiveError> {
    let shown = || String::from_utf8_lossy(raw).into_owned();
    if raw.is_empty() {
        return Err(ArchiveError::EmptyPath { offset: 0 });
    }
    if raw.contains(&0) {
        return Err(ArchiveError::NulInPath { path: shown() });
    }
    let Ok(text) = std::str::from_utf8(raw) else {
        return Err(ArchiveError::NonUtf8Path { path: shown() });
    };
    // A newline in a path would forge lines in every message that names the file.
    if text.chars().any(char::is_control) {
        return Err(ArchiveError::ControlInPath { path: shown() });
    }
    if text.contains('\\') {
        return Err(ArchiveError::Backslash { path: shown() });
    }
    if text.starts_with('/') {
        return Err(ArchiveError::AbsolutePath { path: shown() });
    }
    let mut parts = Vec::new();
    for part in text.split('/') {
        match part {
            "" | "." => {}
            ".." => return Err(ArchiveError::ParentComponent { path: shown() }),
            part => parts.push(part),
        }
    }
    Ok(parts.join("/"))
}

fn check_extension(path: &str) -> Result<(), ArchiveError> {
    let name = path.rsplit('/').next().unwrap_or(path);
    if EXTENSIONS.iter().any(|ext| name.ends_with(ext)) {
        Ok(())
    } else {
        Err(ArchiveError::BadExtension {
            path: path.to_owned(),
        })
    }
}

/// A PAX `size` record overrides the header's size field in the tar crate, but not in every
/// reader: two readers seeing different files in the same bytes is how CVE-2026-33056-style
/// smuggling works. They must agree.
fn check_pax_size<R: Read>(entry: &mut tar::Entry<'_, R>, path: &str) -> Result<(), ArchiveError> {
    let header = entry.header().entry_size().map_err(tar_error)?;
    let Some(extensions) = entry.pax_extensions().map_err(tar_error)? else {
        return Ok(());
    };
    for extension in extensions {
        let extension = extension.map_err(tar_error)?;
        if extension.key_bytes() != b"size" {
            continue;
        }
        let value = extension.value_bytes();
        let pax = std::str::from_utf8(value)
            .ok()
            .and_then(|v| v.parse::<u64>().ok());
        if pax != Some(header) {
            return Err(ArchiveError::PaxSizeMismatch {
                path: path.to_owned(),
                header,
                pax: String::from_utf8_lossy(value).into_owned(),
            });
        }
    }
    Ok(())
}

/// No file may be used as a directory by another entry (`a.yaml` and `a.yaml/b.yaml`), and no
/// directory entry may name a file.
fn check_conflicts<'a>(
    files: impl Iterator<Item = &'a String> + Clone,
    dirs: &'a BTreeSet<String>,
) -> Result<(), ArchiveError> {
    let file_set: BTreeSet<&str> = files.clone().map(String::as_str).collect();
    for path in files
        .map(String::as_str)
        .chain(dirs.iter().map(String::as_str))
    {
        let mut ancestors = path.match_indices('/').map(|(i, _)| path.get(..i));
        if let Some(file) = ancestors.find_map(|a| a.filter(|a| file_set.contains(a))) {
            return Err(ArchiveError::PathConflict {
                path: path.to_owned(),
                file: file.to_owned(),
            });
        }
    }
    if let Some(dir) = dirs.iter().find(|d| file_set.contains(d.as_str())) {
        return Err(ArchiveError::PathConflict {
            path: format!("{dir}/"),
            file: dir.clone(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::write::GzEncoder;
    use std::io::Write;
    use std::time::{Duration, Instant};

    // ---- helpers that build hostile archives from raw bytes ----

    /// A raw 512-byte ustar header. `tar::Header::set_path` refuses `..`, so hostile names are
    /// written into the bytes directly.
    fn header(name: &[u8], size: u64, typeflag: u8, link: &[u8]) -> Vec<u8> {
        let mut h = vec![0u8; 512];
        h[..name.len()].copy_from_slice(name);
        h[100..108].copy_from_slice(b"0000644\0");
        h[108..116].copy_from_slice(b"0000000\0");
        h[116..124].copy_from_slice(b"0000000\0");
        h[124..136].copy_from_slice(format!("{size:011o}\0").as_bytes());
        h[136..148].copy_from_slice(b"00000000000\0");
        h[156] = typeflag;
        h[157..157 + link.len()].copy_from_slice(link);
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        h[148..156].copy_from_slice(b"        ");
        let sum: u32 = h.iter().map(|b| u32::from(*b)).sum();
        h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        h
    }

    /// Header plus data padded to a block.
    fn entry(name: &[u8], typeflag: u8, data: &[u8]) -> Vec<u8> {
        let mut out = header(name, data.len() as u64, typeflag, b"");
        out.extend_from_slice(data);
        out.resize(out.len().next_multiple_of(512), 0);
        out
    }

    fn file(name: &str, data: &[u8]) -> Vec<u8> {
        entry(name.as_bytes(), b'0', data)
    }

    fn link(name: &str, typeflag: u8, target: &str) -> Vec<u8> {
        header(name.as_bytes(), 0, typeflag, target.as_bytes())
    }

    /// A PAX extended header (`x`) carrying `records`, for the entry that follows it.
    fn pax(records: &[(&str, &[u8])]) -> Vec<u8> {
        let mut body = Vec::new();
        for (key, value) in records {
            let rest = 3 + key.len() + value.len(); // ' ' + '=' + '\n'
            let mut len = rest + 1;
            while len != rest + len.to_string().len() {
                len = rest + len.to_string().len();
            }
            body.extend_from_slice(format!("{len} {key}=").as_bytes());
            body.extend_from_slice(value);
            body.push(b'\n');
        }
        entry(b"PaxHeaders/x", b'x', &body)
    }

    fn tarball(entries: &[Vec<u8>]) -> Vec<u8> {
        let mut out: Vec<u8> = entries.concat();
        out.extend_from_slice(&[0u8; 1024]);
        out
    }

    fn gunzip(gz: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(gz)
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut enc = GzEncoder::new(Vec::new(), Compression::default());
        enc.write_all(bytes).unwrap();
        enc.finish().unwrap()
    }

    fn read_tar(entries: &[Vec<u8>]) -> Result<Vec<File>, ArchiveError> {
        read(&gzip(&tarball(entries)), &Limits::default())
    }

    const DOC: &[u8] = b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n";

    fn sample() -> Vec<(String, Vec<u8>)> {
        vec![
            ("z.yaml".to_owned(), DOC.to_vec()),
            ("./b/c.yml".to_owned(), b"{}".to_vec()),
            ("a.json".to_owned(), b"{\"kind\":\"x\"}".to_vec()),
            (format!("{}/long.yaml", "d".repeat(150)), DOC.to_vec()),
            (format!("{}.yaml", "e".repeat(95)), Vec::new()),
        ]
    }

    fn sha256_hex(bytes: &[u8]) -> String {
        use sha2::{Digest, Sha256};
        use std::fmt::Write as _;
        Sha256::digest(bytes)
            .iter()
            .fold(String::new(), |mut hex, b| {
                write!(hex, "{b:02x}").unwrap();
                hex
            })
    }

    // ---- writer ----

    #[test]
    fn built_archive_reads_back_sorted_and_normalised() {
        let files = read(&build(&sample()).unwrap(), &Limits::default()).unwrap();
        let paths: Vec<&str> = files.iter().map(|f| f.path.as_str()).collect();
        let long = format!("{}/long.yaml", "d".repeat(150));
        let hundred = format!("{}.yaml", "e".repeat(95));
        assert_eq!(
            paths,
            [
                "a.json",
                "b/c.yml",
                long.as_str(),
                hundred.as_str(),
                "z.yaml"
            ]
        );
        assert_eq!(files[4].data, DOC);
        assert_eq!(&files[3].data[..], b"");
    }

    #[test]
    fn same_input_gives_identical_bytes_in_any_order() {
        let mut reversed = sample();
        reversed.reverse();
        assert_eq!(build(&sample()).unwrap(), build(&reversed).unwrap());
    }

    #[test]
    fn build_output_is_pinned() {
        // If this changes, every release digest changes: a format break (DESIGN.md §3).
        let bytes = build(&[("a.yaml".to_owned(), DOC.to_vec())]).unwrap();
        assert_eq!(
            sha256_hex(&bytes),
            "5b2c6ece0ff5235d6d388ff40d689d6f56125156c668d2ae634aab0a047cef79"
        );
    }

    #[test]
    fn built_headers_are_fixed() {
        let gz = build(&sample()).unwrap();
        // gzip: magic, deflate, no flags (no name, no comment), mtime 0, xfl 0, OS unknown.
        assert_eq!(gz[..10], [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255]);
        let tar = gunzip(&gz);
        assert_eq!(tar.len() % 512, 0);
        assert!(tar[tar.len() - 1024..].iter().all(|b| *b == 0));
        let mut archive = Archive::new(tar.as_slice());
        let mut kinds = Vec::new();
        for e in archive.entries().unwrap().raw(true) {
            let e = e.unwrap();
            let h = e.header();
            kinds.push(h.entry_type());
            assert!(h.as_gnu().is_some());
            assert_eq!(h.mode().unwrap(), 0o644);
            assert_eq!(h.uid().unwrap(), 0);
            assert_eq!(h.gid().unwrap(), 0);
            assert_eq!(h.mtime().unwrap(), 0);
            assert_eq!(h.username_bytes(), Some(&b""[..]));
            assert_eq!(h.groupname_bytes(), Some(&b""[..]));
        }
        // One long-name entry for the 160-byte path, five regular files, no directories.
        assert_eq!(
            kinds
                .iter()
                .filter(|k| **k == EntryType::GNULongName)
                .count(),
            1
        );
        assert_eq!(
            kinds.iter().filter(|k| **k == EntryType::Regular).count(),
            5
        );
        assert_eq!(kinds.len(), 6);
    }

    #[test]
    fn build_rejects_what_read_rejects() {
        let one = |p: &str| build(&[(p.to_owned(), DOC.to_vec())]).unwrap_err();
        assert!(matches!(
            one("../x.yaml"),
            ArchiveError::ParentComponent { .. }
        ));
        assert!(matches!(one("/x.yaml"), ArchiveError::AbsolutePath { .. }));
        assert!(matches!(one("a\\b.yaml"), ArchiveError::Backslash { .. }));
        assert!(matches!(one(""), ArchiveError::EmptyPath { .. }));
        assert!(matches!(one("./"), ArchiveError::EmptyPath { .. }));
        assert!(matches!(one("a.txt"), ArchiveError::BadExtension { .. }));
        assert!(matches!(build(&[]).unwrap_err(), ArchiveError::NoFiles));
        let dup = build(&[
            ("a.yaml".to_owned(), Vec::new()),
            ("./a.yaml".to_owned(), Vec::new()),
        ]);
        assert!(matches!(
            dup.unwrap_err(),
            ArchiveError::DuplicatePath { .. }
        ));
        let conflict = build(&[
            ("a.yaml".to_owned(), Vec::new()),
            ("a.yaml/b.yaml".to_owned(), Vec::new()),
        ]);
        assert!(matches!(
            conflict.unwrap_err(),
            ArchiveError::PathConflict { .. }
        ));
    }

    // ---- reader: accepted shapes ----

    #[test]
    fn directories_and_dot_prefixes_are_accepted_and_normalised() {
        let files = read_tar(&[
            entry(b"./", b'5', b""),
            entry(b"./dir/", b'5', b""),
            file("./dir//b.yaml", b"b"),
            file("a.yaml", b"a"),
        ])
        .unwrap();
        let paths: Vec<&str> = files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(paths, ["a.yaml", "dir/b.yaml"]);
    }

    #[test]
    fn pax_path_and_matching_pax_size_are_accepted() {
        let files = read_tar(&[
            pax(&[("path", b"long/pax.yaml"), ("size", b"3")]),
            file("short.yaml", b"abc"),
        ])
        .unwrap();
        assert_eq!(files[0].path, "long/pax.yaml");
        assert_eq!(&files[0].data[..], b"abc");
    }

    // ---- reader: paths ----

    #[test]
    fn parent_component_is_rejected() {
        let err = read_tar(&[file("../x.yaml", b"")]).unwrap_err();
        assert!(matches!(err, ArchiveError::ParentComponent { ref path } if path == "../x.yaml"));
    }

    #[test]
    fn nested_parent_component_is_rejected() {
        let err = read_tar(&[file("a/../../x.yaml", b"")]).unwrap_err();
        assert!(matches!(err, ArchiveError::ParentComponent { .. }));
    }

    #[test]
    fn absolute_path_is_rejected() {
        let err = read_tar(&[file("/etc/passwd", b"")]).unwrap_err();
        assert!(matches!(err, ArchiveError::AbsolutePath { .. }));
        assert_eq!(
            err.to_string(),
            "archive entry path \"/etc/passwd\" is absolute: expected a relative path"
        );
    }

    #[test]
    fn backslash_path_is_rejected() {
        let err = read_tar(&[file("a\\b.yaml", b"")]).unwrap_err();
        assert!(matches!(err, ArchiveError::Backslash { .. }));
    }

    #[test]
    fn empty_name_is_rejected() {
        let err = read_tar(&[file("", b"x")]).unwrap_err();
        assert!(matches!(err, ArchiveError::EmptyPath { offset: 0 }));
    }

    #[test]
    fn dot_only_file_name_is_rejected_as_empty() {
        let err = read_tar(&[file(".", b"x")]).unwrap_err();
        assert!(matches!(err, ArchiveError::EmptyPath { .. }));
    }

    #[test]
    fn nul_in_pax_path_is_rejected() {
        let err = read_tar(&[pax(&[("path", b"a\0b.yaml")]), file("x.yaml", b"")]).unwrap_err();
        assert!(matches!(err, ArchiveError::NulInPath { .. }));
        assert!(err.to_string().contains("\\0"), "{err}");
    }

    #[test]
    fn control_characters_in_paths_are_rejected_so_messages_stay_one_line() {
        let err = normalise_path(b"a\nforged line.yaml").unwrap_err();
        assert!(matches!(err, ArchiveError::ControlInPath { .. }), "{err}");
        assert_eq!(err.to_string().lines().count(), 1, "{err}");
    }

    #[test]
    fn non_utf8_path_is_rejected() {
        let err = read_tar(&[entry(b"\xff.yaml", b'0', b"")]).unwrap_err();
        assert!(matches!(err, ArchiveError::NonUtf8Path { .. }));
    }

    #[test]
    fn control_characters_in_paths_are_escaped_in_messages() {
        let err = read_tar(&[file("a\nb.txt", b"")]).unwrap_err();
        assert!(!err.to_string().contains('\n'), "{err}");
    }

    // ---- reader: entry types ----

    #[test]
    fn symlink_is_rejected() {
        let err = read_tar(&[link("a.yaml", b'2', "/etc/passwd")]).unwrap_err();
        assert!(
            matches!(err, ArchiveError::Symlink { ref path, ref target } if path == "a.yaml" && target == "/etc/passwd")
        );
    }

    #[test]
    fn hardlink_is_rejected() {
        let err = read_tar(&[file("a.yaml", b""), link("b.yaml", b'1', "a.yaml")]).unwrap_err();
        assert!(matches!(err, ArchiveError::Hardlink { .. }));
    }

    #[test]
    fn symlinked_directory_then_file_through_it_is_rejected() {
        let err = read_tar(&[link("d", b'2', "/etc"), file("d/x.yaml", b"")]).unwrap_err();
        assert!(matches!(err, ArchiveError::Symlink { ref path, .. } if path == "d"));
    }

    #[test]
    fn char_device_is_rejected() {
        let err = read_tar(&[link("null.yaml", b'3', "")]).unwrap_err();
        assert!(matches!(err, ArchiveError::CharDevice { .. }));
    }

    #[test]
    fn block_device_is_rejected() {
        let err = read_tar(&[link("sda.yaml", b'4', "")]).unwrap_err();
        assert!(matches!(err, ArchiveError::BlockDevice { .. }));
    }

    #[test]
    fn fifo_is_rejected() {
        let err = read_tar(&[link("pipe.yaml", b'6', "")]).unwrap_err();
        assert!(matches!(err, ArchiveError::Fifo { .. }));
    }

    #[test]
    fn other_entry_types_are_rejected() {
        for typeflag in [b'7', b'g', b'V', b'Z'] {
            let err = read_tar(&[entry(b"odd.yaml", typeflag, b"")]).unwrap_err();
            assert!(
                matches!(err, ArchiveError::UnsupportedEntryType { entry_type, .. } if entry_type == char::from(typeflag)),
                "{typeflag}: {err}"
            );
        }
    }

    // ---- reader: duplicates and conflicts ----

    #[test]
    fn duplicate_path_is_rejected() {
        let err = read_tar(&[file("a.yaml", b"1"), file("a.yaml", b"2")]).unwrap_err();
        assert!(matches!(err, ArchiveError::DuplicatePath { .. }));
    }

    #[test]
    fn duplicate_after_normalising_is_rejected() {
        let err = read_tar(&[file("./a.yaml", b"1"), file("a.yaml", b"2")]).unwrap_err();
        assert!(matches!(err, ArchiveError::DuplicatePath { ref path } if path == "a.yaml"));
        let err = read_tar(&[file("d/a.yaml", b"1"), file("d//a.yaml/", b"2")]);
        // A trailing slash makes the second one a directory: that is a conflict, not a file.
        assert!(matches!(
            err.unwrap_err(),
            ArchiveError::PathConflict { .. }
        ));
    }

    #[test]
    fn file_used_as_directory_is_rejected() {
        let err = read_tar(&[file("a.yaml", b""), file("a.yaml/b.yaml", b"")]).unwrap_err();
        assert!(
            matches!(err, ArchiveError::PathConflict { ref path, ref file } if path == "a.yaml/b.yaml" && file == "a.yaml")
        );
    }

    #[test]
    fn directory_entry_naming_a_file_is_rejected() {
        let err = read_tar(&[file("a.yaml", b""), entry(b"a.yaml/", b'5', b"")]).unwrap_err();
        assert!(matches!(err, ArchiveError::PathConflict { .. }));
    }

    // ---- reader: tar-level smuggling ----

    #[test]
    fn pax_size_that_differs_from_header_is_rejected() {
        let err = read_tar(&[pax(&[("size", b"0")]), file("a.yaml", b"abc")]).unwrap_err();
        assert!(
            matches!(err, ArchiveError::PaxSizeMismatch { header: 3, ref pax, .. } if pax == "0")
        );
    }

    #[test]
    fn unparsable_pax_size_is_rejected() {
        let err = read_tar(&[pax(&[("size", b"3x")]), file("a.yaml", b"abc")]).unwrap_err();
        assert!(matches!(err, ArchiveError::PaxSizeMismatch { .. }));
    }

    #[test]
    fn entry_after_end_of_archive_is_rejected() {
        let mut tar = tarball(&[file("a.yaml", b"a")]);
        tar.extend_from_slice(&file("hidden.yaml", b"smuggled"));
        let err = read(&gzip(&tar), &Limits::default()).unwrap_err();
        assert!(matches!(
            err,
            ArchiveError::TrailingTarData { offset: 2048 }
        ));
    }

    #[test]
    fn garbage_after_end_of_archive_is_rejected() {
        let mut tar = tarball(&[file("a.yaml", b"a")]);
        tar.extend_from_slice(b"garbage");
        let err = read(&gzip(&tar), &Limits::default()).unwrap_err();
        assert!(matches!(err, ArchiveError::TrailingTarData { .. }));
    }

    #[test]
    fn zero_padding_after_end_of_archive_is_accepted() {
        let mut tar = tarball(&[file("a.yaml", b"a")]);
        tar.resize(10240, 0); // GNU tar pads to a 10 KiB record
        assert_eq!(read(&gzip(&tar), &Limits::default()).unwrap().len(), 1);
    }

    #[test]
    fn missing_end_of_archive_marker_is_rejected() {
        let tar = file("a.yaml", b"a");
        let err = read(&gzip(&tar), &Limits::default()).unwrap_err();
        assert!(matches!(
            err,
            ArchiveError::MissingEndOfArchive { found: 0 }
        ));
        let mut half = file("a.yaml", b"a");
        half.extend_from_slice(&[0u8; 512]);
        let err = read(&gzip(&half), &Limits::default()).unwrap_err();
        assert!(matches!(
            err,
            ArchiveError::MissingEndOfArchive { found: 512 }
        ));
    }

    #[test]
    fn truncated_entry_is_rejected() {
        let mut tar = header(b"a.yaml", 100, b'0', b"");
        tar.extend_from_slice(b"only ten b");
        let err = read(&gzip(&tar), &Limits::default()).unwrap_err();
        assert!(matches!(
            err,
            ArchiveError::TruncatedEntry {
                expected: 100,
                actual: 10,
                ..
            }
        ));
    }

    #[test]
    fn bad_header_checksum_is_rejected() {
        let mut a = file("a.yaml", b"a");
        a[0] = b'b';
        let err = read_tar(&[a]).unwrap_err();
        assert!(matches!(err, ArchiveError::Tar { .. }));
    }

    // ---- reader: gzip ----

    #[test]
    fn second_gzip_member_is_rejected() {
        let first = gzip(&tarball(&[file("a.yaml", b"a")]));
        let mut gz = first.clone();
        gz.extend_from_slice(&gzip(&tarball(&[file("b.yaml", b"b")])));
        let err = read(&gz, &Limits::default()).unwrap_err();
        assert!(
            matches!(err, ArchiveError::SecondGzipMember { offset } if offset == first.len()),
            "{err}"
        );
    }

    #[test]
    fn trailing_bytes_after_gzip_are_rejected() {
        let mut gz = gzip(&tarball(&[file("a.yaml", b"a")]));
        gz.push(0);
        let err = read(&gz, &Limits::default()).unwrap_err();
        assert!(matches!(err, ArchiveError::TrailingGzipData { len: 1, .. }));
    }

    #[test]
    fn flipped_crc_byte_is_rejected() {
        let mut gz = gzip(&tarball(&[file("a.yaml", b"a")]));
        let crc = gz.len() - 8;
        gz[crc] ^= 0x01;
        let err = read(&gz, &Limits::default()).unwrap_err();
        assert!(matches!(err, ArchiveError::Gzip { .. }), "{err}");
    }

    #[test]
    fn a_fault_of_the_gzip_stream_is_reported_before_one_of_the_tar_inside() {
        // A symlink (a tar fault, found first while streaming) in a stream with a bad CRC (a
        // gzip fault, found only at its end): the gzip fault wins, as when the whole stream
        // was decompressed before the tar was read.
        let mut gz = gzip(&tarball(&[link("a.yaml", b'2', "/etc/passwd")]));
        let crc = gz.len() - 8;
        gz[crc] ^= 0x01;
        let err = read(&gz, &Limits::default()).unwrap_err();
        assert!(matches!(err, ArchiveError::Gzip { .. }), "{err}");
        // And a stream over the total cap is too large, whatever its first entry.
        let big = tarball(&[link("a.yaml", b'2', "x"), file("b.yaml", &[b'a'; 4096])]);
        let limits = Limits {
            max_total_bytes: 2048,
            ..Limits::default()
        };
        let err = read(&gzip(&big), &limits).unwrap_err();
        assert!(
            matches!(err, ArchiveError::TooLarge { limit: 2048 }),
            "{err}"
        );
    }

    #[test]
    fn each_file_is_handed_over_as_it_is_read_in_archive_order() {
        let gz = gzip(&tarball(&[file("b.yaml", b"b"), file("a.yaml", b"aa")]));
        let mut seen = Vec::new();
        let files = read_with(&gz, &Limits::default(), |f| {
            seen.push((f.path.clone(), f.data.clone()));
        })
        .unwrap();
        assert_eq!(
            seen,
            [
                ("b.yaml".into(), Bytes::from("b")),
                ("a.yaml".into(), Bytes::from("aa"))
            ]
        );
        let paths: Vec<_> = files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(paths, ["a.yaml", "b.yaml"], "the result is sorted");
    }

    #[test]
    fn truncated_gzip_is_rejected() {
        let gz = gzip(&tarball(&[file("a.yaml", b"a")]));
        for cut in [1, 4, 8, 20, gz.len() - 1] {
            let err = read(&gz[..gz.len() - cut], &Limits::default()).unwrap_err();
            assert!(matches!(err, ArchiveError::Gzip { .. }), "cut {cut}: {err}");
        }
    }

    #[test]
    fn non_gzip_input_is_rejected() {
        for input in [
            &b""[..],
            b"not gzip at all",
            &tarball(&[file("a.yaml", b"a")]),
        ] {
            let err = read(input, &Limits::default()).unwrap_err();
            assert!(matches!(err, ArchiveError::Gzip { .. }), "{err}");
        }
    }

    /// 1 GiB of zeros in about 1 MiB of gzip, built without holding 1 GiB anywhere: one
    /// full-flushed deflate chunk of 1 MiB of zeros repeated 1024 times (valid deflate, since
    /// each chunk ends byte-aligned and starts a fresh block), then a final empty block and a
    /// trailer with the declared size. The CRC is not computed: a reader that gets that far has
    /// already failed the test.
    fn gzip_bomb() -> Vec<u8> {
        use flate2::{Compress, FlushCompress};
        let zeros = vec![0u8; 1 << 20];
        let mut compress = Compress::new(Compression::best(), false);
        let mut chunk = Vec::with_capacity(1 << 16);
        compress
            .compress_vec(&zeros, &mut chunk, FlushCompress::Full)
            .unwrap();
        assert!(compress.total_in() == 1 << 20 && chunk.len() < 2048);
        let mut gz = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255];
        for _ in 0..1024 {
            gz.extend_from_slice(&chunk);
        }
        gz.extend_from_slice(&[0x03, 0x00]); // final, fixed Huffman, end of block
        gz.extend_from_slice(&[0, 0, 0, 0]); // CRC (not computed)
        gz.extend_from_slice(&(1u32 << 30).to_le_bytes()); // ISIZE = 1 GiB
        gz
    }

    #[test]
    fn gzip_bomb_fails_fast_at_the_total_cap() {
        let gz = gzip_bomb();
        assert!(gz.len() < 2 << 20, "bomb is {} bytes", gz.len());
        let limits = Limits {
            max_total_bytes: 1 << 20,
            ..Limits::default()
        };
        let start = Instant::now();
        let err = read(&gz, &limits).unwrap_err();
        assert!(matches!(err, ArchiveError::TooLarge { limit } if limit == 1 << 20));
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "{:?}",
            start.elapsed()
        );
    }

    #[test]
    fn total_cap_counts_the_whole_tar_stream() {
        let gz = build(&[("a.yaml".to_owned(), vec![b'#'; 4096])]).unwrap();
        let exact = 512 + 4096 + 1024;
        let at = |max_total_bytes| {
            read(
                &gz,
                &Limits {
                    max_total_bytes,
                    ..Limits::default()
                },
            )
        };
        assert!(at(exact).is_ok());
        assert!(matches!(
            at(exact - 1).unwrap_err(),
            ArchiveError::TooLarge { .. }
        ));
    }

    // ---- reader: content rules and caps ----

    #[test]
    fn zero_files_are_rejected() {
        let err = read_tar(&[]).unwrap_err();
        assert!(matches!(err, ArchiveError::NoFiles));
        let err = read_tar(&[entry(b"dir/", b'5', b"")]).unwrap_err();
        assert!(matches!(err, ArchiveError::NoFiles));
    }

    #[test]
    fn txt_file_is_rejected() {
        let err = read_tar(&[file("notes.txt", b"")]).unwrap_err();
        assert!(matches!(err, ArchiveError::BadExtension { ref path } if path == "notes.txt"));
        let err = read_tar(&[file("yaml", b"")]).unwrap_err();
        assert!(matches!(err, ArchiveError::BadExtension { .. }));
        let err = read_tar(&[file("a.yaml.d/x", b"")]).unwrap_err();
        assert!(matches!(err, ArchiveError::BadExtension { .. }));
    }

    #[test]
    fn file_over_the_cap_is_rejected_before_reading() {
        let limits = Limits {
            max_file_bytes: 10,
            ..Limits::default()
        };
        let gz = gzip(&tarball(&[file("a.yaml", &[b'#'; 11])]));
        let err = read(&gz, &limits).unwrap_err();
        assert!(matches!(
            err,
            ArchiveError::FileTooLarge {
                size: 11,
                limit: 10,
                ..
            }
        ));
        assert!(read(&gzip(&tarball(&[file("a.yaml", &[b'#'; 10])])), &limits).is_ok());
        // A header that claims 4 GiB with no data behind it fails on the claim, not on EOF.
        let tar = header(b"a.yaml", 1 << 32, b'0', b"");
        let err = read(&gzip(&tar), &Limits::default()).unwrap_err();
        assert!(matches!(err, ArchiveError::FileTooLarge { size, .. } if size == 1 << 32));
    }

    #[test]
    fn too_many_files_are_rejected() {
        let limits = Limits {
            max_files: 2,
            ..Limits::default()
        };
        let two = gzip(&tarball(&[file("a.yaml", b""), file("b.yaml", b"")]));
        assert!(read(&two, &limits).is_ok());
        let three = gzip(&tarball(&[
            file("a.yaml", b""),
            file("b.yaml", b""),
            file("c.yaml", b""),
        ]));
        let err = read(&three, &limits).unwrap_err();
        assert!(matches!(err, ArchiveError::TooManyFiles { limit: 2 }));
    }

    #[test]
    fn every_corrupted_byte_is_an_error_or_a_valid_result_never_a_panic() {
        let stored = |bytes: &[u8]| {
            let mut enc = GzEncoder::new(Vec::new(), Compression::none());
            enc.write_all(bytes).unwrap();
            enc.finish().unwrap()
        };
        let files = [("d/a.yaml".to_owned(), DOC.to_vec())];
        let tar = gunzip(&build(&files).unwrap());
        for pos in 0..tar.len() {
            let _ = read(&stored(&tar[..pos]), &Limits::default());
            for value in [0x00, 0xff, b'/'] {
                let mut bad = tar.clone();
                bad[pos] = value;
                let _ = read(&stored(&bad), &Limits::default());
            }
        }
    }
}
