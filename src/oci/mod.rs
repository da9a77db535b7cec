//! Reading and writing release images, in registries and OCI image layouts.
//!
//! Invariant: no byte read from a store leaves this module before its size and digest were
//! checked against the descriptor that named it. Declared sizes are checked against caps
//! before any download starts; bodies are read with a hard cap at the declared size.

mod auth;
pub mod layout;
mod options;
mod push;
pub mod reference;
pub mod registry;
pub mod store;
mod transport;

use std::path::PathBuf;

use crate::digest::Digest;
use crate::format::FormatError;

pub use options::StoreOptions;
pub use reference::{ImageRef, RegistryBase};
pub use store::Store;

/// What went wrong reading or writing an image.
#[derive(Debug, thiserror::Error)]
pub enum OciError {
    #[error("{what} digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch {
        what: String,
        expected: Digest,
        actual: Digest,
    },
    #[error("{what} is truncated: expected {expected} bytes, got {actual}")]
    Truncated {
        what: String,
        expected: u64,
        actual: u64,
    },
    #[error("{what} is longer than its descriptor says: expected {expected} bytes, got more")]
    Overlong { what: String, expected: u64 },
    #[error("{what} is over the limit of {limit} bytes: {actual} bytes")]
    TooLarge {
        what: String,
        limit: u64,
        actual: u64,
    },
    #[error(transparent)]
    Format(#[from] FormatError),
    #[error("invalid OCI layout {}: {}", .path.display(), crate::text::printable(.reason, 600))]
    BadLayout { path: PathBuf, reason: String },
    #[error("{what} not found")]
    NotFound { what: String },
    #[error("{what}: authentication failed ({status}): check the credentials for {host}")]
    Unauthorized {
        what: String,
        host: String,
        status: u16,
    },
    #[error("{what}: registry answered {status}{}", crate::text::printable(.detail, 300))]
    Status {
        what: String,
        status: u16,
        detail: String,
    },
    #[error("{what}: cannot reach {host}: {reason}")]
    Unreachable {
        what: String,
        host: String,
        reason: String,
    },
    #[error("{what}: gave up after {attempts} attempts: {last}")]
    RetriesExhausted {
        what: String,
        attempts: u32,
        last: String,
    },
    #[error("{what}: deadline of {seconds} s exceeded")]
    Deadline { what: String, seconds: u64 },
    #[error("{what}: cannot get a token for {host}: {}", crate::text::printable(.reason, 600))]
    Token {
        what: String,
        host: String,
        reason: String,
    },
    #[error("{what}: unusable answer from {host}: {}", crate::text::printable(.reason, 600))]
    Protocol {
        what: String,
        host: String,
        reason: String,
    },
    #[error("cannot set up the registry client for {host}: {reason}")]
    Client { host: String, reason: String },
    #[error(transparent)]
    Credentials(#[from] crate::credentials::CredentialsError),
    #[error("{path}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl OciError {
    /// True when the image itself is bad (exit 3), rather than the way to it (exit 5).
    #[must_use]
    pub fn is_verification(&self) -> bool {
        matches!(
            self,
            Self::DigestMismatch { .. }
                | Self::Truncated { .. }
                | Self::Overlong { .. }
                | Self::TooLarge { .. }
                | Self::Format(_)
                | Self::BadLayout { .. }
        )
    }

    /// True for failures of the remote: unreachable, refused, missing, too slow.
    #[must_use]
    pub fn is_remote(&self) -> bool {
        matches!(
            self,
            Self::NotFound { .. }
                | Self::Unauthorized { .. }
                | Self::Token { .. }
                | Self::Protocol { .. }
                | Self::Status { .. }
                | Self::Unreachable { .. }
                | Self::RetriesExhausted { .. }
                | Self::Deadline { .. }
                | Self::Credentials(_)
        )
    }
}

/// Checks `bytes` against the size and digest that named them.
pub fn check_blob(what: &str, bytes: &[u8], size: u64, digest: &Digest) -> Result<(), OciError> {
    check_blob_hashed(what, bytes, size, digest, || Digest::of(bytes))
}

/// As [`check_blob`], with the digest of `bytes` computed by `hashed` (for instance while the
/// bytes were downloaded), after the size checks.
pub fn check_blob_hashed(
    what: &str,
    bytes: &[u8],
    size: u64,
    digest: &Digest,
    hashed: impl FnOnce() -> Digest,
) -> Result<(), OciError> {
    let actual = bytes.len() as u64;
    if actual < size {
        return Err(OciError::Truncated {
            what: what.to_owned(),
            expected: size,
            actual,
        });
    }
    if actual > size {
        return Err(OciError::Overlong {
            what: what.to_owned(),
            expected: size,
        });
    }
    let got = hashed();
    if &got != digest {
        return Err(OciError::DigestMismatch {
            what: what.to_owned(),
            expected: digest.clone(),
            actual: got,
        });
    }
    Ok(())
}

impl crate::exit::Classify for OciError {
    fn exit(&self) -> crate::exit::Exit {
        if self.is_verification() {
            crate::exit::Exit::Verify
        } else if self.is_remote() {
            crate::exit::Exit::Remote
        } else {
            crate::exit::Exit::Other
        }
    }
}
