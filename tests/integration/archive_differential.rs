//! Differential test of the resources-layer reader: archives generated from combinations of
//! the tar constructs readers disagree on, plus seeded random mutations of header fields, are
//! read by `releasectl::archive::read`, GNU tar (`tar -tv`, `tar -xO`) and Python's `tarfile`.
//! Whenever we accept an archive, both must list exactly our files (normalised name, size,
//! contents) and nothing but directories besides: every disagreement must be a refusal on our
//! side. (Go's `archive/tar` is not on the test machines; its rules are in the reader's docs.)

use std::collections::BTreeSet;
use std::path::Path;

use releasectl::archive::{File, Limits, read, read_with};

use crate::support::image::gzip;
use crate::support::tar::{Header, Tar, field, typeflag};
use crate::support::{Cmd, require_command, temp_dir};

const DOC: &[u8] = b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n";

/// One member as an independent reader lists it: type (`-` regular, `d` directory, anything
/// else verbatim), name normalised by our rules, size, contents of regular files.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Listed {
    kind: String,
    name: String,
    size: u64,
    data: Vec<u8>,
}

fn normalise(name: &str) -> String {
    name.split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .collect::<Vec<_>>()
        .join("/")
}

const PYTHON_LISTER: &str = r#"
import json, sys, tarfile
for path in sys.argv[1:]:
    try:
        members = []
        with tarfile.open(path, "r:") as tar:
            for m in tar:
                kind = "-" if m.isreg() else "d" if m.isdir() else repr(m.type)
                data = tar.extractfile(m).read().hex() if m.isreg() else ""
                members.append([kind, m.name, m.size, data])
        print(json.dumps({"ok": True, "members": members}))
    except Exception as e:
        print(json.dumps({"ok": False, "error": repr(e)}))
"#;

/// Python's listing of each archive (`Err` when it raises).
fn python_listings(paths: &[std::path::PathBuf]) -> Vec<Result<Vec<Listed>, String>> {
    let out = Cmd::new("python3")
        .arg("-c")
        .arg(PYTHON_LISTER)
        .args(paths)
        .run();
    out.assert_success();
    let lines: Vec<serde_json::Value> = out
        .stdout_str()
        .lines()
        .map(|l| serde_json::from_str(l).expect("lister prints JSON"))
        .collect();
    assert_eq!(lines.len(), paths.len(), "{}", out.stderr_str());
    lines
        .into_iter()
        .map(|v| {
            if v["ok"] != true {
                return Err(v["error"].to_string());
            }
            Ok(v["members"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| Listed {
                    kind: m[0].as_str().unwrap().to_owned(),
                    name: normalise(m[1].as_str().unwrap()),
                    size: m[2].as_u64().unwrap(),
                    data: hex_decode(m[3].as_str().unwrap()),
                })
                .collect())
        })
        .collect()
}

fn hex_decode(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect()
}

/// GNU tar's listing (`tar -tv`) with the contents of regular files split out of `tar -xO`,
/// or `Err` when it fails or warns.
fn gnu_tar_listing(path: &Path) -> Result<Vec<Listed>, String> {
    let tar = |args: &[&str]| {
        Cmd::new("tar")
            .env("LC_ALL", "C.UTF-8")
            .args(args)
            .arg(path)
            .run()
    };
    let list = tar(&["--quoting-style=literal", "-tvf"]);
    if !list.success() || !list.stderr.is_empty() {
        return Err(format!("tar -tv: {}", list.stderr_str()));
    }
    let contents = tar(&["-xOf"]);
    if !contents.success() || !contents.stderr.is_empty() {
        return Err(format!("tar -xO: {}", contents.stderr_str()));
    }
    let mut at = 0;
    let mut listed = Vec::new();
    for line in list.stdout_str().lines() {
        // `-rw-r--r-- 0/0   3 1970-01-01 00:00 name`: the name follows the fifth token.
        let mut rest = line;
        let mut tokens = Vec::new();
        for _ in 0..5 {
            rest = rest.trim_start_matches(' ');
            let end = rest.find(' ').ok_or_else(|| format!("odd line {line:?}"))?;
            tokens.push(&rest[..end]);
            rest = &rest[end..];
        }
        let name = rest
            .strip_prefix(' ')
            .ok_or_else(|| format!("odd line {line:?}"))?;
        let kind = tokens[0][..1].to_owned();
        let size: u64 = tokens[2]
            .parse()
            .map_err(|_| format!("odd size {line:?}"))?;
        let data = if kind == "-" {
            let end = at + size as usize;
            let data = contents
                .stdout
                .get(at..end)
                .ok_or("short -xO output")?
                .to_vec();
            at = end;
            data
        } else {
            Vec::new()
        };
        listed.push(Listed {
            kind,
            name: normalise(name),
            size,
            data,
        });
    }
    if at != contents.stdout.len() {
        return Err("tar -xO printed more than the listed files".to_owned());
    }
    Ok(listed)
}

