//! `deploy`, `promote`, `rollback`, `unblock`: arguments → an order for
//! [`crate::deploy::run`], and its report rendered as text or JSON. A refusal is an outcome:
//! the report with every decision is printed and the run exits 4.

use std::io::Write;

use crate::cli::{DeployArgs, PolicyFlags, PromoteArgs, RollbackArgs, UnblockArgs, WaitFlags};
use crate::deploy::eligibility::Verdict;
use crate::deploy::run::{self, Ended, Order, Registry, Report, Run};
use crate::deploy::view::{self, verdict_text};
use crate::deploy::{Action, Request, Selector};
use crate::exit::{Context as _, Exit, InvalidInput};
use crate::gitops::notes::{Outcome as Recorded, State};
use crate::gitops::{ProjectRef, ReleaseSelector};
use crate::policy::EnvName;
use crate::settings::{Output, Settings};

fn parsed<T: std::str::FromStr>(s: &str) -> Result<T, InvalidInput>
where
    T::Err: std::fmt::Display,
{
    s.parse().map_err(|e: T::Err| InvalidInput(e.to_string()))
}

fn render(report: &Report, waited: &[Recorded], output: Output) -> crate::exit::Result<Vec<u8>> {
    let mut out = Vec::new();
    let action = &report.action;
    let result = report.result();
    let commit = report.commit.map(|c| c.to_string());
    match output {
        Output::Json => {
            let mut v = view::json(report);
            v["outcomes"] = serde_json::to_value(waited)?;
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
                        "{}",
                        crate::deploy::view::decision_line(
                            d.pass,
                            d.rule,
                            &d.required,
                            &d.actual,
                            d.overridden
                        )
                    )?;
                }
            }
            match commit {
                Some(c) => writeln!(out, "{result}: {c}")?,
                None => writeln!(out, "{result}")?,
            }
            for o in waited {
                writeln!(out, "{}", outcome_line(o))?;
            }
        }
    }
    Ok(out)
}

/// `argo cd prod-r-p: succeeded (Synced, Healthy at 1234…)`, and what was wrong.
fn outcome_line(o: &Recorded) -> String {
    format!(
        "argo cd {}: {} ({}, {} at {}){}",
        crate::text::excerpt(&o.application),
        o.state.name(),
        o.sync_status,
        o.health,
        o.sync_revision.as_deref().unwrap_or("no revision"),
        o.message
            .as_deref()
            .map(|m| format!(": {m}"))
            .unwrap_or_default()
    )
}

/// `--wait`: follows each Application the landed commit changed and records the outcomes
/// as a git note on the commit.
async fn wait_for(
    report: &Report,
    commit: git2::Oid,
    gitops: &crate::gitops::GitOps,
    settings: &Settings,
    flags: &WaitFlags,
) -> crate::exit::Result<Vec<Recorded>> {
    let client = settings.argocd.client()?;
    let started = std::time::Instant::now();
    let until = started + flags.wait_timeout.unwrap_or(DEFAULT_WAIT);
    let mut outcomes = Vec::new();
    for (i, v) in &report.judged {
        if *v != Verdict::Proceed {
            continue;
        }
        let target = crate::deploy::wait::Target {
            environment: i.env.to_string(),
            project: i.project_name(),
            release: i.target.commit.to_string(),
            application: settings.argocd.app_name(
                i.env.as_str(),
                i.register.repository.as_str(),
                i.register.project.as_str(),
            ),
        };
        outcomes.push(
            crate::deploy::wait::follow(
                &client,
                gitops,
                &target,
                commit,
                until,
                (settings.now, started),
            )
            .await?,
        );
    }
    let record_until = std::time::Instant::now() + NOTE_BUDGET;
    gitops
        .record_outcomes(commit, &outcomes, settings.unix_now(), record_until)
        .with_context(|| {
            format!(
                "Argo CD's verdict is known ({}) but recording it in {} failed",
                outcomes
                    .iter()
                    .map(|o| format!("{} in {}: {}", o.project, o.environment, o.state.name()))
                    .collect::<Vec<_>>()
                    .join(", "),
                crate::gitops::notes::NOTES_REF
            )
        })?;
    Ok(outcomes)
}

