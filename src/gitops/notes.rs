//! How deploys went, recorded beside the branch Argo CD reads: a git note on the deploy
//! commit in `refs/notes/releasectl` (docs/design.md §7, "Outcomes").
//!
//! Invariants: the branch is never touched (the note lives in its own ref, so Argo CD sees
//! no new commit); the notes ref is pushed without force, as a compare-and-swap on the value
//! fetched (`--force-with-lease` for a local remote, a fast-forward check by the server
//! otherwise); a lost race fetches the notes ref again and re-applies the note on top, so
//! concurrent writers on distinct commits all land; a note holds one JSON object whose
//! outcomes are keyed by environment and project, and re-applying one replaces only its own.
//! Also here: whether a later branch commit contains a deploy commit (Argo CD may sync a
//! newer revision than ours), fetching when the commit is not in the cache yet.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::path::Path;
use std::time::Instant;

use git2::{Oid, PushOptions, Signature, Time};
use serde::{Deserialize, Serialize};

use super::GitError;
use super::remote::{GitOps, local};

/// The notes ref on the remote.
pub const NOTES_REF: &str = "refs/notes/releasectl";
/// Where the fetched notes ref is kept in the cache clone.
const TRACKING: &str = "refs/releasectl/notes-origin";
/// The local notes ref a write is built on.
const LOCAL: &str = "refs/releasectl/notes-local";

/// How a deploy ended, as `--wait` saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Synced at the deploy commit (or a later one containing it) and Healthy.
    Succeeded,
    /// Degraded, or the sync failed.
    Failed,
    /// Neither before `--wait-timeout`.
    TimedOut,
}

impl State {
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::TimedOut => "timed_out",
        }
    }
}

/// Noted outcomes by environment and project, each list newest first, with the commit each
/// is noted on ([`GitOps::outcomes_by_pair`]).
pub type NotedByPair = HashMap<(String, String), Vec<(Oid, Outcome)>>;

/// One project's outcome in one environment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    pub environment: String,
    /// `repository/project`.
    pub project: String,
    /// The release's commit.
    pub release: String,
    pub state: State,
    /// RFC 3339, when the wait ended.
    pub at: String,
    pub application: String,
    /// Argo CD's `status.sync.revision` when the wait ended.
    pub sync_revision: Option<String>,
    pub sync_status: String,
    pub health: String,
    /// What Argo CD said was wrong (escaped).
    pub message: Option<String>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Note {
    outcomes: Vec<Outcome>,
}

impl Note {
    fn parse(bytes: &str) -> Self {
        // A note someone else wrote by hand is kept out of the way, not trusted.
        serde_json::from_str(bytes).unwrap_or_default()
    }

    fn merge(&mut self, new: &[Outcome]) {
        for o in new {
            self.outcomes.retain(|x| {
                (x.environment.as_str(), x.project.as_str()) != (&o.environment, &o.project)
            });
            self.outcomes.push(o.clone());
        }
    }
}

impl GitOps {
    /// Fetches the remote's notes ref into the cache; its commit, or `None` when the remote
    /// has no notes yet.
    pub fn fetch_notes(&self) -> Result<Option<Oid>, GitError> {
        let auth_failed = Cell::new(false);
        let asked = Cell::new(0);
        let mut remote = self
            .repo
            .remote_anonymous(&self.fetch_url)
            .map_err(|e| self.remote_error("fetch notes", &e, false))?;
        let mut opts = git2::FetchOptions::new();
        opts.remote_callbacks(self.callbacks(&auth_failed, &asked));
        opts.download_tags(git2::AutotagOption::None);
        let refspec = format!("+{NOTES_REF}:{TRACKING}");
        remote
            .fetch(&[&refspec], Some(&mut opts), None)
            .map_err(|e| self.remote_error("fetch notes", &e, auth_failed.get()))?;
        let advertised = remote
            .list()
            .is_ok_and(|heads| heads.iter().any(|h| h.name() == NOTES_REF));
        drop(remote);
        if advertised {
            Ok(self.repo.refname_to_id(TRACKING).ok())
        } else {
            if let Ok(mut r) = self.repo.find_reference(TRACKING) {
                let _ = r.delete();
            }
            Ok(None)
        }
    }

    /// The outcomes recorded on `commit`, as last fetched ([`GitOps::fetch_notes`]).
    #[must_use]
    pub fn outcomes(&self, commit: Oid) -> Vec<Outcome> {
        self.repo
            .find_note(Some(TRACKING), commit)
            .ok()
            .and_then(|n| n.message().ok().map(Note::parse))
            .map(|n| n.outcomes)
            .unwrap_or_default()
    }

    /// Every recorded outcome, as last fetched, with the deploy commit it is noted on.
    pub fn all_outcomes(&self) -> Result<Vec<(Oid, Outcome)>, GitError> {
        let Ok(notes) = self.repo.notes(Some(TRACKING)) else {
            return Ok(Vec::new());
        };
        let mut all = Vec::new();
        for pair in notes {
            let (_, annotated) = pair.map_err(|e| local(self.repo.path(), e.message()))?;
            all.extend(self.outcomes(annotated).into_iter().map(|o| (annotated, o)));
        }
        Ok(all)
    }

