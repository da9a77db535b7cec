//! The GitOps repository as the system of record (DESIGN.md §4, §7).
//!
//! Invariants:
//! - no working tree: files are read from the branch tip's tree, and commits are built in
//!   memory by editing only the changed paths (`TreeUpdateBuilder`), so the cost of a write
//!   grows with what changed, not with the repository;
//! - pushes never force; a push counts as done only when the server accepted every ref
//!   (libgit2 returns `Ok` for a server-side rejection: the per-ref status in
//!   `push_update_reference` is checked);
//! - on rejection the caller re-derives its change from the new tip (never rebases someone
//!   else's commit), with jittered exponential backoff, bounded in count and time;
//! - authentication failures fail at once; no credential ever reaches a message.

pub mod register;
pub mod repo;

use crate::exit::InvalidInput;
use crate::ids::{Project, Repository};

pub use repo::{Edit, GitOps, History, Identity, PathChange, PushOutcome, Snapshot, Txn};

/// What went wrong talking to the GitOps repository.
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    #[error("gitops repository {url}: authentication failed: check the credentials for it")]
    Auth { url: String },
    #[error("gitops repository {url}: {operation} failed: {reason}")]
    Remote {
        url: String,
        operation: &'static str,
        reason: String,
    },
    #[error("gitops repository {url}: the server refused the push: {reason}")]
    Refused { url: String, reason: String },
    #[error("gitops repository {url}: push rejected {attempts} times (last: {last}); gave up")]
    Contended {
        url: String,
        attempts: u32,
        last: String,
    },
    #[error("gitops cache {path}: {reason}")]
    Local {
        path: std::path::PathBuf,
        reason: String,
    },
    #[error("gitops repository {url}: {path} at {commit}: {reason}")]
    BadFile {
        url: String,
        path: String,
        commit: String,
        reason: String,
    },
}

impl GitError {
    /// Remote failures exit 5; a bad file in the repository is invalid input (2).
    #[must_use]
    pub fn is_remote(&self) -> bool {
        matches!(
            self,
            Self::Auth { .. } | Self::Remote { .. } | Self::Contended { .. }
        )
    }
}

/// Finds a project's register: `repository/project` directly, or a bare project name that
/// must be unique across repositories.
pub fn find_register(
    gitops: &GitOps,
    tip: &Snapshot<'_>,
    project: &str,
) -> crate::exit::Result<register::Register> {
    let read = |path: &str| -> Result<Option<Vec<u8>>, GitError> {
        tip.read(path).map_err(|e| GitError::BadFile {
            url: gitops.url().to_owned(),
            path: path.to_owned(),
            commit: tip.tip_str(),
            reason: e.message().to_owned(),
        })
    };
    let (repository, name) = if let Some((repo, name)) = project.rsplit_once('/') {
        let repository: Repository = repo.parse()?;
        let name: Project = name.parse()?;
        (repository, name)
    } else {
        let name: Project = project.parse()?;
        let suffix = format!("/{name}.yaml");
        let all = tip.list("releases").map_err(|e| GitError::BadFile {
            url: gitops.url().to_owned(),
            path: "releases".into(),
            commit: tip.tip_str(),
            reason: e.message().to_owned(),
        })?;
        let matches: Vec<&String> = all.iter().filter(|p| p.ends_with(&suffix)).collect();
        let repository = match matches.as_slice() {
            [one] => one["releases/".len()..one.len() - suffix.len()].parse::<Repository>()?,
            [] => {
                return Err(InvalidInput(format!(
                    "no project {name} is registered in {} (branch {})",
                    gitops.url(),
                    gitops.branch()
                ))
                .into());
            }
            many => {
                let names: Vec<String> = many
                    .iter()
                    .map(|p| p["releases/".len()..p.len() - ".yaml".len()].to_owned())
                    .collect();
                return Err(InvalidInput(format!(
                    "project {name} is ambiguous: expected one of {}",
                    names.join(", ")
                ))
                .into());
            }
        };
        (repository, name)
    };
    let path = register::path(&repository, &name);
    match read(&path)? {
        Some(bytes) => Ok(register::Register::parse(
            &path,
            &bytes,
            &repository,
            &name,
        )?),
        None => Err(InvalidInput(format!(
            "no project {repository}/{name} is registered in {} (no {path})",
            gitops.url()
        ))
        .into()),
    }
}

impl crate::exit::Classify for GitError {
    fn exit(&self) -> crate::exit::Exit {
        if self.is_remote() {
            crate::exit::Exit::Remote
        } else if matches!(self, Self::BadFile { .. }) {
            crate::exit::Exit::Usage
        } else {
            crate::exit::Exit::Other
        }
    }
}

/// A libgit2 failure outside the remote operations (which map to [`GitError`]) is local.
impl crate::exit::Classify for git2::Error {
    fn exit(&self) -> crate::exit::Exit {
        crate::exit::Exit::Other
    }
}
