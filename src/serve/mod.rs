//! `releasectl serve`: the release API over HTTP (docs/serve.md), with the GitOps repository
//! still the only state.
//!
//! - [`config`]: the server's configuration file;
//! - [`auth`]: Bearer tokens (static and OIDC) → the principal, the actor of writes;
//! - [`http`]: answers, body limits, strict JSON;
//! - [`writer`]: the one thread that owns the repository's clone and runs requests in order;
//! - [`routes`]: the endpoints;
//! - [`dashboard`]: the HTML dashboard at `/` and `/ui/`;
//! - [`metrics`]: Prometheus `/metrics`;
//! - [`limits`]: the request rate limit per identity or client address;
//! - [`tls`]: HTTPS (`--tls-cert`, `--tls-key`).
//!
//! Invariants: on SIGTERM or Ctrl-C the listener closes, queued writes finish and new ones are
//! refused (503), then the process exits: never half a write; the access log (one JSON line per
//! request on stderr) holds method, path, status, duration and actor, never a header or a
//! token; every request but `/healthz`, `/readyz` and `/metrics` is counted against its
//! caller's rate limit before any work (429 with `Retry-After` beyond it).

pub mod auth;
pub mod config;
pub mod dashboard;
pub mod http;
pub mod limits;
pub mod metrics;
pub mod plans;
pub mod reads;
pub mod routes;
pub mod status;
pub mod tls;
pub mod writer;
pub mod writes;

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use ::http::{Method, Request, Response, StatusCode};
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use serde_json::json;

use self::auth::Authenticator;
use self::config::Config;
use self::http::Reply;
use self::writer::Writer;
use crate::settings::Settings;

/// Everything a request may use.
pub struct State {
    pub settings: Settings,
    pub config: Config,
    pub auth: Authenticator,
    pub writer: Writer,
    pub metrics: metrics::Metrics,
    pub limiter: limits::Limiter,
    /// HTTPS when set; plain HTTP (behind a TLS-terminating proxy) when not.
    pub tls: Option<tokio_rustls::TlsAcceptor>,
}

/// The OpenAPI document served at `/openapi.json`.
pub const OPENAPI: &str = include_str!("openapi.json");

fn respond(reply: &Reply, retry_after: Option<u64>) -> Response<Full<Bytes>> {
    let mut body = serde_json::to_vec(&reply.body).unwrap_or_else(|_| b"{}".to_vec());
    body.push(b'\n');
    let mut response = Response::builder()
        .status(reply.status)
        .header("content-type", "application/json")
        .header("cache-control", "no-store");
    if let Some(seconds) = retry_after {
        response = response.header("retry-after", seconds);
    }
    response
        .body(Full::new(Bytes::from(body)))
        .expect("a valid response")
}

/// Takes one request of `caller`'s allowance: `Err` is the 429 answer and its `Retry-After`.
fn admit(state: &State, caller: &limits::Caller) -> Result<(), (Reply, u64)> {
    state.limiter.take(caller, Instant::now()).map_err(|wait| {
        state.metrics.rate_limited(caller.kind());
        let rate = state.limiter.rate();
        let seconds = wait.as_secs().max(1);
        (
            Reply::mismatch(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                &caller.describe(),
                &format!(
                    "at most {} at once, then {} a second",
                    rate.burst, rate.per_second
                ),
                &format!("more; retry after {seconds} s"),
            ),
            seconds,
        )
    })
}

/// The 429 answer of a dashboard request.
fn limited_page(reply: &Reply, seconds: u64) -> dashboard::Page {
    dashboard::Page {
        status: reply.status,
        body: format!(
            "{}\n",
            reply.body["error"]["message"].as_str().unwrap_or_default()
        ),
        headers: vec![("retry-after", seconds.to_string())],
    }
}

