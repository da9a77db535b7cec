//! Argo CD's REST API, read-only: the one place releasectl asks a cluster-side component how
//! a deploy went (docs/argocd.md, "Waiting for Argo CD").
//!
//! Only `GET /api/v1/applications/{name}` and the watch stream `GET
//! /api/v1/stream/applications?name=` ([`watch`]) are used, with Argo CD's `appNamespace` and
//! `project` query parameters, over the crate's one HTTP stack (reqwest, rustls, see
//! `tls`). Invariants: the token travels only in the `Authorization: Bearer` header and
//! is a [`Secret`] (never in a message, a log line or Debug output); 401, 403 and 404 fail at
//! once and name the Application and the server; values from the server reach messages only
//! through `text::printable`.

pub mod app;
pub mod watch;

use std::path::PathBuf;
use std::time::{Duration, Instant};

pub use app::Application;

use crate::credentials::Secret;

/// How to reach Argo CD, from the settings.
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// `--argocd` / `RELEASECTL_ARGOCD_SERVER`.
    pub server: Option<String>,
    /// `RELEASECTL_ARGOCD_TOKEN`: an API token of a project-scoped account.
    pub token: Option<Secret>,
    pub ca_file: Option<PathBuf>,
    /// An `http://` server is allowed only with `--argocd-insecure`.
    pub insecure: bool,
    /// `--argocd-app`: `{env}`, `{repository}` and `{project}` in a template.
    pub app_template: String,
    pub app_namespace: Option<String>,
    pub project: Option<String>,
}

/// What went wrong asking Argo CD.
#[derive(Debug, thiserror::Error)]
pub enum ArgoError {
    #[error("{0}")]
    Setup(String),
    #[error(
        "argo cd {server}: application {app}: {status}: check RELEASECTL_ARGOCD_TOKEN and that the account may `get` applications in its project (docs/argocd.md)"
    )]
    Denied {
        server: String,
        app: String,
        status: u16,
    },
    #[error("argo cd {server}: application {app} not found (404): check --argocd-app{namespace}")]
    NotFound {
        server: String,
        app: String,
        namespace: String,
    },
    #[error("argo cd {server}: application {app}: {reason}")]
    Failed {
        server: String,
        app: String,
        reason: String,
    },
}

impl crate::exit::Classify for ArgoError {
    fn exit(&self) -> crate::exit::Exit {
        match self {
            Self::Setup(_) => crate::exit::Exit::Usage,
            _ => crate::exit::Exit::Remote,
        }
    }
}

/// Argo CD's `normalize` as the example ApplicationSet uses it: lower case, every character
/// outside `[a-z0-9.-]` becomes `-`, no leading or trailing `-` or `.`, at most 253.
#[must_use]
pub fn normalize(name: &str) -> String {
    let mapped: String = name
        .to_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.' {
                c
            } else {
                '-'
            }
        })
        .collect();
    let trimmed = mapped.trim_matches(|c| c == '-' || c == '.');
    trimmed.chars().take(253).collect()
}

impl Config {
    /// The name of the Application that shows `env`'s pointer of `repository/project`.
    #[must_use]
    pub fn app_name(&self, env: &str, repository: &str, project: &str) -> String {
        let template = if self.app_template.is_empty() {
            "{env}-{repository}-{project}"
        } else {
            &self.app_template
        };
        normalize(
            &template
                .replace("{env}", env)
                .replace("{repository}", repository)
                .replace("{project}", project),
        )
    }

    /// A client, or a usage error saying what is missing.
    pub fn client(&self) -> Result<Client, ArgoError> {
        let server = self.server.as_deref().ok_or_else(|| {
            ArgoError::Setup(
                "no Argo CD server: set --argocd or RELEASECTL_ARGOCD_SERVER (docs/argocd.md)"
                    .into(),
            )
        })?;
        let server = server.trim_end_matches('/').to_owned();
        let plain = if server.starts_with("https://") {
            false
        } else if server.starts_with("http://") {
            if !self.insecure {
                return Err(ArgoError::Setup(format!(
                    "argo cd {}: plain HTTP needs --argocd-insecure",
                    crate::text::excerpt(&server)
                )));
            }
            true
        } else {
            return Err(ArgoError::Setup(format!(
                "--argocd is {:?}: expected https://HOST[:PORT]",
                crate::text::excerpt(&server)
            )));
        };
        if server.contains('@') {
            return Err(ArgoError::Setup(
                "--argocd holds credentials: give the token in RELEASECTL_ARGOCD_TOKEN only".into(),
            ));
        }
        let token = self.token.clone().ok_or_else(|| {
            ArgoError::Setup(format!(
                "argo cd {server}: no token: set RELEASECTL_ARGOCD_TOKEN (docs/argocd.md)"
            ))
        })?;
        let ca =
            match &self.ca_file {
                Some(p) => Some(std::fs::read(p).map_err(|e| {
                    ArgoError::Setup(format!("argo cd CA file {}: {e}", p.display()))
                })?),
                None => None,
            };
        let http = crate::tls::http_client(ca.as_deref(), plain, Duration::from_secs(5))
            .map_err(|e| ArgoError::Setup(format!("argo cd {server}: {e}")))?;
        Ok(Client {
            server,
            token,
            http,
            app_namespace: self.app_namespace.clone(),
            project: self.project.clone(),
        })
    }
}

/// A connection to one Argo CD server.
pub struct Client {
    server: String,
    token: Secret,
    http: reqwest::Client,
    app_namespace: Option<String>,
    project: Option<String>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("server", &self.server)
            .field("token", &self.token)
            .finish_non_exhaustive()
    }
}

/// The most of an Application's JSON that is read.
const BODY_CAP: usize = 8 << 20;

