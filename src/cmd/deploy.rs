//! `deploy`, `promote`, `rollback`, `unblock`: the driver around plan → eligibility →
//! execute (DESIGN.md §7). Every attempt starts from a fresh fetch; a lost push race runs
//! all three phases again on the new tip. A refusal exits 4 with every failing decision and
//! creates no commit object.

use std::io::Write;

use serde::Serialize;

use crate::cli::{DeployArgs, PolicyFlags, PromoteArgs, RollbackArgs, UnblockArgs};
use crate::deploy::eligibility::{self, Verdict};
use crate::deploy::execute::{self, Stamp};
use crate::deploy::plan::{self, Context, Item};
use crate::deploy::{Action, Request, Selector};
use crate::exit::InvalidInput;
use crate::format::Expected;
use crate::gitops::{GitError, PushOutcome};
use crate::oci::Store;
use crate::policy::{self, Decision, EnvName};
use crate::settings::{Output, Settings};

/// A deploy that policy (or eligibility) refused: exit 4.
#[derive(Debug, thiserror::Error)]
#[error("refused by policy: {}", .reasons.join("; "))]
pub struct Refused {
    pub reasons: Vec<String>,
}

impl crate::exit::Classify for Refused {
    fn exit(&self) -> crate::exit::Exit {
        crate::exit::Exit::Policy
    }
}

const MAX_ATTEMPTS: u32 = 20;

fn env_name(s: &str) -> Result<EnvName, InvalidInput> {
    s.parse().map_err(InvalidInput)
}

fn check_overrides(flags: &PolicyFlags) -> Result<(), InvalidInput> {
    for o in &flags.overrides {
        if !policy::RULES.contains(&o.as_str()) && o != "blocked" {
            return Err(InvalidInput(format!(
                "--override {o}: expected one of {}, blocked",
                policy::RULES.join(", ")
            )));
        }
    }
    if !flags.overrides.is_empty() && flags.reason.as_deref().is_none_or(|r| r.trim().is_empty()) {
        return Err(InvalidInput(
            "--override needs --reason TEXT: the reason is recorded in the commit".into(),
        ));
    }
    Ok(())
}

#[derive(Serialize)]
struct ItemView<'a> {
    environment: &'a str,
    project: String,
    release: ReleaseView<'a>,
    previous: Option<ReleaseView<'a>>,
    decisions: &'a [Decision],
    verdict: String,
}

#[derive(Serialize)]
struct ReleaseView<'a> {
    number: u64,
    commit: &'a str,
    digest: &'a str,
    aliases: Vec<&'a str>,
}

impl<'a> From<&'a crate::gitops::register::Entry> for ReleaseView<'a> {
    fn from(e: &'a crate::gitops::register::Entry) -> Self {
        Self {
            number: e.number,
            commit: e.commit.as_str(),
            digest: e.digest.as_str(),
            aliases: e.aliases.iter().map(|a| a.alias.as_str()).collect(),
        }
    }
}

fn verdict_text(v: &Verdict) -> String {
    match v {
        Verdict::Proceed => "eligible".into(),
        Verdict::AlreadyDeployed => "already deployed".into(),
        Verdict::Refused(r) => format!("refused: {}", r.join("; ")),
    }
}

fn report(
    out: &mut Vec<u8>,
    output: Output,
    action: &Action,
    judged: &[(Item, Verdict)],
    result: &str,
    commit: Option<String>,
) -> crate::exit::Result<()> {
    match output {
        Output::Json => {
            let items: Vec<ItemView<'_>> = judged
                .iter()
                .map(|(i, v)| ItemView {
                    environment: i.env.as_str(),
                    project: i.project_name(),
                    release: (&i.target).into(),
                    previous: i.current_entry.as_ref().map(Into::into),
                    decisions: &i.decisions,
                    verdict: verdict_text(v),
                })
                .collect();
            let v = serde_json::json!({
                "action": action.name(),
                "result": result,
                "commit": commit,
                "items": items,
            });
            writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
        }
        Output::Text => {
            for (i, v) in judged {
                writeln!(
                    out,
                    "{} {} in {}: release {} (previous: {}) — {}",
                    action.name(),
                    i.register.project,
                    i.env,
                    i.target.label(),
                    crate::deploy::label(i.current_entry.as_ref()),
                    verdict_text(v)
                )?;
                for d in &i.decisions {
                    writeln!(
                        out,
                        "  {} {:<17} required: {}; actual: {}{}",
                        if d.pass { "pass" } else { "FAIL" },
                        d.rule,
                        d.required,
                        d.actual,
                        if d.overridden { " (overridden)" } else { "" }
                    )?;
                }
            }
            match commit {
                Some(c) => writeln!(out, "{result}: {c}")?,
                None => writeln!(out, "{result}")?,
            }
        }
    }
    Ok(())
}

