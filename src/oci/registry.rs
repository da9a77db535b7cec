//! A registry, read through our own verifying HTTP reader and written through oci-client.
//!
//! Why not oci-client for reads: its blob pull hands bytes to the caller before the digest
//! check, never compares the descriptor size, reads manifests of any size, resolves image
//! indexes to a platform silently and falls back to a descriptor's `urls`. Here every GET is
//! capped (by `Content-Length` before reading, by the running count while reading), retried
//! only when it is safe (429, 5xx, connection failures; never 401/403/404), bounded by one
//! deadline, and nothing is returned before it matched its size and digest. Token
//! negotiation is oci-client's (`Client::auth`), so bearer auth works as it does there.
//! Cross-host redirects are followed without the `Authorization` header (reqwest strips it,
//! CVE-2020-15157 is the cautionary tale), and reqwest errors lose their URL before they are
//! shown, since a redirect target may be a pre-signed URL.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine as _;
use oci_client::client::{Certificate, CertificateEncoding, ClientConfig, ClientProtocol};
use oci_client::secrets::RegistryAuth;
use oci_client::{Reference, RegistryOperation};
use reqwest::StatusCode;
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_LENGTH, HeaderValue, RETRY_AFTER};
use tokio::sync::OnceCell;

use super::OciError;
use super::store::StoreOptions;
use crate::credentials::{self, Credentials};
use crate::digest::Digest;
use crate::format::{
    DOCKER_LIST_MEDIA_TYPE, DOCKER_MANIFEST_MEDIA_TYPE, INDEX_MEDIA_TYPE, MANIFEST_MEDIA_TYPE,
};

/// Manifest types we ask for. Indexes are asked for too, so that a registry serving one is
/// recognised and refused by name instead of failing as "not found".
const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json";

/// A response body read whole, with its sha256 computed while it arrived.
struct Fetched {
    body: Vec<u8>,
    content_type: Option<String>,
    digest: Digest,
}

/// One repository in one registry.
pub struct Registry {
    host: String,
    path: String,
    scheme: &'static str,
    options: StoreOptions,
    creds: Option<Credentials>,
    http: OnceCell<reqwest::Client>,
    oci: OnceCell<oci_client::Client>,
    /// The `Authorization` header value for reads, once known.
    auth_header: Mutex<Option<HeaderValue>>,
    /// Whether a 401 already led to a token negotiation (we try once).
    negotiated: Mutex<bool>,
}

/// What one attempt came to: done, worth another try, or final.
enum Attempt<T> {
    Retry {
        reason: String,
        after: Option<Duration>,
    },
    Fatal(OciError),
    Done(T),
}

impl Registry {
    pub fn new(host: &str, path: &str, options: &StoreOptions) -> Result<Self, OciError> {
        let creds = credentials::lookup(host, options.env_credentials_host.as_deref())?;
        let insecure = options.insecure.iter().any(|h| h == host);
        let auth_header = match &creds {
            Some(Credentials::Basic { username, password }) => {
                Some(basic(username, password.expose()))
            }
            Some(Credentials::Token(t)) => Some(bearer(t.expose())),
            None => None,
        };
        Ok(Self {
            host: host.to_owned(),
            path: path.to_owned(),
            scheme: if insecure { "http" } else { "https" },
            options: options.clone(),
            creds,
            http: OnceCell::new(),
            oci: OnceCell::new(),
            auth_header: Mutex::new(auth_header),
            negotiated: Mutex::new(false),
        })
    }

    fn url(&self, kind: &str, reference: &str) -> String {
        format!(
            "{}://{}/v2/{}/{kind}/{reference}",
            self.scheme, self.host, self.path
        )
    }

    fn oci_reference(&self) -> Reference {
        Reference::with_tag(self.host.clone(), self.path.clone(), "latest".into())
    }