/// `on_failure: rollback`: rolls `failed`'s project back to the release before it and blocks
/// the failed release, when the environment's policy asks for it and the pointer still names
/// the failed release (a later deploy is never undone). Says what it did, if anything.
async fn roll_back_failed(
    failed: &Recorded,
    gitops: &crate::gitops::GitOps,
    actor: &str,
    settings: &Settings,
) -> crate::exit::Result<Option<String>> {
    let tip = gitops.fetch()?;
    let policy = crate::gitops::layout::load_policy(gitops, &tip)?;
    let env: EnvName = parsed(&failed.environment)?;
    if !policy.get(&env).is_some_and(|e| e.on_failure_rollback) {
        return Ok(None);
    }
    let project: ProjectRef = parsed(&failed.project)?;
    let register = crate::gitops::find_register(gitops, &tip, &project)?;
    let path = crate::gitops::layout::pointer_path(&env, &register.repository, &register.project);
    let still = crate::gitops::layout::load_pointer(&tip, &path)?
        .is_some_and(|p| p.id.commit.as_str() == failed.release);
    if !still {
        return Ok(Some(format!(
            "on_failure: rollback skipped: {path} no longer names the failed release"
        )));
    }
    let cause = crate::text::printable(
        &format!(
            "{} {}{}",
            failed.sync_status,
            failed.health,
            failed
                .message
                .as_deref()
                .map(|m| format!(": {m}"))
                .unwrap_or_default()
        ),
        300,
    );
    let mut order = Order::new(
        vec![Request {
            env,
            project,
            selector: Selector::Previous,
        }],
        Action::Rollback { block: true },
    );
    order.by = Some(format!("releasectl (health check failed: {cause})"));
    let report = run::run(
        &order,
        &Run {
            gitops,
            actor,
            now: settings.now,
            deadline: std::time::Instant::now() + NOTE_BUDGET,
            registry: Registry {
                default: settings.registry.as_ref(),
                store: &settings.store,
                limits: &settings.limits,
            },
        },
    )
    .await?;
    Ok(Some(match (&report.ended, report.commit) {
        (Ended::Landed, Some(c)) => format!(
            "on_failure: rollback: rolled {} back in {} and blocked the failed release: {c}",
            failed.project, failed.environment
        ),
        _ => format!(
            "on_failure: rollback of {} in {}: {}",
            failed.project,
            failed.environment,
            report.result()
        ),
    }))
}

/// `--wait-timeout` when not given.
const DEFAULT_WAIT: std::time::Duration = std::time::Duration::from_secs(300);
/// How long recording the outcome may take after the wait.
const NOTE_BUDGET: std::time::Duration = std::time::Duration::from_secs(60);

