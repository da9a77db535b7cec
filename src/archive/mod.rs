//! The resources layer of a release image: a gzip'd tar of Kubernetes manifest files
//! (docs/design.md §3 "Resources layer", §5 rule 3).
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
//! - Anything an extracting tool could read differently from us is an error rather than a guess.
//!   The tar stream is parsed here, not by a general-purpose reader, with the narrowest grammar
//!   on which GNU tar, Python's `tarfile` and Go's `archive/tar` (Argo CD's and Flux's) agree:
//!   an archive is a sequence of members, each one header of type `0` (a regular file) or `5` (a
//!   directory, size 0), optionally preceded by exactly one extension header (a PAX `x` header
//!   holding only `path` and `size` records, or a GNU `L` long name), then two zero blocks and
//!   only zeros after them. Every header field is checked ([`header`] lists the rules), as is
//!   the zero padding after each body. So links, devices, FIFOs, sparse files, global or
//!   consecutive extension headers, long link names, duplicate or unknown PAX records, a PAX
//!   `size` that disagrees with the header (CVE-2026-33056-style smuggling), a directory or
//!   regular file named with a trailing `/` that hides data, `..`, absolute or backslash paths,
//!   non-zero bytes after the end-of-archive marker (what `tar --ignore-zeros` would read), a
//!   second gzip member (what `gzip -d` would read) and a truncated stream are all refused.
//! - Every value from the archive inside an error message is escaped and cut ([`Name`]), so a
//!   hostile name cannot forge log lines or make a message longer than a few hundred bytes.

mod error;
mod header;
mod walk;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Read};

use bytes::Bytes;

use flate2::bufread::GzDecoder;
use flate2::{Compression, GzBuilder};
use tar::{Builder, EntryType, Header as TarHeader};

pub use error::{ArchiveError, Name};
use header::BLOCK;
use walk::{Walked, walk};

