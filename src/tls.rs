//! TLS set-up shared by every HTTP client: rustls with the `ring` provider (pure Rust apart
//! from ring's own assembly; no aws-lc-sys build).

/// Installs `ring` as the process's rustls crypto provider; a second call is a no-op.
pub fn install_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A reqwest client for a service other than a registry (Argo CD), built the way the
/// registry transport builds its own: rustls with `ring`, the system's roots plus `ca_pem`,
/// and no trust store at all for a plain-HTTP server. Errors name no URL.
pub fn http_client(
    ca_pem: Option<&[u8]>,
    plain_http: bool,
    connect_timeout: std::time::Duration,
) -> Result<reqwest::Client, String> {
    install_provider();
    let mut builder = reqwest::Client::builder()
        .connect_timeout(connect_timeout)
        .user_agent(concat!("releasectl/", env!("CARGO_PKG_VERSION")));
    if plain_http {
        builder = builder.tls_certs_only(Vec::new());
    }
    if let Some(pem) = ca_pem {
        let certs = reqwest::Certificate::from_pem_bundle(pem)
            .map_err(|e| format!("bad CA file: {}", e.without_url()))?;
        builder = builder.tls_certs_merge(certs);
    }
    builder.build().map_err(|e| e.without_url().to_string())
}
