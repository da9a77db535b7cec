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
