//! SSH signatures for approvals (DESIGN.md §8): the `ssh-keygen -Y sign` format (sshsig),
//! namespace `releasectl-approval`, over an approval's canonical payload.
//!
//! Verification is pure Rust (ssh-key), interoperable both ways with `ssh-keygen -Y sign`
//! and `ssh-keygen -Y verify`.

use std::path::Path;

use ssh_key::{HashAlg, PrivateKey, PublicKey, SshSig};

pub const NAMESPACE: &str = "releasectl-approval";

/// Verifies `signature` (PEM, `-----BEGIN SSH SIGNATURE-----`) over `payload` by `public_key`
/// (`ssh-ed25519 AAAA… comment`). The error says why, without echoing the inputs.
pub fn verify_approval(public_key: &str, payload: &str, signature: &str) -> Result<(), String> {
    let key = PublicKey::from_openssh(public_key.trim())
        .map_err(|e| format!("the policy's key is not an SSH public key ({e})"))?;
    let sig =
        SshSig::from_pem(signature.trim()).map_err(|e| format!("not an SSH signature ({e})"))?;
    if sig.namespace() != NAMESPACE {
        return Err(format!(
            "signature namespace is {:?}: expected {NAMESPACE:?}",
            sig.namespace()
        ));
    }
    key.verify(NAMESPACE, payload.as_bytes(), &sig)
        .map_err(|_| "made by another key, or over other content".to_owned())
}

/// Signs `payload` with the private key at `path` (OpenSSH format, unencrypted).
pub fn sign(path: &Path, payload: &str) -> Result<String, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read key {}: {e}", path.display()))?;
    let key = PrivateKey::from_openssh(&text)
        .map_err(|e| format!("{} is not an OpenSSH private key ({e})", path.display()))?;
    if key.is_encrypted() {
        return Err(format!(
            "{} is encrypted: use an unencrypted key or ssh-agent",
            path.display()
        ));
    }
    let sig = key
        .sign(NAMESPACE, HashAlg::Sha512, payload.as_bytes())
        .map_err(|e| format!("cannot sign with {}: {e}", path.display()))?;
    sig.to_pem(ssh_key::LineEnding::LF)
        .map_err(|e| format!("cannot encode the signature: {e}"))
}
