//! `releasectl::archive::read` on tar streams built byte by byte: every header construct that
//! GNU tar, Python's `tarfile` and Go's `archive/tar` read differently is refused, and the
//! shapes our writer and well-behaved writers produce are read. The differential test against
//! the real readers is in `archive_differential.rs`.

use std::time::Duration;

use bytes::Bytes;
use releasectl::archive::{ArchiveError, File, Limits, MAX_EXTENSION_BYTES, read, read_with};

use crate::support::image::gzip;
use crate::support::tar::{Header, Tar, field, typeflag};

const DOC: &[u8] = b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n";

/// Asserts that the error `$err` matches `$pattern`, naming `$context` (format arguments) and
/// the error when it does not; evaluates to the error.
macro_rules! assert_matches {
    ($err:expr, $pattern:pat $(if $guard:expr)? $(, $($context:tt)+)?) => {{
        let err: ArchiveError = $err;
        let context = String::new() $(+ &format!($($context)+) + ": ")?;
        assert!(matches!(err, $pattern $(if $guard)?), "{context}{err}");
        err
    }};
}

/// Byte strings of different lengths, as one list to loop over.
fn bytes<'a>(list: &[&'a [u8]]) -> Vec<&'a [u8]> {
    list.to_vec()
}

fn read_tar(tar: Tar) -> Result<Vec<File>, ArchiveError> {
    read(&gzip(&tar.finish()), &Limits::default())
}

fn paths(files: &[File]) -> Vec<&str> {
    files.iter().map(|f| f.path.as_str()).collect()
}

/// Refused, with a one-line message under 4 KiB.
fn refused(tar: Tar) -> ArchiveError {
    let err = read_tar(tar).expect_err("the archive must be refused");
    let message = err.to_string();
    assert!(
        !message.contains(['\n', '\r']) && message.len() < 4096,
        "{} bytes: {message}",
        message.len()
    );
    err
}

fn ok() -> Tar {
    Tar::new().file("ok.yaml", DOC)
}

// ---- accepted shapes ----

#[test]
fn directories_and_dot_prefixes_are_accepted_and_normalised() {
    let files = read_tar(
        Tar::new()
            .dir("./")
            .dir("./dir/")
            .dir("other")
            .file("./dir//b.yaml", b"b")
            .file("a.yaml", b"a"),
    )
    .unwrap();
    assert_eq!(paths(&files), ["a.yaml", "dir/b.yaml"]);
}

#[test]
fn a_pax_path_and_a_matching_pax_size_are_accepted() {
    let long = format!("{}/pax.yaml", "d".repeat(300));
    let files = read_tar(
        Tar::new()
            .pax(&[("path", long.as_bytes()), ("size", b"3")])
            .file("short.yaml", b"abc"),
    )
    .unwrap();
    assert_eq!(paths(&files), [long.as_str()]);
    assert_eq!(&files[0].data[..], b"abc");
}

#[test]
fn a_gnu_long_name_on_a_gnu_entry_is_accepted() {
    let long = format!("{}/gnu.yaml", "g".repeat(300));
    let entry = Header::new(&long.as_bytes()[..100], typeflag::REGULAR, 3).gnu();
    let files = read_tar(
        Tar::new()
            .gnu_long(typeflag::GNU_LONG_NAME, long.as_bytes())
            .header(&entry, b"abc"),
    )
    .unwrap();
    assert_eq!(paths(&files), [long.as_str()]);
}

#[test]
fn pre_posix_files_and_directories_are_accepted_when_every_reader_agrees_on_them() {
    let files = read_tar(
        Tar::new()
            .entry(b"old.yaml", 0, b"", DOC)
            .entry(b"d/", 0, b"", b"")
            .file("d/a.yaml", DOC),
    )
    .unwrap();
    assert_eq!(paths(&files), ["d/a.yaml", "old.yaml"]);
    // Python decides "directory" on the header's name, Go on the PAX path.
    for (header, path) in [(&b"x/"[..], &b"x.yaml"[..]), (b"x.yaml", b"d/")] {
        assert_matches!(
            refused(
                ok().pax(&[("path", path)])
                    .header(&Header::new(header, 0, 0), b""),
            ),
            ArchiveError::HeaderField { field: "name", .. }
        );
    }
}

