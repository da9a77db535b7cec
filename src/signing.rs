//! SSH signatures (the `ssh-keygen -Y sign` format, sshsig): for approvals (docs/design.md §8),
//! namespace `releasectl-approval`, over an approval's canonical payload; and for the commits
//! releasectl writes, namespace `git`, over the commit object without its `gpgsig` header,
//! exactly as `git commit -S` with `gpg.format=ssh` signs.
//!
//! Verification is pure Rust (ssh-key), interoperable both ways with `ssh-keygen -Y sign`,
//! `ssh-keygen -Y verify` and `git verify-commit`.

use std::path::Path;

use ssh_key::{HashAlg, PrivateKey, PublicKey, SshSig};

pub const NAMESPACE: &str = "releasectl-approval";
/// The namespace git signs commits in.
pub const GIT_NAMESPACE: &str = "git";

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
    sign_in(path, NAMESPACE, payload.as_bytes())
}

/// Creates a commit object (no ref moves), signed with the SSH key `key` when there is one:
/// the `gpgsig` header holds the armored sshsig over the commit buffer, namespace `git`, as
/// `git commit -S` writes it with `gpg.format=ssh`.
pub fn commit(
    repo: &git2::Repository,
    author: &git2::Signature<'_>,
    committer: &git2::Signature<'_>,
    message: &str,
    tree: &git2::Tree<'_>,
    parents: &[&git2::Commit<'_>],
    key: Option<&Path>,
) -> Result<git2::Oid, git2::Error> {
    let Some(key) = key else {
        return repo.commit(None, author, committer, message, tree, parents);
    };
    let buffer = repo.commit_create_buffer(author, committer, message, tree, parents)?;
    let content = buffer
        .as_str()
        .map_err(|_| git2::Error::from_str("the commit is not UTF-8"))?;
    let signature = sign_in(key, GIT_NAMESPACE, content.as_bytes())
        .map_err(|e| git2::Error::from_str(&format!("RELEASECTL_SIGNING_KEY: {e}")))?;
    repo.commit_signed(content, signature.trim_end(), Some("gpgsig"))
}

/// Who signed a commit, as far as its `gpgsig` header says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommitSigner {
    Unsigned,
    /// A valid SSH signature by this key (`ssh-ed25519 AAAA…`, no comment) and its fingerprint.
    Key {
        public: String,
        fingerprint: String,
    },
    /// A signature that is not a valid SSH signature of this commit (the reason).
    Invalid(String),
}

/// Checks the SSH signature of commit `oid`.
#[must_use]
pub fn commit_signer(repo: &git2::Repository, oid: git2::Oid) -> CommitSigner {
    let Ok((signature, data)) = repo.extract_signature(&oid, None) else {
        return CommitSigner::Unsigned;
    };
    let Ok(signature) = signature.as_str() else {
        return CommitSigner::Invalid("the signature is not text".into());
    };
    let sig = match SshSig::from_pem(signature.trim()) {
        Ok(s) => s,
        Err(_) if signature.contains("BEGIN PGP SIGNATURE") => {
            return CommitSigner::Invalid("an OpenPGP signature: expected an SSH signature".into());
        }
        Err(e) => return CommitSigner::Invalid(format!("not an SSH signature ({e})")),
    };
    if sig.namespace() != GIT_NAMESPACE {
        return CommitSigner::Invalid(format!(
            "signature namespace is {:?}: expected {GIT_NAMESPACE:?}",
            crate::text::excerpt(sig.namespace())
        ));
    }
    let key = PublicKey::from(sig.public_key().clone());
    if key.verify(GIT_NAMESPACE, &data, &sig).is_err() {
        return CommitSigner::Invalid("the signature does not match the commit".into());
    }
    CommitSigner::Key {
        public: key.to_openssh().unwrap_or_default(),
        fingerprint: key.fingerprint(HashAlg::Sha256).to_string(),
    }
}

/// Whether the SSH public key `listed` (`ssh-ed25519 AAAA… comment`) is `public`.
#[must_use]
pub fn same_key(listed: &str, public: &str) -> bool {
    match (
        PublicKey::from_openssh(listed.trim()),
        PublicKey::from_openssh(public.trim()),
    ) {
        (Ok(a), Ok(b)) => a.key_data() == b.key_data(),
        _ => false,
    }
}

