//! The reads through the server: a release and a register (`release get`/`list`), what runs
//! where (`status`), a pointer's history, the diff against what runs, and the registration
//! of an image the CLI pushed (`release create`). Each answer is turned into the structure
//! the local path prints (register entries, history events, the diff report, status rows).
//!
//! Invariants: a status row holds exactly the fields, in the order, of the local `status -o
//! json` row; the project in a path is always named in full (`{repo}/{project}`).

use serde_json::Value;

use super::{ApiError, Client, full_project};
use crate::deploy::history::Event;
use crate::format::Alias;
use crate::gitops::ProjectRef;
use crate::gitops::register::Entry;

fn parsed<T: serde::de::DeserializeOwned>(
    client: &Client,
    what: &str,
    v: Value,
) -> Result<T, ApiError> {
    serde_json::from_value(v).map_err(|e| ApiError::Garbled {
        server: client.base.clone(),
        what: what.to_owned(),
        status: 200,
        found: format!("an answer that does not parse: {e}"),
    })
}

/// A register entry and the `{repository, project}` it belongs to.
pub struct Release {
    pub repository: String,
    pub project: String,
    pub entry: Entry,
}

fn split_names(v: &mut Value) -> (String, String) {
    let take = |v: &mut Value, key: &str| {
        v.as_object_mut()
            .and_then(|o| o.remove(key))
            .and_then(|s| s.as_str().map(str::to_owned))
            .unwrap_or_default()
    };
    (take(v, "repository"), take(v, "project"))
}

/// `GET /v1/releases/{repo}/{project}/{release-id}`.
pub async fn release(client: &Client, project: &ProjectRef, id: &str) -> Result<Release, ApiError> {
    let what = format!("release get {project} {id}");
    let mut v = client
        .get(
            &format!(
                "/v1/releases/{}/{}",
                full_project(project)?,
                crate::text::url_escaped(id)
            ),
            &what,
        )
        .await?;
    let (repository, project) = split_names(&mut v);
    Ok(Release {
        repository,
        project,
        entry: parsed(client, &what, v)?,
    })
}

/// `GET /v1/releases/{repo}/{project}`: the register's entries, newest first.
pub async fn releases(
    client: &Client,
    project: &ProjectRef,
) -> Result<(String, String, Vec<Entry>), ApiError> {
    let what = format!("release list {project}");
    let mut v = client
        .get(&format!("/v1/releases/{}", full_project(project)?), &what)
        .await?;
    let (repository, name) = split_names(&mut v);
    let entries = parsed(client, &what, v["releases"].take())?;
    Ok((repository, name, entries))
}

/// `GET /v1/history/{environment}/{repo}/{project}`: the pointer's changes, newest first.
pub async fn history(
    client: &Client,
    env: &str,
    project: &ProjectRef,
) -> Result<Vec<Event>, ApiError> {
    let what = format!("history {env} {project}");
    let mut v = client
        .get(
            &format!("/v1/history/{env}/{}", full_project(project)?),
            &what,
        )
        .await?;
    parsed(client, &what, v["events"].take())
}

/// `GET /v1/diff/{environment}/{repo}/{project}/{release-id}`.
pub async fn diff(
    client: &Client,
    env: &str,
    project: &ProjectRef,
    id: &str,
) -> Result<crate::deploy::diff::Report, ApiError> {
    let what = format!("diff {env} {project} {id}");
    let v = client
        .get(
            &format!(
                "/v1/diff/{env}/{}/{}",
                full_project(project)?,
                crate::text::url_escaped(id)
            ),
            &what,
        )
        .await?;
    parsed(client, &what, v)
}

/// The registration of a pushed image: its number and aliases.
pub struct Registered {
    pub number: u64,
    pub aliases: Vec<Alias>,
}

/// `POST /v1/releases`: registers the image pushed at `reference` (pinned by `digest`).
pub async fn register(
    client: &Client,
    reference: &str,
    digest: &str,
) -> Result<Registered, ApiError> {
    let what = format!("register {reference}");
    let body = serde_json::json!({"reference": reference, "digest": digest});
    let answer = client.post("/v1/releases", &body, &what).await?;
    let mut v = client.ok(answer, &what)?;
    split_names(&mut v);
    if let Some(o) = v.as_object_mut() {
        o.remove("registration_commit");
    }
    let entry: Entry = parsed(client, &what, v)?;
    Ok(Registered {
        number: entry.number,
        aliases: entry.aliases,
    })
}

/// What runs where (`GET /v1/deployments`): every pointer, or those of `envs` (none: all)
/// and of `project` (none: all), one row each, in the local path's order.
pub async fn status_list(
    client: &Client,
    envs: &[String],
    project: Option<&ProjectRef>,
) -> Result<Vec<crate::deploy::status::Row>, ApiError> {
    let mut query: Vec<String> = envs
        .iter()
        .map(|e| format!("environment={}", crate::text::url_escaped(e)))
        .collect();
    if let Some(p) = project {
        query.push(format!(
            "project={}",
            crate::text::url_escaped(&p.to_string())
        ));
    }
    let path = if query.is_empty() {
        "/v1/deployments".to_owned()
    } else {
        format!("/v1/deployments?{}", query.join("&"))
    };
    let what = match project {
        Some(p) => format!("status {p}"),
        None => "status".to_owned(),
    };
    let mut v = client.get(&path, &what).await?;
    parsed(client, &what, v["deployments"].take())
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_query_value_keeps_names_and_slashes_and_escapes_the_rest() {
        assert_eq!(
            crate::text::url_escaped("company/monorepo/auth-service_v1.2~x"),
            "company/monorepo/auth-service_v1.2~x"
        );
        assert_eq!(crate::text::url_escaped("a b&c=d"), "a%20b%26c%3Dd");
    }
}
