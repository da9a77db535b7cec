//! `_register.yaml`, the head of a register directory (docs/register.md §2): whose register it
//! is, the highest number ever given, and by its `apiVersion` which format the files below it
//! are in — `releasectl.dev/v1alpha2` for format 3 (bucket files, what releasectl writes),
//! `releasectl.dev/v1alpha1` for format 2 (one file per release, read and migrated).
//!
//! A new `apiVersion` rather than a new field, so that a releasectl that knows only format 2
//! refuses a format 3 register with an error instead of finding nothing in it and writing
//! format 2 files next to it.

use serde::{Deserialize, Serialize};

use super::split::{invalid, read};
use super::{API_VERSION, RegisterError};
use crate::gitops::layout;
use crate::gitops::snapshot::Snapshot;
use crate::ids::{Project, Repository};

pub const KIND: &str = "ReleaseRegisterHead";
/// The head's `apiVersion` in format 3.
pub const API_VERSION_3: &str = "releasectl.dev/v1alpha2";

/// The format of the files below a head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One file per release, commit and alias (`apiVersion: releasectl.dev/v1alpha1`).
    Split,
    /// Bucket files (`apiVersion: releasectl.dev/v1alpha2`).
    Buckets,
}

/// `_register.yaml` as committed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Head {
    #[serde(rename = "apiVersion")]
    pub api_version: String,
    pub kind: String,
    pub repository: Repository,
    pub project: Project,
    pub last_number: u64,
}

impl Head {
    /// The format of the register below this head (checked by [`parse`]).
    #[must_use]
    pub fn format(&self) -> Format {
        if self.api_version == API_VERSION_3 {
            Format::Buckets
        } else {
            Format::Split
        }
    }
}

/// Parses a head, checking it belongs where it was found.
pub fn parse(
    file: &str,
    bytes: &[u8],
    repository: &Repository,
    project: &Project,
) -> Result<Head, RegisterError> {
    let head: Head = crate::yaml::typed(bytes).map_err(|e| invalid(file, e.to_string()))?;
    if ![API_VERSION_3, API_VERSION].contains(&head.api_version.as_str()) || head.kind != KIND {
        return Err(invalid(
            file,
            format!(
                "apiVersion/kind are {}/{}: expected {API_VERSION_3}/{KIND} (format 3) or {API_VERSION}/{KIND} (format 2)",
                crate::text::excerpt(&head.api_version),
                crate::text::excerpt(&head.kind)
            ),
        ));
    }
    super::check_number(file, "last_number", head.last_number)?;
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

/// The head at `dir`, if the project has a register directory (format 2 or 3).
pub fn read_head(
    snap: &Snapshot<'_>,
    dir: &str,
    repository: &Repository,
    project: &Project,
) -> crate::exit::Result<Option<Head>> {
    let file = layout::register_head(dir);
    match read(snap, &file)? {
        Some(bytes) => Ok(Some(parse(&file, &bytes, repository, project)?)),
        None => Ok(None),
    }
}

/// A format 3 head.
#[must_use]
pub fn bytes(repository: &Repository, project: &Project, last_number: u64) -> Vec<u8> {
    let head = Head {
        api_version: API_VERSION_3.into(),
        kind: KIND.into(),
        repository: repository.clone(),
        project: project.clone(),
        last_number,
    };
    serde_saphyr::to_string(&head)
        .expect("a head serialises")
        .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_api_version_tells_the_format_and_anything_else_is_refused() {
        let repo: Repository = "company/monorepo".parse().unwrap();
        let project: Project = "auth-service".parse().unwrap();
        let new = bytes(&repo, &project, 42);
        let head = parse("h", &new, &repo, &project).unwrap();
        assert_eq!((head.format(), head.last_number), (Format::Buckets, 42));
        let old = String::from_utf8(new)
            .unwrap()
            .replace(API_VERSION_3, API_VERSION);
        let head = parse("h", old.as_bytes(), &repo, &project).unwrap();
        assert_eq!(head.format(), Format::Split);
        let other = old.replace(API_VERSION, "releasectl.dev/v9");
        let err = parse("h", other.as_bytes(), &repo, &project)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("releasectl.dev/v9/ReleaseRegisterHead: expected"),
            "{err}"
        );
        let billing: Project = "billing".parse().unwrap();
        assert!(parse("h", old.as_bytes(), &repo, &billing).is_err());
        // A head the next number would overflow is refused, naming the field.
        let huge = bytes(&repo, &project, u64::MAX);
        let err = parse("h", &huge, &repo, &project).unwrap_err().to_string();
        assert!(
            err.contains("last_number is 18446744073709551615: expected at most"),
            "{err}"
        );
    }
}
