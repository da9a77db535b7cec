//! The one GitOps write loop: fetch → decide on the snapshot → commit in memory → push, and
//! on a lost race decide again on the new tip.
//!
//! Invariants: every attempt starts from a fresh fetch and decides anew (someone else's
//! commit is never rebased: policy, approvals or pointers may have changed under us); a
//! decision that writes nothing ends the loop with no commit object made; a lost race is
//! retried after a jittered pause, bounded in count and by the run's deadline; a server that
//! refuses the change itself (a hook, a protected branch) or a failed authentication ends it
//! at once. A connection that times out, is reset or closed during an attempt (an overloaded
//! server) is a lost race too, never a failure while time remains; only a connection refused
//! before the server ever answered (nothing listens there) fails at once. A push whose reply
//! was lost may have landed: each later fetch looks for that commit in the new tip's history
//! and, when it is there, the transaction ended with it (no second commit, no lost write).
//!
//! A retry costs what changed, not the repository: the fetch sends the previous tip as a
//! `have` (on `git://`, the new commits and their changed trees in one request) and the
//! decision runs again in memory. The pause is measured in attempt lengths and scaled by the
//! contention seen: full jitter over `attempt time · commits that landed during it · 2^n`
//! (capped), so writers that lost the same race spread over as many attempt lengths as there
//! are writers landing, and the remote sees a steady stream of pushes instead of bursts.

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

/// The contention factor is capped here: beyond it, the exponent does the rest.
const MAX_CONTENTION: u32 = 16;

/// The pause before retry number `retry` (1-based) after an attempt that took `took` while
/// `landed` commits landed on the branch (the others who won since our base): full jitter in
/// `0..=min(took · max(landed, 1) · 2^min(retry-1, 4), PAUSE_CAP)`, `took` at least 20 ms.
pub(super) fn pause(retry: u32, took: Duration, landed: u32) -> Duration {
    let base = took.max(Duration::from_millis(20)) * landed.clamp(1, MAX_CONTENTION);
    crate::retry::backoff(retry.saturating_sub(1).min(4), base, PAUSE_CAP)
}

/// Whether `e` is a connection that failed mid-exchange (timed out, reset, closed early,
/// refused): the server was overloaded or restarted, and another attempt may succeed.
#[must_use]
pub fn dropped_connection(e: &GitError) -> bool {
    let reason = match e {
        GitError::Remote { reason, .. } => reason.as_str(),
        // A read that fetches what it lacks reports its transport failure as a bad file.
        GitError::BadFile { reason, .. } => match reason.strip_prefix("cannot fetch it: ") {
            Some(r) => r,
            None => return false,
        },
        _ => return false,
    };
    let r = reason.to_ascii_lowercase();
    [
        "timed out",
        "temporarily unavailable",
        "connection reset",
        "connection refused",
        "connection abort",
        "broken pipe",
        "failed to fill whole buffer",
        "unexpected eof",
        "early eof",
    ]
    .iter()
    .any(|m| r.contains(m))
}

