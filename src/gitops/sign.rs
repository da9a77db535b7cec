//! Who signed a commit of the GitOps repository (its `gpgsig` header, see
//! `crate::signing::commit_signer`).

use super::GitOps;
use crate::signing::CommitSigner;

impl GitOps {
    /// The SSH signature of commit `oid`, checked against the commit's content.
    #[must_use]
    pub fn commit_signer(&self, oid: git2::Oid) -> CommitSigner {
        crate::signing::commit_signer(&self.repo, oid)
    }
}
