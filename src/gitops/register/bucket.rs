//! The register of format 3 (docs/register.md §1–§4), what releasectl writes: below
//! `releases/<repository>/<project>/`, the releases in bucket files of 20 consecutive
//! numbers, and two indexes (commit → number, alias → number) in bucket files of one 3-digit
//! hex prefix each. What each file holds, reading one, and [`Changes`], the buckets one
//! commit rewrites.
//!
//! Why buckets: every push makes the server check that the new commit's objects connect to
//! what it has, and git does that by walking the whole tree of the branch tip. With a file
//! per release and per key (format 2) that tree held three files per release; with buckets
//! it holds about 14,000 at 100,000 releases, and a registration still reads and writes four
//! small files.
//!
//! Invariants: a bucket holds its entries (or index lines) sorted and each number (or key)
//! once; an entry lies in the bucket its number gives, an index line in the bucket its key
//! gives; every index line names a release whose entry names the key back.

use std::collections::BTreeMap;

use super::split::{invalid, named_back, read};
use super::{Entry, RegisterError};
use crate::gitops::layout;
use crate::gitops::push::Edit;
use crate::gitops::snapshot::Snapshot;
use crate::ids::CommitSha;

/// Which index a bucket belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Index {
    Commit,
    Alias,
}

impl Index {
    /// `commit` or `alias`, for messages.
    #[must_use]
    pub fn noun(self) -> &'static str {
        match self {
            Self::Commit => "commit",
            Self::Alias => "alias",
        }
    }

    /// The bucket of `key` (a commit, or an alias as [`layout::alias_key`] writes it) given
    /// the register directory; for an alias, `alias` is the alias itself (the bucket is
    /// chosen by its hash).
    fn bucket(self, dir: &str, key: &str, alias: Option<&str>) -> String {
        match (self, alias) {
            (Self::Alias, Some(a)) => layout::register_alias_bucket(dir, a),
            _ => layout::register_commit_bucket(dir, key),
        }
    }

    fn key_ok(self, key: &str) -> bool {
        match self {
            Self::Commit => key.parse::<CommitSha>().is_ok(),
            Self::Alias => {
                !key.is_empty() && key.bytes().all(|b| b.is_ascii_graphic() && b != b'/')
            }
        }
    }
}

/// One line of an index bucket: the key and the number of the release it names.
pub type Line = (String, u64);

/// Parses the entry bucket whose first number is `first`: a YAML list of entries, each
/// numbered in `first..first + 20`, in increasing order.
pub fn parse_entries(file: &str, bytes: &[u8], first: u64) -> Result<Vec<Entry>, RegisterError> {
    let entries: Vec<Entry> =
        crate::yaml::typed(bytes).map_err(|e| invalid(file, e.to_string()))?;
    super::check_number(file, "the bucket's first number", first)?;
    let end = first + layout::ENTRIES_PER_BUCKET;
    let mut previous = None;
    for e in &entries {
        if !(first..end).contains(&e.number) {
            return Err(invalid(
                file,
                format!(
                    "it holds release {}: expected numbers {first} to {}",
                    e.number,
                    end - 1
                ),
            ));
        }
        if previous.is_some_and(|p| p >= e.number) {
            return Err(invalid(
                file,
                format!(
                    "release {} follows release {}: expected increasing numbers, each once",
                    e.number,
                    previous.unwrap_or_default()
                ),
            ));
        }
        previous = Some(e.number);
    }
    Ok(entries)
}

#[must_use]
pub fn entries_bytes(entries: &[Entry]) -> Vec<u8> {
    serde_saphyr::to_string(&entries)
        .expect("entries serialise")
        .into_bytes()
}