fn sign_in(path: &Path, namespace: &str, payload: &[u8]) -> Result<String, String> {
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
        .sign(namespace, HashAlg::Sha512, payload)
        .map_err(|e| format!("cannot sign with {}: {e}", path.display()))?;
    sig.to_pem(ssh_key::LineEnding::LF)
        .map_err(|e| format!("cannot encode the signature: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ssh_key::private::Ed25519Keypair;

    const PAYLOAD: &str =
        "releasectl-approval-v1\nenvironment=production\napprover=alice@company.com\n";

    /// A deterministic ed25519 key (from `seed`), written to a file in OpenSSH format as
    /// `ssh-keygen -t ed25519 -N ''` would.
    fn key(seed: u8) -> (tempfile::TempDir, std::path::PathBuf, PrivateKey) {
        let key = PrivateKey::from(Ed25519Keypair::from_seed(&[seed; 32]));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("id_ed25519");
        std::fs::write(&path, key.to_openssh(ssh_key::LineEnding::LF).unwrap()).unwrap();
        (dir, path, key)
    }

    fn public(key: &PrivateKey) -> String {
        key.public_key().to_openssh().unwrap()
    }

    #[test]
    fn signature_made_by_sign_verifies_against_its_public_key() {
        let (_dir, path, key) = key(1);
        let sig = sign(&path, PAYLOAD).unwrap();
        assert!(sig.starts_with("-----BEGIN SSH SIGNATURE-----\n"), "{sig}");
        assert_eq!(verify_approval(&public(&key), PAYLOAD, &sig), Ok(()));
        // Surrounding whitespace (YAML block scalars add a newline) does not matter.
        assert_eq!(
            verify_approval(
                &format!(" {} \n", public(&key)),
                PAYLOAD,
                &format!("\n{sig}\n")
            ),
            Ok(())
        );
    }

    #[test]
    fn signature_over_other_content_is_rejected() {
        let (_dir, path, key) = key(1);
        let sig = sign(&path, PAYLOAD).unwrap();
        let tampered = PAYLOAD.replace("alice", "mallory");
        let err = verify_approval(&public(&key), &tampered, &sig).unwrap_err();
        assert!(err.contains("another key, or over other content"), "{err}");
        // One byte more is other content too.
        assert!(verify_approval(&public(&key), &format!("{PAYLOAD}\n"), &sig).is_err());
    }

    #[test]
    fn signature_by_another_key_is_rejected() {
        let (_dir, path, _alice) = key(1);
        let (_d2, _p2, mallory) = key(2);
        let sig = sign(&path, PAYLOAD).unwrap();
        let err = verify_approval(&public(&mallory), PAYLOAD, &sig).unwrap_err();
        assert!(err.contains("another key"), "{err}");
    }

    #[test]
    fn signature_in_another_namespace_is_rejected_naming_both() {
        let (_dir, _path, key) = key(1);
        let sig = key
            .sign("git", HashAlg::Sha512, PAYLOAD.as_bytes())
            .unwrap()
            .to_pem(ssh_key::LineEnding::LF)
            .unwrap();
        let err = verify_approval(&public(&key), PAYLOAD, &sig).unwrap_err();
        assert!(err.contains("\"git\"") && err.contains(NAMESPACE), "{err}");
    }

    #[test]
    fn truncated_or_garbled_signature_is_rejected_as_not_a_signature() {
        let (_dir, path, key) = key(1);
        let sig = sign(&path, PAYLOAD).unwrap();
        let lines: Vec<&str> = sig.lines().collect();
        let mut cut = lines[..lines.len() - 2].to_vec();
        cut.push(lines[lines.len() - 1]);
        for bad in [
            cut.join("\n"),
            sig[..sig.len() / 2].to_owned(),
            String::new(),
            "not a signature".to_owned(),
        ] {
            let err = verify_approval(&public(&key), PAYLOAD, &bad).unwrap_err();
            assert!(err.starts_with("not an SSH signature"), "{bad:?}: {err}");
        }
    }

    #[test]
    fn a_policy_key_that_is_not_a_public_key_is_reported_as_such() {
        let (_dir, path, _key) = key(1);
        let sig = sign(&path, PAYLOAD).unwrap();
        let err = verify_approval("ssh-ed25519 AAAAnotbase64!", PAYLOAD, &sig).unwrap_err();
        assert!(
            err.starts_with("the policy's key is not an SSH public key"),
            "{err}"
        );
    }

    #[test]
    fn signing_with_a_missing_or_non_key_file_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope");
        let err = sign(&missing, PAYLOAD).unwrap_err();
        assert!(
            err.contains("cannot read key") && err.contains("nope"),
            "{err}"
        );
        let junk = dir.path().join("junk");
        std::fs::write(&junk, "hello").unwrap();
        let err = sign(&junk, PAYLOAD).unwrap_err();
        assert!(err.contains("is not an OpenSSH private key"), "{err}");
    }

    #[test]
    fn a_commit_signed_with_a_key_names_that_key_and_an_unsigned_one_none() {
        let (_dir, path, key) = key(3);
        let repo_dir = tempfile::tempdir().unwrap();
        let repo = git2::Repository::init_bare(repo_dir.path()).unwrap();
        let tree = repo
            .find_tree(repo.treebuilder(None).unwrap().write().unwrap())
            .unwrap();
        let who = git2::Signature::new("ci", "ci@example.com", &git2::Time::new(1, 0)).unwrap();
        let signed = commit(&repo, &who, &who, "signed\n", &tree, &[], Some(&path)).unwrap();
        let CommitSigner::Key {
            public: made_by,
            fingerprint,
        } = commit_signer(&repo, signed)
        else {
            panic!("not signed by a key: {:?}", commit_signer(&repo, signed));
        };
        assert!(same_key(&public(&key), &made_by));
        assert!(!same_key(&public(&self::key(4).2), &made_by));
        assert_eq!(
            fingerprint,
            key.public_key().fingerprint(HashAlg::Sha256).to_string()
        );
        let raw = repo.find_commit(signed).unwrap();
        let header = raw.raw_header().unwrap();
        assert!(
            header.contains("gpgsig -----BEGIN SSH SIGNATURE-----\n "),
            "{header}"
        );
        let unsigned = commit(&repo, &who, &who, "plain\n", &tree, &[], None).unwrap();
        assert_eq!(commit_signer(&repo, unsigned), CommitSigner::Unsigned);
    }
}
