//! `release get` and `release list`: read the register at the GitOps branch tip.

use std::io::Write;

use crate::cli::{GetArgs, Global, ListArgs, Output};
use crate::error::InvalidInput;
use crate::gitops::register::{self, Entry, Register};
use crate::gitops::{GitError, GitOps, Snapshot};
use crate::ids::{Project, Repository};

/// Opens the GitOps repository named by `--gitops`.
pub fn open_gitops(global: &Global) -> anyhow::Result<GitOps> {
    let url = global.gitops.as_deref().ok_or_else(|| {
        InvalidInput("no GitOps repository: set --gitops or RELEASECTL_GITOPS".into())
    })?;
    Ok(GitOps::open(url, &global.gitops_branch)?)
}

/// Finds a project's register: `repository/project` directly, or a bare project name that
/// must be unique across repositories.
pub fn find_register(
    gitops: &GitOps,
    tip: &Snapshot<'_>,
    project: &str,
) -> anyhow::Result<Register> {
    let read = |path: &str| -> Result<Option<Vec<u8>>, GitError> {
        tip.read(path).map_err(|e| GitError::BadFile {
            url: gitops.url().to_owned(),
            path: path.to_owned(),
            commit: tip.tip_str(),
            reason: e.message().to_owned(),
        })
    };
    let (repository, name) = if let Some((repo, name)) = project.rsplit_once('/') {
        let repository: Repository = repo.parse()?;
        let name: Project = name.parse()?;
        (repository, name)
    } else {
        let name: Project = project.parse()?;
        let suffix = format!("/{name}.yaml");
        let all = tip.list("releases").map_err(|e| GitError::BadFile {
            url: gitops.url().to_owned(),
            path: "releases".into(),
            commit: tip.tip_str(),
            reason: e.message().to_owned(),
        })?;
        let matches: Vec<&String> = all.iter().filter(|p| p.ends_with(&suffix)).collect();
        let repository = match matches.as_slice() {
            [one] => one["releases/".len()..one.len() - suffix.len()].parse::<Repository>()?,
            [] => {
                return Err(InvalidInput(format!(
                    "no project {name} is registered in {} (branch {})",
                    gitops.url(),
                    gitops.branch()
                ))
                .into());
            }
            many => {
                let names: Vec<String> = many
                    .iter()
                    .map(|p| p["releases/".len()..p.len() - ".yaml".len()].to_owned())
                    .collect();
                return Err(InvalidInput(format!(
                    "project {name} is ambiguous: expected one of {}",
                    names.join(", ")
                ))
                .into());
            }
        };
        (repository, name)
    };
    let path = register::path(&repository, &name);
    match read(&path)? {
        Some(bytes) => Ok(Register::parse(&path, &bytes, &repository, &name)?),
        None => Err(InvalidInput(format!(
            "no project {repository}/{name} is registered in {} (no {path})",
            gitops.url()
        ))
        .into()),
    }
}

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

pub fn get(args: &GetArgs, global: &Global, out: &mut dyn Write) -> anyhow::Result<()> {
    let gitops = open_gitops(global)?;
    let tip = gitops.fetch()?;
    let reg = find_register(&gitops, &tip, &args.project)?;
    let entry = reg.resolve(&args.release_id)?;
    match global.output {
        Output::Json => {
            let mut v = serde_json::to_value(entry)?;
            v["repository"] = reg.repository.to_string().into();
            v["project"] = reg.project.to_string().into();
            writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
        }
        Output::Text => {
            writeln!(out, "Release     {} of {}", entry.number, reg.full_name())?;
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
    Ok(())
}

pub fn list(args: &ListArgs, global: &Global, out: &mut dyn Write) -> anyhow::Result<()> {
    let gitops = open_gitops(global)?;
    let tip = gitops.fetch()?;
    let reg = find_register(&gitops, &tip, &args.project)?;
    let mut entries: Vec<&Entry> = reg.releases.iter().collect();
    entries.sort_by_key(|e| std::cmp::Reverse(e.number));
    match global.output {
        Output::Json => {
            let v = serde_json::json!({
                "repository": reg.repository.to_string(),
                "project": reg.project.to_string(),
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
    Ok(())
}