/// Runs `order` and renders its report; a refusal ends the run with exit 4.
async fn drive(
    order: Order,
    wait: Option<&WaitFlags>,
    settings: &Settings,
) -> crate::exit::Result<super::Outcome> {
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
    let waited = match (wait.filter(|w| w.wait), report.commit) {
        (Some(flags), Some(commit)) if report.ended == Ended::Landed => {
            match wait_for(&report, commit, &gitops, settings, flags).await {
                Ok(waited) => waited,
                // The write landed: the report says so, and the error says what --wait could
                // not learn.
                Err(e) => {
                    let out = render(&report, &[], settings.output)?;
                    return Ok(super::Outcome::ended(
                        out,
                        e.exit(),
                        format!("{} {commit}, but --wait failed: {e}", report.result()),
                    ));
                }
            }
        }
        _ => Vec::new(),
    };
    let out = render(&report, &waited, settings.output)?;
    let mut unhealthy: Vec<String> = waited
        .iter()
        .filter(|o| o.state != State::Succeeded)
        .map(outcome_line)
        .collect();
    if !unhealthy.is_empty() {
        let mut out = out;
        for o in waited.iter().filter(|o| o.state == State::Failed) {
            if let Some(line) = roll_back_failed(o, &gitops, actor, settings).await? {
                writeln!(out, "{line}")?;
                unhealthy.push(line);
            }
        }
        return Ok(super::Outcome::ended(
            out,
            Exit::Unhealthy,
            format!("deployed but not healthy: {}", unhealthy.join("; ")),
        ));
    }
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

/// Sends `write` to `--server` and renders the server's report as the local path does: a
/// refusal exits 4 with its report, a dry run that would be refused too.
async fn through_server(
    server: &crate::settings::Server,
    write: &crate::client::deploy::Write,
    wait: Option<&WaitFlags>,
    settings: &Settings,
) -> crate::exit::Result<super::Outcome> {
    if wait.is_some_and(|w| w.wait) {
        return Err(InvalidInput(format!(
            "--wait with --server {}: expected no --wait (the server does not follow Argo CD); run `releasectl status --live` against the repository instead",
            server.url
        ))
        .into());
    }
    let client = crate::client::Client::new(server, settings.deadline)?;
    let what = write.request().0.trim_start_matches("/v1/").to_owned();
    let decided = crate::client::deploy::send(&client, write, &what).await?;
    let out = match settings.output {
        Output::Json => format!("{}\n", serde_json::to_string_pretty(&decided.json)?),
        Output::Text => decided.text(),
    }
    .into_bytes();
    Ok(match decided.refused {
        Some(message) => super::Outcome::ended(out, Exit::Policy, message),
        None if decided.would_refuse => super::Outcome::ended(
            out,
            Exit::Policy,
            "dry run: the plan would be refused by policy; nothing written".to_owned(),
        ),
        None => super::Outcome::ok(out),
    })
}

fn policy_fields(flags: &PolicyFlags) -> crate::client::deploy::PolicyFields {
    crate::client::deploy::PolicyFields {
        dry_run: flags.dry_run,
        overrides: flags.overrides.iter().map(ToString::to_string).collect(),
        reason: flags.reason.clone(),
    }
}

/// `deploy` through `--server`: `ENV PROJECT RELEASE_ID` or a group (no `--auto`: the API
/// deploys to a named environment).
async fn deploy_through(
    server: &crate::settings::Server,
    args: &DeployArgs,
    settings: &Settings,
) -> crate::exit::Result<super::Outcome> {
    use crate::client::deploy::{GroupItem, Write};
    let a = &args.args;
    if args.auto {
        return Err(InvalidInput(format!(
            "deploy --auto with --server {}: expected an environment (the API deploys to a named one: deploy ENV PROJECT RELEASE_ID)",
            server.url
        ))
        .into());
    }
    let env: EnvName = parsed(&a[0])?;
    let rest = &a[1..];
    let items: Vec<GroupItem> = if rest.iter().all(|x| x.contains('=')) {
        rest.iter()
            .map(|x| {
                let (p, id) = x.split_once('=').expect("checked");
                GroupItem {
                    project: p.to_owned(),
                    release_id: id.to_owned(),
                }
            })
            .collect()
    } else if let [project, id] = rest {
        vec![GroupItem {
            project: project.clone(),
            release_id: id.clone(),
        }]
    } else {
        return Err(InvalidInput(
            "deploy takes ENV PROJECT RELEASE_ID, or ENV P1=ID1 P2=ID2 ...".into(),
        )
        .into());
    };
    let write = Write::Deploy {
        environment: env.to_string(),
        items,
        policy: policy_fields(&args.policy),
    };
    through_server(server, &write, Some(&args.wait), settings).await
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
    if let Some(server) = &settings.server {
        return deploy_through(server, args, settings).await;
    }
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
    drive(
        order(requests, action, &args.policy)?,
        Some(&args.wait),
        settings,
    )
    .await
}

pub async fn promote(
    args: &PromoteArgs,
    settings: &Settings,
) -> crate::exit::Result<super::Outcome> {
    if let Some(server) = &settings.server {
        let write = crate::client::deploy::Write::Promote {
            project: args.project.to_string(),
            from: args.from.to_string(),
            to: args.to.to_string(),
            policy: policy_fields(&args.policy),
        };
        return through_server(server, &write, Some(&args.wait), settings).await;
    }
    let request = Request {
        env: args.to.clone(),
        project: args.project.clone(),
        selector: Selector::RunningIn(args.from.clone()),
    };
    let action = Action::Promote {
        from: args.from.clone(),
    };
    drive(
        order(vec![request], action, &args.policy)?,
        Some(&args.wait),
        settings,
    )
    .await
}

pub async fn rollback(
    args: &RollbackArgs,
    settings: &Settings,
) -> crate::exit::Result<super::Outcome> {
    if let Some(server) = &settings.server {
        let write = crate::client::deploy::Write::Rollback {
            environment: args.env.to_string(),
            project: args.project.to_string(),
            to: args.to.as_ref().map(ToString::to_string),
            block: args.block,
            policy: policy_fields(&args.policy),
        };
        return through_server(server, &write, Some(&args.wait), settings).await;
    }
    let request = Request {
        env: args.env.clone(),
        project: args.project.clone(),
        selector: args.to.clone().map_or(Selector::Previous, Selector::Id),
    };
    let action = Action::Rollback { block: args.block };
    drive(
        order(vec![request], action, &args.policy)?,
        Some(&args.wait),
        settings,
    )
    .await
}

pub async fn unblock(
    args: &UnblockArgs,
    settings: &Settings,
) -> crate::exit::Result<super::Outcome> {
    if let Some(server) = &settings.server {
        let write = crate::client::deploy::Write::Unblock {
            environment: args.env.to_string(),
            project: args.project.to_string(),
            release_id: args.release_id.to_string(),
        };
        return through_server(server, &write, None, settings).await;
    }
    let request = Request {
        env: args.env.clone(),
        project: args.project.clone(),
        selector: Selector::Id(args.release_id.clone()),
    };
    drive(Order::new(vec![request], Action::Unblock), None, settings).await
}