async fn handle(
    state: Arc<State>,
    request: Request<Incoming>,
    peer: IpAddr,
) -> Response<Full<Bytes>> {
    let started = Instant::now();
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let query = request.uri().query().map(ToOwned::to_owned);
    let address = limits::client_address(peer, request.headers(), &state.config.trusted_proxies);
    if dashboard::owns(&method, &path) {
        return dashboard_response(&state, request, started, address).await;
    }
    if method == Method::GET && path == "/metrics" {
        let text = state.metrics.render(
            state.writer.depth(),
            crate::gitops::txn::PUSH_RETRIES.load(std::sync::atomic::Ordering::Relaxed),
        );
        state.metrics.request("GET", &path, 200);
        return Response::builder()
            .header("content-type", "text/plain; version=0.0.4; charset=utf-8")
            .header("cache-control", "no-store")
            .body(Full::new(Bytes::from(text)))
            .expect("a valid response");
    }
    let mut actor = None;
    let mut retry_after = None;
    let reply = match (&method, path.as_str()) {
        (&Method::GET, "/healthz") => Reply::ok(json!({"status": "ok"})),
        (&Method::GET, "/readyz") => {
            if state.writer.is_open() {
                Reply::ok(json!({"status": "ready", "queue_depth": state.writer.depth()}))
            } else {
                Reply::unavailable("shutting down")
            }
        }
        (&Method::GET, "/openapi.json") => match admit(&state, &limits::Caller::Address(address)) {
            Ok(()) => Reply::ok(serde_json::from_str(OPENAPI).expect("a valid document (tested)")),
            Err((reply, seconds)) => {
                retry_after = Some(seconds);
                reply
            }
        },
        _ => {
            let header = request
                .headers()
                .get(::http::header::AUTHORIZATION)
                .and_then(|h| h.to_str().ok())
                .map(ToOwned::to_owned);
            let now = jiff::Timestamp::now().as_second();
            let principal = match header {
                None => Ok(None),
                Some(h) => state.auth.authenticate_fresh(Some(&h), now).await.map(Some),
            };
            let caller = match &principal {
                Ok(Some(p)) => limits::Caller::Identity(p.actor.clone()),
                Ok(None) | Err(_) => limits::Caller::Address(address),
            };
            match (admit(&state, &caller), principal) {
                (Err((reply, seconds)), _) => {
                    retry_after = Some(seconds);
                    reply
                }
                (Ok(()), Err(e)) => {
                    Reply::error(StatusCode::UNAUTHORIZED, "unauthenticated", &e.to_string())
                }
                (Ok(()), Ok(principal)) => {
                    actor = principal.as_ref().map(|p| p.actor.clone());
                    match http::read_body(request.into_body(), state.config.max_body_bytes).await {
                        Err(r) => r,
                        Ok(body) => {
                            let call = routes::Call {
                                method: &method,
                                path: &path,
                                query: query.as_deref(),
                                body: &body,
                            };
                            routes::route(&state, &call, principal).await
                        }
                    }
                }
            }
        }
    };
    let line = json!({
        "at": jiff::Timestamp::now().to_string(),
        "method": method.as_str(),
        "path": crate::text::printable(&path, 200),
        "status": reply.status.as_u16(),
        "ms": started.elapsed().as_millis(),
        "actor": actor,
    });
    eprintln!("{line}");
    state
        .metrics
        .request(method.as_str(), &path, reply.status.as_u16());
    state.metrics.decisions(&reply.body);
    respond(&reply, retry_after)
}

/// A dashboard request: read the body (bounded), answer HTML, log and count it.
async fn dashboard_response(
    state: &Arc<State>,
    request: Request<Incoming>,
    started: Instant,
    address: IpAddr,
) -> Response<Full<Bytes>> {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let query = request.uri().query().map(ToOwned::to_owned);
    let headers = request.headers().clone();
    let admitted = admit(state, &limits::Caller::Address(address));
    let (page, actor) = match admitted {
        Err((reply, seconds)) => (limited_page(&reply, seconds), None),
        Ok(()) => match http::read_body(request.into_body(), state.config.max_body_bytes).await {
            Err(r) => (
                dashboard::Page {
                    status: r.status,
                    body: String::from("request body too large\n"),
                    headers: Vec::new(),
                },
                None,
            ),
            Ok(body) => {
                let asked = dashboard::Asked {
                    method: &method,
                    path: &path,
                    query: query.as_deref(),
                    headers: &headers,
                    body: &body,
                };
                dashboard::handle(state, &asked).await
            }
        },
    };
    let line = json!({
        "at": jiff::Timestamp::now().to_string(),
        "method": method.as_str(),
        "path": crate::text::printable(&path, 200),
        "status": page.status.as_u16(),
        "ms": started.elapsed().as_millis(),
        "actor": actor,
    });
    eprintln!("{line}");
    state
        .metrics
        .request(method.as_str(), &path, page.status.as_u16());
    let mut response = Response::builder()
        .status(page.status)
        .header("content-type", "text/html; charset=utf-8")
        .header("cache-control", "no-store")
        .header("content-security-policy", dashboard::html::CSP)
        .header("x-content-type-options", "nosniff")
        .header("referrer-policy", "no-referrer");
    for (name, value) in &page.headers {
        response = response.header(*name, value);
    }
    response
        .body(Full::new(Bytes::from(page.body)))
        .expect("a valid response")
}

/// Reads the issuers' JWKS URLs again every `jwks_refresh`, for as long as the server runs.
async fn refresh_keys(state: Arc<State>) {
    let mut every = tokio::time::interval(state.config.jwks_refresh);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The first tick is now: the keys were read at start.
    every.tick().await;
    loop {
        every.tick().await;
        state.auth.refresh_urls().await;
    }
}

