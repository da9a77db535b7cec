//! Walking the decompressed tar stream: header by header, each extension header applied to
//! the one entry it describes, each body read with its zero padding, up to the first zero
//! block. The grammar it enforces is in the parent module's documentation; the per-block
//! rules are in [`super::header`].
//!
//! Invariant: nothing is allocated on an untrusted size before it is checked against a cap
//! (`max_file_bytes` for files, [`MAX_EXTENSION_BYTES`] for extension bodies); data is read
//! into one buffer of exactly the announced size.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;

use bytes::Bytes;

use super::header::{self, BLOCK, Header, Magic};
use super::{
    ArchiveError, File, Limits, MAX_EXTENSION_BYTES, Name, check_extension, normalise_path,
};

/// Fills `buf` as far as the stream goes; returns how many bytes it got. A read error counts
/// as the end (the caller reports the stream's own error first).
fn fill(input: &mut impl Read, buf: &mut [u8]) -> usize {
    let mut got = 0;
    while got < buf.len() {
        match input.read(&mut buf[got..]) {
            Ok(0) | Err(_) => break,
            Ok(n) => got += n,
        }
    }
    got
}

/// What walking the tar stream found.
pub(super) struct Walked {
    pub files: BTreeMap<String, Bytes>,
    pub dirs: BTreeSet<String>,
    /// Where the first zero block starts: the end-of-archive marker.
    pub end: u64,
}

/// An extension header waiting for the entry it describes.
enum Pending {
    /// A PAX `x` header: the `path` and `size` records it held.
    Pax {
        offset: u64,
        path: Option<Vec<u8>>,
        size: Option<Vec<u8>>,
    },
    /// A GNU `L` header: the long name.
    LongName { offset: u64, name: Vec<u8> },
}

impl Pending {
    fn offset(&self) -> u64 {
        match self {
            Self::Pax { offset, .. } | Self::LongName { offset, .. } => *offset,
        }
    }

    /// The magic the described entry must carry: the extension's own.
    fn magic(&self) -> Magic {
        match self {
            Self::Pax { .. } => Magic::Posix,
            Self::LongName { .. } => Magic::Gnu,
        }
    }
}

/// The tar stream as the walk reads it: the input and how far into it the walk is.
struct Stream<R> {
    input: R,
    at: u64,
}

impl<R: Read> Stream<R> {
    /// Reads `size` bytes of body and the zero padding to the next block.
    fn body(&mut self, size: u64, path: &[u8]) -> Result<Vec<u8>, ArchiveError> {
        let mut data = Vec::with_capacity(usize::try_from(size).unwrap_or(usize::MAX));
        (&mut self.input).take(size).read_to_end(&mut data).ok();
        let actual = data.len() as u64;
        self.at += actual;
        if actual != size {
            return Err(ArchiveError::TruncatedEntry {
                path: Name::new(path),
                expected: size,
                actual,
            });
        }
        let pad = (BLOCK - (size % BLOCK as u64) as usize) % BLOCK;
        let mut padding = [0u8; BLOCK];
        let got = fill(&mut self.input, &mut padding[..pad]);
        if let Some(pos) = padding[..got].iter().position(|b| *b != 0) {
            return Err(ArchiveError::NonZeroPadding {
                path: Name::new(path),
                offset: self.at + pos as u64,
            });
        }
        self.at += got as u64;
        if got < pad {
            return Err(ArchiveError::TruncatedEntry {
                path: Name::new(path),
                expected: size + pad as u64,
                actual: size + got as u64,
            });
        }
        Ok(data)
    }
}

