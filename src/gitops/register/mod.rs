//! The release register (docs/design.md §2, §4; docs/register.md): numbers, aliases and
//! triggers of every release of one project.
//!
//! A [`Register`] is a handle on one project's register at a snapshot; lookups read only
//! the files they need, and changes come back as the [`Edit`]s of one commit for the
//! caller's transaction. Three formats, one written:
//! - format 3 ([`bucket`], below `releases/<repository>/<project>/`, its head [`head`]):
//!   releases in bucket files of 20 numbers, commit and alias indexes in bucket files of one
//!   3-digit prefix, so registering, resolving and `release get` read and write the same few
//!   small files with 10 or 100,000 releases, and the repository's tree stays small;
//! - format 2 ([`split`], the same directory): one file per release, commit and alias;
//! - format 1 ([`legacy`], `releases/<repository>/<project>.yaml`): one file.
//!
//! Formats 1 and 2 are read as they are and migrated to format 3 by the first write (or by
//! `release migrate`).
//!
//! Numbers start at 1, increase, and are never reused: the register keeps `last_number`, so
//! even a hand-deleted entry cannot free its number. An alias names at most one release.
//!
//! How a person names a project ([`ProjectRef`]) and a release ([`ReleaseSelector`]) is
//! parsed at the command line; [`find_register`] and [`Register::resolve`] turn them into
//! a register and an entry.

pub mod bucket;
mod handle;
pub mod head;
pub mod legacy;
pub mod split;
pub mod validate;

pub use handle::{Found, Register, all_registers, find_register};

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::format::{Alias, AliasType, TriggerType};
use crate::ids::{CommitSha, InvalidId, Project, Repository};

pub const API_VERSION: &str = "releasectl.dev/v1alpha1";

/// The highest release number a register may hold or give: far beyond any project's history,
/// and far enough below `u64::MAX` that the next number never overflows.
pub const MAX_NUMBER: u64 = 1_000_000_000_000;

/// Fails when a number read from `file` is above [`MAX_NUMBER`].
fn check_number(file: &str, what: &str, number: u64) -> Result<(), RegisterError> {
    if number > MAX_NUMBER {
        return Err(RegisterError::Invalid {
            file: file.to_owned(),
            reason: format!("{what} is {number}: expected at most {MAX_NUMBER}"),
        });
    }
    Ok(())
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegisteredTrigger {
    #[serde(rename = "type")]
    pub kind: Option<TriggerType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub triggered_by: Option<String>,
    pub at: String,
}

impl RegisteredTrigger {
    /// Two triggers are the same event when type, branch and tag agree.
    fn same_event(&self, other: &Self) -> bool {
        self.kind == other.kind && self.branch == other.branch && self.tag == other.tag
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub number: u64,
    pub commit: CommitSha,
    pub digest: Digest,
    pub created_at: String,
    #[serde(default)]
    pub aliases: Vec<Alias>,
    #[serde(default)]
    pub triggers: Vec<RegisteredTrigger>,
}

impl Entry {
    /// `42 (v1.2.3)` — the number and the first alias, for messages.
    #[must_use]
    pub fn label(&self) -> String {
        match self.aliases.first() {
            Some(a) => format!("{} ({})", self.number, a.alias),
            None => self.number.to_string(),
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RegisterError {
    #[error("{file}: not a valid ReleaseRegister: {reason}")]
    Invalid { file: String, reason: String },
    #[error(
        "alias {alias} already names release {number} (commit {commit}) of {project}: expected it free for commit {wanted}"
    )]
    AliasTaken {
        alias: String,
        number: u64,
        commit: String,
        project: String,
        wanted: String,
    },
    #[error(
        "no release {id:?} of {project}: expected an alias, a number or a commit prefix (at least 7 hex digits)"
    )]
    NotFound { id: String, project: String },
    #[error("release id {id:?} of {project} is ambiguous: it is a prefix of {candidates}")]
    Ambiguous {
        id: String,
        project: String,
        candidates: String,
    },
}

/// A project as a person names it: `auth-service` (unique across repositories) or
/// `company/monorepo/auth-service`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProjectRef {
    Bare(Project),
    Full(Repository, Project),
}

