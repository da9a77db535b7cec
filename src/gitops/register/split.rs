//! The register of format 2, one small file per release and per index key below
//! `releases/<repository>/<project>/` (docs/register.md §6): what each file holds and
//! reading one of them. Format 2 is read, never written: the first write migrates it to
//! format 3 ([`super::bucket`]).
//!
//! Invariants: every read here touches a bounded number of small trees and blobs, whatever
//! the number of releases — one entry, one index file, or one index directory of the
//! commits sharing a 2-digit prefix; the head's `last_number` only grows; an index file holds
//! the number of the release it names, and that release's entry names the same key.

use super::{Entry, RegisterError};
use crate::gitops::layout;
use crate::gitops::snapshot::Snapshot;
use crate::ids::CommitSha;

/// The file at `file`, walking to its directory from the deepest one this snapshot already
/// walked to: the reads of many registers below one `releases/<repository>` directory (a
/// `status` of thousands of projects) read that directory's tree once.
pub(super) fn read(snap: &Snapshot<'_>, file: &str) -> crate::exit::Result<Option<Vec<u8>>> {
    if let Some((dir, _)) = file.rsplit_once('/') {
        snap.remember(dir)?;
    }
    Ok(snap.read(file)?)
}

pub(super) fn invalid(file: &str, reason: impl Into<String>) -> RegisterError {
    RegisterError::Invalid {
        file: file.to_owned(),
        reason: reason.into(),
    }
}

/// Parses the entry file of release `number`.
pub fn parse_entry(file: &str, bytes: &[u8], number: u64) -> Result<Entry, RegisterError> {
    let entry: Entry = crate::yaml::typed(bytes).map_err(|e| invalid(file, e.to_string()))?;
    if entry.number != number {
        return Err(invalid(
            file,
            format!("it holds release {}: expected {number}", entry.number),
        ));
    }
    Ok(entry)
}

/// Release `number`, if it is registered.
pub fn read_entry(
    snap: &Snapshot<'_>,
    dir: &str,
    number: u64,
) -> crate::exit::Result<Option<Entry>> {
    let file = layout::register_entry(dir, number);
    match read(snap, &file)? {
        Some(bytes) => Ok(Some(parse_entry(&file, &bytes, number)?)),
        None => Ok(None),
    }
}

/// Parses an index file: one release number and a newline.
pub fn parse_index(file: &str, bytes: &[u8]) -> Result<u64, RegisterError> {
    std::str::from_utf8(bytes)
        .ok()
        .and_then(|s| s.strip_suffix('\n'))
        .and_then(|s| s.parse::<u64>().ok())
        .filter(|n| *n > 0)
        .ok_or_else(|| {
            invalid(
                file,
                format!(
                    "it holds {:?}: expected a release number and a newline",
                    crate::text::excerpt(&String::from_utf8_lossy(bytes))
                ),
            )
        })
}

/// The number an index file holds, if the file is there.
pub fn read_index(snap: &Snapshot<'_>, file: &str) -> crate::exit::Result<Option<u64>> {
    match read(snap, file)? {
        Some(bytes) => Ok(Some(parse_index(file, &bytes)?)),
        None => Ok(None),
    }
}

/// The release an index file names, which must exist and name the file's key back.
pub fn indexed_entry(
    snap: &Snapshot<'_>,
    dir: &str,
    file: &str,
    number: u64,
    names_it: impl Fn(&Entry) -> bool,
) -> crate::exit::Result<Entry> {
    let found = read_entry(snap, dir, number)?;
    named_back(
        file,
        "it",
        number,
        found,
        &layout::register_entry(dir, number),
        names_it,
    )
}

/// The entry an index names (`found`, read at `expected_at`), checked: it must exist and name
/// the index's key back. `what` is the index's part in the message (`it`, `its line for v1`).
pub(super) fn named_back(
    file: &str,
    what: &str,
    number: u64,
    found: Option<Entry>,
    expected_at: &str,
    names_it: impl Fn(&Entry) -> bool,
) -> crate::exit::Result<Entry> {
    match found {
        Some(e) if names_it(&e) => Ok(e),
        Some(_) => Err(invalid(
            file,
            format!("{what} names release {number}, whose entry does not name it back"),
        )
        .into()),
        None => Err(invalid(
            file,
            format!("{what} names release {number}: expected it in {expected_at}"),
        )
        .into()),
    }
}

/// The commits (with their numbers) starting with `prefix` (at least 2 hex digits): one index
/// directory listed, one small file read per match.
pub fn commits_with_prefix(
    snap: &Snapshot<'_>,
    dir: &str,
    prefix: &str,
) -> crate::exit::Result<Vec<(CommitSha, u64)>> {
    let index = layout::register_commit_dir(dir, prefix);
    snap.remember(&index)?;
    let mut out = Vec::new();
    for (name, is_dir) in snap.entries(&index)? {
        if is_dir || !name.starts_with(prefix) {
            continue;
        }
        let file = format!("{index}/{name}");
        let commit: CommitSha = name
            .parse()
            .map_err(|e| invalid(&file, format!("not a commit file name: {e}")))?;
        let number = read_index(snap, &file)?.unwrap_or_default();
        out.push((commit, number));
    }
    Ok(out)
}
