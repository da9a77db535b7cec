//! The environments × projects matrix: what runs where (release number and aliases, age,
//! blocked releases), environments on hold, approvals pending for the release waiting to
//! enter an environment, and drift between an environment and the one before it.
//!
//! Invariants: everything is read from one fetch of the branch tip on the writer thread; a
//! project appears when a pointer of it exists in some environment; "waiting" means the
//! release running in the environment's first `requires` environment (else the one before it
//! in environments.yaml) that is not running here.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::sync::Arc;

use super::html::{age, badge, esc};
use crate::gitops::ProjectRef;
use crate::gitops::layout::{self, load_approvals, load_pointer};
use crate::serve::State;
use crate::serve::http::Reply;
use crate::serve::routes::{err, on_writer};
use crate::text::url_escaped;

/// One environment as the matrix heads its column.
#[derive(Debug, Clone)]
pub struct Column {
    pub name: String,
    pub hold: Option<String>,
    pub requires_approval: bool,
    pub required: usize,
    /// The environment releases come from: the first `requires`, else the previous one.
    pub upstream: Option<String>,
}

/// What runs in one environment for one project.
#[derive(Debug, Clone)]
pub struct Cell {
    pub number: Option<u64>,
    pub commit: String,
    pub aliases: Vec<String>,
    pub deployed_at: Option<String>,
    pub deployed_by: Option<String>,
    pub blocked: Vec<String>,
    /// Approvals of the release waiting to come here: (its number, live approvals).
    pub pending: Option<(u64, usize)>,
}

/// The whole matrix.
pub struct Matrix {
    pub columns: Vec<Column>,
    /// `company/monorepo/auth-service` → environment → cell.
    pub rows: BTreeMap<String, BTreeMap<String, Cell>>,
    pub now: jiff::Timestamp,
}

impl Matrix {
    /// The release running in `env` for `project`.
    #[must_use]
    pub fn cell(&self, project: &str, env: &str) -> Option<&Cell> {
        self.rows.get(project).and_then(|r| r.get(env))
    }
}

/// Reads the matrix from the branch tip.
pub async fn load(state: &Arc<State>) -> Result<Matrix, Reply> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let reply = on_writer(state, move |g, _, clock| {
        Box::pin(async move {
            let tip = g.fetch().map_err(|e| err(&e.into()))?;
            let policy = layout::load_policy(g, &tip).map_err(|e| err(&e))?;
            let mut columns = Vec::new();
            let mut previous: Option<String> = None;
            for env in &policy.environments {
                let name = env.name.to_string();
                columns.push(Column {
                    name: name.clone(),
                    hold: env.hold.clone(),
                    requires_approval: env.requires_approval,
                    required: env.approvals.min,
                    upstream: env
                        .requires
                        .first()
                        .map(ToString::to_string)
                        .or(previous.take()),
                });
                previous = Some(name);
            }
            let mut rows: BTreeMap<String, BTreeMap<String, Cell>> = BTreeMap::new();
            let mut registers = BTreeMap::new();
            for col in &columns {
                let paths = layout::pointers_in(&tip, &col.name).map_err(|e| err(&e))?;
                for path in paths {
                    let Some(p) = load_pointer(&tip, &path).map_err(|e| err(&e))? else {
                        continue;
                    };
                    let project = format!("{}/{}", p.id.repository, p.id.project);
                    let reg = registers.entry(project.clone()).or_insert_with(|| {
                        crate::gitops::find_register(
                            g,
                            &tip,
                            &ProjectRef::Full(p.id.repository.clone(), p.id.project.clone()),
                        )
                        .ok()
                    });
                    let entry = reg
                        .as_ref()
                        .and_then(|r| r.find_commit(&tip, &p.id.commit).ok().flatten());
                    rows.entry(project).or_default().insert(
                        col.name.clone(),
                        Cell {
                            number: entry.as_ref().map(|e| e.number).or_else(|| {
                                p.annotations
                                    .get(crate::pointer::ANN_NUMBER)
                                    .and_then(|n| n.parse().ok())
                            }),
                            commit: p.id.commit.to_string(),
                            aliases: entry
                                .map(|e| e.aliases.into_iter().map(|a| a.alias).collect())
                                .unwrap_or_default(),
                            deployed_at: p
                                .annotations
                                .get(crate::pointer::ANN_DEPLOYED_AT)
                                .cloned(),
                            deployed_by: p
                                .annotations
                                .get(crate::pointer::ANN_DEPLOYED_BY)
                                .cloned(),
                            blocked: p.blocked(),
                            pending: None,
                        },
                    );
                }
            }
            // Approvals of the release waiting at each approval-gated environment.
            for (project, cells) in &mut rows {
                let Some(Some(reg)) = registers.get(project) else {
                    continue;
                };
                for col in columns.iter().filter(|c| c.requires_approval) {
                    let Some(waiting) = col.upstream.as_ref().and_then(|u| cells.get(u)) else {
                        continue;
                    };
                    if cells
                        .get(&col.name)
                        .is_some_and(|c| c.commit == waiting.commit)
                    {
                        continue;
                    }
                    let Ok(Some(entry)) = reg.find_commit(
                        &tip,
                        &waiting
                            .commit
                            .parse()
                            .map_err(|_| Reply::internal("a pointer's commit"))?,
                    ) else {
                        continue;
                    };
                    let env: crate::policy::EnvName = col
                        .name
                        .parse()
                        .map_err(|_| Reply::internal("an environment name"))?;
                    let path =
                        layout::approvals_path(&env, &reg.repository, &reg.project, &entry.commit);
                    let live = load_approvals(&tip, &path)
                        .map_err(|e| err(&e))?
                        .iter()
                        .flat_map(|f| f.approvals.iter())
                        .filter(|a| {
                            a.digest == entry.digest
                                && a.expires_at
                                    .parse::<jiff::Timestamp>()
                                    .is_ok_and(|t| t > clock.now)
                        })
                        .count();
                    let cell = cells.entry(col.name.clone()).or_insert_with(|| Cell {
                        number: None,
                        commit: String::new(),
                        aliases: Vec::new(),
                        deployed_at: None,
                        deployed_by: None,
                        blocked: Vec::new(),
                        pending: None,
                    });
                    cell.pending = Some((entry.number, live));
                }
            }
            let _ = tx.send(Matrix {
                columns,
                rows,
                now: clock.now,
            });
            Ok(Reply::ok(serde_json::Value::Null))
        })
    })
    .await?;
    match rx.await {
        Ok(m) => Ok(m),
        Err(_) => Err(reply),
    }
}