/// Our accepted archive, in archive order, as the other readers should list it.
fn our_listing(tar: &[u8]) -> Option<Vec<File>> {
    let mut order = Vec::new();
    read_with(&gzip(tar), &Limits::default(), |f| order.push(f.clone())).ok()?;
    Some(order)
}

/// Whether a listing from another reader says what ours says.
fn agrees(ours: &[File], theirs: &[Listed]) -> Result<(), String> {
    let files: Vec<_> = theirs.iter().filter(|l| l.kind != "d").collect();
    if files.len() != ours.len() {
        return Err(format!(
            "{} non-directory members, we read {}",
            files.len(),
            ours.len()
        ));
    }
    for (ours, theirs) in ours.iter().zip(files) {
        let same = theirs.kind == "-"
            && theirs.name == ours.path
            && theirs.size == ours.data.len() as u64
            && theirs.data == ours.data;
        if !same {
            return Err(format!("they list {theirs:?}, we read {ours:?}"));
        }
    }
    Ok(())
}

// ---- generating archives ----

/// A small deterministic generator (xorshift64*): the same seed, the same archives.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// What comes before the entry.
const EXTENSIONS: &[&str] = &[
    "none",
    "pax-path",
    "pax-path-twice",
    "pax-size",
    "pax-size-wrong",
    "pax-sparse-name",
    "pax-linkpath",
    "pax-hdrcharset",
    "pax-mtime",
    "long-name",
    "long-name-then-pax",
    "pax-then-pax",
    "long-link",
    "global-pax",
];

/// The entry itself.
const KINDS: &[&str] = &[
    "file",
    "dir",
    "dir-covering-entry",
    "old-dir-covering-entry",
    "file-with-slash",
    "old-file",
    "old-dir",
    "symlink",
    "hardlink",
    "fifo",
    "contiguous",
];

/// How its header is written.
const VARIANTS: &[&str] = &[
    "posix",
    "gnu",
    "v7",
    "prefix",
    "size-base256",
    "size-leading-nul",
    "size-trailing-junk",
    "size-spaces",
    "signed-checksum",
    "name-after-nul",
    "dot-slash",
    "double-slash",
];

/// How the stream ends.
const ENDINGS: &[&str] = &[
    "end",
    "no-end",
    "entry-after-end",
    "lone-zero-block",
    "junk-in-end",
];

const EVIL: &[u8] = b"../../evil.yaml";

fn entry_name(variant: &str) -> &'static [u8] {
    match variant {
        "dot-slash" => b"./d/a.yaml",
        "double-slash" => b"d//a.yaml",
        _ => b"d/a.yaml",
    }
}

fn header_for(kind: &str, variant: &str, name: &[u8], size: u64) -> Header {
    let (flag, name): (u8, Vec<u8>) = match kind {
        "file" => (typeflag::REGULAR, name.to_vec()),
        "dir" | "dir-covering-entry" => (typeflag::DIRECTORY, b"d/".to_vec()),
        "old-dir-covering-entry" | "old-dir" => (0, b"d/".to_vec()),
        "old-file" => (0, name.to_vec()),
        "file-with-slash" => (typeflag::REGULAR, [name, b"/"].concat()),
        "symlink" => (typeflag::SYMLINK, name.to_vec()),
        "hardlink" => (typeflag::HARDLINK, name.to_vec()),
        "fifo" => (typeflag::FIFO, name.to_vec()),
        _ => (b'7', name.to_vec()),
    };
    let mut h = Header::new(&name, flag, size);
    if matches!(kind, "symlink" | "hardlink") {
        h = h.set(field::LINKNAME, b"z.yaml");
    }
    match variant {
        "gnu" => h.gnu(),
        "v7" => h.set(field::MAGIC, b""),
        "prefix" => h.set(field::PREFIX, b"p"),
        "size-base256" => {
            let mut raw = [0u8; 12];
            raw[0] = 0x80;
            raw[4..].copy_from_slice(&size.to_be_bytes());
            h.set(field::SIZE, &raw)
        }
        "size-leading-nul" => h.set(field::SIZE, format!("\0{size:010o}").as_bytes()),
        "size-trailing-junk" => h.set(field::SIZE, format!("{size:010o} 7").as_bytes()),
        "size-spaces" => h.set(field::SIZE, format!("  {size:o} ").as_bytes()),
        "signed-checksum" => h.set(field::UNAME, "é".as_bytes()).signed_checksum(),
        "name-after-nul" => h.set(field::NAME, &[&name[..], b"\0", EVIL].concat()),
        _ => h,
    }
}

