//! Deploy, promote, roll back, unblock, approve and revoke through the server: the request
//! bodies of docs/serve.md and the decision report the server answers, read back into the
//! shape `deploy -o json` prints and rendered as `deploy` renders it locally.
//!
//! Invariants: the JSON printed is the server's report with only the server's own
//! additions (`error`, `would_refuse`) removed and the CLI's `outcomes` (always empty: the
//! server does not `--wait`) added, so it equals the local path's JSON for the same
//! operation; a policy refusal is an answer with its report, not an error.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{ApiError, Client};

/// `--dry-run`, `--override` and `--reason`, as the API takes them.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PolicyFields {
    pub dry_run: bool,
    pub overrides: Vec<String>,
    pub reason: Option<String>,
}

/// One project of a release group.
#[derive(Debug, Clone, Serialize)]
pub struct GroupItem {
    pub project: String,
    pub release_id: String,
}

/// A write of the deploy family: its endpoint and body.
#[derive(Debug, Clone)]
pub enum Write {
    Deploy {
        environment: String,
        /// One item: `project` and `release_id`; more: a group.
        items: Vec<GroupItem>,
        policy: PolicyFields,
    },
    Promote {
        project: String,
        from: String,
        to: String,
        policy: PolicyFields,
    },
    Rollback {
        environment: String,
        project: String,
        to: Option<String>,
        block: bool,
        policy: PolicyFields,
    },
    Unblock {
        environment: String,
        project: String,
        release_id: String,
    },
}

fn with_policy(mut body: Value, policy: &PolicyFields) -> Value {
    body["dry_run"] = policy.dry_run.into();
    body["overrides"] = policy.overrides.clone().into();
    if let Some(r) = &policy.reason {
        body["reason"] = r.clone().into();
    }
    body
}

impl Write {
    /// The endpoint and the JSON body.
    #[must_use]
    pub fn request(&self) -> (&'static str, Value) {
        use serde_json::json;
        match self {
            Self::Deploy {
                environment,
                items,
                policy,
            } => {
                let body = match items.as_slice() {
                    [one] => {
                        json!({"environment": environment, "project": one.project, "release_id": one.release_id})
                    }
                    many => json!({"environment": environment, "group": many}),
                };
                ("/v1/deployments", with_policy(body, policy))
            }
            Self::Promote {
                project,
                from,
                to,
                policy,
            } => (
                "/v1/promotions",
                with_policy(json!({"project": project, "from": from, "to": to}), policy),
            ),
            Self::Rollback {
                environment,
                project,
                to,
                block,
                policy,
            } => {
                let mut body =
                    json!({"environment": environment, "project": project, "block": block});
                if let Some(to) = to {
                    body["to"] = to.clone().into();
                }
                ("/v1/rollbacks", with_policy(body, policy))
            }
            Self::Unblock {
                environment,
                project,
                release_id,
            } => (
                "/v1/unblocks",
                json!({"environment": environment, "project": project, "release_id": release_id}),
            ),
        }
    }
}

/// The decision report the server answered.
#[derive(Debug, Deserialize)]
pub struct ReportView {
    pub action: String,
    pub result: String,
    pub commit: Option<String>,
    pub items: Vec<ItemView>,
}

#[derive(Debug, Deserialize)]
pub struct ItemView {
    pub environment: String,
    /// `company/monorepo/auth-service`.
    pub project: String,
    pub release: ReleaseView,
    pub previous: Option<ReleaseView>,
    pub decisions: Vec<DecisionView>,
    pub verdict: String,
}

#[derive(Debug, Deserialize)]
pub struct ReleaseView {
    pub number: u64,
    pub aliases: Vec<String>,
}