#[test]
fn numeric_fields_in_the_forms_every_reader_agrees_on_are_accepted() {
    for size in bytes(&[
        b"     3 \0\0\0\0",
        b"000000000003",
        b"3\0\0\0\0\0\0\0\0\0\0\0",
    ]) {
        let header = Header::new(b"a.yaml", typeflag::REGULAR, 0)
            .set(field::SIZE, size)
            .set(field::MODE, b"   644 \0")
            .set(field::UID, b"")
            .set(field::DEVMAJOR, b"0000000\0");
        let files = read_tar(Tar::new().header(&header, b"abc")).unwrap();
        assert_eq!(&files[0].data[..], b"abc", "{size:?}");
    }
}

#[test]
fn zero_padding_after_the_end_of_archive_is_accepted() {
    let mut tar = ok().finish();
    tar.resize(10240, 0); // GNU tar pads to a 10 KiB record
    assert_eq!(read(&gzip(&tar), &Limits::default()).unwrap().len(), 1);
}

#[test]
fn each_file_is_handed_over_as_it_is_read_in_archive_order() {
    let gz = gzip(
        &Tar::new()
            .file("b.yaml", b"b")
            .file("a.yaml", b"aa")
            .finish(),
    );
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
    assert_eq!(paths(&files), ["a.yaml", "b.yaml"], "the result is sorted");
}

// ---- the attacker's samples ----

#[test]
fn a_pax_header_with_two_path_records_is_refused() {
    assert_matches!(refused(
        Tar::new()
            .pax(&[("path", b"a.yaml"), ("path", b"../../evil.yaml")])
            .file("x.yaml", DOC),
    ), ArchiveError::ExtendedHeader { ref expected, .. } if expected.contains("at most once"));
}

#[test]
fn a_gnu_long_name_and_a_pax_path_on_one_entry_are_refused_in_either_order() {
    let entry = Header::new(b"x.yaml", typeflag::REGULAR, DOC.len() as u64);
    let long_then_pax = Tar::new()
        .gnu_long(typeflag::GNU_LONG_NAME, b"a.yaml")
        .pax(&[("path", b"../../evil.yaml")])
        .header(&entry, DOC);
    let pax_then_long = Tar::new()
        .pax(&[("path", b"../../evil.yaml")])
        .gnu_long(typeflag::GNU_LONG_NAME, b"a.yaml")
        .header(&entry.gnu(), DOC);
    for tar in [long_then_pax, pax_then_long] {
        assert_matches!(refused(tar), ArchiveError::ExtendedHeader { ref expected, .. } if expected.contains("one extended header"));
    }
}

#[test]
fn pax_gnu_sparse_records_on_a_regular_entry_are_refused() {
    for (key, value) in [
        ("GNU.sparse.name", &b"../../evil.yaml"[..]),
        ("GNU.sparse.size", b"3"),
        ("GNU.sparse.realsize", b"3"),
        ("GNU.sparse.major", b"1"),
        ("GNU.sparse.map", b"0,3"),
    ] {
        assert_matches!(refused(Tar::new().pax(&[(key, value)]).file("a.yaml", DOC)), ArchiveError::ExtendedHeader { ref found, .. } if *found == *key, "{key}");
    }
}

#[test]
fn a_directory_whose_size_covers_a_hidden_entry_is_refused() {
    // GNU tar skips the "directory data" (the hidden entry); Python and Go list it.
    let hidden = Tar::new().file("hidden.yaml", DOC).finish_without_end();
    let dir = |name: &[u8], flag: u8| Header::new(name, flag, hidden.len() as u64);
    assert_matches!(refused(ok().header(&dir(b"d/", typeflag::DIRECTORY), &hidden)), ArchiveError::DirectoryWithData { ref path, size: 1024 } if *path == *"d/");
    assert_matches!(
        refused(ok().header(&dir(b"d", typeflag::DIRECTORY), &hidden)),
        ArchiveError::DirectoryWithData { .. }
    );
    // A pre-POSIX directory: a regular type (NUL, or '0' for GNU tar) whose name ends in `/`.
    assert_matches!(
        refused(ok().header(&dir(b"d/", typeflag::REGULAR), &hidden)),
        ArchiveError::TrailingSlash { .. }
    );
    assert_matches!(
        refused(ok().header(&dir(b"d/", 0), &hidden)),
        ArchiveError::DirectoryWithData { .. }
    );
    // Even with size 0, GNU tar reads '0' and `/` as a directory, Python and Go as a file.
    assert_matches!(
        refused(ok().file("d/", b"")),
        ArchiveError::TrailingSlash { .. }
    );
}

