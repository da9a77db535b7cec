//! One 512-byte tar header block, and the bodies of the two extension headers the reader
//! accepts (a PAX `x` header with `path` and `size` records, a GNU `L` long name), parsed by the
//! narrowest grammar on which GNU tar, Python's `tarfile` and Go's `archive/tar` agree.
//!
//! Invariant: anything outside that grammar is a [`Fault`], never a guess. In particular:
//!
//! - numeric fields are octal digits, optionally after spaces and before NULs or spaces, or all
//!   NULs (zero); base-256, signs, a leading NUL (which GNU tar skips and Python reads as the
//!   end), or text after the terminator are faults, since the three readers parse them apart;
//! - the checksum is the unsigned byte sum (the signed one, which others also accept, is not);
//! - string fields end at their first NUL and hold only NULs after it: names that differ only
//!   after a NUL are refused rather than read as equal;
//! - the magic is POSIX (`ustar\0` `00`) or GNU (`ustar ` ` \0`); everything from byte 345 on
//!   (the ustar `prefix`, GNU times, offsets and old sparse maps) is zero, so no reader joins a
//!   prefix or reads a sparse map the others ignore;
//! - a PAX body is a sequence of well-formed `"<len> <key>=<value>\n"` records that exactly fills
//!   it, with canonical lengths and no key twice; only `path` and `size` are allowed (a
//!   `GNU.sparse.*`, `linkpath`, `hdrcharset`, uid or time record changes what some reader
//!   lists, or how, and none of our writers emit one);
//! - a GNU long name is one non-empty NUL-free name followed by exactly one NUL.

/// Size of a tar block.
pub(super) const BLOCK: usize = 512;

/// Which header layout a block announces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Magic {
    /// POSIX ustar (`ustar\0` `00`): what PAX headers and the entries they describe use.
    Posix,
    /// GNU (`ustar ` ` \0`): what `L` long names, the entries they describe, and our writer use.
    Gnu,
}

/// The fields of a header that the reader acts on; the others have been checked and dropped.
#[derive(Debug)]
pub(super) struct Header<'a> {
    /// The name field up to its NUL.
    pub name: &'a [u8],
    /// The link name field up to its NUL.
    pub linkname: &'a [u8],
    pub size: u64,
    pub typeflag: u8,
    pub magic: Magic,
}

/// A field outside the grammar: which one, what was expected, what was found.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Fault {
    pub field: &'static str,
    pub expected: String,
    pub found: Vec<u8>,
}

impl Fault {
    fn new(field: &'static str, expected: impl Into<String>, found: &[u8]) -> Self {
        Self {
            field,
            expected: expected.into(),
            found: found.to_vec(),
        }
    }
}

const MAGIC_POSIX: &[u8; 8] = b"ustar\x0000";
const MAGIC_GNU: &[u8; 8] = b"ustar  \x00";

/// The name field, cut at its first NUL, whatever else is wrong with the block (for messages).
pub(super) fn raw_name(block: &[u8; BLOCK]) -> &[u8] {
    until_nul(&block[..100])
}

/// Parses a header block that is not all zeros.
pub(super) fn parse(block: &[u8; BLOCK]) -> Result<Header<'_>, Fault> {
    let recorded = octal("checksum", &block[148..156])?;
    let sum: u64 = block[..148]
        .iter()
        .chain(&[b' '; 8])
        .chain(&block[156..])
        .map(|b| u64::from(*b))
        .sum();
    if recorded != sum {
        return Err(Fault::new(
            "checksum",
            format!("the unsigned byte sum {sum:o} (octal)"),
            &block[148..156],
        ));
    }
    let magic = match &block[257..265] {
        m if m == MAGIC_POSIX => Magic::Posix,
        m if m == MAGIC_GNU => Magic::Gnu,
        m => {
            return Err(Fault::new(
                "magic",
                "POSIX `ustar\\0` `00` or GNU `ustar ` ` \\0`",
                m,
            ));
        }
    };
    let name = string("name", &block[..100])?;
    let linkname = string("linkname", &block[157..257])?;
    string("uname", &block[265..297])?;
    string("gname", &block[297..329])?;
    for (field, range) in [
        ("mode", 100..108),
        ("uid", 108..116),
        ("gid", 116..124),
        ("mtime", 136..148),
        ("devmajor", 329..337),
        ("devminor", 337..345),
    ] {
        octal(field, &block[range])?;
    }
    let size = octal("size", &block[124..136])?;
    if let Some(at) = block[345..].iter().position(|b| *b != 0) {
        let at = 345 + at;
        return Err(Fault::new(
            "prefix",
            "zeros from byte 345 (no ustar prefix, GNU times or sparse map)",
            &block[at..(at + 16).min(BLOCK)],
        ));
    }
    Ok(Header {
        name,
        linkname,
        size,
        typeflag: block[156],
        magic,
    })
}

