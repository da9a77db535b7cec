//! How to reach registries and how long to try: the settings every store shares.
//!
//! Invariant: one [`StoreOptions`] carries one deadline, so every request made with it (reads,
//! token requests, uploads) ends by the same instant.

use std::path::PathBuf;
use std::time::{Duration, Instant};

/// How to reach registries, and how long to try.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Hosts (`host:port`) spoken to over plain HTTP.
    pub insecure: Vec<String>,
    /// Extra trusted CA certificates (PEM).
    pub ca_file: Option<PathBuf>,
    /// The whole operation's budget, and the instant it ends.
    pub timeout: Duration,
    pub deadline: Instant,
    pub connect_timeout: Duration,
    pub read_timeout: Duration,
    /// Tries per request, the first included.
    pub attempts: u32,
    /// Where registry credentials come from (filled by the settings).
    pub credentials: crate::credentials::Sources,
}

impl StoreOptions {
    #[must_use]
    pub fn new(insecure: Vec<String>, ca_file: Option<PathBuf>, timeout: Duration) -> Self {
        Self {
            insecure,
            ca_file,
            timeout,
            deadline: Instant::now() + timeout,
            connect_timeout: Duration::from_secs(5).min(timeout),
            read_timeout: Duration::from_secs(15).min(timeout),
            attempts: 4,
            credentials: crate::credentials::Sources::default(),
        }
    }
}
