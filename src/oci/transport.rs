//! The HTTP client for one registry host and the rules every request follows: one deadline,
//! bounded retries only where another try can help, capped bodies, errors without URLs.
//!
//! Retried: 429 (after `Retry-After`), 5xx, resets and refused connections. Never retried:
//! 401/403/404, certificates that do not verify, a registry that does not speak TLS. Every try
//! runs under the time left to the run's one deadline. reqwest errors lose their URL before
//! they are shown, since a redirect target may be a pre-signed URL; cross-host redirects are
//! followed without the `Authorization` header (reqwest strips it, CVE-2020-15157 is the
//! cautionary tale).

use std::time::{Duration, Instant};

use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE, RETRY_AFTER};
use reqwest::{Response, StatusCode};
use tokio::sync::OnceCell;

use super::OciError;
use super::options::StoreOptions;
use crate::digest::Digest;

/// Why one attempt did not succeed: worth another try, or final.
pub enum Failure {
    Transient {
        reason: String,
        after: Option<Duration>,
    },
    Final(OciError),
}

impl From<OciError> for Failure {
    fn from(e: OciError) -> Self {
        Self::Final(e)
    }
}

/// What one attempt came to.
pub type Attempt<T> = Result<T, Failure>;

/// A response body read whole, with its sha256 computed while it arrived.
pub struct Fetched {
    pub body: Vec<u8>,
    pub content_type: Option<String>,
    pub digest: Digest,
}

/// How much of an error body is read for the registry's error code.
const ERROR_BODY_CAP: u64 = 4096;

/// The connection to one registry host.
pub struct Transport {
    host: String,
    scheme: &'static str,
    options: StoreOptions,
    http: OnceCell<reqwest::Client>,
}

