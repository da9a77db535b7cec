//! The CLI's side of `releasectl serve` (docs/serve.md, "Using the CLI with a server"): one
//! HTTP client for the API, with the bearer token of `--server-token-file` or
//! RELEASECTL_SERVER_TOKEN, and the server's answers turned into the structures the local
//! path prints.
//!
//! Invariants: the token goes only into the `Authorization` header, never into a message,
//! a log line or a URL; every error names the server and the request, the status and the
//! server's own error (escaped and cut by [`crate::text::printable`]); an answer's exit class
//! is the one the local path gives the same failure (a policy refusal 4, a conflict 6, a
//! verification failure 3, an authentication or remote failure 5, a bad request 2).
//! This module imports nothing from `serve`: the API's JSON is its only contract.

pub mod deploy;
pub mod reads;

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::credentials::Secret;
use crate::exit::{Classify, Exit};
use crate::settings::Server;

/// How long connecting to the server may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A failed request to the server.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(
        "server {server} refused the token for {what} (401 {kind}): {message}; expected a token it accepts in RELEASECTL_SERVER_TOKEN or --server-token-file"
    )]
    Unauthenticated {
        server: String,
        what: String,
        kind: String,
        message: String,
    },
    #[error("server {server} refused {what} to the token's identity (403 {kind}): {message}")]
    Forbidden {
        server: String,
        what: String,
        kind: String,
        message: String,
    },
    #[error("server {server}: {what}: {status} {kind}: {message}")]
    Answered {
        server: String,
        what: String,
        status: u16,
        kind: String,
        message: String,
    },
    #[error("server {server}: {what}: {reason}")]
    Unreachable {
        server: String,
        what: String,
        reason: String,
    },
    #[error(
        "server {server}: {what}: expected a JSON answer of the API, found status {status} and {found}"
    )]
    Garbled {
        server: String,
        what: String,
        status: u16,
        found: String,
    },
    /// A request the CLI cannot make (a bad CA file, a project not named in full).
    #[error("{0}")]
    Setup(String),
}

impl Classify for ApiError {
    fn exit(&self) -> Exit {
        match self {
            Self::Answered { kind, .. } if kind == "refused" => Exit::Policy,
            Self::Answered { status, .. } => match status {
                400 | 404 | 405 | 413 => Exit::Usage,
                409 => Exit::Conflict,
                422 => Exit::Verify,
                _ => Exit::Remote,
            },
            Self::Unauthenticated { .. }
            | Self::Forbidden { .. }
            | Self::Unreachable { .. }
            | Self::Garbled { .. } => Exit::Remote,
            Self::Setup(_) => Exit::Usage,
        }
    }
}

/// An answer of the server: its status and JSON body.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
}

impl Answer {
    /// The error's `kind` (`refused`, `conflict`, …), for an error answer.
    #[must_use]
    pub fn kind(&self) -> Option<&str> {
        self.body["error"]["kind"].as_str()
    }

    /// The error's message, escaped and cut.
    #[must_use]
    pub fn message(&self) -> String {
        crate::text::printable(
            self.body["error"]["message"]
                .as_str()
                .unwrap_or("no message"),
            1000,
        )
    }
}

