//! `generate`'s digest-keyed cache (`RELEASECTL_CACHE_DIR`; issue 3 "Cache", docs/design.md §5
//! rule 5): a pinned release once fetched needs no network, many processes may fill the cache
//! at once, and an entry is verified on every read — a damaged one is fetched again, never
//! printed.

use std::path::{Path, PathBuf};
use std::thread;

use crate::generate_faults::{Image, app_dir, generate, image};
use crate::support::setup::{self, COMMIT_A, Setup};
use crate::support::{self, FakeServer, Output};

/// `generate` for `app` against plain-HTTP `host`, caching in `cache`.
fn cached_generate(app: &Path, host: &str, cache: &Path) -> crate::support::Cmd {
    generate(app, host).env("RELEASECTL_CACHE_DIR", cache)
}

/// Every file under `dir`, recursively.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display())) {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// The cache file holding blob `digest` (wherever the cache keeps it: it is named by its hex).
fn cached_blob(cache: &Path, digest: &str) -> PathBuf {
    let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
    files_under(cache)
        .into_iter()
        .find(|p| p.file_name().is_some_and(|n| n == hex))
        .unwrap_or_else(|| {
            panic!(
                "blob {digest} is not in the cache; it holds {:?}",
                files_under(cache)
            )
        })
}

