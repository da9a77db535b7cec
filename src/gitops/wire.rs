//! The git protocol spoken directly over `git://` (docs/design.md §7): a push that carries
//! only the objects a transaction made.
//!
//! libgit2's push builds its pack by walking the base commit's whole tree to find what the
//! server lacks, so a one-file change to a repository of 20,000 files costs a walk of 20,000
//! entries. A transaction knows exactly what it made (the commit, the trees along the edited
//! paths, the blobs written): [`GitOps::new_objects`] lists them and [`push`] sends them in one
//! `receive-pack` exchange.
//!
//! Invariants: the command names the base the plan read as the old value, so the server's ref
//! lock makes it a compare-and-swap (never a force); the push counts as done only on `unpack
//! ok` and `ok <ref>`; what the server's hooks print (side band 2) explains a refusal; every
//! read and write has a timeout; no credential is involved (`git://` has none).

use std::collections::HashSet;
use std::io::{BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use git2::{ObjectType, Oid, Repository, Tree};

/// How long one read or write on the socket may stall.
const IO_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest pkt-line payload accepted from a server.
const MAX_PKT: usize = 65_520;

/// A `git://host[:port]/path` URL, split.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Daemon {
    pub host: String,
    pub port: u16,
    pub path: String,
}

impl Daemon {
    /// The parts of a `git://` URL, or `None` for any other scheme.
    #[must_use]
    pub fn parse(url: &str) -> Option<Self> {
        let rest = url.strip_prefix("git://")?;
        let (authority, path) = rest.split_once('/')?;
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => (h, p.parse().ok()?),
            _ => (authority, 9418),
        };
        if host.is_empty() || path.is_empty() {
            return None;
        }
        Some(Self {
            host: host.to_owned(),
            port,
            path: format!("/{path}"),
        })
    }

    /// Opens a connection and asks for `service` (`git-receive-pack`, `git-upload-pack`).
    fn connect(&self, service: &str) -> std::io::Result<TcpStream> {
        self.connect_with(service, "")
    }

    /// Opens a connection and asks for `service` with `extra` parameters after the host
    /// (`"\0version=2\0"` for protocol v2).
    pub(super) fn connect_with(&self, service: &str, extra: &str) -> std::io::Result<TcpStream> {
        let host = self.host.trim_start_matches('[').trim_end_matches(']');
        let stream = TcpStream::connect((host, self.port))?;
        stream.set_read_timeout(Some(IO_TIMEOUT))?;
        stream.set_write_timeout(Some(IO_TIMEOUT))?;
        stream.set_nodelay(true)?;
        let mut w = &stream;
        let request = format!(
            "{service} {}\0host={}:{}\0{extra}",
            self.path, self.host, self.port
        );
        w.write_all(&pkt(request.as_bytes()))?;
        Ok(stream)
    }
}

/// A socket whose reads acknowledge what they receive at once.
///
/// git's servers write a response in several small writes (a pack's last band, then the
/// flush `0000`) on sockets with Nagle's algorithm on: the second write waits until the first
/// is acknowledged, and a Linux client in its interactive ("pingpong") mode, which every
/// request it sends puts it back in, delays that acknowledgment by 40 ms. Every round trip
/// paid ~45 ms of that on an idle localhost. Asking for quick acknowledgments before each read
/// (the flag is not sticky: the kernel leaves quick mode again on its own) sends the
/// acknowledgment as the data arrives, and the server's next write leaves at once.
#[derive(Debug)]
pub(super) struct Acking<S>(pub S);

impl<S: Read + std::os::fd::AsFd> Read for Acking<S> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        quick_ack(&self.0);
        self.0.read(buf)
    }
}

/// Switches `socket` to quick acknowledgments (best effort: a socket that refuses keeps
/// delayed ones, which costs time, not correctness).
fn quick_ack(socket: &impl std::os::fd::AsFd) {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        let _ = socket2::SockRef::from(socket).set_tcp_quickack(true);
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    let _ = socket;
}

/// One pkt-line holding `payload`.
pub(super) fn pkt(payload: &[u8]) -> Vec<u8> {
    let mut out = format!("{:04x}", payload.len() + 4).into_bytes();
    out.extend_from_slice(payload);
    out
}