impl Client {
    #[must_use]
    pub fn server(&self) -> &str {
        &self.server
    }

    fn failed(&self, app: &str, reason: impl std::fmt::Display) -> ArgoError {
        ArgoError::Failed {
            server: self.server.clone(),
            app: crate::text::excerpt(app),
            reason: reason.to_string(),
        }
    }

    /// `{server}/api/v1/{segments…}` with `name` (when given as a query parameter), and the
    /// `appNamespace` and `project` parameters when configured.
    fn url(
        &self,
        app: &str,
        segments: &[&str],
        name: Option<&str>,
    ) -> Result<reqwest::Url, ArgoError> {
        let mut url = reqwest::Url::parse(&format!("{}/api/v1/", self.server))
            .map_err(|e| self.failed(app, e))?;
        url.path_segments_mut()
            .map_err(|()| self.failed(app, "the server URL cannot take a path"))?
            .pop_if_empty()
            .extend(segments);
        {
            let mut q = url.query_pairs_mut();
            if let Some(n) = name {
                q.append_pair("name", n);
            }
            if let Some(ns) = &self.app_namespace {
                q.append_pair("appNamespace", ns);
            }
            if let Some(p) = &self.project {
                q.append_pair("project", p);
            }
        }
        if url.query() == Some("") {
            url.set_query(None);
        }
        Ok(url)
    }

    /// Sends a GET with the token; 401 and 403 are [`ArgoError::Denied`], 404
    /// [`ArgoError::NotFound`].
    async fn send(
        &self,
        app: &str,
        url: reqwest::Url,
        timeout: Duration,
    ) -> Result<reqwest::Response, ArgoError> {
        let response = self
            .http
            .get(url)
            .bearer_auth(self.token.expose())
            .timeout(timeout)
            .send()
            .await
            .map_err(|e| self.failed(app, e.without_url()))?;
        let status = response.status();
        if status == reqwest::StatusCode::UNAUTHORIZED || status == reqwest::StatusCode::FORBIDDEN {
            return Err(ArgoError::Denied {
                server: self.server.clone(),
                app: crate::text::excerpt(app),
                status: status.as_u16(),
            });
        }
        // Argo CD answers 403 for an Application the account may not see, and 404 for one
        // that does not exist.
        if status == reqwest::StatusCode::NOT_FOUND {
            return Err(ArgoError::NotFound {
                server: self.server.clone(),
                app: crate::text::excerpt(app),
                namespace: self
                    .app_namespace
                    .as_deref()
                    .map(|n| format!(" and --argocd-app-namespace ({})", crate::text::excerpt(n)))
                    .unwrap_or_default(),
            });
        }
        Ok(response)
    }

    /// `GET /api/v1/applications/{name}`, within `deadline` (one try: the caller polls).
    pub async fn get(&self, name: &str, deadline: Instant) -> Result<Application, ArgoError> {
        let left = deadline
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
            .ok_or_else(|| self.failed(name, "no time left"))?;
        let url = self.url(name, &["applications", name], None)?;
        let mut response = self
            .send(name, url, left.min(Duration::from_secs(15)))
            .await?;
        let status = response.status();
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| self.failed(name, e.without_url()))?
        {
            body.extend_from_slice(&chunk);
            if body.len() > BODY_CAP {
                return Err(self.failed(name, format!("answer larger than {BODY_CAP} bytes")));
            }
        }
        if !status.is_success() {
            let text = String::from_utf8_lossy(&body);
            return Err(self.failed(
                name,
                format!(
                    "HTTP {}: {}",
                    status.as_u16(),
                    crate::text::printable(&text, 200)
                ),
            ));
        }
        serde_json::from_slice(&body).map_err(|e| {
            self.failed(
                name,
                format!(
                    "not an Application: {}",
                    crate::text::excerpt(&e.to_string())
                ),
            )
        })
    }

    /// `GET /api/v1/stream/applications?name={name}`: Argo CD's watch stream of one
    /// Application, open until `deadline`.
    pub async fn watch(&self, name: &str, deadline: Instant) -> Result<watch::Watch, ArgoError> {
        let left = deadline.saturating_duration_since(Instant::now());
        let url = self.url(name, &["stream", "applications"], Some(name))?;
        let response = self.send(name, url, left).await?;
        if !response.status().is_success() {
            return Err(self.failed(name, format!("watch: HTTP {}", response.status().as_u16())));
        }
        Ok(watch::Watch::new(response, self.failed(name, "")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn application_names_follow_the_example_applicationsets_normalize() {
        let c = Config::default();
        assert_eq!(
            c.app_name("prod", "company/monorepo", "auth-service"),
            "prod-company-monorepo-auth-service"
        );
        let c = Config {
            app_template: "{project}.{env}".into(),
            ..Config::default()
        };
        assert_eq!(c.app_name("Prod", "r", "Web_UI"), "web-ui.prod");
        assert_eq!(normalize("--a..b--"), "a..b");
    }

    #[test]
    fn a_client_needs_a_token_and_https_unless_insecure_and_never_shows_the_token() {
        let mut c = Config {
            server: Some("http://argocd.local".into()),
            token: Some(Secret::new("s3cret-token".into())),
            ..Config::default()
        };
        let e = c.client().unwrap_err().to_string();
        assert!(e.contains("--argocd-insecure"), "{e}");
        c.insecure = true;
        let client = c.client().expect("a client");
        assert!(!format!("{client:?} {c:?}").contains("s3cret"));
        c.token = None;
        assert!(
            c.client()
                .unwrap_err()
                .to_string()
                .contains("RELEASECTL_ARGOCD_TOKEN")
        );
    }
}