impl Transport {
    #[must_use]
    pub fn new(host: &str, options: &StoreOptions) -> Self {
        let insecure = options.insecure.iter().any(|h| h == host);
        Self {
            host: host.to_owned(),
            scheme: if insecure { "http" } else { "https" },
            options: options.clone(),
            http: OnceCell::new(),
        }
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    /// True when the host was named an insecure (plain-HTTP) registry.
    pub fn is_insecure(&self) -> bool {
        self.scheme == "http"
    }

    /// `scheme://host/v2/{rest}`.
    pub fn url(&self, rest: &str) -> String {
        format!("{}://{}/v2/{rest}", self.scheme, self.host)
    }

    pub fn client_error(&self, reason: impl std::fmt::Display) -> OciError {
        OciError::Client {
            host: self.host.clone(),
            reason: reason.to_string(),
        }
    }

    fn ca_pem(&self) -> Result<Option<Vec<u8>>, OciError> {
        match &self.options.ca_file {
            Some(path) => std::fs::read(path)
                .map(Some)
                .map_err(|source| OciError::Io {
                    path: path.clone(),
                    source,
                }),
            None => Ok(None),
        }
    }

    pub async fn http(&self) -> Result<&reqwest::Client, OciError> {
        self.http
            .get_or_try_init(|| async {
                crate::tls::install_provider();
                let mut builder = reqwest::Client::builder()
                    .connect_timeout(self.options.connect_timeout)
                    .read_timeout(self.options.read_timeout)
                    .user_agent(concat!("releasectl/", env!("CARGO_PKG_VERSION")));
                // A plain-HTTP registry needs no trust store: skip loading the system's
                // certificates (a cost on every cold generate).
                if self.is_insecure() {
                    builder = builder.tls_certs_only(Vec::new());
                }
                if let Some(pem) = self.ca_pem()? {
                    let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                        self.client_error(format!("bad CA file: {}", e.without_url()))
                    })?;
                    builder = builder.tls_certs_merge(certs);
                }
                builder
                    .build()
                    .map_err(|e| self.client_error(e.without_url()))
            })
            .await
    }

    fn remaining(&self, what: &str) -> Result<Duration, OciError> {
        self.options
            .deadline
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
            .ok_or_else(|| self.deadline_error(what))
    }

    fn deadline_error(&self, what: &str) -> OciError {
        OciError::Deadline {
            what: format!("{what} (from {})", self.host),
            seconds: self.options.timeout.as_secs(),
        }
    }

    /// Runs `attempt` until it is done, fails for good, or retries and time run out. Only
    /// operations that are safe to repeat go through here.
    pub async fn with_retries<T, F, Fut>(&self, what: &str, mut attempt: F) -> Result<T, OciError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Attempt<T>>,
    {
        let mut tries = 0;
        loop {
            tries += 1;
            let remaining = self.remaining(what)?;
            let outcome = tokio::time::timeout(remaining, attempt())
                .await
                .map_err(|_| self.deadline_error(what))?;
            match outcome {
                Ok(v) => return Ok(v),
                Err(Failure::Final(e)) => return Err(e),
                Err(Failure::Transient { reason, after }) => {
                    if tries >= self.options.attempts {
                        return Err(OciError::RetriesExhausted {
                            what: what.to_owned(),
                            attempts: tries,
                            last: reason,
                        });
                    }
                    let delay = after
                        .unwrap_or_else(|| {
                            crate::retry::backoff(
                                tries,
                                Duration::from_millis(200),
                                Duration::from_secs(3),
                            )
                        })
                        .min(Duration::from_secs(10));
                    if delay >= self.remaining(what)? {
                        return Err(OciError::RetriesExhausted {
                            what: what.to_owned(),
                            attempts: tries,
                            last: format!("{reason}; the next try would pass the deadline"),
                        });
                    }
                    crate::log::debug(&format!("{what}: {reason}; retrying in {delay:?}"));
                    tokio::time::sleep(delay).await;
                }
            }
        }
    }

    /// What a request that failed before an answer came to.
    pub fn transport_failure<T>(&self, what: &str, e: &reqwest::Error) -> Attempt<T> {
        let reason = error_chain(e);
        // A certificate that does not verify will not verify on the next try either.
        // Likewise a registry that does not speak TLS at all (plain HTTP without
        // --insecure-registry) answers every handshake with garbage.
        if [
            "certificate",
            "UnknownIssuer",
            "InvalidContentType",
            "corrupt message",
        ]
        .iter()
        .any(|m| reason.contains(m))
        {
            return Err(Failure::Final(OciError::Unreachable {
                what: what.to_owned(),
                host: self.host.clone(),
                reason,
            }));
        }
        if e.is_connect() && !e.is_timeout() {
            // Refused or unresolvable: retrying a dead registry only burns the deadline,
            // but a registry restarting is common enough to try again.
            return Err(Failure::Transient {
                reason: format!("cannot reach {}: {reason}", self.host),
                after: None,
            });
        }
        if e.is_builder() || e.is_redirect() {
            return Err(Failure::Final(OciError::Unreachable {
                what: what.to_owned(),
                host: self.host.clone(),
                reason,
            }));
        }
        Err(Failure::Transient {
            reason: format!("{reason} (from {})", self.host),
            after: None,
        })
    }

    /// What an answer that is not a success means: refused (401/403), missing (404), worth
    /// another try (429, 5xx), or another final status, named with the registry's error code
    /// when its body gives one.
    pub async fn refusal<T>(&self, what: &str, response: Response) -> Attempt<T> {
        let status = response.status();
        match status {
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                Err(Failure::Final(OciError::Unauthorized {
                    what: what.to_owned(),
                    host: self.host.clone(),
                    status: status.as_u16(),
                }))
            }
            StatusCode::NOT_FOUND => Err(Failure::Final(OciError::NotFound {
                what: what.to_owned(),
            })),
            s if s == StatusCode::TOO_MANY_REQUESTS || s.is_server_error() => {
                let after = response
                    .headers()
                    .get(RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| crate::retry::retry_after(v, jiff::Timestamp::now()));
                Err(Failure::Transient {
                    reason: format!("registry answered {}", status.as_u16()),
                    after,
                })
            }
            s if s.is_redirection() => {
                // reqwest follows http(s) redirects itself: one that reaches here goes
                // elsewhere (`file:`, `ftp:`) or nowhere. Its query may be a signature.
                let target = response
                    .headers()
                    .get(reqwest::header::LOCATION)
                    .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
                let reason = match target {
                    Some(t) => format!(
                        "redirect ({}) to \"{}\": expected an http(s) location",
                        status.as_u16(),
                        crate::text::excerpt(t.split('?').next().unwrap_or_default())
                    ),
                    None => format!(
                        "redirect ({}) without a Location: expected an http(s) location",
                        status.as_u16()
                    ),
                };
                Err(Failure::Final(OciError::Protocol {
                    what: what.to_owned(),
                    host: self.host.clone(),
                    reason,
                }))
            }
            _ => {
                let code = match self.read_capped(response, what, ERROR_BODY_CAP).await {
                    Ok(f) => error_code(&f.body),
                    _ => None,
                };
                Err(Failure::Final(OciError::Status {
                    what: what.to_owned(),
                    status: status.as_u16(),
                    detail: code.map(|c| format!(" ({c})")).unwrap_or_default(),
                }))
            }
        }
    }

    /// Reads a body whole, refusing one over `cap` bytes (by `Content-Length` before reading,
    /// by the running count while reading) and hashing it as it arrives.
    pub async fn read_capped(
        &self,
        mut response: Response,
        what: &str,
        cap: u64,
    ) -> Attempt<Fetched> {
        let content_type = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|s| s.split(';').next().unwrap_or(s).trim().to_owned());
        let declared = declared_length(&response);
        if let Some(len) = declared
            && len > cap
        {
            return Err(Failure::Final(OciError::TooLarge {
                what: what.to_owned(),
                limit: cap,
                actual: len,
            }));
        }
        let mut body = Vec::with_capacity(declared.unwrap_or(0).min(cap) as usize);
        // Hashed as it arrives: the digest is ready when the last byte is.
        let mut hasher = sha2::Sha256::default();
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    if (body.len() + chunk.len()) as u64 > cap {
                        return Err(Failure::Final(OciError::TooLarge {
                            what: what.to_owned(),
                            limit: cap,
                            actual: (body.len() + chunk.len()) as u64,
                        }));
                    }
                    sha2::Digest::update(&mut hasher, &chunk);
                    body.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(e) => return self.transport_failure(what, &e),
            }
        }
        Ok(Fetched {
            body,
            content_type,
            digest: Digest::from_hasher(hasher),
        })
    }
}

