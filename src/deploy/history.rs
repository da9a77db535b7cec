//! One pointer's deploy history, from the commits that changed it: what their trailers say
//! (docs/design.md §7), or, for a change made outside releasectl, what the pointer itself
//! names. Read by `history` and by `releasectl serve`.

use serde::{Deserialize, Serialize};

use super::trailers;
use crate::gitops::Snapshot;
use crate::gitops::register::{Entry, Register};
use crate::pointer;

#[derive(Serialize, Deserialize)]
pub struct Event {
    /// `company/monorepo/auth-service`.
    pub project: String,
    pub gitops_commit: String,
    pub time: String,
    pub author: String,
    pub action: String,
    pub release_commit: Option<String>,
    pub number: Option<u64>,
    pub label: String,
    pub subject: String,
    /// Rules let pass with `--override`, and the reason recorded.
    pub overrides: Vec<String>,
    pub override_reason: Option<String>,
    /// For an unblock: the release that was unblocked.
    pub unblocked: Option<String>,
    /// The outcome `--wait` recorded on this commit for this environment and project.
    pub outcome: Option<String>,
    /// Who signed the commit (SSH, `gpg.format=ssh`): the key's fingerprint, with the
    /// policy's `commit_signers` id when listed; or why the signature is invalid.
    pub signed_by: Option<String>,
}

/// What is known of a GitOps commit beside its message: the outcome `--wait` recorded for
/// the pointer, and who signed the commit.
#[derive(Debug, Default)]
struct Facts {
    outcome: Option<String>,
    signed_by: Option<String>,
}

impl Event {
    /// What the text view appends: the overrides and the release unblocked, if any.
    #[must_use]
    pub fn notes(&self) -> String {
        let mut notes = Vec::new();
        if let Some(u) = &self.unblocked {
            notes.push(format!("unblocked release {u}"));
        }
        if let Some(o) = &self.outcome {
            notes.push(format!("outcome: {o}"));
        }
        if let Some(s) = &self.signed_by {
            notes.push(format!("signed by {s}"));
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

/// The changes of `reg`'s pointer in `env`, newest first, each with the outcome `--wait`
/// recorded for it (from the notes ref, which the caller fetched) and who signed the commit
/// (judged against `signers`, the policy's `commit_signers`).
pub fn pointer_events(
    gitops: &crate::gitops::GitOps,
    tip: &Snapshot<'_>,
    reg: &Register,
    env: &crate::policy::EnvName,
    signers: &[crate::policy::Approver],
) -> crate::exit::Result<Vec<Event>> {
    let path = crate::gitops::layout::pointer_path(env, &reg.repository, &reg.project);
    let project = reg.full_name();
    events(tip, reg, &path, |commit| Facts {
        outcome: gitops
            .outcomes(commit)
            .into_iter()
            .find(|o| o.environment == env.as_str() && o.project == project)
            .map(|o| o.state.name().to_owned()),
        signed_by: signed_by(gitops, commit, signers),
    })
}

/// The changes of the pointer at `path` (of `reg`'s project), newest first; `facts` gives
/// what else is known of a GitOps commit (its recorded outcome, its signer).
fn events(
    tip: &Snapshot<'_>,
    reg: &Register,
    path: &str,
    facts: impl Fn(git2::Oid) -> Facts,
) -> crate::exit::Result<Vec<Event>> {
    let mut events = Vec::new();
    for change in tip.history(path)? {
        let change = change?;
        let t = trailers::parse(&change.message);
        // Prefer what the trailers say; a hand edit has none, so read the pointer itself.
        let release_commit = trailers::get(&t, "Release-Commit")
            .map(str::to_owned)
            .or_else(|| {
                change
                    .content
                    .as_deref()
                    .and_then(|b| pointer::parse(path, b).ok())
                    .map(|p| p.id.commit.to_string())
            });
        let find = |c: &str| match c.parse() {
            Ok(c) => reg.find_commit(tip, &c),
            Err(_) => Ok(None),
        };
        let entry = match release_commit.as_deref() {
            Some(c) => find(c)?,
            None => None,
        };
        let entry = entry.as_ref();
        let unblocked = match trailers::get(&t, "Unblocked-Release") {
            Some(c) => Some(
                find(c)?
                    .as_ref()
                    .map_or_else(|| format!("commit {c}"), Entry::label),
            ),
            None => None,
        };
        let facts = facts(change.commit);
        events.push(Event {
            project: reg.full_name(),
            outcome: facts.outcome,
            signed_by: facts.signed_by,
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
    Ok(events)
}

/// Who signed `commit`, for people (none: unsigned).
#[must_use]
pub fn signed_by(
    gitops: &crate::gitops::GitOps,
    commit: git2::Oid,
    signers: &[crate::policy::Approver],
) -> Option<String> {
    match gitops.commit_signer(commit) {
        crate::signing::CommitSigner::Unsigned => None,
        crate::signing::CommitSigner::Invalid(why) => Some(format!("invalid signature ({why})")),
        crate::signing::CommitSigner::Key {
            public,
            fingerprint,
        } => Some(
            match signers.iter().find(|s| {
                s.key
                    .as_deref()
                    .is_some_and(|k| crate::signing::same_key(k, &public))
            }) {
                Some(s) => format!("{} ({fingerprint})", s.id),
                None => format!("{fingerprint} (not in commit_signers)"),
            },
        ),
    }
}
