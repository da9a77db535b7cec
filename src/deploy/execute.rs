//! Phase 3, execute: the pointers to write and the commit message that explains them
//! (docs/design.md §7). Pure: the driver commits and pushes what this returns. Every pointer
//! written carries its recent history (`releasectl.dev/history`, [`super::record`]): the
//! new stay on top of the record before it; `unblock` keeps the record as it is.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use jiff::Timestamp;

use super::plan::Item;
use super::record::{Record, Stay};
use super::{Action, Override, label};
use crate::gitops::Edit;
use crate::pointer::{self, Pointer};

/// Who and when, and any audited overrides.
pub struct Stamp<'a> {
    pub actor: &'a str,
    /// The run's clock: `deployed-at` and the new stay's `since` (whole seconds, UTC).
    pub now: Timestamp,
    pub overrides: &'a [Override],
    pub reason: Option<&'a str>,
}

/// The pointer an item leaves behind.
#[must_use]
pub fn new_pointer(item: &Item, action: &Action, stamp: &Stamp<'_>) -> Pointer {
    // Unblocking changes no release: the pointer stays as it is, less one blocked commit.
    if let (Action::Unblock, Some(cur)) = (action, &item.current) {
        let mut p = cur.clone();
        let rest: Vec<String> = cur
            .blocked()
            .into_iter()
            .filter(|c| c != item.target.commit.as_str())
            .collect();
        if rest.is_empty() {
            p.annotations.remove(pointer::ANN_BLOCKED);
        } else {
            p.annotations
                .insert(pointer::ANN_BLOCKED.to_owned(), rest.join(","));
        }
        return p;
    }
    let mut blocked: Vec<String> = item
        .current
        .as_ref()
        .map(Pointer::blocked)
        .unwrap_or_default();
    if let (Action::Rollback { block: true }, Some(cur)) = (action, &item.current)
        && !blocked.iter().any(|c| c == cur.id.commit.as_str())
    {
        blocked.push(cur.id.commit.to_string());
    }
    let mut annotations = BTreeMap::new();
    annotations.insert(
        pointer::ANN_NUMBER.to_owned(),
        item.target.number.to_string(),
    );
    let aliases: Vec<&str> = item
        .target
        .aliases
        .iter()
        .map(|a| a.alias.as_str())
        .collect();
    if !aliases.is_empty() {
        annotations.insert(pointer::ANN_ALIASES.to_owned(), aliases.join(","));
    }
    annotations.insert(pointer::ANN_DEPLOYED_BY.to_owned(), stamp.actor.to_owned());
    annotations.insert(
        pointer::ANN_DEPLOYED_AT.to_owned(),
        crate::clock::format(stamp.now),
    );
    if !blocked.is_empty() {
        annotations.insert(pointer::ANN_BLOCKED.to_owned(), blocked.join(","));
    }
    // The record goes on from the plan's reading of the past, else from the pointer's own.
    let known = item.past.as_ref().and_then(super::plan::Past::record);
    let record = Record::next(
        item.current
            .as_ref()
            .map(|p| (item.pointer_path.as_str(), p)),
        known.as_ref(),
        Stay::new(
            stamp.now,
            action,
            item.target.number,
            item.target.commit.clone(),
        ),
    );
    annotations.insert(pointer::ANN_HISTORY.to_owned(), record.encode());
    Pointer {
        name: item.register.project.to_string(),
        annotations,
        id: crate::ids::ReleaseId {
            repository: item.register.repository.clone(),
            project: item.register.project.clone(),
            commit: item.target.commit.clone(),
        },
        digest: Some(item.target.digest.clone()),
        registry: item.current.as_ref().and_then(|p| p.registry.clone()),
    }
}

fn override_lines(stamp: &Stamp<'_>, body: &mut String, trailers: &mut String) {
    if stamp.overrides.is_empty() {
        return;
    }
    let reason = stamp.reason.unwrap_or("");
    let _ = writeln!(
        body,
        "Overridden: {} (reason: {reason})",
        stamp
            .overrides
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    );
    for o in stamp.overrides {
        let _ = writeln!(trailers, "Override: {o}");
    }
    let _ = writeln!(trailers, "Override-Reason: {reason}");
}

