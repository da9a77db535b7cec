//! Fetching only what a command reads, over `git://` with protocol v2 (docs/design.md §7).
//!
//! libgit2 cannot fetch with a filter, so an empty cache would mean the whole history. Here
//! the branch tip is fetched with its root level only (`deepen 1`, `filter tree:2`: the
//! commit, its root tree and the trees and blobs directly in it), and every other tree or blob
//! a read needs is fetched when it is first read, by its id (`want <oid>` with `filter tree:0`
//! sends exactly the objects named); a reader that knows its paths fetches them a tree level
//! at a time ([`super::Snapshot::prefetch`]). A cache that has the previous tip
//! sends it as a `have` and gets only the new commits. History (soak, rollback, `history`,
//! `check` of a range) deepens the cache to the full first-parent history on demand, so every
//! rule keeps its meaning on a cold cache.
//!
//! Invariants: received packs are indexed into the cache's object database before use; the
//! shallow boundary the server reports is recorded in the cache's `shallow` file (so libgit2
//! never looks for a parent it lacks) and removed when the server unshallows it; a server
//! without protocol v2 or `filter` makes [`Lazy::ls_ref`] fail with [`Unsupported`] before
//! anything is written, and the caller falls back to a full fetch.
//!
//! One process keeps one protocol v2 connection open for all its commands (`ls-refs`, every
//! `fetch`): git's `upload-pack` serves further commands on it, so a read that needs several
//! round trips pays one TCP connection and one server process, not one per round trip. A
//! connection that fails while reused (the server closed it) is replaced once. Each
//! `ls-refs` opens a new connection: `upload-pack` caches the refs it read, so a long-lived
//! connection would answer a later `ls-refs` (a retry after a lost race, a server's next
//! request) with the branch as it was.

use std::collections::BTreeSet;
use std::io::{BufReader, Write};
use std::net::TcpStream;
use std::sync::Mutex;

use git2::{Oid, Repository};

use super::wire::{Acking, Daemon, WireError, pkt, read_pkt};

/// The server speaks no protocol v2 or offers no `filter`: fetch the old way.
#[derive(Debug)]
pub struct Unsupported;

/// The `git://` remote of a cache that fetches objects when they are read.
#[derive(Debug)]
pub struct Lazy {
    daemon: Daemon,
    /// The open connection, between commands (none before the first).
    conn: Mutex<Option<Conn>>,
}

/// A protocol v2 connection to upload-pack and the capabilities it advertised.
#[derive(Debug)]
struct Conn {
    r: BufReader<Acking<TcpStream>>,
    caps: Vec<String>,
}

impl Conn {
    fn send(&self, request: &[u8]) -> Result<(), WireError> {
        let mut w = &self.r.get_ref().0;
        w.write_all(request)?;
        Ok(())
    }
}

impl Clone for Lazy {
    /// The same remote, with a connection of its own.
    fn clone(&self) -> Self {
        Self::new(self.daemon.clone())
    }
}

/// How many objects and bytes the fetches of this process received (for `--log debug`).
static RECEIVED: std::sync::Mutex<(u64, u64)> = std::sync::Mutex::new((0, 0));

impl Lazy {
    #[must_use]
    pub fn new(daemon: Daemon) -> Self {
        Self {
            daemon,
            conn: Mutex::new(None),
        }
    }

    /// A new protocol v2 connection to upload-pack, with the server's capabilities.
    fn connect(&self) -> Result<Conn, WireError> {
        let stream = self
            .daemon
            .connect_with("git-upload-pack", "\0version=2\0")?;
        let mut r = BufReader::new(Acking(stream));
        let mut caps = Vec::new();
        while let Some(line) = read_pkt(&mut r)? {
            caps.push(String::from_utf8_lossy(&line).trim_end().to_owned());
        }
        Ok(Conn { r, caps })
    }

