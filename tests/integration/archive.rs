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
        let err = refused(
            ok().pax(&[("path", path)])
                .header(&Header::new(header, 0, 0), b""),
        );
        assert!(
            matches!(err, ArchiveError::HeaderField { field: "name", .. }),
            "{err}"
        );
    }
}

#[test]
fn numeric_fields_in_the_forms_every_reader_agrees_on_are_accepted() {
    for size in [
        &b"     3 \0\0\0\0"[..],
        b"000000000003",
        b"3\0\0\0\0\0\0\0\0\0\0\0",
    ] {
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
    let err = refused(
        Tar::new()
            .pax(&[("path", b"a.yaml"), ("path", b"../../evil.yaml")])
            .file("x.yaml", DOC),
    );
    assert!(
        matches!(err, ArchiveError::ExtendedHeader { ref expected, .. } if expected.contains("at most once")),
        "{err}"
    );
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
        let err = refused(tar);
        assert!(
            matches!(err, ArchiveError::ExtendedHeader { ref expected, .. } if expected.contains("one extended header")),
            "{err}"
        );
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
        let err = refused(Tar::new().pax(&[(key, value)]).file("a.yaml", DOC));
        assert!(
            matches!(err, ArchiveError::ExtendedHeader { ref found, .. } if *found == *key),
            "{key}: {err}"
        );
    }
}

#[test]
fn a_directory_whose_size_covers_a_hidden_entry_is_refused() {
    // GNU tar skips the "directory data" (the hidden entry); Python and Go list it.
    let hidden = Tar::new().file("hidden.yaml", DOC).finish_without_end();
    let dir = |name: &[u8], flag: u8| Header::new(name, flag, hidden.len() as u64);
    let err = refused(ok().header(&dir(b"d/", typeflag::DIRECTORY), &hidden));
    assert!(
        matches!(err, ArchiveError::DirectoryWithData { ref path, size: 1024 } if *path == *"d/"),
        "{err}"
    );
    let err = refused(ok().header(&dir(b"d", typeflag::DIRECTORY), &hidden));
    assert!(
        matches!(err, ArchiveError::DirectoryWithData { .. }),
        "{err}"
    );
    // A pre-POSIX directory: a regular type (NUL, or '0' for GNU tar) whose name ends in `/`.
    let err = refused(ok().header(&dir(b"d/", typeflag::REGULAR), &hidden));
    assert!(matches!(err, ArchiveError::TrailingSlash { .. }), "{err}");
    let err = refused(ok().header(&dir(b"d/", 0), &hidden));
    assert!(
        matches!(err, ArchiveError::DirectoryWithData { .. }),
        "{err}"
    );
    // Even with size 0, GNU tar reads '0' and `/` as a directory, Python and Go as a file.
    let err = refused(ok().file("d/", b""));
    assert!(matches!(err, ArchiveError::TrailingSlash { .. }), "{err}");
}

// ---- extension headers ----

