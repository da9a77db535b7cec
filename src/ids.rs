//! Names that identify a release: repository, project and commit (docs/design.md §2).
//!
//! Each is a newtype that can only hold a valid value, parsed once at the edge. Repository path
//! segments and project names follow the OCI distribution name grammar
//! (`[a-z0-9]+([._-][a-z0-9]+)*`), so every release maps onto a valid image reference.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::digest::is_lower_hex;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum InvalidId {
    #[error("invalid commit SHA {value:?}: expected 40 (or 64) lower-case hex digits")]
    Commit { value: String },
    #[error(
        "invalid repository {value:?}: expected '/'-separated segments of [a-z0-9]+([._-][a-z0-9]+)*"
    )]
    Repository { value: String },
    #[error("invalid project {value:?}: expected [a-z0-9]+([._-][a-z0-9]+)*")]
    Project { value: String },
}

/// A git commit SHA: 40 lower-case hex digits (64 for SHA-256 repositories).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CommitSha(String);

/// A source repository, e.g. `company/monorepo`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Repository(String);

/// A project inside a repository, e.g. `auth-service`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Project(String);

/// One component of the OCI name grammar: `[a-z0-9]+([._-][a-z0-9]+)*`.
#[must_use]
pub fn is_name_component(s: &str) -> bool {
    let mut prev_sep = true; // the first character may not be a separator
    for b in s.bytes() {
        match b {
            b'a'..=b'z' | b'0'..=b'9' => prev_sep = false,
            b'.' | b'_' | b'-' if !prev_sep => prev_sep = true,
            _ => return false,
        }
    }
    !s.is_empty() && !prev_sep
}

impl CommitSha {
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The first 12 digits, for people.
    #[must_use]
    pub fn short(&self) -> &str {
        &self.0[..12]
    }
}

impl Repository {
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Project {
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for CommitSha {
    type Err = InvalidId;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if (s.len() == 40 || s.len() == 64) && is_lower_hex(s) {
            Ok(Self(s.to_owned()))
        } else {
            Err(InvalidId::Commit {
                value: s.to_owned(),
            })
        }
    }
}

impl FromStr for Repository {
    type Err = InvalidId;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.split('/').all(is_name_component) {
            Ok(Self(s.to_owned()))
        } else {
            Err(InvalidId::Repository {
                value: s.to_owned(),
            })
        }
    }
}

impl FromStr for Project {
    type Err = InvalidId;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if is_name_component(s) {
            Ok(Self(s.to_owned()))
        } else {
            Err(InvalidId::Project {
                value: s.to_owned(),
            })
        }
    }
}

macro_rules! string_newtype_impls {
    ($($ty:ty),*) => {$(
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl fmt::Debug for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{:?}", self.0)
            }
        }
        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                String::deserialize(d)?.parse().map_err(serde::de::Error::custom)
            }
        }
    )*};
}
string_newtype_impls!(CommitSha, Repository, Project);

/// The identity of a release: `<repository>/<project>/<commit>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseId {
    pub repository: Repository,
    pub project: Project,
    pub commit: CommitSha,
}

impl ReleaseId {
    /// The repository path of the release's image in a registry: `<repository>/<project>`.
    #[must_use]
    pub fn image_path(&self) -> String {
        format!("{}/{}", self.repository, self.project)
    }
}

impl fmt::Display for ReleaseId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.repository, self.project, self.commit)
    }
}

crate::exit_class!(InvalidId => Usage);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_components_follow_the_oci_grammar() {
        for good in ["a", "auth-service", "a.b_c-d", "x1", "0"] {
            assert!(is_name_component(good), "{good} refused");
        }
        for bad in ["", "-a", "a-", "A", "a..b", "a/b", "a b", "a--b", "ü"] {
            assert!(!is_name_component(bad), "{bad:?} accepted");
        }
    }

    #[test]
    fn repositories_may_hold_slashes_but_not_empty_segments() {
        assert!("company/monorepo".parse::<Repository>().is_ok());
        assert!("a/b/c".parse::<Repository>().is_ok());
        for bad in ["", "/a", "a/", "a//b", "Company/x"] {
            assert!(bad.parse::<Repository>().is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn commits_are_forty_or_sixty_four_lower_hex_digits() {
        assert!(
            "0123456789abcdef0123456789abcdef01234567"
                .parse::<CommitSha>()
                .is_ok()
        );
        assert!("a".repeat(64).parse::<CommitSha>().is_ok());
        for bad in [
            "0123456789abcdef0123456789abcdef0123456",
            "0123456789ABCDEF0123456789ABCDEF01234567",
            "0123456789abcdef0123456789abcdef0123456g",
        ] {
            assert!(bad.parse::<CommitSha>().is_err(), "{bad:?} accepted");
        }
    }
}
