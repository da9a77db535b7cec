//! `pointer::parse` on arbitrary bytes: the ReleasePointer comes from the GitOps repository,
//! which anyone with write access to it controls. It must never panic, and its errors must be
//! one line (generate prints one stderr line; a hostile value must not forge more).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match releasectl::pointer::parse("release.yaml", data) {
        Ok(pointer) => {
            // A parsed pointer names a valid release and, when pinned, a sha256 digest.
            assert!(!pointer.name.is_empty(), "parsed a pointer without a name");
            if let Some(digest) = &pointer.digest {
                assert!(digest.as_str().starts_with("sha256:"), "digest {:?}", digest.as_str());
            }
        }
        Err(e) => {
            let message = e.to_string();
            assert!(!message.contains(['\n', '\r']), "multi-line error: {message:?}");
        }
    }
});
