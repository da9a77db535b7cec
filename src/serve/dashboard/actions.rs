//! Approve, deploy and rollback from the dashboard: `/ui/preview` runs the request as a dry
//! run (for an approval: reads the approvals so far) and shows the policy's decisions with a
//! confirm form; `/ui/confirm` runs it for real and shows the result.
//!
//! Invariants: both go through the API's routes as the session's principal, so permissions,
//! four eyes and policy are the API's; the confirm form carries the same fields as the
//! preview, nothing else, so what is confirmed is what was previewed. A deploy or rollback may
//! override policy rules with a reason, as the API's body may (`overrides`, `reason`); a
//! preview the policy would refuse offers its failing rules to override.

use std::fmt::Write as _;
use std::sync::Arc;

use ::http::{Method, StatusCode};
use serde_json::{Value, json};

use super::html::{badge, csrf_field, esc, frame, hidden};
use super::{Page, Session, api, error_page, field};
use crate::serve::State;
use crate::serve::http::Reply;
use crate::text::url_escaped;

/// The fields an action carries from preview to confirm.
const FIELDS: &[&str] = &[
    "action",
    "project",
    "environment",
    "release_id",
    "justification",
    "to",
    "block",
    "reason",
];

/// The rules a form overrides: every `overrides` field (text or checkbox), split on commas
/// and spaces, each once.
fn override_list(form: &[(String, String)]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for (_, v) in form.iter().filter(|(k, _)| k == "overrides") {
        for rule in v.split([',', ' ']).map(str::trim).filter(|r| !r.is_empty()) {
            if !out.iter().any(|o| o == rule) {
                out.push(rule.to_owned());
            }
        }
    }
    out
}

/// Adds the form's overrides and reason to a deploy or rollback body.
fn with_overrides(mut body: Value, form: &[(String, String)]) -> Value {
    let rules = override_list(form);
    if !rules.is_empty() {
        body["overrides"] = rules.into();
    }
    if let Some(reason) = field(form, "reason")
        .map(str::trim)
        .filter(|r| !r.is_empty())
    {
        body["reason"] = reason.into();
    }
    body
}

fn text(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        v => v.to_string(),
    }
}

/// The API request of an action: method, path, query, body.
fn request(
    form: &[(String, String)],
    dry_run: bool,
) -> Result<(Method, String, Option<String>, Value), String> {
    let get = |k: &str| field(form, k).map(str::trim).filter(|v| !v.is_empty());
    let need = |k: &str| get(k).ok_or_else(|| format!("field {k}: expected a value, found none"));
    let project = need("project")?;
    let env = need("environment")?;
    match need("action")? {
        "deploy" => Ok((
            Method::POST,
            "/v1/deployments".into(),
            None,
            with_overrides(
                json!({"environment": env, "project": project, "release_id": need("release_id")?, "dry_run": dry_run}),
                form,
            ),
        )),
        "rollback" => {
            let mut body = json!({"environment": env, "project": project, "dry_run": dry_run, "block": get("block").is_some()});
            if let Some(to) = get("to") {
                body["to"] = to.into();
            }
            Ok((
                Method::POST,
                "/v1/rollbacks".into(),
                None,
                with_overrides(body, form),
            ))
        }
        "approve" if dry_run => Ok((
            Method::GET,
            format!("/v1/approvals/{}/{env}", need("release_id")?),
            Some(format!("project={project}")),
            Value::Null,
        )),
        "approve" => Ok((
            Method::POST,
            "/v1/approvals".into(),
            None,
            json!({"environment": env, "project": project, "release_id": need("release_id")?, "justification": need("justification")?}),
        )),
        other => Err(format!(
            "field action: expected deploy, approve or rollback, found {other:?}"
        )),
    }
}

/// The decisions of a deploy-like answer as a table, with each item's verdict.
fn decisions(body: &Value) -> String {
    let mut out = String::new();
    for item in body["items"].as_array().into_iter().flatten() {
        let _ = write!(
            out,
            "<h3>{} → {}: release #{} <span class=\"verdict\">{}</span></h3>\
<table class=\"decisions\"><tr><th>Rule</th><th>Required</th><th>Actual</th><th>Result</th></tr>",
            esc(&text(&item["project"])),
            esc(&text(&item["environment"])),
            esc(&text(&item["release"]["number"])),
            esc(&text(&item["verdict"]))
        );
        for d in item["decisions"].as_array().into_iter().flatten() {
            let pass = d["pass"].as_bool().unwrap_or(false);
            let overridden = d["overridden"].as_bool().unwrap_or(false);
            // An overridden rule may report `pass` too: show that it took an override.
            let result = match (pass, overridden) {
                (_, true) => badge("pending", "overridden"),
                (true, false) => badge("pass", "pass"),
                (false, false) => badge("refused", "fail"),
            };
            let _ = write!(
                out,
                "<tr class=\"decision\" data-rule=\"{0}\"><td>{0}</td><td>{1}</td><td>{2}</td><td>{result}</td></tr>",
                esc(&text(&d["rule"])),
                esc(&text(&d["required"])),
                esc(&text(&d["actual"]))
            );
        }
        out.push_str("</table>");
    }
    out
}

