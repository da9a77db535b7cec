//! `--wait`: after a write lands, follow each Application that shows a written pointer until
//! Argo CD has synced the deploy commit and the Application is Healthy (docs/argocd.md,
//! "Waiting for Argo CD").
//!
//! The Application is read once, then followed on Argo CD's watch stream; a quiet stream is
//! backed by direct reads, a broken one replaced by a read every second.
//!
//! Invariants: only a revision that is the deploy commit or a later branch commit containing
//! it counts (Argo CD may sync a newer deploy that overtook ours, which is a success for
//! ours); Degraded or a failed sync operation at such a revision ends the wait as failed,
//! never the state of an older revision; a 401, 403 or 404 ends it at once as an error, other
//! failures to reach Argo CD are retried until the wait's deadline, which ends it as timed
//! out. Nothing here writes: the caller records the outcome.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use git2::Oid;
use jiff::Timestamp;

use crate::argocd::watch::Watch;
use crate::argocd::{Application, ArgoError, Client};
use crate::gitops::GitOps;
use crate::gitops::notes::{Outcome, State};

/// How often the Application is read when there is no watch stream.
pub const POLL: Duration = Duration::from_secs(1);
/// How long a quiet watch stream is trusted before the Application is read directly (a
/// stream may stall behind a proxy).
pub const QUIET: Duration = Duration::from_secs(2);

/// The next reading of the Application: from Argo CD's watch stream while it is open and
/// talking, else by `GET` (every [`POLL`], or after [`QUIET`] on a silent stream).
async fn next_reading(
    client: &Client,
    watch: &mut Option<Watch>,
    tried: &mut bool,
    name: &str,
    until: Instant,
) -> Result<Application, ArgoError> {
    if watch.is_none() && !*tried {
        *tried = true;
        match client.watch(name, until).await {
            Ok(w) => *watch = Some(w),
            Err(e) => crate::log::info(&format!("{e}; reading the Application every second")),
        }
    }
    if let Some(w) = watch {
        let quiet = QUIET.min(until.saturating_duration_since(Instant::now()));
        match tokio::time::timeout(quiet, w.next()).await {
            Ok(Some(Ok(app))) => return Ok(app),
            Ok(Some(Err(e))) => {
                crate::log::info(&format!("{e}; reading the Application every second"));
                *watch = None;
            }
            Ok(None) => {
                crate::log::info(
                    "argo cd ended the watch stream; reading the Application every second",
                );
                *watch = None;
            }
            Err(_) => crate::log::debug("the watch stream is quiet; reading the Application"),
        }
        return client.get(name, until).await;
    }
    tokio::time::sleep(POLL.min(until.saturating_duration_since(Instant::now()))).await;
    client.get(name, until).await
}

/// One Application to follow.
#[derive(Debug, Clone)]
pub struct Target {
    pub environment: String,
    /// `repository/project`.
    pub project: String,
    /// The release's commit.
    pub release: String,
    pub application: String,
}

/// What one reading of the Application says about the deploy.
fn judge(app: &Application, ours: bool) -> Option<State> {
    if !ours {
        return None;
    }
    if app.failed_phase().is_some() || app.health() == "Degraded" {
        return Some(State::Failed);
    }
    (app.sync_status() == "Synced" && app.health() == "Healthy").then_some(State::Succeeded)
}

/// Whether a revision Argo CD reports is the deploy commit or contains it.
fn is_ours(gitops: &GitOps, revision: Option<&str>, commit: Oid) -> crate::exit::Result<bool> {
    match revision {
        Some(r) => Ok(gitops.contains(r, commit)?),
        None => Ok(false),
    }
}

fn outcome(
    target: &Target,
    state: State,
    app: Option<&Application>,
    at: Timestamp,
    extra: Option<String>,
) -> Outcome {
    let problems = app.map(Application::problems).filter(|p| !p.is_empty());
    let message = match (problems, extra) {
        (Some(p), Some(e)) => Some(format!("{e}; {p}")),
        (p, e) => p.or(e),
    };
    Outcome {
        environment: target.environment.clone(),
        project: target.project.clone(),
        release: target.release.clone(),
        state,
        at: crate::clock::format(at),
        application: target.application.clone(),
        sync_revision: app.and_then(|a| a.sync_revision().map(|r| crate::text::printable(r, 80))),
        sync_status: app.map_or_else(|| "Unknown".into(), Application::sync_status),
        health: app.map_or_else(|| "Unknown".into(), Application::health),
        message,
    }
}

