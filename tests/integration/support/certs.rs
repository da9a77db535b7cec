//! Test certificates made with the `openssl` CLI.
//!
//! A CA (`CA:TRUE`, keyCertSign) signs a leaf with `basicConstraints=CA:FALSE` and
//! `subjectAltName=IP:127.0.0.1`: rustls (webpki) rejects a self-signed CA certificate used
//! directly as the server's certificate (`CaUsedAsEndEntity`), so the one-certificate shortcut
//! would test nothing. ECDSA P-256 keys: quick to make and accepted by rustls, Go and OpenSSL.

use std::fs;
use std::path::{Path, PathBuf};

use super::cmd::Cmd;

/// A CA and a server certificate for 127.0.0.1, as PEM files in one directory.
#[derive(Clone, Debug)]
pub struct TlsFiles {
    /// The CA certificate, to be trusted by clients.
    pub ca_pem: PathBuf,
    /// The server certificate (leaf only).
    pub cert_pem: PathBuf,
    pub key_pem: PathBuf,
    /// A directory holding only `ca.crt`, the layout skopeo's `--cert-dir` and containers'
    /// `certs.d` expect.
    pub cert_dir: PathBuf,
}

fn openssl(args: &[&str], cwd: &Path) {
    Cmd::new("openssl")
        .args(args)
        .current_dir(cwd)
        .run()
        .assert_success();
}

/// Makes a CA and a leaf for `IP:127.0.0.1` and `DNS:localhost` in `dir`.
pub fn make_tls(dir: &Path) -> TlsFiles {
    super::require_command("openssl", "openssl");
    fs::create_dir_all(dir).expect("create certificate dir");
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];

    let mut ca_args = vec!["req", "-x509"];
    ca_args.extend(ec);
    ca_args.extend([
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "7",
        "-subj",
        "/CN=releasectl test CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ]);
    openssl(&ca_args, dir);

    let mut csr_args = vec!["req", "-new"];
    csr_args.extend(ec);
    csr_args.extend([
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]);
    openssl(&csr_args, dir);

    fs::write(
        dir.join("server.ext"),
        "basicConstraints=critical,CA:FALSE\n\
         keyUsage=critical,digitalSignature\n\
         extendedKeyUsage=serverAuth\n\
         subjectAltName=IP:127.0.0.1,DNS:localhost\n\
         subjectKeyIdentifier=hash\n\
         authorityKeyIdentifier=keyid\n",
    )
    .expect("write server.ext");
    openssl(
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "7",
            "-extfile",
            "server.ext",
            "-out",
            "server.pem",
        ],
        dir,
    );

    let cert_dir = dir.join("certs.d");
    fs::create_dir_all(&cert_dir).expect("create certs.d");
    fs::copy(dir.join("ca.pem"), cert_dir.join("ca.crt")).expect("copy ca.crt");
    TlsFiles {
        ca_pem: dir.join("ca.pem"),
        cert_pem: dir.join("server.pem"),
        key_pem: dir.join("server.key"),
        cert_dir,
    }
}
