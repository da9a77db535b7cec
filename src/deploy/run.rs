//! The driver of `deploy`, `promote`, `rollback` and `unblock`: inside one GitOps
//! transaction, on every attempt, expand `--auto`, plan every request, guard a rollback
//! against a pointer that moved, check the registry holds each target as registered, judge,
//! and write the pointers.
//!
//! Invariants: every attempt starts from a fresh tip; a refusal, a dry run or a no-op is a
//! [`Report`] with every decision and creates no commit object; a rollback decided against
//! one state of a pointer never lands on another; the registry is read before anything is
//! written, so a pointer never names an image the registry does not hold.

use std::time::Instant;

use git2::Oid;
use jiff::Timestamp;

use super::eligibility::{self, Verdict};
use super::execute::{self, Stamp};
use super::plan::{self, Context, Item};
use super::{Action, Conflict, Override, Request};
use crate::archive::Limits;
use crate::exit::InvalidInput;
use crate::format::Expected;
use crate::gitops::layout;
use crate::gitops::register::Entry;
use crate::gitops::{Author, GitOps, Snapshot, Step};
use crate::oci::{RegistryBase, Store, StoreOptions};
use crate::policy::Policy;

/// What a person asked for: the requests, the action and its flags.
#[derive(Debug, Clone)]
pub struct Order {
    pub requests: Vec<Request>,
    pub action: Action,
    pub overrides: Vec<Override>,
    pub reason: Option<String>,
    pub dry_run: bool,
    /// Who the commit message names as acting, when not the actor: `releasectl (health check
    /// failed: …)` for the rollback `on_failure: rollback` makes (the author stays the actor).
    pub by: Option<String>,
}

impl Order {
    /// An order without overrides or dry run.
    #[must_use]
    pub fn new(requests: Vec<Request>, action: Action) -> Self {
        Self {
            requests,
            action,
            overrides: Vec::new(),
            reason: None,
            dry_run: false,
            by: None,
        }
    }

    /// With overrides (which need a reason: it is recorded in the commit) and dry run.
    pub fn with_flags(
        mut self,
        overrides: Vec<Override>,
        reason: Option<String>,
        dry_run: bool,
    ) -> Result<Self, InvalidInput> {
        if !overrides.is_empty() && reason.as_deref().is_none_or(|r| r.trim().is_empty()) {
            return Err(InvalidInput(
                "--override needs --reason TEXT: the reason is recorded in the commit".into(),
            ));
        }
        self.overrides = overrides;
        self.reason = reason;
        self.dry_run = dry_run;
        Ok(self)
    }
}

/// Where release images are read from to check a target before it is deployed.
pub struct Registry<'a> {
    /// The registry of a project whose current pointer names none.
    pub default: Option<&'a RegistryBase>,
    pub store: &'a StoreOptions,
    pub limits: &'a Limits,
}

/// The run's context: the repository, who acts, the clock and the deadline.
pub struct Run<'a> {
    pub gitops: &'a GitOps,
    pub actor: &'a str,
    pub now: Timestamp,
    pub deadline: Instant,
    pub registry: Registry<'a>,
}

/// How an order ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ended {
    /// `--dry-run`: the plan and its decisions, nothing written.
    DryRun,
    /// Policy (or eligibility) refused: one line per refused item.
    Refused(Vec<String>),
    /// `--auto`: no `auto_deploy` environment admits the release.
    NoneAdmits,
    /// `unblock` of a release that is not blocked.
    NotBlocked,
    AlreadyDeployed,
    /// The pointers were written in one commit ([`Report::commit`]).
    Landed,
}

/// The decisions of an order and how it ended.
#[derive(Debug)]
pub struct Report {
    pub action: Action,
    pub judged: Vec<(Item, Verdict)>,
    pub ended: Ended,
    /// The commit that landed, if one did.
    pub commit: Option<Oid>,
}

impl Report {
    /// One line saying how the order ended.
    #[must_use]
    pub fn result(&self) -> &'static str {
        match &self.ended {
            Ended::DryRun => "dry run: nothing written",
            Ended::Refused(_) => "refused: nothing written",
            Ended::NoneAdmits => "no environment admits the release: nothing written",
            Ended::NotBlocked => "not blocked: nothing to do",
            Ended::AlreadyDeployed => "already deployed: nothing to do",
            Ended::Landed => match self.action {
                Action::Unblock => "unblocked",
                Action::Rollback { .. } => "rolled back",
                Action::Promote { .. } => "promoted",
                _ => "deployed",
            },
        }
    }
}

/// `--auto` becomes one request per `auto_deploy` environment; other actions keep theirs.
fn expand(order: &Order, policy: &Policy) -> Result<Vec<Request>, InvalidInput> {
    if order.action != Action::Auto {
        return Ok(order.requests.clone());
    }
    let expanded: Vec<Request> = policy
        .environments
        .iter()
        .filter(|e| e.auto_deploy)
        .map(|e| Request {
            env: e.name.clone(),
            ..order.requests[0].clone()
        })
        .collect();
    if expanded.is_empty() {
        return Err(InvalidInput(format!(
            "{}: no environment has auto_deploy: true",
            layout::POLICY
        )));
    }
    Ok(expanded)
}