fn until_nul(raw: &[u8]) -> &[u8] {
    raw.iter()
        .position(|b| *b == 0)
        .map_or(raw, |at| &raw[..at])
}

/// A string field: its bytes up to the first NUL, with only NULs after it.
fn string<'a>(field: &'static str, raw: &'a [u8]) -> Result<&'a [u8], Fault> {
    let text = until_nul(raw);
    if raw[text.len()..].iter().any(|b| *b != 0) {
        return Err(Fault::new(field, "only NUL bytes after the first NUL", raw));
    }
    Ok(text)
}

/// A numeric field: all NULs (zero), or optional spaces, octal digits, then only NULs or
/// spaces.
pub(super) fn octal(field: &'static str, raw: &[u8]) -> Result<u64, Fault> {
    if raw.iter().all(|b| *b == 0) {
        return Ok(0);
    }
    let fault = || {
        Fault::new(
            field,
            "octal digits, optionally after spaces and before NULs or spaces",
            raw,
        )
    };
    let start = raw.iter().position(|b| *b != b' ').unwrap_or(raw.len());
    let digits = raw[start..]
        .iter()
        .position(|b| !(b'0'..=b'7').contains(b))
        .unwrap_or(raw.len() - start);
    let end = start + digits;
    if digits == 0 || raw[end..].iter().any(|b| *b != 0 && *b != b' ') {
        return Err(fault());
    }
    // At most 12 digits (36 bits): no overflow.
    Ok(raw[start..end]
        .iter()
        .fold(0, |n, d| n * 8 + u64::from(d - b'0')))
}

/// The records of a PAX extended header that the reader acts on.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Pax<'a> {
    pub path: Option<&'a [u8]>,
    pub size: Option<&'a [u8]>,
}

/// Parses a PAX `x` body: at least one record, each `"<len> <key>=<value>\n"` with `len` in
/// canonical decimal counting the whole record, together filling the body exactly; keys
/// `path` and `size` only, each at most once.
pub(super) fn pax(body: &[u8]) -> Result<Pax<'_>, Fault> {
    let mut records = Pax::default();
    if body.is_empty() {
        return Err(Fault::new("record", "at least one record", body));
    }
    let mut rest = body;
    while !rest.is_empty() {
        let shown = &rest[..rest.len().min(64)];
        let fault = |expected: &str| Fault::new("record", expected, shown);
        let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
        if digits == 0 || digits > 8 || rest[0] == b'0' || rest.get(digits) != Some(&b' ') {
            return Err(fault(
                "a decimal length without leading zeros, then one space",
            ));
        }
        let len: usize = std::str::from_utf8(&rest[..digits])
            .ok()
            .and_then(|d| d.parse().ok())
            .ok_or_else(|| fault("a decimal length"))?;
        if len > rest.len() || len < digits + 4 || rest[len - 1] != b'\n' {
            return Err(fault(
                "a length that ends the record just after its newline, inside the header",
            ));
        }
        let record = &rest[digits + 1..len - 1];
        rest = &rest[len..];
        let Some(eq) = record.iter().position(|b| *b == b'=') else {
            return Err(fault("`key=value`"));
        };
        let (key, value) = (&record[..eq], &record[eq + 1..]);
        let slot = match key {
            b"path" => &mut records.path,
            b"size" => &mut records.size,
            _ => {
                return Err(Fault::new("record", "only the keys `path` and `size`", key));
            }
        };
        if slot.replace(value).is_some() {
            return Err(Fault::new("record", "each key at most once", key));
        }
    }
    Ok(records)
}

