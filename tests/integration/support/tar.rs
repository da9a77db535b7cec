//! The test suite's one raw tar writer: 512-byte headers written field by field, so tests can
//! build what the `tar` crate refuses to write (`..`, absolute names, bad checksums, base-256
//! numbers, prefixes, hostile extension headers). Nothing here uses the product's code.
//!
//! Invariant: [`Header`] computes a correct (unsigned) checksum unless a test sets one, and
//! [`Tar`] pads every body to a block, so each test breaks exactly the field it names.

use std::ops::Range;

/// Tar typeflags.
pub mod typeflag {
    pub const REGULAR: u8 = b'0';
    pub const HARDLINK: u8 = b'1';
    pub const SYMLINK: u8 = b'2';
    pub const CHAR: u8 = b'3';
    pub const BLOCK: u8 = b'4';
    pub const DIRECTORY: u8 = b'5';
    pub const FIFO: u8 = b'6';
    pub const PAX: u8 = b'x';
    pub const PAX_GLOBAL: u8 = b'g';
    pub const GNU_LONG_NAME: u8 = b'L';
    pub const GNU_LONG_LINK: u8 = b'K';
}

/// Byte ranges of the header fields (POSIX ustar; GNU headers use 345.. for times and sparse
/// maps instead of the prefix).
pub mod field {
    use std::ops::Range;
    pub const NAME: Range<usize> = 0..100;
    pub const MODE: Range<usize> = 100..108;
    pub const UID: Range<usize> = 108..116;
    pub const GID: Range<usize> = 116..124;
    pub const SIZE: Range<usize> = 124..136;
    pub const MTIME: Range<usize> = 136..148;
    pub const CHECKSUM: Range<usize> = 148..156;
    pub const TYPEFLAG: Range<usize> = 156..157;
    pub const LINKNAME: Range<usize> = 157..257;
    pub const MAGIC: Range<usize> = 257..265;
    pub const UNAME: Range<usize> = 265..297;
    pub const GNAME: Range<usize> = 297..329;
    pub const DEVMAJOR: Range<usize> = 329..337;
    pub const DEVMINOR: Range<usize> = 337..345;
    pub const PREFIX: Range<usize> = 345..500;
}

pub const MAGIC_POSIX: &[u8; 8] = b"ustar\x0000";
pub const MAGIC_GNU: &[u8; 8] = b"ustar  \x00";

/// One header block, field by field.
#[derive(Clone, Debug)]
pub struct Header {
    block: [u8; 512],
    checksum: Option<Vec<u8>>,
    signed: bool,
}

impl Header {
    /// A POSIX ustar header: `name`, mode 0644, uid/gid/mtime 0, `size` in octal, `typeflag`.
    pub fn new(name: &[u8], typeflag: u8, size: u64) -> Self {
        let h = Self {
            block: [0; 512],
            checksum: None,
            signed: false,
        };
        h.set(field::NAME, name)
            .set(field::MODE, b"0000644\0")
            .set(field::UID, b"0000000\0")
            .set(field::GID, b"0000000\0")
            .set(field::SIZE, format!("{size:011o}\0").as_bytes())
            .set(field::MTIME, b"00000000000\0")
            .set(field::TYPEFLAG, &[typeflag])
            .set(field::MAGIC, MAGIC_POSIX)
    }

    /// The same with the GNU magic.
    #[must_use]
    pub fn gnu(self) -> Self {
        self.set(field::MAGIC, MAGIC_GNU)
    }

    /// Writes `bytes` at the start of `range` and zeros the rest of it.
    #[must_use]
    pub fn set(mut self, range: Range<usize>, bytes: &[u8]) -> Self {
        assert!(
            bytes.len() <= range.len(),
            "{} bytes for {range:?}",
            bytes.len()
        );
        self.block[range.clone()].fill(0);
        self.block[range.start..range.start + bytes.len()].copy_from_slice(bytes);
        self
    }

    /// Sets the checksum field as given instead of computing it.
    #[must_use]
    pub fn checksum(mut self, raw: &[u8]) -> Self {
        self.checksum = Some(raw.to_vec());
        self
    }

    /// Computes the checksum as a signed byte sum (what old Sun tars wrote).
    #[must_use]
    pub fn signed_checksum(mut self) -> Self {
        self.signed = true;
        self
    }

    pub fn block(&self) -> [u8; 512] {
        let mut h = self.block;
        let raw = self.checksum.clone().unwrap_or_else(|| {
            h[field::CHECKSUM].fill(b' ');
            let sum: i64 = if self.signed {
                h.iter().map(|b| i64::from(b.cast_signed())).sum()
            } else {
                h.iter().map(|b| i64::from(*b)).sum()
            };
            format!("{:06o}\0 ", sum & 0o777_777).into_bytes()
        });
        h[field::CHECKSUM].fill(0);
        h[148..148 + raw.len()].copy_from_slice(&raw);
        h
    }
}