/// Answers the requests of one connection (over TLS when the state has an acceptor).
async fn connection(state: Arc<State>, stream: tokio::net::TcpStream, peer: IpAddr) {
    let acceptor = state.tls.clone();
    let https = acceptor.is_some();
    let service = hyper::service::service_fn(move |mut req: Request<Incoming>| {
        let state = Arc::clone(&state);
        if https {
            // Served over TLS here: what the dashboard's cookie needs to know (it is then
            // `Secure`), whatever a client wrote.
            req.headers_mut().insert(
                "x-forwarded-proto",
                ::http::HeaderValue::from_static("https"),
            );
        }
        async move { Ok::<_, Infallible>(handle(state, req, peer).await) }
    });
    let mut http = hyper::server::conn::http1::Builder::new();
    http.keep_alive(true);
    let Some(acceptor) = acceptor else {
        let _ = http
            .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
            .await;
        return;
    };
    // A client that never finishes its handshake does not hold a task for long.
    match tokio::time::timeout(std::time::Duration::from_secs(10), acceptor.accept(stream)).await {
        Ok(Ok(tls)) => {
            let _ = http
                .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                .await;
        }
        Ok(Err(e)) => crate::log::debug(&format!("TLS handshake with {peer} failed: {e}")),
        Err(_) => crate::log::debug(&format!("TLS handshake with {peer} timed out")),
    }
}

/// Serves on `addr` until SIGTERM or Ctrl-C; prints the bound address (and `https` or
/// `http`) on stdout first.
pub async fn serve(state: Arc<State>, addr: SocketAddr) -> crate::exit::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    println!(
        "{}",
        json!({
            "listening": listener.local_addr()?.to_string(),
            "scheme": if state.tls.is_some() { "https" } else { "http" },
        })
    );
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let refresher = tokio::spawn(refresh_keys(Arc::clone(&state)));
    let mut connections = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, peer)) = accepted else { continue };
                connections.spawn(connection(Arc::clone(&state), stream, peer.ip()));
            }
            _ = tokio::signal::ctrl_c() => break,
            _ = term.recv() => break,
        }
    }
    drop(listener);
    refresher.abort();
    crate::log::info("shutting down: finishing queued writes, refusing new ones");
    let closing = Arc::clone(&state);
    tokio::task::spawn_blocking(move || closing.writer.close())
        .await
        .ok();
    // Answers already computed get a moment to reach their clients.
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_openapi_document_is_3_1_and_names_every_route() {
        let doc: serde_json::Value = serde_json::from_str(super::OPENAPI).unwrap();
        assert_eq!(doc["openapi"], "3.1.0");
        let routes = include_str!("routes.rs");
        for path in [
            "/v1/deployments",
            "/v1/releases",
            "/v1/rollbacks",
            "/v1/promotions",
            "/v1/unblocks",
            "/v1/approvals",
            "/v1/revocations",
            "/v1/releases/{rest}",
            "/api/v1/releases/{rest}",
            "/v1/deployments/{environment}/{rest}",
            "/v1/approvals/{release_id}/{environment}",
            "/v1/history/{environment}/{rest}",
            "/v1/diff/{environment}/{rest}",
        ] {
            assert!(doc["paths"].get(path).is_some(), "{path} missing");
        }
        // The probes and /metrics are documented without a token; every other operation may
        // answer 429 with Retry-After.
        assert_eq!(
            doc["paths"]["/metrics"]["get"]["responses"]["200"]["content"]["text/plain"]["schema"]
                ["type"],
            "string"
        );
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                let probe = ["/healthz", "/readyz", "/metrics"].contains(&path.as_str());
                assert_eq!(
                    op.get("security").is_some(),
                    probe || path == "/openapi.json"
                );
                let limited = &op["responses"]["429"];
                assert_eq!(limited.is_null(), probe, "{method} {path}");
                if !probe {
                    assert_eq!(limited["headers"]["Retry-After"]["required"], true);
                }
            }
        }
        // Every route the router matches is documented.
        for word in [
            "\"deployments\"",
            "\"rollbacks\"",
            "\"promotions\"",
            "\"unblocks\"",
            "\"approvals\"",
            "\"revocations\"",
            "\"releases\"",
        ] {
            assert!(routes.contains(word));
            let name = word.trim_matches('"');
            assert!(
                doc["paths"]
                    .as_object()
                    .unwrap()
                    .keys()
                    .any(|k| k.starts_with(&format!("/v1/{name}"))),
                "{name}"
            );
        }
    }
}
