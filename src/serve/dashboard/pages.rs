//! The project page (what runs in each environment, the deployment history timeline with
//! outcomes and signers, the releases, and the action forms) and the diff between what runs
//! in two environments.
//!
//! Invariants: data comes from the API's routes as the session's principal (`/v1/releases`,
//! `/v1/history`, `/v1/diff`), so a page shows exactly what the API would answer; action
//! forms appear only for a signed-in user and carry the session's CSRF token.

use std::fmt::Write as _;
use std::sync::Arc;

use ::http::{Method, StatusCode};
use serde_json::Value;

use super::html::{badge, csrf_field, diff_block, esc, frame, hidden};
use super::{Page, Session, api, error_page, field, matrix, reply_page};
use crate::serve::State;
use crate::text::url_escaped;

fn text(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        v => v.to_string(),
    }
}

/// The options of an environment `<select>`.
fn env_options(envs: &[String]) -> String {
    let mut out = String::new();
    for e in envs {
        let _ = write!(out, "<option value=\"{0}\">{0}</option>", esc(e));
    }
    out
}

fn outcome_badge(outcome: &str) -> String {
    let class = match outcome {
        "succeeded" => "ok",
        "" => return String::new(),
        _ => "fail",
    };
    badge(class, outcome)
}

/// `/ui/project/{repo}/{project}`.
pub async fn project(state: &Arc<State>, session: &Session, full: &str) -> Page {
    let full = full.trim_matches('/');
    let m = match matrix::load(state).await {
        Ok(m) => m,
        Err(r) => return reply_page(session, &r),
    };
    let releases = api(
        state,
        session,
        &Method::GET,
        &format!("/v1/releases/{full}"),
        None,
        &Value::Null,
    )
    .await;
    if releases.status != StatusCode::OK {
        return reply_page(session, &releases);
    }
    let envs: Vec<String> = m.columns.iter().map(|c| c.name.clone()).collect();
    let mut body = format!("<h1 id=\"project\">{}</h1>", esc(full));
    // Where it runs.
    body.push_str("<h2>Running</h2><table id=\"running\"><tr><th>Environment</th><th>Release</th><th>Deployed</th><th>Blocked</th><th></th></tr>");
    let mut previous: Option<&str> = None;
    for c in &m.columns {
        let cell = m.cell(full, &c.name).filter(|c| !c.commit.is_empty());
        let _ = write!(body, "<tr data-env=\"{0}\"><td>{0}</td>", esc(&c.name));
        match cell {
            Some(cell) => {
                let _ = write!(
                    body,
                    "<td>{} {}<br><code>{}</code></td><td>{} {}</td><td>{}</td>",
                    cell.number.map(|n| format!("#{n}")).unwrap_or_default(),
                    esc(&cell.aliases.join(", ")),
                    esc(&cell.commit),
                    esc(cell.deployed_at.as_deref().unwrap_or_default()),
                    esc(cell.deployed_by.as_deref().unwrap_or_default()),
                    esc(&cell.blocked.join(", "))
                );
            }
            None => body.push_str("<td class=\"muted\">—</td><td></td><td></td>"),
        }
        body.push_str("<td>");
        if let Some(p) = previous {
            let _ = write!(
                body,
                "<a href=\"/ui/diff/{}?from={}&amp;to={}\">diff {} → {}</a>",
                esc(&url_escaped(full)),
                esc(&url_escaped(p)),
                esc(&url_escaped(&c.name)),
                esc(p),
                esc(&c.name)
            );
        }
        body.push_str("</td></tr>");
        previous = Some(&c.name);
    }
    body.push_str("</table>");
    // Actions.
    if let Some(csrf) = session.csrf.as_deref() {
        let newest = releases.body["releases"][0]["number"]
            .as_u64()
            .map(|n| n.to_string())
            .unwrap_or_default();
        let opts = env_options(&envs);
        let common = format!("{}{}", csrf_field(csrf), hidden("project", full));
        let overrides = "<label>overriding <input name=\"overrides\" size=\"16\" placeholder=\"rules, e.g. window\"></label>\
<label>because <input name=\"reason\" size=\"24\" placeholder=\"required with overrides\"></label>";
        let _ = write!(
            body,
            "<h2>Actions</h2><p class=\"muted\">Each action shows the policy's decisions (a dry run) before you confirm.</p>\
<form class=\"action\" id=\"deploy\" method=\"post\" action=\"/ui/preview\">{common}{}<label>Deploy release <input name=\"release_id\" value=\"{}\" required size=\"12\"></label><label>to <select name=\"environment\">{opts}</select></label>{overrides}<button>Preview deploy</button></form><br>\
<form class=\"action\" id=\"approve\" method=\"post\" action=\"/ui/preview\">{common}{}<label>Approve release <input name=\"release_id\" value=\"{}\" required size=\"12\"></label><label>for <select name=\"environment\">{opts}</select></label><label>because <input name=\"justification\" required size=\"30\"></label><button>Preview approval</button></form><br>\
<form class=\"action\" id=\"rollback\" method=\"post\" action=\"/ui/preview\">{common}{}<label>Roll back <select name=\"environment\">{opts}</select></label><label>to release <input name=\"to\" size=\"12\" placeholder=\"previous\"></label><label><input type=\"checkbox\" name=\"block\" value=\"1\"> block the current release</label>{overrides}<button>Preview rollback</button></form>",
            hidden("action", "deploy"),
            esc(&newest),
            hidden("action", "approve"),
            esc(&newest),
            hidden("action", "rollback"),
        );
    }
    // History: every environment's events, newest first.
    let mut events: Vec<(String, Value)> = Vec::new();
    for env in &envs {
        let h = api(
            state,
            session,
            &Method::GET,
            &format!("/v1/history/{env}/{full}"),
            None,
            &Value::Null,
        )
        .await;
        if h.status != StatusCode::OK {
            return reply_page(session, &h);
        }
        for e in h.body["events"].as_array().into_iter().flatten() {
            events.push((env.clone(), e.clone()));
        }
    }
    events.sort_by(|a, b| text(&b.1["time"]).cmp(&text(&a.1["time"])));
    body.push_str("<h2>Deployment history</h2><table id=\"history\"><tr><th>Time</th><th>Environment</th><th>Action</th><th>Release</th><th>By</th><th>Outcome</th><th>Signed by</th><th>Notes</th></tr>");
    if events.is_empty() {
        body.push_str("<tr><td colspan=\"8\" class=\"muted\">No deployments yet.</td></tr>");
    }
    for (env, e) in &events {
        let mut notes = String::new();
        if let Some(o) = e["overrides"].as_array().filter(|o| !o.is_empty()) {
            let list: Vec<String> = o.iter().map(text).collect();
            let _ = write!(
                notes,
                "override {} ({})",
                list.join(", "),
                text(&e["override_reason"])
            );
        }
        if !e["unblocked"].is_null() {
            let _ = write!(notes, " unblocked {}", text(&e["unblocked"]));
        }
        let _ = write!(
            body,
            "<tr class=\"event\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&text(&e["time"])),
            esc(env),
            esc(&text(&e["action"])),
            esc(&text(&e["label"])),
            esc(&text(&e["author"])),
            outcome_badge(&text(&e["outcome"])),
            esc(&text(&e["signed_by"])),
            esc(notes.trim())
        );
    }
    body.push_str("</table><h2>Releases</h2><table id=\"releases\"><tr><th>#</th><th>Aliases</th><th>Commit</th><th>Digest</th><th>Created</th></tr>");
    for r in releases.body["releases"]
        .as_array()
        .into_iter()
        .flatten()
        .take(50)
    {
        let aliases: Vec<String> = r["aliases"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|a| text(&a["alias"]))
            .collect();
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td><td><code>{}</code></td><td><code>{}</code></td><td>{}</td></tr>",
            esc(&text(&r["number"])),
            esc(&aliases.join(", ")),
            esc(&text(&r["commit"])),
            esc(&text(&r["digest"])),
            esc(&text(&r["created_at"]))
        );
    }
    body.push_str("</table>");
    Page::html(StatusCode::OK, frame(full, &session.viewer(), &body))
}

