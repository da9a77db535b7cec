//! Uploads to a registry: blobs (looked for first, then sent whole in one monolithic upload) and
//! manifests (sent as they are, so the digest is ours), under the same authentication, retries
//! and deadline as reads.
//!
//! What is retried, and why that is safe: the blob `HEAD` (a read); the upload as a whole
//! (`POST` for a session, then `PUT` of the bytes to its `Location` with `?digest=`), since the
//! bytes are content-addressed and an abandoned session holds nothing; the manifest `PUT` (the
//! same bytes under the same tag). A `Docker-Content-Digest` answer must name the digest we
//! computed. The `Authorization` goes to an upload `Location` only on the registry's own
//! origin: a session on another host (a storage backend) gets no credentials.

use bytes::Bytes;
use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE, LOCATION};
use reqwest::{Response, StatusCode, Url};

use super::OciError;
use super::auth::Scope;
use super::registry::Registry;
use super::transport::{Attempt, Failure, declared_length};
use crate::digest::Digest;
use crate::format::MANIFEST_MEDIA_TYPE;

impl Registry {
    /// Uploads a blob unless the registry has it already, with this size. The bytes are
    /// owned (cheaply cloned) since a retried upload sends them again.
    pub async fn push_blob(
        &self,
        digest: &Digest,
        blob: Bytes,
        what: &str,
    ) -> Result<(), OciError> {
        let size = blob.len() as u64;
        let present = self
            .transport
            .with_retries(what, || self.has_blob(digest, size, what))
            .await?;
        if present {
            crate::log::debug(&format!("{what}: already in the registry"));
            return Ok(());
        }
        self.transport
            .with_retries(what, || self.upload_once(digest, &blob, what))
            .await
    }

    /// Uploads manifest bytes as they are (so the digest is ours) under `tag`.
    pub async fn push_manifest(&self, bytes: &[u8], tag: &str, what: &str) -> Result<(), OciError> {
        let url = self.url("manifests", tag);
        let digest = Digest::of(bytes);
        let bytes = Bytes::copy_from_slice(bytes);
        self.transport
            .with_retries(what, || async {
                let response = self
                    .send(Some(Scope::Push), what, |http| {
                        http.put(&url)
                            .header(CONTENT_TYPE, MANIFEST_MEDIA_TYPE)
                            .body(bytes.clone())
                    })
                    .await?;
                if !response.status().is_success() {
                    return self.transport.refusal(what, response).await;
                }
                self.check_digest_header(&response, &digest, what)
            })
            .await
    }

    /// Whether the registry holds the blob with exactly `size` bytes.
    async fn has_blob(&self, digest: &Digest, size: u64, what: &str) -> Attempt<bool> {
        let url = self.url("blobs", digest.as_str());
        let response = self
            .send(Some(Scope::Push), what, |http| http.head(&url))
            .await?;
        match response.status() {
            s if s.is_success() => Ok(declared_length(&response) == Some(size)),
            StatusCode::NOT_FOUND => Ok(false),
            _ => self.transport.refusal(what, response).await,
        }
    }

    /// One monolithic upload: a session, then the bytes with their digest.
    async fn upload_once(&self, digest: &Digest, bytes: &Bytes, what: &str) -> Attempt<()> {
        let start = self.transport.url(&format!("{}/blobs/uploads/", self.path));
        let response = self
            .send(Some(Scope::Push), what, |http| {
                http.post(&start).header(CONTENT_LENGTH, "0")
            })
            .await?;
        if !response.status().is_success() {
            return self.transport.refusal(what, response).await;
        }
        let start =
            Url::parse(&start).map_err(|_| self.bad_answer(what, "the upload URL is not a URL"))?;
        let location = response
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok());
        let target = location
            .and_then(|l| upload_target(&start, l, digest))
            .ok_or_else(|| self.bad_answer(what, "no http(s) upload Location"))?;
        let scope = (target.origin() == start.origin()).then_some(Scope::Push);
        let response = self
            .send(scope, what, |http| {
                http.put(target.clone())
                    .header(CONTENT_TYPE, "application/octet-stream")
                    .body(bytes.clone())
            })
            .await?;
        if !response.status().is_success() {
            return self.transport.refusal(what, response).await;
        }
        self.check_digest_header(&response, digest, what)
    }

    /// A `Docker-Content-Digest` answer, when there is one, must name `digest`.
    fn check_digest_header(&self, response: &Response, digest: &Digest, what: &str) -> Attempt<()> {
        let Some(header) = response.headers().get("docker-content-digest") else {
            return Ok(());
        };
        let actual = header
            .to_str()
            .ok()
            .and_then(|v| v.trim().parse::<Digest>().ok())
            .ok_or_else(|| {
                self.bad_answer(what, "its Docker-Content-Digest is not a sha256 digest")
            })?;
        if actual != *digest {
            return Err(Failure::Final(OciError::DigestMismatch {
                what: format!("{what} as stored by {}", self.transport.host()),
                expected: digest.clone(),
                actual,
            }));
        }
        Ok(())
    }

    /// A success answer we cannot use (`reason` says what was wrong with it).
    fn bad_answer(&self, what: &str, reason: &str) -> Failure {
        Failure::Final(OciError::Protocol {
            what: what.to_owned(),
            host: self.transport.host().to_owned(),
            reason: reason.to_owned(),
        })
    }
}

/// Where the bytes of an upload go: the session's `Location` (absolute, or relative to the
/// `POST`), keeping its query (an upload state) and adding `digest`.
fn upload_target(start: &Url, location: &str, digest: &Digest) -> Option<Url> {
    let mut target = start.join(location).ok()?;
    if !matches!(target.scheme(), "http" | "https") {
        return None;
    }
    target
        .query_pairs_mut()
        .append_pair("digest", digest.as_str());
    Some(target)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn start() -> Url {
        Url::parse("https://reg.example:5000/v2/a/b/blobs/uploads/").unwrap()
    }

    fn digest() -> Digest {
        Digest::of(b"x")
    }

    #[test]
    fn a_relative_location_is_resolved_against_the_registry_and_gets_the_digest() {
        let target = upload_target(&start(), "/v2/a/b/blobs/uploads/u1", &digest()).unwrap();
        assert_eq!(
            target.as_str(),
            format!(
                "https://reg.example:5000/v2/a/b/blobs/uploads/u1?digest=sha256%3A{}",
                digest().hex()
            )
        );
    }

    #[test]
    fn an_absolute_location_keeps_its_host_and_its_upload_state() {
        let target = upload_target(
            &start(),
            "https://storage.example/up/u2?_state=abc%3D&x=1",
            &digest(),
        )
        .unwrap();
        assert_eq!(target.host_str(), Some("storage.example"));
        assert_ne!(target.origin(), start().origin());
        let pairs: Vec<(String, String)> = target.query_pairs().into_owned().collect();
        assert_eq!(
            pairs,
            vec![
                ("_state".to_owned(), "abc=".to_owned()),
                ("x".to_owned(), "1".to_owned()),
                ("digest".to_owned(), digest().to_string()),
            ]
        );
    }

    #[test]
    fn a_location_that_is_not_http_is_refused() {
        assert!(upload_target(&start(), "file:///etc/passwd", &digest()).is_none());
    }
}
