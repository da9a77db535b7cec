//! The Simple Signing payload cosign signs (`application/vnd.dev.cosign.simplesigning.v1+json`,
//! sigstore/cosign specs/SIGNATURE_SPEC.md "Simple Signing"):
//!
//! ```json
//! {"critical":{"identity":{"docker-reference":"…"},"image":{"docker-manifest-digest":"sha256:…"},
//!  "type":"cosign container image signature"},"optional":null}
//! ```
//!
//! Invariant: parsing is strict where the payload is critical: an unknown or duplicate field
//! in `critical` (or at the top level), another `type`, a digest that is not a digest, and a
//! payload over [`MAX_PAYLOAD_BYTES`] are errors; `optional` may hold anything.

use serde::{Deserialize, Serialize};

use crate::digest::Digest;

/// The `critical.type` of a cosign image signature.
pub const TYPE: &str = "cosign container image signature";

/// A payload is a few hundred bytes; a larger one is not downloaded.
pub const MAX_PAYLOAD_BYTES: u64 = 64 * 1024;

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Payload {
    pub critical: Critical,
    #[serde(default)]
    pub optional: Option<serde_json::Value>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Critical {
    pub identity: Identity,
    pub image: Image,
    #[serde(rename = "type")]
    pub kind: String,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Identity {
    #[serde(rename = "docker-reference")]
    pub docker_reference: String,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Image {
    #[serde(rename = "docker-manifest-digest")]
    pub digest: String,
}

impl Payload {
    /// The payload for the manifest `digest` at `reference` (a repository name, no tag).
    #[must_use]
    pub fn new(reference: &str, digest: &Digest) -> Self {
        Self {
            critical: Critical {
                identity: Identity {
                    docker_reference: reference.to_owned(),
                },
                image: Image {
                    digest: digest.to_string(),
                },
                kind: TYPE.to_owned(),
            },
            optional: None,
        }
    }

    /// The bytes signed, as cosign writes them (compact JSON, fields in this order).
    #[must_use]
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a payload serialises")
    }

    /// Parses payload bytes; the error says what is wrong, in a few words.
    pub fn parse(bytes: &[u8]) -> Result<Self, String> {
        let payload: Self = serde_json::from_slice(bytes)
            .map_err(|e| format!("not a simple signing payload ({e})"))?;
        if payload.critical.kind != TYPE {
            return Err(format!(
                "critical.type is {:?}: expected {TYPE:?}",
                crate::text::excerpt(&payload.critical.kind)
            ));
        }
        Ok(payload)
    }

    /// The manifest digest the payload names.
    pub fn digest(&self) -> Result<Digest, String> {
        self.critical.image.digest.parse().map_err(|_| {
            format!(
                "critical.image.docker-manifest-digest is {:?}: expected sha256:<64 hex>",
                crate::text::excerpt(&self.critical.image.digest)
            )
        })
    }

    /// Whether the payload's `docker-reference` names the release repository `path`
    /// (`<repository>/<project>`): it is that path, or ends in `/` and that path once a tag
    /// or digest is removed. The registry host and prefix are not compared, so a copy of a
    /// release (another registry, an `oci:` layout) keeps its signatures.
    #[must_use]
    pub fn names_repository(&self, path: &str) -> bool {
        let r = self.critical.identity.docker_reference.as_str();
        let r = r.split_once('@').map_or(r, |(name, _)| name);
        // A tag follows the last `:` after the last `/` (a port does not).
        let r = match (r.rfind(':'), r.rfind('/')) {
            (Some(c), Some(s)) if c > s => &r[..c],
            (Some(c), None) => &r[..c],
            _ => r,
        };
        r == path || r.strip_suffix(path).is_some_and(|h| h.ends_with('/'))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest() -> Digest {
        Digest::of(b"manifest")
    }

    #[test]
    fn a_payload_is_written_as_cosign_writes_it() {
        let p = Payload::new("registry.example.com/company/app", &digest());
        let text = String::from_utf8(p.to_bytes()).unwrap();
        assert_eq!(
            text,
            format!(
                "{{\"critical\":{{\"identity\":{{\"docker-reference\":\"registry.example.com/company/app\"}},\"image\":{{\"docker-manifest-digest\":\"{}\"}},\"type\":\"cosign container image signature\"}},\"optional\":null}}",
                digest()
            )
        );
        let back = Payload::parse(text.as_bytes()).unwrap();
        assert_eq!(back.digest().unwrap(), digest());
    }

    #[test]
    fn unknown_critical_fields_and_other_types_are_refused() {
        let d = digest();
        for (bad, want) in [
            (
                format!(
                    r#"{{"critical":{{"identity":{{"docker-reference":"a"}},"image":{{"docker-manifest-digest":"{d}"}},"type":"cosign container image signature","expires":1}}}}"#
                ),
                "unknown field `expires`",
            ),
            (
                format!(
                    r#"{{"critical":{{"identity":{{"docker-reference":"a","x":1}},"image":{{"docker-manifest-digest":"{d}"}},"type":"cosign container image signature"}}}}"#
                ),
                "unknown field `x`",
            ),
            (
                format!(
                    r#"{{"critical":{{"identity":{{"docker-reference":"a"}},"image":{{"docker-manifest-digest":"{d}"}},"type":"atomic container signature"}}}}"#
                ),
                "critical.type is \"atomic container signature\"",
            ),
            (
                format!(
                    r#"{{"critical":{{"identity":{{"docker-reference":"a"}},"image":{{"docker-manifest-digest":"{d}","docker-manifest-digest":"{d}"}},"type":"cosign container image signature"}}}}"#
                ),
                "duplicate field",
            ),
            ("[]".to_owned(), "not a simple signing payload"),
        ] {
            let err = Payload::parse(bad.as_bytes()).unwrap_err();
            assert!(err.contains(want), "{bad}: {err}");
        }
    }

    #[test]
    fn the_reference_must_name_the_release_repository_whatever_the_host() {
        let p = |r: &str| Payload::new(r, &digest());
        for good in [
            "company/app",
            "registry.example.com/company/app",
            "localhost:5000/prefix/company/app",
            "localhost:5000/company/app:0123",
            "localhost:5000/company/app@sha256:00",
        ] {
            assert!(p(good).names_repository("company/app"), "{good}");
        }
        for bad in [
            "company/other",
            "registry.example.com/evilcompany/app",
            "company/app/extra",
            "",
        ] {
            assert!(!p(bad).names_repository("company/app"), "{bad}");
        }
    }
}