/// Walks the tar stream up to its first zero block, reading each regular file.
pub(super) fn walk(
    input: impl Read,
    limits: &Limits,
    each: &mut impl FnMut(&File),
) -> Result<Walked, ArchiveError> {
    let mut files: BTreeMap<String, Bytes> = BTreeMap::new();
    let mut dirs: BTreeSet<String> = BTreeSet::new();
    let mut stream = Stream { input, at: 0 };
    let mut pending: Option<Pending> = None;
    let mut block = [0u8; BLOCK];
    loop {
        let offset = stream.at;
        let got = fill(&mut stream.input, &mut block);
        stream.at += got as u64;
        if got == 0 || block.iter().all(|b| *b == 0) {
            if let Some(pending) = pending {
                return Err(extension_error(
                    pending.offset(),
                    b"",
                    "an entry after the extended header",
                    b"the end of the archive",
                ));
            }
            // The marker (or its absence) is checked by the caller.
            return Ok(Walked {
                files,
                dirs,
                end: offset,
            });
        }
        if got < BLOCK {
            return Err(ArchiveError::TruncatedHeader {
                offset,
                found: got as u64,
            });
        }
        let header = header::parse(&block).map_err(|fault| ArchiveError::HeaderField {
            offset,
            name: Name::new(header::raw_name(&block)),
            field: fault.field,
            expected: fault.expected,
            found: Name::new(&fault.found),
        })?;
        if matches!(header.typeflag, b'x' | b'L') {
            if let Some(first) = &pending {
                let found = format!("another one (type {:?})", char::from(header.typeflag));
                return Err(extension_error(
                    first.offset(),
                    header.name,
                    "one extended header, then the entry it describes",
                    found.as_bytes(),
                ));
            }
            pending = Some(extension(&mut stream, &header, offset)?);
            continue;
        }
        let member = Member::new(&header, pending.take(), offset)?;
        if let Some(file) = member.read(&mut stream, &mut files, &mut dirs, limits)? {
            each(&file);
            files.insert(file.path, file.data);
        }
    }
}

fn extension_error(offset: u64, name: &[u8], expected: &str, found: &[u8]) -> ArchiveError {
    ArchiveError::ExtendedHeader {
        offset,
        name: Name::new(name),
        expected: expected.to_owned(),
        found: Name::new(found),
    }
}

/// Reads the body of an `x` or `L` header.
fn extension<R: Read>(
    stream: &mut Stream<R>,
    header: &Header<'_>,
    offset: u64,
) -> Result<Pending, ArchiveError> {
    let (kind, magic) = if header.typeflag == b'x' {
        ("a POSIX header for a PAX `x` header", Magic::Posix)
    } else {
        ("a GNU header for a GNU `L` long name", Magic::Gnu)
    };
    if header.magic != magic {
        return Err(extension_error(
            offset,
            header.name,
            kind,
            b"the other magic",
        ));
    }
    if header.size > MAX_EXTENSION_BYTES {
        return Err(ArchiveError::ExtendedHeaderTooLarge {
            offset,
            name: Name::new(header.name),
            size: header.size,
            limit: MAX_EXTENSION_BYTES,
        });
    }
    let body = stream.body(header.size, header.name)?;
    let fault = |fault: header::Fault| ArchiveError::ExtendedHeader {
        offset,
        name: Name::new(header.name),
        expected: fault.expected,
        found: Name::new(&fault.found),
    };
    Ok(if header.typeflag == b'x' {
        let pax = header::pax(&body).map_err(fault)?;
        Pending::Pax {
            offset,
            path: pax.path.map(<[u8]>::to_vec),
            size: pax.size.map(<[u8]>::to_vec),
        }
    } else {
        Pending::LongName {
            offset,
            name: header::long_name(&body).map_err(fault)?.to_vec(),
        }
    })
}

/// A regular file or directory header with its extension applied.
struct Member {
    raw_path: Vec<u8>,
    path: String,
    size: u64,
    directory: bool,
    offset: u64,
}

