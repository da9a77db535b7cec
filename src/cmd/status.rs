//! `status` (which release runs where) and `history` (one pointer's deploys, from the
//! commits' trailers). Both read the GitOps branch tip; neither writes.

use std::fmt::Write as _;
use std::io::Write;

use serde::Serialize;

use crate::cli::{HistoryArgs, StatusArgs};
use crate::gitops::find_register;
use crate::gitops::layout::{self, load_pointer};
use crate::gitops::register::Register;
use crate::pointer;
use crate::settings::{Output, Settings};

#[derive(Serialize)]
struct Row {
    environment: String,
    project: String,
    number: Option<u64>,
    aliases: Option<String>,
    commit: String,
    digest: Option<String>,
    deployed_at: Option<String>,
    deployed_by: Option<String>,
    blocked: Vec<String>,
    /// How `--wait` saw the deploy that wrote the pointer (succeeded, failed, timed_out).
    outcome: Option<String>,
    /// `--live`: what Argo CD says now.
    #[serde(skip_serializing_if = "Option::is_none")]
    live: Option<Live>,
}

/// Argo CD's view of a pointer's Application (`status --live`).
#[derive(Serialize)]
struct Live {
    application: String,
    sync: Option<String>,
    health: Option<String>,
    revision: Option<String>,
    /// Whether the synced revision is the commit that wrote the pointer, or contains it.
    at_pointer: bool,
    error: Option<String>,
}

/// The commit that last wrote `path`, and the outcome recorded on it for `env`/`project`.
fn last_write(
    gitops: &crate::gitops::GitOps,
    tip: &crate::gitops::Snapshot<'_>,
    path: &str,
    env: &str,
    project: &str,
) -> crate::exit::Result<(Option<git2::Oid>, Option<String>)> {
    let Some(change) = tip.history(path)?.next().transpose()? else {
        return Ok((None, None));
    };
    let outcome = gitops
        .outcomes(change.commit)
        .into_iter()
        .find(|o| o.environment == env && o.project == project)
        .map(|o| o.state.name().to_owned());
    Ok((Some(change.commit), outcome))
}

