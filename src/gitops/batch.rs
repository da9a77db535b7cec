//! Many writes, one fetch and one push: the batch form of the write loop ([`super::txn`]).
//!
//! Requests `0..n` are decided in order on one fetched tip: request `k` sees the commits that
//! requests `0..k` made (each its own commit, message and author, built in memory), or its
//! own refusal, which leaves the others as they are. The chain of commits is pushed at once,
//! as one compare-and-swap from the fetched tip to the last commit.
//!
//! Invariants: a request's refusal or failure in its decision is its own (no commit, the next
//! request is decided on the tip the previous one left); a lost race re-decides EVERY request
//! on the new tip (a decision made on commits that never landed is never reported); a server
//! that refuses the chain itself (a hook, a protected branch) gets each request again as its
//! own transaction, so one refused commit never sinks the others; a remote failure (fetch,
//! push, authentication) is every request's failure, and nothing landed.
//!
//! On a lazy `git://` cache ([`super::lazy`]) a batch first makes the tip's tree whole in one
//! fetch (only what is new since the last tip it made whole, named by [`COMPLETE`]), so the
//! requests read from the cache instead of fetching file by file; a chain this process pushed
//! on a whole tip is whole too.

use std::collections::HashSet;
use std::time::Instant;

use git2::Oid;

use super::GitError;
use super::push::{Author, PushOutcome};
use super::remote::{GitOps, local};
use super::snapshot::Snapshot;
use super::txn::{Landed, MAX_ATTEMPTS, Step};

/// The last tip whose whole tree (blobs up to 1 MiB) the cache holds.
pub const COMPLETE: &str = "refs/releasectl/complete";

/// Each request's outcome, in the order the requests were given.
pub type Outcomes<T> = Vec<crate::exit::Result<Landed<T>>>;

/// One commit of a chain: its id, its parent's tree and the paths it changed.
struct Link {
    oid: Oid,
    parent_tree: Option<Oid>,
    paths: Vec<String>,
}

