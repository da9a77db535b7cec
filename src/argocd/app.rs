//! The parts of Argo CD's `v1alpha1Application` that releasectl reads, named as Argo CD's
//! OpenAPI document (`assets/swagger.json`) names them, and what they say about a deploy.
//!
//! Every field is optional: Argo CD leaves out what it has not computed yet (a new
//! Application has no `operationState`), and an absent field never fails a read. Values from
//! the server are untrusted: [`Application::problems`] escapes them with `text::printable`.

use std::fmt::Write as _;

use serde::Deserialize;

/// `v1alpha1Application`, the body of `GET /api/v1/applications/{name}`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Application {
    pub status: Status,
}

/// `v1alpha1ApplicationStatus`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Status {
    pub sync: SyncStatus,
    pub health: HealthStatus,
    pub operation_state: Option<OperationState>,
    pub conditions: Vec<Condition>,
    pub resources: Vec<ResourceStatus>,
}

/// `v1alpha1SyncStatus`: `status` is Synced, OutOfSync or Unknown; `revision` the commit
/// the Application was last compared at (`revisions` for a multi-source Application).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct SyncStatus {
    pub status: Option<String>,
    pub revision: Option<String>,
    pub revisions: Vec<String>,
}

/// `v1alpha1AppHealthStatus` / `v1alpha1HealthStatus`: Healthy, Progressing, Degraded,
/// Suspended, Missing or Unknown.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct HealthStatus {
    pub status: Option<String>,
    pub message: Option<String>,
}

/// `v1alpha1OperationState`: `phase` is Running, Terminating, Failed, Error or Succeeded.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct OperationState {
    pub phase: Option<String>,
    pub message: Option<String>,
    pub sync_result: Option<SyncOperationResult>,
}

/// `v1alpha1SyncOperationResult`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct SyncOperationResult {
    pub revision: Option<String>,
    pub revisions: Vec<String>,
}

/// `v1alpha1ApplicationCondition`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Condition {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub message: Option<String>,
}

/// `applicationv1alpha1ResourceStatus`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ResourceStatus {
    pub kind: Option<String>,
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub status: Option<String>,
    pub health: Option<HealthStatus>,
}

fn show(s: Option<&str>) -> String {
    crate::text::printable(s.unwrap_or("Unknown"), 64)
}

impl Application {
    /// Synced, OutOfSync or Unknown.
    #[must_use]
    pub fn sync_status(&self) -> String {
        show(self.status.sync.status.as_deref())
    }

    /// Healthy, Progressing, Degraded, ... or Unknown.
    #[must_use]
    pub fn health(&self) -> String {
        show(self.status.health.status.as_deref())
    }

    /// The revision the Application is synced to: `sync.revision`, else the first of
    /// `sync.revisions`.
    #[must_use]
    pub fn sync_revision(&self) -> Option<&str> {
        let sync = &self.status.sync;
        sync.revision
            .as_deref()
            .or_else(|| sync.revisions.first().map(String::as_str))
            .filter(|r| !r.is_empty())
    }

    /// The revision of the last sync operation (`operationState.syncResult`).
    #[must_use]
    pub fn operation_revision(&self) -> Option<&str> {
        let result = self.status.operation_state.as_ref()?.sync_result.as_ref()?;
        result
            .revision
            .as_deref()
            .or_else(|| result.revisions.first().map(String::as_str))
            .filter(|r| !r.is_empty())
    }

    /// The last operation's phase, when it failed (`Failed` or `Error`).
    #[must_use]
    pub fn failed_phase(&self) -> Option<&str> {
        self.status
            .operation_state
            .as_ref()
            .and_then(|o| o.phase.as_deref())
            .filter(|p| matches!(*p, "Failed" | "Error"))
    }

    /// What is wrong, in one escaped line: the operation's message when it failed, the
    /// health message, every condition, and every resource that is not Healthy.
    #[must_use]
    pub fn problems(&self) -> String {
        let mut parts = Vec::new();
        if let Some(op) = &self.status.operation_state
            && let Some(phase) = self.failed_phase()
        {
            parts.push(format!(
                "sync {}: {}",
                crate::text::printable(phase, 16),
                crate::text::printable(op.message.as_deref().unwrap_or(""), 300)
            ));
        }
        if let Some(m) = self
            .status
            .health
            .message
            .as_deref()
            .filter(|m| !m.is_empty())
        {
            parts.push(format!("health: {}", crate::text::printable(m, 300)));
        }
        for c in self.status.conditions.iter().take(10) {
            parts.push(format!(
                "condition {}: {}",
                show(c.kind.as_deref()),
                crate::text::printable(c.message.as_deref().unwrap_or(""), 300)
            ));
        }
        let unhealthy: Vec<String> = self
            .status
            .resources
            .iter()
            .filter_map(|r| {
                let health = r.health.as_ref()?;
                let status = health.status.as_deref()?;
                if matches!(status, "Healthy" | "Suspended") {
                    return None;
                }
                let mut s = format!(
                    "{} {}/{} is {}",
                    show(r.kind.as_deref()),
                    crate::text::printable(r.namespace.as_deref().unwrap_or(""), 64),
                    show(r.name.as_deref()),
                    crate::text::printable(status, 32)
                );
                if let Some(m) = health.message.as_deref().filter(|m| !m.is_empty()) {
                    let _ = write!(s, " ({})", crate::text::printable(m, 200));
                }
                Some(s)
            })
            .take(10)
            .collect();
        parts.extend(unhealthy);
        parts.join("; ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app(json: &str) -> Application {
        serde_json::from_str(json).expect("an Application")
    }

    #[test]
    fn an_application_with_nothing_computed_yet_reads_as_unknown() {
        let a = app(r#"{"metadata": {"name": "x"}}"#);
        assert_eq!(
            (a.sync_status().as_str(), a.health().as_str()),
            ("Unknown", "Unknown")
        );
        assert_eq!(a.sync_revision(), None);
        assert_eq!(a.failed_phase(), None);
        assert_eq!(a.problems(), "");
    }

    #[test]
    fn problems_name_the_failed_sync_the_conditions_and_each_unhealthy_resource_escaped() {
        let a = app(r#"{"status": {
                "sync": {"status": "OutOfSync", "revisions": ["abc"]},
                "health": {"status": "Degraded"},
                "operationState": {"phase": "Failed", "message": "one or more objects failed\nerror: forged",
                    "syncResult": {"revision": "def"}},
                "conditions": [{"type": "SyncError", "message": "quota exceeded"}],
                "resources": [
                    {"kind": "Deployment", "namespace": "ns", "name": "web", "health": {"status": "Degraded", "message": "\u001b[31mcrash"}},
                    {"kind": "Service", "namespace": "ns", "name": "web", "health": {"status": "Healthy"}}
                ]}}"#);
        assert_eq!(a.sync_revision(), Some("abc"));
        assert_eq!(a.operation_revision(), Some("def"));
        assert_eq!(a.failed_phase(), Some("Failed"));
        let p = a.problems();
        assert!(
            p.contains("sync Failed: one or more objects failed\\nerror: forged"),
            "{p}"
        );
        assert!(p.contains("condition SyncError: quota exceeded"), "{p}");
        assert!(
            p.contains("Deployment ns/web is Degraded (\\u{1b}[31mcrash)"),
            "{p}"
        );
        assert!(!p.contains("Service"), "{p}");
        assert!(!p.contains('\n') && !p.contains('\u{1b}'), "{p}");
    }
}