/// The end-of-archive marker is two zero blocks.
const END_OF_ARCHIVE: u64 = 2 * BLOCK as u64;
/// Cap on the body of one extension header (a PAX header or a GNU long name).
pub const MAX_EXTENSION_BYTES: u64 = 64 * 1024;
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
            return Err(ArchiveError::DuplicatePath {
                path: Name::from(raw.as_str()),
            });
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
        let mut header = TarHeader::new_gnu();
        header.set_entry_type(EntryType::Regular);
        header.set_mode(0o644);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        header.set_size(data.len() as u64);
        builder
            .append_data(&mut header, path, *data)
            .map_err(|source| ArchiveError::Write {
                path: Name::from(path.as_str()),
                source,
            })?;
    }
    let write_err = |source| ArchiveError::Write {
        path: Name::from(""),
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
    // Read what the walk left, to find faults of the gzip stream before reporting the tar's;
    // after the last entry it must be zeros (the end-of-archive marker and padding).
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
        return Err(footer_fault(gz, input, source));
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

    // The walk stopped after the first zero block. Everything after the last entry must be
    // zeros, and there must be a whole end-of-archive marker.
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

/// A decoder error, named: the gzip trailer's ISIZE or CRC-32 when it is the trailer that does
/// not match (the decoder says only "checksum" for both), else the decoder's own error.
fn footer_fault(gz: &[u8], input: Inflate<'_>, source: io::Error) -> ArchiveError {
    let decompressed = input.count;
    let end = gz.len() - input.decoder.into_inner().len();
    let footer = end.checked_sub(8).map(|start| &gz[start..end]);
    match footer {
        Some(f) if source.to_string().contains("checksum") => {
            let word = |b: &[u8]| u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            // ISIZE is the size modulo 2^32.
            let expected = u32::try_from(decompressed % (1 << 32)).unwrap_or_default();
            if word(&f[4..]) == expected {
                ArchiveError::GzipCrc { actual: word(f) }
            } else {
                ArchiveError::GzipSize {
                    expected,
                    actual: word(&f[4..]),
                }
            }
        }
        _ => ArchiveError::Gzip { source },
    }
}

/// The decompressed tar stream: counts what it hands out, stops after `cap + 1` bytes (so a
/// bomb stops there, however large it claims to be), and keeps the decoder's own error, which
/// the walk would otherwise report as a truncated archive.
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

/// Validates a raw entry path and returns it normalised: `.` and empty components dropped,
/// so `./a//b/` becomes `a/b`. The root (`.`, `./`) normalises to the empty string.
fn normalise_path(raw: &[u8]) -> Result<String, ArchiveError> {
    let shown = || Name::new(raw);
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
            path: Name::from(path),
        })
    }
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
                path: Name::from(path),
                file: Name::from(file),
            });
        }
    }
    if let Some(dir) = dirs.iter().find(|d| file_set.contains(d.as_str())) {
        return Err(ArchiveError::PathConflict {
            path: Name::from(format!("{dir}/").as_str()),
            file: Name::from(dir.as_str()),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    //! The writer, and faults of the gzip stream, on archives from [`build`]. Hostile tar
    //! headers are built byte by byte in the integration tests (tests/integration/archive.rs),
    //! with the one raw tar builder of the test suite.
    use super::*;
    use flate2::write::GzEncoder;
    use std::io::Write;
    use std::time::{Duration, Instant};

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

    fn one(path: &str, data: &[u8]) -> Vec<u8> {
        build(&[(path.to_owned(), data.to_vec())]).unwrap()
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
    fn built_archives_with_paths_of_every_length_read_back() {
        // Around the 100-byte name field and deep into GNU long names.
        for len in [1, 98, 99, 100, 101, 155, 156, 157, 255, 256, 1000, 4000] {
            let path = format!("{}.yaml", "p".repeat(len));
            let files = read(&one(&path, DOC), &Limits::default()).unwrap();
            assert_eq!(files[0].path, path);
            assert_eq!(files[0].data, DOC);
        }
    }

    #[test]
    fn same_input_gives_identical_bytes_in_any_order() {
        let mut reversed = sample();
        reversed.reverse();
        assert_eq!(build(&sample()).unwrap(), build(&reversed).unwrap());
    }

    #[test]
    fn build_output_is_pinned() {
        // If this changes, every release digest changes: a format break (docs/design.md §3).
        let bytes = one("a.yaml", DOC);
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
        let mut archive = tar::Archive::new(tar.as_slice());
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
            assert!(header::parse(h.as_bytes()).is_ok(), "{:?}", h.path());
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
        let err = |p: &str| build(&[(p.to_owned(), DOC.to_vec())]).unwrap_err();
        assert!(matches!(
            err("../x.yaml"),
            ArchiveError::ParentComponent { .. }
        ));
        assert!(matches!(err("/x.yaml"), ArchiveError::AbsolutePath { .. }));
        assert!(matches!(err("a\\b.yaml"), ArchiveError::Backslash { .. }));
        assert!(matches!(err(""), ArchiveError::EmptyPath { .. }));
        assert!(matches!(err("./"), ArchiveError::EmptyPath { .. }));
        assert!(matches!(err("a.txt"), ArchiveError::BadExtension { .. }));
        assert!(matches!(
            err("a\nb.yaml"),
            ArchiveError::ControlInPath { .. }
        ));
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
            ArchiveError::PathConflict { ref path, ref file } if *path == *"a.yaml/b.yaml" && *file == *"a.yaml"
        ));
    }

    #[test]
    fn canonical_decimals_only_are_numbers() {
        use walk::decimal;
        assert_eq!(decimal(b"0"), Some(0));
        assert_eq!(decimal(b"120"), Some(120));
        for text in [
            &b""[..],
            b"012",
            b"+1",
            b" 1",
            b"1 ",
            b"1_0",
            b"99999999999999999999999",
        ] {
            assert_eq!(decimal(text), None, "{text:?}");
        }
    }

    // ---- reader: gzip ----

    #[test]
    fn second_gzip_member_is_rejected() {
        let first = one("a.yaml", b"a");
        let mut gz = first.clone();
        gz.extend_from_slice(&one("b.yaml", b"b"));
        let err = read(&gz, &Limits::default()).unwrap_err();
        assert!(
            matches!(err, ArchiveError::SecondGzipMember { offset } if offset == first.len()),
            "{err}"
        );
    }

    #[test]
    fn trailing_bytes_after_gzip_are_rejected() {
        let mut gz = one("a.yaml", b"a");
        gz.push(0);
        let err = read(&gz, &Limits::default()).unwrap_err();
        assert!(matches!(err, ArchiveError::TrailingGzipData { len: 1, .. }));
    }

    #[test]
    fn flipped_crc_byte_is_rejected() {
        let mut gz = one("a.yaml", b"a");
        let crc = gz.len() - 8;
        gz[crc] ^= 0x01;
        let err = read(&gz, &Limits::default()).unwrap_err();
        assert!(matches!(err, ArchiveError::GzipCrc { .. }), "{err}");
        assert!(err.to_string().contains("CRC-32"), "{err}");
    }

    #[test]
    fn a_wrong_isize_is_named_with_the_expected_and_actual_size() {
        let mut gz = one("a.yaml", b"a");
        let size = gunzip(&gz).len();
        let at = gz.len() - 4;
        gz[at..].copy_from_slice(&7u32.to_le_bytes());
        let err = read(&gz, &Limits::default()).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "resources archive's gzip ISIZE is 7: expected {size} (the uncompressed size modulo 2^32)"
            )
        );
    }

    #[test]
    fn a_fault_of_the_gzip_stream_is_reported_before_one_of_the_tar_inside() {
        // A bad header checksum (a tar fault, found first while streaming) in a stream with a
        // bad CRC (a gzip fault, found only at its end): the gzip fault wins, as when the
        // whole stream was decompressed before the tar was read.
        let mut tar = gunzip(&one("a.yaml", b"a"));
        tar[0] = b'b';
        let mut gz = gzip(&tar);
        let crc = gz.len() - 8;
        gz[crc] ^= 0x01;
        let err = read(&gz, &Limits::default()).unwrap_err();
        assert!(matches!(err, ArchiveError::GzipCrc { .. }), "{err}");
        // And a stream over the total cap is too large, whatever its first entry.
        let mut big = gunzip(
            &build(&[
                ("a.yaml".to_owned(), vec![b'a'; 100]),
                ("b.yaml".to_owned(), vec![b'b'; 4096]),
            ])
            .unwrap(),
        );
        big[0] = b'b';
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
    fn truncated_gzip_is_rejected() {
        let gz = one("a.yaml", b"a");
        for cut in [1, 4, 8, 20, gz.len() - 1] {
            let err = read(&gz[..gz.len() - cut], &Limits::default()).unwrap_err();
            assert!(matches!(err, ArchiveError::Gzip { .. }), "cut {cut}: {err}");
        }
    }

    #[test]
    fn non_gzip_input_is_rejected() {
        for input in [&b""[..], b"not gzip at all", &gunzip(&one("a.yaml", b"a"))] {
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
        let gz = one("a.yaml", &[b'#'; 4096]);
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

    // ---- reader: caps ----

    #[test]
    fn file_over_the_cap_is_rejected_before_reading() {
        let limits = Limits {
            max_file_bytes: 10,
            ..Limits::default()
        };
        let err = read(&one("a.yaml", &[b'#'; 11]), &limits).unwrap_err();
        assert!(matches!(
            err,
            ArchiveError::FileTooLarge {
                size: 11,
                limit: 10,
                ..
            }
        ));
        assert!(read(&one("a.yaml", &[b'#'; 10]), &limits).is_ok());
    }

    #[test]
    fn too_many_files_are_rejected() {
        let limits = Limits {
            max_files: 2,
            ..Limits::default()
        };
        let files = |names: &[&str]| {
            let files: Vec<_> = names
                .iter()
                .map(|n| ((*n).to_owned(), Vec::new()))
                .collect();
            build(&files).unwrap()
        };
        assert!(read(&files(&["a.yaml", "b.yaml"]), &limits).is_ok());
        let err = read(&files(&["a.yaml", "b.yaml", "c.yaml"]), &limits).unwrap_err();
        assert!(matches!(err, ArchiveError::TooManyFiles { limit: 2 }));
    }

    /// What the `tar` crate lists for `tar`: regular files (path normalised by our rules, data),
    /// or `None` if it refuses the stream.
    fn tar_crate_listing(tar: &[u8]) -> Option<Vec<(String, Vec<u8>)>> {
        let mut listing = Vec::new();
        let mut archive = tar::Archive::new(tar);
        for entry in archive.entries().ok()? {
            let mut entry = entry.ok()?;
            if entry.header().entry_type() == EntryType::Directory {
                continue;
            }
            let path = normalise_path(&entry.path_bytes()).ok()?;
            let mut data = Vec::new();
            entry.read_to_end(&mut data).ok()?;
            listing.push((path, data));
        }
        listing.sort();
        Some(listing)
    }

    #[test]
    fn every_corrupted_byte_is_an_error_or_what_the_tar_crate_lists_never_a_panic() {
        let stored = |bytes: &[u8]| {
            let mut enc = GzEncoder::new(Vec::new(), Compression::none());
            enc.write_all(bytes).unwrap();
            enc.finish().unwrap()
        };
        let long = format!("{}/a.yaml", "d".repeat(120));
        let tar =
            gunzip(&build(&[(long, DOC.to_vec()), ("b.yaml".to_owned(), DOC.to_vec())]).unwrap());
        for pos in 0..tar.len() {
            assert!(read(&stored(&tar[..pos]), &Limits::default()).is_err());
            for value in [0x00, 0xff, b'/', b' ', b'1', b'x'] {
                let mut bad = tar.clone();
                bad[pos] = value;
                if let Ok(files) = read(&stored(&bad), &Limits::default()) {
                    let ours: Vec<_> = files
                        .into_iter()
                        .map(|f| (f.path, f.data.to_vec()))
                        .collect();
                    assert_eq!(Some(ours), tar_crate_listing(&bad), "byte {pos} = {value}");
                }
            }
        }
    }
}
