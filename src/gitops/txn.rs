//! The one GitOps write loop: fetch → decide on the snapshot → commit in memory → push, and
//! on a lost race decide again on the new tip.
//!
//! Invariants: every attempt starts from a fresh fetch and decides anew (someone else's
//! commit is never rebased: policy, approvals or pointers may have changed under us); a
//! decision that writes nothing ends the loop with no commit object made; a lost race is
//! retried with jittered exponential backoff, bounded in count and by the run's deadline; a
//! server that refuses the change itself (a hook, a protected branch) or a failed
//! authentication ends it at once.

use std::time::Instant;

use git2::Oid;

use super::GitError;
use super::push::{Author, Edit, PushOutcome};
use super::remote::GitOps;
use super::snapshot::Snapshot;

/// At most this many attempts (each a fetch, a decision and at most one push).
pub const MAX_ATTEMPTS: u32 = 30;

/// What one attempt decided.
pub enum Step<T> {
    /// Nothing to write (a no-op, a dry run, a refusal): the transaction ends with `T`.
    Done(T),
    /// Write these files in one commit; `T` is the result once the push landed.
    Commit {
        edits: Vec<Edit>,
        message: String,
        result: T,
    },
}

/// How a transaction ended: the decision's result and the commit pushed, if any.
#[derive(Debug)]
pub struct Landed<T> {
    pub result: T,
    pub commit: Option<Oid>,
}

/// Pushes rejected because the remote moved (each one decided again on the new tip), since
/// the process started: `serve`'s `/metrics` reports it.
pub static PUSH_RETRIES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

impl GitOps {
    /// Runs `decide` on a fresh tip and pushes what it decides as `author`; when the push
    /// loses a race, runs it again on the new tip, until it lands, decides there is nothing
    /// to write, fails, or the attempts or `deadline` run out ([`GitError::Contended`]).
    ///
    /// `decide` may await (a registry read, an image push) and may keep state between
    /// attempts in what it captures.
    pub async fn transact<T>(
        &self,
        author: &Author,
        deadline: Instant,
        mut decide: impl AsyncFnMut(&Snapshot<'_>) -> crate::exit::Result<Step<T>>,
    ) -> crate::exit::Result<Landed<T>> {
        let mut last = String::new();
        let mut attempts = crate::retry::Attempts::new(MAX_ATTEMPTS, deadline);
        while attempts.next().await {
            let tip = self.fetch()?;
            let (edits, message, result) = match decide(&tip).await? {
                Step::Done(result) => {
                    return Ok(Landed {
                        result,
                        commit: None,
                    });
                }
                Step::Commit {
                    edits,
                    message,
                    result,
                } => (edits, message, result),
            };
            match self.commit_and_push(&tip, &edits, &message, author)? {
                PushOutcome::Pushed(oid) => {
                    return Ok(Landed {
                        result,
                        commit: Some(oid),
                    });
                }
                PushOutcome::Rejected(reason) => {
                    PUSH_RETRIES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    crate::log::info(&format!(
                        "push to {} rejected ({reason}); deciding again on the new tip",
                        self.url()
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
}