impl std::str::FromStr for ProjectRef {
    type Err = InvalidId;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.rsplit_once('/') {
            Some((repo, name)) => Ok(Self::Full(repo.parse()?, name.parse()?)),
            None => Ok(Self::Bare(s.parse()?)),
        }
    }
}

impl fmt::Display for ProjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Bare(p) => write!(f, "{p}"),
            Self::Full(r, p) => write!(f, "{r}/{p}"),
        }
    }
}

/// A release as a person names it: an alias (`v1.2.3`, `main-42`), a number, or a commit
/// prefix of at least 7 hex digits. Which one it is depends on the register
/// ([`Register::resolve`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseSelector(String);

/// Why a release id was refused before looking it up.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "invalid release id {0:?}: expected an alias, a number or a commit prefix (at least 7 hex digits)"
)]
pub struct InvalidSelector(String);

crate::exit_class!(InvalidSelector => Usage);

impl std::str::FromStr for ReleaseSelector {
    type Err = InvalidSelector;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() || s.len() > 256 || s.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(InvalidSelector(crate::text::excerpt(s)));
        }
        Ok(Self(s.to_owned()))
    }
}

impl ReleaseSelector {
    /// The selector naming exactly this commit.
    #[must_use]
    pub fn commit(commit: &CommitSha) -> Self {
        Self(commit.to_string())
    }

    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ReleaseSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Which git tags make an alias of a release (docs/design.md §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TagStrategy {
    /// Only tags `<project>/v*` make an alias (`auth-service/v1.2.3` → `v1.2.3`).
    Monorepo,
    /// Every tag makes an alias (its last path segment).
    TagAll,
}

impl std::str::FromStr for TagStrategy {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "monorepo" => Ok(Self::Monorepo),
            "tag-all" => Ok(Self::TagAll),
            other => Err(format!(
                "unknown tag strategy {:?}: expected monorepo or tag-all",
                crate::text::excerpt(other)
            )),
        }
    }
}

impl TagStrategy {
    /// The alias git tag `tag` makes for `project`, if any.
    #[must_use]
    pub fn alias(self, project: &Project, tag: &str) -> Option<Alias> {
        let alias = match self {
            Self::TagAll => Some(tag.rsplit('/').next().unwrap_or(tag).to_owned()),
            Self::Monorepo => tag
                .strip_prefix(project.as_str())
                .and_then(|t| t.strip_prefix('/'))
                .filter(|t| t.starts_with('v') && !t.contains('/'))
                .map(str::to_owned),
        }?;
        Some(Alias {
            alias,
            kind: AliasType::Tag,
        })
    }
}

/// The branch alias of a release: `<branch>-<number>`, `/` becoming `-`.
#[must_use]
pub fn branch_alias(branch: &str, number: u64) -> Alias {
    Alias {
        alias: format!("{}-{number}", branch.replace('/', "-")),
        kind: AliasType::Branch,
    }
}

crate::exit_class!(RegisterError => Usage);

#[cfg(test)]
mod tests {
    use super::legacy::{LegacyRegister, duplicates};
    use super::*;

    #[test]
    fn tag_aliases_follow_the_strategy() {
        let p: Project = "auth-service".parse().unwrap();
        let alias = |s: TagStrategy, tag: &str| s.alias(&p, tag).map(|a| a.alias);
        assert_eq!(
            alias(TagStrategy::Monorepo, "auth-service/v1.2.3").as_deref(),
            Some("v1.2.3")
        );
        assert_eq!(alias(TagStrategy::Monorepo, "billing/v1.2.3"), None);
        assert_eq!(alias(TagStrategy::Monorepo, "v1.2.3"), None);
        assert_eq!(
            alias(TagStrategy::TagAll, "v1.2.3").as_deref(),
            Some("v1.2.3")
        );
        assert_eq!("tag-all".parse(), Ok(TagStrategy::TagAll));
        assert!("all".parse::<TagStrategy>().is_err());
    }

    #[test]
    fn projects_are_named_bare_or_with_their_repository() {
        assert_eq!(
            "auth-service".parse::<ProjectRef>().unwrap(),
            ProjectRef::Bare("auth-service".parse().unwrap())
        );
        let full: ProjectRef = "company/monorepo/auth-service".parse().unwrap();
        assert_eq!(full.to_string(), "company/monorepo/auth-service");
        assert!(matches!(full, ProjectRef::Full(..)));
        assert!("Auth Service".parse::<ProjectRef>().is_err());
        assert!("company//x".parse::<ProjectRef>().is_err());
    }

