//! Argo CD's watch stream (`GET /api/v1/stream/applications?name=…`), read as the OpenAPI
//! document describes it: newline-delimited JSON, each line `{"result": {"type": …,
//! "application": v1alpha1Application}}` or `{"error": …}`.
//!
//! Invariants: a line is at most [`LINE_CAP`] bytes; reading is cancel-safe (a caller may give
//! up on [`Watch::next`] at a timeout and call it again without losing bytes, since only
//! whole chunks are taken from the response).

use serde::Deserialize;

use super::{Application, ArgoError};

/// The longest line read.
pub const LINE_CAP: usize = 8 << 20;

#[derive(Deserialize)]
struct Line {
    result: Option<Event>,
    error: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct Event {
    application: Option<Application>,
}

/// An open watch stream of one Application.
pub struct Watch {
    response: reqwest::Response,
    buffer: Vec<u8>,
    /// An error naming the server and the Application, whose reason is filled in.
    template: ArgoError,
}

impl Watch {
    pub(super) fn new(response: reqwest::Response, template: ArgoError) -> Self {
        Self {
            response,
            buffer: Vec::new(),
            template,
        }
    }

    fn failed(&self, reason: impl std::fmt::Display) -> ArgoError {
        match &self.template {
            ArgoError::Failed { server, app, .. } => ArgoError::Failed {
                server: server.clone(),
                app: app.clone(),
                reason: format!("watch: {reason}"),
            },
            other => ArgoError::Setup(other.to_string()),
        }
    }

    /// The next Application the stream sends; `None` when the server ended the stream.
    pub async fn next(&mut self) -> Option<Result<Application, ArgoError>> {
        loop {
            if let Some(end) = self.buffer.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.buffer.drain(..=end).collect();
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                return Some(match serde_json::from_slice::<Line>(&line) {
                    Ok(Line {
                        result:
                            Some(Event {
                                application: Some(app),
                            }),
                        ..
                    }) => Ok(app),
                    Ok(Line { error: Some(e), .. }) => {
                        Err(self.failed(crate::text::printable(&e.to_string(), 200)))
                    }
                    Ok(_) => continue,
                    Err(e) => Err(self.failed(format!(
                        "not an event: {}",
                        crate::text::excerpt(&e.to_string())
                    ))),
                });
            }
            match self.response.chunk().await {
                Ok(Some(chunk)) => {
                    self.buffer.extend_from_slice(&chunk);
                    if self.buffer.len() > LINE_CAP {
                        return Some(Err(
                            self.failed(format!("a line longer than {LINE_CAP} bytes"))
                        ));
                    }
                }
                Ok(None) => return None,
                Err(e) => return Some(Err(self.failed(e.without_url()))),
            }
        }
    }
}
