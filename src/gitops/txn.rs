//! The one GitOps write loop: fetch → decide on the snapshot → commit in memory → push, and
//! on a lost race decide again on the new tip.
//!
//! Invariants: every attempt starts from a fresh fetch and decides anew (someone else's
//! commit is never rebased: policy, approvals or pointers may have changed under us); a
//! decision that writes nothing ends the loop with no commit object made; a lost race is
//! retried with jittered exponential backoff, bounded in count and by the run's deadline; a
//! server that refuses the change itself (a hook, a protected branch) or a failed
//! authentication ends it at once.
//!
//! A retry costs what changed, not the repository: the fetch sends the previous tip as a
//! `have` (on `git://`, the new commits and their changed trees in one request) and the
//! decision runs again in memory. The backoff window is measured in attempts: full jitter over
//! `attempt time · 2^n` (capped), so writers that lost the same race spread over a few attempt
//! lengths and the remote sees a steady stream of pushes instead of bursts and idle seconds.

use std::time::{Duration, Instant};

use git2::Oid;

use super::GitError;
use super::push::{Author, Edit, PushOutcome};
use super::remote::GitOps;
use super::snapshot::Snapshot;

/// At most this many attempts (each a fetch, a decision and at most one push) for writers
/// other than [`GitOps::transact`] (which is bounded by [`WRITE_ATTEMPTS`] and the deadline).
pub const MAX_ATTEMPTS: u32 = 30;

/// At most this many attempts of one transaction: high, since each retry is cheap (a fetch of
/// what changed and a decision in memory); the run's deadline is the real bound.
pub const WRITE_ATTEMPTS: u32 = 200;

/// The backoff window never exceeds this (a writer that waits longer leaves the remote idle).
const PAUSE_CAP: Duration = Duration::from_secs(2);

/// The pause before retry number `retry` (1-based) after an attempt that took `took`: full
/// jitter in `0..=min(took · 2^min(retry-1, 5), PAUSE_CAP)`, with `took` at least 20 ms.
fn pause(retry: u32, took: Duration) -> Duration {
    let base = took.max(Duration::from_millis(20));
    crate::retry::backoff(retry.saturating_sub(1).min(5), base, PAUSE_CAP)
}

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
        let mut made = 0;
        let mut took = Duration::ZERO;
        while made < WRITE_ATTEMPTS {
            if made > 0 {
                let wait = pause(made, took);
                if Instant::now() + wait > deadline {
                    break;
                }
                tokio::time::sleep(wait).await;
            }
            made += 1;
            let started = Instant::now();
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
                    took = started.elapsed();
                }
            }
        }
        Err(GitError::Contended {
            url: self.url().to_owned(),
            attempts: made,
            last,
        }
        .into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backoff_window_grows_with_the_retries_and_stops_at_the_cap() {
        let took = Duration::from_millis(100);
        for _ in 0..50 {
            assert!(pause(1, took) <= took);
            assert!(pause(3, took) <= took * 4);
            assert!(pause(30, took) <= PAUSE_CAP);
            assert!(pause(1, Duration::ZERO) <= Duration::from_millis(20));
        }
    }
}
