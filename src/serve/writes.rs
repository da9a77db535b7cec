//! The write endpoints: registration, deploy, rollback, promote, unblock, approve and revoke.
//! Each parses its body strictly, then queues a [`Plan`] the writer batches with its
//! neighbours (deploy-like ones here, registrations and approvals in [`super::plans`]): the
//! caller's permission is judged on the policy of the snapshot the batch has reached, then the
//! same decision the CLI makes runs there as the caller (no fetch of its own).

use std::sync::Arc;

use http::StatusCode;
use serde::Deserialize;
use serde_json::json;

use super::State;
use super::auth::Principal;
use super::http::{Reply, parse_json};
use super::plans::{ApprovalPlan, RegisterPlan};
use super::routes::{Clock, bad, env_name, err, forbidden, parse, project, release_id};
use super::writer::{Decision, Plan};
use crate::deploy::run::{self, Ended, Order, Registry, Report, Run};
use crate::deploy::{Action, Override, Request, Selector};
use crate::gitops::{GitOps, Landed, Snapshot, Step, layout};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    reference: String,
    digest: String,
}

/// Registers an image already pushed, for a principal `release_creators` admits.
pub(super) async fn create(
    state: &Arc<State>,
    body: &[u8],
    who: Principal,
) -> Result<Reply, Reply> {
    let b: CreateBody = parse_json(body)?;
    let image: crate::oci::ImageRef = parse(
        "reference",
        &b.reference,
        "an image reference (host/path:tag or oci:PATH:TAG)",
    )?;
    let digest: crate::digest::Digest =
        parse("digest", &b.digest, "a digest sha256:<64 hex digits>")?;
    if image.digest().is_some_and(|d| *d != digest) {
        return Err(bad(
            "reference",
            &format!("no digest or {digest}"),
            &b.reference,
        ));
    }
    let Some(base) = state.settings.registry.clone() else {
        return Err(Reply::mismatch(
            StatusCode::CONFLICT,
            "not_configured",
            "the server's registry",
            "--registry or RELEASECTL_REGISTRY set",
            "none",
        ));
    };
    // The registry is read before the write is queued: a slow registry never holds a batch.
    let clock = Clock::now(&state.settings);
    let mut store = state.settings.store.clone();
    store.deadline = clock.deadline;
    let verified = crate::registration::verify(&crate::registration::Pushed {
        image: &image,
        digest: &digest,
        base: &base,
        actor: &who.actor,
        now: clock.now,
        store: &store,
        limits: &state.settings.limits,
    })
    .await
    .map_err(|e| err(&e))?;
    let plan = RegisterPlan::new(verified, who, clock);
    Ok(state.writer.plan(Box::new(plan)).await)
}