/// Parses an index bucket: lines `<key> <number>`, keys in increasing byte order, each once,
/// the last line ending with a newline.
pub fn parse_index(file: &str, bytes: &[u8], index: Index) -> Result<Vec<Line>, RegisterError> {
    let text = std::str::from_utf8(bytes).map_err(|_| invalid(file, "it is not UTF-8"))?;
    let Some(body) = text.strip_suffix('\n') else {
        return Err(invalid(
            file,
            if text.is_empty() {
                "it is empty: expected lines `<key> <number>`".to_owned()
            } else {
                "its last line has no newline".to_owned()
            },
        ));
    };
    let mut out: Vec<Line> = Vec::new();
    for (i, line) in body.split('\n').enumerate() {
        let bad = |why: &str| {
            invalid(
                file,
                format!(
                    "line {} is {:?}: expected `<{}> <number>`{why}",
                    i + 1,
                    crate::text::excerpt(line),
                    index.noun()
                ),
            )
        };
        let (key, number) = line.split_once(' ').ok_or_else(|| bad(""))?;
        let number = number
            .parse::<u64>()
            .ok()
            .filter(|n| (1..=super::MAX_NUMBER).contains(n) && n.to_string() == number)
            .ok_or_else(|| bad(&format!(" with a number from 1 to {}", super::MAX_NUMBER)))?;
        if !index.key_ok(key) {
            return Err(bad(""));
        }
        if out.last().is_some_and(|(k, _)| k.as_str() >= key) {
            return Err(bad(", keys in increasing order, each once"));
        }
        out.push((key.to_owned(), number));
    }
    Ok(out)
}

#[must_use]
pub fn index_bytes(lines: &[Line]) -> Vec<u8> {
    let mut out = String::with_capacity(lines.len() * 48);
    for (key, number) in lines {
        out.push_str(key);
        out.push(' ');
        out.push_str(&number.to_string());
        out.push('\n');
    }
    out.into_bytes()
}

/// The entries of the bucket holding release `number` (empty when there is no such file).
pub fn read_bucket(snap: &Snapshot<'_>, dir: &str, number: u64) -> crate::exit::Result<Vec<Entry>> {
    let file = layout::register_bucket(dir, number);
    match read(snap, &file)? {
        Some(bytes) => Ok(parse_entries(
            &file,
            &bytes,
            number - number % layout::ENTRIES_PER_BUCKET,
        )?),
        None => Ok(Vec::new()),
    }
}

/// Release `number`, if it is registered.
pub fn read_entry(
    snap: &Snapshot<'_>,
    dir: &str,
    number: u64,
) -> crate::exit::Result<Option<Entry>> {
    let file = layout::register_bucket(dir, number);
    match read(snap, &file)? {
        Some(bytes) => Ok(entry_in(&file, &bytes, number)?),
        None => Ok(None),
    }
}

/// Release `number` from the entry bucket `bytes`. A bucket in the shape releasectl writes
/// (see [`item`]) costs the parse of that one item, not of the 20 around it (`status` reads
/// one entry per pointer); any other text is parsed whole, with every rule of
/// [`parse_entries`].
pub fn entry_in(file: &str, bytes: &[u8], number: u64) -> Result<Option<Entry>, RegisterError> {
    if let Some(text) = item(bytes, number)
        && let Ok(mut one) = crate::yaml::typed::<Vec<Entry>>(text)
        && let [e] = one.as_slice()
        && e.number == number
    {
        return Ok(one.pop());
    }
    let first = number - number % layout::ENTRIES_PER_BUCKET;
    Ok(parse_entries(file, bytes, first)?
        .into_iter()
        .find(|e| e.number == number))
}

/// The text of the list item of release `number` when the bucket has the shape releasectl
/// writes: UTF-8, every line either indented or starting a list item with `- `, and exactly
/// one line `- number: <number>`; the item runs from that line to the next one that is not
/// indented. `None` for any other text (a comment or document marker at the margin, flow
/// style, the number twice …), which the caller parses whole.
fn item(bytes: &[u8], number: u64) -> Option<&[u8]> {
    let text = std::str::from_utf8(bytes).ok()?;
    let head = format!("- number: {number}\n");
    let (mut start, mut end) = (None, None);
    let mut pos = 0;
    for line in text.split_inclusive('\n') {
        if !line.starts_with(' ') {
            if !line.starts_with("- ") {
                return None;
            }
            if start.is_some() && end.is_none() {
                end = Some(pos);
            }
            if line == head {
                if start.is_some() {
                    return None;
                }
                start = Some(pos);
            }
        }
        pos += line.len();
    }
    let start = start?;
    Some(&bytes[start..end.unwrap_or(bytes.len())])
}

/// The lines of the index bucket `file` (none when there is no such file).
pub fn read_index(snap: &Snapshot<'_>, file: &str, index: Index) -> crate::exit::Result<Vec<Line>> {
    match read(snap, file)? {
        Some(bytes) => Ok(parse_index(file, &bytes, index)?),
        None => Ok(Vec::new()),
    }
}

