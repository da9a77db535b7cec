//! Release image signatures in cosign's format (docs/format.md §10, sigstore/cosign
//! specs/SIGNATURE_SPEC.md): the signature manifest tagged `sha256-<hex>.sig` in the release's
//! repository, Simple Signing payloads, ECDSA P-256 / SHA-256 signatures (ASN.1 DER, base64)
//! in the `dev.cosignproject.cosign/signature` annotation.
//!
//! Invariants:
//! - a signature counts only when it verifies against a trusted key over the exact payload
//!   bytes, and that payload names the manifest digest verified and the release's repository;
//! - every byte fetched is capped before it is read (manifest, layer count, payload size) and
//!   checked against its digest (the `oci` store does that);
//! - signers are keys today ([`keys::TrustedKey`]); a keyless signer (a certificate in
//!   [`envelope::CERTIFICATE_ANNOTATION`]) would be one more way for [`who_signed`] to answer.

pub mod envelope;
pub mod keys;
pub mod payload;

use std::path::PathBuf;

use base64::Engine as _;
use p256::ecdsa::signature::{Signer as _, Verifier as _};
use p256::ecdsa::{Signature, SigningKey};

use crate::digest::Digest;
use crate::oci::{ImageRef, OciError, Store};
pub use envelope::Envelope;
pub use keys::TrustedKey;
pub use payload::Payload;

#[derive(Debug, thiserror::Error)]
pub enum CosignError {
    #[error("key {}: {reason}", .path.display())]
    Key { path: PathBuf, reason: String },
    #[error(
        "{image}: not signed: no signature manifest {tag} for {digest}: expected a signature by {keys}"
    )]
    Unsigned {
        image: String,
        tag: String,
        digest: Digest,
        keys: String,
    },
    #[error("{image}: signature manifest {tag}: {reason}")]
    Envelope {
        image: String,
        tag: String,
        reason: String,
    },
    #[error("{image}: no valid signature of {digest} by {keys}: {}", .reasons.join("; "))]
    NotVerified {
        image: String,
        digest: Digest,
        keys: String,
        reasons: Vec<String>,
    },
    #[error("{image}: cannot add a signature to {tag}: {reason}")]
    Full {
        image: String,
        tag: String,
        reason: String,
    },
    #[error(transparent)]
    Oci(#[from] OciError),
}

impl crate::exit::Classify for CosignError {
    fn exit(&self) -> crate::exit::Exit {
        match self {
            Self::Key { .. } => crate::exit::Exit::Usage,
            Self::Unsigned { .. }
            | Self::Envelope { .. }
            | Self::NotVerified { .. }
            | Self::Full { .. } => crate::exit::Exit::Verify,
            Self::Oci(e) => e.exit(),
        }
    }
}

/// What a signature is checked against: the manifest digest and the release's repository
/// path (`<repository>/<project>`).
pub struct Subject<'a> {
    pub digest: &'a Digest,
    pub repository: &'a str,
}

/// One signature found in the manifest and what became of it.
#[derive(Debug, serde::Serialize)]
pub struct Finding {
    /// The payload blob's digest.
    pub payload: Digest,
    /// The key that made it, when it verified against the subject.
    pub signer: Option<Signer>,
    /// Why it does not count, when it does not.
    pub problem: Option<String>,
}

/// Who made a signature that verified.
#[derive(Debug, Clone, serde::Serialize, PartialEq, Eq)]
pub struct Signer {
    pub key: String,
    pub fingerprint: String,
}

/// The trusted key whose signature `signature` (base64 DER) over `payload` is, if any.
pub fn who_signed<'k>(
    keys: &'k [TrustedKey],
    payload: &[u8],
    signature: &str,
) -> Result<Option<&'k TrustedKey>, String> {
    let der = base64::engine::general_purpose::STANDARD
        .decode(signature.trim())
        .map_err(|_| "the signature annotation is not base64".to_owned())?;
    let sig = Signature::from_der(&der).map_err(|_| {
        format!(
            "the signature is not an ASN.1 DER ECDSA P-256 signature ({} bytes)",
            der.len()
        )
    })?;
    Ok(keys.iter().find(|k| k.key.verify(payload, &sig).is_ok()))
}

