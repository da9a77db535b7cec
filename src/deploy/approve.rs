//! `approve` and `revoke` as transactions on the GitOps branch (docs/design.md §8): an
//! approval file per release and environment, each change in its own descriptive commit.
//! [`decide_approve`] and [`decide_revoke`] are the decisions; [`approve`] and [`revoke`] run
//! them alone through `GitOps::transact`, the server's writer in a batch.
//!
//! Invariants: an approval that could never count (an approver the environment does not list,
//! an unsigned approval where the policy lists the approver's key, a signature by another key)
//! is refused before anything is written; an approver approves a release once while the
//! approval lives; a revoke removes only the actor's own approval. Signing is the caller's:
//! the command line signs with a local key, the server takes none.

use std::time::Instant;

use git2::Oid;
use jiff::Timestamp;

use crate::approvals::{Approval, ApprovalFile};
use crate::deploy::plan;
use crate::exit::InvalidInput;
use crate::gitops::layout::{self, load_approvals};
use crate::gitops::{Author, Edit, GitOps, ProjectRef, ReleaseSelector, Snapshot, Step};
use crate::policy::EnvName;

/// Signs an approval's canonical payload; `label` names the key in messages.
pub struct Signer<'a> {
    pub label: String,
    pub sign: &'a dyn Fn(&str) -> crate::exit::Result<String>,
}

/// Who approves or revokes what, when.
pub struct Order<'a> {
    pub env: &'a EnvName,
    pub project: &'a ProjectRef,
    pub release_id: &'a ReleaseSelector,
    pub actor: &'a str,
    pub now: Timestamp,
    pub deadline: Instant,
}

/// How an approval or a revoke ended.
#[derive(Debug, Clone)]
pub struct Done {
    /// One line: what was approved or revoked.
    pub summary: String,
    /// The approvals file written.
    pub file: String,
    pub commit: Option<Oid>,
    /// A remark for the person (an environment that needs no approvals).
    pub note: Option<String>,
}

/// The SHA256 fingerprint of an SSH public key (`SHA256:…`), or the key's own text (escaped,
/// truncated) when it does not parse.
fn fingerprint(key: &str) -> String {
    ssh_key::PublicKey::from_openssh(key.trim()).map_or_else(
        |_| crate::text::excerpt(key),
        |k| k.fingerprint(ssh_key::HashAlg::Sha256).to_string(),
    )
}

/// Refuses an approval that could never count (issue 12 point 6): an approver missing from a
/// list the environment declares, or an unsigned approval where the policy lists the
/// approver's key. Returns the key the signature must verify against, if any.
fn admit<'a>(
    env: &'a crate::policy::Environment,
    actor: &str,
    signer: Option<&Signer<'_>>,
) -> Result<Option<&'a str>, InvalidInput> {
    let approvers = &env.approvals.approvers;
    if approvers.is_empty() {
        return Ok(None);
    }
    let Some(listed) = approvers.iter().find(|a| a.id == actor) else {
        let names: Vec<&str> = approvers.iter().map(|a| a.id.as_str()).collect();
        return Err(InvalidInput(format!(
            "{} is not an approver for {}: environments.yaml lists {}; an approval by anyone else would not count",
            crate::text::excerpt(actor),
            env.name,
            names.join(", ")
        )));
    };
    match (&listed.key, signer) {
        (Some(required), None) => Err(InvalidInput(format!(
            "{} must sign approvals for {} with the key {}: pass --key (an unsigned approval would not count; through the server, sign with the CLI)",
            crate::text::excerpt(actor),
            env.name,
            fingerprint(required)
        ))),
        (required, _) => Ok(required.as_deref()),
    }
}

/// What an approval or a revoke decided, before its commit lands.
#[derive(Debug, Clone)]
pub struct Decided {
    /// One line: what was approved or revoked.
    pub summary: String,
    /// The approvals file written.
    pub file: String,
    /// A remark for the person (an environment that needs no approvals).
    pub note: Option<String>,
}

impl Decided {
    /// How it ended once `commit` (if any) landed.
    #[must_use]
    pub fn done(self, commit: Option<Oid>) -> Done {
        Done {
            summary: self.summary,
            file: self.file,
            commit,
            note: self.note,
        }
    }
}

/// Records `order.actor`'s approval of the release for the environment, justified by
/// `justification`, signed by `signer` when given; refuses one that could never count.
pub async fn approve(
    gitops: &GitOps,
    order: &Order<'_>,
    justification: &str,
    signer: Option<&Signer<'_>>,
) -> crate::exit::Result<Done> {
    check_justification(justification)?;
    let author = Author::new(order.actor, order.now.as_second());
    let landed = gitops
        .transact(&author, order.deadline, async |tip| {
            decide_approve(gitops, tip, order, justification, signer)
        })
        .await?;
    Ok(landed.result.done(landed.commit))
}

fn check_justification(justification: &str) -> Result<&str, InvalidInput> {
    let justification = justification.trim();
    if justification.is_empty() {
        return Err(InvalidInput(
            "the justification is empty: say why this release may go there".into(),
        ));
    }
    Ok(justification)
}

