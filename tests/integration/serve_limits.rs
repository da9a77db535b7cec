//! `releasectl serve`'s request rate limit: a token bucket per identity, and per client address
//! for requests without a valid token (`X-Forwarded-For` believed only from `trusted_proxies`).
//! Over the limit: 429 with `Retry-After` and the error body every error has, counted in
//! `/metrics`; other callers and the probes are unaffected.

use serde_json::Value;

use crate::support::http::{HttpResponse, http_get};
use crate::support::serve::{Served, token};
use crate::support::setup::PROJECT;
use crate::support::world::{ALICE, BOB, World};

fn get(served: &Served, path: &str, headers: &[(&str, &str)]) -> HttpResponse {
    http_get(&served.addr, path, headers).expect("an answer from serve")
}

fn json(r: &HttpResponse) -> Value {
    serde_json::from_slice(&r.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", r.body_str()))
}

#[test]
fn an_identity_over_its_rate_limit_gets_429_with_retry_after_and_others_go_on() {
    let world = World::example();
    world.main_release("limits");
    let served = Served::start(
        &world,
        &world.url,
        "rate_limit: {per_second: 1, burst: 3}\n",
    );
    let path = format!("/v1/releases/company/monorepo/{PROJECT}");
    let alice = format!("Bearer {}", token(ALICE));
    for _ in 0..3 {
        let r = get(&served, &path, &[("Authorization", &alice)]);
        assert_eq!(r.status, 200, "{}", r.body_str());
    }
    let r = get(&served, &path, &[("Authorization", &alice)]);
    assert_eq!(r.status, 429, "{}", r.body_str());
    let wait: u64 = r
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .unwrap();
    assert!((1..=2).contains(&wait), "Retry-After: {wait}");
    assert_eq!(r.header("content-type"), Some("application/json"));
    let body = json(&r);
    assert_eq!(body["error"]["status"], 429, "{body}");
    assert_eq!(body["error"]["kind"], "rate_limited", "{body}");
    assert_eq!(
        body["error"]["object"],
        format!("requests of {ALICE}"),
        "{body}"
    );
    assert_eq!(
        body["error"]["expected"], "at most 3 at once, then 1 a second",
        "{body}"
    );
    // Bob has his own bucket; the probes and /metrics have none.
    let bob = format!("Bearer {}", token(BOB));
    assert_eq!(get(&served, &path, &[("Authorization", &bob)]).status, 200);
    for _ in 0..5 {
        assert_eq!(get(&served, "/healthz", &[]).status, 200);
        assert_eq!(get(&served, "/readyz", &[]).status, 200);
    }
    // After the wait, one more is allowed.
    std::thread::sleep(std::time::Duration::from_secs(wait));
    assert_eq!(
        get(&served, &path, &[("Authorization", &alice)]).status,
        200
    );
    let metrics = get(&served, "/metrics", &[]).body_str();
    assert!(
        metrics.contains("releasectl_rate_limited_total{caller=\"identity\"} 1\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("route=\"/v1/releases/{rest}\",method=\"GET\",status=\"429\"} 1\n"),
        "{metrics}"
    );
    assert!(
        !served.log().contains(token(ALICE)),
        "a token reached the log"
    );
}

#[test]
fn requests_without_a_valid_token_are_limited_per_address_and_forwarded_for_only_from_trusted_proxies()
 {
    let world = World::example();
    world.main_release("limits");
    let path = format!("/v1/releases/company/monorepo/{PROJECT}");
    // No trusted proxy: X-Forwarded-For is ignored, every request counts against 127.0.0.1,
    // wrong tokens included.
    let served = Served::start(
        &world,
        &world.url,
        "rate_limit: {per_second: 1, burst: 2}\n",
    );
    assert_eq!(
        get(&served, &path, &[("X-Forwarded-For", "192.0.2.1")]).status,
        401
    );
    assert_eq!(
        get(
            &served,
            &path,
            &[("Authorization", "Bearer wrong-token-0123456789")]
        )
        .status,
        401
    );
    let r = get(&served, &path, &[("X-Forwarded-For", "192.0.2.2")]);
    assert_eq!(r.status, 429, "{}", r.body_str());
    assert_eq!(json(&r)["error"]["object"], "requests from 127.0.0.1");
    assert!(!r.body_str().contains("wrong-token"));
    // A known identity is not held back by its address's bucket.
    let alice = format!("Bearer {}", token(ALICE));
    assert_eq!(
        get(&served, &path, &[("Authorization", &alice)]).status,
        200
    );
    let metrics = get(&served, "/metrics", &[]).body_str();
    assert!(
        metrics.contains("releasectl_rate_limited_total{caller=\"address\"} 1\n"),
        "{metrics}"
    );
    drop(served);

    // Behind a trusted proxy (127.0.0.1 here), each forwarded client has its own bucket.
    let served = Served::start(
        &world,
        &world.url,
        "rate_limit: {per_second: 1, burst: 2}\ntrusted_proxies: [127.0.0.0/8]\n",
    );
    for _ in 0..2 {
        assert_eq!(
            get(&served, &path, &[("X-Forwarded-For", "192.0.2.1")]).status,
            401
        );
    }
    let r = get(&served, &path, &[("X-Forwarded-For", "192.0.2.1")]);
    assert_eq!(r.status, 429, "{}", r.body_str());
    assert_eq!(json(&r)["error"]["object"], "requests from 192.0.2.1");
    // A client cannot escape by prepending an address: the proxy appended the real one.
    let r = get(
        &served,
        &path,
        &[("X-Forwarded-For", "198.51.100.9, 192.0.2.1")],
    );
    assert_eq!(r.status, 429, "{}", r.body_str());
    assert_eq!(
        get(&served, &path, &[("X-Forwarded-For", "192.0.2.2")]).status,
        401
    );
    // The dashboard counts against the same address buckets.
    let r = get(&served, "/", &[("X-Forwarded-For", "192.0.2.1")]);
    assert_eq!(r.status, 429, "{}", r.body_str());
    assert!(r.header("retry-after").is_some());
}