/// `/ui/diff/{repo}/{project}?from=ENV&to=ENV`: what deploying `from`'s release to `to`
/// would change there.
pub async fn diff(
    state: &Arc<State>,
    session: &Session,
    full: &str,
    query: &[(String, String)],
) -> Page {
    let full = full.trim_matches('/');
    let (Some(from), Some(to)) = (field(query, "from"), field(query, "to")) else {
        return error_page(
            session,
            StatusCode::BAD_REQUEST,
            "query: expected ?from=ENV&to=ENV, found neither or one",
        );
    };
    let m = match matrix::load(state).await {
        Ok(m) => m,
        Err(r) => return reply_page(session, &r),
    };
    let Some(source) = m.cell(full, from).filter(|c| !c.commit.is_empty()) else {
        return error_page(
            session,
            StatusCode::NOT_FOUND,
            &format!("{full} in {from}: expected a release running there, found none"),
        );
    };
    let id = source
        .number
        .map_or_else(|| source.commit.clone(), |n| n.to_string());
    let r = api(
        state,
        session,
        &Method::GET,
        &format!("/v1/diff/{to}/{full}/{id}"),
        None,
        &Value::Null,
    )
    .await;
    if r.status != StatusCode::OK {
        return reply_page(session, &r);
    }
    let list = |key: &str| -> Vec<String> {
        r.body[key]
            .as_array()
            .into_iter()
            .flatten()
            .map(text)
            .collect()
    };
    let (added, removed) = (list("added"), list("removed"));
    let changed = r.body["changed"].as_array().cloned().unwrap_or_default();
    let mut body = format!(
        "<h1>{} — {} → {}</h1><p>What deploying <b>{}</b>'s release (#{}) to <b>{}</b> would change there: \
<span id=\"counts\">{} added, {} removed, {} changed, {} unchanged</span>.</p><p class=\"muted\">from {} to {}</p>",
        esc(full),
        esc(from),
        esc(to),
        esc(from),
        esc(&id),
        esc(to),
        added.len(),
        removed.len(),
        changed.len(),
        esc(&text(&r.body["unchanged"])),
        esc(&text(&r.body["from"])),
        esc(&text(&r.body["to"]))
    );
    for (title, items, id) in [("Added", &added, "added"), ("Removed", &removed, "removed")] {
        if !items.is_empty() {
            let _ = write!(body, "<h2>{title}</h2><ul id=\"{id}\">");
            for o in items {
                let _ = write!(body, "<li><code>{}</code></li>", esc(o));
            }
            body.push_str("</ul>");
        }
    }
    if !changed.is_empty() {
        body.push_str("<h2>Changed</h2><div id=\"changed\">");
        for c in &changed {
            let _ = write!(
                body,
                "<h3><code>{}</code></h3>{}",
                esc(&text(&c["object"])),
                diff_block(&text(&c["diff"]))
            );
        }
        body.push_str("</div>");
    }
    Page::html(
        StatusCode::OK,
        frame(&format!("diff {full}"), &session.viewer(), &body),
    )
}