/// The label of a cell's release: `#12 v1.2.0, main`.
fn release_label(cell: &Cell) -> String {
    let mut out = match cell.number {
        Some(n) => format!("<span class=\"num\">#{n}</span>"),
        None => format!(
            "<span class=\"num\">{}</span>",
            esc(&cell.commit.chars().take(12).collect::<String>())
        ),
    };
    if !cell.aliases.is_empty() {
        let _ = write!(out, " {}", esc(&cell.aliases.join(", ")));
    }
    out
}

/// The matrix as an HTML table (plus a legend of environments on hold).
#[must_use]
pub fn render(m: &Matrix) -> String {
    let mut out = String::from("<h1>Environments × projects</h1>");
    if m.rows.is_empty() {
        out.push_str("<p class=\"muted\">No release runs anywhere yet.</p>");
    }
    out.push_str("<table id=\"matrix\"><thead><tr><th>Project</th>");
    for c in &m.columns {
        let _ = write!(out, "<th>{}", esc(&c.name));
        if let Some(reason) = &c.hold {
            let _ = write!(
                out,
                " <span class=\"badge held\" title=\"{}\">held</span>",
                esc(reason)
            );
        }
        if c.requires_approval {
            let _ = write!(
                out,
                " <span class=\"muted\">({} approval{})</span>",
                c.required,
                if c.required == 1 { "" } else { "s" }
            );
        }
        out.push_str("</th>");
    }
    out.push_str("</tr></thead><tbody>");
    let known: BTreeSet<&str> = m.columns.iter().map(|c| c.name.as_str()).collect();
    for (project, cells) in &m.rows {
        let _ = write!(
            out,
            "<tr data-project=\"{}\"><td><a href=\"/ui/project/{}\">{}</a></td>",
            esc(project),
            esc(&url_escaped(project)),
            esc(project)
        );
        for c in &m.columns {
            let _ = write!(out, "<td data-env=\"{}\">", esc(&c.name));
            match cells.get(&c.name) {
                Some(cell) if !cell.commit.is_empty() => {
                    out.push_str(&release_label(cell));
                    if let Some(a) = cell.deployed_at.as_deref().and_then(|t| age(t, m.now)) {
                        let _ = write!(
                            out,
                            " <span class=\"muted\" title=\"{}\">{} ago</span>",
                            esc(cell.deployed_at.as_deref().unwrap_or_default()),
                            esc(&a)
                        );
                    }
                    if let Some(by) = &cell.deployed_by {
                        let _ = write!(out, "<br><span class=\"muted\">by {}</span>", esc(by));
                    }
                    if !cell.blocked.is_empty() {
                        let _ = write!(
                            out,
                            "<br><span class=\"badge blocked\" title=\"{}\">blocked: {}</span>",
                            esc(&cell.blocked.join(", ")),
                            cell.blocked.len()
                        );
                    }
                    if let Some(up) = c.upstream.as_deref().filter(|u| known.contains(u))
                        && let Some(other) = cells.get(up).filter(|o| !o.commit.is_empty())
                        && other.commit != cell.commit
                    {
                        let _ = write!(
                            out,
                            "<br><a class=\"badge drift\" href=\"/ui/diff/{}?from={}&amp;to={}\">drift from {}</a>",
                            esc(&url_escaped(project)),
                            esc(&url_escaped(up)),
                            esc(&url_escaped(&c.name)),
                            esc(up)
                        );
                    }
                }
                _ => out.push_str("<span class=\"muted\">—</span>"),
            }
            if let Some((n, live)) = cell_pending(cells.get(&c.name)) {
                let _ = write!(
                    out,
                    "<br>{}",
                    badge(
                        "pending",
                        &format!("#{n} awaits approval {live}/{}", c.required)
                    )
                );
            }
            out.push_str("</td>");
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table>");
    out
}

fn cell_pending(cell: Option<&Cell>) -> Option<(u64, usize)> {
    cell.and_then(|c| c.pending)
}