/// The next pkt-line: `None` for a flush (`0000`) or delimiter packet.
pub(super) fn read_pkt(r: &mut impl Read) -> std::io::Result<Option<Vec<u8>>> {
    let mut len = [0u8; 4];
    r.read_exact(&mut len)?;
    let len = std::str::from_utf8(&len)
        .ok()
        .and_then(|s| usize::from_str_radix(s, 16).ok())
        .ok_or_else(|| bad_data("a pkt-line length that is not 4 hex digits"))?;
    if len < 4 {
        return Ok(None);
    }
    if len - 4 > MAX_PKT {
        return Err(bad_data("a pkt-line longer than 65520 bytes"));
    }
    let mut buf = vec![0u8; len - 4];
    r.read_exact(&mut buf)?;
    Ok(Some(buf))
}

fn bad_data(what: &str) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        format!("server sent {what}"),
    )
}

/// What the server said to a push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushReply {
    Accepted,
    /// The ref was not updated: the server's reason, and what its hooks printed.
    Rejected {
        reason: String,
        said: Vec<String>,
    },
}

/// A failure of the exchange itself (connection, protocol).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct WireError(pub String);

impl From<std::io::Error> for WireError {
    fn from(e: std::io::Error) -> Self {
        Self(e.to_string())
    }
}

/// Pushes `pack` (holding `new` and what it needs beyond `old`) to `refname`, moving it from
/// `old` (`None`: the ref must not exist) to `new`.
pub fn push(
    daemon: &Daemon,
    refname: &str,
    old: Option<Oid>,
    new: Oid,
    pack: &[u8],
) -> Result<PushReply, WireError> {
    let stream = daemon.connect("git-receive-pack")?;
    let mut r = BufReader::new(Acking(&stream));
    // The advertisement: `<oid> <ref>\0<capabilities>` first, then `<oid> <ref>`, then flush.
    let mut caps: Vec<String> = Vec::new();
    let mut current: Option<Oid> = None;
    let mut first = true;
    while let Some(line) = read_pkt(&mut r)? {
        let line = String::from_utf8_lossy(&line)
            .trim_end_matches('\n')
            .to_owned();
        if let Some(err) = line.strip_prefix("ERR ") {
            return Err(WireError(crate::text::excerpt(err)));
        }
        let (refpart, cap) = line.split_once('\0').unwrap_or((line.as_str(), ""));
        if first {
            caps = cap.split(' ').map(str::to_owned).collect();
            first = false;
        }
        if let Some((oid, name)) = refpart.split_once(' ')
            && name == refname
        {
            current = Oid::from_str(oid).ok();
        }
    }
    if current != old {
        // Someone moved the branch since the plan read it: a lost race, no pack sent.
        let mut w = &stream;
        let _ = w.write_all(b"0000");
        return Ok(PushReply::Rejected {
            reason: format!("{refname}: fetch first (the branch moved)"),
            said: Vec::new(),
        });
    }
    if !caps.iter().any(|c| c == "report-status") {
        return Err(WireError(
            "the server does not offer report-status".to_owned(),
        ));
    }
    let sideband = caps.iter().any(|c| c == "side-band-64k");
    let mut want = String::from("report-status");
    if sideband {
        want.push_str(" side-band-64k");
    }
    want.push_str(" agent=releasectl");
    let zero = Oid::ZERO_SHA1;
    let command = format!("{} {new} {refname}\0{want}\n", old.unwrap_or(zero));
    let mut out = pkt(command.as_bytes());
    out.extend_from_slice(b"0000");
    out.extend_from_slice(pack);
    let mut w = &stream;
    w.write_all(&out)?;
    w.flush()?;
    // The report, inside band 1 when side-band is on; band 2 is the hooks' output.
    let mut report = Vec::new();
    let mut said = Vec::new();
    if sideband {
        while let Some(p) = read_pkt(&mut r)? {
            match p.split_first() {
                Some((1, data)) => report.extend_from_slice(data),
                Some((2, data)) => said.extend(
                    String::from_utf8_lossy(data)
                        .lines()
                        .map(str::trim)
                        .filter(|l| !l.is_empty())
                        .map(crate::text::excerpt),
                ),
                Some((3, data)) => {
                    return Err(WireError(crate::text::excerpt(
                        String::from_utf8_lossy(data).trim(),
                    )));
                }
                _ => {}
            }
        }
    } else {
        while let Some(p) = read_pkt(&mut r)? {
            report.extend_from_slice(&pkt(&p));
        }
    }
    let mut lines = Vec::new();
    let mut cursor = report.as_slice();
    while let Ok(Some(p)) = read_pkt(&mut cursor) {
        lines.push(String::from_utf8_lossy(&p).trim_end().to_owned());
    }
    let unpack = lines.first().cloned().unwrap_or_default();
    if unpack != "unpack ok" {
        return Ok(PushReply::Rejected {
            reason: crate::text::excerpt(&unpack),
            said,
        });
    }
    if lines.iter().any(|l| l == &format!("ok {refname}")) {
        return Ok(PushReply::Accepted);
    }
    let reason = lines
        .iter()
        .find_map(|l| l.strip_prefix("ng "))
        .unwrap_or("no status for the ref")
        .to_owned();
    Ok(PushReply::Rejected {
        reason: crate::text::excerpt(&reason),
        said,
    })
}

