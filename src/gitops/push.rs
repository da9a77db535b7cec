//! Writing: a commit built in memory on top of a snapshot, pushed without force.
//!
//! Invariants: no working tree, the commit is built by editing only the changed paths
//! (`TreeUpdateBuilder`), so the cost of a write grows with what changed, not with the
//! repository; pushes never force (a local push's `--force-with-lease` only
//! pins the expected old value); a push counts as done only when the server accepted every
//! ref (libgit2 returns `Ok` for a server-side rejection: the per-ref status in
//! `push_update_reference` is checked); a rejection with the branch where we left it is no
//! race but the server refusing the change, and retrying cannot help
//! ([`GitError::Refused`]). Local (`file://`, path) remotes are pushed by `git push`, so their
//! `pre-receive` and `update` hooks run as for any other transport.

use std::cell::{Cell, RefCell};
use std::path::Path;
use std::process::{Command, Stdio};

use git2::build::TreeUpdateBuilder;
use git2::{ErrorCode, FileMode, Oid, PushOptions, Signature, Time};

use super::GitError;
use super::remote::{GitOps, local};
use super::snapshot::Snapshot;

/// Who a commit is by: the person or pipeline acting (`--actor`), and when.
#[derive(Debug, Clone)]
pub struct Author {
    pub name: String,
    pub email: String,
    /// Seconds since the epoch (the run's clock).
    pub time: i64,
}

impl Author {
    /// `actor` may be `Name <email>`, an email, or a name.
    #[must_use]
    pub fn new(actor: &str, time: i64) -> Self {
        let (name, email) = match actor.split_once('<') {
            Some((n, e)) => (
                n.trim().to_owned(),
                e.trim_end_matches('>').trim().to_owned(),
            ),
            None if actor.contains('@') => (actor.to_owned(), actor.to_owned()),
            None => (actor.to_owned(), format!("{actor}@releasectl.invalid")),
        };
        Self { name, email, time }
    }
}

/// A file to write (`Some`) or delete (`None`) at a repository path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edit {
    pub path: String,
    pub content: Option<Vec<u8>>,
}

/// How a push ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushOutcome {
    Pushed(Oid),
    /// Someone else moved the branch; the message says how the server put it.
    Rejected(String),
}

impl GitOps {
    /// Pushes `oid`, a commit made on `base` by `edits`, without force.
    pub(super) fn push_commit(
        &self,
        base: &Snapshot<'_>,
        edits: &[Edit],
        oid: Oid,
    ) -> Result<PushOutcome, GitError> {
        let outcome = match super::wire::Daemon::parse(&self.fetch_url) {
            Some(daemon) => self.push_wire(&daemon, base, edits, oid)?,
            None => self.push(oid, base.tip)?,
        };
        match outcome {
            PushOutcome::Rejected(reason) => {
                // A rejection with the branch where we left it was no race: the server
                // refused the change itself (a hook, a protected branch). Retrying cannot help.
                // A reply that says the ref moved needs no fetch to tell.
                if !is_race_message(&reason) && self.fetch()?.tip == base.tip {
                    return Err(GitError::Refused {
                        url: self.url().to_owned(),
                        reason,
                    });
                }
                Ok(PushOutcome::Rejected(reason))
            }
            pushed @ PushOutcome::Pushed(_) => Ok(pushed),
        }
    }

    /// Creates the commit object (no ref moves).
    pub(super) fn commit(
        &self,
        base: &Snapshot<'_>,
        edits: &[Edit],
        message: &str,
        author: &Author,
    ) -> Result<Oid, GitError> {
        let dir = self.repo.path().to_owned();
        let err = |e: git2::Error| local(&dir, e.message());
        let baseline = match &base.tree {
            Some(t) => t.clone(),
            None => {
                let empty = self
                    .repo
                    .treebuilder(None)
                    .and_then(|b| b.write())
                    .map_err(err)?;
                self.repo.find_tree(empty).map_err(err)?
            }
        };
        // The trees along each edited path must be in the cache (a lazy cache fetches them).
        for edit in edits {
            base.entry_at(&edit.path)?;
        }
        let mut update = TreeUpdateBuilder::new();
        for edit in edits {
            match &edit.content {
                Some(bytes) => {
                    let blob = self.repo.blob(bytes).map_err(err)?;
                    update.upsert(edit.path.as_str(), blob, FileMode::Blob);
                }
                None => {
                    update.remove(edit.path.as_str());
                }
            }
        }
        let tree_id = update.create_updated(&self.repo, &baseline).map_err(err)?;
        let tree = self.repo.find_tree(tree_id).map_err(err)?;
        let time = Time::new(author.time, 0);
        let committer =
            Signature::new(&self.committer.name, &self.committer.email, &time).map_err(err)?;
        let author = Signature::new(&author.name, &author.email, &time).map_err(err)?;
        let parent = match base.tip {
            Some(oid) => Some(self.repo.find_commit(oid).map_err(err)?),
            None => None,
        };
        let parents: Vec<&git2::Commit<'_>> = parent.iter().collect();
        crate::signing::commit(
            &self.repo,
            &author,
            &committer,
            message,
            &tree,
            &parents,
            self.committer.signing_key.as_deref(),
        )
        .map_err(err)
    }

