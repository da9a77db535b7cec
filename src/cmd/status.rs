//! `status` (which release runs where) and `history` (one pointer's deploys, from the
//! commits' trailers). Both read the GitOps branch tip; neither writes.

use std::io::Write;

use serde::Serialize;

use crate::cli::{HistoryArgs, StatusArgs};
use crate::deploy::trailers;
use crate::gitops::find_register;
use crate::gitops::layout::{self, load_pointer};
use crate::gitops::register::{Entry, Register};
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
        let paths = layout::pointers_in(&tip, env)?;
        tip.prefetch(&paths)?;
        for path in paths {
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

#[derive(Serialize)]
struct Event {
    gitops_commit: String,
    time: String,
    author: String,
    action: String,
    release_commit: Option<String>,
    number: Option<u64>,
    label: String,
    subject: String,
    /// Rules let pass with `--override`, and the reason recorded.
    overrides: Vec<String>,
    override_reason: Option<String>,
    /// For an unblock: the release that was unblocked.
    unblocked: Option<String>,
}

impl Event {
    /// What the text view appends: the overrides and the release unblocked, if any.
    fn notes(&self) -> String {
        let mut notes = Vec::new();
        if let Some(u) = &self.unblocked {
            notes.push(format!("unblocked release {u}"));
        }
        if !self.overrides.is_empty() {
            notes.push(format!(
                "override {} (reason: {})",
                self.overrides.join(", "),
                self.override_reason.as_deref().unwrap_or("")
            ));
        }
        let mut out = String::new();
        for n in notes {
            out.push_str("  ");
            out.push_str(&crate::text::printable(&n, 200));
        }
        out
    }
}

pub fn history(args: &HistoryArgs, settings: &Settings) -> crate::exit::Result<super::Outcome> {
    let gitops = settings.open_gitops()?;
    let (tip, reg) = gitops.fetch_register(&args.project)?;
    let path = layout::pointer_path(&args.env, &reg.repository, &reg.project);
    let mut events = Vec::new();
    for change in tip.history(&path)? {
        let change = change?;
        let t = trailers::parse(&change.message);
        // Prefer what the trailers say; a hand edit has none, so read the pointer itself.
        let release_commit = trailers::get(&t, "Release-Commit")
            .map(str::to_owned)
            .or_else(|| {
                change
                    .content
                    .as_deref()
                    .and_then(|b| pointer::parse(&path, b).ok())
                    .map(|p| p.id.commit.to_string())
            });
        let entry = release_commit
            .as_deref()
            .and_then(|c| reg.releases.iter().find(|e| e.commit.as_str() == c));
        let unblocked = trailers::get(&t, "Unblocked-Release").map(|c| {
            reg.releases
                .iter()
                .find(|e| e.commit.as_str() == c)
                .map_or_else(|| format!("commit {c}"), Entry::label)
        });
        events.push(Event {
            overrides: t
                .iter()
                .filter(|(k, _)| k == "Override")
                .map(|(_, v)| v.clone())
                .collect(),
            override_reason: trailers::get(&t, "Override-Reason").map(str::to_owned),
            unblocked,
            gitops_commit: change.commit.to_string(),
            time: jiff::Timestamp::from_second(change.time)
                .map(|t| t.to_string())
                .unwrap_or_default(),
            author: change.author.clone(),
            action: trailers::get(&t, "Action")
                .unwrap_or(if change.content.is_none() {
                    "removed"
                } else {
                    "edited outside releasectl"
                })
                .to_owned(),
            number: entry.map(|e| e.number),
            label: entry.map_or_else(|| "unregistered".into(), Entry::label),
            release_commit,
            subject: change.message.lines().next().unwrap_or("").to_owned(),
        });
    }
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