/// Checks that the registry holds each target exactly as registered (plan: "fetch its
/// metadata by digest").
async fn fetch_metadata(items: &[Item], settings: &Settings) -> crate::exit::Result<()> {
    let options = settings.store.clone();
    let limits = settings.limits;
    for i in items {
        let base = super::registry_base(i.current.as_ref(), settings)?;
        let id = crate::ids::ReleaseId {
            repository: i.register.repository.clone(),
            project: i.register.project.clone(),
            commit: i.target.commit.clone(),
        };
        let image = base.image(&id, Some(i.target.digest.clone()));
        let store = Store::open(&image, &options)?;
        crate::release::fetch_head(&store, &image, &Expected::from(&id), &limits).await?;
    }
    Ok(())
}

/// Runs plan → eligibility → execute until it lands, is refused, or is a no-op.
async fn drive(
    requests: &[Request],
    action: Action,
    flags: &PolicyFlags,
    settings: &Settings,
    out: &mut Vec<u8>,
) -> crate::exit::Result<()> {
    check_overrides(flags)?;
    let gitops = crate::gitops::GitOps::open(settings.gitops_url()?, &settings.gitops_branch)?;
    let actor = settings
        .actor
        .clone()
        .ok_or_else(|| InvalidInput("who is deploying? set --actor or RELEASECTL_ACTOR".into()))?;
    let deadline = settings.deadline;
    let verify = crate::signing::verify_approval;
    let mut first_pointers: Option<Vec<Option<Vec<u8>>>> = None;
    let mut last = String::new();
    let mut attempts = crate::retry::Attempts::new(MAX_ATTEMPTS, deadline);
    while attempts.next().await {
        let tip = gitops.fetch()?;
        let policy = plan::load_policy(&gitops, &tip)?;
        let now = settings.now;
        let cx = Context {
            gitops: &gitops,
            now,
            overrides: &flags.overrides,
            verify: &verify,
        };
        // Phase 1: plan.
        let expanded: Vec<Request> = if action == Action::Auto {
            policy
                .environments
                .iter()
                .filter(|e| e.auto_deploy)
                .map(|e| Request {
                    env: e.name.clone(),
                    ..requests[0].clone()
                })
                .collect()
        } else {
            requests.to_vec()
        };
        if expanded.is_empty() {
            return Err(InvalidInput(format!(
                "{}: no environment has auto_deploy: true",
                policy::FILE
            ))
            .into());
        }
        let mut items = Vec::new();
        for r in &expanded {
            items.push(plan::plan_item(&cx, &tip, &policy, r)?);
        }
        // A rollback decided against one state of the pointer must not land on another.
        let pointers: Vec<Option<Vec<u8>>> = items
            .iter()
            .map(|i| plan::read(&gitops, &tip, &i.pointer_path))
            .collect::<Result<_, _>>()?;
        match &first_pointers {
            None => first_pointers = Some(pointers),
            Some(first) if matches!(action, Action::Rollback { .. }) && *first != pointers => {
                return Err(GitError::Remote {
                    url: gitops.url().to_owned(),
                    operation: "rollback",
                    reason: "the pointer changed while rolling back; nothing was written: look at `releasectl history` and run the rollback again".into(),
                }
                .into());
            }
            Some(_) => {}
        }
        if action != Action::Unblock {
            fetch_metadata(&items, settings).await?;
        }
        // Phase 2: eligibility.
        let judged: Vec<(Item, Verdict)> = items
            .into_iter()
            .map(|i| {
                let env = plan::environment(&policy, &i.env).expect("planned against this policy");
                let v = if action == Action::Unblock {
                    if i.current
                        .as_ref()
                        .is_some_and(|p| p.blocked().iter().any(|c| c == i.target.commit.as_str()))
                    {
                        Verdict::Proceed
                    } else {
                        Verdict::AlreadyDeployed
                    }
                } else {
                    eligibility::judge(&i, env, &flags.overrides)
                };
                (i, v)
            })
            .collect();
        if flags.dry_run {
            report(
                out,
                settings.output,
                &action,
                &judged,
                "dry run: nothing written",
                None,
            )?;
            return Ok(());
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
        if !refused.is_empty() && action != Action::Auto {
            report(
                out,
                settings.output,
                &action,
                &judged,
                "refused: nothing written",
                None,
            )?;
            return Err(Refused { reasons: refused }.into());
        }
        let go: Vec<&Item> = judged
            .iter()
            .filter(|(_, v)| *v == Verdict::Proceed)
            .map(|(i, _)| i)
            .collect();
        if go.is_empty() {
            let result = if action == Action::Auto && !refused.is_empty() {
                "no environment admits the release: nothing written"
            } else if action == Action::Unblock {
                "not blocked: nothing to do"
            } else {
                "already deployed: nothing to do"
            };
            report(out, settings.output, &action, &judged, result, None)?;
            return Ok(());
        }
        // Phase 3: execute.
        let at = crate::settings::format_time(settings.now);
        let stamp = Stamp {
            actor: &actor,
            at: &at,
            overrides: &flags.overrides,
            reason: flags.reason.as_deref(),
        };
        let effective = if action == Action::Auto && go.len() == 1 {
            Action::Auto
        } else {
            action.clone()
        };
        let edits = execute::edits(&go, &effective, &stamp);
        let message = execute::message(&go, &effective, &stamp);
        let identity = crate::gitops::Identity::new(&actor, settings.unix_now());
        match gitops.commit_and_push(&tip, &edits, &message, &identity)? {
            PushOutcome::Pushed(oid) => {
                let result = match action {
                    Action::Unblock => "unblocked",
                    Action::Rollback { .. } => "rolled back",
                    Action::Promote { .. } => "promoted",
                    _ => "deployed",
                };
                report(
                    out,
                    settings.output,
                    &action,
                    &judged,
                    result,
                    Some(oid.to_string()),
                )?;
                return Ok(());
            }
            PushOutcome::Rejected(reason) => {
                crate::log::info(&format!(
                    "push rejected ({reason}); planning again on the new tip"
                ));
                last = reason;
            }
        }
    }
    Err(GitError::Contended {
        url: gitops.url().to_owned(),
        attempts: attempts.made(),
        last,
    }
    .into())
}

pub async fn deploy(args: &DeployArgs, settings: &Settings) -> crate::exit::Result<super::Outcome> {
    let mut out = Vec::new();
    let done = deploy_to(args, settings, &mut out).await;
    super::Outcome::from_report(out, done)
}

async fn deploy_to(
    args: &DeployArgs,
    settings: &Settings,
    out: &mut Vec<u8>,
) -> crate::exit::Result<()> {
    let a = &args.args;
    if args.auto {
        let [project, id] = a.as_slice() else {
            return Err(InvalidInput("deploy --auto takes PROJECT RELEASE_ID".into()).into());
        };
        let request = Request {
            env: env_name("auto").expect("valid"),
            project: project.clone(),
            selector: Selector::Id(id.clone()),
        };
        return drive(&[request], Action::Auto, &args.policy, settings, out).await;
    }
    let env = env_name(&a[0])?;
    let rest = &a[1..];
    if rest.iter().all(|x| x.contains('=')) {
        let requests: Vec<Request> = rest
            .iter()
            .map(|x| {
                let (p, id) = x.split_once('=').expect("checked");
                Request {
                    env: env.clone(),
                    project: p.to_owned(),
                    selector: Selector::Id(id.to_owned()),
                }
            })
            .collect();
        let action = if requests.len() == 1 {
            Action::Deploy
        } else {
            Action::Group
        };
        return drive(&requests, action, &args.policy, settings, out).await;
    }
    let [project, id] = rest else {
        return Err(InvalidInput(
            "deploy takes ENV PROJECT RELEASE_ID, or ENV P1=ID1 P2=ID2 ...".into(),
        )
        .into());
    };
    let request = Request {
        env,
        project: project.clone(),
        selector: Selector::Id(id.clone()),
    };
    drive(&[request], Action::Deploy, &args.policy, settings, out).await
}

pub async fn promote(
    args: &PromoteArgs,
    settings: &Settings,
) -> crate::exit::Result<super::Outcome> {
    let mut out = Vec::new();
    let done = promote_to(args, settings, &mut out).await;
    super::Outcome::from_report(out, done)
}

async fn promote_to(
    args: &PromoteArgs,
    settings: &Settings,
    out: &mut Vec<u8>,
) -> crate::exit::Result<()> {
    let from = env_name(&args.from)?;
    let request = Request {
        env: env_name(&args.to)?,
        project: args.project.clone(),
        selector: Selector::RunningIn(from.clone()),
    };
    drive(
        &[request],
        Action::Promote { from },
        &args.policy,
        settings,
        out,
    )
    .await
}

pub async fn rollback(
    args: &RollbackArgs,
    settings: &Settings,
) -> crate::exit::Result<super::Outcome> {
    let mut out = Vec::new();
    let done = rollback_to(args, settings, &mut out).await;
    super::Outcome::from_report(out, done)
}

async fn rollback_to(
    args: &RollbackArgs,
    settings: &Settings,
    out: &mut Vec<u8>,
) -> crate::exit::Result<()> {
    let request = Request {
        env: env_name(&args.env)?,
        project: args.project.clone(),
        selector: args.to.clone().map_or(Selector::Previous, Selector::Id),
    };
    drive(
        &[request],
        Action::Rollback { block: args.block },
        &args.policy,
        settings,
        out,
    )
    .await
}

pub async fn unblock(
    args: &UnblockArgs,
    settings: &Settings,
) -> crate::exit::Result<super::Outcome> {
    let mut out = Vec::new();
    let done = unblock_to(args, settings, &mut out).await;
    super::Outcome::from_report(out, done)
}

async fn unblock_to(
    args: &UnblockArgs,
    settings: &Settings,
    out: &mut Vec<u8>,
) -> crate::exit::Result<()> {
    let request = Request {
        env: env_name(&args.env)?,
        project: args.project.clone(),
        selector: Selector::Id(args.release_id.clone()),
    };
    let flags = PolicyFlags {
        dry_run: false,
        overrides: Vec::new(),
        reason: None,
    };
    drive(&[request], Action::Unblock, &flags, settings, out).await
}
