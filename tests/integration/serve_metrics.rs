//! `releasectl serve`'s Prometheus `/metrics`: requests counted by route template and status,
//! the writer's queue depth, push retries, and policy decisions by rule and result; and the
//! Kubernetes manifests of manifests/serve/ that run the server, probe it and scrape it.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::time::Duration;

use serde_json::json;

use crate::support::http::parse_response;
use crate::support::serve::Served;
use crate::support::setup::PROJECT;
use crate::support::world::{ALICE, CAROL, PRODUCTION, World};

fn scrape(addr: &str) -> (u16, Option<String>, String) {
    let mut stream = TcpStream::connect(addr).expect("connect to serve");
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .expect("timeout");
    stream
        .write_all(
            format!("GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .expect("send");
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    let r = parse_response(&raw).expect("an HTTP response");
    (
        r.status,
        r.header("content-type").map(ToOwned::to_owned),
        r.body_str(),
    )
}

/// The value of the sample whose line starts with `series` (name and labels).
fn sample(text: &str, series: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[test]
fn metrics_count_requests_by_route_and_status_and_decisions_by_rule() {
    let world = World::example();
    let release = world.main_release("metrics");
    let served = Served::start(&world, &world.url, "");
    assert_eq!(served.get("/healthz", None).0, 200);
    assert_eq!(served.get("/healthz", None).0, 200);
    let full = format!("/v1/releases/company/monorepo/{PROJECT}");
    assert_eq!(served.get(&full, Some(ALICE)).0, 200);
    assert_eq!(
        served.get(&format!("{full}/no-such-alias"), Some(ALICE)).0,
        404
    );
    let body = json!({"environment": PRODUCTION, "project": PROJECT, "release_id": release.tag});
    let (status, refused) = served.post("/v1/deployments", CAROL, &body);
    assert_eq!(status, 422, "{refused}");
    let failed = refused["items"][0]["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["pass"] == false)
        .count();
    let (status, kind, text) = scrape(&served.addr);
    assert_eq!(status, 200, "{text}");
    assert!(
        kind.unwrap_or_default()
            .starts_with("text/plain; version=0.0.4")
    );
    let requests = |route: &str, method: &str, status: u16| {
        sample(
            &text,
            &format!(
                "releasectl_http_requests_total{{route=\"{route}\",method=\"{method}\",status=\"{status}\"}}"
            ),
        )
    };
    assert_eq!(requests("/healthz", "GET", 200), Some(2), "{text}");
    assert_eq!(
        requests("/v1/releases/{rest}", "GET", 200),
        Some(1),
        "{text}"
    );
    assert_eq!(
        requests("/v1/releases/{rest}", "GET", 404),
        Some(1),
        "{text}"
    );
    assert_eq!(requests("/v1/deployments", "POST", 422), Some(1), "{text}");
    assert!(
        !text.contains("no-such-alias"),
        "raw paths never become labels: {text}"
    );
    assert_eq!(
        sample(&text, "releasectl_writer_queue_depth"),
        Some(0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "releasectl_push_retries_total"),
        Some(0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            "releasectl_policy_decisions_total{rule=\"allowed_triggers\",result=\"fail\",dry_run=\"false\"}"
        ),
        Some(1),
        "{text}"
    );
    let fails: usize = text
        .lines()
        .filter(|l| {
            l.starts_with("releasectl_policy_decisions_total{") && l.contains("result=\"fail\"")
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<usize>().ok())
        .sum();
    assert_eq!(fails, failed, "{text}");
    for family in [
        "releasectl_http_requests_total counter",
        "releasectl_writer_queue_depth gauge",
        "releasectl_push_retries_total counter",
        "releasectl_policy_decisions_total counter",
    ] {
        assert!(
            text.contains(&format!("# TYPE {family}\n")),
            "{family}: {text}"
        );
    }
    // Scrapes are counted too, from the next one on.
    let (_, _, again) = scrape(&served.addr);
    assert_eq!(
        sample(
            &again,
            "releasectl_http_requests_total{route=\"/metrics\",method=\"GET\",status=\"200\"}"
        ),
        Some(1),
        "{again}"
    );
}

#[test]
fn the_serve_manifests_are_strictly_valid_and_probe_and_scrape_the_server() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("manifests/serve");
    for file in ["deployment.yaml", "service.yaml"] {
        crate::support::kubernetes_validate()
            .args(["--strict", "--no-warn"])
            .arg(root.join(file))
            .run()
            .assert_success();
    }
    let load = |file: &str| {
        let bytes = std::fs::read(root.join(file)).expect("read a manifest");
        releasectl::yaml::documents(&bytes).expect("YAML").remove(0)
    };
    let (deployment, service) = (load("deployment.yaml"), load("service.yaml"));
    let pod = &deployment["spec"]["template"];
    let c = &pod["spec"]["containers"][0];
    assert_eq!(c["args"][0], "serve");
    let env = |name: &str| {
        c["env"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == name)
            .unwrap_or_else(|| panic!("no {name}"))
            .clone()
    };
    let port = c["ports"][0]["containerPort"].as_u64().unwrap();
    assert!(
        env("RELEASECTL_LISTEN")["value"]
            .as_str()
            .unwrap()
            .ends_with(&format!(":{port}"))
    );
    assert_eq!(
        env("RELEASECTL_GIT_TOKEN")["valueFrom"]["secretKeyRef"]["name"],
        "releasectl-serve-git"
    );
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(
        pod["metadata"]["annotations"]["prometheus.io/path"],
        "/metrics"
    );
    assert_eq!(
        pod["metadata"]["annotations"]["prometheus.io/port"],
        port.to_string()
    );
    let config = pod["spec"]["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "config")
        .expect("a config volume");
    assert_eq!(config["secret"]["secretName"], "releasectl-serve");
    assert!(
        c["args"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a == "/etc/releasectl/serve.yaml")
    );
    assert_eq!(service["spec"]["selector"], pod["metadata"]["labels"]);
    assert_eq!(service["spec"]["ports"][0]["targetPort"], "http");
}
