//! `release get` and `release list`: read the register at the GitOps branch tip (`get`
//! reads a bounded number of files, `list` all of them); `release migrate`: rewrite
//! registers of formats 1 and 2 in format 3 (docs/register.md).

use std::io::Write;

use crate::cli::{GetArgs, ListArgs, MigrateArgs};
use crate::gitops::register::{Entry, Register, all_registers};
use crate::gitops::{Author, Step, find_register};
use crate::settings::{Output, Settings};

fn aliases(e: &Entry) -> String {
    if e.aliases.is_empty() {
        "-".into()
    } else {
        e.aliases
            .iter()
            .map(|a| a.alias.as_str())
            .collect::<Vec<_>>()
            .join(",")
    }
}

pub async fn get(args: &GetArgs, settings: &Settings) -> crate::exit::Result<super::Outcome> {
    if let Some(server) = &settings.server {
        let client = crate::client::Client::new(server, settings.deadline)?;
        let r = crate::client::reads::release(&client, &args.project, &args.release_id.to_string())
            .await?;
        return write_get(&r.repository, &r.project, &r.entry, settings.output);
    }
    let gitops = settings.open_gitops()?;
    let (tip, reg) = gitops.fetch_register(&args.project)?;
    let entry = &reg.resolve(&tip, &args.release_id)?;
    write_get(
        reg.repository.as_str(),
        reg.project.as_str(),
        entry,
        settings.output,
    )
}

/// What `release get` prints, for either path.
fn write_get(
    repository: &str,
    project: &str,
    entry: &Entry,
    output: Output,
) -> crate::exit::Result<super::Outcome> {
    let mut out = Vec::new();
    match output {
        Output::Json => {
            let mut v = serde_json::to_value(entry)?;
            v["repository"] = repository.into();
            v["project"] = project.into();
            writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
        }
        Output::Text => {
            writeln!(
                out,
                "Release     {} of {repository}/{project}",
                entry.number
            )?;
            writeln!(out, "Commit      {}", entry.commit)?;
            writeln!(out, "Digest      {}", entry.digest)?;
            writeln!(out, "Aliases     {}", aliases(entry))?;
            writeln!(out, "Created     {}", entry.created_at)?;
            for t in &entry.triggers {
                writeln!(
                    out,
                    "Trigger     {} {}{}{} at {}",
                    t.kind.map_or("-", |k| k.as_str()),
                    t.tag
                        .as_deref()
                        .map(|x| format!("tag {x} "))
                        .unwrap_or_default(),
                    t.branch
                        .as_deref()
                        .map(|x| format!("branch {x} "))
                        .unwrap_or_default(),
                    t.triggered_by
                        .as_deref()
                        .map(|x| format!("by {x}"))
                        .unwrap_or_default(),
                    t.at
                )?;
            }
        }
    }
    Ok(super::Outcome::ok(out))
}

pub async fn list(args: &ListArgs, settings: &Settings) -> crate::exit::Result<super::Outcome> {
    if let Some(server) = &settings.server {
        let client = crate::client::Client::new(server, settings.deadline)?;
        let (repository, project, all) =
            crate::client::reads::releases(&client, &args.project).await?;
        return write_list(&repository, &project, &all, settings.output);
    }
    let gitops = settings.open_gitops()?;
    let (tip, reg) = gitops.fetch_register(&args.project)?;
    let all = reg.entries(&tip)?;
    write_list(
        reg.repository.as_str(),
        reg.project.as_str(),
        &all,
        settings.output,
    )
}

/// What `release list` prints, newest first, for either path.
fn write_list(
    repository: &str,
    project: &str,
    all: &[Entry],
    output: Output,
) -> crate::exit::Result<super::Outcome> {
    let mut out = Vec::new();
    let mut entries: Vec<&Entry> = all.iter().collect();
    entries.sort_by_key(|e| std::cmp::Reverse(e.number));
    match output {
        Output::Json => {
            let v = serde_json::json!({
                "repository": repository,
                "project": project,
                "releases": entries,
            });
            writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
        }
        Output::Text => {
            let w = entries
                .iter()
                .map(|e| aliases(e).len())
                .max()
                .unwrap_or(7)
                .max(7);
            writeln!(
                out,
                "{:>6}  {:<12}  {:<w$}  {:<20}  DIGEST",
                "NUMBER", "COMMIT", "ALIASES", "CREATED"
            )?;
            for e in entries {
                writeln!(
                    out,
                    "{:>6}  {:<12}  {:<w$}  {:<20}  {}",
                    e.number,
                    e.commit.short(),
                    aliases(e),
                    e.created_at,
                    e.digest.short()
                )?;
            }
        }
    }
    Ok(super::Outcome::ok(out))
}

/// `release migrate PROJECT | --all`: one commit that rewrites the named register, or every
/// register of format 1 or 2, in format 3 (docs/register.md §5, §6). Idempotent: with nothing left to
/// migrate it writes nothing.
pub async fn migrate(
    args: &MigrateArgs,
    settings: &Settings,
) -> crate::exit::Result<super::Outcome> {
    if let Some(server) = &settings.server {
        return Err(crate::exit::InvalidInput(format!(
            "release migrate with --server {}: the API has no migration; expected --gitops (without --server): it rewrites the repository's registers itself",
            server.url
        ))
        .into());
    }
    let gitops = settings.open_gitops()?;
    let actor = settings.actor.as_deref().unwrap_or("releasectl");
    let author = Author::new(actor, settings.unix_now());
    let landed = gitops
        .transact(&author, settings.deadline, async |tip| {
            let registers: Vec<Register> = match &args.project {
                Some(project) => vec![find_register(&gitops, tip, project)?],
                None => {
                    let mut out = Vec::new();
                    for f in all_registers(tip)? {
                        out.extend(Register::open(tip, &f.repository, &f.project)?);
                    }
                    out
                }
            };
            let mut edits = Vec::new();
            let mut migrated = Vec::new();
            for reg in &registers {
                if let Some(e) = reg.migration(tip)? {
                    edits.extend(e);
                    migrated.push(reg.full_name());
                }
            }
            if migrated.is_empty() {
                return Ok(Step::Done(migrated));
            }
            let message = format!(
                "Migrate {} register(s) to format 3\n\n{}\n\nMigrated by: {actor}\n\nAction: migrate-register\n",
                migrated.len(),
                migrated
                    .iter()
                    .map(|m| format!("- {m}"))
                    .collect::<Vec<_>>()
                    .join("\n")
            );
            Ok(Step::Commit {
                edits,
                message,
                result: migrated,
            })
        })
        .await?;
    let mut out = Vec::new();
    match settings.output {
        Output::Json => {
            let v = serde_json::json!({
                "migrated": landed.result,
                "commit": landed.commit.map(|c| c.to_string()),
            });
            writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
        }
        Output::Text => {
            for m in &landed.result {
                writeln!(out, "migrated {m}")?;
            }
            match landed.commit {
                Some(c) => writeln!(out, "{} register(s) migrated in {c}", landed.result.len())?,
                None => writeln!(out, "nothing to migrate: every register is in format 3")?,
            }
        }
    }
    Ok(super::Outcome::ok(out))
}
