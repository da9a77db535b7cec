//! `generate`'s fast path (`manifests::verbatim`) against the full path on untrusted YAML:
//! whatever keeps its author's text must mean what `parse_file` reads, and both must fail alike.
#![no_main]

use libfuzzer_sys::fuzz_target;
use releasectl::manifests::verbatim;

fuzz_target!(|data: &[u8]| {
    if let Err(e) = verbatim::check_agreement("a.yaml", data) {
        panic!("fast and full paths disagree: {e}");
    }
});
