//! Signing keys in the formats cosign uses: PEM public keys (SubjectPublicKeyInfo,
//! ECDSA P-256 only), private keys as PKCS#8 or SEC1 PEM, and cosign's encrypted private key
//! (`ENCRYPTED SIGSTORE PRIVATE KEY` / `ENCRYPTED COSIGN PRIVATE KEY`: JSON naming an scrypt
//! key derivation and a NaCl secretbox over the PKCS#8 DER key).
//!
//! Invariant: a key that is not P-256 is refused when it is loaded, naming its algorithm, so
//! verification never meets one. A key is known by its fingerprint, `SHA256:` and the unpadded
//! base64 of the SHA-256 of its DER SubjectPublicKeyInfo (as `ssh-keygen -l` shows SSH keys).

use std::path::{Path, PathBuf};

use base64::Engine as _;
use p256::ecdsa::{SigningKey, VerifyingKey};
use p256::pkcs8::der::pem::PemLabel as _;
use p256::pkcs8::{DecodePrivateKey as _, DecodePublicKey as _, EncodePublicKey as _};

use super::CosignError;

/// A public key releases may be signed with.
#[derive(Debug, Clone)]
pub struct TrustedKey {
    /// Where the key came from (a file name), for people.
    pub name: String,
    pub fingerprint: String,
    pub key: VerifyingKey,
}

impl TrustedKey {
    /// `name (SHA256:…)`.
    #[must_use]
    pub fn describe(&self) -> String {
        format!("{} ({})", self.name, self.fingerprint)
    }
}

/// The fingerprint of a P-256 public key.
#[must_use]
pub fn fingerprint(key: &VerifyingKey) -> String {
    let der = key
        .to_public_key_der()
        .expect("a P-256 key encodes as SubjectPublicKeyInfo");
    let hash = <sha2::Sha256 as sha2::Digest>::digest(der.as_bytes());
    format!(
        "SHA256:{}",
        base64::engine::general_purpose::STANDARD_NO_PAD.encode(hash)
    )
}

fn bad_key(path: &Path, reason: impl Into<String>) -> CosignError {
    CosignError::Key {
        path: path.to_owned(),
        reason: reason.into(),
    }
}

/// OIDs a person recognises, for the message that refuses a key of another kind.
fn oid_name(oid: &str) -> &str {
    match oid {
        "1.2.840.10045.2.1" => "EC",
        "1.2.840.10045.3.1.7" => "P-256",
        "1.3.132.0.34" => "P-384",
        "1.3.132.0.35" => "P-521",
        "1.3.132.0.10" => "secp256k1",
        "1.2.840.113549.1.1.1" => "RSA",
        "1.3.101.112" => "Ed25519",
        other => other,
    }
}

/// Parses one PEM public key (`-----BEGIN PUBLIC KEY-----`) read from `path`.
pub fn parse_public(path: &Path, pem: &str) -> Result<TrustedKey, CosignError> {
    let (label, der) = p256::pkcs8::der::pem::decode_vec(pem.trim().as_bytes())
        .map_err(|e| bad_key(path, format!("not a PEM public key ({e})")))?;
    if label != p256::pkcs8::SubjectPublicKeyInfoRef::PEM_LABEL {
        return Err(bad_key(
            path,
            format!("is a PEM {label:?}: expected \"PUBLIC KEY\""),
        ));
    }
    let key = VerifyingKey::from_public_key_der(&der).map_err(|e| {
        match p256::pkcs8::SubjectPublicKeyInfoRef::try_from(der.as_slice()) {
            Ok(spki) => {
                let algorithm = oid_name(&spki.algorithm.oid.to_string()).to_owned();
                let curve = spki
                    .algorithm
                    .parameters_oid()
                    .map(|o| format!(" {}", oid_name(&o.to_string())))
                    .unwrap_or_default();
                bad_key(
                    path,
                    format!("is a {algorithm}{curve} key: expected ECDSA P-256"),
                )
            }
            Err(_) => bad_key(path, format!("not a SubjectPublicKeyInfo ({e})")),
        }
    })?;
    let name = path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    Ok(TrustedKey {
        name: crate::text::printable(&name, 200),
        fingerprint: fingerprint(&key),
        key,
    })
}