impl GitOps {
    /// Decides requests `0..authors.len()` in order on one fresh tip (`decide(k, tip)` sees
    /// the commits of the requests before `k`), pushes their commits as one chain, and on a
    /// lost race decides them all again on the new tip, until the chain lands, nothing is to
    /// be written, or the attempts or `deadline` run out ([`GitError::Contended`], for all).
    ///
    /// The outer error is a failure every request shares (nothing landed); the inner ones
    /// are each request's own.
    pub async fn transact_batch<T>(
        &self,
        authors: &[Author],
        deadline: Instant,
        mut decide: impl AsyncFnMut(usize, &Snapshot<'_>) -> crate::exit::Result<Step<T>>,
    ) -> crate::exit::Result<Outcomes<T>> {
        let all: Vec<usize> = (0..authors.len()).collect();
        match self.chain(&all, authors, deadline, &mut decide).await? {
            Ok(outcomes) => Ok(outcomes),
            Err(refused) if all.len() == 1 => Err(refused.into()),
            Err(_) => {
                crate::log::info(&format!(
                    "{} refused a chain of {} requests; pushing each on its own",
                    self.url(),
                    all.len()
                ));
                let mut out = Vec::with_capacity(all.len());
                for k in all {
                    match self.chain(&[k], authors, deadline, &mut decide).await {
                        Ok(Ok(mut one)) => out.append(&mut one),
                        Ok(Err(refused)) => out.push(Err(refused.into())),
                        Err(e) => out.push(Err(e)),
                    }
                }
                Ok(out)
            }
        }
    }

    /// The loop for the requests `which` (indices into `authors`); the inner error is the
    /// server refusing the chain ([`GitError::Refused`]).
    async fn chain<T>(
        &self,
        which: &[usize],
        authors: &[Author],
        deadline: Instant,
        decide: &mut impl AsyncFnMut(usize, &Snapshot<'_>) -> crate::exit::Result<Step<T>>,
    ) -> crate::exit::Result<Result<Outcomes<T>, GitError>> {
        let mut last = String::new();
        let mut attempts = crate::retry::Attempts::new(MAX_ATTEMPTS, deadline);
        while attempts.next().await {
            let base = self.fetch()?;
            let whole = self.make_whole(&base)?;
            let (outcomes, links) = self.plan_chain(which, authors, &base, decide).await?;
            let Some(head) = links.last().map(|l| l.oid) else {
                return Ok(Ok(outcomes));
            };
            match self.push_chain(&base, &links, head)? {
                PushOutcome::Pushed(_) => {
                    if whole {
                        self.mark_whole(head);
                    }
                    return Ok(Ok(outcomes));
                }
                PushOutcome::Rejected(reason) => {
                    if self.fetch()?.tip == base.tip {
                        return Ok(Err(GitError::Refused {
                            url: self.url().to_owned(),
                            reason,
                        }));
                    }
                    crate::log::info(&format!(
                        "push of {} commits to {} rejected ({reason}); deciding all {} requests again on the new tip",
                        links.len(),
                        self.url(),
                        which.len()
                    ));
                    last = reason;
                }
            }
        }
        Err(GitError::Contended {
            url: self.url().to_owned(),
            attempts: attempts.made(),
            last,
        }
        .into())
    }

    /// On a lazy cache, fetches in one request what `tip`'s tree holds and the cache lacks
    /// (only what is new since [`COMPLETE`] when there is one); whether it is marked whole
    /// now (a full clone never is: it holds everything already).
    fn make_whole(&self, tip: &Snapshot<'_>) -> Result<bool, GitError> {
        let (Some(lazy), Some(oid)) = (&self.lazy, tip.tip) else {
            return Ok(false);
        };
        let known = self.repo.refname_to_id(COMPLETE).ok();
        // A cache the lazy protocol filled is shallow (or already marked); one the server's
        // lack of `filter` made a full clone holds everything and is never marked.
        if known == Some(oid) {
            return Ok(true);
        }
        if known.is_none() && !self.repo.path().join("shallow").exists() {
            return Ok(false);
        }
        let haves: Vec<Oid> = known.into_iter().collect();
        let deepen = if haves.is_empty() { Some(1) } else { None };
        lazy.fetch(&self.repo, &[oid], &haves, deepen, "blob:limit=1m")
            .map_err(|e| GitError::Remote {
                url: self.url().to_owned(),
                operation: "fetch",
                reason: e.0,
            })?;
        self.mark_whole(oid);
        Ok(true)
    }

    /// Records `oid` (a fetched tip made whole, or a chain pushed on one) as a tip whose tree
    /// a lazy cache holds whole (best effort: without the mark, the next batch fetches again).
    fn mark_whole(&self, oid: Oid) {
        let _ = self
            .repo
            .reference(COMPLETE, oid, true, "releasectl: whole tree");
    }

    /// Decides each request on the tip the previous one left; builds the commits.
    async fn plan_chain<'a, T>(
        &'a self,
        which: &[usize],
        authors: &[Author],
        base: &Snapshot<'a>,
        decide: &mut impl AsyncFnMut(usize, &Snapshot<'_>) -> crate::exit::Result<Step<T>>,
    ) -> crate::exit::Result<(Outcomes<T>, Vec<Link>)> {
        let mut outcomes = Vec::with_capacity(which.len());
        let mut links: Vec<Link> = Vec::new();
        let mut moved: Option<Snapshot<'a>> = None;
        for &k in which {
            let tip = moved.as_ref().unwrap_or(base);
            let step = match decide(k, tip).await {
                Ok(step) => step,
                Err(e) => {
                    outcomes.push(Err(e));
                    continue;
                }
            };
            match step {
                Step::Done(result) => outcomes.push(Ok(Landed {
                    result,
                    commit: None,
                })),
                Step::Commit {
                    edits,
                    message,
                    result,
                } => {
                    let oid = match self.commit(tip, &edits, &message, &authors[k]) {
                        Ok(oid) => oid,
                        Err(e) => {
                            outcomes.push(Err(e.into()));
                            continue;
                        }
                    };
                    links.push(Link {
                        oid,
                        parent_tree: tip.tree.as_ref().map(git2::Tree::id),
                        paths: edits.into_iter().map(|e| e.path).collect(),
                    });
                    moved = Some(self.snapshot_at(oid)?);
                    outcomes.push(Ok(Landed {
                        result,
                        commit: Some(oid),
                    }));
                }
            }
        }
        Ok((outcomes, links))
    }

    /// Pushes `head` (the last of `links`) as one compare-and-swap from `base`'s tip.
    fn push_chain(
        &self,
        base: &Snapshot<'_>,
        links: &[Link],
        head: Oid,
    ) -> Result<PushOutcome, GitError> {
        let Some(daemon) = super::wire::Daemon::parse(&self.fetch_url) else {
            // libgit2 and `git push` walk the chain themselves.
            return self.push(head, base.tip);
        };
        let err = |e: git2::Error| local(self.repo.path(), e.message());
        let mut objects = Vec::new();
        let mut seen = HashSet::new();
        for link in links {
            let parent = link
                .parent_tree
                .map(|t| self.repo.find_tree(t))
                .transpose()
                .map_err(err)?;
            let paths: Vec<&str> = link.paths.iter().map(String::as_str).collect();
            for oid in super::wire::new_objects(&self.repo, parent.as_ref(), link.oid, &paths)
                .map_err(err)?
            {
                if seen.insert(oid) {
                    objects.push(oid);
                }
            }
        }
        self.send_pack(&daemon, base.tip, head, &objects, links.len())
    }
}
