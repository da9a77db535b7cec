//! SSH keys for signed approvals: ed25519 pairs made by `ssh-keygen`, `ssh-keygen -Y verify`,
//! the canonical payload an approval signature covers (written out independently of the
//! product, so a test pins the format), and the policy that lists approvers with their keys.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::cmd::{Cmd, Output};
use super::world::{ALICE, BOB, approvals_policy};

/// The namespace of approval signatures (`ssh-keygen -Y sign -n`).
pub const NAMESPACE: &str = "releasectl-approval";

/// An approvals policy with alice and bob listed with their SSH public keys.
pub fn keyed_policy(alice: &Key, bob: &Key) -> String {
    approvals_policy(&format!(
        "{{id: {ALICE}, key: \"{}\"}}, {{id: {BOB}, key: \"{}\"}}",
        alice.public, bob.public
    ))
}

/// An ed25519 key pair made by `ssh-keygen -t ed25519 -N ''`.
pub struct Key {
    pub private: PathBuf,
    /// `ssh-ed25519 AAAA… comment`.
    pub public: String,
}

impl Key {
    pub fn generate(dir: &Path, name: &str) -> Self {
        super::require_command("ssh-keygen", "openssh-client");
        let private = dir.join(name);
        Cmd::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
            .arg(&private)
            .run()
            .assert_success();
        let public = std::fs::read_to_string(dir.join(format!("{name}.pub")))
            .expect("read public key")
            .trim()
            .to_owned();
        Self { private, public }
    }

    /// `ssh-keygen -Y sign -f KEY -n NAMESPACE` over `payload`: the armored signature.
    pub fn sign(&self, payload: &str, namespace: &str) -> String {
        let dir = super::temp_dir();
        let file = dir.path().join("payload");
        std::fs::write(&file, payload).expect("write payload");
        Cmd::new("ssh-keygen")
            .args(["-q", "-Y", "sign", "-n", namespace, "-f"])
            .arg(&self.private)
            .arg(&file)
            .run()
            .assert_success();
        std::fs::read_to_string(dir.path().join("payload.sig")).expect("read signature")
    }
}

/// `ssh-keygen -Y verify -f allowed_signers -I identity -n releasectl-approval -s SIG < PAYLOAD`.
pub fn ssh_keygen_verify(identity: &str, public: &str, payload: &str, signature: &str) -> Output {
    let dir = super::temp_dir();
    let signers = dir.path().join("allowed_signers");
    std::fs::write(
        &signers,
        format!("{identity} namespaces=\"{NAMESPACE}\" {public}\n"),
    )
    .expect("write allowed_signers");
    let sig = dir.path().join("approval.sig");
    std::fs::write(&sig, signature).expect("write signature");
    Cmd::new("ssh-keygen")
        .args(["-Y", "verify", "-f"])
        .arg(&signers)
        .args(["-I", identity, "-n", NAMESPACE, "-s"])
        .arg(&sig)
        .stdin(payload.as_bytes().to_vec())
        .run()
}

/// The canonical payload an approval's signature covers, written out independently of the
/// product (docs/design.md §8, `Approval::payload`): a test that pins the format.
pub fn payload(file: &Value, approval: &Value) -> String {
    let s = |v: &Value| v.as_str().expect("string field").to_owned();
    format!(
        "releasectl-approval-v1\nenvironment={}\nrepository={}\nproject={}\ncommit={}\ndigest={}\napprover={}\nexpires_at={}\n",
        s(&approval["environment"]),
        s(&file["repository"]),
        s(&file["project"]),
        s(&file["commit"]),
        s(&approval["digest"]),
        s(&approval["approver"]),
        s(&approval["expires_at"]),
    )
}