/// Parses a GNU `L` body: a non-empty name without NUL, then exactly one NUL.
pub(super) fn long_name(body: &[u8]) -> Result<&[u8], Fault> {
    match body.split_last() {
        Some((0, name)) if !name.is_empty() && !name.contains(&0) => Ok(name),
        _ => Err(Fault::new(
            "long name",
            "a non-empty name, then exactly one NUL",
            &body[..body.len().min(256)],
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn octal_fields_parse_the_forms_every_reader_agrees_on() {
        for (raw, value) in [
            (&b"0000644\0"[..], 0o644),
            (b"00000000012\0", 0o12),
            (b"  1234 \0", 0o1234),
            (b"0012\0 \0 ", 0o12),
            (b"\0\0\0\0\0\0\0\0", 0),
            (b"77777777777\0", 0o777_7777_7777),
            (b"12345670", 0o1234_5670),
        ] {
            assert_eq!(octal("f", raw), Ok(value), "{raw:?}");
        }
    }

    #[test]
    fn octal_fields_that_readers_parse_apart_are_faults() {
        for raw in [
            &b"\x80\0\0\0\0\0\0\x01"[..], // base-256
            b"\xff\xff\xff\xff\xff\xff\xff\xff",
            b"\x001234\0\0", // GNU tar skips one leading NUL, Python stops at it
            b"0012 3\0\0",   // Python refuses, GNU tar reads 0o12
            b"0012\x003\0\0",
            b"+123\0\0\0\0",
            b"-1\0\0\0\0\0\0",
            b"0089\0\0\0\0",
            b"        ",
            b"12x\0\0\0\0\0",
        ] {
            let fault = octal("size", raw).unwrap_err();
            assert_eq!((fault.field, fault.found.as_slice()), ("size", raw));
        }
    }

    fn record(key: &str, value: &str) -> String {
        let rest = 3 + key.len() + value.len();
        let len = (1..8)
            .map(|d| rest + d)
            .find(|n| n.to_string().len() + rest == *n);
        format!("{} {key}={value}\n", len.unwrap())
    }

    #[test]
    fn pax_bodies_with_path_and_size_parse() {
        let body = format!("{}{}", record("path", "a/b=c.yaml"), record("size", "12"));
        let pax = pax(body.as_bytes()).unwrap();
        assert_eq!(pax.path, Some(&b"a/b=c.yaml"[..]));
        assert_eq!(pax.size, Some(&b"12"[..]));
    }

    #[test]
    fn pax_bodies_outside_the_grammar_are_faults() {
        let path = record("path", "a.yaml");
        let cases = [
            (String::new(), "at least one record"),
            (format!("{path}{path}"), "at most once"),
            (
                format!("{path}{}", record("path", "../../evil.yaml")),
                "at most once",
            ),
            (record("GNU.sparse.name", "../evil.yaml"), "only the keys"),
            (record("linkpath", "x"), "only the keys"),
            (record("hdrcharset", "BINARY"), "only the keys"),
            (record("uid", "0"), "only the keys"),
            (record("mtime", "0"), "only the keys"),
            (format!("0{path}"), "leading zeros"),
            ("13 path=a.yaml\n".to_owned(), "just after its newline"),
            ("15 path=a.yaml\n\n".to_owned(), "decimal length"),
            ("14 path=a.yaml.".to_owned(), "just after its newline"),
            ("9 pathab\n".to_owned(), "`key=value`"),
            (format!("{path}\0\0\0"), "decimal length"),
            ("15  path=a.yam\n".to_owned(), "only the keys"),
            ("x path=a.yaml\n".to_owned(), "decimal length"),
            ("3 \n".to_owned(), "just after its newline"),
        ];
        for (body, expected) in cases {
            let fault = pax(body.as_bytes()).unwrap_err();
            assert!(fault.expected.contains(expected), "{body:?}: {fault:?}");
        }
    }

    #[test]
    fn long_names_are_one_name_and_one_nul() {
        assert_eq!(long_name(b"a/b.yaml\0"), Ok(&b"a/b.yaml"[..]));
        for body in [&b""[..], b"\0", b"a.yaml", b"a.yaml\0\0", b"a\0b.yaml\0"] {
            assert!(long_name(body).is_err(), "{body:?}");
        }
    }
}