fn approvals(body: &Value) -> String {
    let mut out = format!(
        "<p>Release #{} of {} in {}: <span id=\"live\">{} live</span> of {} required{}.</p><table class=\"approvals\"><tr><th>Approver</th><th>At</th><th>Expires</th><th>Why</th><th>Live</th></tr>",
        esc(&text(&body["release"]["number"])),
        esc(&format!(
            "{}/{}",
            text(&body["repository"]),
            text(&body["project"])
        )),
        esc(&text(&body["environment"])),
        esc(&text(&body["live"])),
        esc(&text(&body["required"])),
        if body["requires_approval"] == Value::Bool(false) {
            " (the environment requires no approval)"
        } else {
            ""
        }
    );
    for a in body["approvals"].as_array().into_iter().flatten() {
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&text(&a["approver"])),
            esc(&text(&a["approved_at"])),
            esc(&text(&a["expires_at"])),
            esc(&text(&a["justification"])),
            esc(&text(&a["live"]))
        );
    }
    out.push_str("</table>");
    out
}

fn problem(reply: &Reply) -> String {
    if reply.status.is_success() {
        return String::new();
    }
    format!(
        "<p class=\"error\" id=\"error\">{} {}: {}</p>",
        reply.status.as_u16(),
        esc(&text(&reply.body["error"]["kind"])),
        esc(&text(&reply.body["error"]["message"]))
    )
}

fn back(form: &[(String, String)]) -> String {
    field(form, "project").map_or_else(String::new, |p| {
        format!(
            "<p><a href=\"/ui/project/{}\">Back to {}</a></p>",
            esc(&url_escaped(p)),
            esc(p)
        )
    })
}

/// `/ui/preview`: the dry run and a confirm form.
pub async fn preview(state: &Arc<State>, session: &Session, form: &[(String, String)]) -> Page {
    let (method, path, query, body) = match request(form, true) {
        Ok(r) => r,
        Err(e) => return error_page(session, StatusCode::BAD_REQUEST, &e),
    };
    let reply = api(state, session, &method, &path, query.as_deref(), &body).await;
    let action = field(form, "action").unwrap_or_default();
    let mut html = format!("<h1>Preview: {}</h1>", esc(action));
    html.push_str(&problem(&reply));
    if action == "approve" {
        if reply.status.is_success() {
            html.push_str(&approvals(&reply.body));
        }
    } else {
        html.push_str(&decisions(&reply.body));
        if reply.body["would_refuse"] == Value::Bool(true) {
            html.push_str(
                "<p class=\"error\" id=\"would-refuse\">The policy would refuse this now.</p>",
            );
            html.push_str(&override_form(session, form, &reply.body));
        }
    }
    if reply.status.is_success() {
        let csrf = session.csrf.as_deref().unwrap_or_default();
        let _ = write!(
            html,
            "<form class=\"action\" id=\"confirm\" method=\"post\" action=\"/ui/confirm\">{}",
            csrf_field(csrf)
        );
        for k in FIELDS {
            if let Some(v) = field(form, k) {
                html.push_str(&hidden(k, v));
            }
        }
        let rules = override_list(form);
        if !rules.is_empty() {
            html.push_str(&hidden("overrides", &rules.join(",")));
            let _ = write!(
                html,
                "<p id=\"overriding\">Overriding {} because: {}</p>",
                esc(&rules.join(", ")),
                esc(field(form, "reason").unwrap_or_default())
            );
        }
        let _ = write!(html, "<button>Confirm {}</button></form>", esc(action));
    }
    html.push_str(&back(form));
    Page::html(
        reply.status,
        frame(&format!("preview {action}"), &session.viewer(), &html),
    )
}