// ---- extension headers ----

#[test]
fn duplicate_pax_keys_of_any_kind_are_refused() {
    for key in ["size", "path"] {
        let value: &[u8] = if key == "size" { b"3" } else { b"a.yaml" };
        assert_matches!(
            refused(
                Tar::new()
                    .pax(&[(key, value), (key, value)])
                    .file("a.yaml", b"abc"),
            ),
            ArchiveError::ExtendedHeader { .. },
            "{key}"
        );
    }
}

#[test]
fn pax_records_other_than_path_and_size_are_refused() {
    for key in [
        "linkpath",
        "uid",
        "gid",
        "uname",
        "gname",
        "mtime",
        "atime",
        "ctime",
        "hdrcharset",
        "charset",
        "comment",
        "SCHILY.xattr.user.x",
        "LIBARCHIVE.xattr.user.x",
        "realtime.x",
        "Path",
        "path ",
    ] {
        assert_matches!(refused(Tar::new().pax(&[(key, b"0")]).file("a.yaml", DOC)), ArchiveError::ExtendedHeader { ref expected, .. } if expected.contains("only the keys"), "{key}");
    }
}

#[test]
fn a_pax_size_that_differs_from_the_header_or_is_not_canonical_is_refused() {
    for pax in bytes(&[b"0", b"5", b"03", b"+3", b" 3", b"3 ", b"0x3", b"", b"3x"]) {
        assert_matches!(
            refused(Tar::new().pax(&[("size", pax)]).file("a.yaml", b"abc")),
            ArchiveError::PaxSizeMismatch { header: 3, .. },
            "{pax:?}"
        );
    }
}

#[test]
fn global_pax_headers_and_gnu_long_links_are_refused() {
    let global = Tar::new()
        .pax_body(typeflag::PAX_GLOBAL, b"18 path=evil.yaml\n")
        .file("a.yaml", DOC);
    assert_matches!(
        refused(global),
        ArchiveError::UnsupportedEntryType {
            entry_type: 'g',
            ..
        }
    );
    let link = Tar::new()
        .gnu_long(typeflag::GNU_LONG_LINK, b"/etc/passwd")
        .header(&Header::new(b"a.yaml", typeflag::REGULAR, 0).gnu(), b"");
    assert_matches!(
        refused(link),
        ArchiveError::UnsupportedEntryType {
            entry_type: 'K',
            ..
        }
    );
}

#[test]
fn consecutive_extension_headers_are_refused() {
    let posix = Header::new(b"a.yaml", typeflag::REGULAR, 0);
    let gnu = posix.clone().gnu();
    let pax = |t: Tar| t.pax(&[("path", b"b.yaml")]);
    let long = |t: Tar| t.gnu_long(typeflag::GNU_LONG_NAME, b"b.yaml");
    for tar in [
        pax(pax(Tar::new())).header(&posix, b""),
        long(long(Tar::new())).header(&gnu, b""),
        long(pax(Tar::new())).header(&gnu, b""),
        pax(long(Tar::new())).header(&posix, b""),
    ] {
        assert_matches!(refused(tar), ArchiveError::ExtendedHeader { ref expected, .. } if expected.contains("one extended header"));
    }
}

#[test]
fn an_extension_header_without_an_entry_is_refused() {
    for tar in [
        ok().pax(&[("path", b"b.yaml")]),
        ok().gnu_long(typeflag::GNU_LONG_NAME, b"b.yaml"),
    ] {
        assert_matches!(refused(tar), ArchiveError::ExtendedHeader { ref found, .. } if *found == *"the end of the archive");
    }
}

#[test]
fn an_extension_header_and_its_entry_must_carry_the_same_magic() {
    let posix = Header::new(b"a.yaml", typeflag::REGULAR, 0);
    let pax_on_gnu = Tar::new()
        .pax(&[("path", b"b.yaml")])
        .header(&posix.clone().gnu(), b"");
    let long_on_posix = Tar::new()
        .gnu_long(typeflag::GNU_LONG_NAME, b"b.yaml")
        .header(&posix, b"");
    let pax_with_gnu_magic = Tar::new()
        .header(
            &Header::new(b"PaxHeaders/x", typeflag::PAX, 15).gnu(),
            b"15 path=b.yaml\n",
        )
        .header(&posix, b"");
    for tar in [pax_on_gnu, long_on_posix, pax_with_gnu_magic] {
        assert_matches!(refused(tar), ArchiveError::ExtendedHeader { .. });
    }
}