impl ReleaseView {
    /// `42 (v1.2.3)`, as a register entry labels itself.
    fn label(&self) -> String {
        match self.aliases.first() {
            Some(a) => format!("{} ({a})", self.number),
            None => self.number.to_string(),
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct DecisionView {
    pub rule: String,
    pub required: String,
    pub actual: String,
    pub pass: bool,
    #[serde(default)]
    pub overridden: bool,
}

/// How the server ended a deploy-like write.
#[derive(Debug)]
pub struct Decided {
    /// The JSON `deploy -o json` prints.
    pub json: Value,
    pub report: ReportView,
    /// Refused by policy: the server's message (`refused by policy: …`).
    pub refused: Option<String>,
    /// A dry run whose real run would be refused.
    pub would_refuse: bool,
}

impl Decided {
    /// The text `deploy` prints locally.
    #[must_use]
    pub fn text(&self) -> String {
        let mut out = String::new();
        for i in &self.report.items {
            let short = i.project.rsplit('/').next().unwrap_or(&i.project);
            let _ = writeln!(
                out,
                "{} {short} in {}: release {} (previous: {}) — {}",
                self.report.action,
                i.environment,
                i.release.label(),
                i.previous
                    .as_ref()
                    .map_or_else(|| "none".to_owned(), ReleaseView::label),
                i.verdict
            );
            for d in &i.decisions {
                let _ = writeln!(
                    out,
                    "{}",
                    crate::deploy::view::decision_line(
                        d.pass,
                        &d.rule,
                        &d.required,
                        &d.actual,
                        d.overridden
                    )
                );
            }
        }
        match &self.report.commit {
            Some(c) => {
                let _ = writeln!(out, "{}: {c}", self.report.result);
            }
            None => {
                let _ = writeln!(out, "{}", self.report.result);
            }
        }
        out
    }
}

fn garbled(client: &Client, what: &str, e: &serde_json::Error) -> ApiError {
    ApiError::Garbled {
        server: client.base.clone(),
        what: what.to_owned(),
        status: 200,
        found: format!("a report that does not parse: {e}"),
    }
}

/// Sends `write`; a refusal by policy is an answer (with its report), any other error
/// answer an error.
pub async fn send(client: &Client, write: &Write, what: &str) -> Result<Decided, ApiError> {
    let (path, body) = write.request();
    let answer = client.post(path, &body, what).await?;
    let refused = answer.kind() == Some("refused") && answer.body.get("items").is_some();
    let refused = refused.then(|| answer.message());
    let mut json = if refused.is_some() {
        answer.body
    } else {
        client.ok(answer, what)?
    };
    let would_refuse = json["would_refuse"].as_bool().unwrap_or(false);
    if let Some(o) = json.as_object_mut() {
        o.remove("error");
        o.remove("would_refuse");
    }
    json["outcomes"] = Value::Array(Vec::new());
    let report: ReportView =
        serde_json::from_value(json.clone()).map_err(|e| garbled(client, what, &e))?;
    Ok(Decided {
        json,
        report,
        refused,
        would_refuse,
    })
}

/// What `approve` and `revoke` answer: the summary, the approvals file, the commit and a
/// note for the user.
#[derive(Debug, Deserialize)]
pub struct Approved {
    pub result: String,
    pub file: Option<String>,
    pub commit: Option<String>,
    pub note: Option<String>,
}

/// `POST /v1/approvals` (`justification: Some`) or `/v1/revocations` (`None`).
pub async fn approve(
    client: &Client,
    environment: &str,
    project: &str,
    release_id: &str,
    justification: Option<&str>,
) -> Result<Approved, ApiError> {
    let mut body = serde_json::json!({
        "environment": environment,
        "project": project,
        "release_id": release_id,
    });
    let (path, what) = match justification {
        Some(j) => {
            body["justification"] = j.into();
            ("/v1/approvals", "approve")
        }
        None => ("/v1/revocations", "revoke"),
    };
    let answer = client.post(path, &body, what).await?;
    let json = client.ok(answer, what)?;
    serde_json::from_value(json).map_err(|e| garbled(client, what, &e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_item_is_a_plain_deploy_and_more_are_a_group() {
        let item = |p: &str| GroupItem {
            project: p.into(),
            release_id: "v1".into(),
        };
        let one = Write::Deploy {
            environment: "dev".into(),
            items: vec![item("a")],
            policy: PolicyFields::default(),
        };
        let (path, body) = one.request();
        assert_eq!(path, "/v1/deployments");
        assert_eq!(body["project"], "a");
        assert!(body.get("group").is_none() && body.get("reason").is_none());
        let two = Write::Deploy {
            environment: "dev".into(),
            items: vec![item("a"), item("b")],
            policy: PolicyFields {
                dry_run: true,
                overrides: vec!["windows".into()],
                reason: Some("hotfix".into()),
            },
        };
        let (_, body) = two.request();
        assert_eq!(body["group"][1]["project"], "b");
        assert_eq!(body["dry_run"], true);
        assert_eq!(body["reason"], "hotfix");
        assert!(body.get("project").is_none());
    }
}
