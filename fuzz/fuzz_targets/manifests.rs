//! `manifests::parse_file` on untrusted manifest files (from the resources layer, and
//! `env.yaml` from the GitOps repository). The first byte picks the file name (.yaml, .yml or
//! .json). What parses must hold the module's invariants, and must render to YAML that parses
//! back to the same values (what generate prints is what the release holds).
#![no_main]

use libfuzzer_sys::fuzz_target;
use releasectl::manifests;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let path = ["a.yaml", "a.yml", "a.json"][usize::from(mode % 3)];
    let objects = match manifests::parse_file(path, rest) {
        Ok(objects) => objects,
        Err(e) => {
            let message = e.to_string();
            assert!(!message.contains(['\n', '\r']), "multi-line error: {message:?}");
            return;
        }
    };
    for o in &objects {
        assert!(!o.api_version.is_empty() && !o.kind.is_empty() && !o.name.as_str().is_empty(), "{o:?}");
        assert!(o.namespace.as_deref() != Some(""), "empty namespace kept: {o:?}");
    }
    let rendered = manifests::render(&objects).expect("objects from parse_file must render");
    let again = manifests::parse_file("rendered.yaml", rendered.as_bytes())
        .unwrap_or_else(|e| panic!("rendered output does not parse: {e}\n{rendered}"));
    assert_eq!(objects.len(), again.len(), "document count changed:\n{rendered}");
    for (a, b) in objects.iter().zip(&again) {
        assert_eq!(a.value, b.value, "value changed by render:\n{rendered}");
    }
});
