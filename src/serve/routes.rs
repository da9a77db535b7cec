//! The API (docs/serve.md): each route checks the caller's permission, then runs one domain
//! call on the writer thread — the same calls the CLI's commands make — and answers JSON.
//!
//! Invariants: nothing is queued before the body parsed and the caller authenticated; a
//! permission is judged on the policy of the tip the request runs on; the actor of every
//! write is the authenticated identity, never a field of the request.

use std::sync::Arc;
use std::time::Instant;

use http::{Method, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};

use super::State;
use super::auth::Principal;
use super::http::{Reply, parse_json};
use crate::deploy::run::{self, Ended, Order, Registry, Run};
use crate::deploy::{Action, Override, Request, Selector};
use crate::gitops::layout::{self, load_approvals, load_pointer};
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

fn bad(object: &str, expected: &str, actual: &str) -> Reply {
    Reply::mismatch(
        StatusCode::BAD_REQUEST,
        "invalid_input",
        object,
        expected,
        actual,
    )
}

fn parse<T: std::str::FromStr>(what: &str, text: &str, expected: &str) -> Result<T, Reply> {
    text.parse()
        .map_err(|_| bad(what, expected, &format!("{:?}", crate::text::excerpt(text))))
}

fn env_name(text: &str) -> Result<EnvName, Reply> {
    parse(
        "environment",
        text,
        "an environment name of [a-z0-9]+([._-][a-z0-9]+)*",
    )
}

fn project(text: &str) -> Result<ProjectRef, Reply> {
    parse(
        "project",
        text,
        "a project (auth-service or company/monorepo/auth-service)",
    )
}

fn release_id(text: &str) -> Result<ReleaseSelector, Reply> {
    parse(
        "release_id",
        text,
        "an alias, a number or a commit prefix of at least 7 hex digits",
    )
}

fn forbidden(who: &Principal, what: &str, key: &str) -> Reply {
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
fn percent_decoded(path: &str) -> Option<String> {
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
        (Method::GET, ["releases", _, _, ..]) => get_releases(state, tail(v1 + 1)).await,
        (Method::POST, ["releases"]) => create(state, call.body, principal.expect("checked")).await,
        (Method::POST, ["deployments"]) => {
            deploy(state, call.body, principal.expect("checked")).await
        }
        (Method::POST, ["rollbacks"]) => {
            rollback(state, call.body, principal.expect("checked")).await
        }
        (Method::POST, ["promotions"]) => {
            promote(state, call.body, principal.expect("checked")).await
        }
        (Method::POST, ["unblocks"]) => {
            unblock(state, call.body, principal.expect("checked")).await
        }
        (Method::GET, ["deployments", env, _, _, ..]) => {
            deployment(state, env_name(env), tail(v1 + 2)).await
        }
        (Method::POST, ["approvals"]) => {
            approve(state, call.body, principal.expect("checked"), false).await
        }
        (Method::POST, ["revocations"]) => {
            approve(state, call.body, principal.expect("checked"), true).await
        }
        (Method::GET, ["approvals", id, env]) => approvals(state, id, env, call.query).await,
        (Method::GET, ["history", env, _, _, ..]) => {
            history(state, env_name(env), tail(v1 + 2)).await
        }
        (Method::GET, ["diff", env, _, _, _, ..]) => diff(state, env_name(env), tail(v1 + 2)).await,
        _ => Err(Reply::not_found(call.path)),
    };
    result.unwrap_or_else(|r| r)
}

