//! `deploy`, `promote`, `rollback`, `unblock`: arguments → an order for
//! [`crate::deploy::run`], and its report rendered as text or JSON. A refusal is an outcome:
//! the report with every decision is printed and the run exits 4.

use std::io::Write;

use crate::cli::{DeployArgs, PolicyFlags, PromoteArgs, RollbackArgs, UnblockArgs};
use crate::deploy::run::{self, Ended, Order, Registry, Report, Run};
use crate::deploy::view::{self, verdict_text};
use crate::deploy::{Action, Request, Selector};
use crate::exit::{Exit, InvalidInput};
use crate::gitops::{ProjectRef, ReleaseSelector};
use crate::policy::EnvName;
use crate::settings::{Output, Settings};

fn parsed<T: std::str::FromStr>(s: &str) -> Result<T, InvalidInput>
where
    T::Err: std::fmt::Display,
{
    s.parse().map_err(|e: T::Err| InvalidInput(e.to_string()))
}

fn render(report: &Report, output: Output) -> crate::exit::Result<Vec<u8>> {
    let mut out = Vec::new();
    let action = &report.action;
    let result = report.result();
    let commit = report.commit.map(|c| c.to_string());
    match output {
        Output::Json => {
            let v = crate::deploy::view::json(report);
            writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
        }
        Output::Text => {
            for (i, v) in &report.judged {
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
    Ok(out)
}

/// Runs `order` and renders its report; a refusal ends the run with exit 4.
async fn drive(order: Order, settings: &Settings) -> crate::exit::Result<super::Outcome> {
    let gitops = settings.open_gitops()?;
    // A dry run writes nothing, so it needs nobody to write as.
    let actor = match settings.actor.as_deref() {
        Some(a) => a,
        None if order.dry_run => "dry-run",
        None => {
            return Err(
                InvalidInput("who is deploying? set --actor or RELEASECTL_ACTOR".into()).into(),
            );
        }
    };
    let report = run::run(
        &order,
        &Run {
            gitops: &gitops,
            actor,
            now: settings.now,
            deadline: settings.deadline,
            registry: Registry {
                default: settings.registry.as_ref(),
                store: &settings.store,
                limits: &settings.limits,
            },
        },
    )
    .await?;
    let out = render(&report, settings.output)?;
    Ok(match &report.ended {
        Ended::Refused(reasons) => super::Outcome::ended(
            out,
            Exit::Policy,
            format!("refused by policy: {}", reasons.join("; ")),
        ),
        // `--dry-run` exits as the real run would be judged: 4 when refused, 0 when it passes.
        Ended::DryRun if view::would_refuse(&report) => super::Outcome::ended(
            out,
            Exit::Policy,
            "dry run: the plan would be refused by policy; nothing written".to_owned(),
        ),
        _ => super::Outcome::ok(out),
    })
}

fn order(
    requests: Vec<Request>,
    action: Action,
    flags: &PolicyFlags,
) -> Result<Order, InvalidInput> {
    Order::new(requests, action).with_flags(
        flags.overrides.clone(),
        flags.reason.clone(),
        flags.dry_run,
    )
}

pub async fn deploy(args: &DeployArgs, settings: &Settings) -> crate::exit::Result<super::Outcome> {
    let a = &args.args;
    let request = |env: EnvName, project: &str, id: &str| -> Result<Request, InvalidInput> {
        Ok(Request {
            env,
            project: parsed::<ProjectRef>(project)?,
            selector: Selector::Id(parsed::<ReleaseSelector>(id)?),
        })
    };
    let (requests, action) = if args.auto {
        let [project, id] = a.as_slice() else {
            return Err(InvalidInput("deploy --auto takes PROJECT RELEASE_ID".into()).into());
        };
        // The environments come from the policy's `auto_deploy`.
        let placeholder = EnvName::parse("auto").expect("a valid environment name");
        (vec![request(placeholder, project, id)?], Action::Auto)
    } else {
        let env: EnvName = parsed(&a[0])?;
        let rest = &a[1..];
        if rest.iter().all(|x| x.contains('=')) {
            let requests = rest
                .iter()
                .map(|x| {
                    let (p, id) = x.split_once('=').expect("checked");
                    request(env.clone(), p, id)
                })
                .collect::<Result<Vec<_>, _>>()?;
            let action = if requests.len() == 1 {
                Action::Deploy
            } else {
                Action::Group
            };
            (requests, action)
        } else {
            let [project, id] = rest else {
                return Err(InvalidInput(
                    "deploy takes ENV PROJECT RELEASE_ID, or ENV P1=ID1 P2=ID2 ...".into(),
                )
                .into());
            };
            (vec![request(env, project, id)?], Action::Deploy)
        }
    };
    drive(order(requests, action, &args.policy)?, settings).await
}

pub async fn promote(
    args: &PromoteArgs,
    settings: &Settings,
) -> crate::exit::Result<super::Outcome> {
    let request = Request {
        env: args.to.clone(),
        project: args.project.clone(),
        selector: Selector::RunningIn(args.from.clone()),
    };
    let action = Action::Promote {
        from: args.from.clone(),
    };
    drive(order(vec![request], action, &args.policy)?, settings).await
}

pub async fn rollback(
    args: &RollbackArgs,
    settings: &Settings,
) -> crate::exit::Result<super::Outcome> {
    let request = Request {
        env: args.env.clone(),
        project: args.project.clone(),
        selector: args.to.clone().map_or(Selector::Previous, Selector::Id),
    };
    let action = Action::Rollback { block: args.block };
    drive(order(vec![request], action, &args.policy)?, settings).await
}

pub async fn unblock(
    args: &UnblockArgs,
    settings: &Settings,
) -> crate::exit::Result<super::Outcome> {
    let request = Request {
        env: args.env.clone(),
        project: args.project.clone(),
        selector: Selector::Id(args.release_id.clone()),
    };
    drive(Order::new(vec![request], Action::Unblock), settings).await
}
