//! Prometheus metrics at `/metrics` (text exposition format 0.0.4): requests by route and
//! status, the writer's queue depth, push retries, and policy decisions by rule and result.
//!
//! Invariants: a route label is the route's template (`/v1/deployments/{environment}/{rest}`),
//! never a raw path, so label sets stay bounded whatever clients send; a decision is counted
//! once per answer that carries it (dry runs included, marked `dry_run="true"`).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;

use serde_json::Value;

/// The counters, shared by every request.
#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, &'static str, u16), u64>>,
    decisions: Mutex<BTreeMap<(String, bool, bool), u64>>,
    rate_limited: Mutex<BTreeMap<&'static str, u64>>,
}

/// The template of `path`: what `/metrics` labels a request with.
#[must_use]
pub fn route_label(path: &str) -> &'static str {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let rest = match segments.as_slice() {
        ["v1", rest @ ..] | ["api", "v1", rest @ ..] => rest,
        [""] => return "/",
        ["healthz"] => return "/healthz",
        ["readyz"] => return "/readyz",
        ["metrics"] => return "/metrics",
        ["openapi.json"] => return "/openapi.json",
        ["ui", "project", ..] => return "/ui/project/{rest}",
        ["ui", "diff", ..] => return "/ui/diff/{rest}",
        ["ui", "login"] => return "/ui/login",
        ["ui", "logout"] => return "/ui/logout",
        ["ui", "preview"] => return "/ui/preview",
        ["ui", "confirm"] => return "/ui/confirm",
        _ => return "other",
    };
    match rest {
        ["releases"] => "/v1/releases",
        ["releases", ..] => "/v1/releases/{rest}",
        ["deployments"] => "/v1/deployments",
        ["deployments", ..] => "/v1/deployments/{environment}/{rest}",
        ["approvals"] => "/v1/approvals",
        ["approvals", ..] => "/v1/approvals/{release_id}/{environment}",
        ["rollbacks"] => "/v1/rollbacks",
        ["promotions"] => "/v1/promotions",
        ["unblocks"] => "/v1/unblocks",
        ["revocations"] => "/v1/revocations",
        ["history", ..] => "/v1/history/{environment}/{rest}",
        ["diff", ..] => "/v1/diff/{environment}/{rest}",
        _ => "other",
    }
}

