//! The read endpoints: releases, a deployment's status, approvals, history and diff. Each
//! fetches the branch tip on the writer thread (which owns the clone) and answers from it.

use std::sync::Arc;

use http::StatusCode;
use serde_json::{Value, json};

use super::State;
use super::http::Reply;
use super::routes::{bad, env_name, err, on_writer, project, release_id, split_register};
use crate::gitops::layout::{self, load_approvals, load_pointer};
use crate::gitops::register::Register;
use crate::gitops::{ProjectRef, Snapshot};
use crate::policy::EnvName;

pub(super) async fn get_releases(state: &Arc<State>, tail: String) -> Result<Reply, Reply> {
    on_writer(state, move |g, _, _| {
        Box::pin(async move {
            let tip = g.fetch().map_err(|e| err(&e.into()))?;
            let (reg, id) = split_register(&tip, &tail)?;
            let base = json!({"repository": reg.repository.to_string(), "project": reg.project.to_string()});
            match id {
                None => {
                    let mut entries = reg.entries(&tip).map_err(|e| err(&e))?;
                    entries.sort_by_key(|e| std::cmp::Reverse(e.number));
                    let mut v = base;
                    v["releases"] = serde_json::to_value(entries).map_err(|e| Reply::internal(&e.to_string()))?;
                    Ok(Reply::ok(v))
                }
                Some(id) => {
                    let entry = reg.resolve(&tip, &id).map_err(|e| {
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

pub(super) async fn deployment(
    state: &Arc<State>,
    env: Result<EnvName, Reply>,
    tail: String,
) -> Result<Reply, Reply> {
    let env = env?;
    on_writer(state, move |g, _, _| {
        Box::pin(async move {
            let tip = g.fetch().map_err(|e| err(&e.into()))?;
            let (reg, path) = project_pointer(&tip, &tail, &env)?;
            let pointer = load_pointer(&tip, &path).map_err(|e| err(&e))?;
            let entry = match &pointer {
                Some(p) => reg.find_commit(&tip, &p.id.commit).map_err(|e| err(&e))?,
                None => None,
            };
            let release = pointer.as_ref().map(|p| {
                let entry = entry.as_ref();
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

pub(super) async fn approvals(
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
            let entry = reg.resolve(&tip, &id).map_err(|e| err(&e))?;
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

pub(super) async fn history(
    state: &Arc<State>,
    env: Result<EnvName, Reply>,
    tail: String,
) -> Result<Reply, Reply> {
    let env = env?;
    on_writer(state, move |g, _, _| {
        Box::pin(async move {
            let tip = g.fetch().map_err(|e| err(&e.into()))?;
            let (reg, _) = project_pointer(&tip, &tail, &env)?;
            g.fetch_notes().map_err(|e| err(&e.into()))?;
            let signers = layout::load_policy(g, &tip)
                .map(|p| p.commit_signers)
                .unwrap_or_default();
            let events = crate::deploy::history::pointer_events(g, &tip, &reg, &env, &signers)
                .map_err(|e| err(&e))?;
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

pub(super) async fn diff(
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

/// The project `tail` names (`{repo}/{project}`, no release id) and the path of its pointer
/// in `env`.
fn project_pointer(
    tip: &Snapshot<'_>,
    tail: &str,
    env: &EnvName,
) -> Result<(Register, String), Reply> {
    let (reg, none) = split_register(tip, tail)?;
    if none.is_some() {
        return Err(Reply::not_found(tail));
    }
    let path = layout::pointer_path(env, &reg.repository, &reg.project);
    Ok((reg, path))
}
