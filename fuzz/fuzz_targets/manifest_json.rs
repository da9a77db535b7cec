//! The image manifest, config and metadata JSON: all three come from the registry and are
//! parsed before anything is trusted. `check_manifest` must never panic, and what it accepts
//! must satisfy what `release::fetch` then relies on (it `expect`s every located digest to
//! parse as a `Digest`, and uses declared sizes as download caps).
#![no_main]

use libfuzzer_sys::fuzz_target;
use releasectl::digest::Digest;
use releasectl::format::{self, Metadata, ReleaseConfig};

const CAP: u64 = 64 * 1024 * 1024;

fuzz_target!(|data: &[u8]| {
    match format::check_manifest("fuzz", data, CAP) {
        Ok(located) => {
            for (name, d) in [
                ("config", &located.config),
                ("metadata", &located.metadata),
                ("resources", &located.resources),
            ] {
                assert!(
                    d.digest.parse::<Digest>().is_ok(),
                    "accepted a {name} digest that release::fetch cannot parse: {:?}",
                    d.digest
                );
            }
            assert!(located.config.size <= format::MAX_CONFIG_BYTES, "config size");
            assert!(located.metadata.size <= format::MAX_METADATA_BYTES, "metadata size");
            assert!(located.resources.size <= CAP, "resources size");
        }
        Err(e) => {
            let message = e.to_string();
            assert!(!message.contains(['\n', '\r']), "multi-line error: {message:?}");
        }
    }
    let _ = serde_json::from_slice::<Metadata>(data);
    let _ = serde_json::from_slice::<ReleaseConfig>(data);
});
