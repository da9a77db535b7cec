//! Registry credentials: docker `config.json` and the sidecar's environment (docs/design.md §5 rule 7).
//!
//! Lookup order for a registry host: `RELEASECTL_REGISTRY_TOKEN`, or `RELEASECTL_REGISTRY_USERNAME`
//! with `RELEASECTL_REGISTRY_PASSWORD`, from the environment — only for the host of the
//! configured default registry (`RELEASECTL_REGISTRY`), never for a host a pointer names, or
//! anyone who can write a pointer could collect the sidecar's credentials; then
//! `credHelpers[host]`; then `auths[host]`; then `credsStore`. The settings read the
//! environment and hand it over as [`Sources`]; this module reads no variable.
//!
//! Secrets live in [`Secret`], whose `Debug` never shows the value, and no error of this module
//! ever carries one.

use std::collections::BTreeMap;
use std::fmt;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine as _;
use serde::Deserialize;

/// A value that must never be printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    #[must_use]
    pub fn new(value: String) -> Self {
        Self(value)
    }

    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Credentials for one registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credentials {
    Basic {
        username: String,
        password: Secret,
    },
    /// A bearer token sent as it is.
    Token(Secret),
    /// An OAuth2 refresh token (docker config `identitytoken`, as `az acr login` writes it):
    /// exchanged at the registry's token service for an access token, never sent to the
    /// registry itself.
    RefreshToken(Secret),
}

#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    #[error("cannot read docker config {path}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("docker config {path} is not valid JSON: {reason}")]
    Parse { path: PathBuf, reason: String },
    #[error("docker config {path}: auths entry for {host} is not base64 of user:password")]
    BadAuth { path: PathBuf, host: String },
    #[error("credential helper docker-credential-{helper} for {host}: {reason}")]
    Helper {
        helper: String,
        host: String,
        reason: String,
    },
}

// Credentials that cannot be read stop the registry access: a remote failure (exit 5).
crate::exit_class!(CredentialsError => Remote);

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DockerConfig {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
    #[serde(default)]
    cred_helpers: BTreeMap<String, String>,
    #[serde(default)]
    creds_store: Option<String>,
}

/// Deliberately not `Debug`: it holds secrets.
#[derive(Default, Deserialize)]
struct AuthEntry {
    auth: Option<String>,
    username: Option<String>,
    password: Option<String>,
    registrytoken: Option<String>,
    identitytoken: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct HelperReply {
    username: String,
    secret: String,
}

/// The names of Docker Hub: the docker CLI files its credentials under
/// `https://index.docker.io/v1/`, images name `docker.io`, and the API is `registry-1.docker.io`.
const DOCKER_HUB: &[&str] = &["docker.io", "index.docker.io", "registry-1.docker.io"];

/// Normalises an `auths` key (`https://host/v1/`, `host`) to a bare `host[:port]`, Docker Hub's
/// names to `docker.io`.
fn normalise_host(key: &str) -> &str {
    let key = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    let host = key.split('/').next().unwrap_or(key);
    if DOCKER_HUB.contains(&host) {
        DOCKER_HUB[0]
    } else {
        host
    }
}

/// Where a run's registry credentials come from, as the settings read them: the
/// environment's (`RELEASECTL_REGISTRY_TOKEN`, or `RELEASECTL_REGISTRY_USERNAME` with
/// `RELEASECTL_REGISTRY_PASSWORD`), offered only to `env_host`, and the docker config.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    /// The host (`host[:port]`) of the default registry: the only one the environment's
    /// credentials go to.
    pub env_host: Option<String>,
    pub environment: Option<Credentials>,
    /// `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`.
    pub docker_config: Option<PathBuf>,
}

impl Sources {
    /// The environment's credentials: a non-empty token, else a username with a password.
    #[must_use]
    pub fn environment(
        token: Option<Secret>,
        username: Option<String>,
        password: Option<Secret>,
    ) -> Option<Credentials> {
        if let Some(token) = token.filter(|t| !t.0.is_empty()) {
            return Some(Credentials::Token(token));
        }
        Some(Credentials::Basic {
            username: username?,
            password: password?,
        })
    }
}

/// Finds credentials for `host` (`host[:port]`). `Ok(None)` means anonymous. The
/// environment's credentials are offered only when `host` is the default registry's.
pub fn lookup(host: &str, sources: &Sources) -> Result<Option<Credentials>, CredentialsError> {
    if sources.env_host.as_deref() == Some(host)
        && let Some(credentials) = &sources.environment
    {
        return Ok(Some(credentials.clone()));
    }
    match &sources.docker_config {
        Some(path) => lookup_in(path, host),
        None => Ok(None),
    }
}