impl Member {
    fn new(
        header: &Header<'_>,
        pending: Option<Pending>,
        offset: u64,
    ) -> Result<Self, ArchiveError> {
        let mut raw_path = header.name.to_vec();
        let extended = pending.is_some();
        if let Some(pending) = pending {
            if header.magic != pending.magic() {
                return Err(extension_error(
                    pending.offset(),
                    header.name,
                    "the entry after an extended header to carry the same magic",
                    b"the other magic",
                ));
            }
            match pending {
                Pending::Pax { path, size, .. } => {
                    if let Some(path) = path {
                        raw_path = path;
                    }
                    if let Some(pax) = size
                        && decimal(&pax) != Some(header.size)
                    {
                        return Err(ArchiveError::PaxSizeMismatch {
                            path: Name::new(&raw_path),
                            header: header.size,
                            pax: Name::new(&pax),
                        });
                    }
                }
                Pending::LongName { name, .. } => raw_path = name,
            }
        }
        let shown = || Name::new(&raw_path);
        let directory = match header.typeflag {
            b'0' => false,
            b'5' => true,
            // Pre-POSIX: a directory if its name ends in `/`. Python decides on the header's
            // own name, Go on the extended one: they must agree.
            0 => {
                let slash = raw_path.ends_with(b"/");
                if extended && header.name.ends_with(b"/") != slash {
                    return Err(ArchiveError::HeaderField {
                        offset,
                        name: shown(),
                        field: "name",
                        expected: "a pre-POSIX entry's header name to end in `/` exactly when \
                                   its extended path does"
                            .to_owned(),
                        found: Name::new(header.name),
                    });
                }
                slash
            }
            b'1' => {
                return Err(ArchiveError::Hardlink {
                    path: shown(),
                    target: Name::new(header.linkname),
                });
            }
            b'2' => {
                return Err(ArchiveError::Symlink {
                    path: shown(),
                    target: Name::new(header.linkname),
                });
            }
            b'3' => return Err(ArchiveError::CharDevice { path: shown() }),
            b'4' => return Err(ArchiveError::BlockDevice { path: shown() }),
            b'6' => return Err(ArchiveError::Fifo { path: shown() }),
            other => {
                return Err(ArchiveError::UnsupportedEntryType {
                    path: shown(),
                    entry_type: char::from(other),
                });
            }
        };
        if !header.linkname.is_empty() {
            return Err(ArchiveError::HeaderField {
                offset,
                name: shown(),
                field: "linkname",
                expected: "nothing on a file or directory".to_owned(),
                found: Name::new(header.linkname),
            });
        }
        if raw_path.is_empty() {
            return Err(ArchiveError::EmptyPath { offset });
        }
        let path = normalise_path(&raw_path)?;
        if directory && header.size != 0 {
            return Err(ArchiveError::DirectoryWithData {
                path: shown(),
                size: header.size,
            });
        }
        if !directory && raw_path.ends_with(b"/") {
            return Err(ArchiveError::TrailingSlash { path: shown() });
        }
        Ok(Self {
            raw_path,
            path,
            size: header.size,
            directory,
            offset,
        })
    }

    /// Reads the member's data: a file to hand over, or nothing for a directory (recorded in
    /// `dirs` for the conflict check).
    fn read<R: Read>(
        self,
        stream: &mut Stream<R>,
        files: &mut BTreeMap<String, Bytes>,
        dirs: &mut BTreeSet<String>,
        limits: &Limits,
    ) -> Result<Option<File>, ArchiveError> {
        let shown = || Name::new(&self.raw_path);
        if self.directory {
            // `./` (from `tar -C dir .`) normalises to the empty path, the root itself.
            if !self.path.is_empty() {
                dirs.insert(self.path);
            }
            return Ok(None);
        }
        if self.path.is_empty() {
            return Err(ArchiveError::EmptyPath {
                offset: self.offset,
            });
        }
        check_extension(&self.path)?;
        if files.contains_key(&self.path) {
            return Err(ArchiveError::DuplicatePath { path: shown() });
        }
        if files.len() >= limits.max_files {
            return Err(ArchiveError::TooManyFiles {
                limit: limits.max_files,
            });
        }
        // Checked on the header's word, before a byte is read or allocated.
        if self.size > limits.max_file_bytes {
            return Err(ArchiveError::FileTooLarge {
                path: shown(),
                size: self.size,
                limit: limits.max_file_bytes,
            });
        }
        let data = stream.body(self.size, &self.raw_path)?;
        Ok(Some(File {
            path: self.path,
            data: Bytes::from(data),
        }))
    }
}

/// A canonical decimal number: digits only, no leading zero (but `0` itself).
pub(super) fn decimal(text: &[u8]) -> Option<u64> {
    let canonical = !text.is_empty()
        && text.iter().all(u8::is_ascii_digit)
        && (text[0] != b'0' || text.len() == 1);
    canonical
        .then(|| std::str::from_utf8(text).ok()?.parse().ok())
        .flatten()
}
