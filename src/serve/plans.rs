//! Registrations, approvals and revokes as [`Plan`]s of the writer: batched with the deploys
//! queued next to them, each decided on the commits of the requests before it (the same
//! decision the CLI runs in its own transaction), each its own commit or its own refusal.
//!
//! Invariants: the caller's permission (`release_creators`; four eyes for an approval) is
//! judged on the snapshot the batch has reached, the one the decision reads; a registration
//! arrives verified (the registry was read before it was queued), so a plan never touches the
//! network.

use http::StatusCode;
use serde_json::json;

use super::auth::Principal;
use super::http::Reply;
use super::routes::{Clock, err, forbidden};
use super::writer::{Decision, Plan};
use crate::deploy::approve::{self, Decided};
use crate::gitops::register::{Entry, Register};
use crate::gitops::{GitOps, Landed, ProjectRef, ReleaseSelector, Snapshot, Step};
use crate::policy::EnvName;
use crate::registration::Verified;

/// Keeps a decision's result for the reply and hands the writer the step without it.
fn keep<T>(slot: &mut Option<Result<T, Reply>>, step: Step<T>) -> Step<()> {
    match step {
        Step::Done(result) => {
            *slot = Some(Ok(result));
            Step::Done(())
        }
        Step::Commit {
            edits,
            message,
            result,
        } => {
            *slot = Some(Ok(result));
            Step::Commit {
                edits,
                message,
                result: (),
            }
        }
    }
}

/// The last decision's result, once the batch ended as `landed`.
fn decided<T>(
    landed: crate::exit::Result<Landed<()>>,
    decided: Option<Result<T, Reply>>,
) -> Result<(T, Option<git2::Oid>), Reply> {
    let landed = landed.map_err(|e| err(&e))?;
    match decided {
        Some(Ok(result)) => Ok((result, landed.commit)),
        Some(Err(refusal)) => Err(refusal),
        None => Err(Reply::internal(
            "the writer answered a request it never decided",
        )),
    }
}

/// `POST /v1/releases` once its image is verified: the register write.
pub(super) struct RegisterPlan {
    verified: Verified,
    who: Principal,
    clock: Clock,
    decided: Option<Result<(Register, Entry), Reply>>,
}

impl RegisterPlan {
    pub(super) fn new(verified: Verified, who: Principal, clock: Clock) -> Self {
        Self {
            verified,
            who,
            clock,
            decided: None,
        }
    }
}

impl Plan for RegisterPlan {
    fn caller(&self) -> (&Principal, &Clock) {
        (&self.who, &self.clock)
    }

    fn decide<'a>(&'a mut self, g: &'a GitOps, tip: &'a Snapshot<'_>) -> Decision<'a> {
        Box::pin(async move {
            self.decided = None;
            let policy = crate::gitops::layout::load_policy(g, tip)?;
            if !self.who.allowed(policy.release_creators.as_deref()) {
                self.decided = Some(Err(forbidden(
                    &self.who,
                    "release creation",
                    "release_creators",
                )));
                return Ok(Step::Done(()));
            }
            let step = crate::registration::decide(&self.verified, tip)?;
            Ok(keep(&mut self.decided, step))
        })
    }

    fn reply(self: Box<Self>, landed: crate::exit::Result<Landed<()>>) -> Reply {
        let ((register, entry), commit) = match decided(landed, self.decided) {
            Ok(d) => d,
            Err(reply) => return reply,
        };
        let mut v = match serde_json::to_value(&entry) {
            Ok(v) => v,
            Err(e) => return Reply::internal(&e.to_string()),
        };
        v["repository"] = register.repository.to_string().into();
        v["project"] = register.project.to_string().into();
        v["registration_commit"] = commit.map(|c| c.to_string()).into();
        let status = if commit.is_some() {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        };
        Reply { status, body: v }
    }
}

/// `POST /v1/approvals` (with a justification) or `POST /v1/revocations` (without).
pub(super) struct ApprovalPlan {
    env: EnvName,
    project: ProjectRef,
    id: ReleaseSelector,
    /// `None`: a revoke.
    justification: Option<String>,
    who: Principal,
    clock: Clock,
    decided: Option<Result<Decided, Reply>>,
}

impl ApprovalPlan {
    pub(super) fn new(
        target: (EnvName, ProjectRef, ReleaseSelector),
        justification: Option<String>,
        who: Principal,
        clock: Clock,
    ) -> Self {
        let (env, project, id) = target;
        Self {
            env,
            project,
            id,
            justification,
            who,
            clock,
            decided: None,
        }
    }

    /// Four eyes: whoever triggered the release does not approve it.
    fn self_approval(&self, g: &GitOps, tip: &Snapshot<'_>) -> crate::exit::Result<Option<Reply>> {
        let reg = crate::gitops::find_register(g, tip, &self.project)?;
        let entry = reg.resolve(tip, &self.id)?;
        let by_self = entry
            .triggers
            .iter()
            .any(|t| t.triggered_by.as_deref() == Some(self.who.actor.as_str()));
        Ok(by_self.then(|| {
            Reply::mismatch(
                StatusCode::FORBIDDEN,
                "self_approval",
                &format!(
                    "approval of release {} of {} for {}",
                    entry.label(),
                    reg.full_name(),
                    self.env
                ),
                "an approver other than whoever triggered the release",
                &crate::text::excerpt(&self.who.actor),
            )
        }))
    }
}

impl Plan for ApprovalPlan {
    fn caller(&self) -> (&Principal, &Clock) {
        (&self.who, &self.clock)
    }

    fn decide<'a>(&'a mut self, g: &'a GitOps, tip: &'a Snapshot<'_>) -> Decision<'a> {
        Box::pin(async move {
            self.decided = None;
            let order = approve::Order {
                env: &self.env,
                project: &self.project,
                release_id: &self.id,
                actor: &self.who.actor,
                now: self.clock.now,
                deadline: self.clock.deadline,
            };
            let step = match &self.justification {
                Some(justification) => {
                    if let Some(refusal) = self.self_approval(g, tip)? {
                        self.decided = Some(Err(refusal));
                        return Ok(Step::Done(()));
                    }
                    approve::decide_approve(g, tip, &order, justification, None)?
                }
                None => approve::decide_revoke(g, tip, &order)?,
            };
            Ok(keep(&mut self.decided, step))
        })
    }

    fn reply(self: Box<Self>, landed: crate::exit::Result<Landed<()>>) -> Reply {
        match decided(landed, self.decided) {
            Ok((done, commit)) => Reply::ok(json!({
                "result": done.summary,
                "file": done.file,
                "commit": commit.map(|c| c.to_string()),
                "note": done.note,
            })),
            Err(reply) => reply,
        }
    }
}