/// The objects `commit` adds to `base` (its tree, `None` for a first commit) when only
/// `paths` changed: the commit, the trees along those paths that differ from the base's, and
/// the blobs at those paths that the base does not hold there. Everything else the commit
/// references is the base's.
pub fn new_objects(
    repo: &Repository,
    base: Option<&Tree<'_>>,
    commit: Oid,
    paths: &[&str],
) -> Result<Vec<Oid>, git2::Error> {
    let tree = repo.find_commit(commit)?.tree()?;
    let mut out = vec![commit];
    let mut seen = HashSet::new();
    for path in paths {
        let mut new_tree = Some(tree.clone());
        let mut old_tree = base.cloned();
        let parts: Vec<&str> = path.split('/').collect();
        for (i, part) in parts.iter().enumerate() {
            let Some(nt) = new_tree.take() else { break };
            if old_tree.as_ref().map(Tree::id) != Some(nt.id()) && seen.insert(nt.id()) {
                out.push(nt.id());
            }
            let old_entry = old_tree
                .as_ref()
                .and_then(|t| t.get_name(part).map(|e| (e.id(), e.kind())));
            let Some(entry) = nt.get_name(part) else {
                break;
            };
            let (id, kind) = (entry.id(), entry.kind());
            if i + 1 == parts.len() || kind != Some(ObjectType::Tree) {
                if old_entry.map(|e| e.0) != Some(id) && seen.insert(id) {
                    out.push(id);
                }
                break;
            }
            new_tree = Some(repo.find_tree(id)?);
            old_tree = match old_entry {
                Some((oid, Some(ObjectType::Tree))) => Some(repo.find_tree(oid)?),
                _ => None,
            };
        }
    }
    Ok(out)
}

/// A pack of exactly `objects` (no walk: each is inserted alone).
pub fn pack(repo: &Repository, objects: &[Oid]) -> Result<Vec<u8>, git2::Error> {
    let mut builder = repo.packbuilder()?;
    for oid in objects {
        builder.insert_object(*oid, None)?;
    }
    let mut buf = git2::Buf::new();
    builder.write_buf(&mut buf)?;
    Ok(buf.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_git_url_splits_into_host_port_and_path() {
        assert_eq!(
            Daemon::parse("git://127.0.0.1:9419/ops/gitops.git"),
            Some(Daemon {
                host: "127.0.0.1".into(),
                port: 9419,
                path: "/ops/gitops.git".into()
            })
        );
        assert_eq!(Daemon::parse("git://example.com/x.git").unwrap().port, 9418);
        assert_eq!(Daemon::parse("https://example.com/x.git"), None);
        assert_eq!(Daemon::parse("git://example.com"), None);
    }

    #[test]
    fn pkt_lines_round_trip_and_a_flush_reads_as_none() {
        let mut bytes = pkt(b"hello\n");
        bytes.extend_from_slice(b"0000");
        assert_eq!(&bytes[..4], b"000a");
        let mut r = bytes.as_slice();
        assert_eq!(read_pkt(&mut r).unwrap().as_deref(), Some(&b"hello\n"[..]));
        assert_eq!(read_pkt(&mut r).unwrap(), None);
        assert!(read_pkt(&mut &b"zzzz"[..]).is_err());
    }
}