async fn live(
    client: &crate::argocd::Client,
    gitops: &crate::gitops::GitOps,
    application: String,
    written_by: Option<git2::Oid>,
    deadline: std::time::Instant,
) -> crate::exit::Result<Live> {
    Ok(match client.get(&application, deadline).await {
        Ok(app) => {
            let revision = app.sync_revision().map(|r| crate::text::printable(r, 80));
            let at_pointer = match (app.sync_revision(), written_by) {
                (Some(r), Some(c)) => gitops.contains(r, c)?,
                _ => false,
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
    let gitops = settings.open_gitops()?;
    let tip = gitops.fetch()?;
    gitops.fetch_notes()?;
    let client = if args.live {
        Some(settings.argocd.client()?)
    } else {
        None
    };
    let policy = layout::load_policy(&gitops, &tip).ok();
    let envs: Vec<String> = match &policy {
        Some(p) => p.environments.iter().map(|e| e.name.to_string()).collect(),
        None => Vec::new(),
    };
    let filter: Option<Register> = match &args.project {
        Some(p) => Some(find_register(&gitops, &tip, p)?),
        None => None,
    };
    let mut rows = Vec::new();
    for env in &envs {
        for path in layout::pointers_in(&tip, env)? {
            let Some(p) = load_pointer(&tip, &path)? else {
                continue;
            };
            if let Some(r) = &filter
                && (p.id.repository != r.repository || p.id.project != r.project)
            {
                continue;
            }
            let project = format!("{}/{}", p.id.repository, p.id.project);
            let (written_by, outcome) = last_write(&gitops, &tip, &path, env, &project)?;
            let live = match &client {
                Some(c) => {
                    let name = settings.argocd.app_name(
                        env,
                        p.id.repository.as_str(),
                        p.id.project.as_str(),
                    );
                    Some(live(c, &gitops, name, written_by, settings.deadline).await?)
                }
                None => None,
            };
            rows.push(Row {
                outcome,
                live,
                environment: env.clone(),
                project,
                number: p
                    .annotations
                    .get(pointer::ANN_NUMBER)
                    .and_then(|n| n.parse().ok()),
                aliases: p.annotations.get(pointer::ANN_ALIASES).cloned(),
                commit: p.id.commit.to_string(),
                digest: p.digest.as_ref().map(ToString::to_string),
                deployed_at: p.annotations.get(pointer::ANN_DEPLOYED_AT).cloned(),
                deployed_by: p.annotations.get(pointer::ANN_DEPLOYED_BY).cloned(),
                blocked: p.blocked(),
            });
        }
    }
    let mut out = Vec::new();
    match settings.output {
        Output::Json => writeln!(out, "{}", serde_json::to_string_pretty(&rows)?)?,
        Output::Text => {
            let pw = rows
                .iter()
                .map(|r| r.project.len())
                .max()
                .unwrap_or(7)
                .max(7);
            let ew = rows
                .iter()
                .map(|r| r.environment.len())
                .max()
                .unwrap_or(11)
                .max(11);
            writeln!(
                out,
                "{:<ew$}  {:<pw$}  {:>7}  {:<16}  {:<12}  {:<20}  BY",
                "ENVIRONMENT", "PROJECT", "RELEASE", "ALIASES", "COMMIT", "DEPLOYED"
            )?;
            for r in &rows {
                writeln!(
                    out,
                    "{:<ew$}  {:<pw$}  {:>7}  {:<16}  {:<12}  {:<20}  {}{}{}",
                    r.environment,
                    r.project,
                    r.number.map_or("-".into(), |n| n.to_string()),
                    r.aliases.as_deref().unwrap_or("-"),
                    &r.commit[..12],
                    r.deployed_at.as_deref().unwrap_or("-"),
                    r.deployed_by.as_deref().unwrap_or("-"),
                    row_notes(r),
                    if r.blocked.is_empty() {
                        String::new()
                    } else {
                        format!(
                            "  (blocked: {})",
                            r.blocked
                                .iter()
                                .map(|c| &c[..12])
                                .collect::<Vec<_>>()
                                .join(",")
                        )
                    }
                )?;
            }
        }
    }
    Ok(super::Outcome::ok(out))
}

/// What the text view of `status` appends: the recorded outcome and Argo CD's live view.
fn row_notes(r: &Row) -> String {
    let mut out = String::new();
    if let Some(o) = &r.outcome {
        out.push_str("  outcome: ");
        out.push_str(o);
    }
    if let Some(l) = &r.live {
        match (&l.sync, &l.health, &l.error) {
            (Some(s), Some(h), _) => {
                let _ = write!(
                    out,
                    "  live: {s}/{h}{}",
                    if l.at_pointer {
                        ""
                    } else {
                        " (not at the pointer's commit)"
                    }
                );
            }
            (_, _, Some(e)) => {
                let _ = write!(out, "  live: {}", crate::text::excerpt(e));
            }
            _ => {}
        }
    }
    out
}

pub fn history(args: &HistoryArgs, settings: &Settings) -> crate::exit::Result<super::Outcome> {
    let gitops = settings.open_gitops()?;
    let (tip, reg) = gitops.fetch_register(&args.project)?;
    let path = layout::pointer_path(&args.env, &reg.repository, &reg.project);
    gitops.fetch_notes()?;
    let project = format!("{}/{}", reg.repository, reg.project);
    let events = crate::deploy::history::events(&tip, &reg, &path, |commit| {
        gitops
            .outcomes(commit)
            .into_iter()
            .find(|o| o.environment == args.env.as_str() && o.project == project)
            .map(|o| o.state.name().to_owned())
    })?;
    let mut out = Vec::new();
    match settings.output {
        Output::Json => writeln!(out, "{}", serde_json::to_string_pretty(&events)?)?,
        Output::Text => {
            writeln!(
                out,
                "{:<20}  {:<26}  {:<16}  {:<12}  {:<24}  GITOPS COMMIT",
                "TIME", "ACTION", "RELEASE", "COMMIT", "BY"
            )?;
            for e in &events {
                writeln!(
                    out,
                    "{:<20}  {:<26}  {:<16}  {:<12}  {:<24}  {}{}",
                    e.time,
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
