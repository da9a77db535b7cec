//! `status` (which release runs where) and `history` (the deploys of one pointer, or of every
//! pointer of an environment, from the commits' trailers). Both read the GitOps branch tip;
//! neither writes. Aliases are objects `{alias, type}` as the register (and `release get`)
//! holds them.

use std::io::Write;

use crate::cli::{HistoryArgs, StatusArgs};
use crate::deploy::history::{Event, pointer_events};
use crate::deploy::status::{self, Live};
use crate::gitops::ProjectRef;
use crate::gitops::find_register;
use crate::gitops::layout;
use crate::gitops::snapshot::Snapshot;
use crate::settings::{Output, Settings};

/// Argo CD's view of `application`, whose source is the pointer at `path`: whether the
/// revision it synced holds that file as `tip` does costs that commit and the trees on the
/// path, never a walk of history.
async fn live(
    client: &crate::argocd::Client,
    gitops: &crate::gitops::GitOps,
    tip: &Snapshot<'_>,
    application: String,
    path: &str,
    deadline: std::time::Instant,
) -> crate::exit::Result<Live> {
    Ok(match client.get(&application, deadline).await {
        Ok(app) => {
            let revision = app.sync_revision().map(|r| crate::text::printable(r, 80));
            let at_pointer = match app.sync_revision() {
                Some(r) => gitops.same_file_at(r, path, tip)?,
                None => false,
            };
            Live {
                application,
                sync: Some(app.sync_status()),
                health: Some(app.health()),
                revision,
                at_pointer,
                error: None,
            }
        }
        Err(e) => Live {
            application,
            sync: None,
            health: None,
            revision: None,
            at_pointer: false,
            error: Some(e.to_string()),
        },
    })
}

pub async fn status(args: &StatusArgs, settings: &Settings) -> crate::exit::Result<super::Outcome> {
    if let Some(server) = &settings.server {
        return status_through(server, args, settings).await;
    }
    let gitops = settings.open_gitops()?;
    let tip = gitops.fetch()?;
    gitops.fetch_notes()?;
    let client = if args.live {
        Some(settings.argocd.client()?)
    } else {
        None
    };
    let envs: Vec<String> = args.envs.iter().map(ToString::to_string).collect();
    let found = status::rows(&gitops, &tip, &envs, args.project.as_ref())?;
    let mut rows = Vec::with_capacity(found.len());
    for status::Found { mut row, path } in found {
        if let Some(c) = &client {
            let (repository, project) = row.project.rsplit_once('/').unwrap_or_default();
            let name = settings
                .argocd
                .app_name(&row.environment, repository, project);
            row.live = Some(live(c, &gitops, &tip, name, &path, settings.deadline).await?);
        }
        rows.push(row);
    }
    let mut out = Vec::new();
    match settings.output {
        Output::Json => writeln!(out, "{}", serde_json::to_string_pretty(&rows)?)?,
        Output::Text => out.extend_from_slice(status::text(&rows).as_bytes()),
    }
    Ok(super::Outcome::ok(out))
}

/// `status` through `--server` (`GET /v1/deployments`, with the same filters); `--live` asks
/// Argo CD, which the server does not.
async fn status_through(
    server: &crate::settings::Server,
    args: &StatusArgs,
    settings: &Settings,
) -> crate::exit::Result<super::Outcome> {
    if args.live {
        return Err(crate::exit::InvalidInput(format!(
            "status --live with --server {}: the server does not ask Argo CD; expected no --live",
            server.url
        ))
        .into());
    }
    let client = crate::client::Client::new(server, settings.deadline)?;
    let envs: Vec<String> = args.envs.iter().map(ToString::to_string).collect();
    let rows = crate::client::reads::status_list(&client, &envs, args.project.as_ref()).await?;
    let out = match settings.output {
        Output::Json => format!("{}\n", serde_json::to_string_pretty(&rows)?),
        Output::Text => status::text(&rows),
    };
    Ok(super::Outcome::ok(out.into_bytes()))
}