/// Finds credentials for `host` in the docker config at `path` (absent file: anonymous).
pub fn lookup_in(path: &Path, host: &str) -> Result<Option<Credentials>, CredentialsError> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(CredentialsError::Read {
                path: path.to_owned(),
                source,
            });
        }
    };
    let config: DockerConfig =
        serde_json::from_slice(&bytes).map_err(|e| CredentialsError::Parse {
            path: path.to_owned(),
            // serde_json's message names line and column, never the value.
            reason: e.to_string(),
        })?;
    if let Some(helper) = config.cred_helpers.get(host) {
        return run_helper(helper, host).map(Some);
    }
    let wanted = normalise_host(host);
    if let Some((key, entry)) = config
        .auths
        .iter()
        .find(|(k, _)| normalise_host(k) == wanted)
    {
        if let Some(token) = entry.identitytoken.as_ref().filter(|t| !t.is_empty()) {
            return Ok(Some(Credentials::RefreshToken(Secret(token.clone()))));
        }
        if let Some(token) = &entry.registrytoken {
            return Ok(Some(Credentials::Token(Secret(token.clone()))));
        }
        if let (Some(username), Some(password)) = (&entry.username, &entry.password) {
            return Ok(Some(Credentials::Basic {
                username: username.clone(),
                password: Secret(password.clone()),
            }));
        }
        if let Some(auth) = &entry.auth {
            let bad = || CredentialsError::BadAuth {
                path: path.to_owned(),
                host: key.clone(),
            };
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(auth.trim())
                .map_err(|_| bad())?;
            let decoded = String::from_utf8(decoded).map_err(|_| bad())?;
            let (username, password) = decoded.split_once(':').ok_or_else(bad)?;
            return Ok(Some(Credentials::Basic {
                username: username.to_owned(),
                password: Secret(password.to_owned()),
            }));
        }
    }
    match &config.creds_store {
        Some(store) if !store.is_empty() => run_helper(store, host).map(Some),
        _ => Ok(None),
    }
}

/// Asks `docker-credential-<helper> get` for `host`, per the docker-credential-helpers protocol.
fn run_helper(helper: &str, host: &str) -> Result<Credentials, CredentialsError> {
    let fail = |reason: String| CredentialsError::Helper {
        helper: helper.to_owned(),
        host: host.to_owned(),
        reason,
    };
    let program = format!("docker-credential-{helper}");
    let mut child = Command::new(&program)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| fail(format!("cannot run {program}: {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A helper that exits without reading is reported by its status below.
        let _ = stdin.write_all(host.as_bytes());
    }
    let out = child
        .wait_with_output()
        .map_err(|e| fail(format!("cannot run {program}: {e}")))?;
    if !out.status.success() {
        // The helper's own stdout names the problem ("credentials not found in native
        // keychain"); it never holds the secret on failure. Keep one line of it.
        let said = String::from_utf8_lossy(&out.stdout);
        let said = said.lines().next().unwrap_or("").trim();
        return Err(fail(format!("exited with {}: {said}", out.status)));
    }
    let reply: HelperReply = serde_json::from_slice(&out.stdout)
        .map_err(|_| fail("answered with something that is not {Username, Secret} JSON".into()))?;
    if reply.username == "<token>" {
        return Ok(Credentials::Token(Secret(reply.secret)));
    }
    Ok(Credentials::Basic {
        username: reply.username,
        password: Secret(reply.secret),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(json: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("config.json"), json).unwrap();
        dir
    }

    #[test]
    fn auths_entry_is_decoded_and_matched_by_host_with_or_without_scheme() {
        // "user:pa:ss" — the password may itself hold a colon.
        let dir = config(r#"{"auths":{"https://127.0.0.1:5000/v2/":{"auth":"dXNlcjpwYTpzcw=="}}}"#);
        let creds = lookup_in(&dir.path().join("config.json"), "127.0.0.1:5000").unwrap();
        assert_eq!(
            creds,
            Some(Credentials::Basic {
                username: "user".into(),
                password: Secret("pa:ss".into())
            })
        );
        assert_eq!(
            lookup_in(&dir.path().join("config.json"), "127.0.0.1:5001").unwrap(),
            None
        );
    }

    #[test]
    fn secrets_never_show_in_debug_output() {
        let creds = Credentials::Basic {
            username: "u".into(),
            password: Secret("canary-s3cret".into()),
        };
        assert!(!format!("{creds:?}").contains("canary"));
    }

    #[test]
    fn a_bad_auth_entry_is_named_without_its_value() {
        let dir = config(r#"{"auths":{"reg.example":{"auth":"%%%canary"}}}"#);
        let err = lookup_in(&dir.path().join("config.json"), "reg.example").unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("reg.example") && !msg.contains("canary"),
            "{msg}"
        );
    }

    #[test]
    fn the_docker_hub_key_of_the_docker_cli_matches_every_name_of_docker_hub() {
        let dir = config(r#"{"auths":{"https://index.docker.io/v1/":{"auth":"dXNlcjpwdw=="}}}"#);
        for host in ["docker.io", "index.docker.io", "registry-1.docker.io"] {
            let creds = lookup_in(&dir.path().join("config.json"), host).unwrap();
            assert!(
                matches!(&creds, Some(Credentials::Basic { username, .. }) if username == "user"),
                "{host}: {creds:?}"
            );
        }
        assert_eq!(
            lookup_in(&dir.path().join("config.json"), "ghcr.io").unwrap(),
            None
        );
    }

    #[test]
    fn an_identity_token_is_a_refresh_token_and_wins_over_the_placeholder_auth() {
        // What `az acr login` writes: a placeholder user and the refresh token.
        let dir = config(
            r#"{"auths":{"x.azurecr.io":{"auth":"MDAwMDAwMDAtMDAwMC0wMDAwLTAwMDAtMDAwMDAwMDAwMDAwOg==","identitytoken":"refresh-canary"}}}"#,
        );
        let creds = lookup_in(&dir.path().join("config.json"), "x.azurecr.io").unwrap();
        assert_eq!(
            creds,
            Some(Credentials::RefreshToken(Secret("refresh-canary".into())))
        );
        assert!(!format!("{creds:?}").contains("canary"));
    }
}
