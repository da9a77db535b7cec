//! The release register, `releases/<repository>/<project>.yaml` (docs/design.md §2, §4): numbers,
//! aliases and triggers of every release of one project.
//!
//! Pure functions over the register's contents; the caller reads it from the branch tip and
//! writes it back in one commit. Numbers start at 1, increase, and are never reused: the
//! register keeps `last_number`, so even a hand-deleted entry cannot free its number.
//!
//! How a person names a project ([`ProjectRef`]) and a release ([`ReleaseSelector`]) is
//! parsed at the command line; [`find_register`] and [`Register::resolve`] turn them into
//! a register and an entry.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::layout;
use super::snapshot::Snapshot;
use crate::digest::Digest;
use crate::exit::InvalidInput;
use crate::format::{Alias, AliasType, TriggerType};
use crate::ids::{CommitSha, InvalidId, Project, Repository};

pub const API_VERSION: &str = "releasectl.dev/v1alpha1";
pub const KIND: &str = "ReleaseRegister";

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

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Register {
    #[serde(rename = "apiVersion")]
    pub api_version: String,
    pub kind: String,
    pub repository: Repository,
    pub project: Project,
    pub last_number: u64,
    #[serde(default)]
    pub releases: Vec<Entry>,
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

/// Finds a project's register at `tip`: `repository/project` directly, or a bare project
/// name that must be unique across repositories.
pub fn find_register(
    gitops: &super::GitOps,
    tip: &Snapshot<'_>,
    project: &ProjectRef,
) -> crate::exit::Result<Register> {
    let (repository, name) = match project {
        ProjectRef::Full(repository, name) => (repository.clone(), name.clone()),
        ProjectRef::Bare(name) => {
            let all = tip.list(layout::REGISTERS)?;
            let matches: Vec<(&str, &str)> = all
                .iter()
                .filter_map(|p| layout::register_of(p))
                .filter_map(|full| full.rsplit_once('/'))
                .filter(|(_, p)| *p == name.as_str())
                .collect();
            match matches.as_slice() {
                [(repo, _)] => (repo.parse::<Repository>()?, name.clone()),
                [] => {
                    return Err(InvalidInput(format!(
                        "no project {name} is registered in {} (branch {})",
                        gitops.url(),
                        gitops.branch()
                    ))
                    .into());
                }
                many => {
                    let names: Vec<String> = many.iter().map(|(r, p)| format!("{r}/{p}")).collect();
                    return Err(InvalidInput(format!(
                        "project {name} is ambiguous: expected one of {}",
                        names.join(", ")
                    ))
                    .into());
                }
            }
        }
    };
    let path = layout::register_path(&repository, &name);
    match tip.read(&path)? {
        Some(bytes) => Ok(Register::parse(&path, &bytes, &repository, &name)?),
        None => Err(InvalidInput(format!(
            "no project {repository}/{name} is registered in {} (no {path})",
            gitops.url()
        ))
        .into()),
    }
}

impl Register {
    #[must_use]
    pub fn new(repository: Repository, project: Project) -> Self {
        Self {
            api_version: API_VERSION.into(),
            kind: KIND.into(),
            repository,
            project,
            last_number: 0,
            releases: Vec::new(),
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
        if register.api_version != API_VERSION || register.kind != KIND {
            return Err(invalid(format!(
                "apiVersion/kind are {}/{}: expected {API_VERSION}/{KIND}",
                register.api_version, register.kind
            )));
        }
        if register.repository != *repository || register.project != *project {
            return Err(invalid(format!(
                "it describes {}/{}: expected {repository}/{project}",
                register.repository, register.project
            )));
        }
        Ok(register)
    }

    /// The register as YAML, as committed.
    #[must_use]
    pub fn to_yaml(&self) -> String {
        serde_saphyr::to_string(self).expect("a register serialises")
    }

    #[must_use]
    pub fn full_name(&self) -> String {
        format!("{}/{}", self.repository, self.project)
    }

    #[must_use]
    pub fn find_commit(&self, commit: &CommitSha) -> Option<&Entry> {
        self.releases.iter().find(|e| e.commit == *commit)
    }

    /// The number the next new release gets.
    #[must_use]
    pub fn next_number(&self) -> u64 {
        let highest = self.releases.iter().map(|e| e.number).max().unwrap_or(0);
        self.last_number.max(highest) + 1
    }

    /// Fails when `alias` already names a release other than `commit`'s.
    pub fn check_alias_free(&self, alias: &str, commit: &CommitSha) -> Result<(), RegisterError> {
        match self
            .releases
            .iter()
            .find(|e| e.commit != *commit && e.aliases.iter().any(|a| a.alias == alias))
        {
            Some(other) => Err(RegisterError::AliasTaken {
                alias: alias.to_owned(),
                number: other.number,
                commit: other.commit.to_string(),
                project: self.full_name(),
                wanted: commit.to_string(),
            }),
            None => Ok(()),
        }
    }

    /// Adds a new release with the next number. The caller built the image for `number`.
    pub fn add(&mut self, entry: Entry) -> Result<(), RegisterError> {
        for a in &entry.aliases {
            self.check_alias_free(&a.alias, &entry.commit)?;
        }
        self.last_number = self.last_number.max(entry.number);
        self.releases.push(entry);
        Ok(())
    }

    /// Merges aliases and a trigger into an existing release; returns whether anything changed.
    pub fn merge(
        &mut self,
        commit: &CommitSha,
        aliases: &[Alias],
        trigger: Option<RegisteredTrigger>,
    ) -> Result<bool, RegisterError> {
        for a in aliases {
            self.check_alias_free(&a.alias, commit)?;
        }
        let entry = self
            .releases
            .iter_mut()
            .find(|e| e.commit == *commit)
            .expect("merge is called for a registered commit");
        let mut changed = false;
        for a in aliases {
            if !entry.aliases.iter().any(|x| x.alias == a.alias) {
                entry.aliases.push(a.clone());
                changed = true;
            }
        }
        if let Some(t) = trigger
            && !entry.triggers.iter().any(|x| x.same_event(&t))
        {
            entry.triggers.push(t);
            changed = true;
        }
        Ok(changed)
    }

    /// Resolves a release id as a person gives it: exact alias → number → unique commit
    /// prefix (at least 7 hex digits) → error.
    pub fn resolve(&self, id: &ReleaseSelector) -> Result<&Entry, RegisterError> {
        let id = id.as_str();
        if let Some(e) = self
            .releases
            .iter()
            .find(|e| e.aliases.iter().any(|a| a.alias == id))
        {
            return Ok(e);
        }
        if let Ok(n) = id.parse::<u64>()
            && let Some(e) = self.releases.iter().find(|e| e.number == n)
        {
            return Ok(e);
        }
        if id.len() >= 7 && crate::digest::is_lower_hex(id) {
            let found: Vec<&Entry> = self
                .releases
                .iter()
                .filter(|e| e.commit.as_str().starts_with(id))
                .collect();
            match found.as_slice() {
                [one] => return Ok(one),
                [] => {}
                many => {
                    return Err(RegisterError::Ambiguous {
                        id: id.to_owned(),
                        project: self.full_name(),
                        candidates: many
                            .iter()
                            .map(|e| format!("{} (release {})", e.commit, e.number))
                            .collect::<Vec<_>>()
                            .join(", "),
                    });
                }
            }
        }
        Err(RegisterError::NotFound {
            id: id.to_owned(),
            project: self.full_name(),
        })
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
    use super::*;

    /// Resolves selectors given as text, as the command line parses them.
    struct Resolver(Register);

    impl Resolver {
        fn resolve(&self, id: &str) -> Result<&Entry, RegisterError> {
            self.0.resolve(&id.parse().unwrap())
        }
    }

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

    fn commit(c: char) -> CommitSha {
        c.to_string().repeat(40).parse().unwrap()
    }

    fn entry(number: u64, c: CommitSha, aliases: &[&str]) -> Entry {
        Entry {
            number,
            commit: c,
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

    fn register() -> Register {
        let mut r = Register::new(
            "company/monorepo".parse().unwrap(),
            "auth-service".parse().unwrap(),
        );
        r.add(entry(
            1,
            "abcdef1000000000000000000000000000000000".parse().unwrap(),
            &["v1.0.0"],
        ))
        .unwrap();
        r.add(entry(
            2,
            "abcdef2000000000000000000000000000000000".parse().unwrap(),
            &["7"],
        ))
        .unwrap();
        r.add(entry(7, commit('c'), &["main-7"])).unwrap();
        r
    }

    #[test]
    fn resolution_prefers_alias_then_number_then_commit_prefix() {
        let r = Resolver(register());
        assert_eq!(r.resolve("v1.0.0").unwrap().number, 1);
        // "7" is an alias of release 2 and the number of release 7: the alias wins.
        assert_eq!(r.resolve("7").unwrap().number, 2);
        assert_eq!(r.resolve("1").unwrap().number, 1);
        assert_eq!(r.resolve("ccccccc").unwrap().number, 7);
        assert_eq!(r.resolve("abcdef1").unwrap().number, 1);
    }

    #[test]
    fn ambiguous_prefixes_list_their_candidates_and_unknown_ids_fail() {
        let r = Resolver(register());
        let e = r.resolve("abcdef").unwrap_err();
        assert!(
            matches!(e, RegisterError::NotFound { .. }),
            "6 digits are too few: {e}"
        );
        let e = r.resolve("abcdef0").unwrap_err();
        assert!(matches!(e, RegisterError::NotFound { .. }));
        let mut r = r.0;
        r.add(entry(
            8,
            "abcdef1100000000000000000000000000000000".parse().unwrap(),
            &[],
        ))
        .unwrap();
        let r = Resolver(r);
        let msg = r.resolve("abcdef1").unwrap_err().to_string();
        assert!(
            msg.contains("ambiguous") && msg.contains("release 1") && msg.contains("release 8"),
            "{msg}"
        );
        assert!(matches!(
            r.resolve("v9").unwrap_err(),
            RegisterError::NotFound { .. }
        ));
    }

    #[test]
    fn numbers_are_never_reused_even_after_an_entry_is_removed() {
        let mut r = register();
        assert_eq!(r.next_number(), 8);
        r.releases.retain(|e| e.number != 7);
        assert_eq!(r.next_number(), 8);
    }

    #[test]
    fn an_alias_may_name_only_one_release() {
        let mut r = register();
        let e = r.add(entry(8, commit('d'), &["v1.0.0"])).unwrap_err();
        assert!(
            matches!(e, RegisterError::AliasTaken { number: 1, .. }),
            "{e}"
        );
    }

    #[test]
    fn merging_adds_only_new_aliases_and_triggers() {
        let mut r = register();
        let c = commit('c');
        let t = RegisteredTrigger {
            kind: Some(TriggerType::Tag),
            branch: None,
            tag: Some("auth-service/v2.0.0".into()),
            triggered_by: None,
            at: "x".into(),
        };
        let alias = Alias {
            alias: "v2.0.0".into(),
            kind: AliasType::Tag,
        };
        assert!(
            r.merge(&c, std::slice::from_ref(&alias), Some(t.clone()))
                .unwrap()
        );
        assert!(
            !r.merge(
                &c,
                &[alias],
                Some(RegisteredTrigger {
                    at: "later".into(),
                    ..t
                })
            )
            .unwrap()
        );
        assert_eq!(Resolver(r).resolve("v2.0.0").unwrap().number, 7);
    }

    #[test]
    fn the_register_round_trips_through_yaml() {
        let r = register();
        let yaml = r.to_yaml();
        let back = Register::parse("r.yaml", yaml.as_bytes(), &r.repository, &r.project).unwrap();
        assert_eq!(back, r);
        let other: Project = "billing".parse().unwrap();
        assert!(Register::parse("r.yaml", yaml.as_bytes(), &r.repository, &other).is_err());
    }
}
