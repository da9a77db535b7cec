//! `archive::read` on an untrusted resources layer, with small limits. The first byte picks
//! the input's form: 0 → the rest is the gzip stream as found in a registry; anything else →
//! the rest is a raw tar stream, gzip'd here, so the fuzzer reaches the tar reader instead of
//! spending its time failing CRC checks. Whatever `read` returns must hold the invariants its
//! module documents, and an accepted archive must list the same files (normalised names, in
//! order, with the same contents) when the `tar` crate reads it: a cheap in-process oracle for
//! the differential test against GNU tar and Python's `tarfile` in the integration tests.
#![no_main]

use std::io::{Read as _, Write as _};

use libfuzzer_sys::fuzz_target;
use releasectl::archive::{self, Limits};

const LIMITS: Limits = Limits {
    max_total_bytes: 1024 * 1024,
    max_files: 64,
    max_file_bytes: 64 * 1024,
};

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let gz;
    let input = if mode == 0 {
        rest
    } else {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(rest).unwrap();
        gz = e.finish().unwrap();
        &gz[..]
    };
    let mut order = Vec::new();
    match archive::read_with(input, &LIMITS, |f| order.push(f.clone())) {
        Ok(files) => {
            assert_eq!(
                tar_crate_listing(input),
                order,
                "the tar crate reads other files"
            );
            assert!(!files.is_empty(), "an empty archive was accepted");
            assert!(files.len() <= LIMITS.max_files, "{} files", files.len());
            for w in files.windows(2) {
                assert!(w[0].path < w[1].path, "not sorted or not unique: {:?}", w);
            }
            for f in &files {
                let p = &f.path;
                assert!(
                    !p.is_empty() && !p.starts_with('/') && !p.ends_with('/'),
                    "path {p:?}"
                );
                assert!(!p.contains('\\') && !p.contains('\0'), "path {p:?}");
                assert!(
                    p.split('/').all(|c| !c.is_empty() && c != "." && c != ".."),
                    "path {p:?} is not normalised"
                );
                assert!(
                    archive::EXTENSIONS.iter().any(|e| p.ends_with(e)),
                    "path {p:?} has no manifest extension"
                );
                assert!(
                    f.data.len() as u64 <= LIMITS.max_file_bytes,
                    "{p:?} too large"
                );
                // No file is also used as a directory by another entry.
                let dir = format!("{p}/");
                assert!(
                    !files.iter().any(|g| g.path.starts_with(&dir)),
                    "{p:?} is a dir too"
                );
            }
        }
        Err(e) => {
            let message = e.to_string();
            assert!(
                !message.contains(['\n', '\r']),
                "multi-line error: {message:?}"
            );
        }
    }
});

/// The regular files the `tar` crate lists, in archive order, with names normalised as ours
/// (`.` and empty components dropped); directories are skipped, anything else is a failure,
/// since our reader accepted the archive.
fn tar_crate_listing(gz: &[u8]) -> Vec<archive::File> {
    let mut tar = Vec::new();
    flate2::read::GzDecoder::new(gz)
        .read_to_end(&mut tar)
        .expect("accepted, so the gzip stream is valid");
    let mut listing = Vec::new();
    let mut reader = tar::Archive::new(tar.as_slice());
    for entry in reader.entries().expect("tar crate opens it") {
        let mut entry = entry.expect("tar crate reads every header");
        let kind = entry.header().entry_type();
        if kind == tar::EntryType::Directory {
            continue;
        }
        assert_eq!(kind, tar::EntryType::Regular, "{:?}", entry.path_bytes());
        let raw = entry.path_bytes().into_owned();
        let name = String::from_utf8(raw).expect("accepted names are UTF-8");
        let path = name
            .split('/')
            .filter(|c| !c.is_empty() && *c != ".")
            .collect::<Vec<_>>()
            .join("/");
        let mut data = Vec::new();
        entry
            .read_to_end(&mut data)
            .expect("tar crate reads the data");
        listing.push(archive::File {
            path,
            data: data.into(),
        });
    }
    listing
}