/// Milliseconds from `a` to `b`, for the debug log.
fn ms_between(a: Instant, b: Instant) -> f64 {
    (b - a).as_secs_f64() * 1000.0
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

/// How one attempt ended, when it did not end the transaction.
enum Lost {
    /// The push was rejected: the branch moved.
    Race(String),
    /// A connection failed (the message says how).
    Dropped(String),
}

impl GitOps {
    /// Runs `decide` on a fresh tip and pushes what it decides as `author`; when the push
    /// loses a race (or a connection drops), runs it again on the new tip, until it lands,
    /// decides there is nothing to write, fails, or the attempts or `deadline` run out
    /// ([`GitError::Contended`]).
    ///
    /// `decide` may await (a registry read, an image push) and may keep state between
    /// attempts in what it captures.
    pub async fn transact<T>(
        &self,
        author: &Author,
        deadline: Instant,
        mut decide: impl AsyncFnMut(&Snapshot<'_>) -> crate::exit::Result<Step<T>>,
    ) -> crate::exit::Result<Landed<T>> {
        let mut last_reason = String::new();
        let mut made = 0;
        let mut took = Duration::ZERO;
        // Commits that landed between the previous attempt's base and this one's.
        let mut landed = 0;
        let mut previous: Option<Oid> = None;
        // Whether the server answered at least once (a refused connection before that means
        // nothing listens there: no point in retrying).
        let mut answered = false;
        // Pushes whose reply was lost: each may have landed.
        let mut in_doubt: Vec<(Oid, T)> = Vec::new();
        while made < WRITE_ATTEMPTS {
            if made > 0 {
                let wait = pause(made, took, landed);
                if Instant::now() + wait > deadline {
                    break;
                }
                crate::log::debug(&format!(
                    "attempt {made} lost; pausing {} ms ({} ms per attempt, {landed} commits landed meanwhile)",
                    wait.as_millis(),
                    took.as_millis()
                ));
                tokio::time::sleep(wait).await;
            }
            made += 1;
            let started = Instant::now();
            let attempt = self
                .attempt(author, &mut decide, &mut in_doubt, &mut previous, started)
                .await;
            took = started.elapsed();
            let lost = match attempt {
                Ok(Ok(landed)) => return Ok(landed),
                Ok(Err((lost, arrived))) => {
                    answered = true;
                    landed = arrived;
                    lost
                }
                Err(e) => {
                    let git = e.cause::<GitError>();
                    match git {
                        Some(g) if dropped_connection(g) => {
                            let refused = g.to_string().to_ascii_lowercase().contains("refused");
                            if refused && !answered {
                                return Err(e);
                            }
                            Lost::Dropped(g.to_string())
                        }
                        _ => return Err(e),
                    }
                }
            };
            last_reason = match lost {
                Lost::Race(reason) => {
                    PUSH_RETRIES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    crate::log::info(&format!(
                        "push to {} rejected ({reason}); deciding again on the new tip",
                        self.url()
                    ));
                    reason
                }
                Lost::Dropped(reason) => {
                    crate::log::info(&format!(
                        "attempt {made} failed on a dropped connection ({reason}); trying again"
                    ));
                    reason
                }
            };
        }
        Err(GitError::Contended {
            url: self.url().to_owned(),
            attempts: made,
            last: last_reason,
        }
        .into())
    }

    /// One attempt: fetch, decide, push. `Ok(Ok(..))` ends the transaction; `Ok(Err(..))` is
    /// a lost race with the commits that landed since the previous attempt's base.
    async fn attempt<T>(
        &self,
        author: &Author,
        decide: &mut impl AsyncFnMut(&Snapshot<'_>) -> crate::exit::Result<Step<T>>,
        in_doubt: &mut Vec<(Oid, T)>,
        previous: &mut Option<Oid>,
        started: Instant,
    ) -> crate::exit::Result<Result<Landed<T>, (Lost, u32)>> {
        let tip = self.fetch()?;
        let fetched = Instant::now();
        if let Some(at) = tip.tip
            && let Some(k) = in_doubt.iter().position(|(oid, _)| self.holds(at, *oid))
        {
            let (oid, result) = in_doubt.swap_remove(k);
            crate::log::info(&format!(
                "the push of {oid} whose reply was lost had landed"
            ));
            return Ok(Ok(Landed {
                result,
                commit: Some(oid),
            }));
        }
        let arrived = match (*previous, tip.tip) {
            (Some(from), Some(to)) => self.commits_between(from, to),
            _ => 0,
        };
        *previous = tip.tip;
        let step = decide(&tip).await?;
        let decided = Instant::now();
        let (edits, message, result) = match step {
            Step::Done(result) => {
                return Ok(Ok(Landed {
                    result,
                    commit: None,
                }));
            }
            Step::Commit {
                edits,
                message,
                result,
            } => (edits, message, result),
        };
        let oid = self.commit(&tip, &edits, &message, author)?;
        let pushed = self.push_commit(&tip, &edits, oid);
        crate::log::debug(&format!(
            "attempt: fetch {:.1} ms, decide {:.1} ms, push {:.1} ms: {}",
            ms_between(started, fetched),
            ms_between(fetched, decided),
            ms_between(decided, Instant::now()),
            match &pushed {
                Ok(PushOutcome::Pushed(_)) => "landed".to_owned(),
                Ok(PushOutcome::Rejected(_)) => "lost the race".to_owned(),
                Err(e) => format!("failed ({e})"),
            }
        ));
        match pushed {
            Ok(PushOutcome::Pushed(oid)) => Ok(Ok(Landed {
                result,
                commit: Some(oid),
            })),
            Ok(PushOutcome::Rejected(reason)) => Ok(Err((Lost::Race(reason), arrived))),
            Err(e) => {
                if dropped_connection(&e) {
                    // The server may have taken the commit before the connection dropped.
                    in_doubt.push((oid, result));
                }
                Err(e.into())
            }
        }
    }

    /// Whether `oid` is `tip` or in its history.
    fn holds(&self, tip: Oid, oid: Oid) -> bool {
        tip == oid || self.repo.graph_descendant_of(tip, oid).unwrap_or(false)
    }

    /// How many commits `to` has that `from` lacks (at most 64: a measure of contention).
    fn commits_between(&self, from: Oid, to: Oid) -> u32 {
        let Ok(mut walk) = self.repo.revwalk() else {
            return 0;
        };
        if walk.push(to).is_err() || walk.hide(from).is_err() {
            return 0;
        }
        u32::try_from(walk.take(64).count()).unwrap_or(64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backoff_window_grows_with_the_retries_and_the_contention_and_stops_at_the_cap() {
        let took = Duration::from_millis(100);
        for _ in 0..50 {
            assert!(pause(1, took, 0) <= took);
            assert!(pause(1, took, 3) <= took * 3);
            assert!(pause(3, took, 1) <= took * 4);
            assert!(pause(30, took, 1000) <= PAUSE_CAP);
            assert!(pause(1, Duration::ZERO, 0) <= Duration::from_millis(20));
        }
        let widest = (0..200)
            .map(|_| pause(1, took, 8))
            .max()
            .unwrap_or_default();
        assert!(
            widest > took,
            "eight commits landed: the window spans more than one attempt ({widest:?})"
        );
    }

    #[test]
    fn timeouts_resets_and_early_closes_are_dropped_connections_and_refusals_are_not() {
        let remote = |reason: String| GitError::Remote {
            url: "git://127.0.0.1/x.git".into(),
            operation: "fetch",
            reason,
        };
        for code in [11, 32, 103, 104, 110, 111] {
            let io = std::io::Error::from_raw_os_error(code);
            assert!(dropped_connection(&remote(io.to_string())), "{io}");
        }
        let short = std::io::Read::read_exact(&mut &b"ab"[..], &mut [0u8; 4]).unwrap_err();
        assert!(dropped_connection(&remote(short.to_string())), "{short}");
        assert!(dropped_connection(&GitError::BadFile {
            url: "git://h/x.git".into(),
            path: "dev".into(),
            commit: "abc".into(),
            reason: format!("cannot fetch it: {}", std::io::Error::from_raw_os_error(11)),
        }));
        assert!(!dropped_connection(&remote(
            "access denied or repository not exported: /x.git".into()
        )));
        assert!(!dropped_connection(&GitError::Refused {
            url: "git://h/x.git".into(),
            reason: "pre-receive hook declined".into(),
        }));
        assert!(!dropped_connection(&GitError::BadFile {
            url: "git://h/x.git".into(),
            path: "dev/x.yaml".into(),
            commit: "abc".into(),
            reason: "timed out waiting is not YAML".into(),
        }));
    }
}