/// One archive: a well-formed first file, then the construct under test, then the ending.
fn archive(extension: &str, kind: &str, variant: &str, ending: &str) -> Vec<u8> {
    let name = entry_name(variant);
    let hidden = Tar::new().file("hidden.yaml", DOC).finish_without_end();
    let (data, size): (&[u8], u64) = match kind {
        "file" | "file-with-slash" | "old-file" | "contiguous" => (DOC, DOC.len() as u64),
        "dir-covering-entry" | "old-dir-covering-entry" => (&hidden, hidden.len() as u64),
        _ => (b"", 0),
    };
    let gnu_entry = matches!(extension, "long-name" | "long-link");
    let mut header = header_for(kind, variant, name, size);
    if gnu_entry && variant == "posix" {
        header = header.gnu();
    }
    let long = [b"long/".repeat(30).as_slice(), name].concat();
    let size_text = size.to_string();
    let mut tar = Tar::new().file("first.yaml", DOC);
    tar = match extension {
        "pax-path" => tar.pax(&[("path", &long)]),
        "pax-path-twice" => tar.pax(&[("path", &long), ("path", EVIL)]),
        "pax-size" => tar.pax(&[("size", size_text.as_bytes())]),
        "pax-size-wrong" => tar.pax(&[("size", b"0")]),
        "pax-sparse-name" => tar.pax(&[("GNU.sparse.name", EVIL)]),
        "pax-linkpath" => tar.pax(&[("linkpath", EVIL)]),
        "pax-hdrcharset" => tar.pax(&[("hdrcharset", b"BINARY")]),
        "pax-mtime" => tar.pax(&[("mtime", b"1.5")]),
        "long-name" => tar.gnu_long(typeflag::GNU_LONG_NAME, &long),
        "long-name-then-pax" => tar
            .gnu_long(typeflag::GNU_LONG_NAME, &long)
            .pax(&[("path", EVIL)]),
        "pax-then-pax" => tar.pax(&[("path", &long)]).pax(&[("path", EVIL)]),
        "long-link" => tar.gnu_long(typeflag::GNU_LONG_LINK, EVIL),
        "global-pax" => tar.pax_body(typeflag::PAX_GLOBAL, b"26 path=../../evil.yaml\n"),
        _ => tar,
    };
    tar = tar.header(&header, data);
    match ending {
        "no-end" => tar.finish_without_end(),
        "entry-after-end" => {
            let mut bytes = tar.finish();
            bytes.extend_from_slice(&Tar::new().file("after.yaml", DOC).finish());
            bytes
        }
        "lone-zero-block" => tar.raw(&[0; 512]).file("after.yaml", DOC).finish(),
        "junk-in-end" => {
            let mut bytes = tar.finish();
            let at = bytes.len() - 700;
            bytes[at] = b'x';
            bytes
        }
        _ => tar.finish(),
    }
}

/// Sets one byte of a header block to an interesting value and, mostly, fixes its checksum so
/// that the mutation reaches the field parsers.
fn mutate(tar: &mut [u8], rng: &mut Rng) {
    const VALUES: &[u8] = b"\0 /.0179xL5g\x80\xff\n";
    let headers: Vec<usize> = (0..tar.len() / 512)
        .map(|b| b * 512)
        .filter(|at| tar[at + 257..at + 262] == *b"ustar")
        .collect();
    if headers.is_empty() {
        return;
    }
    let at = headers[rng.below(headers.len())];
    let pos = at + rng.below(512);
    tar[pos] = VALUES[rng.below(VALUES.len())];
    if rng.below(5) != 0 {
        tar[at + 148..at + 156].fill(b' ');
        let sum: u32 = tar[at..at + 512].iter().map(|b| u32::from(*b)).sum();
        tar[at + 148..at + 156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    }
}

fn generated() -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    // Every extension with every kind; every variant and ending on files and directories.
    for extension in EXTENSIONS {
        for kind in KINDS {
            out.push((
                format!("{extension}/{kind}"),
                archive(extension, kind, "posix", "end"),
            ));
        }
        for variant in VARIANTS {
            for kind in ["file", "dir", "old-file", "old-dir"] {
                let name = format!("{extension}/{kind}/{variant}");
                out.push((name, archive(extension, kind, variant, "end")));
            }
        }
    }
    for ending in ENDINGS {
        for variant in VARIANTS {
            let name = format!("none/file/{variant}/{ending}");
            out.push((name, archive("none", "file", variant, ending)));
        }
    }
    // Seeded random mutations of header bytes, one to three per archive.
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    let bases: Vec<(String, Vec<u8>)> = [
        ("none", "file", "posix"),
        ("none", "file", "gnu"),
        ("pax-path", "file", "posix"),
        ("long-name", "file", "gnu"),
        ("none", "dir", "posix"),
        ("none", "old-dir", "posix"),
        ("pax-path", "old-file", "posix"),
        ("pax-size", "file", "posix"),
    ]
    .iter()
    .map(|(e, k, v)| (format!("{e}/{k}/{v}"), archive(e, k, v, "end")))
    .collect();
    for i in 0..1500 {
        let (base, bytes) = &bases[i % bases.len()];
        let mut bytes = bytes.clone();
        for _ in 0..=rng.below(3) {
            mutate(&mut bytes, &mut rng);
        }
        out.push((format!("mutation {i} of {base}"), bytes));
    }
    out
}

