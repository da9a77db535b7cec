//! The register of format 2, one small file per release and per index key below
//! `releases/<repository>/<project>/` (docs/register.md): what each file holds, reading one
//! of them, and the files a change writes.
//!
//! Invariants: every read here touches a bounded number of small trees and blobs, whatever
//! the number of releases — one entry, one index file, or one index directory of the
//! commits sharing a 2-digit prefix; the head's `last_number` only grows; an index file holds
//! the number of the release it names, and that release's entry names the same key.

use serde::{Deserialize, Serialize};

use super::{API_VERSION, Entry, RegisterError};
use crate::gitops::layout;
use crate::gitops::push::Edit;
use crate::gitops::snapshot::Snapshot;
use crate::ids::{CommitSha, Project, Repository};

pub const HEAD_KIND: &str = "ReleaseRegisterHead";

/// `_register.yaml`: whose register this is and the highest number ever given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Head {
    #[serde(rename = "apiVersion")]
    pub api_version: String,
    pub kind: String,
    pub repository: Repository,
    pub project: Project,
    pub last_number: u64,
}

/// The file at `file`, walking to its directory from the deepest one this snapshot already
/// walked to: the reads of many registers below one `releases/<repository>` directory (a
/// `status` of thousands of projects) read that directory's tree once.
fn read(snap: &Snapshot<'_>, file: &str) -> crate::exit::Result<Option<Vec<u8>>> {
    if let Some((dir, _)) = file.rsplit_once('/') {
        snap.remember(dir)?;
    }
    Ok(snap.read(file)?)
}

fn invalid(file: &str, reason: impl Into<String>) -> RegisterError {
    RegisterError::Invalid {
        file: file.to_owned(),
        reason: reason.into(),
    }
}

/// Parses a head, checking it belongs where it was found.
pub fn parse_head(
    file: &str,
    bytes: &[u8],
    repository: &Repository,
    project: &Project,
) -> Result<Head, RegisterError> {
    let head: Head = crate::yaml::typed(bytes).map_err(|e| invalid(file, e.to_string()))?;
    if head.api_version != API_VERSION || head.kind != HEAD_KIND {
        return Err(invalid(
            file,
            format!(
                "apiVersion/kind are {}/{}: expected {API_VERSION}/{HEAD_KIND}",
                head.api_version, head.kind
            ),
        ));
    }
    if head.repository != *repository || head.project != *project {
        return Err(invalid(
            file,
            format!(
                "it describes {}/{}: expected {repository}/{project}",
                head.repository, head.project
            ),
        ));
    }
    Ok(head)
}

/// The head at `dir`, if the project has a register of format 2.
pub fn read_head(
    snap: &Snapshot<'_>,
    dir: &str,
    repository: &Repository,
    project: &Project,
) -> crate::exit::Result<Option<Head>> {
    let file = layout::register_head(dir);
    match read(snap, &file)? {
        Some(bytes) => Ok(Some(parse_head(&file, &bytes, repository, project)?)),
        None => Ok(None),
    }
}

#[must_use]
pub fn head_bytes(repository: &Repository, project: &Project, last_number: u64) -> Vec<u8> {
    let head = Head {
        api_version: API_VERSION.into(),
        kind: HEAD_KIND.into(),
        repository: repository.clone(),
        project: project.clone(),
        last_number,
    };
    serde_saphyr::to_string(&head)
        .expect("a head serialises")
        .into_bytes()
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

#[must_use]
pub fn entry_bytes(entry: &Entry) -> Vec<u8> {
    serde_saphyr::to_string(entry)
        .expect("an entry serialises")
        .into_bytes()
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

#[must_use]
pub fn index_bytes(number: u64) -> Vec<u8> {
    format!("{number}\n").into_bytes()
}

/// The release an index file names, which must exist and name `key` back (`what` says how:
/// `commit` or `alias`).
pub fn indexed_entry(
    snap: &Snapshot<'_>,
    dir: &str,
    file: &str,
    number: u64,
    names_it: impl Fn(&Entry) -> bool,
) -> crate::exit::Result<Entry> {
    match read_entry(snap, dir, number)? {
        Some(e) if names_it(&e) => Ok(e),
        Some(_) => Err(invalid(
            file,
            format!("it names release {number}, whose entry does not name it back"),
        )
        .into()),
        None => Err(invalid(
            file,
            format!(
                "it names release {number}: expected {} to exist",
                layout::register_entry(dir, number)
            ),
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

/// The files that add `entry` as a new release (entry, commit index, alias index, head).
#[must_use]
pub fn new_release_edits(
    dir: &str,
    repository: &Repository,
    project: &Project,
    entry: &Entry,
    last_number: u64,
) -> Vec<Edit> {
    let mut edits = vec![
        Edit {
            path: layout::register_entry(dir, entry.number),
            content: Some(entry_bytes(entry)),
        },
        Edit {
            path: layout::register_commit(dir, &entry.commit),
            content: Some(index_bytes(entry.number)),
        },
    ];
    edits.extend(entry.aliases.iter().map(|a| Edit {
        path: layout::register_alias(dir, &a.alias),
        content: Some(index_bytes(entry.number)),
    }));
    edits.push(Edit {
        path: layout::register_head(dir),
        content: Some(head_bytes(repository, project, last_number)),
    });
    edits
}

/// The files of a whole register in format 2: what a migration writes.
#[must_use]
pub fn all_edits(
    dir: &str,
    repository: &Repository,
    project: &Project,
    last_number: u64,
    entries: &[Entry],
) -> Vec<Edit> {
    let mut edits: Vec<Edit> = entries
        .iter()
        .flat_map(|e| new_release_edits(dir, repository, project, e, last_number))
        .filter(|e| !e.path.ends_with(layout::REGISTER_HEAD))
        .collect();
    edits.push(Edit {
        path: layout::register_head(dir),
        content: Some(head_bytes(repository, project, last_number)),
    });
    edits
}