/// Follows `target` until it is decided or `until` passes. `now` is the run's clock at
/// `started`, so recorded times follow `RELEASECTL_NOW` in tests.
pub async fn follow(
    client: &Client,
    gitops: &GitOps,
    target: &Target,
    commit: Oid,
    until: Instant,
    now: (Timestamp, Instant),
) -> crate::exit::Result<Outcome> {
    let clock = || {
        now.0
            .checked_add(jiff::SignedDuration::try_from(now.1.elapsed()).unwrap_or_default())
            .unwrap_or(now.0)
    };
    let progress = std::io::stderr().is_terminal();
    let mut last: Option<Application> = None;
    let mut last_error: Option<String>;
    let mut shown = String::new();
    let mut watch = None;
    let mut tried = false;
    let mut first = true;
    loop {
        let reading = if first {
            first = false;
            client.get(&target.application, until).await
        } else {
            next_reading(client, &mut watch, &mut tried, &target.application, until).await
        };
        match reading {
            Ok(app) => {
                last_error = None;
                let revision = app.sync_revision().or(app.operation_revision());
                let ours = is_ours(gitops, app.sync_revision(), commit)?
                    || (app.failed_phase().is_some() && is_ours(gitops, revision, commit)?);
                let line = format!(
                    "{}: {} {}{}",
                    crate::text::excerpt(&target.application),
                    app.sync_status(),
                    app.health(),
                    if ours {
                        ""
                    } else {
                        " (not yet at the deploy commit)"
                    }
                );
                crate::log::debug(&line);
                if progress && line != shown {
                    let _ = writeln!(std::io::stderr(), "waiting: {line}");
                    shown = line;
                }
                if let Some(state) = judge(&app, ours) {
                    return Ok(outcome(target, state, Some(&app), clock(), None));
                }
                last = Some(app);
            }
            Err(
                e @ (ArgoError::Denied { .. } | ArgoError::NotFound { .. } | ArgoError::Setup(_)),
            ) => {
                return Err(e.into());
            }
            Err(e) => {
                crate::log::info(&format!("argo cd: {e}; trying again"));
                last_error = Some(e.to_string());
            }
        }
        if Instant::now() >= until {
            let why = format!(
                "not Synced and Healthy at the deploy commit within the wait{}",
                last_error
                    .map(|e| format!(" (last error: {e})"))
                    .unwrap_or_default()
            );
            return Ok(outcome(
                target,
                State::TimedOut,
                last.as_ref(),
                clock(),
                Some(why),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app(sync: &str, health: &str, phase: Option<&str>) -> Application {
        let phase = phase.map_or(String::new(), |p| {
            format!(r#", "operationState": {{"phase": "{p}"}}"#)
        });
        serde_json::from_str(&format!(
            r#"{{"status": {{"sync": {{"status": "{sync}", "revision": "x"}}, "health": {{"status": "{health}"}}{phase}}}}}"#
        ))
        .unwrap()
    }

    #[test]
    fn only_the_deploy_commit_decides_and_degraded_or_a_failed_sync_is_a_failure() {
        assert_eq!(
            judge(&app("Synced", "Healthy", None), true),
            Some(State::Succeeded)
        );
        assert_eq!(judge(&app("Synced", "Healthy", None), false), None);
        assert_eq!(judge(&app("Synced", "Progressing", None), true), None);
        assert_eq!(judge(&app("OutOfSync", "Healthy", None), true), None);
        assert_eq!(
            judge(&app("Synced", "Degraded", None), true),
            Some(State::Failed)
        );
        assert_eq!(judge(&app("Synced", "Degraded", None), false), None);
        assert_eq!(
            judge(&app("OutOfSync", "Healthy", Some("Error")), true),
            Some(State::Failed)
        );
        assert_eq!(
            judge(&app("Synced", "Healthy", Some("Succeeded")), true),
            Some(State::Succeeded)
        );
    }
}