    fn client_error(&self, reason: impl std::fmt::Display) -> OciError {
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

    async fn http(&self) -> Result<&reqwest::Client, OciError> {
        self.http
            .get_or_try_init(|| async {
                crate::tls::install_provider();
                let mut builder = reqwest::Client::builder()
                    .connect_timeout(self.options.connect_timeout)
                    .read_timeout(self.options.read_timeout)
                    .user_agent(concat!("releasectl/", env!("CARGO_PKG_VERSION")));
                // A plain-HTTP registry needs no trust store: skip loading the system's
                // certificates (a cost on every cold generate).
                if self.scheme == "http" {
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

    async fn oci(&self) -> Result<&oci_client::Client, OciError> {
        self.oci
            .get_or_try_init(|| async {
                crate::tls::install_provider();
                let mut extra_root_certificates = Vec::new();
                if let Some(pem) = self.ca_pem()? {
                    extra_root_certificates.push(Certificate {
                        encoding: CertificateEncoding::Pem,
                        data: pem,
                    });
                }
                let config = ClientConfig {
                    protocol: if self.scheme == "http" {
                        ClientProtocol::Http
                    } else {
                        ClientProtocol::Https
                    },
                    extra_root_certificates,
                    use_monolithic_push: true,
                    read_timeout: Some(self.options.read_timeout),
                    connect_timeout: Some(self.options.connect_timeout),
                    ..ClientConfig::default()
                };
                // `Client::new` would silently fall back to defaults on a bad config.
                oci_client::Client::try_from(config).map_err(|e| self.client_error(e))
            })
            .await
    }

    fn registry_auth(&self) -> RegistryAuth {
        match &self.creds {
            Some(Credentials::Basic { username, password }) => {
                RegistryAuth::Basic(username.clone(), password.expose().to_owned())
            }
            Some(Credentials::Token(t)) => RegistryAuth::Bearer(t.expose().to_owned()),
            None => RegistryAuth::Anonymous,
        }
    }

    /// Negotiates a token as oci-client does, and remembers the header to send.
    async fn negotiate(&self, op: RegistryOperation, what: &str) -> Result<(), OciError> {
        let oci = self.oci().await?;
        let token = oci
            .auth(&self.oci_reference(), &self.registry_auth(), op)
            .await
            .map_err(|e| self.map_oci_error(what, &e))?;
        let header = match (token, &self.creds) {
            (Some(token), _) => Some(bearer(&token)),
            (None, Some(Credentials::Basic { username, password })) => {
                Some(basic(username, password.expose()))
            }
            (None, Some(Credentials::Token(t))) => Some(bearer(t.expose())),
            (None, None) => None,
        };
        *self.auth_header.lock().expect("auth lock") = header;
        Ok(())
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
            what: what.to_owned(),
            seconds: self.options.timeout.as_secs(),
        }
    }

    /// Runs `attempt` until it is done, fails for good, or retries and time run out.
    async fn with_retries<T, F, Fut>(&self, what: &str, mut attempt: F) -> Result<T, OciError>
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
                Attempt::Done(v) => return Ok(v),
                Attempt::Fatal(e) => return Err(e),
                Attempt::Retry { reason, after } => {
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

    /// One GET with a capped, fully read body.
    async fn get_once(
        &self,
        url: &str,
        accept: Option<&str>,
        what: &str,
        cap: u64,
    ) -> Attempt<Fetched> {
        let http = match self.http().await {
            Ok(h) => h,
            Err(e) => return Attempt::Fatal(e),
        };
        let mut retried_auth = false;
        let response = loop {
            let mut req = http.get(url);
            if let Some(a) = accept {
                req = req.header(ACCEPT, a);
            }
            if let Some(h) = self.auth_header.lock().expect("auth lock").clone() {
                req = req.header(AUTHORIZATION, h);
            }
            let response = match req.send().await {
                Ok(r) => r,
                Err(e) => return self.transport_failure(what, &e),
            };
            if response.status() == StatusCode::UNAUTHORIZED && !retried_auth {
                let first = {
                    let mut n = self.negotiated.lock().expect("negotiated lock");
                    !std::mem::replace(&mut *n, true)
                };
                if first {
                    retried_auth = true;
                    if let Err(e) = self.negotiate(RegistryOperation::Pull, what).await {
                        return Attempt::Fatal(e);
                    }
                    continue;
                }
            }
            break response;
        };
        let status = response.status();
        match status {
            s if s.is_success() => {}
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                return Attempt::Fatal(OciError::Unauthorized {
                    what: what.to_owned(),
                    host: self.host.clone(),
                    status: status.as_u16(),
                });
            }
            StatusCode::NOT_FOUND => {
                return Attempt::Fatal(OciError::NotFound {
                    what: what.to_owned(),
                });
            }
            s if s == StatusCode::TOO_MANY_REQUESTS || s.is_server_error() => {
                let after = response
                    .headers()
                    .get(RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .map(Duration::from_secs);
                return Attempt::Retry {
                    reason: format!("registry answered {}", status.as_u16()),
                    after,
                };
            }
            _ => {
                return Attempt::Fatal(OciError::Status {
                    what: what.to_owned(),
                    status: status.as_u16(),
                    detail: String::new(),
                });
            }
        }
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|s| s.split(';').next().unwrap_or(s).trim().to_owned());
        let declared = response
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if let Some(len) = declared
            && len > cap
        {
            return Attempt::Fatal(OciError::TooLarge {
                what: what.to_owned(),
                limit: cap,
                actual: len,
            });
        }
        let mut body = Vec::with_capacity(declared.unwrap_or(0).min(cap) as usize);
        // Hashed as it arrives: the digest is ready when the last byte is.
        let mut hasher = sha2::Sha256::default();
        let mut response = response;
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    if (body.len() + chunk.len()) as u64 > cap {
                        return Attempt::Fatal(OciError::TooLarge {
                            what: what.to_owned(),
                            limit: cap,
                            actual: (body.len() + chunk.len()) as u64,
                        });
                    }
                    sha2::Digest::update(&mut hasher, &chunk);
                    body.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(e) => return self.transport_failure(what, &e),
            }
        }
        Attempt::Done(Fetched {
            body,
            content_type,
            digest: Digest::from_hasher(hasher),
        })
    }

    fn transport_failure<T>(&self, what: &str, e: &reqwest::Error) -> Attempt<T> {
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
            return Attempt::Fatal(OciError::Unreachable {
                what: what.to_owned(),
                host: self.host.clone(),
                reason,
            });
        }
        if e.is_connect() && !e.is_timeout() {
            // Refused or unresolvable: retrying a dead registry only burns the deadline,
            // but a registry restarting is common enough to try again.
            return Attempt::Retry {
                reason: format!("cannot reach {}: {reason}", self.host),
                after: None,
            };
        }
        if e.is_builder() || e.is_redirect() {
            return Attempt::Fatal(OciError::Unreachable {
                what: what.to_owned(),
                host: self.host.clone(),
                reason,
            });
        }
        Attempt::Retry {
            reason,
            after: None,
        }
    }

    /// Fetches a manifest by tag or digest; returns its bytes and their digest.
    pub async fn manifest(
        &self,
        reference: &str,
        what: &str,
    ) -> Result<(Vec<u8>, Digest), OciError> {
        let url = self.url("manifests", reference);
        let Fetched {
            body: bytes,
            content_type,
            digest,
        } = self
            .with_retries(what, || {
                self.get_once(
                    &url,
                    Some(MANIFEST_ACCEPT),
                    what,
                    crate::format::MAX_MANIFEST_BYTES,
                )
            })
            .await?;
        if matches!(
            content_type.as_deref(),
            Some(INDEX_MEDIA_TYPE | DOCKER_LIST_MEDIA_TYPE)
        ) {
            return Err(crate::format::FormatError::IsIndex {
                what: what.to_owned(),
            }
            .into());
        }
        if let Some(ct) = content_type.as_deref()
            && ct != MANIFEST_MEDIA_TYPE
            && ct != DOCKER_MANIFEST_MEDIA_TYPE
            && ct != "application/json"
        {
            return Err(crate::format::FormatError::ManifestMediaType {
                what: what.to_owned(),
                actual: ct.to_owned(),
            }
            .into());
        }
        Ok((bytes, digest))
    }

    /// Fetches a blob and checks it against `size` and `digest` before returning it.
    pub async fn blob(&self, digest: &Digest, size: u64, what: &str) -> Result<Vec<u8>, OciError> {
        let url = self.url("blobs", digest.as_str());
        // Read one byte past the declared size, so an overlong body is told from a right one.
        let fetched = self
            .with_retries(what, || async {
                match self.get_once(&url, None, what, size + 1).await {
                    Attempt::Fatal(OciError::TooLarge { .. }) => {
                        Attempt::Fatal(OciError::Overlong {
                            what: what.to_owned(),
                            expected: size,
                        })
                    }
                    other => other,
                }
            })
            .await?;
        super::check_blob_hashed(what, &fetched.body, size, digest, || fetched.digest.clone())?;
        Ok(fetched.body)
    }

    async fn ensure_push_auth(&self, what: &str) -> Result<&oci_client::Client, OciError> {
        let oci = self.oci().await?;
        oci.auth(
            &self.oci_reference(),
            &self.registry_auth(),
            RegistryOperation::Push,
        )
        .await
        .map_err(|e| self.map_oci_error(what, &e))?;
        Ok(oci)
    }

    /// Uploads a blob unless the registry has it already.
    pub async fn push_blob(
        &self,
        digest: &Digest,
        bytes: &[u8],
        what: &str,
    ) -> Result<(), OciError> {
        let oci = self.ensure_push_auth(what).await?;
        let reference = self.oci_reference();
        if oci
            .blob_exists(&reference, digest.as_str())
            .await
            .map_err(|e| self.map_oci_error(what, &e))?
        {
            return Ok(());
        }
        oci.push_blob(&reference, bytes.to_vec(), digest.as_str())
            .await
            .map_err(|e| self.map_oci_error(what, &e))?;
        Ok(())
    }

    /// Uploads manifest bytes as they are (so the digest is ours) under `tag`.
    pub async fn push_manifest(&self, bytes: &[u8], tag: &str, what: &str) -> Result<(), OciError> {
        let oci = self.ensure_push_auth(what).await?;
        let reference = Reference::with_tag(self.host.clone(), self.path.clone(), tag.to_owned());
        oci.push_manifest_raw(
            &reference,
            bytes.to_vec(),
            HeaderValue::from_static(MANIFEST_MEDIA_TYPE),
        )
        .await
        .map_err(|e| self.map_oci_error(what, &e))?;
        Ok(())
    }

    fn map_oci_error(&self, what: &str, e: &oci_client::errors::OciDistributionError) -> OciError {
        use oci_client::errors::OciDistributionError as E;
        match e {
            E::AuthenticationFailure(_) | E::UnauthorizedError { .. } => OciError::Unauthorized {
                what: what.to_owned(),
                host: self.host.clone(),
                status: 401,
            },
            // oci-client reports some refusals (a 401 on a blob HEAD or upload) as request
            // errors that carry the status: name them for what they are.
            E::RequestError(re) => match re.status().map(|s| s.as_u16()) {
                Some(401 | 403) => OciError::Unauthorized {
                    what: what.to_owned(),
                    host: self.host.clone(),
                    status: re.status().map_or(401, |s| s.as_u16()),
                },
                Some(404) => OciError::NotFound {
                    what: what.to_owned(),
                },
                Some(status) => OciError::Status {
                    what: what.to_owned(),
                    status,
                    detail: String::new(),
                },
                None => OciError::Unreachable {
                    what: what.to_owned(),
                    host: self.host.clone(),
                    reason: error_chain(re),
                },
            },
            E::ServerError { code, .. } => OciError::Status {
                what: what.to_owned(),
                status: *code,
                detail: String::new(),
            },
            // oci-client's messages name URLs and server text, never the credentials we gave it.
            other => OciError::Status {
                what: what.to_owned(),
                status: 0,
                detail: format!(" ({other})"),
            },
        }
    }
}

fn basic(username: &str, password: &str) -> HeaderValue {
    let encoded =
        base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
    let mut v =
        HeaderValue::from_str(&format!("Basic {encoded}")).expect("base64 is a valid header");
    v.set_sensitive(true);
    v
}

fn bearer(token: &str) -> HeaderValue {
    let mut v = HeaderValue::from_str(&format!("Bearer {token}"))
        .unwrap_or_else(|_| HeaderValue::from_static("Bearer invalid"));
    v.set_sensitive(true);
    v
}

/// The error and its causes, without any URL (a redirect target may carry a signature).
fn error_chain(e: &reqwest::Error) -> String {
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
