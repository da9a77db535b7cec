//! One repository in one registry, read through our own verifying HTTP reader (uploads are in
//! `push.rs`, credentials and tokens in `auth.rs`, retries and the deadline in `transport.rs`).
//!
//! Why our own reader: a generic client hands blob bytes to the caller before the digest check,
//! never compares the descriptor size, reads manifests of any size, resolves image indexes to a
//! platform silently and falls back to a descriptor's `urls`. Here every GET is capped (by
//! `Content-Length` before reading, by the running count while reading), retried only when it
//! is safe, bounded by the run's one deadline, and nothing is returned before it matched its
//! size and digest.

use reqwest::header::{ACCEPT, AUTHORIZATION, WWW_AUTHENTICATE};
use reqwest::{RequestBuilder, Response, StatusCode};

use super::OciError;
use super::auth::{Auth, Scope};
use super::options::StoreOptions;
use super::transport::{Attempt, Failure, Fetched, Transport};
use crate::credentials;
use crate::digest::Digest;
use crate::format::{
    DOCKER_LIST_MEDIA_TYPE, DOCKER_MANIFEST_MEDIA_TYPE, INDEX_MEDIA_TYPE, MANIFEST_MEDIA_TYPE,
};

/// Manifest types we ask for. Indexes are asked for too, so that a registry serving one is
/// recognised and refused by name instead of failing as "not found".
const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json";

/// One repository in one registry.
pub struct Registry {
    pub(super) path: String,
    pub(super) transport: Transport,
    auth: Auth,
}

impl Registry {
    pub fn new(host: &str, path: &str, options: &StoreOptions) -> Result<Self, OciError> {
        let creds = credentials::lookup(host, &options.credentials)?;
        Ok(Self {
            path: path.to_owned(),
            transport: Transport::new(host, options),
            auth: Auth::new(path, creds),
        })
    }

    /// `scheme://host/v2/<path>/{kind}/{reference}`.
    pub(super) fn url(&self, kind: &str, reference: &str) -> String {
        self.transport
            .url(&format!("{}/{kind}/{reference}", self.path))
    }

    /// Sends the request `build` makes, with the `Authorization` for `scope` (none when
    /// `scope` is `None`), answering one 401 challenge. Any other answer is returned as it is.
    pub(super) async fn send(
        &self,
        scope: Option<Scope>,
        what: &str,
        build: impl Fn(&reqwest::Client) -> RequestBuilder,
    ) -> Attempt<Response> {
        let http = self.transport.http().await?;
        let mut header = match scope {
            Some(scope) => self.auth.header(scope).await,
            None => None,
        };
        let mut answered = false;
        loop {
            let mut request = build(http);
            if let Some(h) = &header {
                request = request.header(AUTHORIZATION, h.clone());
            }
            let response = match request.send().await {
                Ok(r) => r,
                Err(e) => return self.transport.transport_failure(what, &e),
            };
            let scope = match scope {
                Some(scope) if response.status() == StatusCode::UNAUTHORIZED && !answered => scope,
                _ => return Ok(response),
            };
            answered = true;
            let challenge = response
                .headers()
                .get(WWW_AUTHENTICATE)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            header = Some(
                self.auth
                    .answer(
                        &self.transport,
                        challenge.as_deref(),
                        scope,
                        header.as_ref(),
                        what,
                    )
                    .await?,
            );
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
        let response = self
            .send(Some(Scope::Pull), what, |http| {
                let request = http.get(url);
                match accept {
                    Some(a) => request.header(ACCEPT, a),
                    None => request,
                }
            })
            .await?;
        if !response.status().is_success() {
            return self.transport.refusal(what, response).await;
        }
        self.transport.read_capped(response, what, cap).await
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
            .transport
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
            .transport
            .with_retries(what, || async {
                match self.get_once(&url, None, what, size + 1).await {
                    Err(Failure::Final(OciError::TooLarge { .. })) => {
                        Err(Failure::Final(OciError::Overlong {
                            what: what.to_owned(),
                            expected: size,
                        }))
                    }
                    other => other,
                }
            })
            .await?;
        super::check_blob_hashed(what, &fetched.body, size, digest, || fetched.digest.clone())?;
        Ok(fetched.body)
    }
}
