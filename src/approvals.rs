//! Approvals, `approvals/<env>/<repository>/<project>/<commit>.yaml` (DESIGN.md §8).
//!
//! One file per release and environment, holding every approval given for it. An approval
//! counts only for the exact release digest and environment it names, only if its approver
//! is listed in the policy, only until it expires, and (when the policy lists the
//! approver's key) only with a valid signature over the canonical payload.

use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::ids::{CommitSha, Project, Repository};
use crate::policy::{ApprovalFact, Environment};

pub const API_VERSION: &str = "releasectl.dev/v1alpha1";
pub const KIND: &str = "ReleaseApprovals";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Approval {
    pub approver: String,
    pub environment: String,
    pub digest: Digest,
    pub approved_at: String,
    pub expires_at: String,
    pub justification: String,
    /// An SSH signature (`-----BEGIN SSH SIGNATURE-----`) over [`Approval::payload`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApprovalFile {
    #[serde(rename = "apiVersion")]
    pub api_version: String,
    pub kind: String,
    pub environment: String,
    pub repository: Repository,
    pub project: Project,
    pub commit: CommitSha,
    #[serde(default)]
    pub approvals: Vec<Approval>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{file}: not a valid ReleaseApprovals file: {reason}")]
pub struct ApprovalError {
    pub file: String,
    pub reason: String,
}

#[must_use]
pub fn path(env: &str, repository: &Repository, project: &Project, commit: &CommitSha) -> String {
    format!("approvals/{env}/{repository}/{project}/{commit}.yaml")
}

impl ApprovalFile {
    #[must_use]
    pub fn new(env: &str, repository: Repository, project: Project, commit: CommitSha) -> Self {
        Self {
            api_version: API_VERSION.into(),
            kind: KIND.into(),
            environment: env.to_owned(),
            repository,
            project,
            commit,
            approvals: Vec::new(),
        }
    }

    pub fn parse(file: &str, bytes: &[u8]) -> Result<Self, ApprovalError> {
        let err = |reason: String| ApprovalError {
            file: file.to_owned(),
            reason,
        };
        let docs = crate::manifests::yaml_documents(bytes).map_err(&err)?;
        let [doc] = docs.as_slice() else {
            return Err(err(format!(
                "expected one YAML document, found {}",
                docs.len()
            )));
        };
        let parsed: Self = serde_json::from_value(doc.clone()).map_err(|e| err(e.to_string()))?;
        if parsed.api_version != API_VERSION || parsed.kind != KIND {
            return Err(err(format!(
                "apiVersion/kind are {}/{}: expected {API_VERSION}/{KIND}",
                parsed.api_version, parsed.kind
            )));
        }
        Ok(parsed)
    }

    #[must_use]
    pub fn to_yaml(&self) -> String {
        serde_saphyr::to_string(self).expect("approvals serialise")
    }
}

impl Approval {
    /// The canonical payload a signature covers: one `key=value` per line, in this order.
    #[must_use]
    pub fn payload(&self, file: &ApprovalFile) -> String {
        format!(
            "releasectl-approval-v1\nenvironment={}\nrepository={}\nproject={}\ncommit={}\ndigest={}\napprover={}\nexpires_at={}\n",
            self.environment,
            file.repository,
            file.project,
            file.commit,
            self.digest,
            self.approver,
            self.expires_at
        )
    }
}

/// Checks a signature; supplied by the signing module (issue: signed approvals).
pub type SignatureCheck<'a> = &'a dyn Fn(&str, &str, &str) -> Result<(), String>;

/// Judges each approval of `file` for a release with `digest` in `env` at `now`.
#[must_use]
pub fn facts(
    file: Option<&ApprovalFile>,
    env: &Environment,
    digest: &Digest,
    now: jiff::Timestamp,
    verify: SignatureCheck<'_>,
) -> Vec<ApprovalFact> {
    let Some(file) = file else { return Vec::new() };
    let mut seen: Vec<&str> = Vec::new();
    file.approvals
        .iter()
        .map(|a| {
            let problem = (|| {
                if a.environment != env.name.as_str() || file.environment != env.name.as_str() {
                    return Some(format!(
                        "approves environment {}, not {}",
                        a.environment, env.name
                    ));
                }
                if a.digest != *digest {
                    return Some(format!("approves digest {}, not {digest}", a.digest));
                }
                let Some(listed) = env.approvals.approvers.iter().find(|x| x.id == a.approver)
                else {
                    return Some("not a listed approver".to_owned());
                };
                match a.expires_at.parse::<jiff::Timestamp>() {
                    Ok(t) if t > now => {}
                    Ok(t) => return Some(format!("expired at {t}")),
                    Err(_) => return Some(format!("expiry {:?} is not a time", a.expires_at)),
                }
                if let Some(key) = &listed.key {
                    let Some(sig) = &a.signature else {
                        return Some(
                            "unsigned, but the policy lists the approver's key".to_owned(),
                        );
                    };
                    if let Err(e) = verify(key, &a.payload(file), sig) {
                        return Some(format!("signature does not verify: {e}"));
                    }
                }
                if seen.contains(&a.approver.as_str()) {
                    return Some("approved more than once; counted once".to_owned());
                }
                seen.push(&a.approver);
                None
            })();
            ApprovalFact {
                approver: a.approver.clone(),
                valid: problem.is_none(),
                problem,
            }
        })
        .collect()
}
