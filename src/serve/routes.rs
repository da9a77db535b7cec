//! The API (docs/serve.md): each route checks the caller's permission, then runs one domain
//! call on the writer thread — the same calls the CLI's commands make — and answers JSON.
//!
//! Invariants: nothing is queued before the body parsed and the caller authenticated; a
//! permission is judged on the policy of the tip the request runs on; the actor of every
//! write is the authenticated identity, never a field of the request.

use std::sync::Arc;
use std::time::Instant;

use http::{Method, StatusCode};

use super::State;
use super::auth::Principal;
use super::http::Reply;
use super::{reads, status, writes};
use crate::gitops::register::Register;
use crate::gitops::{GitOps, ProjectRef, ReleaseSelector, Snapshot};
use crate::policy::EnvName;

/// What a request asks, once routed.
pub struct Call<'a> {
    pub method: &'a Method,
    pub path: &'a str,
    pub query: Option<&'a str>,
    pub body: &'a [u8],
}

pub(super) fn bad(object: &str, expected: &str, actual: &str) -> Reply {
    Reply::mismatch(
        StatusCode::BAD_REQUEST,
        "invalid_input",
        object,
        expected,
        actual,
    )
}

pub(super) fn parse<T: std::str::FromStr>(
    what: &str,
    text: &str,
    expected: &str,
) -> Result<T, Reply> {
    text.parse()
        .map_err(|_| bad(what, expected, &format!("{:?}", crate::text::excerpt(text))))
}

pub(super) fn env_name(text: &str) -> Result<EnvName, Reply> {
    parse(
        "environment",
        text,
        "an environment name of [a-z0-9]+([._-][a-z0-9]+)*",
    )
}

pub(super) fn project(text: &str) -> Result<ProjectRef, Reply> {
    parse(
        "project",
        text,
        "a project (auth-service or company/monorepo/auth-service)",
    )
}

pub(super) fn release_id(text: &str) -> Result<ReleaseSelector, Reply> {
    parse(
        "release_id",
        text,
        "an alias, a number or a commit prefix of at least 7 hex digits",
    )
}

pub(super) fn forbidden(who: &Principal, what: &str, key: &str) -> Reply {
    Reply::mismatch(
        StatusCode::FORBIDDEN,
        "forbidden",
        what,
        &format!("an identity that environments.yaml's {key} lists"),
        &crate::text::excerpt(&who.actor),
    )
}

/// `path` with its `%XX` escapes decoded (`%2F` is a `/` of `{repo}`), or `None` when an
/// escape is malformed or the result is not UTF-8.
pub(super) fn percent_decoded(path: &str) -> Option<String> {
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Answers `call` for `principal` (`None`: anonymous, allowed only to read when configured).
pub async fn route(state: &Arc<State>, call: &Call<'_>, principal: Option<Principal>) -> Reply {
    let Some(path) = percent_decoded(call.path) else {
        return bad(
            "path",
            "a path whose %XX escapes decode to UTF-8",
            call.path,
        );
    };
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let tail = |n: usize| segments[n..].join("/");
    let v1 = match segments.as_slice() {
        ["v1", ..] => 1,
        ["api", "v1", ..] => 2,
        _ => 0,
    };
    let is_read = call.method == Method::GET;
    if v1 == 0 {
        return Reply::not_found(call.path);
    }
    if principal.is_none() && !(is_read && state.config.anonymous_read) {
        return Reply::error(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "no Authorization: Bearer token; expected one",
        );
    }
    let rest = &segments[v1..];
    let result = match (call.method.clone(), rest) {
        (Method::GET, ["releases", _, _, ..]) => reads::get_releases(state, tail(v1 + 1)).await,
        (Method::POST, ["releases"]) => {
            writes::create(state, call.body, principal.expect("checked")).await
        }
        (Method::POST, ["deployments"]) => {
            writes::deploy(state, call.body, principal.expect("checked")).await
        }
        (Method::POST, ["rollbacks"]) => {
            writes::rollback(state, call.body, principal.expect("checked")).await
        }
        (Method::POST, ["promotions"]) => {
            writes::promote(state, call.body, principal.expect("checked")).await
        }
        (Method::POST, ["unblocks"]) => {
            writes::unblock(state, call.body, principal.expect("checked")).await
        }
        (Method::GET, ["deployments"]) => status::list(state, call.query).await,
        (Method::GET, ["deployments", env, _, _, ..]) => {
            reads::deployment(state, env_name(env), tail(v1 + 2)).await
        }
        (Method::POST, ["approvals"]) => {
            writes::approve(state, call.body, principal.expect("checked"), false).await
        }
        (Method::POST, ["revocations"]) => {
            writes::approve(state, call.body, principal.expect("checked"), true).await
        }
        (Method::GET, ["approvals", id, env]) => reads::approvals(state, id, env, call.query).await,
        (Method::GET, ["history", env, _, _, ..]) => {
            reads::history(state, env_name(env), tail(v1 + 2)).await
        }
        (Method::GET, ["diff", env, _, _, _, ..]) => {
            reads::diff(state, env_name(env), tail(v1 + 2)).await
        }
        _ => Err(Reply::not_found(call.path)),
    };
    result.unwrap_or_else(|r| r)
}

/// Runs `job` on the writer thread with the request's own clock and deadline.
pub(super) async fn on_writer<F>(state: &Arc<State>, job: F) -> Result<Reply, Reply>
where
    F: for<'a> FnOnce(
            &'a GitOps,
            Arc<State>,
            Clock,
        )
            -> std::pin::Pin<Box<dyn Future<Output = Result<Reply, Reply>> + 'a>>
        + Send
        + 'static,
{
    let shared = Arc::clone(state);
    let clock = Clock::now(&state.settings);
    Ok(state
        .writer
        .run(Box::new(move |g| {
            Box::pin(async move { job(g, shared, clock).await.unwrap_or_else(|r| r) })
        }))
        .await)
}

/// One request's clock and deadline.
#[derive(Clone, Copy)]
pub struct Clock {
    pub now: jiff::Timestamp,
    pub deadline: Instant,
}

impl Clock {
    pub(super) fn now(settings: &crate::settings::Settings) -> Self {
        Self {
            now: if settings.clock_fixed {
                settings.now
            } else {
                jiff::Timestamp::now()
            },
            deadline: Instant::now() + settings.timeout,
        }
    }
}

pub(super) fn err(e: &crate::exit::Error) -> Reply {
    Reply::from_error(e)
}

/// `{repo}/{project}` or `{repo}/{project}/{release-id}`: the split the register has.
pub(super) fn split_register(
    tip: &Snapshot<'_>,
    tail: &str,
) -> Result<(Register, Option<ReleaseSelector>), Reply> {
    let try_register = |full: &str| -> Result<Option<Register>, Reply> {
        let Ok(ProjectRef::Full(repo, name)) = full.parse::<ProjectRef>() else {
            return Ok(None);
        };
        Register::open(tip, &repo, &name).map_err(|e| err(&e))
    };
    if let Some(reg) = try_register(tail)? {
        return Ok((reg, None));
    }
    if let Some((head, id)) = tail.rsplit_once('/')
        && let Some(reg) = try_register(head)?
    {
        return Ok((reg, Some(release_id(id)?)));
    }
    Err(Reply::mismatch(
        StatusCode::NOT_FOUND,
        "not_found",
        &format!("project {}", crate::text::excerpt(tail)),
        "a registered {repo}/{project} (releases/{repo}/{project}.yaml)",
        "no register",
    ))
}
