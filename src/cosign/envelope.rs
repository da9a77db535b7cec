//! The signature manifest: an OCI image manifest tagged `sha256-<hex>.sig` next to the signed
//! image, one layer per signature (the payload blob), the signature in the layer's
//! `dev.cosignproject.cosign/signature` annotation (sigstore/cosign specs/SIGNATURE_SPEC.md
//! "Storage").
//!
//! Invariant: a manifest that is an index, or holds more than [`MAX_LAYERS`] layers, or a
//! layer whose descriptor is not one, is refused as a whole before any payload is fetched.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::format::{INDEX_MEDIA_TYPE, MANIFEST_MEDIA_TYPE};

pub const PAYLOAD_MEDIA_TYPE: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
pub const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
/// Where keyless signatures carry their certificate (not read yet: keys only).
pub const CERTIFICATE_ANNOTATION: &str = "dev.sigstore.cosign/certificate";
const CONFIG_MEDIA_TYPE: &str = "application/vnd.oci.image.config.v1+json";

/// Signatures one manifest may hold: one per signer and re-signing, far below this.
pub const MAX_LAYERS: usize = 64;

/// The tag that holds the signatures of the manifest `digest`.
#[must_use]
pub fn tag(digest: &Digest) -> String {
    format!("sha256-{}.sig", digest.hex())
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Layer {
    pub media_type: String,
    pub size: u64,
    pub digest: Digest,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

impl Layer {
    /// The base64 signature, when the layer carries one.
    #[must_use]
    pub fn signature(&self) -> Option<&str> {
        self.annotations
            .get(SIGNATURE_ANNOTATION)
            .map(String::as_str)
    }
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Manifest {
    schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    media_type: Option<String>,
    config: Layer,
    layers: Vec<Layer>,
}

/// The signatures a manifest holds, parsed.
#[derive(Debug, Default)]
pub struct Envelope {
    pub layers: Vec<Layer>,
    /// The config blob's descriptor, as read (none: built here).
    pub config: Option<Layer>,
}

impl Envelope {
    /// Parses a signature manifest; the error says what is wrong, in a few words.
    pub fn parse(bytes: &[u8]) -> Result<Self, String> {
        let value: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|e| format!("not a JSON manifest ({e})"))?;
        if value.get("manifests").is_some()
            || value.get("mediaType").and_then(|m| m.as_str()) == Some(INDEX_MEDIA_TYPE)
        {
            return Err("is an image index: expected an image manifest".into());
        }
        if let Some(n) = value.get("layers").and_then(|l| l.as_array()).map(Vec::len)
            && n > MAX_LAYERS
        {
            return Err(format!("has {n} layers: expected at most {MAX_LAYERS}"));
        }
        let manifest: Manifest =
            serde_json::from_value(value).map_err(|e| format!("not an image manifest ({e})"))?;
        if manifest.schema_version != 2 {
            return Err(format!(
                "schemaVersion is {}: expected 2",
                manifest.schema_version
            ));
        }
        Ok(Self {
            layers: manifest.layers,
            config: Some(manifest.config),
        })
    }

    /// The layers that hold signed payloads.
    pub fn signatures(&self) -> impl Iterator<Item = &Layer> {
        self.layers
            .iter()
            .filter(|l| l.media_type == PAYLOAD_MEDIA_TYPE)
    }

    /// Adds a signature unless the same payload already carries the same signature (signing
    /// is deterministic, so signing twice changes nothing). Returns whether it was added.
    pub fn add(&mut self, payload: &[u8], signature: &str) -> Result<bool, String> {
        let digest = Digest::of(payload);
        if self
            .layers
            .iter()
            .any(|l| l.digest == digest && l.signature() == Some(signature))
        {
            return Ok(false);
        }
        if self.layers.len() >= MAX_LAYERS {
            return Err(format!(
                "already holds {MAX_LAYERS} layers, the most allowed"
            ));
        }
        self.layers.push(Layer {
            media_type: PAYLOAD_MEDIA_TYPE.into(),
            size: payload.len() as u64,
            digest,
            annotations: BTreeMap::from([(SIGNATURE_ANNOTATION.to_owned(), signature.to_owned())]),
        });
        Ok(true)
    }

    /// The config blob and the manifest bytes, as cosign writes them: an OCI image config
    /// whose `rootfs.diff_ids` are the payload digests.
    #[must_use]
    pub fn to_bytes(&self) -> (Vec<u8>, Vec<u8>) {
        let diff_ids: Vec<String> = self.layers.iter().map(|l| l.digest.to_string()).collect();
        let config = serde_json::to_vec(&serde_json::json!({
            "architecture": "",
            "config": {},
            "created": "0001-01-01T00:00:00Z",
            "history": [{"created": "0001-01-01T00:00:00Z"}],
            "os": "",
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        }))
        .expect("config serialises");
        let manifest = Manifest {
            schema_version: 2,
            media_type: Some(MANIFEST_MEDIA_TYPE.into()),
            config: Layer {
                media_type: CONFIG_MEDIA_TYPE.into(),
                size: config.len() as u64,
                digest: Digest::of(&config),
                annotations: BTreeMap::new(),
            },
            layers: self.layers.clone(),
        };
        let bytes = serde_json::to_vec(&manifest).expect("manifest serialises");
        (config, bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tag_is_the_digest_with_a_dash_and_sig() {
        let d = Digest::of(b"x");
        assert_eq!(tag(&d), format!("sha256-{}.sig", d.hex()));
    }

    #[test]
    fn an_envelope_round_trips_and_adding_the_same_signature_twice_is_a_no_op() {
        let mut e = Envelope::default();
        assert!(e.add(b"payload", "c2ln").unwrap());
        assert!(!e.add(b"payload", "c2ln").unwrap());
        assert!(e.add(b"payload", "b3RoZXI=").unwrap());
        let (config, bytes) = e.to_bytes();
        assert!(String::from_utf8_lossy(&config).contains(&Digest::of(b"payload").to_string()));
        let back = Envelope::parse(&bytes).unwrap();
        assert_eq!(back.signatures().count(), 2);
        assert_eq!(back.layers[0].signature(), Some("c2ln"));
    }

    #[test]
    fn an_index_and_a_manifest_with_hundreds_of_layers_are_refused() {
        let index = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}"#;
        assert!(Envelope::parse(index).unwrap_err().contains("image index"));
        let mut e = Envelope::default();
        for i in 0..MAX_LAYERS {
            e.add(format!("p{i}").as_bytes(), "c2ln").unwrap();
        }
        let err = e.add(b"one more", "c2ln").unwrap_err();
        assert!(err.contains("64 layers"), "{err}");
        let (_, bytes) = e.to_bytes();
        let mut v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        let layer = v["layers"][0].clone();
        v["layers"] = serde_json::Value::Array(vec![layer; 300]);
        let err = Envelope::parse(v.to_string().as_bytes()).unwrap_err();
        assert_eq!(err, "has 300 layers: expected at most 64");
        assert!(
            Envelope::parse(b"{}")
                .unwrap_err()
                .contains("not an image manifest")
        );
    }
}