#[test]
fn malformed_pax_records_are_refused() {
    for body in bytes(&[
        b"",
        b"15 path=b.yaml\n\0\0\0",
        b"17 path=b.yaml\n",
        b"14 path=b.yaml\n",
        b"015 path=b.yaml\n",
        b"15 path=b.yaml.",
        b"8 pathb\n",
        b"path=b.yaml\n",
        b"0 path=b.yaml\n",
        b"-15 path=b.yaml\n",
        b"99999999999999999999 path=b.yaml\n",
    ]) {
        assert_matches!(
            refused(Tar::new().pax_body(typeflag::PAX, body).file("a.yaml", DOC)),
            ArchiveError::ExtendedHeader { .. },
            "{:?}",
            String::from_utf8_lossy(body)
        );
    }
}

#[test]
fn malformed_gnu_long_names_are_refused() {
    let entry = Header::new(b"a.yaml", typeflag::REGULAR, 0).gnu();
    for body in bytes(&[
        b"",
        b"\0",
        b"b.yaml",
        b"b.yaml\0\0",
        b"b.yaml\0../evil.yaml\0",
    ]) {
        let long = Header::new(b"././@LongLink", typeflag::GNU_LONG_NAME, body.len() as u64).gnu();
        assert_matches!(
            refused(Tar::new().header(&long, body).header(&entry, b"")),
            ArchiveError::ExtendedHeader { .. },
            "{body:?}"
        );
    }
}

#[test]
fn a_multi_mib_pax_path_or_long_name_is_refused_in_one_short_line() {
    let huge = format!("{}.yaml", "a/".repeat(3 << 20));
    assert_matches!(refused(
        Tar::new()
            .pax(&[("path", huge.as_bytes())])
            .file("a.yaml", DOC),
    ), ArchiveError::ExtendedHeaderTooLarge { limit, .. } if limit == MAX_EXTENSION_BYTES);
    assert_matches!(
        refused(
            Tar::new()
                .gnu_long(typeflag::GNU_LONG_NAME, huge.as_bytes())
                .header(&Header::new(b"a.yaml", typeflag::REGULAR, 0).gnu(), b""),
        ),
        ArchiveError::ExtendedHeaderTooLarge { .. }
    );
    // Under the cap, the name in the message is escaped and cut.
    let long = format!("{}\n/../x.yaml", "\u{1b}[31m".repeat(8000));
    let err = refused(
        Tar::new()
            .pax(&[("path", long.as_bytes())])
            .file("a.yaml", DOC),
    );
    let message = err.to_string();
    assert!(matches!(err, ArchiveError::ControlInPath { .. }), "{err}");
    assert!(!message.contains('\u{1b}'), "{message}");
    assert!(
        message.contains(&format!("…({} bytes)", long.len())),
        "{message}"
    );
}

// ---- header fields ----

#[test]
fn a_ustar_prefix_is_refused_alone_or_with_a_long_name() {
    let prefixed = Header::new(b"b.yaml", typeflag::REGULAR, 0).set(field::PREFIX, b"evil");
    assert_matches!(
        refused(ok().header(&prefixed, b"")),
        ArchiveError::HeaderField {
            field: "prefix",
            ..
        }
    );
    assert_matches!(
        refused(ok().pax(&[("path", b"b.yaml")]).header(&prefixed, b"")),
        ArchiveError::HeaderField {
            field: "prefix",
            ..
        }
    );
}

#[test]
fn gnu_times_offsets_and_old_sparse_maps_are_refused() {
    for (at, byte) in [
        (345, b'1'),
        (369, b'1'),
        (386, b'1'),
        (482, 1),
        (483, b'1'),
        (511, 1),
    ] {
        let mut header = Header::new(b"b.yaml", typeflag::REGULAR, 0).gnu();
        header = header.set(at..at + 1, &[byte]);
        assert_matches!(
            refused(ok().header(&header, b"")),
            ArchiveError::HeaderField {
                field: "prefix",
                ..
            },
            "byte {at}"
        );
    }
    let sparse = Header::new(b"b.yaml", b'S', 0).gnu();
    assert_matches!(
        refused(ok().header(&sparse, b"")),
        ArchiveError::UnsupportedEntryType {
            entry_type: 'S',
            ..
        }
    );
}

