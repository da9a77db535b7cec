//! Request rate limits: a token bucket per caller, the caller being the authenticated identity
//! or, for a request without a valid token, the client's address (the peer, or the address a
//! trusted proxy names in `X-Forwarded-For`).
//!
//! Invariants: a bucket holds at most `burst` tokens and gains `per_second` a second; a request
//! over the limit is answered 429 before any work (no body read, nothing queued); the table of
//! buckets stays bounded (buckets that refilled are dropped once it grows); an identity's bucket
//! and an address's bucket never share a key.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use http::HeaderMap;

use super::config::{Network, RateLimit};

/// Above this many buckets, the full ones are dropped (they hold no state a new one would not).
const PRUNE_ABOVE: usize = 10_000;

/// Who a bucket counts.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Caller {
    Identity(String),
    Address(IpAddr),
}

impl Caller {
    /// The metrics label: `identity` or `address`.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Identity(_) => "identity",
            Self::Address(_) => "address",
        }
    }

    /// What an error names.
    #[must_use]
    pub fn describe(&self) -> String {
        match self {
            Self::Identity(who) => format!("requests of {}", crate::text::excerpt(who)),
            Self::Address(ip) => format!("requests from {ip}"),
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// The buckets of every caller.
pub struct Limiter {
    rate: RateLimit,
    per_second: f64,
    burst: f64,
    buckets: Mutex<HashMap<Caller, Bucket>>,
}

impl Limiter {
    #[must_use]
    pub fn new(rate: RateLimit) -> Self {
        let float = |n: u64| u32::try_from(n).map_or(f64::from(u32::MAX), f64::from);
        Self {
            rate,
            per_second: float(rate.per_second),
            burst: float(rate.burst),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// The limit, for error messages.
    #[must_use]
    pub fn rate(&self) -> RateLimit {
        self.rate
    }

    /// Takes one token of `caller`'s bucket at `now`; `Err(wait)` when it is empty, `wait`
    /// being how long until it holds one again (whole seconds, at least one).
    ///
    /// # Errors
    ///
    /// The bucket is empty.
    pub fn take(&self, caller: &Caller, now: Instant) -> Result<(), Duration> {
        let (per_second, burst) = (self.per_second, self.burst);
        let mut buckets = self.buckets.lock().expect("not poisoned");
        if buckets.len() > PRUNE_ABOVE {
            buckets.retain(|_, b| {
                b.tokens + now.saturating_duration_since(b.at).as_secs_f64() * per_second < burst
            });
        }
        let bucket = buckets.entry(caller.clone()).or_insert(Bucket {
            tokens: burst,
            at: now,
        });
        let refilled = now.saturating_duration_since(bucket.at).as_secs_f64() * per_second;
        bucket.tokens = (bucket.tokens + refilled).min(burst);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            let wait = ((1.0 - bucket.tokens) / per_second).ceil().max(1.0);
            Err(Duration::from_secs_f64(wait))
        }
    }
}

/// The client's address: the peer's, unless the peer is a trusted proxy, then the rightmost
/// `X-Forwarded-For` address that is not itself a trusted proxy (a client can prepend any
/// address it likes, so only what the trusted proxies appended counts).
#[must_use]
pub fn client_address(peer: IpAddr, headers: &HeaderMap, trusted: &[Network]) -> IpAddr {
    let is_trusted = |ip: IpAddr| trusted.iter().any(|n| n.contains(ip));
    if !is_trusted(peer) {
        return peer;
    }
    let mut client = peer;
    let hops: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .collect();
    for hop in hops.iter().rev() {
        let Ok(ip) = hop.trim().parse::<IpAddr>() else {
            // Garbage where an address should be: the last good hop is the client.
            break;
        };
        client = ip;
        if !is_trusted(ip) {
            break;
        }
    }
    client
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_allows_the_burst_then_refills_at_the_rate() {
        let limiter = Limiter::new(RateLimit {
            per_second: 2,
            burst: 3,
        });
        let bot = Caller::Identity("deploy-bot".into());
        let t0 = Instant::now();
        for _ in 0..3 {
            limiter.take(&bot, t0).unwrap();
        }
        assert_eq!(limiter.take(&bot, t0), Err(Duration::from_secs(1)));
        // Another caller has its own bucket.
        limiter
            .take(&Caller::Address("10.0.0.1".parse().unwrap()), t0)
            .unwrap();
        // Half a second later one token is back, and only one.
        let t1 = t0 + Duration::from_millis(500);
        limiter.take(&bot, t1).unwrap();
        assert!(limiter.take(&bot, t1).is_err());
        // Long idle: back to the burst, not more.
        let t2 = t1 + Duration::from_secs(3600);
        for _ in 0..3 {
            limiter.take(&bot, t2).unwrap();
        }
        assert!(limiter.take(&bot, t2).is_err());
    }

    #[test]
    fn forwarded_for_counts_only_behind_a_trusted_proxy() {
        let trusted: Vec<Network> = vec!["10.0.0.0/8".parse().unwrap()];
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-forwarded-for",
            "6.6.6.6, 203.0.113.7, 10.1.1.1".parse().unwrap(),
        );
        let proxy: IpAddr = "10.0.0.2".parse().unwrap();
        assert_eq!(
            client_address(proxy, &headers, &trusted),
            "203.0.113.7".parse::<IpAddr>().unwrap()
        );
        let stranger: IpAddr = "198.51.100.1".parse().unwrap();
        assert_eq!(client_address(stranger, &headers, &trusted), stranger);
        assert_eq!(client_address(proxy, &HeaderMap::new(), &trusted), proxy);
        headers.insert("x-forwarded-for", "junk".parse().unwrap());
        assert_eq!(client_address(proxy, &headers, &trusted), proxy);
    }
}
