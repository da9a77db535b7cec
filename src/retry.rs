//! Bounded retries with jittered exponential backoff, shared by the registry reader (429,
//! 5xx, resets) and the GitOps writers (lost push races).
//!
//! Jitter spreads writers that lost the same race, so they do not collide again in lockstep;
//! it needs no cryptographic randomness, so a small xorshift over the clock and the pid
//! serves without a random-number crate.

use std::time::{Duration, Instant};

/// A pseudo-random number in `0..=max`.
fn jitter(max: u64) -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::from(d.subsec_nanos()));
    let mut x = nanos ^ u64::from(std::process::id()).rotate_left(32) ^ 0x9e37_79b9_7f4a_7c15;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    x % (max + 1)
}

/// Full jitter: a pause in `0..=min(base · 2^attempt, cap)`.
#[must_use]
pub fn backoff(attempt: u32, base: Duration, cap: Duration) -> Duration {
    let ceiling = (base.as_millis() as u64)
        .saturating_mul(1 << attempt.min(16))
        .min(cap.as_millis() as u64);
    Duration::from_millis(jitter(ceiling))
}

/// How long a `Retry-After` header asks to wait: delta-seconds (`120`) or an HTTP date
/// (`Wed, 21 Oct 2026 07:28:00 GMT`, RFC 9110 §10.2.3) measured from `now`. A date in the past
/// means "now"; anything else is ignored (the caller's own backoff applies).
#[must_use]
pub fn retry_after(value: &str, now: jiff::Timestamp) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = jiff::fmt::rfc2822::parse(value).ok()?.timestamp();
    let wait = now.duration_until(at);
    Some(Duration::try_from(wait).unwrap_or(Duration::ZERO))
}

/// The attempts of a retried operation: at most `max`, none starting after `deadline`.
pub struct Attempts {
    done: u32,
    max: u32,
    deadline: Instant,
}

/// Pause between GitOps push attempts: 100 ms doubling, at most 5 s.
const PUSH_BASE: Duration = Duration::from_millis(100);
const PUSH_CAP: Duration = Duration::from_secs(5);

impl Attempts {
    #[must_use]
    pub fn new(max: u32, deadline: Instant) -> Self {
        Self {
            done: 0,
            max,
            deadline,
        }
    }

    /// The pause before the next attempt, or `None` when none is left.
    fn pause(&mut self) -> Option<Duration> {
        if self.done >= self.max {
            return None;
        }
        let pause = if self.done == 0 {
            Duration::ZERO
        } else {
            backoff(self.done, PUSH_BASE, PUSH_CAP)
        };
        if Instant::now() + pause > self.deadline {
            return None;
        }
        self.done += 1;
        Some(pause)
    }

    /// Waits (asynchronously) for the next attempt; `false` when none is left.
    pub async fn next(&mut self) -> bool {
        match self.pause() {
            Some(p) => {
                tokio::time::sleep(p).await;
                true
            }
            None => false,
        }
    }

    /// How many attempts were made.
    #[must_use]
    pub fn made(&self) -> u32 {
        self.done
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_takes_seconds_and_http_dates() {
        let now: jiff::Timestamp = "2026-10-21T07:27:00Z".parse().unwrap();
        assert_eq!(retry_after(" 7 ", now), Some(Duration::from_secs(7)));
        assert_eq!(
            retry_after("Wed, 21 Oct 2026 07:28:00 GMT", now),
            Some(Duration::from_secs(60))
        );
        assert_eq!(
            retry_after("Wed, 21 Oct 2026 07:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(retry_after("soon", now), None);
        assert_eq!(retry_after("-5", now), None);
    }

    #[test]
    fn backoff_stays_under_its_growing_ceiling_and_the_cap() {
        for attempt in 0..20 {
            let p = backoff(attempt, Duration::from_millis(100), Duration::from_secs(5));
            assert!(
                p <= Duration::from_millis((100u64 << attempt.min(16)).min(5000)),
                "{attempt}: {p:?}"
            );
        }
    }

    #[test]
    fn attempts_are_bounded_in_count_and_the_first_does_not_wait() {
        let mut a = Attempts::new(3, Instant::now() + Duration::from_secs(60));
        assert_eq!(a.pause(), Some(Duration::ZERO));
        assert!(a.pause().is_some() && a.pause().is_some());
        assert_eq!(a.pause(), None);
        assert_eq!(a.made(), 3);
        let past = Instant::now()
            .checked_sub(Duration::from_secs(1))
            .expect("an instant a second ago");
        assert_eq!(
            Attempts::new(3, past).pause(),
            None,
            "nothing starts after the deadline"
        );
    }
}