/// The number `key` has in `lines` (sorted, as [`parse_index`] returns them).
#[must_use]
pub fn lookup(lines: &[Line], key: &str) -> Option<u64> {
    lines
        .binary_search_by(|(k, _)| k.as_str().cmp(key))
        .ok()
        .map(|i| lines[i].1)
}

/// The release the index line of `key` names: it must exist and name `key` back.
fn indexed(
    snap: &Snapshot<'_>,
    dir: &str,
    file: &str,
    key: &str,
    number: u64,
    names_it: impl Fn(&Entry) -> bool,
) -> crate::exit::Result<Entry> {
    let found = read_entry(snap, dir, number)?;
    named_back(
        file,
        &format!("its line for {}", crate::text::excerpt(key)),
        number,
        found,
        &layout::register_bucket(dir, number),
        names_it,
    )
}

/// The release of `commit`, if registered.
pub fn find_commit(
    snap: &Snapshot<'_>,
    dir: &str,
    commit: &CommitSha,
) -> crate::exit::Result<Option<Entry>> {
    let file = layout::register_commit_bucket(dir, commit.as_str());
    match lookup(&read_index(snap, &file, Index::Commit)?, commit.as_str()) {
        Some(n) => Ok(Some(indexed(snap, dir, &file, commit.as_str(), n, |e| {
            e.commit == *commit
        })?)),
        None => Ok(None),
    }
}

/// The release `alias` names, if any.
pub fn find_alias(
    snap: &Snapshot<'_>,
    dir: &str,
    alias: &str,
) -> crate::exit::Result<Option<Entry>> {
    let file = layout::register_alias_bucket(dir, alias);
    let key = layout::alias_key(alias);
    match lookup(&read_index(snap, &file, Index::Alias)?, &key) {
        Some(n) => Ok(Some(indexed(snap, dir, &file, &key, n, |e| {
            e.aliases.iter().any(|a| a.alias == alias)
        })?)),
        None => Ok(None),
    }
}

/// The commits (with their numbers) starting with `prefix` (at least 3 hex digits): one
/// index bucket read.
pub fn commits_with_prefix(
    snap: &Snapshot<'_>,
    dir: &str,
    prefix: &str,
) -> crate::exit::Result<Vec<(CommitSha, u64)>> {
    let file = layout::register_commit_bucket(dir, prefix);
    let mut out = Vec::new();
    for (key, number) in read_index(snap, &file, Index::Commit)? {
        if key.starts_with(prefix) {
            let commit = key
                .parse()
                .map_err(|e| invalid(&file, format!("not a commit: {e}")))?;
            out.push((commit, number));
        }
    }
    Ok(out)
}

/// The buckets resolving `id` may read first in the register at `dir` (format 3): the alias
/// bucket, the entry bucket when `id` is a number, the commit bucket when it is a commit
/// prefix. For a reader to fetch them together ([`Snapshot::prefetch`]); they may not exist.
#[must_use]
pub fn id_paths(dir: &str, id: &str) -> Vec<String> {
    let mut out = vec![layout::register_alias_bucket(dir, id)];
    if let Ok(n) = id.parse::<u64>() {
        out.push(layout::register_bucket(dir, n));
    }
    if id.len() >= 7 && crate::digest::is_lower_hex(id) {
        out.push(layout::register_commit_bucket(dir, id));
    }
    out
}

/// Every release below `dir`, by number (reads every entry bucket).
pub fn all_entries(snap: &Snapshot<'_>, dir: &str) -> crate::exit::Result<Vec<Entry>> {
    let mut out = Vec::new();
    let paths = snap.list(&format!("{dir}/{}", layout::REGISTER_ENTRIES))?;
    // On a lazy cache: every bucket in one request, not one per bucket.
    snap.prefetch(&paths)?;
    for path in paths {
        let Some(first) = layout::register_bucket_first(dir, &path) else {
            return Err(invalid(
                &path,
                "not a bucket file name: expected _entries/<n rounded down to 2000>/<n rounded down to 20>.yaml",
            )
            .into());
        };
        let bytes = snap.read(&path)?.unwrap_or_default();
        out.extend(parse_entries(&path, &bytes, first)?);
    }
    out.sort_by_key(|e| e.number);
    Ok(out)
}

