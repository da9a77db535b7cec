//! `releasectl serve` against its own OpenAPI document, with PyPI's `schemathesis` generating
//! requests from it (valid and invalid, with and without a token): no answer is a 5xx, every
//! answer's status, content type and body are what the document says. One worker: hypothesis's
//! lambda descriptions are not thread-safe (a runtime error of the tool, not of the server).

use crate::support::cmd::Cmd;
use crate::support::serve::{Served, token};
use crate::support::setup::PROJECT;
use crate::support::world::{BOB, World};

#[test]
fn schemathesis_finds_no_server_error_and_every_answer_matches_the_openapi_document() {
    let world = World::example();
    let release = world.main_release("schema");
    world.ok(&["deploy", "dev", PROJECT, &release.tag]);
    // Hundreds of requests as one identity: a limit the run cannot reach (429 is documented,
    // but every case answered 429 would test nothing else).
    let served = Served::start(
        &world,
        &world.url,
        "max_body_bytes: 65536\nrate_limit: {per_second: 100000, burst: 100000}\n",
    );
    let st = crate::support::python()
        .parent()
        .expect("the venv's bin")
        .join("st");
    let report = crate::support::temp_dir();
    let out = Cmd::new(&st)
        .current_dir(report.path())
        .args(["run", &format!("http://{}/openapi.json", served.addr)])
        .args([
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,negative_data_rejection",
        ])
        .args(["--phases", "examples,coverage,fuzzing"])
        .args(["--max-examples", "25", "--seed", "1", "--workers", "1"])
        .args(["--no-color", "--output-truncate", "false"])
        .args(["-H", &format!("Authorization: Bearer {}", token(BOB))])
        .timeout(std::time::Duration::from_secs(600))
        .run();
    out.assert_success();
    let report = String::from_utf8_lossy(&out.stdout);
    let (generated, passed) = report
        .lines()
        .find_map(|l| {
            let (g, p) = l.trim().split_once(" generated, ")?;
            Some((
                g.parse::<u64>().ok()?,
                p.split_once(" passed")?.0.parse::<u64>().ok()?,
            ))
        })
        .unwrap_or_else(|| out.fail("no summary of test cases"));
    assert!(generated > 500 && passed == generated, "{report}");
    assert!(
        !served.log().contains(token(BOB)),
        "the token reached the access log"
    );
}
