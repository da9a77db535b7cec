//! Why an archive could not be built or read, and how untrusted names appear in the messages.
//!
//! Invariant: every value that came from the archive is shown through [`Name`]: escaped (all
//! control characters, quotes and invalid UTF-8 bytes) and cut after [`Name::SHOWN`] bytes, then
//! `…(N bytes)`, so one message stays on one line and well under 4 KiB whatever the archive
//! holds.

use std::fmt;
use std::io;

/// Bytes from the archive (a path, a link target, a header field), held for a message: at most
/// [`Name::SHOWN`] bytes are kept, with the full length.
#[derive(Clone, PartialEq, Eq)]
pub struct Name(Box<Kept>);

/// Boxed so that errors stay small.
#[derive(Clone, PartialEq, Eq)]
struct Kept {
    head: Vec<u8>,
    len: usize,
}

impl Name {
    /// How many bytes of a value a message shows.
    pub const SHOWN: usize = 200;

    #[must_use]
    pub fn new(raw: &[u8]) -> Self {
        Self(Box::new(Kept {
            head: raw[..raw.len().min(Self::SHOWN)].to_vec(),
            len: raw.len(),
        }))
    }
}

impl From<&str> for Name {
    fn from(text: &str) -> Self {
        Self::new(text.as_bytes())
    }
}

/// Equal when the lengths agree and the kept bytes begin `other` (for a name over
/// [`Name::SHOWN`] bytes, only its beginning is known).
impl PartialEq<str> for Name {
    fn eq(&self, other: &str) -> bool {
        self.0.len == other.len() && other.as_bytes().starts_with(&self.0.head)
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"")?;
        for chunk in self.0.head.utf8_chunks() {
            for c in chunk.valid().chars() {
                if c == '\'' {
                    f.write_str("'")?;
                } else {
                    write!(f, "{}", c.escape_debug())?;
                }
            }
            for b in chunk.invalid() {
                write!(f, "\\x{b:02x}")?;
            }
        }
        f.write_str("\"")?;
        if self.0.len > self.0.head.len() {
            write!(f, "…({} bytes)", self.0.len)?;
        }
        Ok(())
    }
}

