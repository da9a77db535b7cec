//! The one-file register of format 1, `releases/<repository>/<project>.yaml` (docs/register.md
//! §5): every release of a project in one YAML list. Read as it is; never written again — the
//! first write migrates it (see [`super::Register::migration`]).
//!
//! Pure functions over the parsed file: lookups here scan the list, which is what the
//! split layout of format 2 exists to avoid.

use serde::{Deserialize, Serialize};

use super::{Entry, RegisterError};
use crate::ids::{Project, Repository};

pub const KIND: &str = "ReleaseRegister";

/// The file as committed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LegacyRegister {
    #[serde(rename = "apiVersion")]
    pub api_version: String,
    pub kind: String,
    pub repository: Repository,
    pub project: Project,
    pub last_number: u64,
    #[serde(default)]
    pub releases: Vec<Entry>,
}

impl LegacyRegister {
    /// A register file of format 1 holding `releases` (tests and benchmarks make old
    /// repositories with it).
    #[must_use]
    pub fn new(repository: Repository, project: Project, releases: Vec<Entry>) -> Self {
        Self {
            api_version: super::API_VERSION.into(),
            kind: KIND.into(),
            repository,
            project,
            last_number: releases.iter().map(|e| e.number).max().unwrap_or(0),
            releases,
        }
    }

    /// Parses a register file, checking it belongs where it was found.
    pub fn parse(
        file: &str,
        bytes: &[u8],
        repository: &Repository,
        project: &Project,
    ) -> Result<Self, RegisterError> {
        let invalid = |reason: String| RegisterError::Invalid {
            file: file.to_owned(),
            reason,
        };
        let register: Self = crate::yaml::typed(bytes).map_err(|e| invalid(e.to_string()))?;
        if register.api_version != super::API_VERSION || register.kind != KIND {
            return Err(invalid(format!(
                "apiVersion/kind are {}/{}: expected {}/{KIND}",
                register.api_version,
                register.kind,
                super::API_VERSION
            )));
        }
        super::check_number(file, "last_number", register.last_number)?;
        for e in &register.releases {
            super::check_number(file, "a release number", e.number)?;
        }
        if register.repository != *repository || register.project != *project {
            return Err(invalid(format!(
                "it describes {}/{}: expected {repository}/{project}",
                register.repository, register.project
            )));
        }
        Ok(register)
    }

    /// The file as YAML.
    #[must_use]
    pub fn to_yaml(&self) -> String {
        serde_saphyr::to_string(self).expect("a register serialises")
    }
}

/// Why a format 1 list cannot become format 2 as it is: two entries share a number, a
/// commit or an alias (only a hand edit makes that).
#[must_use]
pub fn duplicates(entries: &[Entry]) -> Option<String> {
    let mut numbers = std::collections::HashSet::new();
    let mut commits = std::collections::HashSet::new();
    let mut aliases = std::collections::HashMap::new();
    for e in entries {
        if !numbers.insert(e.number) {
            return Some(format!("number {} names two releases", e.number));
        }
        if !commits.insert(e.commit.as_str()) {
            return Some(format!("commit {} is registered twice", e.commit));
        }
        for a in &e.aliases {
            if let Some(n) = aliases.insert(a.alias.as_str(), e.number)
                && n != e.number
            {
                return Some(format!(
                    "alias {} names releases {n} and {}",
                    crate::text::excerpt(&a.alias),
                    e.number
                ));
            }
        }
    }
    None
}