/// Checks one payload signed by `key` against the subject.
fn check_payload(bytes: &[u8], subject: &Subject<'_>) -> Result<(), String> {
    let payload = Payload::parse(bytes)?;
    let digest = payload.digest()?;
    if &digest != subject.digest {
        return Err(format!("it signs {digest}: expected {}", subject.digest));
    }
    if !payload.names_repository(subject.repository) {
        return Err(format!(
            "it signs {:?}: expected a reference to {}",
            crate::text::excerpt(&payload.critical.identity.docker_reference),
            subject.repository
        ));
    }
    Ok(())
}

fn describe_keys(keys: &[TrustedKey]) -> String {
    if keys.is_empty() {
        return "no key".into();
    }
    keys.iter()
        .map(TrustedKey::describe)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The `docker-reference` a signature of release `id` at `image` names: the registry
/// repository (`host/path`), or the release's `<repository>/<project>` in a layout.
#[must_use]
pub fn docker_reference(image: &ImageRef, id: &crate::ids::ReleaseId) -> String {
    match image {
        ImageRef::Registry(r) => format!("{}/{}", r.host, r.path),
        ImageRef::Layout(_) => id.image_path(),
    }
}

/// The signature image of `image` (whose manifest is `digest`): same repository, tag
/// `sha256-<hex>.sig`.
#[must_use]
pub fn signature_image(image: &ImageRef, digest: &Digest) -> ImageRef {
    image.with_tag(Some(envelope::tag(digest)))
}

/// Reads the signature manifest of `image` (`Ok(None)`: there is none) with its bytes.
pub async fn fetch_envelope(
    store: &Store,
    image: &ImageRef,
    digest: &Digest,
) -> Result<Option<(Envelope, Vec<u8>)>, CosignError> {
    let sig_image = signature_image(image, digest);
    let tag = envelope::tag(digest);
    let bytes = match store.manifest(&sig_image).await {
        Ok((bytes, _)) => bytes,
        Err(OciError::NotFound { .. }) => return Ok(None),
        Err(OciError::Format(crate::format::FormatError::IsIndex { .. })) => {
            return Err(CosignError::Envelope {
                image: image.to_string(),
                tag,
                reason: "is an image index: expected an image manifest".into(),
            });
        }
        Err(e) => return Err(e.into()),
    };
    let envelope = Envelope::parse(&bytes).map_err(|reason| CosignError::Envelope {
        image: image.to_string(),
        tag,
        reason,
    })?;
    Ok(Some((envelope, bytes)))
}

/// Fetches and checks every signature of `image` against `keys`.
pub async fn examine(
    store: &Store,
    image: &ImageRef,
    subject: &Subject<'_>,
    keys: &[TrustedKey],
) -> Result<Option<Vec<Finding>>, CosignError> {
    let Some((envelope, _)) = fetch_envelope(store, image, subject.digest).await? else {
        return Ok(None);
    };
    let mut findings = Vec::new();
    for (i, layer) in envelope.signatures().enumerate() {
        let mut finding = Finding {
            payload: layer.digest.clone(),
            signer: None,
            problem: None,
        };
        let what = format!("signature {} of {image}", i + 1);
        let outcome: Result<Signer, String> = async {
            if layer.size > payload::MAX_PAYLOAD_BYTES {
                return Err(format!(
                    "its payload is {} bytes: expected at most {}",
                    layer.size,
                    payload::MAX_PAYLOAD_BYTES
                ));
            }
            let signature = layer.signature().ok_or_else(|| {
                if layer.annotations.contains_key(envelope::CERTIFICATE_ANNOTATION) {
                    "a keyless signature (certificate) without a key signature: only key signatures are verified".to_owned()
                } else {
                    format!("no {} annotation", envelope::SIGNATURE_ANNOTATION)
                }
            })?;
            let bytes = store
                .blob(&layer.digest, layer.size, &what)
                .await
                .map_err(|e| e.to_string())?;
            let key = who_signed(keys, &bytes, signature)?.ok_or_else(|| {
                "made by none of the trusted keys, or over other content".to_owned()
            })?;
            check_payload(&bytes, subject)
                .map_err(|e| format!("made by {}, but {e}", key.describe()))?;
            Ok(Signer {
                key: key.name.clone(),
                fingerprint: key.fingerprint.clone(),
            })
        }
        .await;
        match outcome {
            Ok(signer) => finding.signer = Some(signer),
            Err(problem) => finding.problem = Some(format!("signature {}: {problem}", i + 1)),
        }
        findings.push(finding);
    }
    Ok(Some(findings))
}

/// The first trusted key that signed `image` as `subject`; otherwise an error naming the
/// keys, the digest and why each signature found does not count.
pub async fn verify(
    store: &Store,
    image: &ImageRef,
    subject: &Subject<'_>,
    keys: &[TrustedKey],
) -> Result<Signer, CosignError> {
    let Some(findings) = examine(store, image, subject, keys).await? else {
        return Err(CosignError::Unsigned {
            image: image.to_string(),
            tag: envelope::tag(subject.digest),
            digest: subject.digest.clone(),
            keys: describe_keys(keys),
        });
    };
    let mut reasons = Vec::new();
    for f in findings {
        if let Some(signer) = f.signer {
            return Ok(signer);
        }
        reasons.extend(f.problem);
    }
    if reasons.is_empty() {
        reasons.push("the signature manifest holds no signatures".into());
    }
    Err(CosignError::NotVerified {
        image: image.to_string(),
        digest: subject.digest.clone(),
        keys: describe_keys(keys),
        reasons,
    })
}

/// The signature of `payload` by `key`: base64 of the ASN.1 DER ECDSA P-256 / SHA-256
/// signature (deterministic, RFC 6979).
#[must_use]
pub fn sign_payload(key: &SigningKey, payload: &[u8]) -> String {
    let sig: Signature = key.sign(payload);
    base64::engine::general_purpose::STANDARD.encode(sig.to_der().as_bytes())
}

/// Signs `image` (manifest `subject.digest`) with `key`, naming `reference` in the payload,
/// and stores the signature next to it, keeping the signatures already there. Returns
/// whether a new signature was added (signing twice with one key adds nothing).
pub async fn sign(
    store: &Store,
    image: &ImageRef,
    digest: &Digest,
    reference: &str,
    key: &SigningKey,
) -> Result<bool, CosignError> {
    let tag = envelope::tag(digest);
    let mut envelope = fetch_envelope(store, image, digest)
        .await?
        .map(|(e, _)| e)
        .unwrap_or_default();
    let payload = Payload::new(reference, digest).to_bytes();
    let signature = sign_payload(key, &payload);
    let added = envelope
        .add(&payload, &signature)
        .map_err(|reason| CosignError::Full {
            image: image.to_string(),
            tag: tag.clone(),
            reason,
        })?;
    if !added {
        return Ok(false);
    }
    let (config, manifest) = envelope.to_bytes();
    let what = format!("signature of {image}");
    store
        .push_blob(&Digest::of(&payload), &payload, &what)
        .await?;
    store
        .push_blob(&Digest::of(&config), &config, &what)
        .await?;
    store.push_manifest(&manifest, &tag, &what).await?;
    Ok(true)
}

/// Copies the signature manifest of `digest` (and its blobs) from `from` to `to`, unchanged
/// (same digests). Returns how many signatures were copied (0: the source has none).
pub async fn copy(
    from: (&Store, &ImageRef),
    to: (&Store, &ImageRef),
    digest: &Digest,
) -> Result<usize, CosignError> {
    let Some((envelope, bytes)) = fetch_envelope(from.0, from.1, digest).await? else {
        return Ok(0);
    };
    let blobs = envelope
        .layers
        .iter()
        .chain(envelope.config.as_ref())
        .map(|l| (l.digest.clone(), l.size));
    let what = format!("signature of {}", from.1);
    for (d, size) in blobs {
        if size > payload::MAX_PAYLOAD_BYTES {
            return Err(CosignError::Envelope {
                image: from.1.to_string(),
                tag: envelope::tag(digest),
                reason: format!(
                    "a blob of {size} bytes: expected at most {}",
                    payload::MAX_PAYLOAD_BYTES
                ),
            });
        }
        let blob = from.0.blob(&d, size, &what).await?;
        to.0.push_blob(&d, &blob, &what).await?;
    }
    to.0.push_manifest(&bytes, &envelope::tag(digest), &what)
        .await?;
    Ok(envelope.signatures().count())
}

#[cfg(test)]
mod tests;
