//! `status` (which release runs where) and `history` (the deploys of one pointer, or of every
//! pointer of an environment, from the commits' trailers). Both read the GitOps branch tip;
//! neither writes. Aliases are objects `{alias, type}` as the register (and `release get`)
//! holds them.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::io::Write;

use serde::Serialize;

use crate::cli::{HistoryArgs, StatusArgs};
use crate::deploy::history::{Event, pointer_events};
use crate::format::Alias;
use crate::gitops::ProjectRef;
use crate::gitops::find_register;
use crate::gitops::layout;
use crate::gitops::register::Register;
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

/// The registers `status` reads, each opened once: a repository's directory below
/// `releases/` is listed once, so a project without a register costs a set lookup, not two
/// walks of the tree; the aliases of a release deployed in several environments are read once.
#[derive(Default)]
struct Registers {
    /// Names directly below `releases/<repository>`, by repository.
    listed: HashMap<String, HashSet<String>>,
    /// Registers opened (`None`: the project has none, or it does not read), by project.
    opened: HashMap<String, Option<Register>>,
    /// Aliases by project and commit.
    aliases: HashMap<(String, String), Vec<Alias>>,
}

impl Registers {
    /// The aliases of release `id`, empty when it is not registered (or its register does
    /// not read: `status` shows what it can).
    fn aliases(
        &mut self,
        gitops: &crate::gitops::GitOps,
        tip: &Snapshot<'_>,
        id: &crate::ids::ReleaseId,
    ) -> Vec<Alias> {
        let project = format!("{}/{}", id.repository, id.project);
        let key = (project, id.commit.to_string());
        if let Some(a) = self.aliases.get(&key) {
            return a.clone();
        }
        let names = self
            .listed
            .entry(id.repository.to_string())
            .or_insert_with(|| {
                let dir = format!("{}/{}", layout::REGISTERS, id.repository);
                tip.entries(&dir)
                    .map(|e| e.into_iter().map(|(n, _)| n).collect())
                    .unwrap_or_default()
            });
        let name = id.project.as_str();
        let candidate = names.contains(name) || names.contains(&format!("{name}.yaml"));
        let register = self.opened.entry(key.0.clone()).or_insert_with(|| {
            candidate
                .then(|| {
                    find_register(
                        gitops,
                        tip,
                        &ProjectRef::Full(id.repository.clone(), id.project.clone()),
                    )
                    .ok()
                })
                .flatten()
        });
        let aliases = register
            .as_ref()
            .and_then(|r| r.find_commit(tip, &id.commit).ok().flatten())
            .map(|e| e.aliases)
            .unwrap_or_default();
        self.aliases.insert(key, aliases.clone());
        aliases
    }
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
    let policy = layout::load_policy(&gitops, &tip).ok();
    let envs: Vec<String> = match &policy {
        Some(p) => p.environments.iter().map(|e| e.name.to_string()).collect(),
        None => Vec::new(),
    };
    let filter: Option<Register> = match &args.project {
        Some(p) => Some(find_register(&gitops, &tip, p)?),
        None => None,
    };
    // An outcome can only come from a commit that has one noted: pointers of an environment and
    // project with none need no walk back to their last write (unless `--live` compares it),
    // which keeps a status of thousands of pointers from walking history once per pointer.
    let noted = gitops.noted_pairs()?;
    let mut rows = Vec::new();
    let mut registers = Registers::default();
    for env in envs
        .iter()
        .filter(|e| args.envs.is_empty() || args.envs.iter().any(|x| x.as_str() == *e))
    {
        for (path, bytes) in tip.files_named(&layout::apps_dir(env), layout::POINTER_FILE)? {
            if layout::pointer_env(&path) != Some(env.as_str()) {
                continue;
            }
            let p = layout::parse_pointer(&path, &bytes)?;
            if let Some(r) = &filter
                && (p.id.repository != r.repository || p.id.project != r.project)
            {
                continue;
            }
            let project = format!("{}/{}", p.id.repository, p.id.project);
            let (written_by, outcome) =
                if client.is_some() || noted.get(env).is_some_and(|p| p.contains(&project)) {
                    last_write(&gitops, &tip, &path, env, &project)?
                } else {
                    (None, None)
                };
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
            let aliases = registers.aliases(&gitops, &tip, &p.id);
            rows.push(Row {
                outcome,
                live,
                environment: env.clone(),
                project,
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
                    "{:<ew$}  {:<pw$}  {:>7}  {:<16}  {:<12}  {:<20}  {}{}{}",
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

/// `status` through `--server`: one project in the environments `--env` names (the API
/// answers one pointer at a time; `--live` asks Argo CD, which the server does not).
async fn status_through(
    server: &crate::settings::Server,
    args: &StatusArgs,
    settings: &Settings,
) -> crate::exit::Result<super::Outcome> {
    let (Some(project), false, false) = (&args.project, args.envs.is_empty(), args.live) else {
        return Err(crate::exit::InvalidInput(format!(
            "status with --server {}: expected PROJECT and at least one --env, and no --live (the API answers one environment and project at a time)",
            server.url
        ))
        .into());
    };
    let client = crate::client::Client::new(server, settings.deadline)?;
    let envs: Vec<String> = args.envs.iter().map(ToString::to_string).collect();
    let rows = crate::client::reads::status(&client, &envs, project).await?;
    let out = match settings.output {
        Output::Json => format!("{}\n", serde_json::to_string_pretty(&rows)?),
        Output::Text => crate::client::reads::status_text(&rows),
    };
    Ok(super::Outcome::ok(out.into_bytes()))
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