    /// Pushes `oid` to the branch without force, expecting the branch at `base` (`None`: a
    /// new branch).
    pub(super) fn push(&self, oid: Oid, base: Option<Oid>) -> Result<PushOutcome, GitError> {
        let local_ref = format!("refs/heads/{}", self.branch());
        self.repo
            .reference(&local_ref, oid, true, "releasectl: prepared commit")
            .map_err(|e| local(self.repo.path(), e.message()))?;
        if let Some(path) = self.fetch_url.strip_prefix("file://") {
            return self.push_local(Path::new(path), oid, base);
        }
        let auth_failed = Cell::new(false);
        let asked = Cell::new(0);
        let rejected: RefCell<Option<String>> = RefCell::new(None);
        let said: RefCell<String> = RefCell::new(String::new());
        let mut remote = self
            .repo
            .remote_anonymous(&self.fetch_url)
            .map_err(|e| self.remote_error("push", &e, false))?;
        let mut cb = self.callbacks(&auth_failed, &asked);
        cb.push_update_reference(|refname, status| {
            if let Some(msg) = status {
                *rejected.borrow_mut() = Some(format!("{refname}: {msg}"));
            }
            Ok(())
        });
        // What the server's hooks print ("remote: ...") explains a refusal.
        cb.sideband_progress(|data| {
            let mut s = said.borrow_mut();
            if s.len() < 4096 {
                s.push_str(&String::from_utf8_lossy(data));
            }
            true
        });
        let mut opts = PushOptions::new();
        opts.remote_callbacks(cb);
        let refspec = format!("{local_ref}:{local_ref}");
        match remote.push(&[&refspec], Some(&mut opts)) {
            Ok(()) => {}
            Err(e) if e.code() == ErrorCode::NotFastForward => {
                return Ok(PushOutcome::Rejected(
                    "not a fast-forward: the branch moved".into(),
                ));
            }
            Err(e) if !auth_failed.get() && is_race_message(e.message()) => {
                return Ok(PushOutcome::Rejected(e.message().to_owned()));
            }
            Err(e) => return Err(self.remote_error("push", &e, auth_failed.get())),
        }
        drop(remote);
        drop(opts);
        if let Some(reason) = rejected.take() {
            let said = said.take();
            let said: Vec<&str> = said
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .collect();
            return Ok(PushOutcome::Rejected(if said.is_empty() {
                reason
            } else {
                format!("{reason} ({})", said.join(" / "))
            }));
        }
        Ok(self.pushed(oid))
    }

    /// A push over `git://` that carries only the objects this commit made (see
    /// [`super::wire`]).
    fn push_wire(
        &self,
        daemon: &super::wire::Daemon,
        base: &Snapshot<'_>,
        edits: &[Edit],
        oid: Oid,
    ) -> Result<PushOutcome, GitError> {
        let err = |e: git2::Error| local(self.repo.path(), e.message());
        let paths: Vec<&str> = edits.iter().map(|e| e.path.as_str()).collect();
        let objects =
            super::wire::new_objects(&self.repo, base.tree.as_ref(), oid, &paths).map_err(err)?;
        self.send_pack(daemon, base.tip, oid, &objects, 1)
    }

    /// Sends `objects` as one pack and moves the branch from `base` to `head` in one
    /// `receive-pack` exchange over `git://` (the compare-and-swap; `commits`: for the log).
    pub(super) fn send_pack(
        &self,
        daemon: &super::wire::Daemon,
        base: Option<Oid>,
        head: Oid,
        objects: &[Oid],
        commits: usize,
    ) -> Result<PushOutcome, GitError> {
        let pack = super::wire::pack(&self.repo, objects)
            .map_err(|e| local(self.repo.path(), e.message()))?;
        let refname = format!("refs/heads/{}", self.branch());
        crate::log::debug(&format!(
            "pushing {commits} commits ({} objects, {} bytes) to {}",
            objects.len(),
            pack.len(),
            self.url()
        ));
        match super::wire::push(daemon, &refname, base, head, &pack) {
            Ok(super::wire::PushReply::Accepted) => Ok(self.pushed(head)),
            Ok(super::wire::PushReply::Rejected { reason, said }) => {
                Ok(PushOutcome::Rejected(if said.is_empty() {
                    reason
                } else {
                    format!("{reason} ({})", said.join(" / "))
                }))
            }
            Err(e) => Err(GitError::Remote {
                url: self.url().to_owned(),
                operation: "push",
                reason: e.0,
            }),
        }
    }