impl Metrics {
    /// Counts one request of `method` to `path` answered `status`.
    pub fn request(&self, method: &str, path: &str, status: u16) {
        let method: &'static str = match method {
            "GET" => "GET",
            "POST" => "POST",
            "HEAD" => "HEAD",
            _ => "other",
        };
        *self
            .requests
            .lock()
            .expect("not poisoned")
            .entry((route_label(path).to_owned(), method, status))
            .or_default() += 1;
    }

    /// Counts one request refused 429 for a caller of `kind` (`identity` or `address`).
    pub fn rate_limited(&self, kind: &'static str) {
        *self
            .rate_limited
            .lock()
            .expect("not poisoned")
            .entry(kind)
            .or_default() += 1;
    }

    /// Counts the decisions of a deploy-like answer (`items[].decisions[]`).
    pub fn decisions(&self, body: &Value) {
        let Some(items) = body["items"].as_array() else {
            return;
        };
        let dry_run = body.get("would_refuse").is_some();
        let mut map = self.decisions.lock().expect("not poisoned");
        for d in items
            .iter()
            .filter_map(|i| i["decisions"].as_array())
            .flatten()
        {
            let Some(rule) = d["rule"].as_str() else {
                continue;
            };
            let pass =
                d["pass"].as_bool().unwrap_or(false) || d["overridden"].as_bool().unwrap_or(false);
            *map.entry((crate::text::printable(rule, 40), pass, dry_run))
                .or_default() += 1;
        }
    }

    /// The exposition: every counter, the queue depth and the push retries.
    #[must_use]
    pub fn render(&self, queue_depth: usize, push_retries: u64) -> String {
        let mut out = String::from(
            "# HELP releasectl_http_requests_total HTTP requests answered, by route template, method and status.\n# TYPE releasectl_http_requests_total counter\n",
        );
        for ((route, method, status), n) in self.requests.lock().expect("not poisoned").iter() {
            let _ = writeln!(
                out,
                "releasectl_http_requests_total{{route=\"{}\",method=\"{method}\",status=\"{status}\"}} {n}",
                label(route)
            );
        }
        let _ = write!(
            out,
            "# HELP releasectl_writer_queue_depth Requests queued for or running on the writer thread.\n# TYPE releasectl_writer_queue_depth gauge\nreleasectl_writer_queue_depth {queue_depth}\n\
# HELP releasectl_push_retries_total Pushes the remote rejected because it moved; each decided again on the new tip.\n# TYPE releasectl_push_retries_total counter\nreleasectl_push_retries_total {push_retries}\n\
# HELP releasectl_policy_decisions_total Policy decisions in answers, by rule, result and whether a dry run.\n# TYPE releasectl_policy_decisions_total counter\n"
        );
        for ((rule, pass, dry_run), n) in self.decisions.lock().expect("not poisoned").iter() {
            let _ = writeln!(
                out,
                "releasectl_policy_decisions_total{{rule=\"{}\",result=\"{}\",dry_run=\"{dry_run}\"}} {n}",
                label(rule),
                if *pass { "pass" } else { "fail" }
            );
        }
        out.push_str("# HELP releasectl_rate_limited_total Requests refused 429 (over the rate limit), by what the bucket counts: an identity or a client address.\n# TYPE releasectl_rate_limited_total counter\n");
        for (kind, n) in self.rate_limited.lock().expect("not poisoned").iter() {
            let _ = writeln!(
                out,
                "releasectl_rate_limited_total{{caller=\"{kind}\"}} {n}"
            );
        }
        out
    }
}

/// A label value escaped as the exposition format asks (`\`, `"`, newline).
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_are_labelled_by_template_whatever_the_path() {
        assert_eq!(
            route_label("/v1/releases/company/monorepo/x/12"),
            "/v1/releases/{rest}"
        );
        assert_eq!(route_label("/api/v1/releases/a/b/c"), "/v1/releases/{rest}");
        assert_eq!(route_label("/v1/deployments"), "/v1/deployments");
        assert_eq!(route_label("/"), "/");
        assert_eq!(route_label("/ui/project/a/b/c"), "/ui/project/{rest}");
        assert_eq!(route_label("/../../etc/passwd"), "other");
    }

    #[test]
    fn the_exposition_counts_requests_and_decisions_by_rule() {
        let m = Metrics::default();
        m.request("GET", "/healthz", 200);
        m.request("GET", "/healthz", 200);
        m.request("POST", "/v1/deployments", 422);
        m.decisions(
            &serde_json::json!({"result": "refused", "items": [{"decisions": [
            {"rule": "window", "pass": false, "overridden": false},
            {"rule": "soak", "pass": true, "overridden": false}]}]}),
        );
        let text = m.render(3, 2);
        assert!(text.contains("releasectl_http_requests_total{route=\"/healthz\",method=\"GET\",status=\"200\"} 2\n"), "{text}");
        assert!(
            text.contains("route=\"/v1/deployments\",method=\"POST\",status=\"422\"} 1"),
            "{text}"
        );
        assert!(text.contains("releasectl_writer_queue_depth 3\n"), "{text}");
        assert!(text.contains("releasectl_push_retries_total 2\n"), "{text}");
        assert!(
            text.contains("{rule=\"window\",result=\"fail\",dry_run=\"false\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("{rule=\"soak\",result=\"pass\",dry_run=\"false\"} 1"),
            "{text}"
        );
        assert_eq!(label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
        m.rate_limited("identity");
        assert!(
            m.render(0, 0)
                .contains("releasectl_rate_limited_total{caller=\"identity\"} 1\n")
        );
    }
}
