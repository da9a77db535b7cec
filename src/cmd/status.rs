//! `status` (which release runs where) and `history` (the deploys of one pointer, or of every
//! pointer of an environment, from the commits' trailers). Both read the GitOps branch tip;
//! neither writes. Aliases are objects `{alias, type}` as the register (and `release get`)
//! holds them.

use std::io::Write;

use serde::Serialize;

use crate::cli::{HistoryArgs, StatusArgs};
use crate::deploy::trailers;
use crate::format::Alias;
use crate::gitops::ProjectRef;
use crate::gitops::find_register;
use crate::gitops::layout::{self, load_pointer};
use crate::gitops::register::{Entry, Register};
use crate::gitops::snapshot::Snapshot;
use crate::pointer;
use crate::settings::{Output, Settings};

#[derive(Serialize)]
struct Row {
    environment: String,
    project: String,
    number: Option<u64>,
    aliases: Vec<Alias>,
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
    let mut registers: std::collections::BTreeMap<String, Option<Register>> =
        std::collections::BTreeMap::new();
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
            let full = format!("{}/{}", p.id.repository, p.id.project);
            let register = registers.entry(full.clone()).or_insert_with(|| {
                full.parse::<ProjectRef>()
                    .ok()
                    .and_then(|r| find_register(&gitops, &tip, &r).ok())
            });
            let aliases = register
                .as_ref()
                .and_then(|r| r.releases.iter().find(|e| e.commit == p.id.commit))
                .map(|e| e.aliases.clone())
                .unwrap_or_default();
            rows.push(Row {
                environment: env.clone(),
                project: format!("{}/{}", p.id.repository, p.id.project),
                number: p
                    .annotations
                    .get(pointer::ANN_NUMBER)
                    .and_then(|n| n.parse().ok()),
                aliases,
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
                    if r.aliases.is_empty() {
                        "-".to_owned()
                    } else {
                        r.aliases
                            .iter()
                            .map(|a| a.alias.as_str())
                            .collect::<Vec<_>>()
                            .join(",")
                    },
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
    /// `company/monorepo/auth-service`.
    project: String,
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
    let mut events = Vec::new();
    let whole = args.project.is_none();
    if let Some(project) = &args.project {
        let (tip, reg) = gitops.fetch_register(project)?;
        events_of(&tip, &reg, &args.env, &mut events)?;
    } else {
        let tip = gitops.fetch()?;
        for project in env_projects(&tip, args.env.as_str())? {
            let reg = find_register(&gitops, &tip, &project)?;
            events_of(&tip, &reg, &args.env, &mut events)?;
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
    for path in tip.list(layout::REGISTERS)? {
        if let Some(full) = layout::register_of(&path) {
            names.insert(full.to_owned());
        }
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

/// The events of `reg`'s pointer in `env`, newest first.
fn events_of(
    tip: &Snapshot<'_>,
    reg: &Register,
    env: &crate::policy::EnvName,
    events: &mut Vec<Event>,
) -> crate::exit::Result<()> {
    let path = layout::pointer_path(env, &reg.repository, &reg.project);
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
            project: reg.full_name(),
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
    Ok(())
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
