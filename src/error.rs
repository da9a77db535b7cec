//! Exit codes, a contract with pipelines (DESIGN.md §10, README "Exit codes").
//!
//! 0 success (a no-op included); 2 usage or invalid input; 3 verification failed;
//! 4 refused by policy; 5 remote failure; 1 anything else.

use crate::archive::ArchiveError;
use crate::credentials::CredentialsError;
use crate::format::FormatError;
use crate::gitops::GitError;
use crate::gitops::register::RegisterError;
use crate::manifests::ManifestError;
use crate::oci::OciError;
use crate::oci::reference::ReferenceError;
use crate::pointer::PointerError;
use crate::release::ReleaseError;

pub const USAGE: u8 = 2;
pub const VERIFY: u8 = 3;
pub const POLICY: u8 = 4;
pub const REMOTE: u8 = 5;
pub const OTHER: u8 = 1;

/// `s` made safe for a one-line message: control characters (newlines included) escaped,
/// at most `max` characters kept. Hostile input must not forge extra log lines.
#[must_use]
pub fn printable(s: &str, max: usize) -> String {
    let escaped: String = s.escape_debug().collect();
    if escaped.chars().count() <= max {
        escaped
    } else {
        let mut out: String = escaped.chars().take(max.saturating_sub(3)).collect();
        out.push_str("...");
        out
    }
}

/// Input a person or pipeline gave us that we cannot use.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct InvalidInput(pub String);

/// The exit code for an error: the first cause in the chain that we can classify decides.
#[must_use]
pub fn exit_code(err: &anyhow::Error) -> u8 {
    for cause in err.chain() {
        if cause.is::<crate::cmd::deploy::Refused>() || cause.is::<crate::cmd::check::Violations>()
        {
            return POLICY;
        }
        if cause.is::<crate::policy::PolicyError>() || cause.is::<crate::approvals::ApprovalError>()
        {
            return USAGE;
        }
        if cause.is::<InvalidInput>()
            || cause.is::<PointerError>()
            || cause.is::<ReferenceError>()
            || cause.is::<ManifestError>()
            || cause.is::<crate::ids::InvalidId>()
            || cause.is::<RegisterError>()
        {
            return USAGE;
        }
        if let Some(e) = cause.downcast_ref::<ReleaseError>() {
            return match e {
                ReleaseError::Oci(o) => oci_code(o),
                _ => VERIFY,
            };
        }
        if let Some(e) = cause.downcast_ref::<OciError>() {
            return oci_code(e);
        }
        if cause.is::<FormatError>() || cause.is::<ArchiveError>() {
            return VERIFY;
        }
        if let Some(e) = cause.downcast_ref::<GitError>() {
            return if e.is_remote() {
                REMOTE
            } else if matches!(e, GitError::BadFile { .. }) {
                USAGE
            } else {
                OTHER
            };
        }
        if cause.is::<CredentialsError>() {
            return REMOTE;
        }
    }
    OTHER
}

fn oci_code(e: &OciError) -> u8 {
    if e.is_verification() {
        VERIFY
    } else if e.is_remote() {
        REMOTE
    } else {
        OTHER
    }
}