/// The form that previews again overriding the rules that failed (checked), with a reason.
fn override_form(session: &Session, form: &[(String, String)], body: &Value) -> String {
    let mut failed: Vec<String> = Vec::new();
    for d in body["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|i| i["decisions"].as_array())
        .flatten()
    {
        let rule = text(&d["rule"]);
        if d["pass"] != Value::Bool(true)
            && d["overridden"] != Value::Bool(true)
            && !failed.contains(&rule)
        {
            failed.push(rule);
        }
    }
    if failed.is_empty() {
        return String::new();
    }
    let mut html = format!(
        "<form class=\"action\" id=\"override\" method=\"post\" action=\"/ui/preview\">{}",
        csrf_field(session.csrf.as_deref().unwrap_or_default())
    );
    for k in FIELDS.iter().filter(|k| **k != "reason") {
        if let Some(v) = field(form, k) {
            html.push_str(&hidden(k, v));
        }
    }
    html.push_str("Override ");
    for rule in override_list(form).iter().chain(&failed) {
        let _ = write!(
            html,
            "<label><input type=\"checkbox\" name=\"overrides\" value=\"{0}\" checked> {0}</label> ",
            esc(rule)
        );
    }
    let _ = write!(
        html,
        "<label>because <input name=\"reason\" required size=\"30\" value=\"{}\"></label><button>Preview with overrides</button></form>",
        esc(field(form, "reason").unwrap_or_default())
    );
    html
}

/// `/ui/confirm`: the real request and its result.
pub async fn confirm(state: &Arc<State>, session: &Session, form: &[(String, String)]) -> Page {
    let (method, path, query, body) = match request(form, false) {
        Ok(r) => r,
        Err(e) => return error_page(session, StatusCode::BAD_REQUEST, &e),
    };
    let reply = api(state, session, &method, &path, query.as_deref(), &body).await;
    let action = field(form, "action").unwrap_or_default();
    let mut html = format!(
        "<h1>{}: <span id=\"result\">{}</span></h1>",
        esc(action),
        esc(&text(&reply.body["result"]))
    );
    html.push_str(&problem(&reply));
    if let Some(c) = reply.body["commit"].as_str() {
        let _ = write!(
            html,
            "<p>GitOps commit <code id=\"commit\">{}</code></p>",
            esc(c)
        );
    }
    html.push_str(&decisions(&reply.body));
    html.push_str(&back(form));
    Page::html(reply.status, frame(action, &session.viewer(), &html))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn a_preview_is_a_dry_run_and_a_confirm_is_not() {
        let form = f(&[
            ("action", "deploy"),
            ("project", "a/b/c"),
            ("environment", "dev"),
            ("release_id", "3"),
        ]);
        let (m, path, _, body) = request(&form, true).unwrap();
        assert_eq!((m, path.as_str()), (Method::POST, "/v1/deployments"));
        assert_eq!(body["dry_run"], true);
        assert_eq!(request(&form, false).unwrap().3["dry_run"], false);
    }

    #[test]
    fn overrides_from_text_and_checkboxes_reach_the_body_with_the_reason() {
        let form = f(&[
            ("action", "deploy"),
            ("project", "a/b/c"),
            ("environment", "prod"),
            ("release_id", "3"),
            ("overrides", "window, soak"),
            ("overrides", "soak"),
            ("overrides", "hold"),
            ("reason", " incident 42 "),
        ]);
        let body = request(&form, true).unwrap().3;
        assert_eq!(body["overrides"], json!(["window", "soak", "hold"]));
        assert_eq!(body["reason"], "incident 42");
        let plain = f(&[
            ("action", "rollback"),
            ("project", "a/b/c"),
            ("environment", "prod"),
        ]);
        let body = request(&plain, false).unwrap().3;
        assert!(body.get("overrides").is_none() && body.get("reason").is_none());
    }

    #[test]
    fn an_approval_previews_the_approvals_and_needs_a_justification() {
        let form = f(&[
            ("action", "approve"),
            ("project", "a/b/c"),
            ("environment", "prod"),
            ("release_id", "3"),
        ]);
        let (m, path, query, _) = request(&form, true).unwrap();
        assert_eq!(
            (m, path.as_str(), query.as_deref()),
            (Method::GET, "/v1/approvals/3/prod", Some("project=a/b/c"))
        );
        assert!(request(&form, false).unwrap_err().contains("justification"));
        assert!(
            request(
                &f(&[("action", "drop"), ("project", "p"), ("environment", "e")]),
                true
            )
            .unwrap_err()
            .contains("\"drop\"")
        );
    }

    #[test]
    fn decisions_are_escaped_and_marked() {
        let body = json!({"items": [{"project": "p", "environment": "prod", "release": {"number": 2}, "verdict": "refused",
            "decisions": [{"rule": "window", "required": "<b>", "actual": "x", "pass": false, "overridden": false}]}]});
        let html = decisions(&body);
        assert!(
            html.contains("&lt;b&gt;") && !html.contains("<b>"),
            "{html}"
        );
        assert!(
            html.contains("data-rule=\"window\"") && html.contains("badge refused"),
            "{html}"
        );
    }
}