/// The trusted keys at `path`: one PEM file, or every file of a directory whose name does not
/// start with `.` (a Kubernetes Secret or ConfigMap mount: its `..data` entries are skipped,
/// the per-key links followed). An unreadable or non-key file is an error, never skipped, and
/// so is a directory without keys.
pub fn load_trusted(path: &Path) -> Result<Vec<TrustedKey>, CosignError> {
    let read =
        |p: &Path| std::fs::read_to_string(p).map_err(|e| bad_key(p, format!("cannot read: {e}")));
    let meta = std::fs::metadata(path).map_err(|e| bad_key(path, format!("cannot read: {e}")))?;
    if !meta.is_dir() {
        return Ok(vec![parse_public(path, &read(path)?)?]);
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(path)
        .map_err(|e| bad_key(path, format!("cannot list: {e}")))?
        .filter_map(Result::ok)
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .map(|e| e.path())
        .collect();
    files.sort();
    let mut keys = Vec::new();
    for file in files {
        if std::fs::metadata(&file).is_ok_and(|m| m.is_dir()) {
            continue;
        }
        keys.push(parse_public(&file, &read(&file)?)?);
    }
    if keys.is_empty() {
        return Err(bad_key(path, "holds no public keys: expected PEM files"));
    }
    Ok(keys)
}

/// The encrypted key's JSON (go-securesystemslib `encrypted` as cosign writes it).
#[derive(serde::Deserialize)]
struct Encrypted {
    kdf: Kdf,
    cipher: Cipher,
    ciphertext: String,
}

#[derive(serde::Deserialize)]
struct Kdf {
    name: String,
    params: KdfParams,
    salt: String,
}

#[derive(serde::Deserialize)]
#[allow(non_snake_case)]
struct KdfParams {
    N: u64,
    r: u32,
    p: u32,
}

#[derive(serde::Deserialize)]
struct Cipher {
    name: String,
    nonce: String,
}

/// Labels of cosign's encrypted private keys (new and old).
const ENCRYPTED_LABELS: [&str; 2] = [
    "ENCRYPTED SIGSTORE PRIVATE KEY",
    "ENCRYPTED COSIGN PRIVATE KEY",
];

/// Bounds on scrypt's cost, so a crafted key file cannot make the signer use gigabytes.
const MAX_SCRYPT_LOG_N: u8 = 20;

fn decrypt(path: &Path, body: &[u8], password: Option<&str>) -> Result<Vec<u8>, CosignError> {
    use crypto_secretbox::aead::{Aead as _, KeyInit as _};
    let b64 = base64::engine::general_purpose::STANDARD;
    let password = password.ok_or_else(|| {
        bad_key(
            path,
            "is encrypted: set RELEASECTL_SIGN_KEY_PASSWORD (or COSIGN_PASSWORD)",
        )
    })?;
    let e: Encrypted = serde_json::from_slice(body)
        .map_err(|e| bad_key(path, format!("not a cosign encrypted key ({e})")))?;
    if e.kdf.name != "scrypt" || e.cipher.name != "nacl/secretbox" {
        return Err(bad_key(
            path,
            format!(
                "uses {}/{}: expected scrypt/nacl/secretbox",
                crate::text::excerpt(&e.kdf.name),
                crate::text::excerpt(&e.cipher.name)
            ),
        ));
    }
    let n = e.kdf.params.N;
    let log_n = n.checked_ilog2().unwrap_or(0);
    if !n.is_power_of_two() || log_n == 0 || log_n > u32::from(MAX_SCRYPT_LOG_N) {
        return Err(bad_key(
            path,
            format!("scrypt N is {n}: expected a power of two up to 2^{MAX_SCRYPT_LOG_N}"),
        ));
    }
    let params = scrypt::Params::new(log_n as u8, e.kdf.params.r, e.kdf.params.p, 32)
        .ok()
        .filter(|_| e.kdf.params.r <= 32 && e.kdf.params.p <= 16)
        .ok_or_else(|| bad_key(path, "scrypt r or p is out of range"))?;
    let decode = |what: &str, v: &str| {
        b64.decode(v)
            .map_err(|_| bad_key(path, format!("{what} is not base64")))
    };
    let salt = decode("kdf.salt", &e.kdf.salt)?;
    let nonce = decode("cipher.nonce", &e.cipher.nonce)?;
    let ciphertext = decode("ciphertext", &e.ciphertext)?;
    let nonce: [u8; 24] = nonce
        .try_into()
        .map_err(|_| bad_key(path, "cipher.nonce is not 24 bytes"))?;
    let mut key = [0u8; 32];
    scrypt::scrypt(password.as_bytes(), &salt, &params, &mut key)
        .map_err(|e| bad_key(path, format!("scrypt failed ({e})")))?;
    crypto_secretbox::XSalsa20Poly1305::new(&key.into())
        .decrypt(&nonce.into(), ciphertext.as_slice())
        .map_err(|_| {
            bad_key(
                path,
                "cannot decrypt: wrong password, or the file was changed",
            )
        })
}

/// Reads a private key: PKCS#8 (`PRIVATE KEY`), SEC1 (`EC PRIVATE KEY`) or cosign's encrypted
/// key, which needs `password`.
pub fn load_private(path: &Path, password: Option<&str>) -> Result<SigningKey, CosignError> {
    let text =
        std::fs::read_to_string(path).map_err(|e| bad_key(path, format!("cannot read: {e}")))?;
    let (label, der) = p256::pkcs8::der::pem::decode_vec(text.trim().as_bytes())
        .map_err(|e| bad_key(path, format!("not a PEM private key ({e})")))?;
    let pkcs8 = match label {
        "PRIVATE KEY" => der,
        "EC PRIVATE KEY" => {
            return p256::SecretKey::from_sec1_der(&der)
                .map(SigningKey::from)
                .map_err(|e| bad_key(path, format!("not a P-256 SEC1 key ({e})")));
        }
        l if ENCRYPTED_LABELS.contains(&l) => decrypt(path, &der, password)?,
        other => {
            return Err(bad_key(
                path,
                format!("is a PEM {other:?}: expected a PRIVATE KEY or a cosign key"),
            ));
        }
    };
    SigningKey::from_pkcs8_der(&pkcs8).map_err(|e| {
        bad_key(
            path,
            format!("not an ECDSA P-256 PKCS#8 key ({e}): expected ECDSA P-256"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::pkcs8::{EncodePrivateKey as _, LineEnding};

    pub(crate) fn signing_key(seed: u8) -> SigningKey {
        SigningKey::from_slice(&[seed; 32]).unwrap()
    }

    fn public_pem(key: &SigningKey) -> String {
        key.verifying_key()
            .to_public_key_pem(LineEnding::LF)
            .unwrap()
    }

    #[test]
    fn a_public_key_round_trips_and_has_a_stable_fingerprint() {
        let key = signing_key(7);
        let t = parse_public(Path::new("ci.pub"), &public_pem(&key)).unwrap();
        assert_eq!(&t.key, key.verifying_key());
        assert!(t.fingerprint.starts_with("SHA256:"), "{}", t.fingerprint);
        assert_eq!(t.fingerprint, fingerprint(key.verifying_key()));
        assert_ne!(t.fingerprint, fingerprint(signing_key(8).verifying_key()));
        assert_eq!(t.describe(), format!("ci.pub ({})", t.fingerprint));
    }

    #[test]
    fn a_p384_key_is_refused_naming_its_curve() {
        // SubjectPublicKeyInfo of a P-384 key (id-ecPublicKey, secp384r1), point 04 || 96 bytes.
        let mut der = vec![
            0x30, 0x76, 0x30, 0x10, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06,
            0x05, 0x2b, 0x81, 0x04, 0x00, 0x22, 0x03, 0x62, 0x00, 0x04,
        ];
        der.extend([1u8; 96]);
        let pem = p256::pkcs8::der::pem::encode_string("PUBLIC KEY", LineEnding::LF, &der).unwrap();
        let pem = pem.as_str();
        let err = parse_public(Path::new("p384.pub"), pem)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("p384.pub")
                && err.contains("P-384")
                && err.contains("expected ECDSA P-256"),
            "{err}"
        );
    }

    #[test]
    fn a_private_key_or_junk_given_as_a_public_key_is_refused() {
        let key = signing_key(1);
        let pem = key.to_pkcs8_pem(LineEnding::LF).unwrap();
        let err = parse_public(Path::new("k"), &pem).unwrap_err().to_string();
        assert!(
            err.contains("\"PRIVATE KEY\": expected \"PUBLIC KEY\""),
            "{err}"
        );
        let err = parse_public(Path::new("k"), "hello")
            .unwrap_err()
            .to_string();
        assert!(err.contains("not a PEM public key"), "{err}");
    }

    #[test]
    fn a_directory_of_keys_skips_hidden_entries_and_refuses_a_stray_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("..data")).unwrap();
        std::fs::write(dir.path().join("a.pub"), public_pem(&signing_key(1))).unwrap();
        std::fs::write(dir.path().join("b.pub"), public_pem(&signing_key(2))).unwrap();
        std::fs::write(dir.path().join(".hidden"), "junk").unwrap();
        let keys = load_trusted(dir.path()).unwrap();
        let names: Vec<&str> = keys.iter().map(|k| k.name.as_str()).collect();
        assert_eq!(names, ["a.pub", "b.pub"]);
        std::fs::write(dir.path().join("README"), "junk").unwrap();
        let err = load_trusted(dir.path()).unwrap_err().to_string();
        assert!(err.contains("README"), "{err}");
        let empty = tempfile::tempdir().unwrap();
        let err = load_trusted(empty.path()).unwrap_err().to_string();
        assert!(err.contains("holds no public keys"), "{err}");
    }

    /// Writes `key` as cosign writes `cosign.key` (with small scrypt parameters).
    pub(crate) fn encrypted_pem(key: &SigningKey, password: &str) -> String {
        use crypto_secretbox::aead::{Aead as _, KeyInit as _};
        let b64 = base64::engine::general_purpose::STANDARD;
        let salt = [3u8; 32];
        let nonce = [5u8; 24];
        let mut k = [0u8; 32];
        scrypt::scrypt(
            password.as_bytes(),
            &salt,
            &scrypt::Params::new(10, 8, 1, 32).unwrap(),
            &mut k,
        )
        .unwrap();
        let der = key.to_pkcs8_der().unwrap();
        let ct = crypto_secretbox::XSalsa20Poly1305::new(&k.into())
            .encrypt(&nonce.into(), der.as_bytes())
            .unwrap();
        let json = serde_json::json!({
            "kdf": {"name": "scrypt", "params": {"N": 1024, "r": 8, "p": 1}, "salt": b64.encode(salt)},
            "cipher": {"name": "nacl/secretbox", "nonce": b64.encode(nonce)},
            "ciphertext": b64.encode(ct),
        });
        p256::pkcs8::der::pem::encode_string(
            "ENCRYPTED SIGSTORE PRIVATE KEY",
            LineEnding::LF,
            json.to_string().as_bytes(),
        )
        .unwrap()
    }

    #[test]
    fn private_keys_load_from_pkcs8_sec1_and_cosign_encrypted_files() {
        let key = signing_key(9);
        let dir = tempfile::tempdir().unwrap();
        let pkcs8 = dir.path().join("pkcs8.pem");
        std::fs::write(&pkcs8, key.to_pkcs8_pem(LineEnding::LF).unwrap()).unwrap();
        assert_eq!(load_private(&pkcs8, None).unwrap(), key);
        let enc = dir.path().join("cosign.key");
        std::fs::write(&enc, encrypted_pem(&key, "s3cret")).unwrap();
        assert_eq!(load_private(&enc, Some("s3cret")).unwrap(), key);
        let err = load_private(&enc, Some("wrong")).unwrap_err().to_string();
        assert!(err.contains("wrong password"), "{err}");
        let err = load_private(&enc, None).unwrap_err().to_string();
        assert!(err.contains("RELEASECTL_SIGN_KEY_PASSWORD"), "{err}");
    }

    #[test]
    fn an_encrypted_key_with_huge_scrypt_cost_is_refused_before_deriving() {
        let key = signing_key(9);
        let pem = encrypted_pem(&key, "pw");
        let (label, body) = p256::pkcs8::der::pem::decode_vec(pem.as_bytes()).unwrap();
        let json = String::from_utf8(body)
            .unwrap()
            .replace("\"N\":1024", "\"N\":4294967296");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cosign.key");
        std::fs::write(
            &path,
            p256::pkcs8::der::pem::encode_string(label, LineEnding::LF, json.as_bytes()).unwrap(),
        )
        .unwrap();
        let err = load_private(&path, Some("pw")).unwrap_err().to_string();
        assert!(err.contains("scrypt N is 4294967296"), "{err}");
    }
}