/// A connection to one `releasectl serve`.
pub struct Client {
    base: String,
    token: Option<Secret>,
    http: reqwest::Client,
    deadline: Instant,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.base)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A client for `server`; every request ends by `deadline`. An actor given with the
    /// server is refused: the server acts as the token's identity.
    pub fn new(server: &Server, deadline: Instant) -> Result<Self, ApiError> {
        let setup = |m: String| ApiError::Setup(format!("server {}: {m}", server.url));
        if let Some(actor) = &server.actor {
            return Err(ApiError::Setup(format!(
                "--actor {:?} (or RELEASECTL_ACTOR, or the context's actor) with --server {}: expected no actor, since the server acts as the identity of its token",
                crate::text::excerpt(actor),
                server.url
            )));
        }
        let ca = match &server.ca_file {
            Some(p) => {
                Some(std::fs::read(p).map_err(|e| setup(format!("CA file {}: {e}", p.display())))?)
            }
            None => None,
        };
        let plain = server.url.starts_with("http://");
        let http = crate::tls::http_client(ca.as_deref(), plain, CONNECT_TIMEOUT).map_err(setup)?;
        Ok(Self {
            base: server.url.clone(),
            token: server.token.clone(),
            http,
            deadline,
        })
    }

    /// `GET path`: the body of a 2xx answer, else the error.
    pub async fn get(&self, path: &str, what: &str) -> Result<Value, ApiError> {
        let answer = self.send(reqwest::Method::GET, path, None, what).await?;
        self.ok(answer, what)
    }

    /// `POST path` with a JSON body: the answer whatever its status (a refusal carries the
    /// decision report); [`Client::ok`] turns an error answer into an error.
    pub async fn post(&self, path: &str, body: &Value, what: &str) -> Result<Answer, ApiError> {
        self.send(reqwest::Method::POST, path, Some(body), what)
            .await
    }

    /// The body of a 2xx answer, else the error it says.
    pub fn ok(&self, answer: Answer, what: &str) -> Result<Value, ApiError> {
        if (200..300).contains(&answer.status) {
            return Ok(answer.body);
        }
        let server = self.base.clone();
        let what = what.to_owned();
        let kind = crate::text::printable(answer.kind().unwrap_or("error"), 40);
        let message = answer.message();
        Err(match answer.status {
            401 => ApiError::Unauthenticated {
                server,
                what,
                kind,
                message,
            },
            403 => ApiError::Forbidden {
                server,
                what,
                kind,
                message,
            },
            status => ApiError::Answered {
                server,
                what,
                status,
                kind,
                message,
            },
        })
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
        what: &str,
    ) -> Result<Answer, ApiError> {
        let unreachable = |reason: String| ApiError::Unreachable {
            server: self.base.clone(),
            what: what.to_owned(),
            reason,
        };
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(unreachable("the time budget (--timeout) ran out".into()));
        }
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .timeout(left)
            .header(reqwest::header::ACCEPT, "application/json");
        if let Some(token) = &self.token {
            request = request.bearer_auth(token.expose());
        }
        if let Some(body) = body {
            request = request
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.to_string());
        }
        let response = request
            .send()
            .await
            .map_err(|e| unreachable(format!("no answer: {}", chain(&e.without_url()))))?;
        let status = response.status().as_u16();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| unreachable(format!("answer cut short: {}", chain(&e.without_url()))))?;
        match serde_json::from_slice::<Value>(&bytes) {
            Ok(body) if body.is_object() => Ok(Answer { status, body }),
            _ => Err(ApiError::Garbled {
                server: self.base.clone(),
                what: what.to_owned(),
                status,
                found: format!(
                    "{:?}",
                    crate::text::printable(&String::from_utf8_lossy(&bytes), 300)
                ),
            }),
        }
    }
}

/// An error and its causes, `: `-separated (reqwest's own message alone says little).
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cause = c.source();
    }
    crate::text::printable(&out, 1000)
}

/// `{repo}/{project}` of the API's paths, from a project named in full.
pub fn full_project(project: &crate::gitops::ProjectRef) -> Result<String, ApiError> {
    match project {
        crate::gitops::ProjectRef::Full(repo, name) => Ok(format!("{repo}/{name}")),
        crate::gitops::ProjectRef::Bare(name) => Err(ApiError::Setup(format!(
            "project {name}: expected it named in full with --server (company/monorepo/{name}): the API's paths hold {{repo}}/{{project}}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, kind: &str) -> Answer {
        Answer {
            status,
            body: serde_json::json!({"error": {"status": status, "kind": kind, "message": "m\u{1b}[31m"}}),
        }
    }

    fn client() -> Client {
        Client::new(
            &Server {
                url: "http://127.0.0.1:1".into(),
                token: Some(Secret::new("s3cr3t-token".into())),
                ca_file: None,
                actor: None,
            },
            Instant::now() + Duration::from_secs(1),
        )
        .unwrap()
    }

    #[test]
    fn each_error_answer_exits_as_the_local_path_would() {
        let c = client();
        for (status, kind, exit) in [
            (422, "refused", Exit::Policy),
            (409, "refused", Exit::Policy),
            (409, "conflict", Exit::Conflict),
            (422, "verification_failed", Exit::Verify),
            (400, "invalid_input", Exit::Usage),
            (401, "unauthenticated", Exit::Remote),
            (403, "forbidden", Exit::Remote),
            (502, "remote_failure", Exit::Remote),
            (503, "unavailable", Exit::Remote),
        ] {
            let e = c.ok(answer(status, kind), "deploy").unwrap_err();
            assert_eq!(e.exit(), exit, "{status} {kind}: {e}");
            let text = e.to_string();
            assert!(!text.contains('\u{1b}'), "{text}");
            assert!(!text.contains("s3cr3t"), "{text}");
        }
    }

    #[test]
    fn the_debug_form_of_a_client_hides_its_token() {
        let shown = format!("{:?}", client());
        assert!(
            shown.contains("redacted") && !shown.contains("s3cr3t"),
            "{shown}"
        );
    }

    #[test]
    fn a_bare_project_is_refused_naming_the_full_form() {
        let e = full_project(&"auth-service".parse().unwrap()).unwrap_err();
        assert!(
            e.to_string().contains("company/monorepo/auth-service"),
            "{e}"
        );
        assert_eq!(
            full_project(&"company/monorepo/auth-service".parse().unwrap()).unwrap(),
            "company/monorepo/auth-service"
        );
    }
}
