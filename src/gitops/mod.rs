//! The GitOps repository as the system of record (docs/design.md §4, §7).
//!
//! - [`remote`]: the URL (credentials split off), authentication, the locked cache clone,
//!   fetch;
//! - [`snapshot`]: reading files, listings and history at a commit, without a working tree;
//! - [`push`]: a commit built in memory, pushed without force, per-ref status checked;
//! - [`txn`]: the one write loop (fetch → decide → commit → push → retry on a lost race);
//! - [`batch`]: the same loop for many requests: one fetch, a chain of commits, one push;
//! - [`layout`]: which path holds what, and the readers of the typed files there;
//! - [`register`]: the release register and finding a project's register;
//! - [`lazy`]: fetching only what is read, over `git://` (protocol v2, filters, shallow);
//! - [`wire`]: the git protocol spoken directly over `git://` (a push of only the new objects).
//!
//! Nothing here reads the process environment or knows the command line: callers pass a
//! [`Remote`]. Authentication failures fail at once; no credential ever reaches a message.

pub mod batch;
pub mod layout;
pub mod lazy;
pub mod notes;
pub mod push;
pub mod register;
pub mod remote;
pub mod sign;
pub mod snapshot;
pub mod txn;
pub mod wire;

pub use push::{Author, Edit, PushOutcome};
pub use register::{ProjectRef, ReleaseSelector, find_register};
pub use remote::Committer;
pub use remote::{Auth, GitOps, Remote, Url};
pub use snapshot::{CommitInfo, History, PathChange, Snapshot};
pub use txn::{Landed, Step};

impl GitOps {
    /// Fetches the branch and reads one project's register at its tip (the read-only commands'
    /// first step).
    pub fn fetch_register(
        &self,
        project: &ProjectRef,
    ) -> crate::exit::Result<(Snapshot<'_>, register::Register)> {
        let tip = self.fetch()?;
        let register = find_register(self, &tip, project)?;
        Ok((tip, register))
    }
}

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
    /// Remote failures (a push the server refused included, on any transport) exit 5; a bad
    /// file in the repository is invalid input (2).
    #[must_use]
    pub fn is_remote(&self) -> bool {
        matches!(
            self,
            Self::Auth { .. } | Self::Remote { .. } | Self::Refused { .. } | Self::Contended { .. }
        )
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

// A libgit2 failure outside the remote operations (which map to [`GitError`]) is local.
crate::exit_class!(git2::Error => Other);