/// Flips one bit in the middle of `path`.
fn corrupt(path: &Path) {
    let mut bytes = std::fs::read(path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(path, bytes).unwrap();
}

/// Every blob in the cache is named by the sha256 of its contents, and no temp file is left.
fn assert_cache_consistent(cache: &Path) {
    let blobs: Vec<PathBuf> = files_under(cache)
        .into_iter()
        .filter(|p| p.parent().is_some_and(|d| d.ends_with("blobs/sha256")))
        .collect();
    assert!(!blobs.is_empty(), "no blobs in {}", cache.display());
    for blob in blobs {
        let name = blob.file_name().unwrap().to_string_lossy().into_owned();
        let actual = setup::sha256(&std::fs::read(&blob).unwrap());
        assert_eq!(
            actual,
            format!("sha256:{name}"),
            "{} does not hold what its name says (a leftover temp file, or a torn write)",
            blob.display()
        );
    }
}

#[track_caller]
fn assert_same_stdout(first: &Output, again: &Output) {
    again.assert_success();
    if again.stdout != first.stdout {
        again.fail(&format!(
            "stdout differs from the first run's:\n{}",
            first.stdout_str()
        ));
    }
}

/// A real registry holding the fixture release, and a pointer pinned to its digest.
fn registry_with_release() -> (Setup, String, tempfile::TempDir) {
    let setup = Setup::plain();
    let created = setup.create(COMMIT_A, &setup::fixture_manifests());
    let app = app_dir(&setup.host(), &created.digest);
    (setup, created.digest, app)
}

/// A fake registry serving the fake release image, and a pointer pinned to its digest.
fn fake_registry() -> (&'static Image, FakeServer, tempfile::TempDir) {
    let image = image();
    let server = FakeServer::start(|req| image.serve(req));
    let app = app_dir(&server.host(), &image.digest);
    (image, server, app)
}

/// [`registry_with_release`], generated once (successfully) into a fresh cache: the setup, the
/// release's digest, the app dir, the cache and the first run's output.
fn generated_once() -> (Setup, String, tempfile::TempDir, tempfile::TempDir, Output) {
    let (setup, digest, app) = registry_with_release();
    let cache = support::temp_dir();
    let first = cached_generate(app.path(), &setup.host(), cache.path()).run();
    first.assert_success();
    (setup, digest, app, cache, first)
}

#[test]
fn a_cached_release_generates_with_the_registry_stopped() {
    let (mut setup, _digest, app, cache, first) = generated_once();
    let host = setup.host();
    assert!(!first.stdout.is_empty(), "{first}");

    setup.registry.stop();
    // The registry really is gone: without the cache, generate fails.
    let uncached = generate(app.path(), &host)
        .env("RELEASECTL_TIMEOUT", "10s")
        .run();
    setup::assert_fails(&uncached, 5, &[&host]);

    let again = cached_generate(app.path(), &host, cache.path()).run();
    assert_same_stdout(&first, &again);
    assert!(again.stderr.is_empty(), "{again}");
}

#[test]
fn eight_concurrent_generates_on_an_empty_cache_all_succeed_with_identical_output() {
    let (mut setup, _digest, app) = registry_with_release();
    let host = setup.host();
    let cache = support::temp_dir();
    let runs: Vec<Output> = (0..8)
        .map(|_| {
            let cmd = cached_generate(app.path(), &host, cache.path());
            thread::spawn(move || cmd.run())
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|h| h.join().unwrap())
        .collect();
    let first = &runs[0];
    first.assert_success();
    assert!(!first.stdout.is_empty(), "{first}");
    for out in &runs[1..] {
        assert_same_stdout(first, out);
    }
    assert_cache_consistent(cache.path());

    // What the eight wrote together is a complete entry.
    setup.registry.stop();
    let again = cached_generate(app.path(), &host, cache.path()).run();
    assert_same_stdout(first, &again);
}

#[test]
fn a_corrupted_cache_entry_is_fetched_again_and_repaired() {
    let (mut setup, digest, app, cache, first) = generated_once();
    let host = setup.host();

    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(cached_blob(cache.path(), &digest)).unwrap())
            .unwrap();
    let mut blobs = vec![
        digest.clone(),
        manifest["config"]["digest"].as_str().unwrap().to_owned(),
    ];
    blobs.extend(
        manifest["layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["digest"].as_str().unwrap().to_owned()),
    );
    assert_eq!(
        blobs.len(),
        4,
        "manifest, config, metadata, resources: {manifest}"
    );
    for blob in &blobs {
        let path = cached_blob(cache.path(), blob);
        corrupt(&path);
        // Without the rendered entry, the run must go through the (damaged) blobs.
        forget_renderings(cache.path());
        let again = cached_generate(app.path(), &host, cache.path()).run();
        assert_same_stdout(&first, &again);
        assert_eq!(
            setup::sha256(&std::fs::read(cached_blob(cache.path(), blob)).unwrap()),
            *blob,
            "the corrupted cache entry for {blob} was not replaced"
        );
        assert_cache_consistent(cache.path());
    }

    // With the registry gone, a damaged entry is an error, never wrong output.
    setup.registry.stop();
    let resources = blobs.last().unwrap();
    corrupt(&cached_blob(cache.path(), resources));
    forget_renderings(cache.path());
    let out = cached_generate(app.path(), &host, cache.path())
        .env("RELEASECTL_TIMEOUT", "10s")
        .run();
    out.assert_failure().assert_stdout_empty();
    assert_eq!(out.stderr_str().lines().count(), 1, "{out}");
}

/// Removes the rendered-output entries, leaving the verified blobs.
fn forget_renderings(cache: &std::path::Path) {
    let dir = cache.join("rendered");
    if dir.exists() {
        std::fs::remove_dir_all(&dir).expect("remove rendered entries");
    }
}

#[test]
fn a_corrupted_rendered_entry_is_rendered_again_from_verified_blobs_and_repaired() {
    let (mut setup, _digest, app, cache, first) = generated_once();
    let host = setup.host();
    let entries: Vec<_> = std::fs::read_dir(cache.path().join("rendered"))
        .expect("a rendered entry after the first run")
        .map(|e| e.expect("entry").path())
        .collect();
    assert_eq!(entries.len(), 1, "{entries:?}");
    let entry = &entries[0];
    let good = std::fs::read(entry).expect("read entry");
    // The registry is gone: only the blob cache can save this run.
    setup.registry.stop();
    corrupt(entry);
    let again = cached_generate(app.path(), &host, cache.path()).run();
    assert_same_stdout(&first, &again);
    assert_eq!(
        std::fs::read(entry).expect("entry rewritten"),
        good,
        "the rendered entry was not repaired"
    );
    // A torn entry (cut short) is caught the same way.
    std::fs::write(entry, &good[..good.len() / 2]).expect("truncate");
    let third = cached_generate(app.path(), &host, cache.path()).run();
    assert_same_stdout(&first, &third);
}

#[test]
fn a_cached_generate_makes_no_http_requests() {
    let (image, server, app) = fake_registry();
    let cache = support::temp_dir();
    let first = cached_generate(app.path(), &server.host(), cache.path()).run();
    first.assert_success();
    assert_eq!(first.stdout, image.expected, "{first}");
    let fetched = server.requests().len();
    let connections = server.connection_count();
    assert!(fetched > 0, "the first run did not use the registry");

    let again = cached_generate(app.path(), &server.host(), cache.path()).run();
    assert_same_stdout(&first, &again);
    assert_eq!(
        server.requests().len(),
        fetched,
        "a cached generate spoke to the registry: {:?}",
        &server.requests()[fetched..]
    );
    assert_eq!(
        server.connection_count(),
        connections,
        "a cached generate opened a connection"
    );
}

#[test]
fn a_cache_that_cannot_be_written_costs_speed_not_correctness() {
    let (image, server, app) = fake_registry();
    // A regular file where the cache directory should be: nothing can be created under it.
    let scratch = support::temp_dir();
    let not_a_dir = scratch.path().join("cache");
    std::fs::write(&not_a_dir, "not a directory").unwrap();
    for _ in 0..2 {
        let out = cached_generate(app.path(), &server.host(), &not_a_dir).run();
        out.assert_success();
        assert_eq!(out.stdout, image.expected, "{out}");
    }
    assert_eq!(std::fs::read(&not_a_dir).unwrap(), b"not a directory");
}

#[test]
fn a_release_that_fails_verification_is_not_cached() {
    let image = image();
    let mut tampered = image.resources_bytes().to_vec();
    let middle = tampered.len() / 2;
    tampered[middle] ^= 0x01;
    let resources = image.resources_path();
    let server = FakeServer::start(move |req| {
        if req.path_only() == resources {
            crate::support::Action::respond(200, &[], tampered.clone())
        } else {
            image.serve(req)
        }
    });
    let host = server.host();
    let app = app_dir(&host, &image.digest);
    let cache = support::temp_dir();
    let out = cached_generate(app.path(), &host, cache.path()).run();
    setup::assert_fails(&out, 3, &["resources", "digest mismatch"]);
    // Nothing under the manifest's digest: a later run cannot be served the bad release.
    let hex = image.digest.strip_prefix("sha256:").unwrap();
    let cached: Vec<PathBuf> = files_under(cache.path())
        .into_iter()
        .filter(|p| p.file_name().is_some_and(|n| n == hex))
        .collect();
    assert!(cached.is_empty(), "the manifest was cached: {cached:?}");
    drop(server);
    // With the registry gone, the cache cannot answer for this digest.
    let again = cached_generate(app.path(), &host, cache.path())
        .env("RELEASECTL_TIMEOUT", "10s")
        .run();
    again.assert_failure().assert_stdout_empty();
}