/// The approval [`approve`] writes, decided on `tip`: the one decision both a lone
/// transaction and a batch of the server's writer make.
pub fn decide_approve(
    gitops: &GitOps,
    tip: &Snapshot<'_>,
    order: &Order<'_>,
    justification: &str,
    signer: Option<&Signer<'_>>,
) -> crate::exit::Result<Step<Decided>> {
    let justification = check_justification(justification)?;
    let actor = order.actor.to_owned();
    let policy = layout::load_policy(gitops, tip)?;
    let env = plan::environment(&policy, order.env)?;
    let reg = crate::gitops::find_register(gitops, tip, order.project)?;
    let entry = reg.resolve(tip, order.release_id)?;
    let now = order.now;
    // Where nothing waits for approvals, an approval is harmless: say so, refuse nothing.
    let (required_key, note) = if env.requires_approval {
        (admit(env, &actor, signer)?, None)
    } else {
        (
            None,
            Some(format!(
                "{} needs no approvals (environments.yaml does not set requires_approval): no deploy waits for this one",
                env.name
            )),
        )
    };
    let path = layout::approvals_path(&env.name, &reg.repository, &reg.project, &entry.commit);
    let mut file = match load_approvals(tip, &path)? {
        Some(file) => file,
        None => ApprovalFile::new(
            env.name.as_str(),
            reg.repository.clone(),
            reg.project.clone(),
            entry.commit.clone(),
        ),
    };
    let live = |a: &&Approval| {
        a.approver == actor
            && a.digest == entry.digest
            && a.expires_at
                .parse::<jiff::Timestamp>()
                .is_ok_and(|t| t > now)
    };
    if let Some(a) = file.approvals.iter().find(live) {
        return Err(InvalidInput(format!(
            "{actor} already approved release {} of {} for {} (until {}): an approver approves once",
            entry.label(),
            reg.full_name(),
            env.name,
            a.expires_at
        ))
        .into());
    }
    // Expired or superseded approvals of this approver make way for the new one.
    file.approvals.retain(|a| a.approver != actor);
    let expires = now.checked_add(env.approvals.ttl)?;
    let mut approval = Approval {
        approver: actor.clone(),
        environment: env.name.to_string(),
        digest: entry.digest.clone(),
        approved_at: now.to_string(),
        expires_at: expires.to_string(),
        justification: justification.to_owned(),
        signature: None,
    };
    if let Some(signer) = signer {
        let payload = approval.payload(&file);
        let signature = (signer.sign)(&payload)?;
        // The same check deploy makes: a signature by another key is refused here.
        if let Some(required) = required_key
            && let Err(why) = crate::signing::verify_approval(required, &payload, &signature)
        {
            return Err(InvalidInput(format!(
                "{} does not sign for {actor} in {}: the policy requires the key {} ({why})",
                signer.label,
                env.name,
                fingerprint(required)
            ))
            .into());
        }
        approval.signature = Some(signature);
    }
    file.approvals.push(approval);
    let message = format!(
        "Approve release {} of {} for {}\n\nJustification: {}\nApproved by: {actor}\nExpires: {expires}{}\n\nRelease-Commit: {}\nRelease-Digest: {}\nEnvironment: {}\nProject: {}\nAction: approve\nApprover: {actor}\n",
        entry.label(),
        reg.project,
        env.name,
        justification,
        if signer.is_some() {
            "\nSigned: yes"
        } else {
            ""
        },
        entry.commit,
        entry.digest,
        env.name,
        reg.full_name(),
    );
    Ok(Step::Commit {
        edits: vec![Edit {
            path: path.clone(),
            content: Some(file.to_yaml().into_bytes()),
        }],
        message,
        result: Decided {
            summary: format!(
                "approved release {} of {} for {} until {expires}",
                entry.label(),
                reg.full_name(),
                env.name
            ),
            file: path,
            note,
        },
    })
}

/// Removes `order.actor`'s own approval of the release for the environment.
pub async fn revoke(gitops: &GitOps, order: &Order<'_>) -> crate::exit::Result<Done> {
    let author = Author::new(order.actor, order.now.as_second());
    let landed = gitops
        .transact(&author, order.deadline, async |tip| {
            decide_revoke(gitops, tip, order)
        })
        .await?;
    Ok(landed.result.done(landed.commit))
}

/// The revoke [`revoke`] writes, decided on `tip` (alone or in a batch).
pub fn decide_revoke(
    gitops: &GitOps,
    tip: &Snapshot<'_>,
    order: &Order<'_>,
) -> crate::exit::Result<Step<Decided>> {
    let actor = order.actor;
    let env_name = order.env;
    let reg = crate::gitops::find_register(gitops, tip, order.project)?;
    let entry = reg.resolve(tip, order.release_id)?;
    let path = layout::approvals_path(env_name, &reg.repository, &reg.project, &entry.commit);
    let Some(mut file) = load_approvals(tip, &path)? else {
        return Err(InvalidInput(format!(
            "no approvals of release {} of {} for {env_name}: nothing to revoke",
            entry.label(),
            reg.full_name()
        ))
        .into());
    };
    let before = file.approvals.len();
    file.approvals.retain(|a| a.approver != actor);
    if file.approvals.len() == before {
        return Err(InvalidInput(format!(
            "{actor} has not approved release {} of {} for {env_name}: nothing to revoke",
            entry.label(),
            reg.full_name()
        ))
        .into());
    }
    let message = format!(
        "Revoke approval of release {} of {} for {env_name}\n\nRevoked by: {actor}\n\nRelease-Commit: {}\nRelease-Digest: {}\nEnvironment: {env_name}\nProject: {}\nAction: revoke\nApprover: {actor}\n",
        entry.label(),
        reg.project,
        entry.commit,
        entry.digest,
        reg.full_name(),
    );
    Ok(Step::Commit {
        edits: vec![Edit {
            path: path.clone(),
            content: (!file.approvals.is_empty()).then(|| file.to_yaml().into_bytes()),
        }],
        message,
        result: Decided {
            summary: format!(
                "revoked {actor}'s approval of release {} of {} for {env_name}",
                entry.label(),
                reg.full_name()
            ),
            file: path,
            note: None,
        },
    })
}