/// Runs `job` on the writer thread with the request's own clock and deadline.
async fn on_writer<F>(state: &Arc<State>, job: F) -> Result<Reply, Reply>
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
    fn now(settings: &crate::settings::Settings) -> Self {
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

fn err(e: &crate::exit::Error) -> Reply {
    Reply::from_error(e)
}

/// `{repo}/{project}` or `{repo}/{project}/{release-id}`: the split the register has.
fn split_register(
    tip: &Snapshot<'_>,
    tail: &str,
) -> Result<(Register, Option<ReleaseSelector>), Reply> {
    let try_register = |full: &str| -> Result<Option<Register>, Reply> {
        let Ok(ProjectRef::Full(repo, name)) = full.parse::<ProjectRef>() else {
            return Ok(None);
        };
        let path = layout::register_path(&repo, &name);
        match tip.read(&path).map_err(|e| err(&e.into()))? {
            Some(bytes) => Register::parse(&path, &bytes, &repo, &name)
                .map(Some)
                .map_err(|e| err(&e.into())),
            None => Ok(None),
        }
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

async fn get_releases(state: &Arc<State>, tail: String) -> Result<Reply, Reply> {
    on_writer(state, move |g, _, _| {
        Box::pin(async move {
            let tip = g.fetch().map_err(|e| err(&e.into()))?;
            let (reg, id) = split_register(&tip, &tail)?;
            let base = json!({"repository": reg.repository.to_string(), "project": reg.project.to_string()});
            match id {
                None => {
                    let mut entries: Vec<_> = reg.releases.iter().collect();
                    entries.sort_by_key(|e| std::cmp::Reverse(e.number));
                    let mut v = base;
                    v["releases"] = serde_json::to_value(entries).map_err(|e| Reply::internal(&e.to_string()))?;
                    Ok(Reply::ok(v))
                }
                Some(id) => {
                    let entry = reg.resolve(&id).map_err(|e| {
                        Reply::mismatch(StatusCode::NOT_FOUND, "not_found", &format!("release {id} of {}", reg.full_name()), "a registered alias, number or commit prefix", &e.to_string())
                    })?;
                    let mut v = serde_json::to_value(entry).map_err(|e| Reply::internal(&e.to_string()))?;
                    v["repository"] = base["repository"].clone();
                    v["project"] = base["project"].clone();
                    Ok(Reply::ok(v))
                }
            }
        })
    })
    .await
}

async fn deployment(
    state: &Arc<State>,
    env: Result<EnvName, Reply>,
    tail: String,
) -> Result<Reply, Reply> {
    let env = env?;
    on_writer(state, move |g, _, _| {
        Box::pin(async move {
            let tip = g.fetch().map_err(|e| err(&e.into()))?;
            let (reg, none) = split_register(&tip, &tail)?;
            if none.is_some() {
                return Err(Reply::not_found(&tail));
            }
            let path = layout::pointer_path(&env, &reg.repository, &reg.project);
            let pointer = load_pointer(&tip, &path).map_err(|e| err(&e))?;
            let release = pointer.as_ref().map(|p| {
                let entry = reg.find_commit(&p.id.commit);
                json!({
                    "number": entry.map(|e| e.number),
                    "commit": p.id.commit.to_string(),
                    "digest": p.digest.as_ref().map(ToString::to_string),
                    "aliases": entry.map(|e| e.aliases.iter().map(|a| a.alias.clone()).collect::<Vec<_>>()).unwrap_or_default(),
                    "deployed_by": p.annotations.get(crate::pointer::ANN_DEPLOYED_BY),
                    "deployed_at": p.annotations.get(crate::pointer::ANN_DEPLOYED_AT),
                    "blocked": p.blocked(),
                })
            });
            Ok(Reply::ok(json!({
                "environment": env.to_string(),
                "repository": reg.repository.to_string(),
                "project": reg.project.to_string(),
                "pointer": path,
                "release": release,
            })))
        })
    })
    .await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    reference: String,
    digest: String,
}

/// Registers an image already pushed, for a principal `release_creators` admits.
async fn create(state: &Arc<State>, body: &[u8], who: Principal) -> Result<Reply, Reply> {
    let b: CreateBody = parse_json(body)?;
    let image: crate::oci::ImageRef = parse(
        "reference",
        &b.reference,
        "an image reference (host/path:tag or oci:PATH:TAG)",
    )?;
    let digest: crate::digest::Digest =
        parse("digest", &b.digest, "a digest sha256:<64 hex digits>")?;
    if image.digest().is_some_and(|d| *d != digest) {
        return Err(bad(
            "reference",
            &format!("no digest or {digest}"),
            &b.reference,
        ));
    }
    let Some(base) = state.settings.registry.clone() else {
        return Err(Reply::mismatch(
            StatusCode::CONFLICT,
            "not_configured",
            "the server's registry",
            "--registry or RELEASECTL_REGISTRY set",
            "none",
        ));
    };
    on_writer(state, move |g, state, clock| {
        Box::pin(async move {
            let tip = g.fetch().map_err(|e| err(&e.into()))?;
            let policy = layout::load_policy(g, &tip).map_err(|e| err(&e))?;
            if !who.allowed(policy.release_creators.as_deref()) {
                return Err(forbidden(&who, "release creation", "release_creators"));
            }
            let mut store = state.settings.store.clone();
            store.deadline = clock.deadline;
            let done = crate::registration::register_pushed(
                g,
                &crate::registration::Pushed {
                    image: &image,
                    digest: &digest,
                    base: &base,
                    actor: &who.actor,
                    now: clock.now,
                    deadline: clock.deadline,
                    store: &store,
                    limits: &state.settings.limits,
                },
            )
            .await
            .map_err(|e| err(&e))?;
            let mut v =
                serde_json::to_value(&done.entry).map_err(|e| Reply::internal(&e.to_string()))?;
            v["repository"] = done.register.repository.to_string().into();
            v["project"] = done.register.project.to_string().into();
            v["registration_commit"] = done.commit.map(|c| c.to_string()).into();
            let status = if done.commit.is_some() {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            Ok(Reply { status, body: v })
        })
    })
    .await
}

/// The policy-related fields every deploy-like request may carry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct GroupItem {
    project: String,
    release_id: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DeployBody {
    environment: String,
    #[serde(default)]
    project: Option<String>,
    #[serde(default)]
    release_id: Option<String>,
    #[serde(default)]
    group: Vec<GroupItem>,
    #[serde(default)]
    dry_run: bool,
    #[serde(default)]
    overrides: Vec<String>,
    #[serde(default)]
    reason: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RollbackBody {
    environment: String,
    project: String,
    #[serde(default)]
    to: Option<String>,
    #[serde(default)]
    block: bool,
    #[serde(default)]
    dry_run: bool,
    #[serde(default)]
    overrides: Vec<String>,
    #[serde(default)]
    reason: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PromoteBody {
    project: String,
    from: String,
    to: String,
    #[serde(default)]
    dry_run: bool,
    #[serde(default)]
    overrides: Vec<String>,
    #[serde(default)]
    reason: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TargetBody {
    environment: String,
    project: String,
    release_id: String,
    #[serde(default)]
    justification: Option<String>,
}

fn overrides(
    list: &[String],
    reason: Option<String>,
    dry_run: bool,
    order: Order,
) -> Result<Order, Reply> {
    let parsed = list
        .iter()
        .map(|o| {
            o.parse::<Override>()
                .map_err(|e| bad("overrides", "a policy rule, blocked or hold", &e))
        })
        .collect::<Result<Vec<_>, _>>()?;
    order
        .with_flags(parsed, reason, dry_run)
        .map_err(|e| bad("reason", "a reason with every override", &e.0))
}

async fn deploy(state: &Arc<State>, body: &[u8], who: Principal) -> Result<Reply, Reply> {
    let b: DeployBody = parse_json(body)?;
    let env = env_name(&b.environment)?;
    let mut requests = Vec::new();
    match (&b.project, &b.release_id, b.group.is_empty()) {
        (Some(p), Some(id), true) => requests.push((p.clone(), id.clone())),
        (None, None, false) => requests.extend(
            b.group
                .iter()
                .map(|g| (g.project.clone(), g.release_id.clone())),
        ),
        _ => {
            return Err(bad(
                "request body",
                "project and release_id, or a non-empty group (not both)",
                "neither or both",
            ));
        }
    }
    let requests = requests
        .iter()
        .map(|(p, id)| {
            Ok(Request {
                env: env.clone(),
                project: project(p)?,
                selector: Selector::Id(release_id(id)?),
            })
        })
        .collect::<Result<Vec<_>, Reply>>()?;
    let action = if requests.len() == 1 {
        Action::Deploy
    } else {
        Action::Group
    };
    let order = overrides(
        &b.overrides,
        b.reason,
        b.dry_run,
        Order::new(requests, action),
    )?;
    drive(state, order, who).await
}

async fn rollback(state: &Arc<State>, body: &[u8], who: Principal) -> Result<Reply, Reply> {
    let b: RollbackBody = parse_json(body)?;
    let request = Request {
        env: env_name(&b.environment)?,
        project: project(&b.project)?,
        selector: b
            .to
            .as_deref()
            .map(release_id)
            .transpose()?
            .map_or(Selector::Previous, Selector::Id),
    };
    let order = overrides(
        &b.overrides,
        b.reason,
        b.dry_run,
        Order::new(vec![request], Action::Rollback { block: b.block }),
    )?;
    drive(state, order, who).await
}

async fn promote(state: &Arc<State>, body: &[u8], who: Principal) -> Result<Reply, Reply> {
    let b: PromoteBody = parse_json(body)?;
    let from = env_name(&b.from)?;
    let request = Request {
        env: env_name(&b.to)?,
        project: project(&b.project)?,
        selector: Selector::RunningIn(from.clone()),
    };
    let order = overrides(
        &b.overrides,
        b.reason,
        b.dry_run,
        Order::new(vec![request], Action::Promote { from }),
    )?;
    drive(state, order, who).await
}

async fn unblock(state: &Arc<State>, body: &[u8], who: Principal) -> Result<Reply, Reply> {
    let b: TargetBody = parse_json(body)?;
    if b.justification.is_some() {
        return Err(bad(
            "justification",
            "no justification (an unblock takes none)",
            "one",
        ));
    }
    let request = Request {
        env: env_name(&b.environment)?,
        project: project(&b.project)?,
        selector: Selector::Id(release_id(&b.release_id)?),
    };
    drive(state, Order::new(vec![request], Action::Unblock), who).await
}

/// Runs a deploy-like order for `who` after checking `deployers` of each environment.
async fn drive(state: &Arc<State>, order: Order, who: Principal) -> Result<Reply, Reply> {
    on_writer(state, move |g, state, clock| {
        Box::pin(async move {
            let tip = g.fetch().map_err(|e| err(&e.into()))?;
            let policy = layout::load_policy(g, &tip).map_err(|e| err(&e))?;
            for r in &order.requests {
                if let Some(env) = policy.get(&r.env)
                    && !who.allowed(env.deployers.as_deref())
                {
                    return Err(forbidden(
                        &who,
                        &format!("deploy to {}", r.env),
                        &format!("environments.{}.deployers", r.env),
                    ));
                }
            }
            let s = &state.settings;
            let mut store = s.store.clone();
            store.deadline = clock.deadline;
            let report = run::run(
                &order,
                &Run {
                    gitops: g,
                    actor: &who.actor,
                    now: clock.now,
                    deadline: clock.deadline,
                    registry: Registry {
                        default: s.registry.as_ref(),
                        store: &store,
                        limits: &s.limits,
                    },
                },
            )
            .await
            .map_err(|e| err(&e))?;
            let mut body = crate::deploy::view::json(&report);
            match &report.ended {
                Ended::Refused(reasons) => {
                    body["error"] = json!({
                        "status": 422,
                        "kind": "refused",
                        "message": format!("refused by policy: {}", reasons.join("; ")),
                    });
                    Ok(Reply {
                        status: StatusCode::UNPROCESSABLE_ENTITY,
                        body,
                    })
                }
                Ended::DryRun => {
                    body["would_refuse"] = crate::deploy::view::would_refuse(&report).into();
                    Ok(Reply::ok(body))
                }
                _ => Ok(Reply::ok(body)),
            }
        })
    })
    .await
}

async fn approve(
    state: &Arc<State>,
    body: &[u8],
    who: Principal,
    revoke: bool,
) -> Result<Reply, Reply> {
    let b: TargetBody = parse_json(body)?;
    let env = env_name(&b.environment)?;
    let project = project(&b.project)?;
    let id = release_id(&b.release_id)?;
    let justification = match (revoke, b.justification) {
        (false, Some(j)) if !j.trim().is_empty() => j,
        (false, _) => {
            return Err(bad(
                "justification",
                "why this release may go there",
                "none",
            ));
        }
        (true, Some(_)) => {
            return Err(bad(
                "justification",
                "no justification (a revoke takes none)",
                "one",
            ));
        }
        (true, None) => String::new(),
    };
    on_writer(state, move |g, _, clock| {
        Box::pin(async move {
            let order = crate::deploy::approve::Order {
                env: &env,
                project: &project,
                release_id: &id,
                actor: &who.actor,
                now: clock.now,
                deadline: clock.deadline,
            };
            if !revoke {
                // Four eyes: whoever triggered the release does not approve it.
                let tip = g.fetch().map_err(|e| err(&e.into()))?;
                let reg = crate::gitops::find_register(g, &tip, &project).map_err(|e| err(&e))?;
                let entry = reg.resolve(&id).map_err(|e| err(&e.into()))?;
                if entry
                    .triggers
                    .iter()
                    .any(|t| t.triggered_by.as_deref() == Some(who.actor.as_str()))
                {
                    return Err(Reply::mismatch(
                        StatusCode::FORBIDDEN,
                        "self_approval",
                        &format!(
                            "approval of release {} of {} for {env}",
                            entry.label(),
                            reg.full_name()
                        ),
                        "an approver other than whoever triggered the release",
                        &crate::text::excerpt(&who.actor),
                    ));
                }
            }
            let done = if revoke {
                crate::deploy::approve::revoke(g, &order).await
            } else {
                crate::deploy::approve::approve(g, &order, &justification, None).await
            }
            .map_err(|e| err(&e))?;
            Ok(Reply::ok(json!({
                "result": done.summary,
                "file": done.file,
                "commit": done.commit.map(|c| c.to_string()),
                "note": done.note,
            })))
        })
    })
    .await
}

async fn approvals(
    state: &Arc<State>,
    id: &str,
    env: &str,
    query: Option<&str>,
) -> Result<Reply, Reply> {
    let env = env_name(env)?;
    let id = release_id(id)?;
    let project = query
        .unwrap_or_default()
        .split('&')
        .find_map(|kv| kv.strip_prefix("project="))
        .ok_or_else(|| bad("query", "?project=PROJECT", "none"))
        .and_then(project)?;
    on_writer(state, move |g, _, clock| {
        Box::pin(async move {
            let tip = g.fetch().map_err(|e| err(&e.into()))?;
            let policy = layout::load_policy(g, &tip).map_err(|e| err(&e))?;
            let environment = crate::deploy::plan::environment(&policy, &env).map_err(|e| err(&e.into()))?;
            let reg = crate::gitops::find_register(g, &tip, &project).map_err(|e| err(&e))?;
            let entry = reg.resolve(&id).map_err(|e| err(&e.into()))?;
            let path = layout::approvals_path(&env, &reg.repository, &reg.project, &entry.commit);
            let file = load_approvals(&tip, &path).map_err(|e| err(&e))?;
            let list: Vec<Value> = file
                .iter()
                .flat_map(|f| f.approvals.iter())
                .map(|a| {
                    let live = a.digest == entry.digest
                        && a.expires_at.parse::<jiff::Timestamp>().is_ok_and(|t| t > clock.now);
                    json!({
                        "approver": a.approver,
                        "approved_at": a.approved_at,
                        "expires_at": a.expires_at,
                        "justification": a.justification,
                        "signed": a.signature.is_some(),
                        "live": live,
                    })
                })
                .collect();
            let live = list.iter().filter(|a| a["live"] == Value::Bool(true)).count();
            Ok(Reply::ok(json!({
                "environment": env.to_string(),
                "repository": reg.repository.to_string(),
                "project": reg.project.to_string(),
                "release": {"number": entry.number, "commit": entry.commit.to_string(), "digest": entry.digest.to_string()},
                "requires_approval": environment.requires_approval,
                "required": environment.approvals.min,
                "live": live,
                "approvals": list,
            })))
        })
    })
    .await
}

async fn history(
    state: &Arc<State>,
    env: Result<EnvName, Reply>,
    tail: String,
) -> Result<Reply, Reply> {
    let env = env?;
    on_writer(state, move |g, _, _| {
        Box::pin(async move {
            let tip = g.fetch().map_err(|e| err(&e.into()))?;
            let (reg, none) = split_register(&tip, &tail)?;
            if none.is_some() {
                return Err(Reply::not_found(&tail));
            }
            let path = layout::pointer_path(&env, &reg.repository, &reg.project);
            let events = crate::deploy::history::events(&tip, &reg, &path).map_err(|e| err(&e))?;
            Ok(Reply::ok(json!({
                "environment": env.to_string(),
                "repository": reg.repository.to_string(),
                "project": reg.project.to_string(),
                "events": events,
            })))
        })
    })
    .await
}

async fn diff(
    state: &Arc<State>,
    env: Result<EnvName, Reply>,
    tail: String,
) -> Result<Reply, Reply> {
    let env = env?;
    on_writer(state, move |g, state, clock| {
        Box::pin(async move {
            let tip = g.fetch().map_err(|e| err(&e.into()))?;
            let (reg, id) = split_register(&tip, &tail)?;
            let Some(id) = id else {
                return Err(bad(
                    "path",
                    "/v1/diff/{environment}/{repo}/{project}/{release-id}",
                    "no release id",
                ));
            };
            drop(tip);
            let mut store = state.settings.store.clone();
            store.deadline = clock.deadline;
            let report = crate::deploy::diff::against_running(
                g,
                &env,
                &ProjectRef::Full(reg.repository.clone(), reg.project.clone()),
                &id,
                state.settings.registry.as_ref(),
                &store,
                &state.settings.limits,
            )
            .await
            .map_err(|e| err(&e))?;
            Ok(Reply::ok(
                serde_json::to_value(&report).map_err(|e| Reply::internal(&e.to_string()))?,
            ))
        })
    })
    .await
}
