//! TLS set-up shared by every HTTP client: rustls with the `ring` provider (pure Rust apart
//! from ring's own assembly; no aws-lc-sys build).

/// Installs `ring` as the process's rustls crypto provider; a second call is a no-op.
pub fn install_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
