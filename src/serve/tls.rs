//! HTTPS for `serve --tls-cert PEM --tls-key PEM`: rustls with the `ring` provider (the one
//! the HTTP clients use, src/tls.rs), HTTP/1.1 by ALPN, TLS 1.2 and 1.3.
//!
//! Invariants: the files are read once at start, and a file that is missing, holds no
//! certificate or no private key, or a key that does not match the certificate stops the
//! server before it listens, naming the file; the key's bytes never appear in a message.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

use crate::exit::InvalidInput;

/// The acceptor of HTTPS connections with the certificate chain `cert` and the key `key`.
///
/// # Errors
///
/// A file that cannot be read or parsed, or a key that does not match the certificate.
pub fn acceptor(cert: &Path, key: &Path) -> Result<TlsAcceptor, InvalidInput> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .and_then(Iterator::collect)
        .map_err(|e| {
            InvalidInput(format!(
                "--tls-cert {}: expected PEM certificates: {e}",
                cert.display()
            ))
        })?;
    if chain.is_empty() {
        return Err(InvalidInput(format!(
            "--tls-cert {}: expected PEM certificates, found none",
            cert.display()
        )));
    }
    let private = PrivateKeyDer::from_pem_file(key).map_err(|e| {
        InvalidInput(format!(
            "--tls-key {}: expected a PEM private key (PKCS#8, PKCS#1 or SEC1): {e}",
            key.display()
        ))
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| InvalidInput(format!("TLS: {e}")))?
        .with_no_client_auth()
        .with_single_cert(chain, private)
        .map_err(|e| {
            InvalidInput(format!(
                "--tls-cert {} and --tls-key {}: {e}",
                cert.display(),
                key.display()
            ))
        })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_that_are_not_a_certificate_and_its_key_are_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let junk = dir.path().join("junk.pem");
        std::fs::write(&junk, "not pem\n").unwrap();
        let e = acceptor(&junk, &junk).err().unwrap().to_string();
        assert!(e.contains("--tls-cert") && e.contains("junk.pem"), "{e}");
        assert!(e.contains("found none"), "{e}");
        let missing = dir.path().join("missing.pem");
        let e = acceptor(&missing, &missing).err().unwrap().to_string();
        assert!(e.contains("missing.pem"), "{e}");
    }
}