/// Checks that the registry holds each target exactly as registered (plan: "fetch its
/// metadata by digest").
async fn check_registry(items: &[Item], registry: &Registry<'_>) -> crate::exit::Result<()> {
    for i in items {
        let base = i
            .current
            .as_ref()
            .and_then(|p| p.registry.as_ref())
            .or(registry.default)
            .ok_or_else(|| {
                InvalidInput(
                    "no spec.registry and no RELEASECTL_REGISTRY: expected one of them to name the registry"
                        .into(),
                )
            })?;
        let id = crate::ids::ReleaseId {
            repository: i.register.repository.clone(),
            project: i.register.project.clone(),
            commit: i.target.commit.clone(),
        };
        let image = base.image(&id, Some(i.target.digest.clone()));
        let store = Store::open(&image, registry.store)?;
        crate::release::fetch_head(&store, &image, &Expected::from(&id), registry.limits).await?;
    }
    Ok(())
}

/// Phase 2 for every item: `unblock` proceeds only for a blocked release; everything else
/// is judged by eligibility.
fn judge(
    items: Vec<Item>,
    policy: &Policy,
    order: &Order,
) -> crate::exit::Result<Vec<(Item, Verdict)>> {
    items
        .into_iter()
        .map(|i| {
            let env = plan::environment(policy, &i.env)?;
            let v = if order.action == Action::Unblock {
                if i.current
                    .as_ref()
                    .is_some_and(|p| p.blocked().iter().any(|c| c == i.target.commit.as_str()))
                {
                    Verdict::Proceed
                } else {
                    Verdict::AlreadyDeployed
                }
            } else if order.action == Action::Auto
                && let Some(cur) = i
                    .current_entry
                    .as_ref()
                    .filter(|c| c.number > i.target.number)
            {
                // `--auto` follows the newest release; a late pipeline never downgrades.
                Verdict::Skipped(format!("release {} already runs in {}", cur.number, i.env))
            } else {
                eligibility::judge(&i, env, &order.overrides)
            };
            Ok((i, v))
        })
        .collect()
}

/// The pointers a plan read (path and bytes): each item's own and, for `promote`, the one
/// it promotes from.
pub(crate) type Seen = Vec<(String, Option<Vec<u8>>)>;

fn read_pointers(order: &Order, items: &[Item], tip: &Snapshot<'_>) -> crate::exit::Result<Seen> {
    let mut paths: Vec<String> = Vec::new();
    for i in items {
        paths.push(i.pointer_path.clone());
        if let Action::Promote { from } = &order.action {
            paths.push(layout::pointer_path(
                from,
                &i.register.repository,
                &i.register.project,
            ));
        }
    }
    paths
        .into_iter()
        .map(|p| {
            let bytes = tip.read(&p)?;
            Ok((p, bytes))
        })
        .collect()
}

/// `42 (v1.2.3)` for the release a pointer's bytes name, `none` without a pointer.
fn pointer_label(item: &Item, tip: &Snapshot<'_>, path: &str, bytes: Option<&[u8]>) -> String {
    let Some(bytes) = bytes else {
        return "none".into();
    };
    match crate::pointer::parse(path, bytes) {
        Ok(p) => item
            .register
            .find_commit(tip, &p.id.commit)
            .ok()
            .flatten()
            .as_ref()
            .map_or_else(|| format!("commit {}", p.id.commit), Entry::label),
        Err(_) => "(unreadable pointer)".into(),
    }
}

/// After a lost race: every pointer the first plan read must be as it was, or the explicit
/// order ends in a [`Conflict`] naming who moved it. A pointer that now names exactly what
/// this order would write is no conflict (eligibility will find nothing to do).
fn check_unchanged(
    order: &Order,
    items: &[Item],
    first: &Seen,
    seen: &Seen,
    tip: &Snapshot<'_>,
) -> crate::exit::Result<()> {
    for (path, now) in seen {
        let Some((_, before)) = first.iter().find(|(p, _)| p == path) else {
            continue;
        };
        if before == now {
            continue;
        }
        let Some(item) = items
            .iter()
            .find(|i| i.pointer_path == *path)
            .or_else(|| items.first())
        else {
            continue;
        };
        let done = order.action != Action::Unblock
            && item.pointer_path == *path
            && item.current.as_ref().is_some_and(|p| {
                p.id.commit == item.target.commit && p.digest.as_ref() == Some(&item.target.digest)
            });
        if done {
            continue;
        }
        let change = tip.history(path)?.next().transpose()?;
        let (commit, author) = change.map_or_else(
            || ("(unknown)".to_owned(), "(unknown)".to_owned()),
            |c| (c.commit.to_string(), crate::text::excerpt(&c.author)),
        );
        return Err(Conflict {
            action: order.action.name(),
            path: path.clone(),
            planned: pointer_label(item, tip, path, before.as_deref()),
            found: pointer_label(item, tip, path, now.as_deref()),
            commit,
            author,
        }
        .into());
    }
    Ok(())
}