    /// Runs `command` on the open connection (opening one when there is none) and keeps the
    /// connection for the next command when it succeeds; a reused connection that fails is
    /// replaced by a new one and `command` runs once more (nothing is kept from the failed
    /// run: a pack is indexed only once its response ended).
    fn with_conn<T>(
        &self,
        mut command: impl FnMut(&mut Conn) -> Result<T, WireError>,
    ) -> Result<T, WireError> {
        let mut slot = self
            .conn
            .lock()
            .map_err(|_| WireError("the upload-pack connection lock is poisoned".into()))?;
        let (mut conn, reused) = match slot.take() {
            Some(c) => (c, true),
            None => (self.connect()?, false),
        };
        let result = match command(&mut conn) {
            Err(_) if reused => {
                conn = self.connect()?;
                command(&mut conn)
            }
            other => other,
        };
        if result.is_ok() {
            *slot = Some(conn);
        }
        result
    }

    /// Where `refname` points on the server (`None`: no such ref).
    pub fn ls_ref(&self, refname: &str) -> Result<Result<Option<Oid>, Unsupported>, WireError> {
        // A new server process, so the refs are read now (see the module's documentation).
        if let Ok(mut slot) = self.conn.lock() {
            *slot = None;
        }
        self.with_conn(|conn| {
            let v2 = conn.caps.first().is_some_and(|c| c == "version 2");
            let filter = conn
                .caps
                .iter()
                .any(|c| c.starts_with("fetch=") && c.split([' ', '=']).any(|w| w == "filter"));
            if !v2 || !filter {
                return Ok(Err(Unsupported));
            }
            let mut req = pkt(b"command=ls-refs\n");
            req.extend_from_slice(b"0001");
            req.extend_from_slice(&pkt(format!("ref-prefix {refname}\n").as_bytes()));
            req.extend_from_slice(b"0000");
            conn.send(&req)?;
            let mut found = None;
            while let Some(line) = read_pkt(&mut conn.r)? {
                let line = String::from_utf8_lossy(&line);
                let mut words = line.split_whitespace();
                if let (Some(oid), Some(name)) = (words.next(), words.next())
                    && name == refname
                {
                    found = Oid::from_str(oid).ok();
                }
            }
            Ok(Ok(found))
        })
    }

