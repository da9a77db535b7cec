//! `GET /v1/deployments[?environment=E…&project=P]`: what runs where in the whole repository,
//! one row per pointer, the same rows as the CLI's `status -o json` (without `--live`: the
//! server does not ask Argo CD).
//!
//! Invariants: rows come in the policy's order of environments, then pointer path order; an
//! environment the policy does not declare has no rows (as in the CLI); the outcome `--wait`
//! recorded is read from the notes only for the pointers that have one noted, so a status of
//! thousands of pointers walks no history for the others.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde_json::{Value, json};

use super::State;
use super::http::Reply;
use super::routes::{bad, env_name, err, on_writer, percent_decoded, project};
use crate::gitops::layout::{self, load_pointer};
use crate::gitops::register::Register;
use crate::gitops::{GitOps, ProjectRef, Snapshot, find_register};
use crate::policy::EnvName;

/// What the query asks: environments (none: all) and one project (none: all).
struct Filter {
    envs: Vec<EnvName>,
    project: Option<ProjectRef>,
}

fn filter(query: Option<&str>) -> Result<Filter, Reply> {
    let mut f = Filter {
        envs: Vec::new(),
        project: None,
    };
    for pair in query
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
    {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let value = percent_decoded(&value.replace('+', " "))
            .ok_or_else(|| bad(key, "a value whose %XX escapes decode to UTF-8", value))?;
        match key {
            "environment" => f.envs.push(env_name(&value)?),
            "project" if f.project.is_none() => f.project = Some(project(&value)?),
            "project" => return Err(bad("project", "at most one project", "two or more")),
            other => {
                return Err(bad(
                    "query",
                    "environment=ENV (repeatable) and project=PROJECT",
                    &format!("{:?}", crate::text::excerpt(other)),
                ));
            }
        }
    }
    Ok(f)
}

pub(super) async fn list(state: &Arc<State>, query: Option<&str>) -> Result<Reply, Reply> {
    let filter = filter(query)?;
    on_writer(state, move |g, _, _| {
        Box::pin(async move {
            let tip = g.fetch().map_err(|e| err(&e.into()))?;
            g.fetch_notes().map_err(|e| err(&e.into()))?;
            let rows = rows(g, &tip, &filter).map_err(|e| err(&e))?;
            Ok(Reply::ok(json!({ "deployments": rows })))
        })
    })
    .await
}

/// The commit that last wrote `path`, and the outcome noted on it for `env`/`project`.
fn noted_outcome(
    g: &GitOps,
    tip: &Snapshot<'_>,
    path: &str,
    env: &str,
    project: &str,
) -> crate::exit::Result<Option<String>> {
    let Some(change) = tip.history(path)?.next().transpose()? else {
        return Ok(None);
    };
    Ok(g.outcomes(change.commit)
        .into_iter()
        .find(|o| o.environment == env && o.project == project)
        .map(|o| o.state.name().to_owned()))
}

fn rows(g: &GitOps, tip: &Snapshot<'_>, filter: &Filter) -> crate::exit::Result<Vec<Value>> {
    let envs: Vec<String> = layout::load_policy(g, tip)
        .map(|p| p.environments.iter().map(|e| e.name.to_string()).collect())
        .unwrap_or_default();
    let only: Option<Register> = filter
        .project
        .as_ref()
        .map(|p| find_register(g, tip, p))
        .transpose()?;
    let noted: BTreeSet<(String, String)> = g
        .all_outcomes()?
        .into_iter()
        .map(|(_, o)| (o.environment, o.project))
        .collect();
    let mut registers: BTreeMap<String, Option<Register>> = BTreeMap::new();
    let mut rows = Vec::new();
    for env in envs
        .iter()
        .filter(|e| filter.envs.is_empty() || filter.envs.iter().any(|x| x.as_str() == *e))
    {
        let paths = layout::pointers_in(tip, env)?;
        tip.prefetch(&paths)?;
        for path in paths {
            let Some(p) = load_pointer(tip, &path)? else {
                continue;
            };
            if let Some(r) = &only
                && (p.id.repository != r.repository || p.id.project != r.project)
            {
                continue;
            }
            let project = format!("{}/{}", p.id.repository, p.id.project);
            let outcome = if noted.contains(&(env.clone(), project.clone())) {
                noted_outcome(g, tip, &path, env, &project)?
            } else {
                None
            };
            let register = registers.entry(project.clone()).or_insert_with(|| {
                project
                    .parse::<ProjectRef>()
                    .ok()
                    .and_then(|r| find_register(g, tip, &r).ok())
            });
            let aliases = register
                .as_ref()
                .and_then(|r| r.find_commit(tip, &p.id.commit).ok().flatten())
                .map(|e| e.aliases)
                .unwrap_or_default();
            let number: Option<u64> = p
                .annotations
                .get(crate::pointer::ANN_NUMBER)
                .and_then(|n| n.parse().ok());
            rows.push(json!({
                "environment": env,
                "project": project,
                "number": number,
                "aliases": aliases,
                "commit": p.id.commit.to_string(),
                "digest": p.digest.as_ref().map(ToString::to_string),
                "deployed_at": p.annotations.get(crate::pointer::ANN_DEPLOYED_AT),
                "deployed_by": p.annotations.get(crate::pointer::ANN_DEPLOYED_BY),
                "blocked": p.blocked(),
                "outcome": outcome,
            }));
        }
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_query_takes_repeated_environments_and_one_percent_encoded_project() {
        let f = filter(Some(
            "environment=dev&environment=prod&project=company%2Fmonorepo%2Fapi",
        ))
        .unwrap_or_else(|r| panic!("{}", r.body));
        let envs: Vec<&str> = f.envs.iter().map(EnvName::as_str).collect();
        assert_eq!(envs, ["dev", "prod"]);
        assert_eq!(
            f.project.map(|p| p.to_string()).as_deref(),
            Some("company/monorepo/api")
        );
        let none = filter(None).unwrap_or_else(|r| panic!("{}", r.body));
        assert!(none.envs.is_empty() && none.project.is_none());
    }

    #[test]
    fn the_query_refuses_unknown_keys_bad_names_two_projects_and_broken_escapes() {
        for q in [
            "colour=blue",
            "environment=Bad%20Env",
            "project=a&project=b",
            "project=%zz",
        ] {
            let refused = filter(Some(q))
                .err()
                .unwrap_or_else(|| panic!("{q} accepted"));
            assert_eq!(refused.status, http::StatusCode::BAD_REQUEST, "{q}");
        }
    }
}