pub async fn history(
    args: &HistoryArgs,
    settings: &Settings,
) -> crate::exit::Result<super::Outcome> {
    if let Some(server) = &settings.server {
        let Some(project) = &args.project else {
            return Err(crate::exit::InvalidInput(format!(
                "history {} with --server {}: expected a project (the API answers one pointer's history)",
                args.env, server.url
            ))
            .into());
        };
        let client = crate::client::Client::new(server, settings.deadline)?;
        let events = crate::client::reads::history(&client, args.env.as_str(), project).await?;
        return write_history(&events, false, settings);
    }
    let gitops = settings.open_gitops()?;
    gitops.fetch_notes()?;
    let signers = |tip: &Snapshot<'_>| {
        layout::load_policy(&gitops, tip)
            .map(|p| p.commit_signers)
            .unwrap_or_default()
    };
    let mut events = Vec::new();
    let whole = args.project.is_none();
    if let Some(project) = &args.project {
        let (tip, reg) = gitops.fetch_register(project)?;
        let signers = signers(&tip);
        events.extend(pointer_events(&gitops, &tip, &reg, &args.env, &signers)?);
    } else {
        let tip = gitops.fetch()?;
        let signers = signers(&tip);
        for project in env_projects(&tip, args.env.as_str())? {
            let reg = find_register(&gitops, &tip, &project)?;
            events.extend(pointer_events(&gitops, &tip, &reg, &args.env, &signers)?);
        }
        // Newest first across projects (each project's list already is); a stable sort keeps
        // one commit's changes together.
        events.sort_by(|a, b| b.time.cmp(&a.time));
    }
    write_history(&events, whole, settings)
}

/// Every project that is registered or has a pointer in `env`.
fn env_projects(tip: &Snapshot<'_>, env: &str) -> crate::exit::Result<Vec<ProjectRef>> {
    let mut names = std::collections::BTreeSet::new();
    for found in crate::gitops::register::all_registers(tip)? {
        names.insert(format!("{}/{}", found.repository, found.project));
    }
    for path in layout::pointers_in(tip, env)? {
        if let Some(full) = path
            .strip_prefix(&format!("{}/", layout::apps_dir(env)))
            .and_then(|p| p.strip_suffix(&format!("/{}", layout::POINTER_FILE)))
        {
            names.insert(full.to_owned());
        }
    }
    names
        .iter()
        .map(|n| n.parse::<ProjectRef>().map_err(Into::into))
        .collect()
}

fn write_history(
    events: &[Event],
    whole: bool,
    settings: &Settings,
) -> crate::exit::Result<super::Outcome> {
    let mut out = Vec::new();
    match settings.output {
        Output::Json => writeln!(out, "{}", serde_json::to_string_pretty(&events)?)?,
        Output::Text => {
            // The whole environment: each line names its project.
            let pw = if whole {
                events
                    .iter()
                    .map(|e| e.project.len())
                    .max()
                    .unwrap_or(7)
                    .max(7)
            } else {
                0
            };
            let project = |p: &str| {
                if whole {
                    format!("{p:<pw$}  ")
                } else {
                    String::new()
                }
            };
            writeln!(
                out,
                "{:<20}  {}{:<26}  {:<16}  {:<12}  {:<24}  GITOPS COMMIT",
                "TIME",
                project("PROJECT"),
                "ACTION",
                "RELEASE",
                "COMMIT",
                "BY"
            )?;
            for e in events {
                writeln!(
                    out,
                    "{:<20}  {}{:<26}  {:<16}  {:<12}  {:<24}  {}{}",
                    e.time,
                    project(&e.project),
                    e.action,
                    e.label,
                    e.release_commit
                        .as_deref()
                        .map_or("-", |c| &c[..12.min(c.len())]),
                    e.author,
                    &e.gitops_commit[..12],
                    e.notes()
                )?;
            }
        }
    }
    Ok(super::Outcome::ok(out))
}