/// The policy-related fields every deploy-like request may carry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct GroupItem {
    project: String,
    release_id: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DeployBody {
    environment: String,
    #[serde(default)]
    project: Option<String>,
    #[serde(default)]
    release_id: Option<String>,
    #[serde(default)]
    group: Vec<GroupItem>,
    #[serde(default)]
    dry_run: bool,
    #[serde(default)]
    overrides: Vec<String>,
    #[serde(default)]
    reason: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RollbackBody {
    environment: String,
    project: String,
    #[serde(default)]
    to: Option<String>,
    #[serde(default)]
    block: bool,
    #[serde(default)]
    dry_run: bool,
    #[serde(default)]
    overrides: Vec<String>,
    #[serde(default)]
    reason: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PromoteBody {
    project: String,
    from: String,
    to: String,
    #[serde(default)]
    dry_run: bool,
    #[serde(default)]
    overrides: Vec<String>,
    #[serde(default)]
    reason: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TargetBody {
    environment: String,
    project: String,
    release_id: String,
    #[serde(default)]
    justification: Option<String>,
}

fn overrides(
    list: &[String],
    reason: Option<String>,
    dry_run: bool,
    order: Order,
) -> Result<Order, Reply> {
    let parsed = list
        .iter()
        .map(|o| {
            o.parse::<Override>()
                .map_err(|e| bad("overrides", "a policy rule, blocked or hold", &e))
        })
        .collect::<Result<Vec<_>, _>>()?;
    order
        .with_flags(parsed, reason, dry_run)
        .map_err(|e| bad("reason", "a reason with every override", &e.0))
}

pub(super) async fn deploy(
    state: &Arc<State>,
    body: &[u8],
    who: Principal,
) -> Result<Reply, Reply> {
    let b: DeployBody = parse_json(body)?;
    let env = env_name(&b.environment)?;
    let mut requests = Vec::new();
    match (&b.project, &b.release_id, b.group.is_empty()) {
        (Some(p), Some(id), true) => requests.push((p.clone(), id.clone())),
        (None, None, false) => requests.extend(
            b.group
                .iter()
                .map(|g| (g.project.clone(), g.release_id.clone())),
        ),
        _ => {
            return Err(bad(
                "request body",
                "project and release_id, or a non-empty group (not both)",
                "neither or both",
            ));
        }
    }
    let requests = requests
        .iter()
        .map(|(p, id)| {
            Ok(Request {
                env: env.clone(),
                project: project(p)?,
                selector: Selector::Id(release_id(id)?),
            })
        })
        .collect::<Result<Vec<_>, Reply>>()?;
    let action = if requests.len() == 1 {
        Action::Deploy
    } else {
        Action::Group
    };
    let order = overrides(
        &b.overrides,
        b.reason,
        b.dry_run,
        Order::new(requests, action),
    )?;
    drive(state, order, who).await
}

pub(super) async fn rollback(
    state: &Arc<State>,
    body: &[u8],
    who: Principal,
) -> Result<Reply, Reply> {
    let b: RollbackBody = parse_json(body)?;
    let request = Request {
        env: env_name(&b.environment)?,
        project: project(&b.project)?,
        selector: b
            .to
            .as_deref()
            .map(release_id)
            .transpose()?
            .map_or(Selector::Previous, Selector::Id),
    };
    let order = overrides(
        &b.overrides,
        b.reason,
        b.dry_run,
        Order::new(vec![request], Action::Rollback { block: b.block }),
    )?;
    drive(state, order, who).await
}

pub(super) async fn promote(
    state: &Arc<State>,
    body: &[u8],
    who: Principal,
) -> Result<Reply, Reply> {
    let b: PromoteBody = parse_json(body)?;
    let from = env_name(&b.from)?;
    let request = Request {
        env: env_name(&b.to)?,
        project: project(&b.project)?,
        selector: Selector::RunningIn(from.clone()),
    };
    let order = overrides(
        &b.overrides,
        b.reason,
        b.dry_run,
        Order::new(vec![request], Action::Promote { from }),
    )?;
    drive(state, order, who).await
}

pub(super) async fn unblock(
    state: &Arc<State>,
    body: &[u8],
    who: Principal,
) -> Result<Reply, Reply> {
    let b: TargetBody = parse_json(body)?;
    if b.justification.is_some() {
        return Err(bad(
            "justification",
            "no justification (an unblock takes none)",
            "one",
        ));
    }
    let request = Request {
        env: env_name(&b.environment)?,
        project: project(&b.project)?,
        selector: Selector::Id(release_id(&b.release_id)?),
    };
    drive(state, Order::new(vec![request], Action::Unblock), who).await
}

/// Queues a deploy-like order for `who` on the writer, batched with its neighbours.
async fn drive(state: &Arc<State>, order: Order, who: Principal) -> Result<Reply, Reply> {
    let clock = Clock::now(&state.settings);
    let plan = DeployPlan {
        state: Arc::clone(state),
        order,
        who,
        clock,
        first_seen: None,
        decided: None,
    };
    Ok(state.writer.plan(Box::new(plan)).await)
}

/// A deploy-like order as the writer decides it: the caller's permission (`deployers` of each
/// environment) and the order itself are judged on the same snapshot, the one the batch has
/// reached.
struct DeployPlan {
    state: Arc<State>,
    order: Order,
    who: Principal,
    clock: Clock,
    /// The pointers the first decision read (a retry on a moved pointer is a conflict).
    first_seen: Option<run::Seen>,
    /// The last decision: a report, or a refusal of the caller.
    decided: Option<Result<Report, Reply>>,
}

impl Plan for DeployPlan {
    fn caller(&self) -> (&Principal, &Clock) {
        (&self.who, &self.clock)
    }

    fn decide<'a>(&'a mut self, g: &'a GitOps, tip: &'a Snapshot<'_>) -> Decision<'a> {
        Box::pin(async move {
            self.decided = None;
            let policy = layout::load_policy(g, tip)?;
            for r in &self.order.requests {
                if let Some(env) = policy.get(&r.env)
                    && !self.who.allowed(env.deployers.as_deref())
                {
                    self.decided = Some(Err(forbidden(
                        &self.who,
                        &format!("deploy to {}", r.env),
                        &format!("environments.{}.deployers", r.env),
                    )));
                    return Ok(Step::Done(()));
                }
            }
            let s = &self.state.settings;
            let mut store = s.store.clone();
            store.deadline = self.clock.deadline;
            let context = Run {
                gitops: g,
                actor: &self.who.actor,
                now: self.clock.now,
                deadline: self.clock.deadline,
                registry: Registry {
                    default: s.registry.as_ref(),
                    store: &store,
                    limits: &s.limits,
                },
            };
            let step = run::attempt(&self.order, &context, tip, &mut self.first_seen).await?;
            Ok(match step {
                Step::Done(report) => {
                    self.decided = Some(Ok(report));
                    Step::Done(())
                }
                Step::Commit {
                    edits,
                    message,
                    result,
                } => {
                    self.decided = Some(Ok(result));
                    Step::Commit {
                        edits,
                        message,
                        result: (),
                    }
                }
            })
        })
    }

    fn reply(self: Box<Self>, landed: crate::exit::Result<Landed<()>>) -> Reply {
        let landed = match landed {
            Ok(l) => l,
            Err(e) => return err(&e),
        };
        let mut report = match self.decided {
            Some(Ok(report)) => report,
            Some(Err(refusal)) => return refusal,
            None => return Reply::internal("the writer answered a request it never decided"),
        };
        report.commit = landed.commit;
        let mut body = crate::deploy::view::json(&report);
        match &report.ended {
            Ended::Refused(reasons) => {
                body["error"] = json!({
                    "status": 422,
                    "kind": "refused",
                    "message": format!("refused by policy: {}", reasons.join("; ")),
                });
                Reply {
                    status: StatusCode::UNPROCESSABLE_ENTITY,
                    body,
                }
            }
            Ended::DryRun => {
                body["would_refuse"] = crate::deploy::view::would_refuse(&report).into();
                Reply::ok(body)
            }
            _ => Reply::ok(body),
        }
    }
}

pub(super) async fn approve(
    state: &Arc<State>,
    body: &[u8],
    who: Principal,
    revoke: bool,
) -> Result<Reply, Reply> {
    let b: TargetBody = parse_json(body)?;
    let env = env_name(&b.environment)?;
    let project = project(&b.project)?;
    let id = release_id(&b.release_id)?;
    let justification = match (revoke, b.justification) {
        (false, Some(j)) if !j.trim().is_empty() => j,
        (false, _) => {
            return Err(bad(
                "justification",
                "why this release may go there",
                "none",
            ));
        }
        (true, Some(_)) => {
            return Err(bad(
                "justification",
                "no justification (a revoke takes none)",
                "one",
            ));
        }
        (true, None) => String::new(),
    };
    let plan = ApprovalPlan::new(
        (env, project, id),
        (!revoke).then_some(justification),
        who,
        Clock::now(&state.settings),
    );
    Ok(state.writer.plan(Box::new(plan)).await)
}