#[test]
fn duplicate_pax_keys_of_any_kind_are_refused() {
    for key in ["size", "path"] {
        let value: &[u8] = if key == "size" { b"3" } else { b"a.yaml" };
        let err = refused(
            Tar::new()
                .pax(&[(key, value), (key, value)])
                .file("a.yaml", b"abc"),
        );
        assert!(
            matches!(err, ArchiveError::ExtendedHeader { .. }),
            "{key}: {err}"
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
        let err = refused(Tar::new().pax(&[(key, b"0")]).file("a.yaml", DOC));
        assert!(
            matches!(err, ArchiveError::ExtendedHeader { ref expected, .. } if expected.contains("only the keys")),
            "{key}: {err}"
        );
    }
}

#[test]
fn a_pax_size_that_differs_from_the_header_or_is_not_canonical_is_refused() {
    for pax in [
        &b"0"[..],
        b"5",
        b"03",
        b"+3",
        b" 3",
        b"3 ",
        b"0x3",
        b"",
        b"3x",
    ] {
        let err = refused(Tar::new().pax(&[("size", pax)]).file("a.yaml", b"abc"));
        assert!(
            matches!(err, ArchiveError::PaxSizeMismatch { header: 3, .. }),
            "{pax:?}: {err}"
        );
    }
}

#[test]
fn global_pax_headers_and_gnu_long_links_are_refused() {
    let global = Tar::new()
        .pax_body(typeflag::PAX_GLOBAL, b"18 path=evil.yaml\n")
        .file("a.yaml", DOC);
    let err = refused(global);
    assert!(
        matches!(
            err,
            ArchiveError::UnsupportedEntryType {
                entry_type: 'g',
                ..
            }
        ),
        "{err}"
    );
    let link = Tar::new()
        .gnu_long(typeflag::GNU_LONG_LINK, b"/etc/passwd")
        .header(&Header::new(b"a.yaml", typeflag::REGULAR, 0).gnu(), b"");
    let err = refused(link);
    assert!(
        matches!(
            err,
            ArchiveError::UnsupportedEntryType {
                entry_type: 'K',
                ..
            }
        ),
        "{err}"
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
        let err = refused(tar);
        assert!(
            matches!(err, ArchiveError::ExtendedHeader { ref expected, .. } if expected.contains("one extended header")),
            "{err}"
        );
    }
}

#[test]
fn an_extension_header_without_an_entry_is_refused() {
    for tar in [
        ok().pax(&[("path", b"b.yaml")]),
        ok().gnu_long(typeflag::GNU_LONG_NAME, b"b.yaml"),
    ] {
        let err = refused(tar);
        assert!(
            matches!(err, ArchiveError::ExtendedHeader { ref found, .. } if *found == *"the end of the archive"),
            "{err}"
        );
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
        let err = refused(tar);
        assert!(matches!(err, ArchiveError::ExtendedHeader { .. }), "{err}");
    }
}

#[test]
fn malformed_pax_records_are_refused() {
    for body in [
        &b""[..],
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
    ] {
        let err = refused(Tar::new().pax_body(typeflag::PAX, body).file("a.yaml", DOC));
        assert!(
            matches!(err, ArchiveError::ExtendedHeader { .. }),
            "{:?}: {err}",
            String::from_utf8_lossy(body)
        );
    }
}

#[test]
fn malformed_gnu_long_names_are_refused() {
    let entry = Header::new(b"a.yaml", typeflag::REGULAR, 0).gnu();
    for body in [
        &b""[..],
        b"\0",
        b"b.yaml",
        b"b.yaml\0\0",
        b"b.yaml\0../evil.yaml\0",
    ] {
        let long = Header::new(b"././@LongLink", typeflag::GNU_LONG_NAME, body.len() as u64).gnu();
        let err = refused(Tar::new().header(&long, body).header(&entry, b""));
        assert!(
            matches!(err, ArchiveError::ExtendedHeader { .. }),
            "{body:?}: {err}"
        );
    }
}

#[test]
fn a_multi_mib_pax_path_or_long_name_is_refused_in_one_short_line() {
    let huge = format!("{}.yaml", "a/".repeat(3 << 20));
    let err = refused(
        Tar::new()
            .pax(&[("path", huge.as_bytes())])
            .file("a.yaml", DOC),
    );
    assert!(
        matches!(err, ArchiveError::ExtendedHeaderTooLarge { limit, .. } if limit == MAX_EXTENSION_BYTES),
        "{err}"
    );
    let err = refused(
        Tar::new()
            .gnu_long(typeflag::GNU_LONG_NAME, huge.as_bytes())
            .header(&Header::new(b"a.yaml", typeflag::REGULAR, 0).gnu(), b""),
    );
    assert!(
        matches!(err, ArchiveError::ExtendedHeaderTooLarge { .. }),
        "{err}"
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
    let err = refused(ok().header(&prefixed, b""));
    assert!(
        matches!(
            err,
            ArchiveError::HeaderField {
                field: "prefix",
                ..
            }
        ),
        "{err}"
    );
    let err = refused(ok().pax(&[("path", b"b.yaml")]).header(&prefixed, b""));
    assert!(
        matches!(
            err,
            ArchiveError::HeaderField {
                field: "prefix",
                ..
            }
        ),
        "{err}"
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
        let err = refused(ok().header(&header, b""));
        assert!(
            matches!(
                err,
                ArchiveError::HeaderField {
                    field: "prefix",
                    ..
                }
            ),
            "byte {at}: {err}"
        );
    }
    let sparse = Header::new(b"b.yaml", b'S', 0).gnu();
    let err = refused(ok().header(&sparse, b""));
    assert!(
        matches!(
            err,
            ArchiveError::UnsupportedEntryType {
                entry_type: 'S',
                ..
            }
        ),
        "{err}"
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
        for raw in [
            &b"\x80\0\0\0\0\0\0\x03"[..],
            b"\xff\xff\xff\xff\xff\xff\xff\xff",
            b"\x0000003\0",
            b"00 3\0\0\0\0",
            b"3\x00x\0\0\0\0\0",
            b"+3\0\0\0\0\0\0",
            b"0009\0\0\0\0",
            b"        ",
        ] {
            let header = Header::new(b"b.yaml", typeflag::REGULAR, 0).set(range.clone(), raw);
            let err = refused(ok().header(&header, b""));
            assert!(
                matches!(err, ArchiveError::HeaderField { field, .. } if field == name),
                "{name} = {raw:?}: {err}"
            );
        }
    }
}

#[test]
fn only_the_unsigned_checksum_is_accepted() {
    // A name byte over 127 makes the signed and unsigned sums differ.
    let header = Header::new("é.yaml".as_bytes(), typeflag::REGULAR, 0);
    assert!(read_tar(Tar::new().header(&header, b"")).is_ok());
    let err = refused(Tar::new().header(&header.clone().signed_checksum(), b""));
    assert!(
        matches!(
            err,
            ArchiveError::HeaderField {
                field: "checksum",
                ..
            }
        ),
        "{err}"
    );
    for raw in [
        &b"\0\0\0\0\0\0\0\0"[..],
        b"0000000\0",
        b"\x80\0\0\0\0\0\0\0",
    ] {
        let err = refused(Tar::new().header(&header.clone().checksum(raw), b""));
        assert!(
            matches!(
                err,
                ArchiveError::HeaderField {
                    field: "checksum",
                    ..
                }
            ),
            "{err}"
        );
    }
}

#[test]
fn an_unknown_magic_is_refused() {
    for magic in [
        &b""[..],
        b"ustar\0  ",
        b"ustar 00",
        b"ustar\x0001",
        b"USTAR\x0000",
    ] {
        let header = Header::new(b"b.yaml", typeflag::REGULAR, 0).set(field::MAGIC, magic);
        let err = refused(ok().header(&header, b""));
        assert!(
            matches!(err, ArchiveError::HeaderField { field: "magic", .. }),
            "{magic:?}: {err}"
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
        let err = refused(ok().header(&header, b""));
        assert!(
            matches!(err, ArchiveError::HeaderField { field, .. } if field == name),
            "{name}: {err}"
        );
    }
}

#[test]
fn a_link_name_on_a_file_or_directory_is_refused() {
    let err = refused(ok().entry(b"b.yaml", typeflag::REGULAR, b"/etc/passwd", b""));
    assert!(
        matches!(
            err,
            ArchiveError::HeaderField {
                field: "linkname",
                ..
            }
        ),
        "{err}"
    );
    let err = refused(ok().entry(b"d/", typeflag::DIRECTORY, b"x", b""));
    assert!(
        matches!(
            err,
            ArchiveError::HeaderField {
                field: "linkname",
                ..
            }
        ),
        "{err}"
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
        let err = refused(tar);
        assert!(matches!(err, ArchiveError::TrailingSlash { .. }), "{err}");
    }
}

#[test]
fn non_zero_padding_after_a_body_is_refused() {
    let mut tar = Tar::new().file("a.yaml", b"abc").finish();
    tar[512 + 100] = b'x';
    let err = read(&gzip(&tar), &Limits::default()).unwrap_err();
    assert!(
        matches!(err, ArchiveError::NonZeroPadding { offset: 612, .. }),
        "{err}"
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
    let err = refused(Tar::new().symlink("d", "/etc").file("d/x.yaml", DOC));
    assert!(
        matches!(err, ArchiveError::Symlink { ref path, ref target } if *path == *"d" && *target == *"/etc"),
        "{err}"
    );
}

// ---- paths ----

#[test]
fn hostile_paths_are_refused() {
    type Expected = fn(&ArchiveError) -> bool;
    let cases: [(&[u8], Expected); 9] = [
        (b"../x.yaml", |e| {
            matches!(e, ArchiveError::ParentComponent { .. })
        }),
        (b"a/../../x.yaml", |e| {
            matches!(e, ArchiveError::ParentComponent { .. })
        }),
        (b"/etc/passwd", |e| {
            matches!(e, ArchiveError::AbsolutePath { .. })
        }),
        (b"a\\b.yaml", |e| {
            matches!(e, ArchiveError::Backslash { .. })
        }),
        (b"", |e| {
            matches!(e, ArchiveError::EmptyPath { offset: 1024 })
        }),
        (b".", |e| matches!(e, ArchiveError::EmptyPath { .. })),
        (b"\xff.yaml", |e| {
            matches!(e, ArchiveError::NonUtf8Path { .. })
        }),
        (b"a\nb.yaml", |e| {
            matches!(e, ArchiveError::ControlInPath { .. })
        }),
        (b"a\x1b[2Jb.yaml", |e| {
            matches!(e, ArchiveError::ControlInPath { .. })
        }),
    ];
    for (name, expected) in cases {
        let err = refused(ok().file(name, DOC));
        assert!(expected(&err), "{name:?}: {err}");
        let err = refused(ok().pax(&[("path", name)]).file("x.yaml", DOC));
        assert!(expected(&err) || name.is_empty(), "PAX {name:?}: {err}");
    }
    let err = refused(
        Tar::new()
            .pax(&[("path", b"a\0b.yaml")])
            .file("x.yaml", DOC),
    );
    assert!(matches!(err, ArchiveError::NulInPath { .. }), "{err}");
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
        let err = refused(Tar::new().file("a.yaml", b"1").file(second, b"2"));
        assert!(
            matches!(err, ArchiveError::DuplicatePath { ref path } if *path == *second),
            "{second}: {err}"
        );
    }
    let err = refused(Tar::new().file("d/a.yaml", b"1").file("d//a.yaml", b"2"));
    assert!(matches!(err, ArchiveError::DuplicatePath { .. }), "{err}");
}

#[test]
fn a_file_used_as_a_directory_is_refused() {
    let err = refused(Tar::new().file("a.yaml", b"").file("a.yaml/b.yaml", b""));
    assert!(
        matches!(err, ArchiveError::PathConflict { ref path, ref file } if *path == *"a.yaml/b.yaml" && *file == *"a.yaml"),
        "{err}"
    );
    let err = refused(Tar::new().file("a.yaml", b"").dir("a.yaml/"));
    assert!(matches!(err, ArchiveError::PathConflict { .. }), "{err}");
}

// ---- the stream ----

#[test]
fn entries_or_garbage_after_the_end_of_archive_are_refused() {
    let mut tar = ok().finish();
    tar.extend_from_slice(&Tar::new().file("hidden.yaml", b"smuggled").finish());
    let err = read(&gzip(&tar), &Limits::default()).unwrap_err();
    assert!(
        matches!(err, ArchiveError::TrailingTarData { offset: 2048 }),
        "{err}"
    );
    // One zero block, then an entry: `tar --ignore-zeros` and Go disagree with the rest.
    let tar = ok().raw(&[0; 512]).file("hidden.yaml", b"x").finish();
    let err = read(&gzip(&tar), &Limits::default()).unwrap_err();
    assert!(
        matches!(err, ArchiveError::TrailingTarData { offset: 1536 }),
        "{err}"
    );
    let mut tar = ok().finish();
    tar.extend_from_slice(b"garbage");
    let err = read(&gzip(&tar), &Limits::default()).unwrap_err();
    assert!(matches!(err, ArchiveError::TrailingTarData { .. }), "{err}");
}

#[test]
fn non_zero_bytes_in_the_end_of_archive_blocks_are_refused() {
    for at in [0, 1, 511, 512, 1023] {
        let mut tar = ok().finish();
        tar[1024 + at] = 1;
        let err = read(&gzip(&tar), &Limits::default()).unwrap_err();
        assert!(
            matches!(
                err,
                ArchiveError::HeaderField { .. } | ArchiveError::TrailingTarData { .. }
            ),
            "byte {at}: {err}"
        );
    }
}

#[test]
fn a_missing_or_partial_end_of_archive_marker_is_refused() {
    let err = read(&gzip(&ok().finish_without_end()), &Limits::default()).unwrap_err();
    assert!(
        matches!(err, ArchiveError::MissingEndOfArchive { found: 0 }),
        "{err}"
    );
    let half = ok().raw(&[0; 512]).finish_without_end();
    let err = read(&gzip(&half), &Limits::default()).unwrap_err();
    assert!(
        matches!(err, ArchiveError::MissingEndOfArchive { found: 512 }),
        "{err}"
    );
    let cut = ok().raw(&[1; 100]).finish_without_end();
    let err = read(&gzip(&cut), &Limits::default()).unwrap_err();
    assert!(
        matches!(
            err,
            ArchiveError::TruncatedHeader {
                offset: 1024,
                found: 100
            }
        ),
        "{err}"
    );
}

#[test]
fn a_truncated_entry_is_refused() {
    let tar = Tar::new()
        .entry_with_size(b"a.yaml", typeflag::REGULAR, 100, b"", b"")
        .raw(b"only ten b")
        .finish_without_end();
    // `entry_with_size` padded nothing (no data): the ten bytes follow the header.
    let err = read(&gzip(&tar[..522]), &Limits::default()).unwrap_err();
    assert!(
        matches!(
            err,
            ArchiveError::TruncatedEntry {
                expected: 100,
                actual: 10,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn a_header_that_claims_4_gib_fails_on_the_claim_not_on_the_data() {
    let tar = Tar::new()
        .entry_with_size(b"a.yaml", typeflag::REGULAR, 1 << 32, b"", b"")
        .finish_without_end();
    let started = std::time::Instant::now();
    let err = read(&gzip(&tar), &Limits::default()).unwrap_err();
    assert!(
        matches!(err, ArchiveError::FileTooLarge { size, .. } if size == 1 << 32),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[test]
fn archives_without_manifests_are_refused() {
    let err = refused(Tar::new());
    assert!(matches!(err, ArchiveError::NoFiles), "{err}");
    let err = refused(Tar::new().dir("dir/"));
    assert!(matches!(err, ArchiveError::NoFiles), "{err}");
    for name in ["notes.txt", "yaml", "a.yaml.d/x"] {
        let err = refused(Tar::new().file(name, b""));
        assert!(
            matches!(err, ArchiveError::BadExtension { .. }),
            "{name}: {err}"
        );
    }
}