fn release_trailers(item: &Item, trailers: &mut String) {
    let _ = writeln!(trailers, "Release-Commit: {}", item.target.commit);
    let _ = writeln!(trailers, "Release-Digest: {}", item.target.digest);
}

/// The commit message for `items` under `action`.
#[must_use]
pub fn message(items: &[&Item], action: &Action, stamp: &Stamp<'_>) -> String {
    let first = items[0];
    let short = first.register.project.to_string();
    let mut body = String::new();
    let mut trailers = String::new();
    let subject = match action {
        Action::Group => {
            for i in items {
                let _ = writeln!(
                    body,
                    "- {}: release {}, previously {}",
                    i.register.project,
                    i.target.label(),
                    label(i.current_entry.as_ref())
                );
            }
            body.push('\n');
            let _ = writeln!(body, "Deployed by: {}", stamp.actor);
            let _ = writeln!(trailers, "Environment: {}", first.env);
            for i in items {
                let _ = writeln!(trailers, "Project: {}", i.project_name());
                release_trailers(i, &mut trailers);
            }
            format!(
                "Deploy {} project{} to {}",
                items.len(),
                if items.len() == 1 { "" } else { "s" },
                first.env
            )
        }
        Action::Auto => {
            let envs: Vec<String> = items.iter().map(|i| i.env.to_string()).collect();
            let _ = writeln!(body, "Previous releases:");
            for i in items {
                let _ = writeln!(body, "- {}: {}", i.env, label(i.current_entry.as_ref()));
            }
            let _ = writeln!(body, "Deployed by: {} (auto)", stamp.actor);
            release_trailers(first, &mut trailers);
            for e in &envs {
                let _ = writeln!(trailers, "Environment: {e}");
            }
            let _ = writeln!(trailers, "Project: {}", first.project_name());
            format!(
                "Deploy {short} to {}: release {}",
                envs.join(", "),
                first.target.label()
            )
        }
        _ => {
            let (subject, verb) = match action {
                Action::Promote { from } => (
                    format!(
                        "Promote {short} from {from} to {}: release {}",
                        first.env,
                        first.target.label()
                    ),
                    "Promoted by",
                ),
                Action::Rollback { .. } => (
                    format!(
                        "Rollback {short} in {} to release {}",
                        first.env,
                        first.target.label()
                    ),
                    "Rolled back by",
                ),
                Action::Unblock => (
                    format!(
                        "Unblock release {} of {short} in {}",
                        first.target.label(),
                        first.env
                    ),
                    "Unblocked by",
                ),
                _ => (
                    format!(
                        "Deploy {short} to {}: release {}",
                        first.env,
                        first.target.label()
                    ),
                    "Deployed by",
                ),
            };
            if !matches!(action, Action::Unblock) {
                let _ = writeln!(
                    body,
                    "Previous release: {}",
                    label(first.current_entry.as_ref())
                );
            }
            let _ = writeln!(body, "{verb}: {}", stamp.actor);
            if let (Action::Rollback { block: true }, Some(cur)) = (action, &first.current_entry) {
                let _ = writeln!(
                    body,
                    "Blocked: release {} may not return to {} until unblocked",
                    cur.label(),
                    first.env
                );
            }
            if matches!(action, Action::Unblock) {
                let _ = writeln!(trailers, "Unblocked-Release: {}", first.target.commit);
            } else {
                release_trailers(first, &mut trailers);
            }
            let _ = writeln!(trailers, "Environment: {}", first.env);
            let _ = writeln!(trailers, "Project: {}", first.project_name());
            subject
        }
    };
    override_lines(stamp, &mut body, &mut trailers);
    let _ = writeln!(trailers, "Action: {}", action.name());
    if let Action::Promote { from } = action {
        let _ = writeln!(trailers, "Promoted-From: {from}");
    }
    if let (Action::Rollback { block: true }, Some(cur)) = (action, &first.current) {
        let _ = writeln!(trailers, "Blocked-Release: {}", cur.id.commit);
    }
    format!("{subject}\n\n{body}\n{trailers}")
}

/// The edits for `items`.
#[must_use]
pub fn edits(items: &[&Item], action: &Action, stamp: &Stamp<'_>) -> Vec<Edit> {
    items
        .iter()
        .map(|i| Edit {
            path: i.pointer_path.clone(),
            content: Some(new_pointer(i, action, stamp).render().into_bytes()),
        })
        .collect()
}
