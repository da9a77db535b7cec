//! Phase 1, plan: what should be deployed. Resolve the release in the register, fetch its
//! metadata by digest (the registry must hold exactly the registered image), and evaluate
//! the environment's policy. Reads only; `--dry-run` stops after it.

use jiff::Timestamp;

use super::{Override, Request, Selector};
use crate::approvals;
use crate::exit::InvalidInput;
use crate::gitops::layout::{self, load_pointer};
use crate::gitops::register::{Entry, Register};
use crate::gitops::{GitOps, Snapshot};
use crate::pointer::{self, Pointer};
use crate::policy::{self, Decision, EnvName, Environment, Policy, Presence, TriggerFact};

/// One project's part of a plan.
#[derive(Debug, Clone)]
pub struct Item {
    pub env: EnvName,
    pub register: Register,
    pub target: Entry,
    pub pointer_path: String,
    pub current: Option<Pointer>,
    /// The register's entry for the current pointer's release, when it has one.
    pub current_entry: Option<Entry>,
    pub decisions: Vec<Decision>,
}

impl Item {
    #[must_use]
    pub fn project_name(&self) -> String {
        self.register.full_name()
    }
}

/// The environment `env` of `policy`, or an error listing the environments there are.
pub fn environment<'p>(policy: &'p Policy, env: &EnvName) -> Result<&'p Environment, InvalidInput> {
    policy.get(env).ok_or_else(|| {
        InvalidInput(format!(
            "{}: no environment {env}: expected one of {}",
            policy::FILE,
            policy
                .environments
                .iter()
                .map(|e| e.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))
    })
}

/// When the release with `commit` most recently arrived in the pointer at `path`, and
/// whether it runs there now. The current pointer's `deployed-at` answers without history;
/// otherwise the pointer's history is walked, newest first.
pub fn presence(
    tip: &Snapshot<'_>,
    env: &EnvName,
    path: &str,
    current: Option<&Pointer>,
    commit: &str,
) -> crate::exit::Result<Presence> {
    if let Some(p) = current.filter(|p| p.id.commit.as_str() == commit)
        && let Some(at) = p
            .annotations
            .get(pointer::ANN_DEPLOYED_AT)
            .and_then(|t| t.parse::<Timestamp>().ok())
    {
        return Ok(Presence {
            env: env.clone(),
            since: Some(at),
            running_now: true,
        });
    }
    let running_now = current.is_some_and(|p| p.id.commit.as_str() == commit);
    let mut since = None;
    // Walk back to the change that made the pointer name the release (newest such).
    for change in tip.history(path)? {
        let change = change?;
        let names = change
            .content
            .as_deref()
            .and_then(|b| pointer::parse(path, b).ok())
            .is_some_and(|p| p.id.commit.as_str() == commit);
        if names {
            // Keep going while older versions name it too: the arrival is the oldest of a run.
            since = Timestamp::from_second(change.time).ok();
            if running_now {
                continue;
            }
            break;
        } else if since.is_some() {
            break;
        }
    }
    Ok(Presence {
        env: env.clone(),
        since,
        running_now,
    })
}

/// The entry before the current one in the pointer's history (rollback's default target).
pub fn previous_release(
    tip: &Snapshot<'_>,
    path: &str,
    current: &Pointer,
    register: &Register,
) -> crate::exit::Result<Option<Entry>> {
    for change in tip.history(path)? {
        let change = change?;
        let Some(p) = change
            .content
            .as_deref()
            .and_then(|b| pointer::parse(path, b).ok())
        else {
            continue;
        };
        if p.id.commit != current.id.commit {
            return Ok(register.find_commit(&p.id.commit).cloned());
        }
    }
    Ok(None)
}

/// Everything plan needs besides the repository.
pub struct Context<'a> {
    pub gitops: &'a GitOps,
    pub now: Timestamp,
    pub overrides: &'a [Override],
    /// Verifies an approval signature: (public key, payload, signature).
    pub verify: approvals::SignatureCheck<'a>,
}

/// Plans one request against the tip.
pub fn plan_item(
    cx: &Context<'_>,
    tip: &Snapshot<'_>,
    policy: &Policy,
    request: &Request,
) -> crate::exit::Result<Item> {
    let env = environment(policy, &request.env)?;
    let register = crate::gitops::find_register(cx.gitops, tip, &request.project)?;
    let pointer_path = layout::pointer_path(&env.name, &register.repository, &register.project);
    let current = load_pointer(tip, &pointer_path)?;
    let current_entry = current
        .as_ref()
        .and_then(|p| register.find_commit(&p.id.commit).cloned());
    let target = match &request.selector {
        Selector::Id(id) => register.resolve(id)?.clone(),
        Selector::RunningIn(from) => {
            environment(policy, from)?;
            let from_path = layout::pointer_path(from, &register.repository, &register.project);
            let running = load_pointer(tip, &from_path)?.ok_or_else(|| {
                InvalidInput(format!(
                    "nothing of {} runs in {from}: no {from_path}",
                    register.full_name()
                ))
            })?;
            register
                .find_commit(&running.id.commit)
                .cloned()
                .ok_or_else(|| {
                    InvalidInput(format!(
                        "{from_path} names commit {}, which is not registered for {}",
                        running.id.commit,
                        register.full_name()
                    ))
                })?
        }
        Selector::Previous => {
            let cur = current.as_ref().ok_or_else(|| {
                InvalidInput(format!(
                    "nothing to roll back: {} does not run in {}",
                    register.full_name(),
                    env.name
                ))
            })?;
            previous_release(tip, &pointer_path, cur, &register)?.ok_or_else(|| {
                InvalidInput(format!(
                    "nothing to roll back to: {} has had no other release in {} ({pointer_path} history)",
                    register.full_name(),
                    env.name
                ))
            })?
        }
    };
    let triggers: Vec<TriggerFact> = target
        .triggers
        .iter()
        .map(|t| TriggerFact {
            kind: t.kind,
            branch: t.branch.clone(),
        })
        .collect();
    let mut presences = Vec::new();
    for req in &env.requires {
        let path = layout::pointer_path(req, &register.repository, &register.project);
        let cur = load_pointer(tip, &path)?;
        presences.push(presence(
            tip,
            req,
            &path,
            cur.as_ref(),
            target.commit.as_str(),
        )?);
    }
    let approval_file = if env.requires_approval {
        let path = layout::approvals_path(
            &env.name,
            &register.repository,
            &register.project,
            &target.commit,
        );
        layout::load_approvals(tip, &path)?
    } else {
        None
    };
    let approval_facts = approvals::facts(
        approval_file.as_ref(),
        env,
        &target.digest,
        cx.now,
        cx.verify,
    );
    let mut decisions = policy::evaluate(
        env,
        &policy::Facts {
            triggers: &triggers,
            presence: &presences,
            approvals: &approval_facts,
            now: cx.now,
        },
    );
    policy::apply_overrides(&mut decisions, &Override::rules(cx.overrides));
    Ok(Item {
        env: env.name.clone(),
        register,
        target,
        pointer_path,
        current,
        current_entry,
        decisions,
    })
}