    /// Keeps the tracking ref in step, so the next fetch has nothing to download.
    pub(super) fn pushed(&self, oid: Oid) -> PushOutcome {
        let _ = self
            .repo
            .reference(&self.tracking_ref(), oid, true, "releasectl: pushed");
        PushOutcome::Pushed(oid)
    }

    /// Runs `git push --porcelain` of `oid` to `refname` of the repository at `path`, with
    /// `--force-with-lease` on `base` (no ref: the ref must not exist): a compare-and-swap.
    /// git's environment variables are cleared first: inside another repository's hook they
    /// would redirect the push.
    pub(super) fn git_push_lease(
        &self,
        path: &Path,
        refname: &str,
        oid: Oid,
        base: Option<Oid>,
    ) -> Result<std::process::Output, GitError> {
        let mut git = Command::new("git");
        for var in [
            "GIT_DIR",
            "GIT_WORK_TREE",
            "GIT_INDEX_FILE",
            "GIT_OBJECT_DIRECTORY",
            "GIT_ALTERNATE_OBJECT_DIRECTORIES",
            "GIT_QUARANTINE_PATH",
        ] {
            git.env_remove(var);
        }
        git.arg("--git-dir")
            .arg(self.repo.path())
            .args(["push", "--porcelain", "--no-verify"])
            .arg(format!(
                "--force-with-lease={refname}:{}",
                base.map(|b| b.to_string()).unwrap_or_default()
            ))
            .arg(path)
            .arg(format!("{oid}:{refname}"))
            .env("GIT_TERMINAL_PROMPT", "0")
            .stdin(Stdio::null())
            .output()
            .map_err(|e| local(self.repo.path(), format!("cannot run git push: {e}")))
    }

    /// A push to a repository on this machine, through git's own `git push`: its
    /// `receive-pack` runs the remote's `pre-receive` and `update` hooks (so `check` as a
    /// pre-receive gate holds for path remotes too) and moves the branch only as a fast-forward
    /// of the value it read, checked again under git's ref lock; `--force-with-lease` names the
    /// plan's base (or no branch) as that value, so this is a compare-and-swap even against a
    /// branch reset backwards, and a branch moved by anyone else is refused, never
    /// overwritten. (libgit2's
    /// local transport runs no hooks and overwrites the ref without checking its old value.)
    fn push_local(
        &self,
        path: &Path,
        oid: Oid,
        base: Option<Oid>,
    ) -> Result<PushOutcome, GitError> {
        let out = self.git_push_lease(path, &format!("refs/heads/{}", self.branch()), oid, base)?;
        if out.status.success() {
            return Ok(self.pushed(oid));
        }
        let (stdout, stderr) = (
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
        );
        // `--porcelain`: a refused ref is a line `!\tFROM:TO\t[rejected] (why)`.
        let Some(refused) = stdout.lines().find_map(|l| l.strip_prefix('!')) else {
            return Err(GitError::Remote {
                url: self.url().to_owned(),
                operation: "push",
                reason: crate::text::excerpt(stderr.trim()),
            });
        };
        let reason = refused.split('\t').skip(1).collect::<Vec<_>>().join(" ");
        // What the hooks printed ("remote: ...") explains a refusal.
        let said: Vec<&str> = stderr
            .lines()
            .filter_map(|l| l.strip_prefix("remote:"))
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        Ok(PushOutcome::Rejected(crate::text::excerpt(
            &if said.is_empty() {
                reason
            } else {
                format!("{reason} ({})", said.join(" / "))
            },
        )))
    }
}

/// Messages with which servers report that the ref moved under us.
fn is_race_message(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("fetch first")
        || m.contains("non-fast-forward")
        || m.contains("failed to update ref")
        || m.contains("cannot lock ref")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actors_become_authors() {
        let a = Author::new("Alice <alice@company.com>", 0);
        assert_eq!(
            (a.name.as_str(), a.email.as_str()),
            ("Alice", "alice@company.com")
        );
        assert_eq!(Author::new("ci@company.com", 0).email, "ci@company.com");
        assert_eq!(Author::new("ci", 0).email, "ci@releasectl.invalid");
    }
}