#[test]
fn non_octal_and_base_256_numeric_fields_are_refused() {
    let fields = [
        ("mode", field::MODE),
        ("uid", field::UID),
        ("gid", field::GID),
        ("size", field::SIZE),
        ("mtime", field::MTIME),
        ("devmajor", field::DEVMAJOR),
        ("devminor", field::DEVMINOR),
    ];
    for (name, range) in fields {
        for raw in bytes(&[
            b"\x80\0\0\0\0\0\0\x03",
            b"\xff\xff\xff\xff\xff\xff\xff\xff",
            b"\x0000003\0",
            b"00 3\0\0\0\0",
            b"3\x00x\0\0\0\0\0",
            b"+3\0\0\0\0\0\0",
            b"0009\0\0\0\0",
            b"        ",
        ]) {
            let header = Header::new(b"b.yaml", typeflag::REGULAR, 0).set(range.clone(), raw);
            assert_matches!(refused(ok().header(&header, b"")), ArchiveError::HeaderField { field, .. } if field == name, "{name} = {raw:?}");
        }
    }
}

#[test]
fn only_the_unsigned_checksum_is_accepted() {
    // A name byte over 127 makes the signed and unsigned sums differ.
    let header = Header::new("é.yaml".as_bytes(), typeflag::REGULAR, 0);
    assert!(read_tar(Tar::new().header(&header, b"")).is_ok());
    assert_matches!(
        refused(Tar::new().header(&header.clone().signed_checksum(), b"")),
        ArchiveError::HeaderField {
            field: "checksum",
            ..
        }
    );
    for raw in bytes(&[b"\0\0\0\0\0\0\0\0", b"0000000\0", b"\x80\0\0\0\0\0\0\0"]) {
        assert_matches!(
            refused(Tar::new().header(&header.clone().checksum(raw), b"")),
            ArchiveError::HeaderField {
                field: "checksum",
                ..
            }
        );
    }
}

#[test]
fn an_unknown_magic_is_refused() {
    for magic in bytes(&[
        b"",
        b"ustar\0  ",
        b"ustar 00",
        b"ustar\x0001",
        b"USTAR\x0000",
    ]) {
        let header = Header::new(b"b.yaml", typeflag::REGULAR, 0).set(field::MAGIC, magic);
        assert_matches!(
            refused(ok().header(&header, b"")),
            ArchiveError::HeaderField { field: "magic", .. },
            "{magic:?}"
        );
    }
}

#[test]
fn names_and_strings_that_differ_only_after_a_nul_are_refused() {
    for (name, range) in [
        ("name", field::NAME),
        ("linkname", field::LINKNAME),
        ("uname", field::UNAME),
        ("gname", field::GNAME),
    ] {
        let value: &[u8] = if name == "name" {
            b"b.yaml\0../evil"
        } else {
            b"\0x"
        };
        let header = Header::new(b"b.yaml", typeflag::REGULAR, 0).set(range, value);
        assert_matches!(refused(ok().header(&header, b"")), ArchiveError::HeaderField { field, .. } if field == name, "{name}");
    }
}

#[test]
fn a_link_name_on_a_file_or_directory_is_refused() {
    assert_matches!(
        refused(ok().entry(b"b.yaml", typeflag::REGULAR, b"/etc/passwd", b"")),
        ArchiveError::HeaderField {
            field: "linkname",
            ..
        }
    );
    assert_matches!(
        refused(ok().entry(b"d/", typeflag::DIRECTORY, b"x", b"")),
        ArchiveError::HeaderField {
            field: "linkname",
            ..
        }
    );
}

#[test]
fn a_file_name_with_a_trailing_slash_is_refused_whatever_its_source() {
    let gnu = Header::new(b"x.yaml", typeflag::REGULAR, 0).gnu();
    for tar in [
        ok().file("b.yaml/", b""),
        ok().pax(&[("path", b"b.yaml/")]).file("x.yaml", b""),
        ok().gnu_long(typeflag::GNU_LONG_NAME, b"b.yaml/")
            .header(&gnu, b""),
    ] {
        assert_matches!(refused(tar), ArchiveError::TrailingSlash { .. });
    }
}

