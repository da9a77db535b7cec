//! `status` (which release runs where) and `history` (one pointer's deploys, from the
//! commits' trailers). Both read the GitOps branch tip; neither writes.

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
}

pub fn status(args: &StatusArgs, settings: &Settings) -> crate::exit::Result<super::Outcome> {
    let gitops = settings.open_gitops()?;
    let tip = gitops.fetch()?;
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
            rows.push(Row {
                environment: env.clone(),
                project: format!("{}/{}", p.id.repository, p.id.project),
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
                    "{:<ew$}  {:<pw$}  {:>7}  {:<16}  {:<12}  {:<20}  {}{}",
                    r.environment,
                    r.project,
                    r.number.map_or("-".into(), |n| n.to_string()),
                    r.aliases.as_deref().unwrap_or("-"),
                    &r.commit[..12],
                    r.deployed_at.as_deref().unwrap_or("-"),
                    r.deployed_by.as_deref().unwrap_or("-"),
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

pub fn history(args: &HistoryArgs, settings: &Settings) -> crate::exit::Result<super::Outcome> {
    let gitops = settings.open_gitops()?;
    let (tip, reg) = gitops.fetch_register(&args.project)?;
    let path = layout::pointer_path(&args.env, &reg.repository, &reg.project);
    let events = crate::deploy::history::events(&tip, &reg, &path)?;
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