/// One raw ustar header: name (≤ 100 bytes), mode, size in octal, typeflag, link name, the
/// `ustar\0` magic with version `00`, and the checksum computed over the header with the
/// checksum field taken as spaces.
pub fn tar_header(name: &[u8], mode: u32, size: u64, typeflag: u8, linkname: &[u8]) -> [u8; 512] {
    Header::new(name, typeflag, size)
        .set(field::MODE, format!("{mode:07o}\0").as_bytes())
        .set(field::LINKNAME, linkname)
        .block()
}

/// The body of a PAX extended header: `"<len> <key>=<value>\n"` records, where `len` counts
/// the whole record including its own digits.
pub fn pax_records(records: &[(&str, &[u8])]) -> Vec<u8> {
    let mut body = Vec::new();
    for (key, value) in records {
        let rest = 3 + key.len() + value.len(); // ' ', '=', '\n'
        let mut len = rest + 1;
        while len != rest + len.to_string().len() {
            len = rest + len.to_string().len();
        }
        body.extend_from_slice(format!("{len} {key}=").as_bytes());
        body.extend_from_slice(value);
        body.push(b'\n');
    }
    body
}

/// A tar stream assembled entry by entry from raw headers.
#[derive(Clone, Debug, Default)]
pub struct Tar {
    bytes: Vec<u8>,
}

impl Tar {
    pub fn new() -> Self {
        Self::default()
    }

    /// `header`, then `data` padded to a block (the size field and the data may disagree).
    #[must_use]
    pub fn header(mut self, header: &Header, data: &[u8]) -> Self {
        self.bytes.extend_from_slice(&header.block());
        self.bytes.extend_from_slice(data);
        self.pad();
        self
    }

    /// A header with an explicit size field, then `data` padded to a block (the size field and
    /// the data may disagree: that is the point of some tests).
    #[must_use]
    pub fn entry_with_size(
        self,
        name: &[u8],
        typeflag: u8,
        size: u64,
        linkname: &[u8],
        data: &[u8],
    ) -> Self {
        let header = Header::new(name, typeflag, size).set(field::LINKNAME, linkname);
        self.header(&header, data)
    }

    /// A header whose size field is `data`'s length, then the data.
    #[must_use]
    pub fn entry(self, name: &[u8], typeflag: u8, linkname: &[u8], data: &[u8]) -> Self {
        self.entry_with_size(name, typeflag, data.len() as u64, linkname, data)
    }

    #[must_use]
    pub fn file(self, name: impl AsRef<[u8]>, data: impl AsRef<[u8]>) -> Self {
        self.entry(name.as_ref(), typeflag::REGULAR, b"", data.as_ref())
    }

    #[must_use]
    pub fn dir(self, name: impl AsRef<[u8]>) -> Self {
        self.entry(name.as_ref(), typeflag::DIRECTORY, b"", b"")
    }

    #[must_use]
    pub fn symlink(self, name: impl AsRef<[u8]>, target: impl AsRef<[u8]>) -> Self {
        self.entry(name.as_ref(), typeflag::SYMLINK, target.as_ref(), b"")
    }

    #[must_use]
    pub fn hardlink(self, name: impl AsRef<[u8]>, target: impl AsRef<[u8]>) -> Self {
        self.entry(name.as_ref(), typeflag::HARDLINK, target.as_ref(), b"")
    }

    /// An entry of `typeflag` with no data (devices, FIFOs, unknown types).
    #[must_use]
    pub fn special(self, name: impl AsRef<[u8]>, typeflag: u8) -> Self {
        self.entry(name.as_ref(), typeflag, b"", b"")
    }

    /// A PAX extended header (`x`) that applies to the next entry.
    #[must_use]
    pub fn pax(self, records: &[(&str, &[u8])]) -> Self {
        self.pax_body(typeflag::PAX, &pax_records(records))
    }

    /// An extended header of `typeflag` (`x`, `g`) with `body` as it is.
    #[must_use]
    pub fn pax_body(self, typeflag: u8, body: &[u8]) -> Self {
        self.entry(b"PaxHeaders.0/next", typeflag, b"", body)
    }

    /// A GNU long name (`L`, or `K` for a long link name) for the next entry, as GNU tar and
    /// the `tar` crate write it: GNU magic, `././@LongLink`, the name and one NUL.
    #[must_use]
    pub fn gnu_long(self, typeflag: u8, name: &[u8]) -> Self {
        let body = [name, b"\0"].concat();
        let header = Header::new(b"././@LongLink", typeflag, body.len() as u64).gnu();
        self.header(&header, &body)
    }

    /// Appends raw bytes as they are.
    #[must_use]
    pub fn raw(mut self, bytes: &[u8]) -> Self {
        self.bytes.extend_from_slice(bytes);
        self
    }

    fn pad(&mut self) {
        let len = self.bytes.len().next_multiple_of(512);
        self.bytes.resize(len, 0);
    }

    /// The stream with the end-of-archive marker (two zero blocks).
    pub fn finish(mut self) -> Vec<u8> {
        self.bytes.extend_from_slice(&[0u8; 1024]);
        self.bytes
    }

    /// The stream without the end-of-archive marker.
    pub fn finish_without_end(self) -> Vec<u8> {
        self.bytes
    }
}