#[test]
fn non_zero_padding_after_a_body_is_refused() {
    let mut tar = Tar::new().file("a.yaml", b"abc").finish();
    tar[512 + 100] = b'x';
    assert_matches!(
        read(&gzip(&tar), &Limits::default()).unwrap_err(),
        ArchiveError::NonZeroPadding { offset: 612, .. }
    );
}

// ---- entry types ----

#[test]
fn links_devices_fifos_and_other_types_are_refused_whatever_their_size() {
    for size in [0, 512] {
        let data = vec![0u8; size];
        for flag in [
            b'1', b'2', b'3', b'4', b'6', b'7', b'g', b'K', b'S', b'V', b'M', b'N', b'D', b'X',
            b'A',
        ] {
            let err = refused(ok().entry(b"odd.yaml", flag, b"", &data));
            let expected = match flag {
                b'1' => matches!(err, ArchiveError::Hardlink { .. }),
                b'2' => matches!(err, ArchiveError::Symlink { .. }),
                b'3' => matches!(err, ArchiveError::CharDevice { .. }),
                b'4' => matches!(err, ArchiveError::BlockDevice { .. }),
                b'6' => matches!(err, ArchiveError::Fifo { .. }),
                _ => {
                    matches!(err, ArchiveError::UnsupportedEntryType { entry_type, .. } if entry_type == char::from(flag))
                }
            };
            assert!(expected, "{flag}: {err}");
        }
    }
}

#[test]
fn a_symlink_is_refused_with_its_target() {
    assert_matches!(refused(Tar::new().symlink("d", "/etc").file("d/x.yaml", DOC)), ArchiveError::Symlink { ref path, ref target } if *path == *"d" && *target == *"/etc");
}

// ---- paths ----

#[test]
fn hostile_paths_are_refused() {
    use ArchiveError as E;
    type Expected = fn(&ArchiveError) -> bool;
    let cases: [(&[u8], Expected); 9] = [
        (b"../x.yaml", |e| matches!(e, E::ParentComponent { .. })),
        (b"a/../../x.yaml", |e| {
            matches!(e, E::ParentComponent { .. })
        }),
        (b"/etc/passwd", |e| matches!(e, E::AbsolutePath { .. })),
        (b"a\\b.yaml", |e| matches!(e, E::Backslash { .. })),
        (b"", |e| matches!(e, E::EmptyPath { offset: 1024 })),
        (b".", |e| matches!(e, E::EmptyPath { .. })),
        (b"\xff.yaml", |e| matches!(e, E::NonUtf8Path { .. })),
        (b"a\nb.yaml", |e| matches!(e, E::ControlInPath { .. })),
        (b"a\x1b[2Jb.yaml", |e| matches!(e, E::ControlInPath { .. })),
    ];
    for (name, expected) in cases {
        let err = refused(ok().file(name, DOC));
        assert!(expected(&err), "{name:?}: {err}");
        let err = refused(ok().pax(&[("path", name)]).file("x.yaml", DOC));
        assert!(expected(&err) || name.is_empty(), "PAX {name:?}: {err}");
    }
    let err = assert_matches!(
        refused(
            Tar::new()
                .pax(&[("path", b"a\0b.yaml")])
                .file("x.yaml", DOC),
        ),
        ArchiveError::NulInPath { .. }
    );
    assert!(err.to_string().contains("\\0"), "{err}");
}

#[test]
fn the_absolute_path_message_names_the_path() {
    let err = refused(Tar::new().file("/etc/passwd", b""));
    assert_eq!(
        err.to_string(),
        "archive entry path \"/etc/passwd\" is absolute: expected a relative path"
    );
}

// ---- duplicates and conflicts ----

#[test]
fn a_duplicate_path_is_refused_however_it_is_spelled() {
    for second in ["a.yaml", "./a.yaml", ".//a.yaml", "././a.yaml"] {
        assert_matches!(refused(Tar::new().file("a.yaml", b"1").file(second, b"2")), ArchiveError::DuplicatePath { ref path } if *path == *second, "{second}");
    }
    assert_matches!(
        refused(Tar::new().file("d/a.yaml", b"1").file("d//a.yaml", b"2")),
        ArchiveError::DuplicatePath { .. }
    );
}