/// The `Content-Length` header's value (also on a `HEAD` answer, which has no body).
pub fn declared_length(response: &Response) -> Option<u64> {
    response
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
}

/// The first error code of a registry error body (`{"errors":[{"code":"MANIFEST_INVALID"}]}`),
/// if it is a plain upper-case identifier: server text never reaches a message otherwise.
fn error_code(body: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    let code = value.get("errors")?.get(0)?.get("code")?.as_str()?;
    (!code.is_empty()
        && code.len() <= 64
        && code.bytes().all(|b| b.is_ascii_uppercase() || b == b'_'))
    .then(|| code.to_owned())
}

/// The error and its causes, without any URL (a redirect target may carry a signature).
pub fn error_chain(e: &reqwest::Error) -> String {
    use std::error::Error as _;
    let mut out = String::new();
    let mut source = e.source();
    while let Some(s) = source {
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&s.to_string());
        source = s.source();
    }
    if out.is_empty() {
        if e.is_timeout() {
            "timed out".into()
        } else {
            "request failed".into()
        }
    } else {
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_registry_error_code_is_kept_only_when_it_is_a_plain_identifier() {
        let body = br#"{"errors":[{"code":"MANIFEST_INVALID","message":"x"}]}"#;
        assert_eq!(error_code(body).as_deref(), Some("MANIFEST_INVALID"));
        assert_eq!(error_code(br#"{"errors":[{"code":"evil\nline"}]}"#), None);
        assert_eq!(error_code(b"<html>"), None);
    }
}