    #[test]
    fn release_ids_are_refused_when_empty_or_holding_control_characters() {
        assert!("v1.2.3".parse::<ReleaseSelector>().is_ok());
        assert!("".parse::<ReleaseSelector>().is_err());
        assert!("v1\nv2".parse::<ReleaseSelector>().is_err());
    }

    fn entry(number: u64, c: char, aliases: &[&str]) -> Entry {
        Entry {
            number,
            commit: c.to_string().repeat(40).parse().unwrap(),
            digest: Digest::of(&number.to_le_bytes()),
            created_at: "2026-11-22T10:30:00Z".into(),
            aliases: aliases
                .iter()
                .map(|a| Alias {
                    alias: (*a).into(),
                    kind: AliasType::Tag,
                })
                .collect(),
            triggers: vec![],
        }
    }

    #[test]
    fn the_one_file_register_round_trips_through_yaml() {
        let r = LegacyRegister::new(
            "company/monorepo".parse().unwrap(),
            "auth-service".parse().unwrap(),
            vec![entry(1, 'a', &["v1.0.0"]), entry(7, 'c', &["main-7"])],
        );
        assert_eq!(r.last_number, 7);
        let yaml = r.to_yaml();
        let back =
            LegacyRegister::parse("r.yaml", yaml.as_bytes(), &r.repository, &r.project).unwrap();
        assert_eq!(back, r);
        let other: Project = "billing".parse().unwrap();
        assert!(LegacyRegister::parse("r.yaml", yaml.as_bytes(), &r.repository, &other).is_err());
    }

    #[test]
    fn a_hand_edited_list_with_duplicates_is_named_before_migrating() {
        assert_eq!(
            duplicates(&[entry(1, 'a', &["v1"]), entry(2, 'b', &["v2"])]),
            None
        );
        let why = duplicates(&[entry(1, 'a', &["v1"]), entry(1, 'b', &[])]).unwrap();
        assert!(why.contains("number 1"), "{why}");
        let why = duplicates(&[entry(1, 'a', &[]), entry(2, 'a', &[])]).unwrap();
        assert!(why.contains("registered twice"), "{why}");
        let why = duplicates(&[entry(1, 'a', &["v1"]), entry(2, 'b', &["v1"])]).unwrap();
        assert!(why.contains("alias v1 names releases 1 and 2"), "{why}");
    }

    #[test]
    fn format_2_index_files_hold_one_number_and_a_newline() {
        assert_eq!(split::parse_index("f", b"42\n"), Ok(42));
        for bad in [&b"42"[..], b"0\n", b"x\n", b" 4\n", b"4\n\n"] {
            assert!(split::parse_index("f", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_format_2_entry_file_must_hold_the_release_its_name_says() {
        let e = entry(5, 'e', &["v5"]);
        let bytes = serde_saphyr::to_string(&e).unwrap().into_bytes();
        assert_eq!(split::parse_entry("f", &bytes, 5), Ok(e));
        let err = split::parse_entry("f", &bytes, 6).unwrap_err().to_string();
        assert!(err.contains("holds release 5: expected 6"), "{err}");
    }

    #[test]
    fn an_entry_bucket_holds_its_twenty_numbers_in_order() {
        let entries = vec![entry(100, 'a', &["v1"]), entry(117, 'b', &[])];
        let bytes = bucket::entries_bytes(&entries);
        assert_eq!(bucket::parse_entries("f", &bytes, 100), Ok(entries.clone()));
        let err = bucket::parse_entries("f", &bytes, 0)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("holds release 100: expected numbers 0 to 19"),
            "{err}"
        );
        let swapped = bucket::entries_bytes(&[entries[1].clone(), entries[0].clone()]);
        let err = bucket::parse_entries("f", &swapped, 100)
            .unwrap_err()
            .to_string();
        assert!(err.contains("release 100 follows release 117"), "{err}");
        assert_eq!(bucket::parse_entries("f", b"[]", 0), Ok(vec![]));
    }
}