#[test]
fn a_file_used_as_a_directory_is_refused() {
    assert_matches!(refused(Tar::new().file("a.yaml", b"").file("a.yaml/b.yaml", b"")), ArchiveError::PathConflict { ref path, ref file } if *path == *"a.yaml/b.yaml" && *file == *"a.yaml");
    assert_matches!(
        refused(Tar::new().file("a.yaml", b"").dir("a.yaml/")),
        ArchiveError::PathConflict { .. }
    );
}

// ---- the stream ----

#[test]
fn entries_or_garbage_after_the_end_of_archive_are_refused() {
    let mut tar = ok().finish();
    tar.extend_from_slice(&Tar::new().file("hidden.yaml", b"smuggled").finish());
    assert_matches!(
        read(&gzip(&tar), &Limits::default()).unwrap_err(),
        ArchiveError::TrailingTarData { offset: 2048 }
    );
    // One zero block, then an entry: `tar --ignore-zeros` and Go disagree with the rest.
    let tar = ok().raw(&[0; 512]).file("hidden.yaml", b"x").finish();
    assert_matches!(
        read(&gzip(&tar), &Limits::default()).unwrap_err(),
        ArchiveError::TrailingTarData { offset: 1536 }
    );
    let mut tar = ok().finish();
    tar.extend_from_slice(b"garbage");
    assert_matches!(
        read(&gzip(&tar), &Limits::default()).unwrap_err(),
        ArchiveError::TrailingTarData { .. }
    );
}

#[test]
fn non_zero_bytes_in_the_end_of_archive_blocks_are_refused() {
    for at in [0, 1, 511, 512, 1023] {
        let mut tar = ok().finish();
        tar[1024 + at] = 1;
        assert_matches!(
            read(&gzip(&tar), &Limits::default()).unwrap_err(),
            ArchiveError::HeaderField { .. } | ArchiveError::TrailingTarData { .. },
            "byte {at}"
        );
    }
}

#[test]
fn a_missing_or_partial_end_of_archive_marker_is_refused() {
    assert_matches!(
        read(&gzip(&ok().finish_without_end()), &Limits::default()).unwrap_err(),
        ArchiveError::MissingEndOfArchive { found: 0 }
    );
    let half = ok().raw(&[0; 512]).finish_without_end();
    assert_matches!(
        read(&gzip(&half), &Limits::default()).unwrap_err(),
        ArchiveError::MissingEndOfArchive { found: 512 }
    );
    let cut = ok().raw(&[1; 100]).finish_without_end();
    assert_matches!(
        read(&gzip(&cut), &Limits::default()).unwrap_err(),
        ArchiveError::TruncatedHeader {
            offset: 1024,
            found: 100
        }
    );
}

#[test]
fn a_truncated_entry_is_refused() {
    let tar = Tar::new()
        .entry_with_size(b"a.yaml", typeflag::REGULAR, 100, b"", b"")
        .raw(b"only ten b")
        .finish_without_end();
    // `entry_with_size` padded nothing (no data): the ten bytes follow the header.
    assert_matches!(
        read(&gzip(&tar[..522]), &Limits::default()).unwrap_err(),
        ArchiveError::TruncatedEntry {
            expected: 100,
            actual: 10,
            ..
        }
    );
}

#[test]
fn a_header_that_claims_4_gib_fails_on_the_claim_not_on_the_data() {
    let tar = Tar::new()
        .entry_with_size(b"a.yaml", typeflag::REGULAR, 1 << 32, b"", b"")
        .finish_without_end();
    let started = std::time::Instant::now();
    assert_matches!(read(&gzip(&tar), &Limits::default()).unwrap_err(), ArchiveError::FileTooLarge { size, .. } if size == 1 << 32);
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[test]
fn archives_without_manifests_are_refused() {
    assert_matches!(refused(Tar::new()), ArchiveError::NoFiles);
    assert_matches!(refused(Tar::new().dir("dir/")), ArchiveError::NoFiles);
    for name in ["notes.txt", "yaml", "a.yaml.d/x"] {
        assert_matches!(
            refused(Tar::new().file(name, b"")),
            ArchiveError::BadExtension { .. },
            "{name}"
        );
    }
}
