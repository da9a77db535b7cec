//! The image manifest, config and metadata JSON: all three come from the registry and are
//! parsed before anything is trusted. `check_manifest` must never panic, and what it accepts
//! must satisfy what the release reader then relies on (it uses declared sizes as download
//! caps; located digests are typed `Digest`s).
#![no_main]

use libfuzzer_sys::fuzz_target;
use releasectl::format::{self, Metadata, ReleaseConfig};

const CAP: u64 = 64 * 1024 * 1024;

fuzz_target!(|data: &[u8]| {
    match format::check_manifest("fuzz", data, CAP) {
        Ok(located) => {
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
