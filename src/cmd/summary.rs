//! `summary`: how many deployments each environment has seen and how they went, from the
//! branch's commit trailers and the outcomes `--wait` recorded (docs/design.md §7,
//! "Outcomes").
//!
//! The counts, per environment and overall:
//! - `deployments`: commits by releasectl that deployed a release there (deploy, auto-deploy,
//!   a group, promote), one per project; rollbacks and unblocks are not deployments;
//! - `active_services`: projects whose pointer is in the environment at the branch tip;
//! - `completed`: deployments whose recorded outcome is succeeded;
//! - `failed`: deployments whose recorded outcome is failed or timed out;
//! - `unverified`: deployments with no recorded outcome (made without `--wait`);
//! - `rolled_back`: rollbacks (releasectl's, manual or automatic on failure).

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;

use serde::Serialize;

use crate::deploy::trailers;
use crate::gitops::layout;
use crate::gitops::notes::State;
use crate::settings::{Output, Settings};

#[derive(Debug, Default, Clone, Serialize, PartialEq, Eq)]
struct Counts {
    deployments: u64,
    active_services: u64,
    completed: u64,
    failed: u64,
    unverified: u64,
    rolled_back: u64,
}

impl Counts {
    fn add(&mut self, other: &Self) {
        self.deployments += other.deployments;
        self.completed += other.completed;
        self.failed += other.failed;
        self.unverified += other.unverified;
        self.rolled_back += other.rolled_back;
    }
}

#[derive(Serialize)]
struct View {
    environments: BTreeMap<String, Counts>,
    overall: Counts,
}

const DEPLOYS: &[&str] = &["deploy", "auto-deploy", "deploy-group", "promote"];

pub fn summary(settings: &Settings) -> crate::exit::Result<super::Outcome> {
    if let Some(server) = &settings.server {
        return Err(crate::exit::InvalidInput(format!(
            "summary with --server {}: the API has no summary; expected --gitops (without --server) to read the repository, or the server's dashboard",
            server.url
        ))
        .into());
    }
    let gitops = settings.open_gitops()?;
    let tip = gitops.fetch()?;
    gitops.fetch_notes()?;
    let mut per_env: BTreeMap<String, Counts> = BTreeMap::new();
    let mut order: Vec<String> = layout::load_policy(&gitops, &tip)
        .map(|p| p.environments.iter().map(|e| e.name.to_string()).collect())
        .unwrap_or_default();
    let mut everywhere: BTreeSet<String> = BTreeSet::new();
    for env in &order {
        let paths = layout::pointers_in(&tip, env)?;
        for p in &paths {
            if let Some(ptr) = layout::load_pointer(&tip, p)? {
                everywhere.insert(format!("{}/{}", ptr.id.repository, ptr.id.project));
            }
        }
        per_env.entry(env.clone()).or_default().active_services = paths.len() as u64;
    }
    if let Some(t) = tip.tip {
        for oid in gitops.range(None, t)? {
            let info = gitops.commit_info(oid)?;
            let t = trailers::parse(&info.message);
            let Some(action) = trailers::get(&t, "Action") else {
                continue;
            };
            let values = |key: &str| -> Vec<&str> {
                t.iter()
                    .filter(|(k, _)| k == key)
                    .map(|(_, v)| v.as_str())
                    .collect()
            };
            let outcomes = gitops.outcomes(oid);
            for env in values("Environment") {
                if !order.iter().any(|e| e == env) {
                    order.push(env.to_owned());
                }
                let counts = per_env.entry(env.to_owned()).or_default();
                for project in values("Project") {
                    if action == "rollback" {
                        counts.rolled_back += 1;
                        continue;
                    }
                    if !DEPLOYS.contains(&action) {
                        continue;
                    }
                    counts.deployments += 1;
                    match outcomes
                        .iter()
                        .find(|o| o.environment == env && o.project == project)
                        .map(|o| o.state)
                    {
                        Some(State::Succeeded) => counts.completed += 1,
                        Some(State::Failed | State::TimedOut) => counts.failed += 1,
                        None => counts.unverified += 1,
                    }
                }
            }
        }
    }
    let mut overall = Counts::default();
    for c in per_env.values() {
        overall.add(c);
    }
    overall.active_services = everywhere.len() as u64;
    let mut out = Vec::new();
    match settings.output {
        Output::Json => {
            let view = View {
                environments: per_env.clone(),
                overall: overall.clone(),
            };
            writeln!(out, "{}", serde_json::to_string_pretty(&view)?)?;
        }
        Output::Text => {
            let w = order.iter().map(String::len).max().unwrap_or(7).max(11);
            writeln!(
                out,
                "{:<w$}  {:>11}  {:>6}  {:>9}  {:>6}  {:>10}  {:>11}",
                "ENVIRONMENT",
                "DEPLOYMENTS",
                "ACTIVE",
                "COMPLETED",
                "FAILED",
                "UNVERIFIED",
                "ROLLED BACK"
            )?;
            let row = |out: &mut Vec<u8>, name: &str, c: &Counts| {
                writeln!(
                    out,
                    "{:<w$}  {:>11}  {:>6}  {:>9}  {:>6}  {:>10}  {:>11}",
                    name,
                    c.deployments,
                    c.active_services,
                    c.completed,
                    c.failed,
                    c.unverified,
                    c.rolled_back
                )
            };
            for env in &order {
                if let Some(c) = per_env.get(env) {
                    row(&mut out, env, c)?;
                }
            }
            row(&mut out, "(overall)", &overall)?;
        }
    }
    Ok(super::Outcome::ok(out))
}