/// The buckets one change rewrites: each is read from the snapshot the first time it is
/// touched (or starts empty, for a register written whole), changed in memory, and written
/// back by [`Changes::edits`].
pub struct Changes<'a, 's> {
    snap: Option<&'a Snapshot<'s>>,
    dir: String,
    entries: BTreeMap<String, Vec<Entry>>,
    index: BTreeMap<String, (Index, Vec<Line>)>,
}

impl<'a, 's> Changes<'a, 's> {
    /// Changes to the format 3 register at `dir` as it is at `snap`.
    #[must_use]
    pub fn on(snap: &'a Snapshot<'s>, dir: &str) -> Self {
        Self {
            snap: Some(snap),
            dir: dir.to_owned(),
            entries: BTreeMap::new(),
            index: BTreeMap::new(),
        }
    }

    /// A register at `dir` written from nothing (a migration).
    #[must_use]
    pub fn fresh(dir: &str) -> Self {
        Self {
            snap: None,
            dir: dir.to_owned(),
            entries: BTreeMap::new(),
            index: BTreeMap::new(),
        }
    }

    /// Replaces the entry with `entry`'s number (`new`: adds it, and fails when that number is
    /// taken — a head whose `last_number` is below a registered number, only a hand edit
    /// makes one, must not let a registration overwrite a release).
    fn put_entry(&mut self, entry: Entry, new: bool) -> crate::exit::Result<()> {
        let file = layout::register_bucket(&self.dir, entry.number);
        if !self.entries.contains_key(&file) {
            let now = match self.snap {
                Some(snap) => read_bucket(snap, &self.dir, entry.number)?,
                None => Vec::new(),
            };
            self.entries.insert(file.clone(), now);
        }
        let bucket = self.entries.get_mut(&file).expect("inserted above");
        match bucket.binary_search_by_key(&entry.number, |e| e.number) {
            Ok(_) if new => Err(invalid(
                &file,
                format!(
                    "it already holds release {}: expected the head's last_number to be at least {0}",
                    entry.number
                ),
            )
            .into()),
            Ok(i) => {
                bucket[i] = entry;
                Ok(())
            }
            Err(i) => {
                bucket.insert(i, entry);
                Ok(())
            }
        }
    }

    /// Replaces a registered release's entry (its aliases and triggers changed).
    pub fn update_entry(&mut self, entry: Entry) -> crate::exit::Result<()> {
        self.put_entry(entry, false)
    }

    fn put_line(
        &mut self,
        index: Index,
        key: String,
        alias: Option<&str>,
        number: u64,
    ) -> crate::exit::Result<()> {
        let file = index.bucket(&self.dir, &key, alias);
        if !self.index.contains_key(&file) {
            let now = match self.snap {
                Some(snap) => read_index(snap, &file, index)?,
                None => Vec::new(),
            };
            self.index.insert(file.clone(), (index, now));
        }
        let (_, lines) = self.index.get_mut(&file).expect("inserted above");
        match lines.binary_search_by(|(k, _)| k.as_str().cmp(&key)) {
            Ok(i) => lines[i].1 = number,
            Err(i) => lines.insert(i, (key, number)),
        }
        Ok(())
    }

    /// Indexes `commit` to release `number`.
    pub fn put_commit(&mut self, commit: &CommitSha, number: u64) -> crate::exit::Result<()> {
        self.put_line(Index::Commit, commit.to_string(), None, number)
    }

    /// Indexes `alias` to release `number`.
    pub fn put_alias(&mut self, alias: &str, number: u64) -> crate::exit::Result<()> {
        self.put_line(Index::Alias, layout::alias_key(alias), Some(alias), number)
    }

    /// Adds a release (its number must be free) and indexes its commit and aliases.
    pub fn put_release(&mut self, entry: &Entry) -> crate::exit::Result<()> {
        self.put_commit(&entry.commit, entry.number)?;
        for a in &entry.aliases {
            self.put_alias(&a.alias, entry.number)?;
        }
        self.put_entry(entry.clone(), true)
    }

