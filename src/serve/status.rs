//! `GET /v1/deployments[?environment=E…&project=P]`: what runs where in the whole repository,
//! one row per pointer, the same rows as the CLI's `status -o json` (without `--live`: the
//! server does not ask Argo CD).
//!
//! Invariants: the rows are [`crate::deploy::status::rows`], as the CLI builds them: in the
//! policy's order of environments, then pointer path order; an environment the policy does
//! not declare has no rows.

use std::sync::Arc;

use serde_json::json;

use super::State;
use super::http::Reply;
use super::routes::{bad, env_name, err, on_writer, percent_decoded, project};
use crate::gitops::ProjectRef;
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
            let envs: Vec<String> = filter.envs.iter().map(ToString::to_string).collect();
            let rows: Vec<_> = crate::deploy::status::rows(g, &tip, &envs, filter.project.as_ref())
                .map_err(|e| err(&e))?
                .into_iter()
                .map(|f| f.row)
                .collect();
            Ok(Reply::ok(json!({ "deployments": rows })))
        })
    })
    .await
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
