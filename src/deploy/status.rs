//! What runs where (`status`): one row per pointer of the GitOps branch tip, in the policy's
//! order of environments, then path order; the same rows for the CLI (`status`), the server
//! (`GET /v1/deployments`) and the CLI through a server, and one text table for both CLIs.
//!
//! Invariants: no history is walked unless asked for (`--live` compares the commit that last
//! wrote each pointer with Argo CD's): the outcome `--wait` noted is the one on the newest
//! noted commit that left the pointer as it is now (same blob), found without walking back;
//! every register is opened once.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::format::Alias;
use crate::gitops::layout;
use crate::gitops::register::Register;
use crate::gitops::snapshot::Snapshot;
use crate::gitops::{GitOps, ProjectRef, find_register};
use crate::pointer;

#[derive(Debug, Serialize, Deserialize)]
pub struct Row {
    pub environment: String,
    pub project: String,
    pub number: Option<u64>,
    pub aliases: Vec<Alias>,
    pub commit: String,
    pub digest: Option<String>,
    pub deployed_at: Option<String>,
    pub deployed_by: Option<String>,
    pub blocked: Vec<String>,
    /// How `--wait` saw the deploy that wrote the pointer (succeeded, failed, timed_out).
    pub outcome: Option<String>,
    /// `--live`: what Argo CD says now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub live: Option<Live>,
}

/// Argo CD's view of a pointer's Application (`status --live`).
#[derive(Debug, Serialize, Deserialize)]
pub struct Live {
    pub application: String,
    pub sync: Option<String>,
    pub health: Option<String>,
    pub revision: Option<String>,
    /// Whether the synced revision holds the pointer as the branch tip does (the same file,
    /// byte for byte): Argo CD renders what the pointer says now.
    pub at_pointer: bool,
    pub error: Option<String>,
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
    fn aliases(&mut self, tip: &Snapshot<'_>, id: &crate::ids::ReleaseId) -> Vec<Alias> {
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
                    Register::open(tip, &id.repository, &id.project)
                        .ok()
                        .flatten()
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

/// A row and the path of its pointer.
pub struct Found {
    pub row: Row,
    pub path: String,
}

/// The rows of the pointers at `tip` in `envs` (empty: every environment of the policy) of
/// `project` (none: every project).
pub fn rows(
    gitops: &GitOps,
    tip: &Snapshot<'_>,
    envs: &[String],
    project: Option<&ProjectRef>,
) -> crate::exit::Result<Vec<Found>> {
    let policy = layout::load_policy(gitops, tip).ok();
    let all: Vec<String> = match &policy {
        Some(p) => p.environments.iter().map(|e| e.name.to_string()).collect(),
        None => Vec::new(),
    };
    let filter: Option<Register> = match project {
        Some(p) => Some(find_register(gitops, tip, p)?),
        None => None,
    };
    // An outcome can only come from a commit that has one noted: pointers of an environment and
    // project with none cost nothing more.
    let noted = gitops.outcomes_by_pair()?;
    let mut rows = Vec::new();
    let mut registers = Registers::default();
    for env in all
        .iter()
        .filter(|e| envs.is_empty() || envs.iter().any(|x| x == *e))
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
            let outcome = match noted.get(&(env.clone(), project.clone())) {
                Some(list) => gitops
                    .noted_write(tip, &path, list)?
                    .map(|o| o.state.name().to_owned()),
                None => None,
            };
            let aliases = registers.aliases(tip, &p.id);
            rows.push(Found {
                path: path.clone(),
                row: Row {
                    outcome,
                    live: None,
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
                },
            });
        }
    }
    Ok(rows)
}

/// The text table of `status`: a header, then a line per row with its outcome, Argo CD's live
/// view and the releases blocked there.
#[must_use]
pub fn text(rows: &[Row]) -> String {
    let mut out = String::new();
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
    let _ = writeln!(
        out,
        "{:<ew$}  {:<pw$}  {:>7}  {:<16}  {:<12}  {:<20}  BY",
        "ENVIRONMENT", "PROJECT", "RELEASE", "ALIASES", "COMMIT", "DEPLOYED"
    );
    for r in rows {
        let _ = writeln!(
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
            &r.commit[..12.min(r.commit.len())],
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
                        .map(|c| &c[..12.min(c.len())])
                        .collect::<Vec<_>>()
                        .join(",")
                )
            }
        );
    }
    out
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
                        " (the synced revision does not hold this pointer)"
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