    /// The files this change writes.
    #[must_use]
    pub fn edits(self) -> Vec<Edit> {
        let mut out: Vec<Edit> = self
            .entries
            .into_iter()
            .map(|(path, entries)| Edit {
                content: Some(entries_bytes(&entries)),
                path,
            })
            .collect();
        out.extend(self.index.into_iter().map(|(path, (_, lines))| Edit {
            content: Some(index_bytes(&lines)),
            path,
        }));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_buckets_hold_sorted_unique_lines_and_refuse_anything_else() {
        let c = "a".repeat(40);
        let d = format!("a{}", "b".repeat(39));
        let lines = vec![(c.clone(), 3), (d.clone(), 12)];
        let bytes = index_bytes(&lines);
        assert_eq!(bytes, format!("{c} 3\n{d} 12\n").into_bytes());
        assert_eq!(parse_index("f", &bytes, Index::Commit), Ok(lines.clone()));
        assert_eq!(lookup(&lines, &d), Some(12));
        assert_eq!(lookup(&lines, "b"), None);
        for (bad, why) in [
            (format!("{d} 12\n{c} 3\n"), "increasing order"),
            (format!("{c} 3\n{c} 4\n"), "increasing order"),
            (format!("{c} 3"), "no newline"),
            (String::new(), "empty"),
            (format!("{c} 0\n"), "number from 1"),
            (format!("{c} 03\n"), "number from 1"),
            (format!("{c}  3\n"), "number from 1"),
            (
                format!("{c} 18446744073709551615\n"),
                "number from 1 to 1000000000000",
            ),
            (format!("{c}\n"), "line 1"),
            ("xyz 3\n".to_owned(), "<commit> <number>"),
        ] {
            let err = parse_index("f", bad.as_bytes(), Index::Commit)
                .unwrap_err()
                .to_string();
            assert!(err.contains(why), "{bad:?}: {err}");
        }
        assert!(parse_index("f", b"v1.2.3 1\n%561 2\n", Index::Alias).is_err());
        assert_eq!(
            parse_index("f", b"%561 2\nv1.2.3 1\n", Index::Alias)
                .unwrap()
                .len(),
            2
        );
        assert!(parse_index("f", b"a/b 2\n", Index::Alias).is_err());
        // Any alias, however long and whatever its bytes, is one key that reads back.
        let odd = format!("{} x/é\n", "v".repeat(600));
        let lines = vec![(layout::alias_key(&odd), 7)];
        assert_eq!(
            parse_index("f", &index_bytes(&lines), Index::Alias),
            Ok(lines)
        );
    }

    fn entry(number: u64) -> Entry {
        let text = format!(
            "number: {number}\ncommit: {number:040x}\ndigest: sha256:{}\ncreated_at: '2026-11-22T10:30:00Z'\n\
             aliases:\n- alias: main-{number}\n  type: branch\ntriggers:\n- type: branch_push\n  branch: main\n  \
             triggered_by: \"a\\nb\"\n  at: '2026-11-22T10:30:00Z'\n",
            "0".repeat(64)
        );
        crate::yaml::typed(text.as_bytes()).unwrap()
    }

    #[test]
    fn one_entry_is_read_from_its_item_alone_and_anything_unusual_is_parsed_whole() {
        let all: Vec<Entry> = [100, 101, 110, 119].into_iter().map(entry).collect();
        let bytes = entries_bytes(&all);
        for e in &all {
            let text = item(&bytes, e.number).expect("the writer's shape");
            assert!(
                text.len() < bytes.len() / 3,
                "{}",
                String::from_utf8_lossy(text)
            );
            assert_eq!(entry_in("f", &bytes, e.number), Ok(Some(e.clone())));
        }
        assert_eq!(entry_in("f", &bytes, 102), Ok(None));
        let text = String::from_utf8(bytes).unwrap();
        // The same list in other shapes: each is parsed whole and gives the same answers.
        let variants = [
            format!("# a comment\n{text}"),
            format!("---\n{text}"),
            text.replace("- number: 110\n", "- number: 110 # hand edit\n"),
            serde_json::to_string(&all).unwrap(),
        ];
        for v in &variants {
            assert_eq!(item(v.as_bytes(), 110), None, "{v}");
            assert_eq!(
                entry_in("f", v.as_bytes(), 110),
                Ok(Some(all[2].clone())),
                "{v}"
            );
        }
        // A bucket that breaks a rule is refused whichever way it is read.
        let twice = text.replace("- number: 101\n", "- number: 110\n");
        assert_eq!(item(twice.as_bytes(), 110), None);
        assert!(entry_in("f", twice.as_bytes(), 110).is_err());
        let wrong = text.replace("- number: 119\n", "- number: 250\n");
        assert!(entry_in("f", wrong.as_bytes(), 119).is_err());
    }
}