    /// Fetches `wants` into `repo`: with `deepen`, as commits of that depth (the boundary is
    /// recorded as shallow); `haves` are commits the cache holds with their history.
    pub fn fetch(
        &self,
        repo: &Repository,
        wants: &[Oid],
        haves: &[Oid],
        deepen: Option<u32>,
        filter: &str,
    ) -> Result<(), WireError> {
        let shallow_path = repo.path().join("shallow");
        let mut shallow: BTreeSet<Oid> = std::fs::read_to_string(&shallow_path)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| Oid::from_str(l.trim()).ok())
            .collect();
        let mut req = pkt(b"command=fetch\n");
        req.extend_from_slice(b"0001");
        // No `thin-pack`: a thin pack may hold deltas against objects the server believes a
        // shallow cache has (the boundary's trees and blobs), which a lazy cache does not.
        for line in ["no-progress\n", "ofs-delta\n"] {
            req.extend_from_slice(&pkt(line.as_bytes()));
        }
        for w in wants {
            req.extend_from_slice(&pkt(format!("want {w}\n").as_bytes()));
        }
        for h in haves {
            req.extend_from_slice(&pkt(format!("have {h}\n").as_bytes()));
        }
        for s in &shallow {
            req.extend_from_slice(&pkt(format!("shallow {s}\n").as_bytes()));
        }
        if let Some(d) = deepen {
            req.extend_from_slice(&pkt(format!("deepen {d}\n").as_bytes()));
        }
        req.extend_from_slice(&pkt(format!("filter {filter}\n").as_bytes()));
        req.extend_from_slice(&pkt(b"done\n"));
        req.extend_from_slice(b"0000");
        let (objects, bytes) = self.with_conn(|conn| {
            conn.send(&req)?;
            let odb = repo.odb().map_err(|e| WireError(e.message().to_owned()))?;
            let mut writer = odb
                .packwriter()
                .map_err(|e| WireError(e.message().to_owned()))?;
            let mut bytes = 0u64;
            // The pack header: "PACK", version, object count (big-endian).
            let mut head: Vec<u8> = Vec::with_capacity(12);
            while let Some(header) = read_pkt(&mut conn.r)? {
                let header = String::from_utf8_lossy(&header).trim_end().to_owned();
                if let Some(err) = header.strip_prefix("ERR ") {
                    return Err(WireError(crate::text::excerpt(err)));
                }
                match header.as_str() {
                    "shallow-info" => {
                        while let Some(line) = read_pkt(&mut conn.r)? {
                            let line = String::from_utf8_lossy(&line);
                            let mut w = line.split_whitespace();
                            match (w.next(), w.next().and_then(|o| Oid::from_str(o).ok())) {
                                (Some("shallow"), Some(o)) => {
                                    shallow.insert(o);
                                }
                                (Some("unshallow"), Some(o)) => {
                                    shallow.remove(&o);
                                }
                                _ => {}
                            }
                        }
                    }
                    "packfile" => {
                        while let Some(p) = read_pkt(&mut conn.r)? {
                            match p.split_first() {
                                Some((1, data)) => {
                                    if head.len() < 12 {
                                        head.extend(data.iter().take(12 - head.len()));
                                    }
                                    bytes += data.len() as u64;
                                    writer.write_all(data)?;
                                }
                                Some((3, data)) => {
                                    return Err(WireError(crate::text::excerpt(
                                        String::from_utf8_lossy(data).trim(),
                                    )));
                                }
                                _ => {}
                            }
                        }
                        break;
                    }
                    // Sections we did not ask for (acknowledgments, wanted-refs): skip them.
                    _ => while read_pkt(&mut conn.r)?.is_some() {},
                }
            }
            let objects = if bytes > 0 {
                writer
                    .commit()
                    .map_err(|e| WireError(e.message().to_owned()))?;
                head.get(8..12)
                    .and_then(|b| <[u8; 4]>::try_from(b).ok())
                    .map_or(0, |b| u64::from(u32::from_be_bytes(b)))
            } else {
                0
            };
            Ok((objects, bytes))
        })?;
        if let Ok(mut got) = RECEIVED.lock() {
            got.0 += objects;
            got.1 += bytes;
            crate::log::debug(&format!(
                "fetched {} wanted: {objects} objects, {bytes} bytes (this run: {} objects, {} bytes)",
                wants.len(),
                got.0,
                got.1
            ));
        }
        let text: String = shallow
            .iter()
            .flat_map(|o| [o.to_string(), "\n".into()])
            .collect();
        let written = if text.is_empty() {
            std::fs::remove_file(&shallow_path).or_else(|e| {
                if e.kind() == std::io::ErrorKind::NotFound {
                    Ok(())
                } else {
                    Err(e)
                }
            })
        } else {
            std::fs::write(&shallow_path, text)
        };
        written?;
        Ok(())
    }

    /// Fetches those of `oids` (trees or blobs) that `repo` lacks: exactly those objects.
    pub fn ensure(&self, repo: &Repository, oids: &[Oid]) -> Result<(), WireError> {
        let odb = repo.odb().map_err(|e| WireError(e.message().to_owned()))?;
        let missing: Vec<Oid> = oids.iter().copied().filter(|o| !odb.exists(*o)).collect();
        if missing.is_empty() {
            return Ok(());
        }
        self.fetch(repo, &missing, &[], None, "tree:0")
    }

    /// Makes the first-parent history of `tip` complete in `repo` (commits and trees; blobs
    /// stay lazy), when the cache is shallow.
    pub fn unshallow(&self, repo: &Repository, tip: Oid) -> Result<(), WireError> {
        if !repo.path().join("shallow").exists() {
            return Ok(());
        }
        self.fetch(repo, &[tip], &[], Some(0x7fff_ffff), "blob:none")
    }
}