#[test]
fn every_archive_we_accept_is_listed_the_same_by_gnu_tar_and_python_tarfile() {
    require_command("tar", "tar");
    require_command("python3", "python3");
    let dir = temp_dir();
    let archives = generated();
    let mut accepted = Vec::new();
    let mut kinds_accepted = BTreeSet::new();
    for (i, (name, tar)) in archives.iter().enumerate() {
        if let Some(ours) = our_listing(tar) {
            let path = dir.path().join(format!("{i}.tar"));
            std::fs::write(&path, tar).unwrap();
            kinds_accepted.insert(name.split(' ').next().unwrap_or(name).to_owned());
            accepted.push((name, path, ours));
        }
    }
    // The generator reaches both sides: well-formed shapes are read, most constructs are not.
    assert!(
        accepted.len() > 100 && accepted.len() < archives.len() / 2,
        "{} of {} accepted",
        accepted.len(),
        archives.len()
    );
    let paths: Vec<_> = accepted.iter().map(|(_, p, _)| p.clone()).collect();
    let python = python_listings(&paths);
    let mut failures = Vec::new();
    for ((name, path, ours), python) in accepted.iter().zip(python) {
        let python = python.and_then(|l| agrees(ours, &l));
        let gnu = gnu_tar_listing(path).and_then(|l| agrees(ours, &l));
        for (reader, verdict) in [("python", python), ("gnu tar", gnu)] {
            if let Err(why) = verdict {
                failures.push(format!("{name}: {reader}: {why}"));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} disagreements:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn the_other_readers_do_see_the_attacks_we_refuse() {
    // Proof that the oracle can fail: for the attacker's samples, GNU tar and Python list
    // something else than a naive first-record reading, and we refuse.
    require_command("tar", "tar");
    let dir = temp_dir();
    let samples = [
        archive("pax-path-twice", "file", "posix", "end"),
        archive("pax-sparse-name", "file", "posix", "end"),
        archive("none", "old-dir-covering-entry", "posix", "end"),
        archive("none", "dir-covering-entry", "posix", "end"),
    ];
    let paths: Vec<_> = samples
        .iter()
        .enumerate()
        .map(|(i, tar)| {
            assert!(read(&gzip(tar), &Limits::default()).is_err(), "sample {i}");
            let path = dir.path().join(format!("{i}.tar"));
            std::fs::write(&path, tar).unwrap();
            path
        })
        .collect();
    let python = python_listings(&paths);
    let names = |l: &[Listed]| l.iter().map(|m| m.name.clone()).collect::<Vec<_>>();
    let evil = normalise("../../evil.yaml");
    assert!(
        names(python[0].as_ref().unwrap()).contains(&evil),
        "{:?}",
        python[0]
    );
    assert!(
        names(python[1].as_ref().unwrap()).contains(&evil),
        "{:?}",
        python[1]
    );
    // An old-style directory's "data" is an entry for Python, skipped data for GNU tar.
    let hidden = "hidden.yaml".to_owned();
    assert!(names(python[2].as_ref().unwrap()).contains(&hidden));
    let gnu = gnu_tar_listing(&paths[2]).unwrap();
    assert!(!names(&gnu).contains(&hidden), "{gnu:?}");
    // A type-5 directory's is an entry for both, and was skipped data for the `tar` crate.
    assert!(names(python[3].as_ref().unwrap()).contains(&hidden));
    let gnu = gnu_tar_listing(&paths[3]).unwrap();
    assert!(names(&gnu).contains(&hidden), "{gnu:?}");
    // GNU tar takes the last `path` too (and warns that it strips the `../../`).
    let gnu = Cmd::new("tar").arg("-tf").arg(&paths[0]).run();
    assert!(
        gnu.stdout_str().contains("evil.yaml"),
        "{}",
        gnu.stdout_str()
    );
}