impl fmt::Debug for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Why an archive could not be built or read. Names are as found in the archive.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ArchiveError {
    #[error("resources archive is not a valid gzip stream")]
    Gzip {
        #[source]
        source: io::Error,
    },
    #[error(
        "resources archive's gzip ISIZE is {actual}: expected {expected} (the uncompressed size modulo 2^32)"
    )]
    GzipSize { expected: u32, actual: u32 },
    #[error("resources archive's gzip CRC-32 is {actual:08x}: the data's is another")]
    GzipCrc { actual: u32 },
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
    #[error(
        "resources archive ends inside the header at tar offset {offset}: expected 512 bytes, found {found}"
    )]
    TruncatedHeader { offset: u64, found: u64 },
    #[error(
        "archive header {name} at tar offset {offset} has a bad {field} field: expected {expected}, found {found}"
    )]
    HeaderField {
        offset: u64,
        name: Name,
        field: &'static str,
        expected: String,
        found: Name,
    },
    #[error(
        "archive extended header {name} at tar offset {offset} is refused: expected {expected}, found {found}"
    )]
    ExtendedHeader {
        offset: u64,
        name: Name,
        expected: String,
        found: Name,
    },
    #[error(
        "archive extended header {name} at tar offset {offset} is {size} bytes: the limit is {limit}"
    )]
    ExtendedHeaderTooLarge {
        offset: u64,
        name: Name,
        size: u64,
        limit: u64,
    },
    #[error(
        "archive entry {path} has non-zero padding at tar offset {offset}: expected zeros up to the next 512-byte block"
    )]
    NonZeroPadding { path: Name, offset: u64 },
    #[error(
        "resources archive has non-zero data at tar offset {offset} after the end-of-archive marker"
    )]
    TrailingTarData { offset: u64 },
    #[error(
        "resources archive has no end-of-archive marker: expected 1024 zero bytes after the last entry, found {found}"
    )]
    MissingEndOfArchive { found: u64 },
    #[error("archive entry {path} is truncated: expected {expected} bytes, found {actual}")]
    TruncatedEntry {
        path: Name,
        expected: u64,
        actual: u64,
    },
    #[error("archive entry at tar offset {offset} has an empty path")]
    EmptyPath { offset: u64 },
    #[error("archive entry path {path} is not valid UTF-8")]
    NonUtf8Path { path: Name },
    #[error("archive entry path {path} contains a NUL byte")]
    NulInPath { path: Name },
    #[error("archive entry path {path} contains a control character")]
    ControlInPath { path: Name },
    #[error("archive entry path {path} contains a backslash: expected `/` separators")]
    Backslash { path: Name },
    #[error("archive entry path {path} is absolute: expected a relative path")]
    AbsolutePath { path: Name },
    #[error("archive entry path {path} has a `..` component")]
    ParentComponent { path: Name },
    #[error(
        "archive entry {path} is a regular file whose name ends in `/`: expected a file name or a directory entry (type 5)"
    )]
    TrailingSlash { path: Name },
    #[error("archive entry {path} is a directory with a size of {size}: expected 0")]
    DirectoryWithData { path: Name, size: u64 },
    #[error("archive entry {path} is a symlink to {target}: expected a regular file")]
    Symlink { path: Name, target: Name },
    #[error("archive entry {path} is a hard link to {target}: expected a regular file")]
    Hardlink { path: Name, target: Name },
    #[error("archive entry {path} is a character device: expected a regular file")]
    CharDevice { path: Name },
    #[error("archive entry {path} is a block device: expected a regular file")]
    BlockDevice { path: Name },
    #[error("archive entry {path} is a FIFO: expected a regular file")]
    Fifo { path: Name },
    #[error(
        "archive entry {path} has unsupported type {entry_type:?}: expected a regular file (type 0) or directory (type 5)"
    )]
    UnsupportedEntryType { path: Name, entry_type: char },
    #[error("archive entry {path} has a PAX size of {pax} but a header size of {header}")]
    PaxSizeMismatch { path: Name, header: u64, pax: Name },
    #[error("archive entry {path} appears more than once")]
    DuplicatePath { path: Name },
    #[error("archive entry {path} conflicts with file {file}, which it uses as a directory")]
    PathConflict { path: Name, file: Name },
    #[error("resources archive has more than {limit} files")]
    TooManyFiles { limit: usize },
    #[error("archive entry {path} is {size} bytes: the limit is {limit}")]
    FileTooLarge { path: Name, size: u64, limit: u64 },
    #[error("resources archive holds no regular files: expected at least one manifest")]
    NoFiles,
    #[error("archive entry {path} is not a manifest: expected a .yaml, .yml or .json file")]
    BadExtension { path: Name },
    #[error("cannot write archive entry {path}")]
    Write {
        path: Name,
        #[source]
        source: io::Error,
    },
}

crate::exit_class!(ArchiveError => Verify);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_is_quoted_escaped_and_cut_with_its_length() {
        assert_eq!(Name::from("a.yaml").to_string(), "\"a.yaml\"");
        assert_eq!(
            Name::new(b"a\n\x1b[31m\"'\\\xff\0.yaml").to_string(),
            "\"a\\n\\u{1b}[31m\\\"'\\\\\\xff\\0.yaml\""
        );
        let long = Name::new(&vec![b'a'; 5 << 20]).to_string();
        assert!(long.len() < 300, "{} bytes", long.len());
        assert!(long.ends_with("\"…(5242880 bytes)"), "{long}");
    }

    #[test]
    fn a_name_compares_equal_to_text_of_its_length_and_beginning() {
        let short = Name::from("a.yaml");
        assert!(short == *"a.yaml");
        assert!(short != *"a.yam");
        let long = "b".repeat(300);
        let kept = Name::from(long.as_str());
        assert!(kept == *long.as_str());
        assert!(kept != *"b".repeat(200).as_str());
    }
}