    /// Every noted outcome by environment and project (`repository/project`), newest first
    /// (by the time the wait ended), with the commit each is noted on: read once for a
    /// [`GitOps::noted_write`] per pointer.
    pub fn outcomes_by_pair(&self) -> Result<NotedByPair, GitError> {
        let mut out = NotedByPair::new();
        for (commit, o) in self.all_outcomes()? {
            out.entry((o.environment.clone(), o.project.clone()))
                .or_default()
                .push((commit, o));
        }
        for list in out.values_mut() {
            list.sort_by(|a, b| b.1.at.cmp(&a.1.at));
        }
        Ok(out)
    }

    /// Of `noted` (one pointer's outcomes, newest first), the one noted on the write that left
    /// the pointer at `path` as it is at `tip`: the newest whose commit holds the same blob
    /// at `path`. No walk of history: each candidate costs its commit and the trees on `path`
    /// (fetched by id, one commit deep, on a lazy cache). `None` when a later write changed
    /// the pointer (whether noted or not).
    pub fn noted_write<'n>(
        &self,
        tip: &super::Snapshot<'_>,
        path: &str,
        noted: &'n [(Oid, Outcome)],
    ) -> Result<Option<&'n Outcome>, GitError> {
        let Some((now, _)) = tip.entry_at(path)? else {
            return Ok(None);
        };
        for (commit, outcome) in noted {
            if self.has_commit(*commit)? && self.object_at(*commit, path)? == Some(now) {
                return Ok(Some(outcome));
            }
        }
        Ok(None)
    }

    /// The object at `path` in commit `oid` (which must be in the cache).
    fn object_at(&self, oid: Oid, path: &str) -> Result<Option<Oid>, GitError> {
        Ok(self.snapshot_at(oid)?.entry_at(path)?.map(|(id, _)| id))
    }

    /// Whether commit `oid` is in the cache, fetching it (one commit deep, no trees) on a
    /// lazy cache when it is not.
    fn has_commit(&self, oid: Oid) -> Result<bool, GitError> {
        if self.repo.find_commit(oid).is_ok() {
            return Ok(true);
        }
        if let Some(lazy) = &self.lazy {
            lazy.fetch(&self.repo, &[oid], &[], Some(1), "tree:0")
                .map_err(|e| GitError::Remote {
                    url: self.url().to_owned(),
                    operation: "fetch",
                    reason: e.0,
                })?;
        }
        Ok(self.repo.find_commit(oid).is_ok())
    }

    /// Whether `revision` (a commit id, as Argo CD reports what it synced) holds the file at
    /// `path` as `tip` does: the same blob, so it renders what the file says now. Costs that
    /// commit and the trees on `path` (fetched by id on a lazy cache), not a walk of
    /// history. `false` for anything that is not a commit of this repository.
    pub fn same_file_at(
        &self,
        revision: &str,
        path: &str,
        tip: &super::Snapshot<'_>,
    ) -> Result<bool, GitError> {
        let Ok(oid) = Oid::from_str(revision) else {
            return Ok(false);
        };
        let Some((now, _)) = tip.entry_at(path)? else {
            return Ok(false);
        };
        if tip.tip == Some(oid) {
            return Ok(true);
        }
        // A revision the server does not have is an answer (not ours), not an error.
        if !matches!(self.has_commit(oid), Ok(true)) {
            return Ok(false);
        }
        Ok(self.object_at(oid, path)? == Some(now))
    }

    /// Adds `outcomes` to the note on `commit` and pushes the notes ref, re-fetching and
    /// re-applying after a lost race, until it lands or `deadline` passes.
    pub fn record_outcomes(
        &self,
        commit: Oid,
        outcomes: &[Outcome],
        time: i64,
        deadline: Instant,
    ) -> Result<(), GitError> {
        let mut last = String::new();
        for attempt in 1..=super::txn::MAX_ATTEMPTS {
            if attempt > 1 && Instant::now() >= deadline {
                break;
            }
            let base = self.fetch_notes()?;
            let mut note = base
                .and_then(|_| self.repo.find_note(Some(TRACKING), commit).ok())
                .and_then(|n| n.message().ok().map(Note::parse))
                .unwrap_or_default();
            note.merge(outcomes);
            let text =
                serde_json::to_string_pretty(&note).map_err(|e| local(self.repo.path(), e))?;
            let built = self.build_note(base, commit, &text, time)?;
            match self.push_notes(built, base)? {
                None => return Ok(()),
                Some(reason) => last = reason,
            }
            let pause = 50u64.saturating_mul(1 << attempt.min(6)) + u64::from(attempt) * 7 % 50;
            std::thread::sleep(std::time::Duration::from_millis(pause));
        }
        Err(GitError::Contended {
            url: self.url().to_owned(),
            attempts: super::txn::MAX_ATTEMPTS,
            last,
        })
    }

    /// A notes commit on top of `base` with `text` as the note of `commit`.
    fn build_note(
        &self,
        base: Option<Oid>,
        commit: Oid,
        text: &str,
        time: i64,
    ) -> Result<Oid, GitError> {
        let err = |e: git2::Error| local(self.repo.path(), e.message());
        match base {
            Some(b) => {
                self.repo
                    .reference(LOCAL, b, true, "releasectl: notes base")
                    .map_err(err)?;
            }
            None => {
                if let Ok(mut r) = self.repo.find_reference(LOCAL) {
                    r.delete().map_err(err)?;
                }
            }
        }
        let sig = Signature::new(
            &self.committer.name,
            &self.committer.email,
            &Time::new(time, 0),
        )
        .map_err(err)?;
        self.repo
            .note(&sig, &sig, Some(LOCAL), commit, text, true)
            .map_err(err)?;
        self.repo.refname_to_id(LOCAL).map_err(err)
    }

    /// Pushes `oid` to the notes ref expecting it at `base`; `Some(reason)` when the ref
    /// moved (a race to retry).
    fn push_notes(&self, oid: Oid, base: Option<Oid>) -> Result<Option<String>, GitError> {
        if let Some(path) = self.fetch_url.strip_prefix("file://") {
            return self.push_notes_local(Path::new(path), oid, base);
        }
        let auth_failed = Cell::new(false);
        let asked = Cell::new(0);
        let rejected: RefCell<Option<String>> = RefCell::new(None);
        let mut remote = self
            .repo
            .remote_anonymous(&self.fetch_url)
            .map_err(|e| self.remote_error("push notes", &e, false))?;
        let mut cb = self.callbacks(&auth_failed, &asked);
        cb.push_update_reference(|refname, status| {
            if let Some(msg) = status {
                *rejected.borrow_mut() = Some(format!("{refname}: {msg}"));
            }
            Ok(())
        });
        let mut opts = PushOptions::new();
        opts.remote_callbacks(cb);
        let refspec = format!("{LOCAL}:{NOTES_REF}");
        match remote.push(&[&refspec], Some(&mut opts)) {
            Ok(()) => {}
            Err(e) if !auth_failed.get() && e.code() == git2::ErrorCode::NotFastForward => {
                return Ok(Some("not a fast-forward".into()));
            }
            Err(e) => return Err(self.remote_error("push notes", &e, auth_failed.get())),
        }
        drop(remote);
        drop(opts);
        Ok(rejected.take())
    }

    /// A push to a repository on this machine through `git push`, with the lease on `base`.
    fn push_notes_local(
        &self,
        path: &Path,
        oid: Oid,
        base: Option<Oid>,
    ) -> Result<Option<String>, GitError> {
        let out = self.git_push_lease(path, NOTES_REF, oid, base)?;
        if out.status.success() {
            return Ok(None);
        }
        let stdout = String::from_utf8_lossy(&out.stdout);
        match stdout.lines().find_map(|l| l.strip_prefix('!')) {
            Some(refused) => Ok(Some(crate::text::excerpt(refused.trim()))),
            None => Err(GitError::Remote {
                url: self.url().to_owned(),
                operation: "push notes",
                reason: crate::text::excerpt(String::from_utf8_lossy(&out.stderr).trim()),
            }),
        }
    }

    /// Whether the branch commit `later` (a revision Argo CD reports) is `ours` or contains
    /// it, fetching the branch once when `later` is not in the cache yet.
    pub fn contains(&self, later: &str, ours: Oid) -> Result<bool, GitError> {
        let Ok(later) = Oid::from_str(later) else {
            return Ok(false);
        };
        if later == ours {
            return Ok(true);
        }
        if self.repo.find_commit(later).is_err() {
            self.fetch()?;
            if self.repo.find_commit(later).is_err() {
                return Ok(false);
            }
        }
        self.repo
            .graph_descendant_of(later, ours)
            .map_err(|e| local(self.repo.path(), e.message()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(env: &str, state: State) -> Outcome {
        Outcome {
            environment: env.into(),
            project: "r/p".into(),
            release: "c".repeat(40),
            state,
            at: "2026-01-01T00:00:00Z".into(),
            application: format!("{env}-r-p"),
            sync_revision: None,
            sync_status: "Synced".into(),
            health: "Healthy".into(),
            message: None,
        }
    }

    #[test]
    fn merging_replaces_only_the_same_environment_and_project() {
        let mut note = Note::default();
        note.merge(&[
            outcome("dev", State::Failed),
            outcome("prod", State::Succeeded),
        ]);
        note.merge(&[outcome("dev", State::Succeeded)]);
        let states: Vec<(&str, State)> = note
            .outcomes
            .iter()
            .map(|o| (o.environment.as_str(), o.state))
            .collect();
        assert_eq!(
            states,
            [("prod", State::Succeeded), ("dev", State::Succeeded)]
        );
        assert!(Note::parse("not json").outcomes.is_empty());
    }
}