/// A group names each project once: a second `P=ID` would silently win over the first.
fn once_each(items: &[Item]) -> Result<(), InvalidInput> {
    for (n, i) in items.iter().enumerate() {
        if items[..n].iter().any(|j| j.pointer_path == i.pointer_path) {
            return Err(InvalidInput(format!(
                "deploy {}: project {} is named more than once; name each project once",
                i.env,
                i.project_name()
            )));
        }
    }
    Ok(())
}

/// A rollback never goes forward: a target newer than the running release is a deploy.
fn not_forward(i: &Item) -> Result<(), InvalidInput> {
    match &i.current_entry {
        Some(cur) if i.target.number > cur.number => Err(InvalidInput(format!(
            "rollback of {} in {} to release {}: it is newer than release {} running there; that is a deploy: run `releasectl deploy {} {} {}`",
            i.project_name(),
            i.env,
            i.target.label(),
            cur.label(),
            i.env,
            i.project_name(),
            i.target.number
        ))),
        _ => Ok(()),
    }
}

/// One attempt: plan, judge and decide what to write at `tip` (the decision [`run`] and the
/// server's batched writer make on each tip they reach).
pub(crate) async fn attempt(
    order: &Order,
    run: &Run<'_>,
    tip: &Snapshot<'_>,
    first_seen: &mut Option<Seen>,
) -> crate::exit::Result<Step<Report>> {
    let policy = layout::load_policy(run.gitops, tip)?;
    let verify = crate::signing::verify_approval;
    let cx = Context {
        gitops: run.gitops,
        now: run.now,
        overrides: &order.overrides,
        rollback: matches!(order.action, Action::Rollback { .. }),
        actor: Some(run.actor),
        verify: &verify,
    };
    // Phase 1: plan.
    let mut items = expand(order, &policy)?
        .iter()
        .map(|r| plan::plan_item(&cx, tip, &policy, r))
        .collect::<crate::exit::Result<Vec<Item>>>()?;
    if matches!(order.action, Action::Rollback { .. }) {
        items.iter().try_for_each(not_forward)?;
    }
    if order.action == Action::Group {
        once_each(&items)?;
    }
    if order.action == Action::Unblock {
        // Unblocking changes no release: no deploy policy is judged, none is shown.
        for i in &mut items {
            i.decisions.clear();
        }
    }
    // Each write is a compare-and-swap on the pointers its first plan read.
    let seen = read_pointers(order, &items, tip)?;
    match first_seen {
        None => *first_seen = Some(seen),
        Some(first) if order.action != Action::Auto => {
            check_unchanged(order, &items, first, &seen, tip)?;
        }
        Some(_) => {}
    }
    if order.action != Action::Unblock {
        check_registry(&items, &run.registry).await?;
    }
    // Phase 2: eligibility.
    let judged = judge(items, &policy, order)?;
    let report = |judged, ended| Report {
        action: order.action.clone(),
        judged,
        ended,
        commit: None,
    };
    if order.dry_run {
        return Ok(Step::Done(report(judged, Ended::DryRun)));
    }
    let refused: Vec<String> = judged
        .iter()
        .filter_map(|(i, v)| match v {
            Verdict::Refused(r) => Some(format!(
                "{} in {}: {}",
                i.project_name(),
                i.env,
                r.join("; ")
            )),
            _ => None,
        })
        .collect();
    if !refused.is_empty() && order.action != Action::Auto {
        return Ok(Step::Done(report(judged, Ended::Refused(refused))));
    }
    let go: Vec<&Item> = judged
        .iter()
        .filter(|(_, v)| *v == Verdict::Proceed)
        .map(|(i, _)| i)
        .collect();
    if go.is_empty() {
        let ended = if order.action == Action::Auto && !refused.is_empty() {
            Ended::NoneAdmits
        } else if order.action == Action::Unblock {
            Ended::NotBlocked
        } else {
            Ended::AlreadyDeployed
        };
        return Ok(Step::Done(report(judged, ended)));
    }
    // Phase 3: execute.
    let stamp = Stamp {
        actor: order.by.as_deref().unwrap_or(run.actor),
        now: run.now,
        overrides: &order.overrides,
        reason: order.reason.as_deref(),
    };
    let effective = if order.action == Action::Auto && go.len() == 1 {
        Action::Auto
    } else {
        order.action.clone()
    };
    let edits = execute::edits(&go, &effective, &stamp);
    let message = execute::message(&go, &effective, &stamp);
    Ok(Step::Commit {
        edits,
        message,
        result: report(judged, Ended::Landed),
    })
}

/// Runs `order` until it lands, is refused, or has nothing to do.
pub async fn run(order: &Order, run: &Run<'_>) -> crate::exit::Result<Report> {
    let author = Author::new(run.actor, run.now.as_second());
    let mut first_seen = None;
    let landed = run
        .gitops
        .transact(&author, run.deadline, async |tip| {
            attempt(order, run, tip, &mut first_seen).await
        })
        .await?;
    let mut report = landed.result;
    report.commit = landed.commit;
    Ok(report)
}
